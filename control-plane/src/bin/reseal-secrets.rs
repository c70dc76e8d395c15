//! `reseal-secrets`: re-seals every connector's partner credentials with
//! the current SECRETS_KEY, so that a previous key can be retired. Run it
//! once every control-plane replica runs with the new key (the old one in
//! SECRETS_PREVIOUS_KEYS); it exits 0 when nothing is left sealed by
//! another key.

use std::process::ExitCode;

use clap::Parser;
use control_plane::reseal::reseal_all;
use control_plane::secrets::SecretBox;
use control_plane::store::Store;
use server_kit::auth::Secret;

/// Re-seal partner credentials with the current key.
#[derive(Debug, clap::Parser)]
#[command(name = "reseal-secrets", version)]
struct Args {
    /// The control plane's database.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Secret,

    /// The current sealing key (base64).
    #[arg(long, env = "SECRETS_KEY", hide_env_values = true)]
    secrets_key: Secret,

    /// The keys being retired (base64, comma-separated).
    #[arg(long, env = "SECRETS_PREVIOUS_KEYS", hide_env_values = true)]
    secrets_previous_keys: Option<Secret>,

    /// Count what would be re-sealed; write nothing.
    #[arg(long)]
    dry_run: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    server_kit::logs::init(false);
    let secrets = match SecretBox::from_base64(args.secrets_key.expose()).and_then(|secrets| {
        match &args.secrets_previous_keys {
            Some(previous) => secrets.with_previous(previous.expose()),
            None => Ok(secrets),
        }
    }) {
        Ok(secrets) => secrets,
        Err(error) => {
            tracing::error!(%error, "unusable key");
            return ExitCode::FAILURE;
        }
    };
    let store = match Store::connect(args.database_url.expose(), 2).await {
        Ok(store) => store,
        Err(error) => {
            tracing::error!(%error, "cannot open the store");
            return ExitCode::FAILURE;
        }
    };
    let result = reseal_all(&store, &secrets, args.dry_run).await;
    store.close().await;
    match result {
        Ok(report) => {
            tracing::info!(
                key_id = %secrets.key_id(),
                dry_run = args.dry_run,
                resealed = report.resealed,
                already_current = report.current,
                changed_meanwhile = report.raced,
                unreadable = report.unreadable,
                "re-seal pass done"
            );
            if report.raced == 0 && report.unreadable == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            tracing::error!(%error, "re-seal failed");
            ExitCode::FAILURE
        }
    }
}

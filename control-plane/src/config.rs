//! Command-line flags, each with an environment-variable fallback.

use server_kit::auth::Secret;
use server_kit::serving::ServeFlags;
use server_kit::tls::{ServerTlsFlags, UpstreamTlsFlags};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Control-plane configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "control-plane",
    version,
    about = "Connector lifecycle and configuration feed"
)]
pub struct Args {
    /// Address the gRPC server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// `postgres://...` for production; `sqlite://PATH?mode=rwc` for the
    /// embedded store (the default, created in the working directory).
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://control-plane.db?mode=rwc"
    )]
    pub database_url: Secret,

    /// Most open database connections.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Bootstrap operator credential, sent as `authorization: Bearer
    /// <token>`: everything API keys with the `operator` scope can do.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Secret,

    /// Token data-plane nodes send to watch the configuration feed (it
    /// carries partner credentials).
    #[arg(long, env = "NODE_TOKEN", hide_env_values = true)]
    pub node_token: Secret,

    /// Token the stats service sends to watch the directory view of the
    /// feed (connector owners and API-key hashes, never credentials). Unset:
    /// the stats service cannot learn of API keys.
    #[arg(long, env = "DIRECTORY_TOKEN", hide_env_values = true)]
    pub directory_token: Option<Secret>,

    /// Addresses webhook URLs may name although they are internal
    /// (loopback, private, link-local, ...): comma-separated CIDR ranges,
    /// addresses, or `address:port` for one service. Give nodes the same.
    #[arg(long, env = "DESTINATION_ALLOWLIST", default_value = "")]
    pub destination_allowlist: String,

    /// A partner's base URL for connector tests and previews, as
    /// `partner=url` (repeatable; the environment variable takes a
    /// comma-separated list). Give nodes the same.
    #[arg(
        long = "partner-base-url",
        env = "PARTNER_BASE_URLS",
        value_delimiter = ',',
        value_parser = partners::base_urls::parse_override
    )]
    pub partner_base_urls: Vec<(String, String)>,

    /// How long a connector test waits for the partner's answer.
    #[arg(long, env = "TEST_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub test_timeout: Duration,

    /// How often the configuration version is polled, as the safety net for
    /// lost notifications.
    #[arg(long, env = "CONFIG_POLL_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub config_poll_interval: Duration,

    /// Listen for other replicas' changes with Postgres LISTEN/NOTIFY
    /// (`false`: the poll alone).
    #[arg(long, env = "CONFIG_LISTEN_NOTIFY", default_value_t = true, action = clap::ArgAction::Set)]
    pub config_listen_notify: bool,

    /// Configuration versions kept in the change log; a node older than that
    /// gets a full snapshot.
    #[arg(long, env = "CONFIG_KEEP_CHANGES", default_value_t = 100_000)]
    pub config_keep_changes: u64,

    /// This replica's id in ListNodes (default: host name and a random
    /// suffix).
    #[arg(long, env = "REPLICA_ID")]
    pub replica_id: Option<String>,

    /// StatsService URL: deleted connectors' statistics are erased there
    /// (retried until it succeeds). Unset: deletions stay recorded, pending.
    #[arg(long, env = "STATS_URL")]
    pub stats_url: Option<String>,

    /// Operator credential of the stats service (its ADMIN_TOKEN or an
    /// operator API key); required with STATS_URL.
    #[arg(long, env = "STATS_ADMIN_TOKEN", hide_env_values = true)]
    pub stats_admin_token: Option<Secret>,

    /// Pause between passes of the statistics eraser when idle, and the
    /// shortest retry delay after a failure (jittered, its ceiling doubling
    /// up to a minute).
    #[arg(long, env = "STATS_ERASE_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub stats_erase_interval: Duration,

    /// Key sealing partner credentials at rest: 32 bytes, base64. Every
    /// replica sharing a database must use the same key.
    #[arg(long, env = "SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<Secret>,

    /// Earlier sealing keys (base64, comma-separated): they still open what
    /// they sealed, never seal. Set during a key rotation, until
    /// `reseal-secrets` has re-sealed everything with SECRETS_KEY.
    #[arg(long, env = "SECRETS_PREVIOUS_KEYS", hide_env_values = true)]
    pub secrets_previous_keys: Option<Secret>,

    /// File holding the sealing key (base64), used when SECRETS_KEY is not
    /// set. With the embedded store a missing file is created with a new key.
    #[arg(long, env = "SECRETS_KEY_FILE", default_value = "control-plane.key")]
    pub secrets_key_file: PathBuf,

    /// TLS of this server.
    #[command(flatten)]
    pub tls: ServerTlsFlags,

    /// TLS towards the stats service.
    #[command(flatten)]
    pub upstream: UpstreamTlsFlags,

    /// Shutdown and logging.
    #[command(flatten)]
    pub serve: ServeFlags,
}

/// Query parameters of a database URL that hold a credential.
fn is_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["password", "secret", "token", "key"]
        .iter()
        .any(|word| name.contains(word))
}

/// The URL for logs: its password, and every query parameter that holds a
/// credential (`?password=`, `sslpassword=`, ...), as `***`. Text that is
/// not a URL is not shown at all.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(raw) else {
        return "<not a URL: not shown>".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query_pairs().any(|(name, _)| is_credential(&name)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if is_credential(&name) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_database_passwords() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(
            redact_url("postgres://u@h/db?sslmode=require&password=pw&sslpassword=k2"),
            "postgres://u@h/db?sslmode=require&password=***&sslpassword=***"
        );
        assert_eq!(
            redact_url("host=h user=u password=pw"),
            "<not a URL: not shown>"
        );
    }
}

//! Command-line flags, each with an environment-variable fallback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Control-plane configuration.
#[derive(Clone, clap::Parser)]
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
        default_value = "sqlite://control-plane.db?mode=rwc"
    )]
    pub database_url: String,

    /// Most open database connections.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,

    /// Token admins send as `authorization: Bearer <token>`.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,

    /// Token data-plane nodes send to watch the configuration feed (it
    /// carries partner credentials).
    #[arg(long, env = "NODE_TOKEN", hide_env_values = true)]
    pub node_token: String,

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

    /// Admin token of the stats service (default: this control plane's).
    #[arg(long, env = "STATS_ADMIN_TOKEN", hide_env_values = true)]
    pub stats_admin_token: Option<String>,

    /// Pause between passes of the statistics eraser when idle, and its
    /// first retry delay after a failure (doubling up to a minute).
    #[arg(long, env = "STATS_ERASE_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub stats_erase_interval: Duration,

    /// Key sealing partner credentials at rest: 32 bytes, base64. Every
    /// replica sharing a database must use the same key.
    #[arg(long, env = "SECRETS_KEY", hide_env_values = true)]
    pub secrets_key: Option<String>,

    /// File holding the sealing key (base64), used when SECRETS_KEY is not
    /// set. With the embedded store a missing file is created with a new key.
    #[arg(long, env = "SECRETS_KEY_FILE", default_value = "control-plane.key")]
    pub secrets_key_file: PathBuf,

    /// Longest wait for in-flight RPCs after SIGTERM.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Log one JSON object per line instead of text.
    #[arg(long, env = "LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Args")
            .field("listen", &self.listen)
            .field("database_url", &redact_url(&self.database_url))
            .field("database_max_connections", &self.database_max_connections)
            .field("config_poll_interval", &self.config_poll_interval)
            .field("config_listen_notify", &self.config_listen_notify)
            .field("config_keep_changes", &self.config_keep_changes)
            .field("replica_id", &self.replica_id)
            .field("stats_url", &self.stats_url)
            .field("secrets_key_file", &self.secrets_key_file)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish_non_exhaustive()
    }
}

/// The URL without its password, for logs.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_database_passwords() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}

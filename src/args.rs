//! The one command's flags, each with an environment variable. Everything
//! else each service reads from its own variables (DELIVERY_TIMEOUT,
//! REDIS_URL, ...), as its own binary does.

use std::net::SocketAddr;

use server_kit::auth::Secret;
use server_kit::serving::ServeFlags;

/// Development tokens, used unless the environment gives others.
pub const DEV_ADMIN_TOKEN: &str = "dev-admin-token";
/// See [`DEV_ADMIN_TOKEN`].
pub const DEV_NODE_TOKEN: &str = "dev-node-token";
/// See [`DEV_ADMIN_TOKEN`].
pub const DEV_INGEST_TOKEN: &str = "dev-ingest-token";

/// The whole platform in one process.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "eventconnectors",
    version,
    about = "The control plane, one data-plane node and the stats service in one process, with a demo"
)]
pub struct Args {
    /// Control plane (ConnectorService, ConfigService).
    #[arg(long, env = "CONTROL_PLANE_LISTEN", default_value = "127.0.0.1:50051")]
    pub control_plane_listen: SocketAddr,

    /// The data-plane node's IngestService.
    #[arg(long, env = "INGEST_LISTEN", default_value = "127.0.0.1:50061")]
    pub ingest_listen: SocketAddr,

    /// StatsService.
    #[arg(long, env = "STATS_LISTEN", default_value = "127.0.0.1:50071")]
    pub stats_listen: SocketAddr,

    /// Prometheus endpoint of all three (`/metrics`).
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_listen: SocketAddr,

    /// The control plane's store: the embedded SQLite file by default.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://control-plane.db?mode=rwc"
    )]
    pub database_url: Secret,

    /// Bootstrap operator credential: ConnectorService, ApiKeyService,
    /// ConfigService.ListNodes and the statistics.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true, default_value = DEV_ADMIN_TOKEN)]
    pub admin_token: Secret,

    /// Token nodes present to follow the configuration feed (a node started
    /// elsewhere can join with it).
    #[arg(long, env = "NODE_TOKEN", hide_env_values = true, default_value = DEV_NODE_TOKEN)]
    pub node_token: Secret,

    /// Bootstrap ingest credential (every workspace); producers may use
    /// workspace-scoped API keys instead.
    #[arg(long, env = "INGEST_TOKEN", hide_env_values = true, default_value = DEV_INGEST_TOKEN)]
    pub ingest_token: Secret,

    /// Run without the demo: no demo partner, connectors or traffic.
    #[arg(long, env = "NO_DEMO")]
    pub no_demo: bool,

    /// Where the demo partner listens (loopback).
    #[arg(long, env = "DEMO_PARTNER_LISTEN", default_value = "127.0.0.1:50081")]
    pub demo_partner_listen: SocketAddr,

    /// Events the demo sends per second.
    #[arg(long, env = "DEMO_EVENTS_PER_SECOND", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub demo_events_per_second: u32,

    /// Shutdown and logging.
    #[command(flatten)]
    pub serve: ServeFlags,
}

/// The development tokens are public: they may only guard loopback.
#[derive(Debug, thiserror::Error)]
#[error(
    "{address} is reachable from other machines but {variable} is the development token: set {variable}"
)]
pub struct DevelopmentToken {
    address: SocketAddr,
    variable: &'static str,
}

impl Args {
    /// Refuses a development token on a listener other machines can reach.
    pub fn check_tokens(&self) -> Result<(), DevelopmentToken> {
        let listeners = [
            self.control_plane_listen,
            self.ingest_listen,
            self.stats_listen,
        ];
        let Some(address) = listeners.into_iter().find(|a| !a.ip().is_loopback()) else {
            return Ok(());
        };
        let tokens = [
            (self.admin_token.expose(), DEV_ADMIN_TOKEN, "ADMIN_TOKEN"),
            (self.node_token.expose(), DEV_NODE_TOKEN, "NODE_TOKEN"),
            (self.ingest_token.expose(), DEV_INGEST_TOKEN, "INGEST_TOKEN"),
        ];
        match tokens.into_iter().find(|(token, dev, _)| token == dev) {
            Some((_, _, variable)) => Err(DevelopmentToken { address, variable }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn no_flag_is_needed() {
        let args = Args::try_parse_from(["eventconnectors"]).expect("defaults");
        assert_eq!(args.control_plane_listen.port(), 50051);
        assert_eq!(args.ingest_listen.port(), 50061);
        assert_eq!(args.stats_listen.port(), 50071);
        assert!(!args.no_demo);
        assert!(
            Args::try_parse_from(["eventconnectors", "--demo-events-per-second", "0"]).is_err()
        );
    }

    #[test]
    fn development_tokens_guard_loopback_only() {
        let parse = |flags: &[&str]| {
            Args::try_parse_from(["eventconnectors"].iter().chain(flags)).expect("flags")
        };
        assert!(parse(&[]).check_tokens().is_ok());
        let open = parse(&["--ingest-listen", "0.0.0.0:50061"]);
        let error = open
            .check_tokens()
            .expect_err("public with a development token");
        assert!(error.to_string().contains("ADMIN_TOKEN"), "{error}");
        let own = parse(&[
            "--ingest-listen",
            "0.0.0.0:50061",
            "--admin-token",
            "a",
            "--node-token",
            "n",
            "--ingest-token",
            "i",
        ]);
        assert!(own.check_tokens().is_ok());
    }
}

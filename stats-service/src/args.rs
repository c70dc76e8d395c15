//! Command-line flags, each with an environment-variable fallback.

use server_kit::auth::Secret;
use server_kit::serving::ServeFlags;
use server_kit::tls::{ServerTlsFlags, UpstreamTlsFlags};

use std::net::SocketAddr;
use std::time::Duration;

/// Stats-service configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "stats-service", version, about = "Delivery statistics")]
pub struct Args {
    /// Address the gRPC server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50071")]
    pub listen: SocketAddr,

    /// Address of the Prometheus metrics endpoint (`/metrics`).
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1:9465")]
    pub metrics_listen: SocketAddr,

    /// `redis://host:port/db` (`rediss://` for TLS), or with
    /// `REDIS_CLUSTER` the cluster's nodes; absent: counters kept in this
    /// process (lost on restart).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<Secret>,

    /// PEM CA bundle a `rediss://` server's certificate is checked against
    /// (instead of the public web roots).
    #[arg(long, env = "REDIS_CA")]
    pub redis_ca: Option<std::path::PathBuf>,

    /// `REDIS_URL` names a Redis Cluster: one or more of its nodes,
    /// comma-separated (`redis://a:6379,redis://b:6379`). The cluster
    /// client follows the slot map; each connector's part of a batch is
    /// applied on its own, since one batch's keys span many hash slots.
    #[arg(long, env = "REDIS_CLUSTER", default_value_t = false)]
    pub redis_cluster: bool,

    /// Prefix of every Redis key.
    #[arg(long, env = "REDIS_PREFIX", default_value = "ec")]
    pub redis_prefix: String,

    /// Bootstrap operator credential: reads and erases every connector's
    /// statistics (the control plane's eraser uses it).
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Secret,

    /// Token data-plane nodes send to report outcomes (their OUTCOMES_TOKEN;
    /// never the node token of the configuration feed).
    #[arg(long, env = "OUTCOMES_TOKEN", hide_env_values = true)]
    pub outcomes_token: Secret,

    /// Control-plane URLs (comma-separated) whose directory tells which
    /// workspace owns each connector and which API keys are valid. Unset:
    /// only ADMIN_TOKEN is accepted for reading statistics.
    #[arg(
        long = "control-plane",
        env = "CONTROL_PLANE_URLS",
        value_delimiter = ','
    )]
    pub control_plane: Vec<String>,

    /// Token for the control plane's directory (its DIRECTORY_TOKEN);
    /// required with CONTROL_PLANE_URLS.
    #[arg(long, env = "DIRECTORY_TOKEN", hide_env_values = true)]
    pub directory_token: Option<Secret>,

    /// How long hour buckets are kept (they serve ranges up to 48 h and
    /// time zones other than UTC).
    #[arg(long, env = "HOUR_RETENTION", default_value = "100days", value_parser = humantime::parse_duration)]
    pub hour_retention: Duration,

    /// How long day buckets are kept.
    #[arg(long, env = "DAY_RETENTION", default_value = "400days", value_parser = humantime::parse_duration)]
    pub day_retention: Duration,

    /// Longest range one query may span.
    #[arg(long, env = "MAX_RANGE", default_value = "400days", value_parser = humantime::parse_duration)]
    pub max_range: Duration,

    /// How long a batch id is remembered: a batch re-sent within it is
    /// counted once. A node re-sends a batch whose ack it lost when its next
    /// stream opens, so this must outlast an outage of the stats service.
    /// Each id costs about 150 bytes of Redis: a node sealing a batch a
    /// second costs about 13 MB per day of this.
    #[arg(long, env = "DEDUPE_TTL", default_value = "1day", value_parser = humantime::parse_duration)]
    pub dedupe_ttl: Duration,

    /// How long a deleted connector's tombstone discards late outcomes.
    #[arg(long, env = "TOMBSTONE_TTL", default_value = "30days", value_parser = humantime::parse_duration)]
    pub tombstone_ttl: Duration,

    /// TLS of this server (with TLS_CLIENT_CA, ReportOutcomes requires a
    /// node's client certificate).
    #[command(flatten)]
    pub tls: ServerTlsFlags,

    /// TLS towards the control plane's directory.
    #[command(flatten)]
    pub upstream: UpstreamTlsFlags,

    /// Shutdown and logging.
    #[command(flatten)]
    pub serve: ServeFlags,
}

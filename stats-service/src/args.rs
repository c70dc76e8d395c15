//! Command-line flags, each with an environment-variable fallback.

use std::net::SocketAddr;
use std::time::Duration;

/// Stats-service configuration.
#[derive(Clone, clap::Parser)]
#[command(name = "stats-service", version, about = "Delivery statistics")]
pub struct Args {
    /// Address the gRPC server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50071")]
    pub listen: SocketAddr,

    /// `redis://host:port/db`; absent: counters kept in this process (lost
    /// on restart).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key.
    #[arg(long, env = "REDIS_PREFIX", default_value = "ec")]
    pub redis_prefix: String,

    /// Token admins send to read and delete statistics.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,

    /// Token data-plane nodes send to report outcomes.
    #[arg(long, env = "NODE_TOKEN", hide_env_values = true)]
    pub node_token: String,

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
    /// counted once.
    #[arg(long, env = "DEDUPE_TTL", default_value = "7days", value_parser = humantime::parse_duration)]
    pub dedupe_ttl: Duration,

    /// How long a deleted connector's tombstone discards late outcomes.
    #[arg(long, env = "TOMBSTONE_TTL", default_value = "30days", value_parser = humantime::parse_duration)]
    pub tombstone_ttl: Duration,

    /// Longest wait for in-flight calls after SIGTERM.
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
            .field("redis", &self.redis_url.as_ref().map(|_| "<set>"))
            .field("redis_prefix", &self.redis_prefix)
            .field("hour_retention", &self.hour_retention)
            .field("day_retention", &self.day_retention)
            .field("max_range", &self.max_range)
            .field("dedupe_ttl", &self.dedupe_ttl)
            .field("tombstone_ttl", &self.tombstone_ttl)
            .finish_non_exhaustive()
    }
}

//! Command-line flags, each with an environment-variable fallback.

use std::net::SocketAddr;
use std::time::Duration;

use partners::base_urls::{BaseUrlError, BaseUrls, parse_override};
use server_kit::auth::Secret;
use server_kit::serving::ServeFlags;
use server_kit::tls::{ServerTlsFlags, UpstreamTlsFlags};

/// Data-plane node configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "data-plane",
    version,
    about = "Event ingest and delivery node",
    args_override_self = true
)]
pub struct Args {
    /// Address the gRPC server (ingest, health) listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50061")]
    pub listen: SocketAddr,

    /// Control-plane URLs, comma-separated; any replica will do.
    #[arg(
        long = "control-plane",
        env = "CONTROL_PLANE_URLS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50051"
    )]
    pub control_plane: Vec<String>,

    /// This node's id in ListNodes (default: the host name, which is the pod
    /// name on Kubernetes).
    #[arg(long, env = "NODE_ID")]
    pub node_id: Option<String>,

    /// Token for the control plane's configuration feed (it carries partner
    /// credentials: only nodes hold it).
    #[arg(long, env = "NODE_TOKEN", hide_env_values = true)]
    pub node_token: Secret,

    /// First delay before reconnecting to the control plane.
    #[arg(long, env = "CONFIG_BACKOFF_MIN", default_value = "100ms", value_parser = humantime::parse_duration)]
    pub config_backoff_min: Duration,

    /// Longest delay between reconnection attempts.
    #[arg(long, env = "CONFIG_BACKOFF_MAX", default_value = "10s", value_parser = humantime::parse_duration)]
    pub config_backoff_max: Duration,

    /// Token producers present on IngestService (`authorization: Bearer`).
    #[arg(long, env = "INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Secret,

    /// Stats service URL for delivery outcomes; without it outcomes are kept
    /// (bounded) and the loss is counted when the bound is reached.
    #[arg(long = "stats", env = "STATS_URL")]
    pub stats_url: Option<String>,

    /// Token the node presents to the stats service to report outcomes
    /// (the stats service's OUTCOMES_TOKEN). Required with STATS_URL, and
    /// different from NODE_TOKEN: the stats service must not hold the
    /// credential that reads partner credentials.
    #[arg(long, env = "OUTCOMES_TOKEN", hide_env_values = true)]
    pub outcomes_token: Option<Secret>,

    /// Address of the Prometheus metrics endpoint (`/metrics`).
    #[arg(long, env = "METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_listen: SocketAddr,

    /// Intake limits.
    #[command(flatten)]
    pub limits: Limits,

    /// Delivery tuning.
    #[command(flatten)]
    pub delivery: DeliveryFlags,

    /// Where partner requests go (sandboxes and tests override these).
    #[command(flatten)]
    pub partners: PartnerUrls,

    /// Internal addresses partner requests may go to (by default loopback,
    /// private, link-local, CGNAT, unique-local and the like are refused):
    /// comma-separated CIDR ranges, addresses, or `address:port` for one
    /// service named by a literal address in its URL.
    #[arg(long, env = "DESTINATION_ALLOWLIST", default_value = "")]
    pub destination_allowlist: String,

    /// TLS of IngestService.
    #[command(flatten)]
    pub tls: ServerTlsFlags,

    /// TLS towards the control plane and the stats service.
    #[command(flatten)]
    pub upstream: UpstreamTlsFlags,

    /// The durable event log (off by default: accepted events are kept in
    /// the node's memory).
    #[command(flatten)]
    pub event_log: EventLogFlags,
    /// Shutdown and logging.
    #[command(flatten)]
    pub serve: ServeFlags,
}

impl Args {
    /// The node id: the flag, else the host name.
    pub fn node_id(&self) -> String {
        self.node_id
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "data-plane".to_owned())
    }
}

/// What the node takes in.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Limits {
    /// Largest event, in bytes of JSON.
    #[arg(long, env = "MAX_EVENT_BYTES", default_value_t = crate::event::DEFAULT_MAX_EVENT_BYTES)]
    pub max_event_bytes: usize,

    /// Most events in one IngestRequest.
    #[arg(long, env = "MAX_BATCH_EVENTS", default_value_t = 10_000)]
    pub max_batch_events: usize,

    /// Largest gRPC message, in bytes.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Connections older than this are asked to go away once their calls
    /// end (at most the shutdown grace later): producers reconnect, and a
    /// load balancer spreads them over pods added since.
    #[arg(long, env = "MAX_CONNECTION_AGE", default_value = "10m", value_parser = humantime::parse_duration)]
    pub max_connection_age: Duration,

    /// Events waiting or in flight for one connector before ingest refuses
    /// more for it (QUEUE_FULL).
    #[arg(long, env = "CONNECTOR_QUEUE_CAPACITY", default_value_t = 100_000)]
    pub connector_queue_capacity: usize,

    /// Bytes of events waiting or in flight on the whole node (each event
    /// counted once per connector that holds it, as the partner gets it,
    /// plus about 0.25 KiB): the bound on queue memory. Past it, ingest
    /// refuses with QUEUE_FULL.
    #[arg(long, env = "NODE_QUEUE_BYTES", default_value = "256MiB", value_parser = parse_bytes)]
    pub node_queue_bytes: usize,

    /// The share (0 to 1] of NODE_QUEUE_BYTES one workspace's events may
    /// hold, so a workspace with a stalled partner cannot take the others'
    /// room.
    #[arg(long, env = "WORKSPACE_QUEUE_SHARE", default_value_t = 0.25, value_parser = parse_share)]
    pub workspace_queue_share: f64,

    /// Events waiting or in flight on the whole node (bounds memory: about
    /// 0.5 KiB each).
    #[arg(long, env = "NODE_QUEUE_CAPACITY", default_value_t = 1_000_000)]
    pub node_queue_capacity: usize,
}

/// How events are delivered.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DeliveryFlags {
    /// Time a partner has to answer one request.
    #[arg(long, env = "DELIVERY_TIMEOUT", default_value = "3s", value_parser = humantime::parse_duration)]
    pub delivery_timeout: Duration,

    /// Retries after a failed attempt (so 1 + this many attempts).
    #[arg(long, env = "DELIVERY_RETRIES", default_value_t = 3)]
    pub delivery_retries: u32,

    /// Ceiling of the first retry's jittered backoff; doubles per retry.
    #[arg(long, env = "RETRY_BACKOFF", default_value = "250ms", value_parser = humantime::parse_duration)]
    pub retry_backoff: Duration,

    /// How long a batch waits for more events before it is sent.
    #[arg(long, env = "BATCH_LINGER", default_value = "5ms", value_parser = humantime::parse_duration)]
    pub linger: Duration,

    /// Requests in flight per connector (its bulkhead).
    #[arg(long, env = "CONNECTOR_CONCURRENCY", default_value_t = 16)]
    pub connector_concurrency: usize,

    /// Circuit breaker: sliding window.
    #[arg(long, env = "BREAKER_WINDOW", default_value = "10s", value_parser = humantime::parse_duration)]
    pub breaker_window: Duration,

    /// Circuit breaker: fewest requests in the window before it may open.
    #[arg(long, env = "BREAKER_MIN_REQUESTS", default_value_t = 20)]
    pub breaker_min_requests: u32,

    /// Circuit breaker: failed share of requests (0-1) that opens it.
    #[arg(long, env = "BREAKER_ERROR_RATE", default_value_t = 0.5)]
    pub breaker_error_rate: f64,

    /// Circuit breaker: how long it stays open before a probe.
    #[arg(long, env = "BREAKER_OPEN_FOR", default_value = "30s", value_parser = humantime::parse_duration)]
    pub breaker_open_for: Duration,

    /// How often outcomes are sealed into a batch for the stats service.
    #[arg(long, env = "OUTCOME_FLUSH_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub outcome_flush_interval: Duration,

    /// Unacknowledged outcome batches kept while the stats service is away.
    #[arg(long, env = "OUTCOME_BUFFER_BATCHES", default_value_t = 3_600)]
    pub outcome_buffer_batches: usize,
}

/// The durable mode: accepted events are stored in a NATS JetStream stream
/// before ingest answers, and every node delivers from it. The stream and
/// its consumer are created at start, or brought to these settings; every
/// node must be given the same ones.
#[derive(Debug, Clone, clap::Args)]
pub struct EventLogFlags {
    /// `nats://host:4222` (or `tls://`; `user:password@` in the URL when
    /// the server wants it) turns the durable mode on.
    #[arg(long = "event-log", env = "EVENT_LOG")]
    pub url: Option<String>,
    /// The stream's name; its subject is `eventconnectors.<name>`.
    #[arg(long = "event-log-stream", env = "EVENT_LOG_STREAM", default_value = "EVENTCONNECTORS_EVENTS", value_parser = parse_stream_name)]
    pub stream: String,
    /// The durable consumer every node shares.
    #[arg(long = "event-log-consumer", env = "EVENT_LOG_CONSUMER", default_value = "delivery", value_parser = parse_stream_name)]
    pub consumer: String,
    /// Copies JetStream keeps of each event (3 on a three-server cluster;
    /// 1 on a single server).
    #[arg(
        long = "event-log-replicas",
        env = "EVENT_LOG_REPLICAS",
        default_value_t = 1
    )]
    pub replicas: usize,
    /// Longest an event may wait in the log for delivery. Past it JetStream
    /// removes it; see the README on what that means.
    #[arg(long = "event-log-max-age", env = "EVENT_LOG_MAX_AGE", default_value = "7days", value_parser = humantime::parse_duration)]
    pub max_age: Duration,
    /// Most bytes the log holds; past it ingest refuses new events
    /// (NOT_STORED), nothing stored is dropped.
    #[arg(long = "event-log-max-bytes", env = "EVENT_LOG_MAX_BYTES", default_value = "10GiB", value_parser = parse_bytes)]
    pub max_bytes: usize,
    /// A batch re-sent as it was (the same events, by workspace and `id`,
    /// in the same order) within this window is stored once. JetStream
    /// keeps the window's message ids in memory (about 100 bytes each, one
    /// per stored message of up to 1,000 events).
    #[arg(long = "event-log-dedup-window", env = "EVENT_LOG_DEDUP_WINDOW", default_value = "2m", value_parser = humantime::parse_duration)]
    pub dedup_window: Duration,
    /// How long a node may hold an event without a sign of life before
    /// JetStream gives it to another node. Nodes signal progress every
    /// third of it while they work on an event, so this bounds how long the
    /// events of a killed node wait, not how long delivery may take.
    #[arg(long = "event-log-ack-wait", env = "EVENT_LOG_ACK_WAIT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub ack_wait: Duration,
    /// Deliveries of one event (to nodes) after which it is not tried
    /// again: its connectors count it FAILED (OTHER) and it leaves the log.
    /// Guards against an event that makes every node holding it stop.
    #[arg(
        long = "event-log-max-deliveries",
        env = "EVENT_LOG_MAX_DELIVERIES",
        default_value_t = 10
    )]
    pub max_deliveries: u64,
    /// Events handed to nodes and not yet acknowledged, over all nodes,
    /// before JetStream waits (each node also holds at most
    /// NODE_QUEUE_CAPACITY).
    #[arg(
        long = "event-log-max-ack-pending",
        env = "EVENT_LOG_MAX_ACK_PENDING",
        default_value_t = 1_000_000
    )]
    pub max_ack_pending: i64,
}

/// A stream or consumer name: letters, digits, `-` and `_`.
fn parse_stream_name(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("`{text}`: use 1 to 64 letters, digits, `-` or `_`"))
    }
}

/// Where partner requests go (webhooks carry their own URL): the catalog's
/// default base URL unless overridden.
#[derive(Debug, Clone, clap::Args)]
pub struct PartnerUrls {
    /// A partner's base URL as `partner=url`, e.g.
    /// `meta_capi=http://127.0.0.1:9000` (repeatable; the environment
    /// variable takes a comma-separated list).
    #[arg(
        long = "partner-base-url",
        env = "PARTNER_BASE_URLS",
        value_delimiter = ',',
        value_parser = parse_override
    )]
    pub overrides: Vec<(String, String)>,

    /// GA4's base URL (older name of `--partner-base-url ga4=...`).
    #[arg(long, env = "GA4_BASE_URL", hide = true)]
    pub ga4_base_url: Option<String>,

    /// Meta's base URL (older name of `--partner-base-url meta_capi=...`).
    #[arg(long, env = "META_BASE_URL", hide = true)]
    pub meta_base_url: Option<String>,

    /// TikTok's base URL (older name of `--partner-base-url tiktok=...`).
    #[arg(long, env = "TIKTOK_BASE_URL", hide = true)]
    pub tiktok_base_url: Option<String>,
}

impl PartnerUrls {
    /// Each partner's base URL: the overrides and their older names over
    /// the catalog's defaults. A partner given two different URLs is an
    /// error, not a guess.
    pub fn base_urls(&self) -> Result<BaseUrls, BaseUrlError> {
        let aliases = [
            ("ga4", &self.ga4_base_url),
            ("meta_capi", &self.meta_base_url),
            ("tiktok", &self.tiktok_base_url),
        ];
        let aliased = aliases
            .into_iter()
            .filter_map(|(partner, url)| Some((partner, url.as_deref()?)));
        let listed = self
            .overrides
            .iter()
            .map(|(partner, url)| (partner.as_str(), url.as_str()));
        BaseUrls::with_overrides(aliased.chain(listed))
    }
}

/// A size: bytes, or with `KiB`, `MiB` or `GiB`.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let unit = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}`: use B, KiB, MiB or GiB")),
    };
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| format!("`{text}` is not a size"))
}

/// A share: a number in (0, 1].
fn parse_share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!("`{text}` is not a share in (0, 1]")),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(flags: &[&str]) -> Result<Args, clap::Error> {
        let required = ["data-plane", "--node-token", "n", "--ingest-token", "i"];
        Args::try_parse_from(required.iter().chain(flags))
    }

    #[test]
    fn base_urls_come_from_one_repeatable_flag_and_the_older_names() {
        let args = parse(&[
            "--partner-base-url",
            "meta_capi=http://127.0.0.1:9000",
            "--partner-base-url",
            "tiktok=http://127.0.0.1:9001,ga4=http://127.0.0.1:9002",
        ])
        .expect("valid flags");
        let urls = args.partners.base_urls().expect("valid overrides");
        assert_eq!(urls.get("meta_capi"), "http://127.0.0.1:9000");
        assert_eq!(urls.get("tiktok"), "http://127.0.0.1:9001");
        assert_eq!(urls.get("ga4"), "http://127.0.0.1:9002");

        let args = parse(&["--meta-base-url", "http://127.0.0.1:9003"]).expect("valid flags");
        let urls = args.partners.base_urls().expect("valid overrides");
        assert_eq!(urls.get("meta_capi"), "http://127.0.0.1:9003");
        assert_eq!(urls.get("tiktok"), "https://business-api.tiktok.com");
    }

    #[test]
    fn a_bad_override_is_refused_at_start() {
        assert!(parse(&["--partner-base-url", "meta_capi"]).is_err());
        let args = parse(&["--partner-base-url", "myspace=http://x"]).expect("parses");
        assert!(matches!(
            args.partners.base_urls(),
            Err(BaseUrlError::UnknownPartner { .. })
        ));
        let args = parse(&[
            "--meta-base-url",
            "http://a",
            "--partner-base-url",
            "meta_capi=http://b",
        ])
        .expect("parses");
        assert_eq!(
            args.partners.base_urls(),
            Err(BaseUrlError::Conflict("meta_capi".into()))
        );
    }
}

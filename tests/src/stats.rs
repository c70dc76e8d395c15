//! A stats service on a loopback port, on Redis (a key prefix of its own)
//! or the in-process counters.

use std::net::SocketAddr;
use std::time::Duration;

use stats_service::args::Args;
use stats_service::clock::Clock;
use tokio::net::TcpListener;

use crate::server_task::{ServerTask, signalled};

/// The admin token every test stats service accepts (an operator there).
pub const STATS_ADMIN_TOKEN: &str = "test-stats-admin-token";
/// The token test stats services follow the control plane's directory
/// with (every test control plane accepts it).
pub const DIRECTORY_TOKEN: &str = "test-directory-token";
/// The token test nodes report outcomes with.
pub const OUTCOMES_TOKEN: &str = "test-outcomes-token";

/// Redis the tests use (TEST_REDIS_URL, default the local one).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The shared cluster's nodes, comma-separated (as `REDIS_URL` takes them
/// with `REDIS_CLUSTER`): `TEST_REDIS_CLUSTER_URLS`, by default the three
/// masters the test command starts on ports 7100-7102.
pub fn shared_cluster_urls() -> String {
    std::env::var("TEST_REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
        (7100..7103)
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// A cluster client for the shared cluster, for a test's own checks.
pub fn shared_cluster_client() -> redis::cluster::ClusterClient {
    redis::cluster::ClusterClient::new(shared_cluster_urls().split(',').collect::<Vec<_>>())
        .expect("cluster URLs")
}

/// Which counter store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Redis, under a unique key prefix removed at the end; a batch is one
    /// script.
    Redis,
    /// The shared Redis Cluster (three masters), through the cluster
    /// client: one script per connector part, keys spread over the masters.
    RedisCluster,
    /// The in-process store.
    Memory,
}

impl Backend {
    /// `REDIS_URL` for this backend (none for the in-process store).
    pub fn redis_url(self) -> Option<String> {
        match self {
            Self::Redis => Some(redis_url()),
            Self::RedisCluster => Some(shared_cluster_urls()),
            Self::Memory => None,
        }
    }

    /// A blocking connection for a test's own checks of single keys.
    pub fn connection(self) -> Box<dyn redis::ConnectionLike> {
        match self {
            Self::RedisCluster => Box::new(
                shared_cluster_client()
                    .get_connection()
                    .expect("the shared Redis Cluster"),
            ),
            _ => Box::new(
                redis::Client::open(redis_url())
                    .expect("redis url")
                    .get_connection()
                    .expect("redis reachable"),
            ),
        }
    }
}

/// Every server a test's keys may be on: the standalone Redis and each
/// master of the shared cluster (those that answer).
fn servers() -> Vec<redis::Connection> {
    std::iter::once(redis_url())
        .chain(shared_cluster_urls().split(',').map(str::to_owned))
        .filter_map(|url| redis::Client::open(url).ok()?.get_connection().ok())
        .collect()
}

/// Keys under a prefix, removed (with every key under it) on drop.
#[derive(Debug)]
pub struct RedisPrefix(pub String);

impl RedisPrefix {
    /// A unique prefix.
    pub fn new() -> Self {
        Self(format!("ec-test-{}", uuid::Uuid::now_v7().simple()))
    }

    /// Every key under the prefix, on the standalone Redis and on the
    /// shared cluster.
    pub fn keys(&self) -> Vec<String> {
        servers()
            .iter_mut()
            .flat_map(|connection| self.keys_on(connection))
            .collect()
    }

    fn keys_on(&self, connection: &mut redis::Connection) -> Vec<String> {
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.0))
                .arg("COUNT")
                .arg(1000)
                .query(connection)
                .expect("scan");
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }
}

impl Default for RedisPrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        for mut connection in servers() {
            // One key per UNLINK: a cluster node refuses keys of different
            // slots in one command.
            let mut pipe = redis::pipe();
            for key in self.keys_on(&mut connection) {
                pipe.cmd("UNLINK").arg(key).ignore();
            }
            let _: Result<(), _> = pipe.query(&mut connection);
        }
    }
}

/// A running stats service; stopped on drop.
#[derive(Debug)]
pub struct StatsHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its Redis key prefix.
    pub prefix: String,
    server: ServerTask<stats_service::StartError>,
}

impl StatsHandle {
    /// Starts a stats service on `addr` (port 0 for any), with its keys
    /// under `prefix` when on Redis.
    pub async fn start(backend: Backend, prefix: &RedisPrefix, addr: SocketAddr) -> Self {
        Self::start_at(backend, prefix, addr, Clock::System).await
    }

    /// Starts like [`StatsHandle::start`], telling time by `clock`.
    pub async fn start_at(
        backend: Backend,
        prefix: &RedisPrefix,
        addr: SocketAddr,
        clock: Clock,
    ) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind");
        Self::start_on(backend, prefix, listener, clock, None).await
    }

    /// Starts on `listener`, following the directory of the control plane
    /// at `control_plane` if given.
    pub async fn start_on(
        backend: Backend,
        prefix: &RedisPrefix,
        listener: TcpListener,
        clock: Clock,
        control_plane: Option<String>,
    ) -> Self {
        let redis = backend
            .redis_url()
            .map(|url| (url, backend == Backend::RedisCluster));
        Self::start_with(redis, prefix, listener, clock, control_plane).await
    }

    /// Starts on a loopback port with its counters on the Redis Cluster
    /// whose nodes `urls` lists.
    pub async fn start_on_cluster(urls: &str, prefix: &RedisPrefix) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_with(
            Some((urls.to_owned(), true)),
            prefix,
            listener,
            Clock::System,
            None,
        )
        .await
    }

    /// `redis`: the URL and whether it is a cluster; none: in process.
    async fn start_with(
        redis: Option<(String, bool)>,
        prefix: &RedisPrefix,
        listener: TcpListener,
        clock: Clock,
        control_plane: Option<String>,
    ) -> Self {
        crate::init_logs();
        let addr = listener.local_addr().expect("addr");
        let days = |n: u64| Duration::from_secs(n * 86_400);
        let args = Args {
            listen: addr,
            metrics_listen: "127.0.0.1:0".parse().expect("addr"),
            redis_url: redis.as_ref().map(|(url, _)| url.as_str().into()),
            redis_cluster: redis.as_ref().is_some_and(|(_, cluster)| *cluster),
            redis_ca: None,
            redis_prefix: prefix.0.clone(),
            admin_token: STATS_ADMIN_TOKEN.into(),
            outcomes_token: OUTCOMES_TOKEN.into(),
            control_plane: control_plane.into_iter().collect(),
            directory_token: Some(DIRECTORY_TOKEN.into()),
            hour_retention: days(100),
            day_retention: days(400),
            max_range: days(400),
            dedupe_ttl: days(7),
            tombstone_ttl: days(30),
            tls: server_kit::tls::ServerTlsFlags::default(),
            upstream: server_kit::tls::UpstreamTlsFlags::default(),
            serve: server_kit::serving::ServeFlags {
                shutdown_grace: Duration::from_secs(2),
                log_json: false,
            },
        };
        let server = stats_service::StatsServer::start(&args, clock)
            .await
            .expect("stats service starts");
        let server = ServerTask::spawn(|stopped| server.serve(listener, signalled(stopped)));
        Self {
            addr,
            prefix: prefix.0.clone(),
            server,
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A channel to it.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(self.url())
            .expect("uri")
            .connect()
            .await
            .expect("connect to stats service")
    }

    /// Stops it and waits.
    pub async fn stop(self) {
        self.server.stop().await.expect("stats serves");
    }
}

/// Sends `batches` on one `ReportOutcomes` stream (outcomes token) and returns
/// the acknowledged batch ids, in the order the acks came.
pub async fn report(
    client: &mut eventconnectors_proto::v1::stats_service_client::StatsServiceClient<
        tonic::transport::Channel,
    >,
    batches: Vec<eventconnectors_proto::v1::OutcomeBatch>,
) -> Vec<String> {
    use futures::StreamExt;
    let expected = batches.len();
    let request = crate::with_token(
        futures::stream::iter(batches).chain(futures::stream::pending()),
        OUTCOMES_TOKEN,
    );
    let mut acks = client
        .report_outcomes(request)
        .await
        .expect("report")
        .into_inner();
    let mut ids = Vec::with_capacity(expected);
    while ids.len() < expected {
        let ack = tokio::time::timeout(Duration::from_secs(30), acks.message())
            .await
            .expect("ack in time")
            .expect("stream ok")
            .expect("stream open");
        ids.push(ack.batch_id);
    }
    ids
}

/// GetConnectorStats of `connector_id` over the last 7 days, with the
/// stats admin token.
pub fn last_7_days(
    connector_id: &str,
) -> tonic::Request<eventconnectors_proto::v1::GetConnectorStatsRequest> {
    crate::with_token(
        eventconnectors_proto::v1::GetConnectorStatsRequest {
            connector_id: connector_id.to_owned(),
            preset: eventconnectors_proto::v1::StatsPreset::Last7Days as i32,
            ..Default::default()
        },
        STATS_ADMIN_TOKEN,
    )
}

//! A stats service on a loopback port, on Redis (a key prefix of its own)
//! or the in-process counters.

use std::net::SocketAddr;
use std::time::Duration;

use stats_service::args::Args;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::control_plane::{ADMIN_TOKEN, NODE_TOKEN};

/// Redis the tests use (TEST_REDIS_URL, default the local one).
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Which counter store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Redis, under a unique key prefix removed at the end.
    Redis,
    /// The in-process store.
    Memory,
}

/// Keys under a prefix, removed (with every key under it) on drop.
#[derive(Debug)]
pub struct RedisPrefix(pub String);

impl RedisPrefix {
    /// A unique prefix.
    pub fn new() -> Self {
        Self(format!("ec-test-{}", uuid::Uuid::now_v7().simple()))
    }

    /// Every key under the prefix.
    pub fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(redis_url()).expect("redis url");
        let mut connection = client.get_connection().expect("redis reachable");
        let mut keys = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.0))
                .arg("COUNT")
                .arg(1000)
                .query(&mut connection)
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
        let Ok(client) = redis::Client::open(redis_url()) else {
            return;
        };
        let Ok(mut connection) = client.get_connection() else {
            return;
        };
        let keys = self.keys();
        for chunk in keys.chunks(500) {
            let _: Result<(), _> = redis::cmd("UNLINK").arg(chunk).query(&mut connection);
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
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), stats_service::StartError>>>,
}

impl StatsHandle {
    /// Starts a stats service on `addr` (port 0 for any), with its keys
    /// under `prefix` when on Redis.
    pub async fn start(backend: Backend, prefix: &RedisPrefix, addr: SocketAddr) -> Self {
        crate::init_logs();
        let days = |n: u64| Duration::from_secs(n * 86_400);
        let args = Args {
            listen: addr,
            redis_url: (backend == Backend::Redis).then(redis_url),
            redis_prefix: prefix.0.clone(),
            admin_token: ADMIN_TOKEN.to_owned(),
            node_token: NODE_TOKEN.to_owned(),
            hour_retention: days(100),
            day_retention: days(400),
            max_range: days(400),
            dedupe_ttl: days(7),
            tombstone_ttl: days(30),
            shutdown_grace: Duration::from_secs(2),
            log_json: false,
        };
        let server = stats_service::StatsServer::start(&args)
            .await
            .expect("stats service starts");
        let listener = TcpListener::bind(args.listen).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            prefix: prefix.0.clone(),
            shutdown: Some(shutdown),
            task: Some(task),
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
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("stats task").expect("stats serves");
        }
    }
}

impl Drop for StatsHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

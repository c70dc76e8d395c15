//! The way to Redis: one server through a connection manager, or a Redis
//! Cluster through the redis crate's cluster client, which follows the
//! cluster's slot map and its MOVED and ASK redirections (a slot moved to
//! another master, a replica promoted) and retries TRYAGAIN: a script whose
//! keys are split between two masters while their slot migrates gets it
//! until the move ends. Everything above speaks to either through one
//! `ConnectionLike`.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::CounterError;

/// Longest wait for the first connection at start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one answer of a cluster node.
const CLUSTER_RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Retries of one command after a redirection, TRYAGAIN (a slot being
/// migrated) or a lost node, each after a random wait between 10 ms and
/// 10 ms × 2^n (at most 500 ms): 1 to 2.5 s in all, after which the batch
/// fails and the node re-sends it (counted once: its id is remembered with
/// its counts).
const CLUSTER_RETRIES: u32 = 10;
const CLUSTER_MIN_RETRY_WAIT_MS: u64 = 10;
const CLUSTER_MAX_RETRY_WAIT_MS: u64 = 500;

/// Where the counters live.
#[derive(Clone)]
pub enum RedisTarget {
    /// One Redis server.
    Server(redis::Client),
    /// A Redis Cluster, reached through any of its nodes.
    Cluster(redis::cluster::ClusterClient),
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No URL: it may hold a password.
        f.write_str(match self {
            Self::Server(_) => "RedisTarget::Server",
            Self::Cluster(_) => "RedisTarget::Cluster",
        })
    }
}

impl RedisTarget {
    /// `urls`: one server URL, or with `cluster` one or more of the
    /// cluster's nodes separated by commas. With `tls`, a `rediss://`
    /// server must present a certificate that its CA signed.
    pub fn new(
        urls: &str,
        cluster: bool,
        tls: Option<redis::TlsCertificates>,
    ) -> Result<Self, CounterError> {
        if !cluster {
            return Ok(Self::Server(match tls {
                Some(tls) => redis::Client::build_with_tls(urls, tls)?,
                None => redis::Client::open(urls)?,
            }));
        }
        let nodes: Vec<&str> = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .collect();
        let mut builder = ClusterClientBuilder::new(nodes)
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(CLUSTER_RESPONSE_TIMEOUT)
            .retries(CLUSTER_RETRIES)
            .min_retry_wait(CLUSTER_MIN_RETRY_WAIT_MS)
            .max_retry_wait(CLUSTER_MAX_RETRY_WAIT_MS);
        if let Some(tls) = tls {
            builder = builder.certs(tls);
        }
        Ok(Self::Cluster(builder.build()?))
    }

    /// A connection that reconnects by itself. The first one is awaited
    /// here, bounded: a wrong address, password or TLS certificate stops
    /// the start with its reason instead of a client retrying in the
    /// background.
    pub(super) async fn connect(&self) -> Result<RedisConnection, CounterError> {
        match self {
            Self::Server(client) => {
                bounded(client.get_multiplexed_async_connection()).await?;
                Ok(RedisConnection::Server(
                    ConnectionManager::new(client.clone()).await?,
                ))
            }
            Self::Cluster(client) => bounded(client.get_async_connection())
                .await
                .map(RedisConnection::Cluster),
        }
    }

    /// Whether this is a Redis Cluster.
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }
}

/// `connecting`, given [`CONNECT_TIMEOUT`].
async fn bounded<T>(
    connecting: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, CounterError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(CounterError::ConnectTimeout(CONNECT_TIMEOUT)),
    }
}

/// A connection to one server or to a cluster; cheap to clone (clones
/// share the connection).
#[derive(Clone)]
pub(super) enum RedisConnection {
    Server(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Server(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Server(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Server(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

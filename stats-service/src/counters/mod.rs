//! Where counters live: Redis in production, an in-process map when no Redis
//! URL is given. Both hold the same keys and fields with the same semantics;
//! everything above them (what to increment, what to read, how to sum) is
//! shared, so the two cannot disagree.
//!
//! Every key of a connector carries its id as a hash tag
//! (`<prefix>:{<connector>}:...`), so a connector's keys share one Redis
//! Cluster slot and one script can touch them all atomically.

mod apply_script;
mod connection;
mod group_commit;
mod memory;
mod redis_store;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub use connection::RedisTarget;
pub use memory::MemoryCounters;
pub use redis_store::RedisCounters;

use crate::batch::{Applied, ConnectorBatch};

/// How long the markers live.
#[derive(Debug, Clone, Copy)]
pub struct MarkerTtls {
    /// How long a batch id is remembered (longer than any re-send).
    pub dedupe: Duration,
    /// How long a deleted connector's tombstone lasts (longer than any
    /// outcome can be in flight).
    pub tombstone: Duration,
    /// How long sample messages live after their last update.
    pub samples: Duration,
}

/// A counter store failure.
#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    /// Redis failed or is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis failed while writing a group of batches (each gets the error).
    #[error("redis: {0}")]
    Shared(Arc<redis::RedisError>),
    /// Redis did not answer the first connection in time.
    #[error("redis: no connection within {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// The group writer is gone (the service is stopping).
    #[error("the counter writer stopped")]
    WriterStopped,
}

/// The counter store.
#[derive(Debug, Clone)]
pub enum Counters {
    /// Redis or a Redis Cluster.
    Redis(RedisCounters),
    /// In this process; gone on restart.
    Memory(MemoryCounters),
}

impl Counters {
    /// Applies one connector's part of batch `batch_id` atomically and at
    /// most once.
    pub async fn apply(
        &self,
        batch_id: &str,
        part: &ConnectorBatch,
    ) -> Result<Applied, CounterError> {
        match self {
            Self::Redis(store) => store.apply(batch_id, part).await,
            Self::Memory(store) => Ok(store.apply(batch_id, part)),
        }
    }

    /// Applies every connector part of batch `batch_id`, each atomically and
    /// at most once: with the batches queued beside it in one script on a
    /// standalone Redis, one script per part on a Redis Cluster, one lock per
    /// part in process.
    pub async fn apply_batch(
        &self,
        batch_id: &str,
        parts: Vec<ConnectorBatch>,
    ) -> Result<Vec<Applied>, CounterError> {
        match self {
            Self::Redis(store) => store.apply_batch(batch_id, parts).await,
            Self::Memory(store) => Ok(parts
                .iter()
                .map(|part| store.apply(batch_id, part))
                .collect()),
        }
    }

    /// The fields of each bucket (empty when absent), in order.
    pub async fn read(
        &self,
        connector_id: &str,
        buckets: &[String],
    ) -> Result<Vec<HashMap<String, i64>>, CounterError> {
        match self {
            Self::Redis(store) => store.read(connector_id, buckets).await,
            Self::Memory(store) => Ok(store.read(connector_id, buckets)),
        }
    }

    /// Sample messages by group field.
    pub async fn samples(
        &self,
        connector_id: &str,
    ) -> Result<HashMap<String, String>, CounterError> {
        match self {
            Self::Redis(store) => store.samples(connector_id).await,
            Self::Memory(store) => Ok(store.samples(connector_id)),
        }
    }

    /// The connector's recent failures (encoded, newest first) and how many
    /// were ever pushed to them (a position that survives the trim).
    pub async fn recent_failures(
        &self,
        connector_id: &str,
    ) -> Result<(u64, Vec<Vec<u8>>), CounterError> {
        match self {
            Self::Redis(store) => store.recent_failures(connector_id).await,
            Self::Memory(store) => Ok(store.recent_failures(connector_id)),
        }
    }

    /// Tombstones the connector (later batches are discarded), then removes
    /// `buckets` and its samples.
    pub async fn erase(&self, connector_id: &str, buckets: &[String]) -> Result<(), CounterError> {
        match self {
            Self::Redis(store) => store.erase(connector_id, buckets).await,
            Self::Memory(store) => {
                store.erase(connector_id);
                Ok(())
            }
        }
    }
}

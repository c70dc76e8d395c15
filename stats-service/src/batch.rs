//! What intake writes: an outcome batch split per connector into bucket
//! increments and sample messages, and what became of each part. The
//! counter stores apply these; intake, the group merge and the metrics
//! speak of them.

use std::sync::Arc;

/// A bucket or field name, allocated once per batch and shared by the
/// connector parts that use it.
pub type Name = Arc<str>;

/// Increments to one bucket key, which expires at `expire_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketWrite {
    /// Key suffix under the connector, e.g. `h:2026112917`.
    pub bucket: Name,
    /// Field increments.
    pub fields: Vec<(Name, i64)>,
    /// When the bucket expires (unix seconds): its start plus the retention.
    pub expire_at: i64,
}

/// One connector's part of an outcome batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorBatch {
    /// The connector.
    pub connector_id: String,
    /// Bucket increments.
    pub writes: Vec<BucketWrite>,
    /// Sample messages by group field.
    pub samples: Vec<(Name, String)>,
    /// Failed events (encoded `FailedEvent`s), oldest first.
    pub failures: Vec<Vec<u8>>,
}

/// What became of a connector batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Counted now.
    Applied,
    /// Already counted (a re-sent batch).
    Duplicate,
    /// The connector's statistics were deleted: discarded.
    Tombstoned,
}

//! The one script that writes outcome counts to Redis (`apply.lua`), and
//! how it is called: through the redis crate's script API, which sends it
//! by hash and loads it once when Redis does not know it yet. Group commit
//! hands it many batches merged per connector; Redis Cluster mode hands it
//! one batch's part for one connector, a group of one.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::MarkerTtls;
use eventconnectors_proto::limits::RECENT_FAILURES;

use crate::batch::{Applied, ConnectorBatch, Name};
use crate::clock::wall_now;

/// One bucket's increments: borrowed from a batch while only one batch
/// wrote the bucket (the common case when connectors do not repeat).
#[derive(Debug)]
pub(super) struct PartWrite<'a> {
    /// The bucket under the connector (`h:2026112917`).
    pub bucket: &'a str,
    /// When the bucket expires (unix seconds).
    pub expire_at: i64,
    /// Field increments.
    pub fields: Cow<'a, [(Name, i64)]>,
}

/// One connector's increments in a script.
#[derive(Debug)]
pub(super) struct Part<'a> {
    /// The connector.
    pub connector_id: &'a str,
    /// Buckets in first-seen order.
    pub writes: Vec<PartWrite<'a>>,
    /// (group field, message); a later batch's message replaces an earlier.
    pub samples: Cow<'a, [(Name, String)]>,
    /// Failed events (encoded), oldest first.
    pub failures: Cow<'a, [Vec<u8>]>,
}

impl<'a> Part<'a> {
    /// One batch's part, as it came (borrowed, not copied).
    pub(super) fn of(part: &'a ConnectorBatch) -> Self {
        Self {
            connector_id: &part.connector_id,
            writes: part
                .writes
                .iter()
                .map(|write| PartWrite {
                    bucket: &write.bucket,
                    expire_at: write.expire_at,
                    fields: Cow::Borrowed(&write.fields),
                })
                .collect(),
            samples: Cow::Borrowed(&part.samples),
            failures: Cow::Borrowed(&part.failures),
        }
    }
}

/// What a script did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Written {
    /// Nothing: these batches (1-based, in the order given) were seen
    /// before.
    Seen(Vec<usize>),
    /// Applied, with each part's fate in the order given.
    Applied(Vec<Applied>),
}

/// Key suffix of a connector's recent failures (a list, newest first).
pub(super) const FAILURES: &str = "failures";
/// Key suffix of how many failures were ever pushed to that list (what
/// keeps pages still while new failures arrive).
pub(super) const FAILURES_PUSHED: &str = "failures-pushed";

/// Forgotten batch ids are pruned on one write in sixteen.
fn prune_this_time() -> bool {
    static WRITES: AtomicU32 = AtomicU32::new(0);
    WRITES.fetch_add(1, Ordering::Relaxed).is_multiple_of(16)
}

/// `duration` in whole seconds, at least one (Redis refuses a zero TTL).
pub(super) fn seconds(duration: Duration) -> u64 {
    duration.as_secs().max(1)
}

/// The apply script, for keys under one prefix.
#[derive(Debug)]
pub(super) struct ApplyScript {
    script: redis::Script,
    prefix: String,
    ttls: MarkerTtls,
}

impl ApplyScript {
    /// The script for keys starting with `prefix`.
    pub(super) fn new(prefix: &str, ttls: MarkerTtls) -> Self {
        Self {
            script: redis::Script::new(include_str!("apply.lua")),
            prefix: prefix.to_owned(),
            ttls,
        }
    }

    /// Key `suffix` of `connector`: `<prefix>:{<connector>}:<suffix>`, the
    /// connector's hash tag keeping its keys in one Redis Cluster slot.
    pub(super) fn key(&self, connector: &str, suffix: &str) -> String {
        format!("{}:{{{connector}}}:{suffix}", self.prefix)
    }

    /// Where batch ids are remembered on a standalone Redis (one set for
    /// every connector).
    pub(super) fn batches_key(&self) -> String {
        format!("{}:batches", self.prefix)
    }

    /// Applies `parts` for the batches `batch_ids`, remembered in
    /// `batches_key`: all of it, or nothing if one id was seen before.
    pub(super) async fn run(
        &self,
        connection: &mut impl redis::aio::ConnectionLike,
        batches_key: &str,
        batch_ids: &[&str],
        parts: &[Part<'_>],
    ) -> Result<Written, redis::RedisError> {
        let mut invocation = self.script.key(batches_key);
        for part in parts {
            invocation.key(self.key(part.connector_id, "tomb"));
            if !part.samples.is_empty() {
                invocation.key(self.key(part.connector_id, "samples"));
            }
            if !part.failures.is_empty() {
                invocation
                    .key(self.key(part.connector_id, FAILURES))
                    .key(self.key(part.connector_id, FAILURES_PUSHED));
            }
            for write in &part.writes {
                invocation.key(self.key(part.connector_id, write.bucket));
            }
        }
        invocation
            .arg(seconds(self.ttls.dedupe))
            .arg(seconds(self.ttls.samples))
            .arg(wall_now())
            .arg(u8::from(prune_this_time()))
            .arg(RECENT_FAILURES)
            .arg(batch_ids.len());
        for id in batch_ids {
            invocation.arg(*id);
        }
        invocation.arg(parts.len());
        for part in parts {
            invocation
                .arg(part.writes.len())
                .arg(part.samples.len())
                .arg(part.failures.len());
        }
        for part in parts {
            let mut previous: Option<&[(Name, i64)]> = None;
            for write in &part.writes {
                invocation.arg(write.expire_at);
                // An hour bucket and its day bucket usually get the same
                // increments: sent once.
                if previous == Some(&write.fields) {
                    invocation.arg(-1);
                } else {
                    invocation.arg(write.fields.len());
                    for (field, by) in write.fields.iter() {
                        invocation.arg(&**field).arg(*by);
                    }
                }
                previous = Some(&write.fields);
            }
            for (field, message) in part.samples.iter() {
                invocation.arg(&**field).arg(message.as_str());
            }
            for failure in part.failures.iter() {
                invocation.arg(failure.as_slice());
            }
        }
        let reply: Vec<i64> = invocation.invoke_async(connection).await?;
        let (&kind, rest) = reply.split_first().unwrap_or((&1, &[]));
        if kind == 0 {
            return Ok(Written::Seen(
                rest.iter()
                    .map(|&i| usize::try_from(i).unwrap_or(0))
                    .collect(),
            ));
        }
        Ok(Written::Applied(
            rest.iter()
                .map(|&status| {
                    if status == 2 {
                        Applied::Tombstoned
                    } else {
                        Applied::Applied
                    }
                })
                .collect(),
        ))
    }
}

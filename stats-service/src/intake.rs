//! Turns an outcome batch from a node into per-connector counter writes.

use std::collections::{HashMap, HashSet};

use eventconnectors_proto::limits::{RECENT_FAILURES, failed_event_id, failure_message};
use eventconnectors_proto::v1::{ErrorCategory, FailedEvent, Outcome, OutcomeBatch};
use prost::Message;

use crate::batch::{BucketWrite, ConnectorBatch, Name};
use crate::fields;
use crate::named_lists;
use crate::ranges::{self, Retention, secs};

const DAY: i64 = 86_400;

/// Longest batch id.
const MAX_BATCH_ID: usize = 128;
/// Largest count: far above any node's flush, far below where sums of
/// counts could overflow a counter.
const MAX_COUNT: u64 = 1 << 40;
/// Longest stored sample message.
const MAX_SAMPLE_CHARS: usize = 512;
/// Longest partner code, target field or reason of a failed event.
const MAX_FAILURE_FIELD_CHARS: usize = 256;

/// When a bucket expires: its start plus its retention.
fn expiry(bucket: &str, retention: Retention) -> i64 {
    let start = ranges::bucket_start(bucket).unwrap_or_default();
    let keep = if bucket.starts_with("h:") {
        retention.hours
    } else {
        retention.days
    };
    start.saturating_add(secs(keep))
}

/// The field names a batch uses, each allocated once and shared by its
/// parts: names repeat across connectors.
#[derive(Default)]
struct Names(HashSet<Name, foldhash::fast::RandomState>);

impl Names {
    fn get(&mut self, name: &str) -> Name {
        if let Some(shared) = self.0.get(name) {
            return Name::clone(shared);
        }
        let shared = Name::from(name);
        self.0.insert(Name::clone(&shared));
        shared
    }
}

/// The batch split by connector (in order of first appearance), or why it
/// is malformed. Counts in buckets older than the day retention are
/// skipped (they would expire at once).
pub fn split(
    batch: &OutcomeBatch,
    now: i64,
    retention: Retention,
) -> Result<Vec<ConnectorBatch>, String> {
    if batch.batch_id.is_empty() || batch.batch_id.len() > MAX_BATCH_ID {
        return Err(format!("batch_id: required, at most {MAX_BATCH_ID} bytes"));
    }
    let mut parts: Vec<ConnectorBatch> = Vec::new();
    let mut index: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut names = Names::default();
    let mut lists = named_lists::Index::default();
    // Each hour's bucket names (hour, day) with their expiry, once per batch.
    let mut hours: HashMap<i64, [(Name, i64); 2], foldhash::fast::RandomState> = HashMap::default();
    let mut group = String::new();
    for (at_index, count) in batch.counts.iter().enumerate() {
        let at = |field: &str| format!("counts[{at_index}].{field}");
        if count.connector_id.is_empty() {
            return Err(format!("{}: required", at("connector_id")));
        }
        let Some(bucket_start) = count.bucket_start else {
            return Err(format!("{}: required", at("bucket_start")));
        };
        if count.count > MAX_COUNT {
            return Err(format!("{}: at most {MAX_COUNT}", at("count")));
        }
        let by = i64::try_from(count.count).unwrap_or(i64::MAX);
        if by == 0 {
            continue;
        }
        let outcome = Outcome::try_from(count.outcome).unwrap_or(Outcome::Unspecified);
        let (total, grouped) = match outcome {
            Outcome::Delivered => (fields::DELIVERED, false),
            Outcome::Dropped => (fields::DROPPED, false),
            Outcome::Failed => {
                let category =
                    ErrorCategory::try_from(count.category).unwrap_or(ErrorCategory::Unspecified);
                let category = if category == ErrorCategory::Unspecified {
                    ErrorCategory::Other
                } else {
                    category
                };
                fields::connector_group(&mut group, category, &count.partner_code);
                (fields::FAILED, true)
            }
            Outcome::TransformationError => {
                fields::transformation_group(&mut group, &count.target_field, &count.reason);
                (fields::TRANSFORMATION_ERRORS, true)
            }
            Outcome::Unspecified => return Err(format!("{}: required", at("outcome"))),
        };
        let hour = ranges::floor_hour(bucket_start.seconds);
        // Buckets past their retention would expire at once; buckets more
        // than a day ahead come from a broken clock and could never be
        // erased (erasing covers up to a day ahead).
        if hour < now - secs(retention.days) || hour > now + DAY {
            continue;
        }
        let p = *index.entry(&count.connector_id).or_insert_with(|| {
            parts.push(ConnectorBatch {
                connector_id: count.connector_id.clone(),
                writes: Vec::new(),
                samples: Vec::new(),
                failures: Vec::new(),
            });
            parts.len() - 1
        });
        let part = &mut parts[p];
        let total = names.get(total);
        let group = grouped.then(|| names.get(&group));
        let buckets = hours.entry(hour).or_insert_with(|| {
            [ranges::hour_bucket(hour), ranges::day_bucket(hour)].map(|bucket| {
                let expire_at = expiry(&bucket, retention);
                (Name::from(bucket), expire_at)
            })
        });
        for (bucket, expire_at) in buckets.iter() {
            // An hour bucket older than the hour retention (while its day
            // is still kept): writing it would create a key past its expiry.
            if *expire_at <= now {
                continue;
            }
            let buckets_slot = (p, named_lists::BUCKETS);
            let w = match named_lists::position(&part.writes, bucket, buckets_slot, &lists) {
                Some(w) => w,
                None => {
                    part.writes.push(BucketWrite {
                        bucket: Name::clone(bucket),
                        fields: Vec::new(),
                        expire_at: *expire_at,
                    });
                    named_lists::pushed(&part.writes, buckets_slot, &mut lists);
                    part.writes.len() - 1
                }
            };
            let fields = &mut part.writes[w].fields;
            named_lists::add(fields, &total, by, (p, w), &mut lists);
            if let Some(group) = &group {
                named_lists::add(fields, group, by, (p, w), &mut lists);
            }
        }
        if let Some(group) = group
            && !count.sample_message.is_empty()
        {
            let message = count
                .sample_message
                .chars()
                .take(MAX_SAMPLE_CHARS)
                .collect();
            let slot = (p, named_lists::SAMPLES);
            match named_lists::position(&part.samples, &group, slot, &lists) {
                Some(kept) => part.samples[kept].1 = message,
                None => {
                    part.samples.push((group, message));
                    named_lists::pushed(&part.samples, slot, &mut lists);
                }
            }
        }
    }
    add_failures(batch, now, retention, &mut parts, &mut index);
    parts.retain(|part| {
        !part.writes.is_empty() || !part.samples.is_empty() || !part.failures.is_empty()
    });
    Ok(parts)
}

/// `text` cut to `chars` characters.
fn capped(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

/// Adds the batch's failed events to their connectors' parts, encoded:
/// the newest [`RECENT_FAILURES`] per connector (more would be trimmed at
/// once), text capped, those past the day retention skipped. A failed
/// event that cannot be listed (no connector, id or time, not a failure)
/// is skipped: the list is informative, and refusing the batch would lose
/// its counts.
fn add_failures<'a>(
    batch: &'a OutcomeBatch,
    now: i64,
    retention: Retention,
    parts: &mut Vec<ConnectorBatch>,
    index: &mut HashMap<&'a str, usize, foldhash::fast::RandomState>,
) {
    let mut kept: HashMap<&str, usize, foldhash::fast::RandomState> = HashMap::default();
    // Newest last in the batch: walked from the end, the newest are kept.
    let mut failures: Vec<(usize, Vec<u8>)> = Vec::new();
    for failure in batch.failures.iter().rev() {
        let outcome = Outcome::try_from(failure.outcome).unwrap_or(Outcome::Unspecified);
        let (Some(when), false, false, true) = (
            failure.at,
            failure.connector_id.is_empty(),
            failure.event_id.is_empty(),
            matches!(outcome, Outcome::Failed | Outcome::TransformationError),
        ) else {
            tracing::debug!(batch_id = %batch.batch_id, "a failed event that cannot be listed is skipped");
            continue;
        };
        if when.seconds < now - secs(retention.days) || when.seconds > now + DAY {
            continue;
        }
        let count = kept.entry(&failure.connector_id).or_default();
        if *count == RECENT_FAILURES {
            continue;
        }
        *count += 1;
        let stored = FailedEvent {
            connector_id: String::new(),
            event_id: failed_event_id(&failure.event_id).to_owned(),
            at: Some(when),
            outcome: failure.outcome,
            category: failure.category,
            partner_code: capped(&failure.partner_code, MAX_FAILURE_FIELD_CHARS),
            target_field: capped(&failure.target_field, MAX_FAILURE_FIELD_CHARS),
            reason: capped(&failure.reason, MAX_FAILURE_FIELD_CHARS),
            attempts: failure.attempts,
            message: failure_message(&failure.message).to_owned(),
        };
        let p = *index.entry(&failure.connector_id).or_insert_with(|| {
            parts.push(ConnectorBatch {
                connector_id: failure.connector_id.clone(),
                writes: Vec::new(),
                samples: Vec::new(),
                failures: Vec::new(),
            });
            parts.len() - 1
        });
        failures.push((p, stored.encode_to_vec()));
    }
    // Back to oldest first.
    for (p, encoded) in failures.into_iter().rev() {
        parts[p].failures.push(encoded);
    }
}

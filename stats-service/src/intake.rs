//! Turns an outcome batch from a node into per-connector counter writes.

use std::collections::BTreeMap;

use eventconnectors_proto::v1::{ErrorCategory, Outcome, OutcomeBatch};

use crate::counters::{BucketWrite, ConnectorBatch};
use crate::fields;
use crate::ranges::{self, Retention, secs};

const DAY: i64 = 86_400;

/// Longest batch id.
const MAX_BATCH_ID: usize = 128;
/// Longest stored sample message.
const MAX_SAMPLE_CHARS: usize = 512;

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

/// Adds `by` to `field`, allocating its name only the first time.
fn add(fields: &mut BTreeMap<String, i64>, field: &str, by: i64) {
    match fields.get_mut(field) {
        Some(value) => *value += by,
        None => {
            fields.insert(field.to_owned(), by);
        }
    }
}

/// The batch split by connector, or why it is malformed. Counts in buckets
/// older than the day retention are skipped (they would expire at once).
pub fn split(
    batch: &OutcomeBatch,
    now: i64,
    retention: Retention,
) -> Result<Vec<ConnectorBatch>, String> {
    if batch.batch_id.is_empty() || batch.batch_id.len() > MAX_BATCH_ID {
        return Err(format!("batch_id: required, at most {MAX_BATCH_ID} bytes"));
    }
    type Buckets = BTreeMap<String, BTreeMap<String, i64>>;
    let mut by_connector: BTreeMap<&str, (Buckets, BTreeMap<String, String>)> = BTreeMap::new();
    // Counts of a batch share few hours: name each hour's buckets once.
    let mut names: std::collections::HashMap<i64, [String; 2]> = std::collections::HashMap::new();
    let mut group = String::new();
    for (index, count) in batch.counts.iter().enumerate() {
        let at = |field: &str| format!("counts[{index}].{field}");
        if count.connector_id.is_empty() {
            return Err(format!("{}: required", at("connector_id")));
        }
        let Some(bucket_start) = count.bucket_start else {
            return Err(format!("{}: required", at("bucket_start")));
        };
        let by = i64::try_from(count.count).map_err(|_| format!("{}: too large", at("count")))?;
        if by == 0 {
            continue;
        }
        let outcome = Outcome::try_from(count.outcome).unwrap_or(Outcome::Unspecified);
        // The group's field is written into one buffer per batch; it is
        // allocated only when a bucket gets a field it did not have.
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
        let (buckets, samples) = by_connector.entry(&count.connector_id).or_default();
        let names = names
            .entry(hour)
            .or_insert_with(|| [ranges::hour_bucket(hour), ranges::day_bucket(hour)]);
        for bucket in names.iter() {
            let fields = match buckets.get_mut(bucket) {
                Some(fields) => fields,
                None => buckets.entry(bucket.clone()).or_default(),
            };
            add(fields, total, by);
            if grouped {
                add(fields, &group, by);
            }
        }
        if grouped && !count.sample_message.is_empty() {
            samples.insert(
                group.clone(),
                count
                    .sample_message
                    .chars()
                    .take(MAX_SAMPLE_CHARS)
                    .collect(),
            );
        }
    }
    Ok(by_connector
        .into_iter()
        .map(|(connector_id, (buckets, samples))| ConnectorBatch {
            connector_id: connector_id.to_owned(),
            batch_id: batch.batch_id.clone(),
            writes: buckets
                .into_iter()
                .map(|(bucket, fields)| BucketWrite {
                    expire_at: expiry(&bucket, retention),
                    bucket,
                    fields: fields.into_iter().collect(),
                })
                // An hour bucket older than the hour retention (while its day
                // is still kept): writing it would create a key past its expiry.
                .filter(|write| write.expire_at > now)
                .collect(),
            samples: samples.into_iter().collect(),
        })
        .collect())
}

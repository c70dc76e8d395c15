//! Sums bucket hashes into what GetConnectorStats returns.

use std::collections::HashMap;

use eventconnectors_proto::v1::{
    ConnectorErrorGroup, GetConnectorStatsResponse, OutcomeTotals, SeriesPoint,
    TransformationErrorGroup,
};

use crate::fields::{self, Group};
use crate::ranges::Plan;

fn timestamp(unix: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: unix,
        nanos: 0,
    }
}

fn add(totals: &mut OutcomeTotals, bucket: &HashMap<String, i64>) {
    let get = |field: &str| u64::try_from(bucket.get(field).copied().unwrap_or(0)).unwrap_or(0);
    totals.delivered += get(fields::DELIVERED);
    totals.failed += get(fields::FAILED);
    totals.transformation_errors += get(fields::TRANSFORMATION_ERRORS);
    totals.dropped += get(fields::DROPPED);
}

/// The response for `plan`, given each point's bucket hashes in plan order
/// (`buckets` is the flattened list) and the connector's sample messages.
pub fn summarize(
    plan: &Plan,
    buckets: &[HashMap<String, i64>],
    samples: &HashMap<String, String>,
) -> GetConnectorStatsResponse {
    let mut totals = OutcomeTotals::default();
    let mut groups: HashMap<Group, u64> = HashMap::new();
    let mut series = Vec::with_capacity(plan.points.len());
    let mut next = buckets.iter();
    for point in &plan.points {
        let mut point_totals = OutcomeTotals::default();
        for bucket in next.by_ref().take(point.buckets.len()) {
            add(&mut point_totals, bucket);
            for (field, count) in bucket {
                if let Some(group) = Group::parse(field) {
                    *groups.entry(group).or_default() += u64::try_from(*count).unwrap_or(0);
                }
            }
        }
        totals.delivered += point_totals.delivered;
        totals.failed += point_totals.failed;
        totals.transformation_errors += point_totals.transformation_errors;
        totals.dropped += point_totals.dropped;
        series.push(SeriesPoint {
            start: Some(timestamp(point.start)),
            totals: Some(point_totals),
        });
    }
    let mut groups: Vec<(Group, u64)> =
        groups.into_iter().filter(|(_, count)| *count > 0).collect();
    groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut connector_errors = Vec::new();
    let mut transformation_errors = Vec::new();
    for (group, count) in groups {
        let sample_message = samples.get(&group.field()).cloned().unwrap_or_default();
        match group {
            Group::Connector {
                category,
                partner_code,
            } => connector_errors.push(ConnectorErrorGroup {
                category: category as i32,
                partner_code,
                count,
                sample_message,
            }),
            Group::Transformation {
                target_field,
                reason,
            } => transformation_errors.push(TransformationErrorGroup {
                target_field,
                reason,
                count,
                sample_message,
            }),
        }
    }
    GetConnectorStatsResponse {
        from: Some(timestamp(plan.from)),
        to: Some(timestamp(plan.to)),
        totals: Some(totals),
        granularity: plan.granularity as i32,
        series,
        connector_errors,
        transformation_errors,
    }
}

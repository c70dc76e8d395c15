//! Properties of what the stats service does with what nodes and admins
//! send: the intake split of any outcome batch, and the planning of any
//! range. A clear error or a correct result, never a panic.

use std::time::Duration;

use eventconnectors_proto::limits::{MAX_FAILURE_MESSAGE_CHARS, RECENT_FAILURES};
use eventconnectors_proto::v1::{FailedEvent, OutcomeBatch, OutcomeCount, StatsPreset};
use proptest::prelude::*;
use prost::Message;
use stats_service::intake::split;
use stats_service::ranges::{RangeRequest, Retention, plan};

const NOW: i64 = 1_796_000_000;

fn retention() -> Retention {
    let days = |n: u64| Duration::from_secs(n * 86_400);
    Retention {
        hours: days(100),
        days: days(400),
        max_span: days(400),
    }
}

fn count() -> impl Strategy<Value = OutcomeCount> {
    (
        ".{0,20}",
        prop::option::of(any::<i64>()),
        any::<i32>(),
        any::<i32>(),
        ".{0,20}",
        ".{0,20}",
        any::<u64>(),
        ".{0,40}",
    )
        .prop_map(
            |(connector_id, at, outcome, category, code, reason, count, sample)| OutcomeCount {
                connector_id,
                bucket_start: at.map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
                outcome,
                category,
                partner_code: code,
                target_field: reason.clone(),
                reason,
                count,
                sample_message: sample,
            },
        )
}

fn failure() -> impl Strategy<Value = FailedEvent> {
    (
        prop_oneof![Just("c".to_owned()), ".{0,4}"],
        prop_oneof![".{0,10}", ".{250,260}"],
        prop::option::of(prop_oneof![
            NOW - 500 * 86_400..NOW + 2 * 86_400,
            any::<i64>()
        ]),
        prop_oneof![2..4i32, any::<i32>()],
        ".{0,10}",
        prop_oneof![".{0,20}", ".{495,505}"],
        any::<u32>(),
    )
        .prop_map(
            |(connector_id, event_id, at, outcome, code, message, attempts)| FailedEvent {
                connector_id,
                event_id,
                at: at.map(|seconds| prost_types::Timestamp { seconds, nanos: 0 }),
                outcome,
                partner_code: code,
                message,
                attempts,
                ..FailedEvent::default()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_batch_splits_into_parts_or_is_refused_with_a_reason(
        batch_id in ".{0,200}",
        counts in prop::collection::vec(count(), 0..20),
        failures in prop::collection::vec(failure(), 0..105),
    ) {
        let batch = OutcomeBatch { batch_id, node_id: "n".into(), counts, failures };
        match split(&batch, NOW, retention()) {
            Ok(parts) => {
                for part in &parts {
                    prop_assert!(!part.connector_id.is_empty());
                    prop_assert!(part.failures.len() <= RECENT_FAILURES);
                    for encoded in &part.failures {
                        let kept = FailedEvent::decode(encoded.as_slice()).expect("decodes");
                        prop_assert!(kept.message.chars().count() <= MAX_FAILURE_MESSAGE_CHARS);
                        prop_assert!(!kept.event_id.is_empty() && kept.event_id.len() <= 256);
                        prop_assert!(kept.outcome == 2 || kept.outcome == 3);
                    }
                }
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn any_range_is_planned_or_refused_naming_the_field(
        preset in prop_oneof![Just(0i32), 1..4i32, any::<i32>()],
        from in prop::option::of(prop_oneof![NOW - 400 * 86_400..NOW + 86_400, any::<i64>()]),
        to in prop::option::of(prop_oneof![NOW - 400 * 86_400..NOW + 86_400, any::<i64>()]),
        zone in prop_oneof![Just(String::new()), Just("Europe/Paris".to_owned()), Just("Asia/Kolkata".to_owned()), ".{0,20}"],
    ) {
        let request = RangeRequest { preset, from, to, time_zone: &zone };
        match plan(&request, NOW, retention()) {
            Ok(plan) => {
                prop_assert!(!plan.points.is_empty());
                prop_assert!(plan.points.len() <= 400 * 24);
            }
            Err(violations) => prop_assert!(violations.iter().next().is_some()),
        }
        let _ = StatsPreset::try_from(preset);
    }
}

//! Whether an event reaches a connector: its type is among the filter's
//! event types (or the list is empty) and the property condition holds.

use eventconnectors_proto::v1::{ConditionOperator, EventFilter, PropertyCondition};
use serde_json::Value;

use super::path::lookup;

/// Whether `event` (of type `event_type`) passes `filter` (none: all pass).
pub fn matches(filter: Option<&EventFilter>, event_type: &str, event: &Value) -> bool {
    let Some(filter) = filter else {
        return true;
    };
    if !filter.event_types.is_empty() && !filter.event_types.iter().any(|t| t == event_type) {
        return false;
    }
    filter
        .condition
        .as_ref()
        .is_none_or(|condition| holds(condition, event))
}

fn holds(condition: &PropertyCondition, event: &Value) -> bool {
    let value = lookup(event, &condition.path);
    let equals = || {
        value.is_some_and(|value| match value {
            Value::String(text) => *text == condition.value,
            Value::Number(number) => number.to_string() == condition.value,
            Value::Bool(flag) => flag.to_string() == condition.value,
            // Objects and arrays are not values a condition compares.
            _ => false,
        })
    };
    match ConditionOperator::try_from(condition.operator).unwrap_or(ConditionOperator::Unspecified)
    {
        ConditionOperator::Equals => equals(),
        ConditionOperator::NotEquals => !equals(),
        ConditionOperator::Exists => value.is_some(),
        ConditionOperator::NotExists => value.is_none(),
        // Rejected on create; a node never lets such a filter through.
        ConditionOperator::Unspecified => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn filter(types: &[&str], condition: Option<(&str, ConditionOperator, &str)>) -> EventFilter {
        EventFilter {
            event_types: types.iter().map(|t| (*t).to_owned()).collect(),
            condition: condition.map(|(path, operator, value)| PropertyCondition {
                path: path.to_owned(),
                operator: operator as i32,
                value: value.to_owned(),
            }),
        }
    }

    #[test]
    fn types_and_conditions() {
        let event = json!({"type": "Purchase", "properties": {"country": "FR", "items": 3}});
        assert!(matches(None, "Purchase", &event));
        assert!(matches(Some(&filter(&[], None)), "Purchase", &event));
        assert!(matches(
            Some(&filter(&["Purchase", "Lead"], None)),
            "Purchase",
            &event
        ));
        assert!(!matches(Some(&filter(&["Lead"], None)), "Purchase", &event));
        let country = |op, value| filter(&["Purchase"], Some(("properties.country", op, value)));
        assert!(matches(
            Some(&country(ConditionOperator::Equals, "FR")),
            "Purchase",
            &event
        ));
        assert!(!matches(
            Some(&country(ConditionOperator::Equals, "DE")),
            "Purchase",
            &event
        ));
        assert!(matches(
            Some(&country(ConditionOperator::NotEquals, "DE")),
            "Purchase",
            &event
        ));
        assert!(matches(
            Some(&country(ConditionOperator::Exists, "")),
            "Purchase",
            &event
        ));
        assert!(!matches(
            Some(&country(ConditionOperator::NotExists, "")),
            "Purchase",
            &event
        ));
        let items = filter(
            &[],
            Some(("properties.items", ConditionOperator::Equals, "3")),
        );
        assert!(
            matches(Some(&items), "Purchase", &event),
            "numbers compare as text"
        );
        let missing = filter(
            &[],
            Some(("properties.coupon", ConditionOperator::NotEquals, "X")),
        );
        assert!(
            matches(Some(&missing), "Purchase", &event),
            "a missing value differs from anything"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Any filter against any event: a decision, never a panic; no
        /// filter lets everything through.
        #[test]
        fn any_filter_decides_on_any_event(
            types in proptest::collection::vec("[A-Za-z]{0,6}", 0..4),
            path in "[a-z.]{0,12}",
            operator in -1i32..6,
            value in ".{0,10}",
            event_type in "[A-Za-z]{0,6}",
            properties in proptest::collection::btree_map("[a-z]{1,4}", ".{0,6}", 0..4),
        ) {
            let filter = EventFilter {
                event_types: types,
                condition: Some(PropertyCondition { path, operator, value }),
            };
            let event = serde_json::json!({ "type": event_type.clone(), "properties": properties });
            let _ = matches(Some(&filter), &event_type, &event);
            proptest::prop_assert!(matches(None, &event_type, &event));
        }
    }
}

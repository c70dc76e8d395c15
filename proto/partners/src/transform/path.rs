//! Dotted paths into JSON: reading a raw event's value, writing a partner
//! field into a nested object.

use serde_json::{Map, Value};

/// The value at `path` (`properties.order.total`), if present and not null.
pub fn lookup<'v>(event: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(event, |value, segment| value.as_object()?.get(segment))
        .filter(|value| !value.is_null())
}

/// Sets `path` in `object`, creating the objects on the way. A non-object
/// in the way is replaced.
pub fn insert(object: &mut Map<String, Value>, path: &str, value: Value) {
    let mut segments = path.split('.').peekable();
    let mut current = object;
    while let Some(segment) = segments.next() {
        if segments.peek().is_none() {
            current.insert(segment.to_owned(), value);
            return;
        }
        let next = current
            .entry(segment.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            *next = Value::Object(Map::new());
        }
        current = next.as_object_mut().expect("just made an object");
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_nested_values_and_treats_null_as_missing() {
        let event =
            json!({"properties": {"order": {"total": 12.5}, "none": null}, "type": "Purchase"});
        assert_eq!(lookup(&event, "properties.order.total"), Some(&json!(12.5)));
        assert_eq!(lookup(&event, "type"), Some(&json!("Purchase")));
        assert_eq!(lookup(&event, "properties.none"), None);
        assert_eq!(lookup(&event, "properties.order.total.cents"), None);
        assert_eq!(lookup(&event, "missing"), None);
    }

    #[test]
    fn writes_nested_fields() {
        let mut object = Map::new();
        insert(&mut object, "user_data.em", json!("h1"));
        insert(&mut object, "user_data.ph", json!("h2"));
        insert(&mut object, "event_name", json!("Purchase"));
        assert_eq!(
            Value::Object(object),
            json!({"user_data": {"em": "h1", "ph": "h2"}, "event_name": "Purchase"})
        );
    }
}

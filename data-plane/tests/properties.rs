//! Properties of what the node does with whatever producers send: parsing
//! an event and transforming it for every partner's default mappings.
//! Deeply nested JSON, huge strings, numbers beyond i64 and f64, NaN and
//! Infinity spelled out, duplicate keys, bytes that are not UTF-8: a clear
//! rejection or a correct result, never a panic.

use data_plane::event::parse;
use eventconnectors_proto::v1::ConnectorConfig;
use partners::transform::Transformer;
use proptest::prelude::*;
use serde_json::{Value, json};

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[-+]?[0-9]{1,40}(\\\\.[0-9]{1,10})?([eE][-+]?[0-9]{1,4})?".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_.]{0,8}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// An event whose every field the catalogs read may be anything.
fn event() -> impl Strategy<Value = String> {
    (json(), json(), json(), json(), json()).prop_map(
        |(user, context, properties, timestamp, extra)| {
            json!({
                "id": "e-1", "workspace_id": "w", "type": "Purchase",
                "timestamp": timestamp, "user": user, "context": context,
                "properties": properties, "extra": extra,
            })
            .to_string()
        },
    )
}

fn connector(partner: &str) -> ConnectorConfig {
    let settings = match partner {
        "webhook" => vec![("url", "https://hooks.example/in")],
        "meta_capi" => vec![("pixel_id", "123456789012345")],
        "ga4" => vec![("measurement_id", "G-ABC123")],
        "tiktok" => vec![("pixel_code", "C4ABCDEF")],
        "snapchat" => vec![("pixel_id", "a1b2c3")],
        "pinterest" => vec![("ad_account_id", "549755885175")],
        _ => vec![],
    };
    ConnectorConfig {
        id: format!("c-{partner}"),
        workspace_id: "w".into(),
        partner: partner.into(),
        settings: settings
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..ConnectorConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_text_is_an_event_or_a_reason(text in prop_oneof![
        ".{0,300}",
        json().prop_map(|v| v.to_string()),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ], scope in prop::option::of("[a-z]{1,5}")) {
        match parse(&text, 64 * 1024, scope.as_deref()) {
            Ok(event) => {
                prop_assert!(!event.id().is_empty() && !event.event_type().is_empty());
                if let Some(own) = &scope {
                    prop_assert_eq!(event.workspace_id(), own.as_str());
                }
            }
            Err(rejected) => prop_assert!(!rejected.detail.is_empty()),
        }
    }

    #[test]
    fn every_partner_transforms_any_event_or_says_which_field(text in event()) {
        let event = parse(&text, 1 << 20, None).expect("a well-formed event");
        for spec in partners::PARTNERS {
            let transformer = Transformer::new(&connector(spec.id));
            prop_assert!(transformer.is_ok(), "{}: {:?}", spec.id, transformer.err());
            let Ok(transformer) = transformer else { continue };
            if let Err(error) = transformer.apply(&event.body) {
                prop_assert!(!error.target_field.is_empty() && !error.reason.is_empty());
            }
        }
    }
}

#[test]
fn hostile_shapes_are_rejected_not_fatal() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let wide = format!(
        r#"{{"id":"e","workspace_id":"w","type":"t","p":"{}"}}"#,
        "x".repeat(70_000)
    );
    let cases = [
        deep.as_str(),
        wide.as_str(),
        r#"{"id":"e","workspace_id":"w","type":"t","n":1e400}"#,
        r#"{"id":"e","workspace_id":"w","type":"t","n":NaN}"#,
        r#"{"id":"e","workspace_id":"w","type":"t","n":Infinity}"#,
        r#"{"id":"e","id":"f","workspace_id":"w","type":"t"}"#,
        r#"{"id":"e","workspace_id":"w","type":"t","n":123456789012345678901234567890}"#,
        "\u{0}",
    ];
    for text in cases {
        let _ = parse(text, 64 * 1024, None);
    }
    assert!(
        parse(&deep, 1 << 20, None).is_err(),
        "nesting beyond the parser's limit"
    );
    assert!(
        parse(&wide, 64 * 1024, None).is_err(),
        "over the size limit"
    );
}

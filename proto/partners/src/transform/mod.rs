//! Turns a raw event into a partner's fields, per a connector's mappings and
//! the catalog's defaults: read the source path (or the constant, or the
//! default), convert it to its datatype, hash personal identifiers as the
//! partner requires, write timestamps in the partner's format. A value that
//! cannot take its datatype is a transformation error for that connector and
//! event, named by target field and reason.

mod filter;
mod path;

use crate::catalog::{Normalization, PartnerSpec, TimestampFormat};
use crate::datatype::{Coerced, coerce};
use crate::normalize::hash;
use eventconnectors_proto::v1::{ConnectorConfig, DataType};
use serde_json::{Map, Value};

pub use filter::matches;
pub use path::{insert, lookup};

/// A field that could not be filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target_field}: {reason}")]
pub struct TransformError {
    /// The partner field.
    pub target_field: String,
    /// Why (stable text, grouped in statistics).
    pub reason: String,
}

#[derive(Debug, Clone)]
enum Source {
    Path(String),
    Constant(Value),
}

#[derive(Debug, Clone)]
struct Rule {
    target: String,
    source: Source,
    data_type: DataType,
    required: bool,
    default: Option<Value>,
    normalization: Normalization,
}

/// A connector's transformation, compiled once per configuration.
#[derive(Debug, Clone)]
pub struct Transformer {
    rules: Vec<Rule>,
    /// Forward the raw event unchanged (a webhook with no mappings).
    raw: bool,
    timestamps: TimestampFormat,
}

fn literal(text: &Option<String>) -> Result<Option<Value>, String> {
    text.as_deref()
        .map(|text| {
            serde_json::from_str(text).map_err(|_| format!("`{text}` is not a JSON literal"))
        })
        .transpose()
}

impl Transformer {
    /// Compiles `config`'s mappings over its partner's catalog defaults.
    pub fn new(config: &ConnectorConfig) -> Result<Self, String> {
        let partner: &PartnerSpec = crate::partner(&config.partner)
            .ok_or_else(|| format!("unknown partner `{}`", config.partner))?;
        let mut rules = Vec::new();
        for mapping in &config.mappings {
            let field = partner
                .field(&mapping.target)
                .ok_or_else(|| format!("`{}` is not a field of {}", mapping.target, partner.id))?;
            let source = match literal(&mapping.constant)? {
                Some(constant) => Source::Constant(constant),
                None => Source::Path(mapping.source.clone()),
            };
            rules.push(Rule {
                target: mapping.target.clone(),
                source,
                data_type: DataType::try_from(mapping.r#type).unwrap_or(DataType::Unspecified),
                required: mapping.required,
                default: literal(&mapping.default_value)?,
                normalization: field.normalization,
            });
        }
        for field in partner.fields {
            let Some(source) = field.default_source else {
                continue;
            };
            if config.mappings.iter().any(|m| m.target == field.path) {
                continue;
            }
            rules.push(Rule {
                target: field.path.to_owned(),
                source: Source::Path(source.to_owned()),
                data_type: field.default_type,
                required: false,
                default: None,
                normalization: field.normalization,
            });
        }
        Ok(Self {
            rules,
            raw: partner.forwards_raw_event && config.mappings.is_empty(),
            timestamps: partner.timestamps,
        })
    }

    /// Whether the raw event goes to the partner unchanged (its original
    /// text, not a re-serialization).
    pub fn forwards_raw(&self) -> bool {
        self.raw
    }

    /// The partner's fields for `event`.
    pub fn apply(&self, event: &Value) -> Result<Value, TransformError> {
        if self.raw {
            return Ok(event.clone());
        }
        let mut fields = Map::new();
        for rule in &self.rules {
            let value = match &rule.source {
                Source::Constant(constant) => Some(constant),
                Source::Path(path) => lookup(event, path).or(rule.default.as_ref()),
            };
            let Some(value) = value else {
                if rule.required {
                    return Err(error(rule, "missing"));
                }
                continue;
            };
            let coerced = coerce(rule.data_type, value).map_err(|e| error(rule, &e.reason()))?;
            insert(&mut fields, &rule.target, self.write(rule, coerced)?);
        }
        Ok(Value::Object(fields))
    }

    fn write(&self, rule: &Rule, value: Coerced) -> Result<Value, TransformError> {
        Ok(match value {
            Coerced::Text(text) if rule.data_type == DataType::Sha256 => Value::String(
                hash(rule.normalization, &text).map_err(|reason| error(rule, reason))?,
            ),
            Coerced::Text(text) => Value::String(text),
            Coerced::Integer(integer) => Value::from(integer),
            Coerced::Number(number) => Value::from(number),
            Coerced::Boolean(flag) => Value::Bool(flag),
            Coerced::Timestamp(at) => match self.timestamps {
                TimestampFormat::UnixSeconds => Value::from(at.as_second()),
                TimestampFormat::UnixMicros => Value::from(at.as_microsecond()),
                TimestampFormat::Rfc3339 => Value::String(at.to_string()),
            },
        })
    }
}

fn error(rule: &Rule, reason: &str) -> TransformError {
    TransformError {
        target_field: rule.target.clone(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use eventconnectors_proto::v1::FieldMapping;
    use serde_json::json;

    use super::*;

    fn connector(partner: &str, mappings: Vec<FieldMapping>) -> ConnectorConfig {
        ConnectorConfig {
            id: "c".into(),
            workspace_id: "w".into(),
            partner: partner.into(),
            mappings,
            ..Default::default()
        }
    }

    fn mapping(source: &str, target: &str, data_type: DataType) -> FieldMapping {
        FieldMapping {
            source: source.into(),
            target: target.into(),
            r#type: data_type as i32,
            ..Default::default()
        }
    }

    fn event() -> Value {
        json!({
            "id": "evt-1",
            "workspace_id": "w",
            "type": "Purchase",
            "timestamp": "2025-11-29T17:00:00Z",
            "user": {"id": "U-42", "email": " John_Smith@gmail.com ", "phone": "+1 (650) 555-1212"},
            "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0", "page_url": "https://shop.example/checkout"},
            "properties": {"total": "19.99", "currency": "EUR", "items": 2, "coupon": null, "gift": "yes"}
        })
    }

    #[test]
    fn meta_defaults_hash_identifiers_and_write_unix_seconds() {
        let transformer = Transformer::new(&connector(
            "meta_capi",
            vec![
                mapping("properties.total", "custom_data.value", DataType::Number),
                mapping(
                    "properties.currency",
                    "custom_data.currency",
                    DataType::String,
                ),
            ],
        ))
        .expect("compiles");
        let out = transformer.apply(&event()).expect("transforms");
        assert_eq!(out["event_name"], "Purchase");
        assert_eq!(out["event_id"], "evt-1");
        assert_eq!(out["event_time"], 1_764_435_600);
        assert_eq!(
            out["custom_data"],
            json!({"value": 19.99, "currency": "EUR"})
        );
        assert_eq!(
            out["user_data"]["em"],
            "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
        );
        assert_eq!(
            out["user_data"]["ph"],
            "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
        );
        assert_eq!(out["user_data"]["client_ip_address"], "203.0.113.7");
        assert!(
            out["user_data"].get("fn").is_none(),
            "unmapped fields without a default are left out"
        );
    }

    #[test]
    fn ga4_writes_microseconds_and_google_email_rules() {
        let out = Transformer::new(&connector("ga4", vec![]))
            .expect("compiles")
            .apply(&json!({"type": "purchase", "timestamp": 1_764_435_600, "user": {"email": "John.Smith@gmail.com"}}))
            .expect("transforms");
        assert_eq!(out["timestamp_micros"], 1_764_435_600_000_000_i64);
        assert_eq!(out["name"], "purchase");
        let expected = hash(Normalization::Email, "johnsmith@gmail.com").expect("hash");
        assert_eq!(out["user_data"]["sha256_email_address"], expected);
    }

    #[test]
    fn a_webhook_without_mappings_forwards_the_raw_event() {
        let out = Transformer::new(&connector("webhook", vec![]))
            .expect("compiles")
            .apply(&event())
            .expect("transforms");
        assert_eq!(out, event());
        let mapped = Transformer::new(&connector(
            "webhook",
            vec![mapping("timestamp", "at", DataType::Timestamp)],
        ))
        .expect("compiles")
        .apply(&event())
        .expect("transforms");
        assert_eq!(mapped, json!({"at": "2025-11-29T17:00:00Z"}));
    }

    #[test]
    fn every_datatype_reports_what_it_cannot_take() {
        let cases = [
            (
                "properties.currency",
                "custom_data.n",
                DataType::Integer,
                "not an integer",
            ),
            (
                "properties.currency",
                "custom_data.value",
                DataType::Number,
                "not a number",
            ),
            (
                "properties.gift",
                "custom_data.gift",
                DataType::Boolean,
                "not a boolean",
            ),
            (
                "properties.currency",
                "custom_data.when",
                DataType::Timestamp,
                "not a timestamp",
            ),
            (
                "user",
                "custom_data.blob",
                DataType::String,
                "not a single value",
            ),
            (
                "properties.currency",
                "user_data.ph",
                DataType::Sha256,
                "not a phone number",
            ),
            (
                "properties.items",
                "user_data.em",
                DataType::Sha256,
                "not an email address",
            ),
        ];
        for (source, target, data_type, reason) in cases {
            let transformer = Transformer::new(&connector(
                "meta_capi",
                vec![mapping(source, target, data_type)],
            ))
            .expect("compiles");
            let error = transformer.apply(&event()).expect_err(target);
            assert_eq!(
                error,
                TransformError {
                    target_field: target.into(),
                    reason: reason.into()
                }
            );
        }
    }

    #[test]
    fn required_defaults_and_constants() {
        let mut required = mapping("properties.coupon", "custom_data.coupon", DataType::String);
        required.required = true;
        let error = Transformer::new(&connector("meta_capi", vec![required.clone()]))
            .expect("compiles")
            .apply(&event())
            .expect_err("missing");
        assert_eq!(error.reason, "missing");
        required.default_value = Some("\"NONE\"".into());
        let out = Transformer::new(&connector("meta_capi", vec![required]))
            .expect("compiles")
            .apply(&event())
            .expect("default fills it");
        assert_eq!(out["custom_data"]["coupon"], "NONE");
        let mut constant = mapping("", "action_source", DataType::String);
        constant.constant = Some("\"website\"".into());
        let out = Transformer::new(&connector("meta_capi", vec![constant]))
            .expect("compiles")
            .apply(&event())
            .expect("constant");
        assert_eq!(out["action_source"], "website");
        let optional = mapping("properties.coupon", "custom_data.coupon", DataType::String);
        let out = Transformer::new(&connector("meta_capi", vec![optional]))
            .expect("compiles")
            .apply(&event())
            .expect("optional");
        assert!(
            out["custom_data"].get("coupon").is_none(),
            "a missing optional field is left out"
        );
    }

    #[test]
    fn an_explicit_mapping_replaces_the_default() {
        let out = Transformer::new(&connector(
            "tiktok",
            vec![mapping("properties.currency", "event", DataType::String)],
        ))
        .expect("compiles")
        .apply(&event())
        .expect("transforms");
        assert_eq!(out["event"], "EUR");
        assert_eq!(out["event_time"], 1_764_435_600);
        assert!(Transformer::new(&connector("myspace", vec![])).is_err());
    }
}

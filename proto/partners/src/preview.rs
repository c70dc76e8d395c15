//! What a connector would send for one sample event, computed the way a
//! node computes it (the same filter, transformation and adapter), with
//! nothing sent: the admin API's PreviewTransformation. Every secret value
//! of the connector is replaced by `***` in what is shown.

use eventconnectors_proto::v1::{
    ConnectorConfig, PreviewRequest, PreviewTransformationResponse, TransformationFailure,
};
use serde_json::Value;

use crate::adapter::{PartnerRequest, Prepared};
use crate::redact::hide_secrets;
use crate::transform::{self, Transformer};

/// Largest sample event (bytes of JSON), as a node's default.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Why nothing can be previewed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PreviewError {
    /// The sample event would be refused at ingest, or not routed to the
    /// connector.
    #[error("{0}")]
    Event(String),
    /// The connector cannot be compiled (a stored connector a newer or
    /// older catalog no longer accepts).
    #[error("{0}")]
    Connector(String),
}

fn invalid(why: impl Into<String>) -> PreviewError {
    PreviewError::Event(why.into())
}

/// What a connector makes of one sample event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Built {
    /// Its filter leaves the event out: nothing would be sent.
    FilteredOut,
    /// A mapped field cannot be filled: nothing would be sent.
    Unfilled(TransformationFailure),
    /// The request its partner would get.
    Request(PartnerRequest),
}

/// What `config` makes of `event_json` for its partner at `base_url` at
/// unix time `now`: the same filter, transformation and adapter as a node.
pub fn build(
    config: &ConnectorConfig,
    event_json: &str,
    base_url: &str,
    now: i64,
) -> Result<Built, PreviewError> {
    if event_json.len() > MAX_EVENT_BYTES {
        return Err(invalid(format!(
            "{} bytes; the limit is {MAX_EVENT_BYTES}",
            event_json.len()
        )));
    }
    let event: Value =
        serde_json::from_str(event_json).map_err(|error| invalid(format!("not JSON: {error}")))?;
    let text = |name: &str| {
        event
            .get(name)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .ok_or_else(|| invalid(format!("`{name}`: required, a non-empty string")))
    };
    if !event.is_object() {
        return Err(invalid("not a JSON object"));
    }
    let (id, event_type) = (text("id")?, text("type")?);
    // A node routes an event to its own workspace's connectors only.
    if let Some(workspace) = event.get("workspace_id").and_then(Value::as_str)
        && workspace != config.workspace_id
    {
        return Err(invalid(format!(
            "`workspace_id` is `{workspace}` but the connector is in `{}`: it would never receive the event",
            config.workspace_id
        )));
    }
    if !transform::matches(config.filter.as_ref(), event_type, &event) {
        return Ok(Built::FilteredOut);
    }
    let partner = crate::partner(&config.partner)
        .ok_or_else(|| PreviewError::Connector(format!("unknown partner `{}`", config.partner)))?;
    let transformer = Transformer::new(config).map_err(PreviewError::Connector)?;
    let prepared = if transformer.forwards_raw() {
        Prepared::raw(id, event_json.to_owned())
    } else {
        match transformer.apply(&event) {
            Ok(fields) => partner.adapter.prepare(config, id, fields),
            Err(error) => {
                return Ok(Built::Unfilled(TransformationFailure {
                    target_field: error.target_field,
                    reason: error.reason,
                }));
            }
        }
    };
    partner
        .adapter
        .requests(config, std::slice::from_ref(&prepared), base_url, now)
        .into_iter()
        .next()
        .map(Built::Request)
        .ok_or_else(|| PreviewError::Connector("the adapter built no request".to_owned()))
}

/// `request` as shown to people: every secret of `config` (short ones
/// too: in a request the secret is certainly there, where in a partner's
/// message a short value would mostly match ordinary words) as `***`.
pub fn shown(config: &ConnectorConfig, request: &PartnerRequest) -> PreviewRequest {
    let scrub = |text: &str| hide_secrets(text, config.secrets.values().map(String::as_str), 1);
    let mut headers: std::collections::BTreeMap<String, String> = request
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), scrub(value)))
        .collect();
    headers.insert("content-type".into(), "application/json".into());
    PreviewRequest {
        method: "POST".into(),
        url: scrub(&request.url),
        headers,
        body: scrub(&String::from_utf8_lossy(&request.body)),
    }
}

/// What `config` would send for `event_json` to its partner at `base_url`
/// at unix time `now`.
pub fn preview(
    config: &ConnectorConfig,
    event_json: &str,
    base_url: &str,
    now: i64,
) -> Result<PreviewTransformationResponse, PreviewError> {
    Ok(match build(config, event_json, base_url, now)? {
        Built::FilteredOut => PreviewTransformationResponse::default(),
        Built::Unfilled(failure) => PreviewTransformationResponse {
            matches_filter: true,
            transformation_errors: vec![failure],
            request: None,
        },
        Built::Request(request) => PreviewTransformationResponse {
            matches_filter: true,
            transformation_errors: Vec::new(),
            request: Some(shown(config, &request)),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use eventconnectors_proto::v1::{
        ConditionOperator, DataType, EventFilter, FieldMapping, PropertyCondition,
    };

    use super::*;

    fn meta() -> ConnectorConfig {
        ConnectorConfig {
            id: "c1".into(),
            workspace_id: "w".into(),
            partner: "meta_capi".into(),
            settings: BTreeMap::from([("pixel_id".into(), "123456789012345".into())]),
            secrets: BTreeMap::from([("access_token".into(), "EAAB/secret+token".into())]),
            mappings: vec![FieldMapping {
                source: "properties.total".into(),
                target: "custom_data.value".into(),
                r#type: DataType::Number as i32,
                required: true,
                ..FieldMapping::default()
            }],
            ..ConnectorConfig::default()
        }
    }

    const ORDER: &str = r#"{"id":"evt-1","workspace_id":"w","type":"Order Completed","timestamp":"2026-11-30T10:00:00Z","properties":{"total":"49.90"},"context":{"traits":{"email":"Jane@Example.com"}}}"#;

    #[test]
    fn the_request_is_the_adapters_with_the_secrets_hidden() {
        let shown =
            preview(&meta(), ORDER, "https://graph.facebook.com", 1_796_000_000).expect("previews");
        assert!(shown.matches_filter);
        assert!(shown.transformation_errors.is_empty());
        let request = shown.request.expect("a request");
        assert_eq!(request.method, "POST");
        assert!(
            request.url.contains("/123456789012345/events"),
            "{}",
            request.url
        );
        assert!(!request.url.contains("EAAB"), "{}", request.url);
        assert!(request.url.contains("access_token=***"), "{}", request.url);
        let body: Value = serde_json::from_str(&request.body).expect("JSON body");
        assert_eq!(body["data"][0]["event_id"], "evt-1");
        assert_eq!(body["data"][0]["custom_data"]["value"], 49.9);
        assert_eq!(request.headers["content-type"], "application/json");
    }

    #[test]
    fn a_value_that_cannot_take_its_datatype_is_the_transformation_error() {
        let event = ORDER.replace("\"49.90\"", "\"a lot\"");
        let shown = preview(&meta(), &event, "https://graph.facebook.com", 0).expect("previews");
        assert!(shown.request.is_none());
        assert_eq!(shown.transformation_errors.len(), 1);
        assert_eq!(
            shown.transformation_errors[0].target_field,
            "custom_data.value"
        );
    }

    #[test]
    fn an_event_the_filter_leaves_out_sends_nothing() {
        let config = ConnectorConfig {
            filter: Some(EventFilter {
                event_types: vec!["Signed Up".into()],
                ..EventFilter::default()
            }),
            ..meta()
        };
        let shown = preview(&config, ORDER, "https://graph.facebook.com", 0).expect("previews");
        assert!(!shown.matches_filter);
        assert!(shown.request.is_none());
        // The same filter on a property that matches: sent.
        let config = ConnectorConfig {
            filter: Some(EventFilter {
                condition: Some(PropertyCondition {
                    path: "properties.total".into(),
                    operator: ConditionOperator::Exists as i32,
                    ..PropertyCondition::default()
                }),
                ..EventFilter::default()
            }),
            ..meta()
        };
        assert!(
            preview(&config, ORDER, "https://x.example", 0)
                .expect("previews")
                .matches_filter
        );
    }

    #[test]
    fn events_ingest_would_refuse_are_invalid() {
        for (event, why) in [
            ("[1]", "object"),
            ("{", "not JSON"),
            (r#"{"type":"x"}"#, "`id`"),
            (r#"{"id":"e","type":""}"#, "`type`"),
        ] {
            let error = preview(&meta(), event, "https://x.example", 0).expect_err(event);
            assert!(
                matches!(&error, PreviewError::Event(text) if text.contains(why)),
                "{event}: {error}"
            );
        }
        let huge = format!(
            r#"{{"id":"e","type":"t","pad":"{}"}}"#,
            "x".repeat(MAX_EVENT_BYTES)
        );
        assert!(preview(&meta(), &huge, "https://x.example", 0).is_err());
        let elsewhere = ORDER.replace("\"workspace_id\":\"w\"", "\"workspace_id\":\"other\"");
        let error = preview(&meta(), &elsewhere, "https://x.example", 0).expect_err("elsewhere");
        assert!(error.to_string().contains("never receive"), "{error}");
    }

    #[test]
    fn short_and_nested_secrets_are_hidden_whole() {
        let secrets = ["k3y", "Bearer k3y-longer", "a/b c"];
        let text = "authorization: Bearer k3y-longer; x-key: k3y; q=a%2Fb+c";
        let shown = hide_secrets(text, secrets, 1);
        assert_eq!(shown, "authorization: ***; x-key: ***; q=***");
    }
}

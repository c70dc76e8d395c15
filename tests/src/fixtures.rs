//! Connectors the tests create.

use std::collections::BTreeMap;

use eventconnectors_proto::v1::{
    ConditionOperator, Connector, CreateConnectorRequest, DataType, EventFilter, FieldMapping,
    PropertyCondition,
};

/// The Meta access token [`meta_connector`] carries.
pub const META_TOKEN: &str = "EAAB-meta-access-token-f00dfeed";

/// A valid Meta CAPI connector with a mapping and a filter.
pub fn meta_connector(workspace: &str, name: &str) -> Connector {
    Connector {
        workspace_id: workspace.to_owned(),
        name: name.to_owned(),
        partner: "meta_capi".to_owned(),
        settings: BTreeMap::from([("pixel_id".to_owned(), "123456789012345".to_owned())]),
        secrets: BTreeMap::from([("access_token".to_owned(), META_TOKEN.to_owned())]),
        mappings: vec![FieldMapping {
            source: "properties.total".to_owned(),
            target: "custom_data.value".to_owned(),
            r#type: DataType::Number as i32,
            required: false,
            default_value: Some("0".to_owned()),
            constant: None,
        }],
        filter: Some(EventFilter {
            event_types: vec!["Purchase".to_owned()],
            condition: Some(PropertyCondition {
                path: "properties.country".to_owned(),
                operator: ConditionOperator::Equals as i32,
                value: "FR".to_owned(),
            }),
        }),
        ..Default::default()
    }
}

/// A valid webhook connector posting to `url`.
pub fn webhook_connector(workspace: &str, name: &str, url: &str) -> Connector {
    Connector {
        workspace_id: workspace.to_owned(),
        name: name.to_owned(),
        partner: "webhook".to_owned(),
        settings: BTreeMap::from([("url".to_owned(), url.to_owned())]),
        ..Default::default()
    }
}

/// A create request without an idempotency key.
pub fn create(connector: Connector) -> CreateConnectorRequest {
    CreateConnectorRequest {
        connector: Some(connector),
        request_id: String::new(),
    }
}

/// A field mask naming `paths`.
pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask {
        paths: paths.iter().map(|p| (*p).to_owned()).collect(),
    })
}

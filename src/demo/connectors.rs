//! The demo's connectors, in workspace `demo`: a signed webhook with
//! mappings, and a Meta Conversions API connector for purchases and carts,
//! both sending to the demo partner. They are created once (a retried
//! create with the same request id returns the first); on a later start
//! with the same store they are found again and, if the demo partner moved,
//! pointed at it. A connector someone deactivated stays deactivated.

use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use eventconnectors_proto::v1::{
    Connector, ConnectorStatus, CreateConnectorRequest, DataType, EventFilter, FieldMapping,
    UpdateConnectorRequest,
};
use server_kit::auth::bearer;
use tonic::transport::Channel;

/// The demo's workspace.
pub const WORKSPACE: &str = "demo";
/// The webhook connector's signing secret (`whsec_` + base64 of 32 bytes).
pub const SIGNING_SECRET: &str = "whsec_ZGVtby1zaWduaW5nLWtleS1mb3ItdGhlLWRlbW8tMDE=";
/// The Meta-shaped connector's access token.
pub const ACCESS_TOKEN: &str = "EAAB-demo-access-token";

/// A demo connector as created.
#[derive(Debug, Clone)]
pub struct DemoConnector {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it is ACTIVE.
    pub active: bool,
}

fn mapping(source: &str, target: &str, data_type: DataType) -> FieldMapping {
    FieldMapping {
        source: source.to_owned(),
        target: target.to_owned(),
        r#type: data_type as i32,
        ..FieldMapping::default()
    }
}

/// The connectors the demo wants, sending to `webhook_url` and (for the
/// Meta-shaped one) to the node's Meta base URL, with their request ids.
fn wanted(webhook_url: &str) -> [(&'static str, Connector); 2] {
    let webhook = Connector {
        workspace_id: WORKSPACE.into(),
        name: "Orders webhook (demo)".into(),
        partner: "webhook".into(),
        settings: [("url".to_owned(), webhook_url.to_owned())].into(),
        secrets: [("signing_secret".to_owned(), SIGNING_SECRET.to_owned())].into(),
        mappings: vec![
            mapping("id", "event_id", DataType::String),
            mapping("type", "type", DataType::String),
            mapping("timestamp", "occurred_at", DataType::Timestamp),
            mapping("properties.total", "order.total", DataType::Number),
            mapping("properties.currency", "order.currency", DataType::String),
            mapping("user.email", "customer.email_sha256", DataType::Sha256),
        ],
        ..Connector::default()
    };
    let meta = Connector {
        workspace_id: WORKSPACE.into(),
        name: "Meta pixel (demo)".into(),
        partner: "meta_capi".into(),
        settings: [("pixel_id".to_owned(), "1234567890".to_owned())].into(),
        secrets: [("access_token".to_owned(), ACCESS_TOKEN.to_owned())].into(),
        mappings: vec![
            mapping("properties.total", "custom_data.value", DataType::Number),
            mapping(
                "properties.currency",
                "custom_data.currency",
                DataType::String,
            ),
        ],
        filter: Some(EventFilter {
            event_types: vec!["Purchase".into(), "AddToCart".into()],
            condition: None,
        }),
        ..Connector::default()
    };
    [("demo-orders-webhook", webhook), ("demo-meta-pixel", meta)]
}

/// `message` with the admin token.
fn request<T>(message: T, token: &str) -> Result<tonic::Request<T>, tonic::Status> {
    bearer(message, token).map_err(|error| tonic::Status::invalid_argument(error.to_string()))
}

/// Creates the demo connectors (the Meta one only with `meta`), or finds
/// them and brings their settings to the demo partner's current address.
pub async fn ensure(
    channel: Channel,
    admin_token: &str,
    webhook_url: &str,
    meta: bool,
) -> Result<Vec<DemoConnector>, tonic::Status> {
    let mut client = ConnectorServiceClient::new(channel);
    let mut ensured = Vec::new();
    let wanted = wanted(webhook_url)
        .into_iter()
        .filter(|(_, connector)| meta || connector.partner != "meta_capi");
    for (request_id, connector) in wanted {
        let create = CreateConnectorRequest {
            connector: Some(connector.clone()),
            request_id: request_id.into(),
        };
        let mut found = client
            .create_connector(request(create, admin_token)?)
            .await?
            .into_inner();
        if found.settings != connector.settings {
            let update = UpdateConnectorRequest {
                connector: Some(Connector {
                    id: found.id.clone(),
                    version: found.version,
                    settings: connector.settings.clone(),
                    ..Connector::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["settings".into()],
                }),
            };
            found = client
                .update_connector(request(update, admin_token)?)
                .await?
                .into_inner();
            tracing::info!(connector = %found.id, "demo connector pointed at the demo partner's address");
        }
        ensured.push(DemoConnector {
            id: found.id,
            name: found.name,
            active: found.status == ConnectorStatus::Active as i32,
        });
    }
    Ok(ensured)
}

#[cfg(test)]
mod tests {
    use partners::validation::{ConnectorDraft, Violations, check_new};

    use super::*;

    #[test]
    fn the_demo_connectors_are_valid() {
        for (_, connector) in wanted("http://127.0.0.1:50081/webhook") {
            let draft = ConnectorDraft {
                name: connector.name.clone(),
                settings: connector.settings.clone(),
                secrets: connector.secrets.clone(),
                mappings: connector.mappings.clone(),
                filter: connector.filter.clone(),
            };
            let mut violations = Violations::default();
            check_new(
                &mut violations,
                "connector",
                &connector.workspace_id,
                &connector.partner,
                &draft,
            );
            assert_eq!(
                violations.fields(),
                Vec::<&str>::new(),
                "{}",
                connector.name
            );
        }
    }
}

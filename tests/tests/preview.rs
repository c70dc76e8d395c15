//! PreviewTransformation end to end: a real control plane, a real client,
//! drafts and stored connectors, and a fake partner that must hear nothing.

use std::collections::BTreeMap;

use e2e_tests::control_plane::{ControlPlaneHandle, Db};
use e2e_tests::fixtures::{META_TOKEN, create, meta_connector, webhook_connector};
use e2e_tests::partners::{FakePartner, Webhook};
use e2e_tests::with_token;
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use eventconnectors_proto::v1::preview_transformation_request::Target;
use eventconnectors_proto::v1::{Connector, PreviewTransformationRequest};
use serde_json::Value;
use tonic::Code;
use tonic_types::StatusExt;

const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const PURCHASE: &str = r#"{"id":"evt-42","workspace_id":"shop","type":"Purchase","timestamp":"2026-11-30T10:00:00Z","properties":{"total":"19.99","country":"FR"},"context":{"traits":{"email":"Jane@Example.com"}}}"#;

fn request(target: Target, event: &str) -> PreviewTransformationRequest {
    PreviewTransformationRequest {
        target: Some(target),
        event_json: event.to_owned(),
    }
}

#[tokio::test]
async fn a_draft_shows_the_exact_request_with_its_secrets_hidden() {
    let server = ControlPlaneHandle::start(Db::Sqlite).await;
    let mut admin = server.admin().await;
    let shown = admin
        .preview_transformation(request(
            Target::Draft(meta_connector("shop", "meta")),
            PURCHASE,
        ))
        .await
        .expect("preview")
        .into_inner();
    assert!(shown.matches_filter);
    assert!(shown.transformation_errors.is_empty());
    let sent = shown.request.expect("a request");
    assert_eq!(sent.method, "POST");
    assert!(
        sent.url.starts_with("https://graph.facebook.com/")
            && sent
                .url
                .contains("/123456789012345/events?access_token=***"),
        "{}",
        sent.url
    );
    let text = format!("{sent:?}");
    assert!(!text.contains(META_TOKEN), "{text}");
    let body: Value = serde_json::from_str(&sent.body).expect("JSON body");
    let event = &body["data"][0];
    assert_eq!(event["event_id"], "evt-42");
    assert_eq!(event["custom_data"]["value"], 19.99);
    // The email is normalized and hashed as Meta requires.
    let hashed = event["user_data"]["em"].to_string();
    assert!(!hashed.contains("Jane"), "{hashed}");

    // The filter leaves a Signup out: nothing would be sent.
    let signup = PURCHASE.replace("\"Purchase\"", "\"Signup\"");
    let shown = admin
        .preview_transformation(request(
            Target::Draft(meta_connector("shop", "meta")),
            &signup,
        ))
        .await
        .expect("preview")
        .into_inner();
    assert!(!shown.matches_filter && shown.request.is_none());

    // A value that cannot take its datatype: the transformation error.
    let connector = Connector {
        mappings: vec![eventconnectors_proto::v1::FieldMapping {
            required: true,
            default_value: None,
            ..meta_connector("shop", "meta").mappings[0].clone()
        }],
        ..meta_connector("shop", "meta")
    };
    let shown = admin
        .preview_transformation(request(
            Target::Draft(connector),
            &PURCHASE.replace("\"19.99\"", "\"lots\""),
        ))
        .await
        .expect("preview")
        .into_inner();
    assert!(shown.request.is_none());
    assert_eq!(shown.transformation_errors.len(), 1);
    assert_eq!(
        shown.transformation_errors[0].target_field,
        "custom_data.value"
    );
}

#[tokio::test]
async fn a_stored_webhook_previews_its_signed_request_and_sends_nothing() {
    let partner = FakePartner::start(&Webhook).await;
    let server = ControlPlaneHandle::start(Db::Sqlite).await;
    let mut admin = server.admin().await;
    let hook = admin
        .create_connector(create(Connector {
            secrets: BTreeMap::from([
                ("signing_secret".to_owned(), SIGNING_SECRET.to_owned()),
                (
                    "authorization".to_owned(),
                    "Bearer hook-credential".to_owned(),
                ),
                // Short, and inside nothing else: still hidden.
                ("header.X-Key".to_owned(), "k3y".to_owned()),
            ]),
            ..webhook_connector("shop", "hook", &partner.url())
        }))
        .await
        .expect("create")
        .into_inner();
    let shown = admin
        .preview_transformation(request(Target::ConnectorId(hook.id.clone()), PURCHASE))
        .await
        .expect("preview")
        .into_inner();
    let sent = shown.request.expect("a request");
    assert_eq!(sent.url, partner.url());
    assert_eq!(sent.body, PURCHASE, "the raw event, unchanged");
    assert_eq!(sent.headers["webhook-id"], "evt-42");
    assert!(
        sent.headers["webhook-signature"].starts_with("v1,"),
        "{:?}",
        sent.headers
    );
    let header = |name: &str| {
        sent.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(header("authorization"), Some("***"), "{:?}", sent.headers);
    assert_eq!(header("x-key"), Some("***"), "{:?}", sent.headers);
    let shown = format!("{sent:?}");
    for secret in [SIGNING_SECRET, "hook-credential", "k3y"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(partner.request_count(), 0, "a preview sends nothing");
}

#[tokio::test]
async fn previews_name_what_is_wrong_and_respect_workspaces() {
    let server = ControlPlaneHandle::start(Db::Sqlite).await;
    let mut admin = server.admin().await;
    let invalid = |target: Target, event: &str| {
        let mut admin = admin.clone();
        let request = request(target, event);
        async move {
            let status = admin
                .preview_transformation(request)
                .await
                .expect_err("invalid");
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            status
                .get_details_bad_request()
                .expect("details")
                .field_violations
                .into_iter()
                .map(|v| v.field)
                .collect::<Vec<_>>()
        }
    };
    let mut no_pixel = meta_connector("shop", "meta");
    no_pixel.settings.clear();
    assert_eq!(
        invalid(Target::Draft(no_pixel), PURCHASE).await,
        ["draft.settings.pixel_id"]
    );
    for event in ["not json", "[]", r#"{"type":"Purchase"}"#] {
        assert_eq!(
            invalid(Target::Draft(meta_connector("shop", "meta")), event).await,
            ["event_json"],
            "{event}"
        );
    }
    let status = admin
        .preview_transformation(PreviewTransformationRequest {
            target: None,
            event_json: PURCHASE.to_owned(),
        })
        .await
        .expect_err("no target");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = admin
        .preview_transformation(request(
            Target::ConnectorId("0190aaaa-0000-7000-8000-000000000000".into()),
            PURCHASE,
        ))
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    // A key of another workspace may preview neither this one's
    // connectors nor a draft for it.
    let channel = server.channel().await;
    let key = server.api_key("workspace:elsewhere:admin").await;
    let hook = admin
        .create_connector(create(webhook_connector(
            "shop",
            "hook",
            "https://hooks.example/in",
        )))
        .await
        .expect("create")
        .into_inner();
    let mut other = ConnectorServiceClient::new(channel);
    for target in [
        Target::ConnectorId(hook.id),
        Target::Draft(meta_connector("shop", "meta")),
    ] {
        let status = other
            .preview_transformation(with_token(request(target, PURCHASE), &key))
            .await
            .expect_err("denied");
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    }
}

//! TestConnector end to end: a control plane sends one test event through
//! a connector (a draft or a stored one) to a fake partner's own test or
//! validation facility, and answers with the partner's verdict in the
//! categories of delivery. Every fake speaks the partner's wire format
//! and validates as the partner does.

use std::time::Duration;

use e2e_tests::control_plane::{ADMIN_TOKEN, ControlPlaneHandle, Db, Options, TestStore};
use e2e_tests::fixtures::{create, webhook_connector};
use e2e_tests::partners::{FakePartner, MetaCapi, Reply, Webhook, fake};
use e2e_tests::with_token;
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;
use eventconnectors_proto::v1::test_connector_request::Target;
use eventconnectors_proto::v1::{
    Connector, ErrorCategory, Outcome, TestConnectorRequest, TestConnectorResponse,
};
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;

const CODE: &str = "TEST4242";
/// A webhook's signing secret: the fake verifies every signature with it.
const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A control plane sending `partner`'s requests to `fake` (a webhook's
/// URL is its own setting).
async fn control_plane_for(fake: &FakePartner, allowlist: &str) -> ControlPlaneHandle {
    let partner_base_urls = match fake.partner() {
        "webhook" => Vec::new(),
        partner => vec![(partner.to_owned(), fake.url())],
    };
    ControlPlaneHandle::start_with(
        TestStore::new(Db::Sqlite).await,
        Options {
            partner_base_urls,
            destination_allowlist: allowlist.to_owned(),
            ..Options::default()
        },
    )
    .await
}

/// The fake's own sample connector, as a draft of workspace `shop`.
fn draft(fake: &FakePartner) -> Connector {
    let sample = e2e_tests::partners::fake(fake.partner())
        .expect("a fake")
        .connector(&fake.url());
    Connector {
        workspace_id: "shop".to_owned(),
        name: format!("{} test", fake.partner()),
        partner: fake.partner().to_owned(),
        settings: sample.settings,
        secrets: sample.secrets,
        mappings: sample.mappings,
        ..Connector::default()
    }
}

async fn test(
    channel: &Channel,
    target: Target,
    event_json: &str,
    code: &str,
    token: &str,
) -> Result<TestConnectorResponse, tonic::Status> {
    ConnectorServiceClient::new(channel.clone())
        .test_connector(with_token(
            TestConnectorRequest {
                target: Some(target),
                event_json: event_json.to_owned(),
                test_event_code: code.to_owned(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn each_partner_is_tested_through_its_own_facility() {
    for partner in [
        "ga4",
        "meta_capi",
        "tiktok",
        "snapchat",
        "pinterest",
        "webhook",
    ] {
        let fake = FakePartner::start(fake(partner).expect("a fake")).await;
        let server = control_plane_for(&fake, "127.0.0.0/8").await;
        let channel = server.channel().await;
        let mut draft = draft(&fake);
        if partner == "webhook" {
            draft
                .secrets
                .insert("signing_secret".to_owned(), SIGNING_SECRET.to_owned());
            fake.verify_signatures(SIGNING_SECRET);
        }
        let secrets: Vec<String> = draft.secrets.values().cloned().collect();
        let answer = test(&channel, Target::Draft(draft), "", CODE, ADMIN_TOKEN)
            .await
            .unwrap_or_else(|status| panic!("{partner}: {status:?}"));
        assert_eq!(
            answer.outcome(),
            Outcome::Delivered,
            "{partner}: {answer:?}"
        );
        assert!(!answer.facility.is_empty(), "{partner}");
        let sent = answer.request.as_ref().expect("the request sent");
        for secret in &secrets {
            assert!(
                !format!("{sent:?}").contains(secret.as_str()),
                "{partner}: a secret in the request shown"
            );
        }
        let received = fake.requests();
        assert_eq!(received.len(), 1, "{partner}: one request");
        let request = &received[0];
        match partner {
            "ga4" => {
                assert_eq!(request.path, "/debug/mp/collect", "GA4's validation server");
                assert!(answer.validation_messages.is_empty(), "{answer:?}");
            }
            "meta_capi" | "tiktok" => {
                assert_eq!(request.body["test_event_code"], CODE, "{partner}");
            }
            "snapchat" => {
                assert!(
                    request.path.ends_with("/events/validate"),
                    "{}",
                    request.path
                );
                assert_eq!(request.body["test_event_code"], CODE);
            }
            "pinterest" => assert_eq!(request.query.get("test").map(String::as_str), Some("true")),
            _ => {
                assert_eq!(request.path, "/hook");
                // Answered 204 only after the fake verified the signature.
                assert!(request.headers.contains_key("webhook-signature"));
                assert_eq!(request.reply_status, 204);
                assert_eq!(request.headers["eventconnectors-test"], "true");
                // A customer-typed URL's answer is not shown, its status is.
                assert_eq!(answer.message, "accepted (HTTP 204)");
            }
        }
        assert_eq!(
            answer.http_status,
            u32::from(request.reply_status),
            "{partner}"
        );
    }
}

#[tokio::test]
async fn failures_come_back_in_the_categories_of_delivery() {
    let meta = FakePartner::start(&MetaCapi).await;
    let server = control_plane_for(&meta, "127.0.0.0/8").await;
    let channel = server.channel().await;
    let draft = draft(&meta);
    let token = draft.secrets["access_token"].clone();

    // Without a test event code a Meta test would be a real conversion.
    let status = test(&channel, Target::Draft(draft.clone()), "", "", ADMIN_TOKEN)
        .await
        .expect_err("no test code");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violations = status
        .get_details_bad_request()
        .expect("details")
        .field_violations;
    assert_eq!(violations[0].field, "test_event_code", "{violations:?}");
    assert!(meta.requests().is_empty(), "nothing sent");
    let status = test(
        &channel,
        Target::Draft(draft.clone()),
        "",
        "T&x=1",
        ADMIN_TOKEN,
    )
    .await
    .expect_err("a code no partner issues");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(meta.requests().is_empty(), "nothing sent");

    meta.script([Reply::Error {
        status: 400,
        code: "190".to_owned(),
        message: format!("Error validating access token {token}: Session has expired"),
    }]);
    let expired = test(
        &channel,
        Target::Draft(draft.clone()),
        "",
        CODE,
        ADMIN_TOKEN,
    )
    .await
    .expect("tested");
    assert_eq!(expired.outcome(), Outcome::Failed);
    assert_eq!(expired.category(), ErrorCategory::InvalidCredentials);
    assert_eq!(expired.partner_code, "400/190");
    assert!(
        expired.message.contains("Session has expired"),
        "{expired:?}"
    );
    assert!(
        !expired.message.contains(&token),
        "the echoed token is hidden"
    );

    // A field that cannot be filled: nothing is sent.
    let before = meta.requests().len();
    let bad_total =
        r#"{"id":"e1","type":"Purchase","properties":{"total":"N/A"},"user":{"email":"a@b.co"}}"#;
    let mut mapped = draft.clone();
    mapped
        .mappings
        .push(eventconnectors_proto::v1::FieldMapping {
            source: "properties.total".to_owned(),
            target: "custom_data.value".to_owned(),
            r#type: eventconnectors_proto::v1::DataType::Number as i32,
            ..Default::default()
        });
    let unfilled = test(
        &channel,
        Target::Draft(mapped),
        bad_total,
        CODE,
        ADMIN_TOKEN,
    )
    .await
    .expect("tested");
    assert_eq!(
        unfilled.outcome(),
        Outcome::TransformationError,
        "{unfilled:?}"
    );
    assert_eq!(
        unfilled.transformation_errors[0].target_field,
        "custom_data.value"
    );
    assert!(unfilled.request.is_none());
    assert_eq!(meta.requests().len(), before, "nothing sent");
}

#[tokio::test]
async fn ga4_validation_messages_fail_the_test() {
    let ga4 = FakePartner::start(fake("ga4").expect("GA4")).await;
    let server = control_plane_for(&ga4, "127.0.0.0/8").await;
    // GA4 answers 2xx to anything; its validation server names the field.
    let invalid_name = r#"{"id":"e1","type":"order.completed","user":{"anonymous_id":"c.1"}}"#;
    let answer = test(
        &server.channel().await,
        Target::Draft(draft(&ga4)),
        invalid_name,
        "",
        ADMIN_TOKEN,
    )
    .await
    .expect("tested");
    assert_eq!(answer.outcome(), Outcome::Failed, "{answer:?}");
    assert_eq!(answer.category(), ErrorCategory::PartnerError);
    assert!(!answer.validation_messages.is_empty(), "{answer:?}");
    assert_eq!(answer.partner_code, "200/NAME_INVALID", "{answer:?}");
    assert!(
        answer.validation_messages[0].starts_with("events[0].name"),
        "{answer:?}"
    );
    assert_eq!(ga4.requests()[0].path, "/debug/mp/collect");
}

#[tokio::test]
async fn a_test_never_reaches_a_refused_destination() {
    let hook = FakePartner::start(&Webhook).await;
    // No allowlist: loopback is refused, as for nodes. The URL names
    // `localhost`, which passes the create-time check (a name) and is
    // refused once resolved.
    let server = control_plane_for(&hook, "").await;
    let url = hook.url().replace("127.0.0.1", "localhost");
    let answer = test(
        &server.channel().await,
        Target::Draft(webhook_connector("shop", "internal", &url)),
        "",
        "",
        ADMIN_TOKEN,
    )
    .await
    .expect("tested");
    assert_eq!(answer.outcome(), Outcome::Failed);
    assert_eq!(answer.category(), ErrorCategory::ResourceAccess);
    assert!(answer.message.contains("destination policy"), "{answer:?}");
    assert!(hook.requests().is_empty(), "never connected to");
}

#[tokio::test]
async fn a_stored_connector_is_tested_by_its_workspace_only_and_a_slow_partner_times_out() {
    let hook = FakePartner::start(&Webhook).await;
    let server = control_plane_for(&hook, "127.0.0.0/8").await;
    let channel = server.channel().await;
    let stored = ConnectorServiceClient::new(channel.clone())
        .create_connector(with_token(
            create(webhook_connector("shop", "hook", &hook.url())),
            ADMIN_TOKEN,
        ))
        .await
        .expect("created")
        .into_inner();
    let other = server.api_key("workspace:elsewhere:admin").await;
    let denied = test(
        &channel,
        Target::ConnectorId(stored.id.clone()),
        "",
        "",
        &other,
    )
    .await
    .expect_err("another workspace");
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert!(hook.requests().is_empty());

    hook.script([Reply::Delay(
        Duration::from_secs(5),
        Box::new(Reply::Accept),
    )]);
    let slow = test(
        &channel,
        Target::ConnectorId(stored.id.clone()),
        "",
        "",
        ADMIN_TOKEN,
    )
    .await
    .expect("tested");
    assert_eq!(slow.outcome(), Outcome::Failed);
    assert_eq!(slow.category(), ErrorCategory::Timeout, "{slow:?}");
    let ok = test(
        &channel,
        Target::ConnectorId(stored.id),
        "",
        "",
        ADMIN_TOKEN,
    )
    .await
    .expect("tested");
    assert_eq!(ok.outcome(), Outcome::Delivered, "{ok:?}");
}

/// Tests all at once, one per entry of `workspaces`, against a partner
/// answering in 2 s: the number delivered per workspace, and refused.
async fn all_at_once(
    channel: &Channel,
    url: &str,
    workspaces: &[String],
) -> (std::collections::BTreeMap<String, usize>, usize) {
    let calls = workspaces.iter().map(|workspace| {
        let channel = channel.clone();
        let draft = webhook_connector(workspace, "hook", url);
        let workspace = workspace.clone();
        tokio::spawn(async move {
            let answer = test(&channel, Target::Draft(draft), "", "", ADMIN_TOKEN).await;
            (workspace, answer)
        })
    });
    let mut delivered = std::collections::BTreeMap::<String, usize>::new();
    let mut busy = 0;
    for call in futures::future::join_all(calls).await {
        match call.expect("joined") {
            (workspace, Ok(answer)) if answer.outcome() == Outcome::Delivered => {
                *delivered.entry(workspace).or_default() += 1;
            }
            (_, Err(status)) if status.code() == Code::ResourceExhausted => busy += 1,
            other => panic!("{other:?}"),
        }
    }
    (delivered, busy)
}

#[tokio::test]
async fn tests_in_flight_are_capped_per_workspace_and_per_replica() {
    let hook = FakePartner::start(&Webhook).await;
    let server = control_plane_for(&hook, "127.0.0.0/8").await;
    let channel = server.channel().await;
    let (total, per_workspace) = (
        control_plane::api::MAX_TESTS_IN_FLIGHT,
        control_plane::api::MAX_TESTS_PER_WORKSPACE,
    );
    hook.set_default(Reply::Delay(
        Duration::from_secs(2),
        Box::new(Reply::Accept),
    ));

    // One workspace asking for one more than its share.
    let greedy = vec!["greedy".to_owned(); per_workspace + 1];
    let (delivered, busy) = all_at_once(&channel, &hook.url(), &greedy).await;
    assert_eq!((delivered["greedy"], busy), (per_workspace, 1));

    // Workspaces each within their share, asking for more than the replica's.
    let many: Vec<String> = (0..=total / per_workspace)
        .flat_map(|i| vec![format!("ws-{i}"); per_workspace])
        .collect();
    let (delivered, busy) = all_at_once(&channel, &hook.url(), &many).await;
    assert_eq!(delivered.values().sum::<usize>(), total, "{delivered:?}");
    assert_eq!(busy, many.len() - total);
}

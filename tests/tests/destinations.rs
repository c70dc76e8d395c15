//! Destination safety, as an attacker would try it, on Postgres and
//! SQLite: webhook URLs naming internal addresses are refused when the
//! connector is written; a DNS name that resolves to one (here `localhost`)
//! is refused by the node at send time, never connected to, and delivered
//! once the allow-list opens the range.

use std::time::Duration;

use e2e_tests::control_plane::{ControlPlaneHandle, Db, Options, TestStore};
use e2e_tests::fixtures::{create, mask, webhook_connector};
use e2e_tests::partners::{FakePartner, Webhook};
use e2e_tests::platform::{Platform, event};
use eventconnectors_proto::v1::{Connector, ErrorCategory, UpdateConnectorRequest};
use tonic::Code;
use tonic_types::StatusExt;

const SECOND: Duration = Duration::from_secs(1);

e2e_tests::each_backend!(
    [postgres => super::Db::Postgres, sqlite => super::Db::Sqlite],
    [
        internal_literal_addresses_are_refused_when_written,
        a_name_resolving_to_loopback_is_refused_at_send_time_unless_allowed,
    ]
);

fn violation(status: &tonic::Status) -> (String, String) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let violation = status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .next()
        .expect("one violation");
    (violation.field, violation.description)
}

async fn internal_literal_addresses_are_refused_when_written(db: Db) {
    let control_plane = ControlPlaneHandle::start_with(
        TestStore::new(db).await,
        Options {
            destination_allowlist: String::new(),
            ..Options::default()
        },
    )
    .await;
    let mut admin = control_plane.admin().await;
    for (url, says) in [
        (
            "http://169.254.169.254/latest/meta-data/",
            "link-local (cloud metadata)",
        ),
        ("http://10.0.0.5/", "private"),
        ("http://[::1]:8080/", "loopback"),
        ("http://2130706433/hook", "loopback"),
        ("https://[::ffff:10.1.2.3]/hook", "private"),
        ("http://100.64.0.1/hook", "CGNAT"),
    ] {
        let status = admin
            .create_connector(create(webhook_connector("ws", "ssrf", url)))
            .await
            .expect_err(url);
        let (field, description) = violation(&status);
        assert_eq!(field, "connector.settings.url", "{url}");
        assert!(description.contains(says), "{url}: {description}");
    }
    // A name is accepted here: the node checks what it resolves to.
    let created = admin
        .create_connector(create(webhook_connector(
            "ws",
            "named",
            "https://hooks.example.com/in",
        )))
        .await
        .expect("a public name")
        .into_inner();
    let status = admin
        .update_connector(UpdateConnectorRequest {
            connector: Some(Connector {
                settings: [("url".to_owned(), "http://192.168.1.1/admin".to_owned())].into(),
                ..created
            }),
            update_mask: mask(&["settings"]),
        })
        .await
        .expect_err("an update to a private address");
    assert_eq!(violation(&status).0, "connector.settings.url");
}

async fn a_name_resolving_to_loopback_is_refused_at_send_time_unless_allowed(db: Db) {
    let partner = FakePartner::start(&Webhook).await;
    let port = partner
        .url()
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .expect("port")
        .to_owned();
    let named = format!("http://localhost:{port}/hook");

    // A node with the default policy: `localhost` resolves to loopback only.
    let mut strict =
        Platform::launch(db, Options::default(), &["--destination-allowlist", ""]).await;
    let hook = strict
        .create(webhook_connector("ws", "named", &named))
        .await;
    strict
        .ingest_all(&[event("e1", "ws", "Signup", serde_json::json!({}))])
        .await;
    let stats = strict.wait_for_outcomes(&hook.id, 1, 5 * SECOND).await;
    let totals = stats.totals.expect("totals");
    assert_eq!(totals.failed, 1);
    let group = &stats.connector_errors[0];
    assert_eq!(group.category, ErrorCategory::ResourceAccess as i32);
    assert!(
        group
            .sample_message
            .contains("resolves only to addresses the destination policy refuses"),
        "{}",
        group.sample_message
    );
    assert!(
        !group.sample_message.contains("127.0.0.1") && !group.sample_message.contains("::1"),
        "what an internal name resolves to is not shown: {}",
        group.sample_message
    );
    assert_eq!(partner.request_count(), 0, "never connected to");
    drop(strict);

    // With the range allowed, the same connector delivers.
    let mut open = Platform::launch(db, Options::default(), &[]).await;
    let hook = open.create(webhook_connector("ws", "named", &named)).await;
    open.ingest_all(&[event("e2", "ws", "Signup", serde_json::json!({}))])
        .await;
    let stats = open.wait_for_outcomes(&hook.id, 1, 5 * SECOND).await;
    assert_eq!(stats.totals.expect("totals").delivered, 1);
    assert_eq!(partner.request_count(), 1);
}

//! Partner credentials at rest across a sealing-key rotation, on Postgres
//! and SQLite: with the new key current and the old one previous, nodes
//! keep receiving every credential; `reseal_all` re-seals everything with
//! the new key; the old key can then go, and a control plane given only the
//! old key can open nothing sealed since.

use std::time::Duration;

use e2e_tests::control_plane::{
    ADMIN_TOKEN, ControlPlaneHandle, Db, Options, SECRETS_KEY, TestStore,
};
use e2e_tests::fixtures::{META_TOKEN, create, meta_connector};
use e2e_tests::node::NodeHandle;
use e2e_tests::with_token;
use eventconnectors_proto::v1::connector_service_client::ConnectorServiceClient;

/// Another 32-byte key (0x2b bytes), base64.
const NEW_KEY: &str = "KysrKysrKysrKysrKysrKysrKysrKysrKysrKysrKys=";

e2e_tests::each_backend!(
    [postgres => super::Db::Postgres, sqlite => super::Db::Sqlite],
    [a_sealing_key_rotates_without_a_node_losing_a_credential]
);

async fn start(
    store: &std::sync::Arc<TestStore>,
    key: &str,
    previous: Option<&str>,
) -> ControlPlaneHandle {
    ControlPlaneHandle::start_with(
        store.clone(),
        Options {
            secrets_key: Some(key.to_owned()),
            secrets_previous_keys: previous.map(str::to_owned),
            ..Options::default()
        },
    )
    .await
}

async fn a_sealing_key_rotates_without_a_node_losing_a_credential(db: Db) {
    let store = TestStore::new(db).await;
    let old = start(&store, SECRETS_KEY, None).await;
    let created = ConnectorServiceClient::new(old.channel().await)
        .create_connector(with_token(
            create(meta_connector("ws", "meta")),
            ADMIN_TOKEN,
        ))
        .await
        .expect("create")
        .into_inner();
    old.stop().await.expect("stops");

    // Step 1: every replica runs with the new key, the old one previous.
    let rotating = start(&store, NEW_KEY, Some(SECRETS_KEY)).await;
    let node = NodeHandle::start("node-rotation", &[rotating.url()]).await;
    let token_of = |node: &NodeHandle| {
        node.config().current().and_then(|s| {
            s.connector(&created.id)
                .map(|c| c.secrets["access_token"].clone())
        })
    };
    node.wait_for("the connector", Duration::from_secs(10), |s| {
        s.connector(&created.id).is_some()
    })
    .await;
    assert_eq!(token_of(&node).as_deref(), Some(META_TOKEN));

    // Step 2: re-seal everything with the new key.
    let new_box = control_plane::secrets::SecretBox::from_base64(NEW_KEY)
        .and_then(|b| b.with_previous(SECRETS_KEY))
        .expect("keys");
    let direct = rotating.store().await;
    let report = control_plane::reseal::reseal_all(&direct, &new_box, false)
        .await
        .expect("reseal");
    assert_eq!(
        (report.resealed, report.raced, report.unreadable),
        (1, 0, 0)
    );
    let again = control_plane::reseal::reseal_all(&direct, &new_box, false)
        .await
        .expect("reseal again");
    assert_eq!(
        (again.resealed, again.current),
        (0, 1),
        "nothing left to do"
    );
    let stored = direct.get(&created.id).await.expect("stored");
    assert!(!new_box.needs_reseal(&stored.sealed_secrets));
    direct.close().await;
    node.stop().await;
    rotating.stop().await.expect("stops");

    // Step 3: the old key goes; everything still opens with the new one.
    let rotated = start(&store, NEW_KEY, None).await;
    let node = NodeHandle::start("node-after", &[rotated.url()]).await;
    node.wait_for("the connector", Duration::from_secs(10), |s| {
        s.connector(&created.id).is_some()
    })
    .await;
    assert_eq!(token_of(&node).as_deref(), Some(META_TOKEN));
    node.stop().await;
    rotated.stop().await.expect("stops");

    // The retired key alone opens nothing: the connector is left out of
    // the feed rather than sent with credentials nobody can vouch for.
    let stale = start(&store, SECRETS_KEY, None).await;
    let node = NodeHandle::start("node-stale", &[stale.url()]).await;
    node.wait_for("the first snapshot", Duration::from_secs(10), |_| true)
        .await;
    assert!(token_of(&node).is_none());
}

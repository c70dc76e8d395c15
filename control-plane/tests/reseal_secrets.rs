//! The `reseal-secrets` binary, as an operator runs it during a key
//! rotation, against an embedded store.

use std::collections::BTreeMap;
use std::process::Command;

use control_plane::secrets::SecretBox;
use control_plane::store::{ConnectorRecord, ConnectorStatus, NewConnector, Store};

const OLD: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const NEW: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

fn record(id: &str, sealed: Vec<u8>) -> ConnectorRecord {
    ConnectorRecord {
        id: id.to_owned(),
        workspace_id: "ws".to_owned(),
        name: id.to_owned(),
        partner: "webhook".to_owned(),
        status: ConnectorStatus::Active,
        settings: BTreeMap::from([("url".to_owned(), "https://example.com/h".to_owned())]),
        sealed_secrets: sealed,
        secret_names: vec!["signing_secret".to_owned()],
        mappings: Vec::new(),
        filter: None,
        version: 1,
        created_at_ms: 0,
        updated_at_ms: 0,
    }
}

/// Runs the binary; whether it exited 0.
fn reseal(url: &str, key: &str, previous: Option<&str>, dry_run: bool) -> bool {
    let mut command = Command::new(env!("CARGO_BIN_EXE_reseal-secrets"));
    command
        .env("DATABASE_URL", url)
        .env("SECRETS_KEY", key)
        .env_remove("SECRETS_PREVIOUS_KEYS");
    if let Some(previous) = previous {
        command.env("SECRETS_PREVIOUS_KEYS", previous);
    }
    if dry_run {
        command.arg("--dry-run");
    }
    let output = command.output().expect("runs");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    for key in [OLD, NEW] {
        assert!(!logs.contains(key), "a key in the output: {logs}");
    }
    output.status.success()
}

#[tokio::test]
async fn reseal_secrets_moves_every_blob_to_the_current_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cp.db").display());
    let old = SecretBox::from_base64(OLD).expect("key");
    let secrets = BTreeMap::from([("signing_secret".to_owned(), "whsec_c2VjcmV0".to_owned())]);
    let store = Store::connect(&url, 1).await.expect("store");
    for id in ["c1", "c2"] {
        store
            .insert(&NewConnector {
                record: record(id, old.seal(id, &secrets)),
                request_id: None,
            })
            .await
            .expect("insert");
    }
    store.close().await;

    assert!(
        !reseal(&url, NEW, None, false),
        "without the old key nothing opens: a failure, nothing written"
    );
    assert!(reseal(&url, NEW, Some(OLD), true), "a dry run");
    let new = SecretBox::from_base64(NEW).expect("key");
    let store = Store::connect(&url, 1).await.expect("store");
    for id in ["c1", "c2"] {
        let stored = store.get(id).await.expect("stored");
        assert!(
            new.needs_reseal(&stored.sealed_secrets),
            "a dry run writes nothing"
        );
    }
    store.close().await;

    assert!(reseal(&url, NEW, Some(OLD), false));
    let store = Store::connect(&url, 1).await.expect("store");
    for id in ["c1", "c2"] {
        let stored = store.get(id).await.expect("stored");
        assert!(!new.needs_reseal(&stored.sealed_secrets));
        assert_eq!(
            new.open(id, &stored.sealed_secrets).expect("opens"),
            secrets
        );
    }
    store.close().await;
}

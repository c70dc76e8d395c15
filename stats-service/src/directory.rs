//! What the stats service knows of the control plane: which workspace owns
//! each connector, and the valid API keys (digests and scopes). It follows
//! the directory view of the configuration feed, which carries neither
//! partner credentials nor connector settings, with the directory token.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use eventconnectors_proto::v1::config_service_client::ConfigServiceClient;
use eventconnectors_proto::v1::watch_config_request::Message;
use eventconnectors_proto::v1::{Ack, ConfigUpdate, Subscribe, WatchConfigRequest};
use server_kit::access::{Caller, KeyDigest, KeyRing};
use server_kit::auth::{Secret, bearer};
use server_kit::backoff::{Attempts, Backoff};
use server_kit::upstream::StreamError;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// Largest directory message accepted.
const MAX_UPDATE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug, Default)]
struct Known {
    /// `None` until the first snapshot arrived.
    version: Option<u64>,
    keys: KeyRing,
    owners: HashMap<String, String>,
}

/// Who owns what, as of the last directory update.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    known: Arc<RwLock<Known>>,
}

/// The owner of a connector, as far as the directory knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Owned by this workspace.
    Workspace(String),
    /// Not a connector (deleted, or never created).
    Unknown,
    /// The directory has not been received yet.
    NotYetKnown,
}

impl Directory {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        self.known
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Applies one update of the directory view.
    pub fn apply(&self, update: &ConfigUpdate) {
        let mut known = self
            .known
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if update.full_snapshot {
            known.owners.clear();
        }
        for id in &update.removed_connector_ids {
            known.owners.remove(id);
        }
        for connector in &update.upserts {
            known
                .owners
                .insert(connector.id.clone(), connector.workspace_id.clone());
        }
        known.keys.apply(
            update.full_snapshot,
            &update.key_upserts,
            &update.revoked_key_ids,
        );
        known.version = Some(update.version);
    }

    /// The version applied last (`None` before the first).
    pub fn version(&self) -> Option<u64> {
        self.read().version
    }

    /// Who owns `connector_id`.
    pub fn owner(&self, connector_id: &str) -> Owner {
        let known = self.read();
        match (known.version, known.owners.get(connector_id)) {
            (_, Some(workspace)) => Owner::Workspace(workspace.clone()),
            (None, None) => Owner::NotYetKnown,
            (Some(_), None) => Owner::Unknown,
        }
    }

    /// The caller presenting `presented`: one of `bootstrap`'s tokens, else
    /// a valid key.
    pub fn caller(
        &self,
        bootstrap: &server_kit::access::Bootstrap,
        presented: &KeyDigest,
    ) -> Result<Caller, tonic::Status> {
        bootstrap.caller(presented, &self.read().keys)
    }
}

/// Where and how the directory is followed.
#[derive(Debug, Clone)]
pub struct FollowSettings {
    /// Control-plane URLs, tried in turn.
    pub endpoints: Vec<String>,
    /// The directory token.
    pub token: Secret,
    /// Name in the control plane's logs.
    pub name: String,
    /// TLS for `https://` URLs (and this service's client certificate).
    pub tls: server_kit::tls::UpstreamTls,
}

/// Keeps `directory` current until `stop` turns true, reconnecting with
/// backoff and keeping what it knew meanwhile.
pub async fn follow(
    directory: Directory,
    settings: FollowSettings,
    mut stop: watch::Receiver<bool>,
) {
    let backoff = Attempts::new(
        Backoff::new(Duration::from_millis(100), Duration::from_secs(10))
            .with_floor(Duration::from_millis(100)),
    );
    let endpoints = settings.endpoints.clone();
    server_kit::upstream::follow_endpoints(
        "directory",
        &endpoints,
        backoff,
        &mut stop,
        |endpoint, progress| {
            let (directory, settings) = (directory.clone(), settings.clone());
            async move { session(&directory, &endpoint, &settings, &progress).await }
        },
    )
    .await;
}

async fn session(
    directory: &Directory,
    endpoint: &str,
    settings: &FollowSettings,
    progress: &server_kit::upstream::Progress,
) -> Result<(), StreamError> {
    let channel = server_kit::upstream::connect(endpoint, &settings.tls).await?;
    let mut client = ConfigServiceClient::new(channel).max_decoding_message_size(MAX_UPDATE_BYTES);
    let (replies, outbound) = mpsc::channel(8);
    let subscribe = Message::Subscribe(Subscribe {
        node_id: settings.name.clone(),
        last_applied_version: directory.version().unwrap_or(0),
    });
    replies
        .send(WatchConfigRequest {
            message: Some(subscribe),
        })
        .await
        .expect("the receiver is held above");
    let request = bearer(ReceiverStream::new(outbound), settings.token.expose())?;
    let mut updates = client.watch_config(request).await?.into_inner();
    tracing::info!(%endpoint, "following the directory");
    while let Some(update) = updates.message().await? {
        progress.made();
        directory.apply(&update);
        let ack = Message::Ack(Ack {
            version: update.version,
        });
        if replies
            .send(WatchConfigRequest { message: Some(ack) })
            .await
            .is_err()
        {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use eventconnectors_proto::v1::ConnectorConfig;

    use super::*;

    fn owned(id: &str, workspace: &str) -> ConnectorConfig {
        ConnectorConfig {
            id: id.into(),
            workspace_id: workspace.into(),
            ..ConnectorConfig::default()
        }
    }

    #[test]
    fn owners_follow_snapshots_and_changes() {
        let directory = Directory::default();
        assert_eq!(directory.owner("a"), Owner::NotYetKnown);
        directory.apply(&ConfigUpdate {
            version: 4,
            full_snapshot: true,
            upserts: vec![owned("a", "w1"), owned("b", "w2")],
            ..ConfigUpdate::default()
        });
        assert_eq!(directory.owner("a"), Owner::Workspace("w1".into()));
        assert_eq!(directory.owner("zzz"), Owner::Unknown);
        directory.apply(&ConfigUpdate {
            version: 5,
            removed_connector_ids: vec!["a".into()],
            ..ConfigUpdate::default()
        });
        assert_eq!(directory.owner("a"), Owner::Unknown);
        assert_eq!(directory.owner("b"), Owner::Workspace("w2".into()));
        directory.apply(&ConfigUpdate {
            version: 6,
            full_snapshot: true,
            upserts: vec![owned("c", "w1")],
            ..ConfigUpdate::default()
        });
        assert_eq!(directory.owner("b"), Owner::Unknown);
        assert_eq!(directory.version(), Some(6));
    }
}

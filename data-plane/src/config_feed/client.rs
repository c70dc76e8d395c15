//! Follows ConfigService.WatchConfig: subscribes with the last applied
//! version, applies each update, acknowledges it (or reports what it could
//! not apply), and reconnects to any control-plane replica with backoff
//! while keeping the last good configuration.

use std::time::Duration;

use eventconnectors_proto::v1::config_service_client::ConfigServiceClient;
use eventconnectors_proto::v1::watch_config_request::Message;
use eventconnectors_proto::v1::{Ack, Nack, Subscribe, WatchConfigRequest};
use server_kit::auth::bearer;
use server_kit::backoff::{Attempts, Backoff};
use server_kit::upstream::StreamError;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::ConfigState;

/// Largest configuration message accepted (a full snapshot of many
/// thousands of connectors is several MiB).
const MAX_UPDATE_BYTES: usize = 256 * 1024 * 1024;

/// Where and how the node follows the configuration.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Control-plane URLs (`http://host:port`); tried in turn.
    pub endpoints: Vec<String>,
    /// This node's id.
    pub node_id: String,
    /// The node token.
    pub node_token: server_kit::auth::Secret,
    /// TLS for `https://` URLs (and the node's client certificate).
    pub tls: server_kit::tls::UpstreamTls,
    /// First reconnection delay.
    pub backoff_min: Duration,
    /// Longest reconnection delay.
    pub backoff_max: Duration,
}

/// Keeps `state` current until `stop` turns true.
pub async fn watch_config(
    state: ConfigState,
    settings: WatchSettings,
    mut stop: watch::Receiver<bool>,
) {
    let backoff = Attempts::new(
        Backoff::new(settings.backoff_min, settings.backoff_max).with_floor(settings.backoff_min),
    );
    let endpoints = settings.endpoints.clone();
    server_kit::upstream::follow_endpoints(
        "configuration",
        &endpoints,
        backoff,
        &mut stop,
        |endpoint, progress| {
            let (state, settings) = (state.clone(), settings.clone());
            async move {
                let result = follow(&state, &endpoint, &settings, &progress).await;
                state.set_connected(false);
                result
            }
        },
    )
    .await;
    state.set_connected(false);
}

/// One stream: subscribe, then apply and acknowledge updates until it ends.
async fn follow(
    state: &ConfigState,
    endpoint: &str,
    settings: &WatchSettings,
    progress: &server_kit::upstream::Progress,
) -> Result<(), StreamError> {
    let channel = server_kit::upstream::connect(endpoint, &settings.tls).await?;
    let mut client = ConfigServiceClient::new(channel).max_decoding_message_size(MAX_UPDATE_BYTES);

    let last_applied_version = state.current().map_or(0, |snapshot| snapshot.version());
    let (replies, outbound) = mpsc::channel(8);
    replies
        .send(message(Message::Subscribe(Subscribe {
            node_id: settings.node_id.clone(),
            last_applied_version,
        })))
        .await
        .expect("the receiver is held above");
    let request = bearer(ReceiverStream::new(outbound), settings.node_token.expose())?;
    let mut updates = client.watch_config(request).await?.into_inner();
    state.set_connected(true);
    tracing::info!(%endpoint, last_applied_version, "following the configuration");

    while let Some(update) = updates.message().await? {
        progress.made();
        let version = update.version;
        let full = update.full_snapshot;
        let (upserts, removals) = (update.upserts.len(), update.removed_connector_ids.len());
        let rejections = state.apply(update);
        tracing::debug!(
            version,
            full,
            upserts,
            removals,
            rejected = rejections.len(),
            "configuration applied"
        );
        // Acknowledged once the lanes apply it, not merely stored.
        state.synced(version).await;
        let reply = if rejections.is_empty() {
            Message::Ack(Ack { version })
        } else {
            tracing::warn!(version, ?rejections, "connectors this node cannot apply");
            Message::Nack(Nack {
                version,
                rejections,
            })
        };
        if replies.send(message(reply)).await.is_err() {
            break;
        }
    }
    Ok(())
}

fn message(message: Message) -> WatchConfigRequest {
    WatchConfigRequest {
        message: Some(message),
    }
}

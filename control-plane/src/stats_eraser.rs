//! Carries out the statistics erase of deleted connectors. DeleteConnector
//! records each deletion in the same transaction as the delete; this loop
//! calls StatsService.DeleteConnectorStats for every pending one until the
//! stats service confirms, so an outage of the stats service delays the
//! erase but never loses it.

use std::time::Duration;

use eventconnectors_proto::v1::DeleteConnectorStatsRequest;
use eventconnectors_proto::v1::stats_service_client::StatsServiceClient;
use server_kit::auth::bearer;
use server_kit::backoff::{Attempts, Backoff};
use server_kit::shutdown::stopped;
use tokio::sync::watch;
use tonic::transport::Channel;

use crate::clock::now_ms;
use crate::store::Store;

/// Deletions handled per pass.
const BATCH: u32 = 100;
/// Longest pause between two tries while the stats service fails.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Where the stats service is and how often to look for work.
#[derive(Debug, Clone)]
pub struct EraserSettings {
    /// StatsService URL.
    pub url: String,
    /// Its admin token.
    pub token: server_kit::auth::Secret,
    /// TLS for an `https://` URL.
    pub tls: server_kit::tls::UpstreamTls,
    /// Pause between passes when idle, and first retry delay after a failure.
    pub interval: Duration,
}

/// Erases pending statistics until `stop` turns true. Wakes at once after
/// every local write (a delete is one) and every `interval` otherwise.
pub async fn run(store: Store, settings: EraserSettings, mut stop: watch::Receiver<bool>) {
    let channel = match server_kit::upstream::endpoint(&settings.url, &settings.tls) {
        Ok(endpoint) => endpoint.connect_lazy(),
        Err(error) => {
            tracing::error!(%error, url = %settings.url, "invalid stats-service URL; statistics of deleted connectors will not be erased");
            return;
        }
    };
    let mut client = StatsServiceClient::new(channel);
    let mut writes = store.local_commits();
    let mut failures = Attempts::new(
        Backoff::new(settings.interval, MAX_RETRY_DELAY).with_floor(settings.interval),
    );
    loop {
        let delay = match erase_pending(&store, &mut client, settings.token.expose()).await {
            Ok(()) => {
                failures.reset();
                settings.interval
            }
            Err(error) => {
                let delay = failures.next_delay();
                tracing::warn!(%error, retry_in = ?delay, "cannot erase statistics of deleted connectors yet");
                delay
            }
        };
        tokio::select! {
            () = stopped(&mut stop) => return,
            changed = writes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = tokio::time::sleep(delay) => {}
        }
    }
}

/// Erases every pending deletion; stops at the first failure.
async fn erase_pending(
    store: &Store,
    client: &mut StatsServiceClient<Channel>,
    token: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let pending = store.pending_stats_erasures(BATCH).await?;
        if pending.is_empty() {
            return Ok(());
        }
        for connector_id in &pending {
            let request = DeleteConnectorStatsRequest {
                connector_id: connector_id.clone(),
            };
            client
                .delete_connector_stats(bearer(request, token)?)
                .await?;
            store.mark_stats_erased(connector_id, now_ms()).await?;
            tracing::info!(%connector_id, "statistics of deleted connector erased");
        }
    }
}

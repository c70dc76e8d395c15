//! ConfigService: one session per node stream, and the node listing.

use std::pin::Pin;
use std::sync::Arc;

use eventconnectors_proto::shared::EncodedConfigUpdate;
use eventconnectors_proto::shared::config_service_server::ConfigService;
use eventconnectors_proto::v1::watch_config_request::Message as NodeMessage;
use eventconnectors_proto::v1::{
    ConnectorRejection, ListNodesRequest, ListNodesResponse, Node, StoreOutage, Subscribe,
    WatchConfigRequest,
};
use futures::Stream;
use server_kit::auth::BearerAuth;
use server_kit::shutdown::stopped;
use server_kit::tls::{ServerTls, require_client_certificate};
use tokio::sync::{broadcast, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::publisher::HEARTBEAT;
use super::{ConfigFeed, Delta, View};
use crate::api::Access;
use crate::clock::{now_ms, timestamp};
use crate::store::{Rejection, Store};

/// Updates buffered per stream before the session waits for the node.
const STREAM_BUFFER: usize = 16;
/// Longest node id.
const MAX_NODE_ID: usize = 128;

/// Who may watch the feed, and in which view.
#[derive(Debug, Clone)]
pub struct FeedAuth {
    /// Nodes: the node view (partner credentials in clear).
    pub node: BearerAuth,
    /// The stats service: the directory view (no credentials); `None`
    /// when no directory token is configured.
    pub directory: Option<BearerAuth>,
}

impl FeedAuth {
    /// The view `metadata`'s credential opens.
    pub fn view(&self, metadata: &tonic::metadata::MetadataMap) -> Result<View, Status> {
        let as_node = self.node.verify(metadata);
        if as_node.is_ok() {
            return Ok(View::Node);
        }
        match &self.directory {
            Some(directory) if directory.verify(metadata).is_ok() => Ok(View::Directory),
            _ => as_node.map(|()| View::Node),
        }
    }
}

/// The gate of ConfigService: a node or directory token (its stream
/// checks which), or a caller the control plane knows (ListNodes).
#[derive(Debug, Clone)]
pub struct FeedGate {
    /// The feed's tokens.
    pub feed: FeedAuth,
    /// Everyone else.
    pub access: Access,
}

impl server_kit::gate::Gate for FeedGate {
    fn check(
        &self,
        metadata: tonic::metadata::MetadataMap,
    ) -> server_kit::gate::BoxFuture<Result<Option<server_kit::access::Caller>, Status>> {
        let gate = self.clone();
        Box::pin(async move {
            if gate.feed.view(&metadata).is_ok() {
                return Ok(None);
            }
            gate.access.authenticate(&metadata).await.map(Some)
        })
    }
}

/// The ConfigService implementation.
#[derive(Debug, Clone)]
pub struct ConfigApi {
    feed: ConfigFeed,
    store: Store,
    feed_auth: FeedAuth,
    access: Access,
    tls: ServerTls,
    stop: watch::Receiver<bool>,
}

impl ConfigApi {
    /// The service over `feed`. Streams end (UNAVAILABLE, so nodes reconnect
    /// elsewhere) when `stop` turns true.
    pub fn new(
        feed: ConfigFeed,
        store: Store,
        feed_auth: FeedAuth,
        access: Access,
        tls: ServerTls,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self {
            feed,
            store,
            feed_auth,
            access,
            tls,
            stop,
        }
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<EncodedConfigUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl ConfigService for ConfigApi {
    type WatchConfigStream = UpdateStream;

    async fn watch_config(
        &self,
        request: Request<Streaming<WatchConfigRequest>>,
    ) -> Result<Response<Self::WatchConfigStream>, Status> {
        let view = self.feed_auth.view(request.metadata())?;
        // With mutual TLS a node is who its certificate says.
        let certified = require_client_certificate(&self.tls, &request)?;
        let mut inbound = request.into_inner();
        let subscribe = match inbound.message().await?.and_then(|m| m.message) {
            Some(NodeMessage::Subscribe(subscribe)) => subscribe,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message must be `subscribe`",
                ));
            }
        };
        if subscribe.node_id.is_empty() || subscribe.node_id.len() > MAX_NODE_ID {
            return Err(Status::invalid_argument(format!(
                "subscribe.node_id: required, at most {MAX_NODE_ID} bytes"
            )));
        }
        let node_id = match certified {
            Some(identity) => {
                if identity != subscribe.node_id {
                    tracing::info!(claimed = %subscribe.node_id, certified = %identity, "node id taken from its certificate");
                }
                identity
            }
            None => subscribe.node_id.clone(),
        };
        let (outbound, updates) = mpsc::channel(STREAM_BUFFER);
        let session = Session {
            id: self.feed.nodes().open_session(),
            api: self.clone(),
            node_id,
            view,
            outbound,
            sent: subscribe.last_applied_version,
            stop: self.stop.clone(),
        };
        tokio::spawn(session.run(subscribe, inbound));
        Ok(Response::new(Box::pin(ReceiverStream::new(updates))))
    }

    async fn list_nodes(
        &self,
        request: Request<ListNodesRequest>,
    ) -> Result<Response<ListNodesResponse>, Status> {
        self.access.operator(&request, "the list of nodes").await?;
        // While the store is down: this replica's own nodes, from memory,
        // and the outage said plainly.
        let (nodes, store_outage) = match self.store.list_nodes().await {
            Ok(nodes) => {
                self.feed.store_recovered();
                (nodes, None)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot list nodes from the store; listing this replica's from memory");
                self.feed.store_failed(&error).await;
                let outage = self
                    .feed
                    .store_outage()
                    .await
                    .map(|(outage, serving)| StoreOutage {
                        since: Some(timestamp(outage.since_ms)),
                        serving_version: serving,
                        reason: outage.reason,
                    });
                (self.feed.nodes().records(), outage)
            }
        };
        let now = now_ms();
        // A replica that died could not mark its nodes gone: trust
        // `connected` only while heartbeats are fresh.
        let stale_after = i64::try_from((HEARTBEAT * 3).as_millis()).unwrap_or(i64::MAX);
        Ok(Response::new(ListNodesResponse {
            nodes: nodes
                .into_iter()
                .map(|node| Node {
                    connected: node.connected && now - node.last_seen_ms < stale_after,
                    node_id: node.node_id,
                    applied_version: node.applied_version,
                    last_seen: Some(timestamp(node.last_seen_ms)),
                    rejections: node
                        .rejections
                        .into_iter()
                        .map(|r| ConnectorRejection {
                            connector_id: r.connector_id,
                            reason: r.reason,
                        })
                        .collect(),
                })
                .collect(),
            store_outage,
        }))
    }
}

/// One node's stream.
struct Session {
    id: u64,
    api: ConfigApi,
    node_id: String,
    /// What this stream carries; directory streams (the stats service) are
    /// not nodes and stay out of ListNodes.
    view: View,
    outbound: mpsc::Sender<Result<EncodedConfigUpdate, Status>>,
    /// The version the node has once it applies everything sent so far.
    sent: u64,
    stop: watch::Receiver<bool>,
}

/// Why a session ended.
enum End {
    NodeLeft,
    Failed(Status),
}

impl Session {
    async fn run(mut self, subscribe: Subscribe, mut inbound: Streaming<WatchConfigRequest>) {
        tracing::info!(node_id = %self.node_id, last_applied_version = subscribe.last_applied_version, "node connected");
        // Subscribe before catching up: nothing published meanwhile is missed.
        let mut deltas = self.api.feed.subscribe();
        self.record(subscribe.last_applied_version, Vec::new());
        let mut stop = self.stop.clone();
        let end = match self.catch_up().await {
            Err(end) => end,
            Ok(()) => loop {
                tokio::select! {
                    () = stopped(&mut stop) => {
                        break End::Failed(Status::unavailable("control plane shutting down; reconnect"));
                    }
                    message = inbound.message() => match message {
                        Ok(Some(message)) => self.on_node_message(message),
                        Ok(None) | Err(_) => break End::NodeLeft,
                    },
                    delta = deltas.recv() => {
                        if let Err(end) = self.on_delta(delta).await {
                            break end;
                        }
                    }
                }
            },
        };
        if let End::Failed(status) = end {
            tracing::info!(node_id = %self.node_id, %status, "ending node stream");
            // Best effort: a node that stopped reading must not hold the drain.
            let _ = self.outbound.try_send(Err(status));
        }
        if self.view == View::Node {
            self.api.feed.nodes().disconnected(&self.node_id, self.id);
        }
        tracing::info!(node_id = %self.node_id, "node disconnected");
    }

    /// Sends whatever the node lacks, from the database.
    async fn catch_up(&mut self) -> Result<(), End> {
        match self.api.feed.catch_up(self.view, self.sent).await {
            Ok(Some(update)) => self.send(update).await,
            Ok(None) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, node_id = %self.node_id, "cannot read configuration for node");
                Err(End::Failed(Status::unavailable(
                    "configuration store unavailable; reconnect",
                )))
            }
        }
    }

    async fn on_delta(
        &mut self,
        delta: Result<Arc<Delta>, broadcast::error::RecvError>,
    ) -> Result<(), End> {
        match delta {
            Ok(delta) if delta.reset => self.send(delta.views.get(self.view).clone()).await,
            Ok(delta) if delta.views.version <= self.sent => Ok(()),
            Ok(delta) if delta.from == self.sent => {
                self.send(delta.views.get(self.view).clone()).await
            }
            // Behind or ahead of the shared change: read exactly what this node needs.
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up().await,
            Err(broadcast::error::RecvError::Closed) => Err(End::Failed(Status::unavailable(
                "control plane shutting down; reconnect",
            ))),
        }
    }

    /// Sends `update`, unless shutdown comes first: a node that stopped
    /// reading must not hold the drain.
    async fn send(&mut self, update: EncodedConfigUpdate) -> Result<(), End> {
        let version = update.version();
        tokio::select! {
            sent = self.outbound.send(Ok(update)) => sent.map_err(|_| End::NodeLeft)?,
            () = stopped(&mut self.stop) => {
                return Err(End::Failed(Status::unavailable("control plane shutting down; reconnect")));
            }
        }
        self.sent = version;
        Ok(())
    }

    fn on_node_message(&mut self, message: WatchConfigRequest) {
        match message.message {
            Some(NodeMessage::Ack(ack)) => self.record(ack.version, Vec::new()),
            Some(NodeMessage::Nack(nack)) => {
                let rejections: Vec<_> = nack
                    .rejections
                    .into_iter()
                    .map(|r| Rejection {
                        connector_id: r.connector_id,
                        reason: r.reason,
                    })
                    .collect();
                tracing::warn!(node_id = %self.node_id, version = nack.version, ?rejections, "node could not apply connectors");
                self.record(nack.version, rejections);
            }
            Some(NodeMessage::Subscribe(_)) | None => {
                tracing::debug!(node_id = %self.node_id, "ignoring a repeated subscribe");
            }
        }
    }

    fn record(&self, applied_version: u64, rejections: Vec<Rejection>) {
        if self.view == View::Directory {
            return;
        }
        self.api
            .feed
            .nodes()
            .applied(&self.node_id, self.id, applied_version, rejections);
    }
}

//! StatsService: outcome intake from nodes (the outcomes token), statistics
//! for operators and for each workspace's admins (API keys the directory
//! lists, scoped to the workspace owning the connector).

use std::pin::Pin;

use eventconnectors_proto::v1::stats_service_server::StatsService;
use eventconnectors_proto::v1::{
    DeleteConnectorStatsRequest, DeleteConnectorStatsResponse, GetConnectorStatsRequest,
    GetConnectorStatsResponse, ListRecentFailuresRequest, ListRecentFailuresResponse, OutcomeAck,
    OutcomeBatch,
};
use futures::{Stream, StreamExt};
use server_kit::access::{Bootstrap, Scope, presented_digest};
use server_kit::auth::BearerAuth;
use server_kit::tls::{ServerTls, require_client_certificate};
use server_kit::violations::Violations;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::batch::Applied;
use crate::clock::Clock;
use crate::counters::{CounterError, Counters};
use crate::directory::{Directory, Owner};
use crate::ranges::{self, RangeRequest, Retention};
use crate::{failures, intake, metrics, query};

/// Acks buffered per stream before intake waits for the node to read them.
const ACK_BUFFER: usize = 64;
/// Batches of one stream applied at the same time.
const BATCHES_IN_FLIGHT: usize = 16;

/// The StatsService implementation.
#[derive(Debug, Clone)]
pub struct StatsApi {
    counters: Counters,
    retention: Retention,
    clock: Clock,
    outcomes_auth: BearerAuth,
    bootstrap: Bootstrap,
    directory: Directory,
    tls: ServerTls,
}

/// Who may do what here, for [`StatsApi::new`].
#[derive(Debug, Clone)]
pub struct StatsAccess {
    /// Nodes reporting outcomes.
    pub outcomes: BearerAuth,
    /// The bootstrap operator token.
    pub bootstrap: Bootstrap,
    /// Connector owners and API keys.
    pub directory: Directory,
    /// This server's TLS (mutual TLS: nodes must present certificates).
    pub tls: ServerTls,
}

fn unavailable(error: CounterError) -> Status {
    tracing::warn!(%error, "counter store failed");
    metrics::store_error();
    Status::unavailable("the counter store is unavailable; retry")
}

fn require_connector(connector_id: &str) -> Result<(), Status> {
    if connector_id.is_empty() {
        return Err(Violations::one("connector_id", "required").into_status());
    }
    Ok(())
}

impl StatsApi {
    /// The service over `counters`, telling time by `clock`.
    pub fn new(
        counters: Counters,
        retention: Retention,
        clock: Clock,
        access: StatsAccess,
    ) -> Self {
        Self {
            counters,
            retention,
            clock,
            outcomes_auth: access.outcomes,
            bootstrap: access.bootstrap,
            directory: access.directory,
            tls: access.tls,
        }
    }

    /// Before a request is decoded: UNAUTHENTICATED unless the credential
    /// is one this service knows (the outcomes token, an operator token or
    /// a valid key); each RPC then checks it is the right one.
    pub fn gate(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        if self.outcomes_auth.verify(metadata).is_ok() {
            return Ok(());
        }
        self.scope(metadata).map(|_| ())
    }

    /// The caller's scope.
    fn scope(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Scope, Status> {
        let presented = presented_digest(metadata)?;
        Ok(self.directory.caller(&self.bootstrap, &presented)?.scope)
    }

    /// PERMISSION_DENIED unless the caller administers the workspace that
    /// owns `connector_id`.
    fn authorize(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        connector_id: &str,
    ) -> Result<(), Status> {
        let scope = self.scope(metadata)?;
        if scope == Scope::Operator {
            return Ok(());
        }
        match self.directory.owner(connector_id) {
            Owner::Workspace(owner) if scope.administers(&owner) => Ok(()),
            Owner::NotYetKnown if matches!(scope, Scope::Admin(_)) => Err(Status::unavailable(
                "the stats service has not received the connector directory yet; retry",
            )),
            _ => Err(scope.denied(&format!("connector {connector_id}"))),
        }
    }

    /// Applies a batch (each connector's part atomically, all at most once).
    async fn apply(&self, batch: &OutcomeBatch) -> Result<(), Status> {
        let parts = intake::split(batch, self.clock.now(), self.retention).map_err(|reason| {
            Status::invalid_argument(format!("batch {}: {reason}", batch.batch_id))
        })?;
        let connectors = parts.len();
        let applied = self
            .counters
            .apply_batch(&batch.batch_id, parts)
            .await
            .map_err(unavailable)?;
        metrics::batch(batch.counts.len(), &applied);
        let duplicates = applied.iter().filter(|a| **a == Applied::Duplicate).count();
        let tombstoned = applied
            .iter()
            .filter(|a| **a == Applied::Tombstoned)
            .count();
        tracing::debug!(batch_id = %batch.batch_id, node_id = %batch.node_id, connectors, duplicates, tombstoned, "outcome batch");
        Ok(())
    }
}

type AckStream = Pin<Box<dyn Stream<Item = Result<OutcomeAck, Status>> + Send>>;

#[tonic::async_trait]
impl StatsService for StatsApi {
    type ReportOutcomesStream = AckStream;

    async fn report_outcomes(
        &self,
        request: Request<Streaming<OutcomeBatch>>,
    ) -> Result<Response<Self::ReportOutcomesStream>, Status> {
        self.outcomes_auth.verify(request.metadata())?;
        if let Some(node) = require_client_certificate(&self.tls, &request)? {
            tracing::debug!(%node, "outcome stream from a certified node");
        }
        let batches = request.into_inner();
        let (acks, outbound) = mpsc::channel(ACK_BUFFER);
        let api = self.clone();
        tokio::spawn(async move {
            // Batches of one stream are applied concurrently (each is
            // idempotent and acknowledged by id, so order does not matter).
            let mut replies = batches
                .take_while(|message| {
                    if let Err(status) = message {
                        tracing::debug!(%status, "outcome stream ended");
                    }
                    std::future::ready(message.is_ok())
                })
                .filter_map(|message| std::future::ready(message.ok()))
                .map(|batch| {
                    let api = api.clone();
                    async move {
                        match api.apply(&batch).await {
                            Ok(()) => Ok(OutcomeAck {
                                batch_id: batch.batch_id,
                                rejected: String::new(),
                            }),
                            // An invalid batch would be invalid again:
                            // refused by its ack, so the node drops it
                            // instead of re-sending it on every stream.
                            Err(status) if status.code() == tonic::Code::InvalidArgument => {
                                tracing::warn!(batch_id = %batch.batch_id, node_id = %batch.node_id, reason = %status.message(), "invalid outcome batch refused");
                                metrics::batch_refused();
                                Ok(OutcomeAck {
                                    batch_id: batch.batch_id,
                                    rejected: status.message().to_owned(),
                                })
                            }
                            Err(status) => Err(status),
                        }
                    }
                })
                .buffer_unordered(BATCHES_IN_FLIGHT);
            while let Some(reply) = replies.next().await {
                let failed = reply.is_err();
                if acks.send(reply).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(outbound))))
    }

    async fn get_connector_stats(
        &self,
        request: Request<GetConnectorStatsRequest>,
    ) -> Result<Response<GetConnectorStatsResponse>, Status> {
        let started = std::time::Instant::now();
        let (metadata, _, request) = request.into_parts();
        require_connector(&request.connector_id)?;
        self.authorize(&metadata, &request.connector_id)?;
        let range = RangeRequest {
            preset: request.preset,
            from: request.from.map(|t| t.seconds),
            to: request.to.map(|t| t.seconds),
            time_zone: &request.time_zone,
        };
        let plan = ranges::plan(&range, self.clock.now(), self.retention)
            .map_err(Violations::into_status)?;
        let keys: Vec<String> = plan
            .points
            .iter()
            .flat_map(|p| p.buckets.iter().cloned())
            .collect();
        let (buckets, samples) = tokio::try_join!(
            self.counters.read(&request.connector_id, &keys),
            self.counters.samples(&request.connector_id)
        )
        .map_err(unavailable)?;
        let response = query::summarize(&plan, &buckets, &samples);
        metrics::query(started.elapsed());
        Ok(Response::new(response))
    }

    async fn list_recent_failures(
        &self,
        request: Request<ListRecentFailuresRequest>,
    ) -> Result<Response<ListRecentFailuresResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        require_connector(&request.connector_id)?;
        self.authorize(&metadata, &request.connector_id)?;
        let (pushed, list) = self
            .counters
            .recent_failures(&request.connector_id)
            .await
            .map_err(unavailable)?;
        let oldest_kept = self.clock.now() - ranges::secs(self.retention.days);
        let (failures, next_page_token) = failures::page(
            &request.connector_id,
            pushed,
            &list,
            &request.page_token,
            request.page_size,
            oldest_kept,
        )
        .map_err(Violations::into_status)?;
        Ok(Response::new(ListRecentFailuresResponse {
            failures,
            next_page_token,
        }))
    }

    async fn delete_connector_stats(
        &self,
        request: Request<DeleteConnectorStatsRequest>,
    ) -> Result<Response<DeleteConnectorStatsResponse>, Status> {
        self.scope(request.metadata())?
            .require_operator("erasing statistics")?;
        let connector_id = request.into_inner().connector_id;
        require_connector(&connector_id)?;
        let buckets = ranges::all_buckets(self.clock.now(), self.retention);
        self.counters
            .erase(&connector_id, &buckets)
            .await
            .map_err(unavailable)?;
        tracing::info!(%connector_id, "connector statistics erased");
        Ok(Response::new(DeleteConnectorStatsResponse {}))
    }
}

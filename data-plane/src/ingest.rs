//! IngestService: Ingest (a batch per call) and IngestStream (a batch per
//! message, answered in order). Both need an ingest credential (a key scoped
//! to a workspace, an operator key, or the bootstrap ingest token), refuse with
//! UNAVAILABLE until the node has its first configuration and once it is
//! shutting down, and answer RESOURCE_EXHAUSTED when the queues could take
//! none of the events.

use std::pin::Pin;
use std::sync::Arc;

use eventconnectors_proto::v1::ingest_service_server::IngestService;
use eventconnectors_proto::v1::{IngestRequest, IngestResponse};
use futures::Stream;
use server_kit::access::{Bootstrap, KeyDigest, KeyRing, presented_digest};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use crate::config_feed::ConfigState;
use crate::event_log::{self, AppendError, EventLog};
use crate::routing::{Admission, Dispatcher, Intake};

/// A credential the gate let in: its digest (streams check it again for
/// every batch) and where it may ingest (`None`: every workspace).
#[derive(Debug, Clone)]
struct Admitted {
    presented: KeyDigest,
    scope: Option<Arc<str>>,
}

/// Batches larger than this are admitted on a blocking thread, so one big
/// batch does not hold up the timers and sockets of the async workers.
const INLINE_EVENTS: usize = 256;

/// The IngestService implementation.
#[derive(Debug, Clone)]
pub struct IngestApi {
    dispatcher: Arc<Dispatcher>,
    bootstrap: Bootstrap,
    config: ConfigState,
    max_batch_events: usize,
    /// Durable mode: where accepted events are stored.
    event_log: Option<(Arc<EventLog>, usize)>,
}

impl IngestApi {
    /// Ingest over `dispatcher`, for callers presenting a `bootstrap`
    /// token or a key valid in `config`.
    pub fn new(
        dispatcher: Arc<Dispatcher>,
        bootstrap: Bootstrap,
        config: ConfigState,
        max_batch_events: usize,
    ) -> Self {
        Self {
            dispatcher,
            bootstrap,
            config,
            max_batch_events,
            event_log: None,
        }
    }

    /// The same API in the durable mode: events are stored in `log`
    /// (checked against `max_event_bytes`) instead of queued here.
    pub fn with_event_log(mut self, log: Option<Arc<EventLog>>, max_event_bytes: usize) -> Self {
        self.event_log = log.map(|log| (log, max_event_bytes));
        self
    }

    /// Before a request is decoded: UNAUTHENTICATED or PERMISSION_DENIED
    /// unless the credential may ingest somewhere (so a stranger cannot
    /// make the node read a large message). What it found goes with the
    /// request, so the handler does not check again.
    pub fn gate(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let presented = presented_digest(request.metadata())?;
        let scope = self.scope(&presented)?;
        request
            .extensions_mut()
            .insert(Admitted { presented, scope });
        Ok(request)
    }

    /// The credential's digest and scope: as the gate found them, or (for
    /// a server without the gate) checked now.
    fn admitted<T>(&self, request: &Request<T>) -> Result<Admitted, Status> {
        if let Some(admitted) = request.extensions().get::<Admitted>() {
            return Ok(admitted.clone());
        }
        let presented = presented_digest(request.metadata())?;
        let scope = self.scope(&presented)?;
        Ok(Admitted { presented, scope })
    }

    /// The workspace the credential with digest `presented` may ingest
    /// into (`None`: every one), by the keys valid now.
    fn scope(&self, presented: &KeyDigest) -> Result<Option<Arc<str>>, Status> {
        let snapshot = self.config.current();
        let empty = KeyRing::default();
        let keys = snapshot.as_ref().map_or(&empty, |s| s.keys());
        let caller = match self.bootstrap.caller(presented, keys) {
            // Before the first configuration no key is known yet: a key
            // may be valid, so "retry", not "unknown".
            Err(_) if snapshot.is_none() => {
                return Err(Status::unavailable(
                    "the node has no configuration yet; retry shortly",
                ));
            }
            result => result?,
        };
        Ok(caller.scope.ingest_workspace()?.map(Arc::from))
    }

    async fn take(
        &self,
        scope: Option<Arc<str>>,
        request: IngestRequest,
    ) -> Result<IngestResponse, Status> {
        match self.dispatcher.intake() {
            Intake::Starting => {
                return Err(Status::unavailable(
                    "the node has no configuration yet; retry shortly",
                ));
            }
            Intake::Closed => return Err(Status::unavailable("the node is shutting down")),
            Intake::Open => {}
        }
        let count = request.events.len();
        if count > self.max_batch_events {
            return Err(Status::invalid_argument(format!(
                "{count} events in one request; the limit is {}",
                self.max_batch_events
            )));
        }
        let sequence = request.sequence;
        if let Some((log, max_event_bytes)) = &self.event_log {
            let max = *max_event_bytes;
            let (checked, admission) = if count <= INLINE_EVENTS {
                event_log::check(request.events, scope.as_deref(), max)
            } else {
                tokio::task::spawn_blocking(move || {
                    event_log::check(request.events, scope.as_deref(), max)
                })
                .await
                .map_err(|error| Status::internal(format!("admission failed: {error}")))?
            };
            let Admission { accepted, rejected } =
                log.append(checked, admission)
                    .await
                    .map_err(|error| match error {
                        AppendError::Full(_) => Status::resource_exhausted(error.to_string()),
                        AppendError::NotReady | AppendError::Unavailable(_) => {
                            Status::unavailable(error.to_string())
                        }
                    })?;
            return Ok(IngestResponse {
                sequence,
                accepted,
                rejected,
            });
        }
        let admission = if count <= INLINE_EVENTS {
            self.dispatcher.admit(request.events, scope.as_deref())
        } else {
            let dispatcher = Arc::clone(&self.dispatcher);
            tokio::task::spawn_blocking(move || dispatcher.admit(request.events, scope.as_deref()))
                .await
                .map_err(|error| Status::internal(format!("admission failed: {error}")))?
        };
        if admission.all_queue_full() {
            return Err(Status::resource_exhausted(
                "the node's queues are full; no event was accepted, retry later",
            ));
        }
        let Admission { accepted, rejected } = admission;
        Ok(IngestResponse {
            sequence,
            accepted,
            rejected,
        })
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<IngestResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IngestService for IngestApi {
    async fn ingest(
        &self,
        request: Request<IngestRequest>,
    ) -> Result<Response<IngestResponse>, Status> {
        let Admitted { scope, .. } = self.admitted(&request)?;
        self.take(scope, request.into_inner())
            .await
            .map(Response::new)
    }

    type IngestStreamStream = ResponseStream;

    async fn ingest_stream(
        &self,
        request: Request<Streaming<IngestRequest>>,
    ) -> Result<Response<Self::IngestStreamStream>, Status> {
        // The credential is checked when the stream opens and again for
        // every batch: a key revoked meanwhile ends the stream.
        let Admitted { presented, .. } = self.admitted(&request)?;
        let api = self.clone();
        let mut requests = request.into_inner();
        let responses = async_stream_of(move |sender| async move {
            loop {
                // A shutdown ends the stream at once (the producer reconnects
                // to another node) instead of holding it for the grace period.
                let next = tokio::select! {
                    next = requests.next() => next,
                    () = api.dispatcher.intake_closed() => {
                        let _ = sender.send(Err(Status::unavailable("the node is shutting down"))).await;
                        break;
                    }
                };
                let Some(next) = next else { break };
                let result = match next {
                    Ok(batch) => match api.scope(&presented) {
                        Ok(scope) => api.take(scope, batch).await,
                        Err(status) => Err(status),
                    },
                    Err(status) => Err(status),
                };
                let failed = result.is_err();
                if sender.send(result).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Response::new(responses))
    }
}

/// A response stream fed by `produce` through a small channel (so a slow
/// reader slows the producer down instead of piling responses up).
fn async_stream_of<F, Fut>(produce: F) -> ResponseStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<IngestResponse, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    tokio::spawn(produce(sender));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))
}

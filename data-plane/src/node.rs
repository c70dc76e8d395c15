//! A node's lifecycle: follow the configuration, take events once the first
//! snapshot is applied (readiness follows), deliver, report outcomes; on
//! SIGTERM stop taking events, drain the queues within the grace period,
//! flush outcomes, exit. In the durable mode the drain hands back instead:
//! stop pulling from the log, let requests in flight finish, give every
//! other event back to the log for the other nodes, flush outcomes (their
//! events are then acknowledged), exit.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use eventconnectors_proto::v1::ingest_service_server::{IngestServiceServer, SERVICE_NAME};
use partners::base_urls::BaseUrlError;
use server_kit::access::{Bootstrap, Scope};
use server_kit::backoff::Backoff;
use server_kit::{serving, shutdown};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tonic_health::ServingStatus;

use crate::args::Args;
use crate::config_feed::{ConfigState, WatchSettings, watch_config};
use crate::delivery::retry::MAX_BACKOFF;
use crate::delivery::{BreakerSettings, Delivery, PartnerClient, RetryPolicy};
use crate::event_log::EventLog;
use crate::ingest::IngestApi;
use crate::metrics;
use crate::outcomes::{Outcomes, ReporterSettings, report};
use crate::routing::{AdmitLimits, Dispatcher, Intake};

/// Health service name that reports liveness (always SERVING while the
/// process runs); the default service ("") reports readiness.
pub const LIVENESS_SERVICE: &str = "liveness";

/// Longest node id: outcome batch ids (the node id, `-` and 32 hex
/// digits) must fit the stats service's 128 bytes.
const MAX_NODE_ID_BYTES: usize = 95;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The ingest token is empty.
    #[error(transparent)]
    Token(#[from] server_kit::auth::EmptyToken),
    /// STATS_URL without an outcomes token, or the node token reused.
    #[error("{0}")]
    OutcomesToken(&'static str),
    /// DESTINATION_ALLOWLIST does not parse.
    #[error(transparent)]
    Allowlist(#[from] partners::destination::AllowlistError),
    /// A base-URL override names an address the policy refuses.
    #[error("--partner-base-url {partner}={url}: {reason}")]
    RefusedBaseUrl {
        /// The partner.
        partner: &'static str,
        /// Its override.
        url: String,
        /// Why.
        reason: String,
    },
    /// NODE_ID too long for outcome batch ids.
    #[error(
        "NODE_ID is {0} bytes: it must be 1 to 95 (outcome batch ids are the node id and 33 more)"
    )]
    NodeId(usize),
    /// A TLS file is unusable.
    #[error(transparent)]
    Tls(#[from] server_kit::tls::TlsFileError),
    /// A partner base-URL override is unusable.
    #[error(transparent)]
    BaseUrl(#[from] BaseUrlError),
    /// The HTTP client could not be built (TLS roots).
    #[error("cannot build the partner HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The token for the stats service: required with a stats URL, and never
/// the node token.
fn outcomes_token(args: &Args) -> Result<Option<server_kit::auth::Secret>, StartError> {
    match (&args.stats_url, &args.outcomes_token) {
        (None, _) => Ok(None),
        (Some(_), None) => Err(StartError::OutcomesToken(
            "STATS_URL is set but OUTCOMES_TOKEN is not: set it to the stats service's OUTCOMES_TOKEN",
        )),
        (Some(_), Some(token)) if token.expose().trim() == args.node_token.expose().trim() => {
            Err(StartError::OutcomesToken(
                "OUTCOMES_TOKEN must differ from NODE_TOKEN: the stats service would hold the credential that reads partner credentials",
            ))
        }
        (Some(_), Some(token)) => Ok(Some(token.clone())),
    }
}

/// Refuses at start a base URL that names a refused literal address (a
/// name is checked at each connection).
fn check_base_urls(
    urls: &partners::base_urls::BaseUrls,
    policy: &partners::destination::DestinationPolicy,
) -> Result<(), StartError> {
    for spec in partners::PARTNERS {
        let url = urls.get(spec.id);
        let Ok(parsed) = url::Url::parse(url) else {
            continue;
        };
        if let Some(Err(refusal)) = policy.check_url(&parsed) {
            return Err(StartError::RefusedBaseUrl {
                partner: spec.id,
                url: url.to_owned(),
                reason: refusal.to_string(),
            });
        }
    }
    Ok(())
}

/// A data-plane node ready to serve.
#[derive(Debug)]
pub struct DataPlane {
    config: ConfigState,
    watch: WatchSettings,
    reporter: ReporterSettings,
    dispatcher: Arc<Dispatcher>,
    outcomes: Outcomes,
    ingest: IngestApi,
    event_log: Option<Arc<EventLog>>,
    max_message_bytes: usize,
    tls: server_kit::tls::ServerTls,
    max_connection_age: Duration,
    grace: Duration,
}

impl DataPlane {
    /// A node configured by `args`; nothing runs until [`DataPlane::serve`].
    pub fn new(args: &Args) -> Result<Self, StartError> {
        let flags = &args.delivery;
        let node_id = args.node_id();
        if node_id.is_empty() || node_id.len() > MAX_NODE_ID_BYTES {
            return Err(StartError::NodeId(node_id.len()));
        }
        let outcomes = Outcomes::new(&node_id, flags.outcome_buffer_batches);
        let destinations =
            partners::destination::DestinationPolicy::with_allowlist(&args.destination_allowlist)?;
        let base_urls = args.partners.base_urls()?;
        check_base_urls(&base_urls, &destinations)?;
        let delivery = Arc::new(Delivery {
            client: PartnerClient::new(flags.delivery_timeout, destinations)?,
            outcomes: outcomes.clone(),
            retry: RetryPolicy {
                max_retries: flags.delivery_retries,
                backoff: Backoff::new(flags.retry_backoff, MAX_BACKOFF),
                ..RetryPolicy::default()
            },
            breaker: BreakerSettings {
                window: flags.breaker_window,
                min_requests: flags.breaker_min_requests,
                error_rate: flags.breaker_error_rate,
                open_for: flags.breaker_open_for,
            },
            base_urls,
            linger: flags.linger,
            concurrency: flags.connector_concurrency,
            tasks: TaskTracker::new(),
        });
        let dispatcher = Arc::new(Dispatcher::new(
            AdmitLimits {
                max_event_bytes: args.limits.max_event_bytes,
                connector_capacity: args.limits.connector_queue_capacity,
                node_bytes: args.limits.node_queue_bytes,
                // At least one large event, whatever the share.
                workspace_bytes: ((args.limits.node_queue_bytes as f64
                    * args.limits.workspace_queue_share)
                    as usize)
                    .max(args.limits.max_event_bytes * 2),
            },
            args.limits.node_queue_capacity,
            delivery,
        ));
        let config = ConfigState::new().acknowledged_after_sync();
        let upstream = server_kit::tls::UpstreamTls::from_flags(&args.upstream)?;
        let event_log = EventLog::new(&args.event_log, &node_id, args.limits.node_queue_capacity);
        let ingest = IngestApi::new(
            Arc::clone(&dispatcher),
            Bootstrap::default().with(args.ingest_token.expose(), Scope::IngestAny)?,
            config.clone(),
            args.limits.max_batch_events,
        )
        .with_event_log(event_log.clone(), args.limits.max_event_bytes);
        Ok(Self {
            config,
            watch: WatchSettings {
                endpoints: args.control_plane.clone(),
                node_id,
                node_token: args.node_token.clone(),
                tls: upstream.clone(),
                backoff_min: args.config_backoff_min,
                backoff_max: args.config_backoff_max,
            },
            reporter: ReporterSettings {
                url: args.stats_url.clone(),
                outcomes_token: outcomes_token(args)?,
                tls: upstream,
                flush_interval: flags.outcome_flush_interval,
                backoff: (args.config_backoff_min, args.config_backoff_max),
            },
            dispatcher,
            outcomes,
            ingest,
            event_log,
            max_message_bytes: args.limits.max_message_bytes,
            tls: server_kit::tls::ServerTls::from_flags(&args.tls)?,
            max_connection_age: args.limits.max_connection_age,
            grace: args.serve.shutdown_grace,
        })
    }

    /// The node's configuration.
    pub fn config(&self) -> &ConfigState {
        &self.config
    }

    /// The node's routing and lanes.
    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.dispatcher
    }

    /// The node's outcomes, pending and sealed.
    pub fn outcomes(&self) -> &Outcomes {
        &self.outcomes
    }

    /// The durable log, in the durable mode.
    pub fn event_log(&self) -> Option<&Arc<EventLog>> {
        self.event_log.as_ref()
    }

    /// Serves until `shutdown` resolves, then drains and flushes.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let (health, routes) = serving::base_routes(&[SERVICE_NAME]);
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        health
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        let ingest = self.ingest.clone();
        let gate = move |request: tonic::Request<()>| ingest.gate(request);
        let routes = routes.add_service(tonic::service::interceptor::InterceptedService::new(
            IngestServiceServer::new(self.ingest.clone())
                .max_decoding_message_size(self.max_message_bytes),
            gate,
        ));

        // The long-lived tasks: should one end or panic before the node
        // stops, liveness fails and Kubernetes restarts the pod.
        let stopping = tokio_util::sync::CancellationToken::new();
        // Cancelled when one of them ends early: readiness stays off.
        let dead = tokio_util::sync::CancellationToken::new();
        let supervise =
            |name, task| supervised(name, task, health.clone(), stopping.clone(), dead.clone());
        let (stop_config, config_stopped) = watch::channel(false);
        let watcher = supervise(
            "configuration feed",
            Box::pin(watch_config(
                self.config.clone(),
                self.watch.clone(),
                config_stopped,
            )),
        );
        let (stop_reporter, reporter_stopped) = watch::channel(false);
        let reporter = supervise(
            "outcome reporter",
            Box::pin(report(
                self.outcomes.clone(),
                self.reporter.clone(),
                reporter_stopped,
            )),
        );
        let follower = supervise(
            "configuration follower",
            Box::pin(follow_config(
                self.config.clone(),
                Arc::clone(&self.dispatcher),
            )),
        );
        let becoming_ready = tokio::spawn(follow_readiness(
            Arc::clone(&self.dispatcher),
            self.event_log.clone(),
            health.clone(),
            stopping.clone(),
            dead.clone(),
        ));
        let gauges = supervise(
            "gauges",
            Box::pin(publish_gauges(
                Arc::clone(&self.dispatcher),
                self.event_log.clone(),
            )),
        );
        let log_stop = tokio_util::sync::CancellationToken::new();
        let (log_drained, drained) = tokio::sync::oneshot::channel::<()>();
        let (log_consumed, consumed) = tokio::sync::oneshot::channel::<()>();
        let log = self.event_log.clone().map(|log| {
            let dispatcher = Arc::clone(&self.dispatcher);
            let stop = log_stop.clone();
            supervise(
                "event log",
                Box::pin(async move {
                    log.run(dispatcher, stop, async move {
                        let _ = log_consumed.send(());
                        let _ = drained.await;
                    })
                    .await;
                }),
            )
        });

        let dispatcher = Arc::clone(&self.dispatcher);
        let readiness = health.clone();
        let stopped = stopping.clone();
        let shutdown = async move {
            shutdown.await;
            stopped.cancel();
            tracing::info!("shutting down: intake closed, draining");
            readiness
                .set_service_status("", ServingStatus::NotServing)
                .await;
            dispatcher.close_intake();
        };
        let limits = serving::ServerLimits {
            // Long-lived producer connections move to new pods after a
            // scale-up instead of staying on the old ones for ever.
            max_connection_age: Some(self.max_connection_age),
            ..serving::ServerLimits::default()
        };
        let result = serving::serve(
            routes, listener, &self.tls, &limits, health, shutdown, self.grace,
        )
        .await;
        stopping.cancel();
        becoming_ready.abort();
        // No configuration change may create a lane the drain would not stop.
        follower.abort();
        let _ = follower.await;
        match &log {
            Some(_) => {
                // Stop taking events from the log, then hand back what the
                // lanes have not sent.
                log_stop.cancel();
                let _ = consumed.await;
                self.dispatcher.hand_back(self.grace).await;
            }
            None => self.dispatcher.drain(self.grace).await,
        }
        let _ = stop_config.send(true);
        let _ = stop_reporter.send(true);
        gauges.abort();
        let _ = watcher.await;
        let _ = reporter.await;
        // Outcomes reported: their events are acknowledged; the rest go back.
        let _ = log_drained.send(());
        if let Some(log) = log {
            let _ = log.await;
        }
        result
    }
}

/// A long-lived task of the node.
type Task = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs `task` until it ends; should it end or panic before `stopping`,
/// says so and turns liveness and readiness off, so Kubernetes restarts a
/// node that would otherwise look alive while, say, no configuration
/// reaches its lanes any more.
fn supervised(
    name: &'static str,
    task: Task,
    health: tonic_health::server::HealthReporter,
    stopping: tokio_util::sync::CancellationToken,
    dead: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    use futures::FutureExt;
    tokio::spawn(async move {
        let ended = std::panic::AssertUnwindSafe(task).catch_unwind().await;
        if stopping.is_cancelled() {
            return;
        }
        dead.cancel();
        match ended {
            Ok(()) => tracing::error!(task = name, "a background task ended: the node is not live"),
            Err(_) => tracing::error!(
                task = name,
                "a background task panicked: the node is not live"
            ),
        }
        health
            .set_service_status(LIVENESS_SERVICE, ServingStatus::NotServing)
            .await;
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
    })
}

/// Readiness until shutdown (or a supervised task dies): SERVING while the
/// first configuration is applied and, in the durable mode, the event log
/// is set up and NATS is connected (a node that lost NATS leaves its Service until it is back,
/// instead of answering UNAVAILABLE to every call).
async fn follow_readiness(
    dispatcher: Arc<Dispatcher>,
    log: Option<Arc<EventLog>>,
    health: tonic_health::server::HealthReporter,
    stopping: tokio_util::sync::CancellationToken,
    dead: tokio_util::sync::CancellationToken,
) {
    let over = || stopping.is_cancelled() || dead.is_cancelled();
    let mut serving = false;
    while !over() {
        let log_ready = log.as_ref().is_none_or(|log| log.is_ready());
        let ready = dispatcher.intake() == Intake::Open && log_ready;
        if ready != serving {
            serving = ready;
            match (ready, log_ready) {
                (true, _) => tracing::info!("ready"),
                (false, false) => tracing::warn!("not ready: the event log is unreachable"),
                (false, true) => tracing::info!("not ready: no configuration applied yet"),
            }
            let status = match ready {
                true => ServingStatus::Serving,
                false => ServingStatus::NotServing,
            };
            health.set_service_status("", status).await;
            // Shutdown or a dead task may have turned readiness off
            // meanwhile: it stays off.
            if over() {
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                return;
            }
        }
        let pause = if serving { 100 } else { 20 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Applies every configuration version to the lanes; the first one opens
/// intake.
async fn follow_config(config: ConfigState, dispatcher: Arc<Dispatcher>) {
    let mut applied = config.applied();
    let mut first = true;
    loop {
        if let Some(snapshot) = config.current() {
            if dispatcher.sync(&snapshot) {
                config.mark_synced(snapshot.version());
            }
            if std::mem::take(&mut first) {
                tracing::info!(version = snapshot.version(), "first configuration applied");
            }
        }
        if applied.changed().await.is_err() {
            return;
        }
    }
}

/// Queue depths, breaker states and events held from the log, every
/// second.
async fn publish_gauges(dispatcher: Arc<Dispatcher>, log: Option<Arc<EventLog>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        for lane in dispatcher.lanes() {
            metrics::queue_depth(&lane.id, lane.depth());
            metrics::breaker_state(&lane.id, lane.breaker().gauge());
        }
        if let Some(log) = &log {
            metrics::held(log.held());
        }
    }
}

/// Starts a node on `args.listen` and serves until SIGTERM.
pub async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    tracing::info!(?args, "starting data-plane node");
    metrics::install(args.metrics_listen)?;
    let node = DataPlane::new(&args)?;
    let listener = TcpListener::bind(args.listen).await?;
    tracing::info!(address = %listener.local_addr()?, metrics = %args.metrics_listen, "serving gRPC");
    node.serve(listener, shutdown::shutdown_signal()).await?;
    tracing::info!("data-plane node stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio_util::sync::CancellationToken;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_server::Health;
    use tonic_health::server::{HealthReporter, HealthService};

    use super::*;

    async fn liveness(health: &HealthReporter) -> i32 {
        HealthService::from_health_reporter(health.clone())
            .check(tonic::Request::new(HealthCheckRequest {
                service: LIVENESS_SERVICE.to_owned(),
            }))
            .await
            .expect("a status")
            .into_inner()
            .status
    }

    #[tokio::test]
    async fn a_background_task_that_dies_fails_liveness_unless_the_node_is_stopping() {
        let health = HealthReporter::new();
        health
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        let stopping = CancellationToken::new();
        let dead = CancellationToken::new();
        supervised(
            "doomed",
            Box::pin(async { panic!("a bug") }),
            health.clone(),
            stopping.clone(),
            dead.clone(),
        )
        .await
        .expect("the supervisor itself survives");
        assert_eq!(liveness(&health).await, ServingStatus::NotServing as i32);
        assert!(dead.is_cancelled(), "readiness is told to stay off");

        health
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        supervised(
            "ended",
            Box::pin(async {}),
            health.clone(),
            stopping.clone(),
            CancellationToken::new(),
        )
        .await
        .expect("supervisor");
        assert_eq!(
            liveness(&health).await,
            ServingStatus::NotServing as i32,
            "ending early is as bad as a panic"
        );

        health
            .set_service_status(LIVENESS_SERVICE, ServingStatus::Serving)
            .await;
        stopping.cancel();
        let alive = CancellationToken::new();
        supervised(
            "done",
            Box::pin(async {}),
            health.clone(),
            stopping,
            alive.clone(),
        )
        .await
        .expect("supervisor");
        assert!(!alive.is_cancelled());
        assert_eq!(
            liveness(&health).await,
            ServingStatus::Serving as i32,
            "a task ending with the node is no alarm"
        );
    }
}

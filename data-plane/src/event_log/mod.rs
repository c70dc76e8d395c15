//! The durable mode (`EVENT_LOG=nats://…`): accepted events live in a NATS
//! JetStream stream, not in a node's memory, until every connector they go
//! to has its final outcome.
//!
//! - **Ingest** ([`append`]) checks each event as in the memory mode, then
//!   stores the call's good events in the stream, a thousand to a message,
//!   and answers the producer only once JetStream has confirmed every
//!   message. What JetStream did not confirm is refused NOT_STORED; with the
//!   log unreachable the whole call is UNAVAILABLE. A message's id is a
//!   digest of its events' workspaces and ids, so a batch re-sent as it was
//!   within the deduplication window is stored once (and reported
//!   accepted).
//! - **Delivery** (`consume`): every node pulls from one durable consumer
//!   (explicit acks), so each message goes to one node at a time. The node
//!   queues its events on their connectors and holds the message until all
//!   of them have their final outcome and the stats service has those outcomes (see
//!   [`crate::outcomes::receipt`]); meanwhile it signals progress, so retries of any
//!   length keep it. A node that dies stops signalling: JetStream hands its
//!   events to the others after the ack wait.
//! - **Shutdown**: the node stops pulling, lets requests in flight finish
//!   and gives everything else back (`-NAK`) for the other nodes at once.
//!   Nothing ends FAILED because a node stopped.
//! - **Limits**: an event delivered to nodes more than
//!   `EVENT_LOG_MAX_DELIVERIES` times is counted FAILED (OTHER, "gave up")
//!   on its connectors and removed, so an event that makes nodes crash
//!   cannot stall delivery; JetStream itself never stops redelivering
//!   (`max_deliver` is unlimited), so nothing leaves the log without an
//!   outcome. A full log (`EVENT_LOG_MAX_BYTES`) refuses new events and
//!   keeps the stored ones.
//!
//! The stream: work-queue retention (a message leaves once acknowledged),
//! file storage, `EVENT_LOG_REPLICAS` copies, `EVENT_LOG_MAX_AGE`,
//! `EVENT_LOG_MAX_BYTES` with new messages refused when full, and
//! `EVENT_LOG_DEDUP_WINDOW`. The consumer: durable, pull, explicit acks,
//! `EVENT_LOG_ACK_WAIT`, unlimited deliveries, `EVENT_LOG_MAX_ACK_PENDING`.
//! Both are created at start or brought to these settings.

pub mod append;
mod consume;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use async_nats::jetstream::{self, consumer, stream};
use server_kit::backoff::{Attempts, Backoff};
use tokio_util::sync::CancellationToken;

use crate::args::EventLogFlags;
use crate::metrics;
use crate::outcomes::receipt::{self, Ledger};
use crate::routing::Dispatcher;

pub use append::{AppendError, Checked, check};

/// How long one JetStream request (a publish's confirmation, a pull) may
/// take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes awaiting JetStream's confirmation, per connection.
const MAX_UNCONFIRMED: usize = 32 * 1024;

/// Why the log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// NATS did not answer.
    #[error("cannot connect to the event log at {url}: {source}")]
    Connect {
        /// Where.
        url: String,
        /// Why.
        source: async_nats::ConnectError,
    },
    /// The stream could not be created or brought to the settings.
    #[error("event log stream `{stream}`: {source}")]
    Stream {
        /// Which.
        stream: String,
        /// Why.
        source: jetstream::context::CreateStreamError,
    },
    /// The consumer could not be created or brought to the settings.
    #[error("event log consumer `{consumer}`: {source}")]
    Consumer {
        /// Which.
        consumer: String,
        /// Why.
        source: jetstream::stream::ConsumerError,
    },
}

/// A connection to the log with its stream and consumer in place.
#[derive(Debug)]
struct Connected {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    subject: async_nats::Subject,
    consumer: consumer::PullConsumer,
    /// The server's largest message.
    max_payload: usize,
}

/// The node's side of the durable log.
#[derive(Debug)]
pub struct EventLog {
    flags: EventLogFlags,
    node_id: String,
    connected: ArcSwapOption<Connected>,
    ledger: Arc<Ledger>,
    signals: std::sync::Mutex<Option<receipt::Signals>>,
}

impl EventLog {
    /// The log `flags` name, for node `node_id` holding at most `capacity`
    /// events at once; `None` in the memory mode.
    pub fn new(flags: &EventLogFlags, node_id: &str, capacity: usize) -> Option<Arc<Self>> {
        flags.url.as_ref()?;
        let (ledger, signals) = Ledger::new(capacity);
        Some(Arc::new(Self {
            flags: flags.clone(),
            node_id: node_id.to_owned(),
            connected: ArcSwapOption::empty(),
            ledger,
            signals: std::sync::Mutex::new(Some(signals)),
        }))
    }

    /// The stream's subject.
    fn subject(&self) -> String {
        format!("eventconnectors.{}", self.flags.stream)
    }

    /// Whether the stream and consumer are in place and the connection to
    /// NATS is up (readiness follows it).
    pub fn is_ready(&self) -> bool {
        self.connected.load().as_ref().is_some_and(|connected| {
            connected.client.connection_state() == async_nats::connection::State::Connected
        })
    }

    /// Events the node holds now.
    pub fn held(&self) -> usize {
        self.ledger.len()
    }

    /// Connects, sets up the stream and consumer (retrying until `stop`),
    /// then delivers from the log until `stop`: gives back what it has not
    /// started, waits for `drained` (the lanes' work in flight), and sends
    /// the last acknowledgements.
    pub async fn run(
        self: Arc<Self>,
        dispatcher: Arc<Dispatcher>,
        stop: CancellationToken,
        drained: impl std::future::Future<Output = ()>,
    ) {
        let mut backoff = Attempts::new(Backoff::new(
            Duration::from_millis(100),
            Duration::from_secs(5),
        ));
        let connected = loop {
            let attempt = tokio::select! {
                () = stop.cancelled() => return,
                attempt = self.connect() => attempt,
            };
            match attempt {
                Ok(connected) => break Arc::new(connected),
                Err(error) => {
                    tracing::warn!(%error, "event log not ready; ingest answers UNAVAILABLE meanwhile");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        };
        tracing::info!(stream = %self.flags.stream, consumer = %self.flags.consumer, "event log ready");
        metrics::log_connected(true);
        self.connected.store(Some(Arc::clone(&connected)));
        let signals = self
            .signals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
            .expect("the log runs once");
        let signals_stop = CancellationToken::new();
        let signaller = tokio::spawn(receipt::send_signals(
            connected.client.clone(),
            Arc::clone(&self.ledger),
            signals,
            self.flags.ack_wait / 3,
            signals_stop.clone(),
        ));
        consume::consume(&self, &connected, &dispatcher, &stop).await;
        drained.await;
        // Lanes that ended handed their events back; what is left is held
        // for outcomes the stats service has not confirmed: back too (they
        // are counted by the node that delivers them next).
        let unreported = self.ledger.give_back_all();
        tracing::info!(
            messages = self.ledger.given_back(),
            unreported,
            "stopped taking events; given back to the event log for the other nodes"
        );
        signals_stop.cancel();
        let _ = signaller.await;
    }

    async fn connect(&self) -> Result<Connected, SetupError> {
        let url = self.flags.url.clone().unwrap_or_default();
        let client = async_nats::ConnectOptions::new()
            .name(format!("eventconnectors node {}", self.node_id))
            .connection_timeout(REQUEST_TIMEOUT)
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::Disconnected => {
                        metrics::log_connected(false);
                        tracing::warn!("event log connection lost; reconnecting");
                    }
                    async_nats::Event::Connected => {
                        metrics::log_connected(true);
                        tracing::info!("event log connection back");
                    }
                    other => tracing::debug!(event = %other, "event log"),
                }
            })
            .connect(url.as_str())
            .await
            .map_err(|source| SetupError::Connect {
                url: redacted(&url),
                source,
            })?;
        let jetstream = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .max_ack_inflight(MAX_UNCONFIRMED)
            .build(client.clone());
        let flags = &self.flags;
        let subject = self.subject();
        jetstream
            .create_or_update_stream(stream::Config {
                name: flags.stream.clone(),
                description: Some("eventconnectors: accepted events until delivered".into()),
                subjects: vec![subject.clone()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                num_replicas: flags.replicas,
                max_age: flags.max_age,
                max_bytes: i64::try_from(flags.max_bytes).unwrap_or(i64::MAX),
                discard: stream::DiscardPolicy::New,
                duplicate_window: flags.dedup_window,
                ..Default::default()
            })
            .await
            .map_err(|source| SetupError::Stream {
                stream: flags.stream.clone(),
                source,
            })?;
        let consumer = jetstream
            .create_consumer_on_stream(
                consumer::pull::Config {
                    durable_name: Some(flags.consumer.clone()),
                    description: Some("eventconnectors nodes: delivery".into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: flags.ack_wait,
                    // Unlimited: past EVENT_LOG_MAX_DELIVERIES the node
                    // counts the event FAILED and acknowledges it, so no
                    // event is left in the log without an outcome.
                    max_deliver: -1,
                    max_ack_pending: flags.max_ack_pending,
                    ..Default::default()
                },
                flags.stream.as_str(),
            )
            .await
            .map_err(|source| SetupError::Consumer {
                consumer: flags.consumer.clone(),
                source,
            })?;
        Ok(Connected {
            max_payload: client.server_info().max_payload,
            client,
            jetstream,
            subject: subject.into(),
            consumer,
        })
    }
}

/// `url` without its password.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

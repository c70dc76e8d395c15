//! A JetStream stream of its own per test, on the NATS server the test
//! command made sure is running (TEST_NATS_URL, default the local one).

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream;

use crate::partners::FakePartner;

/// `count` order events of workspace `acme`, with ids `<prefix>-<n>`.
pub fn numbered_events(prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            crate::platform::event(
                &format!("{prefix}-{n}"),
                "acme",
                "order_completed",
                serde_json::json!({ "n": n }),
            )
        })
        .collect()
}

/// How many requests a recorded webhook partner got for each event id
/// (its `webhook-id`).
pub fn webhook_arrivals(partner: &FakePartner) -> HashMap<String, usize> {
    let mut arrivals = HashMap::new();
    for request in partner.requests() {
        let id = request
            .headers
            .get("webhook-id")
            .cloned()
            .unwrap_or_default();
        *arrivals.entry(id).or_insert(0) += 1;
    }
    arrivals
}

/// The NATS server the tests use.
pub fn nats_url() -> String {
    std::env::var("TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A stream name unique to one test; the stream (created by the nodes) is
/// deleted on drop.
#[derive(Debug)]
pub struct TestLog {
    /// The stream's name.
    pub stream: String,
    url: String,
}

impl Default for TestLog {
    fn default() -> Self {
        Self::new()
    }
}

impl TestLog {
    /// A new stream name on the tests' NATS server.
    pub fn new() -> Self {
        Self::on(&nats_url())
    }

    /// A new stream name on the server at `url`.
    pub fn on(url: &str) -> Self {
        Self {
            stream: format!("TEST_{}", uuid::Uuid::now_v7().simple()),
            url: url.to_owned(),
        }
    }

    /// Node flags for the durable mode on this stream (ack wait `ack_wait`).
    pub fn flags(&self, ack_wait: &str) -> Vec<String> {
        [
            "--event-log",
            &self.url,
            "--event-log-stream",
            &self.stream,
            "--event-log-ack-wait",
            ack_wait,
        ]
        .iter()
        .map(|flag| (*flag).to_owned())
        .collect()
    }

    async fn context(&self) -> jetstream::Context {
        let client = async_nats::connect(self.url.as_str())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "NATS at {} is not reachable ({error}); run the README's test command",
                    self.url
                )
            });
        jetstream::new(client)
    }

    /// Messages in the stream now (events not yet acknowledged).
    pub async fn messages(&self) -> u64 {
        let context = self.context().await;
        let mut stream = context.get_stream(&self.stream).await.expect("the stream");
        stream.info().await.expect("stream info").state.messages
    }

    /// Events the nodes' consumer has yet to deliver or to have
    /// acknowledged.
    pub async fn undelivered(&self) -> u64 {
        let context = self.context().await;
        let stream = context.get_stream(&self.stream).await.expect("the stream");
        let mut consumer: jetstream::consumer::PullConsumer = stream
            .get_consumer("delivery")
            .await
            .expect("the nodes' consumer");
        let info = consumer.info().await.expect("consumer info");
        info.num_pending + info.num_ack_pending as u64
    }

    /// Waits until the consumer has nothing left to deliver or to have
    /// acknowledged; panics after `timeout`.
    pub async fn wait_until_delivered(&self, timeout: Duration) {
        self.wait_for_none("events undelivered", timeout, || self.undelivered())
            .await;
    }

    /// Waits until the stream holds no message; panics after `timeout`.
    pub async fn wait_until_empty(&self, timeout: Duration) {
        self.wait_for_none("messages still", timeout, || self.messages())
            .await;
    }

    /// Polls `count` until it is 0; panics after `timeout`, with `what`.
    async fn wait_for_none<F: std::future::Future<Output = u64>>(
        &self,
        what: &str,
        timeout: Duration,
        count: impl Fn() -> F,
    ) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = count().await;
            if left == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{left} {what} in {} after {timeout:?}",
                self.stream
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestLog {
    fn drop(&mut self) {
        let (url, stream) = (self.url.clone(), self.stream.clone());
        crate::run_detached(move || async move {
            let client = async_nats::connect(url.as_str()).await.ok()?;
            jetstream::new(client).delete_stream(&stream).await.ok()
        });
    }
}

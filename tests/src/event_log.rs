//! A JetStream stream of its own per test, on the NATS server the test
//! command made sure is running (TEST_NATS_URL, default the local one).

use std::time::Duration;

use async_nats::jetstream;

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
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = self.undelivered().await;
            if left == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{left} events undelivered in {} after {timeout:?}",
                self.stream
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the stream holds no message; panics after `timeout`.
    pub async fn wait_until_empty(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = self.messages().await;
            if left == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{left} messages still in {} after {timeout:?}",
                self.stream
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestLog {
    fn drop(&mut self) {
        let (url, stream) = (self.url.clone(), self.stream.clone());
        // Drop may run inside a runtime: do the async work on a thread of
        // its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let client = async_nats::connect(url.as_str()).await.ok()?;
                jetstream::new(client).delete_stream(&stream).await.ok()
            })
        })
        .join();
    }
}

//! How one service reaches another (a node the control plane's feed and the
//! stats service, the stats service the control plane's directory, the
//! control plane the stats service): one channel setup.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::backoff::Attempts;
use crate::shutdown::stopped;
use crate::tls::UpstreamTls;

/// A channel to `url` (TLS for `https://`, as `tls` says): quick to give
/// up connecting, kept alive with HTTP/2 pings so a dead peer is noticed on
/// long-lived streams.
pub async fn connect(url: &str, tls: &UpstreamTls) -> Result<Channel, tonic::transport::Error> {
    endpoint(url, tls)?.connect().await
}

/// The endpoint [`connect`] connects to, for callers that connect lazily.
pub fn endpoint(url: &str, tls: &UpstreamTls) -> Result<Endpoint, tonic::transport::Error> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())?;
    if url.starts_with("https://") {
        endpoint = endpoint.tls_config(tls.config())?;
    }
    Ok(endpoint
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5)))
}

/// Why a stream to another service ended.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The URL cannot be used, or the connection failed.
    #[error("cannot connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    /// The service refused or ended the call.
    #[error("{0}")]
    Status(#[from] tonic::Status),
    /// The credential cannot be sent.
    #[error(transparent)]
    Token(#[from] crate::auth::UnsendableToken),
}

/// What a session tells [`follow_endpoints`]: that its stream delivered
/// something, so the next reconnection starts from the shortest delay.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicBool>);

impl Progress {
    /// The stream delivered a message.
    pub fn made(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// Keeps a stream open to one of `endpoints` until `stop` turns true: runs
/// `session` against each endpoint in turn (from a random one, so replicas
/// share the load), and after each session ends waits the backoff's next
/// delay, from the shortest again when the session made progress. `what`
/// names the stream in logs.
pub async fn follow_endpoints<E, F, Fut>(
    what: &str,
    endpoints: &[String],
    mut backoff: Attempts,
    stop: &mut watch::Receiver<bool>,
    mut session: F,
) where
    E: std::fmt::Display,
    F: FnMut(String, Progress) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    if endpoints.is_empty() {
        tracing::error!(what, "no endpoint configured");
        return;
    }
    let progress = Progress::default();
    let mut next = rand::random_range(0..endpoints.len());
    // A first failure is often a start-up race (the other service not
    // serving yet): worth a warning only when it repeats.
    let mut failures_in_a_row = 0u32;
    loop {
        let endpoint = &endpoints[next % endpoints.len()];
        next += 1;
        let result = tokio::select! {
            () = stopped(stop) => return,
            result = session(endpoint.clone(), progress.clone()) => result,
        };
        if progress.take() {
            backoff.reset();
            failures_in_a_row = 0;
        }
        match result {
            Ok(()) => tracing::info!(%endpoint, what, "stream closed; reconnecting"),
            Err(error) if failures_in_a_row == 0 => {
                failures_in_a_row += 1;
                tracing::info!(%endpoint, what, %error, "stream failed; reconnecting, keeping what it delivered");
            }
            Err(error) => {
                failures_in_a_row += 1;
                tracing::warn!(%endpoint, what, %error, failures_in_a_row, "stream failed again; reconnecting, keeping what it delivered");
            }
        }
        tokio::select! {
            () = stopped(stop) => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

//! How a node reaches the services it depends on (the control plane's
//! configuration feed, the stats service): one channel setup.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// A channel to `url`: quick to give up connecting, kept alive with HTTP/2
/// pings so a dead peer is noticed on long-lived streams.
pub async fn connect(url: &str) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect()
        .await
}

//! How one service reaches another (a node the control plane's feed and the
//! stats service, the stats service the control plane's directory, the
//! control plane the stats service): one channel setup.

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

//! How one service reaches another (a node the control plane's feed and the
//! stats service, the stats service the control plane's directory, the
//! control plane the stats service): one channel setup.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

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

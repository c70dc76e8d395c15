//! How a node reaches the services it depends on (the control plane's
//! configuration feed, the stats service): one channel setup and one way of
//! presenting the node token.

use std::time::Duration;

use eventconnectors_proto::auth::Secret;
use tonic::transport::{Channel, Endpoint};

/// The node token cannot be sent as metadata.
#[derive(Debug, thiserror::Error)]
#[error("the node token is not valid metadata")]
pub struct InvalidToken;

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

/// `message` carrying `authorization: Bearer <node token>`.
pub fn with_node_token<T>(message: T, token: &Secret) -> Result<tonic::Request<T>, InvalidToken> {
    let mut request = tonic::Request::new(message);
    let value = format!("Bearer {}", token.expose())
        .parse()
        .map_err(|_| InvalidToken)?;
    request.metadata_mut().insert("authorization", value);
    Ok(request)
}

//! The statistics reads (`GetConnectorStats`, `ListRecentFailures`)
//! answered on the control plane's address by relaying them, unread, to the
//! stats service: the console and an admin reach one address with one
//! credential. The caller's `authorization` goes along unchanged, so the
//! stats service applies its own scope checks (a workspace key sees its
//! own connectors only); this side only refuses strangers first (the
//! [`Gated`](server_kit::gate::Gated) wrapper) and every other method.

use std::convert::Infallible;
use std::task::{Context, Poll};

use eventconnectors_proto::v1::stats_service_server;
use server_kit::gate::BoxFuture;
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::Channel;

/// The methods relayed; the others (the node stream, the operator's
/// erase) are the stats service's own business.
const RELAYED: [&str; 2] = ["GetConnectorStats", "ListRecentFailures"];

/// Request headers that travel to the stats service (the first value of
/// each); the rest (HTTP/1.1 connection headers of a browser, cookies)
/// stay here.
const FORWARDED_HEADERS: [&str; 6] = [
    "authorization",
    "content-type",
    "te",
    "grpc-timeout",
    "grpc-encoding",
    "grpc-accept-encoding",
];

/// `eventconnectors.v1.StatsService`, relayed to the stats service at the
/// end of `channel` (`None`: no STATS_URL, every call is UNAVAILABLE).
#[derive(Debug, Clone)]
pub struct StatsRelay {
    channel: Option<Channel>,
}

impl StatsRelay {
    /// A relay to `channel`.
    pub fn new(channel: Option<Channel>) -> Self {
        Self { channel }
    }
}

impl NamedService for StatsRelay {
    const NAME: &'static str = stats_service_server::SERVICE_NAME;
}

impl tower_service::Service<http::Request<Body>> for StatsRelay {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The channel buffers; readiness is checked per call below.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let channel = self.channel.clone();
        Box::pin(async move {
            // The whole path, exactly: `/<service>/<method>` and nothing
            // after it.
            let known = request
                .uri()
                .path()
                .strip_prefix('/')
                .and_then(|path| path.strip_prefix(stats_service_server::SERVICE_NAME))
                .and_then(|path| path.strip_prefix('/'))
                .is_some_and(|method| RELAYED.contains(&method));
            if !known {
                return Ok(Status::unimplemented(format!(
                    "only {} are answered here; call the stats service for the others",
                    RELAYED.join(" and ")
                ))
                .into_http());
            }
            let Some(mut channel) = channel else {
                return Ok(Status::unavailable(
                    "statistics are not reachable here: this control plane has no STATS_URL",
                )
                .into_http());
            };
            let (parts, body) = request.into_parts();
            let mut relayed = http::Request::builder()
                .method(http::Method::POST)
                .uri(parts.uri.path())
                .version(http::Version::HTTP_2);
            for name in FORWARDED_HEADERS {
                if let Some(value) = parts.headers.get(name) {
                    relayed = relayed.header(name, value);
                }
            }
            let Ok(relayed) = relayed.body(body) else {
                return Ok(Status::invalid_argument("a request that cannot be relayed").into_http());
            };
            if let Err(error) =
                std::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut channel, cx))
                    .await
            {
                return Ok(unreachable(&error).into_http());
            }
            match tower_service::Service::call(&mut channel, relayed).await {
                Ok(response) => Ok(response),
                Err(error) => Ok(unreachable(&error).into_http()),
            }
        })
    }
}

fn unreachable(error: &tonic::transport::Error) -> Status {
    tracing::warn!(%error, "cannot reach the stats service");
    Status::unavailable(format!("the stats service cannot be reached: {error}"))
}

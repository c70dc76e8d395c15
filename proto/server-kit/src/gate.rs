//! Credentials checked before a request's message is read, even when the
//! check has to wait (a store lookup): [`Gated`] wraps a gRPC service,
//! runs its [`Gate`] on the request's headers, and answers the refusal
//! itself, so the service never decodes what a stranger sent. What the gate
//! learned (the caller) travels in the request's extensions, for the
//! handler to use instead of checking again.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::metadata::MetadataMap;
use tonic::server::NamedService;
use tonic::{Request, Status};

use crate::access::Caller;

/// A boxed future, as gates and gated services return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Decides from a request's headers whether it may be read.
pub trait Gate: Clone + Send + Sync + 'static {
    /// The caller (`None` for a credential that is not a caller's, such as
    /// a service token), or the refusal (UNAUTHENTICATED,
    /// PERMISSION_DENIED, UNAVAILABLE) answered in place of the service.
    fn check(&self, metadata: MetadataMap) -> BoxFuture<Result<Option<Caller>, Status>>;
}

/// The caller a [`Gate`] let through, from a handler's request.
pub fn caller<T>(request: &Request<T>) -> Option<&Caller> {
    request.extensions().get::<Caller>()
}

/// A gRPC service behind a [`Gate`].
#[derive(Debug, Clone)]
pub struct Gated<S, G> {
    inner: S,
    gate: G,
}

impl<S, G> Gated<S, G> {
    /// `inner`, whose requests `gate` checks first.
    pub fn new(inner: S, gate: G) -> Self {
        Self { inner, gate }
    }
}

impl<S: NamedService, G> NamedService for Gated<S, G> {
    const NAME: &'static str = S::NAME;
}

impl<S, G> tower_service::Service<http::Request<tonic::body::Body>> for Gated<S, G>
where
    S: tower_service::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    G: Gate,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        // The service that was polled ready goes with this call; a clone
        // stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let gate = self.gate.clone();
        Box::pin(async move {
            let metadata = MetadataMap::from_headers(request.headers().clone());
            match gate.check(metadata).await {
                Ok(caller) => {
                    if let Some(caller) = caller {
                        request.extensions_mut().insert(caller);
                    }
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

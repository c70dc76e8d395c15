//! The server kit: what every server binary of the platform does at its
//! edge besides its own RPCs. API keys and scopes, bearer-token auth (and presenting a token to
//! another service), health and reflection, TLS, serving with a drain
//! on SIGTERM, logs, the Prometheus endpoint, request violations answered as
//! INVALID_ARGUMENT, and the one backoff schedule every retry loop uses.

pub mod access;
pub mod auth;
pub mod backoff;
pub mod gate;
pub mod logs;
pub mod metrics;
pub mod serving;
pub mod shutdown;
pub mod tls;
pub mod upstream;
pub mod violations;

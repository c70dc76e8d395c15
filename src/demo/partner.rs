//! The demo partner: one loopback server answering like two real partners,
//! so the demo shows every kind of outcome without leaving the machine.
//!
//! - `POST /webhook`, a Standard Webhooks receiver: it verifies the
//!   signature (a bad one is 401), then answers 204, except now and then a
//!   422 (a partner error), a 401 "invalid API key" (invalid credentials) or
//!   an answer slower than the node's 3 s delivery timeout (a timeout, then
//!   a retry).
//! - `POST /{version}/{pixel}/events`, shaped like Meta's Conversions API:
//!   a wrong `access_token` is Graph error 190; otherwise
//!   `{"events_received": n}`, except now and then Graph error 100 (a
//!   refused payload), 190 "session has expired" (invalid credentials), an
//!   answer taking fewer events than sent, or a slow answer.
//!
//! Which requests misbehave is fixed by their number, so every kind shows
//! within the first seconds of the demo, and then regularly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use partners::standard_webhooks;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// How long a slow answer takes: past the node's default delivery timeout.
const SLOW: Duration = Duration::from_millis(3500);

/// What the partner answers to the `n`th request of an endpoint (counted
/// from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// The normal answer.
    Accept,
    /// The partner refuses the payload.
    Refuse,
    /// The partner refuses the credential.
    Unauthorized,
    /// The partner answers after [`SLOW`].
    Slow,
    /// The partner takes only part of the request (Meta only).
    Partial,
}

fn turn(n: u64) -> Turn {
    match n {
        _ if n % 20 == 3 => Turn::Refuse,
        _ if n % 37 == 6 => Turn::Unauthorized,
        _ if n % 29 == 9 => Turn::Slow,
        _ if n % 23 == 12 => Turn::Partial,
        _ => Turn::Accept,
    }
}

/// What the partner checks credentials against.
#[derive(Debug)]
pub struct Credentials {
    /// The webhook signing key (the bytes after `whsec_`, decoded).
    pub signing_key: Vec<u8>,
    /// The Meta-shaped access token.
    pub access_token: String,
}

#[derive(Debug)]
struct Partner {
    credentials: Credentials,
    webhook_requests: AtomicU64,
    meta_requests: AtomicU64,
}

/// Serves the demo partner on `listener` until `stopped` resolves.
pub async fn serve(
    listener: TcpListener,
    credentials: Credentials,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let partner = Arc::new(Partner {
        credentials,
        webhook_requests: AtomicU64::new(0),
        meta_requests: AtomicU64::new(0),
    });
    let router = Router::new()
        .route("/webhook", post(webhook))
        .route("/{version}/{pixel}/events", post(meta))
        .with_state(partner);
    axum::serve(listener, router)
        .with_graceful_shutdown(stopped)
        .await
}

/// The demo partner's URLs under `address`: the webhook's, and the base URL
/// of the Meta-shaped API.
pub fn urls(address: SocketAddr) -> (String, String) {
    let base = format!("http://{address}");
    (format!("{base}/webhook"), base)
}

async fn webhook(State(partner): State<Arc<Partner>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signed = match (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) {
        (Some(id), Some(timestamp), Some(signatures)) => standard_webhooks::verify(
            &partner.credentials.signing_key,
            id,
            timestamp,
            &body,
            signatures,
        ),
        _ => false,
    };
    if !signed {
        return (StatusCode::UNAUTHORIZED, "No matching signature found").into_response();
    }
    match turn(partner.webhook_requests.fetch_add(1, Ordering::Relaxed)) {
        Turn::Refuse => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "order rejected: the demo partner refuses one order in twenty",
        )
            .into_response(),
        Turn::Unauthorized => (
            StatusCode::UNAUTHORIZED,
            "invalid API key: the demo partner revokes one now and then",
        )
            .into_response(),
        Turn::Slow => {
            tokio::time::sleep(SLOW).await;
            StatusCode::NO_CONTENT.into_response()
        }
        Turn::Accept | Turn::Partial => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn meta(
    State(partner): State<Arc<Partner>>,
    Query(query): Query<std::collections::BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if query.get("access_token") != Some(&partner.credentials.access_token) {
        return graph_error(
            190,
            "Invalid OAuth access token - Cannot parse access token",
        );
    }
    let events = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body["data"].as_array().map(Vec::len))
        .unwrap_or(0);
    let received = |n: usize| {
        axum::Json(json!({"events_received": n, "messages": [], "fbtrace_id": "ADemoTrace"}))
            .into_response()
    };
    match turn(partner.meta_requests.fetch_add(1, Ordering::Relaxed)) {
        Turn::Refuse => graph_error(
            100,
            "(#100) Invalid parameter: the demo partner refuses one request in twenty",
        ),
        Turn::Unauthorized => graph_error(
            190,
            "Error validating access token: Session has expired (the demo partner expires one now and then)",
        ),
        Turn::Slow => {
            tokio::time::sleep(SLOW).await;
            received(events)
        }
        Turn::Partial => received(events.saturating_sub(1)),
        Turn::Accept => received(events),
    }
}

/// A Graph error over HTTP 400, as Meta sends them.
fn graph_error(code: i64, message: &str) -> Response {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "ADemoTrace",
    });
    if code == 190 {
        error["error_subcode"] = json!(463);
    }
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": error })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_answer_comes_early_and_again() {
        let first: Vec<Turn> = (0..40).map(turn).collect();
        for kind in [
            Turn::Refuse,
            Turn::Unauthorized,
            Turn::Slow,
            Turn::Partial,
            Turn::Accept,
        ] {
            assert!(first.contains(&kind), "{kind:?} in the first 40");
        }
        let accepted = (0..1000).filter(|n| turn(*n) == Turn::Accept).count();
        assert!(
            (800..950).contains(&accepted),
            "{accepted} of 1000 accepted"
        );
    }
}

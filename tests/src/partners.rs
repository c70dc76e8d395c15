//! Fake partners on loopback ports, speaking the wire formats of
//! `shared/reference/partners.md`: GA4 Measurement Protocol (§1), Meta
//! Conversions API (§2), TikTok Events API v1.3 `event/track` (§3) and
//! Standard Webhooks (§7).
//!
//! Every request is first validated the way the real partner would (and
//! refused with that partner's own error when it fails); a request that
//! passes is answered with the next scripted [`Reply`], or the default one.
//! Where partners.md has no source for a behaviour, the comment at the check
//! says what was chosen.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;

use crate::server_task::{ServerTask, signalled};

/// GA4: at most 25 events per request (§1 Limits).
const GA4_MAX_EVENTS: usize = 25;
/// GA4: at most 25 params per event and 25 user properties (§1 Limits).
const GA4_MAX_PARAMS: usize = 25;
/// GA4: event and param names are at most 40 characters (§1 Limits).
const GA4_MAX_NAME: usize = 40;
/// GA4: param values are at most 100 characters (§1 Limits).
const GA4_MAX_VALUE: usize = 100;
/// Meta: up to 1,000 events in `data` (§2 Limits).
const META_MAX_EVENTS: usize = 1000;
/// TikTok: partners.md found no batch limit for `event/track`; 50 is what
/// our adapter (and RudderStack for the old `/pixel/batch`) sends at most.
const TIKTOK_MAX_EVENTS: usize = 50;
/// Standard Webhooks: timestamps more than 5 minutes off are refused (§7).
const WEBHOOK_TOLERANCE_SECONDS: i64 = 300;
/// Bodies up to this size are read (axum's default, 2 MB, is too small for
/// 1,000 large Meta events).
const BODY_LIMIT: usize = 16 * 1024 * 1024;
const DAY_SECONDS: i64 = 24 * 60 * 60;

/// Which partner a [`FakePartner`] plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// GA4 Measurement Protocol: `POST /mp/collect` and `POST /debug/mp/collect`.
    Ga4,
    /// Meta Conversions API: `POST /{version}/{pixel}/events`.
    Meta,
    /// TikTok Events API: `POST /open_api/v1.3/event/track/`.
    TikTok,
    /// A Standard Webhooks receiver: `POST` on any path.
    Webhook,
}

/// How the fake answers a request that passed validation.
#[derive(Clone, Debug)]
pub enum Reply {
    /// The partner's real success answer: GA4 204 with an empty body (the
    /// debug endpoint: 200 with its `validationMessages`); Meta 200
    /// `{"events_received": <events in data>, "messages": [], "fbtrace_id"}`;
    /// TikTok 200 `{"code": 0, "message": "OK", "request_id", "data": {}}`;
    /// webhook 204.
    Accept,
    /// HTTP `status` (200-599) with the partner's body for it: for Meta
    /// 4xx/5xx a Graph error whose code fits the status (400 -> 100,
    /// 401 -> 190, 403 -> 10, 429 -> 4, 500 -> 1, 502-504 -> 2); otherwise
    /// the status's reason phrase as plain text. `retry_after` adds a
    /// `Retry-After` header in seconds.
    Status {
        /// The HTTP status.
        status: u16,
        /// Seconds for a `Retry-After` header, if any.
        retry_after: Option<u64>,
    },
    /// A Meta Graph error: HTTP `status` with `{"error": {"message", "type":
    /// "OAuthException", "code", "error_subcode" (when `Some`), "fbtrace_id"}}`.
    MetaError {
        /// The HTTP status.
        status: u16,
        /// The Graph error `code`.
        code: i64,
        /// The Graph `error_subcode`, if any.
        subcode: Option<i64>,
        /// The error `message`.
        message: String,
    },
    /// TikTok: HTTP 200 with `{"code", "message", "request_id"}` (and
    /// `"data": {}` when `code` is 0, as in TikTok's success answer; its
    /// error examples carry no `data`).
    TikTokCode {
        /// The body `code`.
        code: i64,
        /// The body `message`.
        message: String,
    },
    /// Meta: HTTP 200 reporting only `received` as `events_received`.
    MetaPartial {
        /// The `events_received` reported.
        received: usize,
    },
    /// Waits, then answers with the inner reply (to exceed a client timeout).
    Delay(Duration, Box<Reply>),
}

/// One request the fake received, with the status it answered.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The request path, e.g. `/v21.0/123/events`.
    pub path: String,
    /// The decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// The headers, names in lower case (repeated headers joined by ", ").
    pub headers: BTreeMap<String, String>,
    /// The JSON body; a body that is not JSON is kept as a JSON string.
    pub body: Value,
    /// Events carried: the `data` length (Meta, TikTok), the `events`
    /// length (GA4), 1 for a webhook; 0 when the body has no such array.
    pub events: usize,
    /// When the request arrived.
    pub at: Instant,
    /// The HTTP status answered.
    pub reply_status: u16,
}

/// A fake partner serving on `127.0.0.1`, until [`stop`](FakePartner::stop)
/// or drop (which closes the listener and every open connection).
#[derive(Debug)]
pub struct FakePartner {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: ServerTask<Infallible>,
}

impl FakePartner {
    /// Starts on `127.0.0.1:0` serving `kind`'s endpoint(s), recording every
    /// request.
    pub async fn start(kind: Kind) -> FakePartner {
        Self::launch(kind, true).await
    }

    /// Starts like [`start`](FakePartner::start) without recording
    /// requests (for benchmarks); requests and events are still counted.
    pub async fn start_unrecorded(kind: Kind) -> FakePartner {
        Self::launch(kind, false).await
    }

    async fn launch(kind: Kind, record: bool) -> FakePartner {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake partner");
        let addr = listener.local_addr().expect("the listener's address");
        let shared = Arc::new(Shared {
            kind,
            record,
            signing_key: OnceLock::new(),
            state: Mutex::new(Script {
                next: VecDeque::new(),
                default: Reply::Accept,
                recorded: Vec::new(),
            }),
            requests: AtomicU64::new(0),
            events: AtomicU64::new(0),
            ids: AtomicU64::new(1),
            arrived: Notify::new(),
        });
        let router = router(Arc::clone(&shared));
        let server = ServerTask::spawn(|stopped| serve(listener, router, stopped));
        FakePartner {
            addr,
            shared,
            server,
        }
    }

    /// For webhooks: verifies signatures with `secret` (`whsec_` + base64);
    /// a missing or bad signature, or a timestamp more than 5 minutes off,
    /// is answered 401. Call once, before traffic.
    pub fn verify_signatures(&self, secret: &str) {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
            .expect("a webhook secret is whsec_ followed by base64");
        assert!(
            self.shared.signing_key.set(key).is_ok(),
            "verify_signatures may be called only once"
        );
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`, for the GA4, Meta and
    /// TikTok base-URL overrides.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL to configure: for webhooks the base URL + `/hook`, for the
    /// other partners the base URL.
    pub fn url(&self) -> String {
        match self.shared.kind {
            Kind::Webhook => format!("{}/hook", self.base_url()),
            Kind::Ga4 | Kind::Meta | Kind::TikTok => self.base_url(),
        }
    }

    /// Replies for the next requests that pass validation, in order; once
    /// used up, the default reply (initially [`Reply::Accept`]) answers.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        let replies: Vec<Reply> = replies.into_iter().collect();
        replies.iter().for_each(Reply::check);
        self.shared.state().next.extend(replies);
    }

    /// The reply for requests once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        reply.check();
        self.shared.state().default = reply;
    }

    /// The requests received so far, in order (empty when unrecorded).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.state().recorded.clone()
    }

    /// Requests received so far, refused ones included (counted once their
    /// answer is chosen, before a [`Reply::Delay`] waits).
    pub fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::Acquire)
    }

    /// Events carried by the requests received so far (see
    /// [`Recorded::events`]).
    pub fn event_count(&self) -> u64 {
        self.shared.events.load(Ordering::Acquire)
    }

    /// Waits until at least `n` requests arrived, panicking after `timeout`.
    pub async fn wait_for_requests(&self, n: u64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Created before the count is read, so no arrival is missed.
            let arrived = self.shared.arrived.notified();
            if self.request_count() >= n {
                return;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "the fake {:?} partner got {} requests within {timeout:?}, expected at least {n}",
                    self.shared.kind,
                    self.request_count()
                );
            }
        }
    }

    /// Stops serving: the listener and every open connection are closed, so
    /// new connections are refused.
    pub async fn stop(self) {
        let Ok(()) = self.server.stop().await;
    }
}

impl Reply {
    /// Panics on a status no partner would send, when scripted rather than
    /// when a request is answered.
    fn check(&self) {
        match self {
            Reply::Status { status, .. } | Reply::MetaError { status, .. } => assert!(
                (200..=599).contains(status),
                "a fake partner answers with statuses 200-599, not {status}"
            ),
            Reply::Delay(_, inner) => inner.check(),
            Reply::Accept | Reply::TikTokCode { .. } | Reply::MetaPartial { .. } => {}
        }
    }

    /// The total delay and the reply it leads to.
    fn settle(&self) -> (Duration, &Reply) {
        let mut delay = Duration::ZERO;
        let mut reply = self;
        while let Reply::Delay(wait, inner) = reply {
            delay += *wait;
            reply = inner;
        }
        (delay, reply)
    }
}

/// What the server task and the handle share.
#[derive(Debug)]
struct Shared {
    kind: Kind,
    record: bool,
    /// The webhook signing key, once [`FakePartner::verify_signatures`] set it.
    signing_key: OnceLock<Vec<u8>>,
    state: Mutex<Script>,
    requests: AtomicU64,
    events: AtomicU64,
    /// Numbers `fbtrace_id` / `request_id`.
    ids: AtomicU64,
    /// Notified after each request is counted.
    arrived: Notify,
}

/// The replies to come and the requests recorded.
#[derive(Debug)]
struct Script {
    next: VecDeque<Reply>,
    default: Reply,
    recorded: Vec<Recorded>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, Script> {
        // Nothing panics while holding the lock; a poisoned one is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn next_reply(&self) -> Reply {
        let mut state = self.state();
        match state.next.pop_front() {
            Some(reply) => reply,
            None => state.default.clone(),
        }
    }
}

/// The routes of `shared.kind`, all answered by [`handle`].
fn router(shared: Arc<Shared>) -> Router {
    let routes = match shared.kind {
        Kind::Ga4 => Router::new()
            .route("/mp/collect", post(handle))
            .route("/debug/mp/collect", post(handle)),
        Kind::Meta => Router::new().route("/{version}/{pixel}/events", post(handle)),
        Kind::TikTok => Router::new().route("/open_api/v1.3/event/track/", post(handle)),
        Kind::Webhook => Router::new()
            .route("/", post(handle))
            .route("/{*path}", post(handle)),
    };
    routes
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// Accepts HTTP/1 connections until `stopped`, then closes every open
/// connection; returning drops the listener. When the task is aborted
/// instead (the fake dropped), dropping `connections` aborts them.
async fn serve(
    listener: TcpListener,
    router: Router,
    stopped: oneshot::Receiver<()>,
) -> Result<(), Infallible> {
    let mut connections = JoinSet::new();
    let stop = signalled(stopped);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => {
                // Closes every connection before `stop` returns.
                connections.shutdown().await;
                return Ok(());
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, router.clone()));
                }
                // Out of descriptors, say: don't spin while it lasts.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, router: Router) {
    let _ = stream.set_nodelay(true);
    // A connection ending badly (a client timing out, say) is the client's
    // business, not the fake's.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router))
        .await;
}

/// The endpoint a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Ga4Collect,
    Ga4Debug,
    Meta,
    TikTok,
    Webhook,
}

impl Endpoint {
    fn of(kind: Kind, path: &str) -> Endpoint {
        match kind {
            Kind::Ga4 if path.starts_with("/debug/") => Endpoint::Ga4Debug,
            Kind::Ga4 => Endpoint::Ga4Collect,
            Kind::Meta => Endpoint::Meta,
            Kind::TikTok => Endpoint::TikTok,
            Kind::Webhook => Endpoint::Webhook,
        }
    }
}

/// Validates, picks the reply, records and counts, then answers (after the
/// reply's delay).
async fn handle(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let endpoint = Endpoint::of(shared.kind, uri.path());
    let id = shared.ids.fetch_add(1, Ordering::Relaxed);
    let checked = match endpoint {
        Endpoint::Ga4Collect | Endpoint::Ga4Debug => check_ga4(&body),
        Endpoint::Meta => check_meta(&query, &body, id),
        Endpoint::TikTok => check_tiktok(&headers, &body, id),
        Endpoint::Webhook => check_webhook(shared.signing_key.get(), &headers, &body),
    };
    let (delay, response) = match checked.refusal {
        Some(refusal) => (Duration::ZERO, refusal),
        None => {
            let reply = shared.next_reply();
            let (delay, reply) = reply.settle();
            (delay, render(reply, endpoint, checked.events, id, &body))
        }
    };
    if shared.record {
        let recorded = Recorded {
            path: uri.path().to_owned(),
            query,
            headers: header_map(&headers),
            body: serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())),
            events: checked.events,
            at,
            reply_status: response.status().as_u16(),
        };
        shared.state().recorded.push(recorded);
    }
    // Counted after recording, so whoever sees the count sees the record.
    shared
        .events
        .fetch_add(checked.events as u64, Ordering::Release);
    shared.requests.fetch_add(1, Ordering::Release);
    shared.arrived.notify_waiters();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// What validation found: the events a request carries and, when the real
/// partner would refuse it, its refusal.
struct Checked {
    events: usize,
    refusal: Option<Response>,
}

/// GA4 for counting: only the `events` array's length matters.
#[derive(Deserialize)]
struct Ga4Body {
    events: Option<Vec<IgnoredAny>>,
}

/// GA4 refuses nothing: "Measurement Protocol does not return HTTP error
/// codes, even if an event is malformed", and a wrong secret still gets a
/// 2xx (§1). Missing `measurement_id`/`api_secret`, more than 25 events or a
/// body that is not JSON are all answered like a valid request; the debug
/// endpoint reports them in its `validationMessages`.
fn check_ga4(body: &[u8]) -> Checked {
    let events = serde_json::from_slice::<Ga4Body>(body)
        .ok()
        .and_then(|body| body.events)
        .map_or(0, |events| events.len());
    Checked {
        events,
        refusal: None,
    }
}

/// Meta for validation, cheaply: the fields each event must have.
#[derive(Deserialize)]
struct MetaBody {
    data: Option<Vec<MetaEvent>>,
    /// The token may also travel in the body instead of the query (§2).
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct MetaEvent {
    event_name: Option<IgnoredAny>,
    event_time: Option<Value>,
    action_source: Option<Value>,
    user_data: Option<IgnoredAny>,
}

impl MetaEvent {
    /// Why Meta would refuse the request over this event (`data[index]`).
    fn problem(&self, index: usize, now: i64) -> Option<String> {
        let missing = [
            ("event_name", self.event_name.is_none()),
            ("event_time", self.event_time.is_none()),
            ("action_source", self.action_source.is_none()),
            ("user_data", self.user_data.is_none()),
        ];
        if let Some((field, _)) = missing.iter().find(|(_, missing)| *missing) {
            return Some(format!(
                "(#100) The parameter {field} is required (data[{index}])"
            ));
        }
        let Some(time) = self.event_time.as_ref().and_then(Value::as_i64) else {
            return Some(format!(
                "(#100) Param event_time must be an integer unix timestamp in seconds (data[{index}])"
            ));
        };
        // "If any event_time is more than 7 days old, the entire request
        // errors"; physical_store events may be 62 days old (§2).
        let physical_store =
            self.action_source.as_ref().and_then(Value::as_str) == Some("physical_store");
        let max_days = if physical_store { 62 } else { 7 };
        (now - time > max_days * DAY_SECONDS).then(|| {
            format!(
                "(#100) The parameter event_time is more than {max_days} days in the past (data[{index}])"
            )
        })
    }
}

/// Meta's checks, each refused with HTTP 400 and a Graph error: no (or an
/// empty) access token -> code 190; a body that is not JSON, without a
/// `data` array of event objects, with more than 1,000 events, or with an
/// event missing `event_name`/`event_time`/`action_source`/`user_data` or
/// older than 7 days (62 for `physical_store`) -> code 100, refusing the
/// whole request. partners.md leaves open whether one bad event rejects the
/// batch; refusing it whole is the stricter choice.
fn check_meta(query: &BTreeMap<String, String>, body: &[u8], id: u64) -> Checked {
    let parsed = serde_json::from_slice::<MetaBody>(body);
    let events = parsed
        .as_ref()
        .ok()
        .and_then(|body| body.data.as_ref())
        .map_or(0, Vec::len);
    let refuse = |code: i64, message: &str| Checked {
        events,
        refusal: Some(graph_error(
            StatusCode::BAD_REQUEST,
            code,
            None,
            message,
            id,
        )),
    };
    let token = query
        .get("access_token")
        .or_else(|| parsed.as_ref().ok()?.access_token.as_ref());
    if token.is_none_or(String::is_empty) {
        // partners.md gives 190 for a bad token (seen over HTTP 400); a
        // missing one is treated as a token that cannot be parsed.
        return refuse(
            190,
            "Invalid OAuth access token - Cannot parse access token",
        );
    }
    let request = match parsed {
        Ok(request) => request,
        Err(_) if serde_json::from_slice::<IgnoredAny>(body).is_err() => {
            return refuse(100, "(#100) The request body is not valid JSON");
        }
        Err(_) => return refuse(100, "(#100) Param data must be an array of event objects"),
    };
    let Some(data) = request.data else {
        return refuse(100, "(#100) The parameter data is required");
    };
    if data.len() > META_MAX_EVENTS {
        return refuse(
            100,
            &format!(
                "(#100) Param data must be an array of at most {META_MAX_EVENTS} events, got {}",
                data.len()
            ),
        );
    }
    let now = unix_now();
    if let Some(problem) = data
        .iter()
        .enumerate()
        .find_map(|(index, event)| event.problem(index, now))
    {
        return refuse(100, &problem);
    }
    Checked {
        events,
        refusal: None,
    }
}

/// TikTok for validation, cheaply: the fields each event must have.
#[derive(Deserialize)]
struct TikTokBody {
    data: Option<Vec<TikTokEvent>>,
}

#[derive(Deserialize)]
struct TikTokEvent {
    event: Option<Value>,
    event_time: Option<Value>,
    event_id: Option<Value>,
}

/// TikTok's checks, refused with HTTP 200 and a body code (§3): no
/// `Access-Token` header, an empty one or one with a `Bearer` prefix ->
/// 40105; a body that is not JSON or has no `data` array, more than 50
/// events, or an event whose `event` is not a string, `event_time` not an
/// integer or `event_id` (when present) not a string -> 40002, worded like
/// TikTok's "Invalid value for event_id: not a valid string.".
fn check_tiktok(headers: &HeaderMap, body: &[u8], id: u64) -> Checked {
    let parsed = serde_json::from_slice::<TikTokBody>(body)
        .ok()
        .and_then(|body| body.data);
    let events = parsed.as_ref().map_or(0, Vec::len);
    let refuse = |code: i64, message: &str| Checked {
        events,
        refusal: Some(tiktok_body(code, message, id)),
    };
    let token = headers
        .get("access-token")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if token.is_empty() || token.to_ascii_lowercase().starts_with("bearer ") {
        return refuse(40105, "Access token is incorrect or has been revoked.");
    }
    let Some(data) = parsed else {
        return refuse(40002, "Invalid value for data: not a valid list.");
    };
    if data.len() > TIKTOK_MAX_EVENTS {
        return refuse(
            40002,
            &format!("Invalid value for data: longer than {TIKTOK_MAX_EVENTS}."),
        );
    }
    let invalid = data.iter().find_map(|event| {
        if !event.event.as_ref().is_some_and(Value::is_string) {
            Some("Invalid value for event: not a valid string.")
        } else if !event.event_time.as_ref().is_some_and(Value::is_i64) {
            Some("Invalid value for event_time: not a valid integer.")
        } else if event.event_id.as_ref().is_some_and(|id| !id.is_string()) {
            Some("Invalid value for event_id: not a valid string.")
        } else {
            None
        }
    });
    if let Some(message) = invalid {
        return refuse(40002, message);
    }
    Checked {
        events,
        refusal: None,
    }
}

/// A webhook carries one event. With a signing key, a request failing
/// Standard Webhooks verification is answered 401 with the reference
/// library's reason as plain text; then a body that is not JSON gets 400.
fn check_webhook(key: Option<&Vec<u8>>, headers: &HeaderMap, body: &[u8]) -> Checked {
    let refusal = match key.map(|key| verify_webhook(key, headers, body, unix_now())) {
        Some(Err(reason)) => Some(plain(StatusCode::UNAUTHORIZED, reason)),
        _ if serde_json::from_slice::<IgnoredAny>(body).is_err() => {
            Some(plain(StatusCode::BAD_REQUEST, "The body is not JSON"))
        }
        _ => None,
    };
    Checked { events: 1, refusal }
}

/// Standard Webhooks verification (§7): the three headers are required, the
/// timestamp must be within 5 minutes of `now`, and one `v1,` entry of the
/// space-separated signature list must be the base64 HMAC-SHA256 of
/// `{id}.{timestamp}.{body}` (compared in constant time; other versions are
/// ignored). Errors are the reference library's messages.
fn verify_webhook(
    key: &[u8],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        return Err("Missing required headers");
    };
    let sent: i64 = timestamp.parse().map_err(|_| "Invalid Signature Headers")?;
    if sent < now - WEBHOOK_TOLERANCE_SECONDS {
        return Err("Message timestamp too old");
    }
    if sent > now + WEBHOOK_TOLERANCE_SECONDS {
        return Err("Message timestamp too new");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any size");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let matches = signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|signature| STANDARD.decode(signature).ok())
        .any(|signature| mac.clone().verify_slice(&signature).is_ok());
    if matches {
        Ok(())
    } else {
        Err("No matching signature found")
    }
}

/// The response `reply` makes at `endpoint` for a request of `events`.
fn render(reply: &Reply, endpoint: Endpoint, events: usize, id: u64, body: &[u8]) -> Response {
    match reply {
        Reply::Accept => match endpoint {
            Endpoint::Ga4Collect | Endpoint::Webhook => StatusCode::NO_CONTENT.into_response(),
            Endpoint::Ga4Debug => {
                Json(json!({ "validationMessages": ga4_validation(body) })).into_response()
            }
            Endpoint::Meta => meta_received(events, id),
            Endpoint::TikTok => tiktok_body(0, "OK", id),
        },
        Reply::Status {
            status,
            retry_after,
        } => {
            let status = status_code(*status);
            let mut response = match meta_status_error(status) {
                Some((code, message)) if endpoint == Endpoint::Meta => {
                    graph_error(status, code, None, message, id)
                }
                _ => plain(status, status.canonical_reason().unwrap_or("Error")),
            };
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(*seconds));
            }
            response
        }
        Reply::MetaError {
            status,
            code,
            subcode,
            message,
        } => graph_error(status_code(*status), *code, *subcode, message, id),
        Reply::TikTokCode { code, message } => tiktok_body(*code, message, id),
        Reply::MetaPartial { received } => meta_received(*received, id),
        Reply::Delay(_, inner) => render(inner, endpoint, events, id, body),
    }
}

/// Statuses were checked when scripted; this fallback is never used.
fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The Graph error code and message fitting an error status, from the codes
/// of §2 (Meta's status for each code is not documented, so this pairs
/// them by meaning).
fn meta_status_error(status: StatusCode) -> Option<(i64, &'static str)> {
    let error = match status.as_u16() {
        401 => (190, "Error validating access token"),
        403 => (
            10,
            "(#10) Application does not have permission for this action",
        ),
        429 => (4, "(#4) Application request limit reached"),
        500 => (1, "An unknown error occurred"),
        502..=504 => (
            2,
            "An unexpected error has occurred. Please retry your request later.",
        ),
        501 | 505..=599 => (1, "An unknown error occurred"),
        400..=499 => (100, "(#100) Invalid parameter"),
        _ => return None,
    };
    Some(error)
}

/// A Graph error: `{"error": {"message", "type", "code", "error_subcode"?,
/// "fbtrace_id"}}`.
fn graph_error(
    status: StatusCode,
    code: i64,
    subcode: Option<i64>,
    message: &str,
    id: u64,
) -> Response {
    let mut error = json!({
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": fbtrace_id(id),
    });
    if let Some(subcode) = subcode {
        error["error_subcode"] = subcode.into();
    }
    (status, Json(json!({ "error": error }))).into_response()
}

/// Meta's success: `{"events_received", "messages": [], "fbtrace_id"}`.
fn meta_received(received: usize, id: u64) -> Response {
    Json(json!({
        "events_received": received,
        "messages": [],
        "fbtrace_id": fbtrace_id(id),
    }))
    .into_response()
}

fn fbtrace_id(id: u64) -> String {
    format!("AFakeTrace{id:010}")
}

/// TikTok's answer, always HTTP 200: `{"code", "message", "request_id"}`,
/// with `"data": {}` on success.
fn tiktok_body(code: i64, message: &str, id: u64) -> Response {
    let mut body = json!({
        "code": code,
        "message": message,
        "request_id": format!("fake{id:016}"),
    });
    if code == 0 {
        body["data"] = json!({});
    }
    Json(body).into_response()
}

fn plain(status: StatusCode, text: &str) -> Response {
    (status, text.to_owned()).into_response()
}

/// What the GA4 validation server reports (§1): one
/// `{"fieldPath", "description", "validationCode"}` per problem with the
/// documented limits, `[]` for a valid request. The descriptions are ours;
/// `api_secret` is not checked, like the real validation server.
fn ga4_validation(body: &[u8]) -> Vec<Value> {
    let message = |path: String, code: &str, description: String| json!({ "fieldPath": path, "description": description, "validationCode": code });
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return vec![message(
            String::new(),
            "VALUE_INVALID",
            "Unable to parse Measurement Protocol JSON payload.".to_owned(),
        )];
    };
    let mut messages = Vec::new();
    if !request.contains_key("client_id") && !request.contains_key("app_instance_id") {
        messages.push(message(
            "client_id".to_owned(),
            "VALUE_REQUIRED",
            "Measurement requires a client_id or an app_instance_id.".to_owned(),
        ));
    }
    if let Some(properties) = request.get("user_properties").and_then(Value::as_object)
        && properties.len() > GA4_MAX_PARAMS
    {
        messages.push(message(
            "user_properties".to_owned(),
            "EXCEEDED_MAX_ENTITIES",
            format!("At most {GA4_MAX_PARAMS} user properties are allowed."),
        ));
    }
    let Some(events) = request.get("events").and_then(Value::as_array) else {
        messages.push(message(
            "events".to_owned(),
            "VALUE_REQUIRED",
            "Measurement requires an events array.".to_owned(),
        ));
        return messages;
    };
    if events.len() > GA4_MAX_EVENTS {
        messages.push(message(
            "events".to_owned(),
            "EXCEEDED_MAX_ENTITIES",
            format!("A request may have at most {GA4_MAX_EVENTS} events."),
        ));
    }
    for (index, event) in events.iter().enumerate() {
        let name = event
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !ga4_name(name) {
            messages.push(message(
                format!("events[{index}].name"),
                "NAME_INVALID",
                format!("Event name [{name}] is invalid."),
            ));
        }
        let Some(params) = event.get("params").and_then(Value::as_object) else {
            continue;
        };
        if params.len() > GA4_MAX_PARAMS {
            messages.push(message(
                format!("events[{index}].params"),
                "EXCEEDED_MAX_ENTITIES",
                format!("At most {GA4_MAX_PARAMS} params per event are allowed."),
            ));
        }
        for (param, value) in params {
            let path = format!("events[{index}].params.{param}");
            if !ga4_name(param) {
                messages.push(message(
                    path,
                    "NAME_INVALID",
                    format!("Param name [{param}] is invalid."),
                ));
            } else if value
                .as_str()
                .is_some_and(|text| text.chars().count() > GA4_MAX_VALUE)
            {
                messages.push(message(
                    path,
                    "VALUE_OUT_OF_BOUNDS",
                    format!("Param values may have at most {GA4_MAX_VALUE} characters."),
                ));
            }
        }
    }
    messages
}

/// GA4 names: at most 40 characters matching `^[A-Za-z][A-Za-z0-9_]*$`.
fn ga4_name(name: &str) -> bool {
    name.len() <= GA4_MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Headers by lower-case name, repeated ones joined by ", ".
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map = BTreeMap::<String, String>::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    /// Status, Retry-After and body of a POST.
    async fn post(
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(u16, Option<String>, String), reqwest::Error> {
        post_within(url, headers, body, Duration::from_secs(10)).await
    }

    async fn post_within(
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
        timeout: Duration,
    ) -> Result<(u16, Option<String>, String), reqwest::Error> {
        let mut request = reqwest::Client::new()
            .post(url)
            .timeout(timeout)
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().expect("ascii").to_owned());
        Ok((status, retry_after, response.text().await?))
    }

    fn json_of(text: &str) -> Value {
        serde_json::from_str(text).expect("a JSON body")
    }

    fn meta_url(fake: &FakePartner) -> String {
        format!("{}/v21.0/123/events?access_token=EAAB", fake.base_url())
    }

    fn meta_event(name: &str) -> Value {
        json!({
            "event_name": name,
            "event_time": unix_now() - 60,
            "action_source": "website",
            "user_data": {"em": ["62a14e44"]},
        })
    }

    fn tiktok_url(fake: &FakePartner) -> String {
        format!("{}/open_api/v1.3/event/track/", fake.base_url())
    }

    fn tiktok_request(events: usize) -> String {
        let event = json!({"event": "CompletePayment", "event_time": unix_now(), "event_id": "e1"});
        json!({"event_source": "web", "event_source_id": "PIX", "data": vec![event; events]})
            .to_string()
    }

    fn sign(id: &str, timestamp: &str, body: &str) -> String {
        let key = STANDARD
            .decode(SECRET.trim_start_matches("whsec_"))
            .expect("base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
        mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    #[tokio::test]
    async fn scripted_500_then_accept() {
        let fake = FakePartner::start(Kind::Ga4).await;
        fake.script([Reply::Status {
            status: 500,
            retry_after: Some(7),
        }]);
        let url = format!(
            "{}/mp/collect?measurement_id=G-1&api_secret=s",
            fake.base_url()
        );
        let body = r#"{"client_id":"c1","events":[{"name":"purchase"},{"name":"login"}]}"#;

        let (status, retry_after, text) = post(&url, &[], body).await.expect("answered");
        assert_eq!((status, retry_after.as_deref()), (500, Some("7")));
        assert_eq!(text, "Internal Server Error");
        let (status, _, text) = post(&url, &[], body).await.expect("answered");
        assert_eq!((status, text.as_str()), (204, ""));

        assert_eq!((fake.request_count(), fake.event_count()), (2, 4));
        let requests = fake.requests();
        assert_eq!(
            requests.iter().map(|r| r.reply_status).collect::<Vec<_>>(),
            [500, 204]
        );
        assert_eq!(requests[0].path, "/mp/collect");
        assert_eq!(requests[0].query["measurement_id"], "G-1");
        assert_eq!(requests[0].headers["content-type"], "application/json");
        assert_eq!(requests[0].body["client_id"], "c1");
        assert_eq!(requests[0].events, 2);
    }

    #[tokio::test]
    async fn ga4_answers_204_to_anything_and_the_debug_endpoint_reports() {
        let fake = FakePartner::start(Kind::Ga4).await;
        let many = json!({"events": vec![json!({"name": "bad-name"}); 26]}).to_string();
        let collect = format!("{}/mp/collect", fake.base_url());
        assert_eq!(post(&collect, &[], &many).await.expect("answered").0, 204);
        assert_eq!(post(&collect, &[], "nope").await.expect("answered").0, 204);

        let debug = format!("{}/debug/mp/collect", fake.base_url());
        let (status, _, text) = post(&debug, &[], &many).await.expect("answered");
        assert_eq!(status, 200);
        let messages = json_of(&text)["validationMessages"].clone();
        let codes: Vec<&str> = messages
            .as_array()
            .expect("a list")
            .iter()
            .map(|m| m["validationCode"].as_str().expect("a code"))
            .collect();
        assert_eq!(
            &codes[..3],
            ["VALUE_REQUIRED", "EXCEEDED_MAX_ENTITIES", "NAME_INVALID"]
        );
        let valid = r#"{"client_id":"c","events":[{"name":"purchase","params":{"value":3}}]}"#;
        let (_, _, text) = post(&debug, &[], valid).await.expect("answered");
        assert_eq!(json_of(&text), json!({"validationMessages": []}));
    }

    #[tokio::test]
    async fn meta_refuses_a_bad_event_before_the_script_and_reports_partial() {
        let fake = FakePartner::start(Kind::Meta).await;
        fake.script([Reply::MetaPartial { received: 1 }]);
        let mut bad = meta_event("Purchase");
        bad.as_object_mut().expect("object").remove("user_data");
        let body = json!({"data": [meta_event("Lead"), bad]}).to_string();

        let (status, _, text) = post(&meta_url(&fake), &[], &body).await.expect("answered");
        assert_eq!(status, 400);
        let error = &json_of(&text)["error"];
        assert_eq!(
            (error["code"].as_i64(), error["type"].as_str()),
            (Some(100), Some("OAuthException"))
        );
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains("user_data")
        );
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains("data[1]")
        );
        assert!(error["fbtrace_id"].is_string());

        // The refusal did not use up the scripted partial answer.
        let body =
            json!({"data": [meta_event("Lead"), meta_event("Purchase")], "test_event_code": "T1"});
        let (status, _, text) = post(&meta_url(&fake), &[], &body.to_string())
            .await
            .expect("answered");
        assert_eq!(status, 200);
        let answer = json_of(&text);
        assert_eq!(
            (
                answer["events_received"].as_u64(),
                answer["messages"].clone()
            ),
            (Some(1), json!([]))
        );
        let (_, _, text) = post(&meta_url(&fake), &[], &body.to_string())
            .await
            .expect("answered");
        assert_eq!(json_of(&text)["events_received"], 2);
        assert_eq!(fake.requests()[1].body["test_event_code"], "T1");
    }

    #[tokio::test]
    async fn meta_checks_token_size_age_and_maps_statuses() {
        let fake = FakePartner::start(Kind::Meta).await;
        let one = json!({"data": [meta_event("Lead")]}).to_string();
        let no_token = format!("{}/v21.0/123/events", fake.base_url());
        let (status, _, text) = post(&no_token, &[], &one).await.expect("answered");
        assert_eq!(
            (status, json_of(&text)["error"]["code"].as_i64()),
            (400, Some(190))
        );

        let too_many = json!({"data": vec![meta_event("Lead"); 1001]}).to_string();
        let old = json!({"data": [{"event_name": "Lead", "event_time": unix_now() - 8 * DAY_SECONDS, "action_source": "website", "user_data": {}}]}).to_string();
        for body in [
            too_many.as_str(),
            old.as_str(),
            "{",
            r#"{"data": "x"}"#,
            "{}",
        ] {
            let (status, _, text) = post(&meta_url(&fake), &[], body).await.expect("answered");
            assert_eq!(
                (status, json_of(&text)["error"]["code"].as_i64()),
                (400, Some(100)),
                "{body:.40}"
            );
        }

        fake.script([
            Reply::Status {
                status: 429,
                retry_after: None,
            },
            Reply::MetaError {
                status: 400,
                code: 190,
                subcode: Some(463),
                message: "Session has expired".into(),
            },
        ]);
        let (status, _, text) = post(&meta_url(&fake), &[], &one).await.expect("answered");
        assert_eq!(
            (status, json_of(&text)["error"]["code"].as_i64()),
            (429, Some(4))
        );
        let (status, _, text) = post(&meta_url(&fake), &[], &one).await.expect("answered");
        let error = &json_of(&text)["error"];
        assert_eq!(
            (
                status,
                error["code"].as_i64(),
                error["error_subcode"].as_i64()
            ),
            (400, Some(190), Some(463))
        );
    }

    #[tokio::test]
    async fn tiktok_answers_codes_in_a_200() {
        let fake = FakePartner::start(Kind::TikTok).await;
        fake.script([Reply::TikTokCode {
            code: 40100,
            message: "Too many requests".into(),
        }]);
        let token = [("Access-Token", "tok")];
        let (status, _, text) = post(&tiktok_url(&fake), &token, &tiktok_request(2))
            .await
            .expect("answered");
        let answer = json_of(&text);
        assert_eq!((status, answer["code"].as_i64()), (200, Some(40100)));
        assert_eq!(answer["message"], "Too many requests");
        let (_, _, text) = post(&tiktok_url(&fake), &token, &tiktok_request(2))
            .await
            .expect("answered");
        let answer = json_of(&text);
        assert_eq!(
            (
                answer["code"].as_i64(),
                answer["message"].as_str(),
                answer["data"].clone()
            ),
            (Some(0), Some("OK"), json!({}))
        );
        assert!(answer["request_id"].is_string());

        for (headers, body, code) in [
            (&[][..], tiktok_request(1), 40105),
            (
                &[("Access-Token", "Bearer tok")][..],
                tiktok_request(1),
                40105,
            ),
            (&token[..], tiktok_request(51), 40002),
            (
                &token[..],
                r#"{"data":[{"event":"Lead"}]}"#.to_owned(),
                40002,
            ),
        ] {
            let (status, _, text) = post(&tiktok_url(&fake), headers, &body)
                .await
                .expect("answered");
            assert_eq!(
                (status, json_of(&text)["code"].as_i64()),
                (200, Some(code)),
                "{body:.60}"
            );
        }
        assert_eq!(
            (fake.request_count(), fake.event_count()),
            (6, 4 + 1 + 1 + 51 + 1)
        );
    }

    #[test]
    fn verifies_the_standard_webhooks_reference_vector() {
        let key = STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .expect("base64");
        let body = br#"{"test": 2432232314}"#;
        let headers = |signature: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                "webhook-id",
                HeaderValue::from_static("msg_p5jXN8AQM9LWM0D4loKWxJek"),
            );
            headers.insert("webhook-timestamp", HeaderValue::from_static("1614265330"));
            headers.insert("webhook-signature", signature.parse().expect("ascii"));
            headers
        };
        let good = "v1a,abc v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(
            verify_webhook(&key, &headers(good), body, 1_614_265_330),
            Ok(())
        );
        assert_eq!(
            verify_webhook(&key, &headers(good), body, 1_614_265_330 + 301),
            Err("Message timestamp too old")
        );
        assert_eq!(
            verify_webhook(&key, &headers(good), body, 1_614_265_330 - 301),
            Err("Message timestamp too new")
        );
        let other = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=";
        assert_eq!(
            verify_webhook(&key, &headers(other), body, 1_614_265_330),
            Err("No matching signature found")
        );
        assert_eq!(
            verify_webhook(&key, &HeaderMap::new(), body, 0),
            Err("Missing required headers")
        );
    }

    #[tokio::test]
    async fn webhook_signatures_are_accepted_and_rejected() {
        let fake = FakePartner::start(Kind::Webhook).await;
        fake.verify_signatures(SECRET);
        let now = unix_now().to_string();
        let body = r#"{"type":"purchase","data":{"value":3}}"#;
        let signed = sign("e1", &now, body);
        let headers = [
            ("webhook-id", "e1"),
            ("webhook-timestamp", now.as_str()),
            ("webhook-signature", signed.as_str()),
        ];

        let (status, _, _) = post(&fake.url(), &headers, body).await.expect("answered");
        assert_eq!(status, 204);
        let (status, _, text) = post(&fake.url(), &headers, r#"{"type":"other"}"#)
            .await
            .expect("answered");
        assert_eq!(
            (status, text.as_str()),
            (401, "No matching signature found")
        );
        let (status, _, text) = post(&fake.url(), &headers[..2], body)
            .await
            .expect("answered");
        assert_eq!((status, text.as_str()), (401, "Missing required headers"));
        let stale = (unix_now() - 600).to_string();
        let stale_signed = sign("e1", &stale, body);
        let stale_headers = [
            ("webhook-id", "e1"),
            ("webhook-timestamp", stale.as_str()),
            ("webhook-signature", stale_signed.as_str()),
        ];
        let (status, _, text) = post(&fake.url(), &stale_headers, body)
            .await
            .expect("answered");
        assert_eq!((status, text.as_str()), (401, "Message timestamp too old"));
        let not_json = sign("e1", &now, "nope");
        let headers = [
            ("webhook-id", "e1"),
            ("webhook-timestamp", now.as_str()),
            ("webhook-signature", not_json.as_str()),
        ];
        assert_eq!(
            post(&fake.url(), &headers, "nope")
                .await
                .expect("answered")
                .0,
            400
        );

        let recorded = fake.requests();
        assert_eq!(recorded[0].path, "/hook");
        assert_eq!(recorded[0].headers["webhook-id"], "e1");
        assert_eq!(recorded[0].body["data"]["value"], 3);
        assert_eq!(recorded[4].body, Value::String("nope".into()));
    }

    #[tokio::test]
    async fn delay_outlasts_a_client_timeout() {
        let fake = FakePartner::start(Kind::Webhook).await;
        fake.script([Reply::Delay(
            Duration::from_millis(400),
            Box::new(Reply::Status {
                status: 503,
                retry_after: None,
            }),
        )]);
        let error = post_within(&fake.url(), &[], "{}", Duration::from_millis(100))
            .await
            .expect_err("answered too late");
        assert!(error.is_timeout(), "{error}");
        fake.wait_for_requests(1, Duration::from_secs(1)).await;
        assert_eq!(fake.requests()[0].reply_status, 503);

        let started = Instant::now();
        fake.script([Reply::Delay(
            Duration::from_millis(150),
            Box::new(Reply::Accept),
        )]);
        let (status, _, _) = post(&fake.url(), &[], "{}").await.expect("answered");
        assert_eq!(status, 204);
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn unrecorded_still_counts() {
        let fake = FakePartner::start_unrecorded(Kind::Meta).await;
        let body = json!({"data": vec![meta_event("Lead"); 3]}).to_string();
        for _ in 0..2 {
            let (status, _, text) = post(&meta_url(&fake), &[], &body).await.expect("answered");
            assert_eq!(
                (status, json_of(&text)["events_received"].as_u64()),
                (200, Some(3))
            );
        }
        fake.wait_for_requests(2, Duration::from_secs(1)).await;
        assert_eq!((fake.request_count(), fake.event_count()), (2, 6));
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    #[should_panic(expected = "got 0 requests within")]
    async fn waiting_for_requests_that_never_come_panics() {
        let fake = FakePartner::start(Kind::TikTok).await;
        fake.wait_for_requests(1, Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn stop_closes_kept_alive_and_delayed_connections() {
        let fake = FakePartner::start(Kind::Webhook).await;
        let url = fake.url();
        let pooled = reqwest::Client::new();
        let response = pooled.post(&url).body("{}").send().await;
        assert_eq!(response.expect("answered").status(), 204);
        fake.script([Reply::Delay(
            Duration::from_secs(30),
            Box::new(Reply::Accept),
        )]);
        let in_flight = tokio::spawn(reqwest::Client::new().post(&url).body("{}").send());
        fake.wait_for_requests(2, Duration::from_secs(1)).await;

        tokio::time::timeout(Duration::from_secs(1), fake.stop())
            .await
            .expect("stop does not wait for delayed replies");
        let error = in_flight.await.expect("joined").expect_err("cut off");
        assert!(error.is_request(), "{error:?}");
        // The kept-alive connection is gone too: the pool connects anew.
        let error = pooled
            .post(&url)
            .body("{}")
            .send()
            .await
            .expect_err("stopped");
        assert!(error.is_connect(), "{error:?}");
    }

    #[tokio::test]
    async fn stop_refuses_connections() {
        let fake = FakePartner::start(Kind::Webhook).await;
        let url = fake.url();
        assert_eq!(post(&url, &[], "{}").await.expect("answered").0, 204);
        fake.stop().await;
        let error = post(&url, &[], "{}").await.expect_err("stopped");
        assert!(error.is_connect(), "{error}");
    }
}

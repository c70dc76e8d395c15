//! Fake partners on loopback ports, each speaking its partner's wire
//! format: the same endpoints, the same validation and the same error
//! bodies as the real API, as far as the partner documents them. Each
//! partner's fake is a file here ([`ga4`], [`meta_capi`], [`tiktok`],
//! [`snapchat`], [`pinterest`], [`webhook`]), registered in [`FAKES`]; where
//! a partner documents nothing, the comment at the check says what was
//! chosen.
//!
//! Every request is first validated the way the real partner would (and
//! refused with that partner's own error when it fails); a request that
//! passes is answered with the next scripted [`Reply`], or the default one.

mod ga4;
mod meta_capi;
mod pinterest;
mod snapchat;
#[cfg(test)]
mod test_client;
mod tiktok;
mod webhook;

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use eventconnectors_proto::v1::{DataType, FieldMapping};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinSet;

pub use ga4::Ga4;
pub use meta_capi::MetaCapi;
pub use pinterest::Pinterest;
pub use snapchat::Snapchat;
pub use tiktok::TikTok;
pub use webhook::Webhook;

use crate::server_task::{ServerTask, signalled};

/// Every fake, one per registered partner.
pub static FAKES: &[&dyn FakeApi] = &[&Ga4, &MetaCapi, &Pinterest, &Snapchat, &TikTok, &Webhook];

/// The fake of partner `id`.
pub fn fake(id: &str) -> Option<&'static dyn FakeApi> {
    FAKES.iter().copied().find(|fake| fake.partner() == id)
}

/// Bodies up to this size are read (axum's default, 2 MB, is too small for
/// 1,000 large Meta events).
const BODY_LIMIT: usize = 16 * 1024 * 1024;
/// Seconds in a day.
pub(crate) const DAY_SECONDS: i64 = 24 * 60 * 60;

/// A request as it reached a fake.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// The path, e.g. `/v21.0/123/events`.
    pub path: &'a str,
    /// The decoded query parameters.
    pub query: &'a BTreeMap<String, String>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body, as sent.
    pub body: &'a [u8],
    /// The request's number at this fake (for trace and request ids).
    pub id: u64,
    /// The webhook signing key, once [`FakePartner::verify_signatures`] set
    /// it.
    pub signing_key: Option<&'a [u8]>,
}

impl Incoming<'_> {
    /// A header's value, when it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// What validation found: the events a request carries and, when the real
/// partner would refuse it, its refusal.
#[derive(Debug)]
pub struct Checked {
    /// Events carried (0 when the body has no such array).
    pub events: usize,
    /// The partner's refusal, if it would refuse.
    pub refusal: Option<Response>,
}

impl Checked {
    /// A request the partner would take.
    pub fn pass(events: usize) -> Self {
        Self {
            events,
            refusal: None,
        }
    }

    /// A request the partner refuses with `response`.
    pub fn refuse(events: usize, response: Response) -> Self {
        Self {
            events,
            refusal: Some(response),
        }
    }
}

/// A connector that works against a fake: its settings, secrets and the
/// mappings the partner needs beyond the catalog's defaults, for the raw
/// events of [`crate::platform::event`].
#[derive(Debug, Clone, Default)]
pub struct SampleConnector {
    /// Settings.
    pub settings: BTreeMap<String, String>,
    /// Secrets.
    pub secrets: BTreeMap<String, String>,
    /// Mappings.
    pub mappings: Vec<FieldMapping>,
}

impl SampleConnector {
    /// From literal pairs.
    pub fn of(settings: &[(&str, &str)], secrets: &[(&str, &str)]) -> Self {
        let owned = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Self {
            settings: owned(settings),
            secrets: owned(secrets),
            mappings: Vec::new(),
        }
    }

    /// With `source` mapped to `target` as `data_type`.
    pub fn mapping(mut self, source: &str, target: &str, data_type: DataType) -> Self {
        self.mappings.push(FieldMapping {
            source: source.to_owned(),
            target: target.to_owned(),
            r#type: data_type as i32,
            ..FieldMapping::default()
        });
        self
    }

    /// With `target` always set to the JSON `literal`.
    pub fn constant(mut self, target: &str, literal: &str, data_type: DataType) -> Self {
        self.mappings.push(FieldMapping {
            target: target.to_owned(),
            r#type: data_type as i32,
            constant: Some(literal.to_owned()),
            ..FieldMapping::default()
        });
        self
    }
}

/// One partner's side of the wire.
pub trait FakeApi: Send + Sync + Debug + 'static {
    /// The id of the registered partner it plays.
    fn partner(&self) -> &'static str;

    /// Its routes (axum paths).
    fn routes(&self) -> &'static [&'static str];

    /// What a connector (webhook) or a base-URL override (every other
    /// partner) should point at, given the fake's base URL.
    fn url(&self, base_url: &str) -> String {
        base_url.to_owned()
    }

    /// Validates a request as the real partner would.
    fn check(&self, request: &Incoming<'_>) -> Checked;

    /// The partner's success answer to a request of `events` events.
    fn accept(&self, request: &Incoming<'_>, events: usize) -> Response;

    /// The partner's own error `code` with `message`, at HTTP `status`, in
    /// its body shape.
    fn error(
        &self,
        status: StatusCode,
        code: &str,
        message: &str,
        request: &Incoming<'_>,
    ) -> Response;

    /// Whether `code` is one this partner could send (numbers for most).
    fn is_code(&self, code: &str) -> bool {
        code.parse::<i64>().is_ok()
    }

    /// The partner's body for a bare HTTP error status.
    fn status(&self, status: StatusCode, _request: &Incoming<'_>) -> Response {
        plain(status, status.canonical_reason().unwrap_or("Error"))
    }

    /// Whether the partner can report taking only part of a request.
    fn answers_partially(&self) -> bool {
        false
    }

    /// The partner's answer taking only `accepted` of `events` events
    /// (only called when [`FakeApi::answers_partially`]).
    fn partial(&self, _accepted: usize, events: usize, request: &Incoming<'_>) -> Response {
        self.accept(request, events)
    }

    /// Settings and secrets of a connector this fake accepts; `url` is
    /// [`FakeApi::url`] of the running fake.
    fn connector(&self, url: &str) -> SampleConnector;
}

/// How the fake answers a request that passed validation.
#[derive(Clone, Debug)]
pub enum Reply {
    /// The partner's real success answer (see each fake).
    Accept,
    /// HTTP `status` (200-599) with the partner's body for it (see
    /// [`FakeApi::status`]). `retry_after` adds a `Retry-After` header in
    /// seconds.
    Status {
        /// The HTTP status.
        status: u16,
        /// Seconds for a `Retry-After` header, if any.
        retry_after: Option<u64>,
    },
    /// The partner's own error `code`, in its body shape, at HTTP `status`:
    /// a Meta Graph error, a TikTok body code (TikTok answers 200), a
    /// Pinterest `{code, message}`, a Snapchat `INVALID` with the code.
    Error {
        /// The HTTP status.
        status: u16,
        /// The partner's code (a number, or Snapchat's text codes).
        code: String,
        /// The partner's message.
        message: String,
    },
    /// The partner took only `accepted` of the request's events (Meta's
    /// `events_received`, Pinterest's per-event statuses).
    Partial {
        /// Events taken.
        accepted: usize,
    },
    /// Waits, then answers with the inner reply (to exceed a client timeout).
    Delay(Duration, Box<Reply>),
}

impl Reply {
    /// Panics on a reply the fake cannot give, when scripted rather than
    /// when a request is answered.
    fn check(&self, api: &dyn FakeApi) {
        match self {
            Reply::Status { status, .. } => assert!(
                (200..=599).contains(status),
                "a fake partner answers with statuses 200-599, not {status}"
            ),
            Reply::Error { status, code, .. } => {
                assert!(
                    (200..=599).contains(status),
                    "a fake partner answers with statuses 200-599, not {status}"
                );
                assert!(
                    api.is_code(code),
                    "{} sends no code like `{code}`",
                    api.partner()
                );
            }
            Reply::Partial { .. } => assert!(
                api.answers_partially(),
                "{} cannot report taking part of a request",
                api.partner()
            ),
            Reply::Delay(_, inner) => inner.check(api),
            Reply::Accept => {}
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

    /// The response this (settled) reply makes for `request` of `events`.
    fn render(&self, api: &dyn FakeApi, request: &Incoming<'_>, events: usize) -> Response {
        match self {
            Reply::Accept => api.accept(request, events),
            Reply::Status {
                status,
                retry_after,
            } => {
                let mut response = api.status(status_code(*status), request);
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(RETRY_AFTER, HeaderValue::from(*seconds));
                }
                response
            }
            Reply::Error {
                status,
                code,
                message,
            } => api.error(status_code(*status), code, message, request),
            Reply::Partial { accepted } => api.partial(*accepted, events, request),
            Reply::Delay(_, inner) => inner.render(api, request, events),
        }
    }
}

/// Statuses were checked when scripted; this fallback is never used.
fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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
    /// Events carried (see each fake's `check`).
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
    /// Starts on `127.0.0.1:0` playing `api`, recording every request.
    pub async fn start(api: &'static dyn FakeApi) -> FakePartner {
        Self::launch(api, true).await
    }

    /// Starts like [`start`](FakePartner::start) without recording
    /// requests (for benchmarks); requests and events are still counted.
    pub async fn start_unrecorded(api: &'static dyn FakeApi) -> FakePartner {
        Self::launch(api, false).await
    }

    async fn launch(api: &'static dyn FakeApi, record: bool) -> FakePartner {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the fake partner");
        let addr = listener.local_addr().expect("the listener's address");
        let shared = Arc::new(Shared {
            api,
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

    /// The partner it plays.
    pub fn partner(&self) -> &'static str {
        self.shared.api.partner()
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

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What to configure: a webhook connector's URL, or the base-URL
    /// override of the other partners.
    pub fn url(&self) -> String {
        self.shared.api.url(&self.base_url())
    }

    /// The node flag that sends this partner's requests here:
    /// `--partner-base-url=<partner>=<base url>`.
    pub fn base_url_flag(&self) -> String {
        format!("--partner-base-url={}={}", self.partner(), self.url())
    }

    /// Replies for the next requests that pass validation, in order; once
    /// used up, the default reply (initially [`Reply::Accept`]) answers.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        let replies: Vec<Reply> = replies.into_iter().collect();
        for reply in &replies {
            reply.check(self.shared.api);
        }
        self.shared.state().next.extend(replies);
    }

    /// The reply for requests once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        reply.check(self.shared.api);
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
                    "the fake {} partner got {} requests within {timeout:?}, expected at least {n}",
                    self.partner(),
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

/// What the server task and the handle share.
#[derive(Debug)]
struct Shared {
    api: &'static dyn FakeApi,
    record: bool,
    /// The webhook signing key, once [`FakePartner::verify_signatures`] set it.
    signing_key: OnceLock<Vec<u8>>,
    state: Mutex<Script>,
    requests: AtomicU64,
    events: AtomicU64,
    /// Numbers requests (trace ids, request ids).
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

/// The fake's routes, all answered by [`handle`].
fn router(shared: Arc<Shared>) -> Router {
    shared
        .api
        .routes()
        .iter()
        .fold(Router::new(), |router, path| {
            router.route(path, post(handle))
        })
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
    let incoming = Incoming {
        path: uri.path(),
        query: &query,
        headers: &headers,
        body: &body,
        id: shared.ids.fetch_add(1, Ordering::Relaxed),
        signing_key: shared.signing_key.get().map(Vec::as_slice),
    };
    let api = shared.api;
    let checked = api.check(&incoming);
    let (delay, response) = match checked.refusal {
        Some(refusal) => (Duration::ZERO, refusal),
        None => {
            let reply = shared.next_reply();
            let (delay, reply) = reply.settle();
            (delay, reply.render(api, &incoming, checked.events))
        }
    };
    if shared.record {
        let recorded = Recorded {
            path: uri.path().to_owned(),
            query: query.clone(),
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

/// A plain-text answer.
pub(crate) fn plain(status: StatusCode, text: &str) -> Response {
    (status, text.to_owned()).into_response()
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body.clone())).into_response()
}

/// Whether `value` looks like a SHA-256 digest in hex (what hashed
/// identifiers must be).
pub(crate) fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
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

/// Now, in unix seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::test_client::{post, post_within};
    use super::*;

    #[test]
    fn every_registered_partner_has_one_fake() {
        let mut ids: Vec<_> = FAKES.iter().map(|fake| fake.partner()).collect();
        ids.sort_unstable();
        let mut partners: Vec<_> = partners::PARTNERS.iter().map(|p| p.id).collect();
        partners.sort_unstable();
        assert_eq!(ids, partners);
    }

    #[tokio::test]
    async fn a_partial_reply_is_refused_for_a_partner_that_cannot_give_it() {
        let fake = FakePartner::start(&Webhook).await;
        let scripted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fake.script([Reply::Partial { accepted: 1 }]);
        }));
        assert!(scripted.is_err());
    }

    #[tokio::test]
    async fn delay_outlasts_a_client_timeout() {
        let fake = FakePartner::start(&Webhook).await;
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
        let fake = FakePartner::start_unrecorded(&Webhook).await;
        for _ in 0..2 {
            let (status, _, _) = post(&fake.url(), &[], "{}").await.expect("answered");
            assert_eq!(status, 204);
        }
        fake.wait_for_requests(2, Duration::from_secs(1)).await;
        assert_eq!((fake.request_count(), fake.event_count()), (2, 2));
        assert!(fake.requests().is_empty());
    }

    #[tokio::test]
    #[should_panic(expected = "got 0 requests within")]
    async fn waiting_for_requests_that_never_come_panics() {
        let fake = FakePartner::start(&TikTok).await;
        fake.wait_for_requests(1, Duration::from_millis(50)).await;
    }

    #[tokio::test]
    async fn stop_closes_kept_alive_and_delayed_connections() {
        let fake = FakePartner::start(&Webhook).await;
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
        let fake = FakePartner::start(&Webhook).await;
        let url = fake.url();
        assert_eq!(post(&url, &[], "{}").await.expect("answered").0, 204);
        fake.stop().await;
        let error = post(&url, &[], "{}").await.expect_err("stopped");
        assert!(error.is_connect(), "{error}");
    }
}

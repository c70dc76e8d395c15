//! Strangers cannot make a node read large messages: 64 connections each
//! declare a 16 MiB ingest message with a credential nobody issued and
//! push its bytes, while a real producer keeps getting answers. The node
//! refuses each stranger from its headers, before decoding anything: a
//! stranger gets no further than the HTTP/2 flow-control window (64 KiB),
//! instead of the 16 MiB it declared, and the node's memory does not grow
//! with what they send.
//!
//! Its own test binary: it reads the process's resident memory.

use std::time::{Duration, Instant};

use bytes::Bytes;
use e2e_tests::bench::resident_bytes;
use e2e_tests::node::INGEST_TOKEN;
use e2e_tests::platform::{Platform, event};
use e2e_tests::with_token;
use eventconnectors_proto::v1::IngestRequest;

const STRANGERS: usize = 64;
const DECLARED: usize = 16 * 1024 * 1024;
/// How much the process may grow while they push: far below the 1 GiB
/// their messages add up to.
const GROWTH_BOUND: u64 = 96 * 1024 * 1024;

/// One stranger: a raw HTTP/2 connection declaring a `DECLARED`-byte gRPC
/// message and pushing zeros until the node stops it. Returns the bytes
/// it got to send and the gRPC status the node answered.
async fn stranger(addr: std::net::SocketAddr) -> (usize, Option<String>) {
    stranger_at(
        addr,
        "/eventconnectors.v1.IngestService/Ingest",
        "Bearer eck_nobody-issued-this-credential-0000000000",
        DECLARED,
    )
    .await
}

/// A stranger calling `path` with `authorization`, declaring a message of
/// `declared` bytes and pushing zeros until the server stops it.
async fn stranger_at(
    addr: std::net::SocketAddr,
    path: &str,
    authorization: &str,
    declared: usize,
) -> (usize, Option<String>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("authorization", authorization)
        .body(())
        .expect("request");
    let (response, mut body) = client.send_request(request, false).expect("send");
    let mut prefix = vec![0u8];
    prefix.extend_from_slice(&u32::try_from(declared).expect("fits").to_be_bytes());
    let zeros = Bytes::from_static(&[0u8; 64 * 1024]);
    let mut sent = 0;
    let pushing = async {
        if body.send_data(Bytes::from(prefix), false).is_err() {
            return;
        }
        while sent < declared {
            body.reserve_capacity(zeros.len());
            match std::future::poll_fn(|cx| body.poll_capacity(cx)).await {
                Some(Ok(capacity)) if capacity > 0 => {
                    let chunk = zeros.slice(..capacity.min(zeros.len()));
                    sent += chunk.len();
                    if body.send_data(chunk, false).is_err() {
                        return;
                    }
                }
                _ => return,
            }
        }
    };
    let answer = async {
        let response = response.await.ok()?;
        let status = response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        status.or_else(|| Some(format!("http {}", response.status())))
    };
    let ((), status) = tokio::join!(
        async {
            let _ = tokio::time::timeout(Duration::from_secs(3), pushing).await;
        },
        answer
    );
    (sent, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_declaring_huge_messages_cost_the_node_nothing() {
    let mut platform = Platform::start(&[]).await;
    let addr = platform.node().addr;
    // Warm up, so what is measured is the strangers' cost.
    platform
        .ingest_all(&[event("warm", "w", "Signup", serde_json::json!({}))])
        .await;
    let before = resident_bytes();

    let strangers: Vec<_> = (0..STRANGERS)
        .map(|_| tokio::spawn(stranger(addr)))
        .collect();
    // Meanwhile a producer keeps getting answers.
    let mut client = platform.node().ingest_client().await;
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for n in 0..100 {
        let sent = Instant::now();
        let response = client
            .ingest(with_token(
                IngestRequest {
                    events: vec![event(
                        &format!("e{n}"),
                        "w",
                        "Signup",
                        serde_json::json!({}),
                    )],
                    sequence: n,
                },
                INGEST_TOKEN,
            ))
            .await
            .expect("the producer is answered")
            .into_inner();
        assert_eq!(response.accepted, 1);
        slowest = slowest.max(sent.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut pushed = 0;
    let mut statuses = Vec::new();
    for stranger in strangers {
        let (sent, status) = stranger.await.expect("stranger");
        statuses.push(status);
        pushed += sent;
    }
    let grown = resident_bytes().saturating_sub(before);
    eprintln!(
        "{STRANGERS} strangers pushed {} KiB in all; the process grew by {} KiB; the producer's slowest answer took {slowest:?}",
        pushed >> 10,
        grown >> 10
    );
    // Refused from their headers, they get no further than the HTTP/2
    // window: the node never reads their messages.
    assert!(
        pushed <= STRANGERS * 1024 * 1024,
        "strangers pushed {} MiB: the node read their messages",
        pushed >> 20
    );
    assert!(
        grown < GROWTH_BOUND,
        "the process grew by {} MiB while strangers pushed {} MiB",
        grown >> 20,
        pushed >> 20
    );
    assert!(
        statuses.iter().all(|s| s.as_deref() == Some("16")),
        "every stranger UNAUTHENTICATED from its headers: {statuses:?}"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "the producer waited {slowest:?} (over {:?})",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_nobody_issued_are_refused_by_the_control_plane() {
    let platform = Platform::start(&[]).await;
    let addr = platform.control_plane.addr;
    // Well-formed keys (`eck_` and 43 characters) that are in no store:
    // only a lookup can tell, and it happens before the message is read.
    let strangers: Vec<_> = (0..16)
        .map(|n| {
            let key = format!("Bearer eck_{n:0>43}");
            tokio::spawn(async move {
                stranger_at(
                    addr,
                    "/eventconnectors.v1.ConnectorService/CreateConnector",
                    &key,
                    1024 * 1024 - 5,
                )
                .await
            })
        })
        .collect();
    let mut pushed = 0;
    for stranger in strangers {
        let (sent, status) = stranger.await.expect("stranger");
        assert_eq!(
            status.as_deref(),
            Some("16"),
            "UNAUTHENTICATED from the headers"
        );
        pushed += sent;
    }
    // The key is looked up in the store before the message is decoded;
    // while the lookup runs, a stranger may fill its HTTP/2 windows (1 MiB
    // a stream), and no more.
    assert!(
        pushed <= 16 * 1024 * 1024,
        "strangers pushed {} KiB",
        pushed >> 10
    );
}

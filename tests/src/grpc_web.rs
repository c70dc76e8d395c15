//! A gRPC-Web caller as a browser is one: HTTP/1.1 POSTs with the
//! gRPC-Web framing, the status read from the trailer frame (or from the
//! headers of a trailers-only answer).

use prost::Message;

/// A call that did not end OK: the status as the browser sees it.
#[derive(Debug, Clone)]
pub struct WebStatus {
    /// The gRPC status code.
    pub code: tonic::Code,
    /// `grpc-message`, percent-decoded.
    pub message: String,
    /// The `google.rpc.Status` of `grpc-status-details-bin`, if any.
    pub details: Option<tonic::Status>,
}

fn frame(message: &impl Message) -> Vec<u8> {
    let body = message.encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(&body);
    framed
}

/// The trailers in a trailer frame (`name: value` lines).
fn trailers(bytes: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(bytes)
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect()
}

/// Calls `path` (`/package.Service/Method`) at `base` (`http://host:port`)
/// with `token`, as gRPC-Web over HTTP/1.1.
pub async fn call<Req: Message, Resp: Message + Default>(
    base: &str,
    path: &str,
    token: &str,
    request: &Req,
) -> Result<Resp, WebStatus> {
    let client = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client");
    let response = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("authorization", format!("Bearer {token}"))
        .body(frame(request))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_eq!(response.status(), 200, "gRPC-Web answers 200 with a status");
    let mut status: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("grpc-"))
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body = response.bytes().await.expect("body");
    let mut data = None;
    let mut at = 0;
    while at + 5 <= body.len() {
        let length = u32::from_be_bytes(body[at + 1..at + 5].try_into().expect("4 bytes")) as usize;
        let content = &body[at + 5..at + 5 + length];
        if body[at] & 0x80 != 0 {
            status.extend(trailers(content));
        } else {
            data = Some(content.to_vec());
        }
        at += 5 + length;
    }
    let value = |name: &str| {
        status
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let code = value("grpc-status")
        .and_then(|code| code.parse::<i32>().ok())
        .expect("a grpc-status");
    if code == 0 {
        return Ok(Resp::decode(data.unwrap_or_default().as_slice()).expect("a message"));
    }
    let message = value("grpc-message").unwrap_or_default();
    let message = percent_encoding::percent_decode_str(&message)
        .decode_utf8_lossy()
        .into_owned();
    let details = value("grpc-status-details-bin").map(|encoded| {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .expect("base64 details");
        tonic::Status::with_details(tonic::Code::from(code), message.clone(), bytes.into())
    });
    Err(WebStatus {
        code: tonic::Code::from(code),
        message,
        details,
    })
}

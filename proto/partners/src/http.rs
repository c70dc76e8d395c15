//! What an HTTP status says when a partner has nothing more specific to say.

use eventconnectors_proto::v1::ErrorCategory;

use eventconnectors_proto::v1::ConnectorConfig;

use crate::adapter::{Failure, PartnerRequest, PartnerResponse, Prepared, Retry};

/// The failure a non-2xx status means: 401/403 are credentials; 408, 429
/// and 5xx (but 501) are worth retrying, honouring Retry-After; 3xx (not
/// followed) and other 4xx will fail again.
pub fn status_failure(
    response: &PartnerResponse,
    partner_code: String,
    message: String,
) -> Failure {
    let status = response.status;
    let (category, retry) = match status {
        401 | 403 => (ErrorCategory::InvalidCredentials, Retry::Never),
        408 | 429 => (
            ErrorCategory::PartnerError,
            Retry::Later(response.retry_after),
        ),
        501 => (ErrorCategory::PartnerError, Retry::Never),
        500..=599 => (
            ErrorCategory::PartnerError,
            Retry::Later(response.retry_after),
        ),
        _ => (ErrorCategory::PartnerError, Retry::Never),
    };
    Failure {
        category,
        partner_code,
        message,
        retry,
    }
}

/// [`status_failure`] for an answer without a message of its own: an
/// excerpt of the body is the message for partner errors only; a refusal
/// of the credentials says so without repeating what the server sent.
pub fn answer_failure(response: &PartnerResponse, partner_code: String) -> Failure {
    let failure = status_failure(response, partner_code, String::new());
    let message = match failure.category {
        ErrorCategory::PartnerError => excerpt(&response.body),
        _ => format!("HTTP {}: the credentials were refused", response.status),
    };
    Failure { message, ..failure }
}

/// Characters of a partner's answer kept in a message.
const EXCERPT_CHARS: usize = 200;

/// The start of a body, for messages: at most 200 characters, control
/// characters as spaces.
pub fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `value` encoded for a URL query.
pub fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Indexes `0..len` in runs of at most `max`: one run per request.
pub fn index_chunks(len: usize, max: usize) -> Vec<Vec<usize>> {
    (0..len)
        .collect::<Vec<_>>()
        .chunks(max.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Appends `[e1,e2,...]`, the JSON of the events at `indexes`, to `out`.
pub fn json_array(out: &mut Vec<u8>, events: &[Prepared], indexes: &[usize]) {
    out.push(b'[');
    for (n, &index) in indexes.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(events[index].json.as_bytes());
    }
    out.push(b']');
}

/// `text` as a JSON string literal.
pub fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialize")
}

/// A body buffer sized for the events at `indexes` plus `extra` bytes.
pub fn body_for(events: &[Prepared], indexes: &[usize], extra: usize) -> Vec<u8> {
    let events: usize = indexes.iter().map(|&i| events[i].json.len() + 1).sum();
    Vec::with_capacity(events + extra + 2)
}

/// A connector's setting, when set.
pub fn setting<'c>(connector: &'c ConnectorConfig, name: &str) -> Option<&'c str> {
    connector.settings.get(name).map(String::as_str)
}

/// A connector's secret; empty when unset (validation requires the
/// partner's secrets, so this is only a connector the node was not meant
/// to get).
pub fn secret<'c>(connector: &'c ConnectorConfig, name: &str) -> &'c str {
    connector.secrets.get(name).map_or("", String::as_str)
}

/// One request per run of at most `max` events, each `{<head>"data":
/// [events...], "test_event_code"?}` POSTed to `url` with `headers`: how
/// Meta, TikTok, Snapchat and Pinterest take batches.
pub fn data_requests(
    url: &str,
    headers: &[(String, String)],
    head: &str,
    events: &[Prepared],
    max: usize,
    test_event_code: Option<&str>,
) -> Vec<PartnerRequest> {
    index_chunks(events.len(), max)
        .into_iter()
        .map(|chunk| PartnerRequest {
            url: url.to_owned(),
            headers: headers.to_vec(),
            body: data_body(head, events, &chunk, test_event_code).into(),
            events: chunk,
        })
        .collect()
}

/// The body `{<head>"data":[events...],"test_event_code":"..."}` of the
/// events at `indexes` (Meta and TikTok shape their batches alike); `head`
/// holds the members before `data`, each followed by a comma.
fn data_body(
    head: &str,
    events: &[Prepared],
    indexes: &[usize],
    test_event_code: Option<&str>,
) -> Vec<u8> {
    let mut body = body_for(events, indexes, head.len() + 64);
    body.push(b'{');
    body.extend_from_slice(head.as_bytes());
    body.extend_from_slice(br#""data":"#);
    json_array(&mut body, events, indexes);
    if let Some(code) = test_event_code {
        body.extend_from_slice(br#","test_event_code":"#);
        body.extend_from_slice(json_string(code).as_bytes());
    }
    body.push(b'}');
    body
}

/// Wraps each member `keys` of `fields[object]` that is not already an
/// array into a one-element array (partners whose identifiers are lists:
/// Snapchat's and Pinterest's `user_data.em`, ...).
pub fn wrap_in_arrays(fields: &mut serde_json::Value, object: &str, keys: &[&str]) {
    let Some(members) = fields.get_mut(object).and_then(|o| o.as_object_mut()) else {
        return;
    };
    for key in keys {
        if let Some(value) = members.get_mut(*key)
            && !value.is_array()
        {
            *value = serde_json::Value::Array(vec![value.take()]);
        }
    }
}

/// Sets `fields[key]` to `default` unless it is there already.
pub fn default_member(fields: &mut serde_json::Value, key: &str, default: &str) {
    if let Some(object) = fields.as_object_mut() {
        object
            .entry(key)
            .or_insert_with(|| serde_json::Value::from(default));
    }
}

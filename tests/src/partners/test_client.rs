//! A plain HTTP client for the fakes' own tests.

use std::time::Duration;

use serde_json::Value;

/// Status, Retry-After and body of a POST.
pub async fn post(
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, Option<String>, String), reqwest::Error> {
    post_within(url, headers, body, Duration::from_secs(10)).await
}

/// [`post`] with a client timeout.
pub async fn post_within(
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

/// A body that must be JSON.
pub fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("a JSON body")
}

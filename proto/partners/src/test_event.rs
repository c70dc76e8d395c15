//! TestConnector's partner side: how one test event reaches each
//! partner's own test or validation facility, and how that facility's
//! answer is read. The request is the one delivery would build (the same
//! filter, transformation and adapter), then pointed at the facility:
//!
//! | partner | facility | how |
//! |---|---|---|
//! | `ga4` | validation server | `/debug/mp/collect` instead of `/mp/collect`; it answers 200 with `validationMessages` (empty when valid). It checks the payload and the measurement id, not `api_secret`. |
//! | `meta_capi`, `tiktok` | test events | `test_event_code` in the body; required (without it the event would be a real conversion) |
//! | `snapchat` | validate endpoint | `/v3/{pixel}/events/validate`, with a test event code when one is given |
//! | `pinterest` | test mode | `?test=true`: validated and answered, not recorded |
//! | `webhook` | the endpoint itself | the request every delivery sends, signed the same way, with the header `eventconnectors-test: true` |
//!
//! A webhook's URL was typed by a customer: what it answers on success is
//! not shown (its status is), so a test cannot be used to read pages the
//! control plane can reach.

use eventconnectors_proto::v1::{ConnectorConfig, ErrorCategory};
use serde_json::Value;

use crate::adapter::{Failure, PartnerRequest, PartnerResponse, Retry, Verdict};

/// Why a connector cannot be tested as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TestError {
    /// The partner's test facility needs a test event code.
    #[error(
        "{0} tests need a test event code (from the partner's test events tool): give `test_event_code`, or set it on the connector; without one the test event would count as a real conversion"
    )]
    NeedsTestCode(&'static str),
    /// A test event code no partner issues.
    #[error("{MAX_TEST_CODE_CHARS} characters at most, letters, digits, `_` and `-`")]
    BadTestCode,
    /// A partner without a known facility.
    #[error("no test facility is known for partner `{0}`")]
    UnknownPartner(String),
    /// The request delivery builds does not have the shape the facility's
    /// address is made from (the adapter changed).
    #[error("cannot point the request at the {0}: its URL is not the one delivery builds")]
    Unpointable(&'static str),
}

/// Longest test event code taken.
pub const MAX_TEST_CODE_CHARS: usize = 100;

/// The header a webhook test request carries.
pub const WEBHOOK_TEST_HEADER: &str = "eventconnectors-test";

/// How a connector is tested: its configuration as the test sends it, the
/// facility's name for people, and how the request is pointed at it.
#[derive(Debug, Clone)]
pub struct TestSetup {
    /// The connector as tested (a test event code or test mode set).
    pub config: ConnectorConfig,
    /// The facility, for people.
    pub facility: String,
    kind: Facility,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Facility {
    Ga4Validation,
    SnapchatValidate,
    Webhook,
    AsDelivered,
}

/// The setup testing `config`, with `test_event_code` (empty: the
/// connector's own, if any).
pub fn setup(config: &ConnectorConfig, test_event_code: &str) -> Result<TestSetup, TestError> {
    let mut config = config.clone();
    let given = test_event_code.trim();
    if given.chars().count() > MAX_TEST_CODE_CHARS
        || !given
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(TestError::BadTestCode);
    }
    let code = Some(given)
        .filter(|code| !code.is_empty())
        .or_else(|| {
            config
                .settings
                .get("test_event_code")
                .map(|code| code.trim())
        })
        .filter(|code| !code.is_empty())
        .map(str::to_owned);
    let (facility, kind) = match config.partner.as_str() {
        "ga4" => (
            "GA4 validation server (/debug/mp/collect); it checks the payload and the measurement id, not api_secret".to_owned(),
            Facility::Ga4Validation,
        ),
        partner @ ("meta_capi" | "tiktok") => {
            let name = if partner == "tiktok" { "TikTok" } else { "Meta" };
            let code = code.ok_or(TestError::NeedsTestCode(name))?;
            let facility = format!("{name} test events (test_event_code {code})");
            config.settings.insert("test_event_code".into(), code);
            (facility, Facility::AsDelivered)
        }
        "snapchat" => {
            if let Some(code) = &code {
                config.settings.insert("test_event_code".into(), code.clone());
            }
            (
                "Snapchat validate endpoint (/events/validate)".to_owned(),
                Facility::SnapchatValidate,
            )
        }
        "pinterest" => {
            config.settings.insert("test_mode".into(), "true".into());
            (
                "Pinterest test mode (?test=true: validated, not recorded)".to_owned(),
                Facility::AsDelivered,
            )
        }
        "webhook" => (
            "the webhook's own URL, signed as every delivery, with the header `eventconnectors-test: true`".to_owned(),
            Facility::Webhook,
        ),
        other => return Err(TestError::UnknownPartner(other.to_owned())),
    };
    Ok(TestSetup {
        config,
        facility,
        kind,
    })
}

impl TestSetup {
    /// `request`, as delivery would send it, pointed at the facility.
    pub fn point(&self, mut request: PartnerRequest) -> Result<PartnerRequest, TestError> {
        let (path_end, facility_path, facility) = match self.kind {
            Facility::Ga4Validation => {
                ("/mp/collect", "/debug/mp/collect", "GA4 validation server")
            }
            Facility::SnapchatValidate => {
                ("/events", "/events/validate", "Snapchat validate endpoint")
            }
            Facility::Webhook => {
                request
                    .headers
                    .push((WEBHOOK_TEST_HEADER.to_owned(), "true".to_owned()));
                return Ok(request);
            }
            Facility::AsDelivered => return Ok(request),
        };
        let mut url =
            url::Url::parse(&request.url).map_err(|_| TestError::Unpointable(facility))?;
        let start = url
            .path()
            .strip_suffix(path_end)
            .ok_or(TestError::Unpointable(facility))?
            .to_owned();
        url.set_path(&format!("{start}{facility_path}"));
        request.url = url.to_string();
        Ok(request)
    }

    /// Whether the answer's body may be shown: not a webhook's (its URL
    /// was typed by a customer; see the module doc).
    pub fn shows_answer(&self) -> bool {
        self.kind != Facility::Webhook
    }

    /// The verdict on the facility's `response`, with GA4's validation
    /// messages (`fieldPath: description (validationCode)`).
    pub fn read(&self, response: &PartnerResponse) -> (Verdict, Vec<String>) {
        let adapter = crate::partner(&self.config.partner).map(|partner| partner.adapter);
        if self.kind != Facility::Ga4Validation || !response.is_success() {
            return match adapter {
                Some(adapter) => (adapter.classify(response, 1), Vec::new()),
                None => (Verdict::Delivered, Vec::new()),
            };
        }
        let body = response.json();
        let Some(messages) = body.get("validationMessages").and_then(Value::as_array) else {
            // GA4's collection endpoint answers 204 to anything: an answer
            // without the list is not the validation server's.
            let failure = Failure {
                category: ErrorCategory::Other,
                partner_code: response.status.to_string(),
                message: "not an answer of GA4's validation server (no validationMessages)"
                    .to_owned(),
                retry: Retry::Never,
            };
            return (Verdict::Failed(failure), Vec::new());
        };
        let text = |message: &Value, name: &str| {
            message
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let shown: Vec<String> = messages
            .iter()
            .map(|m| {
                format!(
                    "{}: {} ({})",
                    text(m, "fieldPath"),
                    text(m, "description"),
                    text(m, "validationCode")
                )
            })
            .collect();
        let Some(first) = messages.first() else {
            return (Verdict::Delivered, shown);
        };
        let failure = Failure {
            category: ErrorCategory::PartnerError,
            partner_code: format!("{}/{}", response.status, text(first, "validationCode")),
            message: shown.join("; "),
            retry: Retry::Never,
        };
        (Verdict::Failed(failure), shown)
    }
}

/// A sample event for a test of a connector of `workspace`: a purchase
/// with a total, a currency and an email, at unix time `now`.
pub fn sample_event(workspace: &str, now: i64) -> String {
    let at = jiff::Timestamp::from_second(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    serde_json::json!({
        "id": format!("connector-test-{now}"),
        "workspace_id": workspace,
        "type": "Purchase",
        "timestamp": at.to_string(),
        "properties": {"total": "1.00", "currency": "EUR", "order_id": "connector-test"},
        "user": {"id": "connector-test", "anonymous_id": "connector-test.1", "email": "connector-test@example.com"},
        "context": {"ip": "203.0.113.7", "user_agent": "eventconnectors-test", "page_url": "https://example.com/checkout"}
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn config(partner: &str, settings: &[(&str, &str)]) -> ConnectorConfig {
        ConnectorConfig {
            id: "c1".into(),
            workspace_id: "w".into(),
            partner: partner.into(),
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            ..ConnectorConfig::default()
        }
    }

    fn request(url: &str) -> PartnerRequest {
        PartnerRequest {
            url: url.into(),
            headers: Vec::new(),
            body: bytes::Bytes::new(),
            events: vec![0],
        }
    }

    #[test]
    fn meta_and_tiktok_need_a_test_code_the_request_one_first() {
        for partner in ["meta_capi", "tiktok"] {
            assert!(matches!(
                setup(&config(partner, &[]), " "),
                Err(TestError::NeedsTestCode(_))
            ));
            let own = setup(&config(partner, &[("test_event_code", "OWN")]), "").unwrap();
            assert_eq!(own.config.settings["test_event_code"], "OWN");
            let given = setup(&config(partner, &[("test_event_code", "OWN")]), "T9").unwrap();
            assert_eq!(given.config.settings["test_event_code"], "T9");
            assert!(given.facility.contains("T9"), "{}", given.facility);
        }
    }

    #[test]
    fn ga4_and_snapchat_requests_go_to_their_validation_paths() {
        let ga4 = setup(&config("ga4", &[]), "").unwrap();
        let pointed = |setup: &TestSetup, url: &str| setup.point(request(url)).map(|r| r.url);
        assert_eq!(
            pointed(
                &ga4,
                "https://g.example/mp/collect?measurement_id=G-1&api_secret=s"
            ),
            Ok("https://g.example/debug/mp/collect?measurement_id=G-1&api_secret=s".to_owned())
        );
        let snap = setup(&config("snapchat", &[]), "").unwrap();
        assert_eq!(
            pointed(&snap, "https://s.example/v3/p1/events?access_token=t"),
            Ok("https://s.example/v3/p1/events/validate?access_token=t".to_owned())
        );
        // Never the production endpoint by mistake.
        for (setup, url) in [
            (&ga4, "https://g.example/collect?measurement_id=G-1"),
            (&snap, "https://s.example/v3/p1/conversions?x=/events?"),
        ] {
            assert!(
                matches!(pointed(setup, url), Err(TestError::Unpointable(_))),
                "{url}"
            );
        }
        let hook = setup(&config("webhook", &[]), "").unwrap();
        let marked = hook.point(request("https://h.example/in")).unwrap();
        assert!(
            marked
                .headers
                .contains(&(WEBHOOK_TEST_HEADER.to_owned(), "true".to_owned()))
        );
        assert!(!hook.shows_answer() && ga4.shows_answer());
        let pinterest = setup(&config("pinterest", &[]), "").unwrap();
        assert_eq!(pinterest.config.settings["test_mode"], "true");
    }

    #[test]
    fn ga4_validation_messages_fail_the_test_an_empty_list_passes() {
        let ga4 = setup(&config("ga4", &[]), "").unwrap();
        let invalid = PartnerResponse::with_json(
            200,
            &serde_json::json!({"validationMessages": [{
                "fieldPath": "events[0].name",
                "description": "Event name is reserved.",
                "validationCode": "NAME_RESERVED"
            }]}),
        );
        let (verdict, messages) = ga4.read(&invalid);
        assert_eq!(
            messages,
            ["events[0].name: Event name is reserved. (NAME_RESERVED)"]
        );
        let Verdict::Failed(failure) = verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(failure.category, ErrorCategory::PartnerError);
        assert_eq!(failure.partner_code, "200/NAME_RESERVED");
        let valid = PartnerResponse::with_json(200, &serde_json::json!({"validationMessages": []}));
        assert_eq!(ga4.read(&valid).0, Verdict::Delivered);
        let collection = PartnerResponse {
            status: 204,
            retry_after: None,
            body: Vec::new(),
        };
        let Verdict::Failed(failure) = ga4.read(&collection).0 else {
            panic!("an answer without the list passed")
        };
        assert_eq!(failure.category, ErrorCategory::Other);
    }

    #[test]
    fn test_codes_are_short_and_plain() {
        let long = "A".repeat(MAX_TEST_CODE_CHARS + 1);
        for bad in ["a b", "x&y=1", long.as_str()] {
            assert_eq!(
                setup(&config("snapchat", &[]), bad).unwrap_err(),
                TestError::BadTestCode,
                "{bad}"
            );
        }
        assert!(setup(&config("snapchat", &[]), "TEST_12-3").is_ok());
    }

    #[test]
    fn the_sample_event_is_a_purchase_of_the_workspace() {
        let event: Value = serde_json::from_str(&sample_event("shop", 1_700_000_000)).unwrap();
        assert_eq!(event["workspace_id"], "shop");
        assert_eq!(event["type"], "Purchase");
        assert_eq!(event["timestamp"], "2023-11-14T22:13:20Z");
    }
}

//! TestConnector's sending side: one test event, built as delivery builds
//! it, pointed at the partner's test facility
//! ([`partners::test_event`]), sent once with the partner client under
//! the same destination policy as nodes, and the answer read in
//! delivery's categories. Tests in flight are capped per replica, so a
//! caller cannot turn the control plane into a load generator.

use std::sync::Arc;

use eventconnectors_proto::limits::MAX_FAILURE_MESSAGE_CHARS;
use eventconnectors_proto::v1::{ConnectorConfig, Outcome, TestConnectorResponse};
use partner_client::PartnerClient;
use partners::adapter::Verdict;
use partners::base_urls::BaseUrls;
use partners::preview::{Built, PreviewError, build, shown};
use partners::redact::hide_secrets;
use partners::test_event::{TestError, setup};
use tokio::sync::Semaphore;

/// Connector tests one replica runs at once; more are refused
/// (RESOURCE_EXHAUSTED) rather than queued.
pub const MAX_TESTS_IN_FLIGHT: usize = 16;

/// Why a test could not run.
#[derive(Debug, thiserror::Error)]
pub enum TestRunError {
    /// The sample event, or the stored connector.
    #[error(transparent)]
    Preview(#[from] PreviewError),
    /// The partner's facility needs what was not given.
    #[error(transparent)]
    Setup(#[from] TestError),
    /// Too many tests in flight.
    #[error(
        "{MAX_TESTS_IN_FLIGHT} connector tests are already running here; try again in a few seconds"
    )]
    Busy,
}

/// Sends connector tests.
#[derive(Debug, Clone)]
pub struct Tester {
    base_urls: BaseUrls,
    client: PartnerClient,
    slots: Arc<Semaphore>,
}

impl Tester {
    /// Tests sending to `base_urls` with `client`.
    pub fn new(base_urls: BaseUrls, client: PartnerClient) -> Self {
        Self {
            base_urls,
            client,
            slots: Arc::new(Semaphore::new(MAX_TESTS_IN_FLIGHT)),
        }
    }

    /// Each partner's base URL (previews show the same URLs).
    pub fn base_urls(&self) -> &BaseUrls {
        &self.base_urls
    }

    /// Tests `config` with `event_json` at unix time `now`.
    pub async fn run(
        &self,
        config: &ConnectorConfig,
        event_json: &str,
        test_event_code: &str,
        now: i64,
    ) -> Result<TestConnectorResponse, TestRunError> {
        let _slot = self.slots.try_acquire().map_err(|_| TestRunError::Busy)?;
        let setup = setup(config, test_event_code)?;
        let base_url = self.base_urls.get(&config.partner);
        let mut response = TestConnectorResponse {
            facility: setup.facility.clone(),
            ..TestConnectorResponse::default()
        };
        let request = match build(&setup.config, event_json, base_url, now)? {
            Built::FilteredOut => {
                response.message =
                    "the connector's filter leaves this event out: nothing was sent".to_owned();
                return Ok(response);
            }
            Built::Unfilled(failure) => {
                response.outcome = Outcome::TransformationError as i32;
                response.message = format!(
                    "nothing was sent: {} cannot be filled ({})",
                    failure.target_field, failure.reason
                );
                response.transformation_errors = vec![failure];
                return Ok(response);
            }
            Built::Request(request) => setup.point(request),
        };
        response.request = Some(shown(&setup.config, &request));
        let secrets = || setup.config.secrets.values().map(String::as_str);
        let verdict = match self.client.send(&request).await {
            Ok(answer) => {
                response.http_status = u32::from(answer.status);
                let (verdict, messages) = setup.read(&answer);
                response.validation_messages = messages;
                if verdict == Verdict::Delivered {
                    let body = String::from_utf8_lossy(&answer.body);
                    response.message = cut(&hide_secrets(&body, secrets(), 1));
                }
                verdict
            }
            Err(failure) => Verdict::Failed(failure),
        };
        match verdict {
            Verdict::Delivered => response.outcome = Outcome::Delivered as i32,
            Verdict::Partial { failure, .. } | Verdict::Failed(failure) => {
                let failure = failure.scrubbed(secrets());
                response.outcome = Outcome::Failed as i32;
                response.category = failure.category as i32;
                response.partner_code = failure.partner_code;
                response.message = cut(&failure.message);
            }
        }
        tracing::info!(
            connector_id = %config.id,
            partner = %config.partner,
            outcome = ?response.outcome(),
            http_status = response.http_status,
            "connector tested"
        );
        Ok(response)
    }
}

/// `text` cut to the length recent failures keep.
fn cut(text: &str) -> String {
    text.chars().take(MAX_FAILURE_MESSAGE_CHARS).collect()
}

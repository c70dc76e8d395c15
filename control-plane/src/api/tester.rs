//! TestConnector's sending side: one test event, built as delivery builds
//! it, pointed at the partner's test facility
//! ([`partners::test_event`]), sent once with the partner client under
//! the same destination policy as nodes, and the answer read in
//! delivery's categories. Tests in flight are capped per workspace and
//! per replica: one workspace cannot take every slot, and no caller keeps
//! more than a few requests going at once (a cap on concurrency, not a
//! rate).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use eventconnectors_proto::limits::failure_message;
use eventconnectors_proto::v1::{ConnectorConfig, Outcome, TestConnectorResponse};
use partner_client::PartnerClient;
use partners::adapter::{Verdict, scrub_answer};
use partners::base_urls::BaseUrls;
use partners::preview::{Built, PreviewError, build, shown};
use partners::test_event::{TestError, setup};
use tokio::sync::Semaphore;

/// Connector tests one replica runs at once; more are refused
/// (RESOURCE_EXHAUSTED) rather than queued.
pub const MAX_TESTS_IN_FLIGHT: usize = 16;
/// Connector tests of one workspace one replica runs at once.
pub const MAX_TESTS_PER_WORKSPACE: usize = 4;

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
    /// Too many tests of the workspace in flight.
    #[error(
        "{MAX_TESTS_PER_WORKSPACE} tests of this workspace are already running; try again when they end"
    )]
    WorkspaceBusy,
}

/// Sends connector tests.
#[derive(Debug, Clone)]
pub struct Tester {
    base_urls: BaseUrls,
    client: PartnerClient,
    slots: Arc<Semaphore>,
    per_workspace: Arc<Mutex<HashMap<String, usize>>>,
}

/// A workspace's test in flight, counted until dropped.
struct WorkspaceSlot {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    workspace: String,
}

impl WorkspaceSlot {
    fn take(counts: &Arc<Mutex<HashMap<String, usize>>>, workspace: &str) -> Option<Self> {
        let mut all = counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = all.entry(workspace.to_owned()).or_default();
        if *count >= MAX_TESTS_PER_WORKSPACE {
            return None;
        }
        *count += 1;
        Some(Self {
            counts: Arc::clone(counts),
            workspace: workspace.to_owned(),
        })
    }
}

impl Drop for WorkspaceSlot {
    fn drop(&mut self) {
        let mut all = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(count) = all.get_mut(&self.workspace) {
            *count -= 1;
            if *count == 0 {
                all.remove(&self.workspace);
            }
        }
    }
}

impl Tester {
    /// Tests sending to `base_urls` with `client`.
    pub fn new(base_urls: BaseUrls, client: PartnerClient) -> Self {
        Self {
            base_urls,
            client,
            slots: Arc::new(Semaphore::new(MAX_TESTS_IN_FLIGHT)),
            per_workspace: Arc::default(),
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
        let _workspace = WorkspaceSlot::take(&self.per_workspace, &config.workspace_id)
            .ok_or(TestRunError::WorkspaceBusy)?;
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
            Built::Request(request) => setup.point(request)?,
        };
        response.request = Some(shown(&setup.config, &request));
        let secrets = || setup.config.secrets.values().map(String::as_str);
        let verdict = match self.client.send(&request).await {
            Ok(answer) => {
                response.http_status = u32::from(answer.status);
                let (verdict, messages) = setup.read(&answer);
                response.validation_messages = messages
                    .iter()
                    .map(|message| cut(&scrub_answer(message, secrets())))
                    .collect();
                if verdict == Verdict::Delivered {
                    response.message = if setup.shows_answer() {
                        cut(&scrub_answer(
                            &String::from_utf8_lossy(&answer.body),
                            secrets(),
                        ))
                    } else {
                        format!("accepted (HTTP {})", answer.status)
                    };
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
    failure_message(text).to_owned()
}

//! The one place where failures become gRPC statuses.

use tonic::Status;

use crate::secrets::SealError;
use crate::store::StoreError;
use partners::preview::PreviewError;
use partners::test_event::TestError;

use super::tester::TestRunError;
use server_kit::violations::Violations;

/// Why a ConnectorService call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is invalid; each violation names its field.
    #[error("invalid request")]
    Invalid(Violations),
    /// A store failure (includes NOT_FOUND and version conflicts).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored secrets could not be opened (wrong key?).
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A preview could not be made: the sample event's fault
    /// (INVALID_ARGUMENT on `event_json`), or the stored connector's.
    #[error(transparent)]
    Preview(#[from] PreviewError),
    /// A connector test that cannot run (a missing test event code, too
    /// many tests at once).
    #[error(transparent)]
    Test(#[from] TestRunError),
    /// The caller's scope does not cover the request (PERMISSION_DENIED,
    /// already worded).
    #[error("permission denied")]
    Denied(Status),
}

impl From<Violations> for ApiError {
    fn from(violations: Violations) -> Self {
        Self::Invalid(violations)
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::Invalid(violations) => violations.into_status(),
            ApiError::Preview(PreviewError::Event(why)) => {
                Violations::one("event_json", why).into_status()
            }
            ApiError::Preview(PreviewError::Connector(why)) => {
                Status::failed_precondition(format!(
                    "the connector cannot be previewed: {why}; update it to a configuration the catalog accepts"
                ))
            }
            ApiError::Test(TestRunError::Setup(
                code @ (TestError::NeedsTestCode(_) | TestError::BadTestCode),
            )) => Violations::one("test_event_code", code.to_string()).into_status(),
            ApiError::Test(TestRunError::Setup(
                cannot @ (TestError::UnknownPartner(_) | TestError::Unpointable(_)),
            )) => Status::failed_precondition(cannot.to_string()),
            ApiError::Test(busy @ (TestRunError::Busy | TestRunError::WorkspaceBusy)) => {
                Status::resource_exhausted(busy.to_string())
            }
            ApiError::Test(TestRunError::Preview(preview)) => ApiError::Preview(preview).into(),
            ApiError::Denied(status) => status,
            ApiError::Store(StoreError::NotFound(id)) => {
                Status::not_found(format!("connector {id} not found"))
            }
            ApiError::Store(StoreError::KeyNotFound(id)) => {
                Status::not_found(format!("API key {id} not found"))
            }
            ApiError::Store(StoreError::TooManyKeys {
                scope_workspace,
                limit,
            }) => Status::resource_exhausted(match scope_workspace {
                Some(workspace) => format!(
                    "workspace `{workspace}` already has {limit} valid API keys, the most allowed: revoke unused ones first"
                ),
                None => format!(
                    "there are already {limit} valid operator keys, the most allowed: revoke unused ones first"
                ),
            }),
            ApiError::Store(StoreError::VersionMismatch {
                id,
                expected,
                current,
            }) => Status::aborted(format!(
                "connector {id} is at version {current} but the request was based on version {expected}: \
                 read it again and reapply the change"
            )),
            ApiError::Store(error) if error.is_unavailable() => {
                tracing::warn!(%error, "database unavailable");
                Status::unavailable("the database is unavailable; retry")
            }
            ApiError::Store(error) => {
                tracing::error!(%error, "store failure");
                Status::internal("internal store error")
            }
            ApiError::Seal(error) => {
                tracing::error!(%error, "cannot open stored secrets");
                Status::internal(
                    "stored credentials cannot be read with the configured secrets key",
                )
            }
        }
    }
}

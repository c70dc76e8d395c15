//! ConnectorService: the admin API over the connector store.

mod access;
mod convert;
mod error;
mod keys;
mod page_token;
mod tester;

use eventconnectors_proto::v1::connector_service_server::ConnectorService;
use eventconnectors_proto::v1::{
    ActivateConnectorRequest, Connector, ConnectorConfig, ConnectorStatus as ProtoStatus,
    CreateConnectorRequest, DeactivateConnectorRequest, DeleteConnectorRequest,
    DeleteConnectorResponse, GetConnectorRequest, ListConnectorsRequest, ListConnectorsResponse,
    ListPartnersRequest, ListPartnersResponse, PreviewTransformationRequest,
    PreviewTransformationResponse, TestConnectorRequest, TestConnectorResponse,
    UpdateConnectorRequest,
};
use eventconnectors_proto::v1::{preview_transformation_request, test_connector_request};
use server_kit::access::Scope;
use tonic::{Request, Response, Status};

pub use access::Access;
pub use error::ApiError;
pub use keys::{KeyApi, MAX_VALID_KEYS};
use partners::destination::DestinationPolicy;
use partners::validation::{
    ConnectorDraft, MAX_ID_CHARS, Violations, check_destinations, check_draft, check_new,
    check_workspace_id,
};
pub use tester::{MAX_TESTS_IN_FLIGHT, MAX_TESTS_PER_WORKSPACE, TestRunError, Tester};

use crate::clock::now_ms;
use crate::secrets::SecretBox;
use crate::store::{ConnectorRecord, ConnectorStatus, ListFilter, NewConnector, Store, StoreError};

/// Default and largest ListConnectors page.
const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

/// Fields UpdateConnector can replace.
const UPDATABLE: [&str; 5] = ["name", "settings", "secrets", "mappings", "filter"];

/// The ConnectorService implementation. Every call needs a credential
/// whose scope administers the connector's workspace.
#[derive(Debug, Clone)]
pub struct ConnectorApi {
    store: Store,
    secrets: SecretBox,
    access: Access,
    destinations: DestinationPolicy,
    tester: Tester,
}

/// The connector a preview or a test is about.
enum Subject {
    /// A stored one, by id.
    Stored(String),
    /// A draft, named `draft` in field errors.
    Draft(Box<Connector>),
    /// Neither was given.
    Missing,
}

impl From<Option<preview_transformation_request::Target>> for Subject {
    fn from(target: Option<preview_transformation_request::Target>) -> Self {
        use preview_transformation_request::Target;
        match target {
            Some(Target::ConnectorId(id)) => Self::Stored(id),
            Some(Target::Draft(draft)) => Self::Draft(Box::new(draft)),
            None => Self::Missing,
        }
    }
}

impl From<Option<test_connector_request::Target>> for Subject {
    fn from(target: Option<test_connector_request::Target>) -> Self {
        use test_connector_request::Target;
        match target {
            Some(Target::ConnectorId(id)) => Self::Stored(id),
            Some(Target::Draft(draft)) => Self::Draft(Box::new(draft)),
            None => Self::Missing,
        }
    }
}

impl ConnectorApi {
    /// An API over `store`, sealing credentials with `secrets`, for callers
    /// `access` authenticates; URL settings must pass `destinations`;
    /// connector tests are sent by `tester`.
    pub fn new(
        store: Store,
        secrets: SecretBox,
        access: Access,
        destinations: DestinationPolicy,
        tester: Tester,
    ) -> Self {
        Self {
            store,
            secrets,
            access,
            destinations,
            tester,
        }
    }

    /// The caller's scope.
    async fn scope<T>(&self, request: &Request<T>) -> Result<Scope, Status> {
        Ok(self.access.caller_of(request).await?.scope)
    }

    /// The connector `id`, if `scope` administers its workspace.
    async fn owned(&self, scope: &Scope, id: &str) -> Result<ConnectorRecord, Status> {
        require_id(id)?;
        let record = self.store.get(id).await.map_err(ApiError::from)?;
        scope.require_admin_of(&record.workspace_id)?;
        Ok(record)
    }

    async fn create(
        &self,
        scope: &Scope,
        request: CreateConnectorRequest,
    ) -> Result<Connector, Status> {
        let mut violations = Violations::default();
        let Some(connector) = request.connector else {
            violations.add("connector", "required");
            return Err(ApiError::from(violations).into());
        };
        scope.require_admin_of(&connector.workspace_id)?;
        let (workspace_id, partner) = (connector.workspace_id.clone(), connector.partner.clone());
        let draft = self.checked_new(&mut violations, "connector", connector);
        if request.request_id.chars().count() > MAX_ID_CHARS {
            violations.add("request_id", format!("at most {MAX_ID_CHARS} characters"));
        }
        violations.into_result(()).map_err(ApiError::from)?;

        let id = uuid::Uuid::now_v7().to_string();
        let now = now_ms();
        let record = ConnectorRecord {
            sealed_secrets: self.secrets.seal(&id, &draft.secrets),
            secret_names: draft.secrets.keys().cloned().collect(),
            id,
            workspace_id,
            name: draft.name,
            partner,
            status: ConnectorStatus::Active,
            settings: draft.settings,
            mappings: draft.mappings,
            filter: draft.filter,
            version: 1,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let request_id = Some(request.request_id).filter(|r| !r.is_empty());
        let stored = self
            .store
            .insert(&NewConnector { record, request_id })
            .await
            .map_err(ApiError::from)?;
        tracing::info!(connector_id = %stored.id, workspace_id = %stored.workspace_id, partner = %stored.partner, "connector created");
        Ok(convert::to_proto(&stored))
    }

    /// `connector`, to be created, as a draft; what CreateConnector refuses
    /// in it is added to `violations`, named under `prefix`.
    fn checked_new(
        &self,
        violations: &mut Violations,
        prefix: &str,
        connector: Connector,
    ) -> ConnectorDraft {
        let draft = ConnectorDraft {
            name: connector.name.trim().to_owned(),
            settings: connector.settings,
            secrets: connector.secrets,
            mappings: connector.mappings,
            filter: connector.filter,
        };
        check_new(
            violations,
            prefix,
            &connector.workspace_id,
            &connector.partner,
            &draft,
        );
        if let Some(partner) = partners::partner(&connector.partner) {
            check_destinations(violations, prefix, partner, &draft, &self.destinations);
        }
        draft
    }

    /// The delivery configuration of `subject`: a stored connector of the
    /// caller's, or a draft checked as CreateConnector checks it.
    async fn subject_config(
        &self,
        scope: &Scope,
        subject: Subject,
    ) -> Result<ConnectorConfig, Status> {
        match subject {
            Subject::Stored(id) => {
                let record = self.owned(scope, &id).await?;
                let opened = self
                    .secrets
                    .open(&record.id, &record.sealed_secrets)
                    .map_err(ApiError::from)?;
                Ok(record.config(opened))
            }
            Subject::Draft(connector) => {
                scope.require_admin_of(&connector.workspace_id)?;
                let mut violations = Violations::default();
                let (workspace_id, partner) =
                    (connector.workspace_id.clone(), connector.partner.clone());
                let draft = self.checked_new(&mut violations, "draft", *connector);
                violations.into_result(()).map_err(ApiError::from)?;
                Ok(ConnectorConfig {
                    id: "draft".to_owned(),
                    workspace_id,
                    partner,
                    settings: draft.settings,
                    secrets: draft.secrets,
                    mappings: draft.mappings,
                    filter: draft.filter,
                    connector_version: 0,
                })
            }
            Subject::Missing => {
                let mut violations = Violations::default();
                violations.add("target", "connector_id or draft: required");
                Err(ApiError::from(violations).into())
            }
        }
    }

    /// What the connector, or the draft, of `request` would send for its
    /// sample event.
    async fn preview(
        &self,
        scope: &Scope,
        request: PreviewTransformationRequest,
    ) -> Result<PreviewTransformationResponse, Status> {
        let config = self.subject_config(scope, request.target.into()).await?;
        let base_url = self.tester.base_urls().get(&config.partner);
        let now = now_ms() / 1000;
        Ok(
            partners::preview::preview(&config, &request.event_json, base_url, now)
                .map_err(ApiError::from)?,
        )
    }

    /// One test event through the connector, or the draft, of `request`.
    async fn test(
        &self,
        scope: &Scope,
        request: TestConnectorRequest,
    ) -> Result<TestConnectorResponse, Status> {
        let config = self.subject_config(scope, request.target.into()).await?;
        let now = now_ms() / 1000;
        let event = if request.event_json.trim().is_empty() {
            partners::test_event::sample_event(&config.workspace_id, now)
        } else {
            request.event_json
        };
        Ok(self
            .tester
            .run(&config, &event, &request.test_event_code, now)
            .await
            .map_err(ApiError::from)?)
    }

    async fn list(
        &self,
        scope: &Scope,
        mut request: ListConnectorsRequest,
    ) -> Result<ListConnectorsResponse, Status> {
        // A workspace admin lists its own workspace, named or not.
        if let Some(own) = scope.workspace()
            && request.workspace_id.is_empty()
        {
            request.workspace_id = own.to_owned();
        }
        if request.workspace_id.is_empty() {
            scope.require_operator("every workspace's connectors")?;
        } else {
            scope.require_admin_of(&request.workspace_id)?;
        }
        let mut violations = Violations::default();
        if !request.workspace_id.is_empty() {
            check_workspace_id(&mut violations, "workspace_id", &request.workspace_id);
        }
        let status = match ProtoStatus::try_from(request.status) {
            Ok(ProtoStatus::StatusUnspecified) => None,
            Ok(ProtoStatus::Active) => Some(ConnectorStatus::Active),
            Ok(ProtoStatus::Inactive) => Some(ConnectorStatus::Inactive),
            Err(_) => {
                violations.add("status", "must be ACTIVE, INACTIVE or unspecified");
                None
            }
        };
        let page_size = match u32::try_from(request.page_size) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
            Err(_) => {
                violations.add("page_size", "must not be negative");
                DEFAULT_PAGE_SIZE
            }
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            let decoded = page_token::decode(&request.page_token);
            if decoded.is_none() {
                violations.add("page_token", "not a token this API returned");
            }
            decoded
        };
        violations.into_result(()).map_err(ApiError::from)?;

        let filter = ListFilter {
            workspace_id: Some(request.workspace_id).filter(|w| !w.is_empty()),
            status,
        };
        // One extra row tells whether another page follows.
        let mut records = self
            .store
            .list(&filter, after.as_deref(), page_size + 1)
            .await
            .map_err(ApiError::from)?;
        let next_page_token = if records.len() > page_size as usize {
            records.truncate(page_size as usize);
            records
                .last()
                .map(|last| page_token::encode(&last.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListConnectorsResponse {
            connectors: records.iter().map(convert::to_proto).collect(),
            next_page_token,
        })
    }

    async fn update(
        &self,
        scope: &Scope,
        request: UpdateConnectorRequest,
    ) -> Result<Connector, ApiError> {
        let mut violations = Violations::default();
        let Some(changes) = request.connector else {
            violations.add("connector", "required");
            return Err(violations.into());
        };
        if changes.id.is_empty() {
            violations.add("connector.id", "required");
        }
        if changes.version <= 0 {
            violations.add(
                "connector.version",
                "required: the version you last read (optimistic concurrency)",
            );
        }
        let paths = request
            .update_mask
            .map(|mask| mask.paths)
            .unwrap_or_default();
        if paths.is_empty() {
            violations.add(
                "update_mask",
                format!(
                    "required: the fields to replace, any of {}",
                    UPDATABLE.join(", ")
                ),
            );
        }
        for (index, path) in paths.iter().enumerate() {
            if !UPDATABLE.contains(&path.as_str()) {
                violations.add(
                    format!("update_mask.paths[{index}]"),
                    format!(
                        "`{path}` cannot be updated; updatable: {}",
                        UPDATABLE.join(", ")
                    ),
                );
            }
        }
        violations.into_result(())?;

        let current = self.store.get(&changes.id).await?;
        if !scope.administers(&current.workspace_id) {
            return Err(ApiError::Denied(
                scope.denied(&format!("workspace `{}`", current.workspace_id)),
            ));
        }
        if current.version != changes.version {
            return Err(StoreError::VersionMismatch {
                id: current.id,
                expected: changes.version,
                current: current.version,
            }
            .into());
        }
        let mut draft = ConnectorDraft {
            name: current.name.clone(),
            settings: current.settings.clone(),
            secrets: self.secrets.open(&current.id, &current.sealed_secrets)?,
            mappings: current.mappings.clone(),
            filter: current.filter.clone(),
        };
        let mut changes = changes;
        for path in &paths {
            match path.as_str() {
                "name" => draft.name = changes.name.trim().to_owned(),
                "settings" => draft.settings = std::mem::take(&mut changes.settings),
                "secrets" => draft.secrets = std::mem::take(&mut changes.secrets),
                "mappings" => draft.mappings = std::mem::take(&mut changes.mappings),
                "filter" => draft.filter = changes.filter.take(),
                _ => unreachable!("paths were checked against UPDATABLE"),
            }
        }
        let partner = partners::partner(&current.partner).ok_or_else(|| StoreError::Corrupt {
            id: current.id.clone(),
            reason: format!("partner `{}` is no longer in the catalog", current.partner),
        })?;
        let mut violations = Violations::default();
        check_draft(&mut violations, "connector", partner, &draft);
        check_destinations(
            &mut violations,
            "connector",
            partner,
            &draft,
            &self.destinations,
        );
        violations.into_result(())?;

        let record = ConnectorRecord {
            sealed_secrets: self.secrets.seal(&current.id, &draft.secrets),
            secret_names: draft.secrets.keys().cloned().collect(),
            name: draft.name,
            settings: draft.settings,
            mappings: draft.mappings,
            filter: draft.filter,
            updated_at_ms: now_ms(),
            ..current
        };
        let stored = self.store.update(&record, changes.version).await?;
        tracing::info!(connector_id = %stored.id, version = stored.version, fields = ?paths, "connector updated");
        Ok(convert::to_proto(&stored))
    }

    async fn set_status(
        &self,
        scope: &Scope,
        id: &str,
        status: ConnectorStatus,
    ) -> Result<Connector, Status> {
        self.owned(scope, id).await?;
        let stored = self
            .store
            .set_status(id, status, now_ms())
            .await
            .map_err(ApiError::from)?;
        tracing::info!(connector_id = %id, status = status.as_str(), version = stored.version, "connector status set");
        Ok(convert::to_proto(&stored))
    }

    async fn delete(&self, scope: &Scope, id: &str) -> Result<DeleteConnectorResponse, Status> {
        self.owned(scope, id).await?;
        self.store
            .delete(id, now_ms())
            .await
            .map_err(ApiError::from)?;
        tracing::info!(connector_id = %id, "connector deleted");
        Ok(DeleteConnectorResponse {})
    }
}

fn require_id(id: &str) -> Result<(), ApiError> {
    let mut violations = Violations::default();
    if id.is_empty() {
        violations.add("id", "required");
    }
    Ok(violations.into_result(())?)
}

#[tonic::async_trait]
impl ConnectorService for ConnectorApi {
    async fn list_partners(
        &self,
        request: Request<ListPartnersRequest>,
    ) -> Result<Response<ListPartnersResponse>, Status> {
        // The catalog is the same for everyone; any valid credential reads it.
        self.scope(&request).await?;
        Ok(Response::new(ListPartnersResponse {
            partners: partners::PARTNERS.iter().map(|p| p.to_proto()).collect(),
        }))
    }

    async fn create_connector(
        &self,
        request: Request<CreateConnectorRequest>,
    ) -> Result<Response<Connector>, Status> {
        let scope = self.scope(&request).await?;
        Ok(Response::new(
            self.create(&scope, request.into_inner()).await?,
        ))
    }

    async fn get_connector(
        &self,
        request: Request<GetConnectorRequest>,
    ) -> Result<Response<Connector>, Status> {
        let scope = self.scope(&request).await?;
        let record = self.owned(&scope, &request.into_inner().id).await?;
        Ok(Response::new(convert::to_proto(&record)))
    }

    async fn list_connectors(
        &self,
        request: Request<ListConnectorsRequest>,
    ) -> Result<Response<ListConnectorsResponse>, Status> {
        let scope = self.scope(&request).await?;
        Ok(Response::new(
            self.list(&scope, request.into_inner()).await?,
        ))
    }

    async fn update_connector(
        &self,
        request: Request<UpdateConnectorRequest>,
    ) -> Result<Response<Connector>, Status> {
        let scope = self.scope(&request).await?;
        Ok(Response::new(
            self.update(&scope, request.into_inner()).await?,
        ))
    }

    async fn activate_connector(
        &self,
        request: Request<ActivateConnectorRequest>,
    ) -> Result<Response<Connector>, Status> {
        let scope = self.scope(&request).await?;
        Ok(Response::new(
            self.set_status(&scope, &request.into_inner().id, ConnectorStatus::Active)
                .await?,
        ))
    }

    async fn deactivate_connector(
        &self,
        request: Request<DeactivateConnectorRequest>,
    ) -> Result<Response<Connector>, Status> {
        let scope = self.scope(&request).await?;
        Ok(Response::new(
            self.set_status(&scope, &request.into_inner().id, ConnectorStatus::Inactive)
                .await?,
        ))
    }

    async fn preview_transformation(
        &self,
        request: Request<PreviewTransformationRequest>,
    ) -> Result<Response<PreviewTransformationResponse>, Status> {
        let scope = self.scope(&request).await?;
        Ok(Response::new(
            self.preview(&scope, request.into_inner()).await?,
        ))
    }

    async fn test_connector(
        &self,
        request: Request<TestConnectorRequest>,
    ) -> Result<Response<TestConnectorResponse>, Status> {
        let scope = self.scope(&request).await?;
        Ok(Response::new(
            self.test(&scope, request.into_inner()).await?,
        ))
    }

    async fn delete_connector(
        &self,
        request: Request<DeleteConnectorRequest>,
    ) -> Result<Response<DeleteConnectorResponse>, Status> {
        let scope = self.scope(&request).await?;
        Ok(Response::new(
            self.delete(&scope, &request.into_inner().id).await?,
        ))
    }
}

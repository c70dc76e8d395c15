//! ApiKeyService: creating, listing and revoking API keys. An operator
//! manages every key; a workspace admin the keys scoped to its workspace.
//!
//! A key is `eck_` and 43 characters of URL-safe base64 (32 bytes from the
//! operating system's generator): visible ASCII, so gRPC metadata carries it
//! as is, and too random to guess or to reverse from its SHA-256, which is
//! all the store keeps.

use base64::Engine;
use eventconnectors_proto::v1::api_key_service_server::ApiKeyService;
use eventconnectors_proto::v1::{
    ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, ListApiKeysRequest, ListApiKeysResponse,
    RevokeApiKeyRequest,
};
use partners::validation::{Violations, check_workspace_id};
use rand::RngCore;
use server_kit::access::{KEY_PREFIX, Scope, digest};
use tonic::{Request, Response, Status};

use super::{Access, ApiError};
use crate::clock::{now_ms, timestamp};
use crate::store::{KeyRecord, Store};

/// Characters of a key shown in listings.
const SHOWN_CHARS: usize = 12;
/// Longest description.
const MAX_DESCRIPTION_CHARS: usize = 200;
/// Most valid keys per workspace, and of operator keys.
pub const MAX_VALID_KEYS: u32 = 100;

/// The ApiKeyService implementation.
#[derive(Debug, Clone)]
pub struct KeyApi {
    store: Store,
    access: Access,
}

impl KeyApi {
    /// Keys in `store`, for callers `access` authenticates.
    pub fn new(store: Store, access: Access) -> Self {
        Self { store, access }
    }

    async fn create(
        &self,
        caller: &Scope,
        request: CreateApiKeyRequest,
    ) -> Result<CreateApiKeyResponse, Status> {
        let mut violations = Violations::default();
        let scope = match Scope::parse(&request.scope) {
            Ok(scope) => Some(scope),
            Err(error) => {
                violations.add("scope", error.to_string());
                None
            }
        };
        let description = request.description.trim();
        if description.chars().count() > MAX_DESCRIPTION_CHARS {
            violations.add(
                "description",
                format!("at most {MAX_DESCRIPTION_CHARS} characters"),
            );
        }
        violations.into_result(()).map_err(ApiError::from)?;
        let scope = scope.expect("a scope that did not parse is a violation");
        match scope.workspace() {
            Some(workspace) => caller.require_admin_of(workspace)?,
            None => caller.require_operator("operator keys")?,
        }

        let secret = new_secret();
        let record = KeyRecord {
            id: uuid::Uuid::now_v7().to_string(),
            prefix: secret[..SHOWN_CHARS].to_owned(),
            sha256: hex::encode(digest(secret.as_bytes())),
            scope: scope.to_string(),
            workspace_id: scope.workspace().map(str::to_owned),
            description: description.to_owned(),
            created_at_ms: now_ms(),
            last_used_at_ms: None,
            revoked_at_ms: None,
        };
        self.store
            .insert_key(&record, MAX_VALID_KEYS)
            .await
            .map_err(ApiError::from)?;
        tracing::info!(key_id = %record.id, prefix = %record.prefix, scope = %record.scope, "API key created");
        Ok(CreateApiKeyResponse {
            api_key: Some(to_proto(&record)),
            secret,
        })
    }

    async fn list(
        &self,
        caller: &Scope,
        request: ListApiKeysRequest,
    ) -> Result<ListApiKeysResponse, Status> {
        let workspace = match (caller.workspace(), request.workspace_id.as_str()) {
            (Some(own), "") => {
                caller.require_admin_of(own)?;
                Some(own.to_owned())
            }
            (_, "") => {
                caller.require_operator("every workspace's keys")?;
                None
            }
            (_, named) => {
                let mut violations = Violations::default();
                check_workspace_id(&mut violations, "workspace_id", named);
                violations.into_result(()).map_err(ApiError::from)?;
                caller.require_admin_of(named)?;
                Some(named.to_owned())
            }
        };
        let keys = self
            .store
            .list_keys(workspace.as_deref(), request.include_revoked)
            .await
            .map_err(ApiError::from)?;
        Ok(ListApiKeysResponse {
            api_keys: keys.iter().map(to_proto).collect(),
        })
    }

    async fn revoke(&self, caller: &Scope, id: &str) -> Result<ApiKey, Status> {
        if id.is_empty() {
            let mut violations = Violations::default();
            violations.add("id", "required");
            return Err(ApiError::from(violations).into());
        }
        let key = self.store.key(id).await.map_err(ApiError::from)?;
        match &key.workspace_id {
            Some(workspace) => caller.require_admin_of(workspace)?,
            None => caller.require_operator("operator keys")?,
        }
        let revoked = self
            .store
            .revoke_key(id, now_ms())
            .await
            .map_err(ApiError::from)?;
        tracing::info!(key_id = %id, prefix = %revoked.prefix, "API key revoked");
        Ok(to_proto(&revoked))
    }
}

/// A new key: the prefix, then 32 random bytes as URL-safe base64.
fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    format!("{KEY_PREFIX}{encoded}")
}

fn to_proto(key: &KeyRecord) -> ApiKey {
    ApiKey {
        id: key.id.clone(),
        prefix: key.prefix.clone(),
        scope: key.scope.clone(),
        description: key.description.clone(),
        create_time: Some(timestamp(key.created_at_ms)),
        last_used_time: key.last_used_at_ms.map(timestamp),
        revoke_time: key.revoked_at_ms.map(timestamp),
    }
}

#[tonic::async_trait]
impl ApiKeyService for KeyApi {
    async fn create_api_key(
        &self,
        request: Request<CreateApiKeyRequest>,
    ) -> Result<Response<CreateApiKeyResponse>, Status> {
        let caller = self.access.caller_of(&request).await?;
        Ok(Response::new(
            self.create(&caller.scope, request.into_inner()).await?,
        ))
    }

    async fn list_api_keys(
        &self,
        request: Request<ListApiKeysRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        let caller = self.access.caller_of(&request).await?;
        Ok(Response::new(
            self.list(&caller.scope, request.into_inner()).await?,
        ))
    }

    async fn revoke_api_key(
        &self,
        request: Request<RevokeApiKeyRequest>,
    ) -> Result<Response<ApiKey>, Status> {
        let caller = self.access.caller_of(&request).await?;
        Ok(Response::new(
            self.revoke(&caller.scope, &request.into_inner().id).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_sendable() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
        assert!(a.bytes().all(|c| c.is_ascii_graphic()));
        assert!(server_kit::auth::bearer((), &a).is_ok());
        assert!(server_kit::access::looks_like_key(a.as_bytes()));
        assert!(!server_kit::access::looks_like_key(b"eck_short"));
    }
}

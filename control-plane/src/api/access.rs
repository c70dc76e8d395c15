//! Who is calling the control plane: the bootstrap admin token (an
//! operator), or an API key looked up by its digest in the store on every
//! call, so a revocation holds on every replica as soon as it commits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use server_kit::access::{
    Bootstrap, Caller, Scope, digest, looks_like_key, presented, unknown_credential,
};
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::ApiError;
use crate::clock::now_ms;
use crate::store::Store;

/// A key's last use is recorded at most this often.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Authenticates callers of the control plane's admin RPCs.
#[derive(Debug, Clone)]
pub struct Access {
    store: Store,
    bootstrap: Bootstrap,
    /// When this replica last recorded each key's use: a busy key costs
    /// one write a minute, not one per call.
    touched: Arc<Mutex<HashMap<String, i64>>>,
}

impl Access {
    /// Callers are the bootstrap `admin_token` (operator) or valid keys in
    /// `store`.
    pub fn new(store: Store, admin_token: &str) -> Result<Self, server_kit::auth::EmptyToken> {
        Ok(Self {
            store,
            bootstrap: Bootstrap::default().with(admin_token, Scope::Operator)?,
            touched: Arc::default(),
        })
    }

    /// The caller presenting `metadata`'s credential: UNAUTHENTICATED for
    /// none, an unknown one or a revoked one.
    pub async fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let credential = presented(metadata)?;
        let presented = digest(credential);
        if let Some(scope) = self.bootstrap.scope_of(&presented) {
            return Ok(Caller {
                scope,
                key_id: None,
            });
        }
        // Only what could be a key costs a store lookup.
        if !looks_like_key(credential) {
            return Err(unknown_credential());
        }
        let key = self
            .store
            .key_by_digest(&hex::encode(presented))
            .await
            .map_err(ApiError::from)?;
        let Some(key) = key.filter(|key| key.revoked_at_ms.is_none()) else {
            return Err(unknown_credential());
        };
        let Ok(scope) = Scope::parse(&key.scope) else {
            tracing::error!(key_id = %key.id, "stored key scope is corrupt; key refused");
            return Err(unknown_credential());
        };
        self.record_use(&key.id).await;
        Ok(Caller {
            scope,
            key_id: Some(key.id.into()),
        })
    }

    /// Records, at most once a minute per key and replica, that key `id`
    /// was used now: the first call of the minute waits for the write (so
    /// a listing right after shows it), the others cost nothing.
    async fn record_use(&self, id: &str) {
        let now = now_ms();
        {
            let mut touched = self
                .touched
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if touched
                .get(id)
                .is_some_and(|last| now - last < LAST_USED_RESOLUTION_MS)
            {
                return;
            }
            // Keys come and go; the map only needs the recent ones.
            if touched.len() > 10_000 {
                touched.retain(|_, last| now - *last < LAST_USED_RESOLUTION_MS);
            }
            touched.insert(id.to_owned(), now);
        }
        if let Err(error) = self.store.touch_key(id, now, LAST_USED_RESOLUTION_MS).await {
            tracing::debug!(%error, key_id = %id, "cannot record the key's last use");
        }
    }

    /// The caller of `request`: the one the gate let through, or (for a
    /// service without the gate) authenticated now.
    pub async fn caller_of<T>(&self, request: &tonic::Request<T>) -> Result<Caller, Status> {
        match server_kit::gate::caller(request) {
            Some(caller) => Ok(caller.clone()),
            None => self.authenticate(request.metadata()).await,
        }
    }

    /// The caller, who must be an operator (for `what`, named in the
    /// refusal).
    pub async fn operator<T>(
        &self,
        request: &tonic::Request<T>,
        what: &str,
    ) -> Result<Caller, Status> {
        let caller = self.caller_of(request).await?;
        caller.scope.require_operator(what)?;
        Ok(caller)
    }
}

impl server_kit::gate::Gate for Access {
    fn check(
        &self,
        metadata: MetadataMap,
    ) -> server_kit::gate::BoxFuture<Result<Option<Caller>, Status>> {
        let access = self.clone();
        Box::pin(async move { access.authenticate(&metadata).await.map(Some) })
    }
}

//! Who a caller is and what it may do: API keys with their scopes, and the
//! bootstrap tokens from the environment.
//!
//! A key's scope is one of `operator` (everything), `workspace:<id>:admin`
//! (that workspace's connectors, statistics and keys) and
//! `workspace:<id>:ingest` (that workspace's events). The bootstrap tokens
//! act as an operator (`ADMIN_TOKEN`) or as an ingest credential for every
//! workspace (`INGEST_TOKEN`), so deployments without keys keep working.
//!
//! Services never hold keys, only their SHA-256 ([`KeyRing`]): keys are 32
//! random bytes, so the digest cannot be reversed, and a lookup by digest
//! tells a timing observer nothing about the key. Bootstrap tokens, chosen
//! by people, are compared as digests in constant time.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use eventconnectors_proto::v1::KeyGrant;
use subtle::ConstantTimeEq;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// Longest workspace id (as connectors' `workspace_id`).
const MAX_WORKSPACE_CHARS: usize = 128;

/// What every API key starts with (secret scanners can match on it).
pub const KEY_PREFIX: &str = "eck_";
/// Characters after the prefix: 32 bytes in unpadded URL-safe base64.
const KEY_BODY_CHARS: usize = 43;

/// Whether `credential` has the shape of an API key (not whether it is
/// one): what is not is refused without a store lookup.
pub fn looks_like_key(credential: &[u8]) -> bool {
    credential.len() == KEY_PREFIX.len() + KEY_BODY_CHARS
        && credential.starts_with(KEY_PREFIX.as_bytes())
        && credential[KEY_PREFIX.len()..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
}

/// SHA-256 of a credential.
pub type KeyDigest = [u8; 32];

pub use crate::auth::digest;

/// What a credential may do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Everything: every workspace, every key, the nodes.
    Operator,
    /// One workspace's connectors, statistics and keys.
    Admin(String),
    /// Ingest into one workspace.
    Ingest(String),
    /// Ingest into any workspace (the bootstrap ingest token only; no key
    /// has this scope).
    IngestAny,
}

/// A scope that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a scope: use `operator`, `workspace:<id>:admin` or `workspace:<id>:ingest`, \
     where <id> is 1 to 128 letters, digits, '.', '_' or '-'"
)]
pub struct ScopeError(pub String);

impl Scope {
    /// Parses the text form a key's scope is written in.
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        if text == "operator" {
            return Ok(Self::Operator);
        }
        let invalid = || ScopeError(text.chars().take(200).collect());
        let rest = text.strip_prefix("workspace:").ok_or_else(invalid)?;
        let (workspace, role) = rest.rsplit_once(':').ok_or_else(invalid)?;
        let valid_id = !workspace.is_empty()
            && workspace.chars().count() <= MAX_WORKSPACE_CHARS
            && workspace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        match role {
            "admin" if valid_id => Ok(Self::Admin(workspace.to_owned())),
            "ingest" if valid_id => Ok(Self::Ingest(workspace.to_owned())),
            _ => Err(invalid()),
        }
    }

    /// The workspace the scope is limited to (`None`: every workspace).
    pub fn workspace(&self) -> Option<&str> {
        match self {
            Self::Admin(workspace) | Self::Ingest(workspace) => Some(workspace),
            Self::Operator | Self::IngestAny => None,
        }
    }

    /// Whether the scope may read and change `workspace`'s connectors,
    /// statistics and keys.
    pub fn administers(&self, workspace: &str) -> bool {
        match self {
            Self::Operator => true,
            Self::Admin(own) => own == workspace,
            Self::Ingest(_) | Self::IngestAny => false,
        }
    }

    /// PERMISSION_DENIED unless the scope administers `workspace`.
    pub fn require_admin_of(&self, workspace: &str) -> Result<(), Status> {
        if self.administers(workspace) {
            Ok(())
        } else {
            Err(self.denied(&format!("workspace `{workspace}`")))
        }
    }

    /// PERMISSION_DENIED unless the scope is `operator`.
    pub fn require_operator(&self, what: &str) -> Result<(), Status> {
        if *self == Self::Operator {
            Ok(())
        } else {
            Err(self.denied(what))
        }
    }

    /// Where the scope may ingest: `Ok(None)` for any workspace,
    /// `Ok(Some(id))` for one; PERMISSION_DENIED for an admin key.
    pub fn ingest_workspace(&self) -> Result<Option<&str>, Status> {
        match self {
            Self::Operator | Self::IngestAny => Ok(None),
            Self::Ingest(workspace) => Ok(Some(workspace)),
            Self::Admin(workspace) => Err(Status::permission_denied(format!(
                "an admin key cannot ingest: create a `workspace:{workspace}:ingest` key for producers"
            ))),
        }
    }

    /// The refusal for `what`, naming the caller's scope.
    pub fn denied(&self, what: &str) -> Status {
        Status::permission_denied(format!(
            "the credential's scope ({self}) does not cover {what}"
        ))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Operator => f.write_str("operator"),
            Self::Admin(workspace) => write!(f, "workspace:{workspace}:admin"),
            Self::Ingest(workspace) => write!(f, "workspace:{workspace}:ingest"),
            Self::IngestAny => f.write_str("ingest into every workspace"),
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// What it may do.
    pub scope: Scope,
    /// The API key it presented; `None` for a bootstrap token.
    pub key_id: Option<Arc<str>>,
}

/// A valid API key as services hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The key's id.
    pub id: Arc<str>,
    /// SHA-256 of the key.
    pub digest: KeyDigest,
    /// Its scope.
    pub scope: Scope,
}

impl Grant {
    /// The grant a feed message carries; `None` (logged) when it is
    /// malformed, which leaves the key unusable rather than wrongly scoped.
    pub fn from_proto(grant: &KeyGrant) -> Option<Self> {
        let digest = <KeyDigest>::try_from(grant.sha256.as_slice()).ok();
        let scope = Scope::parse(&grant.scope).ok();
        match (digest, scope) {
            (Some(digest), Some(scope)) => Some(Self {
                id: grant.id.as_str().into(),
                digest,
                scope,
            }),
            _ => {
                tracing::error!(key_id = %grant.id, "malformed key grant ignored");
                None
            }
        }
    }

    /// The grant as the feed carries it.
    pub fn to_proto(&self) -> KeyGrant {
        KeyGrant {
            id: self.id.to_string(),
            sha256: self.digest.to_vec(),
            scope: self.scope.to_string(),
        }
    }
}

/// The valid API keys, by digest.
#[derive(Debug, Clone, Default)]
pub struct KeyRing {
    by_digest: HashMap<KeyDigest, Arc<Grant>>,
    by_id: HashMap<Arc<str>, KeyDigest>,
}

impl KeyRing {
    /// Adds or replaces the key with `grant.id`.
    pub fn upsert(&mut self, grant: Grant) {
        self.revoke(&grant.id);
        self.by_id.insert(Arc::clone(&grant.id), grant.digest);
        self.by_digest.insert(grant.digest, Arc::new(grant));
    }

    /// Forgets the key with this id.
    pub fn revoke(&mut self, id: &str) {
        if let Some(digest) = self.by_id.remove(id) {
            self.by_digest.remove(&digest);
        }
    }

    /// Applies a feed update's key changes (a full snapshot replaces every
    /// key).
    pub fn apply(&mut self, full: bool, upserts: &[KeyGrant], revoked: &[String]) {
        if full {
            *self = Self::default();
        }
        for id in revoked {
            self.revoke(id);
        }
        for grant in upserts.iter().filter_map(Grant::from_proto) {
            self.upsert(grant);
        }
    }

    /// The key whose digest is `digest`.
    pub fn find(&self, digest: &KeyDigest) -> Option<&Arc<Grant>> {
        self.by_digest.get(digest)
    }

    /// Number of valid keys.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether no key is valid.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

/// The bootstrap tokens a service accepts, each with the scope it grants.
#[derive(Clone, Default)]
pub struct Bootstrap {
    tokens: Vec<(KeyDigest, Scope)>,
}

impl fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scopes: Vec<String> = self.tokens.iter().map(|(_, s)| s.to_string()).collect();
        f.debug_struct("Bootstrap")
            .field("scopes", &scopes)
            .finish_non_exhaustive()
    }
}

impl Bootstrap {
    /// Accepts `token` with `scope`. An empty token is refused.
    pub fn with(mut self, token: &str, scope: Scope) -> Result<Self, crate::auth::EmptyToken> {
        let token = token.trim();
        if token.is_empty() {
            return Err(crate::auth::EmptyToken(match scope {
                Scope::Operator => "admin",
                _ => "ingest",
            }));
        }
        self.tokens.push((digest(token.as_bytes()), scope));
        Ok(self)
    }

    /// The scope of the bootstrap token with `presented`'s digest. Every
    /// token is compared, in constant time.
    pub fn scope_of(&self, presented: &KeyDigest) -> Option<Scope> {
        let mut found = None;
        for (expected, scope) in &self.tokens {
            if bool::from(presented.ct_eq(expected)) {
                found = Some(scope.clone());
            }
        }
        found
    }

    /// Authenticates against the bootstrap tokens, then `keys`.
    pub fn authenticate(&self, metadata: &MetadataMap, keys: &KeyRing) -> Result<Caller, Status> {
        self.caller(&presented_digest(metadata)?, keys)
    }

    /// The caller whose credential has digest `presented`: a bootstrap
    /// token, else a key in `keys`.
    pub fn caller(&self, presented: &KeyDigest, keys: &KeyRing) -> Result<Caller, Status> {
        if let Some(scope) = self.scope_of(presented) {
            return Ok(Caller {
                scope,
                key_id: None,
            });
        }
        match keys.find(presented) {
            Some(grant) => Ok(Caller {
                scope: grant.scope.clone(),
                key_id: Some(Arc::clone(&grant.id)),
            }),
            None => Err(unknown_credential()),
        }
    }
}

/// The refusal for a credential nobody issued, or one revoked.
pub fn unknown_credential() -> Status {
    Status::unauthenticated("unknown or revoked credential")
}

/// The credential of `authorization: Bearer <credential>`: UNAUTHENTICATED
/// when there is none.
pub fn presented(metadata: &MetadataMap) -> Result<&[u8], Status> {
    let Some(value) = metadata.get("authorization") else {
        return Err(Status::unauthenticated(
            "missing `authorization: Bearer <API key or token>` metadata",
        ));
    };
    value
        .as_bytes()
        .strip_prefix(b"Bearer ")
        .ok_or_else(|| Status::unauthenticated("authorization metadata must be `Bearer <key>`"))
}

/// The digest of the credential a caller sent.
pub fn presented_digest(metadata: &MetadataMap) -> Result<KeyDigest, Status> {
    presented(metadata).map(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("authorization", value.parse().expect("ascii"));
        metadata
    }

    #[test]
    fn scopes_parse_and_print_back() {
        for text in [
            "operator",
            "workspace:acme:admin",
            "workspace:a.b_c-9:ingest",
        ] {
            assert_eq!(Scope::parse(text).expect(text).to_string(), text);
        }
        assert_eq!(
            Scope::parse("workspace:acme:admin"),
            Ok(Scope::Admin("acme".into()))
        );
        for bad in [
            "",
            "admin",
            "Operator",
            "workspace::admin",
            "workspace:acme",
            "workspace:acme:owner",
            "workspace:a:b:admin",
            "workspace:ac me:admin",
            "workspace:*:ingest",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        let long = format!("workspace:{}:admin", "w".repeat(129));
        assert!(Scope::parse(&long).is_err());
    }

    #[test]
    fn scopes_cover_what_they_name_and_nothing_else() {
        let admin = Scope::Admin("a".into());
        assert!(admin.administers("a") && !admin.administers("b"));
        assert!(Scope::Operator.administers("anything"));
        assert!(!Scope::Ingest("a".into()).administers("a"));
        assert!(!Scope::IngestAny.administers("a"));
        assert_eq!(
            Scope::Ingest("a".into()).ingest_workspace().ok(),
            Some(Some("a"))
        );
        assert_eq!(Scope::IngestAny.ingest_workspace().ok(), Some(None));
        assert_eq!(
            admin.ingest_workspace().expect_err("admin").code(),
            tonic::Code::PermissionDenied
        );
        let denied = admin.require_admin_of("b").expect_err("other workspace");
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.message().contains("workspace:a:admin"));
        assert!(admin.require_operator("the nodes").is_err());
    }

    #[test]
    fn bootstrap_tokens_then_keys_then_nothing() {
        let bootstrap = Bootstrap::default()
            .with("adm1n", Scope::Operator)
            .and_then(|b| b.with("ingest", Scope::IngestAny))
            .expect("tokens");
        let mut ring = KeyRing::default();
        ring.upsert(Grant {
            id: "k1".into(),
            digest: digest(b"eck_key"),
            scope: Scope::Ingest("w".into()),
        });
        let caller = |value: &str| bootstrap.authenticate(&metadata(value), &ring);
        assert_eq!(
            caller("Bearer adm1n").expect("admin").scope,
            Scope::Operator
        );
        assert_eq!(
            caller("Bearer ingest").expect("ingest").scope,
            Scope::IngestAny
        );
        let keyed = caller("Bearer eck_key").expect("key");
        assert_eq!(keyed.key_id.as_deref(), Some("k1"));
        for bad in ["Bearer adm1", "Bearer eck_ke", "adm1n", "Bearer "] {
            let status = caller(bad).expect_err(bad);
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad}");
        }
        ring.revoke("k1");
        let revoked = bootstrap
            .authenticate(&metadata("Bearer eck_key"), &ring)
            .expect_err("revoked");
        assert_eq!(revoked.code(), tonic::Code::Unauthenticated);
        assert!(!format!("{bootstrap:?}").contains("adm1n"));
    }

    #[test]
    fn a_full_snapshot_replaces_the_ring_and_bad_grants_are_dropped() {
        let grant = |id: &str, key: &[u8], scope: &str| KeyGrant {
            id: id.into(),
            sha256: digest(key).to_vec(),
            scope: scope.into(),
        };
        let mut ring = KeyRing::default();
        ring.apply(
            true,
            &[
                grant("a", b"ka", "workspace:w:ingest"),
                grant("b", b"kb", "operator"),
            ],
            &[],
        );
        assert_eq!(ring.len(), 2);
        ring.apply(
            false,
            &[KeyGrant {
                id: "c".into(),
                sha256: vec![1, 2, 3],
                scope: "operator".into(),
            }],
            &["a".into()],
        );
        assert_eq!(ring.len(), 1, "a revoked, c malformed");
        assert!(ring.find(&digest(b"kb")).is_some());
        ring.apply(true, &[grant("d", b"kd", "workspace:x:admin")], &[]);
        assert!(ring.find(&digest(b"kb")).is_none());
        assert_eq!(ring.len(), 1);
    }
}

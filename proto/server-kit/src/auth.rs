//! Bearer tokens at the gRPC edge: checking the one a caller presents, and
//! presenting one to another service.
//!
//! Each service guards its RPCs with one of these interceptors (admin token,
//! node token, ingest token). Health and reflection are added to the router
//! without it and stay open.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Rejects requests whose `authorization` metadata is not `Bearer <token>`
/// with the expected token. What is compared are SHA-256 digests, in
/// constant time: neither the token's bytes nor its length show in how
/// long a refusal takes.
#[derive(Clone)]
pub struct BearerAuth {
    expected: Arc<[u8; 32]>,
    role: &'static str,
}

/// SHA-256 of a credential: what is compared and looked up, never the
/// credential itself.
pub fn digest(credential: &[u8]) -> [u8; 32] {
    Sha256::digest(credential).into()
}

/// A configuration value that must not reach logs: tokens, keys, URLs with
/// passwords. `Debug` prints `<redacted>`; [`Secret::expose`] gives the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Self(value.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A fresh random token (32 bytes, hex) for credentials that stay inside
/// one process, such as those between the all-in-one's services.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A configured token that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("the {0} token must not be empty")]
pub struct EmptyToken(pub &'static str);

/// A token holds characters gRPC metadata cannot carry.
#[derive(Debug, thiserror::Error)]
#[error("the token cannot be sent as gRPC metadata (it must be visible ASCII)")]
pub struct UnsendableToken;

/// `message` carrying `authorization: Bearer <token>`: how a service
/// presents its token to another.
pub fn bearer<T>(message: T, token: &str) -> Result<Request<T>, UnsendableToken> {
    let mut request = Request::new(message);
    insert_bearer(request.metadata_mut(), token)?;
    Ok(request)
}

/// Sets `authorization: Bearer <token>` in `metadata` (for a client
/// interceptor that adds it to every call).
pub fn insert_bearer(
    metadata: &mut tonic::metadata::MetadataMap,
    token: &str,
) -> Result<(), UnsendableToken> {
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| UnsendableToken)?;
    metadata.insert("authorization", value);
    Ok(())
}

impl BearerAuth {
    /// An interceptor accepting `token`. `role` names the token in errors
    /// ("admin", "node", "ingest"); the token itself is never logged.
    pub fn new(role: &'static str, token: &str) -> Result<Self, EmptyToken> {
        let token = token.trim();
        if token.is_empty() {
            return Err(EmptyToken(role));
        }
        Ok(Self {
            expected: Arc::new(digest(token.as_bytes())),
            role,
        })
    }

    /// Checks the `authorization` entry of `metadata`. Services whose
    /// methods need different tokens call it from their handlers.
    pub fn verify(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let Some(value) = metadata.get("authorization") else {
            return Err(Status::unauthenticated(format!(
                "missing `authorization: Bearer <{} token>` metadata",
                self.role
            )));
        };
        let presented = value.as_bytes().strip_prefix(b"Bearer ").ok_or_else(|| {
            Status::unauthenticated("authorization metadata must be `Bearer <token>`")
        })?;
        if bool::from(digest(presented).ct_eq(&*self.expected)) {
            Ok(())
        } else {
            Err(Status::unauthenticated(format!(
                "invalid {} token",
                self.role
            )))
        }
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        self.verify(request.metadata())?;
        Ok(request)
    }
}

impl fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BearerAuth")
            .field("role", &self.role)
            .field("expected", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = header {
            request
                .metadata_mut()
                .insert("authorization", value.parse().expect("ascii metadata"));
        }
        request
    }

    #[test]
    fn accepts_only_the_exact_bearer_token() {
        let mut auth = BearerAuth::new("admin", "s3cret").expect("token");
        assert!(auth.call(request(Some("Bearer s3cret"))).is_ok());
        for bad in [
            None,
            Some("Bearer s3cre"),
            Some("Bearer s3cret2"),
            Some("s3cret"),
            Some("Basic s3cret"),
            Some("Bearer "),
        ] {
            let status = auth.call(request(bad)).expect_err("must be refused");
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
    }

    #[test]
    fn a_presented_token_is_accepted() {
        let mut auth = BearerAuth::new("node", "n0de").expect("token");
        let request = bearer((), "n0de").expect("sendable");
        assert!(auth.call(request).is_ok());
        assert!(bearer((), "new\nline").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let secret: Secret = "hunter2".parse().expect("infallible");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn refuses_an_empty_token_and_never_prints_it() {
        assert!(BearerAuth::new("node", "  ").is_err());
        let auth = BearerAuth::new("node", "hunter2").expect("token");
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}

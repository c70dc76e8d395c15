//! Partner credentials at rest: sealed with AES-256-GCM, bound to their
//! connector (the connector id is the associated data, so a sealed blob
//! copied onto another row does not open), opened only to build the
//! configuration snapshot that data-plane nodes receive.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Format tag of sealed blobs: leaves room for key rotation.
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// Seals and opens connector secrets with one 256-bit key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

/// The sealing key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not base64 of exactly 32 bytes.
    #[error("the secrets key must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)")]
    Malformed,
    /// The key file could not be read or created.
    #[error("secrets key file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A sealed blob could not be produced or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Wrong key, wrong connector, or tampered data.
    #[error("sealed secrets of connector {0} do not open with this key")]
    Open(String),
    /// The blob is not in a known format.
    #[error("sealed secrets of connector {0} have an unknown format")]
    Format(String),
}

impl SecretBox {
    /// A box from a base64-encoded 32-byte key.
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| KeyError::Malformed)?;
        if bytes.len() != 32 {
            return Err(KeyError::Malformed);
        }
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    /// Reads the key from `path`. When the file does not exist and `create`
    /// is true, writes a new random key there (mode 0600) and uses it.
    pub fn load_or_create(path: &Path, create: bool) -> Result<Self, KeyError> {
        let file_error = |source| KeyError::File {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(encoded) => Self::from_base64(&encoded),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && create => {
                let key = Aes256Gcm::generate_key(OsRng);
                let encoded = STANDARD.encode(key);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(file_error)?;
                file.write_all(encoded.as_bytes()).map_err(file_error)?;
                tracing::warn!(path = %path.display(), "created a new secrets key; back it up: without it stored credentials cannot be read");
                Self::from_base64(&encoded)
            }
            Err(error) => Err(file_error(error)),
        }
    }

    /// Seals `secrets` for connector `connector_id`.
    pub fn seal(&self, connector_id: &str, secrets: &BTreeMap<String, String>) -> Vec<u8> {
        let plaintext = serde_json::to_vec(secrets).expect("a string map always serializes");
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: connector_id.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V1);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        sealed
    }

    /// Opens what [`SecretBox::seal`] sealed for the same connector.
    pub fn open(
        &self,
        connector_id: &str,
        sealed: &[u8],
    ) -> Result<BTreeMap<String, String>, SealError> {
        let Some((&FORMAT_V1, rest)) = sealed.split_first() else {
            return Err(SealError::Format(connector_id.to_owned()));
        };
        if rest.len() < NONCE_LEN {
            return Err(SealError::Format(connector_id.to_owned()));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: connector_id.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open(connector_id.to_owned()))?;
        serde_json::from_slice(&plaintext).map_err(|_| SealError::Format(connector_id.to_owned()))
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(<key redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BTreeMap<String, String> {
        BTreeMap::from([("access_token".to_owned(), "EAAB-very-secret".to_owned())])
    }

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let sealer = SecretBox::from_base64(&STANDARD.encode([7u8; 32])).expect("key");
        let sealed = sealer.seal("c1", &sample());
        assert!(!String::from_utf8_lossy(&sealed).contains("very-secret"));
        assert_eq!(sealer.open("c1", &sealed).expect("opens"), sample());
        assert_ne!(
            sealed,
            sealer.seal("c1", &sample()),
            "every seal uses a fresh nonce"
        );
    }

    #[test]
    fn refuses_other_connectors_other_keys_and_tampering() {
        let sealer = SecretBox::from_base64(&STANDARD.encode([7u8; 32])).expect("key");
        let other = SecretBox::from_base64(&STANDARD.encode([8u8; 32])).expect("key");
        let mut sealed = sealer.seal("c1", &sample());
        assert!(matches!(
            sealer.open("c2", &sealed),
            Err(SealError::Open(_))
        ));
        assert!(matches!(other.open("c1", &sealed), Err(SealError::Open(_))));
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(matches!(
            sealer.open("c1", &sealed),
            Err(SealError::Open(_))
        ));
        assert!(matches!(
            sealer.open("c1", &[2, 0]),
            Err(SealError::Format(_))
        ));
    }

    #[test]
    fn keys_must_be_32_bytes_and_files_are_created_once() {
        assert!(SecretBox::from_base64("c2hvcnQ=").is_err());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        assert!(SecretBox::load_or_create(&path, false).is_err());
        let first = SecretBox::load_or_create(&path, true).expect("created");
        let again = SecretBox::load_or_create(&path, true).expect("read back");
        assert_eq!(
            again
                .open("c", &first.seal("c", &sample()))
                .expect("same key"),
            sample()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}

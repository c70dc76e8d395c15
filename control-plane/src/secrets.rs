//! Partner credentials at rest: sealed with AES-256-GCM, bound to their
//! connector (the connector id is the associated data, so a sealed blob
//! copied onto another row does not open), opened only to build the
//! configuration snapshot that data-plane nodes receive.
//!
//! A sealed blob is `[2][key id: 4 bytes][nonce: 12 bytes][ciphertext]`.
//! The key id (the first bytes of the key's SHA-256) names the key that
//! sealed it, so the key can be rotated: the new key becomes SECRETS_KEY,
//! the old one goes to SECRETS_PREVIOUS_KEYS (still opens, never seals),
//! `reseal-secrets` re-seals every blob with the new key, and the old one
//! can then be dropped. Blobs of the first format (`[1][nonce][ciphertext]`,
//! no key id) open with any configured key and are re-sealed the same way.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The first format: no key id.
const FORMAT_V1: u8 = 1;
/// The current format: a key id after the tag.
const FORMAT_V2: u8 = 2;
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;

/// One sealing key and its id.
#[derive(Clone)]
struct SealKey {
    id: [u8; KEY_ID_LEN],
    cipher: Aes256Gcm,
}

impl SealKey {
    fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| KeyError::Malformed)?;
        if bytes.len() != 32 {
            return Err(KeyError::Malformed);
        }
        let digest = Sha256::digest(&bytes);
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        Ok(Self {
            id,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }
}

/// Seals connector secrets with the current 256-bit key; opens them with
/// it or any previous key.
#[derive(Clone)]
pub struct SecretBox {
    current: SealKey,
    previous: Vec<SealKey>,
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
    /// Sealed with a key that is not configured.
    #[error(
        "sealed secrets of connector {connector} were sealed with key {key_id}, which is neither SECRETS_KEY nor in SECRETS_PREVIOUS_KEYS"
    )]
    UnknownKey {
        /// The connector.
        connector: String,
        /// The sealing key's id, hex.
        key_id: String,
    },
    /// The blob is not in a known format.
    #[error("sealed secrets of connector {0} have an unknown format")]
    Format(String),
}

impl SecretBox {
    /// A box from a base64-encoded 32-byte key.
    pub fn from_base64(encoded: &str) -> Result<Self, KeyError> {
        Ok(Self {
            current: SealKey::from_base64(encoded)?,
            previous: Vec::new(),
        })
    }

    /// The same box, also opening what `keys` (base64, comma-separated)
    /// sealed.
    pub fn with_previous(mut self, keys: &str) -> Result<Self, KeyError> {
        for key in keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            self.previous.push(SealKey::from_base64(key)?);
        }
        Ok(self)
    }

    /// The current key's id, hex (what logs and sealed blobs name it by).
    pub fn key_id(&self) -> String {
        hex::encode(self.current.id)
    }

    /// Whether `sealed` was sealed by another key than the current one (or
    /// in the first format), so `reseal-secrets` should re-seal it.
    pub fn needs_reseal(&self, sealed: &[u8]) -> bool {
        !(sealed.first() == Some(&FORMAT_V2)
            && sealed.get(1..=KEY_ID_LEN) == Some(&self.current.id[..]))
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

    /// Seals `secrets` for connector `connector_id` with the current key.
    pub fn seal(&self, connector_id: &str, secrets: &BTreeMap<String, String>) -> Vec<u8> {
        let plaintext = serde_json::to_vec(secrets).expect("a string map always serializes");
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let key = &self.current;
        let ciphertext = key
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &v2_aad(key.id, connector_id),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut sealed = Vec::with_capacity(1 + KEY_ID_LEN + NONCE_LEN + ciphertext.len());
        sealed.push(FORMAT_V2);
        sealed.extend_from_slice(&key.id);
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
        let format = || SealError::Format(connector_id.to_owned());
        let plaintext = match sealed.split_first() {
            Some((&FORMAT_V2, rest)) if rest.len() >= KEY_ID_LEN + NONCE_LEN => {
                let (id, rest) = rest.split_at(KEY_ID_LEN);
                let key =
                    self.keys()
                        .find(|k| k.id[..] == *id)
                        .ok_or_else(|| SealError::UnknownKey {
                            connector: connector_id.to_owned(),
                            key_id: hex::encode(id),
                        })?;
                let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
                key.cipher
                    .decrypt(
                        Nonce::from_slice(nonce),
                        Payload {
                            msg: ciphertext,
                            aad: &v2_aad(key.id, connector_id),
                        },
                    )
                    .map_err(|_| SealError::Open(connector_id.to_owned()))?
            }
            // The first format names no key: any configured one may open it.
            Some((&FORMAT_V1, rest)) if rest.len() >= NONCE_LEN => {
                let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
                self.keys()
                    .find_map(|key| {
                        key.cipher
                            .decrypt(
                                Nonce::from_slice(nonce),
                                Payload {
                                    msg: ciphertext,
                                    aad: connector_id.as_bytes(),
                                },
                            )
                            .ok()
                    })
                    .ok_or_else(|| SealError::Open(connector_id.to_owned()))?
            }
            _ => return Err(format()),
        };
        serde_json::from_slice(&plaintext).map_err(|_| format())
    }

    fn keys(&self) -> impl Iterator<Item = &SealKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

/// What a version-2 blob authenticates besides its ciphertext: its format
/// tag and key id (so neither can be swapped) and the connector id.
fn v2_aad(key_id: [u8; KEY_ID_LEN], connector_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + KEY_ID_LEN + connector_id.len());
    aad.push(FORMAT_V2);
    aad.extend_from_slice(&key_id);
    aad.extend_from_slice(connector_id.as_bytes());
    aad
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SecretBox(key id {}, {} previous, <keys redacted>)",
            self.key_id(),
            self.previous.len()
        )
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
        assert!(matches!(
            other.open("c1", &sealed),
            Err(SealError::UnknownKey { .. })
        ));
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

    /// A blob of the first format, as earlier versions sealed it.
    fn seal_v1(key: [u8; 32], connector_id: &str, secrets: &BTreeMap<String, String>) -> Vec<u8> {
        let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
        let nonce = Aes256Gcm::generate_nonce(OsRng);
        let plaintext = serde_json::to_vec(secrets).expect("json");
        let payload = Payload {
            msg: &plaintext,
            aad: connector_id.as_bytes(),
        };
        let mut sealed = vec![FORMAT_V1];
        sealed.extend_from_slice(&nonce);
        sealed.extend(cipher.encrypt(&nonce, payload).expect("sealed"));
        sealed
    }

    #[test]
    fn keys_rotate_old_blobs_open_and_are_marked_for_resealing() {
        let (old, new) = ([7u8; 32], [9u8; 32]);
        let before = SecretBox::from_base64(&STANDARD.encode(old)).expect("key");
        let sealed_old = before.seal("c1", &sample());
        let sealed_v1 = seal_v1(old, "c1", &sample());
        assert!(!before.needs_reseal(&sealed_old));
        assert!(before.needs_reseal(&sealed_v1));
        assert_eq!(before.open("c1", &sealed_v1).expect("v1 opens"), sample());

        let after = SecretBox::from_base64(&STANDARD.encode(new))
            .and_then(|b| b.with_previous(&STANDARD.encode(old)))
            .expect("keys");
        assert_ne!(after.key_id(), before.key_id());
        for sealed in [&sealed_old, &sealed_v1] {
            assert!(after.needs_reseal(sealed));
            assert_eq!(
                after.open("c1", sealed).expect("previous key opens"),
                sample()
            );
        }
        let resealed = after.seal("c1", &sample());
        assert!(!after.needs_reseal(&resealed));
        assert_eq!(
            resealed[1..5],
            hex::decode(after.key_id()).expect("hex")[..]
        );

        let new_only = SecretBox::from_base64(&STANDARD.encode(new)).expect("key");
        assert!(matches!(
            new_only.open("c1", &sealed_old),
            Err(SealError::UnknownKey { .. })
        ));
        assert_eq!(new_only.open("c1", &resealed).expect("opens"), sample());
        // The key id is authenticated: another id on the same bytes fails.
        let mut swapped = resealed.clone();
        swapped[1..5].copy_from_slice(&before.current.id);
        assert!(after.open("c1", &swapped).is_err());
        assert!(!format!("{after:?}").contains(&STANDARD.encode(new)));
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

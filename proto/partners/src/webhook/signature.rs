//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256>` of
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed by the secret's bytes
//! (the base64 after `whsec_`). The adapter signs with it; a receiver (the
//! one command's demo partner) verifies with it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The key of a `whsec_` secret; `None` when it is not one.
pub fn key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix("whsec_")?).ok()
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(mac)
}

/// The `webhook-signature` value for `body` sent as `id` at `timestamp`.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let mac = mac(&key(secret)?, id, &timestamp.to_string(), body)?;
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// Whether one `v1,` entry of the space-separated `signatures` signs
/// `body` sent as `id` at `timestamp` under `key` (compared in constant
/// time; other versions are ignored). The timestamp's freshness is the
/// receiver's to check.
pub fn verify(key: &[u8], id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    let Some(mac) = mac(key, id, timestamp, body) else {
        return false;
    };
    signatures
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|signature| STANDARD.decode(signature).ok())
        .any(|signature| mac.clone().verify_slice(&signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signs_like_the_standard_webhooks_reference() {
        assert_eq!(
            sign(SECRET, ID, 1_614_265_330, BODY).as_deref(),
            Some(SIGNED)
        );
        assert_eq!(sign("not-a-secret", "id", 1, b"{}"), None);
    }

    #[test]
    fn verifies_the_reference_and_nothing_else() {
        let key = key(SECRET).expect("a whsec_ secret");
        assert!(verify(
            &key,
            ID,
            "1614265330",
            BODY,
            &format!("v1a,abc {SIGNED}")
        ));
        assert!(!verify(&key, ID, "1614265331", BODY, SIGNED));
        assert!(!verify(&key, "msg_other", "1614265330", BODY, SIGNED));
        assert!(!verify(
            &key,
            ID,
            "1614265330",
            BODY,
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        ));
    }
}

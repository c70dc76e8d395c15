//! Opaque page tokens for ListConnectors: the last id of the previous page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const PREFIX: &str = "after:";

/// The token that continues a listing after `last_id`.
pub fn encode(last_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{last_id}"))
}

/// The id a token continues after; `None` when the token is not one of ours.
pub fn decode(token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix(PREFIX)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips_and_rejects_foreign_tokens() {
        let token = super::encode("0190-abc");
        assert_eq!(super::decode(&token).as_deref(), Some("0190-abc"));
        assert_eq!(super::decode("not a token"), None);
        use base64::Engine;
        let unprefixed = super::URL_SAFE_NO_PAD.encode("0190-abc");
        assert_eq!(super::decode(&unprefixed), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn any_id_round_trips_and_any_text_decodes_or_not(id in ".{0,100}", text in ".{0,200}") {
            proptest::prop_assert_eq!(super::decode(&super::encode(&id)), Some(id));
            let _ = super::decode(&text);
        }
    }
}

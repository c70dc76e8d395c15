//! Personal identifiers as each partner wants them hashed: normalized per
//! the partner's rules, then SHA-256, lowercase hex. A value that already is
//! a SHA-256 hex digest (the customer hashed it) is passed through.

use crate::catalog::Normalization;
use sha2::{Digest, Sha256};

/// The normalized value, or why there is none.
pub fn normalize(rule: Normalization, raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    let normalized = match rule {
        Normalization::None => trimmed.to_owned(),
        Normalization::Email | Normalization::Lowercase => trimmed.to_lowercase(),
        Normalization::GoogleEmail => google_email(&trimmed.to_lowercase()),
        Normalization::PhoneDigits => phone_digits(trimmed),
        Normalization::PhoneE164 => {
            let digits = phone_digits(trimmed);
            if digits.is_empty() {
                digits
            } else {
                format!("+{digits}")
            }
        }
        Normalization::Name => trimmed
            .to_lowercase()
            .chars()
            .filter(|c| !c.is_ascii_punctuation())
            .collect(),
        Normalization::Compact => trimmed
            .to_lowercase()
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_ascii_punctuation())
            .collect(),
        Normalization::Digits => trimmed.chars().filter(char::is_ascii_digit).collect(),
        Normalization::Gender => gender(&trimmed.to_lowercase())
            .ok_or("not a gender (m, f, n, male, female, non-binary)")?
            .to_owned(),
        Normalization::Country => {
            let code = trimmed.to_ascii_lowercase();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err("not a two-letter country code");
            }
            code
        }
    };
    if normalized.is_empty() {
        return Err(match rule {
            Normalization::PhoneDigits | Normalization::PhoneE164 => "not a phone number",
            Normalization::Digits => "no digits",
            _ => "empty",
        });
    }
    if matches!(rule, Normalization::Email | Normalization::GoogleEmail)
        && !normalized.contains('@')
    {
        return Err("not an email address");
    }
    Ok(normalized)
}

/// SHA-256 of the normalized value, lowercase hex; an existing digest is
/// kept (lowercased).
pub fn hash(rule: Normalization, raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    if trimmed.len() == 64 && trimmed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(trimmed.to_ascii_lowercase());
    }
    let normalized = normalize(rule, raw)?;
    Ok(hex::encode(Sha256::digest(normalized.as_bytes())))
}

/// Google's rule: dots before the domain are dropped for gmail.com and
/// googlemail.com addresses.
fn google_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain @ ("gmail.com" | "googlemail.com"))) => {
            format!("{}@{domain}", local.replace('.', ""))
        }
        _ => email.to_owned(),
    }
}

/// Digits only, without the leading zeros of an international prefix
/// (`00 44`) or a trunk prefix, nor a trunk zero written in parentheses
/// after the country code (`+44 (0)20`, which is not dialled from abroad).
fn phone_digits(raw: &str) -> String {
    let digits: String = raw
        .replace("(0)", "")
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    digits.trim_start_matches('0').to_owned()
}

/// `m`, `f` or `n` from a letter or a word.
fn gender(value: &str) -> Option<&'static str> {
    match value {
        "m" | "male" | "man" => Some("m"),
        "f" | "female" | "woman" => Some("f"),
        "n" | "non-binary" | "nonbinary" | "non binary" => Some("n"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_per_partner() {
        assert_eq!(
            normalize(Normalization::Email, " John_Smith@Gmail.com ").as_deref(),
            Ok("john_smith@gmail.com")
        );
        assert_eq!(
            normalize(Normalization::GoogleEmail, "John.Smith@Gmail.com").as_deref(),
            Ok("johnsmith@gmail.com")
        );
        assert_eq!(
            normalize(Normalization::GoogleEmail, "john.smith@example.com").as_deref(),
            Ok("john.smith@example.com")
        );
        assert_eq!(
            normalize(Normalization::Email, "nobody"),
            Err("not an email address")
        );
    }

    #[test]
    fn phones_per_partner() {
        // Meta's own example: (650)555-1212 with country code 1.
        assert_eq!(
            normalize(Normalization::PhoneDigits, "+1 (650) 555-1212").as_deref(),
            Ok("16505551212")
        );
        assert_eq!(
            normalize(Normalization::PhoneDigits, "0044 844 412 4653").as_deref(),
            Ok("448444124653")
        );
        assert_eq!(
            normalize(Normalization::PhoneE164, "+44 844 412 4653").as_deref(),
            Ok("+448444124653")
        );
        assert_eq!(
            normalize(Normalization::PhoneE164, "n/a"),
            Err("not a phone number")
        );
    }

    #[test]
    fn snapchat_phone_rules() {
        // Snap's example: +44 844 412 4653 -> 448444124653 (no `+`, no
        // leading 00, no trunk 0).
        for written in [
            "+44 844 412 4653",
            "0044 844 412 4653",
            "+44 (0)844 412 4653",
        ] {
            assert_eq!(
                normalize(Normalization::PhoneDigits, written).as_deref(),
                Ok("448444124653"),
                "{written}"
            );
        }
    }

    #[test]
    fn places_genders_and_countries() {
        assert_eq!(
            normalize(Normalization::Compact, " San Francisco ").as_deref(),
            Ok("sanfrancisco")
        );
        assert_eq!(
            normalize(Normalization::Compact, "N.Y.").as_deref(),
            Ok("ny")
        );
        assert_eq!(
            normalize(Normalization::Digits, "02134-1234").as_deref(),
            Ok("021341234")
        );
        assert_eq!(normalize(Normalization::Digits, "n/a"), Err("no digits"));
        assert_eq!(
            normalize(Normalization::Lowercase, " New York ").as_deref(),
            Ok("new york")
        );
        for (written, gender) in [("Female", "f"), ("M", "m"), ("non-binary", "n")] {
            assert_eq!(
                normalize(Normalization::Gender, written).as_deref(),
                Ok(gender)
            );
        }
        assert!(normalize(Normalization::Gender, "unknown").is_err());
        assert_eq!(
            normalize(Normalization::Country, " US ").as_deref(),
            Ok("us")
        );
        assert_eq!(
            normalize(Normalization::Country, "USA"),
            Err("not a two-letter country code")
        );
    }

    #[test]
    fn names_lose_punctuation() {
        assert_eq!(
            normalize(Normalization::Name, " O'Brien-Smith ").as_deref(),
            Ok("obriensmith")
        );
        assert_eq!(normalize(Normalization::Name, "Zoë").as_deref(), Ok("zoë"));
        // Snap's example: special characters stay, in UTF-8.
        assert_eq!(
            normalize(Normalization::Name, "Raphaël").as_deref(),
            Ok("raphaël")
        );
    }

    #[test]
    fn hashes_are_sha256_hex_and_digests_pass_through() {
        // sha256("john_smith@gmail.com"), as in Meta's documentation (62a14e44…0f62f).
        let hashed = hash(Normalization::Email, "John_Smith@gmail.com").expect("hash");
        assert!(
            hashed.starts_with("62a14e44") && hashed.ends_with("0f62f"),
            "{hashed}"
        );
        // sha256("16505551212"), Meta's phone example (e323ec62…3176).
        let phone = hash(Normalization::PhoneDigits, "+1 (650) 555-1212").expect("hash");
        assert!(
            phone.starts_with("e323ec62") && phone.ends_with("3176"),
            "{phone}"
        );
        let digest = "A".repeat(64);
        assert_eq!(
            hash(Normalization::Email, &digest).as_deref(),
            Ok("a".repeat(64).as_str())
        );
    }
}

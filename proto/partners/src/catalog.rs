//! The shape of a catalog entry: what a partner needs (settings, secrets),
//! which of its fields a mapping may fill, how personal identifiers are
//! normalized before hashing, how many events one request may carry, where
//! its API is, and the adapter that speaks its wire format.
//!
//! ListPartners serves the entries; the control plane validates connectors
//! against them; the data plane delivers by them. Each partner's own entry
//! is `<partner>/catalog.rs`, beside its adapter; facts come from the
//! partners' public documentation, and where none was found the choice is
//! noted there.

use eventconnectors_proto::v1::{DataType, Partner, PartnerField, SettingField, SettingType};

use crate::adapter::Adapter;

/// A partner platform.
#[derive(Debug)]
pub struct PartnerSpec {
    /// Id used in `Connector.partner`.
    pub id: &'static str,
    /// Name for people.
    pub display_name: &'static str,
    /// What is sent where.
    pub description: &'static str,
    /// Most events in one request (1: unbatched).
    pub max_batch_size: u32,
    /// Where its API is, overridable per deployment (`PARTNER_BASE_URLS`);
    /// `None` when each connector gives its own URL (webhooks).
    pub default_base_url: Option<&'static str>,
    /// Its wire format.
    pub adapter: &'static dyn Adapter,
    /// A connector with no mappings forwards the raw event unchanged.
    pub forwards_raw_event: bool,
    /// How TIMESTAMP values are written for this partner.
    pub timestamps: TimestampFormat,
    /// Settings and secrets.
    pub settings: &'static [SettingSpec],
    /// Fields a mapping may target.
    pub fields: &'static [FieldSpec],
}

/// One setting or secret.
#[derive(Debug)]
pub struct SettingSpec {
    /// Key; a trailing `.*` accepts any key under that prefix.
    pub name: &'static str,
    /// Validation applied to the value.
    pub kind: SettingType,
    /// Whether a connector must set it.
    pub required: bool,
    /// Whether it is a write-only credential.
    pub secret: bool,
    /// What it is.
    pub description: &'static str,
}

/// One partner field a mapping may fill.
#[derive(Debug)]
pub struct FieldSpec {
    /// Path in the partner's event; a trailing `.*` accepts any name under
    /// that prefix, and `*` any path at all.
    pub path: &'static str,
    /// Datatypes a mapping may use.
    pub types: &'static [DataType],
    /// What the partner expects.
    pub description: &'static str,
    /// Raw-event path used when no mapping targets the field.
    pub default_source: Option<&'static str>,
    /// Datatype used with `default_source`.
    pub default_type: DataType,
    /// Normalization applied before SHA-256 (personal identifiers).
    pub normalization: Normalization,
}

/// How a partner writes points in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampFormat {
    /// Integer unix seconds (Meta `event_time`, TikTok `event_time`).
    UnixSeconds,
    /// Integer unix microseconds (GA4 `timestamp_micros`).
    UnixMicros,
    /// RFC 3339 text in UTC (webhooks).
    Rfc3339,
}

/// How a personal identifier is normalized before hashing, per partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalization {
    /// Not a personal identifier: hashed as given (trimmed).
    None,
    /// Trim, lowercase (Meta `em`, TikTok `email`).
    Email,
    /// Trim, lowercase, and drop dots before `@gmail.com`/`@googlemail.com`
    /// (Google's rule for GA4 `user_data`).
    GoogleEmail,
    /// Digits only, no leading zeros, country code included, no `+`
    /// (Meta `ph`).
    PhoneDigits,
    /// E.164 with `+`: `+` then digits only (GA4, TikTok).
    PhoneE164,
    /// Trim, lowercase, punctuation removed (Meta `fn`/`ln`, GA4 names).
    Name,
    /// Trim, lowercase (TikTok `external_id`; Snapchat's city, region
    /// and postal code, as its own tag sends them).
    Lowercase,
    /// Trim, lowercase, whitespace and punctuation removed (Pinterest `ct`
    /// and `st`).
    Compact,
    /// Digits only, leading zeros kept (Pinterest `zp`).
    Digits,
    /// `m`, `f` or `n` (non-binary), from those letters or the words
    /// (Pinterest and Snapchat `ge`).
    Gender,
    /// An ISO 3166 two-letter code, lowercase (Pinterest and Snapchat
    /// `country`).
    Country,
}

impl PartnerSpec {
    /// The setting named `name`, exact or through a `prefix.*` entry; of
    /// two entries for one name (a header may be a setting or a secret),
    /// the one that is (`secret`) or is not a secret.
    pub fn setting(&self, name: &str, secret: bool) -> Option<&'static SettingSpec> {
        let mut matching = self
            .settings
            .iter()
            .filter(|spec| pattern_matches(spec.name, name));
        let first = matching.next()?;
        if first.secret == secret {
            return Some(first);
        }
        Some(matching.find(|spec| spec.secret == secret).unwrap_or(first))
    }

    /// The field at `path`, exact or through a `prefix.*` / `*` entry. An
    /// exact entry wins over a wildcard.
    pub fn field(&self, path: &str) -> Option<&'static FieldSpec> {
        self.fields
            .iter()
            .find(|spec| spec.path == path)
            .or_else(|| {
                self.fields
                    .iter()
                    .find(|spec| pattern_matches(spec.path, path))
            })
    }

    /// The catalog entry as ListPartners returns it.
    pub fn to_proto(&self) -> Partner {
        Partner {
            id: self.id.to_owned(),
            display_name: self.display_name.to_owned(),
            description: self.description.to_owned(),
            settings: self
                .settings
                .iter()
                .map(|spec| SettingField {
                    name: spec.name.to_owned(),
                    r#type: spec.kind as i32,
                    required: spec.required,
                    secret: spec.secret,
                    description: spec.description.to_owned(),
                })
                .collect(),
            fields: self
                .fields
                .iter()
                .map(|spec| PartnerField {
                    path: spec.path.to_owned(),
                    types: spec.types.iter().map(|t| *t as i32).collect(),
                    description: spec.description.to_owned(),
                    default_source: spec.default_source.unwrap_or_default().to_owned(),
                    default_type: spec.default_type as i32,
                })
                .collect(),
            max_batch_size: self.max_batch_size,
            forwards_raw_event: self.forwards_raw_event,
        }
    }
}

/// Whether a catalog name (`a.b`, `a.*` or `*`) accepts `name`.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return !name.is_empty();
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => name.len() > prefix.len() && name.starts_with(prefix),
        None => pattern == name,
    }
}

use DataType::{Boolean, Integer, Number, Sha256, String as Str, Timestamp};

/// Every datatype but SHA256.
pub const SCALAR: &[DataType] = &[Str, Integer, Number, Boolean, Timestamp];
/// Every datatype.
pub const ANY: &[DataType] = &[Str, Integer, Number, Boolean, Timestamp, Sha256];

/// A field with no default source, filled only by a mapping.
pub const fn field(
    path: &'static str,
    types: &'static [DataType],
    description: &'static str,
) -> FieldSpec {
    FieldSpec {
        path,
        types,
        description,
        default_source: None,
        default_type: DataType::Unspecified,
        normalization: Normalization::None,
    }
}

/// A field read from `source` in the raw event when no mapping targets it.
pub const fn defaulted(
    path: &'static str,
    types: &'static [DataType],
    description: &'static str,
    source: &'static str,
    default_type: DataType,
) -> FieldSpec {
    FieldSpec {
        default_source: Some(source),
        default_type,
        ..field(path, types, description)
    }
}

/// The client's IP address at `path`, read from the raw event's
/// `context.ip`, sent as is (every ad partner matches on it unhashed).
pub const fn client_ip(path: &'static str) -> FieldSpec {
    defaulted(path, &[Str], "Client IP (not hashed).", "context.ip", Str)
}

/// The client's user agent at `path`, read from `context.user_agent`, sent
/// as is.
pub const fn client_user_agent(path: &'static str) -> FieldSpec {
    defaulted(
        path,
        &[Str],
        "Client user agent (not hashed).",
        "context.user_agent",
        Str,
    )
}

/// A personal identifier: SHA-256 of the value normalized by `normalization`.
pub const fn hashed(
    path: &'static str,
    description: &'static str,
    source: Option<&'static str>,
    normalization: Normalization,
) -> FieldSpec {
    FieldSpec {
        default_source: source,
        default_type: Sha256,
        normalization,
        ..field(path, &[Sha256], description)
    }
}

/// A setting.
pub const fn setting(
    name: &'static str,
    kind: SettingType,
    required: bool,
    description: &'static str,
) -> SettingSpec {
    SettingSpec {
        name,
        kind,
        required,
        secret: false,
        description,
    }
}

/// A write-only credential.
pub const fn secret(
    name: &'static str,
    kind: SettingType,
    required: bool,
    description: &'static str,
) -> SettingSpec {
    SettingSpec {
        secret: true,
        ..setting(name, kind, required, description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PARTNERS, partner};

    #[test]
    fn ids_are_unique_and_sorted() {
        let ids: Vec<_> = PARTNERS.iter().map(|p| p.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn every_default_uses_a_type_the_field_accepts() {
        for partner in PARTNERS {
            assert!(partner.max_batch_size >= 1, "{}", partner.id);
            for field in partner.fields {
                if field.default_source.is_some() {
                    assert!(
                        field.types.contains(&field.default_type),
                        "{}.{}",
                        partner.id,
                        field.path
                    );
                }
                if field.normalization != Normalization::None {
                    assert_eq!(field.types, &[Sha256], "{}.{}", partner.id, field.path);
                }
            }
        }
    }

    #[test]
    fn wildcards_match_names_under_their_prefix_only() {
        let meta = partner("meta_capi").expect("meta");
        assert_eq!(
            meta.field("custom_data.value").map(|f| f.types),
            Some(&[Number][..])
        );
        assert_eq!(
            meta.field("custom_data.order_id").map(|f| f.path),
            Some("custom_data.*")
        );
        assert!(meta.field("custom_data.").is_none());
        assert!(meta.field("user_data.zz").is_none());
        let webhook = partner("webhook").expect("webhook");
        for secret in [false, true] {
            let header = webhook.setting("header.X-Team", secret).expect("a header");
            assert_eq!((header.name, header.secret), ("header.*", secret));
        }
        assert!(webhook.setting("header.", false).is_none());
        assert!(webhook.field("anything.at.all").is_some());
        assert!(partner("myspace").is_none());
    }
}

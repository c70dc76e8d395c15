//! The partner catalog: what each partner needs (settings, secrets), which of
//! its fields a mapping may fill, how personal identifiers are normalized
//! before hashing, and how many events one request may carry.
//!
//! ListPartners serves it; the control plane validates connectors against it;
//! the data plane delivers by it. Adding a partner is one entry in
//! [`PARTNERS`] (plus its adapter in the data plane). Facts come from the
//! partners' public documentation; where none was found the choice is noted.

use crate::v1::{DataType, Partner, PartnerField, SettingField, SettingType};

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
    /// Trim, lowercase (TikTok `external_id`).
    Lowercase,
}

impl PartnerSpec {
    /// The setting named `name`, exact or through a `prefix.*` entry.
    pub fn setting(&self, name: &str) -> Option<&'static SettingSpec> {
        self.settings
            .iter()
            .find(|spec| pattern_matches(spec.name, name))
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

/// The partner with this id.
pub fn partner(id: &str) -> Option<&'static PartnerSpec> {
    PARTNERS.iter().find(|p| p.id == id)
}

/// Every partner, sorted by id.
pub static PARTNERS: &[PartnerSpec] = &[GA4, META_CAPI, TIKTOK, WEBHOOK];

use DataType::{Boolean, Integer, Number, Sha256, String as Str, Timestamp};

const SCALAR: &[DataType] = &[Str, Integer, Number, Boolean, Timestamp];
const ANY: &[DataType] = &[Str, Integer, Number, Boolean, Timestamp, Sha256];

const fn field(
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

const fn defaulted(
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

const fn hashed(
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

const fn setting(
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

const fn secret(
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

/// Webhook: the raw event (or the mapped fields) as JSON, signed per
/// Standard Webhooks. One event per request, as the spec's payload is one
/// event.
const WEBHOOK: PartnerSpec = PartnerSpec {
    id: "webhook",
    display_name: "Webhook",
    description: "POSTs each event as JSON to your URL, signed with Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature).",
    max_batch_size: 1,
    forwards_raw_event: true,
    timestamps: TimestampFormat::Rfc3339,
    settings: &[
        setting(
            "url",
            SettingType::SettingUrl,
            true,
            "The http(s) URL each event is POSTed to.",
        ),
        setting(
            "header.*",
            SettingType::SettingString,
            false,
            "Extra request header: `header.X-Team` = `growth` sends `X-Team: growth`.",
        ),
        secret(
            "signing_secret",
            SettingType::SettingWebhookSecret,
            false,
            "Standard Webhooks secret (`whsec_` + base64 of 24-64 bytes). When set, every request is signed.",
        ),
        secret(
            "authorization",
            SettingType::SettingString,
            false,
            "Value of the Authorization header, e.g. `Bearer abc123`.",
        ),
    ],
    fields: &[field(
        "*",
        ANY,
        "Any JSON path in the body. With no mappings the raw event is sent unchanged.",
    )],
};

/// GA4 Measurement Protocol: at most 25 events per request, one client per
/// request; hashed `user_data` per Google's normalization.
const GA4: PartnerSpec = PartnerSpec {
    id: "ga4",
    display_name: "Google Analytics 4 (Measurement Protocol)",
    description: "Sends events to a GA4 web data stream through the Measurement Protocol (/mp/collect).",
    max_batch_size: 25,
    forwards_raw_event: false,
    timestamps: TimestampFormat::UnixMicros,
    settings: &[
        setting(
            "measurement_id",
            SettingType::SettingString,
            true,
            "The web data stream's Measurement ID, e.g. G-ABC123XYZ.",
        ),
        secret(
            "api_secret",
            SettingType::SettingString,
            true,
            "Measurement Protocol API secret of the data stream (Admin > Data Streams).",
        ),
    ],
    fields: &[
        defaulted(
            "client_id",
            &[Str],
            "Pseudonymous client identifier (required by GA4).",
            "user.anonymous_id",
            Str,
        ),
        defaulted(
            "user_id",
            &[Str],
            "Your identifier of the user.",
            "user.id",
            Str,
        ),
        defaulted(
            "timestamp_micros",
            &[Timestamp],
            "When the event happened (sent as unix microseconds; up to 72 h back).",
            "timestamp",
            Timestamp,
        ),
        defaulted(
            "name",
            &[Str],
            "Event name: at most 40 characters, letters, digits and _.",
            "type",
            Str,
        ),
        field(
            "params.*",
            SCALAR,
            "Event parameter (at most 25 per event, values at most 100 characters).",
        ),
        field("user_properties.*", SCALAR, "User property (at most 25)."),
        hashed(
            "user_data.sha256_email_address",
            "Email, normalized and SHA-256 hashed.",
            Some("user.email"),
            Normalization::GoogleEmail,
        ),
        hashed(
            "user_data.sha256_phone_number",
            "Phone in E.164, SHA-256 hashed.",
            Some("user.phone"),
            Normalization::PhoneE164,
        ),
        hashed(
            "user_data.address.sha256_first_name",
            "First name, normalized and SHA-256 hashed.",
            None,
            Normalization::Name,
        ),
        hashed(
            "user_data.address.sha256_last_name",
            "Last name, normalized and SHA-256 hashed.",
            None,
            Normalization::Name,
        ),
    ],
};

/// Meta Conversions API: up to 1,000 events in `data`.
const META_CAPI: PartnerSpec = PartnerSpec {
    id: "meta_capi",
    display_name: "Meta Conversions API",
    description: "Sends server events to a Meta pixel through the Conversions API (graph.facebook.com/{version}/{pixel}/events).",
    max_batch_size: 1000,
    forwards_raw_event: false,
    timestamps: TimestampFormat::UnixSeconds,
    settings: &[
        setting(
            "pixel_id",
            SettingType::SettingInteger,
            true,
            "The pixel (dataset) ID.",
        ),
        secret(
            "access_token",
            SettingType::SettingString,
            true,
            "Conversions API access token from Events Manager.",
        ),
        setting(
            "api_version",
            SettingType::SettingString,
            false,
            "Graph API version, e.g. v21.0 (default v21.0).",
        ),
        setting(
            "action_source",
            SettingType::SettingString,
            false,
            "Where conversions happened: website (default), app, email, physical_store, ...",
        ),
        setting(
            "test_event_code",
            SettingType::SettingString,
            false,
            "Sends events to Test Events in Events Manager instead of production.",
        ),
    ],
    fields: &[
        defaulted(
            "event_name",
            &[Str],
            "Standard or custom event name.",
            "type",
            Str,
        ),
        defaulted(
            "event_time",
            &[Timestamp],
            "When the event happened (unix seconds; at most 7 days back).",
            "timestamp",
            Timestamp,
        ),
        defaulted("event_id", &[Str], "Deduplication id.", "id", Str),
        defaulted(
            "event_source_url",
            &[Str],
            "Page URL of the event.",
            "context.page_url",
            Str,
        ),
        field(
            "action_source",
            &[Str],
            "Overrides the connector's action_source per event.",
        ),
        hashed(
            "user_data.em",
            "Email: trimmed, lowercased, SHA-256.",
            Some("user.email"),
            Normalization::Email,
        ),
        hashed(
            "user_data.ph",
            "Phone: digits with country code, SHA-256.",
            Some("user.phone"),
            Normalization::PhoneDigits,
        ),
        hashed(
            "user_data.fn",
            "First name: lowercased, no punctuation, SHA-256.",
            None,
            Normalization::Name,
        ),
        hashed(
            "user_data.ln",
            "Last name: lowercased, no punctuation, SHA-256.",
            None,
            Normalization::Name,
        ),
        hashed(
            "user_data.external_id",
            "Your user id, SHA-256.",
            Some("user.id"),
            Normalization::Lowercase,
        ),
        defaulted(
            "user_data.client_ip_address",
            &[Str],
            "Client IP (not hashed).",
            "context.ip",
            Str,
        ),
        defaulted(
            "user_data.client_user_agent",
            &[Str],
            "Client user agent (not hashed).",
            "context.user_agent",
            Str,
        ),
        field("user_data.fbc", &[Str], "Click id cookie (not hashed)."),
        field("user_data.fbp", &[Str], "Browser id cookie (not hashed)."),
        field("custom_data.value", &[Number], "Monetary value."),
        field("custom_data.currency", &[Str], "ISO 4217 currency code."),
        field("custom_data.*", SCALAR, "Any other custom_data parameter."),
    ],
};

/// TikTok Events API v1.3 `event/track`. TikTok publishes no batch limit for
/// this endpoint; 50 is what its older batch endpoint allowed.
const TIKTOK: PartnerSpec = PartnerSpec {
    id: "tiktok",
    display_name: "TikTok Events API",
    description: "Sends web events to a TikTok pixel through the Events API v1.3 (event/track).",
    max_batch_size: 50,
    forwards_raw_event: false,
    timestamps: TimestampFormat::UnixSeconds,
    settings: &[
        setting(
            "pixel_code",
            SettingType::SettingString,
            true,
            "The pixel code (event_source_id).",
        ),
        secret(
            "access_token",
            SettingType::SettingString,
            true,
            "Events API access token (sent as the Access-Token header).",
        ),
        setting(
            "test_event_code",
            SettingType::SettingString,
            false,
            "Routes events to the Test Events tool.",
        ),
    ],
    fields: &[
        defaulted(
            "event",
            &[Str],
            "Event name, e.g. CompletePayment.",
            "type",
            Str,
        ),
        defaulted(
            "event_time",
            &[Timestamp],
            "When the event happened (unix seconds).",
            "timestamp",
            Timestamp,
        ),
        defaulted("event_id", &[Str], "Deduplication id.", "id", Str),
        hashed(
            "user.email",
            "Email: lowercased, SHA-256.",
            Some("user.email"),
            Normalization::Email,
        ),
        hashed(
            "user.phone",
            "Phone in E.164 with +, SHA-256.",
            Some("user.phone"),
            Normalization::PhoneE164,
        ),
        hashed(
            "user.external_id",
            "Your user id: lowercased, SHA-256.",
            Some("user.id"),
            Normalization::Lowercase,
        ),
        defaulted(
            "user.ip",
            &[Str],
            "Client IP (not hashed).",
            "context.ip",
            Str,
        ),
        defaulted(
            "user.user_agent",
            &[Str],
            "Client user agent (not hashed).",
            "context.user_agent",
            Str,
        ),
        field("user.ttclid", &[Str], "TikTok click id."),
        field("user.ttp", &[Str], "TikTok cookie id."),
        field("user.locale", &[Str], "Locale, e.g. en-US."),
        field("properties.value", &[Number], "Monetary value."),
        field("properties.currency", &[Str], "ISO 4217 currency code."),
        field("properties.*", SCALAR, "Any other event property."),
        defaulted("page.url", &[Str], "Page URL.", "context.page_url", Str),
        field("page.referrer", &[Str], "Referrer URL."),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_sorted() {
        let ids: Vec<_> = PARTNERS.iter().map(|p| p.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted);
        assert_eq!(ids, ["ga4", "meta_capi", "tiktok", "webhook"]);
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
        assert_eq!(
            webhook.setting("header.X-Team").map(|s| s.name),
            Some("header.*")
        );
        assert!(webhook.setting("header.").is_none());
        assert!(webhook.field("anything.at.all").is_some());
        assert!(partner("snapchat").is_none());
    }
}

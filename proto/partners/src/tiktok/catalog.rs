//! The tiktok catalog entry: what a connector needs and which fields a
//! mapping may fill.

use DataType::{Number, String as Str, Timestamp};
use eventconnectors_proto::v1::{DataType, SettingType};

use super::adapter::TikTok;
use crate::catalog::{
    Normalization, PartnerSpec, SCALAR, TimestampFormat, client_ip, client_user_agent, defaulted,
    field, hashed, secret, setting,
};

/// TikTok Events API v1.3 `event/track`. TikTok publishes no batch limit for
/// this endpoint; 50 is what its older batch endpoint allowed.
pub static PARTNER: PartnerSpec = PartnerSpec {
    id: "tiktok",
    display_name: "TikTok Events API",
    description: "Sends web events to a TikTok pixel through the Events API v1.3 (event/track).",
    max_batch_size: 50,
    default_base_url: Some("https://business-api.tiktok.com"),
    adapter: &TikTok,
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
        client_ip("user.ip"),
        client_user_agent("user.user_agent"),
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

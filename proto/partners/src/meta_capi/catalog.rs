//! The meta_capi catalog entry: what a connector needs and which fields a
//! mapping may fill.

use DataType::{Number, String as Str, Timestamp};
use eventconnectors_proto::v1::{DataType, SettingType};

use super::adapter::MetaCapi;
use crate::catalog::{
    Normalization, PartnerSpec, SCALAR, TimestampFormat, client_ip, client_user_agent, defaulted,
    field, hashed, secret, setting,
};

/// Meta Conversions API: up to 1,000 events in `data`.
pub static PARTNER: PartnerSpec = PartnerSpec {
    id: "meta_capi",
    display_name: "Meta Conversions API",
    description: "Sends server events to a Meta pixel through the Conversions API (graph.facebook.com/{version}/{pixel}/events).",
    max_batch_size: 1000,
    default_base_url: Some("https://graph.facebook.com"),
    adapter: &MetaCapi,
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
        client_ip("user_data.client_ip_address"),
        client_user_agent("user_data.client_user_agent"),
        field("user_data.fbc", &[Str], "Click id cookie (not hashed)."),
        field("user_data.fbp", &[Str], "Browser id cookie (not hashed)."),
        field("custom_data.value", &[Number], "Monetary value."),
        field("custom_data.currency", &[Str], "ISO 4217 currency code."),
        field("custom_data.*", SCALAR, "Any other custom_data parameter."),
    ],
};

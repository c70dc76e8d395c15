//! The snapchat catalog entry: what a connector needs and which fields a
//! mapping may fill.

use DataType::{Number, String as Str, Timestamp};
use eventconnectors_proto::v1::{DataType, SettingType};

use super::adapter::Snapchat;
use crate::catalog::{
    Normalization, PartnerSpec, SCALAR, TimestampFormat, client_ip, client_user_agent, defaulted,
    field, hashed, secret, setting,
};

/// Snapchat Conversions API v3. Snap publishes no batch limit; RudderStack
/// sends up to 2,000 events per request in production. 1,000 keeps a
/// margin and costs nothing measurable (a request per 1,000 events).
pub static PARTNER: PartnerSpec = PartnerSpec {
    id: "snapchat",
    display_name: "Snapchat Conversions API",
    description: "Sends web events to a Snap pixel through the Conversions API v3 (tr.snapchat.com/v3/{pixel}/events).",
    max_batch_size: 1000,
    default_base_url: Some("https://tr.snapchat.com"),
    adapter: &Snapchat,
    forwards_raw_event: false,
    timestamps: TimestampFormat::UnixSeconds,
    settings: &[
        setting(
            "pixel_id",
            SettingType::SettingString,
            true,
            "The Snap pixel ID (or Snap app ID for app events).",
        ),
        secret(
            "access_token",
            SettingType::SettingString,
            true,
            "Conversions API token from Snap Ads Manager (Business Details).",
        ),
        setting(
            "action_source",
            SettingType::SettingString,
            false,
            "Where conversions happened: WEB (default), MOBILE_APP or OFFLINE.",
        ),
        setting(
            "test_event_code",
            SettingType::SettingString,
            false,
            "Sends events to Snap's test events instead of production.",
        ),
    ],
    fields: &[
        defaulted(
            "event_name",
            &[Str],
            "Standard event (PURCHASE, ADD_CART, PAGE_VIEW, SIGN_UP, ...) or CUSTOM_EVENT_1-5.",
            "type",
            Str,
        ),
        defaulted(
            "event_time",
            &[Timestamp],
            "When the event happened (unix seconds; at most 37 days back).",
            "timestamp",
            Timestamp,
        ),
        defaulted("event_id", &[Str], "Deduplication id.", "id", Str),
        defaulted(
            "event_source_url",
            &[Str],
            "Page URL of the event (required for WEB events).",
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
            "Phone: digits with country code, no + or leading zeros, SHA-256.",
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
            "user_data.ge",
            "Gender: m, f or n, SHA-256.",
            None,
            Normalization::Gender,
        ),
        hashed(
            "user_data.ct",
            "City: lowercased, SHA-256.",
            None,
            Normalization::Lowercase,
        ),
        hashed(
            "user_data.st",
            "State or region: lowercased, SHA-256.",
            None,
            Normalization::Lowercase,
        ),
        hashed(
            "user_data.zp",
            "Postal code: lowercased, SHA-256.",
            None,
            Normalization::Lowercase,
        ),
        hashed(
            "user_data.country",
            "Country: two-letter code, lowercased, SHA-256.",
            None,
            Normalization::Country,
        ),
        hashed(
            "user_data.external_id",
            "Your user id: lowercased, SHA-256.",
            Some("user.id"),
            Normalization::Lowercase,
        ),
        client_ip("user_data.client_ip_address"),
        client_user_agent("user_data.client_user_agent"),
        field(
            "user_data.sc_click_id",
            &[Str],
            "Snap click id (ScCid URL parameter; not hashed).",
        ),
        field(
            "user_data.sc_cookie1",
            &[Str],
            "Snap first-party cookie _scid (not hashed).",
        ),
        field(
            "custom_data.value",
            &[Number],
            "Monetary value (PURCHASE needs it).",
        ),
        field(
            "custom_data.currency",
            &[Str],
            "ISO 4217 currency code (PURCHASE needs it).",
        ),
        field(
            "custom_data.*",
            SCALAR,
            "Any other custom_data parameter (order_id, num_items, ...).",
        ),
    ],
};

//! The pinterest catalog entry: what a connector needs and which fields a
//! mapping may fill. Pinterest declares its events closed
//! (`additionalProperties: false`), so only its documented fields are
//! mappable.

use DataType::{Boolean, Integer, Number, String as Str, Timestamp};
use eventconnectors_proto::v1::{DataType, SettingType};

use super::adapter::Pinterest;
use crate::catalog::{
    Normalization, PartnerSpec, TimestampFormat, client_ip, client_user_agent, defaulted, field,
    hashed, secret, setting,
};

/// Pinterest Conversions API: 1 to 1,000 events per request.
pub static PARTNER: PartnerSpec = PartnerSpec {
    id: "pinterest",
    display_name: "Pinterest Conversions API",
    description: "Sends conversion events to a Pinterest ad account through the Conversions API (api.pinterest.com/v5/ad_accounts/{id}/events).",
    max_batch_size: 1000,
    default_base_url: Some("https://api.pinterest.com"),
    adapter: &Pinterest,
    forwards_raw_event: false,
    timestamps: TimestampFormat::UnixSeconds,
    settings: &[
        setting(
            "ad_account_id",
            SettingType::SettingInteger,
            true,
            "The advertiser (ad account) ID.",
        ),
        secret(
            "access_token",
            SettingType::SettingString,
            true,
            "Conversion access token from Ads Manager (sent as a Bearer token).",
        ),
        setting(
            "action_source",
            SettingType::SettingString,
            false,
            "Where conversions happened: web (default), app_android, app_ios or offline.",
        ),
        setting(
            "test_mode",
            SettingType::SettingBoolean,
            false,
            "`true` sends with ?test=true: validated and answered, not recorded.",
        ),
    ],
    fields: &[
        defaulted(
            "event_name",
            &[Str],
            "checkout, add_to_cart, page_visit, lead, signup, search, view_category, custom, ...",
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
        defaulted(
            "event_id",
            &[Str],
            "Deduplication id (required).",
            "id",
            Str,
        ),
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
        field(
            "opt_out",
            &[Boolean],
            "The user opted out of personalization.",
        ),
        hashed(
            "user_data.em",
            "Email: lowercased, SHA-256.",
            Some("user.email"),
            Normalization::Email,
        ),
        hashed(
            "user_data.ph",
            "Phone: digits only with country code, no leading zeros, SHA-256.",
            Some("user.phone"),
            Normalization::PhoneDigits,
        ),
        hashed(
            "user_data.fn",
            "First name: lowercased, SHA-256.",
            None,
            Normalization::Lowercase,
        ),
        hashed(
            "user_data.ln",
            "Last name: lowercased, SHA-256.",
            None,
            Normalization::Lowercase,
        ),
        hashed(
            "user_data.ge",
            "Gender: f, m or n, SHA-256.",
            None,
            Normalization::Gender,
        ),
        hashed(
            "user_data.ct",
            "City: lowercased, no spaces or punctuation, SHA-256.",
            None,
            Normalization::Compact,
        ),
        hashed(
            "user_data.st",
            "State: two-letter code, lowercased, SHA-256.",
            None,
            Normalization::Compact,
        ),
        hashed(
            "user_data.zp",
            "Postal code: digits only, SHA-256.",
            None,
            Normalization::Digits,
        ),
        hashed(
            "user_data.country",
            "Country: two-letter code, lowercased, SHA-256.",
            None,
            Normalization::Country,
        ),
        hashed(
            "user_data.external_id",
            "Your user id, SHA-256.",
            Some("user.id"),
            Normalization::None,
        ),
        client_ip("user_data.client_ip_address"),
        client_user_agent("user_data.client_user_agent"),
        field(
            "user_data.click_id",
            &[Str],
            "Pinterest click id (_epik cookie or epik URL parameter).",
        ),
        field(
            "custom_data.value",
            &[Number],
            "Monetary value (sent as a decimal string, as Pinterest wants it).",
        ),
        field("custom_data.currency", &[Str], "ISO 4217 currency code."),
        field("custom_data.order_id", &[Str], "Order id."),
        field("custom_data.num_items", &[Integer], "Number of items."),
        field("custom_data.search_string", &[Str], "Search query."),
        field("custom_data.content_name", &[Str], "Content name."),
        field("custom_data.content_category", &[Str], "Content category."),
        field("custom_data.content_brand", &[Str], "Content brand."),
    ],
};

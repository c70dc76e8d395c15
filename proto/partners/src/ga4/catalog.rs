//! The ga4 catalog entry: what a connector needs and which fields a
//! mapping may fill.

use DataType::{String as Str, Timestamp};
use eventconnectors_proto::v1::{DataType, SettingType};

use super::adapter::Ga4;
use crate::catalog::{
    Normalization, PartnerSpec, SCALAR, TimestampFormat, defaulted, field, hashed, secret, setting,
};

/// GA4 Measurement Protocol: at most 25 events per request, one client per
/// request; hashed `user_data` per Google's normalization.
pub static PARTNER: PartnerSpec = PartnerSpec {
    id: "ga4",
    display_name: "Google Analytics 4 (Measurement Protocol)",
    description: "Sends events to a GA4 web data stream through the Measurement Protocol (/mp/collect).",
    max_batch_size: 25,
    default_base_url: Some("https://www.google-analytics.com"),
    adapter: &Ga4,
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

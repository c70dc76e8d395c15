//! The webhook catalog entry: what a connector needs and which fields a
//! mapping may fill.

use eventconnectors_proto::v1::SettingType;

use super::adapter::Webhook;
use crate::catalog::{ANY, PartnerSpec, TimestampFormat, field, secret, setting};

/// Webhook: the raw event (or the mapped fields) as JSON, signed per
/// Standard Webhooks. One event per request, as the spec's payload is one
/// event.
pub static PARTNER: PartnerSpec = PartnerSpec {
    id: "webhook",
    display_name: "Webhook",
    description: "POSTs each event as JSON to your URL, signed with Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature).",
    max_batch_size: 1,
    default_base_url: None,
    adapter: &Webhook,
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
            SettingType::SettingHttpHeader,
            false,
            "Extra request header: `header.X-Team` = `growth` sends `X-Team: growth` (at most 20 headers in settings and secrets).",
        ),
        secret(
            "header.*",
            SettingType::SettingHttpHeader,
            false,
            "Extra request header whose value is a credential (`header.X-Api-Key`): sealed and write-only like every secret.",
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

//! Checks a connector against its partner's catalog entry. Every problem is
//! collected, each naming the offending field, so one round trip shows the
//! caller everything to fix. The control plane runs it on every write; a
//! data-plane node runs it on what it receives, so a node older than its
//! control plane reports what it cannot apply instead of guessing.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use eventconnectors_proto::v1::{
    ConditionOperator, DataType, EventFilter, FieldMapping, SettingType,
};
pub use server_kit::violations::Violations;

use crate::catalog::PartnerSpec;
use crate::datatype::coerce;

/// Longest connector name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest workspace id or request id, in characters.
pub const MAX_ID_CHARS: usize = 128;
/// Longest setting or secret value, in bytes.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most mappings per connector.
pub const MAX_MAPPINGS: usize = 200;
/// Most event types in a filter.
pub const MAX_EVENT_TYPES: usize = 200;
/// Most HTTP headers a connector adds, settings and secrets together.
pub const MAX_HEADERS: usize = 20;
/// Longest header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;
/// Headers a connector may not set: the request's host and framing,
/// hop-by-hop headers, and those the platform sets itself (the
/// `authorization` secret is the way to authenticate).
const RESERVED_HEADERS: [&str; 17] = [
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "content-encoding",
    "authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];
/// Longest dotted path (source, target, condition), in bytes.
pub const MAX_PATH_BYTES: usize = 256;

/// The user-editable part of a connector, as validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorDraft {
    /// Name (trimmed).
    pub name: String,
    /// Settings.
    pub settings: BTreeMap<String, String>,
    /// Secrets in clear.
    pub secrets: BTreeMap<String, String>,
    /// Mappings.
    pub mappings: Vec<FieldMapping>,
    /// Filter.
    pub filter: Option<EventFilter>,
}

/// Checks a workspace id; the field is named `field`.
pub fn check_workspace_id(violations: &mut Violations, field: &str, workspace_id: &str) {
    if workspace_id.is_empty() {
        violations.add(field, "required");
    } else if workspace_id.chars().count() > MAX_ID_CHARS
        || !workspace_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        violations.add(
            field,
            format!("must be 1 to {MAX_ID_CHARS} characters of letters, digits, '.', '_' or '-'"),
        );
    }
}

/// The catalog entry of `partner`, or a violation listing the known ones.
pub fn check_partner(
    violations: &mut Violations,
    field: &str,
    partner: &str,
) -> Option<&'static PartnerSpec> {
    if partner.is_empty() {
        violations.add(field, "required: one of the ids ListPartners returns");
        return None;
    }
    let spec = crate::partner(partner);
    if spec.is_none() {
        let known: Vec<_> = crate::PARTNERS.iter().map(|p| p.id).collect();
        violations.add(
            field,
            format!("unknown partner `{partner}`; known: {}", known.join(", ")),
        );
    }
    spec
}

/// Checks a connector being created: its workspace, its partner, and what
/// a user edits. `prefix` is the path of the connector in the request
/// (`connector`). The partner's entry, when the partner is known.
pub fn check_new(
    violations: &mut Violations,
    prefix: &str,
    workspace_id: &str,
    partner: &str,
    draft: &ConnectorDraft,
) -> Option<&'static PartnerSpec> {
    check_workspace_id(violations, &format!("{prefix}.workspace_id"), workspace_id);
    let partner = check_partner(violations, &format!("{prefix}.partner"), partner)?;
    check_draft(violations, prefix, partner, draft);
    Some(partner)
}

/// Checks everything a user can edit against the partner's catalog entry.
/// `prefix` is the path of the connector in the request (`connector`).
pub fn check_draft(
    violations: &mut Violations,
    prefix: &str,
    partner: &PartnerSpec,
    draft: &ConnectorDraft,
) {
    check_name(violations, &format!("{prefix}.name"), &draft.name);
    check_settings(violations, prefix, partner, &draft.settings, false);
    check_settings(violations, prefix, partner, &draft.secrets, true);
    let headers = [(&draft.settings, false), (&draft.secrets, true)]
        .into_iter()
        .flat_map(|(values, secret)| values.keys().map(move |name| (name, secret)))
        .filter(|(name, secret)| {
            partner
                .setting(name, *secret)
                .is_some_and(|spec| spec.kind == SettingType::SettingHttpHeader)
        })
        .count();
    if headers > MAX_HEADERS {
        violations.add(
            format!("{prefix}.settings"),
            format!("at most {MAX_HEADERS} headers (settings and secrets together), not {headers}"),
        );
    }
    check_mappings(
        violations,
        &format!("{prefix}.mappings"),
        partner,
        &draft.mappings,
    );
    if let Some(filter) = &draft.filter {
        check_filter(violations, &format!("{prefix}.filter"), filter);
    }
}

/// Refuses URL settings whose host is a literal address `policy` refuses
/// (loopback, private, link-local, ...). Names are checked when the node
/// resolves them.
pub fn check_destinations(
    violations: &mut Violations,
    prefix: &str,
    partner: &PartnerSpec,
    draft: &ConnectorDraft,
    policy: &crate::destination::DestinationPolicy,
) {
    for (name, value) in &draft.settings {
        let is_url = partner
            .setting(name, false)
            .is_some_and(|spec| spec.kind == SettingType::SettingUrl);
        let Some(url) = is_url.then(|| url::Url::parse(value).ok()).flatten() else {
            continue;
        };
        if let Some(Err(refusal)) = policy.check_url(&url) {
            violations.add(format!("{prefix}.settings.{name}"), refusal.to_string());
        }
    }
}

fn check_name(violations: &mut Violations, field: &str, name: &str) {
    if name.trim().is_empty() {
        violations.add(field, "required: a non-blank name");
    } else if name.chars().count() > MAX_NAME_CHARS {
        violations.add(field, format!("at most {MAX_NAME_CHARS} characters"));
    } else if name.chars().any(char::is_control) {
        violations.add(field, "must not contain control characters");
    }
}

/// Checks `values` (settings, or secrets when `secret`) against the catalog,
/// including that every required one is present.
fn check_settings(
    violations: &mut Violations,
    prefix: &str,
    partner: &PartnerSpec,
    values: &BTreeMap<String, String>,
    secret: bool,
) {
    let (map, other) = if secret {
        ("secrets", "settings")
    } else {
        ("settings", "secrets")
    };
    for (name, value) in values {
        let field = format!("{prefix}.{map}.{name}");
        let Some(spec) = partner.setting(name, secret) else {
            violations.add(
                field,
                format!("`{name}` is not a setting of partner {}", partner.id),
            );
            continue;
        };
        if spec.secret != secret {
            violations.add(field, format!("`{name}` belongs in connector.{other}"));
            continue;
        }
        if let Some(suffix) = spec.name.strip_suffix('*') {
            let key = &name[suffix.len()..];
            if !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            {
                violations.add(
                    &field,
                    "the name after the prefix may hold only letters, digits, '-' and '_'",
                );
            }
            if spec.kind == SettingType::SettingHttpHeader
                && RESERVED_HEADERS.contains(&key.to_ascii_lowercase().as_str())
            {
                violations.add(
                    &field,
                    format!("`{key}` is set by the platform or the connection, not by a connector"),
                );
            }
        }
        if let Err(reason) = check_setting_value(spec.kind, value) {
            violations.add(field, reason);
        }
    }
    for spec in partner
        .settings
        .iter()
        .filter(|s| s.required && s.secret == secret)
    {
        if !values.contains_key(spec.name) {
            violations.add(
                format!("{prefix}.{map}.{}", spec.name),
                format!("required by partner {}: {}", partner.id, spec.description),
            );
        }
    }
}

fn check_setting_value(kind: SettingType, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!("at most {MAX_VALUE_BYTES} bytes"));
    }
    match kind {
        SettingType::SettingString | SettingType::Unspecified => Ok(()),
        SettingType::SettingUrl => match url::Url::parse(value) {
            Ok(url) if !url.username().is_empty() || url.password().is_some() => Err(
                "must not carry credentials (user:password@): they would be stored and shown in the clear; use a secret instead".into(),
            ),
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
            _ => Err("must be an absolute http:// or https:// URL".into()),
        },
        SettingType::SettingHttpHeader => {
            if value.len() > MAX_HEADER_VALUE_BYTES {
                Err(format!("at most {MAX_HEADER_VALUE_BYTES} bytes"))
            } else if !value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
                Err("must be visible ASCII characters, spaces or tabs (no line breaks)".into())
            } else {
                Ok(())
            }
        }
        SettingType::SettingInteger => {
            if value.len() <= 19 && value.bytes().all(|b| b.is_ascii_digit()) {
                Ok(())
            } else {
                Err("must be a whole number in decimal digits".into())
            }
        }
        SettingType::SettingBoolean => match value {
            "true" | "false" => Ok(()),
            _ => Err("must be `true` or `false`".into()),
        },
        SettingType::SettingWebhookSecret => {
            let decoded = value
                .strip_prefix("whsec_")
                .and_then(|b64| STANDARD.decode(b64).ok());
            match decoded {
                Some(key) if (24..=64).contains(&key.len()) => Ok(()),
                _ => Err("must be `whsec_` followed by 24 to 64 bytes in base64".into()),
            }
        }
    }
}

fn check_mappings(
    violations: &mut Violations,
    prefix: &str,
    partner: &PartnerSpec,
    mappings: &[FieldMapping],
) {
    if mappings.len() > MAX_MAPPINGS {
        violations.add(prefix, format!("at most {MAX_MAPPINGS} mappings"));
        return;
    }
    let mut targets = BTreeSet::new();
    for (index, mapping) in mappings.iter().enumerate() {
        let at = format!("{prefix}[{index}]");
        check_mapping(violations, &at, partner, mapping);
        if !mapping.target.is_empty() && !targets.insert(mapping.target.as_str()) {
            violations.add(
                format!("{at}.target"),
                format!("`{}` is already mapped", mapping.target),
            );
        }
    }
}

fn check_mapping(
    violations: &mut Violations,
    at: &str,
    partner: &PartnerSpec,
    mapping: &FieldMapping,
) {
    let data_type = DataType::try_from(mapping.r#type).unwrap_or_default();
    if data_type == DataType::Unspecified {
        violations.add(
            format!("{at}.type"),
            "required: STRING, INTEGER, NUMBER, BOOLEAN, TIMESTAMP or SHA256",
        );
    }
    if mapping.target.is_empty() {
        violations.add(
            format!("{at}.target"),
            "required: a field from ListPartners",
        );
    } else if let Err(reason) = check_path(&mapping.target) {
        violations.add(format!("{at}.target"), reason);
    } else {
        match partner.field(&mapping.target) {
            None => violations.add(
                format!("{at}.target"),
                format!(
                    "`{}` is not a field of partner {} (see ListPartners)",
                    mapping.target, partner.id
                ),
            ),
            Some(spec)
                if data_type != DataType::Unspecified && !spec.types.contains(&data_type) =>
            {
                let allowed: Vec<_> = spec.types.iter().map(|t| t.as_str_name()).collect();
                violations.add(
                    format!("{at}.type"),
                    format!(
                        "{} cannot fill `{}`; allowed: {}",
                        data_type.as_str_name(),
                        mapping.target,
                        allowed.join(", ")
                    ),
                );
            }
            Some(_) => {}
        }
    }
    match (&mapping.constant, mapping.source.is_empty()) {
        (Some(_), false) => violations.add(
            format!("{at}.source"),
            "set either source or constant, not both",
        ),
        (None, true) => violations.add(format!("{at}.source"), "required unless constant is set"),
        (None, false) => {
            if let Err(reason) = check_path(&mapping.source) {
                violations.add(format!("{at}.source"), reason);
            }
        }
        (Some(_), true) => {}
    }
    if let Some(constant) = &mapping.constant {
        if let Err(reason) = check_literal(constant, data_type) {
            violations.add(format!("{at}.constant"), reason);
        }
        if mapping.default_value.is_some() {
            violations.add(format!("{at}.default_value"), "a constant needs no default");
        }
    }
    if let Some(default) = &mapping.default_value
        && let Err(reason) = check_literal(default, data_type)
    {
        violations.add(format!("{at}.default_value"), reason);
    }
}

/// A dotted path: non-empty segments without whitespace.
fn check_path(path: &str) -> Result<(), String> {
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("at most {MAX_PATH_BYTES} bytes"));
    }
    if path
        .split('.')
        .any(|segment| segment.is_empty() || segment.chars().any(char::is_whitespace))
    {
        return Err(format!(
            "`{path}` is not a dotted path like `properties.order.total`"
        ));
    }
    Ok(())
}

/// A JSON literal that takes the mapping's datatype, exactly as the data
/// plane will convert it (an unspecified datatype is reported on its own).
fn check_literal(literal: &str, data_type: DataType) -> Result<(), String> {
    let value: serde_json::Value = serde_json::from_str(literal)
        .map_err(|_| format!("`{literal}` is not JSON; write text in quotes, e.g. \"EUR\""))?;
    if data_type == DataType::Unspecified {
        return match value {
            serde_json::Value::String(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::Bool(_) => Ok(()),
            _ => Err("must be a JSON string, number or boolean".into()),
        };
    }
    coerce(data_type, &value)
        .map(drop)
        .map_err(|error| format!("`{literal}` cannot be {}: {error}", data_type.as_str_name()))
}

fn check_filter(violations: &mut Violations, prefix: &str, filter: &EventFilter) {
    if filter.event_types.len() > MAX_EVENT_TYPES {
        violations.add(
            format!("{prefix}.event_types"),
            format!("at most {MAX_EVENT_TYPES} types"),
        );
    }
    let mut seen = BTreeSet::new();
    for (index, event_type) in filter.event_types.iter().enumerate() {
        let field = format!("{prefix}.event_types[{index}]");
        if event_type.trim().is_empty() || event_type.chars().count() > MAX_ID_CHARS {
            violations.add(field, format!("must be 1 to {MAX_ID_CHARS} characters"));
        } else if !seen.insert(event_type) {
            violations.add(field, format!("`{event_type}` is listed twice"));
        }
    }
    if let Some(condition) = &filter.condition {
        if condition.path.is_empty() {
            violations.add(format!("{prefix}.condition.path"), "required");
        } else if let Err(reason) = check_path(&condition.path) {
            violations.add(format!("{prefix}.condition.path"), reason);
        }
        if ConditionOperator::try_from(condition.operator).unwrap_or_default()
            == ConditionOperator::Unspecified
        {
            violations.add(
                format!("{prefix}.condition.operator"),
                "required: EQUALS, NOT_EQUALS, EXISTS or NOT_EXISTS",
            );
        }
        if condition.value.len() > MAX_VALUE_BYTES {
            violations.add(
                format!("{prefix}.condition.value"),
                format!("at most {MAX_VALUE_BYTES} bytes"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(violations: &Violations) -> Vec<&str> {
        violations.iter().map(|v| v.field.as_str()).collect()
    }

    fn filter(event_types: &[&str], condition: Option<(&str, ConditionOperator)>) -> EventFilter {
        EventFilter {
            event_types: event_types.iter().map(|t| (*t).to_owned()).collect(),
            condition: condition.map(|(path, operator)| {
                eventconnectors_proto::v1::PropertyCondition {
                    path: path.into(),
                    operator: operator as i32,
                    value: String::new(),
                }
            }),
        }
    }

    fn meta_draft() -> ConnectorDraft {
        ConnectorDraft {
            name: "Meta".into(),
            settings: BTreeMap::from([("pixel_id".into(), "1234567890".into())]),
            secrets: BTreeMap::from([("access_token".into(), "EAAB".into())]),
            mappings: vec![],
            filter: None,
        }
    }

    #[test]
    fn a_valid_draft_passes() {
        let mut violations = Violations::default();
        let meta = crate::partner("meta_capi").expect("meta");
        check_draft(&mut violations, "connector", meta, &meta_draft());
        assert_eq!(fields(&violations), Vec::<&str>::new());
    }

    /// A connector being created, as `check_new` sees it.
    struct New {
        workspace_id: String,
        partner: String,
        draft: ConnectorDraft,
    }

    fn new_meta() -> New {
        New {
            workspace_id: "ws-1".into(),
            partner: "meta_capi".into(),
            draft: meta_draft(),
        }
    }

    fn violations_of(new: &New) -> Violations {
        let mut violations = Violations::default();
        check_new(
            &mut violations,
            "connector",
            &new.workspace_id,
            &new.partner,
            &new.draft,
        );
        violations
    }

    fn mapping(source: &str, target: &str, data_type: DataType) -> FieldMapping {
        FieldMapping {
            source: source.to_owned(),
            target: target.to_owned(),
            r#type: data_type as i32,
            ..Default::default()
        }
    }

    fn webhook(settings: &[(&str, &str)], secrets: &[(&str, &str)]) -> impl Fn(&mut New) {
        let owned = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let (settings, secrets) = (owned(settings), owned(secrets));
        move |c: &mut New| {
            c.partner = "webhook".into();
            c.draft.settings = settings.clone();
            c.draft.secrets = secrets.clone();
            c.draft.mappings.clear();
        }
    }

    #[test]
    fn every_invalid_field_is_named() {
        type Edit = Box<dyn Fn(&mut New)>;
        let with =
            |m: FieldMapping| -> Edit { Box::new(move |c| c.draft.mappings = vec![m.clone()]) };
        let constant = |target: &str, data_type, literal: &str| {
            let mut m = mapping("", target, data_type);
            m.constant = Some(literal.into());
            m
        };
        let defaulted = |source: &str, target: &str, data_type, literal: &str| {
            let mut m = mapping(source, target, data_type);
            m.default_value = Some(literal.into());
            m
        };
        let setting = |name: &'static str, value: String| -> Edit {
            Box::new(move |c| {
                c.draft.settings.insert(name.into(), value.clone());
            })
        };
        let cases: Vec<(&str, Edit)> = vec![
            (
                "connector.workspace_id",
                Box::new(|c| c.workspace_id.clear()),
            ),
            (
                "connector.workspace_id",
                Box::new(|c| c.workspace_id = "ws 1/..".into()),
            ),
            (
                "connector.workspace_id",
                Box::new(|c| c.workspace_id = "w".repeat(129)),
            ),
            (
                "connector.partner",
                Box::new(|c| c.partner = "myspace".into()),
            ),
            ("connector.partner", Box::new(|c| c.partner.clear())),
            ("connector.name", Box::new(|c| c.draft.name = "   ".into())),
            (
                "connector.name",
                Box::new(|c| c.draft.name = "n".repeat(201)),
            ),
            (
                "connector.name",
                Box::new(|c| c.draft.name = "bad\u{7}name".into()),
            ),
            (
                "connector.settings.pixel_id",
                Box::new(|c| c.draft.settings.clear()),
            ),
            (
                "connector.settings.pixel_id",
                setting("pixel_id", "12ab".into()),
            ),
            (
                "connector.settings.pixel_id",
                setting("pixel_id", "  ".into()),
            ),
            ("connector.settings.pixl_id", setting("pixl_id", "1".into())),
            (
                "connector.settings.access_token",
                setting("access_token", "x".into()),
            ),
            (
                "connector.secrets.pixel_id",
                Box::new(|c| {
                    c.draft.secrets.insert("pixel_id".into(), "1".into());
                }),
            ),
            (
                "connector.secrets.access_token",
                Box::new(|c| c.draft.secrets.clear()),
            ),
            (
                "connector.settings.api_version",
                setting("api_version", "x".repeat(5000)),
            ),
            (
                "connector.mappings[0].target",
                with(mapping(
                    "properties.a",
                    "custom_datum.value",
                    DataType::Number,
                )),
            ),
            (
                "connector.mappings[0].target",
                with(mapping("properties.a", "", DataType::Number)),
            ),
            (
                "connector.mappings[0].type",
                with(mapping(
                    "properties.a",
                    "custom_data.value",
                    DataType::Boolean,
                )),
            ),
            (
                "connector.mappings[0].type",
                with(mapping("user.email", "user_data.em", DataType::String)),
            ),
            (
                "connector.mappings[0].type",
                with(mapping(
                    "properties.a",
                    "custom_data.value",
                    DataType::Unspecified,
                )),
            ),
            (
                "connector.mappings[0].source",
                with(mapping("", "custom_data.value", DataType::Number)),
            ),
            (
                "connector.mappings[0].source",
                with(mapping(
                    "properties..a",
                    "custom_data.value",
                    DataType::Number,
                )),
            ),
            (
                "connector.mappings[0].source",
                with(FieldMapping {
                    constant: Some("1".into()),
                    ..mapping("properties.a", "custom_data.value", DataType::Number)
                }),
            ),
            (
                "connector.mappings[0].constant",
                with(constant("custom_data.currency", DataType::String, "EUR")),
            ),
            (
                "connector.mappings[0].constant",
                with(constant(
                    "custom_data.num_items",
                    DataType::Integer,
                    "\"many\"",
                )),
            ),
            (
                "connector.mappings[0].default_value",
                with(defaulted(
                    "properties.a",
                    "custom_data.value",
                    DataType::Number,
                    "{\"a\":1}",
                )),
            ),
            (
                "connector.mappings[0].default_value",
                with(defaulted(
                    "properties.at",
                    "event_time",
                    DataType::Timestamp,
                    "\"soon\"",
                )),
            ),
            (
                "connector.mappings[1].target",
                Box::new(move |c| {
                    c.draft.mappings = vec![
                        mapping("properties.a", "custom_data.value", DataType::Number),
                        mapping("properties.b", "custom_data.value", DataType::Number),
                    ];
                }),
            ),
            (
                "connector.filter.event_types[1]",
                Box::new(|c| c.draft.filter = Some(filter(&["Purchase", " "], None))),
            ),
            (
                "connector.filter.event_types[1]",
                Box::new(|c| c.draft.filter = Some(filter(&["Purchase", "Purchase"], None))),
            ),
            (
                "connector.filter.condition.operator",
                Box::new(|c| {
                    c.draft.filter = Some(filter(
                        &[],
                        Some(("properties.country", ConditionOperator::Unspecified)),
                    ));
                }),
            ),
            (
                "connector.filter.condition.path",
                Box::new(|c| {
                    c.draft.filter = Some(filter(&[], Some(("", ConditionOperator::Exists))))
                }),
            ),
            (
                "connector.settings.url",
                Box::new(webhook(&[("url", "ftp://example.com")], &[])),
            ),
            ("connector.settings.url", Box::new(webhook(&[], &[]))),
            (
                "connector.secrets.signing_secret",
                Box::new(webhook(
                    &[("url", "https://example.com/hook")],
                    &[("signing_secret", "whsec_dG9vc2hvcnQ=")],
                )),
            ),
            (
                "connector.settings.header.X Bad",
                Box::new(webhook(
                    &[("url", "https://example.com/hook"), ("header.X Bad", "v")],
                    &[],
                )),
            ),
        ];
        assert_eq!(fields(&violations_of(&new_meta())), Vec::<&str>::new());
        for (field, edit) in &cases {
            let mut new = new_meta();
            edit(&mut new);
            let violations = violations_of(&new);
            assert!(
                fields(&violations).contains(field),
                "expected a violation of {field}, got {:?}",
                fields(&violations)
            );
        }
    }

    #[test]
    fn several_problems_come_back_together() {
        let mut new = new_meta();
        new.workspace_id.clear();
        new.draft.name = " ".into();
        new.draft.settings.clear();
        new.draft.secrets.clear();
        assert_eq!(
            fields(&violations_of(&new)),
            [
                "connector.workspace_id",
                "connector.name",
                "connector.settings.pixel_id",
                "connector.secrets.access_token"
            ]
        );
    }

    #[test]
    fn a_webhook_with_every_optional_setting_passes() {
        let secret = format!("whsec_{}", STANDARD.encode([9u8; 32]));
        let mut new = new_meta();
        webhook(
            &[
                ("url", "https://example.com/hook"),
                ("header.X-Team", "growth"),
            ],
            &[("signing_secret", &secret), ("authorization", "Bearer abc")],
        )(&mut new);
        assert_eq!(fields(&violations_of(&new)), Vec::<&str>::new());
    }

    #[test]
    fn headers_are_bounded_and_never_the_platforms_own() {
        let hook = |settings: &[(&str, &str)], secrets: &[(&str, &str)]| {
            let mut new = new_meta();
            webhook(settings, secrets)(&mut new);
            fields(&violations_of(&new))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let url = ("url", "https://example.com/hook");
        assert!(
            hook(
                &[url, ("header.X-Team", "growth")],
                &[("header.X-Api-Key", "k")]
            )
            .is_empty()
        );
        for reserved in [
            "Host",
            "connection",
            "Transfer-Encoding",
            "Authorization",
            "webhook-signature",
            "Content-Length",
        ] {
            let name = format!("header.{reserved}");
            assert_eq!(
                hook(&[url, (&name, "x")], &[]),
                [format!("connector.settings.{name}")],
                "{reserved}"
            );
            assert_eq!(
                hook(&[url], &[(&name, "x")]),
                [format!("connector.secrets.{name}")],
                "{reserved}"
            );
        }
        assert_eq!(
            hook(&[url, ("header.X-Evil", "a\r\nX-Injected: 1")], &[]),
            ["connector.settings.header.X-Evil"]
        );
        let long = "v".repeat(MAX_HEADER_VALUE_BYTES + 1);
        assert_eq!(
            hook(&[url, ("header.X-Long", &long)], &[]),
            ["connector.settings.header.X-Long"]
        );
        let names: Vec<String> = (0..=MAX_HEADERS).map(|i| format!("header.X-{i}")).collect();
        let mut settings: Vec<(&str, &str)> =
            names[..15].iter().map(|n| (n.as_str(), "v")).collect();
        settings.push(url);
        let secrets: Vec<(&str, &str)> = names[15..].iter().map(|n| (n.as_str(), "v")).collect();
        assert_eq!(
            hook(&settings, &secrets),
            ["connector.settings"],
            "21 headers"
        );
        assert!(hook(&settings, &secrets[1..]).is_empty(), "20 headers");
    }

    #[test]
    fn urls_carry_no_credentials() {
        for url in [
            "https://user:pw@example.com/hook",
            "https://token@example.com/hook",
        ] {
            let error = check_setting_value(SettingType::SettingUrl, url).expect_err(url);
            assert!(error.contains("credentials"), "{error}");
        }
    }

    #[test]
    fn setting_values_are_typed() {
        assert!(check_setting_value(SettingType::SettingUrl, "https://example.com/hook").is_ok());
        assert!(check_setting_value(SettingType::SettingUrl, "ftp://example.com").is_err());
        assert!(check_setting_value(SettingType::SettingUrl, "/relative").is_err());
        assert!(check_setting_value(SettingType::SettingInteger, "12a").is_err());
        assert!(check_setting_value(SettingType::SettingBoolean, "yes").is_err());
        let secret = format!("whsec_{}", STANDARD.encode([1u8; 32]));
        assert!(check_setting_value(SettingType::SettingWebhookSecret, &secret).is_ok());
        let short = format!("whsec_{}", STANDARD.encode([1u8; 8]));
        assert!(check_setting_value(SettingType::SettingWebhookSecret, &short).is_err());
        assert!(check_setting_value(SettingType::SettingString, "  ").is_err());
    }

    #[test]
    fn literals_and_paths() {
        assert!(check_literal("\"EUR\"", DataType::String).is_ok());
        assert!(check_literal("12.5", DataType::Number).is_ok());
        assert!(check_literal("EUR", DataType::String).is_err());
        assert!(check_literal("{}", DataType::String).is_err());
        assert!(check_literal("\"abc\"", DataType::Integer).is_err());
        assert!(check_literal("\"2026-11-29T10:00:00Z\"", DataType::Timestamp).is_ok());
        assert!(check_literal("\"soon\"", DataType::Timestamp).is_err());
        assert!(check_path("properties.order.total").is_ok());
        assert!(check_path("properties..total").is_err());
        assert!(check_path("a b").is_err());
    }
}

//! Field names inside a bucket hash. Short names keep Redis memory per
//! connector-day small; group fields carry their key parts separated by
//! U+001F, which no category, code, field path or reason contains.

use eventconnectors_proto::v1::ErrorCategory;

/// Events the partner accepted.
pub const DELIVERED: &str = "d";
/// Events that failed (all categories).
pub const FAILED: &str = "f";
/// Events not sent: a mapped value could not take its datatype.
pub const TRANSFORMATION_ERRORS: &str = "t";
/// Events dropped: the connector was deactivated or deleted.
pub const DROPPED: &str = "x";

const SEP: char = '\u{1f}';

/// A group of the errors tabs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Connector errors: category and partner code.
    Connector {
        /// The category.
        category: ErrorCategory,
        /// HTTP status and partner code (may be empty).
        partner_code: String,
    },
    /// Transformation errors: target field and reason.
    Transformation {
        /// The partner field.
        target_field: String,
        /// Why.
        reason: String,
    },
}

fn push_clean(out: &mut String, part: &str) {
    out.extend(part.chars().map(|c| if c == SEP { ' ' } else { c }));
}

/// Writes the field of the connector-errors group (`category`, `code`) into
/// `out` (cleared first).
pub fn connector_group(out: &mut String, category: ErrorCategory, partner_code: &str) {
    out.clear();
    out.push('e');
    out.push(SEP);
    out.push_str(category.as_str_name());
    out.push(SEP);
    push_clean(out, partner_code);
}

/// Writes the field of the transformation-errors group (`target_field`,
/// `reason`) into `out` (cleared first).
pub fn transformation_group(out: &mut String, target_field: &str, reason: &str) {
    out.clear();
    out.push('t');
    out.push(SEP);
    push_clean(out, target_field);
    out.push(SEP);
    push_clean(out, reason);
}

impl Group {
    /// The hash field counting this group.
    pub fn field(&self) -> String {
        let mut field = String::new();
        match self {
            Self::Connector {
                category,
                partner_code,
            } => connector_group(&mut field, *category, partner_code),
            Self::Transformation {
                target_field,
                reason,
            } => transformation_group(&mut field, target_field, reason),
        }
        field
    }

    /// The group a hash field counts, if it is a group field.
    pub fn parse(field: &str) -> Option<Self> {
        let mut parts = field.split(SEP);
        let (kind, first, second) = (parts.next()?, parts.next()?, parts.next()?);
        match kind {
            "e" => Some(Self::Connector {
                category: ErrorCategory::from_str_name(first)?,
                partner_code: second.to_owned(),
            }),
            "t" => Some(Self::Transformation {
                target_field: first.to_owned(),
                reason: second.to_owned(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_fields_round_trip_and_never_clash_with_totals() {
        let groups = [
            Group::Connector {
                category: ErrorCategory::PartnerError,
                partner_code: "400/190".into(),
            },
            Group::Connector {
                category: ErrorCategory::Timeout,
                partner_code: String::new(),
            },
            Group::Transformation {
                target_field: "custom_data.value".into(),
                reason: "not a number".into(),
            },
        ];
        for group in groups {
            let field = group.field();
            assert!(![DELIVERED, FAILED, TRANSFORMATION_ERRORS, DROPPED].contains(&field.as_str()));
            assert_eq!(Group::parse(&field), Some(group));
        }
        assert_eq!(Group::parse(DELIVERED), None);
        assert_eq!(Group::parse(TRANSFORMATION_ERRORS), None);
    }
}

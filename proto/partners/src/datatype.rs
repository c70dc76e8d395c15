//! What each mapping `DataType` accepts and what it yields. The control
//! plane checks constants and defaults with it, and it is the conversion the
//! data plane's transformations are to use, so a value accepted in one place
//! is accepted in the other. A value that cannot take its datatype is a transformation error,
//! counted by target field and [`CoerceError::reason`].

use jiff::Timestamp;
use serde_json::Value;

use eventconnectors_proto::v1::DataType;

/// A value converted to its datatype.
#[derive(Debug, Clone, PartialEq)]
pub enum Coerced {
    /// STRING, and SHA256 before the partner's normalization and hashing.
    Text(String),
    /// INTEGER.
    Integer(i64),
    /// NUMBER (finite).
    Number(f64),
    /// BOOLEAN.
    Boolean(bool),
    /// TIMESTAMP; each partner writes it in its own format.
    Timestamp(Timestamp),
}

/// Why a value cannot take a datatype. The reason is short and stable: the
/// transformation-errors tab groups by it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoerceError {
    /// An object, an array or null where one value is needed.
    #[error("not a single value")]
    NotScalar,
    /// Not a whole number within 64 bits.
    #[error("not an integer")]
    NotInteger,
    /// Not a finite number.
    #[error("not a number")]
    NotNumber,
    /// Not true/false, "true"/"false" or 1/0.
    #[error("not a boolean")]
    NotBoolean,
    /// Not RFC 3339 text or unix seconds/milliseconds.
    #[error("not a timestamp")]
    NotTimestamp,
    /// The mapping has no datatype.
    #[error("no datatype")]
    Unspecified,
}

impl CoerceError {
    /// The reason, as grouped in statistics.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// Unix times above this are milliseconds (it is 5138 AD in seconds).
const MILLIS_ABOVE: i64 = 100_000_000_000;

/// Converts `value` to `data_type`.
pub fn coerce(data_type: DataType, value: &Value) -> Result<Coerced, CoerceError> {
    if matches!(value, Value::Null | Value::Array(_) | Value::Object(_)) {
        return Err(CoerceError::NotScalar);
    }
    match data_type {
        DataType::String | DataType::Sha256 => Ok(Coerced::Text(text(value))),
        DataType::Integer => integer(value)
            .map(Coerced::Integer)
            .ok_or(CoerceError::NotInteger),
        DataType::Number => number(value)
            .map(Coerced::Number)
            .ok_or(CoerceError::NotNumber),
        DataType::Boolean => boolean(value)
            .map(Coerced::Boolean)
            .ok_or(CoerceError::NotBoolean),
        DataType::Timestamp => timestamp(value)
            .map(Coerced::Timestamp)
            .ok_or(CoerceError::NotTimestamp),
        DataType::Unspecified => Err(CoerceError::Unspecified),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            let float = number.as_f64()?;
            (float.fract() == 0.0 && float.abs() < 9.0e18).then_some(float as i64)
        }),
        Value::String(text) => {
            let text = text.trim();
            text.parse::<i64>().ok().or_else(|| {
                let float: f64 = text.parse().ok()?;
                (float.is_finite() && float.fract() == 0.0 && float.abs() < 9.0e18)
                    .then_some(float as i64)
            })
        }
        _ => None,
    }
}

fn number(value: &Value) -> Option<f64> {
    let float = match value {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse().ok()?,
        _ => return None,
    };
    float.is_finite().then_some(float)
}

fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn timestamp(value: &Value) -> Option<Timestamp> {
    let unix = match value {
        Value::String(text) => {
            let text = text.trim();
            if let Ok(parsed) = text.parse::<Timestamp>() {
                return Some(parsed);
            }
            text.parse::<i64>().ok()?
        }
        Value::Number(number) => integer(value).or_else(|| number.as_f64().map(|f| f as i64))?,
        _ => return None,
    };
    if unix.unsigned_abs() > MILLIS_ABOVE.unsigned_abs() {
        Timestamp::from_millisecond(unix).ok()
    } else {
        Timestamp::from_second(unix).ok()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ok(data_type: DataType, value: Value) -> Coerced {
        coerce(data_type, &value).unwrap_or_else(|e| panic!("{value} as {data_type:?}: {e}"))
    }

    fn err(data_type: DataType, value: Value) -> String {
        coerce(data_type, &value)
            .expect_err(&format!("{value} as {data_type:?}"))
            .reason()
    }

    #[test]
    fn strings_take_any_single_value() {
        assert_eq!(ok(DataType::String, json!("a")), Coerced::Text("a".into()));
        assert_eq!(
            ok(DataType::String, json!(4.5)),
            Coerced::Text("4.5".into())
        );
        assert_eq!(
            ok(DataType::String, json!(true)),
            Coerced::Text("true".into())
        );
        assert_eq!(
            ok(DataType::Sha256, json!(" A@b.c ")),
            Coerced::Text(" A@b.c ".into())
        );
        for value in [json!(null), json!([1]), json!({"a": 1})] {
            assert_eq!(err(DataType::String, value), "not a single value");
        }
    }

    #[test]
    fn integers_are_whole() {
        assert_eq!(ok(DataType::Integer, json!(42)), Coerced::Integer(42));
        assert_eq!(ok(DataType::Integer, json!(42.0)), Coerced::Integer(42));
        assert_eq!(ok(DataType::Integer, json!(" -7 ")), Coerced::Integer(-7));
        assert_eq!(ok(DataType::Integer, json!("12.0")), Coerced::Integer(12));
        for value in [
            json!(4.2),
            json!("abc"),
            json!(true),
            json!("1e30"),
            json!(""),
        ] {
            assert_eq!(err(DataType::Integer, value), "not an integer");
        }
    }

    #[test]
    fn numbers_are_finite() {
        assert_eq!(ok(DataType::Number, json!(4.2)), Coerced::Number(4.2));
        assert_eq!(ok(DataType::Number, json!("19.99")), Coerced::Number(19.99));
        for value in [json!("abc"), json!("NaN"), json!("inf"), json!(false)] {
            assert_eq!(err(DataType::Number, value), "not a number");
        }
    }

    #[test]
    fn booleans_take_words_and_bits() {
        assert_eq!(ok(DataType::Boolean, json!(true)), Coerced::Boolean(true));
        assert_eq!(
            ok(DataType::Boolean, json!("FALSE")),
            Coerced::Boolean(false)
        );
        assert_eq!(ok(DataType::Boolean, json!(1)), Coerced::Boolean(true));
        assert_eq!(ok(DataType::Boolean, json!(0)), Coerced::Boolean(false));
        for value in [json!(2), json!("yes"), json!(0.5)] {
            assert_eq!(err(DataType::Boolean, value), "not a boolean");
        }
    }

    #[test]
    fn timestamps_take_rfc3339_seconds_and_milliseconds() {
        let expected = Timestamp::from_second(1_764_435_600).expect("ts");
        assert_eq!(
            ok(DataType::Timestamp, json!("2025-11-29T17:00:00Z")),
            Coerced::Timestamp(expected)
        );
        assert_eq!(
            ok(DataType::Timestamp, json!("2025-11-29T18:00:00+01:00")),
            Coerced::Timestamp(expected)
        );
        assert_eq!(
            ok(DataType::Timestamp, json!(1_764_435_600)),
            Coerced::Timestamp(expected)
        );
        assert_eq!(
            ok(DataType::Timestamp, json!(1_764_435_600_000_i64)),
            Coerced::Timestamp(expected)
        );
        assert_eq!(
            ok(DataType::Timestamp, json!("1764435600")),
            Coerced::Timestamp(expected)
        );
        for value in [
            json!("yesterday"),
            json!("2025-13-01T00:00:00Z"),
            json!(true),
        ] {
            assert_eq!(err(DataType::Timestamp, value), "not a timestamp");
        }
    }

    #[test]
    fn a_mapping_without_a_datatype_converts_nothing() {
        assert_eq!(err(DataType::Unspecified, json!("x")), "no datatype");
    }
}

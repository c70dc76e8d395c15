//! The message shapes the console's protobuf codec needs, read from the
//! contract's own descriptor set at start-up: field numbers and types never
//! drift from the `.proto` files because they are not written twice.
//!
//! The JSON served at `/console/schema.json`:
//! `{"messages": {"<full name>": [[name, number, type, flags, ref], ...]},
//!   "enums": {"<full name>": {"<VALUE>": number, ...}}}`, where `type` is
//! the protobuf scalar type (`string`, `bool`, `int32`, `int64`, `uint32`,
//! `uint64`, `bytes`; `unsupported` for the others) or `message`/`enum`,
//! `flags` is `r` for a repeated field, `m` for a map (a repeated entry
//! message with `key` and `value`), `o` for a proto3 `optional`, and `ref`
//! the full name of the message or enum type.

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};
use serde_json::{Map, Value, json};

/// The schema of every message and enum in the contract's descriptor set
/// (its imports included: Timestamp, FieldMask).
pub fn schema_json() -> String {
    let set = FileDescriptorSet::decode(eventconnectors_proto::FILE_DESCRIPTOR_SET)
        .expect("the embedded descriptor set decodes");
    let mut messages = Map::new();
    let mut enums = Map::new();
    for file in &set.file {
        let package = file.package();
        for message in &file.message_type {
            add_message(package, message, &mut messages, &mut enums);
        }
        for kind in &file.enum_type {
            enums.insert(format!("{package}.{}", kind.name()), enum_values(kind));
        }
    }
    json!({ "messages": messages, "enums": enums }).to_string()
}

fn enum_values(kind: &prost_types::EnumDescriptorProto) -> Value {
    Value::Object(
        kind.value
            .iter()
            .map(|value| (value.name().to_owned(), json!(value.number())))
            .collect(),
    )
}

fn add_message(
    scope: &str,
    message: &DescriptorProto,
    messages: &mut Map<String, Value>,
    enums: &mut Map<String, Value>,
) {
    let name = format!("{scope}.{}", message.name());
    for nested in &message.nested_type {
        add_message(&name, nested, messages, enums);
    }
    for kind in &message.enum_type {
        enums.insert(format!("{name}.{}", kind.name()), enum_values(kind));
    }
    let is_map = |type_name: &str| {
        message.nested_type.iter().any(|nested| {
            nested.options.as_ref().is_some_and(|o| o.map_entry())
                && type_name == format!(".{name}.{}", nested.name())
        })
    };
    let fields = message
        .field
        .iter()
        .map(|field| {
            let kind = match field.r#type() {
                Type::Message | Type::Group => "message",
                Type::Enum => "enum",
                Type::String => "string",
                Type::Bytes => "bytes",
                Type::Bool => "bool",
                Type::Int32 => "int32",
                Type::Int64 => "int64",
                Type::Uint32 => "uint32",
                Type::Uint64 => "uint64",
                // Zigzag, fixed-width and floating-point values: the
                // page's codec reads none of them, and the contract has
                // none (a test checks).
                Type::Sint32
                | Type::Sint64
                | Type::Sfixed32
                | Type::Sfixed64
                | Type::Fixed32
                | Type::Fixed64
                | Type::Double
                | Type::Float => "unsupported",
            };
            let flags = if is_map(field.type_name()) {
                "m"
            } else if field.label() == Label::Repeated {
                "r"
            } else if field.proto3_optional() {
                "o"
            } else {
                ""
            };
            json!([
                field.name(),
                field.number(),
                kind,
                flags,
                field.type_name().trim_start_matches('.'),
            ])
        })
        .collect();
    messages.insert(name, Value::Array(fields));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The field `name` of `message` in `schema`.
    fn field<'a>(schema: &'a Value, message: &str, name: &str) -> &'a Value {
        schema["messages"][message]
            .as_array()
            .unwrap_or_else(|| panic!("no message {message}"))
            .iter()
            .find(|field| field[0] == name)
            .unwrap_or_else(|| panic!("no field {message}.{name}"))
    }

    #[test]
    fn the_schema_has_the_contracts_messages_with_their_numbers() {
        let schema: Value = serde_json::from_str(&schema_json()).unwrap();
        let settings = field(&schema, "eventconnectors.v1.Connector", "settings");
        assert_eq!(settings[1], 6);
        assert_eq!(settings[3], "m");
        let entry = settings[4].as_str().unwrap();
        assert_eq!(
            schema["messages"][entry],
            json!([["key", 1, "string", "", ""], ["value", 2, "string", "", ""]])
        );
        let status = field(&schema, "eventconnectors.v1.Connector", "status");
        assert_eq!(status[2], "enum");
        assert_eq!(schema["enums"][status[4].as_str().unwrap()]["INACTIVE"], 2);
        let default_value = field(&schema, "eventconnectors.v1.FieldMapping", "default_value");
        assert_eq!(default_value[3], "o");
        let unsupported: Vec<String> = schema["messages"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(message, fields)| {
                fields
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|field| field[2] == "unsupported")
                    .map(move |field| format!("{message}.{}", field[0]))
            })
            .collect();
        assert!(
            unsupported.is_empty(),
            "fields the console cannot read: {unsupported:?}"
        );
        assert_eq!(
            schema["messages"]["google.protobuf.Timestamp"],
            json!([
                ["seconds", 1, "int64", "", ""],
                ["nanos", 2, "int32", "", ""]
            ])
        );
    }
}

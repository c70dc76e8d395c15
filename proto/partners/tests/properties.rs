//! Properties of every decision the partners crate makes on untrusted
//! input: datatypes, identifier normalization, each partner's reading of
//! whatever a server answers, and the destination check. Whatever the
//! input: a clear error or a correct result, never a panic.

use eventconnectors_proto::v1::DataType;
use partners::adapter::{PartnerResponse, Verdict};
use partners::catalog::Normalization;
use partners::datatype::{Coerced, coerce};
use partners::destination::{DestinationPolicy, refused_range};
use partners::normalize::hash;
use proptest::prelude::*;
use serde_json::Value;

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        "[0-9eE+.-]{1,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

const DATA_TYPES: [DataType; 6] = [
    DataType::String,
    DataType::Integer,
    DataType::Number,
    DataType::Boolean,
    DataType::Timestamp,
    DataType::Sha256,
];

const NORMALIZATIONS: [Normalization; 12] = [
    Normalization::None,
    Normalization::Email,
    Normalization::GoogleEmail,
    Normalization::PhoneDigits,
    Normalization::PhoneE164,
    Normalization::Name,
    Normalization::Lowercase,
    Normalization::Compact,
    Normalization::Digits,
    Normalization::Gender,
    Normalization::Country,
    Normalization::None,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn coercion_gives_a_value_of_its_type_or_an_error(value in json(), index in 0..6usize) {
        let data_type = DATA_TYPES[index];
        if let Ok(Coerced::Number(n)) = coerce(data_type, &value) {
            prop_assert!(n.is_finite());
        }
    }

    #[test]
    fn hashing_is_64_hex_or_an_error(raw in ".{0,200}", index in 0..12usize) {
        if let Ok(digest) = hash(NORMALIZATIONS[index], &raw) {
            prop_assert_eq!(digest.len(), 64);
            prop_assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn every_partner_reads_any_answer(
        status in 100u16..=599,
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..512),
            json().prop_map(|v| v.to_string().into_bytes()),
        ],
        sent in 1usize..2000,
    ) {
        let response = PartnerResponse { status, retry_after: None, body };
        for spec in partners::PARTNERS {
            match spec.adapter.classify(&response, sent) {
                Verdict::Delivered => {}
                Verdict::Partial { accepted, failure } => {
                    prop_assert!(accepted < sent, "{}: {accepted} of {sent}", spec.id);
                    prop_assert!(failure.message.chars().count() <= 1000);
                }
                Verdict::Failed(failure) => {
                    prop_assert!(failure.message.chars().count() <= 1000, "{}", spec.id);
                }
            }
        }
    }

    #[test]
    fn an_ipv4_address_is_judged_the_same_in_every_ipv6_form(raw in any::<u32>()) {
        let v4 = std::net::Ipv4Addr::from(raw);
        let mapped = std::net::IpAddr::V6(v4.to_ipv6_mapped());
        prop_assert_eq!(refused_range(v4.into()), refused_range(mapped));
        let policy = DestinationPolicy::strict();
        let at = |ip| std::net::SocketAddr::new(ip, 443);
        prop_assert_eq!(policy.check(at(v4.into())).is_ok(), policy.check(at(mapped)).is_ok());
    }

    #[test]
    fn an_allowlist_never_panics(list in ".{0,80}") {
        let _ = DestinationPolicy::with_allowlist(&list);
    }
}

//! Every registered partner, end to end and piece by piece: a partner is
//! usable only when it has its catalog entry and adapter (one registration
//! in the partners crate), a base URL (or connectors that carry their own),
//! a fake partner speaking its wire format, and a row in the README; and a
//! real event then reaches its fake through the whole platform and is
//! counted delivered.

use std::time::Duration;

use e2e_tests::partners::{FAKES, FakePartner, fake};
use e2e_tests::platform::{Platform, event};
use eventconnectors_proto::v1::Connector;

#[test]
fn every_registered_partner_has_every_piece() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    for partner in partners::PARTNERS {
        let id = partner.id;
        assert!(
            fake(id).is_some(),
            "{id} has no fake partner in tests/src/partners/"
        );
        assert!(
            partner.default_base_url.is_some()
                || partner
                    .setting("url", false)
                    .is_some_and(|url| url.required),
            "{id} has neither a default base URL nor a required url setting"
        );
        assert!(
            readme.contains(&format!("| `{id}` |")),
            "{id} has no row in the README's partner table"
        );
        assert!(partner.max_batch_size >= 1, "{id}");
        assert!(!partner.fields.is_empty(), "{id} has no mappable field");
    }
    assert_eq!(
        FAKES.len(),
        partners::PARTNERS.len(),
        "a fake without a partner"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_registered_partner_delivers_a_real_event() {
    e2e_tests::init_logs();
    let mut fakes = Vec::new();
    for partner in partners::PARTNERS {
        let api = fake(partner.id).expect("every partner has a fake");
        fakes.push(FakePartner::start(api).await);
    }
    let flags: Vec<String> = fakes
        .iter()
        .zip(partners::PARTNERS)
        .filter(|(_, partner)| partner.default_base_url.is_some())
        .map(|(fake, _)| fake.base_url_flag())
        .collect();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut platform = Platform::start(&flags).await;

    let mut connectors = Vec::new();
    for (fake, partner) in fakes.iter().zip(partners::PARTNERS) {
        let sample = e2e_tests::partners::fake(partner.id)
            .expect("a fake")
            .connector(&fake.url());
        let connector = platform
            .create(Connector {
                workspace_id: "every-partner".into(),
                name: format!("{} end to end", partner.display_name),
                partner: partner.id.into(),
                settings: sample.settings,
                secrets: sample.secrets,
                mappings: sample.mappings,
                ..Connector::default()
            })
            .await;
        connectors.push(connector);
    }
    platform
        .ingest_all(&[event(
            "evt-every-1",
            "every-partner",
            "order_completed",
            serde_json::json!({"total": 129.9, "currency": "EUR", "order_id": "O-1"}),
        )])
        .await;

    for ((fake, partner), connector) in fakes.iter().zip(partners::PARTNERS).zip(&connectors) {
        fake.wait_for_requests(1, Duration::from_secs(10)).await;
        let stats = platform
            .wait_for_outcomes(&connector.id, 1, Duration::from_secs(10))
            .await;
        let answered: Vec<u16> = fake.requests().iter().map(|r| r.reply_status).collect();
        assert_eq!(
            stats.totals.map(|t| t.delivered),
            Some(1),
            "{}: the fake answered {answered:?}; {:?}",
            partner.id,
            fake.requests().first().map(|r| &r.body)
        );
        assert!(
            answered.iter().all(|status| (200..300).contains(status)),
            "{}: {answered:?}",
            partner.id
        );
    }
}

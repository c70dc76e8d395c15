//! The demo's producer: a steady trickle of raw events into workspace
//! `demo` through IngestService, as any producer sends them. Shoppers view
//! pages, add to carts, buy and sign up; one order in ten has a total of
//! "N/A", which no number mapping can take (a transformation error).

use std::time::Duration;

use eventconnectors_proto::v1::IngestRequest;
use eventconnectors_proto::v1::ingest_service_client::IngestServiceClient;
use serde_json::json;
use server_kit::auth::bearer;
use tokio::sync::watch;
use tonic::transport::Channel;

use super::connectors::WORKSPACE;

/// The `n`th event of a run started at unix second `run`.
pub fn event(run: i64, n: u64) -> String {
    const TYPES: [&str; 5] = ["PageView", "AddToCart", "Purchase", "PageView", "Signup"];
    const CURRENCIES: [&str; 3] = ["EUR", "USD", "GBP"];
    let shopper = n % 97;
    let event_type = TYPES[(n % TYPES.len() as u64) as usize];
    let mut properties = json!({
        "order_id": format!("O-{run}-{n}"),
        "currency": CURRENCIES[(n % 3) as usize],
        "total": 10.0 + (n % 50) as f64 * 2.5,
    });
    if n % 10 == 7 {
        properties["total"] = json!("N/A");
    }
    if event_type == "PageView" {
        properties = json!({"path": format!("/products/{}", n % 13)});
    }
    json!({
        "id": format!("demo-{run}-{n}"),
        "workspace_id": WORKSPACE,
        "type": event_type,
        "timestamp": jiff::Timestamp::now().to_string(),
        "user": {
            "id": format!("U-{shopper}"),
            "anonymous_id": format!("anon-{shopper}"),
            "email": format!("shopper{shopper}@example.com"),
            "phone": format!("+1 650 555 {:04}", 1000 + shopper),
        },
        "context": {
            "ip": format!("203.0.113.{}", 1 + shopper % 200),
            "user_agent": "Mozilla/5.0 (demo)",
            "page_url": format!("https://shop.example/products/{}", n % 13),
        },
        "properties": properties,
    })
    .to_string()
}

/// Sends `per_second` events a second to the node on `channel` until
/// `stop` turns true. A refusal (the node not ready yet, shutting down,
/// full) is logged and the events are sent again on the next tick.
pub async fn run(
    channel: Channel,
    ingest_token: String,
    per_second: u32,
    mut stop: watch::Receiver<bool>,
) {
    let mut client = IngestServiceClient::new(channel);
    let run = jiff::Timestamp::now().as_second();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next = 0u64;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            _ = tick.tick() => {}
        }
        let request = IngestRequest {
            events: vec![event(run, next)],
            sequence: next,
        };
        let Ok(request) = bearer(request, &ingest_token) else {
            tracing::error!("the ingest token cannot be sent; the demo sends nothing");
            return;
        };
        match client.ingest(request).await {
            Ok(_) => next += 1,
            Err(status) => {
                tracing::debug!(%status, "demo event not taken yet; trying again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn events_are_well_formed_and_some_cannot_be_numbers() {
        let events: Vec<Value> = (0..100)
            .map(|n| serde_json::from_str(&event(1_764_435_600, n)).expect("JSON"))
            .collect();
        for event in &events {
            for field in ["id", "workspace_id", "type"] {
                assert!(event[field].as_str().is_some_and(|s| !s.is_empty()));
            }
        }
        let ids: std::collections::HashSet<_> = events.iter().map(|e| e["id"].clone()).collect();
        assert_eq!(ids.len(), 100, "ids are unique");
        let unconvertible = events
            .iter()
            .filter(|e| e["properties"]["total"] == "N/A" && e["type"] != "PageView")
            .count();
        assert!(unconvertible >= 5, "{unconvertible}");
        assert!(
            events
                .iter()
                .any(|e| e["type"] == "Purchase" && e["properties"]["total"] == "N/A"),
            "the Meta connector sees some too"
        );
    }
}

//! GA4 Measurement Protocol: `POST {base}/mp/collect?measurement_id=&api_secret=`
//! with one client per request (`client_id`, `user_id`, `user_data` and
//! `user_properties` are request-level) and up to 25 events, each with its
//! name, params and `timestamp_micros`. Production answers 2xx whatever the
//! payload, even with a wrong secret: only transport errors and non-2xx are
//! failures.

use eventconnectors_proto::v1::ConnectorConfig;
use serde_json::{Map, Value};

use super::http::{excerpt, query_value, status_failure};
use super::{Adapter, BaseUrls, PartnerRequest, PartnerResponse, Prepared, Verdict};

const MAX_EVENTS: usize = 25;
const REQUEST_LEVEL: [&str; 4] = ["client_id", "user_id", "user_data", "user_properties"];

/// The GA4 adapter.
#[derive(Debug)]
pub struct Ga4;

impl Adapter for Ga4 {
    fn requests(
        &self,
        connector: &ConnectorConfig,
        events: &[Prepared],
        base: &BaseUrls,
        _now: i64,
    ) -> Vec<PartnerRequest> {
        let url = format!(
            "{}/mp/collect?measurement_id={}&api_secret={}",
            base.ga4.trim_end_matches('/'),
            query_value(
                connector
                    .settings
                    .get("measurement_id")
                    .map_or("", String::as_str)
            ),
            query_value(
                connector
                    .secrets
                    .get("api_secret")
                    .map_or("", String::as_str)
            ),
        );
        // One client per request, in order of first appearance.
        let mut clients: Vec<(Value, Vec<usize>)> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let client = event.fields["client_id"].clone();
            match clients.iter_mut().find(|(c, _)| *c == client) {
                Some((_, indexes)) => indexes.push(index),
                None => clients.push((client, vec![index])),
            }
        }
        let mut requests = Vec::new();
        for (_, indexes) in clients {
            for chunk in indexes.chunks(MAX_EVENTS) {
                let mut body = Map::new();
                let first = &events[chunk[0]].fields;
                for key in REQUEST_LEVEL {
                    if let Some(value) = first.get(key) {
                        body.insert(key.to_owned(), value.clone());
                    }
                }
                let ga4_events: Vec<Value> = chunk
                    .iter()
                    .map(|&i| {
                        let fields = &events[i].fields;
                        let mut event = Map::new();
                        for key in ["name", "params", "timestamp_micros"] {
                            if let Some(value) = fields.get(key) {
                                event.insert(key.to_owned(), value.clone());
                            }
                        }
                        Value::Object(event)
                    })
                    .collect();
                body.insert("events".to_owned(), Value::Array(ga4_events));
                requests.push(PartnerRequest::json(
                    url.clone(),
                    Vec::new(),
                    &Value::Object(body),
                    chunk.to_vec(),
                ));
            }
        }
        requests
    }

    fn classify(&self, response: &PartnerResponse, _sent: usize) -> Verdict {
        if response.is_success() {
            Verdict::Delivered
        } else {
            Verdict::Failed(status_failure(
                response,
                response.status.to_string(),
                excerpt(&response.body),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_client_per_request_at_most_25_events() {
        let connector = ConnectorConfig {
            partner: "ga4".into(),
            settings: [("measurement_id".to_owned(), "G-ABC".to_owned())].into(),
            secrets: [("api_secret".to_owned(), "s3 cret".to_owned())].into(),
            ..Default::default()
        };
        let event = |client: &str, i: usize| Prepared {
            event_id: format!("e{i}"),
            fields: json!({"client_id": client, "user_id": "U1", "name": "purchase", "params": {"value": i}, "timestamp_micros": 1_000_000 * i as i64}),
        };
        let mut events: Vec<Prepared> = (0..30).map(|i| event("c1", i)).collect();
        events.insert(3, event("c2", 99));
        let requests = Ga4.requests(&connector, &events, &BaseUrls::default(), 0);
        assert_eq!(
            requests.iter().map(|r| r.events.len()).collect::<Vec<_>>(),
            [25, 5, 1]
        );
        assert_eq!(
            requests[0].url,
            "https://www.google-analytics.com/mp/collect?measurement_id=G-ABC&api_secret=s3+cret"
        );
        let body: Value = serde_json::from_slice(&requests[2].body).expect("json");
        assert_eq!(body["client_id"], "c2");
        assert_eq!(body["user_id"], "U1");
        assert_eq!(
            body["events"],
            json!([{"name": "purchase", "params": {"value": 99}, "timestamp_micros": 99_000_000}])
        );
        assert_eq!(requests[2].events, [3]);
    }

    #[test]
    fn any_2xx_is_delivered() {
        let response = |status| PartnerResponse {
            status,
            retry_after: None,
            body: Vec::new(),
        };
        assert_eq!(Ga4.classify(&response(204), 5), Verdict::Delivered);
        assert!(matches!(
            Ga4.classify(&response(500), 5),
            Verdict::Failed(_)
        ));
    }
}

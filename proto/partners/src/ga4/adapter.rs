//! GA4 Measurement Protocol: `POST {base}/mp/collect?measurement_id=&api_secret=`
//! with one client per request (`client_id`, `user_id`, `user_data` and
//! `user_properties` are request-level) and up to 25 events, each with its
//! name, params and `timestamp_micros`. Production answers 2xx whatever the
//! payload, even with a wrong secret: only transport errors and non-2xx are
//! failures.

use eventconnectors_proto::v1::ConnectorConfig;
use serde_json::{Map, Value};

use super::PARTNER;
use crate::adapter::{Adapter, PartnerRequest, PartnerResponse, Prepared, Verdict};
use crate::http::{
    answer_failure, body_for, json_array, json_string, query_value, secret, setting,
};

const REQUEST_LEVEL: [&str; 4] = ["client_id", "user_id", "user_data", "user_properties"];
const EVENT_LEVEL: [&str; 3] = ["name", "params", "timestamp_micros"];

/// The GA4 adapter.
#[derive(Debug)]
pub struct Ga4;

impl Adapter for Ga4 {
    /// Splits the fields into the request-level members (the group: events
    /// of one client share a request) and the event itself.
    fn prepare(&self, _connector: &ConnectorConfig, event_id: &str, fields: Value) -> Prepared {
        let Value::Object(mut fields) = fields else {
            return Prepared::new(event_id, &fields);
        };
        let mut group = String::new();
        for key in REQUEST_LEVEL {
            if let Some(value) = fields.remove(key) {
                if !group.is_empty() {
                    group.push(',');
                }
                group.push_str(&json_string(key));
                group.push(':');
                group.push_str(&serde_json::to_string(&value).expect("JSON values serialize"));
            }
        }
        let event: Map<String, Value> = fields
            .into_iter()
            .filter(|(key, _)| EVENT_LEVEL.contains(&key.as_str()))
            .collect();
        Prepared {
            group: group.into(),
            ..Prepared::new(event_id, &Value::Object(event))
        }
    }

    fn requests(
        &self,
        connector: &ConnectorConfig,
        events: &[Prepared],
        base_url: &str,
        _now: i64,
    ) -> Vec<PartnerRequest> {
        let url = format!(
            "{}/mp/collect?measurement_id={}&api_secret={}",
            base_url.trim_end_matches('/'),
            query_value(setting(connector, "measurement_id").unwrap_or_default()),
            query_value(secret(connector, "api_secret")),
        );
        // One client per request, in order of first appearance (a batch
        // holds at most 25 events, so a linear search is the fast one).
        let mut clients: Vec<(&str, Vec<usize>)> = Vec::new();
        for (index, event) in events.iter().enumerate() {
            match clients
                .iter_mut()
                .find(|(group, _)| *group == &*event.group)
            {
                Some((_, indexes)) => indexes.push(index),
                None => clients.push((&event.group, vec![index])),
            }
        }
        let mut requests = Vec::new();
        for (group, indexes) in clients {
            for chunk in indexes.chunks(PARTNER.max_batch_size as usize) {
                let mut body = body_for(events, chunk, group.len() + 16);
                body.push(b'{');
                body.extend_from_slice(group.as_bytes());
                if !group.is_empty() {
                    body.push(b',');
                }
                body.extend_from_slice(br#""events":"#);
                json_array(&mut body, events, chunk);
                body.push(b'}');
                requests.push(PartnerRequest {
                    url: url.clone(),
                    headers: Vec::new(),
                    body: body.into(),
                    events: chunk.to_vec(),
                });
            }
        }
        requests
    }

    fn classify(&self, response: &PartnerResponse, _sent: usize) -> Verdict {
        if response.is_success() {
            Verdict::Delivered
        } else {
            Verdict::Failed(answer_failure(response, response.status.to_string()))
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
        let event = |client: &str, i: usize| {
            let fields = json!({"client_id": client, "user_id": "U1", "name": "purchase", "params": {"value": i}, "timestamp_micros": 1_000_000 * i as i64});
            Ga4.prepare(&connector, &format!("e{i}"), fields)
        };
        let mut events: Vec<Prepared> = (0..30).map(|i| event("c1", i)).collect();
        events.insert(3, event("c2", 99));
        let requests = Ga4.requests(
            &connector,
            &events,
            PARTNER.default_base_url.expect("a default"),
            0,
        );
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

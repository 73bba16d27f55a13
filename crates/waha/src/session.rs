//! The WAHA session Wapim wants for a device: its configuration as WAHA's API takes it, and the
//! test of whether a session WAHA has already matches it (so a resync changes nothing that is
//! right: on WAHA, updating a running session's configuration restarts it).

use serde_json::{json, Value};

/// The events a device's session posts to Wapim's webhook ingest.
pub const SESSION_EVENTS: &[&str] = &["message", "message.ack", "session.status"];

/// A device's session configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    /// Where WAHA posts the session's events (Wapim's ingest, `WAPIM_WAHA__WEBHOOK_URL`).
    pub webhook_url: String,
    /// The key WAHA signs each event with (`X-Webhook-Hmac`).
    pub hmac_key: String,
    /// Who the session belongs to, as `metadata` (shown in WAHA's dashboard and in each event).
    pub metadata: Vec<(String, String)>,
    /// Events the device's integrator subscribed to beyond [`SESSION_EVENTS`] (e.g.
    /// `message.waiting`): WAHA posts them too, and the ingest forwards them.
    pub extra_events: Vec<String>,
}

impl SessionSpec {
    /// `config` as WAHA's `POST /api/sessions` and `PUT /api/sessions/{name}` take it: the
    /// webhook (events, HMAC, WAHA's own retries: 15 attempts, exponential from 2 s), the
    /// metadata, and the NOWEB store (message lookup after a crash depends on it; it must be on
    /// before the QR scan; other engines ignore it).
    pub fn config(&self) -> Value {
        let metadata: serde_json::Map<String, Value> = self
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let mut events: Vec<String> = SESSION_EVENTS.iter().map(|e| (*e).to_owned()).collect();
        for extra in &self.extra_events {
            if !events.contains(extra) {
                events.push(extra.clone());
            }
        }
        json!({
            "metadata": metadata,
            "webhooks": [{
                "url": self.webhook_url,
                "events": events,
                "hmac": {"key": self.hmac_key},
                "retries": {"policy": "exponential", "delaySeconds": 2, "attempts": 15},
            }],
            "noweb": {"markOnline": true, "store": {"enabled": true, "fullSync": false}},
        })
    }
}

/// Whether `actual` (a session's `config` as WAHA shows it) already says everything `desired`
/// says: every key of an object, every element of an array (in order, same length), every
/// value equal. Keys WAHA adds on its own (defaults it fills in) do not matter.
pub fn config_matches(actual: &Value, desired: &Value) -> bool {
    match (actual, desired) {
        (Value::Object(a), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| a.get(k).is_some_and(|av| config_matches(av, dv))),
        (Value::Array(a), Value::Array(d)) => {
            a.len() == d.len() && a.iter().zip(d).all(|(av, dv)| config_matches(av, dv))
        }
        (a, d) => a == d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SessionSpec {
        SessionSpec {
            webhook_url: "http://127.0.0.1:8000/api/v1/waha-webhook".into(),
            hmac_key: "k".into(),
            metadata: vec![("wapim.device_id".into(), "7".into())],
            extra_events: Vec::new(),
        }
    }

    #[test]
    fn the_integrators_extra_events_are_subscribed_once_after_wapims_own() {
        let spec = SessionSpec {
            extra_events: vec!["message.waiting".into(), "message".into()],
            ..spec()
        };
        assert_eq!(
            spec.config()["webhooks"][0]["events"],
            json!([
                "message",
                "message.ack",
                "session.status",
                "message.waiting"
            ])
        );
    }

    #[test]
    fn a_session_with_waha_defaults_added_still_matches() {
        let desired = spec().config();
        let mut actual = desired.clone();
        actual["proxy"] = Value::Null;
        actual["webhooks"][0]["customHeaders"] = Value::Null;
        assert!(config_matches(&actual, &desired));
    }

    #[test]
    fn another_url_key_or_a_missing_store_does_not_match() {
        let desired = spec().config();
        let mut moved = desired.clone();
        moved["webhooks"][0]["url"] = json!("http://127.0.0.1:9/hook");
        assert!(!config_matches(&moved, &desired));
        let mut rekeyed = desired.clone();
        rekeyed["webhooks"][0]["hmac"]["key"] = json!("other");
        assert!(!config_matches(&rekeyed, &desired));
        let mut no_store = desired.clone();
        no_store["noweb"] = Value::Null;
        assert!(!config_matches(&no_store, &desired));
        assert!(!config_matches(&Value::Null, &desired));
    }
}

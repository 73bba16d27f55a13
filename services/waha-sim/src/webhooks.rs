//! Webhooks as WAHA posts them: the envelope, the headers, HMAC-SHA512 over the raw body, and
//! retries on any non-2xx. The simulator only ever posts to loopback addresses.

use std::sync::Weak;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{json, Value};
use sha2::Sha512;
use tokio::sync::mpsc;

use crate::model::{millis, WebhookDelivery};
use crate::sim::Sim;

/// Lowercase hex HMAC-SHA512 of `body` under `key`: WAHA's `X-Webhook-Hmac`. Public so tests
/// (and receivers under test) can check signatures against the simulator's.
pub fn sign_webhook_body(key: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error branch cannot happen.
    match Hmac::<Sha512>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Crockford base32, lowercase, as WAHA's `evt_<ulid>` ids.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A lowercase ULID: 48 bits of milliseconds, 80 random bits.
pub(crate) fn ulid(rng: &mut impl Rng) -> String {
    let ms = u128::from(millis(SystemTime::now())) & ((1 << 48) - 1);
    let random: u128 = rng.random::<u128>() & ((1 << 80) - 1);
    let value = (ms << 80) | random;
    (0..26)
        .rev()
        .map(|i| char::from(CROCKFORD[((value >> (i * 5)) & 31) as usize]))
        .collect()
}

/// Whether the simulator may post to `url`: http(s) to 127.0.0.0/8, ::1 or `localhost`.
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return false;
    }
    match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// One event to post to one webhook, with its retry policy.
pub(crate) struct Job {
    pub url: String,
    pub event: String,
    pub event_id: String,
    pub body: String,
    pub hmac: Option<String>,
    pub custom_headers: Vec<(String, String)>,
    pub attempts: u32,
    pub delay: Duration,
}

impl Job {
    /// The jobs for `envelope` on every webhook of `config` that subscribes to its event.
    pub(crate) fn for_config(
        config: &Value,
        envelope: &Value,
        default_attempts: u32,
        default_delay: Duration,
    ) -> Vec<Job> {
        let event = envelope
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let event_id = envelope
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // Serialised once: the HMAC signs exactly these bytes.
        let body = envelope.to_string();
        let Some(webhooks) = config.get("webhooks").and_then(Value::as_array) else {
            return vec![];
        };
        webhooks
            .iter()
            .filter(|hook| subscribes(hook, event))
            .filter_map(|hook| {
                let url = hook.get("url").and_then(Value::as_str)?;
                if !is_loopback_url(url) {
                    tracing::warn!(url, "waha-sim posts webhooks only to loopback addresses");
                    return None;
                }
                let hmac = hook
                    .pointer("/hmac/key")
                    .and_then(Value::as_str)
                    .filter(|k| !k.is_empty())
                    .map(|key| sign_webhook_body(key, body.as_bytes()));
                let custom_headers = hook
                    .get("customHeaders")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|h| {
                        Some((
                            h.get("name")?.as_str()?.to_owned(),
                            h.get("value")?.as_str()?.to_owned(),
                        ))
                    })
                    .collect();
                let attempts = hook
                    .pointer("/retries/attempts")
                    .and_then(Value::as_f64)
                    .map_or(default_attempts, |a| a.clamp(1.0, 100.0) as u32);
                let delay = hook
                    .pointer("/retries/delaySeconds")
                    .and_then(Value::as_f64)
                    .map_or(default_delay, |s| {
                        Duration::from_secs_f64(s.clamp(0.0, 60.0))
                    });
                Some(Job {
                    url: url.to_owned(),
                    event: event.to_owned(),
                    event_id: event_id.to_owned(),
                    body: body.clone(),
                    hmac,
                    custom_headers,
                    attempts,
                    delay,
                })
            })
            .collect()
    }
}

fn subscribes(hook: &Value, event: &str) -> bool {
    hook.get("events")
        .and_then(Value::as_array)
        .is_some_and(|events| {
            events
                .iter()
                .filter_map(Value::as_str)
                .any(|e| e == event || e == "*")
        })
}

/// Posts jobs one after the other, in the order they were queued (so a session's status
/// changes and a message's acks arrive in order), retrying each on any non-2xx or network
/// error. Holds the simulator weakly: it ends when the simulator is gone.
pub(crate) async fn deliver(
    mut jobs: mpsc::UnboundedReceiver<Job>,
    sim: Weak<Sim>,
    http: reqwest::Client,
) {
    while let Some(job) = jobs.recv().await {
        for attempt in 1..=job.attempts {
            let mut request = http
                .post(&job.url)
                .header("content-type", "application/json")
                .header(
                    "X-Webhook-Request-Id",
                    format!("req_{}", ulid(&mut rand::rng())),
                )
                .header("X-Webhook-Timestamp", millis(SystemTime::now()).to_string());
            if let Some(hmac) = &job.hmac {
                request = request
                    .header("X-Webhook-Hmac", hmac)
                    .header("X-Webhook-Hmac-Algorithm", "sha512");
            }
            for (name, value) in &job.custom_headers {
                request = request.header(name.as_str(), value.as_str());
            }
            let at = SystemTime::now();
            let result = request.body(job.body.clone()).send().await;
            let (status, error) = match &result {
                Ok(response) => (Some(response.status().as_u16()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            let Some(sim) = sim.upgrade() else { return };
            sim.record_delivery(WebhookDelivery {
                url: job.url.clone(),
                event: job.event.clone(),
                event_id: job.event_id.clone(),
                body: job.body.clone(),
                hmac: job.hmac.clone(),
                attempt,
                status,
                error,
                at,
            });
            drop(sim);
            if status.is_some_and(|s| (200..300).contains(&s)) {
                break;
            }
            if attempt < job.attempts {
                tokio::time::sleep(job.delay).await;
            }
        }
    }
}

/// WAHA's `environment` block; the simulator says what it is.
pub(crate) fn environment(engine: &str) -> Value {
    json!({
        "version": "2026.7.1",
        "engine": engine,
        "tier": "CORE",
        "browser": null,
        "platform": "waha-sim (simulator)",
        "worker": {"id": null},
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn hmac_matches_the_readmes_test_vector() {
        let body = br#"{"event":"message","session":"default","engine":"WEBJS"}"#;
        assert_eq!(
            sign_webhook_body("my-secret-key", body),
            "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
        );
    }

    #[test]
    fn only_loopback_urls_are_allowed() {
        for ok in [
            "http://127.0.0.1:9/h",
            "http://localhost/x",
            "https://[::1]:8443/",
            "http://127.8.0.1/",
        ] {
            assert!(is_loopback_url(ok), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/h",
            "https://example.com/h",
            "http://0.0.0.0/",
            "ftp://127.0.0.1/",
            "nonsense",
        ] {
            assert!(!is_loopback_url(bad), "{bad}");
        }
    }

    #[test]
    fn ulids_are_26_lowercase_crockford_chars() {
        let id = ulid(&mut rand::rng());
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|b| CROCKFORD.contains(&b)), "{id}");
    }

    #[test]
    fn jobs_go_to_subscribed_loopback_webhooks_only() {
        let config = json!({"webhooks": [
            {"url": "http://127.0.0.1:1/a", "events": ["message.ack"], "hmac": {"key": "k"}},
            {"url": "http://127.0.0.1:1/b", "events": ["session.status"]},
            {"url": "http://127.0.0.1:1/c", "events": ["*"], "customHeaders": [{"name": "X-A", "value": "1"}]},
            {"url": "https://example.com/d", "events": ["*"]}
        ]});
        let envelope = json!({"id": "evt_1", "event": "message.ack"});
        let jobs = Job::for_config(&config, &envelope, 3, Duration::ZERO);
        let urls: Vec<&str> = jobs.iter().map(|j| j.url.as_str()).collect();
        assert_eq!(urls, ["http://127.0.0.1:1/a", "http://127.0.0.1:1/c"]);
        assert_eq!(
            jobs[0].hmac.as_deref(),
            Some(sign_webhook_body("k", jobs[0].body.as_bytes()).as_str())
        );
        assert_eq!(
            jobs[1].custom_headers,
            vec![("X-A".to_owned(), "1".to_owned())]
        );
    }
}

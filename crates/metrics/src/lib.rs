//! Wapim's Prometheus metrics: one registry per process ([`metrics`]), the instruments every
//! service records into, and the text exposition served at `/metrics` ([`render`]).
//!
//! Label sets stay bounded: routes are the router's patterns (`/api/messages/{id}`), never raw
//! paths; outcomes, kinds and stages are closed sets; nothing is labelled by message, phone or
//! device. Gauges that describe the database (backlog, held messages, paused devices) are set
//! right before each scrape by the service that serves `/metrics`.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every instrument of the process.
pub struct Metrics {
    registry: Registry,
    /// `wapim_http_requests_total{route, method, status}`.
    pub http_requests: IntCounterVec,
    /// `wapim_http_request_duration_seconds{route, method}`.
    pub http_duration: HistogramVec,
    /// `wapim_jobs_published_total{kind}`: jobs the relay handed to the queue.
    pub jobs_published: IntCounterVec,
    /// `wapim_jobs_handled_total{kind, outcome}`: jobs a dispatcher finished (sent, deferred
    /// = retried or held, failed, skipped, dead_lettered).
    pub jobs_handled: IntCounterVec,
    /// `wapim_waha_request_duration_seconds{outcome}`: each call to WAHA.
    pub waha_duration: HistogramVec,
    /// `wapim_send_latency_seconds`: from a message being due to WAHA accepting it.
    pub send_latency: Histogram,
    /// `wapim_pacing_wait_seconds`: how long a paced send waited for its device's slot.
    pub pacing_wait: Histogram,
    /// `wapim_ack_lag_seconds{stage}`: sent → delivered, delivered → read.
    pub ack_lag: HistogramVec,
    /// `wapim_webhook_attempts_total{outcome}`: deliveries to integrators' webhooks
    /// (delivered, retry, failed).
    pub webhook_attempts: IntCounterVec,
    /// `wapim_waha_events_total{event}`: events WAHA posted that the ingest recorded.
    pub waha_events: IntCounterVec,
    /// `wapim_outbox_backlog{kind}`: rows owed to the queue and due now.
    pub backlog: IntGaugeVec,
    /// `wapim_outbox_oldest_due_age_seconds`: how long the oldest due, unpublished message waits.
    pub oldest_due_age: IntGauge,
    /// `wapim_messages_held{reason}`: pending messages waiting, by why.
    pub held: IntGaugeVec,
    /// `wapim_devices_paused`: devices paused by WhatsApp's reach-out timelock.
    pub paused_devices: IntGauge,
}

const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
const LONG_SECONDS: &[f64] = &[
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
];

/// The process's metrics (registered on first use).
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(unreachable);
    registry
        .register(Box::new(c.clone()))
        .unwrap_or_else(unreachable);
    c
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .unwrap_or_else(unreachable);
    registry
        .register(Box::new(h.clone()))
        .unwrap_or_else(unreachable);
    h
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(unreachable);
    registry
        .register(Box::new(g.clone()))
        .unwrap_or_else(unreachable);
    g
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(unreachable);
    registry
        .register(Box::new(g.clone()))
        .unwrap_or_else(unreachable);
    g
}

/// The instruments are fixed at compile time with valid, distinct names: registration cannot
/// fail (a test renders them all).
fn unreachable<T>(e: prometheus::Error) -> T {
    panic!("metrics registration: {e}")
}

impl Metrics {
    fn new() -> Self {
        let r = Registry::new();
        let unlabelled = |h: HistogramVec| h.with_label_values::<&str>(&[]);
        Self {
            http_requests: counter(&r, "wapim_http_requests_total", "HTTP requests answered, by route pattern, method and status.", &["route", "method", "status"]),
            http_duration: histogram(&r, "wapim_http_request_duration_seconds", "Time to answer an HTTP request, by route pattern and method.", &["route", "method"], SECONDS),
            jobs_published: counter(&r, "wapim_jobs_published_total", "Jobs the outbox relay published (confirmed), by kind.", &["kind"]),
            jobs_handled: counter(&r, "wapim_jobs_handled_total", "Jobs a dispatcher finished, by kind and outcome.", &["kind", "outcome"]),
            waha_duration: histogram(&r, "wapim_waha_request_duration_seconds", "Calls to WAHA, by outcome (ok, client_error, server_error, timeout, unreachable).", &["outcome"], SECONDS),
            send_latency: unlabelled(histogram(&r, "wapim_send_latency_seconds", "From a message being due to WAHA accepting it.", &[], LONG_SECONDS)),
            pacing_wait: unlabelled(histogram(&r, "wapim_pacing_wait_seconds", "How long a paced send waited for its device's slot.", &[], LONG_SECONDS)),
            ack_lag: histogram(&r, "wapim_ack_lag_seconds", "WhatsApp's acks: sent to delivered, delivered to read.", &["stage"], LONG_SECONDS),
            webhook_attempts: counter(&r, "wapim_webhook_attempts_total", "Attempts to deliver to integrators' webhooks, by outcome (delivered, retry, failed).", &["outcome"]),
            waha_events: counter(&r, "wapim_waha_events_total", "Events WAHA posted that the ingest recorded, by event.", &["event"]),
            backlog: gauge_vec(&r, "wapim_outbox_backlog", "Rows due and owed to the queue (not yet published), by kind.", &["kind"]),
            oldest_due_age: gauge(&r, "wapim_outbox_oldest_due_age_seconds", "How long the oldest due, unpublished message has waited."),
            held: gauge_vec(&r, "wapim_messages_held", "Pending messages waiting, by reason.", &["reason"]),
            paused_devices: gauge(&r, "wapim_devices_paused", "Devices paused by WhatsApp's reach-out timelock."),
            registry: r,
        }
    }
}

/// The WAHA event names worth a label of their own; others count as `other` (the set stays
/// bounded whatever a sender posts).
pub fn event_label(event: &str) -> &'static str {
    match event {
        "message" => "message",
        "message.ack" => "message.ack",
        "message.ack.group" => "message.ack.group",
        "session.status" => "session.status",
        "message.waiting" => "message.waiting",
        _ => "other",
    }
}

/// Everything in Prometheus' text format.
pub fn render() -> String {
    let mut out = Vec::new();
    let families = metrics().registry.gather();
    if TextEncoder::new().encode(&families, &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instrument_registers_and_renders() {
        let m = metrics();
        m.http_requests
            .with_label_values(&["/api/messages", "POST", "200"])
            .inc();
        m.send_latency.observe(0.2);
        m.backlog.with_label_values(&["send_message"]).set(3);
        let text = render();
        assert!(
            text.contains(
                r#"wapim_http_requests_total{method="POST",route="/api/messages",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("wapim_send_latency_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains(r#"wapim_outbox_backlog{kind="send_message"} 3"#),
            "{text}"
        );
        assert_eq!(event_label("anything.else"), "other");
    }
}

//! Tracing set-up shared by every Wapim service, and the W3C trace context that carries one trace
//! from the gateway's request, through the message row and the queue, to the dispatcher's call
//! to WAHA.
//!
//! Spans get OpenTelemetry (W3C) trace and span ids and are exported over OTLP (HTTP/protobuf)
//! when an endpoint is configured ([`init_service`]); every hop forwards the context as a
//! `traceparent`, so an integrator's own trace (a `traceparent` header on the API call) reaches
//! WAHA's request, and one trace shows a message from the API call through the queue to WAHA.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer};

/// The W3C header that carries a trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Installs the global subscriber: log lines filtered by `RUST_LOG` if set, otherwise `level`
/// (JSON lines when `json`), and OpenTelemetry span ids for every `info` (or more severe) span
/// whatever the log level, so trace context propagates even when logs are quiet. Installs the
/// W3C propagator that the HTTP server uses to continue an incoming `traceparent`.
///
/// Safe to call more than once (tests start many apps in one process): later calls are no-ops.
pub fn init(level: &str, json: bool) {
    install(level, json, SdkTracerProvider::builder().build());
}

/// Flushes and stops the span exporter when dropped: hold it for the life of `main`, so the
/// last spans are sent before the process exits.
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Why spans cannot be exported.
#[derive(Debug)]
pub struct ExporterError(String);

impl std::fmt::Display for ExporterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "OTLP exporter (WAPIM_TELEMETRY__OTLP_ENDPOINT): {}",
            self.0
        )
    }
}

impl std::error::Error for ExporterError {}

/// [`init`] for a service: with `otlp_endpoint` (e.g. `http://otel-collector:4318`, or a full
/// `…/v1/traces` URL) spans are batched and exported over OTLP HTTP/protobuf under
/// `service_name`; without one nothing leaves the process.
pub fn init_service(
    level: &str,
    json: bool,
    service_name: &str,
    otlp_endpoint: Option<&str>,
) -> Result<TelemetryGuard, ExporterError> {
    use opentelemetry_otlp::WithExportConfig;
    let Some(endpoint) = otlp_endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
        init(level, json);
        return Ok(TelemetryGuard { provider: None });
    };
    let endpoint = if endpoint.trim_end_matches('/').ends_with("/v1/traces") {
        endpoint.to_owned()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| ExporterError(e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service_name.to_owned())
                .build(),
        )
        .build();
    let installed = install(level, json, provider.clone());
    Ok(TelemetryGuard {
        provider: installed.then_some(provider),
    })
}

/// Installs the subscriber with `provider`; false when one was installed already.
fn install(level: &str, json: bool, provider: SdkTracerProvider) -> bool {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = fmt::layer().with_target(true);
    let logs = if json {
        logs.json().flatten_event(true).with_filter(filter).boxed()
    } else {
        logs.with_filter(filter).boxed()
    };
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("wapim"))
        .with_filter(filter_fn(|meta| {
            meta.is_span() && *meta.level() <= tracing::Level::INFO
        }));
    if tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .try_init()
        .is_ok()
    {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider);
        true
    } else {
        false
    }
}

/// A W3C trace context (`traceparent`), as stored with a message and sent in AMQP and HTTP
/// headers, so that work done later or elsewhere joins the trace that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    traceparent: String,
}

impl TraceContext {
    /// The context of the current span; `None` when there is none (telemetry not initialised,
    /// or the span is disabled).
    pub fn current() -> Option<Self> {
        Self::of(&Span::current())
    }

    /// The context of `span`; `None` when it has no valid one.
    pub fn of(span: &Span) -> Option<Self> {
        let context = span.context();
        if !context.span().span_context().is_valid() {
            return None;
        }
        let mut carrier: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        carrier
            .remove(TRACEPARENT)
            .map(|traceparent| Self { traceparent })
    }

    /// A context received from elsewhere; `None` unless `traceparent` is a valid W3C one.
    pub fn parse(traceparent: &str) -> Option<Self> {
        let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.trim().to_owned())]);
        let context = TraceContextPropagator::new().extract(&carrier);
        let span = context.span();
        let span_context = span.span_context();
        span_context.is_valid().then(|| Self {
            traceparent: traceparent.trim().to_ascii_lowercase(),
        })
    }

    /// The `traceparent` header value.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The 32-hex-digit trace id (the part every hop of one trace shares).
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or_default()
    }

    /// Makes this context the parent of `span` (before the span is entered), so the span and
    /// everything under it join this trace.
    pub fn adopt(&self, span: &Span) {
        let carrier = HashMap::from([(TRACEPARENT.to_owned(), self.traceparent.clone())]);
        let context = TraceContextPropagator::new().extract(&carrier);
        let _ = span.set_parent(context);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn parses_valid_traceparents_only() {
        let ctx = TraceContext::parse(PARENT).unwrap();
        assert_eq!(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.traceparent(), PARENT);
        assert!(TraceContext::parse("").is_none());
        assert!(
            TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
                .is_none()
        );
        assert!(TraceContext::parse("garbage").is_none());
    }

    #[test]
    fn a_span_that_adopts_a_context_continues_its_trace() {
        init("error", false);
        let span = tracing::info_span!("child");
        TraceContext::parse(PARENT).unwrap().adopt(&span);
        let child = span.in_scope(TraceContext::current).unwrap();
        assert_eq!(child.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(child.traceparent(), PARENT, "the child has its own span id");
        let fresh = tracing::info_span!("root");
        let root = TraceContext::of(&fresh).unwrap();
        assert_ne!(
            root.trace_id(),
            child.trace_id(),
            "a new root starts a new trace"
        );
    }
}

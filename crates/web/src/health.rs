//! Liveness and readiness for orchestrators, the same on every service: `/healthz` and
//! `/health/live` (the process serves HTTP), `/readyz` and `/health/ready` (the database answers
//! with every migration of this build applied, and the queue is connected where the process
//! consumes from it).

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::db::Db;
use crate::error::ApiError;

/// The queue a process depends on, for readiness (register as `web::Data<BrokerHealth>`; a
/// process without one — the gateway, whose outbox relay keeps accepting while RabbitMQ is
/// away — is ready without it).
#[derive(Clone)]
pub struct BrokerHealth(pub wapim_broker::Broker);

/// `GET /healthz`, `GET /health/live`: the process serves HTTP.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": true, "message": "live", "data": null}))
}

/// `GET /readyz`, `GET /health/ready`: the database answers and holds this build's schema, and
/// the queue (when the process uses one) is connected; otherwise 503 saying what is not.
pub async fn ready(
    db: web::Data<Db>,
    broker: Option<web::Data<BrokerHealth>>,
) -> Result<HttpResponse, ApiError> {
    let pending = db
        .run(|c| {
            wapim_store::ping(c)?;
            wapim_store::pending_migrations(c)
        })
        .await?;
    let broker_up = match &broker {
        Some(b) => Some(b.0.is_connected().await),
        None => None,
    };
    let ready = pending == 0 && broker_up != Some(false);
    let data = json!({
        "database": "up",
        "migrations": if pending == 0 { "applied".to_owned() } else { format!("{pending} pending") },
        "broker": match broker_up { Some(true) => "up", Some(false) => "down", None => "not used" },
    });
    let body = json!({"status": ready, "message": if ready { "ready" } else { "not ready" }, "data": data});
    Ok(if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(body)
    })
}

/// `GET /metrics`: the process's metrics in Prometheus' text format, with the database's
/// backlog, held messages and paused devices read right before (no database: without them).
pub async fn metrics(db: Option<web::Data<Db>>) -> HttpResponse {
    if let Some(db) = db {
        let now = wapim_domain::time::now_micros().naive_utc();
        if let Ok(g) = db.run(move |c| wapim_store::dispatch::gauges(c, now)).await {
            let m = wapim_metrics::metrics();
            m.backlog
                .with_label_values(&["send_message"])
                .set(g.backlog_messages);
            m.backlog
                .with_label_values(&["sync_session"])
                .set(g.backlog_syncs);
            m.backlog
                .with_label_values(&["deliver_webhook"])
                .set(g.backlog_deliveries);
            m.oldest_due_age.set(g.oldest_due_age_secs);
            m.held.reset();
            for (reason, n) in &g.held {
                let reason = wapim_domain::HoldReason::ALL
                    .iter()
                    .find(|r| r.as_str() == reason)
                    .map_or("other", |r| r.as_str());
                m.held.with_label_values(&[reason]).add(*n);
            }
            m.paused_devices.set(g.paused_devices);
        }
    }
    HttpResponse::Ok()
        .content_type(wapim_metrics::CONTENT_TYPE)
        .body(wapim_metrics::render())
}

/// Registers `/healthz`, `/readyz`, `/health/live`, `/health/ready` and `/metrics` (the app
/// must hold a `web::Data<Db>`, and may hold a `web::Data<BrokerHealth>`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics))
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/healthz", web::get().to(live))
        .route("/readyz", web::get().to(ready));
}

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

/// Registers `/healthz`, `/readyz`, `/health/live` and `/health/ready` (the app must hold a
/// `web::Data<Db>`, and may hold a `web::Data<BrokerHealth>`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready))
        .route("/healthz", web::get().to(live))
        .route("/readyz", web::get().to(ready));
}

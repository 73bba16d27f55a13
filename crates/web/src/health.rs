//! Liveness and readiness for orchestrators, the same on every service.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::db::Db;
use crate::error::ApiError;

/// `GET /health/live`: the process serves HTTP.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": true, "message": "live", "data": null}))
}

/// `GET /health/ready`: the database answers too.
pub async fn ready(db: web::Data<Db>) -> Result<HttpResponse, ApiError> {
    db.run(wapim_store::ping).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"status": true, "message": "ready", "data": {"database": "up"}})))
}

/// Registers `/health/live` and `/health/ready` (the app must hold a `web::Data<Db>`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

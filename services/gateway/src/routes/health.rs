//! Liveness and readiness for orchestrators.

use actix_web::HttpResponse;
use serde_json::json;

use crate::error::ApiError;
use crate::state::State;

/// `GET /health/live`: the process serves HTTP.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": true, "message": "live", "data": null}))
}

/// `GET /health/ready`: the database answers too.
pub async fn ready(state: State) -> Result<HttpResponse, ApiError> {
    state.into_inner().db(|c| Ok(wapim_store::ping(c)?)).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"status": true, "message": "ready", "data": {"database": "up"}})))
}

//! `/api/generate-token`: a fresh secret token for a new device or a rotation.

use actix_web::HttpResponse;
use serde_json::json;
use wapim_domain::token::generate_secret_token;

use wapim_web::ApiError;

use crate::auth::Authenticated;

/// `GET|POST /generate-token`: answers `{"secret_token": "<64 hex>"}` exactly as the reference
/// (no envelope). Requires any valid credentials; the token is not stored.
#[utoipa::path(
    method(get, post),
    path = "/api/generate-token",
    operation_id = "tokens_generate",
    tag = "tokens",
    summary = "A fresh random token (not in the envelope).",
    responses(
        (status = 200, description = "OK.", body = crate::openapi::GeneratedToken),
        crate::openapi::E401,
        crate::openapi::E503,
    )
)]
pub async fn generate(_caller: Authenticated) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "secret_token": generate_secret_token() })))
}

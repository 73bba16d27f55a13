//! HTTP handlers, one module per resource.

pub mod batch;
pub mod devices;
pub mod health;
pub mod messages;
pub mod tokens;

use crate::error::ApiError;

/// Parses a path id; anything but a positive integer names no record (404).
pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::NotFound),
    }
}

/// Answers routes that exist with a method they do not take.
pub async fn method_not_allowed() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Answers paths that do not exist.
pub async fn route_not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound)
}

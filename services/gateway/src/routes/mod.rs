//! HTTP handlers, one module per resource.

pub mod batch;
pub mod devices;
pub mod inbox;
pub mod messages;
pub mod pairing;
pub mod suppressions;
pub mod tokens;
pub mod waha;
pub mod waha_servers;
pub mod webhooks;

use wapim_web::ApiError;

/// Parses a path id; anything but a positive integer names no record (404).
pub fn parse_id(raw: &str) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::NotFound),
    }
}

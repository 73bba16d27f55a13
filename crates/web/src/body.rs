//! Reading JSON bodies ourselves (only after the caller is authenticated): size limits become 413, syntax errors 400, wrong shapes 422,
//! all in the envelope (actix's own extractors answer in plain text).

use actix_web::web;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Reads at most `limit` bytes and parses them as JSON; an empty body reads as `{}`.
pub async fn read_json(payload: web::Payload, limit: usize) -> Result<Value, ApiError> {
    let bytes = match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            return Err(ApiError::MalformedBody(format!(
                "Could not read the body: {e}"
            )))
        }
        Err(_) => return Err(ApiError::PayloadTooLarge(limit)),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::MalformedBody(format!("The body is not valid JSON: {e}")))
}

/// Reads a body that must be a JSON object.
pub async fn read_object(
    payload: web::Payload,
    limit: usize,
) -> Result<Map<String, Value>, ApiError> {
    match read_json(payload, limit).await? {
        Value::Object(map) => Ok(map),
        _ => Err(not_an_object()),
    }
}

/// The body of a request that must be an object, or the 422 saying it is not (for handlers
/// that keep the whole `Value`, e.g. to fingerprint it for idempotency).
pub fn as_object(body: &Value) -> Result<&Map<String, Value>, ApiError> {
    body.as_object().ok_or_else(not_an_object)
}

fn not_an_object() -> ApiError {
    ApiError::field("body", "The request body must be a JSON object.")
}

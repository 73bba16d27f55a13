//! Success responses in the reference's envelope `{"status": true, "message": …, "data": …}`.

use actix_web::HttpResponse;
use serde::Serialize;
use serde_json::json;

/// Message of a successful create, as the reference words it.
pub const ADDED: &str = "Data successfully added";
/// Message of a successful update.
pub const MODIFIED: &str = "Data successfully modified";
/// Message of a successful soft delete.
pub const DELETED: &str = "Data successfully deleted";
/// Message of a successful restore.
pub const RESTORED: &str = "Data successfully restored";
/// Message of a processed batch.
pub const BATCH_PROCESSED: &str = "Batch processed";

/// The JSON of a 200 envelope, for responses that are also stored (idempotency).
pub fn ok_json(message: &str, data: impl Serialize) -> serde_json::Value {
    json!({ "status": true, "message": message, "data": data })
}

/// A 200 response in the envelope.
pub fn ok(message: &str, data: impl Serialize) -> HttpResponse {
    HttpResponse::Ok().json(ok_json(message, data))
}

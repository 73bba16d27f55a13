//! The JSON shapes of the reference, field for field and in its order; Wapim's additions
//! (`batch_id`, `created_at`, `updated_at`, `deleted_at`) come after the reference's fields.

use serde::Serialize;
use serde_json::Value;
use wapim_domain::time::format_naive_utc;
use wapim_domain::{ExposeSecret, MessageStatus, SecretString};
use wapim_store::devices::DeviceRow;
use wapim_store::messages::MessageRow;

/// How booleans are written. Reads and updates show 0/1 (as the reference's reads do); create
/// responses echo the request's booleans as `true`/`false`, as the reference's create examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolStyle {
    /// `0` / `1`.
    Int,
    /// `true` / `false`.
    Json,
}

impl BoolStyle {
    fn render(self, b: bool) -> Value {
        match self {
            BoolStyle::Int => Value::from(u8::from(b)),
            BoolStyle::Json => Value::Bool(b),
        }
    }
}

fn ts(t: &Option<chrono::NaiveDateTime>) -> Option<String> {
    t.as_ref().map(format_naive_utc)
}

/// A device as the API shows it.
#[derive(Debug, Serialize)]
pub struct DeviceView {
    id: i64,
    name: String,
    session_id: String,
    phone_number: String,
    status: String,
    secret_token: String,
    webhook_status: Value,
    webhook_url: Option<String>,
    webhook_options: Option<String>,
    opening_message: Option<String>,
    closing_message: Option<String>,
    auto_reply: Option<String>,
    auto_forward: Option<String>,
    auto_forward_number: Option<String>,
    created_at: String,
    updated_at: String,
    deleted_at: Option<String>,
    /// Extensions after the reference's fields: the device's own pacing (null: the server's
    /// `WAPIM_PACING__*` defaults).
    pacing_min_interval_ms: Option<i64>,
    pacing_jitter_ms: Option<i64>,
}

impl DeviceView {
    /// Renders a row; `plain_token` is shown only right after the token was set, otherwise the
    /// masked form.
    pub fn new(row: DeviceRow, style: BoolStyle, plain_token: Option<SecretString>) -> Self {
        Self {
            id: row.id,
            name: row.name,
            session_id: row.session_id,
            phone_number: row.phone_number,
            status: row.status.to_string(),
            secret_token: plain_token
                .map(|t| t.expose_secret().to_owned())
                .unwrap_or(row.secret_token_masked),
            webhook_status: style.render(row.webhook_status),
            webhook_url: row.webhook_url,
            webhook_options: row.webhook_options,
            opening_message: row.opening_message,
            closing_message: row.closing_message,
            auto_reply: row.auto_reply,
            auto_forward: row.auto_forward,
            auto_forward_number: row.auto_forward_number,
            created_at: format_naive_utc(&row.created_at),
            updated_at: format_naive_utc(&row.updated_at),
            deleted_at: ts(&row.deleted_at),
            pacing_min_interval_ms: row.pacing_min_interval_ms,
            pacing_jitter_ms: row.pacing_jitter_ms,
        }
    }
}

/// A message as the API shows it.
#[derive(Debug, Serialize)]
pub struct MessageView {
    id: i64,
    device_id: i64,
    session_id: String,
    is_queue: Value,
    recipient: String,
    message_type: String,
    message: Option<String>,
    file_mimetype: Option<String>,
    file_filename: Option<String>,
    file_url: Option<String>,
    calendar_type: String,
    schedule_at: Option<String>,
    status: String,
    is_sent: Value,
    provider_message_id: Option<String>,
    api_response: Option<String>,
    sent_at: Option<String>,
    delivered_at: Option<String>,
    read_at: Option<String>,
    status_updated_at: Option<String>,
    batch_id: Option<String>,
    created_at: String,
    updated_at: String,
    deleted_at: Option<String>,
    /// Why a `pending` message waits (`pacing`, `session_not_ready`, `reach_out_timelock`,
    /// `retry`); null otherwise. An extension of the reference's shape, after its fields.
    hold_reason: Option<String>,
}

impl MessageView {
    /// Renders a row. `is_sent` is server-set and always 0/1; `is_queue` follows `style`.
    pub fn new(row: MessageRow, style: BoolStyle) -> Self {
        Self {
            id: row.id,
            device_id: row.device_id,
            session_id: row.session_id,
            is_queue: style.render(row.is_queue),
            recipient: row.recipient,
            message_type: row.message_type,
            message: row.message,
            file_mimetype: row.file_mimetype,
            file_filename: row.file_filename,
            file_url: row.file_url,
            calendar_type: row.calendar_type,
            schedule_at: ts(&row.schedule_at),
            status: row.status.to_string(),
            is_sent: BoolStyle::Int.render(row.is_sent),
            provider_message_id: row.provider_message_id,
            api_response: row.api_response,
            sent_at: ts(&row.sent_at),
            delivered_at: ts(&row.delivered_at),
            read_at: ts(&row.read_at),
            status_updated_at: ts(&row.status_updated_at),
            batch_id: row.batch_id,
            created_at: format_naive_utc(&row.created_at),
            updated_at: format_naive_utc(&row.updated_at),
            deleted_at: ts(&row.deleted_at),
            hold_reason: row
                .hold_reason
                .filter(|_| row.status == MessageStatus::Pending),
        }
    }
}

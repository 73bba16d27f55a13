//! The JSON shapes of the reference, field for field and in its order; Wapim's additions
//! (`batch_id`, `created_at`, `updated_at`, `deleted_at`) come after the reference's fields.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use wapim_app::devices::SendingState;
use wapim_domain::time::format_naive_utc;
use wapim_domain::{ExposeSecret, MessageStatus, SecretString};
use wapim_store::devices::DeviceRow;
use wapim_store::inbound::InboundRow;
use wapim_store::messages::MessageRow;
use wapim_store::suppressions::SuppressionRow;
use wapim_store::waha_servers::ServerLoad;
use wapim_store::webhooks::{AttemptRow, DeliveryRow};

/// A boolean as the API writes it: `0`/`1` on reads and updates, `true`/`false` in create
/// responses (as the reference's examples); inputs take either.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum BoolFlag {
    /// `0` or `1`.
    Int(u8),
    /// `true` or `false`.
    Bool(bool),
}

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
    fn render(self, b: bool) -> BoolFlag {
        match self {
            BoolStyle::Int => BoolFlag::Int(u8::from(b)),
            BoolStyle::Json => BoolFlag::Bool(b),
        }
    }
}

fn ts(t: &Option<chrono::NaiveDateTime>) -> Option<String> {
    t.as_ref().map(format_naive_utc)
}

/// A device as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceView {
    id: i64,
    name: String,
    session_id: String,
    phone_number: String,
    #[schema(value_type = crate::openapi::DeviceStatusDoc)]
    status: String,
    secret_token: String,
    webhook_status: BoolFlag,
    webhook_url: Option<String>,
    webhook_options: Option<String>,
    opening_message: Option<String>,
    closing_message: Option<String>,
    auto_reply: Option<String>,
    auto_forward: Option<String>,
    auto_forward_number: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(format = DateTime)]
    deleted_at: Option<String>,
    /// Extensions after the reference's fields: the device's own pacing (null: the server's
    /// `WAPIM_PACING__*` defaults), its limits (null: off; `timezone` null: the server's), and
    /// its pause (WhatsApp's reach-out timelock).
    pacing_min_interval_ms: Option<i64>,
    pacing_jitter_ms: Option<i64>,
    timezone: Option<String>,
    daily_cap: Option<i64>,
    send_window_start: Option<String>,
    send_window_end: Option<String>,
    recipient_hourly_cap: Option<i64>,
    simulate_typing: BoolFlag,
    #[schema(format = DateTime)]
    paused_until: Option<String>,
    pause_reason: Option<String>,
    /// When WAHA last matched the device (its session created, configured, started), and the
    /// last failure of a sync still owed.
    #[schema(format = DateTime)]
    waha_synced_at: Option<String>,
    waha_sync_error: Option<String>,
    /// The WAHA server its session lives on (`/api/waha-servers`; null: the default one).
    waha_server_id: Option<i64>,
    /// Opt-out keywords (a JSON array; null: STOP, BERHENTI, UNSUBSCRIBE) and the answer to
    /// one (null: none).
    opt_out_keywords: Option<String>,
    opt_out_confirmation: Option<String>,
    /// Only on `GET /api/devices/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    sending_state: Option<SendingStateView>,
    /// The Standard Webhooks secret (`whsec_…`), only when the device is created (and from
    /// `POST /api/devices/{id}/webhook-secret`).
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_secret: Option<String>,
}

/// A device's sending state as `GET /api/devices/{id}` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendingStateView {
    held_messages: i64,
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    held_by_reason: serde_json::Map<String, Value>,
    #[schema(format = DateTime)]
    next_send_at: Option<String>,
    sent_today: i64,
    daily_cap: Option<u32>,
    timezone: String,
    #[schema(format = DateTime)]
    paused_until: Option<String>,
    pause_reason: Option<String>,
}

impl DeviceView {
    /// The view with the device's sending state.
    pub fn with_sending_state(mut self, state: SendingState) -> Self {
        self.sending_state = Some(SendingStateView {
            held_messages: state.held.iter().map(|(_, n)| n).sum(),
            held_by_reason: state
                .held
                .into_iter()
                .map(|(reason, n)| (reason, Value::from(n)))
                .collect(),
            next_send_at: ts(&state.next_send_at),
            sent_today: state.sent_today,
            daily_cap: state.daily_cap,
            timezone: state.timezone.name().to_owned(),
            paused_until: self.paused_until.clone(),
            pause_reason: self.pause_reason.clone(),
        });
        self
    }
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
            timezone: row.timezone,
            daily_cap: row.daily_cap,
            send_window_start: row.send_window_start,
            send_window_end: row.send_window_end,
            recipient_hourly_cap: row.recipient_hourly_cap,
            simulate_typing: style.render(row.simulate_typing),
            paused_until: ts(&row.paused_until),
            pause_reason: row.pause_reason,
            waha_synced_at: ts(&row.session_synced_at),
            waha_sync_error: row.session_sync_error,
            waha_server_id: row.waha_server_id,
            opt_out_keywords: row.opt_out_keywords,
            opt_out_confirmation: row.opt_out_confirmation,
            sending_state: None,
            webhook_secret: None,
        }
    }

    /// The view with the webhook secret shown (creation only).
    pub fn with_webhook_secret(mut self, secret: Option<String>) -> Self {
        self.webhook_secret = secret;
        self
    }
}

/// A message as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    id: i64,
    device_id: i64,
    session_id: String,
    is_queue: BoolFlag,
    recipient: String,
    #[schema(value_type = crate::openapi::MessageTypeDoc)]
    message_type: String,
    message: Option<String>,
    file_mimetype: Option<String>,
    file_filename: Option<String>,
    file_url: Option<String>,
    #[schema(value_type = crate::openapi::CalendarTypeDoc)]
    calendar_type: String,
    #[schema(format = DateTime)]
    schedule_at: Option<String>,
    #[schema(value_type = crate::openapi::MessageStatusDoc)]
    status: String,
    is_sent: BoolFlag,
    provider_message_id: Option<String>,
    api_response: Option<String>,
    #[schema(format = DateTime)]
    sent_at: Option<String>,
    #[schema(format = DateTime)]
    delivered_at: Option<String>,
    #[schema(format = DateTime)]
    read_at: Option<String>,
    #[schema(format = DateTime)]
    status_updated_at: Option<String>,
    batch_id: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(format = DateTime)]
    deleted_at: Option<String>,
    /// Why a `pending` message waits (`pacing`, `session_not_ready`, `reach_out_timelock`,
    /// `retry`); null otherwise. An extension of the reference's shape, after its fields.
    hold_reason: Option<String>,
    /// Who created it: `api`, or the automation that answered a contact (`opening_message`,
    /// `closing_message`, `auto_reply`, `auto_forward`, `opt_out_confirmation`).
    origin: String,
    /// Only on `GET /api/messages/{id}`: its send attempts, oldest first (the newest 50).
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<SendAttemptView>>,
}

/// One logged outcome of a message's claims: sent, failed, or released to wait (with why).
#[derive(Debug, Serialize, ToSchema)]
pub struct SendAttemptView {
    /// The message's attempt count after it.
    attempt: i32,
    /// `sent`, `failed` or `released`.
    outcome: String,
    /// Why it waits, when released (`session_not_ready`, `retry`, `pacing`, …).
    hold_reason: Option<String>,
    /// WAHA's answer or the error then (at most 4,000 characters).
    api_response: Option<String>,
    /// How many claims in a row ended exactly like this.
    repeats: i32,
    /// The first of them.
    #[schema(format = DateTime)]
    first_at: String,
    /// The last of them.
    #[schema(format = DateTime)]
    last_at: String,
}

impl From<wapim_store::dispatch::AttemptRow> for SendAttemptView {
    fn from(a: wapim_store::dispatch::AttemptRow) -> Self {
        Self {
            attempt: a.attempt,
            outcome: a.outcome,
            hold_reason: a.hold_reason,
            api_response: a.api_response,
            repeats: a.repeats,
            first_at: format_naive_utc(&a.first_at),
            last_at: format_naive_utc(&a.last_at),
        }
    }
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
            origin: row.origin,
            attempt_log: None,
        }
    }

    /// The view with the message's send attempts (the single-message read).
    pub fn with_attempts(mut self, attempts: Vec<wapim_store::dispatch::AttemptRow>) -> Self {
        self.attempt_log = Some(attempts.into_iter().map(SendAttemptView::from).collect());
        self
    }
}

/// A suppressed contact as `/api/devices/{id}/suppressions` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionView {
    id: i64,
    device_id: i64,
    phone: String,
    reason: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<SuppressionRow> for SuppressionView {
    fn from(row: SuppressionRow) -> Self {
        Self {
            id: row.id,
            device_id: row.device_id,
            phone: row.phone,
            reason: row.reason,
            created_at: format_naive_utc(&row.created_at),
        }
    }
}

/// A WAHA server as `/api/waha-servers` shows it (its API key never: only whether it has one).
#[derive(Debug, Serialize, ToSchema)]
pub struct WahaServerView {
    id: i64,
    name: String,
    base_url: String,
    has_api_key: bool,
    capacity: i64,
    #[schema(value_type = crate::openapi::ServerStateDoc)]
    state: String,
    devices: i64,
    room: i64,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<ServerLoad> for WahaServerView {
    fn from(load: ServerLoad) -> Self {
        let room = load.room();
        let s = load.server;
        Self {
            id: s.id,
            name: s.name,
            base_url: s.base_url,
            has_api_key: s.api_key.is_some_and(|k| !k.is_empty()),
            capacity: s.capacity,
            state: s.state,
            devices: load.devices,
            room,
            created_at: format_naive_utc(&s.created_at),
            updated_at: format_naive_utc(&s.updated_at),
        }
    }
}

/// An inbound message as `/api/inbox` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundView {
    id: i64,
    device_id: i64,
    session_id: String,
    provider_message_id: String,
    chat_id: String,
    sender: Option<String>,
    sender_lid: Option<String>,
    is_group: bool,
    message_type: String,
    message: Option<String>,
    has_media: bool,
    media_url: Option<String>,
    media_mimetype: Option<String>,
    media_filename: Option<String>,
    #[schema(format = DateTime)]
    sent_at: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<InboundRow> for InboundView {
    fn from(row: InboundRow) -> Self {
        Self {
            id: row.id,
            device_id: row.device_id,
            session_id: row.session_id,
            provider_message_id: row.provider_message_id,
            chat_id: row.chat_id,
            sender: row.sender,
            sender_lid: row.sender_lid,
            is_group: row.is_group,
            message_type: row.message_type,
            message: row.message,
            has_media: row.has_media,
            media_url: row.media_url,
            media_mimetype: row.media_mimetype,
            media_filename: row.media_filename,
            sent_at: format_naive_utc(&row.sent_at),
            created_at: format_naive_utc(&row.created_at),
            updated_at: format_naive_utc(&row.updated_at),
        }
    }
}

/// A delivery to the integrator's webhook as `/api/webhook-deliveries` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    id: i64,
    device_id: i64,
    webhook_id: String,
    event: String,
    url: String,
    #[schema(value_type = crate::openapi::DeliveryStatusDoc)]
    status: String,
    attempts: i32,
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    give_up_at: String,
    last_status_code: Option<i32>,
    last_error: Option<String>,
    #[schema(format = DateTime)]
    delivered_at: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// The JSON body, as sent.
    #[schema(value_type = Object)]
    payload: Value,
    /// Only on `GET /api/webhook-deliveries/{id}`: every attempt, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<AttemptView>>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    id: i64,
    #[schema(format = DateTime)]
    attempted_at: String,
    status_code: Option<i32>,
    error: Option<String>,
    response_body: Option<String>,
    duration_ms: i64,
}

impl DeliveryView {
    /// Renders a delivery; with its attempts on the single-delivery view.
    pub fn new(row: DeliveryRow, attempts: Option<Vec<AttemptRow>>) -> Self {
        let pending = row.status == wapim_domain::WebhookDeliveryStatus::Pending.as_str();
        Self {
            id: row.id,
            device_id: row.device_id,
            webhook_id: row.webhook_id,
            event: row.event,
            url: row.url,
            next_attempt_at: pending.then(|| format_naive_utc(&row.due_at)),
            status: row.status,
            attempts: row.attempts,
            give_up_at: format_naive_utc(&row.give_up_at),
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            delivered_at: ts(&row.delivered_at),
            created_at: format_naive_utc(&row.created_at),
            updated_at: format_naive_utc(&row.updated_at),
            payload: serde_json::from_str(&row.payload).unwrap_or(Value::String(row.payload)),
            attempt_log: attempts.map(|all| {
                all.into_iter()
                    .map(|a| AttemptView {
                        id: a.id,
                        attempted_at: format_naive_utc(&a.attempted_at),
                        status_code: a.status_code,
                        error: a.error,
                        response_body: a.response_body,
                        duration_ms: a.duration_ms,
                    })
                    .collect()
            }),
        }
    }
}

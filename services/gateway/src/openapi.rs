//! The OpenAPI 3.1 document of the REST API, generated from the gateway's Rust types: the
//! response views (`crate::views`, `crate::listing`) derive their schemas, each handler carries
//! its operation (`#[utoipa::path]`), and the request bodies and query parameters the handlers
//! read field by field (to answer every bad field with its own message) are described here, next
//! to the envelope the handlers write through `wapim_web::envelope`. Served at
//! `/api/openapi.json`, with Swagger UI at `/docs` (its assets compiled into the binary); a copy
//! is committed as `proto/openapi.json` and a test fails when the two drift.

// The types below describe JSON the handlers read and write field by field; they are never built.
#![allow(dead_code)]

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::listing::Meta;
use crate::routes;
use crate::views::{
    AttemptView, BoolFlag, DeliveryView, DeviceView, InboundView, MessageView, SendAttemptView,
    SendingStateView, SuppressionView, WahaServerView,
};

/// Where the document is served.
pub const SPEC_PATH: &str = "/api/openapi.json";

/// The success envelope every answer but `/generate-token` and WAHA's pass-throughs comes in.
#[derive(ToSchema)]
pub struct Envelope<T> {
    /// Always `true`.
    status: bool,
    /// `""` on reads; `Data successfully added|modified|deleted|restored` on writes.
    message: String,
    /// The record, the list, or null.
    data: T,
}

/// A failure: 4xx (and 5xx, which normal operation never shows).
#[derive(ToSchema)]
pub struct ErrorEnvelope {
    /// Always `false`.
    status: bool,
    /// What went wrong, for a person.
    message: String,
    /// Always null.
    #[schema(value_type = Option<Object>)]
    data: Option<()>,
    /// Each offending field (or `body`, `items`, `Idempotency-Key`, `sort`, `waha`, …) with its
    /// messages; empty when the failure is about no field.
    errors: BTreeMap<String, Vec<String>>,
}

/// One documented failure answer: a status, what it means, the error envelope.
macro_rules! failure {
    ($name:ident, $status:literal, $description:literal) => {
        #[doc = $description]
        #[derive(utoipa::IntoResponses)]
        #[response(status = $status, description = $description)]
        pub struct $name(ErrorEnvelope);
    };
}

failure!(E400, 400, "The body is not JSON.");
failure!(E401, 401, "Missing or wrong credentials.");
failure!(E403, 403, "Operators only.");
failure!(E404, 404, "No such record, or another device's.");
failure!(E409, 409, "The record's state forbids this right now.");
failure!(E413, 413, "The body is over the limit.");
failure!(
    E422,
    422,
    "A field (or parameter) is invalid; `errors` names each."
);
failure!(E502, 502, "WAHA could not be reached.");
failure!(
    E503,
    503,
    "The database is unavailable or saturated (`Retry-After: 1`)."
);
failure!(E504, 504, "WAHA did not answer in time.");

/// `data` of a list of WAHA servers (not paged: there are few).
#[derive(ToSchema)]
pub struct ServerList {
    /// Every server.
    list: Vec<WahaServerView>,
}

/// `data` of `POST /api/devices/{id}/webhook-secret`.
#[derive(ToSchema)]
pub struct WebhookSecret {
    /// The device.
    device_id: i64,
    /// The new Standard Webhooks secret (`whsec_…`); the old one stops signing at once.
    webhook_secret: String,
}

/// `GET|POST /api/generate-token`: a fresh token, not in the envelope.
#[derive(ToSchema)]
pub struct GeneratedToken {
    /// 64 lowercase hex characters from a CSPRNG.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    secret_token: String,
}

/// The outcome of one batch item, in the order sent.
#[derive(ToSchema, Serialize)]
#[serde(untagged)]
pub enum BatchItem {
    /// Stored.
    Stored {
        /// Its position in `items`, from 0.
        index: usize,
        /// `true`.
        status: bool,
        /// The new message's id, as a string (as the reference shows it).
        message_id: String,
    },
    /// Refused, with why.
    Refused {
        /// Its position in `items`, from 0.
        index: usize,
        /// `false`.
        status: bool,
        /// Each offending field with its messages.
        errors: BTreeMap<String, Vec<String>>,
    },
}

/// `data` of `POST /api/messages-batch`.
#[derive(ToSchema)]
pub struct BatchResult {
    /// The UUID shared by the batch's stored messages (`GET /api/messages?batch_id=`).
    batch_id: String,
    /// Every item's outcome, in order.
    items: Vec<BatchItem>,
}

/// A device as `POST`/`PUT`/`PATCH /api/devices` take it (PATCH: only the fields present
/// change; PUT: absent optional fields become null). Booleans may be `true`/`false` or `0`/`1`.
#[derive(ToSchema)]
pub struct DeviceBody {
    /// Shown name; its slug becomes the `session_id` on creation.
    #[schema(max_length = 255, example = "WAPI Test")]
    name: String,
    /// The device's own number (normalised: `0811…` → `62811…`).
    #[schema(max_length = 64, example = "081234567890")]
    phone_number: String,
    /// A client-chosen token (32–128 URL-safe characters, not a pattern); absent: generated on
    /// creation, kept on update.
    #[schema(min_length = 32, max_length = 128)]
    secret_token: Option<String>,
    /// Forward events to `webhook_url`.
    #[schema(value_type = Option<BoolFlag>)]
    webhook_status: Option<bool>,
    /// The integrator's webhook (http or https); required when `webhook_status` is true.
    #[schema(example = "http://127.0.0.1:9000/wapim")]
    webhook_url: Option<String>,
    /// WAHA event names to forward, as an array or a JSON array in a string.
    #[schema(value_type = Option<Vec<String>>)]
    webhook_options: Option<Vec<String>>,
    /// Sent to a contact whose conversation opens.
    opening_message: Option<String>,
    /// Sent when an open conversation has been silent for a while.
    closing_message: Option<String>,
    /// Answers a contact's message (at most once per window).
    auto_reply: Option<String>,
    /// Forward a contact's messages to `auto_forward_number` (`"1"`/`"0"` or a boolean).
    auto_forward: Option<String>,
    /// Where contacts' messages are forwarded.
    auto_forward_number: Option<String>,
    /// Least gap between two sends in ms (0..86,400,000; null: the server's default).
    #[schema(minimum = 0, maximum = 86_400_000)]
    pacing_min_interval_ms: Option<i64>,
    /// Random extra gap in ms (0..86,400,000; null: the server's default).
    #[schema(minimum = 0, maximum = 86_400_000)]
    pacing_jitter_ms: Option<i64>,
    /// IANA zone the day and the window are reckoned in (null: the server's).
    #[schema(example = "Asia/Jakarta")]
    timezone: Option<String>,
    /// Most sends per local day (1..1,000,000; null: no cap).
    #[schema(minimum = 1, maximum = 1_000_000)]
    daily_cap: Option<i64>,
    /// Local `HH:MM[:SS]` the sending window opens (with `send_window_end`).
    #[schema(example = "08:00")]
    send_window_start: Option<String>,
    /// Local `HH:MM[:SS]` the sending window closes.
    #[schema(example = "21:00")]
    send_window_end: Option<String>,
    /// Most sends to one contact within an hour (1..1,000; null: no cap).
    #[schema(minimum = 1, maximum = 1000)]
    recipient_hourly_cap: Option<i64>,
    /// Mark the chat seen and show "typing…" before each text.
    #[schema(value_type = Option<BoolFlag>)]
    simulate_typing: Option<bool>,
    /// Whole-message words that opt a contact out (null: STOP, BERHENTI, UNSUBSCRIBE).
    opt_out_keywords: Option<Vec<String>>,
    /// The answer to an opt-out (null: none).
    opt_out_confirmation: Option<String>,
}

/// A message as `POST /api/messages` (and each batch item, `PUT`, `PATCH`) takes it.
#[derive(ToSchema)]
pub struct MessageBody {
    /// The device's session; a device's own credentials may leave it out.
    #[schema(max_length = 64, example = "wapi-test")]
    session_id: Option<String>,
    /// `false` with no future `schedule_at`: sent before the answer (default `true`).
    #[schema(value_type = Option<BoolFlag>)]
    is_queue: Option<bool>,
    /// The contact (normalised: `0811…` → `62811…`).
    #[schema(max_length = 64, example = "081234567890")]
    recipient: String,
    /// `text`, `image`, `file`, `video` or `audio`.
    #[schema(example = "text")]
    message_type: MessageTypeDoc,
    /// The text (required for `text`), or the media caption.
    #[schema(example = "Hello from Wapim")]
    message: Option<String>,
    /// Media: where WAHA fetches the file (http or https).
    file_url: Option<String>,
    /// Media: derived from `file_url` unless given.
    file_mimetype: Option<String>,
    /// Media: derived from `file_url` unless given.
    file_filename: Option<String>,
    /// `masehi` (default) or `hijriah` (the date of `schedule_at` is Umm al-Qura).
    calendar_type: Option<CalendarTypeDoc>,
    /// `YYYY-MM-DD HH:MM[:SS]` in the server's zone, or RFC 3339; null: as soon as possible.
    #[schema(example = "2026-12-24 09:00:00")]
    schedule_at: Option<String>,
}

/// `POST /api/messages-batch`.
#[derive(ToSchema)]
pub struct BatchBody {
    /// 1 to `WAPIM_LIMITS__BATCH_MAX_ITEMS` (1,000) messages, each validated on its own.
    #[schema(min_items = 1)]
    items: Vec<MessageBody>,
}

/// `POST /api/devices/{id}/suppressions`.
#[derive(ToSchema)]
pub struct SuppressionBody {
    /// The contact (any accepted phone form).
    #[schema(example = "081234567890")]
    phone: String,
    /// Why (up to 255 characters).
    #[schema(max_length = 255)]
    reason: Option<String>,
}

/// `POST`/`PATCH /api/waha-servers`.
#[derive(ToSchema)]
pub struct WahaServerBody {
    /// Unique name.
    #[schema(max_length = 100)]
    name: String,
    /// WAHA's base URL (http or https).
    #[schema(max_length = 2048, example = "http://127.0.0.1:3000")]
    base_url: String,
    /// WAHA's `X-Api-Key`; never shown again.
    #[schema(max_length = 256)]
    api_key: Option<String>,
    /// Most devices it takes (1..100,000, default 50).
    #[schema(minimum = 1, maximum = 100_000)]
    capacity: Option<i64>,
    /// `active` (default), `draining` or `down`.
    state: Option<ServerStateDoc>,
}

/// `POST /api/v1/waha/{session_id}/auth/request-code`.
#[derive(ToSchema)]
pub struct RequestCodeBody {
    /// The phone to pair (WAHA's `phoneNumber` is accepted too).
    #[schema(example = "081234567890")]
    phone_number: String,
}

/// A message's kind.
#[derive(ToSchema)]
#[schema(as = MessageType, rename_all = "lowercase")]
pub enum MessageTypeDoc {
    /// Text.
    Text,
    /// A picture.
    Image,
    /// A document.
    File,
    /// A video.
    Video,
    /// A voice or audio file.
    Audio,
}

/// The calendar `schedule_at` is written in.
#[derive(ToSchema)]
#[schema(as = CalendarType, rename_all = "lowercase")]
pub enum CalendarTypeDoc {
    /// Gregorian.
    Masehi,
    /// Umm al-Qura Hijri.
    Hijriah,
}

/// A message's life-cycle status (moves only forward: see docs/api.md).
#[derive(ToSchema)]
#[schema(as = MessageStatus, rename_all = "lowercase")]
pub enum MessageStatusDoc {
    /// Accepted, waiting to be sent (`hold_reason` says why, when due).
    Pending,
    /// Being sent.
    Processing,
    /// WAHA took it.
    Sent,
    /// On the contact's phone.
    Delivered,
    /// Read (or played).
    Read,
    /// Not sent (`api_response` says why).
    Failed,
    /// Deleted before it was sent.
    Cancelled,
}

/// A device's WAHA session status.
#[derive(ToSchema)]
#[schema(as = DeviceStatus, rename_all = "snake_case")]
pub enum DeviceStatusDoc {
    /// The session starts.
    Starting,
    /// Waiting for the phone to scan the QR.
    ScanQrCode,
    /// Paired and able to send.
    Working,
    /// WAHA gave up on the session.
    Failed,
    /// Stopped (e.g. the device is deleted).
    Stopped,
}

/// Where a delivery to the integrator's webhook stands.
#[derive(ToSchema)]
#[schema(as = WebhookDeliveryStatus, rename_all = "lowercase")]
pub enum DeliveryStatusDoc {
    /// Owed (being tried, or waiting for its next attempt).
    Pending,
    /// The webhook answered 2xx.
    Delivered,
    /// Given up (`give_up_at` passed, or a permanent refusal).
    Failed,
}

/// Whether a WAHA server takes new devices.
#[derive(ToSchema)]
#[schema(as = WahaServerState, rename_all = "lowercase")]
pub enum ServerStateDoc {
    /// Takes new devices.
    Active,
    /// Keeps its devices, takes no new ones.
    Draining,
    /// Unreachable; takes no new ones.
    Down,
}

/// Paging and sorting, on every list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// From 1; a page starting beyond row 10,000 is a 422 (use `after_id`).
    #[param(minimum = 1)]
    page: Option<i64>,
    /// 1..100, default 15.
    #[param(minimum = 1, maximum = 100)]
    per_page: Option<i64>,
    /// `<column> ASC|DESC`, default `id DESC`.
    #[param(example = "id DESC")]
    sort: Option<String>,
    /// `with` (deleted records too) or `only` (only deleted ones).
    trashed: Option<String>,
    /// Keyset paging with `sort=id DESC|ASC`: the rows after this id.
    #[param(minimum = 1)]
    after_id: Option<i64>,
}

/// `GET /api/devices` filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeviceFilters {
    /// `starting`, `scan_qr_code`, `working`, `failed`, `stopped`.
    status: Option<String>,
    /// Exactly this session.
    session_id: Option<String>,
}

/// `GET /api/messages` filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageFilters {
    /// `pending`, `processing`, `sent`, `delivered`, `read`, `failed`, `cancelled`.
    status: Option<String>,
    /// The contact (normalised like the field).
    recipient: Option<String>,
    /// `text`, `image`, `file`, `video`, `audio`.
    message_type: Option<String>,
    /// The device's session.
    session_id: Option<String>,
    /// A batch's UUID.
    batch_id: Option<String>,
    /// Created on or after (`YYYY-MM-DD` in the server's zone, or a date-time).
    date_from: Option<String>,
    /// Created on or before (a date is the whole day).
    date_to: Option<String>,
}

/// `GET /api/inbox` filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxFilters {
    /// One device's messages (operators).
    #[param(minimum = 1)]
    device_id: Option<i64>,
    /// The contact (normalised like every phone).
    sender: Option<String>,
    /// `text`, `image`, `file`, `video`, `audio`.
    message_type: Option<String>,
    /// Received on or after.
    date_from: Option<String>,
    /// Received on or before.
    date_to: Option<String>,
}

/// `GET /api/webhook-deliveries` filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilters {
    /// One device's deliveries (operators).
    #[param(minimum = 1)]
    device_id: Option<i64>,
    /// `pending`, `delivered`, `failed`.
    status: Option<String>,
    /// An event name such as `message.ack`.
    event: Option<String>,
}

/// `GET /api/devices/{id}/qr`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PairingParams {
    /// `html` (default) or `text` (the QR drawn for a terminal).
    format: Option<String>,
    /// The page's signed refresh link (`<expiry>.<hmac>`), instead of credentials.
    pairing: Option<String>,
}

/// `GET /api/v1/waha/{session_id}/auth/qr.png`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QrParams {
    /// `image` (default: PNG) or `raw` (WAHA's JSON with the QR's text).
    format: Option<String>,
}

/// `GET /api/v1/waha/contacts/check-exists`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckExistsParams {
    /// The phone to look up.
    phone: String,
    /// The session to ask through (a device may leave it out: its own).
    session: Option<String>,
}

/// The two ways to authenticate: the operator's bearer token, or a device's session id and
/// secret token.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operator token (`WAPIM_AUTH__ADMIN_TOKEN`, or printed by \
                         `wapim reset-token`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "device_session",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Session-Id",
                "A device's `session_id`; with `X-Session-Secret-Token`.",
            ))),
        );
        components.add_security_scheme(
            "device_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Session-Secret-Token",
                "The device's `secret_token`; with `X-Session-Id`.",
            ))),
        );
    }
}

/// The whole REST API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Wapim",
        description = "A self-hosted WhatsApp gateway over WAHA. Every answer is in the \
            envelope `{\"status\", \"message\", \"data\"}` (failures add `errors`), except \
            `/api/generate-token` and WAHA's pass-throughs under `/api/v1/waha`. Timestamps are \
            UTC with microseconds (`2025-09-08T02:44:00.000000Z`); phones are normalised to \
            international digits (`0811…` → `62811…`). See docs/api.md for every decision the \
            reference leaves open.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&Security),
    security(("operator" = []), ("device_session" = [], "device_token" = [])),
    tags(
        (name = "devices", description = "Devices (phones paired with WhatsApp), their pacing, limits, pause and opt-outs."),
        (name = "messages", description = "Messages: send now, later (also by Hijri date) or in batches, and follow them to read."),
        (name = "inbox", description = "Messages contacts sent to a device."),
        (name = "webhooks", description = "Deliveries of events to the integrator's webhook, signed."),
        (name = "waha", description = "WAHA's account functions for a device's session, passed through."),
        (name = "waha-servers", description = "The WAHA servers devices live on (operators only)."),
        (name = "tokens", description = "Token generation."),
    ),
    paths(
        routes::devices::list,
        routes::devices::create,
        routes::devices::show,
        routes::devices::replace,
        routes::devices::patch,
        routes::devices::delete,
        routes::devices::restore,
        routes::devices::resync,
        routes::devices::resume,
        routes::pairing::qr,
        routes::suppressions::list,
        routes::suppressions::add,
        routes::suppressions::remove,
        routes::webhooks::rotate_secret,
        routes::messages::list,
        routes::messages::create,
        routes::messages::show,
        routes::messages::replace,
        routes::messages::patch,
        routes::messages::delete,
        routes::messages::restore,
        routes::messages::resend,
        routes::batch::create,
        routes::inbox::list,
        routes::inbox::show,
        routes::webhooks::list,
        routes::webhooks::show,
        routes::webhooks::replay,
        routes::waha::me,
        routes::waha::profile,
        routes::waha::restart,
        routes::waha::logout,
        routes::waha::qr,
        routes::waha::request_code,
        routes::waha::check_exists,
        routes::waha_servers::list,
        routes::waha_servers::create,
        routes::waha_servers::update,
        routes::waha_servers::delete,
        routes::tokens::generate,
    ),
    components(schemas(
        ErrorEnvelope, DeviceView, SendingStateView, MessageView, InboundView, DeliveryView,
        AttemptView, SendAttemptView, SuppressionView, WahaServerView, Meta, BoolFlag, DeviceBody, MessageBody,
        BatchBody, BatchItem, BatchResult, SuppressionBody, WahaServerBody, RequestCodeBody,
        GeneratedToken, WebhookSecret, ServerList, MessageTypeDoc, CalendarTypeDoc, ServerStateDoc,
        MessageStatusDoc, DeviceStatusDoc, DeliveryStatusDoc,
    ))
)]
pub struct ApiDoc;

impl ApiDoc {
    /// The document as served, with this build's version.
    pub fn document() -> utoipa::openapi::OpenApi {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc
    }

    /// The document pretty-printed, as committed in `proto/openapi.json`.
    pub fn pretty_json() -> String {
        Self::document()
            .to_pretty_json()
            .map(|s| s + "\n")
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"))
    }
}

/// Registers `/api/openapi.json` (no credentials: the document holds no secret) and Swagger UI
/// at `/docs`, its assets served from the binary. Register before the `/api` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/docs", web::get().to(docs_slash))
        .service(SwaggerUi::new("/docs/{_:.*}").url(SPEC_PATH, ApiDoc::document()));
}

/// `GET /docs` → `/docs/` (relative, so it also works behind a path prefix).
async fn docs_slash() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "docs/"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wapim_domain::{
        CalendarType, DeviceStatus, MessageStatus, MessageType, WebhookDeliveryStatus,
    };

    fn documented(name: &str) -> Vec<String> {
        let doc = serde_json::to_value(ApiDoc::document()).unwrap();
        doc["components"]["schemas"][name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is an enum in the spec"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    /// The documented enums are the domain's, value for value.
    #[test]
    fn documented_enums_are_the_domains() {
        let names = |all: &[&str]| sorted(all.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(
            sorted(documented("MessageStatus")),
            names(
                &MessageStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(
            sorted(documented("DeviceStatus")),
            names(
                &DeviceStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(
            sorted(documented("MessageType")),
            names(
                &MessageType::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(
            sorted(documented("CalendarType")),
            names(
                &CalendarType::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(
            sorted(documented("WebhookDeliveryStatus")),
            names(
                &WebhookDeliveryStatus::ALL
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
            )
        );
        assert_eq!(
            sorted(documented("WahaServerState")),
            names(wapim_app::waha_servers::SERVER_STATES)
        );
    }
}

//! `/api/messages`: store, list, edit, cancel and restore messages.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use wapim_domain::message::{validate_message, MessageDraft, MessageInput};
use wapim_domain::time::now_micros;
use wapim_domain::validation::Mode;
use wapim_domain::{CalendarType, MessageStatus, MessageType, ValidationErrors};
use wapim_store::devices::{self, DeviceRow};
use wapim_store::messages::{
    self, MessageFields, MessageFilter, MessageRow, MessageSortColumn, NewMessage,
};
use wapim_store::DbConn;

use crate::auth::{Caller, Principal};
use crate::body::{as_object, read_json, read_object};
use crate::envelope::{ok, ok_json, ADDED, DELETED, MODIFIED, RESTORED};
use crate::error::ApiError;
use crate::idempotency;
use crate::listing::{ListData, ListQuery};
use crate::routes::parse_id;
use crate::state::{AppState, State};
use crate::views::{BoolStyle, MessageView};

const SORTS: &[(&str, MessageSortColumn)] = &[
    ("id", MessageSortColumn::Id),
    ("created_at", MessageSortColumn::CreatedAt),
    ("updated_at", MessageSortColumn::UpdatedAt),
    ("schedule_at", MessageSortColumn::ScheduleAt),
    ("sent_at", MessageSortColumn::SentAt),
    ("status", MessageSortColumn::Status),
    ("recipient", MessageSortColumn::Recipient),
];

/// The message used for an unknown, foreign or deleted session: the same words for all three so
/// that session ids of other tenants cannot be probed.
pub const UNKNOWN_SESSION: &str = "The selected session id is invalid.";

/// `GET /messages`: a page of messages (a device sees only its own).
pub async fn list(
    state: State,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut q = ListQuery::parse(&req);
    let sort = q.sort(SORTS, MessageSortColumn::Id);
    let status = q.get("status").map(str::to_owned);
    if let Some(Err(e)) = status.as_deref().map(str::parse::<MessageStatus>) {
        q.errors.add(
            "status",
            format!("The selected status is invalid; use one of: {}.", e.allowed),
        );
    }
    let message_type = q.get("message_type").map(str::to_owned);
    if let Some(Err(e)) = message_type.as_deref().map(str::parse::<MessageType>) {
        q.errors.add(
            "message_type",
            format!(
                "The selected message type is invalid; use one of: {}.",
                e.allowed
            ),
        );
    }
    let recipient = match q
        .get("recipient")
        .map(|r| state.validation.phones.normalize(r))
    {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => {
            q.errors
                .add("recipient", "The recipient is not a valid phone number.");
            None
        }
    };
    let batch_id = q.get("batch_id").map(str::to_owned);
    if let Some(b) = &batch_id {
        if uuid::Uuid::parse_str(b).is_err() {
            q.errors.add("batch_id", "The batch id must be a UUID.");
        }
    }
    let created_from = date_bound(&mut q, "date_from", false, &state);
    let created_to = date_bound(&mut q, "date_to", true, &state);
    let mut filter = MessageFilter {
        device_id: None,
        session_id: q.get("session_id").map(str::to_owned),
        status,
        recipient,
        message_type,
        batch_id: batch_id.map(|b| b.to_ascii_lowercase()),
        created_from,
        created_to,
        trashed: q.trashed,
    };
    let checked = q.finish();
    let page = q.page;
    let paged = state
        .clone()
        .into_inner()
        .db_as(caller, move |c, principal| {
            checked?;
            filter.device_id = principal.device_scope();
            Ok(messages::list(c, &filter, sort, page)?)
        })
        .await?;
    let meta = q.meta(&req, state.public_url.as_deref(), paged.total);
    let list = paged
        .rows
        .into_iter()
        .map(|r| MessageView::new(r, BoolStyle::Int))
        .collect::<Vec<_>>();
    Ok(ok("", ListData { list, meta }))
}

/// `date_from` / `date_to`: `YYYY-MM-DD` (a whole day in the configured zone; `date_to` is
/// inclusive) or a date-time as `schedule_at` accepts.
fn date_bound(q: &mut ListQuery, key: &str, end: bool, state: &AppState) -> Option<NaiveDateTime> {
    let raw = q.get(key)?.to_owned();
    let zone = state.validation.timezone;
    let parsed = if raw.len() == 10 {
        chrono::NaiveDate::parse_from_str(&raw, "%Y-%m-%d")
            .ok()
            .and_then(|d| {
                use chrono::TimeZone;
                let d = if end { d.succ_opt()? } else { d };
                zone.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                    .earliest()
                    .map(|t| t.with_timezone(&chrono::Utc))
            })
    } else {
        wapim_domain::schedule::parse_schedule(&raw, CalendarType::Masehi, zone).ok()
    };
    match parsed {
        Some(t) => Some(t.naive_utc()),
        None => {
            q.errors.add(
                key,
                format!(
                    "The {} must be a date (YYYY-MM-DD) or a date-time.",
                    key.replace('_', " ")
                ),
            );
            None
        }
    }
}

/// `POST /messages`: stores one message as `pending`. Honours `Idempotency-Key`.
pub async fn create(
    state: State,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(payload, state.limits.max_body_bytes)
        .await
        .and_then(|body| Ok((idempotency::key_of(&req, &body)?, body)));
    let ctx = state.validation;
    let now = now_micros().naive_utc();
    let ttl = state.limits.idempotency_ttl;
    let stored = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            let (key, body) = body?;
            let map = as_object(&body)?;
            let input =
                validate_message(map, Mode::Full, None, &ctx).map_err(ApiError::Validation)?;
            let key = key.map(|k| k.scoped(&principal));
            idempotency::run(c, key.as_ref(), now, ttl, |c| {
                let device = resolve_device(c, &principal, input.session_id.as_deref())
                    .map_err(|m| ApiError::field("session_id", m))?;
                let row = messages::insert(c, &new_message(&device, None, &input.draft, now))?;
                Ok(ok_json(ADDED, MessageView::new(row, BoolStyle::Json)))
            })
        })
        .await?;
    Ok(stored.into_response())
}

/// The device a new message belongs to: the operator names it by `session_id`; a device may
/// name only itself (or nothing).
pub fn resolve_device(
    conn: &mut DbConn,
    principal: &Principal,
    session_id: Option<&str>,
) -> Result<DeviceRow, String> {
    match (principal, session_id) {
        (Principal::Device(own), None) => Ok((**own).clone()),
        (Principal::Device(own), Some(s)) if s == own.session_id => Ok((**own).clone()),
        (Principal::Device(_), Some(_)) => Err(UNKNOWN_SESSION.to_owned()),
        (Principal::Operator, None) => Err("The session id field is required.".to_owned()),
        (Principal::Operator, Some(s)) => match devices::find_live_by_session(conn, s) {
            Ok(Some(device)) => Ok(device),
            Ok(None) => Err(UNKNOWN_SESSION.to_owned()),
            Err(e) => Err(format!("The session could not be looked up: {e}")),
        },
    }
}

/// The row to insert for a validated message.
pub fn new_message(
    device: &DeviceRow,
    batch_id: Option<&str>,
    draft: &MessageDraft,
    now: NaiveDateTime,
) -> NewMessage {
    NewMessage {
        device_id: device.id,
        session_id: device.session_id.clone(),
        batch_id: batch_id.map(str::to_owned),
        fields: fields_of(draft),
        created_at: now,
        updated_at: now,
    }
}

fn fields_of(d: &MessageDraft) -> MessageFields {
    MessageFields {
        is_queue: d.is_queue,
        recipient: d.recipient.clone(),
        message_type: d.message_type.as_str().to_owned(),
        message: d.message.clone(),
        file_mimetype: d.file_mimetype.clone(),
        file_filename: d.file_filename.clone(),
        file_url: d.file_url.clone(),
        calendar_type: d.calendar_type.as_str().to_owned(),
        schedule_at: d.schedule_at.map(|t| t.naive_utc()),
    }
}

fn draft_of(row: &MessageRow) -> Result<MessageDraft, ApiError> {
    let bad = |what: &str| ApiError::Internal(format!("message {} has an unknown {what}", row.id));
    Ok(MessageDraft {
        is_queue: row.is_queue,
        recipient: row.recipient.clone(),
        message_type: row.message_type.parse().map_err(|_| bad("message_type"))?,
        message: row.message.clone(),
        file_url: row.file_url.clone(),
        file_mimetype: row.file_mimetype.clone(),
        file_filename: row.file_filename.clone(),
        calendar_type: row
            .calendar_type
            .parse()
            .map_err(|_| bad("calendar_type"))?,
        schedule_at: row.schedule_at.map(|t| t.and_utc()),
    })
}

/// `GET /messages/{id}`.
pub async fn show(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            Ok(messages::find(
                c,
                parse_id(&id)?,
                principal.device_scope(),
                false,
            )?)
        })
        .await?;
    Ok(ok("", MessageView::new(row, BoolStyle::Int)))
}

/// `PUT /messages/{id}`: replaces the content of a pending message.
pub async fn replace(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    update(state, caller, id, payload, Mode::Full).await
}

/// `PATCH /messages/{id}`: changes some fields of a pending message.
pub async fn patch(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    update(state, caller, id, payload, Mode::Patch).await
}

async fn update(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let body = read_object(payload, state.limits.max_body_bytes).await;
    let ctx = state.validation;
    let now = now_micros().naive_utc();
    let row = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            let id = parse_id(&id)?;
            let scope = principal.device_scope();
            let body = body?;
            wapim_store::transaction(c, |c| {
                let stored = messages::find(c, id, scope, false)?;
                let status: MessageStatus = stored.status.parse().map_err(|_| {
                    ApiError::Internal(format!("message {id} has an unknown status"))
                })?;
                if !status.is_editable() {
                    return Err(ApiError::field(
                        "status",
                        format!("The message is {status} and can no longer be edited."),
                    ));
                }
                let MessageInput { session_id, draft } =
                    validate_message(&body, mode, Some(&draft_of(&stored)?), &ctx)
                        .map_err(ApiError::Validation)?;
                if session_id
                    .as_deref()
                    .is_some_and(|s| s != stored.session_id)
                {
                    let mut errors = ValidationErrors::new();
                    errors.add(
                        "session_id",
                        "A message cannot be moved to another session.",
                    );
                    return Err(ApiError::Validation(errors));
                }
                Ok(messages::update_pending(
                    c,
                    id,
                    scope,
                    &fields_of(&draft),
                    now,
                )?)
            })
        })
        .await?;
    Ok(ok(MODIFIED, MessageView::new(row, BoolStyle::Int)))
}

/// `DELETE /messages/{id}`: soft delete; a pending message is cancelled and never sent.
pub async fn delete(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let now = now_micros().naive_utc();
    let row = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            Ok(messages::soft_delete(
                c,
                parse_id(&id)?,
                principal.device_scope(),
                now,
            )?)
        })
        .await?;
    Ok(ok(DELETED, MessageView::new(row, BoolStyle::Int)))
}

/// `POST /messages/{id}/restore`: undoes a delete (a cancelled message is pending again).
pub async fn restore(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let now = now_micros().naive_utc();
    let row = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            Ok(messages::restore(
                c,
                parse_id(&id)?,
                principal.device_scope(),
                now,
            )?)
        })
        .await?;
    Ok(ok(RESTORED, MessageView::new(row, BoolStyle::Int)))
}

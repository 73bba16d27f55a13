//! `/api/messages`: store, list, edit, cancel and restore messages.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use wapim_app::messages as use_case;
use wapim_domain::message::{is_immediate_send, validate_message};
use wapim_domain::time::now_micros;
use wapim_domain::validation::Mode;
use wapim_domain::{CalendarType, HoldReason, MessageStatus, MessageType};
use wapim_store::messages::{MessageFilter, MessageSortColumn};
use wapim_telemetry::TraceContext;
use wapim_web::body::{as_object, read_json, read_object};
use wapim_web::envelope::{ok, ok_json, ADDED, DELETED, MODIFIED, RESTORED};
use wapim_web::ApiError;

use crate::auth::Authenticated;
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

/// `GET /messages`: a page of messages (a device sees only its own).
#[utoipa::path(
    get,
    path = "/api/messages",
    operation_id = "messages_list",
    tag = "messages",
    summary = "List messages (a device sees its own).",
    params(
        crate::openapi::ListParams,
        crate::openapi::MessageFilters,
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::listing::ListData<crate::views::MessageView>>),
        crate::openapi::E401,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn list(
    state: State,
    Authenticated(actor): Authenticated,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut q = ListQuery::parse(&req);
    let sort = q.sort(SORTS, MessageSortColumn::Id);
    let status = match q.get("status").map(str::parse::<MessageStatus>) {
        Some(Err(e)) => {
            q.errors.add(
                "status",
                format!("The selected status is invalid; use one of: {}.", e.allowed),
            );
            None
        }
        other => other.and_then(Result::ok),
    };
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
    let filter = MessageFilter {
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
    q.finish()?;
    let page = q.page;
    let paged = state
        .db
        .run(move |c| use_case::list(c, &actor, filter, sort, page))
        .await?;
    let meta = q.meta(&req, &state.links, paged.total);
    let list = paged
        .rows
        .into_iter()
        .map(|r| MessageView::new(r, BoolStyle::Int))
        .collect::<Vec<_>>();
    Ok(ok("", ListData { list, meta }))
}

/// `date_from` / `date_to`: `YYYY-MM-DD` (a whole day in the configured zone; `date_to` is
/// inclusive) or a date-time as `schedule_at` accepts.
/// A `date_from`/`date_to` value as a UTC bound: `YYYY-MM-DD` is the start of that day in `zone`
/// (with `end`, of the next day: the day is included), anything else a date-time.
pub(crate) fn date_filter_bound(
    raw: &str,
    end: bool,
    zone: wapim_domain::Tz,
) -> Option<NaiveDateTime> {
    let parsed = if raw.len() == 10 {
        chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .ok()
            .and_then(|d| {
                use chrono::TimeZone;
                let d = if end { d.succ_opt()? } else { d };
                zone.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
                    .earliest()
                    .map(|t| t.with_timezone(&chrono::Utc))
            })
    } else {
        wapim_domain::schedule::parse_schedule(raw, CalendarType::Masehi, zone).ok()
    };
    parsed.map(|t| t.naive_utc())
}

pub(crate) fn date_bound(
    q: &mut ListQuery,
    key: &str,
    end: bool,
    state: &AppState,
) -> Option<NaiveDateTime> {
    let raw = q.get(key)?.to_owned();
    match date_filter_bound(&raw, end, state.validation.timezone) {
        Some(t) => Some(t),
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
#[utoipa::path(
    post,
    path = "/api/messages",
    operation_id = "messages_create",
    tag = "messages",
    summary = "Send a message now, later, or by a Hijri date.",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe: the same request within 24 h returns the first answer."),
        ("traceparent" = Option<String>, Header, description = "W3C trace context the send continues."),
    ),
    request_body = crate::openapi::MessageBody,
    responses(
        (status = 200, description = "Accepted (or, for an immediate send, sent).", body = crate::openapi::Envelope<crate::views::MessageView>),
        crate::openapi::E400,
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E413,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn create(
    state: State,
    Authenticated(actor): Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(payload, state.limits.max_body_bytes).await?;
    let key = idempotency::key_of(&req, &body)?.map(|k| k.scoped(&actor));
    let input = validate_message(as_object(&body)?, Mode::Full, None, &state.validation)
        .map_err(ApiError::Validation)?;
    let now = now_micros().naive_utc();
    let trace = TraceContext::current();
    let ttl = state.limits.idempotency_ttl;
    let immediate = is_immediate_send(
        input.draft.is_queue,
        input.draft.schedule_at.map(|at| at.naive_utc()),
        now,
    );
    // The common case, a device posting its own message without an Idempotency-Key, needs
    // nothing read first: it is written together with concurrent ones (group commit).
    if key.is_none() {
        let traceparent = trace.as_ref().map(TraceContext::traceparent);
        if let Some(new) = use_case::prepare_own(&actor, &input, now, traceparent) {
            let mut row = state.intake.insert(new).await?;
            if immediate {
                row = wait_for_outcome(&state, actor, row.id).await?;
            }
            return Ok(ok(ADDED, MessageView::new(row, BoolStyle::Json)));
        }
    }
    let scope = actor.clone();
    let stored = state
        .db
        .run(move |c| {
            idempotency::run(c, key.as_ref(), now, ttl, |c| {
                let row = use_case::accept(
                    c,
                    &actor,
                    &input,
                    now,
                    trace.as_ref().map(TraceContext::traceparent),
                )?;
                Ok(ok_json(ADDED, MessageView::new(row, BoolStyle::Json)))
            })
        })
        .await?;
    if immediate && !stored.replayed {
        if let Some(id) = stored.body["data"]["id"].as_i64() {
            let row = wait_for_outcome(&state, scope, id).await?;
            return Ok(ok(ADDED, MessageView::new(row, BoolStyle::Json)));
        }
    }
    Ok(stored.into_response())
}

/// An immediate send (`is_queue: false`) answers with the send's outcome: the message as it
/// is once it left `pending`/`processing`, or as it is when the configured wait runs out (it
/// then goes on through the queue), or at once when its device's limits or pause hold it. The
/// queue carries it like any other message; only the answer waits.
async fn wait_for_outcome(
    state: &State,
    actor: wapim_app::Actor,
    id: i64,
) -> Result<wapim_store::messages::MessageRow, ApiError> {
    let deadline = std::time::Instant::now() + state.limits.immediate_send_timeout;
    loop {
        let who = actor.clone();
        let row = state.db.run(move |c| use_case::show(c, &who, id)).await?;
        // Held by its device's limits or pause (anything but a retry's backoff): it will not go
        // within this request, so the answer says so at once (`hold_reason`).
        let held = row.status == MessageStatus::Pending
            && row
                .hold_reason
                .as_deref()
                .is_some_and(|r| r != HoldReason::Retry.as_str());
        let settled = held
            || !matches!(
                row.status,
                MessageStatus::Pending | MessageStatus::Processing
            );
        if settled || std::time::Instant::now() >= deadline {
            return Ok(row);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `GET /messages/{id}`.
#[utoipa::path(
    get,
    path = "/api/messages/{id}",
    operation_id = "messages_show",
    tag = "messages",
    summary = "Read a message.",
    params(
        ("id" = i64, Path, description = "The message's id."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::MessageView>),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E503,
    )
)]
pub async fn show(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let (row, attempts) = state
        .db
        .run(move |c| use_case::show_with_attempts(c, &actor, id, ATTEMPTS_SHOWN))
        .await?;
    Ok(ok(
        "",
        MessageView::new(row, BoolStyle::Int).with_attempts(attempts),
    ))
}

/// How many of a message's newest send attempts its read shows.
pub(crate) const ATTEMPTS_SHOWN: i64 = 50;

/// `PUT /messages/{id}`: replaces the content of a pending message.
#[utoipa::path(
    put,
    path = "/api/messages/{id}",
    operation_id = "messages_replace",
    tag = "messages",
    summary = "Replace a pending message.",
    params(
        ("id" = i64, Path, description = "The message's id."),
    ),
    request_body = crate::openapi::MessageBody,
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::MessageView>),
        crate::openapi::E400,
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E413,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn replace(
    state: State,
    auth: Authenticated,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    update(state, auth, id, payload, Mode::Full).await
}

/// `PATCH /messages/{id}`: changes some fields of a pending message.
#[utoipa::path(
    patch,
    path = "/api/messages/{id}",
    operation_id = "messages_patch",
    tag = "messages",
    summary = "Change the fields present of a pending message.",
    params(
        ("id" = i64, Path, description = "The message's id."),
    ),
    request_body = crate::openapi::MessageBody,
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::MessageView>),
        crate::openapi::E400,
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E413,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn patch(
    state: State,
    auth: Authenticated,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    update(state, auth, id, payload, Mode::Patch).await
}

async fn update(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
    payload: web::Payload,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let body = read_object(payload, state.limits.max_body_bytes).await?;
    let ctx = state.validation;
    let now = now_micros().naive_utc();
    let row = state
        .db
        .run(move |c| use_case::edit(c, &actor, id, &body, mode, &ctx, now))
        .await?;
    Ok(ok(MODIFIED, MessageView::new(row, BoolStyle::Int)))
}

/// `DELETE /messages/{id}`: soft delete; a pending message is cancelled and never sent; one
/// being sent is a 409.
#[utoipa::path(
    delete,
    path = "/api/messages/{id}",
    operation_id = "messages_delete",
    tag = "messages",
    summary = "Soft-delete (a pending message is cancelled).",
    params(
        ("id" = i64, Path, description = "The message's id."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::MessageView>),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E503,
    )
)]
pub async fn delete(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = now_micros().naive_utc();
    let row = state
        .db
        .run(move |c| use_case::delete(c, &actor, id, now))
        .await?;
    Ok(ok(DELETED, MessageView::new(row, BoolStyle::Int)))
}

/// `POST /messages/{id}/restore`: undoes a delete (what the delete cancelled is pending again);
/// 409 while the message's device is deleted.
#[utoipa::path(
    post,
    path = "/api/messages/{id}/restore",
    operation_id = "messages_restore",
    tag = "messages",
    summary = "Undo a delete.",
    params(
        ("id" = i64, Path, description = "The message's id."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::MessageView>),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E503,
    )
)]
pub async fn restore(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = now_micros().naive_utc();
    let row = state
        .db
        .run(move |c| use_case::restore(c, &actor, id, now))
        .await?;
    Ok(ok(RESTORED, MessageView::new(row, BoolStyle::Int)))
}

/// `POST /messages/{id}/resend`: a `failed` message goes back to `pending` (same record, new
/// attempts); any other status is a 422.
#[utoipa::path(
    post,
    path = "/api/messages/{id}/resend",
    operation_id = "messages_resend",
    tag = "messages",
    summary = "Send a failed message again.",
    params(
        ("id" = i64, Path, description = "The message's id."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::MessageView>),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn resend(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = now_micros().naive_utc();
    let row = state
        .db
        .run(move |c| use_case::resend(c, &actor, id, now))
        .await?;
    Ok(ok(MODIFIED, MessageView::new(row, BoolStyle::Int)))
}

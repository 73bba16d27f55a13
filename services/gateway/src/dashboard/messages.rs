//! Messages: the list with the API's filters and a send form, each message's timeline
//! (accepted → sent → delivered → read, or where it stopped, with WAHA's answer), and batches'
//! progress.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde_json::{Map, Value};
use wapim_app::messages as use_case;
use wapim_domain::message::validate_message;
use wapim_domain::time::now_micros;
use wapim_domain::validation::Mode;
use wapim_domain::{MessageStatus, MessageType};
use wapim_store::devices::{DeviceFilter, DeviceSortColumn};
use wapim_store::listing::Sort;
use wapim_store::messages::{MessageFilter, MessageRow, MessageSortColumn};
use wapim_store::Page;
use wapim_web::ApiError;

use super::{
    action, chip, csrf_field, flash_of, layout, ok_page, page_of, page_response, pager, poll_value,
    problems, redirect, when, DashError, Viewer,
};
use crate::state::State;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/messages", web::get().to(list))
        .route("/messages", web::post().to(send))
        .route("/messages/{id}", web::get().to(show))
        .route("/messages/{id}/state.json", web::get().to(state_json))
        .route("/messages/{id}/{action}", web::post().to(act))
        .route("/batches", web::get().to(batches));
}

type Query = web::Query<HashMap<String, String>>;
type Form = web::Form<HashMap<String, String>>;

const PAGE_SIZE: i64 = 25;

/// The devices the viewer may send from: (id, name, session id).
async fn devices_of(
    state: &State,
    viewer: &Viewer,
) -> Result<Vec<(i64, String, String)>, DashError> {
    let actor = viewer.actor.clone();
    let paged = state
        .db
        .run(move |c| {
            wapim_app::devices::list(
                c,
                &actor,
                DeviceFilter::default(),
                Sort {
                    column: DeviceSortColumn::Name,
                    descending: false,
                },
                Page::numbered(1, 100),
            )
        })
        .await?;
    Ok(paged
        .rows
        .into_iter()
        .map(|d| (d.id, d.name, d.session_id))
        .collect())
}

async fn list(state: State, viewer: Viewer, q: Query) -> Result<HttpResponse, DashError> {
    let body = list_body(&state, &viewer, &q, None, None).await?;
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/messages",
        "Messages",
        flash_of(&q),
        body,
    )))
}

async fn list_body(
    state: &State,
    viewer: &Viewer,
    q: &HashMap<String, String>,
    error: Option<&ApiError>,
    entered: Option<&HashMap<String, String>>,
) -> Result<Markup, DashError> {
    let page = page_of(q);
    let get = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let status = get("status").and_then(|s| s.parse::<MessageStatus>().ok());
    let recipient = get("recipient").and_then(|r| state.validation.phones.normalize(&r).ok());
    let device_id = get("device_id").and_then(|d| d.parse::<i64>().ok());
    let batch_id = get("batch_id").filter(|b| uuid::Uuid::parse_str(b).is_ok());
    let devices = devices_of(state, viewer).await?;
    // The operator's device filter is by session (the use case scopes `device_id` to the
    // caller); a device always sees only its own.
    let session_id = device_id
        .filter(|_| viewer.is_operator())
        .and_then(|d| devices.iter().find(|(id, _, _)| *id == d))
        .map(|(_, _, s)| s.clone());
    let zone = state.validation.timezone;
    let bound = |key: &str, end: bool| {
        get(key).and_then(|raw| crate::routes::messages::date_filter_bound(&raw, end, zone))
    };
    let filter = MessageFilter {
        session_id,
        status,
        recipient,
        message_type: get("message_type").filter(|t| t.parse::<MessageType>().is_ok()),
        batch_id: batch_id.clone(),
        created_from: bound("date_from", false),
        created_to: bound("date_to", true),
        ..MessageFilter::default()
    };
    let actor = viewer.actor.clone();
    let paged = state
        .db
        .run(move |c| {
            use_case::list(
                c,
                &actor,
                filter,
                Sort {
                    column: MessageSortColumn::Id,
                    descending: true,
                },
                Page::numbered(page, PAGE_SIZE),
            )
        })
        .await?;
    let value = |name: &str| {
        entered
            .and_then(|e| e.get(name))
            .cloned()
            .unwrap_or_default()
    };
    let chosen = |name: &str| get(name).unwrap_or_default();
    let mut base = String::from("/dashboard/messages?");
    for key in [
        "status",
        "recipient",
        "device_id",
        "batch_id",
        "message_type",
        "date_from",
        "date_to",
    ] {
        if let Some(v) = get(key) {
            base.push_str(key);
            base.push('=');
            base.extend(url::form_urlencoded::byte_serialize(v.as_bytes()));
            base.push('&');
        }
    }
    let base = base.trim_end_matches(['&', '?']).to_owned();
    Ok(html! {
        h1 { "Messages" }
        h2 { "Send a text" }
        (problems(error))
        @if devices.is_empty() {
            p { "Create and pair a device first: " a href="/dashboard/devices" { "Devices" } "." }
        } @else {
            form #send-message .stack method="post" action="/dashboard/messages" {
                (csrf_field(viewer))
                @if viewer.is_operator() {
                    label { "From device"
                        select name="device_id" required {
                            @for (id, name, session) in &devices {
                                option value=(id) selected[value("device_id") == id.to_string()] { (name) " (" (session) ")" }
                            }
                        }
                    }
                }
                label { "To (phone number)" input type="tel" name="recipient" required maxlength="64" value=(value("recipient")) placeholder="0811…"; }
                label { "Text" textarea name="message" required maxlength="4096" { (value("message")) } }
                label { "Send at (optional, " (state.validation.timezone.name()) ")" input type="datetime-local" name="schedule_at" value=(value("schedule_at")); }
                button #send-message-submit type="submit" { "Send" }
            }
        }
        h2 { "Sent and queued" }
        form #filter-messages .inline method="get" action="/dashboard/messages" {
            label { "Status" select name="status" {
                option value="" { "any" }
                @for s in MessageStatus::ALL { option value=(s.as_str()) selected[chosen("status") == s.as_str()] { (s.as_str()) } }
            } }
            @if viewer.is_operator() {
                label { "Device" select name="device_id" {
                    option value="" { "any" }
                    @for (id, name, _) in &devices { option value=(id) selected[chosen("device_id") == id.to_string()] { (name) } }
                } }
            }
            label { "Type" select name="message_type" {
                option value="" { "any" }
                @for t in MessageType::ALL { option value=(t.as_str()) selected[chosen("message_type") == t.as_str()] { (t.as_str()) } }
            } }
            label { "Recipient" input type="tel" name="recipient" value=(chosen("recipient")); }
            label { "From" input type="date" name="date_from" value=(chosen("date_from")); }
            label { "To" input type="date" name="date_to" value=(chosen("date_to")); }
            @if let Some(b) = &batch_id { input type="hidden" name="batch_id" value=(b); }
            button.secondary type="submit" { "Filter" }
        }
        @if paged.rows.is_empty() {
            p.muted { "No message matches." }
        } @else {
            div.table-wrap {
                table #messages {
                    thead { tr { th { "#" } th { "To" } th.hide-sm { "Device" } th { "Status" } th.hide-sm { "Text" } th.hide-sm { "Accepted" } } }
                    tbody {
                        @for m in &paged.rows {
                            tr data-message-id=(m.id) {
                                td { a href={ "/dashboard/messages/" (m.id) } { (m.id) } }
                                td.mono { (m.recipient) }
                                td.hide-sm.mono { (m.session_id) }
                                td.status { (chip(m.status.as_str())) }
                                td.hide-sm { (excerpt(m.message.as_deref())) }
                                td.hide-sm { (when(Some(m.created_at))) }
                            }
                        }
                    }
                }
            }
            (pager(&base, page, paged.total, PAGE_SIZE))
        }
    })
}

fn excerpt(text: Option<&str>) -> String {
    let text = text.unwrap_or("");
    let mut out: String = text.chars().take(60).collect();
    if text.chars().count() > 60 {
        out.push('…');
    }
    out
}

async fn send(state: State, viewer: Viewer, form: Form) -> Result<HttpResponse, DashError> {
    viewer.check_csrf(&state, form.get("csrf"))?;
    let mut body = Map::new();
    body.insert("message_type".into(), Value::from("text"));
    for field in ["recipient", "message"] {
        if let Some(v) = form.get(field).filter(|v| !v.trim().is_empty()) {
            body.insert(field.to_owned(), Value::from(v.as_str()));
        }
    }
    if let Some(at) = form
        .get("schedule_at")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        // `datetime-local` gives `YYYY-MM-DDTHH:MM`: the API's local form is with a space.
        body.insert("schedule_at".into(), Value::from(at.replacen('T', " ", 1)));
    }
    if viewer.is_operator() {
        let chosen = form.get("device_id").and_then(|d| d.parse::<i64>().ok());
        let session = devices_of(&state, &viewer)
            .await?
            .into_iter()
            .find(|(id, _, _)| Some(*id) == chosen)
            .map(|(_, _, s)| s);
        match session {
            Some(s) => {
                body.insert("session_id".into(), Value::from(s));
            }
            None => {
                let e = ApiError::field("device_id", "Choose a device.");
                return refused(&state, &viewer, e, &form).await;
            }
        }
    }
    let input = match validate_message(&body, Mode::Full, None, &state.validation) {
        Ok(input) => input,
        Err(errors) => return refused(&state, &viewer, ApiError::Validation(errors), &form).await,
    };
    let actor = viewer.actor.clone();
    let now = now_micros().naive_utc();
    let trace = wapim_telemetry::TraceContext::current();
    let stored = state
        .db
        .run(move |c| {
            use_case::accept(
                c,
                &actor,
                &input,
                now,
                trace
                    .as_ref()
                    .map(wapim_telemetry::TraceContext::traceparent),
            )
        })
        .await;
    match stored {
        Ok(row) => Ok(redirect(&format!(
            "/dashboard/messages/{}?done=sent",
            row.id
        ))),
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(..))) => {
            refused(&state, &viewer, e, &form).await
        }
        Err(e) => Err(e.into()),
    }
}

async fn refused(
    state: &State,
    viewer: &Viewer,
    e: ApiError,
    form: &HashMap<String, String>,
) -> Result<HttpResponse, DashError> {
    let body = list_body(state, viewer, &HashMap::new(), Some(&e), Some(form)).await?;
    Ok(page_response(
        actix_web::ResponseError::status_code(&e),
        layout(viewer, "/dashboard/messages", "Messages", None, body),
    ))
}

/// Whether a message will not move any more by itself.
fn settled(status: MessageStatus) -> bool {
    matches!(
        status,
        MessageStatus::Read | MessageStatus::Failed | MessageStatus::Cancelled
    )
}

fn timeline(m: &MessageRow) -> Markup {
    let failed = m.status == MessageStatus::Failed;
    let cancelled = m.status == MessageStatus::Cancelled;
    // Queued: handed to the broker (kept until the message is owed again); a sent message was.
    let queued = m.published_at.or(m.sent_at);
    let steps: [(&str, &str, Option<chrono::NaiveDateTime>); 5] = [
        ("accepted", "Accepted", Some(m.created_at)),
        ("queued", "Queued for sending", queued),
        ("sent", "Sent to WhatsApp", m.sent_at),
        ("delivered", "Delivered to the phone", m.delivered_at),
        ("read", "Read", m.read_at),
    ];
    html! {
        ol #timeline .timeline {
            @for (step, label, at) in steps {
                li data-step=(step) data-done=(at.is_some()) {
                    strong { (label) } " " (when(at))
                    @if step == "accepted" {
                        @match m.schedule_at { Some(s) => { br; span.muted { "scheduled for " (when(Some(s))) } }, None => {} }
                    }
                }
            }
            @if failed { li.bad data-step="failed" data-done="true" { strong { "Failed" } " " (when(m.status_updated_at)) } }
            @if cancelled { li.bad data-step="cancelled" data-done="true" { strong { "Cancelled" } " " (when(m.status_updated_at)) } }
        }
    }
}

async fn show(
    state: State,
    viewer: Viewer,
    id: web::Path<String>,
    q: Query,
) -> Result<HttpResponse, DashError> {
    let id = crate::routes::parse_id(&id)?;
    let actor = viewer.actor.clone();
    let shown = crate::routes::messages::ATTEMPTS_SHOWN;
    let (m, attempts) = state
        .db
        .run(move |c| use_case::show_with_attempts(c, &actor, id, shown))
        .await?;
    let pretty = m.api_response.as_deref().map(|r| {
        serde_json::from_str::<Value>(r)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| r.to_owned())
    });
    let body = html! {
        h1 { "Message " (m.id) " " span #message-status { (chip(m.status.as_str())) } }
        @if !settled(m.status) {
            div data-poll={ "/dashboard/messages/" (m.id) "/state.json" } data-poll-value=(revision_value(&m)) data-poll-every="1000" {}
        }
        (timeline(&m))
        @if let (MessageStatus::Pending, Some(reason)) = (m.status, &m.hold_reason) {
            p.notice role="status" { "Waiting: " code { (reason) } " (see docs/api.md, hold_reason)." }
        }
        h2 { "Details" }
        dl.facts {
            dt { "To" } dd.mono { (m.recipient) }
            dt { "From" } dd { a.mono href={ "/dashboard/devices/" (m.device_id) } { (m.session_id) } }
            dt { "Type" } dd { (m.message_type) }
            dt { "Text" } dd { (m.message.clone().unwrap_or_default()) }
            @if let Some(url) = &m.file_url { dt { "File" } dd.mono { (url) } }
            dt { "Attempts" } dd { (m.attempts) }
            dt { "WhatsApp id" } dd.mono { (m.provider_message_id.clone().unwrap_or_else(|| "—".into())) }
            dt { "Origin" } dd { (m.origin) }
            @if let Some(b) = &m.batch_id { dt { "Batch" } dd { a.mono href={ "/dashboard/messages?batch_id=" (b) } { (b) } } }
        }
        h2 { "Attempts" }
        @if attempts.is_empty() {
            p.muted { "Not claimed for sending yet." }
        } @else {
            div.table-wrap {
                table #attempts {
                    thead { tr { th { "When" } th.num { "Attempt" } th { "Outcome" } th { "WAHA's answer" } } }
                    tbody {
                        @for a in &attempts {
                            tr data-outcome=(a.outcome) {
                                td {
                                    (when(Some(a.first_at)))
                                    @if a.repeats > 1 { br; span.muted { "×" (a.repeats) ", last " (when(Some(a.last_at))) } }
                                }
                                td.num { (a.attempt) }
                                td {
                                    (chip(match a.outcome.as_str() { "released" => "pending", o => o }))
                                    @if let Some(h) = &a.hold_reason { " " code { (h) } }
                                }
                                td { @if let Some(r) = &a.api_response { code { (r.chars().take(300).collect::<String>()) } } }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(r) = &pretty {
            h2 { "WAHA's last answer" }
            pre #api-response { (r) }
        }
        div.actions {
            @if m.status == MessageStatus::Failed {
                (action(&viewer, "action-resend", &format!("/dashboard/messages/{id}/resend"), "Send again", None))
            }
            @if m.status == MessageStatus::Pending && m.deleted_at.is_none() {
                (action(&viewer, "action-delete", &format!("/dashboard/messages/{id}/delete"), "Cancel", Some("Cancel this message?")))
            }
        }
    };
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/messages",
        &format!("Message {}", m.id),
        flash_of(&q),
        body,
    )))
}

/// What the message page shows changes with the status and any timestamp: the revision and
/// the filled timestamps together.
fn revision_value(m: &MessageRow) -> String {
    format!(
        "{}:{}:{}:{}:{}",
        m.status.as_str(),
        m.sent_at.is_some(),
        m.delivered_at.is_some(),
        m.read_at.is_some(),
        m.attempts
    )
}

async fn state_json(
    state: State,
    viewer: Viewer,
    id: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let id = crate::routes::parse_id(&id)?;
    let actor = viewer.actor.clone();
    let m = state.db.run(move |c| use_case::show(c, &actor, id)).await?;
    Ok(poll_value(revision_value(&m)))
}

async fn act(
    state: State,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, DashError> {
    viewer.check_csrf(&state, form.get("csrf"))?;
    let (id, what) = path.into_inner();
    let id = crate::routes::parse_id(&id)?;
    let actor = viewer.actor.clone();
    let now = now_micros().naive_utc();
    match what.as_str() {
        "resend" => {
            state
                .db
                .run(move |c| use_case::resend(c, &actor, id, now))
                .await?;
            Ok(redirect(&format!("/dashboard/messages/{id}?done=resent")))
        }
        "delete" => {
            state
                .db
                .run(move |c| use_case::delete(c, &actor, id, now))
                .await?;
            Ok(redirect(&format!("/dashboard/messages/{id}?done=deleted")))
        }
        _ => Err(ApiError::RouteNotFound.into()),
    }
}

async fn batches(state: State, viewer: Viewer) -> Result<HttpResponse, DashError> {
    let scope = viewer.actor.device_scope();
    let rows = state
        .db
        .run(move |c| wapim_store::messages::batch_progress(c, scope, 50))
        .await?;
    let body = html! {
        h1 { "Batches" }
        @if rows.is_empty() {
            p.muted { "No batch yet. Batches come from " code { "POST /api/messages-batch" } "." }
        } @else {
            div.table-wrap {
                table #batches {
                    thead { tr { th { "Batch" } th { "Started" } th.num { "Messages" } th { "Progress" } th.hide-sm { "By status" } } }
                    tbody {
                        @for b in &rows {
                            @let done = b.count_of(&[MessageStatus::Sent, MessageStatus::Delivered, MessageStatus::Read]);
                            tr data-batch-id=(b.batch_id) {
                                td { a.mono href={ "/dashboard/messages?batch_id=" (b.batch_id) } { (b.batch_id.chars().take(8).collect::<String>()) "…" } }
                                td { (when(Some(b.started_at))) }
                                td.num { (b.total) }
                                td { progress max=(b.total) value=(done) aria-label="sent" { (done) " of " (b.total) } " " (done) "/" (b.total) }
                                td.hide-sm {
                                    @for (status, n) in &b.by_status { (chip(status)) " " (n) " " }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/batches",
        "Batches",
        None,
        body,
    )))
}

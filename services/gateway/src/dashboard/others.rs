//! Inbound messages, the integrator's webhook deliveries (with their attempts, and replay), and
//! the queues (what waits to be handed to the broker, the oldest due, held and failed work).

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use maud::html;
use wapim_app::{inbox, webhook_deliveries as deliveries};
use wapim_domain::time::now_micros;
use wapim_domain::WebhookDeliveryStatus;
use wapim_store::inbound::InboundFilter;
use wapim_store::webhooks::DeliveryFilter;
use wapim_store::Page;
use wapim_web::ApiError;

use super::{
    action, chip, flash_of, layout, ok_page, page_of, pager, redirect, when, DashError, Viewer,
};
use crate::state::State;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/inbox", web::get().to(inbox_list))
        .route("/webhooks", web::get().to(webhook_list))
        .route("/webhooks/{id}", web::get().to(webhook_show))
        .route("/webhooks/{id}/replay", web::post().to(replay))
        .route("/queues", web::get().to(queues))
        .route(
            "/queues/replay-dead-letters",
            web::post().to(replay_dead_letters),
        );
}

type Query = web::Query<HashMap<String, String>>;
type Form = web::Form<HashMap<String, String>>;

const PAGE_SIZE: i64 = 25;

fn device_param(q: &HashMap<String, String>) -> Option<i64> {
    q.get("device_id")
        .and_then(|d| d.parse::<i64>().ok())
        .filter(|d| *d > 0)
}

async fn inbox_list(state: State, viewer: Viewer, q: Query) -> Result<HttpResponse, DashError> {
    let page = page_of(&q);
    let filter = InboundFilter {
        device_id: device_param(&q),
        ..InboundFilter::default()
    };
    let actor = viewer.actor.clone();
    let paged = state
        .db
        .run(move |c| inbox::list(c, &actor, filter, Page::numbered(page, PAGE_SIZE)))
        .await?;
    let base = match device_param(&q) {
        Some(d) => format!("/dashboard/inbox?device_id={d}"),
        None => "/dashboard/inbox".to_owned(),
    };
    let body = html! {
        h1 { "Inbox" }
        @if paged.rows.is_empty() {
            p.muted { "No message from a contact yet." }
        } @else {
            div.table-wrap {
                table #inbox {
                    thead { tr { th { "From" } th.hide-sm { "Device" } th { "Message" } th { "Sent" } } }
                    tbody {
                        @for m in &paged.rows {
                            tr data-inbound-id=(m.id) {
                                td.mono {
                                    @match &m.sender { Some(s) => { (s) }, None => { span.muted { (m.sender_lid.clone().unwrap_or_default()) } } }
                                    @if m.is_group { " " span.chip { "group" } }
                                }
                                td.hide-sm.mono { (m.session_id) }
                                td {
                                    (m.message.clone().unwrap_or_default())
                                    @if m.has_media { " " span.chip { (m.message_type) } }
                                }
                                td { (when(Some(m.sent_at))) }
                            }
                        }
                    }
                }
            }
            (pager(&base, page, paged.total, PAGE_SIZE))
        }
    };
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/inbox",
        "Inbox",
        None,
        body,
    )))
}

async fn webhook_list(state: State, viewer: Viewer, q: Query) -> Result<HttpResponse, DashError> {
    let page = page_of(&q);
    let status = q
        .get("status")
        .and_then(|s| s.parse::<WebhookDeliveryStatus>().ok());
    let filter = DeliveryFilter {
        device_id: device_param(&q),
        status,
        ..DeliveryFilter::default()
    };
    let actor = viewer.actor.clone();
    let paged = state
        .db
        .run(move |c| deliveries::list(c, &actor, filter, Page::numbered(page, PAGE_SIZE)))
        .await?;
    let chosen = q.get("status").cloned().unwrap_or_default();
    let body = html! {
        h1 { "Webhook deliveries" }
        p.muted { "Events sent to each device's webhook, signed (Standard Webhooks). Failed ones are retried for a day; replay sends one again now." }
        form .inline method="get" action="/dashboard/webhooks" {
            label { "Status" select name="status" {
                option value="" { "any" }
                @for s in WebhookDeliveryStatus::ALL { option value=(s.as_str()) selected[chosen == s.as_str()] { (s.as_str()) } }
            } }
            button.secondary type="submit" { "Filter" }
        }
        @if paged.rows.is_empty() {
            p.muted { "No delivery yet. Set a device's webhook URL to receive its events." }
        } @else {
            div.table-wrap {
                table #deliveries {
                    thead { tr { th { "#" } th { "Event" } th { "Status" } th.num { "Attempts" } th.hide-sm { "Last answer" } th.hide-sm { "Created" } th { "" } } }
                    tbody {
                        @for d in &paged.rows {
                            tr data-delivery-id=(d.id) {
                                td { a href={ "/dashboard/webhooks/" (d.id) } { (d.id) } }
                                td.mono { (d.event) }
                                td.status { (chip(&d.status)) }
                                td.num { (d.attempts) }
                                td.hide-sm {
                                    @if let Some(code) = d.last_status_code { "HTTP " (code) }
                                    @if let Some(e) = &d.last_error { " " span.error { (e.chars().take(80).collect::<String>()) } }
                                }
                                td.hide-sm { (when(Some(d.created_at))) }
                                td { (action(&viewer, "replay", &format!("/dashboard/webhooks/{}/replay", d.id), "Replay", None)) }
                            }
                        }
                    }
                }
            }
            (pager("/dashboard/webhooks", page, paged.total, PAGE_SIZE))
        }
    };
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/webhooks",
        "Webhook deliveries",
        flash_of(&q),
        body,
    )))
}

async fn webhook_show(
    state: State,
    viewer: Viewer,
    id: web::Path<String>,
    q: Query,
) -> Result<HttpResponse, DashError> {
    let id = crate::routes::parse_id(&id)?;
    let actor = viewer.actor.clone();
    let (d, attempts) = state
        .db
        .run(move |c| deliveries::show(c, &actor, id))
        .await?;
    let payload = serde_json::from_str::<serde_json::Value>(&d.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| d.payload.clone());
    let body = html! {
        h1 { "Delivery " (d.id) " " (chip(&d.status)) }
        dl.facts {
            dt { "Event" } dd.mono { (d.event) }
            dt { "webhook-id" } dd.mono { (d.webhook_id) }
            dt { "URL" } dd.mono { (d.url) }
            dt { "Device" } dd { a href={ "/dashboard/devices/" (d.device_id) } { "#" (d.device_id) } }
            dt { "Delivered" } dd { (when(d.delivered_at)) }
            dt { "Gives up at" } dd { (when(Some(d.give_up_at))) }
        }
        div.actions { (action(&viewer, "replay", &format!("/dashboard/webhooks/{}/replay", d.id), "Replay", None)) }
        h2 { "Attempts" }
        @if attempts.is_empty() { p.muted { "Not attempted yet." } } @else {
            div.table-wrap {
                table #attempts {
                    thead { tr { th { "When" } th { "Answer" } th.num { "ms" } th { "Body or error" } } }
                    tbody {
                        @for a in &attempts {
                            tr {
                                td { (when(Some(a.attempted_at))) }
                                td { @match a.status_code { Some(c) => { "HTTP " (c) }, None => { span.error { "no answer" } } } }
                                td.num { (a.duration_ms) }
                                td { @if let Some(e) = &a.error { span.error { (e) } } @if let Some(b) = &a.response_body { code { (b.chars().take(200).collect::<String>()) } } }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Payload" }
        pre { (payload) }
    };
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/webhooks",
        &format!("Delivery {}", d.id),
        flash_of(&q),
        body,
    )))
}

async fn replay(
    state: State,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, DashError> {
    viewer.check_csrf(&state, form.get("csrf"))?;
    let id = crate::routes::parse_id(&id)?;
    let actor = viewer.actor.clone();
    let now = now_micros().naive_utc();
    state
        .db
        .run(move |c| deliveries::replay(c, &actor, id, now))
        .await?;
    Ok(redirect("/dashboard/webhooks?done=replayed"))
}

/// Most dead letters one replay moves (the rest stay for the next).
const REPLAY_AT_MOST: usize = 1000;

async fn queues(state: State, viewer: Viewer, q: Query) -> Result<HttpResponse, DashError> {
    if !viewer.is_operator() {
        return Err(ApiError::Forbidden.into());
    }
    let now = now_micros().naive_utc();
    let g = state
        .db
        .run(move |c| wapim_store::dispatch::gauges(c, now))
        .await?;
    let dead = match &state.dead_letters {
        Some(d) => Some(d.count().await.map_err(|e| e.to_string())),
        None => None,
    };
    let body = html! {
        h1 { "Queues" }
        p.muted { "Work waiting to be handed to the broker (the hand-off rows), held work, paused devices, and jobs the broker gave up on (dead letters: a job that kept failing its consumers)." }
        h2 { "Dead letters" }
        @match &dead {
            None => { p.muted { "This process does not reach the broker's dead letters; " code { "dispatcher dlq-count" } " and " code { "dispatcher replay-dlq" } " do." } }
            Some(Err(e)) => { p.notice.error role="alert" { "The broker could not be asked: " (e) } }
            Some(Ok(n)) => {
                p { span.big #dead-letters { (n) } " job(s) in the dead-letter queue." }
                @if *n > 0 {
                    (action(&viewer, "replay-dead-letters", "/dashboard/queues/replay-dead-letters", "Move them back to the send queue", Some("Send these jobs again? Each is checked against its message first (nothing is sent twice).")))
                }
            }
        }
        div.cards #queue-cards {
            div.card { div.big #backlog-messages { (g.backlog_messages) } "messages due, not yet queued" }
            div.card { div.big #oldest-due { (g.oldest_due_age_secs) " s" } "the oldest due has waited" }
            div.card { div.big { (g.backlog_syncs) } "session syncs owed" }
            div.card { div.big { (g.backlog_deliveries) } "webhook deliveries owed" }
            div.card { div.big { (g.paused_devices) } "devices paused" }
        }
        h2 { "Held messages" }
        @if g.held.is_empty() { p.muted { "None." } } @else {
            table { thead { tr { th { "Reason" } th.num { "Messages" } } }
                tbody { @for (reason, n) in &g.held { tr { td { code { (reason) } } td.num { (n) } } } } }
        }
        p { a href="/dashboard/messages?status=failed" { "Failed messages" } " · "
            a href="/dashboard/webhooks?status=failed" { "Failed webhook deliveries" } }
    };
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/queues",
        "Queues",
        flash_of(&q),
        body,
    )))
}

async fn replay_dead_letters(
    state: State,
    viewer: Viewer,
    form: Form,
) -> Result<HttpResponse, DashError> {
    viewer.check_csrf(&state, form.get("csrf"))?;
    if !viewer.is_operator() {
        return Err(ApiError::Forbidden.into());
    }
    let Some(dead) = &state.dead_letters else {
        return Err(ApiError::RouteNotFound.into());
    };
    dead.replay(REPLAY_AT_MOST)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(redirect("/dashboard/queues?done=dlq-replayed"))
}

//! Devices: the list (and, for the operator, a create form), and each device's page with its
//! sending state, its actions (resume, resync, restart, log out) and pairing (QR code or pairing
//! code, followed until WAHA says the session is `working`).

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use base64::Engine;
use maud::{html, Markup};
use serde_json::{Map, Value};
use wapim_app::cache::ExpiringMap;
use wapim_app::devices as use_case;
use wapim_domain::device::validate_device;
use wapim_domain::time::now_micros;
use wapim_domain::validation::Mode;
use wapim_domain::ExposeSecret;
use wapim_store::devices::{DeviceFilter, DeviceRow, DeviceSortColumn};
use wapim_store::listing::Sort;
use wapim_store::Page;
use wapim_waha::AccountCall;
use wapim_web::ApiError;

use super::{
    action, chip, csrf_field, flash_of, layout, ok_page, page_of, pager, poll_value, problems,
    redirect, trusted, when, DashError, Viewer,
};
use crate::routes::pairing::{pairing_state, Pairing};
use crate::state::State;

/// Secrets of a just-created device, shown once on its page after the redirect.
struct Reveals(ExpiringMap<String, (i64, String, Option<String>)>);

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::Data::new(Reveals(ExpiringMap::new(
        Duration::from_secs(300),
    ))))
    .route("/devices", web::get().to(list))
    .route("/devices", web::post().to(create))
    .route("/devices/{id}", web::get().to(show))
    .route("/devices/{id}/state.json", web::get().to(state_json))
    .route("/devices/{id}/{action}", web::post().to(act));
}

type Query = web::Query<HashMap<String, String>>;
type Form = web::Form<HashMap<String, String>>;

const PAGE_SIZE: i64 = 25;

fn id_of(raw: &str) -> Result<i64, DashError> {
    Ok(crate::routes::parse_id(raw)?)
}

async fn list(state: State, viewer: Viewer, q: Query) -> Result<HttpResponse, DashError> {
    let page = page_of(&q);
    let (flash, body) = (
        flash_of(&q),
        list_body(&state, &viewer, page, None, None).await?,
    );
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/devices",
        "Devices",
        flash,
        body,
    )))
}

async fn list_body(
    state: &State,
    viewer: &Viewer,
    page: i64,
    error: Option<&ApiError>,
    entered: Option<&HashMap<String, String>>,
) -> Result<Markup, DashError> {
    let actor = viewer.actor.clone();
    let paged = state
        .db
        .run(move |c| {
            use_case::list(
                c,
                &actor,
                DeviceFilter::default(),
                Sort {
                    column: DeviceSortColumn::Id,
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
    Ok(html! {
        h1 { "Devices" }
        @if paged.rows.is_empty() {
            p { "No device yet." @if viewer.is_operator() { " Create one below, then pair it with a phone." } }
        } @else {
            div.table-wrap {
                table #devices {
                    thead { tr {
                        th { "Name" } th { "Session" } th.hide-sm { "Phone" } th { "Status" }
                        th.hide-sm { "WAHA server" } th.hide-sm { "Paused until" }
                    } }
                    tbody {
                        @for d in &paged.rows {
                            tr data-device-id=(d.id) {
                                td { a href={ "/dashboard/devices/" (d.id) } { (d.name) } }
                                td.mono { (d.session_id) }
                                td.hide-sm.mono { (d.phone_number) }
                                td.status { (chip(d.status.as_str())) }
                                td.hide-sm { @match d.waha_server_id { Some(s) => { "#" (s) }, None => { "default" } } }
                                td.hide-sm { (when(d.paused_until)) }
                            }
                        }
                    }
                }
            }
            (pager("/dashboard/devices", page, paged.total, PAGE_SIZE))
        }
        @if viewer.is_operator() {
            h2 #create { "Create a device" }
            (problems(error))
            form #create-device .stack method="post" action="/dashboard/devices" {
                (csrf_field(viewer))
                label { "Name" input type="text" name="name" required maxlength="255" value=(value("name")) placeholder="Shop front"; }
                label { "Phone number" input type="tel" name="phone_number" required maxlength="64" value=(value("phone_number")) placeholder="0811…"; }
                label { "Webhook URL (optional)" input type="url" name="webhook_url" value=(value("webhook_url")) placeholder="https://example.com/wapim"; }
                button #create-device-submit type="submit" { "Create" }
            }
        }
    })
}

async fn create(
    state: State,
    viewer: Viewer,
    reveals: web::Data<Reveals>,
    form: Form,
) -> Result<HttpResponse, DashError> {
    viewer.check_csrf(&state, form.get("csrf"))?;
    let mut body = Map::new();
    for field in ["name", "phone_number", "webhook_url"] {
        if let Some(v) = form.get(field).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            body.insert(field.to_owned(), Value::from(v));
        }
    }
    if body.contains_key("webhook_url") {
        body.insert("webhook_status".into(), Value::Bool(true));
    }
    let made = match validate_device(&body, Mode::Full, None, &state.validation) {
        Err(errors) => Err(ApiError::Validation(errors)),
        Ok(input) => {
            let actor = viewer.actor.clone();
            let now = now_micros().naive_utc();
            state
                .db
                .run(move |c| use_case::register(c, &actor, &input, now))
                .await
        }
    };
    match made {
        Ok(made) => {
            let id = made.row.id;
            let reveal = wapim_domain::token::generate_secret_token();
            reveals.0.put(
                reveal.clone(),
                (
                    id,
                    made.new_token
                        .map(|t| t.expose_secret().to_owned())
                        .unwrap_or_default(),
                    made.new_webhook_secret,
                ),
            );
            Ok(redirect(&format!(
                "/dashboard/devices/{id}?done=created&reveal={reveal}"
            )))
        }
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(..))) => {
            let body = list_body(&state, &viewer, 1, Some(&e), Some(&form)).await?;
            Ok(super::page_response(
                actix_web::ResponseError::status_code(&e),
                layout(&viewer, "/dashboard/devices", "Devices", None, body),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

fn facts(d: &DeviceRow) -> Markup {
    html! {
        dl.facts {
            dt { "Session id" } dd.mono #device-session-id { (d.session_id) }
            dt { "Phone" } dd.mono { (d.phone_number) }
            dt { "Status" } dd #device-status { (d.status.as_str()) }
            dt { "WAHA server" } dd { @match d.waha_server_id { Some(s) => { "#" (s) }, None => { "default" } } }
            dt { "Secret token" } dd.mono { (d.secret_token_masked) }
            dt { "Webhook" } dd { @if d.webhook_status { code { (d.webhook_url.clone().unwrap_or_default()) } } @else { span.muted { "off" } } }
            dt { "WAHA synced" } dd { (when(d.session_synced_at)) }
            @if let Some(e) = &d.session_sync_error { dt { "Sync error" } dd.error { (e) } }
            dt { "Created" } dd { (when(Some(d.created_at))) }
        }
    }
}

async fn show(
    state: State,
    viewer: Viewer,
    id: web::Path<String>,
    q: Query,
    reveals: web::Data<Reveals>,
) -> Result<HttpResponse, DashError> {
    let id = id_of(&id)?;
    let actor = viewer.actor.clone();
    let defaults = state.safety;
    let now = now_micros().naive_utc();
    let (row, sending) = state
        .db
        .run(move |c| use_case::show_with_sending_state(c, &actor, id, &defaults, now))
        .await?;
    let revealed = q
        .get("reveal")
        .and_then(|r| {
            let found = reveals.0.get(r.as_str());
            reveals.0.remove(r.as_str());
            found
        })
        .filter(|(device, _, _)| *device == id);
    if let Some((_, token, webhook_secret)) = &revealed {
        // Its own page, which never reloads by itself: the secrets are shown this once.
        let body = html! {
            h1 { (row.name) " is created" }
            div.secret role="status" {
                p { strong { "Copy these now: they are not shown again." } }
                dl.facts {
                    dt { "Session id" } dd.mono #device-session-id { (row.session_id) }
                    dt { "Secret token" } dd { code #device-secret-token { (token) } }
                    @if let Some(w) = webhook_secret {
                        dt { "Webhook signing secret" } dd { code #device-webhook-secret { (w) } }
                    }
                }
                p.muted { "The session id and secret token are the device's API credentials ("
                    code { "X-Session-Id" } ", " code { "X-Session-Secret-Token" } ") and its dashboard login." }
            }
            p { a #continue-pairing href={ "/dashboard/devices/" (id) } { "I have copied them: pair the device →" } }
        };
        return Ok(ok_page(layout(
            &viewer,
            "/dashboard/devices",
            &row.name,
            flash_of(&q),
            body,
        )));
    }
    let pairing = if row.status.as_str() == "working" {
        None
    } else {
        let waha = state.waha.for_server(row.waha_server_id).await;
        Some(pairing_state(&waha, &row.session_id, false).await)
    };
    let held: i64 = sending.held.iter().map(|(_, n)| n).sum();
    let operator = viewer.is_operator();
    let body = html! {
        h1 { (row.name) " " (chip(row.status.as_str())) }
        div data-poll={ "/dashboard/devices/" (id) "/state.json" } data-poll-value=(row.status.as_str()) data-poll-every="1500" {
            @match &pairing {
                None => { p #paired .notice.ok { "Paired: the device can send." } }
                Some(Ok(Pairing::Paired)) => { p #paired .notice.ok { "Paired: WAHA says the session is working." } }
                Some(Ok(Pairing::Scan(png, _))) => {
                    section aria-labelledby="pair" data-reload-ms="20000" {
                        h2 #pair { "Pair this device" }
                        ol {
                            li { "Open WhatsApp on the phone of " (row.name) "." }
                            li { "Settings → Linked devices → Link a device." }
                            li { "Point the phone at this code (it changes every few seconds; this page follows it)." }
                        }
                        img #pairing-qr .qr alt={ "QR code to link " (row.name) " to WhatsApp" } width="288" height="288"
                            src=(trusted(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))));
                    }
                }
                Some(Ok(Pairing::Waiting(status))) => {
                    p #pairing-waiting .notice role="status" data-reload-ms="4000" {
                        "Waiting for WhatsApp to get ready (WAHA says " (status) "). This page refreshes by itself."
                    }
                }
                Some(Err(e)) => { div data-reload-ms="5000" { (problems(Some(e))) } }
            }
        }
        @if pairing.as_ref().is_some_and(|p| matches!(p, Ok(Pairing::Scan(..)))) {
            form #pairing-code .inline method="post" action={ "/dashboard/devices/" (id) "/request-code" } {
                (csrf_field(&viewer))
                label { "Or pair with a code: the phone's number" input type="tel" name="phone_number" required placeholder=(row.phone_number); }
                button.secondary type="submit" { "Get a pairing code" }
            }
        }
        @if let Some(code) = q.get("code").filter(|c| c.len() <= 16 && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')) {
            p #pairing-code-value .notice.ok { "Pairing code: " strong.mono { (code) } " — on the phone: Linked devices → Link with phone number." }
        }
        h2 { "Details" }
        (facts(&row))
        h2 { "Sending" }
        dl.facts {
            dt { "Held messages" } dd { (held)
                @for (reason, n) in &sending.held { " · " (reason) " " (n) } }
            dt { "Next send" } dd { @match sending.next_send_at { Some(t) => (when(Some(t))), None => { "now" } } }
            dt { "Sent today" } dd { (sending.sent_today) @if let Some(cap) = sending.daily_cap { " of " (cap) } }
            dt { "Time zone" } dd { (sending.timezone.name()) }
            dt { "Paused until" } dd { (when(row.paused_until)) @if let Some(r) = &row.pause_reason { " (" (r) ")" } }
        }
        h2 { "Actions" }
        div.actions {
            a #device-settings-link href={ "/dashboard/devices/" (id) "/settings" } { "Settings" }
            a href={ "/dashboard/messages?device_id=" (id) } { "Messages" }
            a href={ "/dashboard/inbox?device_id=" (id) } { "Inbox" }
            a href={ "/dashboard/webhooks?device_id=" (id) } { "Webhook deliveries" }
        }
        div.actions {
            @if operator {
                (action(&viewer, "action-resume", &format!("/dashboard/devices/{id}/resume"), "Resume now", None))
                (action(&viewer, "action-resync", &format!("/dashboard/devices/{id}/resync"), "Resync with WAHA", None))
            }
            (action(&viewer, "action-restart", &format!("/dashboard/devices/{id}/restart"), "Restart session", Some("Restart this device's WAHA session?")))
            (action(&viewer, "action-logout", &format!("/dashboard/devices/{id}/logout"), "Log the phone out", Some("Log the phone out of WhatsApp? It must be paired again.")))
        }
    };
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/devices",
        &row.name,
        flash_of(&q),
        body,
    )))
}

/// `{"value": status}`: the device page reloads when it changes.
async fn state_json(
    state: State,
    viewer: Viewer,
    id: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let id = id_of(&id)?;
    let actor = viewer.actor.clone();
    let row = state.db.run(move |c| use_case::show(c, &actor, id)).await?;
    Ok(poll_value(row.status.as_str()))
}

async fn act(
    state: State,
    viewer: Viewer,
    path: web::Path<(String, String)>,
    form: Form,
) -> Result<HttpResponse, DashError> {
    viewer.check_csrf(&state, form.get("csrf"))?;
    let (id, what) = path.into_inner();
    let id = id_of(&id)?;
    let actor = viewer.actor.clone();
    let now = now_micros().naive_utc();
    let back = |done: &str| redirect(&format!("/dashboard/devices/{id}?done={done}"));
    match what.as_str() {
        "resume" => {
            state
                .db
                .run(move |c| use_case::resume(c, &actor, id, now))
                .await?;
            Ok(back("resumed"))
        }
        "resync" => {
            state
                .db
                .run(move |c| use_case::resync(c, &actor, id, now))
                .await?;
            Ok(back("resync"))
        }
        "restart" | "logout" | "request-code" => {
            let row = state.db.run(move |c| use_case::show(c, &actor, id)).await?;
            let waha = state.waha.for_server(row.waha_server_id).await;
            let call = match what.as_str() {
                "restart" => AccountCall::Restart,
                "logout" => AccountCall::Logout,
                _ => {
                    let raw = form.get("phone_number").map(String::as_str).unwrap_or("");
                    let phone = state.validation.phones.normalize(raw).map_err(|_| {
                        ApiError::field(
                            "phone_number",
                            "The phone number is not a valid phone number.",
                        )
                    })?;
                    AccountCall::RequestCode { phone }
                }
            };
            let answer = waha
                .account(&row.session_id, &call)
                .await
                .map_err(ApiError::from)?;
            Ok(match call {
                AccountCall::Restart => back("restarted"),
                AccountCall::Logout => back("logged-out"),
                _ => {
                    let code = answer
                        .get("code")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    redirect(&format!(
                        "/dashboard/devices/{id}?done=code&code={}",
                        url::form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>()
                    ))
                }
            })
        }
        _ => Err(ApiError::RouteNotFound.into()),
    }
}

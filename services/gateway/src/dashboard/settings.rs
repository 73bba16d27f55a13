//! A device's settings page: its name, webhook, automations, pacing and limits, changed the way
//! `PATCH /api/devices/{id}` changes them (the same validation, the same concurrency guard).
//! A page of its own: the device's page reloads while it pairs, which would lose typing.

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use serde_json::{Map, Value};
use wapim_app::devices as use_case;
use wapim_domain::time::now_micros;
use wapim_domain::validation::Mode;
use wapim_store::devices::DeviceRow;
use wapim_web::ApiError;

use super::{csrf_field, layout, ok_page, page_response, problems, redirect, DashError, Viewer};
use crate::state::State;

pub(super) fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/devices/{id}/settings", web::get().to(show))
        .route("/devices/{id}/settings", web::post().to(save));
}

type Form = web::Form<HashMap<String, String>>;

/// Text fields: empty clears them (null), like the API.
const TEXTS: &[(&str, &str, &str)] = &[
    ("name", "Name", ""),
    ("webhook_url", "Webhook URL", "https://example.com/wapim"),
    (
        "opening_message",
        "Opening message (a contact's first message)",
        "",
    ),
    ("closing_message", "Closing message (after a silence)", ""),
    ("auto_reply", "Auto-reply", ""),
    ("opt_out_confirmation", "Answer to an opt-out (STOP)", ""),
    (
        "timezone",
        "Time zone (IANA; empty: the server's)",
        "Asia/Jakarta",
    ),
    ("send_window_start", "Sending window opens (HH:MM)", "08:00"),
    ("send_window_end", "Sending window closes (HH:MM)", "21:00"),
];

/// Whole-number fields: empty clears them (the server's default, or no limit).
const NUMBERS: &[(&str, &str)] = &[
    (
        "pacing_min_interval_ms",
        "Least gap between sends (ms; empty: the server's)",
    ),
    (
        "pacing_jitter_ms",
        "Random extra gap (ms; empty: the server's)",
    ),
    ("daily_cap", "Most sends per day (empty: no cap)"),
    (
        "recipient_hourly_cap",
        "Most sends to one contact per hour (empty: no cap)",
    ),
];

/// Check boxes (an unchecked box sends nothing: false).
const FLAGS: &[(&str, &str)] = &[
    ("webhook_status", "Send events to the webhook"),
    ("simulate_typing", "Show \"typing…\" before each text"),
];

fn stored_values(d: &DeviceRow) -> HashMap<String, String> {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let number = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let flag = |b: bool| if b { "on".to_owned() } else { String::new() };
    HashMap::from([
        ("name".to_owned(), d.name.clone()),
        ("webhook_url".to_owned(), text(&d.webhook_url)),
        ("opening_message".to_owned(), text(&d.opening_message)),
        ("closing_message".to_owned(), text(&d.closing_message)),
        ("auto_reply".to_owned(), text(&d.auto_reply)),
        (
            "opt_out_confirmation".to_owned(),
            text(&d.opt_out_confirmation),
        ),
        ("timezone".to_owned(), text(&d.timezone)),
        ("send_window_start".to_owned(), text(&d.send_window_start)),
        ("send_window_end".to_owned(), text(&d.send_window_end)),
        (
            "pacing_min_interval_ms".to_owned(),
            number(d.pacing_min_interval_ms),
        ),
        ("pacing_jitter_ms".to_owned(), number(d.pacing_jitter_ms)),
        ("daily_cap".to_owned(), number(d.daily_cap)),
        (
            "recipient_hourly_cap".to_owned(),
            number(d.recipient_hourly_cap),
        ),
        ("webhook_status".to_owned(), flag(d.webhook_status)),
        ("simulate_typing".to_owned(), flag(d.simulate_typing)),
    ])
}

fn form_page(
    viewer: &Viewer,
    d: &DeviceRow,
    values: &HashMap<String, String>,
    error: Option<&ApiError>,
) -> Markup {
    let value = |k: &str| values.get(k).cloned().unwrap_or_default();
    html! {
        h1 { "Settings of " (d.name) }
        p { a href={ "/dashboard/devices/" (d.id) } { "← Back to the device" } }
        (problems(error))
        form #device-settings .stack method="post" action={ "/dashboard/devices/" (d.id) "/settings" } {
            (csrf_field(viewer))
            @for (name, label, placeholder) in TEXTS {
                @if name.ends_with("message") || *name == "auto_reply" || *name == "opt_out_confirmation" {
                    label { (label) textarea name=(name) maxlength="4096" placeholder=(placeholder) { (value(name)) } }
                } @else {
                    label { (label) input type="text" name=(name) value=(value(name)) placeholder=(placeholder); }
                }
            }
            @for (name, label) in NUMBERS {
                label { (label) input type="number" name=(name) min="0" step="1" inputmode="numeric" value=(value(name)); }
            }
            @for (name, label) in FLAGS {
                label.check { input type="checkbox" name=(name) checked[!value(name).is_empty()]; " " (label) }
            }
            button #device-settings-submit type="submit" { "Save" }
        }
    }
}

async fn load(state: &State, viewer: &Viewer, id: i64) -> Result<DeviceRow, DashError> {
    let actor = viewer.actor.clone();
    Ok(state.db.run(move |c| use_case::show(c, &actor, id)).await?)
}

async fn show(
    state: State,
    viewer: Viewer,
    id: web::Path<String>,
) -> Result<HttpResponse, DashError> {
    let id = crate::routes::parse_id(&id)?;
    let d = load(&state, &viewer, id).await?;
    let body = form_page(&viewer, &d, &stored_values(&d), None);
    Ok(ok_page(layout(
        &viewer,
        "/dashboard/devices",
        "Settings",
        None,
        body,
    )))
}

/// The form as the API's PATCH body: every field of the form is present (an emptied one is
/// null, an unchecked box false).
fn body_of(form: &HashMap<String, String>) -> Map<String, Value> {
    let mut body = Map::new();
    for (name, _, _) in TEXTS {
        let v = form.get(*name).map(|v| v.trim()).unwrap_or("");
        let value = if v.is_empty() && *name != "name" {
            Value::Null
        } else {
            Value::from(v)
        };
        body.insert((*name).to_owned(), value);
    }
    for (name, _) in NUMBERS {
        let v = form.get(*name).map(|v| v.trim()).unwrap_or("");
        let value = match v.parse::<i64>() {
            _ if v.is_empty() => Value::Null,
            Ok(n) => Value::from(n),
            // Not a whole number: the validation says so on the field.
            Err(_) => Value::from(v),
        };
        body.insert((*name).to_owned(), value);
    }
    for (name, _) in FLAGS {
        body.insert((*name).to_owned(), Value::Bool(form.contains_key(*name)));
    }
    body
}

async fn save(
    state: State,
    viewer: Viewer,
    id: web::Path<String>,
    form: Form,
) -> Result<HttpResponse, DashError> {
    viewer.check_csrf(&state, form.get("csrf"))?;
    let id = crate::routes::parse_id(&id)?;
    let body = body_of(&form);
    let actor = viewer.actor.clone();
    let ctx = state.validation;
    let now = now_micros().naive_utc();
    let saved = state
        .db
        .run(move |c| use_case::update(c, &actor, id, &body, Mode::Patch, &ctx, now))
        .await;
    match saved {
        Ok(_) => Ok(redirect(&format!("/dashboard/devices/{id}?done=saved"))),
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(..))) => {
            let d = load(&state, &viewer, id).await?;
            let mut entered = form.into_inner();
            for (name, _) in FLAGS {
                let on = entered.contains_key(*name);
                entered.insert(
                    (*name).to_owned(),
                    if on { "on".into() } else { String::new() },
                );
            }
            let body = form_page(&viewer, &d, &entered, Some(&e));
            Ok(page_response(
                actix_web::ResponseError::status_code(&e),
                layout(&viewer, "/dashboard/devices", "Settings", None, body),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

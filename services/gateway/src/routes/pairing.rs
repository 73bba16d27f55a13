//! `GET /api/devices/{id}/qr`: pairing for people. As HTML, a page with the device's QR code
//! (inline, no CDN, no script) that refreshes itself every few seconds until WAHA says the
//! session is `WORKING`; as `?format=text`, the QR drawn with Unicode blocks for a terminal.
//!
//! A browser cannot add the API's credentials to a refresh, so the page refreshes through a
//! signed link: `?pairing=<expiry>.<signature>`, an HMAC of the device id and the expiry under a
//! key derived from the operator token, valid for 10 minutes and only for this device's page;
//! the refreshes keep that link, so a page (or a leaked link) stops after 10 minutes.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use wapim_app::{devices as use_case, Actor};
use wapim_waha::{AccountCall, WahaError};
use wapim_web::ApiError;

use crate::auth::Authenticated;
use crate::routes::parse_id;
use crate::state::State;

/// How long a pairing link lets its page refresh without credentials.
const LINK_LIFETIME_SECS: i64 = 600;
/// Seconds between the page's refreshes.
const REFRESH_SECS: u32 = 4;

/// The MAC of a pairing link, under a key derived from the operator token's hash (a secret only
/// the server holds; the token itself never signs anything a browser sees). `None` never happens
/// (HMAC takes keys of any length).
fn link_mac(operator_secret: &str, device_id: i64, expiry: i64) -> Option<Hmac<Sha256>> {
    let mut key = Hmac::<Sha256>::new_from_slice(b"wapim pairing link key").ok()?;
    key.update(operator_secret.as_bytes());
    let derived = key.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&derived).ok()?;
    mac.update(format!("{device_id}:{expiry}").as_bytes());
    Some(mac)
}

/// A fresh `pairing` value for `device_id` at Unix time `now`.
fn pairing_link(admin_token: &str, device_id: i64, now: i64) -> Option<String> {
    let expiry = now + LINK_LIFETIME_SECS;
    let mac = link_mac(admin_token, device_id, expiry)?;
    Some(format!(
        "{expiry}.{}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// Whether `value` is a live pairing link of `device_id` at Unix time `now`.
fn link_is_valid(admin_token: &str, device_id: i64, value: &str, now: i64) -> bool {
    let Some((expiry, sig)) = value.split_once('.') else {
        return false;
    };
    let (Ok(expiry), Ok(given)) = (expiry.parse::<i64>(), hex::decode(sig)) else {
        return false;
    };
    if expiry < now || expiry > now + LINK_LIFETIME_SECS {
        return false;
    }
    link_mac(admin_token, device_id, expiry).is_some_and(|mac| mac.verify_slice(&given).is_ok())
}

fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Minimal HTML escaping for text put into the page.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Where the pairing stands, as WAHA says it now.
pub(crate) enum Pairing {
    /// Paired: nothing to scan.
    Paired,
    /// A QR code to scan (its PNG, or its raw value for text).
    Scan(Vec<u8>, String),
    /// Not ready for a scan yet (starting, stopped, failed…): WAHA's status.
    Waiting(String),
}

pub(crate) async fn pairing_state(
    waha: &wapim_waha::WahaClient,
    session: &str,
    text: bool,
) -> Result<Pairing, ApiError> {
    let status = waha
        .session(session)
        .await?
        .map_or_else(|| "UNKNOWN".to_owned(), |s| s.status);
    match status.as_str() {
        "WORKING" => Ok(Pairing::Paired),
        "SCAN_QR_CODE" => {
            let value = waha.account(session, &AccountCall::QrValue).await;
            let png = if text {
                Ok(Vec::new())
            } else {
                waha.qr_png(session).await
            };
            match (png, value) {
                (Ok(png), Ok(value)) => Ok(Pairing::Scan(
                    png,
                    value
                        .get("value")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                )),
                // The QR changed state between the two calls: look again at the next refresh.
                (Err(WahaError::SessionNotWorking { status, .. }), _)
                | (_, Err(WahaError::SessionNotWorking { status, .. })) => {
                    Ok(Pairing::Waiting(status.unwrap_or_default()))
                }
                (Err(e), _) | (_, Err(e)) => Err(e.into()),
            }
        }
        other => Ok(Pairing::Waiting(other.to_owned())),
    }
}

/// `GET /devices/{id}/qr` (`?format=text` for a terminal).
#[utoipa::path(
    get,
    path = "/api/devices/{id}/qr",
    operation_id = "pairing_qr",
    tag = "devices",
    summary = "Pairing page: the QR refreshing until the device is paired.",
    params(
        ("id" = i64, Path, description = "The device's id."),
        crate::openapi::PairingParams,
    ),
    responses(
        (status = 200, description = "An HTML page (default) or, with `format=text`, the QR drawn for a terminal.", content_type = "text/html"),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E422,
        crate::openapi::E502,
        crate::openapi::E504,
        crate::openapi::E503,
    )
)]
pub async fn qr(
    state: State,
    req: HttpRequest,
    auth: Option<Authenticated>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = chrono::Utc::now().timestamp();
    let given = query_value(&req, "pairing");
    let linked = given
        .as_deref()
        .is_some_and(|p| link_is_valid(&state.operator_token_hash, id, p, now));
    // A valid link stands for the operator, for this one device's page only.
    let actor = match (linked, auth) {
        (true, _) => Actor::Operator,
        (false, Some(Authenticated(actor))) => actor,
        (false, None) => return Err(ApiError::Unauthenticated),
    };
    let row = state.db.run(move |c| use_case::show(c, &actor, id)).await?;
    let waha = state.waha.for_server(row.waha_server_id).await;
    let text = query_value(&req, "format").as_deref() == Some("text");
    let pairing = pairing_state(&waha, &row.session_id, text).await?;
    if text {
        return Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .body(text_page(&row.name, &pairing)));
    }
    // A page opened through a link keeps that link (its expiry is never pushed back: a link that
    // leaked stops working within 10 minutes); one opened with credentials gets a fresh one.
    let link = match (linked, given) {
        (true, Some(given)) => given,
        _ => pairing_link(&state.operator_token_hash, id, now).unwrap_or_default(),
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; img-src data:; style-src 'unsafe-inline'",
        ))
        .body(html_page(id, &row.name, &pairing, &link)))
}

fn text_page(name: &str, pairing: &Pairing) -> String {
    match pairing {
        Pairing::Paired => format!("{name} is paired (WORKING).\n"),
        Pairing::Waiting(status) => {
            format!("{name} is not ready to pair yet (WAHA says {status}); try again in a few seconds.\n")
        }
        Pairing::Scan(_, value) => match qrcode::QrCode::new(value.as_bytes()) {
            Ok(code) => {
                let drawing = code
                    .render::<qrcode::render::unicode::Dense1x2>()
                    .dark_color(qrcode::render::unicode::Dense1x2::Light)
                    .light_color(qrcode::render::unicode::Dense1x2::Dark)
                    .quiet_zone(true)
                    .build();
                format!(
                    "Scan with WhatsApp on the phone of {name}: Settings → Linked devices → Link a device.\n\n{drawing}\n"
                )
            }
            Err(_) => {
                format!("WAHA's QR value for {name} cannot be drawn here; use the HTML page.\n")
            }
        },
    }
}

fn html_page(id: i64, name: &str, pairing: &Pairing, link: &str) -> String {
    let name = escape(name);
    let refresh = format!(
        r#"<meta http-equiv="refresh" content="{REFRESH_SECS}; url=/api/devices/{id}/qr?pairing={link}">"#
    );
    let (head, body) = match pairing {
        Pairing::Paired => (
            String::new(),
            format!(
                r#"<p class="ok" role="status">{name} is paired. You can close this page.</p>"#
            ),
        ),
        Pairing::Waiting(status) => (
            refresh,
            format!(
                r#"<p role="status">Waiting for WhatsApp to get ready (WAHA says {}). This page refreshes by itself.</p>"#,
                escape(status)
            ),
        ),
        Pairing::Scan(png, _) => (
            refresh,
            format!(
                r#"<ol><li>Open WhatsApp on the phone of {name}.</li><li>Settings → Linked devices → Link a device.</li><li>Point the phone at this code.</li></ol>
<img src="data:image/png;base64,{}" alt="QR code to link {name} to WhatsApp" width="300" height="300">
<p role="status">The code changes every few seconds; this page follows it until the phone is linked.</p>"#,
                base64::engine::general_purpose::STANDARD.encode(png)
            ),
        ),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
{head}<title>Pair {name} · Wapim</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;color:#111;background:#fff;line-height:1.5}}
img{{display:block;margin:1rem 0;image-rendering:pixelated;max-width:100%;height:auto;border:1px solid #ccc}}
.ok{{color:#0a5c2b;font-weight:600}}</style></head>
<body><main><h1>Pair {name}</h1>
{body}
</main></body></html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pairing_link_opens_only_its_own_device_page_and_only_for_a_while() {
        let link = pairing_link("admin-token", 7, 1_000).unwrap();
        assert!(link_is_valid("admin-token", 7, &link, 1_000));
        assert!(link_is_valid(
            "admin-token",
            7,
            &link,
            1_000 + LINK_LIFETIME_SECS
        ));
        assert!(
            !link_is_valid("admin-token", 7, &link, 1_001 + LINK_LIFETIME_SECS),
            "expired"
        );
        assert!(
            !link_is_valid("admin-token", 8, &link, 1_000),
            "another device"
        );
        assert!(
            !link_is_valid("another-token", 7, &link, 1_000),
            "another server"
        );
        let (expiry, sig) = link.split_once('.').unwrap();
        let later = format!("{}.{sig}", expiry.parse::<i64>().unwrap() + 1);
        assert!(
            !link_is_valid("admin-token", 7, &later, 1_000),
            "a stretched expiry"
        );
        assert!(!link_is_valid("admin-token", 7, "garbage", 1_000));
    }
}

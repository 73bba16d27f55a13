//! The operator dashboard under `/dashboard`: devices, pairing, messages and their timelines,
//! inbound messages, webhook deliveries and queues, in the browser.
//!
//! - **Server-rendered** HTML (maud) with one small script that reloads a page when the state it
//!   shows changes and refreshes pairing QR codes; assets compiled into the binary, no CDN, no
//!   build step. Strict `Content-Security-Policy`: nothing but this origin.
//! - **Who may look:** the operator (its token) or one device (its session id and token), logged
//!   in through a form into a signed `HttpOnly`, `SameSite=Strict` cookie ([`session`]). A device
//!   sees only itself, exactly as through the API: every page calls the same use cases
//!   (`wapim_app`) with the same actor.
//! - **Forms** post back and redirect (post/redirect/get); each carries the session's CSRF token.

mod devices;
mod messages;
mod others;
pub mod session;
mod settings;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use wapim_app::{Actor, DeviceRef};
use wapim_domain::{DeviceId, ValidationErrors};
use wapim_web::ApiError;

use self::session::{Holder, Session, SessionKey};
use crate::state::{AppState, State};

/// The dashboard's stylesheet.
const CSS: &str = include_str!("assets/dashboard.css");
/// The dashboard's one script.
const JS: &str = include_str!("assets/dashboard.js");

/// What a dashboard response may load: this origin only (QR codes come inline or from here).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Registers `/dashboard/...` (before the `/api` scope or after: it has its own prefix).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/dashboard")
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/assets/dashboard.css", web::get().to(css))
            .route("/assets/dashboard.js", web::get().to(js))
            .route("/login", web::get().to(login_form))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
            .configure(settings::routes)
            .configure(devices::routes)
            .configure(messages::routes)
            .configure(others::routes)
            .default_service(web::to(not_found)),
    );
}

/// A dashboard page or action failed: shown as a page (or, for a missing session, the login).
#[derive(Debug)]
pub enum DashError {
    /// No (valid) session: to the login page.
    Login,
    /// The form's CSRF token or origin is wrong.
    Forged,
    /// What the API would have answered.
    Api(ApiError),
}

impl std::fmt::Display for DashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DashError::Login => f.write_str("log in first"),
            DashError::Forged => f.write_str("the form is stale or came from elsewhere"),
            DashError::Api(e) => e.fmt(f),
        }
    }
}

impl From<ApiError> for DashError {
    fn from(e: ApiError) -> Self {
        DashError::Api(e)
    }
}

impl From<wapim_app::AppError> for DashError {
    fn from(e: wapim_app::AppError) -> Self {
        DashError::Api(e.into())
    }
}

impl ResponseError for DashError {
    fn status_code(&self) -> StatusCode {
        match self {
            DashError::Login => StatusCode::SEE_OTHER,
            DashError::Forged => StatusCode::FORBIDDEN,
            DashError::Api(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            DashError::Login => redirect("/dashboard/login"),
            DashError::Forged => page_response(
                StatusCode::FORBIDDEN,
                bare_page(
                    "Form expired",
                    html! {
                        h1 { "This form has expired" }
                        p { "It was opened in an older session or sent from another site. "
                            a href="/dashboard" { "Open the dashboard" } " and try again." }
                    },
                ),
            ),
            DashError::Api(e) => page_response(
                e.status_code(),
                bare_page(
                    "Problem",
                    html! {
                        h1 { (e.status_code().as_u16()) " — " (title_of(e)) }
                        (problems(Some(e)))
                        p { a href="/dashboard" { "Back to the dashboard" } }
                    },
                ),
            ),
        }
    }
}

fn title_of(e: &ApiError) -> String {
    match e {
        ApiError::NotFound | ApiError::RouteNotFound => "Not found".into(),
        ApiError::Forbidden => "Operators only".into(),
        other => other.to_string(),
    }
}

/// The logged-in viewer of a page: the actor the use cases see, and the session's CSRF token.
pub struct Viewer {
    /// The operator or one device.
    pub actor: Actor,
    /// The device's name, for the header (devices only).
    pub label: String,
    /// The token every form of this session carries.
    pub csrf: String,
    session: Session,
}

impl Viewer {
    /// Whether the viewer is the operator.
    pub fn is_operator(&self) -> bool {
        matches!(self.actor, Actor::Operator)
    }

    /// Checks a posted form's CSRF token.
    pub fn check_csrf(&self, state: &AppState, given: Option<&String>) -> Result<(), DashError> {
        let key = SessionKey::derive(&state.operator_token_hash);
        match given {
            Some(token) if key.csrf_matches(&self.session, token) => Ok(()),
            _ => Err(DashError::Forged),
        }
    }
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Refuses a POST whose `Origin` names another site (browsers send it on cross-site posts).
/// This site is the one list links point at ([`crate::listing::LinkBase`]): `public_url`, or
/// the request's own host, a proxy's headers believed only when the gateway is told to.
fn same_origin(req: &HttpRequest, state: &AppState) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return true;
    };
    origin.eq_ignore_ascii_case(&state.links.of(req))
}

impl FromRequest for Viewer {
    type Error = DashError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, DashError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<State>().cloned();
        let cookie = req
            .headers()
            .get(header::COOKIE)
            .and_then(|c| c.to_str().ok())
            .and_then(session::cookie_value)
            .map(str::to_owned);
        let cross_site = req.method() == actix_web::http::Method::POST
            && state.as_ref().is_some_and(|s| !same_origin(req, s));
        Box::pin(async move {
            if cross_site {
                return Err(DashError::Forged);
            }
            let state = state.ok_or(DashError::Login)?;
            let key = SessionKey::derive(&state.operator_token_hash);
            let session = cookie
                .and_then(|c| key.open(&c, now_secs()))
                .ok_or(DashError::Login)?;
            let csrf = key.csrf(&session);
            match &session.holder {
                Holder::Operator => Ok(Viewer {
                    actor: Actor::Operator,
                    label: "Operator".into(),
                    csrf,
                    session,
                }),
                Holder::Device { id, fingerprint } => {
                    let (id, fingerprint) = (*id, fingerprint.clone());
                    let row = state
                        .db
                        .run(move |c| wapim_store::devices::find(c, id, false))
                        .await
                        .map_err(|_| DashError::Login)?;
                    if session::fingerprint(&row.secret_token_hash) != fingerprint {
                        return Err(DashError::Login);
                    }
                    let device_id = DeviceId::from(row.id);
                    Ok(Viewer {
                        actor: Actor::Device(DeviceRef {
                            id: device_id,
                            session_id: row.session_id,
                        }),
                        label: row.name,
                        csrf,
                        session,
                    })
                }
            }
        })
    }
}

/// A 303 to `to`.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// An HTML response with the dashboard's security headers.
pub fn page_response(status: StatusCode, body: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.into_string())
}

/// A 200 page.
pub fn ok_page(body: Markup) -> HttpResponse {
    page_response(StatusCode::OK, body)
}

/// A small JSON answer for the page poller: `{"value": …}`.
pub fn poll_value(value: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "value": value.to_string() }))
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Wapim" }
            link rel="stylesheet" href="/dashboard/assets/dashboard.css";
            script src="/dashboard/assets/dashboard.js" defer {}
        }
    }
}

/// A page without the navigation (login, errors).
fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main { (body) } }
        }
    }
}

/// The sections, in the navigation's order: (path, label, operators only).
const SECTIONS: &[(&str, &str, bool)] = &[
    ("/dashboard/devices", "Devices", false),
    ("/dashboard/messages", "Messages", false),
    ("/dashboard/batches", "Batches", false),
    ("/dashboard/inbox", "Inbox", false),
    ("/dashboard/webhooks", "Webhooks", false),
    ("/dashboard/queues", "Queues", true),
];

/// A page with the header and navigation; `section` is the current one's path.
pub fn layout(
    viewer: &Viewer,
    section: &str,
    title: &str,
    flash: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header {
                    a.brand href="/dashboard" { "Wapim" }
                    nav aria-label="Sections" {
                        @for (path, label, operator_only) in SECTIONS {
                            @if !operator_only || viewer.is_operator() {
                                @if *path == section {
                                    a href=(path) aria-current="page" { (label) }
                                } @else {
                                    a href=(path) { (label) }
                                }
                            }
                        }
                    }
                    span.who { (viewer.label) }
                    form #logout method="post" action="/dashboard/logout" {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main {
                    @if let Some(flash) = flash {
                        p #flash .notice.ok role="status" { (flash) }
                    }
                    (body)
                }
            }
        }
    }
}

/// An error box: the API's message and each field's problems.
pub fn problems(error: Option<&ApiError>) -> Markup {
    let Some(error) = error else {
        return html! {};
    };
    let fields: Vec<(String, Vec<String>)> = match error {
        ApiError::Validation(errors) => field_messages(errors),
        ApiError::Conflict(field, message) => vec![((*field).to_owned(), vec![message.clone()])],
        ApiError::Waha {
            reason: Some(reason),
            ..
        } => vec![("WAHA".to_owned(), vec![reason.clone()])],
        _ => Vec::new(),
    };
    html! {
        div.notice.error role="alert" {
            p { strong { (error.to_string()) } }
            @if !fields.is_empty() {
                ul {
                    @for (field, messages) in &fields {
                        @for m in messages { li { code { (field) } ": " (m) } }
                    }
                }
            }
        }
    }
}

fn field_messages(errors: &ValidationErrors) -> Vec<(String, Vec<String>)> {
    serde_json::to_value(errors)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|map| {
            map.into_iter()
                .map(|(field, list)| {
                    let messages = list
                        .as_array()
                        .map(|l| {
                            l.iter()
                                .filter_map(|m| m.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    (field, messages)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The hidden CSRF field of a form.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// A one-button POST form (an action on a record).
pub fn action(
    viewer: &Viewer,
    class: &str,
    to: &str,
    label: &str,
    confirm: Option<&str>,
) -> Markup {
    html! {
        form class=(class) method="post" action=(to) data-confirm=[confirm] {
            (csrf_field(viewer))
            button.secondary type="submit" { (label) }
        }
    }
}

/// A status as a coloured chip.
pub fn chip(text: &str) -> Markup {
    let tone = match text {
        "working" | "read" | "delivered" | "sent" | "active" => "ok",
        "failed" | "stopped" | "down" | "cancelled" => "bad",
        "pending" | "processing" | "scan_qr_code" | "starting" | "draining" => "warn",
        _ => "",
    };
    html! { span class={ "chip " (tone) } { (text) } }
}

/// A timestamp as the API writes it, or a dash.
pub fn when(t: Option<chrono::NaiveDateTime>) -> Markup {
    match t {
        Some(t) => {
            html! { time datetime=(wapim_domain::time::format_naive_utc(&t)) { (t.format("%Y-%m-%d %H:%M:%S")) " UTC" } }
        }
        None => html! { span.muted { "—" } },
    }
}

/// Previous/next links of a list page.
pub fn pager(base: &str, page: i64, total: i64, size: i64) -> Markup {
    let last = ((total + size - 1) / size).max(1);
    let sep = if base.contains('?') { '&' } else { '?' };
    html! {
        nav.pager aria-label="Pages" {
            @if page > 1 { a href={ (base) (sep) "page=" (page - 1) } { "← Newer" } }
            span.muted { "Page " (page) " of " (last) " · " (total) " in all" }
            @if page < last { a href={ (base) (sep) "page=" (page + 1) } { "Older →" } }
        }
    }
}

/// The page number in a query (1 when absent or bad).
pub fn page_of(q: &std::collections::HashMap<String, String>) -> i64 {
    q.get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=200).contains(p))
        .unwrap_or(1)
}

/// The fixed messages a redirect may ask a page to show (`?done=<code>`), so no text from the
/// URL is ever shown.
pub fn flash_of(q: &std::collections::HashMap<String, String>) -> Option<&'static str> {
    Some(match q.get("done")?.as_str() {
        "created" => "Device created.",
        "resumed" => "The device's pause is over; its held messages go now.",
        "resync" => "The device's WAHA session is being brought in line.",
        "restarted" => "WAHA restarts the session.",
        "logged-out" => "The phone was logged out of WhatsApp.",
        "sent" => "Message accepted.",
        "resent" => "The message goes again.",
        "deleted" => "Deleted.",
        "replayed" => "The delivery was queued again.",
        "code" => "Pairing code requested.",
        "saved" => "Settings saved.",
        "dlq-replayed" => "The dead letters went back to the send queue.",
        _ => return None,
    })
}

async fn home(req: HttpRequest) -> HttpResponse {
    let logged_in = Viewer::extract(&req).await.is_ok();
    redirect(if logged_in {
        "/dashboard/devices"
    } else {
        "/dashboard/login"
    })
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(CSS)
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(JS)
}

async fn not_found() -> HttpResponse {
    DashError::Api(ApiError::RouteNotFound).error_response()
}

fn login_page(error: Option<&str>) -> Markup {
    bare_page(
        "Log in",
        html! {
            div.login {
                h1 { "Wapim dashboard" }
                @if let Some(e) = error { p.error.notice role="alert" { (e) } }
                form #login .stack method="post" action="/dashboard/login" {
                    fieldset {
                        legend { "Operator" }
                        label { "Operator token" input type="password" name="token" autocomplete="current-password"; }
                    }
                    fieldset {
                        legend { "Or one device" }
                        label { "Session id" input type="text" name="session_id" autocomplete="username"; }
                        label { "Secret token" input type="password" name="secret_token" autocomplete="current-password"; }
                    }
                    button #login-submit type="submit" { "Log in" }
                }
                p.muted { "The operator token was printed when Wapim first started ("
                    code { "wapim reset-token" } " makes a new one). API docs: "
                    a href="/docs/" { "/docs" } "." }
            }
        },
    )
}

async fn login_form() -> HttpResponse {
    ok_page(login_page(None))
}

/// Whether this site is served over https (its cookie is then `Secure`).
fn is_https(req: &HttpRequest, state: &AppState) -> bool {
    state.links.of(req).starts_with("https://")
}

async fn login(
    state: State,
    req: HttpRequest,
    form: web::Form<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, DashError> {
    if !same_origin(&req, &state) {
        return Err(DashError::Forged);
    }
    let field = |name: &str| {
        form.get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty() && v.len() <= 256)
    };
    let holder = if let Some(token) = field("token") {
        wapim_domain::token::token_matches(&token, &state.operator_token_hash)
            .then_some(Holder::Operator)
    } else if let (Some(session), Some(secret)) = (field("session_id"), field("secret_token")) {
        let hash = wapim_domain::token::hash_token(&secret);
        let secret = wapim_domain::SecretString::from(secret);
        match state
            .db
            .run(move |c| wapim_app::credentials::verify_device(c, &session, &secret))
            .await
        {
            Ok(verified) => Some(Holder::Device {
                id: verified.device.id.get(),
                fingerprint: session::fingerprint(&hash),
            }),
            Err(ApiError::Unauthenticated) => None,
            Err(other) => return Err(other.into()),
        }
    } else {
        None
    };
    let Some(holder) = holder else {
        return Ok(page_response(
            StatusCode::UNAUTHORIZED,
            login_page(Some("Those credentials are not valid.")),
        ));
    };
    let sealed = SessionKey::derive(&state.operator_token_hash).seal(&Session {
        holder,
        expires: now_secs() + session::LIFETIME_SECS,
        nonce: session::nonce(),
    });
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/dashboard/devices"))
        .insert_header((
            header::SET_COOKIE,
            session::set_cookie(Some(&sealed), is_https(&req, &state)),
        ))
        .finish())
}

async fn logout(
    state: State,
    viewer: Viewer,
    req: HttpRequest,
    form: web::Form<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, DashError> {
    viewer.check_csrf(&state, form.get("csrf"))?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/dashboard/login"))
        .insert_header((
            header::SET_COOKIE,
            session::set_cookie(None, is_https(&req, &state)),
        ))
        .finish())
}

/// Raw HTML that is already escaped (inline data: URLs and the like).
pub fn trusted(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}

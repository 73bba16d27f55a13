//! The reference's WAHA endpoints (`/api/v1/waha/...`): WAHA's account functions for a device's
//! session, passed through with Wapim's auth. A device reaches only its own session (any other is
//! 404); the operator reaches every live device's. Answers are WAHA's JSON as the reference shows
//! them (not wrapped in the envelope), secrets removed; errors are in the envelope: WAHA down
//! 502, WAHA too slow 504, WAHA's own 4xx the same status with WAHA's reason.

use actix_web::{web, HttpRequest, HttpResponse};
use wapim_app::devices as use_case;
use wapim_waha::{AccountCall, WahaClient};
use wapim_web::ApiError;

use crate::auth::Authenticated;
use crate::state::State;

/// How long `me` and `profile` answers are reused (they rarely change; a dashboard polls them).
pub const ACCOUNT_CACHE: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks the actor may reach `session` (a live device's; a device only its own); returns it
/// with the client of the WAHA server it lives on.
async fn reachable(
    state: &State,
    actor: wapim_app::Actor,
    session: &str,
) -> Result<(String, WahaClient), ApiError> {
    let session = session.to_owned();
    let row = state
        .db
        .run(move |c| use_case::by_session(c, &actor, &session))
        .await?;
    let client = state.waha.for_server(row.waha_server_id).await;
    Ok((row.session_id, client))
}

async fn pass_through(
    state: &State,
    actor: wapim_app::Actor,
    session: &str,
    call: AccountCall,
    cacheable: bool,
) -> Result<HttpResponse, ApiError> {
    let (session, waha) = reachable(state, actor, session).await?;
    let key = (session.clone(), format!("{call:?}"));
    if cacheable {
        if let Some(answer) = state.waha_answers.get(&key) {
            return Ok(HttpResponse::Ok().json(answer));
        }
    }
    let answer = waha.account(&session, &call).await?;
    if cacheable {
        state.waha_answers.put(key, answer.clone());
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// `GET /v1/waha/sessions/{session_id}/me`.
#[utoipa::path(
    get,
    path = "/api/v1/waha/sessions/{session_id}/me",
    operation_id = "waha_me",
    tag = "waha",
    summary = "The WhatsApp account behind the session (WAHA's answer).",
    params(
        ("session_id" = String, Path, description = "The device's session id."),
    ),
    responses(
        (status = 200, description = "OK.", body = Object),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E502,
        crate::openapi::E504,
        crate::openapi::E503,
    )
)]
pub async fn me(
    state: State,
    Authenticated(actor): Authenticated,
    session: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    pass_through(&state, actor, &session, AccountCall::Me, true).await
}

/// `GET /v1/waha/{session_id}/profile`.
#[utoipa::path(
    get,
    path = "/api/v1/waha/{session_id}/profile",
    operation_id = "waha_profile",
    tag = "waha",
    summary = "The account's profile (WAHA's answer).",
    params(
        ("session_id" = String, Path, description = "The device's session id."),
    ),
    responses(
        (status = 200, description = "OK.", body = Object),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E502,
        crate::openapi::E504,
        crate::openapi::E503,
    )
)]
pub async fn profile(
    state: State,
    Authenticated(actor): Authenticated,
    session: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    pass_through(&state, actor, &session, AccountCall::Profile, true).await
}

/// `POST /v1/waha/sessions/{session_id}/restart`.
#[utoipa::path(
    post,
    path = "/api/v1/waha/sessions/{session_id}/restart",
    operation_id = "waha_restart",
    tag = "waha",
    summary = "Restart the session.",
    params(
        ("session_id" = String, Path, description = "The device's session id."),
    ),
    responses(
        (status = 200, description = "OK.", body = Object),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E502,
        crate::openapi::E504,
        crate::openapi::E503,
    )
)]
pub async fn restart(
    state: State,
    Authenticated(actor): Authenticated,
    session: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    pass_through(&state, actor, &session, AccountCall::Restart, false).await
}

/// `POST /v1/waha/sessions/{session_id}/logout`.
#[utoipa::path(
    post,
    path = "/api/v1/waha/sessions/{session_id}/logout",
    operation_id = "waha_logout",
    tag = "waha",
    summary = "Log the phone out.",
    params(
        ("session_id" = String, Path, description = "The device's session id."),
    ),
    responses(
        (status = 200, description = "OK.", body = Object),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E502,
        crate::openapi::E504,
        crate::openapi::E503,
    )
)]
pub async fn logout(
    state: State,
    Authenticated(actor): Authenticated,
    session: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    pass_through(&state, actor, &session, AccountCall::Logout, false).await
}

/// `GET /v1/waha/{session_id}/auth/qr.png?format=image|raw`: the PNG (default), or the QR's
/// value as JSON.
#[utoipa::path(
    get,
    path = "/api/v1/waha/{session_id}/auth/qr.png",
    operation_id = "waha_qr",
    tag = "waha",
    summary = "The pairing QR as PNG (or its value).",
    params(
        ("session_id" = String, Path, description = "The device's session id."),
        crate::openapi::QrParams,
    ),
    responses(
        (status = 200, description = "The PNG, or with `format=raw` WAHA's JSON.", content_type = "image/png"),
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
    Authenticated(actor): Authenticated,
    session: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let format = query_value(&req, "format").unwrap_or_else(|| "image".to_owned());
    match format.as_str() {
        "raw" => pass_through(&state, actor, &session, AccountCall::QrValue, false).await,
        "image" => {
            let (session, waha) = reachable(&state, actor, &session).await?;
            let png = waha.qr_png(&session).await?;
            Ok(HttpResponse::Ok()
                .content_type("image/png")
                .insert_header(("Cache-Control", "no-store"))
                .body(png))
        }
        _ => Err(ApiError::field(
            "format",
            "The format must be image or raw.",
        )),
    }
}

/// `POST /v1/waha/{session_id}/auth/request-code` with `{"phone_number"}` (or WAHA's
/// `phoneNumber`; normalised like every phone): a pairing code instead of the QR.
#[utoipa::path(
    post,
    path = "/api/v1/waha/{session_id}/auth/request-code",
    operation_id = "waha_request_code",
    tag = "waha",
    summary = "A pairing code instead of the QR.",
    params(
        ("session_id" = String, Path, description = "The device's session id."),
    ),
    request_body = crate::openapi::RequestCodeBody,
    responses(
        (status = 200, description = "OK.", body = Object),
        crate::openapi::E400,
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E413,
        crate::openapi::E422,
        crate::openapi::E502,
        crate::openapi::E504,
        crate::openapi::E503,
    )
)]
pub async fn request_code(
    state: State,
    Authenticated(actor): Authenticated,
    session: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = wapim_web::body::read_object(payload, state.limits.max_body_bytes).await?;
    let raw = body
        .get("phone_number")
        .or_else(|| body.get("phoneNumber"))
        .and_then(|v| v.as_str());
    let Some(raw) = raw else {
        return Err(ApiError::field(
            "phone_number",
            "The phone number field is required.",
        ));
    };
    let phone = state.validation.phones.normalize(raw).map_err(|_| {
        ApiError::field(
            "phone_number",
            "The phone number is not a valid phone number.",
        )
    })?;
    pass_through(
        &state,
        actor,
        &session,
        AccountCall::RequestCode { phone },
        false,
    )
    .await
}

/// `GET /v1/waha/contacts/check-exists?phone=…&session=…`: the phone normalised first.
#[utoipa::path(
    get,
    path = "/api/v1/waha/contacts/check-exists",
    operation_id = "waha_check_exists",
    tag = "waha",
    summary = "Whether a phone is on WhatsApp.",
    params(
        crate::openapi::CheckExistsParams,
    ),
    responses(
        (status = 200, description = "OK.", body = Object),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E422,
        crate::openapi::E502,
        crate::openapi::E504,
        crate::openapi::E503,
    )
)]
pub async fn check_exists(
    state: State,
    Authenticated(actor): Authenticated,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut errors = wapim_domain::ValidationErrors::new();
    let phone = match query_value(&req, "phone") {
        Some(raw) => match state.validation.phones.normalize(&raw) {
            Ok(p) => Some(p),
            Err(_) => {
                errors.add("phone", "The phone is not a valid phone number.");
                None
            }
        },
        None => {
            errors.add("phone", "The phone field is required.");
            None
        }
    };
    // A device may leave `session` out: its own.
    let session = query_value(&req, "session").or_else(|| match &actor {
        wapim_app::Actor::Device(d) => Some(d.session_id.clone()),
        wapim_app::Actor::Operator => None,
    });
    if session.is_none() {
        errors.add("session", "The session field is required.");
    }
    let (Some(phone), Some(session)) = (phone, session) else {
        return Err(ApiError::Validation(errors));
    };
    pass_through(
        &state,
        actor,
        &session,
        AccountCall::CheckExists { phone },
        false,
    )
    .await
}

fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

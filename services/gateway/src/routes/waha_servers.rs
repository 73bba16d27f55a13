//! `/api/waha-servers` (operators only): the WAHA servers devices are placed on. The server of
//! `WAPIM_WAHA__URL` is registered at start-up; others are added here, drained (no new devices)
//! or marked down, and removed once no device belongs to them.

use actix_web::{web, HttpResponse};
use wapim_app::waha_servers as use_case;
use wapim_domain::time::now_micros;
use wapim_web::body::read_object;
use wapim_web::envelope::{ok, ADDED, DELETED, MODIFIED};
use wapim_web::ApiError;

use crate::auth::Authenticated;
use crate::routes::parse_id;
use crate::state::State;
use crate::views::WahaServerView;

/// `GET /waha-servers`: every server with its load.
#[utoipa::path(
    get,
    path = "/api/waha-servers",
    operation_id = "waha_servers_list",
    tag = "waha-servers",
    summary = "Every WAHA server and its load.",
    security(("operator" = [])),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::openapi::ServerList>),
        crate::openapi::E401,
        crate::openapi::E403,
        crate::openapi::E503,
    )
)]
pub async fn list(
    state: State,
    Authenticated(actor): Authenticated,
) -> Result<HttpResponse, ApiError> {
    let servers = state.db.run(move |c| use_case::list(c, &actor)).await?;
    let list: Vec<WahaServerView> = servers.into_iter().map(WahaServerView::from).collect();
    Ok(ok("", serde_json::json!({ "list": list })))
}

/// `POST /waha-servers` with `{name, base_url, api_key?, capacity?, state?}`.
#[utoipa::path(
    post,
    path = "/api/waha-servers",
    operation_id = "waha_servers_create",
    tag = "waha-servers",
    summary = "Register a WAHA server.",
    request_body = crate::openapi::WahaServerBody,
    security(("operator" = [])),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::WahaServerView>),
        crate::openapi::E400,
        crate::openapi::E401,
        crate::openapi::E403,
        crate::openapi::E409,
        crate::openapi::E413,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn create(
    state: State,
    Authenticated(actor): Authenticated,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    actor.require_operator()?;
    let body = read_object(payload, state.limits.max_body_bytes).await?;
    let now = now_micros().naive_utc();
    let row = state
        .db
        .run(move |c| use_case::create(c, &actor, &body, now))
        .await?;
    Ok(ok(ADDED, WahaServerView::from(row)))
}

/// `PATCH /waha-servers/{id}`: the fields present change (drain: `{"state": "draining"}`).
#[utoipa::path(
    patch,
    path = "/api/waha-servers/{id}",
    operation_id = "waha_servers_update",
    tag = "waha-servers",
    summary = "Change the fields present (drain: `state: draining`).",
    params(
        ("id" = i64, Path, description = "The server's id."),
    ),
    request_body = crate::openapi::WahaServerBody,
    security(("operator" = [])),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::WahaServerView>),
        crate::openapi::E400,
        crate::openapi::E401,
        crate::openapi::E403,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E413,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn update(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    actor.require_operator()?;
    let body = read_object(payload, state.limits.max_body_bytes).await?;
    let now = now_micros().naive_utc();
    let row = state
        .db
        .run(move |c| use_case::update(c, &actor, id, &body, now))
        .await?;
    state.waha.forget_server(id);
    Ok(ok(MODIFIED, WahaServerView::from(row)))
}

/// `DELETE /waha-servers/{id}`: only a server no device belongs to (else 409).
#[utoipa::path(
    delete,
    path = "/api/waha-servers/{id}",
    operation_id = "waha_servers_delete",
    tag = "waha-servers",
    summary = "Remove a server no device belongs to.",
    params(
        ("id" = i64, Path, description = "The server's id."),
    ),
    security(("operator" = [])),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<Option<Object>>),
        crate::openapi::E401,
        crate::openapi::E403,
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
    state
        .db
        .run(move |c| use_case::delete(c, &actor, id))
        .await?;
    state.waha.forget_server(id);
    Ok(ok(DELETED, serde_json::Value::Null))
}

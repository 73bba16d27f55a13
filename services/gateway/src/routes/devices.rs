//! `/api/devices`: operators manage every device; a device reads and updates itself.

use actix_web::{web, HttpRequest, HttpResponse};
use wapim_app::devices as use_case;
use wapim_domain::device::validate_device;
use wapim_domain::time::now_micros;
use wapim_domain::validation::Mode;
use wapim_domain::DeviceStatus;
use wapim_store::devices::{DeviceFilter, DeviceSortColumn};
use wapim_web::body::read_object;
use wapim_web::envelope::{ok, ADDED, DELETED, MODIFIED, RESTORED};
use wapim_web::ApiError;

use crate::auth::Authenticated;
use crate::listing::{ListData, ListQuery};
use crate::routes::parse_id;
use crate::state::State;
use crate::views::{BoolStyle, DeviceView};

const SORTS: &[(&str, DeviceSortColumn)] = &[
    ("id", DeviceSortColumn::Id),
    ("name", DeviceSortColumn::Name),
    ("session_id", DeviceSortColumn::SessionId),
    ("status", DeviceSortColumn::Status),
    ("created_at", DeviceSortColumn::CreatedAt),
    ("updated_at", DeviceSortColumn::UpdatedAt),
];

/// `GET /devices`: a page of devices (a device sees only itself).
#[utoipa::path(
    get,
    path = "/api/devices",
    operation_id = "devices_list",
    tag = "devices",
    summary = "List devices (a device sees itself).",
    params(
        crate::openapi::ListParams,
        crate::openapi::DeviceFilters,
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::listing::ListData<crate::views::DeviceView>>),
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
    let sort = q.sort(SORTS, DeviceSortColumn::Id);
    let status = match q.get("status").map(str::parse::<DeviceStatus>) {
        Some(Err(e)) => {
            q.errors.add(
                "status",
                format!("The selected status is invalid; use one of: {}.", e.allowed),
            );
            None
        }
        other => other.and_then(Result::ok),
    };
    let filter = DeviceFilter {
        only_id: None,
        status,
        session_id: q.get("session_id").map(str::to_owned),
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
        .map(|r| DeviceView::new(r, BoolStyle::Int, None))
        .collect::<Vec<_>>();
    Ok(ok("", ListData { list, meta }))
}

/// `POST /devices`: registers a device (operators only). The secret token is returned in full
/// here and never again.
#[utoipa::path(
    post,
    path = "/api/devices",
    operation_id = "devices_create",
    tag = "devices",
    summary = "Create a device (its WAHA session follows).",
    request_body = crate::openapi::DeviceBody,
    security(("operator" = [])),
    responses(
        (status = 200, description = "Created; `secret_token` and `webhook_secret` shown in full this once.", body = crate::openapi::Envelope<crate::views::DeviceView>),
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
    let input = validate_device(&body, Mode::Full, None, &state.validation)
        .map_err(ApiError::Validation)?;
    let now = now_micros().naive_utc();
    let made = state
        .db
        .run(move |c| use_case::register(c, &actor, &input, now))
        .await?;
    Ok(ok(
        ADDED,
        DeviceView::new(made.row, BoolStyle::Json, made.new_token)
            .with_webhook_secret(made.new_webhook_secret),
    ))
}

/// `GET /devices/{id}`.
#[utoipa::path(
    get,
    path = "/api/devices/{id}",
    operation_id = "devices_show",
    tag = "devices",
    summary = "Read a device, with its sending state.",
    params(
        ("id" = i64, Path, description = "The device's id."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::DeviceView>),
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
    let (defaults, now) = (state.safety, now_micros().naive_utc());
    let (row, sending) = state
        .db
        .run(move |c| use_case::show_with_sending_state(c, &actor, id, &defaults, now))
        .await?;
    Ok(ok(
        "",
        DeviceView::new(row, BoolStyle::Int, None).with_sending_state(sending),
    ))
}

/// `POST /devices/{id}/resume` (operators only): ends a pause (WhatsApp's reach-out timelock)
/// early; its held messages are due at once.
#[utoipa::path(
    post,
    path = "/api/devices/{id}/resume",
    operation_id = "devices_resume",
    tag = "devices",
    summary = "End a pause early.",
    params(
        ("id" = i64, Path, description = "The device's id."),
    ),
    security(("operator" = [])),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::DeviceView>),
        crate::openapi::E401,
        crate::openapi::E403,
        crate::openapi::E404,
        crate::openapi::E503,
    )
)]
pub async fn resume(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = now_micros().naive_utc();
    let (row, released) = state
        .db
        .run(move |c| use_case::resume(c, &actor, id, now))
        .await?;
    let message = format!("Device resumed; {released} held message(s) are due now.");
    Ok(ok(&message, DeviceView::new(row, BoolStyle::Int, None)))
}

/// `PUT /devices/{id}` (replace; absent optional fields are cleared).
#[utoipa::path(
    put,
    path = "/api/devices/{id}",
    operation_id = "devices_replace",
    tag = "devices",
    summary = "Replace a device's settings.",
    params(
        ("id" = i64, Path, description = "The device's id."),
    ),
    request_body = crate::openapi::DeviceBody,
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::DeviceView>),
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

/// `PATCH /devices/{id}` (absent fields are kept).
#[utoipa::path(
    patch,
    path = "/api/devices/{id}",
    operation_id = "devices_patch",
    tag = "devices",
    summary = "Change the fields present.",
    params(
        ("id" = i64, Path, description = "The device's id."),
    ),
    request_body = crate::openapi::DeviceBody,
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::DeviceView>),
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
    let updated = state
        .db
        .run(move |c| use_case::update(c, &actor, id, &body, mode, &ctx, now))
        .await?;
    if updated.new_token.is_some() {
        state.credentials.forget(&updated.row.session_id);
    }
    Ok(ok(
        MODIFIED,
        DeviceView::new(updated.row, BoolStyle::Int, updated.new_token),
    ))
}

/// `DELETE /devices/{id}`: soft delete (operators only); its pending messages are cancelled.
#[utoipa::path(
    delete,
    path = "/api/devices/{id}",
    operation_id = "devices_delete",
    tag = "devices",
    summary = "Soft-delete a device (its pending messages are cancelled).",
    params(
        ("id" = i64, Path, description = "The device's id."),
    ),
    security(("operator" = [])),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::DeviceView>),
        crate::openapi::E401,
        crate::openapi::E403,
        crate::openapi::E404,
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
    state.credentials.forget(&row.session_id);
    Ok(ok(DELETED, DeviceView::new(row, BoolStyle::Int, None)))
}

/// `POST /devices/{id}/restore` (operators only): the device comes back with its own session id
/// and what its deletion cancelled is pending again.
#[utoipa::path(
    post,
    path = "/api/devices/{id}/restore",
    operation_id = "devices_restore",
    tag = "devices",
    summary = "Restore a deleted device (and what its deletion cancelled).",
    params(
        ("id" = i64, Path, description = "The device's id."),
    ),
    security(("operator" = [])),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::DeviceView>),
        crate::openapi::E401,
        crate::openapi::E403,
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
    Ok(ok(RESTORED, DeviceView::new(row, BoolStyle::Int, None)))
}

/// `POST /devices/{id}/resync` (operators only): the device's WAHA session is brought in line
/// with it (created if WAHA lost it, reconfigured, started) by the dispatcher, shortly.
#[utoipa::path(
    post,
    path = "/api/devices/{id}/resync",
    operation_id = "devices_resync",
    tag = "devices",
    summary = "Bring its WAHA session in line now.",
    params(
        ("id" = i64, Path, description = "The device's id."),
    ),
    security(("operator" = [])),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::DeviceView>),
        crate::openapi::E401,
        crate::openapi::E403,
        crate::openapi::E404,
        crate::openapi::E503,
    )
)]
pub async fn resync(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = now_micros().naive_utc();
    let row = state
        .db
        .run(move |c| use_case::resync(c, &actor, id, now))
        .await?;
    Ok(ok(
        "Resync of the WAHA session requested.",
        DeviceView::new(row, BoolStyle::Int, None),
    ))
}

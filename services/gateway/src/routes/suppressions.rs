//! `/api/devices/{id}/suppressions`: a device's opted-out contacts (the operator, or the device
//! itself). A send to one of them ends `failed` (`opted_out`) instead of going out.

use actix_web::{web, HttpRequest, HttpResponse};
use wapim_app::suppressions as use_case;
use wapim_domain::time::now_micros;
use wapim_web::body::read_object;
use wapim_web::envelope::{ok, ADDED, DELETED};
use wapim_web::ApiError;

use crate::auth::Authenticated;
use crate::listing::{ListData, ListQuery};
use crate::routes::parse_id;
use crate::state::State;
use crate::views::SuppressionView;

/// `GET /devices/{id}/suppressions`: a page of the list, newest first.
#[utoipa::path(
    get,
    path = "/api/devices/{id}/suppressions",
    operation_id = "suppressions_list",
    tag = "devices",
    summary = "The device's opt-outs.",
    params(
        ("id" = i64, Path, description = "The device's id."),
        crate::openapi::ListParams,
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::listing::ListData<crate::views::SuppressionView>>),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn list(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let device_id = parse_id(&id)?;
    let mut q = ListQuery::parse(&req);
    q.finish()?;
    let page = q.page;
    let paged = state
        .db
        .run(move |c| use_case::list(c, &actor, device_id, page))
        .await?;
    let meta = q.meta(&req, &state.links, paged.total);
    let list: Vec<SuppressionView> = paged.rows.into_iter().map(Into::into).collect();
    Ok(ok("", ListData { list, meta }))
}

/// `POST /devices/{id}/suppressions` with `{"phone", "reason"?}`: the contact is never messaged
/// by this device again (adding one already listed keeps the existing entry).
#[utoipa::path(
    post,
    path = "/api/devices/{id}/suppressions",
    operation_id = "suppressions_add",
    tag = "devices",
    summary = "Opt a contact out.",
    params(
        ("id" = i64, Path, description = "The device's id."),
    ),
    request_body = crate::openapi::SuppressionBody,
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::SuppressionView>),
        crate::openapi::E400,
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E413,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn add(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let device_id = parse_id(&id)?;
    let body = read_object(payload, state.limits.max_body_bytes).await?;
    let ctx = state.validation;
    let now = now_micros().naive_utc();
    let (row, new) = state
        .db
        .run(move |c| use_case::add(c, &actor, device_id, &body, &ctx, now))
        .await?;
    let message = if new { ADDED } else { "Already suppressed" };
    Ok(ok(message, SuppressionView::from(row)))
}

/// `DELETE /devices/{id}/suppressions/{phone}`: the contact may be messaged again.
#[utoipa::path(
    delete,
    path = "/api/devices/{id}/suppressions/{phone}",
    operation_id = "suppressions_remove",
    tag = "devices",
    summary = "Take a contact off the list.",
    params(
        ("id" = i64, Path, description = "The device's id."),
        ("phone" = String, Path, description = "The contact, any accepted form."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<Option<Object>>),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn remove(
    state: State,
    Authenticated(actor): Authenticated,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, phone) = path.into_inner();
    let device_id = parse_id(&id)?;
    let ctx = state.validation;
    state
        .db
        .run(move |c| use_case::remove(c, &actor, device_id, &phone, &ctx))
        .await?;
    Ok(ok(DELETED, serde_json::Value::Null))
}

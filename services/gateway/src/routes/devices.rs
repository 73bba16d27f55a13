//! `/api/devices`: operators manage every device; a device reads and updates itself.

use actix_web::{web, HttpRequest, HttpResponse};
use wapim_domain::device::{parse_webhook_options, validate_device, DeviceDraft, DeviceInput};
use wapim_domain::time::now_micros;
use wapim_domain::token::{generate_secret_token, hash_token, mask_token};
use wapim_domain::validation::Mode;
use wapim_domain::DeviceStatus;
use wapim_store::devices::{
    self, DeviceFields, DeviceFilter, DeviceRow, DeviceSortColumn, TokenFields,
};
use wapim_store::StoreError;

use crate::auth::{Caller, Principal};
use crate::body::read_object;
use crate::envelope::{ok, ADDED, DELETED, MODIFIED, RESTORED};
use crate::error::ApiError;
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
pub async fn list(
    state: State,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut q = ListQuery::parse(&req);
    let sort = q.sort(SORTS, DeviceSortColumn::Id);
    let status = q.get("status").map(str::to_owned);
    if let Some(Err(e)) = status.as_deref().map(str::parse::<DeviceStatus>) {
        q.errors.add(
            "status",
            format!("The selected status is invalid; use one of: {}.", e.allowed),
        );
    }
    let mut filter = DeviceFilter {
        only_id: None,
        status,
        session_id: q.get("session_id").map(str::to_owned),
        trashed: q.trashed,
    };
    let checked = q.finish();
    let page = q.page;
    let paged = state
        .clone()
        .into_inner()
        .db_as(caller, move |c, principal| {
            checked?;
            filter.only_id = principal.device_scope();
            Ok(devices::list(c, &filter, sort, page)?)
        })
        .await?;
    let meta = q.meta(&req, state.public_url.as_deref(), paged.total);
    let list = paged
        .rows
        .into_iter()
        .map(|r| DeviceView::new(r, BoolStyle::Int, None))
        .collect::<Vec<_>>();
    Ok(ok("", ListData { list, meta }))
}

/// `POST /devices`: registers a device (operators only). The secret token is returned in full
/// here and never again.
pub async fn create(
    state: State,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_object(payload, state.limits.max_body_bytes).await;
    let ctx = state.validation;
    let now = now_micros().naive_utc();
    let (row, token) = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            principal.require_operator()?;
            let input = validate_device(&body?, Mode::Full, None, &ctx).map_err(ApiError::Validation)?;
            let token = input.secret_token.clone().unwrap_or_else(generate_secret_token);
            let session_id = input.draft.session_id();
            let row = devices::insert(c, &fields_of(&input.draft), &session_id, &token_fields(&token), now)
                .map_err(|e| match e {
                    StoreError::Conflict(_) => ApiError::field(
                        "name",
                        format!("A device with session id `{session_id}` already exists; choose another name."),
                    ),
                    other => other.into(),
                })?;
            Ok((row, token))
        })
        .await?;
    Ok(ok(
        ADDED,
        DeviceView::new(row, BoolStyle::Json, Some(token)),
    ))
}

/// `GET /devices/{id}`.
pub async fn show(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            let id = own_id(&principal, &id)?;
            Ok(devices::find(c, id, false)?)
        })
        .await?;
    Ok(ok("", DeviceView::new(row, BoolStyle::Int, None)))
}

/// `PUT /devices/{id}` (replace; absent optional fields are cleared).
pub async fn replace(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    update(state, caller, id, payload, Mode::Full).await
}

/// `PATCH /devices/{id}` (absent fields are kept).
pub async fn patch(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    update(state, caller, id, payload, Mode::Patch).await
}

async fn update(
    state: State,
    caller: Caller,
    id: web::Path<String>,
    payload: web::Payload,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let body = read_object(payload, state.limits.max_body_bytes).await;
    let ctx = state.validation;
    let now = now_micros().naive_utc();
    let (row, token) = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            let id = own_id(&principal, &id)?;
            let body = body?;
            wapim_store::transaction(c, |c| {
                let stored = devices::find(c, id, false)?;
                let input: DeviceInput =
                    validate_device(&body, mode, Some(&draft_of(&stored)), &ctx)
                        .map_err(ApiError::Validation)?;
                let token = input.secret_token.clone();
                let token_fields = token.as_deref().map(token_fields);
                let row =
                    devices::update(c, id, &fields_of(&input.draft), token_fields.as_ref(), now)?;
                Ok((row, token))
            })
        })
        .await?;
    Ok(ok(MODIFIED, DeviceView::new(row, BoolStyle::Int, token)))
}

/// `DELETE /devices/{id}`: soft delete (operators only).
pub async fn delete(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let now = now_micros().naive_utc();
    let row = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            let id = own_id(&principal, &id)?;
            principal.require_operator()?;
            Ok(devices::soft_delete(c, id, now)?)
        })
        .await?;
    Ok(ok(DELETED, DeviceView::new(row, BoolStyle::Int, None)))
}

/// `POST /devices/{id}/restore` (operators only); 409 when a live device took its session id.
pub async fn restore(
    state: State,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let now = now_micros().naive_utc();
    let row = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            let id = own_id(&principal, &id)?;
            principal.require_operator()?;
            match devices::restore(c, id, now) {
                Err(StoreError::Conflict(_)) => Err(ApiError::Conflict(
                    "session_id",
                    "Another live device uses this device's session id; delete or rename it first."
                        .into(),
                )),
                other => Ok(other?),
            }
        })
        .await?;
    Ok(ok(RESTORED, DeviceView::new(row, BoolStyle::Int, None)))
}

/// The id in the path, if the caller may see that device: a device sees only itself, and any
/// other id is 404 (not 403) so ids of other tenants are not confirmed.
fn own_id(principal: &Principal, raw: &str) -> Result<i64, ApiError> {
    let id = parse_id(raw)?;
    match principal.device_scope() {
        Some(own) if own != id => Err(ApiError::NotFound),
        _ => Ok(id),
    }
}

fn fields_of(d: &DeviceDraft) -> DeviceFields {
    DeviceFields {
        name: d.name.clone(),
        phone_number: d.phone_number.clone(),
        webhook_status: d.webhook_status,
        webhook_url: d.webhook_url.clone(),
        webhook_options: d.webhook_options_json(),
        opening_message: d.opening_message.clone(),
        closing_message: d.closing_message.clone(),
        auto_reply: d.auto_reply.clone(),
        auto_forward: d.auto_forward.clone(),
        auto_forward_number: d.auto_forward_number.clone(),
    }
}

fn draft_of(row: &DeviceRow) -> DeviceDraft {
    DeviceDraft {
        name: row.name.clone(),
        phone_number: row.phone_number.clone(),
        webhook_status: row.webhook_status,
        webhook_url: row.webhook_url.clone(),
        webhook_options: parse_webhook_options(row.webhook_options.as_deref()),
        opening_message: row.opening_message.clone(),
        closing_message: row.closing_message.clone(),
        auto_reply: row.auto_reply.clone(),
        auto_forward: row.auto_forward.clone(),
        auto_forward_number: row.auto_forward_number.clone(),
    }
}

fn token_fields(token: &str) -> TokenFields {
    TokenFields {
        secret_token_hash: hash_token(token),
        secret_token_masked: mask_token(token),
    }
}

//! The integrator's webhooks: the device's signing secret (rotation) and the delivery log
//! (`/api/webhook-deliveries`: list, one with its attempts, replay).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use wapim_app::{devices as device_use_case, webhook_deliveries as use_case};
use wapim_domain::time::now_micros;
use wapim_domain::WebhookDeliveryStatus;
use wapim_store::webhooks::DeliveryFilter;
use wapim_web::envelope::ok;
use wapim_web::ApiError;

use crate::auth::Authenticated;
use crate::listing::{ListData, ListQuery};
use crate::routes::parse_id;
use crate::state::State;
use crate::views::DeliveryView;

/// `POST /devices/{id}/webhook-secret`: a new `whsec_…` secret, shown this once; every attempt
/// from now on is signed with it.
#[utoipa::path(
    post,
    path = "/api/devices/{id}/webhook-secret",
    operation_id = "webhooks_rotate_secret",
    tag = "webhooks",
    summary = "A new signing secret for the device's webhook.",
    params(
        ("id" = i64, Path, description = "The device's id."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::openapi::WebhookSecret>),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E503,
    )
)]
pub async fn rotate_secret(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = now_micros().naive_utc();
    let secret = state
        .db
        .run(move |c| device_use_case::rotate_webhook_secret(c, &actor, id, now))
        .await?;
    Ok(ok(
        "Webhook secret rotated",
        json!({ "device_id": id, "webhook_secret": secret }),
    ))
}

/// `GET /webhook-deliveries?device_id=&event=&status=&page=&per_page=`, newest first.
#[utoipa::path(
    get,
    path = "/api/webhook-deliveries",
    operation_id = "webhooks_list",
    tag = "webhooks",
    summary = "Deliveries to the integrator's webhook.",
    params(
        crate::openapi::ListParams,
        crate::openapi::DeliveryFilters,
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::listing::ListData<crate::views::DeliveryView>>),
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
    let device_id = q.id("device_id");
    let status = match q.get("status").map(str::parse::<WebhookDeliveryStatus>) {
        None => None,
        Some(Ok(status)) => Some(status),
        Some(Err(e)) => {
            q.errors.add(
                "status",
                format!("The selected status is invalid; use one of: {}.", e.allowed),
            );
            None
        }
    };
    let event = q.get("event").map(str::to_owned);
    if event
        .as_deref()
        .is_some_and(|e| e.is_empty() || e.len() > 64)
    {
        q.errors.add(
            "event",
            "The event must be an event name such as message.ack.",
        );
    }
    let filter = DeliveryFilter {
        device_id,
        event,
        status,
    };
    q.finish()?;
    let page = q.page;
    let paged = state
        .db
        .run(move |c| use_case::list(c, &actor, filter, page))
        .await?;
    let meta = q.meta(&req, &state.links, paged.total);
    let list: Vec<DeliveryView> = paged
        .rows
        .into_iter()
        .map(|row| DeliveryView::new(row, None))
        .collect();
    Ok(ok("", ListData { list, meta }))
}

/// `GET /webhook-deliveries/{id}`: the delivery and every attempt.
#[utoipa::path(
    get,
    path = "/api/webhook-deliveries/{id}",
    operation_id = "webhooks_show",
    tag = "webhooks",
    summary = "A delivery with every attempt.",
    params(
        ("id" = i64, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::DeliveryView>),
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
    let (row, attempts) = state.db.run(move |c| use_case::show(c, &actor, id)).await?;
    Ok(ok("", DeliveryView::new(row, Some(attempts))))
}

/// `POST /webhook-deliveries/{id}/replay`: sent again now (same `webhook-id`, a fresh day of
/// retries).
#[utoipa::path(
    post,
    path = "/api/webhook-deliveries/{id}/replay",
    operation_id = "webhooks_replay",
    tag = "webhooks",
    summary = "Deliver it again.",
    params(
        ("id" = i64, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::DeliveryView>),
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E409,
        crate::openapi::E503,
    )
)]
pub async fn replay(
    state: State,
    Authenticated(actor): Authenticated,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let now = now_micros().naive_utc();
    let row = state
        .db
        .run(move |c| use_case::replay(c, &actor, id, now))
        .await?;
    Ok(ok("Delivery queued again", DeliveryView::new(row, None)))
}

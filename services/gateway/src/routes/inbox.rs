//! `/api/inbox`: what contacts sent the devices (WAHA's `message` events), newest first, with
//! the list conventions of `/api/messages`; a device sees its own.

use actix_web::{web, HttpRequest, HttpResponse};
use wapim_app::inbox as use_case;
use wapim_domain::MessageType;
use wapim_store::inbound::InboundFilter;
use wapim_web::envelope::ok;
use wapim_web::ApiError;

use crate::auth::Authenticated;
use crate::listing::{ListData, ListQuery};
use crate::routes::messages::date_bound;
use crate::routes::parse_id;
use crate::state::State;
use crate::views::InboundView;

/// `GET /inbox?device_id=&sender=&message_type=&date_from=&date_to=&page=&per_page=`.
#[utoipa::path(
    get,
    path = "/api/inbox",
    operation_id = "inbox_list",
    tag = "inbox",
    summary = "Messages contacts sent (a device sees its own).",
    params(
        crate::openapi::ListParams,
        crate::openapi::InboxFilters,
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::listing::ListData<crate::views::InboundView>>),
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
    let sender = match q
        .get("sender")
        .map(|r| state.validation.phones.normalize(r))
    {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => {
            q.errors
                .add("sender", "The sender is not a valid phone number.");
            None
        }
    };
    let message_type = q.get("message_type").map(str::to_owned);
    if let Some(kind) = message_type.as_deref() {
        if kind.parse::<MessageType>().is_err() {
            q.errors.add(
                "message_type",
                format!(
                    "The selected message type is invalid; use one of: {}.",
                    MessageType::ALLOWED.trim_end_matches(", ")
                ),
            );
        }
    }
    let filter = InboundFilter {
        device_id,
        sender,
        message_type,
        from: date_bound(&mut q, "date_from", false, &state),
        to: date_bound(&mut q, "date_to", true, &state),
    };
    q.finish()?;
    let page = q.page;
    let paged = state
        .db
        .run(move |c| use_case::list(c, &actor, filter, page))
        .await?;
    let meta = q.meta(&req, &state.links, paged.total);
    let list: Vec<InboundView> = paged.rows.into_iter().map(Into::into).collect();
    Ok(ok("", ListData { list, meta }))
}

/// `GET /inbox/{id}`.
#[utoipa::path(
    get,
    path = "/api/inbox/{id}",
    operation_id = "inbox_show",
    tag = "inbox",
    summary = "Read an inbound message.",
    params(
        ("id" = i64, Path, description = "The inbound message's id."),
    ),
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::views::InboundView>),
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
    let row = state.db.run(move |c| use_case::show(c, &actor, id)).await?;
    Ok(ok("", InboundView::from(row)))
}

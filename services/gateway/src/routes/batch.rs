//! `POST /api/messages-batch`: many messages in one request, each validated on its own, the
//! valid ones stored in one transaction under one `batch_id`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use wapim_app::messages as use_case;
use wapim_domain::message::{validate_message, MessageInput};
use wapim_domain::time::now_micros;
use wapim_domain::validation::Mode;
use wapim_domain::{ValidationContext, ValidationErrors};
use wapim_telemetry::TraceContext;
use wapim_web::body::{as_object, read_json};
use wapim_web::envelope::{ok_json, BATCH_PROCESSED};
use wapim_web::ApiError;

use crate::auth::Authenticated;
use crate::idempotency;
use crate::state::State;

/// The outcome of one item, as the reference shows it.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ItemResult {
    Stored {
        index: usize,
        status: bool,
        /// A string, as the reference shows it.
        message_id: String,
    },
    Refused {
        index: usize,
        status: bool,
        errors: ValidationErrors,
    },
}

/// `data` of the batch response.
#[derive(Debug, Serialize)]
struct BatchData {
    batch_id: String,
    items: Vec<ItemResult>,
}

/// `POST /messages-batch`. Honours `Idempotency-Key`. Every item is validated (on the
/// blocking pool: 1,000 phone numbers are CPU work) before a database connection is taken.
#[utoipa::path(
    post,
    path = "/api/messages-batch",
    operation_id = "batch_create",
    tag = "messages",
    summary = "Many messages in one request, each validated on its own.",
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe: the same request within 24 h returns the first answer."),
    ),
    request_body = crate::openapi::BatchBody,
    responses(
        (status = 200, description = "OK.", body = crate::openapi::Envelope<crate::openapi::BatchResult>),
        crate::openapi::E400,
        crate::openapi::E401,
        crate::openapi::E404,
        crate::openapi::E413,
        crate::openapi::E422,
        crate::openapi::E503,
    )
)]
pub async fn create(
    state: State,
    Authenticated(actor): Authenticated,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(payload, state.limits.max_batch_body_bytes).await?;
    let key = idempotency::key_of(&req, &body)?.map(|k| k.scoped(&actor));
    let max = state.limits.batch_max_items;
    let ctx = state.validation;
    let checked = web::block(move || check_items(&body, max, &ctx)).await??;
    let now = now_micros().naive_utc();
    let trace = TraceContext::current();
    let ttl = state.limits.idempotency_ttl;
    let stored = state
        .db
        .run(move |c| {
            idempotency::run(c, key.as_ref(), now, ttl, |c| {
                let batch_id = uuid::Uuid::new_v4().to_string();
                let outcomes = use_case::accept_batch(
                    c,
                    &actor,
                    &checked,
                    &batch_id,
                    now,
                    trace.as_ref().map(TraceContext::traceparent),
                )?;
                let items = outcomes
                    .into_iter()
                    .enumerate()
                    .map(|(index, outcome)| match outcome {
                        Ok(row) => ItemResult::Stored {
                            index,
                            status: true,
                            message_id: row.id.to_string(),
                        },
                        Err(errors) => ItemResult::Refused {
                            index,
                            status: false,
                            errors,
                        },
                    })
                    .collect();
                Ok(ok_json(BATCH_PROCESSED, BatchData { batch_id, items }))
            })
        })
        .await?;
    Ok(stored.into_response())
}

/// Checks the envelope (`items`: an array of 1 to `max`) and validates each item on its own.
fn check_items(
    body: &Value,
    max: usize,
    ctx: &ValidationContext,
) -> Result<Vec<Result<MessageInput, ValidationErrors>>, ApiError> {
    let map = as_object(body)?;
    let items = match map.get("items") {
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(ApiError::field(
                "items",
                "The items must have at least 1 item.",
            ))
        }
        Some(Value::Array(items)) if items.len() > max => {
            return Err(ApiError::field(
                "items",
                format!("The items may not have more than {max} items."),
            ))
        }
        Some(Value::Array(items)) => items,
        Some(_) => return Err(ApiError::field("items", "The items must be an array.")),
        None => return Err(ApiError::field("items", "The items field is required.")),
    };
    Ok(items
        .iter()
        .map(|item| match item {
            Value::Object(m) => validate_message(m, Mode::Full, None, ctx),
            _ => {
                let mut e = ValidationErrors::new();
                e.add("item", "Each item must be a JSON object.");
                Err(e)
            }
        })
        .collect())
}

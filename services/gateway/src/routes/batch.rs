//! `POST /api/messages-batch`: many messages in one request, each validated on its own, the
//! valid ones stored in one transaction under one `batch_id`.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use wapim_domain::message::{validate_message, MessageInput};
use wapim_domain::time::now_micros;
use wapim_domain::validation::Mode;
use wapim_domain::{ValidationContext, ValidationErrors};
use wapim_store::devices::DeviceRow;
use wapim_store::messages;

use crate::auth::Caller;
use crate::body::{as_object, read_json};
use crate::envelope::{ok_json, BATCH_PROCESSED};
use crate::error::ApiError;
use crate::idempotency;
use crate::routes::messages::{new_message, resolve_device};
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

/// `POST /messages-batch`. Honours `Idempotency-Key`.
pub async fn create(
    state: State,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(payload, state.limits.max_batch_body_bytes)
        .await
        .and_then(|body| Ok((idempotency::key_of(&req, &body)?, body)));
    let max = state.limits.batch_max_items;
    let ctx = state.validation;
    let now = now_micros().naive_utc();
    let ttl = state.limits.idempotency_ttl;
    let stored = state
        .into_inner()
        .db_as(caller, move |c, principal| {
            let (key, body) = body?;
            let checked = check_items(&body, max, &ctx)?;
            let key = key.map(|k| k.scoped(&principal));
            idempotency::run(c, key.as_ref(), now, ttl, |c| {
                let batch_id = uuid::Uuid::new_v4().to_string();
                let mut sessions: HashMap<Option<String>, Result<DeviceRow, String>> =
                    HashMap::new();
                let mut rows = Vec::new();
                let mut outcome: Vec<Result<usize, ValidationErrors>> =
                    Vec::with_capacity(checked.len());
                for input in &checked {
                    match input {
                        Err(e) => outcome.push(Err(e.clone())),
                        Ok(input) => {
                            let device =
                                sessions.entry(input.session_id.clone()).or_insert_with(|| {
                                    resolve_device(c, &principal, input.session_id.as_deref())
                                });
                            match device {
                                Ok(device) => {
                                    outcome.push(Ok(rows.len()));
                                    rows.push(new_message(
                                        device,
                                        Some(&batch_id),
                                        &input.draft,
                                        now,
                                    ));
                                }
                                Err(m) => {
                                    let mut e = ValidationErrors::new();
                                    e.add("session_id", m.clone());
                                    outcome.push(Err(e));
                                }
                            }
                        }
                    }
                }
                let inserted = messages::insert_many(c, &rows)?;
                let items = outcome
                    .into_iter()
                    .enumerate()
                    .map(|(index, r)| match r {
                        Ok(at) => inserted
                            .get(at)
                            .map(|row| ItemResult::Stored {
                                index,
                                status: true,
                                message_id: row.id.to_string(),
                            })
                            .ok_or_else(|| {
                                ApiError::Internal("batch insert returned fewer rows".into())
                            }),
                        Err(errors) => Ok(ItemResult::Refused {
                            index,
                            status: false,
                            errors,
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
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

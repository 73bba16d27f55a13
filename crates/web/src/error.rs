//! The one place where failures become HTTP: every error renders the reference's envelope
//! `{"status": false, "message": …, "data": null, "errors": {field: [..]}}`. Database details
//! never reach a response: they go to the log, the client gets 503 or 500 without them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use wapim_app::AppError;
use wapim_domain::ValidationErrors;
use wapim_store::StoreError;
use wapim_waha::WahaError;

/// Everything a handler can fail with, mapped once to a status and a human message.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 422: per-field problems with the input.
    #[error("The given data was invalid.")]
    Validation(ValidationErrors),
    /// 400: the body is not JSON at all.
    #[error("{0}")]
    MalformedBody(String),
    /// 401: no or wrong credentials.
    #[error("Unauthenticated.")]
    Unauthenticated,
    /// 403: authenticated, but the action is for operators.
    #[error("This action is unauthorized.")]
    Forbidden,
    /// 404: unknown id, or a record of another device.
    #[error("Data not found")]
    NotFound,
    /// 404: no such route.
    #[error("Route not found")]
    RouteNotFound,
    /// 405: the route exists but not with this method.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// 409: the change conflicts with the record's state (field, message).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// 413: body over the configured limit.
    #[error("The request body is larger than {0} bytes.")]
    PayloadTooLarge(usize),
    /// 503: the database cannot be reached in time (detail for the log only).
    #[error("Service temporarily unavailable, try again.")]
    Unavailable(String),
    /// 503: too many requests are already waiting for the database.
    #[error("Service busy, try again.")]
    Saturated,
    /// 500: a bug or an unexpected database failure; details go to the log only.
    #[error("Internal server error")]
    Internal(String),
    /// A call Wapim passed through to WAHA did not succeed: 502 (unreachable, failed), 504 (too
    /// slow) or WAHA's own 4xx, with a message saying which and WAHA's reason when it gave one.
    #[error("{message}")]
    Waha {
        /// The HTTP status to answer.
        status: u16,
        /// What happened, for people.
        message: String,
        /// WAHA's own words, when it gave some.
        reason: Option<String>,
    },
}

/// WAHA's reason in an error body: `message`, `error`, `exception.message`, or the text itself.
fn waha_reason(body: Option<&serde_json::Value>) -> Option<String> {
    let body = body?;
    let text = body
        .get("message")
        .or_else(|| body.get("error"))
        .or_else(|| body.get("exception").and_then(|e| e.get("message")))
        .unwrap_or(body);
    match text {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        serde_json::Value::Null => None,
        serde_json::Value::String(_) => None,
        other => Some(other.to_string()),
    }
}

impl From<WahaError> for ApiError {
    fn from(e: WahaError) -> Self {
        let reason = waha_reason(e.body());
        let (status, message) = match &e {
            WahaError::Timeout => (504, "WAHA did not answer in time.".to_owned()),
            WahaError::Connect(detail) => {
                tracing::warn!(%detail, "WAHA unreachable");
                (502, "WAHA could not be reached.".to_owned())
            }
            WahaError::Unauthorized => (
                502,
                "WAHA refused Wapim's API key (check WAPIM_WAHA__API_KEY).".to_owned(),
            ),
            WahaError::SessionNotFound { .. } => {
                (404, "WAHA does not know this session.".to_owned())
            }
            WahaError::SessionNotWorking { status, .. } => (
                422,
                format!(
                    "The WAHA session is not in the state this needs (it is {}).",
                    status.as_deref().unwrap_or("unknown")
                ),
            ),
            WahaError::Rejected { status, .. } => (*status, "WAHA refused the request.".to_owned()),
            WahaError::ReachOutTimelock { .. } | WahaError::Server { .. } => {
                (502, "WAHA failed to answer.".to_owned())
            }
            WahaError::InvalidResponse(detail) => {
                tracing::warn!(%detail, "unreadable WAHA answer");
                (502, "WAHA gave an answer Wapim could not read.".to_owned())
            }
        };
        let message = match &reason {
            Some(r) => format!("{message} WAHA says: {r}"),
            None => message,
        };
        ApiError::Waha {
            status,
            message,
            reason,
        }
    }
}

impl ApiError {
    /// A 422 with one message on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = ValidationErrors::new();
        errors.add(field, message);
        ApiError::Validation(errors)
    }
}

impl From<wapim_app::intake::IntakeError> for ApiError {
    fn from(e: wapim_app::intake::IntakeError) -> Self {
        use wapim_app::intake::IntakeError;
        match e {
            IntakeError::Saturated => ApiError::Saturated,
            IntakeError::Stopped => ApiError::Unavailable(e.to_string()),
            IntakeError::Store(e) => e.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict(field) => ApiError::Conflict(
                field,
                format!(
                    "Another record already uses this {}.",
                    field.replace('_', " ")
                ),
            ),
            e if e.is_unavailable() => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Unauthenticated => ApiError::Unauthenticated,
            AppError::Forbidden => ApiError::Forbidden,
            AppError::NotFound => ApiError::NotFound,
            AppError::Invalid(errors) => ApiError::Validation(errors),
            AppError::NotEditable(status) => ApiError::field(
                "status",
                format!("The message is {status} and can no longer be edited."),
            ),
            AppError::Conflict(field, message) => ApiError::Conflict(field, message),
            AppError::Store(e) => e.into(),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MalformedBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(..) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) | ApiError::Saturated => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Waha { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let errors = match self {
            ApiError::Validation(errors) => json!(errors),
            ApiError::MalformedBody(detail) => json!({ "body": [detail] }),
            ApiError::Conflict(field, message) => json!({ *field: [message] }),
            ApiError::PayloadTooLarge(_) => json!({ "body": [self.to_string()] }),
            ApiError::Waha {
                reason: Some(reason),
                ..
            } => json!({ "waha": [reason] }),
            _ => json!({}),
        };
        match self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "database unavailable"),
            ApiError::Saturated => tracing::warn!("database admission queue full"),
            _ => {}
        }
        let message = match self {
            ApiError::MalformedBody(_) => "Malformed JSON body.".to_owned(),
            other => other.to_string(),
        };
        let mut response = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthenticated) {
            response.insert_header((
                "WWW-Authenticate",
                "Bearer realm=\"wapim\", X-Session-Id realm=\"wapim\"",
            ));
        }
        if matches!(self, ApiError::Unavailable(_) | ApiError::Saturated) {
            response.insert_header(("Retry-After", "1"));
        }
        response.json(json!({
            "status": false,
            "message": message,
            "data": null,
            "errors": errors,
        }))
    }
}

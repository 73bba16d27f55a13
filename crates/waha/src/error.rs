//! How a WAHA call can fail, sorted by what the caller should do about it.

use serde_json::Value;

/// A failed WAHA call, classified so the dispatcher can decide between retrying, parking the
/// device and failing the message without parsing bodies itself.
#[derive(Debug, thiserror::Error)]
pub enum WahaError {
    /// No answer within the client's timeout. The request may still complete inside WAHA: look
    /// the message up before sending it again.
    #[error("WAHA did not answer in time")]
    Timeout,
    /// WAHA could not be reached, or the connection broke before a full answer arrived (also
    /// used by [`crate::WahaClient::new`] for an unusable base URL).
    #[error("cannot reach WAHA: {0}")]
    Connect(String),
    /// 401: the API key is missing or wrong.
    #[error("WAHA refused the API key (401)")]
    Unauthorized,
    /// 404: WAHA has no session with that name.
    #[error("WAHA session not found (404)")]
    SessionNotFound {
        /// WAHA's error body.
        body: Value,
    },
    /// 422 "Session status is not as expected": the session exists but is not `WORKING`.
    #[error("WAHA session is not WORKING (status {status:?})")]
    SessionNotWorking {
        /// The session's status as WAHA reported it, when it did.
        status: Option<String>,
        /// WAHA's error body.
        body: Value,
    },
    /// WhatsApp's 463 reach-out timelock (GOWS: a 500 whose `exception.message` contains
    /// "server returned error 463"). Not transient: retrying makes it worse.
    #[error("WhatsApp refuses new conversations for now (reach-out timelock, 463)")]
    ReachOutTimelock {
        /// WAHA's error body.
        body: Value,
    },
    /// Any other 5xx: an engine or server failure that may pass.
    #[error("WAHA failed with {status}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// WAHA's error body (a JSON string when it was not JSON).
        body: Value,
    },
    /// Any other 4xx: the request cannot succeed by retrying it.
    #[error("WAHA rejected the request with {status}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// WAHA's error body (a JSON string when it was not JSON).
        body: Value,
    },
    /// A success status with a body Wapim cannot read, or an unexpected status (3xx).
    #[error("unexpected answer from WAHA: {0}")]
    InvalidResponse(String),
}

impl WahaError {
    /// Whether trying the same call again later may succeed (timeouts, connection failures and
    /// 5xx other than the reach-out timelock). A retried *send* must first look the message up:
    /// the first attempt may have gone through.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Timeout | Self::Connect(_) | Self::Server { .. })
    }

    /// WAHA's error body, for logs and for storing with a failed message.
    pub fn body(&self) -> Option<&Value> {
        match self {
            Self::SessionNotFound { body }
            | Self::SessionNotWorking { body, .. }
            | Self::ReachOutTimelock { body }
            | Self::Server { body, .. }
            | Self::Rejected { body, .. } => Some(body),
            Self::Timeout | Self::Connect(_) | Self::Unauthorized | Self::InvalidResponse(_) => {
                None
            }
        }
    }

    /// Classifies a non-2xx answer by its status and body.
    pub(crate) fn from_status(status: u16, body: Value) -> Self {
        match status {
            401 => Self::Unauthorized,
            404 => Self::SessionNotFound { body },
            422 if is_session_status_error(&body) => Self::SessionNotWorking {
                status: body
                    .get("status")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                body,
            },
            500..=599 if is_reach_out_timelock(&body) => Self::ReachOutTimelock { body },
            500..=599 => Self::Server { status, body },
            400..=499 => Self::Rejected { status, body },
            _ => Self::InvalidResponse(format!("unexpected status {status}: {body}")),
        }
    }
}

/// WAHA's 422 for a session that is not in the expected status carries
/// `"error": "Session status is not as expected…"` (and `status`, `expected`).
fn is_session_status_error(body: &Value) -> bool {
    let says = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| s.contains("Session status is not as expected"))
    };
    says("error") || says("message")
}

/// GOWS reports WhatsApp's 463 as a 500 whose `exception.message` is
/// `2 UNKNOWN: server returned error 463`.
fn is_reach_out_timelock(body: &Value) -> bool {
    let exception = body.get("exception");
    [
        exception.and_then(|e| e.get("message")),
        exception.and_then(|e| e.get("details")),
    ]
    .into_iter()
    .flatten()
    .filter_map(Value::as_str)
    .any(|m| m.contains("server returned error 463"))
}

/// Whether a 404 body is about the session rather than the thing looked up in it (WAHA says
/// "We didn't find a session with name …" or "Session not found").
pub(crate) fn is_session_not_found(body: &Value) -> bool {
    body.get("message")
        .and_then(Value::as_str)
        .is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("didn't find a session") || m.starts_with("session not found")
        })
}

//! Wapim's use cases, one function each, each one transaction over the store.
//!
//! Services parse and authorise, call a use case here, and render what it returns; the rules of
//! what a change means (a deleted device cancels its pending messages, a restore brings back only
//! what its own deletion cancelled, an edit never overwrites a concurrent one) live here once, so
//! the send pipeline adds "queue it for sending" in exactly one place.

pub mod automations;
pub mod cache;
pub mod credentials;
pub mod devices;
pub mod inbox;
pub mod intake;
pub mod messages;
pub mod relay;
pub mod suppressions;
pub mod waha_servers;
pub mod webhook_deliveries;

use wapim_domain::{DeviceId, MessageStatus, ValidationErrors};
use wapim_store::StoreError;

/// Who is acting: the operator, or one device acting for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Holder of the operator token: may manage every device and message.
    Operator,
    /// A device authenticated by its own credentials: sees only itself and its messages.
    Device(DeviceRef),
}

/// The identity of an authenticated device: what never changes for its whole life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRef {
    /// Its id.
    pub id: DeviceId,
    /// Its session id (fixed at creation, never reused).
    pub session_id: String,
}

impl Actor {
    /// The device the actor is confined to, if any.
    pub fn device_scope(&self) -> Option<i64> {
        match self {
            Actor::Operator => None,
            Actor::Device(d) => Some(d.id.get()),
        }
    }

    /// Fails with `Forbidden` unless the actor is the operator.
    pub fn require_operator(&self) -> Result<(), AppError> {
        match self {
            Actor::Operator => Ok(()),
            Actor::Device(_) => Err(AppError::Forbidden),
        }
    }

    /// Key under which this actor's idempotency keys live.
    pub fn idempotency_scope(&self) -> String {
        match self {
            Actor::Operator => "admin".to_owned(),
            Actor::Device(d) => format!("device:{}", d.id),
        }
    }
}

/// Why a use case refused or failed; services map each variant to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Wrong or missing credentials.
    #[error("unauthenticated")]
    Unauthenticated,
    /// The actor may not do this (a device attempting an operator action).
    #[error("forbidden")]
    Forbidden,
    /// No such record, or one the actor may not see.
    #[error("not found")]
    NotFound,
    /// Per-field problems with the input.
    #[error("invalid input")]
    Invalid(ValidationErrors),
    /// The message is no longer editable (it left `pending`).
    #[error("the message is {0} and can no longer be edited")]
    NotEditable(MessageStatus),
    /// The change conflicts with the record's current state (field, human message).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// The database failed or could not be reached.
    #[error(transparent)]
    Store(StoreError),
}

impl AppError {
    /// A validation failure with one message on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut errors = ValidationErrors::new();
        errors.add(field, message);
        AppError::Invalid(errors)
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound,
            StoreError::Status(status) => AppError::NotEditable(status),
            other => AppError::Store(other),
        }
    }
}

impl From<ValidationErrors> for AppError {
    fn from(e: ValidationErrors) -> Self {
        AppError::Invalid(e)
    }
}

/// Runs blocking database work with a pooled connection on tokio's blocking pool, for the
/// background loops (relay, dispatcher) that are not behind the web layer's admission limit. A
/// task that died is reported as the database being unavailable (the caller retries).
pub async fn with_connection<T: Send + 'static>(
    pool: &wapim_store::Pool,
    work: impl FnOnce(&mut wapim_store::DbConn) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let pool = pool.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("database task: {e}")))?
}

/// How many times a read-validate-write use case re-reads after a concurrent change before it
/// gives up with a 409 (each retry re-applies the caller's change to the fresh row).
pub const STALE_RETRIES: usize = 5;

//! What every handler shares: the pool, the validation context and the limits.

use std::sync::Arc;

use actix_web::web;
use wapim_domain::ValidationContext;
use wapim_store::{DbConn, Pool};

use crate::auth::{Caller, Principal};
use crate::error::ApiError;

/// Request limits taken from settings.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Body limit of single-record endpoints.
    pub max_body_bytes: usize,
    /// Body limit of the batch endpoint.
    pub max_batch_body_bytes: usize,
    /// Items per batch.
    pub batch_max_items: usize,
    /// How long idempotency keys replay.
    pub idempotency_ttl: chrono::Duration,
}

/// Shared, read-only state of the gateway.
pub struct AppState {
    /// Database connections.
    pub pool: Pool,
    /// The operator token.
    pub admin_token: String,
    /// Phone region and time zone for validation.
    pub validation: ValidationContext,
    /// Base URL for list links, when configured.
    pub public_url: Option<String>,
    /// Request limits.
    pub limits: Limits,
}

/// The handle handlers receive.
pub type State = web::Data<AppState>;

impl AppState {
    /// Runs blocking diesel work on actix's blocking pool with a pooled connection, so an
    /// actix worker never waits on the database.
    pub async fn db<T, F>(self: &Arc<Self>, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, ApiError> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool
                .get()
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            work(&mut conn)
        })
        .await?
    }

    /// Like [`AppState::db`], verifying the caller first in the same blocking call; `work` runs
    /// only for an authenticated caller, so 401 always takes precedence over other errors.
    pub async fn db_as<T, F>(self: &Arc<Self>, caller: Caller, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn, Principal) -> Result<T, ApiError> + Send + 'static,
    {
        self.db(move |conn| {
            let principal = caller.resolve(conn)?;
            work(conn, principal)
        })
        .await
    }
}

//! Blocking database work, bounded: diesel is synchronous, so work runs on the blocking pool with
//! a pooled connection; and at most `pool size + queue` requests wait for a connection at once.
//! Past that a request is answered 503 with `Retry-After` at once instead of piling up threads
//! and memory behind a saturated or unreachable database.

use std::sync::Arc;

use actix_web::web;
use tokio::sync::Semaphore;
use wapim_store::{DbConn, Pool};

use crate::error::ApiError;

/// A pool and the admission limit in front of it; cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    admission: Arc<Semaphore>,
}

impl Db {
    /// Wraps `pool`, admitting its size plus `max_queued` requests at a time.
    pub fn new(pool: Pool, max_queued: usize) -> Self {
        let permits = pool.max_size() as usize + max_queued;
        Self {
            pool,
            admission: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    /// The pool, for work outside requests (start-up, maintenance).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs `work` with a pooled connection on the blocking pool, so an actix worker never waits
    /// on the database. 503 when too many requests already wait or no connection comes in time.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        E: Into<ApiError> + Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    {
        let permit = self
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::Saturated)?;
        let pool = self.pool.clone();
        web::block(move || {
            let _permit = permit;
            let mut conn = pool
                .get()
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            work(&mut conn).map_err(Into::into)
        })
        .await?
    }
}

/// Creates the database if allowed and missing, opens the pool, applies migrations, and puts the
/// admission limit in front of it: every service's start-up. The caller owns the result: one
/// process may host several services on one pool.
pub async fn prepare(
    settings: &wapim_settings::DatabaseSettings,
) -> Result<Db, wapim_store::StoreError> {
    let s = settings.clone();
    let (pool, applied) = tokio::task::spawn_blocking(move || {
        wapim_store::open(
            &s.url,
            s.create_if_missing,
            s.pool_max_size,
            std::time::Duration::from_secs(s.connect_timeout_secs),
        )
    })
    .await
    .map_err(|e| wapim_store::StoreError::Unavailable(e.to_string()))??;
    if applied > 0 {
        tracing::info!(applied, "migrations applied");
    }
    Ok(Db::new(pool, settings.max_queued_requests))
}

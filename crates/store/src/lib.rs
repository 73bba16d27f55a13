//! Everything SQL: the connection type, the r2d2 pool, embedded migrations, the schema, row
//! structs and repository functions. diesel lives only here.
//!
//! Repository functions are free functions over `&mut DbConn` (the vaultwarden shape) so callers
//! compose transactions. They use the portable subset of diesel: when the SQLite backend lands,
//! `DbConn` becomes a `#[derive(MultiConnection)]` enum and only the few PostgreSQL-specific
//! statements (marked `backend-specific`) grow a second arm.
//!
//! Writes return rows with `.returning(table::all_columns)`, not `Row::as_returning()`: the
//! latter is typed for one backend and does not pass through a `MultiConnection` (checked by
//! compiling this crate against a Pg + SQLite `MultiConnection`: with `all_columns`, only the
//! multi-row batch insert needs its own arm).

pub mod devices;
pub mod idempotency;
pub mod listing;
pub mod messages;
pub mod schema;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, Pool as R2d2Pool, PooledConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use listing::{Page, Paged, Trashed};

/// The connection every repository function takes.
pub type DbConn = PgConnection;
/// The SQL dialect of [`DbConn`], for boxed queries.
pub type Backend = <DbConn as diesel::Connection>::Backend;
/// A pool of [`DbConn`]s shared by a service's workers.
pub type Pool = R2d2Pool<ConnectionManager<DbConn>>;
/// A connection checked out of the [`Pool`].
pub type PooledConn = PooledConnection<ConnectionManager<DbConn>>;

/// The PostgreSQL migrations, compiled into every binary that runs them.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// What can go wrong in the store; the gateway maps each to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule would be broken; the payload names the rule's field.
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The row is in a state that forbids the change (e.g. editing a sent message).
    #[error("{0}")]
    State(String),
    /// No connection could be had in time: the database is down or saturated.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Builds the pool and opens its connections now (r2d2 keeps `max_size` idle by default), so a
/// wrong URL fails at start-up and the first requests do not pay for connection set-up.
pub fn connect(url: &str, max_size: u32, timeout: Duration) -> Result<Pool, StoreError> {
    let manager = ConnectionManager::<DbConn>::new(url);
    R2d2Pool::builder()
        .max_size(max_size)
        .connection_timeout(timeout)
        .test_on_check_out(false)
        .build(manager)
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Applies pending migrations. Safe to run from several processes at once: PostgreSQL's
/// advisory lock serialises them. backend-specific.
pub fn run_migrations(conn: &mut DbConn) -> Result<usize, StoreError> {
    conn.batch_execute("SELECT pg_advisory_lock(727364)")?;
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map(|v| v.len())
        .map_err(|e| StoreError::Migration(e.to_string()));
    conn.batch_execute("SELECT pg_advisory_unlock(727364)")?;
    applied
}

/// Creates the database named in `url` when it does not exist, connecting to the server's
/// `postgres` database to do so. backend-specific.
pub fn create_database_if_missing(url: &str) -> Result<bool, StoreError> {
    let (server_url, name) = split_database_url(url)
        .ok_or_else(|| StoreError::Unavailable("the database URL names no database".into()))?;
    if DbConn::establish(url).is_ok() {
        return Ok(false);
    }
    let mut admin = DbConn::establish(&server_url)
        .map_err(|e| StoreError::Unavailable(format!("cannot reach the server: {e}")))?;
    let quoted = name.replace('"', "\"\"");
    match admin.batch_execute(&format!("CREATE DATABASE \"{quoted}\"")) {
        Ok(()) => Ok(true),
        // Another process created it meanwhile.
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(false),
        Err(e) if e.to_string().contains("already exists") => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Splits `postgres://u@h:5432/name?x=y` into (`postgres://u@h:5432/postgres?x=y`, `name`).
pub fn split_database_url(url: &str) -> Option<(String, String)> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://")? + 3;
    let slash = base[scheme_end..].rfind('/')? + scheme_end;
    let name = &base[slash + 1..];
    if name.is_empty() {
        return None;
    }
    let mut server = format!("{}/postgres", &base[..slash]);
    if let Some(q) = query {
        server.push('?');
        server.push_str(q);
    }
    Some((server, name.to_owned()))
}

/// Maps a unique-violation into a [`StoreError::Conflict`] on `field`, leaving other errors.
pub(crate) fn conflict_on(field: &'static str) -> impl Fn(diesel::result::Error) -> StoreError {
    move |e| match e {
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => StoreError::Conflict(field),
        other => StoreError::Database(other),
    }
}

enum TxError<E> {
    App(E),
    Db(diesel::result::Error),
}

impl<E> From<diesel::result::Error> for TxError<E> {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

/// Runs `work` in a database transaction, committing on `Ok` and rolling back on `Err`, with
/// the caller's own error type (so services need not know diesel's).
pub fn transaction<T, E, F>(conn: &mut DbConn, work: F) -> Result<T, E>
where
    E: From<StoreError>,
    F: FnOnce(&mut DbConn) -> Result<T, E>,
{
    conn.transaction::<T, TxError<E>, _>(|c| work(c).map_err(TxError::App))
        .map_err(|e| match e {
            TxError::App(e) => e,
            TxError::Db(d) => E::from(StoreError::Database(d)),
        })
}

/// Checks the database answers (readiness probes).
pub fn ping(conn: &mut DbConn) -> Result<(), StoreError> {
    conn.batch_execute("SELECT 1")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_split() {
        assert_eq!(
            split_database_url("postgres://postgres@127.0.0.1:5432/wapim").unwrap(),
            (
                "postgres://postgres@127.0.0.1:5432/postgres".into(),
                "wapim".into()
            )
        );
        assert_eq!(
            split_database_url("postgresql://u:p@h/db?sslmode=disable").unwrap(),
            (
                "postgresql://u:p@h/postgres?sslmode=disable".into(),
                "db".into()
            )
        );
        assert!(split_database_url("postgres://h/").is_none());
    }
}

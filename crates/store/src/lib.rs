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
pub mod dispatch;
pub mod idempotency;
pub mod inbound;
pub mod ingest;
pub mod instance;
pub mod listing;
pub mod messages;
pub mod recovery;
pub mod schema;
pub mod sessions;
pub mod suppressions;
pub mod waha_servers;
pub mod webhooks;

use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool as R2d2Pool, PooledConnection, R2D2Connection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub use listing::{Page, Paged, Trashed};

pub use connection::DbConn;

/// The connection enum in a module of its own: diesel's derive generates undocumented helper
/// items (`MultiBackend`, its query builder, …) next to it.
#[allow(missing_docs)]
mod connection {
    use diesel::prelude::*;

    /// The connection every repository function takes: PostgreSQL (production, several replicas) or
    /// SQLite (the single binary). Portable statements run on either through diesel's
    /// `MultiConnection`; the few backend-specific ones match on the variant (marked
    /// `backend-specific`).
    #[derive(diesel::MultiConnection)]
    pub enum DbConn {
        /// A PostgreSQL connection.
        Pg(PgConnection),
        /// A SQLite connection (WAL mode, busy timeout, foreign keys on).
        Sqlite(SqliteConnection),
    }
}

/// The SQL dialect of [`DbConn`], for boxed queries.
pub type Backend = <DbConn as diesel::Connection>::Backend;
/// A pool of [`DbConn`]s shared by a service's workers.
pub type Pool = R2d2Pool<Manager>;
/// A connection checked out of the [`Pool`].
pub type PooledConn = PooledConnection<Manager>;

/// The PostgreSQL migrations, compiled into every binary that runs them.
pub const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
/// The SQLite migrations: the same names as the PostgreSQL ones, in SQLite's dialect.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// Which database a URL names. Chosen from the scheme by Wapim itself: diesel's derived
/// `establish` would try each backend in turn and silently open a SQLite file named like a
/// mistyped PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://…` or `postgresql://…`, passed to libpq as is.
    Postgres(String),
    /// `sqlite://path` (relative to the working directory) or `sqlite:///absolute/path`.
    Sqlite(String),
}

impl DatabaseUrl {
    /// Parses a database URL; anything but the two schemes (or an empty SQLite path) is an error.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.contains('?') {
                return Err(StoreError::BadUrl(
                    "a SQLite URL takes no options (Wapim sets WAL mode and the rest itself)"
                        .into(),
                ));
            }
            if path.is_empty() || path.ends_with('/') {
                return Err(StoreError::BadUrl(
                    "a SQLite URL names a file: sqlite://wapim.db or sqlite:///var/lib/wapim/wapim.db"
                        .into(),
                ));
            }
            return Ok(DatabaseUrl::Sqlite(path.to_owned()));
        }
        Err(StoreError::BadUrl(
            "use postgres://user@host:5432/name or sqlite://path/to/file.db".into(),
        ))
    }

    /// True for SQLite (one writer: its pool holds a single connection).
    pub fn is_sqlite(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(_))
    }
}

/// Opens one connection to `url`, configured as the pool would configure it.
pub fn establish(url: &DatabaseUrl) -> Result<DbConn, StoreError> {
    match url {
        DatabaseUrl::Postgres(u) => PgConnection::establish(u)
            .map(DbConn::Pg)
            .map_err(|e| StoreError::Unavailable(e.to_string())),
        DatabaseUrl::Sqlite(path) => {
            let mut conn = SqliteConnection::establish(path)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            // WAL: readers never block the writer; busy_timeout: a second writer waits instead
            // of failing at once; foreign keys are off by default in SQLite; NORMAL sync is
            // durable in WAL mode except for the last commits on power loss (not on a crash).
            conn.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )?;
            Ok(DbConn::Sqlite(conn))
        }
    }
}

/// r2d2's connection manager for [`DbConn`], establishing by [`DatabaseUrl`].
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = StoreError;

    fn connect(&self) -> Result<DbConn, StoreError> {
        establish(&self.url)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), StoreError> {
        conn.ping().map_err(StoreError::Database)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

/// What can go wrong in the store; the web layer maps each to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (or is not visible to the caller).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule would be broken; the payload names the rule's field.
    #[error("conflict on {0}")]
    Conflict(&'static str),
    /// The message's status forbids the change (e.g. editing one that is being sent); carries
    /// the status it has now.
    #[error("the message is {0}")]
    Status(wapim_domain::MessageStatus),
    /// The row changed since it was read (optimistic concurrency); the caller may retry.
    #[error("the record changed meanwhile")]
    Stale,
    /// No connection could be had in time: the database is down or saturated.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database URL is not one Wapim understands.
    #[error("invalid database URL: {0}")]
    BadUrl(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The database holds or returned something Wapim cannot make sense of (an unknown enum
    /// value, fewer rows than written): a bug or a hand edit, never the client's fault.
    #[error("inconsistent data: {0}")]
    Inconsistent(String),
}

impl StoreError {
    /// True when the database could not serve the request for a reason that passes (down,
    /// saturated, locked): callers answer 503 and the client retries.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(e) => is_transient(e),
            _ => false,
        }
    }
}

/// Connection losses, SQLite's "database is locked" and PostgreSQL's serialisation failures are
/// worth a retry by the client, not a 500.
fn is_transient(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    match e {
        E::DatabaseError(K::ClosedConnection | K::SerializationFailure, _) => true,
        E::DatabaseError(_, info) => {
            let m = info.message();
            m.contains("database is locked")
                || m.contains("database is busy")
                || m.contains("terminating connection")
                || m.contains("server closed the connection")
                || m.contains("no connection to the server")
        }
        E::BrokenTransactionManager => true,
        _ => false,
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// Builds the pool and opens its connections now (r2d2 keeps `max_size` idle by default), so a
/// wrong URL fails at start-up and the first requests do not pay for connection set-up. SQLite
/// gets one connection whatever `max_size` says: it has one writer, and a second connection
/// upgrading a read transaction to a write would fail with "database is locked" instead of
/// waiting.
pub fn connect(url: &str, max_size: u32, timeout: Duration) -> Result<Pool, StoreError> {
    let url = DatabaseUrl::parse(url)?;
    let max_size = if url.is_sqlite() { 1 } else { max_size.max(1) };
    R2d2Pool::builder()
        .max_size(max_size)
        .connection_timeout(timeout)
        .test_on_check_out(false)
        .build(Manager { url })
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

/// Everything a service does with its database at start-up: create it if allowed and missing,
/// open the pool, apply pending migrations. Returns the pool and how many migrations ran.
pub fn open(
    url: &str,
    create_if_missing: bool,
    max_size: u32,
    timeout: Duration,
) -> Result<(Pool, usize), StoreError> {
    if create_if_missing && create_database_if_missing(url)? {
        tracing::info!("database created");
    }
    let pool = connect(url, max_size, timeout)?;
    let applied = run_migrations(&mut *pool.get()?)?;
    Ok((pool, applied))
}

/// Applies pending migrations. Safe to run from several processes at once: on PostgreSQL an
/// advisory lock serialises them; SQLite's write lock does the same. backend-specific.
pub fn run_migrations(conn: &mut DbConn) -> Result<usize, StoreError> {
    match conn {
        DbConn::Pg(pg) => {
            pg.batch_execute("SELECT pg_advisory_lock(727364)")?;
            let applied = pg
                .run_pending_migrations(PG_MIGRATIONS)
                .map(|v| v.len())
                .map_err(|e| StoreError::Migration(e.to_string()));
            pg.batch_execute("SELECT pg_advisory_unlock(727364)")?;
            applied
        }
        DbConn::Sqlite(lite) => lite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.len())
            .map_err(|e| StoreError::Migration(e.to_string())),
    }
}

/// How many of this build's migrations the database has not applied (readiness: a process must
/// not serve a schema older than its code).
pub fn pending_migrations(conn: &mut DbConn) -> Result<usize, StoreError> {
    let pending = match conn {
        DbConn::Pg(pg) => pg.pending_migrations(PG_MIGRATIONS).map(|v| v.len()),
        DbConn::Sqlite(lite) => lite.pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    pending.map_err(|e| StoreError::Migration(e.to_string()))
}

/// Creates the database named in `url` when it does not exist: on PostgreSQL by connecting to
/// the server's `postgres` database; a SQLite file is created when first opened (its directory
/// must exist). backend-specific.
pub fn create_database_if_missing(url: &str) -> Result<bool, StoreError> {
    let url = match DatabaseUrl::parse(url)? {
        DatabaseUrl::Sqlite(_) => return Ok(false),
        DatabaseUrl::Postgres(u) => u,
    };
    let (server_url, name) = split_database_url(&url)
        .ok_or_else(|| StoreError::BadUrl("the database URL names no database".into()))?;
    if PgConnection::establish(&url).is_ok() {
        return Ok(false);
    }
    let mut admin = PgConnection::establish(&server_url)
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

diesel::define_sql_function! {
    /// SQL `COALESCE` of two nullable timestamps (fill a column only where it is empty).
    fn coalesce(
        a: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
        b: diesel::sql_types::Nullable<diesel::sql_types::Timestamp>,
    ) -> diesel::sql_types::Nullable<diesel::sql_types::Timestamp>;
}

/// Runs `work` in a database transaction, committing on `Ok` and rolling back on `Err`, with
/// the caller's own error type (so services need not know diesel's).
///
/// On SQLite the outermost transaction is `BEGIN IMMEDIATE`: it takes the write lock up front
/// (waiting for it under the busy timeout), because a deferred transaction that reads and then
/// writes fails at once with "database is locked" when another process wrote in between, which
/// is what several processes on one file (two dispatchers) would otherwise hit.
/// backend-specific.
pub fn transaction<T, E, F>(conn: &mut DbConn, work: F) -> Result<T, E>
where
    E: From<StoreError>,
    F: FnOnce(&mut DbConn) -> Result<T, E>,
{
    type Manager = <DbConn as Connection>::TransactionManager;
    let db = |d: diesel::result::Error| E::from(StoreError::Database(d));
    let begun = match conn {
        DbConn::Sqlite(s) => {
            match AnsiTransactionManager::begin_transaction_sql(s, "BEGIN IMMEDIATE") {
                // Nested: a savepoint inside the caller's transaction.
                Err(diesel::result::Error::AlreadyInTransaction) => {
                    Manager::begin_transaction(conn)
                }
                other => other,
            }
        }
        DbConn::Pg(_) => Manager::begin_transaction(conn),
    };
    begun.map_err(db)?;
    match work(conn) {
        Ok(value) => {
            Manager::commit_transaction(conn).map_err(db)?;
            Ok(value)
        }
        Err(e) => match Manager::rollback_transaction(conn) {
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(e),
            Err(rollback) => Err(db(rollback)),
        },
    }
}

/// Checks the database answers (readiness probes).
pub fn ping(conn: &mut DbConn) -> Result<(), StoreError> {
    conn.batch_execute("SELECT 1")?;
    Ok(())
}

/// Runs SQL text as is (tests and operators' maintenance; never with request data).
pub fn execute_sql(conn: &mut DbConn, sql: &str) -> Result<(), StoreError> {
    conn.batch_execute(sql)?;
    Ok(())
}

/// The single integer an SQL expression or scalar query gives (e.g. `SELECT COUNT(*) FROM t`),
/// for tests and operator tools that check counts on either backend.
pub fn query_i64(conn: &mut DbConn, sql: &str) -> Result<i64, StoreError> {
    #[derive(QueryableByName)]
    struct Value {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let row: Value = diesel::sql_query(format!("SELECT ({sql}) AS n")).get_result(conn)?;
    Ok(row.n)
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

    #[test]
    fn url_scheme_picks_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("postgres://u@h/db").unwrap(),
            DatabaseUrl::Postgres("postgres://u@h/db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://wapim.db").unwrap(),
            DatabaseUrl::Sqlite("wapim.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/wapim.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/wapim.db".into())
        );
        for bad in [
            "postgre://h/db",
            "wapim.db",
            "sqlite://",
            "sqlite:wapim.db",
            "mysql://h/db",
            "",
        ] {
            assert!(DatabaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}

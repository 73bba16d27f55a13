//! Test-only helpers shared by the crates' integration tests.
//!
//! Every test gets its own database, created fresh and removed when the test ends, so tests run
//! in parallel without seeing each other's rows: a PostgreSQL database on a real server, or a
//! SQLite file in the temporary directory. [`both_backends!`] turns one test body into a test per
//! backend (parametrised, not copied); the body learns its backend from [`backend()`].

use std::future::Future;

use wapim_store::{DatabaseUrl, DbConn};

/// The database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBackend {
    /// A fresh database on the PostgreSQL server of `WAPIM_TEST_DATABASE_URL`.
    Postgres,
    /// A fresh SQLite file.
    Sqlite,
}

tokio::task_local! {
    static BACKEND: TestBackend;
}

/// Runs `test` with [`backend()`] answering `backend` (used by [`both_backends!`]).
pub async fn on<F: Future>(backend: TestBackend, test: F) -> F::Output {
    BACKEND.scope(backend, test).await
}

/// The backend of the running test: the one [`on`] set, else PostgreSQL.
pub fn backend() -> TestBackend {
    BACKEND.try_with(|b| *b).unwrap_or(TestBackend::Postgres)
}

/// Declares each `async fn name() { … }` as two tests, `name::postgres` and `name::sqlite`, each
/// running the same body against its own backend.
#[macro_export]
macro_rules! both_backends {
    ($($(#[$meta:meta])* async fn $name:ident() $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body() $body

                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::on($crate::TestBackend::Postgres, body()).await
                }

                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::on($crate::TestBackend::Sqlite, body()).await
                }
            }
        )*
    };
}

/// The PostgreSQL server tests create their databases on (`WAPIM_TEST_DATABASE_URL`, any
/// database name; defaults to the local PostgreSQL with trust auth, without TLS: on loopback it
/// protects nothing, and libpq's OpenSSL clean-up at process exit can crash a test process whose
/// background threads still hold TLS connections).
pub fn server_url() -> String {
    std::env::var("WAPIM_TEST_DATABASE_URL").unwrap_or_else(|_| {
        "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable".to_owned()
    })
}

/// A uniquely named database that is removed when this value is dropped.
pub struct TestDatabase {
    /// Connection URL of the new database (`postgres://…` or `sqlite://…`).
    pub url: String,
    /// Which backend it is on.
    pub backend: TestBackend,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { name: String, admin_url: String },
    Sqlite { path: std::path::PathBuf },
}

impl TestDatabase {
    /// Creates an empty database on the running test's [`backend()`].
    pub fn create() -> Self {
        Self::create_on(backend())
    }

    /// Creates an empty database on `backend`: `wapim_test_<uuid>` on PostgreSQL, a file of that
    /// name in the temporary directory for SQLite.
    ///
    /// # Panics
    /// When the server cannot be reached: a test without its database cannot say anything.
    #[allow(clippy::expect_used)]
    pub fn create_on(backend: TestBackend) -> Self {
        let name = format!("wapim_test_{}", uuid::Uuid::new_v4().simple());
        match backend {
            TestBackend::Postgres => {
                let server = server_url();
                let (base, query) = match server.split_once('?') {
                    Some((b, q)) => (b.to_owned(), format!("?{q}")),
                    None => (server.clone(), String::new()),
                };
                let slash = base.rfind('/').expect("database URL has a path");
                let root = &base[..slash];
                let admin_url = format!("{root}/postgres{query}");
                let mut admin = connect(&admin_url);
                wapim_store::execute_sql(&mut admin, &format!("CREATE DATABASE \"{name}\""))
                    .expect("can create a test database");
                Self {
                    url: format!("{root}/{name}{query}"),
                    backend,
                    cleanup: Cleanup::Postgres { name, admin_url },
                }
            }
            TestBackend::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                Self {
                    url: format!("sqlite://{}", path.display()),
                    backend,
                    cleanup: Cleanup::Sqlite { path },
                }
            }
        }
    }

    /// A connection of its own to this database, configured as the services configure theirs.
    pub fn connect(&self) -> DbConn {
        connect(&self.url)
    }

    /// Runs SQL on this database, to put rows in states that only later services produce.
    ///
    /// # Panics
    /// When the SQL fails: the test's set-up is wrong.
    #[allow(clippy::expect_used)]
    pub fn execute(&self, sql: &str) {
        wapim_store::execute_sql(&mut self.connect(), sql).expect("test SQL runs");
    }

    /// The integer a scalar query gives (`SELECT COUNT(*) FROM …`).
    ///
    /// # Panics
    /// When the SQL fails.
    #[allow(clippy::expect_used)]
    pub fn query_i64(&self, sql: &str) -> i64 {
        wapim_store::query_i64(&mut self.connect(), sql).expect("test SQL runs")
    }
}

#[allow(clippy::expect_used)]
fn connect(url: &str) -> DbConn {
    let url = DatabaseUrl::parse(url).expect("a test database URL");
    wapim_store::establish(&url)
        .expect("the test database is reachable (see WAPIM_TEST_DATABASE_URL)")
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Postgres { name, admin_url } => {
                if let Ok(url) = DatabaseUrl::parse(admin_url) {
                    if let Ok(mut admin) = wapim_store::establish(&url) {
                        let _ = wapim_store::execute_sql(
                            &mut admin,
                            &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                        );
                    }
                }
            }
            Cleanup::Sqlite { path } => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    let _ = std::fs::remove_file(p);
                }
            }
        }
    }
}

//! Test-only helpers shared by the services' integration tests.
//!
//! Every test gets its own PostgreSQL database, created on a real server and dropped when the
//! test ends, so tests run in parallel without seeing each other's rows.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

/// The server tests create their databases on (`WAPIM_TEST_DATABASE_URL`, any database name;
/// defaults to the local PostgreSQL with trust auth).
pub fn server_url() -> String {
    std::env::var("WAPIM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A uniquely named database that is dropped (with `FORCE`, closing leftover connections) when
/// this value is dropped.
pub struct TestDatabase {
    /// Connection URL of the new database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database named `wapim_test_<uuid>`.
    ///
    /// # Panics
    /// When the server cannot be reached: a test without its database cannot say anything.
    #[allow(clippy::expect_used)]
    pub fn create() -> Self {
        let server = server_url();
        let (base, query) = match server.split_once('?') {
            Some((b, q)) => (b.to_owned(), format!("?{q}")),
            None => (server.clone(), String::new()),
        };
        let slash = base.rfind('/').expect("database URL has a path");
        let root = &base[..slash];
        let name = format!("wapim_test_{}", uuid::Uuid::new_v4().simple());
        let admin_url = format!("{root}/postgres{query}");
        let mut admin = PgConnection::establish(&admin_url)
            .expect("PostgreSQL for tests is reachable (see WAPIM_TEST_DATABASE_URL)");
        admin
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .expect("can create a test database");
        Self {
            url: format!("{root}/{name}{query}"),
            name,
            admin_url,
        }
    }
}

impl TestDatabase {
    /// Runs SQL on this database, to put rows in states that only later services produce.
    ///
    /// # Panics
    /// When the SQL fails: the test's set-up is wrong.
    #[allow(clippy::expect_used)]
    pub fn execute(&self, sql: &str) {
        let mut conn = PgConnection::establish(&self.url).expect("connect to the test database");
        conn.batch_execute(sql).expect("test SQL runs");
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ));
        }
    }
}

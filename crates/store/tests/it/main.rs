//! Integration tests of the store's repository functions, each on a fresh database of both
//! backends (PostgreSQL and SQLite) through `wapim_testkit::both_backends!`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod devices;
mod dispatch;
mod messages;
mod support;
mod urls;
mod webhooks;

//! Integration tests: the gateway on a real port against a fresh PostgreSQL database per test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod batch;
mod dashboard;
mod devices;
mod errors;
mod fuzz;
mod hardening;
mod helpers;
mod idempotency;
mod lists;
mod messages;
mod openapi;
mod safety;
mod waha;

//! `WahaClient` against the WAHA simulator, started in process on a loopback port 0: every
//! request the client sends must follow WAHA's OpenAPI document (the simulator's violations).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod errors;
mod helpers;
mod sends;

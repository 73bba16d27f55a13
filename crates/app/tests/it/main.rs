//! Use cases over a real database (both backends).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod intake;

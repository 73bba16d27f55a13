//! Integration tests of the send path: the gateway on a real port, its relay, RabbitMQ (a queue
//! prefix per test) and the dispatcher against the WAHA simulator, on both database backends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;
mod helpers;
mod inbound;
mod pacing;
mod proxy;
mod safety;
mod sending;
mod sessions;

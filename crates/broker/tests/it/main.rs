//! Integration tests of `wapim-broker`: every scenario that makes sense on both runs twice from
//! one body (`both_backends!`), on RabbitMQ (`WAPIM_TEST_AMQP_URL`, default the local guest
//! account) and in process, each RabbitMQ run under its own random prefix, deleted afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

mod amqp;
mod config;
mod scenarios;

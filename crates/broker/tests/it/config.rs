//! Configuration errors, before any queue exists.

use wapim_broker::{Broker, BrokerConfig, BrokerError};

fn config(url: &str, prefix: &str) -> BrokerConfig {
    BrokerConfig {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        prefetch: 1,
        delivery_limit: 10,
    }
}

#[tokio::test]
async fn unknown_scheme_is_a_config_error() {
    let error = Broker::connect(&config("redis://u:secret@localhost", "wapim."))
        .await
        .unwrap_err();
    assert!(matches!(error, BrokerError::Config(_)), "{error:?}");
    assert!(!error.to_string().contains("secret"), "{error}");
    assert!(!error.is_transient());
}

#[tokio::test]
async fn overlong_prefix_is_a_config_error() {
    let error = Broker::connect(&config("memory://", &"p".repeat(250)))
        .await
        .unwrap_err();
    assert!(matches!(error, BrokerError::Config(_)), "{error:?}");
}

#[tokio::test]
async fn overlong_consumer_tag_is_an_error() {
    let broker = Broker::connect(&config("memory://", "wapim."))
        .await
        .unwrap();
    assert!(broker.consumer(&"t".repeat(300)).await.is_err());
}

#[tokio::test]
async fn unreachable_rabbitmq_is_a_transient_connection_error() {
    let error = Broker::connect(&config(
        "amqp://guest:guest@127.0.0.1:1/%2f",
        "t_unreachable.",
    ))
    .await
    .unwrap_err();
    assert!(matches!(error, BrokerError::Connection(_)), "{error:?}");
    assert!(error.is_transient());
}

#[test]
fn connect_outside_a_runtime_is_an_error_not_a_panic() {
    use std::future::Future;
    // Polled by hand, outside any tokio runtime.
    let config = config("memory://", "wapim.");
    let future = Broker::connect(&config);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(Err(BrokerError::Config(_))) => {}
        other => panic!("expected a config error, got {other:?}"),
    }
}

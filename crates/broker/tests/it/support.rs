//! Per-test brokers: a random prefix, both backends from one body, cleanup even after a panic.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wapim_broker::{Broker, BrokerConfig, Consumer, Delivery, Headers};

/// RabbitMQ of the tests.
pub fn amqp_url() -> String {
    std::env::var("WAPIM_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Which implementation a test run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Amqp,
    Memory,
}

/// A test's broker factory: one prefix, every broker it connects remembered for cleanup.
#[derive(Clone)]
pub struct Ctx {
    pub backend: Backend,
    pub prefix: String,
    brokers: Arc<Mutex<Vec<Broker>>>,
}

impl Ctx {
    fn new(backend: Backend) -> Self {
        Self {
            backend,
            prefix: format!("t_{}.", uuid::Uuid::new_v4().simple()),
            brokers: Arc::default(),
        }
    }

    pub fn is_amqp(&self) -> bool {
        self.backend == Backend::Amqp
    }

    /// The test's configuration with this delivery limit (prefetch 10).
    pub fn config(&self, delivery_limit: u32) -> BrokerConfig {
        BrokerConfig {
            url: match self.backend {
                Backend::Amqp => amqp_url(),
                Backend::Memory => "memory://".to_owned(),
            },
            prefix: self.prefix.clone(),
            prefetch: 10,
            delivery_limit,
        }
    }

    /// Connects with delivery limit 10.
    pub async fn connect(&self) -> Broker {
        self.connect_with(&self.config(10)).await
    }

    pub async fn connect_with(&self, config: &BrokerConfig) -> Broker {
        let broker = Broker::connect(config).await.expect("connect");
        self.brokers.lock().unwrap().push(broker.clone());
        broker
    }

    async fn cleanup(&self) {
        let first = self.brokers.lock().unwrap().first().cloned();
        if let Some(broker) = first {
            if let Err(error) = broker.delete_topology().await {
                eprintln!("cleanup of {} failed: {error}", self.prefix);
            }
        }
    }
}

/// Runs one test body on `backend`, then deletes its topology, then re-raises a panic.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let ctx = Ctx::new(backend);
    let outcome = tokio::spawn(body(ctx.clone())).await;
    ctx.cleanup().await;
    if let Err(error) = outcome {
        match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(error) => panic!("test task failed: {error}"),
        }
    }
}

/// `both_backends! { async fn name(ctx) { … } }` declares `name::amqp` and `name::memory`.
macro_rules! both_backends {
    ($(#[$meta:meta])* async fn $name:ident($ctx:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn amqp() {
                $crate::support::run($crate::support::Backend::Amqp, |$ctx| async move $body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                $crate::support::run($crate::support::Backend::Memory, |$ctx| async move $body).await
            }
        }
    };
}

/// `amqp_only! { async fn name(ctx) { … } }`: scenarios that need a real RabbitMQ.
macro_rules! amqp_only {
    ($(#[$meta:meta])* async fn $name:ident($ctx:ident) $body:block) => {
        $(#[$meta])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $crate::support::run($crate::support::Backend::Amqp, |$ctx| async move $body).await
        }
    };
}

/// The job the tests send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendJob {
    pub message_id: i64,
    pub attempt: u32,
}

pub fn job(message_id: i64) -> SendJob {
    SendJob {
        message_id,
        attempt: 0,
    }
}

pub fn trace_headers(message_id: i64) -> Headers {
    Headers::from([(
        "traceparent".to_owned(),
        format!("00-{message_id:032x}-00f067aa0ba902b7-01"),
    )])
}

/// The next delivery within `within`, failing the test otherwise.
pub async fn next_within(consumer: &mut Consumer, within: Duration) -> Delivery {
    match tokio::time::timeout(within, consumer.next()).await {
        Ok(Some(Ok(delivery))) => delivery,
        Ok(Some(Err(error))) => panic!("consumer failed: {error}"),
        Ok(None) => panic!("consumer ended"),
        Err(_) => panic!("no delivery within {within:?}"),
    }
}

/// The next delivery within 10 s.
pub async fn next(consumer: &mut Consumer) -> Delivery {
    next_within(consumer, Duration::from_secs(10)).await
}

/// Asserts nothing arrives for `quiet`.
pub async fn assert_quiet(consumer: &mut Consumer, quiet: Duration) {
    if let Ok(item) = tokio::time::timeout(quiet, consumer.next()).await {
        panic!("expected no delivery, got {item:?}");
    }
}

/// Polls the DLQ count until it equals `expected` (dead-lettering is asynchronous on RabbitMQ).
pub async fn wait_dead_letters(broker: &Broker, expected: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let count = broker.dead_letter_count().await.expect("dead_letter_count");
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "dead-letter count stayed {count}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

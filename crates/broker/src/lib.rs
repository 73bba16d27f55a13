//! Wapim's send-pipeline queue: the gateway's relay publishes "send message N" jobs, dispatcher
//! replicas consume them and call WhatsApp (WAHA). One API, two implementations:
//!
//! - `amqp://` / `amqps://` — RabbitMQ through lapin (the only crate that knows lapin). Jobs are
//!   persistent, publishes are confirmed by the broker, consumers ack by hand, so a pod killed at
//!   any moment loses nothing: its unacked jobs go back to the queue.
//! - `memory://` — an in-process queue for the single-binary mode. It survives nothing: there,
//!   durability comes from database rows, and the queue only carries work between tasks.
//!
//! Delivery is **at least once** on both: a job can arrive twice (a confirm lost with the
//! connection and the publish retried, a consumer killed after doing the work but before its ack),
//! so consumers must be idempotent (the dispatcher claims its row first).
//!
//! # Topology (RabbitMQ)
//!
//! Every name starts with [`BrokerConfig::prefix`] (`{p}` below, e.g. `wapim.`). Everything is
//! declared idempotently by [`Broker::connect`] (and again after a reconnect) with explicit
//! arguments, as RabbitMQ 3.10 needs them. Jobs are JSON (`content-type: application/json`),
//! persistent (`delivery-mode: 2`), published `mandatory` with publisher confirms; caller headers
//! (e.g. W3C `traceparent`) travel as AMQP string headers.
//!
//! | name | kind | arguments | role |
//! |---|---|---|---|
//! | `{p}send` | durable direct exchange | — | where jobs are published, routing key `send` |
//! | `{p}send.q` | durable quorum queue, bound to `{p}send` with key `send` | `x-queue-type=quorum`, `x-delivery-limit=<delivery_limit>`, `x-dead-letter-exchange={p}dead`, `x-dead-letter-routing-key=dead`, `x-dead-letter-strategy=at-least-once`, `x-overflow=reject-publish` | the work queue the dispatchers consume (manual acks, prefetch from the config) |
//! | `{p}dead` | durable direct exchange | — | dead-letter exchange of `{p}send.q`, routing key `dead` |
//! | `{p}dead.q` | durable quorum queue, bound to `{p}dead` with key `dead` | `x-queue-type=quorum` | jobs given up on: rejected by a consumer (unparseable, permanent failure) or returned more than `delivery_limit` times; operators inspect it and replay it with [`Broker::replay_dead_letters`] |
//! | `{p}delay.{ms}` for ms in 1000, 5000, 30000, 120000, 600000, 3600000 | durable quorum queues, no consumers, no bindings (reached through the default exchange) | `x-queue-type=quorum`, `x-message-ttl={ms}`, `x-dead-letter-exchange={p}send`, `x-dead-letter-routing-key=send`, `x-dead-letter-strategy=at-least-once`, `x-overflow=reject-publish` | retries later: a job waits there until its TTL runs out, then is dead-lettered onto `{p}send.q` |
//!
//! Why each argument:
//! - **quorum** queues are replicated (Raft) and survive a broker restart or the loss of a node.
//! - **`x-delivery-limit`** stops a poison job from looping forever when consumers crash on it:
//!   a quorum queue counts every return of a message (nack with requeue, or the consumer's channel
//!   dying with it unacked) in `x-delivery-count`; when the count exceeds the limit the message is
//!   dead-lettered instead of being requeued (so a job is delivered at most `delivery_limit + 1`
//!   times).
//! - **`x-dead-letter-strategy=at-least-once`** (RabbitMQ ≥ 3.10, needs `x-overflow=reject-publish`):
//!   quorum queues dead-letter *at most once* by default, i.e. a dead-lettered job is lost if the
//!   target queue does not take it at that moment. At least once, the source queue keeps the
//!   message until the target queue confirmed it. That matters twice here: a delay bucket moving a
//!   retry back onto `{p}send.q`, and `{p}send.q` moving a poison job to `{p}dead.q`. No
//!   `x-max-length` is set, so `reject-publish` never actually rejects anything.
//! - The delay buckets are quorum queues rather than classic ones because classic queues only
//!   dead-letter at most once; quorum queues support `x-message-ttl` since 3.10. One TTL per
//!   queue (not per message) keeps expiry in FIFO order, so no job waits behind a longer one.
//!
//! Changing `delivery_limit` for an existing prefix fails the declaration
//! (`PRECONDITION_FAILED`: RabbitMQ does not change queue arguments in place); use a policy or
//! recreate the queue.
//!
//! Connections: one for publishing (a dedicated confirm-mode channel, plus short-lived channels
//! for the DLQ operations), one shared by the consumers (one channel each), as RabbitMQ advises:
//! a publisher throttled by a memory alarm must not stall the consumers that would drain the
//! queue. The publishing connection uses lapin's automatic recovery; [`Broker::publish`] also
//! repairs the session itself (reconnect, redeclare, retry once). The consumers' connection has no
//! automatic recovery on purpose: lapin would re-subscribe a consumer behind the caller's back,
//! including one whose handle was already dropped, which would then hold jobs that nobody reads.
//! A consumer whose channel or connection dies instead ends its stream with an error; the caller
//! calls [`Broker::consumer`] again, which reconnects when needed.

mod amqp;
mod memory;
mod topology;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use topology::{delay_bucket, DELAY_BUCKETS};

/// Message headers carried next to a job (e.g. W3C `traceparent`), as AMQP string headers.
/// Keys starting with `x-` are reserved for RabbitMQ and refused on publish.
pub type Headers = BTreeMap<String, String>;

/// Where the queue lives and how it behaves; one per process, usually from the settings.
#[derive(Clone)]
pub struct BrokerConfig {
    /// `amqp://user:pass@host:5672/%2f` (or `amqps://…`) for RabbitMQ, `memory://` for the
    /// in-process queue of the single binary.
    pub url: String,
    /// Prepended to every exchange and queue name (`wapim.`, or `t_<uuid>.` per test) so several
    /// environments or tests share one RabbitMQ.
    pub prefix: String,
    /// How many unacked jobs a consumer may hold at once (0 = unlimited).
    pub prefetch: u16,
    /// How many times a job may be returned to the queue before it is dead-lettered.
    pub delivery_limit: u32,
}

impl fmt::Debug for BrokerConfig {
    /// The URL's password never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrokerConfig")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("prefetch", &self.prefetch)
            .field("delivery_limit", &self.delivery_limit)
            .finish()
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Why a broker operation failed. [`BrokerError::is_transient`] tells whether trying again later
/// can help.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The configuration cannot work (unknown URL scheme, name too long, no tokio runtime).
    #[error("invalid broker configuration: {0}")]
    Config(String),
    /// The broker could not be reached or the connection broke.
    #[error("message broker connection failed: {0}")]
    Connection(String),
    /// The broker refused to take the message (publisher confirm `nack`).
    #[error("the message broker did not accept the message (nack)")]
    Nacked,
    /// A mandatory message matched no queue and came back (topology missing or deleted).
    #[error("the message broker returned the message as unroutable: {0}")]
    Returned(String),
    /// The broker refused an operation (e.g. `PRECONDITION_FAILED` when a queue exists with other
    /// arguments, `NOT_FOUND`, `ACCESS_REFUSED`).
    #[error("the message broker refused the operation: {0}")]
    Refused(String),
    /// The broker did not answer in time (e.g. publishing blocked by a memory alarm).
    #[error("the message broker did not answer within {0:?}")]
    Timeout(Duration),
    /// The job could not be serialised to JSON.
    #[error("cannot serialise the job: {0}")]
    Serialize(String),
    /// A header cannot be sent (reserved `x-` key, empty or longer than 255 bytes).
    #[error("invalid header `{0}`: {1}")]
    InvalidHeader(String, String),
    /// The body does not parse as the expected job; the caller dead-letters it.
    #[error("the job body does not parse: {0}")]
    Deserialize(String),
    /// The channel or consumer this delivery or stream belonged to is gone; an unsettled
    /// delivery will be (or already was) redelivered.
    #[error("the broker channel is closed; unacked deliveries will be redelivered")]
    Closed,
}

impl BrokerError {
    /// Whether the same operation may succeed later (connection trouble, a nack, a timeout, a
    /// closed channel) as opposed to a bug or a permanently bad input or configuration.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connection(_) | Self::Nacked | Self::Timeout(_) | Self::Closed => true,
            Self::Config(_)
            | Self::Returned(_)
            | Self::Refused(_)
            | Self::Serialize(_)
            | Self::InvalidHeader(..)
            | Self::Deserialize(_) => false,
        }
    }
}

/// The handle to the queue: cheap to clone, shared by every task of a process.
#[derive(Clone)]
pub struct Broker {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Amqp(Arc<amqp::AmqpBroker>),
    InProcess(Arc<memory::MemoryBroker>),
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.backend {
            Backend::Amqp(broker) => f
                .debug_struct("Broker")
                .field("backend", &"amqp")
                .field("prefix", &broker.prefix())
                .finish(),
            Backend::InProcess(_) => f
                .debug_struct("Broker")
                .field("backend", &"memory")
                .finish(),
        }
    }
}

impl Broker {
    /// Connects (`amqp://`, `amqps://`) and declares the topology, or creates the in-process
    /// queue (`memory://`). Must run inside a tokio runtime. An unreachable RabbitMQ fails with a
    /// transient [`BrokerError::Connection`] after about 5 s of reconnect attempts; a
    /// `delivery_limit` other than the existing queue's is [`BrokerError::Refused`]
    /// (`PRECONDITION_FAILED`).
    pub async fn connect(config: &BrokerConfig) -> Result<Broker, BrokerError> {
        let names = topology::Names::new(&config.prefix)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(BrokerError::Config(
                "the broker needs a tokio runtime".to_owned(),
            ));
        }
        let scheme = config
            .url
            .split_once("://")
            .map(|(scheme, _)| scheme.to_ascii_lowercase());
        let backend = match scheme.as_deref() {
            Some("memory") => Backend::InProcess(Arc::new(memory::MemoryBroker::new(
                config.prefetch,
                config.delivery_limit,
            ))),
            Some("amqp" | "amqps") => {
                Backend::Amqp(Arc::new(amqp::AmqpBroker::connect(config, names).await?))
            }
            _ => {
                return Err(BrokerError::Config(format!(
                    "unsupported broker URL `{}` (expected amqp://, amqps:// or memory://)",
                    redact_url(&config.url)
                )))
            }
        };
        Ok(Broker { backend })
    }

    /// Publishes a job to the send exchange; returns once the broker confirmed it (persistent,
    /// mandatory: an unroutable job is [`BrokerError::Returned`]). After a broken connection the
    /// publish is retried once on a repaired one, so a job may exceptionally be stored twice.
    pub async fn publish<J: serde::Serialize>(
        &self,
        job: &J,
        headers: &Headers,
    ) -> Result<(), BrokerError> {
        let body = encode(job, headers)?;
        match &self.backend {
            Backend::Amqp(broker) => broker.publish(&body, headers).await,
            Backend::InProcess(broker) => {
                broker.publish(body, headers.clone());
                Ok(())
            }
        }
    }

    /// Publishes a job that reaches the send queue only after `delay`, rounded up to the next of
    /// the [`DELAY_BUCKETS`] (the largest one beyond); confirmed like [`Broker::publish`]. This is
    /// how a job is retried later.
    pub async fn publish_delayed<J: serde::Serialize>(
        &self,
        job: &J,
        headers: &Headers,
        delay: Duration,
    ) -> Result<(), BrokerError> {
        let body = encode(job, headers)?;
        let bucket = delay_bucket(delay);
        match &self.backend {
            Backend::Amqp(broker) => broker.publish_delayed(&body, headers, bucket).await,
            Backend::InProcess(broker) => broker.publish_delayed(body, headers.clone(), bucket),
        }
    }

    /// Starts consuming the send queue with manual acks and the configured prefetch. The stream
    /// ends (an error, then `None`) when its channel or connection dies; call this again then.
    pub async fn consumer(&self, consumer_tag: &str) -> Result<Consumer, BrokerError> {
        topology::check_name("consumer tag", consumer_tag)?;
        let inner = match &self.backend {
            Backend::Amqp(broker) => {
                ConsumerInner::Amqp(Box::new(broker.consumer(consumer_tag).await?))
            }
            Backend::InProcess(broker) => {
                ConsumerInner::InProcess(memory::MemoryBroker::consumer(broker))
            }
        };
        Ok(Consumer { inner })
    }

    /// Moves up to `max` jobs from the dead-letter queue back to the send exchange (each publish
    /// confirmed before its dead letter is removed) and returns how many moved. Stops at the
    /// first failure: returns the count if some already moved (the failure is logged), the error
    /// otherwise. Replayed jobs start again with a delivery count of 0.
    pub async fn replay_dead_letters(&self, max: usize) -> Result<usize, BrokerError> {
        match &self.backend {
            Backend::Amqp(broker) => broker.replay_dead_letters(max).await,
            Backend::InProcess(broker) => Ok(broker.replay_dead_letters(max)),
        }
    }

    /// How many jobs wait in the dead-letter queue (for metrics and operators).
    pub async fn dead_letter_count(&self) -> Result<u32, BrokerError> {
        match &self.backend {
            Backend::Amqp(broker) => broker.dead_letter_count().await,
            Backend::InProcess(broker) => Ok(broker.dead_letter_count()),
        }
    }

    /// Whether the broker is reachable, for readiness probes. When the publishing connection is
    /// down and lapin is not already recovering it, this tries one reconnect.
    pub async fn is_connected(&self) -> bool {
        match &self.backend {
            Backend::Amqp(broker) => broker.is_connected().await,
            Backend::InProcess(_) => true,
        }
    }

    /// Deletes every queue and exchange of this prefix (best effort: all are attempted, the first
    /// failure is returned). For tests and for tearing an environment down; drop the `Broker`
    /// afterwards, its topology is gone.
    pub async fn delete_topology(&self) -> Result<(), BrokerError> {
        match &self.backend {
            Backend::Amqp(broker) => broker.delete_topology().await,
            Backend::InProcess(broker) => {
                broker.clear();
                Ok(())
            }
        }
    }
}

/// The JSON body of a job, after checking that its headers can be sent.
fn encode<J: serde::Serialize>(job: &J, headers: &Headers) -> Result<Vec<u8>, BrokerError> {
    for key in headers.keys() {
        topology::check_header(key)?;
    }
    serde_json::to_vec(job).map_err(|e| BrokerError::Serialize(e.to_string()))
}

/// A stream of jobs from the send queue, for one dispatcher worker.
pub struct Consumer {
    inner: ConsumerInner,
}

enum ConsumerInner {
    /// Boxed: a lapin channel and consumer are much larger than the in-process handle.
    Amqp(Box<amqp::AmqpConsumer>),
    InProcess(memory::MemoryConsumer),
}

impl fmt::Debug for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.inner {
            ConsumerInner::Amqp(_) => "amqp",
            ConsumerInner::InProcess(_) => "memory",
        };
        f.debug_struct("Consumer")
            .field("backend", &backend)
            .finish()
    }
}

impl Consumer {
    /// The next job. `Some(Err(_))` once when the channel, connection or subscription died, then
    /// `None`: call [`Broker::consumer`] again. Dropping the consumer (or its failure) returns its
    /// unacked deliveries to the queue.
    pub async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        match &mut self.inner {
            ConsumerInner::Amqp(consumer) => consumer.next().await,
            ConsumerInner::InProcess(consumer) => consumer.next().await.map(Ok),
        }
    }
}

/// One received job. Settle it exactly once with [`Delivery::ack`], [`Delivery::nack_requeue`] or
/// [`Delivery::dead_letter`]; dropping it unsettled gives it back to the queue (as RabbitMQ does
/// when a consumer dies), which counts toward the delivery limit.
pub struct Delivery {
    body: Vec<u8>,
    headers: Headers,
    redelivered: bool,
    delivery_count: u32,
    settle: Settle,
}

enum Settle {
    Amqp(amqp::AmqpSettle),
    InProcess(memory::MemorySettle),
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("body_len", &self.body.len())
            .field("headers", &self.headers)
            .field("redelivered", &self.redelivered)
            .field("delivery_count", &self.delivery_count)
            .finish()
    }
}

impl Delivery {
    /// The job, parsed from JSON. A body that does not parse is an error the caller dead-letters.
    pub fn job<J: serde::de::DeserializeOwned>(&self) -> Result<J, BrokerError> {
        serde_json::from_slice(&self.body).map_err(|e| BrokerError::Deserialize(e.to_string()))
    }

    /// The caller headers published with the job (e.g. `traceparent`).
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Whether this job was delivered before (to this or another consumer).
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    /// How many times this job was returned to the queue before (0 on first delivery): quorum
    /// queues' `x-delivery-count`. Past the delivery limit the queue dead-letters it instead.
    pub fn delivery_count(&self) -> u32 {
        self.delivery_count
    }

    /// The job is done: remove it from the queue. An error means the ack did not reach the
    /// broker (the channel died) and the job will be redelivered.
    pub async fn ack(self) -> Result<(), BrokerError> {
        match self.settle {
            Settle::Amqp(settle) => settle.ack().await,
            Settle::InProcess(settle) => settle.ack(),
        }
    }

    /// Gives the job back now (shutdown, transient local trouble); it counts toward the delivery
    /// limit.
    pub async fn nack_requeue(self) -> Result<(), BrokerError> {
        match self.settle {
            Settle::Amqp(settle) => settle.nack_requeue().await,
            Settle::InProcess(settle) => settle.nack_requeue(),
        }
    }

    /// Rejects the job without requeue: it goes to the dead-letter queue for operators.
    pub async fn dead_letter(self) -> Result<(), BrokerError> {
        match self.settle {
            Settle::Amqp(settle) => settle.dead_letter().await,
            Settle::InProcess(settle) => settle.dead_letter(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_the_password_of_the_url() {
        assert_eq!(
            redact_url("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_url("memory://"), "memory://");
        assert_eq!(redact_url("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
        let config = BrokerConfig {
            url: "amqp://u:p4ss@h/%2f".to_owned(),
            prefix: "wapim.".to_owned(),
            prefetch: 1,
            delivery_limit: 10,
        };
        assert!(!format!("{config:?}").contains("p4ss"));
    }

    /// Callers share the broker across tasks and move consumers and deliveries into them.
    #[test]
    fn handles_cross_tasks() {
        fn send_sync<T: Send + Sync + 'static>() {}
        fn send<T: Send + 'static>() {}
        send_sync::<Broker>();
        send_sync::<BrokerError>();
        send::<Consumer>();
        send::<Delivery>();
    }

    #[test]
    fn transient_errors() {
        assert!(BrokerError::Connection("x".into()).is_transient());
        assert!(BrokerError::Closed.is_transient());
        assert!(BrokerError::Nacked.is_transient());
        assert!(!BrokerError::Deserialize("x".into()).is_transient());
        assert!(!BrokerError::Returned("x".into()).is_transient());
    }
}

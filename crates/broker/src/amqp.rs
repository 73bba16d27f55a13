//! RabbitMQ through lapin 4 (tokio runtime). The topology is described in the crate docs.
//!
//! Resilience, in layers:
//! - the publishing connection has lapin's automatic recovery (reconnect with a short backoff,
//!   replay of the channel, confirm mode and declarations);
//! - on top, a publish that fails on a broken channel repairs the session itself (waits a
//!   little for lapin's recovery, else opens a new channel or connection and redeclares the
//!   topology) and is retried once;
//! - consumers live on a second connection without automatic recovery (see the crate docs); a
//!   dead consumer ends its stream with an error and the caller subscribes again;
//! - every broker round trip is bounded by a timeout; nothing here panics on a broken connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    Acker, BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use tracing::{debug, info, warn};

use crate::topology::{is_reserved_header, Names, DEAD_KEY, SEND_KEY};
use crate::{BrokerConfig, BrokerError, Delivery, Headers, Settle};

/// How long opening a TCP + AMQP connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one broker operation may take (a declaration, a publish until its confirm, an ack).
/// A publish blocked by a memory alarm ends as `Timeout` instead of hanging the relay.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a publish waits for lapin's own recovery before repairing the session itself. Longer
/// than lapin's whole reconnect backoff below, so a given-up connection is not raced.
const RECOVERY_WAIT: Duration = Duration::from_secs(8);
/// AMQP `delivery-mode` of a persistent message.
const PERSISTENT: u8 = 2;
/// `reply-code` of a normal channel close.
const REPLY_SUCCESS: u16 = 200;

/// The publishing connection and its confirm-mode channel, replaced as a whole when repaired.
struct Session {
    /// Identifies this session so concurrent publishers repair a broken one only once.
    generation: u64,
    connection: Arc<Connection>,
    channel: Channel,
}

impl Session {
    fn healthy(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }

    fn recovering(&self) -> bool {
        self.connection.status().reconnecting() || self.channel.status().reconnecting()
    }
}

/// The RabbitMQ side of a `Broker`.
pub(crate) struct AmqpBroker {
    url: String,
    names: Names,
    prefetch: u16,
    delivery_limit: u32,
    publisher: Mutex<Arc<Session>>,
    /// Held while the publishing session is being repaired.
    repairing: tokio::sync::Mutex<()>,
    /// The connection the consumers' channels are opened on (replaced when dead).
    consumers: tokio::sync::Mutex<Option<Arc<Connection>>>,
    next_generation: AtomicU64,
}

impl AmqpBroker {
    pub(crate) async fn connect(config: &BrokerConfig, names: Names) -> Result<Self, BrokerError> {
        let connection =
            Arc::new(open_connection(&config.url, &names.prefix, "publish", true).await?);
        let channel = open_publish_channel(&connection, &names, config.delivery_limit).await?;
        info!(prefix = %names.prefix, "connected to RabbitMQ; topology declared");
        Ok(Self {
            url: config.url.clone(),
            names,
            prefetch: config.prefetch,
            delivery_limit: config.delivery_limit,
            publisher: Mutex::new(Arc::new(Session {
                generation: 0,
                connection,
                channel,
            })),
            repairing: tokio::sync::Mutex::new(()),
            consumers: tokio::sync::Mutex::new(None),
            next_generation: AtomicU64::new(1),
        })
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.names.prefix
    }

    fn current(&self) -> Arc<Session> {
        Arc::clone(&lock(&self.publisher))
    }

    /// The publishing session, repaired first if it is broken.
    async fn session(&self) -> Result<Arc<Session>, BrokerError> {
        let current = self.current();
        if current.healthy() {
            return Ok(current);
        }
        self.repair(current.generation).await
    }

    /// Replaces the session `broken` (unless another task already did, or lapin recovered it):
    /// a new channel on the same connection if that one is alive, else a new connection; the
    /// topology is declared again either way.
    async fn repair(&self, broken: u64) -> Result<Arc<Session>, BrokerError> {
        let _repairing = self.repairing.lock().await;
        let current = self.current();
        if current.generation != broken && current.healthy() {
            return Ok(current);
        }
        if current.recovering() {
            let deadline = Instant::now() + RECOVERY_WAIT;
            while current.recovering() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if current.healthy() {
            debug!("publishing session recovered by lapin");
            return Ok(current);
        }
        let connection = if current.connection.status().connected() {
            Arc::clone(&current.connection)
        } else {
            Arc::new(open_connection(&self.url, &self.names.prefix, "publish", true).await?)
        };
        let channel = open_publish_channel(&connection, &self.names, self.delivery_limit).await?;
        let session = Arc::new(Session {
            generation: self.next_generation.fetch_add(1, Ordering::Relaxed),
            connection,
            channel,
        });
        *lock(&self.publisher) = Arc::clone(&session);
        info!(prefix = %self.names.prefix, "publishing session to RabbitMQ re-established");
        Ok(session)
    }

    pub(crate) async fn publish(&self, body: &[u8], headers: &Headers) -> Result<(), BrokerError> {
        self.publish_to(&self.names.send_exchange, SEND_KEY, body, headers)
            .await
    }

    /// To the delay queue of `bucket` through the default exchange (routing key = queue name).
    pub(crate) async fn publish_delayed(
        &self,
        body: &[u8],
        headers: &Headers,
        bucket: Duration,
    ) -> Result<(), BrokerError> {
        let queue = self.names.delay_queue(bucket);
        self.publish_to("", &queue, body, headers).await
    }

    /// One confirmed, persistent, mandatory publish; retried once on a repaired session when the
    /// channel or connection broke under it.
    async fn publish_to(
        &self,
        exchange: &str,
        routing_key: &str,
        body: &[u8],
        headers: &Headers,
    ) -> Result<(), BrokerError> {
        let exchange = short(exchange)?;
        let routing_key = short(routing_key)?;
        let properties = properties(headers)?;
        let session = self.session().await?;
        match publish_confirmed(
            &session.channel,
            exchange.clone(),
            routing_key.clone(),
            body,
            properties.clone(),
        )
        .await
        {
            Err(PublishFailure::Broken(error)) => {
                warn!(%error, "publish failed on a broken channel; repairing and retrying once");
                let session = self.repair(session.generation).await?;
                publish_confirmed(&session.channel, exchange, routing_key, body, properties)
                    .await
                    .map_err(PublishFailure::into_error)
            }
            other => other.map_err(PublishFailure::into_error),
        }
    }

    pub(crate) async fn consumer(&self, tag: &str) -> Result<AmqpConsumer, BrokerError> {
        let tag = short(tag)?;
        let connection = self.consumer_connection(false).await?;
        match self.subscribe(&connection, tag.clone()).await {
            Err(error) if error.is_transient() => {
                debug!(%error, "subscribing failed; retrying on a new connection");
                let connection = self.consumer_connection(true).await?;
                self.subscribe(&connection, tag).await
            }
            other => other,
        }
    }

    /// The consumers' connection: the current one if alive (unless `fresh`), else a new one.
    async fn consumer_connection(&self, fresh: bool) -> Result<Arc<Connection>, BrokerError> {
        let mut slot = self.consumers.lock().await;
        if let Some(connection) = slot.as_ref() {
            if !fresh && connection.status().connected() {
                return Ok(Arc::clone(connection));
            }
        }
        let connection =
            Arc::new(open_connection(&self.url, &self.names.prefix, "consume", false).await?);
        *slot = Some(Arc::clone(&connection));
        Ok(connection)
    }

    async fn subscribe(
        &self,
        connection: &Connection,
        tag: ShortString,
    ) -> Result<AmqpConsumer, BrokerError> {
        let channel = bounded(OPERATION_TIMEOUT, connection.create_channel()).await?;
        bounded(
            OPERATION_TIMEOUT,
            channel.basic_qos(self.prefetch, BasicQosOptions::default()),
        )
        .await?;
        let consumer = bounded(
            OPERATION_TIMEOUT,
            channel.basic_consume(
                short(&self.names.send_queue)?,
                tag,
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
        Ok(AmqpConsumer {
            live: Some((channel, consumer)),
        })
    }

    /// A short-lived channel on the publishing connection (for the DLQ operations, so that a
    /// failing one never closes the confirm channel).
    async fn side_channel(&self) -> Result<(Arc<Session>, Channel), BrokerError> {
        let session = self.session().await?;
        let channel = bounded(OPERATION_TIMEOUT, session.connection.create_channel()).await?;
        Ok((session, channel))
    }

    pub(crate) async fn dead_letter_count(&self) -> Result<u32, BrokerError> {
        let (_session, channel) = self.side_channel().await?;
        let queue = bounded(
            OPERATION_TIMEOUT,
            channel.queue_declare(
                short(&self.names.dead_queue)?,
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await;
        close(channel).await;
        Ok(queue?.message_count())
    }

    pub(crate) async fn replay_dead_letters(&self, max: usize) -> Result<usize, BrokerError> {
        let (_session, channel) = self.side_channel().await?;
        let dead_queue = short(&self.names.dead_queue)?;
        let mut moved = 0;
        let outcome = loop {
            if moved >= max {
                break Ok(());
            }
            let got = bounded(
                OPERATION_TIMEOUT,
                channel.basic_get(dead_queue.clone(), BasicGetOptions { no_ack: false }),
            )
            .await;
            let message = match got {
                Ok(Some(message)) => message.delivery,
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            };
            let (headers, _) = read_headers(message.properties.headers());
            if let Err(error) = self.publish(&message.data, &headers).await {
                // Back to the dead letters; closing the channel would return it as well.
                let _ = message.acker.nack(requeue()).await;
                break Err(error);
            }
            // Confirmed on the send queue: now remove the dead letter (if this fails, the job
            // stays in the DLQ as well and a later replay sends it again; at least once).
            match bounded_ack(message.acker.ack(BasicAckOptions::default())).await {
                Ok(()) => moved += 1,
                Err(error) => break Err(error),
            }
        };
        close(channel).await;
        match outcome {
            Ok(()) => Ok(moved),
            Err(error) if moved > 0 => {
                warn!(%error, moved, "dead-letter replay stopped early");
                Ok(moved)
            }
            Err(error) => Err(error),
        }
    }

    pub(crate) async fn is_connected(&self) -> bool {
        let current = self.current();
        if current.healthy() {
            return true;
        }
        if current.recovering() || self.repairing.try_lock().is_err() {
            return false;
        }
        self.repair(current.generation).await.is_ok()
    }

    pub(crate) async fn delete_topology(&self) -> Result<(), BrokerError> {
        let session = self.session().await?;
        let queues = [self.names.send_queue.clone(), self.names.dead_queue.clone()]
            .into_iter()
            .chain(self.names.delay_queues().map(|(name, _)| name));
        let mut first_error = None;
        // A failure closes the channel: each deletion gets a fresh one if needed.
        let mut channel: Option<Channel> = None;
        for queue in queues {
            let result = async {
                let channel = reusable_channel(&session.connection, &mut channel).await?;
                bounded(
                    OPERATION_TIMEOUT,
                    channel.queue_delete(short(&queue)?, QueueDeleteOptions::default()),
                )
                .await
            }
            .await;
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        for exchange in [&self.names.send_exchange, &self.names.dead_exchange] {
            let result = async {
                let channel = reusable_channel(&session.connection, &mut channel).await?;
                bounded(
                    OPERATION_TIMEOUT,
                    channel.exchange_delete(short(exchange)?, ExchangeDeleteOptions::default()),
                )
                .await
            }
            .await;
            if let Err(error) = result {
                first_error.get_or_insert(error);
            }
        }
        if let Some(channel) = channel {
            close(channel).await;
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// `slot`'s channel if still open, else a new one stored there.
async fn reusable_channel<'a>(
    connection: &Connection,
    slot: &'a mut Option<Channel>,
) -> Result<&'a Channel, BrokerError> {
    if !slot
        .as_ref()
        .is_some_and(|channel| channel.status().connected())
    {
        *slot = Some(bounded(OPERATION_TIMEOUT, connection.create_channel()).await?);
    }
    slot.as_ref().ok_or(BrokerError::Closed)
}

/// A consumer on its own channel; the stream ends (one error, then `None`) when either dies.
pub(crate) struct AmqpConsumer {
    /// Dropping both closes the channel, so the broker requeues the unacked deliveries.
    live: Option<(Channel, lapin::Consumer)>,
}

impl AmqpConsumer {
    pub(crate) async fn next(&mut self) -> Option<Result<Delivery, BrokerError>> {
        let (_, consumer) = self.live.as_mut()?;
        let error = match consumer.next().await {
            Some(Ok(delivery)) => return Some(Ok(delivery_from(delivery))),
            Some(Err(error)) => {
                warn!(%error, "consumer stopped: its channel or connection failed");
                from_lapin(error)
            }
            None => {
                warn!("consumer cancelled by the broker (queue deleted?)");
                BrokerError::Closed
            }
        };
        self.live = None;
        Some(Err(error))
    }
}

/// Turns a lapin delivery into ours: caller headers, delivery count, the acker.
fn delivery_from(delivery: lapin::message::Delivery) -> Delivery {
    let (headers, delivery_count) = read_headers(delivery.properties.headers());
    Delivery {
        body: delivery.data,
        headers,
        redelivered: delivery.redelivered,
        delivery_count,
        settle: Settle::Amqp(AmqpSettle {
            acker: Some(delivery.acker),
        }),
    }
}

/// Settles one RabbitMQ delivery; unsettled on drop means "nack with requeue".
pub(crate) struct AmqpSettle {
    acker: Option<Acker>,
}

impl AmqpSettle {
    fn take(&mut self) -> Result<Acker, BrokerError> {
        self.acker.take().ok_or(BrokerError::Closed)
    }

    pub(crate) async fn ack(mut self) -> Result<(), BrokerError> {
        let acker = self.take()?;
        bounded_ack(acker.ack(BasicAckOptions::default())).await
    }

    pub(crate) async fn nack_requeue(mut self) -> Result<(), BrokerError> {
        let acker = self.take()?;
        bounded_ack(acker.nack(requeue())).await
    }

    pub(crate) async fn dead_letter(mut self) -> Result<(), BrokerError> {
        let acker = self.take()?;
        bounded_ack(acker.reject(BasicRejectOptions { requeue: false })).await
    }
}

impl Drop for AmqpSettle {
    fn drop(&mut self) {
        let Some(acker) = self.acker.take() else {
            return;
        };
        // A dead channel already returned it; otherwise give it back now rather than holding it
        // (and a prefetch slot) until the channel closes.
        if !acker.usable() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = acker.nack(requeue()).await {
                    debug!(%error, "requeueing a dropped delivery failed; the channel returns it");
                }
            });
        }
    }
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        multiple: false,
        requeue: true,
    }
}

/// An ack/nack/reject: `Ok(false)` from lapin means the channel is gone (the acker was
/// poisoned), which is an error for the caller: the job will be redelivered.
async fn bounded_ack(
    settle: impl std::future::Future<Output = lapin::Result<bool>>,
) -> Result<(), BrokerError> {
    match tokio::time::timeout(OPERATION_TIMEOUT, settle).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(BrokerError::Closed),
        Ok(Err(error)) => {
            debug!(%error, "settling a delivery failed");
            Err(BrokerError::Closed)
        }
        Err(_) => Err(BrokerError::Timeout(OPERATION_TIMEOUT)),
    }
}

/// Why a publish failed: `Broken` (the channel or connection) is worth a repair and one retry,
/// `Final` (nack, returned, timeout) is not.
enum PublishFailure {
    Broken(BrokerError),
    Final(BrokerError),
}

impl PublishFailure {
    fn into_error(self) -> BrokerError {
        match self {
            Self::Broken(error) | Self::Final(error) => error,
        }
    }
}

async fn publish_confirmed(
    channel: &Channel,
    exchange: ShortString,
    routing_key: ShortString,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), PublishFailure> {
    let options = BasicPublishOptions {
        mandatory: true,
        immediate: false,
    };
    let confirmed = tokio::time::timeout(OPERATION_TIMEOUT, async {
        channel
            .basic_publish(exchange, routing_key, options, body, properties)
            .await?
            .await
    })
    .await;
    match confirmed {
        Err(_) => Err(PublishFailure::Final(BrokerError::Timeout(
            OPERATION_TIMEOUT,
        ))),
        Ok(Err(error)) => Err(PublishFailure::Broken(from_lapin(error))),
        Ok(Ok(Confirmation::Ack(None))) => Ok(()),
        Ok(Ok(Confirmation::Ack(Some(returned)))) => Err(PublishFailure::Final(
            BrokerError::Returned(format!("{} {}", returned.reply_code, returned.reply_text)),
        )),
        Ok(Ok(Confirmation::Nack(_))) => Err(PublishFailure::Final(BrokerError::Nacked)),
        // Confirm mode lost (should not happen: lapin restores it on recovery): a new channel
        // fixes it.
        Ok(Ok(Confirmation::NotRequested)) => Err(PublishFailure::Broken(BrokerError::Connection(
            "the publishing channel is not in confirm mode".to_owned(),
        ))),
    }
}

/// Properties of every job: JSON, persistent, the caller headers as long strings.
fn properties(headers: &Headers) -> Result<BasicProperties, BrokerError> {
    let mut table = FieldTable::default();
    for (key, value) in headers {
        let key = ShortString::try_new(key.as_str())
            .map_err(|e| BrokerError::InvalidHeader(key.clone(), e.to_string()))?;
        table.insert(key, AMQPValue::LongString(LongString::from(value.as_str())));
    }
    Ok(BasicProperties::default()
        .with_content_type(ShortString::from("application/json"))
        .with_delivery_mode(PERSISTENT)
        .with_headers(table))
}

/// The caller headers (string values, RabbitMQ's `x-` headers left out) and `x-delivery-count`.
fn read_headers(table: &Option<FieldTable>) -> (Headers, u32) {
    let mut headers = Headers::new();
    let mut delivery_count = 0;
    let Some(table) = table else {
        return (headers, delivery_count);
    };
    for (key, value) in table.inner() {
        let key = key.as_str();
        if key == "x-delivery-count" {
            delivery_count = as_u32(value).unwrap_or(0);
        } else if !is_reserved_header(key) {
            let text = match value {
                AMQPValue::LongString(text) => {
                    String::from_utf8_lossy(text.as_bytes()).into_owned()
                }
                AMQPValue::ShortString(text) => text.as_str().to_owned(),
                _ => continue,
            };
            headers.insert(key.to_owned(), text);
        }
    }
    (headers, delivery_count)
}

fn as_u32(value: &AMQPValue) -> Option<u32> {
    let wide: i128 = match *value {
        AMQPValue::ShortShortInt(n) => n.into(),
        AMQPValue::ShortShortUInt(n) => n.into(),
        AMQPValue::ShortInt(n) => n.into(),
        AMQPValue::ShortUInt(n) => n.into(),
        AMQPValue::LongInt(n) => n.into(),
        AMQPValue::LongUInt(n) => n.into(),
        AMQPValue::LongLongInt(n) => n.into(),
        AMQPValue::Timestamp(n) => n.into(),
        _ => return None,
    };
    u32::try_from(wide).ok()
}

async fn open_connection(
    url: &str,
    prefix: &str,
    role: &str,
    auto_recover: bool,
) -> Result<Connection, BrokerError> {
    // Operators see who is who in the management UI.
    let name = format!("wapim-broker {role} {prefix}");
    let mut properties =
        ConnectionProperties::default().with_connection_name(LongString::from(name));
    if auto_recover {
        // A short backoff (≈ 5 s in all): past it, `repair` takes over with a new connection.
        properties = properties
            .enable_auto_recover()
            .configure_backoff(|backoff| {
                backoff
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(2))
                    .with_max_times(5)
            });
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url, properties)).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(error)) => Err(BrokerError::Connection(error.to_string())),
        Err(_) => Err(BrokerError::Connection(format!(
            "no connection within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

async fn open_publish_channel(
    connection: &Connection,
    names: &Names,
    delivery_limit: u32,
) -> Result<Channel, BrokerError> {
    let channel = bounded(OPERATION_TIMEOUT, connection.create_channel()).await?;
    bounded(
        OPERATION_TIMEOUT,
        channel.confirm_select(ConfirmSelectOptions::default()),
    )
    .await?;
    declare_topology(&channel, names, delivery_limit).await?;
    Ok(channel)
}

/// Declares every exchange, queue and binding (idempotent: the same arguments every time).
async fn declare_topology(
    channel: &Channel,
    names: &Names,
    delivery_limit: u32,
) -> Result<(), BrokerError> {
    let exchange = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let queue = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    let send_exchange = short(&names.send_exchange)?;
    let dead_exchange = short(&names.dead_exchange)?;
    let send_queue = short(&names.send_queue)?;
    let dead_queue = short(&names.dead_queue)?;
    let mut delay_queues = Vec::new();
    for (name, ttl_ms) in names.delay_queues() {
        delay_queues.push((short(&name)?, ttl_ms));
    }

    let mut send_arguments = quorum();
    send_arguments.insert("x-delivery-limit".into(), long(u64::from(delivery_limit)));
    dead_letter_to(&mut send_arguments, &names.dead_exchange, DEAD_KEY);

    let declare = async {
        channel
            .exchange_declare(
                send_exchange.clone(),
                ExchangeKind::Direct,
                exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .exchange_declare(
                dead_exchange.clone(),
                ExchangeKind::Direct,
                exchange,
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(dead_queue.clone(), queue, quorum())
            .await?;
        channel
            .queue_bind(
                dead_queue,
                dead_exchange,
                DEAD_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(send_queue.clone(), queue, send_arguments)
            .await?;
        channel
            .queue_bind(
                send_queue,
                send_exchange,
                SEND_KEY.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        for (name, ttl_ms) in delay_queues {
            let mut arguments = quorum();
            arguments.insert("x-message-ttl".into(), long(ttl_ms));
            dead_letter_to(&mut arguments, &names.send_exchange, SEND_KEY);
            channel.queue_declare(name, queue, arguments).await?;
        }
        Ok::<(), lapin::Error>(())
    };
    bounded(OPERATION_TIMEOUT, declare).await
}

fn quorum() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), text("quorum"));
    arguments
}

/// Dead-lettering at least once (see the crate docs for why `reject-publish` comes with it).
fn dead_letter_to(arguments: &mut FieldTable, exchange: &str, routing_key: &str) {
    arguments.insert("x-dead-letter-exchange".into(), text(exchange));
    arguments.insert("x-dead-letter-routing-key".into(), text(routing_key));
    arguments.insert("x-dead-letter-strategy".into(), text("at-least-once"));
    arguments.insert("x-overflow".into(), text("reject-publish"));
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

fn long(value: u64) -> AMQPValue {
    AMQPValue::LongLongInt(i64::try_from(value).unwrap_or(i64::MAX))
}

/// A name as an AMQP short string (names are checked at connect, so this only guards).
fn short(name: &str) -> Result<ShortString, BrokerError> {
    ShortString::try_new(name).map_err(|e| BrokerError::Config(format!("`{name}`: {e}")))
}

/// Runs a lapin operation with a time limit.
async fn bounded<T>(
    limit: Duration,
    operation: impl std::future::Future<Output = lapin::Result<T>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result.map_err(from_lapin),
        Err(_) => Err(BrokerError::Timeout(limit)),
    }
}

/// A channel-level refusal (`NOT_FOUND`, `PRECONDITION_FAILED`, …) is `Refused`; everything else
/// from lapin is connection trouble.
fn from_lapin(error: lapin::Error) -> BrokerError {
    if error.is_amqp_soft_error() {
        BrokerError::Refused(error.to_string())
    } else {
        BrokerError::Connection(error.to_string())
    }
}

/// Closes a short-lived channel, ignoring failures (a dead channel is closed already).
async fn close(channel: Channel) {
    if channel.status().connected() {
        let close = channel.close(REPLY_SUCCESS, ShortString::from("OK"));
        if let Ok(Err(error)) = tokio::time::timeout(OPERATION_TIMEOUT, close).await {
            debug!(%error, "closing a channel failed");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

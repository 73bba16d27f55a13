//! The in-process queue (`memory://`) for the single binary: the same semantics as the RabbitMQ
//! topology, minus durability (the database rows are the durable record there).
//!
//! - one FIFO of ready jobs shared by every consumer of the `Broker` (each job to one consumer);
//! - a consumer holds at most `prefetch` unsettled deliveries (0 = unlimited);
//! - a returned job (nack with requeue, a dropped `Delivery`, a dropped `Consumer` with unsettled
//!   deliveries) goes back to the front with its delivery count + 1, or to the dead letters once
//!   the count exceeds the delivery limit, like a quorum queue;
//! - delayed jobs are tokio tasks that enqueue after the delay (lost if the process stops).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::Notify;

use crate::{BrokerError, Delivery, Headers, Settle};

/// One job with its bookkeeping.
#[derive(Debug, Clone)]
struct Message {
    body: Vec<u8>,
    headers: Headers,
    /// How many times the job was returned to the queue.
    delivery_count: u32,
}

/// A delivered, not yet settled job and the consumer holding it.
#[derive(Debug)]
struct Unsettled {
    message: Message,
    consumer: u64,
}

#[derive(Debug, Default)]
struct State {
    ready: VecDeque<Message>,
    /// By delivery tag (increasing, so iteration is delivery order).
    unsettled: BTreeMap<u64, Unsettled>,
    dead: VecDeque<Message>,
    /// Unsettled deliveries per live consumer.
    consumers: HashMap<u64, usize>,
    next_tag: u64,
    next_consumer: u64,
}

/// How a delivery is settled.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ack,
    Requeue,
    DeadLetter,
}

/// The shared queue behind every clone of an in-process `Broker`.
#[derive(Debug)]
pub(crate) struct MemoryBroker {
    state: Mutex<State>,
    /// Woken whenever a job becomes ready or a consumer's unsettled count drops.
    changed: Notify,
    prefetch: u16,
    delivery_limit: u32,
}

impl MemoryBroker {
    pub(crate) fn new(prefetch: u16, delivery_limit: u32) -> Self {
        Self {
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            prefetch,
            delivery_limit,
        }
    }

    /// The state survives a panic elsewhere: every change below is a single step.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn publish(&self, body: Vec<u8>, headers: Headers) {
        self.state().ready.push_back(Message {
            body,
            headers,
            delivery_count: 0,
        });
        self.changed.notify_waiters();
    }

    pub(crate) fn publish_delayed(
        self: &Arc<Self>,
        body: Vec<u8>,
        headers: Headers,
        delay: Duration,
    ) -> Result<(), BrokerError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| BrokerError::Config("the broker needs a tokio runtime".to_owned()))?;
        // Weak: a delayed job does not keep a dropped broker alive (it would have no reader).
        let broker: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(broker) = broker.upgrade() {
                broker.publish(body, headers);
            }
        });
        Ok(())
    }

    pub(crate) fn consumer(self: &Arc<Self>) -> MemoryConsumer {
        let id = {
            let mut state = self.state();
            let id = state.next_consumer;
            state.next_consumer += 1;
            state.consumers.insert(id, 0);
            id
        };
        MemoryConsumer {
            broker: Arc::clone(self),
            id,
        }
    }

    /// Takes the next job for `consumer`, if one is ready and its prefetch allows.
    fn take(self: &Arc<Self>, consumer: u64) -> Option<Delivery> {
        let mut state = self.state();
        let held = state.consumers.get(&consumer).copied().unwrap_or(0);
        if self.prefetch != 0 && held >= usize::from(self.prefetch) {
            return None;
        }
        let message = state.ready.pop_front()?;
        let tag = state.next_tag;
        state.next_tag += 1;
        if let Some(held) = state.consumers.get_mut(&consumer) {
            *held += 1;
        }
        let delivery = Delivery {
            body: message.body.clone(),
            headers: message.headers.clone(),
            redelivered: message.delivery_count > 0,
            delivery_count: message.delivery_count,
            settle: Settle::InProcess(MemorySettle {
                broker: Arc::clone(self),
                tag,
                settled: false,
            }),
        };
        state.unsettled.insert(tag, Unsettled { message, consumer });
        Some(delivery)
    }

    /// Settles a delivery; `Closed` when it is no longer held (its consumer was dropped and the
    /// job already went back to the queue).
    fn settle(&self, tag: u64, outcome: Outcome) -> Result<(), BrokerError> {
        {
            let mut state = self.state();
            let unsettled = state.unsettled.remove(&tag).ok_or(BrokerError::Closed)?;
            if let Some(held) = state.consumers.get_mut(&unsettled.consumer) {
                *held = held.saturating_sub(1);
            }
            match outcome {
                Outcome::Ack => {}
                Outcome::DeadLetter => state.dead.push_back(unsettled.message),
                Outcome::Requeue => self.give_back(&mut state, unsettled.message),
            }
        }
        self.changed.notify_waiters();
        Ok(())
    }

    /// A returned job: to the front of the queue, or to the dead letters past the limit (like a
    /// quorum queue's `x-delivery-limit`).
    fn give_back(&self, state: &mut State, mut message: Message) {
        message.delivery_count = message.delivery_count.saturating_add(1);
        if message.delivery_count > self.delivery_limit {
            state.dead.push_back(message);
        } else {
            state.ready.push_front(message);
        }
    }

    /// A consumer went away: its unsettled deliveries go back, in their order.
    fn drop_consumer(&self, consumer: u64) {
        {
            let mut state = self.state();
            state.consumers.remove(&consumer);
            let tags: Vec<u64> = state
                .unsettled
                .iter()
                .filter(|(_, unsettled)| unsettled.consumer == consumer)
                .map(|(tag, _)| *tag)
                .collect();
            // Newest first, each to the front: the oldest ends up first again.
            for tag in tags.into_iter().rev() {
                if let Some(unsettled) = state.unsettled.remove(&tag) {
                    self.give_back(&mut state, unsettled.message);
                }
            }
        }
        self.changed.notify_waiters();
    }

    pub(crate) fn replay_dead_letters(&self, max: usize) -> usize {
        let moved = {
            let mut state = self.state();
            let count = max.min(state.dead.len());
            let replayed: Vec<Message> = state.dead.drain(..count).collect();
            for mut message in replayed {
                message.delivery_count = 0;
                state.ready.push_back(message);
            }
            count
        };
        self.changed.notify_waiters();
        moved
    }

    pub(crate) fn dead_letter_count(&self) -> u32 {
        u32::try_from(self.state().dead.len()).unwrap_or(u32::MAX)
    }

    /// Forgets every job (the in-process "delete topology").
    pub(crate) fn clear(&self) {
        let mut state = self.state();
        state.ready.clear();
        state.dead.clear();
        state.unsettled.clear();
        for held in state.consumers.values_mut() {
            *held = 0;
        }
    }
}

/// One consumer of the in-process queue.
#[derive(Debug)]
pub(crate) struct MemoryConsumer {
    broker: Arc<MemoryBroker>,
    id: u64,
}

impl MemoryConsumer {
    /// Waits for the next job; the in-process queue never ends.
    pub(crate) async fn next(&mut self) -> Option<Delivery> {
        loop {
            let notified = self.broker.changed.notified();
            tokio::pin!(notified);
            // Register before looking, so a change between the look and the wait is not missed.
            notified.as_mut().enable();
            if let Some(delivery) = self.broker.take(self.id) {
                return Some(delivery);
            }
            notified.await;
        }
    }
}

impl Drop for MemoryConsumer {
    fn drop(&mut self) {
        self.broker.drop_consumer(self.id);
    }
}

/// Settles one in-process delivery; unsettled on drop means "give it back".
pub(crate) struct MemorySettle {
    broker: Arc<MemoryBroker>,
    tag: u64,
    settled: bool,
}

impl MemorySettle {
    fn finish(mut self, outcome: Outcome) -> Result<(), BrokerError> {
        self.settled = true;
        self.broker.settle(self.tag, outcome)
    }

    pub(crate) fn ack(self) -> Result<(), BrokerError> {
        self.finish(Outcome::Ack)
    }

    pub(crate) fn nack_requeue(self) -> Result<(), BrokerError> {
        self.finish(Outcome::Requeue)
    }

    pub(crate) fn dead_letter(self) -> Result<(), BrokerError> {
        self.finish(Outcome::DeadLetter)
    }
}

impl Drop for MemorySettle {
    fn drop(&mut self) {
        if !self.settled {
            // Already given back if its consumer was dropped first: nothing to do then.
            let _ = self.broker.settle(self.tag, Outcome::Requeue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(broker: &MemoryBroker, n: u8) {
        broker.publish(vec![n], Headers::new());
    }

    #[tokio::test]
    async fn prefetch_limits_unsettled_deliveries() {
        let broker = Arc::new(MemoryBroker::new(1, 10));
        job(&broker, 1);
        job(&broker, 2);
        let mut consumer = MemoryBroker::consumer(&broker);
        let first = consumer.next().await.unwrap();
        assert!(broker.take(consumer.id).is_none(), "prefetch 1 is reached");
        first.ack().await.unwrap();
        let second = consumer.next().await.unwrap();
        assert_eq!(second.body, vec![2]);
        second.ack().await.unwrap();
    }

    #[tokio::test]
    async fn dropped_consumer_returns_its_deliveries_in_order() {
        let broker = Arc::new(MemoryBroker::new(0, 10));
        job(&broker, 1);
        job(&broker, 2);
        let mut consumer = MemoryBroker::consumer(&broker);
        let first = consumer.next().await.unwrap();
        let second = consumer.next().await.unwrap();
        drop(consumer);
        assert!(matches!(first.ack().await, Err(BrokerError::Closed)));
        assert!(matches!(
            second.nack_requeue().await,
            Err(BrokerError::Closed)
        ));
        let mut consumer = MemoryBroker::consumer(&broker);
        let again = consumer.next().await.unwrap();
        assert_eq!((again.body.clone(), again.delivery_count), (vec![1], 1));
        assert!(again.redelivered);
        again.ack().await.unwrap();
        let again = consumer.next().await.unwrap();
        assert_eq!(again.body, vec![2]);
        again.ack().await.unwrap();
    }

    #[tokio::test]
    async fn delivery_limit_dead_letters() {
        let broker = Arc::new(MemoryBroker::new(0, 0));
        job(&broker, 1);
        let mut consumer = MemoryBroker::consumer(&broker);
        consumer.next().await.unwrap().nack_requeue().await.unwrap();
        assert_eq!(broker.dead_letter_count(), 1);
        assert_eq!(broker.replay_dead_letters(5), 1);
        let again = consumer.next().await.unwrap();
        assert_eq!(again.delivery_count, 0);
        again.ack().await.unwrap();
    }
}

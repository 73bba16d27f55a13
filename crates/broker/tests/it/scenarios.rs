//! The broker contract, on RabbitMQ and in process alike.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use wapim_broker::{BrokerError, Headers};

use crate::support::*;

both_backends! {
    /// publish → consume → the job and its headers round-trip; acked, it never comes back.
    async fn round_trip(ctx) {
        let broker = ctx.connect().await;
        let mut consumer = broker.consumer("dispatcher-1").await.unwrap();
        broker.publish(&job(7), &trace_headers(7)).await.unwrap();

        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.job::<SendJob>().unwrap(), job(7));
        assert_eq!(delivery.headers(), &trace_headers(7));
        assert!(!delivery.redelivered());
        assert_eq!(delivery.delivery_count(), 0);
        delivery.ack().await.unwrap();

        assert_quiet(&mut consumer, Duration::from_millis(1500)).await;
        assert_eq!(broker.dead_letter_count().await.unwrap(), 0);
        assert!(broker.is_connected().await);
    }
}

both_backends! {
    /// RabbitMQ's own `x-` headers are refused, nothing is published.
    async fn reserved_headers_are_refused(ctx) {
        let broker = ctx.connect().await;
        let headers = Headers::from([("x-death".to_owned(), "1".to_owned())]);
        let error = broker.publish(&job(1), &headers).await.unwrap_err();
        assert!(matches!(error, BrokerError::InvalidHeader(..)), "{error:?}");
        assert!(!error.is_transient());
        let mut consumer = broker.consumer("c").await.unwrap();
        assert_quiet(&mut consumer, Duration::from_millis(500)).await;
    }
}

both_backends! {
    /// A consumer that dies with an unacked delivery: the job comes back, marked redelivered,
    /// and the dead consumer's ack fails.
    async fn dropped_consumer_redelivers(ctx) {
        let broker = ctx.connect().await;
        broker.publish(&job(1), &trace_headers(1)).await.unwrap();

        let mut first = broker.consumer("first").await.unwrap();
        let orphan = next(&mut first).await;
        drop(first); // its channel closes (RabbitMQ) / it leaves the queue (in process)

        let mut second = broker.consumer("second").await.unwrap();
        let again = next(&mut second).await;
        assert_eq!(again.job::<SendJob>().unwrap(), job(1));
        assert_eq!(again.headers(), &trace_headers(1));
        assert!(again.redelivered());
        assert_eq!(again.delivery_count(), 1);

        let error = orphan.ack().await.unwrap_err();
        assert!(error.is_transient(), "{error:?}");
        again.ack().await.unwrap();
        assert_quiet(&mut second, Duration::from_millis(1000)).await;
    }
}

both_backends! {
    /// A delivery dropped unsettled (a worker task died) goes back to the queue at once.
    async fn dropped_delivery_is_requeued(ctx) {
        let broker = ctx.connect().await;
        let mut consumer = broker.consumer("c").await.unwrap();
        broker.publish(&job(2), &Headers::new()).await.unwrap();
        drop(next(&mut consumer).await);

        let again = next(&mut consumer).await;
        assert_eq!(again.job::<SendJob>().unwrap(), job(2));
        assert!(again.redelivered());
        assert_eq!(again.delivery_count(), 1);
        again.ack().await.unwrap();
    }
}

both_backends! {
    /// dead_letter → counted in the DLQ, not redelivered; replay → consumed again, once.
    async fn dead_letter_and_replay(ctx) {
        let broker = ctx.connect().await;
        let mut consumer = broker.consumer("c").await.unwrap();
        broker.publish(&job(3), &trace_headers(3)).await.unwrap();
        next(&mut consumer).await.dead_letter().await.unwrap();

        wait_dead_letters(&broker, 1).await;
        assert_quiet(&mut consumer, Duration::from_millis(500)).await;

        assert_eq!(broker.replay_dead_letters(10).await.unwrap(), 1);
        assert_eq!(broker.dead_letter_count().await.unwrap(), 0);
        let replayed = next(&mut consumer).await;
        assert_eq!(replayed.job::<SendJob>().unwrap(), job(3));
        assert_eq!(replayed.headers(), &trace_headers(3));
        assert_eq!(replayed.delivery_count(), 0);
        replayed.ack().await.unwrap();
        assert_eq!(broker.replay_dead_letters(10).await.unwrap(), 0);
    }
}

both_backends! {
    /// replay moves at most `max`, oldest first.
    async fn replay_is_bounded(ctx) {
        let broker = ctx.connect().await;
        let mut consumer = broker.consumer("c").await.unwrap();
        for id in 0..3 {
            broker.publish(&job(id), &Headers::new()).await.unwrap();
            next(&mut consumer).await.dead_letter().await.unwrap();
        }
        wait_dead_letters(&broker, 3).await;
        assert_eq!(broker.replay_dead_letters(2).await.unwrap(), 2);
        assert_eq!(broker.dead_letter_count().await.unwrap(), 1);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let delivery = next(&mut consumer).await;
            ids.push(delivery.job::<SendJob>().unwrap().message_id);
            delivery.ack().await.unwrap();
        }
        assert_eq!(ids, vec![0, 1]);
    }
}

both_backends! {
    /// With delivery limit 2 a job is delivered 3 times (counts 0, 1, 2); the third requeue
    /// dead-letters it.
    async fn delivery_limit_dead_letters(ctx) {
        let broker = ctx.connect_with(&ctx.config(2)).await;
        let mut consumer = broker.consumer("c").await.unwrap();
        broker.publish(&job(4), &Headers::new()).await.unwrap();

        let mut counts = Vec::new();
        for _ in 0..3 {
            let delivery = next(&mut consumer).await;
            counts.push(delivery.delivery_count());
            delivery.nack_requeue().await.unwrap();
        }
        assert_eq!(counts, vec![0, 1, 2]);
        wait_dead_letters(&broker, 1).await;
        assert_quiet(&mut consumer, Duration::from_millis(1000)).await;
    }
}

both_backends! {
    /// publish_delayed(1 s): not before 1 s, well within a few seconds, headers kept.
    async fn delayed_publish(ctx) {
        let broker = ctx.connect().await;
        let mut consumer = broker.consumer("c").await.unwrap();
        let start = Instant::now();
        broker
            .publish_delayed(&job(5), &trace_headers(5), Duration::from_secs(1))
            .await
            .unwrap();
        let delivery = next_within(&mut consumer, Duration::from_secs(10)).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(1), "arrived after {waited:?}");
        assert!(waited < Duration::from_secs(5), "arrived after {waited:?}");
        assert_eq!(delivery.job::<SendJob>().unwrap(), job(5));
        assert_eq!(delivery.headers(), &trace_headers(5));
        assert_eq!(delivery.delivery_count(), 0);
        delivery.ack().await.unwrap();
    }
}

both_backends! {
    /// A delay between buckets waits for the next bucket up (1.5 s → 5 s).
    async fn delay_rounds_up_to_a_bucket(ctx) {
        let broker = ctx.connect().await;
        let mut consumer = broker.consumer("c").await.unwrap();
        let start = Instant::now();
        broker
            .publish_delayed(&job(6), &Headers::new(), Duration::from_millis(1500))
            .await
            .unwrap();
        let delivery = next_within(&mut consumer, Duration::from_secs(15)).await;
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(5), "arrived after {waited:?}");
        assert!(waited < Duration::from_secs(10), "arrived after {waited:?}");
        delivery.ack().await.unwrap();
    }
}

both_backends! {
    /// A body that is not a `SendJob` is an error from job(), and can be dead-lettered.
    async fn unparseable_body_is_dead_lettered(ctx) {
        let broker = ctx.connect().await;
        let mut consumer = broker.consumer("c").await.unwrap();
        broker
            .publish(&serde_json::json!({"nope": true}), &Headers::new())
            .await
            .unwrap();
        let delivery = next(&mut consumer).await;
        let error = delivery.job::<SendJob>().unwrap_err();
        assert!(matches!(error, BrokerError::Deserialize(_)), "{error:?}");
        assert!(!error.is_transient());
        delivery.dead_letter().await.unwrap();
        wait_dead_letters(&broker, 1).await;
    }
}

both_backends! {
    /// Two connects with the same prefix (two replicas starting) declare the same topology;
    /// both publish to and consume from the one queue.
    async fn topology_is_idempotent(ctx) {
        let first = ctx.connect().await;
        let second = ctx.connect().await;
        let mut consumer = first.consumer("c").await.unwrap();
        first.publish(&job(1), &Headers::new()).await.unwrap();
        second.publish(&job(2), &Headers::new()).await.unwrap();
        let mut ids = BTreeSet::new();
        let expected = if ctx.is_amqp() { 2 } else { 1 }; // in process: one queue per Broker
        for _ in 0..expected {
            let delivery = next(&mut consumer).await;
            ids.insert(delivery.job::<SendJob>().unwrap().message_id);
            delivery.ack().await.unwrap();
        }
        assert_eq!(ids.len(), expected);
    }
}

both_backends! {
    /// Several consumers share the queue: every job reaches exactly one of them.
    async fn competing_consumers_share_the_queue(ctx) {
        let broker = ctx.connect().await;
        let mut consumers = Vec::new();
        for n in 0..3 {
            consumers.push(broker.consumer(&format!("worker-{n}")).await.unwrap());
        }
        for id in 0..30 {
            broker.publish(&job(id), &Headers::new()).await.unwrap();
        }
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut workers = Vec::new();
        for mut consumer in consumers {
            let sender = sender.clone();
            workers.push(tokio::spawn(async move {
                while let Ok(Some(Ok(delivery))) =
                    tokio::time::timeout(Duration::from_millis(1500), consumer.next()).await
                {
                    sender.send(delivery.job::<SendJob>().unwrap().message_id).unwrap();
                    delivery.ack().await.unwrap();
                }
            }));
        }
        drop(sender);
        let mut seen = Vec::new();
        while let Some(id) = receiver.recv().await {
            seen.push(id);
        }
        for worker in workers {
            worker.await.unwrap();
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..30).collect::<Vec<_>>());
    }
}

both_backends! {
    /// Concurrent publishers on one Broker: every job confirmed and delivered.
    async fn concurrent_publishes(ctx) {
        let broker = ctx.connect().await;
        let mut tasks = Vec::new();
        for id in 0..50 {
            let broker = broker.clone();
            tasks.push(tokio::spawn(async move {
                broker.publish(&job(id), &trace_headers(id)).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let mut consumer = broker.consumer("c").await.unwrap();
        let mut seen = BTreeSet::new();
        for _ in 0..50 {
            let delivery = next(&mut consumer).await;
            seen.insert(delivery.job::<SendJob>().unwrap().message_id);
            delivery.ack().await.unwrap();
        }
        assert_eq!(seen.len(), 50);
    }
}

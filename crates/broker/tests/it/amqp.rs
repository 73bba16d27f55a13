//! What only a real RabbitMQ can show: the declared queue types and arguments, a changed
//! delivery limit, and connections killed by the broker.

use std::process::Command;
use std::time::Duration;

use wapim_broker::{BrokerError, Headers};

use crate::support::*;

/// `rabbitmqctl` with arguments; its standard output.
async fn rabbitmqctl(args: Vec<String>) -> String {
    tokio::task::spawn_blocking(move || {
        let output = Command::new("rabbitmqctl")
            .args(&args)
            .output()
            .expect("rabbitmqctl runs");
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    })
    .await
    .unwrap()
}

/// The queues of this prefix: name → (type, arguments as printed).
async fn queues(prefix: &str) -> Vec<(String, String, String)> {
    let listing = rabbitmqctl(
        [
            "list_queues",
            "-q",
            "--no-table-headers",
            "name",
            "type",
            "arguments",
            "durable",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let mut queues: Vec<_> = listing
        .lines()
        .filter(|line| line.starts_with(prefix))
        .map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next().unwrap_or_default().to_owned();
            let kind = fields.next().unwrap_or_default().to_owned();
            let arguments = fields.next().unwrap_or_default().to_owned();
            let durable = fields.next().unwrap_or_default();
            assert_eq!(durable, "true", "{name} is durable");
            (name, kind, arguments)
        })
        .collect();
    queues.sort();
    queues
}

/// Closes (broker side) every connection whose client name carries `prefix`; how many.
async fn kill_connections(prefix: &str) -> usize {
    let listing = rabbitmqctl(
        [
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    let pids: Vec<String> = listing
        .lines()
        .filter(|line| line.contains(prefix))
        .filter_map(|line| line.split('\t').next().map(str::to_owned))
        .collect();
    for pid in &pids {
        rabbitmqctl(vec![
            "close_connection".to_owned(),
            pid.clone(),
            "test: simulated broker-side failure".to_owned(),
        ])
        .await;
    }
    pids.len()
}

amqp_only! {
    /// The declared topology: quorum queues with the documented arguments, deleted afterwards.
    async fn declares_the_documented_topology(ctx) {
        let broker = ctx.connect_with(&ctx.config(7)).await;
        let declared = queues(&ctx.prefix).await;
        let names: Vec<&str> = declared.iter().map(|(name, _, _)| name.as_str()).collect();
        let p = &ctx.prefix;
        assert_eq!(
            names,
            [
                format!("{p}dead.q"),
                format!("{p}delay.1000"),
                format!("{p}delay.120000"),
                format!("{p}delay.30000"),
                format!("{p}delay.3600000"),
                format!("{p}delay.5000"),
                format!("{p}delay.600000"),
                format!("{p}send.q"),
            ]
        );
        for (name, kind, arguments) in &declared {
            assert_eq!(kind, "quorum", "{name}");
            if name.ends_with("send.q") {
                for expected in [
                    "{\"x-delivery-limit\",7}".to_owned(),
                    format!("{{\"x-dead-letter-exchange\",\"{p}dead\"}}"),
                    "{\"x-dead-letter-routing-key\",\"dead\"}".to_owned(),
                    "{\"x-dead-letter-strategy\",\"at-least-once\"}".to_owned(),
                    "{\"x-overflow\",\"reject-publish\"}".to_owned(),
                ] {
                    assert!(arguments.contains(&expected), "{name}: {arguments} lacks {expected}");
                }
            }
            if name.ends_with("delay.5000") {
                for expected in [
                    "{\"x-message-ttl\",5000}".to_owned(),
                    format!("{{\"x-dead-letter-exchange\",\"{p}send\"}}"),
                    "{\"x-dead-letter-routing-key\",\"send\"}".to_owned(),
                    "{\"x-dead-letter-strategy\",\"at-least-once\"}".to_owned(),
                ] {
                    assert!(arguments.contains(&expected), "{name}: {arguments} lacks {expected}");
                }
            }
        }

        broker.delete_topology().await.unwrap();
        assert!(queues(&ctx.prefix).await.is_empty());
    }
}

amqp_only! {
    /// A different delivery limit for an existing prefix is refused, not silently ignored.
    async fn changed_delivery_limit_is_refused(ctx) {
        let _first = ctx.connect_with(&ctx.config(10)).await;
        let error = wapim_broker::Broker::connect(&ctx.config(3)).await.unwrap_err();
        assert!(matches!(error, BrokerError::Refused(_)), "{error:?}");
        assert!(error.to_string().contains("PRECONDITION_FAILED"), "{error}");
    }
}

amqp_only! {
    /// The broker kills both connections: the consumer's stream ends with an error (then
    /// `None`); publishing recovers by itself; a new consumer gets the job; the unacked job of
    /// the dead consumer is redelivered.
    async fn survives_broker_side_connection_loss(ctx) {
        let broker = ctx.connect().await;
        let mut consumer = broker.consumer("before").await.unwrap();
        broker.publish(&job(1), &Headers::new()).await.unwrap();
        let unacked = next(&mut consumer).await;

        assert_eq!(kill_connections(&ctx.prefix).await, 2);

        match tokio::time::timeout(Duration::from_secs(10), consumer.next()).await {
            Ok(Some(Err(error))) => assert!(error.is_transient(), "{error:?}"),
            other => panic!("expected the stream to fail, got {other:?}"),
        }
        assert!(consumer.next().await.is_none());
        assert!(unacked.ack().await.is_err(), "an ack on a dead channel is an error");

        broker.publish(&job(2), &trace_headers(2)).await.unwrap();
        assert!(broker.is_connected().await);

        let mut consumer = broker.consumer("after").await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let delivery = next(&mut consumer).await;
            let id = delivery.job::<SendJob>().unwrap().message_id;
            if id == 1 {
                assert!(delivery.redelivered());
            }
            seen.push(id);
            delivery.ack().await.unwrap();
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2]);
    }
}

amqp_only! {
    /// Publishing right after the connection was killed (no time for lapin's recovery):
    /// the publish repairs the session and succeeds.
    async fn publish_right_after_connection_loss(ctx) {
        let broker = ctx.connect().await;
        broker.publish(&job(1), &Headers::new()).await.unwrap();
        assert_eq!(kill_connections(&ctx.prefix).await, 1);
        for id in 2..5 {
            broker.publish(&job(id), &Headers::new()).await.unwrap();
        }
        let mut consumer = broker.consumer("c").await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let delivery = next(&mut consumer).await;
            seen.push(delivery.job::<SendJob>().unwrap().message_id);
            delivery.ack().await.unwrap();
        }
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2, 3, 4]);
    }
}

amqp_only! {
    /// A mandatory publish that matches no queue is an error, not a silent loss.
    async fn unroutable_publish_is_an_error(ctx) {
        let broker = ctx.connect().await;
        // Remove the send queue (and with it its binding) behind the broker's back.
        rabbitmqctl(vec!["delete_queue".to_owned(), format!("{}send.q", ctx.prefix)]).await;
        let error = broker.publish(&job(1), &Headers::new()).await.unwrap_err();
        assert!(matches!(error, BrokerError::Returned(_)), "{error:?}");
        assert!(error.to_string().contains("NO_ROUTE"), "{error}");
    }
}

amqp_only! {
    /// An operator deleted the whole topology under a running broker: the next publish hits
    /// `NOT_FOUND`, which closes the publishing channel; the broker opens a new one, declares the
    /// topology again and the retried publish goes through.
    async fn publish_redeclares_a_deleted_topology(ctx) {
        let broker = ctx.connect().await;
        let operator = ctx.connect().await;
        operator.delete_topology().await.unwrap();
        assert!(queues(&ctx.prefix).await.is_empty());

        broker.publish(&job(9), &Headers::new()).await.unwrap();
        assert_eq!(queues(&ctx.prefix).await.len(), 8);
        let mut consumer = broker.consumer("c").await.unwrap();
        let delivery = next(&mut consumer).await;
        assert_eq!(delivery.job::<SendJob>().unwrap(), job(9));
        delivery.ack().await.unwrap();
    }
}

//! Per-device pacing across dispatcher replicas: consecutive sends of a device are never closer
//! than its interval, on the simulator's clock; a throttled device holds no worker another
//! device needs.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wapim_settings::PacingSettings;

use crate::crash::sigkill;
use crate::helpers::{dispatcher_binary, test_dispatcher_settings, Options, Pipeline};

const INTERVAL: Duration = Duration::from_millis(700);

wapim_testkit::both_backends! {
    async fn two_dispatcher_processes_never_send_one_device_closer_than_its_interval() {
        let p = Pipeline::start_with(Options { run_dispatcher: false, ..Options::rabbitmq() }).await;
        let texts: Vec<String> = (0..6).map(|i| format!("paced {i}")).collect();
        p.batch_as("wapi-test", &p.device_token, &texts).await;
        let ms = INTERVAL.as_millis() as u64;
        let a = dispatcher_binary(&p, 30, ms, 100);
        let b = dispatcher_binary(&p, 30, ms, 100);
        p.wait_for_sends(texts.len(), Duration::from_secs(30)).await;
        sigkill(a);
        sigkill(b);
        let sends = p.sim.sends();
        assert_eq!(sends.len(), texts.len(), "each once: {sends:?}");
        let mut gaps: Vec<Duration> = sends.windows(2).map(|w| w[1].instant - w[0].instant).collect();
        gaps.sort();
        assert!(gaps[0] >= INTERVAL, "the closest two sends were {:?} apart (gaps {gaps:?})", gaps[0]);
        for text in &texts {
            let id = p.sim.sends().iter().filter(|s| s.body["text"] == text.as_str()).count();
            assert_eq!(id, 1, "{text}");
        }
    }

    async fn a_throttled_device_does_not_delay_another_devices_first_send() {
        let p = Pipeline::start_with(Options { run_dispatcher: false, ..Options::rabbitmq() }).await;
        let pacing = PacingSettings { min_interval_ms: 1000, jitter_ms: 0 };
        let d = p.paced_dispatcher(test_dispatcher_settings(), pacing.clone());
        tokio::spawn(async move { d.run("paced-a").await });
        let d = p.paced_dispatcher(test_dispatcher_settings(), pacing);
        tokio::spawn(async move { d.run("paced-b").await });

        // Device A: 100 messages queued at once.
        let texts: Vec<String> = (0..100).map(|i| format!("busy {i}")).collect();
        p.batch_as("wapi-test", &p.device_token, &texts).await;
        p.wait_for_sends(1, Duration::from_secs(10)).await;

        // Device B's first message goes out at once, not behind A's queue.
        let (session, token) = p
            .add_device(json!({"name": "Other Shop", "phone_number": "0811010010020"}))
            .await;
        let posted = Instant::now();
        p.batch_as(&session, &token, &["first of B".to_owned()]).await;
        p.wait_for_send_of("first of B", Duration::from_secs(5)).await;
        let waited = posted.elapsed();
        assert!(waited < Duration::from_secs(1), "B's first send waited {waited:?} behind A's queue");
        // Meanwhile A is paced: at most one send a second so far.
        let a_sent = p.sim.sends().iter().filter(|s| s.session == "wapi-test").count();
        assert!(a_sent <= 3, "A sent {a_sent} in about 1.5 s at 1 a second");
        // A's waiting messages say why they wait.
        let waiting: Value = p
            .client
            .get(format!("{}/api/messages?status=pending&per_page=5", p.base))
            .bearer_auth(&p.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let list = waiting["data"]["list"].as_array().cloned().unwrap_or_default();
        assert!(!list.is_empty(), "{waiting}");
        assert!(list.iter().all(|m| m["hold_reason"] == "pacing"), "{list:?}");
    }

    async fn a_device_paces_by_its_own_settings_over_the_servers() {
        let p = Pipeline::start_with(Options { run_dispatcher: false, ..Options::rabbitmq() }).await;
        // The server's default is a minute: the pipeline's own device sends one and waits.
        let d = p.paced_dispatcher(test_dispatcher_settings(), PacingSettings { min_interval_ms: 60_000, jitter_ms: 0 });
        tokio::spawn(async move { d.run("paced-own").await });
        let (session, token) = p
            .add_device(json!({"name": "Own Pace", "phone_number": "0811010010030", "pacing_min_interval_ms": 0, "pacing_jitter_ms": 0}))
            .await;

        let slow: Vec<String> = (0..3).map(|i| format!("default {i}")).collect();
        let quick: Vec<String> = (0..3).map(|i| format!("own {i}")).collect();
        p.batch_as("wapi-test", &p.device_token, &slow).await;
        p.batch_as(&session, &token, &quick).await;
        p.wait_for_sends(4, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sends = p.sim.sends();
        assert_eq!(sends.iter().filter(|s| s.session == session).count(), 3, "its own pacing is off: {sends:?}");
        assert_eq!(sends.iter().filter(|s| s.session == "wapi-test").count(), 1, "the default holds the others: {sends:?}");
    }

    async fn immediate_sends_skip_pacing_and_the_next_queued_one_keeps_its_gap_after_them() {
        let p = Pipeline::start_with(Options { run_dispatcher: false, ..Options::rabbitmq() }).await;
        let d = p.paced_dispatcher(test_dispatcher_settings(), PacingSettings { min_interval_ms: 60_000, jitter_ms: 0 });
        tokio::spawn(async move { d.run("paced-immediate").await });
        for text in ["now 1", "now 2", "now 3"] {
            let m = p
                .post(json!({"recipient": "0811010010011", "message_type": "text", "message": text, "is_queue": false}))
                .await;
            assert_eq!(m["status"], "sent", "{text} is answered sent, not paced: {m}");
        }
        // A queued one after them is paced as usual: it waits.
        let queued = p.text("queued").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let m = p.message(queued).await;
        assert_eq!((m["status"].as_str(), m["hold_reason"].as_str()), (Some("pending"), Some("pacing")), "{m}");
    }
}

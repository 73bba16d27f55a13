//! Messages reach WAHA once, on time, and their records say what happened.

use std::time::Duration;

use serde_json::json;
use wapim_telemetry::TraceContext;
use wapim_waha_sim::{Engine, Faults, SessionStatus};

use crate::helpers::{test_dispatcher_settings, Options, Pipeline};

const WAIT: Duration = Duration::from_secs(20);

wapim_testkit::both_backends! {
    async fn a_posted_message_of_each_type_reaches_waha_once_and_is_recorded_sent() {
        let p = Pipeline::start().await;
        let text = p.text("Welcome home").await;
        let mut media = Vec::new();
        for (kind, file) in [
            ("image", "waha.jpg"),
            ("file", "price-list.pdf"),
            ("video", "clip.mp4"),
            ("audio", "note.ogg"),
        ] {
            let m = p
                .post(json!({
                    "recipient": "0811010010011",
                    "message_type": kind,
                    "message": format!("{kind} caption"),
                    "file_url": format!("http://127.0.0.1:9/media/{file}"),
                }))
                .await;
            media.push((kind, m["id"].as_i64().unwrap()));
        }
        let sent = p.wait_for_status(text, "sent", WAIT).await;
        assert_eq!(sent["is_sent"], 1);
        assert!(sent["sent_at"].is_string());
        let provider = sent["provider_message_id"].as_str().unwrap();
        assert!(provider.starts_with("true_62811010010011@c.us_"), "{provider}");
        assert!(sent["api_response"].as_str().unwrap().contains(provider));
        for (kind, id) in &media {
            let m = p.wait_for_status(*id, "sent", WAIT).await;
            assert!(m["provider_message_id"].is_string(), "{kind}: {m}");
        }
        assert_eq!(p.sends_of("Welcome home"), 1);
        let sends = p.sim.sends();
        assert_eq!(sends.len(), 5, "one send per message: {sends:?}");
        let violations = p.sim.violations();
        assert!(violations.is_empty(), "every request follows WAHA's OpenAPI: {violations:?}");
    }

    async fn one_trace_runs_from_the_accepting_request_to_the_waha_call() {
        let p = Pipeline::start().await;
        const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
        let incoming = format!("00-{TRACE}-00f067aa0ba902b7-01");
        let as_device = |path: &str| {
            p.client
                .post(format!("{}{path}", p.base))
                .header("X-Session-Id", "wapi-test")
                .header("X-Session-Secret-Token", &p.device_token)
                .header("traceparent", &incoming)
        };
        let r = as_device("/api/messages")
            .json(&json!({"recipient": "0811010010011", "message_type": "text", "message": "traced"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let id = r.json::<serde_json::Value>().await.unwrap()["data"]["id"].as_i64().unwrap();
        let r = as_device("/api/messages-batch")
            .json(&json!({"items": [{"recipient": "0811010010011", "message_type": "text", "message": "traced in a batch"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let untraced = p.text("untraced").await;
        // A malformed traceparent is ignored, never an error: a new trace starts.
        let r = p
            .client
            .post(format!("{}/api/messages", p.base))
            .header("X-Session-Id", "wapi-test")
            .header("X-Session-Secret-Token", &p.device_token)
            .header("traceparent", "00-not-a-trace-01")
            .json(&json!({"recipient": "0811010010011", "message_type": "text", "message": "garbled"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let garbled = r.json::<serde_json::Value>().await.unwrap()["data"]["id"].as_i64().unwrap();
        p.wait_for_status(id, "sent", WAIT).await;
        p.wait_for_status(untraced, "sent", WAIT).await;
        p.wait_for_status(garbled, "sent", WAIT).await;
        p.wait_for_send_of("traced in a batch", WAIT).await;

        let calls = p.sim.calls();
        let trace_of = |text: &str| {
            calls
                .iter()
                .find(|c| c.path == "/api/sendText" && c.body["text"] == text)
                .and_then(|c| c.traceparent.clone())
                .unwrap_or_else(|| panic!("the send of {text:?} carries no traceparent: {calls:?}"))
        };
        for text in ["traced", "traced in a batch"] {
            let sent = trace_of(text);
            assert!(sent.starts_with(&format!("00-{TRACE}-")), "{text}: {sent} continues {incoming}");
            assert_ne!(sent, incoming, "the dispatcher's call is a span of its own");
        }
        let own = trace_of("untraced");
        assert!(!own.contains(TRACE), "a request without a traceparent starts its own trace: {own}");
        let fresh = trace_of("garbled");
        assert!(TraceContext::parse(&fresh).is_some() && !fresh.contains("not-a-trace"), "{fresh}");
        // The pre-generated id is asked for inside the same trace.
        assert!(calls.iter().any(|c| c.path.ends_with("/new-message-id")
            && c.traceparent.as_deref().is_some_and(|t| t.contains(TRACE))));
    }

    async fn a_scheduled_message_goes_out_when_due_and_not_before() {
        let p = Pipeline::start().await;
        let due = chrono::Utc::now() + chrono::TimeDelta::seconds(3);
        let m = p
            .post(json!({
                "recipient": "0811010010011", "message_type": "text", "message": "on time",
                "schedule_at": due.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            }))
            .await;
        let id = m["id"].as_i64().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(p.sends_of("on time"), 0, "not early");
        let sent = p.wait_for_status(id, "sent", WAIT).await;
        let sent_at: chrono::DateTime<chrono::Utc> =
            sent["sent_at"].as_str().unwrap().parse().unwrap();
        let schedule: chrono::DateTime<chrono::Utc> =
            sent["schedule_at"].as_str().unwrap().parse().unwrap();
        assert!(sent_at >= schedule, "{sent_at} before {schedule}");
        assert!(sent_at - schedule < chrono::TimeDelta::seconds(3), "late: {sent_at} vs {schedule}");
        assert_eq!(p.sends_of("on time"), 1);
    }

    async fn edits_and_deletes_before_the_due_time_take_effect() {
        let p = Pipeline::start().await;
        let due = (chrono::Utc::now() + chrono::TimeDelta::seconds(2))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let edited = p
            .post(json!({"recipient": "0811010010011", "message_type": "text", "message": "draft", "schedule_at": due}))
            .await["id"]
            .as_i64()
            .unwrap();
        let deleted = p
            .post(json!({"recipient": "0811010010011", "message_type": "text", "message": "never", "schedule_at": due}))
            .await["id"]
            .as_i64()
            .unwrap();
        let r = p
            .client
            .patch(format!("{}/api/messages/{edited}", p.base))
            .bearer_auth(&p.admin_token)
            .json(&json!({"message": "final text"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = p
            .client
            .delete(format!("{}/api/messages/{deleted}", p.base))
            .bearer_auth(&p.admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        p.wait_for_status(edited, "sent", WAIT).await;
        assert_eq!(p.sends_of("final text"), 1);
        assert_eq!(p.sends_of("draft"), 0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(p.sends_of("never"), 0);
        let trashed: serde_json::Value = p
            .client
            .get(format!("{}/api/messages?trashed=only", p.base))
            .bearer_auth(&p.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(trashed["data"]["list"][0]["id"], deleted);
        assert_eq!(trashed["data"]["list"][0]["status"], "cancelled");
    }

    async fn injected_server_errors_are_retried_and_every_message_is_sent_exactly_once() {
        let p = Pipeline::start().await;
        p.sim.set_faults(Faults { error_rate: 0.3, seed: 7, ..Faults::default() });
        let mut ids = Vec::new();
        for i in 0..40 {
            ids.push((i, p.text(&format!("retry {i}")).await));
        }
        for (i, id) in &ids {
            let m = p.wait_for_status(*id, "sent", WAIT).await;
            assert_eq!(p.sends_of(&format!("retry {i}")), 1, "{m}");
        }
        let sends = p.sim.sends();
        assert_eq!(sends.len(), 40, "exactly one accepted send per message");
    }

    async fn a_batch_of_a_thousand_is_sent_once_each() {
        let p = Pipeline::start().await;
        let texts: Vec<String> = (0..1000).map(|i| format!("batch {i}")).collect();
        p.batch_as("wapi-test", &p.device_token, &texts).await;
        p.wait_for_sends(1000, Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let sends = p.sim.sends();
        assert_eq!(sends.len(), 1000, "none twice");
        let mut texts: Vec<_> = sends.iter().map(|s| s.body["text"].as_str().unwrap().to_owned()).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), 1000);
    }

    async fn a_session_that_is_not_working_holds_its_messages_without_using_attempts() {
        let p = Pipeline::start().await;
        p.sim.ensure_session("wapi-test", Engine::Gows, SessionStatus::ScanQrCode);
        let id = p.text("wait for me").await;
        // Several holds pass (hold_secs = 1) with WAHA answering 422 each time.
        let started = std::time::Instant::now();
        let tries = || {
            p.sim
                .calls()
                .iter()
                .filter(|c| c.path == "/api/sendText" || c.path.ends_with("/new-message-id"))
                .count()
        };
        while tries() < 2 {
            assert!(started.elapsed() < WAIT, "the held message is tried again after the hold");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let held = p.message(id).await;
        assert_eq!(held["status"], "pending", "{held}");
        assert!(held["api_response"].as_str().unwrap().contains("Session status is not as expected"));
        p.sim.ensure_session("wapi-test", Engine::Gows, SessionStatus::Working);
        p.wait_for_status(id, "sent", WAIT).await;
        assert_eq!(p.sends_of("wait for me"), 1);
        // Its attempt log: the holds, counted up in one entry with WAHA's answer, then the send.
        let sent = p.message(id).await;
        let log = sent["attempt_log"].as_array().expect("the read shows the attempt log");
        assert_eq!(log.len(), 2, "{sent}");
        assert_eq!(log[0]["outcome"], "released");
        assert_eq!(log[0]["hold_reason"], "session_not_ready");
        assert!(log[0]["repeats"].as_i64().unwrap() >= 1, "{sent}");
        assert!(log[0]["api_response"].as_str().unwrap().contains("Session status is not as expected"));
        assert_eq!(log[1]["outcome"], "sent");
        assert_eq!(log[1]["attempt"], 1, "holds use no attempt");
    }

    async fn a_session_waha_does_not_know_holds_its_messages_and_says_why() {
        let p = Pipeline::start_with(Options { dispatcher: test_dispatcher_settings(), ..Options::default() }).await;
        // A session WAHA does not know is held (reported), not failed.
        let r = p
            .client
            .post(format!("{}/api/devices", p.base))
            .bearer_auth(&p.admin_token)
            .json(&json!({"name": "Ghost", "phone_number": "0811010010012"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r: serde_json::Value = p
            .client
            .post(format!("{}/api/messages", p.base))
            .bearer_auth(&p.admin_token)
            .json(&json!({"session_id": "ghost", "recipient": "0811010010011", "message_type": "text", "message": "to nowhere"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["data"]["id"].as_i64().unwrap();
        let started = std::time::Instant::now();
        loop {
            let m = p.message(id).await;
            if m["api_response"].is_string() {
                assert_eq!(m["status"], "pending", "held while the session is unknown: {m}");
                break;
            }
            assert!(started.elapsed() < WAIT, "{m}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn messages_accepted_while_nothing_publishes_wait_in_the_database_and_go_out_once_a_relay_runs() {
        let p = Pipeline::start_with(Options { run_relay: false, ..Options::default() }).await;
        // No relay publishes yet: the API still accepts, the jobs wait in the database.
        let ids: Vec<i64> = {
            let mut v = Vec::new();
            for i in 0..10 {
                v.push(p.text(&format!("backlog {i}")).await);
            }
            v
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(p.sim.sends().is_empty());
        assert_eq!(p.message(ids[0]).await["status"], "pending");
        p.spawn_relay();
        for id in ids {
            p.wait_for_status(id, "sent", WAIT).await;
        }
        assert_eq!(p.sim.send_count(), 10);
    }

    async fn the_in_process_queue_carries_the_same_pipeline() {
        let p = Pipeline::start_with(Options { memory_queue: true, ..Options::default() }).await;
        let id = p.text("no broker needed").await;
        p.wait_for_status(id, "sent", WAIT).await;
        assert_eq!(p.sends_of("no broker needed"), 1);
    }

    async fn an_immediate_send_answers_with_the_outcome_or_pending_when_waha_is_slow() {
        let p = Pipeline::start().await;
        let started = std::time::Instant::now();
        let m = p
            .post(json!({"recipient": "0811010010011", "message_type": "text", "message": "right now", "is_queue": false}))
            .await;
        assert_eq!(m["status"], "sent", "{m}");
        assert!(m["provider_message_id"].as_str().unwrap().starts_with("true_"));
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(p.sends_of("right now"), 1);

        // WAHA slower than the wait (3 s here): the answer comes with the message still on its
        // way, and it is sent once all the same.
        p.sim.set_faults(Faults { latency: Duration::from_secs(4), ..Faults::default() });
        let m = p
            .post(json!({"recipient": "0811010010011", "message_type": "text", "message": "slowly", "is_queue": false}))
            .await;
        assert!(m["status"] == "pending" || m["status"] == "processing", "{m}");
        p.wait_for_status(m["id"].as_i64().unwrap(), "sent", WAIT).await;
        assert_eq!(p.sends_of("slowly"), 1);
    }

    async fn relay_and_dispatcher_reconnect_by_themselves_when_the_broker_connection_drops() {
        let proxy = crate::proxy::Proxy::start("127.0.0.1:5672").await;
        let p = Pipeline::start_with(Options {
            amqp_url: Some(format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port)),
            ..Options::default()
        })
        .await;
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push((format!("before {i}"), p.text(&format!("before {i}")).await));
        }
        p.wait_for_status(ids[9].1, "sent", WAIT).await;
        assert!(proxy.cut() >= 2, "the publishing and consuming connections were open");
        for i in 0..10 {
            ids.push((format!("after {i}"), p.text(&format!("after {i}")).await));
        }
        for (text, id) in &ids {
            p.wait_for_status(*id, "sent", Duration::from_secs(40)).await;
            assert_eq!(p.sends_of(text), 1, "{text}");
        }
    }

    async fn rabbitmq_down_when_messages_are_accepted_loses_nothing_and_the_backlog_drains_later() {
        let proxy = crate::proxy::Proxy::start("127.0.0.1:5672").await;
        let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", proxy.port);
        // The pipeline's own broker (dispatcher) goes straight to RabbitMQ; the gateway's relay
        // goes through the proxy, which is down: the gateway cannot publish at all.
        let p = Pipeline::start_with(Options { run_relay: false, ..Options::rabbitmq() }).await;
        proxy.set_down(true);
        tokio::spawn(wapim_app::relay::connect_and_run(
            p.pool.clone(),
            wapim_broker::BrokerConfig { url, prefix: p.prefix.clone(), prefetch: 1, delivery_limit: 10 },
            wapim_app::relay::RelayConfig {
                batch: 100,
                poll: Duration::from_millis(50),
                lease: Duration::from_secs(30),
            },
        ));
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(p.text(&format!("while down {i}")).await);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(p.sim.sends().is_empty(), "nothing can be sent while the broker is down");
        for id in &ids {
            assert_eq!(p.message(*id).await["status"], "pending");
        }
        proxy.set_down(false);
        for (i, id) in ids.iter().enumerate() {
            p.wait_for_status(*id, "sent", Duration::from_secs(40)).await;
            assert_eq!(p.sends_of(&format!("while down {i}")), 1);
        }
    }
}

//! Sending safety beyond pacing, end to end: WhatsApp's reach-out timelock (463) pauses the
//! device without burning a message and it resumes by operator and by time; opt-outs are never
//! sent to; the daily cap, the sending window and the per-recipient cap hold the excess and
//! release it; the human-like touches come before the send.

use std::time::{Duration, Instant};

use chrono::Timelike;
use reqwest::Method;
use serde_json::{json, Value};
use wapim_waha_sim::Faults;

use crate::helpers::{test_dispatcher_settings, Options, Pipeline};

impl Pipeline {
    fn device_path(&self) -> String {
        format!("/api/devices/{}", self.device["id"])
    }

    /// The pipeline's device as `GET /api/devices/{id}` shows it.
    async fn device_now(&self) -> Value {
        self.device_json(&self.device["id"]).await
    }

    /// Posts a queued text to `recipient`; returns its id.
    async fn text_to(&self, recipient: &str, text: &str) -> i64 {
        self.post(json!({"recipient": recipient, "message_type": "text", "message": text, "is_queue": true}))
            .await["id"]
            .as_i64()
            .unwrap()
    }

    /// Sends WAHA was asked to make (accepted or not).
    fn send_calls(&self) -> usize {
        self.sim
            .calls()
            .iter()
            .filter(|c| c.path == "/api/sendText")
            .count()
    }

    /// Waits (up to `within`) until `check` holds on the device's read.
    async fn wait_for_device(&self, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let d = self.device_now().await;
            if check(&d) {
                return d;
            }
            assert!(
                started.elapsed() < within,
                "the device never got there: {d}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn timelock() -> Faults {
    Faults {
        reach_out_timelock: true,
        ..Faults::default()
    }
}

/// A pipeline whose paused devices probe every `probe_secs`.
async fn with_probe_every(probe_secs: u64) -> Pipeline {
    let mut dispatcher = test_dispatcher_settings();
    dispatcher.pause_probe_secs = probe_secs;
    Pipeline::start_with(Options {
        dispatcher,
        ..Options::default()
    })
    .await
}

wapim_testkit::both_backends! {
    async fn a_463_pauses_the_device_holds_its_messages_and_an_operator_resumes_it() {
        let p = with_probe_every(300).await;
        p.sim.set_faults(timelock());
        let ids = [
            p.text_to("0811010010011", "first").await,
            p.text_to("0811010010012", "second").await,
            p.text_to("0811010010013", "third").await,
        ];
        let paused = p.wait_for_device(Duration::from_secs(10), |d| d["pause_reason"] == "reach_out_timelock").await;
        assert!(paused["paused_until"].is_string(), "{paused}");
        // Everything waits: nothing failed, nothing burned an attempt, and the reason is given.
        let held = p
            .wait_for_device(Duration::from_secs(10), |d| d["sending_state"]["held_messages"] == 3)
            .await;
        assert_eq!(held["sending_state"]["held_by_reason"]["reach_out_timelock"], 3, "{held}");
        for id in ids {
            let m = p.message(id).await;
            assert_eq!(m["status"], "pending", "{m}");
            assert_eq!(m["hold_reason"], "reach_out_timelock", "{m}");
        }
        // WhatsApp is not hammered: once paused, nothing more reaches WAHA (at most the sends
        // already under way when the first 463 came back).
        let asked = p.send_calls();
        assert!(asked <= 3, "{asked} send calls");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(p.send_calls(), asked, "sends while paused: {:?}", p.sim.calls());

        // The operator resumes it once WhatsApp lets it reach out again; only operators may.
        p.sim.set_faults(Faults::default());
        let as_device = p
            .client
            .post(format!("{}{}/resume", p.base, p.device_path()))
            .header("X-Session-Id", "wapi-test")
            .header("X-Session-Secret-Token", &p.device_token)
            .send()
            .await
            .unwrap();
        assert_eq!(as_device.status(), 403);
        let (status, body) = p.operator(Method::POST, &format!("{}/resume", p.device_path()), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["paused_until"], Value::Null, "{body}");
        for id in ids {
            p.wait_for_status(id, "sent", Duration::from_secs(10)).await;
        }
        assert_eq!(p.sim.send_count(), 3);
    }

    async fn a_paused_device_probes_once_per_interval_and_resumes_when_a_probe_passes() {
        let p = with_probe_every(2).await;
        p.sim.set_faults(timelock());
        let a = p.text_to("0811010010011", "a").await;
        let b = p.text_to("0811010010012", "b").await;
        p.wait_for_device(Duration::from_secs(10), |d| d["sending_state"]["held_by_reason"]["reach_out_timelock"] == 2).await;
        // Still refused at the first probe: paused again, still nothing failed.
        let before = p.send_calls();
        let started = Instant::now();
        while p.send_calls() == before {
            assert!(started.elapsed() < Duration::from_secs(10), "no probe came");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let waited = started.elapsed();
        assert!(waited > Duration::from_millis(1000), "the probe came after {waited:?}, not a probe interval");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(p.send_calls(), before + 1, "one probe, not every held message");
        assert_eq!(p.message(a).await["status"], "pending");
        assert_eq!(p.message(b).await["status"], "pending");

        // WhatsApp lifts it: the next probe passes and the device resumes by itself.
        p.sim.set_faults(Faults::default());
        p.wait_for_status(a, "sent", Duration::from_secs(10)).await;
        p.wait_for_status(b, "sent", Duration::from_secs(10)).await;
        let d = p.device_now().await;
        assert_eq!(d["pause_reason"], Value::Null, "{d}");
        // Over the whole test: the first 463, at most a few probes, the two sends.
        assert!(p.send_calls() <= 6, "{} send calls", p.send_calls());
    }

    async fn a_suppressed_contact_is_never_sent_to() {
        let p = Pipeline::start().await;
        let list = format!("{}/suppressions", p.device_path());
        let (status, body) = p
            .operator(Method::POST, &list, Some(json!({"phone": "0811010010044", "reason": "replied STOP"})))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["phone"], "62811010010044");
        let stopped = p.text_to("+62 811-0100-10044", "promo").await;
        let other = p.text_to("0811010010045", "promo").await;
        let m = p.wait_for_status(stopped, "failed", Duration::from_secs(10)).await;
        assert!(m["api_response"].as_str().unwrap().contains("opted_out"), "{m}");
        p.wait_for_status(other, "sent", Duration::from_secs(10)).await;
        assert!(
            p.sim.sends().iter().all(|s| s.body["chatId"] != "62811010010044@c.us"),
            "{:?}",
            p.sim.sends()
        );
        // Taken off the list, the contact can be messaged again.
        let (status, _) = p.operator(Method::DELETE, &format!("{list}/62811010010044"), None).await;
        assert_eq!(status, 200);
        let again = p.text_to("0811010010044", "welcome back").await;
        p.wait_for_status(again, "sent", Duration::from_secs(10)).await;
    }

    async fn a_daily_cap_holds_the_excess_until_the_cap_allows_it() {
        let p = Pipeline::start().await;
        let (status, body) = p.operator(Method::PATCH, &p.device_path(), Some(json!({"daily_cap": 2}))).await;
        assert_eq!(status, 200, "{body}");
        let mut ids = Vec::new();
        for i in 0..4 {
            ids.push(p.text_to(&format!("08110100100{}", 50 + i), &format!("capped {i}")).await);
        }
        p.wait_for_sends(2, Duration::from_secs(10)).await;
        let d = p
            .wait_for_device(Duration::from_secs(10), |d| d["sending_state"]["held_by_reason"]["daily_cap"] == 2)
            .await;
        assert_eq!(d["sending_state"]["sent_today"], 2, "{d}");
        assert_eq!(d["sending_state"]["daily_cap"], 2, "{d}");
        assert!(d["sending_state"]["next_send_at"].is_string(), "{d}");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(p.sim.send_count(), 2, "the cap holds");
        // Never failed, never dropped: raising the cap lets them go at once.
        let (status, _) = p.operator(Method::PATCH, &p.device_path(), Some(json!({"daily_cap": 4}))).await;
        assert_eq!(status, 200);
        for id in ids {
            p.wait_for_status(id, "sent", Duration::from_secs(10)).await;
        }
    }

    async fn immediate_sends_count_toward_the_daily_cap_and_a_held_one_answers_at_once() {
        let p = Pipeline::start().await;
        let (status, body) = p.operator(Method::PATCH, &p.device_path(), Some(json!({"daily_cap": 1}))).await;
        assert_eq!(status, 200, "{body}");
        let now = |text: &str| json!({"recipient": "0811010010011", "message_type": "text", "message": text, "is_queue": false});
        let first = p.post(now("right away")).await;
        assert_eq!(first["status"], "sent", "{first}");
        let asked = Instant::now();
        let second = p.post(now("over the cap")).await;
        assert!(asked.elapsed() < Duration::from_secs(5), "a held immediate send answered after {:?}", asked.elapsed());
        assert_eq!(second["status"], "pending", "{second}");
        assert_eq!(second["hold_reason"], "daily_cap", "{second}");
        assert_eq!(p.sim.send_count(), 1);
    }

    async fn messages_outside_the_sending_window_wait_for_it_to_open() {
        let p = Pipeline::start().await;
        // A window opening 3 s from now in the device's zone (UTC here), open for an hour.
        let opens = chrono::Utc::now() + chrono::TimeDelta::seconds(3);
        let fmt = |t: chrono::DateTime<chrono::Utc>| format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second());
        let window = json!({
            "timezone": "UTC",
            "send_window_start": fmt(opens),
            "send_window_end": fmt(opens + chrono::TimeDelta::hours(1)),
        });
        let (status, body) = p.operator(Method::PATCH, &p.device_path(), Some(window)).await;
        assert_eq!(status, 200, "{body}");
        let id = p.text_to("0811010010011", "after opening").await;
        let started = Instant::now();
        while p.message(id).await["hold_reason"] != "sending_window" {
            assert!(started.elapsed() < Duration::from_secs(2), "never held for the window");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sent = p.wait_for_status(id, "sent", Duration::from_secs(10)).await;
        let sent_at = chrono::DateTime::parse_from_rfc3339(sent["sent_at"].as_str().unwrap()).unwrap();
        let opened = opens.with_nanosecond(0).unwrap();
        assert!(sent_at >= opened, "sent at {sent_at}, the window opened at {opened}");
    }

    async fn a_recipient_cap_holds_the_excess_to_one_contact_only() {
        let p = Pipeline::start().await;
        let (status, body) = p
            .operator(Method::PATCH, &p.device_path(), Some(json!({"recipient_hourly_cap": 2})))
            .await;
        assert_eq!(status, 200, "{body}");
        let to_a: Vec<i64> = [
            p.text_to("0811010010011", "a1").await,
            p.text_to("0811010010011", "a2").await,
            p.text_to("0811010010011", "a3").await,
        ]
        .to_vec();
        let to_b = p.text_to("0811010010012", "b1").await;
        p.wait_for_status(to_b, "sent", Duration::from_secs(10)).await;
        p.wait_for_sends(3, Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut to_a_now = Vec::new();
        for id in &to_a {
            to_a_now.push(p.message(*id).await);
        }
        let sent = to_a_now.iter().filter(|m| m["status"] == "sent").count();
        assert_eq!(sent, 2, "{to_a_now:?}");
        let held: Vec<&Value> = to_a_now.iter().filter(|m| m["status"] == "pending").collect();
        assert_eq!(held.len(), 1, "{to_a_now:?}");
        assert_eq!(held[0]["hold_reason"], "recipient_cap", "{:?}", held[0]);
    }

    async fn simulated_typing_marks_seen_and_types_before_the_send() {
        let p = Pipeline::start().await;
        let (status, body) = p
            .operator(Method::PATCH, &p.device_path(), Some(json!({"simulate_typing": true})))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["simulate_typing"], 1);
        let id = p.text_to("0811010010011", "Hello, your order has shipped.").await;
        p.wait_for_status(id, "sent", Duration::from_secs(15)).await;
        let calls: Vec<(String, std::time::Instant)> = p
            .sim
            .calls()
            .into_iter()
            .filter(|c| ["/api/sendSeen", "/api/startTyping", "/api/stopTyping", "/api/sendText"].contains(&c.path.as_str()))
            .map(|c| (c.path, c.instant))
            .collect();
        let order: Vec<&str> = calls.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(order, ["/api/sendSeen", "/api/startTyping", "/api/stopTyping", "/api/sendText"]);
        let typed = calls[2].1 - calls[1].1;
        assert!(typed >= Duration::from_millis(800), "typing showed for {typed:?}");
    }
}

//! The webhook ingest over real HTTP on port 0, on both backends: HMAC checked on the raw body
//! (computed here independently with the `hmac` crate), events recorded once and applied after
//! the answer, acks moving messages only forward, NOWEB's reach-out timelock pausing the device,
//! session status driving the device.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha512;
use wapim_settings::Settings;
use wapim_store::devices::DeviceRow;
use wapim_store::messages::MessageRow;
use wapim_testkit::TestDatabase;
use wapim_webhook_ingest::Application;

const KEY: &str = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1";
const PROVIDER_ID: &str = "true_62811010010011@c.us_3EB0A5E42732E237A42D7F";

struct Ingest {
    url: String,
    db: TestDatabase,
    client: reqwest::Client,
}

fn sign(body: &str, key: &str) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A fresh database with one device (session `shop`, signing with KEY) and one message it sent.
fn seeded_database() -> TestDatabase {
    let db = TestDatabase::create();
    wapim_store::run_migrations(&mut db.connect()).expect("migrations");
    db.execute(&format!(
        "INSERT INTO devices (name, session_id, phone_number, secret_token_hash, secret_token_masked, created_at, updated_at, webhook_hmac_key) \
         VALUES ('Shop', 'shop', '62811010010010', 'h', 'm', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '{KEY}')"
    ));
    db.execute(&format!(
        "INSERT INTO messages (device_id, session_id, is_queue, recipient, message_type, message, calendar_type, status, is_sent, provider_message_id, wa_message_id, sent_at, status_updated_at, created_at, updated_at, due_at, attempts) \
         VALUES (1, 'shop', TRUE, '62811010010011', 'text', 'hi', 'masehi', 'sent', TRUE, '{PROVIDER_ID}', '3EB0A5E42732E237A42D7F', '2026-01-01 00:00:01', '2026-01-01 00:00:01', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
    ));
    db
}

impl Ingest {
    async fn start() -> Self {
        let db = seeded_database();
        let settings = Settings::load_from([
            ("WAPIM_DATABASE__URL".to_owned(), db.url.clone()),
            (
                "WAPIM_DATABASE__CREATE_IF_MISSING".to_owned(),
                "false".to_owned(),
            ),
            ("WAPIM_HTTP__WORKERS".to_owned(), "1".to_owned()),
            (
                "WAPIM_DISPATCHER__PAUSE_PROBE_SECS".to_owned(),
                "300".to_owned(),
            ),
        ])
        .unwrap();
        let (pool, _) =
            wapim_store::open(&db.url, false, 4, Duration::from_secs(5)).expect("database");
        let app = Application::build(
            &settings,
            wapim_web::Db::new(pool, 16),
            TcpListener::bind("127.0.0.1:0").unwrap(),
        )
        .unwrap();
        let url = format!("http://127.0.0.1:{}/api/v1/waha-webhook", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            url,
            db,
            client: reqwest::Client::new(),
        }
    }

    /// Posts `body` as WAHA would, signed with `key` (unsigned when `None`).
    async fn post(&self, body: &Value, key: Option<&str>) -> (u16, Value) {
        let text = body.to_string();
        let mut r = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(text.clone());
        if let Some(key) = key {
            r = r
                .header("X-Webhook-Hmac", sign(&text, key))
                .header("X-Webhook-Hmac-Algorithm", "sha512");
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    fn message(&self) -> MessageRow {
        wapim_store::messages::find(&mut self.db.connect(), 1, None, true).unwrap()
    }

    fn device(&self) -> DeviceRow {
        wapim_store::devices::find(&mut self.db.connect(), 1, true).unwrap()
    }

    async fn wait_for(&self, what: &str, check: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !check(self) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{what}: {:?}",
                self.message()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn ack(event_id: &str, ack: i64, engine: &str) -> Value {
    json!({
        "id": event_id, "timestamp": 1_767_225_600_000_i64, "event": "message.ack", "session": "shop",
        "engine": engine, "metadata": {}, "me": null, "environment": {},
        "payload": {"id": PROVIDER_ID, "from": "62811010010011@c.us", "fromMe": true, "ack": ack,
                    "ackName": match ack { 2 => "DEVICE", 3 => "READ", -1 => "ERROR", _ => "SERVER" }},
    })
}

wapim_testkit::both_backends! {
    async fn only_correctly_signed_events_are_taken_and_bad_bodies_are_4xx() {
        let ingest = Ingest::start().await;
        let read = ack("evt_01read", 3, "GOWS");
        assert_eq!(ingest.post(&read, None).await.0, 401, "unsigned");
        assert_eq!(ingest.post(&read, Some("another-key")).await.0, 401, "wrong key");
        let mut stranger = read.clone();
        stranger["session"] = json!("nobody");
        assert_eq!(ingest.post(&stranger, Some(KEY)).await.0, 401, "unknown session");
        let garbage = ingest.client.post(&ingest.url).body("not json").send().await.unwrap();
        assert_eq!(garbage.status(), 400);
        let (status, body) = ingest.post(&json!({"hello": "world"}), Some(KEY)).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["status"], false);
        // None of that changed the message.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(ingest.message().status.as_str(), "sent");
        // Signed, it is taken.
        let (status, body) = ingest.post(&read, Some(KEY)).await;
        assert_eq!(status, 200, "{body}");
        ingest.wait_for("read", |i| i.message().status.as_str() == "read").await;
    }

    async fn acks_move_a_message_only_forward_and_a_replay_changes_nothing() {
        let ingest = Ingest::start().await;
        assert_eq!(ingest.post(&ack("evt_01device", 2, "GOWS"), Some(KEY)).await.0, 200);
        ingest.wait_for("delivered", |i| i.message().status.as_str() == "delivered").await;
        let delivered_at = ingest.message().delivered_at.unwrap();
        assert_eq!(ingest.post(&ack("evt_02read", 3, "GOWS"), Some(KEY)).await.0, 200);
        ingest.wait_for("read", |i| i.message().status.as_str() == "read").await;
        let m = ingest.message();
        assert_eq!(m.delivered_at, Some(delivered_at), "delivered_at is kept");
        assert!(m.read_at.is_some());
        // A late DEVICE, and WAHA retrying the READ with the same id: nothing changes.
        assert_eq!(ingest.post(&ack("evt_03device", 2, "GOWS"), Some(KEY)).await.0, 200);
        let (status, body) = ingest.post(&ack("evt_02read", 3, "GOWS"), Some(KEY)).await;
        assert_eq!(status, 200);
        assert_eq!(body["message"], "Event already recorded");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let after = ingest.message();
        assert_eq!(after.status.as_str(), "read");
        assert_eq!(after.read_at, m.read_at);
        assert_eq!(after.revision, m.revision, "nothing was written");
    }

    async fn a_read_first_fills_delivered_at_too() {
        let ingest = Ingest::start().await;
        assert_eq!(ingest.post(&ack("evt_01read", 3, "GOWS"), Some(KEY)).await.0, 200);
        ingest.wait_for("read", |i| i.message().status.as_str() == "read").await;
        let m = ingest.message();
        assert!(m.delivered_at.is_some() && m.read_at.is_some(), "{m:?}");
    }

    async fn an_error_ack_on_noweb_is_the_reach_out_timelock_and_never_burns_the_message() {
        let ingest = Ingest::start().await;
        assert_eq!(ingest.post(&ack("evt_01error", -1, "NOWEB"), Some(KEY)).await.0, 200);
        ingest.wait_for("held", |i| i.message().status.as_str() == "pending").await;
        let m = ingest.message();
        assert_eq!(m.hold_reason.as_deref(), Some("reach_out_timelock"));
        assert_eq!(m.attempts, 0, "the attempt is refunded");
        assert_eq!(m.provider_message_id, None, "sent again with a fresh id");
        assert!(m.published_at.is_none(), "its send job is owed again");
        let d = ingest.device();
        assert_eq!(d.pause_reason.as_deref(), Some("reach_out_timelock"));
        assert!(d.paused_until.is_some_and(|u| u == m.due_at), "{d:?} {m:?}");
    }

    async fn an_error_ack_elsewhere_fails_the_message() {
        let ingest = Ingest::start().await;
        assert_eq!(ingest.post(&ack("evt_01error", -1, "GOWS"), Some(KEY)).await.0, 200);
        ingest.wait_for("failed", |i| i.message().status.as_str() == "failed").await;
        assert!(ingest.device().pause_reason.is_none());
    }

    async fn an_ack_that_arrives_before_its_send_is_recorded_is_applied_once_it_is() {
        let ingest = Ingest::start().await;
        ingest.db.execute("UPDATE messages SET provider_message_id = NULL, status = 'processing'");
        assert_eq!(ingest.post(&ack("evt_01early", 2, "GOWS"), Some(KEY)).await.0, 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
        ingest.db.execute(&format!(
            "UPDATE messages SET provider_message_id = '{PROVIDER_ID}', status = 'sent'"
        ));
        ingest.wait_for("delivered", |i| i.message().status.as_str() == "delivered").await;
    }

    /// A dispatcher that died mid-send leaves its claim until the lease runs out (90 s by
    /// default); WAHA's acks of that send arrive meanwhile. They are kept trying, backing off,
    /// past the lease: here past the six tries (about 16 s) after which they used to be dropped.
    async fn an_ack_waits_past_an_orphaned_claims_lease_for_its_send_to_be_recorded() {
        let ingest = Ingest::start().await;
        ingest.db.execute("UPDATE messages SET provider_message_id = NULL, status = 'processing'");
        assert_eq!(ingest.post(&ack("evt_01orphan", 3, "GOWS"), Some(KEY)).await.0, 200);
        let started = Instant::now();
        let tries = || ingest.db.query_i64("SELECT CAST(attempts AS BIGINT) AS n FROM waha_events WHERE event_id = 'evt_01orphan'");
        while tries() < 7 {
            assert!(started.elapsed() < Duration::from_secs(40), "tried {} times", tries());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let done = ingest.db.query_i64("SELECT COUNT(*) AS n FROM waha_events WHERE event_id = 'evt_01orphan' AND processed_at IS NOT NULL");
        assert_eq!(done, 0, "still owed after {} tries", tries());
        // The claim is taken over and the send looked up: now the ack applies.
        ingest.db.execute(&format!(
            "UPDATE messages SET provider_message_id = '{PROVIDER_ID}', status = 'sent'"
        ));
        // At its next try: at most the 10 s the backoff grows to.
        let recorded = Instant::now();
        while ingest.message().status.as_str() != "read" {
            assert!(recorded.elapsed() < Duration::from_secs(15), "{:?}", ingest.message());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn session_status_drives_the_device() {
        let ingest = Ingest::start().await;
        let event = json!({"id": "evt_01status", "event": "session.status", "session": "shop",
                           "engine": "GOWS", "payload": {"name": "shop", "status": "WORKING"}});
        assert_eq!(ingest.post(&event, Some(KEY)).await.0, 200);
        let started = Instant::now();
        while ingest.device().status.as_str() != "working" {
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn a_reach_out_timelock_in_session_status_pauses_the_device_until_it_ends_and_its_lifting_resumes_it() {
        let ingest = Ingest::start().await;
        let ends = (chrono::Utc::now() + chrono::TimeDelta::hours(2)).to_rfc3339();
        let on = json!({"id": "evt_01lock", "event": "session.status", "session": "shop", "engine": "GOWS",
                        "payload": {"name": "shop", "status": "WORKING",
                                    "reachoutTimelock": {"isActive": true, "timeEnforcementEnds": ends, "enforcementType": "REACHOUT_TIMELOCK"}}});
        assert_eq!(ingest.post(&on, Some(KEY)).await.0, 200);
        let started = Instant::now();
        while ingest.device().pause_reason.is_none() {
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let until = ingest.device().paused_until.unwrap();
        let expected = chrono::DateTime::parse_from_rfc3339(&ends).unwrap().naive_utc();
        assert!((until - expected).num_seconds().abs() <= 1, "{until} vs {expected}");
        let off = json!({"id": "evt_02unlock", "event": "session.status", "session": "shop", "engine": "GOWS",
                         "payload": {"name": "shop", "status": "WORKING", "reachoutTimelock": {"isActive": false}}});
        assert_eq!(ingest.post(&off, Some(KEY)).await.0, 200);
        let started = Instant::now();
        while ingest.device().pause_reason.is_some() {
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn an_inbound_message_is_stored_once_however_often_waha_posts_it() {
        let ingest = Ingest::start().await;
        let payload = json!({"id": "false_6281100000099@c.us_3EB0CAFE", "timestamp": 1_767_225_600_i64,
                             "from": "6281100000099@c.us", "fromMe": false, "body": "halo", "hasMedia": false});
        let first = json!({"id": "evt_01in", "event": "message", "session": "shop", "engine": "GOWS", "payload": payload});
        // WAHA's retry (same event id) and a second event carrying the same message.
        let second = json!({"id": "evt_02in", "event": "message", "session": "shop", "engine": "GOWS", "payload": payload});
        for event in [&first, &first, &second] {
            assert_eq!(ingest.post(event, Some(KEY)).await.0, 200);
        }
        let started = Instant::now();
        loop {
            let owed = ingest.db.query_i64("SELECT COUNT(*) FROM waha_events WHERE processed_at IS NULL");
            let recorded = ingest.db.query_i64("SELECT COUNT(*) FROM waha_events");
            if owed == 0 && recorded == 2 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "{owed} of {recorded} events owed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(ingest.db.query_i64("SELECT COUNT(*) FROM inbound_messages"), 1);
        assert_eq!(
            ingest.db.query_i64("SELECT COUNT(*) FROM inbound_messages WHERE sender = '6281100000099' AND message = 'halo'"),
            1
        );
    }

    async fn other_waha_events_reach_the_integrator_only_when_subscribed() {
        let ingest = Ingest::start().await;
        ingest.db.execute(
            "UPDATE devices SET webhook_status = TRUE, webhook_url = 'http://127.0.0.1:9/hook', \
             webhook_options = '[\"message.waiting\"]'",
        );
        for (id, event) in [("evt_01wait", "message.waiting"), ("evt_02react", "message.reaction")] {
            let body = json!({"id": id, "event": event, "session": "shop", "engine": "WEBJS", "payload": {"id": "x"}});
            assert_eq!(ingest.post(&body, Some(KEY)).await.0, 200);
        }
        let started = Instant::now();
        while ingest.db.query_i64("SELECT COUNT(*) FROM waha_events WHERE processed_at IS NULL") > 0 {
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(ingest.db.query_i64("SELECT COUNT(*) FROM webhook_deliveries"), 1);
        assert_eq!(
            ingest.db.query_i64("SELECT COUNT(*) FROM webhook_deliveries WHERE event = 'message.waiting'"),
            1
        );
    }

    async fn an_ingest_killed_right_after_answering_loses_no_event() {
        const EVENTS: usize = 40;
        let db = seeded_database();
        // EVENTS more sent messages, each acked once below.
        for i in 0..EVENTS {
            db.execute(&format!(
                "INSERT INTO messages (device_id, session_id, is_queue, recipient, message_type, message, calendar_type, status, is_sent, provider_message_id, sent_at, status_updated_at, created_at, updated_at, due_at, attempts) \
                 VALUES (1, 'shop', TRUE, '62811010010011', 'text', 'm{i}', 'masehi', 'sent', TRUE, 'true_62811010010011@c.us_KILL{i:04}', '2026-01-01 00:00:01', '2026-01-01 00:00:01', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
            ));
        }
        let client = reqwest::Client::new();
        let first = IngestProcess::spawn(&db.url).await;
        for i in 0..EVENTS {
            let mut event = ack(&format!("evt_kill{i:04}"), 2, "GOWS");
            event["payload"]["id"] = json!(format!("true_62811010010011@c.us_KILL{i:04}"));
            let text = event.to_string();
            let r = client
                .post(&first.url)
                .header("X-Webhook-Hmac", sign(&text, KEY))
                .body(text)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        // Killed the moment the last answer arrived: no shutdown, whatever it held is lost.
        first.kill();
        let recorded = db.query_i64("SELECT COUNT(*) FROM waha_events");
        assert_eq!(recorded, EVENTS as i64, "every answered event was recorded before its answer");
        let _second = IngestProcess::spawn(&db.url).await;
        let started = Instant::now();
        loop {
            let delivered = db.query_i64("SELECT COUNT(*) FROM messages WHERE message LIKE 'm%' AND status = 'delivered'");
            if delivered == EVENTS as i64 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(40), "{delivered} of {EVENTS} applied after the restart");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(db.query_i64("SELECT COUNT(*) FROM waha_events WHERE processed_at IS NULL"), 0);
        assert_eq!(db.query_i64("SELECT COUNT(*) FROM waha_events"), EVENTS as i64, "nothing recorded twice");
    }
}

/// The real `webhook-ingest` binary on a free loopback port.
struct IngestProcess {
    child: std::process::Child,
    url: String,
}

impl IngestProcess {
    async fn spawn(database_url: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_webhook-ingest"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WAPIM_DATABASE__URL", database_url)
            .env("WAPIM_DATABASE__CREATE_IF_MISSING", "false")
            .env("WAPIM_DATABASE__POOL_MAX_SIZE", "4")
            .env("WAPIM_HTTP__HOST", "127.0.0.1")
            .env("WAPIM_HTTP__PORT", port.to_string())
            .env("WAPIM_HTTP__WORKERS", "1")
            .env("WAPIM_LOG__LEVEL", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("the ingest binary starts");
        let this = Self {
            child,
            url: format!("http://127.0.0.1:{port}/api/v1/waha-webhook"),
        };
        let health = format!("http://127.0.0.1:{port}/health/live");
        let started = Instant::now();
        while reqwest::get(&health)
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the ingest never answers"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        this
    }

    /// SIGKILL (Child::kill on Unix), then reap.
    fn kill(mut self) {
        self.child.kill().expect("killed");
        self.child.wait().expect("reaped");
    }
}

impl Drop for IngestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! `Pipeline::start()`: the whole send path on real parts — the gateway on port 0 with its relay,
//! RabbitMQ (a queue prefix of the test's own) or the in-process queue, the dispatcher, and the
//! WAHA simulator on port 0 — over a fresh database of the test's backend.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wapim_app::relay::{Relay, RelayConfig};
use wapim_broker::{Broker, BrokerConfig};
use wapim_dispatcher::{Dispatcher, SessionSettings};
use wapim_settings::{DispatcherSettings, PacingSettings, Settings};
use wapim_store::Pool;
use wapim_testkit::TestDatabase;
use wapim_waha::WahaClient;
use wapim_waha_sim::{Engine, SessionStatus, SimConfig, SimHandle};

/// The RabbitMQ the tests use (`WAPIM_TEST_AMQP_URL`).
pub fn amqp_url() -> String {
    std::env::var("WAPIM_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// Starts the real `dispatcher` binary against the pipeline's database, queues and simulator,
/// pacing each device by `interval_ms` + up to `jitter_ms`.
pub fn dispatcher_binary(p: &Pipeline, lease_secs: u64, interval_ms: u64, jitter_ms: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dispatcher"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAPIM_DATABASE__URL", &p.db.url)
        .env("WAPIM_DATABASE__CREATE_IF_MISSING", "false")
        .env("WAPIM_DATABASE__POOL_MAX_SIZE", "4")
        .env("WAPIM_AMQP__URL", amqp_url())
        .env("WAPIM_AMQP__PREFIX", &p.prefix)
        .env("WAPIM_WAHA__URL", p.sim.base_url())
        .env("WAPIM_WAHA__TIMEOUT_SECS", "10")
        .env("WAPIM_WAHA__WEBHOOK_URL", WEBHOOK_URL)
        .env("WAPIM_HTTP__PORT", "0")
        .env("WAPIM_DISPATCHER__LEASE_SECS", lease_secs.to_string())
        .env("WAPIM_DISPATCHER__SWEEP_SECS", "1")
        .env("WAPIM_DISPATCHER__BACKOFF_BASE_MS", "50")
        .env("WAPIM_PACING__MIN_INTERVAL_MS", interval_ms.to_string())
        .env("WAPIM_PACING__JITTER_MS", jitter_ms.to_string())
        .env("WAPIM_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the dispatcher binary starts")
}

/// Sessions post their events to a loopback port nothing serves (no ingest in these tests).
pub fn test_sessions() -> SessionSettings {
    SessionSettings {
        webhook_url: WEBHOOK_URL.to_owned(),
    }
}

/// Where the test sessions' webhooks point.
pub const WEBHOOK_URL: &str = "http://127.0.0.1:9/api/v1/waha-webhook";

/// Settings fast enough for tests: short backoff and holds.
pub fn test_dispatcher_settings() -> DispatcherSettings {
    DispatcherSettings {
        prefetch: 16,
        lease_secs: 90,
        max_attempts: 8,
        backoff_base_ms: 50,
        backoff_max_ms: 400,
        hold_secs: 1,
        pause_probe_secs: 300,
        sweep_secs: 1,
        shutdown_grace_secs: 5,
    }
}

/// Deletes the test's queues and exchanges when it ends (quorum queues are not free: a broker
/// littered with thousands of them slows down for everyone).
impl Drop for Pipeline {
    fn drop(&mut self) {
        if self.memory_queue {
            return;
        }
        let config = BrokerConfig {
            url: self.amqp_url.clone(),
            prefix: self.prefix.clone(),
            prefetch: 1,
            delivery_limit: 10,
        };
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(broker) = Broker::connect(&config).await {
                    let _ = broker.delete_topology().await;
                }
            });
        })
        .join();
    }
}

pub struct Pipeline {
    pub memory_queue: bool,
    pub amqp_url: String,
    pub db: TestDatabase,
    pub pool: Pool,
    pub base: String,
    pub admin_token: String,
    pub sim: SimHandle,
    pub broker: Broker,
    pub prefix: String,
    pub client: reqwest::Client,
    pub device: Value,
    pub device_token: String,
    /// Where sessions post their events: the ingest when the pipeline runs one.
    pub webhook_url: String,
    /// How dispatchers deliver the integrator's webhooks (private targets allowed: receivers
    /// are on loopback).
    pub webhook_settings: wapim_settings::WebhookSettings,
}

pub struct Options {
    pub engine: Engine,
    pub dispatcher: DispatcherSettings,
    pub run_dispatcher: bool,
    pub run_relay: bool,
    pub memory_queue: bool,
    /// Overrides the RabbitMQ URL (e.g. through a proxy a test can cut).
    pub amqp_url: Option<String>,
    /// Run the webhook ingest too, and have the simulator ack every send (SERVER, DEVICE, READ).
    pub ingest: bool,
    /// The automations' conversation silence, in seconds (closing messages).
    pub conversation_silence_secs: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            engine: Engine::Gows,
            dispatcher: test_dispatcher_settings(),
            run_dispatcher: true,
            run_relay: true,
            amqp_url: None,
            ingest: false,
            conversation_silence_secs: 86_400,
            // The two set-ups: PostgreSQL with RabbitMQ, SQLite with the in-process queue.
            memory_queue: wapim_testkit::backend() == wapim_testkit::TestBackend::Sqlite,
        }
    }
}

impl Options {
    /// RabbitMQ on either backend: for tests of several dispatcher processes or of the broker
    /// itself (the in-process queue lives in one process).
    pub fn rabbitmq() -> Self {
        Self {
            memory_queue: false,
            ..Self::default()
        }
    }
}

impl Pipeline {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        // As the services do: spans get W3C ids, so trace context propagates.
        wapim_telemetry::init("warn", false);
        let db = TestDatabase::create();
        let admin_token = wapim_domain::token::generate_secret_token();
        let prefix = format!("t_{}.", uuid::Uuid::new_v4().simple());
        // The simulator first: the gateway registers it as the default WAHA server.
        let sim = wapim_waha_sim::start(
            SimConfig {
                acks: options.ingest,
                engine: options.engine,
                ..SimConfig::default()
            },
            TcpListener::bind("127.0.0.1:0").unwrap(),
        )
        .await
        .expect("simulator");
        let settings = Settings::load_from([
            ("WAPIM_WAHA__URL".to_owned(), sim.base_url()),
            ("WAPIM_DATABASE__URL".to_owned(), db.url.clone()),
            ("WAPIM_DATABASE__POOL_MAX_SIZE".to_owned(), "8".to_owned()),
            (
                "WAPIM_DATABASE__CREATE_IF_MISSING".to_owned(),
                "false".to_owned(),
            ),
            ("WAPIM_AUTH__ADMIN_TOKEN".to_owned(), admin_token.clone()),
            ("WAPIM_HTTP__WORKERS".to_owned(), "2".to_owned()),
            (
                "WAPIM_LIMITS__IMMEDIATE_SEND_TIMEOUT_SECS".to_owned(),
                "3".to_owned(),
            ),
            (
                "WAPIM_WEBHOOKS__ALLOW_PRIVATE".to_owned(),
                "true".to_owned(),
            ),
            ("WAPIM_WEBHOOKS__RETRY_BASE_MS".to_owned(), "300".to_owned()),
            ("WAPIM_WEBHOOKS__TIMEOUT_SECS".to_owned(), "3".to_owned()),
            (
                "WAPIM_AUTOMATIONS__CONVERSATION_SILENCE_SECS".to_owned(),
                options.conversation_silence_secs.to_string(),
            ),
        ])
        .expect("settings");
        let db_handle = wapim_gateway::prepare_database(&settings.database)
            .await
            .expect("database");
        let pool = db_handle.pool().clone();
        let app = wapim_gateway::Application::build(
            &settings,
            db_handle,
            TcpListener::bind("127.0.0.1:0").unwrap(),
        )
        .expect("gateway");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let webhook_url = if options.ingest {
            let ingest = wapim_webhook_ingest::Application::build(
                &settings,
                wapim_web::Db::new(pool.clone(), 16),
                TcpListener::bind("127.0.0.1:0").unwrap(),
            )
            .expect("ingest");
            let url = format!("http://127.0.0.1:{}/api/v1/waha-webhook", ingest.port());
            tokio::spawn(ingest.run_until_stopped());
            url
        } else {
            WEBHOOK_URL.to_owned()
        };
        let broker_url = options.amqp_url.clone().unwrap_or_else(amqp_url);
        let memory_queue = options.memory_queue && options.amqp_url.is_none();
        let broker = Broker::connect(&BrokerConfig {
            url: if memory_queue {
                "memory://".to_owned()
            } else {
                broker_url.clone()
            },
            prefix: prefix.clone(),
            prefetch: options.dispatcher.prefetch,
            delivery_limit: 10,
        })
        .await
        .expect("broker");

        let client = reqwest::Client::new();
        let r: Value = client
            .post(format!("{base}/api/devices"))
            .bearer_auth(&admin_token)
            .json(&json!({"name": "WAPI Test", "phone_number": "0811010010010"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let device = r["data"].clone();
        let device_token = device["secret_token"].as_str().unwrap().to_owned();
        sim.ensure_session("wapi-test", options.engine, SessionStatus::Working);

        let pipeline = Self {
            memory_queue,
            amqp_url: broker_url,
            db,
            pool,
            base,
            admin_token,
            sim,
            broker,
            prefix,
            client,
            device,
            device_token,
            webhook_url,
            webhook_settings: settings.webhooks.clone(),
        };
        if options.run_relay {
            pipeline.spawn_relay();
        }
        if options.run_dispatcher {
            pipeline.spawn_dispatcher(options.dispatcher);
            // The device's first session sync (it reconfigures the session on the simulator)
            // is over before the test starts changing the session itself.
            if options.run_relay {
                pipeline.wait_for_first_sync().await;
            }
        }
        pipeline
    }

    /// An operator call on the API; returns the HTTP status and the body.
    pub async fn operator(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let r = request.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A device as `GET /api/devices/{id}` shows it to the operator.
    pub async fn device_json(&self, id: &Value) -> Value {
        let (status, body) = self
            .operator(reqwest::Method::GET, &format!("/api/devices/{id}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["data"].clone()
    }

    /// Waits until the pipeline's device has been synced with WAHA once.
    pub async fn wait_for_first_sync(&self) {
        let started = Instant::now();
        loop {
            let d = self.device_json(&self.device["id"]).await;
            if d["waha_synced_at"].is_string() {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "the device is never synced: {d}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn relay(&self) -> Relay {
        Relay::new(
            self.pool.clone(),
            self.broker.clone(),
            RelayConfig {
                batch: 500,
                poll: Duration::from_millis(50),
                lease: Duration::from_secs(30),
            },
        )
    }

    pub fn spawn_relay(&self) {
        tokio::spawn(self.relay().run());
    }

    /// An unpaced dispatcher (the pipeline tests are about delivery, not spacing); see
    /// [`Self::paced_dispatcher`].
    pub fn dispatcher(&self, settings: DispatcherSettings) -> Dispatcher {
        self.paced_dispatcher(settings, PacingSettings::OFF)
    }

    pub fn paced_dispatcher(
        &self,
        settings: DispatcherSettings,
        pacing: PacingSettings,
    ) -> Dispatcher {
        let waha = WahaClient::new(&self.sim.base_url(), None, Duration::from_secs(5)).unwrap();
        self.dispatcher_with(settings, pacing, waha)
    }

    /// A dispatcher reaching WAHA through `waha` (e.g. a proxy a test can cut).
    pub fn dispatcher_with(
        &self,
        settings: DispatcherSettings,
        pacing: PacingSettings,
        waha: WahaClient,
    ) -> Dispatcher {
        Dispatcher::new(
            self.pool.clone(),
            self.broker.clone(),
            waha,
            settings,
            &pacing,
            SessionSettings {
                webhook_url: self.webhook_url.clone(),
            },
        )
        .with_webhooks(&self.webhook_settings)
        .unwrap()
    }

    pub fn spawn_dispatcher(&self, settings: DispatcherSettings) {
        let d = self.dispatcher(settings);
        tokio::spawn(async move { d.run("test-dispatcher").await });
    }

    /// POSTs a message as the device; returns the stored record.
    pub async fn post(&self, body: Value) -> Value {
        let r = self
            .client
            .post(format!("{}/api/messages", self.base))
            .header("X-Session-Id", "wapi-test")
            .header("X-Session-Secret-Token", &self.device_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        v["data"].clone()
    }

    pub async fn text(&self, text: &str) -> i64 {
        self.post(json!({"recipient": "0811010010011", "message_type": "text", "message": text}))
            .await["id"]
            .as_i64()
            .unwrap()
    }

    pub async fn message(&self, id: i64) -> Value {
        let v: Value = self
            .client
            .get(format!("{}/api/messages/{id}", self.base))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"].clone()
    }

    /// Waits (up to `within`) until the message's status is `status`; returns the record.
    pub async fn wait_for_status(&self, id: i64, status: &str, within: Duration) -> Value {
        let started = Instant::now();
        loop {
            let m = self.message(id).await;
            if m["status"] == status {
                return m;
            }
            assert!(
                started.elapsed() < within,
                "message {id} is still {} after {within:?}: {m}",
                m["status"]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs texts as one batch, as the device of `session` with `token`.
    pub async fn batch_as(&self, session: &str, token: &str, texts: &[String]) {
        let items: Vec<Value> = texts
            .iter()
            .map(|t| json!({"recipient": "0811010010011", "message_type": "text", "message": t}))
            .collect();
        let r = self
            .client
            .post(format!("{}/api/messages-batch", self.base))
            .header("X-Session-Id", session)
            .header("X-Session-Secret-Token", token)
            .json(&json!({ "items": items }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// Registers another device (`body` as the API takes it) with a WORKING GOWS session on
    /// the simulator; returns its session id and token.
    pub async fn add_device(&self, body: Value) -> (String, String) {
        let r: Value = self
            .client
            .post(format!("{}/api/devices", self.base))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["data"]["session_id"].as_str().unwrap().to_owned();
        let token = r["data"]["secret_token"].as_str().unwrap().to_owned();
        self.sim
            .ensure_session(&session, Engine::Gows, SessionStatus::Working);
        (session, token)
    }

    /// Waits (up to `within`) until the simulator recorded `n` sends.
    pub async fn wait_for_sends(&self, n: usize, within: Duration) {
        let started = Instant::now();
        while self.sim.send_count() < n {
            assert!(
                started.elapsed() < within,
                "{} of {n} sent after {within:?}",
                self.sim.send_count()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to `within`) until the message with `text` was sent at least once.
    pub async fn wait_for_send_of(&self, text: &str, within: Duration) {
        let started = Instant::now();
        while self.sends_of(text) == 0 {
            assert!(started.elapsed() < within, "{text:?} is never sent");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// How many sends the simulator recorded per message text.
    pub fn sends_of(&self, text: &str) -> usize {
        self.sim
            .sends()
            .iter()
            .filter(|s| s.body["text"] == text || s.body["caption"] == text)
            .count()
    }
}

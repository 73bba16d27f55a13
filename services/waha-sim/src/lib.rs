//! `waha-sim`: a **simulator** of WAHA (the WhatsApp HTTP API) for Wapim's tests and demos.
//! It never talks to WhatsApp, never fetches media URLs, and posts webhooks only to loopback
//! addresses.
//!
//! It follows WAHA's HTTP API for every endpoint Wapim calls (sessions, sends, pre-generated
//! ids, message lookup, QR and pairing code, profile, contacts, lids), answering with WAHA's
//! status codes, error shapes and per-engine send responses. Every request it receives is
//! recorded and its body validated against WAHA's OpenAPI document
//! (`proto/waha/openapi.json`, patched for its known quirks); each way a request breaks the
//! API is a [`SimHandle::violations`] entry, while the request is still served. Tests drive it
//! through [`SimHandle`] (in process) or the same controls under `/_sim/...` over HTTP.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use wapim_waha_sim::{start, Engine, SessionStatus, SimConfig};
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let sim = start(SimConfig::default(), listener).await?;
//! sim.ensure_session("device-1", Engine::Gows, SessionStatus::Working);
//! // … point the code under test at sim.base_url(), then:
//! assert!(sim.violations().is_empty());
//! # Ok(()) }
//! ```

mod http;
mod model;
mod png;
mod sim;
mod spec;
mod webhooks;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};

pub use model::{
    Engine, Faults, Incoming, RecordedCall, RecordedSend, SendKind, SessionStatus, UnknownName,
    WebhookDelivery,
};
pub use webhooks::sign_webhook_body;

use sim::Sim;

/// Where WAHA's OpenAPI document lives in this repository (`proto/waha/openapi.json`, a
/// verbatim copy of WAHA's published document; see `proto/waha/README.md`).
pub const DEFAULT_OPENAPI_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto/waha/openapi.json");

/// How a simulator behaves; `Default` suits tests (no acks, no API key, GOWS).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// When set, every `/api` request must carry it in `X-Api-Key` (else 401, as WAHA).
    pub api_key: Option<String>,
    /// The engine of sessions created over HTTP (WAHA runs one engine per server).
    pub engine: Engine,
    /// WAHA's OpenAPI document; when it cannot be read the simulator still runs and reports one
    /// violation saying so.
    pub openapi_path: PathBuf,
    /// Post `message.ack` SERVER, DEVICE, READ after each send (`ack_delay` apart).
    pub acks: bool,
    /// Delay before each ack (also before NOWEB's timelock ack -1).
    pub ack_delay: Duration,
    /// When set, a session waiting in `SCAN_QR_CODE` logs in by itself after this long (the
    /// phone "scans" the code), for demos.
    pub auto_login: Option<Duration>,
    /// Attempts per webhook event when its webhook sets no `retries.attempts`.
    pub webhook_attempts: u32,
    /// Delay between attempts when its webhook sets no `retries.delaySeconds`.
    pub webhook_retry_delay: Duration,
    /// actix workers serving the API.
    pub workers: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            engine: Engine::Gows,
            openapi_path: PathBuf::from(DEFAULT_OPENAPI_PATH),
            acks: false,
            ack_delay: Duration::from_millis(50),
            auto_login: None,
            webhook_attempts: 3,
            webhook_retry_delay: Duration::from_millis(100),
            workers: 2,
        }
    }
}

/// Starts a simulator on `listener` (bind port 0 in tests) and returns its handle. The server
/// and the simulator's background work run on the calling Tokio runtime; dropping the handle
/// stops the server.
pub async fn start(config: SimConfig, listener: TcpListener) -> std::io::Result<SimHandle> {
    let address = listener.local_addr()?;
    let host = match address.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    let base_url = format!("http://{host}:{}", address.port());
    let webhook_http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(std::io::Error::other)?;
    let workers = config.workers.max(1);
    let sim = Sim::new(config, tokio::runtime::Handle::current(), webhook_http);
    let data = web::Data::new(sim.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(http::MAX_BODY))
            .default_service(web::to(http::dispatch))
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(http::SHUTDOWN.as_secs())
    .listen(listener)?
    .run();
    let server_handle = server.handle();
    let task = tokio::spawn(server);
    Ok(SimHandle {
        sim,
        server: server_handle,
        task: Some(task),
        port: address.port(),
        base_url,
    })
}

/// A running simulator: where it listens, what it saw, and the knobs tests turn.
pub struct SimHandle {
    sim: Arc<Sim>,
    server: ServerHandle,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    port: u16,
    base_url: String,
}

impl SimHandle {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: WAHA's base URL for the code under test.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// Every request received under `/api` (and `/ping`), in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.sim.lock().calls.clone()
    }

    /// Every message sent, in completion order.
    pub fn sends(&self) -> Vec<RecordedSend> {
        self.sim.lock().sends.clone()
    }

    /// How many messages were sent so far, without copying them (for loops that wait on it).
    pub fn send_count(&self) -> usize {
        self.sim.lock().sends.len()
    }

    /// Every way a received request broke WAHA's API (`METHOD path: problem`), plus webhook
    /// URLs it refused to post to; empty when everything followed the OpenAPI document.
    pub fn violations(&self) -> Vec<String> {
        self.sim.lock().violations.clone()
    }

    /// Every webhook delivery attempt, in order.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.sim.lock().deliveries.clone()
    }

    /// Creates the session when missing and sets its engine and status directly, skipping the
    /// QR dance (a `WORKING` session gets an account). Emits `session.status` on a change.
    pub fn ensure_session(&self, name: &str, engine: Engine, status: SessionStatus) {
        self.sim.ensure_session(name, engine, status);
    }

    /// The phone scans the QR code (or enters the pairing code): a session in `SCAN_QR_CODE`
    /// becomes `WORKING`. False when the session was not waiting for it.
    pub fn login(&self, session: &str) -> bool {
        self.sim.login(session)
    }

    /// The session's current status, `None` when it does not exist.
    pub fn session_status(&self, session: &str) -> Option<SessionStatus> {
        self.sim.lock().sessions.get(session).map(|s| s.status)
    }

    /// Replaces the injected faults (and reseeds the error RNG with `faults.seed`).
    pub fn set_faults(&self, faults: Faults) {
        self.sim.set_faults(faults);
    }

    /// A contact writes to the session's account: WAHA's `message` event goes to the
    /// session's webhooks. Returns the event's payload; `None` unless the session is `WORKING`.
    pub fn receive(&self, session: &str, incoming: &Incoming) -> Option<serde_json::Value> {
        self.sim.receive(session, incoming)
    }

    /// Teaches the simulator a lid → phone mapping for `GET /api/{s}/lids/...`.
    pub fn add_lid(&self, lid: &str, phone_chat_id: &str) {
        self.sim.add_lid(lid, phone_chat_id);
    }

    /// Makes `check-exists` report the number as (not) on WhatsApp; all are by default.
    pub fn set_registered(&self, phone: &str, registered: bool) {
        self.sim.set_registered(phone, registered);
    }

    /// Forgets recorded calls, sends, violations and deliveries (sessions stay).
    pub fn reset_records(&self) {
        self.sim.reset_records();
    }

    /// Waits until the server stops (the binary's main loop).
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }

    /// Stops the server (in-flight requests get a second to finish).
    pub async fn stop(self) {
        self.server.stop(true).await;
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits for completion.
        drop(self.server.stop(false));
    }
}

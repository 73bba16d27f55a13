//! Wapim's webhook ingest: `POST /api/v1/waha-webhook` takes the events WAHA posts for each
//! device's session.
//!
//! - **Signed.** Each session was created with its device's own HMAC key; an event whose
//!   `X-Webhook-Hmac` (HMAC-SHA512 of the raw body, hex) is missing or wrong is a 401 and changes
//!   nothing. The body is checked before anything in it is believed.
//! - **Recorded before the answer, once.** The event is stored (one row per WAHA event id) before
//!   the 2xx, so a crash right after answering loses nothing; WAHA retries with the same id and a
//!   replay changes nothing.
//! - **Applied after the answer** by a processor in the same process (woken at once, and sweeping
//!   every second for what a crashed process left): acks move messages forward (`delivered`,
//!   `read`, `failed`; NOWEB's reach-out timelock puts the message back and pauses the device),
//!   `session.status` sets the device's status and releases what waited for `WORKING`; an
//!   inbound `message` is stored (its sender's `@lid` resolved through WAHA) and answered by the
//!   device's automations. Each event's effects, the integrator's webhook deliveries they
//!   queue, and the mark that it was applied commit in one transaction: applied exactly once.
//! - **Closing messages** of conversations that went silent are swept by the same processor.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpRequest, HttpResponse};
use chrono::{NaiveDateTime, TimeDelta};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha512};
use tokio::sync::Notify;
use wapim_app::automations::Automations;
use wapim_app::cache::ExpiringMap;
use wapim_app::waha_servers::WahaDirectory;
use wapim_domain::automation::{chat_kind, phone_of_chat, AutomationTiming, ChatKind};
use wapim_domain::time::{format_naive_utc, now_micros};
use wapim_domain::{DeviceStatus, MessageStatus};
use wapim_settings::{Settings, SettingsError};
use wapim_store::inbound::NewInbound;
use wapim_store::ingest::{self, AckEffect, EventRow};
use wapim_store::messages::MessageRow;
use wapim_store::{webhooks, DbConn, Pool, StoreError};
use wapim_waha::{InboundMessage, WahaClient};
use wapim_web::envelope::ok;
use wapim_web::{health, method_not_allowed, route_not_found, ApiError, Db};

/// The header WAHA signs each event in.
pub const HMAC_HEADER: &str = "X-Webhook-Hmac";

/// Largest event body taken (WAHA's events are small; media come as URLs).
const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// Why the ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be prepared.
    #[error("database: {0}")]
    Database(#[from] StoreError),
    /// The listener could not be used.
    #[error("http listener: {0}")]
    Io(#[from] std::io::Error),
    /// A setting is unusable.
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

/// Whether `signature` (hex) is the HMAC-SHA512 of `body` under `key`, compared in constant time.
pub fn signature_is_valid(key: &str, body: &[u8], signature: &str) -> bool {
    let Ok(given) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(key.as_bytes()) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

/// What the processor needs.
#[derive(Clone)]
struct Processor {
    pool: Pool,
    wake: Arc<Notify>,
    /// How long NOWEB's reach-out timelock pauses a device (`WAPIM_DISPATCHER__PAUSE_PROBE_SECS`).
    probe_every: TimeDelta,
    /// Each session's WAHA (for lids).
    waha: WahaDirectory,
    /// What WAHA said each lid's phone is (an hour; `None`: it does not know).
    lids: Arc<ExpiringMap<String, Option<String>>>,
    /// The devices' automations.
    automations: Arc<Automations>,
    /// How long applied events and finished deliveries are kept (`None`: forever).
    keep: Option<TimeDelta>,
    /// How long an event that cannot be applied yet (an ack before its send is recorded) is
    /// tried again: past a dispatcher's claim lease and sweep, plus a minute.
    later_patience: TimeDelta,
}

/// Connections the processor applies one batch on, in parallel.
const APPLY_LANES: usize = 4;

/// The lane of an event: an ack by its message's id, anything else by its session.
fn lane_of(event: &EventRow) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let key = if event.event.starts_with("message.ack") {
        serde_json::from_str::<Value>(&event.body)
            .ok()
            .and_then(|b| {
                let id = b.get("payload")?.get("id")?;
                id.as_str()
                    .or_else(|| id.get("_serialized").and_then(Value::as_str))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| event.session_id.clone())
    } else {
        event.session_id.clone()
    };
    key.hash(&mut hasher);
    (hasher.finish() % APPLY_LANES as u64) as usize
}

/// How long a resolved lid is trusted.
const LID_CACHE: Duration = Duration::from_secs(3600);

/// Tries of an event whose lid WAHA could not resolve before it is stored without a phone.
const LID_TRIES: i32 = 4;

fn secs(s: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2_000).max(1))
}

struct IngestState {
    db: Db,
    wake: Arc<Notify>,
    /// Each session's HMAC key, as it last verified an event.
    keys: ExpiringMap<String, String>,
}

/// How long a session's HMAC key that verified an event is trusted without asking again.
const KEY_CACHE: Duration = Duration::from_secs(5);

/// A built ingest: its port and the server to run.
pub struct Application {
    port: u16,
    server: Server,
}

/// The ingest's endpoint and processor, to serve on a server of the caller's (the single
/// binary's port) or on its own ([`Application`]).
#[derive(Clone)]
pub struct IngestService {
    state: web::Data<IngestState>,
}

impl IngestService {
    /// Starts the processor (inside a tokio runtime) over `db`.
    pub fn start(settings: &Settings, db: Db) -> Result<Self, StartupError> {
        let wake = Arc::new(Notify::new());
        let api_key = Some(settings.waha.api_key.clone()).filter(|k| !k.is_empty());
        let timeout = Duration::from_secs(settings.waha.request_timeout_secs.max(1));
        let waha = WahaClient::new(&settings.waha.url, api_key, timeout).map_err(|e| {
            SettingsError::Invalid {
                var: "WAPIM_WAHA__URL",
                reason: e.to_string(),
            }
        })?;
        let processor = Processor {
            pool: db.pool().clone(),
            wake: wake.clone(),
            probe_every: secs(settings.dispatcher.pause_probe_secs),
            waha: WahaDirectory::new(db.pool().clone(), waha, timeout),
            lids: Arc::new(ExpiringMap::new(LID_CACHE)),
            automations: Arc::new(Automations {
                validation: wapim_web::validation_context(settings)?,
                timing: AutomationTiming {
                    silence: secs(settings.automations.conversation_silence_secs),
                    auto_reply_window: secs(settings.automations.auto_reply_window_secs),
                },
            }),
            keep: (settings.ingest.keep_days > 0)
                .then(|| TimeDelta::days(i64::from(settings.ingest.keep_days))),
            later_patience: secs(
                settings
                    .dispatcher
                    .lease_secs
                    .saturating_add(settings.dispatcher.sweep_secs)
                    .saturating_add(60),
            ),
        };
        tokio::spawn(processor.run());
        Ok(Self {
            state: web::Data::new(IngestState {
                db,
                wake,
                keys: ExpiringMap::new(KEY_CACHE),
            }),
        })
    }

    /// Registers `POST /api/v1/waha-webhook` (with its own state and body limit).
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(
            web::resource("/api/v1/waha-webhook")
                .app_data(self.state.clone())
                .app_data(web::PayloadConfig::new(MAX_EVENT_BYTES))
                .route(web::post().to(receive))
                .default_service(web::to(method_not_allowed)),
        );
    }
}

impl Application {
    /// Builds the ingest on `listener` over `db` and starts its processor (inside a tokio
    /// runtime).
    pub fn build(settings: &Settings, db: Db, listener: TcpListener) -> Result<Self, StartupError> {
        let ingest = IngestService::start(settings, db.clone())?;
        let db = web::Data::new(db);
        let port = listener.local_addr()?.port();
        let server = wapim_web::server::serve(listener, settings.http.workers, move || {
            App::new()
                .app_data(db.clone())
                .configure(|cfg| ingest.configure(cfg))
                .configure(health::routes)
                .default_service(web::to(route_not_found))
        })?;
        Ok(Self { port, server })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until stopped.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// `POST /api/v1/waha-webhook`: verify, record once, answer; applied afterwards.
async fn receive(
    state: web::Data<IngestState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let event: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::MalformedBody("The body is not JSON.".into()))?;
    let field = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(kind), Some(session)) = (field("event"), field("session")) else {
        return Err(ApiError::field(
            "event",
            "A WAHA event names its `event` and its `session`.",
        ));
    };
    let signature = req
        .headers()
        .get(HMAC_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or(ApiError::Unauthenticated)?;
    // A key that verified an event a moment ago is trusted for a few seconds (one statement per
    // event instead of two); a mismatch always asks the database, so a new key works at once.
    let cached = state.keys.get(&session);
    if !cached.is_some_and(|key| signature_is_valid(&key, &body, &signature)) {
        let name = session.clone();
        let key = state
            .db
            .run(move |c| ingest::hmac_key_of(c, &name))
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if !signature_is_valid(&key, &body, &signature) {
            return Err(ApiError::Unauthenticated);
        }
        state.keys.put(session.clone(), key);
    }
    // WAHA's event id; an event without one is identified by its body (a retry repeats it).
    let event_id =
        field("id").unwrap_or_else(|| format!("sha512:{}", hex::encode(Sha512::digest(&body))));
    let text = String::from_utf8_lossy(&body).into_owned();
    let kind_label = kind.clone();
    let now = now_micros().naive_utc();
    let recorded = state
        .db
        .run(move |c| ingest::record_event(c, &event_id, &session, &kind, &text, now))
        .await?;
    if recorded.is_some() {
        state.wake.notify_one();
        wapim_metrics::metrics()
            .waha_events
            .with_label_values(&[wapim_metrics::event_label(&kind_label)])
            .inc();
    }
    Ok(ok(
        if recorded.is_some() {
            "Event recorded"
        } else {
            "Event already recorded"
        },
        Value::Null,
    ))
}

/// How an event's application ended.
enum Applied {
    /// Done (applied, or nothing to do).
    Done,
    /// Not yet (e.g. an ack for a send not recorded yet): try again later.
    Later(String),
}

/// What an event needs from outside the database before it is applied.
#[derive(Debug, Clone, Default)]
struct Prepared {
    /// The phone behind the sender's lid (or a group participant's), when it has one.
    lid_phone: Option<String>,
    /// WAHA could not be asked (yet).
    lid_failed: Option<String>,
}

impl Processor {
    async fn run(self) {
        let mut next_sweep = tokio::time::Instant::now();
        let mut next_prune = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(keep) = self
                .keep
                .filter(|_| tokio::time::Instant::now() >= next_prune)
            {
                next_prune = tokio::time::Instant::now() + Duration::from_secs(3600);
                let pruned = wapim_app::with_connection(&self.pool, move |c| {
                    let before = now_micros().naive_utc() - keep;
                    let mut total = 0;
                    loop {
                        let n = ingest::prune_events(c, before, 1000)?
                            + webhooks::prune(c, before, 1000)?;
                        total += n;
                        if n == 0 {
                            return Ok(total);
                        }
                    }
                })
                .await;
                match pruned {
                    Ok(n) if n > 0 => tracing::info!(rows = n, "pruned old events and deliveries"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning failed; trying again in an hour"),
                }
            }
            if tokio::time::Instant::now() >= next_sweep {
                next_sweep = tokio::time::Instant::now() + Duration::from_secs(5);
                let automations = self.automations.clone();
                let swept = wapim_app::with_connection(&self.pool, move |c| {
                    automations.send_due_closings(c, now_micros().naive_utc(), 100)
                })
                .await;
                if let Err(e) = swept {
                    tracing::warn!(error = %e, "closing messages could not be sent; retrying");
                }
            }
            match self.pass().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "event processing failed; retrying"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
    }

    /// Applies what is owed; returns how many events it took. What WAHA must be asked is asked
    /// first; then the whole batch is applied on one connection, each event in its own
    /// transaction (its effects, its deliveries and its "applied" mark together).
    async fn pass(&self) -> Result<usize, StoreError> {
        let now = now_micros().naive_utc();
        let lease = now + TimeDelta::seconds(30);
        let events = wapim_app::with_connection(&self.pool, move |c| {
            ingest::claim_events(c, now, lease, 100)
        })
        .await?;
        let n = events.len();
        if n == 0 {
            return Ok(0);
        }
        let mut batch = Vec::with_capacity(n);
        for event in events {
            let prepared = self.prepare(&event).await;
            batch.push((event, prepared));
        }
        // Events about different things apply in parallel, each group on its own connection;
        // events about one thing (one message's acks, one session's status and messages) stay
        // in one group, in order.
        let mut groups: Vec<Vec<(EventRow, Prepared)>> =
            (0..APPLY_LANES).map(|_| Vec::new()).collect();
        for (event, prepared) in batch {
            let lane = lane_of(&event);
            groups[lane].push((event, prepared));
        }
        let mut lanes = tokio::task::JoinSet::new();
        for group in groups.into_iter().filter(|g| !g.is_empty()) {
            let this = self.clone();
            lanes.spawn(async move {
                let pool = this.pool.clone();
                wapim_app::with_connection(&pool, move |c| {
                    for (event, prepared) in &group {
                        this.apply_and_settle(c, event, prepared)?;
                    }
                    Ok(())
                })
                .await
            });
        }
        let mut failure = None;
        while let Some(done) = lanes.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failure = Some(e),
                Err(e) => failure = Some(StoreError::Unavailable(e.to_string())),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Applies one event in its own transaction and settles it: done, or owed again later
    /// (with why), or given up after its retries.
    fn apply_and_settle(
        &self,
        c: &mut DbConn,
        event: &EventRow,
        prepared: &Prepared,
    ) -> Result<(), StoreError> {
        let outcome = wapim_store::transaction(c, |c| {
            let applied = self.apply(c, event, prepared)?;
            if matches!(applied, Applied::Done)
                && !ingest::event_done(c, event.id, now_micros().naive_utc())?
            {
                // Another processor applied it meanwhile: undo ours.
                return Err(StoreError::Conflict("event"));
            }
            Ok::<_, StoreError>(applied)
        });
        let (id, attempts, at) = (event.id, event.attempts, now_micros().naive_utc());
        match outcome {
            Ok(Applied::Done) | Err(StoreError::Conflict("event")) => Ok(()),
            // Owed again, backing off to 10 s, for as long as the thing it waits for may take
            // to appear: an ack can arrive while its send's claim is orphaned (the dispatcher
            // died mid-send) and the message is recorded sent only once the claim's lease runs
            // out and another dispatcher looks the send up.
            Ok(Applied::Later(why)) if at < event.received_at + self.later_patience => {
                let backoff = (250_i64 << attempts.clamp(0, 7)).min(10_000);
                ingest::event_retry(c, id, &why, at + TimeDelta::milliseconds(backoff))
            }
            Ok(Applied::Later(why)) => {
                tracing::info!(event = id, %why, "event ignored after retries");
                ingest::event_done(c, id, at).map(|_| ())
            }
            Err(e) if e.is_unavailable() => Err(e),
            Err(e) => {
                let (why, retry) = (e.to_string(), at + TimeDelta::seconds(5));
                ingest::event_retry(c, id, &why, retry)
            }
        }
    }

    /// Asks WAHA what an event needs before it is applied: the phone behind a lid (cached).
    async fn prepare(&self, event: &EventRow) -> Prepared {
        if event.event != "message" {
            return Prepared::default();
        }
        let Some(message) = serde_json::from_str::<Value>(&event.body)
            .ok()
            .and_then(|b| b.get("payload").and_then(InboundMessage::from_payload))
        else {
            return Prepared::default();
        };
        let writer = match chat_kind(&message.from) {
            ChatKind::Group => message.participant.clone(),
            _ => Some(message.from.clone()),
        };
        let Some(lid) = writer.filter(|w| chat_kind(w) == ChatKind::Lid) else {
            return Prepared::default();
        };
        if let Some(known) = self.lids.get(&lid) {
            return Prepared {
                lid_phone: known,
                lid_failed: None,
            };
        }
        let client = self.waha.for_session(&event.session_id).await;
        match client.phone_of_lid(&event.session_id, &lid).await {
            Ok(phone) => {
                self.lids.put(lid, phone.clone());
                Prepared {
                    lid_phone: phone,
                    lid_failed: None,
                }
            }
            Err(e) => Prepared {
                lid_phone: None,
                lid_failed: Some(format!("WAHA could not resolve {lid}: {e}")),
            },
        }
    }

    /// Applies one event (inside the caller's transaction).
    fn apply(
        &self,
        conn: &mut DbConn,
        event: &EventRow,
        prepared: &Prepared,
    ) -> Result<Applied, StoreError> {
        let Ok(body) = serde_json::from_str::<Value>(&event.body) else {
            return Ok(Applied::Done);
        };
        let payload = body.get("payload").cloned().unwrap_or(Value::Null);
        let at = now_micros().naive_utc();
        match event.event.as_str() {
            "message.ack" | "message.ack.group" => self.apply_ack(conn, &body, &payload, at),
            "session.status" => self.apply_session_status(conn, event, &body, &payload, at),
            "message" => self.apply_message(conn, event, &payload, prepared, at),
            // Anything else WAHA posts (the integrator subscribed the session to it, e.g.
            // `message.waiting`) goes to the integrator's webhook as it came.
            other => {
                if let Some(device) =
                    wapim_store::devices::find_live_by_session(conn, &event.session_id)?
                {
                    let data = serde_json::json!({ "device_id": device.id });
                    webhooks::enqueue(conn, device.id, other, data, Some(&payload), at)?;
                }
                Ok(Applied::Done)
            }
        }
    }

    fn apply_session_status(
        &self,
        conn: &mut DbConn,
        event: &EventRow,
        body: &Value,
        payload: &Value,
        at: NaiveDateTime,
    ) -> Result<Applied, StoreError> {
        let status = payload
            .get("status")
            .and_then(Value::as_str)
            .and_then(DeviceStatus::from_waha);
        if let Some(status) = status {
            if let Some(device) = ingest::apply_session_status(conn, &event.session_id, status, at)?
            {
                let data = serde_json::json!({ "device_id": device, "status": status.as_str() });
                webhooks::enqueue(conn, device, "session.status", data, Some(payload), at)?;
            }
        }
        // Newer WAHA builds say whether WhatsApp's reach-out timelock is on, and until
        // when: the device pauses until then, or resumes when it is lifted.
        let timelock = [
            payload.get("reachoutTimelock"),
            payload.get("me").and_then(|m| m.get("reachoutTimelock")),
            body.get("me").and_then(|m| m.get("reachoutTimelock")),
        ]
        .into_iter()
        .flatten()
        .next();
        if let Some(timelock) = timelock {
            match wapim_domain::safety::timelock_ends(timelock) {
                Some(ends) if ends > at => {
                    let until = ends.min(at + TimeDelta::days(7));
                    ingest::pause_session(conn, &event.session_id, until)?;
                }
                _ if timelock.get("isActive").and_then(Value::as_bool) == Some(false) => {
                    ingest::lift_session_timelock(conn, &event.session_id, at)?;
                }
                _ => {}
            }
        }
        Ok(Applied::Done)
    }

    /// A contact's message: stored once for the device, its sender's phone known (a lid
    /// resolved, or left unknown: its digits are never taken for a phone), then the automations.
    fn apply_message(
        &self,
        conn: &mut DbConn,
        event: &EventRow,
        payload: &Value,
        prepared: &Prepared,
        at: NaiveDateTime,
    ) -> Result<Applied, StoreError> {
        let Some(message) = InboundMessage::from_payload(payload) else {
            return Ok(Applied::Done);
        };
        let kind = chat_kind(&message.from);
        if message.from_me || matches!(kind, ChatKind::Broadcast | ChatKind::Other) {
            return Ok(Applied::Done);
        }
        if let Some(why) = &prepared.lid_failed {
            if event.attempts < LID_TRIES {
                return Ok(Applied::Later(why.clone()));
            }
        }
        let Some(device) = wapim_store::devices::find_live_by_session(conn, &event.session_id)?
        else {
            return Ok(Applied::Done);
        };
        let is_group = kind == ChatKind::Group;
        let writer = if is_group {
            message.participant.clone().unwrap_or_default()
        } else {
            message.from.clone()
        };
        let (sender, sender_lid) = match chat_kind(&writer) {
            ChatKind::Lid => (prepared.lid_phone.clone(), Some(writer.clone())),
            _ => (phone_of_chat(&writer), None),
        };
        let sent_at = chrono::DateTime::from_timestamp(message.timestamp, 0)
            .map(|t| t.naive_utc())
            .filter(|t| message.timestamp > 0 && *t <= at + TimeDelta::minutes(5))
            .unwrap_or(at);
        let media = message.media.as_ref();
        let new = NewInbound {
            device_id: device.id,
            session_id: device.session_id.clone(),
            provider_message_id: message.id.clone(),
            chat_id: message.from.clone(),
            sender,
            sender_lid,
            is_group,
            message_type: media.map_or("text", |m| m.message_type()).to_owned(),
            message: message.body.clone(),
            has_media: media.is_some(),
            media_url: media.and_then(|m| m.url.clone()),
            media_mimetype: media.and_then(|m| m.mimetype.clone()),
            media_filename: media.and_then(|m| m.filename.clone()),
            sent_at,
            created_at: at,
            updated_at: at,
        };
        match self.automations.receive(conn, &device, &new, payload, at) {
            Ok(_) => Ok(Applied::Done),
            // Two events of one new contact at once: the second is applied again later.
            Err(StoreError::Conflict(_)) => Ok(Applied::Later(
                "a concurrent message of the same contact".into(),
            )),
            Err(e) => Err(e),
        }
    }

    fn apply_ack(
        &self,
        conn: &mut DbConn,
        body: &Value,
        payload: &Value,
        at: NaiveDateTime,
    ) -> Result<Applied, StoreError> {
        let id = payload.get("id").and_then(|v| {
            v.as_str()
                .or_else(|| v.get("_serialized").and_then(Value::as_str))
        });
        let (Some(id), Some(ack)) = (id, payload.get("ack").and_then(Value::as_i64)) else {
            return Ok(Applied::Done);
        };
        let effect = match ack {
            2 => ingest::apply_delivery_ack(conn, id, false, at)?,
            3 | 4 => ingest::apply_delivery_ack(conn, id, true, at)?,
            -1 => {
                let response = serde_json::json!({"error": "WhatsApp refused the message (ack ERROR)", "waha": payload}).to_string();
                if body.get("engine").and_then(Value::as_str) == Some("NOWEB") {
                    // NOWEB's reach-out timelock: the send was accepted, then refused.
                    ingest::apply_timelock_ack(conn, id, &response, at + self.probe_every, at)?
                } else {
                    ingest::apply_error_ack(conn, id, &response, at)?
                }
            }
            // PENDING and SERVER: the send is recorded by the dispatcher already.
            _ => AckEffect::Unchanged,
        };
        match effect {
            AckEffect::Unknown => Ok(Applied::Later(format!("no message has id {id} (yet)"))),
            AckEffect::Unchanged => Ok(Applied::Done),
            AckEffect::Applied(message) => {
                let lag = |from: Option<NaiveDateTime>, to: Option<NaiveDateTime>| {
                    from.zip(to)
                        .map(|(f, t)| (t - f).num_milliseconds().max(0) as f64 / 1000.0)
                };
                let m = wapim_metrics::metrics();
                match message.status {
                    MessageStatus::Delivered => {
                        if let Some(s) = lag(message.sent_at, message.delivered_at) {
                            m.ack_lag.with_label_values(&["delivered"]).observe(s);
                        }
                    }
                    MessageStatus::Read => {
                        if let Some(s) = lag(message.delivered_at, message.read_at) {
                            m.ack_lag.with_label_values(&["read"]).observe(s);
                        }
                    }
                    _ => {}
                }
                webhooks::enqueue(
                    conn,
                    message.device_id,
                    "message.ack",
                    ack_data(&message),
                    Some(payload),
                    at,
                )?;
                Ok(Applied::Done)
            }
        }
    }
}

/// Wapim's view of an outbound message in the integrator's `message.ack` event.
fn ack_data(m: &MessageRow) -> Value {
    let at = |t: Option<NaiveDateTime>| t.map(|t| format_naive_utc(&t));
    serde_json::json!({
        "message_id": m.id,
        "device_id": m.device_id,
        "recipient": m.recipient,
        "status": m.status.as_str(),
        "origin": m.origin,
        "sent_at": at(m.sent_at),
        "delivered_at": at(m.delivered_at),
        "read_at": at(m.read_at),
        "status_updated_at": at(m.status_updated_at),
    })
}

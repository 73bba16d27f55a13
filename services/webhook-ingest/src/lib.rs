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
//!   `session.status` sets the device's status and releases what waited for `WORKING`.

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
use wapim_domain::time::now_micros;
use wapim_domain::DeviceStatus;
use wapim_settings::Settings;
use wapim_store::ingest::{self, AckEffect, EventRow};
use wapim_store::{Pool, StoreError};
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
}

struct IngestState {
    db: Db,
    wake: Arc<Notify>,
}

/// A built ingest: its port and the server to run.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Builds the ingest on `listener` over `db` and starts its processor (inside a tokio
    /// runtime).
    pub fn build(settings: &Settings, db: Db, listener: TcpListener) -> Result<Self, StartupError> {
        let wake = Arc::new(Notify::new());
        let processor = Processor {
            pool: db.pool().clone(),
            wake: wake.clone(),
            probe_every: TimeDelta::seconds(
                i64::try_from(settings.dispatcher.pause_probe_secs.max(1)).unwrap_or(300),
            ),
        };
        tokio::spawn(processor.run());
        let state = web::Data::new(IngestState {
            db: db.clone(),
            wake,
        });
        let db = web::Data::new(db);
        let port = listener.local_addr()?.port();
        let server = wapim_web::server::serve(listener, settings.http.workers, move || {
            App::new()
                .app_data(state.clone())
                .app_data(db.clone())
                .app_data(web::PayloadConfig::new(MAX_EVENT_BYTES))
                .service(
                    web::resource("/api/v1/waha-webhook")
                        .route(web::post().to(receive))
                        .default_service(web::to(method_not_allowed)),
                )
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
    let name = session.clone();
    let key = state
        .db
        .run(move |c| ingest::hmac_key_of(c, &name))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if !signature_is_valid(&key, &body, &signature) {
        return Err(ApiError::Unauthenticated);
    }
    // WAHA's event id; an event without one is identified by its body (a retry repeats it).
    let event_id =
        field("id").unwrap_or_else(|| format!("sha512:{}", hex::encode(Sha512::digest(&body))));
    let text = String::from_utf8_lossy(&body).into_owned();
    let now = now_micros().naive_utc();
    let recorded = state
        .db
        .run(move |c| ingest::record_event(c, &event_id, &session, &kind, &text, now))
        .await?;
    if recorded.is_some() {
        state.wake.notify_one();
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

impl Processor {
    async fn run(self) {
        loop {
            match self.pass().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "event processing failed; retrying"),
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
    }

    /// Applies what is owed; returns how many events it took.
    async fn pass(&self) -> Result<usize, StoreError> {
        let now = now_micros().naive_utc();
        let lease = now + TimeDelta::seconds(30);
        let events = wapim_app::with_connection(&self.pool, move |c| {
            ingest::claim_events(c, now, lease, 100)
        })
        .await?;
        let n = events.len();
        for event in events {
            let (id, attempts) = (event.id, event.attempts);
            let this = self.clone();
            let outcome =
                wapim_app::with_connection(&self.pool, move |c| Ok(this.apply(c, &event))).await?;
            let at = now_micros().naive_utc();
            match outcome {
                Ok(Applied::Done) => {
                    wapim_app::with_connection(&self.pool, move |c| ingest::event_done(c, id, at))
                        .await?
                }
                Ok(Applied::Later(why)) if attempts < 6 => {
                    let retry = at + TimeDelta::milliseconds(250 << attempts.clamp(0, 6));
                    wapim_app::with_connection(&self.pool, move |c| {
                        ingest::event_retry(c, id, &why, retry)
                    })
                    .await?
                }
                Ok(Applied::Later(why)) => {
                    tracing::info!(event = id, %why, "event ignored after retries");
                    wapim_app::with_connection(&self.pool, move |c| ingest::event_done(c, id, at))
                        .await?
                }
                Err(e) => {
                    let (why, retry) = (e.to_string(), at + TimeDelta::seconds(5));
                    wapim_app::with_connection(&self.pool, move |c| {
                        ingest::event_retry(c, id, &why, retry)
                    })
                    .await?
                }
            }
        }
        Ok(n)
    }

    /// Applies one event.
    fn apply(
        &self,
        conn: &mut wapim_store::DbConn,
        event: &EventRow,
    ) -> Result<Applied, StoreError> {
        let Ok(body) = serde_json::from_str::<Value>(&event.body) else {
            return Ok(Applied::Done);
        };
        let payload = body.get("payload").cloned().unwrap_or(Value::Null);
        let at = now_micros().naive_utc();
        match event.event.as_str() {
            "message.ack" | "message.ack.group" => self.apply_ack(conn, &body, &payload, at),
            "session.status" => {
                let status = payload
                    .get("status")
                    .and_then(Value::as_str)
                    .and_then(DeviceStatus::from_waha);
                if let Some(status) = status {
                    ingest::apply_session_status(conn, &event.session_id, status, at)?;
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
            // Inbound messages, automations and the integrator's webhooks come next.
            _ => Ok(Applied::Done),
        }
    }

    fn apply_ack(
        &self,
        conn: &mut wapim_store::DbConn,
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
        Ok(match effect {
            AckEffect::Unknown => Applied::Later(format!("no message has id {id} (yet)")),
            AckEffect::Applied | AckEffect::Unchanged => Applied::Done,
        })
    }
}

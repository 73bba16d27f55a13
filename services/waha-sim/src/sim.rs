//! The simulated WAHA's state: sessions and their messages, what was received and sent, and the
//! events it emits. The HTTP layer (`http.rs`) and the control API (`SimHandle`) both act on it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::model::{
    millis, Engine, Faults, Incoming, RecordedCall, RecordedSend, SendKind, SessionStatus,
    WebhookDelivery,
};
use crate::spec::Spec;
use crate::webhooks::{environment, ulid, Job};
use crate::SimConfig;

/// The simulator: configuration, the OpenAPI checker, and the state behind one lock.
pub(crate) struct Sim {
    pub(crate) config: SimConfig,
    spec: Option<Arc<Spec>>,
    state: Mutex<State>,
    webhooks: mpsc::UnboundedSender<Job>,
    /// Where background work (completing sends, acks, webhooks, auto-login) runs.
    pub(crate) rt: tokio::runtime::Handle,
    weak: Weak<Sim>,
}

pub(crate) struct State {
    pub sessions: BTreeMap<String, Session>,
    pub calls: Vec<RecordedCall>,
    pub sends: Vec<RecordedSend>,
    pub violations: Vec<String>,
    pub deliveries: Vec<WebhookDelivery>,
    pub faults: Faults,
    /// Draws `Faults::error_rate`; reseeded by every `set_faults`.
    pub fault_rng: StdRng,
    /// lid (`…@lid`) → phone chat id (`…@c.us`).
    pub lids: BTreeMap<String, String>,
    /// Phone digits that `check-exists` reports as not on WhatsApp.
    pub unregistered: BTreeSet<String>,
}

pub(crate) struct Session {
    pub name: String,
    pub engine: Engine,
    pub status: SessionStatus,
    pub config: Value,
    pub me: Option<Value>,
    pub statuses: Vec<(SessionStatus, u64)>,
    pub qr: Option<String>,
    pub pairing_phone: Option<String>,
    pub messages: Vec<Message>,
    /// Bumped on every status change, so a delayed auto-login can tell it is stale.
    pub generation: u64,
    pub activity_ms: Option<u64>,
}

/// A message the session sent, as WAHA's store keeps it.
pub(crate) struct Message {
    pub serialized: String,
    pub bare: String,
    pub chat_id: String,
    pub kind: SendKind,
    pub request: Value,
    pub timestamp: u64,
    pub ack: i64,
}

/// A send accepted by the HTTP layer, completed (recorded, stored, acked) by a background task.
pub(crate) struct PendingSend {
    pub session: String,
    pub engine: Engine,
    pub chat_id: String,
    pub bare: String,
    pub kind: SendKind,
    pub body: Value,
    /// NOWEB under the reach-out timelock: answer 201, then ack -1.
    pub timelock_ack: bool,
}

pub(crate) fn ack_name(ack: i64) -> &'static str {
    match ack {
        -1 => "ERROR",
        0 => "PENDING",
        1 => "SERVER",
        2 => "DEVICE",
        3 => "READ",
        4 => "PLAYED",
        _ => "UNKNOWN",
    }
}

impl Sim {
    pub(crate) fn new(
        config: SimConfig,
        rt: tokio::runtime::Handle,
        http: reqwest::Client,
    ) -> Arc<Sim> {
        let (spec, violation) = match Spec::load_cached(&config.openapi_path) {
            Ok(spec) => (Some(spec), None),
            Err(e) => {
                tracing::warn!(error = %e, "waha-sim runs without request validation");
                (None, Some(format!("request validation is off: {e}")))
            }
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let sim = Arc::new_cyclic(|weak: &Weak<Sim>| Sim {
            config,
            spec,
            state: Mutex::new(State {
                sessions: BTreeMap::new(),
                calls: Vec::new(),
                sends: Vec::new(),
                violations: violation.into_iter().collect(),
                deliveries: Vec::new(),
                faults: Faults::default(),
                fault_rng: StdRng::seed_from_u64(0),
                lids: BTreeMap::new(),
                unregistered: BTreeSet::new(),
            }),
            webhooks: tx,
            rt,
            weak: weak.clone(),
        });
        sim.rt
            .spawn(crate::webhooks::deliver(rx, Arc::downgrade(&sim), http));
        sim
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[allow(clippy::too_many_arguments)]
    /// Records a received request and every way it breaks WAHA's API: `extra` problems found
    /// by the caller, plus the OpenAPI check when `check` (a body that is not JSON is not).
    pub(crate) fn record_call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<&Value>,
        traceparent: Option<String>,
        extra: Vec<String>,
        check: bool,
    ) {
        let problems = match &self.spec {
            Some(spec) if check => spec.check(method, path, query, body),
            _ => Vec::new(),
        };
        let mut state = self.lock();
        state.calls.push(RecordedCall {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            body: body.cloned().unwrap_or(Value::Null),
            traceparent,
            at: SystemTime::now(),
            instant: Instant::now(),
        });
        for problem in extra.into_iter().chain(problems) {
            tracing::warn!(%method, %path, %problem, "request breaks WAHA's API");
            state.violations.push(format!("{method} {path}: {problem}"));
        }
    }

    pub(crate) fn violation(&self, message: String) {
        self.lock().violations.push(message);
    }

    pub(crate) fn record_delivery(&self, delivery: WebhookDelivery) {
        self.lock().deliveries.push(delivery);
    }

    /// Creates the session when missing, then sets its engine and status directly (a session
    /// set `WORKING` gets a logged-in account).
    pub(crate) fn ensure_session(&self, name: &str, engine: Engine, status: SessionStatus) {
        let mut state = self.lock();
        let session = state
            .sessions
            .entry(name.to_owned())
            .or_insert_with(|| Session::new(name, engine, Value::Null));
        session.engine = engine;
        if status == SessionStatus::Working && session.me.is_none() {
            session.me = Some(me_for(name, None));
        }
        self.set_status(session, status);
    }

    /// The phone "scans the QR code" (or enters the pairing code): a session waiting in
    /// `SCAN_QR_CODE` logs in and becomes `WORKING`. False when it was not waiting.
    pub(crate) fn login(&self, name: &str) -> bool {
        let mut state = self.lock();
        let Some(session) = state.sessions.get_mut(name) else {
            return false;
        };
        if session.status != SessionStatus::ScanQrCode {
            return false;
        }
        session.me = Some(me_for(name, session.pairing_phone.as_deref()));
        self.set_status(session, SessionStatus::Working);
        true
    }

    /// A contact writes to the session's account: emits WAHA's `message` event (engine
    /// shape: WEBJS-like `id` string) and returns its payload. `None` when the session does not
    /// exist or is not `WORKING` (WAHA only receives on a logged-in session).
    pub(crate) fn receive(&self, name: &str, incoming: &Incoming) -> Option<Value> {
        let state = self.lock();
        let session = state.sessions.get(name)?;
        if session.status != SessionStatus::Working {
            return None;
        }
        let bare = Self::new_message_id();
        let from_me = incoming.from_me;
        let payload = json!({
            "id": format!("{from_me}_{}_{bare}", incoming.from),
            "timestamp": millis(SystemTime::now()) / 1000,
            "from": incoming.from,
            "fromMe": from_me,
            "source": "app",
            "to": session.me.as_ref().and_then(|m| m.get("id")).cloned().unwrap_or(Value::Null),
            "participant": incoming.participant,
            "body": incoming.body,
            "hasMedia": incoming.media.is_some(),
            "media": incoming.media,
            "ack": 1,
            "ackName": "SERVER",
            "replyTo": null,
        });
        self.emit(session, "message", payload.clone());
        Some(payload)
    }

    /// Starts a stopped session: `STARTING`, then `WORKING` when it has logged in before,
    /// `SCAN_QR_CODE` otherwise. A running session is left alone (WAHA's start is idempotent).
    pub(crate) fn start_session(&self, session: &mut Session) {
        if session.status != SessionStatus::Stopped {
            return;
        }
        self.set_status(session, SessionStatus::Starting);
        let next = if session.me.is_some() {
            SessionStatus::Working
        } else {
            SessionStatus::ScanQrCode
        };
        self.set_status(session, next);
    }

    pub(crate) fn stop_session(&self, session: &mut Session) {
        self.set_status(session, SessionStatus::Stopped);
    }

    /// Moves a session to `status`, emitting `session.status` when it changed.
    pub(crate) fn set_status(&self, session: &mut Session, status: SessionStatus) {
        if session.status == status {
            return;
        }
        let now = millis(SystemTime::now());
        session.status = status;
        session.generation += 1;
        session.statuses.push((status, now));
        if session.statuses.len() > 10 {
            session.statuses.remove(0);
        }
        session.qr = (status == SessionStatus::ScanQrCode).then(|| qr_value(&mut rand::rng()));
        let statuses: Vec<Value> = session
            .statuses
            .iter()
            .map(|(s, t)| json!({"status": s.as_str(), "timestamp": t}))
            .collect();
        let payload =
            json!({"name": session.name, "status": status.as_str(), "statuses": statuses});
        self.emit(session, "session.status", payload);
        if status == SessionStatus::ScanQrCode {
            self.schedule_auto_login(session);
        }
    }

    fn schedule_auto_login(&self, session: &Session) {
        let Some(delay) = self.config.auto_login else {
            return;
        };
        let (weak, name, generation) =
            (self.weak.clone(), session.name.clone(), session.generation);
        self.rt.spawn(async move {
            tokio::time::sleep(delay).await;
            let Some(sim) = weak.upgrade() else { return };
            let current = sim.lock().sessions.get(&name).map(|s| s.generation);
            if current == Some(generation) {
                sim.login(&name);
            }
        });
    }

    /// Queues `event` for every webhook of the session that subscribes to it.
    pub(crate) fn emit(&self, session: &Session, event: &str, payload: Value) {
        let mut envelope = json!({
            "id": format!("evt_{}", ulid(&mut rand::rng())),
            "timestamp": millis(SystemTime::now()),
            "event": event,
            "session": session.name,
            "payload": payload,
            "engine": session.engine.as_str(),
            "environment": environment(session.engine.as_str()),
        });
        if let Some(metadata) = session.config.get("metadata").filter(|m| m.is_object()) {
            envelope["metadata"] = metadata.clone();
        }
        if let Some(me) = &session.me {
            envelope["me"] = me.clone();
        }
        let jobs = Job::for_config(
            &session.config,
            &envelope,
            self.config.webhook_attempts,
            self.config.webhook_retry_delay,
        );
        for job in jobs {
            // The receiver lives as long as the simulator.
            let _ = self.webhooks.send(job);
        }
    }

    /// A new bare message id, shaped like WhatsApp's (`3EB0` + 18 hex digits).
    pub(crate) fn new_message_id() -> String {
        let mut rng = rand::rng();
        let n: u128 = rng.random();
        format!("3EB0{:018X}", n & ((1 << 72) - 1))
    }

    /// Completes an accepted send: records it, stores the message, schedules its acks, and
    /// returns the engine's response body.
    pub(crate) fn complete_send(&self, send: PendingSend) -> Value {
        let serialized = format!("true_{}_{}", send.chat_id, send.bare);
        let now = SystemTime::now();
        let timestamp = millis(now) / 1000;
        let mut state = self.lock();
        state.sends.push(RecordedSend {
            session: send.session.clone(),
            engine: send.engine,
            chat_id: send.chat_id.clone(),
            message_id: send.bare.clone(),
            serialized_id: serialized.clone(),
            kind: send.kind,
            body: send.body.clone(),
            at: now,
            instant: Instant::now(),
        });
        // GOWS answers after WhatsApp's server ack; the others answer before it.
        let ack = if send.engine == Engine::Gows { 1 } else { 0 };
        let message = Message {
            serialized: serialized.clone(),
            bare: send.bare.clone(),
            chat_id: send.chat_id.clone(),
            kind: send.kind,
            request: send.body.clone(),
            timestamp,
            ack,
        };
        let me_id = state
            .sessions
            .get(&send.session)
            .and_then(|s| s.me.as_ref())
            .and_then(|me| me.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let response = send_response(send.engine, &message, &me_id);
        if let Some(session) = state.sessions.get_mut(&send.session) {
            session.messages.push(message);
            session.activity_ms = Some(millis(now));
        }
        drop(state);
        self.schedule_acks(&send.session, &serialized, send.timelock_ack);
        response
    }

    /// `message.ack` events after a send: -1 under NOWEB's reach-out timelock; otherwise, when
    /// acks are on, SERVER, DEVICE and READ, `ack_delay` apart.
    fn schedule_acks(&self, session: &str, serialized: &str, timelock: bool) {
        let acks: Vec<i64> = if timelock {
            vec![-1]
        } else if self.config.acks {
            vec![1, 2, 3]
        } else {
            return;
        };
        let (weak, session, serialized, delay) = (
            self.weak.clone(),
            session.to_owned(),
            serialized.to_owned(),
            self.config.ack_delay,
        );
        self.rt.spawn(async move {
            for ack in acks {
                tokio::time::sleep(delay).await;
                let Some(sim) = weak.upgrade() else { return };
                sim.ack(&session, &serialized, ack);
            }
        });
    }

    fn ack(&self, session_name: &str, serialized: &str, ack: i64) {
        let mut state = self.lock();
        let Some(session) = state.sessions.get_mut(session_name) else {
            return;
        };
        let Some(message) = session
            .messages
            .iter_mut()
            .find(|m| m.serialized == serialized)
        else {
            return;
        };
        message.ack = ack;
        let chat = message.chat_id.clone();
        let me = session
            .me
            .as_ref()
            .and_then(|m| m.get("id"))
            .cloned()
            .unwrap_or(Value::Null);
        let event = if chat.ends_with("@g.us") {
            "message.ack.group"
        } else {
            "message.ack"
        };
        let payload = json!({
            "id": serialized,
            "from": chat,
            "to": me,
            "participant": null,
            "fromMe": true,
            "ack": ack,
            "ackName": ack_name(ack),
        });
        let session: &Session = session;
        self.emit(session, event, payload);
    }
}

impl Session {
    pub(crate) fn new(name: &str, engine: Engine, config: Value) -> Self {
        Session {
            name: name.to_owned(),
            engine,
            status: SessionStatus::Stopped,
            config,
            me: None,
            statuses: vec![(SessionStatus::Stopped, millis(SystemTime::now()))],
            qr: None,
            pairing_phone: None,
            messages: Vec::new(),
            generation: 0,
            activity_ms: None,
        }
    }

    /// WAHA's `SessionInfo` (also what session commands answer).
    pub(crate) fn info(&self) -> Value {
        json!({
            "name": self.name,
            "status": self.status.as_str(),
            "config": self.config,
            "me": self.me,
            "engine": {"engine": self.engine.as_str()},
            "presence": null,
            "timestamps": {"activity": self.activity_ms},
        })
    }

    pub(crate) fn find_message(&self, chat_id: &str, id: &str) -> Option<&Message> {
        // WEBJS only finds messages by their serialized id.
        let by_bare = self.engine != Engine::Webjs;
        self.messages
            .iter()
            .rev()
            .find(|m| m.chat_id == chat_id && (m.serialized == id || (by_bare && m.bare == id)))
    }
}

/// The account a session logs into: the pairing phone when one was given, else digits derived
/// from the session's name.
fn me_for(name: &str, phone: Option<&str>) -> Value {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let digits = match phone {
        Some(p) => p.chars().filter(char::is_ascii_digit).collect::<String>(),
        None => format!("62811{:07}", hash % 10_000_000),
    };
    json!({
        "id": format!("{digits}@c.us"),
        "lid": format!("{:015}@lid", hash % 1_000_000_000_000_000),
        "jid": format!("{digits}:1@s.whatsapp.net"),
        "pushName": format!("WAHA Sim {name}"),
    })
}

fn qr_value(rng: &mut impl Rng) -> String {
    let a: u128 = rng.random();
    format!("2@{a:032x},waha-sim,{}", millis(SystemTime::now()))
}

/// The body of a send's 201, in the engine's own shape.
pub(crate) fn send_response(engine: Engine, message: &Message, me_id: &str) -> Value {
    let text = message_text(message);
    let has_media = message.kind != SendKind::Text;
    match engine {
        Engine::Gows => json!({
            "id": message.serialized,
            "timestamp": message.timestamp,
            "from": me_id,
            "fromMe": true,
            "source": "api",
            "to": message.chat_id,
            "body": text,
            "hasMedia": has_media,
            "ack": message.ack,
            "ackName": ack_name(message.ack),
            "_data": {"Info": {"ID": message.bare, "Chat": message.chat_id, "IsFromMe": true, "Timestamp": message.timestamp}},
        }),
        Engine::Webjs => json!({
            "id": {"fromMe": true, "remote": message.chat_id, "id": message.bare, "_serialized": message.serialized},
            "ack": message.ack,
            "hasMedia": has_media,
            "body": text,
            "type": webjs_type(message.kind),
            "timestamp": message.timestamp,
            "from": me_id,
            "to": message.chat_id,
            "fromMe": true,
        }),
        Engine::Noweb => json!({
            "key": {
                "remoteJid": message.chat_id.replace("@c.us", "@s.whatsapp.net"),
                "fromMe": true,
                "id": message.bare,
            },
            "message": noweb_message(message),
            "messageTimestamp": message.timestamp.to_string(),
            "status": "PENDING",
        }),
    }
}

/// WAHA's normalised `WAMessage`, what message lookups answer on every engine.
pub(crate) fn wa_message(message: &Message, me_id: &str) -> Value {
    let media = (message.kind != SendKind::Text).then(|| {
        let file = message.request.get("file").cloned().unwrap_or(Value::Null);
        json!({
            "url": file.get("url"),
            "mimetype": file.get("mimetype"),
            "filename": file.get("filename"),
            "error": null,
        })
    });
    json!({
        "id": message.serialized,
        "timestamp": message.timestamp,
        "from": me_id,
        "fromMe": true,
        "source": "api",
        "to": message.chat_id,
        "participant": null,
        "body": message_text(message),
        "hasMedia": media.is_some(),
        "media": media,
        "ack": message.ack,
        "ackName": ack_name(message.ack),
        "replyTo": null,
        "_data": {},
    })
}

fn message_text(message: &Message) -> String {
    let key = if message.kind == SendKind::Text {
        "text"
    } else {
        "caption"
    };
    message
        .request
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn webjs_type(kind: SendKind) -> &'static str {
    match kind {
        SendKind::Text => "chat",
        SendKind::Image => "image",
        SendKind::File => "document",
        SendKind::Video => "video",
        SendKind::Voice => "ptt",
    }
}

fn noweb_message(message: &Message) -> Value {
    let file = message.request.get("file").cloned().unwrap_or(Value::Null);
    let caption = message
        .request
        .get("caption")
        .cloned()
        .unwrap_or(Value::Null);
    match message.kind {
        SendKind::Text => json!({"extendedTextMessage": {"text": message_text(message)}}),
        SendKind::Image => {
            json!({"imageMessage": {"mimetype": file.get("mimetype"), "caption": caption}})
        }
        SendKind::File => json!({"documentMessage": {
            "mimetype": file.get("mimetype"), "fileName": file.get("filename"), "caption": caption}}),
        SendKind::Video => {
            json!({"videoMessage": {"mimetype": file.get("mimetype"), "caption": caption}})
        }
        SendKind::Voice => json!({"audioMessage": {"mimetype": file.get("mimetype"), "ptt": true}}),
    }
}

//! The simulator's public vocabulary: engines, session statuses, faults and what it records.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;

/// A WAHA engine; it decides the shape of send responses and which features exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Engine {
    /// Go engine (whatsmeow): flat string ids, 463 as a 500.
    Gows,
    /// Node websocket engine (Baileys): `key` in send responses, 463 as an ack -1.
    Noweb,
    /// Browser engine (whatsapp-web.js): `id._serialized`, no pre-generated ids.
    Webjs,
}

impl Engine {
    /// WAHA's spelling: `GOWS`, `NOWEB`, `WEBJS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gows => "GOWS",
            Self::Noweb => "NOWEB",
            Self::Webjs => "WEBJS",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not one of the simulated engines or statuses.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?}")]
pub struct UnknownName {
    what: &'static str,
    value: String,
}

impl FromStr for Engine {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "GOWS" => Ok(Self::Gows),
            "NOWEB" => Ok(Self::Noweb),
            "WEBJS" => Ok(Self::Webjs),
            _ => Err(UnknownName {
                what: "engine",
                value: s.to_owned(),
            }),
        }
    }
}

/// A WAHA session status (the ones the simulator moves through).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    /// Not running.
    Stopped,
    /// Starting up.
    Starting,
    /// Waiting for a QR scan or a pairing code.
    ScanQrCode,
    /// Logged in and able to send.
    Working,
    /// Gave up (e.g. too many QR codes).
    Failed,
}

impl SessionStatus {
    /// WAHA's spelling, e.g. `SCAN_QR_CODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "STOPPED",
            Self::Starting => "STARTING",
            Self::ScanQrCode => "SCAN_QR_CODE",
            Self::Working => "WORKING",
            Self::Failed => "FAILED",
        }
    }
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SessionStatus {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "STOPPED" => Ok(Self::Stopped),
            "STARTING" => Ok(Self::Starting),
            "SCAN_QR_CODE" => Ok(Self::ScanQrCode),
            "WORKING" => Ok(Self::Working),
            "FAILED" => Ok(Self::Failed),
            _ => Err(UnknownName {
                what: "session status",
                value: s.to_owned(),
            }),
        }
    }
}

/// Which send endpoint a message came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SendKind {
    /// `POST /api/sendText`.
    Text,
    /// `POST /api/sendImage`.
    Image,
    /// `POST /api/sendFile`.
    File,
    /// `POST /api/sendVideo`.
    Video,
    /// `POST /api/sendVoice`.
    Voice,
}

impl SendKind {
    /// The endpoint's last path segment, e.g. `sendText`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::Text => "sendText",
            Self::Image => "sendImage",
            Self::File => "sendFile",
            Self::Video => "sendVideo",
            Self::Voice => "sendVoice",
        }
    }

    pub(crate) fn from_endpoint(endpoint: &str) -> Option<Self> {
        [
            Self::Text,
            Self::Image,
            Self::File,
            Self::Video,
            Self::Voice,
        ]
        .into_iter()
        .find(|k| k.endpoint() == endpoint)
    }
}

/// Failures to inject into the five send endpoints, so tests can exercise Wapim's retry and
/// recovery paths. The default injects nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Time a send takes before it completes (and is answered).
    #[serde(with = "duration_ms", rename = "latency_ms")]
    pub latency: Duration,
    /// Fraction of send calls answered 500 without sending (drawn from a RNG seeded by `seed`).
    pub error_rate: f64,
    /// Accept sends but never answer them; the send still completes (and is recorded) after
    /// `latency`, as a real WAHA finishes a send whose client hung up.
    pub hang: bool,
    /// WhatsApp's 463 reach-out timelock: on GOWS sends answer 500 "2 UNKNOWN: server returned
    /// error 463" (nothing sent); on NOWEB they answer 201 and a `message.ack` with ack -1
    /// follows; WEBJS is not affected.
    pub reach_out_timelock: bool,
    /// Seed of the RNG behind `error_rate`.
    pub seed: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            error_rate: 0.0,
            hang: false,
            reach_out_timelock: false,
            seed: 0,
        }
    }
}

/// One HTTP request the simulator received (except its own `/_sim` control endpoints).
#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path as sent (percent-encoded), e.g. `/api/sendText`.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The JSON body; `null` when there was none, a string when it was not JSON.
    pub body: Value,
    /// The W3C `traceparent` header, if the caller sent one.
    pub traceparent: Option<String>,
    /// When it arrived (wall clock).
    #[serde(serialize_with = "system_time_ms", rename = "at_ms")]
    pub at: SystemTime,
    /// When it arrived (monotonic clock), for measuring gaps between calls.
    #[serde(skip)]
    pub instant: Instant,
}

/// One message the simulator sent, recorded when its work completed (which may be after its
/// client hung up).
#[derive(Debug, Clone, Serialize)]
pub struct RecordedSend {
    /// The WAHA session it was sent from.
    pub session: String,
    /// The session's engine at the time.
    pub engine: Engine,
    /// The recipient's chat id.
    pub chat_id: String,
    /// The bare WhatsApp id, e.g. `3EB0…` (the pre-generated one when the request carried it).
    pub message_id: String,
    /// The full serialized id, `true_<chat>_<msgid>`.
    pub serialized_id: String,
    /// Which endpoint it came through.
    pub kind: SendKind,
    /// The request body.
    pub body: Value,
    /// When the send completed (wall clock).
    #[serde(serialize_with = "system_time_ms", rename = "at_ms")]
    pub at: SystemTime,
    /// When the send completed (monotonic clock), for pacing checks.
    #[serde(skip)]
    pub instant: Instant,
}

/// One attempt to post a webhook event.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookDelivery {
    /// The receiver.
    pub url: String,
    /// The event name, e.g. `message.ack`.
    pub event: String,
    /// The envelope's `id` (the same on every attempt of one event).
    pub event_id: String,
    /// The exact raw body posted (what the HMAC signs).
    pub body: String,
    /// `X-Webhook-Hmac`, when the webhook has an HMAC key.
    pub hmac: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// Why there was no answer, when there was none.
    pub error: Option<String>,
    /// When it was posted.
    #[serde(serialize_with = "system_time_ms", rename = "at_ms")]
    pub at: SystemTime,
}

pub(crate) fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn system_time_ms<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(millis(*t))
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// A contact's message for the simulator to receive (`POST /_sim/sessions/{name}/messages`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Incoming {
    /// The chat it comes from: `62811…@c.us`, `…@lid`, `…@g.us`, `status@broadcast`.
    pub from: String,
    /// Its text (or caption).
    #[serde(default)]
    pub body: String,
    /// In a group, who wrote it.
    #[serde(default)]
    pub participant: Option<String>,
    /// Written by the account itself (from its phone).
    #[serde(default, rename = "fromMe")]
    pub from_me: bool,
    /// `{url, mimetype, filename}` when it carries media (the URL is never fetched).
    #[serde(default)]
    pub media: Option<Value>,
}

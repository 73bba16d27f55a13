//! Devices: one WhatsApp phone each, known to WAHA by its session id.

use secrecy::SecretString;
use serde_json::{Map, Value};

use chrono::NaiveTime;
use chrono_tz::Tz;

use crate::media::file_meta_from_url;
use crate::safety::{parse_time_of_day, SendWindow};
use crate::session::session_id_from_name;
use crate::token::token_weakness;
use crate::validation::{Field, FieldReader, Mode, ValidationContext, ValidationErrors};

/// WAHA webhook events a device may subscribe its integrator webhook to.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "message",
    "message.any",
    "message.ack",
    "message.ack.group",
    "message.waiting",
    "message.reaction",
    "message.revoked",
    "message.edited",
    "session.status",
    "presence.update",
    "poll.vote",
    "poll.vote.failed",
    "chat.archive",
    "call.received",
    "call.accepted",
    "call.rejected",
    "label.upsert",
    "label.deleted",
    "label.chat.added",
    "label.chat.deleted",
    "group.join",
    "group.leave",
    "group.v2.join",
    "group.v2.leave",
    "group.v2.update",
    "group.v2.participants",
    "engine.event",
    "event.response",
    "event.response.failed",
    "state.change",
    "device.paused",
    "device.resumed",
];

const MAX_NAME: usize = 100;
const MAX_TEXT: usize = 4096;
const MAX_URL: usize = 2048;
/// Longest pacing interval or jitter a device may ask for: a day.
pub const MAX_PACING_MS: u64 = 86_400_000;
/// Largest daily cap a device may set (far above what WhatsApp tolerates; a typo guard).
pub const MAX_DAILY_CAP: u64 = 1_000_000;
/// Largest per-recipient hourly cap a device may set.
pub const MAX_RECIPIENT_HOURLY_CAP: u64 = 1_000;

/// A device's integrator-editable settings, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDraft {
    /// Display name; its slug is the session id.
    pub name: String,
    /// International digits without `+`.
    pub phone_number: String,
    /// Whether events are forwarded to `webhook_url`.
    pub webhook_status: bool,
    /// The integrator's webhook.
    pub webhook_url: Option<String>,
    /// Event names forwarded to the webhook (a subset of [`WEBHOOK_EVENTS`]).
    pub webhook_options: Option<Vec<String>>,
    /// Sent when a conversation opens.
    pub opening_message: Option<String>,
    /// Sent when a conversation closes.
    pub closing_message: Option<String>,
    /// Automatic answer to incoming messages.
    pub auto_reply: Option<String>,
    /// Text accompanying auto-forwarded messages.
    pub auto_forward: Option<String>,
    /// Where incoming messages are forwarded, international digits.
    pub auto_forward_number: Option<String>,
    /// Pacing override: least milliseconds between two sends (`None`: the server's default).
    pub pacing_min_interval_ms: Option<u64>,
    /// Pacing override: upper bound of the random extra per gap (`None`: the server's default).
    pub pacing_jitter_ms: Option<u64>,
    /// The device's time zone, for its daily cap and sending window (`None`: the server's).
    pub timezone: Option<Tz>,
    /// Most sends per local day (`None`: no cap).
    pub daily_cap: Option<u64>,
    /// Local times between which it may send (`None`: any time).
    pub send_window: Option<SendWindow>,
    /// Most sends to one contact an hour (`None`: no cap).
    pub recipient_hourly_cap: Option<u64>,
    /// Mark the chat seen and show "typing…" before each text, like a person would.
    pub simulate_typing: bool,
    /// Words that opt a contact out when they are a whole message (`None`: the defaults,
    /// [`crate::automation::DEFAULT_OPT_OUT_KEYWORDS`]).
    pub opt_out_keywords: Option<Vec<String>>,
    /// The answer to an opt-out (`None`: none).
    pub opt_out_confirmation: Option<String>,
}

/// A validated create/update request: the settings plus a new secret token, when one was given.
///
/// Not `PartialEq`: the token is a [`SecretString`], which `Debug` prints as redacted, so logging
/// a request never leaks it.
#[derive(Debug, Clone)]
pub struct DeviceInput {
    /// The settings to store.
    pub draft: DeviceDraft,
    /// A client-chosen secret token (create or rotate); `None` keeps (or, on create, generates).
    pub secret_token: Option<SecretString>,
}

impl DeviceDraft {
    /// The session id this draft's name gives a new device.
    pub fn session_id(&self) -> String {
        session_id_from_name(&self.name)
    }

    /// `webhook_options` as stored and shown: a compact JSON array in a string.
    pub fn webhook_options_json(&self) -> Option<String> {
        self.webhook_options
            .as_ref()
            .map(|o| serde_json::to_string(o).unwrap_or_else(|_| "[]".to_owned()))
    }
}

/// Parses a stored `webhook_options` JSON string back into event names.
pub fn parse_webhook_options(stored: Option<&str>) -> Option<Vec<String>> {
    stored.and_then(|s| serde_json::from_str(s).ok())
}

/// Validates a device body. `stored` is the current device for PUT/PATCH (`Mode::Patch` keeps
/// absent fields; `Mode::Full` requires `name` and `phone_number`).
pub fn validate_device(
    body: &Map<String, Value>,
    mode: Mode,
    stored: Option<&DeviceDraft>,
    ctx: &ValidationContext,
) -> Result<DeviceInput, ValidationErrors> {
    let mut r = FieldReader::new(body);
    let keep = |f: fn(&DeviceDraft) -> Option<String>| match mode {
        Mode::Patch => stored.and_then(f),
        Mode::Full => None,
    };

    let name = required_text(&mut r, "name", MAX_NAME, keep(|d| Some(d.name.clone())));
    if let Some(n) = &name {
        if session_id_from_name(n).is_empty() {
            r.fail(
                "name",
                "The name must contain at least one letter or digit.",
            );
        }
    }

    let phone_number = match r.string("phone_number", 64) {
        Field::Value(p) => normalize_phone(&mut r, "phone_number", &p, ctx),
        Field::Invalid => None,
        Field::Absent if mode == Mode::Patch => stored.map(|d| d.phone_number.clone()),
        _ => {
            r.required("phone_number");
            None
        }
    };

    let secret_token = match r.string("secret_token", 256) {
        Field::Value(t) => match token_weakness(&t) {
            None => Some(SecretString::from(t)),
            Some(reason) => {
                r.fail("secret_token", reason);
                None
            }
        },
        _ => None,
    };

    let webhook_status = match r.boolean("webhook_status") {
        Field::Value(b) => b,
        Field::Absent if mode == Mode::Patch => stored.is_some_and(|d| d.webhook_status),
        _ => false,
    };

    let webhook_url = match r.string("webhook_url", MAX_URL) {
        Field::Value(u) => match file_meta_from_url(&u) {
            Ok(meta) => Some(meta.url),
            Err(e) => {
                r.fail("webhook_url", format!("The webhook url {e}."));
                None
            }
        },
        other => other.or_keep(keep(|d| d.webhook_url.clone())),
    };
    if webhook_status && webhook_url.is_none() && !r.errors.has("webhook_url") {
        r.fail(
            "webhook_url",
            "The webhook url field is required when webhook status is true.",
        );
    }

    let webhook_options = read_webhook_options(&mut r).or_keep(
        stored
            .and_then(|d| d.webhook_options.clone())
            .filter(|_| mode == Mode::Patch),
    );

    let opening_message = optional_text(
        &mut r,
        "opening_message",
        keep(|d| d.opening_message.clone()),
    );
    let closing_message = optional_text(
        &mut r,
        "closing_message",
        keep(|d| d.closing_message.clone()),
    );
    let auto_reply = optional_text(&mut r, "auto_reply", keep(|d| d.auto_reply.clone()));
    let auto_forward = optional_text(&mut r, "auto_forward", keep(|d| d.auto_forward.clone()));

    let auto_forward_number = match r.string("auto_forward_number", 64) {
        Field::Value(p) => normalize_phone(&mut r, "auto_forward_number", &p, ctx),
        other => other.or_keep(keep(|d| d.auto_forward_number.clone())),
    };

    let kept_ms = |f: fn(&DeviceDraft) -> Option<u64>| match mode {
        Mode::Patch => stored.and_then(f),
        Mode::Full => None,
    };
    let pacing_min_interval_ms = r
        .integer("pacing_min_interval_ms", 0, MAX_PACING_MS)
        .or_keep(kept_ms(|d| d.pacing_min_interval_ms));
    let pacing_jitter_ms = r
        .integer("pacing_jitter_ms", 0, MAX_PACING_MS)
        .or_keep(kept_ms(|d| d.pacing_jitter_ms));

    let timezone = match r.string("timezone", 64) {
        Field::Value(t) => match t.trim().parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                r.fail(
                    "timezone",
                    "The timezone must be an IANA time zone such as Asia/Jakarta.",
                );
                None
            }
        },
        Field::Absent if mode == Mode::Patch => stored.and_then(|d| d.timezone),
        _ => None,
    };
    let daily_cap = r
        .integer("daily_cap", 1, MAX_DAILY_CAP)
        .or_keep(kept_ms(|d| d.daily_cap));
    let recipient_hourly_cap = r
        .integer("recipient_hourly_cap", 1, MAX_RECIPIENT_HOURLY_CAP)
        .or_keep(kept_ms(|d| d.recipient_hourly_cap));
    let send_window = read_send_window(&mut r, mode, stored);
    let simulate_typing = match r.boolean("simulate_typing") {
        Field::Value(b) => b,
        Field::Absent if mode == Mode::Patch => stored.is_some_and(|d| d.simulate_typing),
        _ => false,
    };

    let opt_out_keywords = read_opt_out_keywords(&mut r).or_keep(
        stored
            .and_then(|d| d.opt_out_keywords.clone())
            .filter(|_| mode == Mode::Patch),
    );
    let opt_out_confirmation = optional_text(
        &mut r,
        "opt_out_confirmation",
        keep(|d| d.opt_out_confirmation.clone()),
    );

    let errors = std::mem::take(&mut r.errors);
    match (name, phone_number) {
        (Some(name), Some(phone_number)) if errors.is_empty() => Ok(DeviceInput {
            draft: DeviceDraft {
                name: name.trim().to_owned(),
                phone_number,
                webhook_status,
                webhook_url,
                webhook_options,
                opening_message,
                closing_message,
                auto_reply,
                auto_forward,
                auto_forward_number,
                pacing_min_interval_ms,
                pacing_jitter_ms,
                timezone,
                daily_cap,
                send_window,
                recipient_hourly_cap,
                simulate_typing,
                opt_out_keywords,
                opt_out_confirmation,
            },
            secret_token,
        }),
        _ => Err(errors),
    }
}

/// `send_window_start` and `send_window_end` (`HH:MM`, local): both or neither, not equal. On a
/// patch an absent bound keeps the stored one; `null` for both removes the window.
fn read_send_window(
    r: &mut FieldReader<'_>,
    mode: Mode,
    stored: Option<&DeviceDraft>,
) -> Option<SendWindow> {
    let kept = stored
        .and_then(|d| d.send_window)
        .filter(|_| mode == Mode::Patch);
    let start = window_bound(r, "send_window_start", kept.map(|w| w.start));
    let end = window_bound(r, "send_window_end", kept.map(|w| w.end));
    match (start, end) {
        (Field::Value(start), Field::Value(end)) if start == end => {
            r.fail(
                "send_window_end",
                "The send window must end at another time than it starts.",
            );
            None
        }
        (Field::Value(start), Field::Value(end)) => Some(SendWindow { start, end }),
        (Field::Invalid, _) | (_, Field::Invalid) => None,
        (Field::Value(_), _) => {
            r.fail(
                "send_window_end",
                "The send window end is required with its start.",
            );
            None
        }
        (_, Field::Value(_)) => {
            r.fail(
                "send_window_start",
                "The send window start is required with its end.",
            );
            None
        }
        _ => None,
    }
}

fn window_bound(r: &mut FieldReader<'_>, key: &str, kept: Option<NaiveTime>) -> Field<NaiveTime> {
    match r.string(key, 16) {
        Field::Value(t) => match parse_time_of_day(&t) {
            Some(t) => Field::Value(t),
            None => {
                let label = crate::validation::label(key);
                r.fail(key, format!("The {label} must be a time such as 08:00."));
                Field::Invalid
            }
        },
        Field::Absent => kept.map_or(Field::Absent, Field::Value),
        Field::Null => Field::Null,
        Field::Invalid => Field::Invalid,
    }
}

fn required_text(
    r: &mut FieldReader<'_>,
    key: &str,
    max: usize,
    kept: Option<String>,
) -> Option<String> {
    match r.string(key, max) {
        Field::Value(v) => Some(v),
        Field::Invalid => None,
        Field::Absent if kept.is_some() => kept,
        _ => {
            r.required(key);
            None
        }
    }
}

fn optional_text(r: &mut FieldReader<'_>, key: &str, kept: Option<String>) -> Option<String> {
    r.string(key, MAX_TEXT).or_keep(kept)
}

/// Normalises a phone field, recording a 422-style message when it is not a valid number.
pub(crate) fn normalize_phone(
    r: &mut FieldReader<'_>,
    key: &str,
    raw: &str,
    ctx: &ValidationContext,
) -> Option<String> {
    match ctx.phones.normalize(raw) {
        Ok(p) => Some(p),
        Err(_) => {
            r.fail(
                key,
                format!(
                    "The {} is not a valid phone number.",
                    crate::validation::label(key)
                ),
            );
            None
        }
    }
}

/// `opt_out_keywords`: an array of 1 to [`crate::automation::MAX_OPT_OUT_KEYWORDS`] words of 1
/// to 32 characters (or the JSON string of one, as reads show it); `null` restores the defaults.
fn read_opt_out_keywords(r: &mut FieldReader<'_>) -> Field<Vec<String>> {
    const KEY: &str = "opt_out_keywords";
    const BAD: &str =
        "The opt-out keywords must be an array of 1 to 20 words of 1 to 32 characters.";
    let items: Vec<Value> = match r.raw(KEY) {
        None => return Field::Absent,
        Some(Value::Null) => return Field::Null,
        Some(Value::Array(items)) => items.clone(),
        Some(Value::String(s)) => match serde_json::from_str::<Vec<Value>>(s) {
            Ok(items) => items,
            Err(_) => {
                r.fail(KEY, BAD);
                return Field::Invalid;
            }
        },
        Some(_) => {
            r.fail(KEY, BAD);
            return Field::Invalid;
        }
    };
    let words: Option<Vec<String>> = items
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::trim)
                .filter(|w| (1..=32).contains(&w.chars().count()))
                .map(str::to_owned)
        })
        .collect();
    match words {
        Some(words)
            if !words.is_empty() && words.len() <= crate::automation::MAX_OPT_OUT_KEYWORDS =>
        {
            Field::Value(words)
        }
        _ => {
            r.fail(KEY, BAD);
            Field::Invalid
        }
    }
}

fn read_webhook_options(r: &mut FieldReader<'_>) -> Field<Vec<String>> {
    const KEY: &str = "webhook_options";
    let items: Vec<Value> = match r.raw(KEY) {
        None => return Field::Absent,
        Some(Value::Null) => return Field::Null,
        Some(Value::Array(items)) => items.clone(),
        // Reads show the options as a JSON string; accept that form back for round trips.
        Some(Value::String(s)) if s.trim().is_empty() => return Field::Null,
        Some(Value::String(s)) => match serde_json::from_str::<Vec<Value>>(s) {
            Ok(items) => items,
            Err(_) => {
                r.fail(KEY, "The webhook options must be an array of event names.");
                return Field::Invalid;
            }
        },
        Some(_) => {
            r.fail(KEY, "The webhook options must be an array of event names.");
            return Field::Invalid;
        }
    };
    let mut events: Vec<String> = Vec::with_capacity(items.len());
    let mut bad = false;
    for item in items {
        match item.as_str() {
            Some(e) if WEBHOOK_EVENTS.contains(&e) => {
                if !events.iter().any(|x| x == e) {
                    events.push(e.to_owned());
                }
            }
            Some(e) => {
                bad = true;
                r.fail(
                    KEY,
                    format!("The webhook option `{e}` is not a WAHA event."),
                );
            }
            None => {
                bad = true;
                r.fail(KEY, "Each webhook option must be a string.");
            }
        }
    }
    if bad {
        Field::Invalid
    } else {
        Field::Value(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    fn ctx() -> ValidationContext {
        ValidationContext {
            phones: crate::PhoneNormalizer::new("ID").unwrap(),
            timezone: chrono_tz::Asia::Jakarta,
        }
    }

    fn reference_body() -> Value {
        json!({
            "name": "WAPI Test",
            "phone_number": "0811010010010",
            "secret_token": "9f13a714ce15ddeb1e02835772b53fcc5de6355f05204354bbbc0023601816ee",
            "webhook_status": true,
            "webhook_url": "https://f947f32ac09a.ngrok-free.app/api/v1/waha-webhook",
            "webhook_options": ["message", "message.ack", "message.waiting"],
            "opening_message": "Hello",
            "closing_message": "Hola",
            "auto_reply": "Hai",
            "auto_forward": "Hei",
            "auto_forward_number": "811010010010"
        })
    }

    #[test]
    fn reference_body_is_valid_and_normalised() {
        let body = reference_body();
        let input = validate_device(body.as_object().unwrap(), Mode::Full, None, &ctx()).unwrap();
        assert_eq!(input.draft.session_id(), "wapi-test");
        assert_eq!(input.draft.phone_number, "62811010010010");
        assert_eq!(
            input.draft.auto_forward_number.as_deref(),
            Some("62811010010010")
        );
        assert_eq!(
            input.draft.webhook_options_json().unwrap(),
            r#"["message","message.ack","message.waiting"]"#
        );
        assert_eq!(
            input.secret_token.as_ref().map(|t| t.expose_secret()),
            Some("9f13a714ce15ddeb1e02835772b53fcc5de6355f05204354bbbc0023601816ee")
        );
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let token = "9f13a714ce15ddeb1e02835772b53fcc5de6355f05204354bbbc0023601816ee";
        let body = reference_body();
        let input = validate_device(body.as_object().unwrap(), Mode::Full, None, &ctx()).unwrap();
        assert!(input.secret_token.is_some());
        let shown = format!("{input:?}");
        assert!(!shown.contains(token), "{shown}");
        assert!(!shown.contains("16ee"), "{shown}");
        assert!(!format!("{input:#?}").contains(token));
    }

    #[test]
    fn weak_tokens_get_the_reason() {
        let mut body = reference_body();
        body["secret_token"] = json!("abcd".repeat(10));
        let errors =
            validate_device(body.as_object().unwrap(), Mode::Full, None, &ctx()).unwrap_err();
        assert!(errors.has("secret_token"));
        assert!(format!("{errors:?}").contains(crate::token::TOKEN_PREDICTABLE_MESSAGE));
    }

    #[test]
    fn every_bad_field_is_reported() {
        let body = json!({
            "name": 5,
            "phone_number": "abc",
            "webhook_status": "yes",
            "webhook_url": "ftp://x",
            "webhook_options": ["message", "nope"],
            "secret_token": "short"
        });
        let errors =
            validate_device(body.as_object().unwrap(), Mode::Full, None, &ctx()).unwrap_err();
        for field in [
            "name",
            "phone_number",
            "webhook_status",
            "webhook_url",
            "webhook_options",
            "secret_token",
        ] {
            assert!(errors.has(field), "{field}: {errors:?}");
        }
    }

    #[test]
    fn patch_keeps_absent_fields() {
        let body = reference_body();
        let stored = validate_device(body.as_object().unwrap(), Mode::Full, None, &ctx())
            .unwrap()
            .draft;
        let patch = json!({"auto_reply": null, "webhook_options": "[\"message\"]"});
        let input = validate_device(
            patch.as_object().unwrap(),
            Mode::Patch,
            Some(&stored),
            &ctx(),
        )
        .unwrap();
        assert_eq!(input.draft.name, "WAPI Test");
        assert_eq!(input.draft.auto_reply, None);
        assert_eq!(input.draft.opening_message.as_deref(), Some("Hello"));
        assert_eq!(
            input.draft.webhook_options,
            Some(vec!["message".to_owned()])
        );
        assert!(input.secret_token.is_none());
    }

    #[test]
    fn webhook_on_needs_a_url() {
        let body = json!({"name": "A", "phone_number": "0811010010010", "webhook_status": 1});
        let errors =
            validate_device(body.as_object().unwrap(), Mode::Full, None, &ctx()).unwrap_err();
        assert!(errors.has("webhook_url"));
    }
}

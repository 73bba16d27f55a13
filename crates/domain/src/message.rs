//! Messages: what to send, to whom, when, and the rules a request must meet.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::device::normalize_phone;
use crate::media::{file_meta_from_url, is_valid_mimetype};
use crate::schedule::parse_schedule;
use crate::status::{CalendarType, MessageType};
use crate::validation::{label, Field, FieldReader, Mode, ValidationContext, ValidationErrors};

/// WhatsApp's own limit on a text message.
pub const MAX_MESSAGE_CHARS: usize = 65_536;
const MAX_URL: usize = 2048;

/// A message's integrator-editable content, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDraft {
    /// Send through the queue (`true`) or as soon as possible (`false`); kept for the dispatcher.
    pub is_queue: bool,
    /// International digits without `+`.
    pub recipient: String,
    /// Text or a media kind.
    pub message_type: MessageType,
    /// The text, or the media caption.
    pub message: Option<String>,
    /// Media only: where WAHA fetches the file.
    pub file_url: Option<String>,
    /// Media only: derived from the URL unless given.
    pub file_mimetype: Option<String>,
    /// Media only: derived from the URL unless given.
    pub file_filename: Option<String>,
    /// Which calendar `schedule_at` was written in.
    pub calendar_type: CalendarType,
    /// When to send, in UTC; `None` sends as soon as possible.
    pub schedule_at: Option<DateTime<Utc>>,
}

/// A validated message request: the content plus the session it names, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInput {
    /// The `session_id` in the body; the caller resolves it to a device.
    pub session_id: Option<String>,
    /// The content to store.
    pub draft: MessageDraft,
}

/// An immediate send (`is_queue: false`, not scheduled after it was accepted at `accepted_at`):
/// the API answers after the send, and pacing does not delay it.
pub fn is_immediate_send(
    is_queue: bool,
    schedule_at: Option<chrono::NaiveDateTime>,
    accepted_at: chrono::NaiveDateTime,
) -> bool {
    !is_queue && schedule_at.is_none_or(|at| at <= accepted_at)
}

/// Validates a message body. With `Mode::Patch`, `stored` supplies every absent field.
pub fn validate_message(
    body: &Map<String, Value>,
    mode: Mode,
    stored: Option<&MessageDraft>,
    ctx: &ValidationContext,
) -> Result<MessageInput, ValidationErrors> {
    let base = if mode == Mode::Patch { stored } else { None };
    let mut r = FieldReader::new(body);

    let session_id = r.string("session_id", 64).into_option();

    let is_queue = match r.boolean("is_queue") {
        Field::Value(b) => b,
        _ => base.is_none_or(|d| d.is_queue),
    };

    let recipient = match r.string("recipient", 64) {
        Field::Value(p) => normalize_phone(&mut r, "recipient", &p, ctx),
        Field::Invalid => None,
        Field::Absent if base.is_some() => base.map(|d| d.recipient.clone()),
        _ => {
            r.required("recipient");
            None
        }
    };

    let message_type = match r.string("message_type", 32) {
        Field::Value(t) => match t.parse::<MessageType>() {
            Ok(t) => Some(t),
            Err(e) => {
                r.fail(
                    "message_type",
                    format!(
                        "The selected message type is invalid; use one of: {}.",
                        e.allowed
                    ),
                );
                None
            }
        },
        Field::Invalid => None,
        Field::Absent if base.is_some() => base.map(|d| d.message_type),
        _ => {
            r.required("message_type");
            None
        }
    };

    let message = r
        .string("message", MAX_MESSAGE_CHARS)
        .or_keep(base.and_then(|d| d.message.clone()));
    if message_type == Some(MessageType::Text) && message.is_none() && !r.errors.has("message") {
        r.fail(
            "message",
            "The message field is required when message type is text.",
        );
    }

    let calendar_field = r.string("calendar_type", 16);
    let calendar_type = match &calendar_field {
        Field::Value(c) => match c.parse::<CalendarType>() {
            Ok(c) => c,
            Err(e) => {
                r.fail(
                    "calendar_type",
                    format!(
                        "The selected calendar type is invalid; use one of: {}.",
                        e.allowed
                    ),
                );
                CalendarType::Masehi
            }
        },
        _ => base.map_or(CalendarType::Masehi, |d| d.calendar_type),
    };

    let schedule_at = match r.string("schedule_at", 64) {
        Field::Value(s) if !r.errors.has("calendar_type") => {
            match parse_schedule(&s, calendar_type, ctx.timezone) {
                Ok(t) => Some(t),
                Err(e) => {
                    r.fail("schedule_at", format!("The schedule at {e}."));
                    None
                }
            }
        }
        Field::Value(_) | Field::Invalid | Field::Null => None,
        Field::Absent => {
            let kept = base.and_then(|d| d.schedule_at);
            let calendar_changed = base.is_some_and(|d| d.calendar_type != calendar_type);
            if kept.is_some() && calendar_changed {
                r.fail(
                    "schedule_at",
                    "The schedule at field is required when calendar type changes.",
                );
            }
            kept
        }
    };

    // Media fields: only for media types, and then the URL is required.
    let url_field = r.string("file_url", MAX_URL);
    let mime_field = r.string("file_mimetype", 255);
    let name_field = r.string("file_filename", 255);
    let (mut file_url, mut file_mimetype, mut file_filename) = (None, None, None);
    if let Some(kind) = message_type.filter(|t| t.is_media()) {
        let url_changed = url_field.is_present();
        match url_field.or_keep(base.and_then(|d| d.file_url.clone())) {
            Some(url) => match file_meta_from_url(&url) {
                Ok(meta) => {
                    // A new URL re-derives name and type; an unchanged one keeps what is stored.
                    let (stored_mime, stored_name) = match base {
                        Some(d) if !url_changed => {
                            (d.file_mimetype.clone(), d.file_filename.clone())
                        }
                        _ => (None, None),
                    };
                    file_mimetype = mime_field.or_keep(stored_mime).or(Some(meta.mimetype));
                    file_filename = name_field.or_keep(stored_name).or(Some(meta.filename));
                    file_url = Some(meta.url);
                }
                Err(e) => r.fail("file_url", format!("The file url {e}.")),
            },
            None if !r.errors.has("file_url") => r.fail(
                "file_url",
                format!("The file url field is required when message type is {kind}."),
            ),
            None => {}
        }
        if let Some(m) = &file_mimetype {
            if !is_valid_mimetype(m) {
                r.fail(
                    "file_mimetype",
                    format!(
                        "The {} must look like type/subtype.",
                        label("file_mimetype")
                    ),
                );
            }
        }
    }

    let errors = std::mem::take(&mut r.errors);
    match (recipient, message_type) {
        (Some(recipient), Some(message_type)) if errors.is_empty() => Ok(MessageInput {
            session_id,
            draft: MessageDraft {
                is_queue,
                recipient,
                message_type,
                message,
                file_url,
                file_mimetype,
                file_filename,
                calendar_type,
                schedule_at,
            },
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_unqueued_unscheduled_messages_are_immediate() {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0)
            .unwrap()
            .naive_utc();
        let later = at + chrono::TimeDelta::seconds(60);
        assert!(is_immediate_send(false, None, at));
        assert!(
            is_immediate_send(false, Some(at), at),
            "a schedule already due"
        );
        assert!(
            !is_immediate_send(false, Some(later), at),
            "scheduled for later"
        );
        assert!(!is_immediate_send(true, None, at), "queued");
    }

    use super::*;
    use crate::time::format_api_timestamp;
    use serde_json::json;

    fn ctx() -> ValidationContext {
        ValidationContext {
            phones: crate::PhoneNormalizer::new("ID").unwrap(),
            timezone: chrono_tz::Asia::Jakarta,
        }
    }

    fn full(v: Value) -> Result<MessageInput, ValidationErrors> {
        validate_message(v.as_object().unwrap(), Mode::Full, None, &ctx())
    }

    #[test]
    fn reference_text_message_drops_file_url() {
        let input = full(json!({
            "session_id": "SESSION_ID",
            "is_queue": true,
            "recipient": "0811010010010",
            "message_type": "text",
            "message": "Welcome home",
            "file_url": "https://github.com/devlikeapro/waha/raw/core/examples/waha.jpg",
            "schedule_at": "2025-09-08 09:44:00"
        }))
        .unwrap();
        assert_eq!(input.session_id.as_deref(), Some("SESSION_ID"));
        assert_eq!(input.draft.recipient, "62811010010010");
        assert_eq!(input.draft.file_url, None);
        assert_eq!(input.draft.file_mimetype, None);
        assert_eq!(
            format_api_timestamp(&input.draft.schedule_at.unwrap()),
            "2025-09-08T02:44:00.000000Z"
        );
        assert_eq!(input.draft.calendar_type, CalendarType::Masehi);
    }

    #[test]
    fn media_needs_url_and_derives_file_meta() {
        let input = full(json!({
            "recipient": "62811010010010", "message_type": "image",
            "file_url": "https://github.com/devlikeapro/waha/raw/core/examples/waha.jpg"
        }))
        .unwrap();
        assert_eq!(input.draft.file_mimetype.as_deref(), Some("image/jpeg"));
        assert_eq!(input.draft.file_filename.as_deref(), Some("waha.jpg"));
        assert_eq!(input.draft.message, None);

        let errors =
            full(json!({"recipient": "62811010010010", "message_type": "video"})).unwrap_err();
        assert!(errors.has("file_url"));
        let errors = full(json!({
            "recipient": "62811010010010", "message_type": "file", "file_url": "javascript:alert(1)"
        }))
        .unwrap_err();
        assert!(errors.has("file_url"));
    }

    #[test]
    fn each_problem_is_named() {
        let errors = full(json!({
            "recipient": "nope", "message_type": "sticker", "is_queue": "yes",
            "schedule_at": "2025-02-30 10:00:00", "calendar_type": "julian"
        }))
        .unwrap_err();
        for f in ["recipient", "message_type", "is_queue", "calendar_type"] {
            assert!(errors.has(f), "{f}: {errors:?}");
        }
        let errors = full(json!({"message_type": "text"})).unwrap_err();
        assert!(errors.has("recipient") && errors.has("message"));
    }

    #[test]
    fn hijri_schedule() {
        let input = full(json!({
            "recipient": "0811010010010", "message_type": "text", "message": "Selamat Idul Fitri",
            "calendar_type": "hijriah", "schedule_at": "1447-10-01 08:00:00"
        }))
        .unwrap();
        assert_eq!(input.draft.calendar_type, CalendarType::Hijriah);
        assert_eq!(
            format_api_timestamp(&input.draft.schedule_at.unwrap()),
            "2026-03-20T01:00:00.000000Z"
        );
        let errors = full(json!({
            "recipient": "0811010010010", "message_type": "text", "message": "x",
            "calendar_type": "hijriah", "schedule_at": "1447-10-31 08:00:00"
        }))
        .unwrap_err();
        assert!(errors.has("schedule_at"));
    }

    #[test]
    fn patch_keeps_schedule_instant_and_type() {
        let stored = full(json!({
            "recipient": "0811010010010", "message_type": "text", "message": "x",
            "calendar_type": "hijriah", "schedule_at": "1447-10-01 08:00:00"
        }))
        .unwrap()
        .draft;
        let patch = json!({"message": "y"});
        let input = validate_message(
            patch.as_object().unwrap(),
            Mode::Patch,
            Some(&stored),
            &ctx(),
        )
        .unwrap();
        assert_eq!(input.draft.schedule_at, stored.schedule_at);
        assert_eq!(input.draft.message.as_deref(), Some("y"));
        let patch = json!({"calendar_type": "masehi"});
        assert!(validate_message(
            patch.as_object().unwrap(),
            Mode::Patch,
            Some(&stored),
            &ctx()
        )
        .unwrap_err()
        .has("schedule_at"));
    }
}

//! What happens when a contact writes to a device: the message is stored (once), the
//! integrator's `message` event is queued, and the device's automations answer — opt-out
//! keywords first, then the opening message, the auto-reply and the forward. Later, a
//! conversation that went silent gets its closing message.
//!
//! Every answer is an ordinary outbound message (validated like the API's, paced, tracked,
//! listed), marked with its `origin`. Loop guards: nothing answers the device's own messages,
//! groups, broadcasts, channels, a sender whose phone is unknown (an unresolved lid), the
//! device's own number or its forward number, and nothing but the confirmation answers a
//! contact who opted out.

use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};
use wapim_domain::automation::{self, AutomationTiming};
use wapim_domain::message::validate_message;
use wapim_domain::time::format_naive_utc;
use wapim_domain::validation::Mode;
use wapim_domain::{MessageOrigin, ValidationContext};
use wapim_store::devices::{self, DeviceRow};
use wapim_store::inbound::{self, InboundRow, NewInbound};
use wapim_store::messages::{self, MessageRow, NewMessage};
use wapim_store::{suppressions, webhooks, DbConn, StoreError};

/// What the automations need besides the database.
#[derive(Debug, Clone)]
pub struct Automations {
    /// How answers' recipients are read (the same rules as the API's).
    pub validation: ValidationContext,
    /// Silence and auto-reply windows.
    pub timing: AutomationTiming,
}

/// What receiving one message did.
#[derive(Debug, Clone)]
pub struct Received {
    /// The stored message.
    pub inbound: InboundRow,
    /// The automations' answers, in the order they were created.
    pub answers: Vec<MessageRow>,
    /// The sender opted out with it.
    pub opted_out: bool,
}

impl Automations {
    /// Stores `new` for `device`, queues its `message` event (with WAHA's `payload`) and runs
    /// the automations, all in the caller's transaction. `None` when the device has the message
    /// already (a replayed event: nothing happens twice).
    pub fn receive(
        &self,
        conn: &mut DbConn,
        device: &DeviceRow,
        new: &NewInbound,
        payload: &Value,
        now: NaiveDateTime,
    ) -> Result<Option<Received>, StoreError> {
        let Some(stored) = inbound::insert(conn, new)? else {
            return Ok(None);
        };
        webhooks::enqueue(
            conn,
            device.id,
            "message",
            inbound_data(&stored),
            Some(payload),
            now,
        )?;
        let mut received = Received {
            inbound: stored,
            answers: Vec::new(),
            opted_out: false,
        };
        let Some(sender) = received.inbound.sender.clone() else {
            return Ok(Some(received));
        };
        let forward_to = device
            .auto_forward_number
            .as_deref()
            .filter(|n| !n.is_empty());
        if received.inbound.is_group
            || sender == device.phone_number
            || forward_to == Some(sender.as_str())
        {
            return Ok(Some(received));
        }
        let text = received.inbound.message.clone();
        let keywords = automation::opt_out_keywords(device.opt_out_keywords.as_deref());
        let opting_out = !received.inbound.has_media
            && text
                .as_deref()
                .is_some_and(|t| automation::is_opt_out(t, &keywords));
        if opting_out {
            suppressions::add(conn, device.id, &sender, Some("opt-out keyword"), now)?;
            received.opted_out = true;
            if let Some(confirmation) = present(&device.opt_out_confirmation) {
                self.answer(
                    conn,
                    device,
                    &sender,
                    confirmation,
                    MessageOrigin::OptOutConfirmation,
                    now,
                    &mut received,
                )?;
            }
        } else if !suppressions::contains(conn, device.id, &sender)? {
            let at = received.inbound.sent_at.min(now);
            let closing = present(&device.closing_message).is_some();
            let reaction =
                inbound::touch_conversation(conn, device.id, &sender, at, &self.timing, closing)?;
            if reaction.opens {
                if let Some(opening) = present(&device.opening_message) {
                    self.answer(
                        conn,
                        device,
                        &sender,
                        opening,
                        MessageOrigin::OpeningMessage,
                        now,
                        &mut received,
                    )?;
                }
            }
            if reaction.auto_reply {
                if let Some(reply) = present(&device.auto_reply) {
                    self.answer(
                        conn,
                        device,
                        &sender,
                        reply,
                        MessageOrigin::AutoReply,
                        now,
                        &mut received,
                    )?;
                }
            }
        }
        if let Some(target) = forward_to {
            let media = received.inbound.has_media.then(|| {
                match received.inbound.media_filename.as_deref() {
                    Some(name) => format!("{}: {name}", received.inbound.message_type),
                    None => received.inbound.message_type.clone(),
                }
            });
            let heading = device.auto_forward.as_deref().unwrap_or_default();
            let body =
                automation::forward_text(heading, &sender, text.as_deref(), media.as_deref());
            self.answer(
                conn,
                device,
                target,
                &body,
                MessageOrigin::AutoForward,
                now,
                &mut received,
            )?;
        }
        Ok(Some(received))
    }

    /// Creates one answer through the API's validation; an answer the rules refuse (e.g. a
    /// forward number that is no longer a valid phone) is logged and skipped, never fatal.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &self,
        conn: &mut DbConn,
        device: &DeviceRow,
        recipient: &str,
        text: &str,
        origin: MessageOrigin,
        now: NaiveDateTime,
        received: &mut Received,
    ) -> Result<(), StoreError> {
        if let Some(row) =
            automation_message(conn, device, recipient, text, origin, &self.validation, now)?
        {
            received.answers.push(row);
        }
        Ok(())
    }

    /// Sends the closing messages due by `now` (up to `limit`): each conversation is taken
    /// once, and answered only if its device is live, still has a closing message and the
    /// contact did not opt out meanwhile. Returns how many were created.
    pub fn send_due_closings(
        &self,
        conn: &mut DbConn,
        now: NaiveDateTime,
        limit: i64,
    ) -> Result<usize, StoreError> {
        wapim_store::transaction(conn, |c| {
            let mut created = 0;
            for due in inbound::take_due_closings(c, now, limit)? {
                let device = match devices::find(c, due.device_id, false) {
                    Ok(device) => device,
                    Err(StoreError::NotFound) => continue,
                    Err(e) => return Err(e),
                };
                let Some(closing) = present(&device.closing_message) else {
                    continue;
                };
                if suppressions::contains(c, device.id, &due.contact)? {
                    continue;
                }
                let closing = closing.to_owned();
                if automation_message(
                    c,
                    &device,
                    &due.contact,
                    &closing,
                    MessageOrigin::ClosingMessage,
                    &self.validation,
                    now,
                )?
                .is_some()
                {
                    created += 1;
                }
            }
            Ok(created)
        })
    }
}

fn present(text: &Option<String>) -> Option<&str> {
    text.as_deref().filter(|t| !t.trim().is_empty())
}

/// An automation's outbound message: validated as `POST /api/messages` validates a text, and
/// stored as `pending` with its origin. `None` (logged) when validation refuses it.
fn automation_message(
    conn: &mut DbConn,
    device: &DeviceRow,
    recipient: &str,
    text: &str,
    origin: MessageOrigin,
    validation: &ValidationContext,
    now: NaiveDateTime,
) -> Result<Option<MessageRow>, StoreError> {
    let mut body = Map::new();
    body.insert("recipient".into(), json!(recipient));
    body.insert("message_type".into(), json!("text"));
    body.insert("message".into(), json!(text));
    body.insert("is_queue".into(), json!(true));
    let input = match validate_message(&body, Mode::Full, None, validation) {
        Ok(input) => input,
        Err(errors) => {
            tracing::warn!(
                device = device.id,
                origin = origin.as_str(),
                ?errors,
                "automation message refused by validation; not sent"
            );
            return Ok(None);
        }
    };
    let draft = &input.draft;
    let row = NewMessage {
        device_id: device.id,
        session_id: device.session_id.clone(),
        batch_id: None,
        fields: crate::messages::fields_of(draft),
        due_at: now,
        created_at: now,
        updated_at: now,
        traceparent: None,
        origin: origin.as_str(),
    };
    messages::insert(conn, &row).map(Some)
}

/// Wapim's view of an inbound message in the integrator's `message` event.
pub fn inbound_data(row: &InboundRow) -> Value {
    json!({
        "inbound_message_id": row.id,
        "device_id": row.device_id,
        "from": row.sender,
        "from_lid": row.sender_lid,
        "chat_id": row.chat_id,
        "is_group": row.is_group,
        "message_type": row.message_type,
        "message": row.message,
        "has_media": row.has_media,
        "media_url": row.media_url,
        "media_mimetype": row.media_mimetype,
        "media_filename": row.media_filename,
        "sent_at": format_naive_utc(&row.sent_at),
        "created_at": format_naive_utc(&row.created_at),
    })
}

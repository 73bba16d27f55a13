//! The rules of a device's automations, as pure functions over what the store knows of a
//! conversation: when a contact's message opens a conversation (opening message), when an
//! auto-reply is due, whether a message is an opt-out keyword, which chats automations may
//! answer at all (loop guards), and the text of a forward.

use chrono::{NaiveDateTime, TimeDelta};

/// The opt-out words a device answers to when it sets none (English and Indonesian).
pub const DEFAULT_OPT_OUT_KEYWORDS: &[&str] = &["STOP", "BERHENTI", "UNSUBSCRIBE"];

/// The longest opt-out keyword list and keyword a device may set.
pub const MAX_OPT_OUT_KEYWORDS: usize = 20;

/// What a device's automations remember of one contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversationState {
    /// When the current conversation opened.
    pub opened_at: NaiveDateTime,
    /// The contact's last message.
    pub last_inbound_at: NaiveDateTime,
    /// The last auto-reply to the contact.
    pub last_auto_reply_at: Option<NaiveDateTime>,
}

/// The automations' timing (settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutomationTiming {
    /// Silence after which a conversation is over (closing message; the next message opens a
    /// new one).
    pub silence: TimeDelta,
    /// At most one auto-reply per contact within this window.
    pub auto_reply_window: TimeDelta,
}

/// What a contact's message at `at` does to its conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaction {
    /// It opens a conversation: the first message, or the first after the silence.
    pub opens: bool,
    /// An auto-reply is due (none within the window).
    pub auto_reply: bool,
    /// The conversation after it.
    pub next: ConversationState,
}

/// How a contact's message at `at` changes `before` (`None`: never wrote before).
pub fn react(
    before: Option<&ConversationState>,
    at: NaiveDateTime,
    timing: &AutomationTiming,
) -> Reaction {
    let opens = before.is_none_or(|c| at - c.last_inbound_at >= timing.silence);
    let last_reply = before.and_then(|c| c.last_auto_reply_at);
    let auto_reply = last_reply.is_none_or(|r| at - r >= timing.auto_reply_window);
    Reaction {
        opens,
        auto_reply,
        next: ConversationState {
            opened_at: match before {
                Some(c) if !opens => c.opened_at,
                _ => at,
            },
            last_inbound_at: before.map_or(at, |c| c.last_inbound_at.max(at)),
            last_auto_reply_at: if auto_reply { Some(at) } else { last_reply },
        },
    }
}

/// Whether `text` is exactly one of `keywords` (trimmed, case-insensitive, a trailing `.` or
/// `!` ignored): "stop" opts out, "please stop sending" does not.
pub fn is_opt_out(text: &str, keywords: &[String]) -> bool {
    let word = text.trim().trim_end_matches(['.', '!']).trim();
    !word.is_empty() && keywords.iter().any(|k| k.trim().eq_ignore_ascii_case(word))
}

/// The device's keywords: its own list (a JSON array of strings) or the defaults.
pub fn opt_out_keywords(stored: Option<&str>) -> Vec<String> {
    stored
        .and_then(|s| serde_json::from_str::<Vec<String>>(s).ok())
        .unwrap_or_else(|| {
            DEFAULT_OPT_OUT_KEYWORDS
                .iter()
                .map(|k| (*k).to_owned())
                .collect()
        })
}

/// Who wrote, as a WhatsApp chat id says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatKind {
    /// A person with a phone number (`…@c.us`, `…@s.whatsapp.net`).
    Phone,
    /// A person behind a hidden-number id (`…@lid`).
    Lid,
    /// A group (`…@g.us`).
    Group,
    /// Status updates and broadcast lists (`status@broadcast`, `…@broadcast`).
    Broadcast,
    /// Channels (`…@newsletter`) and anything else.
    Other,
}

/// The kind of the chat id `chat_id`.
pub fn chat_kind(chat_id: &str) -> ChatKind {
    match chat_id.rsplit_once('@').map(|(_, domain)| domain) {
        Some("c.us" | "s.whatsapp.net") => ChatKind::Phone,
        Some("lid") => ChatKind::Lid,
        Some("g.us") => ChatKind::Group,
        Some("broadcast") => ChatKind::Broadcast,
        _ => ChatKind::Other,
    }
}

/// The digits of a phone chat id (`62811…@c.us` → `62811…`); `None` for any other kind (a lid's
/// digits are not a phone number).
pub fn phone_of_chat(chat_id: &str) -> Option<String> {
    if chat_kind(chat_id) != ChatKind::Phone {
        return None;
    }
    let user = chat_id.split('@').next()?;
    // `62811…:12@s.whatsapp.net` names one of the account's devices.
    let user = user.split(':').next()?;
    (!user.is_empty() && user.len() <= 20 && user.bytes().all(|b| b.is_ascii_digit()))
        .then(|| user.to_owned())
}

/// The text of a forward: the device's heading, who wrote, and what they wrote (or which media).
pub fn forward_text(
    heading: &str,
    sender: &str,
    text: Option<&str>,
    media: Option<&str>,
) -> String {
    let mut out = String::new();
    if !heading.trim().is_empty() {
        out.push_str(heading.trim());
        out.push('\n');
    }
    out.push_str("From: +");
    out.push_str(sender);
    if let Some(media) = media {
        out.push_str("\n[");
        out.push_str(media);
        out.push(']');
    }
    if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
        out.push('\n');
        out.push_str(text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(hour: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 26)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            + TimeDelta::hours(i64::from(hour))
    }

    const TIMING: AutomationTiming = AutomationTiming {
        silence: TimeDelta::hours(24),
        auto_reply_window: TimeDelta::hours(6),
    };

    #[test]
    fn the_first_message_opens_and_is_answered_later_ones_within_the_windows_are_not() {
        let first = react(None, at(0), &TIMING);
        assert!(first.opens && first.auto_reply);
        let second = react(Some(&first.next), at(1), &TIMING);
        assert!(!second.opens && !second.auto_reply);
        assert_eq!(second.next.opened_at, at(0));
        // Past the auto-reply window, still inside the conversation.
        let third = react(Some(&second.next), at(7), &TIMING);
        assert!(!third.opens && third.auto_reply);
        // After a day of silence, a new conversation.
        let fourth = react(Some(&third.next), at(31), &TIMING);
        assert!(fourth.opens && fourth.auto_reply);
        assert_eq!(fourth.next.opened_at, at(31));
        // A late, out-of-order event never moves the last message back.
        let late = react(Some(&fourth.next), at(30), &TIMING);
        assert_eq!(late.next.last_inbound_at, at(31));
    }

    #[test]
    fn opt_out_is_the_whole_message_in_any_case() {
        let defaults = opt_out_keywords(None);
        assert!(is_opt_out("stop", &defaults));
        assert!(is_opt_out("  Berhenti! ", &defaults));
        assert!(is_opt_out("UNSUBSCRIBE.", &defaults));
        assert!(!is_opt_out("please stop", &defaults));
        assert!(!is_opt_out("", &defaults));
        let own = opt_out_keywords(Some(r#"["cukup"]"#));
        assert!(is_opt_out("Cukup", &own) && !is_opt_out("stop", &own));
    }

    #[test]
    fn only_phone_chats_give_phone_numbers() {
        assert_eq!(
            phone_of_chat("6281100000001@c.us").as_deref(),
            Some("6281100000001")
        );
        assert_eq!(
            phone_of_chat("6281100000001:3@s.whatsapp.net").as_deref(),
            Some("6281100000001")
        );
        assert_eq!(phone_of_chat("123456789012345@lid"), None);
        assert_eq!(phone_of_chat("1203630@g.us"), None);
        assert_eq!(chat_kind("status@broadcast"), ChatKind::Broadcast);
        assert_eq!(chat_kind("1203@newsletter"), ChatKind::Other);
    }

    #[test]
    fn forwards_name_the_sender_and_carry_the_text_or_media() {
        assert_eq!(
            forward_text("Hei", "6281100000001", Some("halo"), None),
            "Hei\nFrom: +6281100000001\nhalo"
        );
        assert_eq!(
            forward_text("", "6281100000001", None, Some("image: a.jpg")),
            "From: +6281100000001\n[image: a.jpg]"
        );
    }
}

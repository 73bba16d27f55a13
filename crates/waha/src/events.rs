//! The payloads of the events WAHA posts that Wapim reads beyond acks and statuses: an inbound
//! `message`, in the shapes the engines give it.

use serde_json::Value;

/// A contact's message, as WAHA's `message` event carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// WhatsApp's serialized id (`false_62811…@c.us_3EB0…`).
    pub id: String,
    /// The chat it came from (`from`): `…@c.us`, `…@lid`, `…@g.us`, `status@broadcast`.
    pub from: String,
    /// In a group, who wrote it.
    pub participant: Option<String>,
    /// Sent by the device's own account (from the phone, or through the API).
    pub from_me: bool,
    /// The text, or a media caption.
    pub body: Option<String>,
    /// Unix seconds.
    pub timestamp: i64,
    /// Its media, when it has some.
    pub media: Option<InboundMedia>,
}

/// An inbound message's media (WAHA's URL needs the API key to fetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMedia {
    /// Where WAHA serves the file, if it downloaded it.
    pub url: Option<String>,
    /// MIME type.
    pub mimetype: Option<String>,
    /// File name, for documents.
    pub filename: Option<String>,
}

impl InboundMedia {
    /// Wapim's message type for it: `image`, `video`, `audio` or `file`.
    pub fn message_type(&self) -> &'static str {
        match self.mimetype.as_deref().and_then(|m| m.split('/').next()) {
            Some("image") => "image",
            Some("video") => "video",
            Some("audio") => "audio",
            _ => "file",
        }
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl InboundMessage {
    /// Reads a `message` payload; `None` when it lacks an id or a sender.
    pub fn from_payload(payload: &Value) -> Option<Self> {
        let id = text(payload.get("id"))
            .or_else(|| text(payload.get("id").and_then(|i| i.get("_serialized"))))?;
        let from = text(payload.get("from"))?;
        let has_media = payload
            .get("hasMedia")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let media = payload.get("media").filter(|m| m.is_object());
        let media = (has_media || media.is_some()).then(|| InboundMedia {
            url: text(media.and_then(|m| m.get("url"))),
            mimetype: text(media.and_then(|m| m.get("mimetype"))),
            filename: text(media.and_then(|m| m.get("filename"))),
        });
        Some(Self {
            id,
            from,
            participant: text(payload.get("participant")),
            from_me: payload
                .get("fromMe")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            body: text(payload.get("body")),
            timestamp: payload
                .get("timestamp")
                .and_then(Value::as_i64)
                .unwrap_or_default(),
            media,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_and_media_messages_are_read() {
        let text = InboundMessage::from_payload(&json!({
            "id": "false_6281100000001@c.us_3EB0AA", "timestamp": 1764000000,
            "from": "6281100000001@c.us", "fromMe": false, "body": "halo", "hasMedia": false
        }))
        .unwrap();
        assert_eq!(text.body.as_deref(), Some("halo"));
        assert!(text.media.is_none() && !text.from_me);
        let image = InboundMessage::from_payload(&json!({
            "id": {"_serialized": "false_1@lid_3EB0BB"}, "timestamp": 1764000001,
            "from": "123@lid", "fromMe": false, "body": "", "hasMedia": true,
            "media": {"url": "http://127.0.0.1:3000/api/files/x.jpg", "mimetype": "image/jpeg", "filename": null}
        }))
        .unwrap();
        assert_eq!(image.id, "false_1@lid_3EB0BB");
        assert_eq!(image.body, None);
        assert_eq!(image.media.unwrap().message_type(), "image");
        assert!(InboundMessage::from_payload(&json!({"body": "no id"})).is_none());
    }
}

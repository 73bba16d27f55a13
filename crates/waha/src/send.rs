//! What Wapim sends (one variant per WAHA send endpoint) and how the three engines' answers are
//! read back into one shape.

use serde_json::{json, Map, Value};

use crate::WahaError;

/// A media file WAHA downloads from a URL (WAHA's `RemoteFile`): Wapim never uploads bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Where WAHA fetches the file.
    pub url: String,
    /// The file's MIME type, e.g. `image/jpeg`.
    pub mimetype: String,
    /// The name shown to the recipient (documents, videos).
    pub filename: Option<String>,
}

/// One message to send, by kind; the variant picks the WAHA endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendRequest {
    /// `POST /api/sendText`.
    Text {
        /// Recipient, `<digits>@c.us` (see [`chat_id`]).
        chat_id: String,
        /// The text.
        text: String,
        /// A pre-generated id from [`crate::WahaClient::new_message_id`], so the message can be
        /// looked up after a crash (declared on `sendText` only).
        id: Option<String>,
    },
    /// `POST /api/sendImage`.
    Image {
        /// Recipient.
        chat_id: String,
        /// The image.
        file: RemoteFile,
        /// Text under the image.
        caption: Option<String>,
    },
    /// `POST /api/sendFile` (a document).
    File {
        /// Recipient.
        chat_id: String,
        /// The document.
        file: RemoteFile,
        /// Text under the document.
        caption: Option<String>,
    },
    /// `POST /api/sendVideo`.
    Video {
        /// Recipient.
        chat_id: String,
        /// The video.
        file: RemoteFile,
        /// Text under the video.
        caption: Option<String>,
    },
    /// `POST /api/sendVoice` (a voice note).
    Voice {
        /// Recipient.
        chat_id: String,
        /// The audio.
        file: RemoteFile,
    },
}

impl SendRequest {
    /// The recipient of any kind of send.
    pub fn chat_id(&self) -> &str {
        match self {
            Self::Text { chat_id, .. }
            | Self::Image { chat_id, .. }
            | Self::File { chat_id, .. }
            | Self::Video { chat_id, .. }
            | Self::Voice { chat_id, .. } => chat_id,
        }
    }

    /// WAHA's endpoint for this kind, e.g. `sendText`.
    pub fn endpoint(&self) -> &'static str {
        match self {
            Self::Text { .. } => "sendText",
            Self::Image { .. } => "sendImage",
            Self::File { .. } => "sendFile",
            Self::Video { .. } => "sendVideo",
            Self::Voice { .. } => "sendVoice",
        }
    }

    /// The JSON body WAHA's OpenAPI document declares for this endpoint. Optional fields are
    /// omitted rather than sent as `null`; only declared fields are sent (WAHA strips others).
    pub fn body(&self, session: &str) -> Value {
        let mut body = Map::new();
        body.insert("session".into(), json!(session));
        body.insert("chatId".into(), json!(self.chat_id()));
        match self {
            Self::Text { text, id, .. } => {
                body.insert("text".into(), json!(text));
                if let Some(id) = id {
                    body.insert("id".into(), json!(id));
                }
            }
            Self::Image { file, caption, .. } | Self::File { file, caption, .. } => {
                body.insert("file".into(), remote_file(file, file.filename.clone()));
                insert_caption(&mut body, caption);
            }
            Self::Video { file, caption, .. } => {
                // `VideoRemoteFile` requires a filename.
                let filename = file
                    .filename
                    .clone()
                    .or_else(|| filename_from_url(&file.url))
                    .unwrap_or_else(|| "video.mp4".to_owned());
                body.insert("file".into(), remote_file(file, Some(filename)));
                // WhatsApp plays MP4 (H.264/AAC); anything else goes through WAHA's ffmpeg.
                body.insert("convert".into(), json!(file.mimetype != "video/mp4"));
                body.insert("asNote".into(), json!(false));
                insert_caption(&mut body, caption);
            }
            Self::Voice { file, .. } => {
                // `VoiceRemoteFile` declares no filename.
                body.insert("file".into(), remote_file(file, None));
                // Voice notes must be OGG/Opus; anything else goes through WAHA's ffmpeg.
                let mime = file.mimetype.to_ascii_lowercase();
                let is_opus = mime.starts_with("audio/ogg") && mime.contains("opus");
                body.insert("convert".into(), json!(!is_opus));
            }
        }
        Value::Object(body)
    }
}

fn remote_file(file: &RemoteFile, filename: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert("mimetype".into(), json!(file.mimetype));
    if let Some(name) = filename {
        out.insert("filename".into(), json!(name));
    }
    out.insert("url".into(), json!(file.url));
    Value::Object(out)
}

fn insert_caption(body: &mut Map<String, Value>, caption: &Option<String>) {
    if let Some(caption) = caption {
        body.insert("caption".into(), json!(caption));
    }
}

/// The URL's last path segment when it is a plain file name (`clip.mp4`).
fn filename_from_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let last = parsed.path_segments()?.next_back()?;
    let plain = last
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    (plain && last.contains('.') && !last.starts_with('.')).then(|| last.to_owned())
}

/// A message WAHA accepted, with its ids read from whichever engine answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The full serialized id, `true_<chat>_<msgid>`: what acks and lookups carry.
    pub id: String,
    /// The bare WhatsApp id (`3EB0…`), when it could be read.
    pub message_id: Option<String>,
    /// WAHA's JSON as returned, kept for the message's record.
    pub raw: Value,
}

impl Sent {
    /// Reads a send response of any engine: GOWS (flat string `id`), WEBJS (`id._serialized`)
    /// or NOWEB (`key.{remoteJid,fromMe,id}`).
    pub fn from_response(raw: Value) -> Result<Self, WahaError> {
        let (id, bare) = match (raw.get("id"), raw.get("key")) {
            // GOWS (and anything else that already serialises the id).
            (Some(Value::String(id)), _) => (id.clone(), None),
            // WEBJS: whatsapp-web.js's MessageId object.
            (Some(Value::Object(id)), _) => {
                let serialized =
                    id.get("_serialized")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            WahaError::InvalidResponse(format!(
                                "send response id has no _serialized: {raw}"
                            ))
                        })?;
                let bare = id.get("id").and_then(Value::as_str).map(str::to_owned);
                (serialized.to_owned(), bare)
            }
            // NOWEB: Baileys' WAMessageKey.
            (_, Some(Value::Object(key))) => {
                let jid = key.get("remoteJid").and_then(Value::as_str);
                let msg = key.get("id").and_then(Value::as_str);
                let (Some(jid), Some(msg)) = (jid, msg) else {
                    return Err(WahaError::InvalidResponse(format!(
                        "send response key lacks remoteJid or id: {raw}"
                    )));
                };
                let from_me = key.get("fromMe").and_then(Value::as_bool).unwrap_or(true);
                let chat = jid.replace("@s.whatsapp.net", "@c.us");
                (format!("{from_me}_{chat}_{msg}"), Some(msg.to_owned()))
            }
            _ => {
                return Err(WahaError::InvalidResponse(format!(
                    "send response has neither id nor key: {raw}"
                )))
            }
        };
        if id.is_empty() {
            return Err(WahaError::InvalidResponse(format!(
                "send response has an empty id: {raw}"
            )));
        }
        let message_id = bare
            .filter(|b| !b.is_empty())
            .or_else(|| bare_message_id(&id).map(str::to_owned));
        Ok(Self {
            id,
            message_id,
            raw,
        })
    }
}

/// The bare WhatsApp id inside a serialized id `{fromMe}_{chatId}_{msgId}[_{participant}]`;
/// `None` when `serialized` does not have that shape.
pub fn bare_message_id(serialized: &str) -> Option<&str> {
    let mut parts = serialized.splitn(4, '_');
    let from_me = parts.next()?;
    if from_me != "true" && from_me != "false" {
        return None;
    }
    let chat = parts.next()?;
    if !chat.contains('@') {
        return None;
    }
    parts.next().filter(|id| !id.is_empty())
}

/// The chat id of a phone number in international digits: `62811…` → `62811…@c.us`.
pub fn chat_id(phone_digits: &str) -> String {
    let digits: String = phone_digits.chars().filter(char::is_ascii_digit).collect();
    format!("{digits}@c.us")
}

/// The chat touches that make a send look like a person's (WAHA's "how to avoid blocking").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatAction {
    /// Mark the chat's messages read (`sendSeen`).
    Seen,
    /// Show "typing…" (`startTyping`).
    StartTyping,
    /// Stop showing it (`stopTyping`).
    StopTyping,
}

impl ChatAction {
    /// The endpoint under `/api/`.
    pub fn endpoint(self) -> &'static str {
        match self {
            ChatAction::Seen => "sendSeen",
            ChatAction::StartTyping => "startTyping",
            ChatAction::StopTyping => "stopTyping",
        }
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::json;

use crate::client::parse_session_info;
use crate::{bare_message_id, chat_id, RemoteFile, SendRequest, Sent, WahaClient, WahaError};

const CHAT: &str = "62811010010010@c.us";

#[test]
fn gows_send_response_is_a_flat_string_id() {
    let raw = json!({"id": "true_62811010010010@c.us_3EB0A1B2C3D4E5F6A7B8", "_data": {"Info": {}}});
    let sent = Sent::from_response(raw.clone()).unwrap();
    assert_eq!(sent.id, "true_62811010010010@c.us_3EB0A1B2C3D4E5F6A7B8");
    assert_eq!(sent.message_id.as_deref(), Some("3EB0A1B2C3D4E5F6A7B8"));
    assert_eq!(sent.raw, raw);
}

#[test]
fn webjs_send_response_has_a_serialized_id_object() {
    let raw = json!({
        "id": {"fromMe": true, "remote": CHAT, "id": "3EB0FFEE", "_serialized": "true_62811010010010@c.us_3EB0FFEE"},
        "ack": 0, "body": "hi", "type": "chat"
    });
    let sent = Sent::from_response(raw).unwrap();
    assert_eq!(sent.id, "true_62811010010010@c.us_3EB0FFEE");
    assert_eq!(sent.message_id.as_deref(), Some("3EB0FFEE"));
}

#[test]
fn webjs_without_bare_id_falls_back_to_the_serialized_one() {
    let raw = json!({"id": {"_serialized": "true_62811010010010@c.us_ABC123"}});
    let sent = Sent::from_response(raw).unwrap();
    assert_eq!(sent.message_id.as_deref(), Some("ABC123"));
}

#[test]
fn noweb_send_response_is_a_key_with_a_whatsapp_net_jid() {
    let raw = json!({
        "key": {"remoteJid": "62811010010010@s.whatsapp.net", "fromMe": true, "id": "BAE5F00D"},
        "message": {"extendedTextMessage": {"text": "hi"}},
        "messageTimestamp": "1700000000", "status": "PENDING"
    });
    let sent = Sent::from_response(raw).unwrap();
    assert_eq!(sent.id, "true_62811010010010@c.us_BAE5F00D");
    assert_eq!(sent.message_id.as_deref(), Some("BAE5F00D"));
}

#[test]
fn noweb_group_jid_is_kept() {
    let raw = json!({"key": {"remoteJid": "1203630@g.us", "fromMe": true, "id": "BAE5"}});
    assert_eq!(
        Sent::from_response(raw).unwrap().id,
        "true_1203630@g.us_BAE5"
    );
}

#[test]
fn unreadable_send_responses_are_invalid() {
    for raw in [
        json!({}),
        json!({"id": ""}),
        json!({"id": {"fromMe": true}}),
        json!({"key": {"fromMe": true}}),
        json!([1, 2]),
        json!("true_x@c.us_1"),
    ] {
        let err = Sent::from_response(raw.clone()).unwrap_err();
        assert!(
            matches!(err, WahaError::InvalidResponse(_)),
            "{raw}: {err:?}"
        );
        assert!(!err.is_retryable());
    }
}

#[test]
fn bare_ids_come_out_of_serialized_ids() {
    assert_eq!(bare_message_id("true_62811@c.us_3EB0"), Some("3EB0"));
    assert_eq!(
        bare_message_id("false_1203@g.us_3EB0_62811@c.us"),
        Some("3EB0")
    );
    assert_eq!(bare_message_id("3EB0"), None);
    assert_eq!(bare_message_id("true_62811@c.us_"), None);
    assert_eq!(bare_message_id("maybe_62811@c.us_3EB0"), None);
}

#[test]
fn chat_ids_are_digits_at_c_us() {
    assert_eq!(chat_id("62811010010010"), "62811010010010@c.us");
    assert_eq!(chat_id("+62 811-0100"), "628110100@c.us");
}

fn status(code: u16, body: serde_json::Value) -> WahaError {
    WahaError::from_status(code, body)
}

#[test]
fn errors_are_classified_by_status_and_body() {
    assert!(matches!(
        status(401, json!({"message": "Unauthorized", "statusCode": 401})),
        WahaError::Unauthorized
    ));
    let not_found = status(
        404,
        json!({"statusCode": 404, "message": "We didn't find a session with name 'x'."}),
    );
    assert!(matches!(not_found, WahaError::SessionNotFound { .. }));
    assert!(not_found.body().is_some());

    let not_working = status(
        422,
        json!({"error": "Session status is not as expected. Try again later or restart the session",
               "session": "x", "status": "SCAN_QR_CODE", "expected": ["WORKING"]}),
    );
    match &not_working {
        WahaError::SessionNotWorking { status, .. } => {
            assert_eq!(status.as_deref(), Some("SCAN_QR_CODE"))
        }
        other => panic!("{other:?}"),
    }
    assert!(!not_working.is_retryable());

    let other_422 = status(
        422,
        json!({"statusCode": 422, "message": "The method is not implemented by 'WEBJS' engine."}),
    );
    assert!(matches!(other_422, WahaError::Rejected { status: 422, .. }));

    let timelock = status(
        500,
        json!({"statusCode": 500, "exception": {"message": "2 UNKNOWN: server returned error 463", "code": 2}}),
    );
    assert!(matches!(timelock, WahaError::ReachOutTimelock { .. }));
    assert!(!timelock.is_retryable());

    let server = status(
        500,
        json!({"statusCode": 500, "exception": {"message": "boom"}}),
    );
    assert!(matches!(server, WahaError::Server { status: 500, .. }));
    assert!(server.is_retryable());
    assert!(status(503, json!("Service Unavailable")).is_retryable());

    let bad = status(
        400,
        json!({"statusCode": 400, "message": ["chatId should not be empty"], "error": "Bad Request"}),
    );
    assert!(matches!(bad, WahaError::Rejected { status: 400, .. }));
    assert!(!bad.is_retryable());

    assert!(WahaError::Timeout.is_retryable());
    assert!(WahaError::Connect("refused".into()).is_retryable());
    assert!(!WahaError::Unauthorized.is_retryable());
    assert!(WahaError::Timeout.body().is_none());
}

#[test]
fn session_404s_are_told_apart_from_missing_messages() {
    use crate::error::is_session_not_found;
    assert!(is_session_not_found(
        &json!({"message": "We didn't find a session with name 'x'."})
    ));
    assert!(is_session_not_found(
        &json!({"message": "Session not found"})
    ));
    assert!(!is_session_not_found(
        &json!({"message": "Message not found"})
    ));
    assert!(!is_session_not_found(&json!("Not Found")));
    assert!(!is_session_not_found(
        &json!({"message": "Cannot GET /api/session-1/chats/x/messages/y"})
    ));
}

#[test]
fn send_bodies_follow_wahas_request_schemas() {
    let text = SendRequest::Text {
        chat_id: CHAT.into(),
        text: "hi".into(),
        id: Some("3EB0AA".into()),
    };
    assert_eq!(text.endpoint(), "sendText");
    assert_eq!(
        text.body("dev"),
        json!({"session": "dev", "chatId": CHAT, "text": "hi", "id": "3EB0AA"})
    );
    let text = SendRequest::Text {
        chat_id: CHAT.into(),
        text: "hi".into(),
        id: None,
    };
    assert_eq!(
        text.body("dev"),
        json!({"session": "dev", "chatId": CHAT, "text": "hi"})
    );

    let file = |mimetype: &str, filename: Option<&str>, url: &str| RemoteFile {
        url: url.into(),
        mimetype: mimetype.into(),
        filename: filename.map(str::to_owned),
    };
    let image = SendRequest::Image {
        chat_id: CHAT.into(),
        file: file("image/jpeg", None, "http://127.0.0.1:9/a.jpg"),
        caption: Some("look".into()),
    };
    assert_eq!(
        image.body("dev"),
        json!({"session": "dev", "chatId": CHAT, "file": {"mimetype": "image/jpeg", "url": "http://127.0.0.1:9/a.jpg"}, "caption": "look"})
    );
    let doc = SendRequest::File {
        chat_id: CHAT.into(),
        file: file("application/pdf", Some("a.pdf"), "http://127.0.0.1:9/x"),
        caption: None,
    };
    assert_eq!(doc.endpoint(), "sendFile");
    assert_eq!(doc.body("dev")["file"]["filename"], "a.pdf");
    assert!(doc.body("dev").get("caption").is_none());

    let video = SendRequest::Video {
        chat_id: CHAT.into(),
        file: file("video/mp4", None, "http://127.0.0.1:9/media/clip.mp4?sig=1"),
        caption: None,
    };
    let body = video.body("dev");
    assert_eq!(body["file"]["filename"], "clip.mp4");
    assert_eq!(body["convert"], false);
    assert_eq!(body["asNote"], false);
    let video = SendRequest::Video {
        chat_id: CHAT.into(),
        file: file("video/quicktime", None, "http://127.0.0.1:9/v/123"),
        caption: None,
    };
    assert_eq!(video.body("dev")["file"]["filename"], "video.mp4");
    assert_eq!(video.body("dev")["convert"], true);

    let voice = SendRequest::Voice {
        chat_id: CHAT.into(),
        file: file(
            "audio/ogg; codecs=opus",
            Some("v.ogg"),
            "http://127.0.0.1:9/v.ogg",
        ),
    };
    assert_eq!(
        voice.body("dev"),
        json!({"session": "dev", "chatId": CHAT, "file": {"mimetype": "audio/ogg; codecs=opus", "url": "http://127.0.0.1:9/v.ogg"}, "convert": false})
    );
    let voice = SendRequest::Voice {
        chat_id: CHAT.into(),
        file: file("audio/mpeg", None, "http://127.0.0.1:9/v.mp3"),
    };
    assert_eq!(voice.body("dev")["convert"], true);
}

#[test]
fn session_info_takes_the_engine_as_a_string_or_an_object() {
    let info = parse_session_info(
        &json!({"name": "a", "status": "WORKING", "engine": {"engine": "GOWS"}}),
    )
    .unwrap();
    assert_eq!(info.engine.as_deref(), Some("GOWS"));
    let info =
        parse_session_info(&json!({"name": "a", "status": "PASSKEY_REQUIRED", "engine": "NOWEB"}))
            .unwrap();
    assert_eq!(
        (info.status.as_str(), info.engine.as_deref()),
        ("PASSKEY_REQUIRED", Some("NOWEB"))
    );
    let info = parse_session_info(&json!({"name": "a", "status": "STOPPED"})).unwrap();
    assert_eq!(info.engine, None);
    assert!(parse_session_info(&json!({"name": "a"})).is_err());
}

#[test]
fn base_urls_are_checked() {
    let t = std::time::Duration::from_secs(1);
    assert!(WahaClient::new("http://127.0.0.1:3000", None, t).is_ok());
    assert!(WahaClient::new("https://waha.internal/prefix", Some("k".into()), t).is_ok());
    assert!(matches!(
        WahaClient::new("not a url", None, t),
        Err(WahaError::Connect(_))
    ));
    assert!(matches!(
        WahaClient::new("ftp://h", None, t),
        Err(WahaError::Connect(_))
    ));
    assert!(matches!(
        WahaClient::new("http://127.0.0.1:3000", Some("bad\nkey".into()), t),
        Err(WahaError::Connect(_))
    ));
}

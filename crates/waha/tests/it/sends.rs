//! Sends of every kind on every engine, pre-generated ids and message lookups.

use wapim_waha::{RemoteFile, SendRequest};
use wapim_waha_sim::{Engine, SendKind};

use crate::helpers::{assert_no_violations, client, working_sim, CHAT};

fn file(url: &str, mimetype: &str, filename: Option<&str>) -> RemoteFile {
    RemoteFile {
        url: url.into(),
        mimetype: mimetype.into(),
        filename: filename.map(str::to_owned),
    }
}

fn every_kind() -> Vec<(SendKind, SendRequest)> {
    let chat_id = CHAT.to_owned();
    vec![
        (
            SendKind::Text,
            SendRequest::Text {
                chat_id: chat_id.clone(),
                text: "Welcome home".into(),
                id: None,
            },
        ),
        (
            SendKind::Image,
            SendRequest::Image {
                chat_id: chat_id.clone(),
                file: file("http://127.0.0.1:9/a.jpg", "image/jpeg", None),
                caption: Some("a picture".into()),
            },
        ),
        (
            SendKind::File,
            SendRequest::File {
                chat_id: chat_id.clone(),
                file: file(
                    "http://127.0.0.1:9/i.pdf",
                    "application/pdf",
                    Some("invoice.pdf"),
                ),
                caption: None,
            },
        ),
        (
            SendKind::Video,
            SendRequest::Video {
                chat_id: chat_id.clone(),
                file: file("http://127.0.0.1:9/v.mp4", "video/mp4", None),
                caption: Some("a clip".into()),
            },
        ),
        (
            SendKind::Voice,
            SendRequest::Voice {
                chat_id,
                file: file("http://127.0.0.1:9/v.ogg", "audio/ogg; codecs=opus", None),
            },
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_on_every_engine_is_sent_once_and_follows_wahas_api() {
    for engine in [Engine::Gows, Engine::Noweb, Engine::Webjs] {
        let sim = working_sim(engine).await;
        let waha = client(&sim);
        for (kind, request) in every_kind() {
            let sent = waha
                .send("dev", &request)
                .await
                .unwrap_or_else(|e| panic!("{engine} {kind:?}: {e}"));
            let recorded: Vec<_> = sim
                .sends()
                .into_iter()
                .filter(|s| s.serialized_id == sent.id)
                .collect();
            assert_eq!(recorded.len(), 1, "{engine} {kind:?} recorded once");
            let recorded = &recorded[0];
            assert_eq!(recorded.kind, kind);
            assert_eq!(recorded.session, "dev");
            assert_eq!(recorded.chat_id, CHAT);
            assert_eq!(
                sent.id,
                format!("true_{CHAT}_{}", recorded.message_id),
                "{engine} {kind:?}"
            );
            assert_eq!(
                sent.message_id.as_deref(),
                Some(recorded.message_id.as_str())
            );
            assert!(sent.raw.is_object());
            // The engine's own response shape came back, and was read.
            match engine {
                Engine::Gows => assert!(sent.raw["id"].is_string()),
                Engine::Webjs => assert!(sent.raw["id"]["_serialized"].is_string()),
                Engine::Noweb => assert!(sent.raw["key"]["remoteJid"]
                    .as_str()
                    .unwrap()
                    .ends_with("@s.whatsapp.net")),
            }
        }
        assert_eq!(sim.sends().len(), 5);
        assert_no_violations(&sim);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_generated_id_becomes_the_message_id_and_the_message_can_be_found() {
    for engine in [Engine::Gows, Engine::Noweb] {
        let sim = working_sim(engine).await;
        let waha = client(&sim);
        let id = waha.new_message_id("dev").await.unwrap();
        assert!(!id.is_empty());
        let request = SendRequest::Text {
            chat_id: CHAT.into(),
            text: "with my id".into(),
            id: Some(id.clone()),
        };
        let sent = waha.send("dev", &request).await.unwrap();
        assert_eq!(sent.message_id.as_deref(), Some(id.as_str()));
        assert_eq!(sim.sends()[0].message_id, id);
        assert_eq!(sim.sends()[0].body["id"], id.as_str());

        let by_full = waha
            .find_message("dev", CHAT, &sent.id)
            .await
            .unwrap()
            .expect("found by full id");
        assert_eq!(by_full["id"], sent.id.as_str());
        assert_eq!(by_full["body"], "with my id");
        let by_bare = waha
            .find_message("dev", CHAT, &id)
            .await
            .unwrap()
            .expect("found by bare id");
        assert_eq!(by_bare["id"], sent.id.as_str());
        assert_no_violations(&sim);
    }
}

// The simulator also runs on a current-thread runtime (plain `#[tokio::test]`).
#[tokio::test]
async fn an_unknown_message_is_none() {
    let sim = working_sim(Engine::Gows).await;
    let waha = client(&sim);
    let unknown = waha
        .find_message("dev", CHAT, "true_62811010010010@c.us_3EB0DOESNOTEXIST")
        .await
        .unwrap();
    assert_eq!(unknown, None);
    assert_eq!(
        waha.find_message("dev", CHAT, "3EB0DOESNOTEXIST")
            .await
            .unwrap(),
        None
    );
    assert_no_violations(&sim);
}

// The simulator also runs on a current-thread runtime (plain `#[tokio::test]`).
#[tokio::test]
async fn session_reports_status_and_engine() {
    let sim = working_sim(Engine::Noweb).await;
    let waha = client(&sim);
    let info = waha
        .session("dev")
        .await
        .unwrap()
        .expect("the session exists");
    assert_eq!(
        (
            info.name.as_str(),
            info.status.as_str(),
            info.engine.as_deref()
        ),
        ("dev", "WORKING", Some("NOWEB"))
    );
    assert_eq!(waha.session("nobody").await.unwrap(), None);
    assert_no_violations(&sim);
}

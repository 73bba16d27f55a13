//! Every error class, produced by the simulator as WAHA produces it.

use std::time::Duration;

use wapim_waha::{SendRequest, WahaClient, WahaError};
use wapim_waha_sim::{Engine, Faults, SessionStatus, SimConfig};

use crate::helpers::{assert_no_violations, client, client_with, sim, wait_for, working_sim, CHAT};

fn text() -> SendRequest {
    SendRequest::Text {
        chat_id: CHAT.into(),
        text: "hello".into(),
        id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_is_not_working_is_session_not_working() {
    let sim = working_sim(Engine::Gows).await;
    sim.ensure_session("dev", Engine::Gows, SessionStatus::ScanQrCode);
    let waha = client(&sim);
    match waha.send("dev", &text()).await {
        Err(WahaError::SessionNotWorking { status, body }) => {
            assert_eq!(status.as_deref(), Some("SCAN_QR_CODE"));
            assert_eq!(body["expected"], serde_json::json!(["WORKING"]));
        }
        other => panic!("expected SessionNotWorking, got {other:?}"),
    }
    assert!(matches!(
        waha.new_message_id("dev").await,
        Err(WahaError::SessionNotWorking { .. })
    ));
    assert!(sim.sends().is_empty());
    assert_no_violations(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_session_is_session_not_found() {
    let sim = working_sim(Engine::Gows).await;
    let waha = client(&sim);
    let err = waha.send("nobody", &text()).await.unwrap_err();
    assert!(matches!(err, WahaError::SessionNotFound { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let err = waha
        .find_message("nobody", CHAT, "3EB0AA")
        .await
        .unwrap_err();
    assert!(
        matches!(err, WahaError::SessionNotFound { .. }),
        "a missing session is not a missing message: {err:?}"
    );
    assert_no_violations(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_api_key_is_unauthorized() {
    let sim = sim(SimConfig {
        api_key: Some("right-key".into()),
        ..SimConfig::default()
    })
    .await;
    sim.ensure_session("dev", Engine::Gows, SessionStatus::Working);
    let wrong = client_with(&sim, Some("wrong-key"), Duration::from_secs(10));
    assert!(matches!(
        wrong.send("dev", &text()).await,
        Err(WahaError::Unauthorized)
    ));
    let none = client_with(&sim, None, Duration::from_secs(10));
    assert!(matches!(
        none.session("dev").await,
        Err(WahaError::Unauthorized)
    ));
    let right = client_with(&sim, Some("right-key"), Duration::from_secs(10));
    right.send("dev", &text()).await.unwrap();
    assert_eq!(sim.sends().len(), 1);
    assert_no_violations(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_engine_failures_are_retryable_server_errors() {
    let sim = working_sim(Engine::Gows).await;
    sim.set_faults(Faults {
        error_rate: 1.0,
        seed: 42,
        ..Faults::default()
    });
    let err = client(&sim).send("dev", &text()).await.unwrap_err();
    match &err {
        WahaError::Server { status, body } => {
            assert_eq!(*status, 500);
            assert_eq!(body["statusCode"], 500);
        }
        other => panic!("expected Server, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert!(sim.sends().is_empty(), "a failed send sends nothing");
    assert_no_violations(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gows_reach_out_timelock_is_not_retryable() {
    let sim = working_sim(Engine::Gows).await;
    sim.set_faults(Faults {
        reach_out_timelock: true,
        ..Faults::default()
    });
    let err = client(&sim).send("dev", &text()).await.unwrap_err();
    assert!(matches!(err, WahaError::ReachOutTimelock { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert!(err.body().unwrap()["exception"]["message"]
        .as_str()
        .unwrap()
        .contains("463"));
    assert_no_violations(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webjs_cannot_pre_generate_ids() {
    let sim = working_sim(Engine::Webjs).await;
    let err = client(&sim).new_message_id("dev").await.unwrap_err();
    assert!(
        matches!(err, WahaError::Rejected { status: 422, .. }),
        "{err:?}"
    );
    assert_no_violations(&sim);
}

// A plain (current-thread) runtime: the simulator's background work still completes the send.
#[tokio::test]
async fn a_hanging_waha_times_out_and_still_completes_the_send() {
    let sim = working_sim(Engine::Gows).await;
    sim.set_faults(Faults {
        hang: true,
        latency: Duration::from_millis(700),
        ..Faults::default()
    });
    let waha = client_with(&sim, None, Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = waha.send("dev", &text()).await.unwrap_err();
    assert!(matches!(err, WahaError::Timeout), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_millis(650),
        "gave up after the client's timeout"
    );
    assert!(
        sim.sends().is_empty(),
        "not completed yet when the client gave up"
    );
    wait_for("the abandoned send to complete", || sim.sends().len() == 1).await;
    let send = &sim.sends()[0];
    // It is findable afterwards: what the dispatcher does before sending again.
    sim.set_faults(Faults::default());
    let found = client(&sim)
        .find_message("dev", CHAT, &send.serialized_id)
        .await
        .unwrap();
    assert!(found.is_some());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.sends().len(), 1, "recorded exactly once");
    assert_no_violations(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_a_retryable_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let waha = WahaClient::new(
        &format!("http://127.0.0.1:{port}"),
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let err = waha.session("dev").await.unwrap_err();
    assert!(matches!(err, WahaError::Connect(_)), "{err:?}");
    assert!(err.is_retryable());
}

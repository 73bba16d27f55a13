//! A simulator per test and a client pointed at it.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use wapim_waha::WahaClient;
use wapim_waha_sim::{start, Engine, SessionStatus, SimConfig, SimHandle};

pub const CHAT: &str = "62811010010010@c.us";

pub async fn sim(config: SimConfig) -> SimHandle {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    start(config, listener).await.expect("the simulator starts")
}

/// A simulator with one `WORKING` session named `dev` on `engine`.
pub async fn working_sim(engine: Engine) -> SimHandle {
    let sim = sim(SimConfig {
        engine,
        ..SimConfig::default()
    })
    .await;
    sim.ensure_session("dev", engine, SessionStatus::Working);
    sim
}

pub fn client(sim: &SimHandle) -> WahaClient {
    client_with(sim, None, Duration::from_secs(10))
}

pub fn client_with(sim: &SimHandle, api_key: Option<&str>, timeout: Duration) -> WahaClient {
    WahaClient::new(&sim.base_url(), api_key.map(str::to_owned), timeout).expect("a valid base URL")
}

pub fn assert_no_violations(sim: &SimHandle) {
    let violations = sim.violations();
    assert!(
        violations.is_empty(),
        "requests broke WAHA's API: {violations:#?}"
    );
}

pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

//! Crash safety with real processes: a dispatcher SIGKILLed while WAHA is slow and a send is in
//! flight, then restarted, loses nothing and sends nothing twice.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use wapim_waha_sim::Faults;

use crate::helpers::{amqp_url, Options, Pipeline};

/// Starts the real `dispatcher` binary against the pipeline's database, queues and simulator.
fn dispatcher_process(p: &Pipeline, lease_secs: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dispatcher"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAPIM_DATABASE__URL", &p.db.url)
        .env("WAPIM_DATABASE__CREATE_IF_MISSING", "false")
        .env("WAPIM_DATABASE__POOL_MAX_SIZE", "4")
        .env("WAPIM_AMQP__URL", amqp_url())
        .env("WAPIM_AMQP__PREFIX", &p.prefix)
        .env("WAPIM_WAHA__URL", p.sim.base_url())
        .env("WAPIM_WAHA__TIMEOUT_SECS", "10")
        .env("WAPIM_HTTP__PORT", "0")
        .env("WAPIM_DISPATCHER__LEASE_SECS", lease_secs.to_string())
        .env("WAPIM_DISPATCHER__SWEEP_SECS", "1")
        .env("WAPIM_DISPATCHER__BACKOFF_BASE_MS", "50")
        .env("WAPIM_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the dispatcher binary starts")
}

fn sigkill(mut child: Child) {
    // Child::kill sends SIGKILL on Unix: no destructor, no graceful shutdown, no ack.
    child.kill().expect("killed");
    child.wait().expect("reaped");
}

wapim_testkit::both_backends! {
    async fn a_dispatcher_killed_mid_send_loses_nothing_and_sends_nothing_twice() {
        let p = Pipeline::start_with(Options { run_dispatcher: false, ..Options::default() }).await;
        p.sim.set_faults(Faults { latency: Duration::from_secs(2), ..Faults::default() });
        let id = p.text("survive the crash").await;
        let first = dispatcher_process(&p, 4);
        let started = Instant::now();
        while !p.sim.calls().iter().any(|c| c.path == "/api/sendText") {
            assert!(started.elapsed() < Duration::from_secs(30), "the send never reached WAHA");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sigkill(first);
        // The message is claimed by a dead process; WAHA finishes the send on its own.
        assert_eq!(p.message(id).await["status"], "processing");

        let second = dispatcher_process(&p, 4);
        let sent = p.wait_for_status(id, "sent", Duration::from_secs(40)).await;
        sigkill(second);
        assert_eq!(p.sends_of("survive the crash"), 1, "sent once: {:?}", p.sim.sends());
        assert!(sent["provider_message_id"].is_string());
    }

    async fn a_dispatcher_killed_before_waha_answers_a_failing_send_retries_once_it_is_back() {
        let p = Pipeline::start_with(Options { run_dispatcher: false, ..Options::default() }).await;
        // WAHA is slow and then refuses with a 5xx: nothing was sent, so the reconciled message
        // must be sent again, once.
        p.sim.set_faults(Faults { latency: Duration::from_secs(2), error_rate: 1.0, seed: 1, ..Faults::default() });
        let id = p.text("second chance").await;
        let first = dispatcher_process(&p, 4);
        let started = Instant::now();
        while !p.sim.calls().iter().any(|c| c.path == "/api/sendText") {
            assert!(started.elapsed() < Duration::from_secs(30), "the send never reached WAHA");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sigkill(first);
        p.sim.set_faults(Faults::default());
        let second = dispatcher_process(&p, 4);
        p.wait_for_status(id, "sent", Duration::from_secs(40)).await;
        sigkill(second);
        assert_eq!(p.sends_of("second chance"), 1);
    }
}

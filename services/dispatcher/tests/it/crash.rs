//! Crash safety with real processes: a dispatcher SIGKILLed while WAHA is slow and a send is in
//! flight, then restarted, loses nothing and sends nothing twice.

use std::process::Child;
use std::time::{Duration, Instant};

use wapim_waha_sim::Faults;

use crate::helpers::{dispatcher_binary, Options, Pipeline};

/// The real `dispatcher` binary, unpaced.
fn dispatcher_process(p: &Pipeline, lease_secs: u64) -> Child {
    dispatcher_binary(p, lease_secs, 0, 0)
}

pub fn sigkill(mut child: Child) {
    // Child::kill sends SIGKILL on Unix: no destructor, no graceful shutdown, no ack.
    child.kill().expect("killed");
    child.wait().expect("reaped");
}

wapim_testkit::both_backends! {
    async fn a_dispatcher_killed_mid_send_loses_nothing_and_sends_nothing_twice() {
        let p = Pipeline::start_with(Options { run_dispatcher: false, ..Options::rabbitmq() }).await;
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
        let p = Pipeline::start_with(Options { run_dispatcher: false, ..Options::rabbitmq() }).await;
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

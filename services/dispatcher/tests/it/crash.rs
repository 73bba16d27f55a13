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

    async fn a_dispatcher_stopped_with_sigterm_under_load_finishes_what_it_holds_and_exits_0() {
        let p = Pipeline::start_with(Options { run_dispatcher: false, ..Options::rabbitmq() }).await;
        p.sim.set_faults(Faults { latency: Duration::from_millis(400), ..Faults::default() });
        let texts: Vec<String> = (0..240).map(|i| format!("drain {i}")).collect();
        p.batch_as("wapi-test", &p.device_token, &texts).await;
        let mut first = dispatcher_process(&p, 30);
        let started = Instant::now();
        while p.sim.send_count() < 5 {
            assert!(started.elapsed() < Duration::from_secs(30), "nothing is sent");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let term = std::process::Command::new("kill").args(["-TERM", &first.id().to_string()]).status().unwrap();
        assert!(term.success());
        let stopping = Instant::now();
        let status = loop {
            if let Some(status) = first.try_wait().unwrap() {
                break status;
            }
            assert!(stopping.elapsed() < Duration::from_secs(20), "still running after SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(status.code(), Some(0), "a graceful stop exits 0");
        // What it held, it finished: nothing is left claimed by the stopped process.
        let claimed = wapim_store::query_i64(&mut p.db.connect(), "SELECT COUNT(*) FROM messages WHERE status = 'processing'").unwrap();
        assert_eq!(claimed, 0, "every job in hand was finished (or given back) before the exit");
        let after_stop = p.sim.send_count();
        assert!(after_stop < texts.len(), "stopped before the end ({after_stop} sent)");
        // Another dispatcher takes the rest; each message is sent exactly once.
        p.sim.set_faults(Faults::default());
        let second = dispatcher_process(&p, 30);
        p.wait_for_sends(texts.len(), Duration::from_secs(60)).await;
        sigkill(second);
        for t in &texts {
            assert_eq!(p.sends_of(t), 1, "{t}");
        }
    }
}

//! `make chaos`: the send pipeline's promise, end to end, under abuse.
//!
//! 10,000 messages over 5 devices are accepted by the gateway (in-process, with its relay), while
//! WAHA (the simulator) fails 20 % of sends with a 5xx, dispatcher processes (the real binary) are
//! SIGKILLed 5 times, RabbitMQ is restarted once and PostgreSQL once. Passes when the simulator
//! recorded exactly 10,000 sends, one per message, and every message's record is `sent`. It
//! restarts shared servers, so CI runs it alone, after the tests.
//!
//! Knobs: `CHAOS_MESSAGES` (10000), `CHAOS_DISPATCHERS` (2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../harness.rs"]
mod harness;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wapim_app::relay::RelayConfig;
use wapim_broker::BrokerConfig;
use wapim_testkit::TestDatabase;
use wapim_waha_sim::{Engine, Faults, SessionStatus};

const DEVICES: usize = 5;
/// The queue's delivery limit, the same in every process (RabbitMQ refuses a redeclaration
/// with other arguments).
const DELIVERY_LIMIT: u32 = 50;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn dispatcher_binary() -> PathBuf {
    // examples live in target/<profile>/examples; the binary in target/<profile>.
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join("dispatcher")
}

struct Fleet {
    db_url: String,
    prefix: String,
    waha: String,
    children: Vec<Child>,
}

impl Fleet {
    fn spawn(&self) -> Child {
        Command::new(dispatcher_binary())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WAPIM_DATABASE__URL", &self.db_url)
            .env("WAPIM_DATABASE__CREATE_IF_MISSING", "false")
            .env("WAPIM_DATABASE__POOL_MAX_SIZE", "8")
            .env("WAPIM_AMQP__PREFIX", &self.prefix)
            .env("WAPIM_AMQP__DELIVERY_LIMIT", DELIVERY_LIMIT.to_string())
            .env("WAPIM_WAHA__URL", &self.waha)
            .env("WAPIM_WAHA__TIMEOUT_SECS", "3")
            // The soak is about exactly-once under faults, not pacing: sends go out unpaced.
            .env("WAPIM_PACING__MIN_INTERVAL_MS", "0")
            .env("WAPIM_PACING__JITTER_MS", "0")
            .env("WAPIM_HTTP__PORT", "0")
            .env("WAPIM_DISPATCHER__PREFETCH", "64")
            .env("WAPIM_DISPATCHER__LEASE_SECS", "5")
            .env("WAPIM_DISPATCHER__SWEEP_SECS", "1")
            .env("WAPIM_DISPATCHER__MAX_ATTEMPTS", "50")
            .env("WAPIM_DISPATCHER__BACKOFF_BASE_MS", "100")
            .env("WAPIM_DISPATCHER__BACKOFF_MAX_MS", "2000")
            .env("WAPIM_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("dispatcher binary (run `cargo build --bins` first)")
    }

    fn kill_one(&mut self, i: usize) {
        let mut child = self.children.remove(i % self.children.len());
        child.kill().unwrap();
        child.wait().unwrap();
        let fresh = self.spawn();
        self.children.push(fresh);
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    println!(
        "  {cmd} {} → {:?}",
        args.join(" "),
        status.map(|s| s.code())
    );
}

fn restart_postgres() {
    let versions = std::fs::read_dir("/etc/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if let Some(v) = versions.iter().max() {
        run(
            "pg_ctlcluster",
            &["--skip-systemctl-redirect", v, "main", "restart"],
        );
    }
}

/// Counts of messages by status, retrying while the database restarts.
async fn statuses(db: &TestDatabase) -> HashMap<String, i64> {
    loop {
        let url = db.url.clone();
        let counts = tokio::task::spawn_blocking(move || {
            let mut conn =
                wapim_store::establish(&wapim_store::DatabaseUrl::parse(&url).ok()?).ok()?;
            let rows = wapim_store::messages::status_counts(&mut conn).ok()?;
            Some(rows)
        })
        .await
        .unwrap();
        if let Some(rows) = counts {
            return rows.into_iter().collect();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let total = env_usize("CHAOS_MESSAGES", 10_000);
    let dispatchers = env_usize("CHAOS_DISPATCHERS", 2);
    let harness::Stack {
        db,
        pool,
        settings,
        base,
        admin,
        sim,
    } = harness::start_stack().await;
    let prefix = format!("chaos_{}.", uuid::Uuid::new_v4().simple());
    let broker = BrokerConfig {
        url: settings.amqp.url.clone(),
        prefix: prefix.clone(),
        prefetch: 1,
        delivery_limit: DELIVERY_LIMIT,
    };
    // Declare the topology before the dispatchers start consuming.
    let topology = wapim_broker::Broker::connect(&broker).await.unwrap();

    let client = reqwest::Client::new();
    let mut sessions = Vec::new();
    for d in 0..DEVICES {
        let r: Value = client
            .post(format!("{base}/api/devices"))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("Chaos {d}"), "phone_number": "0811010010010"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["data"]["session_id"].as_str().unwrap().to_owned();
        sim.ensure_session(&session, Engine::Gows, SessionStatus::Working);
        sessions.push(session);
    }
    let started = Instant::now();
    for chunk in 0..total.div_ceil(1000) {
        let items: Vec<Value> = (chunk * 1000..((chunk + 1) * 1000).min(total))
            .map(|i| {
                json!({"session_id": sessions[i % DEVICES], "recipient": "0811010010011",
                       "message_type": "text", "message": format!("chaos {i}")})
            })
            .collect();
        let r = client
            .post(format!("{base}/api/messages-batch"))
            .bearer_auth(&admin)
            .json(&json!({ "items": items }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    println!(
        "accepted {total} messages in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    sim.set_faults(Faults {
        latency: Duration::from_millis(5),
        error_rate: 0.2,
        seed: 42,
        ..Faults::default()
    });
    let broker_config_copy = broker.clone();
    tokio::spawn(wapim_app::relay::connect_and_run(
        pool,
        broker,
        RelayConfig {
            batch: 500,
            poll: Duration::from_millis(100),
            lease: Duration::from_secs(10),
        },
    ));
    let topology_config = broker_config_copy;
    let mut fleet = Fleet {
        db_url: db.url.clone(),
        prefix,
        waha: sim.base_url(),
        children: Vec::new(),
    };
    for _ in 0..dispatchers {
        let c = fleet.spawn();
        fleet.children.push(c);
    }

    // The abuse, spread over the run.
    let mut kills = 0;
    let mut rabbit_restarted = false;
    let mut postgres_restarted = false;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let counts = statuses(&db).await;
        let sent = counts.get("sent").copied().unwrap_or(0);
        println!(
            "  {:>5.1} s  sent {sent:>6}  pending {:>6}  processing {:>4}  failed {:>4}  WAHA sends {:>6}",
            started.elapsed().as_secs_f64(),
            counts.get("pending").copied().unwrap_or(0),
            counts.get("processing").copied().unwrap_or(0),
            counts.get("failed").copied().unwrap_or(0),
            sim.send_count()
        );
        let progress = sent as f64 / total as f64;
        // Five kills at 10 %, 20 %, … 50 % of the run (several in one tick if it is fast).
        while kills < 5 && progress >= 0.1 * (kills as f64 + 1.0) {
            kills += 1;
            println!("  SIGKILL dispatcher #{kills}");
            fleet.kill_one(kills);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if !rabbit_restarted && progress >= 0.3 {
            rabbit_restarted = true;
            println!("  restarting RabbitMQ");
            run("rabbitmqctl", &["stop_app"]);
            tokio::time::sleep(Duration::from_secs(2)).await;
            run("rabbitmqctl", &["start_app"]);
        }
        if !postgres_restarted && progress >= 0.55 {
            postgres_restarted = true;
            println!("  restarting PostgreSQL");
            restart_postgres();
        }
        let settled = sent + counts.get("failed").copied().unwrap_or(0);
        if settled >= total as i64 || Instant::now() > deadline {
            break;
        }
    }
    // Let any send still inside WAHA complete before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = statuses(&db).await;
    let sends = sim.sends();
    let mut per_text: HashMap<String, usize> = HashMap::new();
    for s in &sends {
        *per_text
            .entry(s.body["text"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let twice = per_text.values().filter(|n| **n > 1).count();
    let sent = counts.get("sent").copied().unwrap_or(0);
    println!(
        "chaos: {total} messages, {DEVICES} devices, 20 % WAHA faults, {kills} dispatcher SIGKILLs, RabbitMQ restarted: {rabbit_restarted}, PostgreSQL restarted: {postgres_restarted}"
    );
    println!(
        "  WAHA sends recorded: {}   distinct messages sent: {}   sent more than once: {twice}   records sent: {sent}   other statuses: {:?}   in {:.1} s",
        sends.len(),
        per_text.len(),
        counts.iter().filter(|(k, _)| k.as_str() != "sent").collect::<Vec<_>>(),
        started.elapsed().as_secs_f64()
    );
    drop(fleet);
    if let Ok(b) = wapim_broker::Broker::connect(&topology_config).await {
        let _ = b.delete_topology().await;
    }
    drop(topology);
    if sends.len() == total && per_text.len() == total && twice == 0 && sent == total as i64 {
        println!("chaos: PASS — exactly {total} sends, none twice, every record sent");
        ExitCode::SUCCESS
    } else {
        println!("chaos: FAIL");
        ExitCode::FAILURE
    }
}

//! `make bench-embedded`: the single binary `wapim` as users run it — the release executable in
//! its own process, on a SQLite file with the in-process queue (`memory://`) — against the WAHA
//! simulator running in this process on 127.0.0.1. Nothing leaves the machine.
//!
//! 1. Start-up: spawn → `GET /health/ready` answers 200 (polled every 2 ms), `BENCH_STARTS`
//!    times (5) on a new file (creates and migrates it) and as many restarts on that file
//!    (after a graceful stop); median and max of each.
//! 2. Idle memory: VmRSS of a freshly started process after 3 s idle.
//! 3. Throughput end to end: a device created through the API and logged in on the simulator,
//!    then `BENCH_ROUNDS` (3) rounds of `BENCH_MESSAGES` (3,000) texts posted as batches of
//!    1,000 (`POST /api/messages-batch`, pacing off), timed from the first POST until the
//!    simulator recorded the last send; accept → WAHA latency per message (from its batch's
//!    POST to the simulator's record), VmRSS and the CPU `wapim` used at the end of each round.
//!    Then accept → WAHA latency at a fixed offered rate: `BENCH_RATE` (100) single
//!    `POST /api/messages` a second for `BENCH_SECONDS` (5), each from its answer.
//! 4. Baseline in the same run: the same number of `POST /api/sendText` straight to the same
//!    simulator from a plain HTTP client at Wapim's dispatcher concurrency (32, the default
//!    `WAPIM_DISPATCHER__PREFETCH`): what the simulator alone takes.
//! 5. When PostgreSQL (5432) and RabbitMQ (5672) answer on 127.0.0.1: the same rounds with
//!    `WAPIM_DATABASE__URL=postgres://…` (a fresh database, dropped afterwards) and
//!    `WAPIM_AMQP__URL=amqp://…` (a `bench_<random>.` prefix whose topology is deleted
//!    afterwards). Skipped otherwise, or with `BENCH_SKIP_DISTRIBUTED=1`.
//!
//! `BENCH_WAPIM_ENV="NAME=value …"` adds variables to every `wapim` started (experiments).
//!
//! Targets: ≥ 500 messages/s end to end, start-up < 200 ms, idle RSS < 30 MiB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use wapim_testkit::{TestBackend, TestDatabase};
use wapim_waha_sim::{SimConfig, SimHandle};

const BATCH: usize = 1000;
/// The dispatcher's default prefetch: how many sends `wapim` has in flight at once.
const WAHA_CONCURRENCY: usize = 32;
const TARGET_RATE: f64 = 500.0;
const TARGET_START_MS: f64 = 200.0;
const TARGET_IDLE_MIB: f64 = 30.0;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    percentile(&v, 50.0)
}

fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "MET"
    } else {
        "MISSED"
    }
}

/// The release `wapim`: the one cargo built for this bench (`CARGO_BIN_EXE_wapim`, which is
/// `target/release/wapim`), else `target/release/wapim` under the workspace root, built once
/// when missing.
fn wapim_binary() -> PathBuf {
    let built = PathBuf::from(env!("CARGO_BIN_EXE_wapim"));
    if built.exists() {
        return built;
    }
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let path = root.join("target/release/wapim");
    if !path.exists() {
        println!("target/release/wapim is missing: running `cargo build --release -p wapim --bin wapim` once");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args(["build", "--release", "-p", "wapim", "--bin", "wapim"])
            .current_dir(&root)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cargo build --release -p wapim failed");
    }
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn mib(kib: Option<u64>) -> f64 {
    kib.map_or(f64::NAN, |k| k as f64 / 1024.0)
}

/// CPU time (user + system) process `pid` has used so far, from `/proc/<pid>/stat`.
fn process_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line (11 and 12 after the name); 100 ticks/s.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// One running `wapim`.
struct Wapim {
    child: Child,
    base: String,
}

impl Wapim {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn rss_mib(&self) -> f64 {
        mib(proc_status_kib(self.pid(), "VmRSS"))
    }

    /// "anon A + file F MiB": heap and stacks against the executable's pages mapped in.
    fn rss_split(&self) -> String {
        let anon = mib(proc_status_kib(self.pid(), "RssAnon"));
        let file = mib(proc_status_kib(self.pid(), "RssFile"));
        format!("anon {anon:.1} + file {file:.1}")
    }

    fn peak_rss_mib(&self) -> f64 {
        mib(proc_status_kib(self.pid(), "VmHWM"))
    }

    fn cpu(&self) -> Duration {
        process_cpu(&self.pid().to_string())
    }

    /// SIGTERM (a graceful stop), then SIGKILL if it is still running after 10 s.
    async fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        println!("  (wapim did not stop within 10 s of SIGTERM; killed)");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Wapim {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How to start `wapim` (everything else is its embedded defaults).
struct Launch<'a> {
    binary: &'a PathBuf,
    sim_url: String,
    admin: &'a str,
    database_url: &'a str,
    extra: Vec<(&'static str, String)>,
}

impl Launch<'_> {
    /// Spawns `wapim` and waits for `/health/ready`; returns it with the time that took.
    async fn start(&self, client: &reqwest::Client) -> (Wapim, Duration) {
        let port = free_port();
        let mut command = Command::new(self.binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WAPIM_DATABASE__URL", self.database_url)
            .env("WAPIM_HTTP__PORT", port.to_string())
            .env("WAPIM_WAHA__URL", &self.sim_url)
            .env("WAPIM_AUTH__ADMIN_TOKEN", self.admin)
            .env("WAPIM_LOG__LEVEL", "warn")
            .env("WAPIM_PACING__MIN_INTERVAL_MS", "0")
            .env("WAPIM_PACING__JITTER_MS", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &self.extra {
            command.env(k, v);
        }
        // Experiments: `BENCH_WAPIM_ENV="MALLOC_ARENA_MAX=2 …"` adds variables to every `wapim`.
        let experiment = std::env::var("BENCH_WAPIM_ENV").unwrap_or_default();
        for (k, v) in experiment
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
        {
            command.env(k, v);
        }
        let base = format!("http://127.0.0.1:{port}");
        let ready = format!("{base}/health/ready");
        let started = Instant::now();
        let mut child = command.spawn().expect("wapim starts");
        loop {
            let answered = client.get(&ready).send().await;
            if matches!(&answered, Ok(r) if r.status() == 200) {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("wapim exited before it was ready: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "wapim never became ready"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let took = started.elapsed();
        (Wapim { child, base }, took)
    }
}

/// Creates a device through the API and logs its session in on the simulator once the
/// dispatcher has created it there; returns (session id, secret token).
async fn paired_device(
    client: &reqwest::Client,
    w: &Wapim,
    sim: &SimHandle,
    admin: &str,
    name: &str,
) -> (String, String) {
    let made: Value = client
        .post(format!("{}/api/devices", w.base))
        .bearer_auth(admin)
        .json(&json!({"name": name, "phone_number": "0811010010010"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = made["data"]["session_id"]
        .as_str()
        .unwrap_or_else(|| panic!("a device: {made}"))
        .to_owned();
    let secret = made["data"]["secret_token"].as_str().unwrap().to_owned();
    let started = Instant::now();
    while !sim.login(&session) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the session is never created on WAHA"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // One message through before timing: the device's first send (and its session's status)
    // is not what the rounds measure.
    sim.reset_records();
    let r = client
        .post(format!("{}/api/messages", w.base))
        .header("X-Session-Id", &session)
        .header("X-Session-Secret-Token", &secret)
        .json(&json!({"recipient": "0811010010011", "message_type": "text", "message": "warm-up"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    let started = Instant::now();
    while sim.send_count() < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the warm-up message never reached the simulator"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (session, secret)
}

/// One throughput round's figures.
struct Round {
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_mib: f64,
    /// CPU `wapim` used during the round, in seconds.
    cpu_secs: f64,
    secs: f64,
    /// Requests the simulator received per message sent.
    calls_per_send: f64,
}

/// Posts `n` texts as batches of 1,000 and waits until the simulator recorded `n` sends.
async fn round(
    client: &reqwest::Client,
    w: &Wapim,
    sim: &SimHandle,
    (session, secret): (&str, &str),
    n: usize,
) -> Round {
    sim.reset_records();
    let cpu_before = w.cpu();
    let mut posted_at: Vec<SystemTime> = Vec::new();
    let started = Instant::now();
    for chunk in 0..n.div_ceil(BATCH) {
        let items: Vec<Value> = (chunk * BATCH..((chunk + 1) * BATCH).min(n))
            .map(|i| json!({"recipient": "0811010010011", "message_type": "text", "message": format!("m{i}")}))
            .collect();
        posted_at.push(SystemTime::now());
        let r = client
            .post(format!("{}/api/messages-batch", w.base))
            .header("X-Session-Id", session)
            .header("X-Session-Secret-Token", secret)
            .json(&json!({ "items": items }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let stored = body["data"]["items"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|i| i["status"] == true).count());
        assert_eq!(stored, items.len(), "every item is accepted: {body}");
    }
    while sim.send_count() < n {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "stalled at {} of {n} sends",
            sim.send_count()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu = w.cpu().saturating_sub(cpu_before);
    let rss_mib = w.rss_mib();
    let sends = sim.sends();
    let calls_per_send = sim.calls().len() as f64 / sends.len().max(1) as f64;
    let last = sends.iter().map(|s| s.instant).max().unwrap_or(started);
    let secs = last.duration_since(started).as_secs_f64();
    let distinct: std::collections::HashSet<&str> = sends
        .iter()
        .filter_map(|s| s.body["text"].as_str())
        .collect();
    if sends.len() != n || distinct.len() != n {
        println!(
            "  (the simulator recorded {} sends, {} distinct texts, for {n} messages)",
            sends.len(),
            distinct.len()
        );
    }
    let mut latencies: Vec<f64> = sends
        .iter()
        .filter_map(|s| {
            let i: usize = s.body["text"].as_str()?.strip_prefix('m')?.parse().ok()?;
            let at = posted_at.get(i / BATCH)?;
            Some(s.at.duration_since(*at).unwrap_or_default().as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Round {
        rate: n as f64 / secs,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        rss_mib,
        cpu_secs: cpu.as_secs_f64(),
        secs,
        calls_per_send,
    }
}

/// Accept → WAHA latency at a fixed offered rate: `rate` single `POST /api/messages` a second
/// for `seconds`, each timed from its answer (accepted) to the simulator's record. Returns
/// (p50 ms, p99 ms, arrived, sent).
async fn fixed_rate(
    client: &reqwest::Client,
    w: &Wapim,
    sim: &SimHandle,
    (session, secret): (&str, &str),
    rate: usize,
    seconds: usize,
) -> (f64, f64, usize, usize) {
    sim.reset_records();
    let total = rate * seconds;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let (client, url, session, secret) = (
            client.clone(),
            format!("{}/api/messages", w.base),
            session.to_owned(),
            secret.to_owned(),
        );
        posts.spawn(async move {
            let text = format!("l{i}");
            let r = client
                .post(url)
                .header("X-Session-Id", session)
                .header("X-Session-Secret-Token", secret)
                .json(
                    &json!({"recipient": "0811010010011", "message_type": "text", "message": text}),
                )
                .send()
                .await
                .unwrap();
            let at = SystemTime::now();
            assert_eq!(r.status(), 200);
            (text, at)
        });
    }
    let mut accepted = Vec::with_capacity(total);
    while let Some(r) = posts.join_next().await {
        accepted.push(r.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.send_count() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received: std::collections::HashMap<String, SystemTime> = sim
        .sends()
        .into_iter()
        .filter_map(|s| Some((s.body["text"].as_str()?.to_owned(), s.at)))
        .collect();
    let mut latencies: Vec<f64> = accepted
        .iter()
        .filter_map(|(text, at)| {
            let r = received.get(text)?;
            Some(r.duration_since(*at).unwrap_or_default().as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.len(),
        total,
    )
}

/// The simulator alone: `n` sendText calls from `concurrency` workers; messages/s.
async fn baseline(client: &reqwest::Client, sim: &SimHandle, session: &str, n: usize) -> f64 {
    sim.reset_records();
    let next = Arc::new(AtomicUsize::new(0));
    let url = format!("{}/api/sendText", sim.base_url());
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WAHA_CONCURRENCY {
        let (client, next, url, session) = (
            client.clone(),
            next.clone(),
            url.clone(),
            session.to_owned(),
        );
        workers.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let r = client
                    .post(&url)
                    .json(
                        &json!({"session": session, "chatId": "62811010010011@c.us", "text": "x"}),
                    )
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "sendText: {}", r.status());
                let _ = r.bytes().await;
            }
        });
    }
    while let Some(r) = workers.join_next().await {
        r.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(sim.send_count(), n);
    n as f64 / secs
}

/// What the throughput and latency parts run.
struct Plan {
    messages: usize,
    rounds: usize,
    rate: usize,
    seconds: usize,
}

/// The throughput rounds and the fixed-rate latency of one `wapim`.
struct Measured {
    rounds: Vec<Round>,
    /// p50 ms, p99 ms, arrived, sent.
    fixed: (f64, f64, usize, usize),
}

impl Measured {
    fn median_rate(&self) -> f64 {
        median(&self.rounds.iter().map(|r| r.rate).collect::<Vec<_>>())
    }

    fn print(&self, plan: &Plan) {
        println!(
            "  end to end, {} texts per round as batches of {BATCH} (first POST → last send on the simulator; latency from the batch's POST):",
            plan.messages
        );
        print_rounds(&self.rounds);
        let rate = self.median_rate();
        println!(
            "    median {rate:.0} messages/s   target ≥ {TARGET_RATE:.0}: {}",
            verdict(rate >= TARGET_RATE)
        );
        let (p50, p99, arrived, sent) = self.fixed;
        println!(
            "  accept → WAHA at {}/s for {} s (POST /api/messages, from its answer): p50 {p50:.1} ms  p99 {p99:.1} ms  ({arrived} of {sent} arrived)",
            plan.rate, plan.seconds
        );
    }
}

/// Pairs a device, then runs the rounds and the fixed-rate part on `w`.
async fn measure(
    client: &reqwest::Client,
    w: &Wapim,
    sim: &SimHandle,
    admin: &str,
    name: &str,
    plan: &Plan,
) -> (Measured, (String, String)) {
    let device = paired_device(client, w, sim, admin, name).await;
    let credentials = (device.0.as_str(), device.1.as_str());
    let mut rounds = Vec::new();
    for _ in 0..plan.rounds {
        rounds.push(round(client, w, sim, credentials, plan.messages).await);
    }
    let fixed = fixed_rate(client, w, sim, credentials, plan.rate, plan.seconds).await;
    (Measured { rounds, fixed }, device)
}

fn print_rounds(rounds: &[Round]) {
    println!("    round | messages/s | accept → WAHA p50 / p99 | RSS at end | WAHA calls/send | CPU of wapim");
    for (i, r) in rounds.iter().enumerate() {
        println!(
            "    {:>5} | {:>10.0} | {:>8.0} / {:>6.0} ms    | {:>6.1} MiB | {:>15.2} | {:.2} s over {:.2} s ({:.0} % of one core)",
            i + 1,
            r.rate,
            r.p50_ms,
            r.p99_ms,
            r.rss_mib,
            r.calls_per_send,
            r.cpu_secs,
            r.secs,
            100.0 * r.cpu_secs / r.secs
        );
    }
}

fn reachable(port: u16) -> bool {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&address, Duration::from_secs(1)).is_ok()
}

/// Part 5: the same rounds on PostgreSQL + RabbitMQ (skipped when either is down).
async fn distributed(
    client: &reqwest::Client,
    binary: &PathBuf,
    sim: &SimHandle,
    admin: &str,
    plan: &Plan,
) {
    if std::env::var("BENCH_SKIP_DISTRIBUTED").is_ok_and(|v| v == "1") {
        println!("PostgreSQL + RabbitMQ: skipped (BENCH_SKIP_DISTRIBUTED=1)");
        return;
    }
    if !reachable(5432) || !reachable(5672) {
        println!("PostgreSQL + RabbitMQ: skipped (nothing answers on 127.0.0.1:5432 and :5672)");
        return;
    }
    let created =
        tokio::task::spawn_blocking(|| TestDatabase::create_on(TestBackend::Postgres)).await;
    let Ok(db) = created else {
        println!("PostgreSQL + RabbitMQ: skipped (could not create a database)");
        return;
    };
    let amqp_url = std::env::var("WAPIM_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let prefix = format!(
        "bench_{}.",
        &wapim_domain::token::generate_secret_token()[..16]
    );
    let launch = Launch {
        binary,
        sim_url: sim.base_url(),
        admin,
        database_url: &db.url,
        extra: vec![
            ("WAPIM_AMQP__URL", amqp_url.clone()),
            ("WAPIM_AMQP__PREFIX", prefix.clone()),
        ],
    };
    let (w, first) = launch.start(client).await;
    let (measured, _) = measure(client, &w, sim, admin, "Bench distributed", plan).await;
    let peak_mib = w.peak_rss_mib();
    w.stop().await;
    println!("PostgreSQL 15 + RabbitMQ (same binary, WAPIM_DATABASE__URL=postgres://…, WAPIM_AMQP__URL=amqp://…)");
    println!(
        "  first start (creates the topology, migrates a fresh database): {:.0} ms",
        first.as_secs_f64() * 1000.0
    );
    measured.print(plan);
    println!("  peak RSS of wapim: {peak_mib:.1} MiB");
    let broker = wapim_broker::Broker::connect(&wapim_broker::BrokerConfig {
        url: amqp_url,
        prefix,
        prefetch: 1,
        delivery_limit: 10,
    })
    .await;
    match broker {
        Ok(b) => {
            if let Err(e) = b.delete_topology().await {
                println!("  (could not delete the bench's queues: {e})");
            }
        }
        Err(e) => println!("  (could not reach RabbitMQ to delete the bench's queues: {e})"),
    }
    let _ = tokio::task::spawn_blocking(move || drop(db)).await;
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: a quick smoke run then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let (starts, plan) = if smoke {
        (
            1,
            Plan {
                messages: 300,
                rounds: 1,
                rate: 50,
                seconds: 1,
            },
        )
    } else {
        (
            env_usize("BENCH_STARTS", 5),
            Plan {
                messages: env_usize("BENCH_MESSAGES", 3000),
                rounds: env_usize("BENCH_ROUNDS", 3),
                rate: env_usize("BENCH_RATE", 100),
                seconds: env_usize("BENCH_SECONDS", 5),
            },
        )
    };
    let messages = plan.messages;
    let binary = wapim_binary();
    let sim = wapim_waha_sim::start(
        SimConfig {
            acks: false,
            ..SimConfig::default()
        },
        TcpListener::bind("127.0.0.1:0").unwrap(),
    )
    .await
    .unwrap();
    let admin = wapim_domain::token::generate_secret_token();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let probe = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();

    // 1. Start-up: a new file, then a restart on it.
    let mut first = Vec::new();
    let mut again = Vec::new();
    for _ in 0..starts {
        let db = TestDatabase::create_on(TestBackend::Sqlite);
        let launch = Launch {
            binary: &binary,
            sim_url: sim.base_url(),
            admin: &admin,
            database_url: &db.url,
            extra: Vec::new(),
        };
        let (w, took) = launch.start(&probe).await;
        first.push(took.as_secs_f64() * 1000.0);
        w.stop().await;
        let (w, took) = launch.start(&probe).await;
        again.push(took.as_secs_f64() * 1000.0);
        w.stop().await;
    }

    // 2. Idle memory, and 3. throughput, on one more process.
    let db = TestDatabase::create_on(TestBackend::Sqlite);
    let launch = Launch {
        binary: &binary,
        sim_url: sim.base_url(),
        admin: &admin,
        database_url: &db.url,
        extra: Vec::new(),
    };
    let (w, _) = launch.start(&probe).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_mib = w.rss_mib();
    let idle_split = w.rss_split();
    let (measured, device) = measure(&client, &w, &sim, &admin, "Bench embedded", &plan).await;
    let peak_mib = w.peak_rss_mib();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_after_mib = w.rss_mib();
    let idle_after_split = w.rss_split();

    // 4. The simulator alone.
    let mut base_rates = Vec::new();
    for _ in 0..plan.rounds {
        base_rates.push(baseline(&client, &sim, &device.0, messages).await);
    }
    w.stop().await;
    drop(db);
    let violations = sim.violations();

    let (rate, base_rate) = (measured.median_rate(), median(&base_rates));
    let start_ok = max(&first) < TARGET_START_MS && max(&again) < TARGET_START_MS;
    println!();
    println!(
        "wapim, embedded (SQLite file + memory://), release binary {}",
        binary.display()
    );
    println!("  WAHA simulator in the bench process; everything on 127.0.0.1; pacing off");
    println!(
        "  start-up to /health/ready ({starts}×)  first start (new file: create + migrate): median {:>5.1} ms  max {:>5.1} ms",
        median(&first),
        max(&first)
    );
    println!(
        "                                      restart on the existing file:           median {:>5.1} ms  max {:>5.1} ms   target < {TARGET_START_MS:.0} ms: {}",
        median(&again),
        max(&again),
        verdict(start_ok)
    );
    println!(
        "  RSS idle 3 s after start: {idle_mib:.1} MiB ({idle_split})   target < {TARGET_IDLE_MIB:.0} MiB: {}",
        verdict(idle_mib < TARGET_IDLE_MIB)
    );
    println!(
        "      peak under load {peak_mib:.1} MiB; idle 3 s after the load {idle_after_mib:.1} MiB ({idle_after_split})"
    );
    measured.print(&plan);
    println!(
        "  simulator alone, {messages} sendText at concurrency {WAHA_CONCURRENCY}: {} messages/s (median {base_rate:.0})",
        base_rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    println!(
        "  ratio wapim / simulator alone: {:.2} (the baseline makes one call per send; see WAHA calls/send above)",
        rate / base_rate
    );
    if !violations.is_empty() {
        println!(
            "  the simulator saw {} WAHA API violations, e.g. {}",
            violations.len(),
            violations[0]
        );
    }
    println!();

    distributed(&client, &binary, &sim, &admin, &plan).await;
}

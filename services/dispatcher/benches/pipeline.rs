//! `make bench-pipeline`: the send path end to end (accept → relay → RabbitMQ → dispatcher →
//! WAHA simulator), beside RabbitMQ itself (confirmed publish, then consume and ack of the same
//! number of jobs through the same client) measured in the same run.
//!
//! 1. Throughput: `BENCH_MESSAGES` (default 5,000) accepted as batches of 1,000, timed from the
//!    first accept until the simulator has recorded every send.
//! 2. Latency at a fixed offered rate: `BENCH_RATE` messages/s (default 200) for `BENCH_SECONDS`
//!    (default 10) through `POST /api/messages`, each measured from its acceptance (`created_at`)
//!    to the simulator receiving the send.
//!
//! 3. Pacing at scale: `BENCH_PACED_DEVICES` devices (default 50), each paced at 1 s (its own
//!    setting, jitter off), `BENCH_PACED_MESSAGES` each (default 20) queued at once: the gaps
//!    between consecutive sends of each device on the simulator's clock (median against the 1 s
//!    interval) and the CPU this process used meanwhile.
//!
//! Everything runs in this process on the 2-core machine (gateway, relay, two dispatcher tasks,
//! simulator, load generator), with PostgreSQL and RabbitMQ beside it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../harness.rs"]
mod harness;

use std::time::{Duration, Instant, SystemTime};

use serde_json::{json, Value};
use wapim_app::relay::{Relay, RelayConfig};
use wapim_broker::{Broker, BrokerConfig, Headers};
use wapim_dispatcher::{Dispatcher, SessionSettings};
use wapim_settings::{DispatcherSettings, PacingSettings};
use wapim_waha::WahaClient;
use wapim_waha_sim::{Engine, SessionStatus};

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

fn amqp_url() -> String {
    std::env::var("WAPIM_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// RabbitMQ alone: `n` confirmed publishes (64 in flight), then `n` consumes with acks.
async fn raw_broker(n: usize) -> (f64, f64) {
    let config = BrokerConfig {
        url: amqp_url(),
        prefix: format!("t_{}.", uuid::Uuid::new_v4().simple()),
        prefetch: 64,
        delivery_limit: 10,
    };
    let broker = Broker::connect(&config).await.unwrap();
    let job = json!({"v": 1, "type": "send_message", "message_id": 1});
    let started = Instant::now();
    let mut set: tokio::task::JoinSet<Result<(), wapim_broker::BrokerError>> =
        tokio::task::JoinSet::new();
    for _ in 0..n {
        if set.len() >= 64 {
            set.join_next().await.unwrap().unwrap().unwrap();
        }
        let (b, j) = (broker.clone(), job.clone());
        set.spawn(async move { b.publish(&j, &Headers::new()).await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    let publish = n as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut consumer = broker.consumer("bench").await.unwrap();
    for _ in 0..n {
        consumer.next().await.unwrap().unwrap().ack().await.unwrap();
    }
    let consume = n as f64 / started.elapsed().as_secs_f64();
    drop(consumer);
    let _ = broker.delete_topology().await;
    (publish, consume)
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
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

/// Part 3: `devices` devices each paced at `interval` (jitter off), `per_device` messages queued
/// on each at once; prints the gaps between consecutive sends of each device, on the
/// simulator's clock, and the CPU this process used meanwhile.
async fn paced_devices(
    base: &str,
    admin: &str,
    sim: &wapim_waha_sim::SimHandle,
    devices: usize,
    per_device: usize,
    interval: Duration,
) {
    let client = reqwest::Client::new();
    let mut sessions = Vec::with_capacity(devices);
    for i in 0..devices {
        let body = json!({
            "name": format!("Paced {i}"),
            "phone_number": format!("08110200{:05}", i),
            "pacing_min_interval_ms": interval.as_millis() as u64,
            "pacing_jitter_ms": 0,
        });
        let r: Value = client
            .post(format!("{base}/api/devices"))
            .bearer_auth(admin)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["data"]["session_id"].as_str().unwrap().to_owned();
        let token = r["data"]["secret_token"].as_str().unwrap().to_owned();
        sim.ensure_session(&session, Engine::Gows, SessionStatus::Working);
        sessions.push((session, token));
    }
    sim.reset_records();
    let cpu_before = process_cpu();
    let started = Instant::now();
    for (session, token) in &sessions {
        let items: Vec<Value> = (0..per_device)
            .map(|i| json!({"recipient": "0811010010011", "message_type": "text", "message": format!("{session} {i}"), "is_queue": true}))
            .collect();
        let r = client
            .post(format!("{base}/api/messages-batch"))
            .header("X-Session-Id", session)
            .header("X-Session-Secret-Token", token)
            .json(&json!({ "items": items }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let total = devices * per_device;
    let limit = interval * (per_device as u32 + 10) + Duration::from_secs(30);
    while sim.send_count() < total {
        assert!(
            started.elapsed() < limit,
            "paced sends stalled at {}",
            sim.send_count()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wall = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let sends = sim.sends();
    let mut gaps: Vec<f64> = Vec::new();
    for (session, _) in &sessions {
        let mine: Vec<Instant> = sends
            .iter()
            .filter(|s| &s.session == session)
            .map(|s| s.instant)
            .collect();
        gaps.extend(
            mine.windows(2)
                .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0),
        );
    }
    gaps.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let ms = interval.as_secs_f64() * 1000.0;
    let median = percentile(&gaps, 50.0);
    println!(
        "  {devices} devices paced at {ms:.0} ms, {per_device} each ({total} sends in {:.1} s)",
        wall.as_secs_f64()
    );
    println!(
        "    gap between a device's sends: min {:>6.0}  p5 {:>6.0}  median {:>6.0}  p95 {:>6.0}  max {:>6.0} ms   median / interval {:.3}",
        gaps.first().copied().unwrap_or(f64::NAN),
        percentile(&gaps, 5.0),
        median,
        percentile(&gaps, 95.0),
        gaps.last().copied().unwrap_or(f64::NAN),
        median / ms
    );
    println!(
        "    CPU of this process (gateway, relay, dispatchers, simulator): {:.2} s over {:.1} s = {:.0} % of one core",
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let messages = if smoke {
        200
    } else {
        env_usize("BENCH_MESSAGES", 5000)
    };
    let rate = env_usize("BENCH_RATE", 200);
    let seconds = if smoke {
        1
    } else {
        env_usize("BENCH_SECONDS", 10)
    };

    let harness::Stack {
        db,
        pool,
        base,
        admin,
        sim,
        ..
    } = harness::start_stack().await;
    let prefix = format!("t_{}.", uuid::Uuid::new_v4().simple());
    let broker = Broker::connect(&BrokerConfig {
        url: amqp_url(),
        prefix: prefix.clone(),
        prefetch: 64,
        delivery_limit: 10,
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let device: Value = client
        .post(format!("{base}/api/devices"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Bench", "phone_number": "0811010010010"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = device["data"]["secret_token"].as_str().unwrap().to_owned();
    sim.ensure_session("bench", Engine::Gows, SessionStatus::Working);
    tokio::spawn(
        Relay::new(
            pool.clone(),
            broker.clone(),
            RelayConfig {
                batch: 500,
                poll: Duration::from_millis(20),
                lease: Duration::from_secs(30),
            },
        )
        .run(),
    );
    let waha = WahaClient::new(&sim.base_url(), None, Duration::from_secs(10)).unwrap();
    let settings = DispatcherSettings {
        prefetch: 64,
        lease_secs: 90,
        max_attempts: 5,
        backoff_base_ms: 100,
        backoff_max_ms: 1000,
        hold_secs: 1,
        pause_probe_secs: 300,
        sweep_secs: 10,
        shutdown_grace_secs: 5,
    };
    for i in 0..2 {
        let d = Dispatcher::new(
            pool.clone(),
            broker.clone(),
            waha.clone(),
            settings.clone(),
            // The end-to-end figures measure the pipeline itself, unpaced.
            &PacingSettings::OFF,
            SessionSettings {
                webhook_url: "http://127.0.0.1:9/api/v1/waha-webhook".to_owned(),
            },
        );
        tokio::spawn(async move { d.run(&format!("bench-{i}")).await });
    }

    // 1. Throughput.
    let started = Instant::now();
    for chunk in 0..messages.div_ceil(1000) {
        let items: Vec<Value> = (chunk * 1000..((chunk + 1) * 1000).min(messages))
            .map(|i| json!({"recipient": "0811010010011", "message_type": "text", "message": format!("t {i}")}))
            .collect();
        let r = client
            .post(format!("{base}/api/messages-batch"))
            .header("X-Session-Id", "bench")
            .header("X-Session-Secret-Token", &token)
            .json(&json!({ "items": items }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    while sim.send_count() < messages {
        assert!(started.elapsed() < Duration::from_secs(600), "stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let throughput = messages as f64 / started.elapsed().as_secs_f64();

    // 2. Latency at a fixed offered rate.
    sim.reset_records();
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut accepted: Vec<(String, SystemTime)> = Vec::with_capacity(total);
    let mut tick = tokio::time::interval(interval);
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..total {
        tick.tick().await;
        let (c, url, token) = (
            client.clone(),
            format!("{base}/api/messages"),
            token.clone(),
        );
        posts.spawn(async move {
            let text = format!("l {i}");
            let r = c
                .post(url)
                .header("X-Session-Id", "bench")
                .header("X-Session-Secret-Token", token)
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
    while let Some(r) = posts.join_next().await {
        accepted.push(r.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while sim.send_count() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sends = sim.sends();
    let received: std::collections::HashMap<String, SystemTime> = sends
        .iter()
        .map(|s| (s.body["text"].as_str().unwrap_or_default().to_owned(), s.at))
        .collect();
    let mut latencies: Vec<f64> = accepted
        .iter()
        .filter_map(|(text, at)| {
            received
                .get(text)
                .map(|r| r.duration_since(*at).unwrap_or_default().as_secs_f64() * 1000.0)
        })
        .collect();
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());

    let (publish, consume) = raw_broker(messages).await;
    println!("send pipeline, PostgreSQL + RabbitMQ, 2 dispatcher tasks, WAHA simulator (all on this machine)");
    println!("  end to end (accept → WAHA), {messages} messages : {throughput:>8.0} messages/s");
    println!(
        "  accept → WAHA at {rate}/s for {seconds} s       : p50 {:>6.1} ms   p99 {:>6.1} ms   ({} of {total} arrived)",
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        latencies.len()
    );
    println!("  RabbitMQ alone, same client, {messages} jobs    : publish (confirmed) {publish:>8.0}/s   consume+ack {consume:>8.0}/s");
    println!(
        "  ratio end to end / RabbitMQ publish+consume : {:.2}",
        throughput / (1.0 / (1.0 / publish + 1.0 / consume))
    );

    // 3. Pacing at scale (the dispatchers are the same two, unpaced by default: each device
    // carries its own pacing, as the device API allows).
    let (devices, per_device) = if smoke {
        (5, 3)
    } else {
        (
            env_usize("BENCH_PACED_DEVICES", 50),
            env_usize("BENCH_PACED_MESSAGES", 20),
        )
    };
    paced_devices(
        &base,
        &admin,
        &sim,
        devices,
        per_device,
        Duration::from_secs(1),
    )
    .await;

    let _ = broker.delete_topology().await;
    drop(db);
}

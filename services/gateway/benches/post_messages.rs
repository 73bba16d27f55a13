//! `make bench-api`: `POST /api/messages` throughput and latency at fixed concurrency, beside
//! `pgbench` inserting a row of the same width into the same table of the same database, in the
//! same run, reported as ratios; and the same load on the SQLite backend (the single binary's).
//!
//! Knobs (environment): `BENCH_REQUESTS` per round (default 3000), `BENCH_CONCURRENCY`
//! (default 16), `BENCH_ROUNDS` (default 3; medians are reported), `WAPIM_TEST_DATABASE_URL`
//! (server to create the bench database on).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use wapim_gateway::Application;
use wapim_settings::Settings;
use wapim_testkit::{TestBackend, TestDatabase};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Round {
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Next recipient number: every request of the whole run goes to a different number, as a
/// campaign does, so phone validation is never answered from any cache.
static NEXT_RECIPIENT: AtomicU64 = AtomicU64::new(10_000_000);

async fn gateway_round(
    base: &str,
    session: &str,
    token: &str,
    requests: usize,
    concurrency: usize,
) -> Round {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let per_worker = requests / concurrency;
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let client = client.clone();
        let url = format!("{base}/api/messages");
        let (session, token) = (session.to_owned(), token.to_owned());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_worker);
            for _ in 0..per_worker {
                let n = NEXT_RECIPIENT.fetch_add(1, Ordering::Relaxed);
                let body = json!({
                    "is_queue": true, "recipient": format!("0811{n:08}"),
                    "message_type": "text", "message": "Welcome home",
                    "schedule_at": "2025-09-08 09:44:00"
                });
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .header("X-Session-Id", &session)
                    .header("X-Session-Secret-Token", &token)
                    .json(&body)
                    .send()
                    .await
                    .expect("request");
                assert_eq!(res.status(), 200);
                let _ = res.bytes().await;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(requests);
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Round {
        throughput: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 50.0),
        p99_ms: percentile(&all, 99.0),
    }
}

/// pgbench: the same single-row INSERT … RETURNING the gateway performs, minus HTTP, auth,
/// validation and JSON.
fn pgbench_round(
    db_url: &str,
    device_id: i64,
    requests: usize,
    concurrency: usize,
) -> Option<Round> {
    let dir = std::env::temp_dir().join(format!("wapim-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).ok()?;
    let script = dir.join("insert.sql");
    std::fs::write(
        &script,
        format!(
            "INSERT INTO messages (device_id, session_id, is_queue, recipient, message_type, message, \
             calendar_type, schedule_at, status, is_sent, created_at, updated_at, due_at) VALUES ({device_id}, \
             'bench', TRUE, '62811010010010', 'text', 'Welcome home', 'masehi', '2025-09-08 02:44:00', \
             'pending', FALSE, now(), now(), '2025-09-08 02:44:00') RETURNING *;\n"
        ),
    )
    .ok()?;
    let per_client = (requests / concurrency).max(1);
    let prefix = dir.join("log");
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-M",
            "prepared",
            "-c",
            &concurrency.to_string(),
            "-j",
            "2",
            "-t",
            &per_client.to_string(),
        ])
        .arg("-f")
        .arg(&script)
        .arg("--log")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg(db_url)
        .output()
        .ok()?;
    if !output.status.success() {
        eprintln!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let tps = stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<f64>().ok())?;
    // Per-transaction logs: the third column is the latency in microseconds.
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(&dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("log") {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            latencies.extend(
                text.lines()
                    .filter_map(|l| l.split_whitespace().nth(2))
                    .filter_map(|v| v.parse::<f64>().ok())
                    .map(|us| us / 1000.0),
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Some(Round {
        throughput: tps,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
    })
}

/// Serves a gateway on `db` and measures `rounds` rounds of POST /api/messages on it; with
/// `pgbench`, each round is followed by a pgbench round on the same database and table.
async fn bench_backend(
    db: &TestDatabase,
    concurrency: usize,
    requests: usize,
    rounds: usize,
    pgbench: bool,
) -> (Vec<Round>, Vec<Round>) {
    let admin = wapim_domain::token::generate_secret_token();
    let settings = Settings::load_from([
        ("WAPIM_DATABASE__URL".to_owned(), db.url.clone()),
        (
            "WAPIM_DATABASE__POOL_MAX_SIZE".to_owned(),
            concurrency.to_string(),
        ),
        (
            "WAPIM_DATABASE__CREATE_IF_MISSING".to_owned(),
            "false".to_owned(),
        ),
        ("WAPIM_AUTH__ADMIN_TOKEN".to_owned(), admin.clone()),
        ("WAPIM_LOG__LEVEL".to_owned(), "warn".to_owned()),
    ])
    .expect("settings");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let pool = wapim_gateway::prepare_database(&settings.database)
        .await
        .expect("database");
    let app = Application::build(&settings, pool, listener).expect("gateway");
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let device: serde_json::Value = client
        .post(format!("{base}/api/devices"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Bench", "phone_number": "0811010010010"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = device["data"]["session_id"].as_str().unwrap().to_owned();
    let token = device["data"]["secret_token"].as_str().unwrap().to_owned();
    let device_id = device["data"]["id"].as_i64().unwrap();

    // Warm both paths (connections, prepared statements, caches).
    gateway_round(&base, &session, &token, concurrency * 4, concurrency).await;
    let pgbench =
        pgbench && pgbench_round(&db.url, device_id, concurrency * 4, concurrency).is_some();

    let (mut gw, mut pg) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        gw.push(gateway_round(&base, &session, &token, requests, concurrency).await);
        if pgbench {
            let url = db.url.clone();
            let r = tokio::task::spawn_blocking(move || {
                pgbench_round(&url, device_id, requests, concurrency)
            })
            .await
            .unwrap();
            pg.extend(r);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Stop serving before the database is dropped and the process exits, so no worker thread
    // is mid-query while libpq and OpenSSL tear down.
    server.stop(true).await;
    (gw, pg)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run a tiny smoke then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let requests = if smoke {
        64
    } else {
        env_usize("BENCH_REQUESTS", 3000)
    };
    let concurrency = env_usize("BENCH_CONCURRENCY", 16);
    let rounds = if smoke {
        1
    } else {
        env_usize("BENCH_ROUNDS", 3)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let pg_db = TestDatabase::create_on(TestBackend::Postgres);
    let (gw, pg) = runtime.block_on(bench_backend(&pg_db, concurrency, requests, rounds, true));
    let lite_db = TestDatabase::create_on(TestBackend::Sqlite);
    let (lite, _) = runtime.block_on(bench_backend(
        &lite_db,
        concurrency,
        requests,
        rounds,
        false,
    ));
    drop(runtime);

    let med = |v: &[Round], f: fn(&Round) -> f64| median(v.iter().map(f).collect());
    println!("POST /api/messages, {requests} requests x {rounds} rounds, concurrency {concurrency} (medians)");
    println!(
        "  gateway on PostgreSQL : {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
        med(&gw, |r| r.throughput),
        med(&gw, |r| r.p50_ms),
        med(&gw, |r| r.p99_ms)
    );
    println!(
        "  gateway on SQLite     : {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   (one writer, WAL, same machine)",
        med(&lite, |r| r.throughput),
        med(&lite, |r| r.p50_ms),
        med(&lite, |r| r.p99_ms)
    );
    if pg.is_empty() {
        println!("  pgbench               : not available (install postgresql-client / contrib); no baseline");
    } else {
        println!(
            "  pgbench               : {:>9.0} tx/s    p50 {:>7.2} ms   p99 {:>7.2} ms   (same INSERT ... RETURNING, same table)",
            med(&pg, |r| r.throughput),
            med(&pg, |r| r.p50_ms),
            med(&pg, |r| r.p99_ms)
        );
        println!(
            "  ratio                 : throughput gateway(PostgreSQL)/pgbench = {:.2}   p50 latency gateway/pgbench = {:.2}",
            med(&gw, |r| r.throughput) / med(&pg, |r| r.throughput),
            med(&gw, |r| r.p50_ms) / med(&pg, |r| r.p50_ms)
        );
    }
    drop(pg_db);
    drop(lite_db);
}

//! `make bench-ingest`: the webhook ingest taking WAHA's `message.ack` events (DEVICE, signed)
//! at fixed concurrency, beside `pgbench` running the single-row UPDATE an ack boils down to on
//! the same table of the same database, in the same run, reported as ratios.
//!
//! Per round it seeds `BENCH_ACKS` sent messages (distinct WhatsApp ids), fires one signed
//! `message.ack` per message at `BENCH_CONCURRENCY` from a keep-alive client and measures the
//! answers (per second, p50/p99 latency), then how long until every message of the round is
//! `delivered` in the database (the processor applies events after the answer; polled with a
//! COUNT every 50 ms); then `pgbench -T` updates rows of that round for `BENCH_PGBENCH_SECS`.
//!
//! Knobs (environment): `BENCH_ACKS` per round (default 6000), `BENCH_CONCURRENCY` (default
//! 16), `BENCH_ROUNDS` (default 3; medians are reported), `BENCH_PGBENCH_SECS` (default 10),
//! `BENCH_POOL_SIZE` (the ingest's `WAPIM_DATABASE__POOL_MAX_SIZE`; default: the concurrency),
//! `WAPIM_TEST_DATABASE_URL` (server to create the throwaway database on).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha512;
use wapim_settings::Settings;
use wapim_testkit::{TestBackend, TestDatabase};
use wapim_webhook_ingest::{Application, HMAC_HEADER};

/// The device's session and the key WAHA signs its webhooks with.
const SESSION: &str = "bench";
const KEY: &str = "b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4";

/// Target on the 2-core machine the figures in docs/benchmarks.md come from.
const TARGET_ACKS_PER_SEC: f64 = 3000.0;
const TARGET_P99_MS: f64 = 20.0;

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn sign(body: &str) -> String {
    let mut mac = Hmac::<Sha512>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The WhatsApp id of seeded message `n` (also its row id).
fn provider_id(n: usize) -> String {
    format!("true_62811{n:08}@c.us_3EB0BENCH{n:012}")
}

/// One ingest round.
struct IngestRound {
    answers_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    applied_per_sec: f64,
    /// From the last answer until every message of the round was `delivered`.
    apply_lag_ms: f64,
}

/// One pgbench round.
struct PgRound {
    tps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Inserts messages `lo..=hi` (row id = `n`), status `sent`, WhatsApp id [`provider_id`].
fn seed(db: &TestDatabase, lo: usize, hi: usize) {
    db.execute(&format!(
        "INSERT INTO messages (id, device_id, session_id, is_queue, recipient, message_type, message, \
         calendar_type, status, is_sent, provider_message_id, wa_message_id, sent_at, status_updated_at, \
         created_at, updated_at, due_at, attempts) \
         SELECT g, d.id, '{SESSION}', TRUE, '62811' || lpad(g::text, 8, '0'), 'text', 'Welcome home', \
         'masehi', 'sent', TRUE, 'true_62811' || lpad(g::text, 8, '0') || '@c.us_3EB0BENCH' || lpad(g::text, 12, '0'), \
         '3EB0BENCH' || lpad(g::text, 12, '0'), now(), now(), now(), now(), now(), 1 \
         FROM devices d, generate_series({lo}, {hi}) g WHERE d.session_id = '{SESSION}'; \
         ANALYZE messages;"
    ));
}

/// How many messages are `delivered` (the whole table: only the bench writes to it).
fn delivered(conn: &mut wapim_store::DbConn) -> i64 {
    wapim_store::messages::status_counts(conn)
        .unwrap()
        .into_iter()
        .find(|(s, _)| s == "delivered")
        .map_or(0, |(_, n)| n)
}

/// Fires one DEVICE ack per message `lo..=hi` at `concurrency`, then waits until all of them
/// are `delivered` (`delivered_before` were before the round).
async fn ingest_round(
    url: &str,
    db: &TestDatabase,
    lo: usize,
    hi: usize,
    concurrency: usize,
    delivered_before: i64,
) -> IngestRound {
    // Bodies and signatures are made before the clock starts: WAHA's work, not the ingest's.
    let stamp = chrono::Utc::now().timestamp_millis();
    let events: Arc<Vec<(String, String)>> = Arc::new(
        (lo..=hi)
            .map(|n| {
                let body = json!({
                    "id": format!("evt_bench_{n:012}"), "timestamp": stamp, "event": "message.ack",
                    "session": SESSION, "engine": "NOWEB", "metadata": {}, "me": null, "environment": {},
                    "payload": {"id": provider_id(n), "from": format!("62811{n:08}@c.us"),
                                "fromMe": true, "ack": 2, "ackName": "DEVICE"},
                })
                .to_string();
                let signature = sign(&body);
                (body, signature)
            })
            .collect(),
    );
    let total = events.len();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, events, next, url) =
            (client.clone(), events.clone(), next.clone(), url.to_owned());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(total / concurrency + 1);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((body, signature)) = events.get(i) else {
                    break;
                };
                let t = Instant::now();
                let res = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header(HMAC_HEADER, signature)
                    .header("X-Webhook-Hmac-Algorithm", "sha512")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("the ingest answers");
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                assert!(
                    status.is_success(),
                    "event {i} of the round answered {status}: {text}"
                );
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::with_capacity(total);
    for w in workers {
        all.extend(w.await.expect("a load worker failed (see the panic above)"));
    }
    let answered = started.elapsed();
    assert_eq!(all.len(), total, "every event was answered");

    // Applied: poll the count every 50 ms (one connection) until every message of the round is
    // delivered.
    let expected = delivered_before + total as i64;
    let mut conn = db.connect();
    let applied = tokio::task::spawn_blocking(move || loop {
        let now = delivered(&mut conn);
        if now >= expected {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "after 300 s only {} of {total} acks were applied",
            now - delivered_before
        );
        std::thread::sleep(Duration::from_millis(50));
    })
    .await
    .expect("every ack was applied (see the panic above)");

    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    IngestRound {
        answers_per_sec: total as f64 / answered.as_secs_f64(),
        p50_ms: percentile(&all, 50.0),
        p99_ms: percentile(&all, 99.0),
        applied_per_sec: total as f64 / applied.as_secs_f64(),
        apply_lag_ms: (applied - answered).as_secs_f64() * 1000.0,
    }
}

/// pgbench: the single-row UPDATE an ack boils down to, on rows `lo..=hi` of the same table,
/// minus HTTP, the signature, recording the event and the processor.
fn pgbench_round(
    db_url: &str,
    lo: usize,
    hi: usize,
    concurrency: usize,
    seconds: usize,
) -> Option<PgRound> {
    let dir = std::env::temp_dir().join(format!(
        "wapim-bench-ingest-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir).ok()?;
    let script = dir.join("update.sql");
    std::fs::write(
        &script,
        format!(
            "\\set id random({lo}, {hi})\n\
             UPDATE messages SET status = 'delivered', delivered_at = now() WHERE id = :id;\n"
        ),
    )
    .ok()?;
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
            "-T",
            &seconds.to_string(),
        ])
        .arg("-f")
        .arg(&script)
        .arg("--log")
        .arg(format!("--log-prefix={}", prefix.display()))
        .arg(db_url)
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) => {
            eprintln!("pgbench could not run: {e}");
            let _ = std::fs::remove_dir_all(&dir);
            return None;
        }
    };
    if !output.status.success() {
        eprintln!(
            "pgbench failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
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
    Some(PgRound {
        tps,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
    })
}

/// Serves the ingest on `db` and measures `rounds` rounds; each is followed by a pgbench round on
/// the same database and table.
async fn bench(
    db: Arc<TestDatabase>,
    acks: usize,
    concurrency: usize,
    rounds: usize,
    pgbench_secs: usize,
) -> (Vec<IngestRound>, Vec<PgRound>) {
    let settings = Settings::load_from([
        ("WAPIM_DATABASE__URL".to_owned(), db.url.clone()),
        (
            "WAPIM_DATABASE__POOL_MAX_SIZE".to_owned(),
            env_usize("BENCH_POOL_SIZE", concurrency).to_string(),
        ),
        (
            "WAPIM_DATABASE__CREATE_IF_MISSING".to_owned(),
            "false".to_owned(),
        ),
        ("WAPIM_LOG__LEVEL".to_owned(), "warn".to_owned()),
    ])
    .expect("settings");
    // Migrates the throwaway database, as the binary's start-up does.
    let pool = wapim_web::db::prepare(&settings.database)
        .await
        .expect("database");
    db.execute(&format!(
        "INSERT INTO devices (name, session_id, phone_number, secret_token_hash, secret_token_masked, \
         status, created_at, updated_at, webhook_hmac_key) \
         VALUES ('Bench', '{SESSION}', '62811010010010', 'h', 'm', 'working', now(), now(), '{KEY}')"
    ));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build(&settings, pool, listener).expect("ingest");
    let url = format!("http://127.0.0.1:{}/api/v1/waha-webhook", app.port());
    let server = tokio::spawn(app.run_until_stopped());

    // Warm both paths (connections, prepared statements, caches) on rows of their own.
    let warm = concurrency * 20;
    let mut next = 1;
    seed(&db, next, next + warm - 1);
    let mut done = 0;
    ingest_round(&url, &db, next, next + warm - 1, concurrency, done).await;
    done += warm as i64;
    let url_pg = db.url.clone();
    let (lo, hi) = (next, next + warm - 1);
    let pgbench =
        tokio::task::spawn_blocking(move || pgbench_round(&url_pg, lo, hi, concurrency, 1))
            .await
            .unwrap()
            .is_some();
    next += warm;

    let (mut ingest, mut pg) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (lo, hi) = (next, next + acks - 1);
        next += acks;
        let seed_db = db.clone();
        tokio::task::spawn_blocking(move || seed(&seed_db, lo, hi))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = ingest_round(&url, &db, lo, hi, concurrency, done).await;
        done += acks as i64;
        println!(
            "  round {round}: ingest {:>6.0} answers/s  p50 {:>6.2} ms  p99 {:>6.2} ms  applied {:>6.0}/s (all delivered {:.0} ms after the last answer)",
            r.answers_per_sec, r.p50_ms, r.p99_ms, r.applied_per_sec, r.apply_lag_ms
        );
        ingest.push(r);
        if pgbench {
            // The rows this round just delivered: the same table, rows of the same shape.
            let url_pg = db.url.clone();
            let p = tokio::task::spawn_blocking(move || {
                pgbench_round(&url_pg, lo, hi, concurrency, pgbench_secs)
            })
            .await
            .unwrap();
            if let Some(p) = &p {
                println!(
                    "  round {round}: pgbench {:>6.0} tx/s       p50 {:>6.2} ms  p99 {:>6.2} ms",
                    p.tps, p.p50_ms, p.p99_ms
                );
            }
            pg.extend(p);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Stop serving before the database is dropped.
    server.abort();
    (ingest, pg)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run a tiny smoke then.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let acks = if smoke {
        64
    } else {
        env_usize("BENCH_ACKS", 6000)
    };
    let concurrency = env_usize("BENCH_CONCURRENCY", 16).max(1);
    let rounds = if smoke {
        1
    } else {
        env_usize("BENCH_ROUNDS", 3).max(1)
    };
    let pgbench_secs = if smoke {
        1
    } else {
        env_usize("BENCH_PGBENCH_SECS", 10).max(1)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let db = Arc::new(TestDatabase::create_on(TestBackend::Postgres));
    println!(
        "message.ack (DEVICE) into the webhook ingest, {acks} events x {rounds} rounds, concurrency {concurrency}, pool {}",
        env_usize("BENCH_POOL_SIZE", concurrency)
    );
    let (ingest, pg) = runtime.block_on(bench(db.clone(), acks, concurrency, rounds, pgbench_secs));
    // Ends the processor and the server task (and their connections) before the drop.
    runtime.shutdown_timeout(Duration::from_secs(5));

    let med = |v: &[IngestRound], f: fn(&IngestRound) -> f64| median(v.iter().map(f).collect());
    let (acks_s, p50, p99) = (
        med(&ingest, |r| r.answers_per_sec),
        med(&ingest, |r| r.p50_ms),
        med(&ingest, |r| r.p99_ms),
    );
    println!("medians over {rounds} rounds:");
    println!("  ingest, answers   : {acks_s:>9.0} acks/s   p50 {p50:>7.2} ms   p99 {p99:>7.2} ms");
    println!(
        "  ingest, applied   : {:>9.0} acks/s   (every message delivered; {:.0} ms after the last answer)",
        med(&ingest, |r| r.applied_per_sec),
        med(&ingest, |r| r.apply_lag_ms)
    );
    if pg.is_empty() {
        println!("  pgbench           : not available (install postgresql-client / contrib); no baseline");
    } else {
        let mp = |f: fn(&PgRound) -> f64| median(pg.iter().map(f).collect());
        println!(
            "  pgbench           : {:>9.0} tx/s     p50 {:>7.2} ms   p99 {:>7.2} ms   (UPDATE messages … WHERE id = :id, same table, -T {pgbench_secs})",
            mp(|r| r.tps),
            mp(|r| r.p50_ms),
            mp(|r| r.p99_ms)
        );
        println!(
            "  ratios            : answers/pgbench = {:.2}   applied/pgbench = {:.2}   p50 ingest/pgbench = {:.2}   p99 ingest/pgbench = {:.2}",
            acks_s / mp(|r| r.tps),
            med(&ingest, |r| r.applied_per_sec) / mp(|r| r.tps),
            p50 / mp(|r| r.p50_ms),
            p99 / mp(|r| r.p99_ms)
        );
    }
    let holds = acks_s >= TARGET_ACKS_PER_SEC && p99 < TARGET_P99_MS;
    println!(
        "  target (>= {TARGET_ACKS_PER_SEC:.0} acks/s answered, p99 < {TARGET_P99_MS:.0} ms): {}",
        if holds { "holds" } else { "NOT met" }
    );
    // Drops the throwaway database.
    drop(db);
}

//! The `wapim` binary as users run it, on both set-ups from one body: SQLite with the in-process
//! queue (the default, nothing else installed) and PostgreSQL with RabbitMQ (configuration only).
//! A real process on a real port, the WAHA simulator acking every send, and `kill -9`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wapim_testkit::{TestBackend, TestDatabase};
use wapim_waha_sim::{Faults, SimConfig, SimHandle};

mod browser;

/// One `wapim` process and what it printed.
struct Process {
    child: Child,
    base: String,
    lines: mpsc::Receiver<String>,
}

/// What a test's processes share: the database, the queue and the simulator.
struct Setup {
    db: TestDatabase,
    amqp_url: String,
    prefix: String,
    sim: SimHandle,
    port: u16,
    client: reqwest::Client,
}

impl Setup {
    async fn new() -> Self {
        let db = TestDatabase::create();
        let sim = wapim_waha_sim::start(
            SimConfig {
                acks: true,
                ack_delay: Duration::from_millis(30),
                ..SimConfig::default()
            },
            TcpListener::bind("127.0.0.1:0").unwrap(),
        )
        .await
        .unwrap();
        let amqp_url = match db.backend {
            TestBackend::Sqlite => "memory://".to_owned(),
            TestBackend::Postgres => std::env::var("WAPIM_TEST_AMQP_URL")
                .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned()),
        };
        let prefix = format!("t_{}.", &wapim_domain::token::generate_secret_token()[..20]);
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            db,
            amqp_url,
            prefix,
            sim,
            port,
            client: reqwest::Client::new(),
        }
    }

    /// Starts `wapim` (with `admin_token`, or none: it generates one) and waits until it answers.
    async fn spawn(&self, admin_token: Option<&str>) -> Process {
        self.spawn_with(admin_token, &[]).await
    }

    /// [`Setup::spawn`] with `extra_env` (`WAPIM_…` settings) on top of the test defaults.
    async fn spawn_with(&self, admin_token: Option<&str>, extra_env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wapim"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WAPIM_DATABASE__URL", &self.db.url)
            .env("WAPIM_DATABASE__CREATE_IF_MISSING", "false")
            .env("WAPIM_AMQP__URL", &self.amqp_url)
            .env("WAPIM_AMQP__PREFIX", &self.prefix)
            .env("WAPIM_HTTP__PORT", self.port.to_string())
            .env("WAPIM_WAHA__URL", self.sim.base_url())
            .env("WAPIM_PACING__MIN_INTERVAL_MS", "0")
            .env("WAPIM_PACING__JITTER_MS", "0")
            .env("WAPIM_DISPATCHER__SWEEP_SECS", "1")
            .env("WAPIM_DISPATCHER__LEASE_SECS", "20")
            .env("WAPIM_LOG__LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(token) = admin_token {
            command.env("WAPIM_AUTH__ADMIN_TOKEN", token);
        }
        command.envs(extra_env.iter().copied());
        let mut child = command.spawn().expect("wapim starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let base = format!("http://127.0.0.1:{}", self.port);
        let started = Instant::now();
        while reqwest::get(format!("{base}/health/ready"))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "wapim never answers"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Process { child, base, lines }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if self.amqp_url.starts_with("memory") {
            return;
        }
        let config = wapim_broker::BrokerConfig {
            url: self.amqp_url.clone(),
            prefix: self.prefix.clone(),
            prefetch: 1,
            delivery_limit: 10,
        };
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(broker) = wapim_broker::Broker::connect(&config).await {
                    let _ = broker.delete_topology().await;
                }
            });
        })
        .join();
    }
}

impl Process {
    /// The printed line starting with `prefix` (waits a little for it).
    fn printed(&self, prefix: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if let Some(rest) = line.trim().strip_prefix(prefix) {
                return Some(rest.trim().to_owned());
            }
        }
        None
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

/// A child process killed (and reaped) when the test ends, also when an assertion fails first:
/// no `wapim` outlives its test.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Registers a device and logs its session in on the simulator once the dispatcher created it.
async fn paired_device(s: &Setup, base: &str, token: &str) -> (String, String) {
    let (status, made) = call(
        &s.client,
        reqwest::Method::POST,
        format!("{base}/api/devices"),
        token,
        Some(json!({"name": "Shop", "phone_number": "0811010010010"})),
    )
    .await;
    assert_eq!(status, 200, "{made}");
    let session = made["data"]["session_id"].as_str().unwrap().to_owned();
    let started = Instant::now();
    while !s.sim.login(&session) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the session is never created on WAHA"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (
        session,
        made["data"]["secret_token"].as_str().unwrap().to_owned(),
    )
}

async fn wait_for_status(s: &Setup, base: &str, token: &str, id: i64, status: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, m) = call(
            &s.client,
            reqwest::Method::GET,
            format!("{base}/api/messages/{id}"),
            token,
            None,
        )
        .await;
        // Reached, or gone past it (acks can take a message from sent to read between polls).
        let order = ["pending", "processing", "sent", "delivered", "read"];
        let rank = |s: &str| order.iter().position(|o| *o == s);
        let now = m["data"]["status"].as_str().unwrap_or_default();
        if now == status || rank(now).zip(rank(status)).is_some_and(|(n, w)| n > w) {
            return m["data"].clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "message {id} never {status}: {m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

wapim_testkit::both_backends! {
    async fn wapim_starts_with_a_generated_operator_token_and_a_message_goes_pending_to_read() {
        let s = Setup::new().await;
        let p = s.spawn(None).await;
        let token = p.printed("Operator token (shown once, only its hash is kept):").expect("a token is printed at the first start");
        let (session, secret) = paired_device(&s, &p.base, &token).await;
        let r = s.client.post(format!("{}/api/messages", p.base))
            .header("X-Session-Id", &session).header("X-Session-Secret-Token", &secret)
            .json(&json!({"recipient": "0811010010011", "message_type": "text", "message": "one process"}))
            .send().await.unwrap();
        assert_eq!(r.status(), 200);
        let id = r.json::<Value>().await.unwrap()["data"]["id"].as_i64().unwrap();
        let m = wait_for_status(&s, &p.base, &token, id, "read").await;
        assert!(m["delivered_at"].is_string() && m["read_at"].is_string(), "{m}");
        // Its read shows the send attempt that sent it.
        assert_eq!(m["attempt_log"].as_array().map(Vec::len), Some(1), "{m}");
        assert_eq!(m["attempt_log"][0]["outcome"], "sent", "{m}");
        assert_eq!(m["attempt_log"][0]["attempt"], 1, "{m}");
        // The pipeline's metrics: jobs, WAHA calls, send latency, acks.
        let text = s.client.get(format!("{}/metrics", p.base)).send().await.unwrap().text().await.unwrap();
        for needle in [
            r#"wapim_jobs_published_total{kind="send_message"} 1"#,
            r#"wapim_jobs_handled_total{kind="send_message",outcome="sent"} 1"#,
            "wapim_send_latency_seconds_count 1",
            r#"wapim_ack_lag_seconds_count{stage="read"} 1"#,
            r#"wapim_waha_events_total{event="message.ack"}"#,
            r#"wapim_waha_request_duration_seconds_count{outcome="ok"}"#,
        ] {
            assert!(text.contains(needle), "{needle} in {text}");
        }
        // Ready: database, schema and queue.
        let r: Value = s.client.get(format!("{}/readyz", p.base)).send().await.unwrap().json().await.unwrap();
        assert_eq!(r["data"]["broker"], "up", "{r}");
        // The ingest answers on the same port.
        let r = s.client.post(format!("{}/api/v1/waha-webhook", p.base)).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 422);
        // Restarted, it keeps the token it generated (only its hash) and prints none.
        p.kill();
        let again = s.spawn(None).await;
        assert_eq!(again.printed("Operator token (shown once"), None);
        let (status, _) = call(&s.client, reqwest::Method::GET, format!("{}/api/devices", again.base), &token, None).await;
        assert_eq!(status, 200);
        let (status, _) = call(&s.client, reqwest::Method::GET, format!("{}/api/devices", again.base), "0123456789abcdef0123456789abcdef", None).await;
        assert_eq!(status, 401);
    }

    async fn wapim_stops_on_sigterm_with_exit_code_0() {
        let s = Setup::new().await;
        let mut p = s.spawn(Some(&wapim_domain::token::generate_secret_token())).await;
        let term = Command::new("kill").args(["-TERM", &p.child.id().to_string()]).status().unwrap();
        assert!(term.success());
        let started = Instant::now();
        let status = loop {
            if let Some(status) = p.child.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "still running after SIGTERM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(status.code(), Some(0));
    }

    async fn wapim_killed_with_messages_in_flight_loses_none_and_sends_none_twice() {
        let s = Setup::new().await;
        let token = wapim_domain::token::generate_secret_token();
        let p = s.spawn(Some(&token)).await;
        let (session, secret) = paired_device(&s, &p.base, &token).await;
        // Paced, slow sends: one in flight, the rest queued or held, when the process dies.
        let (status, body) = call(&s.client, reqwest::Method::PATCH, format!("{}/api/devices/1", p.base), &token, Some(json!({"pacing_min_interval_ms": 100, "pacing_jitter_ms": 0}))).await;
        assert_eq!(status, 200, "{body}");
        s.sim.set_faults(Faults { latency: Duration::from_millis(300), ..Faults::default() });
        let texts: Vec<String> = (0..20).map(|i| format!("survivor {i}")).collect();
        let items: Vec<Value> = texts.iter().map(|t| json!({"recipient": "0811010010011", "message_type": "text", "message": t})).collect();
        let r = s.client.post(format!("{}/api/messages-batch", p.base))
            .header("X-Session-Id", &session).header("X-Session-Secret-Token", &secret)
            .json(&json!({"items": items})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let started = Instant::now();
        while s.sim.send_count() < 3 {
            assert!(started.elapsed() < Duration::from_secs(30), "nothing is sent");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        p.kill();
        let before = s.sim.send_count();
        assert!(before < texts.len(), "killed before the end ({before} sent)");
        s.sim.set_faults(Faults::default());
        let again = s.spawn(Some(&token)).await;
        let started = Instant::now();
        loop {
            let sends = s.sim.sends();
            let done = texts.iter().all(|t| sends.iter().any(|x| x.body["text"] == t.as_str()));
            if done {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{} of {} sent after the restart", sends.len(), texts.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Every message is acked read: nothing is left to send, so the count is final. The one
        // in flight at the kill is recorded sent only when its claim's lease (20 s here) runs out
        // and the send is looked up; its acks, which came meanwhile, wait for that.
        let started = Instant::now();
        loop {
            let (_, read) = call(&s.client, reqwest::Method::GET, format!("{}/api/messages?status=read&per_page=1", again.base), &token, None).await;
            if read["data"]["meta"]["total"] == texts.len() {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{read}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sends = s.sim.sends();
        for t in &texts {
            assert_eq!(sends.iter().filter(|x| x.body["text"] == t.as_str()).count(), 1, "{t} sent once: {sends:?}");
        }
    }
}

/// `wapim --demo` as the README tells a newcomer to run it: the printed curl lines work and the
/// message reaches `read` (one database-free set-up: the demo always runs embedded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_prints_working_curl_lines_and_its_message_reaches_read() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wapim"))
        .arg("--demo")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("WAPIM_HTTP__PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("wapim --demo starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let process = Process {
        child,
        base: format!("http://127.0.0.1:{port}"),
        lines,
    };
    let token = process
        .printed("Operator token (this demo run):")
        .expect("the demo prints its token");
    let send = std::iter::from_fn(|| process.printed("curl -s -X POST http://127.0.0.1"))
        .find(|l| l.contains("/api/messages"))
        .expect("a send line");
    let header = |name: &str| {
        let start = send.find(&format!("{name}: ")).unwrap() + name.len() + 2;
        send[start..].split('\'').next().unwrap().to_owned()
    };
    let (session, secret) = (header("X-Session-Id"), header("X-Session-Secret-Token"));
    let client = reqwest::Client::new();
    // The simulated phone scans the QR code by itself; until then the message is held.
    let r = client.post(format!("{}/api/messages", process.base))
        .header("X-Session-Id", &session).header("X-Session-Secret-Token", &secret)
        .json(&json!({"recipient": "0811000000002", "message_type": "text", "message": "Hello from Wapim"}))
        .send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap();
    let started = Instant::now();
    loop {
        let (_, m) = call(
            &client,
            reqwest::Method::GET,
            format!("{}/api/messages/{id}", process.base),
            &token,
            None,
        )
        .await;
        if m["data"]["status"] == "read" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not read within a minute: {m}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Stopped gracefully, the demo removes its database file.
    let mut process = process;
    let pid = process.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let stopping = Instant::now();
    while process.child.try_wait().unwrap().is_none() {
        assert!(
            stopping.elapsed() < Duration::from_secs(20),
            "still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let file = std::env::temp_dir().join(format!("wapim-demo-{pid}.db"));
    assert!(!file.exists(), "{} is left behind", file.display());
}

/// With `WAPIM_TELEMETRY__OTLP_ENDPOINT`, the message's one trace — the integrator's
/// `traceparent` on the API call, continued through the queue to WAHA — is exported over OTLP
/// (flushed at a graceful stop).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_a_message_are_exported_over_otlp_under_the_callers_trace() {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let bodies: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>> = Default::default();
    let seen = bodies.clone();
    let collector = HttpServer::new(move || {
        let seen = seen.clone();
        App::new().route(
            "/v1/traces",
            web::post().to(move |body: web::Bytes| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(body.to_vec());
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let collector_port = collector.addrs()[0].port();
    tokio::spawn(collector.run());

    let s = Setup::new().await;
    let token = wapim_domain::token::generate_secret_token();
    let port = s.port;
    let mut child = Reaped(
        Command::new(env!("CARGO_BIN_EXE_wapim"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("WAPIM_DATABASE__URL", &s.db.url)
            .env("WAPIM_DATABASE__CREATE_IF_MISSING", "false")
            .env("WAPIM_AMQP__URL", &s.amqp_url)
            .env("WAPIM_AMQP__PREFIX", &s.prefix)
            .env("WAPIM_HTTP__PORT", port.to_string())
            .env("WAPIM_WAHA__URL", s.sim.base_url())
            .env("WAPIM_PACING__MIN_INTERVAL_MS", "0")
            .env("WAPIM_PACING__JITTER_MS", "0")
            .env("WAPIM_AUTH__ADMIN_TOKEN", &token)
            .env("WAPIM_LOG__LEVEL", "warn")
            .env(
                "WAPIM_TELEMETRY__OTLP_ENDPOINT",
                format!("http://127.0.0.1:{collector_port}"),
            )
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{base}/readyz"))
        .await
        .map(|r| r.status() != 200)
        .unwrap_or(true)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "wapim never answers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (session, secret) = paired_device(&s, &base, &token).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = s
        .client
        .post(format!("{base}/api/messages"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("X-Session-Id", &session)
        .header("X-Session-Secret-Token", &secret)
        .json(&json!({"recipient": "0811010010011", "message_type": "text", "message": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap();
    wait_for_status(&s, &base, &token, id, "sent").await;
    // WAHA's request carried the same trace.
    let send = s
        .sim
        .calls()
        .into_iter()
        .find(|c| c.path == "/api/sendText")
        .unwrap();
    assert!(send.traceparent.unwrap_or_default().contains(trace_id));
    // A graceful stop flushes what is batched.
    assert!(Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap()
        .success());
    let stopping = Instant::now();
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            stopping.elapsed() < Duration::from_secs(20),
            "still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let raw: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let exported = bodies.lock().unwrap().clone();
    assert!(!exported.is_empty(), "no OTLP export arrived");
    let spans_of_trace = exported
        .iter()
        .map(|b| b.windows(16).filter(|w| *w == raw.as_slice()).count())
        .sum::<usize>();
    assert!(
        spans_of_trace >= 2,
        "the API call's and the send's spans carry the caller's trace id ({spans_of_trace} found)"
    );
}

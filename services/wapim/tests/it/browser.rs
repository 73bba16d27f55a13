//! The operator dashboard (issue 18) in a real browser: Debian's headless Chromium driven over
//! WebDriver (chromedriver, started here on a free loopback port) against a real `wapim` process
//! on SQLite, the WAHA simulator playing the phone. An operator logs in, creates a device, sees
//! it paired, sends a message and watches it reach `read`, then replays a failed webhook
//! delivery. Nothing is skipped: without /usr/bin/chromedriver the test fails and says how to
//! install it (`.ci/browser.sh`).
//!
//! With `WAPIM_SCREENSHOTS=1` each page visited is saved as `docs/screenshots/<page>.png`.
//!
//! Chromium never leaves loopback: background networking, component updates, sync and QUIC are
//! off, and every host name but the loopback ones resolves to nothing.

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use wapim_testkit::TestBackend;

use super::{call, wait_for_status, Setup};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the dashboard may take to show what the pipeline did (pairing, acks, deliveries).
const PATIENCE: Duration = Duration::from_secs(20);
/// How often a waiting step looks at the page again.
const POLL: Duration = Duration::from_millis(100);

/// A chromedriver of this test's own, on a free loopback port; stopped (its browsers with it)
/// and its Chromium profile removed when dropped, a failing test included.
struct Chromedriver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Chromedriver {
    async fn start() -> Self {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "{CHROMEDRIVER} or {CHROMIUM} is missing: run `bash .ci/browser.sh` (as root) to install \
             Debian's chromium and chromium-driver; this test is never skipped"
        );
        let profile = std::env::temp_dir().join(format!(
            "wapim-chromium-{}",
            &wapim_domain::token::generate_secret_token()[..16]
        ));
        // The port is free when picked, but another process may take it before chromedriver
        // binds it: then chromedriver exits, and another port is tried.
        let mut exits = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--log-level=WARNING")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("chromedriver starts");
            let started = Instant::now();
            loop {
                if let Some(status) = child.try_wait().expect("chromedriver's status") {
                    exits.push(format!("port {port}: {status}"));
                    break;
                }
                if driver_ready(port).await {
                    return Self {
                        child,
                        port,
                        profile,
                    };
                }
                if started.elapsed() > Duration::from_secs(15) {
                    let _ = child.kill();
                    let _ = child.wait();
                    exits.push(format!("port {port}: not ready within 15 s"));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        panic!("chromedriver never became ready: {exits:?}");
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A new headless Chromium session, 1280×900.
    async fn session(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", self.profile.display()),
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-default-apps",
                    "--disable-domain-reliability",
                    "--disable-client-side-phishing-detection",
                    "--disable-quic",
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
                ],
            }),
        );
        let client = ClientBuilder::native()
            .capabilities(caps)
            .connect(&self.url())
            .await
            .expect("a headless Chromium session");
        client
            .set_window_size(1280, 900)
            .await
            .expect("the window is sized");
        client
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        // chromedriver's own shutdown quits the browsers of sessions left open (a panic between
        // `session` and `close`); a bare kill would orphan them.
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = write!(
                stream,
                "GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver answers `GET /status` with `ready: true` once it takes sessions.
async fn driver_ready(port: u16) -> bool {
    let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/status")).await else {
        return false;
    };
    r.json::<Value>()
        .await
        .map(|v| v["value"]["ready"] == true)
        .unwrap_or(false)
}

/// The integrator's webhook: answers 500 to the first attempt of each delivery (by
/// `webhook-id`) and 200 to the next ones, and counts the attempts.
struct Receiver {
    url: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Receiver {
    fn start() -> Self {
        use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let seen = hits.clone();
        let server = HttpServer::new(move || {
            let seen = seen.clone();
            App::new().route(
                "/hook",
                web::post().to(move |req: HttpRequest, _body: web::Bytes| {
                    let seen = seen.clone();
                    async move {
                        let id = req
                            .headers()
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        let mut seen = seen.lock().unwrap();
                        let n = seen.entry(id).or_default();
                        *n += 1;
                        if *n == 1 {
                            HttpResponse::InternalServerError().body("down for the test")
                        } else {
                            HttpResponse::Ok().finish()
                        }
                    }
                }),
            )
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let url = format!("http://127.0.0.1:{}/hook", server.addrs()[0].port());
        tokio::spawn(server.run());
        Self { url, hits }
    }

    fn hits(&self, webhook_id: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .get(webhook_id)
            .copied()
            .unwrap_or(0)
    }
}

/// Polls `probe` until it gives a value, for at most `within` (no fixed sleeps: each step waits
/// only as long as the page needs).
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(POLL).await;
    }
}

/// The page as a failure message shows it: its address and the start of its text.
async fn page(c: &Client) -> String {
    let url = c
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    let text = match c.find(Locator::Css("body")).await {
        Ok(body) => body.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let text: String = text.chars().take(600).collect();
    format!("page {url}: {text:?}")
}

/// The element `css` must match now.
async fn must_find(c: &Client, css: &str) -> Element {
    match c.find(Locator::Css(css)).await {
        Ok(element) => element,
        Err(e) => panic!("no `{css}` ({e}); {}", page(c).await),
    }
}

/// The element `css` once it is on the page.
async fn wait_find(c: &Client, css: &str) -> Element {
    let started = Instant::now();
    loop {
        if let Ok(element) = c.find(Locator::Css(css)).await {
            return element;
        }
        if started.elapsed() > PATIENCE {
            panic!("`{css}` never shows; {}", page(c).await);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The trimmed visible text of `css`, or None while it is not there (or replaced by a refresh).
async fn text_of(c: &Client, css: &str) -> Option<String> {
    let element = c.find(Locator::Css(css)).await.ok()?;
    Some(element.text().await.ok()?.trim().to_owned())
}

/// Waits until the text of `css` is `want` (the pages refresh their status parts by polling).
async fn wait_text(c: &Client, css: &str, want: &str) {
    let started = Instant::now();
    loop {
        let seen = text_of(c, css).await;
        if seen.as_deref() == Some(want) {
            return;
        }
        if started.elapsed() > PATIENCE {
            panic!(
                "`{css}` never reads {want:?} (last {seen:?}); {}",
                page(c).await
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The current path, once it matches `wanted` (after a click that navigates).
async fn wait_path(c: &Client, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let path = c.current_url().await.map(|u| u.path().to_owned());
        if let Ok(path) = path {
            if wanted(&path) {
                return path;
            }
        }
        if started.elapsed() > PATIENCE {
            panic!("never on {what}; {}", page(c).await);
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let field = must_find(c, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    must_find(c, css).await.click().await.unwrap();
}

/// Saves the viewport as `docs/screenshots/<name>.png` when `WAPIM_SCREENSHOTS=1` (CI leaves
/// the tree clean).
async fn screenshot(c: &Client, name: &str) {
    if std::env::var("WAPIM_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let png = c.screenshot().await.expect("a screenshot");
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

/// Every dashboard page: the nav links and the logout form.
async fn has_nav_and_logout(c: &Client) {
    let nav = must_find(c, "nav").await;
    for link in ["Devices", "Messages", "Inbox", "Webhooks", "Queues"] {
        if nav.find(Locator::LinkText(link)).await.is_err() {
            panic!("no nav link {link:?}; {}", page(c).await);
        }
    }
    must_find(c, "form#logout").await;
}

async fn follow_nav(c: &Client, link: &str) {
    let nav = must_find(c, "nav").await;
    match nav.find(Locator::LinkText(link)).await {
        Ok(a) => a.click().await.unwrap(),
        Err(e) => panic!("no nav link {link:?} ({e}); {}", page(c).await),
    }
}

/// The number after `prefix` in `path` (`/dashboard/devices/7` → `7`).
fn id_after(path: &str, prefix: &str) -> Option<i64> {
    path.strip_prefix(prefix)?
        .trim_end_matches('/')
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_dashboard_in_headless_chromium() {
    wapim_testkit::on(TestBackend::Sqlite, dashboard()).await;
}

async fn dashboard() {
    // Chromium first: a machine without it fails at once, before any set-up.
    let browser_started = Instant::now();
    let driver = Chromedriver::start().await;
    let client = driver.session().await;
    let c = &client;
    let mark = |what: &str| {
        eprintln!(
            "[browser] {what} at {} ms",
            browser_started.elapsed().as_millis()
        )
    };
    mark("chromedriver and a Chromium session ready");

    let setup = Setup::new().await;
    let s = &setup;
    let receiver = Receiver::start();
    let receiver = &receiver;
    let p = s
        .spawn_with(
            None,
            &[
                ("WAPIM_WEBHOOKS__ALLOW_PRIVATE", "true"),
                // A failed attempt waits ten minutes for its retry: within the test only the
                // replay button sends it again.
                ("WAPIM_WEBHOOKS__RETRY_BASE_MS", "600000"),
            ],
        )
        .await;
    let token = p
        .printed("Operator token (shown once, only its hash is kept):")
        .expect("a token is printed at the first start");
    let token = token.as_str();
    let base = p.base.as_str();
    let dash = |path: &str| format!("{base}/dashboard{path}");
    mark("wapim up");

    // Login page.
    c.goto(&dash("/login")).await.unwrap();
    screenshot(c, "login").await;
    let form = c.find(Locator::Css("form#login")).await;
    assert!(
        form.is_ok(),
        "no form#login at /dashboard/login (is the dashboard of issue 18 in?); {}",
        page(c).await
    );
    must_find(c, "form#login input[name=token]").await;
    must_find(c, "form#login input[name=session_id]").await;
    must_find(c, "form#login input[name=secret_token]").await;
    // Without a session, the dashboard sends to the login page.
    c.goto(&dash("")).await.unwrap();
    wait_path(c, "/dashboard/login", |p| p == "/dashboard/login").await;
    // A wrong token: the login page again, with an error and 401 (the status read by posting
    // the form's own fields from the page).
    let status = c
        .execute(
            r#"const f = document.querySelector('form#login');
               const d = new FormData(f);
               d.set('token', 'wrong-token-0123456789abcdef0123');
               return fetch(f.action, {method: 'POST', body: new URLSearchParams(d), redirect: 'manual'})
                 .then(r => r.status);"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(401), "a wrong token; {}", page(c).await);
    // And as a person does it: a real form post (Chromium sends `Origin: null` with it under
    // `Referrer-Policy: no-referrer`, which an origin check must not take for another site).
    type_into(
        c,
        "form#login input[name=token]",
        "wrong-token-0123456789abcdef0123",
    )
    .await;
    click(c, "button#login-submit").await;
    let error = wait_find(c, ".error").await;
    assert!(
        !error.text().await.unwrap().trim().is_empty(),
        "an error text"
    );
    assert_eq!(c.current_url().await.unwrap().path(), "/dashboard/login");
    // The operator token: on to the devices.
    type_into(c, "form#login input[name=token]", token).await;
    click(c, "button#login-submit").await;
    wait_path(c, "/dashboard/devices", |p| p == "/dashboard/devices").await;
    has_nav_and_logout(c).await;
    mark("logged in");

    // A device through the form, paired by the simulated phone.
    type_into(c, "form#create-device input[name=name]", "Shop").await;
    type_into(
        c,
        "form#create-device input[name=phone_number]",
        "0811010010010",
    )
    .await;
    click(c, "button#create-device-submit").await;
    let path = wait_path(c, "/dashboard/devices/<id>", |p| {
        id_after(p, "/dashboard/devices/").is_some()
    })
    .await;
    let device_id = id_after(&path, "/dashboard/devices/").unwrap();
    has_nav_and_logout(c).await;
    let secret = text_of(c, "#device-secret-token").await.unwrap_or_default();
    assert!(
        !secret.is_empty(),
        "the secret token is shown once; {}",
        page(c).await
    );
    let session = text_of(c, "#device-session-id").await.unwrap_or_default();
    assert!(!session.is_empty(), "the session id; {}", page(c).await);
    screenshot(c, "device-created").await;
    // The secrets' page never reloads by itself; the device's page (which does) never shows them.
    click(c, "a#continue-pairing").await;
    wait_find(c, "#device-status").await;
    assert!(
        text_of(c, "#device-secret-token").await.is_none(),
        "the secret is shown once"
    );
    for action in ["resume", "resync", "restart", "logout"] {
        must_find(c, &format!("form.action-{action} button")).await;
    }
    wait_find(c, "img#pairing-qr").await;
    screenshot(c, "device").await;
    let started = Instant::now();
    while !s.sim.login(&session) {
        assert!(
            started.elapsed() < PATIENCE,
            "the session {session} is never created on WAHA"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_text(c, "#device-status", "working").await;
    wait_find(c, "#paired").await;
    for qr in c.find_all(Locator::Css("img#pairing-qr")).await.unwrap() {
        assert!(
            !qr.is_displayed().await.unwrap_or(false),
            "no QR code once working"
        );
    }
    mark("device created and paired");

    // The device list shows it working.
    follow_nav(c, "Devices").await;
    wait_path(c, "/dashboard/devices", |p| p == "/dashboard/devices").await;
    wait_text(
        c,
        &format!("table#devices tr[data-device-id=\"{device_id}\"] td.status"),
        "working",
    )
    .await;
    screenshot(c, "devices").await;

    // A message through the form, watched to `read`.
    follow_nav(c, "Messages").await;
    wait_path(c, "/dashboard/messages", |p| p == "/dashboard/messages").await;
    has_nav_and_logout(c).await;
    must_find(c, "form#send-message select[name=device_id]")
        .await
        .select_by_value(&device_id.to_string())
        .await
        .unwrap();
    type_into(
        c,
        "form#send-message input[name=recipient]",
        "0811010010010",
    )
    .await;
    type_into(
        c,
        "form#send-message textarea[name=message]",
        "Hello from the dashboard",
    )
    .await;
    screenshot(c, "messages").await;
    click(c, "button#send-message-submit").await;
    let path = wait_path(c, "/dashboard/messages/<id>", |p| {
        id_after(p, "/dashboard/messages/").is_some()
    })
    .await;
    let message_id = id_after(&path, "/dashboard/messages/").unwrap();
    let read = "ol#timeline li[data-step=read]";
    eventually(&format!("{read} done"), PATIENCE, || async move {
        let li = c.find(Locator::Css(read)).await.ok()?;
        (li.attr("data-done").await.ok()?.as_deref() == Some("true")).then_some(())
    })
    .await;
    must_find(c, "table#attempts tr[data-outcome=sent]").await;
    for stage in ["accepted", "queued", "sent", "delivered", "read"] {
        let li = must_find(c, &format!("ol#timeline li[data-step={stage}]")).await;
        assert_eq!(
            li.attr("data-done").await.unwrap().as_deref(),
            Some("true"),
            "{stage} done; {}",
            page(c).await
        );
    }
    wait_text(c, "#message-status", "read").await;
    has_nav_and_logout(c).await;
    screenshot(c, "message").await;
    // The API agrees.
    wait_for_status(s, base, token, message_id, "read").await;
    mark("message sent and read");

    // The device's webhook fails once per delivery; a replay from the dashboard sends it again.
    let (status, body) = call(
        &s.client,
        reqwest::Method::PATCH,
        format!("{base}/api/devices/{device_id}"),
        token,
        Some(json!({"webhook_status": true, "webhook_url": receiver.url})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r = s
        .client
        .post(format!("{base}/api/messages"))
        .header("X-Session-Id", &session)
        .header("X-Session-Secret-Token", &secret)
        .json(&json!({"recipient": "0811010010010", "message_type": "text", "message": "with a webhook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the secret shown once sends");
    let second = r.json::<Value>().await.unwrap()["data"]["id"]
        .as_i64()
        .unwrap();
    wait_for_status(s, base, token, second, "read").await;
    // A `message.ack` delivery whose one attempt failed (and whose retry is minutes away).
    let failed = eventually("a failed message.ack delivery", PATIENCE, || async move {
        let (_, log) = call(
            &s.client,
            reqwest::Method::GET,
            format!("{base}/api/webhook-deliveries?event=message.ack"),
            token,
            None,
        )
        .await;
        log["data"]["list"]
            .as_array()?
            .iter()
            .find(|d| {
                d["status"] == "pending"
                    && d["attempts"].as_i64() >= Some(1)
                    && d["last_status_code"] == 500
            })
            .cloned()
    })
    .await;
    let delivery_id = failed["id"].as_i64().unwrap();
    let webhook_id = failed["webhook_id"].as_str().unwrap();
    assert_eq!(receiver.hits(webhook_id), 1);

    follow_nav(c, "Webhooks").await;
    wait_path(c, "/dashboard/webhooks", |p| p == "/dashboard/webhooks").await;
    has_nav_and_logout(c).await;
    let row = format!("table#deliveries tr[data-delivery-id=\"{delivery_id}\"]");
    let row_status = text_of(c, &format!("{row} td.status")).await;
    assert!(
        matches!(row_status.as_deref(), Some("pending" | "failed")),
        "delivery {delivery_id} is pending or failed: {row_status:?}; {}",
        page(c).await
    );
    screenshot(c, "webhooks").await;
    click(c, &format!("{row} form.replay button")).await;
    let flash = wait_find(c, "#flash").await;
    assert!(
        !flash.text().await.unwrap().trim().is_empty(),
        "a flash message"
    );
    eventually("the replay reaches the receiver", PATIENCE, || async move {
        (receiver.hits(webhook_id) >= 2).then_some(())
    })
    .await;
    eventually(
        "the replayed delivery is delivered",
        PATIENCE,
        || async move {
            let (_, d) = call(
                &s.client,
                reqwest::Method::GET,
                format!("{base}/api/webhook-deliveries/{delivery_id}"),
                token,
                None,
            )
            .await;
            (d["data"]["status"] == "delivered").then_some(())
        },
    )
    .await;
    c.goto(&dash("/webhooks")).await.unwrap();
    wait_text(c, &format!("{row} td.status"), "delivered").await;
    mark("webhook delivery replayed");

    // Readable on a phone: at 390 px wide no page scrolls sideways (wide tables scroll inside
    // their own box).
    c.set_window_size(390, 844).await.unwrap();
    for path in [
        "/devices".to_owned(),
        format!("/devices/{device_id}"),
        format!("/devices/{device_id}/settings"),
        "/messages".to_owned(),
        format!("/messages/{message_id}"),
        "/webhooks".to_owned(),
        "/queues".to_owned(),
    ] {
        c.goto(&dash(&path)).await.unwrap();
        must_find(c, "main h1").await;
        let overflow = c
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap_or(i64::MAX) <= 0,
            "{path} scrolls sideways on a phone by {overflow} px"
        );
        // Accessible names: every field has a label, every button text, every image alt.
        let unnamed = c
            .execute(
                r#"const named = e => e.closest('label') || e.getAttribute('aria-label')
                     || (e.id && document.querySelector('label[for="' + e.id + '"]'));
                   return [
                     ...[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                        .filter(e => !named(e)).map(e => 'field ' + e.name),
                     ...[...document.querySelectorAll('button')]
                        .filter(b => !b.textContent.trim()).map(() => 'button without text'),
                     ...[...document.querySelectorAll('img')]
                        .filter(i => !i.getAttribute('alt')).map(i => 'image ' + i.id),
                     ...(document.documentElement.lang ? [] : ['html without lang']),
                   ];"#,
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(unnamed, json!([]), "{path}: unnamed controls");
        if path.starts_with("/messages/") {
            screenshot(c, "phone-message").await;
        }
    }
    c.set_window_size(1280, 900).await.unwrap();
    mark("readable at phone width");

    // A contact writes back, and a batch goes out: the inbox and the batch's progress show them.
    let incoming = wapim_waha_sim::Incoming {
        from: "6281100000077@c.us".into(),
        body: "Halo, is the shop open today?".into(),
        ..wapim_waha_sim::Incoming::default()
    };
    assert!(
        s.sim.receive(&session, &incoming).is_some(),
        "the simulator posts the event"
    );
    let (status, batch) = call(
        &s.client,
        reqwest::Method::POST,
        format!("{base}/api/messages-batch"),
        token,
        Some(json!({"items": [
            {"session_id": session, "recipient": "0811010010011", "message_type": "text", "message": "Sale starts today"},
            {"session_id": session, "recipient": "0811010010012", "message_type": "text", "message": "Sale starts today"},
            {"session_id": session, "recipient": "not a phone", "message_type": "text", "message": "x"},
        ]})),
    )
    .await;
    assert_eq!(status, 200, "{batch}");
    let batch_id = batch["data"]["batch_id"].as_str().unwrap().to_owned();
    c.goto(&dash("/inbox")).await.unwrap();
    eventually(
        "the contact's message in the inbox",
        PATIENCE,
        || async move {
            let found = c
                .find(Locator::Css("table#inbox tr[data-inbound-id]"))
                .await
                .ok()?;
            let text = found.text().await.ok()?;
            if text.contains("is the shop open") {
                Some(())
            } else {
                c.refresh().await.ok()?;
                None
            }
        },
    )
    .await;
    screenshot(c, "inbox").await;
    let row = format!("table#batches tr[data-batch-id=\"{batch_id}\"]");
    c.goto(&dash("/batches")).await.unwrap();
    let progress = row.clone();
    eventually("the batch's two messages sent", PATIENCE, || {
        let progress = progress.clone();
        async move {
            let text = c
                .find(Locator::Css(&progress))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            if text.contains("2/2") {
                Some(())
            } else {
                c.refresh().await.ok()?;
                None
            }
        }
    })
    .await;
    screenshot(c, "batches").await;
    c.goto(&dash("/queues")).await.unwrap();
    must_find(c, "#dead-letters").await;
    screenshot(c, "queues").await;
    c.goto(&dash(&format!("/devices/{device_id}/settings")))
        .await
        .unwrap();
    must_find(c, "form#device-settings").await;
    screenshot(c, "settings").await;
    mark("inbox, batches and queues");

    // Logging out ends the session.
    click(c, "form#logout button").await;
    wait_path(c, "/dashboard/login", |p| p == "/dashboard/login").await;
    c.goto(&dash("/devices")).await.unwrap();
    wait_path(c, "/dashboard/login", |p| p == "/dashboard/login").await;
    mark("logged out");

    client.close().await.unwrap();
    let took = browser_started.elapsed();
    eprintln!(
        "[browser] the whole browser test took {} ms",
        took.as_millis()
    );
    assert!(
        took < Duration::from_secs(60),
        "the browser test takes under a minute: {took:?}"
    );
    drop(driver);
}

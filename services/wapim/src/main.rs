//! The `wapim` binary: everything in one process, on SQLite and the in-process queue unless told
//! otherwise. `wapim` serves; `wapim --demo` also starts the WAHA simulator and a demo device;
//! `wapim migrate`, `wapim reset-token`, `wapim openapi`, `wapim --help`.

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use wapim::Wapim;
use wapim_settings::{Settings, DEFAULTS_TOML, EMBEDDED_DEFAULTS_TOML};

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("wapim: {e}");
    ExitCode::FAILURE
}

const USAGE: &str = "\
wapim — a self-hosted WhatsApp gateway over WAHA, in one process.

Usage:
  wapim               serve the API, the webhook ingest and the dispatcher (default)
  wapim --demo        the same, plus a WAHA simulator and a demo device, with curl lines to try
  wapim migrate       create/migrate the database and exit
  wapim reset-token   replace the operator token kept in the database and print the new one
  wapim openapi       print the REST API's OpenAPI 3.1 document (also at /api/openapi.json)
  wapim --help        this text and every setting

Embedded by default: one SQLite file (./wapim.db) and an in-process queue; nothing else to
install. WAPIM_DATABASE__URL=postgres://… and WAPIM_AMQP__URL=amqp://… switch to PostgreSQL and
RabbitMQ. Every setting below is an environment variable (or a key of the TOML file named by
WAPIM_CONFIG_FILE).
";

/// Every setting as the environment variable that sets it, with its default and its comment.
fn settings_help() -> String {
    let embedded = embedded_values();
    let mut out = String::from("\nSettings (default in brackets):\n");
    let mut section = String::new();
    let mut comment: Vec<String> = Vec::new();
    for line in DEFAULTS_TOML.lines() {
        let line = line.trim();
        if let Some(c) = line.strip_prefix('#') {
            comment.push(c.trim().to_owned());
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            comment.clear();
        } else if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            let var = if section.is_empty() {
                format!("WAPIM_{}", key.to_ascii_uppercase())
            } else {
                format!(
                    "WAPIM_{}__{}",
                    section.to_ascii_uppercase(),
                    key.to_ascii_uppercase()
                )
            };
            let value = embedded
                .iter()
                .find(|(s, k, _)| *s == section && *k == key)
                .map_or(value.trim(), |(_, _, v)| v.as_str());
            out.push_str(&format!("  {var} [{value}]\n"));
            for c in comment.drain(..).filter(|c| !c.is_empty()) {
                out.push_str(&format!("      {c}\n"));
            }
        } else {
            comment.clear();
        }
    }
    out
}

/// The (section, key, value) triples the embedded defaults change.
fn embedded_values() -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut values = Vec::new();
    for line in EMBEDDED_DEFAULTS_TOML.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
        } else if let Some((key, value)) = line.split_once('=').filter(|_| !line.starts_with('#')) {
            values.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().to_owned(),
            ));
        }
    }
    values
}

fn load(extra: &[(&str, String)]) -> Result<Settings, wapim_settings::SettingsError> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    for (k, v) in extra {
        if std::env::var(k).is_err() {
            vars.push(((*k).to_owned(), v.clone()));
        }
    }
    Settings::load_layered(Some(EMBEDDED_DEFAULTS_TOML), vars)
}

#[actix_web::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    match command.as_deref() {
        Some("--help" | "-h" | "help") => {
            print!("{USAGE}{}", settings_help());
            ExitCode::SUCCESS
        }
        None | Some("serve") => serve(false).await,
        Some("--demo" | "demo") => serve(true).await,
        Some("openapi") => {
            print!("{}", wapim_gateway::openapi::ApiDoc::pretty_json());
            ExitCode::SUCCESS
        }
        Some("migrate") => {
            let settings = match load(&[]) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            match wapim_web::db::prepare(&settings.database).await {
                Ok(_) => {
                    println!(
                        "wapim: the database is migrated ({})",
                        redact(&settings.database.url)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Some("reset-token") => {
            let settings = match load(&[]) {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            match wapim::reset_operator_token(&settings).await {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Some(other) => fail(format_args!(
            "unknown command `{other}` (see `wapim --help`)"
        )),
    }
}

async fn serve(demo: bool) -> ExitCode {
    // The demo: a simulator on a free port, acking every send and "scanning" QR codes by itself;
    // its own database file and an operator token for this run; a short pacing gap.
    let mut extra: Vec<(&str, String)> = Vec::new();
    let mut sim = None;
    let mut demo_token = None;
    let mut demo_file = None;
    if demo {
        let listener = match TcpListener::bind("127.0.0.1:0") {
            Ok(l) => l,
            Err(e) => return fail(e),
        };
        let started = wapim_waha_sim::start(
            wapim_waha_sim::SimConfig {
                acks: true,
                ack_delay: Duration::from_millis(1500),
                auto_login: Some(Duration::from_secs(3)),
                ..wapim_waha_sim::SimConfig::default()
            },
            listener,
        )
        .await;
        let handle = match started {
            Ok(h) => h,
            Err(e) => return fail(format_args!("WAHA simulator: {e}")),
        };
        let token = wapim_domain::token::generate_secret_token();
        let file = std::env::temp_dir().join(format!("wapim-demo-{}.db", std::process::id()));
        extra.push(("WAPIM_WAHA__URL", handle.base_url()));
        extra.push(("WAPIM_AUTH__ADMIN_TOKEN", token.clone()));
        extra.push((
            "WAPIM_DATABASE__URL",
            format!("sqlite://{}", file.display()),
        ));
        extra.push(("WAPIM_PACING__MIN_INTERVAL_MS", "1000".into()));
        extra.push(("WAPIM_PACING__JITTER_MS", "1000".into()));
        extra.push(("WAPIM_WEBHOOKS__ALLOW_PRIVATE", "true".into()));
        extra.push(("WAPIM_LOG__LEVEL", "warn".into()));
        demo_file = Some(file);
        demo_token = Some(token);
        sim = Some(handle);
    }
    let settings = match load(&extra) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let _telemetry = match wapim_telemetry::init_service(
        &settings.log.level,
        settings.log.format == "json",
        "wapim",
        Some(&settings.telemetry.otlp_endpoint),
    ) {
        Ok(guard) => guard,
        Err(e) => return fail(e),
    };
    let address = format!("{}:{}", settings.http.host, settings.http.port);
    let listener = match TcpListener::bind(&address) {
        Ok(l) => l,
        Err(e) => {
            return fail(format_args!(
                "cannot listen on {address} (WAPIM_HTTP__HOST/WAPIM_HTTP__PORT): {e}"
            ))
        }
    };
    let wapim = match Wapim::start(&settings, listener).await {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    let base = format!("http://{}:{}", settings.http.host, wapim.port());
    println!("Wapim is up.");
    println!("  Dashboard: {base}/dashboard  (log in with the operator token)");
    println!("  API:       {base}/api  (docs: {base}/docs, health: {base}/health/ready)");
    println!("  Database:  {}", redact(&settings.database.url));
    println!("  Queue:     {}", redact(&settings.amqp.url));
    println!("  WAHA:      {} (WAPIM_WAHA__URL)", settings.waha.url);
    println!(
        "  WAHA posts its events to {} (WAPIM_WAHA__WEBHOOK_URL)",
        wapim.webhook_url
    );
    match (&demo_token, &wapim.new_operator_token) {
        (Some(token), _) => println!("  Operator token (this demo run): {token}"),
        (None, Some(token)) => {
            println!("  Operator token (shown once, only its hash is kept): {token}");
            println!(
                "    `wapim reset-token` makes a new one; WAPIM_AUTH__ADMIN_TOKEN overrides it."
            );
        }
        (None, None) if settings.auth.admin_token.trim().is_empty() => {
            println!("  Operator token: the one printed at the first start (`wapim reset-token` for a new one)")
        }
        (None, None) => println!("  Operator token: WAPIM_AUTH__ADMIN_TOKEN"),
    }
    let recovered = wapim.recovered;
    if recovered != wapim_store::recovery::Recovered::default() {
        println!(
            "  Picked up after the last stop: {} messages, {} claims, {} session syncs, {} webhook deliveries",
            recovered.messages, recovered.claims, recovered.syncs, recovered.deliveries
        );
    }
    let token = demo_token
        .clone()
        .or(wapim.new_operator_token.clone())
        .unwrap_or_else(|| "$WAPIM_OPERATOR_TOKEN".to_owned());
    println!("Pair a phone: in the dashboard (Devices → Create, then scan the QR code), or");
    println!("  curl -s -X POST {base}/api/devices -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' -d '{{\"name\": \"My Shop\", \"phone_number\": \"0811…\"}}'");
    println!("  then open {base}/api/devices/<id>/qr?format=text (or the link in its HTML page) and scan it with WhatsApp.");
    let run = tokio::spawn(wapim.run_until_stopped());
    if let (Some(token), Some(sim)) = (&demo_token, &sim) {
        demo_device(&base, token, &sim.base_url()).await;
    }
    let outcome = run.await;
    drop(sim);
    if let Some(file) = demo_file {
        // The demo's database lives only as long as the demo.
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }
    match outcome {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => fail(e),
        Err(e) => fail(e),
    }
}

/// Creates the demo device through the API and prints what to try.
async fn demo_device(base: &str, token: &str, sim_base: &str) {
    let created = wapim::demo_device(base, token).await;
    match created {
        Ok((session, secret)) => {
            println!("Demo: device `{session}` created; the simulated phone scans its QR code in a few seconds.");
            println!("Watch it in the dashboard: {base}/dashboard (Devices, then Messages → Send), or with curl:");
            println!("Send a message:");
            println!("  curl -s -X POST {base}/api/messages -H 'X-Session-Id: {session}' -H 'X-Session-Secret-Token: {secret}' -H 'Content-Type: application/json' -d '{{\"recipient\": \"0811000000002\", \"message_type\": \"text\", \"message\": \"Hello from Wapim\"}}'");
            println!("Follow it (pending → sent → delivered → read):");
            println!("  curl -s {base}/api/messages/1 -H 'Authorization: Bearer {token}'");
            println!("A contact writes back (the simulator posts WAHA's signed `message` event):");
            println!("  curl -s -X POST {}/_sim/sessions/{session}/messages -H 'Content-Type: application/json' -d '{{\"from\": \"6281100000002@c.us\", \"body\": \"halo\"}}'", sim_base);
            println!("  curl -s {base}/api/inbox -H 'Authorization: Bearer {token}'");
        }
        Err(e) => eprintln!("wapim: the demo device could not be created: {e}"),
    }
}

/// A URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_names_every_setting_with_the_embedded_defaults() {
        let help = settings_help();
        assert!(
            help.contains("WAPIM_DATABASE__URL [\"sqlite://wapim.db\"]"),
            "{help}"
        );
        assert!(help.contains("WAPIM_AMQP__URL [\"memory://\"]"), "{help}");
        assert!(help.contains("WAPIM_HTTP__PORT [8000]"), "{help}");
        assert!(
            help.contains("WAPIM_WEBHOOKS__ALLOW_PRIVATE [false]"),
            "{help}"
        );
        assert!(help.contains("WAPIM_TIMEZONE"), "{help}");
    }

    #[test]
    fn printed_urls_hide_passwords() {
        assert_eq!(
            redact("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("sqlite://wapim.db"), "sqlite://wapim.db");
    }
}

//! `waha-sim`: runs the WAHA simulator as a process, for demos and out-of-process tests.
//!
//! Settings (environment): `WAHA_SIM_HOST` (default `127.0.0.1`), `WAHA_SIM_PORT` (3000),
//! `WAHA_SIM_API_KEY` (none), `WAHA_SIM_ENGINE` (`GOWS`, `NOWEB` or `WEBJS`; default `GOWS`),
//! `WAHA_SIM_OPENAPI` (path of WAHA's OpenAPI document), `WAHA_SIM_ACKS` (`true`),
//! `WAHA_SIM_ACK_DELAY_MS` (1000), `WAHA_SIM_AUTO_LOGIN_SECS` (log in by itself this long after
//! showing a QR code; unset: only through `POST /_sim/sessions/{name}/login`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use wapim_waha_sim::{start, Engine, SimConfig};

fn setting<T: FromStr>(name: &str, default: T) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => value
            .parse()
            .map_err(|e| format!("waha-sim: invalid setting {name}: {value:?}: {e}")),
        _ => Ok(default),
    }
}

fn config() -> Result<(String, u16, SimConfig), String> {
    let host: String = setting("WAHA_SIM_HOST", "127.0.0.1".to_owned())?;
    let port: u16 = setting("WAHA_SIM_PORT", 3000)?;
    let mut config = SimConfig {
        api_key: std::env::var("WAHA_SIM_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        engine: setting("WAHA_SIM_ENGINE", Engine::Gows)?,
        acks: setting("WAHA_SIM_ACKS", true)?,
        ack_delay: Duration::from_millis(setting("WAHA_SIM_ACK_DELAY_MS", 1000)?),
        ..SimConfig::default()
    };
    if let Ok(path) = std::env::var("WAHA_SIM_OPENAPI") {
        config.openapi_path = PathBuf::from(path);
    }
    let auto_login: f64 = setting("WAHA_SIM_AUTO_LOGIN_SECS", -1.0)?;
    if auto_login >= 0.0 {
        config.auto_login = Some(Duration::from_secs_f64(auto_login));
    }
    Ok((host, port, config))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let (host, port, config) = match config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match std::net::TcpListener::bind((host.as_str(), port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "waha-sim: cannot listen on {host}:{port} (WAHA_SIM_HOST/WAHA_SIM_PORT): {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    let engine = config.engine;
    let sim = match start(config, listener).await {
        Ok(sim) => sim,
        Err(e) => {
            eprintln!("waha-sim: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(base_url = %sim.base_url(), %engine, "WAHA simulator listening (not a real WAHA)");
    for violation in sim.violations() {
        tracing::warn!(%violation, "waha-sim");
    }
    if let Err(e) = wait_for_signal().await {
        eprintln!("waha-sim: cannot wait for signals: {e}");
    }
    sim.stop().await;
    ExitCode::SUCCESS
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

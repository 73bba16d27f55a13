//! `wapim`: the whole of Wapim in one process — the REST gateway, the webhook ingest (on the
//! same port, at `/api/v1/waha-webhook`), the outbox relay and the dispatcher — on one SQLite
//! file and the in-process queue unless the settings name PostgreSQL and RabbitMQ. The same
//! services as the distributed deployment; only configuration differs.
//!
//! Nothing is lost on restart or `kill -9`: the database rows are the durable record. With the
//! in-process queue, every job it held died with the process, so start-up makes them owed again
//! and releases the dead process's claims to the dispatcher's reconciliation (which looks a send
//! up on WAHA before it sends again). One `wapim` per database file.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use wapim_app::relay::{Relay, RelayConfig};
use wapim_broker::{Broker, BrokerConfig, BrokerError};
use wapim_dispatcher::{Dispatcher, SessionSettings};
use wapim_domain::time::now_micros;
use wapim_domain::token::{generate_secret_token, hash_token};
use wapim_settings::{Settings, SettingsError};
use wapim_store::{instance, recovery, StoreError};
use wapim_waha::WahaClient;
use wapim_webhook_ingest::IngestService;

/// Why `wapim` could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is unusable.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The database could not be prepared or used.
    #[error("database: {0}")]
    Database(#[from] StoreError),
    /// The queue could not be reached.
    #[error("broker (WAPIM_AMQP__URL): {0}")]
    Broker(#[from] BrokerError),
    /// A component failed to build.
    #[error("{0}")]
    Component(String),
    /// The listener could not be used.
    #[error("http listener: {0}")]
    Io(#[from] std::io::Error),
}

/// The path of the ingest on the API's port.
pub const INGEST_PATH: &str = "/api/v1/waha-webhook";

/// A started `wapim`.
pub struct Wapim {
    port: u16,
    /// The operator token generated at this (first) start: shown once, only its hash is kept.
    pub new_operator_token: Option<String>,
    /// Where WAHA's sessions post their events.
    pub webhook_url: String,
    /// What start-up found owed again (in-process queue only).
    pub recovered: recovery::Recovered,
    gateway: wapim_gateway::Application,
    stop_dispatcher: tokio::sync::oneshot::Sender<()>,
    dispatching: tokio::task::JoinHandle<bool>,
}

impl Wapim {
    /// Prepares the database (created and migrated when missing), recovers what an in-process
    /// queue lost, and starts the relay, the dispatcher and the ingest's processor; the API and
    /// the ingest answer on `listener` once [`Wapim::run_until_stopped`] runs. Inside a tokio
    /// runtime.
    pub async fn start(settings: &Settings, listener: TcpListener) -> Result<Self, StartupError> {
        let port = listener.local_addr()?.port();
        let db = wapim_web::db::prepare(&settings.database).await?;
        let pool = db.pool().clone();
        let now = now_micros().naive_utc();
        let (operator_token_hash, new_operator_token) = operator_token(settings, &pool, now)?;
        let in_process = settings.amqp.url.trim().starts_with("memory:");
        let recovered = if in_process {
            let mut conn = pool.get().map_err(StoreError::from)?;
            recovery::owe_lost_jobs(&mut conn, now)?
        } else {
            recovery::Recovered::default()
        };
        let broker = Broker::connect(&BrokerConfig {
            url: settings.amqp.url.clone(),
            prefix: settings.amqp.prefix.clone(),
            prefetch: settings.dispatcher.prefetch,
            delivery_limit: settings.amqp.delivery_limit,
        })
        .await?;
        let webhook_url = match settings.waha.webhook_url.trim() {
            "" => format!("http://127.0.0.1:{port}{INGEST_PATH}"),
            url => url.to_owned(),
        };

        // The ingest: its processor now, its endpoint on the API's server.
        let ingest = IngestService::start(settings, db.clone())
            .map_err(|e| StartupError::Component(format!("ingest: {e}")))?;

        // The relay and the dispatcher, sharing the one queue.
        if settings.relay.enabled {
            let relay = Relay::new(
                pool.clone(),
                broker.clone(),
                RelayConfig {
                    batch: settings.relay.batch,
                    poll: Duration::from_millis(settings.relay.poll_ms),
                    lease: Duration::from_secs(settings.relay.lease_secs),
                },
            );
            tokio::spawn(relay.run());
        }
        let timezone: wapim_domain::Tz =
            settings
                .timezone
                .parse()
                .map_err(|_| SettingsError::Invalid {
                    var: "WAPIM_TIMEZONE",
                    reason: format!("{:?} is not an IANA time zone", settings.timezone),
                })?;
        let api_key = Some(settings.waha.api_key.clone()).filter(|k| !k.is_empty());
        let waha = WahaClient::new(
            &settings.waha.url,
            api_key,
            Duration::from_secs(settings.waha.timeout_secs),
        )
        .map_err(|e| SettingsError::Invalid {
            var: "WAPIM_WAHA__URL",
            reason: e.to_string(),
        })?;
        let broker_health =
            actix_web::web::Data::new(wapim_web::health::BrokerHealth(broker.clone()));
        let dead_letters = Arc::new(wapim_gateway::dead_letters::DeadLetters::shared(
            broker.clone(),
        ));
        let dispatcher = Dispatcher::new(
            pool.clone(),
            broker,
            waha,
            settings.dispatcher.clone(),
            &settings.pacing,
            SessionSettings {
                webhook_url: webhook_url.clone(),
            },
        )
        .with_timezone(timezone)
        .with_webhooks(&settings.webhooks)
        .map_err(|e| StartupError::Component(e.to_string()))?;
        let resync = dispatcher.clone();
        tokio::spawn(async move {
            if let Err(e) = resync.resync_all().await {
                tracing::warn!(error = %e, "start-up resync of WAHA sessions failed");
            }
        });
        // The dispatcher consumes until the server stops (SIGTERM/SIGINT), then drains.
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let grace = Duration::from_secs(settings.dispatcher.shutdown_grace_secs);
        let dispatching = tokio::spawn(async move {
            let stop = async move {
                let _ = stop_rx.await;
            };
            dispatcher.run_until("wapim", stop, grace).await
        });

        let gateway = wapim_gateway::Application::build_with(
            settings,
            db,
            listener,
            wapim_gateway::GatewayOptions {
                operator_token_hash: Some(operator_token_hash),
                extra_routes: Some(Arc::new(move |cfg| {
                    cfg.app_data(broker_health.clone());
                    ingest.configure(cfg);
                })),
                dead_letters: Some(dead_letters),
            },
        )
        .map_err(|e| StartupError::Component(format!("gateway: {e}")))?;
        Ok(Self {
            port,
            new_operator_token,
            webhook_url,
            recovered,
            gateway,
            stop_dispatcher: stop_tx,
            dispatching,
        })
    }

    /// The port the API and the ingest answer on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until stopped: SIGINT/SIGTERM stop the server gracefully, then the dispatcher
    /// takes no new job and finishes the ones in hand (`WAPIM_DISPATCHER__SHUTDOWN_GRACE_SECS`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.gateway.run_until_stopped().await;
        let _ = self.stop_dispatcher.send(());
        match self.dispatching.await {
            Ok(true) => tracing::info!("stopped: every job in hand finished"),
            Ok(false) => tracing::warn!(
                "stopped with jobs still running; they are picked up at the next start"
            ),
            Err(e) => tracing::warn!(error = %e, "the dispatcher task failed"),
        }
        served
    }
}

/// The operator token's hash: from `WAPIM_AUTH__ADMIN_TOKEN` when set; otherwise the one kept
/// in the database, or a fresh token whose hash is kept now (returned to be shown, once).
fn operator_token(
    settings: &Settings,
    pool: &wapim_store::Pool,
    now: chrono::NaiveDateTime,
) -> Result<(String, Option<String>), StartupError> {
    if !settings.auth.admin_token.trim().is_empty() {
        return Ok((hash_token(settings.require_admin_token()?), None));
    }
    let mut conn = pool.get().map_err(StoreError::from)?;
    if let Some(kept) = instance::get(&mut conn, instance::OPERATOR_TOKEN_HASH)? {
        return Ok((kept, None));
    }
    let fresh = generate_secret_token();
    let hash = hash_token(&fresh);
    let kept = instance::keep_first(&mut conn, instance::OPERATOR_TOKEN_HASH, &hash, now)?;
    let shown = (kept == hash).then_some(fresh);
    Ok((kept, shown))
}

/// Replaces the kept operator token with a fresh one and returns it (`wapim reset-token`).
pub async fn reset_operator_token(settings: &Settings) -> Result<String, StartupError> {
    let db = wapim_web::db::prepare(&settings.database).await?;
    let mut conn = db.pool().get().map_err(StoreError::from)?;
    let fresh = generate_secret_token();
    instance::replace(
        &mut conn,
        instance::OPERATOR_TOKEN_HASH,
        &hash_token(&fresh),
        now_micros().naive_utc(),
    )?;
    Ok(fresh)
}

/// Creates the demo's device through the API (`POST /api/devices` as the operator); returns its
/// session id and token.
pub async fn demo_device(base: &str, operator_token: &str) -> Result<(String, String), String> {
    let body = serde_json::json!({"name": "Demo Shop", "phone_number": "0811000000001"});
    let reply: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/devices"))
        .bearer_auth(operator_token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let field = |name: &str| reply["data"][name].as_str().map(str::to_owned);
    match (field("session_id"), field("secret_token")) {
        (Some(session), Some(token)) => Ok((session, token)),
        _ => Err(format!("unexpected answer: {reply}")),
    }
}

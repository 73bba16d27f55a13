//! Wapim's REST gateway: authentication and CRUD for devices, messages, batches and tokens.
//!
//! [`Application::build`] takes settings and an already bound listener (port 0 in tests), runs
//! migrations and returns a server to await; `main.rs` only loads settings and binds.

pub mod auth;
pub mod dashboard;
pub mod dead_letters;
pub mod idempotency;
pub mod listing;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod views;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App};
use wapim_app::cache::ExpiringMap;
use wapim_app::credentials::CredentialCache;
use wapim_app::intake::Intake;
use wapim_app::waha_servers::WahaDirectory;
use wapim_domain::pacing::Pace;
use wapim_settings::{Settings, SettingsError};
use wapim_store::dispatch::SafetyDefaults;
use wapim_waha::WahaClient;
use wapim_web::{health, method_not_allowed, route_not_found, Db};

use crate::listing::LinkBase;
use crate::routes::{
    batch, devices, inbox, messages, pairing, suppressions, tokens, waha, waha_servers, webhooks,
};
use crate::state::{AppState, Limits};

/// Most accepted messages written in one statement by the intake (group commit).
const INTAKE_MAX_BATCH: usize = 256;

/// Why the gateway could not start; `Display` is the one line printed before exiting.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is missing or invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The database could not be prepared.
    #[error("database: {0}")]
    Database(#[from] wapim_store::StoreError),
    /// The listener could not be used.
    #[error("http listener: {0}")]
    Io(#[from] std::io::Error),
}

/// A built gateway: the port it listens on and the server to run.
pub struct Application {
    port: u16,
    server: Server,
}

pub use wapim_web::validation_context;

/// The gateway's start-up database (see [`wapim_web::db::prepare`]).
pub async fn prepare_database(db: &wapim_settings::DatabaseSettings) -> Result<Db, StartupError> {
    Ok(wapim_web::db::prepare(db).await?)
}

/// Routes another component serves on the gateway's port (the single binary's webhook ingest),
/// registered before the gateway's own.
pub type ExtraRoutes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// What a caller may decide beyond the settings.
#[derive(Default, Clone)]
pub struct GatewayOptions {
    /// SHA-256 (hex) of the operator token, when the caller holds it (the single binary keeps
    /// only the hash of the token it generated); `None`: `WAPIM_AUTH__ADMIN_TOKEN`.
    pub operator_token_hash: Option<String>,
    /// More routes on the same server.
    pub extra_routes: Option<ExtraRoutes>,
    /// The broker's dead letters, for the dashboard's queues page (`None`: not shown).
    pub dead_letters: Option<Arc<dead_letters::DeadLetters>>,
}

impl Application {
    /// Checks settings and builds the server on `listener` (inside a tokio runtime: it starts
    /// the message writer) over `db` (see [`prepare_database`]).
    pub fn build(settings: &Settings, db: Db, listener: TcpListener) -> Result<Self, StartupError> {
        Self::build_with(settings, db, listener, GatewayOptions::default())
    }

    /// [`Self::build`] with an operator token hash and routes of the caller's.
    pub fn build_with(
        settings: &Settings,
        db: Db,
        listener: TcpListener,
        options: GatewayOptions,
    ) -> Result<Self, StartupError> {
        let validation = validation_context(settings)?;
        let operator_token_hash = match options.operator_token_hash {
            Some(hash) => hash,
            None => wapim_domain::token::hash_token(settings.require_admin_token()?),
        };
        let extra_routes = options.extra_routes;
        let public_url = Some(settings.http.public_url.trim().to_owned()).filter(|u| !u.is_empty());
        let queued = db.pool().max_size() as usize + settings.database.max_queued_requests;
        let api_key = Some(settings.waha.api_key.clone()).filter(|k| !k.is_empty());
        let waha = WahaClient::new(
            &settings.waha.url,
            api_key.clone(),
            Duration::from_secs(settings.waha.request_timeout_secs.max(1)),
        )
        .map_err(|e| SettingsError::Invalid {
            var: "WAPIM_WAHA__URL",
            reason: e.to_string(),
        })?;
        // The server of WAPIM_WAHA__URL is always registered (new devices are placed on it).
        {
            let mut conn = db.pool().get().map_err(wapim_store::StoreError::from)?;
            let (url, capacity) = (settings.waha.url.clone(), settings.waha.capacity);
            wapim_app::waha_servers::ensure_default(
                &mut conn,
                &url,
                api_key.as_deref(),
                i64::try_from(capacity).unwrap_or(50),
                wapim_domain::time::now_micros().naive_utc(),
            )
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        }
        let timeout = waha.timeout();
        let waha = WahaDirectory::new(db.pool().clone(), waha, timeout);
        let state = web::Data::new(AppState {
            db: db.clone(),
            intake: Intake::start(db.pool().clone(), INTAKE_MAX_BATCH, queued),
            operator_token_hash,
            credentials: CredentialCache::new(
                Duration::from_secs(settings.auth.credential_cache_secs),
                100_000,
            ),
            waha,
            waha_answers: ExpiringMap::new(routes::waha::ACCOUNT_CACHE),
            dead_letters: options.dead_letters,
            safety: SafetyDefaults {
                pace: Pace::from_millis(settings.pacing.min_interval_ms, settings.pacing.jitter_ms),
                timezone: validation.timezone,
                probe_every: chrono::TimeDelta::seconds(
                    i64::try_from(settings.dispatcher.pause_probe_secs).unwrap_or(300),
                ),
            },
            validation,
            links: LinkBase {
                public_url,
                trust_forwarded: settings.http.trust_forwarded,
            },
            limits: Limits {
                max_body_bytes: settings.http.max_body_bytes,
                max_batch_body_bytes: settings.http.max_batch_body_bytes,
                batch_max_items: settings.limits.batch_max_items,
                idempotency_ttl: chrono::Duration::hours(i64::from(
                    settings.limits.idempotency_ttl_hours,
                )),
                immediate_send_timeout: Duration::from_secs(
                    settings.limits.immediate_send_timeout_secs,
                ),
            },
        });
        let db = web::Data::new(db);
        let port = listener.local_addr()?.port();
        let server = wapim_web::server::serve(listener, settings.http.workers, move || {
            let mut app = App::new().app_data(state.clone()).app_data(db.clone());
            if let Some(extra) = &extra_routes {
                let extra = extra.clone();
                app = app.configure(move |cfg| extra(cfg));
            }
            app.configure(openapi::routes)
                .configure(dashboard::routes)
                .service(web::scope("/api").configure(api_routes))
                .configure(health::routes)
                .default_service(web::to(route_not_found))
        })?;
        Ok(Self { port, server })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server gracefully (benchmarks and tests that end cleanly).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until the server is stopped (SIGINT/SIGTERM stop it gracefully).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The REST API under `/api`, each resource answering 405 for methods it does not take.
fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/devices")
            .route(web::get().to(devices::list))
            .route(web::post().to(devices::create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/devices/{id}")
            .route(web::get().to(devices::show))
            .route(web::put().to(devices::replace))
            .route(web::patch().to(devices::patch))
            .route(web::delete().to(devices::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/devices/{id}/restore")
            .route(web::post().to(devices::restore))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/waha/sessions/{session_id}/me")
            .route(web::get().to(waha::me))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/waha/{session_id}/profile")
            .route(web::get().to(waha::profile))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/waha/sessions/{session_id}/restart")
            .route(web::post().to(waha::restart))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/waha/sessions/{session_id}/logout")
            .route(web::post().to(waha::logout))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/waha/{session_id}/auth/qr.png")
            .route(web::get().to(waha::qr))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/waha/{session_id}/auth/request-code")
            .route(web::post().to(waha::request_code))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/v1/waha/contacts/check-exists")
            .route(web::get().to(waha::check_exists))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/waha-servers")
            .route(web::get().to(waha_servers::list))
            .route(web::post().to(waha_servers::create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/waha-servers/{id}")
            .route(web::patch().to(waha_servers::update))
            .route(web::delete().to(waha_servers::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/devices/{id}/qr")
            .route(web::get().to(pairing::qr))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/devices/{id}/resync")
            .route(web::post().to(devices::resync))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/devices/{id}/resume")
            .route(web::post().to(devices::resume))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/devices/{id}/suppressions")
            .route(web::get().to(suppressions::list))
            .route(web::post().to(suppressions::add))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/devices/{id}/suppressions/{phone}")
            .route(web::delete().to(suppressions::remove))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/devices/{id}/webhook-secret")
            .route(web::post().to(webhooks::rotate_secret))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/inbox")
            .route(web::get().to(inbox::list))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/inbox/{id}")
            .route(web::get().to(inbox::show))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/webhook-deliveries")
            .route(web::get().to(webhooks::list))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/webhook-deliveries/{id}")
            .route(web::get().to(webhooks::show))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/webhook-deliveries/{id}/replay")
            .route(web::post().to(webhooks::replay))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/messages")
            .route(web::get().to(messages::list))
            .route(web::post().to(messages::create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/messages/{id}")
            .route(web::get().to(messages::show))
            .route(web::put().to(messages::replace))
            .route(web::patch().to(messages::patch))
            .route(web::delete().to(messages::delete))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/messages/{id}/restore")
            .route(web::post().to(messages::restore))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/messages/{id}/resend")
            .route(web::post().to(messages::resend))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/messages-batch")
            .route(web::post().to(batch::create))
            .default_service(web::to(method_not_allowed)),
    )
    .service(
        web::resource("/generate-token")
            .route(web::get().to(tokens::generate))
            .route(web::post().to(tokens::generate))
            .default_service(web::to(method_not_allowed)),
    );
}

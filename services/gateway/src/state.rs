//! What every handler shares: database access, credentials, the validation context and limits.

use actix_web::web;
use wapim_app::cache::ExpiringMap;
use wapim_app::credentials::CredentialCache;
use wapim_app::intake::Intake;
use wapim_app::waha_servers::WahaDirectory;
use wapim_domain::ValidationContext;
use wapim_store::dispatch::SafetyDefaults;
use wapim_web::Db;

use crate::listing::LinkBase;

/// Request limits taken from settings.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Body limit of single-record endpoints.
    pub max_body_bytes: usize,
    /// Body limit of the batch endpoint.
    pub max_batch_body_bytes: usize,
    /// Items per batch.
    pub batch_max_items: usize,
    /// How long idempotency keys replay.
    pub idempotency_ttl: chrono::Duration,
    /// How long an immediate send (`is_queue: false`) waits for its outcome.
    pub immediate_send_timeout: std::time::Duration,
}

/// Shared, read-only state of the gateway.
pub struct AppState {
    /// Bounded database access.
    pub db: Db,
    /// Writes concurrent accepts of devices' own messages together (group commit).
    pub intake: Intake,
    /// SHA-256 (hex) of the operator token: the configured one, or the one `wapim` generated
    /// and stored (only its hash is kept). Never logged: no Debug on this struct.
    pub operator_token_hash: String,
    /// Recently verified device credentials.
    pub credentials: CredentialCache,
    /// What a device does not set itself (its read shows its sending state by them).
    pub safety: SafetyDefaults,
    /// Each device's WAHA server, for the reference's pass-through endpoints (`/api/v1/waha/...`).
    pub waha: WahaDirectory,
    /// WAHA's recent `me` and `profile` answers, by session and call.
    pub waha_answers: ExpiringMap<(String, String), serde_json::Value>,
    /// The broker's dead letters (the dashboard's queues page), when this process can reach them.
    pub dead_letters: Option<std::sync::Arc<crate::dead_letters::DeadLetters>>,
    /// Phone region and time zone for validation.
    pub validation: ValidationContext,
    /// Where list links point.
    pub links: LinkBase,
    /// Request limits.
    pub limits: Limits,
}

/// The handle handlers receive.
pub type State = web::Data<AppState>;

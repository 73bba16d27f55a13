//! Layered configuration for every Wapim service.
//!
//! Order, later wins: the defaults compiled in from `config/default.toml`, an optional file named
//! by `WAPIM_CONFIG_FILE`, then environment variables `WAPIM_<SECTION>__<KEY>`. Errors name the
//! environment variable an operator would set, in one line.

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

/// The defaults, compiled in so a binary runs from any directory.
pub const DEFAULTS_TOML: &str = include_str!("../../../config/default.toml");

/// The single binary's defaults over [`DEFAULTS_TOML`]: one SQLite file and the in-process
/// queue, so it runs with nothing else installed (`WAPIM_DATABASE__URL=postgres://…` and
/// `WAPIM_AMQP__URL=amqp://…` switch to the distributed parts).
pub const EMBEDDED_DEFAULTS_TOML: &str = include_str!("../../../config/embedded.toml");

/// A setting that is missing or unusable; `Display` is the one line an operator reads.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The layers could not be read or do not deserialize (wrong type, bad file).
    #[error("invalid configuration: {0}")]
    Load(String),
    /// A value that is present but unusable.
    #[error("invalid setting {var}: {reason}")]
    Invalid {
        /// The environment variable that sets it.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A required value that nobody set.
    #[error("missing setting {var}: {reason}")]
    Missing {
        /// The environment variable that sets it.
        var: &'static str,
        /// What it is for.
        reason: &'static str,
    },
}

/// Everything a Wapim process may read; each service uses the sections it needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// IANA zone for local schedule times (`WAPIM_TIMEZONE`).
    pub timezone: String,
    /// The database.
    pub database: DatabaseSettings,
    /// The HTTP listener.
    pub http: HttpSettings,
    /// Credentials.
    pub auth: AuthSettings,
    /// Phone number reading.
    pub phone: PhoneSettings,
    /// Request limits.
    pub limits: LimitSettings,
    /// Logging.
    pub log: LogSettings,
    /// The message broker.
    pub amqp: AmqpSettings,
    /// The WAHA server sends go to.
    pub waha: WahaSettings,
    /// The outbox relay (in the gateway).
    pub relay: RelaySettings,
    /// The dispatcher.
    pub dispatcher: DispatcherSettings,
    /// Per-device pacing defaults (devices may override them).
    pub pacing: PacingSettings,
    /// The integrator's webhooks.
    pub webhooks: WebhookSettings,
    /// The devices' automations (opening, closing, auto-reply).
    pub automations: AutomationSettings,
    /// The webhook ingest.
    pub ingest: IngestSettings,
    /// Trace export.
    pub telemetry: TelemetrySettings,
}

/// `[telemetry]`: where spans go (`WAPIM_TELEMETRY__*`).
#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    /// OTLP/HTTP collector, e.g. `http://otel-collector:4318` (empty: spans are not exported).
    pub otlp_endpoint: String,
}

/// `[ingest]`: the webhook ingest's housekeeping (`WAPIM_INGEST__*`).
#[derive(Debug, Clone, Deserialize)]
pub struct IngestSettings {
    /// Days an applied WAHA event, and a finished delivery to the integrator's webhook with its
    /// attempts, are kept before they are deleted (0 keeps them forever).
    pub keep_days: u32,
}

/// `[webhooks]`: how events reach the integrator's webhook (`WAPIM_WEBHOOKS__*`).
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    /// Deliver to loopback, private, link-local and metadata addresses too (off: SSRF guard).
    pub allow_private: bool,
    /// How long one delivery attempt may take.
    pub timeout_secs: u64,
    /// The first retry's delay; each next one waits three times longer (up to two hours), for
    /// a day after the event.
    pub retry_base_ms: u64,
}

/// `[automations]`: the timing of the devices' automations (`WAPIM_AUTOMATIONS__*`).
#[derive(Debug, Clone, Deserialize)]
pub struct AutomationSettings {
    /// Silence after which a conversation is over: the closing message goes out, and the
    /// contact's next message opens a new conversation (opening message).
    pub conversation_silence_secs: u64,
    /// At most one auto-reply per contact within this window.
    pub auto_reply_window_secs: u64,
}

/// `[pacing]`: the default gap between two sends of one device (`WAPIM_PACING__*`).
#[derive(Debug, Clone, Deserialize)]
pub struct PacingSettings {
    /// Least milliseconds between the end of one send and the start of the next; 0 turns it off.
    pub min_interval_ms: u64,
    /// Upper bound of a random extra added to each gap, in milliseconds; 0 turns it off.
    pub jitter_ms: u64,
}

impl PacingSettings {
    /// No pacing (benches and soaks that measure the pipeline itself).
    pub const OFF: Self = Self {
        min_interval_ms: 0,
        jitter_ms: 0,
    };
}

/// `[amqp]`: where send jobs travel.
#[derive(Clone, Deserialize)]
pub struct AmqpSettings {
    /// `amqp://user:pass@host:5672/vhost` (`WAPIM_AMQP__URL`), or `memory://` for the in-process
    /// queue of a single process.
    pub url: String,
    /// Prefix of every exchange and queue name (`WAPIM_AMQP__PREFIX`).
    pub prefix: String,
    /// Deliveries of one job before it is dead-lettered (a job that crashes its consumer).
    pub delivery_limit: u32,
}

/// Debug without the broker password.
impl std::fmt::Debug for AmqpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = match self.url.split_once('@') {
            Some((_, host)) => format!("amqp://[redacted]@{host}"),
            None => self.url.clone(),
        };
        f.debug_struct("AmqpSettings")
            .field("url", &url)
            .field("prefix", &self.prefix)
            .field("delivery_limit", &self.delivery_limit)
            .finish()
    }
}

/// `[waha]`: the WAHA server.
#[derive(Clone, Deserialize)]
pub struct WahaSettings {
    /// Base URL (`WAPIM_WAHA__URL`).
    pub url: String,
    /// Sent as `X-Api-Key` (`WAPIM_WAHA__API_KEY`); empty sends none.
    pub api_key: String,
    /// Seconds to wait for WAHA's answer to a send (it may take ~75 s on GOWS).
    pub timeout_secs: u64,
    /// How many live devices the server of `url` may hold (it is registered as the `default`
    /// WAHA server; more are added through `/api/waha-servers`).
    pub capacity: u64,
    /// Where WAHA posts each device session's events: the public URL of Wapim's webhook ingest
    /// (`WAPIM_WAHA__WEBHOOK_URL`), set on every session Wapim creates.
    pub webhook_url: String,
    /// Seconds to wait for WAHA's answer to a call the API passes through (`me`, QR, restart…);
    /// past it the caller gets a 504.
    pub request_timeout_secs: u64,
}

/// Debug without the API key.
impl std::fmt::Debug for WahaSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WahaSettings")
            .field("url", &self.url)
            .field("api_key", &"[redacted]")
            .field("timeout_secs", &self.timeout_secs)
            .field("webhook_url", &self.webhook_url)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .finish()
    }
}

/// `[relay]`: how the gateway publishes owed send jobs.
#[derive(Debug, Clone, Deserialize)]
pub struct RelaySettings {
    /// Publish from this process (`WAPIM_RELAY__ENABLED`).
    pub enabled: bool,
    /// Milliseconds between scans when nothing was owed (due jobs go out within this).
    pub poll_ms: u64,
    /// Jobs reserved per scan.
    pub batch: i64,
    /// Seconds a reservation holds before another relay may take the rows over.
    pub lease_secs: u64,
}

/// `[dispatcher]`: consuming send jobs and calling WAHA (`WAPIM_DISPATCHER__*`).
#[derive(Debug, Clone, Deserialize)]
pub struct DispatcherSettings {
    /// Unacknowledged jobs one dispatcher holds at once (AMQP prefetch).
    pub prefetch: u16,
    /// Seconds a claim holds; past WAHA's own send timeout so a live send is never taken over.
    pub lease_secs: u64,
    /// Send attempts before a message is `failed` (timeouts, connection errors, 5xx).
    pub max_attempts: i32,
    /// First retry delay in milliseconds; doubles per attempt, with ±20 % jitter.
    pub backoff_base_ms: u64,
    /// Longest retry delay in milliseconds.
    pub backoff_max_ms: u64,
    /// Seconds a message waits while its WAHA session is not WORKING (no attempt is used).
    pub hold_secs: u64,
    /// Seconds between probes of a device paused by WhatsApp's reach-out timelock, when WAHA
    /// does not say when it ends.
    pub pause_probe_secs: u64,
    /// Seconds between sweeps for claims whose dispatcher died.
    pub sweep_secs: u64,
    /// On SIGTERM, how long the jobs in hand may take to finish before the process exits.
    pub shutdown_grace_secs: u64,
}

/// `[database]`: where and how to connect.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Connection URL (`WAPIM_DATABASE__URL`).
    pub url: String,
    /// Pool size per process.
    pub pool_max_size: u32,
    /// Seconds to wait for a pooled connection.
    pub connect_timeout_secs: u64,
    /// Create the database on start-up when missing.
    pub create_if_missing: bool,
    /// Requests that may wait for a pooled connection beyond the pool's size; more are answered
    /// 503 with `Retry-After` at once (`WAPIM_DATABASE__MAX_QUEUED_REQUESTS`).
    pub max_queued_requests: usize,
}

/// `[http]`: the listener and body limits.
#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    /// Interface to bind (`WAPIM_HTTP__HOST`).
    pub host: String,
    /// Port to bind (`WAPIM_HTTP__PORT`); 0 picks a free one.
    pub port: u16,
    /// Base URL for links in list responses; empty derives it from the request.
    pub public_url: String,
    /// Trust `Forwarded` / `X-Forwarded-*` for the links' scheme and host: only behind a proxy
    /// that sets them (`WAPIM_HTTP__TRUST_FORWARDED`, default off).
    pub trust_forwarded: bool,
    /// Body limit for single-record endpoints.
    pub max_body_bytes: usize,
    /// Body limit for the batch endpoint.
    pub max_batch_body_bytes: usize,
    /// Worker threads (0: one per core).
    pub workers: usize,
}

/// `[auth]`: the operator credential and how long verified device credentials are trusted.
#[derive(Clone, Deserialize)]
pub struct AuthSettings {
    /// Bearer token that may manage every device (`WAPIM_AUTH__ADMIN_TOKEN`).
    pub admin_token: String,
    /// Seconds a verified device credential is reused without asking the database
    /// (`WAPIM_AUTH__CREDENTIAL_CACHE_SECS`; 0 turns the cache off). A rotated or deleted
    /// device's old token may keep working this long on *other* replicas.
    pub credential_cache_secs: u64,
}

/// Debug without the token: settings get logged, secrets must not be.
impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("admin_token", &"[redacted]")
            .field("credential_cache_secs", &self.credential_cache_secs)
            .finish()
    }
}

/// `[phone]`: how national numbers are read.
#[derive(Debug, Clone, Deserialize)]
pub struct PhoneSettings {
    /// ISO 3166 alpha-2 region (`WAPIM_PHONE__DEFAULT_REGION`).
    pub default_region: String,
}

/// `[limits]`: protections against oversized or repeated work.
#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    /// Items accepted by one batch request.
    pub batch_max_items: usize,
    /// Hours an `Idempotency-Key` replays its first response.
    pub idempotency_ttl_hours: u32,
    /// Seconds `POST /api/messages` with `is_queue: false` waits for WAHA's answer before it
    /// answers with the message still pending (it then goes on through the queue).
    pub immediate_send_timeout_secs: u64,
}

/// `[log]`: what tracing prints.
#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    /// Filter directive, e.g. `info` or `wapim_gateway=debug,info`.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

/// Shortest operator token accepted: anything shorter is guessable.
pub const MIN_ADMIN_TOKEN_LEN: usize = 32;

impl Settings {
    /// Reads defaults, the optional `WAPIM_CONFIG_FILE` and the `WAPIM_*` environment.
    pub fn load() -> Result<Self, SettingsError> {
        Self::load_from(std::env::vars())
    }

    /// Like [`Settings::load`] but from the given variables: tests build settings without
    /// touching the process environment.
    pub fn load_from(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        Self::load_layered(None, vars)
    }

    /// Like [`Settings::load_from`], with `defaults` (TOML) layered over the compiled-in
    /// defaults, under the file and the environment: the single binary's embedded defaults
    /// ([`EMBEDDED_DEFAULTS_TOML`]) that any setting still overrides.
    pub fn load_layered(
        defaults: Option<&str>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let vars: std::collections::HashMap<String, String> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("WAPIM_"))
            .collect();
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULTS_TOML, FileFormat::Toml));
        if let Some(defaults) = defaults {
            builder = builder.add_source(File::from_str(defaults, FileFormat::Toml));
        }
        if let Some(path) = vars.get("WAPIM_CONFIG_FILE") {
            builder = builder.add_source(File::with_name(path).required(true));
        }
        let env_vars: std::collections::HashMap<String, String> = vars
            .iter()
            .filter(|(k, _)| k.as_str() != "WAPIM_CONFIG_FILE")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix("WAPIM")
                .prefix_separator("_")
                .separator("__")
                .source(Some(env_vars)),
        );
        let settings: Settings = builder
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| SettingsError::Load(name_env_var(&e.to_string())))?;
        settings.check()?;
        Ok(settings)
    }

    /// Checks the values every service relies on.
    fn check(&self) -> Result<(), SettingsError> {
        if self.database.url.trim().is_empty() {
            return Err(SettingsError::Missing {
                var: "WAPIM_DATABASE__URL",
                reason: "postgres://user@host:5432/wapim or sqlite://wapim.db",
            });
        }
        let url = self.database.url.trim();
        let sqlite_path = url.strip_prefix("sqlite://");
        if !(url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || sqlite_path.is_some_and(|p| !p.is_empty() && !p.ends_with('/')))
        {
            return Err(SettingsError::Invalid {
                var: "WAPIM_DATABASE__URL",
                reason: "must be postgres://user@host:5432/name or sqlite://path/to/file.db".into(),
            });
        }
        if self.database.pool_max_size == 0 {
            return Err(SettingsError::Invalid {
                var: "WAPIM_DATABASE__POOL_MAX_SIZE",
                reason: "must be at least 1".into(),
            });
        }
        if self.limits.batch_max_items == 0 {
            return Err(SettingsError::Invalid {
                var: "WAPIM_LIMITS__BATCH_MAX_ITEMS",
                reason: "must be at least 1".into(),
            });
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            return Err(SettingsError::Invalid {
                var: "WAPIM_LOG__FORMAT",
                reason: format!("`{}` is neither `text` nor `json`", self.log.format),
            });
        }
        Ok(())
    }

    /// The operator token, required by services that serve the REST API.
    pub fn require_admin_token(&self) -> Result<&str, SettingsError> {
        let token = self.auth.admin_token.trim();
        if token.is_empty() {
            return Err(SettingsError::Missing {
                var: "WAPIM_AUTH__ADMIN_TOKEN",
                reason:
                    "the operator token (at least 32 characters; `openssl rand -hex 32` makes one)",
            });
        }
        if token.len() < MIN_ADMIN_TOKEN_LEN {
            return Err(SettingsError::Invalid {
                var: "WAPIM_AUTH__ADMIN_TOKEN",
                reason: format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters"),
            });
        }
        Ok(token)
    }
}

/// Rewrites config's `key \`http.port\`` into the environment variable operators set.
fn name_env_var(message: &str) -> String {
    let Some(start) = message.find("key `") else {
        return message.to_owned();
    };
    let rest = &message[start + 5..];
    let Some(end) = rest.find('`') else {
        return message.to_owned();
    };
    let key = &rest[..end];
    let var = format!("WAPIM_{}", key.to_ascii_uppercase().replace('.', "__"));
    format!("{message} (set by {var})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let s = Settings::load_from(vars(&[])).unwrap();
        assert_eq!(s.http.port, 8000);
        assert_eq!(s.timezone, "Asia/Jakarta");
        assert_eq!(s.phone.default_region, "ID");
        assert_eq!(s.limits.batch_max_items, 1000);
    }

    #[test]
    fn environment_overrides_sections() {
        let s = Settings::load_from(vars(&[
            ("WAPIM_HTTP__PORT", "9001"),
            ("WAPIM_DATABASE__URL", "postgres://u@h/db"),
            ("WAPIM_TIMEZONE", "Europe/Berlin"),
            ("WAPIM_AUTH__ADMIN_TOKEN", "1e5"),
            ("WAPIM_PHONE__DEFAULT_REGION", "US"),
        ]))
        .unwrap();
        assert_eq!(s.http.port, 9001);
        assert_eq!(s.database.url, "postgres://u@h/db");
        assert_eq!(s.timezone, "Europe/Berlin");
        // Tokens stay strings even when they look like numbers.
        assert_eq!(s.auth.admin_token, "1e5");
        assert_eq!(s.phone.default_region, "US");
        assert!(
            !format!("{s:?}").contains("1e5"),
            "the token leaks into Debug"
        );
    }

    #[test]
    fn pacing_defaults_follow_wahas_guidance_and_the_environment_turns_it_off() {
        let s = Settings::load_from(vars(&[])).unwrap();
        assert_eq!(
            (s.pacing.min_interval_ms, s.pacing.jitter_ms),
            (30_000, 30_000)
        );
        let s = Settings::load_from(vars(&[
            ("WAPIM_PACING__MIN_INTERVAL_MS", "0"),
            ("WAPIM_PACING__JITTER_MS", "0"),
        ]))
        .unwrap();
        assert_eq!((s.pacing.min_interval_ms, s.pacing.jitter_ms), (0, 0));
        let err = Settings::load_from(vars(&[("WAPIM_PACING__JITTER_MS", "-5")])).unwrap_err();
        assert!(err.to_string().contains("WAPIM_PACING__JITTER_MS"), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Settings::load_from(vars(&[("WAPIM_HTTP__PORT", "eighty")])).unwrap_err();
        assert!(err.to_string().contains("WAPIM_HTTP__PORT"), "{err}");
        for bad in ["mysql://x", "sqlite://", "wapim.db", "sqlite:wapim.db"] {
            let err = Settings::load_from(vars(&[("WAPIM_DATABASE__URL", bad)])).unwrap_err();
            assert!(err.to_string().contains("WAPIM_DATABASE__URL"), "{err}");
        }
        let ok = Settings::load_from(vars(&[("WAPIM_DATABASE__URL", "sqlite://wapim.db")]));
        assert!(ok.is_ok());
        let s = Settings::load_from(vars(&[])).unwrap();
        let err = s.require_admin_token().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("missing setting WAPIM_AUTH__ADMIN_TOKEN"),
            "{err}"
        );
    }
}

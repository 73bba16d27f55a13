//! WAHA servers: the directory that gives each device's WAHA calls to the server its session
//! lives on, and the operators' use cases for registering, draining and retiring servers.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::{Map, Value};
use wapim_domain::validation::{Field, FieldReader};
use wapim_store::waha_servers::{self, ServerLoad, WahaServerFields, WahaServerRow};
use wapim_store::{DbConn, Pool, StoreError};
use wapim_waha::WahaClient;

use crate::cache::ExpiringMap;
use crate::{Actor, AppError};

/// The states a server may be in.
pub const SERVER_STATES: &[&str] = &["active", "draining", "down"];

/// How long the directory trusts what it read (a server's URL and key, a session's server).
const DIRECTORY_CACHE: Duration = Duration::from_secs(30);

/// Finds the WAHA client for a session or a server: the device's own server, else the default
/// one (`WAPIM_WAHA__URL`: devices created before servers were registered live there). Cheap to
/// clone.
#[derive(Clone)]
pub struct WahaDirectory {
    pool: Pool,
    default: WahaClient,
    timeout: Duration,
    clients: Arc<ExpiringMap<i64, WahaClient>>,
    server_of_session: Arc<ExpiringMap<String, Option<i64>>>,
}

impl WahaDirectory {
    /// A directory over `pool`, falling back to `default`; clients it builds wait `timeout`.
    pub fn new(pool: Pool, default: WahaClient, timeout: Duration) -> Self {
        Self {
            pool,
            default,
            timeout,
            clients: Arc::new(ExpiringMap::new(DIRECTORY_CACHE)),
            server_of_session: Arc::new(ExpiringMap::new(DIRECTORY_CACHE)),
        }
    }

    /// The default server's client.
    pub fn default_client(&self) -> &WahaClient {
        &self.default
    }

    /// The client of the server a session lives on (the default when the device has none, or
    /// the lookup failed: the caller's WAHA call then says what is wrong).
    pub async fn for_session(&self, session: &str) -> WahaClient {
        let server = match self.server_of_session.get(session) {
            Some(server) => server,
            None => {
                let name = session.to_owned();
                match crate::with_connection(&self.pool, move |c| {
                    waha_servers::of_session(c, &name)
                })
                .await
                {
                    Ok(server) => {
                        self.server_of_session.put(session.to_owned(), server);
                        server
                    }
                    Err(_) => None,
                }
            }
        };
        self.for_server(server).await
    }

    /// The client of server `id` (`None`: the default).
    pub async fn for_server(&self, id: Option<i64>) -> WahaClient {
        let Some(id) = id else {
            return self.default.clone();
        };
        if let Some(client) = self.clients.get(&id) {
            return client;
        }
        let row = crate::with_connection(&self.pool, move |c| waha_servers::find(c, id)).await;
        let client = row
            .ok()
            .and_then(|row| WahaClient::new(&row.base_url, row.api_key, self.timeout).ok());
        match client {
            Some(client) => {
                self.clients.put(id, client.clone());
                client
            }
            None => self.default.clone(),
        }
    }

    /// Drops what the directory knows of server `id` (it changed or is gone).
    pub fn forget_server(&self, id: i64) {
        self.clients.remove(&id);
    }

    /// Every server's client with its row (to list sessions on each).
    pub async fn all(&self) -> Result<Vec<(WahaServerRow, WahaClient)>, StoreError> {
        let rows = crate::with_connection(&self.pool, waha_servers::list).await?;
        let mut out = Vec::with_capacity(rows.len());
        for load in rows {
            let client = self.for_server(Some(load.server.id)).await;
            out.push((load.server, client));
        }
        Ok(out)
    }
}

/// Registers the server of `WAPIM_WAHA__URL` if no server has that URL yet (start-up of the
/// gateway and the dispatcher).
pub fn ensure_default(
    conn: &mut DbConn,
    base_url: &str,
    api_key: Option<&str>,
    capacity: i64,
    now: NaiveDateTime,
) -> Result<WahaServerRow, AppError> {
    let fields = WahaServerFields {
        name: "default".to_owned(),
        base_url: base_url.trim_end_matches('/').to_owned(),
        api_key: api_key.map(str::to_owned),
        capacity,
        state: "active".to_owned(),
    };
    Ok(waha_servers::ensure(conn, &fields, now)?)
}

/// Every server with its load (operators only).
pub fn list(conn: &mut DbConn, actor: &Actor) -> Result<Vec<ServerLoad>, AppError> {
    actor.require_operator()?;
    Ok(waha_servers::list(conn)?)
}

/// Validates a server body: `name`, `base_url` (http or https), `api_key` (optional),
/// `capacity` (1..100,000), `state` (`active`, `draining`, `down`). On a patch absent fields keep
/// `stored`'s.
pub fn validate(
    body: &Map<String, Value>,
    stored: Option<&WahaServerRow>,
) -> Result<WahaServerFields, AppError> {
    let mut r = FieldReader::new(body);
    let name = match r.string("name", 100) {
        Field::Value(n) => Some(n.trim().to_owned()),
        Field::Absent => stored.map(|s| s.name.clone()),
        _ => None,
    };
    if name.is_none() && !r.errors.has("name") {
        r.required("name");
    }
    let base_url = match r.string("base_url", 2048) {
        Field::Value(u) => match wapim_domain::media::file_meta_from_url(u.trim()) {
            Ok(_) => Some(u.trim().trim_end_matches('/').to_owned()),
            Err(_) => {
                r.fail(
                    "base_url",
                    "The base url must be an http(s) URL such as http://waha-1:3000.",
                );
                None
            }
        },
        Field::Absent => stored.map(|s| s.base_url.clone()),
        _ => None,
    };
    if base_url.is_none() && !r.errors.has("base_url") {
        r.required("base_url");
    }
    let api_key = match r.string("api_key", 256) {
        Field::Value(k) => Some(k),
        Field::Null => None,
        _ => stored.and_then(|s| s.api_key.clone()),
    };
    let capacity = r
        .integer("capacity", 1, 100_000)
        .or_keep(stored.and_then(|s| u64::try_from(s.capacity).ok()))
        .unwrap_or(50);
    let state = match r.string("state", 16) {
        Field::Value(s) if SERVER_STATES.contains(&s.as_str()) => s,
        Field::Value(_) => {
            r.fail("state", "The state must be one of: active, draining, down.");
            String::new()
        }
        _ => stored.map_or_else(|| "active".to_owned(), |s| s.state.clone()),
    };
    let errors = std::mem::take(&mut r.errors);
    match (name, base_url) {
        (Some(name), Some(base_url)) if errors.is_empty() => Ok(WahaServerFields {
            name,
            base_url,
            api_key,
            capacity: i64::try_from(capacity).unwrap_or(50),
            state,
        }),
        _ => Err(AppError::Invalid(errors)),
    }
}

/// Registers a server (operators only).
pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    body: &Map<String, Value>,
    now: NaiveDateTime,
) -> Result<ServerLoad, AppError> {
    actor.require_operator()?;
    let fields = validate(body, None)?;
    let server = waha_servers::insert(conn, &fields, now).map_err(conflict)?;
    Ok(ServerLoad { server, devices: 0 })
}

/// Changes a server (operators only): capacity, state (drain it, mark it down), name, URL, key.
pub fn update(
    conn: &mut DbConn,
    actor: &Actor,
    id: i64,
    body: &Map<String, Value>,
    now: NaiveDateTime,
) -> Result<ServerLoad, AppError> {
    actor.require_operator()?;
    let stored = waha_servers::find(conn, id)?;
    let fields = validate(body, Some(&stored))?;
    waha_servers::update(conn, id, &fields, now).map_err(conflict)?;
    waha_servers::list(conn)?
        .into_iter()
        .find(|l| l.server.id == id)
        .ok_or(AppError::NotFound)
}

/// Removes a server no device belongs to (operators only); 409 otherwise.
pub fn delete(conn: &mut DbConn, actor: &Actor, id: i64) -> Result<(), AppError> {
    actor.require_operator()?;
    waha_servers::delete(conn, id).map_err(|e| match e {
        StoreError::Conflict(_) => AppError::Conflict(
            "id",
            "Devices belong to this WAHA server (their sessions live there); drain it instead."
                .into(),
        ),
        other => other.into(),
    })
}

fn conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(_) => AppError::Conflict(
            "base_url",
            "Another WAHA server has this name or base url.".into(),
        ),
        other => other.into(),
    }
}

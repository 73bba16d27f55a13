//! `Idempotency-Key`: a retried POST within the TTL gets the first response and creates nothing.
//!
//! The record is written in the same transaction as the rows it describes, so a response is
//! remembered exactly when its rows exist. Two concurrent requests with one key: the second
//! blocks on the primary key until the first commits, fails with a conflict, rolls its rows back
//! and replays the first response.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use chrono::NaiveDateTime;
use sha2::{Digest, Sha256};
use wapim_store::idempotency::{self, IdempotencyRecord};
use wapim_store::{DbConn, StoreError};

use wapim_app::Actor;
use wapim_web::ApiError;

/// Header clients send.
pub const HEADER: &str = "Idempotency-Key";
/// Header set on replayed responses.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";

/// A request's key, scoped to its caller, with the fingerprint of the request.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    scope: String,
    key: String,
    request_hash: String,
}

/// A response to send, fresh or replayed.
#[derive(Debug)]
pub struct Stored {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: serde_json::Value,
    /// True when this is a replay of an earlier request.
    pub replayed: bool,
}

impl Stored {
    /// Turns it into an HTTP response.
    pub fn into_response(self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut response = HttpResponse::build(status);
        if self.replayed {
            response.insert_header((REPLAYED_HEADER, "true"));
        }
        response.json(self.body)
    }
}

impl IdempotencyKey {
    /// Binds the key to its caller: keys of different callers never collide.
    pub fn scoped(mut self, actor: &Actor) -> Self {
        self.scope = actor.idempotency_scope();
        self
    }
}

/// Reads the header; a present but unusable key is a 422. The key is unscoped until
/// [`IdempotencyKey::scoped`] names its caller.
pub fn key_of(
    req: &HttpRequest,
    body: &serde_json::Value,
) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = req.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = raw.to_str().unwrap_or("").trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::field(
            HEADER,
            "The Idempotency-Key must be 1 to 255 visible ASCII characters.",
        ));
    }
    // Hash a canonical text (keys sorted, no spacing) so reordered keys are the same request.
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(b" ");
    hasher.update(req.path());
    hasher.update(b"\n");
    hasher.update(canonical(body).to_string());
    Ok(Some(IdempotencyKey {
        scope: String::new(),
        key: key.to_owned(),
        request_hash: hex::encode(hasher.finalize()),
    }))
}

/// The earlier response for this key, or a 422 if the key was used for another request.
pub fn replay(
    conn: &mut DbConn,
    key: &IdempotencyKey,
    not_before: NaiveDateTime,
) -> Result<Option<Stored>, ApiError> {
    let Some(record) = idempotency::find(conn, &key.scope, &key.key, not_before)? else {
        return Ok(None);
    };
    if record.request_hash != key.request_hash {
        return Err(ApiError::field(
            HEADER,
            "This Idempotency-Key was already used with a different request.",
        ));
    }
    let body = serde_json::from_str(&record.response_body)
        .map_err(|e| ApiError::Internal(format!("stored idempotent response: {e}")))?;
    Ok(Some(Stored {
        status: u16::try_from(record.response_status).unwrap_or(200),
        body,
        replayed: true,
    }))
}

/// Runs `work` and, with a key, remembers its response under `key` in the same transaction
/// (replaying instead when the key was already used). Without a key `work` runs outside any
/// transaction, so work of several statements must open its own.
pub fn run<F>(
    conn: &mut DbConn,
    key: Option<&IdempotencyKey>,
    now: NaiveDateTime,
    ttl: chrono::Duration,
    work: F,
) -> Result<Stored, ApiError>
where
    F: FnOnce(&mut DbConn) -> Result<serde_json::Value, ApiError>,
{
    let not_before = now - ttl;
    let Some(key) = key else {
        // No key, nothing to remember: `work` runs as it is (a single INSERT needs no BEGIN and
        // COMMIT round trips; work of several statements opens its own transaction).
        let body = work(conn)?;
        return Ok(Stored {
            status: 200,
            body,
            replayed: false,
        });
    };
    if let Some(stored) = replay(conn, key, not_before)? {
        return Ok(stored);
    }
    let outcome = wapim_store::transaction(conn, |conn| {
        let body = work(conn)?;
        let record = IdempotencyRecord {
            scope: key.scope.clone(),
            idempotency_key: key.key.clone(),
            request_hash: key.request_hash.clone(),
            response_status: 200,
            response_body: body.to_string(),
            created_at: now,
        };
        idempotency::insert(conn, &record, not_before)?;
        Ok::<_, ApiError>(body)
    });
    match outcome {
        Ok(body) => Ok(Stored {
            status: 200,
            body,
            replayed: false,
        }),
        // A concurrent request with the same key committed first: answer as it did.
        Err(ApiError::Conflict("idempotency_key", _)) => replay(conn, key, not_before)?
            .ok_or_else(|| ApiError::from(StoreError::Conflict("idempotency_key"))),
        Err(e) => Err(e),
    }
}

/// `value` with every object's keys sorted.
fn canonical(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(canonical).collect())
        }
        other => other.clone(),
    }
}

//! Who is calling: the operator (bearer token) or one device (session id + secret token).

use std::future::{ready, Ready};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use wapim_domain::token::{hash_token, secrets_equal, token_matches};
use wapim_store::devices::{self, DeviceRow};
use wapim_store::DbConn;

use crate::error::ApiError;
use crate::state::AppState;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub enum Principal {
    /// Holder of `WAPIM_AUTH__ADMIN_TOKEN`: may manage every device and message.
    Operator,
    /// A device authenticated by its own credentials: sees only itself and its messages.
    Device(Box<DeviceRow>),
}

impl Principal {
    /// The device id the caller is confined to, if any.
    pub fn device_scope(&self) -> Option<i64> {
        match self {
            Principal::Operator => None,
            Principal::Device(d) => Some(d.id),
        }
    }

    /// Fails with 403 unless the caller is the operator.
    pub fn require_operator(&self) -> Result<(), ApiError> {
        match self {
            Principal::Operator => Ok(()),
            Principal::Device(_) => Err(ApiError::Forbidden),
        }
    }

    /// Key under which this caller's idempotency keys live.
    pub fn idempotency_scope(&self) -> String {
        match self {
            Principal::Operator => "admin".to_owned(),
            Principal::Device(d) => format!("device:{}", d.id),
        }
    }
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Credentials as presented. The operator token is checked here (no I/O); device credentials
/// are checked by [`Caller::resolve`] inside the request's own database call, so a request costs
/// one trip to the blocking pool, not two.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A valid operator bearer token.
    Operator,
    /// Device credentials, not yet verified.
    Device {
        /// `X-Session-Id`.
        session: String,
        /// `X-Session-Secret-Token`.
        secret: String,
    },
}

impl Caller {
    /// Verifies the credentials: the operator as is, a device against its stored token hash
    /// (constant-time; an unknown session costs the same as a wrong token).
    pub fn resolve(self, conn: &mut DbConn) -> Result<Principal, ApiError> {
        match self {
            Caller::Operator => Ok(Principal::Operator),
            Caller::Device { session, secret } => {
                match devices::find_live_by_session(conn, &session)? {
                    Some(device) if token_matches(&secret, &device.secret_token_hash) => {
                        Ok(Principal::Device(Box::new(device)))
                    }
                    Some(_) => Err(ApiError::Unauthenticated),
                    None => {
                        let _ = token_matches(&secret, &hash_token("no such session"));
                        Err(ApiError::Unauthenticated)
                    }
                }
            }
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(caller_of(req))
    }
}

fn caller_of(req: &HttpRequest) -> Result<Caller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal("state missing".into()))?;
    let bearer = header(req, "authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
    });
    if let Some(token) = bearer {
        return if secrets_equal(token, &state.admin_token) {
            Ok(Caller::Operator)
        } else {
            Err(ApiError::Unauthenticated)
        };
    }
    match (
        header(req, "x-session-id"),
        header(req, "x-session-secret-token"),
    ) {
        (Some(session), Some(secret)) if session.len() <= 128 && secret.len() <= 256 => {
            Ok(Caller::Device {
                session: session.to_owned(),
                secret: secret.to_owned(),
            })
        }
        _ => Err(ApiError::Unauthenticated),
    }
}

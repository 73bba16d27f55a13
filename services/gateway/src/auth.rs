//! Who is calling: the operator (bearer token) or one device (session id + secret token).

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use wapim_domain::token::{hash_token, secrets_equal, token_matches};
use wapim_store::devices::{self, DeviceRow};

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

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let bearer = header(req, "authorization").and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .map(|t| t.trim().to_owned())
        });
        let session = header(req, "x-session-id").map(str::to_owned);
        let secret = header(req, "x-session-secret-token").map(str::to_owned);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::Internal("state missing".into()))?;
            if let Some(token) = bearer {
                return if secrets_equal(&token, &state.admin_token) {
                    Ok(Principal::Operator)
                } else {
                    Err(ApiError::Unauthenticated)
                };
            }
            let (Some(session), Some(secret)) = (session, secret) else {
                return Err(ApiError::Unauthenticated);
            };
            if session.len() > 128 || secret.len() > 256 {
                return Err(ApiError::Unauthenticated);
            }
            let state = state.into_inner();
            let device = state
                .db(move |conn| Ok(devices::find_live_by_session(conn, &session)?))
                .await?;
            match device {
                Some(device) if token_matches(&secret, &device.secret_token_hash) => {
                    Ok(Principal::Device(Box::new(device)))
                }
                Some(_) => Err(ApiError::Unauthenticated),
                None => {
                    // Same work as a real comparison, so timing does not reveal which
                    // session ids exist.
                    let _ = token_matches(&secret, &hash_token("no such session"));
                    Err(ApiError::Unauthenticated)
                }
            }
        })
    }
}

//! Who is calling: the operator (bearer token) or one device (session id + secret token).
//!
//! Authentication happens before any other work: the [`Authenticated`] extractor resolves the
//! caller from the headers alone (the body is not read yet), so a request with bad credentials
//! costs one comparison or one credential lookup and gets its 401. Device credentials are served
//! from a short-lived cache of verified ones ([`CredentialCache`]), so a valid request usually
//! costs no database trip for them.

use std::future::Future;
use std::pin::Pin;

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use wapim_app::credentials::verify_device;
use wapim_app::Actor;
use wapim_domain::token::token_matches;
use wapim_domain::SecretString;
use wapim_web::ApiError;

use crate::state::AppState;

#[cfg(doc)]
use wapim_app::credentials::CredentialCache;

/// An authenticated caller; handlers take it as their first argument.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Actor);

/// Credentials as presented in the headers.
enum Presented {
    Operator(SecretString),
    Device {
        session: String,
        secret: SecretString,
    },
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn presented(req: &HttpRequest) -> Result<Presented, ApiError> {
    let bearer = header(req, "authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
    });
    if let Some(token) = bearer {
        return Ok(Presented::Operator(token.into()));
    }
    match (
        header(req, "x-session-id"),
        header(req, "x-session-secret-token"),
    ) {
        (Some(session), Some(secret)) if session.len() <= 128 && secret.len() <= 256 => {
            Ok(Presented::Device {
                session: session.to_owned(),
                secret: secret.into(),
            })
        }
        _ => Err(ApiError::Unauthenticated),
    }
}

async fn authenticate(
    state: Option<web::Data<AppState>>,
    presented: Result<Presented, ApiError>,
) -> Result<Authenticated, ApiError> {
    let state = state.ok_or_else(|| ApiError::Internal("gateway state missing".into()))?;
    match presented? {
        Presented::Operator(token) => {
            use wapim_domain::ExposeSecret;
            if token_matches(token.expose_secret(), &state.operator_token_hash) {
                Ok(Authenticated(Actor::Operator))
            } else {
                Err(ApiError::Unauthenticated)
            }
        }
        Presented::Device { session, secret } => {
            if let Some(actor) = state.credentials.check(&session, &secret) {
                return Ok(Authenticated(actor));
            }
            let verified = state
                .db
                .run(move |c| verify_device(c, &session, &secret))
                .await?;
            state.credentials.remember(&verified);
            Ok(Authenticated(Actor::Device(verified.device)))
        }
    }
}

impl FromRequest for Authenticated {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let presented = presented(req);
        Box::pin(authenticate(state, presented))
    }
}

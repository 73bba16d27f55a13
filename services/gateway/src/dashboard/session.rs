//! The dashboard's login session: a signed cookie, no server-side store.
//!
//! - **What it holds:** who logged in (the operator, or one device with a fingerprint of its
//!   token's hash), when it expires and a random nonce. HMAC-SHA256 under a key derived from the
//!   operator token's hash, so rotating the operator token ends every session.
//! - **A device's session ends with its token:** each request re-reads the device, and a deleted
//!   device or a rotated token (another fingerprint) is logged out.
//! - **The cookie** is `HttpOnly`, `SameSite=Strict`, scoped to `/dashboard`, `Secure` behind
//!   https. Every form carries a CSRF token derived from the session's nonce, and a POST whose
//!   `Origin` is another site is refused.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cookie's name.
pub const COOKIE: &str = "wapim_dashboard";

/// How long a login lasts.
pub const LIFETIME_SECS: i64 = 12 * 3600;

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Holder {
    /// The operator.
    Operator,
    /// One device: its id and the first 16 hex characters of its token's SHA-256.
    Device {
        /// The device.
        id: i64,
        /// Its token's fingerprint at login.
        fingerprint: String,
    },
}

/// A session's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Who.
    pub holder: Holder,
    /// Unix seconds it expires at.
    pub expires: i64,
    /// Random; the CSRF token derives from it.
    pub nonce: String,
}

/// The key sessions are signed with, derived from the operator token's hash.
#[derive(Clone)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// Derives the key from the operator token's SHA-256 (hex).
    pub fn derive(operator_token_hash: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"wapim dashboard session key\0");
        hasher.update(operator_token_hash.as_bytes());
        Self(hasher.finalize().into())
    }

    fn mac(&self, part: &str, data: &[u8]) -> Hmac<Sha256> {
        // A 32-byte key is always accepted by HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(part.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        mac
    }

    /// The cookie value of `session`.
    pub fn seal(&self, session: &Session) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).unwrap_or_default());
        let tag = URL_SAFE_NO_PAD.encode(
            self.mac("session", payload.as_bytes())
                .finalize()
                .into_bytes(),
        );
        format!("{payload}.{tag}")
    }

    /// The session in a cookie value, if it is genuine and not expired at `now` (unix seconds).
    pub fn open(&self, value: &str, now: i64) -> Option<Session> {
        let (payload, tag) = value.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac("session", payload.as_bytes())
            .verify_slice(&tag)
            .ok()?;
        let session: Session =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (session.expires > now).then_some(session)
    }

    /// The CSRF token of a session's forms.
    pub fn csrf(&self, session: &Session) -> String {
        hex::encode(
            &self
                .mac("csrf", session.nonce.as_bytes())
                .finalize()
                .into_bytes()[..16],
        )
    }

    /// Whether `given` is the session's CSRF token (constant time).
    pub fn csrf_matches(&self, session: &Session, given: &str) -> bool {
        let Ok(given) = hex::decode(given) else {
            return false;
        };
        given.len() == 16
            && self
                .mac("csrf", session.nonce.as_bytes())
                .verify_truncated_left(&given)
                .is_ok()
    }
}

/// The fingerprint a device session keeps of the device's token hash.
pub fn fingerprint(token_hash: &str) -> String {
    token_hash.chars().take(16).collect()
}

/// A fresh random nonce.
pub fn nonce() -> String {
    wapim_domain::token::generate_secret_token()[..32].to_owned()
}

/// The `Set-Cookie` value that stores `value` (or, with `None`, removes the cookie).
pub fn set_cookie(value: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(v) => format!(
            "{COOKIE}={v}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_SECS}{secure}"
        ),
        None => format!("{COOKIE}=; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    }
}

/// The value of our cookie in a `Cookie` header.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires: i64) -> Session {
        Session {
            holder: Holder::Device {
                id: 7,
                fingerprint: "abcdef0123456789".into(),
            },
            expires,
            nonce: nonce(),
        }
    }

    #[test]
    fn a_sealed_session_opens_only_with_its_key_untampered_and_before_it_expires() {
        let key = SessionKey::derive("hash-one");
        let s = session(1_000);
        let sealed = key.seal(&s);
        assert_eq!(key.open(&sealed, 999), Some(s.clone()));
        assert_eq!(key.open(&sealed, 1_000), None, "expired");
        assert_eq!(SessionKey::derive("hash-two").open(&sealed, 1), None);
        let forged = key
            .seal(&Session {
                holder: Holder::Operator,
                ..s.clone()
            })
            .split_once('.')
            .map(|(p, _)| p.to_owned())
            .unwrap();
        let tag = sealed.split_once('.').unwrap().1;
        assert_eq!(key.open(&format!("{forged}.{tag}"), 1), None, "tampered");
        assert_eq!(key.open("garbage", 1), None);
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let key = SessionKey::derive("h");
        let (a, b) = (session(10), session(10));
        let token = key.csrf(&a);
        assert!(key.csrf_matches(&a, &token));
        assert!(!key.csrf_matches(&b, &token));
        assert!(!key.csrf_matches(&a, "zz"));
        assert!(!key.csrf_matches(&a, ""));
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(
            cookie_value("a=1; wapim_dashboard=xyz.abc; b=2"),
            Some("xyz.abc")
        );
        assert_eq!(cookie_value("a=1"), None);
        assert!(set_cookie(Some("v"), true).contains("HttpOnly; SameSite=Strict"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
    }
}

//! Device credentials: verifying `X-Session-Id` + `X-Session-Secret-Token`, and a short-lived
//! cache of verified ones so a request costs no database trip for its credentials.
//!
//! Only credentials that verified are cached (a flood of wrong tokens cannot fill it), entries
//! live `ttl` (default 10 s), and the process that rotates a token or deletes a device forgets
//! the entry at once. Another replica may accept a revoked token until its entry expires: at most
//! `ttl` after the change.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use wapim_domain::token::{hash_token, token_matches};
use wapim_domain::{ExposeSecret, SecretString};
use wapim_store::{devices, DbConn};

use crate::{Actor, AppError, DeviceRef};

/// A verified device and the hash its token was checked against.
#[derive(Debug, Clone)]
pub struct VerifiedDevice {
    /// The device.
    pub device: DeviceRef,
    token_hash: String,
}

/// Checks a device's credentials against the store: the live device with that session id and
/// a token whose SHA-256 matches, compared in constant time (an unknown session costs the same
/// as a wrong token).
pub fn verify_device(
    conn: &mut DbConn,
    session: &str,
    secret: &SecretString,
) -> Result<VerifiedDevice, AppError> {
    match devices::find_live_by_session(conn, session)? {
        Some(row) if token_matches(secret.expose_secret(), &row.secret_token_hash) => {
            Ok(VerifiedDevice {
                device: DeviceRef {
                    id: row.id.into(),
                    session_id: row.session_id,
                },
                token_hash: row.secret_token_hash,
            })
        }
        Some(_) => Err(AppError::Unauthenticated),
        None => {
            let _ = token_matches(secret.expose_secret(), &hash_token("no such session"));
            Err(AppError::Unauthenticated)
        }
    }
}

/// Recently verified device credentials, by session id.
#[derive(Debug)]
pub struct CredentialCache {
    ttl: Duration,
    capacity: usize,
    entries: RwLock<HashMap<String, (VerifiedDevice, Instant)>>,
}

impl CredentialCache {
    /// A cache keeping entries `ttl` (zero disables it) and at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The actor for these credentials if they were verified less than `ttl` ago with this very
    /// token; `None` means "ask the store".
    pub fn check(&self, session: &str, secret: &SecretString) -> Option<Actor> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let (verified, at) = entries.get(session)?;
        (at.elapsed() < self.ttl && token_matches(secret.expose_secret(), &verified.token_hash))
            .then(|| Actor::Device(verified.device.clone()))
    }

    /// Remembers credentials that just verified.
    pub fn remember(&self, verified: &VerifiedDevice) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= self.capacity {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
                if entries.len() >= self.capacity {
                    entries.clear();
                }
            }
            entries.insert(
                verified.device.session_id.clone(),
                (verified.clone(), Instant::now()),
            );
        }
    }

    /// Forgets a session's entry (its token was rotated or its device deleted).
    pub fn forget(&self, session: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(session);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(session: &str, token: &str) -> VerifiedDevice {
        VerifiedDevice {
            device: DeviceRef {
                id: 7.into(),
                session_id: session.to_owned(),
            },
            token_hash: hash_token(token),
        }
    }

    #[test]
    fn a_cached_entry_answers_only_for_its_own_token_and_until_forgotten() {
        let cache = CredentialCache::new(Duration::from_secs(60), 10);
        let good = SecretString::from("a".repeat(64));
        let bad = SecretString::from("b".repeat(64));
        assert!(cache.check("s", &good).is_none());
        cache.remember(&verified("s", &"a".repeat(64)));
        assert!(matches!(cache.check("s", &good), Some(Actor::Device(d)) if d.id.get() == 7));
        assert!(cache.check("s", &bad).is_none());
        cache.forget("s");
        assert!(cache.check("s", &good).is_none());
    }

    #[test]
    fn entries_expire_and_capacity_is_bounded() {
        let cache = CredentialCache::new(Duration::from_millis(1), 2);
        let t = "c".repeat(64);
        cache.remember(&verified("s", &t));
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.check("s", &SecretString::from(t.clone())).is_none());
        let cache = CredentialCache::new(Duration::from_secs(60), 2);
        for s in ["a", "b", "c", "d"] {
            cache.remember(&verified(s, &t));
        }
        assert!(cache.entries.read().unwrap().len() <= 2);
        let off = CredentialCache::new(Duration::ZERO, 2);
        off.remember(&verified("s", &t));
        assert!(off.check("s", &SecretString::from(t)).is_none());
    }
}

//! A small map whose entries expire: facts a process may reuse for a short while (a session's
//! engine or pacing in the dispatcher, WAHA's `me` in the gateway) instead of asking again.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries trusted for `ttl` after they were put; a poisoned lock reads as a miss (the caller
/// asks again) and drops the write.
pub struct ExpiringMap<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> ExpiringMap<K, V> {
    /// An empty map whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value under `key` if it is younger than the map's time to live.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        let (value, at) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Forgets `key`.
    pub fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    /// Puts `value` under `key` (now), dropping expired entries once the map has grown.
    pub fn put(&self, key: K, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= 10_000 {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            entries.insert(key, (value, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_their_time_to_live() {
        let map = ExpiringMap::new(Duration::from_millis(50));
        map.put("a".to_owned(), 1);
        assert_eq!(map.get("a"), Some(1));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(map.get("a"), None);
    }
}

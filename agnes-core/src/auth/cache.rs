//! A short memory of verified bearer tokens, so that a burst of requests with one token reads
//! the state database once instead of once per request.
//!
//! An entry holds the principal a token resolved to. It is used only while it is younger than
//! [`FRESH_FOR`] and no change to users or tokens has happened since it was made: every such
//! change (a role change, a deactivation, a password reset, a revoked token) calls
//! [`AuthCache::invalidate`], so it takes effect on the next request. The signature and expiry of
//! the token are still checked on every request. Keys are SHA-256 digests of the tokens, so the
//! tokens themselves are not kept.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::Principal;

/// How long a verified token is trusted without reading the state database again.
pub const FRESH_FOR: Duration = Duration::from_secs(2);
/// Entries kept at most; the map is cleared when it is full.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    principal: Principal,
    generation: u64,
    checked: Instant,
}

/// Verified tokens and the principals they resolved to.
#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    generation: AtomicU64,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache").finish_non_exhaustive()
    }
}

impl AuthCache {
    /// The principal `token` resolved to, if that was recent and nothing changed since.
    pub fn get(&self, token: &str) -> Option<Principal> {
        let key = digest(token);
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entry = entries.get(&key)?;
        (entry.generation == generation && entry.checked.elapsed() < FRESH_FOR)
            .then(|| entry.principal.clone())
    }

    /// Remembers that `token` resolved to `principal`, read at `generation` (see
    /// [`AuthCache::generation`]); an entry read before a change is never stored as current.
    pub fn put(&self, token: &str, principal: &Principal, generation: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            digest(token),
            Entry {
                principal: principal.clone(),
                generation,
                checked: Instant::now(),
            },
        );
    }

    /// The current generation; read it before reading the state database.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Forgets every entry; call after any change to users or tokens.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Role, TokenKind};

    fn principal() -> Principal {
        Principal {
            user_id: "u1".to_string(),
            email: "a@example.com".to_string(),
            role: Role::Analyst,
            token_kind: TokenKind::Session,
        }
    }

    #[test]
    fn entries_end_with_a_change() {
        let cache = AuthCache::default();
        assert_eq!(cache.get("t"), None);
        let generation = cache.generation();
        cache.put("t", &principal(), generation);
        assert_eq!(cache.get("t"), Some(principal()));
        assert_eq!(cache.get("other"), None);
        cache.invalidate();
        assert_eq!(cache.get("t"), None);
        // A read that started before the change is not trusted after it.
        cache.put("t", &principal(), generation);
        assert_eq!(cache.get("t"), None);
    }
}

//! Secret tokens: generated from a CSPRNG, stored as SHA-256, compared in constant time.

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of entropy in a generated token (64 hex characters, as the reference shows).
pub const TOKEN_BYTES: usize = 32;

/// A fresh secret token: 64 lowercase hex characters from the operating system's CSPRNG.
pub fn generate_secret_token() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    // ThreadRng is ChaCha12 reseeded from the OS: a CSPRNG, and infallible unlike OsRng.
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A fresh id for a delivery to the integrator's webhook (Standard Webhooks' `webhook-id`):
/// `msg_` and 26 lowercase base32 characters (130 random bits).
pub fn new_webhook_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let mut rng = rand::rng();
    let id: String = (0..26)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("msg_{id}")
}

/// The stored form of a token. Tokens carry ≥128 bits of entropy, so a fast hash is enough; the
/// point is that a database dump does not hand out working credentials.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares a presented token with a stored hash without leaking where they differ.
pub fn token_matches(presented: &str, stored_hash: &str) -> bool {
    let presented_hash = hash_token(presented);
    presented_hash
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// Compares two secrets of any length in constant time (hashing first hides the length).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .as_slice()
        .ct_eq(Sha256::digest(b.as_bytes()).as_slice())
        .into()
}

/// What reads show instead of the token: the same length, every character starred except the
/// last four, so people can tell tokens apart without the record leaking a usable part of it.
/// Tokens of 8 or fewer characters are starred whole.
pub fn mask_token(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let mut out = String::with_capacity(chars.len());
    out.extend(std::iter::repeat_n('*', chars.len() - 4));
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// Shortest client-chosen token accepted.
pub const MIN_CLIENT_TOKEN_LEN: usize = 32;
/// Longest client-chosen token accepted.
pub const MAX_CLIENT_TOKEN_LEN: usize = 128;
/// Fewest distinct characters a client-chosen token must use.
const MIN_DISTINCT_CHARS: usize = 8;

/// The 422 message for a token of the wrong length or with characters outside the URL-safe set.
pub const TOKEN_SHAPE_MESSAGE: &str =
    "The secret token must be 32 to 128 characters of letters, digits, '-', '_', '.' or '~'.";
/// The 422 message for a token of the right shape that is easy to guess.
pub const TOKEN_PREDICTABLE_MESSAGE: &str = "The secret token is too predictable (repeating or sequential characters); use GET /api/generate-token.";

/// Why a client-chosen token is refused, as a human message (the 422 text), or `None` when it is
/// as strong as a generated one: 32–128 characters of `[A-Za-z0-9-_.~]`, at least 8 distinct
/// characters, not a repeated pattern and not mostly a run of consecutive characters.
pub fn token_weakness(token: &str) -> Option<&'static str> {
    let bytes = token.as_bytes();
    let url_safe = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
    if !(MIN_CLIENT_TOKEN_LEN..=MAX_CLIENT_TOKEN_LEN).contains(&bytes.len())
        || !bytes.iter().all(url_safe)
    {
        return Some(TOKEN_SHAPE_MESSAGE);
    }
    if too_few_distinct(bytes) || is_periodic(bytes) || is_mostly_sequential(bytes) {
        return Some(TOKEN_PREDICTABLE_MESSAGE);
    }
    None
}

/// Whether a client-chosen token is acceptable: [`token_weakness`] finds nothing wrong with it.
pub fn is_acceptable_token(token: &str) -> bool {
    token_weakness(token).is_none()
}

fn too_few_distinct(bytes: &[u8]) -> bool {
    let mut seen = [false; 256];
    let mut distinct = 0;
    for &b in bytes {
        if !seen[usize::from(b)] {
            seen[usize::from(b)] = true;
            distinct += 1;
        }
    }
    distinct < MIN_DISTINCT_CHARS
}

/// A period `p <= len / 2` with `bytes[i] == bytes[i + p]` everywhere: `"abcd"` repeated.
fn is_periodic(bytes: &[u8]) -> bool {
    (1..=bytes.len() / 2).any(|p| bytes.iter().zip(&bytes[p..]).all(|(a, b)| a == b))
}

/// More than half of the adjacent pairs step by exactly +1 or -1: `"abcdef…"`, `"9876…"`.
fn is_mostly_sequential(bytes: &[u8]) -> bool {
    let pairs = bytes.len().saturating_sub(1);
    let steps = bytes
        .windows(2)
        .filter(|w| w[0].abs_diff(w[1]) == 1)
        .count();
    steps * 2 > pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_64_hex_and_distinct() {
        let a = generate_secret_token();
        let b = generate_secret_token();
        assert_eq!(a.len(), 64);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
        assert!(is_acceptable_token(&a));
    }

    #[test]
    fn hash_and_compare() {
        let t = generate_secret_token();
        let h = hash_token(&t);
        assert!(token_matches(&t, &h));
        assert!(!token_matches("nope", &h));
        assert!(secrets_equal("x", "x"));
        assert!(!secrets_equal("x", "xy"));
    }

    #[test]
    fn mask_shows_only_the_last_four() {
        let t = "9f13a714ce15ddeb1e02835772b53fcc5de6355f05204354bbbc0023601816ee";
        let m = mask_token(t);
        assert_eq!(m.len(), 64);
        assert_eq!(m, format!("{}16ee", "*".repeat(60)));
        assert_eq!(mask_token("123456789"), "*****6789");
        assert_eq!(mask_token("12345678"), "********");
        assert_eq!(mask_token(""), "");
    }

    #[test]
    fn badly_shaped_tokens_are_refused() {
        assert_eq!(token_weakness("short"), Some(TOKEN_SHAPE_MESSAGE));
        assert_eq!(token_weakness(&"a b".repeat(20)), Some(TOKEN_SHAPE_MESSAGE));
        let good = generate_secret_token();
        assert_eq!(token_weakness(&good[..31]), Some(TOKEN_SHAPE_MESSAGE));
        assert_eq!(token_weakness(&good.repeat(3)), Some(TOKEN_SHAPE_MESSAGE));
        assert_eq!(
            token_weakness(&format!("{}é", &good[..40])),
            Some(TOKEN_SHAPE_MESSAGE)
        );
    }

    #[test]
    fn predictable_tokens_are_refused() {
        for weak in [
            "a".repeat(40),
            "abcd".repeat(10),
            "0123456789abcdef".repeat(2),
            "abcdefgh".repeat(4),
            "abcdefghijklmnopqrstuvwxyzABCDEF".to_owned(),
            "zyxwvutsrqponmlkjihgfedcba987654".to_owned(),
            // Only seven distinct characters, not periodic.
            "aabbccddeeffggaabbccddeeffggabcdefg".to_owned(),
            // A period that does not divide the length.
            format!("{}Qm", "Qm3x9Tz2Lw".repeat(4)),
        ] {
            assert_eq!(
                token_weakness(&weak),
                Some(TOKEN_PREDICTABLE_MESSAGE),
                "{weak}"
            );
            assert!(!is_acceptable_token(&weak));
        }
    }

    #[test]
    fn strong_client_tokens_are_accepted() {
        for good in [
            "9f13a714ce15ddeb1e02835772b53fcc5de6355f05204354bbbc0023601816ee",
            "Xk3_9q-Lm.Tz~2Wv8Rb4Ny7Pd1Hs6Jc0Fg5",
            "my-integration-token-2024.prod~Zx9Q",
        ] {
            assert_eq!(token_weakness(good), None, "{good}");
        }
    }

    /// Random hex, as generated, must never be refused: neither whole nor cut to the minimum.
    #[test]
    fn generated_tokens_are_never_refused() {
        let mut rejected_full = 0;
        let mut rejected_short = 0;
        for _ in 0..20_000 {
            let t = generate_secret_token();
            if !is_acceptable_token(&t) {
                rejected_full += 1;
            }
            if !is_acceptable_token(&t[..MIN_CLIENT_TOKEN_LEN]) {
                rejected_short += 1;
            }
        }
        assert_eq!(rejected_full, 0);
        // A random 32-hex token is refused with probability about 6e-8 (fewer than 8 distinct
        // characters: 3.5e-8; more than half its steps ±1: 2.5e-8), so 20,000 of them may,
        // rarely (about 1 run in 800), include one. Stricter rules would refuse hundreds.
        assert!(rejected_short <= 1, "{rejected_short} of 20,000 refused");
    }
}

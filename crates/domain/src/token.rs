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

/// What reads show instead of the token: the first and last four characters, the rest starred,
/// same length, so people can tell tokens apart without the record leaking it.
pub fn mask_token(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let mut out = String::with_capacity(chars.len());
    out.extend(&chars[..4]);
    out.extend(std::iter::repeat_n('*', chars.len() - 8));
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// Whether a client-chosen token is acceptable: 32–128 URL-safe characters.
pub fn is_acceptable_token(token: &str) -> bool {
    (32..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
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
    fn mask_keeps_ends() {
        let t = "9f13a714ce15ddeb1e02835772b53fcc5de6355f05204354bbbc0023601816ee";
        let m = mask_token(t);
        assert_eq!(m.len(), 64);
        assert!(m.starts_with("9f13****"));
        assert!(m.ends_with("****16ee"));
    }

    #[test]
    fn weak_tokens_are_refused() {
        assert!(!is_acceptable_token("short"));
        assert!(!is_acceptable_token(&"a b".repeat(20)));
    }
}

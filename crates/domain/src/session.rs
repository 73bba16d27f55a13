//! Session ids: the URL-safe name a device is known by, in Wapim and in WAHA.

/// Longest session id Wapim produces; WAHA session names are used in URLs and must stay short.
pub const MAX_SESSION_ID_LEN: usize = 64;

/// Derives a device's session id from its name: `WAPI Test` → `wapi-test`.
///
/// Non-ASCII letters are transliterated (`Café` → `cafe`); a name with nothing usable yields an
/// empty string, which validation refuses.
pub fn session_id_from_name(name: &str) -> String {
    let mut slug = slug::slugify(name);
    if slug.len() > MAX_SESSION_ID_LEN {
        slug.truncate(MAX_SESSION_ID_LEN);
        while slug.ends_with('-') {
            slug.pop();
        }
    }
    slug
}

/// The `n`th session id to try for `base`: `base` itself for `n <= 1`, then `{base}-{n}`, with
/// `base` cut (at a character boundary, without a trailing `-`) so the whole stays within
/// [`MAX_SESSION_ID_LEN`]. Session ids are never reused, so a new device whose name slugs to a
/// taken id gets the next free candidate.
pub fn session_id_candidate(base: &str, n: u32) -> String {
    if n <= 1 {
        return base.to_owned();
    }
    let suffix = format!("-{n}");
    let room = MAX_SESSION_ID_LEN.saturating_sub(suffix.len());
    let mut cut = base.len().min(room);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    let stem = base[..cut].trim_end_matches('-');
    format!("{stem}{suffix}")
}

/// The first candidate (`n` = 1, 2, 3, …, see [`session_id_candidate`]) not in `taken`, so a
/// session id once used (even by a deleted device) is never handed out again.
pub fn first_free_session_id<'a>(base: &str, taken: impl IntoIterator<Item = &'a str>) -> String {
    let taken: std::collections::HashSet<&str> = taken.into_iter().collect();
    // Distinct `n` give distinct candidates, so one of the first `taken.len() + 1` is free.
    (1..=u32::MAX)
        .map(|n| session_id_candidate(base, n))
        .find(|c| !taken.contains(c.as_str()))
        .unwrap_or_else(|| session_id_candidate(base, u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_count_up_from_the_base() {
        assert_eq!(session_id_candidate("wapi-test", 0), "wapi-test");
        assert_eq!(session_id_candidate("wapi-test", 1), "wapi-test");
        assert_eq!(session_id_candidate("wapi-test", 2), "wapi-test-2");
        assert_eq!(session_id_candidate("wapi-test", 17), "wapi-test-17");
    }

    #[test]
    fn first_free_skips_taken_ids() {
        assert_eq!(first_free_session_id("wapi-test", []), "wapi-test");
        assert_eq!(
            first_free_session_id("wapi-test", ["wapi-test"]),
            "wapi-test-2"
        );
        assert_eq!(
            first_free_session_id("wapi-test", ["wapi-test", "wapi-test-2"]),
            "wapi-test-3"
        );
        let taken = ["wapi-test-2".to_owned()];
        assert_eq!(
            first_free_session_id("wapi-test", taken.iter().map(String::as_str)),
            "wapi-test"
        );
    }

    #[test]
    fn long_bases_stay_within_the_limit() {
        let base = "a".repeat(MAX_SESSION_ID_LEN);
        let id = first_free_session_id(&base, [base.as_str()]);
        assert_eq!(id.len(), MAX_SESSION_ID_LEN);
        assert!(id.ends_with("a-2"));
        let big = session_id_candidate(&base, u32::MAX);
        assert!(big.len() <= MAX_SESSION_ID_LEN);
        assert!(big.ends_with(&format!("a-{}", u32::MAX)));
        // A cut landing after a dash drops it rather than doubling it.
        let dashed = format!("{}-b", "a".repeat(61));
        assert_eq!(
            session_id_candidate(&dashed, 2),
            format!("{}-2", "a".repeat(61))
        );
        // A cut inside a multi-byte character backs off to its start.
        let wide = format!("{}é", "a".repeat(61));
        let id = session_id_candidate(&wide, 2);
        assert!(id.len() <= MAX_SESSION_ID_LEN);
        assert_eq!(id, format!("{}-2", "a".repeat(61)));
    }

    #[test]
    fn names_become_slugs() {
        assert_eq!(session_id_from_name("WAPI Test"), "wapi-test");
        assert_eq!(session_id_from_name("  Toko  Budi #2 "), "toko-budi-2");
        assert_eq!(session_id_from_name("Café Ñandú"), "cafe-nandu");
        assert_eq!(session_id_from_name("!!!"), "");
    }

    #[test]
    fn long_names_are_cut_without_trailing_dash() {
        let name = format!("{} b", "a".repeat(63));
        let slug = session_id_from_name(&name);
        assert!(slug.len() <= MAX_SESSION_ID_LEN);
        assert!(!slug.ends_with('-'));
    }
}

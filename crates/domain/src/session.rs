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

#[cfg(test)]
mod tests {
    use super::*;

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

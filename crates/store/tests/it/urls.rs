//! Database URLs: the scheme picks the backend, and a mistyped URL is an error, never a file.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use wapim_store::{DatabaseUrl, StoreError};

use crate::support::migrated;

/// Names in `dir`.
fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

wapim_testkit::both_backends! {
    async fn a_malformed_url_never_creates_a_file() {
        let (db, _conn) = migrated();
        // The control: the test database's own URL parses and connects.
        let pool = wapim_store::connect(&db.url, 2, Duration::from_secs(5))
            .expect("a well-formed URL connects");
        let mut conn = pool.get().unwrap();
        wapim_store::ping(&mut conn).unwrap();
        assert_eq!(wapim_store::run_migrations(&mut conn).unwrap(), 0, "already migrated");

        for bad in ["postgress://x/y", "sqlite:/tmp/x.db", "/tmp/x.db"] {
            let parsed = DatabaseUrl::parse(bad);
            assert!(matches!(parsed, Err(StoreError::BadUrl(_))), "{bad}: {parsed:?}");
        }

        let cwd = std::env::current_dir().unwrap();
        let tmp = std::env::temp_dir();
        let unique = format!("wapim_bad_url_{}", std::process::id());
        let before_cwd = entries(&cwd);
        let before_tmp = entries(&tmp);

        for bad in [
            "postgress://x/y".to_owned(),
            format!("sqlite:{}/{unique}.db", tmp.display()),
            format!("{}/{unique}.db", tmp.display()),
            format!("{unique}.db"),
        ] {
            let pool = wapim_store::connect(&bad, 1, Duration::from_secs(1));
            assert!(matches!(pool, Err(StoreError::BadUrl(_))), "{bad}: {:?}", pool.map(|_| ()));
        }
        // Well-formed, but nothing listens there: an error after the timeout, not a SQLite file
        // named like the URL.
        let unreachable = wapim_store::connect("postgresql://127.0.0.1:1/none", 1, Duration::from_secs(1));
        assert!(
            matches!(unreachable, Err(StoreError::Unavailable(_))),
            "{:?}",
            unreachable.map(|_| ())
        );

        let looks_like_a_url = |name: &str| {
            name.starts_with("postgres") || name.contains("127.0.0.1") || name == "none"
                || name.starts_with("sqlite") || name.contains(&unique)
        };
        let created: Vec<String> = entries(&cwd)
            .difference(&before_cwd)
            .filter(|n| looks_like_a_url(n))
            .cloned()
            .collect();
        assert!(created.is_empty(), "created in {}: {created:?}", cwd.display());
        let created: Vec<String> = entries(&tmp)
            .difference(&before_tmp)
            .filter(|n| n.contains(&unique))
            .cloned()
            .collect();
        assert!(created.is_empty(), "created in {}: {created:?}", tmp.display());
    }
}

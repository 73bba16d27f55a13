//! Device session ids: the family a new name must avoid, and never reusing one.

use wapim_store::{devices, StoreError};

use crate::support::{device, device_fields, later, migrated};

wapim_testkit::both_backends! {
    async fn session_ids_like_finds_the_taken_family() {
        let (_db, mut conn) = migrated();
        let first = device(&mut conn, "wapi-test");
        device(&mut conn, "wapi-test-2");
        device(&mut conn, "wapi-testing");
        device(&mut conn, "other-wapi-test");

        let mut taken = devices::session_ids_like(&mut conn, "wapi-test").unwrap();
        taken.sort();
        // "wapi-testing" shares the prefix but not the `base-` form; "other-wapi-test" ends
        // with the base.
        assert_eq!(taken, ["wapi-test", "wapi-test-2"]);
        assert_eq!(devices::session_ids_like(&mut conn, "wapi-test-2").unwrap(), ["wapi-test-2"]);
        // A prefix that stops inside a segment takes nothing.
        assert!(devices::session_ids_like(&mut conn, "wapi-tes")
            .unwrap()
            .is_empty());
        // `base-<anything>`: a shorter base takes the whole family below it.
        let mut below = devices::session_ids_like(&mut conn, "wapi").unwrap();
        below.sort();
        assert_eq!(below, ["wapi-test", "wapi-test-2", "wapi-testing"]);

        // A deleted device keeps its session id: still taken, and never reused.
        devices::soft_delete(&mut conn, first.id, later(1)).unwrap();
        let mut taken = devices::session_ids_like(&mut conn, "wapi-test").unwrap();
        taken.sort();
        assert_eq!(taken, ["wapi-test", "wapi-test-2"], "deleted devices still hold their ids");
        assert!(devices::find_live_by_session(&mut conn, "wapi-test").unwrap().is_none());

        let again = devices::insert(
            &mut conn,
            &device_fields("wapi-test"),
            "wapi-test",
            &devices::TokenFields {
                secret_token_hash: "another-hash".to_owned(),
                secret_token_masked: "****wxyz".to_owned(),
            },
            &devices::DeviceKeys {
            hmac_key: "test-hmac-key".to_owned(),
            webhook_secret: "whsec_dGVzdC13ZWJob29rLXNlY3JldA==".to_owned(),
        },
            None,
            later(2),
        );
        assert!(
            matches!(again, Err(StoreError::Conflict("session_id"))),
            "{:?}",
            again.map(|d| d.id)
        );

        // The conflict wrote nothing, and the deleted device comes back with its own id.
        let restored = devices::undelete(&mut conn, first.id, later(3))
            .unwrap()
            .expect("the deleted device can be restored");
        assert_eq!(restored.session_id, "wapi-test");
        let live = devices::find_live_by_session(&mut conn, "wapi-test")
            .unwrap()
            .expect("the restored device is live");
        assert_eq!(live.id, first.id);
    }
}

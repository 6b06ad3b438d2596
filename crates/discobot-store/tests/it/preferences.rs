//! User preferences: upsert, ordered listing, delete.

use chrono::Duration;
use discobot_core::ids::UserId;
use discobot_core::ports::PreferenceRepo;

use crate::common::{Ctx, now, user};
use crate::store_test;

store_test!(preferences_upsert_list_delete);

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn preferences_upsert_list_delete(ctx: Ctx) {
    let store = &ctx.store;
    let me = UserId::anonymous();
    let other = user("other@example.com");
    store.insert_user(&other).await.unwrap();
    assert!(store.list_preferences(&me).await.unwrap().is_empty());

    let t1 = now();
    store
        .set_preferences(
            &me,
            &pairs(&[("theme", "dark"), ("editor", "{\"tabs\":2}")]),
            t1,
        )
        .await
        .unwrap();
    store
        .set_preferences(&other.id, &pairs(&[("theme", "light")]), t1)
        .await
        .unwrap();

    let listed = store.list_preferences(&me).await.unwrap();
    let keys: Vec<&str> = listed.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, vec!["editor", "theme"], "ordered by key");
    assert_eq!(listed[0].value, "{\"tabs\":2}");
    assert_eq!(listed[1].updated_at, t1);

    let t2 = t1 + Duration::seconds(3);
    store
        .set_preferences(&me, &pairs(&[("theme", "light"), ("zoom", "1.5")]), t2)
        .await
        .unwrap();
    let theme = store.get_preference(&me, "theme").await.unwrap().unwrap();
    assert_eq!(theme.value, "light");
    assert_eq!(theme.updated_at, t2);
    assert_eq!(store.list_preferences(&me).await.unwrap().len(), 3);
    // The other user's value is untouched.
    let theirs = store
        .get_preference(&other.id, "theme")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(theirs.value, "light");
    assert_eq!(theirs.updated_at, t1);

    assert!(store.delete_preference(&me, "theme").await.unwrap());
    assert!(!store.delete_preference(&me, "theme").await.unwrap());
    assert!(store.get_preference(&me, "theme").await.unwrap().is_none());
    assert!(
        store
            .get_preference(&other.id, "theme")
            .await
            .unwrap()
            .is_some()
    );
    let keys: Vec<String> = store
        .list_preferences(&me)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, vec!["editor", "zoom"]);
}

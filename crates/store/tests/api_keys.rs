//! API keys of the REST API on SQLite and the real PostgreSQL: created with an expiry,
//! listed without touching secrets, revoked once (the first revocation is kept), and
//! unusable once expired or revoked.

mod common;

use common::{ts, with_postgres, with_sqlite};

use softstake_store::{ApiKey, Store, StoreError};

fn key(name: &str, account: &str, expires: Option<&str>) -> ApiKey {
    ApiKey {
        api_key: name.into(),
        secret: format!("secret-{name}"),
        account_id: account.into(),
        created_at: ts("2000-01-01T00:00:00Z"), // ignored: the store sets it
        expires_at: expires.map(ts),
        revoked_at: Some(ts("2000-01-01T00:00:00Z")), // ignored on create
    }
}

async fn lifecycle(store: Store) {
    let now = ts("2025-06-01T00:00:00Z");
    store.create_api_key(&key("k1", "alice", None), now).await.unwrap();
    store
        .create_api_key(&key("k2", "alice", Some("2025-06-08T00:00:00Z")), now)
        .await
        .unwrap();
    store.create_api_key(&key("k3", "bob", None), now).await.unwrap();
    assert!(matches!(
        store.create_api_key(&key("k1", "bob", None), now).await,
        Err(StoreError::Journal(_))
    ));
    let k2 = store.api_key("k2").await.unwrap().unwrap();
    assert_eq!(
        (k2.created_at, k2.revoked_at),
        (now, None),
        "created_at and revoked_at are the store's"
    );
    assert!(k2.usable_at(ts("2025-06-07T23:59:59Z")));
    assert!(!k2.usable_at(ts("2025-06-08T00:00:00Z")), "expired at its expiry");
    let alice: Vec<String> = store
        .api_keys(Some("alice"), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.api_key)
        .collect();
    assert_eq!(alice, ["k1", "k2"]);
    assert_eq!(store.api_keys(None, 10).await.unwrap().len(), 3);
    assert_eq!(store.api_keys(None, 2).await.unwrap().len(), 2, "bounded by the limit");

    let later = ts("2025-06-02T00:00:00Z");
    let r = store.revoke_api_key("k1", later).await.unwrap();
    assert_eq!(r.revoked_at, Some(later));
    assert!(!r.usable_at(later));
    let again = store.revoke_api_key("k1", ts("2025-06-03T00:00:00Z")).await.unwrap();
    assert_eq!(again.revoked_at, Some(later), "the first revocation is kept");
    assert!(
        store.api_key("k3").await.unwrap().unwrap().usable_at(later),
        "others untouched"
    );
    assert!(matches!(
        store.revoke_api_key("nope", later).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn success_api_key_lifecycle_sqlite() {
    with_sqlite(lifecycle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_api_key_lifecycle_postgres() {
    with_postgres(lifecycle).await;
}

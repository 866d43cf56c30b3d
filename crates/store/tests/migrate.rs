//! A store written by the schema before 0004 (TEXT amounts, one unpartitioned
//! balance_events table, the closing balances table) is brought up to date by
//! `Store::open` with nothing lost: events (with their feed ids), closing balances, closed
//! days and distributions, on SQLite and on PostgreSQL.

mod common;

use common::{ts, SOL_TOKENS};

use std::borrow::Cow;
use std::path::PathBuf;

use softstake_core::twab::BalanceEvent;
use softstake_core::{Amount, Day, Timestamp, TokenRegistry};
use softstake_store::{Store, StoreError};

const DAY_NS: i64 = 86_400_000_000_000;

/// Applies migrations 0001–0003 only, as a store of the previous release would have.
async fn old_schema<'a, A>(dialect: &str, db: A)
where
    A: sqlx::Acquire<'a>,
    <A::Connection as std::ops::Deref>::Target: sqlx::migrate::Migrate,
{
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let mut m = sqlx::migrate::Migrator::new(dir).await.unwrap();
    m.migrations = Cow::Owned(m.migrations.iter().filter(|x| x.version <= 3).cloned().collect());
    m.run(db).await.unwrap();
}

const OLD_ROWS: &str = "
INSERT INTO accounts VALUES ('alice', 'DE', 0, NULL), ('bob', 'FR', 0, NULL);
INSERT INTO balance_events VALUES
  ('SOL', 'alice', 1748736000000000000, '30000000000', 'feed-1'),
  ('SOL', 'bob', 1748736000000000000, '340282366920938463463374607401768211455', NULL);
INSERT INTO balances VALUES
  ('SOL', 'alice', '30000000000', '2025-06-01'),
  ('SOL', 'bob', '340282366920938463463374607401768211455', '2025-06-01');
INSERT INTO closed_days VALUES ('SOL', '2025-06-01', 0, 2, 2, '200000000000', '340282366920938463463374607431768211455');
INSERT INTO daily_balances VALUES
  ('SOL', '2025-06-01', 'alice', '30000000000', '30000000000'),
  ('SOL', '2025-06-01', 'bob', '340282366920938463463374607401768211455', '100000000000');
INSERT INTO distributions VALUES ('SOL', '2025-06-01', '1000', '100', '0', '900', '130000000000', '0', '0.0025', 2, 0);
";

async fn migrated(store: Store) {
    let r = TokenRegistry::from_toml_str(SOL_TOKENS).unwrap();
    let d1 = Day::parse("2025-06-01").unwrap();
    // Amounts up to u128::MAX survived as exact NUMERIC / TEXT.
    let closed = store.closed_day("SOL", d1).await.unwrap().unwrap();
    assert_eq!(closed.total_balance, Amount(u128::MAX));
    let dist = store.distribution("SOL", d1).await.unwrap().unwrap();
    assert_eq!(dist.distributable, Amount(900));
    assert_eq!(dist.apr.unwrap().to_string(), "0.0025");
    // The next day opens from the migrated closing balances.
    let d2 = d1.next();
    let out = store
        .close_day(&r, "SOL", d2, ts("2025-06-03T00:00:01Z"), 10)
        .await
        .unwrap();
    assert_eq!(out.accounts, 2);
    assert_eq!(out.total_eligible, Amount(130_000_000_000));
    assert_eq!(out.total_balance, Amount(u128::MAX));
    // The feed id kept its event: re-sending it is a duplicate, reusing it is refused.
    let e = BalanceEvent {
        ts: Timestamp(1_748_736_000_000_000_000),
        account_id: "alice".into(),
        token: "SOL".into(),
        balance: Amount(30_000_000_000),
    };
    let moved = BalanceEvent {
        ts: Timestamp(1_748_736_000_000_000_000 + 2 * DAY_NS),
        ..e.clone()
    };
    let reused = store.ingest_events_with_ids(&[(Some("feed-1".into()), moved)]).await;
    assert!(matches!(reused, Err(StoreError::EventIdReused { .. })), "{reused:?}");
}

#[tokio::test]
async fn success_sqlite_store_of_the_previous_schema_migrates() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        old_schema("sqlite", &pool).await;
        sqlx::raw_sql(OLD_ROWS).execute(&pool).await.unwrap();
        pool.close().await;
    }
    let store = Store::open(&url).await.unwrap();
    migrated(store.clone()).await;
    store.close().await;
}

#[tokio::test]
async fn success_postgres_store_of_the_previous_schema_migrates() {
    common::with_postgres_url(|url| async move {
        {
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            old_schema("postgres", &pool).await;
            sqlx::raw_sql(OLD_ROWS).execute(&pool).await.unwrap();
            pool.close().await;
        }
        let store = Store::open(&url).await.unwrap();
        migrated(store.clone()).await;
        store.close().await;
    })
    .await;
}

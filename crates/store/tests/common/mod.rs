//! Test harness: run one async test body against a fresh SQLite file and a fresh
//! PostgreSQL database (created on the server at `SOFTSTAKE_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`, and dropped afterwards, even when the
//! body panics).

#![allow(dead_code)]

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};

use futures_util::FutureExt;
use sqlx::Connection;

use softstake_store::Store;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The admin URL of the PostgreSQL server used by tests.
pub fn pg_admin_url() -> String {
    std::env::var("SOFTSTAKE_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// Runs `body` on a store in a new SQLite file.
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/store.db", dir.path().display());
    let store = Store::open(&url).await.expect("open sqlite store");
    body(store.clone()).await;
    store.close().await;
}

/// Runs `body` with the URL of a new, empty PostgreSQL database, dropped afterwards (even
/// when the body panics).
pub async fn with_postgres_url<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let admin = pg_admin_url();
    let name = unique_name("softstake_test");
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {admin} is required for these tests (set SOFTSTAKE_TEST_PG_URL): {e}")
    });
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create database");
    let url = match admin.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{name}"),
        None => panic!("bad admin url {admin}"),
    };
    let result = AssertUnwindSafe(body(url)).catch_unwind().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .expect("drop database");
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// Runs `body` on a store in a new PostgreSQL database, dropped afterwards.
pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    with_postgres_url(|url| async move {
        let store = Store::open(&url).await.expect("open postgres store");
        let result = AssertUnwindSafe(body(store.clone())).catch_unwind().await;
        store.close().await;
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    })
    .await;
}

/// Defines a module `$name` with the tests `sqlite` and `postgres`, each running the
/// async body `fn(Store)` on its backend.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::common::with_sqlite(super::$body).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::common::with_postgres(super::$body).await;
            }
        }
    };
}

/// The SOL registry most store tests use: 1 SOL minimum, 100 SOL cap, a 10 % fee.
pub const SOL_TOKENS: &str = r#"
[tokens.SOL]
chain = "solana"
decimals = 9
base_unit = "lamports"
min_holding = "1"
cap = "100"
fee_bps = 1000
unbonding_period_secs = 172800
"#;

/// [`SOL_TOKENS`] parsed.
pub fn reg() -> softstake_core::TokenRegistry {
    softstake_core::TokenRegistry::from_toml_str(SOL_TOKENS).unwrap()
}

/// An RFC 3339 time.
pub fn ts(s: &str) -> softstake_core::Timestamp {
    softstake_core::Timestamp::parse_rfc3339(s).unwrap()
}

/// Whole SOL in lamports.
pub fn sol(x: u128) -> softstake_core::Amount {
    softstake_core::Amount(x * 1_000_000_000)
}

/// A SOL balance event.
pub fn ev(t: &str, account: &str, bal: softstake_core::Amount) -> softstake_core::twab::BalanceEvent {
    softstake_core::twab::BalanceEvent {
        ts: ts(t),
        account_id: account.into(),
        token: "SOL".into(),
        balance: bal,
    }
}

//! Ingest paths on SQLite and on PostgreSQL: the bulk load (new token-days filled
//! unindexed, indexed and attached at the commit), its refusal of a repeated key, bulk
//! rows for token-days that already exist, and the row-by-row path after it; plus two
//! ingests running at once on one new token-day.

mod common;

use softstake_core::twab::BalanceEvent;
use softstake_core::{Amount, Day, Timestamp, TokenRegistry};
use softstake_store::{IngestEvent, Store, StoreError};

const TOKENS: &str = r#"
[tokens.SOL]
chain = "solana"
decimals = 9
base_unit = "lamports"
min_holding = "0"
cap = "1000000"
fee_bps = 0
unbonding_period_secs = 0

[tokens.TRX]
chain = "tron"
decimals = 6
base_unit = "sun"
min_holding = "0"
cap = "1000000"
fee_bps = 0
unbonding_period_secs = 0
"#;

fn ev(token: &str, secs: i64, account: &str, balance: u128, line: u64) -> IngestEvent {
    IngestEvent {
        event: BalanceEvent {
            ts: Timestamp(Day::parse("2025-06-01").unwrap().start().0 + secs * 1_000_000_000),
            account_id: account.into(),
            token: token.into(),
            balance: Amount(balance),
        },
        event_id: None,
        line: Some(line),
    }
}

/// Days 2025-05-31..06-02, two tokens, 600 events, in batches of 100.
fn batches() -> Vec<Vec<IngestEvent>> {
    let all: Vec<IngestEvent> = (0..600)
        .map(|i| {
            let token = if i % 3 == 0 { "TRX" } else { "SOL" };
            ev(
                token,
                (i as i64 - 200) * 300,
                &format!("a{}", i % 37),
                1_000 + i as u128,
                i as u64 + 2,
            )
        })
        .collect();
    all.chunks(100).map(|c| c.to_vec()).collect()
}

async fn total_closing(store: &Store, token: &str) -> Amount {
    let r = TokenRegistry::from_toml_str(TOKENS).unwrap();
    let out = store
        .close_day(
            &r,
            token,
            Day::parse("2025-06-02").unwrap(),
            Timestamp(i64::MAX / 2),
            1_000,
        )
        .await
        .unwrap();
    out.total_balance
}

async fn bulk_then_again(store: Store) {
    let mut ing = store.begin_bulk_ingest().await.unwrap();
    for b in batches() {
        ing.push(&b).await.unwrap();
    }
    let rep = ing.commit().await.unwrap();
    assert_eq!((rep.inserted, rep.duplicates), (600, 0));
    // The same file again, bulk: the token-days exist, so the rows are checked one by one.
    let mut ing = store.begin_bulk_ingest().await.unwrap();
    for b in batches() {
        ing.push(&b).await.unwrap();
    }
    let rep = ing.commit().await.unwrap();
    assert_eq!((rep.inserted, rep.duplicates), (0, 600));
    // One bulk ingest mixing a new day (bulk-loaded) and an existing one (checked).
    let mut ing = store.begin_bulk_ingest().await.unwrap();
    ing.push(&[
        ev("SOL", 2 * 86_400 + 5, "a1", 7, 2),
        ev("SOL", 86_400 + 7, "zz", 11, 3),
    ])
    .await
    .unwrap();
    let rep = ing.commit().await.unwrap();
    assert_eq!((rep.inserted, rep.duplicates), (2, 0));
    // Every account's last balance on 06-02 is in the close: 37 accounts of events
    // before 06-03, plus zz; a1's event on 06-03 is not in it.
    let r = TokenRegistry::from_toml_str(TOKENS).unwrap();
    let out = store
        .close_day(
            &r,
            "SOL",
            Day::parse("2025-06-02").unwrap(),
            Timestamp(i64::MAX / 2),
            1_000,
        )
        .await
        .unwrap();
    let want: u128 = {
        let mut last = std::collections::BTreeMap::new();
        for e in batches().into_iter().flatten().filter(|e| e.event.token == "SOL") {
            last.insert(e.event.account_id.clone(), e.event.balance.0);
        }
        last.values().sum::<u128>() + 11
    };
    assert_eq!(out.total_balance, Amount(want));
}
both_backends!(success_bulk_ingest_then_the_same_file_again, bulk_then_again);

async fn bulk_refuses_repeated_key(store: Store) {
    let b = vec![
        ev("SOL", 10, "a", 1, 2),
        ev("SOL", 20, "b", 2, 3),
        ev("SOL", 10, "a", 1, 4),
    ];
    let mut ing = store.begin_bulk_ingest().await.unwrap();
    let r = match ing.push(&b).await {
        Ok(()) => ing.commit().await,
        Err(e) => Err(e),
    };
    match store.backend() {
        // The bulk load finds the repeated key when it builds the token-day's index.
        softstake_store::Backend::Postgres => {
            assert!(matches!(r, Err(StoreError::BulkDuplicates { .. })), "{r:?}");
            // Nothing was stored; row by row, the exact duplicate is taken as one event.
            let rep = store.ingest_batch(&b).await.unwrap();
            assert_eq!((rep.inserted, rep.duplicates), (2, 1));
        }
        // SQLite checks row by row in the first place.
        softstake_store::Backend::Sqlite => {
            let rep = r.unwrap();
            assert_eq!((rep.inserted, rep.duplicates), (2, 1));
        }
    }
    // A conflicting balance for the same key is refused with its line.
    let e = store.ingest_batch(&[ev("SOL", 10, "a", 9, 17)]).await;
    assert!(
        matches!(&e, Err(StoreError::ConflictingEvent { line: Some(17), .. })),
        "{e:?}"
    );
}
both_backends!(
    fail_bulk_ingest_with_a_repeated_key_stores_nothing,
    bulk_refuses_repeated_key
);

/// A bulk ingest and a row-by-row ingest of one new token-day at once: the second waits
/// for the first (the token-day's creation lock), then both are stored.
async fn bulk_and_plain_together(store: Store) {
    let mut bulk = store.begin_bulk_ingest().await.unwrap();
    bulk.push(&[ev("SOL", 100, "x", 1, 2)]).await.unwrap();
    let s2 = store.clone();
    let plain = tokio::spawn(async move { s2.ingest_batch(&[ev("SOL", 200, "y", 2, 2)]).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    bulk.commit().await.unwrap();
    let rep = plain.await.unwrap().unwrap();
    assert_eq!(rep.inserted, 1);
    assert_eq!(total_closing(&store, "SOL").await, Amount(3));
}
both_backends!(success_bulk_and_plain_ingest_of_one_new_day, bulk_and_plain_together);

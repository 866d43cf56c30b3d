//! The daily cycle on the store, on SQLite and on PostgreSQL: ingest, close, record
//! rewards, distribute, history, APR, and every refusal that must change nothing.

mod common;

use common::{ev, reg, sol, ts};

use softstake_core::eligibility::Account;
use softstake_core::{Amount, Day};
use softstake_store::{Store, StoreError};

fn day(s: &str) -> Day {
    Day::parse(s).unwrap()
}

async fn seed(store: &Store) {
    let active = ts("2025-05-01T00:00:00Z");
    store
        .upsert_accounts(&[
            Account::new("alice", "DE", active, None).unwrap(),
            Account::new("bob", "FR", active, None).unwrap(),
            Account::new("carol", "US", active, None).unwrap(),
            Account::new("dave", "DE", ts("2025-06-01T10:00:00Z"), None).unwrap(),
        ])
        .await
        .unwrap();
    store
        .ingest_events(&[
            ev("2025-05-30T00:00:00Z", "alice", sol(10)),
            ev("2025-06-01T12:00:00Z", "alice", sol(30)), // avg 20
            ev("2025-05-31T00:00:00Z", "bob", sol(500)),  // capped at 100
            ev("2025-05-31T00:00:00Z", "carol", sol(50)), // excluded jurisdiction
            ev("2025-06-01T10:00:00Z", "dave", sol(50)),  // activated that day
        ])
        .await
        .unwrap();
}

async fn close_and_distribute(store: Store) {
    seed(&store).await;
    let r = reg();
    let d = day("2025-06-01");
    let closed = store
        .close_day(&r, "SOL", d, ts("2025-06-02T00:00:01Z"), 1_000)
        .await
        .unwrap();
    assert_eq!(closed.accounts, 4);
    assert_eq!(closed.eligible_accounts, 2);
    assert_eq!(closed.total_eligible, sol(120));
    assert_eq!(closed.total_balance, sol(30 + 500 + 50 + 50));
    store
        .record_rewards(
            &[("SOL".into(), d, "test".into(), Amount(1_200_000))],
            ts("2025-06-02T00:00:02Z"),
        )
        .await
        .unwrap();
    let s = store
        .distribute(r.get("SOL").unwrap(), d, ts("2025-06-02T01:00:00Z"))
        .await
        .unwrap();
    assert_eq!(s.fee, Amount(120_000));
    assert_eq!(s.distributable, Amount(1_080_000));
    let alice = store.history("alice", None, None, 10, 0).await.unwrap();
    let bob = store.history("bob", None, None, 10, 0).await.unwrap();
    assert_eq!(alice[0].reward, Amount(180_000)); // 1 080 000 · 20/120
    assert_eq!(alice[0].average, sol(20));
    assert_eq!(bob[0].reward, Amount(900_000));
    assert_eq!(bob[0].eligible, sol(100));
    assert!(store.history("carol", None, None, 10, 0).await.unwrap().is_empty());
    // APR = D / Σe · 365
    let apr = store.latest_apr().await.unwrap();
    assert_eq!(apr[0].apr.unwrap().to_string(), "0.003285");
    // The ledger balances and pool:undistributed is empty.
    let lb = store.ledger_balances("SOL", "pool:undistributed").await.unwrap();
    assert!(lb[0].net().is_zero());
    let fees = store.ledger_balances("SOL", "platform:fees").await.unwrap();
    assert_eq!(fees[0].credits, Amount(120_000));
}
both_backends!(success_close_and_distribute, close_and_distribute);

async fn distribute_twice(store: Store) {
    seed(&store).await;
    let r = reg();
    let d = day("2025-06-01");
    store
        .close_day(&r, "SOL", d, ts("2025-06-02T00:00:01Z"), 1_000)
        .await
        .unwrap();
    store
        .record_rewards(
            &[("SOL".into(), d, "t".into(), Amount(1_000))],
            ts("2025-06-02T00:00:02Z"),
        )
        .await
        .unwrap();
    store
        .distribute(r.get("SOL").unwrap(), d, ts("2025-06-02T01:00:00Z"))
        .await
        .unwrap();
    let again = store
        .distribute(r.get("SOL").unwrap(), d, ts("2025-06-02T02:00:00Z"))
        .await;
    assert!(matches!(again, Err(StoreError::AlreadyDistributed { .. })), "{again:?}");
    assert_eq!(store.history("alice", None, None, 10, 0).await.unwrap().len(), 1);
    // no reward can be added to a paid day
    let late = store
        .record_rewards(
            &[("SOL".into(), d, "late".into(), Amount(5))],
            ts("2025-06-02T03:00:00Z"),
        )
        .await;
    assert!(matches!(late, Err(StoreError::RewardForDistributedDay { .. })));
}
both_backends!(fail_distribute_twice, distribute_twice);

async fn distribute_before_close(store: Store) {
    seed(&store).await;
    let r = reg();
    let e = store
        .distribute(r.get("SOL").unwrap(), day("2025-06-01"), ts("2025-06-02T01:00:00Z"))
        .await;
    assert!(matches!(e, Err(StoreError::NotClosed { .. })), "{e:?}");
}
both_backends!(fail_distribute_before_close, distribute_before_close);

async fn close_out_of_order(store: Store) {
    seed(&store).await;
    let r = reg();
    let now = ts("2025-06-10T00:00:00Z");
    store.close_day(&r, "SOL", day("2025-06-01"), now, 1_000).await.unwrap();
    let gap = store.close_day(&r, "SOL", day("2025-06-03"), now, 1_000).await;
    assert!(matches!(gap, Err(StoreError::DayOrder { .. })), "{gap:?}");
    let earlier = store.close_day(&r, "SOL", day("2025-05-31"), now, 1_000).await;
    assert!(matches!(earlier, Err(StoreError::DayOrder { .. })), "{earlier:?}");
    let again = store.close_day(&r, "SOL", day("2025-06-01"), now, 1_000).await.unwrap();
    assert!(again.already_closed);
    let next = store.close_day(&r, "SOL", day("2025-06-02"), now, 1_000).await.unwrap();
    // balances carried: alice 30, bob 500→100 cap, dave 50 now active
    assert_eq!(next.total_eligible, sol(30 + 100 + 50));
}
both_backends!(fail_close_out_of_order, close_out_of_order);

async fn event_in_closed_day(store: Store) {
    seed(&store).await;
    let r = reg();
    store
        .close_day(&r, "SOL", day("2025-06-01"), ts("2025-06-02T00:00:01Z"), 1_000)
        .await
        .unwrap();
    let late = store
        .ingest_events(&[ev("2025-06-01T23:00:00Z", "alice", sol(1))])
        .await;
    assert!(matches!(late, Err(StoreError::EventInClosedDay { .. })), "{late:?}");
    // an event on the next day is fine
    store
        .ingest_events(&[ev("2025-06-02T01:00:00Z", "alice", sol(1))])
        .await
        .unwrap();
}
both_backends!(fail_event_in_closed_day, event_in_closed_day);

async fn conflicting_event_changes_nothing(store: Store) {
    seed(&store).await;
    // same key, same balance: idempotent
    let rep = store
        .ingest_events(&[ev("2025-06-01T12:00:00Z", "alice", sol(30))])
        .await
        .unwrap();
    assert_eq!((rep.inserted, rep.duplicates), (0, 1));
    // a batch with one new event and one conflicting: nothing is written
    let e = store
        .ingest_events(&[
            ev("2025-06-01T13:00:00Z", "bob", sol(1)),
            ev("2025-06-01T12:00:00Z", "alice", sol(31)),
        ])
        .await;
    assert!(matches!(e, Err(StoreError::ConflictingEvent { .. })), "{e:?}");
    let r = reg();
    let c = store
        .close_day(&r, "SOL", day("2025-06-01"), ts("2025-06-02T00:00:01Z"), 1_000)
        .await
        .unwrap();
    assert_eq!(c.total_eligible, sol(120)); // bob's 13:00 event was not stored
}
both_backends!(
    fail_conflicting_event_changes_nothing,
    conflicting_event_changes_nothing
);

async fn carry_over(store: Store) {
    let r = reg();
    store
        .upsert_accounts(&[Account::new("alice", "DE", ts("2025-06-01T08:00:00Z"), None).unwrap()])
        .await
        .unwrap();
    store
        .ingest_events(&[ev("2025-06-01T08:00:00Z", "alice", sol(10))])
        .await
        .unwrap();
    let now = ts("2025-06-03T00:00:01Z");
    // day 1: alice activated that day → Σe = 0, D carried
    store.close_day(&r, "SOL", day("2025-06-01"), now, 10).await.unwrap();
    store
        .record_rewards(&[("SOL".into(), day("2025-06-01"), "t".into(), Amount(1_000))], now)
        .await
        .unwrap();
    let d1 = store
        .distribute(r.get("SOL").unwrap(), day("2025-06-01"), now)
        .await
        .unwrap();
    assert_eq!(d1.carry_out, Amount(900));
    // day 2: carry in 900 + (500 − 50)
    store.close_day(&r, "SOL", day("2025-06-02"), now, 10).await.unwrap();
    store
        .record_rewards(&[("SOL".into(), day("2025-06-02"), "t".into(), Amount(500))], now)
        .await
        .unwrap();
    let d2 = store
        .distribute(r.get("SOL").unwrap(), day("2025-06-02"), now)
        .await
        .unwrap();
    assert_eq!(d2.carry_in, Amount(900));
    assert_eq!(d2.distributable, Amount(1_350));
    assert_eq!(store.total_paid("alice", "SOL").await.unwrap(), Amount(1_350));
    let lb = store.ledger_balances("SOL", "").await.unwrap();
    let carry = lb.iter().find(|b| b.account == "pool:carry").unwrap();
    assert!(carry.net().is_zero());
}
both_backends!(success_carry_over, carry_over);

async fn distribute_in_order(store: Store) {
    seed(&store).await;
    let r = reg();
    let now = ts("2025-06-10T00:00:00Z");
    store.close_day(&r, "SOL", day("2025-06-01"), now, 1_000).await.unwrap();
    store.close_day(&r, "SOL", day("2025-06-02"), now, 1_000).await.unwrap();
    let e = store.distribute(r.get("SOL").unwrap(), day("2025-06-02"), now).await;
    assert!(matches!(e, Err(StoreError::DistributeOrder { .. })), "{e:?}");
}
both_backends!(fail_distribute_out_of_order, distribute_in_order);

async fn reward_conflict(store: Store) {
    let now = ts("2025-06-10T00:00:00Z");
    let d = day("2025-06-01");
    store
        .record_rewards(&[("SOL".into(), d, "a".into(), Amount(5))], now)
        .await
        .unwrap();
    let same = store
        .record_rewards(&[("SOL".into(), d, "a".into(), Amount(5))], now)
        .await
        .unwrap();
    assert_eq!(same, vec![softstake_store::RecordOutcome::AlreadyRecorded]);
    let e = store
        .record_rewards(
            &[
                ("SOL".into(), d, "b".into(), Amount(1)),
                ("SOL".into(), d, "a".into(), Amount(6)),
            ],
            now,
        )
        .await;
    assert!(matches!(e, Err(StoreError::RewardConflict { .. })));
    assert_eq!(store.realized_reward("SOL", d).await.unwrap(), Amount(5)); // "b" rolled back
}
both_backends!(fail_reward_conflict, reward_conflict);

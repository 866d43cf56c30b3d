//! Concurrent writers of one token's day, with both running, on SQLite and on the real
//! PostgreSQL: an ingest against a close and a rewards record against a distribution.
//! Each writer is held inside its transaction (holding its locks) while the other starts;
//! the outcome must be "counted" or "refused", never "lost".
//!
//! Without the token-day lock the PostgreSQL cases lose data: a close that streams while
//! an ingest commits misses the event for good, and a reward committed during a
//! distribution is never paid.

mod common;

use common::{ev, reg, sol, ts};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use softstake_core::eligibility::Account;
use softstake_core::position::TreasuryFlow;
use softstake_core::{Amount, Day};
use softstake_store::{FlowSource, IngestEvent, PausePoint, RealizedReward, Store, StoreError};

fn day() -> Day {
    Day::parse("2025-06-01").unwrap()
}

async fn seed(store: &Store) {
    let active = ts("2025-05-01T00:00:00Z");
    store
        .upsert_accounts(&[
            Account::new("alice", "DE", active, None).unwrap(),
            Account::new("bob", "FR", active, None).unwrap(),
        ])
        .await
        .unwrap();
    store
        .ingest_events(&[
            ev("2025-05-31T00:00:00Z", "alice", sol(10)),
            ev("2025-05-31T00:00:00Z", "bob", sol(20)),
        ])
        .await
        .unwrap();
}

/// Waits until some writer waits for a token-day lock: on PostgreSQL an advisory lock
/// not granted in this database (polled, bounded); on SQLite, where `BEGIN IMMEDIATE`
/// is the lock, a moment for the writer to reach it.
async fn until_blocked(store: &Store) {
    let Some(pool) = store.pg_pool() else {
        tokio::time::sleep(Duration::from_millis(300)).await;
        return;
    };
    for _ in 0..400 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no writer ever waited for the token-day lock");
}

/// An ingest checked (lock held) before the close starts: the close waits, then counts it.
async fn ingest_held_then_close(store: Store) {
    seed(&store).await;
    let mut ing = store.begin_ingest().await.unwrap();
    ing.push(&[IngestEvent {
        event: ev("2025-06-01T12:00:00Z", "alice", sol(50)),
        event_id: None,
        line: Some(2),
    }])
    .await
    .unwrap();
    ing.check().await.unwrap();
    let s2 = store.clone();
    let close = tokio::spawn(async move {
        s2.close_day(&reg(), "SOL", day(), ts("2025-06-02T00:00:01Z"), 100)
            .await
    });
    until_blocked(&store).await;
    assert!(
        !close.is_finished(),
        "the close must wait for the ingest that holds the day"
    );
    ing.commit().await.unwrap();
    let out = close.await.unwrap().unwrap();
    // alice: 10 until 12:00, then 50 → average 30; closing 50 + bob 20.
    assert_eq!(out.total_balance, sol(70));
    assert_eq!(out.total_eligible, sol(30 + 20));
}
both_backends!(success_ingest_held_then_close_counts_it, ingest_held_then_close);

/// A close holding the day while an ingest of that day tries to commit: the ingest waits,
/// then is refused as late; the event is not stored and the close is as it streamed.
async fn close_held_then_ingest(store: Store) {
    seed(&store).await;
    let gate = Arc::new(Barrier::new(2));
    store.pause_at(PausePoint::CloseStreamed, gate.clone());
    let s2 = store.clone();
    let close = tokio::spawn(async move {
        s2.close_day(&reg(), "SOL", day(), ts("2025-06-02T00:00:01Z"), 100)
            .await
    });
    gate.wait().await; // the close has streamed the day and holds it
    let s3 = store.clone();
    let ingest = tokio::spawn(async move { s3.ingest_events(&[ev("2025-06-01T23:00:00Z", "bob", sol(99))]).await });
    until_blocked(&store).await;
    assert!(!ingest.is_finished(), "the ingest must wait for the close");
    gate.wait().await; // release the close
    let out = close.await.unwrap().unwrap();
    assert_eq!(out.total_balance, sol(30));
    let late = ingest.await.unwrap();
    assert!(
        matches!(late, Err(StoreError::EventInClosedDay { .. })),
        "the late event must be refused, not lost: {late:?}"
    );
    // Nothing of it was stored: the next day opens from the closing balances.
    let next = store
        .close_day(&reg(), "SOL", day().next(), ts("2025-06-03T00:00:01Z"), 100)
        .await
        .unwrap();
    assert_eq!(next.total_balance, sol(30));
}
both_backends!(success_close_held_refuses_late_ingest, close_held_then_ingest);

async fn closed_day_with_reward(store: &Store) {
    seed(store).await;
    store
        .close_day(&reg(), "SOL", day(), ts("2025-06-02T00:00:01Z"), 100)
        .await
        .unwrap();
    store
        .record_rewards(
            &[("SOL".into(), day(), "first".into(), Amount(1_000))],
            ts("2025-06-02T00:00:02Z"),
        )
        .await
        .unwrap();
}

/// A distribution holding the day while a reward for it is recorded: the record waits,
/// then is refused (the day is paid); what was paid is what was recorded before.
async fn distribute_held_then_reward(store: Store) {
    closed_day_with_reward(&store).await;
    let gate = Arc::new(Barrier::new(2));
    store.pause_at(PausePoint::DistributePaid, gate.clone());
    let s2 = store.clone();
    let dist = tokio::spawn(async move {
        let r = reg();
        s2.distribute(r.get("SOL").unwrap(), day(), ts("2025-06-02T01:00:00Z"))
            .await
    });
    gate.wait().await;
    let s3 = store.clone();
    let record = tokio::spawn(async move {
        s3.record_rewards(
            &[("SOL".into(), day(), "late".into(), Amount(500))],
            ts("2025-06-02T01:00:01Z"),
        )
        .await
    });
    until_blocked(&store).await;
    assert!(!record.is_finished(), "the reward must wait for the distribution");
    gate.wait().await;
    let paid = dist.await.unwrap().unwrap();
    assert_eq!(paid.realized_reward, Amount(1_000));
    let late = record.await.unwrap();
    assert!(
        matches!(late, Err(StoreError::RewardForDistributedDay { .. })),
        "a reward for a paid day must be refused, not left unpaid: {late:?}"
    );
    assert_eq!(store.realized_reward("SOL", day()).await.unwrap(), Amount(1_000));
}
both_backends!(success_distribute_held_refuses_late_reward, distribute_held_then_reward);

/// A rewards record holding the day while the distribution starts: the distribution
/// waits, then pays the reward too.
async fn reward_held_then_distribute(store: Store) {
    closed_day_with_reward(&store).await;
    let gate = Arc::new(Barrier::new(2));
    store.pause_at(PausePoint::RewardsRecorded, gate.clone());
    let s2 = store.clone();
    let record = tokio::spawn(async move {
        s2.record_rewards(
            &[("SOL".into(), day(), "second".into(), Amount(500))],
            ts("2025-06-02T00:30:00Z"),
        )
        .await
    });
    gate.wait().await;
    let s3 = store.clone();
    let dist = tokio::spawn(async move {
        let r = reg();
        s3.distribute(r.get("SOL").unwrap(), day(), ts("2025-06-02T01:00:00Z"))
            .await
    });
    until_blocked(&store).await;
    assert!(
        !dist.is_finished(),
        "the distribution must wait for the reward being recorded"
    );
    gate.wait().await;
    record.await.unwrap().unwrap();
    let paid = dist.await.unwrap().unwrap();
    assert_eq!(paid.realized_reward, Amount(1_500), "both rewards are paid");
    let total: u128 = store
        .day_payouts("SOL", day())
        .await
        .unwrap()
        .iter()
        .map(|p| p.1 .0)
        .sum();
    assert_eq!(Amount(total), paid.distributable);
}
both_backends!(
    success_reward_held_then_distribution_pays_it,
    reward_held_then_distribute
);

/// A sync books native yield computed from the treasury flows it read, while a treasury
/// user declares a custody deposit on another connection. The declaration waits for the
/// booking that holds the token's lock; the next booking computed from the old flows is
/// refused, so the deposit is never paid out as yield; one computed with it is booked.
async fn flow_declared_during_booking(store: Store) {
    let now = ts("2025-06-02T00:00:00Z");
    let reward = |block: u64, amount: u128| RealizedReward {
        validator: "native-yield".into(),
        epoch: block,
        kind: "claimed".into(),
        amount: Amount(amount),
        at: ts("2025-06-01T12:00:00Z"),
    };
    let seen = store.treasury_flows("APE").await.unwrap().len();
    let gate = Arc::new(Barrier::new(2));
    store.pause_at(PausePoint::RealizedRecorded, gate.clone());
    let s2 = store.clone();
    let booking = tokio::spawn(async move {
        s2.record_realized_after_flows("APE", &[reward(100, 7)], "c100", seen, now)
            .await
    });
    gate.wait().await; // the booking holds the token's lock
    let s3 = store.clone();
    let deposit = TreasuryFlow {
        tx_id: "0xdeposit".into(),
        block: 150,
        nonce: None,
        received: Amount(500),
        sent: Amount(0),
    };
    let declared = deposit.clone();
    let declare = tokio::spawn(async move {
        s3.record_treasury_flow("APE", &declared, FlowSource::Declared, None, now)
            .await
    });
    until_blocked(&store).await;
    assert!(!declare.is_finished(), "the declaration must wait for the booking");
    gate.wait().await;
    booking.await.unwrap().unwrap();
    assert!(declare.await.unwrap().unwrap());
    // a window computed from the flows read before the declaration is refused
    let stale = store
        .record_realized_after_flows("APE", &[reward(200, 507)], "c200", seen, now)
        .await;
    assert!(
        matches!(&stale, Err(StoreError::Invalid(m)) if m.contains("changed during the sync")),
        "{stale:?}"
    );
    assert_eq!(
        store.reward_cursor("APE").await.unwrap().as_deref(),
        Some("c100"),
        "nothing booked"
    );
    // recomputed with the deposit, it is booked
    let flows = store.treasury_flows("APE").await.unwrap();
    assert_eq!(flows, vec![deposit]);
    let out = store
        .record_realized_after_flows("APE", &[reward(200, 7)], "c200", flows.len(), now)
        .await
        .unwrap();
    assert_eq!((out.new_records, out.new_amount), (1, Amount(7)));
}
both_backends!(
    success_flow_declared_during_booking_is_never_yield,
    flow_declared_during_booking
);

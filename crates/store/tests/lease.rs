//! Leases with fencing tokens, on SQLite and the real PostgreSQL: generations only grow,
//! a stale writer's every write is refused and changes nothing, a take-over waits for
//! the fenced transaction in flight, and the SQLite file has one writing process.

mod common;

use common::{ev, reg, sol, ts};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use softstake_core::eligibility::Account;
use softstake_core::plan::OpKind;
use softstake_core::{Amount, Day};
use softstake_store::{LeaseTake, NewOperation, PausePoint, Store, StoreError};

const TTL_MS: i64 = 10_000;

fn intent(key: &str) -> NewOperation {
    NewOperation {
        idempotency_key: key.into(),
        plan_id: "p1".into(),
        seq: 0,
        token: "SOL".into(),
        kind: OpKind::Delegate,
        validator: "v1".into(),
        amount: Amount(1_000),
        epoch: 1,
    }
}

async fn taken(store: &Store, holder: &str, now_ms: i64) -> i64 {
    match store.take_lease("SOL", holder, TTL_MS, now_ms).await.unwrap() {
        LeaseTake::Taken { generation } => generation,
        other => panic!("{holder} could not take the lease: {other:?}"),
    }
}

fn is_fenced<T: std::fmt::Debug>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Fenced { .. }))
}

async fn generations(store: Store) {
    let now = ts("2025-06-01T00:00:00Z");
    let a = taken(&store, "A", 1_000).await;
    assert_eq!(a, 1);
    // B cannot take a lease A keeps renewing
    match store.take_lease("SOL", "B", TTL_MS, 5_000).await.unwrap() {
        LeaseTake::HeldBy(r) => assert_eq!((r.holder.as_deref(), r.generation), (Some("A"), 1)),
        other => panic!("{other:?}"),
    }
    assert!(store.renew_lease("SOL", "A", a, TTL_MS, 9_000).await.unwrap());
    let fenced_a = store.fenced("SOL", a);
    fenced_a.record_intents(&[intent("k1")], now).await.unwrap();
    // A stops renewing; B takes over once it lapses
    let b = taken(&store, "B", 9_000 + TTL_MS + 1).await;
    assert_eq!(b, 2, "a take-over increments the generation");
    assert!(
        !store.renew_lease("SOL", "A", a, TTL_MS, 30_000).await.unwrap(),
        "A lost it"
    );
    // every write of the stale leader is refused and changes nothing
    let op = store.operation("k1").await.unwrap().unwrap();
    let r = fenced_a
        .mark_submitted("k1", op.expect(), "tx-a", "payload", None, now)
        .await;
    assert!(is_fenced(&r), "{r:?}");
    let e = r.unwrap_err().to_string();
    assert!(e.contains("generation 1") && e.contains("held by B"), "{e}");
    assert!(is_fenced(&fenced_a.record_intents(&[intent("k2")], now).await));
    assert!(is_fenced(
        &fenced_a
            .raise_alert("SOL", "drift", "x", Amount::ZERO, None, true, now)
            .await
    ));
    assert!(is_fenced(&fenced_a.check_fence().await));
    assert!(store.operation("k2").await.unwrap().is_none());
    assert_eq!(
        store.operation("k1").await.unwrap().unwrap().attempts,
        0,
        "the refused transition wrote nothing"
    );
    assert!(store.alerts(Some("SOL"), true).await.unwrap().is_empty());
    // the new leader's writes go through
    let fenced_b = store.fenced("SOL", b);
    fenced_b
        .mark_submitted("k1", op.expect(), "tx-b", "payload", None, now)
        .await
        .unwrap();
    fenced_b.check_fence().await.unwrap();
    // a released lease is taken at once, with a new generation
    store.release_lease("SOL", "B", b).await.unwrap();
    assert_eq!(taken(&store, "A", 31_000).await, 3);
    assert!(is_fenced(&fenced_b.check_fence().await));
    let rows = store.leases().await.unwrap();
    assert_eq!(
        (rows.len(), rows[0].generation, rows[0].holder.as_deref()),
        (1, 3, Some("A"))
    );
}
both_backends!(success_generations_fence_stale_writers, generations);

async fn seed(store: &Store) {
    let active = ts("2025-05-01T00:00:00Z");
    store
        .upsert_accounts(&[Account::new("alice", "DE", active, None).unwrap()])
        .await
        .unwrap();
    store
        .ingest_events(&[ev("2025-05-31T00:00:00Z", "alice", sol(10))])
        .await
        .unwrap();
}

/// A fenced close in flight (held inside its transaction) when a standby takes over:
/// the take-over waits for it, so the close commits under the generation it checked and
/// every later write of the old leader is refused.
async fn takeover_waits_for_write_in_flight(store: Store) {
    seed(&store).await;
    let day = Day::parse("2025-06-01").unwrap();
    let a = taken(&store, "A", 1_000).await;
    let fenced_a = store.fenced("SOL", a);
    let gate = Arc::new(Barrier::new(2));
    store.pause_at(PausePoint::CloseStreamed, gate.clone());
    let closer = fenced_a.clone();
    let close = tokio::spawn(async move {
        closer
            .close_day(&reg(), "SOL", day, ts("2025-06-02T00:00:01Z"), 100)
            .await
    });
    gate.wait().await; // A is inside its close, fence checked
    if store.pg_pool().is_some() {
        // A's renewal does not wait on its own write (FOR KEY SHARE vs NO KEY UPDATE)
        let renewed = tokio::time::timeout(Duration::from_secs(3), store.renew_lease("SOL", "A", a, TTL_MS, 2_000))
            .await
            .expect("renewal must not wait for the leader's own write");
        assert!(renewed.unwrap());
    }
    let s2 = store.clone();
    let takeover = tokio::spawn(async move { s2.take_lease("SOL", "B", TTL_MS, 100_000).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !takeover.is_finished(),
        "the take-over must wait for the fenced write in flight"
    );
    gate.wait().await;
    let out = close.await.unwrap().unwrap();
    assert_eq!(out.total_balance, sol(10));
    assert!(matches!(
        takeover.await.unwrap().unwrap(),
        LeaseTake::Taken { generation: 2 }
    ));
    let r = fenced_a
        .close_day(&reg(), "SOL", day.next(), ts("2025-06-03T00:00:01Z"), 100)
        .await;
    assert!(is_fenced(&r), "{r:?}");
    assert_eq!(store.last_closed_day("SOL").await.unwrap(), Some(day));
}
both_backends!(
    success_takeover_waits_for_fenced_write,
    takeover_waits_for_write_in_flight
);

/// Another process holding the SQLite file's write lock: this process opens it read
/// only; its writes are refused naming the holder, its reads work; once the holder is
/// gone the file opens for writing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_sqlite_write_while_another_process_holds_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store.db");
    let url = format!("sqlite://{}", db.display());
    {
        let store = Store::open(&url).await.unwrap();
        seed(&store).await;
        store.close().await;
    }
    // wait until the writer handle above is dropped everywhere, then let another
    // process take the lock (flock(1) takes the same flock(2) lock std uses)
    let lock = format!("{}.lock", db.display());
    std::fs::write(&lock, "pid 4242 on test-host: softstake run\n").unwrap();
    let mut holder = std::process::Command::new("flock")
        .args(["--shared", "--nonblock", "--close", &lock, "sleep", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("flock(1) from util-linux");
    // `--shared` keeps the file's text; `--close` keeps the lock in flock itself (not in
    // `sleep`), so killing it releases the lock; an exclusive try by us now fails
    let mut held = false;
    for _ in 0..100 {
        let f = std::fs::File::open(&lock).unwrap();
        match f.try_lock() {
            Ok(()) => {
                f.unlock().unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                held = true;
                break;
            }
        }
    }
    assert!(held, "the other process never took the lock");
    let store = Store::open(&url).await.unwrap();
    assert!(!store.writable());
    let r = store
        .ingest_events(&[ev("2025-06-01T00:00:00Z", "alice", sol(11))])
        .await;
    let e = r.unwrap_err();
    assert!(matches!(e, StoreError::ReadOnly { .. }), "{e}");
    assert!(e.to_string().contains("pid 4242 on test-host"), "{e}");
    assert!(matches!(
        store.take_lease("SOL", "A", TTL_MS, 1).await,
        Err(StoreError::ReadOnly { .. })
    ));
    assert_eq!(
        store.account("alice").await.unwrap().map(|a| a.account_id),
        Some("alice".to_string()),
        "reads work"
    );
    store.close().await;
    drop(store);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let store = Store::open(&url).await.unwrap();
    assert!(store.writable());
    store
        .ingest_events(&[ev("2025-06-01T00:00:00Z", "alice", sol(11))])
        .await
        .unwrap();
    store.close().await;
}

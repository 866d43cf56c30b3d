//! The journal's state machine, realized-reward sync, alerts and custody booking, on
//! SQLite and PostgreSQL.

mod common;

use softstake_core::ledger::{Entry, LedgerAccount};
use softstake_core::plan::OpKind;
use softstake_core::position::TreasuryFlow;
use softstake_core::{Amount, Day, Net, Timestamp};
use softstake_store::{FlowSource, NewOperation, OperationState, RealizedReward, Store, StoreError};

fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn op(key: &str, kind: OpKind) -> NewOperation {
    NewOperation {
        idempotency_key: key.into(),
        plan_id: "p1".into(),
        seq: 0,
        token: "SOL".into(),
        kind,
        validator: "v1".into(),
        amount: Amount(1_000),
        epoch: 7,
    }
}

async fn journal_transitions(store: Store) {
    let now = ts("2025-06-01T00:00:00Z");
    assert_eq!(
        store.record_intents(&[op("k1", OpKind::Delegate)], now).await.unwrap(),
        1
    );
    assert_eq!(
        store.record_intents(&[op("k1", OpKind::Delegate)], now).await.unwrap(),
        0,
        "idempotent"
    );
    // confirmed straight from intent is refused
    let seen = |store: &Store, key: &'static str| {
        let store = store.clone();
        async move { store.operation(key).await.unwrap().unwrap().expect() }
    };
    let e = store
        .mark_confirmed("k1", seen(&store, "k1").await, &[], now)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Journal(_)), "{e}");
    let intent = seen(&store, "k1").await;
    store
        .mark_submitted("k1", intent, "tx-a", "payload-a", Some(now), now)
        .await
        .unwrap();
    // a second writer that read the same intent cannot record its own transaction
    let e = store
        .mark_submitted("k1", intent, "tx-x", "payload-x", Some(now), now)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("it is submitted (attempt 1)"), "{e}");
    let first = seen(&store, "k1").await;
    store
        .mark_submitted("k1", first, "tx-b", "payload-b", Some(now), now)
        .await
        .unwrap(); // a re-signed attempt
    let o = store.operation("k1").await.unwrap().unwrap();
    assert_eq!(
        (o.state, o.tx_id.as_deref(), o.attempts),
        (OperationState::Submitted, Some("tx-b"), 2)
    );
    assert_eq!(store.open_operations(Some("SOL")).await.unwrap().len(), 1);
    let entry = Entry::new("delegate", "k1").transfer(
        LedgerAccount::stake("v1"),
        LedgerAccount::buffer(),
        "SOL",
        Amount(1_000),
    );
    // confirming the first attempt after the second was signed is refused
    assert!(store
        .mark_confirmed("k1", first, std::slice::from_ref(&entry), now)
        .await
        .is_err());
    store.mark_confirmed("k1", o.expect(), &[entry], now).await.unwrap();
    assert!(
        store.mark_failed("k1", o.expect(), "late", now).await.is_err(),
        "no failure after confirmation"
    );
    assert!(
        store
            .mark_submitted("k1", seen(&store, "k1").await, "tx-c", "p", None, now)
            .await
            .is_err(),
        "no resubmission after confirmation"
    );
    let stake = store.ledger_balances("SOL", "stake:").await.unwrap();
    assert_eq!(stake[0].net(), Net::positive(Amount(1_000)));
    assert_eq!(store.moved_in_epoch("SOL", 7, false).await.unwrap(), (Amount(1_000), 1));
    // a withdrawal is a move only where it is the release itself (instant exit)
    store.record_intents(&[op("k-w", OpKind::Withdraw)], now).await.unwrap();
    assert_eq!(store.moved_in_epoch("SOL", 7, false).await.unwrap(), (Amount(1_000), 2));
    assert_eq!(store.moved_in_epoch("SOL", 7, true).await.unwrap(), (Amount(2_000), 2));
    store
        .mark_failed("k-w", seen(&store, "k-w").await, "test", now)
        .await
        .unwrap();
    assert_eq!(store.mark_reconciled("SOL", now).await.unwrap(), 1);
    assert_eq!(
        store.operation("k1").await.unwrap().unwrap().state,
        OperationState::Reconciled
    );
    let log = store.operation_log("k1").await.unwrap();
    let states: Vec<&str> = log.iter().map(|l| l.2.as_str()).collect();
    assert_eq!(
        states,
        vec!["intent", "submitted", "submitted", "confirmed", "reconciled"]
    );
    // failure path
    store
        .record_intents(&[op("k2", OpKind::Undelegate)], now)
        .await
        .unwrap();
    store
        .mark_failed(
            "k2",
            seen(&store, "k2").await,
            "rejected by sim: validator not found",
            now,
        )
        .await
        .unwrap();
    assert!(store.open_operations(None).await.unwrap().is_empty());
}
both_backends!(success_journal_transitions, journal_transitions);

async fn realized_rewards(store: Store) {
    let now = ts("2025-06-03T00:00:00Z");
    let r = |epoch: u64, amount: u128, at: &str| RealizedReward {
        validator: "v1".into(),
        epoch,
        kind: "compounded".into(),
        amount: Amount(amount),
        at: ts(at),
    };
    let out = store
        .record_realized(
            "SOL",
            &[r(1, 100, "2025-06-01T05:00:00Z"), r(2, 50, "2025-06-02T05:00:00Z")],
            "2",
            now,
        )
        .await
        .unwrap();
    assert_eq!((out.new_records, out.new_amount), (2, Amount(150)));
    // the same records again (a restart before the cursor was read) change nothing
    let again = store
        .record_realized("SOL", &[r(2, 50, "2025-06-02T05:00:00Z")], "2", now)
        .await
        .unwrap();
    assert_eq!(again.new_records, 0);
    // a chain that changes its history is refused
    let e = store
        .record_realized("SOL", &[r(2, 51, "2025-06-02T05:00:00Z")], "2", now)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    assert_eq!(store.reward_cursor("SOL").await.unwrap().as_deref(), Some("2"));
    assert_eq!(
        store
            .realized_reward("SOL", Day::parse("2025-06-01").unwrap())
            .await
            .unwrap(),
        Amount(100)
    );
    let stake = store.ledger_balances("SOL", "stake:v1").await.unwrap();
    assert_eq!(stake[0].net(), Net::positive(Amount(150)));
}
both_backends!(success_realized_rewards_once_per_epoch, realized_rewards);

async fn alerts_freeze(store: Store) {
    let now = ts("2025-06-01T00:00:00Z");
    assert_eq!(store.frozen("SOL").await.unwrap(), None);
    let id = store
        .raise_alert("SOL", "drift", "v1 short by 5", Amount(5), None, true, now)
        .await
        .unwrap();
    let same = store
        .raise_alert("SOL", "drift", "v1 short by 6", Amount(6), None, true, now)
        .await
        .unwrap();
    assert_eq!(id, same, "one open alert per kind");
    assert!(store.frozen("SOL").await.unwrap().unwrap().contains("short by 6"));
    assert_eq!(
        store.resolve_alerts("SOL", "drift", now).await.unwrap(),
        0,
        "freezes need a person"
    );
    let book = Entry::new("slashing", "alert").transfer(
        LedgerAccount::slashing(),
        LedgerAccount::stake("v1"),
        "SOL",
        Amount(6),
    );
    let a = store
        .acknowledge_alert(id, "treasury-alice", &[book], now)
        .await
        .unwrap();
    assert_eq!(a.acknowledged_by.as_deref(), Some("treasury-alice"));
    assert_eq!(store.frozen("SOL").await.unwrap(), None);
    assert!(store.acknowledge_alert(id, "bob", &[], now).await.is_err());
}
both_backends!(success_alert_freezes_until_acknowledged, alerts_freeze);

async fn custody(store: Store) {
    let now = ts("2025-06-02T00:00:00Z");
    let d1 = Day::parse("2025-06-01").unwrap();
    assert_eq!(
        store.record_custody_total("SOL", d1, Amount(1_000), now).await.unwrap(),
        Net::positive(Amount(1_000))
    );
    assert_eq!(
        store.record_custody_total("SOL", d1, Amount(1_000), now).await.unwrap(),
        Net::ZERO,
        "once per day"
    );
    assert_eq!(
        store
            .record_custody_total("SOL", d1.next(), Amount(600), now)
            .await
            .unwrap(),
        Net::negative(Amount(400))
    );
    let buffer = store.ledger_balances("SOL", "pool:buffer").await.unwrap();
    assert_eq!(buffer[0].net(), Net::positive(Amount(600)));
}
both_backends!(success_custody_total_booked_per_day, custody);

async fn exit_operations(store: Store) {
    let now = ts("2025-06-01T00:00:00Z");
    let mut ops = vec![
        op("x-d", OpKind::Delegate),
        op("x-u1", OpKind::Undelegate),
        op("x-u2", OpKind::Undelegate),
        op("x-w", OpKind::Withdraw),
    ];
    for (i, o) in ops.iter_mut().enumerate() {
        o.seq = i as u32;
        o.token = "S".into();
    }
    let mut other = op("x-other", OpKind::Undelegate);
    other.seq = 9;
    store.record_intents(&ops, now).await.unwrap();
    store.record_intents(&[other], now).await.unwrap();
    let intent = store.operation("x-u2").await.unwrap().unwrap().expect();
    store.mark_failed("x-u2", intent, "refused", now).await.unwrap();
    let exits = store.exit_operations("S").await.unwrap();
    let keys: Vec<&str> = exits.iter().map(|o| o.idempotency_key.as_str()).collect();
    assert_eq!(
        keys,
        ["x-u1", "x-w"],
        "the token's undelegations and withdrawals not refused, oldest first"
    );
    assert!(store.exit_operations("ADA").await.unwrap().is_empty());
}
both_backends!(success_exit_operations_for_journal_named_requests, exit_operations);

fn flow(tx: &str, block: u64, nonce: Option<u64>, received: u128, sent: u128) -> TreasuryFlow {
    TreasuryFlow {
        tx_id: tx.into(),
        block,
        nonce,
        received: Amount(received),
        sent: Amount(sent),
    }
}

/// Treasury flows: recorded once, refused when the same transaction comes back with
/// another effect, listed by block; the journal's transactions without a flow are the
/// ones still to resolve.
async fn treasury_flows(store: Store) {
    let now = ts("2025-06-01T00:00:00Z");
    let deposit = flow("0xd", 20, None, 500, 0);
    let send = flow("0xs", 10, Some(3), 0, 121);
    assert!(store
        .record_treasury_flow("APE", &deposit, FlowSource::Declared, Some("desk"), now)
        .await
        .unwrap());
    assert!(store
        .record_treasury_flow("APE", &send, FlowSource::Declared, None, now)
        .await
        .unwrap());
    assert!(
        !store
            .record_treasury_flow("APE", &deposit, FlowSource::Declared, None, now)
            .await
            .unwrap(),
        "the same flow again is a no-op"
    );
    let e = store
        .record_treasury_flow("APE", &flow("0xd", 20, None, 499, 0), FlowSource::Declared, None, now)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Invalid(_)), "{e}");
    assert_eq!(
        store.treasury_flows("APE").await.unwrap(),
        vec![send.clone(), deposit.clone()],
        "by block"
    );
    assert!(store.treasury_flows("SOL").await.unwrap().is_empty(), "per token");
    assert_eq!(store.treasury_flow("APE", "0xd").await.unwrap(), Some(deposit));

    // journal transactions: only those with a transaction and no flow yet
    let mut o = op("k1", OpKind::Claim);
    o.token = "APE".into();
    store.record_intents(&[o], now).await.unwrap();
    assert!(
        store.journal_txs_without_flow("APE").await.unwrap().is_empty(),
        "an intent has no transaction"
    );
    let intent = store.operation("k1").await.unwrap().unwrap().expect();
    store
        .mark_submitted("k1", intent, "0xj", "payload", None, now)
        .await
        .unwrap();
    assert_eq!(
        store.journal_txs_without_flow("APE").await.unwrap(),
        vec!["0xj".to_string()]
    );
    store
        .record_treasury_flow("APE", &flow("0xj", 30, Some(4), 0, 7), FlowSource::Journal, None, now)
        .await
        .unwrap();
    assert!(store.journal_txs_without_flow("APE").await.unwrap().is_empty());
}
both_backends!(success_treasury_flows_recorded_once, treasury_flows);

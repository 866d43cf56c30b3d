//! The treasury against the simulated chain: a crash between every pair of journal
//! steps, for every operation kind, with and without lost replies and expiries, ends
//! with exactly one effect on chain; reconciliation catches an injected slashing and
//! freezes moves until acknowledged.

use std::sync::Arc;

use softstake_adapters::sim::{Fault, FaultConfig, RewardSeries, SimAdapter, SimChain, SimConfig, ValidatorSet};
use softstake_adapters::traits::{LiquidityModel, OpKind, StakeState};
use softstake_adapters::{ChainAdapter, SecretBytes, TxStatus};
use softstake_core::{Amount, Timestamp, TokenRegistry};
use softstake_node::treasury::executor::{CrashPoint, Crashed, ExecConfig, Executor, OpOutcome};
use softstake_node::treasury::{acknowledge_drift, reconcile_token};
use softstake_node::OrchestratorError;
use softstake_store::{NewOperation, OperationState, Store};

const DAY: i64 = 86_400;
const SOL: u128 = 1_000_000_000;

fn key() -> SecretBytes {
    SecretBytes::new(vec![9; 32])
}

fn genesis() -> Timestamp {
    Timestamp::from_unix_secs(1_750_032_000).unwrap()
}

fn chain(auto_compound: bool) -> (Arc<SimChain>, SimAdapter) {
    let c = SimChain::new(SimConfig {
        token: "SOL".into(),
        decimals: 9,
        model: LiquidityModel {
            unbonding_period_secs: 2 * DAY as u64,
            epoch_secs: 2 * DAY as u64,
            epoch_aligned: true,
            activation_epochs: 1,
            min_delegation: Amount(SOL),
            rewards_auto_compound: auto_compound,
            claim_cadence_secs: 0,
            claim_all_validators: false,
            max_operations_per_epoch: 32,
            instant_exit: false,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: false,
        },
        series: RewardSeries::Solana,
        validator_set: ValidatorSet::Solana,
        seed: 3,
        faults: FaultConfig::default(),
        genesis: genesis(),
        tx_validity_secs: 90,
        treasury_key: key(),
    })
    .unwrap();
    c.fund(Amount(1_000 * SOL)).unwrap();
    let a = SimAdapter::new(c.clone(), key());
    (c, a)
}

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(&format!("sqlite://{}/t.db", dir.path().display()))
        .await
        .unwrap();
    (s, dir)
}

async fn validator(a: &SimAdapter) -> String {
    a.validators()
        .await
        .unwrap()
        .into_iter()
        .find(|v| v.commission_bps == 0 && v.active)
        .unwrap()
        .id
}

/// Runs one operation straight through (no crash), to prepare the chain's state.
async fn run_clean(store: &Store, a: &SimAdapter, key: &str, kind: OpKind, validator: &str, amount: u128) {
    store
        .record_intents(&[intent(key, kind, validator, amount)], a.now().await.unwrap())
        .await
        .unwrap();
    let out = Executor::new(store, a, ExecConfig::default()).run(key).await.unwrap();
    assert_eq!(out, OpOutcome::Confirmed, "{key}");
}

fn intent(key: &str, kind: OpKind, validator: &str, amount: u128) -> NewOperation {
    NewOperation {
        idempotency_key: key.into(),
        plan_id: "test-plan".into(),
        seq: 0,
        token: "SOL".into(),
        kind,
        validator: validator.into(),
        amount: Amount(amount),
        epoch: 0,
    }
}

/// Prepares the chain so that `kind` is valid, and returns the operation to test.
async fn prepare(kind: OpKind) -> (Store, tempfile::TempDir, Arc<SimChain>, SimAdapter, NewOperation) {
    let (s, dir) = store().await;
    let (c, a) = chain(kind != OpKind::Claim);
    let v = validator(&a).await;
    if kind != OpKind::Delegate {
        run_clean(&s, &a, "prep-delegate", OpKind::Delegate, &v, 100 * SOL).await;
        c.advance_secs(2 * DAY).unwrap();
    }
    if kind == OpKind::Withdraw {
        run_clean(&s, &a, "prep-undelegate", OpKind::Undelegate, &v, 40 * SOL).await;
        c.advance_secs(2 * DAY).unwrap();
    }
    if kind == OpKind::Claim {
        c.advance_secs(2 * DAY).unwrap();
    }
    let amount = match kind {
        OpKind::Delegate => 100 * SOL,
        OpKind::Undelegate | OpKind::Withdraw => 40 * SOL,
        OpKind::Claim => 0,
    };
    let op = intent("the-op", kind, &v, amount);
    (s, dir, c, a, op)
}

#[derive(Debug, Clone, Copy)]
enum Twist {
    None,
    LostReply,
    ExpireBeforeRestart,
}

async fn crash_then_restart(kind: OpKind, point: CrashPoint, twist: Twist) {
    let (s, _dir, c, a, op) = prepare(kind).await;
    let wallet_before = c.wallet();
    s.record_intents(std::slice::from_ref(&op), a.now().await.unwrap())
        .await
        .unwrap();
    if matches!(twist, Twist::LostReply) {
        c.inject_next(Fault::LostReply);
    }
    let first = Executor::new(&s, &a, ExecConfig::default())
        .crash_at(point)
        .run(&op.idempotency_key)
        .await;
    let err = first.expect_err("the run must stop at the crash point");
    assert!(
        matches!(err, OrchestratorError::Crashed(Crashed(p)) if p == point),
        "{kind:?} {point:?}: {err:#}"
    );
    if matches!(twist, Twist::ExpireBeforeRestart) {
        c.advance_secs(120).unwrap(); // past the transaction's validity
    }
    // restart: a new executor, recovery first
    let recovered = Executor::new(&s, &a, ExecConfig::default()).recover().await.unwrap();
    assert_eq!(recovered.len(), 1, "{kind:?} {point:?} {twist:?}");
    assert_eq!(recovered[0].1, OpOutcome::Confirmed, "{kind:?} {point:?} {twist:?}");
    assert_eq!(
        c.effects(&op.idempotency_key),
        1,
        "{kind:?} {point:?} {twist:?}: effects on chain"
    );
    let row = s.operation(&op.idempotency_key).await.unwrap().unwrap();
    assert_eq!(row.state, OperationState::Confirmed);
    let signed = softstake_adapters::SignedTx {
        tx_id: row.tx_id.clone().unwrap(),
        payload: row.payload.clone().unwrap(),
        valid_until: row.valid_until,
    };
    assert!(matches!(
        a.tx_status(&signed).await.unwrap(),
        TxStatus::Confirmed { .. }
    ));
    // running it again, or recovering again, does nothing more
    assert_eq!(
        Executor::new(&s, &a, ExecConfig::default())
            .run(&op.idempotency_key)
            .await
            .unwrap(),
        OpOutcome::Confirmed
    );
    assert!(Executor::new(&s, &a, ExecConfig::default())
        .recover()
        .await
        .unwrap()
        .is_empty());
    assert_eq!(c.effects(&op.idempotency_key), 1);
    // the chain shows exactly one effect
    let positions = a.positions().await.unwrap();
    match kind {
        OpKind::Delegate => {
            assert_eq!(positions.len(), 1);
            assert_eq!(c.wallet(), Amount(wallet_before.0 - 100 * SOL));
        }
        OpKind::Undelegate => {
            let d: u128 = positions
                .iter()
                .filter(|p| p.state == StakeState::Deactivating)
                .map(|p| p.amount.0)
                .sum();
            assert_eq!(d, 40 * SOL);
        }
        OpKind::Withdraw => assert_eq!(c.wallet(), Amount(wallet_before.0 + 40 * SOL)),
        OpKind::Claim => assert!(c.wallet() > wallet_before && a.claimable().await.unwrap().is_empty()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_crash_between_every_journal_step_has_exactly_one_effect() {
    for kind in [OpKind::Delegate, OpKind::Undelegate, OpKind::Withdraw, OpKind::Claim] {
        for point in CrashPoint::ALL {
            crash_then_restart(kind, point, Twist::None).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_crash_with_lost_reply_has_exactly_one_effect() {
    for kind in [OpKind::Delegate, OpKind::Undelegate, OpKind::Withdraw, OpKind::Claim] {
        for point in [CrashPoint::AfterBroadcast, CrashPoint::AfterConfirmedStatus] {
            crash_then_restart(kind, point, Twist::LostReply).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_crash_then_expiry_resigns_without_double_effect() {
    for kind in [OpKind::Delegate, OpKind::Undelegate, OpKind::Withdraw, OpKind::Claim] {
        for point in [
            CrashPoint::AfterIntent,
            CrashPoint::AfterSign,
            CrashPoint::AfterSubmitted,
            CrashPoint::AfterBroadcast,
        ] {
            crash_then_restart(kind, point, Twist::ExpireBeforeRestart).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_rejection_is_recorded_as_failed_not_done() {
    let (s, _dir) = store().await;
    let (c, a) = chain(true);
    let op = intent("too-big", OpKind::Delegate, &validator(&a).await, 5_000 * SOL);
    s.record_intents(std::slice::from_ref(&op), a.now().await.unwrap())
        .await
        .unwrap();
    let out = Executor::new(&s, &a, ExecConfig::default())
        .run("too-big")
        .await
        .unwrap();
    assert!(
        matches!(&out, OpOutcome::Failed(r) if r.contains("insufficient funds")),
        "{out:?}"
    );
    assert_eq!(
        s.operation("too-big").await.unwrap().unwrap().state,
        OperationState::Failed
    );
    assert_eq!(c.effects("too-big"), 0);
    assert!(
        s.ledger_balances("SOL", "stake:").await.unwrap().is_empty(),
        "nothing booked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_delayed_finality_stays_pending_then_resolves() {
    let (s, _dir) = store().await;
    let (c, a) = chain(true);
    c.set_faults(FaultConfig {
        finality_polls: 50,
        ..FaultConfig::default()
    });
    let op = intent("slow", OpKind::Delegate, &validator(&a).await, 10 * SOL);
    s.record_intents(&[op], a.now().await.unwrap()).await.unwrap();
    c.inject_next(Fault::DelayedFinality);
    let cfg = ExecConfig {
        max_polls: 10,
        ..ExecConfig::default()
    };
    assert_eq!(
        Executor::new(&s, &a, cfg.clone()).run("slow").await.unwrap(),
        OpOutcome::Pending
    );
    assert_eq!(
        s.operation("slow").await.unwrap().unwrap().state,
        OperationState::Submitted
    );
    let mut outcome = OpOutcome::Pending;
    for _ in 0..10 {
        outcome = Executor::new(&s, &a, cfg.clone()).recover().await.unwrap()[0].1.clone();
        if outcome != OpOutcome::Pending {
            break;
        }
    }
    assert_eq!(outcome, OpOutcome::Confirmed);
    assert_eq!(c.effects("slow"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_reorged_transaction_is_sent_again_and_lands_once() {
    let (s, _dir) = store().await;
    let (c, a) = chain(true);
    let op = intent("forked", OpKind::Delegate, &validator(&a).await, 10 * SOL);
    s.record_intents(&[op], a.now().await.unwrap()).await.unwrap();
    c.inject_next(Fault::Reorg);
    let outcome = Executor::new(&s, &a, ExecConfig::default())
        .run("forked")
        .await
        .unwrap();
    assert_eq!(outcome, OpOutcome::Confirmed);
    assert_eq!(c.reorgs(), 1, "the first landing was dropped by the reorg");
    assert_eq!(c.effects("forked"), 1, "sent again, landed once");
    let op = s.operation("forked").await.unwrap().unwrap();
    assert_eq!(op.attempts, 1, "the same signed transaction, not a new attempt");
    assert_eq!(a.positions().await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_reconciliation_catches_injected_slashing() {
    let (s, _dir) = store().await;
    let (c, a) = chain(true);
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let sol = reg.get("SOL").unwrap();
    let v = validator(&a).await;
    run_clean(&s, &a, "d1", OpKind::Delegate, &v, 500 * SOL).await;
    c.advance_secs(6 * DAY).unwrap(); // rewards compound over two epochs
    let now = a.now().await.unwrap();
    let clean = reconcile_token(&s, &a, sol, 1, now).await.unwrap();
    assert!(
        clean.alert_id.is_none(),
        "rewards are synced, so no drift: {:?}",
        clean.lines
    );
    assert_eq!(clean.reconciled_ops, 1);
    assert_eq!(
        s.operation("d1").await.unwrap().unwrap().state,
        OperationState::Reconciled
    );
    // slash 3 % of our stake at the validator
    let lost = c.inject_slashing(&v, 300);
    let report = reconcile_token(&s, &a, sol, 1, now).await.unwrap();
    let id = report.alert_id.expect("drift alert");
    let line = report.lines.iter().find(|l| l.validator == v).unwrap();
    assert_eq!(line.drift, -(lost.0 as i128));
    assert!(s.frozen("SOL").await.unwrap().is_some(), "moves frozen");
    // acknowledging books the loss; the next reconciliation is clean and moves are free
    acknowledge_drift(&s, &a, id, "treasury-alice", now).await.unwrap();
    assert!(s.frozen("SOL").await.unwrap().is_none());
    let after = reconcile_token(&s, &a, sol, 1, now).await.unwrap();
    assert!(after.alert_id.is_none(), "{:?}", after.lines);
    let slashing = s.ledger_balances("SOL", "chain:slashing").await.unwrap();
    assert_eq!(slashing[0].net(), softstake_core::Net::positive(lost));
}

/// A treasury flow declared on a chain whose reward is not balance growth is refused by
/// name, before any chain read, and nothing is stored.
#[tokio::test]
async fn fail_flow_on_a_chain_without_balance_growth_is_refused() {
    let (_c, a) = chain(false);
    let (store, _dir) = store().await;
    assert!(!a.rewards_net_of_flows());
    let e = softstake_node::treasury::declare_treasury_flow(&store, &a, "0xabc", None, None, genesis())
        .await
        .unwrap_err();
    assert!(matches!(e, OrchestratorError::Refused(_)), "{e}");
    assert!(e.to_string().contains("not balance growth"), "{e}");
    assert!(store.treasury_flows("SOL").await.unwrap().is_empty());
}

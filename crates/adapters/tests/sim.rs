//! The simulated chain's rules and faults, and the guard's retry policy.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use softstake_adapters::sim::{Fault, FaultConfig, RewardSeries, SimAdapter, SimChain, SimConfig, ValidatorSet};
use softstake_adapters::traits::{EpochInfo, LiquidityModel, Position, StakeState, ValidatorCandidate};
use softstake_adapters::{
    AdapterError, ChainAdapter, GuardConfig, Guarded, RewardKind, RewardsPage, SecretBytes, SignedTx, TxStatus,
};
use softstake_core::{Amount, Timestamp};

const DAY: i64 = 86_400;
const SOL: u128 = 1_000_000_000;

fn key() -> SecretBytes {
    SecretBytes::new(vec![42; 32])
}

fn genesis() -> Timestamp {
    Timestamp::from_unix_secs(1_750_032_000).unwrap()
}

fn model(auto_compound: bool, aligned: bool) -> LiquidityModel {
    LiquidityModel {
        unbonding_period_secs: if aligned { 2 * DAY as u64 } else { 7 * DAY as u64 },
        epoch_secs: 2 * DAY as u64,
        epoch_aligned: aligned,
        activation_epochs: 1,
        min_delegation: Amount(SOL),
        rewards_auto_compound: auto_compound,
        claim_cadence_secs: DAY as u64,
        claim_all_validators: false,
        max_operations_per_epoch: 32,
        instant_exit: false,
        earns_in_custody: false,
        stake_unit: Amount(1),
        whole_position_exits: false,
    }
}

fn chain(auto_compound: bool, aligned: bool) -> (Arc<SimChain>, SimAdapter) {
    let c = SimChain::new(SimConfig {
        token: "SOL".into(),
        decimals: 9,
        model: model(auto_compound, aligned),
        series: RewardSeries::Solana,
        validator_set: ValidatorSet::Solana,
        seed: 7,
        faults: FaultConfig::default(),
        genesis: genesis(),
        tx_validity_secs: 90,
        treasury_key: key(),
    })
    .unwrap();
    c.fund(Amount(10_000 * SOL)).unwrap();
    let a = SimAdapter::new(c.clone(), key());
    (c, a)
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

async fn send(a: &SimAdapter, tx: &SignedTx) {
    a.broadcast(tx).await.unwrap();
    assert!(matches!(a.tx_status(tx).await.unwrap(), TxStatus::Confirmed { .. }));
}

#[tokio::test]
async fn success_delegate_activates_next_epoch_and_compounds_real_rate() {
    let (c, a) = chain(true, true);
    let v = validator(&a).await;
    let tx = a.delegate("k1", &v, Amount(1_000 * SOL)).await.unwrap();
    send(&a, &tx).await;
    let p = a.positions().await.unwrap();
    assert_eq!(p[0].state, StakeState::Activating);
    assert_eq!(c.wallet(), Amount(9_000 * SOL));
    c.advance_secs(2 * DAY).unwrap(); // epoch 1 starts: active, no reward for epoch 0
    assert_eq!(a.positions().await.unwrap()[0].state, StakeState::Active);
    assert!(a.rewards_since(None).await.unwrap().records.is_empty());
    c.advance_secs(2 * DAY).unwrap(); // end of epoch 1: reward at the validator's real rate
    let page = a.rewards_since(None).await.unwrap();
    assert_eq!(page.records.len(), 1);
    let r = page.records[0].amount.0;
    // Solana epoch 842 delegators earned about 0.035 % per epoch: 1 000 SOL → ~0.35 SOL
    assert!(r > SOL / 5 && r < SOL, "reward {r} lamports");
    assert_eq!(a.positions().await.unwrap()[0].amount.0, 1_000 * SOL + r);
    assert_eq!(page.records[0].kind, RewardKind::Compounded);
    let next: RewardsPage = a.rewards_since(Some(&page.cursor)).await.unwrap();
    assert!(next.records.is_empty());
}

#[tokio::test]
async fn success_undelegate_unbonds_until_epoch_boundary_then_withdraw() {
    let (c, a) = chain(true, true);
    let v = validator(&a).await;
    send(&a, &a.delegate("d", &v, Amount(100 * SOL)).await.unwrap()).await;
    c.advance_secs(2 * DAY).unwrap();
    send(&a, &a.undelegate("u", &v, Amount(40 * SOL)).await.unwrap()).await;
    let p = a.positions().await.unwrap();
    let deact: Vec<&Position> = p.iter().filter(|x| x.state == StakeState::Deactivating).collect();
    assert_eq!(deact.len(), 1);
    assert_eq!(deact[0].amount, Amount(40 * SOL));
    let epoch: EpochInfo = a.epoch().await.unwrap();
    assert_eq!(deact[0].eta, Some(epoch.boundary_after(1)));
    // withdrawing before the ETA is refused
    let early = a.withdraw("w0", &v, Amount(40 * SOL)).await.unwrap();
    assert!(matches!(a.broadcast(&early).await, Err(AdapterError::Rejected { .. })));
    c.advance_secs(2 * DAY).unwrap();
    send(&a, &a.withdraw("w1", &v, Amount(40 * SOL)).await.unwrap()).await;
    assert_eq!(c.wallet(), Amount(9_940 * SOL));
}

#[tokio::test]
async fn success_lost_reply_resolves_to_one_effect() {
    let (c, a) = chain(true, true);
    let v = validator(&a).await;
    let tx = a.delegate("lost", &v, Amount(10 * SOL)).await.unwrap();
    c.inject_next(Fault::LostReply);
    assert!(a.broadcast(&tx).await.unwrap_err().is_transient());
    // the status says it landed; sending it again changes nothing
    assert!(matches!(a.tx_status(&tx).await.unwrap(), TxStatus::Confirmed { .. }));
    a.broadcast(&tx).await.unwrap();
    assert_eq!(c.effects("lost"), 1);
    // a second, differently signed delegation with the same key cannot create a second account
    let again = a.delegate("lost", &v, Amount(10 * SOL)).await.unwrap();
    assert_ne!(again.tx_id, tx.tx_id);
    let e = a.broadcast(&again).await.unwrap_err();
    assert!(e.to_string().contains("already in use"), "{e}");
    assert_eq!(c.effects("lost"), 1);
}

#[tokio::test]
async fn success_delayed_finality_is_pending_then_confirmed() {
    let (c, a) = chain(true, true);
    c.set_faults(FaultConfig {
        finality_polls: 2,
        ..FaultConfig::default()
    });
    let v = validator(&a).await;
    let tx = a.delegate("slow", &v, Amount(10 * SOL)).await.unwrap();
    c.inject_next(Fault::DelayedFinality);
    a.broadcast(&tx).await.unwrap();
    assert_eq!(a.tx_status(&tx).await.unwrap(), TxStatus::Pending);
    assert_eq!(a.tx_status(&tx).await.unwrap(), TxStatus::Pending);
    assert!(matches!(a.tx_status(&tx).await.unwrap(), TxStatus::Confirmed { .. }));
}

#[tokio::test]
async fn success_reorg_drops_the_transaction_and_undoes_its_effect() {
    let (c, a) = chain(true, true);
    let v = validator(&a).await;
    let tx = a.delegate("forked", &v, Amount(10 * SOL)).await.unwrap();
    c.inject_next(Fault::Reorg);
    a.broadcast(&tx).await.unwrap();
    assert_eq!(c.wallet(), Amount(9_990 * SOL), "the fork applied it");
    assert_eq!(a.tx_status(&tx).await.unwrap(), TxStatus::Pending);
    // the fork is abandoned: gone from the chain, its effect undone
    assert_eq!(a.tx_status(&tx).await.unwrap(), TxStatus::NotFound);
    assert_eq!(c.effects("forked"), 0);
    assert_eq!(c.reorgs(), 1);
    assert_eq!(a.spendable().await.unwrap(), Amount(10_000 * SOL));
    assert!(a.positions().await.unwrap().is_empty());
    // the same signed transaction lands again, exactly once
    send(&a, &tx).await;
    assert_eq!(c.effects("forked"), 1);
    assert_eq!(a.positions().await.unwrap().len(), 1);
    assert_eq!(c.wallet(), Amount(9_990 * SOL));
}

#[tokio::test]
async fn success_reorg_never_undoes_what_was_observed_or_built_on() {
    // a read saw the effect: it stays (reads are at the finalized commitment)
    let (c, a) = chain(true, true);
    let v = validator(&a).await;
    let seen = a.delegate("seen", &v, Amount(10 * SOL)).await.unwrap();
    c.inject_next(Fault::Reorg);
    a.broadcast(&seen).await.unwrap();
    assert_eq!(a.positions().await.unwrap().len(), 1);
    assert_eq!(a.tx_status(&seen).await.unwrap(), TxStatus::Pending);
    assert!(matches!(a.tx_status(&seen).await.unwrap(), TxStatus::Confirmed { .. }));
    // time moved on after it landed: it stays
    let later = a.delegate("later", &v, Amount(10 * SOL)).await.unwrap();
    c.inject_next(Fault::Reorg);
    a.broadcast(&later).await.unwrap();
    c.advance_secs(1).unwrap();
    assert_eq!(a.tx_status(&later).await.unwrap(), TxStatus::Pending);
    assert!(matches!(a.tx_status(&later).await.unwrap(), TxStatus::Confirmed { .. }));
    // another transaction landed on top of it: it stays
    let under = a.delegate("under", &v, Amount(10 * SOL)).await.unwrap();
    c.inject_next(Fault::Reorg);
    a.broadcast(&under).await.unwrap();
    send(&a, &a.delegate("over", &v, Amount(10 * SOL)).await.unwrap()).await;
    assert_eq!(a.tx_status(&under).await.unwrap(), TxStatus::Pending);
    assert!(matches!(a.tx_status(&under).await.unwrap(), TxStatus::Confirmed { .. }));
    assert_eq!(c.reorgs(), 0);
    for key in ["seen", "later", "under", "over"] {
        assert_eq!(c.effects(key), 1, "{key}");
    }
    assert_eq!(c.wallet(), Amount(9_960 * SOL));
}

#[tokio::test]
async fn fail_expired_transaction_never_lands() {
    let (c, a) = chain(true, true);
    let v = validator(&a).await;
    let tx = a.delegate("late", &v, Amount(10 * SOL)).await.unwrap();
    c.advance_secs(91).unwrap();
    let e = a.broadcast(&tx).await.unwrap_err();
    assert!(e.to_string().contains("Blockhash not found"), "{e}");
    assert_eq!(
        a.tx_status(&tx).await.unwrap(),
        TxStatus::Expired,
        "it can never land now"
    );
    assert_eq!(c.effects("late"), 0);
}

#[tokio::test]
async fn fail_bad_signature_and_tampering() {
    let (c, a) = chain(true, true);
    let v = validator(&a).await;
    let other = SimAdapter::new(c.clone(), SecretBytes::new(vec![1; 32]));
    let forged = other.delegate("forged", &v, Amount(10 * SOL)).await.unwrap();
    assert!(a
        .broadcast(&forged)
        .await
        .unwrap_err()
        .to_string()
        .contains("signature"));
    let mut tampered = a.delegate("t", &v, Amount(10 * SOL)).await.unwrap();
    tampered.payload = tampered.payload.replace("10000000000", "99000000000");
    assert!(matches!(
        a.broadcast(&tampered).await,
        Err(AdapterError::Rejected { .. })
    ));
    assert_eq!(c.wallet(), Amount(10_000 * SOL));
}

#[tokio::test]
async fn fail_rules_insufficient_funds_and_minimum() {
    let (_c, a) = chain(true, true);
    let v = validator(&a).await;
    let big = a.delegate("big", &v, Amount(20_000 * SOL)).await.unwrap();
    assert!(matches!(
        a.broadcast(&big).await,
        Err(AdapterError::InsufficientFunds { .. })
    ));
    let small = a.delegate("small", &v, Amount(SOL / 2)).await.unwrap();
    assert!(a.broadcast(&small).await.unwrap_err().to_string().contains("minimum"));
    let unknown = a.delegate("u", "NoSuchVote111", Amount(SOL)).await.unwrap();
    assert!(a
        .broadcast(&unknown)
        .await
        .unwrap_err()
        .to_string()
        .contains("not found"));
}

#[tokio::test]
async fn success_claim_chain_accrues_and_respects_cadence() {
    let (c, a) = chain(false, false);
    let v = validator(&a).await;
    send(&a, &a.delegate("d", &v, Amount(1_000 * SOL)).await.unwrap()).await;
    c.advance_secs(4 * DAY).unwrap();
    let claimable = a.claimable().await.unwrap();
    assert_eq!(claimable.len(), 1);
    assert!(
        a.rewards_since(None).await.unwrap().records.is_empty(),
        "not realized until claimed"
    );
    let wallet = c.wallet();
    send(&a, &a.claim_rewards("c1", &v).await.unwrap()).await;
    let recs = a.rewards_since(None).await.unwrap().records;
    assert_eq!(recs[0].kind, RewardKind::Claimed);
    assert_eq!(c.wallet(), Amount(wallet.0 + recs[0].amount.0));
    // two days after the claim (cadence one day): allowed; at once again: refused
    c.advance_secs(2 * DAY).unwrap();
    send(&a, &a.claim_rewards("c2", &v).await.unwrap()).await;
    let again = a.claim_rewards("c3", &v).await.unwrap();
    assert!(a.broadcast(&again).await.unwrap_err().to_string().contains("claim"));
}

#[tokio::test]
async fn success_slashing_reduces_positions() {
    let (c, a) = chain(true, true);
    let v = validator(&a).await;
    send(&a, &a.delegate("d", &v, Amount(1_000 * SOL)).await.unwrap()).await;
    let lost = c.inject_slashing(&v, 500);
    assert_eq!(lost, Amount(50 * SOL));
    assert_eq!(a.positions().await.unwrap()[0].amount, Amount(950 * SOL));
}

#[tokio::test]
async fn fail_garbage_answer_is_a_bad_response() {
    let (c, a) = chain(true, true);
    c.inject_next(Fault::Garbage);
    assert!(matches!(a.positions().await, Err(AdapterError::BadResponse { .. })));
    assert!(a.positions().await.is_ok());
}

#[tokio::test]
async fn success_validator_sets_are_real() {
    for (set, n) in [
        (ValidatorSet::Solana, 986),
        (ValidatorSet::Cosmos, 125),
        (ValidatorSet::Tron, 243),
        (ValidatorSet::Generated, 60),
    ] {
        let c = SimChain::new(SimConfig {
            token: "ATOM".into(),
            decimals: 6,
            model: model(false, false),
            series: RewardSeries::Cardano,
            validator_set: set,
            seed: 1,
            faults: FaultConfig::default(),
            genesis: genesis(),
            tx_validity_secs: 90,
            treasury_key: key(),
        })
        .unwrap();
        let vs: Vec<ValidatorCandidate> = SimAdapter::new(c, key()).validators().await.unwrap();
        assert_eq!(vs.len(), n, "{set:?}");
        assert!(vs.iter().all(|v| v.commission_bps <= 10_000));
    }
}

/// An adapter that fails `n` times with the given error, then succeeds, counting calls.
#[derive(Debug)]
struct Flaky {
    fails: AtomicU32,
    calls: AtomicU32,
    error: AdapterError,
}

#[async_trait]
impl ChainAdapter for Flaky {
    fn chain(&self) -> &str {
        "flaky"
    }
    fn token(&self) -> &str {
        "TST"
    }
    async fn liquidity_model(&self) -> softstake_adapters::Result<LiquidityModel> {
        Ok(model(true, true))
    }
    async fn epoch(&self) -> softstake_adapters::Result<EpochInfo> {
        Ok(EpochInfo {
            index: 0,
            start: genesis(),
            secs: 0,
        })
    }
    async fn now(&self) -> softstake_adapters::Result<Timestamp> {
        Ok(genesis())
    }
    async fn validators(&self) -> softstake_adapters::Result<Vec<ValidatorCandidate>> {
        Ok(vec![])
    }
    async fn positions(&self) -> softstake_adapters::Result<Vec<Position>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.fails.load(Ordering::SeqCst) > 0 {
            self.fails.fetch_sub(1, Ordering::SeqCst);
            return Err(self.error.clone());
        }
        Ok(vec![])
    }
    async fn claimable(&self) -> softstake_adapters::Result<Vec<(String, Amount)>> {
        Ok(vec![])
    }
    async fn spendable(&self) -> softstake_adapters::Result<Amount> {
        Ok(Amount::ZERO)
    }
    async fn delegate(&self, _: &str, _: &str, _: Amount) -> softstake_adapters::Result<SignedTx> {
        Err(AdapterError::bad_input("flaky", "unused"))
    }
    async fn undelegate(&self, _: &str, _: &str, _: Amount) -> softstake_adapters::Result<SignedTx> {
        Err(AdapterError::bad_input("flaky", "unused"))
    }
    async fn withdraw(&self, _: &str, _: &str, _: Amount) -> softstake_adapters::Result<SignedTx> {
        Err(AdapterError::bad_input("flaky", "unused"))
    }
    async fn claim_rewards(&self, _: &str, _: &str) -> softstake_adapters::Result<SignedTx> {
        Err(AdapterError::bad_input("flaky", "unused"))
    }
    async fn broadcast(&self, _: &SignedTx) -> softstake_adapters::Result<()> {
        Ok(())
    }
    async fn tx_status(&self, _: &SignedTx) -> softstake_adapters::Result<TxStatus> {
        Ok(TxStatus::NotFound)
    }
    async fn rewards_since(&self, _: Option<&str>) -> softstake_adapters::Result<RewardsPage> {
        Ok(RewardsPage {
            records: vec![],
            cursor: "0".into(),
        })
    }
}

fn fast() -> GuardConfig {
    GuardConfig {
        rate_per_sec: 1_000,
        max_retries: 3,
        min_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        call_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn success_guard_retries_transient_errors() {
    let g = Guarded::new(
        Flaky {
            fails: AtomicU32::new(2),
            calls: AtomicU32::new(0),
            error: AdapterError::transient("flaky", "timeout"),
        },
        fast(),
        None,
    );
    assert!(g.positions().await.is_ok());
    assert_eq!(g.inner().calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn fail_guard_does_not_retry_rejections_and_gives_up() {
    let g = Guarded::new(
        Flaky {
            fails: AtomicU32::new(5),
            calls: AtomicU32::new(0),
            error: AdapterError::rejected("flaky", "no"),
        },
        fast(),
        None,
    );
    assert!(matches!(g.positions().await, Err(AdapterError::Rejected { .. })));
    assert_eq!(g.inner().calls.load(Ordering::SeqCst), 1);
    let g = Guarded::new(
        Flaky {
            fails: AtomicU32::new(100),
            calls: AtomicU32::new(0),
            error: AdapterError::transient("flaky", "down"),
        },
        fast(),
        None,
    );
    assert!(g.positions().await.unwrap_err().is_transient());
    assert_eq!(g.inner().calls.load(Ordering::SeqCst), 4, "first try + 3 retries");
}

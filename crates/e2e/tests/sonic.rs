//! The S adapter against a real EVM node: anvil (`--chain-id 146`) with our SFC stand-in
//! at 0xFC00FACE…, driven through the operations journal: delegate, rewards over sealed
//! epochs, claims realized as rewards, undelegate into a withdrawal request, early
//! withdrawal refused, withdrawal after `withdrawalPeriodTime` and
//! `withdrawalPeriodEpochs`, reconciliation with zero drift; a dropped reply resolved
//! without a second effect; the same journal key never undelegating twice (its `wrID`);
//! a slashing penalty as drift; the stand-in checked against the adapter's real
//! signatures.
//!
//! `cargo nextest run -p softstake-e2e --features evm-anvil` (needs anvil and solc-js:
//! `scripts/setup.sh` installs them; `scripts/test.sh` runs this).
#![cfg(feature = "evm-anvil")]

use std::sync::Arc;

use alloy::primitives::U256;
use alloy::sol_types::{SolEvent, SolInterface};

use softstake_adapters::evm::sonic::{SonicAdapter, ISFC, SFC_ADDRESS};
use softstake_adapters::traits::{OpKind, StakeState};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::evm::{self, compile, contracts_dir, evm_config};
use softstake_e2e::journal;
use softstake_e2e::sonic::{start_sonic, LocalSonic, S_WEI};
use softstake_node::treasury::executor::{CrashPoint, OpOutcome};
use softstake_node::treasury::{reconcile_token, sync_token};
use softstake_store::{NewOperation, OperationState, Store};

const CONFIRMATIONS: u64 = 2;
/// The stand-in's ConstantsManager.validatorCommission (15 %, 1e18-scaled).
const COMMISSION: u128 = 150_000_000_000_000_000;

fn adapter(c: &LocalSonic) -> Arc<dyn ChainAdapter> {
    let cfg = evm_config(&c.url, 146, CONFIRMATIONS);
    let a = SonicAdapter::new(cfg, SecretBytes::new(c.treasury_key.to_vec()), SFC_ADDRESS).unwrap();
    journal::guarded(a, 500, 5)
}

fn op(key: &str, kind: OpKind, validator: u64, wei: u128) -> NewOperation {
    journal::op("S", key, kind, &validator.to_string(), wei)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, evm::exec_config()).await
}

async fn amount_at(chain: &dyn ChainAdapter, v: u64, state: StakeState) -> u128 {
    journal::amount_at(chain, &v.to_string(), state).await
}

async fn store(dir: &tempfile::TempDir) -> Store {
    journal::sqlite_store(dir.path(), "s").await
}

/// Our part of `reward` paid to a validator holding `total` with `ours` of it, as the SFC
/// computes it (commission off, then accumulated reward per token, floor at each step).
fn our_reward(reward: u128, total: u128, ours: u128) -> u128 {
    let unit = U256::from(S_WEI);
    let commission = U256::from(reward) * U256::from(COMMISSION) / unit;
    let per_token = (U256::from(reward) - commission) * unit / U256::from(total);
    (U256::from(ours) * per_token / unit).to()
}

/// A withdrawal request far behind the head (a restart after an outage rescans from
/// start_block) is found by reading the history a page at a time. Reproduced with a log
/// range of 2 blocks (a page of 400) and 1 000 blocks after the undelegation: before
/// paging, positions() refused the range outright.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_positions_page_through_a_long_history() {
    let c = start_sonic(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let v1 = c.validators[0];
    assert_eq!(
        run(&store, chain.as_ref(), op("d-v1", OpKind::Delegate, v1, 1_000 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("u-v1", OpKind::Undelegate, v1, 300 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    c.mine(1_000).await.unwrap();
    // a fresh adapter (a restart) with a small log range reads it all again
    let mut cfg = evm_config(&c.url, 146, CONFIRMATIONS);
    cfg.log_range_blocks = 2;
    let restarted = journal::guarded(
        SonicAdapter::new(cfg, SecretBytes::new(c.treasury_key.to_vec()), SFC_ADDRESS).unwrap(),
        500,
        5,
    );
    assert_eq!(
        amount_at(restarted.as_ref(), v1, StakeState::Deactivating).await,
        300 * S_WEI
    );
    assert_eq!(amount_at(restarted.as_ref(), v1, StakeState::Active).await, 700 * S_WEI);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_s_stake_lifecycle_on_anvil() {
    let c = start_sonic(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let s = reg.get("S").unwrap();
    let (v1, v2) = (c.validators[0], c.validators[1]);

    let model = chain.liquidity_model().await.unwrap();
    assert_eq!(
        model.unbonding_period_secs,
        14 * 86_400,
        "ConstantsManager.withdrawalPeriodTime"
    );
    assert!(!model.rewards_auto_compound);
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!((vals[0].id.as_str(), vals[0].commission_bps), ("1", 1_500));
    assert_eq!(vals[0].total_stake, Amount(600_000 * S_WEI));

    let now = chain.now().await.unwrap();
    assert_eq!(sync_token(&store, chain.as_ref(), now).await.unwrap().new_rewards, 0);
    assert_eq!(
        run(&store, chain.as_ref(), op("d-v1", OpKind::Delegate, v1, 1_000 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("d-v2", OpKind::Delegate, v2, 400 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(amount_at(chain.as_ref(), v1, StakeState::Active).await, 1_000 * S_WEI);

    // two sealed epochs of rewards accrue as claimable, not as stake
    let total = c.received_stake(v1).await.unwrap();
    c.seal_epoch(&[(v1, 300 * S_WEI), (v2, 100 * S_WEI)]).await.unwrap();
    c.seal_epoch(&[(v1, 500 * S_WEI)]).await.unwrap();
    let expected = our_reward(300 * S_WEI, total, 1_000 * S_WEI) + our_reward(500 * S_WEI, total, 1_000 * S_WEI);
    let claimable = chain.claimable().await.unwrap();
    let pending_v1 = claimable.iter().find(|(v, _)| v == "1").unwrap().1;
    assert_eq!(pending_v1.0, expected, "{claimable:?}");
    assert_eq!(amount_at(chain.as_ref(), v1, StakeState::Active).await, 1_000 * S_WEI);
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    assert_eq!(
        sync_token(&store, chain.as_ref(), now).await.unwrap().new_rewards,
        0,
        "accrued is not realized"
    );

    // the claim realizes them: one Claimed record of exactly the pending amount
    let before = c.treasury_balance().await.unwrap();
    assert_eq!(
        run(&store, chain.as_ref(), op("c-v1", OpKind::Claim, v1, pending_v1.0)).await,
        OpOutcome::Confirmed
    );
    let got = c.treasury_balance().await.unwrap() - before;
    assert!(got < expected && got > expected - S_WEI / 100, "reward less gas: {got}");
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    let synced = sync_token(&store, chain.as_ref(), now).await.unwrap();
    assert_eq!(
        (synced.new_rewards, synced.new_amount),
        (1, Amount(expected)),
        "{synced:?}"
    );
    // a second sync over the same blocks adds nothing
    assert_eq!(sync_token(&store, chain.as_ref(), now).await.unwrap().new_rewards, 0);
    let rep = reconcile_token(&store, chain.as_ref(), s, 0, now).await.unwrap();
    assert!(rep.alert_id.is_none(), "zero drift after the claim: {:?}", rep.lines);

    // undelegate: a withdrawal request, not withdrawable before 14 days and 3 epochs
    assert_eq!(
        run(&store, chain.as_ref(), op("u-v2", OpKind::Undelegate, v2, 400 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("u-v1", OpKind::Undelegate, v1, 250 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        amount_at(chain.as_ref(), v2, StakeState::Deactivating).await,
        400 * S_WEI
    );
    assert_eq!(amount_at(chain.as_ref(), v1, StakeState::Active).await, 750 * S_WEI);
    let early = chain
        .withdraw("w-early", &v2.to_string(), Amount(400 * S_WEI))
        .await
        .unwrap_err();
    assert!(matches!(early, AdapterError::BadInput { .. }), "{early}");
    // time alone is not enough: the epochs must pass too
    c.increase_time(14 * 86_400 + 1).await.unwrap();
    assert_eq!(amount_at(chain.as_ref(), v2, StakeState::Withdrawable).await, 0);
    for _ in 0..3 {
        c.seal_epoch(&[]).await.unwrap();
    }
    c.mine(CONFIRMATIONS).await.unwrap();
    assert_eq!(
        amount_at(chain.as_ref(), v2, StakeState::Withdrawable).await,
        400 * S_WEI
    );
    assert_eq!(
        amount_at(chain.as_ref(), v1, StakeState::Withdrawable).await,
        250 * S_WEI
    );
    let before = c.treasury_balance().await.unwrap();
    assert_eq!(
        run(&store, chain.as_ref(), op("w-v2", OpKind::Withdraw, v2, 400 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("w-v1", OpKind::Withdraw, v1, 250 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    let back = c.treasury_balance().await.unwrap() - before;
    assert!(back < 650 * S_WEI && back > 650 * S_WEI - S_WEI / 100, "{back}");
    assert!(chain
        .positions()
        .await
        .unwrap()
        .iter()
        .all(|p| p.state == StakeState::Active));
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), s, 0, now).await.unwrap();
    assert!(
        rep.alert_id.is_none(),
        "zero drift after the withdrawals: {:?}",
        rep.lines
    );
    assert!(rep.lines.iter().all(|l| l.drift == 0), "{:?}", rep.lines);
    for k in ["d-v1", "d-v2", "c-v1", "u-v2", "u-v1", "w-v2", "w-v1"] {
        assert_eq!(
            store.operation(k).await.unwrap().unwrap().state,
            OperationState::Reconciled,
            "{k}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_and_same_key_never_act_twice() {
    let c = start_sonic(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let v = c.validators[2];
    assert_eq!(
        run(&store, chain.as_ref(), op("d", OpKind::Delegate, v, 100 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    // the reply to the undelegation is lost after it was submitted: recovery finds it
    let key = "u-crash";
    let o = op(key, OpKind::Undelegate, v, 30 * S_WEI);
    let recovered = journal::crash_and_recover(
        &store,
        chain.as_ref(),
        o,
        CrashPoint::AfterBroadcast,
        evm::exec_config(),
    )
    .await;
    assert_eq!(recovered, vec![(key.to_string(), OpOutcome::Confirmed)]);
    assert_eq!(amount_at(chain.as_ref(), v, StakeState::Active).await, 70 * S_WEI);
    assert_eq!(amount_at(chain.as_ref(), v, StakeState::Deactivating).await, 30 * S_WEI);

    // signing the same key again (as after a lost journal write) names the same wrID:
    // the SFC refuses it, nothing is undelegated twice
    let again = chain
        .undelegate(key, &v.to_string(), Amount(30 * S_WEI))
        .await
        .unwrap_err();
    assert!(
        matches!(again, AdapterError::Rejected { .. }) && again.to_string().contains("RequestExists"),
        "{again}"
    );
    assert_eq!(amount_at(chain.as_ref(), v, StakeState::Active).await, 70 * S_WEI);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_bad_requests_and_slashing_show() {
    let c = start_sonic(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let s = reg.get("S").unwrap();

    // an unknown validator id: the SFC reverts ValidatorNotExists, nothing is sent
    let before = c.treasury_balance().await.unwrap();
    let out = run(&store, chain.as_ref(), op("d-none", OpKind::Delegate, 42, S_WEI)).await;
    assert!(matches!(out, OpOutcome::Failed(_)), "{out:?}");
    let rec = store.operation("d-none").await.unwrap().unwrap();
    assert!(
        rec.error.as_deref().unwrap_or("").contains("ValidatorNotExists"),
        "{rec:?}"
    );
    assert_eq!(c.treasury_balance().await.unwrap(), before);
    // above the validator's delegation limit (16 × self-stake)
    let limit = chain
        .delegate("d-limit", "1", Amount(600_000 * 16 * S_WEI))
        .await
        .unwrap_err();
    assert!(
        matches!(
            limit,
            AdapterError::InsufficientFunds { .. } | AdapterError::Rejected { .. }
        ),
        "{limit}"
    );
    // nothing to claim: ZeroRewards
    let zero = chain.claim_rewards("c-zero", "1").await.unwrap_err();
    assert!(zero.to_string().contains("ZeroRewards"), "{zero}");
    // undelegating more than staked is refused before signing
    let more = chain.undelegate("u-more", "1", Amount(S_WEI)).await.unwrap_err();
    assert!(matches!(more, AdapterError::BadInput { .. }), "{more}");

    // a double-signer refunds half of what leaves it: the loss shows as drift at once
    assert_eq!(
        run(&store, chain.as_ref(), op("d-v3", OpKind::Delegate, 3, 10 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("u-v3", OpKind::Undelegate, 3, 10 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    c.mark_cheater(3, S_WEI / 2).await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    let worth = 5 * S_WEI - 1;
    assert_eq!(amount_at(chain.as_ref(), 3, StakeState::Deactivating).await, worth);
    let now = chain.now().await.unwrap();
    sync_token(&store, chain.as_ref(), now).await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), s, 0, now).await.unwrap();
    assert!(
        rep.alert_id.is_some(),
        "the penalty raises a drift alert: {:?}",
        rep.lines
    );
    let line = rep.lines.iter().find(|l| l.validator == "3").unwrap();
    assert_eq!(line.drift, -(5 * S_WEI as i128 + 1), "{line:?}");
    // what is left is withdrawn after the period; the request is worth its net amount
    c.increase_time(14 * 86_400 + 1).await.unwrap();
    for _ in 0..3 {
        c.seal_epoch(&[]).await.unwrap();
    }
    let before = c.treasury_balance().await.unwrap();
    let full = chain.withdraw("w-full", "3", Amount(10 * S_WEI)).await.unwrap_err();
    assert!(matches!(full, AdapterError::BadInput { .. }), "{full}");
    let w = chain.withdraw("w-v3", "3", Amount(worth)).await.unwrap();
    chain.broadcast(&w).await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    let back = c.treasury_balance().await.unwrap() - before;
    assert!(back < worth && back > worth - S_WEI / 100, "{back}");
}

/// The stand-in speaks the adapter's interface: every function, event and error the
/// adapter binds (0xsoniclabs/sonic-sfc signatures) is in the stand-in's ABI.
#[test]
fn success_stand_in_matches_the_adapter_interface() {
    let compiled = compile(&contracts_dir().join("sonic/SFC.sol")).unwrap();
    let sfc = &compiled["SFC"];
    let missing = sfc.missing_functions(ISFC::ISFCCalls::selectors());
    assert!(missing.is_empty(), "functions missing: {missing:?}");
    let errors = sfc.signature_hashes("error");
    for sel in ISFC::ISFCErrors::selectors() {
        assert!(errors.iter().any(|h| h[..4] == sel), "error {sel:?} missing");
    }
    let events = sfc.signature_hashes("event");
    for topic in [
        ISFC::Delegated::SIGNATURE_HASH,
        ISFC::Undelegated::SIGNATURE_HASH,
        ISFC::Withdrawn::SIGNATURE_HASH,
        ISFC::ClaimedRewards::SIGNATURE_HASH,
    ] {
        assert!(events.contains(&topic.0), "event {topic} missing");
    }
}

/// Withdrawal requests named by the journal: a restarted node whose `start_block` is past
/// the undelegation (its log scan cannot see the Undelegated event) still finds the open
/// request through `positions_of`, from the undelegation's key (wrID = keccak256(key)),
/// withdraws it once matured, and then no longer names it (the confirmed withdrawal's
/// payload says which wrID it sent). Before, a restarted node found requests only by
/// scanning logs from `start_block`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_withdrawal_requests_come_from_the_journal() {
    use softstake_node::treasury::positions_of;
    let c = start_sonic(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let v = c.validators[1];
    for (key, kind, wei) in [
        ("j-d", OpKind::Delegate, 100 * S_WEI),
        ("j-u", OpKind::Undelegate, 40 * S_WEI),
    ] {
        assert_eq!(
            run(&store, chain.as_ref(), op(key, kind, v, wei)).await,
            OpOutcome::Confirmed,
            "{key}"
        );
    }
    // a restarted node whose history starts after the undelegation
    let head = alloy::providers::Provider::get_block_number(&c.funder).await.unwrap();
    let mut cfg = evm_config(&c.url, 146, CONFIRMATIONS);
    cfg.start_block = head + 1;
    let fresh = journal::guarded(
        SonicAdapter::new(cfg, SecretBytes::new(c.treasury_key.to_vec()), SFC_ADDRESS).unwrap(),
        500,
        5,
    );
    assert_eq!(
        amount_at(fresh.as_ref(), v, StakeState::Deactivating).await,
        0,
        "its own log scan starts after the request"
    );
    let at = |ps: &[softstake_core::position::Position], state: StakeState| -> u128 {
        ps.iter()
            .filter(|p| p.validator == v.to_string() && p.state == state)
            .map(|p| p.amount.0)
            .sum()
    };
    let ps = positions_of(&store, fresh.as_ref()).await.unwrap();
    assert_eq!(
        at(&ps, StakeState::Deactivating),
        40 * S_WEI,
        "named by the journal: {ps:?}"
    );
    c.increase_time(14 * 86_400 + 1).await.unwrap();
    for _ in 0..3 {
        c.seal_epoch(&[]).await.unwrap();
    }
    c.mine(CONFIRMATIONS).await.unwrap();
    let ps = positions_of(&store, fresh.as_ref()).await.unwrap();
    assert_eq!(at(&ps, StakeState::Withdrawable), 40 * S_WEI);
    assert_eq!(
        run(&store, fresh.as_ref(), op("j-w", OpKind::Withdraw, v, 40 * S_WEI)).await,
        OpOutcome::Confirmed
    );
    let ps = positions_of(&store, fresh.as_ref()).await.unwrap();
    assert!(ps.iter().all(|p| p.state == StakeState::Active), "withdrawn: {ps:?}");
    assert_eq!(at(&ps, StakeState::Active), 60 * S_WEI);
}

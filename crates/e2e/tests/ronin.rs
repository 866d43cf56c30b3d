//! The AXS adapter against a real EVM node: anvil (`--chain-id 2020`) with our AXS staking
//! pool stand-in, driven through the operations journal: delegation as one operation of
//! two transactions (the ERC-20 approval, then `stake`), rewards claimed once per
//! `minClaimedBlocks` and realized from `RewardClaimed`, instant exit by `unstake`,
//! reconciliation with zero drift; a dropped reply resolved without a second stake; bad
//! requests typed, with nothing moved.
//!
//! `cargo nextest run -p softstake-e2e --features evm-anvil` (needs anvil and solc-js:
//! `scripts/setup.sh` installs them; `scripts/test.sh` runs this).
#![cfg(feature = "evm-anvil")]

use std::sync::Arc;

use alloy::sol_types::{SolEvent, SolInterface};

use softstake_adapters::evm::ronin::{IAxsStakingPool, IErc20, RoninAxsAdapter, CLAIM_CADENCE_SECS};
use softstake_adapters::traits::{OpKind, StakeState};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::evm::{self, compile, contracts_dir, evm_config};
use softstake_e2e::journal;
use softstake_e2e::ronin::{start_ronin, LocalRonin, AXS_WEI, MIN_CLAIMED_BLOCKS, OTHER_STAKE_AXS, TREASURY_AXS};
use softstake_node::treasury::executor::{CrashPoint, OpOutcome};
use softstake_node::treasury::{reconcile_token, sync_token};
use softstake_store::{NewOperation, OperationState, Store};

const CONFIRMATIONS: u64 = 2;

fn adapter(c: &LocalRonin) -> (Arc<dyn ChainAdapter>, String) {
    let cfg = evm_config(&c.url, 2020, CONFIRMATIONS);
    let a = RoninAxsAdapter::new(cfg, SecretBytes::new(c.treasury_key.to_vec()), c.pool).unwrap();
    let pool = a.pool_id();
    (journal::guarded(a, 500, 5), pool)
}

fn op(key: &str, kind: OpKind, validator: &str, wei: u128) -> NewOperation {
    journal::op("AXS", key, kind, validator, wei)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, evm::exec_config()).await
}

async fn store(dir: &tempfile::TempDir) -> Store {
    journal::sqlite_store(dir.path(), "axs").await
}

async fn settle(c: &LocalRonin, chain: &dyn ChainAdapter, store: &Store) -> softstake_node::treasury::SyncReport {
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    sync_token(store, chain, now).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_axs_stake_lifecycle_on_anvil() {
    let c = start_ronin(0, 1).await.unwrap();
    let (chain, pool) = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let axs = reg.get("AXS").unwrap();

    let model = chain.liquidity_model().await.unwrap();
    assert!(model.instant_exit && !model.rewards_auto_compound);
    assert_eq!(model.unbonding_period_secs, 0);
    assert_eq!(model.claim_cadence_secs, CLAIM_CADENCE_SECS);
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 1, "the pool is the only 'validator'");
    assert_eq!(vals[0].id, pool);
    assert_eq!(vals[0].total_stake, Amount(OTHER_STAKE_AXS * AXS_WEI));
    assert_eq!(chain.spendable().await.unwrap(), Amount(TREASURY_AXS * AXS_WEI));
    let now = chain.now().await.unwrap();
    assert_eq!(sync_token(&store, chain.as_ref(), now).await.unwrap().new_rewards, 0);

    // approve + stake, one journal operation each time
    for (key, amount) in [("d-1", 20_000), ("d-2", 5_000)] {
        assert_eq!(
            run(
                &store,
                chain.as_ref(),
                op(key, OpKind::Delegate, &pool, amount * AXS_WEI)
            )
            .await,
            OpOutcome::Confirmed,
            "{key}"
        );
    }
    assert_eq!(c.treasury_allowance().await.unwrap(), 0, "each approval spent exactly");
    assert_eq!(c.staked(c.treasury).await.unwrap(), 25_000 * AXS_WEI);
    assert_eq!(
        c.axs_balance(c.treasury).await.unwrap(),
        (TREASURY_AXS - 25_000) * AXS_WEI
    );
    assert_eq!(
        journal::amount_at(chain.as_ref(), &pool, StakeState::Active).await,
        25_000 * AXS_WEI
    );

    // a day's reward, pro rata: 25 000 of 175 000 staked
    c.distribute_rewards(1_750 * AXS_WEI).await.unwrap();
    let expected = 250 * AXS_WEI;
    let claimable = chain.claimable().await.unwrap();
    assert_eq!(claimable.len(), 1);
    assert!(claimable[0].1 .0.abs_diff(expected) <= 1, "{claimable:?}");
    assert_eq!(
        settle(&c, chain.as_ref(), &store).await.new_rewards,
        0,
        "accrued is not realized"
    );
    c.mine(MIN_CLAIMED_BLOCKS).await.unwrap();
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("c-1", OpKind::Claim, &pool, claimable[0].1 .0)
        )
        .await,
        OpOutcome::Confirmed
    );
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!(
        (synced.new_rewards, synced.new_amount),
        (1, claimable[0].1),
        "{synced:?}"
    );
    assert_eq!(settle(&c, chain.as_ref(), &store).await.new_rewards, 0, "synced once");
    // the next claim waits minClaimedBlocks: refused by name, nothing signed
    c.distribute_rewards(1_750 * AXS_WEI).await.unwrap();
    let early = chain.claim_rewards("c-early", &pool).await.unwrap_err();
    assert!(
        matches!(early, AdapterError::Rejected { .. }) && early.to_string().contains("claimed too recently"),
        "{early}"
    );

    // instant exit: one withdraw (unstake), the AXS back at once
    let before = c.axs_balance(c.treasury).await.unwrap();
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("w-1", OpKind::Withdraw, &pool, 8_000 * AXS_WEI)
        )
        .await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.axs_balance(c.treasury).await.unwrap() - before, 8_000 * AXS_WEI);
    assert_eq!(c.staked(c.treasury).await.unwrap(), 17_000 * AXS_WEI);
    settle(&c, chain.as_ref(), &store).await;
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), axs, 0, now).await.unwrap();
    assert!(rep.alert_id.is_none(), "zero drift: {:?}", rep.lines);
    assert!(rep.lines.iter().all(|l| l.drift == 0), "{:?}", rep.lines);
    for k in ["d-1", "d-2", "c-1", "w-1"] {
        assert_eq!(
            store.operation(k).await.unwrap().unwrap().state,
            OperationState::Reconciled,
            "{k}"
        );
    }
}

/// The approval and the stake are signed together: a reply lost after either step is
/// resolved by sending the same two transactions again, never by a second stake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_resolves_without_a_second_stake() {
    let c = start_ronin(0, 1).await.unwrap();
    let (chain, pool) = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let mut expected = 0u128;
    for (key, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(key, OpKind::Delegate, &pool, 3_000 * AXS_WEI);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, evm::exec_config()).await;
        assert_eq!(recovered, vec![(key.to_string(), OpOutcome::Confirmed)]);
        expected += 3_000 * AXS_WEI;
        assert_eq!(
            c.staked(c.treasury).await.unwrap(),
            expected,
            "{key}: exactly one stake"
        );
    }
    assert_eq!(
        c.axs_balance(c.treasury).await.unwrap(),
        (TREASURY_AXS - 6_000) * AXS_WEI
    );
    assert_eq!(c.treasury_allowance().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_bad_requests_are_typed_and_change_nothing() {
    let c = start_ronin(0, 1).await.unwrap();
    let (chain, pool) = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let before = c.axs_balance(c.treasury).await.unwrap();

    // not the pool: refused before signing; the journal records the failure
    let other = "0x0000000000000000000000000000000000002002";
    let out = run(&store, chain.as_ref(), op("d-other", OpKind::Delegate, other, AXS_WEI)).await;
    assert!(matches!(out, OpOutcome::Failed(_)), "{out:?}");
    assert_eq!(
        store.operation("d-other").await.unwrap().unwrap().state,
        OperationState::Failed
    );
    let huge = chain
        .delegate("d-huge", &pool, Amount((TREASURY_AXS + 1) * AXS_WEI))
        .await
        .unwrap_err();
    assert!(matches!(huge, AdapterError::InsufficientFunds { .. }), "{huge}");
    let und = chain.undelegate("u-1", &pool, Amount(AXS_WEI)).await.unwrap_err();
    assert!(matches!(und, AdapterError::BadInput { .. }), "{und}");
    let w = chain.withdraw("w-none", &pool, Amount(AXS_WEI)).await.unwrap_err();
    assert!(matches!(w, AdapterError::BadInput { .. }), "{w}");
    c.mine(MIN_CLAIMED_BLOCKS).await.unwrap();
    let claim = chain.claim_rewards("c-none", &pool).await.unwrap_err();
    assert!(
        matches!(claim, AdapterError::Rejected { .. }) && claim.to_string().contains("no pending rewards"),
        "{claim}"
    );
    assert_eq!(c.axs_balance(c.treasury).await.unwrap(), before, "nothing moved");
    assert_eq!(c.treasury_allowance().await.unwrap(), 0, "no approval left behind");
}

/// The stand-in speaks the adapter's interface: every pool and token function and the
/// reward event the adapter binds are in it.
#[test]
fn success_stand_in_matches_the_adapter_interface() {
    let compiled = compile(&contracts_dir().join("ronin/AxsStakingPool.sol")).unwrap();
    let pool = &compiled["AxsStakingPool"];
    let missing = pool.missing_functions(IAxsStakingPool::IAxsStakingPoolCalls::selectors());
    assert!(missing.is_empty(), "pool functions missing: {missing:?}");
    let missing = compiled["MockAxs"].missing_functions(IErc20::IErc20Calls::selectors());
    assert!(missing.is_empty(), "AXS functions missing: {missing:?}");
    let events = pool.signature_hashes("event");
    for topic in [
        IAxsStakingPool::RewardClaimed::SIGNATURE_HASH,
        IAxsStakingPool::Staked::SIGNATURE_HASH,
        IAxsStakingPool::Unstaked::SIGNATURE_HASH,
    ] {
        assert!(events.contains(&topic.0), "event {topic} missing");
    }
}

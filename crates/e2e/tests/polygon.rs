//! The POL adapter against a real EVM node: anvil (`--chain-id 1`) with our StakeManager /
//! ValidatorShare / StakingInfo / POL stand-in, driven through the operations journal:
//! delegation in one transaction with an EIP-2612 permit, rewards claimed and paid out
//! by buys and sells (all realized through StakingInfo's DelegatorClaimedRewards),
//! undelegation into an unbond nonce, early withdrawal refused, withdrawal after
//! `withdrawalDelay` checkpoints, reconciliation with zero drift; a dropped reply resolved
//! without a second delegation; bad requests and slashing; validators' performance from
//! the checkpoints they signed.
//!
//! `cargo nextest run -p softstake-e2e --features evm-anvil` (needs anvil and solc-js:
//! `scripts/setup.sh` installs them; `scripts/test.sh` runs this).
#![cfg(feature = "evm-anvil")]

use std::sync::Arc;

use alloy::primitives::U256;
use alloy::sol_types::{SolEvent, SolInterface};

use softstake_adapters::evm::polygon::{IRootChain, IStakingInfo, IValidatorShare, PolygonAdapter};
use softstake_adapters::traits::{OpKind, StakeState};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::evm::{self, compile, contracts_dir, evm_config};
use softstake_e2e::journal;
use softstake_e2e::polygon::{start_polygon, LocalPolygon, POL_WEI, TREASURY_POL};
use softstake_node::treasury::executor::{CrashPoint, OpOutcome};
use softstake_node::treasury::{reconcile_token, sync_token};
use softstake_store::{NewOperation, OperationState, Store};

const CONFIRMATIONS: u64 = 2;

fn adapter(c: &LocalPolygon) -> Arc<dyn ChainAdapter> {
    let cfg = evm_config(&c.url, 1, CONFIRMATIONS);
    let a = PolygonAdapter::new(cfg, SecretBytes::new(c.treasury_key.to_vec()), c.stake_manager).unwrap();
    journal::guarded(a, 500, 5)
}

fn op(key: &str, kind: OpKind, validator: u64, wei: u128) -> NewOperation {
    journal::op("POL", key, kind, &validator.to_string(), wei)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, evm::exec_config()).await
}

async fn amount_at(chain: &dyn ChainAdapter, v: u64, state: StakeState) -> u128 {
    journal::amount_at(chain, &v.to_string(), state).await
}

async fn store(dir: &tempfile::TempDir) -> Store {
    journal::sqlite_store(dir.path(), "pol").await
}

async fn settle(c: &LocalPolygon, chain: &dyn ChainAdapter, store: &Store) -> softstake_node::treasury::SyncReport {
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    sync_token(store, chain, now).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_pol_stake_lifecycle_on_anvil() {
    let c = start_polygon(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let pol = reg.get("POL").unwrap();
    let (v8, v9) = (c.validators[0], c.validators[1]);
    assert_eq!((v8, v9), (8, 9));

    let model = chain.liquidity_model().await.unwrap();
    assert_eq!(model.unbonding_period_secs, 80 * 1_800, "withdrawalDelay × checkpoint");
    assert!(model.epoch_aligned && !model.rewards_auto_compound);
    assert_eq!(model.min_delegation, Amount(POL_WEI), "ValidatorShare.minAmount");
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!((vals[0].id.as_str(), vals[0].commission_bps), ("8", 1_000));
    assert_eq!(chain.spendable().await.unwrap(), Amount(TREASURY_POL * POL_WEI));

    let now = chain.now().await.unwrap();
    assert_eq!(sync_token(&store, chain.as_ref(), now).await.unwrap().new_rewards, 0);
    // one transaction each: the permit rides inside buyVoucherWithPermit
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("d-8", OpKind::Delegate, v8, 20_000 * POL_WEI)
        )
        .await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("d-9", OpKind::Delegate, v9, 5_000 * POL_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.treasury_allowance().await.unwrap(), 0, "the permit was spent exactly");
    assert_eq!(
        c.pol_balance(c.treasury).await.unwrap(),
        (TREASURY_POL - 25_000) * POL_WEI
    );
    assert_eq!(
        amount_at(chain.as_ref(), v8, StakeState::Active).await,
        20_000 * POL_WEI
    );

    // a checkpoint reward: delegators' part (by delegated share of the validator's stake)
    // after the 10 % commission; all of v8's delegation is ours
    c.distribute_rewards(v8, 2_200 * POL_WEI).await.unwrap();
    let expected = 2_200 * POL_WEI * 20_000 / 2_020_000 * 90 / 100;
    let claimable = chain.claimable().await.unwrap();
    let liquid = claimable.iter().find(|(v, _)| v == "8").unwrap().1 .0;
    assert!(liquid.abs_diff(expected) <= 2, "{liquid} vs {expected}");
    assert_eq!(
        settle(&c, chain.as_ref(), &store).await.new_rewards,
        0,
        "accrued is not realized"
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("c-8", OpKind::Claim, v8, liquid)).await,
        OpOutcome::Confirmed
    );
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!(
        (synced.new_rewards, synced.new_amount),
        (1, Amount(liquid)),
        "{synced:?}"
    );
    assert_eq!(settle(&c, chain.as_ref(), &store).await.new_rewards, 0, "synced once");

    // a reward paid out by a sell (no claim of its own) is realized as well
    c.distribute_rewards(v9, 1_000 * POL_WEI).await.unwrap();
    let pending_v9 = chain
        .claimable()
        .await
        .unwrap()
        .into_iter()
        .find(|(v, _)| v == "9")
        .unwrap()
        .1;
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("u-9", OpKind::Undelegate, v9, 5_000 * POL_WEI)
        )
        .await,
        OpOutcome::Confirmed
    );
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, pending_v9), "{synced:?}");
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("u-8", OpKind::Undelegate, v8, 8_000 * POL_WEI)
        )
        .await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        amount_at(chain.as_ref(), v9, StakeState::Deactivating).await,
        5_000 * POL_WEI
    );
    assert_eq!(
        amount_at(chain.as_ref(), v8, StakeState::Active).await,
        12_000 * POL_WEI
    );
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), pol, 0, now).await.unwrap();
    assert!(rep.alert_id.is_none(), "zero drift while unbonding: {:?}", rep.lines);

    // not before withdrawalDelay (80) checkpoints
    let early = chain
        .withdraw("w-early", "9", Amount(5_000 * POL_WEI))
        .await
        .unwrap_err();
    assert!(matches!(early, AdapterError::BadInput { .. }), "{early}");
    c.advance_epoch(79).await.unwrap();
    assert_eq!(amount_at(chain.as_ref(), v9, StakeState::Withdrawable).await, 0);
    c.advance_epoch(1).await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    assert_eq!(
        amount_at(chain.as_ref(), v9, StakeState::Withdrawable).await,
        5_000 * POL_WEI
    );
    let before = c.pol_balance(c.treasury).await.unwrap();
    assert_eq!(
        run(&store, chain.as_ref(), op("w-9", OpKind::Withdraw, v9, 5_000 * POL_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("w-8", OpKind::Withdraw, v8, 8_000 * POL_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        c.pol_balance(c.treasury).await.unwrap() - before,
        13_000 * POL_WEI,
        "every unbonded POL is back (gas is paid in ETH)"
    );
    settle(&c, chain.as_ref(), &store).await;
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), pol, 0, now).await.unwrap();
    assert!(
        rep.alert_id.is_none(),
        "zero drift after the withdrawals: {:?}",
        rep.lines
    );
    assert!(rep.lines.iter().all(|l| l.drift == 0), "{:?}", rep.lines);
    for k in ["d-8", "d-9", "c-8", "u-9", "u-8", "w-9", "w-8"] {
        assert_eq!(
            store.operation(k).await.unwrap().unwrap().state,
            OperationState::Reconciled,
            "{k}"
        );
    }

    // a slash lowers the exchange rate: a loss, shown as drift
    c.slash(v8, 202_000 * POL_WEI).await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), pol, 0, now).await.unwrap();
    assert!(rep.alert_id.is_some(), "a slash raises a drift alert: {:?}", rep.lines);
    let line = rep.lines.iter().find(|l| l.validator == "8").unwrap();
    assert!(line.drift < 0, "{line:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_resolves_without_a_second_delegation() {
    let c = start_polygon(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let v = c.validators[2];
    let mut expected = 0u128;
    for (key, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(key, OpKind::Delegate, v, 3_000 * POL_WEI);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, evm::exec_config()).await;
        assert_eq!(recovered, vec![(key.to_string(), OpOutcome::Confirmed)]);
        expected += 3_000 * POL_WEI;
        assert_eq!(
            amount_at(chain.as_ref(), v, StakeState::Active).await,
            expected,
            "{key}: exactly one delegation"
        );
    }
    assert_eq!(
        c.pol_balance(c.treasury).await.unwrap(),
        (TREASURY_POL - 6_000) * POL_WEI
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_bad_requests_are_typed_and_change_nothing() {
    let c = start_polygon(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let before = c.pol_balance(c.treasury).await.unwrap();

    // no such validator: refused before signing; the journal records the failure
    let out = run(&store, chain.as_ref(), op("d-none", OpKind::Delegate, 3, POL_WEI)).await;
    assert!(matches!(out, OpOutcome::Failed(_)), "{out:?}");
    assert_eq!(
        store.operation("d-none").await.unwrap().unwrap().state,
        OperationState::Failed
    );
    // more POL than the treasury holds
    let huge = chain
        .delegate("d-huge", "8", Amount((TREASURY_POL + 1) * POL_WEI))
        .await
        .unwrap_err();
    assert!(matches!(huge, AdapterError::InsufficientFunds { .. }), "{huge}");
    // nothing staked: nothing to sell; nothing accrued: withdrawRewards reverts with its reason
    let sell = chain.undelegate("u-none", "8", Amount(POL_WEI)).await.unwrap_err();
    assert!(matches!(sell, AdapterError::BadInput { .. }), "{sell}");
    let claim = chain.claim_rewards("c-none", "8").await.unwrap_err();
    assert!(
        matches!(claim, AdapterError::Rejected { .. }) && claim.to_string().contains("Too small rewards amount"),
        "{claim}"
    );
    assert_eq!(c.pol_balance(c.treasury).await.unwrap(), before, "nothing moved");
}

alloy::sol! {
    #[sol(rpc)]
    interface IStakingInfoLog {
        function logDelegatorClaimRewards(uint256 validatorId, address user, uint256 rewards) external;
    }
}

/// A look-alike `DelegatorClaimedRewards` event from any contract but the StakeManager's
/// own logger is not a reward: anyone can emit one naming the treasury.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_spoofed_reward_events_are_not_realized() {
    let c = start_polygon(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let now = chain.now().await.unwrap();
    sync_token(&store, chain.as_ref(), now).await.unwrap();
    // a second StakingInfo, deployed by a stranger, who may then log whatever it likes
    let compiled = compile(&contracts_dir().join("polygon/StakeManager.sol")).unwrap();
    let fake = c.deploy(&compiled["StakingInfo"].bin, &[]).await.unwrap();
    IStakingInfoLog::new(fake, &c.funder)
        .logDelegatorClaimRewards(U256::from(8u64), c.treasury, U256::from(1_000 * POL_WEI))
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!(synced.new_rewards, 0, "{synced:?}");
}

/// The stand-in speaks the adapter's interface: every ValidatorShare function and the
/// StakingInfo event the adapter binds (0xPolygon/pos-contracts signatures) are in it.
#[test]
fn success_stand_in_matches_the_adapter_interface() {
    let compiled = compile(&contracts_dir().join("polygon/StakeManager.sol")).unwrap();
    let missing = compiled["ValidatorShare"].missing_functions(IValidatorShare::IValidatorShareCalls::selectors());
    assert!(missing.is_empty(), "ValidatorShare functions missing: {missing:?}");
    let missing = compiled["StakeManager"]
        .missing_functions(softstake_adapters::evm::polygon::IStakeManager::IStakeManagerCalls::selectors());
    assert!(missing.is_empty(), "StakeManager functions missing: {missing:?}");
    let events = compiled["StakingInfo"].signature_hashes("event");
    assert!(events.contains(&IStakingInfo::DelegatorClaimedRewards::SIGNATURE_HASH.0));
    let missing = compiled["RootChain"].missing_functions(IRootChain::IRootChainCalls::selectors());
    assert!(missing.is_empty(), "RootChain functions missing: {missing:?}");
    let events = compiled["RootChain"].signature_hashes("event");
    assert!(events.contains(&IRootChain::NewHeaderBlock::SIGNATURE_HASH.0));
    let missing = compiled["PolToken"]
        .missing_functions(softstake_adapters::evm::polygon::IPolToken::IPolTokenCalls::selectors());
    assert!(missing.is_empty(), "POL functions missing: {missing:?}");
}

/// Performance is checkpoint signing, read back from the RootChain's checkpoints: a
/// validator that signed half of them is rated 50 %, one added since is judged only on
/// the checkpoints after its activation; before, every active validator was 100 %. A
/// checkpoint without more than 2/3 of the stake is refused by the RootChain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_performance_is_checkpoint_signing() {
    let c = start_polygon(0, 1).await.unwrap();
    let chain = adapter(&c);
    let perf = |vs: Vec<softstake_adapters::traits::ValidatorCandidate>| {
        vs.into_iter()
            .map(|v| (v.id.parse::<u64>().unwrap(), v.performance_bps))
            .collect::<std::collections::BTreeMap<u64, u32>>()
    };
    let [a, b, d] = [c.validators[0], c.validators[1], c.validators[2]];
    let before = perf(chain.validators().await.unwrap());
    assert!(before.values().all(|p| *p == 10_000), "no checkpoint yet: {before:?}");

    for signed_by in [&[a, b, d][..], &[a, b], &[a, b], &[a, b, d]] {
        c.checkpoint(signed_by).await.unwrap();
    }
    let after = perf(chain.validators().await.unwrap());
    assert_eq!(after[&a], 10_000);
    assert_eq!(after[&b], 10_000);
    assert_eq!(after[&d], 5_000, "signed 2 of 4: {after:?}");

    // validators 9 and 10 hold 1.5 M of 3.5 M POL: not a checkpoint
    assert!(c.checkpoint(&[b, d]).await.is_err());

    // a validator added now is judged from its activation on
    let e = c.add_validator(100_000, 5).await.unwrap();
    c.checkpoint(&[a, b]).await.unwrap();
    let later = perf(chain.validators().await.unwrap());
    assert_eq!(later[&e], 0, "missed the one checkpoint since it joined: {later:?}");
    assert_eq!(later[&d], 4_000, "signed 2 of 5");
    assert_eq!(later[&a], 10_000);
}

/// Multicall3 cuts the per-validator fan-out: reading positions, validators and claimable
/// rewards costs as many `eth_call`s with 13 validators as with 3 (one call per function
/// and batch). Before, each read made about one call per validator per function.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_reads_cost_the_same_calls_whatever_the_validator_count() {
    let c = start_polygon(0, 1).await.unwrap();
    let counter = evm::count_eth_calls(&c.url).await.unwrap();
    let cfg = evm_config(&counter.url, 1, CONFIRMATIONS);
    let a = PolygonAdapter::new(cfg, SecretBytes::new(c.treasury_key.to_vec()), c.stake_manager).unwrap();
    let chain = journal::guarded(a, 500, 5);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("m-d", OpKind::Delegate, c.validators[0], 10 * POL_WEI)
        )
        .await,
        OpOutcome::Confirmed
    );
    let reads = || async {
        counter.take();
        assert_eq!(chain.positions().await.unwrap().len(), 1);
        let n = chain.validators().await.unwrap().len();
        chain.claimable().await.unwrap();
        (n, counter.take())
    };
    let (three, few) = reads().await;
    for _ in 0..10 {
        c.add_validator(100_000, 5).await.unwrap();
    }
    let (thirteen, many) = reads().await;
    assert_eq!((three, thirteen), (3, 13));
    assert_eq!(many, few, "eth_calls with 13 validators against 3");
    // validators() also reads the epoch and the RootChain's address for performance
    assert!(few <= 14, "{few} eth_calls for three reads");
}

//! The APE adapter against a real EVM node: anvil (`--chain-id 33139`) with our ArbInfo
//! stand-in at 0x…65 and native yield simulated by rebasing balances: realized reward is
//! the balance growth the treasury's own transactions do not explain (deposits in,
//! payments and fees out), an unexplained fall books nothing, a treasury not earning is
//! opted in by a journaled operation, and there is nothing to delegate.
//!
//! `cargo nextest run -p softstake-e2e --features evm-anvil` (needs anvil and solc-js:
//! `scripts/setup.sh` installs them; `scripts/test.sh` runs this).
#![cfg(feature = "evm-anvil")]

use std::sync::Arc;

use alloy::network::TransactionBuilder;
use alloy::primitives::U256;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::sol_types::SolInterface;

use softstake_adapters::evm::apechain::{ApeChainAdapter, IArbInfo, ARB_INFO, NATIVE_YIELD, YIELD_AUTOMATIC};
use softstake_adapters::traits::OpKind;
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::apechain::{start_apechain, LocalApeChain};
use softstake_e2e::evm::{self, compile, contracts_dir, evm_config};
use softstake_e2e::journal;
use softstake_node::treasury::executor::{CrashPoint, OpOutcome};
use softstake_node::treasury::{reconcile_token, sync_token, SyncReport};
use softstake_store::{NewOperation, OperationState, Store};

const CONFIRMATIONS: u64 = 2;
const APE: u128 = 1_000_000_000_000_000_000;
/// Each dev account's APE at start.
const START_APE: u64 = 10_000;

fn adapter(c: &LocalApeChain) -> Arc<dyn ChainAdapter> {
    let cfg = evm_config(&c.url, 33139, CONFIRMATIONS);
    let a = ApeChainAdapter::new(cfg, SecretBytes::new(c.treasury_key.to_vec()), ARB_INFO).unwrap();
    journal::guarded(a, 500, 5)
}

fn op(key: &str, kind: OpKind, validator: &str, wei: u128) -> NewOperation {
    journal::op("APE", key, kind, validator, wei)
}

async fn store(dir: &tempfile::TempDir) -> Store {
    journal::sqlite_store(dir.path(), "ape").await
}

async fn settle(c: &LocalApeChain, chain: &dyn ChainAdapter, store: &Store) -> SyncReport {
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    sync_token(store, chain, now).await.unwrap()
}

/// Sends `wei` APE from dev account `from` to `to`, to its receipt.
async fn transfer(c: &LocalApeChain, from: usize, to: alloy::primitives::Address, wei: u128) {
    let p = c.account(from).unwrap();
    let tx = TransactionRequest::default().with_to(to).with_value(U256::from(wei));
    p.send_transaction(tx).await.unwrap().get_receipt().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_ape_yield_is_growth_not_explained_by_transfers() {
    let c = start_apechain(0, 1, START_APE).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let ape = reg.get("APE").unwrap();

    let model = chain.liquidity_model().await.unwrap();
    assert!(model.earns_in_custody, "{model:?}");
    assert!(chain.validators().await.unwrap().is_empty());
    assert!(chain.positions().await.unwrap().is_empty());
    assert!(
        chain.claimable().await.unwrap().is_empty(),
        "an EOA earns from the start"
    );
    let e = chain.delegate("d", NATIVE_YIELD, Amount(APE)).await.unwrap_err();
    assert!(matches!(e, AdapterError::BadInput { .. }), "{e}");
    assert_eq!(settle(&c, chain.as_ref(), &store).await.new_rewards, 0, "anchors");

    // a rebase of 10 bps is realized once
    let gain = c.rebase(&[c.treasury], 10, 10_000).await.unwrap()[0];
    assert_eq!(gain, START_APE as u128 * APE / 1_000);
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");
    assert_eq!(settle(&c, chain.as_ref(), &store).await.new_rewards, 0, "synced once");

    // a deposit in and a payment out (with its fee) are not yield; the rebase is
    transfer(&c, 2, c.treasury, 500 * APE).await;
    transfer(&c, 1, c.anvil.addresses()[3], 120 * APE).await;
    let gain = c.rebase(&[c.treasury], 5, 10_000).await.unwrap()[0];
    assert!(gain > 0);
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");

    // a fall no transaction explains books nothing and leaves the cursor where it was
    let cursor = store.reward_cursor("APE").await.unwrap();
    let balance = c.treasury_balance().await.unwrap();
    c.set_balance(c.treasury, balance - APE).await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    let err = sync_token(&store, chain.as_ref(), now).await.unwrap_err();
    assert!(format!("{err:#}").contains("do not"), "{err:#}");
    assert_eq!(store.reward_cursor("APE").await.unwrap(), cursor);
    // once the balance is whole again, the next rebase is all that is realized
    c.set_balance(c.treasury, balance).await.unwrap();
    let gain = c.rebase(&[c.treasury], 5, 10_000).await.unwrap()[0];
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");

    // nothing delegated: nothing to drift
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), ape, 0, now).await.unwrap();
    assert!(rep.alert_id.is_none() && rep.lines.is_empty(), "{:?}", rep.lines);
}

/// A treasury whose yield mode was set to void earns nothing; the adapter reports it as
/// claimable and the claim operation opts it back in (a reply lost on the way is
/// recovered like any other operation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_opt_in_is_a_journaled_operation() {
    let c = start_apechain(0, 1, START_APE).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    settle(&c, chain.as_ref(), &store).await;
    IArbInfo::new(ARB_INFO, c.account(1).unwrap())
        .configureVoidYield()
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(c.yield_mode(c.treasury).await.unwrap(), 1);
    let claimable = chain.claimable().await.unwrap();
    assert_eq!(claimable.len(), 1);
    assert_eq!(claimable[0].0, NATIVE_YIELD);
    assert_eq!(
        c.rebase(&[c.treasury], 10, 10_000).await.unwrap(),
        vec![0],
        "void earns nothing"
    );
    assert_eq!(settle(&c, chain.as_ref(), &store).await.new_rewards, 0);

    let o = op("opt-in", OpKind::Claim, NATIVE_YIELD, claimable[0].1 .0);
    let recovered = journal::crash_and_recover(
        &store,
        chain.as_ref(),
        o,
        CrashPoint::AfterBroadcast,
        evm::exec_config(),
    )
    .await;
    assert_eq!(recovered, vec![("opt-in".to_string(), OpOutcome::Confirmed)]);
    assert_eq!(c.yield_mode(c.treasury).await.unwrap(), YIELD_AUTOMATIC);
    assert!(chain.claimable().await.unwrap().is_empty());
    let gain = c.rebase(&[c.treasury], 10, 10_000).await.unwrap()[0];
    assert!(gain > 0);
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_delegation_requests_are_typed_and_change_nothing() {
    let c = start_apechain(0, 1, START_APE).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let before = c.treasury_balance().await.unwrap();
    for (key, kind) in [
        ("d", OpKind::Delegate),
        ("u", OpKind::Undelegate),
        ("w", OpKind::Withdraw),
    ] {
        let out = journal::run(
            &store,
            chain.as_ref(),
            op(key, kind, NATIVE_YIELD, APE),
            evm::exec_config(),
        )
        .await;
        assert!(matches!(out, OpOutcome::Failed(_)), "{key}: {out:?}");
        assert_eq!(
            store.operation(key).await.unwrap().unwrap().state,
            OperationState::Failed
        );
    }
    let e = chain.claim_rewards("c", "validator-1").await.unwrap_err();
    assert!(matches!(e, AdapterError::BadInput { .. }), "{e}");
    assert_eq!(c.treasury_balance().await.unwrap(), before, "nothing moved");
}

/// The stand-in speaks the adapter's interface: every ArbInfo function the adapter binds.
#[test]
fn success_stand_in_matches_the_adapter_interface() {
    let compiled = compile(&contracts_dir().join("apechain/ArbInfo.sol")).unwrap();
    let missing = compiled["ArbInfo"].missing_functions(IArbInfo::IArbInfoCalls::selectors());
    assert!(missing.is_empty(), "ArbInfo functions missing: {missing:?}");
}

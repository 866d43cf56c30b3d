//! The APE adapter against a real EVM node: anvil (`--chain-id 33139`) with our ArbInfo
//! stand-in at 0x…65 and native yield simulated by rebasing balances (a chain day per
//! rebase): realized reward is the balance growth between two checkpoints less the
//! treasury's flows (the journal's transactions and the custody transfers a treasury
//! user declares, each read from its receipt), with no block scan; an undeclared
//! deposit (even one made through a contract's internal call) or send stops the sync and
//! books nothing; an unexplained fall books nothing; a treasury not earning is opted in
//! by a journaled operation; there is nothing to delegate.
//!
//! `cargo nextest run -p softstake-e2e --features evm-anvil` (needs anvil and solc-js:
//! `scripts/setup.sh` installs them; `scripts/test.sh` runs this).
#![cfg(feature = "evm-anvil")]

use std::sync::Arc;

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, B256, U256};
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
use softstake_node::treasury::{declare_treasury_flow, reconcile_token, sync_token, SyncReport};
use softstake_store::{NewOperation, OperationState, Store};

const CONFIRMATIONS: u64 = 2;
const APE: u128 = 1_000_000_000_000_000_000;
/// Each dev account's APE at start.
const START_APE: u64 = 10_000;
/// A chain day: each rebase follows one, so 4 bps a rebase is 14.6 % a year, under the
/// adapter's 20 % bound.
const DAY_SECS: u64 = 86_400;

fn adapter(c: &LocalApeChain) -> Arc<dyn ChainAdapter> {
    adapter_at(c, &c.url)
}

fn adapter_at(c: &LocalApeChain, url: &str) -> Arc<dyn ChainAdapter> {
    let cfg = evm_config(url, 33139, CONFIRMATIONS);
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

/// Sends `wei` APE from dev account `from` (1 is the treasury) to `to`, to its receipt;
/// returns its hash.
async fn transfer(c: &LocalApeChain, from: usize, to: Address, wei: u128) -> B256 {
    let p = c.account(from).unwrap();
    let tx = TransactionRequest::default().with_to(to).with_value(U256::from(wei));
    p.send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap()
        .transaction_hash
}

/// A chain day passes, then the treasury rebases by `bps`; returns its gain, wei.
async fn rebase_day(c: &LocalApeChain, bps: u128) -> u128 {
    c.increase_time(DAY_SECS).await.unwrap();
    c.rebase(&[c.treasury], bps, 10_000).await.unwrap()[0]
}

/// Declares `tx` as a treasury flow (once it is confirmed), as `softstake flow` does.
async fn declare(
    c: &LocalApeChain,
    chain: &dyn ChainAdapter,
    store: &Store,
    tx: B256,
    received: Option<u128>,
) -> softstake_adapters::Result<softstake_adapters::traits::TreasuryFlow> {
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    declare_treasury_flow(
        store,
        chain,
        &format!("{tx:#x}"),
        received.map(Amount),
        Some("test"),
        now,
    )
    .await
    .map(|(f, _)| f)
    .map_err(|e| softstake_adapters::AdapterError::bad_input("test", format!("{e:#}")))
}

/// Syncs and expects a refusal that names `needle`, with nothing booked and the cursor
/// where it was.
async fn refused(c: &LocalApeChain, chain: &dyn ChainAdapter, store: &Store, needle: &str) {
    let cursor = store.reward_cursor("APE").await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    let err = sync_token(store, chain, now).await.unwrap_err();
    assert!(format!("{err:#}").contains(needle), "{err:#}");
    assert_eq!(store.reward_cursor("APE").await.unwrap(), cursor, "the cursor stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_ape_yield_is_growth_net_of_declared_flows() {
    let c = start_apechain(0, 1, START_APE).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let ape = reg.get("APE").unwrap();

    let model = chain.liquidity_model().await.unwrap();
    assert!(model.earns_in_custody, "{model:?}");
    assert!(chain.rewards_net_of_flows());
    assert!(chain.validators().await.unwrap().is_empty());
    assert!(chain.positions().await.unwrap().is_empty());
    assert!(
        chain.claimable().await.unwrap().is_empty(),
        "an EOA earns from the start"
    );
    let e = chain.delegate("d", NATIVE_YIELD, Amount(APE)).await.unwrap_err();
    assert!(matches!(e, AdapterError::BadInput { .. }), "{e}");
    assert_eq!(settle(&c, chain.as_ref(), &store).await.new_rewards, 0, "anchors");

    // a day's rebase is realized once
    let gain = rebase_day(&c, 4).await;
    assert_eq!(gain, START_APE as u128 * APE * 4 / 10_000);
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");
    assert_eq!(settle(&c, chain.as_ref(), &store).await.new_rewards, 0, "synced once");

    // a declared deposit in and a declared payment out (with its fee) are not yield
    let deposit = transfer(&c, 2, c.treasury, 500 * APE).await;
    let payment = transfer(&c, 1, c.anvil.addresses()[3], 120 * APE).await;
    let gain = rebase_day(&c, 4).await;
    let d = declare(&c, chain.as_ref(), &store, deposit, None).await.unwrap();
    assert_eq!((d.received, d.sent, d.nonce), (Amount(500 * APE), Amount::ZERO, None));
    let p = declare(&c, chain.as_ref(), &store, payment, None).await.unwrap();
    assert!(p.sent.0 > 120 * APE && p.nonce == Some(0), "{p:?}");
    assert_eq!(
        declare(&c, chain.as_ref(), &store, payment, None).await.unwrap(),
        p,
        "again: a no-op"
    );
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");

    // thousands of blocks later, a sync reads a checkpoint, not the blocks in between
    let counter = evm::count_requests(&c.url, None).await.unwrap();
    let counted = adapter_at(&c, &counter.url);
    c.mine(5_000).await.unwrap();
    let gain = rebase_day(&c, 4).await;
    counter.take();
    let synced = settle(&c, counted.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");
    let requests = counter.take();
    assert!(requests <= 12, "{requests} JSON-RPC requests for a 5 000-block window");

    // a fall no flow explains books nothing and leaves the cursor where it was
    let balance = c.treasury_balance().await.unwrap();
    c.set_balance(c.treasury, balance - APE).await.unwrap();
    refused(&c, chain.as_ref(), &store, "do not explain").await;
    // once the balance is whole again, the next rebase is all that is realized
    c.set_balance(c.treasury, balance).await.unwrap();
    let gain = rebase_day(&c, 4).await;
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");

    // nothing delegated: nothing to drift
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), ape, 0, now).await.unwrap();
    assert!(rep.alert_id.is_none() && rep.lines.is_empty(), "{:?}", rep.lines);
}

/// A custody deposit that reaches the treasury through a contract's internal call is in
/// no transaction of the treasury's: before checkpoints and declared flows it was booked
/// as yield and paid to users. Now the sync refuses growth above the yield bound, and
/// books only the rebase once the deposit is declared with its amount. An undeclared
/// plain deposit is refused the same way, and a declared amount must match the receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_undeclared_deposits_are_not_booked_as_yield() {
    let c = start_apechain(0, 1, START_APE).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    settle(&c, chain.as_ref(), &store).await;
    let compiled = compile(&contracts_dir().join("apechain/CustodyForwarder.sol")).unwrap();
    let forwarder = c.deploy(&compiled["CustodyForwarder"].bin, &[]).await.unwrap();

    // the exchange's custody contract funds the treasury by an internal call
    let call = alloy::primitives::Bytes::from(
        [
            &alloy::primitives::keccak256("pay(address)")[..4],
            &[0u8; 12][..],
            c.treasury.as_slice(),
        ]
        .concat(),
    );
    let tx = TransactionRequest::default()
        .with_to(forwarder)
        .with_value(U256::from(500 * APE))
        .with_input(call);
    let internal = c
        .account(2)
        .unwrap()
        .send_transaction(tx)
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(internal.status());
    let gain = rebase_day(&c, 4).await;
    refused(&c, chain.as_ref(), &store, "undeclared deposit").await;
    assert_eq!(
        store
            .realized_reward("APE", chain.now().await.unwrap().day())
            .await
            .unwrap(),
        Amount::ZERO
    );
    // the receipt does not show the amount: it must be named
    let e = declare(&c, chain.as_ref(), &store, internal.transaction_hash, None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--received"), "{e}");
    declare(&c, chain.as_ref(), &store, internal.transaction_hash, Some(500 * APE))
        .await
        .unwrap();
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!(
        (synced.new_rewards, synced.new_amount),
        (1, Amount(gain)),
        "only the rebase: {synced:?}"
    );

    // a plain deposit not declared is refused too; a declaration must match its value
    let plain = transfer(&c, 2, c.treasury, 50 * APE).await;
    let gain = rebase_day(&c, 4).await;
    refused(&c, chain.as_ref(), &store, "undeclared deposit").await;
    let e = declare(&c, chain.as_ref(), &store, plain, Some(49 * APE))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not the"), "{e}");
    declare(&c, chain.as_ref(), &store, plain, None).await.unwrap();
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");

    // a transaction that does not touch the treasury is refused as a flow
    let other = transfer(&c, 2, c.anvil.addresses()[4], APE).await;
    let e = declare(&c, chain.as_ref(), &store, other, None).await.unwrap_err();
    assert!(e.to_string().contains("neither comes from nor pays"), "{e}");
    assert_eq!(store.treasury_flows("APE").await.unwrap().len(), 2);
}

/// The treasury's key sends a transfer outside softstake: its nonce moved by one that no
/// flow names, so the sync stops (nothing booked) until it is declared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_undeclared_send_stops_the_sync() {
    let c = start_apechain(0, 1, START_APE).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    settle(&c, chain.as_ref(), &store).await;
    let send = transfer(&c, 1, c.anvil.addresses()[3], 10 * APE).await;
    let gain = rebase_day(&c, 4).await;
    refused(&c, chain.as_ref(), &store, "missing [0]").await;
    declare(&c, chain.as_ref(), &store, send, None).await.unwrap();
    let synced = settle(&c, chain.as_ref(), &store).await;
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(gain)), "{synced:?}");
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
    // someone with the treasury's key set it to void: a send of its own, declared
    let void = IArbInfo::new(ARB_INFO, c.account(1).unwrap())
        .configureVoidYield()
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(c.yield_mode(c.treasury).await.unwrap(), 1);
    declare(&c, chain.as_ref(), &store, void.transaction_hash, None)
        .await
        .unwrap();
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
    // the opt-in's fee is a flow read from the journal's transaction: not a loss
    let gain = rebase_day(&c, 4).await;
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

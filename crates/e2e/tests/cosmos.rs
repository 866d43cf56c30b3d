//! The Cosmos SDK adapter against our local Cosmos chain (`softstake-localchains`, feature
//! `cosmos`): the SDK's gRPC services and CometBFT's `broadcast_tx_sync`, transactions
//! checked as the ante handlers check them (signature over the SignDoc, sequence, fee,
//! timeout height) and x/staking's and x/distribution's rules, driven through the
//! operations journal: delegate to two validators, rewards over several days claimed and
//! realized from the transactions' `withdraw_rewards` events (with the payout an
//! undelegation triggers), undelegate into a 21-day unbonding entry, the chain paying it
//! back by itself and the node booking that return as the withdrawal, reconciliation with
//! zero drift; a fee below the chain's minimum as a typed rejection with nothing recorded
//! as done; bad signatures and spent sequences refused with the SDK's codes; a dropped
//! reply resolved without a second delegation; the 8th unbonding entry refused.
//!
//! `cargo nextest run -p softstake-e2e --features cosmos-local` (`scripts/test.sh` runs it).
#![cfg(feature = "cosmos-local")]

use std::sync::Arc;

use base64::Engine as _;
use softstake_adapters::cosmos::{address_of, tx_hash, CosmosAdapter, CosmosConfig};
use softstake_adapters::traits::{OpKind, StakeState, TxStatus};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes, SignedTx};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_localchains::cosmos::{start, validators_from_csv, CosmosGenesis, LocalCosmos, ValidatorSpec};
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::{positions_of, sync_token};
use softstake_store::{NewOperation, OperationState, Store};

const ATOM: u128 = 1_000_000;
const DAY_SECS: i64 = 86_400;
const CHAIN_ID: &str = "softstake-e2e-1";

fn key() -> SecretBytes {
    SecretBytes::new(vec![42; 32])
}

fn treasury() -> String {
    address_of(&key(), "cosmos").unwrap()
}

fn validators() -> Vec<ValidatorSpec> {
    validators_from_csv(
        include_str!("../../../data/cosmos/validators_cosmoshub3_height1685677.csv"),
        10,
    )
    .unwrap()
}

fn genesis() -> CosmosGenesis {
    CosmosGenesis {
        chain_id: CHAIN_ID.into(),
        bond_denom: "uatom".into(),
        validators: validators(),
        accounts: vec![(treasury(), 1_000_000 * ATOM)],
        genesis_secs: 1_750_000_000,
        block_secs: 6,
        unbonding_time_secs: 21 * DAY_SECS,
        max_entries: 7,
        supply: 254_624_972_017_526,
        inflation_bps: 700,
        community_tax_bps: 200,
        min_gas_price: (5, 1_000),
        tick_ms: 20,
    }
}

fn config(c: &LocalCosmos, gas_price_numerator: u64) -> CosmosConfig {
    CosmosConfig {
        grpc_url: c.grpc_url.clone(),
        rpc_url: c.rpc_url.clone(),
        chain_id: CHAIN_ID.into(),
        account_prefix: "cosmos".into(),
        gas_per_message: 300_000,
        gas_price_numerator,
        gas_price_denominator: 1_000,
        timeout_blocks: 50,
        max_operations_per_epoch: 32,
    }
}

fn adapter(c: &LocalCosmos) -> Arc<dyn ChainAdapter> {
    journal::guarded(CosmosAdapter::new(config(c, 5), key()).unwrap(), 1_000, 3)
}

fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 200,
        poll_interval: std::time::Duration::from_millis(50),
        max_attempts: 3,
        drill: None,
    }
}

fn op(key: &str, kind: OpKind, validator: &str, uatom: u128) -> NewOperation {
    journal::op("ATOM", key, kind, validator, uatom)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, exec()).await
}

/// Signs and sends outside the journal, then waits until the chain holds it.
async fn land(c: &LocalCosmos, chain: &dyn ChainAdapter, tx: &SignedTx) -> TxStatus {
    chain.broadcast(tx).await.unwrap();
    c.produce(1);
    chain.tx_status(tx).await.unwrap()
}

/// Production signing: the treasury key is generated inside a SoftHSM2 token (PKCS#11),
/// the genesis funds its address, and the local chain's ante checks (signature over the
/// SignDoc with the key from the first transaction's SignerInfo, sequence) accept what
/// the token signed through cosmrs's `EcdsaSigner`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_cosmos_operations_signed_by_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let key = softstake_e2e::hsm_key(
        dir.path(),
        "atom-1",
        softstake_adapters::pkcs11::KeyAlgorithm::Secp256k1,
    );
    let me = key.address("cosmos", "cosmos").unwrap();
    let c = start(
        CosmosGenesis {
            accounts: vec![(me.clone(), 10_000 * ATOM)],
            ..genesis()
        },
        0,
        0,
    )
    .await
    .unwrap();
    let a = CosmosAdapter::new(config(&c, 5), softstake_adapters::TreasuryKey::Hsm(key)).unwrap();
    assert_eq!(a.address(), me, "the adapter acts for the HSM key's address");
    let chain = journal::guarded(a, 1_000, 3);
    let store = journal::sqlite_store(dir.path(), "cosmos-hsm").await;
    let vs = validators();
    let v0 = vs[0].operator_address.as_str();
    for (k, kind, atoms) in [("hsm-d", OpKind::Delegate, 3_000), ("hsm-u", OpKind::Undelegate, 1_000)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, kind, v0, atoms * ATOM)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    assert_eq!(c.delegation(&me, v0), 2_000 * ATOM);
    assert_eq!(
        journal::amount_at(chain.as_ref(), v0, StakeState::Deactivating).await,
        1_000 * ATOM
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_cosmos_stake_lifecycle_on_the_local_chain() {
    let c = start(genesis(), 0, 0).await.unwrap();
    let chain = adapter(&c);
    let me = treasury();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "cosmos").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let atom = reg.get("ATOM").unwrap();
    let vs = validators();
    let (v0, v1) = (vs[0].operator_address.as_str(), vs[1].operator_address.as_str());

    let model = chain.liquidity_model().await.unwrap();
    assert_eq!(
        model.unbonding_period_secs,
        21 * 86_400,
        "unbonding_time from the chain"
    );
    assert!(!model.rewards_auto_compound && !model.claim_all_validators);
    assert!(chain.unbonding_returns_itself() && chain.pooled_unbonding().is_none());
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 10);
    let c0 = vals.iter().find(|v| v.id == v0).unwrap();
    assert_eq!(
        u128::from(c0.commission_bps),
        vs[0].commission_dec * 10_000 / 1_000_000_000_000_000_000,
        "commission from the chain"
    );

    let before = c.balance(&me);
    for (k, v, atoms) in [("d-a", v0, 3_000), ("d-b", v1, 1_000)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, OpKind::Delegate, v, atoms * ATOM)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    assert_eq!(
        (c.delegation(&me, v0), c.delegation(&me, v1)),
        (3_000 * ATOM, 1_000 * ATOM)
    );
    // each paid for the gas Simulate reported plus the 1.3 margin, not the 300k cap
    let mut fees = 0;
    for k in ["d-a", "d-b"] {
        let id = store.operation(k).await.unwrap().unwrap().tx_id.unwrap();
        let (wanted, used) = c.gas_of(&id).unwrap();
        assert_eq!(wanted, softstake_adapters::cosmos::gas_with_margin(used), "{k}");
        assert!(used < wanted && wanted < 300_000, "{k}: {used} used, {wanted} wanted");
        fees += (u128::from(wanted) * 5).div_ceil(1_000);
    }
    assert!(fees < 2 * 1_500, "below two fees at the cap: {fees}");
    assert_eq!(before - c.balance(&me), 4_000 * ATOM + fees, "stake plus the two fees");
    assert_eq!(
        journal::amount_at(chain.as_ref(), v1, StakeState::Active).await,
        1_000 * ATOM
    );

    // rewards accrue per block; a claim pays one validator's, realized from its event
    c.advance_secs(3 * DAY_SECS);
    let pending = c.pending_reward(&me, v0);
    assert!(pending > 0, "three days of rewards");
    let claimable = chain.claimable().await.unwrap();
    let listed = claimable.iter().find(|(v, _)| v == v0).unwrap().1;
    assert!(listed.0 >= pending, "{listed} vs {pending}");
    let bal = c.balance(&me);
    assert_eq!(
        run(&store, chain.as_ref(), op("c-1", OpKind::Claim, v0, pending)).await,
        OpOutcome::Confirmed
    );
    let claim_id = store.operation("c-1").await.unwrap().unwrap().tx_id.unwrap();
    let claim_fee = (u128::from(c.gas_of(&claim_id).unwrap().0) * 5).div_ceil(1_000);
    let claimed = c.balance(&me) + claim_fee - bal;
    assert!(claimed >= pending);
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        (synced.new_rewards, synced.new_amount),
        (1, Amount(claimed)),
        "the claim's withdraw_rewards"
    );

    c.advance_secs(2 * DAY_SECS);
    assert_eq!(
        run(&store, chain.as_ref(), op("c-2", OpKind::Claim, v1, 1)).await,
        OpOutcome::Confirmed
    );
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!(synced.new_rewards, 1, "booked once");
    let again = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!(again.new_rewards, 0, "nothing twice");

    // undelegate: an unbonding entry for 21 days; the undelegation pays v0's reward too
    assert_eq!(
        run(&store, chain.as_ref(), op("u-a", OpKind::Undelegate, v0, 1_000 * ATOM)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.delegation(&me, v0), 2_000 * ATOM);
    assert_eq!(c.unbonding(&me, v0).len(), 1);
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!(synced.new_rewards, 1, "the payout the undelegation triggered");
    assert_eq!(
        journal::amount_at(chain.as_ref(), v0, StakeState::Deactivating).await,
        1_000 * ATOM
    );
    let early = positions_of(&store, chain.as_ref()).await.unwrap();
    assert!(
        !early.iter().any(|p| p.state == StakeState::Withdrawable),
        "nothing to withdraw while unbonding: {early:?}"
    );

    // after 21 days the chain pays the entry back itself; the node books it as the withdrawal
    let bal = c.balance(&me);
    c.advance_secs(21 * DAY_SECS + 6);
    assert!(c.unbonding(&me, v0).is_empty());
    assert_eq!(c.balance(&me) - bal, 1_000 * ATOM, "paid back by EndBlocker");
    let ready = positions_of(&store, chain.as_ref()).await.unwrap();
    let w = ready
        .iter()
        .find(|p| p.state == StakeState::Withdrawable)
        .expect("the returned stake, withdrawable");
    assert_eq!((w.validator.as_str(), w.amount), (v0, Amount(1_000 * ATOM)));
    let bal = c.balance(&me);
    assert_eq!(
        run(&store, chain.as_ref(), op("w-a", OpKind::Withdraw, v0, 1_000 * ATOM)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.balance(&me), bal, "the withdrawal sends nothing");
    let after = positions_of(&store, chain.as_ref()).await.unwrap();
    assert!(!after.iter().any(|p| p.state == StakeState::Withdrawable), "{after:?}");

    journal::assert_zero_drift(&store, chain.as_ref(), atom, &["d-a", "d-b", "u-a", "w-a"]).await;
}

/// A fee below the chain's minimum gas price: refused at CheckTx (sdk code 13), the
/// journal records the failure, nothing moves. A forged signature and a spent sequence are
/// refused with the SDK's codes; a transaction past its timeout height can never land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fee_signature_and_sequence_errors_are_typed_rejections() {
    let mut g = genesis();
    g.tick_ms = 0;
    let c = start(g, 0, 0).await.unwrap();
    let me = treasury();
    let v = validators()[0].operator_address.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "cosmos").await;
    let before = c.balance(&me);

    let cheap = journal::guarded(CosmosAdapter::new(config(&c, 1), key()).unwrap(), 1_000, 3);
    let out = run(&store, cheap.as_ref(), op("d-cheap", OpKind::Delegate, &v, 10 * ATOM)).await;
    assert!(
        matches!(&out, OpOutcome::Failed(r) if r.contains("insufficient fees")),
        "{out:?}"
    );
    assert_eq!(
        store.operation("d-cheap").await.unwrap().unwrap().state,
        OperationState::Failed
    );
    c.produce(1);
    assert_eq!(
        (c.balance(&me), c.delegation(&me, &v), c.sequence(&me)),
        (before, 0, 0),
        "nothing moved"
    );

    let chain = adapter(&c);
    // a forged signature: code 4, never lands
    let good = chain.delegate("s-1", &v, Amount(10 * ATOM)).await.unwrap();
    let mut raw = base64::engine::general_purpose::STANDARD.decode(&good.payload).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let forged = SignedTx {
        tx_id: tx_hash(&raw),
        payload: base64::engine::general_purpose::STANDARD.encode(&raw),
        valid_until: None,
    };
    let e = chain.broadcast(&forged).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("sdk code 4") && reason.contains("signature verification failed")),
        "{e}"
    );
    assert_eq!(chain.tx_status(&forged).await.unwrap(), TxStatus::NotFound);

    // the good one lands; a second transaction signed for the same sequence is refused
    let stale = chain.delegate("s-2", &v, Amount(ATOM)).await.unwrap();
    assert!(matches!(
        land(&c, chain.as_ref(), &good).await,
        TxStatus::Confirmed { .. }
    ));
    assert_eq!(c.delegation(&me, &v), 10 * ATOM);
    let e = chain.broadcast(&stale).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("sdk code 32") && reason.contains("account sequence mismatch")),
        "{e}"
    );
    assert_eq!(
        chain.tx_status(&stale).await.unwrap(),
        TxStatus::NotFound,
        "its sequence is spent, but only the timeout height proves it never lands"
    );

    // past its timeout height: refused, and expired
    let late = chain.delegate("s-3", &v, Amount(ATOM)).await.unwrap();
    c.produce(51);
    let e = chain.broadcast(&late).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("tx timeout height")),
        "{e}"
    );
    assert_eq!(chain.tx_status(&late).await.unwrap(), TxStatus::Expired);
    assert_eq!(
        chain.tx_status(&stale).await.unwrap(),
        TxStatus::Expired,
        "past its timeout too"
    );
    assert_eq!(c.delegation(&me, &v), 10 * ATOM, "neither landed");

    // the staking module's limit: at most 7 unbonding entries per pair
    for i in 0..7 {
        let u = chain.undelegate(&format!("u-{i}"), &v, Amount(ATOM)).await.unwrap();
        assert!(
            matches!(land(&c, chain.as_ref(), &u).await, TxStatus::Confirmed { .. }),
            "u-{i}"
        );
    }
    let e = chain.undelegate("u-7", &v, Amount(ATOM)).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::BadInput { message, .. } if message.contains("max_entries")),
        "{e}"
    );
}

/// A delegation that landed while the node's tx indexer lags (or is pruned) is not found
/// by `GetTx` although the account's sequence moved on: that is no proof it never landed,
/// so it stays NotFound (the journal waits) until the indexer shows it, never Expired
/// (which would sign a second delegation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_landed_but_unindexed_is_not_expired() {
    let c = start(genesis(), 0, 0).await.unwrap();
    let chain = adapter(&c);
    let me = treasury();
    let v = validators()[0].operator_address.clone();
    c.set_index_lag(5);
    let tx = chain.delegate("lag-1", &v, Amount(10 * ATOM)).await.unwrap();
    chain.broadcast(&tx).await.unwrap();
    c.produce(1);
    assert_eq!(c.delegation(&me, &v), 10 * ATOM, "it landed");
    assert_eq!(c.sequence(&me), 1, "and spent its sequence");
    assert_eq!(
        chain.tx_status(&tx).await.unwrap(),
        TxStatus::NotFound,
        "not indexed yet: not expired"
    );
    // past its timeout height with the index still off: found in its block, not expired
    // (which would sign a second delegation)
    c.set_index_lag(1_000_000);
    c.produce(60);
    assert!(
        matches!(chain.tx_status(&tx).await.unwrap(), TxStatus::Confirmed { .. }),
        "read from the block store"
    );
    // a transaction whose sequence another one took, past its timeout: expired
    let other = chain.delegate("lag-2", &v, Amount(ATOM)).await.unwrap();
    let taken = chain.delegate("lag-3", &v, Amount(2 * ATOM)).await.unwrap();
    chain.broadcast(&taken).await.unwrap();
    c.produce(60);
    assert_eq!(chain.tx_status(&other).await.unwrap(), TxStatus::Expired);
    assert!(matches!(
        chain.tx_status(&taken).await.unwrap(),
        TxStatus::Confirmed { .. }
    ));
    c.set_index_lag(0);
    assert!(matches!(
        chain.tx_status(&tx).await.unwrap(),
        TxStatus::Confirmed { .. }
    ));
}

/// A claim whose rewards do not pay its fee is refused before anything is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_claims_below_the_fee_are_refused() {
    let c = start(genesis(), 0, 0).await.unwrap();
    let chain = adapter(&c);
    let me = treasury();
    let v = validators()[0].operator_address.clone();
    let tx = chain.delegate("d-1", &v, Amount(ATOM)).await.unwrap();
    chain.broadcast(&tx).await.unwrap();
    c.produce(2);
    let sequence = c.sequence(&me);
    let e = chain.claim_rewards("c-dust", &v).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::BadInput { message, .. } if message.contains("do not pay the claim's fee of 1500")),
        "{e}"
    );
    assert_eq!(c.sequence(&me), sequence, "nothing signed or sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_resolves_without_a_second_delegation() {
    let c = start(genesis(), 0, 0).await.unwrap();
    let chain = adapter(&c);
    let me = treasury();
    let v = validators()[2].operator_address.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "cosmos").await;
    let mut expected = 0u128;
    for (k, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(k, OpKind::Delegate, &v, 500 * ATOM);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, exec()).await;
        assert_eq!(recovered, vec![(k.to_string(), OpOutcome::Confirmed)]);
        expected += 500 * ATOM;
        assert_eq!(c.delegation(&me, &v), expected, "{k}: exactly one delegation");
    }
}

/// `softstake doctor` passes against the local chain (chain id, bond denom, the funded
/// signer against the fee, x/staking's unbonding time against tokens.toml, the validator
/// set), and fails with its fix on another chain id and on an unfunded signer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_the_local_chain_and_names_broken_settings() {
    use softstake_e2e::doctor::{assert_fails, line, run};
    let c = start(genesis(), 0, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let net = |key: &[u8], chain_id: &str| {
        let cosmos = format!(
            "[chains.ATOM.cosmos]\ngrpc_url = \"{}\"\nchain_id = \"{chain_id}\"\ngas_price = \"0.005\"\n",
            c.grpc_url
        );
        softstake_e2e::doctor::net(dir.path(), "ATOM", "cosmos", &c.rpc_url, key, &cosmos)
    };
    let good = run(&net(&[42; 32], CHAIN_ID), "ATOM").await;
    assert!(good.passed(), "{}", good.render());
    assert_eq!(line(&good, "bond denom").detail, "uatom");
    assert_eq!(
        line(&good, "unbonding period").verdict,
        softstake_adapters::preflight::Verdict::Pass
    );

    assert_fails(
        &run(&net(&[42; 32], "cosmoshub-4"), "ATOM").await,
        "chain id",
        "cosmoshub-4",
    );
    assert_fails(
        &run(&net(&[7; 32], CHAIN_ID), "ATOM").await,
        "signer balance",
        "fund cosmos1",
    );
}

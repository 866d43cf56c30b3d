//! The Cardano adapter against our local Cardano chain (`softstake-localchains`, feature
//! `cardano`): Blockfrost's REST API with Conway transactions checked as the ledger checks
//! them (witnesses over the body hash, TTL, inputs, fee, min UTxO, value preservation,
//! deposits, withdrawals needing a vote delegation), driven through the operations
//! journal: delegation to two pools (one stake key each, registered with the first
//! delegation), rewards three epoch boundaries after the snapshot claimed by reward
//! withdrawal and realized once, a partial withdrawal, a full withdrawal that also
//! withdraws the rewards and keeps the key registered until the snapshots holding its
//! stake are paid (then a claim deregisters it, deposit refunded), an emptied key reused
//! for a new pool without a deposit, reconciliation with zero drift; an unknown
//! pool, a forged witness, a spent input and a passed TTL refused with the ledger's
//! failure names; a dropped reply resolved without a second delegation.
//!
//! `cargo nextest run -p softstake-e2e --features cardano-local` (`scripts/test.sh` runs it).
#![cfg(feature = "cardano-local")]

use std::sync::Arc;

use softstake_adapters::cardano::{wire, CardanoAdapter, CardanoConfig};
use softstake_adapters::traits::{OpKind, StakeState, TxStatus};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes, SignedTx};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_localchains::cardano::{
    pools_from_fixture, rates_from_fixture, start, CardanoGenesis, LocalCardano, PoolSpec, ADA,
};
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::sync_token;
use softstake_store::{NewOperation, OperationState, Store};

const SEED: [u8; 32] = [42; 32];
/// Blocks deep (its own included) before a transaction counts as confirmed.
const CONFIRMATIONS: u64 = 3;

fn treasury() -> String {
    let k = wire::secret_key(SEED);
    wire::enterprise_address(wire::network(0), wire::key_hash(&k.public_key()))
        .to_bech32()
        .unwrap()
}

fn pools() -> Vec<PoolSpec> {
    pools_from_fixture(include_str!("../../../data/cardano/pools/pool-id.json")).unwrap()
}

fn genesis() -> CardanoGenesis {
    genesis_for(&treasury())
}

fn genesis_for(treasury: &str) -> CardanoGenesis {
    CardanoGenesis {
        network_id: 0,
        pools: pools(),
        reward_rates: rates_from_fixture(include_str!("../../../data/cardano/pools/pool-id-history.json")).unwrap(),
        utxos: vec![
            (treasury.to_string(), 1_000_000 * ADA),
            (treasury.to_string(), 50_000 * ADA),
        ],
        genesis_secs: 1_750_000_000,
        epoch_slots: 3_600,
        // one-slot blocks: the ticking clock crosses an epoch only every 72 s
        block_slots: 1,
        min_fee: (44, 155_381),
        key_deposit: 2 * ADA,
        coins_per_utxo_size: 4_310,
        tick_ms: 20,
    }
}

fn config(c: &LocalCardano) -> CardanoConfig {
    config_at(&c.url)
}

fn config_at(url: &str) -> CardanoConfig {
    CardanoConfig {
        api_url: url.to_string(),
        project_id: None,
        network_id: 0,
        stake_keys: 3,
        ttl_slots: 600,
        max_operations_per_epoch: 32,
        confirmations: CONFIRMATIONS,
        account: 0,
    }
}

fn adapter(c: &LocalCardano) -> (Arc<dyn ChainAdapter>, CardanoAdapter) {
    let cfg = config(c);
    let key = SecretBytes::new(SEED.to_vec());
    (
        journal::guarded(CardanoAdapter::new(cfg.clone(), &key).unwrap(), 1_000, 3),
        CardanoAdapter::new(cfg, key).unwrap(),
    )
}

fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 200,
        poll_interval: std::time::Duration::from_millis(50),
        max_attempts: 3,
        drill: None,
    }
}

fn op(key: &str, kind: OpKind, pool: &str, lovelace: u64) -> NewOperation {
    journal::op("ADA", key, kind, pool, u128::from(lovelace))
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, exec()).await
}

fn base_of(index: u32) -> String {
    let k = wire::secret_key(SEED);
    let s = wire::secret_key(wire::stake_seed(&SEED, index));
    wire::base_address(
        wire::network(0),
        wire::key_hash(&k.public_key()),
        wire::key_hash(&s.public_key()),
    )
    .to_bech32()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_cardano_stake_lifecycle_on_the_local_chain() {
    let c = start(genesis(), 0).await.unwrap();
    let (chain, raw) = adapter(&c);
    let me = treasury();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "cardano").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let ada = reg.get("ADA").unwrap();
    let ps = pools();
    let (p0, p1) = (ps[0].pool_id.as_str(), ps[1].pool_id.as_str());
    let (s0, s1) = (raw.stake_address(0).unwrap(), raw.stake_address(1).unwrap());

    let model = chain.liquidity_model().await.unwrap();
    assert!(model.instant_exit && model.unbonding_period_secs == 0);
    assert_eq!(
        (model.epoch_secs, model.activation_epochs),
        (3_600, 2),
        "epoch length from the chain"
    );
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 2);
    assert_eq!(
        vals.iter().find(|v| v.id == p0).unwrap().commission_bps,
        490,
        "margin 4.9 %"
    );

    let before = c.balance(&me);
    assert_eq!(
        run(&store, chain.as_ref(), op("d-a", OpKind::Delegate, p0, 30_000 * ADA)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        c.delegation(&s0),
        (true, Some(p0.to_string())),
        "registered and delegated in one certificate"
    );
    assert_eq!(c.balance(&base_of(0)), 30_000 * ADA);
    let spent = before - c.balance(&me);
    assert!(
        spent > 30_002 * ADA && spent < 30_003 * ADA,
        "stake, the 2 ADA key deposit and a fee: {spent}"
    );
    for (k, p, ada_amount) in [("d-b", p1, 10_000), ("d-c", p0, 5_000)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, OpKind::Delegate, p, ada_amount * ADA)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    assert_eq!(
        c.delegation(&s1),
        (true, Some(p1.to_string())),
        "a second stake key for the second pool"
    );
    assert_eq!(c.balance(&base_of(0)), 35_000 * ADA, "the same key for the same pool");
    assert_eq!(
        journal::amount_at(chain.as_ref(), p1, StakeState::Active).await,
        u128::from(10_000 * ADA)
    );

    // the snapshot at the start of epoch 1 holds the stake, paid at the start of epoch 4
    c.advance_epochs(4);
    let claimable = chain.claimable().await.unwrap();
    let listed = claimable.iter().find(|(v, _)| v == p0).unwrap().1;
    let r0 = c.rewards(&s0);
    assert!(
        listed.0 > 0 && listed.0 <= u128::from(r0),
        "rewards after the snapshot delay: {listed}"
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("c-1", OpKind::Claim, p0, r0)).await,
        OpOutcome::Confirmed
    );
    let w0 = c.withdrawals(&s0);
    assert!(w0.len() == 1 && w0[0] >= r0, "the whole balance withdrawn: {w0:?}");
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(u128::from(w0[0]))));
    let again = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!(again.new_rewards, 0, "booked once");

    // no unbonding: stake leaves by withdrawal, partly or wholly
    let e = chain.undelegate("u", p0, Amount(ADA.into())).await.unwrap_err();
    assert!(matches!(e, AdapterError::BadInput { .. }), "{e}");
    assert_eq!(
        run(&store, chain.as_ref(), op("w-a", OpKind::Withdraw, p0, 5_000 * ADA)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.balance(&base_of(0)), 30_000 * ADA);
    assert!(c.rewards(&s1) > 0);
    let bal = c.balance(&me);
    assert_eq!(
        run(&store, chain.as_ref(), op("w-b", OpKind::Withdraw, p1, 10_000 * ADA)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        c.delegation(&s1),
        (true, Some(p1.to_string())),
        "kept registered: snapshots holding the stake are still unpaid"
    );
    let w1 = c.withdrawals(&s1);
    assert_eq!(w1.len(), 1, "the rewards withdrawn on exit");
    let r1 = w1[0];
    let gained = c.balance(&me) - bal;
    assert!(
        gained > 10_000 * ADA + r1 - ADA && gained < 10_000 * ADA + r1,
        "stake and rewards back, less a fee (the deposit stays): {gained}"
    );
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        (synced.new_rewards, synced.new_amount),
        (1, Amount(u128::from(r1))),
        "the rewards withdrawn on exit"
    );

    journal::assert_zero_drift(&store, chain.as_ref(), ada, &["d-a", "d-b", "d-c", "w-a", "w-b"]).await;
}

/// Production signing: the payment key and the three stake keys are Ed25519 key pairs
/// generated inside one SoftHSM2 token (PKCS#11, `CKM_EDDSA`); the local ledger checks
/// every witness over the body hash. Delegation (registration and delegation
/// certificates, stake key witness), a reward withdrawal and a full exit (reward
/// withdrawal witnessed by the stake key) all land, and the books reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_cardano_operations_signed_by_the_hsm() {
    use softstake_adapters::pkcs11::{cardano_enterprise_address, cardano_stake_key_label, KeyAlgorithm};
    let dir = tempfile::tempdir().unwrap();
    let labels: Vec<String> = std::iter::once("ada-1".to_string())
        .chain((0..3).map(|i| cardano_stake_key_label("ada-1", i)))
        .collect();
    let mut keys = softstake_e2e::hsm_keys(
        dir.path(),
        &labels.iter().map(String::as_str).collect::<Vec<_>>(),
        KeyAlgorithm::Ed25519,
    );
    let payment = keys.remove(0);
    let me = cardano_enterprise_address(payment.public_key(), 0).unwrap();
    let c = start(genesis_for(&me), 0).await.unwrap();
    let a = CardanoAdapter::with_hsm_keys(config(&c), payment, keys).unwrap();
    assert_eq!(a.address(), me, "the token's payment key's enterprise address");
    let s0 = a.stake_address(0).unwrap();
    let chain = journal::guarded(a, 1_000, 3);
    let store = journal::sqlite_store(dir.path(), "cardano-hsm").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let p0 = pools()[0].pool_id.clone();

    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-d", OpKind::Delegate, &p0, 20_000 * ADA)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        c.delegation(&s0),
        (true, Some(p0.clone())),
        "certificates witnessed by the token"
    );
    c.advance_epochs(4);
    let r0 = c.rewards(&s0);
    assert!(r0 > 0);
    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-c", OpKind::Claim, &p0, r0)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-w", OpKind::Withdraw, &p0, 20_000 * ADA)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.delegation(&s0), (true, Some(p0.clone())), "registered until paid out");
    sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    journal::assert_zero_drift(
        &store,
        chain.as_ref(),
        reg.get("ADA").unwrap(),
        &["hsm-d", "hsm-c", "hsm-w"],
    )
    .await;
}

/// A raw key for the Cardano adapter given as an HSM key alone is refused: stake keys
/// cannot be derived from a key that never leaves the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_hsm_payment_key_without_stake_keys() {
    let dir = tempfile::tempdir().unwrap();
    let key = softstake_e2e::hsm_key(dir.path(), "ada-2", softstake_adapters::pkcs11::KeyAlgorithm::Ed25519);
    let cfg = CardanoConfig {
        api_url: "http://127.0.0.1:9".into(),
        project_id: None,
        network_id: 0,
        stake_keys: 2,
        ttl_slots: 600,
        max_operations_per_epoch: 32,
        confirmations: CONFIRMATIONS,
        account: 0,
    };
    let e = CardanoAdapter::new(cfg.clone(), softstake_adapters::TreasuryKey::Hsm(key.clone()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("stake keys") && e.contains("with_hsm_keys"), "{e}");
    let e = CardanoAdapter::with_hsm_keys(cfg, key, vec![]).unwrap_err().to_string();
    assert!(e.contains("0 stake keys for stake_keys = 2"), "{e}");
}

/// An unknown pool is refused by the ledger (`DelegateeStakePoolNotRegisteredDELEG`), the
/// journal records the failure and nothing moves; a forged witness, a spent input and a
/// passed TTL are refused with the ledger's names and never land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_ledger_refusals_are_typed_rejections() {
    let mut g = genesis();
    g.tick_ms = 0;
    let c = start(g, 0).await.unwrap();
    let (chain, _) = adapter(&c);
    let me = treasury();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "cardano").await;
    let before = c.balance(&me);

    let unknown = wire::pool_id(&wire::pool_hash(&"07".repeat(28)).unwrap()).unwrap();
    let out = run(
        &store,
        chain.as_ref(),
        op("d-unknown", OpKind::Delegate, &unknown, 100 * ADA),
    )
    .await;
    assert!(
        matches!(&out, OpOutcome::Failed(r) if r.contains("DelegateeStakePoolNotRegisteredDELEG")),
        "{out:?}"
    );
    assert_eq!(
        store.operation("d-unknown").await.unwrap().unwrap().state,
        OperationState::Failed
    );
    c.produce(1);
    assert_eq!(c.balance(&me), before, "nothing moved");

    let p = pools()[1].pool_id.clone();
    let good = chain.delegate("g", &p, Amount(u128::from(100 * ADA))).await.unwrap();
    // a forged witness: one bit of the last signature
    let mut cbor = hex::decode(&good.payload).unwrap();
    let n = cbor.len();
    cbor[n - 3] ^= 1;
    let forged = SignedTx {
        tx_id: good.tx_id.clone(),
        payload: hex::encode(&cbor),
        valid_until: None,
    };
    let e = chain.broadcast(&forged).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("InvalidWitnessesUTXOW")),
        "{e}"
    );
    // a second transaction spending the same UTxO as the first
    let rival = chain.delegate("r", &p, Amount(u128::from(200 * ADA))).await.unwrap();
    chain.broadcast(&good).await.unwrap();
    c.produce(1);
    // in a block, but not `CONFIRMATIONS` deep yet: a rollback could still drop it
    assert_eq!(
        chain.tx_status(&good).await.unwrap(),
        TxStatus::Pending,
        "one block deep"
    );
    c.produce(CONFIRMATIONS - 2);
    assert_eq!(
        chain.tx_status(&good).await.unwrap(),
        TxStatus::Pending,
        "one block short"
    );
    c.produce(1);
    assert!(matches!(
        chain.tx_status(&good).await.unwrap(),
        TxStatus::Confirmed { .. }
    ));
    let e = chain.broadcast(&rival).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("BadInputsUTxO")),
        "{e}"
    );
    // past its TTL: refused, and expired
    let late = chain.claim_rewards("l", &p).await;
    assert!(
        matches!(late, Err(AdapterError::BadInput { .. })),
        "nothing to claim yet"
    );
    let late = chain.delegate("l", &p, Amount(u128::from(ADA * 5))).await.unwrap();
    c.produce(601);
    let e = chain.broadcast(&late).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("OutsideValidityIntervalUTxO")),
        "{e}"
    );
    assert_eq!(chain.tx_status(&late).await.unwrap(), TxStatus::Expired);
    assert_eq!(c.balance(&base_of(0)), 100 * ADA, "only the first landed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_resolves_without_a_second_delegation() {
    let c = start(genesis(), 0).await.unwrap();
    let (chain, _) = adapter(&c);
    let p = pools()[1].pool_id.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "cardano").await;
    let mut expected = 0u64;
    for (k, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(k, OpKind::Delegate, &p, 500 * ADA);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, exec()).await;
        assert_eq!(recovered, vec![(k.to_string(), OpOutcome::Confirmed)]);
        expected += 500 * ADA;
        assert_eq!(c.balance(&base_of(0)), expected, "{k}: exactly one delegation");
    }
}

/// `softstake doctor` passes against the local chain (network id, protocol parameters,
/// the payment address's UTxOs against a transaction's fee plus the key deposit, the
/// pools), and fails with its fix for a payment key holding nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_the_local_chain_and_names_an_empty_wallet() {
    use softstake_e2e::doctor::{assert_fails, line, net, run};
    let c = start(genesis(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cardano = "[chains.ADA.cardano]\nnetwork_id = 0\nstake_keys = 3\n";
    let good = run(&net(dir.path(), "ADA", "cardano", &c.url, &SEED, cardano), "ADA").await;
    assert!(good.passed(), "{}", good.render());
    assert!(
        line(&good, "protocol parameters")
            .detail
            .contains("key_deposit 2000000"),
        "{}",
        good.render()
    );

    let empty = run(&net(dir.path(), "ADA", "cardano", &c.url, &[7; 32], cardano), "ADA").await;
    assert_fails(&empty, "signer balance", "fund addr_test1");
}

/// A full exit keeps the stake key registered and delegated: the ledger still pays the
/// snapshots taken while the stake sat at the base address (the last one, taken at the
/// start of the exit epoch X, is paid at the start of X + 3). A claim before then
/// withdraws without deregistering; the claim from X + 3 on also deregisters the key and
/// the deposit comes back. Before, the exit deregistered the key in its own transaction
/// and those three epochs of rewards went to the reserves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_full_exit_keeps_the_key_until_the_last_snapshot_is_paid() {
    let c = start(genesis(), 0).await.unwrap();
    let (chain, raw) = adapter(&c);
    let me = treasury();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "cardano-exit").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let p0 = pools()[0].pool_id.clone();
    let s0 = raw.stake_address(0).unwrap();

    assert_eq!(
        run(&store, chain.as_ref(), op("x-d", OpKind::Delegate, &p0, 40_000 * ADA)).await,
        OpOutcome::Confirmed
    );
    c.advance_epochs(4);
    assert!(c.rewards(&s0) > 0, "rewards before the exit");
    assert_eq!(
        run(&store, chain.as_ref(), op("x-w", OpKind::Withdraw, &p0, 40_000 * ADA)).await,
        OpOutcome::Confirmed
    );
    let exit_epoch = c.epoch();
    assert_eq!(c.balance(&base_of(0)), 0, "the stake is back at the enterprise address");
    assert_eq!(
        c.delegation(&s0),
        (true, Some(p0.clone())),
        "still registered and delegated after the exit"
    );
    assert_eq!(c.withdrawals(&s0).len(), 1, "the rewards so far withdrawn on exit");
    assert!(
        chain.positions().await.unwrap().is_empty(),
        "an emptied stake key holds no position"
    );

    c.advance_epochs(1);
    assert!(c.rewards(&s0) > 0, "a snapshot taken before the exit is paid after it");
    assert!(
        chain
            .claimable()
            .await
            .unwrap()
            .iter()
            .any(|(v, a)| *v == p0 && a.0 > 0),
        "listed for the claim loop"
    );
    let owed = c.rewards(&s0);
    assert_eq!(
        run(&store, chain.as_ref(), op("x-c1", OpKind::Claim, &p0, owed)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        c.delegation(&s0),
        (true, Some(p0.clone())),
        "epoch {}: the last snapshot (exit epoch {exit_epoch}) is not paid yet",
        c.epoch()
    );

    c.advance_epochs(2);
    assert_eq!(c.epoch(), exit_epoch + 3);
    let last = c.rewards(&s0);
    assert!(
        last > 0,
        "the snapshot at the start of the exit epoch, paid three boundaries on"
    );
    let bal = c.balance(&me);
    assert_eq!(
        run(&store, chain.as_ref(), op("x-c2", OpKind::Claim, &p0, last)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.delegation(&s0), (false, None), "deregistered with the last reward");
    let gained = c.balance(&me) - bal;
    assert!(
        gained > last + 2 * ADA - ADA && gained < last + 2 * ADA,
        "the last reward and the 2 ADA deposit, less a fee: {gained}"
    );
    let w = c.withdrawals(&s0);
    assert_eq!(w.len(), 3, "on exit, after it, and with the deregistration: {w:?}");
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!(
        (synced.new_rewards, synced.new_amount),
        (3, Amount(w.iter().map(|x| u128::from(*x)).sum())),
        "every withdrawal booked as reward, the deposit refund not"
    );
    journal::assert_zero_drift(
        &store,
        chain.as_ref(),
        reg.get("ADA").unwrap(),
        &["x-d", "x-w", "x-c1", "x-c2"],
    )
    .await;
}

/// A delegation to a pool no stake key delegates to reuses a registered stake key that
/// an exit emptied (a delegation certificate: no second deposit) before registering a new
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_a_new_pool_reuses_an_emptied_stake_key_without_a_deposit() {
    let c = start(genesis(), 0).await.unwrap();
    let (chain, raw) = adapter(&c);
    let me = treasury();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "cardano-reuse").await;
    let ps = pools();
    let (p0, p1) = (ps[0].pool_id.as_str(), ps[1].pool_id.as_str());
    let (s0, s1) = (raw.stake_address(0).unwrap(), raw.stake_address(1).unwrap());
    for (k, kind, p) in [("r-d", OpKind::Delegate, p0), ("r-w", OpKind::Withdraw, p0)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, kind, p, 10_000 * ADA)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    let before = c.balance(&me);
    assert_eq!(
        run(&store, chain.as_ref(), op("r-d2", OpKind::Delegate, p1, 10_000 * ADA)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        c.delegation(&s0),
        (true, Some(p1.to_string())),
        "the emptied key, redelegated"
    );
    assert_eq!(c.delegation(&s1), (false, None), "no second key registered");
    assert_eq!(c.balance(&base_of(0)), 10_000 * ADA);
    let spent = before - c.balance(&me);
    assert!(
        spent > 10_000 * ADA && spent < 10_000 * ADA + ADA,
        "the stake and a fee, no deposit: {spent}"
    );
}

/// A CIP-1852 root key (96 bytes; here the published root of the phrase "abandon × 11,
/// about"): the payment key m/1852'/1815'/0'/0/0 and the stake key m/1852'/1815'/0'/2/0
/// give the addresses standard wallets show for that phrase, and the local ledger (which
/// verifies witnesses with ed25519-dalek, not the adapter's code) accepts the extended
/// keys' signatures for a registration, a delegation and a reward withdrawal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_cip1852_root_key_stakes_at_the_wallet_addresses() {
    const ROOT: &str = "60ce7dbec3616e9fc17e0c32578b3f380337b1b61a1f3cb9651aee30670e6f53970419a23a2e4e4082d12bf78faa8645dfc882cee2ae7179e2b07fe88098abb2072310084784c7308182dbbdb1449b2706586f1ff5cbf13d15e9b6e78c15f067";
    let key = || SecretBytes::new(hex::decode(ROOT).unwrap());
    let offline = CardanoAdapter::new(
        CardanoConfig {
            api_url: "http://127.0.0.1:9".into(),
            ..config_at("")
        },
        key(),
    )
    .unwrap();
    let me = offline.address();
    let s0 = offline.stake_address(0).unwrap();
    assert_eq!(s0, "stake_test1urj40zgr2gy4788kl54h6x3gu0pukq5lfr8nflufpg5dzas324ywz");
    let c = start(genesis_for(&me), 0).await.unwrap();
    let chain = journal::guarded(CardanoAdapter::new(config(&c), key()).unwrap(), 1_000, 3);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "cardano-cip1852").await;
    let p0 = pools()[0].pool_id.clone();

    assert_eq!(
        run(&store, chain.as_ref(), op("h-d", OpKind::Delegate, &p0, 20_000 * ADA)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.delegation(&s0), (true, Some(p0.clone())));
    assert_eq!(
        c.balance("addr_test1qq8ac7qqy0vtulyl7wntmsxc6wex80gvcyjy33qffrhm7sh927ysx5sftuw0dlft05dz3c7revpf7jx0xnlcjz3g69mqkt5dmn"),
        20_000 * ADA,
        "the wallet's first base address"
    );
    c.advance_epochs(4);
    let r = c.rewards(&s0);
    assert!(r > 0);
    assert_eq!(
        run(&store, chain.as_ref(), op("h-c", OpKind::Claim, &p0, r)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.withdrawals(&s0), vec![r]);
}

/// Every read goes through Blockfrost's SDK, whose models need every field of Blockfrost's
/// OpenAPI spec: the adapter reads the head, the epoch, the parameters, the pools and the
/// accounts of the local chain, which answers as the hosted API does. A pool in
/// `/pools/retiring` is no longer a candidate (before, retirement was read from a
/// `retirement` field `/pools/extended` does not have).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_retiring_pool_is_inactive_through_the_sdk() {
    let c = start(genesis(), 0).await.unwrap();
    let (_, raw) = adapter(&c);
    let before = raw.validators().await.unwrap();
    assert_eq!(before.len(), pools().len());
    assert!(before.iter().all(|v| v.active && v.total_stake.0 > 0));
    let retiring = pools()[1].pool_id.clone();
    c.retire_pool(&retiring, c.epoch() + 2);
    let after = raw.validators().await.unwrap();
    for v in &after {
        assert_eq!(v.active, v.id != retiring, "{}", v.id);
    }
    assert!(raw.epoch().await.unwrap().secs > 0);
    assert!(raw.positions().await.unwrap().is_empty());
    assert_eq!(raw.claimable().await.unwrap(), vec![]);
}

/// A Blockfrost host that requires a project id (as the hosted API does) answers 403
/// without it: the adapter says the project id is refused, and works with the right one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_missing_project_id_is_named_then_the_right_one_works() {
    let c = start(genesis(), 0).await.unwrap();
    c.require_project_id("preprodLocal123");
    let key = SecretBytes::new(SEED.to_vec());
    let anonymous = CardanoAdapter::new(config(&c), &key).unwrap();
    match anonymous.epoch().await {
        Err(AdapterError::BadResponse { message, .. }) => {
            assert!(message.contains("project id"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let mut cfg = config(&c);
    cfg.project_id = Some("preprodLocal123".into());
    let named = CardanoAdapter::new(cfg.clone(), &key).unwrap();
    assert!(named.spendable().await.unwrap().0 > 0);
    cfg.project_id = Some("preprod Local\n".into());
    assert!(matches!(
        CardanoAdapter::new(cfg, &key),
        Err(AdapterError::BadInput { .. })
    ));
}

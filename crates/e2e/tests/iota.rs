//! The IOTA adapter against our local IOTA chain (`softstake-localchains`, feature `iota`):
//! IOTA's gRPC services and its GraphQL subset over the Move staking system, transactions
//! decoded with iota-sdk-types and signatures verified with iota-sdk-crypto. Driven through the operations
//! journal: delegations (coins merged into the gas coin, a split, `request_add_stake`),
//! activation at the next epoch, rewards over epochs realized by withdrawals (a split
//! StakedIota and whole ones) from their `UnstakingRequestEvent`s, reconciliation with zero
//! drift; a forged signature, a replay on a spent gas coin version, an expired epoch and an
//! amount below the minimum refused as typed rejections with nothing done; a dropped reply
//! after submit and after broadcast resolved with exactly one stake.
//!
//! `cargo nextest run -p softstake-e2e --features iota-local` (`scripts/test.sh` runs it).
#![cfg(feature = "iota-local")]

use std::sync::Arc;

use softstake_adapters::iota::{wire, IotaAdapter, IotaConfig};
use softstake_adapters::traits::{OpKind, StakeState, TxStatus};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes, SignedTx};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_localchains::iota::{apys_from_csv, start, validators_from_csv, IotaGenesis, LocalIota, IOTA};
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::sync_token;
use softstake_store::{NewOperation, Store};

const SEED: [u8; 32] = [42; 32];
/// Reference gas price, nanos per unit (IOTA mainnet's).
const RGP: u64 = 1_000;
/// The local chain's name; its chain id is this text's Blake2b-256.
const CHAIN_NAME: &str = "iota-e2e";

fn treasury() -> String {
    IotaAdapter::new(
        config("http://127.0.0.1:1", "http://127.0.0.1:1/graphql"),
        SecretBytes::new(SEED.to_vec()),
    )
    .unwrap()
    .address()
}

fn validator() -> String {
    validators_from_csv(include_str!("../../../data/iota/validators.csv")).unwrap()[0]
        .address
        .clone()
}

fn genesis() -> IotaGenesis {
    IotaGenesis {
        validators: validators_from_csv(include_str!("../../../data/iota/validators.csv")).unwrap(),
        apy_bps: apys_from_csv(include_str!("../../../data/iota/apy.csv")).unwrap(),
        coins: vec![(treasury(), 1_000_000 * IOTA), (treasury(), 1_000 * IOTA)],
        genesis_ms: 1_767_807_788_838,
        epoch_ms: 86_400_000,
        reference_gas_price: RGP,
        chain_name: CHAIN_NAME.into(),
        tick_epoch_ms: 0,
    }
}

fn config(url: &str, graphql_url: &str) -> IotaConfig {
    IotaConfig {
        rpc_url: url.to_string(),
        graphql_url: graphql_url.to_string(),
        chain_id: None,
        max_operations_per_epoch: 32,
    }
}

fn adapter(c: &LocalIota) -> Arc<dyn ChainAdapter> {
    journal::guarded(
        IotaAdapter::new(config(&c.url, &c.graphql_url), SecretBytes::new(SEED.to_vec())).unwrap(),
        1_000,
        3,
    )
}

fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 200,
        poll_interval: std::time::Duration::from_millis(20),
        max_attempts: 3,
        drill: None,
    }
}

fn op(key: &str, kind: OpKind, validator: &str, iota: u64) -> NewOperation {
    journal::op("IOTA", key, kind, validator, u128::from(iota) * u128::from(IOTA))
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, exec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_iota_stake_lifecycle_on_the_local_chain() {
    let c = start(genesis(), 0, 0).await.unwrap();
    let chain = adapter(&c);
    let me = treasury();
    let v = validator();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "iota").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let iota = reg.get("IOTA").unwrap();

    let model = chain.liquidity_model().await.unwrap();
    assert!(model.instant_exit && model.unbonding_period_secs == 0 && model.rewards_auto_compound);
    assert_eq!(
        (model.epoch_secs, model.activation_epochs),
        (86_400, 1),
        "from the chain"
    );
    assert_eq!(model.min_delegation, Amount(u128::from(IOTA)));
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 9, "the bundled mainnet committee members, over GraphQL");
    let first = vals.iter().find(|c| c.id == v).unwrap();
    assert_eq!((first.name.as_str(), first.commission_bps), ("gKPp7Gab6+i8", 200));
    assert!(
        chain.undelegate("u", &v, Amount(1)).await.is_err(),
        "no unbonding on IOTA"
    );

    let before = c.balance(&me);
    assert_eq!(
        run(&store, chain.as_ref(), op("d-a", OpKind::Delegate, &v, 30_000)).await,
        OpOutcome::Confirmed
    );
    let spent = before - c.balance(&me);
    assert!(
        spent > 30_000 * IOTA && spent < 30_000 * IOTA + IOTA / 10,
        "stake and gas: {spent}"
    );
    assert_eq!(
        journal::amount_at(chain.as_ref(), &v, StakeState::Activating).await,
        u128::from(30_000 * IOTA),
        "earning from the next epoch"
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("d-b", OpKind::Delegate, &v, 5_000)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.stakes(&me).len(), 2, "one StakedIota per delegation");

    c.advance_epochs(3);
    assert_eq!(
        journal::amount_at(chain.as_ref(), &v, StakeState::Active).await,
        u128::from(35_000 * IOTA)
    );
    // a part of the larger stake: staking_pool::split, then request_withdraw_stake
    assert_eq!(
        run(&store, chain.as_ref(), op("w-a", OpKind::Withdraw, &v, 10_000)).await,
        OpOutcome::Confirmed
    );
    let mut left: Vec<u64> = c.stakes(&me).iter().map(|s| s.2).collect();
    left.sort_unstable();
    assert_eq!(left, vec![5_000 * IOTA, 20_000 * IOTA]);
    let r1 = c.rewards_paid(&me);
    assert!(r1 > 0, "two epochs of rewards on the withdrawn part");
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(u128::from(r1))));
    let again = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!(again.new_rewards, 0, "booked once");

    c.advance_epochs(1);
    assert_eq!(
        run(&store, chain.as_ref(), op("w-b", OpKind::Withdraw, &v, 25_000)).await,
        OpOutcome::Confirmed
    );
    assert!(c.stakes(&me).is_empty(), "both whole objects withdrawn");
    let r2 = c.rewards_paid(&me) - r1;
    assert!(r2 > r1, "more epochs, more stake: {r2} vs {r1}");
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!((synced.new_rewards, synced.new_amount), (1, Amount(u128::from(r2))));

    journal::assert_zero_drift(&store, chain.as_ref(), iota, &["d-a", "d-b", "w-a", "w-b"]).await;
}

fn rejected(e: &AdapterError, says: &str) {
    assert!(matches!(e, AdapterError::Rejected { .. }), "not a rejection: {e}");
    assert!(e.to_string().contains(says), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_refusals_are_typed_rejections_with_nothing_done() {
    let c = start(genesis(), 0, 0).await.unwrap();
    let chain = adapter(&c);
    let me = treasury();
    let v = validator();

    // below the minimum: refused before anything is signed
    let e = chain
        .delegate("small", &v, Amount(u128::from(IOTA / 2)))
        .await
        .unwrap_err();
    rejected(&e, "EStakingBelowThreshold");
    // not a validator: the simulation aborts with the Move abort, nothing is sent
    let nobody = "0x0000000000000000000000000000000000000000000000000000000000000abc";
    let e = chain
        .delegate("nobody", nobody, Amount(u128::from(2 * IOTA)))
        .await
        .unwrap_err();
    rejected(&e, "ENotAValidator");
    assert_eq!(c.executed(), 0, "nothing ran");

    // a forged signature: one bit of the signature flipped
    let good = chain
        .delegate("forged", &v, Amount(u128::from(2 * IOTA)))
        .await
        .unwrap();
    let (tx, sig) = wire::decode_payload(&good.payload).unwrap();
    let bytes = sig.to_bytes();
    let (mut signature, public_key) = ([0u8; 64], <[u8; 32]>::try_from(&bytes[65..97]).unwrap());
    signature.copy_from_slice(&bytes[1..65]);
    signature[5] ^= 1;
    let forged = SignedTx {
        payload: wire::encode_payload(&tx, &wire::user_signature(signature, public_key)).unwrap(),
        ..good.clone()
    };
    rejected(&chain.broadcast(&forged).await.unwrap_err(), "Signature is not valid");
    assert_eq!((c.executed(), c.stakes(&me).len()), (0, 0));

    // a replay: a second transaction on the gas coin version the first spent
    let other = chain.delegate("other", &v, Amount(u128::from(3 * IOTA))).await.unwrap();
    chain.broadcast(&good).await.unwrap();
    chain.broadcast(&good).await.unwrap();
    assert_eq!(c.executed(), 1, "the same transaction again runs once");
    rejected(
        &chain.broadcast(&other).await.unwrap_err(),
        "not available for consumption",
    );
    assert_eq!(
        chain.tx_status(&other).await.unwrap(),
        TxStatus::Expired,
        "it can never run"
    );
    assert_eq!(c.stakes(&me).len(), 1);

    // expired: signed for an epoch that ended
    let stale = chain.delegate("stale", &v, Amount(u128::from(2 * IOTA))).await.unwrap();
    c.advance_epochs(1);
    rejected(&chain.broadcast(&stale).await.unwrap_err(), "Transaction Expired");
    assert_eq!(chain.tx_status(&stale).await.unwrap(), TxStatus::Expired);
    assert_eq!((c.executed(), c.stakes(&me).len()), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_resolves_with_exactly_one_stake() {
    let c = start(genesis(), 0, 0).await.unwrap();
    let chain = adapter(&c);
    let v = validator();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "iota").await;
    for (n, (k, point)) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ]
    .into_iter()
    .enumerate()
    {
        let recovered =
            journal::crash_and_recover(&store, chain.as_ref(), op(k, OpKind::Delegate, &v, 100), point, exec()).await;
        assert_eq!(recovered, vec![(k.to_string(), OpOutcome::Confirmed)]);
        assert_eq!(c.stakes(&treasury()).len(), n + 1, "{k}: exactly one stake");
    }
}

/// Production signing: the treasury's Ed25519 key is generated inside a SoftHSM2 token
/// (PKCS#11, `CKM_EDDSA`); the local chain verifies every signature with iota-sdk-crypto
/// against the sender, as a validator does. A delegation and its withdrawal land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_iota_operations_signed_by_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = softstake_e2e::hsm_key(dir.path(), "iota-1", softstake_adapters::pkcs11::KeyAlgorithm::Ed25519);
    let address = hsm.address("iota", "").unwrap();
    let mut g = genesis();
    g.coins = vec![(address.clone(), 10_000 * IOTA)];
    let c = start(g, 0, 0).await.unwrap();
    let a = IotaAdapter::new(
        config(&c.url, &c.graphql_url),
        softstake_adapters::TreasuryKey::Hsm(hsm),
    )
    .unwrap();
    assert_eq!(a.address(), address, "the adapter signs with the token's key");
    let chain = journal::guarded(a, 1_000, 3);
    let store = journal::sqlite_store(dir.path(), "iota-hsm").await;
    let v = validator();
    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-d", OpKind::Delegate, &v, 2_000)).await,
        OpOutcome::Confirmed
    );
    c.advance_epochs(2);
    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-w", OpKind::Withdraw, &v, 2_000)).await,
        OpOutcome::Confirmed
    );
    assert!(c.stakes(&address).is_empty());
    assert!(
        c.rewards_paid(&address) > 0,
        "an epoch of rewards paid with the principal"
    );
    // the raw devnet key owns nothing here: nothing to pay gas with
    let e = adapter(&c)
        .delegate("raw-d", &v, Amount(u128::from(2 * IOTA)))
        .await
        .unwrap_err();
    assert!(matches!(e, AdapterError::InsufficientFunds { .. }), "{e}");
}

/// `softstake doctor` against the local chain: the chain id pinned with `genesis_hash`
/// (IOTA's chain id is its genesis checkpoint's digest), the epoch read over gRPC and
/// GraphQL, and the treasury's balance pass; a node of another network fails the chain id
/// line with its fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_the_local_chain_and_refuses_another_network() {
    use softstake_e2e::doctor::{assert_fails, line, net, run};
    let c = start(genesis(), 0, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rest = |id: &str| {
        format!(
            "genesis_hash = \"{id}\"\n[chains.IOTA.iota]\ngraphql_url = \"{}\"\n",
            c.graphql_url
        )
    };
    let good = run(
        &net(dir.path(), "IOTA", "iota", &c.url, &SEED, &rest(&c.chain_id())),
        "IOTA",
    )
    .await;
    assert!(good.passed(), "{}", good.render());
    assert!(
        line(&good, "epoch")
            .detail
            .contains("reference gas price 1000 nanos, 9 active validators"),
        "{}",
        good.render()
    );
    let other = softstake_localchains::iota::chain_id_of("another network");
    let testnet = run(&net(dir.path(), "IOTA", "iota", &c.url, &SEED, &rest(&other)), "IOTA").await;
    assert_fails(&testnet, "chain id", "the config wants");
}

/// A validator leaving the active set (`request_remove_validator`): its pool freezes at the
/// epoch it leaves, our StakedIota stays ours under the validator's name (for a fresh adapter,
/// under its pool id), it is no longer a candidate, a new stake with it aborts
/// (`ENotAValidator`, refused by the simulation), and the withdrawal pays principal and the
/// rewards earned before it left, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_departed_validator_stake_is_withdrawn_with_its_rewards() {
    let c = start(genesis(), 0, 0).await.unwrap();
    let chain = adapter(&c);
    let me = treasury();
    let v = validator();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "iota").await;
    assert_eq!(
        run(&store, chain.as_ref(), op("d-a", OpKind::Delegate, &v, 1_000)).await,
        OpOutcome::Confirmed
    );
    c.advance_epochs(2);
    c.remove_validator(&v).unwrap();
    c.advance_epochs(2);
    let vals = chain.validators().await.unwrap();
    assert!(vals.iter().all(|c| c.id != v), "no longer a candidate: {vals:?}");
    assert_eq!(
        journal::amount_at(chain.as_ref(), &v, StakeState::Active).await,
        u128::from(1_000 * IOTA),
        "still named after its validator"
    );
    // a restarted node has never seen the pool in the active set: the position is named by
    // its pool id (the adapter reads no inactive-pool table), with its full amount
    let fresh = adapter(&c);
    let held = fresh.positions().await.unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(
        held[0].validator != v && held[0].validator.starts_with("0x"),
        "{held:?}"
    );
    assert_eq!(
        (held[0].amount, held[0].state),
        (Amount(u128::from(1_000 * IOTA)), StakeState::Active)
    );
    let e = chain
        .delegate("d-b", &v, Amount(u128::from(2 * IOTA)))
        .await
        .unwrap_err();
    assert!(
        matches!(e, AdapterError::Rejected { .. }) && e.to_string().contains("ENotAValidator"),
        "{e}"
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("w-a", OpKind::Withdraw, &v, 1_000)).await,
        OpOutcome::Confirmed
    );
    let paid = c.rewards_paid(&me);
    assert!(paid > 0, "the rewards earned before it left");
    c.advance_epochs(2);
    assert_eq!(c.rewards_paid(&me), paid, "nothing more after it left");
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    assert_eq!(synced.new_amount, Amount(u128::from(paid)));
    assert!(c.stakes(&me).is_empty());
}

//! The Aptos adapter against our local Aptos chain (`softstake-localchains`, feature
//! `aptos`): the fullnode REST API `/v1` with BCS transactions validated as a node does
//! (signature verified by aptos-sdk, sequence number, expiry, chain id) and
//! `0x1::delegation_pool`'s rules, driven through the operations journal: delegate,
//! rewards compounding over epochs realized from the positions' growth (the add-stake fee
//! returned by the epoch's end), unlock, an early withdrawal refused, withdrawal after the
//! lockup cycle, reconciliation with zero drift; a bad signature, a replayed sequence
//! number, an expired transaction and an amount below the minimum as typed rejections with
//! nothing done; a dropped reply resolved with exactly one stake.
//!
//! `cargo nextest run -p softstake-e2e --features aptos-local` (`scripts/test.sh` runs it).
#![cfg(feature = "aptos-local")]

use std::sync::Arc;

use aptos_sdk::transaction::authenticator::Ed25519Signature;
use aptos_sdk::transaction::TransactionAuthenticator;
use aptos_sdk::types::AccountAddress;
use softstake_adapters::aptos::{decode_payload, encode_payload, tx_hash, AptosAdapter, AptosStakeConfig};
use softstake_adapters::traits::{OpKind, SignedTx, StakeState, TxStatus};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes, TreasuryKey};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_localchains::aptos::{start, AptosGenesis, LocalAptos, ValidatorSpec, APT};
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::sync_token;
use softstake_store::NewOperation;

const EPOCH_SECS: u64 = 60;
const LOCKUP_SECS: u64 = 600;

fn pool(n: u64) -> AccountAddress {
    format!("{n:#x}").parse().unwrap()
}

fn key() -> SecretBytes {
    SecretBytes::new(vec![42; 32])
}

fn config(url: &str) -> AptosStakeConfig {
    AptosStakeConfig {
        rest_url: url.to_string(),
        chain_id: Some(4),
        extra_pools: vec![],
        max_operations_per_epoch: 32,
    }
}

/// The treasury address of `key` (the adapter derives it; the chain funds it).
fn treasury_of(key: impl Into<TreasuryKey>) -> AccountAddress {
    AptosAdapter::new(config("http://127.0.0.1:9/v1"), key)
        .unwrap()
        .address()
}

fn genesis(treasury: AccountAddress) -> AptosGenesis {
    AptosGenesis {
        chain_id: 4,
        epoch_secs: EPOCH_SECS,
        lockup_secs: LOCKUP_SECS,
        // AIP-119's schedule (data/aptos/apr.csv)
        rates_bps: vec![679, 654, 629],
        validators: vec![
            ValidatorSpec {
                address: pool(0xa1),
                commission: 800,
                stake_octas: 1_000_000 * APT,
                delegation_pool: true,
            },
            ValidatorSpec {
                address: pool(0xb2),
                commission: 500,
                stake_octas: 2_000_000 * APT,
                delegation_pool: true,
            },
            // an owner's own stake pool: not a delegation pool
            ValidatorSpec {
                address: pool(0xc3),
                commission: 0,
                stake_octas: 1_500_000 * APT,
                delegation_pool: false,
            },
        ],
        accounts: vec![(treasury, 100_000 * APT)],
        genesis_secs: 1_760_000_000,
        tick_ms: 0,
        gas_unit_price: 100,
    }
}

fn adapter(c: &LocalAptos) -> Arc<dyn ChainAdapter> {
    journal::guarded(AptosAdapter::new(config(&c.url), key()).unwrap(), 1_000, 3)
}

fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 100,
        poll_interval: std::time::Duration::from_millis(20),
        max_attempts: 3,
        drill: None,
    }
}

fn op(key: &str, kind: OpKind, validator: AccountAddress, octas: u64) -> NewOperation {
    journal::op("APT", key, kind, &validator.to_string(), u128::from(octas))
}

async fn run(store: &softstake_store::Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, exec()).await
}

fn rejected(e: &AdapterError, says: &str) {
    assert!(matches!(e, AdapterError::Rejected { .. }), "not a rejection: {e}");
    assert!(e.to_string().contains(says), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_aptos_stake_lifecycle_on_the_local_chain() {
    let me = treasury_of(key());
    let c = start(genesis(me), 0).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "aptos").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let apt = reg.get("APT").unwrap();
    let (a, b) = (pool(0xa1), pool(0xb2));

    let model = chain.liquidity_model().await.unwrap();
    assert!(chain.rewards_from_positions() && model.rewards_auto_compound);
    assert_eq!(
        (model.epoch_secs, model.unbonding_period_secs),
        (EPOCH_SECS, LOCKUP_SECS),
        "read from the chain"
    );
    assert_eq!(model.min_delegation, Amount(u128::from(10 * APT)));
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 3, "{vals:?}");
    let solo = vals.iter().find(|v| v.id == pool(0xc3).to_string()).unwrap();
    assert!(
        !solo.active && solo.total_stake == Amount(u128::from(1_500_000 * APT)),
        "an owner's stake pool counts for the network's stake, never as a candidate: {solo:?}"
    );
    assert_eq!(vals[0].commission_bps, 800);

    for (k, p, octas) in [("d-a", a, 1_000 * APT), ("d-b", b, 500 * APT)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, OpKind::Delegate, p, octas)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    let (active, _, _) = c.stake(&a, &me);
    assert!(
        active < u128::from(1_000 * APT),
        "short by the add-stake fee until the epoch ends: {active}"
    );

    // the fee comes back at the epoch's end, then the stake earns
    c.advance_epochs(3);
    let synced = sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();
    let (ga, gb) = (c.stake(&a, &me).0, c.stake(&b, &me).0);
    assert!(ga > u128::from(1_000 * APT) && gb > u128::from(500 * APT), "{ga} {gb}");
    assert_eq!(synced.new_rewards, 2, "{synced:?}");
    assert_eq!(
        synced.new_amount,
        Amount(ga - u128::from(1_000 * APT) + gb - u128::from(500 * APT))
    );
    // two earning epochs at about 6.5 % a year less the 8 % commission
    let expected = u128::from(1_000 * APT) * 650 / 10_000 * 2 * u128::from(EPOCH_SECS) / (365 * 86_400) * 92 / 100;
    let got = ga - u128::from(1_000 * APT);
    assert!(got.abs_diff(expected) < expected / 10, "{got} vs {expected}");
    assert_eq!(
        sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
            .await
            .unwrap()
            .new_rewards,
        0,
        "booked once"
    );

    // unlock: pending_inactive (still earning) until the pool's lockup cycle ends
    assert_eq!(
        run(&store, chain.as_ref(), op("u-a", OpKind::Undelegate, a, 400 * APT)).await,
        OpOutcome::Confirmed
    );
    let unlocking = journal::amount_at(chain.as_ref(), &a.to_string(), StakeState::Deactivating).await;
    assert!(
        unlocking.abs_diff(u128::from(400 * APT)) <= 1,
        "the share pools round down: {unlocking}"
    );
    let early = chain
        .withdraw("w-early", &a.to_string(), Amount(u128::from(400 * APT)))
        .await
        .unwrap_err();
    assert!(
        matches!(early, AdapterError::BadInput { .. }) && early.to_string().contains("locked"),
        "{early}"
    );
    let until = c.locked_until_secs(&a);
    c.advance_secs(LOCKUP_SECS + EPOCH_SECS);
    assert!(c.locked_until_secs(&a) > until, "the lockup renewed");
    let (_, inactive, pending) = c.stake(&a, &me);
    assert!(
        pending == 0 && inactive > u128::from(400 * APT),
        "earned while pending_inactive: {inactive}"
    );
    sync_token(&store, chain.as_ref(), chain.now().await.unwrap())
        .await
        .unwrap();

    let before = c.balance(&me);
    let all = u64::try_from(inactive).unwrap();
    assert_eq!(
        run(&store, chain.as_ref(), op("w-a", OpKind::Withdraw, a, all)).await,
        OpOutcome::Confirmed
    );
    assert!(
        c.balance(&me) > before + all - APT / 100,
        "back in the account, less the gas"
    );
    assert_eq!(c.stake(&a, &me).1, 0);

    journal::assert_zero_drift(&store, chain.as_ref(), apt, &["d-a", "d-b", "u-a", "w-a"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_refusals_are_typed_rejections_with_nothing_done() {
    let me = treasury_of(key());
    let c = start(genesis(me), 0).await.unwrap();
    let chain = adapter(&c);
    let a = pool(0xa1).to_string();

    // below the minimum: the simulation aborts, nothing is signed or sent
    let e = chain
        .delegate("small", &a, Amount(u128::from(5 * APT)))
        .await
        .unwrap_err();
    rejected(&e, "EDELEGATOR_ACTIVE_BALANCE_TOO_LOW");
    // not a delegation pool
    let e = chain
        .delegate("solo", &pool(0xc3).to_string(), Amount(u128::from(50 * APT)))
        .await
        .unwrap_err();
    rejected(&e, "EDELEGATION_POOL_DOES_NOT_EXIST");
    assert_eq!(c.committed(), 0, "nothing ran");

    // a forged signature: one bit flipped
    let good = chain.delegate("good", &a, Amount(u128::from(50 * APT))).await.unwrap();
    let mut tx = decode_payload(&good.payload, &good.tx_id).unwrap();
    if let TransactionAuthenticator::Ed25519 { signature, .. } = &mut tx.authenticator {
        let mut s = signature.0;
        s[3] ^= 1;
        *signature = Ed25519Signature(s);
    }
    let forged = SignedTx {
        tx_id: tx_hash(&tx).unwrap(),
        payload: encode_payload(&tx).unwrap(),
        valid_until: good.valid_until,
    };
    rejected(&chain.broadcast(&forged).await.unwrap_err(), "INVALID_SIGNATURE");
    assert_eq!(c.committed(), 0);

    // a replay: a second transaction on the sequence number the first used
    let other = chain.delegate("other", &a, Amount(u128::from(60 * APT))).await.unwrap();
    chain.broadcast(&good).await.unwrap();
    chain.broadcast(&good).await.unwrap();
    assert_eq!(c.committed(), 1, "the same transaction again runs once");
    rejected(&chain.broadcast(&other).await.unwrap_err(), "SEQUENCE_NUMBER_TOO_OLD");
    assert_eq!(
        chain.tx_status(&other).await.unwrap(),
        TxStatus::Expired,
        "it can never run"
    );
    assert!(matches!(
        chain.tx_status(&good).await.unwrap(),
        TxStatus::Confirmed { .. }
    ));

    // expired: the ledger passed its expiration_timestamp_secs
    let stale = chain.delegate("stale", &a, Amount(u128::from(70 * APT))).await.unwrap();
    assert_eq!(
        chain.tx_status(&stale).await.unwrap(),
        TxStatus::NotFound,
        "may still land"
    );
    c.advance_secs(softstake_adapters::aptos::TX_TTL_SECS + 1);
    rejected(&chain.broadcast(&stale).await.unwrap_err(), "TRANSACTION_EXPIRED");
    assert_eq!(chain.tx_status(&stale).await.unwrap(), TxStatus::Expired);
    assert_eq!(c.committed(), 1);
    let (active, _, _) = c.stake(&pool(0xa1), &me);
    assert!(
        active > u128::from(49 * APT) && active < u128::from(51 * APT),
        "one stake: {active}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_resolves_with_exactly_one_stake() {
    let me = treasury_of(key());
    let c = start(genesis(me), 0).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "aptos").await;
    for (n, (k, point)) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ]
    .into_iter()
    .enumerate()
    {
        let o = op(k, OpKind::Delegate, pool(0xb2), 100 * APT);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, exec()).await;
        assert_eq!(recovered, vec![(k.to_string(), OpOutcome::Confirmed)]);
        assert_eq!(c.committed(), n as u64 + 1, "{k}: exactly one transaction");
        let (active, _, _) = c.stake(&pool(0xb2), &me);
        let want = u128::from(100 * APT) * (n as u128 + 1);
        assert!(active <= want && active > want - u128::from(APT), "{k}: {active}");
    }
}

/// Production signing: the treasury key is generated inside a SoftHSM2 token (PKCS#11,
/// `CKM_EDDSA`); the chain verifies the transaction's signature with aptos-sdk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_aptos_operations_signed_by_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = softstake_e2e::hsm_key(dir.path(), "aptos-1", softstake_adapters::pkcs11::KeyAlgorithm::Ed25519);
    let me = treasury_of(TreasuryKey::Hsm(hsm.clone()));
    assert_eq!(
        hsm.address("aptos", "").unwrap(),
        me.to_string(),
        "`softstake keys` names the adapter's account"
    );
    let c = start(genesis(me), 0).await.unwrap();
    let chain = journal::guarded(
        AptosAdapter::new(config(&c.url), TreasuryKey::Hsm(hsm)).unwrap(),
        1_000,
        3,
    );
    let store = journal::sqlite_store(dir.path(), "aptos-hsm").await;
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("hsm-d", OpKind::Delegate, pool(0xa1), 20 * APT)
        )
        .await,
        OpOutcome::Confirmed
    );
    assert!(c.stake(&pool(0xa1), &me).0 > u128::from(19 * APT));
}

/// `softstake doctor` passes against the local chain (chain id, the treasury account, its
/// balance against a call's gas) and fails with its fix for a key whose account does not
/// exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_the_local_chain_and_names_a_missing_account() {
    use softstake_e2e::doctor::{assert_fails, net, run};
    let c = start(genesis(treasury_of(key())), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = run(
        &net(dir.path(), "APT", "aptos", &c.url, &[42; 32], "genesis_hash = \"4\"\n"),
        "APT",
    )
    .await;
    assert!(good.passed(), "{}", good.render());
    let nobody = run(&net(dir.path(), "APT", "aptos", &c.url, &[7; 32], ""), "APT").await;
    assert_fails(&nobody, "account", "does not exist");
    let wrong_chain = run(
        &net(dir.path(), "APT", "aptos", &c.url, &[42; 32], "genesis_hash = \"1\"\n"),
        "APT",
    )
    .await;
    assert_fails(&wrong_chain, "chain id", "config wants 1");
}

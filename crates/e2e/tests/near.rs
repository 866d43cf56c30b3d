//! The NEAR adapter against our local NEAR chain (`softstake-localchains`, feature `near`):
//! NEAR JSON-RPC with borsh transactions checked as a node checks them and the reference
//! staking pool's rules, driven through the operations journal: delegate to two pools,
//! rewards compounding over several epochs realized from the positions' growth,
//! undelegate, an early withdrawal refused, withdrawal after 4 epochs, reconciliation
//! with zero drift; a wrong key or a reused nonce as typed rejections with nothing
//! recorded as done; a dropped reply resolved without a second deposit; expiry.
//!
//! `cargo nextest run -p softstake-e2e --features near-local` (`scripts/test.sh` runs it).
#![cfg(feature = "near-local")]

use std::sync::Arc;

use softstake_adapters::near::{NearAdapter, NearConfig};
use softstake_adapters::traits::{OpKind, StakeState, TxStatus};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_localchains::near::{start, LocalNear, NearGenesis, PoolSpec, NEAR};
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::sync_token;
use softstake_store::{NewOperation, OperationState, Store};

const TREASURY: &str = "treasury.near";
const POOLS: [&str; 3] = ["alpha.poolv1.near", "beta.poolv1.near", "gamma.poolv1.near"];
const EPOCH_BLOCKS: u64 = 200;
const VALIDITY_BLOCKS: u64 = 100;

fn key() -> SecretBytes {
    SecretBytes::new(vec![42; 32])
}

fn genesis() -> NearGenesis {
    genesis_for(softstake_adapters::near::secret_key(&key()).unwrap().public_key())
}

fn genesis_for(pk: near_crypto::PublicKey) -> NearGenesis {
    NearGenesis {
        epoch_length: EPOCH_BLOCKS,
        // one block per chain second: an epoch is 200 s of chain time
        block_nanos: 1_000_000_000,
        transaction_validity_period: VALIDITY_BLOCKS,
        // mainnet pools earn about 9 % a year before their fee
        apr_bps: 900,
        pools: POOLS
            .iter()
            .zip([(10, 100), (5, 100), (0, 1)])
            .map(|(p, fee)| PoolSpec {
                account_id: p.to_string(),
                owner_stake: 1_000_000 * NEAR,
                reward_fee: fee,
            })
            .collect(),
        solo_validators: vec![],
        accounts: vec![(TREASURY.into(), pk, 100_000 * NEAR)],
        genesis_nanos: 1_750_000_000_000_000_000,
        tick_ms: 20,
    }
}

fn config(c: &LocalNear) -> NearConfig {
    NearConfig {
        rpc_url: c.url.clone(),
        account_id: TREASURY.into(),
        extra_pools: vec![],
        max_operations_per_epoch: 32,
    }
}

fn adapter_with(c: &LocalNear, key: &SecretBytes) -> Arc<dyn ChainAdapter> {
    journal::guarded(NearAdapter::new(config(c), key).unwrap(), 1_000, 3)
}

fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 100,
        poll_interval: std::time::Duration::from_millis(50),
        max_attempts: 3,
        drill: None,
    }
}

fn op(key: &str, kind: OpKind, pool: &str, yocto: u128) -> NewOperation {
    journal::op("NEAR", key, kind, pool, yocto)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, exec()).await
}

async fn store(dir: &tempfile::TempDir) -> Store {
    journal::sqlite_store(dir.path(), "near").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_near_stake_lifecycle_on_the_local_chain() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = adapter_with(&c, &key());
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let near = reg.get("NEAR").unwrap();
    let (alpha, beta) = (POOLS[0], POOLS[1]);

    let model = chain.liquidity_model().await.unwrap();
    assert!(chain.rewards_from_positions() && model.rewards_auto_compound && model.epoch_aligned);
    assert_eq!(
        model.epoch_secs, EPOCH_BLOCKS,
        "epoch_length × 1 s blocks, from the chain"
    );
    assert_eq!(model.unbonding_period_secs, 4 * EPOCH_BLOCKS);
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!(vals[0].commission_bps, 1_000, "alpha's 10/100 reward fee");

    for (k, pool, amount) in [("d-a", alpha, 3_000 * NEAR), ("d-b", beta, 1_000 * NEAR)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, OpKind::Delegate, pool, amount)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    assert_eq!(c.pool_balances(alpha, TREASURY).0, 3_000 * NEAR);
    assert_eq!(
        journal::amount_at(chain.as_ref(), beta, StakeState::Active).await,
        1_000 * NEAR
    );
    let now = chain.now().await.unwrap();
    assert_eq!(
        sync_token(&store, chain.as_ref(), now).await.unwrap().new_rewards,
        0,
        "no growth yet"
    );

    // three epochs of rewards compound into the share price
    c.advance_epochs(3);
    let now = chain.now().await.unwrap();
    let synced = sync_token(&store, chain.as_ref(), now).await.unwrap();
    let (a, b) = (c.pool_balances(alpha, TREASURY).0, c.pool_balances(beta, TREASURY).0);
    assert!(a > 3_000 * NEAR && b > 1_000 * NEAR, "{a} {b}");
    assert_eq!(synced.new_rewards, 2, "{synced:?}");
    assert_eq!(synced.new_amount, Amount(a - 3_000 * NEAR + b - 1_000 * NEAR));
    // about 9 % a year less alpha's 10 % fee over 600 s
    let expected = 3_000 * NEAR * 900 / 10_000 * 600 / (365 * 86_400) * 90 / 100;
    assert!(
        (a - 3_000 * NEAR).abs_diff(expected) < expected / 100,
        "{} vs {expected}",
        a - 3_000 * NEAR
    );
    let now = chain.now().await.unwrap();
    assert_eq!(
        sync_token(&store, chain.as_ref(), now).await.unwrap().new_rewards,
        0,
        "booked once"
    );

    // undelegate: locked for 4 epochs
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("u-a", OpKind::Undelegate, alpha, 1_000 * NEAR)
        )
        .await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        journal::amount_at(chain.as_ref(), alpha, StakeState::Deactivating).await,
        1_000 * NEAR
    );
    let early = chain
        .withdraw("w-early", alpha, Amount(1_000 * NEAR))
        .await
        .unwrap_err();
    assert!(
        matches!(early, AdapterError::BadInput { .. }) && early.to_string().contains("locked"),
        "{early}"
    );
    c.advance_epochs(4);
    assert_eq!(
        journal::amount_at(chain.as_ref(), alpha, StakeState::Withdrawable).await,
        1_000 * NEAR
    );
    let before = c.balance(TREASURY);
    assert_eq!(
        run(&store, chain.as_ref(), op("w-a", OpKind::Withdraw, alpha, 1_000 * NEAR)).await,
        OpOutcome::Confirmed
    );
    assert!(
        c.balance(TREASURY) > before + 999 * NEAR,
        "back in the account, less the gas fee"
    );

    journal::assert_zero_drift(&store, chain.as_ref(), near, &["d-a", "d-b", "u-a", "w-a"]).await;
}

/// Production signing: the treasury's full-access key is generated inside a SoftHSM2
/// token (PKCS#11, `CKM_EDDSA`); the local chain checks the borsh transactions' Ed25519
/// signatures against the account's access key, as a node does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_near_operations_signed_by_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let hsm = softstake_e2e::hsm_key(dir.path(), "near-1", softstake_adapters::pkcs11::KeyAlgorithm::Ed25519);
    let pk: near_crypto::PublicKey = hsm.info().near_public_key().parse().unwrap();
    assert_eq!(
        hsm.address("near", "").unwrap(),
        hex::encode(pk.key_data()),
        "the implicit account"
    );
    let c = start(genesis_for(pk.clone()), 0).await.unwrap();
    let a = NearAdapter::new(config(&c), softstake_adapters::TreasuryKey::Hsm(hsm)).unwrap();
    assert_eq!(a.public_key(), pk, "the adapter signs with the token's key");
    let chain = journal::guarded(a, 1_000, 3);
    let store = store(&dir).await;
    for (k, kind, amount) in [
        ("hsm-d", OpKind::Delegate, 2_000 * NEAR),
        ("hsm-u", OpKind::Undelegate, 500 * NEAR),
    ] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, kind, POOLS[0], amount)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    let (staked, unstaked) = c.pool_balances(POOLS[0], TREASURY);
    // (an epoch boundary may have passed in between: rewards only add to the stake)
    assert!((1_500 * NEAR - 1_000..1_501 * NEAR).contains(&staked), "{staked}");
    assert_eq!(unstaked, 500 * NEAR);
    // the raw devnet key is not this account's key: the chain refuses what it signs
    let stranger = adapter_with(&c, &key());
    let out = run(&store, stranger.as_ref(), op("raw-d", OpKind::Delegate, POOLS[1], NEAR)).await;
    assert!(matches!(out, OpOutcome::Failed(_)), "{out:?}");
}

/// A validator staking on its own account (no pool contract) is in the validator set:
/// `validators()` and `positions()` skip it instead of failing, and the pools still work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_validators_that_are_not_pools_are_skipped() {
    let mut g = genesis();
    g.solo_validators = vec![("solo-validator.near".into(), 2_000_000 * NEAR)];
    let c = start(g, 0).await.unwrap();
    let chain = adapter_with(&c, &key());
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 3, "the three pools, not the solo validator: {vals:?}");
    assert!(vals.iter().all(|v| v.id != "solo-validator.near"));
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("d-solo", OpKind::Delegate, POOLS[0], 100 * NEAR)
        )
        .await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        journal::amount_at(chain.as_ref(), POOLS[0], StakeState::Active).await,
        100 * NEAR
    );
    // an operation on the solo validator is refused before anything is signed
    let e = chain
        .undelegate("u-solo", "solo-validator.near", Amount(NEAR))
        .await
        .unwrap_err();
    assert!(
        matches!(e, AdapterError::BadInput { .. }) && e.to_string().contains("not a staking pool"),
        "{e}"
    );
}

/// A node failing while the adapter looks up a transaction's reference block says nothing
/// about the transaction: the status is a transient error (retried), not Expired (which
/// would sign the operation again while the first may still land).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_reference_block_errors_are_transient_not_expired() {
    let mut g = genesis();
    g.tick_ms = 0;
    let c = start(g, 0).await.unwrap();
    let a = NearAdapter::new(config(&c), key()).unwrap();
    let tx = a.delegate("never-sent", POOLS[0], Amount(NEAR)).await.unwrap();
    assert_eq!(a.tx_status(&tx).await.unwrap(), TxStatus::NotFound, "may still land");
    c.fail_block_by_hash(true);
    let e = a.tx_status(&tx).await.unwrap_err();
    assert!(matches!(e, AdapterError::Transient { .. }), "{e}");
    c.fail_block_by_hash(false);
    assert_eq!(a.tx_status(&tx).await.unwrap(), TxStatus::NotFound);
}

/// A key the chain does not know, and a nonce already used: typed rejections, the
/// journal records the failure, nothing moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_wrong_key_and_reused_nonce_are_typed_rejections() {
    let c = start(genesis(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let before = c.balance(TREASURY);

    let stranger = adapter_with(&c, &SecretBytes::new(vec![9; 32]));
    let out = run(
        &store,
        stranger.as_ref(),
        op("d-stranger", OpKind::Delegate, POOLS[0], NEAR),
    )
    .await;
    assert!(matches!(out, OpOutcome::Failed(_)), "{out:?}");
    assert_eq!(
        store.operation("d-stranger").await.unwrap().unwrap().state,
        OperationState::Failed
    );

    let chain = adapter_with(&c, &key());
    let first = chain.delegate("n-1", POOLS[0], Amount(NEAR)).await.unwrap();
    let second = chain.delegate("n-2", POOLS[1], Amount(NEAR)).await.unwrap();
    chain.broadcast(&first).await.unwrap();
    let e = chain.broadcast(&second).await.unwrap_err();
    assert!(
        matches!(e, AdapterError::Rejected { .. }) && e.to_string().contains("InvalidNonce"),
        "{e}"
    );
    assert_eq!(
        chain.tx_status(&second).await.unwrap(),
        TxStatus::Expired,
        "its nonce went to another"
    );
    assert_eq!(c.pool_balances(POOLS[1], TREASURY), (0, 0), "the second never landed");
    assert!(c.balance(TREASURY) < before, "only the first (and its fee) moved");

    // a transaction whose block is beyond the validity period can never land
    let stale = chain.delegate("n-3", POOLS[2], Amount(NEAR)).await.unwrap();
    c.fast_forward(VALIDITY_BLOCKS + 1);
    assert_eq!(chain.tx_status(&stale).await.unwrap(), TxStatus::Expired);
    let e = chain.broadcast(&stale).await.unwrap_err();
    assert!(e.to_string().contains("Expired"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_resolves_without_a_second_deposit() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = adapter_with(&c, &key());
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let mut expected = 0u128;
    for (k, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(k, OpKind::Delegate, POOLS[2], 500 * NEAR);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, exec()).await;
        assert_eq!(recovered, vec![(k.to_string(), OpOutcome::Confirmed)]);
        expected += 500 * NEAR;
        assert_eq!(
            c.pool_balances(POOLS[2], TREASURY).0,
            expected,
            "{k}: exactly one deposit"
        );
    }
}

/// `softstake doctor` passes against the local chain (chain id, the treasury's
/// full-access key, its balance against the gas of a call, the pools), and fails with its
/// fix for a key the account does not hold and for an account that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_the_local_chain_and_names_a_missing_key() {
    use softstake_e2e::doctor::{assert_fails, line, net, run};
    let c = start(genesis(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let near = |account: &str| format!("[chains.NEAR.near]\naccount_id = \"{account}\"\n");
    let good = run(
        &net(dir.path(), "NEAR", "near", &c.url, &[42; 32], &near(TREASURY)),
        "NEAR",
    )
    .await;
    assert!(good.passed(), "{}", good.render());
    assert!(
        line(&good, "access key").detail.contains("full access"),
        "{}",
        good.render()
    );

    let other_key = run(
        &net(dir.path(), "NEAR", "near", &c.url, &[7; 32], &near(TREASURY)),
        "NEAR",
    )
    .await;
    assert_fails(&other_key, "access key", "as a full-access key");
    let nobody = run(
        &net(dir.path(), "NEAR", "near", &c.url, &[42; 32], &near("nobody.near")),
        "NEAR",
    )
    .await;
    assert_fails(&nobody, "account", "does not exist");
}

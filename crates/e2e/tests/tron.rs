//! The TRON adapter against our local TRON chain (`softstake-localchains`, feature `tron`):
//! java-tron's HTTP API with protobuf transactions checked as java-tron checks them
//! (signature, TAPOS, expiration, the actuators' rules) and Stake 2.0's rules, driven
//! through the operations journal: freeze and vote for two witnesses, voting rewards over
//! several maintenance periods claimed and realized from TronGrid's history, a second
//! claim within 24 h refused, undelegate (vote down + unfreeze into the pooled
//! `unfreezing`), an early withdrawal refused, withdrawal after 14 days, reconciliation
//! with zero drift; a key outside the owner's permission as a typed rejection with
//! nothing recorded as done; expiry; a dropped reply resolved without a second freeze.
//!
//! `cargo nextest run -p softstake-e2e --features tron-local` (`scripts/test.sh` runs it).
#![cfg(feature = "tron-local")]

use std::sync::Arc;

use softstake_adapters::traits::{OpKind, StakeState, TxStatus};
use softstake_adapters::tron::{wire, TronAdapter, TronConfig, UNFREEZING, UNVOTED};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes, SignedTx};
use softstake_core::plan::ALL_VALIDATORS;
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_localchains::tron::{start, witnesses_from_csv, LocalTron, TronGenesis, DAY_MS, TRX};
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::sync_token;
use softstake_store::{NewOperation, OperationState, Store};

const MAINTENANCE_MS: i64 = 21_600_000;

fn key() -> SecretBytes {
    SecretBytes::new(vec![42; 32])
}

fn treasury() -> String {
    let k = softstake_adapters::tron::signing_key(&key()).unwrap();
    wire::to_base58(&wire::address_of(k.verifying_key()))
}

fn witnesses() -> Vec<softstake_localchains::tron::WitnessSpec> {
    witnesses_from_csv(include_str!("../../../data/tron/super_representatives.csv"), 30).unwrap()
}

fn genesis() -> TronGenesis {
    TronGenesis {
        witnesses: witnesses(),
        accounts: vec![(treasury(), 100_000 * TRX)],
        genesis_ms: 1_750_000_000_000,
        block_ms: 3_000,
        maintenance_interval_ms: MAINTENANCE_MS,
        unfreeze_delay_days: 14,
        solid_lag_blocks: 19,
        witness127_pay_per_block_sun: 128 * TRX,
        witness_pay_per_block_sun: 8 * TRX,
        tick_ms: 20,
    }
}

fn adapter_with(c: &LocalTron, key: &SecretBytes, owner: Option<String>) -> Arc<dyn ChainAdapter> {
    let cfg = TronConfig {
        api_url: c.url.clone(),
        api_key: None,
        expiration_secs: 600,
        max_operations_per_epoch: 32,
        owner_address: owner,
    };
    journal::guarded(TronAdapter::new(cfg, key).unwrap(), 1_000, 3)
}

fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 200,
        poll_interval: std::time::Duration::from_millis(50),
        max_attempts: 3,
        drill: None,
    }
}

fn op(key: &str, kind: OpKind, witness: &str, sun: u128) -> NewOperation {
    journal::op("TRX", key, kind, witness, sun)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, exec()).await
}

async fn store(dir: &tempfile::TempDir) -> Store {
    journal::sqlite_store(dir.path(), "tron").await
}

/// Claims through the journal (confirmed), lets the claim become solid and syncs: the
/// sync's (new reward records, their amount).
async fn claim_and_sync(c: &LocalTron, store: &Store, chain: &dyn ChainAdapter, key: &str, sun: u128) -> (u64, Amount) {
    assert_eq!(
        run(store, chain, op(key, OpKind::Claim, ALL_VALIDATORS, sun)).await,
        OpOutcome::Confirmed,
        "{key}"
    );
    c.solidify();
    let now = chain.now().await.unwrap();
    let synced = sync_token(store, chain, now).await.unwrap();
    (synced.new_rewards, synced.new_amount)
}

/// Production signing: the treasury key is generated inside a SoftHSM2 token (PKCS#11),
/// the genesis funds its `T…` address, and the local chain (which recovers the signer
/// from `r ‖ s ‖ v` as java-tron does) accepts the freezes and votes the token signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_tron_operations_signed_by_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let key = softstake_e2e::hsm_key(dir.path(), "trx-1", softstake_adapters::pkcs11::KeyAlgorithm::Secp256k1);
    let me = key.address("tron", "cosmos").unwrap();
    let c = start(
        TronGenesis {
            accounts: vec![(me.clone(), 100_000 * TRX)],
            ..genesis()
        },
        0,
    )
    .await
    .unwrap();
    let cfg = TronConfig {
        api_url: c.url.clone(),
        api_key: None,
        expiration_secs: 600,
        max_operations_per_epoch: 32,
        owner_address: None,
    };
    let a = TronAdapter::new(cfg, softstake_adapters::TreasuryKey::Hsm(key)).unwrap();
    assert_eq!(a.address(), me, "the adapter acts for the HSM key's address");
    let chain = journal::guarded(a, 1_000, 3);
    let store = store(&dir).await;
    let w0 = witnesses()[0].address.clone();
    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-d", OpKind::Delegate, &w0, 2_000 * TRX)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.votes(&me, &w0), 2_000, "one vote per TRX frozen, signed by the token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_tron_stake_lifecycle_on_the_local_chain() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = adapter_with(&c, &key(), None);
    let me = treasury();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let trx = reg.get("TRX").unwrap();
    let ws = witnesses();
    let (w0, w1) = (ws[0].address.as_str(), ws[1].address.as_str());

    let model = chain.liquidity_model().await.unwrap();
    assert_eq!(
        model.unbonding_period_secs,
        14 * 86_400,
        "getUnfreezeDelayDays from the chain"
    );
    assert_eq!(model.epoch_secs, 21_600, "getMaintenanceTimeInterval from the chain");
    assert_eq!((model.stake_unit, model.min_delegation), (Amount(TRX), Amount(TRX)));
    assert!(model.claim_all_validators && !model.rewards_auto_compound);
    assert_eq!(chain.pooled_unbonding(), Some(UNFREEZING));
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 30);
    let v0 = vals.iter().find(|v| v.id == w0).unwrap();
    assert_eq!(v0.commission_bps, u32::from(ws[0].brokerage_pct) * 100, "getBrokerage");

    for (k, w, trx_amount) in [("d-a", w0, 3_000), ("d-b", w1, 1_000)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, OpKind::Delegate, w, trx_amount * TRX)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    assert_eq!(
        (c.votes(&me, w0), c.votes(&me, w1)),
        (3_000, 1_000),
        "one vote per TRX frozen"
    );
    assert_eq!(c.stake(&me).0, 4_000 * TRX);
    assert_eq!(
        journal::amount_at(chain.as_ref(), w1, StakeState::Active).await,
        1_000 * TRX
    );

    // votes count from the next maintenance and are paid at the one after
    c.advance_maintenances(3);
    let accrued = c.stake(&me).2;
    assert!(accrued > 0, "two periods of voting rewards");
    let claimable = chain.claimable().await.unwrap();
    assert_eq!(claimable, vec![(ALL_VALIDATORS.to_string(), Amount(accrued))]);
    assert_eq!(
        claim_and_sync(&c, &store, chain.as_ref(), "c-1", accrued).await,
        (1, Amount(accrued))
    );

    // a second claim within 24 h: refused by the chain, recorded as failed
    c.advance_maintenances(1);
    let out = run(&store, chain.as_ref(), op("c-2", OpKind::Claim, ALL_VALIDATORS, 1)).await;
    assert!(
        matches!(&out, OpOutcome::Failed(r) if r.contains("less than 24 hours")),
        "{out:?}"
    );
    assert_eq!(
        store.operation("c-2").await.unwrap().unwrap().state,
        OperationState::Failed
    );

    c.advance_secs(DAY_MS / 1_000);
    let accrued2 = c.stake(&me).2;
    assert_eq!(
        claim_and_sync(&c, &store, chain.as_ref(), "c-3", accrued2).await,
        (1, Amount(accrued2)),
        "booked once each"
    );

    // undelegate: the vote goes down, the TRX unfreezes for 14 days under `unfreezing`
    assert_eq!(
        run(&store, chain.as_ref(), op("u-a", OpKind::Undelegate, w0, 1_000 * TRX)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.votes(&me, w0), 2_000);
    assert_eq!(
        journal::amount_at(chain.as_ref(), UNFREEZING, StakeState::Deactivating).await,
        1_000 * TRX
    );
    let early = chain
        .withdraw("w-early", UNFREEZING, Amount(1_000 * TRX))
        .await
        .unwrap_err();
    assert!(matches!(early, AdapterError::BadInput { .. }), "{early}");
    c.advance_secs(14 * DAY_MS / 1_000 + 3);
    assert_eq!(
        journal::amount_at(chain.as_ref(), UNFREEZING, StakeState::Withdrawable).await,
        1_000 * TRX
    );
    let before = c.balance(&me);
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("w-u", OpKind::Withdraw, UNFREEZING, 1_000 * TRX)
        )
        .await,
        OpOutcome::Confirmed
    );
    assert!(
        c.balance(&me) >= before + 999 * TRX,
        "back in the balance, less bandwidth burned"
    );

    journal::assert_zero_drift(&store, chain.as_ref(), trx, &["d-a", "d-b", "u-a", "w-u"]).await;
}

/// A key outside the owner's permission: java-tron's SIGERROR as a typed rejection, the
/// journal records the failure, nothing moves. A transaction past its expiration can
/// never land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_foreign_key_and_expiry_are_typed_rejections() {
    let c = start(genesis(), 0).await.unwrap();
    let me = treasury();
    let w0 = witnesses()[0].address.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let before = c.balance(&me);

    let foreign = adapter_with(&c, &SecretBytes::new(vec![9; 32]), Some(me.clone()));
    let out = run(
        &store,
        foreign.as_ref(),
        op("d-foreign", OpKind::Delegate, &w0, 10 * TRX),
    )
    .await;
    assert!(
        matches!(&out, OpOutcome::Failed(r) if r.contains("SIGERROR")),
        "{out:?}"
    );
    assert_eq!(
        store.operation("d-foreign").await.unwrap().unwrap().state,
        OperationState::Failed
    );
    assert_eq!((c.balance(&me), c.stake(&me).0), (before, 0), "nothing moved");

    let chain = adapter_with(&c, &key(), None);
    let stale = chain.delegate("e-1", &w0, Amount(10 * TRX)).await.unwrap();
    c.advance_secs(603);
    assert_eq!(chain.tx_status(&stale).await.unwrap(), TxStatus::Expired);
    let e = chain.broadcast(&stale).await.unwrap_err();
    assert!(
        matches!(e, AdapterError::Rejected { .. }) && e.to_string().contains("TRANSACTION_EXPIRATION_ERROR"),
        "{e}"
    );
    assert_eq!(c.stake(&me).0, 0, "the stale freeze never landed");

    // whole TRX only: votes cannot carry fractions
    let e = chain.delegate("e-2", &w0, Amount(TRX + 1)).await.unwrap_err();
    assert!(matches!(e, AdapterError::BadInput { .. }), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_resolves_without_a_second_freeze() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = adapter_with(&c, &key(), None);
    let me = treasury();
    let w = witnesses()[2].address.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let mut expected = 0u128;
    for (k, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(k, OpKind::Delegate, &w, 500 * TRX);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, exec()).await;
        assert_eq!(recovered, vec![(k.to_string(), OpOutcome::Confirmed)]);
        expected += 500 * TRX;
        assert_eq!(c.stake(&me).0, expected, "{k}: exactly one freeze");
        assert_eq!(u128::from(c.votes(&me, &w)) * TRX, expected, "{k}: and its vote");
    }
}

/// The first transaction of a two-contract operation alone (as if only it had landed).
fn first_only(tx: &SignedTx) -> SignedTx {
    use prost::Message;
    let list: Vec<String> = serde_json::from_str(&tx.payload).unwrap();
    assert_eq!(list.len(), 2, "a two-contract operation");
    let t = wire::Transaction::decode(hex::decode(&list[0]).unwrap().as_slice()).unwrap();
    SignedTx {
        tx_id: hex::encode(wire::tx_id(&t.raw_data)),
        payload: serde_json::to_string(&list[..1]).unwrap(),
        valid_until: tx.valid_until,
    }
}

/// Half of a two-contract operation landed (the freeze without its vote; the vote down
/// without its unfreeze): the journal's next attempt is built from the account's state
/// and completes it without freezing or unfreezing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_half_landed_operations_complete_from_the_account_state() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = adapter_with(&c, &key(), None);
    let me = treasury();
    let w = witnesses()[3].address.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;

    // the freeze lands, its vote does not: 100 TRX frozen without a vote
    let bundle = chain.delegate("half-d", &w, Amount(100 * TRX)).await.unwrap();
    chain.broadcast(&first_only(&bundle)).await.unwrap();
    c.solidify();
    assert_eq!((c.stake(&me).0, c.votes(&me, &w)), (100 * TRX, 0));
    assert_eq!(
        journal::amount_at(chain.as_ref(), UNVOTED, StakeState::Active).await,
        100 * TRX
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("d", OpKind::Delegate, &w, 100 * TRX)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        (c.stake(&me).0, c.votes(&me, &w)),
        (100 * TRX, 100),
        "voted, not frozen twice"
    );

    // the vote down lands, its unfreeze does not
    let bundle = chain.undelegate("half-u", &w, Amount(40 * TRX)).await.unwrap();
    chain.broadcast(&first_only(&bundle)).await.unwrap();
    c.solidify();
    assert_eq!((c.stake(&me).0, c.votes(&me, &w)), (100 * TRX, 60));
    assert_eq!(
        run(&store, chain.as_ref(), op("u", OpKind::Undelegate, &w, 40 * TRX)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        (c.stake(&me).0, c.stake(&me).1, c.votes(&me, &w)),
        (60 * TRX, 40 * TRX, 60),
        "unfrozen once, the votes left alone"
    );
}

/// `softstake doctor` passes against the local chain (activated account, chain
/// parameters, TronGrid's account history, the maintenance period and unfreeze delay
/// against tokens.toml, the witnesses), and fails with its fix for a key whose account
/// was never activated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_the_local_chain_and_names_an_unactivated_account() {
    use softstake_e2e::doctor::{assert_fails, line, net, run};
    let c = start(genesis(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tron = "[chains.TRX.tron]\nexpiration_secs = 600\n";
    let good = run(&net(dir.path(), "TRX", "tron", &c.url, &[42; 32], tron), "TRX").await;
    assert!(good.passed(), "{}", good.render());
    assert_eq!(
        line(&good, "history").verdict,
        softstake_adapters::preflight::Verdict::Pass
    );
    assert_eq!(
        line(&good, "unbonding period").verdict,
        softstake_adapters::preflight::Verdict::Pass
    );

    let fresh = run(&net(dir.path(), "TRX", "tron", &c.url, &[7; 32], tron), "TRX").await;
    assert_fails(&fresh, "account", "to activate it");
}

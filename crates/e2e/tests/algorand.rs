//! The Algorand adapter against our local Algorand chain (`softstake-localchains`, feature
//! `algorand`): algod's and the indexer's REST APIs, transactions read by the chain's own
//! msgpack codec and Ed25519 check, the ledger's payment, keyreg and proposer-payout
//! rules, driven through the operations journal: "delegate" moves ALGO from custody to our
//! staking accounts and takes them online with the participation node's keys (paying the
//! 2 ALGO incentive fee), payouts after the 320-round look-back are realized exactly as
//! the chain paid them, withdrawals bring ALGO back (going offline under 30 000 ALGO),
//! reconciliation with zero drift; a forged signature, a replay, an expired transaction
//! and an amount below the floor, each a typed rejection with nothing done; dropped
//! replies resolved with one effect each; HSM signing; `softstake doctor`.
//!
//! `cargo nextest run -p softstake-e2e --features algorand-local` (`scripts/test.sh` runs it).
#![cfg(feature = "algorand-local")]

use std::sync::Arc;

use base64::Engine as _;
use softstake_adapters::algorand::wire::Payload;
use softstake_adapters::algorand::{AlgorandAdapter, AlgorandConfig, ALGO};
use softstake_adapters::traits::{OpKind, StakeState, TxStatus};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes, SignedTx};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_localchains::algorand::{
    address, genesis_hash_b64, start, AlgorandGenesis, GenesisAccount, LocalAlgorand, MIN_BALANCE,
};
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::sync_token;
use softstake_store::{NewOperation, Store};

const GENESIS_ID: &str = "e2e-v1";
const A: u64 = 1_000_000;

fn seed() -> [u8; 32] {
    [42; 32]
}

fn pk(seed: [u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes()
}

fn me() -> [u8; 32] {
    pk(seed())
}

/// Staking accounts 0 and 1 rekeyed to `custody` with participation keys on the node;
/// account 2 not rekeyed.
fn staking(i: u8) -> [u8; 32] {
    pk([100 + i; 32])
}

fn genesis_for(custody: [u8; 32]) -> AlgorandGenesis {
    let mut accounts = vec![GenesisAccount {
        address: custody,
        amount: 1_000_000 * A,
        auth: None,
        participation_key: false,
    }];
    for i in 0..3 {
        accounts.push(GenesisAccount {
            address: staking(i),
            amount: MIN_BALANCE,
            auth: (i < 2).then_some(custody),
            participation_key: true,
        });
    }
    AlgorandGenesis {
        genesis_id: GENESIS_ID.into(),
        start_time_secs: 1_750_000_000,
        round_ms: 2_800,
        bonus: 10 * A,
        fee_sink: 1_000_000 * A,
        // our 150 000 ALGO propose about a third of the blocks
        network_online_stake: 300_000 * A,
        accounts,
        pending_memory_rounds: 1_000,
        seed: 5,
        tick_ms: 0,
    }
}

fn genesis() -> AlgorandGenesis {
    genesis_for(me())
}

fn config(c: &LocalAlgorand, genesis_hash: Option<String>, accounts: &[u8]) -> AlgorandConfig {
    AlgorandConfig {
        algod_url: c.algod_url.clone(),
        algod_token: Some("a".repeat(64)),
        indexer_url: c.indexer_url.clone(),
        genesis_hash,
        staking_accounts: accounts.iter().map(|i| address(&staking(*i))).collect(),
        max_operations_per_epoch: 32,
    }
}

fn adapter(c: &LocalAlgorand, genesis_hash: Option<String>) -> AlgorandAdapter {
    AlgorandAdapter::new(config(c, genesis_hash, &[0, 1, 2]), SecretBytes::new(seed().to_vec())).unwrap()
}

fn guarded(c: &LocalAlgorand) -> Arc<dyn ChainAdapter> {
    journal::guarded(adapter(c, Some(genesis_hash_b64(GENESIS_ID))), 1_000, 3)
}

fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 50,
        poll_interval: std::time::Duration::from_millis(20),
        max_attempts: 3,
        drill: None,
    }
}

fn op(key: &str, kind: OpKind, account: u8, amount: u128) -> NewOperation {
    journal::op("ALGO", key, kind, &address(&staking(account)), amount)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, exec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_algo_online_payouts_and_exit_on_the_local_chain() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "algo").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let algo = reg.get("ALGO").unwrap();
    let (s0, s1) = (address(&staking(0)), address(&staking(1)));

    let model = chain.liquidity_model().await.unwrap();
    assert!(model.instant_exit && model.rewards_auto_compound);
    assert_eq!((model.unbonding_period_secs, model.epoch_secs), (0, 0));
    assert_eq!(model.min_delegation, Amount(30_000 * ALGO), "the payout floor");
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 3);
    assert!(vals[0].active && vals[1].active, "rekeyed, with participation keys");
    assert!(!vals[2].active, "account 2 is not rekeyed to the treasury");

    // "delegate": custody → staking account, online keyreg with the node's key, 2 ALGO fee
    for (k, i, algos) in [("d-0", 0, 100_000), ("d-1", 1, 50_000)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, OpKind::Delegate, i, algos * ALGO)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    let (bal0, online0, eligible0) = c.account(&staking(0));
    assert_eq!(
        bal0,
        MIN_BALANCE + 100_000 * A,
        "exactly the delegation: the keyreg's fee was funded by the payment"
    );
    assert!(online0 && eligible0, "online and incentive eligible");
    assert_eq!(
        journal::amount_at(chain.as_ref(), &s1, StakeState::Active).await,
        50_000 * ALGO
    );
    // a top-up of an online, eligible account is a payment alone
    let n = c.tx_count();
    assert_eq!(
        run(&store, chain.as_ref(), op("d-0b", OpKind::Delegate, 0, 1_000 * ALGO)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.tx_count(), n + 1, "no second keyreg");

    // payouts start after the 320-round look-back; each is realized exactly once
    c.advance_rounds(2_000);
    let paid = u128::from(c.payouts(&staking(0)) + c.payouts(&staking(1)));
    assert!(paid > 0, "our accounts proposed and were paid");
    let now = chain.now().await.unwrap();
    let synced = sync_token(&store, chain.as_ref(), now).await.unwrap();
    assert_eq!(synced.new_amount, Amount(paid), "the payouts, exactly");
    assert!(synced.new_rewards > 0);
    let again = sync_token(&store, chain.as_ref(), now).await.unwrap();
    assert_eq!(again.new_rewards, 0, "not booked twice");
    assert_eq!(
        journal::amount_at(chain.as_ref(), &s0, StakeState::Active).await,
        101_000 * ALGO + u128::from(c.payouts(&staking(0))),
        "payouts compound in the account"
    );

    // no undelegation or claim on Algorand
    assert!(matches!(
        chain.undelegate("u", &s0, Amount(ALGO)).await,
        Err(AdapterError::BadInput { .. })
    ));
    assert!(matches!(
        chain.claim_rewards("c", &s0).await,
        Err(AdapterError::BadInput { .. })
    ));

    // withdraw part of account 0 (it stays online) and all of account 1 (it goes offline)
    assert_eq!(
        run(&store, chain.as_ref(), op("w-0", OpKind::Withdraw, 0, 40_000 * ALGO)).await,
        OpOutcome::Confirmed
    );
    assert!(c.account(&staking(0)).1, "61 000 ALGO and more stays online");
    // payouts may land in the blocks the withdrawal made: realize them before sizing the exit
    let now = chain.now().await.unwrap();
    sync_token(&store, chain.as_ref(), now).await.unwrap();
    let all1 = journal::amount_at(chain.as_ref(), &s1, StakeState::Active).await;
    let custody_before = c.account(&me()).0;
    assert_eq!(
        run(&store, chain.as_ref(), op("w-1", OpKind::Withdraw, 1, all1)).await,
        OpOutcome::Confirmed
    );
    let (bal1, online1, eligible1) = c.account(&staking(1));
    assert_eq!(bal1, MIN_BALANCE, "only the minimum balance stays");
    assert!(!online1 && eligible1, "offline, eligibility kept (keyreg.go)");
    assert_eq!(
        u128::from(c.account(&me()).0 - custody_before),
        all1 - 3_000,
        "back in custody, less the group's pooled fee"
    );

    let now = chain.now().await.unwrap();
    sync_token(&store, chain.as_ref(), now).await.unwrap();
    journal::assert_zero_drift(&store, chain.as_ref(), algo, &["d-0", "d-1", "d-0b", "w-0", "w-1"]).await;
}

/// The signature bytes of the first SignedTxn of `tx`, flipped (a forged signature).
fn forged(tx: &SignedTx) -> SignedTx {
    let mut p: Payload = serde_json::from_str(&tx.payload).unwrap();
    let mut body = p.body().unwrap();
    let at = body
        .windows(6)
        .position(|w| w == [0xa3, b's', b'i', b'g', 0xc4, 0x40])
        .expect("a sig field")
        + 6;
    body[at] ^= 1;
    p.signed = base64::engine::general_purpose::STANDARD.encode(body);
    SignedTx {
        payload: serde_json::to_string(&p).unwrap(),
        ..tx.clone()
    }
}

/// A forged signature, a replay, an expired transaction, an amount under the floor, a
/// staking account not rekeyed and another network: each a typed rejection, nothing done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_forgery_replay_expiry_and_minimum_are_typed_rejections() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let s0 = address(&staking(0));
    let before = (c.account(&me()), c.tx_count());

    let tx = chain.delegate("f", &s0, Amount(40_000 * ALGO)).await.unwrap();
    let e = chain.broadcast(&forged(&tx)).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("signature didn't pass verification")),
        "{e}"
    );
    assert_eq!((c.account(&me()), c.tx_count()), before, "nothing done");

    // the genuine group lands; the chain refuses its replay, which the adapter knows as sent
    chain.broadcast(&tx).await.unwrap();
    assert!(matches!(
        chain.tx_status(&tx).await.unwrap(),
        TxStatus::Confirmed { .. }
    ));
    // what account 0 holds besides the payouts it earns as rounds pass
    let principal = || c.account(&staking(0)).0 - c.payouts(&staking(0));
    let after = principal();
    let body = serde_json::from_str::<Payload>(&tx.payload).unwrap().body().unwrap();
    let replay = reqwest::Client::new()
        .post(format!("{}/v2/transactions", c.algod_url))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status().as_u16(), 400);
    assert!(replay.text().await.unwrap().contains("transaction already in ledger"));
    chain.broadcast(&tx).await.unwrap();
    assert_eq!(principal(), after, "one effect");

    // expired: signed, never sent, the chain moved past its last valid round
    let late = chain.delegate("x", &s0, Amount(1_000 * ALGO)).await.unwrap();
    assert_eq!(
        chain.tx_status(&late).await.unwrap(),
        TxStatus::NotFound,
        "still able to land"
    );
    c.advance_rounds(600);
    assert_eq!(chain.tx_status(&late).await.unwrap(), TxStatus::Expired);
    let e = chain.broadcast(&late).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("txn dead")),
        "{e}"
    );
    assert_eq!(principal(), after, "nothing done");

    // under the 30 000 ALGO floor; an account not rekeyed to us: refused before signing
    let n = c.tx_count();
    let e = chain
        .delegate("m", &address(&staking(1)), Amount(29_999 * ALGO))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AdapterError::BadInput { message, .. } if message.contains("payout floor")),
        "{e}"
    );
    let e = chain
        .delegate("r", &address(&staking(2)), Amount(40_000 * ALGO))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AdapterError::BadInput { message, .. } if message.contains("rekey")),
        "{e}"
    );
    assert_eq!(c.tx_count(), n, "nothing sent");

    // another network's genesis hash
    let other = adapter(&c, Some("SGO1GKSzyE7IEPItTxCByw9x8FmnrCDexi9/cOUJOiI=".into()));
    let e = other.delegate("g", &s0, Amount(40_000 * ALGO)).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::BadInput { message, .. } if message.contains("pins")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_replies_resolve_with_one_delegation_each() {
    // algod forgets confirmed transactions at once: the status comes from the indexer
    let c = start(
        AlgorandGenesis {
            pending_memory_rounds: 0,
            ..genesis()
        },
        0,
    )
    .await
    .unwrap();
    let chain = guarded(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "algo-crash").await;
    let mut expected = u128::from(MIN_BALANCE);
    for (k, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(k, OpKind::Delegate, 1, 35_000 * ALGO);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, exec()).await;
        assert_eq!(recovered, vec![(k.to_string(), OpOutcome::Confirmed)]);
        expected += 35_000 * ALGO;
        assert_eq!(
            u128::from(c.account(&staking(1)).0),
            expected,
            "{k}: exactly one delegation"
        );
    }
}

/// Production signing: the custody key is generated inside a SoftHSM2 token (PKCS#11),
/// `softstake keys` names its address, the staking accounts are rekeyed to it, and the
/// local chain (which verifies the Ed25519 signatures itself) takes the group the token
/// signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_algo_delegation_signed_by_the_hsm() {
    use softstake_adapters::pkcs11::KeyAlgorithm;
    use softstake_adapters::TreasuryKey;
    let dir = tempfile::tempdir().unwrap();
    let hsm = softstake_e2e::hsm_key(dir.path(), "algo-1", KeyAlgorithm::Ed25519);
    let public: [u8; 32] = hsm.public_key().try_into().unwrap();
    let c = start(genesis_for(public), 0).await.unwrap();
    let a = AlgorandAdapter::new(config(&c, None, &[0, 1]), TreasuryKey::Hsm(hsm.clone())).unwrap();
    assert_eq!(
        hsm.address("algorand", "").unwrap(),
        a.address(),
        "`softstake keys` names the custody account"
    );
    let chain = journal::guarded(a, 1_000, 3);
    let store = journal::sqlite_store(dir.path(), "algo-hsm").await;
    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-d", OpKind::Delegate, 0, 30_000 * ALGO)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.account(&staking(0)), (MIN_BALANCE + 30_000 * A, true, true));
}

/// `softstake doctor` passes against the local chain (genesis, custody, rekeys,
/// participation keys, indexer) and fails with its fix for an empty custody account and
/// for another network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_the_local_chain_and_names_its_faults() {
    use softstake_e2e::doctor::{assert_fails, net, run};
    let c = start(genesis(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let section = |hash: &str| {
        format!(
            "genesis_hash = \"{hash}\"\n[chains.ALGO.algorand]\nindexer_url = \"{}\"\nstaking_accounts = [\"{}\", \"{}\"]\n",
            c.indexer_url,
            address(&staking(0)),
            address(&staking(1))
        )
    };
    let pin = section(&genesis_hash_b64(GENESIS_ID));
    let good = run(
        &net(dir.path(), "ALGO", "algorand", &c.algod_url, &seed(), &pin),
        "ALGO",
    )
    .await;
    assert!(good.passed(), "{}", good.render());
    let empty = run(
        &net(dir.path(), "ALGO", "algorand", &c.algod_url, &[7; 32], &pin),
        "ALGO",
    )
    .await;
    assert_fails(&empty, "account", "holds no ALGO");
    let wrong = run(
        &net(
            dir.path(),
            "ALGO",
            "algorand",
            &c.algod_url,
            &seed(),
            &section("SGO1GKSzyE7IEPItTxCByw9x8FmnrCDexi9/cOUJOiI="),
        ),
        "ALGO",
    )
    .await;
    assert_fails(&wrong, "genesis", "pins");
}

/// The planner may delegate everything the adapter calls spendable: that must leave the
/// fees a delegation needs (the 2 ALGO going-online fee of each account not yet eligible,
/// and the transaction fees), so delegating all of it lands, to an offline account too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_delegating_all_that_is_spendable_lands() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "algo-all").await;
    let all = chain.spendable().await.unwrap();
    assert!(all.0 > 900_000 * ALGO);
    assert_eq!(
        run(&store, chain.as_ref(), op("d-all", OpKind::Delegate, 0, all.0)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(u128::from(c.account(&staking(0)).0), u128::from(MIN_BALANCE) + all.0);
    assert_eq!(chain.spendable().await.unwrap(), Amount(0), "nothing more to delegate");
}

/// Payouts land in the staking accounts every few rounds while the ledger learns of them
/// only at the next sync: positions read between two syncs must still agree with the
/// ledger (else a reconciliation raises a drift alert that freezes moves), and the next
/// sync books them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_positions_agree_with_the_ledger_between_syncs() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "algo-between").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let algo = reg.get("ALGO").unwrap();
    assert_eq!(
        run(&store, chain.as_ref(), op("d-0", OpKind::Delegate, 0, 100_000 * ALGO)).await,
        OpOutcome::Confirmed
    );
    c.advance_rounds(1_000);
    let now = chain.now().await.unwrap();
    let booked = sync_token(&store, chain.as_ref(), now).await.unwrap().new_amount;
    assert!(booked.0 > 0);
    c.advance_rounds(1_000);
    assert!(
        u128::from(c.payouts(&staking(0))) > booked.0,
        "more payouts since the sync"
    );
    let positions = chain.positions().await.unwrap();
    let rep = softstake_node::treasury::reconcile_positions(&store, algo, &positions, 0, now)
        .await
        .unwrap();
    assert!(rep.alert_id.is_none(), "no drift between syncs: {:?}", rep.lines);
    journal::assert_zero_drift(&store, chain.as_ref(), algo, &["d-0"]).await;
    assert_eq!(
        journal::amount_at(chain.as_ref(), &address(&staking(0)), StakeState::Active).await,
        100_000 * ALGO + u128::from(c.payouts(&staking(0))),
        "after the sync every payout is booked and shown"
    );
}

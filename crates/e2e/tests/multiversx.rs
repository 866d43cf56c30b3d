//! The MultiversX adapter against our local MultiversX chain (`softstake-localchains`,
//! feature `multiversx`): the gateway's REST API, transactions checked as the node checks
//! them (its own JSON signing form, Ed25519, nonce, chain id, funds) and the system
//! delegation contract's rules, driven through the operations journal: delegate to two
//! providers, rewards at each epoch's end, a claim realized for exactly what its smart
//! contract result paid, undelegate, an early withdrawal refused, withdraw after 10
//! epochs, reconciliation with zero drift; a forged signature, a replayed nonce, a
//! transaction whose nonce another took (expired) and an amount below the minimum, each a
//! typed rejection with nothing done; dropped replies resolved with one effect each;
//! `softstake doctor`.
//!
//! `cargo nextest run -p softstake-e2e --features multiversx-local` (`scripts/test.sh` runs it).
#![cfg(feature = "multiversx-local")]

use std::sync::Arc;

use softstake_adapters::multiversx::wire::FrontendTransaction;
use softstake_adapters::multiversx::{MultiversxAdapter, MultiversxConfig, EGLD};
use softstake_adapters::traits::{OpKind, StakeState, TxStatus};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes, SignedTx};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_localchains::multiversx::{providers_from_csv, start, LocalMultiversx, MultiversxGenesis};
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::sync_token;
use softstake_store::{NewOperation, Store};

fn seed() -> [u8; 32] {
    [42; 32]
}

fn me() -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&seed())
        .verifying_key()
        .to_bytes()
}

fn providers() -> Vec<String> {
    providers_from_csv(include_str!("../../../data/multiversx/providers.csv"), 10)
        .unwrap()
        .into_iter()
        .map(|p| p.address)
        .collect()
}

/// Mainnet's clock (14 400 rounds of 6 s: a day per epoch), 10-epoch unbonding.
fn genesis() -> MultiversxGenesis {
    MultiversxGenesis {
        chain_id: "localnet".into(),
        start_time_secs: 1_750_000_000,
        round_duration_ms: 6_000,
        rounds_per_epoch: 14_400,
        min_gas_price: 1_000_000_000,
        unbond_period_epochs: 10,
        min_delegation: EGLD,
        apr_bps: 800,
        providers: providers_from_csv(include_str!("../../../data/multiversx/providers.csv"), 10).unwrap(),
        accounts: vec![(me(), 10_000 * EGLD)],
        tick_ms: 0,
    }
}

fn adapter(c: &LocalMultiversx, chain_id: Option<&str>) -> MultiversxAdapter {
    let cfg = MultiversxConfig {
        gateway_url: c.url.clone(),
        chain_id: chain_id.map(str::to_string),
        extra_providers: vec![],
        max_operations_per_epoch: 32,
    };
    MultiversxAdapter::new(cfg, SecretBytes::new(seed().to_vec())).unwrap()
}

fn guarded(c: &LocalMultiversx) -> Arc<dyn ChainAdapter> {
    journal::guarded(adapter(c, Some("localnet")), 1_000, 3)
}

fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 50,
        poll_interval: std::time::Duration::from_millis(20),
        max_attempts: 3,
        drill: None,
    }
}

fn op(key: &str, kind: OpKind, provider: &str, amount: u128) -> NewOperation {
    journal::op("EGLD", key, kind, provider, amount)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, exec()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_egld_delegation_lifecycle_on_the_local_chain() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "egld").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let egld = reg.get("EGLD").unwrap();
    let ps = providers();
    let (p0, p1) = (ps[0].as_str(), ps[1].as_str());

    let model = chain.liquidity_model().await.unwrap();
    assert_eq!(model.epoch_secs, 86_400, "round duration × rounds per epoch");
    assert_eq!(
        model.unbonding_period_secs,
        10 * 86_400,
        "getContractConfig's unBondPeriod"
    );
    assert_eq!(model.min_delegation, Amount(EGLD), "the manager's minDelegationAmount");
    assert!(!model.rewards_auto_compound && !model.claim_all_validators && model.epoch_aligned);
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 2);
    assert_eq!((vals[0].name.as_str(), vals[0].commission_bps), ("Just Mining", 1_200));

    for (k, p, egld_amount) in [("d-a", p0, 300), ("d-b", p1, 100)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, OpKind::Delegate, p, egld_amount * EGLD)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    assert_eq!(c.delegation(p0, &me()).map(|d| d.0), Some(300 * EGLD));
    assert_eq!(
        journal::amount_at(chain.as_ref(), p1, StakeState::Active).await,
        100 * EGLD
    );

    // a delegation shares the reward of the epoch it was made in
    assert_eq!(
        chain.claimable().await.unwrap()[0].1,
        Amount(0),
        "nothing before the epoch ends"
    );
    c.advance_epochs(2);
    let claimable = chain.claimable().await.unwrap();
    let due = claimable.iter().find(|(p, _)| p == p0).unwrap().1;
    assert!(due.0 > 0, "two epochs of rewards");
    assert_eq!(
        run(&store, chain.as_ref(), op("c-a", OpKind::Claim, p0, due.0)).await,
        OpOutcome::Confirmed
    );
    let claim = store.operation("c-a").await.unwrap().unwrap();
    let paid = c.paid_by(claim.tx_id.as_deref().unwrap()).unwrap();
    assert_eq!(paid, due.0, "the claim's smart contract result paid what was claimable");
    let now = chain.now().await.unwrap();
    let synced = sync_token(&store, chain.as_ref(), now).await.unwrap();
    assert_eq!(
        (synced.new_rewards, synced.new_amount),
        (1, Amount(paid)),
        "realized once, exactly"
    );
    let again = sync_token(&store, chain.as_ref(), now).await.unwrap();
    assert_eq!(again.new_rewards, 0, "not booked twice");

    // undelegate part of p0: unbonding 10 epochs; the contract refuses leaving dust
    let dust = chain
        .undelegate("u-dust", p0, Amount(300 * EGLD - 1))
        .await
        .unwrap_err();
    assert!(matches!(dust, AdapterError::BadInput { .. }), "{dust}");
    assert_eq!(
        run(&store, chain.as_ref(), op("u-a", OpKind::Undelegate, p0, 100 * EGLD)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        journal::amount_at(chain.as_ref(), p0, StakeState::Deactivating).await,
        100 * EGLD
    );
    let early = chain.withdraw("w-early", p0, Amount(100 * EGLD)).await.unwrap_err();
    assert!(matches!(early, AdapterError::BadInput { .. }), "{early}");
    c.advance_epochs(10);
    assert_eq!(
        journal::amount_at(chain.as_ref(), p0, StakeState::Withdrawable).await,
        100 * EGLD
    );
    let before = c.account(&me()).1;
    assert_eq!(
        run(&store, chain.as_ref(), op("w-a", OpKind::Withdraw, p0, 100 * EGLD)).await,
        OpOutcome::Confirmed
    );
    assert!(c.account(&me()).1 > before + 99 * EGLD, "back in the balance, less gas");
    assert_eq!(c.delegation(p0, &me()).map(|d| (d.0, d.1)), Some((200 * EGLD, 0)));

    journal::assert_zero_drift(&store, chain.as_ref(), egld, &["d-a", "d-b", "u-a", "w-a"]).await;
}

/// The payload of `tx` with `edit` applied and re-hashed (what a tamperer or a second
/// signer would send).
fn edited(tx: &SignedTx, edit: impl FnOnce(&mut FrontendTransaction)) -> SignedTx {
    let mut t: FrontendTransaction = serde_json::from_str(&tx.payload).unwrap();
    edit(&mut t);
    SignedTx {
        tx_id: t.hash().unwrap(),
        payload: serde_json::to_string(&t).unwrap(),
        valid_until: None,
    }
}

/// A forged signature, a replayed nonce, a transaction whose nonce another one took and
/// a delegation below the minimum: each a typed rejection, nothing done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_forgery_replay_expiry_and_minimum_are_typed_rejections() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let p = providers()[0].clone();
    let before = c.account(&me());

    // forged: the value raised after signing
    let tx = chain.delegate("f", &p, Amount(5 * EGLD)).await.unwrap();
    let forged = edited(&tx, |t| t.value = (50 * EGLD).to_string());
    let e = chain.broadcast(&forged).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("signature is invalid")),
        "{e}"
    );
    assert_eq!((c.account(&me()), c.tx_count()), (before, 0), "nothing done");

    // the genuine one lands; sending it again is harmless (the gateway knows it)
    chain.broadcast(&tx).await.unwrap();
    chain.broadcast(&tx).await.unwrap();
    assert!(matches!(
        chain.tx_status(&tx).await.unwrap(),
        TxStatus::Confirmed { .. }
    ));
    assert_eq!(c.delegation(&p, &me()).map(|d| d.0), Some(5 * EGLD), "one effect");

    // two signed at the same nonce (a replay of the nonce): once one lands the other is
    // refused and has expired
    let a = chain.delegate("a", &p, Amount(2 * EGLD)).await.unwrap();
    let b = chain.delegate("b", &p, Amount(3 * EGLD)).await.unwrap();
    assert_eq!(
        chain.tx_status(&a).await.unwrap(),
        TxStatus::NotFound,
        "still able to land"
    );
    chain.broadcast(&b).await.unwrap();
    assert_eq!(chain.tx_status(&a).await.unwrap(), TxStatus::Expired);
    let e = chain.broadcast(&a).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("lower nonce in transaction")),
        "{e}"
    );
    assert_eq!(
        c.delegation(&p, &me()).map(|d| d.0),
        Some(8 * EGLD),
        "only b's 3 EGLD added"
    );

    // below the manager's minimum: refused before signing
    let n = c.tx_count();
    let e = chain.delegate("m", &p, Amount(EGLD / 2)).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::BadInput { message, .. } if message.contains("minimum")),
        "{e}"
    );
    assert_eq!(c.tx_count(), n, "nothing sent");

    // a chain id other than the pinned one
    let other = adapter(&c, Some("1"));
    let e = other.delegate("x", &p, Amount(2 * EGLD)).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::BadInput { message, .. } if message.contains("pins")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_replies_resolve_with_one_delegation_each() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let p = providers()[1].clone();
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "egld-crash").await;
    let mut expected = 0u128;
    for (k, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(k, OpKind::Delegate, &p, 7 * EGLD);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, exec()).await;
        assert_eq!(recovered, vec![(k.to_string(), OpOutcome::Confirmed)]);
        expected += 7 * EGLD;
        assert_eq!(
            c.delegation(&p, &me()).map(|d| d.0),
            Some(expected),
            "{k}: exactly one delegation"
        );
    }
}

/// Production signing: the treasury key is generated inside a SoftHSM2 token (PKCS#11),
/// `softstake keys` names its `erd1…` address, the genesis funds it, and the local chain
/// (which verifies the Ed25519 signature over the JSON signing form itself) takes the
/// delegation the token signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_egld_delegation_signed_by_the_hsm() {
    use softstake_adapters::pkcs11::KeyAlgorithm;
    use softstake_adapters::TreasuryKey;
    let dir = tempfile::tempdir().unwrap();
    let hsm = softstake_e2e::hsm_key(dir.path(), "egld-1", KeyAlgorithm::Ed25519);
    let public: [u8; 32] = hsm.public_key().try_into().unwrap();
    let c = start(
        MultiversxGenesis {
            accounts: vec![(public, 100 * EGLD)],
            ..genesis()
        },
        0,
    )
    .await
    .unwrap();
    let cfg = MultiversxConfig {
        gateway_url: c.url.clone(),
        chain_id: Some("localnet".into()),
        extra_providers: vec![],
        max_operations_per_epoch: 32,
    };
    let a = MultiversxAdapter::new(cfg, TreasuryKey::Hsm(hsm.clone())).unwrap();
    assert_eq!(
        hsm.address("multiversx", "").unwrap(),
        a.address(),
        "`softstake keys` names the adapter's account"
    );
    let chain = journal::guarded(a, 1_000, 3);
    let store = journal::sqlite_store(dir.path(), "egld-hsm").await;
    let p = providers()[0].clone();
    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-d", OpKind::Delegate, &p, 20 * EGLD)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.delegation(&p, &public).map(|d| d.0), Some(20 * EGLD));
}

/// `softstake doctor` passes against the local chain (chain id, account, providers, the
/// epoch and unbonding against tokens.toml) and fails with its fix for an empty account
/// and for another chain id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_the_local_chain_and_names_its_faults() {
    use softstake_e2e::doctor::{assert_fails, line, net, run};
    let c = start(genesis(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pin = "genesis_hash = \"localnet\"\n";
    let good = run(&net(dir.path(), "EGLD", "multiversx", &c.url, &seed(), pin), "EGLD").await;
    assert!(good.passed(), "{}", good.render());
    assert_eq!(
        line(&good, "unbonding period").verdict,
        softstake_adapters::preflight::Verdict::Pass
    );
    let empty = run(&net(dir.path(), "EGLD", "multiversx", &c.url, &[7; 32], pin), "EGLD").await;
    assert_fails(&empty, "account", "holds no EGLD");
    let wrong = run(
        &net(
            dir.path(),
            "EGLD",
            "multiversx",
            &c.url,
            &seed(),
            "genesis_hash = \"1\"\n",
        ),
        "EGLD",
    )
    .await;
    assert_fails(&wrong, "chain id", "pins");
}

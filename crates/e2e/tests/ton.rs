//! The TON adapter against our local TON chain (`softstake-localchains`, feature `ton`):
//! toncenter's API subset, wallet v4r2 external messages checked as the wallet contract
//! checks them (valid_until, seqno, subwallet, Ed25519 over the body) and the official
//! nominator pool's rules, with election rounds and stake holds from ConfigParam 15
//! (mainnet's proportions: rounds of 600 s, stake held 300 s). Driven through the
//! operations journal: deposit into two pools while they are idle (straight into
//! `amount`) and while one stakes (`pending_deposit_amount`), rewards compounded at the
//! stake's recovery and realized from the positions' growth, a partial exit refused, a
//! whole exit paid at once by an idle pool and one requested while staking and paid after
//! the round and the hold, reconciliation with zero drift; a forged signature, a replayed
//! seqno, an expired message and an amount below the pool's minimum, each a typed
//! rejection with nothing done; dropped replies resolved with one effect each; a wallet
//! deployed by a deposit signed in a PKCS#11 token; `softstake doctor`.
//!
//! `cargo nextest run -p softstake-e2e --features ton-local` (`scripts/test.sh` runs it).
#![cfg(feature = "ton-local")]

use std::sync::Arc;

use base64::Engine as _;
use softstake_adapters::ton::{wire, TonAdapter, TonConfig, TON};
use softstake_adapters::traits::{OpKind, StakeState, TxStatus};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes, SignedTx};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_localchains::ton::{
    pool_account, pool_address, single_account, start, wallet_address, LocalTon, PoolSpec, SingleSpec, TonGenesis,
    WALLET_ID,
};
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::sync_token;
use softstake_store::{NewOperation, Store};
use tlb_ton::MsgAddress;

const GLOBAL_ID: i32 = -77;

fn seed() -> [u8; 32] {
    [42; 32]
}

fn public() -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(&seed())
        .verifying_key()
        .to_bytes()
}

fn me() -> MsgAddress {
    wallet_address(WALLET_ID, public()).unwrap()
}

fn pool(i: u8) -> String {
    pool_address(pool_account(i)).to_hex()
}

fn genesis() -> TonGenesis {
    TonGenesis {
        global_id: GLOBAL_ID,
        start_time_secs: 1_750_000_000,
        timing: [600, 300, 75, 300],
        wallets: vec![(public(), 1_000_000 * TON)],
        uninit_wallets: vec![],
        pools: (0..3)
            .map(|i| PoolSpec {
                account: pool_account(i),
                validator_reward_share: 4_000 - 1_000 * u16::from(i),
                max_nominators_count: 40,
                min_nominator_stake: 10_000 * TON,
                validator_amount: 300_000 * TON,
                others_amount: 500_000 * TON,
            })
            .collect(),
        singles: vec![
            SingleSpec {
                account: single_account(0),
                owner: me(),
                validator_pubkey: [7; 32],
                balance: TON,
            },
            // owned by someone else: never ours to fund
            SingleSpec {
                account: single_account(1),
                owner: wallet_address(WALLET_ID, [8; 32]).unwrap(),
                validator_pubkey: [9; 32],
                balance: TON,
            },
        ],
        apr_bps: 400,
        tick_ms: 0,
    }
}

fn single(i: u8) -> String {
    pool_address(single_account(i)).to_hex()
}

fn adapter(c: &LocalTon, key: [u8; 32], global_id: Option<i32>) -> TonAdapter {
    let cfg = TonConfig {
        toncenter_url: c.url.clone(),
        api_key: None,
        pools: (0..3).map(pool).collect(),
        single_nominator_pools: vec![],
        wallet_id: wire::DEFAULT_WALLET_ID,
        global_id,
        max_operations_per_epoch: 32,
    };
    TonAdapter::new(cfg, SecretBytes::new(key.to_vec())).unwrap()
}

/// An adapter over single-nominator pools `singles` only.
fn single_adapter(c: &LocalTon, singles: &[u8]) -> TonAdapter {
    let cfg = TonConfig {
        toncenter_url: c.url.clone(),
        api_key: None,
        pools: vec![],
        single_nominator_pools: singles.iter().map(|i| single(*i)).collect(),
        wallet_id: wire::DEFAULT_WALLET_ID,
        global_id: Some(GLOBAL_ID),
        max_operations_per_epoch: 32,
    };
    TonAdapter::new(cfg, SecretBytes::new(seed().to_vec())).unwrap()
}

fn guarded(c: &LocalTon) -> Arc<dyn ChainAdapter> {
    journal::guarded(adapter(c, seed(), Some(GLOBAL_ID)), 1_000, 3)
}

fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 50,
        poll_interval: std::time::Duration::from_millis(20),
        max_attempts: 3,
        drill: None,
    }
}

fn op(key: &str, kind: OpKind, pool: &str, amount: u128) -> NewOperation {
    journal::op("TON", key, kind, pool, amount)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, exec()).await
}

/// (amount, pending, withdraw requested) of our position in pool `i`.
fn held(c: &LocalTon, i: u8) -> Option<(u128, u128, bool)> {
    c.nominator(pool_account(i), &me())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_ton_nominator_pool_lifecycle_on_the_local_chain() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "ton").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let ton = reg.get("TON").unwrap();
    let (p0, p1) = (pool(0), pool(1));

    let model = chain.liquidity_model().await.unwrap();
    assert_eq!(model.epoch_secs, 600, "ConfigParam 15 validators_elected_for");
    assert_eq!(model.unbonding_period_secs, 900, "the round plus stake_held_for");
    assert_eq!(
        model.min_delegation,
        Amount(10_000 * TON),
        "the pools' min_nominator_stake"
    );
    assert!(model.whole_position_exits && model.rewards_auto_compound && model.epoch_aligned);
    assert!(chain.rewards_from_positions() && chain.unbonding_returns_itself());
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!(vals[0].commission_bps, 4_000, "validator_reward_share");
    let epoch = chain.epoch().await.unwrap();
    assert_eq!((epoch.index, epoch.secs), (1_750_000_000, 600), "ConfigParam 34");

    // idle pools: deposits go straight into `amount`, less the pool's 1 TON fee
    for (k, p, tons) in [("d-a", &p0, 20_000), ("d-b", &p1, 15_000)] {
        assert_eq!(
            run(&store, chain.as_ref(), op(k, OpKind::Delegate, p, tons * TON)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
    }
    assert_eq!(held(&c, 0), Some((20_000 * TON, 0, false)));
    assert_eq!(
        journal::amount_at(chain.as_ref(), &p1, StakeState::Active).await,
        15_000 * TON
    );

    // the elections close: the pools stake; a deposit now waits for the next election
    c.advance_secs(525);
    assert_eq!(c.pool_state(pool_account(0)).map(|s| s.0), Some(2));
    assert_eq!(
        run(&store, chain.as_ref(), op("d-c", OpKind::Delegate, &p0, 10_000 * TON)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        journal::amount_at(chain.as_ref(), &p0, StakeState::Activating).await,
        10_000 * TON
    );

    // the round and the hold pass: the stake comes back with its reward, compounded
    c.advance_secs(75 + 600 + 300 + 61 + 2);
    let (a0, pending0, _) = held(&c, 0).unwrap();
    let (a1, _, _) = held(&c, 1).unwrap();
    assert_eq!(pending0, 0, "pending deposits join `amount` at the recovery");
    let growth = (a0 - 30_000 * TON) + (a1 - 15_000 * TON);
    assert!(growth > 0, "the round paid");
    let now = chain.now().await.unwrap();
    let synced = sync_token(&store, chain.as_ref(), now).await.unwrap();
    assert_eq!(
        synced.new_amount,
        Amount(growth),
        "realized = the growth over our own deposits"
    );
    assert_eq!(
        sync_token(&store, chain.as_ref(), now).await.unwrap().new_rewards,
        0,
        "once"
    );

    // `w` takes the whole position: a part is refused before signing
    let part = chain.undelegate("u-part", &p1, Amount(a1 / 2)).await.unwrap_err();
    assert!(
        matches!(&part, AdapterError::BadInput { message, .. } if message.contains("whole position")),
        "{part}"
    );
    // an idle pool pays at once
    let before = c.balance(&me());
    assert_eq!(
        run(&store, chain.as_ref(), op("u-b", OpKind::Undelegate, &p1, a1)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(held(&c, 1), None, "paid out");
    assert!(
        c.balance(&me()) > before + a1 - 2 * TON,
        "the whole position back, less fees"
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("w-b", OpKind::Withdraw, &p1, a1)).await,
        OpOutcome::Confirmed,
        "the withdrawal books the return; nothing is sent"
    );

    // a pool that stakes records the request and pays after the round and the hold
    c.advance_secs(1725 - 1563);
    assert_eq!(c.pool_state(pool_account(0)).map(|s| s.0), Some(2), "staking again");
    let whole = journal::amount_at(chain.as_ref(), &p0, StakeState::Active).await;
    assert_eq!(whole, a0);
    assert_eq!(
        run(&store, chain.as_ref(), op("u-a", OpKind::Undelegate, &p0, whole)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(held(&c, 0).map(|h| h.2), Some(true), "a withdraw request");
    let deact = chain.positions().await.unwrap();
    let d = deact.iter().find(|p| p.validator == p0).unwrap();
    assert_eq!((d.state, d.amount), (StakeState::Deactivating, Amount(whole)));
    assert!(d.eta.is_some(), "paid after the round and the hold");
    let early = chain.withdraw("w-early", &p0, Amount(whole)).await.unwrap_err();
    assert!(matches!(early, AdapterError::BadInput { .. }), "{early}");
    c.advance_secs(2761 + 2 - 1725);
    assert_eq!(held(&c, 0), None, "paid after the recovery");
    assert_eq!(
        run(&store, chain.as_ref(), op("w-a", OpKind::Withdraw, &p0, whole)).await,
        OpOutcome::Confirmed
    );

    journal::assert_zero_drift(
        &store,
        chain.as_ref(),
        ton,
        &["d-a", "d-b", "d-c", "u-b", "w-b", "u-a", "w-a"],
    )
    .await;
}

/// A single-nominator pool our wallet owns, for the exchange's own validator: a deposit is
/// a plain transfer the validator stakes whole when the elections open, the stake is read
/// at the elector (participants, frozen dictionary, credits), an exit above what the pool
/// holds outside the elector is refused, the bonus realized from growth after the
/// recovery, a partial exit (op 0x1000) paid at once, zero drift; a pool owned by another
/// wallet is refused before anything is signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_single_nominator_pool_lifecycle_on_the_local_chain() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = journal::guarded(single_adapter(&c, &[0]), 1_000, 3);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "ton-single").await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let ton = reg.get("TON").unwrap();
    let (s, account) = (single(0), single_account(0));
    let pool_addr = pool_address(account);

    let vals = chain.validators().await.unwrap();
    assert_eq!((vals.len(), vals[0].commission_bps, vals[0].active), (1, 0, true));
    assert_eq!(
        run(&store, chain.as_ref(), op("d-s", OpKind::Delegate, &s, 20_000 * TON)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.balance(&pool_addr), 20_001 * TON, "a plain transfer: no deposit fee");
    assert_eq!(
        journal::amount_at(chain.as_ref(), &s, StakeState::Activating).await,
        20_000 * TON
    );

    // the elections open: our validator stakes all but the 1 TON reserve
    c.advance_secs(301);
    assert_eq!(c.at_elector(account), 20_000 * TON);
    assert_eq!(
        journal::amount_at(chain.as_ref(), &s, StakeState::Active).await,
        20_000 * TON,
        "participant_list_extended"
    );
    c.advance_secs(300);
    let frozen = chain.positions().await.unwrap();
    assert_eq!(frozen.len(), 1);
    assert_eq!(
        (frozen[0].state, frozen[0].amount),
        (StakeState::Active, Amount(20_000 * TON))
    );
    assert!(frozen[0].eta.is_some(), "past_elections' unfreeze_at");
    let early = chain.undelegate("u-early", &s, Amount(1_000 * TON)).await.unwrap_err();
    assert!(
        matches!(&early, AdapterError::BadInput { message, .. } if message.contains("at the elector")),
        "{early}"
    );

    // unfrozen with the bonus, recovered by the validator: the growth is the reward
    c.advance_secs(1_563 - 601);
    assert_eq!(c.at_elector(account), 0);
    let growth = c.balance(&pool_addr) - 20_001 * TON;
    assert!(growth > 0, "the elector's bonus");
    let now = chain.now().await.unwrap();
    let synced = sync_token(&store, chain.as_ref(), now).await.unwrap();
    assert_eq!(synced.new_amount, Amount(growth));

    // op 0x1000 pays a part at once; the withdrawal books it
    let before = c.balance(&me());
    assert_eq!(
        run(&store, chain.as_ref(), op("u-s", OpKind::Undelegate, &s, 5_000 * TON)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.balance(&pool_addr), 15_001 * TON + growth, "exactly the amount left");
    assert!(c.balance(&me()) > before + 4_999 * TON);
    assert_eq!(
        run(&store, chain.as_ref(), op("w-s", OpKind::Withdraw, &s, 5_000 * TON)).await,
        OpOutcome::Confirmed
    );
    journal::assert_zero_drift(&store, chain.as_ref(), ton, &["d-s", "u-s", "w-s"]).await;

    // another owner's pool: refused before signing, and the doctor says why
    let other = single_adapter(&c, &[1]);
    let e = other
        .delegate("d-x", &single(1), Amount(1_000 * TON))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, AdapterError::BadInput { message, .. } if message.contains("not by our wallet")),
        "{e}"
    );
    let pre = other.preflight().await.unwrap();
    assert!(
        pre.checks.iter().any(
            |c| c.verdict == softstake_adapters::preflight::Verdict::Fail && c.detail.contains("not by our wallet")
        ),
        "{pre:?}"
    );
}

/// `tx` with one bit of its signature flipped (what a tamperer would send).
fn forged(tx: &SignedTx) -> SignedTx {
    use tlb_ton::message::Message;
    use tlb_ton::ser::CellSerializeExt;
    use tlb_ton::{BagOfCells, BagOfCellsArgs, Cell};
    let root = BagOfCells::parse_base64(&tx.payload)
        .unwrap()
        .into_single_root()
        .unwrap();
    let mut m: Message<Cell, Cell, Cell> = root.parse_fully(()).unwrap();
    let bit = m.body.data[100];
    m.body.data.set(100, !bit);
    let boc = BagOfCells::from_root(m.to_cell(()).unwrap())
        .serialize(BagOfCellsArgs {
            has_idx: false,
            has_crc32c: true,
        })
        .unwrap();
    SignedTx {
        payload: base64::engine::general_purpose::STANDARD.encode(boc),
        ..tx.clone()
    }
}

/// A forged signature, a replayed seqno, an expired message and a deposit below the pool's
/// minimum: each a typed rejection, nothing done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_forgery_replay_expiry_and_minimum_are_typed_rejections() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let p = pool(0);
    let (balance, txs) = (c.balance(&me()), c.tx_count());

    let tx = chain.delegate("f", &p, Amount(20_000 * TON)).await.unwrap();
    let e = chain.broadcast(&forged(&tx)).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("bad signature")),
        "{e}"
    );
    assert_eq!(
        (c.balance(&me()), c.tx_count(), c.seqno(&me())),
        (balance, txs, Some(0)),
        "nothing done"
    );

    // the genuine one lands; sending it again is harmless
    chain.broadcast(&tx).await.unwrap();
    chain.broadcast(&tx).await.unwrap();
    assert!(matches!(
        chain.tx_status(&tx).await.unwrap(),
        TxStatus::Confirmed { .. }
    ));
    assert_eq!(held(&c, 0).map(|h| h.0), Some(20_000 * TON), "one effect");

    // two signed at the same seqno: once one lands the other is refused, then expires
    let a = chain.delegate("a", &p, Amount(10_000 * TON)).await.unwrap();
    let b = chain.delegate("b", &p, Amount(12_000 * TON)).await.unwrap();
    assert_eq!(
        chain.tx_status(&a).await.unwrap(),
        TxStatus::NotFound,
        "still able to land"
    );
    chain.broadcast(&b).await.unwrap();
    assert_eq!(
        chain.tx_status(&a).await.unwrap(),
        TxStatus::Pending,
        "its seqno is taken"
    );
    let e = chain.broadcast(&a).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("wrong seqno")),
        "{e}"
    );
    assert_eq!(
        held(&c, 0).map(|h| h.0),
        Some(32_000 * TON),
        "only b's 12 000 TON added"
    );

    // expired: valid_until passed before it was sent
    let late = chain.delegate("late", &p, Amount(10_000 * TON)).await.unwrap();
    c.advance_secs(u64::from(wire_validity()) + 61);
    assert_eq!(chain.tx_status(&a).await.unwrap(), TxStatus::Expired);
    let e = chain.broadcast(&late).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::Rejected { reason, .. } if reason.contains("expired")),
        "{e}"
    );
    assert_eq!(chain.tx_status(&late).await.unwrap(), TxStatus::Expired);

    // below the pool's min_nominator_stake: refused before signing
    let n = c.tx_count();
    let e = chain.delegate("m", &pool(1), Amount(5_000 * TON)).await.unwrap_err();
    assert!(
        matches!(&e, AdapterError::BadInput { message, .. } if message.contains("min_nominator_stake")),
        "{e}"
    );
    assert_eq!(c.tx_count(), n, "nothing sent");
}

fn wire_validity() -> u32 {
    softstake_adapters::ton::VALIDITY_SECS
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_replies_resolve_with_one_deposit_each() {
    let c = start(genesis(), 0).await.unwrap();
    let chain = guarded(&c);
    let p = pool(2);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "ton-crash").await;
    let mut expected = 0u128;
    for (k, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(k, OpKind::Delegate, &p, 11_000 * TON);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, exec()).await;
        assert_eq!(recovered, vec![(k.to_string(), OpOutcome::Confirmed)]);
        expected += 11_000 * TON;
        assert_eq!(held(&c, 2).map(|h| h.0), Some(expected), "{k}: exactly one deposit");
    }
}

/// The planner may split all that is spendable over every pool in one plan: each deposit
/// also pays the pool's 1 TON fee and the wallet's gas, and every one of them lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_delegating_all_that_is_spendable_lands() {
    let c = start(
        TonGenesis {
            wallets: vec![(public(), 60_000 * TON)],
            ..genesis()
        },
        0,
    )
    .await
    .unwrap();
    let chain = guarded(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "ton-all").await;
    let spendable = chain.spendable().await.unwrap().0;
    assert!(
        spendable > 59_990 * TON,
        "only the fees of one deposit per pool are kept: {spendable}"
    );
    let third = spendable / 3;
    for i in 0..3u8 {
        let k = format!("all-{i}");
        assert_eq!(
            run(&store, chain.as_ref(), op(&k, OpKind::Delegate, &pool(i), third)).await,
            OpOutcome::Confirmed,
            "{k}"
        );
        assert_eq!(held(&c, i).map(|h| h.0), Some(third));
    }
}

/// Production signing: the treasury key is generated inside a SoftHSM2 token (PKCS#11),
/// `softstake keys` names its wallet, the wallet is funded but not deployed, and the local
/// chain (which checks the StateInit against the address and the Ed25519 signature over the
/// body itself) deploys it with the first deposit the token signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_ton_deposit_signed_by_the_hsm_deploys_the_wallet() {
    use softstake_adapters::pkcs11::KeyAlgorithm;
    use softstake_adapters::TreasuryKey;
    let dir = tempfile::tempdir().unwrap();
    let hsm = softstake_e2e::hsm_key(dir.path(), "ton-1", KeyAlgorithm::Ed25519);
    let public: [u8; 32] = hsm.public_key().try_into().unwrap();
    let c = start(
        TonGenesis {
            wallets: vec![],
            uninit_wallets: vec![(public, 50_000 * TON)],
            ..genesis()
        },
        0,
    )
    .await
    .unwrap();
    let cfg = TonConfig {
        toncenter_url: c.url.clone(),
        api_key: None,
        pools: vec![pool(0)],
        single_nominator_pools: vec![],
        wallet_id: wire::DEFAULT_WALLET_ID,
        global_id: Some(GLOBAL_ID),
        max_operations_per_epoch: 32,
    };
    let a = TonAdapter::new(cfg, TreasuryKey::Hsm(hsm.clone())).unwrap();
    assert_eq!(
        hsm.address("ton", "").unwrap(),
        a.address(),
        "`softstake keys` names the adapter's wallet"
    );
    let wallet = wallet_address(WALLET_ID, public).unwrap();
    assert_eq!(c.seqno(&wallet), None, "not deployed yet");
    let chain = journal::guarded(a, 1_000, 3);
    let store = journal::sqlite_store(dir.path(), "ton-hsm").await;
    assert_eq!(
        run(
            &store,
            chain.as_ref(),
            op("hsm-d", OpKind::Delegate, &pool(0), 20_000 * TON)
        )
        .await,
        OpOutcome::Confirmed
    );
    assert_eq!(c.seqno(&wallet), Some(1), "deployed by its first message");
    assert_eq!(c.nominator(pool_account(0), &wallet).map(|n| n.0), Some(20_000 * TON));
}

/// `softstake doctor` passes against the local chain (global id, timing, wallet, pools, a
/// single-nominator pool our wallet owns, the round and unbonding against tokens.toml) and fails with its fix for an empty
/// wallet and for another network's global id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_the_local_chain_and_names_its_faults() {
    use softstake_e2e::doctor::{assert_fails, net, run};
    let c = start(genesis(), 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pools: Vec<String> = (0..3).map(|i| format!("\"{}\"", pool(i))).collect();
    let rest = |g: &str| {
        format!(
            "genesis_hash = \"{g}\"\n[chains.TON.ton]\npools = [{}]\nsingle_nominator_pools = [\"{}\"]\n",
            pools.join(", "),
            single(0)
        )
    };
    let good = run(&net(dir.path(), "TON", "ton", &c.url, &seed(), &rest("-77")), "TON").await;
    assert!(good.passed(), "{}", good.render());
    let empty = run(&net(dir.path(), "TON", "ton", &c.url, &[7; 32], &rest("-77")), "TON").await;
    assert_fails(&empty, "wallet", "holds 0 nanotons");
    let wrong = run(&net(dir.path(), "TON", "ton", &c.url, &seed(), &rest("-239")), "TON").await;
    assert_fails(&wrong, "global id", "pins -239");
}

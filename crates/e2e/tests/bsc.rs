//! The BNB adapter against a real EVM node: anvil (`--chain-id 56`) with our StakeHub /
//! StakeCredit stand-in installed at 0x…2002, driven through the operations journal:
//! delegate, rewards, undelegate, unbonding by timestamp (`evm_increaseTime`), claim,
//! reconciliation with zero drift; a dropped reply on submit resolved without a second
//! delegation; reverts and a wrong chain id as typed rejections; `softstake status`
//! reading the positions from the chain; and the stand-in checked against the real ABI.
//!
//! `cargo nextest run -p softstake-e2e --features evm-anvil` (needs anvil and solc-js:
//! `scripts/setup.sh` installs them; `scripts/test.sh` runs this).
#![cfg(feature = "evm-anvil")]

use std::sync::Arc;

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;

use softstake_adapters::evm::bsc::{BscAdapter, STAKE_HUB};
use softstake_adapters::traits::{OpKind, StakeState};
use softstake_adapters::{AdapterError, ChainAdapter, SecretBytes};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::evm::{self, compile, contracts_dir, evm_config, start_bsc, LocalBsc, BNB_WEI};
use softstake_e2e::journal;
use softstake_node::treasury::executor::{CrashPoint, Executor, OpOutcome};
use softstake_node::treasury::{reconcile_token, sync_token};
use softstake_store::{NewOperation, OperationState, Store};

const CONFIRMATIONS: u64 = 2;

fn adapter(c: &LocalBsc) -> Arc<dyn ChainAdapter> {
    let a = BscAdapter::new(
        evm_config(&c.url, 56, CONFIRMATIONS),
        SecretBytes::new(c.treasury_key.to_vec()),
        STAKE_HUB,
    )
    .unwrap();
    journal::guarded(a, 500, 5)
}

fn op(key: &str, kind: OpKind, validator: Address, wei: u128) -> NewOperation {
    journal::op("BNB", key, kind, &validator.to_string(), wei)
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) -> OpOutcome {
    journal::run(store, chain, o, evm::exec_config()).await
}

async fn amount_at(chain: &dyn ChainAdapter, v: Address, state: StakeState) -> u128 {
    journal::amount_at(chain, &v.to_string(), state).await
}

async fn store(dir: &tempfile::TempDir) -> Store {
    journal::sqlite_store(dir.path(), "bnb").await
}

/// Only the elected set earns: a registered, unjailed candidate outside BSCValidatorSet's
/// `getValidators()` is reported inactive with no performance, so the planner never
/// delegates to it; electing it makes it active again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_only_the_elected_set_is_active() {
    let c = start_bsc(0, 1).await.unwrap();
    let chain = adapter(&c);
    let vals = chain.validators().await.unwrap();
    assert!(vals.iter().all(|v| v.active), "all three elected at start: {vals:?}");
    c.elect(&c.validators[..2]).await.unwrap();
    let vals = chain.validators().await.unwrap();
    let candidate = vals.iter().find(|v| v.id == c.validators[2].to_string()).unwrap();
    assert!(
        !candidate.active && candidate.performance_bps == 0,
        "a candidate outside the elected set earns nothing: {candidate:?}"
    );
    assert_eq!(vals.iter().filter(|v| v.active).count(), 2);
    c.elect(&c.validators).await.unwrap();
    assert!(chain.validators().await.unwrap().iter().all(|v| v.active));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_bnb_stake_lifecycle_on_anvil() {
    let c = start_bsc(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let bnb = reg.get("BNB").unwrap();
    let (v0, v1) = (c.validators[0], c.validators[1]);

    let model = chain.liquidity_model().await.unwrap();
    assert_eq!(model.unbonding_period_secs, 7 * 86_400, "StakeHub.unbondPeriod");
    assert_eq!(model.min_delegation, Amount(BNB_WEI), "StakeHub.minDelegationBNBChange");
    let vals = chain.validators().await.unwrap();
    assert_eq!(vals.len(), 3);
    assert_eq!((vals[0].name.as_str(), vals[0].commission_bps), ("Legend", 500));
    assert_eq!(vals[0].total_stake, Amount(20_000 * BNB_WEI));

    // a first sync sets the reward baseline
    let now = chain.now().await.unwrap();
    let first = sync_token(&store, chain.as_ref(), now).await.unwrap();
    assert_eq!(first.new_rewards, 0);

    let balance_before = c.treasury_balance().await.unwrap();
    assert_eq!(
        run(&store, chain.as_ref(), op("d-v0", OpKind::Delegate, v0, 10 * BNB_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("d-v1", OpKind::Delegate, v1, 5 * BNB_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(amount_at(chain.as_ref(), v0, StakeState::Active).await, 10 * BNB_WEI);
    assert_eq!(amount_at(chain.as_ref(), v1, StakeState::Active).await, 5 * BNB_WEI);
    let spent = balance_before - c.treasury_balance().await.unwrap();
    assert!(
        (15 * BNB_WEI..15 * BNB_WEI + BNB_WEI / 100).contains(&spent),
        "15 BNB plus gas left the treasury: {spent}"
    );

    // a daily reward raises v0's share price; the commission (5 %) goes to the operator
    let pool = c.total_pooled(v0).await.unwrap();
    c.distribute_reward(v0, 40 * BNB_WEI).await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    let synced = sync_token(&store, chain.as_ref(), now).await.unwrap();
    let ours = amount_at(chain.as_ref(), v0, StakeState::Active).await;
    // our share of the 38 BNB left after commission, ± share-price rounding (256-bit product)
    let expected_reward: u128 = (U256::from(38 * BNB_WEI) * U256::from(10 * BNB_WEI) / U256::from(pool)).to();
    assert_eq!(synced.new_rewards, 1, "{synced:?}");
    assert_eq!(
        synced.new_amount.0,
        ours - 10 * BNB_WEI,
        "the realized reward is the growth"
    );
    assert!(
        synced.new_amount.0.abs_diff(expected_reward) <= 2,
        "{} vs {expected_reward}",
        synced.new_amount.0
    );
    let rep = reconcile_token(&store, chain.as_ref(), bnb, 0, now).await.unwrap();
    assert!(rep.alert_id.is_none(), "zero drift after the reward: {:?}", rep.lines);

    // undelegate all of v1 and part of v0: unbond requests unlocked in 7 days
    assert_eq!(
        run(&store, chain.as_ref(), op("u-v1", OpKind::Undelegate, v1, 5 * BNB_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("u-v0", OpKind::Undelegate, v0, 4 * BNB_WEI)).await,
        OpOutcome::Confirmed
    );
    let positions = chain.positions().await.unwrap();
    let leaving: Vec<_> = positions
        .iter()
        .filter(|p| p.state == StakeState::Deactivating)
        .collect();
    assert_eq!(leaving.len(), 2, "{positions:?}");
    let now = chain.now().await.unwrap();
    for p in &leaving {
        let eta = p.eta.unwrap().unix_secs() - now.unix_secs();
        assert!((7 * 86_400 - 30..=7 * 86_400).contains(&eta), "unlock in 7 days: {eta}");
    }
    assert_eq!(
        amount_at(chain.as_ref(), v1, StakeState::Deactivating).await,
        5 * BNB_WEI
    );
    let v0_leaving = amount_at(chain.as_ref(), v0, StakeState::Deactivating).await;
    assert!(
        v0_leaving.abs_diff(4 * BNB_WEI) <= 2,
        "4 BNB unbonding (share rounding): {v0_leaving}"
    );

    // nothing can be claimed before the unlock time: the adapter refuses, nothing is sent
    let early = chain
        .withdraw("w-early", &v1.to_string(), Amount(5 * BNB_WEI))
        .await
        .unwrap_err();
    assert!(matches!(early, AdapterError::BadInput { .. }), "{early}");

    c.increase_time(7 * 86_400 + 1).await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    let w1 = amount_at(chain.as_ref(), v1, StakeState::Withdrawable).await;
    let w0 = amount_at(chain.as_ref(), v0, StakeState::Withdrawable).await;
    assert_eq!(w1, 5 * BNB_WEI);
    assert_eq!(w0, v0_leaving);
    let before_claims = c.treasury_balance().await.unwrap();
    assert_eq!(
        run(&store, chain.as_ref(), op("w-v1", OpKind::Withdraw, v1, w1)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("w-v0", OpKind::Withdraw, v0, w0)).await,
        OpOutcome::Confirmed
    );
    let back = c.treasury_balance().await.unwrap() - before_claims;
    assert!(
        back > w0 + w1 - BNB_WEI / 100 && back < w0 + w1,
        "claims paid out less gas: {back}"
    );
    assert_eq!(amount_at(chain.as_ref(), v1, StakeState::Withdrawable).await, 0);
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), bnb, 0, now).await.unwrap();
    assert!(rep.alert_id.is_none(), "zero drift after the claims: {:?}", rep.lines);
    assert!(rep.lines.iter().all(|l| l.drift == 0), "{:?}", rep.lines);
    for k in ["d-v0", "d-v1", "u-v1", "u-v0", "w-v1", "w-v0"] {
        assert_eq!(
            store.operation(k).await.unwrap().unwrap().state,
            OperationState::Reconciled,
            "{k}"
        );
    }

    // a slash is a loss, not a reward: it shows as drift and freezes moves
    c.slash(v0, 2_000 * BNB_WEI).await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), bnb, 0, now).await.unwrap();
    assert!(rep.alert_id.is_some(), "a slash raises a drift alert: {:?}", rep.lines);
    let line = rep.lines.iter().find(|l| l.validator == v0.to_string()).unwrap();
    assert!(line.drift < 0, "{line:?}");
}

/// Production signing: the treasury key is generated inside a SoftHSM2 token (PKCS#11) and
/// never leaves it; anvil funds its address; the journal delegates and undelegates with
/// transactions the token signed (low-S ECDSA, recovery id found), and the ledger
/// reconciles with zero drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_bnb_operations_signed_by_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let key = softstake_e2e::hsm_key(dir.path(), "bnb-1", softstake_adapters::pkcs11::KeyAlgorithm::Secp256k1);
    let address: Address = key.address("bsc", "cosmos").unwrap().parse().unwrap();
    let c = start_bsc(0, 1).await.unwrap();
    c.set_balance(address, 100 * BNB_WEI).await.unwrap();
    let a = BscAdapter::new(
        evm_config(&c.url, 56, CONFIRMATIONS),
        softstake_adapters::TreasuryKey::Hsm(key),
        STAKE_HUB,
    )
    .unwrap();
    assert_eq!(a.treasury(), address, "the adapter acts for the HSM key's address");
    let chain = journal::guarded(a, 500, 5);
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let v0 = c.validators[0];
    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-d", OpKind::Delegate, v0, 10 * BNB_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(
        run(&store, chain.as_ref(), op("hsm-u", OpKind::Undelegate, v0, 4 * BNB_WEI)).await,
        OpOutcome::Confirmed
    );
    assert_eq!(amount_at(chain.as_ref(), v0, StakeState::Active).await, 6 * BNB_WEI);
    assert_eq!(
        amount_at(chain.as_ref(), v0, StakeState::Deactivating).await,
        4 * BNB_WEI
    );
    let balance = u128::try_from(c.funder.get_balance(address).await.unwrap()).unwrap();
    assert!(
        (90 * BNB_WEI - BNB_WEI / 100..90 * BNB_WEI).contains(&balance),
        "10 BNB plus gas left the HSM treasury: {balance}"
    );
    c.mine(CONFIRMATIONS).await.unwrap();
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), reg.get("BNB").unwrap(), 0, now)
        .await
        .unwrap();
    assert!(rep.alert_id.is_none(), "zero drift: {:?}", rep.lines);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_dropped_reply_resolves_without_a_second_delegation() {
    let c = start_bsc(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let v = c.validators[2];
    let mut expected = 0u128;
    for (key, point) in [
        ("crash-submitted", CrashPoint::AfterSubmitted),
        ("crash-broadcast", CrashPoint::AfterBroadcast),
    ] {
        let o = op(key, OpKind::Delegate, v, 3 * BNB_WEI);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, evm::exec_config()).await;
        assert_eq!(recovered, vec![(key.to_string(), OpOutcome::Confirmed)]);
        expected += 3 * BNB_WEI;
        assert_eq!(
            amount_at(chain.as_ref(), v, StakeState::Active).await,
            expected,
            "{key}: exactly one delegation"
        );
    }
    // recovering again does nothing
    assert!(Executor::new(&store, chain.as_ref(), evm::exec_config())
        .recover()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_reverts_and_wrong_chain_are_typed_rejections() {
    let c = start_bsc(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;

    // not a validator: the StakeHub reverts ValidatorNotExisted in estimation; the journal
    // records the operation failed and nothing reaches the chain
    let stranger = c.anvil.addresses()[9];
    let before = c.treasury_balance().await.unwrap();
    let out = run(
        &store,
        chain.as_ref(),
        op("d-stranger", OpKind::Delegate, stranger, 2 * BNB_WEI),
    )
    .await;
    assert!(matches!(out, OpOutcome::Failed(_)), "{out:?}");
    let rec = store.operation("d-stranger").await.unwrap().unwrap();
    assert_eq!(rec.state, OperationState::Failed);
    assert!(
        rec.error.as_deref().unwrap_or("").contains("ValidatorNotExisted"),
        "the decoded contract error: {rec:?}"
    );
    assert_eq!(c.treasury_balance().await.unwrap(), before, "no transaction was sent");

    // below StakeHub.minDelegationBNBChange
    let small = chain
        .delegate("d-small", &c.validators[0].to_string(), Amount(BNB_WEI / 2))
        .await
        .unwrap_err();
    assert!(matches!(small, AdapterError::BadInput { .. }), "{small}");

    // more than the treasury holds
    let huge = chain
        .delegate("d-huge", &c.validators[0].to_string(), Amount(1_000_000 * BNB_WEI))
        .await
        .unwrap_err();
    assert!(matches!(huge, AdapterError::InsufficientFunds { .. }), "{huge}");

    // a node on another chain id: refused before signing
    let testnet = BscAdapter::new(
        evm_config(&c.url, 97, CONFIRMATIONS),
        SecretBytes::new(c.treasury_key.to_vec()),
        STAKE_HUB,
    )
    .unwrap();
    let wrong = testnet
        .delegate("d-wrong", &c.validators[0].to_string(), Amount(2 * BNB_WEI))
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, AdapterError::BadInput { .. }) && wrong.to_string().contains("chain 56"),
        "{wrong}"
    );

    // a key that is not a secp256k1 secret
    let bad_key = BscAdapter::new(
        evm_config(&c.url, 56, CONFIRMATIONS),
        SecretBytes::new(vec![0u8; 32]),
        STAKE_HUB,
    )
    .unwrap_err();
    assert!(matches!(bad_key, AdapterError::Signer(_)), "{bad_key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_status_shows_bnb_positions_from_anvil() {
    let c = start_bsc(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let v = c.validators[0];
    assert_eq!(
        run(&store, chain.as_ref(), op("d-status", OpKind::Delegate, v, 7 * BNB_WEI)).await,
        OpOutcome::Confirmed
    );
    let key_file = dir.path().join("bnb.key");
    std::fs::write(&key_file, alloy::hex::encode(c.treasury_key)).unwrap();
    // a key file must be private to its owner (the signer refuses it otherwise)
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let net = format!(
        "network = \"localnet\"\ntokens = \"tokens.toml\"\ndata_dir = \"{}\"\n[chains.BNB]\nadapter = \"bsc\"\nrpc_url = \"{}\"\nsigner = \"file:{}\"\n[chains.BNB.evm]\nchain_id = 56\nconfirmations = {CONFIRMATIONS}\n",
        dir.path().join("data").display(),
        c.url,
        key_file.display()
    );
    let cfg = softstake_node::config::NetworkConfig::from_toml_str(
        &net,
        softstake_node::config::EMBEDDED_TOKENS,
        "localnet.toml",
    )
    .unwrap();
    let now = chain.now().await.unwrap();
    let chains = softstake_node::chains::build(&cfg, false, now, None).unwrap();
    let text = softstake_node::treasury_cmd::status_report(&store, &cfg, &chains, Some("BNB"), now)
        .await
        .unwrap();
    let row: Vec<String> = text
        .lines()
        .find(|l| l.contains("BNB"))
        .unwrap()
        .split('┆')
        .map(|c| c.trim().to_string())
        .collect();
    assert_eq!(row[4], "7", "active BNB read from anvil:\n{text}");
}

/// A history longer than a page (a first sync far behind, an outage) is read a page per
/// sync, each continuing where the last stopped, and the growth is booked once, exactly,
/// when the scan reaches the head. Reproduced with a log range of 2 blocks (a page of 400)
/// and 1 000 blocks of outage: before paging, the sync refused the range outright.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_reward_sync_pages_through_a_long_history() {
    let c = start_bsc(0, 1).await.unwrap();
    let mut cfg = evm_config(&c.url, 56, CONFIRMATIONS);
    cfg.log_range_blocks = 2;
    let chain = journal::guarded(
        BscAdapter::new(cfg, SecretBytes::new(c.treasury_key.to_vec()), STAKE_HUB).unwrap(),
        500,
        5,
    );
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let v0 = c.validators[0];
    let now = chain.now().await.unwrap();
    assert_eq!(sync_token(&store, chain.as_ref(), now).await.unwrap().new_rewards, 0);
    assert_eq!(
        run(&store, chain.as_ref(), op("d-v0", OpKind::Delegate, v0, 10 * BNB_WEI)).await,
        OpOutcome::Confirmed
    );
    // the outage: 1 000 blocks, then a reward
    c.mine(1_000).await.unwrap();
    c.distribute_reward(v0, 40 * BNB_WEI).await.unwrap();
    c.mine(CONFIRMATIONS).await.unwrap();
    let (mut syncs, mut booked) = (0, Amount::ZERO);
    while booked.is_zero() {
        syncs += 1;
        assert!(syncs <= 10, "the syncs make no progress");
        let now = chain.now().await.unwrap();
        let synced = sync_token(&store, chain.as_ref(), now).await.unwrap();
        booked = booked.checked_add(synced.new_amount, "booked").unwrap();
    }
    assert!(syncs >= 3, "1 000 blocks at 400 a page take three syncs: {syncs}");
    let ours = amount_at(chain.as_ref(), v0, StakeState::Active).await;
    assert_eq!(booked.0, ours - 10 * BNB_WEI, "the growth, booked once");
    let now = chain.now().await.unwrap();
    assert_eq!(
        sync_token(&store, chain.as_ref(), now).await.unwrap().new_amount,
        Amount::ZERO
    );
    let rep = reconcile_token(&store, chain.as_ref(), reg.get("BNB").unwrap(), 0, now)
        .await
        .unwrap();
    assert!(rep.lines.iter().all(|l| l.drift == 0), "{:?}", rep.lines);
}

/// The `[chains.BNB]` network config at `url` signing with `key`, for chain id
/// `chain_id`, with `extra` lines in `[chains.BNB.evm]`.
fn bnb_net(dir: &tempfile::TempDir, url: &str, key: &[u8; 32], chain_id: u64, extra: &str) -> String {
    let evm = format!("[chains.BNB.evm]\nchain_id = {chain_id}\nconfirmations = {CONFIRMATIONS}\n{extra}");
    softstake_e2e::doctor::net(dir.path(), "BNB", "bsc", url, key, &evm)
}

/// `softstake doctor` passes against the local BSC (chain id, StakeHub and
/// BSCValidatorSet code, log ranges, the funded signer, tokens.toml's constants, the
/// elected set, the rate), and fails with its fix on each broken setting: another chain
/// id, a staking contract without code, an unfunded signer, an unreachable endpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_doctor_passes_on_anvil_and_names_each_broken_setting() {
    use softstake_e2e::doctor::{assert_fails, line, run};
    let c = start_bsc(0, 1).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = run(&bnb_net(&dir, &c.url, &c.treasury_key, 56, ""), "BNB").await;
    assert!(good.passed(), "{}", good.render());
    for name in [
        "chain id",
        "contract StakeHub",
        "contract BSCValidatorSet",
        "log range",
        "start block",
        "signer balance",
        "validators",
        "rate limit",
    ] {
        assert_ne!(
            line(&good, name).verdict,
            softstake_adapters::preflight::Verdict::Fail,
            "{name}"
        );
    }

    let r = run(&bnb_net(&dir, &c.url, &c.treasury_key, 97, ""), "BNB").await;
    assert_fails(&r, "chain id", "the config says 97");

    let no_code = "staking_contract = \"0x00000000000000000000000000000000000000aa\"\n";
    let r = run(&bnb_net(&dir, &c.url, &c.treasury_key, 56, no_code), "BNB").await;
    assert_fails(&r, "contract StakeHub", "no code at 0x");

    let unfunded = [0x42u8; 32];
    let r = run(&bnb_net(&dir, &c.url, &unfunded, 56, ""), "BNB").await;
    assert_fails(&r, "signer balance", "fund 0x");

    let r = run(&bnb_net(&dir, "http://127.0.0.1:1", &c.treasury_key, 56, ""), "BNB").await;
    assert_fails(&r, "endpoint", "check rpc_url");
}

/// The stand-in speaks the real interface: every function, event and error in its ABI
/// is in bsc-genesis-contract's ABI with the same types, except the documented test-only
/// entry points.
#[test]
fn success_stand_in_matches_the_real_abi() {
    let compiled = compile(&contracts_dir().join("bsc/StakeHub.sol")).unwrap();
    let sig = |e: &serde_json::Value| {
        let types = |k: &str| -> Vec<String> {
            e[k].as_array()
                .map(|a| a.iter().map(|i| i["type"].as_str().unwrap_or("").to_string()).collect())
                .unwrap_or_default()
        };
        (
            e["type"].as_str().unwrap_or("").to_string(),
            e["name"].as_str().unwrap_or("").to_string(),
            types("inputs"),
            types("outputs"),
        )
    };
    let abi_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../adapters/abi/bsc");
    for (contract, file, test_only) in [
        ("StakeHub", "stakehub.abi.json", vec!["addValidator", "slash"]),
        (
            "StakeCredit",
            "stakecredit.abi.json",
            vec!["", "OnlyStakeHub", "operatorAddress", "stakeHub"],
        ),
    ] {
        let real: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(abi_dir.join(file)).unwrap()).unwrap();
        let real: Vec<_> = real.as_array().unwrap().iter().map(sig).collect();
        let ours = compiled[contract].abi.as_array().unwrap().clone();
        assert!(ours.len() > 10);
        for e in &ours {
            let s = sig(e);
            if test_only.contains(&s.1.as_str()) {
                continue;
            }
            assert!(real.contains(&s), "{contract}: {s:?} is not in the real ABI");
        }
    }
}

/// Finality on anvil: a delegation whose block is replaced (`anvil_reorg`) or removed
/// (`anvil_rollback`) while it is one block deep, short of `CONFIRMATIONS`, is not booked
/// on that first sighting. The executor sees the transaction vanish, sends the same signed
/// transaction again and confirms it once it is deep enough: one delegation each, in a
/// block other than the one reorganised away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_reorged_out_delegation_lands_exactly_once() {
    let c = start_bsc(0, 1).await.unwrap();
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let v = c.validators[2];
    let mut expected = amount_at(chain.as_ref(), v, StakeState::Active).await;
    for (key, replace) in [("d-reorg", true), ("d-rollback", false)] {
        let running = tokio::spawn({
            let (store, chain) = (store.clone(), chain.clone());
            async move { run(&store, chain.as_ref(), op(key, OpKind::Delegate, v, 2 * BNB_WEI)).await }
        });
        // the first sighting: the block holding it is the head
        let (hash, first) = loop {
            let sent = store.operation(key).await.unwrap().and_then(|o| o.tx_id);
            if let Some(h) = sent.map(|t| t.parse::<alloy::primitives::B256>().unwrap()) {
                if let Some(r) = c.funder.get_transaction_receipt(h).await.unwrap() {
                    break (h, r);
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        let depth = c.funder.get_block_number().await.unwrap() + 1 - first.block_number.unwrap();
        assert!(depth < CONFIRMATIONS, "{key}: caught {depth} deep");
        assert_ne!(
            store.operation(key).await.unwrap().unwrap().state,
            OperationState::Confirmed,
            "{key}: not booked on its first sighting"
        );
        if replace {
            c.reorg(depth).await.unwrap();
        } else {
            c.rollback(depth).await.unwrap();
        }
        assert!(
            c.funder.get_transaction_receipt(hash).await.unwrap().is_none(),
            "{key}: dropped with its block"
        );
        assert_eq!(running.await.unwrap(), OpOutcome::Confirmed, "{key}");
        let again = c
            .funder
            .get_transaction_receipt(hash)
            .await
            .unwrap()
            .expect("the same signed transaction, sent again");
        assert_ne!(again.block_hash, first.block_hash, "{key}: in another block");
        expected += 2 * BNB_WEI;
        assert_eq!(
            amount_at(chain.as_ref(), v, StakeState::Active).await,
            expected,
            "{key}: exactly one delegation"
        );
    }
}

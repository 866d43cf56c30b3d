//! The Solana adapter against a real `solana-test-validator` started in-process (64 slots
//! per epoch, RPC transaction history on), driven through the operations journal:
//! delegate to two validators, activation, realized rewards across epochs, deactivate,
//! withdraw, reconciliation with zero drift; then a crash between submit and confirm
//! resolved on restart without a second stake account; and `softstake status` reading the
//! positions from the chain.
//!
//! `cargo nextest run -p softstake-e2e --features solana-validator` (needs libclang-dev
//! to build RocksDB; `scripts/test.sh` runs it).
#![cfg(feature = "solana-validator")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use solana_client::nonblocking::rpc_client::RpcClient;
use solana_commitment_config::CommitmentConfig;
use solana_sdk::account::AccountSharedData;
use solana_sdk::epoch_schedule::EpochSchedule;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Keypair, Signer};
use solana_sdk::transaction::Transaction;
use solana_test_validator::TestValidatorGenesis;

use softstake_adapters::solana::{SolanaAdapter, SolanaConfig};
use softstake_adapters::traits::{OpKind, StakeState};
use softstake_adapters::{ChainAdapter, SecretBytes};
use softstake_core::{Amount, TokenRegistry};
use softstake_e2e::journal;
use softstake_node::treasury::executor::{CrashPoint, ExecConfig, OpOutcome};
use softstake_node::treasury::{reconcile_token, sync_token};
use softstake_store::{NewOperation, OperationState, Store};

const SOL: u64 = 1_000_000_000;
const SLOTS_PER_EPOCH: u64 = 64;

struct Chain {
    _validator: solana_test_validator::TestValidator,
    rpc: RpcClient,
    url: String,
    treasury: Keypair,
    bootstrap_vote: Pubkey,
}

async fn start() -> Chain {
    start_with(|_, _| {}).await
}

/// A validator whose genesis `extra` adds to (the treasury's key given).
async fn start_with(extra: impl FnOnce(&mut TestValidatorGenesis, &Keypair)) -> Chain {
    let treasury = Keypair::new();
    let base = 20_000 + (std::process::id() % 200) as u16 * 200;
    let mut genesis = TestValidatorGenesis::default();
    genesis
        .port_range((base, base + 199))
        .gossip_port(base)
        .epoch_schedule(EpochSchedule::custom(SLOTS_PER_EPOCH, SLOTS_PER_EPOCH, false))
        .rpc_config(solana_rpc::rpc::JsonRpcConfig {
            enable_rpc_transaction_history: true,
            ..solana_rpc::rpc::JsonRpcConfig::default_for_test()
        })
        .add_account(
            treasury.pubkey(),
            AccountSharedData::new(1_000 * SOL, 0, &solana_system_interface::program::id()),
        );
    extra(&mut genesis, &treasury);
    let (validator, _mint) = genesis.start_async().await;
    let url = validator.rpc_url();
    let bootstrap_vote = validator.vote_account_address();
    Chain {
        rpc: RpcClient::new_with_commitment(url.clone(), CommitmentConfig::confirmed()),
        _validator: validator,
        url,
        treasury,
        bootstrap_vote,
    }
}

/// Adds at genesis a vote account `vote` (it never votes) and a stake account of `stake`
/// lamports delegated to it as bootstrap stake (`activation_epoch = u64::MAX`: effective
/// from the first epoch, as the genesis validator's own stake), staked and withdrawn by
/// `treasury`.
fn genesis_stake(g: &mut TestValidatorGenesis, treasury: &Pubkey, vote: &Pubkey, stake: u64) {
    use solana_sdk::rent::Rent;
    use solana_stake_interface::stake_flags::StakeFlags;
    use solana_stake_interface::state::{Authorized, Delegation, Lockup, Meta, Stake, StakeStateV2};
    use solana_vote_interface::state::{VoteInit, VoteStateV3, VoteStateVersions};
    let node = Keypair::new().pubkey();
    let init = VoteInit {
        node_pubkey: node,
        authorized_voter: node,
        authorized_withdrawer: *treasury,
        commission: 5,
    };
    let mut data = vec![0; VoteStateV3::size_of()];
    let state = VoteStateV3::new(&init, &solana_sdk::clock::Clock::default());
    VoteStateV3::serialize(&VoteStateVersions::new_v3(state), &mut data).unwrap();
    let rent = Rent::default();
    let mut account = AccountSharedData::new(
        rent.minimum_balance(data.len()),
        data.len(),
        &solana_vote_interface::program::id(),
    );
    account.set_data_from_slice(&data);
    g.add_account(*vote, account);

    let reserve = rent.minimum_balance(StakeStateV2::size_of());
    let state = StakeStateV2::Stake(
        Meta {
            rent_exempt_reserve: reserve,
            authorized: Authorized::auto(treasury),
            lockup: Lockup::default(),
        },
        Stake {
            delegation: Delegation::new(vote, stake, u64::MAX),
            credits_observed: 0,
        },
        StakeFlags::empty(),
    );
    let data = bincode::serialize(&state).unwrap();
    let mut account = AccountSharedData::new(
        stake + reserve,
        StakeStateV2::size_of(),
        &solana_stake_interface::program::id(),
    );
    account.set_data_from_slice(&data);
    g.add_account(Keypair::new().pubkey(), account);
}

/// The cluster's cooldown rate is read from the chain. solana-test-validator activates
/// `reduce_stake_warmup_cooldown` at genesis, so stake cools at 9 % of the cluster's
/// effective stake per epoch (the rate every cluster runs). 200 000 SOL of bootstrap stake
/// next to the validator's 1 000 000 (a sixth: the validator keeps its supermajority): at
/// 9 % of 1.2 M, 92 000 SOL still cool one epoch after the undelegation; the old 25 % rate
/// would have called all of it withdrawable, and a withdrawal built on that fails on chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn success_cooldown_follows_the_clusters_warmup_cooldown_rate() {
    const STAKE: u64 = 200_000 * SOL;
    let vote = Keypair::new().pubkey();
    let c = start_with(|g, treasury| genesis_stake(g, &treasury.pubkey(), &vote, STAKE)).await;
    // the genesis core BPF programs (the stake program among them) are usable once the
    // first epoch's program cache is built
    wait_epoch(&c, 1).await;
    let chain = adapter(&c);
    assert_eq!(
        amount_at(chain.as_ref(), &vote, StakeState::Active).await,
        u128::from(STAKE)
    );
    let dir = tempfile::tempdir().unwrap();
    let store = journal::sqlite_store(dir.path(), "solana-cooldown").await;
    run(&store, chain.as_ref(), op("u-all", OpKind::Undelegate, &vote, STAKE)).await;
    let e0 = c.rpc.get_epoch_info().await.unwrap().epoch;
    wait_epoch(&c, e0 + 1).await;
    assert_eq!(
        amount_at(chain.as_ref(), &vote, StakeState::Withdrawable).await,
        0,
        "at 9 % of the cluster's stake, 92 000 SOL still cool"
    );
    assert_eq!(
        amount_at(chain.as_ref(), &vote, StakeState::Deactivating).await,
        u128::from(STAKE)
    );
    let e = chain
        .withdraw("w-early", &vote.to_string(), Amount(u128::from(STAKE)))
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("no inactive stake accounts"),
        "nothing withdrawable yet: {e}"
    );
}

/// Creates a second vote account (it exists but does not vote, so it earns nothing).
async fn second_vote_account(c: &Chain) -> Pubkey {
    use solana_vote_interface::instruction::{create_account_with_config, CreateVoteAccountConfig};
    use solana_vote_interface::state::VoteInit;
    let vote = Keypair::new();
    let node = Keypair::new();
    let cfg = CreateVoteAccountConfig::default();
    let rent = c
        .rpc
        .get_minimum_balance_for_rent_exemption(cfg.space as usize)
        .await
        .unwrap();
    let init = VoteInit {
        node_pubkey: node.pubkey(),
        authorized_voter: node.pubkey(),
        authorized_withdrawer: c.treasury.pubkey(),
        commission: 5,
    };
    let ixs = create_account_with_config(&c.treasury.pubkey(), &vote.pubkey(), &init, rent, cfg);
    let hash = c.rpc.get_latest_blockhash().await.unwrap();
    let tx = Transaction::new_signed_with_payer(&ixs, Some(&c.treasury.pubkey()), &[&c.treasury, &vote, &node], hash);
    c.rpc.send_and_confirm_transaction(&tx).await.unwrap();
    vote.pubkey()
}

fn adapter(c: &Chain) -> Arc<dyn ChainAdapter> {
    let key = SecretBytes::new(c.treasury.to_bytes().to_vec());
    let a = SolanaAdapter::new(
        SolanaConfig {
            rpc_url: c.url.clone(),
            priority_fee_micro_lamports: 1,
            max_operations_per_epoch: 32,
            genesis_hash: None,
        },
        &key,
    )
    .unwrap();
    journal::guarded(a, 200, 8)
}

/// Finality waits: up to 2 minutes per operation (a loaded 2-core machine slows the
/// test validator well below its 400 ms slots).
fn exec() -> ExecConfig {
    ExecConfig {
        max_polls: 240,
        poll_interval: Duration::from_millis(500),
        max_attempts: 5,
        drill: None,
    }
}

async fn wait_epoch(c: &Chain, epoch: u64) {
    let start = Instant::now();
    while c.rpc.get_epoch_info().await.unwrap().epoch < epoch {
        assert!(start.elapsed() < Duration::from_secs(600), "epoch {epoch} not reached");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // partitioned rewards are paid in the first slots of the epoch
    tokio::time::sleep(Duration::from_secs(3)).await;
}

fn op(key: &str, kind: OpKind, validator: &Pubkey, amount: u64) -> NewOperation {
    journal::op("SOL", key, kind, &validator.to_string(), u128::from(amount))
}

async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation) {
    let (key, kind) = (o.idempotency_key.clone(), o.kind);
    let out = journal::run(store, chain, o, exec()).await;
    assert_eq!(out, OpOutcome::Confirmed, "{key} {kind:?}");
}

async fn amount_at(chain: &dyn ChainAdapter, v: &Pubkey, state: StakeState) -> u128 {
    journal::amount_at(chain, &v.to_string(), state).await
}

/// Production signing: the treasury key is an Ed25519 key pair generated inside a
/// SoftHSM2 token (PKCS#11), funded by a transfer; the validator accepts the stake
/// account the token signed for (`CKM_EDDSA`, signed in `spawn_blocking`, verified before
/// sending), with the token's key as staker and withdrawer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn success_delegation_signed_by_the_hsm() {
    let dir = tempfile::tempdir().unwrap();
    let key = softstake_e2e::hsm_key(dir.path(), "sol-1", softstake_adapters::pkcs11::KeyAlgorithm::Ed25519);
    let hsm_treasury: Pubkey = key.address("solana", "cosmos").unwrap().parse().unwrap();
    let c = start().await;
    let fund = solana_system_interface::instruction::transfer(&c.treasury.pubkey(), &hsm_treasury, 100 * SOL);
    let hash = c.rpc.get_latest_blockhash().await.unwrap();
    let tx = Transaction::new_signed_with_payer(&[fund], Some(&c.treasury.pubkey()), &[&c.treasury], hash);
    c.rpc.send_and_confirm_transaction(&tx).await.unwrap();
    let a = SolanaAdapter::new(
        SolanaConfig {
            rpc_url: c.url.clone(),
            priority_fee_micro_lamports: 1,
            max_operations_per_epoch: 32,
            genesis_hash: None,
        },
        softstake_adapters::TreasuryKey::Hsm(key),
    )
    .unwrap();
    assert_eq!(a.treasury(), hsm_treasury, "the adapter acts for the HSM key");
    let chain = journal::guarded(a, 200, 8);
    let store = journal::sqlite_store(dir.path(), "sol-hsm").await;
    run(
        &store,
        chain.as_ref(),
        op("hsm-d", OpKind::Delegate, &c.bootstrap_vote, 10 * SOL),
    )
    .await;
    // finality takes about half an epoch here, so the stake may already be active
    let committed = amount_at(chain.as_ref(), &c.bootstrap_vote, StakeState::Activating).await
        + amount_at(chain.as_ref(), &c.bootstrap_vote, StakeState::Active).await;
    assert_eq!(committed, u128::from(10 * SOL));
    let balance = c.rpc.get_balance(&hsm_treasury).await.unwrap();
    assert!(
        balance < 90 * SOL,
        "10 SOL, the rent reserve and fees left the HSM treasury: {balance}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn success_stake_lifecycle_on_a_real_validator() {
    let c = start().await;
    let second = second_vote_account(&c).await;
    let chain = adapter(&c);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}/sol.db", dir.path().display()))
        .await
        .unwrap();
    let reg = TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).unwrap();
    let sol = reg.get("SOL").unwrap();

    run(
        &store,
        chain.as_ref(),
        op("d-boot", OpKind::Delegate, &c.bootstrap_vote, 10 * SOL),
    )
    .await;
    run(
        &store,
        chain.as_ref(),
        op("d-second", OpKind::Delegate, &second, 5 * SOL),
    )
    .await;
    let e0 = c.rpc.get_epoch_info().await.unwrap().epoch;
    // finality takes about half an epoch here, so the stake may already be active
    let committed = amount_at(chain.as_ref(), &c.bootstrap_vote, StakeState::Activating).await
        + amount_at(chain.as_ref(), &c.bootstrap_vote, StakeState::Active).await;
    assert_eq!(committed, u128::from(10 * SOL));

    // the seeded address makes a second delegation with the same key impossible
    let dup = chain
        .delegate("d-boot", &c.bootstrap_vote.to_string(), Amount(u128::from(10 * SOL)))
        .await
        .unwrap();
    assert!(
        chain.broadcast(&dup).await.is_err(),
        "a second account with the same seed"
    );

    wait_epoch(&c, e0 + 1).await;
    let positions = chain.positions().await.unwrap();
    let active = amount_at(chain.as_ref(), &c.bootstrap_vote, StakeState::Active).await;
    assert!(
        active >= u128::from(10 * SOL),
        "epoch {e0}+1: all active (rewards may have compounded already): {positions:?}"
    );

    // rewards of epoch e0 + 1 are paid at the start of e0 + 2
    wait_epoch(&c, e0 + 1).await;
    let now = chain.now().await.unwrap();
    let synced = sync_token(&store, chain.as_ref(), now).await.unwrap();
    assert!(
        synced.new_rewards >= 1 && !synced.new_amount.is_zero(),
        "realized rewards: {synced:?}"
    );
    let boot_active = amount_at(chain.as_ref(), &c.bootstrap_vote, StakeState::Active).await;
    assert!(
        boot_active > u128::from(10 * SOL),
        "rewards compound into the stake: {boot_active}"
    );
    let rep = reconcile_token(&store, chain.as_ref(), sol, 0, now).await.unwrap();
    assert!(rep.alert_id.is_none(), "zero drift after sync: {:?}", rep.lines);

    // undelegate: all of the second, part of the bootstrap one (a split)
    run(
        &store,
        chain.as_ref(),
        op("u-second", OpKind::Undelegate, &second, 5 * SOL),
    )
    .await;
    run(
        &store,
        chain.as_ref(),
        op("u-boot", OpKind::Undelegate, &c.bootstrap_vote, 4 * SOL),
    )
    .await;
    // (the epoch may turn while we wait for finality: deactivating or already inactive)
    let leaving = |v: Pubkey| {
        let chain = chain.clone();
        async move {
            amount_at(chain.as_ref(), &v, StakeState::Deactivating).await
                + amount_at(chain.as_ref(), &v, StakeState::Withdrawable).await
        }
    };
    assert_eq!(leaving(second).await, u128::from(5 * SOL));
    assert!(leaving(c.bootstrap_vote).await >= u128::from(4 * SOL));
    let e = c.rpc.get_epoch_info().await.unwrap().epoch;
    wait_epoch(&c, e + 1).await;
    let now = chain.now().await.unwrap();
    sync_token(&store, chain.as_ref(), now).await.unwrap();
    let w_second = amount_at(chain.as_ref(), &second, StakeState::Withdrawable).await;
    let w_boot = amount_at(chain.as_ref(), &c.bootstrap_vote, StakeState::Withdrawable).await;
    assert_eq!(w_second, u128::from(5 * SOL));
    run(
        &store,
        chain.as_ref(),
        op("w-second", OpKind::Withdraw, &second, w_second as u64),
    )
    .await;
    run(
        &store,
        chain.as_ref(),
        op("w-boot", OpKind::Withdraw, &c.bootstrap_vote, w_boot as u64),
    )
    .await;
    assert_eq!(amount_at(chain.as_ref(), &second, StakeState::Withdrawable).await, 0);
    let now = chain.now().await.unwrap();
    let rep = reconcile_token(&store, chain.as_ref(), sol, 0, now).await.unwrap();
    assert!(rep.alert_id.is_none(), "zero drift after withdrawals: {:?}", rep.lines);
    assert!(rep.lines.iter().all(|l| l.drift == 0), "{:?}", rep.lines);
    for k in ["d-boot", "d-second", "u-second", "u-boot", "w-second", "w-boot"] {
        assert_eq!(
            store.operation(k).await.unwrap().unwrap().state,
            OperationState::Reconciled,
            "{k}"
        );
    }

    // a crash between submit and confirm: the restart resolves it, one stake account only
    for (key, point) in [
        ("crash-a", CrashPoint::AfterSubmitted),
        ("crash-b", CrashPoint::AfterBroadcast),
    ] {
        let o = op(key, OpKind::Delegate, &c.bootstrap_vote, 2 * SOL);
        let recovered = journal::crash_and_recover(&store, chain.as_ref(), o, point, exec()).await;
        assert_eq!(recovered, vec![(key.to_string(), OpOutcome::Confirmed)]);
        let accounts: Vec<_> = chain
            .positions()
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.amount.0 == u128::from(2 * SOL))
            .collect();
        assert_eq!(
            accounts.len(),
            if key == "crash-a" { 1 } else { 2 },
            "exactly one new stake account per operation"
        );
    }

    // `softstake status` reads the positions from this chain
    let key_file = dir.path().join("treasury.json");
    std::fs::write(
        &key_file,
        serde_json::to_string(&c.treasury.to_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    // a key file must be private to its owner (the signer refuses it otherwise)
    std::fs::set_permissions(&key_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let net = format!(
        "network = \"localnet\"\ntokens = \"tokens.toml\"\ndata_dir = \"{}\"\n[chains.SOL]\nadapter = \"solana\"\nrpc_url = \"{}\"\nsigner = \"file:{}\"\n",
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
    let chains = softstake_node::chains::build(&cfg, false, chain.now().await.unwrap(), None).unwrap();
    let text =
        softstake_node::treasury_cmd::status_report(&store, &cfg, &chains, Some("SOL"), chain.now().await.unwrap())
            .await
            .unwrap();
    let positions = chain.positions().await.unwrap();
    let sum = |st: StakeState| Amount(positions.iter().filter(|p| p.state == st).map(|p| p.amount.0).sum());
    let row: Vec<String> = text
        .lines()
        .find(|l| l.contains("SOL"))
        .unwrap()
        .split('┆')
        .map(|c| c.trim().to_string())
        .collect();
    assert_eq!(
        row[3],
        sol.format_amount(sum(StakeState::Activating)),
        "activating read from the chain:\n{text}"
    );
    assert_eq!(
        row[4],
        sol.format_amount(sum(StakeState::Active)),
        "active read from the chain:\n{text}"
    );
    assert!(
        sum(StakeState::Active).0 + sum(StakeState::Activating).0 >= u128::from(10 * SOL),
        "{positions:?}"
    );

    // `softstake doctor` passes on this validator, and refuses a pinned genesis of
    // another cluster (devnet's) with its fix
    use softstake_e2e::doctor::{assert_fails, line, run as doctor};
    let report = doctor(&net, "SOL").await;
    assert!(report.passed(), "{}", report.render());
    assert!(
        line(&report, "genesis hash").detail.contains("local, not pinned"),
        "{}",
        report.render()
    );
    assert_eq!(
        line(&report, "stake program").verdict,
        softstake_adapters::preflight::Verdict::Pass
    );
    let devnet = net.replace(
        "adapter = \"solana\"\n",
        "adapter = \"solana\"\ngenesis_hash = \"EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG\"\n",
    );
    assert_fails(
        &doctor(&devnet, "SOL").await,
        "genesis hash",
        "the config pins EtWTRABZ",
    );
}

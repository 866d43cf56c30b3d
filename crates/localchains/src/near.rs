//! A local NEAR chain that speaks NEAR's JSON-RPC and keeps the reference staking pool's
//! rules, for tests and local runs (no `neard` can be installed offline here).
//!
//! ```text
//!  POST /  JSON-RPC 2.0
//!   block {finality | block_id}              BlockView (near-primitives)
//!   query call_function | view_access_key | view_account
//!                                            QueryResponseKind; a contract panic in a view
//!                                            is the legacy {"error": …} result, as nearcore
//!   send_tx {signed_tx_base64, wait_until}   borsh SignedTransaction, checked as a node does:
//!            signer exists, access key exists (AccessKeyNotFound), ed25519 signature over
//!            sha256(borsh(tx)) (InvalidSignature), nonce > key nonce (InvalidNonce), block
//!            hash known (InvalidChain) and within transaction_validity_period (Expired),
//!            balance for deposit and gas (NotEnoughBalance); errors in nearcore's
//!            HANDLER_ERROR / INVALID_TRANSACTION shape
//!   tx {tx_hash, sender_account_id}          FinalExecutionOutcomeView; FINAL two blocks
//!                                            after inclusion; UNKNOWN_TRANSACTION otherwise
//!   validators                               EpochValidatorInfo of the pools
//!   EXPERIMENTAL_genesis_config              epoch_length, transaction_validity_period, …
//!   sandbox_fast_forward {delta_height}      the sandbox's clock control: produce blocks
//! ```
//!
//! Pools follow near/core-contracts `staking-pool` (0.4.1): stake held as shares
//! (deposits and unstakes rounded as the contract rounds), unstaked balance locked
//! `NUM_EPOCHS_TO_UNLOCK` (4) epochs, its panic messages, and rewards at each epoch
//! boundary at the configured yearly rate, the owner's fee taken as shares (as `ping`
//! does; here every pool is pinged at the boundary). One block per transaction, plus
//! blocks produced by `sandbox_fast_forward`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use near_crypto::{PublicKey, SecretKey};
use near_jsonrpc_primitives::errors::RpcError;
use near_jsonrpc_primitives::types::transactions::RpcTransactionError;
use near_primitives::action::Action;
use near_primitives::errors::{
    ActionError, ActionErrorKind, FunctionCallError, InvalidAccessKeyError, InvalidTxError, TxExecutionError,
};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::transaction::SignedTransaction;
use near_primitives::types::{AccountId, Balance};
use near_primitives::views::{
    AccessKeyPermissionView, AccessKeyView, BlockHeaderView, BlockView, CallResult, CurrentEpochValidatorInfo,
    EpochValidatorInfo, ExecutionMetadataView, ExecutionOutcomeView, ExecutionOutcomeWithIdView, ExecutionStatusView,
    FinalExecutionOutcomeView, FinalExecutionStatus,
};
use ruint::aliases::U256;
use serde_json::{json, Value};

/// Epochs an unstaked balance stays locked (the reference pool's `NUM_EPOCHS_TO_UNLOCK`).
pub const NUM_EPOCHS_TO_UNLOCK: u64 = 4;
/// Gas fee charged per transaction, yoctoNEAR (about what a pool call burns).
pub const TX_FEE_YOCTO: u128 = 1_000_000_000_000_000_000_000; // 0.001 NEAR
/// Blocks after inclusion before a transaction is final (NEAR's doomslug finality).
pub const FINALITY_BLOCKS: u64 = 2;
/// 1 NEAR in yoctoNEAR.
pub const NEAR: u128 = 1_000_000_000_000_000_000_000_000;
const YEAR_NANOS: u128 = 365 * 86_400 * 1_000_000_000;

/// One pool at genesis.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// The pool's account id (`<name>.poolv1.near`).
    pub account_id: String,
    /// Its owner's own stake at genesis, yoctoNEAR.
    pub owner_stake: u128,
    /// Reward fee (numerator, denominator).
    pub reward_fee: (u32, u32),
}

/// The chain's genesis.
#[derive(Debug, Clone)]
pub struct NearGenesis {
    /// Blocks per epoch (mainnet 43 200).
    pub epoch_length: u64,
    /// Nanoseconds per block (mainnet about 600 ms).
    pub block_nanos: u64,
    /// Blocks a transaction stays valid after its block hash (mainnet 86 400).
    pub transaction_validity_period: u64,
    /// Pools' yearly reward, bps of their stake, before their fee.
    pub apr_bps: u32,
    /// The pools.
    pub pools: Vec<PoolSpec>,
    /// Validators that stake on their own account, with no staking-pool contract (as some
    /// mainnet validators do): (account id, stake yoctoNEAR). They are in the validator
    /// set; a view call on them fails with `CodeDoesNotExist`.
    pub solo_validators: Vec<(String, u128)>,
    /// Accounts with a full-access key and a balance: (id, public key, yoctoNEAR).
    pub accounts: Vec<(String, PublicKey, u128)>,
    /// Chain time of the genesis block, Unix nanoseconds.
    pub genesis_nanos: u64,
    /// Real milliseconds between blocks produced on their own (0: only transactions and
    /// `sandbox_fast_forward` produce blocks).
    pub tick_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct PoolAccount {
    shares: u128,
    unstaked: u128,
    unstaked_available_epoch_height: u64,
}

#[derive(Debug, Clone)]
struct Pool {
    owner: AccountId,
    public_key: PublicKey,
    total_staked: u128,
    total_shares: u128,
    reward_fee: (u32, u32),
    accounts: BTreeMap<AccountId, PoolAccount>,
}

impl Pool {
    /// Shares worth `amount` at the pool's price (1:1 in an empty pool).
    fn shares(&self, amount: u128, up: bool) -> u128 {
        convert(amount, self.total_shares, self.total_staked, up)
    }
    /// yoctoNEAR worth `shares` at the pool's price.
    fn staked(&self, shares: u128, up: bool) -> u128 {
        convert(shares, self.total_staked, self.total_shares, up)
    }
    fn shares_down(&self, amount: u128) -> u128 {
        self.shares(amount, false)
    }
    fn shares_up(&self, amount: u128) -> u128 {
        self.shares(amount, true)
    }
    fn staked_down(&self, shares: u128) -> u128 {
        self.staked(shares, false)
    }
    fn staked_up(&self, shares: u128) -> u128 {
        self.staked(shares, true)
    }
}

/// `v · to / from`, or `v` itself when `from` is empty (the contract's first deposit).
fn convert(v: u128, to: u128, from: u128, up: bool) -> u128 {
    if from == 0 {
        v
    } else {
        mul_div(v, to, from, up)
    }
}

/// `a · b / c` with a 256-bit intermediate (the contract uses U256), rounded down or up.
fn mul_div(a: u128, b: u128, c: u128, up: bool) -> u128 {
    let (a, b, c) = (U256::from(a), U256::from(b), U256::from(c));
    let p = a * b;
    let q = p / c;
    let q = if up && q * c != p { q + U256::from(1u8) } else { q };
    u128::try_from(q).unwrap_or(u128::MAX)
}

#[derive(Debug, Clone)]
struct Account {
    amount: u128,
    keys: HashMap<PublicKey, u64>,
}

#[derive(Debug, Clone)]
struct TxRecord {
    signed: SignedTransaction,
    height: u64,
    block_hash: CryptoHash,
    status: FinalExecutionStatus,
    burnt: u128,
}

#[derive(Debug)]
struct Chain {
    g: NearGenesis,
    height: u64,
    blocks: Vec<(CryptoHash, u64)>,
    by_hash: HashMap<CryptoHash, u64>,
    accounts: BTreeMap<AccountId, Account>,
    pools: BTreeMap<AccountId, Pool>,
    txs: HashMap<CryptoHash, TxRecord>,
    /// Test fault: `block` by hash answers an internal error (an overloaded node).
    block_by_hash_fails: bool,
}

impl Chain {
    fn new(g: NearGenesis) -> Result<Chain> {
        anyhow::ensure!(
            g.epoch_length > 0 && g.block_nanos > 0 && g.transaction_validity_period > 0,
            "genesis: epoch_length, block_nanos and transaction_validity_period must be above 0"
        );
        for p in &g.pools {
            anyhow::ensure!(
                p.reward_fee.1 > 0 && p.reward_fee.0 <= p.reward_fee.1,
                "genesis: pool {} reward fee {}/{}",
                p.account_id,
                p.reward_fee.0,
                p.reward_fee.1
            );
        }
        let mut accounts = BTreeMap::new();
        for (id, pk, amount) in &g.accounts {
            let id: AccountId = id.parse().with_context(|| format!("account id {id}"))?;
            accounts.insert(
                id,
                Account {
                    amount: *amount,
                    keys: HashMap::from([(pk.clone(), 0)]),
                },
            );
        }
        let mut pools = BTreeMap::new();
        for (i, p) in g.pools.iter().enumerate() {
            let id: AccountId = p
                .account_id
                .parse()
                .with_context(|| format!("pool id {}", p.account_id))?;
            let owner: AccountId = format!("owner{i}.near").parse()?;
            let public_key = SecretKey::from_seed(near_crypto::KeyType::ED25519, &p.account_id).public_key();
            let mut accts = BTreeMap::new();
            accts.insert(
                owner.clone(),
                PoolAccount {
                    shares: p.owner_stake,
                    ..PoolAccount::default()
                },
            );
            pools.insert(
                id,
                Pool {
                    owner,
                    public_key,
                    total_staked: p.owner_stake,
                    total_shares: p.owner_stake,
                    reward_fee: p.reward_fee,
                    accounts: accts,
                },
            );
        }
        let genesis_hash = hash(b"softstake local near genesis");
        let mut c = Chain {
            height: 0,
            blocks: vec![(genesis_hash, g.genesis_nanos)],
            by_hash: HashMap::from([(genesis_hash, 0)]),
            accounts,
            pools,
            txs: HashMap::new(),
            block_by_hash_fails: false,
            g,
        };
        c.produce(1);
        Ok(c)
    }

    fn epoch_height(&self, height: u64) -> u64 {
        height / self.g.epoch_length + 1
    }

    fn epoch_start(&self, height: u64) -> u64 {
        (height / self.g.epoch_length) * self.g.epoch_length
    }

    fn head(&self) -> (CryptoHash, u64) {
        self.blocks[self.height as usize]
    }

    /// Produces `n` blocks; pools are pinged at each epoch boundary.
    fn produce(&mut self, n: u64) {
        for _ in 0..n {
            let (prev, ts) = self.head();
            self.height += 1;
            let mut seed = prev.as_ref().to_vec();
            seed.extend_from_slice(&self.height.to_le_bytes());
            let h = hash(&seed);
            self.blocks.push((h, ts + self.g.block_nanos));
            self.by_hash.insert(h, self.height);
            if self.height.is_multiple_of(self.g.epoch_length) {
                self.ping_all();
            }
        }
    }

    /// The reference pool's `internal_ping` at an epoch boundary: the epoch's reward is
    /// added to the stake; the owner's fee is paid as newly minted shares.
    fn ping_all(&mut self) {
        let epoch_nanos = u128::from(self.g.epoch_length) * u128::from(self.g.block_nanos);
        let apr = u128::from(self.g.apr_bps);
        for pool in self.pools.values_mut() {
            let reward = mul_div(pool.total_staked, apr * epoch_nanos, 10_000 * YEAR_NANOS, false);
            if reward == 0 {
                continue;
            }
            let (num, den) = pool.reward_fee;
            let fee = mul_div(reward, u128::from(num), u128::from(den.max(1)), false);
            pool.total_staked += reward;
            // shares worth `fee` at the new price, minted to the owner
            let fee_shares = pool.shares_down(fee);
            let owner = pool.owner.clone();
            pool.accounts.entry(owner).or_default().shares += fee_shares;
            pool.total_shares += fee_shares;
        }
    }

    fn block_view(&self, height: u64) -> BlockView {
        let (h, ts) = self.blocks[height as usize];
        let header = BlockHeaderView {
            height,
            hash: h,
            prev_hash: if height == 0 {
                CryptoHash::default()
            } else {
                self.blocks[height as usize - 1].0
            },
            timestamp: ts,
            timestamp_nanosec: ts,
            epoch_id: CryptoHash::hash_borsh(self.epoch_height(height)),
            ..BlockHeaderView::default()
        };
        BlockView {
            author: "localnet.near".parse().expect("static account id"),
            header,
            chunks: vec![],
        }
    }

    fn pool_account_view(&self, pool: &Pool, account: &AccountId) -> Value {
        let a = pool.accounts.get(account).cloned().unwrap_or_default();
        json!({
            "account_id": account,
            "unstaked_balance": a.unstaked.to_string(),
            "staked_balance": pool.staked_down(a.shares).to_string(),
            "can_withdraw": a.unstaked_available_epoch_height <= self.epoch_height(self.height),
        })
    }

    /// A view call: Ok(JSON result) or Err(panic message).
    fn view(&self, contract: &AccountId, method: &str, args: &[u8]) -> std::result::Result<Value, String> {
        let pool = self.pools.get(contract).ok_or_else(|| {
            format!(
                "wasm execution failed with error: CompilationError(CodeDoesNotExist {{ account_id: \"{contract}\" }})"
            )
        })?;
        let args: Value = if args.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(args)
                .map_err(|e| format!("Smart contract panicked: Failed to deserialize input from JSON.: {e}"))?
        };
        let account = || -> std::result::Result<AccountId, String> {
            args["account_id"]
                .as_str()
                .ok_or("Smart contract panicked: Failed to deserialize input from JSON.")?
                .parse()
                .map_err(|_| "Smart contract panicked: The account ID is invalid".to_string())
        };
        Ok(match method {
            "get_account" => self.pool_account_view(pool, &account()?),
            "get_account_staked_balance" => {
                json!(pool
                    .staked_down(pool.accounts.get(&account()?).map_or(0, |a| a.shares))
                    .to_string())
            }
            "get_account_unstaked_balance" => {
                json!(pool.accounts.get(&account()?).map_or(0, |a| a.unstaked).to_string())
            }
            "is_account_unstaked_balance_available" => {
                let a = pool.accounts.get(&account()?).cloned().unwrap_or_default();
                json!(a.unstaked_available_epoch_height <= self.epoch_height(self.height))
            }
            "get_total_staked_balance" => json!(pool.total_staked.to_string()),
            "get_reward_fee_fraction" => json!({"numerator": pool.reward_fee.0, "denominator": pool.reward_fee.1}),
            "get_owner_id" => json!(pool.owner),
            other => {
                return Err(format!(
                    "wasm execution failed with error: MethodResolveError(MethodNotFound) ({other})"
                ))
            }
        })
    }

    /// Checks a transaction as a node does before it enters the pool.
    fn validate(&self, tx: &SignedTransaction) -> std::result::Result<(), InvalidTxError> {
        let t = &tx.transaction;
        let signer = t.signer_id();
        let Some(account) = self.accounts.get(signer) else {
            return Err(InvalidTxError::SignerDoesNotExist {
                signer_id: signer.clone(),
            });
        };
        let Some(ak_nonce) = account.keys.get(t.public_key()) else {
            return Err(InvalidTxError::InvalidAccessKeyError(
                InvalidAccessKeyError::AccessKeyNotFound {
                    account_id: signer.clone(),
                    public_key: Box::new(t.public_key().clone()),
                },
            ));
        };
        if !tx.signature.verify(tx.get_hash().as_ref(), t.public_key()) {
            return Err(InvalidTxError::InvalidSignature);
        }
        let tx_nonce = t.nonce().nonce();
        if tx_nonce <= *ak_nonce {
            return Err(InvalidTxError::InvalidNonce {
                tx_nonce,
                ak_nonce: *ak_nonce,
            });
        }
        let Some(ref_height) = self.by_hash.get(t.block_hash()) else {
            return Err(InvalidTxError::InvalidChain);
        };
        if self.height.saturating_sub(*ref_height) > self.g.transaction_validity_period {
            return Err(InvalidTxError::Expired);
        }
        let deposit: u128 = t
            .actions()
            .iter()
            .map(|a| match a {
                Action::FunctionCall(f) => f.deposit.as_yoctonear(),
                Action::Transfer(x) => x.deposit.as_yoctonear(),
                _ => 0,
            })
            .sum();
        let cost = deposit.saturating_add(TX_FEE_YOCTO);
        if account.amount < cost {
            return Err(InvalidTxError::NotEnoughBalance {
                signer_id: signer.clone(),
                balance: Balance::from_yoctonear(account.amount),
                cost: Balance::from_yoctonear(cost),
            });
        }
        Ok(())
    }

    /// Includes and executes a valid transaction in a new block.
    fn execute(&mut self, tx: SignedTransaction) {
        self.produce(1);
        let (block_hash, _) = self.head();
        let t = tx.transaction.clone();
        let signer = t.signer_id().clone();
        if let Some(a) = self.accounts.get_mut(&signer) {
            a.keys.insert(t.public_key().clone(), t.nonce().nonce());
            a.amount -= TX_FEE_YOCTO;
        }
        let status = match self.apply(&signer, t.receiver_id(), t.actions()) {
            Ok(()) => FinalExecutionStatus::SuccessValue(vec![]),
            Err(msg) => FinalExecutionStatus::Failure(TxExecutionError::ActionError(ActionError {
                index: Some(0),
                kind: ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(format!(
                    "Smart contract panicked: {msg}"
                ))),
            })),
        };
        let id = tx.get_hash();
        self.txs.insert(
            id,
            TxRecord {
                signed: tx,
                height: self.height,
                block_hash,
                status,
                burnt: TX_FEE_YOCTO,
            },
        );
    }

    /// The pool's change methods; a panic message leaves every balance as it was.
    fn apply(
        &mut self,
        signer: &AccountId,
        receiver: &AccountId,
        actions: &[Action],
    ) -> std::result::Result<(), String> {
        let epoch = self.epoch_height(self.height);
        let [Action::FunctionCall(f)] = actions else {
            return Err("only one FunctionCall per transaction is supported here".into());
        };
        let deposit = f.deposit.as_yoctonear();
        if deposit > 0 && f.method_name != "deposit_and_stake" {
            return Err("Method doesn't accept deposit".into());
        }
        let Some(pool) = self.pools.get_mut(receiver) else {
            return Err(format!("{receiver} is not a staking pool"));
        };
        let args: Value = serde_json::from_slice(&f.args).unwrap_or(json!({}));
        let amount = || -> std::result::Result<u128, String> {
            args["amount"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "Failed to deserialize input from JSON.".to_string())
        };
        let mut acct = pool.accounts.get(signer).cloned().unwrap_or_default();
        match f.method_name.as_str() {
            "deposit_and_stake" => {
                if deposit == 0 {
                    return Err("Deposit amount should be positive".into());
                }
                acct.unstaked += deposit;
                let shares = pool.shares_down(deposit);
                if shares == 0 {
                    return Err(
                        "The calculated number of \"stake\" shares received for staking should be positive".into(),
                    );
                }
                let charge = pool.staked_up(shares);
                acct.unstaked -= charge.min(acct.unstaked);
                acct.shares += shares;
                pool.total_staked += charge;
                pool.total_shares += shares;
                self.accounts.get_mut(signer).expect("validated signer").amount -= deposit;
            }
            "unstake" => {
                let amount = amount()?;
                if amount == 0 {
                    return Err("Unstaking amount should be positive".into());
                }
                if pool.staked_down(acct.shares) < amount {
                    return Err("Not enough staked balance to unstake".into());
                }
                let shares = pool.shares_up(amount).min(acct.shares);
                let unstake_amount = pool.staked_down(shares);
                acct.shares -= shares;
                acct.unstaked += amount;
                acct.unstaked_available_epoch_height = epoch + NUM_EPOCHS_TO_UNLOCK;
                pool.total_staked -= unstake_amount;
                pool.total_shares -= shares;
            }
            "withdraw" => {
                let amount = amount()?;
                if amount == 0 {
                    return Err("Withdrawal amount should be positive".into());
                }
                if acct.unstaked < amount {
                    return Err("Not enough unstaked balance to withdraw".into());
                }
                if acct.unstaked_available_epoch_height > epoch {
                    return Err("The unstaked balance is not yet available due to unstaking delay".into());
                }
                acct.unstaked -= amount;
                self.accounts.get_mut(signer).expect("validated signer").amount += amount;
            }
            "ping" => {}
            other => return Err(format!("method {other} is not supported by this pool")),
        }
        pool.accounts.insert(signer.clone(), acct);
        Ok(())
    }

    fn outcome(&self, r: &TxRecord) -> FinalExecutionOutcomeView {
        let t = &r.signed.transaction;
        let status = match &r.status {
            FinalExecutionStatus::Failure(e) => ExecutionStatusView::Failure(e.clone()),
            _ => ExecutionStatusView::SuccessValue(vec![]),
        };
        FinalExecutionOutcomeView {
            status: r.status.clone(),
            transaction: r.signed.clone().into(),
            transaction_outcome: ExecutionOutcomeWithIdView {
                proof: vec![],
                block_hash: r.block_hash,
                id: r.signed.get_hash(),
                outcome: ExecutionOutcomeView {
                    logs: vec![],
                    receipt_ids: vec![],
                    gas_burnt: near_primitives::gas::Gas::from_teragas(5),
                    tokens_burnt: Balance::from_yoctonear(r.burnt),
                    executor_id: t.signer_id().clone(),
                    status,
                    metadata: ExecutionMetadataView::default(),
                },
            },
            receipts_outcome: vec![],
        }
    }
}

/// A running local NEAR chain.
#[derive(Debug)]
pub struct LocalNear {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    chain: Arc<Mutex<Chain>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalNear {
    fn drop(&mut self) {
        self.server.abort();
    }
}

type Shared = Arc<Mutex<Chain>>;

/// Starts the chain on 127.0.0.1:`port` (0 = any free port).
///
/// # Errors
/// A malformed genesis (account ids) or a port that cannot be bound.
pub async fn start(genesis: NearGenesis, port: u16) -> Result<LocalNear> {
    let chain: Shared = Arc::new(Mutex::new(Chain::new(genesis)?));
    let app = Router::new().route("/", post(rpc)).with_state(chain.clone());
    let tick_ms = chain.lock().map(|c| c.g.tick_ms).unwrap_or(0);
    let ticking = chain.clone();
    let (addr, server) = crate::serve(app, port, tick_ms, move || {
        ticking.lock().unwrap_or_else(|p| p.into_inner()).produce(1);
    })
    .await
    .context("the local NEAR RPC")?;
    Ok(LocalNear {
        url: format!("http://{addr}"),
        chain,
        server,
    })
}

impl LocalNear {
    /// Produces `blocks` blocks (pools pinged at each epoch boundary).
    pub fn fast_forward(&self, blocks: u64) {
        self.lock().produce(blocks);
    }

    /// Produces blocks up to the start of the epoch `n` epochs after the current one.
    pub fn advance_epochs(&self, n: u64) {
        let mut c = self.lock();
        let target = c.epoch_start(c.height) + n * c.g.epoch_length;
        let blocks = target.saturating_sub(c.height);
        c.produce(blocks);
    }

    /// Makes `block` by hash answer an internal error (`true`) or answer again (`false`):
    /// a node that fails while the adapter looks up a transaction's reference block.
    pub fn fail_block_by_hash(&self, fail: bool) {
        self.lock().block_by_hash_fails = fail;
    }

    /// `account`'s balance, yoctoNEAR.
    pub fn balance(&self, account: &str) -> u128 {
        let c = self.lock();
        account
            .parse::<AccountId>()
            .ok()
            .and_then(|a| c.accounts.get(&a).map(|x| x.amount))
            .unwrap_or(0)
    }

    /// `account`'s (staked, unstaked) at `pool`, yoctoNEAR.
    pub fn pool_balances(&self, pool: &str, account: &str) -> (u128, u128) {
        let c = self.lock();
        let (Ok(p), Ok(a)) = (pool.parse::<AccountId>(), account.parse::<AccountId>()) else {
            return (0, 0);
        };
        c.pools
            .get(&p)
            .map(|pool| {
                let x = pool.accounts.get(&a).cloned().unwrap_or_default();
                (pool.staked_down(x.shares), x.unstaked)
            })
            .unwrap_or((0, 0))
    }

    /// The current block height.
    pub fn height(&self) -> u64 {
        self.lock().height
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn ok(id: &Value, result: Value) -> Json<Value> {
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

fn err(id: &Value, e: RpcError) -> Json<Value> {
    Json(json!({"jsonrpc": "2.0", "id": id, "error": e}))
}

fn bad_request(id: &Value, msg: impl Into<String>) -> Json<Value> {
    err(id, RpcError::parse_error(msg.into()))
}

async fn rpc(State(chain): State<Shared>, Json(req): Json<Value>) -> Json<Value> {
    let id = req["id"].clone();
    let params = req["params"].clone();
    let mut c = chain.lock().unwrap_or_else(|p| p.into_inner());
    match req["method"].as_str().unwrap_or("") {
        "block" => block(&c, &id, &params),
        "query" => query(&c, &id, &params),
        "send_tx" | "broadcast_tx_commit" | "broadcast_tx_async" => send_tx(&mut c, &id, &params),
        "tx" | "EXPERIMENTAL_tx_status" => tx_status(&c, &id, &params),
        "validators" => validators(&c, &id),
        "EXPERIMENTAL_genesis_config" => ok(
            &id,
            json!({
                "chain_id": "localnet",
                "genesis_height": 0,
                "epoch_length": c.g.epoch_length,
                "transaction_validity_period": c.g.transaction_validity_period,
                "protocol_version": 73,
            }),
        ),
        "sandbox_fast_forward" => {
            let n = params["delta_height"].as_u64().unwrap_or(0);
            c.produce(n);
            ok(&id, json!({}))
        }
        other => err(&id, RpcError::method_not_found(other.to_string())),
    }
}

fn block(c: &Chain, id: &Value, params: &Value) -> Json<Value> {
    if c.block_by_hash_fails && params["block_id"].is_string() {
        return err(
            id,
            RpcError::from(near_jsonrpc_primitives::types::blocks::RpcBlockError::InternalError {
                error_message: "node overloaded".into(),
            }),
        );
    }
    let height = match &params["block_id"] {
        Value::Number(n) => n.as_u64(),
        Value::String(h) => h.parse::<CryptoHash>().ok().and_then(|h| c.by_hash.get(&h).copied()),
        _ => Some(c.height),
    };
    match height.filter(|h| *h <= c.height) {
        Some(h) => ok(id, serde_json::to_value(c.block_view(h)).unwrap_or(Value::Null)),
        None => err(
            id,
            RpcError::from(near_jsonrpc_primitives::types::blocks::RpcBlockError::UnknownBlock {
                error_message: "DB Not Found Error".into(),
            }),
        ),
    }
}

fn query(c: &Chain, id: &Value, p: &Value) -> Json<Value> {
    let (hash, height) = (c.head().0, c.height);
    let account = p["account_id"].as_str().and_then(|a| a.parse::<AccountId>().ok());
    let Some(account) = account else {
        return bad_request(id, "account_id is missing or invalid");
    };
    let mut result = match p["request_type"].as_str().unwrap_or("") {
        "call_function" => {
            use base64::Engine;
            let args = base64::engine::general_purpose::STANDARD
                .decode(p["args_base64"].as_str().unwrap_or(""))
                .unwrap_or_default();
            match c.view(&account, p["method_name"].as_str().unwrap_or(""), &args) {
                Ok(v) => serde_json::to_value(CallResult {
                    result: v.to_string().into_bytes(),
                    logs: vec![],
                })
                .unwrap_or(Value::Null),
                // nearcore answers a failed view with a result holding `error`
                Err(msg) => json!({"error": msg, "logs": []}),
            }
        }
        "view_access_key" => {
            let pk = p["public_key"].as_str().and_then(|k| k.parse::<PublicKey>().ok());
            match pk.and_then(|pk| c.accounts.get(&account).and_then(|a| a.keys.get(&pk).map(|n| (pk, *n)))) {
                Some((_, nonce)) => serde_json::to_value(AccessKeyView {
                    nonce,
                    permission: AccessKeyPermissionView::FullAccess,
                })
                .unwrap_or(Value::Null),
                None => json!({
                    "error": format!("access key {} does not exist while viewing", p["public_key"].as_str().unwrap_or("")),
                    "logs": []
                }),
            }
        }
        "view_account" => match c.accounts.get(&account) {
            Some(a) => json!({
                "amount": a.amount.to_string(),
                "locked": "0",
                "code_hash": "11111111111111111111111111111111",
                "storage_usage": 182,
                "storage_paid_at": 0,
            }),
            None => {
                return err(
                    id,
                    RpcError::from(near_jsonrpc_primitives::types::query::RpcQueryError::UnknownAccount {
                        requested_account_id: account,
                        block_height: height,
                        block_hash: hash,
                    }),
                )
            }
        },
        other => return bad_request(id, format!("request_type {other:?} is not served here")),
    };
    if let Value::Object(m) = &mut result {
        m.insert("block_height".into(), json!(height));
        m.insert("block_hash".into(), json!(hash));
    }
    ok(id, result)
}

fn decode_tx(p: &Value) -> Option<SignedTransaction> {
    use base64::Engine;
    let b64 = p["signed_tx_base64"].as_str().or_else(|| p[0].as_str())?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    borsh::from_slice(&bytes).ok()
}

fn send_tx(c: &mut Chain, id: &Value, p: &Value) -> Json<Value> {
    let Some(tx) = decode_tx(p) else {
        return bad_request(id, "signed_tx_base64 is not a borsh SignedTransaction");
    };
    let h = tx.get_hash();
    if let Some(r) = c.txs.get(&h) {
        // the same transaction again: a node answers with what it knows
        let outcome = c.outcome(r);
        return ok(id, tx_response(c, r, outcome));
    }
    if let Err(context) = c.validate(&tx) {
        return err(id, RpcError::from(RpcTransactionError::InvalidTransaction { context }));
    }
    c.execute(tx);
    ok(id, json!({"final_execution_status": "NONE"}))
}

fn tx_response(c: &Chain, r: &TxRecord, outcome: FinalExecutionOutcomeView) -> Value {
    let status = if c.height >= r.height + FINALITY_BLOCKS {
        "FINAL"
    } else {
        "EXECUTED_OPTIMISTIC"
    };
    let mut v = serde_json::to_value(outcome).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("final_execution_status".into(), json!(status));
    }
    v
}

fn tx_status(c: &Chain, id: &Value, p: &Value) -> Json<Value> {
    let h = p["tx_hash"]
        .as_str()
        .or_else(|| p[0].as_str())
        .and_then(|h| h.parse::<CryptoHash>().ok());
    let Some(h) = h else {
        return bad_request(id, "tx_hash is missing or invalid");
    };
    match c.txs.get(&h) {
        Some(r) => ok(id, tx_response(c, r, c.outcome(r))),
        None => err(
            id,
            RpcError::from(RpcTransactionError::UnknownTransaction {
                requested_transaction_hash: h,
            }),
        ),
    }
}

/// A current validator that produced every block and chunk it was expected to.
fn validator_info(account_id: AccountId, public_key: PublicKey, stake: u128) -> CurrentEpochValidatorInfo {
    CurrentEpochValidatorInfo {
        account_id,
        public_key,
        is_slashed: false,
        stake: Balance::from_yoctonear(stake),
        shards_produced: vec![],
        num_produced_blocks: 100,
        num_expected_blocks: 100,
        num_produced_chunks: 100,
        num_expected_chunks: 100,
        num_produced_chunks_per_shard: vec![],
        num_expected_chunks_per_shard: vec![],
        num_produced_endorsements: 0,
        num_expected_endorsements: 0,
        num_produced_endorsements_per_shard: vec![],
        num_expected_endorsements_per_shard: vec![],
        shards_endorsed: vec![],
    }
}

fn validators(c: &Chain, id: &Value) -> Json<Value> {
    let current: Vec<CurrentEpochValidatorInfo> = c
        .pools
        .iter()
        .map(|(pid, p)| validator_info(pid.clone(), p.public_key.clone(), p.total_staked))
        .chain(c.g.solo_validators.iter().filter_map(|(id, stake)| {
            let key = SecretKey::from_seed(near_crypto::KeyType::ED25519, id).public_key();
            Some(validator_info(id.parse().ok()?, key, *stake))
        }))
        .collect();
    let info = EpochValidatorInfo {
        current_validators: current,
        next_validators: vec![],
        current_fishermen: vec![],
        next_fishermen: vec![],
        current_proposals: vec![],
        prev_epoch_kickout: vec![],
        epoch_start_height: c.epoch_start(c.height),
        epoch_height: c.epoch_height(c.height),
        validator_reward_paid_prev_epoch: HashMap::new(),
    };
    ok(id, serde_json::to_value(info).unwrap_or(Value::Null))
}

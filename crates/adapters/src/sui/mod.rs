//! Sui staking through the system package's staking calls, in programmable transactions
//! built with `sui-transaction-builder` and sent over gRPC (`sui.rpc.v2`, `sui-rpc`):
//! Sui 1.82 removed JSON-RPC from full nodes.
//!
//! ```text
//!  delegate    MergeCoins(gas, other coins) · SplitCoins(gas, amount) ·
//!              0x3::sui_system::request_add_stake(0x5, coin, validator) → a StakedSui
//!              object, earning from the next epoch (stake_activation_epoch)
//!  undelegate  none: Sui has no unbonding (instant exit: the withdrawal replaces it)
//!  withdraw    per StakedSui of the validator (not yet active ones first):
//!              request_withdraw_stake(0x5, staked) for whole objects, and
//!              0x3::staking_pool::split(staked, rest) first for a part; principal and
//!              reward come back in the same transaction
//!  claim       none: rewards compound in the pool's exchange rate and are paid with the
//!              principal
//!  rewards     the reward_amount of each UnstakingRequestEvent of our withdrawals (the
//!              journal names them: ChainAdapter::exits_from_journal), keyed by checkpoint
//!  positions   the treasury's StakedSui objects (ListOwnedObjects), principal each:
//!              activating before stake_activation_epoch, active after; a pool outside
//!              the active set is named by validator_address_by_pool_id
//!  signing     BCS TransactionData, Blake2b-256 over intent [0,0,0] ‖ BCS, Ed25519
//!              (flag 0x00 ‖ signature ‖ public key); replay protection is the gas coin's
//!              version and digest; expiration Epoch(current): valid to the epoch's end
//!  gas         price = the epoch's reference gas price; budget from SimulateTransaction
//!              (computation + 1 000 × price overhead, plus storage), which also
//!              refuses a transaction that would abort before anything is signed
//!  status      GetTransaction: in a checkpoint → confirmed or failed by its effects;
//!              unknown → expired once its epoch ended or its gas coin moved on (it can
//!              never run), else not found
//! ```
//!
//! Amounts are MIST (1 SUI = 10^9 MIST). Operations of one treasury run one at a time
//! (each spends the treasury's coins at the versions it read).
//!
//! Sources: sui-framework `sui_system.move` (request_add_stake, request_withdraw_stake),
//! `staking_pool.move` (MIN_STAKING_THRESHOLD, split, StakedSui), `validator.move`
//! (UnstakingRequestEvent); docs.sui.io "Transaction Authentication", "Gas in Sui",
//! "Sui Staking"; the gas budget formula of Mysten's TypeScript SDK
//! (`@mysten/sui` TransactionBuilder: GAS_SAFE_OVERHEAD = 1 000).

pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sui_rpc::field::{FieldMask, FieldMaskUtil};
use sui_rpc::proto::sui::rpc::v2 as pb;
use sui_sdk_types::{Address, Transaction, TransactionExpiration};
use tokio::sync::OnceCell;

use softstake_core::{Amount, Timestamp};

use crate::ed25519::Ed25519Key;
use crate::error::{AdapterError, Result};
use crate::move_staking::{self, Unstaked};
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardsPage, SignedTx, StakeState, TxStatus, ValidatorCandidate,
};

use self::wire::{StakedSui, CHAIN};

/// Smallest stake, and smallest part of a split stake, MIST: 1 SUI
/// (`staking_pool::MIN_STAKING_THRESHOLD`; not a system parameter, a Move constant).
pub const MIN_STAKING_THRESHOLD_MIST: u64 = move_staking::MIN_STAKING_THRESHOLD;
/// Kept in the treasury's coins for gas when delegating, MIST (0.1 SUI; a staking
/// transaction costs about 0.002–0.01 SUI at a reference gas price of 500–1 000).
pub const GAS_RESERVE_MIST: u64 = 100_000_000;
/// Most coins merged into the gas coin by one delegation.
const MAX_MERGED_COINS: usize = 200;
/// Most objects read from one listing (pages of 500 asked).
const MAX_OBJECTS: usize = 10_000;
/// Most pages read for one listing.
const MAX_PAGES: usize = 1_000;
/// Deadline of each RPC.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the Sui adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiConfig {
    /// gRPC endpoint of a full node (`https://fullnode.testnet.sui.io:443`, a local chain).
    pub rpc_url: String,
    /// The chain id the node must report (the base58 digest of the network's genesis
    /// checkpoint), checked by `doctor`; `None` to take the node's.
    pub chain_id: Option<String>,
    /// Largest number of operations sent per epoch.
    pub max_operations_per_epoch: u32,
}

/// The Sui adapter.
pub struct SuiAdapter {
    cfg: SuiConfig,
    key: Ed25519Key,
    address: Address,
    client: OnceCell<sui_rpc::Client>,
    /// Confirmed withdrawals the journal holds, by digest (given by `journal_exits`).
    withdrawals: Mutex<Vec<String>>,
    /// What each withdrawal paid, read once: (checkpoint, time, (validator, reward MIST)*).
    unstaked: Mutex<HashMap<String, Unstaked>>,
    /// Staking pool id → validator address: the active set's, and departed validators'
    /// as `validator_address_by_pool_id` names them.
    pools: Mutex<BTreeMap<Address, Address>>,
}

impl std::fmt::Debug for SuiAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SuiAdapter")
            .field("rpc_url", &self.cfg.rpc_url)
            .field("address", &self.address.to_string())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The 32-byte Ed25519 seed of a raw Sui key: 32 seed bytes, or 33 with Sui's scheme
/// flag 0x00 first (the bytes of a `suiprivkey1…` key); see [`move_staking::seed`].
///
/// # Errors
/// [`AdapterError::Signer`] for any other length or flag.
pub fn seed(key: &SecretBytes) -> Result<[u8; 32]> {
    move_staking::seed(CHAIN, key)
}

/// tonic statuses as the adapter's errors ([`move_staking::status_error`]; a refused
/// transaction is mapped by [`SuiAdapter::broadcast`]).
fn status_err(what: &str, s: &tonic::Status) -> AdapterError {
    move_staking::status_error(CHAIN, what, s)
}

/// Runs one RPC under [`RPC_TIMEOUT`].
async fn call<T>(
    what: &str,
    f: impl std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
) -> std::result::Result<T, tonic::Status> {
    match tokio::time::timeout(RPC_TIMEOUT, f).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded(format!(
            "{what}: no answer in {RPC_TIMEOUT:?}"
        ))),
    }
}

fn time_of(what: &str, t: Option<&prost_types::Timestamp>) -> Result<Timestamp> {
    let t = t.ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: no timestamp")))?;
    let ms = t
        .seconds
        .checked_mul(1_000)
        .and_then(|s| s.checked_add(i64::from(t.nanos / 1_000_000)))
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: timestamp {t:?} out of range")))?;
    Timestamp::from_unix_millis(ms).map_err(|e| AdapterError::bad_response(CHAIN, format!("{what}: {e}")))
}

/// The guarded value, also after a panic elsewhere (the maps hold caches, never half-written
/// money state).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn need<T>(what: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| AdapterError::bad_response(CHAIN, format!("the node's answer has no {what}")))
}

fn parse_validator(validator: &str) -> Result<Address> {
    Address::from_str(validator)
        .map_err(|e| AdapterError::bad_input(CHAIN, format!("validator {validator:?} is not a Sui address: {e}")))
}

/// The epoch's state the adapter reads: its clock, gas price and active validators.
#[derive(Debug, Clone)]
struct EpochState {
    index: u64,
    start: Timestamp,
    duration_ms: u64,
    reference_gas_price: u64,
    validators: Vec<pb::Validator>,
}

impl EpochState {
    /// When the epoch ends (its start plus its duration); `None` past the time range.
    fn end(&self) -> Option<Timestamp> {
        let ms = i64::try_from(self.duration_ms).unwrap_or(i64::MAX);
        Timestamp::from_unix_millis(self.start.unix_millis().saturating_add(ms)).ok()
    }
}

impl SuiAdapter {
    /// An adapter signing with `key`: a 32-byte seed (see [`seed`]) or an Ed25519 key pair
    /// in a PKCS#11 token. Connects on first use.
    ///
    /// # Errors
    /// [`AdapterError::Signer`] for a key that is not Ed25519; [`AdapterError::BadInput`]
    /// for an empty RPC URL.
    pub fn new(cfg: SuiConfig, key: impl Into<TreasuryKey>) -> Result<SuiAdapter> {
        if cfg.rpc_url.trim().is_empty() {
            return Err(AdapterError::bad_input(CHAIN, "rpc_url is empty"));
        }
        let key = Ed25519Key::from_treasury(CHAIN, key.into(), seed)?;
        let address = wire::address_of(&key.public_key());
        Ok(SuiAdapter {
            cfg,
            key,
            address,
            client: OnceCell::new(),
            withdrawals: Mutex::new(Vec::new()),
            unstaked: Mutex::new(HashMap::new()),
            pools: Mutex::new(BTreeMap::new()),
        })
    }

    /// The treasury's address (`0x` + 64 hex: Blake2b-256 of flag 0x00 ‖ public key).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    async fn client(&self) -> Result<sui_rpc::Client> {
        self.client
            .get_or_try_init(|| async {
                sui_rpc::Client::new(self.cfg.rpc_url.as_str())
                    .map_err(|e| AdapterError::bad_input(CHAIN, format!("rpc_url {:?}: {e}", self.cfg.rpc_url)))
            })
            .await
            .cloned()
    }

    async fn service_info(&self) -> Result<pb::GetServiceInfoResponse> {
        let mut c = self.client().await?;
        call(
            "GetServiceInfo",
            c.ledger_client().get_service_info(pb::GetServiceInfoRequest::default()),
        )
        .await
        .map_err(|s| status_err("GetServiceInfo", &s))
    }

    async fn epoch_state(&self) -> Result<EpochState> {
        let mut c = self.client().await?;
        let mut req = pb::GetEpochRequest::default();
        req.read_mask = Some(FieldMask::from_paths([
            "epoch",
            "start",
            "reference_gas_price",
            "system_state.parameters.epoch_duration_ms",
            "system_state.validators.active_validators",
        ]));
        let e = call("GetEpoch", c.ledger_client().get_epoch(req))
            .await
            .map_err(|s| status_err("GetEpoch", &s))?;
        let e = need("epoch", e.epoch)?;
        let state = need("system_state", e.system_state)?;
        let duration_ms = need(
            "epoch_duration_ms",
            state.parameters.as_ref().and_then(|p| p.epoch_duration_ms),
        )?;
        if duration_ms == 0 {
            return Err(AdapterError::bad_response(CHAIN, "epoch_duration_ms is 0"));
        }
        let validators = state.validators.map(|v| v.active_validators).unwrap_or_default();
        let mut pools = lock(&self.pools);
        for v in &validators {
            if let (Some(a), Some(p)) = (&v.address, v.staking_pool.as_ref().and_then(|p| p.id.as_ref())) {
                if let (Ok(a), Ok(p)) = (Address::from_str(a), Address::from_str(p)) {
                    pools.insert(p, a);
                }
            }
        }
        Ok(EpochState {
            index: need("epoch number", e.epoch)?,
            start: time_of("epoch start", e.start.as_ref())?,
            duration_ms,
            reference_gas_price: need("reference_gas_price", e.reference_gas_price)?,
            validators,
        })
    }

    /// Objects `self` owns of `object_type`, every page (at most [`MAX_OBJECTS`] objects in
    /// [`MAX_PAGES`] pages; a longer listing is refused rather than read in part).
    async fn owned(&self, object_type: &str) -> Result<Vec<pb::Object>> {
        let mut c = self.client().await?;
        let mut req = pb::ListOwnedObjectsRequest::default();
        req.owner = Some(self.address.to_string());
        req.object_type = Some(object_type.to_string());
        req.page_size = Some(500);
        req.read_mask = Some(FieldMask::from_paths([
            "object_id",
            "version",
            "digest",
            "balance",
            "contents",
        ]));
        let mut out = Vec::new();
        // a server may return smaller pages than asked: bound the pages, not only the objects
        for _ in 0..MAX_PAGES {
            let page = call("ListOwnedObjects", c.state_client().list_owned_objects(req.clone()))
                .await
                .map_err(|s| status_err("ListOwnedObjects", &s))?;
            out.extend(page.objects);
            match page.next_page_token {
                Some(t) if out.len() < MAX_OBJECTS => req.page_token = Some(t),
                Some(_) => {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!("more than {MAX_OBJECTS} objects of {object_type}: merge them first"),
                    ))
                }
                None => return Ok(out),
            }
        }
        Err(AdapterError::bad_response(
            CHAIN,
            format!("objects of {object_type} still paging after {MAX_PAGES} pages: refusing a partial list"),
        ))
    }

    async fn coins(&self) -> Result<Vec<wire::CoinRef>> {
        let mut coins = self
            .owned(wire::GAS_COIN_TYPE)
            .await?
            .iter()
            .map(wire::coin_ref)
            .collect::<Result<Vec<_>>>()?;
        coins.sort_by(|a, b| b.balance.cmp(&a.balance).then(a.id.cmp(&b.id)));
        Ok(coins)
    }

    /// What the treasury's SUI coins hold together, MIST.
    async fn coin_total(&self) -> Result<u128> {
        Ok(self.coins().await?.iter().map(|c| u128::from(c.balance)).sum())
    }

    async fn staked(&self) -> Result<Vec<StakedSui>> {
        self.owned(wire::STAKED_SUI_TYPE)
            .await?
            .iter()
            .map(wire::staked_sui)
            .collect()
    }

    fn validator_of_pool(&self, pool: &Address) -> Option<Address> {
        lock(&self.pools).get(pool).copied()
    }

    /// Learns the validators of `pools` not in the active set (a validator that left keeps
    /// its pool in `inactive_validators`) with sui-rpc's `get_validator_address_by_pool_id`
    /// (a simulated `0x3::sui_system::validator_address_by_pool_id` per pool).
    async fn resolve_pools(&self, pools: &[Address]) -> Result<()> {
        let mut unknown: Vec<Address> = pools
            .iter()
            .filter(|p| self.validator_of_pool(p).is_none())
            .copied()
            .collect();
        unknown.sort();
        unknown.dedup();
        if unknown.is_empty() {
            return Ok(());
        }
        let mut c = self.client().await?;
        let found = tokio::time::timeout(RPC_TIMEOUT, c.get_validator_address_by_pool_id(&unknown))
            .await
            .map_err(|_| {
                AdapterError::transient(
                    CHAIN,
                    format!("validator_address_by_pool_id: no answer in {RPC_TIMEOUT:?}"),
                )
            })?
            .map_err(|s| status_err("validator_address_by_pool_id", &s))?;
        let mut map = lock(&self.pools);
        for (pool, validator) in found {
            map.insert(pool, validator);
        }
        Ok(())
    }

    /// The gas coin (the largest) and up to [`MAX_MERGED_COINS`] others to merge into it.
    async fn gas_coins(&self) -> Result<(wire::CoinRef, Vec<wire::CoinRef>)> {
        let mut coins = self.coins().await?;
        if coins.is_empty() {
            return Err(AdapterError::InsufficientFunds {
                chain: CHAIN.into(),
                needed: u128::from(GAS_RESERVE_MIST),
                available: 0,
            });
        }
        let gas = coins.remove(0);
        coins.truncate(MAX_MERGED_COINS);
        Ok((gas, coins))
    }

    /// Simulates `plan` with a budget of everything the gas coin can pay, refusing a
    /// transaction that would fail; then builds it with the simulated budget and signs it.
    async fn finish(&self, plan: wire::Plan, epoch: &EpochState) -> Result<SignedTx> {
        let ceiling = plan.gas_ceiling();
        let draft = plan.build(self.address, epoch.reference_gas_price, ceiling, epoch.index)?;
        let mut c = self.client().await?;
        let mut req = pb::SimulateTransactionRequest::new(pb::Transaction::from(draft));
        req.read_mask = Some(FieldMask::from_paths([
            "transaction.effects.status",
            "transaction.effects.gas_used",
        ]));
        let sim = call("SimulateTransaction", c.execution_client().simulate_transaction(req))
            .await
            .map_err(|s| match s.code() {
                tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => {
                    AdapterError::rejected(CHAIN, format!("simulation refused the transaction: {}", s.message()))
                }
                _ => status_err("SimulateTransaction", &s),
            })?;
        let effects = need("effects", sim.transaction.and_then(|t| t.effects))?;
        if let Some(reason) = wire::failure(effects.status.as_ref()) {
            return Err(AdapterError::rejected(CHAIN, format!("simulation failed: {reason}")));
        }
        let budget = wire::budget(need("gas_used", effects.gas_used.as_ref())?, epoch.reference_gas_price)?;
        if budget > ceiling {
            return Err(AdapterError::InsufficientFunds {
                chain: CHAIN.into(),
                needed: u128::from(budget),
                available: u128::from(ceiling),
            });
        }
        let tx = plan.build(self.address, epoch.reference_gas_price, budget, epoch.index)?;
        self.sign(tx, epoch.end()).await
    }

    async fn sign(&self, tx: Transaction, valid_until: Option<Timestamp>) -> Result<SignedTx> {
        let sig = self.key.sign(&tx.signing_digest()).await?;
        Ok(SignedTx {
            tx_id: tx.digest().to_string(),
            payload: wire::encode_payload(&tx, &wire::user_signature(sig, self.key.public_key()))?,
            valid_until,
        })
    }

    async fn read_unstaked(&self, digest: &str) -> Result<Option<Unstaked>> {
        if let Some(u) = lock(&self.unstaked).get(digest) {
            return Ok(Some(u.clone()));
        }
        let Some(t) = self
            .transaction(digest, &["checkpoint", "timestamp", "effects.status", "events"])
            .await?
        else {
            return Ok(None);
        };
        let Some(checkpoint) = t.checkpoint else {
            return Ok(None);
        };
        if wire::failure(t.effects.as_ref().and_then(|e| e.status.as_ref())).is_some() {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("withdrawal {digest} failed on chain, yet the journal holds it as confirmed"),
            ));
        }
        let u = Unstaked {
            checkpoint,
            at: time_of("transaction time", t.timestamp.as_ref())?,
            rewards: wire::unstaking_rewards(t.events.as_ref(), &self.address)?
                .into_iter()
                .map(|(v, r)| (v.to_string(), r))
                .collect(),
        };
        lock(&self.unstaked).insert(digest.to_string(), u.clone());
        Ok(Some(u))
    }

    async fn transaction(&self, digest: &str, mask: &[&str]) -> Result<Option<pb::ExecutedTransaction>> {
        let mut c = self.client().await?;
        let mut req = pb::GetTransactionRequest::default();
        req.digest = Some(digest.to_string());
        req.read_mask = Some(FieldMask::from_paths(mask.iter().copied()));
        match call("GetTransaction", c.ledger_client().get_transaction(req)).await {
            Ok(r) => Ok(r.transaction),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(status_err("GetTransaction", &s)),
        }
    }

    /// Whether the gas coin `tx` pays with is still at the version it names.
    async fn gas_coin_current(&self, tx: &Transaction) -> Result<bool> {
        let Some(gas) = tx.gas_payment.objects.first() else {
            return Ok(false);
        };
        let mut c = self.client().await?;
        let mut req = pb::GetObjectRequest::default();
        req.object_id = Some(gas.object_id().to_string());
        req.read_mask = Some(FieldMask::from_paths(["version"]));
        match call("GetObject", c.ledger_client().get_object(req)).await {
            Ok(r) => Ok(r.object.and_then(|o| o.version) == Some(gas.version())),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
            Err(s) => Err(status_err("GetObject", &s)),
        }
    }
}

#[async_trait]
impl ChainAdapter for SuiAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "SUI"
    }

    fn exits_from_journal(&self) -> bool {
        true
    }

    fn journal_exits(&self, _undelegations: &[(String, String)], withdrawals: &[SignedTx]) {
        *lock(&self.withdrawals) = withdrawals.iter().map(|w| w.tx_id.clone()).collect();
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let e = self.epoch_state().await?;
        Ok(move_staking::liquidity_model(
            e.duration_ms / 1_000,
            self.cfg.max_operations_per_epoch,
        ))
    }

    async fn epoch(&self) -> Result<EpochInfo> {
        let e = self.epoch_state().await?;
        Ok(EpochInfo {
            index: e.index,
            start: e.start,
            secs: e.duration_ms / 1_000,
        })
    }

    async fn now(&self) -> Result<Timestamp> {
        let info = self.service_info().await?;
        time_of("GetServiceInfo", info.timestamp.as_ref())
    }

    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let e = self.epoch_state().await?;
        wire::candidates(&e.validators, e.index)
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let e = self.epoch_state().await?;
        let end = e.end();
        let staked = self.staked().await?;
        self.resolve_pools(&staked.iter().map(|s| s.pool_id).collect::<Vec<_>>())
            .await?;
        let mut out = Vec::new();
        for s in staked {
            let validator = self
                .validator_of_pool(&s.pool_id)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("pool {} has no validator", s.pool_id)))?
                .to_string();
            let activating = s.stake_activation_epoch > e.index;
            out.push(Position {
                validator,
                state: if activating {
                    StakeState::Activating
                } else {
                    StakeState::Active
                },
                amount: Amount(u128::from(s.principal)),
                eta: if activating { end } else { None },
                account: Some(s.id.to_string()),
            });
        }
        Ok(out)
    }

    async fn spendable(&self) -> Result<Amount> {
        let total = self.coin_total().await?;
        Ok(Amount(total.saturating_sub(u128::from(GAS_RESERVE_MIST))))
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        Ok(Vec::new())
    }

    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let validator = parse_validator(validator)?;
        let amount = u64::try_from(amount.0)
            .map_err(|_| AdapterError::bad_input(CHAIN, format!("{amount} MIST does not fit a Sui coin (u64)")))?;
        if amount < MIN_STAKING_THRESHOLD_MIST {
            return Err(AdapterError::rejected(
                CHAIN,
                format!(
                    "validator_set::EStakingBelowThreshold: {amount} MIST is below the minimum stake of {MIN_STAKING_THRESHOLD_MIST} MIST"
                ),
            ));
        }
        let epoch = self.epoch_state().await?;
        let (gas, merge) = self.gas_coins().await?;
        let available: u128 = std::iter::once(&gas).chain(&merge).map(|c| u128::from(c.balance)).sum();
        if u128::from(amount) + u128::from(GAS_RESERVE_MIST) > available {
            return Err(AdapterError::InsufficientFunds {
                chain: CHAIN.into(),
                needed: u128::from(amount) + u128::from(GAS_RESERVE_MIST),
                available,
            });
        }
        self.finish(
            wire::Plan::Stake {
                gas,
                merge,
                amount,
                validator,
            },
            &epoch,
        )
        .await
    }

    async fn undelegate(&self, _key: &str, validator: &str, _amount: Amount) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            format!("{validator}: Sui has no unbonding; stake leaves by withdrawal (request_withdraw_stake) at once"),
        ))
    }

    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let v = parse_validator(validator)?;
        let amount = u64::try_from(amount.0)
            .map_err(|_| AdapterError::bad_input(CHAIN, format!("{amount} MIST does not fit a Sui coin (u64)")))?;
        let epoch = self.epoch_state().await?;
        let staked = self.staked().await?;
        self.resolve_pools(&staked.iter().map(|s| s.pool_id).collect::<Vec<_>>())
            .await?;
        let mine: Vec<StakedSui> = staked
            .into_iter()
            .filter(|s| self.validator_of_pool(&s.pool_id) == Some(v))
            .collect();
        let held: u128 = mine.iter().map(|s| u128::from(s.principal)).sum();
        if u128::from(amount) > held {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{validator}: {amount} MIST to withdraw, {held} MIST staked with it"),
            ));
        }
        let stakes = move_staking::choose(CHAIN, mine, epoch.index, amount)?;
        let (gas, merge) = self.gas_coins().await?;
        self.finish(wire::Plan::Unstake { gas, merge, stakes }, &epoch).await
    }

    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            format!("{validator}: Sui has nothing to claim; rewards are paid with the principal at withdrawal"),
        ))
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let (t, sig) = wire::decode_payload(&tx.payload)?;
        let mut req = pb::ExecuteTransactionRequest::new(pb::Transaction::from(t));
        req.signatures = vec![pb::UserSignature::from(sig)];
        req.read_mask = Some(FieldMask::from_paths(["digest", "effects.status"]));
        let mut c = self.client().await?;
        match call("ExecuteTransaction", c.execution_client().execute_transaction(req)).await {
            Ok(_) => Ok(()),
            Err(s) if matches!(s.code(), tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition) => {
                Err(AdapterError::rejected(CHAIN, s.message().to_string()))
            }
            Err(s) => Err(status_err("ExecuteTransaction", &s)),
        }
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        if let Some(t) = self
            .transaction(&tx.tx_id, &["checkpoint", "timestamp", "effects.status"])
            .await?
        {
            if t.checkpoint.is_none() {
                return Ok(TxStatus::Pending);
            }
            if let Some(reason) = wire::failure(t.effects.as_ref().and_then(|e| e.status.as_ref())) {
                return Ok(TxStatus::Failed { reason });
            }
            return Ok(TxStatus::Confirmed {
                at: time_of("transaction time", t.timestamp.as_ref())?,
            });
        }
        let (t, _) = wire::decode_payload(&tx.payload)?;
        // the epoch number alone: GetServiceInfo, not GetEpoch with the validator set
        let current = need("epoch", self.service_info().await?.epoch)?;
        let past_epoch = matches!(t.expiration, TransactionExpiration::Epoch(e) if e < current);
        if past_epoch || !self.gas_coin_current(&t).await? {
            return Ok(TxStatus::Expired);
        }
        Ok(TxStatus::NotFound)
    }

    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let after = move_staking::cursor_checkpoint(CHAIN, cursor)?;
        let digests = lock(&self.withdrawals).clone();
        let mut read = Vec::with_capacity(digests.len());
        for d in digests {
            read.extend(self.read_unstaked(&d).await?);
        }
        move_staking::rewards_page(CHAIN, after, &read)
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let info = self.service_info().await?;
        let id = info.chain_id.clone().unwrap_or_default();
        let mut checks = vec![match &self.cfg.chain_id {
            Some(want) if *want != id => Check::fail(
                "chain id",
                format!("the node reports chain id {id:?}, the config wants {want:?}"),
                "point rpc_url at a node of the configured network, or fix chain_id",
            ),
            Some(_) => Check::pass("chain id", format!("{id} ({})", info.chain.unwrap_or_default())),
            None => Check::warn(
                "chain id",
                format!("{id} ({}), not pinned", info.chain.unwrap_or_default()),
                "set chain_id so a node of another network is refused",
            ),
        }];
        let epoch = self.epoch_state().await?;
        checks.push(Check::pass(
            "epoch",
            format!(
                "epoch {}, {} s long, reference gas price {} MIST, {} active validators",
                epoch.index,
                epoch.duration_ms / 1_000,
                epoch.reference_gas_price,
                epoch.validators.len()
            ),
        ));
        let balance = self.coin_total().await?;
        Ok(Preflight {
            signer: Some(self.address()),
            fee_token: None,
            signer_balance: Some(Amount(balance)),
            fee_per_operation: Some(Amount(u128::from(GAS_RESERVE_MIST))),
            checks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sui_sdk_types::Digest;

    const SUI: u64 = 1_000_000_000;

    fn staked(n: u8, activation: u64, principal: u64) -> StakedSui {
        StakedSui {
            id: Address::new([n; 32]),
            version: 1,
            digest: Digest::new([n; 32]),
            pool_id: Address::new([9; 32]),
            stake_activation_epoch: activation,
            principal,
        }
    }

    #[test]
    fn success_staked_sui_is_weighed_by_its_own_fields() {
        // epoch 5: the stake activating at 6 has earned nothing: it goes first
        let stakes = vec![staked(1, 1, 30 * SUI), staked(2, 6, 5 * SUI)];
        let chosen = move_staking::choose(CHAIN, stakes, 5, 12 * SUI).unwrap();
        let picked: Vec<(u8, Option<u64>)> = chosen.iter().map(|(s, p)| (s.id.inner()[0], *p)).collect();
        assert_eq!(picked, vec![(2, None), (1, Some(7 * SUI))]);
    }

    #[test]
    fn fail_keys_name_the_chain() {
        assert!(seed(&SecretBytes::new(vec![1; 32])).is_ok());
        let e = seed(&SecretBytes::new(vec![1; 64])).unwrap_err().to_string();
        assert!(e.contains("sui: ") && e.contains("not 64"), "{e}");
    }
}

//! IOTA staking (the Move-based mainnet, "IOTA Rebased") through the system package's
//! staking calls, in programmable transactions sent over gRPC (`iota.grpc.v1`), with the
//! validator set read over GraphQL, through the IOTA Foundation's `iota-sdk` (pinned
//! `=3.0.0-rc.1`, a pre-release). IOTA is retiring JSON-RPC; its gRPC API has no query of
//! the system state's validators, so those come from GraphQL.
//!
//! ```text
//!  delegate    MergeCoins(gas, other coins) · SplitCoins(gas, amount) ·
//!              0x3::iota_system::request_add_stake(0x5, coin, validator) → a StakedIota,
//!              earning from the next epoch (stake_activation_epoch)
//!  undelegate  none: no unbonding (instant exit: the withdrawal replaces it)
//!  withdraw    per StakedIota of the validator (not yet active ones first):
//!              request_withdraw_stake(0x5, staked) for whole objects, and
//!              0x3::staking_pool::split(staked, part) first for a part; principal and
//!              reward come back in the same transaction
//!  claim       none: rewards compound in the pool's exchange rate, paid with the principal
//!  rewards     reward_amount of each UnstakingRequestEvent of our withdrawals (the journal
//!              names them: ChainAdapter::exits_from_journal), keyed by checkpoint
//!  positions   gRPC ListOwnedObjects(0x3::staking_pool::StakedIota), principal each
//!  validators  GraphQL epoch { systemParameters.durationMs, validatorSet.activeValidators }
//!  signing     BCS Transaction, Blake2b-256 over intent [0,0,0] ‖ BCS, Ed25519 (flag 0x00 ‖
//!              signature ‖ public key); replay protection is the gas coin's version;
//!              expiration Epoch(current)
//!  gas         price = reference gas price; budget from SimulateTransactions
//!              (move_staking::gas_budget), which also refuses an aborting transaction
//!              before anything is signed
//!  status      GetTransactions: in a checkpoint → confirmed or failed by its effects;
//!              unknown → expired once its epoch ended or its gas coin moved on
//! ```
//!
//! Amounts are nanos (1 IOTA = 10^9 nanos). Operations of one treasury run one at a time.
//! What IOTA shares with Sui (the staking rules, the withdrawal choice, the gas budget, the
//! reward sums) is in [`crate::move_staking`].
//!
//! Sources: iota-framework `iota_system.move`, `staking_pool.move` (MIN_STAKING_THRESHOLD,
//! split, StakedIota), `validator.move` (UnstakingRequestEvent); docs.iota.org "Staking and
//! Unstaking", "Transaction Authentication"; the protos of `iota-sdk-grpc-types`; the
//! GraphQL schema of `iota-sdk-graphql-client-build`.

pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use iota_sdk::graphql_client::{GraphQLClient, GraphQLError};
use iota_sdk::grpc_client::{GrpcClient, GrpcError};
use iota_sdk::grpc_types::read_mask_fields::TransactionField;
use iota_sdk::types::{
    Address, ObjectId, SignedTransaction, StructTag, Transaction, TransactionDigest, TransactionEffects,
    TransactionExpiration,
};
use tokio::sync::OnceCell;

use softstake_core::{Amount, Timestamp};

use crate::ed25519::Ed25519Key;
use crate::error::{AdapterError, Result};
use crate::move_staking::{self, Unstaked};
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardsPage, SignedTx, StakeState, TxStatus, ValidatorCandidate,
};

use self::wire::{StakedIota, CHAIN};

/// Kept in the treasury's coins for gas when delegating, nanos (0.1 IOTA; a staking
/// transaction costs about 0.002–0.01 IOTA at a reference gas price of 1 000).
pub const GAS_RESERVE_NANOS: u64 = 100_000_000;
/// Most coins merged into the gas coin by one delegation.
const MAX_MERGED_COINS: usize = 200;
/// Most objects read from one listing.
const MAX_OBJECTS: u32 = 10_000;
/// Most GraphQL pages of validators read.
const MAX_VALIDATOR_PAGES: usize = 100;
/// Deadline of each RPC.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings of the IOTA adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IotaConfig {
    /// gRPC endpoint of a full node (`https://api.testnet.iota.cafe`, a local chain).
    pub rpc_url: String,
    /// GraphQL endpoint (`https://graphql.testnet.iota.cafe`, a local chain's `/graphql`).
    pub graphql_url: String,
    /// The chain id the node must report (the base58 digest of the genesis checkpoint),
    /// checked by `doctor`; `None` to take the node's.
    pub chain_id: Option<String>,
    /// Largest number of operations sent per epoch.
    pub max_operations_per_epoch: u32,
}

/// The IOTA adapter.
pub struct IotaAdapter {
    cfg: IotaConfig,
    key: Ed25519Key,
    address: Address,
    grpc: OnceCell<GrpcClient>,
    graphql: OnceCell<GraphQLClient>,
    /// Confirmed withdrawals the journal holds, by digest (given by `journal_exits`).
    withdrawals: Mutex<Vec<String>>,
    /// What each withdrawal paid, read once.
    unstaked: Mutex<HashMap<String, Unstaked>>,
    /// Staking pool id → validator address, from the active set.
    pools: Mutex<BTreeMap<ObjectId, Address>>,
}

impl std::fmt::Debug for IotaAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IotaAdapter")
            .field("rpc_url", &self.cfg.rpc_url)
            .field("graphql_url", &self.cfg.graphql_url)
            .field("address", &self.address.to_string())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The 32-byte Ed25519 seed of a raw IOTA key: 32 seed bytes, or 33 with the scheme flag
/// 0x00 first (the bytes of an `iotaprivkey1…` key); see [`move_staking::seed`].
///
/// # Errors
/// [`AdapterError::Signer`] for any other length or flag.
pub fn seed(key: &SecretBytes) -> Result<[u8; 32]> {
    move_staking::seed(CHAIN, key)
}

/// gRPC errors as the adapter's ([`move_staking::status_error`]).
fn grpc_err(what: &str, e: GrpcError) -> AdapterError {
    move_staking::status_error(CHAIN, what, &tonic::Status::from(e))
}

/// GraphQL errors: a failed request or HTTP status is transient; a query error or an answer
/// that does not decode is a bad response.
fn graphql_err(e: GraphQLError) -> AdapterError {
    match e {
        GraphQLError::Request(_) | GraphQLError::Http { .. } => AdapterError::transient(CHAIN, format!("GraphQL: {e}")),
        other => AdapterError::bad_response(CHAIN, format!("GraphQL: {other}")),
    }
}

/// Runs one RPC under [`RPC_TIMEOUT`].
async fn timed<T, E>(
    what: &str,
    f: impl std::future::IntoFuture<Output = std::result::Result<T, E>>,
) -> Result<std::result::Result<T, E>> {
    tokio::time::timeout(RPC_TIMEOUT, f.into_future())
        .await
        .map_err(|_| AdapterError::transient(CHAIN, format!("{what}: no answer in {RPC_TIMEOUT:?}")))
}

fn time_of_ms(what: &str, ms: u64) -> Result<Timestamp> {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_unix_millis(ms).ok())
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: timestamp {ms} ms out of range")))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn parse_validator(validator: &str) -> Result<Address> {
    validator
        .parse()
        .map_err(|e| AdapterError::bad_input(CHAIN, format!("validator {validator:?} is not an IOTA address: {e}")))
}

fn to_u64(amount: Amount) -> Result<u64> {
    u64::try_from(amount.0)
        .map_err(|_| AdapterError::bad_input(CHAIN, format!("{amount} nanos does not fit an IOTA coin (u64)")))
}

/// The epoch's state: its clock, gas price and active validators.
#[derive(Debug, Clone)]
struct EpochState {
    index: u64,
    start: Timestamp,
    duration_ms: u64,
    reference_gas_price: u64,
    validators: Vec<wire::ActiveValidator>,
}

impl EpochState {
    fn end(&self) -> Option<Timestamp> {
        let ms = i64::try_from(self.duration_ms).unwrap_or(i64::MAX);
        Timestamp::from_unix_millis(self.start.unix_millis().saturating_add(ms)).ok()
    }
}

/// What a node's service info says.
struct ServiceInfo {
    chain_id: String,
    chain: String,
    epoch: u64,
    at: Timestamp,
}

impl IotaAdapter {
    /// An adapter signing with `key`: a 32-byte seed (see [`seed`]) or an Ed25519 key pair
    /// in a PKCS#11 token. Connects on first use.
    ///
    /// # Errors
    /// [`AdapterError::Signer`] for a key that is not Ed25519; [`AdapterError::BadInput`]
    /// for an empty RPC or GraphQL URL.
    pub fn new(cfg: IotaConfig, key: impl Into<TreasuryKey>) -> Result<IotaAdapter> {
        if cfg.rpc_url.trim().is_empty() {
            return Err(AdapterError::bad_input(CHAIN, "rpc_url is empty"));
        }
        if cfg.graphql_url.trim().is_empty() {
            return Err(AdapterError::bad_input(CHAIN, "graphql_url is empty"));
        }
        let key = Ed25519Key::from_treasury(CHAIN, key.into(), seed)?;
        let address = wire::address_of(&key.public_key());
        Ok(IotaAdapter {
            cfg,
            key,
            address,
            grpc: OnceCell::new(),
            graphql: OnceCell::new(),
            withdrawals: Mutex::new(Vec::new()),
            unstaked: Mutex::new(HashMap::new()),
            pools: Mutex::new(BTreeMap::new()),
        })
    }

    /// The treasury's address (`0x` + 64 hex: Blake2b-256 of the public key, no flag byte).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    async fn grpc(&self) -> Result<&GrpcClient> {
        self.grpc
            .get_or_try_init(|| async {
                GrpcClient::new(self.cfg.rpc_url.as_str())
                    .map_err(|e| AdapterError::bad_input(CHAIN, format!("rpc_url {:?}: {e}", self.cfg.rpc_url)))
            })
            .await
    }

    async fn graphql(&self) -> Result<&GraphQLClient> {
        self.graphql
            .get_or_try_init(|| async {
                GraphQLClient::builder(&self.cfg.graphql_url)
                    .timeout(RPC_TIMEOUT)
                    .build()
                    .map_err(|e| AdapterError::bad_input(CHAIN, format!("graphql_url {:?}: {e}", self.cfg.graphql_url)))
            })
            .await
    }

    async fn service_info(&self) -> Result<ServiceInfo> {
        let c = self.grpc().await?;
        let info = timed("GetServiceInfo", c.service_info())
            .await?
            .map_err(|e| grpc_err("GetServiceInfo", e))?
            .into_inner();
        let need = |what: &str| AdapterError::bad_response(CHAIN, format!("GetServiceInfo without {what}"));
        let t = info
            .executed_checkpoint_timestamp
            .ok_or_else(|| need("executed_checkpoint_timestamp"))?;
        let ms = u64::try_from(t.seconds)
            .ok()
            .and_then(|s| s.checked_mul(1_000))
            .and_then(|s| s.checked_add(u64::try_from(t.nanos / 1_000_000).ok()?))
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("checkpoint timestamp {t:?} out of range")))?;
        let chain_id = info.chain_id.ok_or_else(|| need("chain_id"))?;
        let chain_id = iota_sdk::types::Digest::from_bytes(&chain_id.digest)
            .map_err(|e| AdapterError::bad_response(CHAIN, format!("chain_id: {e}")))?;
        Ok(ServiceInfo {
            chain_id: chain_id.to_string(),
            chain: info.chain.unwrap_or_default(),
            epoch: info.epoch.ok_or_else(|| need("epoch"))?,
            at: time_of_ms("GetServiceInfo", ms)?,
        })
    }

    /// The epoch and its active validators over GraphQL (every page, at most
    /// [`MAX_VALIDATOR_PAGES`]; pages of another epoch are refused).
    async fn epoch_state(&self) -> Result<EpochState> {
        let c = self.graphql().await?;
        let mut after: Option<String> = None;
        let mut state: Option<EpochState> = None;
        for _ in 0..MAX_VALIDATOR_PAGES {
            let mut q = serde_json::Map::new();
            q.insert("query".into(), wire::EPOCH_QUERY.into());
            q.insert("variables".into(), serde_json::json!({ "after": after }));
            let data = timed("GraphQL epoch", c.run_query_from_json(q))
                .await?
                .map_err(graphql_err)?;
            let page = wire::epoch_page(&data)?;
            let s = state.get_or_insert_with(|| EpochState {
                index: page.epoch,
                start: page.start,
                duration_ms: page.duration_ms,
                reference_gas_price: page.reference_gas_price,
                validators: Vec::new(),
            });
            if s.index != page.epoch {
                return Err(AdapterError::transient(
                    CHAIN,
                    format!(
                        "the epoch changed from {} to {} while reading validators",
                        s.index, page.epoch
                    ),
                ));
            }
            s.validators.extend(page.validators);
            match page.next {
                Some(n) => after = Some(n),
                None => {
                    let mut pools = lock(&self.pools);
                    for v in &s.validators {
                        pools.insert(v.pool_id, v.address);
                    }
                    return Ok(state.expect("set above"));
                }
            }
        }
        Err(AdapterError::bad_response(
            CHAIN,
            format!("active validators still paging after {MAX_VALIDATOR_PAGES} pages: refusing a partial set"),
        ))
    }

    /// Objects `self` owns of `object_type` (at most [`MAX_OBJECTS`]; more are refused
    /// rather than read in part).
    async fn owned(&self, object_type: StructTag) -> Result<Vec<iota_sdk::grpc_types::v1::object::Object>> {
        let c = self.grpc().await?;
        let what = format!("ListOwnedObjects {object_type}");
        let objects = timed(
            &what,
            c.owned_objects(self.address)
                .object_type(object_type.clone())
                .page_size(500)
                .collect(MAX_OBJECTS + 1),
        )
        .await?
        .map_err(|e| grpc_err(&what, e))?
        .into_inner();
        if objects.len() > MAX_OBJECTS as usize {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("more than {MAX_OBJECTS} objects of {object_type}: merge them first"),
            ));
        }
        Ok(objects)
    }

    async fn coins(&self) -> Result<Vec<wire::CoinRef>> {
        let mut coins = self
            .owned(StructTag::new_gas_coin())
            .await?
            .iter()
            .map(wire::coin_ref)
            .collect::<Result<Vec<_>>>()?;
        coins.sort_by(|a, b| b.balance.cmp(&a.balance).then(a.id.cmp(&b.id)));
        Ok(coins)
    }

    async fn coin_total(&self) -> Result<u128> {
        Ok(self.coins().await?.iter().map(|c| u128::from(c.balance)).sum())
    }

    async fn staked(&self) -> Result<Vec<StakedIota>> {
        self.owned(StructTag::new_staked_iota())
            .await?
            .iter()
            .map(wire::staked_iota)
            .collect()
    }

    /// The validator of a pool, as the active set names it; a pool outside the active set
    /// (its validator left) is named by its pool id.
    fn validator_of_pool(&self, pool: &ObjectId) -> String {
        lock(&self.pools)
            .get(pool)
            .map_or_else(|| pool.to_string(), ToString::to_string)
    }

    /// The gas coin (the largest) and up to [`MAX_MERGED_COINS`] others to merge into it.
    async fn gas_coins(&self) -> Result<(wire::CoinRef, Vec<wire::CoinRef>)> {
        let mut coins = self.coins().await?;
        if coins.is_empty() {
            return Err(AdapterError::InsufficientFunds {
                chain: CHAIN.into(),
                needed: u128::from(GAS_RESERVE_NANOS),
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
        let c = self.grpc().await?;
        let sim = timed("SimulateTransactions", c.simulate_transaction(draft))
            .await?
            .map_err(|e| match tonic::Status::from(e) {
                s if matches!(s.code(), tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition) => {
                    AdapterError::rejected(CHAIN, format!("simulation refused the transaction: {}", s.message()))
                }
                s => grpc_err("SimulateTransactions", GrpcError::from(s)),
            })?
            .into_inner();
        let executed = sim
            .executed_transaction()
            .map_err(|e| AdapterError::bad_response(CHAIN, format!("simulation: {e}")))?;
        let effects = effects_of(executed)?;
        if let Some(reason) = wire::failure(&effects.status) {
            return Err(AdapterError::rejected(CHAIN, format!("simulation failed: {reason}")));
        }
        let g = &effects.gas_cost_summary;
        let budget = move_staking::gas_budget(CHAIN, g.computation_cost, g.storage_cost, epoch.reference_gas_price)?;
        AdapterError::check_funds(CHAIN, u128::from(budget), u128::from(ceiling))?;
        let tx = plan.build(self.address, epoch.reference_gas_price, budget, epoch.index)?;
        self.sign(tx, epoch.end()).await
    }

    async fn sign(&self, tx: Transaction, valid_until: Option<Timestamp>) -> Result<SignedTx> {
        let sig = self.key.sign(tx.signing_digest().as_ref()).await?;
        Ok(SignedTx {
            tx_id: tx.digest().to_string(),
            payload: wire::encode_payload(&tx, &wire::user_signature(sig, self.key.public_key()))?,
            valid_until,
        })
    }

    /// The executed transaction `digest`, `None` when the node does not know it.
    async fn transaction(
        &self,
        digest: &str,
    ) -> Result<Option<iota_sdk::grpc_types::v1::transaction::ExecutedTransaction>> {
        let d: TransactionDigest = digest
            .parse()
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("transaction digest {digest:?}: {e}")))?;
        let c = self.grpc().await?;
        let mut got = timed(
            "GetTransactions",
            c.transactions([d]).read_mask([
                TransactionField::CHECKPOINT,
                TransactionField::TIMESTAMP,
                TransactionField::EFFECTS,
                TransactionField::EVENTS,
            ]),
        )
        .await?
        .map_err(|e| grpc_err("GetTransactions", e))?
        .into_inner();
        match got.pop() {
            Some(Ok(t)) => Ok(Some(t)),
            Some(Err(e)) if e.is_not_found() => Ok(None),
            Some(Err(e)) => Err(grpc_err("GetTransactions", e)),
            None => Ok(None),
        }
    }

    async fn read_unstaked(&self, digest: &str) -> Result<Option<Unstaked>> {
        if let Some(u) = lock(&self.unstaked).get(digest) {
            return Ok(Some(u.clone()));
        }
        let Some(t) = self.transaction(digest).await? else {
            return Ok(None);
        };
        let Some(checkpoint) = t.checkpoint else {
            return Ok(None);
        };
        if wire::failure(&effects_of(&t)?.status).is_some() {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("withdrawal {digest} failed on chain, yet the journal holds it as confirmed"),
            ));
        }
        let bad_events = |e: iota_sdk::grpc_types::proto::TryFromProtoError| {
            AdapterError::bad_response(CHAIN, format!("withdrawal {digest} events: {e}"))
        };
        let events = t.events().map_err(bad_events)?.events().map_err(bad_events)?;
        let at = t
            .timestamp_ms()
            .map_err(|e| AdapterError::bad_response(CHAIN, format!("withdrawal {digest}: {e}")))?;
        let u = Unstaked {
            checkpoint,
            at: time_of_ms("transaction time", at)?,
            rewards: wire::unstaking_rewards(&events, &self.address)?
                .into_iter()
                .map(|(v, r)| (v.to_string(), r))
                .collect(),
        };
        lock(&self.unstaked).insert(digest.to_string(), u.clone());
        Ok(Some(u))
    }

    /// Whether the gas coin `tx` pays with is still at the version it names.
    async fn gas_coin_current(&self, tx: &Transaction) -> Result<bool> {
        let Some(gas) = wire::v1(tx)?.gas_payment.objects.first() else {
            return Ok(false);
        };
        let c = self.grpc().await?;
        let mut got = timed("GetObjects", c.objects([gas.object_id]))
            .await?
            .map_err(|e| grpc_err("GetObjects", e))?
            .into_inner();
        match got.pop() {
            Some(Ok(o)) => {
                let obj = o
                    .object()
                    .map_err(|e| AdapterError::bad_response(CHAIN, format!("gas coin: {e}")))?;
                Ok(obj.version() == gas.version)
            }
            Some(Err(e)) if e.is_not_found() => Ok(false),
            Some(Err(e)) => Err(grpc_err("GetObjects", e)),
            None => Ok(false),
        }
    }
}

/// The effects of an executed transaction.
fn effects_of(
    t: &iota_sdk::grpc_types::v1::transaction::ExecutedTransaction,
) -> Result<iota_sdk::types::TransactionEffectsV1> {
    let bad =
        |e: iota_sdk::grpc_types::proto::TryFromProtoError| AdapterError::bad_response(CHAIN, format!("effects: {e}"));
    let effects = t.effects().map_err(bad)?.effects().map_err(bad)?;
    match effects {
        TransactionEffects::V1(v1) => Ok(*v1),
        #[allow(unreachable_patterns)]
        other => Err(AdapterError::bad_response(
            CHAIN,
            format!("effects of an unknown version: {other:?}"),
        )),
    }
}

#[async_trait]
impl ChainAdapter for IotaAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "IOTA"
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
        Ok(self.service_info().await?.at)
    }

    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let e = self.epoch_state().await?;
        Ok(wire::candidates(&e.validators, e.index))
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let e = self.epoch_state().await?;
        let end = e.end();
        let staked = self.staked().await?;
        Ok(staked
            .into_iter()
            .map(|s| {
                let activating = s.stake_activation_epoch > e.index;
                Position {
                    validator: self.validator_of_pool(&s.pool_id),
                    state: if activating {
                        StakeState::Activating
                    } else {
                        StakeState::Active
                    },
                    amount: Amount(u128::from(s.principal)),
                    eta: if activating { end } else { None },
                    account: Some(s.id.to_string()),
                }
            })
            .collect())
    }

    async fn spendable(&self) -> Result<Amount> {
        let total = self.coin_total().await?;
        Ok(Amount(total.saturating_sub(u128::from(GAS_RESERVE_NANOS))))
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        Ok(Vec::new())
    }

    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let validator = parse_validator(validator)?;
        let amount = to_u64(amount)?;
        if amount < move_staking::MIN_STAKING_THRESHOLD {
            return Err(AdapterError::rejected(
                CHAIN,
                format!(
                    "validator_set::EStakingBelowThreshold: {amount} nanos is below the minimum stake of {} nanos",
                    move_staking::MIN_STAKING_THRESHOLD
                ),
            ));
        }
        let epoch = self.epoch_state().await?;
        let (gas, merge) = self.gas_coins().await?;
        let available: u128 = std::iter::once(&gas).chain(&merge).map(|c| u128::from(c.balance)).sum();
        AdapterError::check_funds(CHAIN, u128::from(amount) + u128::from(GAS_RESERVE_NANOS), available)?;
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
            format!("{validator}: IOTA has no unbonding; stake leaves by withdrawal (request_withdraw_stake) at once"),
        ))
    }

    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let amount = to_u64(amount)?;
        let epoch = self.epoch_state().await?;
        let mine: Vec<StakedIota> = self
            .staked()
            .await?
            .into_iter()
            .filter(|s| self.validator_of_pool(&s.pool_id) == validator)
            .collect();
        let held: u128 = mine.iter().map(|s| u128::from(s.principal)).sum();
        if u128::from(amount) > held {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{validator}: {amount} nanos to withdraw, {held} nanos staked with it"),
            ));
        }
        let stakes = move_staking::choose(CHAIN, mine, epoch.index, amount)?;
        let (gas, merge) = self.gas_coins().await?;
        self.finish(wire::Plan::Unstake { gas, merge, stakes }, &epoch).await
    }

    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            format!("{validator}: IOTA has nothing to claim; rewards are paid with the principal at withdrawal"),
        ))
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let (transaction, sig) = wire::decode_payload(&tx.payload)?;
        let signed = SignedTransaction {
            transaction,
            signatures: vec![sig],
        };
        let c = self.grpc().await?;
        match timed("ExecuteTransactions", c.execute_transaction(signed)).await? {
            Ok(_) => Ok(()),
            Err(e) => {
                let s = tonic::Status::from(e);
                if matches!(s.code(), tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition) {
                    Err(AdapterError::rejected(CHAIN, s.message().to_string()))
                } else {
                    Err(grpc_err("ExecuteTransactions", GrpcError::from(s)))
                }
            }
        }
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        if let Some(t) = self.transaction(&tx.tx_id).await? {
            if t.checkpoint.is_none() {
                return Ok(TxStatus::Pending);
            }
            if let Some(reason) = wire::failure(&effects_of(&t)?.status) {
                return Ok(TxStatus::Failed { reason });
            }
            let at = t
                .timestamp_ms()
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("transaction {}: {e}", tx.tx_id)))?;
            return Ok(TxStatus::Confirmed {
                at: time_of_ms("transaction time", at)?,
            });
        }
        let (t, _) = wire::decode_payload(&tx.payload)?;
        let current = self.service_info().await?.epoch;
        let past_epoch = matches!(wire::v1(&t)?.expiration, TransactionExpiration::Epoch(e) if e < current);
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
        let mut checks = vec![match &self.cfg.chain_id {
            Some(want) if *want != info.chain_id => Check::fail(
                "chain id",
                format!(
                    "the node reports chain id {:?}, the config wants {want:?}",
                    info.chain_id
                ),
                "point rpc_url at a node of the configured network, or fix chain_id",
            ),
            Some(_) => Check::pass("chain id", format!("{} ({})", info.chain_id, info.chain)),
            None => Check::warn(
                "chain id",
                format!("{} ({}), not pinned", info.chain_id, info.chain),
                "set chain_id so a node of another network is refused",
            ),
        }];
        let epoch = self.epoch_state().await?;
        checks.push(if epoch.index == info.epoch {
            Check::pass(
                "epoch",
                format!(
                    "epoch {}, {} s long, reference gas price {} nanos, {} active validators (gRPC and GraphQL agree)",
                    epoch.index,
                    epoch.duration_ms / 1_000,
                    epoch.reference_gas_price,
                    epoch.validators.len()
                ),
            )
        } else {
            Check::warn(
                "epoch",
                format!("gRPC says epoch {}, GraphQL says {}", info.epoch, epoch.index),
                "point graphql_url at the same network as rpc_url (or wait for the indexer to catch up)",
            )
        });
        let balance = self.coin_total().await?;
        Ok(Preflight {
            signer: Some(self.address()),
            fee_token: None,
            signer_balance: Some(Amount(balance)),
            fee_per_operation: Some(Amount(u128::from(GAS_RESERVE_NANOS))),
            checks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_keys_name_the_chain() {
        assert!(seed(&SecretBytes::new(vec![1; 32])).is_ok());
        let e = seed(&SecretBytes::new(vec![1; 64])).unwrap_err().to_string();
        assert!(e.contains("iota: ") && e.contains("not 64"), "{e}");
    }

    #[test]
    fn fail_empty_endpoints() {
        let cfg = IotaConfig {
            rpc_url: "http://127.0.0.1:9000".into(),
            graphql_url: " ".into(),
            chain_id: None,
            max_operations_per_epoch: 10,
        };
        let e = IotaAdapter::new(cfg, SecretBytes::new(vec![1; 32])).unwrap_err();
        assert!(e.to_string().contains("graphql_url is empty"), "{e}");
    }
}

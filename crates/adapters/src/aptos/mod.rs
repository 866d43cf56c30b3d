//! Aptos staking through delegation pools (`0x1::delegation_pool`, aptos-framework
//! `sources/delegation_pool.move`), with BCS transactions signed with Ed25519 and sent over
//! the fullnode REST API `/v1` (`aptos-sdk`'s `FullnodeClient` and transaction types).
//!
//! ```text
//!  delegate    add_stake(pool, amount): shares for amount − add-stake fee; the fee buys
//!              shares for the pool's NULL_SHAREHOLDER and returns to the pool as rewards
//!              when the epoch ends; the stake is pending_active until then
//!  undelegate  unlock(pool, amount): active → pending_inactive (still earning) until the
//!              pool's lockup cycle ends (staking_config recurring_lockup_duration_secs,
//!              read live: 30 d at launch, 14 d since AIP-94), then inactive
//!  withdraw    withdraw(pool, amount) of inactive stake (one pending withdrawal per
//!              delegator: add_stake and unlock execute an inactive one first)
//!  rewards     compound into the pools' share prices: nothing to claim, no record, so
//!              ChainAdapter::rewards_from_positions (growth over our own flows, as NEAR)
//!  positions   view get_stake(pool, us) → (active, inactive, pending_inactive)
//!  signing     RawTransaction {sender, sequence_number, payload, max_gas_amount,
//!              gas_unit_price, expiration_timestamp_secs, chain_id}; message
//!              SHA3-256("APTOS::RawTransaction") ‖ BCS; Ed25519 authenticator
//!  before      every transaction is simulated (/transactions/simulate): a Move abort
//!              (EDELEGATOR_ACTIVE_BALANCE_TOO_LOW, …) is refused before anything is signed,
//!              and the gas used sizes max_gas_amount
//!  status      by_hash: committed → confirmed or failed (vm_status); unknown and past its
//!              expiration or its sequence number used → expired
//! ```
//!
//! Validators are the whole active set: delegation pools as candidates, owners' own stake
//! pools (`delegation_pool_exists` false) listed inactive, so the network's stake (the
//! superminority) counts them while nobody delegates to them.
//!
//! Right after `add_stake` a position is short of the ledger by the add-stake fee
//! (`get_add_stake_fee`) until the epoch ends: reconciliation shows it as drift for that
//! epoch, and the fee comes back as the first epoch's reward. Amounts are octas
//! (1 APT = 10^8). Epoch length (`0x1::block::BlockResource.epoch_interval`) and the
//! lockup are read from the chain.

mod wire;

use std::collections::BTreeSet;
use std::time::Duration;

use aptos_sdk::api::FullnodeClient;
use aptos_sdk::transaction::authenticator::{Ed25519PublicKey, Ed25519Signature};
use aptos_sdk::transaction::{
    InputEntryFunctionData, RawTransaction, SignedTransaction, TransactionAuthenticator, TransactionPayload,
};
use aptos_sdk::types::{AccountAddress, ChainId, HashValue};
use aptos_sdk::{AptosConfig, AptosError};
use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use softstake_core::{Amount, Timestamp};

use crate::ed25519::Ed25519Key;
use crate::error::{AdapterError, Result};
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardsPage, SignedTx, StakeState, TxStatus, ValidatorCandidate,
};
pub use wire::{abort_name, decode_payload, decode_signed, encode_payload, tx_hash};
use wire::{field_u64, view_bool, view_u64, Committed, CHAIN};

/// Octas in one APT.
pub const OCTAS_PER_APT: u128 = 100_000_000;
/// The delegation pool's `MIN_COINS_ON_SHARES_POOL`: 10 APT, the least a delegator may
/// hold active or pending_inactive in a pool.
pub const MIN_COINS_ON_SHARES_POOL_OCTAS: u128 = 10 * OCTAS_PER_APT;
/// The delegation pool's `MAX_FEE`: commissions are in hundredths of a percent (basis points).
pub const MAX_FEE: u128 = 10_000;
/// Seconds a signed transaction stays valid after the ledger time it was built at.
pub const TX_TTL_SECS: u64 = 120;
/// Gas units a transaction may use in its simulation (a delegation pool call uses a few
/// thousand).
const SIMULATION_MAX_GAS: u64 = 50_000;
/// Kept in the account for gas when delegating, octas (0.1 APT).
const GAS_RESERVE_OCTAS: u128 = OCTAS_PER_APT / 10;
/// Most pools read per call (bounds the loops; mainnet has about 150 validators).
const MAX_POOLS: usize = 1_000;

/// Settings of the Aptos adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AptosStakeConfig {
    /// Fullnode REST endpoint with its `/v1` (`https://fullnode.testnet.aptoslabs.com/v1`,
    /// a local chain, …).
    pub rest_url: String,
    /// The chain id the node must report (1 mainnet, 2 testnet); `None` accepts the node's.
    pub chain_id: Option<u8>,
    /// Delegation pools to read besides the active validators (pools that may hold our
    /// stake after leaving the set), addresses.
    pub extra_pools: Vec<String>,
    /// Largest number of operations sent per epoch.
    pub max_operations_per_epoch: u32,
}

/// The epoch and lockup constants the adapter reads once.
#[derive(Debug, Clone, Copy)]
struct Constants {
    chain_id: u8,
    epoch_secs: u64,
    lockup_secs: u64,
}

/// The Aptos adapter.
pub struct AptosAdapter {
    rest: FullnodeClient,
    cfg: AptosStakeConfig,
    key: Ed25519Key,
    address: AccountAddress,
    constants: OnceCell<Constants>,
}

impl std::fmt::Debug for AptosAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AptosAdapter")
            .field("rest_url", &self.cfg.rest_url)
            .field("address", &self.address.to_string())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The 32-byte Ed25519 seed of a raw Aptos key: 32 seed bytes (the `ed25519-priv-0x…`
/// key's bytes).
///
/// # Errors
/// [`AdapterError::Signer`] for any other length.
pub fn seed(key: &SecretBytes) -> Result<[u8; 32]> {
    key.expose()
        .try_into()
        .map_err(|_| AdapterError::Signer(format!("an Aptos key is 32 bytes, not {}", key.expose().len())))
}

/// The account address of an Ed25519 public key (single-key scheme): SHA3-256(pk ‖ 0x00).
pub fn address_of(public_key: &[u8; 32]) -> AccountAddress {
    aptos_sdk::crypto::Ed25519PublicKey::from_bytes(public_key)
        .map(|pk| pk.to_address())
        .unwrap_or(AccountAddress::ZERO)
}

/// SDK and node errors: transport failures, 429 and 5xx are transient; the rest is a
/// bad response.
fn rest_err(what: &str, e: AptosError) -> AdapterError {
    match &e {
        AptosError::Http(_) | AptosError::RateLimited { .. } => AdapterError::transient(CHAIN, format!("{what}: {e}")),
        AptosError::Api { status_code, .. } if *status_code >= 500 => {
            AdapterError::transient(CHAIN, format!("{what}: {e}"))
        }
        _ => AdapterError::bad_response(CHAIN, format!("{what}: {e}")),
    }
}

fn octas(what: &str, amount: Amount) -> Result<u64> {
    u64::try_from(amount.0).map_err(|_| AdapterError::bad_input(CHAIN, format!("{what} of {amount} octas exceeds u64")))
}

fn micros(us: u128) -> Result<Timestamp> {
    i64::try_from(us.saturating_mul(1_000))
        .map(Timestamp)
        .map_err(|_| AdapterError::bad_response(CHAIN, format!("timestamp {us} µs out of range")))
}

impl AptosAdapter {
    /// An adapter signing with `key`: a raw 32-byte Ed25519 seed or an Ed25519 key in a
    /// PKCS#11 token; the treasury is the key's single-key account.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a malformed URL or pool; [`AdapterError::Signer`] for
    /// a key that is not Ed25519.
    pub fn new(cfg: AptosStakeConfig, key: impl Into<TreasuryKey>) -> Result<AptosAdapter> {
        for p in &cfg.extra_pools {
            wire::address("extra pool", p)?;
        }
        let config = AptosConfig::custom(&cfg.rest_url)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("rest_url {:?}: {e}", cfg.rest_url)))?
            .without_retry()
            .with_timeout(Duration::from_secs(30));
        let rest = FullnodeClient::new(config).map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        let key = Ed25519Key::from_treasury(CHAIN, key.into(), seed)?;
        Ok(AptosAdapter {
            address: address_of(&key.public_key()),
            rest,
            key,
            cfg,
            constants: OnceCell::new(),
        })
    }

    /// The treasury's account address.
    pub fn address(&self) -> AccountAddress {
        self.address
    }

    async fn constants(&self) -> Result<Constants> {
        self.constants
            .get_or_try_init(|| async {
                let info = self
                    .rest
                    .get_ledger_info()
                    .await
                    .map_err(|e| rest_err("ledger info", e))?
                    .data;
                if let Some(want) = self.cfg.chain_id.filter(|w| *w != info.chain_id) {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!("the node is on chain id {}, the config wants {want}", info.chain_id),
                    ));
                }
                let block = self.framework_resource("0x1::block::BlockResource").await?;
                let staking = self.framework_resource("0x1::staking_config::StakingConfig").await?;
                let epoch_us = field_u64("BlockResource", &block, "epoch_interval")?;
                let lockup = field_u64("StakingConfig", &staking, "recurring_lockup_duration_secs")?;
                if epoch_us < 1_000_000 || lockup == 0 {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!("epoch_interval {epoch_us} µs / recurring_lockup_duration_secs {lockup}"),
                    ));
                }
                Ok(Constants {
                    chain_id: info.chain_id,
                    epoch_secs: u64::try_from(epoch_us / 1_000_000).unwrap_or(u64::MAX),
                    lockup_secs: u64::try_from(lockup).unwrap_or(u64::MAX),
                })
            })
            .await
            .copied()
    }

    async fn framework_resource(&self, typ: &str) -> Result<Value> {
        Ok(self
            .rest
            .get_account_resource(AccountAddress::ONE, typ)
            .await
            .map_err(|e| rest_err(typ, e))?
            .data
            .data)
    }

    async fn view(&self, function: &str, type_args: Vec<String>, args: Vec<Value>) -> Result<Vec<Value>> {
        Ok(self
            .rest
            .view(function, type_args, args)
            .await
            .map_err(|e| rest_err(function, e))?
            .data)
    }

    /// Whether `pool` is a delegation pool (`delegation_pool_exists`).
    async fn is_pool(&self, pool: &str) -> Result<bool> {
        let r = self
            .view(
                "0x1::delegation_pool::delegation_pool_exists",
                vec![],
                vec![json!(pool)],
            )
            .await?;
        view_bool("delegation_pool_exists", &r, 0)
    }

    /// Our `(active, inactive, pending_inactive)` in `pool`, octas.
    async fn stake_in(&self, pool: &str) -> Result<(u128, u128, u128)> {
        let what = format!("get_stake({pool})");
        let r = self
            .view(
                "0x1::delegation_pool::get_stake",
                vec![],
                vec![json!(pool), json!(self.address.to_string())],
            )
            .await?;
        Ok((
            view_u64(&what, &r, 0)?,
            view_u64(&what, &r, 1)?,
            view_u64(&what, &r, 2)?,
        ))
    }

    /// The active validators' addresses and `ValidatorSet` entries.
    async fn active_set(&self) -> Result<Vec<wire::ActiveValidator>> {
        let set = self.framework_resource("0x1::stake::ValidatorSet").await?;
        let mut list = wire::active_validators(&set)?;
        list.truncate(MAX_POOLS);
        Ok(list)
    }

    /// Every delegation pool that may hold our stake: the active validators that are
    /// delegation pools and the configured extra pools.
    async fn pools(&self) -> Result<Vec<String>> {
        let mut set = BTreeSet::new();
        for v in self.active_set().await? {
            if self.is_pool(&v.addr).await? {
                set.insert(v.addr);
            }
        }
        set.extend(self.cfg.extra_pools.iter().cloned());
        Ok(set.into_iter().take(MAX_POOLS).collect())
    }

    fn check_pool(validator: &str) -> Result<AccountAddress> {
        wire::address("pool", validator)
    }

    /// Builds, simulates and signs one delegation-pool call. A simulated Move abort is a
    /// [`AdapterError::Rejected`] naming the abort; nothing is signed.
    async fn sign_call(&self, payload: aptos_sdk::AptosResult<TransactionPayload>) -> Result<SignedTx> {
        let payload = payload.map_err(|e| AdapterError::bad_input(CHAIN, format!("the entry function: {e}")))?;
        let c = self.constants().await?;
        let ledger = self
            .rest
            .get_ledger_info()
            .await
            .map_err(|e| rest_err("ledger info", e))?
            .data;
        let now_secs = ledger
            .ledger_timestamp
            .parse::<u64>()
            .map_err(|e| AdapterError::bad_response(CHAIN, format!("ledger_timestamp: {e}")))?
            / 1_000_000;
        let sequence_number = self
            .rest
            .get_sequence_number(self.address)
            .await
            .map_err(|e| rest_err("account", e))?;
        let gas_unit_price = self
            .rest
            .estimate_gas_price()
            .await
            .map_err(|e| rest_err("estimate_gas_price", e))?
            .data
            .gas_estimate;
        let expiration = now_secs.saturating_add(TX_TTL_SECS);
        let raw = |max_gas_amount| {
            RawTransaction::new(
                self.address,
                sequence_number,
                payload.clone(),
                max_gas_amount,
                gas_unit_price,
                expiration,
                ChainId::new(c.chain_id),
            )
        };
        let probe = self.sign(raw(SIMULATION_MAX_GAS)).await?;
        let sim = self
            .rest
            .simulate_transaction(&probe)
            .await
            .map_err(|e| rest_err("simulate", e))?
            .data;
        let first = sim
            .first()
            .ok_or_else(|| AdapterError::bad_response(CHAIN, "simulate answered no transaction"))?;
        let Committed::Done { success, vm_status, .. } = wire::committed(first)? else {
            return Err(AdapterError::bad_response(
                CHAIN,
                "simulate answered a pending transaction",
            ));
        };
        if !success {
            return Err(AdapterError::rejected(CHAIN, vm_status));
        }
        let gas_used = u64::try_from(field_u64("simulation", first, "gas_used")?).unwrap_or(SIMULATION_MAX_GAS);
        // half again the simulation's gas: state may change before it lands
        let signed = self.sign(raw(gas_used.saturating_mul(3) / 2 + 10)).await?;
        Ok(SignedTx {
            tx_id: tx_hash(&signed)?,
            payload: encode_payload(&signed)?,
            valid_until: Some(
                Timestamp::from_unix_secs(i64::try_from(expiration).unwrap_or(i64::MAX))
                    .map_err(|e| AdapterError::bad_response(CHAIN, e.to_string()))?,
            ),
        })
    }

    async fn sign(&self, raw: RawTransaction) -> Result<SignedTransaction> {
        let message = raw
            .signing_message()
            .map_err(|e| AdapterError::Signer(format!("the Aptos signing message: {e}")))?;
        let signature = self.key.sign(&message).await?;
        Ok(SignedTransaction::new(
            raw,
            TransactionAuthenticator::Ed25519 {
                public_key: Ed25519PublicKey(self.key.public_key()),
                signature: Ed25519Signature(signature),
            },
        ))
    }

    /// The committed transaction `hash`, `None` when the node does not know it.
    async fn by_hash(&self, hash: &str) -> Result<Option<Committed>> {
        let h = HashValue::from_hex(hash)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("transaction hash {hash:?}: {e}")))?;
        match self.rest.get_transaction_by_hash(&h).await {
            Ok(r) => wire::committed(&r.data).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(rest_err("transaction by hash", e)),
        }
    }

    /// An unknown transaction can never land once the ledger passed its expiration or its
    /// sequence number went to another transaction.
    async fn unknown_status(&self, tx: &SignedTransaction) -> Result<TxStatus> {
        let ledger = self
            .rest
            .get_ledger_info()
            .await
            .map_err(|e| rest_err("ledger info", e))?
            .data;
        let now_secs = ledger.ledger_timestamp.parse::<u64>().unwrap_or(0) / 1_000_000;
        if now_secs >= tx.raw_txn.expiration_timestamp_secs {
            return Ok(TxStatus::Expired);
        }
        let seq = self
            .rest
            .get_sequence_number(self.address)
            .await
            .map_err(|e| rest_err("account", e))?;
        if seq > tx.raw_txn.sequence_number {
            return Ok(TxStatus::Expired);
        }
        Ok(TxStatus::NotFound)
    }

    /// [`ChainAdapter::preflight`]: the chain id, the treasury account (it must exist), its
    /// balance, and the gas of one call at the estimated price as the fee per operation.
    async fn preflight_report(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let info = self
            .rest
            .get_ledger_info()
            .await
            .map_err(|e| rest_err("ledger info", e))?
            .data;
        let mut checks = vec![match self.cfg.chain_id {
            Some(want) if want != info.chain_id => Check::fail(
                "chain id",
                format!("the node is on chain id {}, the config wants {want}", info.chain_id),
                "point rest_url at the configured network's fullnode",
            ),
            _ => Check::pass("chain id", info.chain_id.to_string()),
        }];
        let balance = match self.rest.get_sequence_number(self.address).await {
            Ok(seq) => {
                checks.push(Check::pass(
                    "account",
                    format!("{}: sequence number {seq}", self.address),
                ));
                Some(Amount(u128::from(
                    self.rest
                        .get_account_balance(self.address)
                        .await
                        .map_err(|e| rest_err("balance", e))?,
                )))
            }
            Err(e) if e.is_not_found() => {
                checks.push(Check::fail(
                    "account",
                    format!("{} does not exist on {}", self.address, self.cfg.rest_url),
                    "create and fund the treasury account",
                ));
                None
            }
            Err(e) => return Err(rest_err("account", e)),
        };
        let price = self
            .rest
            .estimate_gas_price()
            .await
            .map_err(|e| rest_err("estimate_gas_price", e))?
            .data
            .gas_estimate;
        Ok(Preflight {
            signer: Some(self.address.to_string()),
            fee_token: None,
            signer_balance: balance,
            fee_per_operation: Some(Amount(u128::from(SIMULATION_MAX_GAS) * u128::from(price))),
            checks,
        })
    }
}

#[async_trait]
impl ChainAdapter for AptosAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "APT"
    }

    fn rewards_from_positions(&self) -> bool {
        true
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let c = self.constants().await?;
        Ok(LiquidityModel {
            // the longest wait: an unlock just after a lockup cycle renewed
            unbonding_period_secs: c.lockup_secs,
            epoch_secs: c.epoch_secs,
            epoch_aligned: true,
            activation_epochs: 1,
            min_delegation: Amount(MIN_COINS_ON_SHARES_POOL_OCTAS),
            rewards_auto_compound: true,
            claim_cadence_secs: 0,
            claim_all_validators: false,
            max_operations_per_epoch: self.cfg.max_operations_per_epoch,
            instant_exit: false,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: false,
        })
    }

    async fn epoch(&self) -> Result<EpochInfo> {
        let c = self.constants().await?;
        let conf = self.framework_resource("0x1::reconfiguration::Configuration").await?;
        Ok(EpochInfo {
            index: u64::try_from(field_u64("Configuration", &conf, "epoch")?).unwrap_or(u64::MAX),
            start: micros(field_u64("Configuration", &conf, "last_reconfiguration_time")?)?,
            secs: c.epoch_secs,
        })
    }

    async fn now(&self) -> Result<Timestamp> {
        let info = self
            .rest
            .get_ledger_info()
            .await
            .map_err(|e| rest_err("ledger info", e))?
            .data;
        micros(wire::u64_str(
            "ledger_timestamp",
            &Value::String(info.ledger_timestamp),
        )?)
    }

    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let perf = self.framework_resource("0x1::stake::ValidatorPerformance").await?;
        let mut out = Vec::new();
        for v in self.active_set().await? {
            if !self.is_pool(&v.addr).await? {
                // a stake pool of its owner alone: nothing softstake can delegate to, but
                // its stake is the network's (the superminority is computed over all)
                out.push(ValidatorCandidate {
                    id: v.addr.clone(),
                    name: format!("{} (stake pool, not a delegation pool)", v.addr),
                    commission_bps: 0,
                    total_stake: Amount(v.voting_power),
                    performance_bps: wire::performance_bps(&perf, v.index),
                    active: false,
                    own_validator: false,
                });
                continue;
            }
            let r = self
                .view(
                    "0x1::delegation_pool::operator_commission_percentage",
                    vec![],
                    vec![json!(v.addr)],
                )
                .await?;
            let commission = view_u64("operator_commission_percentage", &r, 0)?;
            if commission > MAX_FEE {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    format!("{}: commission {commission} above MAX_FEE", v.addr),
                ));
            }
            out.push(ValidatorCandidate {
                id: v.addr.clone(),
                name: v.addr.clone(),
                // MAX_FEE is 10 000: the commission is in basis points already
                commission_bps: u32::try_from(commission).unwrap_or(10_000),
                total_stake: Amount(v.voting_power),
                performance_bps: wire::performance_bps(&perf, v.index),
                active: true,
                own_validator: false,
            });
        }
        Ok(out)
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let mut out = Vec::new();
        for pool in self.pools().await? {
            let (active, inactive, pending_inactive) = self.stake_in(&pool).await?;
            let lockup = if pending_inactive > 0 {
                let r = self
                    .view("0x1::stake::get_lockup_secs", vec![], vec![json!(pool)])
                    .await?;
                let secs = view_u64("get_lockup_secs", &r, 0)?;
                Some(
                    Timestamp::from_unix_secs(i64::try_from(secs).unwrap_or(i64::MAX))
                        .map_err(|e| AdapterError::bad_response(CHAIN, e.to_string()))?,
                )
            } else {
                None
            };
            for (state, amount, eta) in [
                (StakeState::Active, active, None),
                (StakeState::Deactivating, pending_inactive, lockup),
                (StakeState::Withdrawable, inactive, None),
            ] {
                if amount > 0 {
                    out.push(Position {
                        validator: pool.clone(),
                        state,
                        amount: Amount(amount),
                        eta,
                        account: None,
                    });
                }
            }
        }
        Ok(out)
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        self.preflight_report().await
    }

    async fn spendable(&self) -> Result<Amount> {
        match self.rest.get_account_balance(self.address).await {
            Ok(b) => Ok(Amount(u128::from(b).saturating_sub(GAS_RESERVE_OCTAS))),
            Err(e) if e.is_not_found() => Ok(Amount(0)),
            Err(e) => Err(rest_err("balance", e)),
        }
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        Ok(Vec::new())
    }

    /// `add_stake(pool, amount)`.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a malformed pool or 0; [`AdapterError::InsufficientFunds`]
    /// beyond the spendable balance; [`AdapterError::Rejected`] when the simulation aborts
    /// (`EDELEGATOR_ACTIVE_BALANCE_TOO_LOW` below 10 APT, `EDELEGATION_POOL_DOES_NOT_EXIST`).
    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let pool = Self::check_pool(validator)?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "delegation of 0 octas"));
        }
        let have = self.spendable().await?;
        AdapterError::check_funds(CHAIN, amount.0, have.0)?;
        self.sign_call(InputEntryFunctionData::delegation_add_stake(
            pool,
            octas("add_stake", amount)?,
        ))
        .await
    }

    /// `unlock(pool, amount)`. The pool rounds an unlock leaving less than 10 APT active up
    /// to everything (`coins_to_transfer_to_ensure_min_stake`).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for 0 or more than is active in the pool;
    /// [`AdapterError::Rejected`] when the simulation aborts.
    async fn undelegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let pool = Self::check_pool(validator)?;
        let (active, _, _) = self.stake_in(validator).await?;
        if amount.is_zero() || amount.0 > active {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("unlock of {amount} octas from {validator}, which holds {active} active"),
            ));
        }
        self.sign_call(InputEntryFunctionData::delegation_unlock(
            pool,
            octas("unlock", amount)?,
        ))
        .await
    }

    /// `withdraw(pool, amount)` of inactive stake.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for 0, more than is inactive, or stake still in its
    /// lockup cycle.
    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let pool = Self::check_pool(validator)?;
        let (_, inactive, pending_inactive) = self.stake_in(validator).await?;
        if amount.is_zero() || amount.0 > inactive {
            let why = if pending_inactive > 0 {
                format!("{pending_inactive} octas are still locked until the pool's lockup cycle ends")
            } else {
                format!("{inactive} octas are withdrawable")
            };
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("withdrawal of {amount} octas from {validator}: {why}"),
            ));
        }
        self.sign_call(InputEntryFunctionData::delegation_withdraw(
            pool,
            octas("withdraw", amount)?,
        ))
        .await
    }

    /// Delegation pools compound: there is nothing to claim.
    ///
    /// # Errors
    /// Always [`AdapterError::BadInput`].
    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            format!("{validator}: Aptos delegation pools compound rewards; there is no claim"),
        ))
    }

    /// `POST /v1/transactions` (BCS). The same transaction again, already committed, is
    /// success; a validation error (`SEQUENCE_NUMBER_TOO_OLD`, `INVALID_SIGNATURE`,
    /// `TRANSACTION_EXPIRED`, …) is a [`AdapterError::Rejected`].
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let signed = decode_payload(&tx.payload, &tx.tx_id)?;
        match self.rest.submit_transaction(&signed).await {
            Ok(_) => Ok(()),
            Err(AptosError::Api {
                status_code: 400,
                message,
                ..
            }) => {
                if self.by_hash(&tx.tx_id).await?.is_some() {
                    return Ok(());
                }
                Err(AdapterError::rejected(CHAIN, message))
            }
            Err(e) => Err(rest_err("submit", e)),
        }
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let signed = decode_payload(&tx.payload, &tx.tx_id)?;
        match self.by_hash(&tx.tx_id).await? {
            None => self.unknown_status(&signed).await,
            Some(Committed::Pending) => Ok(TxStatus::Pending),
            Some(Committed::Done {
                success: true,
                timestamp_us,
                ..
            }) => Ok(TxStatus::Confirmed {
                at: micros(timestamp_us)?,
            }),
            Some(Committed::Done { vm_status, .. }) => Ok(TxStatus::Failed { reason: vm_status }),
        }
    }

    /// Compounded rewards are read from positions by the node (see the module docs).
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        Ok(RewardsPage {
            records: Vec::new(),
            cursor: cursor.unwrap_or("").to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AptosStakeConfig {
        AptosStakeConfig {
            rest_url: "http://127.0.0.1:9/v1".into(),
            chain_id: Some(4),
            extra_pools: vec![],
            max_operations_per_epoch: 8,
        }
    }

    #[test]
    fn success_address_is_sha3_of_key_and_scheme() {
        let a = AptosAdapter::new(cfg(), SecretBytes::new(vec![7; 32])).unwrap();
        let pk = ed25519_dalek::SigningKey::from_bytes(&[7; 32])
            .verifying_key()
            .to_bytes();
        let mut pre = pk.to_vec();
        pre.push(0);
        let want = aptos_sdk::crypto::sha3_256(&pre);
        assert_eq!(a.address().to_bytes(), want);
    }

    #[test]
    fn fail_bad_keys_urls_and_pools() {
        for bad in [vec![1; 31], vec![1; 64]] {
            let e = AptosAdapter::new(cfg(), SecretBytes::new(bad)).unwrap_err();
            assert!(matches!(e, AdapterError::Signer(_)), "{e}");
        }
        let mut c = cfg();
        c.rest_url = "not a url".into();
        assert!(matches!(
            AptosAdapter::new(c, SecretBytes::new(vec![7; 32])).unwrap_err(),
            AdapterError::BadInput { .. }
        ));
        let mut c = cfg();
        c.extra_pools = vec!["0xzz".into()];
        assert!(AptosAdapter::new(c, SecretBytes::new(vec![7; 32])).is_err());
        assert!(octas("add_stake", Amount(u128::from(u64::MAX) + 1)).is_err());
    }
}

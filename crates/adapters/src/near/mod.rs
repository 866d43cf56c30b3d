//! NEAR staking through staking-pool contracts (near/core-contracts `staking-pool`, the
//! reference pool most mainnet validators run; its call surface is summarized in
//! `shared/data/near/staking_pool_interface.md`), with signed borsh transactions over
//! NEAR JSON-RPC (`near-primitives`, `near-crypto`, `near-jsonrpc-client`).
//!
//! ```text
//!  delegate    FunctionCall deposit_and_stake {} with the amount attached, to the pool
//!  undelegate  FunctionCall unstake {"amount": "<yocto>"}: unstaked, locked 4 epochs
//!  withdraw    FunctionCall withdraw {"amount": "<yocto>"} once
//!              is_account_unstaked_balance_available (the pool's NUM_EPOCHS_TO_UNLOCK = 4)
//!  rewards     compound into the pool's share price: no claim, no record to read, so
//!              ChainAdapter::rewards_from_positions: the node books each pool's growth
//!              over the ledger (our own calls) as realized
//!  positions   per pool, view get_account {account_id}: staked → active; unstaked →
//!              withdrawable when can_withdraw, else deactivating
//!  signing     nonce = the access key's nonce (view_access_key) + 1, block hash of the
//!              final block; a transaction is valid for the genesis
//!              transaction_validity_period blocks after that block
//!  status      tx {tx_hash, sender_account_id}: FINAL → confirmed or failed by its final
//!              status; unknown and its block beyond the validity period → expired
//! ```
//!
//! Pools are the current and next epoch validators (`validators` RPC) plus
//! `NearConfig::extra_pools` (pools that may hold our stake after leaving the set).
//! Amounts are yoctoNEAR (1 NEAR = 10^24 yoctoNEAR). Epoch length and the validity period
//! are read from `EXPERIMENTAL_genesis_config` at start.

use std::collections::BTreeSet;

use async_trait::async_trait;
use near_crypto::{ED25519PublicKey, ED25519SecretKey, PublicKey, SecretKey, Signature};
use near_jsonrpc_client::errors::{JsonRpcError, JsonRpcServerError};
use near_jsonrpc_client::{methods, JsonRpcClient};
use near_jsonrpc_primitives::types::query::QueryResponseKind;
use near_jsonrpc_primitives::types::transactions::{RpcTransactionError, TransactionInfo};
use near_primitives::action::{Action, FunctionCallAction};
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{AccountId, BlockId, BlockReference, EpochReference, Finality, FunctionArgs};
use near_primitives::views::{FinalExecutionOutcomeViewEnum, FinalExecutionStatus, QueryRequest, TxExecutionStatus};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tokio::sync::OnceCell;

use softstake_core::{Amount, Timestamp};

use crate::ed25519::Ed25519Key;
use crate::error::{AdapterError, Result};
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardsPage, SignedTx, StakeState, TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "near";
/// Epochs an unstaked balance stays locked in the reference pool (`NUM_EPOCHS_TO_UNLOCK`).
pub const NUM_EPOCHS_TO_UNLOCK: u64 = 4;
/// Gas attached to each pool call, in Tgas (the pool's `deposit_and_stake` and `unstake`
/// use about 35 Tgas with their callbacks; unused gas is refunded).
pub const GAS_PER_CALL_TGAS: u64 = 125;
/// Most pools read per call (bounds the loops; mainnet has about 300 validators).
const MAX_POOLS: usize = 1_000;
/// Kept in the account for storage and gas when delegating, yoctoNEAR (1 NEAR).
const GAS_RESERVE_YOCTO: u128 = 1_000_000_000_000_000_000_000_000;
/// Storage staking: yoctoNEAR locked per byte of account storage (10^19, the protocol's
/// `storage_amount_per_byte`).
const STORAGE_YOCTO_PER_BYTE: u128 = 10_000_000_000_000_000_000;

/// Settings of the NEAR adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearConfig {
    /// JSON-RPC endpoint (`https://rpc.testnet.near.org`, a local chain, …).
    pub rpc_url: String,
    /// The treasury's account id (`treasury.testnet`); its full-access key signs.
    pub account_id: String,
    /// Pools to read besides the current and next validators, account ids.
    pub extra_pools: Vec<String>,
    /// Largest number of operations sent per epoch.
    pub max_operations_per_epoch: u32,
}

/// The genesis constants the adapter needs (`EXPERIMENTAL_genesis_config`, which holds
/// far more).
#[derive(Debug, Clone, Copy, Deserialize)]
struct GenesisConstants {
    epoch_length: u64,
    transaction_validity_period: u64,
}

impl methods::RpcHandlerResponse for GenesisConstants {}

/// The chain id of `EXPERIMENTAL_genesis_config` (`mainnet`, `testnet`, `localnet`).
#[derive(Debug, Clone, Deserialize)]
struct GenesisId {
    chain_id: String,
}

impl methods::RpcHandlerResponse for GenesisId {}

/// The network a named account belongs to by its top-level account (`*.near` on
/// mainnet, `*.testnet` on testnet); `None` for implicit and other accounts.
fn network_of(account: &str) -> Option<&'static str> {
    if account.ends_with(".near") {
        Some("mainnet")
    } else if account.ends_with(".testnet") {
        Some("testnet")
    } else {
        None
    }
}

/// `get_account` of the reference staking pool (`core-contracts/staking-pool`,
/// `HumanReadableAccount`): balances in yoctoNEAR as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PoolAccount {
    /// Unstaked yoctoNEAR (unbonding or withdrawable).
    #[serde(with = "dec")]
    pub unstaked_balance: u128,
    /// Staked yoctoNEAR (the shares' value).
    #[serde(with = "dec")]
    pub staked_balance: u128,
    /// Whether the unstaked balance may be withdrawn now.
    pub can_withdraw: bool,
}

/// A view call's JSON result (the bytes of a `call_function` answer) as `T`.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` and quoting the answer, for JSON that is
/// not a `T` (a contract that is not a reference staking pool, garbage).
pub fn decode_view<T: DeserializeOwned>(what: &str, result: &[u8]) -> Result<T> {
    serde_json::from_slice(result).map_err(|e| {
        AdapterError::bad_response(
            CHAIN,
            format!("{what} returned {:?}: {e}", String::from_utf8_lossy(result)),
        )
    })
}

/// `get_reward_fee_fraction` of the reference pool.
#[derive(Debug, Clone, Copy, Deserialize)]
struct RewardFeeFraction {
    numerator: u32,
    denominator: u32,
}

/// yoctoNEAR as JSON decimal strings (`U128`).
mod dec {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<u128, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The NEAR adapter.
pub struct NearAdapter {
    rpc: JsonRpcClient,
    cfg: NearConfig,
    account: AccountId,
    key: Ed25519Key,
    genesis: OnceCell<GenesisConstants>,
}

impl std::fmt::Debug for NearAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearAdapter")
            .field("rpc_url", &self.cfg.rpc_url)
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Transport and server errors: timeouts, 5xx and rate limits are transient; the rest
/// is a bad response.
fn rpc_err<E: std::fmt::Debug>(what: &str, e: JsonRpcError<E>) -> AdapterError {
    match &e {
        JsonRpcError::TransportError(t) => AdapterError::transient(CHAIN, format!("{what}: {t}")),
        JsonRpcError::ServerError(JsonRpcServerError::InternalError { .. })
        | JsonRpcError::ServerError(JsonRpcServerError::ResponseStatusError(_)) => {
            AdapterError::transient(CHAIN, format!("{what}: {e:?}"))
        }
        _ => AdapterError::bad_response(CHAIN, format!("{what}: {e:?}")),
    }
}

fn parse_account(what: &str, id: &str) -> Result<AccountId> {
    id.parse()
        .map_err(|e| AdapterError::bad_input(CHAIN, format!("{what} {id:?} is not a NEAR account id: {e}")))
}

/// The 32-byte ed25519 seed of a raw NEAR key: 32 seed bytes or 64 keypair bytes
/// (seed ‖ public key, the `ed25519:` secret-key format's bytes).
///
/// # Errors
/// [`AdapterError::Signer`] for any other length or a keypair whose halves disagree.
pub fn seed(key: &SecretBytes) -> Result<[u8; 32]> {
    let bytes = key.expose();
    let seed: [u8; 32] = bytes
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .filter(|_| bytes.len() == 32 || bytes.len() == 64)
        .ok_or_else(|| AdapterError::Signer(format!("a NEAR key is 32 or 64 bytes, not {}", bytes.len())))?;
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    if bytes.len() == 64 && bytes[32..] != public {
        return Err(AdapterError::Signer(
            "the NEAR keypair's public half does not match its seed".into(),
        ));
    }
    Ok(seed)
}

/// A raw NEAR key as near-crypto's [`SecretKey`] (see [`seed`] for the formats).
///
/// # Errors
/// As [`seed`].
pub fn secret_key(key: &SecretBytes) -> Result<SecretKey> {
    let seed = seed(key)?;
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let mut pair = [0u8; 64];
    pair[..32].copy_from_slice(&seed);
    pair[32..].copy_from_slice(&public);
    Ok(SecretKey::ED25519(ED25519SecretKey(pair)))
}

fn yocto(v: near_primitives::types::Balance) -> Amount {
    Amount(v.as_yoctonear())
}

fn block_time(nanos: u64) -> Result<Timestamp> {
    i64::try_from(nanos)
        .map(Timestamp)
        .map_err(|_| AdapterError::bad_response(CHAIN, format!("block timestamp {nanos} out of range")))
}

impl NearAdapter {
    /// An adapter signing as `cfg.account_id` with `key`: a raw key ([`seed`]'s formats) or
    /// an Ed25519 key pair in a PKCS#11 token, which must be a full-access key of the
    /// account.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a malformed account id or pool; [`AdapterError::Signer`]
    /// for a key that is not ed25519.
    pub fn new(cfg: NearConfig, key: impl Into<TreasuryKey>) -> Result<NearAdapter> {
        let account = parse_account("account_id", &cfg.account_id)?;
        for p in &cfg.extra_pools {
            parse_account("extra pool", p)?;
        }
        if cfg.rpc_url.trim().is_empty() {
            return Err(AdapterError::bad_input(CHAIN, "rpc_url is empty"));
        }
        Ok(NearAdapter {
            rpc: JsonRpcClient::connect(cfg.rpc_url.as_str()),
            key: Ed25519Key::from_treasury(CHAIN, key.into(), seed)?,
            account,
            cfg,
            genesis: OnceCell::new(),
        })
    }

    /// The treasury's public key (the access key it signs with).
    pub fn public_key(&self) -> PublicKey {
        PublicKey::ED25519(ED25519PublicKey(self.key.public_key()))
    }

    /// The treasury's account id.
    pub fn account_id(&self) -> &AccountId {
        &self.account
    }

    async fn genesis(&self) -> Result<GenesisConstants> {
        self.genesis
            .get_or_try_init(|| async {
                let g = self
                    .rpc
                    .call(
                        methods::any::<std::result::Result<GenesisConstants, serde_json::Value>>(
                            "EXPERIMENTAL_genesis_config",
                            serde_json::Value::Null,
                        ),
                    )
                    .await
                    .map_err(|e| rpc_err("EXPERIMENTAL_genesis_config", e))?;
                if g.epoch_length == 0 || g.transaction_validity_period == 0 {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!(
                            "genesis epoch_length {} / transaction_validity_period {}",
                            g.epoch_length, g.transaction_validity_period
                        ),
                    ));
                }
                Ok(g)
            })
            .await
            .copied()
    }

    /// [`ChainAdapter::preflight`]: the chain id against the treasury account's network
    /// (on mainnet and testnet),
    /// the treasury's access key (it must exist with full access), its balance, and
    /// [`GAS_PER_CALL_TGAS`] at the latest block's gas price as the fee per operation.
    async fn preflight_report(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let id = self
            .rpc
            .call(methods::any::<std::result::Result<GenesisId, serde_json::Value>>(
                "EXPERIMENTAL_genesis_config",
                serde_json::Value::Null,
            ))
            .await
            .map_err(|e| rpc_err("EXPERIMENTAL_genesis_config", e))?
            .chain_id;
        // a localnet or sandbox takes any account name; mainnet and testnet only their own
        let public = id == "mainnet" || id == "testnet";
        let mut checks = vec![match network_of(self.account.as_str()) {
            Some(net) if public && net != id => Check::fail(
                "chain id",
                format!("the node is on {id}, the account {} is a {net} account", self.account),
                format!("point rpc_url at a {net} node, or use a {id} account"),
            ),
            _ => Check::pass("chain id", id),
        }];
        let pk = self.public_key();
        let key = self
            .query(QueryRequest::ViewAccessKey {
                account_id: self.account.clone(),
                public_key: pk.clone(),
            })
            .await;
        let fix = format!("add {pk} to {} as a full-access key", self.account);
        checks.push(match key {
            Ok(QueryResponseKind::AccessKey(ak)) => match ak.permission {
                near_primitives::views::AccessKeyPermissionView::FullAccess => {
                    Check::pass("access key", format!("{pk}: full access, nonce {}", ak.nonce))
                }
                _ => Check::fail("access key", format!("{pk} is a function-call key"), fix),
            },
            Ok(_) => Check::fail("access key", "view_access_key answered something else", fix),
            Err(e) => Check::fail("access key", format!("{pk} on {}: {e}", self.account), fix),
        });
        let balance = match self
            .query(QueryRequest::ViewAccount {
                account_id: self.account.clone(),
            })
            .await
        {
            Ok(QueryResponseKind::ViewAccount(a)) => Some(Amount(a.amount.as_yoctonear())),
            Ok(_) | Err(_) => {
                checks.push(Check::fail(
                    "account",
                    format!("{} does not exist on {}", self.account, self.cfg.rpc_url),
                    "create and fund the treasury account",
                ));
                None
            }
        };
        let head = self.final_block().await?;
        let fee = u128::from(GAS_PER_CALL_TGAS)
            .saturating_mul(1_000_000_000_000)
            .saturating_mul(head.header.gas_price.as_yoctonear());
        Ok(Preflight {
            signer: Some(self.account.to_string()),
            fee_token: None,
            signer_balance: balance,
            fee_per_operation: Some(Amount(fee)),
            checks,
        })
    }

    async fn block(&self, reference: BlockReference) -> Result<near_primitives::views::BlockView> {
        self.rpc
            .call(methods::block::RpcBlockRequest {
                block_reference: reference,
            })
            .await
            .map_err(|e| rpc_err("block", e))
    }

    async fn final_block(&self) -> Result<near_primitives::views::BlockView> {
        self.block(BlockReference::Finality(Finality::Final)).await
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryResponseKind> {
        Ok(self
            .rpc
            .call(methods::query::RpcQueryRequest {
                block_reference: BlockReference::Finality(Finality::Final),
                request,
            })
            .await
            .map_err(|e| rpc_err("query", e))?
            .kind)
    }

    /// A view call of `method` on `contract` with JSON `args`: `Ok(Err(why))` when the
    /// contract cannot answer it as a reference staking pool does (no contract code, no
    /// such method, a panic, an answer of another shape); `Err` for the node's own errors
    /// (transient or not).
    async fn try_view<T: DeserializeOwned>(
        &self,
        contract: &AccountId,
        method: &str,
        args: serde_json::Value,
    ) -> Result<std::result::Result<T, String>> {
        use near_jsonrpc_primitives::types::query::RpcQueryError;
        let what = format!("{contract}.{method}");
        let answer = self
            .rpc
            .call(methods::query::RpcQueryRequest {
                block_reference: BlockReference::Finality(Finality::Final),
                request: QueryRequest::CallFunction {
                    account_id: contract.clone(),
                    method_name: method.to_string(),
                    args: FunctionArgs::from(args.to_string().into_bytes()),
                },
            })
            .await;
        let kind = match answer {
            Ok(r) => r.kind,
            Err(JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
                RpcQueryError::ContractExecutionError { vm_error, .. },
            ))) => return Ok(Err(format!("{what}: {vm_error}"))),
            Err(JsonRpcError::ServerError(JsonRpcServerError::HandlerError(RpcQueryError::NoContractCode {
                ..
            }))) => return Ok(Err(format!("{what}: no contract code"))),
            Err(e) => return Err(rpc_err("query", e)),
        };
        let QueryResponseKind::CallResult(r) = kind else {
            return Err(AdapterError::bad_response(CHAIN, format!("{what}: not a call result")));
        };
        Ok(decode_view(&what, &r.result).map_err(|e| e.to_string()))
    }

    /// Our account in `pool`; `Ok(Err(why))` when `pool` is not a reference staking pool.
    async fn pool_account(&self, pool: &AccountId) -> Result<std::result::Result<PoolAccount, String>> {
        self.try_view(pool, "get_account", serde_json::json!({ "account_id": self.account }))
            .await
    }

    async fn validators_info(&self) -> Result<near_primitives::views::EpochValidatorInfo> {
        self.rpc
            .call(methods::validators::RpcValidatorRequest {
                epoch_reference: EpochReference::Latest,
            })
            .await
            .map_err(|e| rpc_err("validators", e))
    }

    /// The epoch described by `v` (the `validators` answer): its index, its start
    /// dated from the average block time, its length (genesis `epoch_length` blocks).
    async fn epoch_of(&self, v: &near_primitives::views::EpochValidatorInfo) -> Result<EpochInfo> {
        let g = self.genesis().await?;
        let head = self.final_block().await?;
        let nanos = self.block_nanos(&head, v.epoch_start_height).await?;
        let elapsed = head
            .header
            .height
            .saturating_sub(v.epoch_start_height)
            .saturating_mul(nanos);
        Ok(EpochInfo {
            index: v.epoch_height,
            start: block_time(head.header.timestamp_nanosec.saturating_sub(elapsed))?,
            secs: g.epoch_length.saturating_mul(nanos) / 1_000_000_000,
        })
    }

    /// Every pool that may hold our stake, from `v` and the configured extra pools
    /// (bounded by [`MAX_POOLS`]).
    fn pools(&self, v: &near_primitives::views::EpochValidatorInfo) -> Result<Vec<AccountId>> {
        let mut set: BTreeSet<AccountId> = v.current_validators.iter().map(|c| c.account_id.clone()).collect();
        set.extend(v.next_validators.iter().map(|n| n.account_id.clone()));
        for p in &self.cfg.extra_pools {
            set.insert(parse_account("extra pool", p)?);
        }
        Ok(set.into_iter().take(MAX_POOLS).collect())
    }

    /// Average block time of the current epoch, nanoseconds (1 s when unknown).
    async fn block_nanos(&self, head: &near_primitives::views::BlockView, epoch_start_height: u64) -> Result<u64> {
        let blocks = head.header.height.saturating_sub(epoch_start_height);
        if blocks == 0 {
            return Ok(1_000_000_000);
        }
        let start = self
            .block(BlockReference::BlockId(BlockId::Height(epoch_start_height)))
            .await?;
        Ok((head
            .header
            .timestamp_nanosec
            .saturating_sub(start.header.timestamp_nanosec)
            / blocks)
            .max(1))
    }

    /// Signs one function call on `pool`.
    async fn sign_call(
        &self,
        pool: &AccountId,
        method: &str,
        args: serde_json::Value,
        deposit: u128,
    ) -> Result<SignedTx> {
        let public_key = self.public_key();
        let kind = self
            .query(QueryRequest::ViewAccessKey {
                account_id: self.account.clone(),
                public_key: public_key.clone(),
            })
            .await?;
        let QueryResponseKind::AccessKey(ak) = kind else {
            return Err(AdapterError::bad_response(CHAIN, "view_access_key: not an access key"));
        };
        let head = self.final_block().await?;
        let tx = Transaction::V0(TransactionV0 {
            signer_id: self.account.clone(),
            public_key,
            nonce: ak.nonce + 1,
            receiver_id: pool.clone(),
            block_hash: head.header.hash,
            actions: vec![Action::FunctionCall(Box::new(FunctionCallAction {
                method_name: method.to_string(),
                args: args.to_string().into_bytes(),
                gas: near_primitives::gas::Gas::from_teragas(GAS_PER_CALL_TGAS),
                deposit: near_primitives::types::Balance::from_yoctonear(deposit),
            }))],
        });
        let (hash, _) = tx.get_hash_and_size();
        let signature = Signature::ED25519(ed25519_dalek::Signature::from_bytes(
            &self.key.sign(hash.as_ref()).await?,
        ));
        let signed = SignedTransaction::new(signature, tx);
        let bytes = borsh::to_vec(&signed)
            .map_err(|e| AdapterError::Signer(format!("encoding the NEAR transaction failed: {e}")))?;
        Ok(SignedTx {
            tx_id: signed.get_hash().to_string(),
            payload: base64_encode(&bytes),
            valid_until: None,
        })
    }

    /// The signed transaction a journal payload holds (base64 of its borsh), which must
    /// hash to the recorded id.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a payload that is not base64 of a signed transaction
    /// or hashes to another id.
    pub fn decode_payload(tx: &SignedTx) -> Result<SignedTransaction> {
        let bytes =
            base64_decode(&tx.payload).ok_or_else(|| AdapterError::bad_input(CHAIN, "payload is not base64"))?;
        let signed: SignedTransaction = borsh::from_slice(&bytes)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not a signed transaction: {e}")))?;
        if signed.get_hash().to_string() != tx.tx_id {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("payload hashes to {}, not the recorded {}", signed.get_hash(), tx.tx_id),
            ));
        }
        Ok(signed)
    }

    fn pool_id(validator: &str) -> Result<AccountId> {
        parse_account("pool", validator)
    }

    fn check_amount(what: &str, amount: Amount, have: u128) -> Result<()> {
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, format!("{what} of 0 yoctoNEAR")));
        }
        if amount.0 > have {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{what} of {amount} yoctoNEAR: only {have} there"),
            ));
        }
        Ok(())
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[async_trait]
impl ChainAdapter for NearAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "NEAR"
    }

    fn rewards_from_positions(&self) -> bool {
        true
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let epoch_secs = self.epoch().await?.secs;
        Ok(LiquidityModel {
            unbonding_period_secs: epoch_secs.saturating_mul(NUM_EPOCHS_TO_UNLOCK),
            epoch_secs,
            epoch_aligned: true,
            activation_epochs: 1,
            // the pool takes any non-zero deposit
            min_delegation: Amount(1),
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
        let v = self.validators_info().await?;
        self.epoch_of(&v).await
    }

    async fn now(&self) -> Result<Timestamp> {
        block_time(self.final_block().await?.header.timestamp_nanosec)
    }

    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let v = self.validators_info().await?;
        let mut out = Vec::new();
        for c in v.current_validators.into_iter().take(MAX_POOLS) {
            let fee: RewardFeeFraction = match self
                .try_view(&c.account_id, "get_reward_fee_fraction", serde_json::json!({}))
                .await?
            {
                Ok(fee) => fee,
                Err(why) => {
                    // a validator staking on its own account, or a pool of another kind:
                    // nothing softstake can delegate to
                    tracing::warn!(validator = %c.account_id, reason = %why, "validator is not a reference staking pool: skipped");
                    continue;
                }
            };
            if fee.denominator == 0 || fee.numerator > fee.denominator {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    format!("{}: reward fee {}/{}", c.account_id, fee.numerator, fee.denominator),
                ));
            }
            let performance_bps = c
                .num_produced_blocks
                .saturating_mul(10_000)
                .checked_div(c.num_expected_blocks)
                .map_or(10_000, |p| u32::try_from(p).unwrap_or(10_000).min(10_000));
            out.push(ValidatorCandidate {
                id: c.account_id.to_string(),
                name: c.account_id.to_string(),
                commission_bps: u32::try_from(u64::from(fee.numerator) * 10_000 / u64::from(fee.denominator))
                    .unwrap_or(10_000),
                total_stake: yocto(c.stake),
                performance_bps,
                active: !c.is_slashed,
                own_validator: false,
            });
        }
        Ok(out)
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let v = self.validators_info().await?;
        let epoch = self.epoch_of(&v).await?;
        let mut out = Vec::new();
        for pool in self.pools(&v)? {
            let a = match self.pool_account(&pool).await? {
                Ok(a) => a,
                Err(why) if !self.cfg.extra_pools.iter().any(|p| p == pool.as_str()) => {
                    // not a pool (a validator staking on its own account): it holds nothing of ours
                    tracing::warn!(validator = %pool, reason = %why, "validator is not a reference staking pool: skipped");
                    continue;
                }
                // a pool the config names must answer as one
                Err(why) => return Err(AdapterError::bad_response(CHAIN, why)),
            };
            if a.staked_balance > 0 {
                out.push(Position {
                    validator: pool.to_string(),
                    state: StakeState::Active,
                    amount: Amount(a.staked_balance),
                    eta: None,
                    account: None,
                });
            }
            if a.unstaked_balance > 0 {
                out.push(Position {
                    validator: pool.to_string(),
                    state: if a.can_withdraw {
                        StakeState::Withdrawable
                    } else {
                        StakeState::Deactivating
                    },
                    amount: Amount(a.unstaked_balance),
                    // the latest it can be: the lock counts from the last unstake
                    eta: (!a.can_withdraw).then(|| epoch.boundary_after(NUM_EPOCHS_TO_UNLOCK)),
                    account: None,
                });
            }
        }
        Ok(out)
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        self.preflight_report().await
    }

    async fn spendable(&self) -> Result<Amount> {
        let kind = self
            .query(QueryRequest::ViewAccount {
                account_id: self.account.clone(),
            })
            .await?;
        let QueryResponseKind::ViewAccount(a) = kind else {
            return Err(AdapterError::bad_response(CHAIN, "view_account: not an account"));
        };
        let storage = u128::from(a.storage_usage).saturating_mul(STORAGE_YOCTO_PER_BYTE);
        Ok(Amount(
            a.amount
                .as_yoctonear()
                .saturating_sub(storage)
                .saturating_sub(GAS_RESERVE_YOCTO),
        ))
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        Ok(Vec::new())
    }

    /// `deposit_and_stake` with `amount` attached.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a malformed pool or 0; [`AdapterError::InsufficientFunds`]
    /// beyond the spendable balance.
    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let pool = Self::pool_id(validator)?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "delegation of 0 yoctoNEAR"));
        }
        let have = self.spendable().await?;
        AdapterError::check_funds(CHAIN, amount.0, have.0)?;
        self.sign_call(&pool, "deposit_and_stake", serde_json::json!({}), amount.0)
            .await
    }

    /// `unstake {"amount"}`.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for 0 or more than is staked in the pool.
    async fn undelegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let pool = Self::pool_id(validator)?;
        let a = self
            .pool_account(&pool)
            .await?
            .map_err(|why| AdapterError::bad_input(CHAIN, format!("{pool} is not a staking pool: {why}")))?;
        Self::check_amount("unstake", amount, a.staked_balance)?;
        self.sign_call(
            &pool,
            "unstake",
            serde_json::json!({ "amount": amount.0.to_string() }),
            0,
        )
        .await
    }

    /// `withdraw {"amount"}` of an unlocked unstaked balance.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for 0, more than is unstaked, or a balance still locked.
    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let pool = Self::pool_id(validator)?;
        let a = self
            .pool_account(&pool)
            .await?
            .map_err(|why| AdapterError::bad_input(CHAIN, format!("{pool} is not a staking pool: {why}")))?;
        Self::check_amount("withdraw", amount, a.unstaked_balance)?;
        if !a.can_withdraw {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{pool}: the unstaked balance is still locked ({NUM_EPOCHS_TO_UNLOCK} epochs after the last unstake)"),
            ));
        }
        self.sign_call(
            &pool,
            "withdraw",
            serde_json::json!({ "amount": amount.0.to_string() }),
            0,
        )
        .await
    }

    /// NEAR pools compound: there is nothing to claim.
    ///
    /// # Errors
    /// Always [`AdapterError::BadInput`].
    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            format!("{validator}: NEAR staking pools compound rewards; there is no claim"),
        ))
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let signed = Self::decode_payload(tx)?;
        let hash = signed.get_hash();
        let res = self
            .rpc
            .call(methods::send_tx::RpcSendTransactionRequest {
                signed_transaction: signed,
                wait_until: TxExecutionStatus::None,
            })
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) => {
                // the same transaction already known (a retry after a lost reply) is success
                if let Some(RpcTransactionError::InvalidTransaction { .. }) = e.handler_error() {
                    if self.known(hash).await? {
                        return Ok(());
                    }
                    return Err(AdapterError::rejected(CHAIN, format!("{:?}", e.handler_error())));
                }
                Err(rpc_err("send_tx", e))
            }
        }
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let signed = Self::decode_payload(tx)?;
        let res = self
            .rpc
            .call(methods::tx::RpcTransactionStatusRequest {
                transaction_info: TransactionInfo::TransactionId {
                    tx_hash: signed.get_hash(),
                    sender_account_id: self.account.clone(),
                },
                wait_until: TxExecutionStatus::None,
            })
            .await;
        let resp = match res {
            Ok(r) => r,
            Err(e) => {
                if let Some(RpcTransactionError::UnknownTransaction { .. }) = e.handler_error() {
                    return self.unknown_status(&signed).await;
                }
                return Err(rpc_err("tx", e));
            }
        };
        if resp.final_execution_status != TxExecutionStatus::Final {
            return Ok(TxStatus::Pending);
        }
        let Some(outcome) = resp.final_execution_outcome else {
            return Ok(TxStatus::Pending);
        };
        let outcome = match outcome {
            FinalExecutionOutcomeViewEnum::FinalExecutionOutcome(o) => o,
            FinalExecutionOutcomeViewEnum::FinalExecutionOutcomeWithReceipt(o) => o.final_outcome,
        };
        match outcome.status {
            FinalExecutionStatus::SuccessValue(_) => {
                let block = self
                    .block(BlockReference::BlockId(BlockId::Hash(
                        outcome.transaction_outcome.block_hash,
                    )))
                    .await?;
                Ok(TxStatus::Confirmed {
                    at: block_time(block.header.timestamp_nanosec)?,
                })
            }
            FinalExecutionStatus::Failure(err) => Ok(TxStatus::Failed {
                reason: err.to_string(),
            }),
            FinalExecutionStatus::NotStarted | FinalExecutionStatus::Started => Ok(TxStatus::Pending),
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

impl NearAdapter {
    /// Whether the chain knows the transaction `hash` (in a block or its pool).
    async fn known(&self, hash: CryptoHash) -> Result<bool> {
        let res = self
            .rpc
            .call(methods::tx::RpcTransactionStatusRequest {
                transaction_info: TransactionInfo::TransactionId {
                    tx_hash: hash,
                    sender_account_id: self.account.clone(),
                },
                wait_until: TxExecutionStatus::None,
            })
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) => match e.handler_error() {
                Some(RpcTransactionError::UnknownTransaction { .. }) => Ok(false),
                _ => Err(rpc_err("tx", e)),
            },
        }
    }

    /// An unknown transaction can still land while its block hash is within the validity
    /// period (and its nonce unused); after that it never can.
    async fn unknown_status(&self, signed: &SignedTransaction) -> Result<TxStatus> {
        let g = self.genesis().await?;
        let head = self.final_block().await?;
        let reference = self
            .rpc
            .call(methods::block::RpcBlockRequest {
                block_reference: BlockReference::BlockId(BlockId::Hash(*signed.transaction.block_hash())),
            })
            .await;
        let reference = match reference {
            Ok(r) => r,
            // the node never saw it or collected it: far beyond the validity period
            // (nodes keep 5 epochs, the validity period is 1 epoch on mainnet)
            Err(JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
                near_jsonrpc_primitives::types::blocks::RpcBlockError::UnknownBlock { .. },
            ))) => return Ok(TxStatus::Expired),
            // a node or network error says nothing about the transaction: retry later
            Err(e) => return Err(AdapterError::transient(CHAIN, format!("block (reference): {e:?}"))),
        };
        let age = head.header.height.saturating_sub(reference.header.height);
        if age > g.transaction_validity_period {
            return Ok(TxStatus::Expired);
        }
        let kind = self
            .query(QueryRequest::ViewAccessKey {
                account_id: self.account.clone(),
                public_key: self.public_key(),
            })
            .await?;
        if let QueryResponseKind::AccessKey(ak) = kind {
            if ak.nonce >= signed.transaction.nonce().nonce() {
                // its nonce went to another transaction
                return Ok(TxStatus::Expired);
            }
        }
        Ok(TxStatus::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NearConfig {
        NearConfig {
            rpc_url: "http://127.0.0.1:9".into(),
            account_id: "treasury.test.near".into(),
            extra_pools: vec![],
            max_operations_per_epoch: 8,
        }
    }

    #[test]
    fn success_key_from_seed_or_keypair() {
        let seed = SecretBytes::new(vec![7; 32]);
        let a = secret_key(&seed).unwrap();
        let mut pair = vec![7; 32];
        pair.extend_from_slice(a.public_key().key_data());
        let b = secret_key(&SecretBytes::new(pair)).unwrap();
        assert_eq!(a.public_key(), b.public_key());
    }

    #[test]
    fn fail_bad_keys_are_signer_errors() {
        for bad in [vec![1; 31], vec![1; 33], vec![1; 64]] {
            let e = secret_key(&SecretBytes::new(bad)).unwrap_err();
            assert!(matches!(e, AdapterError::Signer(_)), "{e}");
        }
    }

    #[test]
    fn fail_bad_account_ids_are_bad_input() {
        let mut c = cfg();
        c.account_id = "Not An Account".into();
        let e = NearAdapter::new(c, SecretBytes::new(vec![7; 32])).unwrap_err();
        assert!(matches!(e, AdapterError::BadInput { .. }), "{e}");
        let mut c = cfg();
        c.extra_pools = vec!["bad pool!".into()];
        assert!(NearAdapter::new(c, SecretBytes::new(vec![7; 32])).is_err());
        assert!(NearAdapter::pool_id("").is_err());
        assert_eq!(
            NearAdapter::pool_id("pool.poolv1.near").unwrap().as_str(),
            "pool.poolv1.near"
        );
    }

    #[test]
    fn fail_payload_that_is_not_the_recorded_transaction() {
        let e = NearAdapter::decode_payload(&SignedTx {
            tx_id: "x".into(),
            payload: "not base64!".into(),
            valid_until: None,
        })
        .unwrap_err();
        assert!(matches!(e, AdapterError::BadInput { .. }), "{e}");
    }
}

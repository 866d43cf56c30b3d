//! EVM chains through `alloy` (the maintained successor of ethers-rs): the transaction
//! plumbing every EVM adapter shares, and one module per staking protocol.
//!
//! ```text
//!  adapter (bsc: StakeHub / StakeCredit)      EvmClient
//!    delegate(key, validator, amount) ──▶ sign_call(to, value, calldata)
//!                                           nonce   = eth_getTransactionCount(pending)  (from the chain)
//!                                           fees    = EIP-1559 estimate, capped by config
//!                                           gas     = eth_estimateGas × 1.2 (a revert is a Rejected
//!                                                     with the contract's decoded error; nothing is signed)
//!                                         ─▶ SignedTx { tx_id: hash, payload: 0x-hex EIP-2718 bytes }
//!    (sign_calls: several calls at consecutive nonces, e.g. approve then stake; the
//!     operation's id is the last one's hash)
//!    broadcast ──▶ eth_sendRawTransaction (already known / already mined = success)
//!    tx_status ──▶ receipt with ≥ confirmations blocks on top, block hash still canonical
//!                  → Confirmed; reverted → Failed; in the mempool → Pending;
//!                  unknown and its nonce since used by another transaction → Expired;
//!                  unknown otherwise → NotFound (send the same bytes again)
//! ```
//!
//! Nonces are never counted locally: each signature reads the account's pending
//! transaction count from the node, and the journal resolves a submitted transaction
//! (by hash, then by nonce) before anything new is signed, so a restart cannot reuse or
//! skip a nonce. Sources: Ethereum JSON-RPC (`eth_getTransactionCount`,
//! `eth_feeHistory`, `eth_estimateGas`, `eth_sendRawTransaction`,
//! `eth_getTransactionReceipt`), EIP-1559, EIP-2718.

pub mod apechain;
pub mod bsc;
pub mod paid;
pub mod polygon;
pub mod ronin;
pub mod sonic;

/// EVM addresses (alloy's), for callers that name a contract.
pub use alloy::primitives::Address;

use alloy::consensus::{Transaction as _, TxEnvelope};
use alloy::eips::eip2718::{Decodable2718, Encodable2718};
use alloy::eips::BlockNumberOrTag;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Bytes, TxHash, U256};
use alloy::providers::{MulticallError, MulticallItem, Provider, RootProvider};
use alloy::rpc::types::{Filter, Log, TransactionRequest};
use alloy::signers::local::LocalSigner;
use alloy::transports::TransportError;

use softstake_core::{Amount, Timestamp};

use crate::error::{AdapterError, Result};
use crate::signer::TreasuryKey;
use crate::traits::{SignedTx, TxStatus};

/// Most calls aggregated into one Multicall3 `eth_call` ([`EvmClient::batch`]; its
/// calldata stays far below providers' request-size limits).
pub const MULTICALL_BATCH: usize = 256;

/// Default largest block range asked of `eth_getLogs` at once (public endpoints cap it;
/// [`EvmConfig::log_range_blocks`] sets it per RPC).
pub const LOG_CHUNK_BLOCKS: u64 = 5_000;
/// Most `eth_getLogs` chunks read in one call: one page of history (1 000 000 blocks at
/// the default range). Longer history is read a page per sync, each sync continuing
/// where the last stopped.
pub const MAX_LOG_CHUNKS: u64 = 200;

/// The last block of the page of history that starts at `from` and may reach `to`:
/// `to`, or the end of `page_blocks` blocks from `from` when `to` is further.
pub fn page_end(from: u64, to: u64, page_blocks: u64) -> u64 {
    to.min(from.saturating_add(page_blocks.max(1) - 1))
}
/// Gas estimate head-room, percent.
const GAS_HEADROOM_PCT: u64 = 20;
/// Gas one stake operation is budgeted at for fees: the preflight's fee per operation is
/// this at the `maxFeePerGas` cap (StakeHub `delegate` uses about 200 000, Polygon's
/// approve plus `buyVoucherPOL` about 250 000).
pub const OPERATION_GAS_BUDGET: u64 = 300_000;
/// Most transactions one operation signs ([`EvmClient::sign_calls`]).
pub const MAX_BUNDLE: usize = 4;

/// The transactions of a journal payload (comma-separated hex of EIP-2718 envelopes, at
/// most [`MAX_BUNDLE`]), in order, with their hashes and bytes; the last must hash to the
/// recorded id. `chain` names the adapter in errors.
///
/// # Errors
/// [`AdapterError::BadInput`] for too many parts, a part that is not hex of a signed
/// transaction, or a last hash other than `tx.tx_id`.
pub fn decode_payload(chain: &'static str, tx: &SignedTx) -> Result<Vec<(TxHash, TxEnvelope, Vec<u8>)>> {
    let parts: Vec<&str> = tx.payload.split(',').collect();
    if parts.len() > MAX_BUNDLE {
        return Err(AdapterError::bad_input(
            chain,
            format!("payload holds {} transactions, at most {MAX_BUNDLE}", parts.len()),
        ));
    }
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let bytes = alloy::hex::decode(part).map_err(|_| AdapterError::bad_input(chain, "payload is not hex"))?;
        let env = TxEnvelope::decode_2718(&mut bytes.as_slice())
            .map_err(|e| AdapterError::bad_input(chain, format!("payload is not a transaction: {e}")))?;
        out.push((*env.tx_hash(), env, bytes));
    }
    let last = out.last().map(|(h, _, _)| h.to_string()).unwrap_or_default();
    if last != tx.tx_id {
        return Err(AdapterError::bad_input(
            chain,
            format!("payload hashes to {last}, not the recorded {}", tx.tx_id),
        ));
    }
    Ok(out)
}

/// One contract call to sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmCall {
    /// Contract called.
    pub to: Address,
    /// Wei sent with it.
    pub value: U256,
    /// ABI-encoded calldata.
    pub input: Bytes,
    /// Gas limit: `None` estimates it (`eth_estimateGas` + 20 %); a fixed limit is for a
    /// call that can only succeed after an earlier call of the same bundle has landed
    /// (estimating it now would revert).
    pub gas_limit: Option<u64>,
}

impl EvmCall {
    /// A call whose gas is estimated.
    pub fn estimated(to: Address, value: U256, input: Bytes) -> EvmCall {
        EvmCall {
            to,
            value,
            input,
            gas_limit: None,
        }
    }

    fn request(&self, from: Address) -> TransactionRequest {
        TransactionRequest::default()
            .with_from(from)
            .with_to(self.to)
            .with_value(self.value)
            .with_input(self.input.clone())
    }
}

/// Settings shared by every EVM adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvmConfig {
    /// JSON-RPC endpoint (`http://127.0.0.1:8545`, a provider URL).
    pub rpc_url: String,
    /// The chain id transactions are signed for (BSC 56, BSC testnet 97, Polygon 137,
    /// Ethereum 1, Sonic 146, Ronin 2020, ApeChain 33139). A node reporting another id
    /// is refused before anything is signed.
    pub chain_id: u64,
    /// Blocks on top of a receipt's block (its own included) before the journal may mark
    /// the operation confirmed; 1 = mined. Reorg safety grows with it.
    pub confirmations: u64,
    /// Cap on `maxFeePerGas`, wei. While the base fee is above it nothing is signed (a
    /// transient error: the next run tries again).
    pub max_fee_per_gas_wei: u128,
    /// Cap on `maxPriorityFeePerGas` (the tip), wei.
    pub max_priority_fee_per_gas_wei: u128,
    /// Largest number of operations per epoch.
    pub max_operations_per_epoch: u32,
    /// First block of the treasury account's staking history (reward accounting starts
    /// here when no cursor is stored yet).
    pub start_block: u64,
    /// Largest block range one `eth_getLogs` asks for: the RPC's limit
    /// ([`LOG_CHUNK_BLOCKS`] by default; some providers allow less). A sync reads at most
    /// [`MAX_LOG_CHUNKS`] of them and continues from there at the next sync.
    pub log_range_blocks: u64,
}

impl EvmConfig {
    /// Checks the settings (pure: no I/O).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] naming the field: a URL that does not parse, chain id 0,
    /// zero confirmations, a zero fee cap, or a tip cap above the fee cap.
    pub fn validate(&self, chain: &str) -> Result<()> {
        let bad = |m: String| Err(AdapterError::bad_input(chain, m));
        if alloy::transports::http::reqwest::Url::parse(&self.rpc_url).is_err() {
            return bad(format!("rpc_url {:?} is not a URL", self.rpc_url));
        }
        if self.chain_id == 0 {
            return bad("chain_id must be set (56 for BNB Smart Chain)".into());
        }
        if self.confirmations == 0 {
            return bad("confirmations must be at least 1".into());
        }
        if self.log_range_blocks == 0 {
            return bad("log_range_blocks must be at least 1".into());
        }
        if self.max_fee_per_gas_wei == 0 {
            return bad("max_fee_per_gas_wei must be above 0".into());
        }
        if self.max_priority_fee_per_gas_wei > self.max_fee_per_gas_wei {
            return bad(format!(
                "max_priority_fee_per_gas_wei {} is above max_fee_per_gas_wei {}",
                self.max_priority_fee_per_gas_wei, self.max_fee_per_gas_wei
            ));
        }
        Ok(())
    }
}

/// The secp256k1 key behind the treasury's alloy signer: in memory (devnet, testnets) or
/// in a PKCS#11 token (production, feature `pkcs11`).
pub type EvmCredential = crate::secp256k1::Secp256k1Key;

/// A node connection and the treasury's key: signing, sending and following transactions.
pub struct EvmClient {
    chain: &'static str,
    provider: RootProvider,
    signer: LocalSigner<EvmCredential>,
    wallet: EthereumWallet,
    cfg: EvmConfig,
}

impl std::fmt::Debug for EvmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvmClient")
            .field("chain", &self.chain)
            .field("rpc_url", &self.cfg.rpc_url)
            .field("treasury", &self.signer.address())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Maps a JSON-RPC failure: connection problems, rate limits and "header not found" are
/// transient; anything else the node said is a rejection with its message.
pub fn rpc_err(chain: &str, what: &str, e: &TransportError) -> AdapterError {
    let text = e.to_string();
    let retry = match e {
        alloy::transports::RpcError::Transport(k) => k.is_retry_err(),
        other => other.as_error_resp().is_some_and(|p| p.is_retry_err()),
    };
    let transient = retry
        || e.is_transport_error()
        || [
            "429",
            "timeout",
            "timed out",
            "connection",
            "header not found",
            "-32005",
        ]
        .iter()
        .any(|m| text.to_ascii_lowercase().contains(m));
    if transient {
        AdapterError::transient(chain, format!("{what}: {text}"))
    } else {
        AdapterError::rejected(chain, format!("{what}: {text}"))
    }
}

/// Maps a failed contract read (`eth_call`).
pub fn call_err(chain: &str, what: &str, e: alloy::contract::Error) -> AdapterError {
    match e {
        alloy::contract::Error::TransportError(t) => rpc_err(chain, what, &t),
        other => AdapterError::bad_response(chain, format!("{what}: {other}")),
    }
}

/// A 256-bit id derived from a journal idempotency key (`keccak256(key)`): the same
/// key always names the same on-chain request, so a re-signed attempt of an operation
/// that already landed is refused by the contract instead of acting twice (Sonic SFC
/// `wrID`: `RequestExists`).
pub fn key_id(key: &str) -> U256 {
    U256::from_be_bytes(alloy::primitives::keccak256(key.as_bytes()).0)
}

/// Parses a stored reward cursor of type `T` (JSON; `None` or empty: nothing accounted
/// yet).
///
/// # Errors
/// [`AdapterError::BadInput`] when the text is not a `T`.
pub fn parse_cursor<T: serde::de::DeserializeOwned>(chain: &str, cursor: Option<&str>) -> Result<Option<T>> {
    match cursor {
        None | Some("") => Ok(None),
        Some(c) => serde_json::from_str(c)
            .map(Some)
            .map_err(|e| AdapterError::bad_input(chain, format!("bad rewards cursor {c:?}: {e}"))),
    }
}

/// A 256-bit chain number that must fit in `u64` (ids, epochs, times).
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` when it does not.
pub fn to_u64(chain: &str, what: &str, v: U256) -> Result<u64> {
    u64::try_from(v).map_err(|_| AdapterError::bad_response(chain, format!("{what} {v} does not fit in u64")))
}

/// A validator named by a positive decimal id (Sonic SFC and Polygon StakeManager
/// validator ids); `registry` names what issues the ids, for the error.
///
/// # Errors
/// [`AdapterError::BadInput`] for anything else (0, negative, hex, names).
pub fn validator_index(chain: &str, validator: &str, registry: &str) -> Result<u64> {
    validator.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| {
        AdapterError::bad_input(
            chain,
            format!("validator {validator:?} is not a {registry} validator id"),
        )
    })
}

/// A 256-bit chain amount as base units.
///
/// # Errors
/// [`AdapterError::BadResponse`] when it does not fit in `u128`.
pub fn to_amount(chain: &str, what: &str, v: U256) -> Result<Amount> {
    u128::try_from(v)
        .map(Amount)
        .map_err(|_| AdapterError::bad_response(chain, format!("{what}: {v} wei does not fit in u128")))
}

impl EvmClient {
    /// A client for the treasury key `key`: a 32-byte secp256k1 secret (hex in a key file
    /// or variable) or a secp256k1 key pair in a PKCS#11 token.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for invalid settings; [`AdapterError::Signer`] when the
    /// key is not a valid 32-byte secp256k1 secret or the HSM key is not secp256k1.
    pub fn new(chain: &'static str, cfg: EvmConfig, key: impl Into<TreasuryKey>) -> Result<EvmClient> {
        cfg.validate(chain)?;
        let credential = EvmCredential::from_treasury(chain, key.into())?;
        let address = alloy::primitives::Address::from_public_key(&credential.verifying_key());
        let signer = LocalSigner::new_with_credential(credential, address, None);
        let url = alloy::transports::http::reqwest::Url::parse(&cfg.rpc_url)
            .map_err(|e| AdapterError::bad_input(chain, format!("rpc_url: {e}")))?;
        Ok(EvmClient {
            chain,
            provider: RootProvider::new_http(url),
            wallet: EthereumWallet::from(signer.clone()),
            signer,
            cfg,
        })
    }

    /// The treasury's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Signs a 32-byte digest with the treasury key (an EIP-712 hash such as an EIP-2612
    /// permit): `(v, r, s)` with `v` = 27 or 28.
    ///
    /// # Errors
    /// [`AdapterError::Signer`] when signing fails.
    pub fn sign_digest(
        &self,
        digest: &alloy::primitives::B256,
    ) -> Result<(u8, alloy::primitives::B256, alloy::primitives::B256)> {
        use alloy::signers::SignerSync;
        let sig = self
            .signer
            .sign_hash_sync(digest)
            .map_err(|e| AdapterError::Signer(format!("{} digest: {e}", self.chain)))?;
        Ok((
            27 + u8::from(sig.v()),
            alloy::primitives::B256::from(sig.r()),
            alloy::primitives::B256::from(sig.s()),
        ))
    }

    /// The node connection (reads through `sol!` bindings).
    pub fn provider(&self) -> &RootProvider {
        &self.provider
    }

    /// The settings.
    pub fn config(&self) -> &EvmConfig {
        &self.cfg
    }

    /// `items` (calls of one function, `what` names it) through Multicall3 at block `at`
    /// (alloy's `MulticallBuilder`, `aggregate`, at the canonical
    /// [`alloy::providers::MULTICALL3_ADDRESS`]), [`MULTICALL_BATCH`] per `eth_call`;
    /// their returns in order. A read that fans out per validator costs one request per
    /// function and batch instead of one per validator.
    ///
    /// # Errors
    /// Transient for transport errors; [`AdapterError::BadResponse`] when a call reverts
    /// (`aggregate` needs all to succeed) or a return does not decode.
    pub async fn batch<D, I>(&self, what: &str, items: Vec<I>, at: alloy::eips::BlockId) -> Result<Vec<D::Return>>
    where
        D: alloy::sol_types::SolCall + 'static,
        I: MulticallItem<Decoder = D>,
    {
        let mut out = Vec::with_capacity(items.len());
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let mut mc = self.provider.multicall().dynamic::<D>().block(at);
            for item in items.by_ref().take(MULTICALL_BATCH) {
                mc = mc.add_dynamic(item);
            }
            out.extend(mc.aggregate().await.map_err(|e| match e {
                MulticallError::TransportError(t) => self.err(what, &t),
                other => AdapterError::bad_response(self.chain, format!("{what} through Multicall3: {other}")),
            })?);
        }
        Ok(out)
    }

    fn err(&self, what: &str, e: &TransportError) -> AdapterError {
        rpc_err(self.chain, what, e)
    }

    async fn latest_block(&self) -> Result<alloy::rpc::types::Block> {
        self.provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(|e| self.err("eth_getBlockByNumber(latest)", &e))?
            .ok_or_else(|| AdapterError::transient(self.chain, "the node has no latest block"))
    }

    /// The newest block's number and time.
    pub async fn head(&self) -> Result<(u64, Timestamp)> {
        let block = self.latest_block().await?;
        let at = Timestamp::from_unix_secs(block.header.timestamp as i64)
            .map_err(|e| AdapterError::bad_response(self.chain, format!("block time: {e}")))?;
        Ok((block.header.number, at))
    }

    /// The planning epoch of a chain without epochs: the UTC day of the latest block,
    /// reported with `secs` as its length (a day, or 0 for "no epochs").
    ///
    /// # Errors
    /// Transport errors as in [`rpc_err`]; a block time out of range as
    /// [`AdapterError::BadResponse`].
    pub async fn utc_day_epoch(&self, secs: u64) -> Result<crate::traits::EpochInfo> {
        let (_, now) = self.head().await?;
        crate::traits::utc_day_epoch(self.chain, now, secs)
    }

    /// The time of block `n`.
    pub async fn block_time(&self, n: u64) -> Result<Timestamp> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Number(n))
            .await
            .map_err(|e| self.err("eth_getBlockByNumber", &e))?
            .ok_or_else(|| AdapterError::transient(self.chain, format!("block {n} not found")))?;
        Timestamp::from_unix_secs(block.header.timestamp as i64)
            .map_err(|e| AdapterError::bad_response(self.chain, format!("block {n} time: {e}")))
    }

    /// What a delegation of the native coin may use: the balance less a gas reserve of
    /// 3 000 000 gas at the fee cap (a few hundred transactions), wei.
    ///
    /// # Errors
    /// As [`EvmClient::balance`]; a balance beyond `u128` as [`AdapterError::BadResponse`].
    pub async fn spendable_native(&self) -> Result<Amount> {
        let bal = to_amount(self.chain, "balance", self.balance().await?)?;
        let reserve = self
            .cfg
            .max_fee_per_gas_wei
            .saturating_mul(u128::from(OPERATION_GAS_BUDGET) * 10);
        Ok(Amount(bal.0.saturating_sub(reserve)))
    }

    /// Preflight for `softstake doctor`: the node's chain id against the config, contract
    /// code at each of `contracts` (name, address), and, when `scans_logs`, whether the
    /// RPC serves `eth_getLogs` over `log_range_blocks` at the head and back at
    /// `start_block`, and how far `start_block` lies behind the head; with the treasury's
    /// address, balance and [`OPERATION_GAS_BUDGET`] at the fee cap as the fee per
    /// operation. Reads only.
    ///
    /// # Errors
    /// Transport errors as in [`rpc_err`] when the node cannot be read at all.
    pub async fn preflight(
        &self,
        contracts: &[(&str, Address)],
        scans_logs: bool,
    ) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let mut checks = Vec::new();
        let id = self
            .provider
            .get_chain_id()
            .await
            .map_err(|e| self.err("eth_chainId", &e))?;
        checks.push(if id == self.cfg.chain_id {
            Check::pass("chain id", format!("{id}"))
        } else {
            Check::fail(
                "chain id",
                format!(
                    "the node at {} is chain {id}, the config says {}",
                    self.cfg.rpc_url, self.cfg.chain_id
                ),
                format!(
                    "point rpc_url at chain {} or set evm.chain_id = {id}",
                    self.cfg.chain_id
                ),
            )
        });
        for (name, address) in contracts {
            let code = self
                .provider
                .get_code_at(*address)
                .await
                .map_err(|e| self.err("eth_getCode", &e))?;
            checks.push(if code.is_empty() {
                Check::fail(
                    format!("contract {name}"),
                    format!("no code at {address} on chain {id}"),
                    "set evm.staking_contract to the contract's address on this network",
                )
            } else {
                Check::pass(
                    format!("contract {name}"),
                    format!("{} bytes of code at {address}", code.len()),
                )
            });
        }
        if scans_logs {
            checks.extend(self.history_checks(contracts.first().map(|c| c.1)).await?);
        }
        let fee = self
            .cfg
            .max_fee_per_gas_wei
            .saturating_mul(u128::from(OPERATION_GAS_BUDGET));
        Ok(Preflight {
            signer: Some(self.address().to_string()),
            fee_token: None,
            signer_balance: Some(to_amount(self.chain, "balance", self.balance().await?)?),
            fee_per_operation: Some(Amount(fee)),
            checks,
        })
    }

    /// The log-history lines of [`EvmClient::preflight`].
    async fn history_checks(&self, address: Option<Address>) -> Result<Vec<crate::preflight::Check>> {
        use crate::preflight::Check;
        let (head, _) = self.head().await?;
        let mut filter = Filter::new();
        if let Some(a) = address {
            filter = filter.address(a);
        }
        let probe = |from: u64, to: u64| {
            let f = filter.clone().from_block(from).to_block(to);
            async move { self.provider.get_logs(&f).await }
        };
        let mut out = Vec::new();
        let range = self.cfg.log_range_blocks.max(1);
        let lo = head.saturating_sub(range - 1);
        out.push(match probe(lo, head).await {
            Ok(_) => Check::pass("log range", format!("eth_getLogs over {range} blocks ({lo}..={head})")),
            Err(e) => Check::fail(
                "log range",
                format!("eth_getLogs over {range} blocks refused: {e}"),
                "lower evm.log_range_blocks to the RPC's limit, or use an RPC that serves it",
            ),
        });
        let start = self.cfg.start_block;
        let behind = head.saturating_sub(start);
        let per_sync = self.page_blocks();
        out.push(if start == 0 && !crate::preflight::is_loopback_url(&self.cfg.rpc_url) {
            Check::fail(
                "start block",
                "start_block is 0 on a remote network: the first sync would scan the whole chain",
                format!("set evm.start_block to the block of the treasury's first stake operation (head is {head})"),
            )
        } else if behind > per_sync {
            Check::warn(
                "start block",
                format!(
                    "start_block {start} is {behind} blocks behind the head: the first reward syncs take {} passes",
                    behind.div_ceil(per_sync)
                ),
                "set evm.start_block to the block of the treasury's first stake operation",
            )
        } else {
            Check::pass("start block", format!("{start} ({behind} blocks behind the head)"))
        });
        if start < lo {
            out.push(match probe(start, start.saturating_add(range - 1).min(head)).await {
                Ok(_) => Check::pass("log history", format!("logs served back to start_block {start}")),
                Err(e) => Check::fail(
                    "log history",
                    format!("eth_getLogs at start_block {start} refused: {e}"),
                    "use an RPC endpoint that keeps logs back to start_block (an archive or full node)",
                ),
            });
        }
        Ok(out)
    }

    /// The treasury's balance, wei.
    pub async fn balance(&self) -> Result<U256> {
        self.provider
            .get_balance(self.address())
            .await
            .map_err(|e| self.err("eth_getBalance", &e))
    }

    /// Blocks one page of history covers: `log_range_blocks` × [`MAX_LOG_CHUNKS`].
    pub fn page_blocks(&self) -> u64 {
        self.cfg.log_range_blocks.saturating_mul(MAX_LOG_CHUNKS)
    }

    /// Logs matching `filter` in `[from, to]`, read in chunks of `log_range_blocks`.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] when the range is longer than one page
    /// ([`EvmClient::page_blocks`]; callers page with [`EvmClient::confirmed_page`] or
    /// [`page_end`]); transport errors as in [`rpc_err`].
    pub async fn logs(&self, filter: &Filter, from: u64, to: u64) -> Result<Vec<Log>> {
        if to < from {
            return Ok(Vec::new());
        }
        let range = self.cfg.log_range_blocks.max(1);
        let chunks = (to - from) / range + 1;
        if chunks > MAX_LOG_CHUNKS {
            return Err(AdapterError::bad_input(
                self.chain,
                format!(
                    "{} blocks of history to scan (from {from}) in one call: more than a page of {}",
                    to - from + 1,
                    self.page_blocks()
                ),
            ));
        }
        let mut out = Vec::new();
        for i in 0..chunks {
            let lo = from + i * range;
            let hi = (lo + range - 1).min(to);
            let f = filter.clone().from_block(lo).to_block(hi);
            out.extend(
                self.provider
                    .get_logs(&f)
                    .await
                    .map_err(|e| self.err("eth_getLogs", &e))?,
            );
        }
        Ok(out)
    }

    /// The next page of confirmed history after `after` (or from `start_block`):
    /// `(from, to, complete)`, where `to` stops after one page ([`page_end`]) and
    /// `complete` says it reached the newest confirmed block. `None` when there is
    /// nothing new. A sync that accounts the page and stores `to` in its cursor always
    /// makes progress, however long the history (a first sync, an outage).
    ///
    /// # Errors
    /// Transport errors as in [`rpc_err`].
    pub async fn confirmed_page(&self, after: Option<u64>) -> Result<Option<(u64, u64, bool)>> {
        let Some((from, head)) = self.confirmed_range(after).await? else {
            return Ok(None);
        };
        let to = page_end(from, head, self.page_blocks());
        Ok(Some((from, to, to == head)))
    }

    /// The block range a reward sync may account: from `after + 1` (or `start_block`
    /// when nothing was accounted yet) to the newest block with `confirmations` blocks on
    /// it, its own included; `None` when that range is empty.
    ///
    /// # Errors
    /// Transport errors as in [`rpc_err`].
    pub async fn confirmed_range(&self, after: Option<u64>) -> Result<Option<(u64, u64)>> {
        let (head, _) = self.head().await?;
        let to = head.saturating_sub(self.cfg.confirmations - 1);
        let from = after.map_or(self.cfg.start_block, |b| b + 1);
        Ok((from <= to).then_some((from, to)))
    }

    async fn check_chain_id(&self) -> Result<()> {
        let id = self
            .provider
            .get_chain_id()
            .await
            .map_err(|e| self.err("eth_chainId", &e))?;
        if id != self.cfg.chain_id {
            return Err(AdapterError::bad_input(
                self.chain,
                format!(
                    "the node at {} is chain {id}, the config says {}: refusing to sign",
                    self.cfg.rpc_url, self.cfg.chain_id
                ),
            ));
        }
        Ok(())
    }

    /// EIP-1559 fees within the caps.
    async fn fees(&self) -> Result<(u128, u128)> {
        let block = self.latest_block().await?;
        let base = u128::from(block.header.base_fee_per_gas.unwrap_or(0));
        if base > self.cfg.max_fee_per_gas_wei {
            return Err(AdapterError::transient(
                self.chain,
                format!(
                    "base fee {base} wei is above the cap max_fee_per_gas_wei {}: waiting",
                    self.cfg.max_fee_per_gas_wei
                ),
            ));
        }
        let est = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(|e| self.err("eth_feeHistory", &e))?;
        let max_fee = est.max_fee_per_gas.min(self.cfg.max_fee_per_gas_wei).max(base);
        let tip = est
            .max_priority_fee_per_gas
            .min(self.cfg.max_priority_fee_per_gas_wei)
            .min(max_fee - base);
        Ok((max_fee, tip))
    }

    /// Builds and signs a call of `to` with `value` wei and `input`; sends nothing.
    /// `decode_revert` names a contract's custom error from its revert data (`Error(string)`
    /// and `Panic(uint256)` reverts are named without it).
    ///
    /// # Errors
    /// [`AdapterError::InsufficientFunds`] when the balance cannot pay `value` plus the
    /// fee cap; [`AdapterError::Rejected`] when the call reverts in estimation (with the
    /// decoded error); [`AdapterError::BadInput`] on a chain id mismatch; transient
    /// errors as in [`rpc_err`].
    pub async fn sign_call(
        &self,
        to: Address,
        value: U256,
        input: Bytes,
        decode_revert: fn(&[u8]) -> Option<String>,
    ) -> Result<SignedTx> {
        self.sign_calls(&[EvmCall::estimated(to, value, input)], decode_revert)
            .await
    }

    /// Builds and signs `calls` as consecutive transactions (nonces `n`, `n + 1`, …, `n`
    /// read from the chain), for an operation that needs a preparatory transaction first
    /// (an ERC-20 `approve` before a staking pool pulls the tokens). The result is one
    /// [`SignedTx`]: its id is the **last** transaction's hash (the one whose receipt
    /// decides the operation), its payload every transaction in order, comma-separated.
    /// Sends nothing.
    ///
    /// # Errors
    /// As [`EvmClient::sign_call`], for the sum of the calls' values and fee caps;
    /// [`AdapterError::BadInput`] for an empty list or more than [`MAX_BUNDLE`] calls.
    pub async fn sign_calls(&self, calls: &[EvmCall], decode_revert: fn(&[u8]) -> Option<String>) -> Result<SignedTx> {
        if calls.is_empty() || calls.len() > MAX_BUNDLE {
            return Err(AdapterError::bad_input(
                self.chain,
                format!("an operation signs 1 to {MAX_BUNDLE} transactions, not {}", calls.len()),
            ));
        }
        self.check_chain_id().await?;
        let from = self.address();
        let (max_fee, tip) = self.fees().await?;
        let mut gas = Vec::with_capacity(calls.len());
        let mut need = U256::ZERO;
        for c in calls {
            let g = match c.gas_limit {
                Some(g) => g,
                None => self.estimate(c, decode_revert).await?,
            };
            need = need
                .saturating_add(c.value)
                .saturating_add(U256::from(g) * U256::from(max_fee));
            gas.push(g);
        }
        let have = self.balance().await?;
        if have < need {
            return Err(AdapterError::InsufficientFunds {
                chain: self.chain.to_string(),
                needed: u128::try_from(need).unwrap_or(u128::MAX),
                available: u128::try_from(have).unwrap_or(u128::MAX),
            });
        }
        let first_nonce = self
            .provider
            .get_transaction_count(from)
            .pending()
            .await
            .map_err(|e| self.err("eth_getTransactionCount(pending)", &e))?;
        let mut raw = Vec::with_capacity(calls.len());
        let mut last_hash = String::new();
        for (i, (c, g)) in calls.iter().zip(gas).enumerate() {
            let req = c
                .request(from)
                .with_nonce(first_nonce + i as u64)
                .with_chain_id(self.cfg.chain_id)
                .with_gas_limit(g)
                .with_max_fee_per_gas(max_fee)
                .with_max_priority_fee_per_gas(tip);
            let envelope: TxEnvelope = req
                .build(&self.wallet)
                .await
                .map_err(|e| AdapterError::Signer(format!("signing the {} transaction failed: {e}", self.chain)))?;
            last_hash = envelope.tx_hash().to_string();
            raw.push(alloy::hex::encode_prefixed(envelope.encoded_2718()));
        }
        Ok(SignedTx {
            tx_id: last_hash,
            payload: raw.join(","),
            valid_until: None,
        })
    }

    /// `eth_estimateGas` for one call, with head-room; a revert is a [`AdapterError::Rejected`]
    /// naming the error.
    async fn estimate(&self, c: &EvmCall, decode_revert: fn(&[u8]) -> Option<String>) -> Result<u64> {
        match self.provider.estimate_gas(c.request(self.address())).await {
            Ok(g) => Ok(g.saturating_mul(100 + GAS_HEADROOM_PCT) / 100),
            Err(e) => {
                if let Some(data) = e.as_error_resp().and_then(|p| p.as_revert_data()) {
                    // the contract's custom error, else a require string / panic code
                    let name = decode_revert(&data)
                        .or_else(|| alloy::sol_types::decode_revert_reason(&data))
                        .unwrap_or_else(|| format!("revert data {data}"));
                    return Err(AdapterError::rejected(self.chain, format!("the call reverts: {name}")));
                }
                if e.to_string().to_ascii_lowercase().contains("insufficient funds") {
                    let have = self.balance().await?;
                    return Err(AdapterError::InsufficientFunds {
                        chain: self.chain.to_string(),
                        needed: u128::try_from(c.value).unwrap_or(u128::MAX),
                        available: u128::try_from(have).unwrap_or(u128::MAX),
                    });
                }
                Err(self.err("eth_estimateGas", &e))
            }
        }
    }

    fn decode(&self, tx: &SignedTx) -> Result<Vec<(TxHash, TxEnvelope, Vec<u8>)>> {
        decode_payload(self.chain, tx)
    }

    async fn known(&self, hash: TxHash) -> Result<bool> {
        Ok(self
            .provider
            .get_transaction_by_hash(hash)
            .await
            .map_err(|e| self.err("eth_getTransactionByHash", &e))?
            .is_some())
    }

    /// Sends the signed bytes; a node that already has them (mempool or chain) is success.
    ///
    /// # Errors
    /// [`AdapterError::Rejected`] with the node's message (e.g. a nonce used by another
    /// transaction); transient errors as in [`rpc_err`].
    pub async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        for (hash, _, bytes) in self.decode(tx)? {
            if let Err(e) = self.provider.send_raw_transaction(&bytes).await {
                if !self.known(hash).await? {
                    return Err(self.err("eth_sendRawTransaction", &e));
                }
            }
        }
        Ok(())
    }

    /// Where a signed transaction stands (see the module docs).
    ///
    /// # Errors
    /// Transient errors as in [`rpc_err`]; [`AdapterError::BadInput`] for a payload
    /// that is not the recorded transaction.
    pub async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let (hash, env, _) = self
            .decode(tx)?
            .pop()
            .ok_or_else(|| AdapterError::bad_input(self.chain, "empty payload"))?;
        let receipt = self
            .provider
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| self.err("eth_getTransactionReceipt", &e))?;
        if let Some(r) = receipt {
            let Some(n) = r.block_number else {
                return Ok(TxStatus::Pending);
            };
            let (head, _) = self.head().await?;
            if head.saturating_sub(n) + 1 < self.cfg.confirmations {
                return Ok(TxStatus::Pending);
            }
            let block = self
                .provider
                .get_block_by_number(BlockNumberOrTag::Number(n))
                .await
                .map_err(|e| self.err("eth_getBlockByNumber", &e))?;
            let Some(block) = block.filter(|b| Some(b.header.hash) == r.block_hash) else {
                // reorged out: its receipt will move or vanish
                return Ok(TxStatus::Pending);
            };
            if !r.status() {
                return Ok(TxStatus::Failed {
                    reason: format!("reverted in block {n} (gas used {})", r.gas_used),
                });
            }
            let at = Timestamp::from_unix_secs(block.header.timestamp as i64)
                .map_err(|e| AdapterError::bad_response(self.chain, format!("block {n} time: {e}")))?;
            return Ok(TxStatus::Confirmed { at });
        }
        if self.known(hash).await? {
            return Ok(TxStatus::Pending);
        }
        let from = self.address();
        let used = self
            .provider
            .get_transaction_count(from)
            .latest()
            .await
            .map_err(|e| self.err("eth_getTransactionCount(latest)", &e))?;
        Ok(if env.nonce() < used {
            TxStatus::Expired
        } else {
            TxStatus::NotFound
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::SecretBytes;

    fn cfg() -> EvmConfig {
        EvmConfig {
            rpc_url: "http://127.0.0.1:8545".into(),
            chain_id: 56,
            confirmations: 3,
            max_fee_per_gas_wei: 100_000_000_000,
            max_priority_fee_per_gas_wei: 2_000_000_000,
            max_operations_per_epoch: 32,
            start_block: 0,
            log_range_blocks: LOG_CHUNK_BLOCKS,
        }
    }

    #[test]
    fn success_valid_config() {
        assert_eq!(cfg().validate("bsc"), Ok(()));
    }

    #[test]
    fn fail_config_names_the_field() {
        type Edit = fn(&mut EvmConfig);
        let cases: [(Edit, &str); 6] = [
            (|c| c.rpc_url = "not a url".into(), "rpc_url"),
            (|c| c.log_range_blocks = 0, "log_range_blocks"),
            (|c| c.chain_id = 0, "chain_id"),
            (|c| c.confirmations = 0, "confirmations"),
            (|c| c.max_fee_per_gas_wei = 0, "max_fee_per_gas_wei"),
            (
                |c| c.max_priority_fee_per_gas_wei = c.max_fee_per_gas_wei + 1,
                "max_priority_fee_per_gas_wei",
            ),
        ];
        for (edit, field) in cases {
            let mut c = cfg();
            edit(&mut c);
            let e = c.validate("bsc").unwrap_err();
            assert!(
                matches!(e, AdapterError::BadInput { .. }) && e.to_string().contains(field),
                "{e}"
            );
        }
    }

    #[test]
    fn success_pages_end_within_one_page_and_at_the_head() {
        assert_eq!(page_end(100, 150, 1_000), 150, "the head within the page");
        assert_eq!(page_end(100, 5_000, 1_000), 1_099, "one page of 1 000 blocks");
        assert_eq!(page_end(u64::MAX - 5, u64::MAX, 1_000), u64::MAX, "no overflow");
        assert_eq!(page_end(7, 9, 0), 7, "a page is at least one block");
        // consecutive pages cover the whole range once
        let (mut from, mut seen) = (10u64, 0u64);
        while from <= 12_345 {
            let to = page_end(from, 12_345, 1_000);
            seen += to - from + 1;
            from = to + 1;
        }
        assert_eq!(seen, 12_345 - 10 + 1);
    }

    #[test]
    fn fail_bad_key_is_a_signer_error_without_the_key() {
        let secret = [0u8; 32];
        let e = EvmClient::new("bsc", cfg(), SecretBytes::new(secret.to_vec())).unwrap_err();
        assert!(matches!(e, AdapterError::Signer(_)), "{e}");
        let short = EvmClient::new("bsc", cfg(), SecretBytes::new(vec![7u8; 31])).unwrap_err();
        assert!(!short.to_string().contains("0707"), "{short}");
    }

    #[test]
    fn fail_amount_beyond_u128_is_a_bad_response() {
        assert_eq!(to_amount("bsc", "x", U256::from(5u8)), Ok(Amount(5)));
        let e = to_amount("bsc", "balance", U256::MAX).unwrap_err();
        assert!(matches!(e, AdapterError::BadResponse { .. }), "{e}");
    }

    #[tokio::test]
    async fn fail_payload_that_is_not_the_recorded_transaction() {
        let key = SecretBytes::new(vec![1u8; 32]);
        let client = EvmClient::new("bsc", cfg(), &key).unwrap();
        let tx = SignedTx {
            tx_id: "0x00".into(),
            payload: "zz".into(),
            valid_until: None,
        };
        let e = client.broadcast(&tx).await.unwrap_err();
        assert!(matches!(e, AdapterError::BadInput { .. }), "{e}");
    }
}

//! Cosmos SDK staking (Cosmos Hub, `uatom`): `x/staking` and `x/distribution` messages
//! built and signed here with cosmrs (`TxRaw`, SIGN_MODE_DIRECT, secp256k1), sent with
//! CometBFT's `broadcast_tx_sync`, and every read over the node's gRPC services
//! (cosmos-sdk-proto clients).
//!
//! ```text
//!  delegate    MsgDelegate                   (pays out the pending reward of that validator)
//!  undelegate  MsgUndelegate                 (an unbonding entry for unbonding_time, 21 d on
//!                                             the Hub; at most max_entries (7) per validator)
//!  withdraw    nothing to send: x/staking's EndBlocker pays a matured entry back by itself
//!              (ChainAdapter::unbonding_returns_itself); the operation books the return once
//!              the chain shows no matured entry left for the validator
//!  claim       MsgWithdrawDelegatorReward, one validator at a time
//!  rewards     our transactions (tx service GetTxsEvent, message.sender = us): every
//!              `withdraw_rewards` event, claims and the payouts delegation changes trigger
//!  gas         each transaction is signed once as a draft at the gas cap (gas_per_message
//!              × messages) and simulated (tx service Simulate); the real one carries the
//!              simulated gas × 1.3, refused when above the cap; a failing simulation is a
//!              rejection with the chain's reason, nothing sent
//!  status      GetTx(hash): code 0 confirmed, other codes failed; unknown before the body's
//!              timeout_height: not found (it can still land, or the tx index lags or is
//!              off); past it: expired if the account's sequence never passed the
//!              transaction's, else searched in the blocks it could have landed in
//!              (CometBFT block + block_results, which need no tx index): found → its
//!              result, absent → expired
//! ```
//!
//! Chain constants come from the chain: `unbonding_time`, `max_entries` and `bond_denom`
//! from the staking module's Params, the chain id from the latest block header, account
//! number and sequence from the auth module. Operations of one account must run one at a
//! time (each signs the account's current sequence).
//!
//! Sources: cosmos-sdk `x/staking` (msg_server.go, keeper/delegation.go `Undelegate`,
//! `HasMaxUnbondingDelegationEntries`, EndBlocker `CompleteUnbonding`), `x/distribution`
//! (keeper/delegation.go `withdrawDelegationRewards`, event `withdraw_rewards`), `x/auth`
//! ante handlers (sequence, signature, fee, timeout height); docs.cosmos.network "Staking"
//! and "Distribution"; Cosmos Hub `gaiad q staking params`. Amounts are `uatom`
//! (1 ATOM = 10^6 uatom).

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use base64::Engine as _;
use cosmos_sdk_proto::cosmos::auth::v1beta1 as auth;
use cosmos_sdk_proto::cosmos::bank::v1beta1 as bank;
use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1 as cmt;
use cosmos_sdk_proto::cosmos::distribution::v1beta1 as distr;
use cosmos_sdk_proto::cosmos::staking::v1beta1 as staking;
use cosmos_sdk_proto::cosmos::tx::v1beta1 as txpb;
use cosmos_sdk_proto::prost::Message;
use cosmrs::crypto::secp256k1::SigningKey;
use cosmrs::tx::{Body, Fee, Msg, SignDoc, SignerInfo};
use cosmrs::{AccountId, Coin, Denom};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tonic_cosmos::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_cosmos::{Code, Status};

use softstake_core::{Amount, Timestamp};

use crate::error::{AdapterError, Result};
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    claimed_records, utc_day_epoch, ChainAdapter, ClaimSums, EpochInfo, LiquidityModel, Position, RewardsPage,
    SignedTx, StakeState, TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "cosmos";
/// `sdk.Dec` (LegacyDec) values travel as integers scaled by 10^18.
pub const DEC_SCALE: u128 = 1_000_000_000_000_000_000;
/// Most validators, delegations or unbondings read per page.
const PAGE: u64 = 200;
/// Most pages read per listing (bounds the loops).
const MAX_PAGES: usize = 20;
/// Most transactions read per `rewards_since` page.
const HISTORY_PAGE: u64 = 100;
/// Most history pages read per `rewards_since` (the cursor continues).
const MAX_HISTORY_PAGES: u64 = 50;
/// Seconds in the UTC day used as the operations budget epoch (the chain has no epochs).
const DAY_SECS: u64 = 86_400;
/// The tx id prefix of a withdrawal, which sends nothing (see the module docs).
const RETURNED: &str = "returned:";

/// Settings of the Cosmos adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosmosConfig {
    /// The node's gRPC endpoint (`http://127.0.0.1:9090`, a provider's gRPC URL).
    pub grpc_url: String,
    /// The node's CometBFT RPC endpoint, for `broadcast_tx_sync` (`http://127.0.0.1:26657`).
    pub rpc_url: String,
    /// The chain id the key signs for (`cosmoshub-4`, `theta-testnet-001`); the adapter
    /// refuses a node that reports another one.
    pub chain_id: String,
    /// Bech32 prefix of account addresses (`cosmos`).
    pub account_prefix: String,
    /// Gas cap per message: a transaction's gas is what `Simulate` reports times
    /// [`GAS_MARGIN_NUMERATOR`] / [`GAS_MARGIN_DENOMINATOR`], and it is refused (nothing
    /// signed) when that is above this times its messages.
    pub gas_per_message: u64,
    /// Gas price as a fraction, base units per gas: fee = ceil(gas × numerator / denominator)
    /// (the Hub's minimum is 0.005 uatom = 5/1000).
    pub gas_price_numerator: u64,
    /// See `gas_price_numerator`; not zero.
    pub gas_price_denominator: u64,
    /// Blocks a signed transaction stays valid (`timeout_height` = height + this).
    pub timeout_blocks: u64,
    /// Largest number of operations sent per epoch (a UTC day).
    pub max_operations_per_epoch: u32,
}

/// Most blocks searched for a transaction past its timeout height whose sequence was
/// used while the tx index does not show it.
pub const MAX_BLOCK_SEARCH: u64 = 1_000;

/// Gas margin over the simulated gas, as a fraction (1.3: cosmjs's and Keplr's default
/// gas adjustment): state can change between simulation and delivery.
pub const GAS_MARGIN_NUMERATOR: u64 = 13;
/// See [`GAS_MARGIN_NUMERATOR`].
pub const GAS_MARGIN_DENOMINATOR: u64 = 10;

/// `used` gas plus the margin, rounded up (saturating).
pub fn gas_with_margin(used: u64) -> u64 {
    let g = u128::from(used) * u128::from(GAS_MARGIN_NUMERATOR);
    u64::try_from(g.div_ceil(u128::from(GAS_MARGIN_DENOMINATOR))).unwrap_or(u64::MAX)
}

/// A transaction's messages and what it is signed against, read once for the simulated
/// draft and the transaction sent.
struct Unsigned<'a> {
    msgs: Vec<cosmrs::Any>,
    denom: &'a str,
    head: &'a Head,
    number: u64,
    sequence: u64,
}

/// The staking module's parameters the adapter needs.
#[derive(Debug, Clone)]
struct Params {
    unbonding_time_secs: u64,
    max_entries: usize,
    bond_denom: String,
}

/// What a payload carries besides the signed bytes: the withdrawal that sends nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Returned {
    validator: String,
    amount: String,
    at_nanos: i64,
}

/// The chain's latest block: height, time, chain id.
#[derive(Debug, Clone)]
struct Head {
    height: u64,
    at: Timestamp,
    chain_id: String,
}

/// The Cosmos SDK adapter.
pub struct CosmosAdapter {
    http: reqwest::Client,
    channel: Channel,
    cfg: CosmosConfig,
    key: SigningKey,
    address: AccountId,
    params: OnceCell<Params>,
}

impl std::fmt::Debug for CosmosAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CosmosAdapter")
            .field("grpc_url", &self.cfg.grpc_url)
            .field("rpc_url", &self.cfg.rpc_url)
            .field("address", &self.address.to_string())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A secp256k1 key from 32 bytes.
///
/// # Errors
/// [`AdapterError::Signer`] for another length or a scalar outside the curve's order.
pub fn signing_key(key: &SecretBytes) -> Result<SigningKey> {
    let bytes = key.expose();
    if bytes.len() != 32 {
        return Err(AdapterError::Signer(format!(
            "a Cosmos key is 32 bytes, not {}",
            bytes.len()
        )));
    }
    SigningKey::from_slice(bytes)
        .map_err(|_| AdapterError::Signer("the Cosmos key is not a valid secp256k1 scalar".into()))
}

/// The account address of `key` under `prefix` (`cosmos1…`).
///
/// # Errors
/// [`AdapterError::Signer`] for a bad key, [`AdapterError::BadInput`] for a bad prefix.
pub fn address_of(key: &SecretBytes, prefix: &str) -> Result<String> {
    signing_key(key)?
        .public_key()
        .account_id(prefix)
        .map(|a| a.to_string())
        .map_err(|e| AdapterError::bad_input(CHAIN, format!("account prefix {prefix:?}: {e}")))
}

/// Parses a Cosmos integer (`math.Int`, a decimal string) into base units.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` for anything but digits within u128.
pub fn int(what: &str, s: &str) -> Result<u128> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AdapterError::bad_response(
            CHAIN,
            format!("{what} {s:?} is not an integer"),
        ));
    }
    s.parse()
        .map_err(|_| AdapterError::bad_response(CHAIN, format!("{what} {s:?} is out of range")))
}

/// Parses an `sdk.Dec` as it travels over gRPC (an integer scaled by 10^18) and truncates
/// it to whole base units.
///
/// # Errors
/// As [`int`].
pub fn dec_truncated(what: &str, s: &str) -> Result<u128> {
    Ok(int(what, s)? / DEC_SCALE)
}

/// The hash CometBFT gives a transaction: upper-case hex SHA-256 of its bytes.
pub fn tx_hash(tx_bytes: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(tx_bytes))
}

fn grpc_err(what: &str, s: &Status) -> AdapterError {
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted | Code::Cancelled => {
            AdapterError::transient(CHAIN, format!("{what}: {}", s.message()))
        }
        Code::Unknown if s.message().contains("transport") || s.message().contains("connection") => {
            AdapterError::transient(CHAIN, format!("{what}: {}", s.message()))
        }
        c => AdapterError::bad_response(CHAIN, format!("{what}: gRPC {c:?}: {}", s.message())),
    }
}

fn time_of(what: &str, t: Option<&cosmos_sdk_proto::Timestamp>) -> Result<Timestamp> {
    let t = t.ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what} has no time")))?;
    t.seconds
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(i64::from(t.nanos)))
        .map(Timestamp)
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what} time {}s is out of range", t.seconds)))
}

/// The amount of `denom` in a coin list as events print it (`"123uatom,4ibc/…"`; empty
/// for nothing).
fn coins_amount(what: &str, list: &str, denom: &str) -> Result<u128> {
    let mut total = 0u128;
    for c in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let digits = c.bytes().take_while(u8::is_ascii_digit).count();
        if &c[digits..] == denom {
            total = total
                .checked_add(int(what, &c[..digits])?)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what} overflows")))?;
        }
    }
    Ok(total)
}

/// The (account number, sequence) of an `auth` `Account` answer's
/// `/cosmos.auth.v1beta1.BaseAccount` value (protobuf, `cosmos-sdk-proto`).
///
/// # Errors
/// [`AdapterError::BadResponse`] for bytes that are not a BaseAccount.
pub fn decode_base_account(value: &[u8]) -> Result<(u64, u64)> {
    let a =
        auth::BaseAccount::decode(value).map_err(|e| AdapterError::bad_response(CHAIN, format!("BaseAccount: {e}")))?;
    Ok((a.account_number, a.sequence))
}

impl CosmosAdapter {
    /// An adapter signing with `key` (its address is the treasury's). Connects lazily.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for an empty or malformed URL, an empty chain id, a zero
    /// gas limit, gas price denominator or timeout; [`AdapterError::Signer`] for a key that
    /// is not secp256k1.
    pub fn new(cfg: CosmosConfig, key: impl Into<TreasuryKey>) -> Result<CosmosAdapter> {
        for (name, url) in [("grpc_url", &cfg.grpc_url), ("rpc_url", &cfg.rpc_url)] {
            if url.trim().is_empty() {
                return Err(AdapterError::bad_input(CHAIN, format!("{name} is empty")));
            }
        }
        if cfg.chain_id.trim().is_empty() {
            return Err(AdapterError::bad_input(CHAIN, "chain_id is empty"));
        }
        for (name, v) in [
            ("gas_per_message", cfg.gas_per_message),
            ("gas_price_denominator", cfg.gas_price_denominator),
            ("timeout_blocks", cfg.timeout_blocks),
        ] {
            if v == 0 {
                return Err(AdapterError::bad_input(CHAIN, format!("{name} is 0")));
            }
        }
        let key = match key.into() {
            TreasuryKey::Raw(k) => signing_key(&k)?,
            #[cfg(feature = "pkcs11")]
            TreasuryKey::Hsm(h) => SigningKey::new(Box::new(h.secp256k1()?)),
        };
        let address = key
            .public_key()
            .account_id(&cfg.account_prefix)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("account_prefix {:?}: {e}", cfg.account_prefix)))?;
        let mut endpoint = Endpoint::from_shared(cfg.grpc_url.clone())
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("grpc_url {:?}: {e}", cfg.grpc_url)))?
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(30));
        if cfg.grpc_url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|e| AdapterError::bad_input(CHAIN, format!("grpc_url {:?}: TLS: {e}", cfg.grpc_url)))?;
        }
        let channel = endpoint.connect_lazy();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("HTTP client: {e}")))?;
        Ok(CosmosAdapter {
            http,
            channel,
            cfg,
            key,
            address,
            params: OnceCell::new(),
        })
    }

    /// The treasury's address (`cosmos1…`).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    fn staking(&self) -> staking::query_client::QueryClient<Channel> {
        staking::query_client::QueryClient::new(self.channel.clone())
    }

    fn distribution(&self) -> distr::query_client::QueryClient<Channel> {
        distr::query_client::QueryClient::new(self.channel.clone())
    }

    /// Pending rewards per validator in the bond denom, base units (truncated).
    async fn rewards_by_validator(&self) -> Result<Vec<(String, Amount)>> {
        let denom = self.params().await?.bond_denom.clone();
        let r = self
            .distribution()
            .delegation_total_rewards(distr::QueryDelegationTotalRewardsRequest {
                delegator_address: self.address(),
            })
            .await
            .map_err(|e| grpc_err("DelegationTotalRewards", &e))?
            .into_inner();
        let mut out = Vec::new();
        for d in r.rewards {
            let mut amount = 0u128;
            for c in d.reward.iter().filter(|c| c.denom == denom) {
                amount = amount
                    .checked_add(dec_truncated("reward", &c.amount)?)
                    .ok_or_else(|| AdapterError::bad_response(CHAIN, "rewards overflow u128"))?;
            }
            out.push((d.validator_address, Amount(amount)));
        }
        Ok(out)
    }

    /// Pending rewards at `validator`, base units (0 without a delegation).
    async fn pending_reward(&self, validator: &str) -> Result<Amount> {
        Ok(self
            .rewards_by_validator()
            .await?
            .into_iter()
            .find(|(v, _)| v == validator)
            .map_or(Amount::ZERO, |(_, a)| a))
    }

    fn tx_service(&self) -> txpb::service_client::ServiceClient<Channel> {
        txpb::service_client::ServiceClient::new(self.channel.clone())
    }

    async fn params(&self) -> Result<&Params> {
        self.params
            .get_or_try_init(|| async {
                let p = self
                    .staking()
                    .params(staking::QueryParamsRequest {})
                    .await
                    .map_err(|e| grpc_err("staking Params", &e))?
                    .into_inner()
                    .params
                    .ok_or_else(|| AdapterError::bad_response(CHAIN, "staking Params: empty"))?;
                let unbonding = p
                    .unbonding_time
                    .and_then(|d| u64::try_from(d.seconds).ok())
                    .filter(|s| *s > 0)
                    .ok_or_else(|| AdapterError::bad_response(CHAIN, "staking Params: no unbonding_time"))?;
                if p.max_entries == 0 || p.bond_denom.is_empty() {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!(
                            "staking Params: max_entries {} bond_denom {:?}",
                            p.max_entries, p.bond_denom
                        ),
                    ));
                }
                Ok(Params {
                    unbonding_time_secs: unbonding,
                    max_entries: p.max_entries as usize,
                    bond_denom: p.bond_denom,
                })
            })
            .await
    }

    /// The latest block's header, on the configured chain (another chain id is a
    /// [`AdapterError::BadResponse`]: nothing is signed for it).
    async fn head(&self) -> Result<Head> {
        let h = self.read_head().await?;
        if h.chain_id != self.cfg.chain_id {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!(
                    "the node is on chain {:?}, configured {:?}",
                    h.chain_id, self.cfg.chain_id
                ),
            ));
        }
        Ok(h)
    }

    /// The latest block's header, whatever its chain.
    async fn read_head(&self) -> Result<Head> {
        let b = cmt::service_client::ServiceClient::new(self.channel.clone())
            .get_latest_block(cmt::GetLatestBlockRequest {})
            .await
            .map_err(|e| grpc_err("GetLatestBlock", &e))?
            .into_inner();
        let h = b
            .sdk_block
            .and_then(|b| b.header)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, "GetLatestBlock: no header"))?;
        Ok(Head {
            height: u64::try_from(h.height)
                .map_err(|_| AdapterError::bad_response(CHAIN, format!("height {}", h.height)))?,
            at: time_of("latest block", h.time.as_ref())?,
            chain_id: h.chain_id,
        })
    }

    /// (account number, sequence) from the auth module.
    async fn account(&self) -> Result<(u64, u64)> {
        let r = auth::query_client::QueryClient::new(self.channel.clone())
            .account(auth::QueryAccountRequest {
                address: self.address(),
            })
            .await
            .map_err(|e| match e.code() {
                Code::NotFound => AdapterError::bad_input(
                    CHAIN,
                    format!("account {} does not exist on chain yet (fund it first)", self.address()),
                ),
                _ => grpc_err("auth Account", &e),
            })?
            .into_inner();
        let any = r
            .account
            .ok_or_else(|| AdapterError::bad_response(CHAIN, "auth Account: empty"))?;
        if any.type_url != "/cosmos.auth.v1beta1.BaseAccount" {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "account {} is a {} (only base accounts sign here)",
                    self.address(),
                    any.type_url
                ),
            ));
        }
        decode_base_account(&any.value)
    }

    async fn balance(&self) -> Result<u128> {
        let denom = self.params().await?.bond_denom.clone();
        let r = bank::query_client::QueryClient::new(self.channel.clone())
            .balance(bank::QueryBalanceRequest {
                address: self.address(),
                denom,
            })
            .await
            .map_err(|e| grpc_err("bank Balance", &e))?
            .into_inner();
        r.balance.map_or(Ok(0), |c| int("balance", &c.amount))
    }

    async fn delegations(&self) -> Result<BTreeMap<String, u128>> {
        let mut out = BTreeMap::new();
        let mut key = Vec::new();
        for _ in 0..MAX_PAGES {
            let r = self
                .staking()
                .delegator_delegations(staking::QueryDelegatorDelegationsRequest {
                    delegator_addr: self.address(),
                    pagination: Some(page(key)),
                })
                .await
                .map_err(|e| grpc_err("DelegatorDelegations", &e))?
                .into_inner();
            for d in r.delegation_responses {
                let v = d
                    .delegation
                    .map(|d| d.validator_address)
                    .ok_or_else(|| AdapterError::bad_response(CHAIN, "delegation without validator"))?;
                let amount = int("delegation balance", &d.balance.map(|c| c.amount).unwrap_or_default())?;
                *out.entry(v).or_default() += amount;
            }
            match r.pagination.map(|p| p.next_key).filter(|k| !k.is_empty()) {
                Some(k) => key = k,
                None => return Ok(out),
            }
        }
        Err(AdapterError::bad_response(
            CHAIN,
            "DelegatorDelegations: too many pages",
        ))
    }

    /// Unbonding entries: (validator, balance, completion time).
    async fn unbondings(&self) -> Result<Vec<(String, u128, Timestamp)>> {
        let mut out = Vec::new();
        let mut key = Vec::new();
        for _ in 0..MAX_PAGES {
            let r = self
                .staking()
                .delegator_unbonding_delegations(staking::QueryDelegatorUnbondingDelegationsRequest {
                    delegator_addr: self.address(),
                    pagination: Some(page(key)),
                })
                .await
                .map_err(|e| grpc_err("DelegatorUnbondingDelegations", &e))?
                .into_inner();
            for u in r.unbonding_responses {
                for e in u.entries {
                    out.push((
                        u.validator_address.clone(),
                        int("unbonding balance", &e.balance)?,
                        time_of("unbonding completion", e.completion_time.as_ref())?,
                    ));
                }
            }
            match r.pagination.map(|p| p.next_key).filter(|k| !k.is_empty()) {
                Some(k) => key = k,
                None => return Ok(out),
            }
        }
        Err(AdapterError::bad_response(
            CHAIN,
            "DelegatorUnbondingDelegations: too many pages",
        ))
    }

    fn account_id(what: &str, s: &str) -> Result<AccountId> {
        AccountId::from_str(s).map_err(|e| AdapterError::bad_input(CHAIN, format!("{what} {s:?}: {e}")))
    }

    fn coin(&self, denom: &str, amount: u128) -> Result<Coin> {
        Ok(Coin {
            denom: Denom::from_str(denom).map_err(|e| AdapterError::bad_response(CHAIN, format!("denom: {e}")))?,
            amount,
        })
    }

    /// The gas cap of a transaction of `messages` messages and its fee: the most it can
    /// cost (what balances keep in reserve and claims must pay for).
    fn fee_for(&self, messages: u64) -> Result<(u64, u128)> {
        let gas = self
            .cfg
            .gas_per_message
            .checked_mul(messages)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, "gas limit overflows"))?;
        Ok((gas, self.fee_of(gas)))
    }

    /// The fee of `gas` at the configured price, base units (rounded up).
    fn fee_of(&self, gas: u64) -> u128 {
        (u128::from(gas) * u128::from(self.cfg.gas_price_numerator))
            .div_ceil(u128::from(self.cfg.gas_price_denominator))
    }

    /// The gas `Simulate` says `raw` (a signed TxRaw) uses.
    ///
    /// # Errors
    /// [`AdapterError::Rejected`] with the chain's reason when the simulation fails (the
    /// messages would fail on chain); transport errors as in [`grpc_err`].
    async fn simulate(&self, raw: Vec<u8>) -> Result<u64> {
        #[allow(deprecated)]
        let request = txpb::SimulateRequest {
            tx: None,
            tx_bytes: raw,
        };
        match self.tx_service().simulate(request).await {
            Ok(r) => r
                .into_inner()
                .gas_info
                .map(|g| g.gas_used)
                .filter(|g| *g > 0)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, "Simulate: no gas used")),
            Err(s) if grpc_err("Simulate", &s).is_transient() => Err(grpc_err("Simulate", &s)),
            Err(s) => Err(AdapterError::rejected(
                CHAIN,
                format!("simulation failed: {}", s.message()),
            )),
        }
    }

    /// Signs `msgs` with the account's current number and sequence, valid until
    /// `timeout_blocks` past the head, with the gas `Simulate` reports plus the margin
    /// (refused above the cap). Checks that the balance pays `spend` + the fee.
    async fn sign(&self, msgs: Vec<cosmrs::Any>, spend: u128) -> Result<SignedTx> {
        let (cap, cap_fee) = self.fee_for(msgs.len() as u64)?;
        let p = self.params().await?;
        let head = self.head().await?;
        let (number, sequence) = self.account().await?;
        // the balance must pay the amount and the fee at the cap (what the draft carries;
        // the transaction sent pays no more)
        let needed = spend
            .checked_add(cap_fee)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, "amount plus fee overflows"))?;
        let available = self.balance().await?;
        if needed > available {
            return Err(AdapterError::InsufficientFunds {
                chain: CHAIN.into(),
                needed,
                available,
            });
        }
        let tx = Unsigned {
            msgs,
            denom: &p.bond_denom,
            head: &head,
            number,
            sequence,
        };
        let used = self.simulate(self.encode(&tx, cap)?).await?;
        let gas = gas_with_margin(used);
        if gas > cap {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "the transaction needs {gas} gas with the margin ({used} simulated), above the cap of {cap} \
                     (gas_per_message × messages)"
                ),
            ));
        }
        let raw = self.encode(&tx, gas)?;
        Ok(SignedTx {
            tx_id: tx_hash(&raw),
            payload: base64::engine::general_purpose::STANDARD.encode(&raw),
            valid_until: None,
        })
    }

    /// The signed TxRaw bytes of `tx` with a gas limit of `gas` and its fee at the
    /// configured price, valid until `timeout_blocks` past the head.
    fn encode(&self, tx: &Unsigned<'_>, gas: u64) -> Result<Vec<u8>> {
        let timeout = tx.head.height.saturating_add(self.cfg.timeout_blocks);
        let body = Body::new(tx.msgs.clone(), "softstake", u32::try_from(timeout).unwrap_or(u32::MAX));
        let auth_info = SignerInfo::single_direct(Some(self.key.public_key()), tx.sequence)
            .auth_info(Fee::from_amount_and_gas(self.coin(tx.denom, self.fee_of(gas))?, gas));
        let chain_id = cosmrs::tendermint::chain::Id::try_from(tx.head.chain_id.clone())
            .map_err(|e| AdapterError::bad_response(CHAIN, format!("chain id: {e}")))?;
        SignDoc::new(&body, &auth_info, &chain_id, tx.number)
            .and_then(|d| d.sign(&self.key))
            .and_then(|r| r.to_bytes())
            .map_err(|e| AdapterError::Signer(e.to_string()))
    }

    fn msg<M: Msg>(m: M) -> Result<cosmrs::Any> {
        m.to_any()
            .map_err(|e| AdapterError::Signer(format!("encoding a message: {e}")))
    }

    /// The payload's (sequence, timeout height, TxRaw bytes); `None` for a withdrawal.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a payload that is not base64 of a TxRaw with a body
    /// and a signer, or that hashes to another id.
    pub fn decode_payload(tx: &SignedTx) -> Result<Option<(u64, u64, Vec<u8>)>> {
        if tx.tx_id.starts_with(RETURNED) {
            return Ok(None);
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&tx.payload)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not base64: {e}")))?;
        if tx_hash(&bytes) != tx.tx_id {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("payload hashes to {}, not the recorded {}", tx_hash(&bytes), tx.tx_id),
            ));
        }
        let raw = txpb::TxRaw::decode(bytes.as_slice())
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not a TxRaw: {e}")))?;
        let body = txpb::TxBody::decode(raw.body_bytes.as_slice())
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("TxBody: {e}")))?;
        let auth_info = txpb::AuthInfo::decode(raw.auth_info_bytes.as_slice())
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("AuthInfo: {e}")))?;
        let sequence = auth_info
            .signer_infos
            .first()
            .map(|s| s.sequence)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, "AuthInfo has no signer"))?;
        Ok(Some((sequence, body.timeout_height, bytes)))
    }

    async fn get_tx(&self, hash: &str) -> Result<Option<cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxResponse>> {
        match self
            .tx_service()
            .get_tx(txpb::GetTxRequest { hash: hash.to_string() })
            .await
        {
            Ok(r) => Ok(r.into_inner().tx_response),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(grpc_err("GetTx", &s)),
        }
    }

    /// The status of `tx_id` from the blocks it could have landed in: `timeout_blocks`
    /// before its timeout height up to it (at most [`MAX_BLOCK_SEARCH`]), read with
    /// CometBFT's `block` (its bytes hashed) and `block_results` (its code). `None` when
    /// it is in none of them.
    async fn find_in_blocks(&self, tx_id: &str, timeout: u64) -> Result<Option<TxStatus>> {
        let window = self.cfg.timeout_blocks.min(MAX_BLOCK_SEARCH);
        for height in timeout.saturating_sub(window).max(1)..=timeout {
            let b = self.rpc("block", json!({ "height": height.to_string() })).await?;
            let block = &b["result"]["block"];
            let txs = block["data"]["txs"].as_array().cloned().unwrap_or_default();
            let found = txs.iter().position(|t| {
                t.as_str()
                    .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
                    .is_some_and(|raw| tx_hash(&raw) == tx_id)
            });
            let Some(index) = found else { continue };
            let at = block["header"]["time"]
                .as_str()
                .and_then(|t| Timestamp::parse_rfc3339(t).ok())
                .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("block {height}: no header time")))?;
            let r = self
                .rpc("block_results", json!({ "height": height.to_string() }))
                .await?;
            let result = &r["result"]["txs_results"][index];
            let code = result["code"].as_u64().ok_or_else(|| {
                AdapterError::bad_response(CHAIN, format!("block_results {height}: no code for tx {index}"))
            })?;
            return Ok(Some(if code == 0 {
                TxStatus::Confirmed { at }
            } else {
                TxStatus::Failed {
                    reason: format!(
                        "{} code {code}: {}",
                        result["codespace"].as_str().unwrap_or_default(),
                        result["log"].as_str().unwrap_or_default()
                    ),
                }
            }));
        }
        Ok(None)
    }

    async fn rpc(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp = self
            .http
            .post(&self.cfg.rpc_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{method}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{method}: reading the reply: {e}")))?;
        if status.as_u16() == 429 {
            return Err(AdapterError::transient(CHAIN, format!("{method}: HTTP {status}")));
        }
        // CometBFT answers JSON-RPC errors with a JSON body (also on HTTP 500)
        serde_json::from_str(&text).map_err(|e| {
            if status.is_server_error() {
                AdapterError::transient(CHAIN, format!("{method}: HTTP {status}"))
            } else {
                AdapterError::bad_response(CHAIN, format!("{method}: not JSON ({e}): {text}"))
            }
        })
    }
}

/// Adds a transaction's `withdraw_rewards` events paid to `me` to `sums`.
fn add_rewards(
    sums: &mut ClaimSums,
    t: &cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxResponse,
    height: u64,
    me: &str,
    denom: &str,
) -> Result<()> {
    let at = Timestamp::parse_rfc3339(&t.timestamp)
        .map_err(|e| AdapterError::bad_response(CHAIN, format!("tx timestamp {:?}: {e}", t.timestamp)))?;
    for e in t.events.iter().filter(|e| e.r#type == "withdraw_rewards") {
        let attr = |k: &str| {
            e.attributes
                .iter()
                .find(|a| a.key == k)
                .map(|a| a.value.clone())
                .unwrap_or_default()
        };
        if attr("delegator") != me {
            continue;
        }
        let amount = coins_amount("withdraw_rewards amount", &attr("amount"), denom)?;
        if amount == 0 {
            continue;
        }
        let s = sums.entry((height, attr("validator"))).or_insert((0, at));
        s.0 =
            s.0.checked_add(amount)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, "rewards overflow"))?;
    }
    Ok(())
}

fn page(key: Vec<u8>) -> cosmos_sdk_proto::cosmos::base::query::v1beta1::PageRequest {
    cosmos_sdk_proto::cosmos::base::query::v1beta1::PageRequest {
        key,
        offset: 0,
        limit: PAGE,
        count_total: false,
        reverse: false,
    }
}

#[async_trait]
impl ChainAdapter for CosmosAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "ATOM"
    }

    fn unbonding_returns_itself(&self) -> bool {
        true
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let p = self.params().await?;
        Ok(LiquidityModel {
            unbonding_period_secs: p.unbonding_time_secs,
            epoch_secs: DAY_SECS,
            epoch_aligned: false,
            // a delegation earns from the next block
            activation_epochs: 0,
            min_delegation: Amount(1),
            rewards_auto_compound: false,
            claim_cadence_secs: 0,
            claim_all_validators: false,
            max_operations_per_epoch: self.cfg.max_operations_per_epoch,
            instant_exit: false,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: false,
        })
    }

    /// The UTC day of the latest block (the chain has no epochs; it budgets operations).
    async fn epoch(&self) -> Result<EpochInfo> {
        utc_day_epoch(CHAIN, self.head().await?.at, DAY_SECS)
    }

    async fn now(&self) -> Result<Timestamp> {
        Ok(self.head().await?.at)
    }

    /// The bonded validators, with their commission rate and bonded tokens; jailed ones
    /// are inactive. Uptime lives in x/slashing's signing infos, not read here:
    /// performance is reported as 100 %.
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let mut out = Vec::new();
        let mut key = Vec::new();
        for _ in 0..MAX_PAGES {
            let r = self
                .staking()
                .validators(staking::QueryValidatorsRequest {
                    status: "BOND_STATUS_BONDED".into(),
                    pagination: Some(page(key)),
                })
                .await
                .map_err(|e| grpc_err("staking Validators", &e))?
                .into_inner();
            for v in r.validators {
                let rate = v
                    .commission
                    .and_then(|c| c.commission_rates)
                    .map(|r| r.rate)
                    .unwrap_or_default();
                let rate = int("commission rate", &rate)?;
                if rate > DEC_SCALE {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!("{}: commission above 1", v.operator_address),
                    ));
                }
                out.push(ValidatorCandidate {
                    name: v
                        .description
                        .map(|d| d.moniker)
                        .filter(|m| !m.is_empty())
                        .unwrap_or_else(|| v.operator_address.clone()),
                    commission_bps: u32::try_from(rate * 10_000 / DEC_SCALE).unwrap_or(10_000),
                    total_stake: Amount(int("validator tokens", &v.tokens)?),
                    performance_bps: 10_000,
                    active: !v.jailed,
                    id: v.operator_address,
                    own_validator: false,
                });
            }
            match r.pagination.map(|p| p.next_key).filter(|k| !k.is_empty()) {
                Some(k) => key = k,
                None => return Ok(out),
            }
        }
        Err(AdapterError::bad_response(CHAIN, "staking Validators: too many pages"))
    }

    /// Delegations (active) and unbonding entries (deactivating until their completion
    /// time). Matured entries are paid back by the chain and never show as withdrawable.
    async fn positions(&self) -> Result<Vec<Position>> {
        let mut out: Vec<Position> = self
            .delegations()
            .await?
            .into_iter()
            .filter(|(_, a)| *a > 0)
            .map(|(v, a)| Position {
                validator: v,
                state: StakeState::Active,
                amount: Amount(a),
                eta: None,
                account: None,
            })
            .collect();
        for (v, a, done) in self.unbondings().await? {
            out.push(Position {
                validator: v,
                state: StakeState::Deactivating,
                amount: Amount(a),
                eta: Some(done),
                account: None,
            });
        }
        Ok(out)
    }

    /// Preflight: the node's chain id against the config, the bond denom, the
    /// treasury's balance and the fee of one single-message transaction at the
    /// configured gas and price.
    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let head = self.read_head().await?;
        let mut checks = vec![if head.chain_id == self.cfg.chain_id {
            Check::pass("chain id", head.chain_id.clone())
        } else {
            Check::fail(
                "chain id",
                format!(
                    "the node at {} is chain {:?}, the config says {:?}",
                    self.cfg.grpc_url, head.chain_id, self.cfg.chain_id
                ),
                format!(
                    "point grpc_url and rpc_url at {:?}, or set cosmos.chain_id = {:?}",
                    self.cfg.chain_id, head.chain_id
                ),
            )
        }];
        if head.chain_id != self.cfg.chain_id {
            return Ok(Preflight {
                signer: Some(self.address()),
                checks,
                ..Preflight::default()
            });
        }
        let params = self.params().await?;
        checks.push(Check::pass("bond denom", params.bond_denom.clone()));
        let (_, fee) = self.fee_for(1)?;
        Ok(Preflight {
            signer: Some(self.address()),
            fee_token: None,
            signer_balance: Some(Amount(self.balance().await?)),
            fee_per_operation: Some(Amount(fee)),
            checks,
        })
    }

    /// The bond-denom balance less the fee of one more transaction.
    async fn spendable(&self) -> Result<Amount> {
        let (_, fee) = self.fee_for(1)?;
        Ok(Amount(self.balance().await?.saturating_sub(fee)))
    }

    /// `DelegationTotalRewards`: each validator's pending reward, truncated to base units
    /// (the chain pays the truncated amount), only where it pays a claim's fee: a smaller claim would lose money, so the
    /// planner never sees it.
    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        let (_, fee) = self.fee_for(1)?;
        Ok(self
            .rewards_by_validator()
            .await?
            .into_iter()
            .filter(|(_, a)| a.0 > fee)
            .collect())
    }

    /// `MsgDelegate` of `amount` to `validator` (`cosmosvaloper1…`).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a malformed validator or zero amount;
    /// [`AdapterError::InsufficientFunds`] when the balance cannot pay it and the fee.
    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "delegation of 0"));
        }
        let denom = self.params().await?.bond_denom.clone();
        let msg = cosmrs::staking::MsgDelegate {
            delegator_address: self.address.clone(),
            validator_address: Self::account_id("validator", validator)?,
            amount: self.coin(&denom, amount.0)?,
        };
        self.sign(vec![Self::msg(msg)?], amount.0).await
    }

    /// `MsgUndelegate` of `amount` from `validator`.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] beyond the delegation, or when the pair already has
    /// `max_entries` unbonding entries (x/staking `ErrMaxUnbondingDelegationEntries`).
    async fn undelegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let p = self.params().await?;
        let have = self.delegations().await?.get(validator).copied().unwrap_or(0);
        if amount.is_zero() || amount.0 > have {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("undelegation of {amount} from {validator}: {have} delegated"),
            ));
        }
        let entries = self.unbondings().await?.iter().filter(|u| u.0 == validator).count();
        if entries >= p.max_entries {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "{entries} unbonding entries with {validator}: at most {} (max_entries)",
                    p.max_entries
                ),
            ));
        }
        let msg = cosmrs::staking::MsgUndelegate {
            delegator_address: self.address.clone(),
            validator_address: Self::account_id("validator", validator)?,
            amount: self.coin(&p.bond_denom, amount.0)?,
        };
        self.sign(vec![Self::msg(msg)?], 0).await
    }

    /// Books the chain's own return of matured unbonding entries: nothing is sent. The
    /// node plans it for undelegations no longer unbonding (see
    /// [`ChainAdapter::unbonding_returns_itself`]).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] while an entry of `validator` has reached its completion
    /// time and the chain has not paid it yet (the next block pays it).
    async fn withdraw(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let head = self.head().await?;
        if self
            .unbondings()
            .await?
            .iter()
            .any(|u| u.0 == validator && u.2 <= head.at)
        {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("an unbonding entry of {validator} is due and not paid yet: wait for the next block"),
            ));
        }
        let r = Returned {
            validator: validator.to_string(),
            amount: amount.0.to_string(),
            at_nanos: head.at.0,
        };
        Ok(SignedTx {
            tx_id: format!("{RETURNED}{key}"),
            payload: serde_json::to_string(&r).map_err(|e| AdapterError::Signer(e.to_string()))?,
            valid_until: None,
        })
    }

    /// `MsgWithdrawDelegatorReward` from `validator`.
    /// `MsgWithdrawDelegatorReward` from `validator`, refused while its rewards do not
    /// pay the claim's fee (a claim that loses money).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a malformed validator or rewards at most the fee.
    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        let (_, fee) = self.fee_for(1)?;
        let pending = self.pending_reward(validator).await?;
        if pending.0 <= fee {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("rewards of {pending} at {validator} do not pay the claim's fee of {fee}: not claimed"),
            ));
        }
        let msg = cosmrs::distribution::MsgWithdrawDelegatorReward {
            delegator_address: self.address.clone(),
            validator_address: Self::account_id("validator", validator)?,
        };
        self.sign(vec![Self::msg(msg)?], 0).await
    }

    /// CometBFT `broadcast_tx_sync` (CheckTx). Code 0, "tx already exists in cache" and
    /// `ErrTxInMempoolCache` are success (a retry); anything else is a rejection with the
    /// codespace, code and log.
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let Some((_, _, bytes)) = Self::decode_payload(tx)? else {
            return Ok(());
        };
        let v = self
            .rpc(
                "broadcast_tx_sync",
                json!({ "tx": base64::engine::general_purpose::STANDARD.encode(bytes) }),
            )
            .await?;
        if let Some(e) = v.get("error") {
            let data = e["data"].as_str().unwrap_or_default();
            if data.contains("tx already exists in cache") {
                return Ok(());
            }
            return Err(AdapterError::rejected(
                CHAIN,
                format!("{} {data}", e["message"].as_str().unwrap_or("error")),
            ));
        }
        let r = &v["result"];
        let code = r["code"]
            .as_u64()
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("broadcast_tx_sync: {v}")))?;
        let codespace = r["codespace"].as_str().unwrap_or_default();
        match (codespace, code) {
            (_, 0) | ("sdk", 19) => Ok(()),
            _ => Err(AdapterError::rejected(
                CHAIN,
                format!("{codespace} code {code}: {}", r["log"].as_str().unwrap_or_default()),
            )),
        }
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let Some((sequence, timeout, _)) = Self::decode_payload(tx)? else {
            let r: Returned = serde_json::from_str(&tx.payload)
                .map_err(|e| AdapterError::bad_input(CHAIN, format!("withdrawal payload: {e}")))?;
            return Ok(TxStatus::Confirmed {
                at: Timestamp(r.at_nanos),
            });
        };
        // read the sequence first: if it moved past ours because ours landed, GetTx sees it
        let (_, current) = self.account().await?;
        let head = self.head().await?;
        if let Some(r) = self.get_tx(&tx.tx_id).await? {
            if r.code != 0 {
                return Ok(TxStatus::Failed {
                    reason: format!("{} code {}: {}", r.codespace, r.code, r.raw_log),
                });
            }
            let at = Timestamp::parse_rfc3339(&r.timestamp)
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("tx timestamp {:?}: {e}", r.timestamp)))?;
            return Ok(TxStatus::Confirmed { at });
        }
        // Expired only once it can never land and the chain does not hold it: past its
        // timeout height. A sequence that moved on is not proof (a node with its tx index
        // off or pruned would not find ours even if it landed), so until the timeout the
        // executor keeps waiting instead of signing the operation again.
        if timeout > 0 && head.height > timeout {
            if current <= sequence {
                // its sequence was never used: it never landed
                return Ok(TxStatus::Expired);
            }
            // its sequence was used, by it or by another transaction: look for it in the
            // blocks it could have landed in (the block store, not the tx index)
            return Ok(self
                .find_in_blocks(&tx.tx_id, timeout)
                .await?
                .unwrap_or(TxStatus::Expired));
        }
        if current > sequence {
            tracing::debug!(tx = %tx.tx_id, sequence, current, timeout, "sequence spent: waiting for the timeout height");
        }
        Ok(TxStatus::NotFound)
    }

    /// Every `withdraw_rewards` event of our successful transactions after the cursor (a
    /// height): claims and the payouts delegations and undelegations trigger. One record
    /// per validator and height.
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let from: u64 = match cursor {
            Some(c) if !c.is_empty() => c
                .parse()
                .map_err(|_| AdapterError::bad_input(CHAIN, format!("reward cursor {c:?} is not a height")))?,
            _ => 0,
        };
        let denom = self.params().await?.bond_denom.clone();
        let me = self.address();
        let mut sums = ClaimSums::new();
        let mut last = from;
        let mut complete = false;
        for page_no in 1..=MAX_HISTORY_PAGES {
            let r = self
                .tx_service()
                .get_txs_event(txpb::GetTxsEventRequest {
                    query: format!("message.sender='{me}' AND tx.height>{from}"),
                    order_by: txpb::OrderBy::Asc as i32,
                    page: page_no,
                    limit: HISTORY_PAGE,
                    ..Default::default()
                })
                .await
                .map_err(|e| grpc_err("GetTxsEvent", &e))?
                .into_inner();
            let n = r.tx_responses.len() as u64;
            for t in r.tx_responses.into_iter().take(HISTORY_PAGE as usize) {
                let height =
                    u64::try_from(t.height).map_err(|_| AdapterError::bad_response(CHAIN, "negative height"))?;
                last = last.max(height);
                if t.code == 0 {
                    add_rewards(&mut sums, &t, height, &me, &denom)?;
                }
            }
            if n < HISTORY_PAGE {
                complete = true;
                break;
            }
        }
        if !complete && last > from {
            // the last height may continue on the next page: read it whole next time
            sums.retain(|(h, _), _| *h < last);
            last -= 1;
        }
        Ok(RewardsPage {
            records: claimed_records(sums),
            cursor: last.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_gas_margin_rounds_up_and_saturates() {
        assert_eq!(gas_with_margin(100_000), 130_000);
        assert_eq!(gas_with_margin(1), 2, "rounded up");
        assert_eq!(gas_with_margin(183_331), 238_331);
        assert_eq!(gas_with_margin(u64::MAX), u64::MAX);
    }

    #[test]
    fn success_parses_chain_numbers() {
        assert_eq!(int("x", "123").unwrap(), 123);
        assert_eq!(dec_truncated("x", "1500000000000000000").unwrap(), 1);
        assert_eq!(coins_amount("x", "12uatom,5ibc/ABC", "uatom").unwrap(), 12);
        assert_eq!(coins_amount("x", "", "uatom").unwrap(), 0);
    }

    #[test]
    fn fail_garbage_numbers() {
        for s in ["", "-1", "1.5", "abc", "999999999999999999999999999999999999999999"] {
            assert!(matches!(int("x", s), Err(AdapterError::BadResponse { .. })), "{s}");
        }
    }

    #[test]
    fn success_address_of_known_key() {
        // cosmrs derives the address as bech32(ripemd160(sha256(compressed pubkey)))
        let a = address_of(&SecretBytes::new(vec![1; 32]), "cosmos").unwrap();
        assert!(a.starts_with("cosmos1") && a.len() == 45, "{a}");
    }

    #[test]
    fn fail_bad_config() {
        let cfg = CosmosConfig {
            grpc_url: "http://127.0.0.1:1".into(),
            rpc_url: "http://127.0.0.1:2".into(),
            chain_id: "test".into(),
            account_prefix: "cosmos".into(),
            gas_per_message: 0,
            gas_price_numerator: 5,
            gas_price_denominator: 1000,
            timeout_blocks: 10,
            max_operations_per_epoch: 8,
        };
        let e = CosmosAdapter::new(cfg, SecretBytes::new(vec![1; 32])).unwrap_err();
        assert!(e.to_string().contains("gas_per_message"), "{e}");
    }
}

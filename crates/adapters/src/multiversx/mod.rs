//! MultiversX (EGLD) staking through staking providers' delegation contracts (the system
//! delegation contract, mx-chain-go `vm/systemSmartContracts/delegation.go`), with
//! transactions signed here (Ed25519 over the JSON signing form) and sent through the
//! gateway's REST API (mx-chain-proxy-go).
//!
//! ```text
//!  delegate    value = amount, data "delegate"             ≥ the manager's minDelegationAmount
//!  undelegate  data "unDelegate@<hex amount>"                 the rest must be 0 or ≥ the minimum
//!  withdraw    data "withdraw": every fund past unBondPeriod (10 epochs on mainnet)
//!  claim       data "claimRewards": the provider's unclaimed rewards, paid by a smart
//!              contract result; rewards never compound (reDelegateRewards would)
//!  views       POST /vm-values/query: getUserActiveStake, getUserUnDelegatedList (value,
//!              epochs left)*, getUserUnBondable, getClaimableRewards,
//!              getTotalCumulatedRewardsForUser; providers from the delegation manager's
//!              getAllContractAddresses (caller = the manager, as the contract demands)
//!  rewards     realized per provider = getTotalCumulatedRewardsForUser −
//!              getClaimableRewards: claimRewards adds exactly the value it transfers to
//!              TotalCumulatedRewards, so the growth is the sum of our claims' results
//!  replay      the account nonce and the chain id; there is no expiry, so a transaction
//!              whose nonce another one took can never land (TxStatus::Expired)
//! ```
//!
//! The epoch length is `erd_round_duration` × `erd_rounds_per_epoch` from
//! `/network/config` (Supernova changes the round duration, so it is read, not assumed);
//! chain time is the latest hyperblock's timestamp. Amounts are base units (1 EGLD =
//! 10^18). `multiversx-sdk` is not used: it pins `rpassword ~7.3` while agave needs
//! `^7.4`, and the MultiversX crates are GPL-3.0-only, which this Apache-2.0 project does
//! not link; addresses are bech32 through the `bech32` crate.

pub mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use softstake_core::{Amount, Timestamp};

use crate::ed25519::Ed25519Key;
use crate::error::{AdapterError, Result};
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    unix_secs_time, ChainAdapter, EpochInfo, LiquidityModel, Position, RewardKind, RewardRecord, RewardsPage, SignedTx,
    StakeState, TxStatus, ValidatorCandidate,
};
use wire::{Address, FrontendTransaction};

const CHAIN: &str = "multiversx";
/// 1 EGLD in base units.
pub const EGLD: u128 = 1_000_000_000_000_000_000;
/// The delegation manager system contract (mainnet, devnet and testnet alike).
pub const DELEGATION_MANAGER: &str = "erd1qqqqqqqqqqqqqqqpqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqylllslmq6y6";
/// The metachain's shard id, for `/network/status/{shard}`.
pub const METACHAIN: u32 = 4_294_967_295;
/// Gas limit of `delegate`, `unDelegate` and `withdraw` (the docs' 12 000 000).
pub const GAS_DELEGATION_OP: u64 = 12_000_000;
/// Gas limit of `claimRewards` (the docs' 6 000 000).
pub const GAS_CLAIM: u64 = 6_000_000;
/// Kept in the account for gas, base units (0.05 EGLD: four operations at 1 gwei).
const GAS_RESERVE: u128 = EGLD / 20;
/// The message a user view answers for an address that never delegated to the provider.
const NOT_A_DELEGATOR: &str = "view function works only for existing delegators";
/// Most providers read per call (bounds the loops; mainnet has a few hundred).
const MAX_PROVIDERS: usize = 1_000;
/// Most undelegated funds one delegator may hold (delegation.go `maxNumOfUnStakedFunds`).
pub const MAX_UNSTAKED_FUNDS: usize = 50;

/// Settings of the MultiversX adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiversxConfig {
    /// The gateway (proxy) REST API: `https://devnet-gateway.multiversx.com`,
    /// `https://testnet-gateway.multiversx.com`, a local chain.
    pub gateway_url: String,
    /// The chain id the network must report (`1` mainnet, `D` devnet, `T` testnet);
    /// `None` takes whatever `/network/config` says.
    pub chain_id: Option<String>,
    /// Providers to read besides the delegation manager's list (`erd1…`).
    pub extra_providers: Vec<String>,
    /// Largest number of operations sent per epoch.
    pub max_operations_per_epoch: u32,
}

/// What `/network/config` gives the adapter.
#[derive(Debug, Clone)]
struct NetworkConfig {
    chain_id: String,
    min_gas_price: u64,
    round_duration_ms: u64,
    rounds_per_epoch: u64,
}

/// The metachain's `/network/status`.
#[derive(Debug, Clone, Copy)]
struct Status {
    epoch: u64,
    nonce: u64,
    rounds_passed: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VmOutput {
    #[serde(default)]
    return_data: Option<Vec<Option<String>>>,
    #[serde(default)]
    return_code: String,
    #[serde(default)]
    return_message: String,
}

/// One provider's view of our account.
#[derive(Debug, Clone, Default)]
struct Delegation {
    active: u128,
    /// (value, epochs until it can be withdrawn; 0 = withdrawable)
    undelegated: Vec<(u128, u64)>,
}

/// The MultiversX adapter.
pub struct MultiversxAdapter {
    http: reqwest::Client,
    cfg: MultiversxConfig,
    key: Ed25519Key,
    address: Address,
    bech32: String,
    network: OnceCell<NetworkConfig>,
    unbond_epochs: OnceCell<u64>,
}

impl std::fmt::Debug for MultiversxAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiversxAdapter")
            .field("gateway_url", &self.cfg.gateway_url)
            .field("address", &self.bech32)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The 32-byte Ed25519 seed of a raw key: 32 seed bytes, or the 64 bytes of a PEM wallet
/// (seed ‖ public key, as `mxpy` writes them).
///
/// # Errors
/// [`AdapterError::Signer`] for another length or a 64-byte key whose halves disagree.
pub fn seed(key: &SecretBytes) -> Result<[u8; 32]> {
    crate::ed25519::seed_or_keypair("MultiversX", key)
}

fn number(v: &Value, field: &str) -> Result<u64> {
    v.get(field)
        .and_then(Value::as_u64)
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{field} missing or not a number: {v}")))
}

fn amount_of(what: &str, v: &Value) -> Result<u128> {
    let s = v
        .as_str()
        .map(str::to_string)
        .or_else(|| v.as_u64().map(|n| n.to_string()))
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what} is not an amount: {v}")))?;
    s.parse()
        .map_err(|_| AdapterError::bad_response(CHAIN, format!("{what} {s:?} is not an amount")))
}

impl MultiversxAdapter {
    /// An adapter signing with `key` (its address is the treasury's): 32 seed bytes, 64
    /// PEM-wallet bytes, or an Ed25519 key pair in a PKCS#11 token.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for an empty gateway URL or a malformed extra provider;
    /// [`AdapterError::Signer`] for a key that is not Ed25519.
    pub fn new(cfg: MultiversxConfig, key: impl Into<TreasuryKey>) -> Result<MultiversxAdapter> {
        if cfg.gateway_url.trim().is_empty() {
            return Err(AdapterError::bad_input(CHAIN, "gateway_url is empty"));
        }
        for p in &cfg.extra_providers {
            Self::provider(p)?;
        }
        let key = Ed25519Key::from_treasury(CHAIN, key.into(), seed)?;
        let address = key.public_key();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("HTTP client: {e}")))?;
        Ok(MultiversxAdapter {
            http,
            bech32: wire::to_bech32(&address),
            address,
            key,
            cfg,
            network: OnceCell::new(),
            unbond_epochs: OnceCell::new(),
        })
    }

    /// The treasury's address (`erd1…`).
    pub fn address(&self) -> &str {
        &self.bech32
    }

    fn provider(p: &str) -> Result<Address> {
        let a = wire::parse_address(p).map_err(|e| AdapterError::bad_input(CHAIN, format!("provider: {e}")))?;
        if !wire::is_contract(&a) {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("provider {p} is not a contract address: delegation goes to a provider's contract"),
            ));
        }
        Ok(a)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.gateway_url.trim_end_matches('/'))
    }

    /// A gateway call: its `data` on success. 429 and 5xx are transient (except a
    /// transaction the node does not know, which the caller reads from the error text).
    async fn call(&self, path: &str, req: reqwest::RequestBuilder) -> Result<Value> {
        let resp = req
            .send()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{path}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{path}: reading the reply: {e}")))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            if status.is_success() {
                AdapterError::bad_response(CHAIN, format!("{path}: not JSON ({e}): {text}"))
            } else {
                AdapterError::transient(CHAIN, format!("{path}: HTTP {status}: {text}"))
            }
        })?;
        let error = v.get("error").and_then(Value::as_str).unwrap_or("");
        if status.is_success() && error.is_empty() {
            return Ok(v.get("data").cloned().unwrap_or(Value::Null));
        }
        // a node answers an unknown transaction with 500, the proxy with 404: either way
        // the caller reads it from the text
        if error.contains("transaction not found") {
            return Err(AdapterError::bad_response(CHAIN, format!("{path}: {error}")));
        }
        if status.as_u16() == 400 {
            return Err(AdapterError::rejected(CHAIN, format!("{path}: {error}")));
        }
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(AdapterError::transient(
                CHAIN,
                format!("{path}: HTTP {status}: {error}"),
            ));
        }
        Err(AdapterError::bad_response(
            CHAIN,
            format!("{path}: HTTP {status}: {error}"),
        ))
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(path, self.http.get(self.url(path))).await
    }

    async fn network(&self) -> Result<NetworkConfig> {
        self.network
            .get_or_try_init(|| async {
                let v = self.get("/network/config").await?;
                let c = v
                    .get("config")
                    .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("/network/config: {v}")))?;
                let chain_id = c
                    .get("erd_chain_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| AdapterError::bad_response(CHAIN, "/network/config: erd_chain_id missing"))?
                    .to_string();
                if let Some(want) = &self.cfg.chain_id {
                    if *want != chain_id {
                        return Err(AdapterError::bad_input(
                            CHAIN,
                            format!("the gateway serves chain {chain_id:?}, the config pins {want:?}"),
                        ));
                    }
                }
                let n = NetworkConfig {
                    chain_id,
                    min_gas_price: number(c, "erd_min_gas_price")?,
                    round_duration_ms: number(c, "erd_round_duration")?,
                    rounds_per_epoch: number(c, "erd_rounds_per_epoch")?,
                };
                if n.round_duration_ms == 0 || n.rounds_per_epoch == 0 {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        "/network/config: a zero round duration or epoch",
                    ));
                }
                Ok(n)
            })
            .await
            .cloned()
    }

    async fn status(&self) -> Result<Status> {
        let path = format!("/network/status/{METACHAIN}");
        let v = self.get(&path).await?;
        let s = v
            .get("status")
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{path}: {v}")))?;
        Ok(Status {
            epoch: number(s, "erd_epoch_number")?,
            nonce: number(s, "erd_nonce")?,
            rounds_passed: number(s, "erd_rounds_passed_in_current_epoch")?,
        })
    }

    /// (nonce, balance) of an account.
    async fn account(&self) -> Result<(u64, u128)> {
        let path = format!("/address/{}", self.bech32);
        let v = self.get(&path).await?;
        let a = v
            .get("account")
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{path}: {v}")))?;
        Ok((
            a.get("nonce").and_then(Value::as_u64).unwrap_or(0),
            amount_of("balance", a.get("balance").unwrap_or(&Value::Null))?,
        ))
    }

    /// A VM query: its return data, or `Ok(None)` for a user view on an address that
    /// never delegated to the provider.
    async fn query(
        &self,
        contract: &str,
        function: &str,
        caller: Option<&str>,
        args: &[Vec<u8>],
    ) -> Result<Option<Vec<Option<String>>>> {
        let mut body = json!({
            "scAddress": contract,
            "funcName": function,
            "args": args.iter().map(hex::encode).collect::<Vec<_>>(),
        });
        if let Some(c) = caller {
            body["caller"] = json!(c);
        }
        let path = "/vm-values/query";
        let v = self.call(path, self.http.post(self.url(path)).json(&body)).await?;
        let out: VmOutput = serde_json::from_value(v.get("data").cloned().unwrap_or(Value::Null))
            .map_err(|e| AdapterError::bad_response(CHAIN, format!("{function} on {contract}: {e}: {v}")))?;
        if out.return_code == "ok" {
            return Ok(Some(out.return_data.unwrap_or_default()));
        }
        if out.return_message.contains(NOT_A_DELEGATOR) {
            return Ok(None);
        }
        Err(AdapterError::bad_response(
            CHAIN,
            format!("{function} on {contract}: {} {}", out.return_code, out.return_message),
        ))
    }

    async fn user_query(&self, provider: &str, function: &str) -> Result<Option<Vec<Option<String>>>> {
        self.query(provider, function, None, &[self.address.to_vec()]).await
    }

    async fn user_u128(&self, provider: &str, function: &str) -> Result<Option<u128>> {
        match self.user_query(provider, function).await? {
            Some(d) => Ok(Some(wire::decode_u128(d.first().and_then(|x| x.as_deref())).map_err(
                |e| AdapterError::bad_response(CHAIN, format!("{function} on {provider}: {e}")),
            )?)),
            None => Ok(None),
        }
    }

    /// The manager's `getContractConfig`: the minimum delegation, base units.
    async fn min_delegation(&self) -> Result<u128> {
        let d = self
            .query(DELEGATION_MANAGER, "getContractConfig", Some(DELEGATION_MANAGER), &[])
            .await?
            .unwrap_or_default();
        wire::decode_u128(d.get(5).and_then(|x| x.as_deref()))
            .map_err(|e| AdapterError::bad_response(CHAIN, format!("manager getContractConfig: {e}")))
    }

    /// Every provider: the manager's list plus the configured extras, deduplicated.
    async fn providers(&self) -> Result<Vec<String>> {
        let d = self
            .query(
                DELEGATION_MANAGER,
                "getAllContractAddresses",
                Some(DELEGATION_MANAGER),
                &[],
            )
            .await?
            .unwrap_or_default();
        let mut out = Vec::new();
        for item in d.iter().take(MAX_PROVIDERS) {
            let b = wire::decode_bytes(item.as_deref()).map_err(|e| AdapterError::bad_response(CHAIN, e))?;
            let a: Address = b.try_into().map_err(|b: Vec<u8>| {
                AdapterError::bad_response(
                    CHAIN,
                    format!("getAllContractAddresses: an address of {} bytes", b.len()),
                )
            })?;
            out.push(wire::to_bech32(&a));
        }
        for p in &self.cfg.extra_providers {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        Ok(out)
    }

    /// Our delegation at `provider`; `None` when we never delegated there.
    async fn delegation(&self, provider: &str) -> Result<Option<Delegation>> {
        let Some(active) = self.user_u128(provider, "getUserActiveStake").await? else {
            return Ok(None);
        };
        let list = self
            .user_query(provider, "getUserUnDelegatedList")
            .await?
            .unwrap_or_default();
        if list.len() % 2 != 0 || list.len() > 2 * MAX_UNSTAKED_FUNDS {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("getUserUnDelegatedList on {provider}: {} items", list.len()),
            ));
        }
        let mut undelegated = Vec::new();
        for pair in list.chunks(2) {
            let bad = |e: String| AdapterError::bad_response(CHAIN, format!("getUserUnDelegatedList: {e}"));
            let value = wire::decode_u128(pair[0].as_deref()).map_err(bad)?;
            let left = wire::decode_u128(pair[1].as_deref()).map_err(bad)?;
            undelegated.push((value, u64::try_from(left).unwrap_or(u64::MAX)));
        }
        Ok(Some(Delegation { active, undelegated }))
    }

    /// Our delegations at every provider, by provider.
    async fn delegations(&self) -> Result<BTreeMap<String, Delegation>> {
        let mut out = BTreeMap::new();
        for p in self.providers().await? {
            if let Some(d) = self.delegation(&p).await? {
                out.insert(p, d);
            }
        }
        Ok(out)
    }

    /// The providers whose contract holds a record of us (`getUserActiveStake` answers,
    /// zero included), without reading their undelegated funds.
    async fn delegated_providers(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for p in self.providers().await? {
            if self.user_u128(&p, "getUserActiveStake").await?.is_some() {
                out.push(p);
            }
        }
        Ok(out)
    }

    async fn now_secs(&self) -> Result<u64> {
        self.block_time(&self.status().await?).await
    }

    /// The timestamp of the metachain block `s` names, Unix seconds.
    async fn block_time(&self, s: &Status) -> Result<u64> {
        let path = format!("/hyperblock/by-nonce/{}", s.nonce);
        let v = self.get(&path).await?;
        let h = v
            .get("hyperblock")
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{path}: {v}")))?;
        number(h, "timestamp")
    }

    /// Signs a call to `provider` with `value` and `data`, at the account's nonce.
    async fn sign_call(&self, provider: &str, value: u128, data: &str, gas_limit: u64) -> Result<SignedTx> {
        Self::provider(provider)?;
        let n = self.network().await?;
        let (nonce, balance) = self.account().await?;
        let fee = u128::from(gas_limit) * u128::from(n.min_gas_price);
        let needed = value
            .checked_add(fee)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, "value overflows"))?;
        if needed > balance {
            return Err(AdapterError::InsufficientFunds {
                chain: CHAIN.into(),
                needed,
                available: balance,
            });
        }
        let mut tx = FrontendTransaction {
            nonce,
            value: value.to_string(),
            receiver: provider.to_string(),
            sender: self.bech32.clone(),
            gas_price: n.min_gas_price,
            gas_limit,
            data: Some(base64::engine::general_purpose::STANDARD.encode(data)),
            signature: None,
            chain_id: n.chain_id.clone(),
            version: wire::TX_VERSION,
            options: 0,
        };
        let msg = tx.signing_bytes().map_err(AdapterError::Signer)?;
        tx.signature = Some(hex::encode(self.key.sign(&msg).await?));
        Ok(SignedTx {
            tx_id: tx.hash().map_err(AdapterError::Signer)?,
            payload: serde_json::to_string(&tx).map_err(|e| AdapterError::Signer(e.to_string()))?,
            valid_until: None,
        })
    }

    fn decode(&self, tx: &SignedTx) -> Result<FrontendTransaction> {
        let t: FrontendTransaction = serde_json::from_str(&tx.payload)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not a transaction: {e}")))?;
        let h = t.hash().map_err(|e| AdapterError::bad_input(CHAIN, e))?;
        if h != tx.tx_id {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("payload hashes to {h}, not the recorded {}", tx.tx_id),
            ));
        }
        Ok(t)
    }

    /// The gateway's view of a transaction, `None` while it does not know it.
    async fn transaction(&self, hash: &str) -> Result<Option<Value>> {
        let path = format!("/transaction/{hash}?withResults=true");
        match self.get(&path).await {
            Ok(v) => Ok(v.get("transaction").cloned()),
            Err(AdapterError::BadResponse { message, .. }) if message.contains("transaction not found") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Why a transaction failed: the first smart contract result's `returnMessage`, or a
/// `signalError` event's message, or its status.
fn failure_reason(t: &Value, status: &str) -> String {
    let scr = t
        .get("smartContractResults")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|r| r.get("returnMessage").and_then(Value::as_str).filter(|m| !m.is_empty()));
    let event = t
        .pointer("/logs/events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("identifier").and_then(Value::as_str) == Some("signalError"))
        .find_map(|e| e.pointer("/topics/1").and_then(Value::as_str))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    scr.map(str::to_string).or(event).unwrap_or_else(|| status.to_string())
}

#[async_trait]
impl ChainAdapter for MultiversxAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "EGLD"
    }

    /// Unbonding is the longest `unBondPeriod` among the providers' `getContractConfig`
    /// (10 epochs on mainnet; read once per process) in epochs of `/network/config`'s length; withdrawable from an
    /// epoch boundary; the minimum is the manager's `minDelegationAmount`; rewards are
    /// claimed per provider.
    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let n = self.network().await?;
        let epoch_secs = n.round_duration_ms.saturating_mul(n.rounds_per_epoch) / 1_000;
        let unbond_epochs = *self
            .unbond_epochs
            .get_or_try_init(|| async {
                let mut most = 0u64;
                for p in self.providers().await?.iter().take(MAX_PROVIDERS) {
                    let c = self.query(p, "getContractConfig", None, &[]).await?.unwrap_or_default();
                    let e = wire::decode_u128(c.get(9).and_then(|x| x.as_deref()))
                        .map_err(|e| AdapterError::bad_response(CHAIN, format!("getContractConfig on {p}: {e}")))?;
                    most = most.max(u64::try_from(e).unwrap_or(u64::MAX));
                }
                Ok::<u64, AdapterError>(most)
            })
            .await?;
        Ok(LiquidityModel {
            unbonding_period_secs: unbond_epochs.saturating_mul(epoch_secs),
            epoch_secs,
            epoch_aligned: true,
            // a delegation shares the reward of the epoch it is made in: the contract keys an
            // epoch's rewards by the next epoch (updateRewards at its start block) and pays
            // them on the active stake then (delegation.go computeRewards)
            activation_epochs: 0,
            min_delegation: Amount(self.min_delegation().await?),
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

    /// The metachain's epoch; its start is now less the rounds passed in it.
    async fn epoch(&self) -> Result<EpochInfo> {
        let n = self.network().await?;
        let s = self.status().await?;
        let now = self.block_time(&s).await?;
        let passed = s.rounds_passed.saturating_mul(n.round_duration_ms) / 1_000;
        Ok(EpochInfo {
            index: s.epoch,
            start: unix_secs_time(CHAIN, "epoch start", now.saturating_sub(passed))?,
            secs: n.round_duration_ms.saturating_mul(n.rounds_per_epoch) / 1_000,
        })
    }

    async fn now(&self) -> Result<Timestamp> {
        unix_secs_time(CHAIN, "hyperblock timestamp", self.now_secs().await?)
    }

    /// Every provider with its `getContractConfig` service fee (hundredths of a percent,
    /// so bps), `getTotalActiveStake` and `getMetaData` name (its address when unset).
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let mut out = Vec::new();
        for p in self.providers().await? {
            let c = self
                .query(&p, "getContractConfig", None, &[])
                .await?
                .unwrap_or_default();
            let fee = wire::decode_u128(c.get(1).and_then(|x| x.as_deref()))
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("getContractConfig on {p}: {e}")))?;
            let stake = self
                .query(&p, "getTotalActiveStake", None, &[])
                .await?
                .unwrap_or_default();
            let stake = wire::decode_u128(stake.first().and_then(|x| x.as_deref()))
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("getTotalActiveStake on {p}: {e}")))?;
            let name = match self.query(&p, "getMetaData", None, &[]).await {
                Ok(Some(m)) => wire::decode_bytes(m.first().and_then(|x| x.as_deref()))
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|s| !s.is_empty()),
                // "delegation meta data is not set"
                Ok(None) | Err(AdapterError::BadResponse { .. }) => None,
                Err(e) => return Err(e),
            };
            out.push(ValidatorCandidate {
                name: name.unwrap_or_else(|| p.clone()),
                id: p,
                commission_bps: u32::try_from(fee).ok().filter(|f| *f <= 10_000).ok_or_else(|| {
                    AdapterError::bad_response(CHAIN, format!("a service fee of {fee} (at most 10000)"))
                })?,
                total_stake: Amount(stake),
                performance_bps: 10_000,
                active: true,
                own_validator: false,
            });
        }
        Ok(out)
    }

    /// Per provider: the active stake; each undelegated fund deactivating until its
    /// epochs run out (ETA at the boundary), withdrawable (summed) after.
    async fn positions(&self) -> Result<Vec<Position>> {
        let epoch = self.epoch().await?;
        let mut out = Vec::new();
        for (p, d) in self.delegations().await? {
            if d.active > 0 {
                out.push(Position {
                    validator: p.clone(),
                    state: StakeState::Active,
                    amount: Amount(d.active),
                    eta: None,
                    account: None,
                });
            }
            let mut withdrawable = 0u128;
            for (value, left) in d.undelegated {
                if left == 0 {
                    withdrawable = withdrawable.saturating_add(value);
                    continue;
                }
                let eta = epoch
                    .start
                    .unix_secs()
                    .saturating_add(i64::try_from(left.saturating_mul(epoch.secs)).unwrap_or(i64::MAX / 2));
                out.push(Position {
                    validator: p.clone(),
                    state: StakeState::Deactivating,
                    amount: Amount(value),
                    eta: Some(unix_secs_time(CHAIN, "unbonding end", u64::try_from(eta).unwrap_or(0))?),
                    account: None,
                });
            }
            if withdrawable > 0 {
                out.push(Position {
                    validator: p,
                    state: StakeState::Withdrawable,
                    amount: Amount(withdrawable),
                    eta: None,
                    account: None,
                });
            }
        }
        Ok(out)
    }

    async fn spendable(&self) -> Result<Amount> {
        Ok(Amount(self.account().await?.1.saturating_sub(GAS_RESERVE)))
    }

    /// `getClaimableRewards` per provider we delegate to.
    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        let mut out = Vec::new();
        for p in self.delegated_providers().await? {
            if let Some(r) = self.user_u128(&p, "getClaimableRewards").await? {
                out.push((p, Amount(r)));
            }
        }
        Ok(out)
    }

    /// `delegate` with `amount` attached.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a provider that is not a contract or an amount below
    /// the manager's minimum; [`AdapterError::InsufficientFunds`] beyond the balance less gas.
    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        Self::provider(validator)?;
        let min = self.min_delegation().await?;
        if amount.0 < min {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("delegation of {amount} is below the minimum of {min} (delegate value must be higher than minDelegationAmount)"),
            ));
        }
        self.sign_call(validator, amount.0, "delegate", GAS_DELEGATION_OP).await
    }

    /// `unDelegate@<hex amount>`.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for more than the active stake, a rest below the minimum
    /// (the contract refuses dust), or [`MAX_UNSTAKED_FUNDS`] funds pending.
    async fn undelegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        Self::provider(validator)?;
        let d = self.delegation(validator).await?.unwrap_or_default();
        let min = self.min_delegation().await?;
        let rest = d
            .active
            .checked_sub(amount.0)
            .filter(|_| !amount.is_zero())
            .ok_or_else(|| {
                AdapterError::bad_input(
                    CHAIN,
                    format!("undelegation of {amount} from {validator}: {} active there", d.active),
                )
            })?;
        if rest > 0 && rest < min {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("undelegation of {amount} would leave {rest} at {validator}, below the minimum {min}: undelegate all"),
            ));
        }
        if d.undelegated.len() >= MAX_UNSTAKED_FUNDS {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "{} undelegations pending at {validator}: withdraw first",
                    d.undelegated.len()
                ),
            ));
        }
        let data = wire::call_data("unDelegate", &[amount.0]);
        self.sign_call(validator, 0, &data, GAS_DELEGATION_OP).await
    }

    /// `withdraw`: every fund past its unbonding at once, so `amount` must be their sum.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for another amount than the withdrawable sum.
    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        Self::provider(validator)?;
        let ready = self.user_u128(validator, "getUserUnBondable").await?.unwrap_or(0);
        if ready == 0 || ready != amount.0 {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("withdrawal of {amount} from {validator}: withdraw takes every unbonded fund, {ready}"),
            ));
        }
        self.sign_call(validator, 0, "withdraw", GAS_DELEGATION_OP).await
    }

    /// `claimRewards` at the provider.
    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        self.sign_call(validator, 0, "claimRewards", GAS_CLAIM).await
    }

    /// `POST /transaction/send`, unless the gateway already knows the transaction. A
    /// refusal (HTTP 400: signature, nonce, chain id, funds) is a rejection with the node's
    /// message.
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let t = self.decode(tx)?;
        if self.transaction(&tx.tx_id).await?.is_some() {
            return Ok(());
        }
        let path = "/transaction/send";
        match self.call(path, self.http.post(self.url(path)).json(&t)).await {
            Ok(v) => {
                let h = v.get("txHash").and_then(Value::as_str).unwrap_or("");
                if h != tx.tx_id {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!("the gateway named the transaction {h:?}, we hashed it {}", tx.tx_id),
                    ));
                }
                Ok(())
            }
            // a retry racing its own first send
            Err(AdapterError::Rejected { .. }) if self.transaction(&tx.tx_id).await?.is_some() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `/transaction/{hash}`: success → confirmed at its timestamp; fail / invalid →
    /// failed with the contract's message; unknown → expired once the account's nonce
    /// has passed the transaction's (another transaction took it), else not found.
    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let t = self.decode(tx)?;
        let Some(v) = self.transaction(&tx.tx_id).await? else {
            let (nonce, _) = self.account().await?;
            return Ok(if nonce > t.nonce {
                TxStatus::Expired
            } else {
                TxStatus::NotFound
            });
        };
        let status = v.get("status").and_then(Value::as_str).unwrap_or("");
        Ok(match status {
            "success" | "executed" => TxStatus::Confirmed {
                at: unix_secs_time(CHAIN, "timestamp", number(&v, "timestamp")?)?,
            },
            "fail" | "invalid" => TxStatus::Failed {
                reason: failure_reason(&v, status),
            },
            "pending" | "received" | "partially-executed" => TxStatus::Pending,
            other => {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    format!("{}: status {other:?}", tx.tx_id),
                ))
            }
        })
    }

    /// Realized rewards since the cursor (a JSON map provider → realized base units):
    /// per provider, `getTotalCumulatedRewardsForUser − getClaimableRewards` (what our
    /// claims paid), each increase one record keyed by the metachain nonce.
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let mut seen: BTreeMap<String, u128> = match cursor {
            Some(c) if !c.is_empty() => serde_json::from_str(c)
                .map_err(|e| AdapterError::bad_input(CHAIN, format!("reward cursor {c:?}: {e}")))?,
            _ => BTreeMap::new(),
        };
        let status = self.status().await?;
        let at = unix_secs_time(CHAIN, "hyperblock timestamp", self.block_time(&status).await?)?;
        let mut records = Vec::new();
        for p in self.delegated_providers().await? {
            let (Some(total), Some(unclaimed)) = (
                self.user_u128(&p, "getTotalCumulatedRewardsForUser").await?,
                self.user_u128(&p, "getClaimableRewards").await?,
            ) else {
                continue;
            };
            let realized = total.saturating_sub(unclaimed);
            let before = seen.get(&p).copied().unwrap_or(0);
            if realized > before {
                records.push(RewardRecord {
                    validator: p.clone(),
                    epoch: status.nonce,
                    amount: Amount(realized - before),
                    at,
                    kind: RewardKind::Claimed,
                });
                seen.insert(p, realized);
            }
        }
        Ok(RewardsPage {
            records,
            cursor: serde_json::to_string(&seen).map_err(|e| AdapterError::bad_response(CHAIN, e.to_string()))?,
        })
    }

    /// Preflight: the chain id against the pinned one, the account exists and holds EGLD,
    /// the delegation manager answers with its providers; the fee per operation is the
    /// delegation gas at the minimum gas price.
    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let mut checks = Vec::new();
        let n = match self.network().await {
            Ok(n) => n,
            Err(e @ AdapterError::BadInput { .. }) => {
                checks.push(Check::fail(
                    "chain id",
                    e.to_string(),
                    "point rpc_url at the network the config names, or fix genesis_hash (the chain id)",
                ));
                return Ok(Preflight {
                    signer: Some(self.bech32.clone()),
                    checks,
                    ..Preflight::default()
                });
            }
            Err(e) => return Err(e),
        };
        checks.push(match &self.cfg.chain_id {
            Some(id) => Check::pass("chain id", format!("the gateway serves chain {id:?}")),
            None => Check::warn(
                "chain id",
                format!("not pinned; the gateway serves {:?}", n.chain_id),
                "set genesis_hash to the chain id (1, D or T) to refuse another network",
            ),
        });
        let (_, balance) = self.account().await?;
        checks.push(if balance > 0 {
            Check::pass("account", format!("{} holds {balance} base units", self.bech32))
        } else {
            Check::fail(
                "account",
                format!("{} holds no EGLD on {}", self.bech32, self.cfg.gateway_url),
                format!("send EGLD to {} (gas is paid from it)", self.bech32),
            )
        });
        let providers = self.providers().await?;
        checks.push(Check::pass(
            "providers",
            format!("the delegation manager lists {} staking providers", providers.len()),
        ));
        Ok(Preflight {
            signer: Some(self.bech32.clone()),
            fee_token: None,
            signer_balance: Some(Amount(balance)),
            fee_per_operation: Some(Amount(u128::from(GAS_DELEGATION_OP) * u128::from(n.min_gas_price))),
            checks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_failure_reason_reads_the_contract_message() {
        let t = json!({"smartContractResults": [{"returnMessage": ""}, {"returnMessage": "nothing to unBond"}]});
        assert_eq!(failure_reason(&t, "fail"), "nothing to unBond");
        let topic = base64::engine::general_purpose::STANDARD.encode("invalid value to undelegate");
        let t = json!({"logs": {"events": [{"identifier": "signalError", "topics": ["", topic]}]}});
        assert_eq!(failure_reason(&t, "fail"), "invalid value to undelegate");
        assert_eq!(failure_reason(&json!({}), "invalid"), "invalid");
    }

    #[test]
    fn fail_keys_of_other_shapes() {
        let k = Ed25519Key::from_seed(&[3; 32]);
        let mut pem = vec![3u8; 32];
        pem.extend(k.public_key());
        assert_eq!(seed(&SecretBytes::new(pem.clone())).unwrap(), [3; 32]);
        pem[40] ^= 1;
        assert!(
            seed(&SecretBytes::new(pem)).is_err(),
            "a PEM whose public half disagrees"
        );
        assert!(seed(&SecretBytes::new(vec![1; 33])).is_err());
    }

    #[test]
    fn fail_provider_that_is_not_a_contract() {
        let user = wire::to_bech32(&[7; 32]);
        let e = MultiversxAdapter::new(
            MultiversxConfig {
                gateway_url: "http://127.0.0.1:1".into(),
                chain_id: None,
                extra_providers: vec![user],
                max_operations_per_epoch: 1,
            },
            SecretBytes::new(vec![1; 32]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a contract"), "{e}");
    }
}

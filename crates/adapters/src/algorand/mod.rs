//! Algorand (ALGO) staking as an exchange does it: there is no delegation on Algorand. An
//! account earns block-proposer payouts (consensus v40 and later) by going online with its
//! own participation keys and paying the 2 ALGO incentive-eligibility fee, while its online
//! stake lies between 30 000 and 70 000 000 ALGO (go-algorand `config/consensus.go`
//! `Payouts`; `ledger/apply/keyreg.go`).
//!
//! ```text
//!  custody (the treasury key's account: the buffer, spendable)
//!     │ delegate X to S  = one atomic group:
//!     │   [pay custody → S: X (+ the keyreg's fee),
//!     │    keyreg S online with the participation node's key for S, fee 2 ALGO
//!     │      (only when S is offline, not incentive eligible, or its key runs out)]
//!     ▼
//!  staking accounts S (configured; rekeyed to the treasury key, so one key signs for all)
//!     │ withdraw X from S = one atomic group, fees pooled by custody:
//!     │   [pay custody → custody 0 (fee of the group), pay S → custody X,
//!     │    keyreg S offline (only when the rest falls under 30 000 ALGO)]
//!     ▼
//!  rewards: the indexer's /v2/block-headers?proposers=S… proposer-payout, credited to
//!           S's balance in the block it proposed (RewardKind::Compounded, keyed by round)
//! ```
//!
//! So "validator" is one of our own staking accounts and "validator selection" chooses which
//! of them go online; there is no unbonding, no lock and no claim: the liquidity model says
//! `instant_exit` (leaving is one withdrawal), `unbonding_period_secs = 0` and a minimum of
//! 30 000 ALGO. Each staking account needs its own participation key on the exchange's
//! participation node (`goal account addpartkey`, or algod's `POST
//! /v2/participation/generate/{address}`); the adapter reads them from algod's
//! `GET /v2/participation` (the admin API token). Online stake counts with the balance of
//! 320 rounds earlier (`SeedLookback × SeedRefreshInterval × 2`), so a top-up earns after
//! that look-back.
//!
//! Transactions, groups and their msgpack come from algonaut 0.9 (`algonaut_transaction`);
//! the signed envelope is written here ([`wire`]) because algonaut's `SignedTransaction`
//! cannot carry a signature made outside it (an HSM's). algod's and the indexer's JSON
//! fields algonaut's models lack (`incentive-eligible`, `last-proposed`, `last-heartbeat`,
//! `proposer`, `proposer-payout`) are read here with serde, as named in the algod and
//! indexer OpenAPI specs. Replay protection: first/last valid rounds (at most 1 000 apart)
//! and the genesis hash; a transaction id can land once. Amounts are microAlgos.

pub mod wire;

use std::collections::BTreeSet;

use algonaut_core::{Address, MicroAlgos, Round, StateProofPk, SuggestedTransactionParams, VotePk, VrfPk};
use algonaut_crypto::HashDigest;
use algonaut_transaction::group::TransactionGroup;
use algonaut_transaction::transaction::{KeyRegistration, Payment, TransactionType};
use algonaut_transaction::Transaction;
use async_trait::async_trait;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;

use softstake_core::{Amount, Timestamp};

use crate::ed25519::Ed25519Key;
use crate::error::{AdapterError, Result};
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    unix_secs_time, ChainAdapter, EpochInfo, LiquidityModel, Position, RewardKind, RewardRecord, RewardsPage, SignedTx,
    StakeState, TxStatus, ValidatorCandidate,
};
use wire::Payload;

const CHAIN: &str = "algorand";
/// 1 ALGO in microAlgos.
pub const ALGO: u128 = 1_000_000;
/// The least online stake that earns proposer payouts, microAlgos (consensus v40
/// `Payouts.MinBalance`).
pub const MIN_ONLINE_STAKE: u128 = 30_000 * ALGO;
/// The most online stake that earns proposer payouts, microAlgos (`Payouts.MaxBalance`).
pub const MAX_ONLINE_STAKE: u128 = 70_000_000 * ALGO;
/// The fee that makes a going-online keyreg set `IncentiveEligible`, microAlgos
/// (`Payouts.GoOnlineFee`).
pub const GO_ONLINE_FEE: u64 = 2_000_000;
/// Rounds after which a balance counts as online stake (`SeedLookback` 2 ×
/// `SeedRefreshInterval` 80 × 2).
pub const BALANCE_LOOKBACK_ROUNDS: u64 = 320;
/// Rounds a transaction of ours stays valid (the protocol allows 1 000, `MaxTxnLife`).
pub const VALIDITY_ROUNDS: u64 = 500;
/// Kept in custody for transaction fees, microAlgos (0.1 ALGO: a hundred transactions at
/// the minimum fee).
pub const FEE_RESERVE: u128 = ALGO / 10;
/// Block-header pages read per rewards call (bounds the loop).
const MAX_PAGES: usize = 20;
/// Block headers per page.
const PAGE_LIMIT: u32 = 1_000;
/// Most rounds read from algod's blocks when the indexer lags behind it.
pub const MAX_ALGOD_BLOCKS: u64 = 64;
/// Most staking accounts one adapter keeps online.
pub const MAX_STAKING_ACCOUNTS: usize = 64;

/// Settings of the Algorand adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorandConfig {
    /// algod's REST API (`https://testnet-api.algonode.cloud`, the participation node, a
    /// local chain).
    pub algod_url: String,
    /// algod's API token (`X-Algo-API-Token`); `GET /v2/participation` needs the admin
    /// token of the participation node.
    pub algod_token: Option<String>,
    /// The indexer's REST API (`https://testnet-idx.algonode.cloud`).
    pub indexer_url: String,
    /// The genesis hash the network must report (base64; testnet
    /// `SGO1GKSzyE7IEPItTxCByw9x8FmnrCDexi9/cOUJOiI=`); `None` takes algod's.
    pub genesis_hash: Option<String>,
    /// Our staking accounts (base32 addresses), each rekeyed to the treasury key.
    pub staking_accounts: Vec<String>,
    /// Largest number of operations sent per day.
    pub max_operations_per_epoch: u32,
}

/// algod's `/v2/transactions/params`.
#[derive(Debug, Clone, Deserialize)]
struct Params {
    fee: u64,
    #[serde(rename = "genesis-hash")]
    genesis_hash: String,
    #[serde(rename = "genesis-id")]
    genesis_id: String,
    #[serde(rename = "last-round")]
    last_round: u64,
    #[serde(rename = "min-fee")]
    min_fee: u64,
}

/// The participation keys an account registered (algod `AccountParticipation`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
struct Participation {
    #[serde(rename = "vote-participation-key", default)]
    vote: String,
    #[serde(rename = "selection-participation-key", default)]
    selection: String,
    #[serde(rename = "state-proof-key", default)]
    state_proof: Option<String>,
    #[serde(rename = "vote-first-valid", default)]
    vote_first: u64,
    #[serde(rename = "vote-last-valid", default)]
    vote_last: u64,
    #[serde(rename = "vote-key-dilution", default)]
    dilution: u64,
}

/// algod's `/v2/accounts/{address}`, with the fields algonaut's model lacks
/// (`incentive-eligible`, `last-proposed`, `last-heartbeat`; algod OpenAPI `Account`).
#[derive(Debug, Clone, Deserialize)]
struct AccountInfo {
    amount: u64,
    #[serde(rename = "min-balance", default)]
    min_balance: u64,
    #[serde(default)]
    status: String,
    #[serde(rename = "incentive-eligible", default)]
    incentive_eligible: bool,
    #[serde(rename = "auth-addr", default)]
    auth_addr: Option<String>,
    #[serde(default)]
    participation: Option<Participation>,
    #[serde(rename = "last-proposed", default)]
    last_proposed: Option<u64>,
    /// The round the account was read at.
    #[serde(default)]
    round: u64,
}

impl AccountInfo {
    fn online(&self) -> bool {
        self.status == "Online"
    }

    /// Stake we can move: the balance above the account's minimum balance.
    fn stake(&self) -> u128 {
        u128::from(self.amount.saturating_sub(self.min_balance))
    }
}

/// One key of algod's `GET /v2/participation`.
#[derive(Debug, Clone, Deserialize)]
struct ParticipationKey {
    address: String,
    key: Participation,
}

/// One header of the indexer's `/v2/block-headers` (fields as the indexer names them).
#[derive(Debug, Clone, Deserialize)]
struct BlockHeader {
    round: u64,
    timestamp: u64,
    #[serde(default)]
    proposer: Option<String>,
    #[serde(rename = "proposer-payout", default)]
    proposer_payout: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct BlockHeaders {
    #[serde(rename = "current-round")]
    current_round: u64,
    #[serde(rename = "next-token", default)]
    next_token: Option<String>,
    #[serde(default)]
    blocks: Vec<BlockHeader>,
}

/// Of `keys`, the one for `a` valid at `round` and for [`VALIDITY_ROUNDS`] after, the
/// longest lasting.
fn key_for(keys: &[ParticipationKey], a: &Address, round: u64) -> Option<Participation> {
    let me = a.to_string();
    keys.iter()
        .filter(|k| k.address == me && k.key.vote_first <= round + 1 && k.key.vote_last > round + VALIDITY_ROUNDS)
        .map(|k| k.key.clone())
        .max_by_key(|k| k.vote_last)
}

/// Where [`AlgorandAdapter::locate`] found a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Located {
    Confirmed(u64),
    Pending,
    Unknown,
}

/// The Algorand adapter.
pub struct AlgorandAdapter {
    http: reqwest::Client,
    cfg: AlgorandConfig,
    key: Ed25519Key,
    address: Address,
    staking: Vec<Address>,
    genesis: OnceCell<(HashDigest, String)>,
    /// The last round the rewards read of this process covered (its cursor).
    booked_round: std::sync::Mutex<Option<u64>>,
}

impl std::fmt::Debug for AlgorandAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlgorandAdapter")
            .field("algod_url", &self.cfg.algod_url)
            .field("indexer_url", &self.cfg.indexer_url)
            .field("address", &self.address.to_string())
            .field("staking_accounts", &self.cfg.staking_accounts)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The 32-byte Ed25519 seed of a raw key: 32 seed bytes, or the 64 bytes of an SDK secret
/// key (seed ‖ public key, what `algosdk.mnemonicToSecretKey` gives).
///
/// # Errors
/// [`AdapterError::Signer`] for another length or a 64-byte key whose halves disagree.
pub fn seed(key: &SecretBytes) -> Result<[u8; 32]> {
    crate::ed25519::seed_or_keypair("Algorand", key)
}

/// An address from its base32 form.
///
/// # Errors
/// [`AdapterError::BadInput`] naming `what` for a malformed address or checksum.
pub fn parse_address(what: &str, s: &str) -> Result<Address> {
    s.parse::<Address>()
        .map_err(|e| AdapterError::bad_input(CHAIN, format!("{what} {s:?} is not an Algorand address: {e}")))
}

fn b64<const N: usize>(what: &str, s: &str) -> Result<[u8; N]> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .ok()
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what} is not {N} bytes of base64: {s:?}")))
}

fn micro(what: &str, v: u128) -> Result<u64> {
    u64::try_from(v).map_err(|_| AdapterError::bad_input(CHAIN, format!("{what} of {v} microAlgos overflows u64")))
}

impl AlgorandAdapter {
    /// An adapter signing with `key` (the custody account's key, to which every staking
    /// account is rekeyed): 32 seed bytes, a 64-byte SDK secret key, or an Ed25519 key pair
    /// in a PKCS#11 token.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for an empty URL, a malformed or repeated staking account,
    /// the custody account listed as a staking account, or more than
    /// [`MAX_STAKING_ACCOUNTS`]; [`AdapterError::Signer`] for a key that is not Ed25519.
    pub fn new(cfg: AlgorandConfig, key: impl Into<TreasuryKey>) -> Result<AlgorandAdapter> {
        if cfg.algod_url.trim().is_empty() || cfg.indexer_url.trim().is_empty() {
            return Err(AdapterError::bad_input(CHAIN, "algod_url and indexer_url must be set"));
        }
        let key = Ed25519Key::from_treasury(CHAIN, key.into(), seed)?;
        let address = Address(key.public_key());
        if cfg.staking_accounts.len() > MAX_STAKING_ACCOUNTS {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "{} staking accounts: at most {MAX_STAKING_ACCOUNTS}",
                    cfg.staking_accounts.len()
                ),
            ));
        }
        let mut staking = Vec::new();
        let mut seen = BTreeSet::new();
        for s in &cfg.staking_accounts {
            let a = parse_address("staking account", s)?;
            if a == address {
                return Err(AdapterError::bad_input(
                    CHAIN,
                    format!("staking account {s} is the custody account: the buffer and the online stake must be separate accounts"),
                ));
            }
            if !seen.insert(a.0) {
                return Err(AdapterError::bad_input(
                    CHAIN,
                    format!("staking account {s} is listed twice"),
                ));
            }
            staking.push(a);
        }
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("HTTP client: {e}")))?;
        Ok(AlgorandAdapter {
            http,
            cfg,
            key,
            address,
            staking,
            genesis: OnceCell::new(),
            booked_round: std::sync::Mutex::new(None),
        })
    }

    /// The custody account's address (base32).
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    fn staking_account(&self, validator: &str) -> Result<Address> {
        let a = parse_address("validator", validator)?;
        if !self.staking.contains(&a) {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{validator} is not one of the configured staking accounts (on Algorand a validator is an account of ours going online)"),
            ));
        }
        Ok(a)
    }

    /// A REST call: the JSON on success, `Ok(None)` on 404. 400 is a rejection with the
    /// node's `message`; 429 and 5xx are transient.
    async fn call(&self, what: &str, req: reqwest::RequestBuilder) -> Result<Option<Value>> {
        let resp = req
            .send()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{what}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{what}: reading the reply: {e}")))?;
        if status.as_u16() == 404 {
            return Ok(None);
        }
        let v: std::result::Result<Value, _> = serde_json::from_str(&text);
        if status.is_success() {
            return v
                .map(Some)
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("{what}: not JSON ({e}): {text}")));
        }
        let message = v
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        if status.as_u16() == 400 {
            return Err(AdapterError::rejected(CHAIN, format!("{what}: {message}")));
        }
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(AdapterError::transient(
                CHAIN,
                format!("{what}: HTTP {status}: {message}"),
            ));
        }
        Err(AdapterError::bad_response(
            CHAIN,
            format!("{what}: HTTP {status}: {message}"),
        ))
    }

    fn algod(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cfg.algod_token {
            Some(t) => req.header("X-Algo-API-Token", t),
            None => req,
        }
    }

    async fn algod_get(&self, path: &str) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.cfg.algod_url.trim_end_matches('/'));
        self.call(path, self.algod(self.http.get(url))).await
    }

    async fn indexer_get(&self, path: &str, query: &[(&str, String)]) -> Result<Option<Value>> {
        let url = format!("{}{path}", self.cfg.indexer_url.trim_end_matches('/'));
        self.call(path, self.http.get(url).query(query)).await
    }

    fn parse<T: for<'de> Deserialize<'de>>(what: &str, v: Option<Value>) -> Result<T> {
        let v = v.ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: not found")))?;
        serde_json::from_value(v.clone()).map_err(|e| AdapterError::bad_response(CHAIN, format!("{what}: {e}: {v}")))
    }

    /// The suggested parameters, checked against the pinned genesis hash.
    async fn params(&self) -> Result<Params> {
        let p: Params = Self::parse(
            "/v2/transactions/params",
            self.algod_get("/v2/transactions/params").await?,
        )?;
        if let Some(want) = &self.cfg.genesis_hash {
            if *want != p.genesis_hash {
                return Err(AdapterError::bad_input(
                    CHAIN,
                    format!(
                        "algod serves genesis {} ({}), the config pins {want}",
                        p.genesis_hash, p.genesis_id
                    ),
                ));
            }
        }
        let hash = HashDigest(b64::<32>("genesis-hash", &p.genesis_hash)?);
        let _ = self.genesis.set((hash, p.genesis_id.clone()));
        Ok(p)
    }

    async fn account(&self, a: &Address) -> Result<AccountInfo> {
        let path = format!("/v2/accounts/{a}?exclude=all");
        Self::parse(&path, self.algod_get(&path).await?)
    }

    async fn last_round(&self) -> Result<u64> {
        let v = self.algod_get("/v2/status").await?;
        v.as_ref()
            .and_then(|v| v.get("last-round"))
            .and_then(Value::as_u64)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("/v2/status: no last-round: {v:?}")))
    }

    /// The timestamp of block `round` (algod's JSON block: `block.ts`), Unix seconds.
    async fn block_time(&self, round: u64) -> Result<u64> {
        let path = format!("/v2/blocks/{round}?format=json");
        let v = self.algod_get(&path).await?;
        v.as_ref()
            .and_then(|v| v.pointer("/block/ts"))
            .and_then(Value::as_u64)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{path}: no block.ts: {v:?}")))
    }

    /// The participation node's keys (`GET /v2/participation`; none is an empty list).
    async fn participation_keys(&self) -> Result<Vec<ParticipationKey>> {
        let v = self
            .algod_get("/v2/participation")
            .await?
            .unwrap_or(Value::Array(vec![]));
        serde_json::from_value(v).map_err(|e| AdapterError::bad_response(CHAIN, format!("/v2/participation: {e}")))
    }

    /// The participation node's key for `a` that is valid now and longest after, if any.
    async fn participation_key(&self, a: &Address, round: u64) -> Result<Option<Participation>> {
        Ok(key_for(&self.participation_keys().await?, a, round))
    }

    /// Checks that `s` is rekeyed to the treasury key (its `auth-addr`).
    fn check_rekeyed(&self, s: &Address, info: &AccountInfo) -> Result<()> {
        if info.auth_addr.as_deref() != Some(self.address.to_string().as_str()) {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "staking account {s} is authorized by {:?}, not the treasury key {}: rekey it to the treasury (a payment with rekey-to)",
                    info.auth_addr, self.address
                ),
            ));
        }
        Ok(())
    }

    fn header(&self, p: &Params, fee: u64, txn_type: TransactionType) -> Result<Transaction> {
        let (hash, id) = self
            .genesis
            .get()
            .cloned()
            .ok_or_else(|| AdapterError::bad_response(CHAIN, "genesis unknown before the parameters were read"))?;
        let first = p.last_round;
        Ok(Transaction {
            fee: MicroAlgos(fee),
            first_valid: Round(first),
            genesis_hash: hash,
            last_valid: Round(first + VALIDITY_ROUNDS),
            txn_type,
            genesis_id: Some(id),
            group: None,
            lease: None,
            note: None,
            rekey_to: None,
        })
    }

    fn payment(&self, p: &Params, fee: u64, from: Address, to: Address, amount: u64) -> Result<Transaction> {
        self.header(
            p,
            fee,
            TransactionType::Payment(Payment {
                sender: from,
                receiver: to,
                amount: MicroAlgos(amount),
                close_remainder_to: None,
            }),
        )
    }

    fn keyreg(&self, p: &Params, fee: u64, s: Address, key: Option<&Participation>) -> Result<Transaction> {
        let k = match key {
            Some(k) => KeyRegistration {
                sender: s,
                vote_pk: Some(VotePk(b64("vote-participation-key", &k.vote)?)),
                selection_pk: Some(VrfPk(b64("selection-participation-key", &k.selection)?)),
                // canonical msgpack omits zero fields and nodes verify the signature over
                // the canonical form; algonaut writes a `Some(0)`, so zero stays `None`
                vote_first: (k.vote_first > 0).then_some(Round(k.vote_first)),
                vote_last: (k.vote_last > 0).then_some(Round(k.vote_last)),
                vote_key_dilution: (k.dilution > 0).then_some(k.dilution),
                state_proof_key: match &k.state_proof {
                    Some(sp) => Some(StateProofPk(b64("state-proof-key", sp)?)),
                    None => None,
                },
                nonparticipating: None,
            },
            None => KeyRegistration {
                sender: s,
                vote_pk: None,
                selection_pk: None,
                vote_first: None,
                vote_last: None,
                vote_key_dilution: None,
                state_proof_key: None,
                nonparticipating: None,
            },
        };
        self.header(p, fee, TransactionType::KeyRegistration(k))
    }

    /// The minimum fee of one transaction (the per-byte fee when the network is congested).
    fn fee(p: &Params, t: &Transaction) -> Result<u64> {
        let sp = SuggestedTransactionParams {
            genesis_id: String::new(),
            genesis_hash: HashDigest([0; 32]),
            consensus_version: String::new(),
            fee_per_byte: MicroAlgos(p.fee),
            min_fee: MicroAlgos(p.min_fee),
            first_valid: Round(0),
            last_valid: Round(0),
        };
        Ok(t.estimate_basic_sig_fee_with_params(&sp)
            .map_err(|e| AdapterError::Signer(format!("sizing a transaction: {e}")))?
            .0)
    }

    /// Groups (when more than one), signs each with the treasury key (as the authorizer
    /// of a rekeyed sender) and packs the payload.
    async fn sign(&self, txs: Vec<Transaction>) -> Result<SignedTx> {
        let txs = if txs.len() > 1 {
            TransactionGroup::try_from(txs)
                .map_err(|e| AdapterError::Signer(format!("grouping: {e}")))?
                .into_transactions()
        } else {
            txs
        };
        let mut body = Vec::new();
        let mut txids = Vec::new();
        let mut last_valid = 0;
        for t in &txs {
            let msg = t
                .bytes_to_sign()
                .map_err(|e| AdapterError::Signer(format!("encoding: {e}")))?;
            let sig = self.key.sign(&msg).await?;
            let signer = (t.sender() != self.address).then_some(&self.address);
            body.extend(wire::signed_txn(t, &sig, signer).map_err(AdapterError::Signer)?);
            txids.push(
                t.id()
                    .map_err(|e| AdapterError::Signer(format!("transaction id: {e}")))?
                    .0,
            );
            last_valid = last_valid.max(t.last_valid.0);
        }
        let payload = Payload {
            txids,
            last_valid,
            signed: base64::engine::general_purpose::STANDARD.encode(body),
        };
        Ok(SignedTx {
            tx_id: payload.txids[0].clone(),
            payload: serde_json::to_string(&payload).map_err(|e| AdapterError::Signer(e.to_string()))?,
            // expiry is by round: tx_status tells it
            valid_until: None,
        })
    }

    fn decode(tx: &SignedTx) -> Result<Payload> {
        let p: Payload = serde_json::from_str(&tx.payload)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not an Algorand group: {e}")))?;
        if p.txids.first() != Some(&tx.tx_id) {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "payload's first transaction is {:?}, not the recorded {}",
                    p.txids.first(),
                    tx.tx_id
                ),
            ));
        }
        Ok(p)
    }

    /// Where a transaction is: confirmed in a round (algod's pending pool answers for
    /// transactions it saw recently, the indexer after), in algod's pool (`Pending`), or
    /// unknown to both (`NotFound`). A pool error is logged, not final: another node's
    /// pool may still hold the transaction until its last valid round.
    async fn locate(&self, txid: &str) -> Result<Located> {
        let path = format!("/v2/transactions/pending/{txid}?format=json");
        if let Some(v) = self.algod_get(&path).await? {
            let round = v.get("confirmed-round").and_then(Value::as_u64).unwrap_or(0);
            if round > 0 {
                return Ok(Located::Confirmed(round));
            }
            let err = v.get("pool-error").and_then(Value::as_str).unwrap_or("");
            if err.is_empty() {
                return Ok(Located::Pending);
            }
            tracing::warn!(chain = CHAIN, tx = %txid, pool_error = %err, "algod dropped the transaction from its pool");
        }
        let v = self.indexer_get(&format!("/v2/transactions/{txid}"), &[]).await?;
        Ok(
            match v
                .as_ref()
                .and_then(|v| v.pointer("/transaction/confirmed-round"))
                .and_then(Value::as_u64)
            {
                Some(r) => Located::Confirmed(r),
                None => Located::Unknown,
            },
        )
    }

    async fn indexer_round(&self) -> Result<u64> {
        let v = self.indexer_get("/health", &[]).await?;
        v.as_ref()
            .and_then(|v| v.get("round"))
            .and_then(Value::as_u64)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("indexer /health: no round: {v:?}")))
    }

    /// The blocks our staking accounts proposed in rounds (`from`, `to`] (`to` = as far as
    /// the indexer has indexed when `None`), from the indexer's `/v2/block-headers`
    /// (paged, at most [`MAX_PAGES`] pages), and the last round covered.
    async fn our_blocks(&self, from: u64, to: Option<u64>) -> Result<(Vec<BlockHeader>, u64)> {
        if self.staking.is_empty() {
            return Ok((Vec::new(), from));
        }
        let proposers = self
            .staking
            .iter()
            .map(Address::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let ours: BTreeSet<String> = self.staking.iter().map(Address::to_string).collect();
        let mut out = Vec::new();
        let mut next: Option<String> = None;
        let mut upto = from;
        for _ in 0..MAX_PAGES {
            let mut q = vec![
                ("proposers", proposers.clone()),
                ("min-round", (from + 1).to_string()),
                ("limit", PAGE_LIMIT.to_string()),
            ];
            if let Some(t) = to {
                q.push(("max-round", t.to_string()));
            }
            if let Some(n) = &next {
                q.push(("next", n.clone()));
            }
            let page: BlockHeaders =
                Self::parse("/v2/block-headers", self.indexer_get("/v2/block-headers", &q).await?)?;
            let last = to.map_or(page.current_round, |t| t.min(page.current_round));
            for b in &page.blocks {
                if !b.proposer.as_ref().is_some_and(|p| ours.contains(p)) || b.round <= from || b.round > last {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!(
                            "/v2/block-headers: round {} proposed by {:?}: not ours or outside ({from}, {last}]",
                            b.round, b.proposer
                        ),
                    ));
                }
            }
            let full = page.blocks.len() >= PAGE_LIMIT as usize;
            upto = if full {
                page.blocks.iter().map(|b| b.round).max().unwrap_or(from)
            } else {
                last.max(from)
            };
            out.extend(page.blocks);
            match page.next_token {
                Some(n) if full => next = Some(n),
                _ => break,
            }
        }
        Ok((out, upto))
    }

    /// Payouts to each of our accounts in rounds (`from`, `to`]: the indexer's headers, and
    /// algod's blocks for the rounds the indexer has not indexed yet (at most
    /// [`MAX_ALGOD_BLOCKS`]).
    ///
    /// # Errors
    /// [`AdapterError::Transient`] when the indexer is further behind algod than that.
    async fn payouts_between(&self, from: u64, to: u64) -> Result<Vec<(u64, String, u64)>> {
        let (blocks, upto) = self.our_blocks(from, Some(to)).await?;
        let mut out: Vec<(u64, String, u64)> = blocks
            .into_iter()
            .map(|b| (b.round, b.proposer.unwrap_or_default(), b.proposer_payout))
            .collect();
        if to.saturating_sub(upto) > MAX_ALGOD_BLOCKS {
            return Err(AdapterError::transient(
                CHAIN,
                format!(
                    "the indexer is at round {upto}, {} rounds behind algod's {to}",
                    to - upto
                ),
            ));
        }
        let ours: BTreeSet<String> = self.staking.iter().map(Address::to_string).collect();
        for round in upto + 1..=to {
            let path = format!("/v2/blocks/{round}?format=json");
            let v = self.algod_get(&path).await?;
            let b = v.as_ref().and_then(|v| v.get("block"));
            let proposer = b.and_then(|b| b.get("prp")).and_then(Value::as_str).unwrap_or("");
            if ours.contains(proposer) {
                let payout = b.and_then(|b| b.get("pp")).and_then(Value::as_u64).unwrap_or(0);
                out.push((round, proposer.to_string(), payout));
            }
        }
        Ok(out)
    }

    /// The staking accounts with their state, in configured order.
    async fn staking_infos(&self) -> Result<Vec<(Address, AccountInfo)>> {
        let mut out = Vec::new();
        for s in &self.staking {
            out.push((*s, self.account(s).await?));
        }
        Ok(out)
    }
}

#[async_trait]
impl ChainAdapter for AlgorandAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "ALGO"
    }

    /// No unbonding and no lock (leaving is one withdrawal, `instant_exit`); no epochs
    /// (the UTC day budgets operations); the minimum is the 30 000 ALGO payout floor;
    /// payouts land in the staking account's balance (they compound), with no claim.
    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        Ok(LiquidityModel {
            unbonding_period_secs: 0,
            epoch_secs: 0,
            epoch_aligned: false,
            activation_epochs: 0,
            min_delegation: Amount(MIN_ONLINE_STAKE),
            rewards_auto_compound: true,
            claim_cadence_secs: 0,
            claim_all_validators: false,
            max_operations_per_epoch: self.cfg.max_operations_per_epoch,
            instant_exit: true,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: false,
        })
    }

    async fn epoch(&self) -> Result<EpochInfo> {
        crate::traits::utc_day_epoch(CHAIN, self.now().await?, 0)
    }

    async fn now(&self) -> Result<Timestamp> {
        let round = self.last_round().await?;
        unix_secs_time(CHAIN, "block timestamp", self.block_time(round).await?)
    }

    /// Each staking account as a candidate: no commission (the stake is ours), capacity
    /// the 70 M ALGO payout ceiling (`total_stake`), performance 0 while it cannot earn
    /// (no participation key on the node for it), active when rekeyed to the treasury.
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let round = self.last_round().await?;
        let keys = self.participation_keys().await?;
        let mut out = Vec::new();
        for (s, info) in self.staking_infos().await? {
            let has_key = key_for(&keys, &s, round).is_some();
            let rekeyed = self.check_rekeyed(&s, &info).is_ok();
            let addr = s.to_string();
            out.push(ValidatorCandidate {
                name: format!("staking account {}…", &addr[..8]),
                id: addr,
                commission_bps: 0,
                total_stake: Amount(MAX_ONLINE_STAKE),
                performance_bps: if has_key { 10_000 } else { 0 },
                active: rekeyed && has_key,
                own_validator: false,
            });
        }
        Ok(out)
    }

    /// Each staking account's balance above its minimum balance: active while online and
    /// incentive eligible, activating otherwise (held for staking but not earning: offline,
    /// or online without the eligibility fee paid). Payouts land in the balance every few
    /// rounds but reach the ledger only through [`ChainAdapter::rewards_since`]: so that a
    /// reconciliation between two syncs does not see them as drift, the payouts after the
    /// round the last `rewards_since` of this process covered are left out (they show
    /// after the next one). Before any, the balance as it is.
    async fn positions(&self) -> Result<Vec<Position>> {
        let infos = self.staking_infos().await?;
        let booked = *self.booked_round.lock().unwrap_or_else(|p| p.into_inner());
        let unbooked = match (booked, infos.iter().map(|(_, i)| i.round).max()) {
            (Some(from), Some(to)) if to > from => self.payouts_between(from, to).await?,
            _ => Vec::new(),
        };
        let mut out = Vec::new();
        for (s, info) in infos {
            let addr = s.to_string();
            let later: u128 = unbooked
                .iter()
                .filter(|(round, p, _)| *p == addr && *round <= info.round)
                .map(|(_, _, payout)| u128::from(*payout))
                .sum();
            let stake = info.stake().saturating_sub(later);
            if stake == 0 {
                continue;
            }
            out.push(Position {
                validator: addr,
                state: if info.online() && info.incentive_eligible {
                    StakeState::Active
                } else {
                    StakeState::Activating
                },
                amount: Amount(stake),
                eta: None,
                account: None,
            });
        }
        Ok(out)
    }

    /// The custody account's balance above its minimum balance, less what delegating all
    /// of it would cost: the 2 ALGO going-online fee of every staking account not online
    /// and eligible yet, and [`FEE_RESERVE`] for transaction fees.
    async fn spendable(&self) -> Result<Amount> {
        let custody = self.account(&self.address).await?.stake();
        let mut reserve = FEE_RESERVE;
        for (_, info) in self.staking_infos().await? {
            if !(info.online() && info.incentive_eligible) {
                reserve += u128::from(GO_ONLINE_FEE);
            }
        }
        Ok(Amount(custody.saturating_sub(reserve)))
    }

    /// Nothing to claim: payouts are paid into the proposer's balance in its block.
    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        Ok(Vec::new())
    }

    /// Moves `amount` from custody to staking account `validator`, with an online keyreg
    /// in the same group when the account is offline, not incentive eligible (then the
    /// keyreg pays the 2 ALGO fee, funded by the payment) or registered with a key that is
    /// not the node's or runs out within [`VALIDITY_ROUNDS`].
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for an account not configured or not rekeyed to the
    /// treasury, a resulting stake under 30 000 ALGO or over 70 M ALGO, or no participation
    /// key on the node for the account; [`AdapterError::InsufficientFunds`] beyond custody's
    /// spendable balance.
    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let s = self.staking_account(validator)?;
        let p = self.params().await?;
        let info = self.account(&s).await?;
        self.check_rekeyed(&s, &info)?;
        let after = info
            .stake()
            .checked_add(amount.0)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, "amount overflows"))?;
        if amount.is_zero() || after < MIN_ONLINE_STAKE {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("delegation of {amount} to {s} leaves {after} microAlgos staked, below the {MIN_ONLINE_STAKE} payout floor (30 000 ALGO)"),
            ));
        }
        if after > MAX_ONLINE_STAKE {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("delegation of {amount} to {s} makes {after} microAlgos, above the 70 M ALGO payout ceiling"),
            ));
        }
        let key = self.participation_key(&s, p.last_round).await?;
        let registered = info.participation.clone().unwrap_or_default();
        let current = key.as_ref().is_some_and(|k| {
            info.online() && info.incentive_eligible && registered.vote == k.vote && registered.vote_last == k.vote_last
        });
        let mut txs = Vec::new();
        let mut keyreg_fee = 0;
        if !current {
            let k = key.as_ref().ok_or_else(|| {
                AdapterError::bad_input(
                    CHAIN,
                    format!("no participation key valid past round {} for {s} on the participation node: generate one (goal account addpartkey, or POST /v2/participation/generate/{s})", p.last_round + VALIDITY_ROUNDS),
                )
            })?;
            let mut reg = self.keyreg(&p, 0, s, Some(k))?;
            keyreg_fee = Self::fee(&p, &reg)?;
            if !info.incentive_eligible {
                keyreg_fee = keyreg_fee.max(GO_ONLINE_FEE);
            }
            reg.fee = MicroAlgos(keyreg_fee);
            txs.push(reg);
        }
        let value = micro("delegation", amount.0 + u128::from(keyreg_fee))?;
        let mut pay = self.payment(&p, 0, self.address, s, value)?;
        let pay_fee = Self::fee(&p, &pay)?;
        pay.fee = MicroAlgos(pay_fee);
        txs.insert(0, pay);
        let needed = u128::from(value) + u128::from(pay_fee);
        let available = self.account(&self.address).await?.stake();
        if needed > available {
            return Err(AdapterError::InsufficientFunds {
                chain: CHAIN.into(),
                needed,
                available,
            });
        }
        self.sign(txs).await
    }

    /// Algorand has no undelegation: leaving is a withdrawal (`instant_exit`).
    ///
    /// # Errors
    /// Always [`AdapterError::BadInput`].
    async fn undelegate(&self, _key: &str, validator: &str, _amount: Amount) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            format!("{validator}: Algorand has no undelegation or unbonding; stake leaves with a withdrawal (going offline below 30 000 ALGO)"),
        ))
    }

    /// Moves `amount` from staking account `validator` back to custody in a group whose
    /// fees custody pays (fee pooling), going offline in the same group when the rest
    /// falls under the 30 000 ALGO floor.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for an account not configured or not rekeyed, or more
    /// than its stake; [`AdapterError::InsufficientFunds`] when custody cannot pay the fees.
    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let s = self.staking_account(validator)?;
        let p = self.params().await?;
        let info = self.account(&s).await?;
        self.check_rekeyed(&s, &info)?;
        let rest = info
            .stake()
            .checked_sub(amount.0)
            .filter(|_| !amount.is_zero())
            .ok_or_else(|| {
                AdapterError::bad_input(
                    CHAIN,
                    format!(
                        "withdrawal of {amount} from {s}: {} microAlgos staked there",
                        info.stake()
                    ),
                )
            })?;
        let mut txs = vec![self.payment(&p, 0, s, self.address, micro("withdrawal", amount.0)?)?];
        if info.online() && rest < MIN_ONLINE_STAKE {
            txs.push(self.keyreg(&p, 0, s, None)?);
        }
        let mut fees = 0u64;
        for t in &txs {
            fees += Self::fee(&p, t)?;
        }
        let mut payer = self.payment(&p, 0, self.address, self.address, 0)?;
        fees += Self::fee(&p, &payer)?;
        let available = self.account(&self.address).await?.stake();
        if u128::from(fees) > available {
            return Err(AdapterError::InsufficientFunds {
                chain: CHAIN.into(),
                needed: u128::from(fees),
                available,
            });
        }
        payer.fee = MicroAlgos(fees);
        txs.insert(0, payer);
        self.sign(txs).await
    }

    /// Algorand has nothing to claim: payouts are credited in the block.
    ///
    /// # Errors
    /// Always [`AdapterError::BadInput`].
    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            format!("{validator}: Algorand pays proposer rewards into the account; there is nothing to claim"),
        ))
    }

    /// `POST /v2/transactions` with the group's signed transactions; a group the ledger or
    /// the pool already holds is success (the same bytes, the same ids).
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let p = Self::decode(tx)?;
        let body = p.body().map_err(|e| AdapterError::bad_input(CHAIN, e))?;
        let url = format!("{}/v2/transactions", self.cfg.algod_url.trim_end_matches('/'));
        let req = self
            .algod(self.http.post(url))
            .header("Content-Type", "application/x-binary")
            .body(body);
        match self.call("/v2/transactions", req).await {
            Ok(Some(v)) => {
                let id = v.get("txId").and_then(Value::as_str).unwrap_or("");
                if id != tx.tx_id {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!("algod named the group {id:?}, we made it {}", tx.tx_id),
                    ));
                }
                Ok(())
            }
            Ok(None) => Err(AdapterError::bad_response(CHAIN, "/v2/transactions: 404")),
            Err(AdapterError::Rejected { reason, .. })
                if reason.contains("already in ledger") || reason.contains("already in the pool") =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Confirmed at its block's time once algod or the indexer gives its round; pending
    /// while algod's pool holds it; expired once algod and the indexer are both past its
    /// last valid round without it (it can never land); not found before. Algorand keeps
    /// no failed transactions: one the pool refuses never lands, so `Failed` is never
    /// reported (a refused group expires with its validity window).
    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let p = Self::decode(tx)?;
        match self.locate(&tx.tx_id).await? {
            Located::Confirmed(round) => Ok(TxStatus::Confirmed {
                at: unix_secs_time(CHAIN, "block timestamp", self.block_time(round).await?)?,
            }),
            Located::Pending => Ok(TxStatus::Pending),
            Located::Unknown => {
                let past = self.last_round().await? > p.last_valid && self.indexer_round().await? > p.last_valid;
                Ok(if past { TxStatus::Expired } else { TxStatus::NotFound })
            }
        }
    }

    /// Proposer payouts to our staking accounts after the cursor (the last round read),
    /// from the indexer's block headers, each one record keyed by its round.
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let from = match cursor {
            Some(c) if !c.is_empty() => c
                .parse::<u64>()
                .map_err(|e| AdapterError::bad_input(CHAIN, format!("reward cursor {c:?}: {e}")))?,
            _ => 0,
        };
        let (blocks, upto) = self.our_blocks(from, None).await?;
        let mut records = Vec::new();
        for b in blocks.into_iter().filter(|b| b.proposer_payout > 0) {
            records.push(RewardRecord {
                validator: b.proposer.unwrap_or_default(),
                epoch: b.round,
                amount: Amount(u128::from(b.proposer_payout)),
                at: unix_secs_time(CHAIN, "block timestamp", b.timestamp)?,
                kind: RewardKind::Compounded,
            });
        }
        records.sort_by_key(|r| r.epoch);
        *self.booked_round.lock().unwrap_or_else(|p| p.into_inner()) = Some(upto);
        Ok(RewardsPage {
            records,
            cursor: upto.to_string(),
        })
    }

    /// Preflight: the genesis against the pinned hash, custody holds ALGO, every staking
    /// account is rekeyed to the treasury key and has a participation key on the node,
    /// the indexer answers; the fee per operation is the network's minimum fee.
    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let mut checks = Vec::new();
        let p = match self.params().await {
            Ok(p) => p,
            Err(e @ AdapterError::BadInput { .. }) => {
                checks.push(Check::fail(
                    "genesis",
                    e.to_string(),
                    "point rpc_url at the network the config names, or fix genesis_hash",
                ));
                return Ok(Preflight {
                    signer: Some(self.address()),
                    checks,
                    ..Preflight::default()
                });
            }
            Err(e) => return Err(e),
        };
        checks.push(match &self.cfg.genesis_hash {
            Some(h) => Check::pass("genesis", format!("algod serves {} ({h})", p.genesis_id)),
            None => Check::warn(
                "genesis",
                format!("not pinned; algod serves {} ({})", p.genesis_id, p.genesis_hash),
                "set genesis_hash to the network's genesis hash to refuse another network",
            ),
        });
        let custody = self.account(&self.address).await?;
        checks.push(if custody.amount > 0 {
            Check::pass(
                "account",
                format!("{} holds {} microAlgos", self.address, custody.amount),
            )
        } else {
            Check::fail(
                "account",
                format!("{} holds no ALGO", self.address),
                format!("fund {} (the buffer; fees are paid from it)", self.address),
            )
        });
        if self.staking.is_empty() {
            checks.push(Check::fail(
                "staking accounts",
                "none configured: nothing can go online",
                "list accounts rekeyed to the treasury key in [chains.ALGO.algorand] staking_accounts",
            ));
        }
        let keys = self.participation_keys().await;
        for (s, info) in self.staking_infos().await? {
            checks.push(match self.check_rekeyed(&s, &info) {
                Ok(()) => Check::pass("rekey", format!("{s} is authorized by the treasury key")),
                Err(e) => Check::fail("rekey", e.to_string(), format!("rekey {s} to {}", self.address)),
            });
            checks.push(match keys.as_ref().map(|k| key_for(k, &s, p.last_round)) {
                Ok(Some(k)) => Check::pass(
                    "participation key",
                    format!("{s}: valid rounds {}..{} on the node", k.vote_first, k.vote_last),
                ),
                Ok(None) => Check::fail(
                    "participation key",
                    format!("{s}: the node holds no valid participation key"),
                    format!("goal account addpartkey -a {s} on the participation node"),
                ),
                Err(e) => Check::fail(
                    "participation key",
                    e.to_string(),
                    "set the participation node's admin API token (algod_token_env)",
                ),
            });
            if info.online() && !info.incentive_eligible {
                checks.push(Check::warn(
                    "incentives",
                    format!(
                        "{s} is online but not incentive eligible (suspended, or went online without the 2 ALGO fee)"
                    ),
                    "the next delegation to it re-registers with the 2 ALGO fee",
                ));
            }
            if let Some(r) = info.last_proposed {
                checks.push(Check::pass("proposals", format!("{s} last proposed round {r}")));
            }
        }
        checks.push(match self.indexer_round().await {
            Ok(r) => Check::pass(
                "indexer",
                format!("indexed up to round {r} (chain at {})", p.last_round),
            ),
            Err(e) => Check::fail(
                "indexer",
                e.to_string(),
                "set indexer_url to an indexer of this network",
            ),
        });
        Ok(Preflight {
            signer: Some(self.address()),
            fee_token: None,
            signer_balance: Some(Amount(u128::from(custody.amount))),
            fee_per_operation: Some(Amount(u128::from(p.min_fee.max(1_000) * 2))),
            checks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(staking: Vec<String>) -> AlgorandConfig {
        AlgorandConfig {
            algod_url: "http://127.0.0.1:1".into(),
            algod_token: None,
            indexer_url: "http://127.0.0.1:1".into(),
            genesis_hash: None,
            staking_accounts: staking,
            max_operations_per_epoch: 8,
        }
    }

    #[test]
    fn fail_custody_listed_as_staking_account() {
        let me = Address(Ed25519Key::from_seed(&[4; 32]).public_key()).to_string();
        let e = AlgorandAdapter::new(cfg(vec![me]), SecretBytes::new(vec![4; 32])).unwrap_err();
        assert!(e.to_string().contains("custody account"), "{e}");
    }

    #[test]
    fn fail_malformed_or_repeated_staking_account() {
        let e = AlgorandAdapter::new(cfg(vec!["NOTANADDRESS".into()]), SecretBytes::new(vec![4; 32])).unwrap_err();
        assert!(e.to_string().contains("not an Algorand address"), "{e}");
        let a = Address([9; 32]).to_string();
        let e = AlgorandAdapter::new(cfg(vec![a.clone(), a]), SecretBytes::new(vec![4; 32])).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn success_payload_must_name_its_first_transaction() {
        let p = Payload {
            txids: vec!["A".into(), "B".into()],
            last_valid: 9,
            signed: String::new(),
        };
        let tx = SignedTx {
            tx_id: "A".into(),
            payload: serde_json::to_string(&p).unwrap(),
            valid_until: None,
        };
        assert_eq!(AlgorandAdapter::decode(&tx).unwrap(), p);
        let other = SignedTx {
            tx_id: "B".into(),
            ..tx
        };
        assert!(AlgorandAdapter::decode(&other).is_err());
    }
}

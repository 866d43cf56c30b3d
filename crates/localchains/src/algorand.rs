//! A local Algorand chain that speaks algod's and the indexer's REST APIs and keeps the
//! ledger's rules for payments, key registrations and block-proposer payouts, for tests and
//! local runs (no algod can be installed offline here).
//!
//! ```text
//!  algod    GET  /v2/transactions/params      fee, min-fee, genesis-hash, genesis-id, last-round
//!           GET  /v2/status                   last-round
//!           GET  /v2/blocks/{round}           block.rnd, ts, prp (proposer), pp (payout), fc
//!           GET  /v2/accounts/{address}       amount, min-balance, status, incentive-eligible,
//!                                             auth-addr, participation, last-proposed, last-heartbeat
//!           GET  /v2/participation            the participation node's keys
//!           POST /v2/transactions             raw msgpack SignedTxns (a group), checked as
//!                                             algod's pool checks them; 400 {"message"} else
//!           GET  /v2/transactions/pending/{id} confirmed-round (recent rounds only), pool-error
//!  indexer  GET  /indexer/health              round
//!  (prefix) GET  /indexer/v2/block-headers    ?proposers=&min-round=&limit=&next=
//!           GET  /indexer/v2/transactions/{id} confirmed-round, round-time
//! ```
//!
//! Transactions are decoded with this module's own codec (rmp-serde over go-algorand's codec
//! tags), re-encoded canonically (keys sorted, empty fields omitted) to compute the id
//! (SHA-512/256 of "TX" ‖ msgpack) and to verify the Ed25519 signature against the sender's
//! authorizing address (its `auth-addr` after a rekey) — never with the adapter's code. The
//! rules follow go-algorand: validity window (`txn dead`, at most 1 000 rounds), genesis hash
//! and id, duplicate ids (`transaction already in ledger`), group ids ("TG" ‖ msgpack of the
//! ids), fee pooling within a group, overspend and minimum balance (0.1 ALGO), rekeying,
//! keyreg online/offline (`ledger/apply/keyreg.go`: the coherency checks, `IncentiveEligible`
//! set by a going-online fee ≥ 2 ALGO and kept when going offline). Each round's proposer is
//! drawn by online stake — each account's stake as it was 320 rounds earlier — among our
//! accounts whose registered keys the participation node holds and the rest of the network's
//! online stake; an incentive-eligible proposer whose look-back stake is within
//! [30 000, 70 000 000] ALGO is paid the bonus plus half the block's fees from the fee sink
//! in its block (consensus v40 `Payouts`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use data_encoding::BASE32_NOPAD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use serde_json::{json, Value};
use sha2::{Digest, Sha512_256};

/// 1 ALGO in microAlgos.
pub const ALGO: u64 = 1_000_000;
/// Minimum balance of an account (`MinBalance`), microAlgos.
pub const MIN_BALANCE: u64 = 100_000;
/// Minimum fee per transaction (`MinTxnFee`), microAlgos.
pub const MIN_FEE: u64 = 1_000;
/// Longest validity window (`MaxTxnLife`), rounds.
pub const MAX_TXN_LIFE: u64 = 1_000;
/// Online stake counts the balance of this many rounds earlier.
pub const BALANCE_LOOKBACK_ROUNDS: u64 = 320;
/// The going-online fee that sets `IncentiveEligible` (`Payouts.GoOnlineFee`).
pub const GO_ONLINE_FEE: u64 = 2 * ALGO;
/// Payout floor and ceiling of the proposer's online stake (`Payouts.MinBalance`,
/// `Payouts.MaxBalance`).
pub const PAYOUT_STAKE_RANGE: (u64, u64) = (30_000 * ALGO, 70_000_000 * ALGO);
/// Most transactions in a group (`MaxTxGroupSize`).
pub const MAX_GROUP: usize = 16;
/// Most rounds kept in memory (about 70 MB of headers): older blocks are forgotten, as a
/// non-archival node forgets them.
pub const MAX_BLOCKS: usize = 1_000_000;
/// The fee sink's address bytes (a fixed account of this chain).
pub const FEE_SINK: [u8; 32] = [0xfe; 32];

/// One account at genesis.
#[derive(Debug, Clone)]
pub struct GenesisAccount {
    /// Its public key (the address's 32 bytes).
    pub address: [u8; 32],
    /// Balance, microAlgos.
    pub amount: u64,
    /// The key that signs for it (a rekey), `None` for its own.
    pub auth: Option<[u8; 32]>,
    /// Whether the participation node holds a participation key for it.
    pub participation_key: bool,
}

/// The chain's genesis.
#[derive(Debug, Clone)]
pub struct AlgorandGenesis {
    /// Genesis id (`mainnet-v1.0`, `testnet-v1.0`; the local chain's own).
    pub genesis_id: String,
    /// Unix time of round 0, seconds.
    pub start_time_secs: u64,
    /// Chain time per round, milliseconds (mainnet about 2 800 since consensus v40).
    pub round_ms: u64,
    /// The payout bonus per block, microAlgos (10 ALGO at v40, decaying 1 % per 1 M rounds).
    pub bonus: u64,
    /// The fee sink's balance at genesis, microAlgos.
    pub fee_sink: u64,
    /// The rest of the network's online stake, microAlgos (proposes the other blocks).
    pub network_online_stake: u64,
    /// Accounts at genesis.
    pub accounts: Vec<GenesisAccount>,
    /// Rounds algod's pending endpoint still answers for a confirmed transaction (after
    /// that, only the indexer knows it).
    pub pending_memory_rounds: u64,
    /// Seed of the proposer draw.
    pub seed: u64,
    /// Real milliseconds per produced round (0: rounds only when asked).
    pub tick_ms: u64,
}

/// The genesis hash of a local chain named `genesis_id` (SHA-512/256 of the id), base64:
/// what `/v2/transactions/params` reports and a config pins.
pub fn genesis_hash_b64(genesis_id: &str) -> String {
    b64(&genesis_hash(genesis_id))
}

fn genesis_hash(genesis_id: &str) -> [u8; 32] {
    Sha512_256::digest(format!("softstake local algorand {genesis_id}")).into()
}

/// The custody key of `algorand-localnet` for `genesis_id`: fixed per genesis id, so
/// `config/localnet.toml` can name the staking accounts rekeyed to it (a local chain's key
/// only).
pub fn custody_seed(genesis_id: &str) -> [u8; 32] {
    Sha512_256::digest(format!("softstake local algorand custody {genesis_id}")).into()
}

/// The public key of `algorand-localnet`'s staking account `i` for `genesis_id`.
pub fn staking_key(genesis_id: &str, i: u8) -> [u8; 32] {
    let seed: [u8; 32] = Sha512_256::digest(format!("softstake local algorand staking {genesis_id} {i}")).into();
    ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes()
}

/// An address's base32 form (public key ‖ the last 4 bytes of its SHA-512/256).
pub fn address(pk: &[u8; 32]) -> String {
    let sum = Sha512_256::digest(pk);
    let mut b = pk.to_vec();
    b.extend_from_slice(&sum[28..]);
    BASE32_NOPAD.encode(&b)
}

fn parse_address(s: &str) -> Result<[u8; 32], String> {
    let b = BASE32_NOPAD
        .decode(s.as_bytes())
        .map_err(|e| format!("failed to parse the address {s}: {e}"))?;
    if b.len() != 36 {
        return Err(format!("failed to parse the address {s}: {} bytes", b.len()));
    }
    let pk: [u8; 32] = b[..32].try_into().map_err(|_| "address length".to_string())?;
    if Sha512_256::digest(pk)[28..] != b[32..] {
        return Err(format!("failed to parse the address {s}: checksum"));
    }
    Ok(pk)
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// A transaction as go-algorand's codec names its fields, declared in sorted order so
/// rmp-serde writes the canonical encoding (empty fields omitted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Txn {
    #[serde(default, skip_serializing_if = "is_zero")]
    amt: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    close: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "is_zero")]
    fee: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    fv: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    gen: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gh: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    grp: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "is_zero")]
    lv: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lx: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "is_false")]
    nonpart: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rcv: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rekey: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    selkey: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snd: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sprfkey: Option<ByteBuf>,
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    kind: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    votefst: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    votekd: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    votekey: Option<ByteBuf>,
    #[serde(default, skip_serializing_if = "is_zero")]
    votelst: u64,
}

/// A signed transaction (single signatures only: no multisig or logic signature here).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedTxn {
    #[serde(default)]
    sgnr: Option<ByteBuf>,
    #[serde(default)]
    sig: Option<ByteBuf>,
    txn: Txn,
}

fn bytes32(what: &str, b: &Option<ByteBuf>) -> Result<Option<[u8; 32]>, String> {
    match b {
        None => Ok(None),
        Some(b) => b
            .as_slice()
            .try_into()
            .map(Some)
            .map_err(|_| format!("{what} is {} bytes, not 32", b.len())),
    }
}

/// A decoded, id'd and signature-checked transaction.
#[derive(Debug, Clone)]
struct Checked {
    txn: Txn,
    id: String,
    sender: [u8; 32],
    signer: [u8; 32],
}

impl Txn {
    /// "TX" ‖ the canonical msgpack.
    fn signing_bytes(&self) -> Result<Vec<u8>, String> {
        let mut out = b"TX".to_vec();
        out.extend(rmp_serde::to_vec_named(self).map_err(|e| format!("encoding: {e}"))?);
        Ok(out)
    }

    fn raw_id(&self) -> Result<[u8; 32], String> {
        Ok(Sha512_256::digest(self.signing_bytes()?).into())
    }
}

/// Decodes a body of concatenated SignedTxns (at most [`MAX_GROUP`]).
fn decode_body(body: &[u8]) -> Result<Vec<SignedTxn>, String> {
    let mut rest = body;
    let mut out = Vec::new();
    while !rest.is_empty() {
        if out.len() == MAX_GROUP {
            return Err(format!("transaction group size exceeds maximum {MAX_GROUP}"));
        }
        let at = body.len() - rest.len();
        let mut de = rmp_serde::Deserializer::new(&mut rest);
        let st = SignedTxn::deserialize(&mut de).map_err(|e| format!("msgpack decode error [pos {at}]: {e}"))?;
        out.push(st);
    }
    if out.is_empty() {
        return Err("empty txgroup".into());
    }
    Ok(out)
}

fn check_signature(st: &SignedTxn) -> Result<Checked, String> {
    let sender = bytes32("snd", &st.txn.snd)?.ok_or("transaction has no sender")?;
    let signer = bytes32("sgnr", &st.sgnr)?.unwrap_or(sender);
    let sig = st.sig.as_ref().ok_or("signedtxn has no sig")?;
    let sig = Signature::from_slice(sig).map_err(|_| "signature is not 64 bytes".to_string())?;
    let raw = st.txn.raw_id()?;
    let msg = st.txn.signing_bytes()?;
    let vk =
        VerifyingKey::from_bytes(&signer).map_err(|_| "At least one signature didn't pass verification".to_string())?;
    vk.verify(&msg, &sig)
        .map_err(|_| "At least one signature didn't pass verification".to_string())?;
    Ok(Checked {
        id: BASE32_NOPAD.encode(&raw),
        txn: st.txn.clone(),
        sender,
        signer,
    })
}

/// The group id of transactions with raw ids `ids`: SHA-512/256 of "TG" ‖ msgpack
/// `{"txlist": [id, …]}`.
fn group_id(ids: &[[u8; 32]]) -> Result<[u8; 32], String> {
    #[derive(Serialize)]
    struct TxGroup {
        txlist: Vec<ByteBuf>,
    }
    let g = TxGroup {
        txlist: ids.iter().map(|i| ByteBuf::from(i.to_vec())).collect(),
    };
    let mut b = b"TG".to_vec();
    b.extend(rmp_serde::to_vec_named(&g).map_err(|e| e.to_string())?);
    Ok(Sha512_256::digest(b).into())
}

/// Registered participation keys.
#[derive(Debug, Clone, Default, PartialEq)]
struct Keys {
    vote: [u8; 32],
    selection: [u8; 32],
    state_proof: Option<Vec<u8>>,
    first: u64,
    last: u64,
    dilution: u64,
}

#[derive(Debug, Clone, Default)]
struct Account {
    amount: u64,
    auth: Option<[u8; 32]>,
    online: bool,
    eligible: bool,
    keys: Option<Keys>,
    last_proposed: u64,
    last_heartbeat: u64,
    /// (round, amount, online) whenever one changed; bounded to the look-back.
    history: Vec<(u64, u64, bool)>,
}

impl Account {
    fn record(&mut self, round: u64) {
        let now = (round, self.amount, self.online);
        match self.history.last_mut() {
            Some(h) if h.0 == round => *h = now,
            _ => self.history.push(now),
        }
        // keep the newest entry at or before round − look-back, drop older ones
        let horizon = round.saturating_sub(BALANCE_LOOKBACK_ROUNDS);
        let keep_from = self.history.iter().rposition(|h| h.0 <= horizon).unwrap_or(0);
        self.history.drain(..keep_from);
    }

    /// Online stake at `round`: the balance of `round − 320` if online then.
    fn online_stake(&self, round: u64) -> u64 {
        let at = round.saturating_sub(BALANCE_LOOKBACK_ROUNDS);
        match self.history.iter().rev().find(|h| h.0 <= at) {
            Some(&(_, amount, true)) => amount,
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
struct Block {
    round: u64,
    ts: u64,
    proposer: Option<[u8; 32]>,
    payout: u64,
    fees: u64,
}

#[derive(Debug)]
struct Chain {
    g: AlgorandGenesis,
    hash: [u8; 32],
    round: u64,
    /// The last [`MAX_BLOCKS`] rounds, oldest first.
    blocks: std::collections::VecDeque<Block>,
    accounts: BTreeMap<[u8; 32], Account>,
    /// The participation node's keys: (address, keys).
    node_keys: Vec<([u8; 32], Keys)>,
    /// Confirmed transactions: id → (round, type).
    txs: HashMap<String, (u64, String)>,
    rng: ChaCha8Rng,
}

/// A pool refusal: algod's 400 message.
struct Refused(String);

impl Chain {
    fn new(g: AlgorandGenesis) -> Result<Chain> {
        anyhow::ensure!(g.round_ms > 0, "genesis: round_ms must be above 0");
        let mut accounts = BTreeMap::new();
        let mut node_keys = Vec::new();
        let mut rng = ChaCha8Rng::seed_from_u64(g.seed);
        for a in &g.accounts {
            anyhow::ensure!(a.address != FEE_SINK, "genesis: an account at the fee sink's address");
            anyhow::ensure!(
                a.amount >= MIN_BALANCE,
                "genesis: account {} below the minimum balance",
                address(&a.address)
            );
            let mut acct = Account {
                amount: a.amount,
                auth: a.auth,
                ..Account::default()
            };
            acct.record(0);
            anyhow::ensure!(
                accounts.insert(a.address, acct).is_none(),
                "genesis: account {} twice",
                address(&a.address)
            );
            if a.participation_key {
                let mut sp = vec![0u8; 64];
                rng.fill(&mut sp[..]);
                node_keys.push((
                    a.address,
                    Keys {
                        vote: rng.gen(),
                        selection: rng.gen(),
                        state_proof: Some(sp),
                        first: 0,
                        last: 30_000_000,
                        dilution: 10_000,
                    },
                ));
            }
        }
        let mut sink = Account {
            amount: g.fee_sink,
            ..Account::default()
        };
        sink.record(0);
        accounts.insert(FEE_SINK, sink);
        Ok(Chain {
            hash: genesis_hash(&g.genesis_id),
            round: 0,
            blocks: std::collections::VecDeque::from([Block {
                round: 0,
                ts: g.start_time_secs,
                proposer: None,
                payout: 0,
                fees: 0,
            }]),
            accounts,
            node_keys,
            txs: HashMap::new(),
            rng,
            g,
        })
    }

    fn ts(&self, round: u64) -> u64 {
        self.g.start_time_secs + round.saturating_mul(self.g.round_ms) / 1_000
    }

    /// Our accounts that can propose at `round` and their weights: online 320 rounds
    /// earlier, registered with a key the participation node holds and valid now.
    fn proposers(&self, round: u64) -> Vec<([u8; 32], u64)> {
        self.accounts
            .iter()
            .filter(|(a, acct)| {
                acct.online
                    && acct.keys.as_ref().is_some_and(|k| {
                        k.first <= round
                            && round <= k.last
                            && self.node_keys.iter().any(|(na, nk)| na == *a && nk.vote == k.vote)
                    })
            })
            .map(|(a, acct)| (*a, acct.online_stake(round)))
            .filter(|(_, s)| *s > 0)
            .collect()
    }

    /// Appends round `self.round + 1` with `fees` collected: draws its proposer by
    /// online stake and pays an eligible one.
    fn append_block(&mut self, fees: u64) {
        let round = self.round + 1;
        let candidates = self.proposers(round);
        let ours: u128 = candidates.iter().map(|c| u128::from(c.1)).sum();
        let total = ours + u128::from(self.g.network_online_stake);
        let mut proposer = None;
        if total > 0 {
            let mut pick = self.rng.gen_range(0..total);
            for (a, s) in &candidates {
                if pick < u128::from(*s) {
                    proposer = Some((*a, *s));
                    break;
                }
                pick -= u128::from(*s);
            }
        }
        let mut payout = 0;
        if let Some((p, stake)) = proposer {
            let sink_spare = self.accounts[&FEE_SINK].amount.saturating_sub(MIN_BALANCE);
            let acct = self.accounts.get_mut(&p).expect("proposer exists");
            acct.last_proposed = round;
            let in_range = (PAYOUT_STAKE_RANGE.0..=PAYOUT_STAKE_RANGE.1).contains(&stake);
            if acct.eligible && in_range {
                payout = (self.g.bonus + fees / 2).min(sink_spare);
                acct.amount += payout;
                acct.record(round);
                let sink = self.accounts.get_mut(&FEE_SINK).expect("fee sink");
                sink.amount -= payout;
                sink.record(round);
            }
        }
        self.round = round;
        if self.blocks.len() == MAX_BLOCKS {
            self.blocks.pop_front();
        }
        self.blocks.push_back(Block {
            round,
            ts: self.ts(round),
            proposer: proposer.map(|p| p.0),
            payout,
            fees,
        });
    }

    fn produce(&mut self, n: u64) {
        for _ in 0..n {
            self.append_block(0);
        }
    }

    fn params(&self) -> Value {
        json!({
            "consensus-version": "https://github.com/algorandfoundation/specs/tree/v41",
            "fee": 0,
            "genesis-hash": b64(&self.hash),
            "genesis-id": self.g.genesis_id,
            "last-round": self.round,
            "min-fee": MIN_FEE,
        })
    }

    fn account_json(&self, a: &[u8; 32]) -> Value {
        let acct = self.accounts.get(a).cloned().unwrap_or_default();
        let mut v = json!({
            "address": address(a),
            "amount": acct.amount,
            "amount-without-pending-rewards": acct.amount,
            "min-balance": if acct.amount > 0 { MIN_BALANCE } else { 0 },
            "pending-rewards": 0,
            "rewards": 0,
            "round": self.round,
            "status": if acct.online { "Online" } else { "Offline" },
            "total-apps-opted-in": 0,
            "total-assets-opted-in": 0,
            "total-created-apps": 0,
            "total-created-assets": 0,
        });
        if acct.eligible {
            v["incentive-eligible"] = json!(true);
        }
        if let Some(auth) = acct.auth {
            v["auth-addr"] = json!(address(&auth));
        }
        if acct.last_proposed > 0 {
            v["last-proposed"] = json!(acct.last_proposed);
        }
        if acct.last_heartbeat > 0 {
            v["last-heartbeat"] = json!(acct.last_heartbeat);
        }
        if let (true, Some(k)) = (acct.online, &acct.keys) {
            v["participation"] = keys_json(k);
        }
        v
    }

    /// Checks and applies a group as algod's pool would, all or nothing, in the next round.
    fn submit(&mut self, group: Vec<SignedTxn>) -> Result<String, Refused> {
        let checked = group
            .iter()
            .map(check_signature)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Refused)?;
        let first = checked[0].id.clone();
        let refuse = |c: &Checked, m: String| Refused(format!("TransactionPool.Remember: transaction {}: {m}", c.id));
        self.check_group(&checked).map_err(|(i, m)| refuse(&checked[i], m))?;
        let round = self.round + 1;
        let mut next = self.accounts.clone();
        let mut fees = 0u64;
        for c in &checked {
            self.well_formed(c, round).map_err(|m| refuse(c, m))?;
            apply(&mut next, c, round).map_err(|m| refuse(c, m))?;
            fees += c.txn.fee;
        }
        self.accounts = next;
        for c in &checked {
            self.txs.insert(c.id.clone(), (round, c.txn.kind.clone()));
        }
        self.append_block(fees);
        Ok(first)
    }

    /// Group rules: ids, duplicate ids, pooled fees. Errors name the transaction's index.
    fn check_group(&self, checked: &[Checked]) -> Result<(), (usize, String)> {
        if checked.len() > 1 {
            let mut stripped = Vec::new();
            for c in checked {
                let mut t = c.txn.clone();
                t.grp = None;
                stripped.push(t.raw_id().map_err(|e| (0, e))?);
            }
            let want = group_id(&stripped).map_err(|e| (0, e))?;
            for (i, c) in checked.iter().enumerate() {
                match bytes32("grp", &c.txn.grp).map_err(|e| (i, e))? {
                    None => {
                        return Err((
                            i,
                            format!(
                                "transactionGroup: [{i}] had zero Group but was submitted in a group of {}",
                                checked.len()
                            ),
                        ))
                    }
                    Some(g) if g != want => {
                        return Err((i, "transactionGroup: incomplete group".into()));
                    }
                    Some(_) => {}
                }
            }
        } else if checked[0].txn.grp.is_some() {
            return Err((0, "transactionGroup: incomplete group".into()));
        }
        for (i, c) in checked.iter().enumerate() {
            if self.txs.contains_key(&c.id) {
                return Err((i, format!("transaction already in ledger: {}", c.id)));
            }
        }
        let paid: u128 = checked.iter().map(|c| u128::from(c.txn.fee)).sum();
        let due = u128::from(MIN_FEE) * checked.len() as u128;
        if paid < due {
            return Err((
                0,
                format!(
                    "txgroup had {paid} in fees, which is less than the minimum {} * {MIN_FEE}",
                    checked.len()
                ),
            ));
        }
        Ok(())
    }

    /// Header rules of one transaction: genesis, validity window, its authorizer.
    fn well_formed(&self, c: &Checked, round: u64) -> Result<(), String> {
        let t = &c.txn;
        if bytes32("gh", &t.gh)? != Some(self.hash) {
            return Err(format!(
                "genesis hash mismatch: the transaction names {}, this network is {}",
                t.gh.as_ref().map(|g| b64(g)).unwrap_or_default(),
                b64(&self.hash)
            ));
        }
        if !t.gen.is_empty() && t.gen != self.g.genesis_id {
            return Err(format!(
                "tx.GenesisID <{}> does not match expected <{}>",
                t.gen, self.g.genesis_id
            ));
        }
        if t.lv < t.fv {
            return Err(format!("transaction invalid range ({}--{})", t.fv, t.lv));
        }
        if t.lv - t.fv > MAX_TXN_LIFE {
            return Err(format!("transaction window size excessive ({}--{})", t.fv, t.lv));
        }
        if round < t.fv || round > t.lv {
            return Err(format!("txn dead: round {round} outside of {}--{}", t.fv, t.lv));
        }
        let auth = self.accounts.get(&c.sender).and_then(|a| a.auth).unwrap_or(c.sender);
        if c.signer != auth {
            return Err(format!(
                "should have been authorized by {} but was actually authorized by {}",
                address(&auth),
                address(&c.signer)
            ));
        }
        Ok(())
    }
}

fn keys_json(k: &Keys) -> Value {
    let mut v = json!({
        "selection-participation-key": b64(&k.selection),
        "vote-first-valid": k.first,
        "vote-key-dilution": k.dilution,
        "vote-last-valid": k.last,
        "vote-participation-key": b64(&k.vote),
    });
    if let Some(sp) = &k.state_proof {
        v["state-proof-key"] = json!(b64(sp));
    }
    v
}

fn debit(
    accounts: &mut BTreeMap<[u8; 32], Account>,
    who: &[u8; 32],
    amount: u64,
    fee: u64,
    round: u64,
) -> Result<(), String> {
    let a = accounts.entry(*who).or_default();
    let total = amount.checked_add(fee).ok_or("amount overflows")?;
    if a.amount < total {
        return Err(format!(
            "overspend (account {}, data {{_struct:{{}} Status:{} MicroAlgos:{{Raw:{}}}}}, tried to spend {{{total}}})",
            address(who),
            if a.online { "Online" } else { "Offline" },
            a.amount
        ));
    }
    a.amount -= total;
    if a.amount > 0 && a.amount < MIN_BALANCE {
        return Err(format!(
            "account {} balance {} below min {MIN_BALANCE} (0 assets)",
            address(who),
            a.amount
        ));
    }
    a.record(round);
    Ok(())
}

/// Applies one checked transaction to `accounts` (a working copy).
fn apply(accounts: &mut BTreeMap<[u8; 32], Account>, c: &Checked, round: u64) -> Result<(), String> {
    let t = &c.txn;
    match t.kind.as_str() {
        "pay" => {
            if t.close.is_some() {
                return Err("closing an account is not supported by this local chain".into());
            }
            let to = bytes32("rcv", &t.rcv)?.unwrap_or([0; 32]);
            debit(accounts, &c.sender, t.amt, t.fee, round)?;
            let r = accounts.entry(to).or_default();
            r.amount = r.amount.checked_add(t.amt).ok_or("balance overflows")?;
            if r.amount < MIN_BALANCE {
                return Err(format!(
                    "account {} balance {} below min {MIN_BALANCE} (0 assets)",
                    address(&to),
                    r.amount
                ));
            }
            r.record(round);
        }
        "keyreg" => {
            if c.sender == FEE_SINK {
                return Err(format!(
                    "cannot register participation key for fee sink's address {}",
                    address(&c.sender)
                ));
            }
            debit(accounts, &c.sender, 0, t.fee, round)?;
            keyreg(accounts.entry(c.sender).or_default(), t, round)?;
        }
        other => return Err(format!("unsupported transaction type {other:?} on this local chain")),
    }
    if let Some(to) = bytes32("rekey", &t.rekey)? {
        accounts.entry(c.sender).or_default().auth = (to != c.sender).then_some(to);
    }
    // the fee goes to the fee sink
    let sink = accounts.entry(FEE_SINK).or_default();
    sink.amount += t.fee;
    sink.record(round);
    Ok(())
}

/// go-algorand `ledger/apply/keyreg.go`.
fn keyreg(a: &mut Account, t: &Txn, round: u64) -> Result<(), String> {
    let vote = bytes32("votekey", &t.votekey)?;
    let selection = bytes32("selkey", &t.selkey)?;
    match (vote, selection) {
        (Some(vote), Some(selection)) if vote != [0; 32] && selection != [0; 32] => {
            if t.votelst <= round {
                return Err("transaction tries to mark an account as online with last voting round in the past".into());
            }
            if t.votefst > round + 1 {
                return Err(
                    "transaction tries to mark an account as online with first voting round beyond the next voting round"
                        .into(),
                );
            }
            a.online = true;
            a.last_heartbeat = t.fv;
            a.keys = Some(Keys {
                vote,
                selection,
                state_proof: t.sprfkey.as_ref().map(|s| s.to_vec()),
                first: t.votefst,
                last: t.votelst,
                dilution: t.votekd,
            });
            if t.fee >= GO_ONLINE_FEE {
                a.eligible = true;
            }
        }
        _ => {
            if t.nonpart {
                return Err("nonparticipating accounts are not supported by this local chain".into());
            }
            // IncentiveEligible is kept: a graceful exit can come back without paying again
            a.online = false;
            a.keys = None;
        }
    }
    a.record(round);
    Ok(())
}

type Shared = Arc<Mutex<Chain>>;

fn lock(chain: &Shared) -> std::sync::MutexGuard<'_, Chain> {
    chain.lock().unwrap_or_else(|p| p.into_inner())
}

fn message(status: StatusCode, m: String) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "message": m })))
}

async fn params(State(c): State<Shared>) -> (StatusCode, Json<Value>) {
    (StatusCode::OK, Json(lock(&c).params()))
}

async fn status(State(c): State<Shared>) -> (StatusCode, Json<Value>) {
    let c = lock(&c);
    (
        StatusCode::OK,
        Json(json!({
            "last-round": c.round,
            "last-version": "https://github.com/algorandfoundation/specs/tree/v41",
            "time-since-last-round": 0,
            "catchup-time": 0,
            "stopped-at-unsupported-round": false,
        })),
    )
}

async fn block(State(c): State<Shared>, Path(round): Path<u64>) -> (StatusCode, Json<Value>) {
    let c = lock(&c);
    let first = c.blocks.front().map_or(0, |b| b.round);
    let at = round.checked_sub(first).and_then(|i| usize::try_from(i).ok());
    let Some(b) = at.and_then(|i| c.blocks.get(i)) else {
        return message(
            StatusCode::NOT_FOUND,
            format!("failed to retrieve information from the ledger: round {round} is not yet available"),
        );
    };
    let mut v = json!({"rnd": b.round, "ts": b.ts, "gen": c.g.genesis_id, "gh": b64(&c.hash), "fc": b.fees});
    if let Some(p) = b.proposer {
        v["prp"] = json!(address(&p));
        v["pp"] = json!(b.payout);
    }
    (StatusCode::OK, Json(json!({ "block": v })))
}

async fn account(State(c): State<Shared>, Path(addr): Path<String>) -> (StatusCode, Json<Value>) {
    match parse_address(&addr) {
        Ok(a) => (StatusCode::OK, Json(lock(&c).account_json(&a))),
        Err(e) => message(StatusCode::BAD_REQUEST, e),
    }
}

async fn participation(State(c): State<Shared>) -> (StatusCode, Json<Value>) {
    let c = lock(&c);
    let keys: Vec<Value> = c
        .node_keys
        .iter()
        .enumerate()
        .map(|(i, (a, k))| {
            json!({
                "id": hex::encode(Sha512_256::digest(format!("{i}{}", address(a)))),
                "address": address(a),
                "key": keys_json(k),
            })
        })
        .collect();
    (StatusCode::OK, Json(Value::Array(keys)))
}

async fn send(State(c): State<Shared>, body: Bytes) -> (StatusCode, Json<Value>) {
    let group = match decode_body(&body) {
        Ok(g) => g,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    match lock(&c).submit(group) {
        Ok(id) => (StatusCode::OK, Json(json!({ "txId": id }))),
        Err(Refused(m)) => message(StatusCode::BAD_REQUEST, m),
    }
}

async fn pending(State(c): State<Shared>, Path(id): Path<String>) -> (StatusCode, Json<Value>) {
    let c = lock(&c);
    match c.txs.get(&id) {
        Some((round, kind)) if c.round - round <= c.g.pending_memory_rounds => (
            StatusCode::OK,
            Json(json!({"confirmed-round": round, "pool-error": "", "txn": {"txn": {"type": kind}}})),
        ),
        _ => message(
            StatusCode::NOT_FOUND,
            "txn does not exist: could not find the transaction in the transaction pool or in the last 1000 confirmed rounds".into(),
        ),
    }
}

async fn indexer_health(State(c): State<Shared>) -> (StatusCode, Json<Value>) {
    let r = lock(&c).round;
    (
        StatusCode::OK,
        Json(
            json!({"round": r, "db-available": true, "is-migrating": false, "message": r.to_string(), "version": "3.x (softstake local)"}),
        ),
    )
}

/// `/v2/block-headers` parameters.
#[derive(Debug, Deserialize)]
struct HeaderQuery {
    #[serde(default)]
    proposers: Option<String>,
    #[serde(rename = "min-round", default)]
    min_round: Option<u64>,
    #[serde(rename = "max-round", default)]
    max_round: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    next: Option<String>,
}

async fn block_headers(State(c): State<Shared>, Query(q): Query<HeaderQuery>) -> (StatusCode, Json<Value>) {
    let mut proposers = Vec::new();
    for p in q
        .proposers
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
    {
        match parse_address(p) {
            Ok(a) => proposers.push(a),
            Err(e) => return message(StatusCode::BAD_REQUEST, format!("invalid input: {e}")),
        }
    }
    let after: u64 = match q.next.as_deref().map(str::parse).transpose() {
        Ok(n) => n.unwrap_or(0),
        Err(_) => return message(StatusCode::BAD_REQUEST, "invalid input: next token".into()),
    };
    let limit = q.limit.unwrap_or(1_000).clamp(1, 1_000);
    let c = lock(&c);
    let mut blocks = Vec::new();
    for b in c.blocks.iter().filter(|b| b.round > 0) {
        if b.round < q.min_round.unwrap_or(0) || b.round <= after || q.max_round.is_some_and(|m| b.round > m) {
            continue;
        }
        if !proposers.is_empty() && !b.proposer.is_some_and(|p| proposers.contains(&p)) {
            continue;
        }
        let mut v = json!({
            "round": b.round,
            "timestamp": b.ts,
            "genesis-id": c.g.genesis_id,
            "genesis-hash": b64(&c.hash),
            "fees-collected": b.fees,
            "bonus": c.g.bonus,
        });
        if let Some(p) = b.proposer {
            v["proposer"] = json!(address(&p));
            v["proposer-payout"] = json!(b.payout);
        }
        blocks.push(v);
        if blocks.len() == limit {
            break;
        }
    }
    let mut out = json!({"current-round": c.round, "blocks": blocks});
    if let Some(last) = out["blocks"]
        .as_array()
        .filter(|b| b.len() == limit)
        .and_then(|b| b.last())
        .cloned()
    {
        out["next-token"] = json!(last["round"].to_string());
    }
    (StatusCode::OK, Json(out))
}

async fn indexer_transaction(State(c): State<Shared>, Path(id): Path<String>) -> (StatusCode, Json<Value>) {
    let c = lock(&c);
    match c.txs.get(&id) {
        Some((round, kind)) => (
            StatusCode::OK,
            Json(json!({
                "current-round": c.round,
                "transaction": {"id": id, "confirmed-round": round, "round-time": c.ts(*round), "tx-type": kind},
            })),
        ),
        None => message(
            StatusCode::NOT_FOUND,
            format!("no transaction found for transaction id: {id}"),
        ),
    }
}

/// A running local Algorand chain (stopped when dropped).
#[derive(Debug)]
pub struct LocalAlgorand {
    /// `http://127.0.0.1:<port>`: algod's base URL.
    pub algod_url: String,
    /// `http://127.0.0.1:<port>/indexer`: the indexer's base URL.
    pub indexer_url: String,
    chain: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalAlgorand {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the chain on 127.0.0.1:`port` (0 = any free port).
///
/// # Errors
/// A genesis that does not hold together; a port that cannot be bound.
pub async fn start(genesis: AlgorandGenesis, port: u16) -> Result<LocalAlgorand> {
    let tick_ms = genesis.tick_ms;
    let chain: Shared = Arc::new(Mutex::new(Chain::new(genesis)?));
    let app = Router::new()
        .route("/v2/transactions/params", get(params))
        .route("/v2/status", get(status))
        .route("/v2/blocks/{round}", get(block))
        .route("/v2/accounts/{address}", get(account))
        .route("/v2/participation", get(participation))
        .route("/v2/transactions", post(send))
        .route("/v2/transactions/pending/{id}", get(pending))
        .route("/indexer/health", get(indexer_health))
        .route("/indexer/v2/block-headers", get(block_headers))
        .route("/indexer/v2/transactions/{id}", get(indexer_transaction))
        .with_state(chain.clone());
    let ticking = chain.clone();
    let (addr, server) = crate::serve(app, port, tick_ms, move || lock(&ticking).produce(1))
        .await
        .context("the local Algorand node")?;
    Ok(LocalAlgorand {
        algod_url: format!("http://{addr}"),
        indexer_url: format!("http://{addr}/indexer"),
        chain,
        server,
    })
}

impl LocalAlgorand {
    /// Produces `n` rounds.
    pub fn advance_rounds(&self, n: u64) {
        lock(&self.chain).produce(n);
    }

    /// The last round.
    pub fn round(&self) -> u64 {
        lock(&self.chain).round
    }

    /// (balance, online, incentive eligible) of an account.
    pub fn account(&self, pk: &[u8; 32]) -> (u64, bool, bool) {
        let a = lock(&self.chain).accounts.get(pk).cloned().unwrap_or_default();
        (a.amount, a.online, a.eligible)
    }

    /// The payouts `pk` received, summed over every block, microAlgos.
    pub fn payouts(&self, pk: &[u8; 32]) -> u64 {
        lock(&self.chain)
            .blocks
            .iter()
            .filter(|b| b.proposer == Some(*pk))
            .map(|b| b.payout)
            .sum()
    }

    /// Number of confirmed transactions.
    pub fn tx_count(&self) -> usize {
        lock(&self.chain).txs.len()
    }

    /// The fee sink's balance, microAlgos.
    pub fn fee_sink(&self) -> u64 {
        lock(&self.chain).accounts[&FEE_SINK].amount
    }

    /// The sum of every balance (the fee sink's included), microAlgos: payouts only move
    /// ALGO from the fee sink, so it never changes.
    pub fn total_supply(&self) -> u128 {
        lock(&self.chain).accounts.values().map(|a| u128::from(a.amount)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    fn pk(i: u8) -> [u8; 32] {
        key(i).verifying_key().to_bytes()
    }

    fn genesis() -> AlgorandGenesis {
        AlgorandGenesis {
            genesis_id: "local-v1".into(),
            start_time_secs: 1_750_000_000,
            round_ms: 2_800,
            bonus: 10 * ALGO,
            fee_sink: 1_000_000 * ALGO,
            network_online_stake: 100_000 * ALGO,
            accounts: vec![
                GenesisAccount {
                    address: pk(1),
                    amount: 1_000_000 * ALGO,
                    auth: None,
                    participation_key: false,
                },
                GenesisAccount {
                    address: pk(2),
                    amount: MIN_BALANCE,
                    auth: Some(pk(1)),
                    participation_key: true,
                },
            ],
            pending_memory_rounds: 1_000,
            seed: 7,
            tick_ms: 0,
        }
    }

    fn txn(c: &Chain, kind: &str, snd: [u8; 32], fee: u64) -> Txn {
        Txn {
            kind: kind.into(),
            snd: Some(ByteBuf::from(snd.to_vec())),
            fee,
            fv: c.round,
            lv: c.round + 100,
            gen: c.g.genesis_id.clone(),
            gh: Some(ByteBuf::from(c.hash.to_vec())),
            ..Txn::default()
        }
    }

    fn sign(t: Txn, k: &SigningKey, rekeyed: bool) -> SignedTxn {
        let sig = k.sign(&t.signing_bytes().unwrap());
        SignedTxn {
            sgnr: rekeyed.then(|| ByteBuf::from(k.verifying_key().to_bytes().to_vec())),
            sig: Some(ByteBuf::from(sig.to_bytes().to_vec())),
            txn: t,
        }
    }

    fn group(mut ts: Vec<Txn>) -> Vec<Txn> {
        let ids: Vec<[u8; 32]> = ts.iter().map(|t| t.raw_id().unwrap()).collect();
        let g = group_id(&ids).unwrap();
        for t in &mut ts {
            t.grp = Some(ByteBuf::from(g.to_vec()));
        }
        ts
    }

    fn online_keyreg(c: &Chain, who: [u8; 32], fee: u64) -> Txn {
        let k = &c.node_keys[0].1;
        Txn {
            votekey: Some(ByteBuf::from(k.vote.to_vec())),
            selkey: Some(ByteBuf::from(k.selection.to_vec())),
            sprfkey: k.state_proof.clone().map(ByteBuf::from),
            votefst: k.first,
            votelst: k.last,
            votekd: k.dilution,
            ..txn(c, "keyreg", who, fee)
        }
    }

    #[test]
    fn success_group_goes_online_and_earns_payouts_after_the_lookback() {
        let mut c = Chain::new(genesis()).unwrap();
        let supply: u128 = c.accounts.values().map(|a| u128::from(a.amount)).sum();
        let pay = Txn {
            amt: 200_000 * ALGO + GO_ONLINE_FEE,
            rcv: Some(ByteBuf::from(pk(2).to_vec())),
            ..txn(&c, "pay", pk(1), MIN_FEE)
        };
        let reg = online_keyreg(&c, pk(2), GO_ONLINE_FEE);
        let g = group(vec![pay, reg]);
        let signed = vec![sign(g[0].clone(), &key(1), false), sign(g[1].clone(), &key(1), true)];
        c.submit(signed).map_err(|r| r.0).unwrap();
        let a = &c.accounts[&pk(2)];
        assert!(a.online && a.eligible, "online and eligible");
        assert_eq!(a.amount, MIN_BALANCE + 200_000 * ALGO);
        c.produce(BALANCE_LOOKBACK_ROUNDS - 2);
        assert_eq!(
            c.accounts[&pk(2)].last_proposed,
            0,
            "no stake counts before the look-back"
        );
        c.produce(400);
        let paid: u64 = c
            .blocks
            .iter()
            .filter(|b| b.proposer == Some(pk(2)))
            .map(|b| b.payout)
            .sum();
        assert!(paid >= 10 * ALGO, "proposed and was paid: {paid}");
        let now: u128 = c.accounts.values().map(|a| u128::from(a.amount)).sum();
        assert_eq!(now, supply, "payouts and fees only move ALGO");
    }

    #[test]
    fn fail_pool_rules_each_with_algods_message() {
        let mut c = Chain::new(genesis()).unwrap();
        c.produce(5);
        let pay = |c: &Chain, amt: u64| Txn {
            amt,
            rcv: Some(ByteBuf::from(pk(3).to_vec())),
            ..txn(c, "pay", pk(1), MIN_FEE)
        };
        let refused = |c: &mut Chain, s: Vec<SignedTxn>| c.submit(s).err().map(|r| r.0).unwrap_or_default();
        // a forged amount
        let mut forged = sign(pay(&c, ALGO), &key(1), false);
        forged.txn.amt = 2 * ALGO;
        assert!(refused(&mut c, vec![forged]).contains("signature didn't pass"));
        // a rekeyed account signed by its own key
        let own = sign(txn(&c, "keyreg", pk(2), MIN_FEE), &key(2), false);
        assert!(refused(&mut c, vec![own]).contains("should have been authorized by"));
        // window, genesis, fee, overspend, min balance
        let mut dead = pay(&c, ALGO);
        dead.lv = 3;
        dead.fv = 1;
        assert!(refused(&mut c, vec![sign(dead, &key(1), false)]).contains("txn dead"));
        let mut other = pay(&c, ALGO);
        other.gh = Some(ByteBuf::from(vec![1; 32]));
        assert!(refused(&mut c, vec![sign(other, &key(1), false)]).contains("genesis hash mismatch"));
        let mut cheap = pay(&c, ALGO);
        cheap.fee = 10;
        assert!(refused(&mut c, vec![sign(cheap, &key(1), false)]).contains("less than the minimum"));
        let too_much = sign(pay(&c, 2_000_000 * ALGO), &key(1), false);
        assert!(refused(&mut c, vec![too_much]).contains("overspend"));
        let dust = sign(pay(&c, 1_000), &key(1), false);
        assert!(refused(&mut c, vec![dust]).contains("below min"));
        // a group member sent alone; then the same id twice
        let g = group(vec![pay(&c, ALGO), pay(&c, 2 * ALGO)]);
        assert!(refused(&mut c, vec![sign(g[0].clone(), &key(1), false)]).contains("incomplete group"));
        let ok = sign(pay(&c, ALGO), &key(1), false);
        assert!(c.submit(vec![ok.clone()]).is_ok());
        assert!(refused(&mut c, vec![ok]).contains("already in ledger"));
        assert_eq!(c.txs.len(), 1, "only the valid one landed");
    }

    proptest::proptest! {
        /// Any sequence of payments, going online and offline (accepted or refused) and
        /// rounds keeps the supply: fees go to the fee sink, payouts come from it; no
        /// account other than an emptied one sits under the minimum balance; a refused
        /// group changes nothing.
        #[test]
        fn success_supply_is_conserved_and_refusals_change_nothing(
            steps in proptest::collection::vec((0u8..4, 0u64..300_000, 0u64..3_000_000, 0u64..50), 1..40),
        ) {
            let mut c = Chain::new(genesis()).unwrap();
            let supply = |c: &Chain| -> u128 { c.accounts.values().map(|a| u128::from(a.amount)).sum() };
            let start = supply(&c);
            for (kind, algos, fee, rounds) in steps {
                let group = match kind {
                    0 => vec![sign(Txn { amt: algos * ALGO, rcv: Some(ByteBuf::from(pk(2).to_vec())), ..txn(&c, "pay", pk(1), fee) }, &key(1), false)],
                    1 => vec![sign(online_keyreg(&c, pk(2), fee), &key(1), true)],
                    2 => vec![sign(txn(&c, "keyreg", pk(2), fee), &key(1), true)],
                    _ => vec![sign(Txn { amt: algos * ALGO, rcv: Some(ByteBuf::from(pk(1).to_vec())), ..txn(&c, "pay", pk(2), fee) }, &key(1), true)],
                };
                let before: Vec<u64> = c.accounts.values().map(|a| a.amount).collect();
                let (txs, round) = (c.txs.len(), c.round);
                if c.submit(group).is_err() {
                    let after: Vec<u64> = c.accounts.values().map(|a| a.amount).collect();
                    proptest::prop_assert_eq!(after, before, "a refusal changes nothing");
                    proptest::prop_assert_eq!((c.txs.len(), c.round), (txs, round));
                }
                c.produce(rounds);
                proptest::prop_assert_eq!(supply(&c), start);
                proptest::prop_assert!(c.accounts.values().all(|a| a.amount == 0 || a.amount >= MIN_BALANCE));
            }
        }
    }

    #[test]
    fn success_localnet_config_names_the_local_chains_accounts() {
        let text = include_str!("../../../config/localnet.toml");
        let at = text.find("[chains.ALGO]").expect("an ALGO entry");
        let section = &text[at..];
        let id = "softstake-localnet-v1";
        assert!(section.contains(&genesis_hash_b64(id)), "the pinned genesis hash");
        for i in 0..4 {
            assert!(section.contains(&address(&staking_key(id, i))), "staking account {i}");
        }
    }

    #[test]
    fn success_offline_keeps_eligibility_and_stops_proposals() {
        let mut c = Chain::new(genesis()).unwrap();
        let pay = Txn {
            amt: 100_000 * ALGO,
            rcv: Some(ByteBuf::from(pk(2).to_vec())),
            ..txn(&c, "pay", pk(1), MIN_FEE)
        };
        c.submit(vec![sign(pay, &key(1), false)]).map_err(|r| r.0).unwrap();
        c.submit(vec![sign(online_keyreg(&c, pk(2), GO_ONLINE_FEE), &key(1), true)])
            .map_err(|r| r.0)
            .unwrap();
        c.produce(1);
        let off = txn(&c, "keyreg", pk(2), MIN_FEE);
        c.submit(vec![sign(off, &key(1), true)]).map_err(|r| r.0).unwrap();
        let a = &c.accounts[&pk(2)];
        assert!(!a.online && a.eligible, "offline, still eligible (keyreg.go)");
        let before = c.round;
        c.produce(1_000);
        assert!(c
            .blocks
            .iter()
            .filter(|b| b.round > before)
            .all(|b| b.proposer != Some(pk(2))));
    }
}

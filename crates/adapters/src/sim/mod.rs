//! The simulated chain (`sim`): a deterministic, seeded proof-of-stake chain that follows
//! a real chain's liquidity model and realizes rewards from real per-epoch rates.
//!
//! ```text
//!  SimChain (shared state, survives adapter restarts)
//!   ├─ clock: advance_to(t) processes every epoch boundary in between:
//!   │    rewards for the epoch that ended (compound or accrue for claim)
//!   │    activating → active, deactivating → withdrawable at ETA, seeded slashing
//!   ├─ broadcast: verify signature and expiry, roll seeded faults
//!   │    (timeout, rejection, reply lost after landing, delayed finality), apply
//!   └─ SimAdapter: the ChainAdapter over it, signing with the treasury's key
//! ```
//!
//! Chain rules mirrored from real chains: a delegation creates a stake account whose
//! address is derived from the idempotency key (Solana's seeded stake accounts), so a
//! second delegation with the same key fails with "account already in use"; an
//! undelegation unbonds until the model's ETA (epoch boundary or timestamp); a withdrawal
//! takes only withdrawable stake; a claim respects the claim cadence (TRON: once per
//! 24 h). A transaction expires `tx_validity_secs` after signing (Solana's blockhash).

pub mod data;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::info;

use softstake_core::amount::mul_div_floor;
use softstake_core::plan::ALL_VALIDATORS;
use softstake_core::{Amount, Timestamp};

use crate::error::{AdapterError, Result};
use crate::signer::{SecretBytes, Signer, SimSigner};
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, OpKind, Position, RewardKind, RewardRecord, RewardsPage, SignedTx,
    StakeState, TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "sim";
/// Bound on epoch boundaries processed by one `advance_to` (a runaway clock fails loudly).
const MAX_PERIODS_PER_ADVANCE: u64 = 1_000_000;

/// Which real reward-rate series the chain replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RewardSeries {
    /// Per-validator rates of Solana epoch 842 (inflation / stake), constant over time.
    Solana,
    /// Per-epoch rates of a Cardano pool over 100 epochs, cycling.
    Cardano,
}

/// Which validator set the chain has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValidatorSet {
    /// The 986 real Solana validators of epoch 842.
    Solana,
    /// The 125 real Cosmos Hub validators.
    Cosmos,
    /// The 243 real TRON witnesses (27 active).
    Tron,
    /// 60 validators drawn from the Solana set, stakes rescaled to the token by price.
    Generated,
}

/// Probabilities of injected faults, basis points per call (0 = never).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultConfig {
    /// `broadcast` times out; the transaction did not land.
    pub timeout_bps: u32,
    /// `broadcast` is rejected by the node.
    pub reject_bps: u32,
    /// The transaction lands but the reply is lost (a transient error is returned).
    pub lost_reply_bps: u32,
    /// The transaction lands but stays pending for `finality_polls` status polls.
    pub delayed_finality_bps: u32,
    /// Polls a delayed transaction stays pending.
    pub finality_polls: u32,
    /// Chance per epoch that a validator holding our stake is slashed.
    pub slashing_bps_per_epoch: u32,
    /// Share of our stake at that validator lost to a slash, bps.
    pub slash_fraction_bps: u32,
    /// `positions` answers garbage (a malformed response).
    pub garbage_bps: u32,
    /// The transaction lands, is seen pending once, then a reorg drops it: the next status
    /// poll finds it gone and its effect undone (only while nothing else happened on the
    /// chain since, as a short fork would; see [`Fault::Reorg`]).
    #[serde(default)]
    pub reorg_bps: u32,
}

/// A fault to apply to the next call, deterministically (tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The next broadcast times out without landing.
    Timeout,
    /// The next broadcast is rejected.
    Reject,
    /// The next broadcast lands but its reply is lost.
    LostReply,
    /// The next broadcast lands and stays pending for `finality_polls` polls.
    DelayedFinality,
    /// The next `positions` call answers garbage.
    Garbage,
    /// The next broadcast lands on a fork that is then abandoned: the transaction is
    /// reported pending, and at the following status poll it is gone (`NotFound`) with its
    /// effect on balances and stake accounts undone, so the same signed transaction can land
    /// again. Modelled on a short reorg below finality (Solana's `processed` commitment, an
    /// EVM chain's head block). It is only undone while the fork is unobserved: if the
    /// chain's time moved, another transaction landed, or a read (positions, balances,
    /// rewards) saw the effect first, the transaction stays, as if it had been finalized.
    Reorg,
}

/// Everything that defines a simulated chain.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Token symbol.
    pub token: String,
    /// Token decimals (for rescaling validator stakes).
    pub decimals: u8,
    /// The liquidity model the chain enforces.
    pub model: LiquidityModel,
    /// Reward-rate series.
    pub series: RewardSeries,
    /// Validator set.
    pub validator_set: ValidatorSet,
    /// Seed of every random choice.
    pub seed: u64,
    /// Fault probabilities.
    pub faults: FaultConfig,
    /// Chain time of epoch 0's start.
    pub genesis: Timestamp,
    /// Seconds a signed transaction stays valid.
    pub tx_validity_secs: i64,
    /// The treasury account's key (the chain verifies its signatures with it).
    pub treasury_key: SecretBytes,
}

#[derive(Debug, Clone)]
struct SimValidator {
    candidate: ValidatorCandidate,
    /// Solana-series rate: (inflation, stake) of the source Solana validator, lamports.
    solana_rate: (u128, u128),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StakeAccount {
    validator: String,
    amount: Amount,
    state: StakeState,
    activation_period: u64,
    eta: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    kind: OpKind,
    key: String,
    validator: String,
    amount: Amount,
    valid_until: Timestamp,
    signer: String,
    attempt: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Envelope {
    payload: Payload,
    signature: String,
}

/// What a reorg restores: the parts of the state a transaction can change.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Books {
    wallet: Amount,
    accounts: BTreeMap<String, StakeAccount>,
    claimable: BTreeMap<String, Amount>,
    rewards_len: usize,
    last_claim: Option<Timestamp>,
}

/// A landed transaction that a reorg may still drop.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReorgPoint {
    tx_id: String,
    key: String,
    /// `State::mutations` right after it landed (time moving is a mutation too).
    mutation: u64,
    before: Books,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TxRecord {
    landed_at: Timestamp,
    pending_polls: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    now: Timestamp,
    periods_done: u64,
    wallet: Amount,
    accounts: BTreeMap<String, StakeAccount>,
    txs: HashMap<String, TxRecord>,
    effects: HashMap<String, u32>,
    rewards: Vec<RewardRecord>,
    claimable: BTreeMap<String, Amount>,
    last_claim: Option<Timestamp>,
    slashed: Vec<(String, u64, Amount)>,
    rng: ChaCha8Rng,
    faults: FaultConfig,
    #[serde(skip)]
    next_faults: VecDeque<Fault>,
    attempts: u64,
    /// Faults injected so far (timeouts, rejections, lost replies, delayed finality,
    /// garbage answers, slashes).
    #[serde(default)]
    injected: u64,
    /// Changes of the chain's state so far (landed transactions, time, funding, slashes).
    #[serde(default)]
    mutations: u64,
    /// The last landed transaction, while a reorg may still drop it.
    #[serde(default)]
    reorg: Option<ReorgPoint>,
    /// Transactions dropped by reorgs so far.
    #[serde(default)]
    reorgs: u64,
}

/// The whole mutable state of a simulated chain, to persist it between processes (the
/// CLI keeps one file per token under the data folder).
#[derive(Debug, Serialize, Deserialize)]
pub struct SimSnapshot {
    token: String,
    seed: u64,
    state: State,
}

/// A simulated chain; share it with [`Arc`] between adapters (a restarted process gets
/// a new adapter over the same chain).
#[derive(Debug)]
pub struct SimChain {
    cfg: SimConfig,
    validators: Vec<SimValidator>,
    verifier: SimSigner,
    state: Mutex<State>,
}

impl SimChain {
    /// Builds the chain at its genesis time with an empty treasury wallet.
    pub fn new(cfg: SimConfig) -> Result<Arc<SimChain>> {
        let validators = build_validators(&cfg)?;
        let state = State {
            now: cfg.genesis,
            periods_done: 0,
            wallet: Amount::ZERO,
            accounts: BTreeMap::new(),
            txs: HashMap::new(),
            effects: HashMap::new(),
            rewards: Vec::new(),
            claimable: BTreeMap::new(),
            last_claim: None,
            slashed: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            faults: cfg.faults.clone(),
            next_faults: VecDeque::new(),
            attempts: 0,
            injected: 0,
            mutations: 0,
            reorg: None,
            reorgs: 0,
        };
        Ok(Arc::new(SimChain {
            verifier: SimSigner::new(cfg.treasury_key.clone()),
            cfg,
            validators,
            state: Mutex::new(state),
        }))
    }

    /// Rebuilds a chain from a snapshot taken with the same configuration.
    ///
    /// Errors when the snapshot belongs to another token or seed.
    pub fn restore(cfg: SimConfig, snapshot: SimSnapshot) -> Result<Arc<SimChain>> {
        if snapshot.token != cfg.token || snapshot.seed != cfg.seed {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "snapshot of {} (seed {}) does not match {} (seed {})",
                    snapshot.token, snapshot.seed, cfg.token, cfg.seed
                ),
            ));
        }
        let chain = SimChain::new(cfg)?;
        let mut state = snapshot.state;
        state.faults = chain.cfg.faults.clone();
        *chain.lock() = state;
        Ok(chain)
    }

    /// Replaces this chain's state with a snapshot (a standby taking over a token reloads
    /// what the previous leader saved). Errors when the snapshot is of another chain.
    pub fn load_snapshot(&self, snapshot: SimSnapshot) -> Result<()> {
        if snapshot.token != self.cfg.token || snapshot.seed != self.cfg.seed {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "snapshot of {} (seed {}) does not match {} (seed {})",
                    snapshot.token, snapshot.seed, self.cfg.token, self.cfg.seed
                ),
            ));
        }
        let mut state = snapshot.state;
        state.faults = self.cfg.faults.clone();
        *self.lock() = state;
        Ok(())
    }

    /// The chain's state, to restore later with [`SimChain::restore`].
    pub fn snapshot(&self) -> Result<String> {
        let s = self.lock();
        let snap = serde_json::json!({ "token": self.cfg.token, "seed": self.cfg.seed, "state": &*s });
        serde_json::to_string(&snap).map_err(|e| AdapterError::bad_input(CHAIN, format!("snapshot: {e}")))
    }

    /// Parses a snapshot string.
    pub fn parse_snapshot(text: &str) -> Result<SimSnapshot> {
        serde_json::from_str(text).map_err(|e| AdapterError::bad_input(CHAIN, format!("malformed snapshot: {e}")))
    }

    /// The state, for a change: a reorg can no longer drop the last transaction.
    fn lock_mut(&self) -> MutexGuard<'_, State> {
        let mut s = self.lock();
        s.mutations += 1;
        s
    }

    /// The state, for a read that exposes balances or stake: what it sees is final from
    /// then on (a reorg can no longer drop the last transaction).
    fn lock_read(&self) -> MutexGuard<'_, State> {
        let mut s = self.lock();
        s.reorg = None;
        s
    }

    /// Transactions dropped by reorgs so far ([`Fault::Reorg`]).
    pub fn reorgs(&self) -> u64 {
        self.lock().reorgs
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The chain's configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// The treasury's address on this chain.
    pub fn treasury_address(&self) -> String {
        self.verifier.address()
    }

    /// Credits the treasury wallet (custody deposits), base units.
    pub fn fund(&self, amount: Amount) -> Result<()> {
        let mut s = self.lock_mut();
        s.wallet = s
            .wallet
            .checked_add(amount, "wallet")
            .map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        Ok(())
    }

    /// Debits the treasury wallet (custody withdrawals), base units.
    pub fn defund(&self, amount: Amount) -> Result<()> {
        let mut s = self.lock_mut();
        s.wallet = s
            .wallet
            .checked_sub(amount, "wallet")
            .map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        Ok(())
    }

    /// The treasury wallet's free balance, base units.
    pub fn wallet(&self) -> Amount {
        self.lock().wallet
    }

    /// Chain time.
    pub fn now(&self) -> Timestamp {
        self.lock().now
    }

    /// Replaces the fault probabilities.
    pub fn set_faults(&self, faults: FaultConfig) {
        self.lock().faults = faults;
    }

    /// Queues a fault for the next matching call.
    pub fn inject_next(&self, fault: Fault) {
        self.lock().next_faults.push_back(fault);
    }

    /// Slashes `bps` of our stake at `validator` now; returns the amount lost.
    pub fn inject_slashing(&self, validator: &str, bps: u32) -> Amount {
        let mut s = self.lock_mut();
        let epoch = s.periods_done;
        slash(&mut s, validator, bps, epoch)
    }

    /// How many times an operation with this idempotency key took effect on chain.
    pub fn effects(&self, key: &str) -> u32 {
        self.lock().effects.get(key).copied().unwrap_or(0)
    }

    /// Faults this chain injected so far (timeouts, rejections, lost replies, delayed
    /// finality, garbage answers), for the simulator's report.
    pub fn injected_faults(&self) -> u64 {
        self.lock().injected
    }

    /// How many times each operation (by idempotency key) took effect on chain.
    pub fn all_effects(&self) -> BTreeMap<String, u32> {
        self.lock().effects.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Slashes that happened: (validator, epoch, amount lost).
    pub fn slashes(&self) -> Vec<(String, u64, Amount)> {
        self.lock().slashed.clone()
    }

    fn period_secs(&self) -> u64 {
        if self.cfg.model.epoch_secs == 0 {
            86_400
        } else {
            self.cfg.model.epoch_secs
        }
    }

    fn period_of(&self, t: Timestamp) -> u64 {
        let dt = t.0.saturating_sub(self.cfg.genesis.0).max(0) as u128;
        (dt / (u128::from(self.period_secs()) * 1_000_000_000)) as u64
    }

    fn period_start(&self, k: u64) -> Timestamp {
        let secs = i64::try_from(k.saturating_mul(self.period_secs())).unwrap_or(i64::MAX);
        self.cfg.genesis.checked_add_secs(secs).unwrap_or(Timestamp(i64::MAX))
    }

    fn epoch_info_at(&self, t: Timestamp) -> EpochInfo {
        let k = self.period_of(t);
        EpochInfo {
            index: k,
            start: self.period_start(k),
            secs: self.cfg.model.epoch_secs,
        }
    }

    /// Moves chain time to `t`, processing every epoch boundary in between. Earlier
    /// times are ignored.
    pub fn advance_to(&self, t: Timestamp) -> Result<()> {
        let mut s = self.lock();
        if t <= s.now {
            return Ok(());
        }
        s.mutations += 1;
        let target = self.period_of(t);
        if target.saturating_sub(s.periods_done) > MAX_PERIODS_PER_ADVANCE {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("advance of more than {MAX_PERIODS_PER_ADVANCE} epochs"),
            ));
        }
        while s.periods_done < target {
            let k = s.periods_done + 1;
            s.now = self.period_start(k);
            self.end_of_period(&mut s, k - 1)?;
            s.periods_done = k;
        }
        s.now = t;
        release_unbonded(&mut s);
        Ok(())
    }

    /// Moves chain time forward by `secs`.
    pub fn advance_secs(&self, secs: i64) -> Result<()> {
        let t = self
            .now()
            .checked_add_secs(secs)
            .map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        self.advance_to(t)
    }

    fn end_of_period(&self, s: &mut State, ended: u64) -> Result<()> {
        let at = s.now;
        let ids: Vec<String> = s.accounts.keys().cloned().collect();
        let mut per_validator: BTreeMap<String, Amount> = BTreeMap::new();
        for id in &ids {
            let acc = &s.accounts[id];
            if acc.state != StakeState::Active || acc.activation_period > ended {
                continue;
            }
            let r = self.reward(acc, ended)?;
            if r.is_zero() {
                continue;
            }
            let e = per_validator.entry(acc.validator.clone()).or_default();
            *e = e
                .checked_add(r, "reward")
                .map_err(|e| AdapterError::bad_response(CHAIN, e.to_string()))?;
            if self.cfg.model.rewards_auto_compound {
                let acc = s.accounts.get_mut(id).expect("listed above");
                acc.amount = acc
                    .amount
                    .checked_add(r, "stake")
                    .map_err(|e| AdapterError::bad_response(CHAIN, e.to_string()))?;
            }
        }
        for (v, r) in per_validator {
            if self.cfg.model.rewards_auto_compound {
                s.rewards.push(RewardRecord {
                    validator: v,
                    epoch: ended,
                    amount: r,
                    at,
                    kind: RewardKind::Compounded,
                });
            } else {
                let c = s.claimable.entry(v).or_default();
                *c = c
                    .checked_add(r, "claimable")
                    .map_err(|e| AdapterError::bad_response(CHAIN, e.to_string()))?;
            }
        }
        for acc in s.accounts.values_mut() {
            if acc.state == StakeState::Activating && acc.activation_period <= ended + 1 {
                acc.state = StakeState::Active;
                acc.eta = None;
            }
        }
        let roll = s.rng.gen_range(0..10_000u32);
        if roll < s.faults.slashing_bps_per_epoch {
            let held: Vec<String> = s
                .accounts
                .values()
                .filter(|a| a.state == StakeState::Active)
                .map(|a| a.validator.clone())
                .collect();
            if !held.is_empty() {
                let v = held[s.rng.gen_range(0..held.len())].clone();
                let bps = s.faults.slash_fraction_bps;
                let lost = slash(s, &v, bps, ended);
                info!(token = %self.cfg.token, validator = %v, lost = %lost, "simulated slashing");
            }
        }
        release_unbonded(s);
        Ok(())
    }

    /// Reward of one account for one period: amount × rate × (1 − commission).
    fn reward(&self, acc: &StakeAccount, period: u64) -> Result<Amount> {
        let v = self
            .validators
            .iter()
            .find(|v| v.candidate.id == acc.validator)
            .ok_or_else(|| {
                AdapterError::bad_response(CHAIN, format!("stake at unknown validator {}", acc.validator))
            })?;
        let p = u128::from(self.period_secs());
        let overflow = |e: softstake_core::CoreError| AdapterError::bad_response(CHAIN, e.to_string());
        let gross = match self.cfg.series {
            RewardSeries::Solana => {
                let (infl, stake) = v.solana_rate;
                let per_epoch = mul_div_floor(acc.amount.0, infl, stake.max(1), "reward").map_err(overflow)?;
                mul_div_floor(per_epoch, p, u128::from(data::SOLANA_EPOCH_SECS), "reward").map_err(overflow)?
            }
            RewardSeries::Cardano => {
                let hist = data::cardano_pool_history()?;
                let e = &hist[(period as usize) % hist.len()];
                let per_epoch = mul_div_floor(acc.amount.0, e.rewards_lovelace, e.active_stake_lovelace, "reward")
                    .map_err(overflow)?;
                let scaled =
                    mul_div_floor(per_epoch, p, u128::from(data::CARDANO_EPOCH_SECS), "reward").map_err(overflow)?;
                mul_div_floor(scaled, u128::from(v.candidate.performance_bps), 10_000, "reward").map_err(overflow)?
            }
        };
        let net = mul_div_floor(
            gross,
            u128::from(10_000u32.saturating_sub(v.candidate.commission_bps)),
            10_000,
            "reward",
        )
        .map_err(overflow)?;
        Ok(Amount(net))
    }

    fn validator(&self, id: &str) -> Option<&SimValidator> {
        self.validators.iter().find(|v| v.candidate.id == id)
    }

    fn sign(&self, signer: &SimSigner, kind: OpKind, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let mut s = self.lock();
        s.attempts += 1;
        let valid_until = s
            .now
            .checked_add_secs(self.cfg.tx_validity_secs)
            .map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        let payload = Payload {
            kind,
            key: key.to_string(),
            validator: validator.to_string(),
            amount,
            valid_until,
            signer: signer.address(),
            attempt: s.attempts,
        };
        drop(s);
        let bytes = serde_json::to_vec(&payload).map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        let tx_id = hex::encode(Sha256::digest(&bytes));
        let signature = hex::encode(signer.sign(&bytes)?);
        let env = serde_json::to_string(&Envelope { payload, signature })
            .map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        Ok(SignedTx {
            tx_id,
            payload: env,
            valid_until: Some(valid_until),
        })
    }

    fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let env: Envelope = serde_json::from_str(&tx.payload)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("malformed transaction: {e}")))?;
        let bytes = serde_json::to_vec(&env.payload).map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        if hex::encode(Sha256::digest(&bytes)) != tx.tx_id {
            return Err(AdapterError::rejected(
                CHAIN,
                "transaction id does not match its content",
            ));
        }
        let sig = hex::decode(&env.signature).unwrap_or_default();
        if env.payload.signer != self.verifier.address() || !self.verifier.verify(&bytes, &sig) {
            return Err(AdapterError::rejected(CHAIN, "signature verification failed"));
        }
        let mut s = self.lock();
        if s.txs.contains_key(&tx.tx_id) {
            return Ok(()); // already landed: the same transaction again is a no-op
        }
        if env.payload.valid_until < s.now {
            return Err(AdapterError::rejected(
                CHAIN,
                "Blockhash not found (transaction expired)",
            ));
        }
        let fault = next_broadcast_fault(&mut s);
        match fault {
            Some(Fault::Timeout) => return Err(AdapterError::transient(CHAIN, "request timed out")),
            Some(Fault::Reject) => {
                return Err(AdapterError::rejected(
                    CHAIN,
                    "node is behind: transaction dropped (injected)",
                ))
            }
            _ => {}
        }
        let before = (fault == Some(Fault::Reorg)).then(|| books(&s));
        self.apply(&mut s, &env.payload)?;
        s.mutations += 1;
        let pending_polls = match fault {
            Some(Fault::DelayedFinality) => s.faults.finality_polls.max(1),
            Some(Fault::Reorg) => 1,
            _ => 0,
        };
        let now = s.now;
        s.reorg = before.map(|before| ReorgPoint {
            tx_id: tx.tx_id.clone(),
            key: env.payload.key.clone(),
            mutation: s.mutations,
            before,
        });
        s.txs.insert(
            tx.tx_id.clone(),
            TxRecord {
                landed_at: now,
                pending_polls,
            },
        );
        *s.effects.entry(env.payload.key.clone()).or_default() += 1;
        if fault == Some(Fault::LostReply) {
            return Err(AdapterError::transient(CHAIN, "connection reset by peer (reply lost)"));
        }
        Ok(())
    }

    fn apply(&self, s: &mut State, p: &Payload) -> Result<()> {
        if p.kind == OpKind::Claim {
            return self.claim(s, &p.validator);
        }
        let v = self
            .validator(&p.validator)
            .ok_or_else(|| AdapterError::rejected(CHAIN, format!("validator {} not found", p.validator)))?;
        let min = self.cfg.model.min_delegation;
        let bad = |e: softstake_core::CoreError| AdapterError::bad_input(CHAIN, e.to_string());
        match p.kind {
            OpKind::Delegate => {
                if !v.candidate.active {
                    return Err(AdapterError::rejected(CHAIN, "validator is not active"));
                }
                if p.amount < min || p.amount.is_zero() {
                    return Err(AdapterError::rejected(
                        CHAIN,
                        format!("delegation {} below the minimum {min}", p.amount),
                    ));
                }
                if s.wallet < p.amount {
                    return Err(AdapterError::InsufficientFunds {
                        chain: CHAIN.into(),
                        needed: p.amount.0,
                        available: s.wallet.0,
                    });
                }
                let id = derive_account(&p.key, 0);
                if s.accounts.contains_key(&id) {
                    return Err(AdapterError::rejected(CHAIN, format!("account {id} already in use")));
                }
                let period = self.period_of(s.now);
                // Rewards start with the first whole epoch after the delegation in every case.
                let activation_period = period + u64::from(self.cfg.model.activation_epochs.max(1));
                let state = if self.cfg.model.activation_epochs == 0 {
                    StakeState::Active
                } else {
                    StakeState::Activating
                };
                let eta = (state == StakeState::Activating).then(|| self.period_start(activation_period));
                s.wallet = s.wallet.checked_sub(p.amount, "wallet").map_err(bad)?;
                s.accounts.insert(
                    id,
                    StakeAccount {
                        validator: p.validator.clone(),
                        amount: p.amount,
                        state,
                        activation_period,
                        eta,
                    },
                );
            }
            OpKind::Undelegate => {
                let eta = self.cfg.model.unbonding_eta(s.now, &self.epoch_info_at(s.now));
                take(
                    s,
                    &p.validator,
                    p.amount,
                    &[StakeState::Active, StakeState::Activating],
                    min,
                    &p.key,
                    |acc| {
                        acc.state = StakeState::Deactivating;
                        acc.eta = Some(eta);
                    },
                )?;
            }
            OpKind::Withdraw => {
                take(
                    s,
                    &p.validator,
                    p.amount,
                    &[StakeState::Withdrawable],
                    Amount::ZERO,
                    &p.key,
                    |acc| {
                        acc.amount = Amount::ZERO;
                    },
                )?;
                s.accounts.retain(|_, a| !a.amount.is_zero());
                s.wallet = s.wallet.checked_add(p.amount, "wallet").map_err(bad)?;
            }
            OpKind::Claim => return unreachable_claim(),
        }
        Ok(())
    }

    /// Claims accrued rewards of one validator, or of all with [`ALL_VALIDATORS`]
    /// (TRON's `WithdrawBalance`), respecting the claim cadence.
    fn claim(&self, s: &mut State, validator: &str) -> Result<()> {
        if self.cfg.model.rewards_auto_compound {
            return Err(AdapterError::rejected(
                CHAIN,
                "rewards compound on this chain: nothing to claim",
            ));
        }
        if validator != ALL_VALIDATORS && self.validator(validator).is_none() {
            return Err(AdapterError::rejected(
                CHAIN,
                format!("validator {validator} not found"),
            ));
        }
        if let Some(last) = s.last_claim {
            let cadence = i64::try_from(self.cfg.model.claim_cadence_secs).unwrap_or(i64::MAX);
            if s.now.0 - last.0 < cadence.saturating_mul(1_000_000_000) {
                return Err(AdapterError::rejected(
                    CHAIN,
                    "rewards were claimed less than one claim period ago",
                ));
            }
        }
        let taken: Vec<(String, Amount)> = if validator == ALL_VALIDATORS {
            std::mem::take(&mut s.claimable).into_iter().collect()
        } else {
            s.claimable
                .remove(validator)
                .map(|a| vec![(validator.to_string(), a)])
                .unwrap_or_default()
        };
        let total = Amount::checked_sum(taken.iter().map(|(_, a)| *a), "claim")
            .map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        if total.is_zero() {
            return Err(AdapterError::rejected(CHAIN, "no rewards to claim"));
        }
        s.wallet = s
            .wallet
            .checked_add(total, "wallet")
            .map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        let (now, epoch) = (s.now, self.period_of(s.now));
        s.last_claim = Some(now);
        for (v, amount) in taken.into_iter().filter(|(_, a)| !a.is_zero()) {
            s.rewards.push(RewardRecord {
                validator: v,
                epoch,
                amount,
                at: now,
                kind: RewardKind::Claimed,
            });
        }
        Ok(())
    }

    fn tx_status(&self, tx: &SignedTx) -> TxStatus {
        let mut s = self.lock();
        if s.reorg.as_ref().is_some_and(|r| r.tx_id == tx.tx_id) && pending_poll_done(&s, &tx.tx_id) {
            let point = s.reorg.take().expect("checked above");
            if point.mutation == s.mutations {
                roll_back(&mut s, point);
                return TxStatus::NotFound;
            }
        }
        let now = s.now;
        match s.txs.get_mut(&tx.tx_id) {
            None if tx.valid_until.is_some_and(|v| now > v) => TxStatus::Expired,
            None => TxStatus::NotFound,
            Some(t) if t.pending_polls > 0 => {
                t.pending_polls -= 1;
                TxStatus::Pending
            }
            Some(t) => TxStatus::Confirmed { at: t.landed_at },
        }
    }

    fn positions(&self) -> Result<Vec<Position>> {
        let mut s = self.lock_read();
        if s.next_faults.front() == Some(&Fault::Garbage) {
            s.next_faults.pop_front();
            return Err(AdapterError::bad_response(
                CHAIN,
                "getStakeAccounts: lamports field is not a number",
            ));
        }
        if s.faults.garbage_bps > 0 && s.rng.gen_range(0..10_000u32) < s.faults.garbage_bps {
            s.injected += 1;
            return Err(AdapterError::bad_response(
                CHAIN,
                "getStakeAccounts: lamports field is not a number",
            ));
        }
        Ok(s.accounts
            .iter()
            .map(|(id, a)| Position {
                validator: a.validator.clone(),
                state: a.state,
                amount: a.amount,
                eta: a.eta,
                account: Some(id.clone()),
            })
            .collect())
    }
}

/// Claims are applied by `SimChain::claim`, never by the stake-operation match.
fn unreachable_claim() -> Result<()> {
    Err(AdapterError::bad_input(
        CHAIN,
        "claim routed to the stake-operation path",
    ))
}

fn books(s: &State) -> Books {
    Books {
        wallet: s.wallet,
        accounts: s.accounts.clone(),
        claimable: s.claimable.clone(),
        rewards_len: s.rewards.len(),
        last_claim: s.last_claim,
    }
}

/// Whether the transaction was already reported pending once (a reorg drops it at the poll
/// after that, so the caller has seen it in flight).
fn pending_poll_done(s: &State, tx_id: &str) -> bool {
    s.txs.get(tx_id).is_some_and(|t| t.pending_polls == 0)
}

/// Drops the transaction of a reorg point and undoes its effect.
fn roll_back(s: &mut State, point: ReorgPoint) {
    let b = point.before;
    s.wallet = b.wallet;
    s.accounts = b.accounts;
    s.claimable = b.claimable;
    s.rewards.truncate(b.rewards_len);
    s.last_claim = b.last_claim;
    s.txs.remove(&point.tx_id);
    if let Some(n) = s.effects.get_mut(&point.key) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            s.effects.remove(&point.key);
        }
    }
    s.mutations += 1;
    s.reorgs += 1;
}

fn next_broadcast_fault(s: &mut State) -> Option<Fault> {
    let f = pick_broadcast_fault(s);
    if f.is_some() {
        s.injected += 1;
    }
    f
}

fn pick_broadcast_fault(s: &mut State) -> Option<Fault> {
    if let Some(f) = s.next_faults.front().copied().filter(|f| *f != Fault::Garbage) {
        s.next_faults.pop_front();
        return Some(f);
    }
    let f = s.faults.clone();
    let r = s.rng.gen_range(0..10_000u32);
    let mut edge = f.timeout_bps;
    if r < edge {
        return Some(Fault::Timeout);
    }
    edge += f.reject_bps;
    if r < edge {
        return Some(Fault::Reject);
    }
    edge += f.lost_reply_bps;
    if r < edge {
        return Some(Fault::LostReply);
    }
    edge += f.delayed_finality_bps;
    if r < edge {
        return Some(Fault::DelayedFinality);
    }
    edge += f.reorg_bps;
    if r < edge {
        return Some(Fault::Reorg);
    }
    None
}

/// Address of the `n`-th stake account created by the operation `key` (seeded
/// derivation: the same key always gives the same address).
fn derive_account(key: &str, n: u32) -> String {
    let mut h = Sha256::new();
    h.update(format!("stake|{key}|{n}"));
    format!("sa-{}", hex::encode(&h.finalize()[..10]))
}

/// Takes `amount` out of the accounts of `validator` in `states` as
/// [`softstake_core::position::draw_stake`] draws it: whole accounts go to `change`; at
/// most one is split (the split-off part goes to `change`). Refuses a draw that would
/// leave or split off less than `min`.
fn take<F: Fn(&mut StakeAccount)>(
    s: &mut State,
    validator: &str,
    amount: Amount,
    states: &[StakeState],
    min: Amount,
    key: &str,
    change: F,
) -> Result<()> {
    let ids: Vec<String> = s
        .accounts
        .iter()
        .filter(|(_, a)| a.validator == validator && states.contains(&a.state))
        .map(|(id, _)| id.clone())
        .collect();
    let amounts: Vec<Amount> = ids.iter().map(|id| s.accounts[id].amount).collect();
    let held = Amount::checked_sum(amounts.iter().copied(), "held")
        .map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
    if amount.is_zero() || held < amount {
        return Err(AdapterError::rejected(
            CHAIN,
            format!("{amount} requested but {held} held in {states:?} at {validator}"),
        ));
    }
    let draw = softstake_core::position::draw_stake(&amounts, amount, min).ok_or_else(|| {
        AdapterError::rejected(
            CHAIN,
            format!(
                "no split of the {} stake accounts ({}) gives {amount} leaving every part at zero or at least the minimum {min}",
                amounts.len(),
                amounts.iter().map(Amount::to_string).collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    for (n, (i, part)) in draw.into_iter().enumerate() {
        let id = &ids[i];
        if part == s.accounts[id].amount {
            change(s.accounts.get_mut(id).expect("listed"));
            continue;
        }
        let rest = s.accounts[id]
            .amount
            .checked_sub(part, "split")
            .map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?;
        let mut split = s.accounts[id].clone();
        s.accounts.get_mut(id).expect("listed").amount = rest;
        split.amount = part;
        change(&mut split);
        let new_id = derive_account(key, n as u32 + 1);
        if s.accounts.contains_key(&new_id) {
            return Err(AdapterError::rejected(
                CHAIN,
                format!("account {new_id} already in use"),
            ));
        }
        s.accounts.insert(new_id, split);
    }
    Ok(())
}

fn release_unbonded(s: &mut State) {
    let now = s.now;
    for acc in s.accounts.values_mut() {
        if acc.state == StakeState::Deactivating && acc.eta.is_some_and(|e| e <= now) {
            acc.state = StakeState::Withdrawable;
        }
    }
}

fn slash(s: &mut State, validator: &str, bps: u32, epoch: u64) -> Amount {
    let mut lost = Amount::ZERO;
    for acc in s.accounts.values_mut().filter(|a| a.validator == validator) {
        let cut = acc
            .amount
            .mul_div_floor(u128::from(bps), 10_000, "slash")
            .unwrap_or_default();
        acc.amount = acc.amount.saturating_sub(cut);
        lost = Amount(lost.0.saturating_add(cut.0));
    }
    s.slashed.push((validator.to_string(), epoch, lost));
    lost
}

fn build_validators(cfg: &SimConfig) -> Result<Vec<SimValidator>> {
    let sol = data::solana_validators()?;
    let mut rates: Vec<(u128, u128)> = sol
        .iter()
        .filter(|v| v.stake_lamports > 0)
        .map(|v| (v.inflation_lamports, v.stake_lamports))
        .collect();
    rates.sort_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)));
    let median = rates[rates.len() / 2];
    let perf = |infl: u128, stake: u128| -> u32 {
        if stake == 0 || median.0 == 0 {
            return 0;
        }
        mul_div_floor(
            infl.saturating_mul(median.1),
            10_000,
            stake.saturating_mul(median.0).max(1),
            "perf",
        )
        .ok()
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(u32::MAX)
    };
    let to_token = |amount: u128, src_symbol: &str, src_decimals: u8| -> Result<Amount> {
        rescale(amount, src_symbol, src_decimals, &cfg.token, cfg.decimals)
    };
    let out = match cfg.validator_set {
        ValidatorSet::Solana => sol
            .iter()
            .map(|v| {
                Ok(SimValidator {
                    candidate: ValidatorCandidate {
                        id: v.vote.clone(),
                        name: v.identity.clone(),
                        commission_bps: v.commission_pct.saturating_mul(100),
                        total_stake: to_token(v.stake_lamports, "SOL", 9)?,
                        performance_bps: perf(v.inflation_lamports, v.stake_lamports),
                        active: v.stake_lamports > 0,
                        own_validator: false,
                    },
                    solana_rate: (v.inflation_lamports, v.stake_lamports.max(1)),
                })
            })
            .collect::<Result<Vec<_>>>()?,
        ValidatorSet::Cosmos => data::cosmos_validators()?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let src = &sol[i % sol.len()];
                Ok(SimValidator {
                    candidate: ValidatorCandidate {
                        id: v.address.clone(),
                        name: v.name.clone(),
                        commission_bps: v.commission_bps,
                        total_stake: to_token(v.tokens_uatom, "ATOM", 6)?,
                        performance_bps: 10_000,
                        active: v.tokens_uatom > 0,
                        own_validator: false,
                    },
                    solana_rate: (src.inflation_lamports, src.stake_lamports.max(1)),
                })
            })
            .collect::<Result<Vec<_>>>()?,
        ValidatorSet::Tron => {
            let w = data::tron_witnesses()?;
            let mut miss: Vec<u64> = w
                .iter()
                .filter(|x| x.produced > 0)
                .map(|x| x.missed * 1_000_000 / (x.produced + x.missed))
                .collect();
            miss.sort();
            let median_miss = miss.get(miss.len() / 2).copied().unwrap_or(0);
            w.iter()
                .enumerate()
                .map(|(i, x)| {
                    let src = &sol[i % sol.len()];
                    let m = (x.missed * 1_000_000)
                        .checked_div(x.produced + x.missed)
                        .unwrap_or(1_000_000);
                    let perf_bps = (1_000_000u64.saturating_sub(m) * 10_000 / (1_000_000 - median_miss).max(1)) as u32;
                    Ok(SimValidator {
                        candidate: ValidatorCandidate {
                            id: x.address.clone(),
                            name: x.name.clone(),
                            commission_bps: x.brokerage_pct.saturating_mul(100),
                            total_stake: to_token(x.votes.saturating_mul(1_000_000), "TRX", 6)?,
                            performance_bps: perf_bps,
                            active: x.active,
                            own_validator: false,
                        },
                        solana_rate: (src.inflation_lamports, src.stake_lamports.max(1)),
                    })
                })
                .collect::<Result<Vec<_>>>()?
        }
        ValidatorSet::Generated => {
            let mut by_stake: Vec<&data::SolanaValidator> = sol.iter().filter(|v| v.stake_lamports > 0).collect();
            by_stake.sort_by(|a, b| b.stake_lamports.cmp(&a.stake_lamports).then(a.vote.cmp(&b.vote)));
            let step = (by_stake.len() / 60).max(1);
            let offset = (cfg.seed as usize) % step;
            by_stake
                .iter()
                .skip(offset)
                .step_by(step)
                .take(60)
                .enumerate()
                .map(|(i, v)| {
                    Ok(SimValidator {
                        candidate: ValidatorCandidate {
                            id: format!("{}-validator-{i:02}-{}", cfg.token.to_lowercase(), &v.vote[..8]),
                            name: format!("{} validator {i} (shaped by Solana {})", cfg.token, &v.vote[..8]),
                            commission_bps: v.commission_pct.saturating_mul(100),
                            total_stake: to_token(v.stake_lamports, "SOL", 9)?,
                            performance_bps: perf(v.inflation_lamports, v.stake_lamports),
                            active: true,
                            own_validator: false,
                        },
                        solana_rate: (v.inflation_lamports, v.stake_lamports),
                    })
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    Ok(out)
}

/// Converts `amount` base units of `src` into base units of `dst` at the bundled USD
/// prices (identity when the symbols match).
pub fn rescale(amount: u128, src: &str, src_decimals: u8, dst: &str, dst_decimals: u8) -> Result<Amount> {
    if src == dst {
        return Ok(Amount(amount));
    }
    let prices = data::usd_prices()?;
    let missing = |s: &str| AdapterError::bad_input("data", format!("no bundled price for {s}"));
    let (sn, sd) = *prices.get(src).ok_or_else(|| missing(src))?;
    let (dn, dd) = *prices.get(dst).ok_or_else(|| missing(dst))?;
    let e = |e: softstake_core::CoreError| AdapterError::bad_input("data", e.to_string());
    // amount · (sn/sd) / (dn/dd) · 10^dst / 10^src
    let usd = mul_div_floor(amount, sn, sd, "rescale").map_err(e)?;
    let tokens = mul_div_floor(usd, dd, dn, "rescale").map_err(e)?;
    let v = if dst_decimals >= src_decimals {
        mul_div_floor(tokens, 10u128.pow(u32::from(dst_decimals - src_decimals)), 1, "rescale").map_err(e)?
    } else {
        tokens / 10u128.pow(u32::from(src_decimals - dst_decimals))
    };
    Ok(Amount(v))
}

/// The [`ChainAdapter`] over a [`SimChain`], signing as the treasury.
#[derive(Debug, Clone)]
pub struct SimAdapter {
    chain: Arc<SimChain>,
    signer: SimSigner,
}

impl SimAdapter {
    /// An adapter over `chain` signing with `key` (must be the chain's treasury key for
    /// its transactions to verify).
    pub fn new(chain: Arc<SimChain>, key: SecretBytes) -> SimAdapter {
        SimAdapter {
            chain,
            signer: SimSigner::new(key),
        }
    }

    /// The chain.
    pub fn sim(&self) -> &Arc<SimChain> {
        &self.chain
    }
}

#[async_trait]
impl ChainAdapter for SimAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }
    fn token(&self) -> &str {
        &self.chain.cfg.token
    }
    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        Ok(self.chain.cfg.model.clone())
    }
    async fn epoch(&self) -> Result<EpochInfo> {
        Ok(self.chain.epoch_info_at(self.chain.now()))
    }
    async fn now(&self) -> Result<Timestamp> {
        Ok(self.chain.now())
    }
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        Ok(self.chain.validators.iter().map(|v| v.candidate.clone()).collect())
    }
    async fn positions(&self) -> Result<Vec<Position>> {
        self.chain.positions()
    }
    async fn spendable(&self) -> Result<Amount> {
        Ok(self.chain.lock_read().wallet)
    }
    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        Ok(self
            .chain
            .lock_read()
            .claimable
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }
    async fn delegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        self.chain.sign(&self.signer, OpKind::Delegate, key, validator, amount)
    }
    async fn undelegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        self.chain
            .sign(&self.signer, OpKind::Undelegate, key, validator, amount)
    }
    async fn withdraw(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        self.chain.sign(&self.signer, OpKind::Withdraw, key, validator, amount)
    }
    async fn claim_rewards(&self, key: &str, validator: &str) -> Result<SignedTx> {
        self.chain
            .sign(&self.signer, OpKind::Claim, key, validator, Amount::ZERO)
    }
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        self.chain.broadcast(tx)
    }
    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        Ok(self.chain.tx_status(tx))
    }
    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        use crate::signer::Signer as _;
        Ok(Preflight {
            signer: Some(self.signer.address()),
            fee_token: None,
            signer_balance: Some(self.chain.lock_read().wallet),
            fee_per_operation: Some(Amount::ZERO),
            checks: vec![Check::pass(
                "chain",
                format!("simulated chain, {} validators, no fees", self.chain.validators.len()),
            )],
        })
    }

    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let from: usize = match cursor {
            None | Some("") => 0,
            Some(c) => c
                .parse()
                .map_err(|_| AdapterError::bad_input(CHAIN, format!("bad rewards cursor {c:?}")))?,
        };
        let s = self.chain.lock_read();
        let records = s.rewards.get(from..).unwrap_or_default().to_vec();
        Ok(RewardsPage {
            records,
            cursor: s.rewards.len().max(from).to_string(),
        })
    }
}

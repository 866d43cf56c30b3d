//! The one trait every chain implements, and the types it speaks.
//!
//! Operations are two-phase so the journal can persist a transaction's id *before* the
//! transaction can reach the chain:
//!
//! ```text
//!  delegate/undelegate/withdraw/claim_rewards ─▶ SignedTx { tx_id, payload, valid_until }
//!        (builds and signs; nothing is sent)          │ journal: intent → submitted(tx_id)
//!  broadcast(&SignedTx) ─────────────────────────────▶ chain (idempotent: same tx, same id)
//!  tx_status(tx) ─▶ Pending | Confirmed | Failed | NotFound | Expired
//!        NotFound: it can still land: broadcast the same payload again
//!        Expired: it can never land: sign a new attempt
//! ```

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use softstake_core::plan::OpKind;
pub use softstake_core::position::{EpochInfo, LiquidityModel, Position, StakeState, TreasuryFlow};
pub use softstake_core::validator::ValidatorCandidate;
use softstake_core::{Amount, Timestamp};

use crate::error::{AdapterError, Result};
pub use crate::preflight::{Check, Preflight, Verdict};

/// A signed transaction, not yet sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTx {
    /// The chain's id for it (signature, hash), known before sending.
    pub tx_id: String,
    /// The bytes to send, encoded as the chain's RPC wants them (opaque to the journal).
    pub payload: String,
    /// After this chain time the transaction can never land (Solana blockhash expiry,
    /// NEAR block hash validity, TRON expiration); `None` when it stays valid (an EVM
    /// nonce).
    pub valid_until: Option<Timestamp>,
}

/// What the chain says about a transaction id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxStatus {
    /// Seen but not final yet (not enough confirmations / not finalized).
    Pending,
    /// Final, with the chain time it landed.
    Confirmed {
        /// Block time.
        at: Timestamp,
    },
    /// Landed and failed (it had no effect except fees).
    Failed {
        /// The chain's reason.
        reason: String,
    },
    /// Unknown to the chain, and it can still land (its blockhash or nonce is valid).
    NotFound,
    /// Unknown to the chain and it can never land any more (Solana: its blockhash is no
    /// longer valid): a new attempt may be signed.
    Expired,
}

/// How a realized reward arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RewardKind {
    /// Added to the stake by the chain (auto-compounding).
    Compounded,
    /// Paid to the treasury account by a claim.
    Claimed,
}

/// One realized reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardRecord {
    /// Validator it came from.
    pub validator: String,
    /// The chain's epoch (or height) it belongs to.
    pub epoch: u64,
    /// Amount, base units.
    pub amount: Amount,
    /// Chain time it was realized.
    pub at: Timestamp,
    /// Compounded into the stake or claimed to the account.
    pub kind: RewardKind,
}

/// A page of realized rewards and the cursor to continue from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardsPage {
    /// Rewards after the cursor given, oldest first.
    pub records: Vec<RewardRecord>,
    /// Pass this to the next call.
    pub cursor: String,
}

/// Claimed rewards summed per (height or epoch, validator), with the time of the first
/// one: what a chain's history of claims becomes before it is a [`RewardsPage`].
pub type ClaimSums = BTreeMap<(u64, String), (u128, Timestamp)>;

/// The records of [`ClaimSums`], oldest first, each [`RewardKind::Claimed`].
pub fn claimed_records(sums: ClaimSums) -> Vec<RewardRecord> {
    sums.into_iter()
        .map(|((epoch, validator), (amount, at))| RewardRecord {
            validator,
            epoch,
            amount: Amount(amount),
            at,
            kind: RewardKind::Claimed,
        })
        .collect()
}

/// The chain time of a block timestamp given in Unix seconds (`what` names it in the
/// error).
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `chain` for seconds beyond the time range.
pub fn unix_secs_time(chain: &str, what: &str, secs: u64) -> Result<Timestamp> {
    i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_unix_secs(s).ok())
        .ok_or_else(|| AdapterError::bad_response(chain, format!("{what} {secs} s is out of range")))
}

/// The UTC day of `now` as the epoch of a chain without epochs (it budgets operations per
/// day); `secs` is the length reported.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `chain` for a time before 1970.
pub fn utc_day_epoch(chain: &str, now: Timestamp, secs: u64) -> Result<EpochInfo> {
    const DAY: i64 = 86_400;
    let day = now.unix_secs().div_euclid(DAY);
    Ok(EpochInfo {
        index: u64::try_from(day).map_err(|_| AdapterError::bad_response(chain, "block time before 1970"))?,
        start: Timestamp::from_unix_secs(day * DAY).map_err(|e| AdapterError::bad_response(chain, e.to_string()))?,
        secs,
    })
}

/// One planned operation, as the journal hands it to an adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRequest {
    /// The journal's idempotency key (also used for derived on-chain addresses).
    pub idempotency_key: String,
    /// What to do.
    pub kind: OpKind,
    /// With which validator.
    pub validator: String,
    /// How much, base units (claims: informational).
    pub amount: Amount,
}

/// A chain, as softstake needs it. Every amount is in base units; every time is chain
/// time. Implementations document the chain's rules with their sources.
#[async_trait]
pub trait ChainAdapter: Send + Sync + Debug {
    /// Chain family name (`sim`, `solana`, `bsc`, …).
    fn chain(&self) -> &str;

    /// Token symbol this adapter stakes.
    fn token(&self) -> &str;

    /// True when the chain keeps no record of rewards to read (NEAR's staking pools
    /// compound them into the share price): the node then books the growth of each
    /// validator's positions over what the ledger holds for it (our own delegations,
    /// undelegations and withdrawals) as realized, at each sync while no operation is
    /// open, keyed by the chain time of the reading (nanoseconds) in place of an epoch.
    /// A property of the adapter, read without I/O.
    fn rewards_from_positions(&self) -> bool {
        false
    }

    /// The pseudo-validator under which the chain pools unbonding stake, when unbonding
    /// is not per validator (TRON Stake 2.0: `UnfreezeBalanceV2` releases frozen TRX, not
    /// a vote, and `WithdrawExpireUnfreeze` takes every expired unfreeze at once). The
    /// adapter then reports unbonding positions under this name; a confirmed undelegation
    /// moves the ledger's stake from `stake:<validator>` to `stake:<this>`, and the
    /// withdrawal is planned from it. `None` (the default) when each validator unbonds on
    /// its own. A property of the adapter, read without I/O.
    fn pooled_unbonding(&self) -> Option<&str> {
        None
    }

    /// True when the chain pays matured unbonding back to the account by itself, with no
    /// transaction to send (Cosmos SDK: x/staking's EndBlocker `CompleteUnbonding`): a
    /// matured entry then vanishes from the chain instead of showing as withdrawable. The
    /// node plans the withdrawal of what its confirmed undelegations released and the
    /// chain no longer shows unbonding, and the adapter's withdrawal books that return
    /// without sending anything. A property of the adapter, read without I/O.
    fn unbonding_returns_itself(&self) -> bool {
        false
    }

    /// Whether the adapter finds its exits from the journal ([`ChainAdapter::journal_exits`])
    /// rather than from the chain's logs: Sonic names its unbonding entries after journal
    /// keys (wrID = keccak256(key)); Sui reads the rewards its withdrawals paid from their
    /// transactions. The orchestrator gives the exits before positions and before rewards.
    /// A property of the adapter, read without I/O.
    fn exits_from_journal(&self) -> bool {
        false
    }

    /// The journal's undelegations not refused, as (validator, idempotency key), and its
    /// confirmed withdrawals (their signed transactions), oldest first. The orchestrator
    /// gives them before each positions read and each rewards read when
    /// [`ChainAdapter::exits_from_journal`]; the adapter keeps them (no I/O). Default:
    /// ignored.
    fn journal_exits(&self, _undelegations: &[(String, String)], _withdrawals: &[SignedTx]) {}

    /// Whether the adapter realizes rewards as the treasury's balance growth net of its
    /// own flows ([`TreasuryFlow`]), which it cannot find on chain by itself (ApeChain:
    /// native transfers leave no log). The orchestrator then resolves the journal's
    /// transactions with [`ChainAdapter::treasury_flow`], stores them next to the flows a
    /// treasury user declared, and gives all of them
    /// ([`ChainAdapter::give_treasury_flows`]) before each `rewards_since`. A property of
    /// the adapter, read without I/O.
    fn rewards_net_of_flows(&self) -> bool {
        false
    }

    /// One transaction's effect on the treasury, from its receipt: `Ok(None)` while the
    /// chain has no receipt for it. `received` is value that reached the treasury
    /// through a contract's internal call, which the receipt does not show (base units);
    /// a plain transfer's value is read and must agree with it when given.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] when the transaction neither comes from nor pays the
    /// treasury, failed, or disagrees with `received`; transport errors as the adapter's.
    /// Default: [`AdapterError::BadInput`] (the chain's rewards do not need flows).
    async fn treasury_flow(&self, tx_id: &str, _received: Option<Amount>) -> Result<Option<TreasuryFlow>> {
        Err(AdapterError::bad_input(
            self.chain(),
            format!("{tx_id}: this chain's rewards are not balance growth; it takes no treasury flows"),
        ))
    }

    /// Every treasury flow the store holds for the token, oldest first (no I/O; the
    /// adapter keeps them for the next `rewards_since`). Default: ignored.
    fn give_treasury_flows(&self, _flows: &[TreasuryFlow]) {}

    /// The chain's unbonding, epochs, minimums and reward style.
    async fn liquidity_model(&self) -> Result<LiquidityModel>;

    /// The current epoch.
    async fn epoch(&self) -> Result<EpochInfo>;

    /// The chain's current time (latest block time).
    async fn now(&self) -> Result<Timestamp>;

    /// Validators we could delegate to, with commission, stake and performance.
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>>;

    /// Our stake positions per validator and state.
    async fn positions(&self) -> Result<Vec<Position>>;

    /// The treasury account's spendable balance (what a delegation can use), base units.
    async fn spendable(&self) -> Result<Amount>;

    /// Rewards accrued but not yet claimed, per validator (empty on auto-compounding
    /// chains).
    async fn claimable(&self) -> Result<Vec<(String, Amount)>>;

    /// Builds and signs a delegation of `amount` to `validator`. Sends nothing.
    async fn delegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx>;

    /// Builds and signs an undelegation (start of unbonding). Sends nothing.
    async fn undelegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx>;

    /// Builds and signs a withdrawal of completed unbonding. Sends nothing.
    async fn withdraw(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx>;

    /// Builds and signs a reward claim (chains that need one). Sends nothing.
    async fn claim_rewards(&self, key: &str, validator: &str) -> Result<SignedTx>;

    /// Sends a signed transaction. Sending the same one again is harmless.
    async fn broadcast(&self, tx: &SignedTx) -> Result<()>;

    /// The status of a signed transaction (found by its id; its payload tells the adapter
    /// when it expires).
    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus>;

    /// Realized rewards after `cursor` (from the beginning when `None`).
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage>;

    /// Chain-specific preflight for `softstake doctor`: the treasury's address, balance
    /// and fee per operation, and checks of the chain's identity (chain id or genesis
    /// hash), the contract code at every configured address and the RPC's history
    /// limits. Reads only; signs and sends nothing. The default reports that the adapter
    /// has no chain-specific checks (one [`Verdict::Warn`] line).
    ///
    /// # Errors
    /// Transport errors when the chain cannot be read at all (the doctor reports them as
    /// a failed line).
    async fn preflight(&self) -> Result<Preflight> {
        Ok(Preflight {
            checks: vec![Check::warn(
                "chain checks",
                format!("the {} adapter has no chain-specific preflight", self.chain()),
                "check the chain id, contract addresses and history limits by hand",
            )],
            ..Preflight::default()
        })
    }

    /// Builds and signs the transaction for a journal operation.
    async fn build(&self, op: &OperationRequest) -> Result<SignedTx> {
        match op.kind {
            OpKind::Delegate => self.delegate(&op.idempotency_key, &op.validator, op.amount).await,
            OpKind::Undelegate => self.undelegate(&op.idempotency_key, &op.validator, op.amount).await,
            OpKind::Withdraw => self.withdraw(&op.idempotency_key, &op.validator, op.amount).await,
            OpKind::Claim => self.claim_rewards(&op.idempotency_key, &op.validator).await,
        }
    }
}

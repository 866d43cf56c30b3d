//! Sonic (S) native staking: the Special Fee Contract (SFC) at
//! `0xFC00FACE00000000000000000000000000000000` and its ConstantsManager
//! (0xsoniclabs/sonic-sfc, `contracts/sfc/SFC.sol`, `ConstantsManager.sol`).
//!
//! ```text
//!  delegate    SFC.delegate(toValidatorID) payable            → Delegated(delegator, id, amount)
//!  undelegate  SFC.undelegate(id, wrID, amount)               → a withdrawal request {epoch, time, amount};
//!              wrID = keccak256(idempotency key): a re-signed attempt of a request that
//!              landed reverts with RequestExists instead of undelegating twice
//!  withdraw    SFC.withdraw(id, wrID) once now ≥ time + withdrawalPeriodTime (14 days)
//!              and currentEpoch ≥ epoch + withdrawalPeriodEpochs; a cheater's stake pays a
//!              slashing penalty here (it shows as drift)
//!  rewards     accrue per sealed epoch (delegators' part after validatorCommission), never
//!              compound by themselves: claimRewards(id) pays them → ClaimedRewards(delegator, id, rewards);
//!              realized reward = those payouts (see `paid`)
//!  positions   getStake(treasury, id) (active) + withdrawal requests read back with
//!              getWithdrawalRequest: named by the journal (its undelegations' keys, less
//!              the wrIDs its confirmed withdrawals sent), or, with no journal given, found
//!              from our Undelegated events
//! ```
//!
//! Amounts are wei (1 S = 10^18 wei). Validators are SFC validator ids, as decimal strings.

use alloy::eips::BlockId;
use alloy::primitives::{Address, U256};
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent, SolInterface};
use async_trait::async_trait;
use std::collections::BTreeSet;
use tokio::sync::Mutex;

use softstake_core::{Amount, Timestamp};

use super::paid::paid_rewards_since;
use super::{call_err, key_id, to_amount, to_u64, validator_index, EvmClient, EvmConfig};
use crate::error::{AdapterError, Result};
use crate::signer::TreasuryKey;
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardsPage, SignedTx, StakeState, TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "sonic";
/// The SFC on Sonic mainnet (chain id 146) and the Blaze testnet (57054).
pub const SFC_ADDRESS: Address = alloy::primitives::address!("0xFC00FACE00000000000000000000000000000000");
/// Most validator ids read (bounds the loop; Sonic has a few dozen).
const MAX_VALIDATORS: u64 = 2_000;
/// Most open withdrawal requests followed at once.
const MAX_REQUESTS: usize = 1_024;
/// Policy: claim each validator's rewards at most once a day (each claim costs gas; the
/// SFC itself allows a claim at any time).
const CLAIM_CADENCE_SECS: u64 = 86_400;
/// Epoch length assumed before two epochs have been sealed, seconds.
const DEFAULT_EPOCH_SECS: u64 = 600;
/// `getValidator.status` of an active validator.
const OK_STATUS: u64 = 0;
/// The SFC's decimal unit (ratios are 1e18-scaled).
const UNIT: u128 = 1_000_000_000_000_000_000;

/// The SFC and ConstantsManager functions, events and errors softstake uses, with the
/// signatures of 0xsoniclabs/sonic-sfc (`contracts/sfc/SFC.sol`, `ConstantsManager.sol`).
mod abi {
    alloy::sol! {
        /// Sonic's Special Fee Contract (the part softstake uses).
        #[sol(rpc, all_derives)]
        interface ISFC {
            error ZeroAmount();
            error ZeroRewards();
            error ValidatorNotExists();
            error ValidatorNotActive();
            error ValidatorDelegationLimitExceeded();
            error RequestExists();
            error RequestNotExists();
            error TransfersNotAllowed();
            error TransferFailed();
            error InsufficientSelfStake();
            error NotEnoughTimePassed();
            error NotEnoughEpochsPassed();
            error StakeIsFullySlashed();

            event Delegated(address indexed delegator, uint256 indexed toValidatorID, uint256 amount);
            event Undelegated(address indexed delegator, uint256 indexed toValidatorID, uint256 indexed wrID, uint256 amount);
            event Withdrawn(address indexed delegator, uint256 indexed toValidatorID, uint256 indexed wrID, uint256 amount, uint256 penalty);
            event ClaimedRewards(address indexed delegator, uint256 indexed toValidatorID, uint256 rewards);

            function currentEpoch() external view returns (uint256);
            function currentSealedEpoch() external view returns (uint256);
            function epochEndTime(uint256 epoch) external view returns (uint256);
            function lastValidatorID() external view returns (uint256);
            function getValidator(uint256 validatorID) external view returns (uint256 status, uint256 receivedStake, address auth, uint256 createdEpoch, uint256 createdTime, uint256 deactivatedTime, uint256 deactivatedEpoch);
            function getStake(address delegator, uint256 toValidatorID) external view returns (uint256);
            function getWithdrawalRequest(address delegator, uint256 toValidatorID, uint256 wrID) external view returns (uint256 epoch, uint256 time, uint256 amount);
            function pendingRewards(address delegator, uint256 toValidatorID) external view returns (uint256);
            function constsAddress() external view returns (address);
            function isSlashed(uint256 validatorID) external view returns (bool);
            function slashingRefundRatio(uint256 validatorID) external view returns (uint256);
            function delegate(uint256 toValidatorID) external payable;
            function undelegate(uint256 toValidatorID, uint256 wrID, uint256 amount) external;
            function withdraw(uint256 toValidatorID, uint256 wrID) external;
            function claimRewards(uint256 toValidatorID) external;
        }

        /// Sonic's network constants (1e18-scaled decimals).
        #[sol(rpc, all_derives)]
        interface IConstantsManager {
            function minSelfStake() external view returns (uint256);
            function validatorCommission() external view returns (uint256);
            function withdrawalPeriodEpochs() external view returns (uint256);
            function withdrawalPeriodTime() external view returns (uint256);
        }
    }
}
pub use abi::{IConstantsManager, ISFC};

/// Names an SFC custom error from revert data (the ABI's 4-byte selector and arguments);
/// `None` for data that is none of them.
pub fn decode_revert(data: &[u8]) -> Option<String> {
    ISFC::ISFCErrors::abi_decode(data).ok().map(|e| format!("SFC {e:?}"))
}

fn u64_of(what: &str, v: U256) -> Result<u64> {
    to_u64(CHAIN, what, v)
}

fn time_of(what: &str, v: U256) -> Result<Timestamp> {
    let secs = i64::try_from(v).map_err(|_| AdapterError::bad_response(CHAIN, format!("{what} {v} is not a time")))?;
    Timestamp::from_unix_secs(secs).map_err(|e| AdapterError::bad_response(CHAIN, format!("{what}: {e}")))
}

/// The SFC's slashing penalty on `amount` wei for a refund ratio (1e18 = all back).
fn slashing_penalty(amount: u128, refund_ratio: U256) -> u128 {
    let unit = U256::from(UNIT);
    if refund_ratio >= unit {
        return 0;
    }
    let penalty = U256::from(amount) * (unit - refund_ratio) / unit + U256::from(1);
    u128::try_from(penalty).unwrap_or(u128::MAX).min(amount)
}

/// One open withdrawal request of ours.
#[derive(Debug, Clone)]
struct Request {
    validator: u64,
    wr_id: U256,
    epoch: u64,
    time: Timestamp,
    amount: Amount,
}

/// Most pages of history one read of the withdrawal requests scans (100 000 000 blocks
/// at the default log range); a longer history continues at the next read.
const MAX_SCAN_PAGES: u64 = 100;

/// Withdrawal requests found so far: (validator id, wrID) from our `Undelegated` events,
/// and the next block to scan (the last `confirmations` blocks before it are scanned
/// again, for reorgs). Rebuilt from `start_block` after a restart.
#[derive(Debug, Default)]
struct RequestScan {
    next_block: Option<u64>,
    open: BTreeSet<(u64, U256)>,
}

/// The withdrawal rules read from the ConstantsManager.
#[derive(Debug, Clone, Copy)]
struct Rules {
    period_secs: u64,
    period_epochs: u64,
    current_epoch: u64,
}

impl Rules {
    fn matured(&self, r: &Request, now: Timestamp) -> bool {
        let unlock = r.time.unix_secs().saturating_add(self.period_secs as i64);
        now.unix_secs() >= unlock && self.current_epoch >= r.epoch.saturating_add(self.period_epochs)
    }
}

/// The S adapter.
#[derive(Debug)]
pub struct SonicAdapter {
    evm: EvmClient,
    sfc: Address,
    scan: Mutex<RequestScan>,
    /// Open withdrawal requests as the journal names them ([`ChainAdapter::journal_exits`]):
    /// `None` until the orchestrator gives them, then the log scan is not used.
    journal: std::sync::Mutex<Option<BTreeSet<(u64, U256)>>>,
}

impl SonicAdapter {
    /// An adapter for the SFC at `sfc` ([`SFC_ADDRESS`] on Sonic).
    ///
    /// # Errors
    /// As [`EvmClient::new`].
    pub fn new(cfg: EvmConfig, key: impl Into<TreasuryKey>, sfc: Address) -> Result<SonicAdapter> {
        Ok(SonicAdapter {
            evm: EvmClient::new(CHAIN, cfg, key)?,
            journal: std::sync::Mutex::new(None),
            sfc,
            scan: Mutex::new(RequestScan::default()),
        })
    }

    /// The treasury's address (the delegator).
    pub fn treasury(&self) -> Address {
        self.evm.address()
    }

    fn sfc(&self) -> ISFC::ISFCInstance<&alloy::providers::RootProvider> {
        ISFC::new(self.sfc, self.evm.provider())
    }

    async fn consts(&self) -> Result<IConstantsManager::IConstantsManagerInstance<&alloy::providers::RootProvider>> {
        let at = self
            .sfc()
            .constsAddress()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "SFC.constsAddress", e))?;
        Ok(IConstantsManager::new(at, self.evm.provider()))
    }

    fn validator_id(validator: &str) -> Result<u64> {
        validator_index(CHAIN, validator, "SFC")
    }

    async fn last_validator(&self, at: BlockId) -> Result<u64> {
        let last = self
            .sfc()
            .lastValidatorID()
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "SFC.lastValidatorID", e))?;
        let last = u64_of("lastValidatorID", last)?;
        if last > MAX_VALIDATORS {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("lastValidatorID {last}: more than {MAX_VALIDATORS} validators"),
            ));
        }
        Ok(last)
    }

    async fn stake(&self, id: u64, at: BlockId) -> Result<Amount> {
        let s = self
            .sfc()
            .getStake(self.treasury(), U256::from(id))
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "SFC.getStake", e))?;
        to_amount(CHAIN, "getStake", s)
    }

    async fn rules(&self) -> Result<Rules> {
        let c = self.consts().await?;
        let period_secs = c
            .withdrawalPeriodTime()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "ConstantsManager.withdrawalPeriodTime", e))?;
        let period_epochs = c
            .withdrawalPeriodEpochs()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "ConstantsManager.withdrawalPeriodEpochs", e))?;
        let current = self
            .sfc()
            .currentEpoch()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "SFC.currentEpoch", e))?;
        Ok(Rules {
            period_secs: u64_of("withdrawalPeriodTime", period_secs)?,
            period_epochs: u64_of("withdrawalPeriodEpochs", period_epochs)?,
            current_epoch: u64_of("currentEpoch", current)?,
        })
    }

    /// The requests to read back: the journal's when given, else the log scan's.
    async fn candidates(&self, to: u64) -> Result<BTreeSet<(u64, U256)>> {
        let named = self.journal.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match named {
            Some(set) => Ok(set),
            None => self.scanned(to).await,
        }
    }

    /// Our open withdrawal requests at block `to`, read back with getWithdrawalRequest
    /// (an empty one, withdrawn or never made, is dropped).
    async fn requests(&self, to: u64) -> Result<Vec<Request>> {
        let candidates = self.candidates(to).await?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (validator, wr_id) in candidates {
            let r = self
                .sfc()
                .getWithdrawalRequest(self.treasury(), U256::from(validator), wr_id)
                .block(BlockId::number(to))
                .call()
                .await
                .map_err(|e| call_err(CHAIN, "SFC.getWithdrawalRequest", e))?;
            if r.epoch.is_zero() {
                gone.push((validator, wr_id));
                continue;
            }
            out.push(Request {
                validator,
                wr_id,
                epoch: u64_of("withdrawal request epoch", r.epoch)?,
                time: time_of("withdrawal request time", r.time)?,
                amount: to_amount(CHAIN, "withdrawal request amount", r.amount)?,
            });
        }
        let mut scan = self.scan.lock().await;
        for g in gone {
            scan.open.remove(&g);
        }
        out.sort_by_key(|r| (r.validator, r.time, r.wr_id));
        Ok(out)
    }

    /// Requests found from our `Undelegated` events up to block `to`: new events since the
    /// last scan are added.
    async fn scanned(&self, to: u64) -> Result<BTreeSet<(u64, U256)>> {
        let mut scan = self.scan.lock().await;
        // the last `confirmations` blocks are read again: a reorg may have put one of our
        // Undelegated events into a block already scanned on the abandoned branch
        let start = self.evm.config().start_block;
        let from = scan
            .next_block
            .map_or(start, |n| n.saturating_sub(self.evm.config().confirmations).max(start));
        let filter = Filter::new()
            .address(self.sfc)
            .event_signature(ISFC::Undelegated::SIGNATURE_HASH)
            .topic1(self.treasury().into_word());
        // a page of history at a time, progress kept after each: a long history (a first
        // read from start_block, an outage) is read across calls if need be
        let mut page_from = from;
        for _ in 0..MAX_SCAN_PAGES {
            if page_from > to {
                break;
            }
            let page_to = super::page_end(page_from, to, self.evm.page_blocks());
            for log in self.evm.logs(&filter, page_from, page_to).await? {
                let ev = ISFC::Undelegated::decode_log(&log.inner)
                    .map_err(|e| AdapterError::bad_response(CHAIN, format!("Undelegated log: {e}")))?;
                scan.open
                    .insert((u64_of("Undelegated.toValidatorID", ev.toValidatorID)?, ev.wrID));
                if scan.open.len() > MAX_REQUESTS {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        format!("more than {MAX_REQUESTS} open withdrawal requests"),
                    ));
                }
            }
            scan.next_block = Some(scan.next_block.map_or(page_to + 1, |n| n.max(page_to + 1)));
            page_from = page_to + 1;
        }
        if page_from <= to {
            return Err(AdapterError::transient(
                CHAIN,
                format!(
                    "withdrawal requests read up to block {}; {to} not reached yet: the next read continues",
                    page_from - 1
                ),
            ));
        }
        Ok(scan.open.clone())
    }

    /// The open requests the journal names: each undelegation's (validator, wrID =
    /// keccak256(key)) less the (validator, wrID) its confirmed withdrawals sent.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a validator that is not an id, a withdrawal whose
    /// payload is not an SFC `withdraw`; [`AdapterError::BadResponse`] past
    /// [`MAX_REQUESTS`] open.
    fn named_requests(undelegations: &[(String, String)], withdrawals: &[SignedTx]) -> Result<BTreeSet<(u64, U256)>> {
        let mut withdrawn = BTreeSet::new();
        for tx in withdrawals {
            for (_, env, _) in super::decode_payload(CHAIN, tx)? {
                let call = ISFC::withdrawCall::abi_decode(alloy::consensus::Transaction::input(&env)).map_err(|e| {
                    AdapterError::bad_input(CHAIN, format!("withdrawal {} is not SFC.withdraw: {e}", tx.tx_id))
                })?;
                withdrawn.insert((u64_of("withdraw toValidatorID", call.toValidatorID)?, call.wrID));
            }
        }
        let mut open = BTreeSet::new();
        for (validator, key) in undelegations {
            let named = (Self::validator_id(validator)?, key_id(key));
            if !withdrawn.contains(&named) {
                open.insert(named);
            }
        }
        if open.len() > MAX_REQUESTS {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("the journal names more than {MAX_REQUESTS} open withdrawal requests"),
            ));
        }
        Ok(open)
    }

    /// What `amount` of stake at validator `id` is worth when it leaves: the SFC takes a
    /// slashing penalty from a double-signer's stake on withdrawal
    /// (`_getSlashingPenalty`: `amount × (1 − refundRatio) + 1`, at most `amount`).
    async fn net_of_penalty(&self, id: u64, amount: Amount, at: BlockId) -> Result<Amount> {
        let slashed = self
            .sfc()
            .isSlashed(U256::from(id))
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "SFC.isSlashed", e))?;
        if !slashed {
            return Ok(amount);
        }
        let ratio = self
            .sfc()
            .slashingRefundRatio(U256::from(id))
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "SFC.slashingRefundRatio", e))?;
        Ok(Amount(amount.0.saturating_sub(slashing_penalty(amount.0, ratio))))
    }

    async fn sign(&self, call: impl SolCall, value: U256) -> Result<SignedTx> {
        self.evm
            .sign_call(self.sfc, value, call.abi_encode().into(), decode_revert)
            .await
    }

    async fn sealed_epoch(&self) -> Result<U256> {
        self.sfc()
            .currentSealedEpoch()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "SFC.currentSealedEpoch", e))
    }

    async fn epoch_end(&self, epoch: U256) -> Result<U256> {
        self.sfc()
            .epochEndTime(epoch)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "SFC.epochEndTime", e))
    }

    /// The last sealed epoch's length, seconds (`sealed_end`: its end time), or
    /// [`DEFAULT_EPOCH_SECS`] before two epochs have been sealed.
    async fn epoch_secs(&self, sealed: U256, sealed_end: U256) -> Result<u64> {
        if sealed < U256::from(2) {
            return Ok(DEFAULT_EPOCH_SECS);
        }
        let before = self.epoch_end(sealed - U256::from(1)).await?;
        let secs = u64_of("epoch length", sealed_end.saturating_sub(before))?;
        Ok(if secs == 0 { DEFAULT_EPOCH_SECS } else { secs })
    }
}

#[async_trait]
impl ChainAdapter for SonicAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn exits_from_journal(&self) -> bool {
        true
    }

    /// Keeps the open requests the journal names; a malformed journal entry keeps the
    /// previous set (and is logged), so the next positions read still names what it can.
    fn journal_exits(&self, undelegations: &[(String, String)], withdrawals: &[SignedTx]) {
        match Self::named_requests(undelegations, withdrawals) {
            Ok(open) => *self.journal.lock().unwrap_or_else(|p| p.into_inner()) = Some(open),
            Err(e) => {
                tracing::warn!(chain = CHAIN, error = %e, "the journal's exits could not name the withdrawal requests")
            }
        }
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        self.evm.preflight(&[("SFC", self.sfc)], true).await
    }
    fn token(&self) -> &str {
        "S"
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let rules = self.rules().await?;
        Ok(LiquidityModel {
            unbonding_period_secs: rules.period_secs,
            epoch_secs: {
                let sealed = self.sealed_epoch().await?;
                self.epoch_secs(sealed, self.epoch_end(sealed).await?).await?
            },
            epoch_aligned: false,
            activation_epochs: 0,
            // the SFC takes any non-zero delegation
            min_delegation: Amount(1),
            rewards_auto_compound: false,
            claim_cadence_secs: CLAIM_CADENCE_SECS,
            claim_all_validators: false,
            max_operations_per_epoch: self.evm.config().max_operations_per_epoch,
            instant_exit: false,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: false,
        })
    }

    async fn epoch(&self) -> Result<EpochInfo> {
        let current = self
            .sfc()
            .currentEpoch()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "SFC.currentEpoch", e))?;
        let sealed = self.sealed_epoch().await?;
        // the current epoch started when the last one was sealed
        let start = self.epoch_end(sealed).await?;
        Ok(EpochInfo {
            index: u64_of("currentEpoch", current)?,
            start: time_of("epochEndTime", start)?,
            secs: self.epoch_secs(sealed, start).await?,
        })
    }

    async fn now(&self) -> Result<Timestamp> {
        Ok(self.evm.head().await?.1)
    }

    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let at = BlockId::latest();
        let commission = self
            .consts()
            .await?
            .validatorCommission()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "ConstantsManager.validatorCommission", e))?;
        // 1e18-scaled fraction → basis points
        let commission_bps = u32::try_from(commission / U256::from(100_000_000_000_000u64))
            .ok()
            .filter(|b| *b <= 10_000)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("validatorCommission {commission}")))?;
        let mut out = Vec::new();
        for id in 1..=self.last_validator(at).await? {
            let v = self
                .sfc()
                .getValidator(U256::from(id))
                .block(at)
                .call()
                .await
                .map_err(|e| call_err(CHAIN, "SFC.getValidator", e))?;
            if v.auth == Address::ZERO {
                continue;
            }
            let active = v.status == U256::from(OK_STATUS);
            out.push(ValidatorCandidate {
                id: id.to_string(),
                name: format!("validator {id}"),
                commission_bps,
                total_stake: to_amount(CHAIN, "receivedStake", v.receivedStake)?,
                performance_bps: if active { 10_000 } else { 0 },
                active,
                own_validator: false,
            });
        }
        Ok(out)
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let (block, now) = self.evm.head().await?;
        let at = BlockId::number(block);
        let mut out = Vec::new();
        for id in 1..=self.last_validator(at).await? {
            let stake = self.stake(id, at).await?;
            if !stake.is_zero() {
                let stake = self.net_of_penalty(id, stake, at).await?;
                out.push(Position {
                    validator: id.to_string(),
                    state: StakeState::Active,
                    amount: stake,
                    eta: None,
                    account: None,
                });
            }
        }
        let rules = self.rules().await?;
        for r in self.requests(block).await? {
            let matured = rules.matured(&r, now);
            let amount = self.net_of_penalty(r.validator, r.amount, at).await?;
            out.push(Position {
                validator: r.validator.to_string(),
                state: if matured {
                    StakeState::Withdrawable
                } else {
                    StakeState::Deactivating
                },
                amount,
                eta: (!matured)
                    .then(|| Timestamp::from_unix_secs(r.time.unix_secs().saturating_add(rules.period_secs as i64)))
                    .transpose()
                    .map_err(|e| AdapterError::bad_response(CHAIN, e.to_string()))?,
                account: Some(format!("wrID {:#x}", r.wr_id)),
            });
        }
        Ok(out)
    }

    async fn spendable(&self) -> Result<Amount> {
        self.evm.spendable_native().await
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        let at = BlockId::latest();
        let mut out = Vec::new();
        for id in 1..=self.last_validator(at).await? {
            let r = self
                .sfc()
                .pendingRewards(self.treasury(), U256::from(id))
                .block(at)
                .call()
                .await
                .map_err(|e| call_err(CHAIN, "SFC.pendingRewards", e))?;
            if !r.is_zero() {
                out.push((id.to_string(), to_amount(CHAIN, "pendingRewards", r)?));
            }
        }
        Ok(out)
    }

    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let id = Self::validator_id(validator)?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "delegation of 0 wei"));
        }
        let call = ISFC::delegateCall {
            toValidatorID: U256::from(id),
        };
        self.sign(call, U256::from(amount.0)).await
    }

    async fn undelegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let id = Self::validator_id(validator)?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "undelegation of 0 wei"));
        }
        let stake = self.stake(id, BlockId::latest()).await?;
        if amount > stake {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("undelegate {amount} wei from validator {id}: only {stake} wei staked there"),
            ));
        }
        let call = ISFC::undelegateCall {
            toValidatorID: U256::from(id),
            wrID: key_id(key),
            amount: U256::from(amount.0),
        };
        // named at once: reads before the orchestrator's next journal_exits see it (an
        // undelegation that never lands reads back empty and is not shown)
        if let Some(named) = self.journal.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            named.insert((id, key_id(key)));
        }
        self.sign(call, U256::ZERO).await
    }

    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let id = Self::validator_id(validator)?;
        let (block, now) = self.evm.head().await?;
        let rules = self.rules().await?;
        let requests = self.requests(block).await?;
        let matured = requests.iter().filter(|r| r.validator == id && rules.matured(r, now));
        let at = BlockId::number(block);
        let mut have = Vec::new();
        let mut found = None;
        for r in matured {
            let net = self.net_of_penalty(id, r.amount, at).await?;
            if net == amount && found.is_none() {
                found = Some(r);
            }
            have.push(net.to_string());
        }
        let Some(r) = found else {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "no matured withdrawal request worth {amount} wei at validator {id} (matured, after any slashing penalty: [{}])",
                    have.join(", ")
                ),
            ));
        };
        let call = ISFC::withdrawCall {
            toValidatorID: U256::from(id),
            wrID: r.wr_id,
        };
        self.sign(call, U256::ZERO).await
    }

    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        let id = Self::validator_id(validator)?;
        let call = ISFC::claimRewardsCall {
            toValidatorID: U256::from(id),
        };
        self.sign(call, U256::ZERO).await
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        self.evm.broadcast(tx).await
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        self.evm.tx_status(tx).await
    }

    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let filter = Filter::new()
            .address(self.sfc)
            .event_signature(ISFC::ClaimedRewards::SIGNATURE_HASH)
            .topic1(self.treasury().into_word());
        paid_rewards_since(&self.evm, CHAIN, cursor, &filter, |log| {
            let ev = ISFC::ClaimedRewards::decode_log(&log.inner)
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("ClaimedRewards log: {e}")))?;
            let id = u64_of("ClaimedRewards.toValidatorID", ev.toValidatorID)?;
            Ok(Some((
                id.to_string(),
                to_amount(CHAIN, "ClaimedRewards.rewards", ev.rewards)?,
            )))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolError;

    #[test]
    fn success_reverts_are_named() {
        let data = ISFC::RequestExists {}.abi_encode();
        assert!(decode_revert(&data).unwrap().contains("RequestExists"));
        assert_eq!(decode_revert(&[9, 9, 9, 9]), None);
    }

    #[test]
    fn fail_validator_must_be_a_positive_id() {
        for bad in ["0", "-1", "0xabc", "validator 1", ""] {
            let e = SonicAdapter::validator_id(bad).unwrap_err();
            assert!(matches!(e, AdapterError::BadInput { .. }), "{bad}: {e}");
        }
        assert_eq!(SonicAdapter::validator_id("17").unwrap(), 17);
    }

    #[test]
    fn success_slashing_penalty_as_the_sfc() {
        let unit = U256::from(UNIT);
        assert_eq!(slashing_penalty(1_000, unit), 0, "full refund");
        assert_eq!(slashing_penalty(1_000, unit / U256::from(2)), 501, "half, plus one wei");
        assert_eq!(slashing_penalty(1_000, U256::ZERO), 1_000, "at most the amount");
        assert_eq!(slashing_penalty(u128::MAX, U256::ZERO), u128::MAX, "256-bit product");
    }

    #[test]
    fn success_withdrawal_needs_time_and_epochs() {
        let rules = Rules {
            period_secs: 100,
            period_epochs: 3,
            current_epoch: 10,
        };
        let r = |epoch, secs| Request {
            validator: 1,
            wr_id: U256::from(1),
            epoch,
            time: Timestamp::from_unix_secs(secs).unwrap(),
            amount: Amount(5),
        };
        let now = Timestamp::from_unix_secs(1_000).unwrap();
        assert!(rules.matured(&r(7, 900), now));
        assert!(!rules.matured(&r(8, 900), now), "epochs not passed");
        assert!(!rules.matured(&r(7, 901), now), "time not passed");
    }
}

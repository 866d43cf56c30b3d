//! APE on ApeChain (an Arbitrum Orbit chain whose gas token is APE): no validators and
//! no staking. APE held on ApeChain earns native yield by rebasing: the account's balance
//! grows by itself, with no claim and no lock (docs.apechain.com, Native Yield: Overview
//! and Yield Modes). An account's yield mode is kept by the ArbInfo precompile at
//! `0x…65` (ApeChain's Nitro fork: `getYieldConfiguration(account)`: 0 automatic,
//! 1 void, 2 delegate; `configureAutomaticYield()` sets the caller's mode). EOAs start in
//! automatic mode; a contract custody, or an EOA someone set to void or delegate, earns
//! nothing until it opts in.
//!
//! ```text
//!  delegate / undelegate / withdraw   none: every unit held in custody earns
//!                                     (LiquidityModel::earns_in_custody: the planner
//!                                     delegates nothing and only tracks the buffer)
//!  claim        ArbInfo.configureAutomaticYield() from the treasury, planned only when the
//!               treasury's yield mode is not automatic (claimable() reports its balance
//!               as not earning): the opt-in is a journaled operation like any other
//!  rewards      per window (b0, b1] of confirmed blocks, b1 the newest confirmed:
//!                 yield = balance(b1) − balance(b0) − Σ the treasury's flows in it
//!                         (received: +value; sent: −value − gasUsed × price)
//!               one Claimed record (validator "native-yield", epoch = b1) when positive
//!  positions    none (nothing is delegated)
//! ```
//!
//! The flows are not found by scanning blocks (native transfers leave no log): each is a
//! transaction named to the adapter ([`ChainAdapter::give_treasury_flows`]) and resolved
//! from its own receipt ([`ApeChainAdapter::treasury_flow`]): the journal's operations,
//! and the custody deposits and withdrawals the exchange makes, which a treasury user
//! declares (`softstake flow`, with the amount when it arrived through a
//! contract's internal call, which no receipt shows). Each sync reads three values at
//! the newest confirmed block only (balance, nonce, time), so a full node serves it: no
//! archive node and no block scan. Two checks keep a missing declaration from being paid
//! out as yield; either refuses the window and books nothing:
//!
//! ```text
//!  nonce(b1) − nonce(b0) ≠ the flows the treasury sent in the window  → an undeclared send
//!  yield > (balance(b0) + received) × max APR × (t1 − t0) / year      → an undeclared deposit
//! ```
//!
//! A deposit smaller than the second bound and never declared is still read as yield:
//! declare every deposit when it is made. Amounts are wei of APE (10^18 per APE).
//! ApeChain mainnet is chain id 33139, the Curtis testnet 33111.

use std::sync::Mutex;

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolCall;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tracing::info;

use softstake_core::{Amount, Timestamp};

use super::{call_err, parse_cursor, rpc_err, to_amount, EvmClient, EvmConfig};
use crate::error::{AdapterError, Result};
use crate::signer::TreasuryKey;
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardKind, RewardRecord, RewardsPage, SignedTx, TreasuryFlow,
    TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "apechain";
/// The ArbInfo precompile (every Arbitrum chain; ApeChain adds the yield-mode functions).
pub const ARB_INFO: Address = alloy::primitives::address!("0x0000000000000000000000000000000000000065");
/// The "validator" name of native-yield rewards.
pub const NATIVE_YIELD: &str = "native-yield";
/// `getYieldConfiguration`: the account earns (automatic rebasing).
pub const YIELD_AUTOMATIC: u8 = 0;
/// Default most yield a window may show, basis points a year of what the treasury held:
/// twice the 10 % APY ApeChain publishes (docs.apechain.com, Native Yield). Growth above
/// it is refused as an undeclared deposit.
pub const DEFAULT_MAX_YIELD_APR_BPS: u32 = 2_000;
/// Most transactions the treasury may send in one window (bounds the check).
const MAX_SENDS_PER_WINDOW: u64 = 10_000;
/// Seconds in the 365-day year of the APR bound.
const SECS_PER_YEAR: u64 = 31_536_000;

/// ApeChain's ArbInfo yield-mode functions (ApeChain Nitro fork, `precompiles/ArbInfo.go`).
mod abi {
    alloy::sol! {
        /// ArbInfo at 0x65.
        #[sol(rpc, all_derives)]
        interface IArbInfo {
            function getBalance(address account) external view returns (uint256);
            function getBalanceValues(address account) external view returns (uint256 fixed_, uint256 shares, uint256 debt);
            function getYieldConfiguration(address account) external view returns (uint8);
            function getDelegate(address account) external view returns (address);
            function configureAutomaticYield() external;
            function configureVoidYield() external;
            function configureDelegateYield(address account) external;
        }
    }
}
pub use abi::IArbInfo;

/// Where the yield accounting stands: the last block accounted and the treasury's
/// balance and nonce after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YieldCursor {
    /// Last block accounted.
    pub block: u64,
    /// The treasury's balance after it, wei (decimal string).
    pub balance: String,
    /// The treasury's account nonce after it (`None` in cursors written before nonces
    /// were kept: the next sync anchors again).
    #[serde(default)]
    pub nonce: Option<u64>,
}

/// The yield of a window: `end − start − flows`, or `None` when the balance fell by more
/// than the flows explain (the caller books nothing).
///
/// # Errors
/// [`AdapterError::BadResponse`] when a value passes 256 bits.
pub fn window_yield(start: U256, end: U256, received: U256, sent: U256) -> Result<Option<U256>> {
    let grew = end
        .checked_add(sent)
        .ok_or_else(|| AdapterError::bad_response(CHAIN, "balance plus sent passes 256 bits"))?;
    let base = start
        .checked_add(received)
        .ok_or_else(|| AdapterError::bad_response(CHAIN, "balance plus received passes 256 bits"))?;
    Ok(grew.checked_sub(base))
}

/// Most yield a window of `secs` seconds may show on `base` wei at `apr_bps` basis
/// points a year (rounded down), wei.
pub fn yield_bound(base: U256, apr_bps: u32, secs: u64) -> U256 {
    let year = U256::from(SECS_PER_YEAR) * U256::from(10_000u64);
    base.saturating_mul(U256::from(apr_bps))
        .saturating_mul(U256::from(secs))
        / year
}

/// Checks that the flows the treasury sent in a window are exactly its nonces
/// `from..to`: each once, none missing.
///
/// # Errors
/// [`AdapterError::BadInput`] naming the nonces missing or out of place.
pub fn check_sent_nonces(window: &str, from: u64, to: u64, sent: &[u64]) -> Result<()> {
    if to < from {
        return Err(AdapterError::bad_response(
            CHAIN,
            format!("the treasury's nonce fell from {from} to {to} in {window}"),
        ));
    }
    if to - from > MAX_SENDS_PER_WINDOW {
        return Err(AdapterError::bad_input(
            CHAIN,
            format!(
                "the treasury sent {} transactions in {window}, more than {MAX_SENDS_PER_WINDOW}: is its key \
                 used by another system? nothing booked",
                to - from
            ),
        ));
    }
    let mut got = sent.to_vec();
    got.sort_unstable();
    let want: Vec<u64> = (from..to).collect();
    if got == want {
        return Ok(());
    }
    let missing: Vec<u64> = want
        .iter()
        .filter(|n| got.binary_search(n).is_err())
        .copied()
        .take(20)
        .collect();
    let extra: Vec<u64> = got
        .iter()
        .filter(|n| !(from..to).contains(*n))
        .copied()
        .take(20)
        .collect();
    Err(AdapterError::bad_input(
        CHAIN,
        format!(
            "the treasury sent {} transactions in {window} (nonces {from}..{to}); softstake knows {} \
             (missing {missing:?}, outside the window {extra:?}): declare each missing one with \
             `softstake flow --token APE --tx <hash>`; nothing booked",
            to - from,
            got.len(),
        ),
    ))
}

/// The APE adapter.
#[derive(Debug)]
pub struct ApeChainAdapter {
    evm: EvmClient,
    arb_info: Address,
    max_yield_apr_bps: u32,
    /// The treasury's flows as the orchestrator last gave them (`None`: not given yet).
    flows: Mutex<Option<Vec<TreasuryFlow>>>,
}

impl ApeChainAdapter {
    /// An adapter whose treasury is the key's account; `arb_info` is [`ARB_INFO`] on
    /// ApeChain. The yield bound is [`DEFAULT_MAX_YIELD_APR_BPS`].
    ///
    /// # Errors
    /// As [`EvmClient::new`].
    pub fn new(cfg: EvmConfig, key: impl Into<TreasuryKey>, arb_info: Address) -> Result<ApeChainAdapter> {
        Ok(ApeChainAdapter {
            evm: EvmClient::new(CHAIN, cfg, key)?,
            arb_info,
            max_yield_apr_bps: DEFAULT_MAX_YIELD_APR_BPS,
            flows: Mutex::new(None),
        })
    }

    /// The same adapter with another yield bound, basis points a year.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for 0 or more than 100 000 (1000 %).
    pub fn with_max_yield_apr_bps(mut self, bps: u32) -> Result<ApeChainAdapter> {
        if bps == 0 || bps > 100_000 {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("max_yield_apr_bps {bps}: must be 1..=100000"),
            ));
        }
        self.max_yield_apr_bps = bps;
        Ok(self)
    }

    /// The treasury (custody) account.
    pub fn treasury(&self) -> Address {
        self.evm.address()
    }

    fn info(&self) -> IArbInfo::IArbInfoInstance<&alloy::providers::RootProvider> {
        IArbInfo::new(self.arb_info, self.evm.provider())
    }

    /// The treasury's yield mode (0 automatic, 1 void, 2 delegate).
    ///
    /// # Errors
    /// Transport and decoding errors as [`call_err`].
    pub async fn yield_mode(&self) -> Result<u8> {
        self.info()
            .getYieldConfiguration(self.treasury())
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "ArbInfo.getYieldConfiguration", e))
    }

    /// The treasury's balance (wei) and account nonce at `block`: state a full node keeps
    /// for its recent blocks.
    async fn state_at(&self, block: u64) -> Result<(U256, u64)> {
        let p = self.evm.provider();
        let balance = p
            .get_balance(self.treasury())
            .block_id(BlockId::number(block))
            .await
            .map_err(|e| rpc_err(CHAIN, "eth_getBalance", &e))?;
        let nonce = p
            .get_transaction_count(self.treasury())
            .block_id(BlockId::number(block))
            .await
            .map_err(|e| rpc_err(CHAIN, "eth_getTransactionCount", &e))?;
        Ok((balance, nonce))
    }

    /// The newest block with `confirmations` blocks on it, its own included.
    async fn confirmed_head(&self) -> Result<u64> {
        let (head, _) = self.evm.head().await?;
        Ok(head.saturating_sub(self.evm.config().confirmations - 1))
    }

    fn cursor_text(block: u64, balance: U256, nonce: u64) -> String {
        serde_json::to_string(&YieldCursor {
            block,
            balance: balance.to_string(),
            nonce: Some(nonce),
        })
        .unwrap_or_default()
    }

    /// The given flows that landed in `(after, to]`: (received, sent, the nonces sent).
    fn window_flows(&self, after: u64, to: u64) -> Result<(U256, U256, Vec<u64>)> {
        let guard = self
            .flows
            .lock()
            .map_err(|_| AdapterError::transient(CHAIN, "flows lock poisoned"))?;
        let Some(flows) = guard.as_ref() else {
            return Err(AdapterError::bad_input(
                CHAIN,
                "the treasury's flows were not given before rewards_since (ChainAdapter::give_treasury_flows)",
            ));
        };
        let (mut received, mut sent, mut nonces) = (U256::ZERO, U256::ZERO, Vec::new());
        for f in flows.iter().filter(|f| f.block > after && f.block <= to) {
            let add = |a: U256, b: Amount| {
                a.checked_add(U256::from(b.0))
                    .ok_or_else(|| AdapterError::bad_response(CHAIN, "flows pass 256 bits"))
            };
            received = add(received, f.received)?;
            sent = add(sent, f.sent)?;
            nonces.extend(f.nonce);
        }
        Ok((received, sent, nonces))
    }

    fn no_delegation(op: &str) -> AdapterError {
        AdapterError::bad_input(
            CHAIN,
            format!("ApeChain has no {op}: APE held in custody earns native yield by itself"),
        )
    }
}

#[async_trait]
impl ChainAdapter for ApeChainAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        self.evm.preflight(&[("ArbInfo", self.arb_info)], false).await
    }
    fn token(&self) -> &str {
        "APE"
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        Ok(LiquidityModel {
            unbonding_period_secs: 0,
            epoch_secs: 0,
            epoch_aligned: false,
            activation_epochs: 0,
            min_delegation: Amount::ZERO,
            // the yield needs no claim; the only "claim" is the opt-in when not earning
            rewards_auto_compound: false,
            claim_cadence_secs: 0,
            claim_all_validators: false,
            max_operations_per_epoch: self.evm.config().max_operations_per_epoch,
            instant_exit: false,
            earns_in_custody: true,
            stake_unit: Amount(1),
            whole_position_exits: false,
        })
    }

    /// The chain has no epochs: the planning epoch is the UTC day (length 0: none).
    async fn epoch(&self) -> Result<EpochInfo> {
        self.evm.utc_day_epoch(0).await
    }

    async fn now(&self) -> Result<Timestamp> {
        Ok(self.evm.head().await?.1)
    }

    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        Ok(Vec::new())
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        Ok(Vec::new())
    }

    async fn spendable(&self) -> Result<Amount> {
        self.evm.spendable_native().await
    }

    /// Empty while the treasury earns; its whole balance under [`NATIVE_YIELD`] when its
    /// yield mode is void or delegated (a claim then opts it in).
    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        if self.yield_mode().await? == YIELD_AUTOMATIC {
            return Ok(Vec::new());
        }
        let b = to_amount(CHAIN, "balance", self.evm.balance().await?)?;
        Ok(vec![(NATIVE_YIELD.to_string(), b)])
    }

    async fn delegate(&self, _key: &str, _validator: &str, _amount: Amount) -> Result<SignedTx> {
        Err(Self::no_delegation("delegation"))
    }

    async fn undelegate(&self, _key: &str, _validator: &str, _amount: Amount) -> Result<SignedTx> {
        Err(Self::no_delegation("undelegation"))
    }

    async fn withdraw(&self, _key: &str, _validator: &str, _amount: Amount) -> Result<SignedTx> {
        Err(Self::no_delegation("withdrawal"))
    }

    /// `configureAutomaticYield()` from the treasury: opts it in to native yield
    /// (harmless when it is already in).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for another validator than [`NATIVE_YIELD`]; signing
    /// errors as [`EvmClient::sign_call`].
    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        if validator != NATIVE_YIELD {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{validator:?}: ApeChain's only reward source is {NATIVE_YIELD:?}"),
            ));
        }
        let call = IArbInfo::configureAutomaticYieldCall {}.abi_encode();
        self.evm
            .sign_call(self.arb_info, U256::ZERO, call.into(), |_| None)
            .await
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        self.evm.broadcast(tx).await
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        self.evm.tx_status(tx).await
    }

    fn rewards_net_of_flows(&self) -> bool {
        true
    }

    fn give_treasury_flows(&self, flows: &[TreasuryFlow]) {
        if let Ok(mut g) = self.flows.lock() {
            *g = Some(flows.to_vec());
        }
    }

    /// The transaction's effect on the treasury, from its receipt and body once it has
    /// `confirmations` blocks on it (`Ok(None)` before): sent by the treasury, its value
    /// (when it succeeded) plus `gasUsed × effectiveGasPrice`, with its nonce; paying the
    /// treasury directly, its value; `received` names value that arrived through a
    /// contract's internal call (wei).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a malformed hash, a transaction that neither comes
    /// from nor pays the treasury (and no `received`), one that failed and was not the
    /// treasury's, or a `received` that disagrees with a direct transfer's value.
    async fn treasury_flow(&self, tx_id: &str, received: Option<Amount>) -> Result<Option<TreasuryFlow>> {
        let hash: B256 = tx_id.parse().map_err(|_| {
            AdapterError::bad_input(CHAIN, format!("{tx_id:?} is not a transaction hash (0x + 64 hex)"))
        })?;
        let p = self.evm.provider();
        let Some(r) = p
            .get_transaction_receipt(hash)
            .await
            .map_err(|e| rpc_err(CHAIN, "eth_getTransactionReceipt", &e))?
        else {
            return Ok(None);
        };
        let block = r
            .block_number
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("receipt of {tx_id} has no block number")))?;
        if block > self.confirmed_head().await? {
            return Ok(None);
        }
        let t = p
            .get_transaction_by_hash(hash)
            .await
            .map_err(|e| rpc_err(CHAIN, "eth_getTransactionByHash", &e))?
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{tx_id} has a receipt and no body")))?;
        let me = self.treasury();
        let value = alloy::consensus::Transaction::value(&t);
        let (from_me, to_me, ok) = (
            r.from == me,
            alloy::consensus::Transaction::to(&t) == Some(me),
            r.status(),
        );
        if !from_me && !to_me && received.is_none() {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "{tx_id} neither comes from nor pays the treasury {me}: name what it delivered through \
                     an internal call (--received)"
                ),
            ));
        }
        if !from_me && !ok {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{tx_id} failed: it moved nothing to the treasury"),
            ));
        }
        let direct = if to_me && ok { value } else { U256::ZERO };
        let received = match received {
            Some(d) if to_me && U256::from(d.0) != direct => {
                return Err(AdapterError::bad_input(
                    CHAIN,
                    format!("{tx_id} paid the treasury {direct} wei, not the {} declared", d.0),
                ))
            }
            Some(d) => U256::from(d.0),
            None => direct,
        };
        let sent = if from_me {
            let fee = U256::from(r.gas_used) * U256::from(r.effective_gas_price);
            if ok {
                fee + value
            } else {
                fee
            }
        } else {
            U256::ZERO
        };
        Ok(Some(TreasuryFlow {
            tx_id: format!("{hash:#x}"),
            block,
            nonce: from_me.then(|| alloy::consensus::Transaction::nonce(&t)),
            received: to_amount(CHAIN, "received", received)?,
            sent: to_amount(CHAIN, "sent", sent)?,
        }))
    }

    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let prev: Option<YieldCursor> = parse_cursor(CHAIN, cursor)?;
        let to = self.confirmed_head().await?;
        let unchanged = || RewardsPage {
            records: Vec::new(),
            cursor: cursor.unwrap_or("").to_string(),
        };
        if prev.as_ref().is_some_and(|c| c.block >= to) {
            return Ok(unchanged());
        }
        let (end, nonce) = self.state_at(to).await?;
        let anchor = || RewardsPage {
            records: Vec::new(),
            cursor: Self::cursor_text(to, end, nonce),
        };
        let Some((prev, prev_nonce)) = prev.and_then(|c| c.nonce.map(|n| (c, n))) else {
            // the first sync (or a cursor without a nonce) anchors at the newest confirmed block
            info!(chain = CHAIN, block = to, balance = %end, nonce, "anchored native-yield accounting");
            return Ok(anchor());
        };
        let start: U256 = prev
            .balance
            .parse()
            .map_err(|_| AdapterError::bad_input(CHAIN, format!("cursor balance {:?} is not wei", prev.balance)))?;
        let window = format!("blocks {}..={to}", prev.block + 1);
        let (received, sent, nonces) = self.window_flows(prev.block, to)?;
        check_sent_nonces(&window, prev_nonce, nonce, &nonces)?;
        let Some(y) = window_yield(start, end, received, sent)? else {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!(
                    "the treasury's balance in {window} went from {start} to {end} wei, received {received}, \
                     sent {sent} (fees included): a fall its flows do not explain; nothing booked"
                ),
            ));
        };
        let at = self.evm.block_time(to).await?;
        let since = self.evm.block_time(prev.block).await?;
        let secs = u64::try_from(at.unix_secs().saturating_sub(since.unix_secs())).unwrap_or(0);
        let base = start.saturating_add(received);
        let bound = yield_bound(base, self.max_yield_apr_bps, secs);
        if y > bound {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "the treasury's balance in {window} ({secs} s) grew {y} wei beyond its flows, more than \
                     {} bps a year of {base} wei allows ({bound}): an undeclared deposit? declare it with \
                     `softstake flow --token APE --tx <hash>`; nothing booked",
                    self.max_yield_apr_bps
                ),
            ));
        }
        let mut records = Vec::new();
        if !y.is_zero() {
            records.push(RewardRecord {
                validator: NATIVE_YIELD.to_string(),
                epoch: to,
                amount: to_amount(CHAIN, "yield", y)?,
                at,
                kind: RewardKind::Claimed,
            });
        }
        Ok(RewardsPage {
            records,
            cursor: Self::cursor_text(to, end, nonce),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(a: u64, b: u64, r: u64, s: u64) -> Option<U256> {
        window_yield(U256::from(a), U256::from(b), U256::from(r), U256::from(s)).unwrap()
    }

    #[test]
    fn success_yield_is_growth_not_explained_by_flows() {
        assert_eq!(w(100, 110, 0, 0), Some(U256::from(10)), "pure rebase");
        assert_eq!(w(100, 160, 50, 0), Some(U256::from(10)), "a deposit is not yield");
        assert_eq!(
            w(100, 58, 0, 45),
            Some(U256::from(3)),
            "a payment and its fee are not a loss"
        );
        assert_eq!(w(100, 100, 0, 0), Some(U256::ZERO));
    }

    #[test]
    fn fail_unexplained_fall_is_refused() {
        assert_eq!(w(100, 90, 0, 0), None);
        assert_eq!(w(100, 140, 50, 0), None, "less than the deposit arrived");
    }

    #[test]
    fn success_yield_bound_is_apr_over_time() {
        let ape = U256::from(10u64).pow(U256::from(18u64));
        // 10 000 APE at 20 % a year for one day: 5.479… APE
        let b = yield_bound(U256::from(10_000u64) * ape, 2_000, 86_400);
        assert_eq!(
            b,
            U256::from(10_000u64) * ape * U256::from(2_000u64) * U256::from(86_400u64)
                / U256::from(SECS_PER_YEAR * 10_000)
        );
        assert!(b > U256::from(5u64) * ape && b < U256::from(6u64) * ape, "{b}");
        assert_eq!(
            yield_bound(U256::ZERO, 2_000, 86_400),
            U256::ZERO,
            "nothing held, nothing earned"
        );
        assert_eq!(
            yield_bound(U256::MAX, 100_000, u64::MAX),
            U256::MAX / U256::from(SECS_PER_YEAR * 10_000),
            "saturates"
        );
    }

    #[test]
    fn success_sent_nonces_are_exactly_the_window() {
        check_sent_nonces("w", 5, 5, &[]).unwrap();
        check_sent_nonces("w", 5, 8, &[7, 5, 6]).unwrap();
    }

    #[test]
    fn fail_sent_nonces_missing_repeated_or_falling() {
        for (from, to, sent) in [
            (5u64, 7u64, vec![5u64]),
            (5, 7, vec![5, 5]),
            (5, 6, vec![5, 6]),
            (5, 6, vec![4]),
        ] {
            let e = check_sent_nonces("w", from, to, &sent).unwrap_err();
            assert!(matches!(e, AdapterError::BadInput { .. }), "{sent:?}: {e}");
            assert!(e.to_string().contains("softstake flow --token APE"), "{e}");
        }
        let e = check_sent_nonces("w", 7, 5, &[]).unwrap_err();
        assert!(matches!(e, AdapterError::BadResponse { .. }), "{e}");
    }

    #[test]
    fn success_old_cursor_without_nonce_parses() {
        let c = parse_cursor::<YieldCursor>(CHAIN, Some("{\"block\":1,\"balance\":\"1\"}"))
            .unwrap()
            .unwrap();
        assert_eq!(c.nonce, None);
    }

    #[test]
    fn fail_garbage_cursor_is_bad_input() {
        for bad in ["{\"block\":1}", "{\"block\":1,\"balance\":\"1\",\"x\":2}", "7"] {
            let e = parse_cursor::<YieldCursor>(CHAIN, Some(bad)).unwrap_err();
            assert!(matches!(e, AdapterError::BadInput { .. }), "{bad}: {e}");
        }
    }
}

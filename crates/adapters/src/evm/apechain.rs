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
//!  rewards      per confirmed block window (b0, b1]:
//!                 yield = balance(b1) − balance(b0) − Σ the treasury's own flows in
//!                         b0+1 ..= b1 (received: +value; sent: −value − gasUsed × price)
//!               read from each block's transactions and receipts; one Claimed record
//!               (validator "native-yield", epoch = b1) when positive. A fall the
//!               transactions do not explain is an error and books nothing.
//!  positions    none (nothing is delegated)
//! ```
//!
//! Limits: native transfers emit no logs, so each block of the window is read
//! (`eth_getBlockByNumber` with transactions, at most [`MAX_SCAN_BLOCKS`] per call; the
//! sync continues from its cursor). Value that reaches the treasury through a contract's
//! internal call is not a transaction of its own and would read as yield: the custody
//! account must be funded by plain transfers. Amounts are wei of APE (10^18 per APE).
//! ApeChain mainnet is chain id 33139, the Curtis testnet 33111.

use alloy::eips::BlockId;
use alloy::network::TransactionResponse as _;
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::Transaction as RpcTransaction;
use alloy::sol_types::SolCall;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use softstake_core::{Amount, Timestamp};

use super::{call_err, parse_cursor, rpc_err, to_amount, EvmClient, EvmConfig};
use crate::error::{AdapterError, Result};
use crate::signer::TreasuryKey;
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardKind, RewardRecord, RewardsPage, SignedTx, TxStatus,
    ValidatorCandidate,
};

const CHAIN: &str = "apechain";
/// The ArbInfo precompile (every Arbitrum chain; ApeChain adds the yield-mode functions).
pub const ARB_INFO: Address = alloy::primitives::address!("0x0000000000000000000000000000000000000065");
/// The "validator" name of native-yield rewards.
pub const NATIVE_YIELD: &str = "native-yield";
/// `getYieldConfiguration`: the account earns (automatic rebasing).
pub const YIELD_AUTOMATIC: u8 = 0;
/// Most blocks one `rewards_since` call reads (bounds the loop; the sync continues).
pub const MAX_SCAN_BLOCKS: u64 = 5_000;

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
/// balance at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YieldCursor {
    /// Last block accounted.
    pub block: u64,
    /// The treasury's balance after it, wei (decimal string).
    pub balance: String,
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

/// The APE adapter.
#[derive(Debug)]
pub struct ApeChainAdapter {
    evm: EvmClient,
    arb_info: Address,
}

impl ApeChainAdapter {
    /// An adapter whose treasury is the key's account; `arb_info` is [`ARB_INFO`] on
    /// ApeChain.
    ///
    /// # Errors
    /// As [`EvmClient::new`].
    pub fn new(cfg: EvmConfig, key: impl Into<TreasuryKey>, arb_info: Address) -> Result<ApeChainAdapter> {
        Ok(ApeChainAdapter {
            evm: EvmClient::new(CHAIN, cfg, key)?,
            arb_info,
        })
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

    async fn balance_at(&self, block: u64) -> Result<U256> {
        self.evm
            .provider()
            .get_balance(self.treasury())
            .block_id(BlockId::number(block))
            .await
            .map_err(|e| rpc_err(CHAIN, "eth_getBalance", &e))
    }

    /// The treasury's own flows in block `n`: (received, sent incl. fees), wei.
    async fn flows(&self, n: u64) -> Result<(U256, U256)> {
        let me = self.treasury();
        let p = self.evm.provider();
        let block = p
            .get_block_by_number(n.into())
            .full()
            .await
            .map_err(|e| rpc_err(CHAIN, "eth_getBlockByNumber", &e))?
            .ok_or_else(|| AdapterError::transient(CHAIN, format!("block {n} not found")))?;
        let Some(txs) = block.transactions.as_transactions() else {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("block {n} came without its transactions"),
            ));
        };
        let from = |t: &RpcTransaction| t.inner.signer();
        let to = |t: &RpcTransaction| alloy::consensus::Transaction::to(t);
        let ours: Vec<&RpcTransaction> = txs.iter().filter(|t| from(t) == me || to(t) == Some(me)).collect();
        if ours.is_empty() {
            return Ok((U256::ZERO, U256::ZERO));
        }
        let (mut received, mut sent) = (U256::ZERO, U256::ZERO);
        for t in ours {
            let r = p
                .get_transaction_receipt(t.tx_hash())
                .await
                .map_err(|e| rpc_err(CHAIN, "eth_getTransactionReceipt", &e))?
                .ok_or_else(|| AdapterError::transient(CHAIN, format!("receipt of {} not found", t.tx_hash())))?;
            let ok = r.status();
            if from(t) == me {
                let fee = U256::from(r.gas_used) * U256::from(r.effective_gas_price);
                sent = sent.saturating_add(fee);
                if ok {
                    sent = sent.saturating_add(alloy::consensus::Transaction::value(t));
                }
            }
            if ok && to(t) == Some(me) {
                received = received.saturating_add(alloy::consensus::Transaction::value(t));
            }
        }
        Ok((received, sent))
    }

    fn cursor_text(block: u64, balance: U256) -> String {
        serde_json::to_string(&YieldCursor {
            block,
            balance: balance.to_string(),
        })
        .unwrap_or_default()
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

    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let prev: Option<YieldCursor> = parse_cursor(CHAIN, cursor)?;
        let Some((from, to)) = self.evm.confirmed_range(prev.as_ref().map(|c| c.block)).await? else {
            return Ok(RewardsPage {
                records: Vec::new(),
                cursor: cursor.unwrap_or("").to_string(),
            });
        };
        let Some(prev) = prev else {
            // the first call anchors the accounting at `from` (start_block)
            let balance = self.balance_at(from).await?;
            return Ok(RewardsPage {
                records: Vec::new(),
                cursor: Self::cursor_text(from, balance),
            });
        };
        let start: U256 = prev
            .balance
            .parse()
            .map_err(|_| AdapterError::bad_input(CHAIN, format!("cursor balance {:?} is not wei", prev.balance)))?;
        let to = to.min(prev.block.saturating_add(MAX_SCAN_BLOCKS));
        let (mut received, mut sent) = (U256::ZERO, U256::ZERO);
        for n in from..=to {
            let (r, s) = self.flows(n).await?;
            received = received.saturating_add(r);
            sent = sent.saturating_add(s);
        }
        let end = self.balance_at(to).await?;
        let Some(y) = window_yield(start, end, received, sent)? else {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!(
                    "the treasury's balance in blocks {from}..={to} went from {start} to {end} wei, \
                     received {received}, sent {sent} (fees included): a fall its transactions do not \
                     explain; nothing booked"
                ),
            ));
        };
        let mut records = Vec::new();
        if !y.is_zero() {
            records.push(RewardRecord {
                validator: NATIVE_YIELD.to_string(),
                epoch: to,
                amount: to_amount(CHAIN, "yield", y)?,
                at: self.evm.block_time(to).await?,
                kind: RewardKind::Claimed,
            });
        }
        Ok(RewardsPage {
            records,
            cursor: Self::cursor_text(to, end),
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
    fn fail_garbage_cursor_is_bad_input() {
        for bad in ["{\"block\":1}", "{\"block\":1,\"balance\":\"1\",\"x\":2}", "7"] {
            let e = parse_cursor::<YieldCursor>(CHAIN, Some(bad)).unwrap_err();
            assert!(matches!(e, AdapterError::BadInput { .. }), "{bad}: {e}");
        }
    }
}

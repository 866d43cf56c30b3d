//! BNB Smart Chain native staking: the StakeHub system contract and its per-validator
//! StakeCredit share pools (bnb-chain/bsc-genesis-contract, `contracts/BC_fusion`).
//!
//! ```text
//!  delegate    StakeHub.delegate(operator, false) payable (≥ minDelegationBNBChange, 1 BNB)
//!              → StakeCredit mints shares at the pool's price; Delegated(operator, delegator, shares, bnbAmount)
//!  undelegate  StakeHub.undelegate(operator, shares) → an unbond request (shares, bnbAmount,
//!              unlockTime = now + unbondPeriod, 7 days); Undelegated(…)
//!  withdraw    StakeHub.claim(operator, n): the first n matured requests back to the treasury; Claimed(…)
//!  rewards     auto-compounding: the validator's daily reward raises the share price; realized
//!              reward = growth of (pooled BNB + unbonding BNB) not explained by our own
//!              Delegated / Claimed events; one record per validator and sync, named by the
//!              block height accounted up to
//!  positions   StakeCredit.getPooledBNB (active) + unbondRequest(i) (deactivating until
//!              unlockTime, then withdrawable)
//! ```
//!
//! Amounts are wei (1 BNB = 10^18 wei). Validators are operator addresses (EIP-55).

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use alloy::eips::BlockId;
use alloy::primitives::{Address, U256};
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent, SolInterface};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use softstake_core::{Amount, Timestamp};

use super::{call_err, to_amount, EvmClient, EvmConfig};
use crate::error::{AdapterError, Result};
use crate::signer::TreasuryKey;
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardKind, RewardRecord, RewardsPage, SignedTx, StakeState,
    TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "bsc";
/// The StakeHub system contract on BSC mainnet and testnet.
pub const STAKE_HUB: Address = alloy::primitives::address!("0x0000000000000000000000000000000000002002");
/// The BSCValidatorSet system contract (bsc-genesis-contract `BSCValidatorSet.sol`, the
/// same address on every BSC network): `getValidators()` is the elected set's consensus
/// addresses, the validators that produce blocks and earn this epoch.
pub const VALIDATOR_SET: Address = alloy::primitives::address!("0x0000000000000000000000000000000000001000");
/// Validators read per `getValidators` page.
const VALIDATOR_PAGE: u64 = 100;
/// Most validators read (bounds the paging loop; BSC has about 50).
const MAX_VALIDATORS: u64 = 2_000;
/// Most pending unbond requests read per validator.
const MAX_UNBOND_REQUESTS: u64 = 256;
/// A shortfall this small is share-price rounding (floor division on each delegate and
/// undelegate), not a loss: it is absorbed by the next reward instead of lowering the
/// baseline. Larger shortfalls (slashing) lower the baseline and show as drift.
const ROUNDING_DUST_WEI: u128 = 1_000;
/// BSC distributes validator rewards once a day.
const DAY_SECS: u64 = 86_400;

/// The real ABIs, copied byte for byte from bnb-chain/bsc-genesis-contract (`abi/`,
/// Apache-2.0; see `abi/bsc/LICENSE-bsc-genesis-contract.txt`).
mod abi {
    alloy::sol!(
        #[sol(rpc, all_derives)]
        IStakeHub,
        "abi/bsc/stakehub.abi.json"
    );
    alloy::sol!(
        #[sol(rpc, all_derives)]
        IStakeCredit,
        "abi/bsc/stakecredit.abi.json"
    );
}
use abi::{IStakeCredit, IStakeHub, StakeCredit};

alloy::sol! {
    /// The one BSCValidatorSet view the adapter reads (bsc-genesis-contract
    /// `contracts/BSCValidatorSet.sol`: `function getValidators() external view returns
    /// (address[] memory)`, the elected set's consensus addresses).
    #[sol(rpc)]
    interface IBSCValidatorSet {
        function getValidators() external view returns (address[] memory);
    }
}

/// `a + b` for amounts read from the chain.
fn add(a: Amount, b: Amount) -> Result<Amount> {
    a.checked_add(b, "chain amounts")
        .map_err(|_| AdapterError::bad_response(CHAIN, format!("{a} + {b} wei overflows u128")))
}

/// Names a StakeHub or StakeCredit custom error from revert data (the ABI's 4-byte
/// selector and arguments); `None` for data that is none of them.
pub fn decode_revert(data: &[u8]) -> Option<String> {
    if let Ok(e) = IStakeHub::IStakeHubErrors::abi_decode(data) {
        return Some(format!("StakeHub {e:?}"));
    }
    IStakeCredit::IStakeCreditErrors::abi_decode(data)
        .ok()
        .map(|e| format!("StakeCredit {e:?}"))
}

/// Our stake with one validator at one block.
#[derive(Debug, Clone)]
struct Holding {
    credit: Address,
    shares: U256,
    pooled: Amount,
    requests: Vec<StakeCredit::UnbondRequest>,
}

impl Holding {
    /// Pooled plus every unbond request, wei.
    fn total(&self) -> Result<Amount> {
        let mut t = self.pooled;
        for r in &self.requests {
            t = add(t, to_amount(CHAIN, "unbond request", r.bnbAmount)?)?;
        }
        Ok(t)
    }
}

/// The reward cursor: the last block accounted and, per validator, the total the
/// ledger is expected to hold there (wei, as decimal strings).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    block: u64,
    expected: BTreeMap<String, String>,
    /// History read past `block` but not accounted yet: a history longer than a page
    /// (a first sync, an outage) is read a page per sync, and the stake is read and the
    /// growth booked only once the scan reaches the newest confirmed block (the node
    /// keeps recent state only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scanned: Option<Scanned>,
}

/// The part of [`Cursor`] read but not accounted: the last block read and our flows per
/// validator up to it, (delegated, claimed) wei as decimal strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scanned {
    to: u64,
    flows: BTreeMap<String, (String, String)>,
}

type Flows = BTreeMap<Address, (Amount, Amount)>;

impl Scanned {
    fn encode(to: u64, flows: &Flows) -> Scanned {
        Scanned {
            to,
            flows: flows
                .iter()
                .map(|(v, (d, c))| (v.to_string(), (d.0.to_string(), c.0.to_string())))
                .collect(),
        }
    }

    /// Adds the flows read earlier into `flows`.
    fn merge_into(&self, flows: &mut Flows) -> Result<()> {
        let amount = |s: &str| {
            s.parse::<u128>()
                .map(Amount)
                .map_err(|_| AdapterError::bad_input(CHAIN, format!("bad rewards cursor: amount {s:?}")))
        };
        for (v, (d, c)) in &self.flows {
            let e = flows
                .entry(BscAdapter::operator(v)?)
                .or_insert((Amount::ZERO, Amount::ZERO));
            e.0 = add(e.0, amount(d)?)?;
            e.1 = add(e.1, amount(c)?)?;
        }
        Ok(())
    }
}

/// The BNB adapter.
#[derive(Debug)]
pub struct BscAdapter {
    evm: EvmClient,
    hub: Address,
}

impl BscAdapter {
    /// An adapter for the StakeHub at `hub` ([`STAKE_HUB`] on BSC).
    ///
    /// # Errors
    /// As [`EvmClient::new`].
    pub fn new(cfg: EvmConfig, key: impl Into<TreasuryKey>, hub: Address) -> Result<BscAdapter> {
        Ok(BscAdapter {
            evm: EvmClient::new(CHAIN, cfg, key)?,
            hub,
        })
    }

    /// The treasury's address (the delegator).
    pub fn treasury(&self) -> Address {
        self.evm.address()
    }

    fn hub(&self) -> IStakeHub::IStakeHubInstance<&alloy::providers::RootProvider> {
        IStakeHub::new(self.hub, self.evm.provider())
    }

    fn credit(&self, at: Address) -> IStakeCredit::IStakeCreditInstance<&alloy::providers::RootProvider> {
        IStakeCredit::new(at, self.evm.provider())
    }

    fn operator(validator: &str) -> Result<Address> {
        Address::from_str(validator)
            .map_err(|_| AdapterError::bad_input(CHAIN, format!("validator {validator:?} is not an operator address")))
    }

    /// Every validator: (operator, credit contract), read at `at`.
    async fn all_validators(&self, at: BlockId) -> Result<Vec<(Address, Address)>> {
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let page = self
                .hub()
                .getValidators(U256::from(offset), U256::from(VALIDATOR_PAGE))
                .block(at)
                .call()
                .await
                .map_err(|e| call_err(CHAIN, "StakeHub.getValidators", e))?;
            if page.operatorAddrs.len() != page.creditAddrs.len() {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    "getValidators: operator and credit lists differ in length",
                ));
            }
            let n = page.operatorAddrs.len() as u64;
            out.extend(page.operatorAddrs.into_iter().zip(page.creditAddrs));
            offset += n;
            let total = u64::try_from(page.totalLength).unwrap_or(u64::MAX);
            if n == 0 || offset >= total {
                break;
            }
            if offset >= MAX_VALIDATORS {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    format!("more than {MAX_VALIDATORS} validators"),
                ));
            }
        }
        Ok(out)
    }

    /// Our holdings per validator at `at` (validators where we hold nothing are left out).
    async fn holdings(&self, at: BlockId) -> Result<BTreeMap<Address, Holding>> {
        let me = self.treasury();
        let mut out = BTreeMap::new();
        for (op, credit) in self.all_validators(at).await? {
            let c = self.credit(credit);
            let shares = c
                .balanceOf(me)
                .block(at)
                .call()
                .await
                .map_err(|e| call_err(CHAIN, "StakeCredit.balanceOf", e))?;
            let pending = c
                .pendingUnbondRequest(me)
                .block(at)
                .call()
                .await
                .map_err(|e| call_err(CHAIN, "StakeCredit.pendingUnbondRequest", e))?;
            if shares.is_zero() && pending.is_zero() {
                continue;
            }
            let pending = u64::try_from(pending).unwrap_or(u64::MAX);
            if pending > MAX_UNBOND_REQUESTS {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    format!("{pending} unbond requests at {op}: more than {MAX_UNBOND_REQUESTS}"),
                ));
            }
            let pooled = c
                .getPooledBNB(me)
                .block(at)
                .call()
                .await
                .map_err(|e| call_err(CHAIN, "StakeCredit.getPooledBNB", e))?;
            let mut requests = Vec::new();
            for i in 0..pending {
                requests.push(
                    c.unbondRequest(me, U256::from(i))
                        .block(at)
                        .call()
                        .await
                        .map_err(|e| call_err(CHAIN, "StakeCredit.unbondRequest", e))?,
                );
            }
            out.insert(
                op,
                Holding {
                    credit,
                    shares,
                    pooled: to_amount(CHAIN, "getPooledBNB", pooled)?,
                    requests,
                },
            );
        }
        Ok(out)
    }

    async fn holding(&self, op: Address) -> Result<Holding> {
        self.holdings(BlockId::latest())
            .await?
            .remove(&op)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, format!("no stake with {op}")))
    }

    async fn min_delegation(&self) -> Result<Amount> {
        let min = self
            .hub()
            .minDelegationBNBChange()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "StakeHub.minDelegationBNBChange", e))?;
        to_amount(CHAIN, "minDelegationBNBChange", min)
    }

    fn unlock(r: &StakeCredit::UnbondRequest) -> Result<Timestamp> {
        let secs = i64::try_from(r.unlockTime)
            .map_err(|_| AdapterError::bad_response(CHAIN, format!("unlockTime {} is not a time", r.unlockTime)))?;
        Timestamp::from_unix_secs(secs).map_err(|e| AdapterError::bad_response(CHAIN, format!("unlockTime: {e}")))
    }

    async fn sign(&self, call: impl SolCall, value: U256) -> Result<SignedTx> {
        self.evm
            .sign_call(self.hub, value, call.abi_encode().into(), decode_revert)
            .await
    }

    /// Our own flows per validator in `[from, to]`: (delegated, claimed), wei.
    async fn flows(&self, from: u64, to: u64) -> Result<Flows> {
        let me = self.treasury().into_word();
        let filter = Filter::new()
            .address(self.hub)
            .event_signature(vec![
                IStakeHub::Delegated::SIGNATURE_HASH,
                IStakeHub::Claimed::SIGNATURE_HASH,
            ])
            .topic2(me);
        let mut out: BTreeMap<Address, (Amount, Amount)> = BTreeMap::new();
        for log in self.evm.logs(&filter, from, to).await? {
            match log.topic0() {
                Some(t) if *t == IStakeHub::Delegated::SIGNATURE_HASH => {
                    let ev = IStakeHub::Delegated::decode_log(&log.inner)
                        .map_err(|e| AdapterError::bad_response(CHAIN, format!("Delegated log: {e}")))?;
                    let e = out.entry(ev.operatorAddress).or_insert((Amount::ZERO, Amount::ZERO));
                    e.0 = add(e.0, to_amount(CHAIN, "Delegated.bnbAmount", ev.bnbAmount)?)?;
                }
                Some(t) if *t == IStakeHub::Claimed::SIGNATURE_HASH => {
                    let ev = IStakeHub::Claimed::decode_log(&log.inner)
                        .map_err(|e| AdapterError::bad_response(CHAIN, format!("Claimed log: {e}")))?;
                    let e = out.entry(ev.operatorAddress).or_insert((Amount::ZERO, Amount::ZERO));
                    e.1 = add(e.1, to_amount(CHAIN, "Claimed.bnbAmount", ev.bnbAmount)?)?;
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

fn parse_cursor(cursor: Option<&str>) -> Result<Option<Cursor>> {
    super::parse_cursor(CHAIN, cursor)
}

#[async_trait]
impl ChainAdapter for BscAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        self.evm
            .preflight(
                &[
                    ("StakeHub", self.hub),
                    ("BSCValidatorSet", VALIDATOR_SET),
                    ("Multicall3", alloy::providers::MULTICALL3_ADDRESS),
                ],
                true,
            )
            .await
    }
    fn token(&self) -> &str {
        "BNB"
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let unbond = self
            .hub()
            .unbondPeriod()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "StakeHub.unbondPeriod", e))?;
        Ok(LiquidityModel {
            unbonding_period_secs: u64::try_from(unbond)
                .map_err(|_| AdapterError::bad_response(CHAIN, format!("unbondPeriod {unbond}")))?,
            epoch_secs: DAY_SECS,
            epoch_aligned: false,
            activation_epochs: 0,
            min_delegation: self.min_delegation().await?,
            rewards_auto_compound: true,
            claim_cadence_secs: 0,
            claim_all_validators: false,
            max_operations_per_epoch: self.evm.config().max_operations_per_epoch,
            instant_exit: false,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: false,
        })
    }

    async fn epoch(&self) -> Result<EpochInfo> {
        self.evm.utc_day_epoch(DAY_SECS).await
    }

    async fn now(&self) -> Result<Timestamp> {
        Ok(self.evm.head().await?.1)
    }

    /// Every registered validator; active only when elected (its consensus address is in
    /// BSCValidatorSet's `getValidators()`) and not jailed. A registered candidate outside
    /// the elected set produces no blocks and earns nothing.
    /// Every registered validator; its consensus address, basic info, commission,
    /// description and pool total are read through Multicall3, one `eth_call` per
    /// function and batch ([`super::EvmClient::batch`]), all at one block.
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let at = BlockId::number(self.evm.head().await?.0);
        let elected: std::collections::BTreeSet<Address> = IBSCValidatorSet::new(VALIDATOR_SET, self.evm.provider())
            .getValidators()
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "BSCValidatorSet.getValidators", e))?
            .into_iter()
            .collect();
        let all = self.all_validators(at).await?;
        let hub = self.hub();
        let ops = || all.iter().map(|(op, _)| *op);
        let consensus = self
            .evm
            .batch(
                "StakeHub.getValidatorConsensusAddress",
                ops().map(|op| hub.getValidatorConsensusAddress(op)).collect(),
                at,
            )
            .await?;
        let infos = self
            .evm
            .batch(
                "StakeHub.getValidatorBasicInfo",
                ops().map(|op| hub.getValidatorBasicInfo(op)).collect(),
                at,
            )
            .await?;
        let commissions = self
            .evm
            .batch(
                "StakeHub.getValidatorCommission",
                ops().map(|op| hub.getValidatorCommission(op)).collect(),
                at,
            )
            .await?;
        let descriptions = self
            .evm
            .batch(
                "StakeHub.getValidatorDescription",
                ops().map(|op| hub.getValidatorDescription(op)).collect(),
                at,
            )
            .await?;
        let credits: Vec<_> = all.iter().map(|(_, c)| self.credit(*c)).collect();
        let totals = self
            .evm
            .batch(
                "StakeCredit.totalPooledBNB",
                credits.iter().map(|c| c.totalPooledBNB()).collect(),
                at,
            )
            .await?;
        let mut out = Vec::new();
        let rows = all
            .iter()
            .zip(consensus)
            .zip(infos)
            .zip(commissions)
            .zip(descriptions)
            .zip(totals);
        for ((((((op, _), consensus), info), commission), description), total) in rows {
            let op = *op;
            let earning = elected.contains(&consensus);
            if commission.rate > 10_000 {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    format!("{op}: commission rate {} above 10 000 bps", commission.rate),
                ));
            }
            out.push(ValidatorCandidate {
                id: op.to_string(),
                name: description.moniker,
                commission_bps: commission.rate as u32,
                total_stake: to_amount(CHAIN, "totalPooledBNB", total)?,
                performance_bps: if info.jailed || !earning { 0 } else { 10_000 },
                active: earning && !info.jailed,
                own_validator: false,
            });
        }
        Ok(out)
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let (block, now) = self.evm.head().await?;
        let mut out = Vec::new();
        for (op, h) in self.holdings(BlockId::number(block)).await? {
            if !h.pooled.is_zero() {
                out.push(Position {
                    validator: op.to_string(),
                    state: StakeState::Active,
                    amount: h.pooled,
                    eta: None,
                    account: Some(h.credit.to_string()),
                });
            }
            let mut matured = Amount::ZERO;
            for r in &h.requests {
                let amount = to_amount(CHAIN, "unbond request", r.bnbAmount)?;
                let unlock = Self::unlock(r)?;
                if unlock <= now {
                    matured = add(matured, amount)?;
                } else {
                    out.push(Position {
                        validator: op.to_string(),
                        state: StakeState::Deactivating,
                        amount,
                        eta: Some(unlock),
                        account: Some(h.credit.to_string()),
                    });
                }
            }
            if !matured.is_zero() {
                out.push(Position {
                    validator: op.to_string(),
                    state: StakeState::Withdrawable,
                    amount: matured,
                    eta: None,
                    account: Some(h.credit.to_string()),
                });
            }
        }
        Ok(out)
    }

    async fn spendable(&self) -> Result<Amount> {
        self.evm.spendable_native().await
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        Ok(Vec::new())
    }

    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let op = Self::operator(validator)?;
        let min = self.min_delegation().await?;
        if amount < min {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{amount} wei is below StakeHub.minDelegationBNBChange ({min} wei)"),
            ));
        }
        let call = IStakeHub::delegateCall {
            operatorAddress: op,
            delegateVotePower: false,
        };
        self.sign(call, U256::from(amount.0)).await
    }

    async fn undelegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let op = Self::operator(validator)?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "undelegate of 0 wei"));
        }
        let h = self.holding(op).await?;
        let shares = if amount >= h.pooled {
            h.shares
        } else {
            self.credit(h.credit)
                .getSharesByPooledBNB(U256::from(amount.0))
                .call()
                .await
                .map_err(|e| call_err(CHAIN, "StakeCredit.getSharesByPooledBNB", e))?
                .min(h.shares)
        };
        if shares.is_zero() {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{amount} wei at {op} is less than one share"),
            ));
        }
        let call = IStakeHub::undelegateCall {
            operatorAddress: op,
            shares,
        };
        self.sign(call, U256::ZERO).await
    }

    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let op = Self::operator(validator)?;
        let h = self.holding(op).await?;
        let now = self.now().await?;
        let mut sum = Amount::ZERO;
        let mut number = 0u64;
        let mut matured = Vec::new();
        for r in &h.requests {
            if Self::unlock(r)? > now {
                break;
            }
            let a = to_amount(CHAIN, "unbond request", r.bnbAmount)?;
            matured.push(a);
            sum = add(sum, a)?;
            number += 1;
            if sum >= amount {
                break;
            }
        }
        if sum != amount || number == 0 {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "no run of matured unbond requests at {op} adds up to {amount} wei (matured, oldest first: {matured:?})"
                ),
            ));
        }
        let call = IStakeHub::claimCall {
            operatorAddress: op,
            requestNumber: U256::from(number),
        };
        self.sign(call, U256::ZERO).await
    }

    async fn claim_rewards(&self, _key: &str, _validator: &str) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            "BSC staking rewards compound into the StakeCredit share price: there is nothing to claim",
        ))
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        self.evm.broadcast(tx).await
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        self.evm.tx_status(tx).await
    }

    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let prev = parse_cursor(cursor)?;
        // only blocks with enough confirmations are accounted, a page at a time
        let after = prev.as_ref().map(|c| c.scanned.as_ref().map_or(c.block, |s| s.to));
        let Some((from, to, complete)) = self.evm.confirmed_page(after).await? else {
            return Ok(RewardsPage {
                records: Vec::new(),
                cursor: cursor.unwrap_or("").to_string(),
            });
        };
        let mut flows = self.flows(from, to).await?;
        if let Some(s) = prev.as_ref().and_then(|c| c.scanned.as_ref()) {
            s.merge_into(&mut flows)?;
        }
        if !complete {
            // more history than a page: keep what was read, book nothing yet
            let next = Cursor {
                block: prev.as_ref().map_or(from.saturating_sub(1), |c| c.block),
                expected: prev.map(|c| c.expected).unwrap_or_default(),
                scanned: Some(Scanned::encode(to, &flows)),
            };
            let cursor = serde_json::to_string(&next)
                .map_err(|e| AdapterError::bad_input(CHAIN, format!("encoding the cursor: {e}")))?;
            return Ok(RewardsPage {
                records: Vec::new(),
                cursor,
            });
        }
        let holdings = self.holdings(BlockId::number(to)).await?;
        let at = self.evm.block_time(to).await?;
        // BSC has no reward epochs to name a record by: the block height accounted up to
        // (one record per validator and sync; re-reading the same range gives the same one)
        let epoch = to;
        let mut expected: BTreeMap<String, Amount> = BTreeMap::new();
        if let Some(c) = &prev {
            for (v, a) in &c.expected {
                let a: u128 = a
                    .parse()
                    .map_err(|_| AdapterError::bad_input(CHAIN, format!("bad rewards cursor: amount {a:?}")))?;
                expected.insert(v.clone(), Amount(a));
            }
        }
        let validators: BTreeSet<String> = expected
            .keys()
            .cloned()
            .chain(flows.keys().map(|a| a.to_string()))
            .chain(holdings.keys().map(|a| a.to_string()))
            .collect();
        let mut records = Vec::new();
        let mut next = Cursor {
            block: to,
            expected: BTreeMap::new(),
            scanned: None,
        };
        for v in validators {
            let op = Self::operator(&v)?;
            let prev_total = expected.get(&v).copied().unwrap_or(Amount::ZERO);
            let (delegated, claimed) = flows.get(&op).copied().unwrap_or((Amount::ZERO, Amount::ZERO));
            let implied = add(prev_total, delegated)?
                .checked_sub(claimed, "expected stake")
                .map_err(|_| {
                    AdapterError::bad_response(
                        CHAIN,
                        format!("{v}: claimed {claimed} wei is more than was there ({prev_total} + {delegated})"),
                    )
                })?;
            let total = match holdings.get(&op) {
                Some(h) => h.total()?,
                None => Amount::ZERO,
            };
            let baseline = if total.0 > implied.0 {
                records.push(RewardRecord {
                    validator: v.clone(),
                    epoch,
                    amount: Amount(total.0 - implied.0),
                    at,
                    kind: RewardKind::Compounded,
                });
                total
            } else if implied.0 - total.0 <= ROUNDING_DUST_WEI {
                implied
            } else {
                total
            };
            if !baseline.is_zero() {
                next.expected.insert(v, baseline.0.to_string());
            }
        }
        let cursor = serde_json::to_string(&next)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("encoding the cursor: {e}")))?;
        Ok(RewardsPage { records, cursor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolError;

    #[test]
    fn success_cursor_round_trip() {
        let c = Cursor {
            block: 42,
            expected: BTreeMap::from([("0xabc".to_string(), "1000000000000000000".to_string())]),
            scanned: None,
        };
        let text = serde_json::to_string(&c).unwrap();
        assert!(
            !text.contains("scanned"),
            "an accounted cursor keeps its old shape: {text}"
        );
        let back = parse_cursor(Some(&text)).unwrap().unwrap();
        assert_eq!((back.block, &back.expected), (42, &c.expected));
        // a cursor mid-scan keeps the flows read so far
        let v: Address = "0x00000000000000000000000000000000000000aa".parse().unwrap();
        let flows: Flows = BTreeMap::from([(v, (Amount(5), Amount(2)))]);
        let mid = Cursor {
            scanned: Some(Scanned::encode(99, &flows)),
            ..c
        };
        let back = parse_cursor(Some(&serde_json::to_string(&mid).unwrap()))
            .unwrap()
            .unwrap();
        let mut merged: Flows = BTreeMap::from([(v, (Amount(1), Amount(1)))]);
        back.scanned.as_ref().unwrap().merge_into(&mut merged).unwrap();
        assert_eq!(merged[&v], (Amount(6), Amount(3)));
        assert_eq!(back.scanned.unwrap().to, 99);
        assert!(parse_cursor(None).unwrap().is_none());
        assert!(parse_cursor(Some("")).unwrap().is_none());
    }

    #[test]
    fn fail_garbage_cursor_is_bad_input() {
        for bad in ["12", "{\"block\":1}", "{\"block\":1,\"expected\":{},\"extra\":0}"] {
            let e = parse_cursor(Some(bad)).unwrap_err();
            assert!(matches!(e, AdapterError::BadInput { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn success_reverts_are_named_from_the_real_abi() {
        let data = IStakeHub::DelegationAmountTooSmall {}.abi_encode();
        assert!(decode_revert(&data).unwrap().contains("DelegationAmountTooSmall"));
        let data = IStakeCredit::NoClaimableUnbondRequest {}.abi_encode();
        assert!(decode_revert(&data).unwrap().contains("NoClaimableUnbondRequest"));
        assert_eq!(decode_revert(&[1, 2, 3, 4]), None);
    }

    #[test]
    fn fail_validator_must_be_an_address() {
        let e = BscAdapter::operator("validator-1").unwrap_err();
        assert!(matches!(e, AdapterError::BadInput { .. }), "{e}");
    }
}

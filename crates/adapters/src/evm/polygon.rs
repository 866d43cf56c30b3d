//! POL staking on Ethereum L1 (Polygon PoS): the StakeManager and one ValidatorShare
//! contract per validator (0xPolygon/pos-contracts, `staking/stakeManager`,
//! `staking/validatorShare/ValidatorShare.sol`, `staking/StakingInfo.sol`), with the POL
//! token's EIP-2612 permit (0xPolygon/pol-token).
//!
//! ```text
//!  delegate    ValidatorShare.buyVoucherWithPermit(amount, minShares, deadline, v, r, s):
//!              the permit (signed here, EIP-712) lets the StakeManager pull the POL, so
//!              approval and deposit are one transaction and one journal operation
//!  undelegate  ValidatorShare.sellVoucher_new(amount, maxShares) → unbonds_new[treasury][nonce]
//!              {shares of the withdraw pool, withdrawEpoch}
//!  withdraw    ValidatorShare.unstakeClaimTokens_new(nonce) once
//!              withdrawEpoch + StakeManager.withdrawalDelay() ≤ StakeManager.epoch()
//!              (epochs are checkpoints); paid at withdrawExchangeRate (slashing lowers it)
//!  rewards     accrue per share, never compound: paid to the treasury by withdrawRewards()
//!              and by every buy and sell; each payout is logged by StakingInfo as
//!              DelegatorClaimedRewards(validatorId, user, rewards) → realized reward (see `paid`)
//!  positions   getTotalStake(treasury) (active) + unbonds_new(treasury, 1..=unbondNonces)
//! ```
//!
//! Performance is checkpoint signing: each checkpoint reaches L1 as
//! `RootChain.submitCheckpoint(data, sigs)` (the RootChain is `StakeManager.rootChain()`),
//! where `sigs` are the validators' `[r, s, v]` signatures over `keccak256(0x01 ‖ data)`
//! and `StakeManager.checkSignatures` recovers them (0xPolygon/pos-contracts,
//! `root/RootChain.sol`, `common/lib/ECVerify.sol`). The adapter finds the newest
//! [`PERFORMANCE_CHECKPOINTS`] `NewHeaderBlock` events, reads each one's transaction
//! once (kept in memory: a checkpoint never changes), recovers its signers the same way,
//! and rates an active validator as the share of the checkpoints since its activation
//! that its current signer signed (10 000 bps when there are none yet to judge by).
//!
//! Reads that fan out per validator (the ValidatorShare of each id, `validators(id)`,
//! each share's stake, unbond nonce and rewards) go through Multicall3 (alloy's
//! `MulticallBuilder`, `aggregate`, at the canonical 0xcA11bde0…CA11 deployed on Ethereum
//! and Sepolia): one `eth_call` per [`super::MULTICALL_BATCH`] calls instead of one each, so a
//! positions read on mainnet (about 190 validator ids, about 570 calls) costs a handful
//! of requests against a provider's rate limit.
//!
//! Amounts are wei of POL (1 POL = 10^18 wei); gas is paid in ETH. Validators are
//! StakeManager validator ids, as decimal strings.

use alloy::eips::BlockId;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, MULTICALL3_ADDRESS};
use alloy::rpc::types::Filter;
use alloy::sol_types::{Eip712Domain, SolCall, SolEvent, SolStruct};
use async_trait::async_trait;
use tracing::warn;

use softstake_core::{Amount, Timestamp};

use super::paid::paid_rewards_since;
use super::{call_err, rpc_err, to_amount, to_u64, validator_index, EvmClient, EvmConfig};
use crate::error::{AdapterError, Result};
use crate::signer::TreasuryKey;
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardsPage, SignedTx, StakeState, TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "polygon";
/// The StakeManager proxy on Ethereum mainnet (chain id 1).
pub const STAKE_MANAGER_MAINNET: Address = alloy::primitives::address!("0x5e3Ef299fDDf15eAa0432E6e66473ace8c13D908");
/// The StakeManager proxy on Sepolia (chain id 11155111).
pub const STAKE_MANAGER_SEPOLIA: Address = alloy::primitives::address!("0x4AE8f648B1Ec892B6cc68C89cc088583964d08bE");
/// A StakeManager epoch is one checkpoint; checkpoints reach L1 about every 30 minutes
/// (docs.polygon.technology, PoS checkpoints). Used only to turn epochs into an ETA.
pub const CHECKPOINT_SECS: u64 = 1_800;
/// Checkpoints a validator's performance is measured over: the newest this many (one
/// about every 30 minutes: about a day).
pub const PERFORMANCE_CHECKPOINTS: usize = 48;
/// Most L1 blocks scanned back for them (two weeks of 12 s blocks; bounds the loop).
pub const MAX_CHECKPOINT_LOOKBACK_BLOCKS: u64 = 100_800;
/// Most validator ids read (bounds the loop; Polygon has about 100 active).
const MAX_VALIDATORS: u64 = 2_000;
/// Most unbond nonces read per validator.
const MAX_UNBONDS: u64 = 256;
/// Lifetime of a delegation's permit, seconds.
const PERMIT_LIFETIME_SECS: u64 = 86_400;
/// Policy: claim each validator's rewards at most once a day (each claim costs L1 gas).
const CLAIM_CADENCE_SECS: u64 = 86_400;
/// `validators(id).status` of an active validator (`Status.Active`).
const STATUS_ACTIVE: u8 = 1;
/// The functions and events softstake uses, with the signatures of
/// 0xPolygon/pos-contracts and the POL token.
mod abi {
    alloy::sol! {
        /// The StakeManager (the part softstake reads).
        #[sol(rpc, all_derives)]
        interface IStakeManager {
            function epoch() external view returns (uint256);
            function withdrawalDelay() external view returns (uint256);
            function NFTCounter() external view returns (uint256);
            function getValidatorContract(uint256 validatorId) external view returns (address);
            function validators(uint256 validatorId) external view returns (uint256 amount, uint256 reward, uint256 activationEpoch, uint256 deactivationEpoch, uint256 jailTime, address signer, address contractAddress, uint8 status, uint256 commissionRate, uint256 lastCommissionUpdate, uint256 delegatorsReward, uint256 delegatedAmount, uint256 initialRewardPerStake);
            function token() external view returns (address);
            function logger() external view returns (address);
            function rootChain() external view returns (address);
        }

        /// The RootChain: checkpoints from Heimdall, signed by the validators.
        #[sol(rpc, all_derives)]
        interface IRootChain {
            event NewHeaderBlock(address indexed proposer, uint256 indexed headerBlockId, uint256 indexed reward, uint256 start, uint256 end, bytes32 root);
            function submitCheckpoint(bytes calldata data, uint256[3][] calldata sigs) external;
        }

        /// A validator's delegation contract.
        #[sol(rpc, all_derives)]
        interface IValidatorShare {
            function buyVoucher(uint256 _amount, uint256 _minSharesToMint) external returns (uint256 amountToDeposit);
            function buyVoucherWithPermit(uint256 _amount, uint256 _minSharesToMint, uint256 deadline, uint8 v, bytes32 r, bytes32 s) external returns (uint256 amountToDeposit);
            function sellVoucher_new(uint256 claimAmount, uint256 maximumSharesToBurn) external;
            function unstakeClaimTokens_new(uint256 unbondNonce) external;
            function withdrawRewards() external;
            function getTotalStake(address user) external view returns (uint256, uint256);
            function getLiquidRewards(address user) external view returns (uint256);
            function exchangeRate() external view returns (uint256);
            function withdrawExchangeRate() external view returns (uint256);
            function unbondNonces(address user) external view returns (uint256);
            function unbonds_new(address user, uint256 nonce) external view returns (uint256 shares, uint256 withdrawEpoch);
            function minAmount() external view returns (uint256);
        }

        /// StakingInfo, the staking event logger.
        #[sol(rpc, all_derives)]
        interface IStakingInfo {
            event DelegatorClaimedRewards(uint256 indexed validatorId, address indexed user, uint256 indexed rewards);
        }

        /// The POL token (ERC-20 with EIP-2612 permit).
        #[sol(rpc, all_derives)]
        interface IPolToken {
            function name() external view returns (string);
            function balanceOf(address owner) external view returns (uint256);
            function nonces(address owner) external view returns (uint256);
            function DOMAIN_SEPARATOR() external view returns (bytes32);
        }

        /// EIP-2612's signed message.
        #[derive(Debug)]
        struct Permit {
            address owner;
            address spender;
            uint256 value;
            uint256 nonce;
            uint256 deadline;
        }
    }
}
pub use abi::{IPolToken, IRootChain, IStakeManager, IStakingInfo, IValidatorShare};

/// ValidatorShare's rate precision: 100 for the foundation validators (ids below 8),
/// 10^29 for every other (`_getRatePrecision`).
pub fn rate_precision(validator_id: u64) -> U256 {
    if validator_id < 8 {
        U256::from(100u64)
    } else {
        U256::from(10u64).pow(U256::from(29u64))
    }
}

/// ValidatorShare reverts with `require` strings, no custom errors: `EvmClient` names
/// `Error(string)` reverts itself.
fn decode_revert(_data: &[u8]) -> Option<String> {
    None
}

/// The signers of one checkpoint, from its `submitCheckpoint` input, as
/// `StakeManager.checkSignatures` counts them: each `[r, s, v]` recovered over
/// `keccak256(0x01 ‖ data)` (v below 27 gets 27 added), a repeated signer skipped, and
/// the first one out of ascending order ending the list.
///
/// # Errors
/// [`AdapterError::BadResponse`] for an input that is not `submitCheckpoint` or a
/// signature that does not recover.
pub fn checkpoint_signers(input: &[u8]) -> Result<Vec<Address>> {
    let call = IRootChain::submitCheckpointCall::abi_decode(input)
        .map_err(|e| AdapterError::bad_response(CHAIN, format!("not a submitCheckpoint input: {e}")))?;
    let vote = alloy::primitives::keccak256([&[1u8][..], &call.data[..]].concat());
    let mut out: Vec<Address> = Vec::with_capacity(call.sigs.len());
    for [r, s, v] in call.sigs {
        let v = if v < U256::from(27u8) { v + U256::from(27u8) } else { v };
        if v != U256::from(27u8) && v != U256::from(28u8) {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("checkpoint signature v = {v}"),
            ));
        }
        let signer = alloy::primitives::Signature::new(r, s, v == U256::from(28u8))
            .recover_address_from_prehash(&vote)
            .map_err(|e| AdapterError::bad_response(CHAIN, format!("checkpoint signature: {e}")))?;
        match out.last() {
            Some(last) if *last == signer => continue,
            Some(last) if signer < *last => break,
            _ => out.push(signer),
        }
    }
    Ok(out)
}

/// Performance of a validator whose current signer is `signer`, active since
/// `activation_epoch`, at `current_epoch`, over `checkpoints` (their signers, newest
/// first; a checkpoint is one epoch): the share it signed of those since its activation,
/// basis points; 10 000 when there is none to judge by.
pub fn signing_performance_bps(
    signer: Address,
    activation_epoch: u64,
    current_epoch: u64,
    checkpoints: &[Vec<Address>],
) -> u32 {
    let since = usize::try_from(current_epoch.saturating_sub(activation_epoch)).unwrap_or(usize::MAX);
    let eligible = checkpoints.len().min(since);
    if eligible == 0 {
        return 10_000;
    }
    let signed = checkpoints[..eligible].iter().filter(|c| c.contains(&signer)).count();
    u32::try_from(signed * 10_000 / eligible).unwrap_or(10_000)
}

fn u64_of(what: &str, v: U256) -> Result<u64> {
    to_u64(CHAIN, what, v)
}

/// The POL token contract, bound to the adapter's node connection.
type PolInstance<'a> = IPolToken::IPolTokenInstance<&'a alloy::providers::RootProvider>;

/// One unbond of ours.
#[derive(Debug, Clone)]
struct Unbond {
    nonce: u64,
    withdraw_epoch: u64,
    amount: Amount,
}

/// The POL adapter.
#[derive(Debug)]
pub struct PolygonAdapter {
    evm: EvmClient,
    stake_manager: Address,
    /// Signers of the checkpoints last read, by transaction hash (at most
    /// [`PERFORMANCE_CHECKPOINTS`]).
    checkpoints: std::sync::Mutex<std::collections::BTreeMap<B256, Vec<Address>>>,
}

impl PolygonAdapter {
    /// An adapter for the StakeManager at `stake_manager` ([`STAKE_MANAGER_MAINNET`] on
    /// Ethereum).
    ///
    /// # Errors
    /// As [`EvmClient::new`].
    pub fn new(cfg: EvmConfig, key: impl Into<TreasuryKey>, stake_manager: Address) -> Result<PolygonAdapter> {
        Ok(PolygonAdapter {
            evm: EvmClient::new(CHAIN, cfg, key)?,
            stake_manager,
            checkpoints: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// The treasury's address (the delegator).
    pub fn treasury(&self) -> Address {
        self.evm.address()
    }

    fn sm(&self) -> IStakeManager::IStakeManagerInstance<&alloy::providers::RootProvider> {
        IStakeManager::new(self.stake_manager, self.evm.provider())
    }

    fn share(&self, at: Address) -> IValidatorShare::IValidatorShareInstance<&alloy::providers::RootProvider> {
        IValidatorShare::new(at, self.evm.provider())
    }

    fn validator_id(validator: &str) -> Result<u64> {
        validator_index(CHAIN, validator, "StakeManager")
    }

    async fn epoch_now(&self, at: BlockId) -> Result<u64> {
        let e = self
            .sm()
            .epoch()
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "StakeManager.epoch", e))?;
        u64_of("epoch", e)
    }

    /// The signers of the newest [`PERFORMANCE_CHECKPOINTS`] checkpoints up to `head`,
    /// newest first: `NewHeaderBlock` logs of the RootChain, scanned back a range at a
    /// time (at most [`MAX_CHECKPOINT_LOOKBACK_BLOCKS`]), each checkpoint's transaction
    /// read once. A checkpoint whose transaction is not a direct `submitCheckpoint` (a
    /// relayer contract) cannot be attributed and is left out, with a warning.
    async fn recent_checkpoints(&self, head: u64) -> Result<Vec<Vec<Address>>> {
        let root = self
            .sm()
            .rootChain()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "StakeManager.rootChain", e))?;
        if root == Address::ZERO {
            return Err(AdapterError::bad_response(
                CHAIN,
                "StakeManager.rootChain() is the zero address",
            ));
        }
        let filter = Filter::new()
            .address(root)
            .event_signature(IRootChain::NewHeaderBlock::SIGNATURE_HASH);
        let range = self.evm.config().log_range_blocks.max(1);
        let floor = head.saturating_sub(MAX_CHECKPOINT_LOOKBACK_BLOCKS);
        let mut logs = Vec::new();
        let mut hi = head;
        loop {
            let lo = hi.saturating_sub(range - 1).max(floor);
            let mut page = self.evm.logs(&filter, lo, hi).await?;
            page.reverse();
            logs.extend(page);
            if logs.len() >= PERFORMANCE_CHECKPOINTS || lo == floor {
                break;
            }
            hi = lo - 1;
        }
        logs.truncate(PERFORMANCE_CHECKPOINTS);
        let known = std::mem::take(
            &mut *self
                .checkpoints
                .lock()
                .map_err(|_| AdapterError::transient(CHAIN, "checkpoint cache poisoned"))?,
        );
        let mut kept = std::collections::BTreeMap::new();
        let mut out = Vec::with_capacity(logs.len());
        for log in logs {
            let hash = log.transaction_hash.ok_or_else(|| {
                AdapterError::bad_response(CHAIN, "a NewHeaderBlock log without its transaction hash")
            })?;
            let signers = match known.get(&hash) {
                Some(s) => s.clone(),
                None => {
                    let tx = self
                        .evm
                        .provider()
                        .get_transaction_by_hash(hash)
                        .await
                        .map_err(|e| rpc_err(CHAIN, "eth_getTransactionByHash", &e))?
                        .ok_or_else(|| {
                            AdapterError::transient(CHAIN, format!("checkpoint transaction {hash} not found"))
                        })?;
                    match checkpoint_signers(alloy::consensus::Transaction::input(&tx)) {
                        Ok(s) => s,
                        Err(e) => {
                            warn!(chain = CHAIN, tx = %hash, error = %e, "checkpoint left out of performance");
                            continue;
                        }
                    }
                }
            };
            kept.insert(hash, signers.clone());
            out.push(signers);
        }
        if let Ok(mut cache) = self.checkpoints.lock() {
            *cache = kept;
        }
        Ok(out)
    }

    async fn withdrawal_delay(&self) -> Result<u64> {
        let d = self
            .sm()
            .withdrawalDelay()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "StakeManager.withdrawalDelay", e))?;
        u64_of("withdrawalDelay", d)
    }

    /// Validator ids `1..NFTCounter` with a delegation contract: (id, ValidatorShare).
    async fn shares(&self, at: BlockId) -> Result<Vec<(u64, Address)>> {
        let next = self
            .sm()
            .NFTCounter()
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "StakeManager.NFTCounter", e))?;
        let next = u64_of("NFTCounter", next)?;
        if next > MAX_VALIDATORS {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("NFTCounter {next}: more than {MAX_VALIDATORS} validators"),
            ));
        }
        let sm = self.sm();
        let calls = (1..next).map(|id| sm.getValidatorContract(U256::from(id))).collect();
        let shares = self.evm.batch("StakeManager.getValidatorContract", calls, at).await?;
        Ok((1..next)
            .zip(shares)
            .filter(|(_, share)| *share != Address::ZERO)
            .collect())
    }

    async fn share_of(&self, id: u64, at: BlockId) -> Result<Address> {
        self.sm()
            .getValidatorContract(U256::from(id))
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "StakeManager.getValidatorContract", e))
    }

    async fn share_for(&self, validator: &str) -> Result<(u64, Address)> {
        let id = Self::validator_id(validator)?;
        let share = self.share_of(id, BlockId::latest()).await?;
        if share == Address::ZERO {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("validator {id} has no ValidatorShare contract (not a validator, or delegation closed)"),
            ));
        }
        Ok((id, share))
    }

    async fn active(&self, share: Address, at: BlockId) -> Result<(Amount, U256)> {
        let r = self
            .share(share)
            .getTotalStake(self.treasury())
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "ValidatorShare.getTotalStake", e))?;
        Ok((to_amount(CHAIN, "getTotalStake", r._0)?, r._1))
    }

    /// Our open unbonds at one validator (nonces up to `last`, its `unbondNonces`), valued
    /// at the withdraw exchange rate.
    async fn unbonds(&self, id: u64, share: Address, last: u64, at: BlockId) -> Result<Vec<Unbond>> {
        let s = self.share(share);
        let me = self.treasury();
        if last == 0 {
            return Ok(Vec::new());
        }
        let rate = s
            .withdrawExchangeRate()
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "ValidatorShare.withdrawExchangeRate", e))?;
        let precision = rate_precision(id);
        let mut out = Vec::new();
        // the newest MAX_UNBONDS nonces: older ones are claimed (a bound on the loop)
        for nonce in last.saturating_sub(MAX_UNBONDS - 1).max(1)..=last {
            let u = s
                .unbonds_new(me, U256::from(nonce))
                .block(at)
                .call()
                .await
                .map_err(|e| call_err(CHAIN, "ValidatorShare.unbonds_new", e))?;
            if u.shares.is_zero() {
                continue;
            }
            let value = rate
                .checked_mul(u.shares)
                .map(|v| v / precision)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, "withdrawExchangeRate × shares overflows 256 bits"))?;
            out.push(Unbond {
                nonce,
                withdraw_epoch: u64_of("withdrawEpoch", u.withdrawEpoch)?,
                amount: to_amount(CHAIN, "unbond value", value)?,
            });
        }
        Ok(out)
    }

    async fn pol(&self) -> Result<PolInstance<'_>> {
        let token = self
            .sm()
            .token()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "StakeManager.token", e))?;
        Ok(IPolToken::new(token, self.evm.provider()))
    }

    /// An EIP-2612 permit letting the StakeManager pull `amount` POL, signed: (deadline,
    /// v, r, s). The domain is checked against the token's own `DOMAIN_SEPARATOR`.
    async fn permit(&self, pol: &PolInstance<'_>, amount: U256) -> Result<(U256, u8, B256, B256)> {
        let me = self.treasury();
        let name = pol.name().call().await.map_err(|e| call_err(CHAIN, "POL.name", e))?;
        let nonce = pol
            .nonces(me)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "POL.nonces", e))?;
        let separator = pol
            .DOMAIN_SEPARATOR()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "POL.DOMAIN_SEPARATOR", e))?;
        let domain = Eip712Domain::new(
            Some(name.into()),
            Some("1".into()),
            Some(U256::from(self.evm.config().chain_id)),
            Some(*pol.address()),
            None,
        );
        if domain.separator() != separator {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("the POL token's DOMAIN_SEPARATOR {separator} is not the EIP-712 domain expected: refusing to sign a permit"),
            ));
        }
        let now = self.evm.head().await?.1;
        let deadline = U256::from(now.unix_secs().max(0) as u64 + PERMIT_LIFETIME_SECS);
        let permit = abi::Permit {
            owner: me,
            spender: self.stake_manager,
            value: amount,
            nonce,
            deadline,
        };
        let (v, r, s) = self.evm.sign_digest(&permit.eip712_signing_hash(&domain))?;
        Ok((deadline, v, r, s))
    }

    /// The treasury's POL, wei.
    async fn pol_balance(&self, pol: &PolInstance<'_>) -> Result<Amount> {
        let b = pol
            .balanceOf(self.treasury())
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "POL.balanceOf", e))?;
        to_amount(CHAIN, "POL balance", b)
    }

    async fn sign(&self, to: Address, call: impl SolCall) -> Result<SignedTx> {
        self.evm
            .sign_call(to, U256::ZERO, call.abi_encode().into(), decode_revert)
            .await
    }

    /// `share`'s minAmount: the smallest reward it lets `withdrawRewards` pay, wei.
    async fn min_amount(&self, share: Address) -> Result<Amount> {
        let m = self
            .share(share)
            .minAmount()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "ValidatorShare.minAmount", e))?;
        to_amount(CHAIN, "minAmount", m)
    }
}

#[async_trait]
impl ChainAdapter for PolygonAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        let mut p = self
            .evm
            .preflight(
                &[("StakeManager", self.stake_manager), ("Multicall3", MULTICALL3_ADDRESS)],
                true,
            )
            .await?;
        p.fee_token = Some(crate::preflight::FeeToken {
            symbol: "ETH".into(),
            decimals: 18,
        });
        Ok(p)
    }
    fn token(&self) -> &str {
        "POL"
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let delay = self.withdrawal_delay().await?;
        Ok(LiquidityModel {
            unbonding_period_secs: delay.saturating_mul(CHECKPOINT_SECS),
            epoch_secs: CHECKPOINT_SECS,
            epoch_aligned: true,
            activation_epochs: 0,
            // ValidatorShare.minAmount (1 POL): the smallest reward withdrawal; smaller
            // delegations would earn rewards that only a later buy or sell pays out
            min_delegation: match self.shares(BlockId::latest()).await?.first() {
                Some((_, share)) => self.min_amount(*share).await?,
                // no validator yet: ValidatorShare.initialize sets 10^18
                None => Amount(1_000_000_000_000_000_000),
            },
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
        let index = self.epoch_now(BlockId::latest()).await?;
        // the chain does not record when a checkpoint landed: the epoch is dated now
        let now = self.now().await?;
        Ok(EpochInfo {
            index,
            start: now,
            secs: CHECKPOINT_SECS,
        })
    }

    async fn now(&self) -> Result<Timestamp> {
        Ok(self.evm.head().await?.1)
    }

    /// Active validators' performance is their checkpoint signing over the newest
    /// [`PERFORMANCE_CHECKPOINTS`] ([`signing_performance_bps`]).
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let head = self.evm.head().await?.0;
        let at = BlockId::number(head);
        let epoch = self.epoch_now(at).await?;
        let checkpoints = self.recent_checkpoints(head).await?;
        let ids: Vec<u64> = self.shares(at).await?.into_iter().map(|(id, _)| id).collect();
        let sm = self.sm();
        let calls = ids.iter().map(|id| sm.validators(U256::from(*id))).collect();
        let records = self.evm.batch("StakeManager.validators", calls, at).await?;
        let mut out = Vec::new();
        for (id, v) in ids.into_iter().zip(records) {
            if v.commissionRate > U256::from(100u64) {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    format!("validator {id}: commission rate {}% above 100", v.commissionRate),
                ));
            }
            let total = v
                .amount
                .checked_add(v.delegatedAmount)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("validator {id}: stake overflows")))?;
            let active = v.status == STATUS_ACTIVE && v.jailTime.is_zero() && v.deactivationEpoch.is_zero();
            out.push(ValidatorCandidate {
                id: id.to_string(),
                name: format!("validator {id}"),
                commission_bps: u32::try_from(v.commissionRate).unwrap_or(100) * 100,
                total_stake: to_amount(CHAIN, "validator stake", total)?,
                performance_bps: if active {
                    let activation = u64_of("activationEpoch", v.activationEpoch)?;
                    signing_performance_bps(v.signer, activation, epoch, &checkpoints)
                } else {
                    0
                },
                active,
                own_validator: false,
            });
        }
        Ok(out)
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let (block, now) = self.evm.head().await?;
        let at = BlockId::number(block);
        let epoch = self.epoch_now(at).await?;
        let delay = self.withdrawal_delay().await?;
        let shares = self.shares(at).await?;
        let me = self.treasury();
        let contracts: Vec<_> = shares.iter().map(|(_, s)| self.share(*s)).collect();
        let stakes = self
            .evm
            .batch(
                "ValidatorShare.getTotalStake",
                contracts.iter().map(|c| c.getTotalStake(me)).collect(),
                at,
            )
            .await?;
        let nonces = self
            .evm
            .batch(
                "ValidatorShare.unbondNonces",
                contracts.iter().map(|c| c.unbondNonces(me)).collect(),
                at,
            )
            .await?;
        let mut out = Vec::new();
        for (((id, share), stake), nonce) in shares.into_iter().zip(stakes).zip(nonces) {
            let active = to_amount(CHAIN, "getTotalStake", stake._0)?;
            if !active.is_zero() {
                out.push(Position {
                    validator: id.to_string(),
                    state: StakeState::Active,
                    amount: active,
                    eta: None,
                    account: Some(share.to_string()),
                });
            }
            let last = u64_of("unbondNonces", nonce)?;
            for u in self.unbonds(id, share, last, at).await? {
                let ready = u.withdraw_epoch.saturating_add(delay);
                let (state, eta) = if ready <= epoch {
                    (StakeState::Withdrawable, None)
                } else {
                    let secs = (ready - epoch).saturating_mul(CHECKPOINT_SECS);
                    let eta = Timestamp::from_unix_secs(now.unix_secs().saturating_add(secs as i64))
                        .map_err(|e| AdapterError::bad_response(CHAIN, e.to_string()))?;
                    (StakeState::Deactivating, Some(eta))
                };
                out.push(Position {
                    validator: id.to_string(),
                    state,
                    amount: u.amount,
                    eta,
                    account: Some(format!("unbond nonce {}", u.nonce)),
                });
            }
        }
        Ok(out)
    }

    async fn spendable(&self) -> Result<Amount> {
        self.pol_balance(&self.pol().await?).await
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        let at = BlockId::number(self.evm.head().await?.0);
        let shares = self.shares(at).await?;
        let me = self.treasury();
        let contracts: Vec<_> = shares.iter().map(|(_, s)| self.share(*s)).collect();
        let rewards = self
            .evm
            .batch(
                "ValidatorShare.getLiquidRewards",
                contracts.iter().map(|c| c.getLiquidRewards(me)).collect(),
                at,
            )
            .await?;
        let mut out = Vec::new();
        for ((id, share), r) in shares.into_iter().zip(rewards) {
            let r = to_amount(CHAIN, "getLiquidRewards", r)?;
            // withdrawRewards refuses less than the share's minAmount; smaller amounts wait
            if !r.is_zero() && r >= self.min_amount(share).await? {
                out.push((id.to_string(), r));
            }
        }
        Ok(out)
    }

    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let (id, share) = self.share_for(validator).await?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "delegation of 0 wei"));
        }
        let pol = self.pol().await?;
        let have = self.pol_balance(&pol).await?;
        AdapterError::check_funds(CHAIN, amount.0, have.0)?;
        let (_, rate) = self.active(share, BlockId::latest()).await?;
        if rate.is_zero() {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("validator {id}: exchange rate 0"),
            ));
        }
        let value = U256::from(amount.0);
        // the shares the contract mints at today's rate; only slashing moves the rate,
        // and it moves it down (more shares), so this is a floor, not a guess
        let min_shares = value * rate_precision(id) / rate;
        if min_shares.is_zero() {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{amount} wei buys no share of validator {id}"),
            ));
        }
        let (deadline, v, r, s) = self.permit(&pol, value).await?;
        let call = IValidatorShare::buyVoucherWithPermitCall {
            _amount: value,
            _minSharesToMint: min_shares,
            deadline,
            v,
            r,
            s,
        };
        self.sign(share, call).await
    }

    async fn undelegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let (id, share) = self.share_for(validator).await?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "undelegation of 0 wei"));
        }
        let (active, rate) = self.active(share, BlockId::latest()).await?;
        if amount > active || rate.is_zero() {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("undelegate {amount} wei from validator {id}: only {active} wei staked there"),
            ));
        }
        // the shares the contract burns at today's rate; a slash before it lands would
        // need more, and the contract then refuses ("too much slippage")
        let max_shares = U256::from(amount.0) * rate_precision(id) / rate;
        let call = IValidatorShare::sellVoucher_newCall {
            claimAmount: U256::from(amount.0),
            maximumSharesToBurn: max_shares,
        };
        self.sign(share, call).await
    }

    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let (id, share) = self.share_for(validator).await?;
        let at = BlockId::latest();
        let epoch = self.epoch_now(at).await?;
        let delay = self.withdrawal_delay().await?;
        let last = self
            .share(share)
            .unbondNonces(self.treasury())
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "ValidatorShare.unbondNonces", e))?;
        let unbonds = self.unbonds(id, share, u64_of("unbondNonces", last)?, at).await?;
        let matured: Vec<&Unbond> = unbonds
            .iter()
            .filter(|u| u.withdraw_epoch.saturating_add(delay) <= epoch)
            .collect();
        let Some(u) = matured.iter().find(|u| u.amount == amount) else {
            let have: Vec<String> = matured.iter().map(|u| u.amount.to_string()).collect();
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "no matured unbond worth {amount} wei at validator {id} (matured: [{}])",
                    have.join(", ")
                ),
            ));
        };
        let call = IValidatorShare::unstakeClaimTokens_newCall {
            unbondNonce: U256::from(u.nonce),
        };
        self.sign(share, call).await
    }

    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        let (_, share) = self.share_for(validator).await?;
        self.sign(share, IValidatorShare::withdrawRewardsCall {}).await
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        self.evm.broadcast(tx).await
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        self.evm.tx_status(tx).await
    }

    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let logger = self
            .sm()
            .logger()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "StakeManager.logger", e))?;
        // only the StakeManager's own logger counts: anyone can emit a look-alike event
        let filter = Filter::new()
            .address(logger)
            .event_signature(IStakingInfo::DelegatorClaimedRewards::SIGNATURE_HASH)
            .topic2(self.treasury().into_word());
        paid_rewards_since(&self.evm, CHAIN, cursor, &filter, |log| {
            let ev = IStakingInfo::DelegatorClaimedRewards::decode_log(&log.inner)
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("DelegatorClaimedRewards log: {e}")))?;
            let id = u64_of("DelegatorClaimedRewards.validatorId", ev.validatorId)?;
            Ok(Some((
                id.to_string(),
                to_amount(CHAIN, "DelegatorClaimedRewards.rewards", ev.rewards)?,
            )))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rate_precision_as_the_contract() {
        assert_eq!(rate_precision(7), U256::from(100u64));
        assert_eq!(rate_precision(8), U256::from(10u64).pow(U256::from(29u64)));
    }

    #[test]
    fn fail_validator_must_be_a_positive_id() {
        for bad in ["0", "x", "", "0x5e3E"] {
            let e = PolygonAdapter::validator_id(bad).unwrap_err();
            assert!(matches!(e, AdapterError::BadInput { .. }), "{bad}: {e}");
        }
    }

    /// `[r, s, v]` of key `key` (32 bytes of it) over `vote`, v as 0/1 (the contract adds 27).
    fn sign(key: u8, vote: &B256) -> ([U256; 3], Address) {
        let sk = k256::ecdsa::SigningKey::from_slice(&[key; 32]).unwrap();
        let (sig, rec) = sk.sign_prehash_recoverable(vote.as_slice()).unwrap();
        let b = sig.to_bytes();
        let rsv = [
            U256::from_be_slice(&b[..32]),
            U256::from_be_slice(&b[32..]),
            U256::from(rec.to_byte()),
        ];
        (rsv, Address::from_private_key(&sk))
    }

    fn input(data: &[u8], sigs: Vec<[U256; 3]>) -> Vec<u8> {
        IRootChain::submitCheckpointCall {
            data: data.to_vec().into(),
            sigs,
        }
        .abi_encode()
    }

    #[test]
    fn success_checkpoint_signers_as_check_signatures() {
        let data = b"checkpoint 42".to_vec();
        let vote = alloy::primitives::keccak256([&[1u8][..], &data[..]].concat());
        let mut signed: Vec<([U256; 3], Address)> = (1..=4).map(|k| sign(k, &vote)).collect();
        signed.sort_by_key(|(_, a)| *a);
        let sigs: Vec<[U256; 3]> = signed.iter().map(|(s, _)| *s).collect();
        let want: Vec<Address> = signed.iter().map(|(_, a)| *a).collect();
        assert_eq!(checkpoint_signers(&input(&data, sigs.clone())).unwrap(), want);
        // v already 27/28 is the same signature
        let mut v27 = sigs.clone();
        for s in &mut v27 {
            s[2] += U256::from(27u8);
        }
        assert_eq!(checkpoint_signers(&input(&data, v27)).unwrap(), want);
        // a repeated signer counts once; one out of order ends the list
        let repeated = vec![sigs[0], sigs[0], sigs[1]];
        assert_eq!(checkpoint_signers(&input(&data, repeated)).unwrap(), want[..2].to_vec());
        let unordered = vec![sigs[1], sigs[0], sigs[2]];
        assert_eq!(
            checkpoint_signers(&input(&data, unordered)).unwrap(),
            want[1..2].to_vec()
        );
        // a signature over other data recovers someone else
        let other = checkpoint_signers(&input(b"checkpoint 43", vec![sigs[0]])).unwrap();
        assert_ne!(other, want[..1].to_vec());
    }

    #[test]
    fn fail_checkpoint_input_garbage_is_bad_response() {
        let vote = alloy::primitives::keccak256([1u8]);
        let (mut bad_v, _) = sign(1, &vote);
        bad_v[2] = U256::from(29u8);
        for bad in [input(b"", vec![bad_v]), vec![0xde, 0xad, 0xbe, 0xef], Vec::new()] {
            let e = checkpoint_signers(&bad).unwrap_err();
            assert!(matches!(e, AdapterError::BadResponse { .. }), "{e}");
        }
    }

    #[test]
    fn success_performance_counts_checkpoints_since_activation() {
        let (a, b) = (Address::repeat_byte(1), Address::repeat_byte(2));
        // newest first: a signed 3 of 4, b the newest 2 only
        let cps = vec![vec![a, b], vec![b], vec![a], vec![a]];
        assert_eq!(signing_performance_bps(a, 0, 100, &cps), 7_500);
        assert_eq!(signing_performance_bps(b, 0, 100, &cps), 5_000);
        assert_eq!(
            signing_performance_bps(b, 98, 100, &cps),
            10_000,
            "active for the newest two only"
        );
        assert_eq!(signing_performance_bps(a, 99, 100, &cps), 10_000);
        assert_eq!(
            signing_performance_bps(a, 100, 100, &cps),
            10_000,
            "nothing to judge by yet"
        );
        assert_eq!(signing_performance_bps(a, 0, 100, &[]), 10_000);
        assert_eq!(signing_performance_bps(Address::ZERO, 0, 100, &cps), 0);
    }

    #[test]
    fn success_permit_digest_is_eip712() {
        // EIP-2612's type string, as every permit token hashes it
        let p = abi::Permit {
            owner: Address::ZERO,
            spender: Address::ZERO,
            value: U256::ZERO,
            nonce: U256::ZERO,
            deadline: U256::ZERO,
        };
        assert_eq!(
            p.eip712_type_hash(),
            alloy::primitives::keccak256(
                "Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)"
            )
        );
    }
}

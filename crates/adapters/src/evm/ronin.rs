//! AXS staking on Ronin: the Axie Infinity AXS staking pool
//! (`0x05b0bb3c1c320b280501b86706c3551995bc8571`, an ERC20StakingPool whose reward accounting
//! lives in the ERC20StakingManager `0x8bd81a19420bad681b7bfc20e703ebd8e253782d`), staking the
//! AXS token `0x97a9107C1793BC407d6F527b77e7fff4D812bece`. Sources: the pool's verified ABI
//! on the Ronin explorer (`stake`, `unstake`, `unstakeAll`, `claimPendingRewards`,
//! `restakeRewards`, `getStakingAmount`, `getPendingRewards`, `getStakingToken`,
//! `getRewardToken`, `getStakingTotal`; events `Staked`, `Unstaked`, `RewardClaimed`), and
//! stake.axieinfinity.com (unstake any time; rewards claimable or restakable once every
//! 24 hours, the manager's `minClaimedBlocks` at Ronin's 3-second blocks).
//!
//! ```text
//!  delegate    AXS.approve(pool, amount) then pool.stake(amount): two transactions at
//!              consecutive nonces signed as one operation (Ronin's AXS has no EIP-2612
//!              permit); the approval is left out when the allowance already covers it
//!  undelegate  none: the pool has no unbonding
//!  withdraw    pool.unstake(amount): the AXS is back in custody in the same transaction
//!              (LiquidityModel::instant_exit: the planner exits with one withdraw)
//!  claim       pool.claimPendingRewards(): at most once per minClaimedBlocks (≈ 24 h)
//!  rewards     RewardClaimed(_user = treasury, _token, _amount) logged by the pool
//!              → realized, claimed (see `paid`)
//!  positions   pool.getStakingAmount(treasury): one Active position; its validator is
//!              the pool's address
//! ```
//!
//! Amounts are wei of AXS (1 AXS = 10^18 wei); gas is paid in RON. Ronin mainnet is chain
//! id 2020, the Saigon testnet 2021.

use alloy::eips::BlockId;
use alloy::primitives::{Address, U256};
use alloy::rpc::types::Filter;
use alloy::sol_types::{SolCall, SolEvent};
use async_trait::async_trait;

use softstake_core::{Amount, Timestamp};

use super::paid::paid_rewards_since;
use super::{call_err, to_amount, EvmCall, EvmClient, EvmConfig};
use crate::error::{AdapterError, Result};
use crate::signer::TreasuryKey;
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardsPage, SignedTx, StakeState, TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "ronin";
/// The AXS staking pool on Ronin mainnet (chain id 2020).
pub const AXS_POOL_MAINNET: Address = alloy::primitives::address!("0x05b0bb3c1c320b280501b86706c3551995bc8571");
/// Rewards are claimable once a day (the manager's `minClaimedBlocks` at 3-second
/// blocks); the planner's claim cadence.
pub const CLAIM_CADENCE_SECS: u64 = 86_400;
/// The pool pays rewards daily: one planning epoch is a day.
pub const EPOCH_SECS: u64 = 86_400;
/// Gas limit of a `stake` signed behind its approval: it cannot be estimated before the
/// approval lands (the estimate would revert on `transferFrom`). The pool's `stake` uses
/// about 150 000 gas; unused gas is not charged.
pub const STAKE_GAS_LIMIT: u64 = 400_000;

/// The functions and events softstake uses, with the signatures of the pool's verified
/// ABI and ERC-20.
mod abi {
    alloy::sol! {
        /// The AXS staking pool.
        #[sol(rpc, all_derives)]
        interface IAxsStakingPool {
            function stake(uint256 _amount) external;
            function unstake(uint256 _amount) external;
            function unstakeAll() external;
            function claimPendingRewards() external;
            function restakeRewards() external;
            function getStakingAmount(address _user) external view returns (uint256);
            function getPendingRewards(address _user) external view returns (uint256);
            function getStakingToken() external view returns (address);
            function getRewardToken() external view returns (address);
            function getStakingTotal() external view returns (uint256);
            event Staked(address indexed _user, address indexed _token, uint256 indexed _amount);
            event Unstaked(address indexed _user, address indexed _token, uint256 indexed _amount);
            event RewardClaimed(address indexed _user, address indexed _token, uint256 indexed _amount);
        }

        /// ERC-20 (AXS on Ronin: no permit).
        #[sol(rpc, all_derives)]
        interface IErc20 {
            function balanceOf(address owner) external view returns (uint256);
            function allowance(address owner, address spender) external view returns (uint256);
            function approve(address spender, uint256 value) external returns (bool);
        }
    }
}
pub use abi::{IAxsStakingPool, IErc20};

/// The pool reverts with `require` strings: `EvmClient` names `Error(string)` itself.
fn decode_revert(_data: &[u8]) -> Option<String> {
    None
}

/// The AXS adapter.
#[derive(Debug)]
pub struct RoninAxsAdapter {
    evm: EvmClient,
    pool: Address,
}

impl RoninAxsAdapter {
    /// An adapter for the staking pool at `pool` ([`AXS_POOL_MAINNET`] on Ronin).
    ///
    /// # Errors
    /// As [`EvmClient::new`].
    pub fn new(cfg: EvmConfig, key: impl Into<TreasuryKey>, pool: Address) -> Result<RoninAxsAdapter> {
        Ok(RoninAxsAdapter {
            evm: EvmClient::new(CHAIN, cfg, key)?,
            pool,
        })
    }

    /// The treasury's address (the staker).
    pub fn treasury(&self) -> Address {
        self.evm.address()
    }

    /// The pool's address, as positions and validators name it.
    pub fn pool_id(&self) -> String {
        self.pool.to_checksum(None)
    }

    fn pool(&self) -> IAxsStakingPool::IAxsStakingPoolInstance<&alloy::providers::RootProvider> {
        IAxsStakingPool::new(self.pool, self.evm.provider())
    }

    async fn axs(&self) -> Result<IErc20::IErc20Instance<&alloy::providers::RootProvider>> {
        let t = self
            .pool()
            .getStakingToken()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "pool.getStakingToken", e))?;
        Ok(IErc20::new(t, self.evm.provider()))
    }

    /// Only the configured pool is a "validator" here.
    fn check_pool(&self, validator: &str) -> Result<()> {
        match validator.parse::<Address>() {
            Ok(a) if a == self.pool => Ok(()),
            _ => Err(AdapterError::bad_input(
                CHAIN,
                format!("{validator:?} is not the AXS staking pool {}", self.pool_id()),
            )),
        }
    }

    async fn staked(&self, at: BlockId) -> Result<Amount> {
        let v = self
            .pool()
            .getStakingAmount(self.treasury())
            .block(at)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "pool.getStakingAmount", e))?;
        to_amount(CHAIN, "getStakingAmount", v)
    }

    async fn sign(&self, call: impl SolCall) -> Result<SignedTx> {
        self.evm
            .sign_call(self.pool, U256::ZERO, call.abi_encode().into(), decode_revert)
            .await
    }
}

#[async_trait]
impl ChainAdapter for RoninAxsAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        let mut p = self.evm.preflight(&[("AXS staking pool", self.pool)], true).await?;
        p.fee_token = Some(crate::preflight::FeeToken {
            symbol: "RON".into(),
            decimals: 18,
        });
        Ok(p)
    }
    fn token(&self) -> &str {
        "AXS"
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        Ok(LiquidityModel {
            unbonding_period_secs: 0,
            epoch_secs: EPOCH_SECS,
            epoch_aligned: false,
            activation_epochs: 0,
            min_delegation: Amount(1),
            rewards_auto_compound: false,
            claim_cadence_secs: CLAIM_CADENCE_SECS,
            claim_all_validators: false,
            max_operations_per_epoch: self.evm.config().max_operations_per_epoch,
            instant_exit: true,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: false,
        })
    }

    /// The pool has no epochs; the planning epoch is the UTC day of the latest block.
    async fn epoch(&self) -> Result<EpochInfo> {
        self.evm.utc_day_epoch(EPOCH_SECS).await
    }

    async fn now(&self) -> Result<Timestamp> {
        Ok(self.evm.head().await?.1)
    }

    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let total = self
            .pool()
            .getStakingTotal()
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "pool.getStakingTotal", e))?;
        Ok(vec![ValidatorCandidate {
            id: self.pool_id(),
            name: "AXS staking pool".into(),
            commission_bps: 0,
            total_stake: to_amount(CHAIN, "getStakingTotal", total)?,
            performance_bps: 10_000,
            active: true,
            own_validator: false,
        }])
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let staked = self.staked(BlockId::latest()).await?;
        Ok(if staked.is_zero() {
            vec![]
        } else {
            vec![Position {
                validator: self.pool_id(),
                state: StakeState::Active,
                amount: staked,
                eta: None,
                account: None,
            }]
        })
    }

    /// The treasury's AXS balance (gas is RON, read by `eth_getBalance` when signing).
    async fn spendable(&self) -> Result<Amount> {
        let token = self.axs().await?;
        let b = token
            .balanceOf(self.treasury())
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "AXS.balanceOf", e))?;
        to_amount(CHAIN, "AXS balance", b)
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        let r = self
            .pool()
            .getPendingRewards(self.treasury())
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "pool.getPendingRewards", e))?;
        let r = to_amount(CHAIN, "getPendingRewards", r)?;
        Ok(if r.is_zero() { vec![] } else { vec![(self.pool_id(), r)] })
    }

    /// `approve` (when the allowance is short) and `stake`, one operation.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for another validator than the pool, 0 wei, or more AXS
    /// than the treasury holds; signing errors as [`EvmClient::sign_calls`].
    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        self.check_pool(validator)?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "delegation of 0 wei"));
        }
        let have = self.spendable().await?;
        AdapterError::check_funds(CHAIN, amount.0, have.0)?;
        let token = self.axs().await?;
        let allowance = token
            .allowance(self.treasury(), self.pool)
            .call()
            .await
            .map_err(|e| call_err(CHAIN, "AXS.allowance", e))?;
        let value = U256::from(amount.0);
        let stake = IAxsStakingPool::stakeCall { _amount: value }.abi_encode().into();
        let calls = if allowance >= value {
            vec![EvmCall::estimated(self.pool, U256::ZERO, stake)]
        } else {
            // exactly the amount: no standing allowance is left on a custody account
            let approve = IErc20::approveCall {
                spender: self.pool,
                value,
            };
            vec![
                EvmCall::estimated(*token.address(), U256::ZERO, approve.abi_encode().into()),
                EvmCall {
                    to: self.pool,
                    value: U256::ZERO,
                    input: stake,
                    gas_limit: Some(STAKE_GAS_LIMIT),
                },
            ]
        };
        self.evm.sign_calls(&calls, decode_revert).await
    }

    /// The pool has no unbonding: exits are withdrawals (`unstake`).
    ///
    /// # Errors
    /// Always [`AdapterError::BadInput`].
    async fn undelegate(&self, _key: &str, _validator: &str, _amount: Amount) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            "the AXS pool has no unbonding: stake leaves with a withdraw (unstake), not an undelegation",
        ))
    }

    /// `unstake(amount)`: the AXS returns to custody at once.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for another validator, 0 wei, or more than is staked.
    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        self.check_pool(validator)?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "withdrawal of 0 wei"));
        }
        let staked = self.staked(BlockId::latest()).await?;
        if amount > staked {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("unstake {amount} wei: only {staked} wei staked in the pool"),
            ));
        }
        self.sign(IAxsStakingPool::unstakeCall {
            _amount: U256::from(amount.0),
        })
        .await
    }

    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        self.check_pool(validator)?;
        self.sign(IAxsStakingPool::claimPendingRewardsCall {}).await
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        self.evm.broadcast(tx).await
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        self.evm.tx_status(tx).await
    }

    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let filter = Filter::new()
            .address(self.pool)
            .event_signature(IAxsStakingPool::RewardClaimed::SIGNATURE_HASH)
            .topic1(self.treasury().into_word());
        let pool = self.pool_id();
        paid_rewards_since(&self.evm, CHAIN, cursor, &filter, |log| {
            let ev = IAxsStakingPool::RewardClaimed::decode_log(&log.inner)
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("RewardClaimed log: {e}")))?;
            Ok(Some((
                pool.clone(),
                to_amount(CHAIN, "RewardClaimed._amount", ev._amount)?,
            )))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::SecretBytes;

    fn adapter() -> RoninAxsAdapter {
        let cfg = EvmConfig {
            rpc_url: "http://127.0.0.1:9".into(),
            chain_id: 2020,
            confirmations: 1,
            max_fee_per_gas_wei: 1,
            max_priority_fee_per_gas_wei: 1,
            max_operations_per_epoch: 8,
            start_block: 0,
            log_range_blocks: crate::evm::LOG_CHUNK_BLOCKS,
        };
        RoninAxsAdapter::new(cfg, SecretBytes::new(vec![7; 32]), AXS_POOL_MAINNET).unwrap()
    }

    #[test]
    fn success_the_pool_is_the_only_validator() {
        let a = adapter();
        a.check_pool(&a.pool_id()).unwrap();
        a.check_pool("0x05b0bb3c1c320b280501b86706c3551995bc8571").unwrap();
    }

    #[test]
    fn fail_other_validators_are_refused_by_name() {
        let a = adapter();
        for bad in ["", "1", "0x0000000000000000000000000000000000002002", "pool"] {
            let e = a.check_pool(bad).unwrap_err();
            assert!(matches!(e, AdapterError::BadInput { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("not the AXS staking pool"), "{e}");
        }
    }

    #[tokio::test]
    async fn fail_undelegate_names_the_withdraw_instead() {
        let e = adapter().undelegate("k", "x", Amount(1)).await.unwrap_err();
        assert!(e.to_string().contains("withdraw"), "{e}");
    }
}

//! A local Ronin with the AXS staking pool: anvil (`--chain-id 2020`) with our pool
//! stand-in (`contracts/evm/ronin/AxsStakingPool.sol`, which deploys the AXS token).
//!
//! ```text
//!  start_ronin()  anvil --chain-id 2020
//!                 deploy AxsStakingPool(minClaimedBlocks) (it deploys MockAxs)
//!                 AXS minted to the funder (rewards, other stakers) and the treasury
//!                 the funder stakes OTHER_STAKE_AXS (the treasury is not alone in the pool)
//! ```

use alloy::primitives::{Address, U256};
use alloy::sol_types::SolValue;
use anyhow::{Context, Result};

use crate::evm::{compile, contracts_dir, start_anvil, LocalEvm};

alloy::sol! {
    /// The pool's calls the harness makes (real ABI) and its test-only entry point.
    #[sol(rpc)]
    interface IAxsPoolMock {
        function getStakingToken() external view returns (address);
        function stake(uint256 _amount) external;
        function distributeRewards(uint256 amount) external;
        function getStakingAmount(address _user) external view returns (uint256);
        function getStakingTotal() external view returns (uint256);
    }

    /// MockAxs: test-only mint and the ERC-20 calls.
    #[sol(rpc)]
    interface IAxsMock {
        function mint(address to, uint256 amount) external;
        function approve(address spender, uint256 value) external returns (bool);
        function balanceOf(address owner) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
    }
}

/// 1 AXS in wei.
pub const AXS_WEI: u128 = 1_000_000_000_000_000_000;
/// AXS minted to the treasury at start.
pub const TREASURY_AXS: u128 = 50_000;
/// AXS the funder stakes at start (the rest of the pool).
pub const OTHER_STAKE_AXS: u128 = 150_000;
/// Blocks between two claims of one user (the stand-in's `minClaimedBlocks`).
pub const MIN_CLAIMED_BLOCKS: u64 = 10;

/// anvil running the AXS pool stand-in.
pub struct LocalRonin {
    /// The node and its accounts.
    pub evm: LocalEvm,
    /// The staking pool.
    pub pool: Address,
    /// The AXS token.
    pub axs: Address,
}

impl std::ops::Deref for LocalRonin {
    type Target = LocalEvm;
    fn deref(&self) -> &LocalEvm {
        &self.evm
    }
}

impl std::fmt::Debug for LocalRonin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRonin").field("url", &self.url).finish()
    }
}

/// Starts anvil (`--chain-id 2020`; `port` 0 = any free port) with the pool stand-in;
/// the treasury holds [`TREASURY_AXS`] AXS and 1 000 RON for gas.
pub async fn start_ronin(port: u16, block_time_secs: u64) -> Result<LocalRonin> {
    let compiled = compile(&contracts_dir().join("ronin/AxsStakingPool.sol"))?;
    let pool_bin = compiled
        .get("AxsStakingPool")
        .context("AxsStakingPool not in the solc output")?;
    let evm = start_anvil(2020, port, block_time_secs, 1_000, &[])?;
    let pool = evm
        .deploy(&pool_bin.bin, &U256::from(MIN_CLAIMED_BLOCKS).abi_encode())
        .await?;
    let mock = IAxsPoolMock::new(pool, &evm.funder);
    let axs = mock.getStakingToken().call().await?;
    let token = IAxsMock::new(axs, &evm.funder);
    let funder = evm.anvil.addresses()[0];
    for (to, amount) in [(funder, 10_000_000 * AXS_WEI), (evm.treasury, TREASURY_AXS * AXS_WEI)] {
        token.mint(to, U256::from(amount)).send().await?.get_receipt().await?;
    }
    token.approve(pool, U256::MAX).send().await?.get_receipt().await?;
    mock.stake(U256::from(OTHER_STAKE_AXS * AXS_WEI))
        .send()
        .await?
        .get_receipt()
        .await?;
    Ok(LocalRonin { evm, pool, axs })
}

impl LocalRonin {
    /// Credits `wei` AXS of reward to the pool's stakers, pro rata.
    pub async fn distribute_rewards(&self, wei: u128) -> Result<()> {
        IAxsPoolMock::new(self.pool, &self.funder)
            .distributeRewards(U256::from(wei))
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(())
    }

    /// Everything staked in the pool, wei.
    pub async fn staking_total(&self) -> Result<u128> {
        Ok(u128::try_from(
            IAxsPoolMock::new(self.pool, &self.funder)
                .getStakingTotal()
                .call()
                .await?,
        )?)
    }

    /// `owner`'s AXS, wei.
    pub async fn axs_balance(&self, owner: Address) -> Result<u128> {
        Ok(u128::try_from(
            IAxsMock::new(self.axs, &self.funder).balanceOf(owner).call().await?,
        )?)
    }

    /// What `user` has staked in the pool, wei.
    pub async fn staked(&self, user: Address) -> Result<u128> {
        Ok(u128::try_from(
            IAxsPoolMock::new(self.pool, &self.funder)
                .getStakingAmount(user)
                .call()
                .await?,
        )?)
    }

    /// The treasury's AXS allowance to the pool, wei (each delegation approves exactly its
    /// amount, and the stake spends it).
    pub async fn treasury_allowance(&self) -> Result<u128> {
        Ok(u128::try_from(
            IAxsMock::new(self.axs, &self.funder)
                .allowance(self.treasury, self.pool)
                .call()
                .await?,
        )?)
    }
}

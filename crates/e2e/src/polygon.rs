//! A local Ethereum with Polygon PoS staking: anvil (`--chain-id 1`) with our StakeManager
//! stand-in (`contracts/evm/polygon/StakeManager.sol`: StakeManager, ValidatorShare,
//! StakingInfo, EventsHub and the POL token with EIP-2612 permit).
//!
//! ```text
//!  start_polygon()  anvil --chain-id 1 --disable-code-size-limit
//!                   deploy StakeManager (it deploys POL, StakingInfo, EventsHub)
//!                   POL minted to the funder and the treasury
//!                   createValidator(self-stake, commission %, signer) × 3 → ids 8, 9, 10
//!                   Multicall3 stand-in at 0xcA11bde0…CA11 (the adapter batches its reads)
//!  checkpoint()     RootChain.submitCheckpoint(data, sigs) signed by the chosen
//!                   validators' signer keys (keccak256 of "polygon validator signer <id>")
//! ```

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use alloy::sol_types::SolValue;
use anyhow::{Context, Result};

use crate::evm::{compile, contracts_dir, start_anvil, LocalEvm};

alloy::sol! {
    /// The stand-in's test-only entry points and the reads the tests make.
    #[sol(rpc)]
    interface IStakeManagerMock {
        function token() external view returns (address);
        function createValidator(uint256 selfStake, uint256 commissionRate, address signer) external returns (uint256);
        function rootChain() external view returns (address);
        function epoch() external view returns (uint256);
        function distributeRewards(uint256 validatorId, uint256 amount) external;
        function advanceEpoch(uint256 n) external;
        function slash(uint256 validatorId, uint256 amount) external;
        function NFTCounter() external view returns (uint256);
        function validators(uint256 validatorId) external view returns (uint256 amount, uint256 reward, uint256 activationEpoch, uint256 deactivationEpoch, uint256 jailTime, address signer, address contractAddress, uint8 status, uint256 commissionRate, uint256 lastCommissionUpdate, uint256 delegatorsReward, uint256 delegatedAmount, uint256 initialRewardPerStake);
    }

    /// The RootChain's checkpoint submission.
    #[sol(rpc)]
    interface IRootChainMock {
        function submitCheckpoint(bytes calldata data, uint256[3][] calldata sigs) external;
    }

    /// The POL token's test-only mint and ERC-20 calls.
    #[sol(rpc)]
    interface IPolMock {
        function mint(address to, uint256 amount) external;
        function approve(address spender, uint256 value) external returns (bool);
        function balanceOf(address owner) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
    }
}

/// 1 POL in wei.
pub const POL_WEI: u128 = 1_000_000_000_000_000_000;

/// Validators the local chain starts with: (self-stake POL, commission %).
pub const POLYGON_VALIDATORS: [(u128, u64); 3] = [(2_000_000, 10), (1_000_000, 5), (500_000, 0)];

/// POL minted to the treasury at start.
pub const TREASURY_POL: u128 = 100_000;

/// anvil running the Polygon staking stand-in.
pub struct LocalPolygon {
    /// The node and its accounts.
    pub evm: LocalEvm,
    /// The StakeManager.
    pub stake_manager: Address,
    /// The POL token.
    pub pol: Address,
    /// Validator ids of [`POLYGON_VALIDATORS`], in order.
    pub validators: Vec<u64>,
}

impl std::ops::Deref for LocalPolygon {
    type Target = LocalEvm;
    fn deref(&self) -> &LocalEvm {
        &self.evm
    }
}

impl std::fmt::Debug for LocalPolygon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPolygon").field("url", &self.url).finish()
    }
}

/// Starts anvil (`--chain-id 1`; `port` 0 = any free port) with the StakeManager stand-in
/// and three validators; the treasury holds [`TREASURY_POL`] POL and 1 000 ETH for gas.
pub async fn start_polygon(port: u16, block_time_secs: u64) -> Result<LocalPolygon> {
    let compiled = compile(&contracts_dir().join("polygon/StakeManager.sol"))?;
    let sm = compiled
        .get("StakeManager")
        .context("StakeManager not in the solc output")?;
    let evm = start_anvil(1, port, block_time_secs, 1_000, &["--disable-code-size-limit"])?;
    let stake_manager = evm.deploy(&sm.bin, &[]).await?;
    let mock = IStakeManagerMock::new(stake_manager, &evm.funder);
    let pol = mock.token().call().await?;
    let token = IPolMock::new(pol, &evm.funder);
    let funder = evm.anvil.addresses()[0];
    token
        .mint(funder, U256::from(100_000_000 * POL_WEI))
        .send()
        .await?
        .get_receipt()
        .await?;
    token
        .mint(evm.treasury, U256::from(TREASURY_POL * POL_WEI))
        .send()
        .await?
        .get_receipt()
        .await?;
    token
        .approve(stake_manager, U256::MAX)
        .send()
        .await?
        .get_receipt()
        .await?;
    let mut local = LocalPolygon {
        evm,
        stake_manager,
        pol,
        validators: Vec::new(),
    };
    for (self_stake, commission) in POLYGON_VALIDATORS {
        let id = local.add_validator(self_stake, commission).await?;
        local.validators.push(id);
    }
    local.evm.install_multicall3().await?;
    Ok(local)
}

/// Validator `id`'s checkpoint signer key: keccak256 of `"polygon validator signer {id}"`.
pub fn validator_signer(id: u64) -> Result<PrivateKeySigner> {
    Ok(PrivateKeySigner::from_bytes(&keccak256(format!(
        "polygon validator signer {id}"
    )))?)
}

impl LocalPolygon {
    /// Registers one more validator with `self_stake_pol` POL of self-stake and
    /// `commission` %, paid by the funder, its signer [`validator_signer`]; its id.
    pub async fn add_validator(&self, self_stake_pol: u128, commission: u64) -> Result<u64> {
        let mock = IStakeManagerMock::new(self.stake_manager, &self.evm.funder);
        let id = u64::try_from(mock.NFTCounter().call().await?)?;
        let signer = validator_signer(id)?.address();
        mock.createValidator(U256::from(self_stake_pol * POL_WEI), U256::from(commission), signer)
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(id)
    }

    /// Pays a checkpoint's reward of `wei` POL to validator `id`.
    pub async fn distribute_rewards(&self, id: u64, wei: u128) -> Result<()> {
        IStakeManagerMock::new(self.stake_manager, &self.funder)
            .distributeRewards(U256::from(id), U256::from(wei))
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(())
    }

    /// Submits one checkpoint to the RootChain signed by validators `signed_by` (their
    /// [`validator_signer`] keys, in ascending signer order as Heimdall sends them): one
    /// epoch. Reverts (an error) without more than 2/3 of the active stake.
    pub async fn checkpoint(&self, signed_by: &[u64]) -> Result<()> {
        let sm = IStakeManagerMock::new(self.stake_manager, &self.funder);
        let root = sm.rootChain().call().await?;
        let epoch: U256 = sm.epoch().call().await?;
        let start = epoch * U256::from(256u64);
        let data = (
            self.anvil.addresses()[0],
            start,
            start + U256::from(255u64),
            keccak256(start.to_be_bytes::<32>()),
            B256::ZERO,
            U256::from(137u64),
        )
            .abi_encode_params();
        let vote = keccak256([&[1u8][..], &data[..]].concat());
        let mut signers = signed_by
            .iter()
            .map(|id| validator_signer(*id))
            .collect::<Result<Vec<_>>>()?;
        signers.sort_by_key(|k| k.address());
        let mut sigs = Vec::with_capacity(signers.len());
        for k in signers {
            let sig = k.sign_hash_sync(&vote)?;
            sigs.push([sig.r(), sig.s(), U256::from(27u8 + u8::from(sig.v()))]);
        }
        let root = IRootChainMock::new(root, &self.funder);
        let call = root.submitCheckpoint(data.into(), sigs);
        // simulated first: a refused checkpoint is an error here, not a transaction
        call.call().await?;
        call.send().await?.get_receipt().await?;
        Ok(())
    }

    /// Moves the checkpoint epoch `n` forward.
    pub async fn advance_epoch(&self, n: u64) -> Result<()> {
        IStakeManagerMock::new(self.stake_manager, &self.funder)
            .advanceEpoch(U256::from(n))
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(())
    }

    /// Slashes `wei` from validator `id`'s stake (delegators' part pro rata).
    pub async fn slash(&self, id: u64, wei: u128) -> Result<()> {
        IStakeManagerMock::new(self.stake_manager, &self.funder)
            .slash(U256::from(id), U256::from(wei))
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(())
    }

    /// Validator `id`'s stake (self-stake plus delegations), wei.
    pub async fn validator_stake(&self, id: u64) -> Result<u128> {
        let v = IStakeManagerMock::new(self.stake_manager, &self.funder)
            .validators(U256::from(id))
            .call()
            .await?;
        Ok(u128::try_from(v.amount + v.delegatedAmount)?)
    }

    /// `owner`'s POL, wei.
    pub async fn pol_balance(&self, owner: Address) -> Result<u128> {
        Ok(u128::try_from(
            IPolMock::new(self.pol, &self.funder).balanceOf(owner).call().await?,
        )?)
    }

    /// The treasury's POL allowance to the StakeManager, wei (a permit sets it; the
    /// deposit spends it).
    pub async fn treasury_allowance(&self) -> Result<u128> {
        Ok(u128::try_from(
            IPolMock::new(self.pol, &self.funder)
                .allowance(self.treasury, self.stake_manager)
                .call()
                .await?,
        )?)
    }
}

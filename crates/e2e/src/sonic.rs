//! A local Sonic: anvil (`--chain-id 146`) with our SFC stand-in
//! (`contracts/evm/sonic/SFC.sol`) installed at 0xFC00FACE…, its ConstantsManager
//! deployed beside it, and three validators created with the real `createValidator`.
//!
//! ```text
//!  start_sonic()  anvil --chain-id 146 --balance 2000000
//!                 deploy ConstantsManager ─▶ deploy SFC(consts) ─▶ anvil_setCode(0xFC00FACE…)
//!                 createValidator(pubkey) × 3 from dev accounts 5..7 (self-stake ≥ minSelfStake)
//!                 sealEpoch([], [])  (epoch 1 sealed: the clock starts)
//! ```

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolValue;
use anyhow::{Context, Result};

use softstake_adapters::evm::sonic::SFC_ADDRESS;

use crate::evm::{compile, contracts_dir, start_anvil, LocalEvm};

alloy::sol! {
    /// The SFC stand-in's validator creation (real signature) and test-only entry points.
    #[sol(rpc)]
    interface ISfcMock {
        function createValidator(bytes pubkey) external payable;
        function sealEpoch(uint256[] validatorIDs, uint256[] rewards) external payable;
        function markCheater(uint256 validatorID, uint256 refundRatio) external;
        function getValidator(uint256 validatorID) external view returns (uint256 status, uint256 receivedStake, address auth, uint256 createdEpoch, uint256 createdTime, uint256 deactivatedTime, uint256 deactivatedEpoch);
    }
}

/// 1 S in wei.
pub const S_WEI: u128 = 1_000_000_000_000_000_000;

/// Validators the local chain starts with: self-stake in S (≥ the 500 000 S minimum).
pub const SONIC_SELF_STAKES: [u128; 3] = [600_000, 800_000, 1_000_000];

/// anvil running Sonic's SFC stand-in.
pub struct LocalSonic {
    /// The node and its accounts.
    pub evm: LocalEvm,
    /// Validator ids of [`SONIC_SELF_STAKES`], in order (1, 2, 3).
    pub validators: Vec<u64>,
    /// The ConstantsManager's address.
    pub consts: Address,
}

impl std::ops::Deref for LocalSonic {
    type Target = LocalEvm;
    fn deref(&self) -> &LocalEvm {
        &self.evm
    }
}

impl std::fmt::Debug for LocalSonic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSonic").field("url", &self.url).finish()
    }
}

/// Starts anvil (`--chain-id 146`; `port` 0 = any free port) with the SFC stand-in at
/// [`SFC_ADDRESS`] and three validators, epoch 1 sealed.
pub async fn start_sonic(port: u16, block_time_secs: u64) -> Result<LocalSonic> {
    let compiled = compile(&contracts_dir().join("sonic/SFC.sol"))?;
    let sfc = compiled.get("SFC").context("SFC not in the solc output")?;
    let consts_bin = compiled
        .get("ConstantsManager")
        .context("ConstantsManager not in the solc output")?;
    let evm = start_anvil(146, port, block_time_secs, 2_000_000, &[])?;
    let consts = evm.deploy(&consts_bin.bin, &[]).await?;
    evm.install_at(&sfc.bin, &consts.abi_encode(), SFC_ADDRESS).await?;
    let mut validators = Vec::new();
    for (i, stake) in SONIC_SELF_STAKES.iter().enumerate() {
        let auth = evm.account(5 + i)?;
        let mut pubkey = vec![0xc0u8];
        pubkey.extend([i as u8 + 1; 65]);
        ISfcMock::new(SFC_ADDRESS, &auth)
            .createValidator(Bytes::from(pubkey))
            .value(U256::from(stake * S_WEI))
            .send()
            .await?
            .get_receipt()
            .await?;
        validators.push(i as u64 + 1);
    }
    let chain = LocalSonic {
        evm,
        validators,
        consts,
    };
    chain.seal_epoch(&[]).await?;
    Ok(chain)
}

impl LocalSonic {
    /// Seals the current epoch, paying `(validator id, wei)` rewards (commission to the
    /// validator, the rest to its delegators pro rata).
    pub async fn seal_epoch(&self, rewards: &[(u64, u128)]) -> Result<()> {
        let ids: Vec<U256> = rewards.iter().map(|(id, _)| U256::from(*id)).collect();
        let amounts: Vec<U256> = rewards.iter().map(|(_, w)| U256::from(*w)).collect();
        let total: u128 = rewards.iter().map(|(_, w)| *w).sum();
        ISfcMock::new(SFC_ADDRESS, &self.funder)
            .sealEpoch(ids, amounts)
            .value(U256::from(total))
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(())
    }

    /// Marks validator `id` a double-signer refunding `refund_ratio` (1e18-scaled) of
    /// stake withdrawn from it.
    pub async fn mark_cheater(&self, id: u64, refund_ratio: u128) -> Result<()> {
        ISfcMock::new(SFC_ADDRESS, &self.funder)
            .markCheater(U256::from(id), U256::from(refund_ratio))
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(())
    }

    /// Validator `id`'s received stake, wei.
    pub async fn received_stake(&self, id: u64) -> Result<u128> {
        let v = ISfcMock::new(SFC_ADDRESS, &self.funder)
            .getValidator(U256::from(id))
            .call()
            .await?;
        Ok(u128::try_from(v.receivedStake)?)
    }
}

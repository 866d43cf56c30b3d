//! A local ApeChain: anvil (`--chain-id 33139`) with our ArbInfo stand-in
//! (`contracts/evm/apechain/ArbInfo.sol`) installed at the precompile address 0x…65, and
//! native yield simulated by the harness: [`LocalApeChain::rebase`] grows the balance of
//! every given account whose yield mode (read from ArbInfo) is automatic, with
//! `anvil_setBalance`, as ApeChain's rebasing grows it without a transaction.

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use anyhow::{Context, Result};

use softstake_adapters::evm::apechain::{IArbInfo, ARB_INFO, YIELD_AUTOMATIC};

use crate::evm::{compile, contracts_dir, start_anvil, LocalEvm};

/// anvil running the ArbInfo stand-in.
pub struct LocalApeChain {
    /// The node and its accounts.
    pub evm: LocalEvm,
}

impl std::ops::Deref for LocalApeChain {
    type Target = LocalEvm;
    fn deref(&self) -> &LocalEvm {
        &self.evm
    }
}

impl std::fmt::Debug for LocalApeChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalApeChain").field("url", &self.url).finish()
    }
}

/// Starts anvil (`--chain-id 33139`; `port` 0 = any free port) with ArbInfo at 0x…65;
/// every dev account holds `balance_ape` APE.
pub async fn start_apechain(port: u16, block_time_secs: u64, balance_ape: u64) -> Result<LocalApeChain> {
    let compiled = compile(&contracts_dir().join("apechain/ArbInfo.sol"))?;
    let info = compiled.get("ArbInfo").context("ArbInfo not in the solc output")?;
    let evm = start_anvil(33139, port, block_time_secs, balance_ape, &[])?;
    evm.install_at(&info.bin, &[], ARB_INFO).await?;
    Ok(LocalApeChain { evm })
}

impl LocalApeChain {
    /// `account`'s yield mode (0 automatic, 1 void, 2 delegate).
    pub async fn yield_mode(&self, account: Address) -> Result<u8> {
        Ok(IArbInfo::new(ARB_INFO, &self.funder)
            .getYieldConfiguration(account)
            .call()
            .await?)
    }

    /// One rebase: each of `accounts` in automatic mode grows by `numerator /
    /// denominator` of its balance (rounded down); returns what each gained, wei, in order.
    pub async fn rebase(&self, accounts: &[Address], numerator: u128, denominator: u128) -> Result<Vec<u128>> {
        let mut out = Vec::with_capacity(accounts.len());
        for a in accounts {
            if self.yield_mode(*a).await? != YIELD_AUTOMATIC {
                out.push(0);
                continue;
            }
            let b = self.funder.get_balance(*a).await?;
            let gain = b * U256::from(numerator) / U256::from(denominator.max(1));
            let _: () = self
                .funder
                .raw_request("anvil_setBalance".into(), (*a, b + gain))
                .await?;
            out.push(u128::try_from(gain)?);
        }
        self.mine(1).await?;
        Ok(out)
    }

    /// Sets `account`'s balance, wei (`anvil_setBalance`).
    pub async fn set_balance(&self, account: Address, wei: u128) -> Result<()> {
        let _: () = self
            .funder
            .raw_request("anvil_setBalance".into(), (account, U256::from(wei)))
            .await?;
        Ok(())
    }
}

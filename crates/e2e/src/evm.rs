//! A real EVM node (anvil, npm `@foundry-rs/anvil-linux-amd64`) with our Solidity
//! stand-ins of the staking contracts (`contracts/evm`), compiled by npm `solc`.
//!
//! ```text
//!  start_bsc()  anvil --chain-id 56 --block-time 1 --balance 100000
//!               solcjs contracts/evm/bsc/StakeHub.sol ─▶ deploy ─▶ eth_getCode
//!               ─▶ anvil_setCode(0x…2002)   (the hub keeps no constructor state)
//!               addValidator × 3 (self-delegation from the funder account)
//! ```
//!
//! Paths come from `SOFTSTAKE_ANVIL` / `SOFTSTAKE_SOLCJS` (set by `scripts/env.sh`), else
//! the cache `scripts/setup.sh` installs into.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, Bytes, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{bail, Context, Result};

use softstake_adapters::evm::bsc::{STAKE_HUB, VALIDATOR_SET};

alloy::sol! {
    /// The test-only functions of our StakeHub stand-in (`contracts/evm/bsc/StakeHub.sol`).
    #[sol(rpc)]
    interface IStakeHubMock {
        function addValidator(address operatorAddress, uint64 commissionRate, string moniker) external payable;
        function distributeReward(address consensusAddress) external payable;
        function slash(address operatorAddress, uint256 amount) external;
        function getValidatorCreditContract(address operatorAddress) external view returns (address);
    }

    /// The test-only setter of our BSCValidatorSet stand-in.
    #[sol(rpc)]
    interface IValidatorSetMock {
        function setValidators(address[] consensusAddrs) external;
    }

    /// StakeCredit views the tests read.
    #[sol(rpc)]
    interface IStakeCreditView {
        function totalPooledBNB() external view returns (uint256);
        function getPooledBNB(address account) external view returns (uint256);
    }
}

/// 1 BNB in wei.
pub const BNB_WEI: u128 = 1_000_000_000_000_000_000;

/// Validators the local chain starts with: (moniker, commission bps, self-delegation BNB).
pub const BSC_VALIDATORS: [(&str, u64, u128); 3] = [
    ("Legend", 500, 20_000),
    ("Ankr", 1_000, 12_000),
    ("TW Staking", 200, 8_000),
];

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/softstake/npm")
}

/// The anvil binary.
pub fn anvil_path() -> Result<PathBuf> {
    let p = std::env::var_os("SOFTSTAKE_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"));
    if !p.is_file() {
        bail!(
            "anvil not found at {} (run scripts/setup.sh: it installs npm @foundry-rs/anvil-linux-amd64)",
            p.display()
        );
    }
    Ok(p)
}

/// The solc-js compiler.
pub fn solcjs_path() -> Result<PathBuf> {
    let p = std::env::var_os("SOFTSTAKE_SOLCJS")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("node_modules/.bin/solcjs"));
    if !p.is_file() {
        bail!(
            "solcjs not found at {} (run scripts/setup.sh: it installs npm solc)",
            p.display()
        );
    }
    Ok(p)
}

/// The project's `contracts/evm` folder.
pub fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/evm")
}

/// Adapter settings for a local anvil at `url`: chain id `chain_id`, `confirmations`
/// blocks, fee caps of 100 gwei (tip 2 gwei), accounting from block 0.
pub fn evm_config(url: &str, chain_id: u64, confirmations: u64) -> softstake_adapters::evm::EvmConfig {
    softstake_adapters::evm::EvmConfig {
        rpc_url: url.to_string(),
        chain_id,
        confirmations,
        max_fee_per_gas_wei: 100_000_000_000,
        max_priority_fee_per_gas_wei: 2_000_000_000,
        max_operations_per_epoch: 32,
        start_block: 0,
        log_range_blocks: softstake_adapters::evm::LOG_CHUNK_BLOCKS,
    }
}

/// How the EVM tests run one operation: poll every 250 ms, at most 60 times, 3 attempts.
pub fn exec_config() -> softstake_node::treasury::executor::ExecConfig {
    softstake_node::treasury::executor::ExecConfig {
        max_polls: 60,
        poll_interval: std::time::Duration::from_millis(250),
        max_attempts: 3,
        drill: None,
    }
}

/// One compiled contract.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Creation bytecode.
    pub bin: Vec<u8>,
    /// JSON ABI.
    pub abi: serde_json::Value,
}

impl Compiled {
    /// keccak-256 of each ABI entry of `kind` (`function`, `event`) by its canonical
    /// signature: a function's selector is the first 4 bytes, an event's topic 0 all 32.
    ///
    /// # Panics
    /// On an ABI entry without a name or input types (solc never writes one).
    pub fn signature_hashes(&self, kind: &str) -> Vec<[u8; 32]> {
        let signature = |e: &serde_json::Value| {
            let types: Vec<&str> = e["inputs"]
                .as_array()
                .expect("ABI inputs")
                .iter()
                .map(|i| i["type"].as_str().expect("ABI input type"))
                .collect();
            format!("{}({})", e["name"].as_str().expect("ABI name"), types.join(","))
        };
        self.abi
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| alloy::primitives::keccak256(signature(e)).0)
            .collect()
    }

    /// Whether the contract has a function with each of `selectors`; the missing ones.
    pub fn missing_functions(&self, selectors: impl IntoIterator<Item = [u8; 4]>) -> Vec<[u8; 4]> {
        let have = self.signature_hashes("function");
        selectors
            .into_iter()
            .filter(|sel| !have.iter().any(|h| h[..4] == *sel))
            .collect()
    }
}

/// Compiles `source` (a path under [`contracts_dir`]) with solc-js, optimized; contracts by name.
pub fn compile(source: &Path) -> Result<BTreeMap<String, Compiled>> {
    let out = tempfile::tempdir()?;
    let dir = source.parent().context("source has no folder")?;
    let file = source.file_name().context("source has no file name")?;
    let status = Command::new(solcjs_path()?)
        .current_dir(dir)
        .args(["--bin", "--abi", "--optimize", "-o"])
        .arg(out.path())
        .arg(file)
        .output()
        .context("running solcjs")?;
    if !status.status.success() {
        bail!(
            "solcjs failed on {}: {}",
            source.display(),
            String::from_utf8_lossy(&status.stderr)
        );
    }
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(out.path())? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Some(stem) = name.strip_suffix(".bin") else {
            continue;
        };
        let contract = stem.rsplit('_').next().unwrap_or(stem).to_string();
        let bin = alloy::hex::decode(std::fs::read_to_string(&path)?.trim())?;
        let abi: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.path().join(format!("{stem}.abi")))?)?;
        found.insert(contract, Compiled { bin, abi });
    }
    Ok(found)
}

/// A running anvil with the funder and treasury accounts every local chain uses.
pub struct LocalEvm {
    /// The node (killed on drop).
    pub anvil: AnvilInstance,
    /// Its JSON-RPC URL.
    pub url: String,
    /// A provider signing as the funder (anvil's first dev account: deployments,
    /// validators' self-stake, rewards).
    pub funder: DynProvider,
    /// The treasury's 32-byte key (anvil's second dev account).
    pub treasury_key: [u8; 32],
    /// The treasury's address.
    pub treasury: Address,
}

impl std::fmt::Debug for LocalEvm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEvm").field("url", &self.url).finish()
    }
}

/// Starts anvil with `chain_id`, one block per `block_time_secs`, `balance_eth` whole
/// coins on each dev account (`port` 0 = any free port), and `extra` arguments.
pub fn start_anvil(
    chain_id: u64,
    port: u16,
    block_time_secs: u64,
    balance_eth: u64,
    extra: &[&str],
) -> Result<LocalEvm> {
    let mut builder = Anvil::at(anvil_path()?)
        .chain_id(chain_id)
        .block_time(block_time_secs)
        .args(["--balance".to_string(), balance_eth.to_string()])
        .args(extra.iter().map(|a| a.to_string()));
    if port != 0 {
        builder = builder.port(port);
    }
    let anvil = builder.try_spawn().context("starting anvil")?;
    let url = anvil.endpoint();
    let treasury_signer = PrivateKeySigner::from(anvil.keys()[1].clone());
    let treasury = treasury_signer.address();
    let treasury_key: [u8; 32] = treasury_signer.to_bytes().into();
    let funder = dev_account(&anvil, &url, 0)?;
    Ok(LocalEvm {
        anvil,
        url,
        funder,
        treasury_key,
        treasury,
    })
}

impl LocalEvm {
    /// Deploys creation code `bin` followed by ABI-encoded constructor `args`; its address.
    pub async fn deploy(&self, bin: &[u8], args: &[u8]) -> Result<Address> {
        let code = [bin, args].concat();
        let deploy = TransactionRequest::default().with_deploy_code(Bytes::from(code));
        let receipt = self.funder.send_transaction(deploy).await?.get_receipt().await?;
        receipt.contract_address.context("deployment has no address")
    }

    /// Deploys `bin` (+ `args`), then moves its runtime code to the system address `at`
    /// (`anvil_setCode`; storage written by the constructor stays behind, immutables move).
    pub async fn install_at(&self, bin: &[u8], args: &[u8], at: Address) -> Result<()> {
        let deployed = self.deploy(bin, args).await?;
        let code = self.funder.get_code_at(deployed).await?;
        let _: () = self.funder.raw_request("anvil_setCode".into(), (at, code)).await?;
        Ok(())
    }

    /// Moves chain time forward (`evm_increaseTime`) and mines a block.
    pub async fn increase_time(&self, secs: u64) -> Result<()> {
        let _: serde_json::Value = self.funder.raw_request("evm_increaseTime".into(), (secs,)).await?;
        let _: serde_json::Value = self.funder.raw_request("evm_mine".into(), ()).await?;
        Ok(())
    }

    /// Mines `n` blocks at once (`anvil_mine`).
    pub async fn mine(&self, n: u64) -> Result<()> {
        let _: serde_json::Value = self.funder.raw_request("anvil_mine".into(), (n,)).await?;
        Ok(())
    }

    /// Installs our Multicall3 stand-in (`contracts/evm/multicall/Multicall3.sol`) at the
    /// canonical address every EVM network has it at (anvil does not predeploy it).
    pub async fn install_multicall3(&self) -> Result<()> {
        let compiled = compile(&contracts_dir().join("multicall/Multicall3.sol"))?;
        let m = compiled
            .get("Multicall3")
            .context("Multicall3 not in the solc output")?;
        self.install_at(&m.bin, &[], alloy::providers::MULTICALL3_ADDRESS).await
    }

    /// Replaces the last `depth` blocks with as many empty ones (`anvil_reorg`): their
    /// transactions are dropped, as on a chain that reorganised (new block hashes at the
    /// same heights).
    pub async fn reorg(&self, depth: u64) -> Result<()> {
        let _: serde_json::Value = self
            .funder
            .raw_request("anvil_reorg".into(), (depth, Vec::<serde_json::Value>::new()))
            .await?;
        Ok(())
    }

    /// Removes the last `depth` blocks (`anvil_rollback`), dropping their transactions;
    /// the next blocks are mined on the block before them.
    pub async fn rollback(&self, depth: u64) -> Result<()> {
        let _: serde_json::Value = self.funder.raw_request("anvil_rollback".into(), (depth,)).await?;
        Ok(())
    }

    /// Sets `address`'s balance to `wei` (`anvil_setBalance`): funds a treasury whose key
    /// was generated elsewhere (in an HSM).
    pub async fn set_balance(&self, address: Address, wei: u128) -> Result<()> {
        let _: serde_json::Value = self
            .funder
            .raw_request("anvil_setBalance".into(), (address, U256::from(wei)))
            .await?;
        Ok(())
    }

    /// The treasury's balance, wei.
    pub async fn treasury_balance(&self) -> Result<u128> {
        Ok(u128::try_from(self.funder.get_balance(self.treasury).await?)?)
    }

    /// A signing provider for dev account `i` (the validators' own accounts).
    pub fn account(&self, i: usize) -> Result<DynProvider> {
        dev_account(&self.anvil, &self.url, i)
    }
}

/// A provider at `url` signing as `anvil`'s dev account `i`.
fn dev_account(anvil: &AnvilInstance, url: &str, i: usize) -> Result<DynProvider> {
    let key = PrivateKeySigner::from(anvil.keys()[i].clone());
    Ok(ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(url.parse()?)
        .erased())
}

/// anvil running BSC's StakeHub stand-in.
pub struct LocalBsc {
    /// The node and its accounts.
    pub evm: LocalEvm,
    /// Operator addresses of [`BSC_VALIDATORS`], in order.
    pub validators: Vec<Address>,
}

impl std::ops::Deref for LocalBsc {
    type Target = LocalEvm;
    fn deref(&self) -> &LocalEvm {
        &self.evm
    }
}

impl std::fmt::Debug for LocalBsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBsc").field("url", &self.url).finish()
    }
}

/// Starts anvil (`--chain-id 56`, one block per `block_time_secs`; `port` 0 = any free
/// port) and installs the StakeHub stand-in at 0x…2002 with [`BSC_VALIDATORS`].
pub async fn start_bsc(port: u16, block_time_secs: u64) -> Result<LocalBsc> {
    let compiled = compile(&contracts_dir().join("bsc/StakeHub.sol"))?;
    let hub = compiled.get("StakeHub").context("StakeHub not in the solc output")?;
    let set = compiled
        .get("BSCValidatorSet")
        .context("BSCValidatorSet not in the solc output")?;
    let evm = start_anvil(56, port, block_time_secs, 100_000, &[])?;
    // the hub and the validator set keep no constructor state
    evm.install_at(&hub.bin, &[], STAKE_HUB).await?;
    evm.install_at(&set.bin, &[], VALIDATOR_SET).await?;
    let mock = IStakeHubMock::new(STAKE_HUB, &evm.funder);
    let mut validators = Vec::new();
    for (i, (name, rate, self_bnb)) in BSC_VALIDATORS.iter().enumerate() {
        let operator = evm.anvil.addresses()[5 + i];
        mock.addValidator(operator, *rate, (*name).to_string())
            .value(U256::from(self_bnb * BNB_WEI))
            .send()
            .await?
            .get_receipt()
            .await?;
        validators.push(operator);
    }
    evm.install_multicall3().await?;
    let bsc = LocalBsc { evm, validators };
    // every validator elected (consensus address = operator in the stand-in)
    bsc.elect(&bsc.validators.clone()).await?;
    Ok(bsc)
}

impl LocalBsc {
    /// Elects `operators` (the breathe block's choice): the others stay registered
    /// candidates outside the elected set.
    pub async fn elect(&self, operators: &[Address]) -> Result<()> {
        IValidatorSetMock::new(VALIDATOR_SET, &self.funder)
            .setValidators(operators.to_vec())
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(())
    }

    /// Pays `wei` of reward to `operator`'s pool (as the validator set contract would).
    pub async fn distribute_reward(&self, operator: Address, wei: u128) -> Result<()> {
        IStakeHubMock::new(STAKE_HUB, &self.funder)
            .distributeReward(operator)
            .value(U256::from(wei))
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(())
    }

    /// Slashes `wei` from `operator`'s pool.
    pub async fn slash(&self, operator: Address, wei: u128) -> Result<()> {
        IStakeHubMock::new(STAKE_HUB, &self.funder)
            .slash(operator, U256::from(wei))
            .send()
            .await?
            .get_receipt()
            .await?;
        Ok(())
    }

    /// The whole pool of `operator`, wei.
    pub async fn total_pooled(&self, operator: Address) -> Result<u128> {
        let credit = IStakeHubMock::new(STAKE_HUB, &self.funder)
            .getValidatorCreditContract(operator)
            .call()
            .await?;
        let v = IStakeCreditView::new(credit, &self.funder)
            .totalPooledBNB()
            .call()
            .await?;
        Ok(u128::try_from(v)?)
    }
}

/// A TCP proxy in front of a JSON-RPC node that counts the requests of one method
/// clients send through it (the text `"method":"eth_call"`, as alloy serialises it), to
/// measure an adapter's fan-out; stopped when dropped.
#[derive(Debug)]
pub struct EthCallCounter {
    /// The proxy's URL, to give the adapter instead of the node's.
    pub url: String,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for EthCallCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EthCallCounter {
    /// `eth_call`s since the last [`EthCallCounter::take`], and restarts the count.
    pub fn take(&self) -> u64 {
        self.count.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

/// Starts an [`EthCallCounter`] in front of `upstream` (`http://host:port`).
///
/// # Errors
/// A URL without host and port, or no port to bind.
pub async fn count_eth_calls(upstream: &str) -> Result<EthCallCounter> {
    count_requests(upstream, Some("eth_call")).await
}

/// An [`EthCallCounter`] that counts the requests of `method`, or every request (each
/// carries `"method":"`) when `None`.
///
/// # Errors
/// As [`count_eth_calls`].
pub async fn count_requests(upstream: &str, method: Option<&str>) -> Result<EthCallCounter> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pattern: Vec<u8> = match method {
        Some(m) => format!(r#""method":"{m}""#).into_bytes(),
        None => br#""method":""#.to_vec(),
    };
    let target = upstream.trim_start_matches("http://").trim_end_matches('/').to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let count = std::sync::Arc::new(AtomicU64::new(0));
    let counted = count.clone();
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(node) = tokio::net::TcpStream::connect(&target).await else {
                continue;
            };
            let counted = counted.clone();
            let pattern = pattern.clone();
            tokio::spawn(async move {
                let (mut from_client, mut to_client) = client.into_split();
                let (mut from_node, mut to_node) = node.into_split();
                let back = tokio::spawn(async move { tokio::io::copy(&mut from_node, &mut to_client).await });
                let mut buf = vec![0u8; 64 * 1024];
                // the end of the previous chunk: a pattern may straddle two reads
                let mut tail: Vec<u8> = Vec::new();
                while let Ok(n) = from_client.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    // counted before it is forwarded: the node cannot answer a request (and
                    // the caller go on) before the request is counted
                    tail.extend_from_slice(&buf[..n]);
                    let found = tail.windows(pattern.len()).filter(|w| *w == pattern.as_slice()).count();
                    counted.fetch_add(found as u64, Ordering::SeqCst);
                    let keep = tail.len().min(pattern.len() - 1);
                    tail.drain(..tail.len() - keep);
                    if to_node.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                back.abort();
            });
        }
    });
    Ok(EthCallCounter { url, count, task })
}

//! Building each token's chain adapter from the network config.
//!
//! `adapter = "sim"` builds the simulated chain with the token's liquidity model (from
//! `tokens.toml` and the chain family's rules below). From the CLI its state is kept in
//! `<data_dir>/sim/<TOKEN>.json` between commands and its clock follows the wall clock;
//! the demo and the tests drive it by hand. Every adapter is wrapped in
//! [`Guarded`] (rate limit from `rate_limit_per_sec`, retries, tracing).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use sha2::{Digest, Sha256};

use softstake_adapters::guard::{CallObserver, GuardConfig, Guarded};
use softstake_adapters::sim::{FaultConfig, RewardSeries, SimAdapter, SimChain, SimConfig, ValidatorSet};
use softstake_adapters::traits::LiquidityModel;
use softstake_adapters::{ChainAdapter, KeySource, SecretBytes, TreasuryKey};
use softstake_core::{Amount, Timestamp, TokenConfig};

use crate::config::{ChainConfig, NetworkConfig};
use crate::treasury::executor::ExecConfig;

pub use softstake_orchestrator::chains::{ChainHandle, Chains};

/// Genesis of the CLI's simulated chains (epochs count from here).
pub const SIM_GENESIS_UNIX_SECS: i64 = 1_735_689_600; // 2025-01-01T00:00:00Z

fn exec_config(chain: &ChainConfig, sim: bool) -> ExecConfig {
    ExecConfig {
        max_polls: chain.confirm_max_polls.max(1),
        poll_interval: std::time::Duration::from_millis(chain.confirm_poll_interval_ms.unwrap_or(if sim {
            0
        } else {
            1_000
        })),
        ..ExecConfig::default()
    }
}

/// Whether unbonding completes at an epoch boundary on this chain family.
fn epoch_aligned(chain: &str) -> bool {
    matches!(
        chain,
        "solana" | "near" | "sui" | "iota" | "ton" | "multiversx" | "polkadot" | "tezos" | "aptos" | "cardano"
    )
}

/// The liquidity model a simulated chain of this token enforces: the token's numbers
/// from `tokens.toml` plus the chain family's rules (shared/notes/chain-crates.md).
pub fn sim_model(t: &TokenConfig) -> LiquidityModel {
    let claim = matches!(
        t.chain.as_str(),
        "tron" | "cosmos" | "multiversx" | "polkadot" | "ronin" | "sonic" | "cardano"
    ) || t.symbol == "POL";
    LiquidityModel {
        unbonding_period_secs: t.unbonding_period_secs,
        epoch_secs: t.epoch_secs,
        epoch_aligned: epoch_aligned(&t.chain) && t.epoch_secs > 0,
        activation_epochs: match t.chain.as_str() {
            _ if t.epoch_secs == 0 => 0,
            "cardano" => 2,
            _ => 1,
        },
        min_delegation: t.min_delegation,
        rewards_auto_compound: !claim,
        claim_cadence_secs: if t.chain == "tron" { 86_400 } else { 0 },
        claim_all_validators: t.chain == "tron",
        max_operations_per_epoch: 32,
        instant_exit: false,
        earns_in_custody: false,
        // TRON votes are whole TRX
        stake_unit: if t.chain == "tron" {
            Amount(10u128.pow(u32::from(t.decimals)))
        } else {
            Amount(1)
        },
        whole_position_exits: false,
    }
}

/// The devnet key of a simulated chain when none is configured: derived from the token
/// so every run agrees. Devnet only; a real chain needs `signer = "env:…"|"file:…"`.
fn devnet_key(token: &str) -> SecretBytes {
    SecretBytes::new(Sha256::digest(format!("softstake devnet sim key {token}")).to_vec())
}

/// The treasury key of a real chain from its `signer` source: `env:VAR` / `file:PATH`
/// (raw key bytes), or `pkcs11:token=…;object=…` (a key pair in the `[pkcs11]` module's
/// token, the PIN from its environment variable).
///
/// # Errors
/// A malformed or unloadable source; a `pkcs11:` source without `[pkcs11]`, or in a build
/// without the `pkcs11` feature.
#[cfg_attr(not(feature = "pkcs11"), allow(unused_variables))]
pub fn treasury_key(pkcs11: Option<&crate::config::Pkcs11Config>, symbol: &str, source: &str) -> Result<TreasuryKey> {
    if source.starts_with("pkcs11:") {
        #[cfg(feature = "pkcs11")]
        {
            use softstake_adapters::pkcs11::{HsmKey, Pkcs11Uri};
            let settings = pkcs11
                .ok_or_else(|| {
                    anyhow!("chains.{symbol}.signer is a PKCS#11 key: configure [pkcs11] module (and pin_env)")
                })?
                .settings();
            let uri = Pkcs11Uri::parse(source).with_context(|| format!("chains.{symbol}.signer"))?;
            let key = HsmKey::open(&settings, &uri).with_context(|| format!("chains.{symbol}.signer"))?;
            return Ok(TreasuryKey::Hsm(key));
        }
        #[cfg(not(feature = "pkcs11"))]
        bail!("chains.{symbol}.signer is a PKCS#11 key, but this build has no PKCS#11 support (cargo feature pkcs11)");
    }
    Ok(TreasuryKey::Raw(KeySource::parse(source)?.load()?))
}

/// The Cardano adapter for `key`: a raw seed (stake keys derived from it), or a PKCS#11
/// payment key whose stake keys are opened from the same token under
/// `<label>-stake-<i>` (`softstake keys generate --chain cardano` made them).
#[cfg(feature = "cardano")]
#[cfg_attr(not(feature = "pkcs11"), allow(unused_variables))]
fn cardano_adapter(
    pkcs11: Option<&crate::config::Pkcs11Config>,
    cfg: softstake_adapters::cardano::CardanoConfig,
    key: TreasuryKey,
) -> Result<softstake_adapters::cardano::CardanoAdapter> {
    use softstake_adapters::cardano::CardanoAdapter;
    match key {
        #[cfg(feature = "pkcs11")]
        TreasuryKey::Hsm(payment) => {
            use softstake_adapters::pkcs11::{cardano_stake_key_label, HsmKey, Pkcs11Uri};
            let settings = pkcs11
                .ok_or_else(|| anyhow!("a PKCS#11 signer needs [pkcs11]"))?
                .settings();
            let stake = (0..cfg.stake_keys.min(100))
                .map(|i| {
                    let uri = Pkcs11Uri {
                        token: payment.uri().token.clone(),
                        object: cardano_stake_key_label(&payment.uri().object, i),
                    };
                    HsmKey::open(&settings, &uri).with_context(|| {
                        format!(
                            "stake key {i}: generate the payment key with its stake keys \
                             (softstake keys generate --chain cardano --stake-keys {})",
                            cfg.stake_keys
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(CardanoAdapter::with_hsm_keys(cfg, payment, stake)?)
        }
        raw => Ok(CardanoAdapter::new(cfg, raw)?),
    }
}

fn key_for(token: &str, chain: &ChainConfig) -> Result<SecretBytes> {
    match &chain.signer {
        Some(src) => Ok(KeySource::parse(src)?.load()?),
        None => Ok(devnet_key(token)),
    }
}

/// A real chain's handle: the adapter guarded with the endpoint's rate limit.
#[cfg(any(
    feature = "solana",
    feature = "evm",
    feature = "near",
    feature = "tron",
    feature = "cosmos",
    feature = "cardano",
    feature = "sui",
    feature = "aptos",
    feature = "iota",
    feature = "multiversx",
    feature = "algorand",
    feature = "ton"
))]
fn real_handle<A: ChainAdapter + 'static>(
    adapter: A,
    chain: &ChainConfig,
    observer: &Option<Arc<dyn CallObserver>>,
) -> ChainHandle {
    ChainHandle {
        adapter: Arc::new(Guarded::new(adapter, guard_config(chain, false), observer.clone())),
        sim: None,
        exec: exec_config(chain, false),
    }
}

/// The EVM adapters this build has: (`adapter` name, the token it stakes).
pub const EVM_ADAPTERS: [(&str, &str); 5] = [
    ("bsc", "BNB"),
    ("sonic", "S"),
    ("polygon", "POL"),
    ("ronin", "AXS"),
    ("apechain", "APE"),
];

/// The settings, key and staking contract of an EVM adapter `name` from `[chains.X]` and
/// `[chains.X.evm]` (`default_contract`: the chain's system address).
#[cfg(feature = "evm")]
fn evm_parts(
    cfg: &NetworkConfig,
    symbol: &str,
    name: &str,
    chain: &ChainConfig,
    default_contract: softstake_adapters::evm::Address,
) -> Result<(
    softstake_adapters::evm::EvmConfig,
    TreasuryKey,
    softstake_adapters::evm::Address,
)> {
    use softstake_adapters::evm::EvmConfig;
    let token = EVM_ADAPTERS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| anyhow!("{name} is not an EVM adapter"))?;
    let evm = chain
        .evm
        .as_ref()
        .ok_or_else(|| anyhow!("chains.{symbol}.evm is required for the {name} adapter (chain_id at least)"))?;
    let (rpc_url, key) = endpoint_and_key(cfg, symbol, name, token, chain)?;
    let contract = match &evm.staking_contract {
        Some(source) => {
            // `env:VAR`: the address is in the environment (a testnet pool of your own)
            let a = match source.strip_prefix("env:") {
                Some(var) => {
                    std::env::var(var).map_err(|_| anyhow!("chains.{symbol}.evm.staking_contract: {var} is not set"))?
                }
                None => source.clone(),
            };
            a.trim()
                .parse()
                .map_err(|_| anyhow!("chains.{symbol}.evm.staking_contract: {a:?} is not an address"))?
        }
        None => default_contract,
    };
    let evm_cfg = EvmConfig {
        rpc_url,
        chain_id: evm.chain_id,
        confirmations: evm.confirmations,
        max_fee_per_gas_wei: u128::from(evm.max_fee_per_gas_wei),
        max_priority_fee_per_gas_wei: u128::from(evm.max_priority_fee_per_gas_wei),
        max_operations_per_epoch: 32,
        start_block: match &evm.start_block {
            Some(b) => b.resolve(symbol).map_err(|e| anyhow!(e))?,
            None => 0,
        },
        log_range_blocks: evm.log_range_blocks,
    };
    Ok((evm_cfg, key, contract))
}

/// What every real adapter needs: `symbol` is the adapter's `token`, and the chain's RPC
/// endpoint and signing key (loaded from its `env:`/`file:` source).
#[cfg(any(
    feature = "evm",
    feature = "near",
    feature = "tron",
    feature = "cosmos",
    feature = "cardano",
    feature = "sui",
    feature = "aptos",
    feature = "iota",
    feature = "multiversx",
    feature = "algorand",
    feature = "ton"
))]
fn endpoint_and_key(
    cfg: &NetworkConfig,
    symbol: &str,
    name: &str,
    token: &str,
    chain: &ChainConfig,
) -> Result<(String, TreasuryKey)> {
    if symbol != token {
        bail!("chains.{symbol}.adapter = \"{name}\" stakes {token} only");
    }
    let rpc_url = chain
        .rpc_url
        .clone()
        .ok_or_else(|| anyhow!("chains.{symbol}.rpc_url is required for the {name} adapter"))?;
    let source = chain.signer.as_deref().ok_or_else(|| {
        anyhow!("chains.{symbol}.signer is required for the {name} adapter (env:VAR, file:PATH or pkcs11:URI)")
    })?;
    Ok((rpc_url, treasury_key(cfg.pkcs11.as_ref(), symbol, source)?))
}

/// A list of addresses in `[chains.X.<field>]` (Algorand's staking accounts, TON's pools):
/// each entry an address, or `env:VAR` naming a variable holding comma-separated addresses
/// (a testnet's accounts of your own).
///
/// # Errors
/// An `env:` variable that is not set or holds no address.
#[cfg(any(feature = "algorand", feature = "ton"))]
fn address_list(symbol: &str, field: &str, entries: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in entries {
        match e.strip_prefix("env:") {
            Some(var) => {
                let v = std::env::var(var)
                    .map_err(|_| anyhow!("chains.{symbol}.{field}: {var} is not set (comma-separated addresses)"))?;
                let before = out.len();
                out.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_string),
                );
                if out.len() == before {
                    bail!("chains.{symbol}.{field}: {var} holds no address");
                }
            }
            None => out.push(e.clone()),
        }
    }
    Ok(out)
}

/// The simulated chain and its treasury's adapter for `symbol` from its `[chains.X]`
/// entry (its seed, validator set, reward series and fault rate; `adapter` is not read),
/// at `genesis`: what `softstake simnet` serves.
///
/// # Errors
/// An unknown token or chain entry, or a bad simulated-chain setting.
pub fn served_sim(cfg: &NetworkConfig, symbol: &str, genesis: Timestamp) -> Result<(Arc<SimChain>, SimAdapter)> {
    let t = cfg.registry.get(symbol)?;
    let chain = cfg
        .chains
        .get(symbol)
        .ok_or_else(|| anyhow!("no [chains.{symbol}] in the network config"))?;
    let sim = sim_chain(t, chain, genesis, sim_faults(chain))?;
    let adapter = SimAdapter::new(sim.clone(), key_for(symbol, chain)?);
    Ok((sim, adapter))
}

/// The simulated faults of a chain entry's `fault_rate_bps`, spread over the four kinds.
fn sim_faults(chain: &ChainConfig) -> FaultConfig {
    FaultConfig {
        timeout_bps: chain.fault_rate_bps / 4,
        lost_reply_bps: chain.fault_rate_bps / 4,
        delayed_finality_bps: chain.fault_rate_bps / 4,
        reject_bps: chain.fault_rate_bps / 4,
        finality_polls: 2,
        ..FaultConfig::default()
    }
}

/// A simulated chain's handle with no guard (no retries, no rate limit, no sleeps: the
/// simulator, where a transient error is retried by the next tick), at `genesis` with
/// `faults`.
///
/// # Errors
/// A bad simulated-chain setting or signer.
pub fn sim_handle(
    t: &TokenConfig,
    chain: &ChainConfig,
    genesis: Timestamp,
    faults: FaultConfig,
) -> Result<ChainHandle> {
    let sim = sim_chain(t, chain, genesis, faults)?;
    let adapter = SimAdapter::new(sim.clone(), key_for(&t.symbol, chain)?);
    Ok(ChainHandle {
        adapter: Arc::new(adapter),
        sim: Some(sim),
        exec: exec_config(chain, true),
    })
}

/// Builds a simulated chain for `token` (not persisted, not advanced).
pub fn sim_chain(
    t: &TokenConfig,
    chain: &ChainConfig,
    genesis: Timestamp,
    faults: FaultConfig,
) -> Result<Arc<SimChain>> {
    let series = match chain.reward_series.as_str() {
        "cardano" => RewardSeries::Cardano,
        _ => RewardSeries::Solana,
    };
    let validator_set = match chain.validator_set.as_deref() {
        Some("solana") => ValidatorSet::Solana,
        Some("cosmos") => ValidatorSet::Cosmos,
        Some("tron") => ValidatorSet::Tron,
        None | Some("generated") => ValidatorSet::Generated,
        Some(other) => bail!(
            "chains.{}.validator_set: unknown set {other:?} (solana, cosmos, tron, generated)",
            t.symbol
        ),
    };
    Ok(SimChain::new(SimConfig {
        token: t.symbol.clone(),
        decimals: t.decimals,
        model: sim_model(t),
        series,
        validator_set,
        seed: chain.seed,
        faults,
        genesis,
        tx_validity_secs: 90,
        treasury_key: key_for(&t.symbol, chain)?,
    })?)
}

fn guard_config(chain: &ChainConfig, sim: bool) -> GuardConfig {
    GuardConfig {
        rate_per_sec: if sim { 10_000 } else { chain.rate_limit_per_sec },
        ..GuardConfig::default()
    }
}

/// Chains for every token with a `[chains.X]` entry. Simulated chains are restored
/// from `<data_dir>/sim` when `persist` (the CLI), else created at `genesis`.
pub fn build(
    cfg: &NetworkConfig,
    persist: bool,
    genesis: Timestamp,
    observer: Option<Arc<dyn CallObserver>>,
) -> Result<Chains> {
    let sim_dir = persist.then(|| cfg.data_dir.join("sim"));
    let mut map = BTreeMap::new();
    for (symbol, chain) in &cfg.chains {
        let t = cfg.registry.get(symbol)?;
        let handle = match chain.adapter.as_str() {
            "sim" => {
                let faults = sim_faults(chain);
                let sim = match &sim_dir {
                    Some(dir) => load_sim(dir, t, chain, genesis, faults)?,
                    None => sim_chain(t, chain, genesis, faults)?,
                };
                let adapter = SimAdapter::new(sim.clone(), key_for(symbol, chain)?);
                let guarded: Arc<dyn ChainAdapter> =
                    Arc::new(Guarded::new(adapter, guard_config(chain, true), observer.clone()));
                ChainHandle {
                    adapter: guarded,
                    sim: Some(sim),
                    exec: exec_config(chain, true),
                }
            }
            "sim-remote" => {
                let url = chain.rpc_url.as_deref().ok_or_else(|| {
                    anyhow!("chains.{symbol}.rpc_url is required for the sim-remote adapter (a `softstake simnet` URL)")
                })?;
                let adapter = crate::simnet::RemoteSim::new(symbol, url)?;
                ChainHandle {
                    adapter: Arc::new(Guarded::new(adapter, guard_config(chain, true), observer.clone())),
                    sim: None,
                    exec: exec_config(chain, true),
                }
            }
            #[cfg(feature = "solana")]
            "solana" => {
                use softstake_adapters::solana::{SolanaAdapter, SolanaConfig};
                let rpc_url = chain
                    .rpc_url
                    .clone()
                    .ok_or_else(|| anyhow!("chains.{symbol}.rpc_url is required for the solana adapter"))?;
                let source = chain.signer.as_deref().ok_or_else(|| {
                    anyhow!(
                        "chains.{symbol}.signer is required for the solana adapter (env:VAR, file:PATH or pkcs11:URI)"
                    )
                })?;
                let key = treasury_key(cfg.pkcs11.as_ref(), symbol, source)?;
                let adapter = SolanaAdapter::new(
                    SolanaConfig {
                        rpc_url,
                        priority_fee_micro_lamports: chain.priority_fee_micro_lamports,
                        max_operations_per_epoch: 32,
                        genesis_hash: chain.genesis_hash.clone(),
                    },
                    key,
                )?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "evm")]
            "bsc" => {
                use softstake_adapters::evm::bsc::{BscAdapter, STAKE_HUB};
                let (cfg, key, hub) = evm_parts(cfg, symbol, "bsc", chain, STAKE_HUB)?;
                let adapter = BscAdapter::new(cfg, key, hub).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "evm")]
            "polygon" => {
                use softstake_adapters::evm::polygon::{PolygonAdapter, STAKE_MANAGER_MAINNET, STAKE_MANAGER_SEPOLIA};
                let default = match chain.evm.as_ref().map(|e| e.chain_id) {
                    Some(11_155_111) => STAKE_MANAGER_SEPOLIA,
                    _ => STAKE_MANAGER_MAINNET,
                };
                let (cfg, key, sm) = evm_parts(cfg, symbol, "polygon", chain, default)?;
                let adapter = PolygonAdapter::new(cfg, key, sm).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "evm")]
            "sonic" => {
                use softstake_adapters::evm::sonic::{SonicAdapter, SFC_ADDRESS};
                let (cfg, key, sfc) = evm_parts(cfg, symbol, "sonic", chain, SFC_ADDRESS)?;
                let adapter = SonicAdapter::new(cfg, key, sfc).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "evm")]
            "ronin" => {
                use softstake_adapters::evm::ronin::{RoninAxsAdapter, AXS_POOL_MAINNET};
                let evm = chain.evm.as_ref();
                if evm.is_some_and(|e| e.chain_id != 2020 && e.staking_contract.is_none()) {
                    bail!(
                        "chains.{symbol}.evm.staking_contract is required off Ronin mainnet (chain id 2020): \
                         the AXS pool {AXS_POOL_MAINNET} is a mainnet address"
                    );
                }
                let (cfg, key, pool) = evm_parts(cfg, symbol, "ronin", chain, AXS_POOL_MAINNET)?;
                let adapter = RoninAxsAdapter::new(cfg, key, pool).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "evm")]
            "apechain" => {
                use softstake_adapters::evm::apechain::{ApeChainAdapter, ARB_INFO};
                let (cfg, key, info) = evm_parts(cfg, symbol, "apechain", chain, ARB_INFO)?;
                let bps = chain.evm.as_ref().and_then(|e| e.max_yield_apr_bps);
                let mut adapter = ApeChainAdapter::new(cfg, key, info).with_context(|| format!("chains.{symbol}"))?;
                if let Some(bps) = bps {
                    adapter = adapter
                        .with_max_yield_apr_bps(bps)
                        .with_context(|| format!("chains.{symbol}.evm.max_yield_apr_bps"))?;
                }
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "near")]
            "near" => {
                use softstake_adapters::near::{NearAdapter, NearConfig};
                let near = chain
                    .near
                    .as_ref()
                    .ok_or_else(|| anyhow!("chains.{symbol}.near is required for the near adapter"))?;
                let (rpc_url, key) = endpoint_and_key(cfg, symbol, "near", "NEAR", chain)?;
                let cfg = NearConfig {
                    rpc_url,
                    account_id: near.account_id.clone(),
                    extra_pools: near.extra_pools.clone(),
                    max_operations_per_epoch: 32,
                };
                let adapter = NearAdapter::new(cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "tron")]
            "tron" => {
                use softstake_adapters::tron::{TronAdapter, TronConfig};
                let (api_url, key) = endpoint_and_key(cfg, symbol, "tron", "TRX", chain)?;
                let settings = chain.tron.clone().unwrap_or_default();
                let api_key = match &settings.api_key_env {
                    Some(var) => Some(std::env::var(var).with_context(|| {
                        format!("chains.{symbol}.tron.api_key_env: environment variable {var} is not set")
                    })?),
                    None => None,
                };
                let cfg = TronConfig {
                    api_url,
                    api_key,
                    expiration_secs: settings.expiration_secs,
                    max_operations_per_epoch: 32,
                    owner_address: settings.owner_address.clone(),
                };
                let adapter = TronAdapter::new(cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "cosmos")]
            "cosmos" => {
                use softstake_adapters::cosmos::{CosmosAdapter, CosmosConfig};
                let (rpc_url, key) = endpoint_and_key(cfg, symbol, "cosmos", "ATOM", chain)?;
                let c = chain
                    .cosmos
                    .as_ref()
                    .ok_or_else(|| anyhow!("chains.{symbol}.cosmos is required for the cosmos adapter"))?;
                let (num, den) = c
                    .gas_price_fraction()
                    .map_err(|e| anyhow!("chains.{symbol}.cosmos.{e}"))?;
                let cfg = CosmosConfig {
                    grpc_url: c.grpc_url.clone(),
                    rpc_url,
                    chain_id: c.chain_id.clone(),
                    account_prefix: c.account_prefix.clone(),
                    gas_per_message: c.gas_per_message,
                    gas_price_numerator: num,
                    gas_price_denominator: den,
                    timeout_blocks: c.timeout_blocks,
                    max_operations_per_epoch: 32,
                };
                let adapter = CosmosAdapter::new(cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "cardano")]
            "cardano" => {
                use softstake_adapters::cardano::CardanoConfig;
                let (api_url, key) = endpoint_and_key(cfg, symbol, "cardano", "ADA", chain)?;
                let pkcs11 = cfg.pkcs11.as_ref();
                let c = chain
                    .cardano
                    .as_ref()
                    .ok_or_else(|| anyhow!("chains.{symbol}.cardano is required for the cardano adapter"))?;
                let project_id = match &c.project_id_env {
                    Some(var) => Some(std::env::var(var).with_context(|| {
                        format!("chains.{symbol}.cardano.project_id_env: environment variable {var} is not set")
                    })?),
                    None => None,
                };
                let cfg = CardanoConfig {
                    api_url,
                    project_id,
                    network_id: c.network_id,
                    stake_keys: c.stake_keys,
                    ttl_slots: c.ttl_slots,
                    max_operations_per_epoch: 32,
                    confirmations: c.confirmations,
                    account: c.account,
                };
                let adapter = cardano_adapter(pkcs11, cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "sui")]
            "sui" => {
                use softstake_adapters::sui::{SuiAdapter, SuiConfig};
                let (rpc_url, key) = endpoint_and_key(cfg, symbol, "sui", "SUI", chain)?;
                let cfg = SuiConfig {
                    rpc_url,
                    // Sui's chain id is its genesis checkpoint's digest
                    chain_id: chain.genesis_hash.clone(),
                    max_operations_per_epoch: 32,
                };
                let adapter = SuiAdapter::new(cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "aptos")]
            "aptos" => {
                use softstake_adapters::aptos::{AptosAdapter, AptosStakeConfig};
                let (rest_url, key) = endpoint_and_key(cfg, symbol, "aptos", "APT", chain)?;
                // Aptos's chain id (1 mainnet, 2 testnet) pinned in genesis_hash
                let chain_id = chain
                    .genesis_hash
                    .as_deref()
                    .map(|id| {
                        id.parse::<u8>().map_err(|_| {
                            anyhow!("chains.{symbol}.genesis_hash = {id:?}: Aptos's chain id is a number 0-255")
                        })
                    })
                    .transpose()?;
                let cfg = AptosStakeConfig {
                    rest_url,
                    chain_id,
                    extra_pools: vec![],
                    max_operations_per_epoch: 32,
                };
                let adapter = AptosAdapter::new(cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "iota")]
            "iota" => {
                use softstake_adapters::iota::{IotaAdapter, IotaConfig};
                let (rpc_url, key) = endpoint_and_key(cfg, symbol, "iota", "IOTA", chain)?;
                let graphql_url = chain
                    .iota
                    .as_ref()
                    .map(|c| c.graphql_url.clone())
                    .ok_or_else(|| anyhow!("chains.{symbol}.iota.graphql_url: required by adapter \"iota\""))?;
                let cfg = IotaConfig {
                    rpc_url,
                    graphql_url,
                    // IOTA's chain id is its genesis checkpoint's digest, as Sui's
                    chain_id: chain.genesis_hash.clone(),
                    max_operations_per_epoch: 32,
                };
                let adapter = IotaAdapter::new(cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "multiversx")]
            "multiversx" => {
                use softstake_adapters::multiversx::{MultiversxAdapter, MultiversxConfig};
                let (gateway_url, key) = endpoint_and_key(cfg, symbol, "multiversx", "EGLD", chain)?;
                let cfg = MultiversxConfig {
                    gateway_url,
                    // MultiversX's chain id (1 mainnet, D devnet, T testnet) pinned in genesis_hash
                    chain_id: chain.genesis_hash.clone(),
                    extra_providers: vec![],
                    max_operations_per_epoch: 32,
                };
                let adapter = MultiversxAdapter::new(cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "algorand")]
            "algorand" => {
                use softstake_adapters::algorand::{AlgorandAdapter, AlgorandConfig};
                let (algod_url, key) = endpoint_and_key(cfg, symbol, "algorand", "ALGO", chain)?;
                let a = chain
                    .algorand
                    .as_ref()
                    .ok_or_else(|| anyhow!("chains.{symbol}.algorand: required by adapter \"algorand\""))?;
                let algod_token = match &a.algod_token_env {
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        anyhow!("chains.{symbol}.algorand.algod_token_env: {var} is not set (algod's API token)")
                    })?),
                    None => None,
                };
                let cfg = AlgorandConfig {
                    algod_url,
                    algod_token,
                    indexer_url: a.indexer_url.clone(),
                    // Algorand's genesis hash (base64) pinned in genesis_hash
                    genesis_hash: chain.genesis_hash.clone(),
                    staking_accounts: address_list(symbol, "algorand.staking_accounts", &a.staking_accounts)?,
                    max_operations_per_epoch: 32,
                };
                let adapter = AlgorandAdapter::new(cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            #[cfg(feature = "ton")]
            "ton" => {
                use softstake_adapters::ton::{wire::DEFAULT_WALLET_ID, TonAdapter, TonConfig};
                let (toncenter_url, key) = endpoint_and_key(cfg, symbol, "ton", "TON", chain)?;
                let t = chain
                    .ton
                    .as_ref()
                    .ok_or_else(|| anyhow!("chains.{symbol}.ton: required by adapter \"ton\""))?;
                let api_key = match &t.api_key_env {
                    Some(var) => Some(std::env::var(var).map_err(|_| {
                        anyhow!("chains.{symbol}.ton.api_key_env: {var} is not set (toncenter's API key)")
                    })?),
                    None => None,
                };
                let global_id = chain
                    .genesis_hash
                    .as_deref()
                    .map(|g| {
                        g.trim()
                            .parse::<i32>()
                            .map_err(|_| anyhow!("chains.{symbol}.genesis_hash = {g:?}: TON's global id is an integer"))
                    })
                    .transpose()?;
                let cfg = TonConfig {
                    toncenter_url,
                    api_key,
                    pools: address_list(symbol, "ton.pools", &t.pools)?,
                    single_nominator_pools: address_list(
                        symbol,
                        "ton.single_nominator_pools",
                        &t.single_nominator_pools,
                    )?,
                    wallet_id: t.wallet_id.unwrap_or(DEFAULT_WALLET_ID),
                    // TON pins its global id (ConfigParam 19: mainnet -239, testnet -3) in genesis_hash
                    global_id,
                    max_operations_per_epoch: 32,
                };
                let adapter = TonAdapter::new(cfg, key).with_context(|| format!("chains.{symbol}"))?;
                real_handle(adapter, chain, &observer)
            }
            other => bail!(
                "chains.{symbol}.adapter = {other:?} is not in this build (adapters: sim{}{}{}{}{}{}{}{}{}{}{}{}); \
                 real adapters are compiled in with their cargo feature",
                if cfg!(feature = "solana") { ", solana" } else { "" },
                if cfg!(feature = "near") { ", near" } else { "" },
                if cfg!(feature = "tron") { ", tron" } else { "" },
                if cfg!(feature = "cosmos") { ", cosmos" } else { "" },
                if cfg!(feature = "cardano") { ", cardano" } else { "" },
                if cfg!(feature = "sui") { ", sui" } else { "" },
                if cfg!(feature = "aptos") { ", aptos" } else { "" },
                if cfg!(feature = "iota") { ", iota" } else { "" },
                if cfg!(feature = "multiversx") {
                    ", multiversx"
                } else {
                    ""
                },
                if cfg!(feature = "algorand") { ", algorand" } else { "" },
                if cfg!(feature = "ton") { ", ton" } else { "" },
                if cfg!(feature = "evm") {
                    EVM_ADAPTERS.iter().map(|(n, _)| format!(", {n}")).collect::<String>()
                } else {
                    String::new()
                }
            ),
        };
        map.insert(symbol.clone(), handle);
    }
    Ok(Chains::new(map, sim_dir))
}

fn load_sim(
    dir: &Path,
    t: &TokenConfig,
    chain: &ChainConfig,
    genesis: Timestamp,
    faults: FaultConfig,
) -> Result<Arc<SimChain>> {
    let path = dir.join(format!("{}.json", t.symbol));
    if !path.exists() {
        return sim_chain(t, chain, genesis, faults);
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let snap = SimChain::parse_snapshot(&text).with_context(|| format!("{}", path.display()))?;
    let probe = sim_chain(t, chain, genesis, faults)?;
    SimChain::restore(probe.config().clone(), snap).with_context(|| format!("restoring {}", path.display()))
}

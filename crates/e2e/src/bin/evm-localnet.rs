//! `evm-localnet`: a local EVM staking chain for the demo and for manual runs: anvil with
//! one of our stand-ins of a real staking contract, its validators, the treasury key
//! written to a file, and validator rewards paid on a schedule (accelerated: by default
//! every 5 s pays a day's rewards at the APR).
//!
//! ```text
//! cargo run -p softstake-e2e --features evm-anvil --bin evm-localnet -- --chain bsc      (8545, chain id 56)
//! cargo run -p softstake-e2e --features evm-anvil --bin evm-localnet -- --chain sonic    (8546, chain id 146)
//! cargo run -p softstake-e2e --features evm-anvil --bin evm-localnet -- --chain polygon  (8547, chain id 1)
//! cargo run -p softstake-e2e --features evm-anvil --bin evm-localnet -- --chain ronin    (8548, chain id 2020)
//! cargo run -p softstake-e2e --features evm-anvil --bin evm-localnet -- --chain apechain (8549, chain id 33139)
//! softstake --network localnet demo --tokens BNB --chain BNB=bsc
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use softstake_e2e::apechain::{start_apechain, LocalApeChain};
use softstake_e2e::evm::{start_bsc, LocalBsc, LocalEvm, BNB_WEI};
use softstake_e2e::polygon::{start_polygon, LocalPolygon};
use softstake_e2e::ronin::{start_ronin, LocalRonin};
use softstake_e2e::sonic::{start_sonic, LocalSonic};

/// APE each dev account of the local ApeChain holds (the treasury's custody).
const APECHAIN_BALANCE_APE: u64 = 100_000;

/// Which staking chain to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Chain {
    /// BNB Smart Chain: StakeHub stand-in at 0x…2002 (chain id 56).
    Bsc,
    /// Sonic: SFC stand-in at 0xFC00FACE… (chain id 146).
    Sonic,
    /// Ethereum with Polygon PoS staking: StakeManager stand-in (chain id 1).
    Polygon,
    /// Ronin: the AXS staking pool stand-in (chain id 2020).
    Ronin,
    /// ApeChain: ArbInfo stand-in at 0x…65, native yield by rebasing (chain id 33139).
    Apechain,
}

impl Chain {
    fn default_port(self) -> u16 {
        match self {
            Chain::Bsc => 8545,
            Chain::Sonic => 8546,
            Chain::Polygon => 8547,
            Chain::Ronin => 8548,
            Chain::Apechain => 8549,
        }
    }

    fn default_key_file(self) -> &'static str {
        match self {
            Chain::Bsc => ".softstake/localnet/bnb-treasury.key",
            Chain::Sonic => ".softstake/localnet/s-treasury.key",
            Chain::Polygon => ".softstake/localnet/pol-treasury.key",
            Chain::Ronin => ".softstake/localnet/axs-treasury.key",
            Chain::Apechain => ".softstake/localnet/ape-treasury.key",
        }
    }
}

/// Runs a local staking chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The chain.
    #[arg(long, value_enum, default_value = "bsc")]
    chain: Chain,
    /// JSON-RPC port (default: 8545 bsc, 8546 sonic, 8547 polygon, 8548 ronin, 8549
    /// apechain).
    #[arg(long)]
    port: Option<u16>,
    /// Seconds per block.
    #[arg(long, default_value_t = 1)]
    block_time_secs: u64,
    /// Where to write the treasury's key (hex; the network config's `signer = "file:…"`).
    #[arg(long)]
    key_file: Option<PathBuf>,
    /// Validators' yearly reward rate, bps of their stake (real: BNB about 250, S about
    /// 350, POL about 400); the AXS pool's rate on its total stake; APE's native yield.
    #[arg(long, default_value_t = 300)]
    apr_bps: u64,
    /// Seconds of rewards paid per real second (17 280: a day's rewards every 5 s).
    #[arg(long, default_value_t = 17_280)]
    speedup: u64,
    /// Seconds between reward payments (0: none).
    #[arg(long, default_value_t = 5)]
    reward_interval_secs: u64,
}

/// A started chain.
enum Running {
    Bsc(LocalBsc),
    Sonic(LocalSonic),
    Polygon(LocalPolygon),
    Ronin(LocalRonin),
    Apechain(LocalApeChain),
}

impl Running {
    fn evm(&self) -> &LocalEvm {
        match self {
            Running::Bsc(c) => c,
            Running::Sonic(c) => c,
            Running::Polygon(c) => c,
            Running::Ronin(c) => c,
            Running::Apechain(c) => c,
        }
    }

    fn describe(&self) -> Vec<String> {
        match self {
            Running::Bsc(c) => std::iter::once(
                "StakeHub stand-in at 0x0000000000000000000000000000000000002002 (chain id 56)".to_string(),
            )
            .chain(c.validators.iter().map(|v| format!("  validator {v}")))
            .collect(),
            Running::Sonic(c) => {
                std::iter::once("SFC stand-in at 0xFC00FACE00000000000000000000000000000000 (chain id 146)".to_string())
                    .chain(c.validators.iter().map(|v| format!("  validator {v}")))
                    .collect()
            }
            Running::Polygon(c) => std::iter::once(format!(
                "StakeManager stand-in at {} (chain id 1), POL token {}",
                c.stake_manager, c.pol
            ))
            .chain(c.validators.iter().map(|v| format!("  validator {v}")))
            .collect(),
            Running::Ronin(c) => vec![format!(
                "AXS staking pool stand-in at {} (chain id 2020), AXS token {}",
                c.pool, c.axs
            )],
            Running::Apechain(_) => vec![
                "ArbInfo stand-in at 0x0000000000000000000000000000000000000065 (chain id 33139)".to_string(),
                "  native yield: the treasury's balance rebases on every payment, and chain time moves with it"
                    .to_string(),
            ],
        }
    }

    /// Pays `secs` of rewards at `apr_bps` to every validator.
    async fn pay(&self, apr_bps: u64, secs: u128) -> Result<()> {
        let reward = |stake: u128| stake * u128::from(apr_bps) / 10_000 * secs / (365 * 86_400);
        match self {
            Running::Bsc(c) => {
                for v in &c.validators {
                    let r = reward(c.total_pooled(*v).await?);
                    if r > 0 {
                        c.distribute_reward(*v, r).await?;
                    }
                }
            }
            Running::Sonic(c) => {
                let mut rewards = Vec::new();
                for v in &c.validators {
                    rewards.push((*v, reward(c.received_stake(*v).await?)));
                }
                c.seal_epoch(&rewards).await?;
            }
            Running::Polygon(c) => {
                for v in &c.validators {
                    let r = reward(c.validator_stake(*v).await?);
                    if r > 0 {
                        c.distribute_rewards(*v, r).await?;
                    }
                }
                // the checkpoint that pays them, signed by every validator
                c.checkpoint(&c.validators).await?;
            }
            Running::Ronin(c) => {
                let r = reward(c.staking_total().await?);
                if r > 0 {
                    c.distribute_rewards(r).await?;
                }
            }
            Running::Apechain(c) => {
                // the chain's clock moves with the accelerated schedule, so the yield is
                // apr_bps a year of chain time, within the adapter's yield bound
                c.increase_time(u64::try_from(secs)?).await?;
                let year = 365 * 86_400 * 10_000;
                c.rebase(&[c.treasury], u128::from(apr_bps) * secs, year).await?;
            }
        }
        Ok(())
    }
}

fn write_key(path: &Path, key: &[u8; 32]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, alloy::hex::encode(key)).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

async fn start(args: &Args) -> Result<Running> {
    let port = args.port.unwrap_or(args.chain.default_port());
    Ok(match args.chain {
        Chain::Bsc => Running::Bsc(start_bsc(port, args.block_time_secs).await?),
        Chain::Sonic => Running::Sonic(start_sonic(port, args.block_time_secs).await?),
        Chain::Polygon => Running::Polygon(start_polygon(port, args.block_time_secs).await?),
        Chain::Ronin => Running::Ronin(start_ronin(port, args.block_time_secs).await?),
        Chain::Apechain => Running::Apechain(start_apechain(port, args.block_time_secs, APECHAIN_BALANCE_APE).await?),
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // SIGINT or SIGTERM, even during start-up, ends the run; anvil is stopped with us
    // (dropping its handle kills it)
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let chain = tokio::select! {
        c = start(&args) => c?,
        _ = term.recv() => return Ok(()),
        _ = int.recv() => return Ok(()),
    };
    let evm = chain.evm();
    let key_file = args
        .key_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(args.chain.default_key_file()));
    write_key(&key_file, &evm.treasury_key)?;
    println!(
        "local {:?} chain ready at {}: treasury {} ({} native coins), key in {}",
        args.chain,
        evm.url,
        evm.treasury,
        evm.treasury_balance().await? / BNB_WEI,
        key_file.display()
    );
    for line in chain.describe() {
        println!("  {line}");
    }
    let mut tick = tokio::time::interval(Duration::from_secs(args.reward_interval_secs.max(1)));
    loop {
        tokio::select! {
            _ = int.recv() => break,
            _ = term.recv() => break,
            _ = tick.tick() => {
                if args.reward_interval_secs == 0 {
                    continue;
                }
                let secs = u128::from(args.reward_interval_secs) * u128::from(args.speedup);
                chain.pay(args.apr_bps, secs).await?;
            }
        }
    }
    println!("stopping anvil");
    Ok(())
}

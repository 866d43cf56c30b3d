//! `evm-localnet`: a local BNB Smart Chain for the demo and for manual runs: anvil on
//! 127.0.0.1:8545 (`--chain-id 56`) with the StakeHub stand-in at 0x…2002, three
//! validators, the treasury key written to a file, and validator rewards paid on a
//! schedule (accelerated: by default every 5 s pays a day's rewards at the APR).
//!
//! ```text
//! cargo run -p softstake-e2e --features evm-anvil --bin evm-localnet
//! softstake --network localnet demo --tokens BNB --chain BNB=bsc
//! ```

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use softstake_e2e::evm::{start_bsc, BNB_WEI};

/// Runs a local BSC with the StakeHub stand-in until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// JSON-RPC port.
    #[arg(long, default_value_t = 8545)]
    port: u16,
    /// Seconds per block.
    #[arg(long, default_value_t = 1)]
    block_time_secs: u64,
    /// Where to write the treasury's key (hex; the network config's `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/bnb-treasury.key")]
    key_file: PathBuf,
    /// Validators' yearly reward rate, bps of their pool (real BNB staking: about 250).
    #[arg(long, default_value_t = 250)]
    apr_bps: u64,
    /// Seconds of rewards paid per real second (17 280: a day's rewards every 5 s).
    #[arg(long, default_value_t = 17_280)]
    speedup: u64,
    /// Seconds between reward payments (0: none).
    #[arg(long, default_value_t = 5)]
    reward_interval_secs: u64,
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
        c = start_bsc(args.port, args.block_time_secs) => c?,
        _ = term.recv() => return Ok(()),
        _ = int.recv() => return Ok(()),
    };
    if let Some(dir) = args.key_file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.key_file, alloy::hex::encode(chain.treasury_key))
        .with_context(|| format!("writing {}", args.key_file.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&args.key_file, std::fs::Permissions::from_mode(0o600))?;
    }
    println!(
        "local BSC ready at {} (chain id 56): StakeHub stand-in at 0x0000000000000000000000000000000000002002, \
         treasury {} ({} BNB), key in {}",
        chain.url,
        chain.treasury,
        chain.treasury_balance().await? / BNB_WEI,
        args.key_file.display()
    );
    for v in &chain.validators {
        println!("  validator {v}");
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
                for v in &chain.validators {
                    let pool = chain.total_pooled(*v).await?;
                    let secs = u128::from(args.reward_interval_secs) * u128::from(args.speedup);
                    let reward = pool * u128::from(args.apr_bps) / 10_000 * secs / (365 * 86_400);
                    if reward > 0 {
                        chain.distribute_reward(*v, reward).await?;
                    }
                }
            }
        }
    }
    println!("stopping anvil");
    Ok(())
}

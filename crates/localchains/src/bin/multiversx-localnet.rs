//! `multiversx-localnet`: our local MultiversX chain for the demo and manual runs: the
//! gateway's REST API on 127.0.0.1:7950 (the proxy's default port), the staking providers
//! of `data/multiversx/providers.csv`, the treasury account with its key written to a file,
//! rounds produced on a timer.
//!
//! ```text
//! cargo run -p softstake-localchains --features multiversx --bin multiversx-localnet
//! softstake --network localnet demo --tokens EGLD --chain EGLD=multiversx
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use ed25519_dalek::SigningKey;

use softstake_localchains::multiversx::{providers_from_csv, start, to_bech32, MultiversxGenesis, EGLD};

/// Runs a local MultiversX chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// HTTP port.
    #[arg(long, default_value_t = 7950)]
    port: u16,
    /// The chain id (`config/localnet.toml` pins `localnet`).
    #[arg(long, default_value = "localnet")]
    chain_id: String,
    /// The treasury's balance, EGLD.
    #[arg(long, default_value_t = 10_000_000)]
    balance_egld: u128,
    /// Where to write the treasury's key (hex Ed25519 seed; the config's `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/multiversx-treasury.key")]
    key_file: PathBuf,
    /// Rounds per epoch (mainnet 14 400 rounds of 6 s: a day; here a minute of chain time,
    /// so the demo's delegations earn and are claimed within its run).
    #[arg(long, default_value_t = 10)]
    rounds_per_epoch: u64,
    /// Epochs an undelegation waits (mainnet 10).
    #[arg(long, default_value_t = 10)]
    unbond_epochs: u64,
    /// The providers' yearly reward before their fee, bps.
    #[arg(long, default_value_t = 800)]
    apr_bps: u32,
    /// Real milliseconds per round (each round is 6 s of chain time).
    #[arg(long, default_value_t = 50)]
    tick_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // a fresh key per run: the treasury of a local chain only
    let seed: [u8; 32] = std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(29).wrapping_add(i as u8 + 3));
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let genesis = MultiversxGenesis {
        chain_id: args.chain_id.clone(),
        start_time_secs: now,
        round_duration_ms: 6_000,
        rounds_per_epoch: args.rounds_per_epoch,
        min_gas_price: 1_000_000_000,
        unbond_period_epochs: args.unbond_epochs,
        min_delegation: EGLD,
        apr_bps: args.apr_bps,
        providers: providers_from_csv(include_str!("../../../../data/multiversx/providers.csv"), 100)?,
        accounts: vec![(public, args.balance_egld * EGLD)],
        tick_ms: args.tick_ms,
    };
    let chain = start(genesis, args.port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex::encode(seed))?;
    println!(
        "local MultiversX chain ready at {} (chain id {:?}): treasury {} ({} EGLD), key in {}",
        chain.url,
        args.chain_id,
        to_bech32(&public),
        args.balance_egld,
        args.key_file.display()
    );
    println!(
        "  epochs of {} rounds (6 s each); undelegations wait {} epochs",
        args.rounds_per_epoch, args.unbond_epochs
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

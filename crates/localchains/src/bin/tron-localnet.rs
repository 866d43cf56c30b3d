//! `tron-localnet`: our local TRON chain for the demo and manual runs: java-tron's HTTP API
//! and TronGrid's history on 127.0.0.1:8090 (java-tron's HTTP default), the witnesses of
//! `data/tron/super_representatives.csv`, the treasury account with its key written to a
//! file, blocks produced on a timer.
//!
//! ```text
//! cargo run -p softstake-localchains --features tron --bin tron-localnet
//! softstake --network localnet demo --tokens TRX --chain TRX=tron
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use softstake_localchains::tron::{start, witnesses_from_csv, TronGenesis, TRX};
use softstake_localchains::tron_codec as wire;

/// Runs a local TRON chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// HTTP port.
    #[arg(long, default_value_t = 8090)]
    port: u16,
    /// The treasury's balance, TRX.
    #[arg(long, default_value_t = 10_000_000)]
    balance_trx: u128,
    /// Where to write the treasury's key (hex secp256k1; the config's `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/tron-treasury.key")]
    key_file: PathBuf,
    /// Witnesses read from the bundled snapshot (its top N by votes).
    #[arg(long, default_value_t = 40)]
    witnesses: usize,
    /// Chain seconds between maintenances (mainnet 21 600).
    #[arg(long, default_value_t = 600)]
    maintenance_secs: i64,
    /// Days an unfreeze waits (mainnet 14).
    #[arg(long, default_value_t = 14)]
    unfreeze_delay_days: i64,
    /// Real milliseconds per block (each block is 3 s of chain time).
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // a fresh key per run: the treasury of a local chain only
    let seed: [u8; 32] = std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(37).wrapping_add(i as u8 + 1));
    let key = k256::ecdsa::SigningKey::from_slice(&seed).context("deriving the local treasury key")?;
    let address = wire::to_base58(&wire::address_of(key.verifying_key()));
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let genesis = TronGenesis {
        witnesses: witnesses_from_csv(
            include_str!("../../../../data/tron/super_representatives.csv"),
            args.witnesses,
        )?,
        accounts: vec![(address.clone(), args.balance_trx * TRX)],
        genesis_ms: now_ms,
        block_ms: 3_000,
        maintenance_interval_ms: args.maintenance_secs * 1_000,
        unfreeze_delay_days: args.unfreeze_delay_days,
        solid_lag_blocks: 19,
        witness127_pay_per_block_sun: 128 * TRX,
        witness_pay_per_block_sun: 8 * TRX,
        tick_ms: args.tick_ms,
    };
    let chain = start(genesis, args.port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex::encode(seed))?;
    println!(
        "local TRON chain ready at {}: treasury {address} ({} TRX), key in {}",
        chain.url,
        args.balance_trx,
        args.key_file.display()
    );
    println!(
        "  {} witnesses; maintenance every {} s; unfreeze {} days",
        args.witnesses, args.maintenance_secs, args.unfreeze_delay_days
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

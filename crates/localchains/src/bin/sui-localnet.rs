//! `sui-localnet`: our local Sui chain for the demo and manual runs: sui-rpc's gRPC
//! services on 127.0.0.1:9000, the validators of `data/sui/validators.csv` and the epoch
//! APYs of `data/sui/apy.csv`, the treasury funded with its key written to a file, an
//! epoch ended every `--epoch-tick-ms` real milliseconds.
//!
//! ```text
//! cargo run -p softstake-localchains --features sui --bin sui-localnet
//! softstake --network localnet demo --tokens SUI --chain SUI=sui
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use softstake_localchains::sui::{apys_from_csv, start, validators_from_csv, SuiGenesis, SUI};

/// Runs a local Sui chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// gRPC port (a Sui full node's default is 9000).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// The treasury's balance, SUI.
    #[arg(long, default_value_t = 10_000_000)]
    balance_sui: u64,
    /// Where to write the treasury's key (hex Ed25519 seed; `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/sui-treasury.key")]
    key_file: PathBuf,
    /// Chain milliseconds per epoch (mainnet and testnet 86 400 000 = 24 h).
    #[arg(long, default_value_t = 86_400_000)]
    epoch_ms: u64,
    /// Real milliseconds per epoch (0: epochs never end on their own).
    #[arg(long, default_value_t = 60_000)]
    epoch_tick_ms: u64,
    /// Reference gas price, MIST (mainnet epoch 1001: 505).
    #[arg(long, default_value_t = 505)]
    reference_gas_price: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // a fresh key per run: the treasury of a local chain only
    let seed: [u8; 32] = std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(31).wrapping_add(i as u8 + 5));
    let address = sui_crypto::ed25519::Ed25519PrivateKey::new(seed)
        .public_key()
        .derive_address()
        .to_string();
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let genesis = SuiGenesis {
        validators: validators_from_csv(include_str!("../../../../data/sui/validators.csv"))?,
        apy_bps: apys_from_csv(include_str!("../../../../data/sui/apy.csv"))?,
        coins: vec![(
            address.clone(),
            args.balance_sui
                .checked_mul(SUI)
                .context("--balance-sui overflows MIST")?,
        )],
        genesis_ms: now_ms,
        epoch_ms: args.epoch_ms,
        reference_gas_price: args.reference_gas_price,
        chain_id: "localnet".into(),
        tick_epoch_ms: args.epoch_tick_ms,
    };
    let chain = start(genesis, args.port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex::encode(seed))?;
    println!(
        "local Sui chain ready at {}: treasury {address} ({} SUI), key in {}",
        chain.url,
        args.balance_sui,
        args.key_file.display()
    );
    println!("  an epoch ends every {} ms", args.epoch_tick_ms);
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

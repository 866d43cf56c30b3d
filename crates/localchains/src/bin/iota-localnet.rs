//! `iota-localnet`: our local IOTA chain for the demo and manual runs: IOTA's gRPC services
//! on 127.0.0.1:50051 and its GraphQL subset on 127.0.0.1:9125/graphql, the validators of
//! `data/iota/validators.csv` and the epoch APYs of `data/iota/apy.csv`, the treasury
//! funded with its key written to a file, an epoch ended every `--epoch-tick-ms` real
//! milliseconds.
//!
//! ```text
//! cargo run -p softstake-localchains --features iota --bin iota-localnet
//! softstake --network localnet demo --tokens IOTA --chain IOTA=iota
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use softstake_localchains::iota::{apys_from_csv, start, validators_from_csv, IotaGenesis, IOTA};

/// Runs a local IOTA chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// gRPC port (an IOTA node's gRPC default is 50051).
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// GraphQL port (IOTA's GraphQL server default is 9125).
    #[arg(long, default_value_t = 9125)]
    graphql_port: u16,
    /// The treasury's balance, IOTA.
    #[arg(long, default_value_t = 10_000_000)]
    balance_iota: u64,
    /// Where to write the treasury's key (hex Ed25519 seed; `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/iota-treasury.key")]
    key_file: PathBuf,
    /// Chain milliseconds per epoch (mainnet and testnet 86 400 000 = 24 h).
    #[arg(long, default_value_t = 86_400_000)]
    epoch_ms: u64,
    /// Real milliseconds per epoch (0: epochs never end on their own).
    #[arg(long, default_value_t = 60_000)]
    epoch_tick_ms: u64,
    /// Reference gas price, nanos per unit (mainnet: 1 000).
    #[arg(long, default_value_t = 1_000)]
    reference_gas_price: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // a fresh key per run: the treasury of a local chain only
    let seed: [u8; 32] =
        std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(37).wrapping_add(i as u8 + 11));
    let address = iota_sdk::crypto::ed25519::Ed25519PrivateKey::new(seed)
        .public_key()
        .derive_address()
        .to_string();
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let genesis = IotaGenesis {
        validators: validators_from_csv(include_str!("../../../../data/iota/validators.csv"))?,
        apy_bps: apys_from_csv(include_str!("../../../../data/iota/apy.csv"))?,
        coins: vec![(
            address.clone(),
            args.balance_iota
                .checked_mul(IOTA)
                .context("--balance-iota overflows nanos")?,
        )],
        genesis_ms: now_ms,
        epoch_ms: args.epoch_ms,
        reference_gas_price: args.reference_gas_price,
        chain_name: "iota-localnet".into(),
        tick_epoch_ms: args.epoch_tick_ms,
    };
    let chain = start(genesis, args.port, args.graphql_port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex::encode(seed))?;
    println!(
        "local IOTA chain ready: gRPC {} and GraphQL {}: treasury {address} ({} IOTA), key in {}",
        chain.url,
        chain.graphql_url,
        args.balance_iota,
        args.key_file.display()
    );
    println!("  chain id {} (genesis_hash)", chain.chain_id());
    println!("  an epoch ends every {} ms", args.epoch_tick_ms);
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

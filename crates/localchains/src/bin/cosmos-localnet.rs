//! `cosmos-localnet`: our local Cosmos SDK chain for the demo and manual runs: the gRPC
//! services on 127.0.0.1:9090 and CometBFT's RPC on 127.0.0.1:26657 (the node defaults), the
//! validators of `data/cosmos/validators_cosmoshub3_height1685677.csv`, the treasury account
//! with its key written to a file, blocks produced on a timer.
//!
//! ```text
//! cargo run -p softstake-localchains --features cosmos --bin cosmos-localnet
//! softstake --network localnet demo --tokens ATOM --chain ATOM=cosmos
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use softstake_localchains::cosmos::{start, validators_from_csv, CosmosGenesis};

/// 1 ATOM in uatom.
const ATOM: u128 = 1_000_000;

/// Runs a local Cosmos chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// gRPC port.
    #[arg(long, default_value_t = 9090)]
    port: u16,
    /// CometBFT RPC port.
    #[arg(long, default_value_t = 26657)]
    rpc_port: u16,
    /// Chain id.
    #[arg(long, default_value = "softstake-local-1")]
    chain_id: String,
    /// The treasury's balance, ATOM.
    #[arg(long, default_value_t = 10_000_000)]
    balance_atom: u128,
    /// Where to write the treasury's key (hex secp256k1; the config's `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/cosmos-treasury.key")]
    key_file: PathBuf,
    /// Validators read from the bundled snapshot (its top N by tokens).
    #[arg(long, default_value_t = 50)]
    validators: usize,
    /// Unbonding time, seconds (the Hub: 1 814 400 = 21 days).
    #[arg(long, default_value_t = 1_814_400)]
    unbonding_secs: i64,
    /// Chain seconds per block (the Hub: about 6).
    #[arg(long, default_value_t = 6)]
    block_secs: i64,
    /// Real milliseconds per block.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // a fresh key per run: the treasury of a local chain only
    let seed: [u8; 32] = std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(53).wrapping_add(i as u8 + 7));
    let key = cosmrs::crypto::secp256k1::SigningKey::from_slice(&seed)
        .map_err(|e| anyhow::anyhow!("deriving the local treasury key: {e}"))?;
    let address = key
        .public_key()
        .account_id("cosmos")
        .map_err(|e| anyhow::anyhow!("treasury address: {e}"))?
        .to_string();
    let now_secs = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let genesis = CosmosGenesis {
        chain_id: args.chain_id.clone(),
        bond_denom: "uatom".into(),
        validators: validators_from_csv(
            include_str!("../../../../data/cosmos/validators_cosmoshub3_height1685677.csv"),
            args.validators,
        )?,
        accounts: vec![(address.clone(), args.balance_atom * ATOM)],
        genesis_secs: now_secs,
        block_secs: args.block_secs,
        unbonding_time_secs: args.unbonding_secs,
        max_entries: 7,
        // the snapshot's supply: bonded 183.4 M ATOM at a 72.02 % bonded ratio
        supply: 254_624_972_017_526,
        inflation_bps: 700,
        community_tax_bps: 200,
        min_gas_price: (5, 1_000),
        tick_ms: args.tick_ms,
    };
    let chain = start(genesis, args.port, args.rpc_port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex::encode(seed))?;
    println!(
        "local Cosmos chain ready: gRPC {}, CometBFT RPC {}, chain id {}: treasury {address} ({} ATOM), key in {}",
        chain.grpc_url,
        chain.rpc_url,
        args.chain_id,
        args.balance_atom,
        args.key_file.display()
    );
    println!(
        "  {} validators; {} s blocks; unbonding {} s",
        args.validators, args.block_secs, args.unbonding_secs
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

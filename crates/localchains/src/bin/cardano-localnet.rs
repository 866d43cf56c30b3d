//! `cardano-localnet`: our local Cardano chain for the demo and manual runs: Blockfrost's
//! REST API on 127.0.0.1:3100/api/v0, the pools of `data/cardano/pools/pool-id.json`, the
//! reward rates of `data/cardano/pools/pool-id-history.json`, the treasury's enterprise
//! address funded with its key written to a file, blocks produced on a timer.
//!
//! ```text
//! cargo run -p softstake-localchains --features cardano --bin cardano-localnet
//! softstake --network localnet demo --tokens ADA --chain ADA=cardano
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use softstake_localchains::cardano::{pools_from_fixture, rates_from_fixture, start, CardanoGenesis, ADA};
use softstake_localchains::cardano_codec as codec;

/// Runs a local Cardano chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// HTTP port.
    #[arg(long, default_value_t = 3100)]
    port: u16,
    /// The treasury's balance, ADA.
    #[arg(long, default_value_t = 10_000_000)]
    balance_ada: u64,
    /// Where to write the treasury's payment key (hex ed25519 seed; `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/cardano-treasury.key")]
    key_file: PathBuf,
    /// Slots (seconds) per epoch (mainnet and preprod 432 000 = 5 days).
    #[arg(long, default_value_t = 3_600)]
    epoch_slots: u64,
    /// Slots per block (mainnet about 20).
    #[arg(long, default_value_t = 20)]
    block_slots: u64,
    /// Real milliseconds per block.
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // a fresh key per run: the treasury of a local chain only
    let seed: [u8; 32] = std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(29).wrapping_add(i as u8 + 3));
    let address = codec::enterprise_address(codec::network(0), codec::key_hash(&codec::vkey_of_seed(&seed)))
        .to_bech32()
        .context("treasury address")?;
    let now_secs = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let genesis = CardanoGenesis {
        network_id: 0,
        pools: pools_from_fixture(include_str!("../../../../data/cardano/pools/pool-id.json"))?,
        reward_rates: rates_from_fixture(include_str!("../../../../data/cardano/pools/pool-id-history.json"))?,
        utxos: vec![(address.clone(), args.balance_ada * ADA)],
        genesis_secs: now_secs,
        epoch_slots: args.epoch_slots,
        block_slots: args.block_slots,
        min_fee: (44, 155_381),
        key_deposit: 2 * ADA,
        coins_per_utxo_size: 4_310,
        tick_ms: args.tick_ms,
    };
    let chain = start(genesis, args.port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex::encode(seed))?;
    println!(
        "local Cardano chain ready at {}: treasury {address} ({} ADA), key in {}",
        chain.url,
        args.balance_ada,
        args.key_file.display()
    );
    println!(
        "  epochs of {} slots; {} slots per block",
        args.epoch_slots, args.block_slots
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

//! `near-localnet`: our local NEAR chain for the demo and manual runs: NEAR JSON-RPC on
//! 127.0.0.1:3030 (neard's default), three reference staking pools, the treasury account
//! with a full-access key written to a file, blocks produced on a timer.
//!
//! ```text
//! cargo run -p softstake-localchains --features near --bin near-localnet
//! softstake --network localnet demo --tokens NEAR --chain NEAR=near
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use softstake_localchains::near::{start, NearGenesis, PoolSpec, NEAR};

/// Runs a local NEAR chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// JSON-RPC port.
    #[arg(long, default_value_t = 3030)]
    port: u16,
    /// The treasury's account id.
    #[arg(long, default_value = "treasury.localnet")]
    account_id: String,
    /// The treasury's balance, NEAR.
    #[arg(long, default_value_t = 1_000_000)]
    balance_near: u128,
    /// Where to write the treasury's key (hex ed25519 seed; the config's `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/near-treasury.key")]
    key_file: PathBuf,
    /// Blocks per epoch.
    #[arg(long, default_value_t = 60)]
    epoch_length: u64,
    /// Real milliseconds per block (each block is one second of chain time).
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// Pools' yearly reward before their fee, bps (mainnet about 900).
    #[arg(long, default_value_t = 900)]
    apr_bps: u32,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // a fresh key per run: the treasury of a local chain only
    let seed: [u8; 32] = std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(31).wrapping_add(i as u8));
    let secret = near_crypto::SecretKey::ED25519(near_crypto::ED25519SecretKey({
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let mut pair = [0u8; 64];
        pair[..32].copy_from_slice(&seed);
        pair[32..].copy_from_slice(&signing.verifying_key().to_bytes());
        pair
    }));
    let now_nanos = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos(),
    )?;
    let genesis = NearGenesis {
        epoch_length: args.epoch_length,
        block_nanos: 1_000_000_000,
        transaction_validity_period: 86_400,
        apr_bps: args.apr_bps,
        pools: [
            ("figment.poolv1.near", 10),
            ("everstake.poolv1.near", 5),
            ("aurora.pool.near", 8),
        ]
        .into_iter()
        .map(|(id, fee)| PoolSpec {
            account_id: id.into(),
            owner_stake: 5_000_000 * NEAR,
            reward_fee: (fee, 100),
        })
        .collect(),
        // a mainnet-like set: one validator stakes on its own account, with no pool contract
        solo_validators: vec![("solo-validator.near".into(), 3_000_000 * NEAR)],
        accounts: vec![(args.account_id.clone(), secret.public_key(), args.balance_near * NEAR)],
        genesis_nanos: now_nanos,
        tick_ms: args.tick_ms,
    };
    let chain = start(genesis, args.port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex_of(&seed))?;
    println!(
        "local NEAR chain ready at {}: treasury {} ({} NEAR), key in {}",
        chain.url,
        args.account_id,
        args.balance_near,
        args.key_file.display()
    );
    println!(
        "  pools figment.poolv1.near, everstake.poolv1.near, aurora.pool.near; epoch {} blocks",
        args.epoch_length
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

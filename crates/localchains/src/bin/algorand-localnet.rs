//! `algorand-localnet`: our local Algorand chain for the demo and manual runs: algod's REST
//! API on 127.0.0.1:4001 (algod's usual port) and the indexer's under `/indexer`, the
//! custody account and staking accounts rekeyed to it (each with a participation key on
//! the chain's participation node), the custody key written to a file, rounds produced on
//! a timer.
//!
//! ```text
//! cargo run -p softstake-localchains --features algorand --bin algorand-localnet
//! softstake --network localnet demo --tokens ALGO --chain ALGO=algorand
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use ed25519_dalek::SigningKey;

use softstake_localchains::algorand::{
    address, custody_seed, genesis_hash_b64, staking_key, start, AlgorandGenesis, GenesisAccount, ALGO, MIN_BALANCE,
};

/// Runs a local Algorand chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// HTTP port (algod; the indexer is under /indexer).
    #[arg(long, default_value_t = 4001)]
    port: u16,
    /// The genesis id (`config/localnet.toml` pins its genesis hash).
    #[arg(long, default_value = "softstake-localnet-v1")]
    genesis_id: String,
    /// The custody account's balance, ALGO.
    #[arg(long, default_value_t = 10_000_000)]
    balance_algo: u64,
    /// Number of staking accounts (rekeyed to the custody key, each with a participation key).
    #[arg(long, default_value_t = 4)]
    staking_accounts: u8,
    /// Where to write the custody key (hex Ed25519 seed; the config's `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/algorand-treasury.key")]
    key_file: PathBuf,
    /// The rest of the network's online stake, ALGO (mainnet's is about 2 000 000 000:
    /// with the demo's 10 M ALGO online, one block in 200 is ours).
    #[arg(long, default_value_t = 2_000_000_000)]
    network_online_algo: u64,
    /// Real milliseconds per round (each round is 2.8 s of chain time; at 1 ms the
    /// 320-round look-back passes within a second, so the demo's accounts earn during its
    /// run; the chain keeps the last million rounds).
    #[arg(long, default_value_t = 1)]
    tick_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let seed = custody_seed(&args.genesis_id);
    let custody = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut accounts = vec![GenesisAccount {
        address: custody,
        amount: args.balance_algo * ALGO,
        auth: None,
        participation_key: false,
    }];
    let staking: Vec<[u8; 32]> = (0..args.staking_accounts)
        .map(|i| staking_key(&args.genesis_id, i))
        .collect();
    for s in &staking {
        accounts.push(GenesisAccount {
            address: *s,
            amount: MIN_BALANCE,
            auth: Some(custody),
            participation_key: true,
        });
    }
    let genesis = AlgorandGenesis {
        genesis_id: args.genesis_id.clone(),
        start_time_secs: now,
        round_ms: 2_800,
        bonus: 10 * ALGO,
        fee_sink: 10_000_000 * ALGO,
        network_online_stake: args.network_online_algo * ALGO,
        accounts,
        pending_memory_rounds: 1_000,
        seed: u64::from(std::process::id()),
        tick_ms: args.tick_ms,
    };
    let chain = start(genesis, args.port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex::encode(seed))?;
    println!(
        "local Algorand chain ready: algod {} indexer {} (genesis {:?}); custody {} ({} ALGO), key in {}",
        chain.algod_url,
        chain.indexer_url,
        args.genesis_id,
        address(&custody),
        args.balance_algo,
        args.key_file.display()
    );
    println!("  genesis hash {}", genesis_hash_b64(&args.genesis_id));
    println!("  staking accounts (rekeyed to the custody key, participation keys on the node):");
    for s in &staking {
        println!("    {}", address(s));
    }
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

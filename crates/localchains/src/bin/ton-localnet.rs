//! `ton-localnet`: our local TON chain for the demo and manual runs: toncenter's API
//! subset on 127.0.0.1:8081, nominator pools and a single-nominator pool at the addresses
//! `config/localnet.toml` pins (`-1:<pool_account(i)>`, `-1:<single_account(i)>`), the
//! elector's get-methods, the treasury's wallet v4r2 with its key written to a file,
//! the clock ticking on a timer with rounds and holds scaled down from ConfigParam 15.
//!
//! ```text
//! cargo run -p softstake-localchains --features ton --bin ton-localnet
//! softstake --network localnet demo --tokens TON --chain TON=ton
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use ed25519_dalek::SigningKey;

use softstake_localchains::ton::{
    pool_account, pool_address, single_account, start, wallet_address, PoolSpec, SingleSpec, TonGenesis, TON, WALLET_ID,
};

/// Runs a local TON chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// HTTP port.
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// ConfigParam 19 (`config/localnet.toml` pins −77).
    #[arg(long, default_value_t = -77, allow_hyphen_values = true)]
    global_id: i32,
    /// The treasury's balance, TON.
    #[arg(long, default_value_t = 10_000_000)]
    balance_ton: u128,
    /// Where to write the treasury's key (hex Ed25519 seed; the config's `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/ton-treasury.key")]
    key_file: PathBuf,
    /// Nominator pools (mainnet: 2 per validator, for even and odd rounds).
    #[arg(long, default_value_t = 6)]
    pools: u8,
    /// Single-nominator pools owned by the treasury wallet (at `-1:<single_account(i)>`),
    /// for a validator the exchange runs itself; their validators stake all they hold.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=100))]
    single_nominators: u8,
    /// Round length, chain seconds (mainnet 65 536); the other ConfigParam 15 values keep
    /// mainnet's proportions (elections start ½, end ⅛ of a round before its end; stake held ½).
    #[arg(long, default_value_t = 64)]
    elected_for_secs: u32,
    /// The elector's yearly reward on stake, bps.
    #[arg(long, default_value_t = 400)]
    apr_bps: u32,
    /// Real milliseconds per chain second (1: a round every 64 ms, so the demo's few
    /// seconds see its deposits staked, rewarded and compounded).
    #[arg(long, default_value_t = 1)]
    tick_ms: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.elected_for_secs >= 16, "--elected-for-secs must be at least 16");
    // a fresh key per run: the treasury of a local chain only
    let seed: [u8; 32] = std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(31).wrapping_add(i as u8 + 5));
    let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let now = u32::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    )?;
    let e = args.elected_for_secs;
    let pools: Vec<PoolSpec> = (0..args.pools)
        .map(|i| PoolSpec {
            account: pool_account(i),
            // the validators' shares of public pools run 20–60 %
            validator_reward_share: 2_000 + 800 * u16::from(i % 6),
            max_nominators_count: 40,
            min_nominator_stake: 10_000 * TON,
            validator_amount: 300_000 * TON,
            others_amount: 500_000 * TON * u128::from(1 + i % 3),
        })
        .collect();
    let genesis = TonGenesis {
        global_id: args.global_id,
        start_time_secs: now,
        timing: [e, e / 2, e / 8, e / 2],
        wallets: vec![(public, args.balance_ton * TON)],
        uninit_wallets: vec![],
        pools,
        singles: (0..args.single_nominators)
            .map(|i| -> anyhow::Result<SingleSpec> {
                Ok(SingleSpec {
                    account: single_account(i),
                    owner: wallet_address(WALLET_ID, public)?,
                    validator_pubkey: single_account(i + 128),
                    balance: TON,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        apr_bps: args.apr_bps,
        tick_ms: args.tick_ms,
    };
    let chain = start(genesis, args.port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex::encode(seed))?;
    println!(
        "local TON chain ready at {} (global id {}): treasury wallet {} ({} TON), key in {}",
        chain.url,
        args.global_id,
        wallet_address(WALLET_ID, public)
            .map(|a| a.to_hex())
            .unwrap_or_default(),
        args.balance_ton,
        args.key_file.display()
    );
    for i in 0..args.pools {
        println!("  nominator pool {}", pool_address(pool_account(i)).to_hex());
    }
    for i in 0..args.single_nominators {
        println!(
            "  single-nominator pool {} (owner: the treasury wallet)",
            pool_address(single_account(i)).to_hex()
        );
    }
    println!("  rounds of {e} s, stake held {} s after a round", e / 2);
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

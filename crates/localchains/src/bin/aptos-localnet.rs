//! `aptos-localnet`: our local Aptos chain for the demo and manual runs: the fullnode REST
//! API `/v1` on 127.0.0.1:8070, the delegation pools of `data/aptos/validators.csv` and the
//! reward rates of `data/aptos/apr.csv`, the treasury funded with its key written to a
//! file, the ledger clock running a chain second every `--tick-ms` real milliseconds.
//!
//! ```text
//! cargo run -p softstake-localchains --features aptos --bin aptos-localnet
//! softstake --network localnet demo --tokens APT --chain APT=aptos
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use softstake_localchains::aptos::{bundled_rates, bundled_validators, start, AptosGenesis, ValidatorSpec, APT};

/// Runs a local Aptos chain until Ctrl-C.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// REST port (an Aptos node's default, 8080, is softstake's own REST API).
    #[arg(long, default_value_t = 8070)]
    port: u16,
    /// The treasury's balance, APT.
    #[arg(long, default_value_t = 10_000_000)]
    balance_apt: u64,
    /// Where to write the treasury's key (hex Ed25519 seed; `signer = "file:…"`).
    #[arg(long, default_value = ".softstake/localnet/aptos-treasury.key")]
    key_file: PathBuf,
    /// Epoch length, chain seconds (mainnet 7 200).
    #[arg(long, default_value_t = 60)]
    epoch_secs: u64,
    /// Lockup cycle, chain seconds (mainnet 14 days since AIP-94).
    #[arg(long, default_value_t = 600)]
    lockup_secs: u64,
    /// Real milliseconds per chain second (0: the clock moves one second per transaction;
    /// the default runs the chain 50× real time, an epoch every 1.2 s).
    #[arg(long, default_value_t = 20)]
    tick_ms: u64,
    /// Owners' own stake pools beside the bundled delegation pools, 1 000 000 APT each
    /// (staking_config's minimum_stake): stand-ins for the rest of the active set, which no
    /// offline source lists, so the bundled pools hold a share of the network (0: none).
    #[arg(long, default_value_t = 9)]
    owner_pools: u64,
    /// Gas unit price, octas (mainnet's minimum is 100).
    #[arg(long, default_value_t = 100)]
    gas_unit_price: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    // a fresh key per run: the treasury of a local chain only
    let seed: [u8; 32] =
        std::array::from_fn(|i| (std::process::id() as u8).wrapping_mul(37).wrapping_add(i as u8 + 11));
    let public = aptos_sdk::crypto::Ed25519PrivateKey::from_bytes(&seed)?.public_key();
    let address = public.to_address();
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let genesis = AptosGenesis {
        chain_id: 4,
        epoch_secs: args.epoch_secs,
        lockup_secs: args.lockup_secs,
        rates_bps: bundled_rates(include_str!("../../../../data/aptos/apr.csv"))?,
        validators: bundled_validators(include_str!("../../../../data/aptos/validators.csv"))?
            .into_iter()
            .map(|(v, _)| v)
            .chain((1..=args.owner_pools).map(|i| {
                ValidatorSpec {
                    address: format!("{:#066x}", 0x5741_4b45_0000_u64 + i)
                        .parse()
                        .expect("a hex address"),
                    commission: 0,
                    stake_octas: 1_000_000 * APT,
                    delegation_pool: false,
                }
            }))
            .collect(),
        accounts: vec![(
            address,
            args.balance_apt
                .checked_mul(APT)
                .context("--balance-apt overflows octas")?,
        )],
        genesis_secs: now_secs,
        tick_ms: args.tick_ms,
        gas_unit_price: args.gas_unit_price,
    };
    let chain = start(genesis, args.port).await?;
    softstake_localchains::write_key_file(&args.key_file, &hex::encode(seed))?;
    println!(
        "local Aptos chain ready at {}: treasury {address} ({} APT), key in {}",
        chain.url,
        args.balance_apt,
        args.key_file.display()
    );
    println!(
        "  epochs of {} s, lockup cycles of {} s, {} ms per chain second",
        args.epoch_secs, args.lockup_secs, args.tick_ms
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping");
    Ok(())
}

//! `softstake`: the soft-staking program's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use softstake_core::Day;
use softstake_node::clock::SystemClock;
use softstake_node::commands::{self, open_store};
use softstake_node::config::{self, NetworkConfig};
use softstake_node::files::{self, AllocateFiles};
use softstake_node::{demo, treasury_cmd};

/// softstake: pools eligible spot balances per token, stakes them through chain
/// adapters, and pays realized rewards daily by time-weighted average balance.
#[derive(Debug, Parser)]
#[command(name = "softstake", version, about, long_about = None)]
struct Cli {
    /// Network config to use: `config/<NETWORK>.toml` (devnet is also embedded).
    #[arg(long, global = true, default_value = "devnet", env = "SOFTSTAKE_NETWORK")]
    network: String,
    /// Explicit network config file (overrides --network's lookup).
    #[arg(long, global = true, env = "SOFTSTAKE_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (default from the config:
    /// a SQLite file under its data_dir).
    #[arg(long, global = true, env = "SOFTSTAKE_DB")]
    db: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More logs on stderr (-v: info, -vv: debug); SOFTSTAKE_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay one day from files, with no database (for auditors): TWAB, eligibility,
    /// allocation; writes the per-account CSV and prints a per-token summary.
    Allocate {
        /// Token registry (tokens.toml).
        #[arg(long)]
        tokens: PathBuf,
        /// accounts.csv: account_id,jurisdiction,activated_at,deactivated_at
        #[arg(long)]
        accounts: PathBuf,
        /// balances.csv: ts,account_id,token,balance (token units); repeat it for several
        /// files (e.g. the per-day files of `softstake archive`)
        #[arg(long, required = true, num_args = 1..)]
        balances: Vec<PathBuf>,
        /// rewards.csv: day,token,amount and optionally carry_in (token units)
        #[arg(long)]
        rewards: PathBuf,
        /// The day to replay, YYYY-MM-DD (UTC).
        #[arg(long)]
        day: String,
        /// Output CSV: day,token,account_id,average_balance,eligible_balance,reward
        #[arg(long)]
        out: PathBuf,
        /// Carry-in of a token from earlier days, `TOKEN=AMOUNT` in token units (as
        /// `payouts export` prints it); overrides rewards.csv's carry_in. Repeatable.
        #[arg(long = "carry", value_parser = parse_override)]
        carry: Vec<(String, String)>,
    },
    /// Create the store (SQLite file or PostgreSQL schema) and apply migrations.
    Init,
    /// Soft-staking accounts.
    Accounts {
        #[command(subcommand)]
        action: AccountsCmd,
    },
    /// The exchange's balance feed.
    Balances {
        #[command(subcommand)]
        action: BalancesCmd,
    },
    /// Realized rewards.
    Rewards {
        #[command(subcommand)]
        action: RewardsCmd,
    },
    /// Close a day: daily average balances and eligibility (idempotent).
    CloseDay {
        /// YYYY-MM-DD (UTC); the day must have ended.
        #[arg(long)]
        day: String,
        /// One token (default: every token in the registry).
        #[arg(long)]
        token: Option<String>,
    },
    /// Pay a closed day's realized rewards (each day is paid at most once).
    Distribute {
        /// YYYY-MM-DD (UTC).
        #[arg(long)]
        day: String,
        /// One token (default: every closed token).
        #[arg(long)]
        token: Option<String>,
    },
    /// Stored payouts.
    Payouts {
        #[command(subcommand)]
        action: PayoutsCmd,
    },
    /// Export closed days' balance events to per-day CSV files (the `allocate` input) and
    /// drop them from the store.
    Archive {
        /// Archive the days before this one, YYYY-MM-DD (each must be closed for every
        /// token with events on it).
        #[arg(long)]
        before: String,
        /// Folder for `balance_events-YYYY-MM-DD.csv` files.
        #[arg(long)]
        out: PathBuf,
        /// Export only: keep the events in the store (an audit copy).
        #[arg(long)]
        keep: bool,
    },
    /// A user's distribution history.
    History {
        /// Account id.
        #[arg(long)]
        account: String,
        /// Only this token.
        #[arg(long)]
        token: Option<String>,
        /// At most this many rows (newest first).
        #[arg(long, default_value_t = 30)]
        limit: u32,
    },
    /// The latest published APR per token (from realized rewards).
    Apr,
    /// Show each token's treasury plan and liquidity forecast (changes nothing).
    Plan {
        /// One token (default: every token with a chain).
        #[arg(long)]
        token: Option<String>,
    },
    /// Execute a plan shown by `plan`, through the operations journal.
    Execute {
        /// The plan id printed by `softstake plan`.
        #[arg(long)]
        plan: String,
        /// Approve a plan above the approval threshold.
        #[arg(long)]
        approve: bool,
        /// Who approves (recorded with the plan).
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Read realized rewards and positions from the chains into the ledger.
    Sync {
        /// One token (default: all).
        #[arg(long)]
        token: Option<String>,
    },
    /// Declare a transfer that moved the treasury's funds outside softstake (a custody
    /// deposit or withdrawal the exchange made) on a chain whose reward is balance growth
    /// (APE): read from its receipt and kept, so the sync does not book it as yield.
    /// Declaring it again is a no-op. Without --tx, lists the token's flows.
    Flow {
        /// The token (APE).
        #[arg(long)]
        token: String,
        /// The transaction hash (0x + 64 hex).
        #[arg(long)]
        tx: Option<String>,
        /// What it delivered to the treasury through a contract's internal call, in token
        /// units (e.g. 1500.25): a receipt does not show it. Not needed for a plain transfer.
        #[arg(long)]
        received: Option<String>,
        /// A note kept with it (who, why).
        #[arg(long)]
        note: Option<String>,
    },
    /// Compare the ledger with the chains' positions; drift freezes moves.
    Reconcile {
        /// One token (default: all).
        #[arg(long)]
        token: Option<String>,
        /// Acknowledge this drift alert (books the drift and unfreezes moves).
        #[arg(long)]
        acknowledge: Option<i64>,
        /// Who acknowledges.
        #[arg(long, default_value = "cli")]
        by: String,
    },
    /// Per token: custodial, eligible, staked by state, buffer, forecast, APR, alerts.
    Status {
        /// One token (default: all).
        #[arg(long)]
        token: Option<String>,
    },
    /// Preflight before moving money: per configured chain, reach the endpoint, check
    /// the chain id or genesis hash, contract code, the signer's balance against fees,
    /// tokens.toml against the chain's live constants, validators and the RPC's rate and
    /// history limits. Prints a table with a verdict and a fix per line; exits 1 when any
    /// line failed. Reads only.
    Doctor {
        /// One token (default: every configured chain).
        #[arg(long)]
        token: Option<String>,
    },
    /// Run the orchestrator: daily cycle, treasury loop, gRPC + REST APIs, metrics.
    Run {
        /// Start on a manual clock at this RFC 3339 time, moved by the admin-only
        /// `Admin.SetClock` call (tests and drills); default: the system clock.
        #[arg(long)]
        manual_clock: Option<String>,
    },
    /// Serve one token's simulated chain over HTTP, so several processes share one chain
    /// (`adapter = "sim-remote"`, `rpc_url = "http://ADDR"`): devnet failover drills.
    Simnet {
        /// The token whose `[chains.X]` entry (seed, validator set, faults) builds it.
        #[arg(long)]
        token: String,
        /// Listen address (loopback).
        #[arg(long, default_value = "127.0.0.1:8899")]
        listen: String,
        /// Chain genesis, RFC 3339 (epochs count from here).
        #[arg(long, default_value = "2025-01-01T00:00:00Z")]
        genesis: String,
        /// Delay before answering each call, milliseconds (a network round trip).
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
    },
    /// Deterministic whole-system simulation: the daemon's schedule against simulated
    /// chains, the store and a manual clock, with faults from the seed; checks the
    /// invariants after every step. `--db postgres://…` runs each seed in a new database
    /// on that server (default: an SQLite file per seed).
    Simulate {
        /// One seed (replays a failure).
        #[arg(long, conflicts_with = "seeds")]
        seed: Option<u64>,
        /// Seeds `A..B` (B excluded).
        #[arg(long, value_parser = parse_seeds, default_value = "0..10")]
        seeds: std::ops::Range<u64>,
        /// Days per seed with faults.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Days at the end with no fault, after which every closed day must be paid.
        #[arg(long, default_value_t = 2)]
        quiet_days: u32,
        /// Accounts per seed.
        #[arg(long, default_value_t = 24)]
        accounts: u32,
        /// Tokens (simulated chains of the network config), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "SOL,NEAR,TRX")]
        tokens: Vec<String>,
        /// Each seed simulates this many of `--tokens`, drawn from the seed (default: all).
        #[arg(long)]
        tokens_per_seed: Option<usize>,
        /// Seeds run at once (they mostly wait on the store's threads: more than the cores).
        #[arg(long, default_value_t = 8)]
        jobs: usize,
        /// Write the report (Markdown) here too.
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Print the SHA-256 of an API bearer token, for `[[service.clients]] token_sha256`.
    HashToken {
        /// The token (prefer piping it: `softstake hash-token -` reads stdin).
        token: String,
    },
    /// API keys of the Binance-compatible REST API.
    ApiKey {
        #[command(subcommand)]
        action: ApiKeyCmd,
    },
    /// Treasury keys inside the PKCS#11 token of the config's `[pkcs11]` (an HSM).
    Keys {
        #[command(subcommand)]
        action: KeysCmd,
    },
    /// Run a multi-day program on real data end to end and print the report.
    Demo {
        /// Days to run.
        #[arg(long, default_value_t = 8)]
        days: u32,
        /// Accounts to simulate.
        #[arg(long, default_value_t = 1_500)]
        accounts: u32,
        /// Seed (the same seed gives the same report).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Days the program runs before the report starts (warm treasury).
        #[arg(long, default_value_t = 12)]
        warmup_days: u32,
        /// Day (1-based) of the withdrawal wave; 0 for none.
        #[arg(long, default_value_t = 4)]
        wave_day: u32,
        /// Tokens hit by the wave, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "BNB,SOL,TRX")]
        wave_tokens: Vec<String>,
        /// Only these tokens, comma-separated (default: every configured chain).
        #[arg(long, value_delimiter = ',')]
        tokens: Option<Vec<String>>,
        /// Run a token on a real adapter instead of the simulated chain, e.g.
        /// `--chain SOL=solana` (rpc_url and signer from the network config; the binary
        /// needs the adapter's feature: `cargo run --features solana`).
        #[arg(long = "chain", value_parser = parse_override)]
        chain_overrides: Vec<(String, String)>,
    },
}

#[derive(Debug, Subcommand)]
enum ApiKeyCmd {
    /// Create a key and secret for an existing account; prints them once.
    Create {
        /// The account the key acts for.
        #[arg(long)]
        account: String,
        /// The key stops working this many days from now (default: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// List keys (never their secrets) with their state: active, expired or revoked.
    List {
        /// Only this account's keys.
        #[arg(long)]
        account: Option<String>,
        /// At most this many, oldest first.
        #[arg(long, default_value_t = 1_000)]
        limit: u32,
    },
    /// Revoke a key: its requests are refused (-2015) from now on.
    Revoke {
        /// The key (`X-MBX-APIKEY`).
        api_key: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCmd {
    /// Generate a key pair inside the token (never exported); prints the address to fund
    /// and the `signer` line for the network config.
    Generate {
        /// The chain it signs for: evm, bsc, polygon, sonic, ronin, apechain, tron, cosmos
        /// (secp256k1), solana, near, cardano or sui (Ed25519).
        #[arg(long)]
        chain: String,
        /// The key's label (unique in the token).
        #[arg(long)]
        label: String,
        /// The token's label in the module.
        #[arg(long)]
        hsm_token: String,
        /// The bech32 prefix of Cosmos addresses.
        #[arg(long, default_value = "cosmos")]
        cosmos_prefix: String,
        /// Cardano only: how many stake keys to generate with the payment key, labelled
        /// `<label>-stake-<i>` (the chain's `cardano.stake_keys`, 1..=100).
        #[arg(long, default_value_t = 1)]
        stake_keys: u32,
    },
    /// List the token's key pairs with their curve, public key and addresses.
    List {
        /// The token's label in the module.
        #[arg(long)]
        hsm_token: String,
        /// The bech32 prefix of Cosmos addresses.
        #[arg(long, default_value = "cosmos")]
        cosmos_prefix: String,
    },
}

#[derive(Debug, Subcommand)]
enum PayoutsCmd {
    /// Write a stored, distributed day in `allocate`'s output contract
    /// (day,token,account_id,average_balance,eligible_balance,reward), sorted by token then
    /// account, and print its summary with the carry in and out.
    Export {
        /// YYYY-MM-DD (UTC).
        #[arg(long)]
        day: String,
        /// One token (default: every token closed and distributed for the day).
        #[arg(long)]
        token: Option<String>,
        /// Output CSV.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum AccountsCmd {
    /// Import accounts.csv (insert or update).
    Import {
        /// account_id,jurisdiction,activated_at,deactivated_at
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BalancesCmd {
    /// Ingest balances.csv (idempotent; events in closed days are refused).
    Ingest {
        /// ts,account_id,token,balance
        #[arg(long)]
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum RewardsCmd {
    /// Record realized rewards from rewards.csv (day,token,amount).
    Record {
        /// day,token,amount
        #[arg(long)]
        file: PathBuf,
        /// Source label: the same (day, token, source) is recorded once.
        #[arg(long, default_value = "manual")]
        source: String,
    },
}

fn init_tracing(format: LogFormat, verbose: u8, quiet: bool) {
    let level = match verbose {
        // the simulator's injected faults would fill stderr with the errors they cause
        0 if quiet => "off",
        0 => "warn",
        1 => "warn,softstake_core=info,softstake_adapters=info,softstake_store=info,softstake_node=info,softstake=info",
        _ => "info,softstake_core=debug,softstake_adapters=debug,softstake_store=debug,softstake_node=debug,softstake=debug",
    };
    let filter = EnvFilter::try_from_env("SOFTSTAKE_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(t, a)| (t.trim().to_uppercase(), a.trim().to_string()))
        .filter(|(t, a)| !t.is_empty() && !a.is_empty())
        .ok_or_else(|| format!("{s:?}: expected TOKEN=ADAPTER, e.g. SOL=solana"))
}

fn parse_seeds(s: &str) -> Result<std::ops::Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("{s:?}: expected A..B, e.g. 0..200"))?;
    let a: u64 = a.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("{s:?}: {e}"))?;
    if a >= b {
        return Err(format!("{s:?}: empty range"));
    }
    Ok(a..b)
}

fn parse_day(s: &str) -> Result<Day> {
    Day::parse(s).with_context(|| format!("day {s:?}"))
}

async fn run(cli: Cli) -> Result<()> {
    let clock = SystemClock;
    if let Command::Allocate {
        tokens,
        accounts,
        balances,
        rewards,
        day,
        out,
        carry,
    } = &cli.command
    {
        let day = parse_day(day)?;
        let files = AllocateFiles {
            tokens,
            accounts,
            balances,
            rewards,
            out,
        };
        let (registry, days) = files::run_allocate(&files, day, carry)?;
        files::print_summary(&registry, day, &days)?;
        println!("wrote {}", out.display());
        return Ok(());
    }
    if let Command::HashToken { token } = &cli.command {
        let token = if token == "-" {
            let mut s = String::new();
            std::io::stdin().read_line(&mut s)?;
            s.trim().to_string()
        } else {
            token.clone()
        };
        println!("{}", commands::hash_token(&token));
        return Ok(());
    }
    let cfg: NetworkConfig = config::load(&cli.network, cli.config.as_deref())?;
    if let Command::Simnet {
        token,
        listen,
        genesis,
        latency_ms,
    } = &cli.command
    {
        let genesis = softstake_core::Timestamp::parse_rfc3339(genesis).with_context(|| "--genesis")?;
        let (chain, adapter) = softstake_node::chains::served_sim(&cfg, &token.to_uppercase(), genesis)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the simnet on {listen}"))?;
        println!("simnet for {token} on http://{}", listener.local_addr()?);
        return softstake_node::simnet::serve(
            softstake_node::simnet::router(chain, adapter, std::time::Duration::from_millis(*latency_ms)),
            listener,
        )
        .await;
    }
    if let Command::Simulate {
        seed,
        seeds,
        days,
        quiet_days,
        accounts,
        tokens,
        tokens_per_seed,
        jobs,
        report,
    } = &cli.command
    {
        let pg_url = match cli.db.as_deref() {
            Some(u) if u.starts_with("postgres") => Some(u.to_string()),
            Some(u) => {
                anyhow::bail!("simulate --db takes a PostgreSQL server URL (each seed gets its own database), not {u}")
            }
            None => None,
        };
        let opts = softstake_node::simulate::SimulateOptions {
            seeds: seed.map(|s| s..s + 1).unwrap_or_else(|| seeds.clone()),
            days: *days,
            quiet_days: *quiet_days,
            accounts: *accounts,
            tokens: tokens.iter().map(|t| t.to_uppercase()).collect(),
            tokens_per_seed: *tokens_per_seed,
            pg_url,
            jobs: *jobs,
            report: report.clone(),
        };
        softstake_node::simulate::run(&cfg, opts).await?;
        return Ok(());
    }
    if let Command::Run { manual_clock } = &cli.command {
        let manual_clock = manual_clock
            .as_deref()
            .map(|s| softstake_core::Timestamp::parse_rfc3339(s).with_context(|| "--manual-clock"))
            .transpose()?;
        let db_url = cli.db.clone().unwrap_or_else(|| cfg.db_url.clone());
        return softstake_node::daemon::run(cfg, softstake_node::daemon::RunOptions { db_url, manual_clock }).await;
    }
    if let Command::Demo {
        days,
        accounts,
        seed,
        warmup_days,
        wave_day,
        wave_tokens,
        tokens,
        chain_overrides,
    } = &cli.command
    {
        let opts = demo::DemoOptions {
            days: *days,
            accounts: *accounts,
            seed: *seed,
            warmup_days: *warmup_days,
            wave_day: *wave_day,
            wave_tokens: wave_tokens.clone(),
            tokens: tokens.clone(),
            db_url: cli.db.clone(),
            chain_overrides: chain_overrides.clone(),
            ..demo::DemoOptions::default()
        };
        return demo::run(&cfg, opts).await;
    }
    if let Command::Keys { action } = &cli.command {
        return keys(&cfg, action);
    }
    if let Command::Doctor { token } = &cli.command {
        let token = token.as_ref().map(|t| t.to_uppercase());
        let now = softstake_node::clock::Clock::now(&SystemClock);
        let report = softstake_node::doctor::run(&cfg, token.as_deref(), now).await?;
        println!("{}", report.render());
        let failed = report.failures().count();
        if failed > 0 {
            anyhow::bail!(
                "preflight of network {} failed: {failed} line(s) marked FAIL, each with its fix",
                cfg.network
            );
        }
        return Ok(());
    }
    let db_url = cli.db.clone().unwrap_or_else(|| cfg.db_url.clone());
    if let Command::Init = cli.command {
        return commands::init(&cfg, &db_url).await;
    }
    let store = open_store(&db_url).await?;
    let reg = &cfg.registry;
    let result = match &cli.command {
        Command::Allocate { .. }
        | Command::Init
        | Command::Demo { .. }
        | Command::Run { .. }
        | Command::Simnet { .. }
        | Command::Simulate { .. }
        | Command::Keys { .. }
        | Command::Doctor { .. }
        | Command::HashToken { .. } => Ok(()),
        Command::ApiKey { action } => match action {
            ApiKeyCmd::Create {
                account,
                expires_in_days,
            } => commands::api_key_create(&store, account, *expires_in_days, &clock).await,
            ApiKeyCmd::List { account, limit } => {
                commands::api_key_list(&store, account.as_deref(), *limit, &clock).await
            }
            ApiKeyCmd::Revoke { api_key } => commands::api_key_revoke(&store, api_key, &clock).await,
        },
        Command::Plan { token } => treasury_cmd::plan(&store, &cfg, token.as_deref(), &clock).await,
        Command::Execute { plan, approve, by } => treasury_cmd::execute(&store, &cfg, plan, *approve, by, &clock).await,
        Command::Sync { token } => treasury_cmd::sync(&store, &cfg, token.as_deref(), &clock).await,
        Command::Flow {
            token,
            tx,
            received,
            note,
        } => {
            treasury_cmd::flow(
                &store,
                &cfg,
                token,
                tx.as_deref(),
                received.as_deref(),
                note.as_deref(),
                &clock,
            )
            .await
        }
        Command::Reconcile { token, acknowledge, by } => {
            treasury_cmd::reconcile(&store, &cfg, token.as_deref(), *acknowledge, by, &clock).await
        }
        Command::Status { token } => treasury_cmd::status(&store, &cfg, token.as_deref(), &clock).await,
        Command::Accounts {
            action: AccountsCmd::Import { file },
        } => commands::accounts_import(&store, file).await,
        Command::Balances {
            action: BalancesCmd::Ingest { file },
        } => commands::balances_ingest(&store, reg, file).await,
        Command::Rewards {
            action: RewardsCmd::Record { file, source },
        } => commands::rewards_record(&store, reg, file, source, &clock).await,
        Command::CloseDay { day, token } => {
            commands::close_day(&store, &cfg, parse_day(day)?, token.as_deref(), &clock).await
        }
        Command::Distribute { day, token } => {
            commands::distribute(&store, &cfg, parse_day(day)?, token.as_deref(), &clock).await
        }
        Command::History { account, token, limit } => {
            commands::history(&store, reg, account, token.as_deref(), *limit).await
        }
        Command::Apr => commands::apr(&store).await,
        Command::Payouts {
            action: PayoutsCmd::Export { day, token, out },
        } => files::payouts_export(&store, reg, parse_day(day)?, token.as_deref(), out).await,
        Command::Archive { before, out, keep } => {
            commands::archive(&store, reg, parse_day(before)?, out, *keep, &clock).await
        }
    };
    store.close().await;
    result
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `softstake … | head` ends quietly instead of panicking on a closed pipe. Not for the
    // long-running commands: with SIGPIPE at its default, a write to a socket its peer
    // closed (an idle HTTP or database connection) would kill the process silently
    // instead of failing that one write with EPIPE.
    if !matches!(cli.command, Command::Run { .. } | Command::Simnet { .. }) {
        sigpipe::reset();
    }
    let quiet = matches!(cli.command, Command::Simulate { .. });
    init_tracing(cli.log_format, cli.verbose, quiet);
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `softstake keys …` (needs the `pkcs11` feature, on by default).
#[cfg(feature = "pkcs11")]
fn keys(cfg: &softstake_node::config::NetworkConfig, action: &KeysCmd) -> Result<()> {
    use softstake_node::keys;
    match action {
        KeysCmd::Generate {
            chain,
            label,
            hsm_token,
            cosmos_prefix,
            stake_keys,
        } => keys::generate(cfg, chain, hsm_token, label, cosmos_prefix, *stake_keys),
        KeysCmd::List {
            hsm_token,
            cosmos_prefix,
        } => keys::list(cfg, hsm_token, cosmos_prefix),
    }
}

/// `softstake keys …` in a build without PKCS#11 support.
#[cfg(not(feature = "pkcs11"))]
fn keys(_cfg: &softstake_node::config::NetworkConfig, _action: &KeysCmd) -> Result<()> {
    anyhow::bail!("this build has no PKCS#11 support: build with the pkcs11 feature (on by default)")
}

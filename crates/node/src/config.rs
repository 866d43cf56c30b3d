//! Network configuration (`config/<network>.toml`): where the store lives, which token
//! registry to use, and how each token's chain is reached.
//!
//! Validated purely first ([`NetworkConfig::from_toml_str`]: unknown keys, bad values),
//! then resolved against the file system ([`load`]). The devnet files are also embedded
//! in the binary, so `softstake demo` runs from any folder with no set-up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use softstake_core::TokenRegistry;

/// The embedded `config/tokens.toml`.
pub const EMBEDDED_TOKENS: &str = include_str!("../../../config/tokens.toml");
/// The embedded `config/devnet.toml`.
pub const EMBEDDED_DEVNET: &str = include_str!("../../../config/devnet.toml");

/// Errors of loading configuration, with the file named.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{path}: {message}")]
    Invalid {
        /// File.
        path: String,
        /// What is wrong (TOML errors carry line and column).
        message: String,
    },
}

/// How a token's chain is reached.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// `sim` (the simulated chain) or a real adapter compiled in (`solana`, `bsc`, …).
    pub adapter: String,
    /// RPC endpoint of the real chain (ignored by `sim`).
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// Requests per second allowed on the endpoint.
    #[serde(default = "d_rate")]
    pub rate_limit_per_sec: u32,
    /// Sim only: the real reward-rate series to replay (`solana` or `cardano`).
    #[serde(default = "d_series")]
    pub reward_series: String,
    /// Sim only: the seed of the chain's randomness (fault injection).
    #[serde(default)]
    pub seed: u64,
    /// Sim only: probability of each injected fault, basis points.
    #[serde(default)]
    pub fault_rate_bps: u32,
    /// Sim only: a real validator set to use (`solana`, `cosmos`, `tron`) instead of a
    /// generated one.
    #[serde(default)]
    pub validator_set: Option<String>,
    /// Where the signing key comes from: `env:VAR` or `file:PATH` (raw key bytes, devnet
    /// and testnets), or `pkcs11:token=…;object=…` (a key pair in the `[pkcs11]` module's
    /// token; the Solana, EVM, TRON and Cosmos adapters). Never the key itself.
    #[serde(default)]
    pub signer: Option<String>,
    /// How often the daemon syncs, reconciles, plans and executes for this token, seconds.
    #[serde(default = "d_sync_interval")]
    pub sync_interval_secs: u64,
    /// Solana: priority fee, micro-lamports per compute unit (0 = none).
    #[serde(default)]
    pub priority_fee_micro_lamports: u64,
    /// The chain's genesis hash, pinned (Solana: `solana genesis-hash`; devnet is
    /// `EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG`; Sui: the chain id, the genesis
    /// checkpoint's digest; Aptos: the chain id, `1` mainnet, `2` testnet): `softstake doctor` fails when the
    /// endpoint serves another chain. Unset on a local validator, whose genesis changes at
    /// each start.
    #[serde(default)]
    pub genesis_hash: Option<String>,
    /// Pause between status polls while waiting for finality, milliseconds (default: 0
    /// for the simulated chain, 1 000 for real chains).
    #[serde(default)]
    pub confirm_poll_interval_ms: Option<u64>,
    /// Status polls per run before leaving an operation pending (the next run resolves it).
    #[serde(default = "d_confirm_polls")]
    pub confirm_max_polls: u32,
    /// EVM chains (`adapter = "bsc"`, `"sonic"`, `"polygon"`, `"ronin"` or `"apechain"`):
    /// chain id, confirmations, fee caps.
    #[serde(default)]
    pub evm: Option<EvmSettings>,
    /// NEAR (`adapter = "near"`): the treasury account and extra pools.
    #[serde(default)]
    pub near: Option<NearSettings>,
    /// TRON (`adapter = "tron"`): TronGrid key and transaction expiration (optional).
    #[serde(default)]
    pub tron: Option<TronSettings>,
    /// Cosmos SDK (`adapter = "cosmos"`): gRPC endpoint, chain id, gas (`rpc_url` is the
    /// CometBFT RPC).
    #[serde(default)]
    pub cosmos: Option<CosmosSettings>,
    /// Cardano (`adapter = "cardano"`): network, stake keys, TTL, Blockfrost key (`rpc_url`
    /// is Blockfrost's base URL).
    #[serde(default)]
    pub cardano: Option<CardanoSettings>,
    /// IOTA (`adapter = "iota"`): the GraphQL endpoint (`rpc_url` is the node's gRPC).
    #[serde(default)]
    pub iota: Option<IotaSettings>,
    /// Algorand (`adapter = "algorand"`): the indexer and our staking accounts (`rpc_url`
    /// is algod's REST API).
    #[serde(default)]
    pub algorand: Option<AlgorandSettings>,
    /// TON (`adapter = "ton"`): the nominator pools and the wallet (`rpc_url` is
    /// toncenter's base URL; `genesis_hash` pins the network's global id, ConfigParam 19).
    #[serde(default)]
    pub ton: Option<TonSettings>,
}

/// `[chains.X.ton]`: settings of the TON adapter. `rpc_url` is toncenter's base URL (v3
/// under `/api/v3`, v2 under `/api/v2`); `signer` is the treasury wallet v4r2's key.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TonSettings {
    /// The nominator pools to delegate to (raw `-1:…` or user-friendly addresses, or
    /// `env:VAR` holding comma-separated ones); 1 to 256. Exits take whole positions, so
    /// list several pools: each is a tranche. May be empty when single-nominator pools are
    /// listed.
    #[serde(default)]
    pub pools: Vec<String>,
    /// Single-nominator pools (orbs-network/single-nominator) the treasury wallet owns, for
    /// a validator the exchange runs itself (same address forms). Deposits are plain
    /// transfers; exits (op 0x1000) are paid at once from what the pool holds outside the
    /// elector.
    #[serde(default)]
    pub single_nominator_pools: Vec<String>,
    /// Wallet v4r2 subwallet id; default 698983191 (the basechain default).
    #[serde(default)]
    pub wallet_id: Option<u32>,
    /// The environment variable holding a toncenter API key (`X-API-Key`; without one
    /// toncenter allows 1 request per second). Unset: no key sent.
    #[serde(default)]
    pub api_key_env: Option<String>,
}

/// `[chains.X.algorand]`: settings of the Algorand adapter. `rpc_url` is algod's REST API
/// (the exchange's participation node, which holds the staking accounts' participation
/// keys); `signer` is the custody account's key, to which every staking account is rekeyed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlgorandSettings {
    /// The indexer's REST API (`https://testnet-idx.algonode.cloud`, a local chain's
    /// `/indexer`).
    pub indexer_url: String,
    /// Our staking accounts (base32 addresses, or `env:VAR` holding comma-separated ones),
    /// each rekeyed to the custody key and with a participation key on the node; at most 64.
    pub staking_accounts: Vec<String>,
    /// The environment variable holding algod's API token (`X-Algo-API-Token`; the admin
    /// token, since `GET /v2/participation` needs it). Unset: no token sent.
    #[serde(default)]
    pub algod_token_env: Option<String>,
}

/// `[chains.X.iota]`: settings of the IOTA adapter. `rpc_url` is the full node's gRPC
/// endpoint (transactions, objects); the validator set comes from GraphQL.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IotaSettings {
    /// GraphQL endpoint (`https://graphql.testnet.iota.cafe`, a local chain's `/graphql`).
    pub graphql_url: String,
}

/// `[chains.X.cardano]`: settings of the Cardano adapter. `rpc_url` is Blockfrost's base
/// URL with its version; `signer` is the payment key (a 32-byte ed25519 seed), whose stake
/// keys derive from it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardanoSettings {
    /// 0 for the testnets (preprod, preview), 1 for mainnet.
    pub network_id: u8,
    /// Stake keys the treasury may use, one per pool (1..=100).
    #[serde(default = "d_cardano_stake_keys")]
    pub stake_keys: u32,
    /// Slots a signed transaction stays valid (1..=86 400).
    #[serde(default = "d_cardano_ttl")]
    pub ttl_slots: u64,
    /// The environment variable holding the Blockfrost project id (sent as `project_id`).
    /// Never the id itself.
    #[serde(default)]
    pub project_id_env: Option<String>,
    /// Blocks on top of a transaction's block (its own included) before it counts as
    /// confirmed (default 15; 1..=2160, Cardano's security parameter k).
    #[serde(default = "d_cardano_confirmations")]
    pub confirmations: u64,
    /// CIP-1852 account index (default 0, below 2^31) when the key is a 96-byte root key
    /// (payment key m/1852'/1815'/account'/0/0, stake key i m/1852'/1815'/account'/2/i).
    #[serde(default)]
    pub account: u32,
}

fn d_cardano_confirmations() -> u64 {
    15
}

fn d_cardano_stake_keys() -> u32 {
    10
}
fn d_cardano_ttl() -> u64 {
    600
}

/// `[chains.X.cosmos]`: settings of the Cosmos SDK adapter. `rpc_url` is the node's
/// CometBFT RPC (`broadcast_tx_sync`); the treasury's address is the `signer` key's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CosmosSettings {
    /// The node's gRPC endpoint (`http://127.0.0.1:9090`).
    pub grpc_url: String,
    /// The chain id signed for (`cosmoshub-4`, `theta-testnet-001`); a node on another
    /// chain is refused.
    pub chain_id: String,
    /// Bech32 prefix of account addresses.
    #[serde(default = "d_cosmos_prefix")]
    pub account_prefix: String,
    /// Gas limit per message.
    #[serde(default = "d_cosmos_gas")]
    pub gas_per_message: u64,
    /// Gas price, base units per gas as a decimal (`"0.005"`: the Hub's minimum).
    #[serde(default = "d_cosmos_gas_price")]
    pub gas_price: String,
    /// Blocks a signed transaction stays valid (its `timeout_height`), 1..=100 000.
    #[serde(default = "d_cosmos_timeout")]
    pub timeout_blocks: u64,
}

fn d_cosmos_prefix() -> String {
    "cosmos".into()
}
fn d_cosmos_gas() -> u64 {
    300_000
}
fn d_cosmos_gas_price() -> String {
    "0.005".into()
}
fn d_cosmos_timeout() -> u64 {
    100
}

impl CosmosSettings {
    /// The gas price as (numerator, denominator), base units per gas.
    ///
    /// # Errors
    /// A message naming the field for a malformed or negative price, or more than 18
    /// decimals.
    pub fn gas_price_fraction(&self) -> Result<(u64, u64), String> {
        let d = rust_decimal::Decimal::from_str_exact(self.gas_price.trim())
            .map_err(|e| format!("gas_price {:?}: {e}", self.gas_price))?;
        if d.is_sign_negative() || d.scale() > 18 {
            return Err(format!(
                "gas_price {:?}: not a non-negative decimal with at most 18 decimals",
                self.gas_price
            ));
        }
        let num = u64::try_from(d.mantissa()).map_err(|_| format!("gas_price {:?}: too large", self.gas_price))?;
        Ok((num, 10u64.pow(d.scale())))
    }
}

/// `[chains.X.tron]`: settings of the TRON adapter (all optional). The treasury's address
/// is the `signer` key's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TronSettings {
    /// The environment variable holding a TronGrid API key (sent as `TRON-PRO-API-KEY`;
    /// TronGrid rate-limits requests without one). Never the key itself.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Seconds a signed transaction stays valid after its reference block (1..=86 400).
    #[serde(default = "d_tron_expiration")]
    pub expiration_secs: u64,
    /// The account to act for (`T…`) when `signer` is another key of its owner permission;
    /// by default the signer's own account.
    #[serde(default)]
    pub owner_address: Option<String>,
}

fn d_tron_expiration() -> u64 {
    60
}

impl Default for TronSettings {
    fn default() -> Self {
        TronSettings {
            api_key_env: None,
            expiration_secs: d_tron_expiration(),
            owner_address: None,
        }
    }
}

/// `[chains.X.near]`: settings of the NEAR adapter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearSettings {
    /// The treasury's account id (`treasury.testnet`); `signer` holds its full-access key
    /// (32-byte ed25519 seed or 64-byte keypair).
    pub account_id: String,
    /// Pools to read besides the current and next validators (pools that may still hold
    /// our stake after leaving the validator set).
    #[serde(default)]
    pub extra_pools: Vec<String>,
}

/// `[chains.X.evm]`: settings of an EVM adapter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvmSettings {
    /// Chain id transactions are signed for (BSC 56, BSC testnet 97, Sonic 146, Sonic
    /// Blaze testnet 57054, Ethereum 1 and Sepolia 11155111 for POL, Ronin 2020 and Saigon
    /// 2021 for AXS, ApeChain 33139 and Curtis 33111 for APE); the node must agree.
    pub chain_id: u64,
    /// Blocks on top of a receipt (its own included) before an operation is confirmed.
    #[serde(default = "d_confirmations")]
    pub confirmations: u64,
    /// Cap on `maxFeePerGas`, wei (default 100 gwei).
    #[serde(default = "d_max_fee")]
    pub max_fee_per_gas_wei: u64,
    /// Cap on the priority fee (tip), wei (default 2 gwei).
    #[serde(default = "d_max_tip")]
    pub max_priority_fee_per_gas_wei: u64,
    /// First block of the treasury's staking history, where reward accounting and log
    /// scans start: a number, or `"env:VAR"` naming a variable that holds it. Required
    /// when `rpc_url` is not on loopback (a real network: scanning from block 0 would
    /// take the whole chain's history); a local node may leave it out (0).
    #[serde(default)]
    pub start_block: Option<StartBlock>,
    /// Largest block range one `eth_getLogs` asks for: the RPC's limit (default 5 000;
    /// `softstake doctor` checks the RPC serves it). History longer than 200 of these is
    /// read a page per sync.
    #[serde(default = "d_log_range")]
    pub log_range_blocks: u64,
    /// The staking contract, an address or `"env:VAR"` (default: the chain's; BSC StakeHub
    /// `0x0000000000000000000000000000000000002002`, Sonic SFC
    /// `0xFC00FACE00000000000000000000000000000000`, Polygon StakeManager
    /// `0x5e3Ef299fDDf15eAa0432E6e66473ace8c13D908` on Ethereum, `0x4AE8…08bE` on Sepolia,
    /// the AXS staking pool `0x05b0bb3c1c320b280501b86706c3551995bc8571` on Ronin,
    /// ApeChain's ArbInfo precompile `0x…65`).
    #[serde(default)]
    pub staking_contract: Option<String>,
    /// APE only: the most native yield a sync window may show, basis points a year of
    /// what the treasury held (default 2000, twice ApeChain's published 10 % APY). Growth
    /// above it is refused as an undeclared custody deposit (`softstake flow`).
    #[serde(default)]
    pub max_yield_apr_bps: Option<u32>,
}

/// `evm.start_block`: a block number, or `"env:VAR"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum StartBlock {
    /// The block number.
    Number(u64),
    /// `env:VAR`: the variable holding the block number.
    Env(String),
}

impl StartBlock {
    /// The block number; `symbol` names the chain in errors.
    ///
    /// # Errors
    /// A source that is not `env:VAR`, an unset variable, or a value that is not a block
    /// number.
    pub fn resolve(&self, symbol: &str) -> std::result::Result<u64, String> {
        match self {
            StartBlock::Number(n) => Ok(*n),
            StartBlock::Env(source) => {
                let var = source.strip_prefix("env:").filter(|v| !v.is_empty()).ok_or_else(|| {
                    format!("chains.{symbol}.evm.start_block: {source:?} is neither a block number nor env:VAR")
                })?;
                let value = std::env::var(var).map_err(|_| {
                    format!("chains.{symbol}.evm.start_block: {var} is not set (the block of the treasury's first stake operation)")
                })?;
                value
                    .trim()
                    .parse()
                    .map_err(|_| format!("chains.{symbol}.evm.start_block: {var} = {value:?} is not a block number"))
            }
        }
    }
}

fn d_log_range() -> u64 {
    5_000
}

fn d_confirmations() -> u64 {
    3
}
fn d_max_fee() -> u64 {
    100_000_000_000
}
fn d_max_tip() -> u64 {
    2_000_000_000
}

fn d_confirm_polls() -> u32 {
    90
}

fn d_sync_interval() -> u64 {
    300
}

/// Roles of API clients (see `proto/softstake/v1/softstake.proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The exchange's ledger feed and account actions.
    Ingest,
    /// Read-only views.
    Reader,
    /// Treasury users: approvals, acknowledgements.
    Treasury,
    /// The reward allocator.
    Allocator,
    /// Everything.
    Admin,
}

/// One API client: a bearer token (stored as its SHA-256) and its roles.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiClient {
    /// Name, recorded with what the client does (approvals, acknowledgements).
    pub name: String,
    /// Lower-case hex SHA-256 of the bearer token (`softstake hash-token` prints it).
    /// Give this or `token_sha256_env`.
    #[serde(default)]
    pub token_sha256: String,
    /// The environment variable holding `token_sha256`, read when the configuration is
    /// loaded (for a deployment whose file is public, e.g. the Docker image's).
    #[serde(default)]
    pub token_sha256_env: Option<String>,
    /// Roles.
    pub roles: Vec<Role>,
}

/// The daemon's settings (`softstake run`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// gRPC listen address.
    #[serde(default = "d_grpc")]
    pub grpc_addr: String,
    /// Binance-compatible REST listen address.
    #[serde(default = "d_rest")]
    pub rest_addr: String,
    /// Prometheus metrics and health listen address.
    #[serde(default = "d_metrics")]
    pub metrics_addr: String,
    /// Scheduler tick, seconds.
    #[serde(default = "d_tick")]
    pub tick_secs: u64,
    /// A leader's lease on a token lasts this long without renewal, seconds; a standby
    /// takes the token over once it lapses (default 30; at least 2 × `tick_secs`).
    #[serde(default = "d_lease_ttl")]
    pub lease_ttl_secs: u64,
    /// Distribution of day d starts this long after its end, seconds (default 00:05).
    #[serde(default = "d_distribute_after")]
    pub distribute_after_secs: u64,
    /// A day not distributed this long after its end raises an alert, seconds (08:00).
    #[serde(default = "d_distribute_deadline")]
    pub distribute_deadline_secs: u64,
    /// TLS certificate (PEM) for gRPC and REST; TLS is on when both files are given.
    #[serde(default)]
    pub tls_cert: Option<String>,
    /// TLS private key (PEM).
    #[serde(default)]
    pub tls_key: Option<String>,
    /// API clients.
    #[serde(default)]
    pub clients: Vec<ApiClient>,
    /// Refuse a signed REST request seen before within its `recvWindow` (default on): a
    /// captured request cannot be replayed; a client retrying signs again.
    #[serde(default = "d_true")]
    pub rest_replay_guard: bool,
    /// Rate, time, concurrency and size limits of the APIs.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// `[service.limits]`: what one client may cost the service. Defaults follow Binance's
/// published limits for the REST API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// REST request weight per client IP per minute (Binance: 12 000; each soft-staking
    /// endpoint weighs 50).
    #[serde(default = "d_ip_weight")]
    pub rest_ip_weight_per_min: u32,
    /// REST request weight per API key per minute (Binance's UID limit: 180 000).
    #[serde(default = "d_key_weight")]
    pub rest_key_weight_per_min: u32,
    /// gRPC calls per configured client per second.
    #[serde(default = "d_grpc_calls")]
    pub grpc_calls_per_client_per_sec: u32,
    /// A request not answered in this long is cut off, milliseconds (REST: 503; gRPC:
    /// `CANCELLED`/`DEADLINE_EXCEEDED`).
    #[serde(default = "d_request_timeout")]
    pub request_timeout_ms: u64,
    /// Requests served at once per API (REST, gRPC); more wait their turn, within the
    /// timeout.
    #[serde(default = "d_concurrency")]
    pub max_concurrent_requests: usize,
    /// Largest request body (REST) or message (gRPC), bytes.
    #[serde(default = "d_body")]
    pub max_request_bytes: usize,
}

fn d_ip_weight() -> u32 {
    12_000
}
fn d_key_weight() -> u32 {
    180_000
}
fn d_grpc_calls() -> u32 {
    50
}
fn d_request_timeout() -> u64 {
    10_000
}
fn d_concurrency() -> usize {
    64
}
fn d_body() -> usize {
    1 << 20
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            rest_ip_weight_per_min: d_ip_weight(),
            rest_key_weight_per_min: d_key_weight(),
            grpc_calls_per_client_per_sec: d_grpc_calls(),
            request_timeout_ms: d_request_timeout(),
            max_concurrent_requests: d_concurrency(),
            max_request_bytes: d_body(),
        }
    }
}

impl LimitsConfig {
    /// Checks bounds purely (no I/O).
    pub fn validate(&self) -> Result<(), String> {
        if self.rest_ip_weight_per_min < 50 || self.rest_key_weight_per_min < 50 {
            return Err(
                "service.limits: rest_ip_weight_per_min and rest_key_weight_per_min must be at least 50 (one request)"
                    .into(),
            );
        }
        if self.grpc_calls_per_client_per_sec == 0 {
            return Err("service.limits.grpc_calls_per_client_per_sec: must be at least 1".into());
        }
        if !(100..=600_000).contains(&self.request_timeout_ms) {
            return Err(format!(
                "service.limits.request_timeout_ms: {} is not in 100..=600000",
                self.request_timeout_ms
            ));
        }
        if !(1..=100_000).contains(&self.max_concurrent_requests) {
            return Err(format!(
                "service.limits.max_concurrent_requests: {} is not in 1..=100000",
                self.max_concurrent_requests
            ));
        }
        if !(1_024..=(64 << 20)).contains(&self.max_request_bytes) {
            return Err(format!(
                "service.limits.max_request_bytes: {} is not in 1 KiB..=64 MiB",
                self.max_request_bytes
            ));
        }
        Ok(())
    }
}

fn d_true() -> bool {
    true
}

fn d_grpc() -> String {
    "127.0.0.1:50051".into()
}
fn d_rest() -> String {
    "127.0.0.1:8080".into()
}
fn d_metrics() -> String {
    "127.0.0.1:9100".into()
}
fn d_tick() -> u64 {
    10
}
fn d_lease_ttl() -> u64 {
    30
}
fn d_distribute_after() -> u64 {
    300
}
fn d_distribute_deadline() -> u64 {
    8 * 3_600
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            grpc_addr: d_grpc(),
            rest_addr: d_rest(),
            metrics_addr: d_metrics(),
            tick_secs: d_tick(),
            lease_ttl_secs: d_lease_ttl(),
            distribute_after_secs: d_distribute_after(),
            distribute_deadline_secs: d_distribute_deadline(),
            tls_cert: None,
            tls_key: None,
            clients: Vec::new(),
            rest_replay_guard: true,
            limits: LimitsConfig::default(),
        }
    }
}

fn d_rate() -> u32 {
    10
}
fn d_series() -> String {
    "solana".into()
}

/// Treasury settings shared by all tokens.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreasuryConfig {
    /// Reconciliation drift (ledger vs chain) tolerated before moves freeze, bps of the
    /// position.
    #[serde(default = "d_drift")]
    pub drift_tolerance_bps: u32,
    /// Days of net-outflow history the buffer planner looks at (at least the unbonding
    /// period is used).
    #[serde(default = "d_history")]
    pub outflow_history_days: u32,
}

fn d_drift() -> u32 {
    1
}
fn d_history() -> u32 {
    90
}

impl Default for TreasuryConfig {
    fn default() -> Self {
        TreasuryConfig {
            drift_tolerance_bps: d_drift(),
            outflow_history_days: d_history(),
        }
    }
}

/// The exchange's balance feed (`[feed.nats]`): NATS JetStream, a subject per token
/// (`<subject_prefix>.<TOKEN>`) and a durable pull consumer per token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsFeedConfig {
    /// Server URL, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// The JetStream stream holding the feed (created with the subjects if missing).
    #[serde(default = "d_stream")]
    pub stream: String,
    /// Subjects are `<subject_prefix>.<TOKEN>`.
    #[serde(default = "d_subject_prefix")]
    pub subject_prefix: String,
    /// Durable consumer names are `<consumer>-<TOKEN>`.
    #[serde(default = "d_consumer")]
    pub consumer: String,
    /// Messages fetched (and committed in one transaction) per batch.
    #[serde(default = "d_batch")]
    pub batch: usize,
    /// How long a fetch waits for messages, milliseconds.
    #[serde(default = "d_fetch_wait")]
    pub fetch_wait_ms: u64,
    /// A message not acknowledged this long after delivery is delivered again, seconds.
    #[serde(default = "d_ack_wait")]
    pub ack_wait_secs: u64,
    /// Where poison messages go, with their error in headers (a stream of its own,
    /// `<stream>_DEAD`, keeps them).
    #[serde(default = "d_dead_letter")]
    pub dead_letter_subject: String,
    /// Tokens consumed (default: every token with a chain).
    #[serde(default)]
    pub tokens: Option<Vec<String>>,
}

fn d_stream() -> String {
    "SOFTSTAKE_BALANCES".into()
}
fn d_subject_prefix() -> String {
    "softstake.balances".into()
}
fn d_consumer() -> String {
    "softstake-ingest".into()
}
fn d_batch() -> usize {
    1_000
}
fn d_fetch_wait() -> u64 {
    1_000
}
fn d_ack_wait() -> u64 {
    30
}
fn d_dead_letter() -> String {
    "softstake.dead.balances".into()
}

/// Where the daemon reads the balance feed from (besides gRPC `IngestBalances`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// NATS JetStream.
    pub nats: NatsFeedConfig,
}

impl NatsFeedConfig {
    /// Checks names and bounds purely (no I/O).
    pub fn validate(&self, registry: &TokenRegistry) -> Result<(), String> {
        let name_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let subject_ok = |s: &str| !s.is_empty() && !s.contains(['*', '>', ' ']) && s.split('.').all(|t| !t.is_empty());
        if !self.url.starts_with("nats://") && !self.url.starts_with("tls://") {
            return Err(format!(
                "feed.nats.url: {:?} (expected nats://HOST:PORT or tls://HOST:PORT)",
                self.url
            ));
        }
        if !name_ok(&self.stream) || !name_ok(&self.consumer) {
            return Err("feed.nats.stream and .consumer: letters, digits, '_' and '-' only".into());
        }
        if !subject_ok(&self.subject_prefix) || !subject_ok(&self.dead_letter_subject) {
            return Err("feed.nats.subject_prefix and .dead_letter_subject: dot-separated tokens, no wildcards".into());
        }
        if self
            .dead_letter_subject
            .starts_with(&format!("{}.", self.subject_prefix))
        {
            return Err(
                "feed.nats.dead_letter_subject: must not be under subject_prefix (the feed's stream would take it)"
                    .into(),
            );
        }
        if !(1..=100_000).contains(&self.batch) {
            return Err(format!("feed.nats.batch: {} is not in 1..=100000", self.batch));
        }
        if !(1..=60_000).contains(&self.fetch_wait_ms) {
            return Err(format!(
                "feed.nats.fetch_wait_ms: {} is not in 1..=60000",
                self.fetch_wait_ms
            ));
        }
        if !(1..=3_600).contains(&self.ack_wait_secs) {
            return Err(format!(
                "feed.nats.ack_wait_secs: {} is not in 1..=3600",
                self.ack_wait_secs
            ));
        }
        for t in self.tokens.iter().flatten() {
            registry
                .get(t)
                .map_err(|_| format!("feed.nats.tokens: {t} is not in the token registry"))?;
        }
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    network: String,
    tokens: String,
    data_dir: String,
    #[serde(default)]
    db_url: Option<String>,
    #[serde(default = "d_max_accounts")]
    max_accounts_per_close: usize,
    #[serde(default)]
    treasury: TreasuryConfig,
    #[serde(default)]
    service: ServiceConfig,
    #[serde(default)]
    chains: BTreeMap<String, ChainConfig>,
    #[serde(default)]
    feed: Option<FeedConfig>,
    #[serde(default)]
    pkcs11: Option<Pkcs11Config>,
}

/// `[pkcs11]`: the PKCS#11 module holding the treasury keys that `signer =
/// "pkcs11:token=…;object=…"` names (production signing: the private keys never leave
/// the token).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The module's shared library (`/usr/lib/softhsm/libsofthsm2.so`, a vendor's).
    pub module: PathBuf,
    /// The environment variable holding the token's user PIN (never the PIN itself).
    #[serde(default = "d_pin_env")]
    pub pin_env: String,
}

fn d_pin_env() -> String {
    "SOFTSTAKE_PKCS11_PIN".into()
}

impl Pkcs11Config {
    /// The adapters' settings.
    #[cfg(feature = "pkcs11")]
    pub fn settings(&self) -> softstake_adapters::pkcs11::Pkcs11Settings {
        softstake_adapters::pkcs11::Pkcs11Settings {
            module: self.module.clone(),
            pin_env: self.pin_env.clone(),
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.module.as_os_str().is_empty() {
            return Err("pkcs11.module: empty (the PKCS#11 library's path)".into());
        }
        let var_ok = !self.pin_env.is_empty() && self.pin_env.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !var_ok {
            return Err(format!(
                "pkcs11.pin_env: {:?} is not an environment variable name",
                self.pin_env
            ));
        }
        Ok(())
    }
}

fn d_max_accounts() -> usize {
    20_000_000
}

/// A validated network configuration.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Network name (`devnet`, `testnet`, `mainnet`).
    pub network: String,
    /// The token registry.
    pub registry: TokenRegistry,
    /// Folder for the SQLite file and reports.
    pub data_dir: PathBuf,
    /// Database URL (default: SQLite file in `data_dir`).
    pub db_url: String,
    /// Bound on accounts tracked by one day close.
    pub max_accounts_per_close: usize,
    /// Treasury settings.
    pub treasury: TreasuryConfig,
    /// Daemon settings.
    pub service: ServiceConfig,
    /// Chain access per token symbol.
    pub chains: BTreeMap<String, ChainConfig>,
    /// The balance feed the daemon consumes, if any.
    pub feed: Option<FeedConfig>,
    /// The PKCS#11 module of `pkcs11:` signers, if any.
    pub pkcs11: Option<Pkcs11Config>,
    /// Where the configuration came from (a path or "embedded").
    pub origin: String,
}

impl NetworkConfig {
    /// Parses and validates a network file; `tokens_text` is the registry it names.
    pub fn from_toml_str(text: &str, tokens_text: &str, origin: &str) -> Result<NetworkConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: origin.to_string(),
            message,
        };
        let raw: RawNetwork = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let registry = TokenRegistry::from_toml_str(tokens_text).map_err(|e| ConfigError::Invalid {
            path: format!("{origin} → {}", raw.tokens),
            message: e.to_string(),
        })?;
        for (symbol, chain) in &raw.chains {
            registry
                .get(symbol)
                .map_err(|_| invalid(format!("chains.{symbol}: not in the token registry")))?;
            if !matches!(chain.reward_series.as_str(), "solana" | "cardano") {
                return Err(invalid(format!(
                    "chains.{symbol}.reward_series: {:?} (expected \"solana\" or \"cardano\")",
                    chain.reward_series
                )));
            }
            if chain.rate_limit_per_sec == 0 {
                return Err(invalid(format!(
                    "chains.{symbol}.rate_limit_per_sec: must be at least 1"
                )));
            }
            if chain.fault_rate_bps > 10_000 {
                return Err(invalid(format!("chains.{symbol}.fault_rate_bps: above 10 000")));
            }
            let evm_adapter = crate::chains::EVM_ADAPTERS.iter().any(|(n, _)| *n == chain.adapter);
            match (&chain.evm, evm_adapter) {
                (None, true) => {
                    return Err(invalid(format!(
                        "chains.{symbol}.evm: required by adapter {:?} (chain_id at least)",
                        chain.adapter
                    )))
                }
                // a simulated chain may carry the settings its `--chain X=bsc` override uses
                (Some(_), false) if chain.adapter != "sim" => {
                    return Err(invalid(format!(
                        "chains.{symbol}.evm: only EVM adapters take it, not {:?}",
                        chain.adapter
                    )))
                }
                (Some(e), _) => {
                    if e.chain_id == 0 || e.confirmations == 0 || e.max_fee_per_gas_wei == 0 || e.log_range_blocks == 0
                    {
                        return Err(invalid(format!(
                            "chains.{symbol}.evm: chain_id, confirmations, max_fee_per_gas_wei and log_range_blocks must be above 0"
                        )));
                    }
                    if e.max_priority_fee_per_gas_wei > e.max_fee_per_gas_wei {
                        return Err(invalid(format!(
                            "chains.{symbol}.evm.max_priority_fee_per_gas_wei: above max_fee_per_gas_wei"
                        )));
                    }
                    match e.max_yield_apr_bps {
                        Some(_) if chain.adapter != "apechain" => {
                            return Err(invalid(format!(
                                "chains.{symbol}.evm.max_yield_apr_bps: only the apechain adapter takes it"
                            )))
                        }
                        Some(bps) if bps == 0 || bps > 100_000 => {
                            return Err(invalid(format!(
                                "chains.{symbol}.evm.max_yield_apr_bps: {bps} is not in 1..=100000"
                            )))
                        }
                        _ => {}
                    }
                    if let Some(StartBlock::Env(source)) = &e.start_block {
                        if source.strip_prefix("env:").is_none_or(str::is_empty) {
                            return Err(invalid(format!(
                                "chains.{symbol}.evm.start_block: {source:?} is neither a block number nor env:VAR"
                            )));
                        }
                    }
                    let remote = chain
                        .rpc_url
                        .as_deref()
                        .is_some_and(|u| !softstake_adapters::preflight::is_loopback_url(u));
                    // APE accounts from checkpoints at the head: no history to start from
                    if evm_adapter && chain.adapter != "apechain" && remote && e.start_block.is_none() {
                        return Err(invalid(format!(
                            "chains.{symbol}.evm.start_block: required for a remote network ({}): the block of the \
                             treasury's first stake operation (a new treasury: the current head), or \"env:VAR\"",
                            chain.rpc_url.as_deref().unwrap_or_default()
                        )));
                    }
                }
                (None, false) => {}
            }
            match (&chain.near, chain.adapter.as_str()) {
                (None, "near") => {
                    return Err(invalid(format!(
                        "chains.{symbol}.near: required by adapter \"near\" (account_id at least)"
                    )))
                }
                (Some(_), a) if a != "near" && a != "sim" => {
                    return Err(invalid(format!(
                        "chains.{symbol}.near: only the near adapter takes it, not {a:?}"
                    )))
                }
                (Some(n), _) if n.account_id.trim().is_empty() => {
                    return Err(invalid(format!("chains.{symbol}.near.account_id: empty")))
                }
                _ => {}
            }
            check_cosmos(symbol, chain).map_err(invalid)?;
            check_cardano(symbol, chain).map_err(invalid)?;
            check_iota(symbol, chain).map_err(invalid)?;
            check_algorand(symbol, chain).map_err(invalid)?;
            check_ton(symbol, chain).map_err(invalid)?;
            check_aptos(symbol, chain).map_err(invalid)?;
            match (&chain.tron, chain.adapter.as_str()) {
                (Some(_), a) if a != "tron" && a != "sim" => {
                    return Err(invalid(format!(
                        "chains.{symbol}.tron: only the tron adapter takes it, not {a:?}"
                    )))
                }
                (Some(t), _) if t.expiration_secs == 0 || t.expiration_secs > 86_400 => {
                    return Err(invalid(format!(
                    "chains.{symbol}.tron.expiration_secs: {} is not in 1..=86400 (java-tron refuses more than 24 h)",
                    t.expiration_secs
                )))
                }
                (Some(t), _) if t.api_key_env.as_deref().is_some_and(|v| v.trim().is_empty()) => {
                    return Err(invalid(format!("chains.{symbol}.tron.api_key_env: empty")))
                }
                _ => {}
            }
        }
        let mut raw = raw;
        for c in &mut raw.service.clients {
            match (c.token_sha256.is_empty(), c.token_sha256_env.as_deref()) {
                (true, Some(var)) => {
                    c.token_sha256 = std::env::var(var).map(|v| v.trim().to_string()).map_err(|_| {
                        invalid(format!(
                            "service.clients {:?}: token_sha256_env names {var}, which is not set (put `softstake hash-token -` of the token there)",
                            c.name
                        ))
                    })?;
                }
                (false, Some(_)) => {
                    return Err(invalid(format!(
                        "service.clients {:?}: token_sha256 and token_sha256_env exclude each other",
                        c.name
                    )))
                }
                _ => {}
            }
            if c.token_sha256.len() != 64
                || !c
                    .token_sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(invalid(format!(
                    "service.clients {:?}: token_sha256 must be 64 lower-case hex characters (softstake hash-token TOKEN)",
                    c.name
                )));
            }
            if c.roles.is_empty() {
                return Err(invalid(format!("service.clients {:?}: at least one role", c.name)));
            }
        }
        if raw.service.tls_cert.is_some() != raw.service.tls_key.is_some() {
            return Err(invalid("service: tls_cert and tls_key go together".into()));
        }
        let svc = &raw.service;
        if svc.tick_secs == 0 || svc.lease_ttl_secs < svc.tick_secs.saturating_mul(2) {
            return Err(invalid(format!(
                "service.lease_ttl_secs: {} must be at least twice tick_secs ({}), which must be at least 1: a leader renews its lease every tick",
                svc.lease_ttl_secs, svc.tick_secs
            )));
        }
        raw.service.limits.validate().map_err(invalid)?;
        if raw.max_accounts_per_close == 0 {
            return Err(invalid("max_accounts_per_close: must be at least 1".into()));
        }
        if let Some(f) = &raw.feed {
            f.nats.validate(&registry).map_err(invalid)?;
        }
        if let Some(p) = &raw.pkcs11 {
            p.validate().map_err(invalid)?;
        }
        for (symbol, c) in &raw.chains {
            if c.signer.as_deref().is_some_and(|s| s.starts_with("pkcs11:")) && raw.pkcs11.is_none() {
                return Err(invalid(format!(
                    "chains.{symbol}.signer is a PKCS#11 key: add a [pkcs11] section with the module's path"
                )));
            }
        }
        let data_dir = PathBuf::from(&raw.data_dir);
        let db_url = raw
            .db_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("softstake.db").display()));
        Ok(NetworkConfig {
            network: raw.network,
            registry,
            data_dir,
            db_url,
            max_accounts_per_close: raw.max_accounts_per_close,
            treasury: raw.treasury,
            service: raw.service,
            chains: raw.chains,
            feed: raw.feed,
            pkcs11: raw.pkcs11,
            origin: origin.to_string(),
        })
    }
}

/// SHA-256 of the bearer tokens published in this repository (`devnet-admin`,
/// `devnet-reader` in `config/devnet.toml`): anyone can present them, so a network with
/// real chains refuses to start with them.
pub const PUBLIC_TOKEN_SHA256: [&str; 2] = [
    "81967d07a20a3a9b3e52a93790d41d2f22068a174f220b0cce97813e94c60948",
    "2e31aa71997b6bc4e55e67e18a82b2a7bae7c2648e1ae340cc92c648ffd10c93",
];

/// True when `addr` (`HOST:PORT`) listens on loopback only (`127.0.0.0/8`, `::1`,
/// `localhost`).
pub fn is_loopback_addr(addr: &str) -> bool {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(a) => a.ip().is_loopback(),
        Err(_) => addr.rsplit_once(':').is_some_and(|(h, _)| h == "localhost"),
    }
}

impl NetworkConfig {
    /// True when no real funds can be at stake: the network is `devnet` or `localnet`, or
    /// every chain is simulated (`sim`, `sim-remote`).
    pub fn is_devnet_class(&self) -> bool {
        matches!(self.network.as_str(), "devnet" | "localnet")
            || self
                .chains
                .values()
                .all(|c| matches!(c.adapter.as_str(), "sim" | "sim-remote"))
    }

    /// What `softstake run` refuses on a network with real chains
    /// ([`NetworkConfig::is_devnet_class`] false), checked before anything starts: a REST
    /// or gRPC address off loopback without TLS, an API client with a token published in
    /// this repository ([`PUBLIC_TOKEN_SHA256`]), a manual clock, and on `mainnet` a raw
    /// key signer (`env:`/`file:`).
    ///
    /// # Errors
    /// Every refusal at once, joined by `; `.
    pub fn check_deployment(&self, manual_clock: bool) -> Result<(), String> {
        if self.is_devnet_class() {
            return Ok(());
        }
        let mut why = Vec::new();
        let tls = self.service.tls_cert.is_some();
        for (name, addr) in [
            ("grpc_addr", &self.service.grpc_addr),
            ("rest_addr", &self.service.rest_addr),
        ] {
            if !tls && !is_loopback_addr(addr) {
                why.push(format!(
                    "service.{name} = {addr:?} is not loopback and TLS is off (set service.tls_cert and tls_key)"
                ));
            }
        }
        for c in &self.service.clients {
            if PUBLIC_TOKEN_SHA256.contains(&c.token_sha256.as_str()) {
                why.push(format!(
                    "service.clients {:?}: its token is published in this repository; configure a secret one",
                    c.name
                ));
            }
        }
        if manual_clock {
            why.push("--manual-clock moves business time by API; it is for devnet and tests only".into());
        }
        if self.network == "mainnet" {
            for (symbol, c) in &self.chains {
                if c.signer
                    .as_deref()
                    .is_some_and(|s| s.starts_with("env:") || s.starts_with("file:"))
                {
                    why.push(format!(
                        "chains.{symbol}.signer: a raw key in a file or an environment variable is for devnet and testnets; mainnet keys belong in an HSM (signer = \"pkcs11:token=…;object=…\" with [pkcs11])"
                    ));
                }
            }
        }
        if why.is_empty() {
            return Ok(());
        }
        Err(format!(
            "refusing to start network {:?} (real chains): {}",
            self.network,
            why.join("; ")
        ))
    }
}

/// `[chains.X.cosmos]`: required by the cosmos adapter, taken by no other real adapter,
/// and within range.
fn check_cosmos(symbol: &str, chain: &ChainConfig) -> Result<(), String> {
    let c = match (&chain.cosmos, chain.adapter.as_str()) {
        (None, "cosmos") => {
            return Err(format!(
                "chains.{symbol}.cosmos: required by adapter \"cosmos\" (grpc_url and chain_id at least)"
            ))
        }
        (Some(_), a) if a != "cosmos" && a != "sim" => {
            return Err(format!(
                "chains.{symbol}.cosmos: only the cosmos adapter takes it, not {a:?}"
            ))
        }
        (None, _) => return Ok(()),
        (Some(c), _) => c,
    };
    for (name, v) in [
        ("grpc_url", &c.grpc_url),
        ("chain_id", &c.chain_id),
        ("account_prefix", &c.account_prefix),
    ] {
        if v.trim().is_empty() {
            return Err(format!("chains.{symbol}.cosmos.{name}: empty"));
        }
    }
    if c.gas_per_message == 0 {
        return Err(format!("chains.{symbol}.cosmos.gas_per_message: 0"));
    }
    if !(1..=100_000).contains(&c.timeout_blocks) {
        return Err(format!(
            "chains.{symbol}.cosmos.timeout_blocks: {} is not in 1..=100000",
            c.timeout_blocks
        ));
    }
    c.gas_price_fraction()
        .map(|_| ())
        .map_err(|e| format!("chains.{symbol}.cosmos.{e}"))
}

/// The aptos adapter's pinned chain id (`genesis_hash`): a number 0-255 when set.
fn check_aptos(symbol: &str, chain: &ChainConfig) -> Result<(), String> {
    match (chain.adapter.as_str(), chain.genesis_hash.as_deref()) {
        ("aptos", Some(id)) if id.parse::<u8>().is_err() => Err(format!(
            "chains.{symbol}.genesis_hash: {id:?} is not an Aptos chain id (1 mainnet, 2 testnet, 4 local)"
        )),
        _ => Ok(()),
    }
}

/// `[chains.X.algorand]`: required by the algorand adapter, taken by no other, with an
/// http(s) indexer URL and one to 64 staking accounts.
fn check_algorand(symbol: &str, chain: &ChainConfig) -> Result<(), String> {
    match (&chain.algorand, chain.adapter.as_str()) {
        (None, "algorand") => Err(format!(
            "chains.{symbol}.algorand: required by adapter \"algorand\" (indexer_url, staking_accounts)"
        )),
        (Some(_), a) if a != "algorand" && a != "sim" => Err(format!(
            "chains.{symbol}.algorand: only the algorand adapter takes it, not {a:?}"
        )),
        (Some(c), _) if !(c.indexer_url.starts_with("http://") || c.indexer_url.starts_with("https://")) => {
            Err(format!(
                "chains.{symbol}.algorand.indexer_url: {:?} is not an http(s) URL",
                c.indexer_url
            ))
        }
        (Some(c), _) if c.staking_accounts.is_empty() || c.staking_accounts.len() > 64 => Err(format!(
            "chains.{symbol}.algorand.staking_accounts: {} accounts; list 1 to 64 accounts rekeyed to the custody key",
            c.staking_accounts.len()
        )),
        _ => Ok(()),
    }
}

/// `[chains.X.ton]`: required by the ton adapter, taken by no other, with 1 to 256 pools
/// (nominator and single-nominator together);
/// a pinned `genesis_hash` must be the global id (a 32-bit integer).
fn check_ton(symbol: &str, chain: &ChainConfig) -> Result<(), String> {
    match (&chain.ton, chain.adapter.as_str()) {
        (None, "ton") => Err(format!("chains.{symbol}.ton: required by adapter \"ton\" (pools)")),
        (Some(_), a) if a != "ton" && a != "sim" => {
            Err(format!("chains.{symbol}.ton: only the ton adapter takes it, not {a:?}"))
        }
        (Some(c), _) if c.pools.len() + c.single_nominator_pools.len() == 0 || c.pools.len() + c.single_nominator_pools.len() > 256 => Err(format!(
            "chains.{symbol}.ton.pools: {} nominator and {} single-nominator pools; list 1 to 256 in all",
            c.pools.len(),
            c.single_nominator_pools.len()
        )),
        (Some(_), "ton") => match chain.genesis_hash.as_deref().map(str::parse::<i32>) {
            Some(Err(_)) => Err(format!(
                "chains.{symbol}.genesis_hash: TON pins its global id (ConfigParam 19), a 32-bit integer (mainnet -239, testnet -3)"
            )),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// `[chains.X.iota]`: required by the iota adapter, taken by no other, with an http(s) URL.
fn check_iota(symbol: &str, chain: &ChainConfig) -> Result<(), String> {
    match (&chain.iota, chain.adapter.as_str()) {
        (None, "iota") => Err(format!(
            "chains.{symbol}.iota: required by adapter \"iota\" (graphql_url)"
        )),
        (Some(_), a) if a != "iota" && a != "sim" => Err(format!(
            "chains.{symbol}.iota: only the iota adapter takes it, not {a:?}"
        )),
        (Some(c), _) if !(c.graphql_url.starts_with("http://") || c.graphql_url.starts_with("https://")) => {
            Err(format!(
                "chains.{symbol}.iota.graphql_url: {:?} is not an http(s) URL",
                c.graphql_url
            ))
        }
        _ => Ok(()),
    }
}

/// `[chains.X.cardano]`: required by the cardano adapter, taken by no other real adapter,
/// and within range.
fn check_cardano(symbol: &str, chain: &ChainConfig) -> Result<(), String> {
    let c = match (&chain.cardano, chain.adapter.as_str()) {
        (None, "cardano") => {
            return Err(format!(
                "chains.{symbol}.cardano: required by adapter \"cardano\" (network_id at least)"
            ))
        }
        (Some(_), a) if a != "cardano" && a != "sim" => {
            return Err(format!(
                "chains.{symbol}.cardano: only the cardano adapter takes it, not {a:?}"
            ))
        }
        (None, _) => return Ok(()),
        (Some(c), _) => c,
    };
    if c.network_id > 1 {
        return Err(format!(
            "chains.{symbol}.cardano.network_id: {} is not 0 or 1",
            c.network_id
        ));
    }
    if !(1..=100).contains(&c.stake_keys) {
        return Err(format!(
            "chains.{symbol}.cardano.stake_keys: {} is not in 1..=100",
            c.stake_keys
        ));
    }
    if !(1..=86_400).contains(&c.ttl_slots) {
        return Err(format!(
            "chains.{symbol}.cardano.ttl_slots: {} is not in 1..=86400",
            c.ttl_slots
        ));
    }
    if !(1..=2_160).contains(&c.confirmations) {
        return Err(format!(
            "chains.{symbol}.cardano.confirmations: {} is not in 1..=2160",
            c.confirmations
        ));
    }
    if c.project_id_env.as_deref().is_some_and(|v| v.trim().is_empty()) {
        return Err(format!("chains.{symbol}.cardano.project_id_env: empty"));
    }
    if c.account > 0x7FFF_FFFF {
        return Err(format!(
            "chains.{symbol}.cardano.account: {} is not below 2^31 (CIP-1852 accounts are hardened)",
            c.account
        ));
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Loads the network configuration: `explicit` if given; else `config/<network>.toml`
/// in the working directory; else, for `devnet`, the embedded copy.
pub fn load(network: &str, explicit: Option<&Path>) -> Result<NetworkConfig, ConfigError> {
    let candidate = explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("config").join(format!("{network}.toml")));
    if explicit.is_some() || candidate.exists() {
        let text = read(&candidate)?;
        let tokens_rel: String = toml::from_str::<toml::Table>(&text)
            .ok()
            .and_then(|t| t.get("tokens").and_then(|v| v.as_str()).map(str::to_string))
            .unwrap_or_else(|| "tokens.toml".into());
        let tokens_path = candidate.parent().unwrap_or(Path::new(".")).join(tokens_rel);
        let tokens_text = read(&tokens_path)?;
        return NetworkConfig::from_toml_str(&text, &tokens_text, &candidate.display().to_string());
    }
    if network == "devnet" {
        return NetworkConfig::from_toml_str(EMBEDDED_DEVNET, EMBEDDED_TOKENS, "embedded config/devnet.toml");
    }
    Err(ConfigError::Read {
        path: candidate.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such network file"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_embedded_devnet_is_valid() {
        let c = NetworkConfig::from_toml_str(EMBEDDED_DEVNET, EMBEDDED_TOKENS, "embedded").unwrap();
        assert_eq!(c.network, "devnet");
        assert_eq!(c.registry.len(), 19);
        assert!(c.db_url.starts_with("sqlite://"));
    }

    const DOCKER: &str = include_str!("../../../docker/softstake.toml");

    #[test]
    fn success_docker_token_from_env_and_fail_without_it() {
        let var = "SOFTSTAKE_TEST_DOCKER_ADMIN_SHA256";
        let text = DOCKER.replace("SOFTSTAKE_ADMIN_TOKEN_SHA256", var);
        let e = NetworkConfig::from_toml_str(&text, EMBEDDED_TOKENS, "docker.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains(var) && e.contains("not set"), "{e}");
        let hash = "a".repeat(64);
        std::env::set_var(var, &hash);
        let c = NetworkConfig::from_toml_str(&text, EMBEDDED_TOKENS, "docker.toml").unwrap();
        assert_eq!(c.service.clients[0].token_sha256, hash);
        assert!(
            c.service
                .clients
                .iter()
                .all(|c| !PUBLIC_TOKEN_SHA256.contains(&c.token_sha256.as_str())),
            "no published token in the Docker config"
        );
        let both = text.replace("token_sha256_env", "token_sha256 = \"aa\"\ntoken_sha256_env");
        let e = NetworkConfig::from_toml_str(&both, EMBEDDED_TOKENS, "docker.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exclude each other"), "{e}");
    }

    /// The devnet file with real adapters' names: a network with real chains.
    fn real_network(extra_service: &str) -> NetworkConfig {
        let mut c = NetworkConfig::from_toml_str(EMBEDDED_DEVNET, EMBEDDED_TOKENS, "embedded").unwrap();
        c.network = "mainnet".into();
        for chain in c.chains.values_mut() {
            chain.adapter = "near".into();
        }
        if extra_service == "public" {
            c.service.grpc_addr = "0.0.0.0:50051".into();
        }
        c
    }

    #[test]
    fn fail_deployment_refusals_on_real_networks() {
        let devnet = NetworkConfig::from_toml_str(EMBEDDED_DEVNET, EMBEDDED_TOKENS, "embedded").unwrap();
        assert!(devnet.is_devnet_class());
        devnet.check_deployment(true).unwrap();
        // the devnet file's published tokens on a real network
        let c = real_network("");
        assert!(!c.is_devnet_class());
        let e = c.check_deployment(false).unwrap_err();
        assert!(e.contains("devnet-admin") && e.contains("published"), "{e}");
        let mut c = real_network("public");
        c.service.clients.clear();
        let e = c.check_deployment(true).unwrap_err();
        assert!(e.contains("grpc_addr") && e.contains("TLS is off"), "{e}");
        assert!(e.contains("--manual-clock"), "{e}");
        assert!(!e.contains("rest_addr"), "REST stays on loopback: {e}");
        c.service.tls_cert = Some("c.pem".into());
        c.service.tls_key = Some("k.pem".into());
        c.check_deployment(false).unwrap();
        // a raw key on mainnet
        let sym = c.chains.keys().next().unwrap().clone();
        c.chains.get_mut(&sym).unwrap().signer = Some("file:/keys/k.hex".into());
        let e = c.check_deployment(false).unwrap_err();
        assert!(e.contains(&format!("chains.{sym}.signer")) && e.contains("HSM"), "{e}");
        // the same chain on an HSM key starts
        c.chains.get_mut(&sym).unwrap().signer = Some("pkcs11:token=treasury;object=k".into());
        c.check_deployment(false).unwrap();
        c.chains.get_mut(&sym).unwrap().signer = Some("env:KEY".into());
        c.network = "testnet".into();
        c.check_deployment(false).unwrap();
        assert!(is_loopback_addr("127.0.0.1:1") && is_loopback_addr("[::1]:1") && is_loopback_addr("localhost:80"));
        assert!(!is_loopback_addr("0.0.0.0:1") && !is_loopback_addr("example.com:443"));
    }

    #[test]
    fn fail_pkcs11_settings_checked() {
        let signer = "[chains.SOL]\nadapter = \"sim\"\nsigner = \"pkcs11:token=t;object=o\"\n";
        let base = "network = \"testnet\"\ntokens = \"tokens.toml\"\ndata_dir = \"d\"\n";
        let e = NetworkConfig::from_toml_str(&format!("{base}{signer}"), EMBEDDED_TOKENS, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("add a [pkcs11] section"), "{e}");
        for (pkcs11, want) in [
            ("[pkcs11]\nmodule = \"\"\n", "pkcs11.module: empty"),
            ("[pkcs11]\nmodule = \"/m.so\"\npin_env = \"A B\"\n", "pkcs11.pin_env"),
            ("[pkcs11]\nmodule = \"/m.so\"\npin = \"1234\"\n", "unknown field"),
        ] {
            let e = NetworkConfig::from_toml_str(&format!("{base}{pkcs11}{signer}"), EMBEDDED_TOKENS, "x.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{pkcs11}: {e}");
        }
        let ok = NetworkConfig::from_toml_str(
            &format!("{base}[pkcs11]\nmodule = \"/m.so\"\n{signer}"),
            EMBEDDED_TOKENS,
            "x.toml",
        )
        .unwrap();
        assert_eq!(ok.pkcs11.unwrap().pin_env, "SOFTSTAKE_PKCS11_PIN");
    }

    #[test]
    fn fail_unknown_key() {
        let text = format!("{EMBEDDED_DEVNET}\nsurprise = 1\n");
        let e = NetworkConfig::from_toml_str(&text, EMBEDDED_TOKENS, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("surprise"), "{e}");
    }

    #[test]
    fn fail_chain_for_unknown_token() {
        let text = format!("{EMBEDDED_DEVNET}\n[chains.DOGE]\nadapter = \"sim\"\n");
        let e = NetworkConfig::from_toml_str(&text, EMBEDDED_TOKENS, "x.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("chains.DOGE"), "{e}");
    }

    const LOCAL: &str = "network = \"t\"\ntokens = \"tokens.toml\"\ndata_dir = \"/tmp/x\"\n";

    /// Each `[chains…]` snippet is refused with an error containing its text.
    fn expect_invalid<S: AsRef<str>>(cases: &[(S, &str)]) {
        for (chains, want) in cases {
            let chains = chains.as_ref();
            let e = NetworkConfig::from_toml_str(&format!("{LOCAL}{chains}"), EMBEDDED_TOKENS, "x.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{chains}: {e}");
        }
    }

    #[test]
    fn success_repo_localnet_is_valid() {
        let text = include_str!("../../../config/localnet.toml");
        let cfg = NetworkConfig::from_toml_str(text, EMBEDDED_TOKENS, "config/localnet.toml").unwrap();
        let bnb = &cfg.chains["BNB"];
        assert_eq!(bnb.adapter, "bsc");
        assert_eq!(bnb.evm.as_ref().map(|e| (e.chain_id, e.confirmations)), Some((56, 2)));
        for (token, adapter, chain_id) in [("AXS", "ronin", 2020), ("APE", "apechain", 33139)] {
            let c = &cfg.chains[token];
            assert_eq!(c.adapter, adapter, "{token}");
            assert_eq!(c.evm.as_ref().map(|e| e.chain_id), Some(chain_id), "{token}");
        }
        let iota = &cfg.chains["IOTA"];
        assert_eq!(
            (
                iota.adapter.as_str(),
                iota.iota.as_ref().map(|c| c.graphql_url.as_str())
            ),
            ("iota", Some("http://127.0.0.1:9125/graphql"))
        );
        let egld = &cfg.chains["EGLD"];
        assert_eq!(
            (egld.adapter.as_str(), egld.genesis_hash.as_deref()),
            ("multiversx", Some("localnet"))
        );
        let algo = &cfg.chains["ALGO"];
        assert_eq!(
            (
                algo.adapter.as_str(),
                algo.algorand.as_ref().map(|a| a.staking_accounts.len())
            ),
            ("algorand", Some(4))
        );
        let ton = &cfg.chains["TON"];
        assert_eq!(
            (
                ton.adapter.as_str(),
                ton.genesis_hash.as_deref(),
                ton.ton.as_ref().map(|t| t.pools.len())
            ),
            ("ton", Some("-77"), Some(6))
        );
    }

    #[test]
    fn fail_evm_settings_checked() {
        let cases = [
            ("[chains.BNB]\nadapter = \"bsc\"\n", "chains.BNB.evm: required"),
            (
                "[chains.SOL]\nadapter = \"solana\"\n[chains.SOL.evm]\nchain_id = 1\n",
                "only EVM adapters",
            ),
            ("[chains.BNB]\nadapter = \"bsc\"\n[chains.BNB.evm]\nchain_id = 0\n", "must be above 0"),
            (
                "[chains.BNB]\nadapter = \"bsc\"\n[chains.BNB.evm]\nchain_id = 56\nmax_fee_per_gas_wei = 5\nmax_priority_fee_per_gas_wei = 6\n",
                "max_priority_fee_per_gas_wei",
            ),
            ("[chains.BNB]\nadapter = \"bsc\"\n[chains.BNB.evm]\nchain_id = 56\ngas = 1\n", "unknown field"),
            (
                "[chains.BNB]\nadapter = \"bsc\"\nrpc_url = \"https://bsc-dataseed.bnbchain.org\"\n[chains.BNB.evm]\nchain_id = 56\n",
                "chains.BNB.evm.start_block: required for a remote network",
            ),
            (
                "[chains.BNB]\nadapter = \"bsc\"\n[chains.BNB.evm]\nchain_id = 56\nstart_block = \"SOFTSTAKE_X\"\n",
                "neither a block number nor env:VAR",
            ),
            (
                "[chains.BNB]\nadapter = \"bsc\"\n[chains.BNB.evm]\nchain_id = 56\nmax_yield_apr_bps = 100\n",
                "only the apechain adapter takes it",
            ),
            (
                "[chains.APE]\nadapter = \"apechain\"\n[chains.APE.evm]\nchain_id = 33139\nmax_yield_apr_bps = 0\n",
                "max_yield_apr_bps: 0 is not in 1..=100000",
            ),
        ];
        expect_invalid(&cases);
        // a simulated chain may carry the settings of its `--chain BNB=bsc` override
        let ok = "[chains.BNB]\nadapter = \"sim\"\n[chains.BNB.evm]\nchain_id = 97\n";
        assert!(NetworkConfig::from_toml_str(&format!("{LOCAL}{ok}"), EMBEDDED_TOKENS, "x.toml").is_ok());
        // a local node needs no start block; a remote one takes a number or env:VAR
        for ok in [
            "[chains.BNB]\nadapter = \"bsc\"\nrpc_url = \"http://127.0.0.1:8545\"\n[chains.BNB.evm]\nchain_id = 56\n",
            "[chains.BNB]\nadapter = \"bsc\"\nrpc_url = \"https://x.example\"\n[chains.BNB.evm]\nchain_id = 56\nstart_block = 1\n",
            "[chains.APE]\nadapter = \"apechain\"\nrpc_url = \"https://x.example\"\n[chains.APE.evm]\nchain_id = 33111\nmax_yield_apr_bps = 1500\n",
            "[chains.BNB]\nadapter = \"bsc\"\nrpc_url = \"https://x.example\"\n[chains.BNB.evm]\nchain_id = 56\nstart_block = \"env:SOFTSTAKE_BNB_START_BLOCK\"\n",
        ] {
            let r = NetworkConfig::from_toml_str(&format!("{LOCAL}{ok}"), EMBEDDED_TOKENS, "x.toml");
            assert!(r.is_ok(), "{ok}: {r:?}");
        }
    }

    #[test]
    fn success_repo_testnet_is_valid() {
        let text = include_str!("../../../config/testnet.toml");
        let cfg = NetworkConfig::from_toml_str(text, EMBEDDED_TOKENS, "config/testnet.toml").unwrap();
        assert_eq!(cfg.network, "testnet");
        for (token, adapter) in [
            ("SOL", "solana"),
            ("AXS", "ronin"),
            ("NEAR", "near"),
            ("TRX", "tron"),
            ("ATOM", "cosmos"),
            ("ADA", "cardano"),
            ("BNB", "bsc"),
            ("S", "sonic"),
            ("POL", "polygon"),
            ("APE", "apechain"),
            ("SUI", "sui"),
            ("APT", "aptos"),
            ("IOTA", "iota"),
            ("EGLD", "multiversx"),
            ("ALGO", "algorand"),
            ("TON", "ton"),
        ] {
            let c = &cfg.chains[token];
            assert_eq!(c.adapter, adapter, "{token}");
            assert!(
                c.signer.as_deref().is_some_and(|s| s.starts_with("env:")),
                "{token}: a key from the environment"
            );
        }
        assert_eq!(
            cfg.chains["IOTA"].iota.as_ref().map(|i| i.graphql_url.as_str()),
            Some("https://graphql.testnet.iota.cafe")
        );
        let evm = |t: &str| cfg.chains[t].evm.as_ref().map(|e| e.chain_id);
        assert_eq!(
            (evm("BNB"), evm("S"), evm("POL"), evm("APE"), evm("AXS")),
            (Some(97), Some(57_054), Some(11_155_111), Some(33_111), Some(2021))
        );
        // every real adapter configured: the sixteen chains with one
        let real: Vec<&str> = cfg
            .chains
            .values()
            .map(|c| c.adapter.as_str())
            .filter(|a| *a != "sim")
            .collect();
        assert_eq!(real.len(), 16, "{real:?}");
        // EVM start blocks and the AXS pool come from the environment (APE needs none: it
        // is accounted from checkpoints at the head)
        assert_eq!(cfg.chains["APE"].evm.as_ref().unwrap().start_block, None);
        for t in ["BNB", "S", "POL", "AXS"] {
            let e = cfg.chains[t].evm.as_ref().unwrap();
            assert_eq!(
                e.start_block,
                Some(StartBlock::Env(format!("env:SOFTSTAKE_{t}_START_BLOCK"))),
                "{t}"
            );
        }
        assert_eq!(
            cfg.chains["SOL"].genesis_hash.as_deref(),
            Some("EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG")
        );
        // Sui's chain id, its genesis checkpoint's digest
        assert_eq!(
            cfg.chains["SUI"].genesis_hash.as_deref(),
            Some("69WiPg3DAQiwdxfncX6wYQ2siKwAe6L9BZthQea3JNMD")
        );
    }

    #[test]
    fn fail_aptos_chain_id_checked() {
        let cases = [
            (
                "[chains.APT]\nadapter = \"aptos\"\ngenesis_hash = \"testnet\"\n",
                "not an Aptos chain id",
            ),
            (
                "[chains.APT]\nadapter = \"aptos\"\ngenesis_hash = \"256\"\n",
                "not an Aptos chain id",
            ),
        ];
        expect_invalid(&cases);
        let ok = "[chains.APT]\nadapter = \"aptos\"\ngenesis_hash = \"2\"\n";
        assert!(NetworkConfig::from_toml_str(&format!("{LOCAL}{ok}"), EMBEDDED_TOKENS, "x.toml").is_ok());
    }

    #[test]
    fn fail_algorand_settings_checked() {
        let cases = [
            ("[chains.ALGO]\nadapter = \"algorand\"\n", "algorand: required by adapter"),
            (
                "[chains.ALGO]\nadapter = \"algorand\"\n[chains.ALGO.algorand]\nindexer_url = \"idx\"\nstaking_accounts = [\"A\"]\n",
                "is not an http(s) URL",
            ),
            (
                "[chains.ALGO]\nadapter = \"algorand\"\n[chains.ALGO.algorand]\nindexer_url = \"http://x\"\nstaking_accounts = []\n",
                "list 1 to 64 accounts",
            ),
            (
                "[chains.ALGO]\nadapter = \"aptos\"\n[chains.ALGO.algorand]\nindexer_url = \"http://x\"\nstaking_accounts = [\"A\"]\n",
                "only the algorand adapter takes it",
            ),
            (
                "[chains.ALGO]\nadapter = \"algorand\"\n[chains.ALGO.algorand]\nindexer_url = \"http://x\"\nstaking_accounts = [\"A\"]\ntoken = \"t\"\n",
                "unknown field",
            ),
        ];
        expect_invalid(&cases);
    }

    #[test]
    fn fail_ton_settings_checked() {
        let cases = [
            ("[chains.TON]\nadapter = \"ton\"\n", "ton: required by adapter"),
            (
                "[chains.TON]\nadapter = \"ton\"\n[chains.TON.ton]\npools = []\n",
                "list 1 to 256 in all",
            ),
            (
                "[chains.TON]\nadapter = \"tron\"\n[chains.TON.ton]\npools = [\"p\"]\n",
                "only the ton adapter takes it",
            ),
            (
                "[chains.TON]\nadapter = \"ton\"\ngenesis_hash = \"abc\"\n[chains.TON.ton]\npools = [\"p\"]\n",
                "global id",
            ),
            (
                "[chains.TON]\nadapter = \"ton\"\n[chains.TON.ton]\npools = [\"p\"]\nseqno = 1\n",
                "unknown field",
            ),
        ];
        expect_invalid(&cases);
    }

    #[test]
    fn fail_iota_settings_checked() {
        let cases = [
            ("[chains.IOTA]\nadapter = \"iota\"\n", "iota: required by adapter"),
            (
                "[chains.IOTA]\nadapter = \"iota\"\n[chains.IOTA.iota]\ngraphql_url = \"graphql.example\"\n",
                "is not an http(s) URL",
            ),
            (
                "[chains.IOTA]\nadapter = \"sui\"\n[chains.IOTA.iota]\ngraphql_url = \"http://x\"\n",
                "only the iota adapter takes it",
            ),
            (
                "[chains.IOTA]\nadapter = \"iota\"\n[chains.IOTA.iota]\ngraphql_url = \"http://x\"\nurl = \"y\"\n",
                "unknown field",
            ),
        ];
        expect_invalid(&cases);
        let ok =
            "[chains.IOTA]\nadapter = \"iota\"\n[chains.IOTA.iota]\ngraphql_url = \"http://127.0.0.1:9125/graphql\"\n";
        assert!(NetworkConfig::from_toml_str(&format!("{LOCAL}{ok}"), EMBEDDED_TOKENS, "x.toml").is_ok());
    }

    #[test]
    fn fail_cardano_settings_checked() {
        let cases = [
            ("[chains.ADA]\nadapter = \"cardano\"\n", "required by adapter"),
            (
                "[chains.ADA]\nadapter = \"cardano\"\n[chains.ADA.cardano]\nnetwork_id = 2\n",
                "not 0 or 1",
            ),
            (
                "[chains.ADA]\nadapter = \"cardano\"\n[chains.ADA.cardano]\nnetwork_id = 0\nstake_keys = 0\n",
                "not in 1..=100",
            ),
            (
                "[chains.ADA]\nadapter = \"cardano\"\n[chains.ADA.cardano]\nnetwork_id = 0\nproject_id = \"x\"\n",
                "unknown field",
            ),
            (
                "[chains.ADA]\nadapter = \"cardano\"\n[chains.ADA.cardano]\nnetwork_id = 0\nconfirmations = 0\n",
                "confirmations: 0 is not in 1..=2160",
            ),
            (
                "[chains.ADA]\nadapter = \"cardano\"\n[chains.ADA.cardano]\nnetwork_id = 0\naccount = 2147483648\n",
                "account: 2147483648 is not below 2^31",
            ),
        ];
        expect_invalid(&cases);
        let ok = "[chains.ADA]\nadapter = \"cardano\"\n[chains.ADA.cardano]\nnetwork_id = 0\n";
        let cfg = NetworkConfig::from_toml_str(&format!("{LOCAL}{ok}"), EMBEDDED_TOKENS, "x.toml").unwrap();
        let c = cfg.chains["ADA"].cardano.clone().unwrap();
        assert_eq!(
            (c.stake_keys, c.ttl_slots, c.confirmations, c.account),
            (10, 600, 15, 0)
        );
    }

    #[test]
    fn fail_cosmos_settings_checked() {
        let good = "[chains.ATOM.cosmos]\ngrpc_url = \"http://127.0.0.1:9090\"\nchain_id = \"c\"\n";
        let cases = [
            ("[chains.ATOM]\nadapter = \"cosmos\"\n".to_string(), "required by adapter"),
            (
                format!("[chains.ATOM]\nadapter = \"cosmos\"\n{good}gas_price = \"-1\"\n"),
                "gas_price",
            ),
            (
                format!("[chains.ATOM]\nadapter = \"cosmos\"\n{good}timeout_blocks = 0\n"),
                "not in 1..=100000",
            ),
            (
                format!("[chains.ATOM]\nadapter = \"cosmos\"\n{good}denom = \"uatom\"\n"),
                "unknown field",
            ),
            (
                "[chains.BNB]\nadapter = \"bsc\"\n[chains.BNB.evm]\nchain_id = 56\n[chains.BNB.cosmos]\ngrpc_url = \"x\"\nchain_id = \"c\"\n".to_string(),
                "only the cosmos adapter",
            ),
        ];
        expect_invalid(&cases);
        let ok = format!("[chains.ATOM]\nadapter = \"cosmos\"\n{good}");
        let cfg = NetworkConfig::from_toml_str(&format!("{LOCAL}{ok}"), EMBEDDED_TOKENS, "x.toml").unwrap();
        let c = cfg.chains["ATOM"].cosmos.clone().unwrap();
        assert_eq!((c.gas_per_message, c.timeout_blocks), (300_000, 100));
        assert_eq!(c.gas_price_fraction().unwrap(), (5, 1_000), "0.005 uatom per gas");
    }

    #[test]
    fn fail_tron_settings_checked() {
        let cases = [
            (
                "[chains.BNB]\nadapter = \"bsc\"\n[chains.BNB.evm]\nchain_id = 56\n[chains.BNB.tron]\n",
                "only the tron adapter",
            ),
            (
                "[chains.TRX]\nadapter = \"tron\"\n[chains.TRX.tron]\nexpiration_secs = 90000\n",
                "not in 1..=86400",
            ),
            (
                "[chains.TRX]\nadapter = \"tron\"\n[chains.TRX.tron]\napi_key_env = \"\"\n",
                "api_key_env: empty",
            ),
            (
                "[chains.TRX]\nadapter = \"tron\"\n[chains.TRX.tron]\napi_key = \"x\"\n",
                "unknown field",
            ),
        ];
        expect_invalid(&cases);
        let ok = "[chains.TRX]\nadapter = \"tron\"\n";
        let cfg = NetworkConfig::from_toml_str(&format!("{LOCAL}{ok}"), EMBEDDED_TOKENS, "x.toml").unwrap();
        assert_eq!(cfg.chains["TRX"].tron, None, "the section is optional");
    }

    #[test]
    fn fail_near_settings_checked() {
        let cases = [
            ("[chains.NEAR]\nadapter = \"near\"\n", "chains.NEAR.near: required"),
            (
                "[chains.BNB]\nadapter = \"bsc\"\n[chains.BNB.evm]\nchain_id = 56\n[chains.BNB.near]\naccount_id = \"a.near\"\n",
                "only the near adapter",
            ),
            ("[chains.NEAR]\nadapter = \"near\"\n[chains.NEAR.near]\naccount_id = \" \"\n", "account_id: empty"),
            (
                "[chains.NEAR]\nadapter = \"near\"\n[chains.NEAR.near]\naccount_id = \"a.near\"\npools = []\n",
                "unknown field",
            ),
        ];
        expect_invalid(&cases);
        let text = include_str!("../../../config/localnet.toml");
        let cfg = NetworkConfig::from_toml_str(text, EMBEDDED_TOKENS, "config/localnet.toml").unwrap();
        assert_eq!(
            cfg.chains["NEAR"].near.as_ref().map(|n| n.account_id.as_str()),
            Some("treasury.localnet")
        );
    }
}

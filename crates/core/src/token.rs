//! The token registry: what the program knows about each token (decimals, minimum
//! holding, cap, fee, unbonding period, buffer and validator policy), read from
//! `config/tokens.toml`.
//!
//! Parsing is pure ([`TokenRegistry::from_toml_str`] takes the file's text) and strict:
//! unknown keys are errors (`deny_unknown_fields`), amounts are exact decimal strings in
//! token units, and every error names the token and the field.
//!
//! ```toml
//! [program]
//! excluded_jurisdictions = ["US", "CU", "IR", "KP", "SY"]
//!
//! [tokens.SOL]
//! chain = "solana"
//! decimals = 9
//! base_unit = "lamports"
//! min_holding = "1"
//! cap = "10000"
//! fee_bps = 1000
//! unbonding_period_secs = 172800
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::amount::{Amount, MAX_DECIMALS};
use crate::error::{CoreError, Result};

/// Basis points in one whole (100 %).
pub const BPS_DENOMINATOR: u32 = 10_000;

/// Default list of excluded jurisdictions (ISO 3166-1 alpha-2): the United States and the
/// countries under comprehensive sanctions programs (Cuba, Iran, North Korea, Syria).
/// Sanctioned regions without their own alpha-2 code (Crimea, the so-called DNR/LNR) must
/// be screened upstream by the exchange's KYC.
pub const DEFAULT_EXCLUDED_JURISDICTIONS: [&str; 5] = ["US", "CU", "IR", "KP", "SY"];

/// Liquidity-buffer policy for a token (see [`crate::buffer`] for the formula).
///
/// All ratios are basis points (1/10 000).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferPolicy {
    /// Floor of the buffer as a share of the custodial total P, bps.
    #[serde(default = "d_min_buffer_ratio")]
    pub min_buffer_ratio_bps: u32,
    /// Quantile of the window's net outflow used as the statistical buffer, bps
    /// (9 500 = the 95th percentile).
    #[serde(default = "d_outflow_quantile")]
    pub outflow_quantile_bps: u32,
    /// Multiplier on the quantile, bps (15 000 = ×1.5).
    #[serde(default = "d_safety_factor")]
    pub safety_factor_bps: u32,
    /// Act only when staked is below `target · (1 − low)` …, bps.
    #[serde(default = "d_watermark")]
    pub low_watermark_bps: u32,
    /// … or above `target · (1 + high)`, bps.
    #[serde(default = "d_watermark")]
    pub high_watermark_bps: u32,
    /// Cap on stake moved (delegated plus undelegated) per chain epoch as a share of P, bps.
    #[serde(default = "d_max_move")]
    pub max_move_per_epoch_bps: u32,
    /// Plans moving more than this share of P need an explicit approval, bps.
    #[serde(default = "d_approval")]
    pub approval_threshold_bps: u32,
}

fn d_min_buffer_ratio() -> u32 {
    1_000
}
fn d_outflow_quantile() -> u32 {
    9_500
}
fn d_safety_factor() -> u32 {
    15_000
}
fn d_watermark() -> u32 {
    200
}
fn d_max_move() -> u32 {
    2_000
}
fn d_approval() -> u32 {
    500
}

impl Default for BufferPolicy {
    fn default() -> Self {
        BufferPolicy {
            min_buffer_ratio_bps: d_min_buffer_ratio(),
            outflow_quantile_bps: d_outflow_quantile(),
            safety_factor_bps: d_safety_factor(),
            low_watermark_bps: d_watermark(),
            high_watermark_bps: d_watermark(),
            max_move_per_epoch_bps: d_max_move(),
            approval_threshold_bps: d_approval(),
        }
    }
}

/// Validator-selection policy for a token (see [`crate::validator`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorPolicy {
    /// At most this many validators hold our stake.
    #[serde(default = "d_max_validators")]
    pub max_validators: u32,
    /// No validator holds more than this share of our pool's stake, bps.
    #[serde(default = "d_max_pool_share")]
    pub max_pool_share_bps: u32,
    /// Our stake is at most this share of a validator's total stake, bps.
    #[serde(default = "d_max_validator_share")]
    pub max_validator_stake_share_bps: u32,
    /// Validators whose commission is above this are never chosen, bps.
    #[serde(default = "d_max_commission")]
    pub max_commission_bps: u32,
    /// The validators that together hold this share of the network's stake form the
    /// "superminority"; we never add stake to them, bps (3 334 ≈ one third).
    #[serde(default = "d_superminority")]
    pub superminority_bps: u32,
}

fn d_max_validators() -> u32 {
    8
}
fn d_max_pool_share() -> u32 {
    2_500
}
fn d_max_validator_share() -> u32 {
    1_000
}
fn d_max_commission() -> u32 {
    1_000
}
fn d_superminority() -> u32 {
    3_334
}

impl Default for ValidatorPolicy {
    fn default() -> Self {
        ValidatorPolicy {
            max_validators: d_max_validators(),
            max_pool_share_bps: d_max_pool_share(),
            max_validator_stake_share_bps: d_max_validator_share(),
            max_commission_bps: d_max_commission(),
            superminority_bps: d_superminority(),
        }
    }
}

/// One token, validated. Amounts are in base units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    /// Upper-case symbol, e.g. `SOL`.
    pub symbol: String,
    /// Chain family the adapter is chosen by, e.g. `solana`, `bsc`, `near`.
    pub chain: String,
    /// Fractional digits of one whole token (9 for SOL = lamports, 24 for NEAR).
    pub decimals: u8,
    /// Name of the base unit (`lamports`, `yoctoNEAR`, `sun`, `lovelace`, `wei`, …).
    pub base_unit: String,
    /// Daily average balances below this earn nothing, base units.
    pub min_holding: Amount,
    /// Daily average balances above this count only up to it, base units.
    pub cap: Amount,
    /// Platform fee on realized rewards, bps (numerator over 10 000).
    pub fee_bps: u32,
    /// Time from undelegate to withdrawable on the chain, seconds.
    pub unbonding_period_secs: u64,
    /// The chain's epoch (or era, cycle, round) length, seconds; 0 when the chain has none.
    pub epoch_secs: u64,
    /// Minimum amount per delegation on the chain, base units.
    pub min_delegation: Amount,
    /// Where the numbers come from (free text, for auditors).
    pub source: String,
    /// Liquidity-buffer policy.
    pub buffer: BufferPolicy,
    /// Validator-selection policy.
    pub validators: ValidatorPolicy,
}

impl TokenConfig {
    /// Parses a decimal string in this token's units into base units.
    pub fn parse_amount(&self, s: &str) -> Result<Amount> {
        Amount::parse_units(s, self.decimals)
    }

    /// Formats base units as token units.
    pub fn format_amount(&self, a: Amount) -> String {
        a.to_units_string(self.decimals)
    }

    /// Appends an amount in token units to `out` (no allocation when it has room).
    pub fn write_amount(&self, a: Amount, out: &mut String) {
        crate::amount::write_units(a.0, self.decimals, out);
    }
}

/// The registry: tokens by symbol plus program-wide settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRegistry {
    tokens: BTreeMap<String, TokenConfig>,
    excluded_jurisdictions: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    program: RawProgram,
    tokens: BTreeMap<String, RawToken>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    excluded_jurisdictions: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    chain: String,
    decimals: u8,
    base_unit: String,
    min_holding: String,
    cap: String,
    fee_bps: u32,
    unbonding_period_secs: u64,
    #[serde(default)]
    epoch_secs: u64,
    #[serde(default = "zero_string")]
    min_delegation: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    buffer: BufferPolicy,
    #[serde(default)]
    validators: ValidatorPolicy,
}

fn zero_string() -> String {
    "0".to_string()
}

impl TokenRegistry {
    /// Parses and validates a `tokens.toml` text.
    ///
    /// Errors ([`CoreError::TokenConfig`]): TOML syntax (with line and column), unknown
    /// keys, a symbol that is not upper-case ASCII letters/digits, `decimals > 38`,
    /// amounts that do not parse exactly in the token's units (field named),
    /// `min_holding > cap`, `fee_bps > 10 000`, ratios above 100 % where they must not be,
    /// a jurisdiction that is not two upper-case letters.
    pub fn from_toml_str(text: &str) -> Result<TokenRegistry> {
        let raw: RawFile = toml::from_str(text).map_err(|e| CoreError::TokenConfig(e.to_string()))?;
        let mut tokens = BTreeMap::new();
        for (symbol, rt) in raw.tokens {
            let cfg = validate_token(&symbol, rt)?;
            tokens.insert(symbol, cfg);
        }
        if tokens.is_empty() {
            return Err(CoreError::TokenConfig("no [tokens.*] tables".into()));
        }
        let excluded = match raw.program.excluded_jurisdictions {
            Some(list) => list,
            None => DEFAULT_EXCLUDED_JURISDICTIONS.iter().map(|s| s.to_string()).collect(),
        };
        let mut excluded_jurisdictions = BTreeSet::new();
        for j in excluded {
            validate_jurisdiction(&j).map_err(|_| {
                CoreError::TokenConfig(format!(
                    "program.excluded_jurisdictions: {j:?} is not an ISO 3166-1 alpha-2 code"
                ))
            })?;
            excluded_jurisdictions.insert(j);
        }
        Ok(TokenRegistry {
            tokens,
            excluded_jurisdictions,
        })
    }

    /// The token with this symbol, or [`CoreError::UnknownToken`].
    pub fn get(&self, symbol: &str) -> Result<&TokenConfig> {
        self.tokens
            .get(symbol)
            .ok_or_else(|| CoreError::UnknownToken(symbol.to_string()))
    }

    /// All tokens in symbol order.
    pub fn iter(&self) -> impl Iterator<Item = &TokenConfig> {
        self.tokens.values()
    }

    /// Symbols in order.
    pub fn symbols(&self) -> impl Iterator<Item = &str> {
        self.tokens.keys().map(String::as_str)
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// True when there are no tokens (never, for a parsed registry).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether accounts in `jurisdiction` are excluded from the program.
    pub fn is_excluded(&self, jurisdiction: &str) -> bool {
        self.excluded_jurisdictions.contains(jurisdiction)
    }

    /// The excluded jurisdictions, sorted.
    pub fn excluded_jurisdictions(&self) -> impl Iterator<Item = &str> {
        self.excluded_jurisdictions.iter().map(String::as_str)
    }
}

/// Checks an ISO 3166-1 alpha-2 shaped code: exactly two upper-case ASCII letters.
pub fn validate_jurisdiction(code: &str) -> Result<()> {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(CoreError::InvalidJurisdiction {
            input: code.to_string(),
        })
    }
}

fn validate_token(symbol: &str, rt: RawToken) -> Result<TokenConfig> {
    let err = |field: &str, msg: String| CoreError::TokenConfig(format!("tokens.{symbol}.{field}: {msg}"));
    if symbol.is_empty() || symbol.len() > 12 || !symbol.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
        return Err(CoreError::TokenConfig(format!(
            "tokens.{symbol}: symbol must be 1–12 upper-case letters or digits"
        )));
    }
    if rt.decimals > MAX_DECIMALS {
        return Err(err("decimals", format!("{} > {MAX_DECIMALS}", rt.decimals)));
    }
    if rt.chain.trim().is_empty() {
        return Err(err("chain", "empty".into()));
    }
    let amount = |field: &str, s: &str| Amount::parse_units(s, rt.decimals).map_err(|e| err(field, e.to_string()));
    let min_holding = amount("min_holding", &rt.min_holding)?;
    let cap = amount("cap", &rt.cap)?;
    let min_delegation = amount("min_delegation", &rt.min_delegation)?;
    if min_holding > cap {
        return Err(err(
            "cap",
            format!("cap {} is below min_holding {}", rt.cap, rt.min_holding),
        ));
    }
    if rt.fee_bps > BPS_DENOMINATOR {
        return Err(err("fee_bps", format!("{} > {BPS_DENOMINATOR}", rt.fee_bps)));
    }
    let b = &rt.buffer;
    for (field, v) in [
        ("buffer.min_buffer_ratio_bps", b.min_buffer_ratio_bps),
        ("buffer.outflow_quantile_bps", b.outflow_quantile_bps),
        ("buffer.low_watermark_bps", b.low_watermark_bps),
        ("buffer.max_move_per_epoch_bps", b.max_move_per_epoch_bps),
        ("buffer.approval_threshold_bps", b.approval_threshold_bps),
        ("validators.max_pool_share_bps", rt.validators.max_pool_share_bps),
        (
            "validators.max_validator_stake_share_bps",
            rt.validators.max_validator_stake_share_bps,
        ),
        ("validators.max_commission_bps", rt.validators.max_commission_bps),
        ("validators.superminority_bps", rt.validators.superminority_bps),
    ] {
        if v > BPS_DENOMINATOR {
            return Err(err(field, format!("{v} > {BPS_DENOMINATOR} (100 %)")));
        }
    }
    if b.safety_factor_bps < BPS_DENOMINATOR {
        return Err(err(
            "buffer.safety_factor_bps",
            format!(
                "{} < {BPS_DENOMINATOR}: a safety factor below 1 shrinks the buffer",
                b.safety_factor_bps
            ),
        ));
    }
    if rt.validators.max_validators == 0 {
        return Err(err("validators.max_validators", "must be at least 1".into()));
    }
    Ok(TokenConfig {
        symbol: symbol.to_string(),
        chain: rt.chain,
        decimals: rt.decimals,
        base_unit: rt.base_unit,
        min_holding,
        cap,
        fee_bps: rt.fee_bps,
        unbonding_period_secs: rt.unbonding_period_secs,
        epoch_secs: rt.epoch_secs,
        min_delegation,
        source: rt.source,
        buffer: rt.buffer,
        validators: rt.validators,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOL: &str = r#"
[tokens.SOL]
chain = "solana"
decimals = 9
base_unit = "lamports"
min_holding = "1"
cap = "10000"
fee_bps = 1000
unbonding_period_secs = 172800
"#;

    #[test]
    fn success_parse_minimal() {
        let r = TokenRegistry::from_toml_str(SOL).unwrap();
        let t = r.get("SOL").unwrap();
        assert_eq!(t.min_holding, Amount(1_000_000_000));
        assert_eq!(t.cap, Amount(10_000_000_000_000));
        assert!(r.is_excluded("US"));
        assert!(!r.is_excluded("DE"));
        assert_eq!(t.buffer, BufferPolicy::default());
    }

    #[test]
    fn fail_unknown_key() {
        let text = format!("{SOL}colour = \"blue\"\n");
        let e = TokenRegistry::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("colour"), "{e}");
    }

    #[test]
    fn fail_too_many_decimals_names_field() {
        let text = SOL.replace("min_holding = \"1\"", "min_holding = \"0.0000000001\"");
        let e = TokenRegistry::from_toml_str(&text).unwrap_err().to_string();
        assert!(e.contains("tokens.SOL.min_holding"), "{e}");
    }

    #[test]
    fn fail_min_above_cap() {
        let text = SOL.replace("cap = \"10000\"", "cap = \"0.5\"");
        assert!(TokenRegistry::from_toml_str(&text).is_err());
    }

    #[test]
    fn fail_unknown_token_lookup() {
        let r = TokenRegistry::from_toml_str(SOL).unwrap();
        assert_eq!(r.get("DOGE").unwrap_err(), CoreError::UnknownToken("DOGE".into()));
    }

    #[test]
    fn fail_bad_jurisdiction() {
        let text = format!("[program]\nexcluded_jurisdictions = [\"usa\"]\n{SOL}");
        assert!(TokenRegistry::from_toml_str(&text).is_err());
    }
}

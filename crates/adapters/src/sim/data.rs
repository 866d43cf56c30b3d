//! The real public data bundled in `data/` (see `data/README.md` for sources and
//! licences), embedded at build time and parsed on first use.
//!
//! Amounts in the source files are decimal whole tokens with binary-float noise past the
//! 9th decimal (Solana) or integer strings of base units (Cardano, Cosmos); both are
//! converted to integer base units here, rounding half up at the token's last decimal.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::error::{AdapterError, Result};

const SOLANA_VALIDATORS: &str = include_str!("../../../../data/solana/validators_epoch842.csv");
const CARDANO_POOL_HISTORY: &str = include_str!("../../../../data/cardano/pools/pool-id-history.json");
const CARDANO_STAKES: &str = include_str!("../../../../data/cardano/epochs/number-stakes.json");
const CARDANO_STAKES_POOL: &str = include_str!("../../../../data/cardano/epochs/number-stakes-pool.json");
const COSMOS_VALIDATORS: &str = include_str!("../../../../data/cosmos/validators_cosmoshub3_height1685677.csv");
const TRON_WITNESSES: &str = include_str!("../../../../data/tron/super_representatives.csv");
const PRICES: &str = include_str!("../../../../data/exchange/binance_cex_assets_info.csv");

/// Seconds in Solana's epoch as used to scale the epoch-842 rates (432 000 slots × 0.4 s).
pub const SOLANA_EPOCH_SECS: u64 = 172_800;
/// Seconds in a Cardano epoch (5 days).
pub const CARDANO_EPOCH_SECS: u64 = 432_000;

fn bad(file: &str, msg: impl Into<String>) -> AdapterError {
    AdapterError::bad_input("data", format!("bundled {file}: {}", msg.into()))
}

/// Parses a non-negative decimal (possibly with more digits than `decimals`) into base
/// units, rounding half up at the last kept digit.
pub fn decimal_to_base(s: &str, decimals: u32) -> Option<u128> {
    let s = s.trim();
    if let Some((mantissa, exp)) = s.split_once(['e', 'E']) {
        return decimal_to_base(&shift_point(mantissa, exp.parse().ok()?)?, decimals);
    }
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = 10u128.checked_pow(decimals)?;
    let int_v: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let kept: String = frac.chars().take(decimals as usize).collect();
    let pad = decimals as usize - kept.len();
    let mut frac_v: u128 = if kept.is_empty() { 0 } else { kept.parse().ok()? };
    frac_v = frac_v.checked_mul(10u128.pow(pad as u32))?;
    let round_up = frac.chars().nth(decimals as usize).is_some_and(|c| c >= '5');
    int_v
        .checked_mul(scale)?
        .checked_add(frac_v)?
        .checked_add(u128::from(round_up))
}

/// Rewrites `mantissa · 10^exp` (e.g. `1.7493`, -5) as a plain decimal (`0.000017493`).
fn shift_point(mantissa: &str, exp: i32) -> Option<String> {
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if exp.unsigned_abs() > 64 || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = format!("{int}{frac}");
    let point = int.len() as i64 + i64::from(exp);
    Some(if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    })
}

/// A Solana validator in epoch 842.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolanaValidator {
    /// Vote account (what stake accounts delegate to), base58.
    pub vote: String,
    /// Node identity, base58.
    pub identity: String,
    /// Activated stake, lamports.
    pub stake_lamports: u128,
    /// Vote commission, percent.
    pub commission_pct: u32,
    /// Inflation rewards of the epoch before the validator/delegator split, lamports.
    pub inflation_lamports: u128,
}

/// The 986 validators of Solana epoch 842.
pub fn solana_validators() -> Result<&'static [SolanaValidator]> {
    static CELL: OnceLock<std::result::Result<Vec<SolanaValidator>, AdapterError>> = OnceLock::new();
    CELL.get_or_init(|| {
        let f = "solana/validators_epoch842.csv";
        let mut rdr = csv::Reader::from_reader(SOLANA_VALIDATORS.as_bytes());
        let mut out = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| bad(f, e.to_string()))?;
            let field = |n: usize| {
                rec.get(n)
                    .ok_or_else(|| bad(f, format!("row {}: missing column {n}", i + 2)))
            };
            let lamports = |n: usize| {
                field(n).and_then(|v| {
                    decimal_to_base(v, 9).ok_or_else(|| bad(f, format!("row {}: bad amount {v:?}", i + 2)))
                })
            };
            out.push(SolanaValidator {
                identity: field(0)?.to_string(),
                vote: field(1)?.to_string(),
                stake_lamports: lamports(2)?,
                commission_pct: field(3)?
                    .parse()
                    .map_err(|_| bad(f, format!("row {}: commission", i + 2)))?,
                inflation_lamports: lamports(5)?,
            });
        }
        Ok(out)
    })
    .as_ref()
    .map(Vec::as_slice)
    .map_err(Clone::clone)
}

/// One epoch of a Cardano pool's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardanoEpoch {
    /// Epoch number.
    pub epoch: u64,
    /// Pool rewards of the epoch before the operator's fees, lovelace.
    pub rewards_lovelace: u128,
    /// Active stake of the pool, lovelace.
    pub active_stake_lovelace: u128,
}

fn json_u128(v: &Value) -> Option<u128> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64().map(u128::from),
        _ => None,
    }
}

/// The longest pool history in the fixtures (pool `pool1r8lms…`, epochs 425–524),
/// epochs with zero active stake skipped.
pub fn cardano_pool_history() -> Result<&'static [CardanoEpoch]> {
    static CELL: OnceLock<std::result::Result<Vec<CardanoEpoch>, AdapterError>> = OnceLock::new();
    CELL.get_or_init(|| {
        let f = "cardano/pools/pool-id-history.json";
        let fixtures: Value = serde_json::from_str(CARDANO_POOL_HISTORY).map_err(|e| bad(f, e.to_string()))?;
        let arr = fixtures.as_array().ok_or_else(|| bad(f, "not an array"))?;
        let longest = arr
            .iter()
            .filter_map(|fx| fx.get("response").and_then(Value::as_array))
            .max_by_key(|r| r.len())
            .ok_or_else(|| bad(f, "no fixture with a response"))?;
        let mut out: Vec<CardanoEpoch> = longest
            .iter()
            .filter_map(|row| {
                Some(CardanoEpoch {
                    epoch: row.get("epoch")?.as_u64()?,
                    rewards_lovelace: json_u128(row.get("rewards")?)?,
                    active_stake_lovelace: json_u128(row.get("active_stake")?)?,
                })
            })
            .filter(|e| e.active_stake_lovelace > 0)
            .collect();
        out.sort_by_key(|e| e.epoch);
        if out.is_empty() {
            return Err(bad(f, "no usable epochs"));
        }
        Ok(out)
    })
    .as_ref()
    .map(Vec::as_slice)
    .map_err(Clone::clone)
}

/// Real per-delegator active stakes of Cardano mainnet (epochs 242 and 210), lovelace:
/// a heavy-tailed distribution of individual holdings.
pub fn cardano_delegator_stakes() -> Result<&'static [u128]> {
    static CELL: OnceLock<std::result::Result<Vec<u128>, AdapterError>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut out = Vec::new();
        for (f, text) in [
            ("cardano/epochs/number-stakes.json", CARDANO_STAKES),
            ("cardano/epochs/number-stakes-pool.json", CARDANO_STAKES_POOL),
        ] {
            let fixtures: Value = serde_json::from_str(text).map_err(|e| bad(f, e.to_string()))?;
            for fx in fixtures.as_array().ok_or_else(|| bad(f, "not an array"))? {
                for row in fx.get("response").and_then(Value::as_array).into_iter().flatten() {
                    if let Some(a) = row.get("amount").and_then(json_u128).filter(|a| *a > 0) {
                        out.push(a);
                    }
                }
            }
        }
        if out.is_empty() {
            return Err(bad("cardano/epochs", "no delegator stakes"));
        }
        Ok(out)
    })
    .as_ref()
    .map(Vec::as_slice)
    .map_err(Clone::clone)
}

/// A Cosmos Hub validator (cosmoshub-3, 2020).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CosmosValidator {
    /// `cosmosvaloper1…`.
    pub address: String,
    /// Moniker.
    pub name: String,
    /// Bonded tokens, uatom.
    pub tokens_uatom: u128,
    /// Commission, bps.
    pub commission_bps: u32,
}

/// The 125 Cosmos Hub validators.
pub fn cosmos_validators() -> Result<&'static [CosmosValidator]> {
    static CELL: OnceLock<std::result::Result<Vec<CosmosValidator>, AdapterError>> = OnceLock::new();
    CELL.get_or_init(|| {
        let f = "cosmos/validators_cosmoshub3_height1685677.csv";
        let mut rdr = csv::Reader::from_reader(COSMOS_VALIDATORS.as_bytes());
        let mut out = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| bad(f, e.to_string()))?;
            let g = |n: usize| rec.get(n).unwrap_or("");
            out.push(CosmosValidator {
                address: g(0).to_string(),
                name: g(1).to_string(),
                tokens_uatom: g(2).parse().map_err(|_| bad(f, format!("row {}: tokens", i + 2)))?,
                commission_bps: decimal_to_base(g(3), 4)
                    .and_then(|v| u32::try_from(v).ok())
                    .ok_or_else(|| bad(f, format!("row {}: commission", i + 2)))?,
            });
        }
        Ok(out)
    })
    .as_ref()
    .map(Vec::as_slice)
    .map_err(Clone::clone)
}

/// A TRON super representative candidate (2020 snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TronWitness {
    /// Witness address, base58 `T…`.
    pub address: String,
    /// Name.
    pub name: String,
    /// Votes received (1 vote per TRX of TRON Power).
    pub votes: u128,
    /// Share of rewards the witness keeps, percent.
    pub brokerage_pct: u32,
    /// Blocks produced.
    pub produced: u64,
    /// Blocks missed.
    pub missed: u64,
    /// One of the 27 active SRs.
    pub active: bool,
}

/// The 243 TRON witnesses.
pub fn tron_witnesses() -> Result<&'static [TronWitness]> {
    static CELL: OnceLock<std::result::Result<Vec<TronWitness>, AdapterError>> = OnceLock::new();
    CELL.get_or_init(|| {
        let f = "tron/super_representatives.csv";
        let mut rdr = csv::Reader::from_reader(TRON_WITNESSES.as_bytes());
        let mut out = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| bad(f, e.to_string()))?;
            let g = |n: usize| rec.get(n).unwrap_or("");
            let num = |n: usize| g(n).parse::<u64>().unwrap_or(0);
            out.push(TronWitness {
                address: g(0).to_string(),
                name: g(1).to_string(),
                votes: g(3).parse().map_err(|_| bad(f, format!("row {}: vote_count", i + 2)))?,
                brokerage_pct: g(4).parse().unwrap_or(20),
                produced: num(5),
                missed: num(6),
                active: g(9) == "true",
            });
        }
        Ok(out)
    })
    .as_ref()
    .map(Vec::as_slice)
    .map_err(Clone::clone)
}

/// USDT price per whole token, `(numerator, denominator)`, by upper-case symbol.
pub type PriceTable = HashMap<String, (u128, u128)>;

/// USDT price per whole token by upper-case symbol, as an exact fraction
/// `(numerator, denominator)` from the Binance proof-of-solvency table.
pub fn usd_prices() -> Result<&'static PriceTable> {
    static CELL: OnceLock<std::result::Result<PriceTable, AdapterError>> = OnceLock::new();
    CELL.get_or_init(|| {
        let f = "exchange/binance_cex_assets_info.csv";
        let mut rdr = csv::Reader::from_reader(PRICES.as_bytes());
        let mut out = HashMap::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| bad(f, e.to_string()))?;
            let (Some(sym), Some(price)) = (rec.get(0), rec.get(1)) else {
                continue;
            };
            if let Some(num) = decimal_to_base(price, 12).filter(|n| *n > 0) {
                out.insert(sym.to_uppercase(), (num, 1_000_000_000_000));
            }
        }
        // POL is listed under its former name MATIC in this snapshot; S (Sonic) as FTM.
        for (new, old) in [("POL", "MATIC"), ("S", "FTM")] {
            if !out.contains_key(new) {
                if let Some(p) = out.get(old).copied() {
                    out.insert(new.to_string(), p);
                }
            }
        }
        Ok(out)
    })
    .as_ref()
    .map_err(Clone::clone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_bundled_data_parses() {
        let sol = solana_validators().unwrap();
        assert_eq!(sol.len(), 986);
        assert_eq!(sol[0].vote, "he1iusunGwqrNtafDtLdhsUQDFvo13z9sUa36PauBtk");
        assert_eq!(sol[0].stake_lamports, 13_249_363_566_355_900);
        assert!(cardano_pool_history().unwrap().len() >= 90);
        assert!(cardano_delegator_stakes().unwrap().len() >= 280);
        assert_eq!(cosmos_validators().unwrap().len(), 125);
        assert_eq!(tron_witnesses().unwrap().iter().filter(|w| w.active).count(), 27);
        let p = usd_prices().unwrap();
        for t in [
            "BNB", "SOL", "TRX", "ADA", "SUI", "TON", "NEAR", "APT", "POL", "ALGO", "IOTA", "S", "APE", "EGLD", "AXS",
            "ATOM", "DOT", "ETH", "XTZ",
        ] {
            assert!(p.contains_key(t), "no price for {t}");
        }
    }

    #[test]
    fn success_decimal_rounding() {
        assert_eq!(decimal_to_base("4718.220278094", 9), Some(4_718_220_278_094));
        assert_eq!(decimal_to_base("0.0000000015", 9), Some(2));
        assert_eq!(decimal_to_base("0.0000000014", 9), Some(1));
        assert_eq!(decimal_to_base("-1", 9), None);
        assert_eq!(decimal_to_base("0.1", 4), Some(1_000));
        assert_eq!(decimal_to_base("1.7493e-05", 9), Some(17_493));
        assert_eq!(decimal_to_base("2.5E2", 0), Some(250));
    }
}

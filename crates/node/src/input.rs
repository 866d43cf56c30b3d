//! CSV inputs of the CLI: `accounts.csv`, `balances.csv`, `rewards.csv`.
//!
//! Parsing is strict and all-or-nothing: the header must name exactly the expected
//! columns (an unknown or missing column is an error), every field is checked, and the
//! first error is reported with the file, the line and the field. Nothing is written
//! until a whole file has parsed.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use softstake_core::eligibility::Account;
use softstake_core::twab::BalanceEvent;
use softstake_core::{Amount, Day, Timestamp, TokenRegistry};

/// Columns of `accounts.csv`.
pub const ACCOUNTS_COLUMNS: [&str; 4] = ["account_id", "jurisdiction", "activated_at", "deactivated_at"];
/// Columns of `balances.csv`.
pub const BALANCES_COLUMNS: [&str; 4] = ["ts", "account_id", "token", "balance"];
/// Columns of `rewards.csv`.
pub const REWARDS_COLUMNS: [&str; 3] = ["day", "token", "amount"];

/// An input error with its place: file, line (1-based, the header is line 1) and field.
#[derive(Debug, thiserror::Error)]
pub struct InputError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// The column, when the error is about one field.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// `Result` with [`InputError`].
pub type Result<T> = std::result::Result<T, InputError>;

/// Where a record comes from, for error messages.
struct Place<'a> {
    file: &'a Path,
    line: u64,
}

impl Place<'_> {
    fn err(&self, field: Option<&str>, message: impl Into<String>) -> InputError {
        InputError {
            file: self.file.to_path_buf(),
            line: Some(self.line),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

/// One record's fields by column name.
struct Fields<'r> {
    rec: &'r csv::StringRecord,
    index: &'r HashMap<String, usize>,
}

impl<'r> Fields<'r> {
    fn get(&self, column: &str) -> &'r str {
        self.index.get(column).and_then(|i| self.rec.get(*i)).unwrap_or("")
    }
}

/// Reads a CSV file whose header must be exactly `columns` (in any order) and calls
/// `row` for each record with a lookup by column name.
fn read_csv<F>(path: &Path, columns: &[&str], mut row: F) -> Result<()>
where
    F: FnMut(&Place<'_>, &Fields<'_>) -> Result<()>,
{
    let file_err = |line: Option<u64>, message: String| InputError {
        file: path.to_path_buf(),
        line,
        field: None,
        message,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| file_err(None, format!("cannot read: {e}")))?;
    let headers = rdr
        .headers()
        .map_err(|e| file_err(Some(1), format!("bad header: {e}")))?
        .clone();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, h) in headers.iter().enumerate() {
        if !columns.contains(&h) {
            return Err(InputError {
                file: path.to_path_buf(),
                line: Some(1),
                field: Some(h.to_string()),
                message: format!("unknown column (expected {})", columns.join(",")),
            });
        }
        if index.insert(h.to_string(), i).is_some() {
            return Err(InputError {
                file: path.to_path_buf(),
                line: Some(1),
                field: Some(h.to_string()),
                message: "column appears twice".into(),
            });
        }
    }
    if let Some(missing) = columns.iter().find(|c| !index.contains_key(**c)) {
        return Err(InputError {
            file: path.to_path_buf(),
            line: Some(1),
            field: Some(missing.to_string()),
            message: format!("missing column (expected {})", columns.join(",")),
        });
    }
    let mut rec = csv::StringRecord::new();
    loop {
        let more = rdr.read_record(&mut rec).map_err(|e| {
            let line = e.position().map(|p| p.line());
            file_err(line, format!("malformed CSV: {e}"))
        })?;
        if !more {
            break;
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let place = Place { file: path, line };
        row(
            &place,
            &Fields {
                rec: &rec,
                index: &index,
            },
        )?;
    }
    Ok(())
}

/// Parses `accounts.csv`: `account_id,jurisdiction,activated_at,deactivated_at`
/// (RFC 3339 UTC; `deactivated_at` may be empty). Duplicate account ids are an error.
pub fn read_accounts(path: &Path) -> Result<Vec<Account>> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    read_csv(path, &ACCOUNTS_COLUMNS, |p, f| {
        let id = f.get("account_id");
        if id.is_empty() {
            return Err(p.err(Some("account_id"), "empty"));
        }
        if let Some(first) = seen.insert(id.to_string(), p.line) {
            return Err(p.err(
                Some("account_id"),
                format!("account {id} already given on line {first}"),
            ));
        }
        let activated =
            Timestamp::parse_rfc3339(f.get("activated_at")).map_err(|e| p.err(Some("activated_at"), e.to_string()))?;
        let deactivated = match f.get("deactivated_at") {
            "" => None,
            s => Some(Timestamp::parse_rfc3339(s).map_err(|e| p.err(Some("deactivated_at"), e.to_string()))?),
        };
        let j = f.get("jurisdiction");
        softstake_core::token::validate_jurisdiction(j).map_err(|e| p.err(Some("jurisdiction"), e.to_string()))?;
        let a =
            Account::new(id, j, activated, deactivated).map_err(|e| p.err(Some("deactivated_at"), e.to_string()))?;
        out.push(a);
        Ok(())
    })?;
    Ok(out)
}

/// Parses `balances.csv`: `ts,account_id,token,balance` (RFC 3339; the new balance in
/// token units, exact to the token's decimals). Unknown tokens, negative or overflowing
/// balances and too many decimals are errors. Rows may come in any order.
pub fn read_balances(path: &Path, registry: &TokenRegistry) -> Result<Vec<BalanceEvent>> {
    let mut out = Vec::new();
    read_csv(path, &BALANCES_COLUMNS, |p, f| {
        let ts = Timestamp::parse_rfc3339(f.get("ts")).map_err(|e| p.err(Some("ts"), e.to_string()))?;
        let id = f.get("account_id");
        if id.is_empty() {
            return Err(p.err(Some("account_id"), "empty"));
        }
        let token = registry
            .get(f.get("token"))
            .map_err(|e| p.err(Some("token"), e.to_string()))?;
        let balance = token
            .parse_amount(f.get("balance"))
            .map_err(|e| p.err(Some("balance"), e.to_string()))?;
        out.push(BalanceEvent {
            ts,
            account_id: id.to_string(),
            token: token.symbol.clone(),
            balance,
        });
        Ok(())
    })?;
    Ok(out)
}

/// One row of `rewards.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardInput {
    /// Day the reward is attributed to.
    pub day: Day,
    /// Token symbol.
    pub token: String,
    /// Realized reward, base units.
    pub amount: Amount,
    /// Line in the file.
    pub line: u64,
}

/// Parses `rewards.csv`: `day,token,amount` (amount in token units). A `(day, token)`
/// pair given twice is an error (combine the amounts into one row).
pub fn read_rewards(path: &Path, registry: &TokenRegistry) -> Result<Vec<RewardInput>> {
    let mut out = Vec::new();
    let mut seen: HashMap<(Day, String), u64> = HashMap::new();
    read_csv(path, &REWARDS_COLUMNS, |p, f| {
        let day = Day::parse(f.get("day")).map_err(|e| p.err(Some("day"), e.to_string()))?;
        let token = registry
            .get(f.get("token"))
            .map_err(|e| p.err(Some("token"), e.to_string()))?;
        let amount = token
            .parse_amount(f.get("amount"))
            .map_err(|e| p.err(Some("amount"), e.to_string()))?;
        if let Some(first) = seen.insert((day, token.symbol.clone()), p.line) {
            return Err(p.err(
                Some("token"),
                format!(
                    "{} {day} already has a reward on line {first}; combine them into one row",
                    token.symbol
                ),
            ));
        }
        out.push(RewardInput {
            day,
            token: token.symbol.clone(),
            amount,
            line: p.line,
        });
        Ok(())
    })?;
    Ok(out)
}

/// Reads and validates a token registry file.
pub fn read_registry(path: &Path) -> Result<TokenRegistry> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError {
        file: path.to_path_buf(),
        line: None,
        field: None,
        message: format!("cannot read: {e}"),
    })?;
    TokenRegistry::from_toml_str(&text).map_err(|e| InputError {
        file: path.to_path_buf(),
        line: None,
        field: None,
        message: e.to_string(),
    })
}

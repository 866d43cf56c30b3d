//! CSV inputs of the CLI: `accounts.csv`, `balances.csv`, `rewards.csv`.
//!
//! Parsing is strict: the header must name exactly the expected columns (an unknown or
//! missing column is an error), every field is checked, and the first error is reported
//! with the file, the line and the field. Files are streamed record by record (memory is
//! one record or one batch, whatever the file's size); the commands that write keep a
//! whole file in one transaction, so an error anywhere writes nothing.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use softstake_core::eligibility::Account;
use softstake_core::twab::BalanceEvent;
use softstake_core::{Amount, Day, Timestamp, TokenConfig, TokenRegistry};
use softstake_store::IngestEvent;

/// Columns of `accounts.csv`.
pub const ACCOUNTS_COLUMNS: [&str; 4] = ["account_id", "jurisdiction", "activated_at", "deactivated_at"];
/// Columns of `balances.csv`.
pub const BALANCES_COLUMNS: [&str; 4] = ["ts", "account_id", "token", "balance"];
/// Columns of `rewards.csv` (plus the optional `carry_in`).
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
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// The file.
    pub file: &'a Path,
    /// 1-based line.
    pub line: u64,
}

impl Place<'_> {
    /// An error about this record (`field` when it is about one column).
    pub fn err(&self, field: Option<&str>, message: impl Into<String>) -> InputError {
        InputError {
            file: self.file.to_path_buf(),
            line: Some(self.line),
            field: field.map(str::to_string),
            message: message.into(),
        }
    }
}

/// One record's fields by column name.
#[derive(Debug)]
pub struct Fields<'r> {
    rec: &'r csv::StringRecord,
    index: &'r [usize],
}

impl<'r> Fields<'r> {
    /// The field of column `i` of the expected columns.
    fn get(&self, i: usize) -> &'r str {
        let v = self.rec.get(self.index[i]).unwrap_or("");
        match (v.as_bytes().first(), v.as_bytes().last()) {
            (Some(a), Some(b)) if a.is_ascii_whitespace() || b.is_ascii_whitespace() => v.trim(),
            _ => v,
        }
    }
}

/// A CSV file whose header must be exactly the expected columns (in any order), read one
/// record at a time: memory is one record whatever the file's size.
pub struct CsvFile<'p> {
    path: &'p Path,
    rdr: csv::Reader<std::io::BufReader<std::io::Take<std::fs::File>>>,
    /// For each expected column, its position in the file.
    index: Vec<usize>,
    rec: csv::StringRecord,
    optional_missing: Vec<bool>,
}

impl std::fmt::Debug for CsvFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CsvFile").field("path", &self.path).finish()
    }
}

impl<'p> CsvFile<'p> {
    /// Opens `path` and checks its header against `columns` (every one required) and
    /// `optional` (may be absent).
    pub fn open(path: &'p Path, columns: &[&str], optional: &[&str]) -> Result<CsvFile<'p>> {
        CsvFile::open_range(path, columns, optional, None)
    }

    /// As [`CsvFile::open`], reading only the records in the byte range `[start, end)`
    /// (`start` at the beginning of a line after the header). Line numbers of records in a
    /// range are not known (they count from the range's start): callers that find an
    /// error there read the file again in one pass to report it.
    pub fn open_range(
        path: &'p Path,
        columns: &[&str],
        optional: &[&str],
        range: Option<(u64, u64)>,
    ) -> Result<CsvFile<'p>> {
        use std::io::{Read, Seek};
        let file_err = |line: Option<u64>, message: String| InputError {
            file: path.to_path_buf(),
            line,
            field: None,
            message,
        };
        let open = || std::fs::File::open(path).map_err(|e| file_err(None, format!("cannot read: {e}")));
        let builder = || {
            let mut b = csv::ReaderBuilder::new();
            b.flexible(false).trim(csv::Trim::Headers).buffer_capacity(1 << 20);
            b
        };
        let mut head = builder()
            .has_headers(true)
            .from_reader(std::io::BufReader::with_capacity(1 << 20, open()?.take(u64::MAX)));
        let headers = head
            .headers()
            .map_err(|e| file_err(Some(1), format!("bad header: {e}")))?
            .clone();
        let rdr = match range {
            None => head,
            Some((start, end)) => {
                let mut f = open()?;
                f.seek(std::io::SeekFrom::Start(start))
                    .map_err(|e| file_err(None, format!("cannot read: {e}")))?;
                builder()
                    .has_headers(false)
                    .from_reader(std::io::BufReader::with_capacity(
                        1 << 20,
                        f.take(end.saturating_sub(start)),
                    ))
            }
        };
        let all: Vec<&str> = columns.iter().chain(optional).copied().collect();
        let mut pos: HashMap<String, usize> = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            if !all.contains(&h) {
                return Err(InputError {
                    file: path.to_path_buf(),
                    line: Some(1),
                    field: Some(h.to_string()),
                    message: format!("unknown column (expected {})", expected(columns, optional)),
                });
            }
            if pos.insert(h.to_string(), i).is_some() {
                return Err(InputError {
                    file: path.to_path_buf(),
                    line: Some(1),
                    field: Some(h.to_string()),
                    message: "column appears twice".into(),
                });
            }
        }
        if let Some(missing) = columns.iter().find(|c| !pos.contains_key(**c)) {
            return Err(InputError {
                file: path.to_path_buf(),
                line: Some(1),
                field: Some(missing.to_string()),
                message: format!("missing column (expected {})", expected(columns, optional)),
            });
        }
        let index = all.iter().map(|c| pos.get(*c).copied().unwrap_or(usize::MAX)).collect();
        let optional_missing = all.iter().map(|c| !pos.contains_key(*c)).collect();
        Ok(CsvFile {
            path,
            rdr,
            index,
            rec: csv::StringRecord::new(),
            optional_missing,
        })
    }

    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<(Place<'p>, Fields<'_>)>> {
        let more = self.rdr.read_record(&mut self.rec).map_err(|e| InputError {
            file: self.path.to_path_buf(),
            line: e.position().map(|p| p.line()),
            field: None,
            message: format!("malformed CSV: {e}"),
        })?;
        if !more {
            return Ok(None);
        }
        let line = self.rec.position().map(|p| p.line()).unwrap_or(0);
        Ok(Some((
            Place { file: self.path, line },
            Fields {
                rec: &self.rec,
                index: &self.index,
            },
        )))
    }

    /// Whether the optional column `i` (counting the required columns first) is absent.
    pub fn lacks(&self, i: usize) -> bool {
        self.optional_missing.get(i).copied().unwrap_or(true)
    }

    /// Bytes read so far (for progress).
    pub fn bytes_read(&self) -> u64 {
        self.rdr.position().byte()
    }
}

fn expected(columns: &[&str], optional: &[&str]) -> String {
    let mut s = columns.join(",");
    if !optional.is_empty() {
        s.push_str(&format!(" and optionally {}", optional.join(",")));
    }
    s
}

/// The longest account id, in bytes (the same limit everywhere: accounts, balances, API).
pub const MAX_ACCOUNT_ID_BYTES: usize = 128;

fn account_id<'r>(p: &Place<'_>, v: &'r str) -> Result<&'r str> {
    if v.is_empty() {
        return Err(p.err(Some("account_id"), "empty"));
    }
    if v.len() > MAX_ACCOUNT_ID_BYTES {
        return Err(p.err(
            Some("account_id"),
            format!("{} bytes; at most {MAX_ACCOUNT_ID_BYTES}", v.len()),
        ));
    }
    Ok(v)
}

/// One record of `accounts.csv`, checked field by field (each error names its field).
pub fn parse_account(p: &Place<'_>, f: &Fields<'_>) -> Result<Account> {
    let id = account_id(p, f.get(0))?;
    let j = f.get(1);
    softstake_core::token::validate_jurisdiction(j).map_err(|e| p.err(Some("jurisdiction"), e.to_string()))?;
    let activated = Timestamp::parse_rfc3339(f.get(2)).map_err(|e| p.err(Some("activated_at"), e.to_string()))?;
    let deactivated = match f.get(3) {
        "" => None,
        s => Some(Timestamp::parse_rfc3339(s).map_err(|e| p.err(Some("deactivated_at"), e.to_string()))?),
    };
    if let Some(d) = deactivated {
        if d < activated {
            return Err(p.err(
                Some("deactivated_at"),
                format!("{d} is before activated_at {activated}"),
            ));
        }
    }
    Account::new(id, j, activated, deactivated).map_err(|e| p.err(None, e.to_string()))
}

/// Streams `accounts.csv` (`account_id,jurisdiction,activated_at,deactivated_at`, RFC 3339
/// UTC; `deactivated_at` may be empty) to `f`, record by record.
pub fn for_each_account(path: &Path, mut f: impl FnMut(&Place<'_>, Account) -> Result<()>) -> Result<()> {
    let mut csv = CsvFile::open(path, &ACCOUNTS_COLUMNS, &[])?;
    while let Some((p, fields)) = csv.next_record()? {
        let a = parse_account(&p, &fields)?;
        f(&p, a)?;
    }
    Ok(())
}

/// Parses `accounts.csv` into memory (small files: tests, the demo). Duplicate account
/// ids are an error naming both lines.
pub fn read_accounts(path: &Path) -> Result<Vec<Account>> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for_each_account(path, |p, a| {
        if let Some(first) = seen.insert(a.account_id.clone(), p.line) {
            return Err(p.err(
                Some("account_id"),
                format!("account {} already given on line {first}", a.account_id),
            ));
        }
        out.push(a);
        Ok(())
    })?;
    Ok(out)
}

/// One record of `balances.csv`: `(ts, account_id, token, balance in base units)`.
fn parse_balance<'r, 'g>(
    p: &Place<'_>,
    f: &Fields<'r>,
    registry: &mut TokenCache<'g>,
) -> Result<(Timestamp, &'r str, &'g TokenConfig, Amount)> {
    let ts = Timestamp::parse_rfc3339(f.get(0)).map_err(|e| p.err(Some("ts"), e.to_string()))?;
    let id = account_id(p, f.get(1))?;
    let token = registry
        .get(f.get(2))
        .map_err(|e| p.err(Some("token"), e.to_string()))?;
    let balance = token
        .parse_amount(f.get(3))
        .map_err(|e| p.err(Some("balance"), e.to_string()))?;
    Ok((ts, id, token, balance))
}

/// Streams `balances.csv` (`ts,account_id,token,balance`: RFC 3339; the new balance in
/// token units, exact to the token's decimals; rows in any order) in batches of at most
/// `batch` events, each with its line. Unknown tokens, negative or overflowing balances,
/// too many decimals and over-long ids are errors naming the line and field.
#[derive(Debug)]
pub struct BalancesReader<'p, 'g> {
    csv: CsvFile<'p>,
    registry: TokenCache<'g>,
}

/// The registry with the last token looked up kept at hand (a feed is mostly one token
/// after another).
#[derive(Debug)]
struct TokenCache<'g> {
    registry: &'g TokenRegistry,
    last: Option<&'g TokenConfig>,
}

impl<'g> TokenCache<'g> {
    fn get(&mut self, symbol: &str) -> softstake_core::Result<&'g TokenConfig> {
        if let Some(t) = self.last.filter(|t| t.symbol == symbol) {
            return Ok(t);
        }
        let t = self.registry.get(symbol)?;
        self.last = Some(t);
        Ok(t)
    }
}

impl<'p, 'g> BalancesReader<'p, 'g> {
    /// Opens `path` and checks its header.
    pub fn open(path: &'p Path, registry: &'g TokenRegistry) -> Result<Self> {
        BalancesReader::open_range(path, registry, None)
    }

    /// Opens the records of `path` in a byte range (see [`CsvFile::open_range`]).
    pub fn open_range(path: &'p Path, registry: &'g TokenRegistry, range: Option<(u64, u64)>) -> Result<Self> {
        Ok(BalancesReader {
            csv: CsvFile::open_range(path, &BALANCES_COLUMNS, &[], range)?,
            registry: TokenCache { registry, last: None },
        })
    }

    /// The next batch of up to `batch` events, or `None` at the end of the file.
    pub fn next_batch(&mut self, batch: usize) -> Result<Option<Vec<IngestEvent>>> {
        let mut out = Vec::with_capacity(batch.min(1 << 16));
        while out.len() < batch {
            let Some((p, f)) = self.csv.next_record()? else { break };
            let (ts, id, token, balance) = parse_balance(&p, &f, &mut self.registry)?;
            out.push(IngestEvent {
                event: BalanceEvent {
                    ts,
                    account_id: id.to_string(),
                    token: token.symbol.clone(),
                    balance,
                },
                event_id: None,
                line: Some(p.line),
            });
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// Calls `f` for every event without building one (the stateless replay's fast path).
    pub fn for_each(
        &mut self,
        mut f: impl FnMut(&Place<'_>, Timestamp, &str, &TokenConfig, Amount) -> Result<()>,
    ) -> Result<()> {
        while let Some((p, fields)) = self.csv.next_record()? {
            let (ts, id, token, balance) = parse_balance(&p, &fields, &mut self.registry)?;
            f(&p, ts, id, token, balance)?;
        }
        Ok(())
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.csv.bytes_read()
    }
}

/// Splits `path`'s records into at most `n` byte ranges of about equal size, each starting
/// at the beginning of a line (for parallel readers). Fewer ranges for small files.
pub fn split_lines(path: &Path, n: usize) -> Result<Vec<(u64, u64)>> {
    use std::io::{BufRead, Read, Seek};
    let err = |message: String| InputError {
        file: path.to_path_buf(),
        line: None,
        field: None,
        message,
    };
    let mut f = std::io::BufReader::new(std::fs::File::open(path).map_err(|e| err(format!("cannot read: {e}")))?);
    let mut header = Vec::new();
    f.read_until(b'\n', &mut header)
        .map_err(|e| err(format!("cannot read: {e}")))?;
    let len = f
        .get_ref()
        .metadata()
        .map_err(|e| err(format!("cannot read: {e}")))?
        .len();
    let first = header.len() as u64;
    let mut cuts = vec![first];
    let step = (len.saturating_sub(first) / n.max(1) as u64).max(1 << 20);
    let mut at = first + step;
    while at < len && cuts.len() < n {
        f.seek(std::io::SeekFrom::Start(at))
            .map_err(|e| err(format!("cannot read: {e}")))?;
        let mut skip = Vec::new();
        (&mut f)
            .take(1 << 20)
            .read_until(b'\n', &mut skip)
            .map_err(|e| err(format!("cannot read: {e}")))?;
        let cut = at + skip.len() as u64;
        if cut >= len || skip.last() != Some(&b'\n') {
            break;
        }
        cuts.push(cut);
        at = cut + step;
    }
    cuts.push(len);
    Ok(cuts.windows(2).map(|w| (w[0], w[1])).filter(|(a, b)| a < b).collect())
}

/// Parses `balances.csv` into memory (small files: tests, the demo).
pub fn read_balances(path: &Path, registry: &TokenRegistry) -> Result<Vec<BalanceEvent>> {
    let mut r = BalancesReader::open(path, registry)?;
    let mut out = Vec::new();
    while let Some(b) = r.next_batch(1 << 16)? {
        out.extend(b.into_iter().map(|e| e.event));
    }
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
    /// Undistributed amount carried in from earlier days (the optional `carry_in`
    /// column, used by the stateless replay), base units.
    pub carry_in: Amount,
    /// Line in the file.
    pub line: u64,
}

/// Parses `rewards.csv`: `day,token,amount` and optionally `carry_in` (token units). A
/// `(day, token)` pair given twice is an error (combine the amounts into one row).
pub fn read_rewards(path: &Path, registry: &TokenRegistry) -> Result<Vec<RewardInput>> {
    let mut out = Vec::new();
    let mut seen: HashMap<(Day, String), u64> = HashMap::new();
    let mut csv = CsvFile::open(path, &REWARDS_COLUMNS, &["carry_in"])?;
    let has_carry = !csv.lacks(3);
    while let Some((p, f)) = csv.next_record()? {
        let day = Day::parse(f.get(0)).map_err(|e| p.err(Some("day"), e.to_string()))?;
        let token = registry
            .get(f.get(1))
            .map_err(|e| p.err(Some("token"), e.to_string()))?;
        let amount = token
            .parse_amount(f.get(2))
            .map_err(|e| p.err(Some("amount"), e.to_string()))?;
        let carry_in = match (has_carry, f.get(3)) {
            (false, _) | (true, "") => Amount::ZERO,
            (true, v) => token
                .parse_amount(v)
                .map_err(|e| p.err(Some("carry_in"), e.to_string()))?,
        };
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
            carry_in,
            line: p.line,
        });
    }
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

//! `softstake allocate`: replay one day from files, with no database, so an auditor can
//! check a day's payouts independently; and `softstake payouts export`, which writes a
//! stored day in the same output contract.
//!
//! ```text
//!  tokens.toml ─┐
//!  accounts.csv ─┼─▶ DayReplay (one pass over each file, memory ∝ accounts)
//!  balances.csv… ┤        ─▶ per token: TWAB, eligibility, allocation (R, fee, carry in)
//!  rewards.csv ──┘        ─▶ out.csv (day,token,account_id,average_balance,eligible_balance,reward)
//! ```
//!
//! Balances may come in several files (the per-day files `softstake archive` writes):
//! only each account's last event before the day and the day's own events are kept.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use softstake_core::replay::{DayReplay, ReplayedToken};
use softstake_core::{Amount, Day, TokenRegistry};
use softstake_store::{ExportRow, Store};

use crate::input::{for_each_account, read_registry, read_rewards, split_lines, BalancesReader};
use crate::progress;
use crate::report;

/// The header of the per-account output (allocate and payouts export).
pub const OUTPUT_COLUMNS: [&str; 6] = [
    "day",
    "token",
    "account_id",
    "average_balance",
    "eligible_balance",
    "reward",
];

/// Paths of the stateless allocation's inputs and output.
#[derive(Debug, Clone)]
pub struct AllocateFiles<'a> {
    /// `tokens.toml`.
    pub tokens: &'a Path,
    /// `accounts.csv`.
    pub accounts: &'a Path,
    /// `balances.csv` files (any order within and across them).
    pub balances: &'a [PathBuf],
    /// `rewards.csv` (optional `carry_in` column).
    pub rewards: &'a Path,
    /// Output CSV.
    pub out: &'a Path,
}

/// Reads every input in one pass each, replays `day`, writes the output CSV atomically (a
/// temporary file renamed into place, so an error leaves no partial file) and returns the
/// per-token results for the summary. `carry` (`(TOKEN, amount in token units)`) overrides
/// the rewards file's `carry_in`.
pub fn run_allocate(
    files: &AllocateFiles<'_>,
    day: Day,
    carry: &[(String, String)],
) -> Result<(TokenRegistry, Vec<ReplayedToken>)> {
    let started = std::time::Instant::now();
    let registry = read_registry(files.tokens)?;
    // About 40 bytes a line: sizes the tables so they never rehash.
    let hint = std::fs::metadata(files.accounts).map(|m| m.len() / 40).unwrap_or(0) as usize;
    let mut replay = DayReplay::new(&registry, day).with_capacity(hint);
    // The accounts file is read on its own thread, beside the first balances file.
    let accounts = std::thread::scope(|s| -> Result<DayReplay<'_>> {
        let reader = s.spawn(|| -> Result<DayReplay<'_>> {
            let mut part = DayReplay::new(&registry, day);
            for_each_account(files.accounts, |p, a| {
                part.add_account(&a)
                    .map_err(|e| p.err(Some("account_id"), e.to_string()))
            })?;
            Ok(part)
        });
        if let Some(first) = files.balances.first() {
            read_balances_parallel(first, &registry, &mut replay)?;
        }
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("the accounts reader panicked"))?
    })?;
    replay.merge(accounts)?;
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "accounts and first balances read"
    );
    for path in files.balances.iter().skip(1) {
        read_balances_parallel(path, &registry, &mut replay)?;
        tracing::debug!(file = %path.display(), elapsed_ms = started.elapsed().as_millis() as u64, "balances read");
    }
    let mut rewards: BTreeMap<String, (Amount, Amount)> = BTreeMap::new();
    for r in read_rewards(files.rewards, &registry)?
        .into_iter()
        .filter(|r| r.day == day)
    {
        rewards.insert(r.token, (r.amount, r.carry_in));
    }
    for (token, units) in carry {
        let cfg = registry
            .get(token)
            .with_context(|| format!("--carry {token}={units}"))?;
        let c = cfg
            .parse_amount(units)
            .with_context(|| format!("--carry {token}={units}"))?;
        rewards.entry(token.clone()).or_default().1 = c;
    }
    let days = replay.finish(&rewards).with_context(|| format!("replaying {day}"))?;
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "replayed");
    write_atomically(files.out, |w| {
        let mut amounts = String::with_capacity(128);
        for td in &days {
            let cfg = registry.get(&td.token)?;
            let day_s = day.to_string();
            td.for_each_row(|r| {
                amounts.clear();
                cfg.write_amount(r.average, &mut amounts);
                let a = amounts.len();
                cfg.write_amount(r.eligible, &mut amounts);
                let b = amounts.len();
                cfg.write_amount(r.reward, &mut amounts);
                w.write_record([
                    day_s.as_str(),
                    td.token.as_str(),
                    r.account_id,
                    &amounts[..a],
                    &amounts[a..b],
                    &amounts[b..],
                ])
                .map_err(|e| softstake_core::CoreError::InvalidInput(e.to_string()))
            })?;
        }
        Ok(())
    })?;
    tracing::debug!(elapsed_ms = started.elapsed().as_millis() as u64, "written");
    Ok((registry, days))
}

/// Most threads a balances file is read with.
const MAX_READERS: usize = 8;

/// Feeds one balances file to `replay`, read by one thread per core in byte ranges, each
/// filling its own replay, merged at the end. An error in a range (whose line numbers are
/// not known) is found again by one sequential pass, which reports its line.
fn read_balances_parallel<'r>(path: &Path, registry: &'r TokenRegistry, replay: &mut DayReplay<'r>) -> Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(MAX_READERS);
    let ranges = split_lines(path, threads)?;
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let pb = progress::bytes(len, "reading");
    let (day, capacity) = (replay.day(), replay.capacity());
    let parts: Vec<std::result::Result<DayReplay<'r>, ()>> = std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .iter()
            .map(|&range| {
                let pb = pb.clone();
                s.spawn(move || -> std::result::Result<DayReplay<'r>, ()> {
                    let mut part = DayReplay::new(registry, day).with_capacity(capacity);
                    let mut r = BalancesReader::open_range(path, registry, Some(range)).map_err(|_| ())?;
                    r.for_each(|_, ts, id, token, balance| {
                        part.add_event(&token.symbol, id, ts, balance)
                            .map_err(|e| crate::input::InputError {
                                file: path.to_path_buf(),
                                line: None,
                                field: None,
                                message: e.to_string(),
                            })
                    })
                    .map_err(|_| ())?;
                    pb.inc(range.1 - range.0);
                    Ok(part)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(Err(()))).collect()
    });
    pb.finish_and_clear();
    if parts.iter().any(|p| p.is_err()) {
        // Find the error again in one pass, with its line.
        let mut r = BalancesReader::open(path, registry)?;
        let mut check = DayReplay::new(registry, day);
        r.for_each(|p, ts, id, token, balance| {
            check
                .add_event(&token.symbol, id, ts, balance)
                .map_err(|e| p.err(None, e.to_string()))
        })?;
        anyhow::bail!(
            "{}: a reader failed but a sequential pass found no error",
            path.display()
        );
    }
    tracing::debug!(file = %path.display(), "ranges read");
    let mut parts = parts.into_iter().flatten();
    if replay.is_empty() {
        // The first range becomes the replay (no copy of what it read).
        if let Some(first) = parts.next() {
            *replay = first.with_capacity(capacity);
        }
    }
    for part in parts {
        replay
            .merge(part)
            .with_context(|| format!("reading {}", path.display()))?;
    }
    tracing::debug!(file = %path.display(), "ranges merged");
    Ok(())
}

/// A CSV with [`OUTPUT_COLUMNS`] written to a temporary file in its destination's
/// folder and renamed into place only by [`AtomicCsv::finish`] (after an fsync): an
/// error or a drop before that leaves no file behind.
#[derive(Debug)]
pub struct AtomicCsv {
    out: PathBuf,
    tmp: tempfile::NamedTempFile,
    /// The writer; its header is already written.
    pub w: csv::Writer<std::io::BufWriter<std::fs::File>>,
}

impl AtomicCsv {
    /// Creates the temporary file beside `out` (creating the folder) and writes the header.
    pub fn create(out: &Path) -> Result<AtomicCsv> {
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let tmp = tempfile::NamedTempFile::new_in(dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        let mut w = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, tmp.reopen()?));
        w.write_record(OUTPUT_COLUMNS)?;
        Ok(AtomicCsv {
            out: out.to_path_buf(),
            tmp,
            w,
        })
    }

    /// Flushes, syncs and renames the file into place.
    pub fn finish(self) -> Result<()> {
        let out = self.out;
        let mut inner = self
            .w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
        inner.flush()?;
        inner.get_ref().sync_all()?;
        drop(inner);
        self.tmp
            .persist(&out)
            .with_context(|| format!("writing {}", out.display()))?;
        Ok(())
    }
}

/// Writes a CSV with [`OUTPUT_COLUMNS`] through `body` atomically ([`AtomicCsv`]).
pub fn write_atomically(
    out: &Path,
    body: impl FnOnce(&mut csv::Writer<std::io::BufWriter<std::fs::File>>) -> Result<()>,
) -> Result<()> {
    let mut f = AtomicCsv::create(out)?;
    body(&mut f.w)?;
    f.finish()
}

/// Prints the per-token summary of a replayed day.
pub fn print_summary(registry: &TokenRegistry, day: Day, days: &[ReplayedToken]) -> Result<()> {
    let rows = days
        .iter()
        .map(|td| {
            let cfg = registry.get(&td.token)?;
            Ok(report::SummaryRow::from_plan(
                cfg,
                day,
                &td.plan,
                td.accounts,
                td.eligible_accounts,
                report::Precision::Exact,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    println!("{}", report::summary_table(&rows));
    Ok(())
}

/// `softstake payouts export --day D [--token T] --out F`: the stored day in allocate's
/// output contract, sorted by token then account, streamed page by page; prints the
/// day's summary with its carry in and out (what `allocate --carry` takes).
pub async fn payouts_export(
    store: &Store,
    registry: &TokenRegistry,
    day: Day,
    token: Option<&str>,
    out: &Path,
) -> Result<()> {
    let tokens: Vec<&str> = match token {
        Some(t) => vec![registry.get(t)?.symbol.as_str()],
        None => registry.symbols().collect(),
    };
    let mut found = Vec::new();
    for t in tokens {
        match store.payout_export(t, day).await? {
            Some(e) => found.push((t, e)),
            None if token.is_some() => bail!("{t} {day} is not closed and distributed: nothing to export"),
            None => {}
        }
    }
    if found.is_empty() {
        bail!("no token is closed and distributed for {day}: nothing to export");
    }
    // Each token's accounts, page by page, into a temporary file renamed when complete.
    let mut file = AtomicCsv::create(out)?;
    let w = &mut file.w;
    let mut rows = Vec::new();
    for (t, e) in &found {
        let cfg = registry.get(t)?;
        let n = for_each_export_row(store, t, day, |r| {
            w.write_record([
                day.to_string(),
                t.to_string(),
                r.account_id.clone(),
                cfg.format_amount(r.average),
                cfg.format_amount(r.eligible),
                cfg.format_amount(r.reward),
            ])?;
            Ok(())
        })
        .await?;
        if n != e.closed.accounts {
            bail!(
                "{t} {day}: exported {n} accounts but the closed day records {}",
                e.closed.accounts
            );
        }
        rows.push(report::SummaryRow::from_distribution(
            cfg,
            &e.summary,
            n,
            report::Precision::Exact,
        ));
    }
    file.finish()?;
    println!("{}", report::summary_table(&rows));
    Ok(())
}

/// Calls `row` for every account of a stored day, in id order, read page by page;
/// returns how many there were.
pub async fn for_each_export_row(
    store: &Store,
    token: &str,
    day: Day,
    mut row: impl FnMut(ExportRow) -> Result<()>,
) -> Result<u64> {
    let mut after: Option<String> = None;
    let mut n = 0u64;
    loop {
        let page = store.export_page(token, day, after.as_deref(), 20_000).await?;
        let Some(last) = page.last().map(|r| r.account_id.clone()) else {
            return Ok(n);
        };
        n += page.len() as u64;
        page.into_iter().try_for_each(&mut row)?;
        after = Some(last);
    }
}

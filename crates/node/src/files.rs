//! `softstake allocate`: replay one day from files, with no database, so an auditor can
//! check a day's payouts independently.
//!
//! Memory grows with the number of events in `balances.csv` (they are sorted in memory);
//! the stateful `close-day` streams from the store instead.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use softstake_core::cycle::{replay_day, TokenDay};
use softstake_core::{Amount, Day, TokenRegistry};

use crate::input::{read_accounts, read_balances, read_registry, read_rewards};
use crate::report;

/// Paths of the stateless allocation's inputs and output.
#[derive(Debug, Clone)]
pub struct AllocateFiles<'a> {
    /// `tokens.toml`.
    pub tokens: &'a Path,
    /// `accounts.csv`.
    pub accounts: &'a Path,
    /// `balances.csv`.
    pub balances: &'a Path,
    /// `rewards.csv`.
    pub rewards: &'a Path,
    /// Output CSV.
    pub out: &'a Path,
}

/// Reads every input, replays `day`, writes the output CSV atomically (a temporary file
/// renamed into place, so an error leaves no partial file) and returns the per-token
/// results for the summary.
pub fn run_allocate(files: &AllocateFiles<'_>, day: Day) -> Result<(TokenRegistry, Vec<TokenDay>)> {
    let registry = read_registry(files.tokens)?;
    let accounts: HashMap<_, _> = read_accounts(files.accounts)?
        .into_iter()
        .map(|a| (a.account_id.clone(), a))
        .collect();
    let events = read_balances(files.balances, &registry)?;
    let rewards: BTreeMap<String, Amount> = read_rewards(files.rewards, &registry)?
        .into_iter()
        .filter(|r| r.day == day)
        .map(|r| (r.token, r.amount))
        .collect();
    let days = replay_day(&registry, &accounts, &events, &rewards, day)
        .with_context(|| format!("replaying {day} from {}", files.balances.display()))?;
    write_output(files.out, day, &registry, &days)?;
    Ok((registry, days))
}

/// Writes `day,token,account_id,average_balance,eligible_balance,reward` in token units,
/// sorted by token then account id.
fn write_output(out: &Path, day: Day, registry: &TokenRegistry, days: &[TokenDay]) -> Result<()> {
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    {
        let mut w = csv::Writer::from_writer(std::io::BufWriter::new(tmp.as_file()));
        w.write_record([
            "day",
            "token",
            "account_id",
            "average_balance",
            "eligible_balance",
            "reward",
        ])?;
        for td in days {
            let cfg = registry.get(&td.token)?;
            for r in &td.rows {
                w.write_record([
                    day.to_string(),
                    td.token.clone(),
                    r.account_id.clone(),
                    cfg.format_amount(r.average),
                    cfg.format_amount(r.eligible),
                    cfg.format_amount(r.reward),
                ])?;
            }
        }
        w.flush()?;
        let mut inner = w
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", out.display()))?;
        inner.flush()?;
    }
    tmp.persist(out).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// Prints the per-token summary of a replayed day.
pub fn print_summary(registry: &TokenRegistry, day: Day, days: &[TokenDay]) -> Result<()> {
    let rows = days
        .iter()
        .map(|td| {
            let cfg = registry.get(&td.token)?;
            Ok(report::SummaryRow::from_allocation(
                cfg,
                day,
                &td.allocation,
                td.rows.len() as u64,
                report::Precision::Exact,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    println!("{}", report::summary_table(&rows));
    Ok(())
}

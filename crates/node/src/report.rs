//! Tables for the terminal (comfy-table). Amounts are shown in token units; APR as a
//! percentage with four decimals.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};
use rust_decimal::Decimal;

use softstake_core::allocate::AllocationPlan;
use softstake_core::{Amount, Day, TokenConfig};
use softstake_store::DistributionSummary;

/// Decimals shown in wide tables (the CSV outputs and ledgers stay exact).
pub const DISPLAY_DECIMALS: usize = 6;

/// How amounts are written in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Every decimal of the token (audit output).
    Exact,
    /// At most [`DISPLAY_DECIMALS`] decimals, cut (reports for people).
    Display,
}

/// Formats `a` in token units at `p`.
pub fn amount(cfg: &TokenConfig, a: Amount, p: Precision) -> String {
    let exact = cfg.format_amount(a);
    if p == Precision::Exact {
        return exact;
    }
    match exact.split_once('.') {
        Some((int, frac)) if frac.len() > DISPLAY_DECIMALS => {
            let cut = frac[..DISPLAY_DECIMALS].trim_end_matches('0');
            if cut.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{cut}")
            }
        }
        _ => exact,
    }
}

/// One token-day line of a summary.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    /// Token symbol.
    pub token: String,
    /// Day.
    pub day: Day,
    /// Accounts with a balance.
    pub accounts: u64,
    /// Accounts with a positive eligible amount.
    pub eligible_accounts: u64,
    /// Σe, token units.
    pub total_eligible: String,
    /// R, token units.
    pub realized: String,
    /// Fee, token units.
    pub fee: String,
    /// Carried in from earlier days, token units.
    pub carry_in: String,
    /// D, token units.
    pub distributable: String,
    /// Paid, token units.
    pub paid: String,
    /// Carried to the next day, token units.
    pub carry: String,
    /// APR.
    pub apr: Option<Decimal>,
}

impl SummaryRow {
    /// From a fresh allocation's totals.
    pub fn from_plan(
        cfg: &TokenConfig,
        day: Day,
        a: &AllocationPlan,
        accounts: u64,
        eligible_accounts: u64,
        p: Precision,
    ) -> SummaryRow {
        let f = |x: Amount| amount(cfg, x, p);
        SummaryRow {
            token: cfg.symbol.clone(),
            day,
            accounts,
            eligible_accounts,
            total_eligible: f(a.total_eligible),
            realized: f(a.realized_reward),
            fee: f(a.fee),
            carry_in: f(a.carry_in),
            distributable: f(a.distributable),
            paid: f(a.to_pay()),
            carry: f(a.carry_out),
            apr: a.apr,
        }
    }

    /// From a stored distribution.
    pub fn from_distribution(cfg: &TokenConfig, s: &DistributionSummary, accounts: u64, p: Precision) -> SummaryRow {
        let f = |x: Amount| amount(cfg, x, p);
        SummaryRow {
            token: cfg.symbol.clone(),
            day: s.day,
            accounts,
            eligible_accounts: s.eligible_accounts,
            total_eligible: f(s.total_eligible),
            realized: f(s.realized_reward),
            fee: f(s.fee),
            carry_in: f(s.carry_in),
            distributable: f(s.distributable),
            paid: f(s.distributable.saturating_sub(s.carry_out)),
            carry: f(s.carry_out),
            apr: s.apr,
        }
    }
}

/// A new table with the project's style.
pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.iter().map(Cell::new));
    t
}

/// Right-aligned cell (numbers).
pub fn num(s: impl ToString) -> Cell {
    Cell::new(s.to_string()).set_alignment(CellAlignment::Right)
}

/// APR as a percentage string, e.g. `6.4210%`.
pub fn pct(apr: Decimal) -> String {
    format!("{:.4}%", apr * Decimal::ONE_HUNDRED)
}

/// A published APR as a percentage, or `beyond range` when it did not fit a Decimal
/// (display only: such a day was still paid).
pub fn apr_pct(apr: Option<Decimal>) -> String {
    apr.map(pct).unwrap_or_else(|| "beyond range".into())
}

/// Formats an amount of a token with its symbol.
pub fn units(cfg: &TokenConfig, a: Amount) -> String {
    format!("{} {}", cfg.format_amount(a), cfg.symbol)
}

/// The per-token-day summary table.
pub fn summary_table(rows: &[SummaryRow]) -> Table {
    let mut t = table(&[
        "day",
        "token",
        "accounts",
        "eligible",
        "Σ eligible",
        "realized R",
        "fee",
        "carry in",
        "D",
        "paid",
        "carry out",
        "APR",
    ]);
    for r in rows {
        t.add_row(vec![
            Cell::new(r.day.to_string()),
            Cell::new(&r.token),
            num(r.accounts),
            num(r.eligible_accounts),
            num(&r.total_eligible),
            num(&r.realized),
            num(&r.fee),
            num(&r.carry_in),
            num(&r.distributable),
            num(&r.paid),
            num(&r.carry),
            num(apr_pct(r.apr)),
        ]);
    }
    t
}

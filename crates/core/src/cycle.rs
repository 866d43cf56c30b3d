//! One day of the program replayed from its inputs: the composition of [`crate::twab`],
//! [`crate::eligibility`] and [`crate::allocate`] that the stateless `softstake allocate`
//! command and its auditors rely on.
//!
//! ```text
//!  events (any order) ─▶ per token: sort by time ─▶ DayCloser ─▶ (average, closing)
//!  accounts ─────────────────────────────────────▶ eligible_for_day ─▶ e_u
//!  rewards R per token ──────────────────────────▶ allocate(R, carry 0) ─▶ payouts
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::allocate::{allocate, Allocation, EligibleEntry};
use crate::amount::Amount;
use crate::eligibility::{eligible_for_day, Account};
use crate::error::{CoreError, Result};
use crate::time::Day;
use crate::token::TokenRegistry;
use crate::twab::{BalanceEvent, DayCloser};

/// One account's line for a token and day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRow {
    /// Account id.
    pub account_id: String,
    /// TWAB over the day, base units.
    pub average: Amount,
    /// Eligible amount, base units.
    pub eligible: Amount,
    /// Reward, base units.
    pub reward: Amount,
}

/// One token's replayed day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDay {
    /// Token symbol.
    pub token: String,
    /// One row per account with a balance of the token during the day (a positive
    /// average or closing balance), sorted by account id (byte order).
    pub rows: Vec<DayRow>,
    /// The allocation (R, fee, D, Σe, carry, APR).
    pub allocation: Allocation,
}

/// Replays `day` for every token that has events or a reward: TWAB from the events
/// (any order; events after the day are ignored, events before it give the opening
/// balance), eligibility, allocation with no carry-in. Tokens in symbol order.
///
/// Errors: conflicting events at one instant, unknown tokens in `rewards`, arithmetic
/// overflow.
pub fn replay_day(
    registry: &TokenRegistry,
    accounts: &HashMap<String, Account>,
    events: &[BalanceEvent],
    rewards: &BTreeMap<String, Amount>,
    day: Day,
) -> Result<Vec<TokenDay>> {
    let mut by_token: BTreeMap<&str, Vec<&BalanceEvent>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.ts < day.end()) {
        by_token.entry(e.token.as_str()).or_default().push(e);
    }
    let tokens: BTreeSet<&str> = by_token
        .keys()
        .copied()
        .chain(rewards.keys().map(String::as_str))
        .collect();
    let mut out = Vec::with_capacity(tokens.len());
    for token in tokens {
        let cfg = registry.get(token)?;
        let mut evs = by_token.remove(token).unwrap_or_default();
        evs.sort_by(|a, b| (a.ts, a.account_id.as_bytes()).cmp(&(b.ts, b.account_id.as_bytes())));
        let mut closer = DayCloser::new(day, token, usize::MAX);
        for e in evs {
            closer.apply(&e.account_id, e.ts, e.balance)?;
        }
        let closed = closer.finish();
        let rows_in: Vec<_> = closed
            .iter()
            .filter(|c| !(c.average.is_zero() && c.closing.is_zero()))
            .collect();
        let entries: Vec<EligibleEntry> = rows_in
            .iter()
            .map(|c| EligibleEntry {
                account_id: c.account_id.to_string(),
                eligible: eligible_for_day(accounts.get(c.account_id), day, c.average, cfg, registry),
            })
            .collect();
        let r = rewards.get(token).copied().unwrap_or_default();
        let allocation = allocate(r, Amount::ZERO, cfg.fee_bps, &entries)?;
        let mut rows = Vec::with_capacity(rows_in.len());
        for (c, p) in rows_in.iter().zip(&allocation.payouts) {
            if c.account_id != p.account_id {
                return Err(CoreError::Invariant(format!(
                    "{token}: payout order {} != balance order {}",
                    p.account_id, c.account_id
                )));
            }
            rows.push(DayRow {
                account_id: c.account_id.to_string(),
                average: c.average,
                eligible: p.eligible,
                reward: p.reward,
            });
        }
        out.push(TokenDay {
            token: token.to_string(),
            rows,
            allocation,
        });
    }
    Ok(out)
}

//! Time-weighted average balance (TWAB) over one UTC day.
//!
//! The rule: the balance at time `t` is the balance of the latest event with `ts <= t`
//! (events carry the new absolute balance); before the day's first event it is the
//! balance carried from earlier days, else 0. The day's average is
//! `floor(∫ balance dt over [00:00, 24:00) / 86 400 s)` in base units.
//!
//! ```text
//!  balance
//!    ▲        ┌──────┐
//!    │  open  │  b1  └───── b2 ─────┐ (closing = b2)
//!    └────────┴──────────────────────┴──▶ t
//!   00:00    t1     t2             24:00
//!   ∫ = open·(t1−00:00) + b1·(t2−t1) + b2·(24:00−t2)
//! ```
//!
//! [`TwabAccumulator`] keeps only the running balance, the last timestamp and the
//! balance·nanoseconds integral (a 256-bit number), so a day close streams events and its
//! memory grows with accounts, never with events (the cumulative-balance idea behind
//! PoolTogether's TWAB). [`DayCloser`] holds one 64-byte accumulator per account for one
//! token, its ids interned in one arena ([`AccountIds`]).

use ruint::aliases::U256;

use crate::amount::Amount;
use crate::error::{CoreError, Result};
use crate::intern::AccountIds;
use crate::time::{Day, Timestamp, NANOS_PER_DAY};

/// Running TWAB state of one (account, token) for one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwabAccumulator {
    day_start: Timestamp,
    day_end: Timestamp,
    state: Acc,
}

/// The compact state behind [`TwabAccumulator`] and [`DayCloser`] (64 bytes): running
/// balance, the last event's time, `Σ balance · Δt` since the day's start (256 bits:
/// u128::MAX base units held for a day is about 2^174 unit·ns) and flags.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Acc {
    balance: u128,
    integral: U256,
    last_ts: i64,
    flags: u8,
}

/// `Acc::flags`: an event was applied (`last_ts` is meaningful).
const HAS_EVENT: u8 = 1;

/// Outcome of applying an event to an accumulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyError {
    /// The event is earlier than one already applied: events must be applied in
    /// non-decreasing time order per (account, token).
    OutOfOrder {
        /// The previously applied timestamp.
        previous: Timestamp,
    },
    /// Same timestamp as the previous event but a different balance.
    Conflict {
        /// The balance already applied at this instant.
        existing: Amount,
    },
    /// The event is at or after the end of the day.
    AfterDay,
}

impl Acc {
    fn open(balance: u128) -> Acc {
        Acc {
            balance,
            integral: U256::ZERO,
            last_ts: 0,
            flags: 0,
        }
    }

    fn last_event(&self) -> Option<Timestamp> {
        (self.flags & HAS_EVENT != 0).then_some(Timestamp(self.last_ts))
    }

    fn segment_start(&self, day_start: Timestamp) -> Timestamp {
        match self.last_event() {
            Some(t) if t > day_start => t,
            _ => day_start,
        }
    }

    fn apply(&mut self, day: (Timestamp, Timestamp), ts: Timestamp, new_balance: u128) -> Result<(), ApplyError> {
        let (day_start, day_end) = day;
        if ts >= day_end {
            return Err(ApplyError::AfterDay);
        }
        if let Some(prev) = self.last_event() {
            if ts < prev {
                return Err(ApplyError::OutOfOrder { previous: prev });
            }
            if ts == prev {
                return if new_balance == self.balance {
                    Ok(())
                } else {
                    Err(ApplyError::Conflict {
                        existing: Amount(self.balance),
                    })
                };
            }
        }
        if ts > day_start {
            let from = self.segment_start(day_start);
            self.integral += segment(self.balance, from, ts);
        }
        self.balance = new_balance;
        self.last_ts = ts.0;
        self.flags |= HAS_EVENT;
        Ok(())
    }

    /// `(average, closing)`, the average rounded down.
    fn finish(&self, day: (Timestamp, Timestamp)) -> (Amount, Amount) {
        let from = self.segment_start(day.0);
        let integral = self.integral + segment(self.balance, from, day.1);
        let avg = integral / U256::from(NANOS_PER_DAY as u64);
        // avg ≤ max balance seen ≤ u128::MAX, so the conversion cannot fail.
        let avg = u128::try_from(avg).unwrap_or(u128::MAX);
        (Amount(avg), Amount(self.balance))
    }
}

impl TwabAccumulator {
    /// Starts a day with the balance carried from earlier days (0 if none).
    pub fn open(day: Day, opening_balance: Amount) -> TwabAccumulator {
        TwabAccumulator {
            day_start: day.start(),
            day_end: day.end(),
            state: Acc::open(opening_balance.0),
        }
    }

    /// The current running balance.
    pub fn balance(&self) -> Amount {
        Amount(self.state.balance)
    }

    /// Applies an event (`ts`, new absolute balance). Events before the day only move the
    /// opening balance. Events must arrive in non-decreasing `ts` order; an event at the
    /// same instant as the previous one must carry the same balance.
    pub fn apply(&mut self, ts: Timestamp, new_balance: Amount) -> Result<(), ApplyError> {
        self.state.apply((self.day_start, self.day_end), ts, new_balance.0)
    }

    /// Closes the day: returns `(average, closing_balance)` in base units, the average
    /// rounded down.
    pub fn finish(self) -> (Amount, Amount) {
        self.state.finish((self.day_start, self.day_end))
    }
}

fn segment(balance: u128, from: Timestamp, to: Timestamp) -> U256 {
    debug_assert!(to >= from);
    let dt = (to.0 - from.0) as u64;
    U256::from(balance) * U256::from(dt)
}

/// Average and closing balance for one account and one day from an opening balance and
/// that account's events in any order (sorted here; for the streaming path use
/// [`DayCloser`]).
///
/// Errors: [`CoreError::ConflictingEvents`] for two events at one instant with different
/// balances. Events after the day are ignored.
pub fn daily_average(day: Day, opening_balance: Amount, events: &[(Timestamp, Amount)]) -> Result<(Amount, Amount)> {
    let mut sorted: Vec<(Timestamp, Amount)> = events.iter().copied().filter(|(ts, _)| *ts < day.end()).collect();
    sorted.sort();
    let mut acc = TwabAccumulator::open(day, opening_balance);
    for (ts, bal) in sorted {
        acc.apply(ts, bal).map_err(|e| apply_error("-", "-", ts, bal, e))?;
    }
    Ok(acc.finish())
}

/// The error for an event an accumulator refused, naming the account and token.
pub fn apply_error(account: &str, token: &str, ts: Timestamp, bal: Amount, e: ApplyError) -> CoreError {
    match e {
        ApplyError::Conflict { existing } => CoreError::ConflictingEvents {
            account_id: account.to_string(),
            token: token.to_string(),
            ts: ts.to_rfc3339(),
            first: existing.0,
            second: bal.0,
        },
        ApplyError::OutOfOrder { previous } => CoreError::Invariant(format!(
            "events for account {account} token {token} out of time order: {ts} after {previous}"
        )),
        ApplyError::AfterDay => CoreError::Invariant(format!(
            "event for account {account} token {token} at {ts} is after the day"
        )),
    }
}

/// One entry of the exchange's balance feed: the new absolute balance of an account's
/// token at an instant.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BalanceEvent {
    /// When the balance changed.
    pub ts: Timestamp,
    /// Account id.
    pub account_id: String,
    /// Token symbol.
    pub token: String,
    /// New balance, base units.
    pub balance: Amount,
}

/// One closed (account, token, day), borrowed from a [`ClosedDay`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedRef<'a> {
    /// Account id.
    pub account_id: &'a str,
    /// TWAB over the day, base units, rounded down.
    pub average: Amount,
    /// Balance at the end of the day (the next day's opening balance), base units.
    pub closing: Amount,
    /// True when an event of the account was applied (its closing balance may differ
    /// from its opening one); false when it only carried its opening balance.
    pub changed: bool,
}

/// Streams one token's balance events for one day and keeps one accumulator per account.
///
/// Feed opening balances with [`DayCloser::set_opening`] (before any event of that
/// account), then events with [`DayCloser::apply`] in non-decreasing time order per
/// account (a global time order satisfies this), then [`DayCloser::finish`].
///
/// Memory: per account its id's bytes plus about 80 bytes ([`AccountIds`] and a 64-byte
/// accumulator), independent of the number of events.
#[derive(Debug)]
pub struct DayCloser {
    day: Day,
    bounds: (Timestamp, Timestamp),
    token: String,
    ids: AccountIds,
    accs: Vec<Acc>,
    max_accounts: usize,
}

impl DayCloser {
    /// A closer for `token` on `day` that refuses to track more than `max_accounts`
    /// accounts (a bound, so a runaway feed fails loudly instead of exhausting memory).
    pub fn new(day: Day, token: &str, max_accounts: usize) -> DayCloser {
        DayCloser {
            day,
            bounds: (day.start(), day.end()),
            token: token.to_string(),
            ids: AccountIds::new(),
            accs: Vec::new(),
            max_accounts,
        }
    }

    /// The day being closed.
    pub fn day(&self) -> Day {
        self.day
    }

    fn add(&mut self, account_id: &str, opening: u128) -> Result<usize> {
        if self.accs.len() >= self.max_accounts {
            return Err(CoreError::InvalidInput(format!(
                "day close of {} {} exceeds the bound of {} accounts",
                self.token, self.day, self.max_accounts
            )));
        }
        let idx = self.ids.intern(account_id)? as usize;
        debug_assert_eq!(idx, self.accs.len());
        self.accs.push(Acc::open(opening));
        Ok(idx)
    }

    /// Sets the balance carried from earlier days for an account.
    ///
    /// Errors when the account already has an accumulator (opening balances come first).
    pub fn set_opening(&mut self, account_id: &str, balance: Amount) -> Result<()> {
        if self.ids.get(account_id).is_some() {
            return Err(CoreError::Invariant(format!(
                "opening balance for account {account_id} token {} set twice or after its events",
                self.token
            )));
        }
        self.add(account_id, balance.0).map(|_| ())
    }

    /// Applies one event. Events at or after the end of the day are ignored (they belong
    /// to a later day); events before the day move the opening balance.
    pub fn apply(&mut self, account_id: &str, ts: Timestamp, balance: Amount) -> Result<()> {
        if ts >= self.bounds.1 {
            return Ok(());
        }
        let idx = match self.ids.get(account_id) {
            Some(i) => i as usize,
            None => self.add(account_id, 0)?,
        };
        self.accs[idx]
            .apply(self.bounds, ts, balance.0)
            .map_err(|e| apply_error(account_id, &self.token, ts, balance, e))
    }

    /// Number of accounts tracked.
    pub fn len(&self) -> usize {
        self.accs.len()
    }

    /// True when no account is tracked.
    pub fn is_empty(&self) -> bool {
        self.accs.is_empty()
    }

    /// Closes every account; the result lists them by account id (byte order).
    pub fn finish(self) -> ClosedDay {
        let order = self.ids.sorted();
        ClosedDay {
            bounds: self.bounds,
            ids: self.ids,
            accs: self.accs,
            order,
        }
    }
}

/// The closed accounts of one token-day, in account-id order (byte order).
#[derive(Debug)]
pub struct ClosedDay {
    bounds: (Timestamp, Timestamp),
    ids: AccountIds,
    accs: Vec<Acc>,
    order: Vec<u32>,
}

impl ClosedDay {
    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.accs.len()
    }

    /// True when there is no account.
    pub fn is_empty(&self) -> bool {
        self.accs.is_empty()
    }

    /// Every account by id (byte order), with its average and closing balance.
    pub fn iter(&self) -> impl Iterator<Item = ClosedRef<'_>> + '_ {
        self.order.iter().map(move |&i| {
            let acc = &self.accs[i as usize];
            let (average, closing) = acc.finish(self.bounds);
            ClosedRef {
                account_id: self.ids.name(i),
                average,
                closing,
                changed: acc.flags & HAS_EVENT != 0,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day() -> Day {
        Day::parse("2025-06-01").unwrap()
    }
    fn at(h: i64) -> Timestamp {
        Timestamp(day().start().0 + h * 3_600 * 1_000_000_000)
    }

    #[test]
    fn success_constant_balance() {
        let (avg, close) = daily_average(day(), Amount(100), &[]).unwrap();
        assert_eq!((avg, close), (Amount(100), Amount(100)));
    }

    #[test]
    fn success_half_day() {
        // 0 until 12:00, then 100: average 50.
        let (avg, close) = daily_average(day(), Amount(0), &[(at(12), Amount(100))]).unwrap();
        assert_eq!((avg, close), (Amount(50), Amount(100)));
    }

    #[test]
    fn success_rounds_down() {
        // 1 unit for 1 hour: 1/24 → 0.
        let evs = [(at(0), Amount(1)), (at(1), Amount(0))];
        assert_eq!(daily_average(day(), Amount(0), &evs).unwrap().0, Amount(0));
        // 25 units for 1 hour: 25/24 → 1.
        let evs = [(at(0), Amount(25)), (at(1), Amount(0))];
        assert_eq!(daily_average(day(), Amount(0), &evs).unwrap().0, Amount(1));
    }

    #[test]
    fn success_event_at_midnight_counts_from_start() {
        let evs = [(at(0), Amount(80))];
        assert_eq!(daily_average(day(), Amount(10), &evs).unwrap().0, Amount(80));
    }

    #[test]
    fn success_events_before_day_set_opening_and_after_ignored() {
        let evs = [(at(-5), Amount(40)), (at(-1), Amount(60)), (at(24), Amount(1_000))];
        assert_eq!(daily_average(day(), Amount(7), &evs).unwrap(), (Amount(60), Amount(60)));
    }

    #[test]
    fn success_huge_balances_no_overflow() {
        let big = Amount(u128::MAX);
        assert_eq!(daily_average(day(), big, &[]).unwrap().0, big);
    }

    #[test]
    fn fail_conflicting_same_instant() {
        let evs = [(at(3), Amount(1)), (at(3), Amount(2))];
        assert!(matches!(
            daily_average(day(), Amount(0), &evs),
            Err(CoreError::ConflictingEvents { .. })
        ));
        // identical duplicates are harmless
        let evs = [(at(3), Amount(2)), (at(3), Amount(2))];
        assert!(daily_average(day(), Amount(0), &evs).is_ok());
    }

    #[test]
    fn fail_closer_bound() {
        let mut c = DayCloser::new(day(), "SOL", 1);
        c.apply("a", at(1), Amount(1)).unwrap();
        assert!(c.apply("b", at(1), Amount(1)).is_err());
    }

    #[test]
    fn success_closer_lists_by_id_and_marks_changed() {
        let mut c = DayCloser::new(day(), "SOL", 10);
        c.set_opening("b", Amount(48)).unwrap();
        c.set_opening("c", Amount(7)).unwrap();
        c.apply("a", at(12), Amount(24)).unwrap();
        c.apply("b", at(12), Amount(0)).unwrap();
        c.apply("a", at(25), Amount(1_000)).unwrap(); // next day: ignored
        let closed = c.finish();
        let got: Vec<(&str, u128, u128, bool)> = closed
            .iter()
            .map(|r| (r.account_id, r.average.0, r.closing.0, r.changed))
            .collect();
        assert_eq!(got, vec![("a", 12, 24, true), ("b", 24, 0, true), ("c", 7, 7, false)]);
    }

    #[test]
    fn fail_opening_after_events() {
        let mut c = DayCloser::new(day(), "SOL", 10);
        c.apply("a", at(1), Amount(1)).unwrap();
        assert!(c.set_opening("a", Amount(5)).is_err());
    }

    proptest! {
        /// The average lies between the smallest and largest balance held during the day.
        #[test]
        fn prop_average_bounded(open in 0u128..1_000_000, evs in prop::collection::vec((0i64..86_400, 0u128..1_000_000), 0..20)) {
            let evs: Vec<(Timestamp, Amount)> = {
                let mut m = std::collections::BTreeMap::new();
                for (s, b) in evs { m.insert(s, b); }
                m.into_iter().map(|(s, b)| (Timestamp(day().start().0 + s * 1_000_000_000), Amount(b))).collect()
            };
            let (avg, _) = daily_average(day(), Amount(open), &evs).unwrap();
            let mut held: Vec<u128> = evs.iter().map(|e| e.1.0).collect();
            if evs.first().map(|e| e.0 > day().start()).unwrap_or(true) { held.push(open); }
            prop_assert!(avg.0 >= *held.iter().min().unwrap());
            prop_assert!(avg.0 <= *held.iter().max().unwrap());
        }

        /// Streaming through DayCloser equals the one-shot function.
        #[test]
        fn prop_closer_matches_daily_average(evs in prop::collection::vec((0i64..86_400, 0u128..1_000_000), 0..20)) {
            let mut m = std::collections::BTreeMap::new();
            for (s, b) in evs { m.insert(s, b); }
            let evs: Vec<(Timestamp, Amount)> = m.into_iter().map(|(s, b)| (Timestamp(day().start().0 + s * 1_000_000_000), Amount(b))).collect();
            let mut c = DayCloser::new(day(), "SOL", 10);
            c.set_opening("a", Amount(5)).unwrap();
            for (ts, b) in &evs { c.apply("a", *ts, *b).unwrap(); }
            let closed = c.finish();
            let first = closed.iter().next().unwrap();
            let (avg, close) = daily_average(day(), Amount(5), &evs).unwrap();
            prop_assert_eq!(first.average, avg);
            prop_assert_eq!(first.closing, close);
        }
    }
}

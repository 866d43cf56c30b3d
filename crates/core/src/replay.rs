//! The stateless replay of one day (`softstake allocate`), built for one pass over a
//! balance feed in any order with memory proportional to accounts.
//!
//! ```text
//!  accounts ─▶ ids + "takes part on the day" flag (eligibility rules, once per account)
//!  events (any order, one pass) ─▶ per token and account:
//!        before the day: keep only the latest (the opening balance)
//!        during the day: keep (account, ts, balance), 32 bytes each
//!        after the day:  ignored
//!  finish, per token: sort the day's events by (account, ts) ─▶ TWAB per account
//!        ─▶ eligible ─▶ plan (R, fee, carry) ─▶ leftover cut ─▶ rows in id order
//! ```
//!
//! It gives what the store's close and distribution give for the same inputs (the
//! property test `stateless == stored` checks it account by account).

use std::collections::BTreeMap;

use crate::allocate::{plan_allocation, AllocationPlan, LeftoverCut, Payer};
use crate::amount::Amount;
use crate::eligibility::{account_status, eligible_amount, Account};
use crate::error::{CoreError, Result};
use crate::intern::AccountIds;
use crate::time::{Day, Timestamp};
use crate::token::{TokenConfig, TokenRegistry};
use crate::twab::{apply_error, TwabAccumulator};

/// No event before the day (`TokenState::before[i].0`).
const NONE: i64 = i64::MIN;

/// One token's events as they arrive.
#[derive(Debug, Default)]
struct TokenState {
    ids: AccountIds,
    /// Latest event before the day per account: `(ts, balance)`, `ts = NONE` when none.
    before: Vec<(i64, u128)>,
    /// Events of the day: `(account index, ts, balance)`.
    during: Vec<(u32, i64, u128)>,
}

/// One day replayed from its inputs, fed account by account and event by event.
#[derive(Debug)]
pub struct DayReplay<'r> {
    registry: &'r TokenRegistry,
    day: Day,
    /// `[start, end)` of the day, nanoseconds.
    bounds: (i64, i64),
    accounts: AccountIds,
    takes_part: Vec<bool>,
    tokens: BTreeMap<String, TokenState>,
    /// Expected accounts per token (sizes the tables up front).
    capacity: usize,
}

/// One account's line of a replayed token-day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayRow<'a> {
    /// Account id.
    pub account_id: &'a str,
    /// TWAB over the day, base units.
    pub average: Amount,
    /// Eligible amount, base units.
    pub eligible: Amount,
    /// Reward, base units.
    pub reward: Amount,
}

/// One replayed token-day, ready to be listed.
#[derive(Debug)]
pub struct ReplayedToken {
    /// Token symbol.
    pub token: String,
    /// R, fee, carry in and out, D, Σe, APR.
    pub plan: AllocationPlan,
    /// Accounts with a balance during the day (the rows).
    pub accounts: u64,
    /// Accounts with a positive eligible amount.
    pub eligible_accounts: u64,
    ids: AccountIds,
    order: Vec<u32>,
    /// Per account index: `(average, eligible)`; accounts without a row have both zero.
    values: Vec<(u128, u128)>,
    cut: LeftoverCut,
}

impl<'r> DayReplay<'r> {
    /// A replay of `day` with the rules and tokens of `registry`.
    pub fn new(registry: &'r TokenRegistry, day: Day) -> DayReplay<'r> {
        DayReplay {
            registry,
            day,
            bounds: (day.start().0, day.end().0),
            accounts: AccountIds::new(),
            takes_part: Vec::new(),
            tokens: BTreeMap::new(),
            capacity: 0,
        }
    }

    /// Sizes each token's tables for about `accounts` accounts (a hint: no rehashing up
    /// to it; more still works).
    pub fn with_capacity(mut self, accounts: usize) -> DayReplay<'r> {
        self.capacity = accounts;
        self
    }

    /// The day replayed.
    pub fn day(&self) -> Day {
        self.day
    }

    /// The table-size hint given by [`DayReplay::with_capacity`].
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// True when nothing was fed yet.
    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty() && self.tokens.is_empty()
    }

    /// Adds an account (activation, deactivation, jurisdiction). Errors on an account
    /// given twice.
    pub fn add_account(&mut self, a: &Account) -> Result<()> {
        let before = self.accounts.len();
        let i = self.accounts.intern(&a.account_id)? as usize;
        if i < before {
            return Err(CoreError::InvalidInput(format!("account {} given twice", a.account_id)));
        }
        self.takes_part.push(account_status(a, self.day, self.registry).is_ok());
        Ok(())
    }

    /// Adds one balance event of a token in the registry (in any order).
    ///
    /// Errors: an unknown token; two events of one account at one instant with different
    /// balances (when it matters to the day: during it, or as its opening balance).
    pub fn add_event(&mut self, token: &str, account_id: &str, ts: Timestamp, balance: Amount) -> Result<()> {
        if ts.0 >= self.bounds.1 {
            return Ok(());
        }
        let st = match self.tokens.get_mut(token) {
            Some(st) => st,
            None => {
                self.registry.get(token)?;
                let cap = self.capacity;
                self.tokens.entry(token.to_string()).or_insert_with(|| TokenState {
                    ids: AccountIds::with_capacity(cap, 16),
                    before: Vec::with_capacity(cap),
                    during: Vec::new(),
                })
            }
        };
        let before = st.ids.len();
        let i = st.ids.intern(account_id)?;
        if i as usize == before {
            st.before.push((NONE, 0));
        }
        if ts.0 >= self.bounds.0 {
            st.during.push((i, ts.0, balance.0));
            return Ok(());
        }
        let slot = &mut st.before[i as usize];
        if slot.0 == ts.0 && slot.1 != balance.0 {
            return Err(CoreError::ConflictingEvents {
                account_id: account_id.to_string(),
                token: token.to_string(),
                ts: ts.to_rfc3339(),
                first: slot.1,
                second: balance.0,
            });
        }
        if slot.0 == NONE || ts.0 > slot.0 {
            *slot = (ts.0, balance.0);
        }
        Ok(())
    }

    /// Adds everything `other` was fed (its events; its accounts must be disjoint from
    /// ours), as if it had all been fed here: the parallel readers of one day each fill a
    /// replay and merge them. Conflicts found across the two are refused as
    /// [`DayReplay::add_event`] refuses them.
    ///
    /// Errors: `other` is for another day or registry, an account given to both,
    /// conflicting events.
    pub fn merge(&mut self, other: DayReplay<'_>) -> Result<()> {
        if other.day != self.day || !std::ptr::eq(other.registry, self.registry) {
            return Err(CoreError::Invariant(
                "merging replays of different days or registries".into(),
            ));
        }
        for i in 0..other.accounts.len() as u32 {
            let before = self.accounts.len();
            let g = self.accounts.intern(other.accounts.name(i))?;
            if (g as usize) < before {
                return Err(CoreError::InvalidInput(format!(
                    "account {} given twice",
                    other.accounts.name(i)
                )));
            }
            self.takes_part.push(other.takes_part[i as usize]);
        }
        for (token, theirs) in other.tokens {
            let ours = self.tokens.entry(token.clone()).or_default();
            let mut map = Vec::with_capacity(theirs.ids.len());
            for (j, open) in theirs.before.iter().enumerate() {
                let name = theirs.ids.name(j as u32);
                let before = ours.ids.len();
                let i = ours.ids.intern(name)?;
                if i as usize == before {
                    ours.before.push((NONE, 0));
                }
                map.push(i);
                if open.0 == NONE {
                    continue;
                }
                let slot = &mut ours.before[i as usize];
                if slot.0 == open.0 && slot.1 != open.1 {
                    return Err(CoreError::ConflictingEvents {
                        account_id: name.to_string(),
                        token: token.clone(),
                        ts: Timestamp(open.0).to_rfc3339(),
                        first: slot.1,
                        second: open.1,
                    });
                }
                if slot.0 == NONE || open.0 > slot.0 {
                    *slot = *open;
                }
            }
            ours.during
                .extend(theirs.during.iter().map(|&(j, ts, b)| (map[j as usize], ts, b)));
        }
        Ok(())
    }

    /// Tokens with events before the end of the day, in symbol order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.tokens.keys().map(String::as_str)
    }

    /// Replays every token with events, plus those in `rewards` (`token → (R, carry_in)`,
    /// base units), in symbol order.
    ///
    /// Errors: conflicting events, an unknown token in `rewards`, arithmetic overflow.
    pub fn finish(mut self, rewards: &BTreeMap<String, (Amount, Amount)>) -> Result<Vec<ReplayedToken>> {
        for t in rewards.keys() {
            self.registry.get(t)?;
            self.tokens.entry(t.clone()).or_default();
        }
        let tokens = std::mem::take(&mut self.tokens);
        tokens
            .into_iter()
            .map(|(token, st)| {
                let cfg = self.registry.get(&token)?;
                let (r, carry) = rewards.get(&token).copied().unwrap_or_default();
                self.finish_token(&token, cfg, st, r, carry)
            })
            .collect()
    }

    fn finish_token(
        &self,
        token: &str,
        cfg: &TokenConfig,
        st: TokenState,
        r: Amount,
        carry: Amount,
    ) -> Result<ReplayedToken> {
        let TokenState {
            ids,
            before,
            mut during,
        } = st;
        during.sort_unstable_by_key(|e| (e.0, e.1));
        let mut values: Vec<(u128, u128)> = vec![(0, 0); ids.len()];
        let mut rows = vec![false; ids.len()];
        let mut k = 0;
        for (i, open) in before.iter().enumerate() {
            let mut acc = TwabAccumulator::open(self.day, Amount(if open.0 == NONE { 0 } else { open.1 }));
            while k < during.len() && during[k].0 as usize == i {
                let (_, ts, b) = during[k];
                acc.apply(Timestamp(ts), Amount(b))
                    .map_err(|e| apply_error(ids.name(i as u32), token, Timestamp(ts), Amount(b), e))?;
                k += 1;
            }
            let (average, closing) = acc.finish();
            if average.is_zero() && closing.is_zero() {
                continue;
            }
            rows[i] = true;
            let takes_part = self
                .accounts
                .get(ids.name(i as u32))
                .is_some_and(|g| self.takes_part[g as usize]);
            let eligible = if takes_part {
                eligible_amount(average, cfg)
            } else {
                Amount::ZERO
            };
            values[i] = (average.0, eligible.0);
        }
        drop(during);
        let accounts = rows.iter().filter(|r| **r).count() as u64;
        let total = Amount::checked_sum(values.iter().map(|v| Amount(v.1)), "Σe")?;
        let plan = plan_allocation(r, carry, cfg.fee_bps, total)?;
        let mut remainders = Vec::new();
        let mut floor_sum = Amount::ZERO;
        let mut eligible_accounts = 0;
        for v in values.iter().filter(|v| v.1 > 0) {
            let (q, rem) = plan.share(Amount(v.1))?;
            floor_sum = floor_sum.checked_add(q, "Σ floor shares")?;
            eligible_accounts += 1;
            if rem > 0 {
                remainders.push(rem);
            }
        }
        let leftover = plan.to_pay().checked_sub(floor_sum, "leftover units")?;
        let cut = LeftoverCut::new(&mut remainders, leftover.0)?;
        let order: Vec<u32> = ids.sorted().into_iter().filter(|i| rows[*i as usize]).collect();
        Ok(ReplayedToken {
            token: token.to_string(),
            plan,
            accounts,
            eligible_accounts,
            ids,
            order,
            values,
            cut,
        })
    }
}

impl ReplayedToken {
    /// Calls `row` for every account with a balance during the day, in id order (byte
    /// order), with its reward; checks at the end that the rewards add up to `D − carry`.
    pub fn for_each_row(&self, mut row: impl FnMut(ReplayRow<'_>) -> Result<()>) -> Result<()> {
        let mut payer = Payer::new(&self.plan, self.cut);
        for &i in &self.order {
            let (average, eligible) = self.values[i as usize];
            let id = self.ids.name(i);
            let reward = if eligible > 0 {
                payer.pay(id, Amount(eligible))?
            } else {
                Amount::ZERO
            };
            row(ReplayRow {
                account_id: id,
                average: Amount(average),
                eligible: Amount(eligible),
                reward,
            })?;
        }
        payer.finish().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cycle::replay_day;
    use crate::twab::BalanceEvent;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn reg() -> TokenRegistry {
        TokenRegistry::from_toml_str(
            r#"
[tokens.SOL]
chain = "solana"
decimals = 9
base_unit = "lamports"
min_holding = "0.000000010"
cap = "0.000001000"
fee_bps = 500
unbonding_period_secs = 0
"#,
        )
        .unwrap()
    }

    fn day() -> Day {
        Day::parse("2025-06-02").unwrap()
    }

    proptest! {
        /// The one-pass replay equals the in-memory replay (every event sorted) on random
        /// days, events in any order, before, during and after the day.
        #[test]
        fn prop_one_pass_matches_in_memory(
            evs in prop::collection::vec((0usize..6, -86_400i64..2 * 86_400, 0u128..3_000), 0..60),
            activated in prop::collection::vec(-3i64..2, 6),
            reward in 0u128..100_000,
        ) {
            let r = reg();
            let d = day();
            let accounts: Vec<Account> = (0..6).map(|i| Account::new(&format!("a{i}"), if i == 5 { "US" } else { "DE" },
                Timestamp(d.start().0 + activated[i] * 86_400_000_000_000), None).unwrap()).collect();
            // One event per (account, second): conflicts are tested elsewhere.
            let mut seen = std::collections::BTreeMap::new();
            for (a, s, b) in evs { seen.insert((a, s), b); }
            let events: Vec<BalanceEvent> = seen.into_iter().map(|((a, s), b)| BalanceEvent {
                ts: Timestamp(d.start().0 + s * 1_000_000_000),
                account_id: format!("a{a}"),
                token: "SOL".into(),
                balance: Amount(b),
            }).collect();
            let map: HashMap<String, Account> = accounts.iter().map(|a| (a.account_id.clone(), a.clone())).collect();
            let mut rewards = std::collections::BTreeMap::new();
            rewards.insert("SOL".to_string(), Amount(reward));
            let want = replay_day(&r, &map, &events, &rewards, d).unwrap();
            let mut rp = DayReplay::new(&r, d);
            for a in &accounts { rp.add_account(a).unwrap(); }
            for e in events.iter().rev() { rp.add_event(&e.token, &e.account_id, e.ts, e.balance).unwrap(); }
            let mut with_carry = std::collections::BTreeMap::new();
            with_carry.insert("SOL".to_string(), (Amount(reward), Amount::ZERO));
            let got = rp.finish(&with_carry).unwrap();
            prop_assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                let mut rows = Vec::new();
                g.for_each_row(|r| { rows.push((r.account_id.to_string(), r.average, r.eligible, r.reward)); Ok(()) }).unwrap();
                let expect: Vec<_> = w.rows.iter().map(|r| (r.account_id.clone(), r.average, r.eligible, r.reward)).collect();
                prop_assert_eq!(rows, expect);
                prop_assert_eq!(g.plan.carry_out, w.allocation.carry_out);
            }
        }
    }

    proptest! {
        /// Events split between two replays and merged give what one replay gives.
        #[test]
        fn prop_merge_equals_one_replay(
            evs in prop::collection::vec((0usize..8, -86_400i64..2 * 86_400, 0u128..3_000, prop::bool::ANY), 0..60),
        ) {
            let r = reg();
            let d = day();
            let mut seen = std::collections::BTreeMap::new();
            for (a, s, b, side) in evs { seen.insert((a, s), (b, side)); }
            let accounts: Vec<Account> = (0..8).map(|i| Account::new(&format!("a{i}"), "DE", Timestamp(d.start().0 - 86_400_000_000_000), None).unwrap()).collect();
            let mut one = DayReplay::new(&r, d);
            let (mut left, mut right) = (DayReplay::new(&r, d), DayReplay::new(&r, d));
            for a in &accounts { one.add_account(a).unwrap(); left.add_account(a).unwrap(); }
            for ((a, s), (b, side)) in &seen {
                let ts = Timestamp(d.start().0 + s * 1_000_000_000);
                let id = format!("a{a}");
                one.add_event("SOL", &id, ts, Amount(*b)).unwrap();
                if *side { left.add_event("SOL", &id, ts, Amount(*b)).unwrap(); } else { right.add_event("SOL", &id, ts, Amount(*b)).unwrap(); }
            }
            left.merge(right).unwrap();
            let mut rw = std::collections::BTreeMap::new();
            rw.insert("SOL".to_string(), (Amount(10_000), Amount::ZERO));
            let rows = |t: Vec<ReplayedToken>| -> Vec<(String, Amount, Amount, Amount)> {
                let mut v = Vec::new();
                for x in &t { x.for_each_row(|r| { v.push((r.account_id.to_string(), r.average, r.eligible, r.reward)); Ok(()) }).unwrap(); }
                v
            };
            prop_assert_eq!(rows(left.finish(&rw).unwrap()), rows(one.finish(&rw).unwrap()));
        }
    }

    #[test]
    fn fail_conflicting_opening_events() {
        let r = reg();
        let mut rp = DayReplay::new(&r, day());
        let t = Timestamp(day().start().0 - 5);
        rp.add_event("SOL", "a", t, Amount(1)).unwrap();
        assert!(matches!(
            rp.add_event("SOL", "a", t, Amount(2)),
            Err(CoreError::ConflictingEvents { .. })
        ));
    }

    #[test]
    fn fail_conflicting_day_events() {
        let r = reg();
        let mut rp = DayReplay::new(&r, day());
        let t = Timestamp(day().start().0 + 5);
        rp.add_event("SOL", "a", t, Amount(1)).unwrap();
        rp.add_event("SOL", "a", t, Amount(2)).unwrap();
        assert!(matches!(
            rp.finish(&BTreeMap::new()),
            Err(CoreError::ConflictingEvents { .. })
        ));
    }

    #[test]
    fn success_carry_in_is_paid() {
        let r = reg();
        let d = day();
        let mut rp = DayReplay::new(&r, d);
        rp.add_account(&Account::new("a", "DE", Timestamp(d.start().0 - 86_400_000_000_000), None).unwrap())
            .unwrap();
        rp.add_event("SOL", "a", Timestamp(d.start().0 - 1), Amount(500))
            .unwrap();
        let mut rewards = BTreeMap::new();
        rewards.insert("SOL".to_string(), (Amount(100), Amount(40)));
        let t = rp.finish(&rewards).unwrap().remove(0);
        assert_eq!(t.plan.distributable, Amount(95 + 40));
        let mut paid = Amount::ZERO;
        t.for_each_row(|r| {
            paid = r.reward;
            Ok(())
        })
        .unwrap();
        assert_eq!(paid, Amount(135));
    }
}

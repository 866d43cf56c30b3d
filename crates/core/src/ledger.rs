//! Double-entry ledger: every movement is a set of postings whose debits equal its
//! credits per token. Entries are built and checked here; the store persists them.
//!
//! ```text
//!  realized on chain  Dr stake:<validator>    Cr chain:rewards        r   (sync, auto-compound)
//!  realized, claimed  Dr pool:buffer          Cr chain:rewards        r   (sync, claim chains)
//!  recorded by hand   Dr custody:rewards      Cr chain:rewards        r   (rewards record)
//!  ── daily distribution of day d ──
//!  reward received    Dr chain:rewards        Cr pool:undistributed   R
//!  carry in           Dr pool:carry           Cr pool:undistributed   carry_in
//!  fee                Dr pool:undistributed   Cr platform:fees        fee
//!  payouts            Dr pool:undistributed   Cr users:rewards        Σ reward_u (detail: payouts table)
//!  carry out          Dr pool:undistributed   Cr pool:carry           carry_out
//!  ── treasury ──
//!  custodial change   Dr pool:buffer          Cr custody:users        ΔP (reversed when P falls)
//!  delegate           Dr stake:<validator>    Cr pool:buffer          a
//!  withdraw           Dr pool:buffer          Cr stake:<validator>    a
//!  slashing (acked)   Dr chain:slashing       Cr stake:<validator>    loss
//! ```
//! After a day's distribution entries `pool:undistributed` nets to zero for that day,
//! and `chain:rewards` nets to the realized rewards not yet distributed. The net of
//! `stake:<validator>` is the position the ledger expects on chain (reconciliation).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::allocate::AllocationPlan;
use crate::amount::{Amount, Net};
use crate::error::{CoreError, Result};
use crate::time::Day;

/// A ledger account name such as `pool:undistributed` or `stake:<validator>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LedgerAccount(pub String);

impl LedgerAccount {
    /// Realized rewards arriving from the chain (the source side).
    pub fn chain_rewards() -> Self {
        LedgerAccount("chain:rewards".into())
    }
    /// Rewards held for distribution.
    pub fn undistributed() -> Self {
        LedgerAccount("pool:undistributed".into())
    }
    /// Rewards carried to a later day.
    pub fn carry() -> Self {
        LedgerAccount("pool:carry".into())
    }
    /// Platform fee revenue.
    pub fn fees() -> Self {
        LedgerAccount("platform:fees".into())
    }
    /// Rewards paid into users' spot accounts (control account; the per-user detail is the
    /// payouts table).
    pub fn users_rewards() -> Self {
        LedgerAccount("users:rewards".into())
    }
    /// Custodial funds not staked (the liquidity buffer).
    pub fn buffer() -> Self {
        LedgerAccount("pool:buffer".into())
    }
    /// Stake delegated to a validator (all states until withdrawn).
    pub fn stake(validator: &str) -> Self {
        LedgerAccount(format!("stake:{validator}"))
    }
    /// Stake lost to slashing or other chain-side shortfalls found by reconciliation.
    pub fn slashing() -> Self {
        LedgerAccount("chain:slashing".into())
    }
    /// Users' custodial balances (the custodial total P as a liability).
    pub fn custody_users() -> Self {
        LedgerAccount("custody:users".into())
    }
    /// Realized rewards received outside chain sync (recorded by hand from a file).
    pub fn custody_rewards() -> Self {
        LedgerAccount("custody:rewards".into())
    }
}

impl fmt::Display for LedgerAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Debit or credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Debit.
    Debit,
    /// Credit.
    Credit,
}

/// One line of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    /// Ledger account.
    pub account: LedgerAccount,
    /// Token symbol.
    pub token: String,
    /// Debit or credit.
    pub side: Side,
    /// Amount, base units.
    pub amount: Amount,
}

/// A balanced set of postings with a kind and a reference (day, operation id, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Kind, e.g. `reward_received`, `fee`, `payout`, `carry_out`, `delegate`.
    pub kind: String,
    /// What the entry refers to, e.g. `2025-06-01` or an idempotency key.
    pub reference: String,
    /// Postings; debits equal credits per token.
    pub postings: Vec<Posting>,
}

impl Entry {
    /// Starts an empty entry.
    pub fn new(kind: &str, reference: &str) -> Entry {
        Entry {
            kind: kind.to_string(),
            reference: reference.to_string(),
            postings: Vec::new(),
        }
    }

    /// Adds a posting pair: `debit` is debited and `credit` credited with `amount` of
    /// `token`; zero amounts are skipped.
    pub fn transfer(mut self, debit: LedgerAccount, credit: LedgerAccount, token: &str, amount: Amount) -> Entry {
        if amount.is_zero() {
            return self;
        }
        self.postings.push(Posting {
            account: debit,
            token: token.to_string(),
            side: Side::Debit,
            amount,
        });
        self.postings.push(Posting {
            account: credit,
            token: token.to_string(),
            side: Side::Credit,
            amount,
        });
        self
    }

    /// Checks that debits equal credits per token.
    pub fn check_balanced(&self) -> Result<()> {
        let mut sums: BTreeMap<&str, (Amount, Amount)> = BTreeMap::new();
        for p in &self.postings {
            let s = sums.entry(p.token.as_str()).or_default();
            match p.side {
                Side::Debit => s.0 = s.0.checked_add(p.amount, "ledger debits")?,
                Side::Credit => s.1 = s.1.checked_add(p.amount, "ledger credits")?,
            }
        }
        for (token, (d, c)) in sums {
            if d != c {
                return Err(CoreError::UnbalancedEntry {
                    entry: format!("{} {}", self.kind, self.reference),
                    token: token.to_string(),
                    debits: d.0,
                    credits: c.0,
                });
            }
        }
        Ok(())
    }
}

/// The entries that record one token's allocation for one day, each checked balanced,
/// and together leaving `pool:undistributed` at zero for the day.
///
/// The payouts are one posting to the control account `users:rewards` for `Σ rewards`;
/// the per-user detail is the payouts table (the subsidiary ledger), whose sum the store
/// checks against this posting when it writes the day.
pub fn allocation_entries(token: &str, day: Day, plan: &AllocationPlan) -> Result<Vec<Entry>> {
    let r = day.to_string();
    let entries = vec![
        Entry::new("reward_received", &r).transfer(
            LedgerAccount::chain_rewards(),
            LedgerAccount::undistributed(),
            token,
            plan.realized_reward,
        ),
        Entry::new("carry_in", &r).transfer(
            LedgerAccount::carry(),
            LedgerAccount::undistributed(),
            token,
            plan.carry_in,
        ),
        Entry::new("fee", &r).transfer(LedgerAccount::undistributed(), LedgerAccount::fees(), token, plan.fee),
        Entry::new("payout", &r).transfer(
            LedgerAccount::undistributed(),
            LedgerAccount::users_rewards(),
            token,
            plan.to_pay(),
        ),
        Entry::new("carry_out", &r).transfer(
            LedgerAccount::undistributed(),
            LedgerAccount::carry(),
            token,
            plan.carry_out,
        ),
    ];
    let mut undistributed = Net::ZERO;
    for e in &entries {
        e.check_balanced()?;
        for p in e
            .postings
            .iter()
            .filter(|p| p.account == LedgerAccount::undistributed())
        {
            let v = match p.side {
                Side::Debit => Net::positive(p.amount),
                Side::Credit => Net::negative(p.amount),
            };
            undistributed = undistributed.checked_add(v, "ledger net")?;
        }
    }
    if !undistributed.is_zero() {
        return Err(CoreError::Invariant(format!(
            "{token} {day}: pool:undistributed nets to {undistributed}, expected 0"
        )));
    }
    Ok(entries.into_iter().filter(|e| !e.postings.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocate::{allocate, EligibleEntry};

    #[test]
    fn success_allocation_entries_balance() {
        let a = allocate(
            Amount(1_001),
            Amount(3),
            1_000,
            &[
                EligibleEntry {
                    account_id: "a".into(),
                    eligible: Amount(3),
                },
                EligibleEntry {
                    account_id: "b".into(),
                    eligible: Amount(7),
                },
            ],
        )
        .unwrap();
        let es = allocation_entries("SOL", Day::parse("2025-06-01").unwrap(), &a.plan()).unwrap();
        assert!(es.iter().all(|e| e.check_balanced().is_ok()));
        let kinds: Vec<&str> = es.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, vec!["reward_received", "carry_in", "fee", "payout"]);
    }

    #[test]
    fn fail_unbalanced() {
        let mut e = Entry::new("x", "y").transfer(LedgerAccount::fees(), LedgerAccount::buffer(), "SOL", Amount(5));
        e.postings[0].amount = Amount(6);
        assert!(matches!(e.check_balanced(), Err(CoreError::UnbalancedEntry { .. })));
    }
}

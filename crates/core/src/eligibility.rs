//! Who earns on day `d`, and on how much.
//!
//! ```text
//! account ──▶ activated before d? ──▶ not deactivated before end of d? ──▶ jurisdiction allowed?
//!                                                                              │ yes
//! average ──▶ below min_holding → 0 ; else min(average, cap) ◀─────────────────┘
//! ```

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::error::{CoreError, Result};
use crate::time::{Day, Timestamp};
use crate::token::{validate_jurisdiction, TokenConfig, TokenRegistry};

/// A soft-staking account as the exchange knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Exchange account id (opaque string; ordering is byte order).
    pub account_id: String,
    /// ISO 3166-1 alpha-2 jurisdiction of the account holder.
    pub jurisdiction: String,
    /// When the account switched soft staking on (the one-click activation).
    pub activated_at: Timestamp,
    /// When it switched soft staking off, if it did.
    pub deactivated_at: Option<Timestamp>,
}

impl Account {
    /// Builds an account, checking the jurisdiction code and that deactivation is not
    /// before activation.
    pub fn new(
        account_id: &str,
        jurisdiction: &str,
        activated_at: Timestamp,
        deactivated_at: Option<Timestamp>,
    ) -> Result<Account> {
        if account_id.is_empty() || account_id.len() > 128 {
            return Err(CoreError::InvalidInput(format!(
                "account_id {account_id:?} must be 1–128 bytes"
            )));
        }
        validate_jurisdiction(jurisdiction)?;
        if let Some(d) = deactivated_at {
            if d < activated_at {
                return Err(CoreError::InvalidInput(format!(
                    "account {account_id}: deactivated_at {d} is before activated_at {activated_at}"
                )));
            }
        }
        Ok(Account {
            account_id: account_id.to_string(),
            jurisdiction: jurisdiction.to_string(),
            activated_at,
            deactivated_at,
        })
    }
}

/// Why an account earns nothing on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ineligible {
    /// Activated on day `d` or later: snapshots start the day after activation.
    NotYetActive,
    /// Deactivated before the end of day `d`.
    Deactivated,
    /// The jurisdiction is in `excluded_jurisdictions`.
    ExcludedJurisdiction,
}

/// Whether `account` takes part on `day`: activated on a day before `day`, not
/// deactivated before the end of `day`, jurisdiction not excluded.
pub fn account_status(account: &Account, day: Day, registry: &TokenRegistry) -> std::result::Result<(), Ineligible> {
    if registry.is_excluded(&account.jurisdiction) {
        return Err(Ineligible::ExcludedJurisdiction);
    }
    if account.activated_at >= day.start() {
        return Err(Ineligible::NotYetActive);
    }
    if let Some(d) = account.deactivated_at {
        if d < day.end() {
            return Err(Ineligible::Deactivated);
        }
    }
    Ok(())
}

/// The eligible amount for a day's average: 0 below `min_holding`, else
/// `min(average, cap)`, base units.
pub fn eligible_amount(average: Amount, token: &TokenConfig) -> Amount {
    if average < token.min_holding {
        Amount::ZERO
    } else {
        average.min(token.cap)
    }
}

/// Both rules at once: the eligible amount of `account` on `day` for an average
/// balance, 0 when the account does not take part.
pub fn eligible_for_day(
    account: Option<&Account>,
    day: Day,
    average: Amount,
    token: &TokenConfig,
    registry: &TokenRegistry,
) -> Amount {
    match account {
        Some(a) if account_status(a, day, registry).is_ok() => eligible_amount(average, token),
        _ => Amount::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> TokenRegistry {
        TokenRegistry::from_toml_str(
            r#"
[tokens.SOL]
chain = "solana"
decimals = 9
base_unit = "lamports"
min_holding = "1"
cap = "100"
fee_bps = 1000
unbonding_period_secs = 0
"#,
        )
        .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    #[test]
    fn success_activated_day_before() {
        let a = Account::new("a", "DE", ts("2025-05-31T23:59:59Z"), None).unwrap();
        let d = Day::parse("2025-06-01").unwrap();
        assert_eq!(account_status(&a, d, &reg()), Ok(()));
    }

    #[test]
    fn fail_activated_same_day() {
        let a = Account::new("a", "DE", ts("2025-06-01T00:00:00Z"), None).unwrap();
        let d = Day::parse("2025-06-01").unwrap();
        assert_eq!(account_status(&a, d, &reg()), Err(Ineligible::NotYetActive));
    }

    #[test]
    fn fail_deactivated_during_day() {
        let a = Account::new("a", "DE", ts("2025-05-01T00:00:00Z"), Some(ts("2025-06-01T23:00:00Z"))).unwrap();
        let d = Day::parse("2025-06-01").unwrap();
        assert_eq!(account_status(&a, d, &reg()), Err(Ineligible::Deactivated));
        // deactivated exactly at the end of the day: the day counts.
        let a = Account::new("a", "DE", ts("2025-05-01T00:00:00Z"), Some(ts("2025-06-02T00:00:00Z"))).unwrap();
        assert_eq!(account_status(&a, d, &reg()), Ok(()));
    }

    #[test]
    fn fail_excluded_jurisdiction() {
        let a = Account::new("a", "US", ts("2025-05-01T00:00:00Z"), None).unwrap();
        let d = Day::parse("2025-06-01").unwrap();
        assert_eq!(account_status(&a, d, &reg()), Err(Ineligible::ExcludedJurisdiction));
    }

    #[test]
    fn success_min_and_cap() {
        let r = reg();
        let t = r.get("SOL").unwrap();
        assert_eq!(eligible_amount(Amount(999_999_999), t), Amount::ZERO);
        assert_eq!(eligible_amount(Amount(1_000_000_000), t), Amount(1_000_000_000));
        assert_eq!(eligible_amount(Amount(500_000_000_000), t), Amount(100_000_000_000));
    }

    #[test]
    fn fail_bad_account() {
        assert!(Account::new("a", "usa", ts("2025-05-01T00:00:00Z"), None).is_err());
        assert!(Account::new("a", "DE", ts("2025-05-01T00:00:00Z"), Some(ts("2025-04-01T00:00:00Z"))).is_err());
        assert!(Account::new("", "DE", ts("2025-05-01T00:00:00Z"), None).is_err());
    }
}

//! The core crate's one error type and its `Result` alias.

use thiserror::Error;

/// `Result` with [`CoreError`].
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// Everything the pure domain can refuse. Each variant names what was being computed or
/// which input was wrong, so the caller can add the file/line/field context.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A checked addition or multiplication exceeded `u128::MAX` base units.
    #[error("arithmetic overflow in {what}")]
    Overflow {
        /// What was being computed.
        what: &'static str,
    },
    /// A checked subtraction went below zero.
    #[error("arithmetic underflow in {what} (result would be negative)")]
    Underflow {
        /// What was being computed.
        what: &'static str,
    },
    /// A division by zero was attempted.
    #[error("division by zero in {what}")]
    DivisionByZero {
        /// What was being computed.
        what: &'static str,
    },
    /// An amount string could not be parsed exactly.
    #[error("invalid amount {input:?}: {reason}")]
    InvalidAmount {
        /// The input as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// A timestamp or day string could not be parsed.
    #[error("invalid time {input:?}: {reason}")]
    InvalidTime {
        /// The input as given.
        input: String,
        /// Why it was refused.
        reason: String,
    },
    /// The token registry (tokens.toml) is malformed.
    #[error("token config: {0}")]
    TokenConfig(String),
    /// A token symbol that is not in the registry.
    #[error("unknown token {0:?} (not in the token registry)")]
    UnknownToken(String),
    /// A jurisdiction code that is not ISO 3166-1 alpha-2 shaped.
    #[error("invalid jurisdiction {input:?}: expected an ISO 3166-1 alpha-2 code such as \"DE\"")]
    InvalidJurisdiction {
        /// The input as given.
        input: String,
    },
    /// Two balance events for the same account and token at the same instant carry
    /// different balances, so "the latest event" is ambiguous.
    #[error(
        "conflicting balance events for account {account_id} token {token} at {ts}: {first} and {second} base units"
    )]
    ConflictingEvents {
        /// Account id.
        account_id: String,
        /// Token symbol.
        token: String,
        /// RFC 3339 timestamp.
        ts: String,
        /// One balance.
        first: u128,
        /// The other balance.
        second: u128,
    },
    /// A ledger entry whose postings do not sum to zero per token.
    #[error("unbalanced ledger entry {entry}: token {token} debits {debits} != credits {credits}")]
    UnbalancedEntry {
        /// Entry description.
        entry: String,
        /// Token symbol.
        token: String,
        /// Sum of debits, base units.
        debits: u128,
        /// Sum of credits, base units.
        credits: u128,
    },
    /// A domain invariant does not hold (a bug or corrupted input; nothing is written).
    #[error("invariant violated: {0}")]
    Invariant(String),
    /// An input that is well-formed but not acceptable (e.g. a negative window).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

//! The adapters' one error type and its `Result` alias.

use thiserror::Error;

/// `Result` with [`AdapterError`].
pub type Result<T, E = AdapterError> = std::result::Result<T, E>;

/// What a chain call can end in. Only [`AdapterError::Transient`] is retried.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum AdapterError {
    /// Timeout, connection reset, rate limited by the node, node behind: try again. The
    /// request may or may not have reached the chain (a sent transaction is resolved by
    /// its id, never by sending a new one).
    #[error("transient error from {chain}: {message}")]
    Transient {
        /// Chain name.
        chain: String,
        /// What happened.
        message: String,
    },
    /// The chain refused the request; retrying the same request fails the same way.
    #[error("rejected by {chain}: {reason}")]
    Rejected {
        /// Chain name.
        chain: String,
        /// The chain's reason (its error code or message).
        reason: String,
    },
    /// The treasury account cannot pay for the operation.
    #[error("insufficient funds on {chain}: need {needed} base units, have {available}")]
    InsufficientFunds {
        /// Chain name.
        chain: String,
        /// Needed, base units.
        needed: u128,
        /// Available, base units.
        available: u128,
    },
    /// The request is malformed (unknown validator, zero amount, below minimum, …);
    /// nothing was sent.
    #[error("bad input for {chain}: {message}")]
    BadInput {
        /// Chain name.
        chain: String,
        /// What is wrong.
        message: String,
    },
    /// The chain answered something that does not make sense (a negative balance, a
    /// malformed response); nothing is recorded from it.
    #[error("unexpected answer from {chain}: {message}")]
    BadResponse {
        /// Chain name.
        chain: String,
        /// What was wrong with it.
        message: String,
    },
    /// A signer could not be loaded or could not sign (the key itself is never shown).
    #[error("signer: {0}")]
    Signer(String),
}

impl AdapterError {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AdapterError::Transient { .. })
    }

    /// A transient error.
    pub fn transient(chain: &str, message: impl Into<String>) -> AdapterError {
        AdapterError::Transient {
            chain: chain.to_string(),
            message: message.into(),
        }
    }

    /// A rejection with the chain's reason.
    pub fn rejected(chain: &str, reason: impl Into<String>) -> AdapterError {
        AdapterError::Rejected {
            chain: chain.to_string(),
            reason: reason.into(),
        }
    }

    /// Bad input.
    pub fn bad_input(chain: &str, message: impl Into<String>) -> AdapterError {
        AdapterError::BadInput {
            chain: chain.to_string(),
            message: message.into(),
        }
    }

    /// A garbage answer.
    pub fn bad_response(chain: &str, message: impl Into<String>) -> AdapterError {
        AdapterError::BadResponse {
            chain: chain.to_string(),
            message: message.into(),
        }
    }

    /// `Ok` when `needed` (base units) fits in what the account can spend, `available`.
    ///
    /// # Errors
    /// [`AdapterError::InsufficientFunds`] naming `chain` and both amounts otherwise.
    pub fn check_funds(chain: &str, needed: u128, available: u128) -> Result<()> {
        if needed > available {
            return Err(AdapterError::InsufficientFunds {
                chain: chain.to_string(),
                needed,
                available,
            });
        }
        Ok(())
    }
}

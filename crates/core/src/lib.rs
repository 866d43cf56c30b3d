//! # softstake-core
//!
//! The soft-staking domain, pure: no I/O, no clock, no async. Given inputs and `now`, it
//! returns decisions. Amounts are [`Amount`] (`u128` base units: lamports, yoctoNEAR,
//! sun, lovelace, wei, …) with checked arithmetic; `rust_decimal::Decimal` only for rates
//! and APR.
//!
//! ```text
//!  balance events ─▶ twab ─▶ eligibility ─▶ Σe per token ─┐
//!                                                          ▼
//!  realized rewards R ─────────────────────────────────▶ allocate ─▶ payouts ─▶ ledger
//!
//!  pool totals + positions + outflow history ─▶ buffer ─▶ plan ◀─ validator (selection)
//! ```
//!
//! Modules: [`amount`], [`time`], [`token`] (registry), [`twab`], [`eligibility`],
//! [`allocate`], [`ledger`], [`cycle`] and [`replay`] (one day replayed from its inputs,
//! in memory and in one pass), [`intern`]
//! (compact account ids); for the
//! treasury: [`position`], [`buffer`] (liquidity), [`validator`] (selection), [`plan`].
#![deny(missing_docs)]

pub mod allocate;
pub mod amount;
pub mod buffer;
pub mod cycle;
pub mod eligibility;
pub mod error;
pub mod intern;
pub mod ledger;
pub mod plan;
pub mod position;
pub mod replay;
pub mod time;
pub mod token;
pub mod twab;
pub mod validator;

pub use amount::{Amount, Net};
pub use error::{CoreError, Result};
pub use time::{Day, Timestamp};
pub use token::{TokenConfig, TokenRegistry};

//! Preflight: what an adapter reports before a treasury engineer lets it move money
//! (`softstake doctor`).
//!
//! ```text
//!  doctor ─▶ ChainAdapter::preflight() ─▶ Preflight { signer, balance, fee, checks }
//!        │    (chain id / genesis hash, contract code, history limits: per chain)
//!        └▶ generic checks on the same adapter: endpoint, constants vs tokens.toml,
//!           signer balance vs fees, validators, rate limit
//! ```
//!
//! Every [`Check`] carries a verdict and, unless it passed, the fix a treasury engineer
//! should apply. Only [`Verdict::Fail`] makes the preflight fail.

use serde::Serialize;
use softstake_core::Amount;

/// How a check came out, best first (`Ord`: the worst verdict of a set is its maximum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Verdict {
    /// As it should be.
    Pass,
    /// Works, but a setting deserves attention (the fix says which).
    Warn,
    /// The chain cannot be run like this: the fix says what to change.
    Fail,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One line of a preflight: what was checked, what was found, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name of the check (`chain id`, `contract StakeHub`, `log range`, …).
    pub name: String,
    /// The outcome.
    pub verdict: Verdict,
    /// What was found (values read from the chain and from the config).
    pub detail: String,
    /// What to change; empty when the check passed.
    pub fix: String,
}

impl Check {
    /// A passed check.
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            verdict: Verdict::Pass,
            detail: detail.into(),
            fix: String::new(),
        }
    }

    /// A warning with its fix.
    pub fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            verdict: Verdict::Warn,
            detail: detail.into(),
            fix: fix.into(),
        }
    }

    /// A failure with its fix.
    pub fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: fix.into(),
        }
    }
}

/// A fee-paying coin other than the staked token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeeToken {
    /// Its symbol (`ETH`, `RON`).
    pub symbol: String,
    /// Fractional digits of one whole coin (18 for ETH's wei).
    pub decimals: u8,
}

/// What an adapter reports about itself and its chain for `softstake doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Preflight {
    /// The treasury's address on the chain (the account to fund), when it has one.
    pub signer: Option<String>,
    /// The coin that pays fees when it is not the staked token (POL stakes on Ethereum
    /// and pays in ETH, AXS on Ronin pays in RON): its symbol and decimals. `None`: the
    /// staked token pays its own fees.
    pub fee_token: Option<FeeToken>,
    /// The treasury's balance in the fee-paying coin, base units.
    pub signer_balance: Option<Amount>,
    /// The most one stake operation can cost in fees (and deposits it locks, such as a
    /// Solana stake account's rent or a Cardano key deposit) at the configured caps, base
    /// units of the native token.
    pub fee_per_operation: Option<Amount>,
    /// Chain-specific checks: chain id or genesis hash, contract code at each configured
    /// address, the RPC's history limits.
    pub checks: Vec<Check>,
}

/// True when `url`'s host is loopback (`localhost`, `127.0.0.0/8`, `[::1]`): a local node
/// started for tests or the demo, where settings a real network needs (an EVM
/// `start_block`, a pinned genesis hash) may be left out. Anything that does not parse
/// counts as remote.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_loopback_urls() {
        for url in [
            "http://127.0.0.1:8545",
            "http://localhost:3030/",
            "https://user:pw@127.0.0.2/rpc",
            "http://[::1]:8899",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
    }

    #[test]
    fn fail_remote_or_garbage_urls_are_not_loopback() {
        for url in [
            "https://rpc.testnet.near.org",
            "http://10.0.0.1:8545",
            "http://127.0.0.1.example.com",
            "https://localhost.evil.com/",
            "",
            "::::",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }

    #[test]
    fn success_worst_verdict_is_the_maximum() {
        let v = [Verdict::Pass, Verdict::Fail, Verdict::Warn];
        assert_eq!(v.iter().max(), Some(&Verdict::Fail));
        assert_eq!(Verdict::Warn.to_string(), "WARN");
    }
}

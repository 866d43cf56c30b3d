//! `softstake doctor`: a preflight for a treasury engineer before a network's adapters
//! move money. Reads only: nothing is signed, sent or stored.
//!
//! ```text
//!  per configured token (or --token T):
//!    config    build the adapter (signer source, settings)      ─ fail: the config error
//!    endpoint  now()                                            ─ fail: unreachable, stop here
//!    chain     ChainAdapter::preflight(): chain id / genesis hash, contract code,
//!              history limits, signer address, balance, fee per operation
//!    constants liquidity_model() vs tokens.toml (unbonding, epoch, minimum delegation)
//!    fees      signer balance vs fee per operation × operations per epoch
//!    validators validators() non-empty, how many active
//!    rate      a burst at rate_limit_per_sec answered without errors
//! ```
//!
//! Each line has a verdict and, unless it passed, a fix. Only a failed line fails the
//! preflight (the CLI exits 1).

use std::time::Instant;

use anyhow::Result;
use comfy_table::Cell;

use softstake_adapters::preflight::{Check, Preflight, Verdict};
use softstake_adapters::traits::LiquidityModel;
use softstake_adapters::ChainAdapter;
use softstake_core::{Amount, Timestamp, TokenConfig};

use crate::config::NetworkConfig;

/// Calls of the rate probe: this many `now()` reads at the configured rate.
const RATE_PROBE_CALLS: u32 = 5;

/// One line of the report: the token, and its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoctorLine {
    /// Token symbol.
    pub token: String,
    /// What was checked and how it came out.
    pub check: Check,
}

/// The preflight of every selected token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorReport {
    /// Lines in token order, each token's in check order.
    pub lines: Vec<DoctorLine>,
}

impl DoctorReport {
    /// The worst verdict (Pass for an empty report).
    pub fn verdict(&self) -> Verdict {
        self.lines
            .iter()
            .map(|l| l.check.verdict)
            .max()
            .unwrap_or(Verdict::Pass)
    }

    /// True when no line failed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.verdict() != Verdict::Fail
    }

    /// The failed lines.
    pub fn failures(&self) -> impl Iterator<Item = &DoctorLine> {
        self.lines.iter().filter(|l| l.check.verdict == Verdict::Fail)
    }

    /// The report as a table (token, check, verdict, detail, fix) and a summary line.
    pub fn render(&self) -> String {
        let mut t = crate::report::table(&["token", "check", "verdict", "detail", "fix"]);
        for l in &self.lines {
            t.add_row(vec![
                Cell::new(&l.token),
                Cell::new(&l.check.name),
                Cell::new(l.check.verdict.to_string()),
                Cell::new(&l.check.detail),
                Cell::new(&l.check.fix),
            ]);
        }
        let count = |v| self.lines.iter().filter(|l| l.check.verdict == v).count();
        format!(
            "{t}\n{}: {} passed, {} warnings, {} failed",
            self.verdict(),
            count(Verdict::Pass),
            count(Verdict::Warn),
            count(Verdict::Fail)
        )
    }
}

/// Runs the preflight of `token` (or every configured token) of `cfg`; `now` is the
/// simulated chains' clock. Errors of one token (a config that does not build, an
/// unreachable endpoint) are failed lines, never an early return.
///
/// # Errors
/// Only for a `token` that is not configured.
pub async fn run(cfg: &NetworkConfig, token: Option<&str>, now: Timestamp) -> Result<DoctorReport> {
    let tokens: Vec<String> = match token {
        Some(t) if cfg.chains.contains_key(t) => vec![t.to_string()],
        Some(t) => anyhow::bail!("no chain configured for {t}: add [chains.{t}] to the network config"),
        None => cfg.chains.keys().cloned().collect(),
    };
    let mut report = DoctorReport::default();
    for sym in tokens {
        let checks = token_checks(cfg, &sym, now).await;
        report.lines.extend(checks.into_iter().map(|check| DoctorLine {
            token: sym.clone(),
            check,
        }));
    }
    Ok(report)
}

/// Every check of one token.
async fn token_checks(cfg: &NetworkConfig, sym: &str, now: Timestamp) -> Vec<Check> {
    let t = match cfg.registry.get(sym) {
        Ok(t) => t,
        Err(e) => {
            return vec![Check::fail(
                "token",
                e.to_string(),
                format!("add [tokens.{sym}] to tokens.toml"),
            )]
        }
    };
    let chains = match crate::treasury_cmd::cli_chains(cfg, Some(sym), now) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::fail(
                "config",
                format!("{e:#}"),
                format!("fix [chains.{sym}] (see the error)"),
            )]
        }
    };
    let Ok(handle) = chains.get(sym) else {
        return vec![Check::fail(
            "config",
            "no adapter was built",
            format!("check [chains.{sym}]"),
        )];
    };
    let chain_cfg = &cfg.chains[sym];
    let mut out = vec![Check::pass("config", format!("adapter {}", chain_cfg.adapter))];
    adapter_checks(handle.adapter.as_ref(), t, chain_cfg.rate_limit_per_sec, &mut out).await;
    out
}

/// The checks that need the chain, in order; stops after an unreachable endpoint.
pub async fn adapter_checks(adapter: &dyn ChainAdapter, t: &TokenConfig, rate_per_sec: u32, out: &mut Vec<Check>) {
    let started = Instant::now();
    match adapter.now().await {
        Ok(at) => out.push(Check::pass(
            "endpoint",
            format!("chain time {at}, {} ms", started.elapsed().as_millis()),
        )),
        Err(e) if e.is_transient() => {
            out.push(Check::fail(
                "endpoint",
                e.to_string(),
                "check rpc_url and that the node is up",
            ));
            return;
        }
        Err(e) => {
            // the node answered, but not as the adapter expects (another chain): the
            // chain's own checks below say which setting is wrong
            out.push(Check::fail("endpoint", e.to_string(), "see the chain's checks below"));
            out.extend(preflight(adapter).await.checks);
            return;
        }
    }
    let preflight = preflight(adapter).await;
    out.extend(preflight.checks.iter().cloned());
    let model = match adapter.liquidity_model().await {
        Ok(m) => m,
        Err(e) => {
            out.push(Check::fail(
                "constants",
                e.to_string(),
                "the chain's staking parameters must be readable",
            ));
            return;
        }
    };
    out.extend(constant_checks(t, &model));
    out.push(fee_check(t, &preflight, &model));
    out.push(match adapter.validators().await {
        Ok(v) if v.is_empty() => Check::fail(
            "validators",
            "the chain lists no validators",
            "check the staking contract / network",
        ),
        Ok(v) => Check::pass(
            "validators",
            format!("{} listed, {} active", v.len(), v.iter().filter(|c| c.active).count()),
        ),
        Err(e) => Check::fail("validators", e.to_string(), "the validator set must be readable"),
    });
    out.push(rate_check(adapter, rate_per_sec).await);
}

/// The adapter's preflight; an error becomes a failed `chain checks` line.
async fn preflight(adapter: &dyn ChainAdapter) -> Preflight {
    match adapter.preflight().await {
        Ok(p) => p,
        Err(e) => Preflight {
            checks: vec![Check::fail(
                "chain checks",
                e.to_string(),
                "check rpc_url points at the intended chain",
            )],
            ..Preflight::default()
        },
    }
}

/// `tokens.toml` against the chain's live constants. The adapters plan with the live
/// values; tokens.toml documents them and drives the simulator, so a difference is a
/// warning, except an unbonding period the chain makes longer than tokens.toml promises
/// (the liquidity buffer would be sized for a shorter wait): a failure.
pub fn constant_checks(t: &TokenConfig, live: &LiquidityModel) -> Vec<Check> {
    let mut out = Vec::new();
    let field = |name: &str| format!("set tokens.{}.{name}", t.symbol);
    let unbonding = format!(
        "the chain unbonds in {} s, tokens.toml says {} s",
        live.unbonding_period_secs, t.unbonding_period_secs
    );
    let unbonding_fix = format!("{} = {}", field("unbonding_period_secs"), live.unbonding_period_secs);
    out.push(match live.unbonding_period_secs.cmp(&t.unbonding_period_secs) {
        std::cmp::Ordering::Equal => Check::pass("unbonding period", format!("{} s", live.unbonding_period_secs)),
        std::cmp::Ordering::Greater => Check::fail("unbonding period", unbonding, unbonding_fix),
        std::cmp::Ordering::Less => Check::warn("unbonding period", unbonding, unbonding_fix),
    });
    out.push(if live.epoch_secs == t.epoch_secs {
        Check::pass("epoch length", format!("{} s", live.epoch_secs))
    } else {
        Check::warn(
            "epoch length",
            format!(
                "the chain's epoch is {} s, tokens.toml says {} s",
                live.epoch_secs, t.epoch_secs
            ),
            format!("{} = {}", field("epoch_secs"), live.epoch_secs),
        )
    });
    let (chain_min, ours) = (t.format_amount(live.min_delegation), t.format_amount(t.min_delegation));
    out.push(if live.min_delegation <= t.min_delegation {
        Check::pass(
            "minimum delegation",
            format!("chain {chain_min} {}, tokens.toml {ours}", t.symbol),
        )
    } else {
        Check::warn(
            "minimum delegation",
            format!(
                "the chain's minimum is {chain_min} {}, tokens.toml says {ours} (the chain's applies)",
                t.symbol
            ),
            format!("{} = \"{chain_min}\"", field("min_delegation")),
        )
    });
    out
}

/// The signer's native balance against the fees of its operations: a failure when it
/// cannot pay one operation, a warning when it cannot pay an epoch's worth
/// (`max_operations_per_epoch`).
pub fn fee_check(t: &TokenConfig, p: &Preflight, model: &LiquidityModel) -> Check {
    let who = p.signer.clone().unwrap_or_else(|| "the treasury".into());
    let (Some(balance), Some(fee)) = (p.signer_balance, p.fee_per_operation) else {
        return Check::warn(
            "signer balance",
            format!("{who}: the adapter does not report its balance and fees"),
            "check the signer's balance by hand",
        );
    };
    let ops = u128::from(model.max_operations_per_epoch.max(1));
    let epoch = Amount(fee.0.saturating_mul(ops));
    let (symbol, decimals) = match &p.fee_token {
        Some(f) => (f.symbol.as_str(), f.decimals),
        None => (t.symbol.as_str(), t.decimals),
    };
    let fmt = |a: Amount| format!("{} {symbol}", a.to_units_string(decimals));
    if balance < fee {
        Check::fail(
            "signer balance",
            format!("{who} holds {}, one operation needs up to {}", fmt(balance), fmt(fee)),
            format!("fund {who} with at least {}", fmt(epoch)),
        )
    } else if balance < epoch {
        Check::warn(
            "signer balance",
            format!(
                "{who} holds {}, an epoch's {ops} operations need up to {}",
                fmt(balance),
                fmt(epoch)
            ),
            format!("fund {who} with {} more", fmt(Amount(epoch.0 - balance.0))),
        )
    } else {
        Check::pass(
            "signer balance",
            format!("{who} holds {}; fees up to {} per operation", fmt(balance), fmt(fee)),
        )
    }
}

/// A burst of [`RATE_PROBE_CALLS`] reads at the configured rate (the guard paces them):
/// a failure when the RPC refuses any of them.
async fn rate_check(adapter: &dyn ChainAdapter, rate_per_sec: u32) -> Check {
    let started = Instant::now();
    let calls = (0..RATE_PROBE_CALLS).map(|_| adapter.now());
    let results = futures_util::future::join_all(calls).await;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    if let Some(first) = failed.first() {
        Check::fail(
            "rate limit",
            format!(
                "{} of {RATE_PROBE_CALLS} reads at {rate_per_sec}/s failed: {first}",
                failed.len()
            ),
            "lower rate_limit_per_sec to the RPC's limit (or use a key with a higher one)",
        )
    } else {
        Check::pass(
            "rate limit",
            format!(
                "{RATE_PROBE_CALLS} reads at {rate_per_sec}/s in {} ms",
                started.elapsed().as_millis()
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> TokenConfig {
        let reg = softstake_core::TokenRegistry::from_toml_str(crate::config::EMBEDDED_TOKENS).unwrap();
        reg.get("BNB").unwrap().clone()
    }

    fn model(t: &TokenConfig) -> LiquidityModel {
        crate::chains::sim_model(t)
    }

    #[test]
    fn success_matching_constants_pass() {
        let t = token();
        let checks = constant_checks(&t, &model(&t));
        assert!(checks.iter().all(|c| c.verdict == Verdict::Pass), "{checks:?}");
    }

    #[test]
    fn fail_longer_unbonding_on_chain_fails_and_names_the_fix() {
        let t = token();
        let mut m = model(&t);
        m.unbonding_period_secs = t.unbonding_period_secs + 86_400;
        m.epoch_secs = 3_600;
        m.min_delegation = Amount(t.min_delegation.0 * 2);
        let checks = constant_checks(&t, &m);
        assert_eq!(checks[0].verdict, Verdict::Fail);
        assert!(
            checks[0].fix.contains("tokens.BNB.unbonding_period_secs = 691200"),
            "{}",
            checks[0].fix
        );
        assert_eq!(checks[1].verdict, Verdict::Warn);
        assert_eq!(checks[2].verdict, Verdict::Warn);
        assert!(checks[2].fix.contains("min_delegation = \"2\""), "{}", checks[2].fix);
        // shorter on the chain: only a warning
        m.unbonding_period_secs = t.unbonding_period_secs - 1;
        assert_eq!(constant_checks(&t, &m)[0].verdict, Verdict::Warn);
    }

    #[test]
    fn success_and_fail_signer_balance_against_fees() {
        let t = token();
        let m = model(&t); // 32 operations per epoch
        let p = |balance: u128| Preflight {
            signer: Some("0xabc".into()),
            fee_token: None,
            signer_balance: Some(Amount(balance)),
            fee_per_operation: Some(Amount(10)),
            checks: vec![],
        };
        assert_eq!(fee_check(&t, &p(320), &m).verdict, Verdict::Pass);
        let short = fee_check(&t, &p(100), &m);
        assert_eq!(short.verdict, Verdict::Warn);
        assert!(short.fix.contains("0xabc"), "{}", short.fix);
        let broke = fee_check(&t, &p(9), &m);
        assert_eq!(broke.verdict, Verdict::Fail);
        assert!(broke.fix.starts_with("fund 0xabc"), "{}", broke.fix);
        let free = Preflight {
            fee_per_operation: Some(Amount::ZERO),
            ..p(0)
        };
        assert_eq!(
            fee_check(&t, &free, &m).verdict,
            Verdict::Pass,
            "no fees: an empty account is fine"
        );
        let eth = Preflight {
            fee_token: Some(softstake_adapters::preflight::FeeToken {
                symbol: "ETH".into(),
                decimals: 18,
            }),
            ..p(9)
        };
        assert!(
            fee_check(&t, &eth, &m).detail.contains(" ETH"),
            "fees in the fee-paying coin"
        );
        let unknown = fee_check(&t, &Preflight::default(), &m);
        assert_eq!(unknown.verdict, Verdict::Warn);
    }

    #[test]
    fn success_report_verdict_is_the_worst_line() {
        let line = |v: Check| DoctorLine {
            token: "BNB".into(),
            check: v,
        };
        let mut r = DoctorReport::default();
        assert!(r.passed());
        r.lines.push(line(Check::pass("a", "")));
        r.lines.push(line(Check::warn("b", "", "x")));
        assert!(r.passed() && r.verdict() == Verdict::Warn);
        r.lines.push(line(Check::fail("c", "broken", "fix it")));
        assert!(!r.passed());
        let text = r.render();
        assert!(text.contains("FAIL: 1 passed, 1 warnings, 1 failed"), "{text}");
        assert!(text.contains("fix it"), "{text}");
    }
}

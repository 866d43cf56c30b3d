//! The chains a scheduler acts on: one adapter per token, and the simulated chain behind
//! it when it is one (its clock moved by the scheduler, its state saved between
//! processes under `sim_dir`). Building them from a configuration is the caller's job
//! (`softstake-node`'s `chains::build`, the simulator).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{OrchestratorError, Result};

use softstake_adapters::sim::SimChain;
use softstake_adapters::ChainAdapter;
use softstake_core::{Amount, Net, Timestamp};

use crate::treasury::executor::ExecConfig;

/// One token's chain.
#[derive(Debug, Clone)]
pub struct ChainHandle {
    /// The adapter (guarded).
    pub adapter: Arc<dyn ChainAdapter>,
    /// The simulated chain behind it, when it is one.
    pub sim: Option<Arc<SimChain>>,
    /// How the executor waits for finality on this chain.
    pub exec: ExecConfig,
}

/// The chains of all configured tokens.
#[derive(Debug, Default)]
pub struct Chains {
    map: BTreeMap<String, ChainHandle>,
    sim_dir: Option<PathBuf>,
}

impl Chains {
    /// Chains from their handles; simulated chains are saved under `sim_dir` when given.
    pub fn new(map: BTreeMap<String, ChainHandle>, sim_dir: Option<PathBuf>) -> Chains {
        Chains { map, sim_dir }
    }

    /// Arms a failover drill on every chain's executor (`softstake run` with
    /// `SOFTSTAKE_CRASH_AT`): the first operation to reach its point fires it.
    pub fn arm_drill(&mut self, drill: Arc<crate::treasury::executor::Drill>) {
        for h in self.map.values_mut() {
            h.exec.drill = Some(drill.clone());
        }
    }

    /// Replaces a token's chain (tests and the demo's `--chain` override).
    pub fn insert(&mut self, token: &str, handle: ChainHandle) {
        self.map.insert(token.to_string(), handle);
    }

    /// The chain of `token`.
    pub fn get(&self, token: &str) -> Result<&ChainHandle> {
        self.map.get(token).ok_or_else(|| OrchestratorError::NoChain {
            token: token.to_string(),
        })
    }

    /// Tokens with a chain, in order.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.map.keys().map(String::as_str)
    }

    /// Moves every simulated chain's clock to `t`.
    pub fn advance_sims(&self, t: Timestamp) -> Result<()> {
        for (symbol, h) in &self.map {
            if let Some(sim) = &h.sim {
                sim.advance_to(t)
                    .map_err(OrchestratorError::chain(symbol, "advancing the simulated chain"))?;
            }
        }
        Ok(())
    }

    /// Custody moved on an exchange wallet: mirror it on a simulated chain's treasury
    /// wallet (real chains see the exchange's own transfers). A fall beyond the wallet
    /// takes what is there and returns the rest (withdrawals waiting for liquidity).
    pub fn mirror_custody(&self, token: &str, delta: Net) -> Result<Amount> {
        let Some(sim) = &self.get(token)?.sim else {
            return Ok(Amount::ZERO);
        };
        let amount = delta.magnitude();
        if !delta.is_negative() {
            sim.fund(amount)?;
            return Ok(Amount::ZERO);
        }
        let take = amount.min(sim.wallet());
        sim.defund(take)?;
        Ok(amount.saturating_sub(take))
    }

    /// Reloads the saved state of `token`'s simulated chain, if it has one (a standby
    /// taking over the token continues from what the previous leader saved).
    pub fn reload(&self, token: &str) -> Result<()> {
        let (Some(dir), Some(sim)) = (&self.sim_dir, &self.get(token)?.sim) else {
            return Ok(());
        };
        let path = dir.join(format!("{token}.json"));
        if !path.exists() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&path).map_err(OrchestratorError::io("reading", &path))?;
        SimChain::parse_snapshot(&text)
            .and_then(|snapshot| sim.load_snapshot(snapshot))
            .map_err(|source| OrchestratorError::SimState {
                path,
                source: Box::new(source),
            })
    }

    /// Saves `token`'s simulated chain (persisted mode only).
    pub fn save_token(&self, token: &str) -> Result<()> {
        let (Some(dir), Some(sim)) = (&self.sim_dir, &self.get(token)?.sim) else {
            return Ok(());
        };
        write_snapshot(dir, token, sim)
    }

    /// Saves the simulated chains' state (CLI mode).
    pub fn save(&self) -> Result<()> {
        let Some(dir) = &self.sim_dir else { return Ok(()) };
        for (symbol, h) in &self.map {
            if let Some(sim) = &h.sim {
                write_snapshot(dir, symbol, sim)?;
            }
        }
        Ok(())
    }
}

/// Writes `sim`'s state to `dir/<token>.json` atomically (a temporary file renamed over
/// it), creating `dir` when missing.
fn write_snapshot(dir: &Path, token: &str, sim: &SimChain) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(OrchestratorError::io("creating", dir))?;
    let path = dir.join(format!("{token}.json"));
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(OrchestratorError::io("creating a file in", dir))?;
    std::fs::write(tmp.path(), sim.snapshot()?).map_err(OrchestratorError::io("writing", tmp.path()))?;
    tmp.persist(&path)
        .map_err(|e| OrchestratorError::io("writing", &path)(e.error))?;
    Ok(())
}

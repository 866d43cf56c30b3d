//! # softstake-e2e
//!
//! End-to-end tests against real local nodes. Each node family sits behind a feature
//! (`solana-validator`: an in-process `solana-test-validator`; `evm-anvil`: anvil with our
//! Solidity stand-ins of the staking contracts), and every test starts the
//! node it needs itself. This library holds the shared harness.
#![deny(missing_docs)]

#[cfg(feature = "evm-anvil")]
pub mod apechain;
#[cfg(feature = "evm-anvil")]
pub mod evm;
#[cfg(feature = "evm-anvil")]
pub mod polygon;
#[cfg(feature = "evm-anvil")]
pub mod ronin;
#[cfg(feature = "evm-anvil")]
pub mod sonic;

/// A treasury key generated inside a fresh SoftHSM2 token under `dir` (PKCS#11; the
/// private key never leaves the token), for the end-to-end runs signed by an HSM.
///
/// # Panics
/// When SoftHSM2 (`scripts/setup.sh` installs it) is missing or refuses the key.
#[cfg(any(
    feature = "evm-anvil",
    feature = "solana-validator",
    feature = "cosmos-local",
    feature = "tron-local",
    feature = "near-local",
    feature = "cardano-local",
    feature = "sui-local",
    feature = "iota-local",
    feature = "aptos-local",
    feature = "multiversx-local",
    feature = "algorand-local",
    feature = "ton-local"
))]
pub fn hsm_key(
    dir: &std::path::Path,
    label: &str,
    algorithm: softstake_adapters::pkcs11::KeyAlgorithm,
) -> softstake_adapters::pkcs11::HsmKey {
    hsm_keys(dir, &[label], algorithm).remove(0)
}

/// Keys labelled `labels`, all generated inside one fresh SoftHSM2 token under `dir`, in
/// order (a Cardano payment key and its stake keys).
///
/// # Panics
/// As [`hsm_key`].
#[cfg(any(
    feature = "evm-anvil",
    feature = "solana-validator",
    feature = "cosmos-local",
    feature = "tron-local",
    feature = "near-local",
    feature = "cardano-local",
    feature = "sui-local",
    feature = "iota-local",
    feature = "aptos-local",
    feature = "multiversx-local",
    feature = "algorand-local",
    feature = "ton-local"
))]
pub fn hsm_keys(
    dir: &std::path::Path,
    labels: &[&str],
    algorithm: softstake_adapters::pkcs11::KeyAlgorithm,
) -> Vec<softstake_adapters::pkcs11::HsmKey> {
    let (settings, _) =
        softstake_adapters::pkcs11::softhsm_token(dir, "treasury", "hsm-pin-1234", "SOFTSTAKE_E2E_PKCS11_PIN")
            .expect("a fresh SoftHSM2 token");
    labels
        .iter()
        .map(|l| {
            softstake_adapters::pkcs11::HsmKey::generate(&settings, "treasury", l, algorithm)
                .expect("a key in the token")
        })
        .collect()
}

/// `softstake doctor` against local chains: the network config as TOML text, the report.
pub mod doctor {
    use softstake_adapters::preflight::{Check, Verdict};
    use softstake_node::config::{NetworkConfig, EMBEDDED_TOKENS};
    use softstake_node::doctor::DoctorReport;

    /// A localnet network config with one `[chains.<symbol>]` entry: `adapter` at
    /// `rpc_url`, signing with `key` (hex in a private file under `dir`; a key of 64
    /// bytes or more is written as the Solana CLI's JSON array), rate 100/s, then `rest`
    /// (the chain's own section, e.g. `[chains.ATOM.cosmos]` lines).
    ///
    /// # Panics
    /// When the key file cannot be written.
    pub fn net(dir: &std::path::Path, symbol: &str, adapter: &str, rpc_url: &str, key: &[u8], rest: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        let key_file = dir.join(format!("{symbol}-{}.key", &hex[..8]));
        let text = if key.len() >= 64 {
            format!("{key:?}").replace(' ', "")
        } else {
            hex
        };
        std::fs::write(&key_file, text).expect("the key file");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("a private key file");
        format!(
            "network = \"localnet\"\ntokens = \"tokens.toml\"\ndata_dir = \"{}\"\n[chains.{symbol}]\nadapter = \"{adapter}\"\nrpc_url = \"{rpc_url}\"\nsigner = \"file:{}\"\nrate_limit_per_sec = 100\n{rest}",
            dir.join("data").display(),
            key_file.display()
        )
    }

    /// The doctor's report on `token` of the network config `net` (tokens from the
    /// embedded registry).
    ///
    /// # Panics
    /// When `net` is not a valid network config or `token` is not configured in it.
    pub async fn run(net: &str, token: &str) -> DoctorReport {
        let cfg = NetworkConfig::from_toml_str(net, EMBEDDED_TOKENS, "localnet.toml").expect("a valid network config");
        let now = softstake_core::Timestamp::from_unix_secs(softstake_node::chains::SIM_GENESIS_UNIX_SECS)
            .expect("the simulated genesis");
        softstake_node::doctor::run(&cfg, Some(token), now)
            .await
            .expect("a configured token")
    }

    /// The line named `name` of `report`.
    ///
    /// # Panics
    /// When the report has no such line (the rendered report is in the message).
    pub fn line<'a>(report: &'a DoctorReport, name: &str) -> &'a Check {
        report
            .lines
            .iter()
            .map(|l| &l.check)
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name:?} line:\n{}", report.render()))
    }

    /// Asserts that line `name` failed and that its detail or fix says `says`.
    ///
    /// # Panics
    /// When it did not fail or does not say it.
    pub fn assert_fails(report: &DoctorReport, name: &str, says: &str) {
        let c = line(report, name);
        assert!(
            c.verdict == Verdict::Fail && (c.detail.contains(says) || c.fix.contains(says)),
            "{name} should fail saying {says:?}:\n{}",
            report.render()
        );
        assert!(!report.passed());
    }
}

/// Driving single operations through the journal, as the treasury loop does.
pub mod journal {
    use std::sync::Arc;

    use softstake_adapters::traits::{OpKind, StakeState};
    use softstake_adapters::{ChainAdapter, GuardConfig, Guarded};
    use softstake_core::{Amount, TokenConfig};
    use softstake_node::treasury::executor::{CrashPoint, Crashed, ExecConfig, Executor, OpOutcome};
    use softstake_store::{NewOperation, OperationState, Store};

    /// A journal operation of `token` (plan `<token>-e2e`), `amount` in base units.
    pub fn op(token: &str, key: &str, kind: OpKind, validator: &str, amount: u128) -> NewOperation {
        NewOperation {
            idempotency_key: key.into(),
            plan_id: format!("{token}-e2e"),
            seq: 0,
            token: token.into(),
            kind,
            validator: validator.to_string(),
            amount: Amount(amount),
            epoch: 0,
        }
    }

    /// `adapter` behind the guard (rate limit `rate_per_sec`, `max_retries` retries), as
    /// the node wraps every real chain.
    pub fn guarded<A: ChainAdapter + 'static>(
        adapter: A,
        rate_per_sec: u32,
        max_retries: usize,
    ) -> Arc<dyn ChainAdapter> {
        Arc::new(Guarded::new(
            adapter,
            GuardConfig {
                rate_per_sec,
                max_retries,
                ..GuardConfig::default()
            },
            None,
        ))
    }

    /// A SQLite store in `dir` (file `name.db`).
    ///
    /// # Panics
    /// When it cannot be opened (a test failure).
    pub async fn sqlite_store(dir: &std::path::Path, name: &str) -> Store {
        Store::open(&format!("sqlite://{}/{name}.db", dir.display()))
            .await
            .expect("opening the SQLite store")
    }

    /// Records the intent and runs it to an outcome.
    ///
    /// # Panics
    /// When the store or the chain fails outside the operation (a test failure).
    pub async fn run(store: &Store, chain: &dyn ChainAdapter, o: NewOperation, exec: ExecConfig) -> OpOutcome {
        store
            .record_intents(std::slice::from_ref(&o), chain.now().await.expect("chain time"))
            .await
            .expect("recording the intent");
        Executor::new(store, chain, exec)
            .run(&o.idempotency_key)
            .await
            .expect("running the operation")
    }

    /// Records the intent, runs it until the executor "crashes" at `point` (the reply
    /// lost), then recovers as a restarted node would; what recovery resolved.
    ///
    /// # Panics
    /// When the run does not stop at the crash point or recovery fails (a test failure).
    pub async fn crash_and_recover(
        store: &Store,
        chain: &dyn ChainAdapter,
        o: NewOperation,
        point: CrashPoint,
        exec: ExecConfig,
    ) -> Vec<(String, OpOutcome)> {
        store
            .record_intents(std::slice::from_ref(&o), chain.now().await.expect("chain time"))
            .await
            .expect("recording the intent");
        let e = Executor::new(store, chain, exec.clone())
            .crash_at(point)
            .run(&o.idempotency_key)
            .await
            .expect_err("the run stops at the crash point");
        assert!(
            matches!(e, softstake_node::OrchestratorError::Crashed(Crashed(p)) if p == point),
            "not the crash point: {e:#}"
        );
        Executor::new(store, chain, exec).recover().await.expect("recovery")
    }

    /// Reconciles `token` at the chain's time and asserts zero drift, no alert, and every
    /// operation of `keys` reconciled.
    ///
    /// # Panics
    /// When any of that does not hold, or the chain or the store cannot be read.
    pub async fn assert_zero_drift(store: &Store, chain: &dyn ChainAdapter, token: &TokenConfig, keys: &[&str]) {
        let now = chain.now().await.expect("chain time");
        let rep = softstake_node::treasury::reconcile_token(store, chain, token, 0, now)
            .await
            .expect("reconciliation");
        assert!(rep.alert_id.is_none(), "zero drift: {:?}", rep.lines);
        assert!(rep.lines.iter().all(|l| l.drift == 0), "{:?}", rep.lines);
        for k in keys {
            let op = store.operation(k).await.expect("the journal").expect("the operation");
            assert_eq!(op.state, OperationState::Reconciled, "{k}");
        }
    }

    /// Our stake with `validator` in `state`, base units, read from the chain.
    ///
    /// # Panics
    /// When the chain cannot be read.
    pub async fn amount_at(chain: &dyn ChainAdapter, validator: &str, state: StakeState) -> u128 {
        chain
            .positions()
            .await
            .expect("positions")
            .iter()
            .filter(|p| p.validator == validator && p.state == state)
            .map(|p| p.amount.0)
            .sum()
    }
}

//! # softstake-localchains
//!
//! Local chains of our own for the chains whose real node cannot be installed here: each
//! speaks the chain's real wire protocol (its RPC methods, encodings and error shapes),
//! verifies what an adapter sends (signature, nonce, expiry, balance) and keeps the
//! chain's staking rules over a clock the tests control. `near`: NEAR JSON-RPC and the
//! reference staking pool; `tron`: java-tron's HTTP API, TronGrid's history and Stake 2.0;
//! `cosmos`: the Cosmos SDK's gRPC services and CometBFT's `broadcast_tx_sync` over
//! x/auth, x/staking and x/distribution; `cardano`: Blockfrost's REST API over the Conway
//! ledger's UTxO, witness, deposit and reward rules; `move-staking`: the staking system
//! Sui and IOTA share (staking pools, exchange rates, epochs), the pure core their local
//! chains run, with `move_ptb`, the programmable-transaction interpreter both share; `sui`
//! and `iota`: their gRPC services (and IOTA's GraphQL subset) over them;
//! `aptos`: the fullnode REST API `/v1` over `0x1::delegation_pool`'s share
//! pools, lockup cycles and add-stake fee; `multiversx`: the gateway's REST API over the
//! system delegation contract's rules (its own transaction codec and hash); `algorand`: algod's
//! and the indexer's REST APIs over payments, key registrations and proposer payouts (its own
//! msgpack codec). The TRON and Cardano chains read
//! transactions with codecs of their own (`tron_codec`, `cardano_codec`), never the
//! adapters' encoders, checked against published test vectors: an encoding bug in an
//! adapter cannot pass on both sides.
//!
//! ```text
//!  test ─▶ start(genesis) ─▶ 127.0.0.1:<port>  ◀── real adapter (its own RPC client)
//!        └▶ fast_forward / advance_epochs / advance_secs (the clock)
//! ```
#![deny(missing_docs)]

#[cfg(feature = "algorand")]
pub mod algorand;
#[cfg(feature = "aptos")]
pub mod aptos;
#[cfg(feature = "cardano")]
pub mod cardano;
#[cfg(feature = "cardano")]
pub mod cardano_codec;
#[cfg(feature = "cosmos")]
pub mod cosmos;
#[cfg(feature = "iota")]
pub mod iota;
#[cfg(feature = "move-staking")]
pub mod move_ptb;
#[cfg(feature = "move-staking")]
pub mod move_staking;
#[cfg(feature = "multiversx")]
pub mod multiversx;
#[cfg(feature = "near")]
pub mod near;
#[cfg(feature = "sui")]
pub mod sui;
#[cfg(feature = "ton")]
pub mod ton;
#[cfg(feature = "tron")]
pub mod tron;
#[cfg(feature = "tron")]
pub mod tron_codec;

/// Binds 127.0.0.1:`port` (0 = any free port) and serves `app` there; when `tick_ms` > 0
/// it also calls `tick` every `tick_ms` real milliseconds (a chain producing blocks on its
/// own). Returns the bound address and the task (abort it to stop both).
#[cfg(any(
    feature = "near",
    feature = "tron",
    feature = "cosmos",
    feature = "cardano",
    feature = "aptos",
    feature = "multiversx",
    feature = "algorand",
    feature = "ton"
))]
async fn serve(
    app: axum::Router,
    port: u16,
    tick_ms: u64,
    mut tick: impl FnMut() + Send + 'static,
) -> anyhow::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let producer = async move {
            if tick_ms == 0 {
                return std::future::pending::<()>().await;
            }
            let mut t = tokio::time::interval(std::time::Duration::from_millis(tick_ms));
            loop {
                t.tick().await;
                tick();
            }
        };
        tokio::select! {
            _ = axum::serve(listener, app) => {}
            _ = producer => {}
        }
    });
    Ok((addr, server))
}

/// Writes a local chain's treasury key (`hex`) to `path` for the config's
/// `signer = "file:…"`, creating its folder, readable by the owner only.
///
/// # Errors
/// A folder or file that cannot be written.
pub fn write_key_file(path: &std::path::Path, hex: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, hex).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
    }
    Ok(())
}

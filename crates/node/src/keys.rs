//! `softstake keys`: treasury keys generated inside a PKCS#11 token (an HSM; SoftHSM2 in
//! tests), never leaving it. The network config's `[pkcs11]` names the module and the
//! environment variable with the user PIN; a chain then signs with
//! `signer = "pkcs11:token=<token>;object=<label>"`.
//!
//! ```text
//!  keys generate --chain bsc --hsm-token treasury --label bnb-1
//!     ─▶ C_GenerateKeyPair (secp256k1 | Ed25519, sensitive, not extractable)
//!     ─▶ prints the address to fund and the signer line for the config
//!  keys list --hsm-token treasury ─▶ label, curve, public key, addresses
//! ```

use anyhow::{Context, Result};

use softstake_adapters::pkcs11::{HsmKey, KeyAlgorithm, Pkcs11Settings};

use crate::config::NetworkConfig;

/// The chains a PKCS#11 key can sign for (their adapters take an HSM key).
pub const HSM_CHAINS: [&str; 9] = [
    "evm", "bsc", "polygon", "sonic", "ronin", "apechain", "tron", "cosmos", "solana",
];

fn settings(cfg: &NetworkConfig) -> Result<Pkcs11Settings> {
    Ok(cfg
        .pkcs11
        .as_ref()
        .with_context(|| {
            format!(
                "{}: no [pkcs11] section (module = the PKCS#11 library's path, pin_env = the PIN's variable)",
                cfg.origin
            )
        })?
        .settings())
}

/// `softstake keys generate`: a new key pair for `chain` labelled `label` in the token
/// labelled `hsm_token`; prints its address and the `signer` line.
///
/// # Errors
/// No `[pkcs11]`; a chain whose adapter cannot sign with an HSM key; the label exists;
/// the module's error.
pub fn generate(cfg: &NetworkConfig, chain: &str, hsm_token: &str, label: &str, cosmos_prefix: &str) -> Result<()> {
    if !HSM_CHAINS.contains(&chain) {
        anyhow::bail!(
            "--chain {chain}: PKCS#11 keys serve {} (the NEAR and Cardano adapters sign with raw keys)",
            HSM_CHAINS.join(", ")
        );
    }
    let algorithm = KeyAlgorithm::for_chain(chain)?;
    let key = HsmKey::generate(&settings(cfg)?, hsm_token, label, algorithm)?;
    let address = key.address(chain, cosmos_prefix)?;
    println!("generated {} key {label:?} in token {hsm_token:?}", algorithm.as_str());
    println!("address ({chain}): {address}");
    println!("public key: {}", hex::encode(key.public_key()));
    println!("config: signer = \"{}\"", key.uri());
    Ok(())
}

/// `softstake keys list`: the token's key pairs with their addresses.
///
/// # Errors
/// No `[pkcs11]`; the module's error.
pub fn list(cfg: &NetworkConfig, hsm_token: &str, cosmos_prefix: &str) -> Result<()> {
    let s = settings(cfg)?;
    let infos = HsmKey::list(&s, hsm_token)?;
    let mut t = crate::report::table(&["label", "curve", "public key", "addresses"]);
    for info in &infos {
        let chains: &[&str] = match info.algorithm {
            KeyAlgorithm::Secp256k1 => &["evm", "tron", "cosmos"],
            KeyAlgorithm::Ed25519 => &["solana"],
        };
        let addresses: Vec<String> = chains
            .iter()
            .map(|c| Ok(format!("{c}: {}", info.address(c, cosmos_prefix)?)))
            .collect::<Result<_>>()?;
        t.add_row(vec![
            info.label.clone(),
            info.algorithm.as_str().to_string(),
            hex::encode(&info.public_key),
            addresses.join("\n"),
        ]);
    }
    println!("{t}\n{} keys in token {hsm_token:?}", infos.len());
    Ok(())
}

//! `softstake keys`: treasury keys generated inside a PKCS#11 token (an HSM; SoftHSM2 in
//! tests), never leaving it. The network config's `[pkcs11]` names the module and the
//! environment variable with the user PIN; a chain then signs with
//! `signer = "pkcs11:token=<token>;object=<label>"`.
//!
//! ```text
//!  keys generate --chain bsc --hsm-token treasury --label bnb-1
//!     ─▶ C_GenerateKeyPair (secp256k1 | Ed25519, sensitive, not extractable)
//!     ─▶ prints the address to fund and the signer line for the config
//!  keys generate --chain cardano --label ada-1 --stake-keys 3
//!     ─▶ the payment key ada-1 and stake keys ada-1-stake-0..2
//!  keys list --hsm-token treasury ─▶ label, curve, public key, addresses
//! ```

use anyhow::{Context, Result};

use softstake_adapters::pkcs11::{
    cardano_enterprise_address, cardano_stake_key_label, HsmKey, KeyAlgorithm, Pkcs11Settings,
};

use crate::config::NetworkConfig;

/// The chains a PKCS#11 key can sign for (every real adapter takes an HSM key).
pub const HSM_CHAINS: [&str; 17] = [
    "evm",
    "bsc",
    "polygon",
    "sonic",
    "ronin",
    "apechain",
    "tron",
    "cosmos",
    "solana",
    "near",
    "cardano",
    "sui",
    "iota",
    "aptos",
    "multiversx",
    "algorand",
    "ton",
];

/// Most Cardano stake keys one payment key has (the adapter's bound).
const MAX_CARDANO_STAKE_KEYS: u32 = 100;

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
/// labelled `hsm_token`; prints its address and the `signer` line. For Cardano it also
/// generates `stake_keys` stake keys (`<label>-stake-<i>`), which the adapter opens with
/// the payment key.
///
/// # Errors
/// No `[pkcs11]`; an unknown chain; `stake_keys` outside 1..=100; a label that exists; the
/// module's error.
pub fn generate(
    cfg: &NetworkConfig,
    chain: &str,
    hsm_token: &str,
    label: &str,
    cosmos_prefix: &str,
    stake_keys: u32,
) -> Result<()> {
    if !HSM_CHAINS.contains(&chain) {
        anyhow::bail!("--chain {chain}: expected one of {}", HSM_CHAINS.join(", "));
    }
    if chain == "cardano" && !(1..=MAX_CARDANO_STAKE_KEYS).contains(&stake_keys) {
        anyhow::bail!("--stake-keys {stake_keys}: expected 1..={MAX_CARDANO_STAKE_KEYS}");
    }
    let algorithm = KeyAlgorithm::for_chain(chain)?;
    let settings = settings(cfg)?;
    let key = HsmKey::generate(&settings, hsm_token, label, algorithm)?;
    println!("generated {} key {label:?} in token {hsm_token:?}", algorithm.as_str());
    println!("address ({chain}): {}", key.address(chain, cosmos_prefix)?);
    match chain {
        "near" => println!(
            "access key (add it to a named account as a full-access key): {}",
            key.info().near_public_key()
        ),
        "cardano" => {
            println!(
                "address (cardano testnets): {}",
                cardano_enterprise_address(key.public_key(), 0)?
            );
            for i in 0..stake_keys {
                let l = cardano_stake_key_label(label, i);
                HsmKey::generate(&settings, hsm_token, &l, algorithm)
                    .with_context(|| format!("stake key {i} of {stake_keys}"))?;
                println!("generated stake key {l:?}");
            }
            println!("set chains.ADA.cardano.stake_keys = {stake_keys}");
        }
        _ => {}
    }
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
            KeyAlgorithm::Ed25519 => &[
                "solana",
                "near",
                "cardano",
                "sui",
                "iota",
                "aptos",
                "multiversx",
                "algorand",
                "ton",
            ],
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

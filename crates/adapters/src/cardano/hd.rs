//! CIP-1852 key derivation (BIP32-Ed25519, Khovratovich–Law, derivation scheme V2) from a
//! root extended private key, so the treasury's addresses are the ones standard wallets
//! and `cardano-address` show for the same root.
//!
//! ```text
//!  root_xsk (96 bytes: kL ‖ kR ‖ chain code)
//!    └─ 1852' ─ 1815' ─ account'
//!                          ├─ 0 ─ 0   payment key  (the enterprise address)
//!                          └─ 2 ─ i   stake key i  (one per pool; CIP-18 multi-stake)
//! ```
//!
//! The root is what `cardano-address key from-recovery-phrase Shelley` prints (bech32
//! `root_xsk1…`; our key sources take it as 192 hex digits). Derivation and signing are
//! `ed25519-bip32` (the reference implementation of the scheme); signatures are plain
//! Ed25519 (RFC 8032) under the derived public key.
//!
//! Sources: CIP-1852 (purpose 1852', coin type 1815', roles 0 external / 2 staking),
//! CIP-0003 (Icarus master key, 96 bytes), CIP-0011 (staking key chain), CIP-0018
//! (several stake keys per account).

use ed25519_bip32::{DerivationScheme, XPrv, XPRV_SIZE};

use crate::error::{AdapterError, Result};

/// Purpose of CIP-1852 paths (hardened).
pub const PURPOSE: u32 = 1852;
/// Cardano's coin type (SLIP-44, hardened).
pub const COIN_TYPE: u32 = 1815;
/// Role of external (payment) keys.
pub const ROLE_EXTERNAL: u32 = 0;
/// Role of stake keys (CIP-0011).
pub const ROLE_STAKING: u32 = 2;
/// Largest account index (accounts are hardened: below 2^31).
pub const MAX_ACCOUNT: u32 = 0x7FFF_FFFF;
const HARDENED: u32 = 0x8000_0000;

/// A root extended private key of 96 bytes (kL ‖ kR ‖ chain code).
///
/// # Errors
/// [`AdapterError::Signer`] for another length or a kL that is not a clamped Ed25519
/// scalar (its lowest three bits set, or its highest two bits not `01`).
pub fn root(bytes: &[u8]) -> Result<XPrv> {
    if bytes.len() != XPRV_SIZE {
        return Err(AdapterError::Signer(format!(
            "a CIP-1852 root key is {XPRV_SIZE} bytes (kL ‖ kR ‖ chain code), not {}",
            bytes.len()
        )));
    }
    XPrv::from_slice_verified(bytes).map_err(|e| AdapterError::Signer(format!("not a BIP32-Ed25519 root key: {e:?}")))
}

fn account(root: &XPrv, index: u32) -> Result<XPrv> {
    if index > MAX_ACCOUNT {
        return Err(AdapterError::Signer(format!(
            "account {index} is above {MAX_ACCOUNT} (accounts are hardened)"
        )));
    }
    Ok(root
        .derive(DerivationScheme::V2, HARDENED | PURPOSE)
        .derive(DerivationScheme::V2, HARDENED | COIN_TYPE)
        .derive(DerivationScheme::V2, HARDENED | index))
}

/// The payment key `m/1852'/1815'/account'/0/0` and the stake keys
/// `m/1852'/1815'/account'/2/i` for `i` in `0..stake_keys`.
///
/// # Errors
/// [`AdapterError::Signer`] for an account of 2^31 or more.
pub fn keys(root: &XPrv, account_index: u32, stake_keys: u32) -> Result<(XPrv, Vec<XPrv>)> {
    let acct = account(root, account_index)?;
    let payment = acct
        .derive(DerivationScheme::V2, ROLE_EXTERNAL)
        .derive(DerivationScheme::V2, 0);
    let staking = acct.derive(DerivationScheme::V2, ROLE_STAKING);
    let stake = (0..stake_keys)
        .map(|i| staking.derive(DerivationScheme::V2, i))
        .collect();
    Ok((payment, stake))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cardano::wire;
    use pallas_crypto::key::ed25519::PublicKey;

    /// The root of the BIP-39 phrase "abandon × 11, about" (CIP-0003 Icarus), as published
    /// with hardware-wallet firmware test suites.
    const ABANDON_ROOT: &str = "60ce7dbec3616e9fc17e0c32578b3f380337b1b61a1f3cb9651aee30670e6f53970419a23a2e4e4082d12bf78faa8645dfc882cee2ae7179e2b07fe88098abb2072310084784c7308182dbbdb1449b2706586f1ff5cbf13d15e9b6e78c15f067";

    fn pk(k: &XPrv) -> PublicKey {
        PublicKey::from(k.public().public_key())
    }

    /// Account 0 of that root gives the published base and reward addresses on mainnet and
    /// on the testnets (the ones Yoroi, Eternl and cardano-serialization-lib derive).
    #[test]
    fn success_published_addresses_of_account_zero() {
        let r = root(&hex::decode(ABANDON_ROOT).unwrap()).unwrap();
        let (pay, stake) = keys(&r, 0, 2).unwrap();
        let (p, s) = (wire::key_hash(&pk(&pay)), wire::key_hash(&pk(&stake[0])));
        assert_eq!(
            wire::base_address(wire::network(1), p, s).to_bech32().unwrap(),
            "addr1qy8ac7qqy0vtulyl7wntmsxc6wex80gvcyjy33qffrhm7sh927ysx5sftuw0dlft05dz3c7revpf7jx0xnlcjz3g69mq4afdhv"
        );
        assert_eq!(
            wire::base_address(wire::network(0), p, s).to_bech32().unwrap(),
            "addr_test1qq8ac7qqy0vtulyl7wntmsxc6wex80gvcyjy33qffrhm7sh927ysx5sftuw0dlft05dz3c7revpf7jx0xnlcjz3g69mqkt5dmn"
        );
        assert_eq!(
            wire::stake_address(wire::network(0), s).to_bech32().unwrap(),
            "stake_test1urj40zgr2gy4788kl54h6x3gu0pukq5lfr8nflufpg5dzas324ywz"
        );
        assert_ne!(stake[0].public().public_key(), stake[1].public().public_key());
        let (other, _) = keys(&r, 1, 1).unwrap();
        assert_ne!(
            other.public().public_key(),
            pay.public().public_key(),
            "accounts differ"
        );
    }

    /// An extended key's signature is plain Ed25519: ed25519-dalek's strict verification
    /// accepts it under the derived public key and refuses it for another message.
    #[test]
    fn success_extended_signatures_verify_as_ed25519() {
        use ed25519_dalek::{Signature, VerifyingKey};
        let r = root(&hex::decode(ABANDON_ROOT).unwrap()).unwrap();
        let (pay, _) = keys(&r, 0, 0).unwrap();
        let sig: ed25519_bip32::Signature<Vec<u8>> = pay.sign(b"body hash");
        let vk = VerifyingKey::from_bytes(&pay.public().public_key()).unwrap();
        let sig = Signature::from_bytes(sig.to_bytes());
        assert!(vk.verify_strict(b"body hash", &sig).is_ok());
        assert!(vk.verify_strict(b"another", &sig).is_err());
    }

    #[test]
    fn fail_malformed_roots_and_accounts() {
        let e = root(&[0; 32]).err().expect("refused").to_string();
        assert!(e.contains("96 bytes") && e.contains("not 32"), "{e}");
        let mut bad = hex::decode(ABANDON_ROOT).unwrap();
        bad[0] |= 0b111;
        assert!(root(&bad)
            .err()
            .expect("refused")
            .to_string()
            .contains("not a BIP32-Ed25519 root key"));
        let r = root(&hex::decode(ABANDON_ROOT).unwrap()).unwrap();
        assert!(keys(&r, HARDENED, 1)
            .err()
            .expect("refused")
            .to_string()
            .contains("hardened"));
    }
}

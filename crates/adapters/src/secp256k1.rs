//! The treasury's secp256k1 key as the EVM and TRON adapters sign with it: in process
//! memory (devnet, testnets) or in a PKCS#11 token (production, feature `pkcs11`). Both
//! sign 32-byte digests as RustCrypto's `PrehashSigner<(Signature, RecoveryId)>`, which
//! alloy's `LocalSigner` takes as its credential and TRON's `r ‖ s ‖ v` is built from.

use k256::ecdsa::signature::hazmat::PrehashSigner;
use k256::ecdsa::{Error, RecoveryId, Signature, SigningKey, VerifyingKey};

use crate::error::{AdapterError, Result};
use crate::signer::TreasuryKey;

/// A secp256k1 signing key, in memory or in an HSM.
#[derive(Clone, Debug)]
pub enum Secp256k1Key {
    /// A key in process memory.
    Local(SigningKey),
    /// A key in an HSM (`CKM_ECDSA` over the digest; low S, recovery id found, verified).
    #[cfg(feature = "pkcs11")]
    Hsm(crate::pkcs11::HsmSecp256k1),
}

impl Secp256k1Key {
    /// The key of `key` for `chain`: 32 secret bytes, or a secp256k1 key pair in a token.
    ///
    /// # Errors
    /// [`AdapterError::Signer`] for another length, a scalar outside the curve's order, or
    /// an HSM key on another curve.
    pub fn from_treasury(chain: &str, key: TreasuryKey) -> Result<Secp256k1Key> {
        match key {
            TreasuryKey::Raw(k) => {
                // (k256 would left-pad a shorter slice: a truncated key file must not load)
                if k.expose().len() != 32 {
                    return Err(AdapterError::Signer(format!(
                        "the {chain} key must be a 32-byte secp256k1 secret, got {} bytes",
                        k.expose().len()
                    )));
                }
                SigningKey::from_slice(k.expose())
                    .map(Secp256k1Key::Local)
                    .map_err(|_| AdapterError::Signer(format!("the {chain} key must be a 32-byte secp256k1 secret")))
            }
            #[cfg(feature = "pkcs11")]
            TreasuryKey::Hsm(h) => Ok(Secp256k1Key::Hsm(h.secp256k1()?)),
        }
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        match self {
            Secp256k1Key::Local(k) => *k.verifying_key(),
            #[cfg(feature = "pkcs11")]
            Secp256k1Key::Hsm(k) => k256::ecdsa::signature::Keypair::verifying_key(k),
        }
    }
}

impl PrehashSigner<(Signature, RecoveryId)> for Secp256k1Key {
    fn sign_prehash(&self, prehash: &[u8]) -> std::result::Result<(Signature, RecoveryId), Error> {
        match self {
            Secp256k1Key::Local(k) => k.sign_prehash(prehash),
            #[cfg(feature = "pkcs11")]
            Secp256k1Key::Hsm(k) => k.sign_prehash(prehash),
        }
    }
}

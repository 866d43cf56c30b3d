//! The treasury's Ed25519 key as the NEAR and Cardano adapters sign with it: a seed in
//! process memory (devnet, testnets) or a key pair in a PKCS#11 token (production,
//! feature `pkcs11`; `CKM_EDDSA`, the token call in `spawn_blocking`). Either way the
//! signature is pure Ed25519 (RFC 8032) and is verified against the public key before it
//! is returned, so nothing unverifiable is ever broadcast.
//!
//! ```text
//!  TreasuryKey::Raw(32-byte seed)       ─▶ Ed25519Key::Local    ─┐
//!  CIP-1852 child of a 96-byte root key  ─▶ Ed25519Key::Extended ─┤ (Cardano)
//!  TreasuryKey::Hsm(Ed25519 key)         ─▶ Ed25519Key::Hsm      ─┴▶ sign(message) ─▶ verify ─▶ [u8; 64]
//! ```

use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};

use crate::error::{AdapterError, Result};
use crate::signer::{SecretBytes, TreasuryKey};

/// The 32-byte Ed25519 seed of a raw key of `chain`: 32 seed bytes, or 64 bytes of seed ‖
/// public key (a MultiversX PEM wallet, an Algorand SDK secret key).
///
/// # Errors
/// [`AdapterError::Signer`] for another length or a 64-byte key whose halves disagree.
pub fn seed_or_keypair(chain: &str, key: &SecretBytes) -> Result<[u8; 32]> {
    let bytes = key.expose();
    let seed: [u8; 32] = bytes
        .get(..32)
        .and_then(|s| s.try_into().ok())
        .filter(|_| bytes.len() == 32 || bytes.len() == 64)
        .ok_or_else(|| AdapterError::Signer(format!("a {chain} key is 32 or 64 bytes, not {}", bytes.len())))?;
    if bytes.len() == 64 && Ed25519Key::from_seed(&seed).public_key()[..] != bytes[32..] {
        return Err(AdapterError::Signer(format!(
            "the 64-byte {chain} key's public half does not match its seed"
        )));
    }
    Ok(seed)
}

/// An Ed25519 signing key, in memory or in an HSM. Cheap to clone.
#[derive(Clone)]
pub enum Ed25519Key {
    /// A key in process memory (from its 32-byte seed).
    Local(SigningKey),
    /// A key pair in a PKCS#11 token; the private key never leaves it.
    #[cfg(feature = "pkcs11")]
    Hsm(crate::pkcs11::HsmKey, VerifyingKey),
    /// A BIP32-Ed25519 extended key (a CIP-1852 child, `crate::cardano::hd`), which has no
    /// seed: it signs with its scalar kL and nonce key kR.
    #[cfg(feature = "cardano")]
    Extended(Box<ed25519_bip32::XPrv>, VerifyingKey),
}

impl std::fmt::Debug for Ed25519Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ed25519Key::Local(k) => write!(
                f,
                "Ed25519Key::Local({}, <seed redacted>)",
                hex::encode(k.verifying_key().as_bytes())
            ),
            #[cfg(feature = "pkcs11")]
            Ed25519Key::Hsm(h, _) => write!(f, "Ed25519Key::Hsm({})", h.uri()),
            #[cfg(feature = "cardano")]
            Ed25519Key::Extended(_, vk) => write!(
                f,
                "Ed25519Key::Extended({}, <key redacted>)",
                hex::encode(vk.as_bytes())
            ),
        }
    }
}

impl Ed25519Key {
    /// The key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> Ed25519Key {
        Ed25519Key::Local(SigningKey::from_bytes(seed))
    }

    /// A BIP32-Ed25519 extended key.
    ///
    /// # Errors
    /// [`AdapterError::Signer`] when its public key is not an Ed25519 point.
    #[cfg(feature = "cardano")]
    pub fn from_extended(key: ed25519_bip32::XPrv) -> Result<Ed25519Key> {
        let vk = VerifyingKey::from_bytes(&key.public().public_key())
            .map_err(|_| AdapterError::Signer("an extended key whose public key is not a point".into()))?;
        Ok(Ed25519Key::Extended(Box::new(key), vk))
    }

    /// The key of `key` for `chain`: 32 seed bytes (`raw_seed` reads them from the raw key
    /// in the chain's own formats), or an Ed25519 key pair in a token.
    ///
    /// # Errors
    /// What `raw_seed` returns for a bad raw key; [`AdapterError::Signer`] for an HSM key on
    /// another curve.
    pub fn from_treasury(
        chain: &str,
        key: TreasuryKey,
        raw_seed: impl FnOnce(&SecretBytes) -> Result<[u8; 32]>,
    ) -> Result<Ed25519Key> {
        let key = match key {
            TreasuryKey::Raw(k) => raw_seed(&k).map(|seed| Ed25519Key::from_seed(&seed)),
            #[cfg(feature = "pkcs11")]
            TreasuryKey::Hsm(h) => Ed25519Key::from_hsm(chain, h),
        };
        key.map_err(|e| match e {
            AdapterError::Signer(m) if !m.contains(chain) => AdapterError::Signer(format!("{chain}: {m}")),
            e => e,
        })
    }

    /// An HSM key pair, which must be Ed25519.
    ///
    /// # Errors
    /// [`AdapterError::Signer`] for a key on another curve or a public key that is not an
    /// Ed25519 point.
    #[cfg(feature = "pkcs11")]
    pub fn from_hsm(chain: &str, h: crate::pkcs11::HsmKey) -> Result<Ed25519Key> {
        let not_ed25519 = || AdapterError::Signer(format!("{chain}: {} is not an Ed25519 key", h.uri()));
        if h.algorithm() != crate::pkcs11::KeyAlgorithm::Ed25519 {
            return Err(not_ed25519());
        }
        let pk: [u8; 32] = h.public_key().try_into().map_err(|_| not_ed25519())?;
        let vk = VerifyingKey::from_bytes(&pk).map_err(|_| not_ed25519())?;
        Ok(Ed25519Key::Hsm(h, vk))
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.verifying_key().to_bytes()
    }

    fn verifying_key(&self) -> VerifyingKey {
        match self {
            Ed25519Key::Local(k) => k.verifying_key(),
            #[cfg(feature = "pkcs11")]
            Ed25519Key::Hsm(_, vk) => *vk,
            #[cfg(feature = "cardano")]
            Ed25519Key::Extended(_, vk) => *vk,
        }
    }

    /// The 64-byte Ed25519 signature of `message`, verified against [`Self::public_key`].
    /// An HSM signs in `spawn_blocking` (its call blocks the thread).
    ///
    /// # Errors
    /// [`AdapterError::Signer`]: the token's error, a failed signing task, a signature that
    /// does not verify.
    pub async fn sign(&self, message: &[u8]) -> Result<[u8; 64]> {
        let sig = match self {
            Ed25519Key::Local(k) => k.sign(message).to_bytes(),
            #[cfg(feature = "cardano")]
            Ed25519Key::Extended(k, _) => *k.sign::<Vec<u8>>(message).to_bytes(),
            #[cfg(feature = "pkcs11")]
            Ed25519Key::Hsm(h, _) => {
                let (h, m) = (h.clone(), message.to_vec());
                tokio::task::spawn_blocking(move || h.sign_ed25519(&m))
                    .await
                    .map_err(|e| AdapterError::Signer(format!("the signing task failed: {e}")))??
            }
        };
        self.verifying_key()
            .verify(message, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| AdapterError::Signer("an Ed25519 signature that does not verify".into()))?;
        Ok(sig)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn success_local_signature_is_rfc8032() {
        // RFC 8032 §7.1 TEST 1: the empty message under this seed
        let seed: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
        let k = Ed25519Key::from_seed(&seed);
        assert_eq!(
            hex::encode(k.public_key()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = k.sign(b"").await.unwrap();
        assert_eq!(
            hex::encode(sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn fail_bad_raw_key_names_the_chain() {
        let e = Ed25519Key::from_treasury("near", TreasuryKey::Raw(SecretBytes::new(vec![1; 7])), |_| {
            Err(AdapterError::Signer("a key of 7 bytes".into()))
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("near") && e.contains("7 bytes"), "{e}");
    }

    #[test]
    fn success_debug_shows_no_seed() {
        let d = format!("{:?}", Ed25519Key::from_seed(&[0xAB; 32]));
        assert!(d.contains("redacted") && !d.contains("abab"), "{d}");
    }
}

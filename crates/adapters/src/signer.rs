//! Signing keys. A [`Signer`] signs bytes and tells its address; where its key comes from
//! is a [`KeySource`] (`env:VAR` or `file:PATH` for devnet; an HSM or KMS signer in
//! production implements the same trait). Keys never appear in `Debug`, logs or errors.

use std::fmt;
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{AdapterError, Result};

/// Signs messages for one account.
pub trait Signer: Send + Sync + fmt::Debug {
    /// The account's address on the chain.
    fn address(&self) -> String;

    /// Signs `message`; the signature's format is the chain's.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>>;
}

/// The treasury's signing key as an adapter takes it: raw key bytes from an `env:`/`file:`
/// [`KeySource`] (devnet and testnets), or a key pair that stays inside a PKCS#11 token
/// (production; feature `pkcs11`). Every real adapter takes both: secp256k1 keys for EVM,
/// TRON and Cosmos, Ed25519 keys for Solana, NEAR and Cardano (whose stake keys sit next to
/// the payment key in the token).
#[derive(Debug, Clone)]
pub enum TreasuryKey {
    /// Key bytes in process memory (zeroed on drop).
    Raw(SecretBytes),
    /// A key pair in a PKCS#11 token; the private key never leaves it.
    #[cfg(feature = "pkcs11")]
    Hsm(crate::pkcs11::HsmKey),
}

impl From<SecretBytes> for TreasuryKey {
    fn from(k: SecretBytes) -> Self {
        TreasuryKey::Raw(k)
    }
}

impl From<&SecretBytes> for TreasuryKey {
    fn from(k: &SecretBytes) -> Self {
        TreasuryKey::Raw(k.clone())
    }
}

impl TreasuryKey {
    /// The raw key bytes, where only in-memory key bytes will do (a Cardano seed that its
    /// stake keys derive from).
    ///
    /// # Errors
    /// [`AdapterError::Signer`] for an HSM key (`chain` names the adapter).
    #[cfg_attr(not(feature = "pkcs11"), allow(unused_variables))]
    pub fn raw(&self, chain: &str) -> Result<&SecretBytes> {
        match self {
            TreasuryKey::Raw(k) => Ok(k),
            #[cfg(feature = "pkcs11")]
            TreasuryKey::Hsm(k) => Err(AdapterError::Signer(format!(
                "the {chain} adapter signs with a raw key only; {} is a PKCS#11 key",
                k.uri()
            ))),
        }
    }
}

/// Secret key bytes: zeroed on drop (`zeroize`), redacted in `Debug`.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Wraps key bytes.
    pub fn new(bytes: Vec<u8>) -> SecretBytes {
        SecretBytes(Zeroizing::new(bytes))
    }

    /// The bytes (for a signer implementation only).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes(<{} bytes redacted>)", self.0.len())
    }
}

/// Where a key comes from: `env:VAR` (in an environment variable) or `file:PATH` (in a
/// file); the key is hex, or a JSON byte array (the Solana CLI's keypair file). The source
/// is safe to log; the key is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Hex key in this environment variable.
    Env(String),
    /// Hex key in this file.
    File(PathBuf),
}

impl KeySource {
    /// Parses `env:VAR` or `file:PATH`.
    pub fn parse(s: &str) -> Result<KeySource> {
        match s.split_once(':') {
            Some(("env", v)) if !v.is_empty() => Ok(KeySource::Env(v.to_string())),
            Some(("file", p)) if !p.is_empty() => Ok(KeySource::File(
                match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
                    (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
                    _ => PathBuf::from(p),
                },
            )),
            _ => Err(AdapterError::Signer(format!(
                "key source {s:?}: expected env:VAR or file:PATH"
            ))),
        }
    }

    /// Loads the key bytes (hex-decoded, surrounding whitespace ignored). The text read
    /// and the decoded bytes are zeroed when dropped. Errors name the source, never the
    /// content.
    ///
    /// # Errors
    /// An unset variable, an unreadable file, a key file readable by group or others
    /// (Unix: it must be `chmod 600`, as `ssh` demands of private keys), text that is
    /// neither hex nor a JSON byte array, a key under 16 bytes.
    pub fn load(&self) -> Result<SecretBytes> {
        let text = Zeroizing::new(match self {
            KeySource::Env(v) => {
                std::env::var(v).map_err(|_| AdapterError::Signer(format!("environment variable {v} is not set")))?
            }
            KeySource::File(p) => {
                check_private(p)?;
                std::fs::read_to_string(p)
                    .map_err(|e| AdapterError::Signer(format!("cannot read key file {}: {e}", p.display())))?
            }
        });
        let t = text.trim();
        let bytes = SecretBytes::new(if t.starts_with('[') {
            // The Solana CLI's keypair file: a JSON array of bytes.
            serde_json::from_str::<Vec<u8>>(t)
                .map_err(|_| AdapterError::Signer(format!("{self:?}: not a JSON byte array")))?
        } else {
            hex::decode(t).map_err(|_| AdapterError::Signer(format!("{self:?}: the key is not hex")))?
        });
        if bytes.expose().len() < 16 {
            return Err(AdapterError::Signer(format!("{self:?}: the key is too short")));
        }
        Ok(bytes)
    }
}

/// Refuses a key file that group or others may read or write (Unix permissions).
fn check_private(path: &std::path::Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| AdapterError::Signer(format!("cannot read key file {}: {e}", path.display())))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AdapterError::Signer(format!(
                "key file {} has mode {mode:o}: group and others must have no access (chmod 600 {})",
                path.display(),
                path.display()
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The simulated chain's signer: `sha256(key || message)` (a MAC, not a public-key
/// signature: the simulated chain is given the key to verify with). Address:
/// `sim1` + hex of `sha256(key)`'s first 16 bytes.
#[derive(Debug, Clone)]
pub struct SimSigner {
    key: SecretBytes,
}

impl SimSigner {
    /// From key bytes.
    pub fn new(key: SecretBytes) -> SimSigner {
        SimSigner { key }
    }

    /// Verifies a signature made by [`Signer::sign`] with the same key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.mac(message).as_slice() == signature
    }

    fn mac(&self, message: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(self.key.expose());
        h.update(message);
        h.finalize().to_vec()
    }
}

impl Signer for SimSigner {
    fn address(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.key.expose());
        format!("sim1{}", hex::encode(&h.finalize()[..16]))
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>> {
        Ok(self.mac(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_debug_never_shows_key() {
        let s = SimSigner::new(SecretBytes::new(vec![0xAB; 32]));
        let d = format!("{s:?}");
        assert!(!d.contains("ab") && !d.contains("AB") && !d.contains("171"), "{d}");
        assert!(d.contains("redacted"));
    }

    #[test]
    fn fail_bad_key_sources_do_not_leak() {
        assert!(KeySource::parse("plain-secret").is_err());
        std::env::set_var("SOFTSTAKE_TEST_BAD_KEY", "zz-not-hex-secret");
        let e = KeySource::parse("env:SOFTSTAKE_TEST_BAD_KEY")
            .unwrap()
            .load()
            .unwrap_err()
            .to_string();
        assert!(!e.contains("zz-not-hex-secret"), "{e}");
    }

    #[test]
    fn success_json_keypair_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("softstake-key-{}", std::process::id()));
        std::fs::write(&dir, "[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o600)).unwrap();
        let k = KeySource::parse(&format!("file:{}", dir.display()))
            .unwrap()
            .load()
            .unwrap();
        assert_eq!(k.expose().len(), 17);
        std::fs::remove_file(dir).ok();
    }

    #[test]
    fn fail_key_file_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("softstake-open-key-{}", std::process::id()));
        std::fs::write(&path, "00".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeySource::File(path.clone()).load().unwrap_err().to_string();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(KeySource::File(path.clone()).load().unwrap().expose().len(), 32);
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn success_sign_and_verify() {
        let s = SimSigner::new(SecretBytes::new(vec![7; 32]));
        let sig = s.sign(b"hello").unwrap();
        assert!(s.verify(b"hello", &sig));
        assert!(!s.verify(b"hellO", &sig));
    }
}

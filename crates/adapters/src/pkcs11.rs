//! Production signing over PKCS#11: treasury keys generated inside a hardware (or
//! SoftHSM2) token and never leaving it. The adapters sign through the chain crates' own
//! signer traits, implemented here over the token:
//!
//! ```text
//!   signer = "pkcs11:token=treasury;object=bnb-1"      (RFC 7512 URI, in the network config)
//!        │  module path + PIN from the environment ([`Pkcs11Settings`])
//!        ▼
//!   HsmKey::open ─▶ C_Login, finds the key pair by label, reads its public key
//!        ├─ secp256k1 (EVM, TRON, Cosmos): CKM_ECDSA over the 32-byte digest ─▶ r‖s
//!        │     ─▶ low-S (BIP-62 / EIP-2) ─▶ recovery id found against the stored public key
//!        │     ─▶ verified locally ─▶ alloy `PrehashSigner`, cosmrs `EcdsaSigner`
//!        └─ Ed25519 (Solana, NEAR, Cardano): CKM_EDDSA (pure) ─▶ verified locally
//! ```
//!
//! Every signature is verified against the token's public key before it is returned, so
//! a faulty module cannot make an adapter broadcast a transaction the chain would reject
//! or attribute to another key.
//!
//! Token calls block: inside a multi-threaded tokio runtime they run under
//! `tokio::task::block_in_place`, so the runtime moves its other tasks off the thread for
//! the duration, as `spawn_blocking` would (the chain crates' signer traits are
//! synchronous, so the call cannot be moved to another thread).
//!
//! Sources: PKCS#11 v3.0 (OASIS), `CKM_ECDSA` §2.3.6 and `CKM_EDDSA` §2.3.14; the PKCS#11
//! URI scheme, RFC 7512; SoftHSM2 2.6 supports both curves (secp256k1 through OpenSSL).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use k256::ecdsa::{RecoveryId, Signature as EcdsaSignature, VerifyingKey};
use zeroize::Zeroizing;

use crate::error::{AdapterError, Result};

/// DER of the secp256k1 curve's OID, 1.3.132.0.10 (SEC 2), for `CKA_EC_PARAMS`.
const SECP256K1_PARAMS: [u8; 7] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A];
/// DER of the Ed25519 curve's OID, 1.3.101.112 (RFC 8410), for `CKA_EC_PARAMS`.
const ED25519_OID_PARAMS: [u8; 5] = [0x06, 0x03, 0x2B, 0x65, 0x70];
/// `CKA_EC_PARAMS` as the printable string "edwards25519" (PKCS#11 3.0 §2.3.10; what
/// SoftHSM2 2.6 expects when generating).
const ED25519_NAME_PARAMS: [u8; 14] = [
    0x13, 0x0c, b'e', b'd', b'w', b'a', b'r', b'd', b's', b'2', b'5', b'5', b'1', b'9',
];
/// Most keys `list` reads from one token (a bound on the loop).
const MAX_LIST: usize = 10_000;

fn signer_err(what: impl fmt::Display) -> AdapterError {
    AdapterError::Signer(format!("PKCS#11: {what}"))
}

/// The curve of a treasury key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// secp256k1 ECDSA (EVM chains, TRON, Cosmos).
    Secp256k1,
    /// Ed25519 (Solana, NEAR, Cardano).
    Ed25519,
}

impl KeyAlgorithm {
    /// `secp256k1` or `ed25519`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Secp256k1 => "secp256k1",
            KeyAlgorithm::Ed25519 => "ed25519",
        }
    }

    /// The curve a chain family signs with: `evm`, `bsc`, `tron`, `cosmos` … are
    /// secp256k1; `solana`, `near`, `cardano` are Ed25519.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a chain softstake does not sign for.
    pub fn for_chain(chain: &str) -> Result<KeyAlgorithm> {
        match chain {
            "evm" | "bsc" | "polygon" | "sonic" | "ronin" | "apechain" | "tron" | "cosmos" => {
                Ok(KeyAlgorithm::Secp256k1)
            }
            "solana" | "near" | "cardano" | "sui" | "iota" | "aptos" | "multiversx" | "algorand" | "ton" => {
                Ok(KeyAlgorithm::Ed25519)
            }
            other => Err(AdapterError::bad_input(
                "pkcs11",
                format!("unknown chain {other:?}: expected evm, bsc, polygon, sonic, ronin, apechain, tron, cosmos, solana, near, cardano, sui, iota, aptos, multiversx, algorand or ton"),
            )),
        }
    }
}

/// A key's place in a token: `pkcs11:token=<token label>;object=<key label>` (RFC 7512;
/// `type=private` is accepted, other attributes are refused rather than ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Uri {
    /// The token's label (`CKA_LABEL` of the token, `softhsm2-util --label`).
    pub token: String,
    /// The key pair's label (`CKA_LABEL` of both keys).
    pub object: String,
}

impl Pkcs11Uri {
    /// Parses `pkcs11:token=…;object=…` (values percent-decoded).
    ///
    /// # Errors
    /// [`AdapterError::Signer`] naming what is wrong: another scheme, a missing or repeated
    /// attribute, an attribute softstake does not use, bad percent-encoding.
    pub fn parse(s: &str) -> Result<Pkcs11Uri> {
        let path = s
            .strip_prefix("pkcs11:")
            .ok_or_else(|| signer_err(format!("{s:?} is not a pkcs11: URI")))?;
        let path = path.split('?').next().unwrap_or_default();
        let (mut token, mut object) = (None, None);
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| signer_err(format!("{s:?}: {part:?} is not attribute=value")))?;
            let v = percent_decode(v).ok_or_else(|| signer_err(format!("{s:?}: bad percent-encoding in {k}")))?;
            let slot = match k {
                "token" => &mut token,
                "object" => &mut object,
                "type" if v == "private" => continue,
                _ => {
                    return Err(signer_err(format!(
                        "{s:?}: attribute {k}={v} is not supported (token, object, type=private)"
                    )))
                }
            };
            if slot.replace(v).is_some() {
                return Err(signer_err(format!("{s:?}: {k} given twice")));
            }
        }
        match (token, object) {
            (Some(token), Some(object)) if !token.is_empty() && !object.is_empty() => Ok(Pkcs11Uri { token, object }),
            _ => Err(signer_err(format!("{s:?}: token= and object= are both required"))),
        }
    }
}

impl fmt::Display for Pkcs11Uri {
    /// `pkcs11:token=…;object=…`, every byte outside RFC 3986's unreserved set
    /// percent-encoded, so it parses back to the same URI.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pkcs11:token={};object={}",
            percent_encode(&self.token),
            percent_encode(&self.object)
        )
    }
}

fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn percent_decode(v: &str) -> Option<String> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Where the PKCS#11 module is and where its user PIN comes from.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs11Settings {
    /// The module (`/usr/lib/softhsm/libsofthsm2.so`, a vendor's library).
    pub module: PathBuf,
    /// The environment variable holding the user PIN (never the PIN itself).
    pub pin_env: String,
}

impl fmt::Debug for Pkcs11Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Settings")
            .field("module", &self.module)
            .field("pin_env", &self.pin_env)
            .finish()
    }
}

impl Pkcs11Settings {
    fn pin(&self) -> Result<AuthPin> {
        let pin = Zeroizing::new(
            std::env::var(&self.pin_env)
                .map_err(|_| signer_err(format!("the PIN variable {} is not set", self.pin_env)))?,
        );
        Ok(AuthPin::new(pin.as_str().into()))
    }
}

/// One initialized context per module for the whole process: `C_Finalize` runs when a
/// context is dropped and would log every other key of the module out.
fn module(path: &Path) -> Result<Pkcs11> {
    static MODULES: OnceLock<Mutex<BTreeMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut map = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(m) = map.get(path) {
        return Ok(m.clone());
    }
    let m = Pkcs11::new(path).map_err(|e| signer_err(format!("loading the module {}: {e}", path.display())))?;
    match m.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, Function::Initialize)) => {}
        Err(e) => return Err(signer_err(format!("initializing {}: {e}", path.display()))),
    }
    map.insert(path.to_path_buf(), m.clone());
    Ok(m)
}

/// The slot of the token labelled `label`.
fn slot_of(m: &Pkcs11, label: &str) -> Result<Slot> {
    let slots = m
        .get_slots_with_token()
        .map_err(|e| signer_err(format!("listing slots: {e}")))?;
    for slot in slots {
        let info = m
            .get_token_info(slot)
            .map_err(|e| signer_err(format!("reading a token: {e}")))?;
        if info.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(signer_err(format!("no token labelled {label:?} in the module")))
}

/// A logged-in read-write session on `token`.
fn session(settings: &Pkcs11Settings, token: &str) -> Result<Session> {
    let m = module(&settings.module)?;
    let slot = slot_of(&m, token)?;
    let s = m
        .open_rw_session(slot)
        .map_err(|e| signer_err(format!("opening a session on {token:?}: {e}")))?;
    match s.login(UserType::User, Some(&settings.pin()?)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(s),
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(signer_err(format!(
            "the PIN in {} is wrong for token {token:?}",
            settings.pin_env
        ))),
        Err(e) => Err(signer_err(format!("logging in to {token:?}: {e}"))),
    }
}

/// Runs a blocking token call; under a multi-threaded runtime with `block_in_place`.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// A key pair as listed by [`HsmKey::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmKeyInfo {
    /// Its label (the URI's `object`).
    pub label: String,
    /// Its curve.
    pub algorithm: KeyAlgorithm,
    /// The public key: SEC1 compressed (33 bytes) for secp256k1, 32 bytes for Ed25519.
    pub public_key: Vec<u8>,
}

impl HsmKeyInfo {
    /// The key's account address on `chain` (what to fund before it signs):
    ///
    /// - EVM chains (`evm`, `bsc`, `polygon`, `sonic`, `ronin`, `apechain`): EIP-55 `0x…`,
    ///   the last 20 bytes of Keccak-256 of the uncompressed point (Ethereum yellow paper);
    /// - `cosmos`: bech32 under `cosmos_prefix` of RIPEMD-160(SHA-256(compressed point))
    ///   (ADR-028 legacy secp256k1 accounts);
    /// - `tron`: base58check `T…` of `0x41` ‖ the last 20 bytes of Keccak-256 of the
    ///   uncompressed point (TRON's address format);
    /// - `solana`: the base58 public key;
    /// - `near`: the implicit account id, 64 lowercase hex digits of the public key (NEAR
    ///   docs, "Implicit accounts"); a named account adds the key as a full-access key
    ///   instead (`ed25519:<base58>`, [`HsmKeyInfo::near_public_key`]);
    /// - `cardano`: the mainnet enterprise address `addr1…` of the payment key
    ///   ([`cardano_enterprise_address`] for testnets; CIP-19).
    ///
    /// # Errors
    /// [`AdapterError::Signer`]: a key on the wrong curve for the chain, a bad prefix.
    pub fn address(&self, chain: &str, cosmos_prefix: &str) -> Result<String> {
        let want = KeyAlgorithm::for_chain(chain)?;
        if want != self.algorithm {
            return Err(signer_err(format!(
                "{:?} is a {} key; {chain} signs with {}",
                self.label,
                self.algorithm.as_str(),
                want.as_str()
            )));
        }
        let verifying = || {
            VerifyingKey::from_sec1_bytes(&self.public_key)
                .map_err(|_| signer_err(format!("{:?}: the public key is not a secp256k1 point", self.label)))
        };
        match chain {
            "evm" | "bsc" | "polygon" | "sonic" | "ronin" | "apechain" => Ok(evm_address(&verifying()?)),
            "cosmos" => cosmos_address(&self.public_key, cosmos_prefix),
            "tron" => Ok(tron_address(&verifying()?)),
            "solana" => Ok(bs58::encode(&self.public_key).into_string()),
            "near" => Ok(hex::encode(&self.public_key)),
            "sui" => Ok(sui_address(&self.public_key)),
            "iota" => Ok(iota_address(&self.public_key)),
            "aptos" => Ok(aptos_address(&self.public_key)),
            "multiversx" => multiversx_address(&self.public_key),
            "algorand" => Ok(algorand_address(&self.public_key)),
            "ton" => ton_wallet_address(&self.public_key),
            _ => cardano_enterprise_address(&self.public_key, 1),
        }
    }

    /// NEAR's text form of an Ed25519 public key, `ed25519:<base58>` (what
    /// `near account add-key` takes).
    pub fn near_public_key(&self) -> String {
        format!("ed25519:{}", bs58::encode(&self.public_key).into_string())
    }
}

/// The label of Cardano stake key `index` next to the payment key labelled
/// `payment_label` in a token: `<payment_label>-stake-<index>` (`softstake keys generate
/// --chain cardano --stake-keys N` creates them with the payment key; the node opens them
/// for a `pkcs11:` Cardano signer).
pub fn cardano_stake_key_label(payment_label: &str, index: u32) -> String {
    format!("{payment_label}-stake-{index}")
}

/// The Cardano enterprise address (no stake part) of an Ed25519 payment key on
/// `network_id` (1 mainnet `addr1…`, 0 testnets `addr_test1…`): header `0110 ‖ network`,
/// then Blake2b-224 of the key, in bech32 (CIP-19, CIP-5).
///
/// # Errors
/// [`AdapterError::Signer`] for a key that is not 32 bytes or a network id above 15.
pub fn cardano_enterprise_address(public_key: &[u8], network_id: u8) -> Result<String> {
    use blake2::digest::consts::U28;
    use blake2::{Blake2b, Digest};
    if public_key.len() != 32 || network_id > 15 {
        return Err(signer_err(format!(
            "a Cardano payment key is 32 bytes ({}) on network 0..=15 ({network_id})",
            public_key.len()
        )));
    }
    let mut bytes = vec![0x60 | network_id];
    bytes.extend_from_slice(&Blake2b::<U28>::digest(public_key));
    let hrp = bech32::Hrp::parse(if network_id == 1 { "addr" } else { "addr_test" })
        .map_err(|e| signer_err(format!("bech32: {e}")))?;
    bech32::encode::<bech32::Bech32>(hrp, &bytes).map_err(|e| signer_err(format!("bech32: {e}")))
}

struct Inner {
    session: Mutex<Session>,
    private: ObjectHandle,
    info: HsmKeyInfo,
    /// secp256k1 only: the public key to verify with and recover against.
    verifying: Option<VerifyingKey>,
    uri: Pkcs11Uri,
}

/// A treasury key pair in a PKCS#11 token. Cheap to clone (one session, shared).
#[derive(Clone)]
pub struct HsmKey(Arc<Inner>);

impl fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HsmKey({}, {})", self.0.uri, self.0.info.algorithm.as_str())
    }
}

impl HsmKey {
    /// Opens the key pair the URI names, logged in with the PIN from the settings.
    ///
    /// # Errors
    /// [`AdapterError::Signer`]: the module does not load, no such token or key, a wrong
    /// or missing PIN, a key on another curve than secp256k1 or Ed25519.
    pub fn open(settings: &Pkcs11Settings, uri: &Pkcs11Uri) -> Result<HsmKey> {
        blocking(|| {
            let s = session(settings, &uri.token)?;
            let private = find_one(&s, ObjectClass::PRIVATE_KEY, &uri.object)?;
            let public = find_one(&s, ObjectClass::PUBLIC_KEY, &uri.object)?;
            let info = read_public(&s, public, &uri.object)?;
            HsmKey::from_parts(s, private, info, uri.clone())
        })
    }

    /// Generates a key pair labelled `label` in `token` (sensitive, not extractable: the
    /// private key never leaves the token) and opens it.
    ///
    /// # Errors
    /// [`AdapterError::Signer`]: a key with this label already exists; the module refuses
    /// the curve; as [`HsmKey::open`].
    pub fn generate(settings: &Pkcs11Settings, token: &str, label: &str, algorithm: KeyAlgorithm) -> Result<HsmKey> {
        if label.is_empty() {
            return Err(signer_err("a key label is required"));
        }
        blocking(|| {
            let s = session(settings, token)?;
            let existing = s
                .find_objects(&[
                    Attribute::Class(ObjectClass::PRIVATE_KEY),
                    Attribute::Label(label.into()),
                ])
                .map_err(|e| signer_err(format!("searching {token:?}: {e}")))?;
            if !existing.is_empty() {
                return Err(signer_err(format!(
                    "token {token:?} already has a key labelled {label:?}"
                )));
            }
            let (mechanism, params) = match algorithm {
                KeyAlgorithm::Secp256k1 => (Mechanism::EccKeyPairGen, SECP256K1_PARAMS.to_vec()),
                KeyAlgorithm::Ed25519 => (Mechanism::EccEdwardsKeyPairGen, ED25519_NAME_PARAMS.to_vec()),
            };
            let public_template = [
                Attribute::Token(true),
                Attribute::Private(false),
                Attribute::Verify(true),
                Attribute::EcParams(params),
                Attribute::Label(label.into()),
            ];
            let private_template = [
                Attribute::Token(true),
                Attribute::Private(true),
                Attribute::Sensitive(true),
                Attribute::Extractable(false),
                Attribute::Sign(true),
                Attribute::Label(label.into()),
            ];
            let (public, private) = s
                .generate_key_pair(&mechanism, &public_template, &private_template)
                .map_err(|e| signer_err(format!("generating a {} key in {token:?}: {e}", algorithm.as_str())))?;
            let info = read_public(&s, public, label)?;
            let uri = Pkcs11Uri {
                token: token.into(),
                object: label.into(),
            };
            HsmKey::from_parts(s, private, info, uri)
        })
    }

    /// The key pairs of `token` with a curve softstake signs with, by label.
    ///
    /// # Errors
    /// As [`HsmKey::open`].
    pub fn list(settings: &Pkcs11Settings, token: &str) -> Result<Vec<HsmKeyInfo>> {
        blocking(|| {
            let s = session(settings, token)?;
            let publics = s
                .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY)])
                .map_err(|e| signer_err(format!("searching {token:?}: {e}")))?;
            let mut out = Vec::new();
            for h in publics.into_iter().take(MAX_LIST) {
                let label = match s.get_attributes(h, &[AttributeType::Label]) {
                    Ok(a) => a
                        .into_iter()
                        .find_map(|a| match a {
                            Attribute::Label(l) => Some(String::from_utf8_lossy(&l).into_owned()),
                            _ => None,
                        })
                        .unwrap_or_default(),
                    Err(_) => continue,
                };
                if let Ok(info) = read_public(&s, h, &label) {
                    out.push(info);
                }
            }
            out.sort_by(|a, b| a.label.cmp(&b.label));
            Ok(out)
        })
    }

    fn from_parts(session: Session, private: ObjectHandle, info: HsmKeyInfo, uri: Pkcs11Uri) -> Result<HsmKey> {
        let verifying = match info.algorithm {
            KeyAlgorithm::Secp256k1 => Some(
                VerifyingKey::from_sec1_bytes(&info.public_key)
                    .map_err(|_| signer_err(format!("{uri}: the public key is not a secp256k1 point")))?,
            ),
            KeyAlgorithm::Ed25519 => None,
        };
        Ok(HsmKey(Arc::new(Inner {
            session: Mutex::new(session),
            private,
            info,
            verifying,
            uri,
        })))
    }

    /// The key's URI.
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.0.uri
    }

    /// Its curve.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.0.info.algorithm
    }

    /// The public key: SEC1 compressed (33 bytes) for secp256k1, 32 bytes for Ed25519.
    pub fn public_key(&self) -> &[u8] {
        &self.0.info.public_key
    }

    fn raw_sign(&self, mechanism: &Mechanism<'_>, data: &[u8]) -> Result<Vec<u8>> {
        blocking(|| {
            let s = self.0.session.lock().unwrap_or_else(|p| p.into_inner());
            s.sign(mechanism, self.0.private, data)
                .map_err(|e| signer_err(format!("{}: signing: {e}", self.0.uri)))
        })
    }

    /// Signs `message` with Ed25519 (`CKM_EDDSA`, pure): the 64-byte signature, verified
    /// against the public key.
    ///
    /// # Errors
    /// [`AdapterError::Signer`]: not an Ed25519 key; the token's error; a signature that
    /// does not verify.
    pub fn sign_ed25519(&self, message: &[u8]) -> Result<[u8; 64]> {
        if self.algorithm() != KeyAlgorithm::Ed25519 {
            return Err(signer_err(format!(
                "{} is a {} key, not Ed25519",
                self.0.uri,
                self.algorithm().as_str()
            )));
        }
        let sig = self.raw_sign(&Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)), message)?;
        let sig: [u8; 64] = sig
            .try_into()
            .map_err(|s: Vec<u8>| signer_err(format!("{}: an Ed25519 signature of {} bytes", self.0.uri, s.len())))?;
        let pk: [u8; 32] = self
            .public_key()
            .try_into()
            .map_err(|_| signer_err("an Ed25519 public key is 32 bytes"))?;
        ed25519_dalek::VerifyingKey::from_bytes(&pk)
            .and_then(|vk| vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig)))
            .map_err(|_| signer_err(format!("{}: the token's Ed25519 signature does not verify", self.0.uri)))?;
        Ok(sig)
    }

    /// Signs a 32-byte digest with secp256k1 ECDSA (`CKM_ECDSA`): the signature with a
    /// low S (BIP-62, EIP-2: what Ethereum, TRON and Cosmos accept), and the recovery id
    /// found against the public key; verified before it is returned.
    ///
    /// # Errors
    /// [`AdapterError::Signer`]: not a secp256k1 key; the token's error; an answer that is
    /// not r‖s or does not verify.
    pub fn sign_secp256k1_prehash(&self, digest: &[u8; 32]) -> Result<(EcdsaSignature, RecoveryId)> {
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        let vk = self.verifying_key()?;
        let rs = self.raw_sign(&Mechanism::Ecdsa, digest)?;
        let sig = EcdsaSignature::from_slice(&rs).map_err(|_| {
            signer_err(format!(
                "{}: the token's answer is not r‖s ({} bytes)",
                self.0.uri,
                rs.len()
            ))
        })?;
        let sig = sig.normalize_s().unwrap_or(sig);
        vk.verify_prehash(digest, &sig)
            .map_err(|_| signer_err(format!("{}: the token's ECDSA signature does not verify", self.0.uri)))?;
        let recid = RecoveryId::trial_recovery_from_prehash(vk, digest, &sig)
            .map_err(|_| signer_err(format!("{}: no recovery id gives the public key", self.0.uri)))?;
        Ok((sig, recid))
    }

    /// The secp256k1 public key.
    ///
    /// # Errors
    /// [`AdapterError::Signer`] for an Ed25519 key.
    pub fn verifying_key(&self) -> Result<&VerifyingKey> {
        self.0
            .verifying
            .as_ref()
            .ok_or_else(|| signer_err(format!("{} is an Ed25519 key, not secp256k1", self.0.uri)))
    }

    /// Its label, curve and public key.
    pub fn info(&self) -> &HsmKeyInfo {
        &self.0.info
    }

    /// The key's account address on `chain`: [`HsmKeyInfo::address`].
    ///
    /// # Errors
    /// As [`HsmKeyInfo::address`].
    pub fn address(&self, chain: &str, cosmos_prefix: &str) -> Result<String> {
        self.0.info.address(chain, cosmos_prefix)
    }

    /// This key as a secp256k1 signer for the chain crates' traits.
    ///
    /// # Errors
    /// [`AdapterError::Signer`] for an Ed25519 key.
    pub fn secp256k1(&self) -> Result<HsmSecp256k1> {
        Ok(HsmSecp256k1 {
            verifying: *self.verifying_key()?,
            key: self.clone(),
        })
    }
}

/// The Sui address of an Ed25519 key: `0x` + hex of Blake2b-256(flag 0x00 ‖ key)
/// (docs.sui.io "Sui Address").
fn sui_address(public_key: &[u8]) -> String {
    use blake2::digest::consts::U32;
    use blake2::{Blake2b, Digest};
    let mut h = Blake2b::<U32>::new();
    h.update([0u8]);
    h.update(public_key);
    format!("0x{}", hex::encode(h.finalize()))
}

/// The IOTA address of an Ed25519 key: `0x` + hex of Blake2b-256(key), with no flag byte,
/// unlike Sui (iota-sdk-types `Ed25519PublicKey::derive_address`).
fn iota_address(public_key: &[u8]) -> String {
    use blake2::digest::consts::U32;
    use blake2::{Blake2b, Digest};
    format!("0x{}", hex::encode(Blake2b::<U32>::digest(public_key)))
}

/// MultiversX's address of an Ed25519 key: bech32 `erd1…` of the 32-byte key itself
/// (docs.multiversx.com, "Addresses").
fn multiversx_address(public_key: &[u8]) -> Result<String> {
    bech32::encode::<bech32::Bech32>(bech32::Hrp::parse_unchecked("erd"), public_key)
        .map_err(|e| signer_err(format!("an erd1 address: {e}")))
}

/// Representation hash of wallet v4r2's code cell and the code tree's depth
/// (ton-blockchain/wallet-contract v4r2; `ton-contracts`' `wallet_v4r2.code`).
const TON_V4R2_CODE_HASH: &str = "feb5ff6820e2ff0d9483e7e0d62c817d846789fb4ae580c878866d959dabd5c0";
const TON_V4R2_CODE_DEPTH: u16 = 7;
/// Wallet v4r2's default subwallet id in the basechain.
const TON_V4R2_WALLET_ID: u32 = 698_983_191;

/// TON's wallet v4r2 address of an Ed25519 key (subwallet 698983191), raw form `0:<hex>`:
/// the representation hash of StateInit{code, data = seqno 0 ‖ wallet id ‖ key ‖ no
/// plugins} (docs.ton.org, "Cells": d1 = refs, d2 = ⌈bits/8⌉ + ⌊bits/8⌋, data padded
/// with a 1 bit, then each child's depth and hash).
fn ton_wallet_address(public_key: &[u8]) -> Result<String> {
    use sha2::{Digest, Sha256};
    let key: [u8; 32] = public_key
        .try_into()
        .map_err(|_| signer_err("a TON wallet key is 32 bytes".to_string()))?;
    // data: 321 bits (32 + 32 + 256 + 1), padded: the 1 bit then zeros
    let mut data = Sha256::new();
    data.update([0u8, 81]);
    data.update(0u32.to_be_bytes());
    data.update(TON_V4R2_WALLET_ID.to_be_bytes());
    data.update(key);
    data.update([0x40]);
    let data_hash = data.finalize();
    let code_hash = hex::decode(TON_V4R2_CODE_HASH).map_err(|e| signer_err(e.to_string()))?;
    // state init: 00110 (no split depth, no special, code, data, no library) + padding
    let mut init = Sha256::new();
    init.update([2u8, 1, 0x34]);
    init.update(TON_V4R2_CODE_DEPTH.to_be_bytes());
    init.update(0u16.to_be_bytes());
    init.update(code_hash);
    init.update(data_hash);
    Ok(format!("0:{}", hex::encode(init.finalize())))
}

/// Algorand's address of an Ed25519 key: base32 (no padding) of the key ‖ the last 4 bytes
/// of its SHA-512/256 (developer.algorand.org, "Keys and addresses").
fn algorand_address(public_key: &[u8]) -> String {
    use sha2::{Digest, Sha512_256};
    let sum = Sha512_256::digest(public_key);
    let mut b = public_key.to_vec();
    b.extend_from_slice(&sum[28..]);
    data_encoding::BASE32_NOPAD.encode(&b)
}

/// Aptos's single-key Ed25519 account address: `0x` + hex of SHA3-256(key ‖ 0x00), the
/// scheme byte of Ed25519 (aptos.dev, "Accounts": authentication key derivation).
fn aptos_address(public_key: &[u8]) -> String {
    use sha3::{Digest, Sha3_256};
    let mut h = Sha3_256::new();
    h.update(public_key);
    h.update([0u8]);
    format!("0x{}", hex::encode(h.finalize()))
}

/// EIP-55 checksummed address of a secp256k1 key.
fn evm_address(vk: &VerifyingKey) -> String {
    use sha3::{Digest, Keccak256};
    let point = vk.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let lower = hex::encode(&hash[12..]);
    let check = Keccak256::digest(lower.as_bytes());
    let body: String = lower
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let nibble = (check[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    format!("0x{body}")
}

/// TRON's base58check address (`T…`) of a secp256k1 key.
fn tron_address(vk: &VerifyingKey) -> String {
    use sha2::{Digest as _, Sha256};
    use sha3::Keccak256;
    let point = vk.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let mut body = vec![0x41];
    body.extend_from_slice(&hash[12..]);
    let check = Sha256::digest(Sha256::digest(&body));
    body.extend_from_slice(&check[..4]);
    bs58::encode(body).into_string()
}

/// bech32 account address of a compressed secp256k1 key under `prefix`.
fn cosmos_address(compressed: &[u8], prefix: &str) -> Result<String> {
    use ripemd::Ripemd160;
    use sha2::{Digest, Sha256};
    let id = Ripemd160::digest(Sha256::digest(compressed));
    let hrp = bech32::Hrp::parse(prefix).map_err(|e| signer_err(format!("account prefix {prefix:?}: {e}")))?;
    bech32::encode::<bech32::Bech32>(hrp, &id).map_err(|e| signer_err(format!("bech32: {e}")))
}

/// The single key pair labelled `label` of `class`.
fn find_one(s: &Session, class: ObjectClass, label: &str) -> Result<ObjectHandle> {
    let found = s
        .find_objects(&[Attribute::Class(class), Attribute::Label(label.into())])
        .map_err(|e| signer_err(format!("searching for {label:?}: {e}")))?;
    match found.as_slice() {
        [h] => Ok(*h),
        [] => Err(signer_err(format!("no {class} labelled {label:?} in the token"))),
        _ => Err(signer_err(format!(
            "{} objects of class {class} labelled {label:?}: labels must be unique",
            found.len()
        ))),
    }
}

/// The curve and public key of the public-key object `h`.
fn read_public(s: &Session, h: ObjectHandle, label: &str) -> Result<HsmKeyInfo> {
    let attrs = s
        .get_attributes(
            h,
            &[AttributeType::KeyType, AttributeType::EcParams, AttributeType::EcPoint],
        )
        .map_err(|e| signer_err(format!("reading the public key {label:?}: {e}")))?;
    let (mut kind, mut params, mut point) = (None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(k) => kind = Some(k),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    let point = unwrap_octet_string(&point.ok_or_else(|| signer_err(format!("{label:?} has no EC point")))?);
    let params = params.unwrap_or_default();
    let (algorithm, public_key) =
        if kind == Some(KeyType::EC_EDWARDS) || params == ED25519_OID_PARAMS || params == ED25519_NAME_PARAMS {
            if point.len() != 32 {
                return Err(signer_err(format!(
                    "{label:?}: an Ed25519 point of {} bytes",
                    point.len()
                )));
            }
            (KeyAlgorithm::Ed25519, point)
        } else if kind == Some(KeyType::EC) && params == SECP256K1_PARAMS {
            let vk = VerifyingKey::from_sec1_bytes(&point)
                .map_err(|_| signer_err(format!("{label:?}: the EC point is not on secp256k1")))?;
            (KeyAlgorithm::Secp256k1, vk.to_encoded_point(true).as_bytes().to_vec())
        } else {
            return Err(signer_err(format!(
                "{label:?} is neither a secp256k1 nor an Ed25519 key"
            )));
        };
    Ok(HsmKeyInfo {
        label: label.to_string(),
        algorithm,
        public_key,
    })
}

/// `CKA_EC_POINT` is a DER OCTET STRING around the point (PKCS#11 §2.3.3); some modules
/// give the bare point.
fn unwrap_octet_string(p: &[u8]) -> Vec<u8> {
    match p {
        [0x04, len, rest @ ..] if usize::from(*len) == rest.len() && *len < 0x80 => rest.to_vec(),
        [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest.to_vec(),
        _ => p.to_vec(),
    }
}

/// A secp256k1 [`HsmKey`] behind the RustCrypto signer traits the chain crates take:
/// `PrehashSigner<(Signature, RecoveryId)>` (alloy's `LocalSigner` credential) and
/// `Signer<Signature>` + `Keypair` (cosmrs's `EcdsaSigner`, which signs SHA-256 of the
/// sign doc).
#[derive(Clone, Debug)]
pub struct HsmSecp256k1 {
    key: HsmKey,
    verifying: VerifyingKey,
}

impl HsmSecp256k1 {
    /// The key in the token.
    pub fn key(&self) -> &HsmKey {
        &self.key
    }
}

impl k256::ecdsa::signature::hazmat::PrehashSigner<(EcdsaSignature, RecoveryId)> for HsmSecp256k1 {
    fn sign_prehash(&self, prehash: &[u8]) -> std::result::Result<(EcdsaSignature, RecoveryId), k256::ecdsa::Error> {
        let digest: &[u8; 32] = prehash.try_into().map_err(|_| k256::ecdsa::Error::new())?;
        self.key
            .sign_secp256k1_prehash(digest)
            .map_err(k256::ecdsa::Error::from_source)
    }
}

impl k256::ecdsa::signature::Signer<EcdsaSignature> for HsmSecp256k1 {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<EcdsaSignature, k256::ecdsa::Error> {
        use sha2::{Digest, Sha256};
        let digest: [u8; 32] = Sha256::digest(msg).into();
        self.key
            .sign_secp256k1_prehash(&digest)
            .map(|(sig, _)| sig)
            .map_err(k256::ecdsa::Error::from_source)
    }
}

impl k256::ecdsa::signature::Keypair for HsmSecp256k1 {
    type VerifyingKey = VerifyingKey;

    fn verifying_key(&self) -> VerifyingKey {
        self.verifying
    }
}

/// The SoftHSM2 module Debian's `softhsm2` package installs.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A fresh SoftHSM2 token for tests and devnet runs: writes a SoftHSM2 configuration
/// with its own token folder under `dir`, points this process's `SOFTHSM2_CONF` at it
/// (before the module is first loaded: one configuration per process), and initializes a
/// token labelled `label` with the user PIN `pin`, which it puts in `pin_env`. Returns the
/// settings to open keys with, and the configuration's path (for child processes).
///
/// # Errors
/// [`AdapterError::Signer`] when `softhsm2-util` (Debian `softhsm2`) is missing or fails.
pub fn softhsm_token(dir: &Path, label: &str, pin: &str, pin_env: &str) -> Result<(Pkcs11Settings, PathBuf)> {
    let tokens = dir.join("softhsm-tokens");
    std::fs::create_dir_all(&tokens).map_err(|e| signer_err(format!("creating {}: {e}", tokens.display())))?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .map_err(|e| signer_err(format!("writing {}: {e}", conf.display())))?;
    std::env::set_var("SOFTHSM2_CONF", &conf);
    std::env::set_var(pin_env, pin);
    let out = std::process::Command::new("softhsm2-util")
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--so-pin",
            pin,
            "--pin",
            pin,
        ])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .map_err(|e| signer_err(format!("running softhsm2-util (install Debian's softhsm2): {e}")))?;
    if !out.status.success() {
        return Err(signer_err(format!(
            "softhsm2-util --init-token: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let settings = Pkcs11Settings {
        module: PathBuf::from(SOFTHSM2_MODULE),
        pin_env: pin_env.to_string(),
    };
    Ok((settings, conf))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-computed wallet v4r2 address is the one `ton-contracts` derives (the
    /// adapter's), for a few keys.
    #[cfg(feature = "ton")]
    #[test]
    fn success_ton_wallet_address_matches_ton_contracts() {
        for k in [[1u8; 32], [42u8; 32], [0xfe; 32]] {
            let want = crate::ton::wire::wallet_address(crate::ton::wire::DEFAULT_WALLET_ID, k).unwrap();
            assert_eq!(ton_wallet_address(&k).unwrap(), crate::ton::wire::raw(&want));
        }
        assert!(ton_wallet_address(&[1u8; 31]).is_err());
    }

    /// CIP-19's test vectors: the payment key `addr_vk1w0l2sr2zgfm26ztc6nl9xy8ghsk5sh6ldwemlpmp9xylzy4dtf7st80zhd`
    /// gives the type-6 (enterprise) addresses below.
    #[test]
    fn success_cardano_enterprise_address_matches_cip19() {
        let pk = hex::decode("73fea80d424276ad0978d4fe5310e8bc2d485f5f6bb3bf87612989f112ad5a7d").unwrap();
        assert_eq!(
            cardano_enterprise_address(&pk, 1).unwrap(),
            "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8"
        );
        assert_eq!(
            cardano_enterprise_address(&pk, 0).unwrap(),
            "addr_test1vz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzerspjrlsz"
        );
        assert!(cardano_enterprise_address(&pk[..31], 1).is_err());
        assert_eq!(cardano_stake_key_label("ada-1", 2), "ada-1-stake-2");
    }

    #[test]
    fn success_uri_parses_token_and_object() {
        let u = Pkcs11Uri::parse("pkcs11:token=treasury;object=bnb%2D1;type=private").unwrap();
        assert_eq!(u.token, "treasury");
        assert_eq!(u.object, "bnb-1");
        assert_eq!(u.to_string(), "pkcs11:token=treasury;object=bnb-1");
        // values needing escapes print escaped and parse back to the same key
        for object in ["a;token=b", "%41", "sol 1/é"] {
            let u = Pkcs11Uri {
                token: "t".into(),
                object: object.into(),
            };
            assert_eq!(Pkcs11Uri::parse(&u.to_string()).unwrap(), u, "{u}");
        }
    }

    #[test]
    fn fail_uri_refuses_what_it_does_not_use() {
        for (bad, why) in [
            ("file:/k", "not a pkcs11"),
            ("pkcs11:token=t", "both required"),
            ("pkcs11:token=t;object=o;token=u", "given twice"),
            ("pkcs11:token=t;object=o;id=%01", "not supported"),
            ("pkcs11:token=t;object=%zz", "percent"),
            ("pkcs11:token=t;object", "attribute=value"),
        ] {
            let e = Pkcs11Uri::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn success_ec_point_octet_string_is_unwrapped() {
        assert_eq!(unwrap_octet_string(&[4, 2, 9, 9]), vec![9, 9]);
        assert_eq!(unwrap_octet_string(&[9, 9]), vec![9, 9]);
        let long: Vec<u8> = [vec![4, 0x81, 0x81], vec![1; 0x81]].concat();
        assert_eq!(unwrap_octet_string(&long).len(), 0x81);
    }

    #[test]
    fn success_addresses_match_known_vectors() {
        // secret key 1: the generator point; its Ethereum address is well known
        let one = k256::ecdsa::SigningKey::from_slice(&[[0u8; 31].as_slice(), &[1]].concat()).unwrap();
        assert_eq!(
            evm_address(one.verifying_key()),
            "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
        );
        let compressed = one.verifying_key().to_encoded_point(true);
        let a = cosmos_address(compressed.as_bytes(), "cosmos").unwrap();
        assert!(a.starts_with("cosmos1") && a.len() == 45, "{a}");
        assert!(cosmos_address(compressed.as_bytes(), "Not A Prefix").is_err());
        // TRON's documented example: private key 1 is TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC
        assert_eq!(tron_address(one.verifying_key()), "TMVQGm1qAQYVdetCeGRRkTWYYrLXuHK2HC");
        // the all-zero Ed25519 key, as the chains' own SDKs derive it (sui-sdk-types with the
        // flag 0x00 first, iota-sdk-types without a flag)
        assert_eq!(
            sui_address(&[0; 32]),
            "0xd8908c165dee785924e7421a0fd0418a19d5daeec395fd505a92a0fd3117e428"
        );
        assert_eq!(
            iota_address(&[0; 32]),
            "0x89eb0d6a8a691dae2cd15ed0369931ce0a949ecafa5c3f93f8121833646e15c3"
        );
    }

    #[test]
    fn success_chains_map_to_their_curve() {
        assert_eq!(KeyAlgorithm::for_chain("bsc").unwrap(), KeyAlgorithm::Secp256k1);
        assert_eq!(KeyAlgorithm::for_chain("solana").unwrap(), KeyAlgorithm::Ed25519);
        assert!(KeyAlgorithm::for_chain("bitcoin").is_err());
    }
}

//! The PKCS#11 signer on a real SoftHSM2 token (Debian `softhsm2`, installed by
//! `scripts/setup.sh`): a fresh token per test (nextest runs each test in its own process,
//! and SoftHSM2 reads its configuration once per process).
#![cfg(feature = "pkcs11")]

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use k256::ecdsa::signature::{Keypair, Verifier};
use k256::ecdsa::VerifyingKey;

use softstake_adapters::pkcs11::{softhsm_token, HsmKey, KeyAlgorithm, Pkcs11Settings, Pkcs11Uri};
use softstake_adapters::AdapterError;

const PIN: &str = "treasury-pin-1234";
const PIN_ENV: &str = "SOFTSTAKE_TEST_PKCS11_PIN";

fn token(dir: &tempfile::TempDir) -> Pkcs11Settings {
    softhsm_token(dir.path(), "treasury", PIN, PIN_ENV)
        .expect("a fresh SoftHSM2 token")
        .0
}

#[test]
fn success_secp256k1_signatures_are_low_s_recoverable_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let s = token(&dir);
    let key = HsmKey::generate(&s, "treasury", "bnb-1", KeyAlgorithm::Secp256k1).unwrap();
    assert_eq!(key.public_key().len(), 33, "SEC1 compressed");
    let vk = *key.verifying_key().unwrap();
    // enough signatures that a high S from the token would show up (half of them, unnormalized)
    for i in 0u8..24 {
        let digest = [i; 32];
        let (sig, recid) = key.sign_secp256k1_prehash(&digest).unwrap();
        vk.verify_prehash(&digest, &sig).unwrap();
        assert!(sig.normalize_s().is_none(), "S must be low (EIP-2, BIP-62)");
        let recovered = VerifyingKey::recover_from_prehash(&digest, &sig, recid).unwrap();
        assert_eq!(recovered, vk, "the recovery id gives back the token's key");
    }
    // the cosmrs-style signer hashes the message with SHA-256
    let signer = key.secp256k1().unwrap();
    let sig: k256::ecdsa::Signature = k256::ecdsa::signature::Signer::sign(&signer, b"sign doc");
    signer.verifying_key().verify(b"sign doc", &sig).unwrap();
    // an Ed25519 call on a secp256k1 key is refused, not attempted
    assert!(matches!(key.sign_ed25519(b"x"), Err(AdapterError::Signer(_))));
}

#[test]
fn success_ed25519_signatures_verify_and_reopen_by_uri() {
    let dir = tempfile::tempdir().unwrap();
    let s = token(&dir);
    let key = HsmKey::generate(&s, "treasury", "sol-1", KeyAlgorithm::Ed25519).unwrap();
    let sig = key.sign_ed25519(b"solana message").unwrap();
    let vk = ed25519_dalek::VerifyingKey::from_bytes(key.public_key().try_into().unwrap()).unwrap();
    vk.verify_strict(b"solana message", &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();
    let again = HsmKey::open(&s, &Pkcs11Uri::parse("pkcs11:token=treasury;object=sol-1").unwrap()).unwrap();
    assert_eq!(again.public_key(), key.public_key());
    assert_eq!(again.algorithm(), KeyAlgorithm::Ed25519);
    assert_eq!(
        again.address("solana", "cosmos").unwrap(),
        bs58::encode(key.public_key()).into_string()
    );
    assert!(again.address("bsc", "cosmos").is_err(), "wrong curve for an EVM chain");
    assert_eq!(
        again.address("near", "cosmos").unwrap(),
        hex::encode(key.public_key()),
        "NEAR's implicit account is the hex of the public key"
    );
    assert_eq!(
        again.info().near_public_key(),
        format!("ed25519:{}", bs58::encode(key.public_key()).into_string())
    );
    assert!(
        again.address("cardano", "cosmos").unwrap().starts_with("addr1v"),
        "an enterprise address"
    );
}

#[test]
fn success_list_shows_every_key_and_labels_stay_unique() {
    let dir = tempfile::tempdir().unwrap();
    let s = token(&dir);
    HsmKey::generate(&s, "treasury", "atom-1", KeyAlgorithm::Secp256k1).unwrap();
    HsmKey::generate(&s, "treasury", "sol-1", KeyAlgorithm::Ed25519).unwrap();
    let e = HsmKey::generate(&s, "treasury", "atom-1", KeyAlgorithm::Secp256k1).unwrap_err();
    assert!(e.to_string().contains("already has a key labelled"), "{e}");
    let listed = HsmKey::list(&s, "treasury").unwrap();
    let labels: Vec<(&str, KeyAlgorithm)> = listed.iter().map(|k| (k.label.as_str(), k.algorithm)).collect();
    assert_eq!(
        labels,
        vec![("atom-1", KeyAlgorithm::Secp256k1), ("sol-1", KeyAlgorithm::Ed25519)]
    );
}

#[test]
fn fail_wrong_pin_unknown_token_and_unknown_key_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = token(&dir);
    let missing = HsmKey::open(&s, &Pkcs11Uri::parse("pkcs11:token=treasury;object=nope").unwrap()).unwrap_err();
    assert!(
        missing.to_string().contains("no private key labelled \"nope\"") || missing.to_string().contains("\"nope\""),
        "{missing}"
    );
    let e = HsmKey::list(&s, "no-such-token").unwrap_err();
    assert!(e.to_string().contains("no token labelled"), "{e}");
    let unset = Pkcs11Settings {
        pin_env: "SOFTSTAKE_TEST_PIN_UNSET".into(),
        ..s.clone()
    };
    let e = HsmKey::list(&unset, "treasury").unwrap_err();
    assert!(e.to_string().contains("SOFTSTAKE_TEST_PIN_UNSET is not set"), "{e}");
    std::env::set_var("SOFTSTAKE_TEST_PIN_WRONG", "0000-wrong");
    let wrong = Pkcs11Settings {
        pin_env: "SOFTSTAKE_TEST_PIN_WRONG".into(),
        ..s
    };
    let e = HsmKey::list(&wrong, "treasury").unwrap_err();
    assert!(e.to_string().contains("PIN"), "{e}");
    assert!(
        !e.to_string().contains("0000-wrong"),
        "the PIN never appears in errors: {e}"
    );
}

//! The local Cardano chain's own reading of what an adapter sends, written apart from the
//! adapter's `cardano::wire` module so that an encoding bug there cannot pass on both
//! sides, and checked against published test vectors:
//!
//! ```text
//!  CBOR ─▶ pallas-primitives' Conway decoder ─▶ body bytes as sent ─▶ Blake2b-256 = tx id
//!  witness (vkey, signature) ─▶ ed25519-dalek verify_strict over the tx id
//!  vkey ─▶ Blake2b-224 = key hash ─▶ addresses (pallas-addresses, CIP-19)
//!  pool id ─▶ bech32 "pool" (CIP-5) or 56 hex digits ─▶ 28-byte hash
//! ```
//!
//! Vectors: CIP-19's verification keys, key hashes and addresses; RFC 8032's Ed25519
//! test 1; the (bech32, hex) pool ids of the bundled Blockfrost fixture.

use pallas_addresses::{
    Network, ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart, StakeAddress, StakePayload,
};
use pallas_codec::minicbor;
use pallas_crypto::hash::{Hash, Hasher};
use pallas_primitives::conway::Tx;

/// Decodes a Conway transaction (body with its CBOR as sent, witnesses).
///
/// # Errors
/// The decoder's message.
pub fn decode(cbor: &[u8]) -> Result<Tx<'_>, String> {
    minicbor::decode::<Tx<'_>>(cbor).map_err(|e| e.to_string())
}

/// A transaction id: Blake2b-256 of the body's CBOR exactly as sent.
pub fn tx_id(body_cbor: &[u8]) -> Hash<32> {
    Hasher::<256>::hash(body_cbor)
}

/// A key hash (payment or stake credential): Blake2b-224 of the 32-byte verification key.
pub fn key_hash(vkey: &[u8; 32]) -> Hash<28> {
    Hasher::<224>::hash(vkey)
}

/// Whether `signature` (64 bytes) is `vkey`'s (32 bytes) Ed25519 signature of `message`,
/// with ed25519-dalek's strict checks (no small-order keys, canonical `s`).
pub fn verify(vkey: &[u8], signature: &[u8], message: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (<[u8; 32]>::try_from(vkey), <[u8; 64]>::try_from(signature)) else {
        return false;
    };
    let Ok(key) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

/// The verification key of a 32-byte Ed25519 seed.
pub fn vkey_of_seed(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

/// The network of a network id (0 testnets, 1 mainnet).
pub fn network(id: u8) -> Network {
    Network::from(id)
}

/// An enterprise address (payment key only, CIP-19 type 6).
pub fn enterprise_address(net: Network, payment: Hash<28>) -> ShelleyAddress {
    ShelleyAddress::new(net, ShelleyPaymentPart::Key(payment), ShelleyDelegationPart::Null)
}

/// A base address (payment key and stake key, CIP-19 type 0).
pub fn base_address(net: Network, payment: Hash<28>, stake: Hash<28>) -> ShelleyAddress {
    ShelleyAddress::new(net, ShelleyPaymentPart::Key(payment), ShelleyDelegationPart::Key(stake))
}

/// The reward (stake) address of a stake key (CIP-19 type 14), bech32.
pub fn stake_address(net: Network, stake: Hash<28>) -> Option<String> {
    StakeAddress::new(net, StakePayload::Stake(stake)).to_bech32().ok()
}

/// The 28-byte hash of a pool id: bech32 with the `pool` prefix (CIP-5) or 56 hex digits.
///
/// # Errors
/// A message naming the id for anything else.
pub fn pool_hash(id: &str) -> Result<Hash<28>, String> {
    let bytes = if id.starts_with("pool1") {
        let (hrp, data) = bech32::decode(id).map_err(|e| format!("pool id {id:?}: {e}"))?;
        if hrp.as_str() != "pool" {
            return Err(format!("pool id {id:?}: prefix {hrp}"));
        }
        data
    } else {
        hex::decode(id).map_err(|_| format!("pool id {id:?} is neither pool1… nor hex"))?
    };
    let arr: [u8; 28] = bytes
        .try_into()
        .map_err(|_| format!("pool id {id:?} is not 28 bytes"))?;
    Ok(Hash::from(arr))
}

/// The bech32 pool id (`pool1…`) of a pool's hash.
pub fn pool_id(hash: &Hash<28>) -> String {
    let hrp = bech32::Hrp::parse_unchecked("pool");
    bech32::encode::<bech32::Bech32>(hrp, hash.as_ref()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bech32_bytes(text: &str, prefix: &str) -> Vec<u8> {
        let (hrp, data) = bech32::decode(text).unwrap();
        assert_eq!(hrp.as_str(), prefix);
        data
    }

    /// CIP-19's test vectors: the verification keys' hashes and the base and reward
    /// addresses built from them, on mainnet and on the testnets.
    #[test]
    fn success_cip19_vectors() {
        let pay: [u8; 32] = bech32_bytes(
            "addr_vk1w0l2sr2zgfm26ztc6nl9xy8ghsk5sh6ldwemlpmp9xylzy4dtf7st80zhd",
            "addr_vk",
        )
        .try_into()
        .unwrap();
        let stake: [u8; 32] = bech32_bytes(
            "stake_vk1px4j0r2fk7ux5p23shz8f3y5y2qam7s954rgf3lg5merqcj6aetsft99wu",
            "stake_vk",
        )
        .try_into()
        .unwrap();
        let (p, s) = (key_hash(&pay), key_hash(&stake));
        assert_eq!(
            hex::encode(p),
            "9493315cd92eb5d8c4304e67b7e16ae36d61d34502694657811a2c8e"
        );
        assert_eq!(
            hex::encode(s),
            "337b62cfff6403a06a3acbc34f8c46003c69fe79a3628cefa9c47251"
        );
        assert_eq!(
            base_address(network(1), p, s).to_bech32().unwrap(),
            "addr1qx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2wywfgse35a3x"
        );
        assert_eq!(
            base_address(network(0), p, s).to_bech32().unwrap(),
            "addr_test1qz2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzer3n0d3vllmyqwsx5wktcd8cc3sq835lu7drv2xwl2wywfgs68faae"
        );
        assert_eq!(
            enterprise_address(network(1), p).to_bech32().unwrap(),
            "addr1vx2fxv2umyhttkxyxp8x0dlpdt3k6cwng5pxj3jhsydzers66hrl8"
        );
        assert_eq!(
            stake_address(network(1), s).unwrap(),
            "stake1uyehkck0lajq8gr28t9uxnuvgcqrc6070x3k9r8048z8y5gh6ffgw"
        );
        assert_eq!(
            stake_address(network(0), s).unwrap(),
            "stake_test1uqehkck0lajq8gr28t9uxnuvgcqrc6070x3k9r8048z8y5gssrtvn"
        );
    }

    /// RFC 8032 §7.1, test 1 (empty message); one flipped bit of the signature or the
    /// message fails.
    #[test]
    fn success_rfc8032_vector_and_fail_on_a_flipped_bit() {
        let seed: [u8; 32] = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
        let pk = vkey_of_seed(&seed);
        assert_eq!(
            hex::encode(pk),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let mut sig = hex::decode(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        )
        .unwrap();
        assert!(verify(&pk, &sig, b""));
        assert!(!verify(&pk, &sig, b"x"), "another message");
        sig[10] ^= 1;
        assert!(!verify(&pk, &sig, b""), "a flipped bit");
        assert!(!verify(&pk[..31], &sig, b""), "a short key");
    }

    /// Every object with a `pool_id` and a `hex` in `v`.
    fn pool_pairs(v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                if let (Some(id), Some(h)) = (
                    m.get("pool_id").and_then(|x| x.as_str()),
                    m.get("hex").and_then(|x| x.as_str()),
                ) {
                    out.push((id.to_string(), h.to_string()));
                }
                m.values().for_each(|x| pool_pairs(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| pool_pairs(x, out)),
            _ => {}
        }
    }

    /// Every (bech32, hex) pool id pair of the bundled Blockfrost fixture, both ways.
    #[test]
    fn success_pool_ids_of_the_blockfrost_fixture() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../../data/cardano/pools/pool-id.json")).unwrap();
        let mut pairs = Vec::new();
        pool_pairs(&fixture, &mut pairs);
        let mut checked = 0;
        for (id, hex_id) in &pairs {
            let (id, hex_id) = (id.as_str(), hex_id.as_str());
            let h = pool_hash(id).unwrap();
            assert_eq!(hex::encode(h), hex_id, "{id}");
            assert_eq!(pool_id(&h), id);
            assert_eq!(pool_hash(hex_id).unwrap(), h);
            checked += 1;
        }
        assert!(checked >= 2, "{checked} pairs");
        assert!(pool_hash("stake1uyehkck0lajq8gr28t9uxnuvgcqrc6070x3k9r8048z8y5gh6ffgw").is_err());
        assert!(pool_hash("0f29").is_err(), "short");
    }
}

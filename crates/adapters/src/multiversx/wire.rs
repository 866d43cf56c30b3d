//! MultiversX's wire formats as the adapter writes them: `erd1…` addresses (bech32 of the
//! 32-byte Ed25519 public key), the transaction's JSON signing form, its hash, the
//! delegation contract's data strings and the VM query's big-endian integers.
//!
//! ```text
//!  FrontendTransaction (mx-chain-core-go data/transaction/frontendTransaction.go)
//!   {"nonce","value","receiver","sender","gasPrice","gasLimit","data"(base64, omitted when
//!    empty),"chainID","version","options"(omitted when 0)}
//!   signature = Ed25519(JSON bytes)   (options & 1: Ed25519(keccak256(JSON)); not used)
//!  hash = blake2b-256(protobuf Transaction incl. signature)  (transaction.proto; the
//!         value is the BigIntCaster's sign byte ‖ big-endian magnitude, zero as 00 00)
//! ```
//!
//! Addresses and amounts are checked here; the gateway's JSON is parsed in the module.

use base64::Engine as _;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use prost::Message;
use serde::{Deserialize, Serialize};

/// The human-readable part of MultiversX addresses.
pub const HRP: &str = "erd";
/// The transaction version the adapter signs (2: options and guardians allowed).
pub const TX_VERSION: u32 = 2;

/// A 32-byte account or contract address.
pub type Address = [u8; 32];

/// The `erd1…` form of `a`.
pub fn to_bech32(a: &Address) -> String {
    bech32::encode::<bech32::Bech32>(bech32::Hrp::parse_unchecked(HRP), a).unwrap_or_default()
}

/// The 32 bytes of an `erd1…` address.
///
/// # Errors
/// A message naming the text for another prefix, a bad checksum or another length.
pub fn parse_address(s: &str) -> Result<Address, String> {
    let (hrp, bytes) = bech32::decode(s.trim()).map_err(|e| format!("{s:?} is not a bech32 address: {e}"))?;
    if hrp.as_str() != HRP {
        return Err(format!("{s:?} has prefix {:?}, not {HRP:?}", hrp.as_str()));
    }
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("{s:?} holds {} bytes, not 32", b.len()))
}

/// Whether `a` is a smart contract (its first 8 bytes are zero: mx-chain-core-go
/// `core.IsSmartContractAddress`).
pub fn is_contract(a: &Address) -> bool {
    a[..8].iter().all(|b| *b == 0)
}

/// A transaction as the gateway takes it (`POST /transaction/send`) and as it is signed
/// (the same JSON without `signature`). Field order and omissions follow
/// `FrontendTransaction`; Go's encoding/json writes fields in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FrontendTransaction {
    /// The sender's account nonce.
    pub nonce: u64,
    /// The value sent, base units (10^-18 EGLD) as a decimal string.
    pub value: String,
    /// `erd1…` receiver.
    pub receiver: String,
    /// `erd1…` sender.
    pub sender: String,
    /// Gas price, base units per gas unit.
    pub gas_price: u64,
    /// Gas limit.
    pub gas_limit: u64,
    /// The data field, base64 (omitted when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Hex Ed25519 signature (omitted while signing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The chain id (`1` mainnet, `D` devnet, `T` testnet).
    #[serde(rename = "chainID")]
    pub chain_id: String,
    /// Transaction version.
    pub version: u32,
    /// Options bits (omitted when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub options: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// `transaction.proto`'s `Transaction`, for the hash (fields the adapter never sets are
/// left out: usernames, guardian, relayer).
#[derive(Clone, PartialEq, Message)]
struct ProtoTransaction {
    #[prost(uint64, tag = "1")]
    nonce: u64,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    rcv_addr: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    snd_addr: Vec<u8>,
    #[prost(uint64, tag = "7")]
    gas_price: u64,
    #[prost(uint64, tag = "8")]
    gas_limit: u64,
    #[prost(bytes = "vec", tag = "9")]
    data: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    chain_id: Vec<u8>,
    #[prost(uint32, tag = "11")]
    version: u32,
    #[prost(bytes = "vec", tag = "12")]
    signature: Vec<u8>,
    #[prost(uint32, tag = "13")]
    options: u32,
}

/// Big-endian magnitude without leading zeros (Go's `big.Int.Bytes()`; zero is empty).
pub fn be_bytes(v: u128) -> Vec<u8> {
    let b = v.to_be_bytes();
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b[first..].to_vec()
}

/// An unsigned big-endian integer (a VM query's return value, an argument).
///
/// # Errors
/// A message when it does not fit 128 bits.
pub fn from_be_bytes(b: &[u8]) -> Result<u128, String> {
    let first = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    let b = &b[first..];
    if b.len() > 16 {
        return Err(format!("{} bytes do not fit 128 bits", b.len()));
    }
    let mut buf = [0u8; 16];
    buf[16 - b.len()..].copy_from_slice(b);
    Ok(u128::from_be_bytes(buf))
}

impl FrontendTransaction {
    /// The bytes the sender signs: this JSON without its signature.
    ///
    /// # Errors
    /// A message when serialization fails (it cannot for these fields).
    pub fn signing_bytes(&self) -> Result<Vec<u8>, String> {
        let unsigned = FrontendTransaction {
            signature: None,
            ..self.clone()
        };
        serde_json::to_vec(&unsigned).map_err(|e| e.to_string())
    }

    /// The transaction's hash as the chain names it (hex): blake2b-256 of its protobuf
    /// encoding, signature included.
    ///
    /// # Errors
    /// A message for a malformed address, value, data or signature.
    pub fn hash(&self) -> Result<String, String> {
        let value: u128 = self
            .value
            .parse()
            .map_err(|_| format!("value {:?} is not an amount", self.value))?;
        let mut v = vec![0u8];
        v.extend(be_bytes(value));
        if v.len() == 1 {
            v.push(0);
        }
        let data = match &self.data {
            Some(d) => base64::engine::general_purpose::STANDARD
                .decode(d)
                .map_err(|e| format!("data is not base64: {e}"))?,
            None => vec![],
        };
        let signature = match &self.signature {
            Some(s) => hex::decode(s).map_err(|e| format!("signature is not hex: {e}"))?,
            None => vec![],
        };
        let p = ProtoTransaction {
            nonce: self.nonce,
            value: v,
            rcv_addr: parse_address(&self.receiver)?.to_vec(),
            snd_addr: parse_address(&self.sender)?.to_vec(),
            gas_price: self.gas_price,
            gas_limit: self.gas_limit,
            data,
            chain_id: self.chain_id.as_bytes().to_vec(),
            version: self.version,
            signature,
            options: self.options,
        };
        Ok(hex::encode(Blake2b::<U32>::digest(p.encode_to_vec())))
    }
}

/// The data field of a call: `function@hexarg@hexarg…` (each argument big-endian hex of
/// even length, `00`-free on the left, as the SDKs write them).
pub fn call_data(function: &str, args: &[u128]) -> String {
    let mut s = function.to_string();
    for a in args {
        let b = be_bytes(*a);
        s.push('@');
        s.push_str(&hex::encode(if b.is_empty() { vec![0] } else { b }));
    }
    s
}

/// A VM query's `returnData` item (base64; `null` or empty for zero) as an integer.
///
/// # Errors
/// A message for text that is not base64 or a number beyond 128 bits.
pub fn decode_u128(item: Option<&str>) -> Result<u128, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(item.unwrap_or(""))
        .map_err(|e| format!("{item:?} is not base64: {e}"))?;
    from_be_bytes(&bytes)
}

/// A VM query's `returnData` item as bytes.
///
/// # Errors
/// A message for text that is not base64.
pub fn decode_bytes(item: Option<&str>) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(item.unwrap_or(""))
        .map_err(|e| format!("{item:?} is not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_address_round_trip_and_contract_test() {
        // the delegation manager, a system contract on the metachain
        let s = "erd1qqqqqqqqqqqqqqqpqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqylllslmq6y6";
        let a = parse_address(s).unwrap();
        assert_eq!(to_bech32(&a), s);
        assert!(is_contract(&a));
        assert!(!is_contract(&[1; 32]));
        assert!(parse_address("cosmos1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqnrql8a").is_err());
        assert!(parse_address("erd1qqqq").is_err());
    }

    #[test]
    fn success_signing_json_follows_frontend_transaction() {
        let t = FrontendTransaction {
            nonce: 7,
            value: "1000000000000000000".into(),
            receiver: to_bech32(&[0; 32]),
            sender: to_bech32(&[1; 32]),
            gas_price: 1_000_000_000,
            gas_limit: 12_000_000,
            data: Some(base64::engine::general_purpose::STANDARD.encode("delegate")),
            signature: Some("ab".into()),
            chain_id: "D".into(),
            version: 2,
            options: 0,
        };
        let s = String::from_utf8(t.signing_bytes().unwrap()).unwrap();
        assert_eq!(
            s,
            format!(
                "{{\"nonce\":7,\"value\":\"1000000000000000000\",\"receiver\":\"{}\",\"sender\":\"{}\",\
                 \"gasPrice\":1000000000,\"gasLimit\":12000000,\"data\":\"ZGVsZWdhdGU=\",\"chainID\":\"D\",\
                 \"version\":2}}",
                to_bech32(&[0; 32]),
                to_bech32(&[1; 32])
            )
        );
        assert_eq!(t.hash().unwrap().len(), 64);
        let other = FrontendTransaction { nonce: 8, ..t.clone() };
        assert_ne!(t.hash().unwrap(), other.hash().unwrap(), "the nonce is hashed");
    }

    /// mx-sdk-py `transaction_test.py` (`test_serialize_for_signing`,
    /// `test_compute_transaction_hash`): the published signing bytes and hash.
    #[test]
    fn success_matches_the_sdk_test_vectors() {
        let alice = "erd1qyu5wthldzr8wx5c9ucg8kjagg0jfs53s8nr3zpz3hypefsdd8ssycr6th";
        let bob = "erd1spyavw0956vq68xj8y4tenjpq2wd5a9p2c6j8gsz7ztyrnpxrruqzu66jx";
        let t = FrontendTransaction {
            nonce: 90,
            value: "1000000000000000000".into(),
            receiver: bob.into(),
            sender: alice.into(),
            gas_price: 1_000_000_000,
            gas_limit: 70_000,
            data: Some("aGVsbG8=".into()),
            signature: None,
            chain_id: "D".into(),
            version: 1,
            options: 0,
        };
        assert_eq!(
            String::from_utf8(t.signing_bytes().unwrap()).unwrap(),
            format!(
                "{{\"nonce\":90,\"value\":\"1000000000000000000\",\"receiver\":\"{bob}\",\"sender\":\"{alice}\",\
                 \"gasPrice\":1000000000,\"gasLimit\":70000,\"data\":\"aGVsbG8=\",\"chainID\":\"D\",\"version\":1}}"
            )
        );
        let h = FrontendTransaction {
            nonce: 17243,
            value: "1000000000000".into(),
            receiver: alice.into(),
            sender: alice.into(),
            gas_price: 1_000_000_000,
            gas_limit: 100_000,
            data: Some(base64::engine::general_purpose::STANDARD.encode("testtx")),
            signature: Some(
                "eaa9e4dfbd21695d9511e9754bde13e90c5cfb21748a339a79be11f744c71872e9fe8e73c6035c413f5f08eef09e5458e9ea6fc315ff4da0ab6d000b450b2a07"
                    .into(),
            ),
            chain_id: "D".into(),
            version: 2,
            options: 0,
        };
        assert_eq!(
            h.hash().unwrap(),
            "169b76b752b220a76a93aeebc462a1192db1dc2ec9d17e6b4d7b0dcc91792f03"
        );
    }

    #[test]
    fn success_call_data_and_integers() {
        assert_eq!(
            call_data("unDelegate", &[1_000_000_000_000_000_000]),
            "unDelegate@0de0b6b3a7640000"
        );
        assert_eq!(call_data("withdraw", &[]), "withdraw");
        assert_eq!(call_data("x", &[0]), "x@00");
        assert_eq!(decode_u128(Some("DeC2s6dkAAA=")).unwrap(), 1_000_000_000_000_000_000);
        assert_eq!(decode_u128(Some("")).unwrap(), 0);
        assert_eq!(decode_u128(None).unwrap(), 0);
        assert!(decode_u128(Some("!!")).is_err());
        assert!(from_be_bytes(&[1; 17]).is_err());
        assert_eq!(from_be_bytes(&[0, 0, 1]).unwrap(), 1);
    }
}

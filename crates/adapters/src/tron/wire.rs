//! TRON's wire formats: the protobuf messages of a Stake 2.0 transaction (java-tron
//! `protocol/src/main/protos/core/Tron.proto` and `contract/balance_contract.proto`,
//! `witness_contract.proto`), addresses (`0x41 ‖ keccak256(pubkey)[12..]`, base58check)
//! and secp256k1 signatures over `txID = sha256(raw_data)`.
//!
//! ```text
//!  Transaction { raw_data: raw (1), signature: [r ‖ s ‖ v] (2) }
//!  raw { ref_block_bytes (1), ref_block_hash (4), expiration ms (8),
//!        contract: [Contract { type (1), parameter: Any (2) }] (11), timestamp ms (14) }
//!  txID = sha256(bytes of raw_data exactly as signed)
//! ```
//!
//! `raw_data` is carried as bytes inside [`Transaction`] so the id is always the hash of
//! the bytes that were signed, never of a re-encoding. Shared by the adapter and the
//! local TRON chain; the encodings are pinned by known-answer tests against
//! transactions built by TronWeb and TronGrid.

use k256::ecdsa::signature::hazmat::PrehashSigner;
use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use prost::Message;
use sha2::{Digest, Sha256};
use sha3::Keccak256;

/// The first byte of every mainnet and testnet (Nile, Shasta) address.
pub const ADDRESS_PREFIX: u8 = 0x41;
/// `VoteWitnessContract`'s contract type.
pub const VOTE_WITNESS: i32 = 4;
/// `WithdrawBalanceContract`'s contract type (claims voting rewards).
pub const WITHDRAW_BALANCE: i32 = 13;
/// `FreezeBalanceV2Contract`'s contract type.
pub const FREEZE_BALANCE_V2: i32 = 54;
/// `UnfreezeBalanceV2Contract`'s contract type.
pub const UNFREEZE_BALANCE_V2: i32 = 55;
/// `WithdrawExpireUnfreezeContract`'s contract type.
pub const WITHDRAW_EXPIRE_UNFREEZE: i32 = 56;
/// `ResourceCode.BANDWIDTH` (the resource we freeze for: it also pays our own
/// transactions' bandwidth).
pub const BANDWIDTH: i32 = 0;
/// `ResourceCode.ENERGY`.
pub const ENERGY: i32 = 1;

/// A 21-byte TRON address (`0x41` ‖ 20 bytes).
pub type Address = [u8; 21];

/// A signed transaction.
#[derive(Clone, PartialEq, Message)]
pub struct Transaction {
    /// The encoded [`Raw`], exactly as signed.
    #[prost(bytes = "vec", tag = "1")]
    pub raw_data: Vec<u8>,
    /// 65-byte signatures `r ‖ s ‖ v` (v = recovery id + 27).
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub signature: Vec<Vec<u8>>,
}

/// `Transaction.raw`.
#[derive(Clone, PartialEq, Message)]
pub struct Raw {
    /// Bytes 6..8 of the reference block's number (TAPOS).
    #[prost(bytes = "vec", tag = "1")]
    pub ref_block_bytes: Vec<u8>,
    /// Bytes 8..16 of the reference block's id (TAPOS).
    #[prost(bytes = "vec", tag = "4")]
    pub ref_block_hash: Vec<u8>,
    /// After this chain time (Unix ms) the transaction can never land.
    #[prost(int64, tag = "8")]
    pub expiration: i64,
    /// Exactly one contract (java-tron refuses more).
    #[prost(message, repeated, tag = "11")]
    pub contract: Vec<Contract>,
    /// When it was built, Unix ms.
    #[prost(int64, tag = "14")]
    pub timestamp: i64,
}

/// `Transaction.Contract`.
#[derive(Clone, PartialEq, Message)]
pub struct Contract {
    /// `ContractType` ([`FREEZE_BALANCE_V2`], …).
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The contract's message.
    #[prost(message, optional, tag = "2")]
    pub parameter: Option<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, Message)]
pub struct Any {
    /// `type.googleapis.com/protocol.<Name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `FreezeBalanceV2Contract`: freeze `frozen_balance` sun for a resource; 1 TRX frozen
/// is 1 vote (TRON Power).
#[derive(Clone, PartialEq, Message)]
pub struct FreezeBalanceV2 {
    /// Owner.
    #[prost(bytes = "vec", tag = "1")]
    pub owner_address: Vec<u8>,
    /// Sun.
    #[prost(int64, tag = "2")]
    pub frozen_balance: i64,
    /// `ResourceCode`.
    #[prost(int32, tag = "3")]
    pub resource: i32,
}

/// `UnfreezeBalanceV2Contract`: start the unfreezing of `unfreeze_balance` sun.
#[derive(Clone, PartialEq, Message)]
pub struct UnfreezeBalanceV2 {
    /// Owner.
    #[prost(bytes = "vec", tag = "1")]
    pub owner_address: Vec<u8>,
    /// Sun.
    #[prost(int64, tag = "2")]
    pub unfreeze_balance: i64,
    /// `ResourceCode`.
    #[prost(int32, tag = "3")]
    pub resource: i32,
}

/// A contract with only an owner (`WithdrawExpireUnfreezeContract`,
/// `WithdrawBalanceContract`).
#[derive(Clone, PartialEq, Message)]
pub struct OwnerOnly {
    /// Owner.
    #[prost(bytes = "vec", tag = "1")]
    pub owner_address: Vec<u8>,
}

/// `VoteWitnessContract`: the account's complete vote list (it replaces every earlier
/// vote).
#[derive(Clone, PartialEq, Message)]
pub struct VoteWitness {
    /// Owner.
    #[prost(bytes = "vec", tag = "1")]
    pub owner_address: Vec<u8>,
    /// At most 30 votes.
    #[prost(message, repeated, tag = "2")]
    pub votes: Vec<Vote>,
    /// Unused by java-tron (always true in wallets).
    #[prost(bool, tag = "3")]
    pub support: bool,
}

/// One vote: whole TRX for one witness (super representative).
#[derive(Clone, PartialEq, Message)]
pub struct Vote {
    /// Witness.
    #[prost(bytes = "vec", tag = "1")]
    pub vote_address: Vec<u8>,
    /// Votes (whole TRX of TRON Power).
    #[prost(int64, tag = "2")]
    pub vote_count: i64,
}

/// The contract type's protobuf name (`FreezeBalanceV2Contract`, …), `None` for types
/// outside staking.
pub fn contract_name(contract_type: i32) -> Option<&'static str> {
    Some(match contract_type {
        VOTE_WITNESS => "VoteWitnessContract",
        WITHDRAW_BALANCE => "WithdrawBalanceContract",
        FREEZE_BALANCE_V2 => "FreezeBalanceV2Contract",
        UNFREEZE_BALANCE_V2 => "UnfreezeBalanceV2Contract",
        WITHDRAW_EXPIRE_UNFREEZE => "WithdrawExpireUnfreezeContract",
        _ => return None,
    })
}

/// A [`Contract`] of `contract_type` carrying `message` (`type_url` from
/// [`contract_name`]).
pub fn contract<M: Message>(contract_type: i32, message: &M) -> Contract {
    let name = contract_name(contract_type).unwrap_or("Unknown");
    Contract {
        r#type: contract_type,
        parameter: Some(Any {
            type_url: format!("type.googleapis.com/protocol.{name}"),
            value: message.encode_to_vec(),
        }),
    }
}

/// `sha256(raw_data)`: the transaction id.
pub fn tx_id(raw_data: &[u8]) -> [u8; 32] {
    Sha256::digest(raw_data).into()
}

/// The address of an uncompressed secp256k1 public key.
pub fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let mut out = [0u8; 21];
    out[0] = ADDRESS_PREFIX;
    out[1..].copy_from_slice(&hash[12..]);
    out
}

/// Base58check (`T…`) of an address.
pub fn to_base58(address: &Address) -> String {
    let check = Sha256::digest(Sha256::digest(address));
    let mut bytes = address.to_vec();
    bytes.extend_from_slice(&check[..4]);
    bs58::encode(bytes).into_string()
}

/// Parses a base58check (`T…`) or hex (`41…`) address.
///
/// # Errors
/// A message naming what is wrong: not base58 or hex, a bad checksum, a wrong length or
/// prefix.
pub fn parse_address(text: &str) -> Result<Address, String> {
    let raw = if text.len() == 42 && text.starts_with("41") {
        hex::decode(text).map_err(|e| format!("{text:?} is not a hex address: {e}"))?
    } else {
        let bytes = bs58::decode(text)
            .into_vec()
            .map_err(|e| format!("{text:?} is not a base58 address: {e}"))?;
        if bytes.len() != 25 {
            return Err(format!("{text:?} decodes to {} bytes, not 25", bytes.len()));
        }
        let (body, check) = bytes.split_at(21);
        if Sha256::digest(Sha256::digest(body))[..4] != *check {
            return Err(format!("{text:?} has a bad checksum"));
        }
        body.to_vec()
    };
    let out: Address = raw
        .as_slice()
        .try_into()
        .map_err(|_| format!("{text:?} is {} bytes, not 21", raw.len()))?;
    if out[0] != ADDRESS_PREFIX {
        return Err(format!("{text:?} does not start with 0x41"));
    }
    Ok(out)
}

/// Signs a transaction id: `r ‖ s ‖ v` with `v = recovery id + 27` (as TronWeb and
/// java-tron's `ECKey` write it).
///
/// # Errors
/// The signer's message when signing fails.
pub fn sign<K: PrehashSigner<(Signature, RecoveryId)>>(key: &K, id: &[u8; 32]) -> Result<Vec<u8>, String> {
    let (sig, rec): (Signature, RecoveryId) = key
        .sign_prehash(id)
        .map_err(|e| format!("secp256k1 signing failed: {e}"))?;
    let mut out = sig.to_bytes().to_vec();
    out.push(rec.to_byte() + 27);
    Ok(out)
}

/// The address that signed `id` with `signature` (65 bytes, `v` as 0/1 or 27/28).
///
/// # Errors
/// A message naming what is wrong with the signature.
pub fn recover(id: &[u8; 32], signature: &[u8]) -> Result<Address, String> {
    if signature.len() != 65 {
        return Err(format!("signature is {} bytes, not 65", signature.len()));
    }
    let v = signature[64];
    let rec = RecoveryId::from_byte(if v >= 27 { v - 27 } else { v })
        .ok_or_else(|| format!("signature recovery byte {v} is invalid"))?;
    let sig = Signature::from_slice(&signature[..64]).map_err(|e| format!("malformed signature: {e}"))?;
    let key = VerifyingKey::recover_from_prehash(id, &sig, rec).map_err(|e| format!("no key recovers: {e}"))?;
    Ok(address_of(&key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    /// TronWeb's unsigned FreezeBalanceV2 for 1 TRX of bandwidth (a public test fixture)
    /// and its txID.
    const TRONWEB_FREEZE_HEX: &str = "0a020a1b2208112233445566778840e0bc9ad68d375a57083612530a34747970652e676f6f676c65617069732e636f6d2f70726f746f636f6c2e467265657a6542616c616e63655632436f6e7472616374121b0a15417e5f4552091a69125d5dfcb7b8c2659029395bdf10c0843d7080e896d68d37";
    const TRONWEB_FREEZE_ID: &str = "789c4e184f355f00f44419eded4c5e0de59bdfa517f839c9e5874d4d7523b864";
    /// TronGrid's votewitnessaccount: one vote from TU3kjF… for TJvaAe….
    const TRONGRID_VOTE_HEX: &str = "0a02d739220824845a7be2657feb40c8a5dae78f345a6a080412660a30747970652e676f6f676c65617069732e636f6d2f70726f746f636f6c2e566f74655769746e657373436f6e747261637412320a1541c64e69acde1c7b16c2a3efcdbbdaa96c3644c2b312190a154162398d516b555ac64af24416e05c199c01823048100170c3e2d6e78f34";

    #[test]
    fn success_freeze_encodes_as_tronweb_does() {
        let owner = parse_address("417e5f4552091a69125d5dfcb7b8c2659029395bdf").unwrap();
        let raw = Raw {
            ref_block_bytes: hex::decode("0a1b").unwrap(),
            ref_block_hash: hex::decode("1122334455667788").unwrap(),
            expiration: 1_893_456_060_000,
            contract: vec![contract(
                FREEZE_BALANCE_V2,
                &FreezeBalanceV2 {
                    owner_address: owner.to_vec(),
                    frozen_balance: 1_000_000,
                    resource: BANDWIDTH,
                },
            )],
            timestamp: 1_893_456_000_000,
        };
        let bytes = raw.encode_to_vec();
        assert_eq!(hex::encode(&bytes), TRONWEB_FREEZE_HEX);
        assert_eq!(hex::encode(tx_id(&bytes)), TRONWEB_FREEZE_ID);
    }

    #[test]
    fn success_vote_encodes_as_trongrid_does() {
        let owner = parse_address("TU3kjFuhtEo42tsCBtfYUAZxoqQ4yuSLQ5").unwrap();
        let witness = parse_address("TJvaAeFb8Lykt9RQcVyyTFN2iDvGMuyD4M").unwrap();
        let raw = Raw {
            ref_block_bytes: hex::decode("d739").unwrap(),
            ref_block_hash: hex::decode("24845a7be2657feb").unwrap(),
            expiration: 1_790_950_413_000,
            contract: vec![contract(
                VOTE_WITNESS,
                &VoteWitness {
                    owner_address: owner.to_vec(),
                    votes: vec![Vote {
                        vote_address: witness.to_vec(),
                        vote_count: 1,
                    }],
                    support: false,
                },
            )],
            timestamp: 1_790_950_355_267,
        };
        assert_eq!(hex::encode(raw.encode_to_vec()), TRONGRID_VOTE_HEX);
        let back = Raw::decode(hex::decode(TRONGRID_VOTE_HEX).unwrap().as_slice()).unwrap();
        assert_eq!(back, raw);
    }

    #[test]
    fn success_base58_round_trips_and_fail_on_bad_checksum() {
        let a = parse_address("TJvaAeFb8Lykt9RQcVyyTFN2iDvGMuyD4M").unwrap();
        assert_eq!(hex::encode(a), "4162398d516b555ac64af24416e05c199c01823048");
        assert_eq!(to_base58(&a), "TJvaAeFb8Lykt9RQcVyyTFN2iDvGMuyD4M");
        assert!(parse_address("TJvaAeFb8Lykt9RQcVyyTFN2iDvGMuyD4N")
            .unwrap_err()
            .contains("checksum"));
        assert!(parse_address("0x62398d516b555ac64af24416e05c199c01823048").is_err());
    }

    #[test]
    fn success_signature_recovers_the_signer_and_fail_for_another_id() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let me = address_of(key.verifying_key());
        let id = tx_id(b"raw");
        let sig = sign(&key, &id).unwrap();
        assert_eq!(sig.len(), 65);
        assert!(sig[64] == 27 || sig[64] == 28);
        assert_eq!(recover(&id, &sig).unwrap(), me);
        assert_ne!(recover(&tx_id(b"other"), &sig).ok(), Some(me));
        assert!(recover(&id, &sig[..64]).is_err());
    }
}

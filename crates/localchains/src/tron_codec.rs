//! The local TRON chain's own reading of what an adapter sends, written from java-tron's
//! protobuf definitions apart from the adapter's `tron::wire` module, so an encoding bug
//! there cannot pass on both sides; checked against published transactions.
//!
//! ```text
//!  Transaction (Tron.proto)   raw_data = 1 (kept as the bytes sent), signature = 2
//!  Transaction.raw            ref_block_bytes = 1, ref_block_num = 3, ref_block_hash = 4,
//!                             expiration = 8, data = 10, contract = 11, timestamp = 14,
//!                             fee_limit = 18
//!  Transaction.Contract       type = 1, parameter = 2 (google.protobuf.Any), Permission_id = 5
//!  txID                       sha256(raw_data bytes)
//!  signer                     secp256k1 recovery of r ‖ s ‖ v over the txID (k256)
//!  address                    0x41 ‖ keccak256(uncompressed key)[12..], base58check
//! ```
//!
//! Sources: java-tron `protocol/src/main/protos/core/Tron.proto`,
//! `core/contract/balance_contract.proto`, `core/contract/witness_contract.proto`;
//! developers.tron.network "Account", "Transaction".

use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
use prost::Message;
use sha2::{Digest, Sha256};
use sha3::Keccak256;

/// A 21-byte TRON address (`0x41` then 20 bytes).
pub type Address = [u8; 21];

/// The address prefix of mainnet and the testnets.
pub const PREFIX: u8 = 0x41;
/// `ContractType.VoteWitnessContract`.
pub const VOTE_WITNESS: i32 = 4;
/// `ContractType.WithdrawBalanceContract`.
pub const WITHDRAW_BALANCE: i32 = 13;
/// `ContractType.FreezeBalanceV2Contract`.
pub const FREEZE_BALANCE_V2: i32 = 54;
/// `ContractType.UnfreezeBalanceV2Contract`.
pub const UNFREEZE_BALANCE_V2: i32 = 55;
/// `ContractType.WithdrawExpireUnfreezeContract`.
pub const WITHDRAW_EXPIRE_UNFREEZE: i32 = 56;
/// `ResourceCode.BANDWIDTH`.
pub const BANDWIDTH: i32 = 0;
/// `ResourceCode.ENERGY`.
pub const ENERGY: i32 = 1;

/// `Transaction`, with `raw_data` as the bytes received (the id is their hash).
#[derive(Clone, PartialEq, Message)]
pub struct Transaction {
    /// `raw raw_data = 1`, undecoded.
    #[prost(bytes = "vec", tag = "1")]
    pub raw_data: Vec<u8>,
    /// `repeated bytes signature = 2`: r ‖ s ‖ v, 65 bytes each.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub signature: Vec<Vec<u8>>,
}

/// `Transaction.raw`.
#[derive(Clone, PartialEq, Message)]
pub struct Raw {
    /// Bytes 6..8 of the reference block's number (TaPoS).
    #[prost(bytes = "vec", tag = "1")]
    pub ref_block_bytes: Vec<u8>,
    /// The reference block's number (unused by mainnet wallets).
    #[prost(int64, tag = "3")]
    pub ref_block_num: i64,
    /// Bytes 8..16 of the reference block's id (TaPoS).
    #[prost(bytes = "vec", tag = "4")]
    pub ref_block_hash: Vec<u8>,
    /// Expiry, unix milliseconds.
    #[prost(int64, tag = "8")]
    pub expiration: i64,
    /// Memo.
    #[prost(bytes = "vec", tag = "10")]
    pub data: Vec<u8>,
    /// The contracts (exactly one on mainnet).
    #[prost(message, repeated, tag = "11")]
    pub contract: Vec<Contract>,
    /// Creation time, unix milliseconds.
    #[prost(int64, tag = "14")]
    pub timestamp: i64,
    /// Most sun a smart-contract call may burn.
    #[prost(int64, tag = "18")]
    pub fee_limit: i64,
}

/// `Transaction.Contract`.
#[derive(Clone, PartialEq, Message)]
pub struct Contract {
    /// `ContractType`.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The contract message.
    #[prost(message, optional, tag = "2")]
    pub parameter: Option<Any>,
    /// The permission signing it (0 = owner).
    #[prost(int32, tag = "5")]
    pub permission_id: i32,
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

/// `FreezeBalanceV2Contract`.
#[derive(Clone, PartialEq, Message)]
pub struct FreezeBalanceV2 {
    /// Owner.
    #[prost(bytes = "vec", tag = "1")]
    pub owner_address: Vec<u8>,
    /// Sun frozen.
    #[prost(int64, tag = "2")]
    pub frozen_balance: i64,
    /// `ResourceCode`.
    #[prost(int32, tag = "3")]
    pub resource: i32,
}

/// `UnfreezeBalanceV2Contract`.
#[derive(Clone, PartialEq, Message)]
pub struct UnfreezeBalanceV2 {
    /// Owner.
    #[prost(bytes = "vec", tag = "1")]
    pub owner_address: Vec<u8>,
    /// Sun unfrozen.
    #[prost(int64, tag = "2")]
    pub unfreeze_balance: i64,
    /// `ResourceCode`.
    #[prost(int32, tag = "3")]
    pub resource: i32,
}

/// Any contract's first field, `bytes owner_address = 1` (`WithdrawBalanceContract` and
/// `WithdrawExpireUnfreezeContract` have nothing else).
#[derive(Clone, PartialEq, Message)]
pub struct OwnerOnly {
    /// Owner.
    #[prost(bytes = "vec", tag = "1")]
    pub owner_address: Vec<u8>,
}

/// `VoteWitnessContract`.
#[derive(Clone, PartialEq, Message)]
pub struct VoteWitness {
    /// Owner.
    #[prost(bytes = "vec", tag = "1")]
    pub owner_address: Vec<u8>,
    /// Every vote (they replace the previous ones).
    #[prost(message, repeated, tag = "2")]
    pub votes: Vec<Vote>,
    /// Unused by the chain.
    #[prost(bool, tag = "3")]
    pub support: bool,
}

/// `VoteWitnessContract.Vote`.
#[derive(Clone, PartialEq, Message)]
pub struct Vote {
    /// The witness (SR) voted for.
    #[prost(bytes = "vec", tag = "1")]
    pub vote_address: Vec<u8>,
    /// Votes (1 TRON Power each).
    #[prost(int64, tag = "2")]
    pub vote_count: i64,
}

/// java-tron's name of a contract type, for the ones the local chain keeps.
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

/// A transaction id: sha256 of the `raw_data` bytes.
pub fn tx_id(raw_data: &[u8]) -> [u8; 32] {
    Sha256::digest(raw_data).into()
}

/// The address of a public key.
pub fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    let hash = Keccak256::digest(&point.as_bytes()[1..]);
    let mut out = [PREFIX; 21];
    out[1..].copy_from_slice(&hash[12..]);
    out
}

/// The base58check form (`T…`): base58 of the address and the first 4 bytes of its
/// double sha256.
pub fn to_base58(address: &Address) -> String {
    bs58::encode(address).with_check().into_string()
}

/// An address from its base58check (`T…`) or hex (`41…`, 42 digits) form.
///
/// # Errors
/// A message naming the text: not base58check or hex, a bad checksum, a wrong length or
/// prefix.
pub fn parse_address(text: &str) -> Result<Address, String> {
    let bytes = if text.len() == 42 && text.starts_with("41") {
        hex::decode(text).map_err(|_| format!("address {text:?} is not hex"))?
    } else {
        bs58::decode(text)
            .with_check(None)
            .into_vec()
            .map_err(|e| format!("address {text:?}: {e}"))?
    };
    let a: Address = bytes
        .try_into()
        .map_err(|_| format!("address {text:?} is not 21 bytes"))?;
    if a[0] != PREFIX {
        return Err(format!("address {text:?} does not start with 0x41"));
    }
    Ok(a)
}

/// The address whose key made `signature` (r ‖ s ‖ v, v 0/1 or 27/28) over `id`.
///
/// # Errors
/// A message: a length other than 65, a bad recovery byte, a malformed or unrecoverable
/// signature.
pub fn recover(id: &[u8; 32], signature: &[u8]) -> Result<Address, String> {
    let [rs @ .., v] = signature else {
        return Err("an empty signature".into());
    };
    if signature.len() != 65 {
        return Err(format!("a signature of {} bytes, not 65", signature.len()));
    }
    let rec = RecoveryId::from_byte(v.checked_sub(27).unwrap_or(*v)).ok_or_else(|| format!("recovery byte {v}"))?;
    let sig = Signature::from_slice(rs).map_err(|e| format!("malformed signature: {e}"))?;
    VerifyingKey::recover_from_prehash(id, &sig, rec)
        .map(|k| address_of(&k))
        .map_err(|e| format!("no key recovers from it: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    /// java-tron's HTTP API docs (`wallet/getapprovedlist`): a TransferContract of 1 TRX
    /// from TRGhNN… to TJCnKs… with its txID.
    const JAVA_TRON_RAW: &str = "0a02163d220877ef4ace148b05ba40d8c5e5a6a32d5a69080112630a2d747970652e676f6f676c65617069732e636f6d2f70726f746f636f6c2e5472616e73666572436f6e747261637412320a1541a7d8a35b260395c14aa456297662092ba3b76fc01215415a523b449890854c8fc460ab602df9f31fe4293f18c0843d2802709af4e1a6a32d";
    const JAVA_TRON_ID: &str = "0ae84a8439f5aa8fd2c458879a4031a7452aebed8e6e99ffbccd26842d4323c4";
    /// TronWeb's unsigned FreezeBalanceV2 for 1 TRX of bandwidth, and its txID.
    const TRONWEB_FREEZE_RAW: &str = "0a020a1b2208112233445566778840e0bc9ad68d375a57083612530a34747970652e676f6f676c65617069732e636f6d2f70726f746f636f6c2e467265657a6542616c616e63655632436f6e7472616374121b0a15417e5f4552091a69125d5dfcb7b8c2659029395bdf10c0843d7080e896d68d37";
    const TRONWEB_FREEZE_ID: &str = "789c4e184f355f00f44419eded4c5e0de59bdfa517f839c9e5874d4d7523b864";
    /// TronGrid's votewitnessaccount: one vote from TU3kjF… for TJvaAe….
    const TRONGRID_VOTE_RAW: &str = "0a02d739220824845a7be2657feb40c8a5dae78f345a6a080412660a30747970652e676f6f676c65617069732e636f6d2f70726f746f636f6c2e566f74655769746e657373436f6e747261637412320a1541c64e69acde1c7b16c2a3efcdbbdaa96c3644c2b312190a154162398d516b555ac64af24416e05c199c01823048100170c3e2d6e78f34";

    fn raw(hex_text: &str) -> Raw {
        Raw::decode(hex::decode(hex_text).unwrap().as_slice()).unwrap()
    }

    #[test]
    fn success_published_transactions_decode_with_their_ids() {
        let bytes = hex::decode(JAVA_TRON_RAW).unwrap();
        assert_eq!(hex::encode(tx_id(&bytes)), JAVA_TRON_ID);
        let r = raw(JAVA_TRON_RAW);
        assert_eq!((r.expiration, r.timestamp), (1_555_664_823_000, 1_555_664_763_418));
        assert_eq!(hex::encode(&r.ref_block_hash), "77ef4ace148b05ba");
        let c = &r.contract[0];
        assert_eq!(
            (c.r#type, c.permission_id),
            (1, 2),
            "a TransferContract signed by permission 2"
        );
        let owner = OwnerOnly::decode(c.parameter.as_ref().unwrap().value.as_slice()).unwrap();
        let owner: Address = owner.owner_address.try_into().unwrap();
        assert_eq!(to_base58(&owner), "TRGhNNfnmgLegT4zHNjEqDSADjgmnHvubJ");
        assert_eq!(
            parse_address("TJCnKsPa7y5okkXvQAidZBzqx3QyQ6sxMW").unwrap().to_vec(),
            hex::decode("415a523b449890854c8fc460ab602df9f31fe4293f").unwrap()
        );

        let bytes = hex::decode(TRONWEB_FREEZE_RAW).unwrap();
        assert_eq!(hex::encode(tx_id(&bytes)), TRONWEB_FREEZE_ID);
        let c = &raw(TRONWEB_FREEZE_RAW).contract[0];
        assert_eq!(contract_name(c.r#type), Some("FreezeBalanceV2Contract"));
        let f = FreezeBalanceV2::decode(c.parameter.as_ref().unwrap().value.as_slice()).unwrap();
        assert_eq!((f.frozen_balance, f.resource), (1_000_000, BANDWIDTH));

        let c = &raw(TRONGRID_VOTE_RAW).contract[0];
        assert_eq!(c.r#type, VOTE_WITNESS);
        let v = VoteWitness::decode(c.parameter.as_ref().unwrap().value.as_slice()).unwrap();
        assert_eq!(v.votes.len(), 1);
        assert_eq!(v.votes[0].vote_count, 1);
        let sr: Address = v.votes[0].vote_address.clone().try_into().unwrap();
        assert_eq!(to_base58(&sr), "TJvaAeFb8Lykt9RQcVyyTFN2iDvGMuyD4M");
        let from: Address = v.owner_address.try_into().unwrap();
        assert_eq!(to_base58(&from), "TU3kjFuhtEo42tsCBtfYUAZxoqQ4yuSLQ5");
    }

    /// Private key 1's address is Ethereum's well-known 0x7E5F4552…9395Bdf with TRON's
    /// prefix (TronWeb's freeze fixture above is owned by it); a signature by it recovers
    /// to it, one with a flipped bit does not.
    #[test]
    fn success_recovery_of_key_one() {
        let mut one = [0u8; 32];
        one[31] = 1;
        let key = SigningKey::from_slice(&one).unwrap();
        let me = address_of(key.verifying_key());
        assert_eq!(hex::encode(me), "417e5f4552091a69125d5dfcb7b8c2659029395bdf");
        let id = tx_id(&hex::decode(TRONWEB_FREEZE_RAW).unwrap());
        let (sig, rec) = key.sign_prehash_recoverable(&id).unwrap();
        let mut bytes = sig.to_bytes().to_vec();
        bytes.push(rec.to_byte() + 27);
        assert_eq!(recover(&id, &bytes).unwrap(), me);
        bytes[5] ^= 1;
        assert_ne!(recover(&id, &bytes).ok(), Some(me));
        assert!(recover(&id, &bytes[..64]).is_err());
        assert!(parse_address("TJCnKsPa7y5okkXvQAidZBzqx3QyQ6sxMX").is_err(), "checksum");
    }
}

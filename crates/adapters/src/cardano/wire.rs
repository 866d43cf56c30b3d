//! Cardano's formats, as the adapter and the local chain both need them: ed25519 keys and
//! their Blake2b-224 hashes, addresses (enterprise, base, stake) and pool ids in bech32,
//! and Conway transactions built with pallas (`pallas-txbuilder` 1.4 cannot emit
//! certificates or withdrawals, so the body is filled here).
//!
//! ```text
//!  tx id      = blake2b-256(CBOR of the transaction body)
//!  witness    = (vkey, ed25519 signature of the tx id), one per key whose hash the
//!               inputs, certificates and withdrawals name
//!  stake key  = ed25519 seed blake2b-256("softstake/cardano/stake" ‖ payment seed ‖ i)
//! ```
//!
//! Sources: the Conway CDDL (cardano-ledger `eras/conway/impl/cddl-files/conway.cddl`),
//! CIP-19 (address formats), CIP-5 (bech32 prefixes).

use pallas_addresses::{
    Network, ShelleyAddress, ShelleyDelegationPart, ShelleyPaymentPart, StakeAddress, StakePayload,
};
use pallas_codec::minicbor;
use pallas_codec::utils::{Bytes, KeepRaw, NonEmptySet, Nullable, Set};
use pallas_crypto::hash::{Hash, Hasher};
use pallas_crypto::key::ed25519::{PublicKey, SecretKey, Signature};
use pallas_primitives::conway::{
    Certificate, DRep, PostAlonzoTransactionOutput, TransactionBody, TransactionOutput, Tx, VKeyWitness, Value,
    WitnessSet,
};
use pallas_primitives::{StakeCredential, TransactionInput};

/// An ed25519 key pair from its 32-byte seed.
pub fn secret_key(seed: [u8; 32]) -> SecretKey {
    SecretKey::from(seed)
}

/// The seed of the treasury's stake key `index` (one pool per stake key).
pub fn stake_seed(payment_seed: &[u8; 32], index: u32) -> [u8; 32] {
    let mut msg = b"softstake/cardano/stake".to_vec();
    msg.extend_from_slice(payment_seed);
    msg.extend_from_slice(&index.to_be_bytes());
    *Hasher::<256>::hash(&msg)
}

/// Blake2b-224 of a public key: the hash addresses and certificates name.
pub fn key_hash(pk: &PublicKey) -> Hash<28> {
    Hasher::<224>::hash(pk.as_ref())
}

/// The network of a network id (0 testnets, 1 mainnet).
pub fn network(id: u8) -> Network {
    Network::from(id)
}

/// The enterprise address of a payment key (no stake part: its funds earn nothing).
pub fn enterprise_address(net: Network, payment: Hash<28>) -> ShelleyAddress {
    ShelleyAddress::new(net, ShelleyPaymentPart::key_hash(payment), ShelleyDelegationPart::Null)
}

/// The base address of a payment key and a stake key (its funds count for the stake key's pool).
pub fn base_address(net: Network, payment: Hash<28>, stake: Hash<28>) -> ShelleyAddress {
    ShelleyAddress::new(
        net,
        ShelleyPaymentPart::key_hash(payment),
        ShelleyDelegationPart::key_hash(stake),
    )
}

/// The stake (reward) address of a stake key.
pub fn stake_address(net: Network, stake: Hash<28>) -> StakeAddress {
    StakeAddress::new(net, StakePayload::Stake(stake))
}

/// A pool id as bech32 (`pool1…`, CIP-5).
///
/// # Errors
/// Never for 28 bytes; the message otherwise.
pub fn pool_id(hash: &Hash<28>) -> Result<String, String> {
    let hrp = bech32::Hrp::parse("pool").map_err(|e| e.to_string())?;
    bech32::encode::<bech32::Bech32>(hrp, hash.as_ref()).map_err(|e| e.to_string())
}

/// The key hash of a pool id (`pool1…` or 56 hex digits).
///
/// # Errors
/// A message for anything else.
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

/// One input: (transaction id, output index).
pub type Input = (Hash<32>, u64);

/// What a transaction does, before fee and signatures.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    /// Inputs spent.
    pub inputs: Vec<Input>,
    /// Outputs: (address bytes, lovelace).
    pub outputs: Vec<(Vec<u8>, u64)>,
    /// Fee, lovelace.
    pub fee: u64,
    /// Last slot it is valid in.
    pub ttl: u64,
    /// Certificates.
    pub certificates: Vec<Certificate>,
    /// Withdrawals: (reward account bytes, lovelace).
    pub withdrawals: Vec<(Vec<u8>, u64)>,
}

/// The stake credential of a key hash.
pub fn credential(stake: Hash<28>) -> StakeCredential {
    StakeCredential::AddrKeyhash(stake)
}

/// Registers a stake key, delegates it to `pool` and its vote to always-abstain, paying the
/// key deposit (Conway `stake_vote_reg_deleg_cert`, tag 13).
pub fn register_and_delegate(stake: Hash<28>, pool: Hash<28>, deposit: u64) -> Certificate {
    Certificate::StakeVoteRegDeleg(credential(stake), pool, DRep::Abstain, deposit)
}

/// Delegates a registered stake key to `pool` and its vote to always-abstain (tag 10).
pub fn delegate(stake: Hash<28>, pool: Hash<28>) -> Certificate {
    Certificate::StakeVoteDeleg(credential(stake), pool, DRep::Abstain)
}

/// Deregisters a stake key, refunding its deposit (Conway `unreg_cert`, tag 8).
pub fn deregister(stake: Hash<28>, deposit: u64) -> Certificate {
    Certificate::UnReg(credential(stake), deposit)
}

fn body(d: &Draft) -> TransactionBody<'static> {
    let outputs = d
        .outputs
        .iter()
        .map(|(addr, coin)| {
            TransactionOutput::PostAlonzo(KeepRaw::from(PostAlonzoTransactionOutput {
                address: Bytes::from(addr.clone()),
                value: Value::Coin(*coin),
                datum_option: None,
                script_ref: None,
            }))
        })
        .collect();
    let withdrawals = (!d.withdrawals.is_empty()).then(|| {
        d.withdrawals
            .iter()
            .map(|(a, c)| (Bytes::from(a.clone()), *c))
            .collect()
    });
    TransactionBody {
        inputs: Set::from(
            d.inputs
                .iter()
                .map(|(id, index)| TransactionInput {
                    transaction_id: *id,
                    index: *index,
                })
                .collect::<Vec<_>>(),
        ),
        outputs,
        fee: d.fee,
        ttl: Some(d.ttl),
        certificates: NonEmptySet::try_from(d.certificates.clone()).ok(),
        withdrawals,
        auxiliary_data_hash: None,
        validity_interval_start: None,
        mint: None,
        script_data_hash: None,
        collateral: None,
        required_signers: None,
        network_id: None,
        collateral_return: None,
        total_collateral: None,
        reference_inputs: None,
        voting_procedures: None,
        proposal_procedures: None,
        treasury_value: None,
        donation: None,
    }
}

/// The transaction id of a body's CBOR.
pub fn tx_id(body_cbor: &[u8]) -> Hash<32> {
    Hasher::<256>::hash(body_cbor)
}

/// The transaction id of a draft: Blake2b-256 of its body's CBOR (what every witness signs).
///
/// # Errors
/// A CBOR encoding failure (never for well-formed drafts).
pub fn draft_id(d: &Draft) -> Result<Hash<32>, String> {
    Ok(tx_id(&minicbor::to_vec(body(d)).map_err(|e| e.to_string())?))
}

/// Builds `d` with its witnesses, each (32-byte vkey, 64-byte ed25519 signature of the tx
/// id): (tx id, transaction CBOR). The size does not depend on the signatures' values, so
/// placeholder signatures size a draft before anything is signed.
///
/// # Errors
/// A CBOR encoding failure (never for well-formed drafts).
pub fn assemble(d: &Draft, witnesses: &[([u8; 32], [u8; 64])]) -> Result<(Hash<32>, Vec<u8>), String> {
    let body = body(d);
    let body_cbor = minicbor::to_vec(&body).map_err(|e| e.to_string())?;
    let id = tx_id(&body_cbor);
    let witnesses: Vec<VKeyWitness> = witnesses
        .iter()
        .map(|(vkey, sig)| VKeyWitness {
            vkey: Bytes::from(vkey.to_vec()),
            signature: Bytes::from(sig.to_vec()),
        })
        .collect();
    let tx = Tx {
        transaction_body: KeepRaw::from(body),
        transaction_witness_set: KeepRaw::from(WitnessSet {
            vkeywitness: NonEmptySet::try_from(witnesses).ok(),
            native_script: None,
            bootstrap_witness: None,
            plutus_v1_script: None,
            plutus_data: None,
            redeemer: None,
            plutus_v2_script: None,
            plutus_v3_script: None,
        }),
        success: true,
        auxiliary_data: Nullable::Null,
    };
    let cbor = minicbor::to_vec(&tx).map_err(|e| e.to_string())?;
    Ok((id, cbor))
}

/// Builds and signs `d` with every key in `keys` held in memory: (tx id, transaction CBOR).
///
/// # Errors
/// A CBOR encoding failure (never for well-formed drafts).
pub fn sign(d: &Draft, keys: &[&SecretKey]) -> Result<(Hash<32>, Vec<u8>), String> {
    let id = draft_id(d)?;
    let witnesses: Vec<([u8; 32], [u8; 64])> = keys
        .iter()
        .map(|k| {
            let pk: [u8; 32] = k
                .public_key()
                .as_ref()
                .try_into()
                .map_err(|_| "a 32-byte key".to_string())?;
            let sig: [u8; 64] = k
                .sign(id)
                .as_ref()
                .try_into()
                .map_err(|_| "a 64-byte signature".to_string())?;
            Ok((pk, sig))
        })
        .collect::<Result<_, String>>()?;
    assemble(d, &witnesses)
}

/// Verifies an ed25519 witness over a tx id.
pub fn verify(vkey: &[u8], signature: &[u8], id: &Hash<32>) -> bool {
    let (Ok(pk), Ok(sig)) = (<[u8; 32]>::try_from(vkey), <[u8; 64]>::try_from(signature)) else {
        return false;
    };
    PublicKey::from(pk).verify(id, &Signature::from(sig))
}

/// Decodes a Conway transaction: its body (with its original CBOR) and witnesses.
///
/// # Errors
/// The CBOR decoder's message.
pub fn decode(cbor: &[u8]) -> Result<Tx<'_>, String> {
    minicbor::decode::<Tx<'_>>(cbor).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_pool_ids_round_trip() {
        // a mainnet pool of the bundled Blockfrost fixtures
        let id = "pool1pu5jlj4q9w9jlxeu370a3c9myx47md5j5m2str0naunn2q3lkdy";
        let h = pool_hash(id).unwrap();
        assert_eq!(
            hex::encode(h),
            "0f292fcaa02b8b2f9b3c8f9fd8e0bb21abedb692a6d5058df3ef2735"
        );
        assert_eq!(pool_id(&h).unwrap(), id);
        assert!(pool_hash("stake1uxa6lm0x9ezhywczl8rs048mmvn396qtk0w4z2tzu2cytuqs0e38d").is_err());
    }

    #[test]
    fn success_signed_transaction_decodes_and_verifies() {
        let pay = secret_key([7; 32]);
        let stake = secret_key(stake_seed(&[7; 32], 0));
        let net = network(0);
        let base = base_address(net, key_hash(&pay.public_key()), key_hash(&stake.public_key()));
        let d = Draft {
            inputs: vec![(Hash::from([1; 32]), 0)],
            outputs: vec![(base.to_vec(), 5_000_000)],
            fee: 200_000,
            ttl: 1_000,
            certificates: vec![register_and_delegate(
                key_hash(&stake.public_key()),
                Hash::from([9; 28]),
                2_000_000,
            )],
            withdrawals: vec![],
        };
        let (id, cbor) = sign(&d, &[&pay, &stake]).unwrap();
        let tx = decode(&cbor).unwrap();
        assert_eq!(
            tx_id(tx.transaction_body.raw_cbor()),
            id,
            "the id hashes the body as sent"
        );
        let ws = tx.transaction_witness_set.vkeywitness.clone().unwrap().to_vec();
        assert_eq!(ws.len(), 2);
        assert!(ws.iter().all(|w| verify(&w.vkey, &w.signature, &id)));
        assert!(!verify(&ws[0].vkey, &ws[1].signature, &id));
        assert!(base.to_bech32().unwrap().starts_with("addr_test1"));
        assert!(stake_address(net, key_hash(&stake.public_key()))
            .to_bech32()
            .unwrap()
            .starts_with("stake_test1"));
    }
}

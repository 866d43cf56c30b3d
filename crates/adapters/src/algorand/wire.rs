//! What algonaut does not give the adapter: the signed-transaction envelope for a
//! signature made outside it (an HSM's), and the payload the journal keeps.
//!
//! ```text
//!  Transaction (algonaut) ─ bytes_to_sign() = "TX" ‖ canonical msgpack ─▶ Ed25519 (treasury key)
//!  SignedTxn  = msgpack map, keys sorted: {"sgnr": signer (only for a rekeyed sender),
//!                                          "sig": 64 bytes, "txn": the transaction's map}
//!  POST /v2/transactions body = the group's SignedTxns concatenated (go-algorand
//!  daemon/algod/api/server/v2/handlers.go RawTransaction decodes them one after another)
//! ```
//!
//! algonaut's `SignedTransaction` keeps its fields crate-private, so a signature made by a
//! PKCS#11 token cannot be put into it; the envelope is written here with `rmp`'s
//! low-level encoder, as go-algorand's `transactions.SignedTxn` encodes it (codec tags
//! `sig`, `sgnr`, `txn`; canonical msgpack sorts map keys and omits empty fields).

use algonaut_core::{Address, ToMsgPack as _};
use algonaut_transaction::Transaction;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The signed group as the journal keeps it in [`crate::traits::SignedTx::payload`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// Every transaction's id (base32), in group order; the first is the operation's id.
    pub txids: Vec<String>,
    /// The last round any of them is valid in: after it none can land.
    pub last_valid: u64,
    /// The concatenated SignedTxns, base64 (what `POST /v2/transactions` takes).
    pub signed: String,
}

impl Payload {
    /// The raw body for `POST /v2/transactions`.
    ///
    /// # Errors
    /// A `signed` field that is not base64.
    pub fn body(&self) -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.signed)
            .map_err(|e| format!("signed group is not base64: {e}"))
    }
}

/// The canonical msgpack of a SignedTxn around `txn`, signed by `sig`; `signer` is the
/// authorizing address when it is not the sender (a rekeyed account).
///
/// # Errors
/// When algonaut cannot encode the transaction.
pub fn signed_txn(txn: &Transaction, sig: &[u8; 64], signer: Option<&Address>) -> Result<Vec<u8>, String> {
    let body = txn
        .to_msg_pack()
        .map_err(|e| format!("encoding the transaction: {e}"))?;
    let mut out = Vec::with_capacity(body.len() + 120);
    let fields = if signer.is_some() { 3 } else { 2 };
    let io = |e: std::io::Error| format!("encoding the signed transaction: {e}");
    rmp::encode::write_map_len(&mut out, fields).map_err(|e| io(e.into()))?;
    // canonical order: "sgnr" < "sig" < "txn"
    if let Some(s) = signer {
        rmp::encode::write_str(&mut out, "sgnr").map_err(|e| io(e.into()))?;
        rmp::encode::write_bin(&mut out, &s.0).map_err(|e| io(e.into()))?;
    }
    rmp::encode::write_str(&mut out, "sig").map_err(|e| io(e.into()))?;
    rmp::encode::write_bin(&mut out, sig).map_err(|e| io(e.into()))?;
    rmp::encode::write_str(&mut out, "txn").map_err(|e| io(e.into()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use algonaut_core::{MicroAlgos, Round};
    use algonaut_crypto::HashDigest;
    use algonaut_transaction::transaction::{Payment, TransactionType};

    fn payment() -> Transaction {
        Transaction {
            fee: MicroAlgos(1_000),
            first_valid: Round(10),
            genesis_hash: HashDigest([7; 32]),
            last_valid: Round(20),
            txn_type: TransactionType::Payment(Payment {
                sender: Address([1; 32]),
                receiver: Address([2; 32]),
                amount: MicroAlgos(5),
                close_remainder_to: None,
            }),
            genesis_id: Some("x".into()),
            group: None,
            lease: None,
            note: None,
            rekey_to: None,
        }
    }

    #[test]
    fn success_envelope_is_the_canonical_map() {
        let t = payment();
        let raw = signed_txn(&t, &[9; 64], None).unwrap();
        // fixmap of 2, "sig", bin8 of 64
        assert_eq!(&raw[..5], &[0x82, 0xa3, b's', b'i', b'g']);
        assert_eq!(&raw[5..7], &[0xc4, 64]);
        let txn_at = 7 + 64 + 4;
        assert_eq!(&raw[71..txn_at], &[0xa3, b't', b'x', b'n']);
        assert_eq!(raw[txn_at..], t.to_msg_pack().unwrap()[..]);
        let rekeyed = signed_txn(&t, &[9; 64], Some(&Address([3; 32]))).unwrap();
        assert_eq!(&rekeyed[..6], &[0x83, 0xa4, b's', b'g', b'n', b'r']);
        assert_eq!(&rekeyed[6..8], &[0xc4, 32]);
    }
}

//! What the Aptos adapter reads and writes on the wire, pure (no I/O): the journal payload
//! (hex of the BCS `SignedTransaction`), the REST answers it decodes (view results as JSON
//! strings of u64, resources' `data`, committed transactions) and the Move abort names in
//! `vm_status`. Every decoder names what it read and quotes what it could not.

use aptos_sdk::transaction::{SignedTransaction, TransactionAuthenticator, TransactionPayload};
use aptos_sdk::types::AccountAddress;
use serde_json::Value;

use crate::error::{AdapterError, Result};

pub(super) const CHAIN: &str = "aptos";

/// A 32-byte account address (`0x…`, short forms allowed as the node accepts them).
///
/// # Errors
/// [`AdapterError::BadInput`] naming `what` for anything else.
pub fn address(what: &str, s: &str) -> Result<AccountAddress> {
    s.parse()
        .map_err(|e| AdapterError::bad_input(CHAIN, format!("{what} {s:?} is not an Aptos address: {e}")))
}

/// The journal payload of `tx`: hex of its BCS.
///
/// # Errors
/// [`AdapterError::Signer`] when BCS cannot encode it (it always can).
pub fn encode_payload(tx: &SignedTransaction) -> Result<String> {
    tx.to_bcs()
        .map(hex::encode)
        .map_err(|e| AdapterError::Signer(format!("encoding the Aptos transaction failed: {e}")))
}

/// The signed transaction a journal payload holds, which must hash to the recorded id
/// (`0x` + 64 hex, `SHA3-256(SHA3-256("APTOS::Transaction") ‖ 0 ‖ BCS)`).
///
/// # Errors
/// [`AdapterError::BadInput`] for a payload that is not hex of a BCS `SignedTransaction`,
/// or one that hashes to another id.
pub fn decode_payload(payload: &str, tx_id: &str) -> Result<SignedTransaction> {
    let bytes = hex::decode(payload).map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not hex: {e}")))?;
    let tx = decode_signed(&bytes)?;
    let hash = tx_hash(&tx)?;
    if !hash.eq_ignore_ascii_case(tx_id) {
        return Err(AdapterError::bad_input(
            CHAIN,
            format!("payload hashes to {hash}, not the recorded {tx_id}"),
        ));
    }
    Ok(tx)
}

/// A BCS `SignedTransaction` of the only shape this adapter signs: an entry-function
/// payload with a single Ed25519 authenticator. (Other shapes are refused: the SDK's BCS
/// does not round-trip every one of them, e.g. script arguments.)
///
/// # Errors
/// [`AdapterError::BadInput`] for bytes that are not one, or a transaction of another shape.
pub fn decode_signed(bytes: &[u8]) -> Result<SignedTransaction> {
    let tx: SignedTransaction = aptos_sdk::aptos_bcs::from_bytes(bytes)
        .map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not a signed transaction: {e}")))?;
    let entry = matches!(tx.raw_txn.payload, TransactionPayload::EntryFunction(_));
    let ed25519 = matches!(tx.authenticator, TransactionAuthenticator::Ed25519 { .. });
    if !(entry && ed25519) {
        return Err(AdapterError::bad_input(
            CHAIN,
            "payload is not an entry-function transaction with an Ed25519 signature (what this adapter signs)",
        ));
    }
    Ok(tx)
}

/// The transaction's hash as the node names it (`0x` + 64 hex).
///
/// # Errors
/// [`AdapterError::Signer`] when BCS cannot encode it.
pub fn tx_hash(tx: &SignedTransaction) -> Result<String> {
    tx.hash()
        .map(|h| format!("0x{}", h.to_hex().trim_start_matches("0x")))
        .map_err(|e| AdapterError::Signer(format!("hashing the Aptos transaction failed: {e}")))
}

/// A u64 the REST API wrote as a JSON string (`"123"`), as u128 base units.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` and quoting the value otherwise.
pub fn u64_str(what: &str, v: &Value) -> Result<u128> {
    v.as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .map(u128::from)
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: expected a u64 string, got {v}")))
}

/// The `i`-th value of a view's result array as a u64 string.
///
/// # Errors
/// As [`u64_str`], and for a result shorter than `i + 1`.
pub fn view_u64(what: &str, result: &[Value], i: usize) -> Result<u128> {
    let v = result
        .get(i)
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: {} values, wanted #{i}", result.len())))?;
    u64_str(what, v)
}

/// The `i`-th value of a view's result array as a bool.
///
/// # Errors
/// [`AdapterError::BadResponse`] for anything else.
pub fn view_bool(what: &str, result: &[Value], i: usize) -> Result<bool> {
    result
        .get(i)
        .and_then(Value::as_bool)
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: value #{i} is not a bool in {result:?}")))
}

/// One field of a resource's `data` as a u64 string.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming the resource and field.
pub fn field_u64(resource: &str, data: &Value, field: &str) -> Result<u128> {
    u64_str(&format!("{resource}.{field}"), data.get(field).unwrap_or(&Value::Null))
}

/// A validator of `0x1::stake::ValidatorSet`'s `active_validators`: its pool address,
/// voting power (octas) and index into `0x1::stake::ValidatorPerformance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveValidator {
    /// The stake pool's address (for a delegation pool, the pool address delegators use).
    pub addr: String,
    /// Voting power, octas.
    pub voting_power: u128,
    /// `config.validator_index`.
    pub index: usize,
}

/// `active_validators` of a `0x1::stake::ValidatorSet` resource's `data`.
///
/// # Errors
/// [`AdapterError::BadResponse`] for a missing list or a validator without its fields.
pub fn active_validators(data: &Value) -> Result<Vec<ActiveValidator>> {
    let list = data
        .get("active_validators")
        .and_then(Value::as_array)
        .ok_or_else(|| AdapterError::bad_response(CHAIN, "ValidatorSet without active_validators"))?;
    list.iter()
        .map(|v| {
            let addr = v
                .get("addr")
                .and_then(Value::as_str)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("validator without addr: {v}")))?;
            let index = v
                .get("config")
                .map(|c| field_u64("ValidatorConfig", c, "validator_index"))
                .transpose()?
                .unwrap_or_default();
            Ok(ActiveValidator {
                addr: addr.to_string(),
                voting_power: field_u64("ValidatorInfo", v, "voting_power")?,
                index: usize::try_from(index).unwrap_or(usize::MAX),
            })
        })
        .collect()
}

/// Performance of validator `index` in `0x1::stake::ValidatorPerformance`'s `data`:
/// successful proposals over all its proposals, basis points (10 000 when it proposed
/// nothing yet).
pub fn performance_bps(data: &Value, index: usize) -> u32 {
    let Some(v) = data
        .get("validators")
        .and_then(Value::as_array)
        .and_then(|l| l.get(index))
    else {
        return 10_000;
    };
    let n = |f: &str| field_u64("IndividualValidatorPerformance", v, f).unwrap_or(0);
    let (ok, failed) = (n("successful_proposals"), n("failed_proposals"));
    u32::try_from(ok.saturating_mul(10_000).checked_div(ok + failed).unwrap_or(10_000)).unwrap_or(10_000)
}

/// What `GET /v1/transactions/by_hash` says about a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// In mempool, not in a block yet.
    Pending,
    /// Committed: whether it succeeded, the VM status, the block time (µs).
    Done {
        /// `success`.
        success: bool,
        /// `vm_status` (`Executed successfully` or the Move abort).
        vm_status: String,
        /// `timestamp`, microseconds.
        timestamp_us: u128,
    },
}

/// A `by_hash` answer.
///
/// # Errors
/// [`AdapterError::BadResponse`] for an unknown `type` or missing fields.
pub fn committed(v: &Value) -> Result<Committed> {
    match v.get("type").and_then(Value::as_str) {
        Some("pending_transaction") => Ok(Committed::Pending),
        Some("user_transaction") => Ok(Committed::Done {
            success: v
                .get("success")
                .and_then(Value::as_bool)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("transaction without success: {v}")))?,
            vm_status: v
                .get("vm_status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            timestamp_us: field_u64("transaction", v, "timestamp")?,
        }),
        other => Err(AdapterError::bad_response(
            CHAIN,
            format!("by_hash: a transaction of type {other:?}"),
        )),
    }
}

/// The abort name in a Move abort `vm_status`
/// (`Move abort in 0x1::delegation_pool: EDELEGATOR_ACTIVE_BALANCE_TOO_LOW(0x10008): …`), or
/// the whole status when it is not one.
pub fn abort_name(vm_status: &str) -> &str {
    vm_status
        .split_once(": ")
        .and_then(|(_, rest)| rest.split_once('('))
        .map_or(vm_status, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_abort_names_and_statuses() {
        let s = "Move abort in 0x1::delegation_pool: EDELEGATOR_ACTIVE_BALANCE_TOO_LOW(0x10008): Delegator's active balance cannot be less than `MIN_COINS_ON_SHARES_POOL`.";
        assert_eq!(abort_name(s), "EDELEGATOR_ACTIVE_BALANCE_TOO_LOW");
        assert_eq!(abort_name("Executed successfully"), "Executed successfully");
        let t = json!({"type": "user_transaction", "success": false, "vm_status": s, "timestamp": "1700000000000000"});
        assert!(matches!(committed(&t).unwrap(), Committed::Done { success: false, .. }));
        assert_eq!(
            committed(&json!({"type": "pending_transaction"})).unwrap(),
            Committed::Pending
        );
    }

    #[test]
    fn fail_garbage_answers_are_bad_responses() {
        for bad in [json!(12), json!("-1"), json!("1e3"), json!("18446744073709551616")] {
            let e = u64_str("get_stake", &bad).unwrap_err();
            assert!(matches!(e, AdapterError::BadResponse { .. }), "{e}");
        }
        assert!(view_u64("get_stake", &[json!("1")], 2).is_err());
        assert!(committed(&json!({"type": "block_metadata_transaction"})).is_err());
        assert!(active_validators(&json!({})).is_err());
        assert!(active_validators(&json!({"active_validators": [{"addr": "0x1"}]})).is_err());
        assert!(decode_payload("zz", "0x00").is_err());
        assert!(decode_payload("00", "0x00").is_err());
        assert!(address("pool", "not an address").is_err());
    }

    /// A fuzz input (`fuzz/artifacts`, found by `adapter_answers`): a script transaction with
    /// a multi-agent authenticator decodes, but the SDK re-encodes its u128 argument shorter;
    /// it is no transaction this adapter signs and is refused as such.
    #[test]
    fn fail_payloads_this_adapter_never_signs_are_refused() {
        let bytes = hex::decode("e450d38c00000032323232253232326b32323232323232ffffffffffffffff010100007a00000000000002020202020202020000000000000000000000000000000000000000000000020202020202020202020202820202020202020202020202020200e450d38c00000032323232320202020202020202020202020200e450d38c0000ffffffffffffffff010100007a00000000000000000000000000000000000000").unwrap();
        let e = decode_signed(&bytes).unwrap_err();
        assert!(
            matches!(e, AdapterError::BadInput { .. }) && e.to_string().contains("entry-function"),
            "{e}"
        );
    }

    #[test]
    fn success_performance_from_proposals() {
        let d = json!({"validators": [{"successful_proposals": "90", "failed_proposals": "10"}]});
        assert_eq!(performance_bps(&d, 0), 9_000);
        assert_eq!(performance_bps(&d, 5), 10_000);
    }
}

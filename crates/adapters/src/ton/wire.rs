//! TON wire formats the adapter writes and reads: addresses, the wallet v4r2 external
//! message (through `ton-contracts`), its normalized hash (TEP-467), text-comment bodies,
//! get-method stacks and config parameters as toncenter returns them.
//!
//! ```text
//!  external-in message  ext_in_msg_info$10 src:addr_none dest:<wallet> import_fee:0
//!                       init:(Maybe StateInit) body:(Either X ^X)
//!  wallet v4r2 body     signature:bits512 ‖ subwallet_id:uint32 ‖ valid_until:uint32 ‖
//!                       seqno:uint32 ‖ op:uint8 (0 = send) ‖ (mode:uint8 ‖ ^message)*
//!                       signature = Ed25519(hash(cell after the signature))
//!  normalized hash      the same message with src addr_none, import_fee 0, no init and
//!                       the body as a reference (TEP-467): toncenter's message_hash_norm
//!  comment              op:uint32 = 0 ‖ UTF-8 text (the nominator pool reads "d" / "w")
//! ```

use std::sync::Arc;

use base64::Engine as _;
use num_bigint::BigUint;
use serde_json::Value;
use tlb_ton::action::SendMsgAction;
use tlb_ton::bits::bitvec::{order::Msb0, vec::BitVec};
use tlb_ton::bits::de::BitReaderExt;
use tlb_ton::bits::ser::BitWriterExt;
use tlb_ton::bits::NoArgs;
use tlb_ton::message::{CommonMsgInfo, ExternalInMsgInfo, Message};
use tlb_ton::ser::{CellSerialize, CellSerializeExt};
use tlb_ton::{BagOfCells, BagOfCellsArgs, Cell, MsgAddress, Ref};
use ton_contracts::wallet::v4r2::V4R2;
use ton_contracts::wallet::WalletVersion;

use crate::error::{AdapterError, Result};

const CHAIN: &str = "ton";

/// Wallet v4r2's default subwallet id for the basechain (698983191 = 0x29a9a317).
pub const DEFAULT_WALLET_ID: u32 = V4R2::DEFAULT_WALLET_ID;

/// Send mode of our wallet messages: pay forward fees separately (+1) and ignore action
/// errors (+2), what every wallet app sends (docs.ton.org, message modes).
pub const SEND_MODE: u8 = 3;

/// A TON address from its raw form `wc:hex` or its user-friendly base64(url) form
/// (`EQ…`, `UQ…`, `kQ…`, `0Q…`).
///
/// # Errors
/// [`AdapterError::BadInput`] naming `what` for anything else.
pub fn parse_address(what: &str, s: &str) -> Result<MsgAddress> {
    let s = s.trim();
    let parsed = if s.contains(':') {
        MsgAddress::from_hex(s).map_err(|e| e.to_string())
    } else {
        MsgAddress::from_base64_url(s)
            .or_else(|_| MsgAddress::from_base64_std(s))
            .map_err(|e| e.to_string())
    };
    parsed.map_err(|e| AdapterError::bad_input(CHAIN, format!("{what} {s:?} is not a TON address: {e}")))
}

/// The raw form `wc:hex` (lower-case), as the adapter names validators and accounts.
pub fn raw(a: &MsgAddress) -> String {
    format!("{}:{}", a.workchain_id, hex::encode(a.address))
}

/// The wallet v4r2 address of `public_key` with `wallet_id` in the basechain:
/// hash(StateInit{code, data}).
///
/// # Errors
/// [`AdapterError::Signer`] when the state init cannot be built (never for valid keys).
pub fn wallet_address(wallet_id: u32, public_key: [u8; 32]) -> Result<MsgAddress> {
    MsgAddress::derive(0, V4R2::state_init(wallet_id, public_key))
        .map_err(|e| AdapterError::Signer(format!("wallet address: {e}")))
}

/// A text comment body: 32 zero bits then the UTF-8 bytes (one cell; ≤ 123 bytes).
pub fn comment(text: &str) -> Cell {
    let mut bytes = vec![0u8; 4];
    bytes.extend_from_slice(text.as_bytes());
    Cell {
        is_exotic: false,
        data: BitVec::<u8, Msb0>::from_vec(bytes),
        references: Vec::new(),
    }
}

/// One outgoing internal message for the wallet to send: `nanotons` to `dst`,
/// bounceable when `bounce`, with `body` (or none).
///
/// # Errors
/// [`AdapterError::Signer`] when the message does not serialize.
pub fn transfer(dst: MsgAddress, nanotons: u128, bounce: bool, body: Option<Cell>) -> Result<SendMsgAction> {
    let msg = Message::transfer(dst, BigUint::from(nanotons), bounce);
    let message = match body {
        None => msg.normalize(),
        Some(b) => Message {
            info: msg.info,
            init: None::<tlb_ton::state_init::StateInit>,
            body: b,
        }
        .normalize(),
    }
    .map_err(|e| AdapterError::Signer(format!("internal message: {e}")))?;
    Ok(SendMsgAction {
        mode: SEND_MODE,
        message,
    })
}

/// A signed external message, ready to send.
#[derive(Debug, Clone)]
pub struct SignedExternal {
    /// The base64 BoC toncenter takes (`boc`).
    pub boc: String,
    /// Its normalized hash, hex (toncenter's `message_hash_norm`).
    pub hash_norm: String,
}

/// The wallet v4r2 body to sign: its cell hash is what the key signs.
///
/// # Errors
/// [`AdapterError::Signer`] when it does not serialize.
pub fn sign_body(
    wallet_id: u32,
    valid_until: u32,
    seqno: u32,
    msgs: Vec<SendMsgAction>,
) -> Result<(<V4R2 as WalletVersion>::SignBody, [u8; 32])> {
    let body = V4R2::create_sign_body(wallet_id, valid_until, seqno, msgs);
    let hash = body
        .to_cell(NoArgs::EMPTY)
        .map_err(|e| AdapterError::Signer(format!("wallet body: {e}")))?
        .hash();
    Ok((body, hash))
}

/// The external message carrying the signed `body` to `wallet`, with the wallet's state
/// init when it is not deployed yet (`init`), as a BoC and its normalized hash.
///
/// # Errors
/// [`AdapterError::Signer`] when it does not serialize.
pub fn external(
    wallet: MsgAddress,
    body: <V4R2 as WalletVersion>::SignBody,
    signature: [u8; 64],
    init: Option<(u32, [u8; 32])>,
) -> Result<SignedExternal> {
    let ser = |e: tlb_ton::ser::CellBuilderError| AdapterError::Signer(format!("external message: {e}"));
    let body = V4R2::wrap_signed_external(body, signature)
        .to_cell(NoArgs::EMPTY)
        .map_err(ser)?;
    let info = CommonMsgInfo::ExternalIn(ExternalInMsgInfo {
        src: MsgAddress::NULL,
        dst: wallet,
        import_fee: BigUint::ZERO,
    });
    let msg = Message {
        info: info.clone(),
        init: init.map(|(id, pk)| V4R2::state_init(id, pk)),
        body: body.clone(),
    };
    let cell = msg.to_cell(()).map_err(ser)?;
    let boc = BagOfCells::from_root(cell)
        .serialize(BagOfCellsArgs {
            has_idx: false,
            has_crc32c: true,
        })
        .map_err(|e| AdapterError::Signer(format!("BoC: {e}")))?;
    Ok(SignedExternal {
        boc: base64::engine::general_purpose::STANDARD.encode(boc),
        hash_norm: hex::encode(normalized_hash(&info, &body).map_err(ser)?),
    })
}

/// TEP-467: hash of ext_in_msg_info (src addr_none, import_fee 0) ‖ init nothing ‖ body
/// as a reference.
fn normalized_hash(info: &CommonMsgInfo, body: &Cell) -> std::result::Result<[u8; 32], tlb_ton::ser::CellBuilderError> {
    let info = match info {
        CommonMsgInfo::ExternalIn(i) => CommonMsgInfo::ExternalIn(ExternalInMsgInfo {
            src: MsgAddress::NULL,
            dst: i.dst,
            import_fee: BigUint::ZERO,
        }),
        other => other.clone(),
    };
    let mut b = Cell::builder();
    info.store(&mut b, ())?;
    b.pack(false, ())? // init: nothing
        .pack(true, ())? // body: ^X
        .store_as::<_, Ref>(Arc::new(body.clone()), ())?;
    Ok(b.into_cell().hash())
}

/// The root cell of a base64 BoC (`what` names it in errors).
///
/// # Errors
/// [`AdapterError::BadResponse`] for bad base64, a bad BoC or not one root.
pub fn boc_root(what: &str, b64: &str) -> Result<Arc<Cell>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| AdapterError::bad_response(CHAIN, format!("{what}: not base64: {e}")))?;
    BagOfCells::deserialize(bytes)
        .map_err(|e| AdapterError::bad_response(CHAIN, format!("{what}: not a BoC: {e}")))?
        .into_single_root()
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: a BoC of more than one root")))
}

/// The seqno a signed wallet v4r2 external message (base64 BoC) carries: the body's bits
/// 576..608 (after the signature, subwallet id and valid_until).
///
/// # Errors
/// [`AdapterError::BadInput`] for a payload that is not such a message.
pub fn external_seqno(boc_b64: &str) -> Result<u32> {
    let bad = |m: String| AdapterError::bad_input(CHAIN, format!("signed payload: {m}"));
    let root = boc_root("signed payload", boc_b64).map_err(|e| bad(e.to_string()))?;
    let msg: Message<Cell, Cell, Cell> = root.parse_fully(()).map_err(|e| bad(e.to_string()))?;
    let bits = msg
        .body
        .data
        .get(576..608)
        .ok_or_else(|| bad("body shorter than a wallet v4r2 header".into()))?;
    Ok(bits.iter().by_vals().fold(0u32, |acc, b| (acc << 1) | u32::from(b)))
}

/// `ConfigParam 15`: (validators_elected_for, elections_start_before,
/// elections_end_before, stake_held_for), seconds (block.tlb `validators_timing`).
///
/// # Errors
/// [`AdapterError::BadResponse`] for a cell that is not four uint32.
pub fn config_15(cell: &Cell) -> Result<[u32; 4]> {
    let mut p = cell.parser();
    let mut out = [0u32; 4];
    for (i, v) in out.iter_mut().enumerate() {
        *v = p
            .unpack::<u32>(())
            .map_err(|e| AdapterError::bad_response(CHAIN, format!("ConfigParam 15 field {i}: {e}")))?;
    }
    Ok(out)
}

/// `ConfigParam 34` (the current validator set): (utime_since, utime_until), Unix
/// seconds (block.tlb `validators_ext#12`, or `validators#11`).
///
/// # Errors
/// [`AdapterError::BadResponse`] for another tag or a short cell.
pub fn config_34(cell: &Cell) -> Result<(u32, u32)> {
    let bad = |e: String| AdapterError::bad_response(CHAIN, format!("ConfigParam 34: {e}"));
    let mut p = cell.parser();
    let tag = p.unpack::<u8>(()).map_err(|e| bad(e.to_string()))?;
    if tag != 0x12 && tag != 0x11 {
        return Err(bad(format!("tag {tag:#x} is not a validator set")));
    }
    let since = p.unpack::<u32>(()).map_err(|e| bad(e.to_string()))?;
    let until = p.unpack::<u32>(()).map_err(|e| bad(e.to_string()))?;
    if until <= since {
        return Err(bad(format!("utime_until {until} is not after utime_since {since}")));
    }
    Ok((since, until))
}

/// `ConfigParam 19`: the network's global id (mainnet −239, testnet −3).
///
/// # Errors
/// [`AdapterError::BadResponse`] for a short cell.
pub fn config_19(cell: &Cell) -> Result<i32> {
    cell.parser()
        .unpack::<i32>(())
        .map_err(|e| AdapterError::bad_response(CHAIN, format!("ConfigParam 19: {e}")))
}

/// One toncenter get-method stack entry as an unsigned integer (`{"type":"num","value":
/// "0x…"}`, hex, optionally negative — refused here).
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` for another type, a negative number or
/// one past u128.
pub fn stack_uint(what: &str, v: &Value) -> Result<u128> {
    let bad = |m: String| AdapterError::bad_response(CHAIN, format!("{what}: {m}: {v}"));
    if v.get("type").and_then(Value::as_str) != Some("num") {
        return Err(bad("not a number entry".into()));
    }
    let s = v
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no value".into()))?;
    if s.starts_with('-') {
        return Err(bad("negative".into()));
    }
    let hex = s.strip_prefix("0x").ok_or_else(|| bad("not 0x hex".into()))?;
    u128::from_str_radix(hex, 16).map_err(|e| bad(e.to_string()))
}

/// The get-method argument for a 256-bit account id (`{"type":"num","value":"0x…"}`).
pub fn stack_arg_address(a: &MsgAddress) -> Value {
    serde_json::json!({"type": "num", "value": format!("0x{}", hex::encode(a.address))})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_comment_is_op_zero_then_text() {
        let c = comment("d");
        assert_eq!(c.data.len(), 40);
        let mut p = c.parser();
        assert_eq!(p.unpack::<u32>(()).unwrap(), 0);
        assert_eq!(p.unpack::<u8>(()).unwrap(), b'd');
    }

    #[test]
    fn success_addresses_parse_in_both_forms() {
        let a = parse_address(
            "pool",
            "-1:3333333333333333333333333333333333333333333333333333333333333333",
        )
        .unwrap();
        assert_eq!(a.workchain_id, -1);
        let friendly = a.to_base64_url();
        assert_eq!(parse_address("pool", &friendly).unwrap(), a);
        assert_eq!(
            raw(&a),
            "-1:3333333333333333333333333333333333333333333333333333333333333333"
        );
    }

    #[test]
    fn fail_garbage_address_names_the_field() {
        let e = parse_address("pool", "not-an-address").unwrap_err().to_string();
        assert!(e.contains("pool") && e.contains("not a TON address"), "{e}");
    }

    #[test]
    fn success_stack_numbers_decode_and_refuse_garbage() {
        assert_eq!(
            stack_uint("x", &serde_json::json!({"type":"num","value":"0x2a"})).unwrap(),
            42
        );
        assert!(stack_uint("x", &serde_json::json!({"type":"num","value":"-0x1"})).is_err());
        assert!(stack_uint("x", &serde_json::json!({"type":"cell","value":"te6"})).is_err());
        assert!(stack_uint(
            "x",
            &serde_json::json!({"type":"num","value":"0x1ffffffffffffffffffffffffffffffffff"})
        )
        .is_err());
    }

    #[test]
    fn success_external_message_round_trips_and_hash_ignores_init() {
        let pk = [7u8; 32];
        let wallet = wallet_address(DEFAULT_WALLET_ID, pk).unwrap();
        let pool = parse_address(
            "pool",
            "-1:3333333333333333333333333333333333333333333333333333333333333333",
        )
        .unwrap();
        let msgs = vec![transfer(pool, 5_000_000_000, true, Some(comment("d"))).unwrap()];
        let (body, _) = sign_body(DEFAULT_WALLET_ID, 1_000, 0, msgs.clone()).unwrap();
        let with_init = external(wallet, body, [1u8; 64], Some((DEFAULT_WALLET_ID, pk))).unwrap();
        let (body, _) = sign_body(DEFAULT_WALLET_ID, 1_000, 0, msgs).unwrap();
        let without = external(wallet, body, [1u8; 64], None).unwrap();
        assert_ne!(with_init.boc, without.boc);
        assert_eq!(
            with_init.hash_norm, without.hash_norm,
            "TEP-467: init does not change the hash"
        );
        assert_eq!(external_seqno(&without.boc).unwrap(), 0);
        let (body, _) = sign_body(DEFAULT_WALLET_ID, 1_000, 77, vec![]).unwrap();
        assert_eq!(
            external_seqno(&external(wallet, body, [1u8; 64], None).unwrap().boc).unwrap(),
            77
        );
        let root = boc_root("boc", &without.boc).unwrap();
        let m: Message = root.parse_fully(()).unwrap();
        assert!(matches!(m.info, CommonMsgInfo::ExternalIn(ref i) if i.dst == wallet));
    }
}

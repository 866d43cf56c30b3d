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

/// A 256-bit stack number (an account id, a public key) as 32 big-endian bytes.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` for another type, a negative number or
/// more than 256 bits.
pub fn stack_u256(what: &str, v: &Value) -> Result<[u8; 32]> {
    let bad = |m: &str| AdapterError::bad_response(CHAIN, format!("{what}: {m}: {v}"));
    if v.get("type").and_then(Value::as_str) != Some("num") {
        return Err(bad("not a number entry"));
    }
    let s = v.get("value").and_then(Value::as_str).ok_or_else(|| bad("no value"))?;
    let hex = s.strip_prefix("0x").ok_or_else(|| bad("not 0x hex (or negative)"))?;
    if hex.len() > 64 {
        return Err(bad("more than 256 bits"));
    }
    let bytes = hex::decode(format!("{hex:0>64}")).map_err(|_| bad("not hex"))?;
    <[u8; 32]>::try_from(bytes).map_err(|_| bad("not 32 bytes"))
}

/// The entries of a stack tuple or list (`{"type":"tuple"|"list","value":[…]}`; toncenter
/// v2's `elements` too); a `null` entry is the empty list.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` for another entry.
pub fn stack_items<'a>(what: &str, v: &'a Value) -> Result<&'a [Value]> {
    match v.get("type").and_then(Value::as_str) {
        Some("null") => Ok(&[]),
        Some("tuple" | "list") => v
            .get("value")
            .or_else(|| v.get("elements"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: a tuple without entries: {v}"))),
        _ => Err(AdapterError::bad_response(
            CHAIN,
            format!("{what}: not a tuple or list: {v}"),
        )),
    }
}

/// The elements of a FunC list (`cons(x, rest)` … `nil`), as toncenter shows it: a
/// `list` entry with the elements flattened, a `null` for the empty list, or nested
/// two-entry tuples `[x, rest]` ending in `null`; a tuple that is not such a chain is
/// taken as the flat list of its entries. At most `max` elements.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` for another entry or more than `max`
/// elements.
pub fn stack_list<'a>(what: &str, v: &'a Value, max: usize) -> Result<Vec<&'a Value>> {
    let too_long = || AdapterError::bad_response(CHAIN, format!("{what}: more than {max} elements"));
    let is = |v: &Value, t: &str| v.get("type").and_then(Value::as_str) == Some(t);
    if is(v, "tuple") {
        let mut out = Vec::new();
        let mut at = v;
        while let [head, rest] = stack_items(what, at)? {
            if out.len() >= max {
                return Err(too_long());
            }
            out.push(head);
            if is(rest, "null") {
                return Ok(out);
            }
            if !is(rest, "tuple") {
                break;
            }
            at = rest;
        }
    }
    let flat: Vec<&Value> = stack_items(what, v)?.iter().collect();
    if flat.len() > max {
        return Err(too_long());
    }
    Ok(flat)
}

/// An address held in a stack slice or cell (`MsgAddressInt`, base64 BoC), as
/// single-nominator.fc's `get_roles` returns it.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` for another entry or no address.
pub fn stack_address(what: &str, v: &Value) -> Result<MsgAddress> {
    let b64 = match v.get("type").and_then(Value::as_str) {
        Some("slice" | "cell") => v.get("value").and_then(Value::as_str),
        _ => None,
    }
    .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: not a slice: {v}")))?;
    let root = boc_root(what, b64)?;
    root.parser()
        .unpack::<MsgAddress>(())
        .map_err(|e| AdapterError::bad_response(CHAIN, format!("{what}: not an address: {e}")))
}

/// One value of the elector's frozen-stake dictionary: `addr:uint256 weight:uint64
/// stake:Grams banned:Bool` (ton-blockchain/ton `crypto/smartcont/elector-code.fc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenStake {
    /// The account that sent the stake (its 256-bit id on the masterchain).
    pub addr: [u8; 32],
    /// The stake, nanotons.
    pub stake: u128,
    /// Whether a complaint banned the validator (its stake is fined).
    pub banned: bool,
}

impl<'de> tlb_ton::de::CellDeserialize<'de> for FrozenStake {
    type Args = ();

    fn parse(
        p: &mut tlb_ton::de::CellParser<'de>,
        (): Self::Args,
    ) -> std::result::Result<Self, tlb_ton::de::CellParserError<'de>> {
        let addr: [u8; 32] = p.unpack(())?;
        let _weight: u64 = p.unpack(())?;
        let stake: BigUint = p.unpack_as::<_, tlb_ton::currency::Grams>(())?;
        let banned: bool = p.unpack(())?;
        Ok(FrozenStake {
            addr,
            stake: u128::try_from(&stake).unwrap_or(u128::MAX),
            banned,
        })
    }
}

/// The frozen stakes of one past election: its stack entry is the dictionary's root
/// cell (`Hashmap 256`, keyed by validator public key) or null when empty.
///
/// # Errors
/// [`AdapterError::BadResponse`] for another entry or a cell that is not such a
/// dictionary.
pub fn frozen_stakes(v: &Value) -> Result<Vec<FrozenStake>> {
    match v.get("type").and_then(Value::as_str) {
        Some("null") => Ok(Vec::new()),
        Some("cell" | "slice") => {
            let b64 = v.get("value").and_then(Value::as_str).unwrap_or_default();
            let root = boc_root("frozen_dict", b64)?;
            let entries: Vec<(BitVec<u8, Msb0>, FrozenStake)> = root
                .parser()
                .parse_as::<_, tlb_ton::hashmap::Hashmap<tlb_ton::Same>>((256, ()))
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("frozen_dict: not a Hashmap 256: {e}")))?;
            Ok(entries.into_iter().map(|(_, f)| f).collect())
        }
        _ => Err(AdapterError::bad_response(
            CHAIN,
            format!("frozen_dict: not a cell: {v}"),
        )),
    }
}

/// single-nominator.fc's owner withdrawal body: `op:uint32 = 0x1000 ‖ query_id:uint64 ‖
/// amount:Coins`.
///
/// # Errors
/// [`AdapterError::Signer`] when it does not serialize (never for a u128 amount).
pub fn single_withdraw_body(query_id: u64, nanotons: u128) -> Result<Cell> {
    let mut b = Cell::builder();
    b.pack(SINGLE_OP_WITHDRAW, ())
        .and_then(|b| b.pack(query_id, ()))
        .and_then(|b| b.pack_as::<_, &tlb_ton::currency::Grams>(&BigUint::from(nanotons), ()))
        .map_err(|e| AdapterError::Signer(format!("withdraw body: {e}")))?;
    Ok(b.into_cell())
}

/// The single-nominator pool's owner withdrawal op (`OP::WITHDRAW`).
pub const SINGLE_OP_WITHDRAW: u32 = 0x1000;

/// `ConfigParam 1`: the elector's account id on the masterchain.
///
/// # Errors
/// [`AdapterError::BadResponse`] for a short cell.
pub fn config_1(cell: &Cell) -> Result<MsgAddress> {
    let address: [u8; 32] = cell
        .parser()
        .unpack(())
        .map_err(|e| AdapterError::bad_response(CHAIN, format!("ConfigParam 1: {e}")))?;
    Ok(MsgAddress {
        workchain_id: -1,
        address,
    })
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
    fn success_stack_lists_read_flat_cons_and_null() {
        use serde_json::json;
        let n = |x: u64| json!({"type": "num", "value": format!("{x:#x}")});
        let flat = json!({"type": "list", "value": [n(1), n(2), n(3)]});
        let got: Vec<u128> = stack_list("l", &flat, 8)
            .unwrap()
            .into_iter()
            .map(|v| stack_uint("n", v).unwrap())
            .collect();
        assert_eq!(got, vec![1, 2, 3]);
        // cons(1, cons(2, nil)) as nested pairs
        let cons = json!({"type": "tuple", "value": [n(1), {"type": "tuple", "value": [n(2), {"type": "null"}]}]});
        assert_eq!(stack_list("l", &cons, 8).unwrap().len(), 2);
        assert!(stack_list("l", &json!({"type": "null"}), 8).unwrap().is_empty());
        assert!(stack_list("l", &flat, 2)
            .unwrap_err()
            .to_string()
            .contains("more than 2"));
        assert!(stack_list("l", &n(1), 8).is_err());
    }

    #[test]
    fn success_u256_addresses_and_withdraw_bodies_decode() {
        use serde_json::json;
        let v = json!({"type": "num", "value": format!("0x{}", "ab".repeat(32))});
        assert_eq!(stack_u256("a", &v).unwrap(), [0xab; 32]);
        assert_eq!(stack_u256("a", &json!({"type": "num", "value": "0x1"})).unwrap()[31], 1);
        assert!(stack_u256("a", &json!({"type": "num", "value": format!("0x1{}", "0".repeat(64))})).is_err());
        assert!(stack_u256("a", &json!({"type": "num", "value": "-0x1"})).is_err());
        // an address in a slice, as get_roles returns it
        let a = parse_address("a", &format!("-1:{}", "cd".repeat(32))).unwrap();
        let mut b = Cell::builder();
        b.pack(a, ()).unwrap();
        let boc = BagOfCells::from_root(b.into_cell())
            .serialize(BagOfCellsArgs {
                has_idx: false,
                has_crc32c: true,
            })
            .unwrap();
        let slice = json!({"type": "slice", "value": base64::engine::general_purpose::STANDARD.encode(boc)});
        assert_eq!(stack_address("owner", &slice).unwrap(), a);
        assert!(stack_address("owner", &v).is_err());
        assert!(frozen_stakes(&json!({"type": "null"})).unwrap().is_empty());
        assert!(frozen_stakes(&json!({"type": "cell", "value": "bm90IGEgYm9j"})).is_err());
        // op 0x1000 ‖ query_id ‖ Coins
        let body = single_withdraw_body(7, 5 * 1_000_000_000).unwrap();
        let mut p = body.parser();
        assert_eq!(p.unpack::<u32>(()).unwrap(), SINGLE_OP_WITHDRAW);
        assert_eq!(p.unpack::<u64>(()).unwrap(), 7);
        let amount: BigUint = p.unpack_as::<_, tlb_ton::currency::Grams>(()).unwrap();
        assert_eq!(amount, BigUint::from(5_000_000_000u64));
        assert_eq!(p.bits_left(), 0);
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

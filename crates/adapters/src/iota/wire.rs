//! The IOTA adapter's pure part: addresses, the objects it reads (`Coin<IOTA>`,
//! `StakedIota`), the programmable transactions it builds, execution statuses, signatures,
//! payloads, events and the validator set read over GraphQL. No I/O, so every rule here is
//! unit-tested.
//!
//! Sources: iota-framework `staking_pool.move` (`StakedIota { id, pool_id,
//! stake_activation_epoch, principal }`), `validator.move` (`UnstakingRequestEvent`),
//! `iota_system.move` (`request_add_stake`, `request_withdraw_stake`), `coin.move`
//! (`Coin { id, balance }`); docs.iota.org "Transaction Authentication" (intent `[0,0,0]`,
//! flag ‖ signature ‖ public key); IOTA's GraphQL schema (iota-sdk-graphql-client-build
//! `schema.graphql`: `Epoch`, `SystemParameters`, `Validator`).

use iota_sdk::types::{
    Address, Argument, Command, Ed25519PublicKey, Ed25519Signature, ExecutionError, ExecutionStatus, GasPayment,
    Identifier, Input, MergeCoins, MoveCall, ObjectDigest, ObjectId, ObjectReference, ProgrammableTransaction,
    SimpleSignature, SplitCoins, StructTag, Transaction, TransactionEvents, TransactionExpiration, TransactionKind,
    TransactionV1, UserSignature, Version,
};
use serde_json::Value;

use softstake_core::validator::ValidatorCandidate;
use softstake_core::{Amount, Timestamp};

use crate::error::{AdapterError, Result};
use crate::move_staking::StakeObject;

/// The adapter's chain name.
pub const CHAIN: &str = "iota";
/// Most the adapter lets one transaction's gas budget be, nanos (50 IOTA, the protocol's
/// `max_tx_gas`).
pub const MAX_GAS_BUDGET_NANOS: u64 = 50_000_000_000;
/// Validators asked per GraphQL page (the public servers' default `maxPageSize`).
pub const VALIDATORS_PAGE: u32 = 50;

/// The GraphQL query of the epoch's state the adapter reads: number, start, reference gas
/// price, duration and one page of the active validators (`$after`: the page cursor).
pub const EPOCH_QUERY: &str = "query SoftstakeEpoch($after: String) { epoch { epochId startTimestamp \
    referenceGasPrice systemParameters { durationMs } validatorSet { activeValidators(first: 50, after: $after) \
    { pageInfo { hasNextPage endCursor } nodes { address { address } name stakingPoolId commissionRate \
    stakingPoolIotaBalance poolTokenBalance stakingPoolActivationEpoch } } } } }";

/// The address of an Ed25519 public key: Blake2b-256(key), with no flag byte (unlike Sui;
/// iota-sdk-types `Ed25519PublicKey::derive_address`).
pub fn address_of(public_key: &[u8; 32]) -> Address {
    Ed25519PublicKey::new(*public_key).derive_address()
}

fn bad(what: impl Into<String>) -> AdapterError {
    AdapterError::bad_response(CHAIN, what)
}

/// An IOTA coin at a version: what a transaction names to spend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinRef {
    /// Object id.
    pub id: ObjectId,
    /// Version.
    pub version: Version,
    /// Digest.
    pub digest: ObjectDigest,
    /// Balance, nanos.
    pub balance: u64,
}

impl CoinRef {
    fn reference(&self) -> ObjectReference {
        ObjectReference::new(self.id, self.version, self.digest)
    }
}

/// A `0x3::staking_pool::StakedIota` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakedIota {
    /// Object id.
    pub id: ObjectId,
    /// Version.
    pub version: Version,
    /// Digest.
    pub digest: ObjectDigest,
    /// The staking pool it belongs to.
    pub pool_id: ObjectId,
    /// First epoch it earns in.
    pub stake_activation_epoch: u64,
    /// Its principal, nanos.
    pub principal: u64,
}

impl StakedIota {
    fn reference(&self) -> ObjectReference {
        ObjectReference::new(self.id, self.version, self.digest)
    }
}

impl StakeObject for StakedIota {
    fn principal(&self) -> u64 {
        self.principal
    }
    fn activation_epoch(&self) -> u64 {
        self.stake_activation_epoch
    }
    fn id_bytes(&self) -> [u8; 32] {
        self.id.into_bytes()
    }
}

/// A listed object of the treasury, as the node sent it (full BCS).
fn object_of(o: &iota_sdk::grpc_types::v1::object::Object) -> Result<iota_sdk::types::Object> {
    o.object()
        .map_err(|e| bad(format!("an owned object does not decode: {e}")))
}

/// A listed coin object as a [`CoinRef`].
///
/// # Errors
/// [`AdapterError::BadResponse`] for an object that does not decode or is not a
/// `Coin<IOTA>`.
pub fn coin_ref(o: &iota_sdk::grpc_types::v1::object::Object) -> Result<CoinRef> {
    let obj = object_of(o)?;
    let ms = obj
        .as_opt_struct()
        .filter(|s| s.struct_tag().is_gas_coin())
        .ok_or_else(|| bad(format!("object {} is not a Coin<IOTA>", obj.id())))?;
    let (id, balance): (ObjectId, u64) =
        bcs::from_bytes(ms.contents()).map_err(|e| bad(format!("coin {} contents: {e}", obj.id())))?;
    if id != obj.id() {
        return Err(bad(format!("coin {} holds the id {id}", obj.id())));
    }
    let r = obj.object_ref();
    Ok(CoinRef {
        id,
        version: r.version,
        digest: r.digest,
        balance,
    })
}

/// A listed `StakedIota` object, decoded from its BCS contents.
///
/// # Errors
/// [`AdapterError::BadResponse`] for an object that does not decode, is of another type,
/// or holds another id.
pub fn staked_iota(o: &iota_sdk::grpc_types::v1::object::Object) -> Result<StakedIota> {
    let obj = object_of(o)?;
    let ms = obj
        .as_opt_struct()
        .filter(|s| *s.struct_tag() == StructTag::new_staked_iota())
        .ok_or_else(|| bad(format!("object {} is not a StakedIota", obj.id())))?;
    let (id, pool_id, stake_activation_epoch, principal): (ObjectId, ObjectId, u64, u64) =
        bcs::from_bytes(ms.contents()).map_err(|e| bad(format!("StakedIota {} contents: {e}", obj.id())))?;
    if id != obj.id() {
        return Err(bad(format!("StakedIota {} holds the id {id}", obj.id())));
    }
    let r = obj.object_ref();
    Ok(StakedIota {
        id,
        version: r.version,
        digest: r.digest,
        pool_id,
        stake_activation_epoch,
        principal,
    })
}

/// What a transaction does, before gas and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Merge the coins into the gas coin, split `amount` off it and stake it.
    Stake {
        /// The gas coin.
        gas: CoinRef,
        /// Coins merged into it first.
        merge: Vec<CoinRef>,
        /// Nanos to stake.
        amount: u64,
        /// The validator.
        validator: Address,
    },
    /// Withdraw the stakes, each whole (`None`) or the part given (split first).
    Unstake {
        /// The gas coin.
        gas: CoinRef,
        /// Coins merged into it first.
        merge: Vec<CoinRef>,
        /// The stakes and the part of each to withdraw.
        stakes: Vec<(StakedIota, Option<u64>)>,
    },
}

/// Inputs and commands of a programmable transaction as they are added.
#[derive(Default)]
struct Ptb {
    inputs: Vec<Input>,
    commands: Vec<Command>,
}

impl Ptb {
    fn input(&mut self, i: Input) -> Result<Argument> {
        self.inputs.push(i);
        u16::try_from(self.inputs.len() - 1)
            .map(Argument::Input)
            .map_err(|_| AdapterError::bad_input(CHAIN, "more than 65 535 inputs"))
    }

    fn pure<T: serde::Serialize>(&mut self, v: &T) -> Result<Argument> {
        let bytes = bcs::to_bytes(v).map_err(|e| AdapterError::bad_input(CHAIN, format!("BCS: {e}")))?;
        self.input(Input::Pure(bytes))
    }

    fn command(&mut self, c: Command) -> Result<u16> {
        self.commands.push(c);
        u16::try_from(self.commands.len() - 1).map_err(|_| AdapterError::bad_input(CHAIN, "more than 65 535 commands"))
    }

    fn call(&mut self, module: &'static str, function: &'static str, arguments: Vec<Argument>) -> Result<u16> {
        self.command(Command::MoveCall(MoveCall {
            package: ObjectId::SYSTEM,
            module: Identifier::from_static(module),
            function: Identifier::from_static(function),
            type_arguments: Vec::new(),
            arguments,
        }))
    }
}

impl Plan {
    fn gas(&self) -> (&CoinRef, &[CoinRef]) {
        match self {
            Plan::Stake { gas, merge, .. } | Plan::Unstake { gas, merge, .. } => (gas, merge),
        }
    }

    /// The most gas this transaction can be given: what the coins hold beyond the stake,
    /// at most the gas coin's balance and [`MAX_GAS_BUDGET_NANOS`].
    pub fn gas_ceiling(&self) -> u64 {
        let (gas, merge) = self.gas();
        let total = merge.iter().fold(gas.balance, |a, c| a.saturating_add(c.balance));
        let staked = match self {
            Plan::Stake { amount, .. } => *amount,
            Plan::Unstake { .. } => 0,
        };
        // the gas coin itself must cover the budget (merged coins join it only as the
        // transaction runs)
        total.saturating_sub(staked).min(gas.balance).min(MAX_GAS_BUDGET_NANOS)
    }

    /// The transaction, valid up to the end of `epoch`.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a transaction of more than 65 535 inputs or commands.
    pub fn build(&self, sender: Address, price: u64, budget: u64, epoch: u64) -> Result<Transaction> {
        let mut p = Ptb::default();
        let (gas, merge) = self.gas();
        if !merge.is_empty() {
            let coins = merge
                .iter()
                .map(|c| p.input(Input::ImmutableOrOwned(c.reference())))
                .collect::<Result<Vec<_>>>()?;
            p.command(Command::MergeCoins(MergeCoins {
                coin: Argument::Gas,
                coins_to_merge: coins,
            }))?;
        }
        let system = p.input(Input::IOTA_SYSTEM_MUTABLE)?;
        match self {
            Plan::Stake { amount, validator, .. } => {
                let amount = p.pure(amount)?;
                let split = p.command(Command::SplitCoins(SplitCoins {
                    coin: Argument::Gas,
                    amounts: vec![amount],
                }))?;
                let validator = p.pure(validator)?;
                p.call(
                    "iota_system",
                    "request_add_stake",
                    vec![system, Argument::NestedResult(split, 0), validator],
                )?;
            }
            Plan::Unstake { stakes, .. } => {
                for (s, part) in stakes {
                    let obj = p.input(Input::ImmutableOrOwned(s.reference()))?;
                    let staked = match part {
                        None => obj,
                        Some(part) => {
                            let part = p.pure(part)?;
                            Argument::Result(p.call("staking_pool", "split", vec![obj, part])?)
                        }
                    };
                    p.call("iota_system", "request_withdraw_stake", vec![system, staked])?;
                }
            }
        }
        Ok(Transaction::V1(TransactionV1 {
            kind: TransactionKind::Programmable(ProgrammableTransaction {
                inputs: p.inputs,
                commands: p.commands,
            }),
            sender,
            gas_payment: GasPayment {
                objects: vec![gas.reference()],
                owner: sender,
                price,
                budget,
            },
            expiration: TransactionExpiration::Epoch(epoch),
        }))
    }
}

/// The V1 body of a transaction (the only version the adapter builds).
///
/// # Errors
/// [`AdapterError::BadInput`] for a transaction of another version.
pub fn v1(tx: &Transaction) -> Result<&TransactionV1> {
    match tx {
        Transaction::V1(v1) => Ok(v1),
        #[allow(unreachable_patterns)]
        _ => Err(AdapterError::bad_input(CHAIN, "a transaction of an unknown version")),
    }
}

/// The Move constant of an abort of the staking modules (iota-framework `validator_set.move`,
/// `staking_pool.move`), `None` for a code the adapter does not know.
pub fn abort_constant(module: &str, code: u64) -> Option<&'static str> {
    Some(match (module, code) {
        ("validator_set", 3) => "ENoPoolFound",
        ("validator_set", 4) => "ENotAValidator",
        ("validator_set", 10) => "EStakingBelowThreshold",
        ("validator_set", 13) => "EValidatorSetEmpty",
        ("staking_pool", 3) => "EInsufficientIotaTokenBalance",
        ("staking_pool", 10) => "EDelegationToInactivePool",
        ("staking_pool", 18) => "EStakedIotaBelowThreshold",
        _ => return None,
    })
}

/// Why an execution failed (`None` when it succeeded): the error, and for a Move abort its
/// module, constant and code (`validator_set::EStakingBelowThreshold (10)`).
pub fn failure(status: &ExecutionStatus) -> Option<String> {
    let ExecutionStatus::Failure { error, command } = status else {
        return None;
    };
    let at = command.map(|c| format!(" in command {c}")).unwrap_or_default();
    Some(match error {
        ExecutionError::MoveAbort { location, code } => {
            let module = location.module.as_str();
            match abort_constant(module, *code) {
                Some(c) => format!("MoveAbort {module}::{c} ({code}){at}"),
                None => format!("MoveAbort {module} code {code}{at}"),
            }
        }
        other => format!("{other:?}{at}"),
    })
}

/// The user signature of an Ed25519 `signature` by `public_key`.
pub fn user_signature(signature: [u8; 64], public_key: [u8; 32]) -> UserSignature {
    UserSignature::Simple(SimpleSignature::Ed25519 {
        signature: Ed25519Signature::new(signature),
        public_key: Ed25519PublicKey::new(public_key),
    })
}

/// The journal's payload: base64 of the BCS transaction, `.`, base64 of the signature
/// (flag ‖ signature ‖ public key); see [`crate::move_staking::encode_payload`].
///
/// # Errors
/// [`AdapterError::BadInput`] when the transaction does not serialize.
pub fn encode_payload(tx: &Transaction, sig: &UserSignature) -> Result<String> {
    crate::move_staking::encode_payload(CHAIN, tx, &sig.to_bytes())
}

/// The transaction and signature of a payload of [`encode_payload`].
///
/// # Errors
/// [`AdapterError::BadInput`] for a payload that is not one, naming the part.
pub fn decode_payload(payload: &str) -> Result<(Transaction, UserSignature)> {
    crate::move_staking::decode_payload(CHAIN, payload, |b| UserSignature::from_bytes(b))
}

/// `0x3::validator::UnstakingRequestEvent`, as BCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct UnstakingRequestEvent {
    /// The pool.
    pub pool_id: ObjectId,
    /// The pool's validator.
    pub validator_address: Address,
    /// Who unstaked.
    pub staker_address: Address,
    /// First epoch the stake earned in.
    pub stake_activation_epoch: u64,
    /// The epoch of the withdrawal.
    pub unstaking_epoch: u64,
    /// Principal paid back, nanos.
    pub principal_amount: u64,
    /// Reward paid with it, nanos.
    pub reward_amount: u64,
}

/// The (validator, reward nanos) of each `UnstakingRequestEvent` paid to `staker` among a
/// transaction's events.
///
/// # Errors
/// [`AdapterError::BadResponse`] for an unstaking event whose contents do not decode.
pub fn unstaking_rewards(events: &TransactionEvents, staker: &Address) -> Result<Vec<(Address, u64)>> {
    let mut out = Vec::new();
    for e in &events.0 {
        let tag = &e.struct_tag;
        if tag.address() != Address::SYSTEM
            || tag.module().as_str() != "validator"
            || tag.name().as_str() != "UnstakingRequestEvent"
        {
            continue;
        }
        let ev: UnstakingRequestEvent =
            bcs::from_bytes(&e.contents).map_err(|err| bad(format!("UnstakingRequestEvent contents: {err}")))?;
        if ev.staker_address == *staker {
            out.push((ev.validator_address, ev.reward_amount));
        }
    }
    Ok(out)
}

/// The epoch's state read over GraphQL ([`EPOCH_QUERY`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochPage {
    /// Epoch number.
    pub epoch: u64,
    /// Its start.
    pub start: Timestamp,
    /// Its reference gas price, nanos per unit.
    pub reference_gas_price: u64,
    /// Its planned length, ms.
    pub duration_ms: u64,
    /// This page's active validators.
    pub validators: Vec<ActiveValidator>,
    /// The cursor of the next page, when there is one.
    pub next: Option<String>,
}

/// An active validator as the GraphQL `Validator` type gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveValidator {
    /// Its address.
    pub address: Address,
    /// Its name.
    pub name: String,
    /// Its staking pool.
    pub pool_id: ObjectId,
    /// Commission, basis points.
    pub commission_bps: u32,
    /// IOTA in its pool, nanos.
    pub pool_iota: u64,
    /// Pool tokens issued.
    pub pool_tokens: u64,
    /// The epoch its pool became active.
    pub activation_epoch: u64,
}

fn field<'a>(v: &'a Value, path: &str) -> Result<&'a Value> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .filter(|v| !v.is_null())
        .ok_or_else(|| bad(format!("GraphQL answer without {path}")))
}

/// A `BigInt` (a decimal string) or `UInt53`/`Int` (a number) as a u64.
fn uint(v: &Value, path: &str) -> Result<u64> {
    let f = field(v, path)?;
    match f {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
    .ok_or_else(|| bad(format!("GraphQL {path} is not an unsigned integer: {f}")))
}

fn address(v: &Value, path: &str) -> Result<Address> {
    let f = field(v, path)?;
    f.as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("GraphQL {path} is not an address: {f}")))
}

/// One answer of [`EPOCH_QUERY`] (its `data`).
///
/// # Errors
/// [`AdapterError::BadResponse`] naming the field that is missing or malformed, or a zero
/// epoch duration.
pub fn epoch_page(data: &Value) -> Result<EpochPage> {
    let e = field(data, "epoch")?;
    let start = field(e, "startTimestamp")?
        .as_str()
        .ok_or_else(|| bad("GraphQL epoch.startTimestamp is not a string"))?;
    let start = Timestamp::parse_rfc3339(start).map_err(|err| bad(format!("epoch.startTimestamp {start:?}: {err}")))?;
    let duration_ms = uint(e, "systemParameters.durationMs")?;
    if duration_ms == 0 {
        return Err(bad("epoch.systemParameters.durationMs is 0"));
    }
    let conn = field(e, "validatorSet.activeValidators")?;
    let nodes = field(conn, "nodes")?
        .as_array()
        .ok_or_else(|| bad("GraphQL activeValidators.nodes is not a list"))?;
    let validators = nodes
        .iter()
        .map(|n| {
            let commission = uint(n, "commissionRate")?;
            Ok(ActiveValidator {
                address: address(n, "address.address")?,
                name: n.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                pool_id: address(n, "stakingPoolId")?.into(),
                commission_bps: u32::try_from(commission)
                    .ok()
                    .filter(|c| *c <= 10_000)
                    .ok_or_else(|| bad(format!("commission {commission} bps is over 100 %")))?,
                pool_iota: uint(n, "stakingPoolIotaBalance")?,
                pool_tokens: uint(n, "poolTokenBalance")?,
                activation_epoch: uint(n, "stakingPoolActivationEpoch").unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let more = field(conn, "pageInfo.hasNextPage")?.as_bool() == Some(true);
    let next = if more {
        Some(
            field(conn, "pageInfo.endCursor")?
                .as_str()
                .ok_or_else(|| bad("GraphQL pageInfo.endCursor is not a string"))?
                .to_string(),
        )
    } else {
        None
    };
    Ok(EpochPage {
        epoch: uint(e, "epochId")?,
        start,
        reference_gas_price: uint(e, "referenceGasPrice")?,
        duration_ms,
        validators,
        next,
    })
}

/// Each active validator as a candidate: commission, stake (the pool's IOTA), and its pool's
/// exchange-rate growth per epoch since activation relative to the median as performance
/// (a pool starts at 1 IOTA per pool token, so `iota / tokens` is its compounded reward).
pub fn candidates(validators: &[ActiveValidator], epoch: u64) -> Vec<ValidatorCandidate> {
    let growth: Vec<u128> = validators
        .iter()
        .map(|v| {
            let epochs = epoch.saturating_sub(v.activation_epoch).max(1);
            // parts per billion of growth per epoch, linear (enough to rank)
            if v.pool_tokens == 0 {
                0
            } else {
                (u128::from(v.pool_iota) * 1_000_000_000 / u128::from(v.pool_tokens)).saturating_sub(1_000_000_000)
                    / u128::from(epochs)
            }
        })
        .collect();
    let mut sorted = growth.clone();
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    validators
        .iter()
        .zip(growth)
        .map(|(v, g)| ValidatorCandidate {
            id: v.address.to_string(),
            name: v.name.clone(),
            commission_bps: v.commission_bps,
            total_stake: Amount(u128::from(v.pool_iota)),
            performance_bps: (g * 10_000)
                .checked_div(median)
                .map_or(10_000, |p| u32::try_from(p).unwrap_or(u32::MAX)),
            active: true,
            own_validator: false,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coin(n: u8, balance: u64) -> CoinRef {
        CoinRef {
            id: ObjectId::new([n; 32]),
            version: Version::from_u64(7),
            digest: ObjectDigest::new([n; 32]),
            balance,
        }
    }

    #[test]
    fn success_address_is_blake2b_of_the_key_without_a_flag() {
        let mut h = iota_sdk::types::hash::Hasher::new();
        h.update([0u8; 32]);
        assert_eq!(address_of(&[0; 32]), Address::new(h.finalize().into_bytes()));
        // the same vector the PKCS#11 module's address is checked against
        assert_eq!(
            address_of(&[0; 32]).to_string(),
            "0x89eb0d6a8a691dae2cd15ed0369931ce0a949ecafa5c3f93f8121833646e15c3"
        );
    }

    #[test]
    fn success_stake_calls_iota_system_with_a_split_of_the_gas_coin() {
        let plan = Plan::Stake {
            gas: coin(1, 10_000_000_000),
            merge: vec![coin(2, 5)],
            amount: 2_000_000_000,
            validator: Address::new([9; 32]),
        };
        let tx = plan.build(Address::new([3; 32]), 1_000, 5_000_000, 4).unwrap();
        let v1 = v1(&tx).unwrap();
        assert_eq!(v1.expiration, TransactionExpiration::Epoch(4));
        assert_eq!((v1.gas_payment.budget, v1.gas_payment.price), (5_000_000, 1_000));
        let TransactionKind::Programmable(ptb) = &v1.kind else {
            panic!("not programmable")
        };
        let Some(Command::MoveCall(call)) = ptb.commands.last() else {
            panic!("no move call")
        };
        assert_eq!(
            (call.package, call.module.as_str(), call.function.as_str()),
            (ObjectId::SYSTEM, "iota_system", "request_add_stake")
        );
        assert_eq!(call.arguments[1], Argument::NestedResult(1, 0), "the split's coin");
        assert_eq!(ptb.inputs[1], Input::IOTA_SYSTEM_MUTABLE);
    }

    #[test]
    fn success_payload_round_trips_and_the_signature_is_flag_sig_key() {
        let plan = Plan::Unstake {
            gas: coin(1, 10_000_000_000),
            merge: vec![],
            stakes: vec![(
                StakedIota {
                    id: ObjectId::new([4; 32]),
                    version: Version::from_u64(2),
                    digest: ObjectDigest::new([4; 32]),
                    pool_id: ObjectId::new([5; 32]),
                    stake_activation_epoch: 1,
                    principal: 3_000_000_000,
                },
                Some(1_000_000_000),
            )],
        };
        let tx = plan.build(Address::new([3; 32]), 1_000, 5_000_000, 4).unwrap();
        let sig = user_signature([7; 64], [8; 32]);
        let bytes = sig.to_bytes();
        assert_eq!((bytes[0], bytes.len()), (0x00, 97));
        let (back, sig_back) = decode_payload(&encode_payload(&tx, &sig).unwrap()).unwrap();
        assert_eq!((back, sig_back), (tx, sig));
    }

    #[test]
    fn fail_garbage_payload_names_the_part() {
        for (p, says) in [
            ("no-dot", "no '.'"),
            ("!!.AA==", "transaction base64"),
            ("AA==.AA==", "transaction BCS"),
        ] {
            let e = decode_payload(p).unwrap_err().to_string();
            assert!(e.contains(says), "{p}: {e}");
        }
    }

    #[test]
    fn success_gas_ceiling_is_what_the_coins_hold_beyond_the_stake() {
        let plan = Plan::Stake {
            gas: coin(1, 3_000_000_000),
            merge: vec![coin(2, 1_000_000_000)],
            amount: 2_500_000_000,
            validator: Address::new([9; 32]),
        };
        assert_eq!(plan.gas_ceiling(), 1_500_000_000);
        let big = Plan::Unstake {
            gas: coin(1, u64::MAX),
            merge: vec![],
            stakes: vec![],
        };
        assert_eq!(big.gas_ceiling(), MAX_GAS_BUDGET_NANOS);
    }

    #[test]
    fn fail_status_names_the_move_abort() {
        assert_eq!(failure(&ExecutionStatus::Success), None);
        let status = ExecutionStatus::Failure {
            error: ExecutionError::MoveAbort {
                location: iota_sdk::types::MoveLocation {
                    package: ObjectId::SYSTEM,
                    module: Identifier::from_static("validator_set"),
                    function: 0,
                    instruction: 0,
                    function_name: None,
                },
                code: 10,
            },
            command: Some(2),
        };
        let why = failure(&status).unwrap();
        assert_eq!(why, "MoveAbort validator_set::EStakingBelowThreshold (10) in command 2");
    }

    fn validator_json(n: u8, commission: u64) -> Value {
        serde_json::json!({
            "address": { "address": Address::new([n; 32]).to_string() },
            "name": format!("v{n}"),
            "stakingPoolId": Address::new([n + 100; 32]).to_string(),
            "commissionRate": commission,
            "stakingPoolIotaBalance": "1100",
            "poolTokenBalance": "1000",
            "stakingPoolActivationEpoch": 0
        })
    }

    #[test]
    fn success_epoch_page_reads_the_graphql_answer() {
        let data = serde_json::json!({ "epoch": {
            "epochId": 12,
            "startTimestamp": "2026-12-01T00:00:00.000Z",
            "referenceGasPrice": "1000",
            "systemParameters": { "durationMs": "86400000" },
            "validatorSet": { "activeValidators": {
                "pageInfo": { "hasNextPage": true, "endCursor": "c1" },
                "nodes": [validator_json(1, 200)]
            } }
        } });
        let p = epoch_page(&data).unwrap();
        assert_eq!((p.epoch, p.reference_gas_price, p.duration_ms), (12, 1_000, 86_400_000));
        assert_eq!(p.next.as_deref(), Some("c1"));
        assert_eq!(p.validators[0].commission_bps, 200);
        assert_eq!(p.validators[0].pool_id, ObjectId::new([101; 32]));
        let c = candidates(&p.validators, 12);
        assert_eq!((c[0].total_stake, c[0].performance_bps), (Amount(1_100), 10_000));
    }

    #[test]
    fn fail_epoch_page_names_the_bad_field() {
        let mut data = serde_json::json!({ "epoch": {
            "epochId": 12,
            "startTimestamp": "2026-12-01T00:00:00Z",
            "referenceGasPrice": "1000",
            "systemParameters": { "durationMs": "0" },
            "validatorSet": { "activeValidators": {
                "pageInfo": { "hasNextPage": false },
                "nodes": [validator_json(1, 200)]
            } }
        } });
        assert!(epoch_page(&data).unwrap_err().to_string().contains("durationMs is 0"));
        data["epoch"]["systemParameters"]["durationMs"] = "86400000".into();
        data["epoch"]["validatorSet"]["activeValidators"]["nodes"][0]["commissionRate"] = 10_001.into();
        assert!(epoch_page(&data).unwrap_err().to_string().contains("over 100 %"));
        data["epoch"]["validatorSet"]["activeValidators"]["nodes"][0]["commissionRate"] = 200.into();
        data["epoch"]["validatorSet"]["activeValidators"]["nodes"][0]["stakingPoolIotaBalance"] = "-5".into();
        assert!(epoch_page(&data)
            .unwrap_err()
            .to_string()
            .contains("not an unsigned integer"));
        data["epoch"]["validatorSet"]["activeValidators"]["nodes"][0]["stakingPoolIotaBalance"] = "5".into();
        assert!(epoch_page(&data).is_ok());
        data["epoch"]["referenceGasPrice"] = Value::Null;
        assert!(epoch_page(&data).unwrap_err().to_string().contains("referenceGasPrice"));
    }

    #[test]
    fn success_unstaking_rewards_keep_the_treasury_s_events_only() {
        let me = Address::new([3; 32]);
        let ev = |staker: Address, reward: u64| iota_sdk::types::Event {
            package_id: ObjectId::SYSTEM,
            module: Identifier::from_static("iota_system"),
            sender: staker,
            struct_tag: StructTag::new(
                Address::SYSTEM,
                Identifier::from_static("validator"),
                Identifier::from_static("UnstakingRequestEvent"),
                vec![],
            ),
            contents: bcs::to_bytes(&UnstakingRequestEvent {
                pool_id: ObjectId::new([5; 32]),
                validator_address: Address::new([9; 32]),
                staker_address: staker,
                stake_activation_epoch: 1,
                unstaking_epoch: 4,
                principal_amount: 1_000_000_000,
                reward_amount: reward,
            })
            .unwrap(),
        };
        let events = TransactionEvents(vec![ev(me, 77), ev(Address::new([4; 32]), 5)]);
        assert_eq!(
            unstaking_rewards(&events, &me).unwrap(),
            vec![(Address::new([9; 32]), 77)]
        );
        let mut garbled = ev(me, 1);
        garbled.contents = vec![1, 2];
        assert!(unstaking_rewards(&TransactionEvents(vec![garbled]), &me).is_err());
    }
}

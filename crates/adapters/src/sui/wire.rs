//! The Sui adapter's pure part: addresses, the objects it reads (coins, `StakedSui`), the
//! programmable transactions it builds, gas budgets, signatures, payloads and events. No
//! I/O, so every rule here is unit-tested.
//!
//! Sources: sui-framework `staking_pool.move` (`StakedSui { id, pool_id,
//! stake_activation_epoch, principal }`), `validator.move` (`UnstakingRequestEvent`),
//! `coin.move` (`Coin { id, balance }`); docs.sui.io "Transaction Authentication"
//! (intent, flag ‖ signature ‖ public key) and "Sui Address" (Blake2b-256 of flag ‖ key).

use std::str::FromStr;

use sui_rpc::proto::sui::rpc::v2 as pb;
use sui_sdk_types::{
    Address, Digest, Ed25519PublicKey, Ed25519Signature, Identifier, SimpleSignature, Transaction,
    TransactionExpiration, UserSignature,
};
use sui_transaction_builder::{Function, ObjectInput, TransactionBuilder};

use softstake_core::validator::ValidatorCandidate;
use softstake_core::Amount;

use crate::error::{AdapterError, Result};

/// The adapter's chain name.
pub const CHAIN: &str = "sui";
/// The SUI coin's type, as `ListOwnedObjects` filters it.
pub const GAS_COIN_TYPE: &str = "0x2::coin::Coin<0x2::sui::SUI>";
/// The stake object's type.
pub const STAKED_SUI_TYPE: &str = "0x3::staking_pool::StakedSui";
/// The Sui system state, a shared object created at genesis (initial shared version 1).
pub const SYSTEM_STATE: Address = Address::from_static("0x5");
/// The system state's initial shared version.
pub const SYSTEM_STATE_INITIAL_VERSION: u64 = 1;
/// Most the adapter lets one transaction's gas budget be, MIST (50 SUI, Sui's
/// `max_tx_gas`).
pub const MAX_GAS_BUDGET_MIST: u64 = 50_000_000_000;

/// The address of an Ed25519 public key: Blake2b-256(0x00 ‖ key).
pub fn address_of(public_key: &[u8; 32]) -> Address {
    Ed25519PublicKey::new(*public_key).derive_address()
}

/// A SUI coin at a version: what a transaction names to spend it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoinRef {
    /// Object id.
    pub id: Address,
    /// Version.
    pub version: u64,
    /// Digest.
    pub digest: Digest,
    /// Balance, MIST.
    pub balance: u64,
}

/// A `0x3::staking_pool::StakedSui` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakedSui {
    /// Object id.
    pub id: Address,
    /// Version.
    pub version: u64,
    /// Digest.
    pub digest: Digest,
    /// The staking pool it belongs to.
    pub pool_id: Address,
    /// First epoch it earns in.
    pub stake_activation_epoch: u64,
    /// Its principal, MIST.
    pub principal: u64,
}

impl crate::move_staking::StakeObject for StakedSui {
    fn principal(&self) -> u64 {
        self.principal
    }
    fn activation_epoch(&self) -> u64 {
        self.stake_activation_epoch
    }
    fn id_bytes(&self) -> [u8; 32] {
        self.id.into_inner()
    }
}

fn bad(what: impl Into<String>) -> AdapterError {
    AdapterError::bad_response(CHAIN, what)
}

fn object_ref(o: &pb::Object) -> Result<(Address, u64, Digest)> {
    let id = o
        .object_id
        .as_deref()
        .ok_or_else(|| bad("an object without object_id"))?;
    let id = Address::from_str(id).map_err(|e| bad(format!("object id {id:?}: {e}")))?;
    let version = o.version.ok_or_else(|| bad(format!("object {id} without version")))?;
    let digest = o
        .digest
        .as_deref()
        .ok_or_else(|| bad(format!("object {id} without digest")))?;
    let digest = Digest::from_str(digest).map_err(|e| bad(format!("object {id} digest {digest:?}: {e}")))?;
    Ok((id, version, digest))
}

/// A listed coin object as a [`CoinRef`].
///
/// # Errors
/// [`AdapterError::BadResponse`] naming the field for an object without id, version,
/// digest or balance.
pub fn coin_ref(o: &pb::Object) -> Result<CoinRef> {
    let (id, version, digest) = object_ref(o)?;
    let balance = match (o.balance, o.contents.as_ref()) {
        (Some(b), _) => b,
        (None, Some(c)) => {
            let (_, b): (Address, u64) = c.deserialize().map_err(|e| bad(format!("coin {id} contents: {e}")))?;
            b
        }
        (None, None) => return Err(bad(format!("coin {id} without balance"))),
    };
    Ok(CoinRef {
        id,
        version,
        digest,
        balance,
    })
}

/// A listed `StakedSui` object, decoded from its BCS contents.
///
/// # Errors
/// [`AdapterError::BadResponse`] for an object without reference or contents, or
/// contents that are not a `StakedSui`.
pub fn staked_sui(o: &pb::Object) -> Result<StakedSui> {
    let (id, version, digest) = object_ref(o)?;
    let c = o
        .contents
        .as_ref()
        .ok_or_else(|| bad(format!("StakedSui {id} without contents")))?;
    let (uid, pool_id, stake_activation_epoch, principal): (Address, Address, u64, u64) = c
        .deserialize()
        .map_err(|e| bad(format!("StakedSui {id} contents are not a StakedSui: {e}")))?;
    if uid != id {
        return Err(bad(format!("StakedSui {id} holds the id {uid}")));
    }
    Ok(StakedSui {
        id,
        version,
        digest,
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
        /// MIST to stake.
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
        stakes: Vec<(StakedSui, Option<u64>)>,
    },
}

fn ident(s: &str) -> Identifier {
    Identifier::new(s).expect("a valid Move identifier")
}

impl Plan {
    fn gas(&self) -> (&CoinRef, &[CoinRef]) {
        match self {
            Plan::Stake { gas, merge, .. } | Plan::Unstake { gas, merge, .. } => (gas, merge),
        }
    }

    /// The most gas this transaction can be given: what the coins hold beyond the stake,
    /// at most the gas coin's balance and [`MAX_GAS_BUDGET_MIST`].
    pub fn gas_ceiling(&self) -> u64 {
        let (gas, merge) = self.gas();
        let total = merge.iter().fold(gas.balance, |a, c| a.saturating_add(c.balance));
        let staked = match self {
            Plan::Stake { amount, .. } => *amount,
            Plan::Unstake { .. } => 0,
        };
        // the gas coin itself must cover the budget (merged coins join it only as the
        // transaction runs)
        total.saturating_sub(staked).min(gas.balance).min(MAX_GAS_BUDGET_MIST)
    }

    /// The transaction, expiring after `epoch`.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] when the builder refuses it (no commands, …).
    pub fn build(&self, sender: Address, price: u64, budget: u64, epoch: u64) -> Result<Transaction> {
        let mut tx = TransactionBuilder::new();
        let (gas, merge) = self.gas();
        let gas_arg = tx.gas();
        if !merge.is_empty() {
            let coins = merge
                .iter()
                .map(|c| tx.object(ObjectInput::owned(c.id, c.version, c.digest)))
                .collect();
            tx.merge_coins(gas_arg, coins);
        }
        let system = tx.object(ObjectInput::shared(SYSTEM_STATE, SYSTEM_STATE_INITIAL_VERSION, true));
        match self {
            Plan::Stake { amount, validator, .. } => {
                let amount = tx.pure(amount);
                let coin = tx.split_coins(gas_arg, vec![amount]).remove(0);
                let validator = tx.pure(validator);
                tx.move_call(
                    Function::new(Address::THREE, ident("sui_system"), ident("request_add_stake")),
                    vec![system, coin, validator],
                );
            }
            Plan::Unstake { stakes, .. } => {
                for (s, part) in stakes {
                    let obj = tx.object(ObjectInput::owned(s.id, s.version, s.digest));
                    let staked = match part {
                        None => obj,
                        Some(p) => {
                            let p = tx.pure(p);
                            tx.move_call(
                                Function::new(Address::THREE, ident("staking_pool"), ident("split")),
                                vec![obj, p],
                            )
                        }
                    };
                    tx.move_call(
                        Function::new(Address::THREE, ident("sui_system"), ident("request_withdraw_stake")),
                        vec![system, staked],
                    );
                }
            }
        }
        tx.set_sender(sender);
        tx.set_gas_price(price);
        tx.set_gas_budget(budget);
        tx.add_gas_objects([ObjectInput::owned(gas.id, gas.version, gas.digest)]);
        tx.set_expiration(TransactionExpiration::Epoch(epoch));
        tx.try_build()
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("building the transaction: {e}")))
    }
}

/// The gas budget for a simulated cost ([`move_staking::gas_budget`]: computation plus the
/// SDKs' overhead at the price, plus the whole storage charge; docs.sui.io "Gas in Sui").
///
/// [`move_staking::gas_budget`]: crate::move_staking::gas_budget
///
/// # Errors
/// [`AdapterError::BadResponse`] for a summary without costs or one that overflows.
pub fn budget(g: &pb::GasCostSummary, price: u64) -> Result<u64> {
    let computation = g
        .computation_cost
        .ok_or_else(|| bad("gas_used without computation_cost"))?;
    let storage = g.storage_cost.ok_or_else(|| bad("gas_used without storage_cost"))?;
    crate::move_staking::gas_budget(CHAIN, computation, storage, price)
}

/// Why an execution failed (`None` when it succeeded): the error kind, the Move abort's
/// module and constant when it is one, and the description.
pub fn failure(status: Option<&pb::ExecutionStatus>) -> Option<String> {
    let Some(status) = status else {
        return Some("no execution status".into());
    };
    if status.success == Some(true) {
        return None;
    }
    let Some(err) = &status.error else {
        return Some("failed, no error given".into());
    };
    let kind = err
        .kind
        .and_then(|k| pb::execution_error::ExecutionErrorKind::try_from(k).ok())
        .map_or("UNKNOWN", |k| k.as_str_name());
    let mut out = kind.to_string();
    if let Some(pb::execution_error::ErrorDetails::Abort(a)) = &err.error_details {
        let module = a.location.as_ref().and_then(|l| l.module.as_deref()).unwrap_or("?");
        let constant = a.clever_error.as_ref().and_then(|c| c.constant_name.as_deref());
        match constant {
            Some(c) => out.push_str(&format!(" {module}::{c} ({})", a.abort_code.unwrap_or_default())),
            None => out.push_str(&format!(" {module} code {}", a.abort_code.unwrap_or_default())),
        }
    }
    if let Some(d) = &err.description {
        out.push_str(": ");
        out.push_str(d);
    }
    Some(out)
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
    crate::move_staking::decode_payload(CHAIN, payload, UserSignature::from_bytes)
}

/// `0x3::validator::UnstakingRequestEvent`, as BCS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
struct UnstakingRequestEvent {
    pool_id: Address,
    validator_address: Address,
    staker_address: Address,
    stake_activation_epoch: u64,
    unstaking_epoch: u64,
    principal_amount: u64,
    reward_amount: u64,
}

/// The (validator, reward MIST) of each `UnstakingRequestEvent` paid to `staker` among a
/// transaction's events.
///
/// # Errors
/// [`AdapterError::BadResponse`] for an unstaking event whose contents do not decode.
pub fn unstaking_rewards(events: Option<&pb::TransactionEvents>, staker: &Address) -> Result<Vec<(Address, u64)>> {
    let mut out = Vec::new();
    for e in events.map(|e| e.events.as_slice()).unwrap_or_default() {
        let ty = e.event_type.as_deref().unwrap_or_default();
        let Ok(tag) = sui_sdk_types::StructTag::from_str(ty) else {
            continue;
        };
        if tag.address() != &Address::THREE
            || tag.module().as_str() != "validator"
            || tag.name().as_str() != "UnstakingRequestEvent"
        {
            continue;
        }
        let c = e
            .contents
            .as_ref()
            .ok_or_else(|| bad("an UnstakingRequestEvent without contents"))?;
        let ev: UnstakingRequestEvent = c
            .deserialize()
            .map_err(|err| bad(format!("UnstakingRequestEvent contents: {err}")))?;
        if ev.staker_address == *staker {
            out.push((ev.validator_address, ev.reward_amount));
        }
    }
    Ok(out)
}

/// Each active validator as a candidate: commission, stake (the pool's SUI), and its
/// pool's exchange-rate growth since activation per epoch relative to the median as
/// performance (a pool starts at 1 SUI per pool token, so `sui_balance /
/// pool_token_balance` is its compounded reward).
///
/// # Errors
/// [`AdapterError::BadResponse`] for a validator without address or pool.
pub fn candidates(validators: &[pb::Validator], epoch: u64) -> Result<Vec<ValidatorCandidate>> {
    let mut growth = Vec::with_capacity(validators.len());
    for v in validators {
        let address = v.address.as_deref().ok_or_else(|| bad("a validator without address"))?;
        let pool = v
            .staking_pool
            .as_ref()
            .ok_or_else(|| bad(format!("validator {address} without staking pool")))?;
        let (coins, tokens) = (pool.sui_balance.unwrap_or(0), pool.pool_token_balance.unwrap_or(0));
        let epochs = epoch.saturating_sub(pool.activation_epoch.unwrap_or(0)).max(1);
        // parts per billion of growth per epoch, linear (enough to rank)
        let ppb = if tokens == 0 {
            0
        } else {
            (u128::from(coins) * 1_000_000_000 / u128::from(tokens)).saturating_sub(1_000_000_000) / u128::from(epochs)
        };
        growth.push(ppb);
    }
    let mut sorted = growth.clone();
    sorted.sort_unstable();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    validators
        .iter()
        .zip(growth)
        .map(|(v, g)| {
            let commission = v.commission_rate.unwrap_or(0);
            Ok(ValidatorCandidate {
                id: Address::from_str(v.address.as_deref().unwrap_or_default())
                    .map_err(|e| bad(format!("validator address: {e}")))?
                    .to_string(),
                name: v.name.clone().unwrap_or_default(),
                commission_bps: u32::try_from(commission).map_err(|_| bad(format!("commission {commission}")))?,
                total_stake: Amount(u128::from(
                    v.staking_pool.as_ref().and_then(|p| p.sui_balance).unwrap_or(0),
                )),
                performance_bps: (g * 10_000)
                    .checked_div(median)
                    .map_or(10_000, |p| u32::try_from(p).unwrap_or(u32::MAX)),
                active: true,
                own_validator: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coin(n: u8, balance: u64) -> CoinRef {
        CoinRef {
            id: Address::new([n; 32]),
            version: 7,
            digest: Digest::new([n; 32]),
            balance,
        }
    }

    #[test]
    fn success_address_is_blake2b_of_flag_and_key() {
        // docs.sui.io: the zero key's address (Hasher over [0x00] ‖ [0; 32])
        let mut h = sui_sdk_types::hash::Hasher::new();
        h.update([0u8]);
        h.update([0u8; 32]);
        assert_eq!(address_of(&[0; 32]), Address::new(h.finalize().into_inner()));
    }

    #[test]
    fn success_payload_round_trips_and_the_signature_is_flag_sig_key() {
        let plan = Plan::Stake {
            gas: coin(1, 10_000_000_000),
            merge: vec![coin(2, 5)],
            amount: 2_000_000_000,
            validator: Address::new([9; 32]),
        };
        let tx = plan.build(Address::new([3; 32]), 1_000, 5_000_000, 4).unwrap();
        assert_eq!(tx.expiration, TransactionExpiration::Epoch(4));
        assert_eq!(tx.gas_payment.budget, 5_000_000);
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
    fn success_budget_adds_overhead_and_the_whole_storage_charge() {
        let mut g = pb::GasCostSummary::default();
        g.computation_cost = Some(2_000_000);
        g.storage_cost = Some(3_000_000);
        g.storage_rebate = Some(9_000_000);
        assert_eq!(
            budget(&g, 1_000).unwrap(),
            2_000_000 + 1_000_000 + 3_000_000,
            "a rebate never lowers the budget"
        );
        g.storage_cost = Some(u64::MAX);
        assert!(budget(&g, 1_000).unwrap_err().to_string().contains("overflows"));
        g.computation_cost = None;
        assert!(budget(&g, 1_000).is_err());
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
        assert_eq!(big.gas_ceiling(), MAX_GAS_BUDGET_MIST);
    }

    #[test]
    fn fail_status_names_the_move_abort() {
        let mut s = pb::ExecutionStatus::default();
        s.success = Some(true);
        assert_eq!(failure(Some(&s)), None);
        s.success = Some(false);
        let mut err = pb::ExecutionError::default();
        err.kind = Some(pb::execution_error::ExecutionErrorKind::MoveAbort as i32);
        let mut a = pb::MoveAbort::default();
        a.abort_code = Some(10);
        let mut loc = pb::MoveLocation::default();
        loc.module = Some("validator_set".into());
        a.location = Some(loc);
        let mut c = pb::CleverError::default();
        c.constant_name = Some("EStakingBelowThreshold".into());
        a.clever_error = Some(c);
        err.error_details = Some(pb::execution_error::ErrorDetails::Abort(a));
        s.error = Some(err);
        let why = failure(Some(&s)).unwrap();
        assert!(
            why.contains("MOVE_ABORT validator_set::EStakingBelowThreshold (10)"),
            "{why}"
        );
        assert!(failure(None).is_some());
    }

    #[test]
    fn fail_staked_sui_contents_must_decode_and_match_the_id() {
        let id = Address::new([1; 32]);
        let mut o = pb::Object::default();
        o.object_id = Some(id.to_string());
        o.version = Some(3);
        o.digest = Some(Digest::new([2; 32]).to_string());
        o.contents = Some(pb::Bcs::from(
            bcs::to_bytes(&(id, Address::new([5; 32]), 9u64, 4_000_000_000u64)).unwrap(),
        ));
        let s = staked_sui(&o).unwrap();
        assert_eq!((s.stake_activation_epoch, s.principal), (9, 4_000_000_000));
        o.contents = Some(pb::Bcs::from(
            bcs::to_bytes(&(Address::new([7; 32]), Address::new([5; 32]), 9u64, 1u64)).unwrap(),
        ));
        assert!(staked_sui(&o).unwrap_err().to_string().contains("holds the id"));
        o.contents = Some(pb::Bcs::from(vec![1, 2, 3]));
        assert!(staked_sui(&o).unwrap_err().to_string().contains("not a StakedSui"));
    }

    #[test]
    fn success_candidates_rank_pool_growth_against_the_median() {
        let v = |n: u8, coins: u64, tokens: u64| {
            let mut p = pb::StakingPool::default();
            p.sui_balance = Some(coins);
            p.pool_token_balance = Some(tokens);
            p.activation_epoch = Some(0);
            let mut v = pb::Validator::default();
            v.address = Some(Address::new([n; 32]).to_string());
            v.commission_rate = Some(500);
            v.staking_pool = Some(p);
            v
        };
        let c = candidates(&[v(1, 1_100, 1_000), v(2, 1_050, 1_000), v(3, 1_200, 1_000)], 10).unwrap();
        let perf: Vec<u32> = c.iter().map(|c| c.performance_bps).collect();
        assert_eq!(perf, vec![10_000, 5_000, 20_000], "growth over the median's");
        assert_eq!((c[0].commission_bps, c[0].total_stake), (500, Amount(1_100)));
        let mut bad = v(4, 1, 1);
        bad.staking_pool = None;
        assert!(candidates(&[bad], 1)
            .unwrap_err()
            .to_string()
            .contains("without staking pool"));
    }
}

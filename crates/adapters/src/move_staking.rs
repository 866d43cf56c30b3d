//! What the Sui and IOTA adapters share: both chains run the same Move staking system
//! (IOTA's `iota_system` is Sui's `sui_system` renamed), so the rules that do not depend on
//! either SDK's types live here once.
//!
//! ```text
//!  key      32-byte Ed25519 seed, or 33 bytes with the scheme flag 0x00 first    seed
//!  model    no unbonding (instant exit), active from the next epoch, rewards
//!           compound in the pool and are paid with the principal               liquidity_model
//!  exit     which stake objects to withdraw for an amount: not yet active ones
//!           first, larger first, whole while they fit, then one split            choose
//!  gas      simulated computation + overhead × price + storage                   gas_budget
//!  rewards  UnstakingRequestEvent.reward_amount per (checkpoint, validator)      rewards_page
//!  journal  base64(BCS transaction) "." base64(flag ‖ signature ‖ key)           encode_payload
//! ```
//!
//! Sources: sui-framework and iota-framework `staking_pool.move` (`MIN_STAKING_THRESHOLD`,
//! `split`: both parts at least the threshold), `validator.move`
//! (`UnstakingRequestEvent`); Mysten's TypeScript SDK (`GAS_SAFE_OVERHEAD = 1 000`), which
//! IOTA's SDKs keep.

use base64::Engine as _;
use softstake_core::{Amount, Timestamp};

use crate::error::{AdapterError, Result};
use crate::signer::SecretBytes;
use crate::traits::{claimed_records, ClaimSums, LiquidityModel, RewardsPage};

/// Smallest stake, and smallest part of a split stake, in base units (MIST or nanos): 1 SUI
/// or 1 IOTA (`staking_pool::MIN_STAKING_THRESHOLD`, a Move constant on both chains).
pub const MIN_STAKING_THRESHOLD: u64 = 1_000_000_000;
/// Computation units added to a simulated budget (`GAS_SAFE_OVERHEAD` of the SDKs).
pub const GAS_SAFE_OVERHEAD_UNITS: u64 = 1_000;
/// Most stake objects one withdrawal takes.
pub const MAX_WITHDRAW_OBJECTS: usize = 200;

/// The 32-byte Ed25519 seed of a raw key of `chain`: 32 seed bytes, or 33 with the scheme
/// flag 0x00 first (the bytes of a `suiprivkey1…` / `iotaprivkey1…` key).
///
/// # Errors
/// [`AdapterError::Signer`] for any other length or flag.
pub fn seed(chain: &str, key: &SecretBytes) -> Result<[u8; 32]> {
    let b = key.expose();
    let raw = match b.len() {
        32 => b,
        33 if b[0] == 0 => &b[1..],
        33 => {
            return Err(AdapterError::Signer(format!(
                "{chain}: a 33-byte key must start with the Ed25519 flag 0x00, not {:#04x}",
                b[0]
            )))
        }
        n => {
            return Err(AdapterError::Signer(format!(
                "{chain}: an Ed25519 key is 32 bytes (or 33 with its flag), not {n}"
            )))
        }
    };
    let mut out = [0u8; 32];
    out.copy_from_slice(raw);
    Ok(out)
}

/// The liquidity model of the Move staking system: no unbonding (a withdrawal pays principal
/// and reward at once), stake earns from the next epoch, rewards compound in the pool's
/// exchange rate and are paid at withdrawal, 1 coin minimum.
pub fn liquidity_model(epoch_secs: u64, max_operations_per_epoch: u32) -> LiquidityModel {
    LiquidityModel {
        unbonding_period_secs: 0,
        epoch_secs,
        epoch_aligned: true,
        activation_epochs: 1,
        min_delegation: Amount(u128::from(MIN_STAKING_THRESHOLD)),
        rewards_auto_compound: true,
        claim_cadence_secs: 0,
        claim_all_validators: false,
        max_operations_per_epoch,
        instant_exit: true,
        earns_in_custody: false,
        stake_unit: Amount(1),
        whole_position_exits: false,
    }
}

/// A stake object (`StakedSui`, `StakedIota`) as [`choose`] weighs it.
pub trait StakeObject {
    /// Its principal, base units.
    fn principal(&self) -> u64;
    /// The first epoch it earns in.
    fn activation_epoch(&self) -> u64;
    /// Its object id's bytes (ties broken by them, so the choice is deterministic).
    fn id_bytes(&self) -> [u8; 32];
}

/// The stake objects to withdraw `amount` base units of principal in `epoch`: not yet active
/// ones first (they have earned nothing), larger first; whole objects while they fit, then
/// the part of the next one that is left (`Some(part)`: split it first). Both parts of a
/// split must be at least [`MIN_STAKING_THRESHOLD`].
///
/// # Errors
/// [`AdapterError::BadInput`] naming `chain` when more than [`MAX_WITHDRAW_OBJECTS`] objects
/// are needed, or when no split can give the exact rest.
pub fn choose<S: StakeObject>(
    chain: &str,
    mut staked: Vec<S>,
    epoch: u64,
    amount: u64,
) -> Result<Vec<(S, Option<u64>)>> {
    staked.sort_by(|a, b| {
        let pending = |s: &S| s.activation_epoch() > epoch;
        pending(b)
            .cmp(&pending(a))
            .then(b.principal().cmp(&a.principal()))
            .then(a.id_bytes().cmp(&b.id_bytes()))
    });
    let mut rest = amount;
    let mut out = Vec::new();
    for s in staked {
        if rest == 0 {
            break;
        }
        if out.len() == MAX_WITHDRAW_OBJECTS {
            return Err(AdapterError::bad_input(
                chain,
                format!("withdrawing {amount} takes more than {MAX_WITHDRAW_OBJECTS} stake objects: withdraw less at a time"),
            ));
        }
        let principal = s.principal();
        if principal <= rest {
            rest -= principal;
            out.push((s, None));
        } else if rest >= MIN_STAKING_THRESHOLD && principal - rest >= MIN_STAKING_THRESHOLD {
            out.push((s, Some(rest)));
            rest = 0;
        }
    }
    if rest > 0 {
        return Err(AdapterError::bad_input(
            chain,
            format!(
                "cannot withdraw exactly {amount}: {rest} is left that no stake object can give whole or split \
                 (both parts of a split must be at least {MIN_STAKING_THRESHOLD})"
            ),
        ));
    }
    Ok(out)
}

/// The gas budget for a simulated cost: computation plus [`GAS_SAFE_OVERHEAD_UNITS`] at
/// `price`, plus the whole storage charge. The rebate is not netted out: it is paid back
/// after execution, while the budget must cover computation and storage as they are
/// charged; only what is used is paid.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `chain` when the sum overflows a u64.
pub fn gas_budget(chain: &str, computation: u64, storage: u64, price: u64) -> Result<u64> {
    GAS_SAFE_OVERHEAD_UNITS
        .checked_mul(price)
        .and_then(|o| o.checked_add(computation))
        .and_then(|b| b.checked_add(storage))
        .ok_or_else(|| {
            AdapterError::bad_response(
                chain,
                format!("gas cost (computation {computation}, storage {storage}, price {price}) overflows"),
            )
        })
}

/// A full node's gRPC status as the adapter's error: unavailable, deadline, exhausted,
/// aborted, internal, unknown and cancelled are transient; the rest names `what` was asked
/// and is a bad response (each adapter maps a refused transaction itself).
pub fn status_error(chain: &str, what: &str, s: &tonic::Status) -> AdapterError {
    use tonic::Code;
    let message = format!("{what}: {:?}: {}", s.code(), s.message());
    match s.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::ResourceExhausted
        | Code::Aborted
        | Code::Internal
        | Code::Unknown
        | Code::Cancelled => AdapterError::transient(chain, message),
        _ => AdapterError::bad_response(chain, message),
    }
}

/// The journal's payload of a signed transaction: base64 of its BCS, `.`, base64 of the
/// serialized signature (flag ‖ signature ‖ public key).
///
/// # Errors
/// [`AdapterError::BadInput`] naming `chain` when the transaction does not serialize.
pub fn encode_payload<T: serde::Serialize>(chain: &str, tx: &T, signature: &[u8]) -> Result<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = bcs::to_bytes(tx).map_err(|e| AdapterError::bad_input(chain, format!("serializing: {e}")))?;
    Ok(format!("{}.{}", b64.encode(bytes), b64.encode(signature)))
}

/// The transaction and signature of a payload of [`encode_payload`]; `signature` parses the
/// signature's bytes with the chain's SDK.
///
/// # Errors
/// [`AdapterError::BadInput`] naming `chain` and the part (`no '.'`, `transaction base64`,
/// `transaction BCS`, `signature base64`, `signature`) for a payload that is not one.
pub fn decode_payload<T, S, E>(
    chain: &str,
    payload: &str,
    signature: impl FnOnce(&[u8]) -> std::result::Result<S, E>,
) -> Result<(T, S)>
where
    T: serde::de::DeserializeOwned,
    E: std::fmt::Display,
{
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad_payload = |m: String| AdapterError::bad_input(chain, format!("payload: {m}"));
    let (tx, sig) = payload
        .split_once('.')
        .ok_or_else(|| bad_payload("no '.' between transaction and signature".into()))?;
    let tx = b64
        .decode(tx)
        .map_err(|e| bad_payload(format!("transaction base64: {e}")))?;
    let tx: T = bcs::from_bytes(&tx).map_err(|e| bad_payload(format!("transaction BCS: {e}")))?;
    let sig = b64
        .decode(sig)
        .map_err(|e| bad_payload(format!("signature base64: {e}")))?;
    let sig = signature(&sig).map_err(|e| bad_payload(format!("signature: {e}")))?;
    Ok((tx, sig))
}

/// A confirmed withdrawal's rewards: its checkpoint, time, and (validator, reward base units)
/// of each `UnstakingRequestEvent` paid to the treasury.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unstaked {
    /// Checkpoint that holds it.
    pub checkpoint: u64,
    /// Its checkpoint's time.
    pub at: Timestamp,
    /// (validator address, reward) per unstaked object.
    pub rewards: Vec<(String, u64)>,
}

/// The checkpoint a reward cursor names (`None` or empty: from the start).
///
/// # Errors
/// [`AdapterError::BadInput`] for a cursor that is not a checkpoint number.
pub fn cursor_checkpoint(chain: &str, cursor: Option<&str>) -> Result<u64> {
    match cursor {
        None | Some("") => Ok(0),
        Some(c) => c
            .parse()
            .map_err(|_| AdapterError::bad_input(chain, format!("reward cursor {c:?} is not a checkpoint"))),
    }
}

/// The realized rewards of the withdrawals after checkpoint `after`, summed per (checkpoint,
/// validator), zero sums left out; the cursor is the newest checkpoint seen.
///
/// # Errors
/// [`AdapterError::BadResponse`] when a sum overflows.
pub fn rewards_page(chain: &str, after: u64, withdrawals: &[Unstaked]) -> Result<RewardsPage> {
    let mut sums = ClaimSums::new();
    let mut newest = after;
    for u in withdrawals.iter().filter(|u| u.checkpoint > after) {
        newest = newest.max(u.checkpoint);
        for (validator, reward) in &u.rewards {
            let e = sums.entry((u.checkpoint, validator.clone())).or_insert((0, u.at));
            e.0 =
                e.0.checked_add(u128::from(*reward))
                    .ok_or_else(|| AdapterError::bad_response(chain, "rewards overflow"))?;
        }
    }
    sums.retain(|_, (amount, _)| *amount > 0);
    Ok(RewardsPage {
        records: claimed_records(sums),
        cursor: newest.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const COIN: u64 = MIN_STAKING_THRESHOLD;

    #[derive(Debug, Clone, PartialEq)]
    struct S(u8, u64, u64);

    impl StakeObject for S {
        fn principal(&self) -> u64 {
            self.2
        }
        fn activation_epoch(&self) -> u64 {
            self.1
        }
        fn id_bytes(&self) -> [u8; 32] {
            [self.0; 32]
        }
    }

    #[test]
    fn success_withdrawal_takes_pending_stakes_first_then_splits() {
        // epoch 5: the stake activating at 6 has earned nothing: it goes first
        let stakes = vec![S(1, 1, 30 * COIN), S(2, 6, 5 * COIN), S(3, 2, 10 * COIN)];
        let chosen = choose("t", stakes, 5, 12 * COIN).unwrap();
        let picked: Vec<(u8, Option<u64>)> = chosen.iter().map(|(s, p)| (s.0, *p)).collect();
        assert_eq!(picked, vec![(2, None), (1, Some(7 * COIN))]);
    }

    #[test]
    fn fail_withdrawal_that_would_leave_a_part_below_one_coin() {
        let e = choose("t", vec![S(1, 1, 3 * COIN)], 5, 3 * COIN - COIN / 2).unwrap_err();
        assert!(e.to_string().contains("cannot withdraw exactly"), "{e}");
        let whole = choose("t", vec![S(1, 1, 3 * COIN)], 5, 3 * COIN).unwrap();
        assert_eq!(whole[0].1, None, "the whole object, no split");
    }

    #[test]
    fn fail_withdrawal_needing_too_many_objects() {
        let many: Vec<S> = (0..=MAX_WITHDRAW_OBJECTS as u64).map(|i| S(i as u8, 1, COIN)).collect();
        let e = choose("t", many, 5, (MAX_WITHDRAW_OBJECTS as u64 + 1) * COIN).unwrap_err();
        assert!(e.to_string().contains("more than 200"), "{e}");
    }

    #[test]
    fn fail_keys_of_other_lengths_or_flags() {
        assert!(seed("t", &SecretBytes::new(vec![1; 32])).is_ok());
        let mut flagged = vec![0u8];
        flagged.extend([1; 32]);
        assert_eq!(seed("t", &SecretBytes::new(flagged)).unwrap(), [1; 32]);
        let mut secp = vec![1u8];
        secp.extend([1; 32]);
        assert!(seed("t", &SecretBytes::new(secp))
            .unwrap_err()
            .to_string()
            .contains("flag 0x00"));
        assert!(seed("t", &SecretBytes::new(vec![1; 64]))
            .unwrap_err()
            .to_string()
            .contains("not 64"));
    }

    #[test]
    fn success_budget_adds_overhead_and_the_whole_storage_charge() {
        assert_eq!(gas_budget("t", 2_000_000, 3_000_000, 1_000).unwrap(), 6_000_000);
        assert!(gas_budget("t", 1, u64::MAX, 1_000)
            .unwrap_err()
            .to_string()
            .contains("overflows"));
    }

    #[test]
    fn success_rewards_sum_per_checkpoint_and_validator_after_the_cursor() {
        let at = Timestamp::from_unix_millis(1_000).unwrap();
        let w = |checkpoint, rewards: Vec<(&str, u64)>| Unstaked {
            checkpoint,
            at,
            rewards: rewards.into_iter().map(|(v, r)| (v.to_string(), r)).collect(),
        };
        let all = [
            w(5, vec![("a", 10), ("a", 5), ("b", 0)]),
            w(9, vec![("b", 7)]),
            w(3, vec![("a", 99)]),
        ];
        let page = rewards_page("t", 3, &all).unwrap();
        assert_eq!(page.cursor, "9");
        let got: Vec<(String, u128)> = page.records.iter().map(|r| (r.validator.clone(), r.amount.0)).collect();
        assert_eq!(
            got,
            vec![("a".into(), 15), ("b".into(), 7)],
            "checkpoint 3 is at the cursor: not again"
        );
        assert_eq!(cursor_checkpoint("t", Some("9")).unwrap(), 9);
        assert!(cursor_checkpoint("t", Some("x")).is_err());
    }
}

//! A local Sui chain: the gRPC services of `sui.rpc.v2` (tonic servers generated in
//! `sui-rpc` from Mysten's protos) over the Move staking system of [`crate::move_staking`].
//!
//! ```text
//!  LedgerService      GetServiceInfo (chain id, epoch, checkpoint, time)
//!                     GetEpoch (reference gas price, start, duration, active validators
//!                       with commission and staking pool) · GetObject · GetTransaction
//!                       (effects status, gas, UnstakingRequestEvent, checkpoint, time)
//!  StateService       ListOwnedObjects (owner, type: Coin<SUI>, StakedSui) · GetBalance
//!  TransactionExecutionService
//!                     ExecuteTransaction: BCS TransactionData and one user signature,
//!                       checked as a validator checks them, then run; SimulateTransaction:
//!                       the same run without the signature check, or for a bare PTB the
//!                       read-only calls validator_address_by_pool_id and calculate_rewards
//! ```
//!
//! What execution enforces, as Sui does:
//! - the signature over Blake2b-256(intent `[0,0,0]` ‖ BCS) verified with `sui-crypto`
//!   (Mysten's own verifier, not the adapter's code), signed by the sender
//!   (`IncorrectSigner` otherwise);
//! - replay protection by object versions: every owned input and gas coin must be named at
//!   its current version and digest (`ObjectVersionUnavailableForConsumption`); the same
//!   transaction sent again returns its first effects, nothing runs twice;
//! - `TransactionExpiration::Epoch(e)`: refused once the epoch is past `e`
//!   (`TransactionExpired`); the gas price at least the reference gas price, the budget
//!   within the gas coin's balance;
//! - the staking calls `0x3::sui_system::request_add_stake` / `request_withdraw_stake`
//!   and `0x3::staking_pool::split` with the Move aborts of `validator_set` and
//!   `staking_pool` (`EStakingBelowThreshold`, `ENotAValidator`, …) as a failed execution
//!   that still pays gas; `SplitCoins` from the gas coin. Other commands are refused as
//!   unsupported by this local chain.
//!
//! Gas is approximated: computation `(1 000 + 1 000 × commands)` units at the transaction's
//! gas price, storage 988 000 MIST per object written (a coin at storage price 76), a 99 %
//! rebate of what each overwritten or deleted object paid. Each executed transaction is a
//! checkpoint one second after the previous; [`LocalSui::advance_epochs`] ends epochs with
//! the rewards of the configured per-epoch APYs, shared by stake, commission staked to the
//! validator (`advance_epoch`).
//!
//! Sources: sui-framework `sui_system.move`, `validator_set.move`, `staking_pool.move`,
//! `validator.move`; docs.sui.io "Transaction Authentication", "Gas in Sui"; sui-rpc's
//! protos (`sui/rpc/v2/*.proto`).

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{bail, Context};
use sui_crypto::simple::SimpleVerifier;
use sui_crypto::SuiVerifier;
use sui_rpc::proto::sui::rpc::v2 as pb;
use sui_sdk_types::hash::Hasher;
use sui_sdk_types::{
    Address, Argument, Command, Digest, Input, ObjectReference, SimpleSignature, StructTag, Transaction,
    TransactionExpiration, TransactionKind, UserSignature,
};
use tonic::{Request, Response, Status};

use crate::move_ptb;
use crate::move_staking::{Abort, StakedCoin, StakingSystem};

/// MIST per SUI.
pub const SUI: u64 = 1_000_000_000;
/// Storage charged per object written, MIST (a coin object at storage price 76).
pub const STORAGE_PER_OBJECT_MIST: u64 = 988_000;
/// The rebate of an overwritten or deleted object, MIST (99 % of its storage charge).
pub const REBATE_PER_OBJECT_MIST: u64 = 978_120;
/// Computation units of a transaction, before its commands.
const BASE_COMPUTATION_UNITS: u64 = 1_000;
/// Computation units per command.
const COMMAND_COMPUTATION_UNITS: u64 = 1_000;
/// Most objects one owner listing returns per page.
const MAX_PAGE: usize = 1_000;
/// Most commands one transaction may carry (a local bound; Sui's is 1 024).
const MAX_COMMANDS: usize = 1_024;
/// The Sui system state object (`0x5`).
const SYSTEM_STATE: Address = Address::from_static("0x5");

pub use crate::move_staking::{apys_from_csv, ValidatorSpec};

/// What a local Sui chain starts from.
#[derive(Debug, Clone)]
pub struct SuiGenesis {
    /// The active validators.
    pub validators: Vec<ValidatorSpec>,
    /// Network APY per epoch, basis points, cycled (the rewards of each epoch change).
    pub apy_bps: Vec<u64>,
    /// Coins at genesis: (owner address, MIST), one coin object each.
    pub coins: Vec<(String, u64)>,
    /// Chain time of epoch 0's start, Unix milliseconds.
    pub genesis_ms: u64,
    /// Epoch length, milliseconds (mainnet 86 400 000).
    pub epoch_ms: u64,
    /// Reference gas price, MIST per computation unit.
    pub reference_gas_price: u64,
    /// The chain id reported (the genesis checkpoint digest on a real network).
    pub chain_id: String,
    /// Real milliseconds per epoch for a chain running on its own; 0 = only
    /// [`LocalSui::advance_epochs`] ends epochs.
    pub tick_epoch_ms: u64,
}

/// Reads validators from CSV text with the header `address,name,commission_bps,stake_sui`
/// (stake in whole SUI; see [`crate::move_staking::validators_from_csv`]), addresses
/// checked as Sui addresses.
///
/// # Errors
/// A malformed row, naming its line and field.
pub fn validators_from_csv(text: &str) -> anyhow::Result<Vec<ValidatorSpec>> {
    crate::move_staking::validators_from_csv(text, |a| Address::from_str(a).map(|_| ()).map_err(|e| e.to_string()))
}

/// What an object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `0x2::coin::Coin<0x2::sui::SUI>` with its balance, MIST.
    Coin(u64),
    /// `0x3::staking_pool::StakedSui`.
    Staked(StakedCoin),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Obj {
    owner: Address,
    version: u64,
    kind: Kind,
}

impl Obj {
    fn digest(&self, id: &Address) -> Digest {
        let mut h = Hasher::new();
        h.update(id.as_bytes());
        h.update(self.version.to_le_bytes());
        h.finalize()
    }
}

/// A withdrawal's `0x3::validator::UnstakingRequestEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Unstaking {
    pool_id: Address,
    validator_address: Address,
    staker_address: Address,
    stake_activation_epoch: u64,
    unstaking_epoch: u64,
    principal_amount: u64,
    reward_amount: u64,
}

/// A failed execution: the error kind, and the Move abort when it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    kind: pb::execution_error::ExecutionErrorKind,
    description: String,
    command: u64,
    abort: Option<Abort>,
}

#[derive(Debug, Clone)]
struct Executed {
    transaction: Transaction,
    signatures: Vec<UserSignature>,
    epoch: u64,
    checkpoint: u64,
    timestamp_ms: u64,
    failure: Option<Failure>,
    gas: (u64, u64, u64),
    events: Vec<Unstaking>,
    gas_object: (Address, u64),
}

#[derive(Debug, Clone)]
struct State {
    system: StakingSystem,
    names: Vec<String>,
    addresses: Vec<Address>,
    apy_bps: Vec<u64>,
    objects: BTreeMap<Address, Obj>,
    txs: HashMap<Digest, Executed>,
    system_version: u64,
    checkpoint: u64,
    now_ms: u64,
    genesis_ms: u64,
    epoch_ms: u64,
    rgp: u64,
    chain_id: String,
}

/// A running local Sui chain; dropping it stops the server.
pub struct LocalSui {
    /// gRPC endpoint (`http://127.0.0.1:<port>`).
    pub url: String,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LocalSui {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSui").field("url", &self.url).finish()
    }
}

impl Drop for LocalSui {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn pool_object_id(pool: usize) -> Address {
    Address::new(Hasher::digest(format!("staking_pool:{pool}")).into_inner())
}

fn new_object_id(tx: &Digest, index: u64) -> Address {
    let mut h = Hasher::new();
    h.update(tx.as_bytes());
    h.update(index.to_le_bytes());
    Address::new(h.finalize().into_inner())
}

impl State {
    fn genesis(g: &SuiGenesis) -> anyhow::Result<State> {
        let addresses = g
            .validators
            .iter()
            .map(|v| Address::from_str(&v.address).with_context(|| format!("validator {}", v.address)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // the staking system names validators by their canonical address (0x + 64 hex)
        let specs: Vec<(String, u64, u64)> = g
            .validators
            .iter()
            .zip(&addresses)
            .map(|(v, a)| (a.to_string(), v.commission_bps, v.stake))
            .collect();
        let system = StakingSystem::genesis(&specs).map_err(|a| anyhow::anyhow!("genesis: {a}"))?;
        if g.apy_bps.is_empty() || g.epoch_ms == 0 || g.reference_gas_price == 0 {
            bail!("genesis needs APYs, an epoch length and a reference gas price");
        }
        let mut objects = BTreeMap::new();
        for (i, (owner, mist)) in g.coins.iter().enumerate() {
            let owner = Address::from_str(owner).with_context(|| format!("coin owner {owner}"))?;
            let id = Address::new(Hasher::digest(format!("genesis coin {i}")).into_inner());
            objects.insert(
                id,
                Obj {
                    owner,
                    version: 1,
                    kind: Kind::Coin(*mist),
                },
            );
        }
        Ok(State {
            system,
            names: g.validators.iter().map(|v| v.name.clone()).collect(),
            addresses,
            apy_bps: g.apy_bps.clone(),
            objects,
            txs: HashMap::new(),
            system_version: 1,
            checkpoint: 0,
            now_ms: g.genesis_ms,
            genesis_ms: g.genesis_ms,
            epoch_ms: g.epoch_ms,
            rgp: g.reference_gas_price,
            chain_id: g.chain_id.clone(),
        })
    }

    /// The SUI coins `owner` holds, MIST.
    fn coin_balance(&self, owner: &Address) -> u64 {
        self.objects
            .values()
            .filter(|o| o.owner == *owner)
            .filter_map(|o| match o.kind {
                Kind::Coin(b) => Some(b),
                Kind::Staked(_) => None,
            })
            .sum()
    }

    fn epoch_start_ms(&self) -> u64 {
        self.genesis_ms + self.system.epoch * self.epoch_ms
    }

    /// Ends the epoch: rewards at the epoch's APY on the active pools' coins, shared by
    /// stake; the commission stakes go to the validators.
    fn advance_epoch(&mut self) -> anyhow::Result<()> {
        let apy = self.apy_bps[(self.system.epoch as usize) % self.apy_bps.len()];
        let reward = self
            .system
            .epoch_reward(apy, self.epoch_ms)
            .map_err(|a| anyhow::anyhow!("epoch reward: {}", a))?;
        let commissions = self
            .system
            .advance_epoch(reward)
            .map_err(|a| anyhow::anyhow!("advance_epoch: {a}"))?;
        for (i, c) in commissions.into_iter().enumerate() {
            let owner = self.addresses[c.pool_id];
            let id = Address::new(Hasher::digest(format!("commission {} {i}", self.system.epoch)).into_inner());
            self.objects.insert(
                id,
                Obj {
                    owner,
                    version: 1,
                    kind: Kind::Staked(c),
                },
            );
        }
        self.system_version += 1;
        self.now_ms = self.epoch_start_ms();
        self.checkpoint += 1;
        Ok(())
    }

    fn owned_ref(&self, r: &ObjectReference, sender: &Address) -> Result<Obj, Status> {
        let obj = self.objects.get(r.object_id()).ok_or_else(|| {
            Status::invalid_argument(format!(
                "Could not find the referenced object {} at version {:?}",
                r.object_id(),
                Some(r.version())
            ))
        })?;
        if obj.version != r.version() || obj.digest(r.object_id()) != *r.digest() {
            return Err(Status::invalid_argument(format!(
                "Object ID {} Version {} Digest {} is not available for consumption, current version: {}",
                r.object_id(),
                r.version(),
                r.digest(),
                obj.version
            )));
        }
        if obj.owner != *sender {
            return Err(Status::invalid_argument(format!(
                "Object {} is owned by account address {}, but given owner/signer address is {}",
                r.object_id(),
                obj.owner,
                sender
            )));
        }
        Ok(*obj)
    }

    /// The checks a validator makes before running: signature, expiry, gas, inputs.
    fn check(&self, tx: &Transaction, sigs: &[UserSignature]) -> Result<(), Status> {
        let [sig] = sigs else {
            return Err(Status::invalid_argument(format!(
                "Expected 1 signature, got {}",
                sigs.len()
            )));
        };
        let UserSignature::Simple(SimpleSignature::Ed25519 { public_key, .. }) = sig else {
            return Err(Status::invalid_argument(
                "this local chain verifies Ed25519 signatures only",
            ));
        };
        SimpleVerifier
            .verify_transaction(tx, sig)
            .map_err(|e| Status::invalid_argument(format!("Invalid user signature: Signature is not valid: {e}")))?;
        if public_key.derive_address() != tx.sender {
            return Err(Status::invalid_argument(format!(
                "IncorrectSigner: signer {} is not the sender {}",
                public_key.derive_address(),
                tx.sender
            )));
        }
        self.check_unsigned(tx)
    }

    fn check_unsigned(&self, tx: &Transaction) -> Result<(), Status> {
        if let TransactionExpiration::Epoch(e) = tx.expiration {
            if self.system.epoch > e {
                return Err(Status::invalid_argument("Transaction Expired"));
            }
        }
        if tx.gas_payment.owner != tx.sender {
            return Err(Status::invalid_argument(
                "sponsored transactions are not supported here",
            ));
        }
        if tx.gas_payment.price < self.rgp {
            return Err(Status::invalid_argument(format!(
                "Gas price {} under reference gas price (RGP) {}",
                tx.gas_payment.price, self.rgp
            )));
        }
        let [gas] = tx.gas_payment.objects.as_slice() else {
            return Err(Status::invalid_argument("exactly one gas coin, please"));
        };
        let coin = self.owned_ref(gas, &tx.sender)?;
        let Kind::Coin(balance) = coin.kind else {
            return Err(Status::invalid_argument(format!(
                "Gas object {} is not a gas coin",
                gas.object_id()
            )));
        };
        let min_budget = self.rgp * BASE_COMPUTATION_UNITS;
        if tx.gas_payment.budget < min_budget {
            return Err(Status::invalid_argument(format!(
                "Gas budget: {} is lower than min: {min_budget}.",
                tx.gas_payment.budget
            )));
        }
        if balance < tx.gas_payment.budget {
            return Err(Status::invalid_argument(format!(
                "Balance of gas object {balance} is lower than the needed amount: {}",
                tx.gas_payment.budget
            )));
        }
        let TransactionKind::ProgrammableTransaction(ptb) = &tx.kind else {
            return Err(Status::invalid_argument("only programmable transactions"));
        };
        if ptb.commands.is_empty() || ptb.commands.len() > MAX_COMMANDS {
            return Err(Status::invalid_argument("a transaction needs 1 to 1 024 commands"));
        }
        for input in &ptb.inputs {
            match input {
                Input::Pure(_) => {}
                Input::ImmutableOrOwned(r) => {
                    if r.object_id() == gas.object_id() {
                        return Err(Status::invalid_argument(format!(
                            "Gas object {} cannot also be an input of the transaction",
                            gas.object_id()
                        )));
                    }
                    self.owned_ref(r, &tx.sender)?;
                }
                Input::Shared(s) if s.object_id() == SYSTEM_STATE => {
                    if s.version() != 1 {
                        return Err(Status::invalid_argument(format!(
                            "Shared object 0x5 has initial shared version 1, not {}",
                            s.version()
                        )));
                    }
                }
                other => {
                    return Err(Status::invalid_argument(format!(
                        "this local chain takes pure values, owned objects and 0x5 as inputs, not {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// Runs `tx` (checked) and records it; returns its digest.
    fn execute(&mut self, tx: Transaction, sigs: Vec<UserSignature>) -> Executed {
        let digest = tx.digest();
        let lamport = self.lamport(&tx);
        let mut next = self.clone();
        let run = Run::new(&tx, digest);
        let result = run.apply(&mut next);
        let commands = match &tx.kind {
            TransactionKind::ProgrammableTransaction(p) => p.commands.len() as u64,
            _ => 0,
        };
        let computation = (BASE_COMPUTATION_UNITS + COMMAND_COMPUTATION_UNITS * commands) * tx.gas_payment.price;
        let (failure, events, written, rebated) = match result {
            Ok(out) => (None, out.events, out.written, out.rebated),
            Err(f) => (Some(f), Vec::new(), 0, 0),
        };
        // the gas coin is always written, and its old version rebated
        let storage = STORAGE_PER_OBJECT_MIST * (written + 1);
        let rebate = REBATE_PER_OBJECT_MIST * (rebated + 1);
        let (failure, storage, rebate) = if failure.is_none() && computation + storage > tx.gas_payment.budget {
            let f = Failure {
                kind: pb::execution_error::ExecutionErrorKind::InsufficientGas,
                description: "InsufficientGas".into(),
                command: 0,
                abort: None,
            };
            (Some(f), STORAGE_PER_OBJECT_MIST, REBATE_PER_OBJECT_MIST)
        } else {
            (failure, storage, rebate)
        };
        if failure.is_some() {
            next = self.clone();
        }
        let gas_id = *tx.gas_payment.objects[0].object_id();
        let charge = (computation + storage).saturating_sub(rebate);
        // the shared system state is written even by a failed transaction (Sui bumps every
        // mutable shared input's version)
        next.system_version = lamport;
        if let Some(gas) = next.objects.get_mut(&gas_id) {
            if let Kind::Coin(b) = &mut gas.kind {
                *b = b.saturating_sub(charge);
            }
            gas.version = lamport;
        }
        next.checkpoint += 1;
        next.now_ms = (next.now_ms + 1_000).min(next.epoch_start_ms() + next.epoch_ms - 1);
        let executed = Executed {
            transaction: tx,
            signatures: sigs,
            epoch: next.system.epoch,
            checkpoint: next.checkpoint,
            timestamp_ms: next.now_ms,
            failure,
            gas: (computation, storage, rebate),
            events,
            gas_object: (gas_id, lamport),
        };
        next.txs.insert(digest, executed.clone());
        *self = next;
        executed
    }

    /// The version every object a transaction writes takes: one past its inputs'.
    fn lamport(&self, tx: &Transaction) -> u64 {
        let mut v = self.system_version;
        for r in &tx.gas_payment.objects {
            v = v.max(r.version());
        }
        if let TransactionKind::ProgrammableTransaction(p) = &tx.kind {
            for i in &p.inputs {
                if let Input::ImmutableOrOwned(r) = i {
                    v = v.max(r.version());
                }
            }
        }
        v + 1
    }
}

struct RunOut {
    events: Vec<Unstaking>,
    written: u64,
    rebated: u64,
}

/// One programmable transaction's commands over a copy of the state.
struct Run<'a> {
    tx: &'a Transaction,
    digest: Digest,
}

fn abort(command: usize, a: Abort) -> Failure {
    Failure {
        kind: pb::execution_error::ExecutionErrorKind::MoveAbort,
        description: format!("{a} in command {command}"),
        command: command as u64,
        abort: Some(a),
    }
}

fn unsupported(command: usize, what: &str) -> Failure {
    failure_of(move_ptb::Fail::Unsupported {
        command,
        what: what.to_string(),
    })
}

/// The shared interpreter's failure as Sui's execution error.
fn failure_of(f: move_ptb::Fail) -> Failure {
    use pb::execution_error::ExecutionErrorKind as K;
    let kind = match &f {
        move_ptb::Fail::Abort { command, abort: a } => return abort(*command, *a),
        move_ptb::Fail::Unsupported { .. } => K::FeatureNotYetSupported,
        move_ptb::Fail::Argument { .. } => K::CommandArgumentError,
        move_ptb::Fail::FunctionNotFound { .. } => K::FunctionNotFound,
        move_ptb::Fail::InsufficientCoinBalance { .. } => K::InsufficientCoinBalance,
        move_ptb::Fail::UnusedValue { .. } => K::UnusedValueWithoutDrop,
    };
    Failure {
        kind,
        description: f.to_string(),
        command: f.command().unwrap_or(0) as u64,
        abort: None,
    }
}

fn arg(a: &Argument) -> move_ptb::Arg {
    match *a {
        Argument::Gas => move_ptb::Arg::Gas,
        Argument::Input(i) => move_ptb::Arg::Input(i),
        Argument::Result(r) => move_ptb::Arg::Result(r),
        Argument::NestedResult(r, k) => move_ptb::Arg::NestedResult(r, k),
        #[allow(unreachable_patterns)]
        _ => move_ptb::Arg::Unknown,
    }
}

fn args(a: &[Argument]) -> Vec<move_ptb::Arg> {
    a.iter().map(arg).collect()
}

/// The command in the shared interpreter's form.
fn command(c: &Command) -> move_ptb::Cmd {
    match c {
        Command::SplitCoins(s) => move_ptb::Cmd::SplitCoins {
            coin: arg(&s.coin),
            amounts: args(&s.amounts),
        },
        Command::MergeCoins(m) => move_ptb::Cmd::MergeCoins {
            coin: arg(&m.coin),
            coins: args(&m.coins_to_merge),
        },
        Command::MoveCall(m) => move_ptb::Cmd::MoveCall {
            system_package: m.package == Address::THREE,
            module: m.module.as_str().to_string(),
            function: m.function.as_str().to_string(),
            args: args(&m.arguments),
        },
        other => move_ptb::Cmd::Other(format!("{other:?}")),
    }
}

impl<'a> Run<'a> {
    fn new(tx: &'a Transaction, digest: Digest) -> Run<'a> {
        Run { tx, digest }
    }

    /// Runs the transaction with the shared interpreter and applies its outcome to `s`'s
    /// objects: merged coins and withdrawn StakedSui deleted, split ones changed, new objects
    /// for the sender (ids from the digest), the gas coin's balance, every written object at
    /// the lamport version.
    fn apply(&self, s: &mut State) -> Result<RunOut, Failure> {
        let TransactionKind::ProgrammableTransaction(ptb) = &self.tx.kind else {
            return Err(unsupported(0, "a non-programmable transaction"));
        };
        let gas_id = *self.tx.gas_payment.objects[0].object_id();
        let Some(Obj {
            kind: Kind::Coin(gas_balance),
            ..
        }) = s.objects.get(&gas_id).copied()
        else {
            return Err(unsupported(0, "a gas object that is not a coin"));
        };
        let ids: Vec<Option<Address>> = ptb
            .inputs
            .iter()
            .map(|i| match i {
                Input::ImmutableOrOwned(r) => Some(*r.object_id()),
                _ => None,
            })
            .collect();
        let inputs: Vec<move_ptb::In> = ptb
            .inputs
            .iter()
            .map(|i| match i {
                Input::Pure(b) => move_ptb::In::Pure(b.clone()),
                Input::ImmutableOrOwned(r) => match s.objects.get(r.object_id()).map(|o| o.kind) {
                    Some(Kind::Coin(b)) => move_ptb::In::Coin(b),
                    Some(Kind::Staked(st)) => move_ptb::In::Staked(st),
                    None => move_ptb::In::Other,
                },
                Input::Shared(r) if r.object_id() == SYSTEM_STATE => move_ptb::In::System,
                _ => move_ptb::In::Other,
            })
            .collect();
        let commands: Vec<move_ptb::Cmd> = ptb.commands.iter().map(command).collect();
        let out = move_ptb::run(
            &mut s.system,
            &move_ptb::Ptb {
                system_module: "sui_system",
                inputs: &inputs,
                commands: &commands,
                gas_balance,
                budget: self.tx.gas_payment.budget,
            },
        )
        .map_err(failure_of)?;
        let lamport = s.lamport(self.tx);
        let input_id = |i: &u16| ids.get(usize::from(*i)).copied().flatten();
        for (i, st) in &out.mutated {
            if let Some(o) = input_id(i).and_then(|id| s.objects.get_mut(&id)) {
                o.kind = Kind::Staked(*st);
            }
        }
        for i in &out.consumed {
            if let Some(id) = input_id(i) {
                s.objects.remove(&id);
            }
        }
        // every owned input left is written at the new version, changed or not
        for id in ids.iter().flatten() {
            if let Some(o) = s.objects.get_mut(id) {
                o.version = lamport;
            }
        }
        if let Some(o) = s.objects.get_mut(&gas_id) {
            o.kind = Kind::Coin(out.gas_balance);
        }
        for (k, c) in out.created.iter().enumerate() {
            let kind = match *c {
                move_ptb::Created::Coin(b) => Kind::Coin(b),
                move_ptb::Created::Staked(st) => Kind::Staked(st),
            };
            s.objects.insert(
                new_object_id(&self.digest, k as u64),
                Obj {
                    owner: self.tx.sender,
                    version: lamport,
                    kind,
                },
            );
        }
        s.system_version = lamport;
        let events = out
            .withdrawals
            .iter()
            .map(|(st, w)| Unstaking {
                pool_id: pool_object_id(st.pool_id),
                validator_address: s.addresses[st.pool_id],
                staker_address: self.tx.sender,
                stake_activation_epoch: st.stake_activation_epoch,
                unstaking_epoch: s.system.epoch,
                principal_amount: w.principal_amount,
                reward_amount: w.reward_amount,
            })
            .collect();
        Ok(RunOut {
            events,
            written: out.written,
            rebated: out.rebated,
        })
    }
}

// ---------------------------------------------------------------------------------------
// The wire: proto messages
// ---------------------------------------------------------------------------------------

fn timestamp(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (ms / 1_000) as i64,
        nanos: ((ms % 1_000) * 1_000_000) as i32,
    }
}

fn staked_sui_type() -> StructTag {
    StructTag::staked_sui()
}

fn coin_type() -> StructTag {
    StructTag::gas_coin()
}

fn object_proto(id: &Address, o: &Obj) -> pb::Object {
    let mut p = pb::Object::default();
    p.object_id = Some(id.to_string());
    p.version = Some(o.version);
    p.digest = Some(o.digest(id).to_string());
    let mut owner = pb::Owner::default();
    owner.kind = Some(pb::owner::OwnerKind::Address as i32);
    owner.address = Some(o.owner.to_string());
    p.owner = Some(owner);
    let (ty, contents) = match o.kind {
        Kind::Coin(b) => {
            p.balance = Some(b);
            (coin_type(), bcs::to_bytes(&(id, b)))
        }
        Kind::Staked(st) => (
            staked_sui_type(),
            bcs::to_bytes(&(id, pool_object_id(st.pool_id), st.stake_activation_epoch, st.principal)),
        ),
    };
    p.object_type = Some(ty.to_string());
    let mut b = pb::Bcs::from(contents.unwrap_or_default());
    b.name = Some(ty.to_string());
    p.contents = Some(b);
    p
}

fn system_object_proto(version: u64) -> pb::Object {
    let mut p = pb::Object::default();
    let id = SYSTEM_STATE;
    p.object_id = Some(id.to_string());
    p.version = Some(version);
    let mut owner = pb::Owner::default();
    owner.kind = Some(pb::owner::OwnerKind::Shared as i32);
    owner.version = Some(1);
    p.owner = Some(owner);
    p.object_type = Some("0x3::sui_system::SuiSystemState".into());
    p
}

fn executed_proto(digest: &Digest, e: &Executed) -> pb::ExecutedTransaction {
    let mut t = pb::ExecutedTransaction::default();
    t.digest = Some(digest.to_string());
    t.transaction = Some(pb::Transaction::from(e.transaction.clone()));
    t.signatures = e.signatures.iter().cloned().map(pb::UserSignature::from).collect();
    t.checkpoint = Some(e.checkpoint);
    t.timestamp = Some(timestamp(e.timestamp_ms));
    let mut effects = pb::TransactionEffects::default();
    effects.transaction_digest = Some(digest.to_string());
    effects.epoch = Some(e.epoch);
    let mut status = pb::ExecutionStatus::default();
    status.success = Some(e.failure.is_none());
    if let Some(f) = &e.failure {
        let mut err = pb::ExecutionError::default();
        err.description = Some(f.description.clone());
        err.command = Some(f.command);
        err.kind = Some(f.kind as i32);
        if let Some(a) = f.abort {
            let (module, constant) = a.name().split_once("::").unwrap_or(("", a.name()));
            let mut m = pb::MoveAbort::default();
            m.abort_code = Some(a.code());
            let mut loc = pb::MoveLocation::default();
            loc.package = Some(Address::THREE.to_string());
            loc.module = Some(module.to_string());
            m.location = Some(loc);
            let mut clever = pb::CleverError::default();
            clever.error_code = Some(a.code());
            clever.constant_name = Some(constant.to_string());
            m.clever_error = Some(clever);
            err.error_details = Some(pb::execution_error::ErrorDetails::Abort(m));
        }
        status.error = Some(err);
    }
    effects.status = Some(status);
    let mut gas = pb::GasCostSummary::default();
    gas.computation_cost = Some(e.gas.0);
    gas.storage_cost = Some(e.gas.1);
    gas.storage_rebate = Some(e.gas.2);
    gas.non_refundable_storage_fee = Some(0);
    effects.gas_used = Some(gas);
    let mut gas_object = pb::ChangedObject::default();
    gas_object.object_id = Some(e.gas_object.0.to_string());
    gas_object.output_version = Some(e.gas_object.1);
    effects.gas_object = Some(gas_object);
    t.effects = Some(effects);
    let mut events = pb::TransactionEvents::default();
    events.events = e
        .events
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut ev = pb::Event::default();
            ev.package_id = Some(Address::THREE.to_string());
            ev.module = Some("validator".into());
            ev.sender = Some(u.staker_address.to_string());
            ev.event_type = Some("0x3::validator::UnstakingRequestEvent".into());
            let mut b = pb::Bcs::from(bcs::to_bytes(u).unwrap_or_default());
            b.name = Some("0x3::validator::UnstakingRequestEvent".into());
            ev.contents = Some(b);
            ev.checkpoint = Some(e.checkpoint);
            ev.transaction_digest = Some(digest.to_string());
            ev.event_index = Some(i as u32);
            ev
        })
        .collect();
    t.events = Some(events);
    t
}

fn epoch_proto(s: &State) -> pb::Epoch {
    let mut e = pb::Epoch::default();
    e.epoch = Some(s.system.epoch);
    e.reference_gas_price = Some(s.rgp);
    e.start = Some(timestamp(s.epoch_start_ms()));
    let mut state = pb::SystemState::default();
    state.epoch = Some(s.system.epoch);
    state.reference_gas_price = Some(s.rgp);
    state.epoch_start_timestamp_ms = Some(s.epoch_start_ms());
    let mut params = pb::SystemParameters::default();
    params.epoch_duration_ms = Some(s.epoch_ms);
    state.parameters = Some(params);
    let mut set = pb::ValidatorSet::default();
    let mut total = 0u64;
    for (i, v) in s.system.validators.iter().enumerate() {
        if v.pool.deactivation_epoch.is_some() {
            continue;
        }
        total = total.saturating_add(v.pool.coin_balance);
        let mut val = pb::Validator::default();
        val.name = Some(s.names[i].clone());
        val.address = Some(s.addresses[i].to_string());
        val.commission_rate = Some(v.commission_rate_bps);
        val.next_epoch_commission_rate = Some(v.commission_rate_bps);
        val.next_epoch_stake = Some(v.stake());
        val.gas_price = Some(s.rgp);
        let mut pool = pb::StakingPool::default();
        pool.id = Some(pool_object_id(i).to_string());
        pool.activation_epoch = Some(v.pool.activation_epoch);
        pool.sui_balance = Some(v.pool.coin_balance);
        pool.rewards_pool = Some(v.pool.rewards_pool);
        pool.pool_token_balance = Some(v.pool.pool_token_balance);
        pool.pending_stake = Some(v.pool.pending_stake);
        pool.pending_total_sui_withdraw = Some(v.pool.pending_total_withdraw);
        pool.pending_pool_token_withdraw = Some(v.pool.pending_pool_token_withdraw);
        val.staking_pool = Some(pool);
        set.active_validators.push(val);
    }
    set.total_stake = Some(total);
    state.validators = Some(set);
    e.system_state = Some(Box::new(state));
    e
}

fn parse_address(what: &str, s: Option<&str>) -> Result<Address, Status> {
    let s = s.ok_or_else(|| Status::invalid_argument(format!("missing {what}")))?;
    Address::from_str(s).map_err(|e| Status::invalid_argument(format!("invalid {what} {s:?}: {e}")))
}

fn decode_tx(t: Option<&pb::Transaction>) -> Result<Transaction, Status> {
    let t = t.ok_or_else(|| Status::invalid_argument("missing transaction"))?;
    Transaction::try_from(t).map_err(|e| Status::invalid_argument(format!("invalid transaction: {e}")))
}

// ---------------------------------------------------------------------------------------
// The services
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Svc(Arc<Mutex<State>>);

#[tonic::async_trait]
impl pb::ledger_service_server::LedgerService for Svc {
    async fn get_service_info(
        &self,
        _: Request<pb::GetServiceInfoRequest>,
    ) -> Result<Response<pb::GetServiceInfoResponse>, Status> {
        let s = lock(&self.0);
        let mut r = pb::GetServiceInfoResponse::default();
        r.chain_id = Some(s.chain_id.clone());
        r.chain = Some("localnet".into());
        r.epoch = Some(s.system.epoch);
        r.checkpoint_height = Some(s.checkpoint);
        r.timestamp = Some(timestamp(s.now_ms));
        r.lowest_available_checkpoint = Some(0);
        r.server = Some("softstake sui-localnet".into());
        Ok(Response::new(r))
    }

    async fn get_object(&self, req: Request<pb::GetObjectRequest>) -> Result<Response<pb::GetObjectResponse>, Status> {
        let id = parse_address("object_id", req.get_ref().object_id.as_deref())?;
        let s = lock(&self.0);
        let object = if id == SYSTEM_STATE {
            system_object_proto(s.system_version)
        } else {
            let o = s
                .objects
                .get(&id)
                .ok_or_else(|| Status::not_found(format!("Object {id} not found")))?;
            object_proto(&id, o)
        };
        let mut r = pb::GetObjectResponse::default();
        r.object = Some(object);
        Ok(Response::new(r))
    }

    async fn get_transaction(
        &self,
        req: Request<pb::GetTransactionRequest>,
    ) -> Result<Response<pb::GetTransactionResponse>, Status> {
        let d = req
            .get_ref()
            .digest
            .as_deref()
            .ok_or_else(|| Status::invalid_argument("missing digest"))?;
        let digest = Digest::from_str(d).map_err(|e| Status::invalid_argument(format!("invalid digest {d:?}: {e}")))?;
        let s = lock(&self.0);
        let e = s
            .txs
            .get(&digest)
            .ok_or_else(|| Status::not_found(format!("Transaction {digest} not found")))?;
        let mut r = pb::GetTransactionResponse::default();
        r.transaction = Some(executed_proto(&digest, e));
        Ok(Response::new(r))
    }

    async fn get_epoch(&self, req: Request<pb::GetEpochRequest>) -> Result<Response<pb::GetEpochResponse>, Status> {
        let s = lock(&self.0);
        if let Some(e) = req.get_ref().epoch {
            if e != s.system.epoch {
                return Err(Status::not_found(format!(
                    "this local chain serves the current epoch only, not {e}"
                )));
            }
        }
        let mut r = pb::GetEpochResponse::default();
        r.epoch = Some(epoch_proto(&s));
        Ok(Response::new(r))
    }
}

#[tonic::async_trait]
impl pb::state_service_server::StateService for Svc {
    async fn list_owned_objects(
        &self,
        req: Request<pb::ListOwnedObjectsRequest>,
    ) -> Result<Response<pb::ListOwnedObjectsResponse>, Status> {
        let q = req.get_ref();
        let owner = parse_address("owner", q.owner.as_deref())?;
        let want = q
            .object_type
            .as_deref()
            .map(|t| {
                StructTag::from_str(t).map_err(|e| Status::invalid_argument(format!("invalid object_type {t:?}: {e}")))
            })
            .transpose()?;
        let size = q.page_size.map_or(50, |n| (n as usize).clamp(1, MAX_PAGE));
        let start = match q.page_token.as_deref() {
            None => 0,
            Some(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<usize>().ok())
                .ok_or_else(|| Status::invalid_argument("invalid page_token"))?,
        };
        let s = lock(&self.0);
        let all: Vec<pb::Object> = s
            .objects
            .iter()
            .filter(|(_, o)| o.owner == owner)
            .filter(|(_, o)| {
                let ty = match o.kind {
                    Kind::Coin(_) => coin_type(),
                    Kind::Staked(_) => staked_sui_type(),
                };
                want.as_ref().is_none_or(|w| *w == ty)
            })
            .map(|(id, o)| object_proto(id, o))
            .collect();
        let mut r = pb::ListOwnedObjectsResponse::default();
        r.objects = all.iter().skip(start).take(size).cloned().collect();
        if start + size < all.len() {
            r.next_page_token = Some((start + size).to_string().into_bytes().into());
        }
        Ok(Response::new(r))
    }

    async fn get_balance(
        &self,
        req: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::GetBalanceResponse>, Status> {
        let q = req.get_ref();
        let owner = parse_address("owner", q.owner.as_deref())?;
        let ty = q.coin_type.as_deref().unwrap_or("0x2::sui::SUI");
        let tag =
            StructTag::from_str(ty).map_err(|e| Status::invalid_argument(format!("invalid coin_type {ty:?}: {e}")))?;
        let s = lock(&self.0);
        let total = if tag == StructTag::sui() {
            s.coin_balance(&owner)
        } else {
            0
        };
        let mut b = pb::Balance::default();
        b.coin_type = Some(ty.to_string());
        b.balance = Some(total);
        b.coin_balance = Some(total);
        b.address_balance = Some(0);
        let mut r = pb::GetBalanceResponse::default();
        r.balance = Some(b);
        Ok(Response::new(r))
    }
}

#[tonic::async_trait]
impl pb::transaction_execution_service_server::TransactionExecutionService for Svc {
    async fn execute_transaction(
        &self,
        req: Request<pb::ExecuteTransactionRequest>,
    ) -> Result<Response<pb::ExecuteTransactionResponse>, Status> {
        let q = req.get_ref();
        let tx = decode_tx(q.transaction.as_ref())?;
        let sigs = q
            .signatures
            .iter()
            .map(|s| {
                UserSignature::try_from(s).map_err(|e| Status::invalid_argument(format!("invalid signature: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let digest = tx.digest();
        let mut s = lock(&self.0);
        // the same transaction again: its first effects, nothing runs twice
        if let Some(e) = s.txs.get(&digest) {
            return Ok(Response::new(pb::ExecuteTransactionResponse::new(executed_proto(
                &digest, e,
            ))));
        }
        s.check(&tx, &sigs)?;
        let executed = s.execute(tx, sigs);
        Ok(Response::new(pb::ExecuteTransactionResponse::new(executed_proto(
            &digest, &executed,
        ))))
    }

    async fn simulate_transaction(
        &self,
        req: Request<pb::SimulateTransactionRequest>,
    ) -> Result<Response<pb::SimulateTransactionResponse>, Status> {
        // a transaction given as a bare PTB (no BCS, no gas): the read-only calls sui-rpc's
        // helpers make (`get_validator_address_by_pool_id`, `calculate_rewards`)
        if let Some(t) = req.get_ref().transaction.as_ref().filter(|t| t.bcs.is_none()) {
            return Ok(Response::new(inspect(&lock(&self.0), t)?));
        }
        let tx = decode_tx(req.get_ref().transaction.as_ref())?;
        let digest = tx.digest();
        let mut sim = lock(&self.0).clone();
        sim.check_unsigned(&tx)?;
        let executed = sim.execute(tx, Vec::new());
        let mut r = pb::SimulateTransactionResponse::default();
        r.transaction = Some(executed_proto(&digest, &executed));
        r.suggested_gas_price = Some(sim.rgp);
        Ok(Response::new(r))
    }
}

/// The pure input a bare PTB's argument names.
fn inspect_input<'a>(ptb: &'a pb::ProgrammableTransaction, a: Option<&pb::Argument>) -> Result<&'a pb::Input, Status> {
    a.and_then(|a| a.input)
        .and_then(|i| ptb.inputs.get(i as usize))
        .ok_or_else(|| Status::invalid_argument("a Move call argument that is not an input"))
}

/// Answers the read-only Move calls of a bare PTB, one output each:
/// `0x3::sui_system::validator_address_by_pool_id(0x5, pool_id)` (active and departed
/// validators, as `staking_pool_mappings` and `inactive_validators` answer it) and
/// `0x3::sui_system::calculate_rewards(0x5, staked)` (the reward alone, MIST).
fn inspect(s: &State, t: &pb::Transaction) -> Result<pb::SimulateTransactionResponse, Status> {
    let Some(pb::transaction_kind::Data::ProgrammableTransaction(ptb)) = t.kind.as_ref().and_then(|k| k.data.as_ref())
    else {
        return Err(Status::invalid_argument(
            "a transaction without BCS must be a programmable transaction",
        ));
    };
    if ptb.commands.len() > MAX_COMMANDS {
        return Err(Status::invalid_argument("a transaction needs 1 to 1 024 commands"));
    }
    let mut outputs = Vec::with_capacity(ptb.commands.len());
    for cmd in &ptb.commands {
        let Some(pb::command::Command::MoveCall(m)) = &cmd.command else {
            return Err(Status::unimplemented(
                "only Move calls are inspected by this local chain",
            ));
        };
        let (name, value) = match (m.module.as_deref(), m.function.as_deref()) {
            (Some("sui_system"), Some("validator_address_by_pool_id")) => {
                let input = inspect_input(ptb, m.arguments.get(1))?;
                let pool = Address::from_bytes(input.pure.as_deref().unwrap_or_default())
                    .map_err(|e| Status::invalid_argument(format!("pool id: {e}")))?;
                let i = (0..s.addresses.len())
                    .find(|i| pool_object_id(*i) == pool)
                    .ok_or_else(|| Status::invalid_argument(format!("{} for pool {pool}", Abort::NoPoolFound)))?;
                ("address", s.addresses[i].as_bytes().to_vec())
            }
            (Some("sui_system"), Some("calculate_rewards")) => {
                let input = inspect_input(ptb, m.arguments.get(1))?;
                let id = parse_address("object_id", input.object_id.as_deref())?;
                let Some(Obj {
                    kind: Kind::Staked(st), ..
                }) = s.objects.get(&id)
                else {
                    return Err(Status::invalid_argument(format!("{id} is not a StakedSui")));
                };
                let total = s
                    .system
                    .calculate_rewards(st)
                    .map_err(|a| Status::invalid_argument(a.to_string()))?;
                ("u64", total.saturating_sub(st.principal).to_le_bytes().to_vec())
            }
            (module, function) => {
                return Err(Status::unimplemented(format!(
                    "0x3::{}::{} is not inspected by this local chain",
                    module.unwrap_or_default(),
                    function.unwrap_or_default()
                )))
            }
        };
        let mut out = pb::CommandOutput::default();
        let mut b = pb::Bcs::from(value);
        b.name = Some(name.to_string());
        out.value = Some(b);
        let mut result = pb::CommandResult::default();
        result.return_values = vec![out];
        outputs.push(result);
    }
    let mut status = pb::ExecutionStatus::default();
    status.success = Some(true);
    let mut effects = pb::TransactionEffects::default();
    effects.status = Some(status);
    let mut executed = pb::ExecutedTransaction::default();
    executed.effects = Some(effects);
    let mut r = pb::SimulateTransactionResponse::default();
    r.transaction = Some(executed);
    r.command_outputs = outputs;
    Ok(r)
}

/// Starts a local Sui chain on 127.0.0.1:`port` (0 = any free port).
///
/// # Errors
/// A genesis that does not hold (no validators, a bad address, no APYs) or a port that
/// cannot be bound.
pub async fn start(genesis: SuiGenesis, port: u16) -> anyhow::Result<LocalSui> {
    let state = Arc::new(Mutex::new(State::genesis(&genesis)?));
    let listener = tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))?;
    let addr = listener.local_addr()?;
    let svc = Svc(state.clone());
    let router = tonic::transport::Server::builder()
        .add_service(pb::ledger_service_server::LedgerServiceServer::new(svc.clone()))
        .add_service(pb::state_service_server::StateServiceServer::new(svc.clone()))
        .add_service(pb::transaction_execution_service_server::TransactionExecutionServiceServer::new(svc));
    let ticking = state.clone();
    let tick_ms = genesis.tick_epoch_ms;
    let server = tokio::spawn(async move {
        let epochs = async move {
            if tick_ms == 0 {
                return std::future::pending::<()>().await;
            }
            let mut t = tokio::time::interval(std::time::Duration::from_millis(tick_ms));
            t.tick().await;
            loop {
                t.tick().await;
                if let Err(e) = lock(&ticking).advance_epoch() {
                    eprintln!("sui-localnet: epoch change failed: {e:#}");
                }
            }
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::select! {
            _ = router.serve_with_incoming(incoming) => {}
            _ = epochs => {}
        }
    });
    Ok(LocalSui {
        url: format!("http://{addr}"),
        state,
        server,
    })
}

impl LocalSui {
    /// Ends `n` epochs (rewards, commission, pending stakes and withdrawals settled).
    ///
    /// # Panics
    /// When an epoch change overflows (a genesis far outside real values).
    pub fn advance_epochs(&self, n: u64) {
        let mut s = lock(&self.state);
        for _ in 0..n {
            s.advance_epoch().expect("epoch change");
        }
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        lock(&self.state).system.epoch
    }

    /// The SUI coins `owner` holds, MIST.
    pub fn balance(&self, owner: &str) -> u64 {
        let Ok(owner) = Address::from_str(owner) else { return 0 };
        lock(&self.state).coin_balance(&owner)
    }

    /// `owner`'s StakedSui objects: (validator address, activation epoch, principal MIST).
    pub fn stakes(&self, owner: &str) -> Vec<(String, u64, u64)> {
        let Ok(owner) = Address::from_str(owner) else {
            return Vec::new();
        };
        let s = lock(&self.state);
        s.objects
            .values()
            .filter(|o| o.owner == owner)
            .filter_map(|o| match o.kind {
                Kind::Staked(st) => Some((
                    s.addresses[st.pool_id].to_string(),
                    st.stake_activation_epoch,
                    st.principal,
                )),
                Kind::Coin(_) => None,
            })
            .collect()
    }

    /// Rewards paid by withdrawals so far to `owner`, MIST (the `reward_amount`s).
    pub fn rewards_paid(&self, owner: &str) -> u64 {
        let Ok(owner) = Address::from_str(owner) else { return 0 };
        lock(&self.state)
            .txs
            .values()
            .flat_map(|e| e.events.iter())
            .filter(|u| u.staker_address == owner)
            .map(|u| u.reward_amount)
            .sum()
    }

    /// How many transactions have run (executed, successful or not).
    pub fn executed(&self) -> usize {
        lock(&self.state).txs.len()
    }

    /// The validator at `address` leaves the active set at the end of this epoch.
    ///
    /// # Errors
    /// `ENotAValidator` for an address not in the active set.
    pub fn remove_validator(&self, address: &str) -> anyhow::Result<()> {
        lock(&self.state)
            .system
            .request_remove_validator(address)
            .map_err(|a| anyhow::anyhow!("{a}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_bundled_data_reads() {
        let v = validators_from_csv(include_str!("../../../data/sui/validators.csv")).unwrap();
        assert_eq!((v[0].name.as_str(), v[0].commission_bps), ("InfStones", 800));
        assert_eq!(v[0].stake, 13_736_715 * SUI);
        assert_eq!((v[1].name.as_str(), v[1].stake), ("ComingChat", 38_595_086 * SUI));
        assert_eq!(
            apys_from_csv(include_str!("../../../data/sui/apy.csv")).unwrap(),
            vec![309, 295]
        );
    }

    #[test]
    fn fail_malformed_rows_are_named() {
        let head = "address,name,commission_bps,stake_sui\n";
        for (row, says) in [
            ("0x1,a,800\n", "line 2: 3 fields"),
            ("zz,a,800,1\n", "line 2: address"),
            ("0x1,a,x,1\n", "commission_bps"),
            ("0x1,a,800,99999999999999\n", "overflows"),
        ] {
            let e = validators_from_csv(&format!("{head}{row}")).unwrap_err();
            assert!(format!("{e:#}").contains(says), "{row}: {e:#}");
        }
        assert!(validators_from_csv(head).is_err(), "no validators");
        assert!(apys_from_csv("epoch,apy_bps\n1,x\n").is_err());
    }

    #[test]
    fn success_epoch_change_pays_the_configured_rate() {
        let g = SuiGenesis {
            validators: vec![ValidatorSpec {
                address: "0x1".into(),
                name: "v".into(),
                commission_bps: 0,
                stake: 1_000_000 * SUI,
            }],
            apy_bps: vec![365],
            coins: vec![],
            genesis_ms: 0,
            epoch_ms: 86_400_000,
            reference_gas_price: 1_000,
            chain_id: "t".into(),
            tick_epoch_ms: 0,
        };
        let mut s = State::genesis(&g).unwrap();
        s.advance_epoch().unwrap();
        // 3.65 % a year over 365 daily epochs: 0.01 % of the stake this epoch
        assert_eq!(s.system.validators[0].pool.rewards_pool, 100 * SUI);
        assert_eq!((s.system.epoch, s.now_ms), (1, 86_400_000));
    }
}

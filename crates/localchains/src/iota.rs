//! A local IOTA chain: the gRPC services of `iota.grpc.v1` (tonic servers generated in
//! `iota-sdk-grpc-types` from IOTA's protos) and the GraphQL subset the IOTA adapter reads,
//! over the Move staking system of [`crate::move_staking`].
//!
//! ```text
//!  LedgerService      GetServiceInfo (chain id, epoch, checkpoint, time) · GetObjects
//!                     (BCS objects) · GetTransactions (BCS effects and events, checkpoint,
//!                     time) · GetHealth · GetEpoch (number, reference gas price, start)
//!  StateService       ListOwnedObjects (owner, type: Coin<IOTA>, StakedIota; paged)
//!  TransactionExecutionService
//!                     ExecuteTransactions: BCS TransactionData and one user signature each,
//!                       checked as a validator checks them, then run; SimulateTransactions:
//!                       the same run without the signature check
//!  POST /graphql      async-graphql over the schema's own names: epoch { epochId
//!                     startTimestamp referenceGasPrice systemParameters { durationMs }
//!                     validatorSet { totalStake activeValidators(first, after) { pageInfo
//!                     nodes { address { address } name stakingPoolId commissionRate
//!                     stakingPoolIotaBalance poolTokenBalance rewardsPool pendingStake
//!                     stakingPoolActivationEpoch nextEpochStake gasPrice } } } }
//! ```
//!
//! What execution enforces, as IOTA does:
//! - the signature over Blake2b-256(intent `[0,0,0]` ‖ BCS) verified with `iota-sdk-crypto`
//!   (IOTA's own verifier, not the adapter's code), signed by the sender
//!   (`IncorrectSigner` otherwise; an IOTA address is Blake2b-256 of the key, no flag);
//! - replay protection by object versions: every owned input and the gas coin must be named
//!   at its current version and digest (the digest of the object's BCS, as the SDK computes
//!   it); the same transaction sent again returns its first effects, nothing runs twice;
//! - `TransactionExpiration::Epoch(e)`: refused once the epoch is past `e`; the gas price at
//!   least the reference gas price, the budget within the gas coin's balance;
//! - `0x3::iota_system::request_add_stake` / `request_withdraw_stake` and
//!   `0x3::staking_pool::split` with the Move aborts of `validator_set` and `staking_pool`
//!   (`EStakingBelowThreshold`, `EStakedIotaBelowThreshold`, …) as a failed execution that
//!   still pays gas; `SplitCoins` from and `MergeCoins` into the gas coin. Other commands
//!   are refused as unsupported by this local chain.
//!
//! Gas is approximated like the SUI local chain's: computation `(1 000 + 1 000 × commands)`
//! units at the gas price, storage 988 000 nanos per object written, a 99 % rebate of
//! each overwritten or deleted object. Each executed transaction is a checkpoint one second
//! after the previous; [`LocalIota::advance_epochs`] ends epochs with the rewards of the
//! configured per-epoch APYs (`advance_epoch`).
//!
//! Sources: iota-framework `iota_system.move`, `validator_set.move`, `staking_pool.move`,
//! `validator.move`; IOTA's protos `iota/grpc/v1/*.proto`; IOTA's GraphQL `schema.graphql`
//! (iota-sdk-graphql-client-build); docs.iota.org "Transaction Authentication".

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{bail, Context};
use iota_sdk::crypto::simple::SimpleVerifier;
use iota_sdk::crypto::IotaVerifier;
use iota_sdk::grpc_types::v1 as pb;
use iota_sdk::grpc_types::v1::bcs::BcsData;
use iota_sdk::types::hash::Hasher;
use iota_sdk::types::{
    Address, Argument, ChangedObject, Command, Digest, Event, ExecutionError, ExecutionStatus, GasCostSummary,
    IdOperation, Identifier, Input, MoveLocation, MoveObjectType, MoveStruct, Object, ObjectData, ObjectDigest,
    ObjectId, ObjectIn, ObjectOut, ObjectReference, Owner, SimpleSignature, StructTag, Transaction, TransactionDigest,
    TransactionEffects, TransactionEffectsV1, TransactionExpiration, TransactionKind, TransactionV1, UserSignature,
    Version,
};
use tonic::{Request, Response, Status};

use crate::move_ptb;
use crate::move_staking::{Abort, StakedCoin, StakingSystem};

pub use crate::move_staking::{apys_from_csv, ValidatorSpec};

/// Nanos per IOTA.
pub const IOTA: u64 = 1_000_000_000;
/// Storage charged per object written, nanos (as the SUI local chain).
pub const STORAGE_PER_OBJECT_NANOS: u64 = 988_000;
/// The rebate of an overwritten or deleted object, nanos (99 % of its storage charge).
pub const REBATE_PER_OBJECT_NANOS: u64 = 978_120;
/// Computation units of a transaction, before its commands.
const BASE_COMPUTATION_UNITS: u64 = 1_000;
/// Computation units per command.
const COMMAND_COMPUTATION_UNITS: u64 = 1_000;
/// Most objects one owner listing returns per page.
const MAX_PAGE: usize = 1_000;
/// Most items one batched request may carry.
const MAX_BATCH: usize = 100;
/// Most commands one transaction may carry (a local bound; IOTA's is 1 024).
const MAX_COMMANDS: usize = 1_024;
/// Most validators one GraphQL page returns (the public servers' `maxPageSize`).
const MAX_GRAPHQL_PAGE: usize = 50;

/// What a local IOTA chain starts from.
#[derive(Debug, Clone)]
pub struct IotaGenesis {
    /// The active validators.
    pub validators: Vec<ValidatorSpec>,
    /// Network APY per epoch, basis points, cycled (the rewards of each epoch change).
    pub apy_bps: Vec<u64>,
    /// Coins at genesis: (owner address, nanos), one coin object each.
    pub coins: Vec<(String, u64)>,
    /// Chain time of epoch 0's start, Unix milliseconds.
    pub genesis_ms: u64,
    /// Epoch length, milliseconds (mainnet 86 400 000).
    pub epoch_ms: u64,
    /// Reference gas price, nanos per computation unit.
    pub reference_gas_price: u64,
    /// The chain id reported: the genesis checkpoint digest on a real network, here the
    /// Blake2b-256 of this text.
    pub chain_name: String,
    /// Real milliseconds per epoch for a chain running on its own; 0 = only
    /// [`LocalIota::advance_epochs`] ends epochs.
    pub tick_epoch_ms: u64,
}

/// Reads validators from CSV text with the header `address,name,commission_bps,stake_iota`
/// (stake in whole IOTA; see [`crate::move_staking::validators_from_csv`]), addresses
/// checked as IOTA addresses.
///
/// # Errors
/// A malformed row, naming its line and field.
pub fn validators_from_csv(text: &str) -> anyhow::Result<Vec<ValidatorSpec>> {
    crate::move_staking::validators_from_csv(text, |a| Address::from_str(a).map(|_| ()).map_err(|e| e.to_string()))
}

/// The chain id a local chain named `name` reports (Blake2b-256 of the name, as base58
/// the adapter's `genesis_hash`).
pub fn chain_id_of(name: &str) -> String {
    Hasher::digest(name).to_string()
}

/// What an object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `0x2::coin::Coin<0x2::iota::IOTA>` with its balance, nanos.
    Coin(u64),
    /// `0x3::staking_pool::StakedIota`.
    Staked(StakedCoin),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Obj {
    owner: Address,
    version: u64,
    kind: Kind,
    previous_transaction: TransactionDigest,
}

/// A withdrawal's `0x3::validator::UnstakingRequestEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Unstaking {
    pool_id: ObjectId,
    validator_address: Address,
    staker_address: Address,
    stake_activation_epoch: u64,
    unstaking_epoch: u64,
    principal_amount: u64,
    reward_amount: u64,
}

/// A failed execution: the error (boxed: it is large) and the command it failed in.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    error: Box<ExecutionError>,
    command: Option<u64>,
}

#[derive(Debug, Clone)]
struct Executed {
    transaction: Transaction,
    signatures: Vec<UserSignature>,
    effects: TransactionEffectsV1,
    events: Vec<Unstaking>,
    checkpoint: u64,
    timestamp_ms: u64,
}

#[derive(Debug, Clone)]
struct State {
    system: StakingSystem,
    names: Vec<String>,
    addresses: Vec<Address>,
    apy_bps: Vec<u64>,
    objects: BTreeMap<ObjectId, Obj>,
    txs: HashMap<TransactionDigest, Executed>,
    system_version: u64,
    checkpoint: u64,
    now_ms: u64,
    genesis_ms: u64,
    epoch_ms: u64,
    rgp: u64,
    chain_id: Digest,
}

/// A running local IOTA chain; dropping it stops the servers.
pub struct LocalIota {
    /// gRPC endpoint (`http://127.0.0.1:<port>`).
    pub url: String,
    /// GraphQL endpoint (`http://127.0.0.1:<port>/graphql`).
    pub graphql_url: String,
    state: Arc<Mutex<State>>,
    servers: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for LocalIota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIota")
            .field("url", &self.url)
            .field("graphql_url", &self.graphql_url)
            .finish()
    }
}

impl Drop for LocalIota {
    fn drop(&mut self) {
        for s in &self.servers {
            s.abort();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn id_of(text: impl AsRef<[u8]>) -> ObjectId {
    ObjectId::new(Hasher::digest(text).into())
}

fn pool_object_id(pool: usize) -> ObjectId {
    id_of(format!("staking_pool:{pool}"))
}

fn new_object_id(tx: &TransactionDigest, index: u64) -> ObjectId {
    let mut h = Hasher::new();
    h.update(Digest::from(*tx));
    h.update(index.to_le_bytes());
    ObjectId::new(h.finalize().into())
}

impl Obj {
    /// The object as IOTA serializes it: a Move struct of its type, its contents' BCS
    /// starting with its id (`Coin { id, balance }`, `StakedIota { id, pool_id,
    /// stake_activation_epoch, principal }`).
    fn object(&self, id: &ObjectId) -> Object {
        let (ty, contents) = match self.kind {
            Kind::Coin(b) => (StructTag::new_gas_coin(), bcs::to_bytes(&(id, b))),
            Kind::Staked(st) => (
                StructTag::new_staked_iota(),
                bcs::to_bytes(&(id, pool_object_id(st.pool_id), st.stake_activation_epoch, st.principal)),
            ),
        };
        let contents = contents.expect("BCS of fixed-size values");
        let data = MoveStruct::new(MoveObjectType::new(ty), Version::from_u64(self.version), contents)
            .expect("contents start with the 32-byte id");
        Object::new(
            ObjectData::Struct(data),
            Owner::Address(self.owner),
            self.previous_transaction,
            REBATE_PER_OBJECT_NANOS,
        )
    }

    fn digest(&self, id: &ObjectId) -> ObjectDigest {
        self.object(id).digest()
    }
}

impl State {
    fn genesis(g: &IotaGenesis) -> anyhow::Result<State> {
        let addresses = g
            .validators
            .iter()
            .map(|v| Address::from_str(&v.address).with_context(|| format!("validator {}", v.address)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let specs: Vec<(String, u64, u64)> = g
            .validators
            .iter()
            .zip(&addresses)
            .map(|(v, a)| (a.to_string(), v.commission_bps, v.stake))
            .collect();
        let system = StakingSystem::genesis(&specs).map_err(|a| anyhow::anyhow!("genesis: {}", a.iota_name()))?;
        if g.apy_bps.is_empty() || g.epoch_ms == 0 || g.reference_gas_price == 0 {
            bail!("genesis needs APYs, an epoch length and a reference gas price");
        }
        let mut objects = BTreeMap::new();
        for (i, (owner, nanos)) in g.coins.iter().enumerate() {
            let owner = Address::from_str(owner).with_context(|| format!("coin owner {owner}"))?;
            objects.insert(
                id_of(format!("genesis coin {i}")),
                Obj {
                    owner,
                    version: 1,
                    kind: Kind::Coin(*nanos),
                    previous_transaction: TransactionDigest::ZERO,
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
            chain_id: Hasher::digest(&g.chain_name),
        })
    }

    /// The IOTA coins `owner` holds, nanos.
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
            .map_err(|a| anyhow::anyhow!("epoch reward: {}", a.iota_name()))?;
        let commissions = self
            .system
            .advance_epoch(reward)
            .map_err(|a| anyhow::anyhow!("advance_epoch: {}", a.iota_name()))?;
        for (i, c) in commissions.into_iter().enumerate() {
            self.objects.insert(
                id_of(format!("commission {} {i}", self.system.epoch)),
                Obj {
                    owner: self.addresses[c.pool_id],
                    version: 1,
                    kind: Kind::Staked(c),
                    previous_transaction: TransactionDigest::ZERO,
                },
            );
        }
        self.system_version += 1;
        self.now_ms = self.epoch_start_ms();
        self.checkpoint += 1;
        Ok(())
    }

    fn owned_ref(&self, r: &ObjectReference, sender: &Address) -> Result<Obj, Status> {
        let obj = self.objects.get(&r.object_id).ok_or_else(|| {
            Status::invalid_argument(format!(
                "Could not find the referenced object {} at version {}",
                r.object_id,
                r.version.as_u64()
            ))
        })?;
        if obj.version != r.version.as_u64() || obj.digest(&r.object_id) != r.digest {
            return Err(Status::invalid_argument(format!(
                "Object ID {} Version {} Digest {} is not available for consumption, current version: {}",
                r.object_id,
                r.version.as_u64(),
                r.digest,
                obj.version
            )));
        }
        if obj.owner != *sender {
            return Err(Status::invalid_argument(format!(
                "Object {} is owned by account address {}, but given owner/signer address is {}",
                r.object_id, obj.owner, sender
            )));
        }
        Ok(*obj)
    }

    /// The checks a validator makes before running: signature, expiry, gas, inputs.
    fn check(&self, tx: &Transaction, sigs: &[UserSignature]) -> Result<(), Status> {
        let v1 = v1(tx)?;
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
        if public_key.derive_address() != v1.sender {
            return Err(Status::invalid_argument(format!(
                "IncorrectSigner: signer {} is not the sender {}",
                public_key.derive_address(),
                v1.sender
            )));
        }
        self.check_unsigned(tx)
    }

    fn check_unsigned(&self, tx: &Transaction) -> Result<(), Status> {
        let tx = v1(tx)?;
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
                gas.object_id
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
        let TransactionKind::Programmable(ptb) = &tx.kind else {
            return Err(Status::invalid_argument("only programmable transactions"));
        };
        if ptb.commands.is_empty() || ptb.commands.len() > MAX_COMMANDS {
            return Err(Status::invalid_argument("a transaction needs 1 to 1 024 commands"));
        }
        for input in &ptb.inputs {
            match input {
                Input::Pure(_) => {}
                Input::ImmutableOrOwned(r) => {
                    if r.object_id == gas.object_id {
                        return Err(Status::invalid_argument(format!(
                            "Gas object {} cannot also be an input of the transaction",
                            gas.object_id
                        )));
                    }
                    self.owned_ref(r, &tx.sender)?;
                }
                Input::Shared(s) if s.object_id == ObjectId::SYSTEM_STATE => {
                    if s.initial_shared_version != Version::INITIAL_SHARED_VERSION {
                        return Err(Status::invalid_argument(format!(
                            "Shared object 0x5 has initial shared version 1, not {}",
                            s.initial_shared_version.as_u64()
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

    /// Runs `tx` (checked) and records it.
    fn execute(&mut self, tx: Transaction, sigs: Vec<UserSignature>) -> Result<Executed, Status> {
        let digest = tx.digest();
        let t = v1(&tx)?.clone();
        let lamport = self.lamport(&t);
        let gas_ref = t.gas_payment.objects[0];
        let gas_before = self.objects.get(&gas_ref.object_id).copied();
        let mut next = self.clone();
        let result = Run { tx: &t, digest }.apply(&mut next);
        let commands = match &t.kind {
            TransactionKind::Programmable(p) => p.commands.len() as u64,
            _ => 0,
        };
        let computation = (BASE_COMPUTATION_UNITS + COMMAND_COMPUTATION_UNITS * commands) * t.gas_payment.price;
        let (mut failure, events, written, rebated) = match result {
            Ok(out) => (None, out.events, out.written, out.rebated),
            Err(f) => (Some(f), Vec::new(), 0, 0),
        };
        // the gas coin is always written, and its old version rebated
        let mut storage = STORAGE_PER_OBJECT_NANOS * (written + 1);
        let mut rebate = REBATE_PER_OBJECT_NANOS * (rebated + 1);
        if failure.is_none() && computation + storage > t.gas_payment.budget {
            failure = Some(Failure {
                error: Box::new(ExecutionError::InsufficientGas),
                command: None,
            });
            (storage, rebate) = (STORAGE_PER_OBJECT_NANOS, REBATE_PER_OBJECT_NANOS);
        }
        if failure.is_some() {
            next = self.clone();
        }
        let charge = (computation + storage).saturating_sub(rebate);
        // the shared system state is written even by a failed transaction
        next.system_version = lamport;
        if let Some(gas) = next.objects.get_mut(&gas_ref.object_id) {
            if let Kind::Coin(b) = &mut gas.kind {
                *b = b.saturating_sub(charge);
            }
            gas.version = lamport;
            gas.previous_transaction = digest;
        }
        for o in next.objects.values_mut().filter(|o| o.version == lamport) {
            o.previous_transaction = digest;
        }
        next.checkpoint += 1;
        next.now_ms = (next.now_ms + 1_000).min(next.epoch_start_ms() + next.epoch_ms - 1);
        let gas_after = next.objects.get(&gas_ref.object_id).copied();
        let changed = match (gas_before, gas_after) {
            (Some(before), Some(after)) => vec![ChangedObject {
                object_id: gas_ref.object_id,
                input_state: ObjectIn::Data {
                    version: Version::from_u64(before.version),
                    digest: before.digest(&gas_ref.object_id),
                    owner: Owner::Address(before.owner),
                },
                output_state: ObjectOut::ObjectWrite {
                    digest: after.digest(&gas_ref.object_id),
                    owner: Owner::Address(after.owner),
                },
                id_operation: IdOperation::None,
            }],
            _ => Vec::new(),
        };
        let status = match failure {
            None => ExecutionStatus::Success,
            Some(f) => ExecutionStatus::Failure {
                error: *f.error,
                command: f.command,
            },
        };
        let effects = TransactionEffectsV1 {
            status,
            epoch: next.system.epoch,
            gas_cost_summary: GasCostSummary::new(computation, 0, storage, rebate, 0),
            transaction_digest: digest,
            gas_object_index: Some(0),
            events_digest: None,
            dependencies: Vec::new(),
            lamport_version: Version::from_u64(lamport),
            changed_objects: changed,
            unchanged_shared_objects: Vec::new(),
            auxiliary_data_digest: None,
        };
        let executed = Executed {
            transaction: tx,
            signatures: sigs,
            effects,
            events,
            checkpoint: next.checkpoint,
            timestamp_ms: next.now_ms,
        };
        next.txs.insert(digest, executed.clone());
        *self = next;
        Ok(executed)
    }

    /// The version every object a transaction writes takes: one past its inputs'.
    fn lamport(&self, tx: &TransactionV1) -> u64 {
        let mut v = self.system_version;
        for r in &tx.gas_payment.objects {
            v = v.max(r.version.as_u64());
        }
        if let TransactionKind::Programmable(p) = &tx.kind {
            for i in &p.inputs {
                if let Input::ImmutableOrOwned(r) = i {
                    v = v.max(r.version.as_u64());
                }
            }
        }
        v + 1
    }
}

fn v1(tx: &Transaction) -> Result<&TransactionV1, Status> {
    match tx {
        Transaction::V1(t) => Ok(t),
        #[allow(unreachable_patterns)]
        _ => Err(Status::invalid_argument("only V1 transactions are supported here")),
    }
}

struct RunOut {
    events: Vec<Unstaking>,
    written: u64,
    rebated: u64,
}

/// One programmable transaction's commands over a copy of the state.
struct Run<'a> {
    tx: &'a TransactionV1,
    digest: TransactionDigest,
}

fn arg(a: &Argument) -> move_ptb::Arg {
    match *a {
        Argument::Gas => move_ptb::Arg::Gas,
        Argument::Input(i) => move_ptb::Arg::Input(i),
        Argument::Result(r) => move_ptb::Arg::Result(r),
        Argument::NestedResult(r, k) => move_ptb::Arg::NestedResult(r, k),
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
            system_package: m.package == ObjectId::SYSTEM,
            module: m.module.as_str().to_string(),
            function: m.function.as_str().to_string(),
            args: args(&m.arguments),
        },
        other => move_ptb::Cmd::Other(format!("{other:?}")),
    }
}

/// The shared interpreter's failure as IOTA's execution error.
fn failure_of(f: move_ptb::Fail) -> Failure {
    let command = f.command().map(|c| c as u64);
    let error = match f {
        move_ptb::Fail::Abort { command, abort: a } => return abort(command, a),
        move_ptb::Fail::Unsupported { .. } => ExecutionError::FeatureNotYetSupported,
        move_ptb::Fail::Argument {
            argument, invalid_bcs, ..
        } => ExecutionError::CommandArgumentError {
            argument,
            kind: if invalid_bcs {
                iota_sdk::types::CommandArgumentError::InvalidBcsBytes
            } else {
                iota_sdk::types::CommandArgumentError::TypeMismatch
            },
        },
        move_ptb::Fail::FunctionNotFound { .. } => ExecutionError::FunctionNotFound,
        move_ptb::Fail::InsufficientCoinBalance { .. } => ExecutionError::InsufficientCoinBalance,
        move_ptb::Fail::UnusedValue { result } => ExecutionError::UnusedValueWithoutDrop { result, subresult: 0 },
    };
    Failure {
        error: Box::new(error),
        command,
    }
}

fn abort(command: usize, a: Abort) -> Failure {
    let (module, _) = a.name().split_once("::").unwrap_or(("", ""));
    Failure {
        error: Box::new(ExecutionError::MoveAbort {
            location: MoveLocation {
                package: ObjectId::SYSTEM,
                module: Identifier::new(if module.is_empty() { "staking_pool" } else { module })
                    .expect("a Move identifier"),
                function: 0,
                instruction: 0,
                function_name: None,
            },
            code: a.code(),
        }),
        command: Some(command as u64),
    }
}

impl Run<'_> {
    /// Runs the transaction with the shared interpreter and applies its outcome to `s`'s
    /// objects: merged coins and withdrawn stakes deleted, split stakes changed, new objects
    /// for the sender (ids from the digest), the gas coin's balance, every written object at
    /// the lamport version.
    fn apply(&self, s: &mut State) -> Result<RunOut, Failure> {
        let TransactionKind::Programmable(ptb) = &self.tx.kind else {
            return Err(failure_of(move_ptb::Fail::Unsupported {
                command: 0,
                what: "a non-programmable transaction".into(),
            }));
        };
        let gas_id = self.tx.gas_payment.objects[0].object_id;
        let Some(Obj {
            kind: Kind::Coin(gas_balance),
            ..
        }) = s.objects.get(&gas_id).copied()
        else {
            return Err(failure_of(move_ptb::Fail::Unsupported {
                command: 0,
                what: "a gas object that is not a coin".into(),
            }));
        };
        let ids: Vec<Option<ObjectId>> = ptb
            .inputs
            .iter()
            .map(|i| match i {
                Input::ImmutableOrOwned(r) => Some(r.object_id),
                _ => None,
            })
            .collect();
        let inputs: Vec<move_ptb::In> = ptb
            .inputs
            .iter()
            .map(|i| match i {
                Input::Pure(b) => move_ptb::In::Pure(b.clone()),
                Input::ImmutableOrOwned(r) => match s.objects.get(&r.object_id).map(|o| o.kind) {
                    Some(Kind::Coin(b)) => move_ptb::In::Coin(b),
                    Some(Kind::Staked(st)) => move_ptb::In::Staked(st),
                    None => move_ptb::In::Other,
                },
                Input::Shared(r) if r.object_id == ObjectId::SYSTEM_STATE => move_ptb::In::System,
                _ => move_ptb::In::Other,
            })
            .collect();
        let commands: Vec<move_ptb::Cmd> = ptb.commands.iter().map(command).collect();
        let out = move_ptb::run(
            &mut s.system,
            &move_ptb::Ptb {
                system_module: "iota_system",
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
                    previous_transaction: self.digest,
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
// The wire: proto messages (BCS of iota-sdk-types inside)
// ---------------------------------------------------------------------------------------

fn timestamp(ms: u64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: (ms / 1_000) as i64,
        nanos: ((ms % 1_000) * 1_000_000) as i32,
    }
}

fn bcs_data<T: serde::Serialize>(value: &T) -> Result<BcsData, Status> {
    BcsData::serialize(value).map_err(|e| Status::internal(format!("BCS: {e}")))
}

fn object_proto(id: &ObjectId, o: &Obj) -> Result<pb::object::Object, Status> {
    let obj = o.object(id);
    let mut p = pb::object::Object::default();
    p.reference = Some(obj.object_ref().into());
    p.bcs = Some(bcs_data(&pb::versioned::VersionedObject::V1(obj))?);
    Ok(p)
}

fn status_proto(s: &Status) -> iota_sdk::grpc_types::google::rpc::Status {
    let mut p = iota_sdk::grpc_types::google::rpc::Status::default();
    p.code = s.code() as i32;
    p.message = s.message().to_string();
    p
}

fn event_proto(u: &Unstaking) -> Result<pb::event::Event, Status> {
    let tag = StructTag::new(
        Address::SYSTEM,
        Identifier::new("validator").expect("identifier"),
        Identifier::new("UnstakingRequestEvent").expect("identifier"),
        Vec::new(),
    );
    let event = Event {
        package_id: ObjectId::SYSTEM,
        module: Identifier::new("iota_system").expect("identifier"),
        sender: u.staker_address,
        struct_tag: tag.clone(),
        contents: bcs::to_bytes(u).map_err(|e| Status::internal(format!("BCS: {e}")))?,
    };
    let mut p = pb::event::Event::default();
    p.bcs = Some(bcs_data(&pb::versioned::VersionedEvent::V1(event))?);
    p.package_id = Some(ObjectId::SYSTEM.into());
    p.module = Some("iota_system".into());
    p.sender = Some(u.staker_address.into());
    p.event_type = Some(tag.to_string());
    Ok(p)
}

fn executed_proto(e: &Executed) -> Result<pb::transaction::ExecutedTransaction, Status> {
    let digest = e.transaction.digest();
    let mut t = pb::transaction::ExecutedTransaction::default();
    let mut tx = pb::transaction::Transaction::default();
    tx.digest = Some(Digest::from(digest).into());
    tx.bcs = Some(bcs_data(&e.transaction)?);
    t.transaction = Some(tx);
    let mut sigs = pb::signatures::UserSignatures::default();
    sigs.signatures = e
        .signatures
        .iter()
        .cloned()
        .map(|s| pb::signatures::UserSignature::try_from(s).map_err(|err| Status::internal(format!("{err}"))))
        .collect::<Result<_, _>>()?;
    t.signatures = Some(sigs);
    let effects = TransactionEffects::V1(Box::new(e.effects.clone()));
    let mut fx = pb::transaction::TransactionEffects::default();
    fx.digest = Some(Digest::from(effects.digest()).into());
    fx.bcs = Some(bcs_data(&effects)?);
    t.effects = Some(fx);
    let mut events = pb::event::Events::default();
    events.events = e.events.iter().map(event_proto).collect::<Result<_, _>>()?;
    let mut te = pb::transaction::TransactionEvents::default();
    te.events = Some(events);
    t.events = Some(te);
    t.checkpoint = Some(e.checkpoint);
    t.timestamp = Some(timestamp(e.timestamp_ms));
    Ok(t)
}

fn parse_address(what: &str, a: Option<&pb::types::Address>) -> Result<Address, Status> {
    let a = a.ok_or_else(|| Status::invalid_argument(format!("missing {what}")))?;
    Address::try_from(a).map_err(|e| Status::invalid_argument(format!("invalid {what}: {e}")))
}

fn decode_tx(t: Option<&pb::transaction::Transaction>) -> Result<Transaction, Status> {
    let t = t.ok_or_else(|| Status::invalid_argument("missing transaction"))?;
    Transaction::try_from(t).map_err(|e| Status::invalid_argument(format!("invalid transaction: {e}")))
}

/// The items of a batched request, refused unless there are 1 to [`MAX_BATCH`] of them.
fn batch<'a, T>(items: Option<&'a [T]>, what: &str) -> Result<&'a [T], Status> {
    let items = items.unwrap_or_default();
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(Status::invalid_argument(format!("1 to {MAX_BATCH} {what}, please")));
    }
    Ok(items)
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send + 'static>>;

fn once<T: Send + 'static>(item: T) -> Stream<T> {
    Box::pin(tokio_stream::once(Ok(item)))
}

// ---------------------------------------------------------------------------------------
// The gRPC services
// ---------------------------------------------------------------------------------------

#[derive(Clone)]
struct Svc(Arc<Mutex<State>>);

impl Svc {
    fn object_result(s: &State, r: &pb::ledger_service::ObjectRequest) -> pb::ledger_service::ObjectResult {
        let mut out = pb::ledger_service::ObjectResult::default();
        let id = r
            .object_ref
            .as_ref()
            .and_then(|r| r.object_id.as_ref())
            .ok_or_else(|| Status::invalid_argument("missing object_ref.object_id"))
            .and_then(|id| {
                ObjectId::try_from(id).map_err(|e| Status::invalid_argument(format!("invalid object id: {e}")))
            });
        let result = id.and_then(|id| {
            let o = s
                .objects
                .get(&id)
                .ok_or_else(|| Status::not_found(format!("Object {id} not found")))?;
            object_proto(&id, o)
        });
        out.result = Some(match result {
            Ok(o) => pb::ledger_service::object_result::Result::Object(o),
            Err(e) => pb::ledger_service::object_result::Result::Error(status_proto(&e)),
        });
        out
    }

    fn transaction_result(
        s: &State,
        r: &pb::ledger_service::TransactionRequest,
    ) -> pb::ledger_service::TransactionResult {
        let mut out = pb::ledger_service::TransactionResult::default();
        let result = r
            .digest
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("missing digest"))
            .and_then(|d| Digest::try_from(d).map_err(|e| Status::invalid_argument(format!("invalid digest: {e}"))))
            .and_then(|d| {
                let d = TransactionDigest::from(d);
                let e = s
                    .txs
                    .get(&d)
                    .ok_or_else(|| Status::not_found(format!("Transaction {d} not found")))?;
                executed_proto(e)
            });
        out.result = Some(match result {
            Ok(t) => pb::ledger_service::transaction_result::Result::ExecutedTransaction(t),
            Err(e) => pb::ledger_service::transaction_result::Result::Error(status_proto(&e)),
        });
        out
    }
}

#[tonic::async_trait]
impl pb::ledger_service::ledger_service_server::LedgerService for Svc {
    async fn get_health(
        &self,
        _: Request<pb::ledger_service::GetHealthRequest>,
    ) -> Result<Response<pb::ledger_service::GetHealthResponse>, Status> {
        let mut r = pb::ledger_service::GetHealthResponse::default();
        r.executed_checkpoint_height = Some(lock(&self.0).checkpoint);
        Ok(Response::new(r))
    }

    async fn get_service_info(
        &self,
        _: Request<pb::ledger_service::GetServiceInfoRequest>,
    ) -> Result<Response<pb::ledger_service::GetServiceInfoResponse>, Status> {
        let s = lock(&self.0);
        let mut r = pb::ledger_service::GetServiceInfoResponse::default();
        r.chain_id = Some(s.chain_id.into());
        r.chain = Some("localnet".into());
        r.epoch = Some(s.system.epoch);
        r.executed_checkpoint_height = Some(s.checkpoint);
        r.executed_checkpoint_timestamp = Some(timestamp(s.now_ms));
        r.lowest_available_checkpoint = Some(0);
        r.lowest_available_checkpoint_objects = Some(0);
        r.server = Some("softstake iota-localnet".into());
        Ok(Response::new(r))
    }

    type GetObjectsStream = Stream<pb::ledger_service::GetObjectsResponse>;

    async fn get_objects(
        &self,
        req: Request<pb::ledger_service::GetObjectsRequest>,
    ) -> Result<Response<Self::GetObjectsStream>, Status> {
        let requests = batch(
            req.get_ref().requests.as_ref().map(|r| r.requests.as_slice()),
            "object requests",
        )?;
        let s = lock(&self.0);
        let mut r = pb::ledger_service::GetObjectsResponse::default();
        r.objects = requests.iter().map(|q| Self::object_result(&s, q)).collect();
        Ok(Response::new(once(r)))
    }

    type GetTransactionsStream = Stream<pb::ledger_service::GetTransactionsResponse>;

    async fn get_transactions(
        &self,
        req: Request<pb::ledger_service::GetTransactionsRequest>,
    ) -> Result<Response<Self::GetTransactionsStream>, Status> {
        let requests = batch(
            req.get_ref().requests.as_ref().map(|r| r.requests.as_slice()),
            "transaction requests",
        )?;
        let s = lock(&self.0);
        let mut r = pb::ledger_service::GetTransactionsResponse::default();
        r.transaction_results = requests.iter().map(|q| Self::transaction_result(&s, q)).collect();
        Ok(Response::new(once(r)))
    }

    type GetCheckpointStream = Stream<pb::ledger_service::CheckpointData>;

    async fn get_checkpoint(
        &self,
        _: Request<pb::ledger_service::GetCheckpointRequest>,
    ) -> Result<Response<Self::GetCheckpointStream>, Status> {
        Err(Status::unimplemented("checkpoints are not served by this local chain"))
    }

    type StreamCheckpointsStream = Stream<pb::ledger_service::CheckpointData>;

    async fn stream_checkpoints(
        &self,
        _: Request<pb::ledger_service::StreamCheckpointsRequest>,
    ) -> Result<Response<Self::StreamCheckpointsStream>, Status> {
        Err(Status::unimplemented("checkpoints are not served by this local chain"))
    }

    async fn get_epoch(
        &self,
        req: Request<pb::ledger_service::GetEpochRequest>,
    ) -> Result<Response<pb::ledger_service::GetEpochResponse>, Status> {
        let s = lock(&self.0);
        if let Some(e) = req.get_ref().epoch {
            if e != s.system.epoch {
                return Err(Status::not_found(format!(
                    "this local chain serves the current epoch only, not {e}"
                )));
            }
        }
        let mut e = pb::epoch::Epoch::default();
        e.epoch = Some(s.system.epoch);
        e.reference_gas_price = Some(s.rgp);
        e.start = Some(timestamp(s.epoch_start_ms()));
        let mut r = pb::ledger_service::GetEpochResponse::default();
        r.epoch = Some(e);
        Ok(Response::new(r))
    }
}

#[tonic::async_trait]
impl pb::state_service::state_service_server::StateService for Svc {
    async fn list_dynamic_fields(
        &self,
        _: Request<pb::state_service::ListDynamicFieldsRequest>,
    ) -> Result<Response<pb::state_service::ListDynamicFieldsResponse>, Status> {
        Err(Status::unimplemented(
            "dynamic fields are not served by this local chain",
        ))
    }

    async fn list_owned_objects(
        &self,
        req: Request<pb::state_service::ListOwnedObjectsRequest>,
    ) -> Result<Response<pb::state_service::ListOwnedObjectsResponse>, Status> {
        let q = req.get_ref();
        let owner = parse_address("owner", q.owner.as_ref())?;
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
        let all: Vec<(&ObjectId, &Obj)> = s
            .objects
            .iter()
            .filter(|(_, o)| o.owner == owner)
            .filter(|(_, o)| {
                let ty = match o.kind {
                    Kind::Coin(_) => StructTag::new_gas_coin(),
                    Kind::Staked(_) => StructTag::new_staked_iota(),
                };
                want.as_ref().is_none_or(|w| *w == ty)
            })
            .collect();
        let mut r = pb::state_service::ListOwnedObjectsResponse::default();
        r.objects = all
            .iter()
            .skip(start)
            .take(size)
            .map(|(id, o)| object_proto(id, o))
            .collect::<Result<_, _>>()?;
        if start + size < all.len() {
            r.next_page_token = Some((start + size).to_string().into_bytes().into());
        }
        Ok(Response::new(r))
    }

    async fn get_coin_info(
        &self,
        _: Request<pb::state_service::GetCoinInfoRequest>,
    ) -> Result<Response<pb::state_service::GetCoinInfoResponse>, Status> {
        Err(Status::unimplemented("coin info is not served by this local chain"))
    }
}

use pb::transaction_execution_service as exec;

#[tonic::async_trait]
impl exec::transaction_execution_service_server::TransactionExecutionService for Svc {
    async fn execute_transactions(
        &self,
        req: Request<exec::ExecuteTransactionsRequest>,
    ) -> Result<Response<exec::ExecuteTransactionsResponse>, Status> {
        let items = batch(Some(req.get_ref().transactions.as_slice()), "transactions")?;
        let mut r = exec::ExecuteTransactionsResponse::default();
        for item in items {
            let result = self.execute_one(item);
            let mut out = exec::ExecuteTransactionResult::default();
            out.result = Some(match result {
                Ok(t) => exec::execute_transaction_result::Result::ExecutedTransaction(t),
                Err(e) => exec::execute_transaction_result::Result::Error(status_proto(&e)),
            });
            r.transaction_results.push(out);
        }
        Ok(Response::new(r))
    }

    async fn simulate_transactions(
        &self,
        req: Request<exec::SimulateTransactionsRequest>,
    ) -> Result<Response<exec::SimulateTransactionsResponse>, Status> {
        let items = batch(Some(req.get_ref().transactions.as_slice()), "transactions")?;
        let mut r = exec::SimulateTransactionsResponse::default();
        for item in items {
            let result = self.simulate_one(item);
            let mut out = exec::SimulateTransactionResult::default();
            out.result = Some(match result {
                Ok(t) => exec::simulate_transaction_result::Result::SimulatedTransaction(t),
                Err(e) => exec::simulate_transaction_result::Result::Error(status_proto(&e)),
            });
            r.transaction_results.push(out);
        }
        Ok(Response::new(r))
    }

    async fn view_function_calls(
        &self,
        _: Request<exec::ViewFunctionCallsRequest>,
    ) -> Result<Response<exec::ViewFunctionCallsResponse>, Status> {
        Err(Status::unimplemented(
            "view functions are not served by this local chain",
        ))
    }
}

impl Svc {
    fn execute_one(&self, item: &exec::ExecuteTransactionItem) -> Result<pb::transaction::ExecutedTransaction, Status> {
        let tx = decode_tx(item.transaction.as_ref())?;
        let sigs: Vec<UserSignature> = item
            .signatures
            .as_ref()
            .map(Vec::<UserSignature>::try_from)
            .transpose()
            .map_err(|e| Status::invalid_argument(format!("invalid signature: {e}")))?
            .unwrap_or_default();
        let digest = tx.digest();
        let mut s = lock(&self.0);
        // the same transaction again: its first effects, nothing runs twice
        if let Some(e) = s.txs.get(&digest) {
            return executed_proto(e);
        }
        s.check(&tx, &sigs)?;
        let executed = s.execute(tx, sigs)?;
        executed_proto(&executed)
    }

    fn simulate_one(&self, item: &exec::SimulateTransactionItem) -> Result<exec::SimulatedTransaction, Status> {
        let tx = decode_tx(item.transaction.as_ref())?;
        let mut sim = lock(&self.0).clone();
        sim.check_unsigned(&tx)?;
        let executed = sim.execute(tx, Vec::new())?;
        let mut r = exec::SimulatedTransaction::default();
        r.executed_transaction = Some(executed_proto(&executed)?);
        r.suggested_gas_price = Some(sim.rgp);
        Ok(r)
    }
}

// ---------------------------------------------------------------------------------------
// GraphQL: the subset of IOTA's schema the adapter reads, under the schema's own names
// ---------------------------------------------------------------------------------------

mod graphql {
    use async_graphql::{connection, EmptyMutation, EmptySubscription, Object, Scalar, ScalarType, SimpleObject};

    use super::{lock, pool_object_id, Arc, Mutex, State, MAX_GRAPHQL_PAGE};

    /// IOTA's `BigInt`: an integer as a decimal string.
    pub struct BigInt(pub u64);

    #[Scalar(name = "BigInt")]
    impl ScalarType for BigInt {
        fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
            match &value {
                async_graphql::Value::String(s) => Ok(BigInt(s.parse()?)),
                _ => Err(async_graphql::InputValueError::expected_type(value)),
            }
        }
        fn to_value(&self) -> async_graphql::Value {
            async_graphql::Value::String(self.0.to_string())
        }
    }

    /// IOTA's `UInt53`: an unsigned integer as a JSON number.
    pub struct UInt53(pub u64);

    #[Scalar(name = "UInt53")]
    impl ScalarType for UInt53 {
        fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
            match &value {
                async_graphql::Value::Number(n) => n
                    .as_u64()
                    .map(UInt53)
                    .ok_or_else(|| async_graphql::InputValueError::custom("not an unsigned integer")),
                _ => Err(async_graphql::InputValueError::expected_type(value)),
            }
        }
        fn to_value(&self) -> async_graphql::Value {
            async_graphql::Value::Number(self.0.into())
        }
    }

    /// IOTA's `IotaAddress`: `0x` and 64 hex digits.
    pub struct IotaAddress(pub String);

    #[Scalar(name = "IotaAddress")]
    impl ScalarType for IotaAddress {
        fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
            match &value {
                async_graphql::Value::String(s) => Ok(IotaAddress(s.clone())),
                _ => Err(async_graphql::InputValueError::expected_type(value)),
            }
        }
        fn to_value(&self) -> async_graphql::Value {
            async_graphql::Value::String(self.0.clone())
        }
    }

    /// IOTA's `DateTime`: RFC 3339, UTC.
    pub struct DateTime(pub String);

    #[Scalar(name = "DateTime")]
    impl ScalarType for DateTime {
        fn parse(value: async_graphql::Value) -> async_graphql::InputValueResult<Self> {
            match &value {
                async_graphql::Value::String(s) => Ok(DateTime(s.clone())),
                _ => Err(async_graphql::InputValueError::expected_type(value)),
            }
        }
        fn to_value(&self) -> async_graphql::Value {
            async_graphql::Value::String(self.0.clone())
        }
    }

    /// `Address { address }`.
    #[derive(SimpleObject)]
    pub struct Address {
        address: IotaAddress,
    }

    /// `SystemParameters { durationMs }`.
    #[derive(SimpleObject)]
    #[graphql(rename_fields = "camelCase")]
    pub struct SystemParameters {
        duration_ms: Option<BigInt>,
    }

    /// The fields of IOTA's `Validator` the adapter (and an operator) reads.
    #[derive(SimpleObject)]
    #[graphql(rename_fields = "camelCase")]
    pub struct Validator {
        address: Address,
        name: Option<String>,
        staking_pool_id: IotaAddress,
        commission_rate: Option<i32>,
        staking_pool_iota_balance: Option<BigInt>,
        pool_token_balance: Option<BigInt>,
        rewards_pool: Option<BigInt>,
        pending_stake: Option<BigInt>,
        staking_pool_activation_epoch: Option<UInt53>,
        next_epoch_stake: Option<BigInt>,
        gas_price: Option<BigInt>,
    }

    /// `ValidatorSet { totalStake activeValidators }` of the epoch.
    pub struct ValidatorSet(Arc<Mutex<State>>);

    #[Object]
    impl ValidatorSet {
        /// Total stake of the active validators, nanos.
        async fn total_stake(&self) -> Option<BigInt> {
            let s = lock(&self.0);
            Some(BigInt(
                s.system
                    .validators
                    .iter()
                    .filter(|v| v.pool.deactivation_epoch.is_none())
                    .map(|v| v.pool.coin_balance)
                    .sum(),
            ))
        }

        /// The active validators, paged forward (`first` at most 50, `after` a cursor).
        async fn active_validators(
            &self,
            first: Option<i32>,
            after: Option<String>,
            last: Option<i32>,
            before: Option<String>,
        ) -> async_graphql::Result<connection::Connection<usize, Validator>> {
            if last.is_some() || before.is_some() {
                return Err("this local chain pages forward only (first, after)".into());
            }
            let first =
                usize::try_from(first.unwrap_or(MAX_GRAPHQL_PAGE as i32)).map_err(|_| "first must not be negative")?;
            if first > MAX_GRAPHQL_PAGE {
                return Err(format!("Connection's page size of {first} exceeds max of {MAX_GRAPHQL_PAGE}").into());
            }
            let start = match after {
                None => 0,
                Some(c) => c.parse::<usize>().map_err(|_| format!("invalid cursor {c:?}"))? + 1,
            };
            let s = lock(&self.0);
            let active: Vec<(usize, Validator)> = s
                .system
                .validators
                .iter()
                .enumerate()
                .filter(|(_, v)| v.pool.deactivation_epoch.is_none())
                .map(|(i, v)| {
                    (
                        i,
                        Validator {
                            address: Address {
                                address: IotaAddress(s.addresses[i].to_string()),
                            },
                            name: Some(s.names[i].clone()),
                            staking_pool_id: IotaAddress(pool_object_id(i).to_string()),
                            commission_rate: i32::try_from(v.commission_rate_bps).ok(),
                            staking_pool_iota_balance: Some(BigInt(v.pool.coin_balance)),
                            pool_token_balance: Some(BigInt(v.pool.pool_token_balance)),
                            rewards_pool: Some(BigInt(v.pool.rewards_pool)),
                            pending_stake: Some(BigInt(v.pool.pending_stake)),
                            staking_pool_activation_epoch: Some(UInt53(v.pool.activation_epoch)),
                            next_epoch_stake: Some(BigInt(v.stake())),
                            gas_price: Some(BigInt(s.rgp)),
                        },
                    )
                })
                .collect();
            let total = active.len();
            let mut c = connection::Connection::new(start > 0, start + first < total);
            c.edges.extend(
                active
                    .into_iter()
                    .enumerate()
                    .skip(start)
                    .take(first)
                    .map(|(k, (_, v))| connection::Edge::new(k, v)),
            );
            Ok(c)
        }
    }

    /// IOTA's `Epoch`, the current one.
    pub struct Epoch(Arc<Mutex<State>>);

    #[Object]
    impl Epoch {
        /// The epoch number.
        async fn epoch_id(&self) -> UInt53 {
            UInt53(lock(&self.0).system.epoch)
        }

        /// The reference gas price, nanos per computation unit.
        async fn reference_gas_price(&self) -> Option<BigInt> {
            Some(BigInt(lock(&self.0).rgp))
        }

        /// The epoch's start.
        async fn start_timestamp(&self) -> async_graphql::Result<DateTime> {
            let ms = lock(&self.0).epoch_start_ms();
            let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(i64::try_from(ms)?)
                .ok_or("epoch start out of range")?;
            Ok(DateTime(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        }

        /// The system parameters.
        async fn system_parameters(&self) -> Option<SystemParameters> {
            Some(SystemParameters {
                duration_ms: Some(BigInt(lock(&self.0).epoch_ms)),
            })
        }

        /// The validator set.
        async fn validator_set(&self) -> Option<ValidatorSet> {
            Some(ValidatorSet(self.0.clone()))
        }
    }

    /// The query root.
    pub struct Query(pub Arc<Mutex<State>>);

    #[Object]
    impl Query {
        /// The epoch `id`, or the current one; this local chain serves the current only.
        async fn epoch(&self, id: Option<UInt53>) -> async_graphql::Result<Option<Epoch>> {
            let current = lock(&self.0).system.epoch;
            match id {
                Some(UInt53(e)) if e != current => Ok(None),
                _ => Ok(Some(Epoch(self.0.clone()))),
            }
        }
    }

    /// The schema served at `/graphql`.
    pub type Schema = async_graphql::Schema<Query, EmptyMutation, EmptySubscription>;

    /// The schema over `state`.
    pub fn schema(state: Arc<Mutex<State>>) -> Schema {
        async_graphql::Schema::build(Query(state), EmptyMutation, EmptySubscription)
            .limit_depth(12)
            .limit_complexity(2_000)
            .finish()
    }
}

async fn graphql_handler(
    axum::extract::State(schema): axum::extract::State<graphql::Schema>,
    axum::Json(req): axum::Json<async_graphql::Request>,
) -> axum::Json<async_graphql::Response> {
    axum::Json(schema.execute(req).await)
}

async fn bind(port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{port}"))
}

/// Starts a local IOTA chain: gRPC on 127.0.0.1:`port`, GraphQL on 127.0.0.1:`graphql_port`
/// (0 = any free port).
///
/// # Errors
/// A genesis that does not hold (no validators, a bad address, no APYs) or a port that
/// cannot be bound.
pub async fn start(genesis: IotaGenesis, port: u16, graphql_port: u16) -> anyhow::Result<LocalIota> {
    let state = Arc::new(Mutex::new(State::genesis(&genesis)?));
    let listener = bind(port).await?;
    let gql_listener = bind(graphql_port).await?;
    let addr = listener.local_addr()?;
    let gql_addr = gql_listener.local_addr()?;
    let svc = Svc(state.clone());
    let router = tonic::transport::Server::builder()
        .add_service(pb::ledger_service::ledger_service_server::LedgerServiceServer::new(
            svc.clone(),
        ))
        .add_service(pb::state_service::state_service_server::StateServiceServer::new(
            svc.clone(),
        ))
        .add_service(exec::transaction_execution_service_server::TransactionExecutionServiceServer::new(svc));
    let ticking = state.clone();
    let tick_ms = genesis.tick_epoch_ms;
    let grpc = tokio::spawn(async move {
        let epochs = async move {
            if tick_ms == 0 {
                return std::future::pending::<()>().await;
            }
            let mut t = tokio::time::interval(std::time::Duration::from_millis(tick_ms));
            t.tick().await;
            loop {
                t.tick().await;
                if let Err(e) = lock(&ticking).advance_epoch() {
                    eprintln!("iota-localnet: epoch change failed: {e:#}");
                }
            }
        };
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::select! {
            _ = router.serve_with_incoming(incoming) => {}
            _ = epochs => {}
        }
    });
    let app = axum::Router::new()
        .route("/graphql", axum::routing::post(graphql_handler))
        .with_state(graphql::schema(state.clone()));
    let gql = tokio::spawn(async move {
        if let Err(e) = axum::serve(gql_listener, app).await {
            eprintln!("iota-localnet: GraphQL server stopped: {e}");
        }
    });
    Ok(LocalIota {
        url: format!("http://{addr}"),
        graphql_url: format!("http://{gql_addr}/graphql"),
        state,
        servers: vec![grpc, gql],
    })
}

impl LocalIota {
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

    /// The chain id the node reports (base58 of the digest; the adapter's `genesis_hash`).
    pub fn chain_id(&self) -> String {
        lock(&self.state).chain_id.to_string()
    }

    /// The IOTA coins `owner` holds, nanos.
    pub fn balance(&self, owner: &str) -> u64 {
        let Ok(owner) = Address::from_str(owner) else { return 0 };
        lock(&self.state).coin_balance(&owner)
    }

    /// `owner`'s StakedIota objects: (validator address, activation epoch, principal nanos).
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

    /// Rewards paid by withdrawals so far to `owner`, nanos (the `reward_amount`s).
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
        let a = Address::from_str(address).with_context(|| format!("address {address:?}"))?;
        lock(&self.state)
            .system
            .request_remove_validator(&a.to_string())
            .map_err(|a| anyhow::anyhow!("{}", a.iota_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis() -> IotaGenesis {
        IotaGenesis {
            validators: vec![ValidatorSpec {
                address: "0x1".into(),
                name: "v".into(),
                commission_bps: 0,
                stake: 1_000_000 * IOTA,
            }],
            apy_bps: vec![365],
            coins: vec![],
            genesis_ms: 0,
            epoch_ms: 86_400_000,
            reference_gas_price: 1_000,
            chain_name: "t".into(),
            tick_epoch_ms: 0,
        }
    }

    #[test]
    fn success_bundled_data_reads() {
        let v = validators_from_csv(include_str!("../../../data/iota/validators.csv")).unwrap();
        assert!(v.len() >= 2, "{v:?}");
        assert!(v.iter().all(|v| v.commission_bps <= 10_000 && v.stake >= IOTA));
        let apys = apys_from_csv(include_str!("../../../data/iota/apy.csv")).unwrap();
        assert!(!apys.is_empty() && apys.iter().all(|a| *a < 10_000), "{apys:?}");
    }

    #[test]
    fn fail_malformed_rows_are_named() {
        let head = "address,name,commission_bps,stake_iota\n";
        for (row, says) in [
            ("0x1,a,800\n", "line 2: 3 fields"),
            ("zz,a,800,1\n", "line 2: address"),
            ("0x1,a,x,1\n", "commission_bps"),
            ("0x1,a,800,99999999999999\n", "overflows"),
        ] {
            let e = validators_from_csv(&format!("{head}{row}")).unwrap_err();
            assert!(format!("{e:#}").contains(says), "{row}: {e:#}");
        }
    }

    #[test]
    fn success_epoch_change_pays_the_configured_rate() {
        let mut s = State::genesis(&genesis()).unwrap();
        s.advance_epoch().unwrap();
        // 3.65 % a year over 365 daily epochs: 0.01 % of the stake this epoch
        assert_eq!(s.system.validators[0].pool.rewards_pool, 100 * IOTA);
        assert_eq!((s.system.epoch, s.now_ms), (1, 86_400_000));
    }

    #[test]
    fn success_objects_are_what_the_sdk_reads() {
        let id = id_of("x");
        let o = Obj {
            owner: Address::ZERO,
            version: 7,
            kind: Kind::Coin(42),
            previous_transaction: TransactionDigest::ZERO,
        };
        let obj = o.object(&id);
        assert_eq!((obj.id(), obj.version().as_u64()), (id, 7));
        let ms = obj.as_opt_struct().unwrap();
        assert!(ms.struct_tag().is_gas_coin());
        let (got_id, balance): (ObjectId, u64) = bcs::from_bytes(ms.contents()).unwrap();
        assert_eq!((got_id, balance), (id, 42));
        // a new version is a new digest: an old reference no longer spends it
        let newer = Obj { version: 8, ..o };
        assert_ne!(o.digest(&id), newer.digest(&id));
    }

    #[tokio::test]
    async fn success_graphql_answers_under_the_schema_s_names_and_refuses_others() {
        let mut g = genesis();
        g.validators.push(ValidatorSpec {
            address: "0x2".into(),
            name: "w".into(),
            commission_bps: 200,
            stake: 2_000_000 * IOTA,
        });
        let schema = graphql::schema(Arc::new(Mutex::new(State::genesis(&g).unwrap())));
        let q = "{ epoch { epochId startTimestamp referenceGasPrice systemParameters { durationMs } \
                 validatorSet { activeValidators(first: 1) { pageInfo { hasNextPage endCursor } \
                 nodes { address { address } name commissionRate stakingPoolIotaBalance } } } } }";
        let r = schema.execute(q).await;
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let v = serde_json::to_value(&r.data).unwrap();
        let e = &v["epoch"];
        assert_eq!(
            (e["epochId"].as_u64(), e["referenceGasPrice"].as_str()),
            (Some(0), Some("1000"))
        );
        assert_eq!(e["startTimestamp"], "1970-01-01T00:00:00.000Z");
        assert_eq!(e["systemParameters"]["durationMs"], "86400000");
        let page = &e["validatorSet"]["activeValidators"];
        assert_eq!(
            (
                page["pageInfo"]["hasNextPage"].as_bool(),
                page["pageInfo"]["endCursor"].as_str()
            ),
            (Some(true), Some("0"))
        );
        assert_eq!(
            page["nodes"][0]["stakingPoolIotaBalance"], "1000000000000000",
            "BigInt is a string"
        );
        // the next page from the cursor: the second validator, and no more
        let r = schema
            .execute("{ epoch { validatorSet { activeValidators(first: 1, after: \"0\") { pageInfo { hasNextPage } nodes { name commissionRate } } } } }")
            .await;
        let v = serde_json::to_value(&r.data).unwrap();
        let page = &v["epoch"]["validatorSet"]["activeValidators"];
        assert_eq!(
            (
                page["nodes"][0]["name"].as_str(),
                page["nodes"][0]["commissionRate"].as_i64()
            ),
            (Some("w"), Some(200))
        );
        assert_eq!(page["pageInfo"]["hasNextPage"], false);
        // a field IOTA's schema does not have is refused, as the real server refuses it
        let r = schema.execute("{ epoch { stakeSubsidyBalance } }").await;
        assert!(
            r.errors.iter().any(|e| e.message.contains("stakeSubsidyBalance")),
            "{:?}",
            r.errors
        );
        let r = schema
            .execute("{ epoch { validatorSet { activeValidators(first: 51) { nodes { name } } } } }")
            .await;
        assert!(
            r.errors.iter().any(|e| e.message.contains("exceeds max of 50")),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn success_abort_names_are_iota_s() {
        assert_eq!(
            Abort::StakedBelowThreshold.iota_name(),
            "staking_pool::EStakedIotaBelowThreshold"
        );
        let f = abort(2, Abort::StakingBelowThreshold);
        let ExecutionError::MoveAbort { location, code } = *f.error else {
            panic!("{f:?}")
        };
        assert_eq!(
            (location.module.as_str(), code, f.command),
            ("validator_set", 10, Some(2))
        );
    }
}

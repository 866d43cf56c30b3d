//! The programmable-transaction interpreter the Sui and IOTA local chains share: the commands a
//! staking treasury sends (`SplitCoins` from and `MergeCoins` into the gas coin, the system
//! package's `request_add_stake`, `request_withdraw_stake` and `staking_pool::split`), run
//! over [`StakingSystem`] in a chain-neutral form. Pure: no I/O, no object store; each chain
//! converts its SDK's transaction into a [`Ptb`], runs it, and applies the [`Outcome`] to its
//! own objects (ids, versions, digests and the wire stay the chain's).
//!
//! ```text
//!  chain's PTB ──▶ Ptb { inputs (resolved: pure bytes, coin balance, stake), commands }
//!                   └─ run(&mut StakingSystem) ─▶ Outcome { consumed, mutated, created,
//!                                                  gas balance, withdrawals } or Fail
//! ```
//!
//! The Move rules kept: a value without `drop` (a coin split off) must be used
//! (`UnusedValueWithoutDrop`), a new stake object goes to the sender (the entry function
//! transfers it), an object is used once, the gas coin pays the split-off coins beyond the
//! gas budget (`InsufficientCoinBalance` otherwise), aborts are the staking modules'
//! ([`Abort`]). Sources: sui-framework / iota-framework `sui_system.move` / `iota_system.move`,
//! `staking_pool.move`; the PTB semantics of docs.sui.io "Programmable Transaction Blocks".

use std::collections::{BTreeMap, BTreeSet};

use crate::move_staking::{Abort, StakedCoin, StakingSystem, Withdrawal};

/// A command argument (`Argument`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// The gas coin.
    Gas,
    /// An input, by index.
    Input(u16),
    /// The result of a command, by index.
    Result(u16),
    /// One value of a command's results.
    NestedResult(u16, u16),
    /// An argument kind this interpreter does not know (refused where it is used).
    Unknown,
}

/// An input as the chain resolved it before the run (ownership and versions already checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum In {
    /// A pure value, its BCS bytes.
    Pure(Vec<u8>),
    /// An owned coin of the chain's coin, its balance in base units.
    Coin(u64),
    /// An owned stake object.
    Staked(StakedCoin),
    /// The shared system state object (`0x5`).
    System,
    /// Anything else (refused when a command uses it).
    Other,
}

/// A command, in the chain-neutral form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    /// `SplitCoins(coin, amounts)`.
    SplitCoins {
        /// The coin split.
        coin: Arg,
        /// The amounts (pure u64s).
        amounts: Vec<Arg>,
    },
    /// `MergeCoins(coin, coins)`.
    MergeCoins {
        /// The coin merged into.
        coin: Arg,
        /// The coins merged.
        coins: Vec<Arg>,
    },
    /// `MoveCall`.
    MoveCall {
        /// Whether the package is the system package `0x3`.
        system_package: bool,
        /// Module name.
        module: String,
        /// Function name.
        function: String,
        /// Arguments.
        args: Vec<Arg>,
    },
    /// Any other command, named for the error.
    Other(String),
}

/// A transaction to run: its resolved inputs, commands, and the gas coin.
#[derive(Debug, Clone, Copy)]
pub struct Ptb<'a> {
    /// The system module's name (`sui_system`, `iota_system`).
    pub system_module: &'a str,
    /// Inputs, by index.
    pub inputs: &'a [In],
    /// Commands, in order.
    pub commands: &'a [Cmd],
    /// The gas coin's balance before the run, base units.
    pub gas_balance: u64,
    /// The gas budget, base units (kept back from what the gas coin can pay out).
    pub budget: u64,
}

/// An object the run creates for the sender, in creation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// A coin (a withdrawal's principal and reward), base units.
    Coin(u64),
    /// A stake object.
    Staked(StakedCoin),
}

/// What a successful run changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Inputs deleted (merged coins, withdrawn stakes).
    pub consumed: Vec<u16>,
    /// Stake inputs changed in place (split), with their new value.
    pub mutated: Vec<(u16, StakedCoin)>,
    /// New objects for the sender, in creation order.
    pub created: Vec<Created>,
    /// The gas coin's balance after merges and splits, before gas fees, base units.
    pub gas_balance: u64,
    /// Each withdrawal: the stake withdrawn and what it paid.
    pub withdrawals: Vec<(StakedCoin, Withdrawal)>,
    /// Objects written (for storage gas), besides the gas coin.
    pub written: u64,
    /// Objects overwritten or deleted (for the storage rebate), besides the gas coin.
    pub rebated: u64,
}

/// Why a run failed; each chain names it in its own execution error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    /// A Move abort of the staking modules in `command`.
    Abort {
        /// The command.
        command: usize,
        /// The abort.
        abort: Abort,
    },
    /// A command this local chain does not run.
    Unsupported {
        /// The command.
        command: usize,
        /// What.
        what: String,
    },
    /// An argument of the wrong kind, already used, or not decoding.
    Argument {
        /// The command.
        command: usize,
        /// The argument's position.
        argument: u16,
        /// What was expected.
        what: String,
        /// Whether its bytes did not decode (`InvalidBcsBytes`) rather than being the wrong kind.
        invalid_bcs: bool,
    },
    /// A call of a function the system package does not have, or of another package.
    FunctionNotFound {
        /// The command.
        command: usize,
        /// The function.
        what: String,
    },
    /// The gas coin cannot pay a split beyond the budget.
    InsufficientCoinBalance {
        /// The command.
        command: usize,
    },
    /// A coin split off and never used (`UnusedValueWithoutDrop`).
    UnusedValue {
        /// The command whose result it is.
        result: u16,
    },
}

impl Fail {
    /// The command the failure is in, when there is one.
    pub fn command(&self) -> Option<usize> {
        match self {
            Fail::Abort { command, .. }
            | Fail::Unsupported { command, .. }
            | Fail::Argument { command, .. }
            | Fail::FunctionNotFound { command, .. }
            | Fail::InsufficientCoinBalance { command } => Some(*command),
            Fail::UnusedValue { .. } => None,
        }
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Abort { command, abort } => write!(f, "{abort} in command {command}"),
            Fail::Unsupported { command, what } => {
                write!(f, "command {command}: {what} is not supported by this local chain")
            }
            Fail::Argument {
                command,
                argument,
                what,
                ..
            } => {
                write!(f, "command {command}, argument {argument}: {what}")
            }
            Fail::FunctionNotFound { command, what } => write!(f, "command {command}: no function {what}"),
            Fail::InsufficientCoinBalance { command } => write!(f, "InsufficientCoinBalance in command {command}"),
            Fail::UnusedValue { result } => {
                write!(
                    f,
                    "UnusedValueWithoutDrop: the coin of command {result} was split off and never used"
                )
            }
        }
    }
}

/// A value a command produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Coin(u64),
    Staked(StakedCoin),
    Moved,
}

/// The command a result argument names: `Result(i)`, or `NestedResult(i, 0)` of a command
/// with one value (what `SplitCoins` into one coin returns).
fn result_index(a: Arg) -> Option<usize> {
    match a {
        Arg::Result(r) | Arg::NestedResult(r, 0) => Some(usize::from(r)),
        _ => None,
    }
}

/// The fixed-size pure input `a` names: BCS of a u64 is its 8 little-endian bytes, of an
/// address its 32 bytes.
fn pure<const N: usize>(inputs: &[In], a: Arg, command: usize, argument: u16, what: &str) -> Result<[u8; N], Fail> {
    let wrong = |invalid_bcs| Fail::Argument {
        command,
        argument,
        what: format!("a pure {what} was expected"),
        invalid_bcs,
    };
    let Arg::Input(i) = a else { return Err(wrong(false)) };
    match inputs.get(usize::from(i)) {
        Some(In::Pure(b)) => <[u8; N]>::try_from(b.as_slice()).map_err(|_| wrong(true)),
        _ => Err(wrong(false)),
    }
}

fn address_text(bytes: [u8; 32]) -> String {
    let mut s = String::with_capacity(66);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The run's state between commands.
struct Runner<'a> {
    ptb: &'a Ptb<'a>,
    results: Vec<Value>,
    /// Stake inputs: their value and whether they were consumed.
    staked: BTreeMap<u16, (StakedCoin, bool)>,
    merged: BTreeSet<u16>,
    out: Outcome,
    split_total: u64,
}

impl Runner<'_> {
    fn split(&mut self, c: usize, coin: Arg, amounts: &[Arg]) -> Result<Value, Fail> {
        let ([amount], Arg::Gas) = (amounts, coin) else {
            return Err(Fail::Unsupported {
                command: c,
                what: "SplitCoins other than one amount off the gas coin".into(),
            });
        };
        let amount = u64::from_le_bytes(pure::<8>(self.ptb.inputs, *amount, c, 1, "u64")?);
        let usable = self
            .out
            .gas_balance
            .saturating_sub(self.ptb.budget)
            .saturating_sub(self.split_total);
        if amount > usable {
            return Err(Fail::InsufficientCoinBalance { command: c });
        }
        self.split_total += amount;
        Ok(Value::Coin(amount))
    }

    fn merge(&mut self, c: usize, coin: Arg, coins: &[Arg]) -> Result<Value, Fail> {
        if coin != Arg::Gas {
            return Err(Fail::Unsupported {
                command: c,
                what: "MergeCoins into a coin other than the gas coin".into(),
            });
        }
        for (k, a) in coins.iter().enumerate() {
            let argument = u16::try_from(k + 1).unwrap_or(u16::MAX);
            let Arg::Input(i) = *a else {
                return Err(Fail::Unsupported {
                    command: c,
                    what: "MergeCoins of a coin that is not an input".into(),
                });
            };
            let Some(In::Coin(b)) = self.ptb.inputs.get(usize::from(i)) else {
                return Err(Fail::Argument {
                    command: c,
                    argument,
                    what: "an owned coin was expected".into(),
                    invalid_bcs: false,
                });
            };
            if !self.merged.insert(i) {
                return Err(Fail::Argument {
                    command: c,
                    argument,
                    what: "the coin was used already".into(),
                    invalid_bcs: false,
                });
            }
            self.out.gas_balance = self.out.gas_balance.checked_add(*b).ok_or(Fail::Abort {
                command: c,
                abort: Abort::ArithmeticError,
            })?;
            self.out.consumed.push(i);
            self.out.rebated += 1;
        }
        Ok(Value::Moved)
    }

    fn add_stake(&mut self, system: &mut StakingSystem, c: usize, args: &[Arg]) -> Result<Value, Fail> {
        let arity = |what: &str| Fail::Argument {
            command: c,
            argument: 0,
            what: what.into(),
            invalid_bcs: false,
        };
        let [_, coin, validator] = args else {
            return Err(arity("request_add_stake takes (0x5, Coin, address)"));
        };
        let Some(r) = result_index(*coin) else {
            return Err(Fail::Unsupported {
                command: c,
                what: "a stake coin that is not a command result".into(),
            });
        };
        let Some(Value::Coin(amount)) = self.results.get(r).copied() else {
            return Err(Fail::Argument {
                command: c,
                argument: 1,
                what: "the coin was used already or is not a coin".into(),
                invalid_bcs: false,
            });
        };
        self.results[r] = Value::Moved;
        let validator = address_text(pure::<32>(self.ptb.inputs, *validator, c, 2, "address")?);
        let staked = system
            .request_add_stake(&validator, amount)
            .map_err(|abort| Fail::Abort { command: c, abort })?;
        Ok(Value::Staked(staked))
    }

    fn withdraw(&mut self, system: &mut StakingSystem, c: usize, args: &[Arg]) -> Result<Value, Fail> {
        let wrong = || Fail::Argument {
            command: c,
            argument: 1,
            what: "a stake object was expected (or it was used already)".into(),
            invalid_bcs: false,
        };
        let [_, staked] = args else {
            return Err(Fail::Argument {
                command: c,
                argument: 0,
                what: "request_withdraw_stake takes (0x5, stake)".into(),
                invalid_bcs: false,
            });
        };
        let st = match *staked {
            Arg::Input(i) => match self.staked.get_mut(&i) {
                Some((st, consumed)) if !*consumed => {
                    *consumed = true;
                    self.out.consumed.push(i);
                    self.out.rebated += 1;
                    *st
                }
                _ => return Err(wrong()),
            },
            a => match result_index(a).map(|r| (r, self.results.get(r).copied())) {
                Some((r, Some(Value::Staked(st)))) => {
                    self.results[r] = Value::Moved;
                    st
                }
                _ => return Err(wrong()),
            },
        };
        let w = system
            .request_withdraw_stake(st)
            .map_err(|abort| Fail::Abort { command: c, abort })?;
        let paid = w.principal_amount.checked_add(w.reward_amount).ok_or(Fail::Abort {
            command: c,
            abort: Abort::ArithmeticError,
        })?;
        self.out.withdrawals.push((st, w));
        self.out.created.push(Created::Coin(paid));
        self.out.written += 1;
        Ok(Value::Moved)
    }

    fn split_stake(&mut self, c: usize, args: &[Arg]) -> Result<Value, Fail> {
        let [staked, amount] = args else {
            return Err(Fail::Argument {
                command: c,
                argument: 0,
                what: "split takes (&mut stake, u64)".into(),
                invalid_bcs: false,
            });
        };
        let amount = u64::from_le_bytes(pure::<8>(self.ptb.inputs, *amount, c, 1, "u64")?);
        let Arg::Input(i) = *staked else {
            return Err(Fail::Unsupported {
                command: c,
                what: "split of a stake object that is not an input".into(),
            });
        };
        let Some((st, false)) = self.staked.get_mut(&i) else {
            return Err(Fail::Argument {
                command: c,
                argument: 0,
                what: "a stake object was expected (or it was used already)".into(),
                invalid_bcs: false,
            });
        };
        let part = st.split(amount).map_err(|abort| Fail::Abort { command: c, abort })?;
        let now = *st;
        self.out.mutated.retain(|(k, _)| *k != i);
        self.out.mutated.push((i, now));
        self.out.written += 1;
        self.out.rebated += 1;
        Ok(Value::Staked(part))
    }

    fn call(&mut self, system: &mut StakingSystem, c: usize, cmd: &Cmd) -> Result<Value, Fail> {
        let Cmd::MoveCall {
            system_package,
            module,
            function,
            args,
        } = cmd
        else {
            return Err(Fail::Unsupported {
                command: c,
                what: format!("{cmd:?}"),
            });
        };
        if !system_package {
            return Err(Fail::FunctionNotFound {
                command: c,
                what: format!("{module}::{function} outside the system package 0x3"),
            });
        }
        match (module.as_str(), function.as_str()) {
            (m, "request_add_stake") if m == self.ptb.system_module => self.add_stake(system, c, args),
            (m, "request_withdraw_stake") if m == self.ptb.system_module => self.withdraw(system, c, args),
            ("staking_pool", "split") => self.split_stake(c, args),
            (m, f) => Err(Fail::FunctionNotFound {
                command: c,
                what: format!("0x3::{m}::{f}"),
            }),
        }
    }
}

/// Runs `ptb` over `system` (which it changes; the caller keeps a copy to undo a failure).
///
/// # Errors
/// [`Fail`], naming the command; `system` may be part-changed then.
pub fn run(system: &mut StakingSystem, ptb: &Ptb<'_>) -> Result<Outcome, Fail> {
    let mut r = Runner {
        ptb,
        results: Vec::with_capacity(ptb.commands.len()),
        staked: ptb
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(i, input)| match input {
                In::Staked(st) => Some((u16::try_from(i).ok()?, (*st, false))),
                _ => None,
            })
            .collect(),
        merged: BTreeSet::new(),
        out: Outcome {
            gas_balance: ptb.gas_balance,
            ..Outcome::default()
        },
        split_total: 0,
    };
    for (c, cmd) in ptb.commands.iter().enumerate() {
        let value = match cmd {
            Cmd::SplitCoins { coin, amounts } => r.split(c, *coin, amounts)?,
            Cmd::MergeCoins { coin, coins } => r.merge(c, *coin, coins)?,
            Cmd::MoveCall { .. } => r.call(system, c, cmd)?,
            Cmd::Other(what) => {
                return Err(Fail::Unsupported {
                    command: c,
                    what: what.clone(),
                })
            }
        };
        r.results.push(value);
    }
    // a new stake object goes to the sender (the entry function transfers it)
    for v in &mut r.results {
        if let Value::Staked(st) = *v {
            r.out.created.push(Created::Staked(st));
            r.out.written += 1;
            *v = Value::Moved;
        }
    }
    if let Some(k) = r.results.iter().position(|v| matches!(v, Value::Coin(_))) {
        return Err(Fail::UnusedValue {
            result: u16::try_from(k).unwrap_or(u16::MAX),
        });
    }
    // the gas coin pays the split-off coins
    r.out.gas_balance -= r.split_total;
    Ok(r.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::move_staking::MIN_STAKING_THRESHOLD as COIN;

    const V: [u8; 32] = [1; 32];

    fn system() -> StakingSystem {
        StakingSystem::genesis(&[(address_text(V), 0, 1_000_000 * COIN)]).unwrap()
    }

    fn stake_ptb(inputs: &[In], commands: &[Cmd], gas: u64) -> Result<Outcome, Fail> {
        run(
            &mut system(),
            &Ptb {
                system_module: "iota_system",
                inputs,
                commands,
                gas_balance: gas,
                budget: COIN / 100,
            },
        )
    }

    fn add_stake(args: Vec<Arg>) -> Cmd {
        Cmd::MoveCall {
            system_package: true,
            module: "iota_system".into(),
            function: "request_add_stake".into(),
            args,
        }
    }

    #[test]
    fn success_merge_split_and_stake_create_one_stake_for_the_sender() {
        let inputs = [
            In::Coin(5 * COIN),
            In::Pure((3 * COIN).to_le_bytes().to_vec()),
            In::System,
            In::Pure(V.to_vec()),
        ];
        let commands = [
            Cmd::MergeCoins {
                coin: Arg::Gas,
                coins: vec![Arg::Input(0)],
            },
            Cmd::SplitCoins {
                coin: Arg::Gas,
                amounts: vec![Arg::Input(1)],
            },
            add_stake(vec![Arg::Input(2), Arg::NestedResult(1, 0), Arg::Input(3)]),
        ];
        let out = stake_ptb(&inputs, &commands, COIN).unwrap();
        assert_eq!(out.consumed, vec![0]);
        assert_eq!(out.gas_balance, 3 * COIN, "1 + 5 merged − 3 staked");
        let [Created::Staked(st)] = out.created.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!((st.principal, st.stake_activation_epoch), (3 * COIN, 1));
    }

    #[test]
    fn fail_unused_coin_overdraft_and_aborts_are_named() {
        let inputs = [
            In::Pure((2 * COIN).to_le_bytes().to_vec()),
            In::System,
            In::Pure(V.to_vec()),
        ];
        let split = Cmd::SplitCoins {
            coin: Arg::Gas,
            amounts: vec![Arg::Input(0)],
        };
        // a coin split off and never used
        let e = stake_ptb(&inputs, std::slice::from_ref(&split), 10 * COIN).unwrap_err();
        assert_eq!(e, Fail::UnusedValue { result: 0 });
        // more than the gas coin holds beyond the budget
        let e = stake_ptb(&inputs, std::slice::from_ref(&split), 2 * COIN).unwrap_err();
        assert_eq!(e, Fail::InsufficientCoinBalance { command: 0 });
        // a stake below one coin aborts as the module names it
        let small = [
            In::Pure((COIN / 2).to_le_bytes().to_vec()),
            In::System,
            In::Pure(V.to_vec()),
        ];
        let commands = [
            split.clone(),
            add_stake(vec![Arg::Input(1), Arg::Result(0), Arg::Input(2)]),
        ];
        let e = stake_ptb(&small, &commands, 10 * COIN).unwrap_err();
        assert_eq!(
            e,
            Fail::Abort {
                command: 1,
                abort: Abort::StakingBelowThreshold
            }
        );
        // a validator address that is not 32 bytes does not decode
        let bad = [
            In::Pure((2 * COIN).to_le_bytes().to_vec()),
            In::System,
            In::Pure(vec![1; 31]),
        ];
        let e = stake_ptb(&bad, &commands, 10 * COIN).unwrap_err();
        assert!(matches!(e, Fail::Argument { invalid_bcs: true, .. }), "{e:?}");
    }

    #[test]
    fn success_split_then_withdraw_pays_the_part_and_keeps_the_rest() {
        let st = StakedCoin {
            pool_id: 0,
            stake_activation_epoch: 1,
            principal: 10 * COIN,
        };
        let inputs = [In::Staked(st), In::Pure((4 * COIN).to_le_bytes().to_vec()), In::System];
        let commands = [
            Cmd::MoveCall {
                system_package: true,
                module: "staking_pool".into(),
                function: "split".into(),
                args: vec![Arg::Input(0), Arg::Input(1)],
            },
            Cmd::MoveCall {
                system_package: true,
                module: "iota_system".into(),
                function: "request_withdraw_stake".into(),
                args: vec![Arg::Input(2), Arg::Result(0)],
            },
        ];
        let mut sys = system();
        sys.request_add_stake(&address_text(V), 10 * COIN).unwrap();
        sys.advance_epoch(0).unwrap();
        let out = run(
            &mut sys,
            &Ptb {
                system_module: "iota_system",
                inputs: &inputs,
                commands: &commands,
                gas_balance: COIN,
                budget: COIN / 100,
            },
        )
        .unwrap();
        assert_eq!(
            out.mutated,
            vec![(
                0,
                StakedCoin {
                    principal: 6 * COIN,
                    ..st
                }
            )]
        );
        assert_eq!(
            out.created,
            vec![Created::Coin(4 * COIN)],
            "no reward in the first epoch"
        );
        assert!(out.consumed.is_empty(), "the rest stays an object");
    }
}

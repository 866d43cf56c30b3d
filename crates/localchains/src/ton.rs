//! A local TON chain that speaks a subset of toncenter's HTTP API and keeps wallet v4r2's
//! and the official nominator pool's rules, for tests and local runs (no TON node can be
//! installed offline here; `@ton/sandbox` is an in-process JS emulator with no RPC).
//!
//! ```text
//!  GET  /api/v3/masterchainInfo           last.seqno, last.gen_utime
//!  GET  /api/v2/getConfigParam?config_id  15 (validators_timing), 19 (global id),
//!                                         34 (current validator set: utime_since/until)
//!  GET  /api/v3/walletInformation         balance, status, seqno, wallet_id, wallet_type
//!                                         "wallet v4 r2"; 409 for an account that is not a
//!                                         wallet (yet)
//!  GET  /api/v3/addressInformation        balance, status (active | uninit | nonexist)
//!  POST /api/v3/runGetMethod              get_pool_data, get_nominator_data (exit 86 for
//!                                         a stranger), unknown methods exit 11
//!  POST /api/v3/message {boc}             an external-in message to a wallet v4r2: deploy
//!  POST /api/v2/sendBocReturnHash         with its StateInit (address = hash(StateInit)),
//!                                         then valid_until > now (36), seqno (33), subwallet
//!                                         (34), Ed25519 over the body after the signature
//!                                         (35); refused messages answer 500 with the
//!                                         liteserver's "exitcode=N" text and change nothing
//!  GET  /api/v3/transactionsByMessage     the transaction an inbound message (normalized
//!                                         hash for externals, TEP-467) started
//! ```
//!
//! The pools follow ton-blockchain/nominator-pool `func/pool.fc`: `d` (deposit less the 1
//! TON processing fee; amount while the pool is not staking, pending_deposit_amount while
//! it is; exit 67 below min_nominator_stake, 65 when full, 61 outside the basechain), `w`
//! (the whole position at once when not staking, else a withdraw request paid once the
//! stake is recovered), bounces of refused messages less fees. Elections follow
//! ConfigParam 15: each round lasts `elected_for`; a pool that is not staking and has no
//! withdraw request sends its stake when the elections for the next round close
//! (`end_before` before the round's end), the elector holds it for the round and
//! `stake_held_for` after, then returns it with the round's reward (the configured yearly
//! rate on the stake for the round's length); the pool gives the validator its share and
//! distributes the rest pro rata to `amount` (distribute_share), moving pending deposits
//! into `amount`, and pays withdraw requests one second later. Pools therefore stake in
//! alternate rounds, as on mainnet. The normalized message hash and the signature check
//! are written here, not with the adapter's code.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use num_bigint::BigUint;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tlb_ton::bits::bitvec::{order::Msb0, vec::BitVec};
use tlb_ton::bits::de::BitReaderExt;
use tlb_ton::message::{CommonMsgInfo, InternalMsgInfo, Message};
use tlb_ton::ser::CellSerializeExt;
use tlb_ton::state_init::StateInit;
use tlb_ton::{BagOfCells, BagOfCellsArgs, Cell, MsgAddress};
use ton_contracts::wallet::v4r2::{WalletV4R2Data, V4R2};
use ton_contracts::wallet::WalletVersion;

/// 1 TON in nanotons.
pub const TON: u128 = 1_000_000_000;
/// The pool keeps this of every deposit (`DEPOSIT_PROCESSING_FEE`).
pub const DEPOSIT_PROCESSING_FEE: u128 = TON;
/// What a pool keeps for storage (`MIN_TONS_FOR_STORAGE`).
pub const MIN_TONS_FOR_STORAGE: u128 = 10 * TON;
/// The smallest stake a pool sends (`MIN_STAKE_TO_SEND`).
pub const MIN_STAKE_TO_SEND: u128 = 500 * TON;
/// Flat fee of a wallet's external transaction (import + compute), nanotons.
pub const WALLET_TX_FEE: u128 = 3_500_000;
/// Flat forward fee of one internal message, nanotons.
pub const FWD_FEE: u128 = 400_000;
/// Flat compute fee of a pool's transaction, taken from the inbound value, nanotons.
pub const POOL_TX_FEE: u128 = 10_000_000;
/// Wallet v4r2 default subwallet id.
pub const WALLET_ID: u32 = 698_983_191;
/// Seconds in a year, for the reward rate.
const YEAR_SECS: u128 = 31_536_000;
/// Longest clock jump one call may ask for (bounds the loop), seconds.
const MAX_ADVANCE_SECS: u64 = 10_000_000;
/// Most transactions kept (oldest dropped first).
const MAX_TXS: usize = 1_000_000;
/// The elector's masterchain account id (ConfigParam 1; mainnet's elector is −1:3333…3).
pub const ELECTOR_ACCOUNT: [u8; 32] = [0x33; 32];
/// What a single-nominator pool keeps for storage (`MIN_TON_FOR_STORAGE`,
/// orbs-network/single-nominator `contracts/single-nominator.fc`), nanotons.
pub const SINGLE_MIN_TON_FOR_STORAGE: u128 = TON;
/// The single-nominator pool's owner withdrawal (`OP::WITHDRAW`).
pub const OP_WITHDRAW: u32 = 0x1000;
/// The single-nominator pool's refusal of a withdrawal it cannot pay
/// (`ERROR::INSUFFICIENT_BALANCE`).
pub const ERROR_INSUFFICIENT_BALANCE: i32 = 0x2004;
/// How long after its stake unfreezes the validator sends `recover_stake`, seconds.
const RECOVER_DELAY_SECS: u32 = 61;

/// One nominator pool at genesis.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// Its masterchain account id (the pool lives at `-1:<hex>`).
    pub account: [u8; 32],
    /// The validator's share of rewards, bps of 10 000.
    pub validator_reward_share: u16,
    /// Most nominators.
    pub max_nominators_count: u16,
    /// Smallest nominator position, nanotons.
    pub min_nominator_stake: u128,
    /// The validator's own stake, nanotons.
    pub validator_amount: u128,
    /// Other nominators' stake already in the pool, nanotons (one nominator).
    pub others_amount: u128,
}

/// One single-nominator pool at genesis (orbs-network/single-nominator).
#[derive(Debug, Clone)]
pub struct SingleSpec {
    /// Its masterchain account id (the pool lives at `-1:<hex>`).
    pub account: [u8; 32],
    /// The owner (the only address that may withdraw).
    pub owner: MsgAddress,
    /// Its validator's public key (the elector's key for its stake).
    pub validator_pubkey: [u8; 32],
    /// Its balance at genesis, nanotons (at least [`SINGLE_MIN_TON_FOR_STORAGE`]).
    pub balance: u128,
}

/// The chain at genesis.
#[derive(Debug, Clone)]
pub struct TonGenesis {
    /// ConfigParam 19.
    pub global_id: i32,
    /// Chain time at genesis, Unix seconds (the first round starts here).
    pub start_time_secs: u32,
    /// ConfigParam 15: elected_for, elections_start_before, elections_end_before,
    /// stake_held_for, seconds.
    pub timing: [u32; 4],
    /// Deployed wallets v4r2 (subwallet [`WALLET_ID`]): (public key, balance nanotons).
    pub wallets: Vec<([u8; 32], u128)>,
    /// Funds on undeployed wallet addresses (their first message deploys them).
    pub uninit_wallets: Vec<([u8; 32], u128)>,
    /// The nominator pools.
    pub pools: Vec<PoolSpec>,
    /// The single-nominator pools (their validators stake everything they hold).
    pub singles: Vec<SingleSpec>,
    /// The elector's yearly reward on stake, bps.
    pub apr_bps: u32,
    /// Real milliseconds per chain second (0 = the clock moves only when told).
    pub tick_ms: u64,
}

#[derive(Debug, Clone)]
struct Wallet {
    seqno: u32,
    wallet_id: u32,
    public_key: [u8; 32],
}

#[derive(Debug, Clone, Default)]
struct Account {
    balance: u128,
    wallet: Option<Wallet>,
    last_lt: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Nominator {
    amount: u128,
    pending: u128,
}

#[derive(Debug, Clone)]
struct Pool {
    spec: PoolSpec,
    state: u8,
    stake_amount_sent: u128,
    validator_amount: u128,
    nominators: BTreeMap<[u8; 32], Nominator>,
    withdraw_requests: BTreeSet<[u8; 32]>,
    stake_at: u32,
    stake_held_for: u32,
    /// When the stake comes back (round end + held + 61 s).
    recover_at: Option<u32>,
    /// Withdraw requests are paid at this time (one second after a recovery).
    pay_requests_at: Option<u32>,
}

/// A single-nominator pool: `storage#_ owner_address validator_address`.
#[derive(Debug, Clone)]
struct Single {
    owner: MsgAddress,
    validator: MsgAddress,
    pubkey: [u8; 32],
}

/// One past election's frozen stakes (elector-code.fc `past_elections`).
#[derive(Debug, Clone)]
struct Past {
    unfreeze_at: u32,
    stake_held: u32,
    /// validator public key → (the staking account's id, stake)
    frozen: BTreeMap<[u8; 32], ([u8; 32], u128)>,
    total_stake: u128,
}

/// The elector's stakes of single-nominator pools (elector-code.fc: `elect`, `credits`,
/// `past_elections`). Nominator pools keep theirs as `stake_amount_sent`.
#[derive(Debug, Clone, Default)]
struct Elector {
    /// The election open now (its round's start), 0 when none.
    elect_at: u32,
    /// Current elections: validator public key → (account id, stake).
    participants: BTreeMap<[u8; 32], ([u8; 32], u128)>,
    past: BTreeMap<u32, Past>,
    /// Unfrozen stake and bonuses waiting for `recover_stake`: account id → nanotons.
    credits: BTreeMap<[u8; 32], u128>,
    /// When each account's validator sends `recover_stake`.
    recover_at: BTreeMap<[u8; 32], u32>,
}

impl Elector {
    /// Everything the elector holds, nanotons (the conservation checks' term).
    #[cfg(test)]
    fn held(&self) -> u128 {
        let p: u128 = self.participants.values().map(|x| x.1).sum();
        let f: u128 = self.past.values().flat_map(|e| e.frozen.values()).map(|x| x.1).sum();
        p + f + self.credits.values().sum::<u128>()
    }

    /// Whether `account` has stake anywhere in the elector.
    fn holds_for(&self, account: [u8; 32]) -> bool {
        self.participants.values().any(|x| x.0 == account)
            || self.past.values().any(|e| e.frozen.values().any(|x| x.0 == account))
            || self.credits.contains_key(&account)
    }
}

/// One executed transaction, as toncenter's v3 shows it.
#[derive(Debug, Clone)]
struct Tx {
    account: MsgAddress,
    lt: u64,
    now: u32,
    in_hash: [u8; 32],
    in_value: u128,
    source: Option<MsgAddress>,
    out: Vec<([u8; 32], MsgAddress, u128)>,
    aborted: bool,
    exit_code: i32,
}

/// An internal message in flight.
#[derive(Debug, Clone)]
struct Internal {
    src: MsgAddress,
    dst: MsgAddress,
    value: u128,
    bounce: bool,
    bounced: bool,
    body: Cell,
    hash: [u8; 32],
}

struct Chain {
    g: TonGenesis,
    now: u32,
    seqno: u64,
    lt: u64,
    round_since: u32,
    accounts: HashMap<MsgAddress, Account>,
    pools: BTreeMap<[u8; 32], Pool>,
    singles: BTreeMap<[u8; 32], Single>,
    elector: Elector,
    txs: Vec<Tx>,
    by_in_hash: HashMap<[u8; 32], usize>,
    /// Fees taken out of circulation (wallet gas, forward fees), nanotons.
    burned: u128,
    /// Rewards the elector paid, nanotons.
    minted: u128,
}

type Shared = Arc<Mutex<Chain>>;

/// A wallet v4r2's address (basechain, subwallet `wallet_id`) for `public_key`.
///
/// # Errors
/// A state init that does not serialize (never for a valid key).
pub fn wallet_address(wallet_id: u32, public_key: [u8; 32]) -> Result<MsgAddress> {
    MsgAddress::derive(0, V4R2::state_init(wallet_id, public_key)).map_err(|e| anyhow!("wallet address: {e}"))
}

/// The masterchain address of a pool account.
pub fn pool_address(account: [u8; 32]) -> MsgAddress {
    MsgAddress {
        workchain_id: -1,
        address: account,
    }
}

/// The `i`-th local pool's account id (deterministic: the config pins them).
pub fn pool_account(i: u8) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"softstake local TON nominator pool");
    h.update([i]);
    h.finalize().into()
}

/// The `i`-th local single-nominator pool's account id (deterministic: the config pins
/// them).
pub fn single_account(i: u8) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"softstake local TON single-nominator pool");
    h.update([i]);
    h.finalize().into()
}

fn raw(a: &MsgAddress) -> String {
    format!("{}:{}", a.workchain_id, hex::encode_upper(a.address))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    use num_bigint::BigUint as B;
    let r = B::from(a) * B::from(b) / B::from(c.max(1));
    u128::try_from(r).unwrap_or(u128::MAX)
}

/// A bit string written MSB first (for the cells this chain builds itself).
#[derive(Default)]
struct Bits(BitVec<u8, Msb0>);

impl Bits {
    fn uint(&mut self, v: u128, n: usize) -> &mut Self {
        for i in (0..n).rev() {
            self.0.push((v >> i) & 1 == 1);
        }
        self
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        for x in b {
            self.uint(u128::from(*x), 8);
        }
        self
    }
    /// MsgAddressInt addr_std without anycast.
    fn addr(&mut self, a: &MsgAddress) -> &mut Self {
        self.uint(0b100, 3)
            .uint(u128::from(a.workchain_id as u8), 8)
            .bytes(&a.address)
    }
    fn cell(self, refs: Vec<Arc<Cell>>) -> Cell {
        Cell {
            is_exotic: false,
            data: self.0,
            references: refs,
        }
    }
}

/// TEP-467's normalized hash of an external-in message to `dst` with `body`: ext_in_msg_info
/// with src addr_none and import_fee 0, no init, the body as a reference.
pub fn normalized_hash(dst: &MsgAddress, body: &Cell) -> [u8; 32] {
    let mut b = Bits::default();
    b.uint(0b10, 2).uint(0b00, 2).addr(dst).uint(0, 4); // ext_in, addr_none, dest, grams 0
    b.uint(0, 1).uint(1, 1); // init nothing, body ^X
    b.cell(vec![Arc::new(body.clone())]).hash()
}

fn config_cell(id: u32, g: &TonGenesis, since: u32) -> Cell {
    let mut b = Bits::default();
    match id {
        15 => {
            for t in g.timing {
                b.uint(u128::from(t), 32);
            }
        }
        1 => {
            b.bytes(&ELECTOR_ACCOUNT);
        }
        19 => {
            b.uint(u128::from(g.global_id as u32), 32);
        }
        _ => {
            // validators_ext#12 utime_since utime_until total:uint16 main:uint16 total_weight:uint64
            b.uint(0x12, 8)
                .uint(u128::from(since), 32)
                .uint(u128::from(since + g.timing[0]), 32)
                .uint(1, 16)
                .uint(1, 16)
                .uint(1, 64);
        }
    }
    b.cell(Vec::new())
}

impl Chain {
    fn new(g: TonGenesis) -> Result<Chain> {
        if g.timing[0] == 0 || g.timing[3] == 0 || g.timing[2] >= g.timing[1] || g.timing[1] >= g.timing[0] {
            return Err(anyhow!(
                "timing {:?}: want elected_for > start_before > end_before and positive elected_for, held_for",
                g.timing
            ));
        }
        let mut accounts = HashMap::new();
        for (pk, balance) in &g.wallets {
            accounts.insert(
                wallet_address(WALLET_ID, *pk)?,
                Account {
                    balance: *balance,
                    wallet: Some(Wallet {
                        seqno: 0,
                        wallet_id: WALLET_ID,
                        public_key: *pk,
                    }),
                    last_lt: 0,
                },
            );
        }
        for (pk, balance) in &g.uninit_wallets {
            accounts.insert(
                wallet_address(WALLET_ID, *pk)?,
                Account {
                    balance: *balance,
                    ..Account::default()
                },
            );
        }
        let mut pools = BTreeMap::new();
        for spec in &g.pools {
            let mut nominators = BTreeMap::new();
            if spec.others_amount > 0 {
                let other: [u8; 32] = Sha256::digest(spec.account).into();
                nominators.insert(
                    other,
                    Nominator {
                        amount: spec.others_amount,
                        pending: 0,
                    },
                );
            }
            accounts.insert(
                pool_address(spec.account),
                Account {
                    balance: MIN_TONS_FOR_STORAGE + spec.validator_amount + spec.others_amount,
                    ..Account::default()
                },
            );
            pools.insert(
                spec.account,
                Pool {
                    spec: spec.clone(),
                    state: 0,
                    stake_amount_sent: 0,
                    validator_amount: spec.validator_amount,
                    nominators,
                    withdraw_requests: BTreeSet::new(),
                    stake_at: 0,
                    stake_held_for: 0,
                    recover_at: None,
                    pay_requests_at: None,
                },
            );
        }
        let mut singles = BTreeMap::new();
        for spec in &g.singles {
            if spec.balance < SINGLE_MIN_TON_FOR_STORAGE || pools.contains_key(&spec.account) {
                return Err(anyhow!(
                    "single-nominator pool {}: needs at least 1 TON and its own account",
                    hex::encode(spec.account)
                ));
            }
            accounts.insert(
                pool_address(spec.account),
                Account {
                    balance: spec.balance,
                    ..Account::default()
                },
            );
            let validator: [u8; 32] = Sha256::digest(spec.validator_pubkey).into();
            singles.insert(
                spec.account,
                Single {
                    owner: spec.owner,
                    validator: pool_address(validator),
                    pubkey: spec.validator_pubkey,
                },
            );
        }
        Ok(Chain {
            now: g.start_time_secs,
            round_since: g.start_time_secs,
            g,
            seqno: 1,
            lt: 1_000,
            accounts,
            pools,
            singles,
            elector: Elector::default(),
            txs: Vec::new(),
            by_in_hash: HashMap::new(),
            burned: 0,
            minted: 0,
        })
    }

    fn next_lt(&mut self) -> u64 {
        self.lt += 1_000;
        self.lt
    }

    fn record(&mut self, tx: Tx) {
        if self.txs.len() >= MAX_TXS {
            // bounded: forget the oldest half
            self.txs.drain(..MAX_TXS / 2);
            self.by_in_hash = self.txs.iter().enumerate().map(|(i, t)| (t.in_hash, i)).collect();
        }
        if let Some(a) = self.accounts.get_mut(&tx.account) {
            a.last_lt = tx.lt;
        }
        self.by_in_hash.insert(tx.in_hash, self.txs.len());
        self.txs.push(tx);
    }

    /// Moves the clock one second at a time: rounds, elections, recoveries, payouts.
    fn advance(&mut self, secs: u64) {
        for _ in 0..secs.min(MAX_ADVANCE_SECS) {
            self.now += 1;
            self.seqno += 1;
            let [elected_for, _, end_before, _] = self.g.timing;
            let until = self.round_since + elected_for;
            if self.now >= until {
                self.round_since = until;
            }
            let until = self.round_since + elected_for;
            let start_before = self.g.timing[1];
            if self.now == until - start_before {
                self.single_stakes(until);
            }
            if self.now == until - end_before {
                self.elections(until);
                self.close_elections(until);
            }
            self.elector_events();
            let accounts: Vec<[u8; 32]> = self.pools.keys().copied().collect();
            for p in accounts {
                self.pool_events(p);
            }
        }
    }

    /// Elections for the round starting at `next_since`: idle pools pay their requests and
    /// send their stake.
    fn elections(&mut self, next_since: u32) {
        let keys: Vec<[u8; 32]> = self.pools.keys().copied().collect();
        for k in keys {
            self.pay_requests(k);
            let addr = pool_address(k);
            let balance = self.accounts.get(&addr).map_or(0, |a| a.balance);
            let Some(p) = self.pools.get_mut(&k) else { continue };
            if p.state != 0 || !p.withdraw_requests.is_empty() {
                continue;
            }
            let value = balance.saturating_sub(MIN_TONS_FOR_STORAGE);
            if value < MIN_STAKE_TO_SEND {
                continue;
            }
            p.state = 2; // new_stake, confirmed by the elector (new_stake_ok)
            p.stake_amount_sent = value - TON;
            p.stake_at = next_since;
            p.stake_held_for = self.g.timing[3];
            p.recover_at = Some(next_since + self.g.timing[0] + self.g.timing[3] + 61);
            if let Some(a) = self.accounts.get_mut(&addr) {
                a.balance -= value;
            }
        }
    }

    /// When the elections for the round starting at `next_since` open, the validator of
    /// each single-nominator pool with nothing at the elector stakes all the pool holds but
    /// its storage reserve (`new_stake`, at least [`MIN_STAKE_TO_SEND`]); what arrives
    /// later waits for the next elections. A stake recovered after the window opened
    /// therefore sits in the pool, withdrawable, for a round.
    fn single_stakes(&mut self, next_since: u32) {
        self.elector.elect_at = next_since;
        let keys: Vec<[u8; 32]> = self.singles.keys().copied().collect();
        for k in keys {
            if self.elector.holds_for(k) {
                continue;
            }
            let Some(pubkey) = self.singles.get(&k).map(|s| s.pubkey) else {
                continue;
            };
            let Some(a) = self.accounts.get_mut(&pool_address(k)) else {
                continue;
            };
            let stake = a.balance.saturating_sub(SINGLE_MIN_TON_FOR_STORAGE);
            if stake < MIN_STAKE_TO_SEND {
                continue;
            }
            a.balance -= stake;
            self.elector.participants.insert(pubkey, (k, stake));
        }
    }

    /// The elections for the round starting at `next_since` close: their stakes freeze
    /// until the round ends plus `stake_held_for`.
    fn close_elections(&mut self, next_since: u32) {
        self.elector.elect_at = 0;
        if self.elector.participants.is_empty() {
            return;
        }
        let frozen = std::mem::take(&mut self.elector.participants);
        let total_stake = frozen.values().map(|x| x.1).sum();
        let [elected_for, _, _, held] = self.g.timing;
        self.elector.past.insert(
            next_since,
            Past {
                unfreeze_at: next_since + elected_for + held,
                stake_held: held,
                frozen,
                total_stake,
            },
        );
    }

    /// Unfreezes past elections (stake plus the round's bonus into credits) and lets each
    /// validator recover its pool's credits [`RECOVER_DELAY_SECS`] later.
    fn elector_events(&mut self) {
        let now = self.now;
        let due: Vec<u32> = self
            .elector
            .past
            .iter()
            .filter(|(_, p)| p.unfreeze_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(p) = self.elector.past.remove(&id) else {
                continue;
            };
            for (account, stake) in p.frozen.into_values() {
                let bonus = mul_div(
                    stake,
                    u128::from(self.g.apr_bps) * u128::from(self.g.timing[0]),
                    10_000 * YEAR_SECS,
                );
                self.minted += bonus;
                *self.elector.credits.entry(account).or_default() += stake + bonus;
                self.elector.recover_at.insert(account, now + RECOVER_DELAY_SECS);
            }
        }
        let recover: Vec<[u8; 32]> = self
            .elector
            .recover_at
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(a, _)| *a)
            .collect();
        for account in recover {
            self.elector.recover_at.remove(&account);
            let credit = self.elector.credits.remove(&account).unwrap_or(0);
            if let Some(a) = self.accounts.get_mut(&pool_address(account)) {
                a.balance += credit;
            }
        }
    }

    fn pool_events(&mut self, k: [u8; 32]) {
        let now = self.now;
        let Some(p) = self.pools.get_mut(&k) else { return };
        if p.recover_at.is_some_and(|t| now >= t) {
            p.recover_at = None;
            // recover_stake_ok: the elector returns stake + reward (+ the 1 TON sent along)
            let reward = mul_div(
                p.stake_amount_sent,
                u128::from(self.g.apr_bps) * u128::from(self.g.timing[0]),
                10_000 * YEAR_SECS,
            );
            let returned = p.stake_amount_sent + reward + TON;
            let validator_reward = reward * u128::from(p.spec.validator_reward_share) / 10_000;
            p.validator_amount += validator_reward;
            distribute_share(&mut p.nominators, reward - validator_reward);
            p.state = 0;
            p.stake_amount_sent = 0;
            p.pay_requests_at = Some(now + 1);
            self.minted += reward;
            if let Some(a) = self.accounts.get_mut(&pool_address(k)) {
                a.balance += returned;
            }
        } else if p.pay_requests_at.is_some_and(|t| now >= t) {
            p.pay_requests_at = None;
            self.pay_requests(k);
        }
    }

    /// Op 2 (process withdraw requests): pays each request the balance covers.
    fn pay_requests(&mut self, k: [u8; 32]) {
        let addr = pool_address(k);
        let Some(p) = self.pools.get_mut(&k) else { return };
        if p.state != 0 {
            return;
        }
        let mut payouts = Vec::new();
        let mut balance = self.accounts.get(&addr).map_or(0, |a| a.balance);
        for who in p.withdraw_requests.clone() {
            let n = p.nominators.get(&who).copied().unwrap_or_default();
            let amount = n.amount + n.pending;
            if amount > balance.saturating_sub(MIN_TONS_FOR_STORAGE) {
                break;
            }
            balance -= amount;
            p.nominators.remove(&who);
            p.withdraw_requests.remove(&who);
            payouts.push((who, amount));
        }
        for (who, amount) in payouts {
            self.pay_from_pool(addr, who, amount);
        }
    }

    /// The pool's non-bounceable payout (mode 0: the forward fee comes out of the amount).
    /// Under 1 TON nothing is sent and the amount stays with the pool (pool.fc).
    fn pay_from_pool(&mut self, pool: MsgAddress, who: [u8; 32], amount: u128) {
        if amount < TON {
            return;
        }
        if let Some(a) = self.accounts.get_mut(&pool) {
            a.balance -= amount;
        }
        self.burned += FWD_FEE;
        let dst = MsgAddress {
            workchain_id: 0,
            address: who,
        };
        let msg = self.internal(pool, dst, amount - FWD_FEE, false, false, Cell::default());
        self.deliver(msg, 0);
    }

    fn internal(
        &mut self,
        src: MsgAddress,
        dst: MsgAddress,
        value: u128,
        bounce: bool,
        bounced: bool,
        body: Cell,
    ) -> Internal {
        let lt = self.next_lt();
        let mut info = InternalMsgInfo::transfer(dst, BigUint::from(value), bounce);
        info.src = src;
        info.bounced = bounced;
        info.created_lt = lt;
        info.created_at = self.now;
        let m = Message::<Cell, Cell, Cell> {
            info: CommonMsgInfo::Internal(info),
            init: None,
            body: body.clone(),
        };
        let hash = m
            .to_cell(())
            .map(|c| c.hash())
            .unwrap_or_else(|_| Sha256::digest(lt.to_be_bytes()).into());
        Internal {
            src,
            dst,
            value,
            bounce,
            bounced,
            body,
            hash,
        }
    }

    /// Executes an internal message (and what it sends, up to `depth` 4).
    fn deliver(&mut self, m: Internal, depth: u8) {
        let lt = self.next_lt();
        let on_master = m.dst.workchain_id == -1;
        let pool_key = (on_master && self.pools.contains_key(&m.dst.address)).then_some(m.dst.address);
        let single_key = (on_master && self.singles.contains_key(&m.dst.address)).then_some(m.dst.address);
        self.accounts.entry(m.dst).or_default().balance += m.value;
        let mut tx = Tx {
            account: m.dst,
            lt,
            now: self.now,
            in_hash: m.hash,
            in_value: m.value,
            source: Some(m.src),
            out: Vec::new(),
            aborted: false,
            exit_code: 0,
        };
        let mut replies = Vec::new();
        let received = match (pool_key, single_key, m.bounced) {
            (Some(k), _, false) => Some(self.pool_receive(k, &m).map(|v| v.map(|v| (v, false)))),
            (_, Some(k), false) => Some(self.single_receive(k, &m).map(|v| v.map(|v| (v, true)))),
            _ => None,
        };
        if let Some(result) = received {
            match result {
                Ok(reply) => {
                    if let Some((v, bounce)) = reply {
                        replies.push(self.internal(m.dst, m.src, v, bounce, false, Cell::default()));
                    }
                }
                Err(code) => {
                    tx.aborted = true;
                    tx.exit_code = code;
                    // the value bounces back less the fee, which is burned (the pool's
                    // balance is as before); a non-bounceable message's value stays
                    if m.bounce && m.value > POOL_TX_FEE {
                        if let Some(a) = self.accounts.get_mut(&m.dst) {
                            a.balance -= POOL_TX_FEE;
                        }
                        self.burned += POOL_TX_FEE;
                        let mut body = Bits::default();
                        body.uint(0xFFFF_FFFF, 32);
                        replies.push(self.internal(
                            m.dst,
                            m.src,
                            m.value - POOL_TX_FEE,
                            false,
                            true,
                            body.cell(Vec::new()),
                        ));
                    }
                }
            }
        }
        tx.out = replies.iter().map(|r| (r.hash, r.dst, r.value)).collect();
        self.record(tx);
        if depth < 4 {
            for r in replies {
                // the pool's balance pays the reply
                if let Some(a) = self.accounts.get_mut(&r.src) {
                    a.balance = a.balance.saturating_sub(r.value);
                }
                self.deliver(r, depth + 1);
            }
        }
    }

    /// pool.fc `recv_internal` for nominators' text comments. `Ok(Some(v))` sends `v`
    /// back (send_excesses); `Err(code)` throws (the message bounces).
    fn pool_receive(&mut self, k: [u8; 32], m: &Internal) -> std::result::Result<Option<u128>, i32> {
        let mut p = m.body.parser();
        let op: u32 = p.unpack(()).map_err(|_| 9)?;
        if op != 0 {
            return Err(70);
        }
        let action: u8 = p.unpack(()).map_err(|_| 9)?;
        if action != b'd' && action != b'w' {
            return Err(64);
        }
        if p.bits_left() != 0 || !m.body.references.is_empty() {
            return Err(9); // end_parse
        }
        if m.src.workchain_id != 0 {
            return Err(61);
        }
        let addr = pool_address(k);
        let balance = self.accounts.get(&addr).map_or(0, |a| a.balance);
        let pool = self.pools.get_mut(&k).ok_or(70)?;
        let who = m.src.address;
        if action == b'd' {
            let found = pool.nominators.contains_key(&who);
            let count = pool.nominators.len() + usize::from(!found);
            if count > usize::from(pool.spec.max_nominators_count) {
                return Err(65);
            }
            let value = m
                .value
                .checked_sub(DEPOSIT_PROCESSING_FEE)
                .filter(|v| *v > 0)
                .ok_or(66)?;
            let mut n = pool.nominators.get(&who).copied().unwrap_or_default();
            if pool.state == 0 {
                n.amount += value;
            } else {
                n.pending += value;
            }
            if n.amount + n.pending < pool.spec.min_nominator_stake {
                return Err(67);
            }
            pool.nominators.insert(who, n);
            return Ok(None);
        }
        // "w"
        if pool.state == 0 {
            let n = pool.nominators.get(&who).copied().ok_or(60)?;
            let amount = n.amount + n.pending;
            if amount > balance.saturating_sub(MIN_TONS_FOR_STORAGE) {
                return Ok(excess(m.value));
            }
            pool.nominators.remove(&who);
            pool.withdraw_requests.remove(&who);
            self.pay_from_pool(addr, who, amount);
            return Ok(excess(m.value));
        }
        if !pool.nominators.contains_key(&who) {
            return Err(69);
        }
        pool.withdraw_requests.insert(who);
        Ok(excess(m.value))
    }

    /// single-nominator.fc `recv_internal`: an empty body is a deposit; the owner's
    /// `OP::WITHDRAW` (query_id:uint64 amount:Coins) or comment `w` (everything) pays
    /// `min(amount, balance − msg_value − 1 TON)` plus what is left of the message's value
    /// (mode 64), exit 0x2004 when that is not positive; other bodies from others do
    /// nothing, and one too short for `op` and `query_id` throws 9 (cell underflow).
    /// `Ok(Some(v))` pays `v` to the sender, bounceable.
    fn single_receive(&mut self, k: [u8; 32], m: &Internal) -> std::result::Result<Option<u128>, i32> {
        if m.body.data.is_empty() && m.body.references.is_empty() {
            return Ok(None);
        }
        let owner = self.singles.get(&k).map(|s| s.owner).ok_or(70)?;
        let addr = pool_address(k);
        // my_balance includes the message's value (credited by deliver)
        let balance = self.accounts.get(&addr).map_or(0, |a| a.balance);
        let available = balance
            .saturating_sub(m.value)
            .saturating_sub(SINGLE_MIN_TON_FOR_STORAGE);
        let mut p = m.body.parser();
        let op: u32 = p.unpack(()).map_err(|_| 9)?;
        let is_w = op == 0 && p.bits_left() == 8 && m.body.references.is_empty() && {
            let c: u8 = p.unpack(()).map_err(|_| 9)?;
            c == b'w'
        };
        let (op, amount) = if is_w {
            (OP_WITHDRAW, available)
        } else {
            let _query_id: u64 = p.unpack(()).map_err(|_| 9)?;
            if op == OP_WITHDRAW && m.src == owner {
                let a: BigUint = p.unpack_as::<_, tlb_ton::currency::Grams>(()).map_err(|_| 9)?;
                (op, u128::try_from(&a).unwrap_or(u128::MAX))
            } else {
                (op, 0)
            }
        };
        if m.src != owner || op != OP_WITHDRAW {
            return Ok(None); // the owner's other ops and the validator's are not modelled
        }
        let amount = amount.min(available);
        if amount == 0 {
            return Err(ERROR_INSUFFICIENT_BALANCE);
        }
        // mode 64: the amount plus what is left of the inbound value after the gas
        let back = m.value.saturating_sub(POOL_TX_FEE);
        if let Some(a) = self.accounts.get_mut(&addr) {
            a.balance -= m.value - back; // the gas is burned, not kept
        }
        self.burned += m.value - back;
        Ok(Some(amount + back))
    }

    /// An external-in message: the wallet's checks, then its messages. `Err` = not
    /// accepted (nothing changes), with the liteserver's text.
    fn external(&mut self, boc_b64: &str) -> std::result::Result<[u8; 32], (StatusCode, String)> {
        let bad = |m: String| (StatusCode::UNPROCESSABLE_ENTITY, m);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(boc_b64.trim())
            .map_err(|e| bad(format!("boc is not base64: {e}")))?;
        let root = BagOfCells::deserialize(bytes)
            .map_err(|e| bad(format!("failed to parse boc: {e}")))?
            .into_single_root()
            .ok_or_else(|| bad("boc must have one root".into()))?;
        let msg: Message<Cell, Cell, Cell> = root.parse_fully(()).map_err(|e| bad(format!("not a message: {e}")))?;
        let CommonMsgInfo::ExternalIn(info) = &msg.info else {
            return Err(bad("not an external-in message".into()));
        };
        let dst = info.dst;
        let body = clean(&msg.body);
        let hash = normalized_hash(&dst, &body);
        let reject = |code: i32| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "LITE_SERVER_UNKNOWN: cannot apply external message to current state : External message was not accepted\nCannot run message on account: inbound external message rejected by transaction {}:\nexitcode={code}, steps=20, gas_used=0",
                    hex::encode_upper(hash)
                ),
            )
        };
        let account = self.accounts.get(&dst).cloned().unwrap_or_default();
        let wallet = match (&account.wallet, &msg.init) {
            (Some(w), _) => w.clone(),
            (None, Some(init)) => deployable(&dst, init).map_err(|e| bad(e.to_string()))?,
            (None, None) => return Err(reject(0)), // uninit account without code: no compute
        };
        let v = WalletBody::parse(&body).map_err(|_| reject(9))?;
        if v.valid_until <= self.now {
            return Err(reject(36));
        }
        if v.seqno != wallet.seqno {
            return Err(reject(33));
        }
        if v.wallet_id != wallet.wallet_id {
            return Err(reject(34));
        }
        let key = VerifyingKey::from_bytes(&wallet.public_key).map_err(|_| reject(35))?;
        if key
            .verify(&v.signed_hash, &Signature::from_bytes(&v.signature))
            .is_err()
        {
            return Err(reject(35));
        }
        if account.balance < WALLET_TX_FEE {
            return Err(reject(37)); // cannot pay for the gas it would accept
        }
        // accepted
        let lt = self.next_lt();
        let a = self.accounts.entry(dst).or_default();
        a.balance -= WALLET_TX_FEE;
        self.burned += WALLET_TX_FEE;
        a.wallet = Some(Wallet {
            seqno: wallet.seqno + 1,
            ..wallet
        });
        let mut sends = Vec::new();
        for (mode, out) in v.messages {
            let Ok(m) = out.parse_fully::<Message<Cell, Cell, Cell>>(()) else {
                continue;
            };
            let CommonMsgInfo::Internal(i) = m.info else { continue };
            let value = u128::try_from(&i.value.grams).unwrap_or(u128::MAX);
            let fee = if mode & 1 == 1 { FWD_FEE } else { 0 };
            let a = self.accounts.entry(dst).or_default();
            let Some(total) = value.checked_add(fee).filter(|t| *t <= a.balance) else {
                continue; // mode +2: errors ignored, nothing sent
            };
            a.balance -= total;
            let value = if mode & 1 == 1 {
                value
            } else {
                value.saturating_sub(FWD_FEE)
            };
            self.burned += total - value;
            sends.push(self.internal(dst, i.dst, value, i.bounce, false, clean(&m.body)));
        }
        self.record(Tx {
            account: dst,
            lt,
            now: self.now,
            in_hash: hash,
            in_value: 0,
            source: None,
            out: sends.iter().map(|s| (s.hash, s.dst, s.value)).collect(),
            aborted: false,
            exit_code: 0,
        });
        for s in sends {
            self.deliver(s, 0);
        }
        Ok(hash)
    }
}

/// `c` with its bits copied one by one: a body parsed from inside another cell is a
/// slice whose storage may carry stale bits past its end, which would enter its hash.
fn clean(c: &Cell) -> Cell {
    let mut bits = Bits::default();
    for b in c.data.iter().by_vals() {
        bits.0.push(b);
    }
    bits.cell(c.references.clone())
}

/// What `distribute_share` does: reward pro rata to `amount`, then pending into amount.
fn distribute_share(nominators: &mut BTreeMap<[u8; 32], Nominator>, reward: u128) {
    let total: u128 = nominators.values().map(|n| n.amount).sum();
    for n in nominators.values_mut() {
        if total > 0 {
            n.amount += mul_div(reward, n.amount, total);
        }
        n.amount += n.pending;
        n.pending = 0;
    }
}

fn excess(value: u128) -> Option<u128> {
    (value > POOL_TX_FEE).then(|| value - POOL_TX_FEE)
}

/// A wallet deployed by its first message: the StateInit must hash to the address and
/// carry wallet v4r2's code.
fn deployable(dst: &MsgAddress, init: &StateInit<Cell, Cell>) -> Result<Wallet> {
    let cell = init.to_cell(()).context("state init")?;
    if cell.hash() != dst.address {
        return Err(anyhow!("state init hash does not match the destination address"));
    }
    let code = init.code.as_ref().ok_or_else(|| anyhow!("state init without code"))?;
    if code.hash() != V4R2::code().hash() {
        return Err(anyhow!("only wallet v4r2 is deployed on this chain"));
    }
    let data: WalletV4R2Data = init
        .data
        .as_ref()
        .ok_or_else(|| anyhow!("state init without data"))?
        .parse_fully(())
        .map_err(|e| anyhow!("wallet data: {e}"))?;
    Ok(Wallet {
        seqno: data.seqno,
        wallet_id: data.wallet_id,
        public_key: data.pubkey,
    })
}

/// wallet v4r2 `recv_external`'s reading of the body.
struct WalletBody {
    signature: [u8; 64],
    signed_hash: [u8; 32],
    wallet_id: u32,
    valid_until: u32,
    seqno: u32,
    messages: Vec<(u8, Arc<Cell>)>,
}

impl WalletBody {
    fn parse(body: &Cell) -> Result<WalletBody> {
        if body.data.len() < 512 + 104 {
            return Err(anyhow!("short body"));
        }
        let mut signature = [0u8; 64];
        for (i, chunk) in body.data[..512].chunks(8).enumerate() {
            signature[i] = chunk.iter().fold(0u8, |acc, b| (acc << 1) | u8::from(*b));
        }
        // the signature covers slice_hash(rest): the cell of the bits after it and every ref
        let rest = clean(&Cell {
            is_exotic: false,
            data: body.data[512..].to_bitvec(),
            references: body.references.clone(),
        });
        let mut p = rest.parser();
        let rd = |e: String| anyhow!("wallet body: {e}");
        let wallet_id: u32 = p.unpack(()).map_err(|e| rd(e.to_string()))?;
        let valid_until: u32 = p.unpack(()).map_err(|e| rd(e.to_string()))?;
        let seqno: u32 = p.unpack(()).map_err(|e| rd(e.to_string()))?;
        let op: u8 = p.unpack(()).map_err(|e| rd(e.to_string()))?;
        if op != 0 {
            return Err(anyhow!("wallet op {op} is not a plain send"));
        }
        let mut messages = Vec::new();
        for r in &rest.references {
            let mode: u8 = p.unpack(()).map_err(|e| rd(e.to_string()))?;
            messages.push((mode, r.clone()));
        }
        Ok(WalletBody {
            signature,
            signed_hash: rest.hash(),
            wallet_id,
            valid_until,
            seqno,
            messages,
        })
    }
}

fn lock(c: &Shared) -> std::sync::MutexGuard<'_, Chain> {
    c.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn boc_of(cell: Cell) -> String {
    BagOfCells::from_root(cell)
        .serialize(BagOfCellsArgs {
            has_idx: false,
            has_crc32c: true,
        })
        .map(|b| b64(&b))
        .unwrap_or_default()
}

fn parse_addr(s: &str) -> Option<MsgAddress> {
    if s.contains(':') {
        MsgAddress::from_hex(s).ok()
    } else {
        MsgAddress::from_base64_url(s)
            .or_else(|_| MsgAddress::from_base64_std(s))
            .ok()
    }
}

fn err(status: StatusCode, e: impl Into<String>) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"error": e.into()})))
}

async fn masterchain_info(State(c): State<Shared>) -> Json<Value> {
    let c = lock(&c);
    let block = json!({"workchain": -1, "shard": "8000000000000000", "seqno": c.seqno, "gen_utime": c.now.to_string()});
    Json(json!({"last": block, "first": {"workchain": -1, "shard": "8000000000000000", "seqno": 1}}))
}

async fn config_param(State(c): State<Shared>, Query(q): Query<HashMap<String, String>>) -> (StatusCode, Json<Value>) {
    let c = lock(&c);
    let id: u32 = match q.get("config_id").and_then(|s| s.parse().ok()) {
        Some(id @ (1 | 15 | 19 | 34)) => id,
        _ => {
            return err(
                StatusCode::NOT_FOUND,
                "config param not served by the local chain (1, 15, 19, 34)",
            )
        }
    };
    let cell = config_cell(id, &c.g, c.round_since);
    (
        StatusCode::OK,
        Json(
            json!({"ok": true, "result": {"@type": "configInfo", "config": {"@type": "tvm.cell", "bytes": boc_of(cell)}}}),
        ),
    )
}

/// The account a request's `address` names (an empty one when the chain has never seen
/// it); 422 for a malformed address.
fn queried_account(c: &Shared, q: &HashMap<String, String>) -> std::result::Result<Account, (StatusCode, Json<Value>)> {
    let a = q
        .get("address")
        .and_then(|s| parse_addr(s))
        .ok_or_else(|| err(StatusCode::UNPROCESSABLE_ENTITY, "address: not a TON address"))?;
    Ok(lock(c).accounts.get(&a).cloned().unwrap_or_default())
}

async fn wallet_information(
    State(c): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let acc = match queried_account(&c, &q) {
        Ok(acc) => acc,
        Err(e) => return e,
    };
    let Some(w) = acc.wallet else {
        // toncenter: an account without wallet code is not a wallet
        return err(StatusCode::CONFLICT, "not a wallet");
    };
    (
        StatusCode::OK,
        Json(json!({
            "balance": acc.balance.to_string(),
            "last_transaction_lt": acc.last_lt.to_string(),
            "status": "active",
            "wallet_type": "wallet v4 r2",
            "seqno": w.seqno,
            "wallet_id": w.wallet_id,
        })),
    )
}

async fn address_information(
    State(c): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let acc = match queried_account(&c, &q) {
        Ok(acc) => acc,
        Err(e) => return e,
    };
    let status = match (&acc.wallet, acc.balance) {
        (Some(_), _) => "active",
        (None, 0) => "nonexist",
        (None, _) => "uninit",
    };
    (
        StatusCode::OK,
        Json(
            json!({"balance": acc.balance.to_string(), "last_transaction_lt": acc.last_lt.to_string(), "status": status}),
        ),
    )
}

#[derive(Deserialize)]
struct GetMethod {
    address: String,
    method: String,
    #[serde(default)]
    stack: Vec<Value>,
}

/// A get-method's first argument as a 256-bit account id (`{"type":"num","value":"0x…"}`).
fn account_arg(stack: &[Value]) -> Option<[u8; 32]> {
    stack
        .first()
        .and_then(|v| v.get("value"))
        .and_then(Value::as_str)
        .and_then(|s| s.strip_prefix("0x"))
        .and_then(|h| hex::decode(format!("{h:0>64}")).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
}

fn num(v: u128) -> Value {
    json!({"type": "num", "value": format!("{v:#x}")})
}

async fn run_get_method(State(c): State<Shared>, Json(q): Json<GetMethod>) -> (StatusCode, Json<Value>) {
    let Some(a) = parse_addr(&q.address) else {
        return err(StatusCode::UNPROCESSABLE_ENTITY, "address: not a TON address");
    };
    let c = lock(&c);
    let exit = |code: i32| {
        (
            StatusCode::OK,
            Json(json!({"gas_used": 0, "exit_code": code, "stack": []})),
        )
    };
    if a.workchain_id == -1 && a.address == ELECTOR_ACCOUNT {
        return match elector_get(&c.elector, &q) {
            Ok(stack) => (
                StatusCode::OK,
                Json(json!({"gas_used": 5_000, "exit_code": 0, "stack": stack})),
            ),
            Err(code) => exit(code),
        };
    }
    if let Some(s) = (a.workchain_id == -1).then(|| c.singles.get(&a.address)).flatten() {
        return match single_get(s, &q.method) {
            Some(stack) => (
                StatusCode::OK,
                Json(json!({"gas_used": 1_000, "exit_code": 0, "stack": stack})),
            ),
            None => exit(11),
        };
    }
    let Some(p) = (a.workchain_id == -1).then(|| c.pools.get(&a.address)).flatten() else {
        return exit(-13); // no such contract: the account is not active
    };
    let stack = match q.method.as_str() {
        "get_pool_data" => {
            let empty = json!({"type": "cell", "value": boc_of(Cell::default())});
            vec![
                num(u128::from(p.state)),
                num(p.nominators.len() as u128),
                num(p.stake_amount_sent),
                num(p.validator_amount),
                num(0),
                num(u128::from(p.spec.validator_reward_share)),
                num(u128::from(p.spec.max_nominators_count)),
                num(0),
                num(p.spec.min_nominator_stake),
                empty.clone(),
                empty.clone(),
                num(u128::from(p.stake_at)),
                num(0),
                num(0),
                num(0),
                num(u128::from(p.stake_held_for)),
                empty,
            ]
        }
        "get_nominator_data" => {
            let Some(who) = account_arg(&q.stack) else {
                return exit(7);
            }; // type check error
            let Some(n) = p.nominators.get(&who) else {
                return exit(86);
            };
            let requested = p.withdraw_requests.contains(&who);
            vec![
                num(n.amount),
                num(n.pending),
                json!({"type": "num", "value": if requested { "-0x1" } else { "0x0" }}),
            ]
        }
        _ => return exit(11),
    };
    (
        StatusCode::OK,
        Json(json!({"gas_used": 3_000, "exit_code": 0, "stack": stack})),
    )
}

/// A cell holding `a` as a slice value (`{"type": "slice"}`).
fn slice_of(a: &MsgAddress) -> Value {
    let mut b = Bits::default();
    b.addr(a);
    json!({"type": "slice", "value": boc_of(b.cell(Vec::new()))})
}

/// single-nominator.fc's get-methods: `get_roles` (owner, validator) and the
/// `get_pool_data` constants it answers mytonctrl with.
fn single_get(s: &Single, method: &str) -> Option<Vec<Value>> {
    let null = json!({"type": "null"});
    Some(match method {
        "get_roles" => vec![slice_of(&s.owner), slice_of(&s.validator)],
        "get_pool_data" => vec![
            num(2),
            num(1),
            num(0),
            num(0),
            json!({"type": "tuple", "value": [num(0), num(0), num(0), num(0), num(0)]}),
            null.clone(),
            null.clone(),
            num(0),
            num(0),
            num(2),
            num(0),
            num(0),
            null,
        ],
        _ => return None,
    })
}

fn uint256(b: &[u8; 32]) -> Value {
    json!({"type": "num", "value": format!("0x{}", hex::encode(b))})
}

/// The elector's get-methods (elector-code.fc): `active_election_id`,
/// `participant_list_extended`, `past_elections` (frozen stakes as a `HashmapE 256` cell)
/// and `compute_returned_stake(addr)`; `Err(exit code)` otherwise.
fn elector_get(e: &Elector, q: &GetMethod) -> std::result::Result<Vec<Value>, i32> {
    let list = |items: Vec<Value>| json!({"type": "list", "value": items});
    let tuple = |items: Vec<Value>| json!({"type": "tuple", "value": items});
    Ok(match q.method.as_str() {
        "active_election_id" => vec![num(u128::from(e.elect_at))],
        "participant_list_extended" => {
            let total: u128 = e.participants.values().map(|x| x.1).sum();
            let members = e
                .participants
                .iter()
                .map(|(pk, (addr, stake))| {
                    tuple(vec![
                        uint256(pk),
                        tuple(vec![num(*stake), num(65_536 * 3), uint256(addr), uint256(pk)]),
                    ])
                })
                .collect();
            vec![
                num(u128::from(e.elect_at)),
                num(0),
                num(10_000 * TON),
                num(total),
                list(members),
                num(0),
                num(0),
            ]
        }
        "past_elections" => {
            let items = e
                .past
                .iter()
                .map(|(id, p)| {
                    let frozen = frozen_dict(&p.frozen).map_or_else(
                        || json!({"type": "null"}),
                        |c| json!({"type": "cell", "value": boc_of(c)}),
                    );
                    tuple(vec![
                        num(u128::from(*id)),
                        num(u128::from(p.unfreeze_at)),
                        num(u128::from(p.stake_held)),
                        num(0),
                        frozen,
                        num(p.total_stake),
                        num(0),
                        json!({"type": "null"}),
                    ])
                })
                .collect();
            vec![list(items)]
        }
        "compute_returned_stake" => {
            let who = account_arg(&q.stack).ok_or(7)?; // type check error
            vec![num(e.credits.get(&who).copied().unwrap_or(0))]
        }
        _ => return Err(11),
    })
}

/// A frozen stake as the elector stores it: `addr:uint256 weight:uint64 stake:Grams
/// banned:Bool` (elector-code.fc, `frozen~udict_set_builder`).
#[derive(Debug, Clone)]
struct FrozenValue {
    addr: [u8; 32],
    stake: u128,
}

impl tlb_ton::ser::CellSerialize for FrozenValue {
    type Args = ();

    fn store(
        &self,
        b: &mut tlb_ton::ser::CellBuilder,
        (): Self::Args,
    ) -> std::result::Result<(), tlb_ton::ser::CellBuilderError> {
        use tlb_ton::bits::ser::BitWriterExt;
        b.pack(self.addr, ())?
            .pack(1u64 << 40, ())?
            .pack_as::<_, &tlb_ton::currency::Grams>(&BigUint::from(self.stake), ())?
            .pack(false, ())?;
        Ok(())
    }
}

/// The frozen dictionary's root cell (`HashmapE 256` keyed by validator public key);
/// `None` for an empty one (a null on the stack).
fn frozen_dict(frozen: &BTreeMap<[u8; 32], ([u8; 32], u128)>) -> Option<Cell> {
    use tlb_ton::hashmap::Hashmap;
    use tlb_ton::Same;
    let entries: Vec<(BitVec<u8, Msb0>, FrozenValue)> = frozen
        .iter()
        .map(|(pk, (addr, stake))| {
            (
                BitVec::from_slice(pk),
                FrozenValue {
                    addr: *addr,
                    stake: *stake,
                },
            )
        })
        .collect();
    if entries.is_empty() {
        return None;
    }
    let root = trie(entries);
    let mut b = Cell::builder();
    b.store_as::<_, &Hashmap<Same, Same>>(&root, (256, (), ())).ok()?;
    Some(b.into_cell())
}

/// A Patricia tree over distinct keys of one length (`Hashmap n X`): the longest common
/// prefix as the label, then a leaf or a fork on the next bit.
fn trie(mut entries: Vec<(BitVec<u8, Msb0>, FrozenValue)>) -> tlb_ton::hashmap::Hashmap<FrozenValue> {
    use tlb_ton::hashmap::{aug::HashmapAugNode, Hashmap, HashmapNode};
    let first = entries[0].0.clone();
    let common = entries[1..].iter().fold(first.len(), |n, (k, _)| {
        n.min(first.iter().zip(k.iter()).take_while(|(a, b)| a == b).count())
    });
    let prefix = first[..common].to_bitvec();
    if entries.len() == 1 {
        let (_, v) = entries.remove(0);
        return Hashmap::new(prefix, HashmapAugNode::new(HashmapNode::Leaf(v), ()));
    }
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (k, v) in entries {
        let rest = k[common + 1..].to_bitvec();
        if k[common] {
            right.push((rest, v));
        } else {
            left.push((rest, v));
        }
    }
    let fork = HashmapNode::Fork([Box::new(trie(left)), Box::new(trie(right))]);
    Hashmap::new(prefix, HashmapAugNode::new(fork, ()))
}

#[derive(Deserialize)]
struct SendBoc {
    boc: String,
}

async fn send_message(State(c): State<Shared>, Json(b): Json<SendBoc>) -> (StatusCode, Json<Value>) {
    match lock(&c).external(&b.boc) {
        Ok(h) => (
            StatusCode::OK,
            Json(json!({"message_hash": b64(&h), "message_hash_norm": b64(&h)})),
        ),
        Err((s, e)) => err(s, e),
    }
}

async fn send_boc_v2(State(c): State<Shared>, Json(b): Json<SendBoc>) -> (StatusCode, Json<Value>) {
    match lock(&c).external(&b.boc) {
        Ok(h) => (
            StatusCode::OK,
            Json(json!({"ok": true, "result": {"@type": "raw.extMessageInfo", "hash": b64(&h)}})),
        ),
        Err((s, e)) => (s, Json(json!({"ok": false, "error": e, "code": s.as_u16()}))),
    }
}

fn hash_param(s: &str) -> Option<[u8; 32]> {
    let bytes = if s.len() == 64 {
        hex::decode(s).ok()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(s))
            .ok()?
    };
    bytes.try_into().ok()
}

async fn transactions_by_message(
    State(c): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let Some(h) = q.get("msg_hash").and_then(|s| hash_param(s)) else {
        return err(StatusCode::UNPROCESSABLE_ENTITY, "msg_hash: not a 32-byte hash");
    };
    let c = lock(&c);
    let txs: Vec<Value> = c
        .by_in_hash
        .get(&h)
        .and_then(|i| c.txs.get(*i))
        .map(|t| {
            let out: Vec<Value> = t
                .out
                .iter()
                .map(|(h, d, v)| json!({"hash": b64(h), "destination": raw(d), "value": v.to_string()}))
                .collect();
            let id: [u8; 32] = Sha256::digest([t.in_hash.as_slice(), &t.lt.to_be_bytes()].concat()).into();
            json!({
                "account": raw(&t.account),
                "hash": b64(&id),
                "lt": t.lt.to_string(),
                "now": t.now,
                "description": {
                    "aborted": t.aborted,
                    "compute_ph": {"success": !t.aborted, "exit_code": t.exit_code},
                },
                "in_msg": {
                    "hash": b64(&t.in_hash),
                    "source": t.source.as_ref().map(raw),
                    "destination": raw(&t.account),
                    "value": t.in_value.to_string(),
                },
                "out_msgs": out,
            })
        })
        .into_iter()
        .collect();
    (StatusCode::OK, Json(json!({"transactions": txs})))
}

/// A running local TON chain (stopped when dropped).
pub struct LocalTon {
    /// `http://127.0.0.1:<port>`, toncenter's base URL.
    pub url: String,
    chain: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for LocalTon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTon").field("url", &self.url).finish()
    }
}

impl Drop for LocalTon {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the chain on 127.0.0.1:`port` (0 = any free port).
///
/// # Errors
/// A genesis that does not hold together; a port that cannot be bound.
pub async fn start(genesis: TonGenesis, port: u16) -> Result<LocalTon> {
    let tick_ms = genesis.tick_ms;
    let chain: Shared = Arc::new(Mutex::new(Chain::new(genesis)?));
    let app = Router::new()
        .route("/api/v3/masterchainInfo", get(masterchain_info))
        .route("/api/v2/getConfigParam", get(config_param))
        .route("/api/v3/walletInformation", get(wallet_information))
        .route("/api/v3/addressInformation", get(address_information))
        .route("/api/v3/runGetMethod", post(run_get_method))
        .route("/api/v3/message", post(send_message))
        .route("/api/v2/sendBocReturnHash", post(send_boc_v2))
        .route("/api/v3/transactionsByMessage", get(transactions_by_message))
        .with_state(chain.clone());
    let ticking = chain.clone();
    let (addr, server) = crate::serve(app, port, tick_ms, move || lock(&ticking).advance(1))
        .await
        .context("the local toncenter")?;
    Ok(LocalTon {
        url: format!("http://{addr}"),
        chain,
        server,
    })
}

impl LocalTon {
    /// Moves the clock `secs` seconds (elections, recoveries and payouts on the way).
    pub fn advance_secs(&self, secs: u64) {
        lock(&self.chain).advance(secs);
    }

    /// Moves the clock to `n` rounds after the current round's start, plus `extra` seconds.
    pub fn advance_rounds(&self, n: u32, extra: u32) {
        let mut c = lock(&self.chain);
        let target = c.round_since + n * c.g.timing[0] + extra;
        let secs = target.saturating_sub(c.now);
        c.advance(u64::from(secs));
    }

    /// Chain time, Unix seconds.
    pub fn now(&self) -> u32 {
        lock(&self.chain).now
    }

    /// An account's balance, nanotons.
    pub fn balance(&self, a: &MsgAddress) -> u128 {
        lock(&self.chain).accounts.get(a).map_or(0, |x| x.balance)
    }

    /// A wallet's seqno (`None` when not deployed).
    pub fn seqno(&self, a: &MsgAddress) -> Option<u32> {
        lock(&self.chain)
            .accounts
            .get(a)
            .and_then(|x| x.wallet.as_ref().map(|w| w.seqno))
    }

    /// `who`'s position in pool `account`: (amount, pending, withdraw requested).
    pub fn nominator(&self, account: [u8; 32], who: &MsgAddress) -> Option<(u128, u128, bool)> {
        let c = lock(&self.chain);
        let p = c.pools.get(&account)?;
        let n = p.nominators.get(&who.address)?;
        Some((n.amount, n.pending, p.withdraw_requests.contains(&who.address)))
    }

    /// A pool's state (0 idle, 2 staking) and its stake at the elector.
    pub fn pool_state(&self, account: [u8; 32]) -> Option<(u8, u128)> {
        lock(&self.chain)
            .pools
            .get(&account)
            .map(|p| (p.state, p.stake_amount_sent))
    }

    /// What the elector holds for single-nominator pool `account` (participating,
    /// frozen, or credited and not recovered yet), nanotons.
    pub fn at_elector(&self, account: [u8; 32]) -> u128 {
        let c = lock(&self.chain);
        let e = &c.elector;
        let p: u128 = e.participants.values().filter(|x| x.0 == account).map(|x| x.1).sum();
        let f: u128 = e
            .past
            .values()
            .flat_map(|x| x.frozen.values())
            .filter(|x| x.0 == account)
            .map(|x| x.1)
            .sum();
        p + f + e.credits.get(&account).copied().unwrap_or(0)
    }

    /// Transactions executed (aborted ones included).
    pub fn tx_count(&self) -> usize {
        lock(&self.chain).txs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use tlb_ton::action::SendMsgAction;
    use tlb_ton::bits::NoArgs;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9u8; 32])
    }

    fn genesis() -> TonGenesis {
        TonGenesis {
            global_id: -77,
            start_time_secs: 1_750_000_000,
            timing: [600, 300, 75, 300],
            wallets: vec![(key().verifying_key().to_bytes(), 1_000_000 * TON)],
            uninit_wallets: vec![],
            pools: vec![PoolSpec {
                account: pool_account(0),
                validator_reward_share: 4_000,
                max_nominators_count: 40,
                min_nominator_stake: 10_000 * TON,
                validator_amount: 100_000 * TON,
                others_amount: 200_000 * TON,
            }],
            singles: vec![SingleSpec {
                account: single_account(0),
                owner: wallet_address(WALLET_ID, key().verifying_key().to_bytes()).unwrap(),
                validator_pubkey: [5u8; 32],
                balance: TON,
            }],
            apr_bps: 400,
            tick_ms: 0,
        }
    }

    /// A signed external message carrying `body` to `dst` (the owner's op to its pool).
    fn ext_body(k: &SigningKey, seqno: u32, valid_until: u32, dst: MsgAddress, value: u128, body: Cell) -> String {
        ext_signed(k, k.verifying_key().to_bytes(), seqno, valid_until, dst, value, body)
    }

    /// The owner (`k`'s wallet) asks single-nominator pool `pool` for `amount` (op 0x1000,
    /// 0.1 TON attached), at its wallet's current seqno.
    fn owner_withdraw(
        c: &mut Chain,
        k: &SigningKey,
        pool: MsgAddress,
        amount: u128,
    ) -> std::result::Result<[u8; 32], (StatusCode, String)> {
        let me = wallet_address(WALLET_ID, k.verifying_key().to_bytes()).unwrap();
        let seqno = c.accounts[&me].wallet.as_ref().unwrap().seqno;
        c.external(&ext_body(k, seqno, c.now + 60, pool, TON / 10, withdraw_body(amount)))
    }

    /// The owner's `OP::WITHDRAW` body: op, query_id, amount (Coins).
    fn withdraw_body(amount: u128) -> Cell {
        let mut b = Cell::builder();
        use tlb_ton::bits::ser::BitWriterExt;
        b.pack(OP_WITHDRAW, ())
            .unwrap()
            .pack(7u64, ())
            .unwrap()
            .pack_as::<_, &tlb_ton::currency::Grams>(&BigUint::from(amount), ())
            .unwrap();
        b.into_cell()
    }

    #[test]
    fn success_single_nominator_stakes_all_then_the_owner_withdraws_after_recovery() {
        let mut c = Chain::new(genesis()).unwrap();
        let k = key();
        let me = wallet_address(WALLET_ID, k.verifying_key().to_bytes()).unwrap();
        let pool = pool_address(single_account(0));
        let vu = c.now + 60;
        // a deposit is a plain transfer (empty body)
        let r = c.external(&ext_body(&k, 0, vu, pool, 20_000 * TON, Cell::default()));
        assert_eq!(code(r), "ok");
        assert_eq!(c.accounts[&pool].balance, 20_001 * TON);
        let before = circulation(&c);
        // elections open: the validator stakes all but the 1 TON reserve
        c.advance(u64::from(c.g.timing[0] - c.g.timing[1]));
        assert_eq!(c.accounts[&pool].balance, TON);
        assert_eq!(c.elector.held(), 20_000 * TON);
        // nothing is liquid: a withdrawal throws 0x2004 and bounces, the stake stays
        let r = owner_withdraw(&mut c, &k, pool, 5_000 * TON);
        assert_eq!(code(r), "ok");
        let t = c.txs.iter().rev().find(|t| t.account == pool).unwrap();
        assert!(t.aborted && t.exit_code == ERROR_INSUFFICIENT_BALANCE);
        assert_eq!(c.elector.held(), 20_000 * TON);
        // round + hold later the stake comes back with the bonus
        c.advance(u64::from(c.g.timing[0] * 2 + c.g.timing[3]));
        let back = c.accounts[&pool].balance;
        assert_eq!(
            c.elector.held(),
            0,
            "recovered, and not staked again before the next elections"
        );
        assert!(back > 20_001 * TON, "the bonus came back with the stake");
        assert_eq!(circulation(&c), before + c.minted);
        // a partial withdrawal pays exactly that amount (plus the value's change)
        let mine = c.accounts[&me].balance;
        let r = owner_withdraw(&mut c, &k, pool, 5_000 * TON);
        assert_eq!(code(r), "ok");
        assert_eq!(c.accounts[&pool].balance, back - 5_000 * TON);
        assert!(c.accounts[&me].balance > mine + 4_999 * TON);
        assert_eq!(circulation(&c), before + c.minted);
    }

    #[test]
    fn fail_single_nominator_ignores_strangers_and_refuses_a_short_body() {
        let mut c = Chain::new(genesis()).unwrap();
        let k = key();
        let pool = pool_address(single_account(0));
        // "d" is not the single-nominator's: op 0 then query_id:uint64 underflows (exit 9)
        let r = c.external(&ext_body(&k, 0, c.now + 60, pool, 50 * TON, comment("d")));
        assert_eq!(code(r), "ok");
        let t = c.txs.iter().rev().find(|t| t.account == pool).unwrap();
        assert!(t.aborted && t.exit_code == 9);
        assert_eq!(c.accounts[&pool].balance, TON, "the value bounced back");
        // the elector answers its get-methods; nothing is staked
        let e = &c.elector;
        assert_eq!(e.held(), 0);
        assert!(frozen_dict(&BTreeMap::new()).is_none());
    }

    #[test]
    fn success_frozen_dict_round_trips_through_tlb() {
        use tlb_ton::hashmap::Hashmap;
        let mut frozen = BTreeMap::new();
        for i in 0..5u8 {
            frozen.insert([i * 50; 32], ([i; 32], u128::from(i) * 1_000 * TON + 1));
        }
        frozen.insert([0xff; 32], ([9; 32], 7));
        let cell = frozen_dict(&frozen).unwrap();
        let boc = boc_of(cell);
        let back = BagOfCells::deserialize(base64::engine::general_purpose::STANDARD.decode(boc).unwrap())
            .unwrap()
            .into_single_root()
            .unwrap();
        let parsed: Vec<(BitVec<u8, Msb0>, Frozen)> =
            back.parser().parse_as::<_, Hashmap<tlb_ton::Same>>((256, ())).unwrap();
        assert_eq!(parsed.len(), frozen.len());
        for (key, f) in parsed {
            let pk: [u8; 32] = key.into_vec().try_into().unwrap();
            assert_eq!(frozen[&pk], (f.addr, f.stake));
        }
    }

    /// How a reader parses a frozen-dictionary value.
    struct Frozen {
        addr: [u8; 32],
        stake: u128,
    }

    impl<'de> tlb_ton::de::CellDeserialize<'de> for Frozen {
        type Args = ();
        fn parse(
            p: &mut tlb_ton::de::CellParser<'de>,
            (): (),
        ) -> std::result::Result<Self, tlb_ton::de::CellParserError<'de>> {
            let addr: [u8; 32] = p.unpack(())?;
            let _weight: u64 = p.unpack(())?;
            let stake: BigUint = p.unpack_as::<_, tlb_ton::currency::Grams>(())?;
            let _banned: bool = p.unpack(())?;
            Ok(Frozen {
                addr,
                stake: u128::try_from(&stake).unwrap(),
            })
        }
    }

    fn comment(t: &str) -> Cell {
        let mut b = Bits::default();
        b.uint(0, 32).bytes(t.as_bytes());
        b.cell(Vec::new())
    }

    /// A signed external message built with ton-contracts (as a wallet app would).
    fn ext(k: &SigningKey, seqno: u32, valid_until: u32, value: u128, text: &str) -> String {
        ext_to(k, k.verifying_key().to_bytes(), seqno, valid_until, value, text)
    }

    /// Signed by `k` for the wallet of `owner`.
    fn ext_to(k: &SigningKey, owner: [u8; 32], seqno: u32, valid_until: u32, value: u128, text: &str) -> String {
        ext_pool(k, owner, 0, seqno, valid_until, value, text)
    }

    /// Signed by `k` for the wallet of `owner`, to pool `i`.
    fn ext_pool(
        k: &SigningKey,
        owner: [u8; 32],
        i: u8,
        seqno: u32,
        valid_until: u32,
        value: u128,
        text: &str,
    ) -> String {
        let pool = pool_address(pool_account(i));
        ext_signed(k, owner, seqno, valid_until, pool, value, comment(text))
    }

    /// Signed by `k` for the wallet of `owner`: `value` to `dst` carrying `body`.
    fn ext_signed(
        k: &SigningKey,
        owner: [u8; 32],
        seqno: u32,
        valid_until: u32,
        dst: MsgAddress,
        value: u128,
        body: Cell,
    ) -> String {
        let m = Message {
            info: Message::transfer(dst, BigUint::from(value), true).info,
            init: None::<StateInit>,
            body,
        }
        .normalize()
        .unwrap();
        let body = V4R2::create_sign_body(WALLET_ID, valid_until, seqno, [SendMsgAction { mode: 3, message: m }]);
        let sig = k.sign(&body.to_cell(NoArgs::EMPTY).unwrap().hash()).to_bytes();
        let wallet = wallet_address(WALLET_ID, owner).unwrap();
        let msg = Message {
            info: CommonMsgInfo::ExternalIn(tlb_ton::message::ExternalInMsgInfo {
                src: MsgAddress::NULL,
                dst: wallet,
                import_fee: BigUint::ZERO,
            }),
            init: None::<StateInit>,
            body: V4R2::wrap_signed_external(body, sig),
        };
        boc_of(msg.to_cell(()).unwrap())
    }

    fn code(r: std::result::Result<[u8; 32], (StatusCode, String)>) -> String {
        r.map(|_| "ok".to_string()).unwrap_or_else(|e| e.1)
    }

    /// TON in circulation: every balance, the stakes at the elector (with the 1 TON each
    /// new_stake sends along) and what fees burned.
    fn circulation(c: &Chain) -> u128 {
        let balances: u128 = c.accounts.values().map(|a| a.balance).sum();
        let at_elector: u128 = c
            .pools
            .values()
            .filter(|p| p.state != 0)
            .map(|p| p.stake_amount_sent + TON)
            .sum();
        balances + at_elector + c.elector.held() + c.burned
    }

    proptest::proptest! {
        /// Any sequence of deposits, withdrawals (nominator and single-nominator pools),
        /// forged and replayed messages and time conserves TON (what circulates = genesis +
        /// the elector's rewards), a refused message changes nothing, no nominator position
        /// is ever below the pool's minimum and a single-nominator pool keeps its reserve.
        #[test]
        fn success_ton_is_conserved_and_refusals_change_nothing(
            steps in proptest::collection::vec((0u8..7, 0u128..40_000, 0u64..1_500, 0u8..3), 1..40),
        ) {
            let mut g = genesis();
            g.pools = (0..3).map(|i| PoolSpec { account: pool_account(i), ..g.pools[0].clone() }).collect();
            let mut c = Chain::new(g).unwrap();
            let (k, owner) = (key(), key().verifying_key().to_bytes());
            let me = wallet_address(WALLET_ID, owner).unwrap();
            let start = circulation(&c);
            for (kind, tons, secs, pool) in steps {
                let seqno = c.accounts[&me].wallet.as_ref().unwrap().seqno;
                let vu = c.now + 60;
                let msg = match kind {
                    0 => ext_pool(&k, owner, pool, seqno, vu, tons * TON, "d"),
                    1 => ext_pool(&k, owner, pool, seqno, vu, TON, "w"),
                    2 => ext_pool(&SigningKey::from_bytes(&[3u8; 32]), owner, pool, seqno, vu, tons * TON, "d"),
                    3 => ext_pool(&k, owner, pool, seqno.saturating_sub(1).min(seqno + 1), vu - 61, TON, "d"),
                    5 => ext_body(&k, seqno, vu, pool_address(single_account(0)), tons * TON, Cell::default()),
                    6 => ext_body(&k, seqno, vu, pool_address(single_account(0)), TON / 10, withdraw_body(tons * TON)),
                    _ => {
                        c.advance(secs);
                        String::new()
                    }
                };
                if !msg.is_empty() {
                    let before: Vec<(MsgAddress, u128)> = {
                        let mut v: Vec<_> = c.accounts.iter().map(|(a, x)| (*a, x.balance)).collect();
                        v.sort_by_key(|x| x.0.address);
                        v
                    };
                    let txs = c.txs.len();
                    let refused = c.external(&msg).is_err();
                    proptest::prop_assert_eq!(refused, kind == 2 || kind == 3, "kind {} refused: {}", kind, refused);
                    if refused {
                        let mut after: Vec<_> = c.accounts.iter().map(|(a, x)| (*a, x.balance)).collect();
                        after.sort_by_key(|x| x.0.address);
                        proptest::prop_assert_eq!(after, before, "a refusal changes nothing");
                        proptest::prop_assert_eq!(c.txs.len(), txs);
                    }
                }
                proptest::prop_assert_eq!(circulation(&c), start + c.minted);
                for p in c.pools.values() {
                    proptest::prop_assert!(p.nominators.values().all(|n| n.amount + n.pending >= p.spec.min_nominator_stake));
                }
                // the single-nominator pool never pays out its storage reserve
                proptest::prop_assert!(c.accounts[&pool_address(single_account(0))].balance >= SINGLE_MIN_TON_FOR_STORAGE);
            }
        }
    }

    #[test]
    fn success_localnet_config_pins_the_binarys_pools() {
        let text = include_str!("../../../config/localnet.toml");
        for i in 0..6 {
            let raw = pool_address(pool_account(i)).to_hex();
            assert!(
                text.contains(&format!("\"{raw}\"")),
                "pool {i} {raw} is in config/localnet.toml"
            );
        }
        let single = pool_address(single_account(0)).to_hex();
        assert!(
            text.contains(&format!("single_nominator_pools = [\"{single}\"]")),
            "the single-nominator pool {single} is in config/localnet.toml"
        );
    }

    #[test]
    fn success_deposit_lands_and_stakes_at_the_elections() {
        let mut c = Chain::new(genesis()).unwrap();
        let me = wallet_address(WALLET_ID, key().verifying_key().to_bytes()).unwrap();
        let before = c.accounts[&me].balance;
        c.external(&ext(&key(), 0, c.now + 60, 20_001 * TON, "d")).unwrap();
        let n = c.pools[&pool_account(0)].nominators[&me.address];
        assert_eq!(
            n.amount,
            20_000 * TON,
            "idle pool: straight into amount, less the 1 TON fee"
        );
        assert_eq!(before - c.accounts[&me].balance, 20_001 * TON + WALLET_TX_FEE + FWD_FEE);
        c.advance(600);
        let p = &c.pools[&pool_account(0)];
        assert_eq!(p.state, 2);
        // validator + others + ours + the 1 TON deposit fee, less 10 TON storage and 1 TON
        assert_eq!(p.stake_amount_sent, 320_000 * TON);
    }

    #[test]
    fn success_rewards_compound_pro_rata_after_round_and_hold() {
        let mut c = Chain::new(genesis()).unwrap();
        let me = wallet_address(WALLET_ID, key().verifying_key().to_bytes()).unwrap();
        c.external(&ext(&key(), 0, c.now + 60, 20_001 * TON, "d")).unwrap();
        c.advance(600 - 75); // staked for the round starting at +600
        c.advance(75 + 600 + 300 + 61 + 2); // to the round start, the round, the hold, the 60 s margin
        let p = &c.pools[&pool_account(0)];
        assert_eq!(p.state, 0, "recovered");
        let n = p.nominators[&me.address];
        let stake = 320_000 * TON;
        let reward = mul_div(stake, 400 * 600, 10_000 * YEAR_SECS);
        let nominators = reward - reward * 4_000 / 10_000;
        assert_eq!(
            n.amount,
            20_000 * TON + mul_div(nominators, 20_000 * TON, 220_000 * TON)
        );
    }

    #[test]
    fn fail_below_minimum_bounces_and_changes_no_position() {
        let mut c = Chain::new(genesis()).unwrap();
        let me = wallet_address(WALLET_ID, key().verifying_key().to_bytes()).unwrap();
        let before = c.accounts[&me].balance;
        let h = c.external(&ext(&key(), 0, c.now + 60, 5_000 * TON, "d")).unwrap();
        assert!(!c.pools[&pool_account(0)].nominators.contains_key(&me.address));
        let wallet_tx = &c.txs[c.by_in_hash[&h]];
        let pool_tx = &c.txs[c.by_in_hash[&wallet_tx.out[0].0]];
        assert!(pool_tx.aborted && pool_tx.exit_code == 67);
        assert_eq!(
            before - c.accounts[&me].balance,
            WALLET_TX_FEE + FWD_FEE + POOL_TX_FEE,
            "bounced less fees"
        );
    }

    #[test]
    fn fail_replay_bad_signature_and_expiry_are_refused_with_nothing_done() {
        let mut c = Chain::new(genesis()).unwrap();
        let m = ext(&key(), 0, c.now + 60, 20_001 * TON, "d");
        c.external(&m).unwrap();
        let txs = c.txs.len();
        assert!(code(c.external(&m)).contains("exitcode=33"), "replay");
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let forged = ext_to(
            &other,
            key().verifying_key().to_bytes(),
            1,
            c.now + 60,
            20_001 * TON,
            "d",
        );
        assert!(code(c.external(&forged)).contains("exitcode=35"), "bad signature");
        assert!(
            code(c.external(&ext(&key(), 1, c.now, TON, "d"))).contains("exitcode=36"),
            "expired"
        );
        assert_eq!(c.txs.len(), txs, "refused messages leave no transaction");
    }

    #[test]
    fn success_withdraw_while_staking_waits_for_recovery_then_pays_all() {
        let mut c = Chain::new(genesis()).unwrap();
        let me = wallet_address(WALLET_ID, key().verifying_key().to_bytes()).unwrap();
        c.external(&ext(&key(), 0, c.now + 60, 20_001 * TON, "d")).unwrap();
        c.advance(600);
        c.external(&ext(&key(), 1, c.now + 60, TON, "w")).unwrap();
        assert!(c.pools[&pool_account(0)].withdraw_requests.contains(&me.address));
        let before = c.accounts[&me].balance;
        c.advance(600 + 300 + 62);
        assert!(!c.pools[&pool_account(0)].nominators.contains_key(&me.address), "paid");
        assert!(
            c.accounts[&me].balance > before + 20_000 * TON - TON,
            "the whole position came back"
        );
    }
}

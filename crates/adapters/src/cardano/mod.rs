//! Cardano staking (Conway era) through Blockfrost's REST API, with transactions built
//! and signed here (pallas), so the id is known before anything is sent.
//!
//! Cardano locks nothing: stake is the lovelace held at addresses whose stake part is a
//! stake key delegated to a pool, and one stake key delegates to one pool. The treasury
//! keeps its liquid funds at its payment key's enterprise address and gives each pool a
//! stake key of its own (`wire::stake_seed`, index 0..`stake_keys`).
//!
//! ```text
//!  delegate    lovelace from the enterprise address to the base address (payment key,
//!              stake key of the pool); a pool no key delegates to takes a registered key
//!              an exit emptied (StakeVoteDeleg, no deposit), else a new key
//!              (StakeVoteRegDeleg: register, delegate, vote always-abstain, key_deposit)
//!  undelegate  none: nothing unbonds (instant exit: the withdrawal replaces it)
//!  withdraw    lovelace from the base address back to the enterprise address; all of it:
//!              also the reward withdrawal, the key stays registered and delegated
//!  claim       withdrawal of the stake key's whole reward balance (needs the vote
//!              delegation, made at registration); for an emptied key from the exit
//!              epoch + 3 on (every snapshot with its stake paid), also UnReg (the
//!              deposit comes back)
//!  rewards     each stake key's withdrawals (/accounts/{stake}/withdrawals, with their
//!              block height and time)
//!  status      /txs/{hash}: found and `confirmations` blocks deep (its own included) →
//!              confirmed, found but shallower → pending; unknown → expired once the
//!              latest slot is past its TTL, else not found
//! ```
//!
//! Fees are `min_fee_a × size + min_fee_b`, deposits `key_deposit` and outputs at least
//! `coins_per_utxo_size × (160 + output size)`, all from `/epochs/latest/parameters`.
//! Operations of one treasury must run one at a time (each spends the enterprise UTxOs
//! it read). Only pure-lovelace UTxOs are spent.
//!
//! Every read and the submission go through Blockfrost's own SDK ([`api`]: the `blockfrost`
//! crate, models generated from Blockfrost's OpenAPI spec); the transactions themselves are
//! built here, since the SDK only reads and submits.
//!
//! Sources: cardano-ledger Conway rules (UTXO: value preservation, fee, min UTxO, TTL;
//! UTXOW: witnesses; DELEG/CERT: deposits; withdrawals need a DRep delegation since
//! Conway's bootstrap ended), docs.cardano.org "Delegation", Blockfrost OpenAPI
//! (docs.blockfrost.io). Amounts are lovelace (1 ADA = 10^6 lovelace).

pub mod api;
pub mod hd;
pub mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use blockfrost::{Order, Pagination};
use pallas_addresses::{Network, ShelleyAddress};
use pallas_crypto::hash::Hash;
use pallas_crypto::key::ed25519::PublicKey;
use tokio::sync::OnceCell;

use softstake_core::plan::ALL_VALIDATORS;
use softstake_core::{Amount, Timestamp};

use self::api::{count, lovelace, time, Api};
use crate::ed25519::Ed25519Key;
use crate::error::{AdapterError, Result};
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    claimed_records, ChainAdapter, ClaimSums, EpochInfo, LiquidityModel, Position, RewardsPage, SignedTx, StakeState,
    TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "cardano";
/// 1 ADA in lovelace.
pub const LOVELACE_PER_ADA: u128 = 1_000_000;
/// Most stake keys (pools) one treasury may use.
pub const MAX_STAKE_KEYS: u32 = 100;
/// Most inputs one transaction spends.
const MAX_INPUTS: usize = 60;
/// Epoch boundaries from a stake snapshot to the payment of its rewards: the `mark`
/// snapshot taken at the start of epoch e elects the leaders of e + 1 and its rewards are
/// paid at the start of e + 3 (docs.cardano.org "Delegation": stake delegated in epoch N
/// is active in N + 2, first paid at the end of N + 3; cardano-ledger `SnapShots`). Stake
/// that left in epoch X is last in the snapshot at the start of X, so a key deregistered
/// before X + 3 forfeits rewards to the reserves.
pub const REWARD_LAG_EPOCHS: u64 = 3;
/// Bytes added to the measured size before the fee is computed (the fee and change fields
/// may grow when the real fee replaces the estimate).
const SIZE_MARGIN: u64 = 16;

/// Settings of the Cardano adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardanoConfig {
    /// Blockfrost's base URL with its version (`https://cardano-preprod.blockfrost.io/api/v0`).
    pub api_url: String,
    /// Blockfrost project id, sent as `project_id`.
    pub project_id: Option<String>,
    /// Network id: 0 for the testnets (preprod, preview), 1 for mainnet.
    pub network_id: u8,
    /// Stake keys the treasury may use, one per pool (1..=100).
    pub stake_keys: u32,
    /// Slots a signed transaction stays valid (its TTL is the latest slot plus this).
    pub ttl_slots: u64,
    /// Largest number of operations sent per epoch.
    pub max_operations_per_epoch: u32,
    /// Blocks on top of a transaction's block, its own included, before it counts as
    /// confirmed (1 = in a block). Cardano's settlement is probabilistic (Ouroboros:
    /// certain only after k = 2160 blocks); a first sighting can still be rolled back.
    pub confirmations: u64,
    /// CIP-1852 account index (below 2^31) when the key is a 96-byte root key: payment
    /// key `m/1852'/1815'/account'/0/0`, stake key i `m/1852'/1815'/account'/2/i`
    /// ([`hd`]). Unused for a 32-byte seed.
    pub account: u32,
}

/// The protocol parameters the adapter prices transactions with
/// (`/epochs/latest/parameters`).
#[derive(Debug, Clone)]
struct Params {
    /// Lovelace per byte.
    min_fee_a: u64,
    /// Lovelace per transaction.
    min_fee_b: u64,
    /// Stake key deposit, lovelace.
    key_deposit: u64,
    /// Lovelace per UTxO byte (Babbage on); `None` before.
    coins_per_utxo_size: Option<u64>,
}

/// `/blocks/latest`, the fields read.
#[derive(Debug, Clone)]
struct LatestBlock {
    time: i64,
    slot: Option<u64>,
    height: Option<u64>,
}

/// `/epochs/latest`, the fields read.
#[derive(Debug, Clone)]
struct EpochView {
    epoch: u64,
    start_time: i64,
    end_time: i64,
}

/// A registered stake key's account (`/accounts/{stake}`), the fields read.
#[derive(Debug, Clone)]
struct AccountView {
    /// Rewards not yet withdrawn, lovelace.
    withdrawable: u64,
    /// The pool it delegates to (`pool1…`).
    pool_id: Option<String>,
}

/// One stake key of the treasury and what the chain says about it.
#[derive(Debug, Clone)]
struct StakeKey {
    index: u32,
    hash: Hash<28>,
    address: String,
    reward_account: Vec<u8>,
    base: ShelleyAddress,
    /// `None`: not registered.
    account: Option<AccountView>,
}

/// An address's bech32 text, as Blockfrost's paths take it.
///
/// # Errors
/// [`AdapterError::BadInput`] when it cannot be encoded.
fn bech32_of(address: &ShelleyAddress) -> Result<String> {
    address
        .to_bech32()
        .map_err(|e| AdapterError::bad_input(CHAIN, format!("address: {e}")))
}

/// The Cardano adapter.
pub struct CardanoAdapter {
    api: Api,
    cfg: CardanoConfig,
    net: Network,
    payment: Ed25519Key,
    payment_hash: Hash<28>,
    enterprise: ShelleyAddress,
    stake_signers: Vec<Ed25519Key>,
    params: OnceCell<Params>,
}

impl std::fmt::Debug for CardanoAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardanoAdapter")
            .field("api_url", &self.cfg.api_url)
            .field("address", &self.address())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The 32-byte ed25519 seed of a key.
///
/// # Errors
/// [`AdapterError::Signer`] for another length.
pub fn seed(key: &SecretBytes) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(key.expose()).map_err(|_| {
        AdapterError::Signer(format!(
            "a Cardano key is a 96-byte CIP-1852 root key or a 32-byte ed25519 seed, not {} bytes",
            key.expose().len()
        ))
    })
}

/// The configuration's pure checks.
fn check(cfg: &CardanoConfig) -> Result<()> {
    if cfg.api_url.trim().is_empty() {
        return Err(AdapterError::bad_input(CHAIN, "api_url is empty"));
    }
    if cfg.network_id > 1 {
        return Err(AdapterError::bad_input(
            CHAIN,
            format!("network_id {} is not 0 or 1", cfg.network_id),
        ));
    }
    if cfg.project_id.as_deref().is_some_and(|id| !api::project_id_ok(id)) {
        return Err(AdapterError::bad_input(
            CHAIN,
            "project_id must be Blockfrost's ASCII letters and digits",
        ));
    }
    if cfg.confirmations == 0 {
        return Err(AdapterError::bad_input(CHAIN, "confirmations must be at least 1"));
    }
    if !(1..=MAX_STAKE_KEYS).contains(&cfg.stake_keys) || cfg.ttl_slots == 0 {
        return Err(AdapterError::bad_input(
            CHAIN,
            format!(
                "stake_keys {} (1..={MAX_STAKE_KEYS}) or ttl_slots {}",
                cfg.stake_keys, cfg.ttl_slots
            ),
        ));
    }
    Ok(())
}

impl CardanoAdapter {
    /// An adapter from a raw key:
    /// - 96 bytes: a CIP-1852 root extended key (`cardano-address key from-recovery-phrase
    ///   Shelley`, as hex); payment and stake keys derive per CIP-1852 at `cfg.account`
    ///   ([`hd`]), so standard wallets restored from the same phrase see the same
    ///   addresses;
    /// - 32 bytes: an ed25519 seed, the payment key itself, whose stake keys derive by
    ///   softstake's own scheme ([`wire::stake_seed`]; no wallet knows it).
    ///
    /// An HSM payment key cannot derive anything: give its stake keys with
    /// [`CardanoAdapter::with_hsm_keys`].
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for an empty URL, a network id other than 0 or 1,
    /// `stake_keys` outside 1..=100 or a zero TTL; [`AdapterError::Signer`] for a key of
    /// another length, a malformed root key, an account of 2^31 or more, or an HSM key.
    pub fn new(cfg: CardanoConfig, key: impl Into<TreasuryKey>) -> Result<CardanoAdapter> {
        check(&cfg)?;
        let raw = key.into();
        let raw = raw.raw(CHAIN).map_err(|e| {
            AdapterError::Signer(format!(
                "{e}: a PKCS#11 payment key needs its stake keys in the token too (CardanoAdapter::with_hsm_keys)"
            ))
        })?;
        if raw.expose().len() == ed25519_bip32::XPRV_SIZE {
            let (payment, stake) = hd::keys(&hd::root(raw.expose())?, cfg.account, cfg.stake_keys)?;
            let stake = stake
                .into_iter()
                .map(Ed25519Key::from_extended)
                .collect::<Result<_>>()?;
            return CardanoAdapter::build(cfg, Ed25519Key::from_extended(payment)?, stake);
        }
        let s = seed(raw)?;
        let stake = (0..cfg.stake_keys)
            .map(|i| Ed25519Key::from_seed(&wire::stake_seed(&s, i)))
            .collect();
        CardanoAdapter::build(cfg, Ed25519Key::from_seed(&s), stake)
    }

    /// An adapter whose payment key and stake keys (one per `stake_keys`, in index order;
    /// [`crate::pkcs11::cardano_stake_key_label`] names them in the token) are Ed25519 key pairs in a PKCS#11
    /// token: every witness is signed there (`CKM_EDDSA`) and verified before broadcast.
    ///
    /// # Errors
    /// As [`CardanoAdapter::new`]; [`AdapterError::Signer`] when the number of stake keys is
    /// not `stake_keys` or a key is not Ed25519.
    #[cfg(feature = "pkcs11")]
    pub fn with_hsm_keys(
        cfg: CardanoConfig,
        payment: crate::pkcs11::HsmKey,
        stake: Vec<crate::pkcs11::HsmKey>,
    ) -> Result<CardanoAdapter> {
        check(&cfg)?;
        if stake.len() != cfg.stake_keys as usize {
            return Err(AdapterError::Signer(format!(
                "{} stake keys for stake_keys = {}",
                stake.len(),
                cfg.stake_keys
            )));
        }
        let stake = stake
            .into_iter()
            .map(|h| Ed25519Key::from_hsm(CHAIN, h))
            .collect::<Result<_>>()?;
        CardanoAdapter::build(cfg, Ed25519Key::from_hsm(CHAIN, payment)?, stake)
    }

    fn build(cfg: CardanoConfig, payment: Ed25519Key, stake_signers: Vec<Ed25519Key>) -> Result<CardanoAdapter> {
        let payment_hash = wire::key_hash(&PublicKey::from(payment.public_key()));
        let net = wire::network(cfg.network_id);
        let api = Api::new(&cfg.api_url, cfg.project_id.as_deref())?;
        Ok(CardanoAdapter {
            api,
            enterprise: wire::enterprise_address(net, payment_hash),
            net,
            payment,
            payment_hash,
            stake_signers,
            params: OnceCell::new(),
            cfg,
        })
    }

    /// The treasury's enterprise address (`addr…`), where liquid funds are kept.
    pub fn address(&self) -> String {
        self.enterprise.to_bech32().unwrap_or_default()
    }

    /// The stake address of stake key `index` (`stake…`).
    pub fn stake_address(&self, index: u32) -> Option<String> {
        let k = self.stake_signers.get(index as usize)?;
        wire::stake_address(self.net, wire::key_hash(&PublicKey::from(k.public_key())))
            .to_bech32()
            .ok()
    }

    async fn params(&self) -> Result<&Params> {
        self.params
            .get_or_try_init(|| async {
                let p = self
                    .api
                    .must("/epochs/latest/parameters", self.api.sdk().epochs_latest_parameters())
                    .await?;
                Ok(Params {
                    min_fee_a: count("min_fee_a", p.min_fee_a)?,
                    min_fee_b: count("min_fee_b", p.min_fee_b)?,
                    key_deposit: lovelace("key_deposit", &p.key_deposit)?,
                    coins_per_utxo_size: p
                        .coins_per_utxo_size
                        .as_deref()
                        .map(|c| lovelace("coins_per_utxo_size", c))
                        .transpose()?,
                })
            })
            .await
    }

    async fn head(&self) -> Result<LatestBlock> {
        let b = self.api.must("/blocks/latest", self.api.sdk().blocks_latest()).await?;
        Ok(LatestBlock {
            time: i64::from(b.time),
            slot: b.slot.map(|s| count("slot", s)).transpose()?,
            height: b.height.map(|h| count("height", h)).transpose()?,
        })
    }

    async fn latest_epoch(&self) -> Result<EpochView> {
        let e = self.api.must("/epochs/latest", self.api.sdk().epochs_latest()).await?;
        Ok(EpochView {
            epoch: count("epoch", e.epoch)?,
            start_time: i64::from(e.start_time),
            end_time: i64::from(e.end_time),
        })
    }

    /// A transaction's block height and time (`/txs/{hash}`); `None` when unknown.
    async fn tx_block(&self, hash: &str) -> Result<Option<(u64, i64)>> {
        let what = format!("/txs/{hash}");
        match self.api.call(&what, self.api.sdk().transaction_by_hash(hash)).await? {
            Some(t) => Ok(Some((count("block_height", t.block_height)?, i64::from(t.block_time)))),
            None => Ok(None),
        }
    }

    /// Pure-lovelace UTxOs at `address`: (input, lovelace), largest first.
    async fn utxos(&self, address: &ShelleyAddress) -> Result<Vec<(wire::Input, u64)>> {
        let bech = bech32_of(address)?;
        let (sdk, b) = (self.api.sdk(), bech.as_str());
        let rows = self
            .api
            .pages(&format!("/addresses/{bech}/utxos"), move |p| sdk.addresses_utxos(b, p))
            .await?;
        let mut out = Vec::new();
        for u in rows {
            if u.amount.len() != 1 || u.amount[0].unit != "lovelace" {
                continue;
            }
            let id: [u8; 32] = hex::decode(&u.tx_hash)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("utxo tx_hash {:?}", u.tx_hash)))?;
            out.push((
                (Hash::from(id), count("output_index", u.output_index)?),
                lovelace("utxo quantity", &u.amount[0].quantity)?,
            ));
        }
        out.sort_by_key(|u| std::cmp::Reverse(u.1));
        Ok(out)
    }

    fn key_at(&self, index: u32) -> StakeKey {
        let hash = wire::key_hash(&PublicKey::from(self.stake_signers[index as usize].public_key()));
        let sa = wire::stake_address(self.net, hash);
        StakeKey {
            index,
            hash,
            address: sa.to_bech32().unwrap_or_default(),
            reward_account: sa.to_vec(),
            base: wire::base_address(self.net, self.payment_hash, hash),
            account: None,
        }
    }

    /// Every stake key with its account (registered or not).
    async fn stake_keys(&self) -> Result<Vec<StakeKey>> {
        let mut out = Vec::new();
        for i in 0..self.cfg.stake_keys {
            let mut k = self.key_at(i);
            let a = self
                .api
                .call(&format!("/accounts/{}", k.address), self.api.sdk().accounts(&k.address))
                .await?;
            k.account = match a.filter(|a| a.registered) {
                Some(a) => Some(AccountView {
                    withdrawable: lovelace("withdrawable_amount", &a.withdrawable_amount)?,
                    pool_id: a.pool_id,
                }),
                None => None,
            };
            out.push(k);
        }
        Ok(out)
    }

    /// The stake key delegated to `pool`.
    fn key_for<'a>(keys: &'a [StakeKey], pool: &str) -> Option<&'a StakeKey> {
        keys.iter()
            .find(|k| k.account.as_ref().and_then(|a| a.pool_id.as_deref()) == Some(pool))
    }

    /// Lovelace at the key's base address (its stake, rewards aside).
    async fn staked(&self, k: &StakeKey) -> Result<u64> {
        Ok(self.utxos(&k.base).await?.iter().map(|u| u.1).sum())
    }

    /// A registered key whose base address an exit emptied, to redelegate without a
    /// second deposit.
    async fn emptied_key(&self, keys: &[StakeKey]) -> Result<Option<StakeKey>> {
        for k in keys.iter().filter(|k| k.account.is_some()) {
            if self.staked(k).await? == 0 {
                return Ok(Some(k.clone()));
            }
        }
        Ok(None)
    }

    /// The epoch of the last transaction that paid to or spent from `address`
    /// (`/addresses/{a}/transactions?order=desc`, then `/blocks/{height}`); `None` for
    /// an address never used.
    ///
    /// # Errors
    /// [`AdapterError::BadResponse`] for a block without an epoch.
    async fn last_tx_epoch(&self, address: &ShelleyAddress) -> Result<Option<u64>> {
        let bech = bech32_of(address)?;
        let newest = Pagination::new(Order::Desc, 1, 1);
        let rows = self
            .api
            .call(
                &format!("/addresses/{bech}/transactions"),
                self.api.sdk().addresses_transactions(&bech, newest),
            )
            .await?
            .unwrap_or_default();
        let Some(last) = rows.first() else {
            return Ok(None);
        };
        let path = format!("/blocks/{}", last.block_height);
        let b = self
            .api
            .must(&path, self.api.sdk().blocks_by_id(&last.block_height.to_string()))
            .await?;
        match b.epoch {
            Some(e) => count("epoch", e).map(Some),
            None => Err(AdapterError::bad_response(CHAIN, format!("{path}: no epoch"))),
        }
    }

    /// Whether an emptied key may be deregistered now: the epoch is at least
    /// [`REWARD_LAG_EPOCHS`] past the one its stake left in (so every snapshot holding it
    /// has been paid).
    async fn retirable(&self, k: &StakeKey) -> Result<bool> {
        if self.staked(k).await? > 0 {
            return Ok(false);
        }
        let now = self.epoch().await?.index;
        Ok(match self.last_tx_epoch(&k.base).await? {
            Some(left) => now >= left.saturating_add(REWARD_LAG_EPOCHS),
            None => true,
        })
    }

    fn min_utxo(&self, p: &Params, address: &[u8], coin: u64) -> u64 {
        let per_byte = p.coins_per_utxo_size.unwrap_or(4_310);
        // a map {0: address, 1: coin}
        let size = 1 + 1 + cbor_bytes_len(address.len()) + 1 + cbor_uint_len(coin);
        per_byte.saturating_mul(160 + size as u64)
    }

    /// Adds enterprise inputs until `preselected` (what the draft's inputs, withdrawals
    /// and refunds bring) pays `spend` (the draft's outputs and deposits), the fee and a
    /// change output back to the enterprise address; sets the fee from the signed size
    /// and signs with the payment key and the stake keys `stake_signers` (certificates,
    /// withdrawals).
    async fn finish(
        &self,
        mut d: wire::Draft,
        preselected: u64,
        spend: u64,
        stake_signers: &[u32],
    ) -> Result<SignedTx> {
        let p = self.params().await?.clone();
        let head = self.head().await?;
        let slot = head
            .slot
            .ok_or_else(|| AdapterError::bad_response(CHAIN, "/blocks/latest: no slot"))?;
        d.ttl = slot.saturating_add(self.cfg.ttl_slots);
        let mut pool = self.utxos(&self.enterprise).await?.into_iter();
        let mut have = preselected;
        let mut signers: Vec<&Ed25519Key> = vec![&self.payment];
        for i in stake_signers {
            signers.push(&self.stake_signers[*i as usize]);
        }
        // sized with placeholder signatures (a witness's size does not depend on its
        // value); the keys sign once, when the fee has settled
        let placeholders: Vec<([u8; 32], [u8; 64])> = signers.iter().map(|k| (k.public_key(), [0; 64])).collect();
        let change_addr = self.enterprise.to_vec();
        let mut fee = 0u64;
        for _ in 0..4 {
            let needed = spend.saturating_add(fee);
            let min_change = self.min_utxo(&p, &change_addr, needed);
            // a transaction spends at least one input (the ledger's InputSetEmptyUTxO)
            while (have < needed.saturating_add(min_change) || d.inputs.is_empty()) && d.inputs.len() < MAX_INPUTS {
                match pool.next() {
                    Some((input, coin)) => {
                        d.inputs.push(input);
                        have = have.saturating_add(coin);
                    }
                    None => break,
                }
            }
            if have < needed.saturating_add(min_change) || d.inputs.is_empty() {
                return Err(AdapterError::InsufficientFunds {
                    chain: CHAIN.into(),
                    needed: u128::from(needed) + u128::from(min_change),
                    available: u128::from(have),
                });
            }
            let mut draft = d.clone();
            draft.fee = fee.max(p.min_fee_b);
            draft
                .outputs
                .push((change_addr.clone(), have - needed.max(spend + draft.fee)));
            let (id, sized) = wire::assemble(&draft, &placeholders).map_err(AdapterError::Signer)?;
            let size = sized.len() as u64 + SIZE_MARGIN;
            let want = p.min_fee_a.saturating_mul(size).saturating_add(p.min_fee_b);
            if want <= draft.fee {
                let mut witnesses = Vec::with_capacity(signers.len());
                for k in &signers {
                    witnesses.push((k.public_key(), k.sign(id.as_ref()).await?));
                }
                let (id, cbor) = wire::assemble(&draft, &witnesses).map_err(AdapterError::Signer)?;
                debug_assert_eq!(cbor.len(), sized.len(), "placeholders size the transaction exactly");
                return Ok(SignedTx {
                    tx_id: hex::encode(id),
                    payload: hex::encode(cbor),
                    valid_until: None,
                });
            }
            fee = want;
        }
        Err(AdapterError::bad_response(CHAIN, "the fee did not settle"))
    }

    fn decode_payload(tx: &SignedTx) -> Result<(Vec<u8>, u64)> {
        let cbor =
            hex::decode(&tx.payload).map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not hex: {e}")))?;
        let t = wire::decode(&cbor)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not a transaction: {e}")))?;
        let id = hex::encode(wire::tx_id(t.transaction_body.raw_cbor()));
        if id != tx.tx_id {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("payload's id is {id}, not the recorded {}", tx.tx_id),
            ));
        }
        let ttl = t.transaction_body.ttl.unwrap_or(u64::MAX);
        Ok((cbor, ttl))
    }

    fn check_amount(what: &str, amount: Amount) -> Result<u64> {
        u64::try_from(amount.0)
            .ok()
            .filter(|a| *a > 0)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, format!("{what} of {amount} lovelace")))
    }
}

fn cbor_uint_len(v: u64) -> usize {
    match v {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

fn cbor_bytes_len(n: usize) -> usize {
    cbor_uint_len(n as u64) + n
}

#[async_trait]
impl ChainAdapter for CardanoAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "ADA"
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let e = self.latest_epoch().await?;
        Ok(LiquidityModel {
            unbonding_period_secs: 0,
            epoch_secs: u64::try_from(e.end_time - e.start_time).unwrap_or(432_000),
            epoch_aligned: false,
            // a delegation counts from the snapshot two epoch boundaries later
            activation_epochs: 2,
            min_delegation: Amount(LOVELACE_PER_ADA),
            rewards_auto_compound: false,
            claim_cadence_secs: 0,
            claim_all_validators: false,
            max_operations_per_epoch: self.cfg.max_operations_per_epoch,
            instant_exit: true,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: false,
        })
    }

    async fn epoch(&self) -> Result<EpochInfo> {
        let e = self.latest_epoch().await?;
        Ok(EpochInfo {
            index: e.epoch,
            start: time("/epochs/latest start_time", e.start_time)?,
            secs: u64::try_from(e.end_time - e.start_time).unwrap_or(0),
        })
    }

    async fn now(&self) -> Result<Timestamp> {
        let b = self.head().await?;
        time("/blocks/latest time", b.time)
    }

    /// Pools from `/pools/extended` (live stake, margin), those in `/pools/retiring`
    /// inactive.
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let sdk = self.api.sdk();
        let pools = self.api.pages("/pools/extended", |p| sdk.pools_extended(p)).await?;
        let retiring: std::collections::BTreeSet<String> = self
            .api
            .pages("/pools/retiring", |p| sdk.pools_retiring(p))
            .await?
            .into_iter()
            .map(|r| r.pool_id)
            .collect();
        let mut out = Vec::new();
        for p in pools {
            let margin = p.margin_cost;
            if !(0.0..=1.0).contains(&margin) {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    format!("{}: margin {margin}", p.pool_id),
                ));
            }
            out.push(ValidatorCandidate {
                name: p.pool_id.clone(),
                // margin is a fraction on the wire; basis points for the selection only
                commission_bps: (margin * 10_000.0).round() as u32,
                total_stake: Amount(u128::from(lovelace("live_stake", &p.live_stake)?)),
                performance_bps: 10_000,
                active: !retiring.contains(&p.pool_id),
                id: p.pool_id,
                own_validator: false,
            });
        }
        Ok(out)
    }

    /// Each delegated stake key's base-address lovelace, active at its pool (rewards sit
    /// in the reward account until withdrawn and are not counted); keys an exit emptied
    /// hold no position.
    async fn positions(&self) -> Result<Vec<Position>> {
        let mut out = Vec::new();
        for k in self.stake_keys().await? {
            let Some(pool) = k.account.as_ref().and_then(|a| a.pool_id.clone()) else {
                continue;
            };
            let amount = self.staked(&k).await?;
            if amount == 0 {
                // emptied by an exit, kept registered for the rewards still owed
                continue;
            }
            out.push(Position {
                validator: pool,
                state: StakeState::Active,
                amount: Amount(u128::from(amount)),
                eta: None,
                account: Some(k.address),
            });
        }
        Ok(out)
    }

    /// Lovelace at the enterprise address, less the largest fee of a simple transaction.
    /// Preflight: the Blockfrost network against `network_id` (its host names the
    /// network: `cardano-mainnet`, `cardano-preprod`, `cardano-preview`), a project id
    /// for Blockfrost's hosted API, the protocol parameters, and the treasury's UTxO
    /// balance; the fee per operation is a 1 000-byte transaction at the linear fee plus
    /// the stake key deposit a first delegation locks.
    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let url = self.cfg.api_url.as_str();
        let hosted = url.contains("blockfrost.io");
        let named = [("cardano-mainnet", 1u8), ("cardano-preprod", 0), ("cardano-preview", 0)]
            .into_iter()
            .find(|(host, _)| url.contains(host));
        let mut checks = vec![match named {
            Some((host, id)) if id != self.cfg.network_id => Check::fail(
                "network",
                format!("{host} is network id {id}, the config says {}", self.cfg.network_id),
                format!("set cardano.network_id = {id}, or point rpc_url at the intended network"),
            ),
            Some((host, _)) => Check::pass("network", format!("{host}, network id {}", self.cfg.network_id)),
            None => Check::pass(
                "network",
                format!("network id {} (not named by the URL)", self.cfg.network_id),
            ),
        }];
        if hosted && self.cfg.project_id.is_none() {
            checks.push(Check::fail(
                "project id",
                "Blockfrost's hosted API refuses requests without a project id",
                "set cardano.project_id_env to a variable holding a project id of this network",
            ));
        }
        if let (Some(id), Some((host, _))) = (&self.cfg.project_id, named) {
            // Blockfrost's project ids start with their network's name
            let id_net = ["mainnet", "preprod", "preview"]
                .into_iter()
                .find(|n| id.starts_with(n));
            if let Some(n) = id_net.filter(|n| !host.ends_with(n)) {
                checks.push(Check::fail(
                    "project id",
                    format!("the project id is for {n}, the URL is {host}"),
                    "set a project id of the URL's network",
                ));
            }
        }
        let p = self.params().await?;
        let deposit = u128::from(p.key_deposit);
        checks.push(Check::pass(
            "protocol parameters",
            format!(
                "min_fee_a {}, min_fee_b {}, key_deposit {deposit}",
                p.min_fee_a, p.min_fee_b
            ),
        ));
        let fee = u128::from(p.min_fee_a.saturating_mul(1_000).saturating_add(p.min_fee_b)).saturating_add(deposit);
        let total: u64 = self.utxos(&self.enterprise).await?.iter().map(|u| u.1).sum();
        Ok(Preflight {
            signer: Some(self.address()),
            fee_token: None,
            signer_balance: Some(Amount(u128::from(total))),
            fee_per_operation: Some(Amount(fee)),
            checks,
        })
    }

    async fn spendable(&self) -> Result<Amount> {
        let p = self.params().await?;
        let total: u64 = self.utxos(&self.enterprise).await?.iter().map(|u| u.1).sum();
        let fee = p.min_fee_a.saturating_mul(1_000).saturating_add(p.min_fee_b);
        Ok(Amount(u128::from(total.saturating_sub(fee))))
    }

    /// Each delegated stake key's `withdrawable_amount`, under its pool.
    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        let mut out = Vec::new();
        for k in self.stake_keys().await? {
            if let Some(a) = &k.account {
                if let Some(pool) = &a.pool_id {
                    out.push((pool.clone(), Amount(u128::from(a.withdrawable))));
                }
            }
        }
        Ok(out)
    }

    /// Sends `amount` lovelace to the pool's base address. For a pool no stake key
    /// delegates to, redelegates a registered key an exit emptied (no deposit; the
    /// rewards still owed to it keep coming to its reward account, booked under the new
    /// pool), else registers a free key and delegates it (and its vote, to
    /// always-abstain) in the same transaction.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a malformed pool id, an amount below the minimum
    /// UTxO, or every stake key in use; [`AdapterError::InsufficientFunds`].
    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let pool = wire::pool_hash(validator).map_err(|e| AdapterError::bad_input(CHAIN, e))?;
        let amount = Self::check_amount("delegation", amount)?;
        let p = self.params().await?.clone();
        let keys = self.stake_keys().await?;
        let (key, certs, deposit) = if let Some(k) = Self::key_for(&keys, validator) {
            (k.clone(), vec![], 0)
        } else if let Some(k) = self.emptied_key(&keys).await? {
            let cert = wire::delegate(k.hash, pool);
            (k, vec![cert], 0)
        } else {
            let k = keys.iter().find(|k| k.account.is_none()).ok_or_else(|| {
                AdapterError::bad_input(
                    CHAIN,
                    format!(
                        "all {} stake keys delegate to other pools (one pool per stake key)",
                        self.cfg.stake_keys
                    ),
                )
            })?;
            let deposit = p.key_deposit;
            (
                k.clone(),
                vec![wire::register_and_delegate(k.hash, pool, deposit)],
                deposit,
            )
        };
        let base = key.base.to_vec();
        if amount < self.min_utxo(&p, &base, amount) {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("delegation of {amount} lovelace is below the minimum UTxO"),
            ));
        }
        let d = wire::Draft {
            outputs: vec![(base, amount)],
            certificates: certs.clone(),
            ..Default::default()
        };
        let signers = if certs.is_empty() { vec![] } else { vec![key.index] };
        self.finish(d, 0, amount + deposit, &signers).await
    }

    async fn undelegate(&self, _key: &str, _validator: &str, _amount: Amount) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            "Cardano locks nothing: stake leaves with a withdraw, not an undelegation",
        ))
    }

    /// Moves `amount` lovelace from the pool's base address back to the enterprise
    /// address. All of it: also withdraws the rewards; the stake key stays registered and
    /// delegated, since the snapshots of the last [`REWARD_LAG_EPOCHS`] epochs still pay
    /// it ([`ChainAdapter::claim_rewards`] deregisters it once they have).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a pool no stake key delegates to, or more than it holds.
    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let amount = Self::check_amount("withdrawal", amount)?;
        let keys = self.stake_keys().await?;
        let key = Self::key_for(&keys, validator)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, format!("no stake key delegates to {validator}")))?
            .clone();
        let utxos = self.utxos(&key.base).await?;
        let total: u64 = utxos.iter().map(|u| u.1).sum();
        if amount > total {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("withdrawal of {amount} lovelace from {validator}: {total} there"),
            ));
        }
        let mut d = wire::Draft::default();
        let mut taken = 0u64;
        for (input, coin) in utxos.into_iter().take(MAX_INPUTS) {
            if taken >= amount {
                break;
            }
            d.inputs.push(input);
            taken += coin;
        }
        let rest = taken - amount;
        let mut rewards = 0;
        if amount == total {
            let a = key
                .account
                .as_ref()
                .ok_or_else(|| AdapterError::bad_response(CHAIN, "a delegated stake key without an account"))?;
            rewards = a.withdrawable;
            if rewards > 0 {
                d.withdrawals.push((key.reward_account.clone(), rewards));
            }
        } else if rest > 0 {
            d.outputs.push((key.base.to_vec(), rest));
        }
        // the moved amount lands in the change output at the enterprise address
        let signers = if rewards > 0 { vec![key.index] } else { vec![] };
        self.finish(d, taken + rewards, rest, &signers).await
    }

    /// Withdraws the stake key's whole reward balance to the enterprise address. A key an
    /// exit emptied at least [`REWARD_LAG_EPOCHS`] epochs ago is also deregistered in the
    /// same transaction (its deposit comes back; a deregistration alone when nothing
    /// accrued). The reward its own reward balance earns in the snapshots after the exit
    /// is forfeited (a reward on a reward, below a fee).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] when no stake key delegates to `validator`, or nothing
    /// accrued on a key that is not due for deregistration.
    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        let keys = self.stake_keys().await?;
        let key = Self::key_for(&keys, validator)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, format!("no stake key delegates to {validator}")))?;
        let a = key
            .account
            .as_ref()
            .ok_or_else(|| AdapterError::bad_response(CHAIN, "a delegated stake key without an account"))?;
        let rewards = a.withdrawable;
        let refund = if self.retirable(key).await? {
            self.params().await?.key_deposit
        } else {
            0
        };
        if rewards == 0 && refund == 0 {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("no rewards to withdraw at {validator}"),
            ));
        }
        let mut d = wire::Draft::default();
        if rewards > 0 {
            d.withdrawals.push((key.reward_account.clone(), rewards));
        }
        if refund > 0 {
            d.certificates.push(wire::deregister(key.hash, refund));
        }
        self.finish(d, rewards + refund, 0, &[key.index]).await
    }

    /// POST `/tx/submit` (CBOR). A transaction already on chain or in the mempool is
    /// success; the node's ledger errors are rejections.
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let (cbor, _) = Self::decode_payload(tx)?;
        if self.tx_block(&tx.tx_id).await?.is_some() {
            return Ok(());
        }
        match self
            .api
            .must("/tx/submit", self.api.sdk().transactions_submit(cbor))
            .await
        {
            Ok(_) => Ok(()),
            Err(AdapterError::Rejected { reason, .. }) if reason.contains("already") => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let (_, ttl) = Self::decode_payload(tx)?;
        let seen = self.tx_block(&tx.tx_id).await?;
        let head = self.head().await?;
        if let Some((block_height, block_time)) = seen {
            let height = head
                .height
                .ok_or_else(|| AdapterError::bad_response(CHAIN, "/blocks/latest: no height"))?;
            // in a block, but only `confirmations` deep counts: a rollback can still drop it
            if height.saturating_sub(block_height).saturating_add(1) < self.cfg.confirmations {
                return Ok(TxStatus::Pending);
            }
            let at = time("/txs block_time", block_time)?;
            return Ok(TxStatus::Confirmed { at });
        }
        let slot = head.slot.unwrap_or(0);
        Ok(if slot > ttl {
            TxStatus::Expired
        } else {
            TxStatus::NotFound
        })
    }

    /// Every stake key's reward withdrawals after the cursor (`index:count,…`: how many
    /// of each key's withdrawals were read), keyed by block height.
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
        for part in cursor.unwrap_or("").split(',').filter(|p| !p.is_empty()) {
            let (i, n) = part
                .split_once(':')
                .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)))
                .ok_or_else(|| AdapterError::bad_input(CHAIN, format!("reward cursor part {part:?}")))?;
            seen.insert(i, n);
        }
        let mut sums = ClaimSums::new();
        let sdk = self.api.sdk();
        for k in self.stake_keys().await? {
            let stake = k.address.as_str();
            let rows = self
                .api
                .pages(&format!("/accounts/{stake}/withdrawals"), move |p| {
                    sdk.accounts_withdrawals(stake, p)
                })
                .await?;
            let from = seen.get(&k.index).copied().unwrap_or(0);
            let pool = k
                .account
                .as_ref()
                .and_then(|a| a.pool_id.clone())
                .unwrap_or_else(|| ALL_VALIDATORS.to_string());
            for w in rows.iter().skip(from) {
                let at = time("withdrawal block_time", i64::from(w.block_time))?;
                let height = count("block_height", w.block_height)?;
                let e = sums.entry((height, pool.clone())).or_insert((0, at));
                e.0 += u128::from(lovelace("withdrawal amount", &w.amount)?);
            }
            if !rows.is_empty() {
                seen.insert(k.index, rows.len());
            }
        }
        Ok(RewardsPage {
            records: claimed_records(sums),
            cursor: seen
                .iter()
                .map(|(i, n)| format!("{i}:{n}"))
                .collect::<Vec<_>>()
                .join(","),
        })
    }
}

//! Solana: native staking through stake accounts (`solana-client` 3.1, the stake and
//! system programs).
//!
//! ```text
//!  delegate    create_account_with_seed + initialize + delegate_stake, one transaction;
//!              the address is derived from the treasury key and the idempotency key
//!              (seed), so a retry can never create a second account ("already in use")
//!  undelegate  deactivate a whole account, or split a seeded part off and deactivate it
//!              (split destination pre-funded with its rent-exempt reserve)
//!  withdraw    inactive accounts: all their lamports back to the treasury (closes them)
//!  rewards     auto-compounding: getInflationReward per epoch for our stake accounts
//!  positions   getProgramAccounts (withdrawer = treasury) + the StakeHistory sysvar:
//!              activating / active / deactivating / inactive (withdrawable)
//! ```
//!
//! Reads use `confirmed`; an operation is `Confirmed` only once `finalized`. Expiry is by
//! blockhash: a transaction unknown to the cluster whose blockhash is no longer valid can
//! never land (`Expired`), so a new attempt may be signed; while the blockhash is valid the
//! same transaction is sent again (same signature: the cluster processes it once).
//! Sources: the Solana stake program (`solana-stake-interface`), JSON-RPC API docs
//! (`getInflationReward`, `getSignatureStatuses`, `isBlockhashValid`).

use std::collections::BTreeMap;
use std::str::FromStr;

use async_trait::async_trait;
use solana_client::client_error::ClientError;
use solana_client::nonblocking::rpc_client::RpcClient;
use solana_client::rpc_config::{RpcAccountInfoConfig, RpcProgramAccountsConfig, RpcSendTransactionConfig};
use solana_client::rpc_filter::{Memcmp, RpcFilterType};
use solana_commitment_config::CommitmentConfig;
use solana_sdk::hash::Hash;
use solana_sdk::pubkey::Pubkey;
use solana_sdk::signature::{Keypair, Signature, Signer as _};
use solana_sdk::transaction::Transaction;
use solana_stake_interface::instruction as stake_ix;
use solana_stake_interface::stake_history::StakeHistory;
use solana_stake_interface::state::{Authorized, Lockup, StakeStateV2};

use softstake_core::position::draw_stake;
use softstake_core::{Amount, Timestamp};

use crate::error::{AdapterError, Result};
use crate::signer::TreasuryKey;
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardKind, RewardRecord, RewardsPage, SignedTx, StakeState,
    TxStatus, ValidatorCandidate,
};

const CHAIN: &str = "solana";
/// Offset of the withdrawer in a stake account (enum tag 4 + rent reserve 8 + staker 32).
const WITHDRAWER_OFFSET: usize = 44;
/// Lamports kept aside for fees when reporting the spendable balance.
const FEE_MARGIN_LAMPORTS: u64 = 10_000_000;
/// Most epochs of rewards read in one call.
const MAX_EPOCHS_PER_SYNC: u64 = 50;
/// Nominal slot time, for epoch lengths and ETAs.
const SLOT_MS: u64 = 400;

/// Settings of the Solana adapter.
#[derive(Debug, Clone)]
pub struct SolanaConfig {
    /// JSON-RPC endpoint (`https://api.devnet.solana.com`, a local validator, …).
    pub rpc_url: String,
    /// Priority fee, micro-lamports per compute unit (0 = none).
    pub priority_fee_micro_lamports: u64,
    /// Largest number of operations sent per epoch.
    pub max_operations_per_epoch: u32,
    /// The cluster's genesis hash, base58 (devnet `EtWTRABZaYq6iMfeYKouRu166VU2xqa1wcaWoxPkrZBG`,
    /// mainnet-beta `5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dw2N9d`): the preflight fails on
    /// another cluster. `None` leaves it unchecked (a local validator).
    pub genesis_hash: Option<String>,
}

/// The treasury's Ed25519 key: a keypair in memory, or a key pair in a PKCS#11 token.
enum SolanaKey {
    Keypair(Keypair),
    #[cfg(feature = "pkcs11")]
    Hsm(crate::pkcs11::HsmKey, Pubkey),
}

impl SolanaKey {
    fn pubkey(&self) -> Pubkey {
        match self {
            SolanaKey::Keypair(k) => k.pubkey(),
            #[cfg(feature = "pkcs11")]
            SolanaKey::Hsm(_, p) => *p,
        }
    }
}

/// A stake account's data as the stake program lays it out: bincode of `StakeStateV2`
/// (`solana-stake-interface`; 200 bytes for an account the program owns).
///
/// # Errors
/// The decoder's message, for data that is not a stake state (an RPC answering garbage).
pub fn decode_stake_state(data: &[u8]) -> std::result::Result<StakeStateV2, String> {
    bincode::deserialize(data).map_err(|e| e.to_string())
}

/// The StakeHistory sysvar's data: bincode of `StakeHistory` (at most 512 epochs, newest
/// first; `solana-stake-interface`).
///
/// # Errors
/// The decoder's message, for data that is not a stake history.
pub fn decode_stake_history(data: &[u8]) -> std::result::Result<StakeHistory, String> {
    bincode::deserialize(data).map_err(|e| e.to_string())
}

/// The adapter: one treasury keypair (fee payer, staker and withdrawer of every account).
pub struct SolanaAdapter {
    rpc: RpcClient,
    keypair: SolanaKey,
    cfg: SolanaConfig,
}

impl std::fmt::Debug for SolanaAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SolanaAdapter")
            .field("rpc_url", &self.cfg.rpc_url)
            .field("treasury", &self.keypair.pubkey())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The StakeHistory sysvar's address.
const STAKE_HISTORY_SYSVAR: Pubkey = Pubkey::from_str_const("SysvarStakeHistory1111111111111111111111111");
/// Most stake accounts one undelegation deactivates (one transaction of at most 1 232
/// bytes; each deactivation is one instruction naming three accounts).
const MAX_ACCOUNTS_PER_UNDELEGATION: usize = 8;
/// The `reduce_stake_warmup_cooldown` feature gate (SIMD-0018, agave-feature-set
/// `reduce_stake_warmup_cooldown::id()`): from the epoch of its activation slot, stake
/// warms up and cools down at 9 % of the cluster's effective stake per epoch, not 25 %.
const REDUCE_WARMUP_COOLDOWN_FEATURE: Pubkey = Pubkey::from_str_const("GwtDQBghCTBgmX2cpEGNPxTEBUTQRaDMGTr5qychdGMj");

/// A feature gate account's data (`solana-feature-gate-interface` `Feature`, bincode):
/// the slot it was activated at, `None` while pending.
#[derive(serde::Deserialize)]
struct Feature {
    activated_at: Option<u64>,
}

fn rpc_err(what: &str, e: ClientError) -> AdapterError {
    let text = e.to_string();
    let transient = matches!(
        e.kind(),
        solana_client::client_error::ClientErrorKind::Io(_) | solana_client::client_error::ClientErrorKind::Reqwest(_)
    ) || [
        "-32004",
        "-32005",
        "-32014",
        "-32016",
        "-32017",
        "429",
        "timed out",
        "connection",
    ]
    .iter()
    .any(|m| text.contains(m));
    if transient {
        AdapterError::transient(CHAIN, format!("{what}: {text}"))
    } else {
        AdapterError::rejected(CHAIN, format!("{what}: {text}"))
    }
}

fn bad(what: impl Into<String>) -> AdapterError {
    AdapterError::bad_response(CHAIN, what)
}

impl SolanaAdapter {
    /// An adapter for the treasury key: a keypair (64-byte secret||public, the Solana
    /// CLI's keypair file) or an Ed25519 key pair in a PKCS#11 token.
    ///
    /// # Errors
    /// [`AdapterError::Signer`] for a key that is not a 64-byte keypair, or an HSM key that
    /// is not Ed25519.
    pub fn new(cfg: SolanaConfig, key: impl Into<TreasuryKey>) -> Result<SolanaAdapter> {
        let keypair = match key.into() {
            TreasuryKey::Raw(key) => SolanaKey::Keypair(
                Keypair::try_from(key.expose())
                    .map_err(|_| AdapterError::Signer("the Solana key must be a 64-byte keypair".into()))?,
            ),
            #[cfg(feature = "pkcs11")]
            TreasuryKey::Hsm(h) => {
                let pk: [u8; 32] = h
                    .public_key()
                    .try_into()
                    .map_err(|_| AdapterError::Signer(format!("{} is not an Ed25519 key", h.uri())))?;
                if h.algorithm() != crate::pkcs11::KeyAlgorithm::Ed25519 {
                    return Err(AdapterError::Signer(format!("{} is not an Ed25519 key", h.uri())));
                }
                SolanaKey::Hsm(h, Pubkey::new_from_array(pk))
            }
        };
        Ok(SolanaAdapter {
            rpc: RpcClient::new_with_commitment(cfg.rpc_url.clone(), CommitmentConfig::confirmed()),
            keypair,
            cfg,
        })
    }

    /// The treasury's address.
    pub fn treasury(&self) -> Pubkey {
        self.keypair.pubkey()
    }

    /// The seed of the `n`-th account an operation creates (≤ 32 bytes).
    pub fn seed(key: &str, n: u32) -> String {
        let k: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).take(28).collect();
        format!("ss{k}{n:x}")
    }

    /// The derived stake account address for `seed`.
    pub fn stake_address(&self, seed: &str) -> Result<Pubkey> {
        Pubkey::create_with_seed(&self.treasury(), seed, &solana_stake_interface::program::id())
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("seed {seed:?}: {e}")))
    }

    fn vote(validator: &str) -> Result<Pubkey> {
        Pubkey::from_str(validator).map_err(|_| {
            AdapterError::bad_input(CHAIN, format!("validator {validator:?} is not a base58 vote account"))
        })
    }

    fn lamports(a: Amount) -> Result<u64> {
        u64::try_from(a.0).map_err(|_| AdapterError::bad_input(CHAIN, format!("{a} lamports is more than a u64")))
    }

    /// [`ChainAdapter::preflight`]: the cluster's genesis hash against the pinned one,
    /// the stake program's presence, the treasury's balance, and a fee per operation of
    /// two signatures (5 000 lamports each), the priority fee over 200 000 compute units
    /// and the rent-exempt reserve a new stake account locks.
    async fn preflight_report(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{is_loopback_url, Check, Preflight};
        let genesis = self
            .rpc
            .get_genesis_hash()
            .await
            .map_err(|e| rpc_err("getGenesisHash", e))?
            .to_string();
        let mut checks = vec![match &self.cfg.genesis_hash {
            Some(pinned) if *pinned == genesis => Check::pass("genesis hash", genesis),
            Some(pinned) => Check::fail(
                "genesis hash",
                format!(
                    "the cluster at {} has genesis {genesis}, the config pins {pinned}",
                    self.cfg.rpc_url
                ),
                "point rpc_url at the pinned cluster, or fix genesis_hash",
            ),
            None if is_loopback_url(&self.cfg.rpc_url) => {
                Check::pass("genesis hash", format!("{genesis} (local, not pinned)"))
            }
            None => Check::warn(
                "genesis hash",
                format!("{genesis}, not pinned"),
                format!("set genesis_hash = \"{genesis}\" so another cluster is refused"),
            ),
        }];
        let program = self
            .rpc
            .get_account_with_commitment(&solana_stake_interface::program::ID, CommitmentConfig::confirmed())
            .await
            .map_err(|e| rpc_err("getAccountInfo(stake program)", e))?
            .value;
        checks.push(match program {
            Some(a) if a.executable => Check::pass("stake program", solana_stake_interface::program::ID.to_string()),
            _ => Check::fail(
                "stake program",
                format!("no executable stake program at {}", solana_stake_interface::program::ID),
                "point rpc_url at a Solana cluster",
            ),
        });
        let balance = self.treasury_balance().await?;
        let priority = self.cfg.priority_fee_micro_lamports.saturating_mul(200_000) / 1_000_000;
        let fee = 10_000u64
            .saturating_add(priority)
            .saturating_add(self.rent_reserve().await?);
        Ok(Preflight {
            signer: Some(self.treasury().to_string()),
            fee_token: None,
            signer_balance: Some(Amount(u128::from(balance))),
            fee_per_operation: Some(Amount(u128::from(fee))),
            checks,
        })
    }

    /// The treasury's balance at `confirmed`, lamports.
    async fn treasury_balance(&self) -> Result<u64> {
        Ok(self
            .rpc
            .get_balance_with_commitment(&self.treasury(), CommitmentConfig::confirmed())
            .await
            .map_err(|e| rpc_err("getBalance", e))?
            .value)
    }

    async fn rent_reserve(&self) -> Result<u64> {
        self.rpc
            .get_minimum_balance_for_rent_exemption(StakeStateV2::size_of())
            .await
            .map_err(|e| rpc_err("getMinimumBalanceForRentExemption", e))
    }

    /// The transaction of `ixs` paid and signed by the treasury. An HSM signs in
    /// `spawn_blocking` (the token call blocks); its signature is verified there.
    async fn sign_message(
        &self,
        ixs: &[solana_sdk::instruction::Instruction],
        blockhash: solana_sdk::hash::Hash,
    ) -> Result<Transaction> {
        match &self.keypair {
            SolanaKey::Keypair(k) => Ok(Transaction::new_signed_with_payer(
                ixs,
                Some(&k.pubkey()),
                &[k],
                blockhash,
            )),
            #[cfg(feature = "pkcs11")]
            SolanaKey::Hsm(h, payer) => {
                let mut tx = Transaction::new_with_payer(ixs, Some(payer));
                tx.message.recent_blockhash = blockhash;
                let (h, message) = (h.clone(), tx.message_data());
                let sig = tokio::task::spawn_blocking(move || h.sign_ed25519(&message))
                    .await
                    .map_err(|e| AdapterError::Signer(format!("the signing task failed: {e}")))??;
                tx.signatures = vec![Signature::from(sig)];
                tx.verify()
                    .map_err(|e| AdapterError::Signer(format!("the HSM-signed transaction does not verify: {e}")))?;
                Ok(tx)
            }
        }
    }

    async fn sign(&self, mut ixs: Vec<solana_sdk::instruction::Instruction>) -> Result<SignedTx> {
        if self.cfg.priority_fee_micro_lamports > 0 {
            ixs.insert(
                0,
                solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_price(
                    self.cfg.priority_fee_micro_lamports,
                ),
            );
        }
        let (blockhash, _) = self
            .rpc
            .get_latest_blockhash_with_commitment(CommitmentConfig::confirmed())
            .await
            .map_err(|e| rpc_err("getLatestBlockhash", e))?;
        let tx = self.sign_message(&ixs, blockhash).await?;
        let bytes = bincode::serialize(&tx)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("encoding the transaction: {e}")))?;
        use base64::Engine as _;
        Ok(SignedTx {
            tx_id: tx.signatures[0].to_string(),
            payload: base64::engine::general_purpose::STANDARD.encode(bytes),
            valid_until: None,
        })
    }

    /// The transaction a journal payload holds (base64 of its bincode).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a payload that is not base64 of a transaction.
    pub fn decode_payload(tx: &SignedTx) -> Result<Transaction> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&tx.payload)
            .map_err(|_| AdapterError::bad_input(CHAIN, "payload is not base64"))?;
        bincode::deserialize(&bytes).map_err(|_| AdapterError::bad_input(CHAIN, "payload is not a transaction"))
    }

    /// Our stake accounts: address, state, lamports.
    async fn stake_accounts(&self) -> Result<Vec<(Pubkey, StakeStateV2, u64)>> {
        let cfg = RpcProgramAccountsConfig {
            filters: Some(vec![RpcFilterType::Memcmp(Memcmp::new_raw_bytes(
                WITHDRAWER_OFFSET,
                self.treasury().to_bytes().to_vec(),
            ))]),
            account_config: RpcAccountInfoConfig {
                commitment: Some(CommitmentConfig::confirmed()),
                encoding: Some(solana_account_decoder_client_types::UiAccountEncoding::Base64),
                ..RpcAccountInfoConfig::default()
            },
            ..RpcProgramAccountsConfig::default()
        };
        let accounts = self
            .rpc
            .get_program_ui_accounts_with_config(&solana_stake_interface::program::id(), cfg)
            .await
            .map_err(|e| rpc_err("getProgramAccounts", e))?;
        accounts
            .into_iter()
            .map(|(k, ui)| {
                let a: solana_sdk::account::Account = ui
                    .decode()
                    .ok_or_else(|| bad(format!("stake account {k}: undecodable data")))?;
                let state = decode_stake_state(&a.data).map_err(|e| bad(format!("stake account {k}: {e}")))?;
                Ok((k, state, a.lamports))
            })
            .collect()
    }

    /// The epoch from which the cluster's warmup/cooldown rate is 9 % (what the stake
    /// program passes as `new_rate_activation_epoch`): the epoch of the
    /// `reduce_stake_warmup_cooldown` feature's activation slot, `None` when the feature is
    /// absent or pending (then the old 25 % rate holds, as on-chain).
    async fn new_rate_activation_epoch(&self) -> Result<Option<u64>> {
        let account = self
            .rpc
            .get_account_with_commitment(&REDUCE_WARMUP_COOLDOWN_FEATURE, CommitmentConfig::confirmed())
            .await
            .map_err(|e| rpc_err("getAccountInfo(reduce_stake_warmup_cooldown)", e))?
            .value;
        let Some(account) = account else {
            return Ok(None);
        };
        let feature: Feature = bincode::deserialize(&account.data)
            .map_err(|e| bad(format!("reduce_stake_warmup_cooldown feature account: {e}")))?;
        let Some(slot) = feature.activated_at else {
            return Ok(None);
        };
        let schedule = self
            .rpc
            .get_epoch_schedule()
            .await
            .map_err(|e| rpc_err("getEpochSchedule", e))?;
        Ok(Some(schedule.get_epoch(slot)))
    }

    async fn current_epoch(&self) -> Result<solana_sdk::epoch_info::EpochInfo> {
        self.rpc.get_epoch_info().await.map_err(|e| rpc_err("getEpochInfo", e))
    }

    async fn stake_history(&self) -> Result<StakeHistory> {
        let data = self
            .rpc
            .get_account_data(&STAKE_HISTORY_SYSVAR)
            .await
            .map_err(|e| rpc_err("getAccountInfo(StakeHistory)", e))?;
        decode_stake_history(&data).map_err(|e| bad(format!("StakeHistory sysvar: {e}")))
    }

    async fn block_time(&self, slot: u64) -> Option<Timestamp> {
        let secs = self.rpc.get_block_time(slot).await.ok()?;
        Timestamp::from_unix_secs(secs).ok()
    }
}

#[async_trait]
impl ChainAdapter for SolanaAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "SOL"
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let schedule = self
            .rpc
            .get_epoch_schedule()
            .await
            .map_err(|e| rpc_err("getEpochSchedule", e))?;
        let min = self
            .rpc
            .get_stake_minimum_delegation()
            .await
            .map_err(|e| rpc_err("getStakeMinimumDelegation", e))?;
        let epoch_secs = schedule.slots_per_epoch * SLOT_MS / 1_000;
        Ok(LiquidityModel {
            unbonding_period_secs: epoch_secs,
            epoch_secs,
            epoch_aligned: true,
            activation_epochs: 1,
            min_delegation: Amount(u128::from(min.max(1))),
            rewards_auto_compound: true,
            claim_cadence_secs: 0,
            claim_all_validators: false,
            max_operations_per_epoch: self.cfg.max_operations_per_epoch,
            instant_exit: false,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: false,
        })
    }

    async fn epoch(&self) -> Result<EpochInfo> {
        let info = self.current_epoch().await?;
        let start_slot = info.absolute_slot.saturating_sub(info.slot_index);
        let now = self.now().await?;
        let start = match self.block_time(start_slot).await {
            Some(t) => t,
            None => now
                .checked_add_secs(-((info.slot_index * SLOT_MS / 1_000) as i64))
                .map_err(|e| bad(e.to_string()))?,
        };
        Ok(EpochInfo {
            index: info.epoch,
            start,
            secs: info.slots_in_epoch * SLOT_MS / 1_000,
        })
    }

    async fn now(&self) -> Result<Timestamp> {
        let slot = self
            .rpc
            .get_slot_with_commitment(CommitmentConfig::confirmed())
            .await
            .map_err(|e| rpc_err("getSlot", e))?;
        match self.block_time(slot).await {
            Some(t) => Ok(t),
            None => Err(AdapterError::transient(
                CHAIN,
                format!("no block time for slot {slot} yet"),
            )),
        }
    }

    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let votes = self
            .rpc
            .get_vote_accounts_with_commitment(CommitmentConfig::confirmed())
            .await
            .map_err(|e| rpc_err("getVoteAccounts", e))?;
        let credits = |v: &solana_client::rpc_response::RpcVoteAccountInfo| {
            v.epoch_credits
                .last()
                .map(|(_, c, p)| c.saturating_sub(*p))
                .unwrap_or(0)
        };
        let mut all: Vec<u64> = votes.current.iter().map(credits).collect();
        all.sort_unstable();
        let median = all.get(all.len() / 2).copied().unwrap_or(0).max(1);
        let mut out = Vec::new();
        for (v, active) in votes
            .current
            .iter()
            .map(|v| (v, true))
            .chain(votes.delinquent.iter().map(|v| (v, false)))
        {
            out.push(ValidatorCandidate {
                id: v.vote_pubkey.clone(),
                name: v.node_pubkey.clone(),
                commission_bps: u32::from(v.commission) * 100,
                total_stake: Amount(u128::from(v.activated_stake)),
                performance_bps: u32::try_from(credits(v).saturating_mul(10_000) / median).unwrap_or(u32::MAX),
                active,
                own_validator: false,
            });
        }
        Ok(out)
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let info = self.current_epoch().await?;
        let history = self.stake_history().await?;
        let new_rate = self.new_rate_activation_epoch().await?;
        let epoch = self.epoch().await?;
        let next = epoch.boundary_after(1);
        let mut out = Vec::new();
        for (addr, state, lamports) in self.stake_accounts().await? {
            let (validator, pos_state, amount, eta) = match state {
                StakeStateV2::Stake(_, stake, _) => {
                    let d = stake.delegation;
                    let status = d.stake_activating_and_deactivating(info.epoch, &history, new_rate);
                    let (s, eta) = if d.deactivation_epoch == u64::MAX {
                        if status.activating > 0 {
                            (StakeState::Activating, Some(next))
                        } else {
                            (StakeState::Active, None)
                        }
                    } else if status.effective == 0 && status.deactivating == 0 {
                        (StakeState::Withdrawable, None)
                    } else {
                        (StakeState::Deactivating, Some(next))
                    };
                    (d.voter_pubkey.to_string(), s, d.stake, eta)
                }
                StakeStateV2::Initialized(meta) => (
                    "undelegated".to_string(),
                    StakeState::Withdrawable,
                    lamports.saturating_sub(meta.rent_exempt_reserve),
                    None,
                ),
                StakeStateV2::Uninitialized | StakeStateV2::RewardsPool => continue,
            };
            out.push(Position {
                validator,
                state: pos_state,
                amount: Amount(u128::from(amount)),
                eta,
                account: Some(addr.to_string()),
            });
        }
        Ok(out)
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        self.preflight_report().await
    }

    async fn spendable(&self) -> Result<Amount> {
        let bal = self.treasury_balance().await?;
        let reserve = self.rent_reserve().await?;
        Ok(Amount(u128::from(
            bal.saturating_sub(FEE_MARGIN_LAMPORTS + 8 * reserve),
        )))
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        Ok(Vec::new())
    }

    async fn delegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let vote = Self::vote(validator)?;
        let seed = Self::seed(key, 0);
        let stake = self.stake_address(&seed)?;
        let lamports = Self::lamports(amount)?
            .checked_add(self.rent_reserve().await?)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, "amount overflow"))?;
        let treasury = self.treasury();
        let ixs = stake_ix::create_account_with_seed_and_delegate_stake(
            &treasury,
            &stake,
            &treasury,
            &seed,
            &vote,
            &Authorized::auto(&treasury),
            &Lockup::default(),
            lamports,
        );
        self.sign(ixs).await
    }

    async fn undelegate(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let want = Self::lamports(amount)?;
        let treasury = self.treasury();
        let mut candidates: Vec<(Pubkey, u64)> = self
            .stake_accounts()
            .await?
            .into_iter()
            .filter_map(|(k, s, _)| match s {
                StakeStateV2::Stake(_, st, _)
                    if st.delegation.voter_pubkey.to_string() == validator
                        && st.delegation.deactivation_epoch == u64::MAX =>
                {
                    Some((k, st.delegation.stake))
                }
                _ => None,
            })
            .collect();
        candidates.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        // whole accounts deactivated, at most one split: the rule the planner plans by
        let min = self
            .rpc
            .get_stake_minimum_delegation()
            .await
            .map_err(|e| rpc_err("getStakeMinimumDelegation", e))?
            .max(1);
        let amounts: Vec<Amount> = candidates.iter().map(|(_, s)| Amount(u128::from(*s))).collect();
        let draw = draw_stake(&amounts, amount, Amount(u128::from(min)))
            .filter(|d| d.len() <= MAX_ACCOUNTS_PER_UNDELEGATION)
            .ok_or_else(|| {
                AdapterError::bad_input(
                    CHAIN,
                    format!(
                        "no {want} lamports at {validator} from whole active stake accounts and at most one split \
                         leaving both parts at least the minimum delegation {min} (accounts: {})",
                        candidates
                            .iter()
                            .map(|(_, s)| s.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
        let mut ixs = Vec::new();
        for (i, part) in draw {
            let (source, stake) = candidates[i];
            if part.0 == u128::from(stake) {
                ixs.push(stake_ix::deactivate_stake(&source, &treasury));
                continue;
            }
            let part = Self::lamports(part)?;
            let seed = Self::seed(key, 1);
            let split = self.stake_address(&seed)?;
            let reserve = self.rent_reserve().await?;
            ixs.push(solana_system_interface::instruction::transfer(
                &treasury, &split, reserve,
            ));
            ixs.extend(stake_ix::split_with_seed(
                &source, &treasury, part, &split, &treasury, &seed,
            ));
            ixs.push(stake_ix::deactivate_stake(&split, &treasury));
        }
        self.sign(ixs).await
    }

    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let want = Self::lamports(amount)?;
        let treasury = self.treasury();
        let info = self.current_epoch().await?;
        let history = self.stake_history().await?;
        let new_rate = self.new_rate_activation_epoch().await?;
        let inactive: Vec<(Pubkey, u64, u64)> = self
            .stake_accounts()
            .await?
            .into_iter()
            .filter_map(|(k, s, lamports)| match s {
                StakeStateV2::Stake(_, st, _)
                    if st.delegation.voter_pubkey.to_string() == validator
                        && st.delegation.deactivation_epoch != u64::MAX =>
                {
                    let status = st
                        .delegation
                        .stake_activating_and_deactivating(info.epoch, &history, new_rate);
                    (status.effective == 0 && status.deactivating == 0).then_some((k, st.delegation.stake, lamports))
                }
                _ => None,
            })
            .collect();
        let mut ixs = Vec::new();
        let mut left = want;
        for (k, stake, lamports) in inactive
            .iter()
            .filter(|(_, s, _)| *s == want)
            .chain(inactive.iter().filter(|(_, s, _)| *s != want))
        {
            if left == 0 || *stake > left {
                continue;
            }
            ixs.push(stake_ix::withdraw(k, &treasury, &treasury, *lamports, None));
            left -= stake;
        }
        if left != 0 || ixs.is_empty() {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("no inactive stake accounts at {validator} add up to {want} lamports"),
            ));
        }
        self.sign(ixs).await
    }

    async fn claim_rewards(&self, _key: &str, _validator: &str) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            "Solana stake rewards compound into the stake account: there is nothing to claim",
        ))
    }

    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        let t = Self::decode_payload(tx)?;
        let cfg = RpcSendTransactionConfig {
            preflight_commitment: Some(CommitmentConfig::confirmed().commitment),
            ..RpcSendTransactionConfig::default()
        };
        match self.rpc.send_transaction_with_config(&t, cfg).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let text = e.to_string();
                if text.contains("AlreadyProcessed") || text.contains("already been processed") {
                    return Ok(());
                }
                Err(rpc_err("sendTransaction", e))
            }
        }
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let sig = Signature::from_str(&tx.tx_id)
            .map_err(|_| AdapterError::bad_input(CHAIN, format!("{:?} is not a signature", tx.tx_id)))?;
        let statuses = self
            .rpc
            .get_signature_statuses_with_history(&[sig])
            .await
            .map_err(|e| rpc_err("getSignatureStatuses", e))?;
        if let Some(Some(st)) = statuses.value.first() {
            if let Some(err) = &st.err {
                return Ok(TxStatus::Failed {
                    reason: err.to_string(),
                });
            }
            let finalized = matches!(
                st.confirmation_status,
                Some(solana_transaction_status_client_types::TransactionConfirmationStatus::Finalized)
            );
            if !finalized {
                return Ok(TxStatus::Pending);
            }
            let at = match self.block_time(st.slot).await {
                Some(t) => t,
                None => self.now().await?,
            };
            return Ok(TxStatus::Confirmed { at });
        }
        let blockhash: Hash = Self::decode_payload(tx)?.message.recent_blockhash;
        let valid = self
            .rpc
            .is_blockhash_valid(&blockhash, CommitmentConfig::processed())
            .await
            .map_err(|e| rpc_err("isBlockhashValid", e))?;
        Ok(if valid { TxStatus::NotFound } else { TxStatus::Expired })
    }

    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let info = self.current_epoch().await?;
        let accounts = self.stake_accounts().await?;
        let mut by_account: BTreeMap<Pubkey, String> = BTreeMap::new();
        let mut first = u64::MAX;
        for (k, s, _) in &accounts {
            if let StakeStateV2::Stake(_, st, _) = s {
                by_account.insert(*k, st.delegation.voter_pubkey.to_string());
                first = first.min(st.delegation.activation_epoch);
            }
        }
        let from = match cursor {
            Some(c) if !c.is_empty() => {
                c.parse::<u64>()
                    .map_err(|_| AdapterError::bad_input(CHAIN, format!("bad rewards cursor {c:?}")))?
                    + 1
            }
            _ if first == u64::MAX => info.epoch,
            _ => first,
        };
        // Rewards of epoch e are paid at the start of e + 1: read up to the previous epoch.
        let last = info.epoch.saturating_sub(1);
        let keys: Vec<Pubkey> = by_account.keys().copied().collect();
        let mut records = Vec::new();
        let mut done = from.saturating_sub(1);
        if !keys.is_empty() {
            for e in from..=last.min(from + MAX_EPOCHS_PER_SYNC - 1) {
                let rewards = self
                    .rpc
                    .get_inflation_reward(&keys, Some(e))
                    .await
                    .map_err(|err| rpc_err("getInflationReward", err))?;
                if rewards.len() != keys.len() {
                    return Err(bad(format!(
                        "getInflationReward answered {} entries for {} accounts",
                        rewards.len(),
                        keys.len()
                    )));
                }
                let mut per_validator: BTreeMap<String, (u64, u64)> = BTreeMap::new();
                for (k, r) in keys.iter().zip(rewards) {
                    if let Some(r) = r.filter(|r| r.amount > 0) {
                        let e = per_validator
                            .entry(by_account[k].clone())
                            .or_insert((0, r.effective_slot));
                        e.0 = e.0.checked_add(r.amount).ok_or_else(|| bad("reward sum overflow"))?;
                    }
                }
                for (validator, (amount, slot)) in per_validator {
                    let at = self
                        .block_time(slot)
                        .await
                        .ok_or_else(|| AdapterError::transient(CHAIN, format!("no block time for slot {slot}")))?;
                    records.push(RewardRecord {
                        validator,
                        epoch: e,
                        amount: Amount(u128::from(amount)),
                        at,
                        kind: RewardKind::Compounded,
                    });
                }
                done = e;
            }
        }
        let cursor = if keys.is_empty() {
            cursor.unwrap_or("").to_string()
        } else {
            done.to_string()
        };
        Ok(RewardsPage { records, cursor })
    }
}

//! Realized rewards on claim chains: rewards are realized when the staking contract pays
//! them to the treasury, and every payout emits an event naming the delegator, the
//! validator and the amount (Sonic SFC `ClaimedRewards`, Polygon StakingInfo
//! `DelegatorClaimedRewards`, …). A sync reads those events over confirmed blocks.
//!
//! ```text
//!  cursor {"block": n}  ─▶ eth_getLogs(n+1 ..= min(head − confirmations + 1, one page), event, delegator = treasury)
//!                        ─▶ decode(log) → (validator, wei)  ─▶ Σ per (block, validator)
//!                        ─▶ RewardRecord { epoch: block, kind: Claimed, at: block time }
//! ```
//!
//! One record per validator and block: re-reading the same range gives the same records,
//! so the store's (validator, epoch) key makes a repeated sync harmless.

use std::collections::BTreeMap;

use alloy::rpc::types::{Filter, Log};
use serde::{Deserialize, Serialize};

use softstake_core::Amount;

use super::EvmClient;
use crate::error::{AdapterError, Result};
use crate::traits::{RewardKind, RewardRecord, RewardsPage};

/// The reward cursor of claim chains: the last block accounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockCursor {
    /// Last block whose payouts are in the records already returned.
    pub block: u64,
}

impl BlockCursor {
    /// Parses a stored cursor (`None` or empty: nothing accounted yet).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] when the text is not a block cursor.
    pub fn parse(chain: &str, cursor: Option<&str>) -> Result<Option<BlockCursor>> {
        super::parse_cursor(chain, cursor)
    }

    fn encode(self) -> String {
        format!("{{\"block\":{}}}", self.block)
    }
}

/// Rewards paid to the treasury after `cursor`: the logs matching `filter` (which must
/// select the payout events of the treasury) decoded by `decode` into (validator, wei);
/// logs it returns `None` for are skipped.
///
/// # Errors
/// What `decode` returns for a log it cannot read (a chain answering garbage), overflow
/// of a sum as [`AdapterError::BadResponse`], a bad cursor as [`AdapterError::BadInput`],
/// transport errors as in [`super::rpc_err`].
pub async fn paid_rewards_since(
    evm: &EvmClient,
    chain: &str,
    cursor: Option<&str>,
    filter: &Filter,
    decode: impl Fn(&Log) -> Result<Option<(String, Amount)>>,
) -> Result<RewardsPage> {
    let prev = BlockCursor::parse(chain, cursor)?;
    // one page of history per sync: the cursor moves to its end, so a long history (a
    // first sync from start_block, an outage) is read over several syncs
    let Some((from, to, _)) = evm.confirmed_page(prev.map(|c| c.block)).await? else {
        return Ok(RewardsPage {
            records: Vec::new(),
            cursor: cursor.unwrap_or("").to_string(),
        });
    };
    let mut sums: BTreeMap<(u64, String), Amount> = BTreeMap::new();
    for log in evm.logs(filter, from, to).await? {
        let Some((validator, amount)) = decode(&log)? else {
            continue;
        };
        let block = log
            .block_number
            .ok_or_else(|| AdapterError::bad_response(chain, "a payout log without a block number"))?;
        let sum = sums.entry((block, validator)).or_insert(Amount::ZERO);
        *sum = sum
            .checked_add(amount, "paid rewards")
            .map_err(|_| AdapterError::bad_response(chain, format!("rewards paid in block {block} overflow u128")))?;
    }
    let mut times = BTreeMap::new();
    let mut records = Vec::with_capacity(sums.len());
    for ((block, validator), amount) in sums {
        if amount.is_zero() {
            continue;
        }
        let at = match times.get(&block) {
            Some(t) => *t,
            None => {
                let t = evm.block_time(block).await?;
                times.insert(block, t);
                t
            }
        };
        records.push(RewardRecord {
            validator,
            epoch: block,
            amount,
            at,
            kind: RewardKind::Claimed,
        });
    }
    Ok(RewardsPage {
        records,
        cursor: BlockCursor { block: to }.encode(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_cursor_round_trip() {
        let c = BlockCursor { block: 1_234 };
        assert_eq!(BlockCursor::parse("x", Some(&c.encode())).unwrap(), Some(c));
        assert_eq!(BlockCursor::parse("x", None).unwrap(), None);
        assert_eq!(BlockCursor::parse("x", Some("")).unwrap(), None);
    }

    #[test]
    fn fail_garbage_cursor_is_bad_input() {
        for bad in ["12", "{\"block\":-1}", "{\"block\":1,\"expected\":{}}"] {
            let e = BlockCursor::parse("x", Some(bad)).unwrap_err();
            assert!(matches!(e, AdapterError::BadInput { .. }), "{bad}: {e}");
        }
    }
}

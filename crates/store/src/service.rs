//! Records the service needs: API keys of the Binance-compatible REST API and counts for
//! metrics.

use std::collections::BTreeMap;

use softstake_core::Timestamp;

use crate::db::{on_pool, RowExt};
use crate::error::{Result, StoreError};
use crate::Store;

/// An API key of the Binance-compatible REST API.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The public key sent in `X-MBX-APIKEY`.
    pub api_key: String,
    /// The HMAC-SHA256 secret the client signs with.
    pub secret: String,
    /// The account it acts for.
    pub account_id: String,
    /// When it was created (set by [`Store::create_api_key`]).
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    /// True when the key may sign requests at `now`: not revoked, not expired.
    pub fn usable_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("api_key", &self.api_key)
            .field("secret", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

const API_KEY_COLS: &str = "api_key, secret, account_id, created_at, expires_at, revoked_at";

fn decode_api_key<R: RowExt>(r: &R) -> Result<ApiKey> {
    Ok(ApiKey {
        api_key: r.text("api_key")?,
        secret: r.text("secret")?,
        account_id: r.text("account_id")?,
        created_at: r.ts("created_at")?,
        expires_at: r.opt_ts("expires_at")?,
        revoked_at: r.opt_ts("revoked_at")?,
    })
}

impl Store {
    /// Stores an API key for an account, created at `now` (its `created_at` and
    /// `revoked_at` are ignored). Errors when the key exists.
    pub async fn create_api_key(&self, key: &ApiKey, now: Timestamp) -> Result<()> {
        let n = on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO api_keys (api_key, secret, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (api_key) DO NOTHING",
        )
        .bind(&key.api_key)
        .bind(&key.secret)
        .bind(&key.account_id)
        .bind(now.0)
        .bind(key.expires_at.map(|t| t.0))
        .execute(p)
        .await?
        .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::Journal(format!("API key {} already exists", key.api_key)));
        }
        Ok(())
    }

    /// The API key record, if known (revoked and expired ones too: check
    /// [`ApiKey::usable_at`]).
    pub async fn api_key(&self, api_key: &str) -> Result<Option<ApiKey>> {
        let sql = format!("SELECT {API_KEY_COLS} FROM api_keys WHERE api_key = $1");
        on_pool!(self, |p| {
            let row = sqlx::query(&sql).bind(api_key).fetch_optional(p).await?;
            row.map(|r| decode_api_key(&r)).transpose()
        })
    }

    /// API keys, of one account or all, oldest first, at most `limit`.
    pub async fn api_keys(&self, account_id: Option<&str>, limit: u32) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {API_KEY_COLS} FROM api_keys WHERE ($1 = '' OR account_id = $1) ORDER BY created_at, api_key LIMIT $2"
        );
        on_pool!(self, |p| {
            let rows = sqlx::query(&sql)
                .bind(account_id.unwrap_or(""))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?;
            rows.iter().map(decode_api_key).collect()
        })
    }

    /// Revokes an API key at `now`; a key already revoked keeps its first revocation.
    /// Returns the record as stored.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown key.
    pub async fn revoke_api_key(&self, api_key: &str, now: Timestamp) -> Result<ApiKey> {
        on_pool!(self, |p| sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 WHERE api_key = $2 AND revoked_at IS NULL"
        )
        .bind(now.0)
        .bind(api_key)
        .execute(p)
        .await?
        .rows_affected());
        self.api_key(api_key)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API key {api_key}")))
    }

    /// Journal operations of `token` per state.
    pub async fn operation_counts(&self, token: &str) -> Result<BTreeMap<String, u64>> {
        on_pool!(self, |p| {
            let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM operations WHERE token = $1 GROUP BY state")
                .bind(token)
                .fetch_all(p)
                .await?;
            let mut out = BTreeMap::new();
            for r in rows {
                out.insert(r.text("state")?, r.count("n", "operations")?);
            }
            Ok(out)
        })
    }
}

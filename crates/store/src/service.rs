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
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("api_key", &self.api_key)
            .field("secret", &"<redacted>")
            .field("account_id", &self.account_id)
            .finish()
    }
}

impl Store {
    /// Stores an API key for an account. Errors when the key exists.
    pub async fn create_api_key(&self, key: &ApiKey, now: Timestamp) -> Result<()> {
        let n = on_pool!(self, |p| {
            sqlx::query(
            "INSERT INTO api_keys (api_key, secret, account_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (api_key) DO NOTHING",
        )
        .bind(&key.api_key)
        .bind(&key.secret)
        .bind(&key.account_id)
        .bind(now.0)
        .execute(p)
        .await?
        .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::Journal(format!("API key {} already exists", key.api_key)));
        }
        Ok(())
    }

    /// The API key record, if known.
    pub async fn api_key(&self, api_key: &str) -> Result<Option<ApiKey>> {
        on_pool!(self, |p| {
            let row = sqlx::query("SELECT api_key, secret, account_id FROM api_keys WHERE api_key = $1")
                .bind(api_key)
                .fetch_optional(p)
                .await?;
            row.map(|r| {
                Ok(ApiKey {
                    api_key: r.text("api_key")?,
                    secret: r.text("secret")?,
                    account_id: r.text("account_id")?,
                })
            })
            .transpose()
        })
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

//! Blockfrost's REST API through Blockfrost's maintained SDK (`blockfrost` 1.3, whose
//! models `blockfrost-openapi` are generated from Blockfrost's OpenAPI spec), with the
//! adapter's error classes, a deadline per call and bounded paging.
//!
//! ```text
//!  call(what, fut) ─▶ deadline (REQUEST_TIMEOUT) ─▶ 2xx → Some(model)
//!                                                   404  → None (Blockfrost's "not yet")
//!                                                   400  → Rejected(message)
//!                                                   403  → BadResponse naming the project id
//!                                                   408, 425, 429, 5xx, I/O → Transient
//!                                                   anything else, bad JSON → BadResponse
//! ```
//!
//! The SDK chooses its base URL from the project id's network prefix unless one is given;
//! the adapter always gives the configured `api_url`, so a self-hosted Blockfrost
//! (`blockfrost-backend-ryo`) or the local chain is reached the same way.

use std::future::Future;
use std::time::Duration;

use blockfrost::{BlockFrostSettings, BlockfrostAPI, BlockfrostError, Order, Pagination};

use crate::error::{AdapterError, Result};

use super::CHAIN;

/// Longest a single Blockfrost call may take before it counts as a transient failure.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Blockfrost's largest page.
pub const PAGE: usize = 100;
/// Most pages read per listing (5 000 rows).
pub const MAX_PAGES: usize = 50;

/// A Blockfrost client: the SDK with the configured base URL and project id.
#[derive(Debug, Clone)]
pub struct Api {
    sdk: BlockfrostAPI,
}

/// Whether `id` can be sent as the `project_id` header (Blockfrost's ids are ASCII
/// letters and digits, e.g. `preprodAbC123…`).
pub fn project_id_ok(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Api {
    /// A client of `api_url` (with its version, `…/api/v0`), sending `project_id` when given.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a project id that is not ASCII letters and digits
    /// (the SDK would panic building the header).
    pub fn new(api_url: &str, project_id: Option<&str>) -> Result<Api> {
        let id = project_id.unwrap_or("");
        if !id.is_empty() && !project_id_ok(id) {
            return Err(AdapterError::bad_input(
                CHAIN,
                "the Blockfrost project id must be ASCII letters and digits",
            ));
        }
        let mut settings = BlockFrostSettings::new();
        settings.base_url = Some(api_url.trim_end_matches('/').to_string());
        Ok(Api {
            sdk: BlockfrostAPI::new(id, settings),
        })
    }

    /// The SDK, for the calls themselves.
    pub fn sdk(&self) -> &BlockfrostAPI {
        &self.sdk
    }

    /// Runs one SDK call named `what` (for errors) under [`REQUEST_TIMEOUT`]; `None` on 404.
    ///
    /// # Errors
    /// As the module's table.
    pub async fn call<T>(
        &self,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, BlockfrostError>>,
    ) -> Result<Option<T>> {
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Err(_) => Err(AdapterError::transient(
                CHAIN,
                format!("{what}: no answer in {} s", REQUEST_TIMEOUT.as_secs()),
            )),
            Ok(Ok(v)) => Ok(Some(v)),
            Ok(Err(e)) => classify(what, e).map(|()| None),
        }
    }

    /// As [`Api::call`], a 404 being a malformed answer.
    ///
    /// # Errors
    /// As [`Api::call`]; [`AdapterError::BadResponse`] on 404.
    pub async fn must<T>(
        &self,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, BlockfrostError>>,
    ) -> Result<T> {
        self.call(what, fut)
            .await?
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what}: 404")))
    }

    /// Every page of a listing, oldest first, [`PAGE`] rows each, at most [`MAX_PAGES`];
    /// a 404 is an empty listing (Blockfrost's answer for an address never used).
    ///
    /// # Errors
    /// As [`Api::call`]; [`AdapterError::BadResponse`] past [`MAX_PAGES`].
    pub async fn pages<T, F, Fut>(&self, what: &str, page: F) -> Result<Vec<T>>
    where
        F: Fn(Pagination) -> Fut,
        Fut: Future<Output = std::result::Result<Vec<T>, BlockfrostError>>,
    {
        let mut out = Vec::new();
        for n in 1..=MAX_PAGES {
            let rows = self
                .call(what, page(Pagination::new(Order::Asc, n, PAGE)))
                .await?
                .unwrap_or_default();
            let len = rows.len();
            out.extend(rows);
            if len < PAGE {
                return Ok(out);
            }
        }
        Err(AdapterError::bad_response(
            CHAIN,
            format!("{what}: more than {MAX_PAGES} pages of {PAGE}"),
        ))
    }
}

/// `Ok(())` for a 404; the adapter's error class otherwise.
fn classify(what: &str, e: BlockfrostError) -> Result<()> {
    match e {
        BlockfrostError::Response { reason, .. } => match reason.status_code {
            404 => Ok(()),
            400 => Err(AdapterError::rejected(CHAIN, reason.message)),
            403 => Err(AdapterError::bad_response(
                CHAIN,
                format!(
                    "{what}: Blockfrost refused the project id (HTTP 403: {}); set the project id of this network",
                    reason.message
                ),
            )),
            408 | 425 | 429 | 500..=599 => Err(AdapterError::transient(
                CHAIN,
                format!("{what}: HTTP {}: {}", reason.status_code, reason.message),
            )),
            code => Err(AdapterError::bad_response(
                CHAIN,
                format!("{what}: HTTP {code}: {} {}", reason.error, reason.message),
            )),
        },
        BlockfrostError::Reqwest { reason, .. } => Err(AdapterError::transient(CHAIN, format!("{what}: {reason}"))),
        BlockfrostError::Io(e) => Err(AdapterError::transient(CHAIN, format!("{what}: {e}"))),
        BlockfrostError::Json { reason, text, .. } => Err(AdapterError::bad_response(
            CHAIN,
            format!("{what}: {reason}: {}", text.chars().take(500).collect::<String>()),
        )),
        BlockfrostError::Parsing { message } => Err(AdapterError::bad_response(CHAIN, format!("{what}: {message}"))),
    }
}

/// A lovelace quantity from Blockfrost's decimal string.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` for anything but a decimal u64.
pub fn lovelace(what: &str, s: &str) -> Result<u64> {
    s.parse()
        .map_err(|_| AdapterError::bad_response(CHAIN, format!("{what} {s:?} is not lovelace")))
}

/// A count, slot, height or epoch Blockfrost gives as `i32`, refused when negative.
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` for a negative number.
pub fn count(what: &str, n: i32) -> Result<u64> {
    u64::try_from(n).map_err(|_| AdapterError::bad_response(CHAIN, format!("{what} {n} is negative")))
}

/// A Unix time in seconds from Blockfrost (block and epoch times).
///
/// # Errors
/// [`AdapterError::BadResponse`] naming `what` for a time outside the supported range.
pub fn time(what: &str, secs: i64) -> Result<softstake_core::Timestamp> {
    softstake_core::Timestamp::from_unix_secs(secs)
        .map_err(|e| AdapterError::bad_response(CHAIN, format!("{what} {secs}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use blockfrost::ResponseError;

    fn response(status_code: u16, message: &str) -> BlockfrostError {
        BlockfrostError::Response {
            url: "http://x/api/v0/txs/ab".into(),
            reason: ResponseError {
                status_code,
                error: "e".into(),
                message: message.into(),
            },
        }
    }

    #[test]
    fn success_404_is_absent_and_400_a_rejection_with_the_ledger_message() {
        assert!(classify("/txs", response(404, "not found")).is_ok());
        match classify("/tx/submit", response(400, "BadInputsUTxO")) {
            Err(AdapterError::Rejected { reason, .. }) => assert_eq!(reason, "BadInputsUTxO"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fail_rate_limits_and_server_errors_are_transient_others_bad_responses() {
        for code in [429, 500, 503] {
            assert!(matches!(
                classify("/blocks/latest", response(code, "x")),
                Err(AdapterError::Transient { .. })
            ));
        }
        match classify("/blocks/latest", response(403, "Invalid project token.")) {
            Err(AdapterError::BadResponse { message, .. }) => assert!(message.contains("project id"), "{message}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            classify("/blocks/latest", response(418, "banned")),
            Err(AdapterError::BadResponse { .. })
        ));
    }

    #[test]
    fn fail_project_id_that_cannot_be_a_header() {
        assert!(Api::new("http://127.0.0.1:1/api/v0", Some("preprod abc\n")).is_err());
        assert!(Api::new("http://127.0.0.1:1/api/v0", Some("preprodAbc123")).is_ok());
        assert!(Api::new("http://127.0.0.1:1/api/v0", None).is_ok());
        assert!(count("slot", -1).is_err());
        assert_eq!(lovelace("fee", "170000").unwrap(), 170_000);
        assert!(lovelace("fee", "-1").is_err());
    }
}

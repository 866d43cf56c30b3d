//! What clients see of a failure: a stable code, a short message and a request id. The
//! detail (a chain's or the database's error chain) goes to the log under that id, with
//! URLs redacted, since RPC URLs often carry a provider's API key.
//!
//! ```text
//!  handler error ─▶ request id (random, 16 hex) ─▶ log: error!(request_id, detail = redact_urls(…))
//!                                               └▶ client: "internal error (request id …)"
//! ```

use rand::Rng;
use tracing::error;

/// Query keys whose values are secrets (compared case-insensitively, `-`/`_` ignored).
pub const SECRET_QUERY_KEYS: [&str; 9] = [
    "apikey",
    "key",
    "token",
    "accesstoken",
    "password",
    "secret",
    "auth",
    "signature",
    "projectid",
];

/// A path segment this long made only of letters, digits, `-` and `_` is taken for an
/// API key (Alchemy's `/v2/<key>`, Infura's `/v3/<key>`, QuickNode's `/<token>/`).
const KEY_SEGMENT_MIN_CHARS: usize = 20;

/// A fresh request id: 16 lower-case hex digits.
pub fn request_id() -> String {
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

/// `text` with every URL in it redacted ([`redact_url`]).
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_scheme(rest) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ')' | ']' | '`'))
            .unwrap_or(tail.len());
        // a sentence's comma or full stop right after a URL is not part of it
        let url_end = tail[..end].trim_end_matches([',', '.', ';', ':']).len();
        out.push_str(&redact_url(&tail[..url_end]));
        rest = &tail[url_end..];
    }
    out.push_str(rest);
    out
}

fn find_scheme(s: &str) -> Option<usize> {
    ["https://", "http://", "wss://", "ws://", "postgres://", "postgresql://"]
        .iter()
        .filter_map(|p| s.find(p))
        .min()
}

/// One URL redacted: user info dropped, values of secret query keys
/// ([`SECRET_QUERY_KEYS`]) and key-like path segments replaced by `REDACTED`. Text that
/// does not parse as a URL is replaced whole.
pub fn redact_url(raw: &str) -> String {
    let Ok(mut url) = url::Url::parse(raw) else {
        return "<url redacted>".into();
    };
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("REDACTED");
        let _ = url.set_password(None);
    }
    let segments: Option<Vec<String>> = url.path_segments().map(|s| {
        s.map(|seg| {
            if seg.len() >= KEY_SEGMENT_MIN_CHARS
                && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                "REDACTED".to_string()
            } else {
                seg.to_string()
            }
        })
        .collect()
    });
    if let Some(segments) = segments {
        url.set_path(&segments.join("/"));
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let norm: String = k
                    .chars()
                    .filter(|c| *c != '-' && *c != '_')
                    .collect::<String>()
                    .to_ascii_lowercase();
                let secret = SECRET_QUERY_KEYS.contains(&norm.as_str());
                (k.into_owned(), if secret { "REDACTED".into() } else { v.into_owned() })
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Logs `detail` (redacted) under a new request id and answers `INTERNAL` with only the
/// id; the id is also in the `x-request-id` metadata.
pub fn internal_status(detail: &str) -> tonic::Status {
    let id = request_id();
    error!(request_id = %id, detail = %redact_urls(detail), "gRPC request failed");
    let mut status = tonic::Status::internal(format!("internal error (request id {id})"));
    if let Ok(v) = id.parse() {
        status.metadata_mut().insert("x-request-id", v);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_redacts_userinfo_keys_and_key_paths() {
        let t = "reading positions: error sending request for url (https://user:pw@eth-mainnet.g.alchemy.com/v2/AbCdEfGhIjKlMnOpQrStUvWx?api-key=s3cret&chain=1): timed out";
        let r = redact_urls(t);
        for secret in ["user", "pw", "AbCdEfGhIjKlMnOpQrStUvWx", "s3cret"] {
            assert!(!r.contains(secret), "{secret} leaked: {r}");
        }
        assert!(r.contains("eth-mainnet.g.alchemy.com"), "{r}");
        assert!(r.contains("chain=1"), "{r}");
        assert!(r.starts_with("reading positions: error sending request for url (https://"));
        assert!(r.ends_with("): timed out"), "{r}");
    }

    #[test]
    fn success_leaves_text_without_urls_and_short_paths() {
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(
            redact_urls("node http://127.0.0.1:8545/rpc, refused."),
            "node http://127.0.0.1:8545/rpc, refused."
        );
        let r = redact_urls("postgres://softstake:hunter2@db:5432/softstake?password=x&Token=y");
        assert!(!r.contains("hunter2") && !r.contains("=x") && !r.contains("=y"), "{r}");
    }

    #[test]
    fn success_internal_status_hides_the_detail() {
        let s = internal_status("db at postgres://u:secret@h/db refused");
        assert_eq!(s.code(), tonic::Code::Internal);
        assert!(!s.message().contains("secret") && !s.message().contains("postgres"));
        let id = s.metadata().get("x-request-id").unwrap().to_str().unwrap().to_string();
        assert_eq!(id.len(), 16);
        assert!(s.message().contains(&id));
    }
}

//! The Binance-compatible REST API's signed query: the raw query string a client sends
//! (parameters, duplicates, numbers, timestamp, window) and its HMAC-SHA256 signature.
//! Errors are Binance's codes, never panics; a query accepted is one whose signature is
//! the HMAC of the query without it, and a valid signature is always accepted when the
//! rest of the query is well formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use softstake_node::api::binance::{check_signed_query, sign};

const SECRET: &str = "fuzz-secret";
const NOW_MS: i64 = 1_750_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(rest) else { return };
    // half the inputs carry the right signature, so the fuzzer reaches the checks after it
    let raw = if mode & 1 == 0 {
        let sig = sign(SECRET, query);
        if query.is_empty() {
            format!("signature={sig}")
        } else {
            format!("{query}&signature={sig}")
        }
    } else {
        query.to_string()
    };
    if let Ok(q) = check_signed_query(&raw, SECRET, NOW_MS) {
        assert!(q.window <= 60_000, "recvWindow bounded");
        assert!(
            q.timestamp < NOW_MS + 1_000 && NOW_MS - q.timestamp <= q.window,
            "fresh"
        );
        assert!(!q.signature.is_empty());
    }
});

//! Amounts and times as clients and files write them: token units with decimals, base
//! units, RFC 3339 timestamps and days. Errors, never panics; accepted amounts
//! round-trip exactly through formatting (money is integers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use softstake_core::{Amount, Day, Timestamp};

fuzz_target!(|data: &[u8]| {
    let Some((&decimals, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else { return };
    let decimals = decimals % 39; // 0..=MAX_DECIMALS
    if let Ok(a) = Amount::parse_units(s, decimals) {
        let text = a.to_units_string(decimals);
        assert_eq!(Amount::parse_units(&text, decimals).unwrap(), a, "{s:?} → {text:?}");
    }
    if let Ok(a) = Amount::parse_base_units(s) {
        assert_eq!(Amount::parse_base_units(&a.0.to_string()).unwrap(), a);
    }
    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        let _ = t.day();
    }
    if let Ok(d) = Day::parse(s) {
        assert_eq!(Day::parse(&d.to_string()).unwrap(), d);
    }
});

//! The CSV inputs an operator or an upstream system hands softstake: `accounts.csv`,
//! `balances.csv` (amounts in token units, timestamps, account ids) and `rewards.csv`,
//! each read from a file as the CLI reads them. Bad input must be a clear error, never a
//! panic; `split_lines` (parallel readers) must cover the file exactly.
#![no_main]

use std::io::Write;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use softstake_core::TokenRegistry;
use softstake_node::input::{read_accounts, read_balances, read_rewards, split_lines};

fn registry() -> &'static TokenRegistry {
    static R: OnceLock<TokenRegistry> = OnceLock::new();
    R.get_or_init(|| TokenRegistry::from_toml_str(softstake_node::config::EMBEDDED_TOKENS).expect("embedded tokens"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let mut f = tempfile::NamedTempFile::new().expect("a temporary file");
    let header: &[u8] = match which % 3 {
        0 => b"account_id,jurisdiction,activated_at,deactivated_at\n",
        1 => b"ts,account_id,token,balance\n",
        _ => b"day,token,amount\n",
    };
    // half the inputs get a valid header, so the fuzzer reaches the rows
    if which & 0x80 == 0 {
        f.write_all(header).unwrap();
    }
    f.write_all(body).unwrap();
    f.flush().unwrap();
    let path = f.path();
    match which % 3 {
        0 => drop(read_accounts(path)),
        1 => {
            if let Ok(events) = read_balances(path, registry()) {
                for e in events {
                    let t = registry().get(&e.token).expect("accepted events name a known token");
                    let text = t.format_amount(e.balance);
                    assert_eq!(t.parse_amount(&text).unwrap(), e.balance, "amounts round-trip");
                }
            }
        }
        _ => drop(read_rewards(path, registry())),
    }
    // the ranges cover every record after the header line, contiguous, each a whole line
    let bytes = std::fs::read(path).unwrap();
    let len = bytes.len() as u64;
    let header = bytes.iter().position(|b| *b == b'\n').map_or(len, |i| i as u64 + 1);
    if let Ok(cuts) = split_lines(path, usize::from(which % 7) + 1) {
        let mut at = header;
        for (a, b) in &cuts {
            assert_eq!(*a, at, "ranges are contiguous from the header's end");
            assert!(a < b);
            assert!(*a == header || bytes[*a as usize - 1] == b'\n', "a range starts a line");
            at = *b;
        }
        assert_eq!(at, len.max(header), "ranges cover every record");
    }
});

//! `tokens.toml` and the network configs: anything that is not a valid configuration
//! is a clear error naming where and what, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use softstake_core::TokenRegistry;
use softstake_node::config::{NetworkConfig, EMBEDDED_TOKENS};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(reg) = TokenRegistry::from_toml_str(text) {
        for t in reg.iter() {
            assert!(reg.get(&t.symbol).is_ok());
        }
    }
    if let Ok(cfg) = NetworkConfig::from_toml_str(text, EMBEDDED_TOKENS, "fuzz.toml") {
        for symbol in cfg.chains.keys() {
            assert!(
                cfg.registry.get(symbol).is_ok(),
                "chains are validated against the registry"
            );
        }
        let _ = cfg.check_deployment(false);
    }
});

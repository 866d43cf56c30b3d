//! What chains and their users hand the adapters: TRON's protobuf transactions (as
//! java-tron returns them), signatures and base58check addresses; Cardano's CBOR
//! transactions and bech32 pool ids; key sources and PKCS#11 URIs from the config.
//! Garbage is an error, never a panic; what decodes re-encodes to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use softstake_adapters::cardano::wire as cardano;
use softstake_adapters::pkcs11::Pkcs11Uri;
use softstake_adapters::tron::wire as tron;
use softstake_adapters::KeySource;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(tx) = tron::Transaction::decode(rest) {
                let again = tron::Transaction::decode(tx.encode_to_vec().as_slice()).expect("re-decodes");
                assert_eq!(again, tx);
                if let Ok(raw) = tron::Raw::decode(tx.raw_data.as_slice()) {
                    for c in &raw.contract {
                        let _ = tron::contract_name(c.r#type);
                    }
                }
                if let Some(sig) = tx.signature.first() {
                    let _ = tron::recover(&tron::tx_id(&tx.raw_data), sig);
                }
            }
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(a) = tron::parse_address(text) {
                    assert_eq!(tron::parse_address(&tron::to_base58(&a)).unwrap(), a);
                }
            }
        }
        2 => drop(cardano::decode(rest)),
        3 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                if let Ok(h) = cardano::pool_hash(text) {
                    assert_eq!(cardano::pool_hash(&cardano::pool_id(&h).unwrap()).unwrap(), h);
                }
            }
        }
        _ => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = KeySource::parse(text);
                if let Ok(u) = Pkcs11Uri::parse(text) {
                    // a URI whose values need percent-encoding prints them raw; when it
                    // parses back it must be the same key
                    if let Ok(v) = Pkcs11Uri::parse(&u.to_string()) {
                        assert_eq!(v, u);
                    }
                }
            }
        }
    }
});

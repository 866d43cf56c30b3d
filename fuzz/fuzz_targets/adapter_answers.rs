//! What the Solana, NEAR, Cosmos and EVM adapters decode from a node or from their own
//! journal payloads: Solana's bincode stake accounts and StakeHistory sysvar and its
//! transactions; NEAR's JSON view results (the staking pool's `get_account`) and borsh
//! signed transactions; Cosmos's protobuf BaseAccount and TxRaw; EVM EIP-2718 envelopes
//! and the BNB StakeHub / Sonic SFC custom errors in revert data; Aptos's BCS signed
//! transactions and Move abort statuses; MultiversX's JSON transactions (the journal's
//! payloads), `erd1` addresses and VM-query return data; TON's BoCs (toncenter's config
//! parameters, the journal's signed external messages, the elector's frozen-stake
//! dictionaries), get-method stack entries (numbers, tuples, slices) and addresses. Garbage is an error,
//! never a panic, a hang or an allocation the input's length does not explain.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use softstake_adapters::aptos;
use softstake_adapters::cosmos::{decode_base_account, CosmosAdapter};
use softstake_adapters::evm::{bsc, decode_payload as evm_payload, sonic};
use softstake_adapters::multiversx::wire as mvx;
use softstake_adapters::near::{decode_view, NearAdapter, PoolAccount};
use softstake_adapters::solana::{decode_stake_history, decode_stake_state, SolanaAdapter};
use softstake_adapters::ton::wire as ton;
use softstake_adapters::SignedTx;

fn payload(encoded: String) -> SignedTx {
    SignedTx {
        tx_id: String::new(),
        payload: encoded,
        valid_until: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let b64 = || base64::engine::general_purpose::STANDARD.encode(rest);
    match which % 11 {
        0 => drop(decode_stake_state(rest)),
        1 => {
            if let Ok(h) = decode_stake_history(rest) {
                // a decoded history is no longer than its bytes allow (each entry is 32)
                assert!(h.len() * 32 <= rest.len(), "{} entries from {} bytes", h.len(), rest.len());
            }
        }
        2 => drop(SolanaAdapter::decode_payload(&payload(b64()))),
        3 => {
            if let Ok(a) = decode_view::<PoolAccount>("fuzz.get_account", rest) {
                // what parses re-parses from its canonical form
                let again = format!(
                    r#"{{"unstaked_balance":"{}","staked_balance":"{}","can_withdraw":{}}}"#,
                    a.unstaked_balance, a.staked_balance, a.can_withdraw
                );
                assert_eq!(decode_view::<PoolAccount>("again", again.as_bytes()).unwrap(), a);
            }
        }
        4 => drop(NearAdapter::decode_payload(&payload(b64()))),
        5 => drop(decode_base_account(rest)),
        6 => drop(CosmosAdapter::decode_payload(&payload(b64()))),
        7 => {
            let parts: Vec<String> = rest.split(|b| *b == b',').map(hex::encode).collect();
            drop(evm_payload("fuzz", &payload(parts.join(","))));
        }
        8 => {
            // a payload that decodes re-encodes to itself and hashes to its own id
            if let Ok(tx) = aptos::decode_signed(rest) {
                let id = aptos::tx_hash(&tx).unwrap();
                assert_eq!(aptos::decode_payload(&aptos::encode_payload(&tx).unwrap(), &id).unwrap(), tx);
            }
            drop(aptos::decode_payload(&hex::encode(rest), "0x"));
            let status = String::from_utf8_lossy(rest);
            assert!(status.contains(aptos::abort_name(&status)));
        }
        9 => {
            // a BoC toncenter returns: config parameters, or a signed external message
            if let Ok(root) = ton::boc_root("fuzz", &b64()) {
                drop(ton::config_15(&root));
                drop(ton::config_19(&root));
                drop(ton::config_34(&root));
                drop(ton::config_1(&root));
            }
            drop(ton::external_seqno(&b64()));
            // the elector's frozen-stake dictionary (a Hashmap 256 cell)
            drop(ton::frozen_stakes(&serde_json::json!({"type": "cell", "value": b64()})));
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(rest) {
                drop(ton::stack_uint("fuzz", &v));
                drop(ton::stack_u256("fuzz", &v));
                drop(ton::stack_items("fuzz", &v));
                drop(ton::stack_address("fuzz", &v));
                drop(ton::frozen_stakes(&v));
            }
            // an address that parses prints in raw form and parses back to itself
            if let Ok(a) = ton::parse_address("fuzz", &String::from_utf8_lossy(rest)) {
                assert_eq!(ton::parse_address("again", &ton::raw(&a)).unwrap(), a);
            }
        }
        _ => {
            let _ = bsc::decode_revert(rest);
            let _ = sonic::decode_revert(rest);
            // a MultiversX payload that parses re-serializes to itself and hashes the same
            if let Ok(t) = serde_json::from_slice::<mvx::FrontendTransaction>(rest) {
                let again: mvx::FrontendTransaction = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
                assert_eq!(again, t);
                assert_eq!(again.hash(), t.hash());
                drop(t.signing_bytes());
            }
            let text = String::from_utf8_lossy(rest);
            if let Ok(a) = mvx::parse_address(&text) {
                assert_eq!(mvx::parse_address(&mvx::to_bech32(&a)).unwrap(), a);
            }
            if let Ok(v) = mvx::decode_u128(Some(&*text)) {
                assert_eq!(mvx::from_be_bytes(&mvx::be_bytes(v)).unwrap(), v);
            }
        }
    }
});

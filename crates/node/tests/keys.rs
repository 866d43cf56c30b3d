//! `softstake keys generate|list` on a real SoftHSM2 token, and the configuration's
//! `pkcs11:` signers: keys generated inside the token, their addresses printed, labels
//! unique, chains whose adapters cannot use them refused, and a PKCS#11 signer without a
//! `[pkcs11]` module refused when the config loads.
#![cfg(feature = "pkcs11")]

use std::path::Path;
use std::process::{Command, Output};

use softstake_adapters::pkcs11::{softhsm_token, HsmKey, Pkcs11Uri};

const PIN_ENV: &str = "SOFTSTAKE_TEST_KEYS_PIN";
const TOKENS: &str = softstake_node::config::EMBEDDED_TOKENS;

fn write_config(dir: &Path, extra: &str) {
    std::fs::write(dir.join("tokens.toml"), TOKENS).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!("network = \"testnet\"\ntokens = \"tokens.toml\"\ndata_dir = \"data\"\n{extra}"),
    )
    .unwrap();
}

fn cli(dir: &Path, conf: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softstake"))
        .current_dir(dir)
        .args(["--config", "config.toml"])
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .env(PIN_ENV, "keys-pin-1234")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn success_keys_generate_and_list_in_softhsm() {
    let dir = tempfile::tempdir().unwrap();
    let (settings, conf) = softhsm_token(dir.path(), "treasury", "keys-pin-1234", PIN_ENV).unwrap();
    write_config(
        dir.path(),
        &format!(
            "[pkcs11]\nmodule = \"{}\"\npin_env = \"{PIN_ENV}\"\n",
            settings.module.display()
        ),
    );
    let gen = |chain: &str, label: &str| {
        cli(
            dir.path(),
            &conf,
            &[
                "keys",
                "generate",
                "--chain",
                chain,
                "--hsm-token",
                "treasury",
                "--label",
                label,
            ],
        )
    };
    let bnb = gen("bsc", "bnb-1");
    let (out, err) = text(&bnb);
    assert!(bnb.status.success(), "{err}");
    assert!(out.contains("generated secp256k1 key \"bnb-1\""), "{out}");
    assert!(out.contains("address (bsc): 0x"), "{out}");
    assert!(out.contains("signer = \"pkcs11:token=treasury;object=bnb-1\""), "{out}");
    let sol = gen("solana", "sol-1");
    assert!(sol.status.success(), "{}", text(&sol).1);
    // the printed address is the key's, read back from the token
    let key = HsmKey::open(
        &settings,
        &Pkcs11Uri::parse("pkcs11:token=treasury;object=bnb-1").unwrap(),
    )
    .unwrap();
    assert!(out.contains(&key.address("bsc", "cosmos").unwrap()), "{out}");

    let again = gen("bsc", "bnb-1");
    assert!(!again.status.success());
    assert!(
        text(&again).1.contains("already has a key labelled \"bnb-1\""),
        "{}",
        text(&again).1
    );
    let near = gen("near", "near-1");
    let (out, err) = text(&near);
    assert!(near.status.success(), "{err}");
    assert!(
        out.contains("generated ed25519 key \"near-1\"") && out.contains("access key") && out.contains("ed25519:"),
        "{out}"
    );
    // Sui: 0x + hex of Blake2b-256(0x00 ‖ key), the address the Sui adapter derives
    let sui = gen("sui", "sui-1");
    let (out, err) = text(&sui);
    assert!(sui.status.success(), "{err}");
    let key = HsmKey::open(
        &settings,
        &Pkcs11Uri::parse("pkcs11:token=treasury;object=sui-1").unwrap(),
    )
    .unwrap();
    let address = key.address("sui", "").unwrap();
    assert!(address.starts_with("0x") && address.len() == 66, "{address}");
    assert!(out.contains(&format!("address (sui): {address}")), "{out}");
    // Aptos: 0x + hex of SHA3-256(key ‖ 0x00), the address the Aptos adapter derives
    let apt = gen("aptos", "apt-1");
    let (out, err) = text(&apt);
    assert!(apt.status.success(), "{err}");
    assert!(out.contains("address (aptos): 0x"), "{out}");
    // Algorand: base32 of the key ‖ the last 4 bytes of its SHA-512/256 (58 characters)
    let algo = gen("algorand", "algo-1");
    let (out, err) = text(&algo);
    assert!(algo.status.success(), "{err}");
    let key = HsmKey::open(
        &settings,
        &Pkcs11Uri::parse("pkcs11:token=treasury;object=algo-1").unwrap(),
    )
    .unwrap();
    let address = key.address("algorand", "").unwrap();
    assert_eq!(address.len(), 58, "{address}");
    assert!(out.contains(&format!("address (algorand): {address}")), "{out}");
    // TON: the wallet v4r2 of the key (subwallet 698983191), raw form
    let ton = gen("ton", "ton-1");
    let (out, err) = text(&ton);
    assert!(ton.status.success(), "{err}");
    let key = HsmKey::open(
        &settings,
        &Pkcs11Uri::parse("pkcs11:token=treasury;object=ton-1").unwrap(),
    )
    .unwrap();
    let address = key.address("ton", "").unwrap();
    assert!(address.starts_with("0:") && address.len() == 66, "{address}");
    assert!(out.contains(&format!("address (ton): {address}")), "{out}");
    let unknown = gen("polkadot", "dot-1");
    assert!(!unknown.status.success());
    assert!(text(&unknown).1.contains("expected one of"), "{}", text(&unknown).1);

    // Cardano: the payment key and its stake keys, generated together
    let ada = |stake_keys: &str| {
        cli(
            dir.path(),
            &conf,
            &[
                "keys",
                "generate",
                "--chain",
                "cardano",
                "--hsm-token",
                "treasury",
                "--label",
                "ada-1",
                "--stake-keys",
                stake_keys,
            ],
        )
    };
    let zero = ada("0");
    assert!(
        !zero.status.success() && text(&zero).1.contains("--stake-keys 0"),
        "{}",
        text(&zero).1
    );
    let two = ada("2");
    let (out, err) = text(&two);
    assert!(two.status.success(), "{err}");
    for want in [
        "address (cardano): addr1v",
        "address (cardano testnets): addr_test1v",
        "generated stake key \"ada-1-stake-0\"",
        "generated stake key \"ada-1-stake-1\"",
        "stake_keys = 2",
    ] {
        assert!(out.contains(want), "{want} missing from: {out}");
    }

    let list = cli(dir.path(), &conf, &["keys", "list", "--hsm-token", "treasury"]);
    let (out, err) = text(&list);
    assert!(list.status.success(), "{err}");
    for want in [
        "bnb-1",
        "sol-1",
        "secp256k1",
        "ed25519",
        "cosmos1",
        "near-1",
        "ada-1-stake-1",
        "addr1v",
        "sui-1",
        "sui: 0x",
        "iota: 0x",
        "aptos: 0x",
        "apt-1",
        "algo-1",
        "algorand: ",
        "ton: 0:",
        "10 keys in token \"treasury\"",
    ] {
        assert!(out.contains(want), "{want} missing from: {out}");
    }
}

#[test]
fn fail_pkcs11_signer_needs_its_module_and_keys_need_pkcs11() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("none.conf");
    write_config(
        dir.path(),
        "[chains.BNB]\nadapter = \"bsc\"\nrpc_url = \"http://127.0.0.1:1\"\nsigner = \"pkcs11:token=treasury;object=bnb-1\"\n[chains.BNB.evm]\nchain_id = 97\n",
    );
    let o = cli(dir.path(), &conf, &["status"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("add a [pkcs11] section"), "{}", text(&o).1);
    write_config(dir.path(), "");
    let o = cli(dir.path(), &conf, &["keys", "list", "--hsm-token", "treasury"]);
    assert!(!o.status.success());
    assert!(text(&o).1.contains("no [pkcs11] section"), "{}", text(&o).1);
}

//! The stateful daily-cycle commands on the store: init, accounts import, balances
//! ingest, rewards record, close-day, distribute, history, apr.

use std::path::Path;

use anyhow::{bail, Context, Result};
use comfy_table::Cell;

use softstake_core::{Day, TokenRegistry};
use softstake_store::{RecordOutcome, Store, StoreError};

use crate::clock::Clock;
use crate::config::NetworkConfig;
use crate::input::{read_accounts, read_balances, read_rewards};
use crate::progress;
use crate::report::{self, apr_pct, num, SummaryRow};

/// Opens (and migrates) the store at `url`, naming it in errors.
pub async fn open_store(url: &str) -> Result<Store> {
    Store::open(url)
        .await
        .with_context(|| format!("opening the store at {}", redact_url(url)))
}

/// Hides a password in a database URL for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `softstake init`.
pub async fn init(cfg: &NetworkConfig, db_url: &str) -> Result<()> {
    let store = open_store(db_url).await?;
    println!(
        "store ready at {} ({:?}); network {} with {} tokens from {}",
        redact_url(db_url),
        store.backend(),
        cfg.network,
        cfg.registry.len(),
        cfg.origin
    );
    Ok(())
}

/// `softstake accounts import --file F`.
pub async fn accounts_import(store: &Store, file: &Path) -> Result<()> {
    let pb = progress::spinner(&format!("reading {}", file.display()));
    let accounts = read_accounts(file)?;
    pb.finish_and_clear();
    let n = store.upsert_accounts(&accounts).await?;
    println!(
        "imported {} accounts from {} ({n} rows written)",
        accounts.len(),
        file.display()
    );
    Ok(())
}

/// `softstake balances ingest --file F`.
pub async fn balances_ingest(store: &Store, registry: &TokenRegistry, file: &Path) -> Result<()> {
    let pb = progress::spinner(&format!("reading {}", file.display()));
    let events = read_balances(file, registry)?;
    pb.finish_and_clear();
    let pb = progress::spinner(&format!("storing {} balance events", events.len()));
    let rep = store
        .ingest_events(&events)
        .await
        .with_context(|| format!("ingesting {} (nothing was stored)", file.display()))?;
    pb.finish_and_clear();
    println!(
        "ingested {}: {} new events, {} already stored",
        file.display(),
        rep.inserted,
        rep.duplicates
    );
    Ok(())
}

/// `softstake rewards record --file F [--source S]`.
pub async fn rewards_record(
    store: &Store,
    registry: &TokenRegistry,
    file: &Path,
    source: &str,
    clock: &dyn Clock,
) -> Result<()> {
    let rows = read_rewards(file, registry)?;
    let to_store: Vec<_> = rows
        .iter()
        .map(|r| (r.token.clone(), r.day, source.to_string(), r.amount))
        .collect();
    let outcomes = store
        .record_rewards(&to_store, clock.now())
        .await
        .with_context(|| format!("recording {} (nothing was recorded)", file.display()))?;
    let new = outcomes.iter().filter(|o| **o == RecordOutcome::Recorded).count();
    println!(
        "recorded {new} realized rewards from {} (source {source:?}); {} already recorded",
        file.display(),
        outcomes.len() - new
    );
    Ok(())
}

/// Tokens to act on: one, or all in the registry.
fn tokens<'a>(registry: &'a TokenRegistry, token: Option<&'a str>) -> Result<Vec<&'a str>> {
    match token {
        Some(t) => {
            registry.get(t)?;
            Ok(vec![t])
        }
        None => Ok(registry.symbols().collect()),
    }
}

/// `softstake close-day --day D [--token T]`.
pub async fn close_day(
    store: &Store,
    cfg: &NetworkConfig,
    day: Day,
    token: Option<&str>,
    clock: &dyn Clock,
) -> Result<()> {
    let now = clock.now();
    if day.end() > now {
        bail!("{day} has not ended yet (now {now}); a day closes after 24:00 UTC");
    }
    let list = tokens(&cfg.registry, token)?;
    let pb = progress::bar(list.len() as u64, "closing");
    let mut t = report::table(&[
        "token",
        "day",
        "accounts",
        "eligible",
        "Σ eligible",
        "custodial",
        "note",
    ]);
    for sym in list {
        pb.set_message(sym.to_string());
        let out = store
            .close_day(&cfg.registry, sym, day, now, cfg.max_accounts_per_close)
            .await
            .with_context(|| format!("closing {sym} {day}"))?;
        let c = cfg.registry.get(sym)?;
        t.add_row(vec![
            Cell::new(sym),
            Cell::new(day.to_string()),
            num(out.accounts),
            num(out.eligible_accounts),
            num(c.format_amount(out.total_eligible)),
            num(c.format_amount(out.total_balance)),
            Cell::new(if out.already_closed { "already closed" } else { "closed" }),
        ]);
        pb.inc(1);
    }
    pb.finish_and_clear();
    println!("{t}");
    Ok(())
}

/// `softstake distribute --day D [--token T]`. Without `--token`, every token closed for
/// the day that is not yet paid; days already paid are reported, never paid again.
pub async fn distribute(
    store: &Store,
    cfg: &NetworkConfig,
    day: Day,
    token: Option<&str>,
    clock: &dyn Clock,
) -> Result<()> {
    let now = clock.now();
    let mut rows = Vec::new();
    let mut already = Vec::new();
    for sym in tokens(&cfg.registry, token)? {
        let c = cfg.registry.get(sym)?;
        match store.distribute(c, day, now).await {
            Ok(s) => {
                let closed = store.closed_day(sym, day).await?.map(|c| c.accounts).unwrap_or(0);
                rows.push(SummaryRow::from_distribution(c, &s, closed, report::Precision::Exact));
            }
            Err(StoreError::NotClosed { .. }) if token.is_none() => continue,
            Err(e @ StoreError::AlreadyDistributed { .. }) if token.is_none() => already.push(e.to_string()),
            Err(e) => return Err(e).with_context(|| format!("distributing {sym} {day}")),
        }
    }
    if rows.is_empty() && already.is_empty() {
        bail!("no token is closed for {day}: run close-day first");
    }
    if !rows.is_empty() {
        println!("{}", report::summary_table(&rows));
    }
    for a in &already {
        println!("{a}");
    }
    if rows.is_empty() {
        bail!("nothing to pay for {day}: every closed token was already distributed");
    }
    Ok(())
}

/// `softstake history --account A [--token T] [--limit N]`.
pub async fn history(
    store: &Store,
    registry: &TokenRegistry,
    account: &str,
    token: Option<&str>,
    limit: u32,
) -> Result<()> {
    if store.account(account).await?.is_none() {
        bail!("unknown account {account:?}");
    }
    let rows = store.history(account, token, None, limit, 0).await?;
    let mut t = report::table(&["day", "token", "average balance", "eligible", "reward", "paid at"]);
    for r in &rows {
        let c = registry.get(&r.token)?;
        t.add_row(vec![
            Cell::new(r.day.to_string()),
            Cell::new(&r.token),
            num(c.format_amount(r.average)),
            num(c.format_amount(r.eligible)),
            num(c.format_amount(r.reward)),
            Cell::new(r.paid_at.to_rfc3339()),
        ]);
    }
    println!(
        "distribution history of {account} ({} rows, newest first)\n{t}",
        rows.len()
    );
    Ok(())
}

/// `softstake apr`.
pub async fn apr(store: &Store) -> Result<()> {
    let rows = store.latest_apr().await?;
    if rows.is_empty() {
        println!("no distribution yet: APR is published from realized rewards after the first paid day");
        return Ok(());
    }
    let mut t = report::table(&["token", "from day", "APR (estimate)"]);
    for r in rows {
        t.add_row(vec![Cell::new(&r.token), Cell::new(r.day.to_string()), num(apr_pct(r.apr))]);
    }
    println!("{t}");
    Ok(())
}

/// The lower-case hex SHA-256 of an API bearer token (what the config stores).
pub fn hash_token(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// `softstake api-key create --account A`: a random key and secret (256 bits each) for
/// the Binance-compatible REST API, printed once.
pub async fn api_key_create(store: &Store, account: &str, clock: &dyn Clock) -> Result<()> {
    use rand::RngCore;
    if store.account(account).await?.is_none() {
        bail!("unknown account {account:?}: import or activate it first");
    }
    let mut bytes = [0u8; 64];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = softstake_store::ApiKey {
        api_key: hex::encode(&bytes[..32]),
        secret: hex::encode(&bytes[32..]),
        account_id: account.to_string(),
    };
    store.create_api_key(&key, clock.now()).await?;
    println!(
        "api_key {}\nsecret  {}\n(the secret is shown once; the client signs requests with it)",
        key.api_key, key.secret
    );
    Ok(())
}

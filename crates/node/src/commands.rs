//! The stateful daily-cycle commands on the store: init, accounts import, balances
//! ingest, rewards record, close-day, distribute, history, apr.

use std::path::Path;

use anyhow::{bail, Context, Result};
use comfy_table::Cell;

use softstake_core::{Day, TokenRegistry};
use softstake_store::{RecordOutcome, Store, StoreError};

use crate::clock::Clock;
use crate::config::NetworkConfig;
use crate::input::{parse_account, read_rewards, BalancesReader, CsvFile, ACCOUNTS_COLUMNS};
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

/// Events per ingest batch (memory: one batch, about 150 bytes an event).
pub const INGEST_BATCH: usize = 50_000;
/// Accounts per import batch.
const ACCOUNTS_BATCH: usize = 50_000;

fn file_len(file: &Path) -> u64 {
    std::fs::metadata(file).map(|m| m.len()).unwrap_or(0)
}

/// `softstake accounts import --file F`: streamed in batches into one transaction; a bad
/// record or an id given twice imports nothing.
pub async fn accounts_import(store: &Store, file: &Path) -> Result<()> {
    let pb = progress::bytes(file_len(file), "accounts");
    let mut import = store.begin_accounts_import().await?;
    let mut csv = CsvFile::open(file, &ACCOUNTS_COLUMNS, &[])?;
    let (mut batch, mut lines) = (Vec::with_capacity(ACCOUNTS_BATCH), Vec::with_capacity(ACCOUNTS_BATCH));
    let mut done = false;
    while !done {
        match csv.next_record()? {
            Some((p, f)) => {
                batch.push(parse_account(&p, &f)?);
                lines.push(p.line);
            }
            None => done = true,
        }
        if batch.len() == ACCOUNTS_BATCH || (done && !batch.is_empty()) {
            import
                .push(&batch, &lines)
                .await
                .with_context(|| format!("importing {}", file.display()))?;
            batch.clear();
            lines.clear();
            pb.set_position(csv.bytes_read());
        }
    }
    let n = import
        .commit()
        .await
        .with_context(|| format!("importing {} (nothing was imported)", file.display()))?;
    pb.finish_and_clear();
    println!("imported {n} accounts from {}", file.display());
    Ok(())
}

/// `softstake balances ingest --file F`: streamed in batches of [`INGEST_BATCH`] into one
/// transaction; an error anywhere stores nothing. On PostgreSQL it is a bulk load (new
/// token-days filled unindexed, then indexed and attached); if the file holds the same
/// key twice for a new token-day, it is ingested again row by row, which takes exact
/// duplicates and names the line of a conflict.
pub async fn balances_ingest(store: &Store, registry: &TokenRegistry, file: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    let (rep, events) = match ingest_file(store, registry, file, true).await {
        Err(e) if matches!(e.downcast_ref::<StoreError>(), Some(StoreError::BulkDuplicates { .. })) => {
            eprintln!("note: {e:#}; ingesting {} again row by row", file.display());
            ingest_file(store, registry, file, false).await?
        }
        r => r?,
    };
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "ingested {}: {} new events, {} already stored ({:.0} events/s)",
        file.display(),
        rep.inserted,
        rep.duplicates,
        events as f64 / secs
    );
    Ok(())
}

/// One pass over the file: parsed on a blocking thread while the store writes the previous
/// batch (a queue of two batches bounds the memory).
async fn ingest_file(
    store: &Store,
    registry: &TokenRegistry,
    file: &Path,
    bulk: bool,
) -> Result<(softstake_store::IngestReport, u64)> {
    let pb = progress::bytes(file_len(file), "ingesting");
    // Fail on the header before opening a transaction.
    BalancesReader::open(file, registry)?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(Vec<softstake_store::IngestEvent>, u64)>>(2);
    let (path, reg) = (file.to_path_buf(), registry.clone());
    let parser = tokio::task::spawn_blocking(move || {
        let mut reader = match BalancesReader::open(&path, &reg) {
            Ok(r) => r,
            Err(e) => return drop(tx.blocking_send(Err(e.into()))),
        };
        loop {
            let next = reader
                .next_batch(INGEST_BATCH)
                .map(|b| b.map(|b| (b, reader.bytes_read())));
            let item = match next {
                Ok(Some(b)) => Ok(b),
                Ok(None) => return,
                Err(e) => Err(e.into()),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                return;
            }
        }
    });
    let mut ingest = if bulk {
        store.begin_bulk_ingest().await?
    } else {
        store.begin_ingest().await?
    };
    let mut events = 0u64;
    let located = |e: StoreError| match e.line() {
        Some(l) => anyhow::anyhow!("{}:{l}: {e} (nothing was stored)", file.display()),
        None => anyhow::Error::new(e).context(format!("ingesting {} (nothing was stored)", file.display())),
    };
    while let Some(item) = rx.recv().await {
        let (batch, read) = item?;
        events += batch.len() as u64;
        ingest.push(&batch).await.map_err(located)?;
        pb.set_position(read);
        pb.set_message(format!("{events} events"));
    }
    parser.await.context("the CSV parser thread")?;
    pb.set_message("indexing and committing");
    let rep = ingest.commit().await.map_err(located)?;
    pb.finish_and_clear();
    Ok((rep, events))
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
        let out = under_lease(store, sym, "close-day", async |s| {
            Ok(s.close_day(&cfg.registry, sym, day, now, cfg.max_accounts_per_close)
                .await?)
        })
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
        let paid = under_lease(store, sym, "distribute", async |s| Ok(s.distribute(c, day, now).await)).await?;
        match paid {
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
        t.add_row(vec![
            Cell::new(&r.token),
            Cell::new(r.day.to_string()),
            num(apr_pct(r.apr)),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// The lower-case hex SHA-256 of an API bearer token (what the config stores).
pub fn hash_token(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// `softstake api-key create --account A [--expires-in-days N]`: a random key and secret
/// (256 bits each) for the Binance-compatible REST API, printed once.
pub async fn api_key_create(
    store: &Store,
    account: &str,
    expires_in_days: Option<u32>,
    clock: &dyn Clock,
) -> Result<()> {
    use rand::RngCore;
    if store.account(account).await?.is_none() {
        bail!("unknown account {account:?}: import or activate it first");
    }
    let now = clock.now();
    let expires_at = expires_in_days
        .map(|d| now.checked_add_secs(i64::from(d) * 86_400))
        .transpose()?;
    let mut bytes = zeroize::Zeroizing::new([0u8; 64]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    let key = softstake_store::ApiKey {
        api_key: hex::encode(&bytes[..32]),
        secret: hex::encode(&bytes[32..]),
        account_id: account.to_string(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    store.create_api_key(&key, now).await?;
    println!(
        "api_key {}\nsecret  {}\nexpires {}\n(the secret is shown once; the client signs requests with it)",
        key.api_key,
        key.secret,
        expires_at.map_or_else(|| "never".to_string(), |t| t.to_string())
    );
    Ok(())
}

/// `softstake api-key list [--account A]`: keys with account, dates and state (active,
/// expired, revoked), never the secret.
pub async fn api_key_list(store: &Store, account: Option<&str>, limit: u32, clock: &dyn Clock) -> Result<()> {
    let now = clock.now();
    let keys = store.api_keys(account, limit).await?;
    let mut t = crate::report::table(&["api_key", "account", "created", "expires", "state"]);
    for k in &keys {
        let state = match (k.revoked_at, k.usable_at(now)) {
            (Some(at), _) => format!("revoked {at}"),
            (None, true) => "active".to_string(),
            (None, false) => "expired".to_string(),
        };
        t.add_row(vec![
            k.api_key.clone(),
            k.account_id.clone(),
            k.created_at.to_string(),
            k.expires_at.map_or_else(|| "never".to_string(), |e| e.to_string()),
            state,
        ]);
    }
    println!("{t}\n{} keys", keys.len());
    Ok(())
}

/// `softstake api-key revoke KEY`: its requests are refused from now on.
pub async fn api_key_revoke(store: &Store, api_key: &str, clock: &dyn Clock) -> Result<()> {
    let k = store.revoke_api_key(api_key, clock.now()).await?;
    println!(
        "revoked {} (account {}) at {}",
        k.api_key,
        k.account_id,
        k.revoked_at.map(|t| t.to_string()).unwrap_or_default()
    );
    Ok(())
}

/// Writes one archived day as `balances.csv` (`ts,account_id,token,balance`, token units:
/// what `allocate --balances` reads) to a temporary file, published with its SHA-256
/// (`sha256sum -c` format) when complete.
struct ArchiveFile<'r> {
    registry: &'r TokenRegistry,
    path: std::path::PathBuf,
    tmp: Option<tempfile::NamedTempFile>,
    w: Option<csv::Writer<HashingWriter<std::io::BufWriter<std::fs::File>>>>,
    sha256: String,
}

/// A writer that hashes what passes through it.
struct HashingWriter<W> {
    inner: W,
    hash: sha2::Sha256,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<'r> ArchiveFile<'r> {
    fn create(registry: &'r TokenRegistry, path: std::path::PathBuf) -> Result<Self> {
        if path.exists() {
            bail!(
                "{} already exists: move it away before archiving that day again",
                path.display()
            );
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let tmp =
            tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a file in {}", dir.display()))?;
        let file = tmp.reopen()?;
        let mut w = csv::Writer::from_writer(HashingWriter {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            hash: sha2::Sha256::default(),
        });
        w.write_record(crate::input::BALANCES_COLUMNS)?;
        Ok(ArchiveFile {
            registry,
            path,
            tmp: Some(tmp),
            w: Some(w),
            sha256: String::new(),
        })
    }
}

impl softstake_store::ArchiveSink for ArchiveFile<'_> {
    fn event(&mut self, e: &softstake_core::twab::BalanceEvent) -> std::io::Result<()> {
        let cfg = self
            .registry
            .get(&e.token)
            .map_err(|err| std::io::Error::other(format!("{err}: cannot write its events in token units")))?;
        let w = self
            .w
            .as_mut()
            .ok_or_else(|| std::io::Error::other("archive file already finished"))?;
        w.write_record([
            e.ts.to_rfc3339(),
            e.account_id.clone(),
            e.token.clone(),
            cfg.format_amount(e.balance),
        ])
        .map_err(std::io::Error::other)
    }

    fn finish(&mut self, _events: u64) -> std::io::Result<()> {
        use sha2::Digest;
        use std::io::Write;
        let w = self
            .w
            .take()
            .ok_or_else(|| std::io::Error::other("archive file already finished"))?;
        let mut hw = w.into_inner().map_err(|e| std::io::Error::other(e.to_string()))?;
        hw.flush()?;
        hw.inner.get_ref().sync_all()?;
        self.sha256 = hex::encode(hw.hash.finalize());
        let tmp = self
            .tmp
            .take()
            .ok_or_else(|| std::io::Error::other("archive file already finished"))?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut sum = std::fs::File::create(self.path.with_extension("csv.sha256"))?;
        writeln!(sum, "{}  {name}", self.sha256)?;
        sum.sync_all()?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// `softstake archive --before D --out DIR [--keep]`: exports each closed day's events
/// before `D` to `DIR/balance_events-YYYY-MM-DD.csv` (with a `.sha256`), then drops them
/// from the store (the day's partition on PostgreSQL) unless `--keep`.
pub async fn archive(
    store: &Store,
    registry: &TokenRegistry,
    before: Day,
    out: &Path,
    keep: bool,
    clock: &dyn Clock,
) -> Result<()> {
    let days = store.archivable_days(before).await?;
    if days.is_empty() {
        println!("no balance events before {before}: nothing to archive");
        return Ok(());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let total: u64 = days.iter().map(|d| d.events).sum();
    let pb = progress::bar(total, "archiving");
    let mut t = report::table(&["day", "events", "tokens", "file", "sha256", "store"]);
    for d in &days {
        pb.set_message(d.day.to_string());
        let path = out.join(format!("balance_events-{}.csv", d.day));
        let mut file = ArchiveFile::create(registry, path.clone())?;
        let n = store
            .archive_day(d.day, keep, &mut file, clock.now())
            .await
            .with_context(|| format!("archiving {} (nothing was dropped for it)", d.day))?;
        pb.inc(n);
        t.add_row(vec![
            Cell::new(d.day.to_string()),
            num(n),
            Cell::new(d.tokens.join(" ")),
            Cell::new(path.display().to_string()),
            Cell::new(&file.sha256[..16]),
            Cell::new(match (keep, store.archive_drops_partitions()) {
                (true, _) => "kept",
                (false, true) => "partition dropped",
                (false, false) => "deleted",
            }),
        ]);
    }
    pb.finish_and_clear();
    println!("{t}");
    Ok(())
}

/// [`softstake_orchestrator::lease::under_lease`] for the CLI's `anyhow` commands: runs
/// `f` on `token` under its lease (refused, naming the holder, while a daemon leads it).
///
/// # Errors
/// The lease is held elsewhere; `f`'s error; a store error releasing the lease.
pub(crate) async fn under_lease<T>(
    store: &Store,
    token: &str,
    command: &str,
    f: impl AsyncFnOnce(&Store) -> Result<T>,
) -> Result<T> {
    crate::lease::under_lease(store, token, command, f).await
}

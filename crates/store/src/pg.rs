//! PostgreSQL's binary formats, which the production path speaks directly: `NUMERIC`
//! values (amounts are `NUMERIC(39,0)`: every `u128` fits, sorts and sums exactly) and the
//! `COPY … (FORMAT binary)` stream used to load and unload at scale.
//!
//! Sources: PostgreSQL's `numeric_send`/`numeric_recv` (src/backend/utils/adt/numeric.c)
//! and "COPY — Binary Format" (postgresql.org/docs/current/sql-copy.html).
//!
//! ```text
//!  NUMERIC   i16 ndigits │ i16 weight │ u16 sign │ u16 dscale │ ndigits × i16 (base 10 000)
//!            value = Σ digit[i] · 10 000^(weight − i)
//!  COPY      "PGCOPY\n\xff\r\n\0" │ i32 flags │ i32 ext │ tuples … │ i16 −1
//!  tuple     i16 nfields │ per field: i32 len (−1 = NULL) │ len bytes
//! ```

use std::ops::Range;

use futures_util::TryStreamExt;

use crate::error::StoreError;

/// `NUMERIC` sign word of a positive number (or zero).
const NUMERIC_POS: u16 = 0x0000;
/// `NUMERIC` sign word of a negative number.
const NUMERIC_NEG: u16 = 0x4000;
/// Base of `NUMERIC` digits.
const NBASE: u128 = 10_000;
/// The binary COPY signature.
const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// Appends `v` in `NUMERIC` binary form (scale 0, trailing zero digit groups stripped as
/// PostgreSQL stores them).
pub(crate) fn numeric_encode(v: u128, out: &mut Vec<u8>) {
    let mut groups = [0u16; 10]; // u128::MAX has 39 decimal digits: 10 groups of 4.
    let mut n = 0;
    let mut x = v;
    while x > 0 {
        groups[n] = (x % NBASE) as u16;
        x /= NBASE;
        n += 1;
    }
    // groups[0] is the least significant; weight counts from the most significant.
    let weight = n.saturating_sub(1) as i16;
    let lowest_nonzero = groups[..n].iter().position(|g| *g != 0).unwrap_or(n);
    let ndigits = (n - lowest_nonzero) as i16;
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&NUMERIC_POS.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    for g in groups[lowest_nonzero..n].iter().rev() {
        out.extend_from_slice(&g.to_be_bytes());
    }
}

/// Reads a `NUMERIC` binary value as a non-negative integer of base units.
///
/// Errors (a message): a malformed value, NaN or infinity, a negative number, a nonzero
/// fractional part, or a value above `u128::MAX`.
pub(crate) fn numeric_decode(b: &[u8]) -> Result<u128, String> {
    if b.len() < 8 {
        return Err(format!("NUMERIC of {} bytes, expected at least 8", b.len()));
    }
    let ndigits = i16::from_be_bytes([b[0], b[1]]);
    let weight = i16::from_be_bytes([b[2], b[3]]);
    let sign = u16::from_be_bytes([b[4], b[5]]);
    if ndigits < 0 || b.len() != 8 + 2 * ndigits as usize {
        return Err(format!("NUMERIC with {ndigits} digit groups in {} bytes", b.len()));
    }
    match sign {
        NUMERIC_POS => {}
        NUMERIC_NEG => return Err("negative NUMERIC where base units are expected".into()),
        other => {
            return Err(format!(
                "NUMERIC special value (NaN or infinity, sign word {other:#06x})"
            ))
        }
    }
    if ndigits == 0 {
        return Ok(0);
    }
    let mut v: u128 = 0;
    for i in 0..ndigits as usize {
        let d = u16::from_be_bytes([b[8 + 2 * i], b[9 + 2 * i]]);
        if u128::from(d) >= NBASE {
            return Err(format!("NUMERIC digit group {d} ≥ 10000"));
        }
        let place = i32::from(weight) - i as i32;
        if place < 0 {
            if d != 0 {
                return Err("NUMERIC with a fractional part where base units are expected".into());
            }
            continue;
        }
        v = v
            .checked_mul(NBASE)
            .and_then(|x| x.checked_add(u128::from(d)))
            .ok_or("NUMERIC above u128::MAX")?;
    }
    // Trailing groups stripped by PostgreSQL: scale up to the units place.
    let last_place = i32::from(weight) - (ndigits as i32 - 1);
    for _ in 0..last_place.max(0) {
        v = v.checked_mul(NBASE).ok_or("NUMERIC above u128::MAX")?;
    }
    Ok(v)
}

/// Builds a binary `COPY … FROM STDIN (FORMAT binary)` stream in chunks.
#[derive(Debug)]
pub(crate) struct CopyWriter {
    buf: Vec<u8>,
    ncols: i16,
    rows: u64,
}

/// Size at which [`CopyWriter::is_full`] asks the caller to send the chunk.
pub(crate) const COPY_CHUNK_BYTES: usize = 1 << 20;

impl CopyWriter {
    /// A stream of rows of `ncols` columns; the header is in the first chunk.
    pub(crate) fn new(ncols: i16) -> CopyWriter {
        let mut buf = Vec::with_capacity(COPY_CHUNK_BYTES + 4096);
        buf.extend_from_slice(COPY_SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        CopyWriter { buf, ncols, rows: 0 }
    }

    /// Starts a row (then exactly `ncols` fields).
    pub(crate) fn row(&mut self) {
        self.buf.extend_from_slice(&self.ncols.to_be_bytes());
        self.rows += 1;
    }

    /// A `TEXT` field.
    pub(crate) fn text(&mut self, s: &str) {
        self.buf.extend_from_slice(&(s.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// A `BIGINT` field.
    pub(crate) fn int8(&mut self, v: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A `NUMERIC` field.
    pub(crate) fn numeric(&mut self, v: u128) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&0i32.to_be_bytes());
        numeric_encode(v, &mut self.buf);
        let len = (self.buf.len() - at - 4) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// A `NULL` field.
    pub(crate) fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// Rows written so far.
    #[cfg(test)]
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// True when the pending chunk should be sent.
    pub(crate) fn is_full(&self) -> bool {
        self.buf.len() >= COPY_CHUNK_BYTES
    }

    /// The pending bytes, leaving the writer empty for the next chunk.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.buf, Vec::with_capacity(COPY_CHUNK_BYTES + 4096))
    }

    /// The last chunk, with the trailer.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

/// Parses a binary `COPY … TO STDOUT (FORMAT binary)` stream fed in chunks of any size.
#[derive(Debug, Default)]
pub(crate) struct CopyReader {
    buf: Vec<u8>,
    pos: usize,
    header_done: bool,
    done: bool,
}

/// What [`CopyReader::next_row`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// A row; its fields are in the slice passed in (ranges into [`CopyReader::bytes`]).
    Row,
    /// More bytes are needed.
    NeedMore,
    /// The trailer: the stream is complete.
    End,
}

impl CopyReader {
    /// Appends a chunk received from the server.
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The buffered bytes the field ranges point into.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// True once the trailer was read.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Parses the next complete row into `fields` (a range per field, `None` for NULL).
    ///
    /// Errors (a message) on a bad signature or a malformed tuple.
    pub(crate) fn next_row(&mut self, fields: &mut Vec<Option<Range<usize>>>) -> Result<Next, String> {
        if self.done {
            return Ok(Next::End);
        }
        if !self.header_done {
            let b = &self.buf[self.pos..];
            if b.len() < 19 {
                return Ok(Next::NeedMore);
            }
            if &b[..11] != COPY_SIGNATURE {
                return Err("not a binary COPY stream (bad signature)".into());
            }
            let ext = i32::from_be_bytes([b[15], b[16], b[17], b[18]]);
            let ext = usize::try_from(ext).map_err(|_| "negative COPY header extension length")?;
            if b.len() < 19 + ext {
                return Ok(Next::NeedMore);
            }
            self.pos += 19 + ext;
            self.header_done = true;
        }
        let b = &self.buf[self.pos..];
        if b.len() < 2 {
            return Ok(Next::NeedMore);
        }
        let n = i16::from_be_bytes([b[0], b[1]]);
        if n == -1 {
            self.pos += 2;
            self.done = true;
            return Ok(Next::End);
        }
        let n = usize::try_from(n).map_err(|_| format!("COPY tuple with {n} fields"))?;
        fields.clear();
        let mut at = 2;
        for _ in 0..n {
            if b.len() < at + 4 {
                return Ok(Next::NeedMore);
            }
            let len = i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
            at += 4;
            if len == -1 {
                fields.push(None);
                continue;
            }
            let len = usize::try_from(len).map_err(|_| format!("COPY field of length {len}"))?;
            if b.len() < at + len {
                return Ok(Next::NeedMore);
            }
            fields.push(Some(self.pos + at..self.pos + at + len));
            at += len;
        }
        self.pos += at;
        Ok(Next::Row)
    }
}

/// Reads a `BIGINT` field.
pub(crate) fn int8(b: &[u8]) -> Result<i64, String> {
    let a: [u8; 8] = b.try_into().map_err(|_| format!("BIGINT of {} bytes", b.len()))?;
    Ok(i64::from_be_bytes(a))
}

/// Reads a `TEXT` field.
pub(crate) fn text(b: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(b).map_err(|e| format!("TEXT not UTF-8: {e}"))
}

/// Sends `rows` through one `COPY … FROM STDIN (FORMAT binary)` of `ncols` columns, in
/// chunks of about [`COPY_CHUNK_BYTES`]; returns the rows the server reports.
pub(crate) async fn copy_in<T>(
    c: &mut sqlx::PgConnection,
    statement: &str,
    ncols: i16,
    rows: &[T],
    mut write: impl FnMut(&mut CopyWriter, &T),
) -> Result<u64, sqlx::Error> {
    let mut copy = c.copy_in_raw(statement).await?;
    let mut w = CopyWriter::new(ncols);
    for r in rows {
        w.row();
        write(&mut w, r);
        if w.is_full() {
            copy.send(w.take()).await?;
        }
    }
    copy.send(w.finish()).await?;
    copy.finish().await
}

/// Runs `COPY (query) TO STDOUT (FORMAT binary)` and calls `row` with each row's bytes and
/// field ranges (`None` for NULL), streaming: memory is one chunk. Returns the rows read.
///
/// Errors: the server's, a malformed stream, or what `row` returns.
pub(crate) async fn copy_out(
    c: &mut sqlx::PgConnection,
    query: &str,
    mut row: impl FnMut(&[u8], &[Option<Range<usize>>]) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let statement = format!("COPY ({query}) TO STDOUT (FORMAT binary)");
    let mut stream = c.copy_out_raw(&statement).await?;
    let mut reader = CopyReader::default();
    let mut fields = Vec::new();
    let mut n = 0u64;
    let bad = |e: String| StoreError::corrupt("copy", e);
    while let Some(chunk) = stream.try_next().await? {
        reader.feed(&chunk);
        while reader.next_row(&mut fields).map_err(bad)? == Next::Row {
            row(reader.bytes(), &fields)?;
            n += 1;
        }
    }
    if !reader.is_done() {
        return Err(bad("COPY stream ended without its trailer".into()));
    }
    Ok(n)
}

/// Reads a `COPY (query) TO STDOUT (FORMAT binary)` stream in batches of parsed rows, for
/// callers that must do async work between batches (send them on, write elsewhere).
pub(crate) struct CopyRows<'c> {
    stream: futures_util::stream::BoxStream<'c, Result<bytes::Bytes, sqlx::Error>>,
    reader: CopyReader,
    fields: Vec<Option<Range<usize>>>,
    done: bool,
}

/// Streams the rows of `query` on a connection of its own from `pool`, in batches of up
/// to `max` rows parsed by `parse`, sending each (through `wrap`) on `tx` until the rows
/// end or the receiver is gone.
pub(crate) async fn stream_batches<T, U>(
    pool: &sqlx::PgPool,
    query: &str,
    max: usize,
    mut parse: impl FnMut(&[u8], &[Option<Range<usize>>]) -> Result<T, StoreError>,
    tx: &tokio::sync::mpsc::Sender<U>,
    wrap: impl Fn(Vec<T>) -> U,
) -> Result<(), StoreError> {
    let mut c = pool.acquire().await?;
    let mut rows = CopyRows::start(&mut c, query).await?;
    loop {
        let batch = rows.next_batch(max, &mut parse).await?;
        if batch.is_empty() || tx.send(wrap(batch)).await.is_err() {
            return Ok(());
        }
    }
}

impl std::fmt::Debug for CopyRows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyRows").field("done", &self.done).finish()
    }
}

impl<'c> CopyRows<'c> {
    /// Starts the COPY on `c`.
    pub(crate) async fn start(c: &'c mut sqlx::PgConnection, query: &str) -> Result<CopyRows<'c>, StoreError> {
        let statement = format!("COPY ({query}) TO STDOUT (FORMAT binary)");
        let stream = c.copy_out_raw(&statement).await?;
        Ok(CopyRows {
            stream,
            reader: CopyReader::default(),
            fields: Vec::new(),
            done: false,
        })
    }

    /// Up to `max` rows parsed by `parse`; an empty batch at the end of the stream.
    pub(crate) async fn next_batch<T>(
        &mut self,
        max: usize,
        mut parse: impl FnMut(&[u8], &[Option<Range<usize>>]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let bad = |e: String| StoreError::corrupt("copy", e);
        let mut out = Vec::with_capacity(max.min(1 << 16));
        while out.len() < max && !self.done {
            match self.reader.next_row(&mut self.fields).map_err(bad)? {
                Next::Row => out.push(parse(self.reader.bytes(), &self.fields)?),
                Next::End => self.done = true,
                Next::NeedMore => match self.stream.try_next().await? {
                    Some(chunk) => self.reader.feed(&chunk),
                    None => return Err(bad("COPY stream ended without its trailer".into())),
                },
            }
        }
        if self.done {
            // Drain the stream so the connection is left ready.
            while self.stream.try_next().await?.is_some() {}
        }
        Ok(out)
    }
}

/// A field that must not be NULL.
pub(crate) fn field<'a>(
    bytes: &'a [u8],
    fields: &[Option<Range<usize>>],
    i: usize,
    what: &str,
) -> Result<&'a [u8], StoreError> {
    fields
        .get(i)
        .cloned()
        .flatten()
        .map(|r| &bytes[r])
        .ok_or_else(|| StoreError::corrupt("copy", format!("{what}: NULL or missing")))
}

/// A `'…'` SQL string literal of `s` (quotes doubled): for the few values inlined into a
/// `COPY (query)`, which takes no bind parameters. Callers pass token symbols
/// (upper-case letters and digits) and days.
pub(crate) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: u128) -> u128 {
        let mut b = Vec::new();
        numeric_encode(v, &mut b);
        numeric_decode(&b).unwrap()
    }

    #[test]
    fn success_numeric_round_trips_edges() {
        for v in [
            0,
            1,
            9_999,
            10_000,
            10_001,
            100_000_000,
            1_234_567_890_123,
            u128::MAX,
            u128::MAX - 1,
            10u128.pow(38),
        ] {
            assert_eq!(round_trip(v), v, "{v}");
        }
    }

    #[test]
    fn success_numeric_layout_matches_postgres() {
        // 10 000 = one group "1" at weight 1 (the zero group is stripped).
        let mut b = Vec::new();
        numeric_encode(10_000, &mut b);
        assert_eq!(b, [0, 1, 0, 1, 0, 0, 0, 0, 0, 1]);
        // Zero: no digits.
        b.clear();
        numeric_encode(0, &mut b);
        assert_eq!(b, [0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn success_numeric_reads_zero_fraction_and_scale() {
        // 12.0000 with dscale 4: digits [12, 0], weight 0.
        let b = [0, 2, 0, 0, 0, 0, 0, 4, 0, 12, 0, 0];
        assert_eq!(numeric_decode(&b).unwrap(), 12);
    }

    #[test]
    fn fail_numeric_negative_fraction_nan_overflow() {
        assert!(numeric_decode(&[0, 1, 0, 0, 0x40, 0, 0, 0, 0, 5])
            .unwrap_err()
            .contains("negative"));
        assert!(numeric_decode(&[0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 5])
            .unwrap_err()
            .contains("fractional"));
        // NaN is sent with no digits and sign word 0xC000: never read as zero.
        assert!(numeric_decode(&[0, 0, 0, 0, 0xC0, 0, 0, 0])
            .unwrap_err()
            .contains("NaN"));
        // 10 groups of 9999 at weight 10: 10^44 − 1 > u128::MAX.
        let mut b = vec![0, 11, 0, 10, 0, 0, 0, 0];
        for _ in 0..11 {
            b.extend_from_slice(&9_999u16.to_be_bytes());
        }
        assert!(numeric_decode(&b).unwrap_err().contains("above u128::MAX"));
    }

    #[test]
    fn success_copy_stream_round_trips_in_any_chunking() {
        let mut w = CopyWriter::new(3);
        for i in 0..50i64 {
            w.row();
            w.text(&format!("acct-{i}"));
            w.int8(i * 1_000);
            if i % 7 == 0 {
                w.null();
            } else {
                w.numeric(i as u128 * 10u128.pow(30));
            }
        }
        assert_eq!(w.rows(), 50);
        let bytes = w.finish();
        for chunk in [1, 3, 17, 4096] {
            let mut r = CopyReader::default();
            let mut fields = Vec::new();
            let mut seen = 0i64;
            for part in bytes.chunks(chunk) {
                r.feed(part);
                while r.next_row(&mut fields).unwrap() == Next::Row {
                    let b = r.bytes();
                    assert_eq!(text(&b[fields[0].clone().unwrap()]).unwrap(), format!("acct-{seen}"));
                    assert_eq!(int8(&b[fields[1].clone().unwrap()]).unwrap(), seen * 1_000);
                    match &fields[2] {
                        None => assert_eq!(seen % 7, 0),
                        Some(f) => assert_eq!(numeric_decode(&b[f.clone()]).unwrap(), seen as u128 * 10u128.pow(30)),
                    }
                    seen += 1;
                }
            }
            assert!(r.is_done(), "chunk {chunk}");
            assert_eq!(seen, 50);
        }
    }

    #[test]
    fn fail_copy_bad_signature() {
        let mut r = CopyReader::default();
        r.feed(b"PGCOPX\n\xff\r\n\0\0\0\0\0\0\0\0\0");
        assert!(r.next_row(&mut Vec::new()).is_err());
    }
}

//! Small helpers over sqlx's `Any` driver: typed values for batched inserts, and
//! decoding of amounts, days and timestamps with their invariants checked on read.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use softstake_core::{Amount, Day, Timestamp};

use crate::error::{Result, StoreError};

/// One value of a batched insert.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// TEXT.
    T(String),
    /// BIGINT.
    I(i64),
    /// NULL BIGINT.
    NullI,
    /// NULL TEXT.
    NullT,
}

/// Largest number of bind parameters per statement (SQLite allows 32 766, PostgreSQL
/// 65 535).
const MAX_PARAMS: usize = 30_000;
/// Largest number of rows per statement.
const MAX_ROWS: usize = 1_000;

/// Inserts `rows` with `head` (`INSERT INTO t (a, b)`) and `tail` (`ON CONFLICT …` or
/// empty) in statements of up to 1 000 rows. Placeholders are `$n`, which both SQLite and
/// PostgreSQL accept.
pub(crate) async fn insert_rows(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    ncols: usize,
    rows: &[Vec<Val>],
) -> Result<u64> {
    let per = (MAX_PARAMS / ncols).clamp(1, MAX_ROWS);
    let mut affected = 0;
    for chunk in rows.chunks(per) {
        let mut sql = String::with_capacity(head.len() + chunk.len() * ncols * 5 + tail.len() + 16);
        sql.push_str(head);
        sql.push_str(" VALUES ");
        let mut n = 0;
        for (i, row) in chunk.iter().enumerate() {
            debug_assert_eq!(row.len(), ncols);
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for j in 0..ncols {
                if j > 0 {
                    sql.push(',');
                }
                n += 1;
                sql.push('$');
                sql.push_str(&n.to_string());
            }
            sql.push(')');
        }
        sql.push(' ');
        sql.push_str(tail);
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    Val::T(s) => q.bind(s.clone()),
                    Val::I(i) => q.bind(*i),
                    Val::NullI => q.bind(Option::<i64>::None),
                    Val::NullT => q.bind(Option::<String>::None),
                };
            }
        }
        affected += q.execute(&mut *conn).await?.rows_affected();
    }
    Ok(affected)
}

/// Reads a TEXT column of base units as an [`Amount`].
pub(crate) fn amount(row: &AnyRow, col: &str, table: &'static str) -> Result<Amount> {
    let s: String = row.try_get(col)?;
    Amount::parse_base_units(&s).map_err(|e| StoreError::corrupt(table, format!("{col}: {e}")))
}

/// Reads a TEXT `YYYY-MM-DD` column as a [`Day`].
pub(crate) fn day(row: &AnyRow, col: &str, table: &'static str) -> Result<Day> {
    let s: String = row.try_get(col)?;
    Day::parse(&s).map_err(|e| StoreError::corrupt(table, format!("{col}: {e}")))
}

/// Reads a BIGINT nanoseconds column as a [`Timestamp`].
pub(crate) fn ts(row: &AnyRow, col: &str) -> Result<Timestamp> {
    let v: i64 = row.try_get(col)?;
    Ok(Timestamp(v))
}

/// Reads a nullable BIGINT nanoseconds column.
pub(crate) fn ts_opt(row: &AnyRow, col: &str) -> Result<Option<Timestamp>> {
    let v: Option<i64> = row.try_get(col)?;
    Ok(v.map(Timestamp))
}

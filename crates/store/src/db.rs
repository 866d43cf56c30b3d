//! The two backends behind one API: a typed sqlx pool and transaction per backend, the
//! macros that run one body of SQL on either, row decoding, and [`DbAmount`], which each
//! backend stores exactly (`NUMERIC(39,0)` on PostgreSQL, a decimal `TEXT` on SQLite).
//!
//! ```text
//!  Store ─ Pool::Sqlite(SqlitePool) │ Pool::Postgres(PgPool)
//!          on_pool!(store, |p| …)  runs the body once per arm, typed for that backend
//!  Tx    ─ Tx::Sqlite(Transaction) │ Tx::Postgres(Transaction)
//!          on_tx!(tx, |c| …)       c: &mut SqliteConnection / &mut PgConnection
//! ```
//!
//! Where the two SQL dialects or the fast paths differ (COPY, partitions, advisory locks),
//! the modules match on the backend and each arm has its own code.

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgRow, PgTypeInfo, PgValueFormat, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArgumentValue, SqliteRow, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Row, Type};

use softstake_core::{Amount, Day, Timestamp};

use crate::error::{Result, StoreError};
use crate::pg;

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub(crate) enum Pool {
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}

/// A transaction of either backend.
#[derive(Debug)]
pub(crate) enum Tx {
    /// SQLite.
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    /// PostgreSQL.
    Postgres(sqlx::Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits.
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// Runs `$body` with `$p` bound to the typed pool of the store's backend.
macro_rules! on_pool {
    ($store:expr, |$p:ident| $body:expr) => {
        match &$store.pool {
            $crate::db::Pool::Sqlite($p) => $body,
            $crate::db::Pool::Postgres($p) => $body,
        }
    };
}

/// Runs `$body` with `$c` bound to the transaction's typed connection.
macro_rules! on_tx {
    ($tx:expr, |$c:ident| $body:expr) => {
        match $tx {
            $crate::db::Tx::Sqlite(__t) => {
                let $c: &mut sqlx::SqliteConnection = &mut *__t;
                $body
            }
            $crate::db::Tx::Postgres(__t) => {
                let $c: &mut sqlx::PgConnection = &mut *__t;
                $body
            }
        }
    };
}

pub(crate) use {on_pool, on_tx};

/// An amount of base units as a database value: `NUMERIC(39,0)` on PostgreSQL (binary
/// format, exact, sorts and sums in SQL), a decimal `TEXT` on SQLite (which has no
/// 128-bit integer). Decoding checks the invariants (non-negative, integral, ≤ u128::MAX).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DbAmount(pub(crate) u128);

impl From<Amount> for DbAmount {
    fn from(a: Amount) -> Self {
        DbAmount(a.0)
    }
}

impl Type<Postgres> for DbAmount {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("NUMERIC")
    }
    fn compatible(ty: &PgTypeInfo) -> bool {
        *ty == PgTypeInfo::with_name("NUMERIC")
    }
}

impl Encode<'_, Postgres> for DbAmount {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> std::result::Result<sqlx::encode::IsNull, BoxDynError> {
        let mut b = Vec::with_capacity(28);
        pg::numeric_encode(self.0, &mut b);
        buf.extend_from_slice(&b);
        Ok(sqlx::encode::IsNull::No)
    }
}

impl<'r> Decode<'r, Postgres> for DbAmount {
    fn decode(value: PgValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => Ok(DbAmount(pg::numeric_decode(value.as_bytes()?)?)),
            PgValueFormat::Text => Ok(DbAmount(Amount::parse_base_units(value.as_str()?)?.0)),
        }
    }
}

impl Type<Sqlite> for DbAmount {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for DbAmount {
    fn encode_by_ref(
        &self,
        buf: &mut Vec<SqliteArgumentValue<'q>>,
    ) -> std::result::Result<sqlx::encode::IsNull, BoxDynError> {
        buf.push(SqliteArgumentValue::Text(self.0.to_string().into()));
        Ok(sqlx::encode::IsNull::No)
    }
}

impl<'r> Decode<'r, Sqlite> for DbAmount {
    fn decode(value: SqliteValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
        let s = <&str as Decode<Sqlite>>::decode(value)?;
        Ok(DbAmount(Amount::parse_base_units(s)?.0))
    }
}

/// Typed reads of a row's columns, with the store's invariants checked and errors naming
/// the table and column.
pub(crate) trait RowExt {
    /// A `TEXT` column.
    fn text(&self, col: &str) -> Result<String>;
    /// A nullable `TEXT` column.
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    /// A `BIGINT` column.
    fn int(&self, col: &str) -> Result<i64>;
    /// A nullable `BIGINT` column.
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    /// An amount column (base units).
    fn amount(&self, col: &str, table: &'static str) -> Result<Amount>;
    /// A nullable amount column.
    fn opt_amount(&self, col: &str, table: &'static str) -> Result<Option<Amount>>;
    /// A `YYYY-MM-DD` column.
    fn day(&self, col: &str, table: &'static str) -> Result<Day> {
        let s = self.text(col)?;
        Day::parse(&s).map_err(|e| StoreError::corrupt(table, format!("{col}: {e}")))
    }
    /// A nullable `YYYY-MM-DD` column.
    fn opt_day(&self, col: &str, table: &'static str) -> Result<Option<Day>> {
        self.opt_text(col)?
            .map(|s| Day::parse(&s).map_err(|e| StoreError::corrupt(table, format!("{col}: {e}"))))
            .transpose()
    }
    /// A `BIGINT` nanoseconds column.
    fn ts(&self, col: &str) -> Result<Timestamp> {
        self.int(col).map(Timestamp)
    }
    /// A nullable `BIGINT` nanoseconds column.
    fn opt_ts(&self, col: &str) -> Result<Option<Timestamp>> {
        Ok(self.opt_int(col)?.map(Timestamp))
    }
    /// A `BIGINT` column that must not be negative (counts).
    fn count(&self, col: &str, table: &'static str) -> Result<u64> {
        let v = self.int(col)?;
        u64::try_from(v).map_err(|_| StoreError::corrupt(table, format!("{col}: negative count {v}")))
    }
}

macro_rules! row_ext {
    ($row:ty) => {
        impl RowExt for $row {
            fn text(&self, col: &str) -> Result<String> {
                Ok(self.try_get(col)?)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>> {
                Ok(self.try_get(col)?)
            }
            fn int(&self, col: &str) -> Result<i64> {
                Ok(self.try_get(col)?)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>> {
                Ok(self.try_get(col)?)
            }
            fn amount(&self, col: &str, table: &'static str) -> Result<Amount> {
                self.opt_amount(col, table)?
                    .ok_or_else(|| StoreError::corrupt(table, format!("{col}: NULL amount")))
            }
            fn opt_amount(&self, col: &str, table: &'static str) -> Result<Option<Amount>> {
                self.try_get::<Option<DbAmount>, _>(col)
                    .map(|v| v.map(|a| Amount(a.0)))
                    .map_err(|e| StoreError::corrupt(table, format!("{col}: {e}")))
            }
        }
    };
}

row_ext!(SqliteRow);
row_ext!(PgRow);

/// One value of a batched insert.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    /// TEXT.
    T(String),
    /// BIGINT.
    I(i64),
    /// An amount (NUMERIC on PostgreSQL, TEXT on SQLite).
    A(Amount),
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
/// empty, with no placeholders) in statements of up to 1 000 rows. Placeholders are `$n`
/// on PostgreSQL and anonymous `?` on SQLite, whose named parameters are found by a
/// linear search per bind (quadratic in a statement of thousands of values). Returns the
/// rows affected.
pub(crate) async fn insert_rows(tx: &mut Tx, head: &str, tail: &str, ncols: usize, rows: &[Vec<Val>]) -> Result<u64> {
    let per = (MAX_PARAMS / ncols).clamp(1, MAX_ROWS);
    let anonymous = matches!(tx, Tx::Sqlite(_));
    let mut affected = 0;
    for chunk in rows.chunks(per) {
        let sql = values_sql(head, tail, ncols, chunk.len(), anonymous);
        affected += on_tx!(&mut *tx, |c| {
            let mut q = sqlx::query(&sql);
            for row in chunk {
                debug_assert_eq!(row.len(), ncols);
                for v in row {
                    q = match v {
                        Val::T(s) => q.bind(s.as_str()),
                        Val::I(i) => q.bind(*i),
                        Val::A(a) => q.bind(DbAmount(a.0)),
                        Val::NullI => q.bind(Option::<i64>::None),
                        Val::NullT => q.bind(Option::<String>::None),
                    };
                }
            }
            q.execute(&mut *c).await?.rows_affected()
        });
    }
    Ok(affected)
}

/// `head VALUES ($1,…),(…) tail` for `nrows` rows of `ncols` placeholders (`?` when
/// `anonymous`).
pub(crate) fn values_sql(head: &str, tail: &str, ncols: usize, nrows: usize, anonymous: bool) -> String {
    let mut sql = String::with_capacity(head.len() + nrows * ncols * 6 + tail.len() + 16);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for i in 0..nrows {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for j in 0..ncols {
            if j > 0 {
                sql.push(',');
            }
            n += 1;
            if anonymous {
                sql.push('?');
            } else {
                sql.push('$');
                sql.push_str(&n.to_string());
            }
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

//! The store's query layer: rusqlite called in place, behind the small query API the statements
//! are written against (`query(…).bind(…).fetch_one(conn)`, a query builder for dynamic filters,
//! rows read by column name).
//!
//! Why not an async driver: SQLite is a library, not a server. An async driver runs each
//! connection on a thread of its own and passes every statement and every row across a channel,
//! two thread switches per statement; a ticket's creation takes a dozen statements, so the single
//! writer spent most of its time waiting for wake-ups instead of writing. Here a statement runs on
//! the thread that asks for it (a reader's request task, or the writer's own thread, see
//! [`group_commit`](crate::group_commit)), from rusqlite's prepared-statement cache. The
//! "futures" these functions return are already complete: they exist so that the async store
//! traits can call them like any other driver's.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, Value, ValueRef};
use rusqlite::{Connection, Error};
use std::fmt::Display;
use std::future::{Ready, ready};
use std::sync::Arc;

/// A value bound to a statement parameter.
type Arg<'q> = Box<dyn ToSql + Send + 'q>;

/// A statement and its parameter values, waiting to be run.
pub(crate) struct Query<'q> {
    sql: std::borrow::Cow<'q, str>,
    args: Vec<Arg<'q>>,
}

/// A statement. Parameters are written `$1`, `$2`, … (each may appear more than once), or `?`
/// (numbered in order of appearance).
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql: std::borrow::Cow::Borrowed(sql),
        args: Vec::new(),
    }
}

/// What running a statement changed.
pub(crate) struct Done {
    rows_affected: u64,
}

impl Done {
    /// Rows inserted, updated or deleted by the statement.
    pub(crate) fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

impl<'q> Query<'q> {
    /// Binds the next parameter.
    pub(crate) fn bind<T: ToSql + Send + 'q>(mut self, value: T) -> Self {
        self.args.push(Box::new(value));
        self
    }

    /// Runs the statement to completion (any rows it returns are discarded).
    pub(crate) fn execute(self, conn: &mut Connection) -> Ready<Result<Done, Error>> {
        ready(self.run_execute(conn))
    }

    /// The first row; an error when there is none.
    pub(crate) fn fetch_one(self, conn: &mut Connection) -> Ready<Result<Row, Error>> {
        ready(
            self.run_fetch(conn, Some(1))
                .and_then(|rows| rows.into_iter().next().ok_or(Error::QueryReturnedNoRows)),
        )
    }

    /// The first row, if any.
    pub(crate) fn fetch_optional(self, conn: &mut Connection) -> Ready<Result<Option<Row>, Error>> {
        ready(
            self.run_fetch(conn, Some(1))
                .map(|rows| rows.into_iter().next()),
        )
    }

    /// Runs an `INSERT` into a table with a rowid and returns the new row's rowid (its `INTEGER
    /// PRIMARY KEY`); an error when it inserted nothing. Cheaper than `RETURNING`, which SQLite
    /// implements by collecting the returned rows in a temporary table of their own.
    pub(crate) fn insert(self, conn: &mut Connection) -> Ready<Result<i64, Error>> {
        ready(
            self.run_insert(conn)
                .and_then(|rowid| rowid.ok_or(Error::QueryReturnedNoRows)),
        )
    }

    /// [`insert`](Self::insert) for an `INSERT … ON CONFLICT DO NOTHING`: `None` when it
    /// inserted nothing.
    pub(crate) fn insert_optional(
        self,
        conn: &mut Connection,
    ) -> Ready<Result<Option<i64>, Error>> {
        ready(self.run_insert(conn))
    }

    /// Every row.
    pub(crate) fn fetch_all(self, conn: &mut Connection) -> Ready<Result<Vec<Row>, Error>> {
        ready(self.run_fetch(conn, None))
    }

    fn run_execute(&self, conn: &mut Connection) -> Result<Done, Error> {
        let mut statement = self.prepare(conn)?;
        let mut rows = statement.raw_query();
        while rows.next()?.is_some() {}
        drop(rows);
        drop(statement);
        Ok(Done {
            rows_affected: conn.changes(),
        })
    }

    fn run_insert(&self, conn: &mut Connection) -> Result<Option<i64>, Error> {
        let inserted = self.run_execute(conn)?.rows_affected;
        // Triggers' own inserts leave `last_insert_rowid` as the statement set it.
        Ok((inserted > 0).then(|| conn.last_insert_rowid()))
    }

    fn run_fetch(&self, conn: &mut Connection, limit: Option<usize>) -> Result<Vec<Row>, Error> {
        let mut statement = self.prepare(conn)?;
        let names: Arc<[String]> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let width = names.len();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for index in 0..width {
                values.push(row.get::<_, Value>(index)?);
            }
            out.push(Row {
                names: Arc::clone(&names),
                values,
            });
            if limit.is_some_and(|limit| out.len() >= limit) {
                break;
            }
        }
        Ok(out)
    }

    /// The cached prepared statement with every parameter bound. A parameter named `$N` or
    /// `?N` takes the N-th value, an anonymous `?` the value in its position.
    fn prepare<'c>(&self, conn: &'c Connection) -> Result<rusqlite::CachedStatement<'c>, Error> {
        let mut statement = conn.prepare_cached(&self.sql)?;
        let count = statement.parameter_count();
        for position in 1..=count {
            let index = statement
                .parameter_name(position)
                .and_then(|name| name.get(1..))
                .and_then(|digits| digits.parse::<usize>().ok())
                .unwrap_or(position);
            let value = self
                .args
                .get(index.wrapping_sub(1))
                .ok_or(Error::InvalidParameterCount(index, self.args.len()))?;
            statement.raw_bind_parameter(position, value.to_sql()?)?;
        }
        Ok(statement)
    }
}

/// A result row, copied out of the statement so it can outlive it.
pub(crate) struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

/// How a column is named when read from a [`Row`].
pub(crate) trait ColumnIndex {
    /// The column's position.
    fn position(&self, names: &[String]) -> Result<usize, Error>;
}

impl ColumnIndex for &str {
    fn position(&self, names: &[String]) -> Result<usize, Error> {
        names
            .iter()
            .position(|name| name.eq_ignore_ascii_case(self))
            .ok_or_else(|| Error::InvalidColumnName((*self).to_owned()))
    }
}

impl ColumnIndex for usize {
    fn position(&self, names: &[String]) -> Result<usize, Error> {
        if *self < names.len() {
            Ok(*self)
        } else {
            Err(Error::InvalidColumnIndex(*self))
        }
    }
}

impl Row {
    /// The column's value as `T`.
    pub(crate) fn try_get<'r, T: Decode<'r>, I: ColumnIndex>(
        &'r self,
        column: I,
    ) -> Result<T, Error> {
        let index = column.position(&self.names)?;
        let value = &self.values[index];
        T::decode(ValueRef::from(value)).map_err(|error| match error {
            FromSqlError::InvalidType => {
                Error::InvalidColumnType(index, self.names[index].clone(), value.data_type())
            }
            FromSqlError::OutOfRange(number) => Error::IntegralValueOutOfRange(index, number),
            other => Error::FromSqlConversionFailure(index, value.data_type(), Box::new(other)),
        })
    }
}

/// A column type a [`Row`] can be read as: SQLite's values, and text borrowed from the row.
pub(crate) trait Decode<'r>: Sized {
    /// The value, or why it does not fit.
    fn decode(value: ValueRef<'r>) -> FromSqlResult<Self>;
}

macro_rules! decode_as_from_sql {
    ($($ty:ty),*) => {$(
        impl<'r> Decode<'r> for $ty {
            fn decode(value: ValueRef<'r>) -> FromSqlResult<Self> {
                <$ty as FromSql>::column_result(value)
            }
        }
    )*};
}

decode_as_from_sql!(
    i64,
    i32,
    u32,
    bool,
    f64,
    String,
    Vec<u8>,
    Option<i64>,
    Option<i32>,
    Option<u32>,
    Option<bool>,
    Option<String>,
    Option<Vec<u8>>
);

impl<'r> Decode<'r> for &'r str {
    fn decode(value: ValueRef<'r>) -> FromSqlResult<Self> {
        value.as_str()
    }
}

impl<'r> Decode<'r> for Option<&'r str> {
    fn decode(value: ValueRef<'r>) -> FromSqlResult<Self> {
        value.as_str_or_null()
    }
}

/// Builds a statement whose filters depend on the request; values go in as `?` parameters.
pub(crate) struct QueryBuilder<'q> {
    sql: String,
    args: Vec<Arg<'q>>,
}

impl<'q> QueryBuilder<'q> {
    /// Starts with `sql`.
    pub(crate) fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, sql: impl Display) -> &mut Self {
        use std::fmt::Write;
        let _ = write!(self.sql, "{sql}");
        self
    }

    /// Appends a parameter holding `value`.
    pub(crate) fn push_bind<T: ToSql + Send + 'q>(&mut self, value: T) -> &mut Self {
        self.sql.push('?');
        self.args.push(Box::new(value));
        self
    }

    /// A list of parameters separated by `separator`.
    pub(crate) fn separated(&mut self, separator: &'static str) -> Separated<'_, 'q> {
        Separated {
            builder: self,
            separator,
            first: true,
        }
    }

    /// The statement built so far (the builder is left empty).
    pub(crate) fn build(&mut self) -> Query<'q> {
        Query {
            sql: std::borrow::Cow::Owned(std::mem::take(&mut self.sql)),
            args: std::mem::take(&mut self.args),
        }
    }
}

/// See [`QueryBuilder::separated`].
pub(crate) struct Separated<'b, 'q> {
    builder: &'b mut QueryBuilder<'q>,
    separator: &'static str,
    first: bool,
}

impl<'q> Separated<'_, 'q> {
    /// Appends a parameter holding `value`, after the separator unless it is the first.
    pub(crate) fn push_bind<T: ToSql + Send + 'q>(&mut self, value: T) -> &mut Self {
        if !self.first {
            self.builder.push(self.separator);
        }
        self.first = false;
        self.builder.push_bind(value);
        self
    }
}

//! Tables: CSV or Parquet files of numeric and categorical feature columns and a label column.
//!
//! A Parquet file's columns (integers, floats, booleans, strings; nulls are missing cells)
//! are read as their text and then treated exactly as a CSV's; its rows are numbered from 1
//! where a message says "line".
//!
//! A column is numeric when every non-empty cell of it parses as a number, else categorical,
//! unless [`TableOptions`] declares it. A missing value — an empty field, or `NA` / `NaN` /
//! `?` — stays missing: its value is NaN and its cell is marked in [`TableSet::missing`]; it
//! is never replaced by a number here. Categories are coded in sorted order of the training
//! split's values, so the codes do not depend on the held-out rows; a held-out value the
//! training split never showed is an error naming the file, line and column. Labels are
//! integer class codes (names from a `<stem>.classes.txt` beside the file, one per line,
//! when present) or any text (classes in sorted order). Per-column statistics
//! ([`TableStats`]) come from the training split only; numeric values are standardized with
//! them.

mod csv_reader;
mod load;
mod parquet_reader;
mod set;
mod source;
mod stats;
mod survey;
#[cfg(test)]
mod tests;

pub(crate) use csv_reader::csv_error;
pub use load::{load_csv_bytes, load_table};
pub use parquet_reader::is_parquet;
pub use set::{ColumnKind, TableColumn, TableOptions, TableSet, TableSplits};
pub use source::MISSING_MARKERS;
pub use stats::{ColumnStats, TableStats};

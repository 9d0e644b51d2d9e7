//! A table read row by row as often as loading needs ([`TableSource`]), and what a missing
//! cell is.

use std::path::Path;

use super::csv_reader::{csv_reader, csv_rows};
use super::parquet_reader::{is_parquet, parquet_guarded, parquet_rows};
use crate::error::DataError;

/// Cells read as missing (besides the empty field), compared after trimming.
pub const MISSING_MARKERS: [&str; 4] = ["NA", "NaN", "nan", "?"];

pub(super) fn is_missing(cell: &str) -> bool {
    cell.is_empty() || MISSING_MARKERS.contains(&cell)
}

/// A table read row by row, as many times as loading needs: each pass streams the file, so
/// memory does not grow with it. A CSV file, CSV text held in memory, or a Parquet file.
#[derive(Clone, Copy)]
pub(super) enum TableSource<'a> {
    Csv(&'a Path),
    CsvBytes { bytes: &'a [u8], name: &'a Path },
    Parquet(&'a Path),
}

impl<'a> TableSource<'a> {
    /// A file: Parquet by its extension, else CSV.
    pub(super) fn file(path: &'a Path) -> TableSource<'a> {
        if is_parquet(path) {
            TableSource::Parquet(path)
        } else {
            TableSource::Csv(path)
        }
    }

    /// What errors name.
    pub(super) fn path(&self) -> &'a Path {
        match *self {
            TableSource::Csv(path) | TableSource::Parquet(path) => path,
            TableSource::CsvBytes { name, .. } => name,
        }
    }

    /// The column names, trimmed.
    pub(super) fn header(&self) -> Result<Vec<String>, DataError> {
        match *self {
            TableSource::Csv(path) => Ok(csv_reader(open(path)?, path)?.1),
            TableSource::CsvBytes { bytes, name } => Ok(csv_reader(bytes, name)?.1),
            TableSource::Parquet(path) => parquet_guarded(path, |reader, header| {
                drop(reader);
                Ok(header)
            }),
        }
    }

    /// Calls `visit` with each row's line and cells in file order, and returns the number
    /// of rows; a file without rows is [`DataError::EmptyTable`]. A CSV row's line is the
    /// line it starts on and its cells are trimmed; a Parquet row's "line" is its 1-based
    /// number and its cells are its values as text (a null is an empty cell).
    pub(super) fn rows(
        &self,
        mut visit: impl FnMut(u64, &[&str]) -> Result<(), DataError>,
    ) -> Result<usize, DataError> {
        let (count, empty) = match *self {
            TableSource::Csv(path) => (
                csv_rows(open(path)?, path, &mut visit)?,
                "a header but no rows",
            ),
            TableSource::CsvBytes { bytes, name } => {
                (csv_rows(bytes, name, &mut visit)?, "a header but no rows")
            }
            TableSource::Parquet(path) => (
                parquet_guarded(path, |reader, header| {
                    parquet_rows(path, reader, &header, &mut visit)
                })?,
                "a schema but no rows",
            ),
        };
        if count == 0 {
            return Err(DataError::EmptyTable {
                path: self.path().to_path_buf(),
                details: empty.to_string(),
            });
        }
        Ok(count)
    }
}

pub(super) fn open(path: &Path) -> Result<std::fs::File, DataError> {
    std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

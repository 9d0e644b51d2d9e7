//! Parquet files mapped into memory and read a record batch at a time, their values as
//! the text a CSV would hold.

use std::path::Path;

use super::source::open;
use crate::error::DataError;

/// Whether `path` names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    crate::source::has_extension(path, "parquet")
}

/// Runs `read` on a Parquet reader of `path` (any compression this build reads: snappy,
/// gzip, lz4, zstd) and its column names.
///
/// The file is mapped into memory, not read: page headers are parsed from memory, not with
/// a system call per byte (a corrupt page header listing 2^31 booleans, which parquet's
/// thrift reader skips without reading a byte each, took 30 s of such calls on a 6 KB
/// file), and a file larger than RAM is paged in as its row groups are decoded.
///
/// The parquet crate (60.1) panics on some corrupt files instead of returning an error (a
/// negative column chunk offset, a dictionary-encoded page without a dictionary page, a
/// null bitmap or byte-stream-split page shorter than its values): such a panic becomes
/// the error of an unreadable file.
pub(super) fn parquet_guarded<T>(
    path: &Path,
    read: impl FnOnce(
        parquet::arrow::arrow_reader::ParquetRecordBatchReader,
        Vec<String>,
    ) -> Result<T, DataError>,
) -> Result<T, DataError> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let bad = |found: String| DataError::BadRecord {
        path: path.to_path_buf(),
        line: 0,
        expected: "a readable Parquet file".to_string(),
        found,
    };
    let file = open(path)?;
    // SAFETY: the map is only read, while this function runs. A file truncated by another
    // process meanwhile would fault the reads, as with any mapped reader.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let data = bytes::Bytes::from_owner(map);
    crate::error::catch_quietly(move || {
        let builder = ParquetRecordBatchReaderBuilder::try_new(data)
            .map_err(|error| bad(error.to_string()))?;
        let header: Vec<String> = builder
            .schema()
            .fields()
            .iter()
            .map(|field| field.name().trim().to_string())
            .collect();
        let reader = builder.build().map_err(|error| bad(error.to_string()))?;
        read(reader, header)
    })
    .unwrap_or_else(|message| {
        Err(bad(format!(
            "a corrupt file the Parquet reader fails on: {message}"
        )))
    })
}

/// [`TableSource::rows`](super::source::TableSource::rows) of a Parquet file, a record batch
/// at a time.
pub(super) fn parquet_rows(
    path: &Path,
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    header: &[String],
    visit: &mut impl FnMut(u64, &[&str]) -> Result<(), DataError>,
) -> Result<usize, DataError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_schema::DataType;

    let mut count = 0;
    for batch in reader {
        let batch = batch.map_err(|error| DataError::BadRecord {
            path: path.to_path_buf(),
            line: 0,
            expected: "a readable Parquet file".to_string(),
            found: error.to_string(),
        })?;
        let rows = batch.num_rows();
        // Column by column, then row by row.
        let mut columns: Vec<Vec<String>> = Vec::with_capacity(header.len());
        for (column, array) in batch.columns().iter().enumerate() {
            macro_rules! cells {
                ($values:expr) => {{
                    let values = $values;
                    (0..rows)
                        .map(|row| {
                            if array.is_null(row) {
                                String::new()
                            } else {
                                values.value(row).to_string()
                            }
                        })
                        .collect()
                }};
            }
            columns.push(match array.data_type() {
                DataType::Int8 => cells!(array.as_primitive::<Int8Type>()),
                DataType::Int16 => cells!(array.as_primitive::<Int16Type>()),
                DataType::Int32 => cells!(array.as_primitive::<Int32Type>()),
                DataType::Int64 => cells!(array.as_primitive::<Int64Type>()),
                DataType::UInt8 => cells!(array.as_primitive::<UInt8Type>()),
                DataType::UInt16 => cells!(array.as_primitive::<UInt16Type>()),
                DataType::UInt32 => cells!(array.as_primitive::<UInt32Type>()),
                DataType::UInt64 => cells!(array.as_primitive::<UInt64Type>()),
                DataType::Float32 => cells!(array.as_primitive::<Float32Type>()),
                DataType::Float64 => cells!(array.as_primitive::<Float64Type>()),
                DataType::Boolean => cells!(array.as_boolean()),
                DataType::Utf8 => cells!(array.as_string::<i32>()),
                DataType::LargeUtf8 => cells!(array.as_string::<i64>()),
                DataType::Null => vec![String::new(); rows],
                other => {
                    return Err(DataError::BadRecord {
                        path: path.to_path_buf(),
                        line: 0,
                        expected: format!(
                            "column {:?} of numbers, booleans or strings",
                            header[column]
                        ),
                        found: format!("the Parquet type {other}"),
                    })
                }
            });
        }
        let mut cells: Vec<&str> = Vec::with_capacity(columns.len());
        for row in 0..rows {
            cells.clear();
            cells.extend(columns.iter().map(|column| column[row].as_str()));
            count += 1;
            visit(count as u64, &cells)?;
        }
    }
    Ok(count)
}

//! CSV text read a record at a time, and `csv` errors turned into [`DataError`]s that name
//! the file and line.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::DataError;

/// A CSV reader past the header row of `input`, and the header's names (trimmed, distinct,
/// not all empty); `path` names the input in errors.
pub(super) fn csv_reader<R: std::io::Read>(
    input: R,
    path: &Path,
) -> Result<(csv::Reader<R>, Vec<String>), DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .buffer_capacity(1 << 16)
        .from_reader(input);
    let header: Vec<String> = reader
        .headers()
        .map_err(|error| csv_error(path, error))?
        .iter()
        .map(|name| name.trim().to_string())
        .collect();
    if header.iter().all(String::is_empty) {
        return Err(DataError::EmptyTable {
            path: path.to_path_buf(),
            details: "no header row; expected column names on the first line".to_string(),
        });
    }
    let mut seen = BTreeSet::new();
    if let Some(duplicate) = header.iter().find(|name| !seen.insert(name.as_str())) {
        return Err(DataError::BadRecord {
            path: path.to_path_buf(),
            line: 1,
            expected: "distinct column names".to_string(),
            found: format!("{duplicate:?} twice"),
        });
    }
    Ok((reader, header))
}

/// [`TableSource::rows`](super::source::TableSource::rows) of CSV text.
pub(super) fn csv_rows(
    input: impl std::io::Read,
    path: &Path,
    visit: &mut impl FnMut(u64, &[&str]) -> Result<(), DataError>,
) -> Result<usize, DataError> {
    let (mut reader, _) = csv_reader(input, path)?;
    let mut record = csv::StringRecord::new();
    let mut count = 0;
    while reader
        .read_record(&mut record)
        .map_err(|error| csv_error(path, error))?
    {
        let line = record.position().map_or(0, |position| position.line());
        let cells: Vec<&str> = record.iter().map(str::trim).collect();
        visit(line, &cells)?;
        count += 1;
    }
    Ok(count)
}

pub(crate) fn csv_error(path: &Path, error: csv::Error) -> DataError {
    let line = error
        .position()
        .map_or(0, |position| position.line() as usize);
    match error.into_kind() {
        csv::ErrorKind::Io(source) => DataError::Io {
            path: path.to_path_buf(),
            source,
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => DataError::BadRecord {
            path: path.to_path_buf(),
            line,
            expected: format!("{expected_len} fields, as in the header"),
            found: format!("{len}"),
        },
        csv::ErrorKind::Utf8 { err, .. } => DataError::BadRecord {
            path: path.to_path_buf(),
            line,
            expected: "UTF-8 text".to_string(),
            found: format!("invalid UTF-8 ({err})"),
        },
        other => DataError::BadRecord {
            path: path.to_path_buf(),
            line,
            expected: "a CSV row".to_string(),
            found: format!("{other:?}"),
        },
    }
}

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

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::error::DataError;
use crate::split::stratified_in_training;
use crate::store::{megabytes, Store};

/// Cells read as missing (besides the empty field), compared after trimming.
pub const MISSING_MARKERS: [&str; 4] = ["NA", "NaN", "nan", "?"];

/// How to read a table's columns.
#[derive(Clone, Debug, PartialEq)]
pub struct TableOptions {
    /// The label column.
    pub label: String,
    /// Columns to read as categorical whatever their cells look like (e.g. integer codes).
    pub categorical: Vec<String>,
    /// Columns that must be numeric: a cell that is not a number is an error.
    pub numeric: Vec<String>,
    /// Share of the rows held out (stratified by label) when no test file is given.
    pub holdout_fraction: f64,
    /// Seed of that split.
    pub split_seed: u64,
    /// Decoded values beyond this many MB (4 bytes a cell) are kept in a temporary file
    /// mapped into memory rather than in the process's own memory, so that a table larger
    /// than RAM is paged in as batches read it; the file needs as much free disk under the
    /// temporary folder (`TMPDIR`).
    pub memory_limit_mb: u64,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            label: "label".to_string(),
            categorical: Vec::new(),
            numeric: Vec::new(),
            holdout_fraction: 0.2,
            split_seed: 0,
            memory_limit_mb: 4096,
        }
    }
}

/// What a feature column holds.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnKind {
    Numeric,
    /// Values are codes into `categories` (the training split's values, sorted).
    Categorical {
        categories: Vec<String>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct TableColumn {
    pub name: String,
    pub kind: ColumnKind,
}

/// Rows of a table, labeled or not.
#[derive(Clone, Debug)]
pub struct TableSet {
    /// The feature columns (the label column is not one of them), shared by both splits.
    pub columns: Arc<Vec<TableColumn>>,
    /// Number of rows.
    pub len: usize,
    /// `len × columns` values, row-major: the number standardized with the training split's
    /// mean and standard deviation, or the category code as f32; NaN exactly where the cell
    /// is missing. In memory, or past [`TableOptions::memory_limit_mb`] in a mapped
    /// temporary file.
    pub values: Arc<Store<f32>>,
    /// Where copies of these rows (subsets) go to a mapped file instead of memory.
    pub memory_limit_bytes: u64,
    /// 0-based class codes, one per row.
    pub labels: Option<Vec<u16>>,
    /// Class names indexed by code (empty when unknown).
    pub class_names: Vec<String>,
    /// Statistics of the training split, which standardized the numeric values (shared by
    /// both splits; saved in the run).
    pub training_stats: Arc<TableStats>,
}

impl TableSet {
    /// Number of feature columns.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The values of row `index` (NaN where missing).
    pub fn row(&self, index: usize) -> &[f32] {
        &self.values.as_slice()[index * self.width()..(index + 1) * self.width()]
    }

    /// The missing-cell flags of row `index`.
    pub fn row_missing(&self, index: usize) -> Vec<bool> {
        self.row(index).iter().map(|value| value.is_nan()).collect()
    }

    /// A new set of the rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> TableSet {
        let width = self.width();
        let values = Store::copied(indices.len() * width, self.memory_limit_bytes, |out| {
            for (row, &index) in out.chunks_exact_mut(width.max(1)).zip(indices) {
                row.copy_from_slice(self.row(index));
            }
        });
        TableSet {
            columns: Arc::clone(&self.columns),
            len: indices.len(),
            values: Arc::new(values),
            memory_limit_bytes: self.memory_limit_bytes,
            labels: self
                .labels
                .as_ref()
                .map(|labels| indices.iter().map(|&index| labels[index]).collect()),
            class_names: self.class_names.clone(),
            training_stats: Arc::clone(&self.training_stats),
        }
    }

    /// Number of classes: the class names' count when known, else max label + 1.
    pub fn num_classes(&self) -> usize {
        crate::split::class_count(self.labels.as_deref(), &self.class_names)
    }

    /// Per-column statistics of these rows (missing cells left out).
    pub fn compute_stats(&self) -> TableStats {
        statistics(&self.columns, self.values.as_slice())
    }
}

/// Statistics of one column over the training split.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnStats {
    pub name: String,
    /// The category names of a categorical column; None for a numeric one.
    pub categories: Option<Vec<String>>,
    /// Rows with a value, and rows without.
    pub present: usize,
    pub missing: usize,
    /// Mean and population standard deviation of the values present (codes for categorical
    /// columns), their minimum and maximum (NaN when none is present).
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

/// Statistics of every feature column over the training split: what the encoder standardizes
/// with, saved in the run.
#[derive(Clone, Debug, PartialEq)]
pub struct TableStats {
    pub columns: Vec<ColumnStats>,
}

impl TableStats {
    pub fn to_json(&self) -> serde_json::Value {
        let number =
            |v: f64| serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into);
        serde_json::Value::Array(
            self.columns
                .iter()
                .map(|column| {
                    serde_json::json!({
                        "name": column.name,
                        "kind": if column.categories.is_some() { "categorical" } else { "numeric" },
                        "categories": column.categories,
                        "present": column.present,
                        "missing": column.missing,
                        "mean": number(column.mean),
                        "std": number(column.std),
                        "min": number(column.min),
                        "max": number(column.max),
                    })
                })
                .collect(),
        )
    }
}

/// A training split and a held-out split of a table.
#[derive(Clone, Debug)]
pub struct TableSplits {
    pub train: TableSet,
    pub test: TableSet,
    /// The file name without extension.
    pub name: String,
    /// Statistics of the training split.
    pub stats: TableStats,
}

/// A table read row by row, as many times as loading needs: each pass streams the file, so
/// memory does not grow with it. A CSV file, CSV text held in memory, or a Parquet file.
#[derive(Clone, Copy)]
enum TableSource<'a> {
    Csv(&'a Path),
    CsvBytes { bytes: &'a [u8], name: &'a Path },
    Parquet(&'a Path),
}

impl<'a> TableSource<'a> {
    /// A file: Parquet by its extension, else CSV.
    fn file(path: &'a Path) -> TableSource<'a> {
        if is_parquet(path) {
            TableSource::Parquet(path)
        } else {
            TableSource::Csv(path)
        }
    }

    /// What errors name.
    fn path(&self) -> &'a Path {
        match *self {
            TableSource::Csv(path) | TableSource::Parquet(path) => path,
            TableSource::CsvBytes { name, .. } => name,
        }
    }

    /// The column names, trimmed.
    fn header(&self) -> Result<Vec<String>, DataError> {
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
    fn rows(
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

fn open(path: &Path) -> Result<std::fs::File, DataError> {
    std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A CSV reader past the header row of `input`, and the header's names (trimmed, distinct,
/// not all empty); `path` names the input in errors.
fn csv_reader<R: std::io::Read>(
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

/// [`TableSource::rows`] of CSV text.
fn csv_rows(
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
fn parquet_guarded<T>(
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

/// [`TableSource::rows`] of a Parquet file, a record batch at a time.
fn parquet_rows(
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

/// Whether `path` names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    crate::source::has_extension(path, "parquet")
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

fn is_missing(cell: &str) -> bool {
    cell.is_empty() || MISSING_MARKERS.contains(&cell)
}

/// Reads the CSV or Parquet file `train` (and `test`, with the same columns, or else a
/// stratified held-out share of `train`) as a labeled table.
///
/// The files are streamed, several times over (labels and column kinds, then the training
/// split's categories, then the values), so memory holds the decoded values — or, past
/// [`TableOptions::memory_limit_mb`], not even those — and a few bytes per row (labels and
/// the split), never the files' text.
pub fn load_table(
    train: &Path,
    test: Option<&Path>,
    options: &TableOptions,
) -> Result<TableSplits, DataError> {
    let classes_file = train.with_extension("classes.txt");
    let sources: Vec<TableSource> = std::iter::once(train)
        .chain(test)
        .map(TableSource::file)
        .collect();
    split_table(&sources, Some(&classes_file), options)
}

/// [`load_table`] on CSV text held in memory, without a test file (a stratified share of
/// the rows is held out); `name` stands for the file in errors and names the table. No
/// class names file is looked up: integer labels stay unnamed.
pub fn load_csv_bytes(
    bytes: &[u8],
    name: &str,
    options: &TableOptions,
) -> Result<TableSplits, DataError> {
    let source = TableSource::CsvBytes {
        bytes,
        name: Path::new(name),
    };
    split_table(&[source], None, options)
}

/// What the first pass over the files finds: each row's label (an id into `labels`, in
/// first-seen order) and each column's first cell that is not a number.
struct Survey {
    /// Per file, the label id of each row.
    label_ids: Vec<Vec<u16>>,
    /// The distinct labels.
    labels: Vec<SeenLabel>,
    /// Per column of the header, the first non-missing cell (over the files in order) that
    /// does not parse as a number: (file, line, cell).
    first_text: Vec<Option<(usize, u64, String)>>,
}

/// A distinct label and the first line it is on in each file.
struct SeenLabel {
    name: String,
    first_line: [Option<u64>; 2],
}

/// The most distinct labels a table may have (class codes are 16-bit).
const MAX_LABELS: usize = 1 << 16;

/// The first pass: labels (none missing, at most [`MAX_LABELS`] distinct) and which
/// columns are numbers.
fn survey(
    sources: &[TableSource],
    label_column: usize,
    width: usize,
    label_name: &str,
) -> Result<Survey, DataError> {
    let mut survey = Survey {
        label_ids: Vec::new(),
        labels: Vec::new(),
        first_text: vec![None; width],
    };
    let mut ids: std::collections::HashMap<String, u16> = std::collections::HashMap::new();
    for (file, source) in sources.iter().enumerate() {
        let mut file_ids = Vec::new();
        source.rows(|line, cells| {
            let label = cells[label_column];
            if is_missing(label) {
                return Err(DataError::BadRecord {
                    path: source.path().to_path_buf(),
                    line: line as usize,
                    expected: "a label in every row".to_string(),
                    found: "an empty label".to_string(),
                });
            }
            let id = match ids.get(label) {
                Some(&id) => id,
                None if survey.labels.len() == MAX_LABELS => {
                    return Err(DataError::BadRecord {
                        path: source.path().to_path_buf(),
                        line: line as usize,
                        expected: format!(
                            "at most {MAX_LABELS} distinct labels in the label column {label_name:?} (data.table.label)"
                        ),
                        found: format!("one more: {label:?}"),
                    })
                }
                None => {
                    let id = survey.labels.len() as u16;
                    ids.insert(label.to_string(), id);
                    survey.labels.push(SeenLabel {
                        name: label.to_string(),
                        first_line: [None, None],
                    });
                    id
                }
            };
            survey.labels[usize::from(id)].first_line[file].get_or_insert(line);
            file_ids.push(id);
            for (column, cell) in cells.iter().enumerate() {
                if column != label_column
                    && survey.first_text[column].is_none()
                    && !is_missing(cell)
                    && cell.parse::<f64>().is_err()
                {
                    survey.first_text[column] = Some((file, line, cell.to_string()));
                }
            }
            Ok(())
        })?;
        survey.label_ids.push(file_ids);
    }
    Ok(survey)
}

/// The rest of [`load_table`] on its sources (the training file, then the test file when
/// there is one); integer class codes are named by `classes_file` (one name per line) when
/// it is given and exists.
fn split_table(
    sources: &[TableSource],
    classes_file: Option<&Path>,
    options: &TableOptions,
) -> Result<TableSplits, DataError> {
    let train = sources[0].path();
    let header = sources[0].header()?;
    if let Some(test) = sources.get(1) {
        let test_header = test.header()?;
        if test_header != header {
            return Err(DataError::BadRecord {
                path: test.path().to_path_buf(),
                line: 1,
                expected: format!("the columns of {}: {}", train.display(), header.join(",")),
                found: test_header.join(","),
            });
        }
    }
    let label_column = header
        .iter()
        .position(|name| *name == options.label)
        .ok_or_else(|| DataError::BadRecord {
            path: train.to_path_buf(),
            line: 1,
            expected: format!(
                "a label column named {:?} (data.table.label)",
                options.label
            ),
            found: format!("the columns {}", header.join(", ")),
        })?;
    for declared in options.categorical.iter().chain(&options.numeric) {
        if !header.contains(declared) {
            return Err(DataError::BadRecord {
                path: train.to_path_buf(),
                line: 1,
                expected: format!("a column named {declared:?}, as declared"),
                found: format!("the columns {}", header.join(", ")),
            });
        }
    }

    // Pass 1: labels and numeric columns; then the split.
    let mut survey = survey(sources, label_column, header.len(), &options.label)?;
    let label_ids = std::mem::take(&mut survey.label_ids);
    let (codes, class_names) = label_codes(sources, &survey, label_ids, classes_file)?;
    // Per row of the training file: whether it is in the training split.
    let in_training: Vec<bool> = if sources.len() > 1 {
        vec![true; codes[0].len()]
    } else {
        stratified_in_training(&codes[0], options.holdout_fraction, options.split_seed)
    };

    // Column kinds: declared, or numeric when every non-missing cell of both files parses.
    let feature_indices: Vec<usize> = (0..header.len())
        .filter(|&column| column != label_column)
        .collect();
    let mut categorical = Vec::new();
    for &column in &feature_indices {
        let name = &header[column];
        let numeric_cells = survey.first_text[column].is_none();
        if options.categorical.contains(name) {
            categorical.push(column);
        } else if options.numeric.contains(name) {
            if let Some((file, line, cell)) = &survey.first_text[column] {
                return Err(DataError::BadRecord {
                    path: sources[*file].path().to_path_buf(),
                    line: *line as usize,
                    expected: format!("a number in column {name:?} (declared numeric)"),
                    found: format!("{cell:?}"),
                });
            }
        } else if !numeric_cells {
            categorical.push(column);
        }
    }
    // Pass 2: the categories, the training split's sorted distinct values.
    let mut categories: BTreeMap<usize, BTreeSet<String>> = categorical
        .iter()
        .map(|&column| (column, BTreeSet::new()))
        .collect();
    if !categories.is_empty() {
        let mut row = 0;
        let rows = sources[0].rows(|_, cells| {
            if row == in_training.len() {
                return Err(changed_while_read(sources[0].path()));
            }
            if in_training[row] {
                for (&column, seen) in categories.iter_mut() {
                    let cell = cells[column];
                    if !is_missing(cell) && !seen.contains(cell) {
                        seen.insert(cell.to_string());
                    }
                }
            }
            row += 1;
            Ok(())
        })?;
        if rows != in_training.len() {
            return Err(changed_while_read(sources[0].path()));
        }
    }
    let columns: Arc<Vec<TableColumn>> = Arc::new(
        feature_indices
            .iter()
            .map(|&column| TableColumn {
                name: header[column].clone(),
                kind: match categories.remove(&column) {
                    Some(seen) => ColumnKind::Categorical {
                        categories: seen.into_iter().collect(),
                    },
                    None => ColumnKind::Numeric,
                },
            })
            .collect(),
    );

    // Pass 3: the values, straight into each split's store.
    let width = columns.len();
    let train_len = in_training.iter().filter(|&&kept| kept).count();
    let test_len = codes[0].len() - train_len + codes.get(1).map_or(0, Vec::len);
    let limit = megabytes(options.memory_limit_mb);
    let mut train_values = Store::<f32>::zeroed(train_len * width, limit)?;
    let mut test_values = Store::<f32>::zeroed(test_len * width, limit)?;
    let (mut train_labels, mut test_labels) = (Vec::new(), Vec::new());
    for (file, source) in sources.iter().enumerate() {
        let mut row = 0;
        let rows = source.rows(|line, cells| {
            if row == codes[file].len() {
                return Err(changed_while_read(source.path()));
            }
            let (values, labels) = if file == 0 && in_training[row] {
                (train_values.as_mut_slice(), &mut train_labels)
            } else {
                (test_values.as_mut_slice(), &mut test_labels)
            };
            let start = labels.len() * width;
            let out = &mut values[start..start + width];
            decode_row(source.path(), line, cells, &columns, &feature_indices, out)?;
            labels.push(codes[file][row]);
            row += 1;
            Ok(())
        })?;
        if rows != codes[file].len() {
            return Err(changed_while_read(source.path()));
        }
    }

    let stats = statistics(&columns, train_values.as_slice());
    standardize(&columns, &stats, train_values.as_mut_slice());
    standardize(&columns, &stats, test_values.as_mut_slice());
    let shared = Arc::new(stats.clone());
    let set = |values: Store<f32>, labels: Vec<u16>| TableSet {
        columns: Arc::clone(&columns),
        len: labels.len(),
        values: Arc::new(values),
        memory_limit_bytes: limit,
        labels: Some(labels),
        class_names: class_names.clone(),
        training_stats: Arc::clone(&shared),
    };
    Ok(TableSplits {
        train: set(train_values, train_labels),
        test: set(test_values, test_labels),
        name: train
            .file_stem()
            .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned()),
        stats,
    })
}

fn changed_while_read(path: &Path) -> DataError {
    DataError::ChangedWhileRead {
        path: path.to_path_buf(),
    }
}

/// Writes the feature cells of one row into `out` (one value per column): NaN where
/// missing, the number, or the category's code.
fn decode_row(
    path: &Path,
    line: u64,
    cells: &[&str],
    columns: &[TableColumn],
    feature_indices: &[usize],
    out: &mut [f32],
) -> Result<(), DataError> {
    for ((spec, &column), value) in columns.iter().zip(feature_indices).zip(out) {
        let cell = cells[column];
        if is_missing(cell) {
            *value = f32::NAN;
            continue;
        }
        *value = match &spec.kind {
            ColumnKind::Numeric => cell.parse::<f64>().map_err(|_| DataError::BadRecord {
                path: path.to_path_buf(),
                line: line as usize,
                expected: format!("a number in column {:?}", spec.name),
                found: format!("{cell:?}"),
            })? as f32,
            ColumnKind::Categorical { categories } => {
                match categories.binary_search_by(|category| category.as_str().cmp(cell)) {
                    Ok(code) => code as f32,
                    Err(_) => {
                        return Err(DataError::BadRecord {
                            path: path.to_path_buf(),
                            line: line as usize,
                            expected: format!(
                                "in column {:?} one of the training split's categories: {}",
                                spec.name,
                                categories.join(", ")
                            ),
                            found: format!("{cell:?}, unseen in training"),
                        })
                    }
                }
            }
        };
        if !value.is_finite() {
            return Err(DataError::BadRecord {
                path: path.to_path_buf(),
                line: line as usize,
                expected: format!("a finite number in column {:?}", spec.name),
                found: format!("{cell:?}"),
            });
        }
    }
    Ok(())
}

/// Per-column statistics of `values` (`rows × columns`, row-major, NaN where missing),
/// missing cells left out, in one pass for the sums and one for the squared deviations.
fn statistics(columns: &[TableColumn], values: &[f32]) -> TableStats {
    let width = columns.len();
    let rows = || values.chunks_exact(width.max(1));
    let mut counts = vec![0usize; width];
    // From −0.0, as `Iterator::sum` of floats starts.
    let mut sums = vec![-0.0f64; width];
    let mut mins = vec![f64::INFINITY; width];
    let mut maxs = vec![f64::NEG_INFINITY; width];
    for row in rows() {
        for (column, &value) in row.iter().enumerate() {
            if !value.is_nan() {
                let value = f64::from(value);
                counts[column] += 1;
                sums[column] += value;
                mins[column] = mins[column].min(value);
                maxs[column] = maxs[column].max(value);
            }
        }
    }
    let means: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(sum, &count)| sum / count.max(1) as f64)
        .collect();
    let mut squares = vec![-0.0f64; width];
    for row in rows() {
        for (column, &value) in row.iter().enumerate() {
            if !value.is_nan() {
                squares[column] += (f64::from(value) - means[column]).powi(2);
            }
        }
    }
    let len = values.len().checked_div(width).unwrap_or(0);
    let columns = columns
        .iter()
        .enumerate()
        .map(|(column, spec)| {
            let count = counts[column];
            ColumnStats {
                name: spec.name.clone(),
                categories: match &spec.kind {
                    ColumnKind::Numeric => None,
                    ColumnKind::Categorical { categories } => Some(categories.clone()),
                },
                present: count,
                missing: len - count,
                mean: means[column],
                std: (squares[column] / count.max(1) as f64).sqrt(),
                min: if count == 0 { f64::NAN } else { mins[column] },
                max: if count == 0 { f64::NAN } else { maxs[column] },
            }
        })
        .collect();
    TableStats { columns }
}

/// Numeric columns of `values` to `(x − mean) / std` with `stats` (a constant column to
/// `x − mean`); categorical codes and missing cells are left as they are.
fn standardize(columns: &[TableColumn], stats: &TableStats, values: &mut [f32]) {
    let scales: Vec<Option<(f64, f64)>> = columns
        .iter()
        .zip(&stats.columns)
        .map(|(spec, column)| {
            (spec.kind == ColumnKind::Numeric).then(|| {
                let scale = if column.std > 0.0 { column.std } else { 1.0 };
                (column.mean, scale)
            })
        })
        .collect();
    for row in values.chunks_exact_mut(columns.len().max(1)) {
        for (value, scale) in row.iter_mut().zip(&scales) {
            if let Some((mean, scale)) = scale {
                *value = ((f64::from(*value) - mean) / scale) as f32;
            }
        }
    }
}

/// The class names of a `<stem>.classes.txt` file, one per line; none when it cannot be read.
fn read_class_names(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(|line| line.trim().to_string()).collect(),
        Err(_) => Vec::new(),
    }
}

/// Class codes of every row of each file, and the class names: integer labels are codes
/// (named by `classes_file` when it exists), any other labels are coded in sorted order of
/// the training file's labels.
///
/// `label_ids` (the survey's, taken from it) become the codes in place.
fn label_codes(
    sources: &[TableSource],
    survey: &Survey,
    mut label_ids: Vec<Vec<u16>>,
    classes_file: Option<&Path>,
) -> Result<(Vec<Vec<u16>>, Vec<String>), DataError> {
    let mut codes_of = |code_of_id: &[u16]| -> Vec<Vec<u16>> {
        for id in label_ids.iter_mut().flatten() {
            *id = code_of_id[usize::from(*id)];
        }
        std::mem::take(&mut label_ids)
    };
    // The first line of `file` whose label satisfies `bad`, and that label.
    let first_bad = |file: usize, bad: &dyn Fn(&SeenLabel) -> bool| {
        survey
            .labels
            .iter()
            .filter(|label| bad(label))
            .filter_map(|label| label.first_line[file].map(|line| (line, label)))
            .min_by_key(|(line, _)| *line)
    };
    let integers: Option<Vec<u16>> = survey
        .labels
        .iter()
        .map(|label| label.name.parse::<u16>().ok())
        .collect();
    if let Some(code_of_id) = integers {
        let class_names = classes_file.map_or_else(Vec::new, read_class_names);
        if let Some(names_path) = classes_file.filter(|_| !class_names.is_empty()) {
            for (file, source) in sources.iter().enumerate() {
                let beyond = |label: &SeenLabel| {
                    usize::from(label.name.parse::<u16>().expect("checked")) >= class_names.len()
                };
                if let Some((line, label)) = first_bad(file, &beyond) {
                    return Err(DataError::BadRecord {
                        path: source.path().to_path_buf(),
                        line: line as usize,
                        expected: format!(
                            "a class code below {} (the classes named in {})",
                            class_names.len(),
                            names_path.display()
                        ),
                        found: label.name.parse::<u16>().expect("checked").to_string(),
                    });
                }
            }
        }
        return Ok((codes_of(&code_of_id), class_names));
    }
    let names: BTreeMap<&str, u16> = survey
        .labels
        .iter()
        .filter(|label| label.first_line[0].is_some())
        .map(|label| label.name.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(code, name)| (name, code as u16))
        .collect();
    if let Some(test) = sources.get(1) {
        let unknown = |label: &SeenLabel| !names.contains_key(label.name.as_str());
        if let Some((line, label)) = first_bad(1, &unknown) {
            return Err(DataError::UnknownLabel {
                path: test.path().to_path_buf(),
                line: line as usize,
                label: label.name.clone(),
                train: sources[0].path().to_path_buf(),
                known: names.keys().copied().collect::<Vec<_>>().join(", "),
            });
        }
    }
    let code_of_id: Vec<u16> = survey
        .labels
        .iter()
        .map(|label| names[label.name.as_str()])
        .collect();
    Ok((
        codes_of(&code_of_id),
        names.keys().map(|name| name.to_string()).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const MIXED: &str = "age,color,score,label\n\
        30,red,1.5,yes\n\
        40,blue,,no\n\
        50,red,2.5,yes\n\
        ,green,3.5,no\n";

    /// `MIXED` as people.csv, and a one-row test file beside it.
    fn people(dir: &Path) -> (PathBuf, PathBuf) {
        let train = write(dir, "people.csv", MIXED);
        let test = write(
            dir,
            "people-test.csv",
            "age,color,score,label\n35,blue,NA,no\n",
        );
        (train, test)
    }

    #[test]
    fn kinds_are_detected_and_missing_cells_stay_missing() {
        let dir = tempfile::tempdir().unwrap();
        let (train, test) = people(dir.path());
        let splits = load_table(&train, Some(&test), &TableOptions::default()).unwrap();
        let columns = &splits.train.columns;
        assert_eq!(columns[0].kind, ColumnKind::Numeric);
        assert_eq!(
            columns[1].kind,
            ColumnKind::Categorical {
                categories: vec!["blue".into(), "green".into(), "red".into()]
            }
        );
        assert_eq!(columns[2].kind, ColumnKind::Numeric);
        let train = &splits.train;
        assert_eq!(train.len, 4);
        assert_eq!(train.class_names, vec!["no", "yes"]);
        assert_eq!(train.labels.as_deref(), Some(&[1u16, 0, 1, 0][..]));
        // Age standardized: (30 − 40) / √(200/3); color code 2 (red) as it is.
        let z = (-10.0 / (200.0f64 / 3.0).sqrt()) as f32;
        assert_eq!(&train.row(0)[..2], &[z, 2.0]);
        assert!(train.row(1)[2].is_nan() && train.row_missing(1)[2]);
        assert!(train.row(3)[0].is_nan() && train.row_missing(3) == [true, false, false]);
        assert_eq!(splits.test.row(0)[1], 0.0, "blue");
        assert!(splits.test.row_missing(0)[2], "NA is missing");
        // Statistics leave the missing cells out: age 30, 40, 50.
        let age = &splits.stats.columns[0];
        assert_eq!((age.present, age.missing), (3, 1));
        assert!((age.mean - 40.0).abs() < 1e-12);
        assert!((age.std - (200.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((age.min, age.max), (30.0, 50.0));
        let json = splits.stats.to_json();
        assert_eq!(json[1]["kind"], "categorical");
        assert_eq!(json[1]["categories"][2], "red");
    }

    #[test]
    fn declared_kinds_win_and_integer_labels_take_the_classes_file() {
        let dir = tempfile::tempdir().unwrap();
        let train = write(dir.path(), "t.csv", "zip,x,label\n10,1,0\n20,2,1\n10,3,1\n");
        write(dir.path(), "t.classes.txt", "cat\ndog\n");
        let options = TableOptions {
            categorical: vec!["zip".into()],
            holdout_fraction: 0.0,
            ..Default::default()
        };
        let splits = load_table(&train, None, &options).unwrap();
        assert_eq!(
            splits.train.columns[0].kind,
            ColumnKind::Categorical {
                categories: vec!["10".into(), "20".into()]
            }
        );
        assert_eq!(splits.train.class_names, vec!["cat", "dog"]);
        assert_eq!(splits.train.labels.as_deref(), Some(&[0u16, 1, 1][..]));
        assert_eq!(splits.test.len, 0);

        let options = TableOptions {
            numeric: vec!["color".into()],
            ..Default::default()
        };
        let train = write(dir.path(), "people.csv", MIXED);
        let error = load_table(&train, None, &options).unwrap_err().to_string();
        assert!(
            error.contains("people.csv") && error.contains("line 2") && error.contains("\"red\""),
            "{error}"
        );
    }

    #[test]
    fn a_held_out_split_is_stratified_and_its_categories_come_from_training() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("f,label\n");
        for row in 0..100 {
            text.push_str(&format!("{},{}\n", row, row % 2));
        }
        let train = write(dir.path(), "big.csv", &text);
        let splits = load_table(&train, None, &TableOptions::default()).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (80, 20));
        let ones = splits
            .test
            .labels
            .as_ref()
            .unwrap()
            .iter()
            .filter(|&&l| l == 1)
            .count();
        assert_eq!(ones, 10);
        // The statistics are the training rows' only: standardized, they have mean 0, std 1.
        let values = splits.train.values.as_slice();
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / 80.0;
        let variance = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / 80.0;
        assert!(
            mean.abs() < 1e-6 && (variance - 1.0).abs() < 1e-5,
            "{mean} {variance}"
        );
        let raw_mean = splits.stats.columns[0].mean;
        assert!((40.0..60.0).contains(&raw_mean), "{raw_mean}");
    }

    #[test]
    fn malformed_files_are_named_with_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let short = write(dir.path(), "short.csv", "a,b,label\n1,2,0\n3,0\n");
        let error = load_table(&short, None, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("short.csv") && error.contains("line 3") && error.contains("3 fields"),
            "{error}"
        );

        let no_label = write(dir.path(), "nolabel.csv", "a,b\n1,2\n");
        let error = load_table(&no_label, None, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("nolabel.csv") && error.contains("\"label\""),
            "{error}"
        );

        let train = write(dir.path(), "train.csv", MIXED);
        let test = write(
            dir.path(),
            "test.csv",
            "age,color,score,label\n1,purple,2,no\n",
        );
        let error = load_table(&train, Some(&test), &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("test.csv")
                && error.contains("line 2")
                && error.contains("\"color\"")
                && error.contains("purple"),
            "{error}"
        );

        let test = write(
            dir.path(),
            "test2.csv",
            "age,color,score,label\n1,red,2,maybe\n",
        );
        let error = load_table(&train, Some(&test), &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("maybe") && error.contains("line 2"),
            "{error}"
        );

        let empty = write(dir.path(), "empty.csv", "a,label\n");
        let error = load_table(&empty, None, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("empty.csv") && error.contains("no rows"),
            "{error}"
        );

        let unlabeled = write(dir.path(), "gap.csv", "a,label\n1,0\n2,\n");
        let error = load_table(&unlabeled, None, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3") && error.contains("empty label"),
            "{error}"
        );

        let infinite = write(dir.path(), "inf.csv", "a,label\n1,0\ninf,1\n");
        let error = load_table(&infinite, None, &TableOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 3") && error.contains("finite"),
            "{error}"
        );
    }

    /// Past `memory_limit_mb` both splits' values (and a subset's) live in mapped files and
    /// read exactly as in memory.
    #[test]
    fn a_table_past_its_memory_limit_is_mapped_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let (train, test) = people(dir.path());
        let load = |memory_limit_mb| {
            let options = TableOptions {
                memory_limit_mb,
                ..Default::default()
            };
            load_table(&train, Some(&test), &options).unwrap()
        };
        let (memory, mapped) = (load(4096), load(0));
        let bits = |set: &TableSet| set.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (a, b) in [(&memory.train, &mapped.train), (&memory.test, &mapped.test)] {
            assert!(!a.values.is_mapped() && b.values.is_mapped());
            assert_eq!(bits(a), bits(b));
            assert_eq!(a.labels, b.labels);
        }
        assert_eq!(memory.stats, mapped.stats);
        let subset = mapped.train.subset(&[3, 0]);
        assert!(subset.values.is_mapped());
        assert_eq!(bits(&subset), bits(&memory.train.subset(&[3, 0])));
    }

    /// Class codes are 16-bit: a label column with more distinct values (a feature named as
    /// the label by mistake) is an error naming the line, not codes that wrap around.
    #[test]
    fn more_distinct_labels_than_codes_is_an_error() {
        let mut text = String::from("x,label\n");
        for row in 0..=MAX_LABELS {
            text.push_str(&format!("1,c{row}\n"));
        }
        let error = load_csv_bytes(text.as_bytes(), "wide.csv", &TableOptions::default())
            .unwrap_err()
            .to_string();
        let line = format!("line {}", MAX_LABELS + 2);
        assert!(
            error.contains("wide.csv") && error.contains(&line) && error.contains("65536"),
            "{error}"
        );
    }

    /// A Parquet file (snappy, with nulls) loads exactly as the same table in CSV; a file
    /// that is not Parquet is named.
    #[test]
    fn parquet_reads_like_the_same_csv() {
        use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
        use parquet::arrow::ArrowWriter;
        use parquet::basic::Compression;
        use parquet::file::properties::WriterProperties;

        let dir = tempfile::tempdir().unwrap();
        let csv = write(dir.path(), "people.csv", MIXED);
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "age",
                std::sync::Arc::new(Int64Array::from(vec![Some(30), Some(40), Some(50), None])),
            ),
            (
                "color",
                std::sync::Arc::new(StringArray::from(vec!["red", "blue", "red", "green"])),
            ),
            (
                "score",
                std::sync::Arc::new(Float64Array::from(vec![
                    Some(1.5),
                    None,
                    Some(2.5),
                    Some(3.5),
                ])),
            ),
            (
                "label",
                std::sync::Arc::new(StringArray::from(vec!["yes", "no", "yes", "no"])),
            ),
        ];
        let batch = RecordBatch::try_from_iter(columns).unwrap();
        let path = dir.path().join("people.parquet");
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut writer = ArrowWriter::try_new(
            std::fs::File::create(&path).unwrap(),
            batch.schema(),
            Some(properties),
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();

        let options = TableOptions {
            holdout_fraction: 0.0,
            ..Default::default()
        };
        let from_csv = load_table(&csv, None, &options).unwrap();
        let from_parquet = load_table(&path, None, &options).unwrap();
        assert_eq!(from_parquet.train.columns, from_csv.train.columns);
        assert_eq!(from_parquet.stats, from_csv.stats);
        for (a, b) in [
            (&from_parquet.train, &from_csv.train),
            (&from_parquet.test, &from_csv.test),
        ] {
            assert_eq!(a.labels, b.labels);
            let (x, y) = (a.values.as_slice(), b.values.as_slice());
            let same = x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
            assert!(same, "{x:?} vs {y:?}");
        }

        let fake = write(dir.path(), "fake.parquet", "a,label\n1,0\n");
        let error = load_table(&fake, None, &options).unwrap_err().to_string();
        assert!(
            error.contains("fake.parquet") && error.contains("Parquet"),
            "{error}"
        );
    }

    /// The shared UCI tables load with their documented shapes and classes.
    #[test]
    fn shared_tables_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/tabular");
        if !dir.exists() {
            eprintln!("skipped: {} is absent", dir.display());
            return;
        }
        for (file, rows, width, classes, missing) in [
            ("letter_recognition.csv", 20000, 16, 26, 0),
            ("satellite.csv", 6435, 36, 6, 0),
            ("breast_cancer.csv", 699, 9, 2, 16),
        ] {
            let splits = load_table(&dir.join(file), None, &TableOptions::default()).unwrap();
            assert_eq!(splits.train.len + splits.test.len, rows, "{file}");
            assert_eq!(splits.train.width(), width, "{file}");
            assert_eq!(splits.train.class_names.len(), classes, "{file}");
            let holes = splits.train.values.iter().chain(splits.test.values.iter());
            assert_eq!(holes.filter(|v| v.is_nan()).count(), missing, "{file}");
            assert!(splits
                .train
                .columns
                .iter()
                .all(|column| column.kind == ColumnKind::Numeric));
        }
    }
}

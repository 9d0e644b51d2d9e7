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
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::DataError;
use crate::split::stratified_split;

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
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            label: "label".to_string(),
            categorical: Vec::new(),
            numeric: Vec::new(),
            holdout_fraction: 0.2,
            split_seed: 0,
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
    /// mean and standard deviation, or the category code as f32; NaN where the cell is missing.
    pub values: Vec<f32>,
    /// `len × columns`, row-major: true where the cell is missing.
    pub missing: Vec<bool>,
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
        &self.values[index * self.width()..(index + 1) * self.width()]
    }

    /// The missing-cell flags of row `index`.
    pub fn row_missing(&self, index: usize) -> &[bool] {
        &self.missing[index * self.width()..(index + 1) * self.width()]
    }

    /// A new set of the rows at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> TableSet {
        let mut values = Vec::with_capacity(indices.len() * self.width());
        let mut missing = Vec::with_capacity(indices.len() * self.width());
        for &index in indices {
            values.extend_from_slice(self.row(index));
            missing.extend_from_slice(self.row_missing(index));
        }
        TableSet {
            columns: Arc::clone(&self.columns),
            len: indices.len(),
            values,
            missing,
            labels: self
                .labels
                .as_ref()
                .map(|labels| indices.iter().map(|&index| labels[index]).collect()),
            class_names: self.class_names.clone(),
            training_stats: Arc::clone(&self.training_stats),
        }
    }

    /// Numeric columns to `(x − mean) / std` with `stats` (a constant column to `x − mean`);
    /// categorical codes and missing cells are left as they are.
    fn standardize(&mut self, stats: &TableStats) {
        let width = self.width();
        for (column, (spec, column_stats)) in self.columns.iter().zip(&stats.columns).enumerate() {
            if spec.kind != ColumnKind::Numeric {
                continue;
            }
            let scale = if column_stats.std > 0.0 {
                column_stats.std
            } else {
                1.0
            };
            for row in 0..self.len {
                let value = &mut self.values[row * width + column];
                *value = ((f64::from(*value) - column_stats.mean) / scale) as f32;
            }
        }
    }

    /// Number of classes: the class names' count when known, else max label + 1.
    pub fn num_classes(&self) -> usize {
        crate::split::class_count(self.labels.as_deref(), &self.class_names)
    }

    /// Per-column statistics of these rows (missing cells left out).
    pub fn compute_stats(&self) -> TableStats {
        let width = self.width();
        let columns = self
            .columns
            .iter()
            .enumerate()
            .map(|(column, spec)| {
                let present: Vec<f64> = (0..self.len)
                    .filter(|&row| !self.missing[row * width + column])
                    .map(|row| f64::from(self.values[row * width + column]))
                    .collect();
                let count = present.len();
                let mean = present.iter().sum::<f64>() / count.max(1) as f64;
                let variance =
                    present.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count.max(1) as f64;
                let (min, max) = present
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                        (lo.min(v), hi.max(v))
                    });
                ColumnStats {
                    name: spec.name.clone(),
                    categories: match &spec.kind {
                        ColumnKind::Numeric => None,
                        ColumnKind::Categorical { categories } => Some(categories.clone()),
                    },
                    present: count,
                    missing: self.len - count,
                    mean,
                    std: variance.sqrt(),
                    min: if count == 0 { f64::NAN } else { min },
                    max: if count == 0 { f64::NAN } else { max },
                }
            })
            .collect();
        TableStats { columns }
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

/// The cells of a CSV file as text, with the line each row came from.
struct RawTable {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    lines: Vec<u64>,
}

fn read_csv(path: &Path) -> Result<RawTable, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_csv_from(file, path)
}

/// The cells of the CSV text `input`; `path` names it in errors.
fn read_csv_from(input: impl std::io::Read, path: &Path) -> Result<RawTable, DataError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
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
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| csv_error(path, error))?;
        lines.push(record.position().map_or(0, |position| position.line()));
        rows.push(record.iter().map(|cell| cell.trim().to_string()).collect());
    }
    if rows.is_empty() {
        return Err(DataError::EmptyTable {
            path: path.to_path_buf(),
            details: "a header but no rows".to_string(),
        });
    }
    Ok(RawTable {
        path: path.to_path_buf(),
        header,
        rows,
        lines,
    })
}

/// Reads a Parquet file (any compression this build reads: snappy, gzip, lz4, zstd) into
/// the same cells a CSV gives.
///
/// The parquet crate (60.1) panics on some corrupt files instead of returning an error (a
/// negative column chunk offset, a dictionary-encoded page without a dictionary page, a
/// null bitmap or byte-stream-split page shorter than its values): such a panic becomes
/// the error of an unreadable file.
fn read_parquet(path: &Path) -> Result<RawTable, DataError> {
    crate::error::catch_quietly(|| read_parquet_cells(path)).unwrap_or_else(|message| {
        Err(DataError::BadRecord {
            path: path.to_path_buf(),
            line: 0,
            expected: "a readable Parquet file".to_string(),
            found: format!("a corrupt file the Parquet reader fails on: {message}"),
        })
    })
}

fn read_parquet_cells(path: &Path) -> Result<RawTable, DataError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_schema::DataType;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::reader::ChunkReader;

    let bad = |found: String| DataError::BadRecord {
        path: path.to_path_buf(),
        line: 0,
        expected: "a readable Parquet file".to_string(),
        found,
    };
    let io_error = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    // The whole file is read into memory first: page headers are then parsed from memory,
    // not with a system call per byte. A corrupt page header listing 2^31 booleans (which
    // parquet's thrift reader skips without reading a byte each) took 30 s of such calls on
    // a 6 KB file; from memory it takes about 2 s.
    let file = std::fs::File::open(path).map_err(io_error)?;
    let len = file.metadata().map_err(io_error)?.len();
    let data = file
        .get_bytes(0, len as usize)
        .map_err(|error| bad(error.to_string()))?;
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(data).map_err(|error| bad(error.to_string()))?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|field| field.name().trim().to_string())
        .collect();
    let reader = builder.build().map_err(|error| bad(error.to_string()))?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|error| bad(error.to_string()))?;
        let first = rows.len();
        rows.extend((0..batch.num_rows()).map(|_| Vec::with_capacity(header.len())));
        for (column, array) in batch.columns().iter().enumerate() {
            macro_rules! cells {
                ($values:expr) => {{
                    let values = $values;
                    for row in 0..batch.num_rows() {
                        let cell = if array.is_null(row) {
                            String::new()
                        } else {
                            values.value(row).to_string()
                        };
                        rows[first + row].push(cell);
                    }
                }};
            }
            match array.data_type() {
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
                DataType::Null => {
                    for row in 0..batch.num_rows() {
                        rows[first + row].push(String::new());
                    }
                }
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
            }
        }
    }
    if rows.is_empty() {
        return Err(DataError::EmptyTable {
            path: path.to_path_buf(),
            details: "a schema but no rows".to_string(),
        });
    }
    let lines = (1..=rows.len() as u64).collect();
    Ok(RawTable {
        path: path.to_path_buf(),
        header,
        rows,
        lines,
    })
}

/// Whether `path` names a Parquet file (by its extension).
pub fn is_parquet(path: &Path) -> bool {
    crate::source::has_extension(path, "parquet")
}

/// Reads a CSV or (by extension) Parquet table.
fn read_table(path: &Path) -> Result<RawTable, DataError> {
    if is_parquet(path) {
        read_parquet(path)
    } else {
        read_csv(path)
    }
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
pub fn load_table(
    train: &Path,
    test: Option<&Path>,
    options: &TableOptions,
) -> Result<TableSplits, DataError> {
    let train_raw = read_table(train)?;
    let test_raw = test.map(read_table).transpose()?;
    let classes_file = train.with_extension("classes.txt");
    split_table(train_raw, test_raw, Some(&classes_file), options)
}

/// [`load_table`] on CSV text held in memory, without a test file (a stratified share of
/// the rows is held out); `name` stands for the file in errors and names the table. No
/// class names file is looked up: integer labels stay unnamed.
pub fn load_csv_bytes(
    bytes: &[u8],
    name: &str,
    options: &TableOptions,
) -> Result<TableSplits, DataError> {
    let raw = read_csv_from(bytes, Path::new(name))?;
    split_table(raw, None, None, options)
}

/// The rest of [`load_table`] once the cells are read; integer class codes are named by
/// `classes_file` (one name per line) when it is given and exists.
fn split_table(
    train_raw: RawTable,
    test_raw: Option<RawTable>,
    classes_file: Option<&Path>,
    options: &TableOptions,
) -> Result<TableSplits, DataError> {
    let train = train_raw.path.as_path();
    if let Some(test_raw) = &test_raw {
        if test_raw.header != train_raw.header {
            return Err(DataError::BadRecord {
                path: test_raw.path.clone(),
                line: 1,
                expected: format!(
                    "the columns of {}: {}",
                    train.display(),
                    train_raw.header.join(",")
                ),
                found: test_raw.header.join(","),
            });
        }
    }
    let label_column = train_raw
        .header
        .iter()
        .position(|name| *name == options.label)
        .ok_or_else(|| DataError::BadRecord {
            path: train.to_path_buf(),
            line: 1,
            expected: format!(
                "a label column named {:?} (data.table.label)",
                options.label
            ),
            found: format!("the columns {}", train_raw.header.join(", ")),
        })?;
    for declared in options.categorical.iter().chain(&options.numeric) {
        if !train_raw.header.contains(declared) {
            return Err(DataError::BadRecord {
                path: train.to_path_buf(),
                line: 1,
                expected: format!("a column named {declared:?}, as declared"),
                found: format!("the columns {}", train_raw.header.join(", ")),
            });
        }
    }

    // Labels of every row of both files, then the split.
    let raws: Vec<&RawTable> = std::iter::once(&train_raw).chain(&test_raw).collect();
    let (codes, class_names) = label_codes(&raws, label_column, train, classes_file)?;
    let (train_rows, test_rows): (Vec<usize>, Vec<(usize, usize)>) = match &test_raw {
        Some(_) => (
            (0..train_raw.rows.len()).collect(),
            (0..raws[1].rows.len()).map(|row| (1, row)).collect(),
        ),
        None => {
            let (train_rows, test_rows) =
                stratified_split(&codes[0], options.holdout_fraction, options.split_seed);
            (
                train_rows,
                test_rows.into_iter().map(|row| (0, row)).collect(),
            )
        }
    };
    let train_cells: Vec<(usize, usize)> = train_rows.iter().map(|&row| (0, row)).collect();

    // Column kinds: declared, or numeric when every non-missing cell of both files parses.
    let mut columns = Vec::new();
    let feature_indices: Vec<usize> = (0..train_raw.header.len())
        .filter(|&column| column != label_column)
        .collect();
    for &column in &feature_indices {
        let name = &train_raw.header[column];
        let numeric_cells = raws.iter().all(|raw| {
            raw.rows
                .iter()
                .all(|row| is_missing(&row[column]) || row[column].parse::<f64>().is_ok())
        });
        let kind = if options.categorical.contains(name) {
            categorical_kind(&train_raw, &train_rows, column)
        } else if options.numeric.contains(name) || numeric_cells {
            if !numeric_cells {
                let (raw, row) = raws
                    .iter()
                    .flat_map(|raw| raw.rows.iter().enumerate().map(move |(row, _)| (*raw, row)))
                    .find(|(raw, row)| {
                        let cell = &raw.rows[*row][column];
                        !is_missing(cell) && cell.parse::<f64>().is_err()
                    })
                    .expect("some cell is not numeric");
                return Err(DataError::BadRecord {
                    path: raw.path.clone(),
                    line: raw.lines[row] as usize,
                    expected: format!("a number in column {name:?} (declared numeric)"),
                    found: format!("{:?}", raw.rows[row][column]),
                });
            }
            ColumnKind::Numeric
        } else {
            categorical_kind(&train_raw, &train_rows, column)
        };
        columns.push(TableColumn {
            name: name.clone(),
            kind,
        });
    }
    let columns = Arc::new(columns);

    let build = |cells: &[(usize, usize)]| -> Result<TableSet, DataError> {
        let width = columns.len();
        let mut values = Vec::with_capacity(cells.len() * width);
        let mut missing = Vec::with_capacity(cells.len() * width);
        for &(file, row) in cells {
            let raw = raws[file];
            for (spec, &column) in columns.iter().zip(&feature_indices) {
                let cell = &raw.rows[row][column];
                if is_missing(cell) {
                    values.push(f32::NAN);
                    missing.push(true);
                    continue;
                }
                let value = match &spec.kind {
                    ColumnKind::Numeric => cell.parse::<f64>().expect("checked numeric") as f32,
                    ColumnKind::Categorical { categories } => {
                        match categories.binary_search(cell) {
                            Ok(code) => code as f32,
                            Err(_) => {
                                return Err(DataError::BadRecord {
                                    path: raw.path.clone(),
                                    line: raw.lines[row] as usize,
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
                        path: raw.path.clone(),
                        line: raw.lines[row] as usize,
                        expected: format!("a finite number in column {:?}", spec.name),
                        found: format!("{cell:?}"),
                    });
                }
                values.push(value);
                missing.push(false);
            }
        }
        Ok(TableSet {
            columns: Arc::clone(&columns),
            len: cells.len(),
            values,
            missing,
            labels: Some(cells.iter().map(|&(file, row)| codes[file][row]).collect()),
            class_names: class_names.clone(),
            training_stats: Arc::new(TableStats {
                columns: Vec::new(),
            }),
        })
    };
    let mut train_set = build(&train_cells)?;
    let mut test_set = build(&test_rows)?;
    let stats = train_set.compute_stats();
    train_set.standardize(&stats);
    test_set.standardize(&stats);
    let shared = Arc::new(stats.clone());
    train_set.training_stats = Arc::clone(&shared);
    test_set.training_stats = shared;
    Ok(TableSplits {
        train: train_set,
        test: test_set,
        name: train
            .file_stem()
            .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned()),
        stats,
    })
}

/// The sorted distinct non-missing values of `column` in the training rows.
fn categorical_kind(raw: &RawTable, train_rows: &[usize], column: usize) -> ColumnKind {
    let categories: BTreeSet<&str> = train_rows
        .iter()
        .map(|&row| raw.rows[row][column].as_str())
        .filter(|cell| !is_missing(cell))
        .collect();
    ColumnKind::Categorical {
        categories: categories.into_iter().map(str::to_string).collect(),
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
/// (named by `classes_file` when it exists), any other labels are coded in sorted order.
fn label_codes(
    raws: &[&RawTable],
    column: usize,
    train: &Path,
    classes_file: Option<&Path>,
) -> Result<(Vec<Vec<u16>>, Vec<String>), DataError> {
    for raw in raws {
        if let Some(row) = raw.rows.iter().position(|row| is_missing(&row[column])) {
            return Err(DataError::BadRecord {
                path: raw.path.clone(),
                line: raw.lines[row] as usize,
                expected: "a label in every row".to_string(),
                found: "an empty label".to_string(),
            });
        }
    }
    let integer = raws.iter().all(|raw| {
        raw.rows
            .iter()
            .all(|row| row[column].parse::<u16>().is_ok())
    });
    if integer {
        let codes: Vec<Vec<u16>> = raws
            .iter()
            .map(|raw| {
                raw.rows
                    .iter()
                    .map(|row| row[column].parse().expect("checked"))
                    .collect()
            })
            .collect();
        let class_names = classes_file.map_or_else(Vec::new, read_class_names);
        if let Some(names_path) = classes_file.filter(|_| !class_names.is_empty()) {
            for (raw, file_codes) in raws.iter().zip(&codes) {
                if let Some(row) = file_codes
                    .iter()
                    .position(|&code| usize::from(code) >= class_names.len())
                {
                    return Err(DataError::BadRecord {
                        path: raw.path.clone(),
                        line: raw.lines[row] as usize,
                        expected: format!(
                            "a class code below {} (the classes named in {})",
                            class_names.len(),
                            names_path.display()
                        ),
                        found: format!("{}", file_codes[row]),
                    });
                }
            }
        }
        return Ok((codes, class_names));
    }
    let names: BTreeMap<&str, u16> = raws[0]
        .rows
        .iter()
        .map(|row| row[column].as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .enumerate()
        .map(|(code, name)| (name, code as u16))
        .collect();
    let mut codes = Vec::new();
    for raw in raws {
        let mut file_codes = Vec::with_capacity(raw.rows.len());
        for (row, cells) in raw.rows.iter().enumerate() {
            match names.get(cells[column].as_str()) {
                Some(&code) => file_codes.push(code),
                None => {
                    return Err(DataError::UnknownLabel {
                        path: raw.path.clone(),
                        line: raw.lines[row] as usize,
                        label: cells[column].clone(),
                        train: train.to_path_buf(),
                        known: names.keys().copied().collect::<Vec<_>>().join(", "),
                    })
                }
            }
        }
        codes.push(file_codes);
    }
    Ok((codes, names.keys().map(|name| name.to_string()).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn kinds_are_detected_and_missing_cells_stay_missing() {
        let dir = tempfile::tempdir().unwrap();
        let train = write(dir.path(), "people.csv", MIXED);
        let test = write(
            dir.path(),
            "people-test.csv",
            "age,color,score,label\n35,blue,NA,no\n",
        );
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
        let values = &splits.train.values;
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
            assert_eq!(a.missing, b.missing);
            assert_eq!(a.labels, b.labels);
            let same = a
                .values
                .iter()
                .zip(&b.values)
                .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()));
            assert!(same, "{:?} vs {:?}", a.values, b.values);
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
            let holes = splits.train.missing.iter().chain(&splits.test.missing);
            assert_eq!(holes.filter(|&&m| m).count(), missing, "{file}");
            assert!(splits
                .train
                .columns
                .iter()
                .all(|column| column.kind == ColumnKind::Numeric));
        }
    }
}

//! [`load_table`]: the files streamed in three passes (labels and column kinds, the
//! training split's categories, then the values straight into each split's store).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use super::set::{ColumnKind, TableColumn, TableOptions, TableSet, TableSplits};
use super::source::{is_missing, TableSource};
use super::stats::{standardize, statistics};
use super::survey::{label_codes, survey};
use crate::error::DataError;
use crate::split::stratified_in_training;
use crate::store::{megabytes, Store};

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

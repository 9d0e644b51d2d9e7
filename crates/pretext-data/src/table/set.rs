//! A table's rows in memory or a mapped file ([`TableSet`]), its columns, and the options
//! that read it.

use std::sync::Arc;

use super::stats::{statistics, TableStats};
use crate::store::Store;

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

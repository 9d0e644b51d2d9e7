//! Per-column statistics of the training split ([`TableStats`]), and the standardization
//! of numeric columns with them.

use super::set::{ColumnKind, TableColumn};

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

/// Per-column statistics of `values` (`rows × columns`, row-major, NaN where missing),
/// missing cells left out, in one pass for the sums and one for the squared deviations.
pub(super) fn statistics(columns: &[TableColumn], values: &[f32]) -> TableStats {
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
pub(super) fn standardize(columns: &[TableColumn], stats: &TableStats, values: &mut [f32]) {
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

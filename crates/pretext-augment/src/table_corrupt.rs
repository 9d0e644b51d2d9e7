//! Corrupting table rows from the columns' empirical marginals: the views of VIME (Yoon et
//! al. 2020: each cell hidden with probability p_m) and SCARF (Bahri et al. 2022: a fixed
//! share of each row's cells).
//!
//! A chosen cell of column c takes column c of a uniformly drawn row of the pool (the training
//! rows), missing flag included: a draw from that column's marginal distribution, so a
//! corrupted row looks plausible cell by cell but breaks the dependencies between columns.

use rand::seq::index::sample;
use rand::Rng;

/// Which cells of a row to corrupt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CorruptionScheme {
    /// Each cell independently with this probability (VIME's mask vector, p_m).
    Bernoulli(f64),
    /// Exactly `round(share · width)` cells, chosen uniformly (SCARF's corruption rate).
    Share(f64),
}

/// The rows a corruption draws replacement cells from: `len × width` values, row-major,
/// NaN exactly where a cell is missing.
#[derive(Clone, Copy, Debug)]
pub struct MarginalPool<'a> {
    pub values: &'a [f32],
    pub width: usize,
}

impl MarginalPool<'_> {
    pub fn len(&self) -> usize {
        self.values.len() / self.width.max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One corrupted row.
#[derive(Clone, Debug, PartialEq)]
pub struct CorruptedRow {
    pub values: Vec<f32>,
    pub missing: Vec<bool>,
    /// True where the cell was replaced (the target of VIME's mask estimator).
    pub mask: Vec<bool>,
}

/// Corrupts the row (`values`, `missing`, one entry per column) per `scheme` with cells from
/// `pool`. Panics if the pool is empty or its width differs from the row's (caller bugs).
pub fn corrupt_row<R: Rng + ?Sized>(
    values: &[f32],
    missing: &[bool],
    scheme: CorruptionScheme,
    pool: MarginalPool<'_>,
    rng: &mut R,
) -> CorruptedRow {
    let width = values.len();
    assert_eq!(pool.width, width, "pool and row widths differ");
    assert!(!pool.is_empty(), "empty marginal pool");
    let mask: Vec<bool> = match scheme {
        CorruptionScheme::Bernoulli(probability) => {
            let probability = probability.clamp(0.0, 1.0);
            (0..width).map(|_| rng.random_bool(probability)).collect()
        }
        CorruptionScheme::Share(share) => {
            let count = ((width as f64 * share.clamp(0.0, 1.0)).round() as usize).min(width);
            let mut mask = vec![false; width];
            for column in sample(rng, width, count).into_iter() {
                mask[column] = true;
            }
            mask
        }
    };
    let mut out_values = values.to_vec();
    let mut out_missing = missing.to_vec();
    for column in (0..width).filter(|&column| mask[column]) {
        let donor = rng.random_range(0..pool.len());
        out_values[column] = pool.values[donor * width + column];
        out_missing[column] = out_values[column].is_nan();
    }
    CorruptedRow {
        values: out_values,
        missing: out_missing,
        mask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// A pool whose column c holds only values 100·c + row (row < 50), one cell (row 7 of
    /// column 0) missing.
    fn pool_data(width: usize) -> Vec<f32> {
        let mut values = Vec::new();
        for row in 0..50 {
            for column in 0..width {
                let missing = row == 7 && column == 0;
                values.push(if missing {
                    f32::NAN
                } else {
                    (100 * column + row) as f32
                });
            }
        }
        values
    }

    #[test]
    fn bernoulli_mask_hides_about_p_of_the_cells() {
        let width = 20;
        let values = pool_data(width);
        let pool = MarginalPool {
            values: &values,
            width,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let row = vec![-1.0f32; width];
        let flags = vec![false; width];
        let mut hidden = 0usize;
        let rows = 5000;
        for _ in 0..rows {
            let out = corrupt_row(
                &row,
                &flags,
                CorruptionScheme::Bernoulli(0.3),
                pool,
                &mut rng,
            );
            hidden += out.mask.iter().filter(|&&m| m).count();
            // Kept cells are untouched, replaced ones differ (the pool never holds -1).
            for column in 0..width {
                assert_eq!(out.values[column] == -1.0, !out.mask[column]);
            }
        }
        // 100 000 cells: the share is within 4 standard deviations (0.0058) of 0.3.
        let share = hidden as f64 / (rows * width) as f64;
        assert!((share - 0.3).abs() < 0.006, "{share}");
    }

    #[test]
    fn share_corrupts_exactly_its_count_per_row_from_each_columns_marginal() {
        let width = 9;
        let values = pool_data(width);
        let pool = MarginalPool {
            values: &values,
            width,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let row = vec![-1.0f32; width];
        let flags = vec![false; width];
        let mut donors_seen = vec![0usize; 50];
        let mut missing_copied = 0;
        for _ in 0..4000 {
            let out = corrupt_row(&row, &flags, CorruptionScheme::Share(0.6), pool, &mut rng);
            // round(0.6 · 9) = 5 cells, every row.
            assert_eq!(out.mask.iter().filter(|&&m| m).count(), 5);
            for column in (0..width).filter(|&c| out.mask[c]) {
                let donor = if out.values[column].is_nan() {
                    7
                } else {
                    out.values[column] as usize - 100 * column
                };
                assert!(donor < 50, "column {column} got {}", out.values[column]);
                let hole = column == 0 && donor == 7;
                assert_eq!(
                    out.missing[column], hole,
                    "the missing flag travels with its cell"
                );
                if column == 0 {
                    donors_seen[donor] += 1;
                    missing_copied += usize::from(hole);
                }
            }
        }
        // Column 0 is chosen 5/9 of the time: ~2222 draws over 50 donors, ~44 each.
        assert!(
            donors_seen.iter().all(|&count| (15..=80).contains(&count)),
            "{donors_seen:?}"
        );
        assert_eq!(missing_copied, donors_seen[7]);
        // The same seed gives the same corruption.
        let mut a = ChaCha8Rng::seed_from_u64(9);
        let mut b = ChaCha8Rng::seed_from_u64(9);
        assert_eq!(
            corrupt_row(&row, &flags, CorruptionScheme::Share(0.6), pool, &mut a),
            corrupt_row(&row, &flags, CorruptionScheme::Share(0.6), pool, &mut b)
        );
    }
}

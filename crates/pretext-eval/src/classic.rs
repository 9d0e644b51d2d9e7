//! The classic alternatives to self-supervised pretraining, on exactly the probe's splits:
//! multinomial logistic regression (linfa-logistic) on the raw features, on their principal
//! components, and on their distances to k-means centroids (linfa-clustering).
//!
//! PCA is the eigendecomposition of the covariance matrix by libtorch (`linalg_eigh`, LAPACK),
//! not linfa-reduction's: without a system BLAS, linfa's truncated SVD runs LOBPCG, which
//! panicked with "NaN values in array" (linfa-linalg 0.2.1, eigh.rs:327) on plain 5-column
//! Gaussian blobs (the test `baselines_separate_blobs_and_not_shuffled_labels`). PCA and k-means are unsupervised: they are fitted on the unlabeled
//! pool (the training split, up to `fit_rows` rows of it), as pretraining is; the logistic
//! regressions see only the labeled subset. The raw features are standardized with the
//! pool's mean and standard deviation before everything; the k-means distances too, the
//! principal components not (they keep their variances).

use linfa::prelude::*;
use linfa_clustering::KMeans;
use linfa_logistic::MultiLogisticRegression;
use ndarray::{Array1, Array2, Axis};
use rand_xoshiro::rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;

/// Settings of the classic baselines.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicConfig {
    /// Principal components kept (at most half the count of non-constant features).
    pub pca_components: usize,
    /// k-means clusters.
    pub kmeans_clusters: usize,
    /// L2 penalty of the logistic regressions (linfa's `alpha`). 0.1 by measurement: with
    /// linfa's default of 1, L-BFGS stopped early on letter_recognition's 16 principal
    /// components with all 15 998 training rows (55.7% test accuracy instead of 76.9%, the
    /// raw features' result, which the same components must reach); 0.1 and 0.01 reach 76.9%
    /// there and agree within 1–4 points at 160 and 1600 rows.
    pub l2: f64,
    /// L-BFGS iterations of the logistic regressions.
    pub max_iterations: u64,
    /// Pool rows PCA and k-means are fitted on (evenly spaced when the pool is larger).
    pub fit_rows: usize,
    /// Seed of k-means' initialization.
    pub seed: u64,
}

impl Default for ClassicConfig {
    fn default() -> Self {
        ClassicConfig {
            pca_components: 32,
            kmeans_clusters: 64,
            l2: 0.1,
            max_iterations: 200,
            fit_rows: 10_000,
            seed: 0,
        }
    }
}

/// One baseline's result.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassicResult {
    pub name: &'static str,
    /// Width of the features the regression saw.
    pub dim: usize,
    /// Accuracy on the test rows.
    pub accuracy: f64,
}

/// Features and labels of one split.
pub struct LabeledRows<'a> {
    pub features: &'a Array2<f64>,
    pub labels: &'a [usize],
}

/// Runs the three baselines: `pool` is the unlabeled training features, `labeled` the
/// labeled subset, `test` the held-out rows.
pub fn classic_baselines(
    pool: &Array2<f64>,
    labeled: LabeledRows<'_>,
    test: LabeledRows<'_>,
    config: &ClassicConfig,
) -> Result<Vec<ClassicResult>, String> {
    let features = ClassicFeatures::fit(pool, config)?;
    features
        .transform(labeled.features)
        .into_iter()
        .zip(features.transform(test.features))
        .map(|((name, train), (_, held_out))| {
            Ok(ClassicResult {
                name,
                dim: train.ncols(),
                accuracy: regression_accuracy(
                    &train,
                    labeled.labels,
                    &held_out,
                    test.labels,
                    config,
                )?,
            })
        })
        .collect()
}

/// The three feature maps of the classic baselines, fitted once on the unlabeled pool;
/// several label budgets then only differ in the regressions.
pub struct ClassicFeatures {
    /// The pool's non-constant columns.
    varying: Vec<usize>,
    /// Standardization of those columns.
    raw: Standardizer,
    pca: Pca,
    centroids: Array2<f64>,
    /// Standardization of the distances to the centroids.
    distances: Standardizer,
}

impl ClassicFeatures {
    /// PCA and k-means on (up to `config.fit_rows` evenly spaced rows of) `pool`.
    pub fn fit(pool: &Array2<f64>, config: &ClassicConfig) -> Result<ClassicFeatures, String> {
        // Constant columns (a complete table's missing flags, a border pixel that is always 0)
        // carry nothing and would count towards the PCA's width.
        let varying: Vec<usize> = pool
            .std_axis(Axis(0), 0.0)
            .iter()
            .enumerate()
            .filter(|(_, &spread)| spread > 1e-12)
            .map(|(column, _)| column)
            .collect();
        let fit_pool = every_nth(&pool.select(Axis(1), &varying), config.fit_rows);
        let raw = Standardizer::fit(&fit_pool);
        let standardized = raw.apply(&fit_pool);
        // At most half the (non-constant) features, so that it is a reduction. On standardized
        // features (scikit-learn's StandardScaler → PCA → LogisticRegression), and the
        // components are not standardized again: that would blow the weakest ones, mostly
        // noise, up to the strongest's scale (measured: satellite at 1% labels, 54% instead
        // of 77%).
        let components = config.pca_components.min(varying.len().div_ceil(2)).max(1);
        let pca = Pca::fit(&standardized, components);
        let clusters = config.kmeans_clusters.min(fit_pool.nrows()).max(1);
        let kmeans = KMeans::params_with_rng(clusters, Xoshiro256Plus::seed_from_u64(config.seed))
            .n_runs(1)
            .max_n_iterations(100)
            .fit(&DatasetBase::from(standardized.clone()))
            .map_err(|error| format!("k-means: {error}"))?;
        let centroids = kmeans.centroids().clone();
        let distances = Standardizer::fit(&centroid_distances(&standardized, &centroids));
        Ok(ClassicFeatures {
            varying,
            raw,
            pca,
            centroids,
            distances,
        })
    }

    /// The rows `x` (the pool's columns) as each baseline's regression sees them: the
    /// standardized raw columns, their principal components, the standardized distances to
    /// the k-means centroids — with the name of each baseline.
    pub fn transform(&self, x: &Array2<f64>) -> Vec<(&'static str, Array2<f64>)> {
        let raw = self.raw.apply(&x.select(Axis(1), &self.varying));
        let components = self.pca.project(&raw);
        let distances = self
            .distances
            .apply(&centroid_distances(&raw, &self.centroids));
        vec![
            ("raw + logistic regression", raw),
            ("PCA + logistic regression", components),
            ("k-means + logistic regression", distances),
        ]
    }
}

/// Principal components: the pool's mean and the top eigenvectors of its covariance.
pub struct Pca {
    mean: Array1<f64>,
    /// `[k, D]`, rows ordered by decreasing variance.
    pub components: Array2<f64>,
    /// The variance along each component.
    pub variances: Array1<f64>,
}

impl Pca {
    /// The top `k` components of the rows of `x`. With more columns than rows the
    /// eigenvectors come from the rows' Gram matrix (`n × n`) instead of the `d × d`
    /// covariance, which gives the same components.
    pub fn fit(x: &Array2<f64>, k: usize) -> Pca {
        let (n, d) = x.dim();
        let mean = x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(d));
        let centered = x - &mean;
        let denominator = (n.max(2) - 1) as f64;
        let gram = d > n;
        let product = if gram {
            centered.dot(&centered.t()) / denominator
        } else {
            centered.t().dot(&centered) / denominator
        };
        let side = product.nrows();
        let values: Vec<f64> = product.iter().copied().collect();
        let matrix = tch::Tensor::from_slice(&values).view([side as i64, side as i64]);
        // Ascending eigenvalues, eigenvectors in the columns.
        let (eigenvalues, eigenvectors) = matrix.linalg_eigh("L");
        let k = k.min(side).min(d);
        let to_vec = |t: &tch::Tensor| Vec::<f64>::try_from(t.flatten(0, -1)).expect("f64");
        let variances = Array1::from(to_vec(&eigenvalues.flip([0]).narrow(0, 0, k as i64)));
        let top = eigenvectors
            .flip([1])
            .narrow(1, 0, k as i64)
            .transpose(0, 1)
            .contiguous();
        let top = Array2::from_shape_vec((k, side), to_vec(&top)).expect("k × side");
        let components = if gram {
            // v = Xcᵀ u / √((n − 1) λ), unit length.
            let mut components = top.dot(&centered);
            for (mut row, &variance) in components.axis_iter_mut(Axis(0)).zip(&variances) {
                row /= (denominator * variance.max(1e-12)).sqrt();
            }
            components
        } else {
            top
        };
        Pca {
            mean,
            components,
            variances,
        }
    }

    /// Coordinates of the rows of `x` along the components: `[N, k]`.
    pub fn project(&self, x: &Array2<f64>) -> Array2<f64> {
        (x - &self.mean).dot(&self.components.t())
    }
}

/// At most `limit` rows of `x`, evenly spaced.
fn every_nth(x: &Array2<f64>, limit: usize) -> Array2<f64> {
    let step = x.nrows().div_ceil(limit.max(1)).max(1);
    let rows: Vec<usize> = (0..x.nrows()).step_by(step).collect();
    x.select(Axis(0), &rows)
}

/// Euclidean distance of each row of `x` to each centroid: `[N, K]`.
pub fn centroid_distances(x: &Array2<f64>, centroids: &Array2<f64>) -> Array2<f64> {
    let x_norms = x.map_axis(Axis(1), |row| row.dot(&row));
    let c_norms = centroids.map_axis(Axis(1), |row| row.dot(&row));
    let mut squared = x.dot(&centroids.t()) * -2.0;
    for (mut row, &x_norm) in squared.axis_iter_mut(Axis(0)).zip(&x_norms) {
        row += x_norm;
        row += &c_norms;
    }
    squared.mapv(|d| d.max(0.0).sqrt())
}

/// Per-column standardization fitted on a pool (a constant column only centered).
struct Standardizer {
    mean: Array1<f64>,
    scale: Array1<f64>,
}

impl Standardizer {
    fn fit(x: &Array2<f64>) -> Standardizer {
        let mean = x
            .mean_axis(Axis(0))
            .unwrap_or_else(|| Array1::zeros(x.ncols()));
        let scale = x
            .std_axis(Axis(0), 0.0)
            .mapv(|s| if s > 1e-12 { s } else { 1.0 });
        Standardizer { mean, scale }
    }

    fn apply(&self, x: &Array2<f64>) -> Array2<f64> {
        (x - &self.mean) / &self.scale
    }
}

/// Test accuracy of a multinomial logistic regression fitted on `train`.
pub fn regression_accuracy(
    train: &Array2<f64>,
    train_labels: &[usize],
    test: &Array2<f64>,
    test_labels: &[usize],
    config: &ClassicConfig,
) -> Result<f64, String> {
    let dataset = Dataset::new(train.clone(), Array1::from(train_labels.to_vec()));
    let model = MultiLogisticRegression::default()
        .alpha(config.l2)
        .max_iterations(config.max_iterations)
        .fit(&dataset)
        .map_err(|error| format!("logistic regression: {error}"))?;
    let predicted = model.predict(test);
    let correct = predicted
        .iter()
        .zip(test_labels)
        .filter(|(p, t)| p == t)
        .count();
    Ok(correct as f64 / test_labels.len().max(1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng as _};
    use rand_chacha::ChaCha8Rng;

    /// Points spread along (0.6, 0.8), each once 0.1 to either side of it (so the offsets
    /// are uncorrelated with the position): the first principal component is that axis (up to
    /// sign), its variance the spread along it, and a step across it projects to nothing.
    #[test]
    fn pca_finds_the_known_principal_axis() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let rows: Vec<f64> = (0..250)
            .flat_map(|_| {
                let t: f64 = rng.random_range(-5.0..5.0);
                [0.1, -0.1].into_iter().flat_map(move |noise| {
                    [3.0 + 0.6 * t - 0.8 * noise, -1.0 + 0.8 * t + 0.6 * noise]
                })
            })
            .collect();
        let x = Array2::from_shape_vec((500, 2), rows).unwrap();
        let pca = Pca::fit(&x, 1);
        let axis = pca.components.row(0);
        assert!(
            (axis[0].abs() - 0.6).abs() < 1e-9 && (axis[1].abs() - 0.8).abs() < 1e-9,
            "{axis:?}"
        );
        let t: Vec<f64> = (0..500)
            .map(|row| (x[[row, 0]] - 3.0) * 0.6 + (x[[row, 1]] + 1.0) * 0.8)
            .collect();
        let mean = t.iter().sum::<f64>() / 500.0;
        let variance = t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 499.0;
        assert!(
            (pca.variances[0] - variance).abs() < 1e-9,
            "{}",
            pca.variances[0]
        );
        // A unit step along the axis projects to length 1; a step across it to 0.
        let ends = Array2::from_shape_vec((2, 2), vec![3.0, -1.0, 3.6, -0.2]).unwrap();
        let projected = pca.project(&ends);
        assert!(((projected[[1, 0]] - projected[[0, 0]]).abs() - 1.0).abs() < 1e-9);
        let across = Array2::from_shape_vec((2, 2), vec![3.0, -1.0, 2.2, -0.4]).unwrap();
        let projected = pca.project(&across);
        assert!((projected[[1, 0]] - projected[[0, 0]]).abs() < 1e-9);
    }

    /// More columns than rows: the Gram-matrix route gives the covariance route's components
    /// (up to sign) and variances.
    #[test]
    fn pca_of_wide_data_matches_the_covariance_route() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let wide: Vec<f64> = (0..8 * 20).map(|_| rng.random_range(-1.0..1.0)).collect();
        let wide = Array2::from_shape_vec((8, 20), wide).unwrap();
        let gram = Pca::fit(&wide, 3);
        // The covariance route on the same rows, forced by repeating them (same covariance
        // up to the n − 1 scale, which only rescales the variances).
        let tall = ndarray::concatenate(Axis(0), &[wide.view(); 3]).unwrap();
        let covariance = Pca::fit(&tall, 3);
        for component in 0..3 {
            let dot = gram
                .components
                .row(component)
                .dot(&covariance.components.row(component));
            assert!(
                (dot.abs() - 1.0).abs() < 1e-6,
                "component {component}: {dot}"
            );
            let scale = (24.0 - 1.0) / (3.0 * (8.0 - 1.0));
            let expected = covariance.variances[component] * scale;
            assert!((gram.variances[component] - expected).abs() < 1e-9);
        }
    }

    #[test]
    fn centroid_distances_are_euclidean() {
        let x = Array2::from_shape_vec((1, 2), vec![3.0, 4.0]).unwrap();
        let c = Array2::from_shape_vec((2, 2), vec![0.0, 0.0, 3.0, 0.0]).unwrap();
        let d = centroid_distances(&x, &c);
        assert!((d[[0, 0]] - 5.0).abs() < 1e-12 && (d[[0, 1]] - 4.0).abs() < 1e-12);
    }

    /// Three separated blobs in 5-d: every baseline classifies the held-out points; with
    /// labels shuffled against the blobs, the regression is at chance.
    #[test]
    fn baselines_separate_blobs_and_not_shuffled_labels() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut blob = |n: usize| {
            let mut rows = Vec::new();
            let mut labels = Vec::new();
            for i in 0..n {
                let class = i % 3;
                for d in 0..5 {
                    let center = if d == class { 6.0 } else { 0.0 };
                    rows.push(center + rng.random_range(-1.0..1.0));
                }
                labels.push(class);
            }
            (Array2::from_shape_vec((n, 5), rows).unwrap(), labels)
        };
        let (pool, _) = blob(600);
        let (train, train_labels) = blob(30);
        let (test, test_labels) = blob(300);
        let config = ClassicConfig {
            pca_components: 3,
            kmeans_clusters: 6,
            ..Default::default()
        };
        let results = classic_baselines(
            &pool,
            LabeledRows {
                features: &train,
                labels: &train_labels,
            },
            LabeledRows {
                features: &test,
                labels: &test_labels,
            },
            &config,
        )
        .unwrap();
        assert_eq!(results.len(), 3);
        for result in &results {
            assert!(result.accuracy > 0.97, "{result:?}");
        }
        let shuffled: Vec<usize> = (0..30).map(|i| (i * 7 / 3) % 3).collect();
        let scrambled = classic_baselines(
            &pool,
            LabeledRows {
                features: &train,
                labels: &shuffled,
            },
            LabeledRows {
                features: &test,
                labels: &test_labels,
            },
            &config,
        )
        .unwrap();
        assert!(scrambled[0].accuracy < 0.7, "{scrambled:?}");
    }
}

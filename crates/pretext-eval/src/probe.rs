//! The probe protocol: a seeded, stratified subset of the training split's labels (e.g. 600
//! or 1%) trains a linear classifier and is the k-NN bank; accuracy is measured on the whole
//! held-out split. The same subset serves every feature set compared.

use pretext_data::{parse_label_budget, stratified_subset, DataError, Samples, Splits};
use pretext_nn::{knn_classify, KnnConfig};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use pretext_train::{Checkpoint, Model, PretrainConfig, TrainError};
use tch::Device;

use ndarray::{Array2, Axis};

use crate::classic::{regression_accuracy, ClassicConfig, ClassicFeatures};
use crate::features::{encode_samples, raw_features, raw_features_name};
use crate::linear_probe::{linear_probe_accuracy, LinearProbeConfig};

/// Settings of `pretext probe`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    /// Labeled examples from the training split: a count ("600") or a share ("1%").
    pub labels: String,
    /// Seed of the labeled subset (and of the probe's initialization).
    pub seed: u64,
    /// Neighbour counts of the weighted k-NN.
    pub knn_k: Vec<i64>,
    /// Temperature of the k-NN vote weights.
    pub knn_temperature: f64,
    pub linear: LinearProbeConfig,
    /// The k-NN columns alone: no linear probe and no cross-validated k (quick, to follow
    /// accuracy along training). Left out of the serialized settings when false, so that
    /// the study's cell fingerprints, which serialize them, are unchanged.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub knn_only: bool,
    /// Also the classic baselines (logistic regression on the raw features, on PCA, on
    /// k-means distances; see `classic`), with the other baselines.
    pub classic: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            labels: "600".into(),
            seed: 0,
            knn_k: vec![20, 200],
            knn_temperature: 0.07,
            linear: LinearProbeConfig::default(),
            knn_only: false,
            classic: false,
        }
    }
}

/// The labeled subset and the held-out set, as index lists and label tensors.
#[derive(Debug)]
pub struct ProbeSplit {
    pub labeled: Vec<usize>,
    pub labeled_labels: Tensor,
    pub test_labels: Tensor,
    pub num_classes: i64,
}

impl ProbeSplit {
    /// Chooses the labeled subset of `train` for `config`; `test` must be labeled too.
    pub fn new(
        train: &Samples,
        test: &Samples,
        config: &ProbeConfig,
    ) -> Result<ProbeSplit, DataError> {
        let unlabeled = |what: &str| DataError::Unlabeled { what: what.into() };
        let train_labels = train.labels().ok_or_else(|| unlabeled("training split"))?;
        let test_labels = test.labels().ok_or_else(|| unlabeled("held-out split"))?;
        let count = parse_label_budget(&config.labels, train.len())?;
        let labeled = stratified_subset(train_labels, count, config.seed);
        let to_tensor = |labels: Vec<i64>| Tensor::from_slice(&labels);
        Ok(ProbeSplit {
            labeled_labels: to_tensor(
                labeled
                    .iter()
                    .map(|&i| i64::from(train_labels[i]))
                    .collect(),
            ),
            test_labels: to_tensor(test_labels.iter().map(|&label| i64::from(label)).collect()),
            num_classes: train.num_classes().max(test.num_classes()) as i64,
            labeled,
        })
    }
}

/// Accuracies of one feature set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeRow {
    /// What the features are ("simclr encoder", "raw pixels", ...).
    pub name: String,
    /// Feature width.
    pub dim: i64,
    /// (k, accuracy) of the weighted k-NN (none for the classic baselines, which are
    /// logistic regressions only).
    pub knn: Vec<(i64, f64)>,
    /// Accuracy of the linear probe (None: not run, `ProbeConfig::knn_only`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<f64>,
    /// The L2 strength the linear probe's cross-validation chose (None: too few labeled
    /// examples to cross-validate, or a classic baseline with its fixed strength).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_l2: Option<f64>,
    /// The neighbour count cross-validation on the labeled examples prefers among `knn`'s
    /// (None without a k-NN or with too few labeled examples).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knn_cv_k: Option<i64>,
}

/// Evaluates features of the labeled subset (`labeled`, `[L, D]`, in `split.labeled` order)
/// and of the held-out split (`test_features`) with the k-NN and the linear probe.
pub fn evaluate_features(
    name: &str,
    labeled: &Tensor,
    test_features: &Tensor,
    split: &ProbeSplit,
    config: &ProbeConfig,
) -> ProbeRow {
    // The k-NN alone runs on the encoder's device, where the held-out features are (the
    // GPU's matrix product and top-k over a large bank); with the linear probe, everything
    // runs on the host.
    let device = if config.knn_only {
        test_features.device()
    } else {
        tch::Device::Cpu
    };
    let labeled = &labeled.to_device(device);
    let test_features = &test_features.to_device(device);
    let labeled_labels = &split.labeled_labels.to_device(device);
    let test_labels = &split.test_labels.to_device(device);
    let accuracy = |predicted: Tensor| {
        predicted
            .eq_tensor(test_labels)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    };
    let knn = config
        .knn_k
        .iter()
        .map(|&k| {
            let knn_config = KnnConfig {
                k,
                temperature: config.knn_temperature,
            };
            (
                k,
                accuracy(knn_classify(
                    labeled,
                    labeled_labels,
                    test_features,
                    split.num_classes,
                    knn_config,
                )),
            )
        })
        .collect();
    let dim = labeled.size()[1];
    if config.knn_only {
        return ProbeRow {
            name: name.into(),
            dim,
            knn,
            linear: None,
            linear_l2: None,
            knn_cv_k: None,
        };
    }
    let linear = linear_probe_accuracy(
        labeled,
        labeled_labels,
        test_features,
        test_labels,
        split.num_classes,
        &config.linear,
        config.seed,
    );
    ProbeRow {
        name: name.into(),
        dim,
        knn,
        linear: Some(linear.accuracy),
        linear_l2: linear.cross_validated.then_some(linear.l2),
        knn_cv_k: knn_preferred_k(labeled, split, config),
    }
}

/// The neighbour count of `config.knn_k` with the best accuracy in stratified k-fold
/// cross-validation on the labeled examples (each fold classified with the others as the
/// bank; ties go to the first listed); None with fewer than two counts to choose from or
/// too few labeled examples for two folds.
fn knn_preferred_k(labeled: &Tensor, split: &ProbeSplit, config: &ProbeConfig) -> Option<i64> {
    let labels: Vec<u16> = Vec::<i64>::try_from(&split.labeled_labels)
        .expect("int64 labels")
        .into_iter()
        .map(|label| label as u16)
        .collect();
    let folds = config.linear.folds.min(labels.len());
    if config.knn_k.len() < 2 || folds < 2 {
        return None;
    }
    let fold_of = pretext_data::stratified_folds(&labels, folds, config.seed);
    let mut correct = vec![0i64; config.knn_k.len()];
    for fold in 0..folds {
        let rows = |held_out: bool| {
            let rows: Vec<i64> = (0..labels.len())
                .filter(|&row| (fold_of[row] == fold) == held_out)
                .map(|row| row as i64)
                .collect();
            Tensor::from_slice(&rows)
        };
        let (bank, queries) = (rows(false), rows(true));
        let truth = split.labeled_labels.index_select(0, &queries);
        for (count, &k) in correct.iter_mut().zip(&config.knn_k) {
            let predicted = knn_classify(
                &labeled.index_select(0, &bank),
                &split.labeled_labels.index_select(0, &bank),
                &labeled.index_select(0, &queries),
                split.num_classes,
                KnnConfig {
                    k,
                    temperature: config.knn_temperature,
                },
            );
            *count += predicted
                .eq_tensor(&truth)
                .sum(Kind::Int64)
                .int64_value(&[]);
        }
    }
    let best = (0..correct.len()).rev().max_by_key(|&i| correct[i])?;
    Some(config.knn_k[best])
}

/// The probe's result, printed as a table and written as JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub dataset: String,
    pub checkpoint: String,
    pub labels: usize,
    pub test_size: usize,
    pub seed: u64,
    pub rows: Vec<ProbeRow>,
}

impl ProbeReport {
    /// A small fixed-width table.
    pub fn table(&self) -> String {
        let ks: Vec<i64> = self
            .rows
            .first()
            .map(|row| row.knn.iter().map(|(k, _)| *k).collect())
            .unwrap_or_default();
        // The linear and cross-validation columns, unless the probe ran the k-NN alone.
        let linear = self.rows.iter().any(|row| row.linear.is_some());
        let cv_k = linear && ks.len() > 1;
        let mut out = format!(
            "{} labeled training examples (seed {}), accuracy on {} held-out examples\n\n",
            self.labels, self.seed, self.test_size
        );
        let width = self
            .rows
            .iter()
            .map(|row| row.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(22);
        out.push_str(&format!("{:<width$} {:>6}", "features", "dim"));
        for k in &ks {
            out.push_str(&format!(" {:>9}", format!("k-NN {k}")));
        }
        if linear {
            out.push_str(&format!(" {:>9} {:>8}", "linear", "L2 (CV)"));
        }
        if cv_k {
            out.push_str(&format!(" {:>7}", "k (CV)"));
        }
        out.push('\n');
        for row in &self.rows {
            out.push_str(&format!("{:<width$} {:>6}", row.name, row.dim));
            for (_, accuracy) in &row.knn {
                out.push_str(&format!(" {:>8.1}%", 100.0 * accuracy));
            }
            for _ in row.knn.len()..ks.len() {
                out.push_str(&format!(" {:>9}", "-"));
            }
            if linear {
                let l2 = row
                    .linear_l2
                    .map_or("-".to_string(), |l2| format!("{l2:.0e}"));
                let accuracy = row
                    .linear
                    .map_or("-".to_string(), |linear| format!("{:.1}%", 100.0 * linear));
                out.push_str(&format!(" {accuracy:>9} {l2:>8}"));
            }
            if cv_k {
                let k = row.knn_cv_k.map_or("-".to_string(), |k| k.to_string());
                out.push_str(&format!(" {k:>7}"));
            }
            out.push('\n');
        }
        if linear {
            out.push_str(
                "\nlinear: logistic regression, its L2 strength chosen by stratified 5-fold cross-validation on the labeled examples; k (CV): the neighbour count the same folds prefer\n",
            );
        }
        out
    }
}

/// Loads the encoder of `checkpoint` for `config`, built for the training split `train`.
pub fn load_model(
    config: &PretrainConfig,
    checkpoint: &Checkpoint,
    train: &Samples,
    device: Device,
) -> Result<Model, TrainError> {
    let mut model = Model::new(config, train, device);
    checkpoint.load_weights(config, &mut model.store)?;
    Ok(model)
}

/// Probes the checkpoint's encoder, and with `baselines` also a random-init encoder of the
/// same architecture, the pretrained starting point (when the run started from one) and the
/// raw inputs (pixels, or TF-IDF for text), on one labeled subset.
pub fn probe(
    config: &PretrainConfig,
    checkpoint: &Checkpoint,
    data: &Splits,
    probe_config: &ProbeConfig,
    device: Device,
    baselines: bool,
) -> Result<ProbeReport, TrainError> {
    let mut reports = probe_budgets(
        config,
        checkpoint,
        data,
        std::slice::from_ref(probe_config),
        device,
        baselines,
    )?;
    Ok(reports.remove(0))
}

/// [`probe`] for several label budgets at once (one report each, in order): every encoder
/// reads the held-out split and the union of the labeled subsets once.
pub fn probe_budgets(
    config: &PretrainConfig,
    checkpoint: &Checkpoint,
    data: &Splits,
    probe_configs: &[ProbeConfig],
    device: Device,
    baselines: bool,
) -> Result<Vec<ProbeReport>, TrainError> {
    probe_rows(
        config,
        Some(checkpoint),
        data,
        probe_configs,
        device,
        baselines,
    )
}

/// The baselines of [`probe_budgets`] alone, without a trained encoder: the random-init
/// encoder of `config`'s architecture, the raw inputs and (per `ProbeConfig::classic`) the
/// classic baselines.
pub fn probe_baselines(
    config: &PretrainConfig,
    data: &Splits,
    probe_configs: &[ProbeConfig],
    device: Device,
) -> Result<Vec<ProbeReport>, TrainError> {
    probe_rows(config, None, data, probe_configs, device, true)
}

fn probe_rows(
    config: &PretrainConfig,
    checkpoint: Option<&Checkpoint>,
    data: &Splits,
    probe_configs: &[ProbeConfig],
    device: Device,
    baselines: bool,
) -> Result<Vec<ProbeReport>, TrainError> {
    let splits = probe_configs
        .iter()
        .map(|probe_config| ProbeSplit::new(&data.train, &data.test, probe_config))
        .collect::<Result<Vec<_>, _>>()?;
    let mut union: Vec<usize> = splits
        .iter()
        .flat_map(|split| split.labeled.iter().copied())
        .collect();
    union.sort_unstable();
    union.dedup();
    let labeled_union = data.train.subset(&union);
    // Rows of each budget's labeled subset within the union's features.
    let rows_of: Vec<Tensor> = splits
        .iter()
        .map(|split| {
            let rows: Vec<i64> = split
                .labeled
                .iter()
                .map(|index| union.binary_search(index).expect("in the union") as i64)
                .collect();
            Tensor::from_slice(&rows)
        })
        .collect();
    let mut reports: Vec<ProbeReport> = splits
        .iter()
        .zip(probe_configs)
        .map(|(split, probe_config)| ProbeReport {
            dataset: data.name.clone(),
            checkpoint: checkpoint
                .map(|checkpoint| checkpoint.dir.display().to_string())
                .unwrap_or_default(),
            labels: split.labeled.len(),
            test_size: data.test.len(),
            seed: probe_config.seed,
            rows: Vec::new(),
        })
        .collect();
    let mut evaluate_encoder = |name: &str, encoder: &dyn pretext_nn::Encoder| {
        let union_features =
            encode_samples(encoder, &labeled_union, device, 256).to_device(Device::Cpu);
        let test_features = encode_samples(encoder, &data.test, device, 256);
        for (((split, probe_config), rows), report) in splits
            .iter()
            .zip(probe_configs)
            .zip(&rows_of)
            .zip(&mut reports)
        {
            let labeled_features = union_features.index_select(0, rows);
            report.rows.push(evaluate_features(
                name,
                &labeled_features,
                &test_features,
                split,
                probe_config,
            ));
        }
    };
    if let Some(checkpoint) = checkpoint {
        let trained = load_model(config, checkpoint, &data.train, device)?;
        let name = format!(
            "{} (step {})",
            config.method.name.as_str(),
            checkpoint.state.step
        );
        evaluate_encoder(&name, trained.method.encoder());
    }
    if baselines {
        let random = Model::new(config, &data.train, device);
        evaluate_encoder("random-init encoder", random.method.encoder());
        if !config.backbone.pretrained.is_empty() {
            let mut start = Model::new(config, &data.train, device);
            start.load_pretrained(config)?;
            let name = std::path::Path::new(&config.backbone.pretrained)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pretrained".into());
            evaluate_encoder(&format!("{name} (as downloaded)"), start.method.encoder());
        }
        // Raw features are cheap, and TF-IDF is fitted on each labeled subset itself.
        for ((split, probe_config), report) in splits.iter().zip(probe_configs).zip(&mut reports) {
            let labeled = data.train.subset(&split.labeled);
            let (labeled_raw, test_raw) = raw_features(&labeled, &data.test);
            report.rows.push(evaluate_features(
                raw_features_name(&data.test),
                &labeled_raw,
                &test_raw,
                split,
                probe_config,
            ));
        }
        if probe_configs
            .iter()
            .any(|probe_config| probe_config.classic)
        {
            let (pool, test) = raw_features(&data.train, &data.test);
            let (pool, test) = (to_array(&pool), to_array(&test));
            let test_labels = data.test.labels().expect("the probe split checked labels");
            let test_labels: Vec<usize> = test_labels.iter().map(|&l| usize::from(l)).collect();
            let train_labels = data.train.labels().expect("the probe split checked labels");
            let invalid = |message| TrainError::Invalid {
                field: "probe classic baselines".into(),
                message,
            };
            // PCA and k-means depend on the pool and the seed only: fitted, and the pool and
            // the held-out rows mapped, once per seed, whatever the number of budgets.
            let mut fitted: Vec<(u64, MappedRows, MappedRows)> = Vec::new();
            for ((split, probe_config), report) in
                splits.iter().zip(probe_configs).zip(&mut reports)
            {
                if !probe_config.classic {
                    continue;
                }
                let classic = ClassicConfig {
                    seed: probe_config.seed,
                    ..Default::default()
                };
                if !fitted.iter().any(|(seed, _, _)| *seed == classic.seed) {
                    let features = ClassicFeatures::fit(&pool, &classic).map_err(invalid)?;
                    let held_out = features.transform(&test);
                    fitted.push((classic.seed, features.transform(&pool), held_out));
                }
                let (_, pool_features, test_features) = fitted
                    .iter()
                    .find(|(seed, _, _)| *seed == classic.seed)
                    .expect("fitted above");
                let labels: Vec<usize> = split
                    .labeled
                    .iter()
                    .map(|&i| usize::from(train_labels[i]))
                    .collect();
                for ((name, pool_rows), (_, held_out)) in pool_features.iter().zip(test_features) {
                    let accuracy = regression_accuracy(
                        &pool_rows.select(Axis(0), &split.labeled),
                        &labels,
                        held_out,
                        &test_labels,
                        &classic,
                    )
                    .map_err(invalid)?;
                    report.rows.push(ProbeRow {
                        name: (*name).into(),
                        dim: pool_rows.ncols() as i64,
                        knn: Vec::new(),
                        linear: Some(accuracy),
                        linear_l2: None,
                        knn_cv_k: None,
                    });
                }
            }
        }
    }
    Ok(reports)
}

/// Each classic baseline's name and its features of some rows.
type MappedRows = Vec<(&'static str, Array2<f64>)>;

/// A `[N, D]` tensor as an ndarray of f64.
fn to_array(x: &Tensor) -> Array2<f64> {
    let (rows, cols) = x.size2().expect("[N, D] features");
    let values = Vec::<f64>::try_from(x.to_kind(Kind::Double).contiguous().view([-1]))
        .expect("double features");
    Array2::from_shape_vec((rows as usize, cols as usize), values).expect("N × D")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a row name longer than 22 characters ("all-MiniLM-L6-v2 (as
    /// downloaded)") pushed its numbers out of their columns.
    #[test]
    fn table_columns_stay_aligned_with_long_row_names() {
        let row = |name: &str| ProbeRow {
            name: name.into(),
            dim: 384,
            knn: vec![(20, 0.5), (200, 0.25)],
            linear: Some(0.125),
            linear_l2: Some(1e-3),
            knn_cv_k: Some(20),
        };
        let report = ProbeReport {
            dataset: "austen".into(),
            checkpoint: "runs/x".into(),
            labels: 600,
            test_size: 3308,
            seed: 0,
            rows: vec![
                row("bert-mlm (step 100)"),
                row("all-MiniLM-L6-v2 (as downloaded)"),
            ],
        };
        let table = report.table();
        let lines: Vec<&str> = table.lines().skip(2).take(3).collect();
        assert_eq!(lines.len(), 3, "{table}");
        let widths: Vec<usize> = lines.iter().map(|line| line.chars().count()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "{table}");
        let linear_column = |line: &str| line.rfind('%').unwrap();
        assert_eq!(linear_column(lines[1]), linear_column(lines[2]), "{table}");
    }
}

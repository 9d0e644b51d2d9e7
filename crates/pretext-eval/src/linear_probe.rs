//! Linear probe: multinomial logistic regression on frozen, standardized features, trained
//! full-batch with Adam from zero weights, its L2 strength chosen by stratified k-fold
//! cross-validation on the labeled examples alone — the procedure of scikit-learn's
//! `LogisticRegressionCV` and of the SSL papers' linear evaluations, the same for every
//! feature set compared.
//!
//! Every strength of the grid and every fold train at once, as one batch of independent
//! regressions (`[members, D, classes]` weights; Adam's per-element steps keep them apart);
//! the strength with the best mean held-out accuracy (ties: the lower held-out
//! cross-entropy) then trains on every labeled example.
//!
//! Standardization uses the labeled examples' mean and standard deviation, with each
//! dimension's deviation floored at a tenth of the mean deviation: a dimension that is
//! nearly constant on a few labeled examples (a border pixel) would otherwise turn the
//! smallest difference in a held-out example into a huge input.

use pretext_data::{stratified_folds, stratified_subset};
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Settings of the linear probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinearProbeConfig {
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// L2 strengths cross-validation chooses from: λ of the penalty λ/2·‖W‖² added to the
    /// mean cross-entropy (λ = 1/(C·N) in scikit-learn's terms).
    pub l2: Vec<f64>,
    /// Folds of the cross-validation (fewer when there are fewer labeled examples).
    pub folds: usize,
    /// Cross-validation runs on at most this many labeled examples (a stratified subset of
    /// them); the strength it chooses then trains on all of them.
    pub cv_rows: usize,
}

impl Default for LinearProbeConfig {
    fn default() -> Self {
        LinearProbeConfig {
            steps: 300,
            lr: 0.01,
            l2: vec![1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0],
            folds: 5,
            cv_rows: 4000,
        }
    }
}

impl LinearProbeConfig {
    /// Checks the settings; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.l2.is_empty() || self.l2.iter().any(|l2| !(l2.is_finite() && *l2 >= 0.0)) {
            return Err(format!(
                "linear.l2: expected one or more finite strengths >= 0, found {:?}",
                self.l2
            ));
        }
        if self.steps == 0 || !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(format!(
                "linear: expected steps >= 1 and lr > 0, found steps {} and lr {}",
                self.steps, self.lr
            ));
        }
        Ok(())
    }
}

/// A fitted probe: the standardization, the weights and the strength cross-validation chose.
#[derive(Debug)]
pub struct LinearProbe {
    mean: Tensor,
    scale: Tensor,
    /// `[D, C]`, on standardized features.
    weight: Tensor,
    /// `[C]`.
    bias: Tensor,
    /// The L2 strength it was trained with.
    pub l2: f64,
    /// Mean held-out accuracy of that strength over the folds (None when there were too few
    /// labeled examples to cross-validate, and the grid's middle strength was used).
    pub cv_accuracy: Option<f64>,
    /// Folds of the cross-validation (0 without one).
    pub folds: usize,
}

impl LinearProbe {
    /// Fits the probe on `features` `[N, D]` with `labels` `[N]` (class ids below
    /// `classes`), choosing its strength by cross-validation.
    pub fn fit(
        features: &Tensor,
        labels: &Tensor,
        classes: i64,
        config: &LinearProbeConfig,
        seed: u64,
    ) -> LinearProbe {
        let _guard = tch::no_grad_guard();
        let x = features.to_kind(Kind::Float).to_device(Device::Cpu);
        let y = labels.to_kind(Kind::Int64).to_device(Device::Cpu);
        let (mean, scale) = standardization(&x);
        let x = (&x - &mean) / &scale;
        let label_list: Vec<u16> = Vec::<i64>::try_from(&y)
            .expect("int64 labels")
            .into_iter()
            .map(|label| label as u16)
            .collect();
        let (l2, cv_accuracy, folds) = choose_l2(&x, &label_list, classes, config, seed);
        let every_row = Tensor::ones([1, x.size()[0]], (Kind::Float, Device::Cpu));
        let (weight, bias) = train_members(
            &x,
            &y,
            classes,
            &every_row,
            &Tensor::from_slice(&[l2 as f32]),
            config,
        );
        LinearProbe {
            mean,
            scale,
            weight: weight.get(0),
            bias: bias.get(0).get(0),
            l2,
            cv_accuracy,
            folds,
        }
    }

    /// Class logits `[N, C]` of unstandardized features `[N, D]`.
    pub fn logits(&self, features: &Tensor) -> Tensor {
        let x = features.to_kind(Kind::Float).to_device(Device::Cpu);
        ((x - &self.mean) / &self.scale).matmul(&self.weight) + &self.bias
    }

    /// Accuracy on `features` against `labels`.
    pub fn accuracy(&self, features: &Tensor, labels: &Tensor) -> f64 {
        let _guard = tch::no_grad_guard();
        if features.size()[0] == 0 {
            return 0.0;
        }
        self.logits(features)
            .argmax(1, false)
            .eq_tensor(&labels.to_kind(Kind::Int64).to_device(Device::Cpu))
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    }

    /// The probe as one affine map of the unstandardized features, in `nn::Linear`'s layout:
    /// weights `[C, D]` and bias `[C]` (W/s, b − (m/s)·W), to start a fine-tuning head from.
    pub fn as_linear(&self) -> (Tensor, Tensor) {
        let weight = &self.weight / self.scale.reshape([-1, 1]);
        let bias = &self.bias - self.mean.matmul(&weight).reshape([-1]);
        (weight.transpose(0, 1).contiguous(), bias)
    }
}

/// The mean `[1, D]` and floored standard deviation `[1, D]` of the rows of `x`.
fn standardization(x: &Tensor) -> (Tensor, Tensor) {
    let mean = x.mean_dim(&[0i64][..], true, Kind::Float);
    if x.size()[0] < 2 {
        return (mean, Tensor::ones_like(&x.narrow(0, 0, 1)));
    }
    let std = x.std_dim(&[0i64][..], false, true);
    let floor = (0.1 * std.mean(Kind::Float).double_value(&[])).max(1e-6);
    (mean, std.clamp_min(floor))
}

/// The L2 strength with the best mean held-out accuracy over stratified folds of (a
/// stratified subset of at most `config.cv_rows` of) the standardized rows `x`, its mean
/// accuracy and the number of folds; the grid's middle strength, None and 0 when there are
/// fewer than 4 rows or a single strength.
fn choose_l2(
    x: &Tensor,
    labels: &[u16],
    classes: i64,
    config: &LinearProbeConfig,
    seed: u64,
) -> (f64, Option<f64>, usize) {
    let grid = &config.l2;
    let middle = grid[grid.len() / 2];
    let rows = labels.len();
    let folds = config.folds.min(rows);
    if grid.len() < 2 || folds < 2 || rows < 4 {
        return (middle, None, 0);
    }
    // A stratified subset when there are many rows: the choice hardly depends on them.
    let chosen: Vec<usize> = if rows > config.cv_rows {
        stratified_subset(labels, config.cv_rows, seed)
    } else {
        (0..rows).collect()
    };
    let chosen_labels: Vec<u16> = chosen.iter().map(|&row| labels[row]).collect();
    let index = Tensor::from_slice(&chosen.iter().map(|&r| r as i64).collect::<Vec<_>>());
    let x = x.index_select(0, &index);
    let y = Tensor::from_slice(
        &chosen_labels
            .iter()
            .map(|&label| i64::from(label))
            .collect::<Vec<_>>(),
    );
    let fold_of = stratified_folds(&chosen_labels, folds, seed);
    let n = chosen.len() as i64;
    // Member g·folds + f: strength g, trained without fold f.
    let members = grid.len() * folds;
    let mut in_training = vec![0f32; members * chosen.len()];
    for member in 0..members {
        for (row, &fold) in fold_of.iter().enumerate() {
            if fold != member % folds {
                in_training[member * chosen.len() + row] = 1.0;
            }
        }
    }
    let in_training = Tensor::from_slice(&in_training).view([members as i64, n]);
    let strengths: Vec<f32> = (0..members).map(|m| grid[m / folds] as f32).collect();
    let (weight, bias) = train_members(
        &x,
        &y,
        classes,
        &in_training,
        &Tensor::from_slice(&strengths),
        config,
    );
    let logits = x.matmul(&weight) + bias; // [M, N, C]
    let held_out = 1.0 - &in_training; // [M, N]
    let correct = logits
        .argmax(-1, false)
        .eq_tensor(&y.view([1, n]))
        .to_kind(Kind::Float);
    let nll = negative_log_likelihood(&logits, &y);
    let per_strength = |values: Tensor| -> Vec<f64> {
        // Summed over each strength's folds: every chosen row is held out exactly once.
        let totals = (values * &held_out)
            .sum_dim_intlist(&[1i64][..], false, Kind::Float)
            .view([grid.len() as i64, folds as i64])
            .sum_dim_intlist(&[1i64][..], false, Kind::Float)
            / n as f64;
        Vec::<f64>::try_from(totals.to_kind(Kind::Double)).expect("f64")
    };
    let (accuracy, loss) = (per_strength(correct), per_strength(nll));
    let best = (0..grid.len())
        .max_by(|&a, &b| {
            accuracy[a]
                .total_cmp(&accuracy[b])
                .then(loss[b].total_cmp(&loss[a]))
        })
        .expect("a non-empty grid");
    (grid[best], Some(accuracy[best]), folds)
}

/// Trains `M` independent regressions at once, member m on the rows weighted by
/// `row_weights[m]` with strength `l2[m]`: weights `[M, D, C]` and biases `[M, 1, C]`, from
/// zero (the problem is convex: no seed needed).
fn train_members(
    x: &Tensor,
    y: &Tensor,
    classes: i64,
    row_weights: &Tensor,
    l2: &Tensor,
    config: &LinearProbeConfig,
) -> (Tensor, Tensor) {
    let members = row_weights.size()[0];
    let dim = x.size()[1];
    let store = nn::VarStore::new(Device::Cpu);
    let weight = store.root().zeros("weight", &[members, dim, classes]);
    let bias = store.root().zeros("bias", &[members, 1, classes]);
    let mut optimizer = nn::Adam::default()
        .build(&store, config.lr)
        .expect("Adam builds on a fresh VarStore");
    let rows = row_weights
        .sum_dim_intlist(&[1i64][..], false, Kind::Float)
        .clamp_min(1.0);
    tch::with_grad(|| {
        for _ in 0..config.steps {
            let logits = x.matmul(&weight) + &bias;
            let data = (negative_log_likelihood(&logits, y) * row_weights).sum_dim_intlist(
                &[1i64][..],
                false,
                Kind::Float,
            ) / &rows;
            let penalty = weight
                .square()
                .sum_dim_intlist(&[1i64, 2][..], false, Kind::Float)
                * l2
                * 0.5;
            optimizer.backward_step(&(data + penalty).sum(Kind::Float));
        }
    });
    (weight.detach(), bias.detach())
}

/// −log p(y) of each member and row: `[M, N]` from logits `[M, N, C]` and labels `[N]`.
fn negative_log_likelihood(logits: &Tensor, y: &Tensor) -> Tensor {
    let (members, rows) = (logits.size()[0], logits.size()[1]);
    let index = y.view([1, rows, 1]).expand([members, rows, 1], false);
    -logits
        .log_softmax(-1, Kind::Float)
        .gather(2, &index, false)
        .squeeze_dim(2)
}

/// What one probe reached: its held-out accuracy and the strength cross-validation chose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearProbeResult {
    pub accuracy: f64,
    pub l2: f64,
    /// Whether cross-validation chose `l2` (false: too few labeled examples).
    pub cross_validated: bool,
}

/// Fits a probe on (`train`, `train_labels`) and measures it on (`test`, `test_labels`).
pub fn linear_probe_accuracy(
    train: &Tensor,
    train_labels: &Tensor,
    test: &Tensor,
    test_labels: &Tensor,
    num_classes: i64,
    config: &LinearProbeConfig,
    seed: u64,
) -> LinearProbeResult {
    let probe = LinearProbe::fit(train, train_labels, num_classes, config, seed);
    LinearProbeResult {
        accuracy: probe.accuracy(test, test_labels),
        l2: probe.l2,
        cross_validated: probe.cv_accuracy.is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(seed: i64, per_class: i64, dim: i64, spread: f64) -> (Tensor, Tensor, Tensor) {
        tch::manual_seed(seed);
        let centers = Tensor::randn([3, dim], (Kind::Float, Device::Cpu)) * 4.0;
        let labels = Tensor::arange(3, (Kind::Int64, Device::Cpu))
            .repeat_interleave_self_int(per_class, 0, None);
        let points = centers.index_select(0, &labels)
            + Tensor::randn([3 * per_class, dim], (Kind::Float, Device::Cpu)) * spread;
        (points, labels, centers)
    }

    #[test]
    fn separable_classes_are_learned_and_shuffled_labels_are_not() {
        let (points, labels, _) = blobs(3, 50, 8, 1.0);
        let config = LinearProbeConfig::default();
        let result = linear_probe_accuracy(&points, &labels, &points, &labels, 3, &config, 0);
        assert!(result.accuracy > 0.95, "{result:?}");
        assert!(result.cross_validated);
        // Labels unrelated to the points: test accuracy on fresh points stays near chance.
        let random_labels = Tensor::randint(3, [150], (Kind::Int64, Device::Cpu));
        let fresh = Tensor::randn([150, 8], (Kind::Float, Device::Cpu));
        let chance = linear_probe_accuracy(
            &points,
            &random_labels,
            &fresh,
            &random_labels,
            3,
            &config,
            0,
        );
        assert!(chance.accuracy < 0.6, "{chance:?}");
    }

    /// Two informative dimensions among 40 of noise, 10 examples a class with a fifth of
    /// their labels wrong: the weakest strengths fit the noise. Cross-validation must choose
    /// a strength whose held-out accuracy is within 3 points of the best strength's (which
    /// it cannot see), where the grid spans more than 5 points.
    #[test]
    fn cross_validation_chooses_a_strength_near_the_best_one() {
        tch::manual_seed(11);
        let sample = |per_class: i64| {
            let labels = Tensor::arange(3, (Kind::Int64, Device::Cpu))
                .repeat_interleave_self_int(per_class, 0, None);
            let centers = Tensor::from_slice(&[0f32, 0.0, 2.0, 0.0, 0.0, 2.0]).view([3, 2]);
            let signal = centers.index_select(0, &labels)
                + Tensor::randn([3 * per_class, 2], (Kind::Float, Device::Cpu)) * 0.7;
            let noise = Tensor::randn([3 * per_class, 40], (Kind::Float, Device::Cpu));
            (Tensor::cat(&[signal, noise], 1), labels)
        };
        let (train, clean) = sample(10);
        let flip = Tensor::rand([30], (Kind::Float, Device::Cpu)).lt(0.2);
        let labels = clean.where_self(&flip.logical_not(), &((&clean + 1).remainder(3)));
        let (test, test_labels) = sample(300);
        let config = LinearProbeConfig::default();
        let at = |l2: f64| {
            let config = LinearProbeConfig {
                l2: vec![l2],
                ..config.clone()
            };
            linear_probe_accuracy(&train, &labels, &test, &test_labels, 3, &config, 0).accuracy
        };
        let grid: Vec<f64> = config.l2.iter().map(|&l2| at(l2)).collect();
        let chosen = linear_probe_accuracy(&train, &labels, &test, &test_labels, 3, &config, 0);
        let best = grid.iter().cloned().fold(0.0, f64::max);
        let worst = grid.iter().cloned().fold(1.0, f64::min);
        assert!(best - worst > 0.05, "{grid:?}");
        assert!(chosen.accuracy > best - 0.03, "{chosen:?} vs {grid:?}");
    }

    /// Regression: a dimension constant on the labeled examples (a border pixel that is 0 in
    /// all of them) but not in a held-out one no longer swamps the prediction.
    #[test]
    fn a_dimension_constant_on_the_labeled_examples_does_not_swamp_held_out_ones() {
        let (points, labels, _) = blobs(7, 20, 6, 1.0);
        let constant = Tensor::zeros([60, 1], (Kind::Float, Device::Cpu));
        let train = Tensor::cat(&[&points, &constant], 1);
        let probe = LinearProbe::fit(&train, &labels, 3, &LinearProbeConfig::default(), 0);
        let lit = Tensor::full([60, 1], 0.5, (Kind::Float, Device::Cpu));
        let test = Tensor::cat(&[&points, &lit], 1);
        assert!(probe.accuracy(&test, &labels) > 0.9);
    }

    #[test]
    fn the_affine_form_gives_the_same_logits() {
        let (points, labels, _) = blobs(9, 10, 5, 1.0);
        let probe = LinearProbe::fit(&points, &labels, 3, &LinearProbeConfig::default(), 0);
        let (weight, bias) = probe.as_linear();
        let direct = points.matmul(&weight.transpose(0, 1)) + bias;
        let difference = (direct - probe.logits(&points))
            .abs()
            .max()
            .double_value(&[]);
        assert!(difference < 1e-4, "{difference}");
    }

    #[test]
    fn too_few_examples_use_the_middle_strength_without_cross_validation() {
        let (points, labels, _) = blobs(2, 1, 4, 1.0);
        let probe = LinearProbe::fit(&points, &labels, 3, &LinearProbeConfig::default(), 0);
        assert_eq!((probe.l2, probe.cv_accuracy, probe.folds), (1e-3, None, 0));
    }
}

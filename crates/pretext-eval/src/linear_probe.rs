//! Linear probe: multinomial logistic regression on frozen, standardized features, trained
//! full-batch with Adam and weight decay (the usual SSL linear evaluation, sized for the
//! few-label regime where the labeled set fits in one batch).

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

/// Settings of the linear probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinearProbeConfig {
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// L2 weight decay on the weights (regularizes the few-label fit).
    pub weight_decay: f64,
}

impl Default for LinearProbeConfig {
    fn default() -> Self {
        LinearProbeConfig {
            steps: 300,
            lr: 0.01,
            weight_decay: 5e-4,
        }
    }
}

/// Trains on (`train`, `train_labels`) and returns the accuracy on (`test`, `test_labels`).
/// Features are standardized with the training set's mean and std.
pub fn linear_probe_accuracy(
    train: &Tensor,
    train_labels: &Tensor,
    test: &Tensor,
    test_labels: &Tensor,
    num_classes: i64,
    config: &LinearProbeConfig,
    seed: u64,
) -> f64 {
    tch::manual_seed(seed as i64);
    let train = train.to_kind(Kind::Float).to_device(Device::Cpu);
    let test = test.to_kind(Kind::Float).to_device(Device::Cpu);
    let mean = train.mean_dim(&[0i64][..], true, Kind::Float);
    let std = train.std_dim(&[0i64][..], false, true) + 1e-6;
    let train = (&train - &mean) / &std;
    let test = (&test - &mean) / &std;

    let store = nn::VarStore::new(Device::Cpu);
    let linear = nn::linear(
        store.root() / "probe",
        train.size()[1],
        num_classes,
        Default::default(),
    );
    let mut optimizer = nn::AdamW {
        wd: config.weight_decay,
        ..Default::default()
    }
    .build(&store, config.lr)
    .expect("AdamW builds on a fresh VarStore");
    let labels = train_labels.to_kind(Kind::Int64).to_device(Device::Cpu);
    for _ in 0..config.steps {
        let loss = linear.forward(&train).cross_entropy_for_logits(&labels);
        optimizer.backward_step(&loss);
    }
    let _guard = tch::no_grad_guard();
    let predicted = linear.forward(&test).argmax(1, false);
    predicted
        .eq_tensor(&test_labels.to_kind(Kind::Int64).to_device(Device::Cpu))
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_classes_are_learned_and_shuffled_labels_are_not() {
        tch::manual_seed(3);
        // Three Gaussian blobs in 8 dimensions, 50 points each.
        let centers = Tensor::randn([3, 8], (Kind::Float, Device::Cpu)) * 4.0;
        let labels =
            Tensor::arange(3, (Kind::Int64, Device::Cpu)).repeat_interleave_self_int(50, 0, None);
        let points =
            centers.index_select(0, &labels) + Tensor::randn([150, 8], (Kind::Float, Device::Cpu));
        let config = LinearProbeConfig::default();
        let accuracy = linear_probe_accuracy(&points, &labels, &points, &labels, 3, &config, 0);
        assert!(accuracy > 0.95, "{accuracy}");
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
        assert!(chance < 0.6, "{chance}");
    }
}

//! Rotation prediction — Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by
//! Predicting Image Rotations", ICLR 2018 (arXiv:1803.07728).
//!
//! Every image is shown at 0°, 90°, 180° and 270° in the same batch (the paper found all
//! four rotations per image better than one at random), and a classifier on the encoder's
//! output predicts which rotation it sees: 4-way cross-entropy. To recognise "upside down"
//! the encoder has to find the objects and their orientation.
//!
//! Defaults: the `[views]` augmentations before rotating; a Linear-BN-ReLU-Linear classifier
//! (512 hidden) on the pooled representation (the paper puts conv blocks there; transfer
//! uses the representation before it either way).
//!
//! Run: `pretext pretrain --method rotation --data ../shared/data/vision/fashion-mnist --out runs/rotation`

use pretext_augment::ViewConfig;
use pretext_nn::{Backbone, BackboneConfig, Encoder, InputSpec, Projector, ProjectorConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::pretext_method::{MethodHealth, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// The four rotations.
pub const ROTATIONS: i64 = 4;

/// Rotation prediction's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// Hidden width of the rotation classifier (0 = a single linear layer).
    pub hidden_dim: i64,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig { hidden_dim: 512 }
    }
}

impl MethodSettings for RotationConfig {
    fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::Rotations(views.clone())
    }

    fn build(
        &self,
        trained: &nn::VarStore,
        _state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Rotation::new(&trained.root(), &setup.input, backbone, self))
    }

    fn health(&self, _backbone: &BackboneConfig, _total_steps: u64) -> MethodHealth {
        MethodHealth {
            pretext_classes: Some(ROTATIONS as usize),
            ..MethodHealth::default()
        }
    }
}

#[derive(Debug)]
pub struct Rotation {
    pub encoder: Backbone,
    pub classifier: Projector,
}

impl Rotation {
    pub fn new(
        root: &nn::Path,
        input: &InputSpec,
        backbone: &BackboneConfig,
        config: &RotationConfig,
    ) -> Rotation {
        let encoder = Backbone::new(&(root / "encoder"), input, backbone);
        let classifier = Projector::new(
            &(root / "classifier"),
            encoder.dim(),
            &classifier_config(config.hidden_dim, ROTATIONS),
        );
        Rotation {
            encoder,
            classifier,
        }
    }

    /// `views[r]` = the batch rotated by r quarter turns, `[N, C, H, W]` each.
    pub fn loss(&self, views: &[Tensor]) -> StepOutput {
        let n = views[0].size()[0];
        let h = self.encoder.encode(&Tensor::cat(views, 0), true); // [4N, D]
        let logits = self.classifier.forward_t(&h, true); // [4N, 4]
        let targets = Tensor::arange(ROTATIONS, (Kind::Int64, h.device()))
            .repeat_interleave_self_int(n, 0, None); // [0…0, 1…1, 2…2, 3…3]
        let (loss, accuracy) = classification(&logits, &targets);
        StepOutput {
            loss,
            representations: vec![h.narrow(0, 0, n).detach()],
            projections: None,
            metrics: vec![(signal::PRETEXT_ACCURACY.key.into(), accuracy.into())],
        }
    }
}

impl PretextMethod for Rotation {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        self.loss(&inputs.views)
    }
}

/// A classifier head: Linear-BN-ReLU-Linear, or one Linear when `hidden_dim` is 0.
pub(crate) fn classifier_config(hidden_dim: i64, classes: i64) -> ProjectorConfig {
    if hidden_dim > 0 {
        ProjectorConfig::mlp(hidden_dim, classes)
    } else {
        ProjectorConfig {
            output_dim: classes,
            layers: 1,
            ..ProjectorConfig::default()
        }
    }
}

/// Cross-entropy of `logits` `[N, K]` against `targets` `[N]`, and the accuracy of the argmax
/// (a scalar tensor, left on the device).
pub(crate) fn classification(logits: &Tensor, targets: &Tensor) -> (Tensor, Tensor) {
    let accuracy = logits
        .argmax(1, false)
        .eq_tensor(targets)
        .to_kind(Kind::Float)
        .mean(Kind::Float);
    (logits.cross_entropy_for_logits(targets), accuracy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_loss_is_cross_entropy_and_accuracy_counts_argmax_hits() {
        let logits = Tensor::from_slice2(&[[2.0f32, 0.0], [0.0, 1.0], [3.0, 0.0]]);
        let targets = Tensor::from_slice(&[0i64, 1, 1]);
        let (loss, accuracy) = classification(&logits, &targets);
        let ce = |logits: [f64; 2], target: usize| {
            let total: f64 = logits.iter().map(|x| x.exp()).sum();
            -(logits[target].exp() / total).ln()
        };
        let want = (ce([2.0, 0.0], 0) + ce([0.0, 1.0], 1) + ce([3.0, 0.0], 1)) / 3.0;
        assert!((loss.double_value(&[]) - want).abs() < 1e-5);
        assert!((accuracy.double_value(&[]) - 2.0 / 3.0).abs() < 1e-6);
    }
}

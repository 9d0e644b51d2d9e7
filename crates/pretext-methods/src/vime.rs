//! VIME (self-supervised part) — Yoon, Zhang, Jordon, van der Schaar, "VIME: Extending the
//! Success of Self- and Semi-supervised Learning to Tabular Domain", NeurIPS 2020.
//!
//! Each cell of a row is hidden with probability p_m (the mask vector m) and replaced by the
//! same column's cell of a random training row — a draw from the column's marginal — giving
//! a corrupted row x̃. The encoder reads x̃; a mask estimator predicts m (binary
//! cross-entropy per cell) and a feature estimator reconstructs the clean row (squared error
//! on numeric cells, cross-entropy over the categories of categorical ones; missing cells of
//! the clean row are left out): `loss = l_mask + α · l_features`.
//!
//! Defaults (the paper's): p_m = 0.3, α = 2; one linear layer per estimator on the encoder
//! (`--backbone mlp`). The paper's semi-supervised stage (consistency over corrupted copies
//! while fine-tuning) is not part of this method; `pretext finetune` trains the encoder.
//!
//! Run: `pretext pretrain --method vime --backbone mlp --data ../shared/data/tabular/letter_recognition.csv --out runs/vime`

use pretext_augment::{CorruptionScheme, ViewConfig};
use pretext_nn::{Backbone, BackboneConfig, Encoder, InputSpec};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Reduction, Tensor};

use crate::corruption::binary_accuracy;
use crate::pretext_method::{check, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// VIME's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VimeConfig {
    /// Probability that a cell is hidden (p_m).
    pub mask_probability: f64,
    /// Weight of the feature reconstruction against the mask estimation (α).
    pub alpha: f64,
}

impl Default for VimeConfig {
    fn default() -> Self {
        VimeConfig {
            mask_probability: 0.3,
            alpha: 2.0,
        }
    }
}

impl MethodSettings for VimeConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        check(
            self.mask_probability > 0.0 && self.mask_probability < 1.0,
            "mask_probability",
            "must be in (0, 1)",
        )?;
        check(self.alpha >= 0.0, "alpha", "must be at least 0")
    }

    fn view_recipe(&self, _views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::Corrupted(CorruptionScheme::Bernoulli(self.mask_probability))
    }

    fn build(
        &self,
        trained: &nn::VarStore,
        _state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Vime::new(&trained.root(), &setup.input, backbone, self))
    }
}

#[derive(Debug)]
pub struct Vime {
    pub encoder: Backbone,
    mask_head: nn::Linear,
    feature_head: nn::Linear,
    /// Per column: 0 numeric, else its category count (the encoder's `columns`).
    columns: Vec<i64>,
    alpha: f64,
}

impl Vime {
    pub fn new(
        root: &nn::Path,
        input: &InputSpec,
        backbone: &BackboneConfig,
        config: &VimeConfig,
    ) -> Vime {
        let encoder = Backbone::new(&(root / "encoder"), input, backbone);
        let columns = backbone.mlp.columns.clone();
        let width = columns.len() as i64;
        // One output per numeric column, one logit per category of a categorical one.
        let outputs: i64 = columns.iter().map(|&count| count.max(1)).sum();
        Vime {
            mask_head: nn::linear(
                root / "mask_estimator",
                encoder.dim(),
                width,
                Default::default(),
            ),
            feature_head: nn::linear(
                root / "feature_estimator",
                encoder.dim(),
                outputs,
                Default::default(),
            ),
            encoder,
            columns,
            alpha: config.alpha,
        }
    }

    /// `views` = clean rows, corrupted rows (`[B, 2W]` packed); `mask` `[B, W]` (1 = the cell
    /// was replaced).
    pub fn loss(&self, views: &[Tensor], mask: &Tensor) -> StepOutput {
        let width = self.columns.len() as i64;
        let h = self.encoder.encode(&views[1], true);
        let mask_logits = self.mask_head.forward(&h);
        let mask_loss = mask_logits.binary_cross_entropy_with_logits::<Tensor>(
            mask,
            None,
            None,
            Reduction::Mean,
        );
        let mask_accuracy = binary_accuracy(&mask_logits, mask);

        let clean = views[0].narrow(1, 0, width);
        let present = views[0].narrow(1, width, width).neg() + 1.0; // [B, W]
        let predicted = self.feature_head.forward(&h);
        let mut offset = 0;
        let mut per_cell = Vec::with_capacity(self.columns.len());
        for (column, &count) in self.columns.iter().enumerate() {
            let target = clean.select(1, column as i64);
            let error = if count == 0 {
                let output = predicted.select(1, offset);
                offset += 1;
                (output - target).square()
            } else {
                let logits = predicted.narrow(1, offset, count);
                offset += count;
                logits
                    .log_softmax(-1, Kind::Float)
                    .gather(
                        1,
                        &target.to_kind(Kind::Int64).clamp(0, count - 1).unsqueeze(1),
                        false,
                    )
                    .squeeze_dim(1)
                    .neg()
            };
            per_cell.push(error);
        }
        let errors = Tensor::stack(&per_cell, 1) * &present; // [B, W]
        let feature_loss = errors.sum(Kind::Float) / present.sum(Kind::Float).clamp_min(1.0);
        let reconstruction = feature_loss.detach();
        StepOutput {
            loss: mask_loss + feature_loss * self.alpha,
            representations: vec![h.detach()],
            projections: None,
            metrics: vec![
                (signal::MASK_ACCURACY.key.into(), mask_accuracy.into()),
                (
                    signal::RECONSTRUCTION_LOSS.key.into(),
                    reconstruction.into(),
                ),
            ],
        }
    }
}

impl PretextMethod for Vime {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        let mask = inputs.targets_of("corruption");
        self.loss(&inputs.views, mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretext_nn::{BackboneKind, MlpConfig};
    use tch::{nn::VarStore, Device};

    /// Hand-checked pieces of the loss on a 2-column table (numeric, 3 categories): with the
    /// heads zeroed, the mask logits are 0 (BCE = ln 2 whatever the mask), the numeric
    /// prediction is 0 and the category logits uniform (CE = ln 3); a missing clean cell is
    /// left out.
    #[test]
    fn loss_is_mask_bce_plus_alpha_times_reconstruction_over_present_cells() {
        let store = VarStore::new(Device::Cpu);
        let backbone = BackboneConfig {
            kind: BackboneKind::Mlp,
            mlp: MlpConfig {
                hidden_dim: 8,
                layers: 1,
                embedding_dim: 2,
                columns: vec![0, 3],
            },
            ..Default::default()
        };
        let vime = Vime::new(
            &store.root(),
            &InputSpec::rows(2),
            &backbone,
            &VimeConfig::default(),
        );
        tch::no_grad(|| {
            for mut variable in store.trainable_variables() {
                if variable.size().len() == 2 && variable.size()[1] == 8 {
                    let _ = variable.zero_();
                }
            }
            for head in [&vime.mask_head, &vime.feature_head] {
                let mut bias = head.bs.as_ref().unwrap().shallow_clone();
                let _ = bias.zero_();
            }
        });
        // Row 0: numeric 2.0, category 1; row 1: numeric missing, category 2.
        let clean = Tensor::from_slice(&[2.0f32, 1.0, 0.0, 0.0, 0.0, 2.0, 1.0, 0.0]).view([2, 4]);
        let mask = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 1.0]).view([2, 2]);
        let output = vime.loss(&[clean.shallow_clone(), clean], &mask);
        // Present cells: 2.0 (error 4), category 1 (ln 3), category 2 (ln 3); the missing
        // numeric cell does not count.
        let features = (4.0 + 2.0 * 3f64.ln()) / 3.0;
        let expected = 2f64.ln() + 2.0 * features;
        let loss = output.loss.double_value(&[]);
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    }
}

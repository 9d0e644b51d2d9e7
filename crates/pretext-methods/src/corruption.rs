//! Corruption detection: is this table row real, and which of its cells were swapped?
//!
//! Half of the rows of a batch (chosen per step) are corrupted — a share of their cells
//! replaced by the same column's cell of a random training row, as in SCARF — and the others
//! are shown as they are. From the encoder's output, a row head predicts whether the row was
//! corrupted and a cell head which cells were (binary cross-entropy each; a clean row has no
//! corrupted cells): `loss = BCE(row) + cell_weight · BCE(cells)`. Telling real rows from
//! plausible-looking fakes needs the dependencies between columns, which is what the encoder
//! should learn (the replaced-token detection of ELECTRA, and VIME's mask estimation, for
//! tables).
//!
//! Run: `pretext pretrain --method corruption --backbone mlp --data ../shared/data/tabular/satellite.csv --out runs/corruption`

use pretext_augment::{CorruptionScheme, ViewConfig};
use pretext_nn::{Backbone, BackboneConfig, Encoder, InputSpec};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Reduction, Tensor};

use crate::pretext_method::{check, MethodHealth, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// Corruption detection's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorruptionConfig {
    /// Share of a corrupted row's cells that are replaced.
    pub corruption_rate: f64,
    /// Share of the rows of a batch that are corrupted.
    pub corrupted_rows: f64,
    /// Weight of the per-cell loss against the per-row loss.
    pub cell_weight: f64,
}

impl Default for CorruptionConfig {
    fn default() -> Self {
        CorruptionConfig {
            corruption_rate: 0.3,
            corrupted_rows: 0.5,
            cell_weight: 1.0,
        }
    }
}

impl MethodSettings for CorruptionConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        check(
            self.corruption_rate > 0.0 && self.corruption_rate <= 1.0,
            "corruption_rate",
            "must be in (0, 1]",
        )?;
        check(
            self.corrupted_rows > 0.0 && self.corrupted_rows < 1.0,
            "corrupted_rows",
            "must be in (0, 1)",
        )?;
        check(self.cell_weight >= 0.0, "cell_weight", "must be at least 0")
    }

    fn view_recipe(&self, _views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::Corrupted(CorruptionScheme::Share(self.corruption_rate))
    }

    fn build(
        &self,
        trained: &nn::VarStore,
        _state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Corruption::new(
            &trained.root(),
            &setup.input,
            backbone,
            self,
        ))
    }

    /// Real or corrupted: two classes.
    fn health(&self, _backbone: &BackboneConfig, _total_steps: u64) -> MethodHealth {
        MethodHealth {
            pretext_classes: Some(2),
            ..MethodHealth::default()
        }
    }
}

#[derive(Debug)]
pub struct Corruption {
    pub encoder: Backbone,
    row_head: nn::Linear,
    cell_head: nn::Linear,
    config: CorruptionConfig,
}

impl Corruption {
    pub fn new(
        root: &nn::Path,
        input: &InputSpec,
        backbone: &BackboneConfig,
        config: &CorruptionConfig,
    ) -> Corruption {
        let encoder = Backbone::new(&(root / "encoder"), input, backbone);
        let width = backbone.mlp.columns.len() as i64;
        Corruption {
            row_head: nn::linear(root / "row_head", encoder.dim(), 1, Default::default()),
            cell_head: nn::linear(root / "cell_head", encoder.dim(), width, Default::default()),
            encoder,
            config: config.clone(),
        }
    }

    /// `views` = clean rows, corrupted rows (`[B, 2W]` packed); `mask` `[B, W]` (1 = the cell
    /// was replaced in the corrupted copy). Which rows are shown corrupted is drawn from
    /// libtorch's generator, which the trainer seeds per step.
    pub fn loss(&self, views: &[Tensor], mask: &Tensor) -> StepOutput {
        let batch = views[0].size()[0];
        let device = views[0].device();
        let corrupted = Tensor::rand([batch], (Kind::Float, device))
            .lt(self.config.corrupted_rows)
            .to_kind(Kind::Float); // [B]
        let chosen = corrupted.unsqueeze(1);
        let rows = &views[1] * &chosen + &views[0] * (chosen.neg() + 1.0);
        let cells = mask * &chosen; // a clean row has no replaced cell
        let h = self.encoder.encode(&rows, true);
        let row_logits = self.row_head.forward(&h).squeeze_dim(1);
        let cell_logits = self.cell_head.forward(&h);
        let bce = |logits: &Tensor, target: &Tensor| {
            logits.binary_cross_entropy_with_logits::<Tensor>(target, None, None, Reduction::Mean)
        };
        let loss =
            bce(&row_logits, &corrupted) + bce(&cell_logits, &cells) * self.config.cell_weight;
        StepOutput {
            loss,
            representations: vec![h.detach()],
            projections: None,
            metrics: vec![
                (
                    signal::PRETEXT_ACCURACY.key.into(),
                    binary_accuracy(&row_logits, &corrupted).into(),
                ),
                (
                    signal::CELL_ACCURACY.key.into(),
                    binary_accuracy(&cell_logits, &cells).into(),
                ),
            ],
        }
    }
}

impl PretextMethod for Corruption {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        let mask = inputs.targets_of("corruption");
        self.loss(&inputs.views, mask)
    }
}

/// Share of the binary predictions (logit > 0) that match `target` (1 = positive), as a
/// scalar tensor left on the device.
pub(crate) fn binary_accuracy(logits: &Tensor, target: &Tensor) -> Tensor {
    logits
        .gt(0.0)
        .eq_tensor(&target.gt(0.5))
        .to_kind(Kind::Float)
        .mean(Kind::Float)
}

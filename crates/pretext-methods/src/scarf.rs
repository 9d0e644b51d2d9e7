//! SCARF — Bahri, Jiang, Tay, Metzler, "SCARF: Self-Supervised Contrastive Learning using
//! Random Feature Corruption", ICLR 2022 (arXiv:2106.15147).
//!
//! Each table row is paired with a corrupted copy in which a fixed share of its cells (60%,
//! chosen per row) is replaced by the same column's cell of a random training row — a draw
//! from that column's marginal. Encoder and projection head map both; InfoNCE pulls a row
//! towards its own corruption and away from the other rows' corruptions in the batch:
//! `l_i = −log( exp(s(z_i, z̃_i)/τ) / Σ_k exp(s(z_i, z̃_k)/τ) )`, s the cosine similarity.
//!
//! Defaults (the paper's): corruption rate 0.6, τ = 1, a 2-layer 256-wide ReLU head on the
//! encoder (`--backbone mlp`: 3 layers of 256 here; the paper's has 4).
//!
//! Run: `pretext pretrain --method scarf --backbone mlp --data ../shared/data/tabular/letter_recognition.csv --out runs/scarf`

use pretext_augment::{CorruptionScheme, ViewConfig};
use pretext_nn::{
    l2_normalize, Backbone, BackboneConfig, Encoder, InputSpec, Projector, ProjectorConfig,
};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::pretext_method::{check, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{encoder_and_projector, MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// SCARF's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScarfConfig {
    /// Share of each row's cells replaced from their columns' marginals.
    pub corruption_rate: f64,
    /// InfoNCE temperature.
    pub temperature: f64,
    /// The projection head.
    pub projector: ProjectorConfig,
}

impl Default for ScarfConfig {
    fn default() -> Self {
        ScarfConfig {
            corruption_rate: 0.6,
            temperature: 1.0,
            projector: ProjectorConfig {
                hidden_dim: 256,
                output_dim: 256,
                layers: 2,
                batch_norm: false,
            },
        }
    }
}

impl MethodSettings for ScarfConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        check(
            self.corruption_rate > 0.0 && self.corruption_rate <= 1.0,
            "corruption_rate",
            "must be in (0, 1]",
        )?;
        check(self.temperature > 0.0, "temperature", "must be above 0")
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
        Box::new(Scarf::new(&trained.root(), &setup.input, backbone, self))
    }
}

#[derive(Debug)]
pub struct Scarf {
    pub encoder: Backbone,
    projector: Projector,
    temperature: f64,
}

impl Scarf {
    pub fn new(
        root: &nn::Path,
        input: &InputSpec,
        backbone: &BackboneConfig,
        config: &ScarfConfig,
    ) -> Scarf {
        let (encoder, projector) = encoder_and_projector(root, input, backbone, &config.projector);
        Scarf {
            encoder,
            projector,
            temperature: config.temperature,
        }
    }

    /// `views` = clean rows, corrupted rows, both `[B, 2W]`.
    pub fn loss(&self, views: &[Tensor]) -> StepOutput {
        let batch = views[0].size()[0];
        let h = self
            .encoder
            .encode(&Tensor::cat(&[&views[0], &views[1]], 0), true);
        let z = l2_normalize(&self.projector.forward_t(&h, true));
        let (anchors, corrupted) = (z.narrow(0, 0, batch), z.narrow(0, batch, batch));
        let logits = anchors.matmul(&corrupted.tr()) / self.temperature;
        let targets = Tensor::arange(batch, (Kind::Int64, logits.device()));
        let loss = logits.cross_entropy_for_logits(&targets);
        let accuracy = logits
            .argmax(1, false)
            .eq_tensor(&targets)
            .to_kind(Kind::Float)
            .mean(Kind::Float);
        StepOutput {
            loss,
            representations: vec![
                h.narrow(0, 0, batch).detach(),
                h.narrow(0, batch, batch).detach(),
            ],
            projections: Some(anchors.detach()),
            metrics: vec![(signal::CONTRASTIVE_ACCURACY.key.into(), accuracy.into())],
        }
    }
}

impl PretextMethod for Scarf {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        self.loss(&inputs.views)
    }
}

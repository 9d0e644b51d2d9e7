//! SimCLR — Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning
//! of Visual Representations", ICML 2020 (arXiv:2002.05709).
//!
//! Each image gives two augmented views x̃_i, x̃_j. The encoder f(·) maps them to
//! representations h = f(x̃), the projection head g(·) (an MLP) to z = g(h), and the NT-Xent
//! loss pulls the two views of an image together while pushing apart the 2(N−1) other views
//! in the batch, with cosine similarity and temperature τ. Transfer uses h, not z.
//!
//! Defaults from the paper's CIFAR-10 setting, scaled to small images: τ = 0.5, a 2-layer
//! projection MLP with a 512-wide hidden layer and 128-d output, batch 256 (views 2×256).
//!
//! Run: `pretext pretrain --method simclr --data ../shared/data/vision/fashion-mnist --out runs/simclr`

use pretext_augment::ViewConfig;
use pretext_nn::{
    nt_xent, nt_xent_share, Backbone, BackboneConfig, Encoder, InputSpec, Projector,
    ProjectorConfig,
};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::pretext_method::{check, MethodSettings, PretextMethod};
use crate::step::{encoder_and_projector, MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// SimCLR's own settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimClrConfig {
    /// τ of the NT-Xent loss.
    pub temperature: f64,
    /// The projection head g(·).
    pub projector: ProjectorConfig,
}

impl Default for SimClrConfig {
    fn default() -> Self {
        SimClrConfig {
            temperature: 0.5,
            projector: ProjectorConfig::default(),
        }
    }
}

impl MethodSettings for SimClrConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        check(self.temperature > 0.0, "temperature", "must be above 0")
    }

    fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::TwoViews(views.clone())
    }

    fn build(
        &self,
        trained: &nn::VarStore,
        _state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(SimClr::new(&trained.root(), &setup.input, backbone, self))
    }
}

/// Encoder f(·) and projection head g(·); both get gradients. SimCLR keeps no untrained state.
#[derive(Debug)]
pub struct SimClr {
    pub encoder: Backbone,
    pub projector: Projector,
    pub config: SimClrConfig,
}

impl SimClr {
    pub fn new(
        root: &nn::Path,
        input: &InputSpec,
        backbone: &BackboneConfig,
        config: &SimClrConfig,
    ) -> SimClr {
        let (encoder, projector) = encoder_and_projector(root, input, backbone, &config.projector);
        SimClr {
            encoder,
            projector,
            config: config.clone(),
        }
    }

    /// `views` = [x̃_i, x̃_j], each `[N, C, H, W]`. Both views go through the network as one
    /// batch, so batch-norm statistics are computed over all 2N views as in the paper.
    pub fn loss(&self, views: &[Tensor]) -> StepOutput {
        let n = views[0].size()[0];
        let h = self.encoder.encode(&Tensor::cat(views, 0), true); // [2N, D]
        let z = self.projector.forward_t(&h, true); // [2N, P]
        let (h_i, h_j) = (h.narrow(0, 0, n), h.narrow(0, n, n));
        let (z_i, z_j) = (z.narrow(0, 0, n), z.narrow(0, n, n));
        // Several processes: the negatives are every process's views (the paper's global
        // batch), each process computing the loss of its own views.
        let global = pretext_nn::collective().and_then(|collective| {
            let all_i = collective.gather_rows(&z_i)?;
            let all_j = collective.gather_rows(&z_j)?;
            Some(nt_xent_share(
                &all_i,
                &all_j,
                collective.rank,
                n,
                self.config.temperature,
            ))
        });
        let loss = global.unwrap_or_else(|| nt_xent(&z_i, &z_j, self.config.temperature));
        StepOutput {
            loss,
            representations: vec![h_i.detach(), h_j.detach()],
            projections: Some(z.narrow(0, 0, n).detach()),
            metrics: Vec::new(),
        }
    }
}

impl PretextMethod for SimClr {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        self.loss(&inputs.views)
    }
}

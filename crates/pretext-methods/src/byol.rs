//! BYOL — Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised
//! Learning", NeurIPS 2020 (arXiv:2006.07733).
//!
//! An online network (encoder f_θ, projector g_θ, predictor q_θ) predicts the projection that
//! a target network (encoder f_ξ, projector g_ξ) gives for the *other* view of the same image.
//! The target gets no gradients; after each step it follows the online weights,
//! ξ ← τ·ξ + (1 − τ)·θ, with τ rising from τ_base = 0.996 to 1 along a cosine (eq. in §3.2).
//! Loss (eq. 2, symmetrized): `‖q̄_θ(z_θ) − z̄'_ξ‖²` for view 1 → view 2 plus view 2 → view 1,
//! with bars for L2 normalization. No negatives: the predictor and the slow target are what
//! keep the representations from collapsing (the paper reports 0.3% accuracy without the
//! predictor; `predictor = false` reproduces that failure for the health checks).
//!
//! Defaults: τ_base = 0.996; projector and predictor MLPs Linear-BN-ReLU-Linear (4096 → 256
//! in the paper, 512 → 128 here).
//!
//! Run: `pretext pretrain --method byol --data ../shared/data/vision/fashion-mnist --out runs/byol`

use pretext_augment::ViewConfig;
use pretext_nn::{
    cosine_momentum, normalized_mse, Backbone, BackboneConfig, Ema, Encoder, Projector,
    ProjectorConfig,
};
use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

use crate::pretext_method::{check, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{encoder_and_projector, MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// BYOL's settings (paper defaults, widths scaled down).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ByolConfig {
    /// τ_base: the target's momentum at step 0 (rises to 1 by the last step).
    pub base_momentum: f64,
    /// g: the projector MLP.
    pub projector: ProjectorConfig,
    /// q: the predictor MLP (its input width is the projector's output).
    pub predictor: ProjectorConfig,
    /// Use the predictor. Turning it off makes BYOL collapse (kept for health checks).
    pub use_predictor: bool,
}

impl Default for ByolConfig {
    fn default() -> Self {
        ByolConfig {
            base_momentum: 0.996,
            projector: ProjectorConfig::default(),
            predictor: ProjectorConfig::default(),
            use_predictor: true,
        }
    }
}

impl MethodSettings for ByolConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        check(
            (0.0..=1.0).contains(&self.base_momentum),
            "base_momentum",
            "must be in [0, 1]",
        )
    }

    fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::TwoViews(views.clone())
    }

    fn build(
        &self,
        trained: &VarStore,
        state: &VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Byol::new(trained, state, setup, backbone, self))
    }
}

/// Online encoder, projector, predictor (trained); target encoder and projector (state).
#[derive(Debug)]
pub struct Byol {
    pub encoder: Backbone,
    pub projector: Projector,
    pub predictor: Option<Projector>,
    pub target_encoder: Backbone,
    pub target_projector: Projector,
    pub ema: Ema,
    pub config: ByolConfig,
}

impl Byol {
    pub fn new(
        trained: &VarStore,
        state: &VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
        config: &ByolConfig,
    ) -> Byol {
        let build = |store: &VarStore| {
            encoder_and_projector(&store.root(), &setup.input, backbone, &config.projector)
        };
        let (encoder, projector) = build(trained);
        let predictor = config.use_predictor.then(|| {
            let mut predictor = config.predictor.clone();
            predictor.output_dim = config.projector.output_dim;
            Projector::new(
                &(trained.root() / "predictor"),
                config.projector.output_dim,
                &predictor,
            )
        });
        let (target_encoder, target_projector) = build(state);
        let ema = Ema::new(state, trained, &["encoder.", "projector."]);
        Byol {
            encoder,
            projector,
            predictor,
            target_encoder,
            target_projector,
            ema,
            config: config.clone(),
        }
    }

    /// `views` = [v, v'], `[N, C, H, W]` each; both go through each network as one batch.
    pub fn loss(&self, views: &[Tensor]) -> StepOutput {
        let n = views[0].size()[0];
        let both = Tensor::cat(views, 0); // [2N, C, H, W]
        let h = self.encoder.encode(&both, true); // [2N, D]
        let z = self.projector.forward_t(&h, true); // [2N, P]
        let z_first = z.narrow(0, 0, n).detach();
        let p = match &self.predictor {
            Some(predictor) => predictor.forward_t(&z, true),
            None => z,
        };
        let target = tch::no_grad(|| {
            let h = self.target_encoder.encode(&both, true);
            self.target_projector.forward_t(&h, true)
        });
        // View 1's prediction regresses view 2's target, and the other way round.
        let loss = normalized_mse(&p.narrow(0, 0, n), &target.narrow(0, n, n))
            + normalized_mse(&p.narrow(0, n, n), &target.narrow(0, 0, n));
        StepOutput {
            loss,
            representations: vec![h.narrow(0, 0, n).detach(), h.narrow(0, n, n).detach()],
            projections: Some(z_first),
            metrics: Vec::new(),
        }
    }
}

impl PretextMethod for Byol {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        self.loss(&inputs.views)
    }

    /// ξ ← τ·ξ + (1 − τ)·θ with τ on its cosine schedule.
    fn after_step(&mut self, clock: StepClock, taken: Option<&Tensor>) {
        let tau = cosine_momentum(self.config.base_momentum, clock.step, clock.total_steps);
        self.ema.update_after(tau, taken);
    }

    fn health_metrics(&self) -> Vec<(String, f64)> {
        vec![(
            signal::TARGET_ONLINE_DISTANCE.key.into(),
            self.ema.relative_distance(),
        )]
    }
}

//! DINO — Caron, Touvron, Misra, Jégou, Mairal, Bojanowski, Joulin, "Emerging Properties in
//! Self-Supervised Vision Transformers", ICCV 2021 (arXiv:2104.14294), Algorithm 1.
//!
//! Multi-crop views: 2 global crops and N small local crops. The student (encoder + DINO
//! head) sees every crop; the teacher, an EMA of the student (momentum from 0.996 to 1 on a
//! cosine), sees only the global crops. The teacher's output is *centered* (a running mean c
//! of its outputs is subtracted, momentum 0.9) and *sharpened* (temperature τ_t warmed up
//! from 0.04 to 0.07); the student's (τ_s = 0.1) is trained to match it with cross-entropy
//! over every (global teacher crop, other student crop) pair. Centering alone would collapse
//! to a uniform output, sharpening alone to one dimension; together they balance.
//!
//! Defaults from the paper, scaled for 28 px images on CPU: global crops at full size with
//! scale (0.4, 1), 6 local crops of 12 px (96/224 of the image) with scale (0.05, 0.4); a
//! head of 512 hidden, 128 bottleneck, 4096 outputs (paper: 2048, 256, 65536) with batch
//! norm in its hidden layers (the paper's option for convolutional backbones); τ_t warmup
//! over the first 30% of steps (the paper's 30 of 100 epochs).
//!
//! Run: `pretext pretrain --method dino --data ../shared/data/vision/fashion-mnist --out runs/dino`

use pretext_augment::ViewConfig;
use pretext_nn::{
    cosine_momentum, dino_loss, Backbone, BackboneConfig, Center, DinoHead, DinoHeadConfig, Ema,
    Encoder,
};
use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Tensor};

use crate::pretext_method::{MethodHealth, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// DINO's settings (paper defaults, scaled to small images).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DinoConfig {
    /// τ_s, the student's temperature.
    pub student_temperature: f64,
    /// τ_t at the start of the warmup.
    pub warmup_teacher_temperature: f64,
    /// τ_t after the warmup.
    pub teacher_temperature: f64,
    /// Fraction of the run over which τ_t rises linearly.
    pub teacher_temperature_warmup: f64,
    /// The teacher's momentum at step 0 (rises to 1 along a cosine).
    pub base_momentum: f64,
    /// Momentum of the center's moving average.
    pub center_momentum: f64,
    /// Subtract the center from the teacher's output. Off makes DINO collapse (kept for
    /// health checks).
    pub centering: bool,
    /// The projection head.
    pub head: DinoHeadConfig,
    /// Number of local crops.
    pub local_crops: usize,
    /// Side of a local crop in pixels.
    pub local_crop_size: usize,
    /// Area fraction range of the global crops.
    pub global_crop_scale: (f32, f32),
    /// Area fraction range of the local crops.
    pub local_crop_scale: (f32, f32),
}

impl Default for DinoConfig {
    fn default() -> Self {
        DinoConfig {
            student_temperature: 0.1,
            warmup_teacher_temperature: 0.04,
            teacher_temperature: 0.07,
            teacher_temperature_warmup: 0.3,
            base_momentum: 0.996,
            center_momentum: 0.9,
            centering: true,
            head: DinoHeadConfig::default(),
            local_crops: 6,
            local_crop_size: 12,
            global_crop_scale: (0.4, 1.0),
            local_crop_scale: (0.05, 0.4),
        }
    }
}

impl DinoConfig {
    /// τ_t at `clock`: linear from the warmup value to the final one, then constant.
    pub fn teacher_temperature_at(&self, clock: StepClock) -> f64 {
        let warmup_steps = (self.teacher_temperature_warmup * clock.total_steps as f64).round();
        if warmup_steps < 1.0 || clock.step as f64 >= warmup_steps {
            return self.teacher_temperature;
        }
        let progress = clock.step as f64 / warmup_steps;
        self.warmup_teacher_temperature
            + progress * (self.teacher_temperature - self.warmup_teacher_temperature)
    }
}

impl MethodSettings for DinoConfig {
    /// Checks ranges; the error names the field (without the `method.dino.` prefix).
    fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: &str| Err((field.to_string(), message.to_string()));
        if self.student_temperature <= 0.0 {
            return fail("student_temperature", "must be above 0");
        }
        if self.teacher_temperature <= 0.0 || self.warmup_teacher_temperature <= 0.0 {
            return fail("teacher_temperature", "temperatures must be above 0");
        }
        if !(0.0..=1.0).contains(&self.teacher_temperature_warmup) {
            return fail("teacher_temperature_warmup", "must be a fraction in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.base_momentum)
            || !(0.0..=1.0).contains(&self.center_momentum)
        {
            return fail("base_momentum", "momenta must be in [0, 1]");
        }
        if self.local_crop_size < 4 {
            return fail("local_crop_size", "must be at least 4 pixels");
        }
        for (field, (low, high)) in [
            ("global_crop_scale", self.global_crop_scale),
            ("local_crop_scale", self.local_crop_scale),
        ] {
            if !(low > 0.0 && low <= high && high <= 1.0) {
                return fail(field, "expected [min, max] with 0 < min <= max <= 1");
            }
        }
        Ok(())
    }

    /// Multi-crop views: the `[views]` pipeline with DINO's crop scales.
    fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::MultiCrop {
            global: ViewConfig {
                crop_scale: self.global_crop_scale,
                ..views.clone()
            },
            local: ViewConfig {
                crop_scale: self.local_crop_scale,
                ..views.clone()
            },
            local_crops: self.local_crops,
            local_size: self.local_crop_size,
        }
    }

    fn build(
        &self,
        trained: &VarStore,
        state: &VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Dino::new(trained, state, setup, backbone, self))
    }

    fn health(&self, _backbone: &BackboneConfig, total_steps: u64) -> MethodHealth {
        MethodHealth {
            dino_output_dim: Some(self.head.output_dim),
            dino_warmup_steps: (self.teacher_temperature_warmup * total_steps as f64).round()
                as u64,
            loss_should_fall: false,
            ..MethodHealth::default()
        }
    }
}

/// Student encoder and head (trained); teacher encoder, head and center (state).
#[derive(Debug)]
pub struct Dino {
    pub encoder: Backbone,
    pub head: DinoHead,
    pub teacher_encoder: Backbone,
    pub teacher_head: DinoHead,
    pub ema: Ema,
    pub center: Center,
    /// This step's teacher outputs, folded into the center by `after_step`.
    pending_teacher: Vec<Tensor>,
    pub config: DinoConfig,
}

impl Dino {
    pub fn new(
        trained: &VarStore,
        state: &VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
        config: &DinoConfig,
    ) -> Dino {
        let build = |store: &VarStore| {
            let encoder = Backbone::new(&(store.root() / "encoder"), &setup.input, backbone);
            let head = DinoHead::new(&(store.root() / "head"), encoder.dim(), &config.head);
            (encoder, head)
        };
        let (encoder, head) = build(trained);
        let (teacher_encoder, teacher_head) = build(state);
        let ema = Ema::new(state, trained, &["encoder.", "head."]);
        let center = Center::new(
            &(state.root() / "center"),
            config.head.output_dim,
            config.center_momentum,
        );
        Dino {
            encoder,
            head,
            teacher_encoder,
            teacher_head,
            ema,
            center,
            pending_teacher: Vec::new(),
            config: config.clone(),
        }
    }

    /// `views` = [global₁, global₂, local₁, …, local_N]; crops of one size share a forward
    /// pass (and its BN statistics), as in the paper's multi-crop wrapper.
    pub fn loss(&mut self, views: &[Tensor], clock: StepClock) -> StepOutput {
        let n = views[0].size()[0];
        let globals = Tensor::cat(&views[..2], 0); // [2N, C, H, W]
        let h_global = self.encoder.encode(&globals, true); // [2N, D]
        let mut student = vec![self.head.forward_t(&h_global, true)];
        if views.len() > 2 {
            let locals = Tensor::cat(&views[2..], 0); // [L·N, C, h, w]
            student.push(
                self.head
                    .forward_t(&self.encoder.encode(&locals, true), true),
            );
        }
        let student_crops = Tensor::cat(&student, 0).split(n, 0); // per crop [N, K]
        let teacher_crops = tch::no_grad(|| {
            let h = self.teacher_encoder.encode(&globals, true);
            self.teacher_head.forward_t(&h, true).split(n, 0)
        });
        let teacher_temperature = self.config.teacher_temperature_at(clock);
        let parts = dino_loss(
            &student_crops,
            &teacher_crops,
            self.center.value(),
            self.config.student_temperature,
            teacher_temperature,
        );
        self.pending_teacher = teacher_crops;
        StepOutput {
            loss: parts.loss,
            projections: Some(student_crops[0].detach()),
            representations: vec![
                h_global.narrow(0, 0, n).detach(),
                h_global.narrow(0, n, n).detach(),
            ],
            metrics: vec![
                (
                    signal::TEACHER_ENTROPY.key.into(),
                    parts.teacher_entropy.into(),
                ),
                (
                    signal::TEACHER_MARGINAL_ENTROPY.key.into(),
                    parts.teacher_marginal_entropy.into(),
                ),
                (
                    signal::TEACHER_TEMPERATURE.key.into(),
                    teacher_temperature.into(),
                ),
            ],
        }
    }
}

impl PretextMethod for Dino {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, clock: StepClock) -> StepOutput {
        self.loss(&inputs.views, clock)
    }

    /// Teacher EMA on its cosine schedule, then the center update.
    fn after_step(&mut self, clock: StepClock, taken: Option<&Tensor>) {
        let momentum = cosine_momentum(self.config.base_momentum, clock.step, clock.total_steps);
        self.ema.update_after(momentum, taken);
        let teacher = std::mem::take(&mut self.pending_teacher);
        if self.config.centering && !teacher.is_empty() {
            self.center.update(&teacher, taken);
        }
    }

    fn health_metrics(&self) -> Vec<(String, f64)> {
        vec![
            (
                signal::TEACHER_STUDENT_DISTANCE.key.into(),
                self.ema.relative_distance(),
            ),
            (signal::CENTER_NORM.key.into(), self.center.norm()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teacher_temperature_warms_up_linearly_then_stays() {
        let config = DinoConfig::default();
        let at = |step| {
            config.teacher_temperature_at(StepClock {
                step,
                total_steps: 100,
            })
        };
        assert!((at(0) - 0.04).abs() < 1e-12);
        assert!((at(15) - 0.055).abs() < 1e-12);
        assert!((at(30) - 0.07).abs() < 1e-12);
        assert!((at(99) - 0.07).abs() < 1e-12);
    }
}

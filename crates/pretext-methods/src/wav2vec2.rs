//! wav2vec 2.0 — Baevski, Zhou, Mohamed, Auli, "wav2vec 2.0: A Framework for
//! Self-Supervised Learning of Speech Representations", NeurIPS 2020 (arXiv:2006.11477).
//!
//! One step, per batch of raw waveforms `[B, L]`:
//! 1. the feature encoder turns each waveform into frames `[B, T, C]` (20 ms each); its
//!    gradient is scaled by `feature_grad_scale` (paper: 0.1) and an L2 penalty on the
//!    frames is added (`feature_penalty`, paper 10);
//! 2. the layer-normed frames are quantized by a Gumbel-softmax product quantizer (G
//!    codebooks of V entries; temperature annealed from 2 to 0.5): the targets;
//! 3. the projected frames are span-masked (start probability 0.065, spans of 10 frames,
//!    about 49% of the frames; each clip's mask drawn on the host from its seeded view
//!    stream by the waveform recipe) with one learned mask embedding, and the context
//!    transformer reads them;
//! 4. at every masked frame the context, projected to `final_dim`, must pick its own
//!    quantized target (also projected) among K = 100 distractors drawn from the other masked
//!    frames of the same utterance, by cosine similarity / κ (0.1);
//! 5. loss = contrastive + α · diversity (α = 0.1: use every codebook entry) + penalty.
//!
//! With `quantize_targets = false` the targets are the layer-normed frame features
//! themselves (projected), as in the paper's "continuous targets" ablation (Table 4): no
//! quantizer and no diversity loss. At CPU scale this is the variant that learns at once: on
//! the spoken keywords (0.5 h of audio) the quantized targets kept the contrastive loss at
//! ln(K+1) = 4.615, chance, for the first ~1100 of 2000 steps before it fell, and in
//! 250–500-step runs no other setting tried moved it (learning rate 5e-4 and 1e-3;
//! quantizer logits initialized with std 1, 0.3 or 1/√C; a zero-mean codebook; V = 16;
//! feature gradients unscaled), while continuous targets reached 33% masked-frame accuracy
//! within 50 steps (BENCHMARKS.md §10). The quantizer's code assignment starts as
//! a hash of random convolution features that changes from one 20 ms frame to the next, and
//! the paper's 400k updates are what let it become predictable.
//!
//! Scaled for CPU: the temperature reaches 0.5 at `anneal_fraction` (0.69) of the run, as the
//! paper's 0.999995 per update does at 277k of its 400k updates; codes are 128 wide (paper
//! 256), as is the final projection.
//!
//! Health, logged each time health signals are due: `codebook_perplexity` (of G·V; near G
//! means the quantizer collapsed onto one entry per codebook), `contrastive_accuracy` (how
//! often the true target scores above every distractor; chance is about 1/(K+1)),
//! `gumbel_temperature`, `masked_share`, `diversity_loss`, `feature_penalty`, and
//! `feature_grad_ratio`: the RMS gradient of the feature encoder's weights over that of the
//! rest of the network (after the scaling; the paper scales it to keep the convolutions from
//! dominating).
//!
//! Run: `pretext pretrain --config configs/wav2vec2-spoken-words.toml`

use pretext_augment::{SpanMaskConfig, ViewConfig};
use pretext_nn::{
    contrastive_loss, contrastive_loss_on_device, gumbel_temperature, Backbone, BackboneConfig,
    GumbelQuantizer, GumbelQuantizerConfig, InputSpec, Wav2VecEncoder,
};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::pretext_method::{MethodHealth, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{MethodSetup, Metric, StepClock, StepOutput};
use crate::views::{FrameMasking, StepInputs, ViewRecipe};

/// wav2vec 2.0's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Wav2Vec2Config {
    /// Span masking of the frames (paper: p = 0.065, spans of 10).
    pub masking: SpanMaskConfig,
    /// Compare the context with quantized targets (the paper); false: with the frame
    /// features themselves (the paper's "continuous targets" ablation, fairseq's
    /// `quantize_targets = false`), which needs no quantizer and no diversity loss.
    pub quantize_targets: bool,
    /// The product quantizer (G codebooks of V entries, codes `code_dim` wide).
    pub quantizer: GumbelQuantizerConfig,
    /// Width both the context and the targets are projected to before comparing.
    pub final_dim: i64,
    /// Distractors per masked frame, K.
    pub negatives: usize,
    /// Temperature κ of the cosine similarities.
    pub temperature: f64,
    /// Weight α of the codebook diversity loss.
    pub diversity_weight: f64,
    /// Weight of the L2 penalty on the feature encoder's output.
    pub feature_penalty: f64,
    /// Factor on the gradient reaching the feature encoder.
    pub feature_grad_scale: f64,
    /// Gumbel-softmax temperature at the first step.
    pub gumbel_start: f64,
    /// Lowest Gumbel-softmax temperature.
    pub gumbel_end: f64,
    /// Share of the run after which the temperature reaches `gumbel_end` (decaying
    /// geometrically until then).
    pub anneal_fraction: f64,
}

impl Default for Wav2Vec2Config {
    fn default() -> Self {
        Wav2Vec2Config {
            masking: SpanMaskConfig::default(),
            quantize_targets: true,
            quantizer: GumbelQuantizerConfig {
                groups: 2,
                entries: 320,
                code_dim: 128,
            },
            final_dim: 128,
            negatives: 100,
            temperature: 0.1,
            diversity_weight: 0.1,
            feature_penalty: 10.0,
            feature_grad_scale: 0.1,
            gumbel_start: 2.0,
            gumbel_end: 0.5,
            anneal_fraction: 0.69,
        }
    }
}

impl Wav2Vec2Config {
    /// Checks the settings; the error is (field under `method.wav2vec2`, message).
    pub fn validate(&self) -> Result<(), (String, String)> {
        let fail = |field: &str, message: &str| Err((field.to_string(), message.to_string()));
        let masking = &self.masking;
        if !(masking.start_probability > 0.0 && masking.start_probability < 1.0) {
            return fail("masking.start_probability", "must be in (0, 1)");
        }
        if masking.span == 0 {
            return fail("masking.span", "must be at least 1 frame");
        }
        if masking.min_spans < 2 {
            return fail(
                "masking.min_spans",
                "must be at least 2, so every masked frame has distractors",
            );
        }
        let q = &self.quantizer;
        if q.groups <= 0 || q.entries < 2 || q.code_dim <= 0 || q.code_dim % q.groups != 0 {
            return fail(
                "quantizer.code_dim",
                "needs groups ≥ 1, entries ≥ 2 and code_dim a positive multiple of groups",
            );
        }
        if self.final_dim <= 0 {
            return fail("final_dim", "must be above 0");
        }
        if self.negatives == 0 {
            return fail("negatives", "must be at least 1");
        }
        if self.temperature <= 0.0 {
            return fail("temperature", "must be above 0");
        }
        if self.diversity_weight < 0.0 || self.feature_penalty < 0.0 {
            return fail(
                "diversity_weight",
                "diversity_weight and feature_penalty must be ≥ 0",
            );
        }
        if !(self.feature_grad_scale > 0.0 && self.feature_grad_scale <= 1.0) {
            return fail("feature_grad_scale", "must be in (0, 1]");
        }
        if !(self.gumbel_end > 0.0 && self.gumbel_start >= self.gumbel_end) {
            return fail("gumbel_start", "needs gumbel_start ≥ gumbel_end > 0");
        }
        if !(self.anneal_fraction > 0.0 && self.anneal_fraction <= 1.0) {
            return fail("anneal_fraction", "must be in (0, 1]");
        }
        Ok(())
    }

    /// The Gumbel temperature at `clock`: geometric from `gumbel_start` to `gumbel_end` over
    /// the first `anneal_fraction` of the run, then `gumbel_end`.
    pub fn gumbel_temperature(&self, clock: StepClock) -> f64 {
        let anneal_steps = (self.anneal_fraction * clock.total_steps as f64).max(1.0);
        let decay = (self.gumbel_end / self.gumbel_start).powf(1.0 / anneal_steps);
        gumbel_temperature(clock.step, self.gumbel_start, self.gumbel_end, decay)
    }
}

impl MethodSettings for Wav2Vec2Config {
    fn validate(&self) -> Result<(), (String, String)> {
        Wav2Vec2Config::validate(self)
    }

    fn view_recipe(&self, _views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::Waveforms(FrameMasking::new(self.masking.clone()))
    }

    fn build(
        &self,
        trained: &nn::VarStore,
        _state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Wav2Vec2::new(trained, &setup.input, backbone, self))
    }

    fn health(&self, _backbone: &BackboneConfig, _total_steps: u64) -> MethodHealth {
        MethodHealth {
            codebook: Some((
                self.quantizer.groups * self.quantizer.entries,
                self.negatives,
            )),
            ..MethodHealth::default()
        }
    }
}

#[derive(Debug)]
pub struct Wav2Vec2 {
    pub encoder: Backbone,
    mask_embedding: Tensor,
    /// None with continuous targets.
    quantizer: Option<GumbelQuantizer>,
    project_q: nn::Linear,
    final_proj: nn::Linear,
    /// The feature encoder's weights and the rest of the trained weights, for
    /// `feature_grad_ratio`.
    feature_weights: Vec<Tensor>,
    other_weights: Vec<Tensor>,
    config: Wav2Vec2Config,
}

impl Wav2Vec2 {
    /// Builds the method in `trained` (every part of it is trained).
    pub fn new(
        trained: &nn::VarStore,
        input: &InputSpec,
        backbone: &BackboneConfig,
        config: &Wav2Vec2Config,
    ) -> Wav2Vec2 {
        let root = trained.root();
        let encoder = Backbone::new(&(&root / "encoder"), input, backbone);
        let network = encoder
            .wav2vec()
            .expect("validated: wav2vec2 needs --backbone wav2vec");
        let hidden = network.config.hidden_dim;
        let feature_dim = network.config.feature_dim();
        let code_dim = config.quantizer.code_dim;
        let method = Wav2Vec2 {
            mask_embedding: root.var(
                "mask_embedding",
                &[hidden],
                nn::Init::Uniform { lo: 0.0, up: 1.0 },
            ),
            quantizer: config.quantize_targets.then(|| {
                GumbelQuantizer::new(&(&root / "quantizer"), feature_dim, &config.quantizer)
            }),
            project_q: nn::linear(
                &root / "project_q",
                if config.quantize_targets {
                    code_dim
                } else {
                    feature_dim
                },
                config.final_dim,
                Default::default(),
            ),
            final_proj: nn::linear(
                &root / "final_proj",
                hidden,
                config.final_dim,
                Default::default(),
            ),
            feature_weights: network.feature_encoder_parameters(),
            other_weights: Vec::new(),
            encoder,
            config: config.clone(),
        };
        let feature_ids: Vec<usize> = method
            .feature_weights
            .iter()
            .map(|t| t.data_ptr() as usize)
            .collect();
        let other_weights = trained
            .trainable_variables()
            .into_iter()
            .filter(|t| !feature_ids.contains(&(t.data_ptr() as usize)))
            .collect();
        Wav2Vec2 {
            other_weights,
            ..method
        }
    }

    fn network(&self) -> &Wav2VecEncoder {
        self.encoder
            .wav2vec()
            .expect("validated: wav2vec2 needs --backbone wav2vec")
    }

    /// `views[0]` = waveforms `[B, L]`, `views[1]` = their span masks `[B, T]` over the
    /// encoder's frames (true = masked), drawn on the host. On a GPU the distractors are
    /// drawn there too and the logged numbers stay tensors, so the step never waits to read
    /// the mask back; on the CPU they are drawn on the host (the reference path).
    pub fn loss(&self, views: &[Tensor], clock: StepClock) -> StepOutput {
        self.loss_on(views, clock, views[0].device().is_cuda())
    }

    /// [`Wav2Vec2::loss`] with the distractors drawn on the tensors' device (`on_device`)
    /// or on the host.
    fn loss_on(&self, views: &[Tensor], clock: StepClock, on_device: bool) -> StepOutput {
        let network = self.network();
        let features = network.features(&views[0]); // [B, T, C]
        let scale = self.config.feature_grad_scale;
        let features = if scale < 1.0 {
            &features * scale + features.detach() * (1.0 - scale)
        } else {
            features
        };
        let penalty = features.pow_tensor_scalar(2).mean(Kind::Float);
        let (normed, projected) = network.project(&features, true);
        let (batch, frames, _) = projected.size3().expect("[B, T, H]");
        let where_masked = &views[1]; // [B, T]
        assert_eq!(
            where_masked.size(),
            [batch, frames],
            "one mask per clip over the encoder's frames"
        );
        // The host path reads the mask once, for its share and its distractors.
        let on_host = (!on_device).then(|| host_mask(where_masked));
        let masked_share: Metric = match &on_host {
            None => where_masked.to_kind(Kind::Float).mean(Kind::Float).into(),
            Some(mask) => {
                let count = mask.iter().flatten().filter(|&&m| m).count();
                (count as f64 / (batch * frames).max(1) as f64).into()
            }
        };
        let mask = where_masked.shallow_clone();
        let where_masked = where_masked.unsqueeze(-1);
        let inputs = self
            .mask_embedding
            .expand_as(&projected)
            .where_self(&where_masked, &projected);
        let context = network.context(&inputs, true); // [B, T, H]
        let temperature = self.config.gumbel_temperature(clock);
        let quantized = self
            .quantizer
            .as_ref()
            .map(|quantizer| quantizer.forward_t(&normed, temperature, true));
        let targets = self.project_q.forward(match &quantized {
            Some(quantized) => &quantized.codes,
            None => &normed,
        });
        let predictions = self.final_proj.forward(&context);
        let (contrastive, accuracy): (Tensor, Metric) = match &on_host {
            None => {
                let (loss, accuracy) = contrastive_loss_on_device(
                    &predictions,
                    &targets,
                    &mask,
                    self.config.negatives,
                    self.config.temperature,
                );
                (loss, accuracy.into())
            }
            Some(host) => {
                let (loss, accuracy) = contrastive_loss(
                    &predictions,
                    &targets,
                    host,
                    self.config.negatives,
                    self.config.temperature,
                );
                (loss, accuracy.into())
            }
        };
        let mut loss = &contrastive + &penalty * self.config.feature_penalty;
        let mut metrics = vec![
            (signal::CONTRASTIVE_LOSS.key.into(), contrastive.into()),
            (signal::MASKED_FRAME_ACCURACY.key.into(), accuracy),
            (signal::FEATURE_PENALTY.key.into(), penalty.into()),
            (signal::MASKED_SHARE.key.into(), masked_share),
        ];
        if let Some(quantized) = &quantized {
            loss += &quantized.diversity_loss * self.config.diversity_weight;
            metrics.extend([
                (
                    signal::CODEBOOK_PERPLEXITY.key.into(),
                    quantized.perplexity.detach().into(),
                ),
                (
                    signal::DIVERSITY_LOSS.key.into(),
                    quantized.diversity_loss.detach().into(),
                ),
                (signal::GUMBEL_TEMPERATURE.key.into(), temperature.into()),
            ]);
        }
        let pooled = context.detach().mean_dim(&[1i64][..], false, Kind::Float);
        StepOutput {
            loss,
            representations: vec![pooled],
            projections: None,
            metrics,
        }
    }

    /// The RMS gradient of the feature encoder's weights over that of every other trained
    /// weight (NaN before the first backward pass).
    pub fn feature_grad_ratio(&self) -> f64 {
        let rms = |weights: &[Tensor]| {
            let (mut squares, mut count) = (0.0, 0i64);
            for weight in weights {
                let grad = weight.grad();
                if grad.defined() {
                    squares += grad
                        .pow_tensor_scalar(2)
                        .sum(Kind::Double)
                        .double_value(&[]);
                    count += grad.numel() as i64;
                }
            }
            (squares / count.max(1) as f64).sqrt()
        };
        let other = rms(&self.other_weights);
        if other > 0.0 {
            rms(&self.feature_weights) / other
        } else {
            f64::NAN
        }
    }
}

impl PretextMethod for Wav2Vec2 {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, clock: StepClock) -> StepOutput {
        self.loss(&inputs.views, clock)
    }

    fn health_metrics(&self) -> Vec<(String, f64)> {
        vec![(
            signal::FEATURE_GRAD_RATIO.key.into(),
            self.feature_grad_ratio(),
        )]
    }
}

/// Span masks `[B, T]` as rows of flags on the host (the distractors are drawn there).
fn host_mask(mask: &Tensor) -> Vec<Vec<bool>> {
    let (batch, frames) = mask.size2().expect("[B, T]");
    let flat = Vec::<bool>::try_from(mask.to_device(Device::Cpu).reshape([-1]))
        .expect("a bool mask tensor");
    let frames = frames as usize;
    (0..batch as usize)
        .map(|clip| flat[clip * frames..(clip + 1) * frames].to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretext_augment::FrameMasking;
    use pretext_nn::{BackboneKind, Wav2VecConfig};
    use tch::{Device, Kind};

    fn tiny() -> BackboneConfig {
        BackboneConfig {
            kind: BackboneKind::Wav2vec,
            wav2vec: Wav2VecConfig {
                conv_channels: vec![16; 7],
                hidden_dim: 32,
                layers: 1,
                heads: 2,
                mlp_dim: 64,
                position_groups: 4,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Four 1-s waveforms `[4, 16000]` and their span masks `[4, 49]` (the paper's masking,
    /// drawn by the waveform recipe).
    fn waves_and_masks() -> Vec<Tensor> {
        let waves = Tensor::randn([4, 16_000], (Kind::Float, Device::Cpu));
        let frames = tiny().wav2vec.frames(16_000);
        let masking = FrameMasking {
            spans: SpanMaskConfig::default(),
            frames: Some(frames as usize),
        };
        let masks = masking.masks(0, 0, &[0, 1, 2, 3]);
        vec![waves, Tensor::from_slice(&masks).view([4, frames])]
    }

    #[test]
    fn temperature_falls_from_2_to_half_at_the_anneal_fraction() {
        let config = Wav2Vec2Config::default();
        let at = |step| {
            config.gumbel_temperature(StepClock {
                step,
                total_steps: 1000,
            })
        };
        assert!((at(0) - 2.0).abs() < 1e-12);
        assert!((at(345) - 1.0).abs() < 1e-9, "{}", at(345)); // half way in log space
        assert!((at(690) - 0.5).abs() < 1e-9);
        assert_eq!(at(999), 0.5);
    }

    /// The tiny encoder with 10 distractors, seeded, on the CPU.
    fn tiny_method() -> (nn::VarStore, Wav2Vec2) {
        tch::manual_seed(0);
        let store = nn::VarStore::new(Device::Cpu);
        let method = Wav2Vec2::new(
            &store,
            &InputSpec::waveforms(),
            &tiny(),
            &Wav2Vec2Config {
                negatives: 10,
                ..Default::default()
            },
        );
        (store, method)
    }

    #[test]
    fn one_step_gives_a_finite_loss_gradients_everywhere_and_its_signals() {
        let (store, method) = tiny_method();
        let output = method.loss(
            &waves_and_masks(),
            StepClock {
                step: 0,
                total_steps: 10,
            },
        );
        let loss = output.loss.double_value(&[]);
        assert!(loss.is_finite() && loss > 0.0, "{loss}");
        output.loss.backward();
        let ratio = method.feature_grad_ratio();
        assert!(ratio.is_finite() && ratio > 0.0, "{ratio}");
        let metric = |name: &str| {
            output
                .metrics
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.value())
                .unwrap()
        };
        let perplexity = metric("codebook_perplexity");
        assert!((2.0..=640.0).contains(&perplexity), "{perplexity}");
        let share = metric("masked_share");
        // 49 frames: at least two spans of 10, at most 49.
        assert!((20.0 / 49.0 - 1e-9..=1.0).contains(&share), "{share}");
        assert_eq!(output.representations[0].size(), vec![4, 32]);
        for (name, tensor) in store.variables() {
            let grad = tensor.grad();
            assert!(grad.defined(), "{name} got no gradient");
        }
    }

    /// The GPU path, run on the CPU: the same mask share and quantizer signals as the host
    /// path (only the distractor draws differ), a contrastive loss of the same size, every
    /// weight trained, and its mask-dependent numbers left as tensors until logged.
    #[test]
    fn the_device_path_draws_its_own_distractors_and_reads_nothing() {
        let (store, method) = tiny_method();
        let views = waves_and_masks();
        let clock = StepClock {
            step: 0,
            total_steps: 10,
        };
        tch::manual_seed(1);
        let host = method.loss_on(&views, clock, false);
        tch::manual_seed(1);
        let device = method.loss_on(&views, clock, true);
        fn metric<'a>(output: &'a StepOutput, name: &str) -> &'a Metric {
            let (_, metric) = output.metrics.iter().find(|(n, _)| n == name).unwrap();
            metric
        }
        for name in ["masked_share", "codebook_perplexity", "feature_penalty"] {
            let (on_host, on_device) = (metric(&host, name).value(), metric(&device, name).value());
            assert!(
                (on_host - on_device).abs() <= 1e-6 * on_host.abs(),
                "{name}: {on_host} vs {on_device}"
            );
        }
        for name in ["masked_share", "contrastive_accuracy"] {
            assert!(
                matches!(metric(&device, name), Metric::Device(_)),
                "{name} was read on the host"
            );
        }
        let (on_host, on_device) = (
            metric(&host, "contrastive_loss").value(),
            metric(&device, "contrastive_loss").value(),
        );
        assert!(
            (on_host - on_device).abs() < 0.1 * on_host,
            "{on_host} vs {on_device}"
        );
        device.loss.backward();
        for (name, tensor) in store.variables() {
            assert!(tensor.grad().defined(), "{name} got no gradient");
        }
    }

    #[test]
    fn continuous_targets_need_no_quantizer() {
        tch::manual_seed(0);
        let store = nn::VarStore::new(Device::Cpu);
        let config = Wav2Vec2Config {
            quantize_targets: false,
            negatives: 10,
            ..Default::default()
        };
        let method = Wav2Vec2::new(&store, &InputSpec::waveforms(), &tiny(), &config);
        assert!(store
            .variables()
            .keys()
            .all(|name| !name.starts_with("quantizer")));
        let clock = StepClock {
            step: 0,
            total_steps: 10,
        };
        let output = method.loss(&waves_and_masks(), clock);
        assert!(output.loss.double_value(&[]).is_finite());
        let names: Vec<&str> = output.metrics.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"contrastive_accuracy"), "{names:?}");
        assert!(!names.contains(&"codebook_perplexity"), "{names:?}");
        output.loss.backward();
        for (name, tensor) in store.variables() {
            assert!(tensor.grad().defined(), "{name} got no gradient");
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let bad = Wav2Vec2Config {
            masking: SpanMaskConfig {
                min_spans: 1,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "masking.min_spans");
        let bad = Wav2Vec2Config {
            feature_grad_scale: 0.0,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().0, "feature_grad_scale");
        assert!(Wav2Vec2Config::default().validate().is_ok());
    }
}

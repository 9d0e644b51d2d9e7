//! MAE — He, Chen, Xie, Li, Dollár, Girshick, "Masked Autoencoders Are Scalable Vision
//! Learners", CVPR 2022 (arXiv:2111.06377).
//!
//! Each image is cut into patches and 75% of them, chosen per sample by an argsort of noise,
//! are hidden. The ViT encoder reads only the visible patches (and [CLS]); a lightweight
//! decoder embeds its states to its own width, inserts a shared learned mask token for every
//! hidden patch, puts the sequence back in patch order, adds its own fixed sine-cosine
//! positions, runs its own transformer blocks and predicts every patch's pixels. The loss is
//! the mean squared error over the **hidden** patches only, against pixels normalized per
//! patch (`norm_pix_loss`, the paper's better setting).
//!
//! Defaults: mask ratio 0.75 and per-patch normalized targets as in the paper; the decoder is
//! scaled for CPU (2 blocks of 128, 4 heads; the paper's is 8 blocks of 512, 16 heads) —
//! `[method.mae]` sets it. Views: random resized crop (scale 0.2–1) and horizontal flip only.
//! Needs `--backbone vit`.
//!
//! Each step also logs `reconstruction_gain`: how much lower the loss is than that of guessing
//! flat hidden patches (zeros for normalized targets, each image's mean visible pixel for raw
//! ones). On Fashion-MNIST's 4-px patches the normalized targets kept it near 0 — the loss sat
//! at the flat guess — while raw pixels (`normalize_targets = false`) learn; BENCHMARKS.md §7.
//!
//! Run: `pretext pretrain --method mae --backbone vit --out runs/mae`

use pretext_augment::ViewConfig;
use pretext_nn::{
    flat_patch_loss, gather_tokens, masked_patch_loss, patchify, random_masking, sincos_positions,
    Backbone, BackboneConfig, InputSpec, TransformerBlocks, TransformerConfig, Vit,
};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

use crate::pretext_method::{check, MethodHealth, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// MAE's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MaeConfig {
    /// Share of the patches hidden from the encoder.
    pub mask_ratio: f64,
    /// Predict pixels standardized per patch (MAE's `norm_pix_loss`) instead of raw pixels.
    pub normalize_targets: bool,
    /// Width of the decoder.
    pub decoder_dim: i64,
    /// Blocks of the decoder.
    pub decoder_layers: usize,
    /// Attention heads of the decoder.
    pub decoder_heads: i64,
}

impl Default for MaeConfig {
    fn default() -> Self {
        MaeConfig {
            mask_ratio: 0.75,
            normalize_targets: true,
            decoder_dim: 128,
            decoder_layers: 2,
            decoder_heads: 4,
        }
    }
}

impl MaeConfig {
    /// The views MAE trains on: a random resized crop (scale 0.2–1) and a horizontal flip,
    /// nothing else (the paper's "minimal augmentation").
    pub fn views(views: &ViewConfig) -> ViewConfig {
        ViewConfig {
            crop_scale: (0.2, 1.0),
            flip_probability: 0.5,
            jitter_probability: 0.0,
            grayscale_probability: 0.0,
            blur_probability: 0.0,
            solarize_probability: 0.0,
            ..views.clone()
        }
    }
}

impl MethodSettings for MaeConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        check(
            self.mask_ratio > 0.0 && self.mask_ratio < 1.0,
            "mask_ratio",
            "must be in (0, 1)",
        )?;
        check(
            self.decoder_dim > 0
                && self.decoder_dim % 4 == 0
                && self.decoder_heads > 0
                && self.decoder_dim % self.decoder_heads == 0
                && self.decoder_layers > 0,
            "decoder_dim",
            "decoder_dim must be a positive multiple of 4 and of decoder_heads, with at least one decoder layer",
        )
    }

    fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::OneView(MaeConfig::views(views))
    }

    fn build(
        &self,
        trained: &nn::VarStore,
        _state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Mae::new(&trained.root(), &setup.input, backbone, self))
    }

    /// Reconstruction has no collapsed solution.
    fn health(&self, _backbone: &BackboneConfig, _total_steps: u64) -> MethodHealth {
        MethodHealth {
            collapse_possible: false,
            ..MethodHealth::default()
        }
    }
}

#[derive(Debug)]
pub struct Mae {
    pub encoder: Backbone,
    decoder_embed: nn::Linear,
    mask_token: Tensor,
    decoder: TransformerBlocks,
    decoder_pred: nn::Linear,
    /// The decoder's fixed positions for the training images' patch grid, computed once.
    decoder_positions: Tensor,
    config: MaeConfig,
    patch: i64,
    channels: i64,
}

impl Mae {
    pub fn new(
        root: &nn::Path,
        input: &InputSpec,
        backbone: &BackboneConfig,
        config: &MaeConfig,
    ) -> Mae {
        let encoder = Backbone::new(&(root / "encoder"), input, backbone);
        let width = backbone.vit.hidden_dim;
        let d = config.decoder_dim;
        let decoder_root = root / "decoder";
        let patch = backbone.vit.patch_size;
        Mae {
            decoder_embed: nn::linear(&decoder_root / "embed", width, d, Default::default()),
            mask_token: decoder_root.var(
                "mask_token",
                &[1, 1, d],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: 0.02,
                },
            ),
            decoder: TransformerBlocks::new(
                &decoder_root,
                &TransformerConfig {
                    vocab_size: 1,
                    max_positions: 1,
                    type_vocab_size: 0,
                    hidden_dim: d,
                    layers: config.decoder_layers,
                    heads: config.decoder_heads,
                    mlp_dim: 4 * d,
                    dropout: 0.0,
                    layer_norm_eps: 1e-6,
                    norm_first: true,
                    causal: false,
                },
            ),
            decoder_pred: nn::linear(
                &decoder_root / "pred",
                d,
                patch * patch * input.channels,
                Default::default(),
            ),
            decoder_positions: sincos_positions(
                d,
                (input.image_size / patch).max(1),
                root.device(),
            ),
            encoder,
            config: config.clone(),
            patch,
            channels: input.channels,
        }
    }

    fn vit(&self) -> &Vit {
        self.encoder
            .vit()
            .expect("validated: mae needs --backbone vit")
    }

    /// Predicted patches `[B, N, p²·C]`, the mask `[B, N]` (1 = hidden) and the encoder's
    /// [CLS] state of the visible patches, for images `[B, C, S, S]`.
    pub fn reconstruct(&self, images: &Tensor, train: bool) -> (Tensor, Tensor, Tensor) {
        let (batch, _, side, _) = images.size4().expect("[B, C, S, S]");
        let grid = side / self.patch;
        let n = grid * grid;
        let masking = random_masking(batch, n, self.config.mask_ratio, images.device());
        let latent = self.vit().visible_states(images, &masking.keep, train); // [B, 1+K, H]
        let x = self.decoder_embed.forward(&latent); // [B, 1+K, D]
        let d = self.config.decoder_dim;
        let kept = x.size()[1] - 1;
        let masks = self.mask_token.expand([batch, n - kept, d], false);
        let shuffled = Tensor::cat(&[x.narrow(1, 1, kept), masks], 1); // [B, N, D]
        let ordered = gather_tokens(&shuffled, &masking.restore);
        let positions = if self.decoder_positions.size()[1] == 1 + n {
            self.decoder_positions.shallow_clone()
        } else {
            sincos_positions(d, grid, images.device())
        }; // [1, 1+N, D]
        let sequence = Tensor::cat(&[x.narrow(1, 0, 1), ordered], 1) + positions;
        let decoded = self.decoder.forward(&sequence, None, train);
        let predicted = self.decoder_pred.forward(&decoded.narrow(1, 1, n));
        (predicted, masking.mask, latent.select(1, 0))
    }

    /// `views[0]` = images `[B, C, S, S]`.
    pub fn loss(&self, views: &[Tensor]) -> StepOutput {
        let images = &views[0];
        let (predicted, mask, cls) = self.reconstruct(images, true);
        let target = patchify(images, self.patch);
        let normalize = self.config.normalize_targets;
        let loss = masked_patch_loss(&predicted, &target, &mask, normalize);
        debug_assert_eq!(target.size()[2], self.patch * self.patch * self.channels);
        // Left on the device: 1 − loss / (the loss of predicting each patch's mean).
        let flat = tch::no_grad(|| flat_patch_loss(&target, &mask, normalize));
        let gain = (loss.detach() / flat.clamp_min(1e-12)).neg() + 1.0;
        StepOutput {
            loss,
            representations: vec![cls.detach()],
            projections: None,
            metrics: vec![(signal::RECONSTRUCTION_GAIN.key.into(), gain.into())],
        }
    }
}

impl PretextMethod for Mae {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        self.loss(&inputs.views)
    }
}

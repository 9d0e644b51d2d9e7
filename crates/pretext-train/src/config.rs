//! A pretraining run's whole configuration: one TOML file, every default written out in the
//! run directory. Unknown keys are errors that name the key and the file.

use std::path::Path;

use pretext_augment::ViewConfig;
pub use pretext_data::{DataConfig, TableConfig};
use pretext_data::{DataOptions, ImageSet, LogMelConfig, Samples};
use pretext_methods::{MethodConfig, ViewRecipe};
use pretext_nn::BackboneConfig;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::health::HealthContext;
use crate::optimizer::{OptimizerConfig, OptimizerKind};
use pretext_nn::Precision;

/// `[train]`: length of the run, logging and checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoopConfig {
    /// Examples per step (each gives the method's views); with several processes (torchrun,
    /// SLURM) the global batch, shared evenly by them.
    pub batch_size: usize,
    /// Optimizer steps in the run; used when `epochs` is 0.
    pub steps: u64,
    /// Passes over the training split (0 = use `steps`).
    pub epochs: f64,
    /// Write a metrics.jsonl line every this many steps (0: only at the end and when health
    /// signals are due).
    pub log_every: u64,
    /// Save a checkpoint every this many steps, and always at the end (0: only at the end).
    pub checkpoint_every: u64,
    /// Keep this many most recent checkpoints.
    pub keep_checkpoints: usize,
    /// Stop after this many steps with a non-finite loss or gradient (each is skipped).
    pub max_nonfinite_steps: u64,
    /// Arithmetic of the forward pass: "fp32", or "bf16" (autocast on CUDA and the CPU:
    /// matrix multiplies and convolutions in bfloat16; weights, optimizer state, losses,
    /// EMA updates and health signals in float32; checkpoints stay float32).
    pub precision: Precision,
    /// On CUDA, let float32 matrix multiplies and convolutions use TF32 tensor cores (as
    /// PyTorch's `allow_tf32`); false keeps them in full float32.
    pub tf32: bool,
    /// When the host reads a step's numbers (loss, gradient norm, whether they were finite):
    /// "every-step" (clipping and the non-finite skip decided on the host each step, the
    /// CPU's path), "log-steps" (decided on the device: the host reads them only on steps
    /// that log, checkpoint or end, so it never waits for a GPU inside a step; AdamW only;
    /// skipped steps are reported, and the non-finite limit checked, on those steps), or
    /// "auto" (log-steps on CUDA with AdamW, every-step otherwise).
    pub host_reads: HostReads,
}

/// `train.host_reads`: when the step loop reads a step's numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostReads {
    /// "log-steps" on CUDA with AdamW, "every-step" otherwise.
    #[default]
    Auto,
    /// The host decides clipping and the non-finite skip after every step.
    EveryStep,
    /// The device decides; the host reads the numbers on steps that log, checkpoint or end.
    LogSteps,
}

impl HostReads {
    /// Whether steps are decided on the device, for a run on `device` with `optimizer`.
    pub fn on_device(self, device: tch::Device, optimizer: OptimizerKind) -> bool {
        match self {
            HostReads::Auto => device.is_cuda() && optimizer == OptimizerKind::Adamw,
            HostReads::EveryStep => false,
            HostReads::LogSteps => true,
        }
    }
}

impl Default for LoopConfig {
    fn default() -> Self {
        LoopConfig {
            batch_size: 256,
            steps: 1000,
            epochs: 0.0,
            log_every: 10,
            checkpoint_every: 250,
            keep_checkpoints: 2,
            max_nonfinite_steps: 20,
            precision: Precision::Fp32,
            tf32: true,
            host_reads: HostReads::Auto,
        }
    }
}

/// `[health]`: signals that tell whether pretraining is working.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Compute embedding std, effective rank, alignment and uniformity every this many steps
    /// and at the end (0 disables).
    pub every: u64,
    /// Run k-NN on a labeled validation slice every this many steps and at the end (0
    /// disables).
    pub knn_every: u64,
    /// Size of the labeled bank and of the queries for that k-NN (taken from the training
    /// split, disjoint, stratified; labels are used for monitoring only).
    pub knn_slice: usize,
    /// Neighbours that vote in the monitoring k-NN.
    pub knn_k: i64,
    /// Language models (bert-mlm, gpt): the pretext loss on held-out text, without dropout,
    /// every this many steps and at the end (0 disables); logged as `held_out_loss`.
    pub held_out_every: u64,
    /// Held-out sequences that loss is averaged over (the first ones of the held-out split).
    pub held_out_samples: usize,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            every: 50,
            knn_every: 250,
            knn_slice: 1000,
            knn_k: 20,
            held_out_every: 250,
            held_out_samples: 512,
        }
    }
}

/// Everything a pretraining run needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PretrainConfig {
    /// Seed of every random choice: initialization, batches, augmentations.
    pub seed: u64,
    /// "auto", "cpu", "cuda" or "cuda:N".
    pub device: String,
    pub data: DataConfig,
    pub backbone: BackboneConfig,
    pub method: MethodConfig,
    /// The augmentation pipeline that makes views.
    pub views: ViewConfig,
    pub optimizer: OptimizerConfig,
    pub train: LoopConfig,
    pub health: HealthConfig,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            seed: 0,
            device: "auto".into(),
            data: DataConfig::default(),
            backbone: BackboneConfig::default(),
            method: MethodConfig::default(),
            views: ViewConfig::default(),
            optimizer: OptimizerConfig::default(),
            train: LoopConfig::default(),
            health: HealthConfig::default(),
        }
    }
}

impl PretrainConfig {
    /// Reads a TOML file; unknown keys and wrong types are errors naming the file and key.
    pub fn from_file(path: &Path) -> Result<PretrainConfig, TrainError> {
        let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
        Self::from_toml(&text).map_err(|message| TrainError::Config {
            path: path.into(),
            message,
        })
    }

    /// Parses TOML text (errors carry the line and the offending key).
    pub fn from_toml(text: &str) -> Result<PretrainConfig, String> {
        let config: PretrainConfig = toml::from_str(text).map_err(|error| error.to_string())?;
        Ok(config)
    }

    /// The resolved config as TOML, every default written out.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a PretrainConfig always serializes")
    }

    /// Checks values that would make the run fail later, naming the field.
    pub fn validate(&self) -> Result<(), TrainError> {
        let invalid = |field: &str, message: &str| {
            Err(TrainError::Invalid {
                field: field.into(),
                message: message.into(),
            })
        };
        if self.train.batch_size < 2 {
            return invalid(
                "train.batch_size",
                "must be at least 2 (contrastive losses need negatives)",
            );
        }
        if self.train.steps == 0 && self.train.epochs <= 0.0 {
            return invalid("train.steps", "set train.steps or train.epochs above 0");
        }
        if !(self.optimizer.lr > 0.0 && self.optimizer.lr.is_finite()) {
            return invalid("optimizer.lr", "must be a positive number");
        }
        if self.train.host_reads == HostReads::LogSteps
            && self.optimizer.kind != OptimizerKind::Adamw
        {
            return invalid(
                "train.host_reads",
                "\"log-steps\" needs optimizer.kind = \"adamw\" (the update that can be skipped \
                 on the device); use \"every-step\" or \"auto\" with sgd and lars",
            );
        }
        if self.data.workers == 0 {
            return invalid("data.workers", "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.data.holdout_fraction) {
            return invalid("data.holdout_fraction", "must be in [0, 1)");
        }
        if let Err((field, message)) = self.method.validate() {
            return invalid(&field, &message);
        }
        if self.backbone.kind == pretext_nn::BackboneKind::Vit {
            if let Err(message) = self.backbone.vit.validate() {
                return invalid("backbone.vit", &message);
            }
        }
        if self.backbone.kind == pretext_nn::BackboneKind::SmallCnn {
            if let Err(message) = self.backbone.small_cnn.validate() {
                return invalid("backbone.small_cnn", &message);
            }
        }
        if self.backbone.kind == pretext_nn::BackboneKind::Transformer {
            if let Err(message) = self.backbone.transformer.validate() {
                return invalid("backbone.transformer", &message);
            }
            // GPT predicts each next token, so one token leaves nothing to predict.
            if self.data.seq_len < 2 {
                return invalid(
                    "data.seq_len",
                    &format!("must be at least 2 tokens, found {}", self.data.seq_len),
                );
            }
        }
        if self.backbone.kind == pretext_nn::BackboneKind::Mlp {
            if let Err(message) = self.backbone.mlp.validate() {
                return invalid("backbone.mlp", &message);
            }
        }
        if self.backbone.kind == pretext_nn::BackboneKind::Wav2vec {
            if let Err(message) = self.backbone.wav2vec.validate() {
                return invalid("backbone.wav2vec", &message);
            }
        }
        if let Err(message) = self.backbone.input.validate() {
            return invalid("backbone.input", &message);
        }
        if self.backbone.input.is_active() && !self.backbone.kind.loads_image_checkpoints() {
            return invalid(
                "backbone.input",
                &format!(
                    "adapts the pixels of the resnet18, resnet50 and vit backbones, not `{}`; \
                     leave it empty",
                    self.backbone.kind.as_str()
                ),
            );
        }
        if let Err(message) = self.method.name.check_backbone(self.backbone.kind) {
            return invalid("backbone.kind", &message);
        }
        self.views.validate().map_err(|error| TrainError::Invalid {
            field: "views".into(),
            message: error.to_string(),
        })
    }
}

impl PretrainConfig {
    /// How [`pretext_data::open`] reads this run's data: the `[data]` section, text tokenized
    /// with `run_dir/tokenizer.json` when it exists (else made as `data.tokenizer` says, or
    /// taken from the pretrained backbone).
    pub fn data_options<'a>(&'a self, run_dir: Option<&'a Path>) -> DataOptions<'a> {
        DataOptions {
            data: &self.data,
            run_dir,
            pretrained: &self.backbone.pretrained,
        }
    }

    /// The recipe this run's batches are built with from `train`: the method's, told how
    /// many frames the backbone makes of one clip when the samples are audio (wav2vec 2.0's
    /// span masks are drawn on the host, over those frames).
    pub fn view_recipe(&self, train: &Samples) -> ViewRecipe {
        let recipe = self.method.view_recipe(&self.views);
        match train {
            Samples::Audio(set) => {
                let frames = self.backbone.wav2vec.frames(set.clip_samples as i64);
                recipe.with_frames(frames.max(0) as usize)
            }
            _ => recipe,
        }
    }

    /// The config with what the data decides written in: the transformer's vocabulary size
    /// from the tokenizer, a pretrained backbone's shape from its config.json and, for an
    /// image checkpoint, the ResNet's stem or the ViT's shape and the pixels it expects
    /// (`backbone.input`), so that the saved config rebuilds the model without the folder.
    pub fn resolved_for(&self, train: &Samples) -> Result<PretrainConfig, TrainError> {
        let mut config = self.clone();
        if let Samples::Images(set) = train {
            if !config.backbone.pretrained.is_empty() {
                let checkpoint =
                    pretext_nn::read_image_checkpoint(Path::new(&config.backbone.pretrained))?;
                config.backbone =
                    checkpoint
                        .configure(&config.backbone)
                        .map_err(|(field, message)| TrainError::Invalid {
                            field: field.into(),
                            message,
                        })?;
                config.check_image_sizes(set)?;
            }
            config.check_image_input(set)?;
        }
        if let Samples::Tokens(set) = train {
            if !config.backbone.pretrained.is_empty() {
                let pretrained =
                    pretext_nn::read_hf_bert_config(Path::new(&config.backbone.pretrained))?;
                config.backbone.transformer = pretext_nn::TransformerConfig {
                    dropout: config.backbone.transformer.dropout,
                    ..pretrained
                };
            }
            let tokenizer_size = i64::from(set.vocab_size);
            if !config.backbone.pretrained.is_empty()
                && config.backbone.transformer.vocab_size != tokenizer_size
            {
                return Err(TrainError::Invalid {
                    field: "backbone.pretrained".into(),
                    message: format!(
                        "{} has {} token embeddings but the tokenizer has {tokenizer_size} tokens; use the model's own tokenizer (data.tokenizer = \"{}\")",
                        config.backbone.pretrained, config.backbone.transformer.vocab_size, config.backbone.pretrained
                    ),
                });
            }
            config.backbone.transformer.vocab_size = tokenizer_size;
            if config.data.seq_len as i64 > config.backbone.transformer.max_positions {
                return Err(TrainError::Invalid {
                    field: "data.seq_len".into(),
                    message: format!(
                        "{} is longer than the transformer's {} positions",
                        config.data.seq_len, config.backbone.transformer.max_positions
                    ),
                });
            }
        }
        if let Samples::Table(set) = train {
            config.backbone.mlp.columns = set
                .columns
                .iter()
                .map(|column| match &column.kind {
                    pretext_data::ColumnKind::Numeric => 0,
                    pretext_data::ColumnKind::Categorical { categories } => categories.len() as i64,
                })
                .collect();
        }
        Ok(config)
    }

    /// Refuses data of the wrong modality for the method and backbone, naming both.
    pub fn check_data(&self, train: &Samples) -> Result<(), TrainError> {
        let data = match train {
            Samples::Images(_) => "images",
            Samples::Tokens(_) => "text",
            Samples::Table(_) => "tables",
            Samples::Audio(_) => "audio",
        };
        let mismatch = |what: String| {
            Err(TrainError::Invalid {
                field: "data.path".into(),
                message: what,
            })
        };
        let method = self.method.name.modality();
        if data != method {
            return mismatch(format!(
                "`{}` is {data} but method `{}` reads {method}",
                self.data.path,
                self.method.name.as_str(),
            ));
        }
        let backbone = match self.backbone.kind {
            kind if kind.reads_tokens() => "text",
            kind if kind.reads_rows() => "tables",
            kind if kind.reads_audio() => "audio",
            _ => "images",
        };
        if data != backbone {
            return mismatch(format!(
                "`{}` is {data} but backbone `{}` reads {backbone} (text needs --backbone transformer, tables --backbone mlp, audio --backbone wav2vec)",
                self.data.path,
                self.backbone.kind.as_str(),
            ));
        }
        if let Samples::Tokens(set) = train {
            let masks = matches!(
                self.method.view_recipe(&self.views),
                ViewRecipe::MaskedTokens(_)
            );
            if masks && set.mask_id.is_none() {
                return Err(TrainError::Invalid {
                    field: "data.tokenizer".into(),
                    message: format!(
                        "method `{}` replaces tokens with a mask token, and the tokenizer `{}` has none ([MASK] or <mask>); use \"wordpiece\" or \"bpe\", or a tokenizer.json with a mask token",
                        self.method.name.as_str(),
                        self.data.tokenizer
                    ),
                });
            }
        }
        if let Samples::Images(set) = train {
            // A pretrained backbone's shape and input are known once `resolved_for` has read
            // its folder; it checks the sizes then.
            if self.backbone.pretrained.is_empty() {
                self.check_image_sizes(set)?;
            }
        }
        if let Samples::Audio(set) = train {
            // Audio is always compared with its log-mel features (the probe's baseline), whose
            // 25 ms windows every 10 ms need at least one sample each.
            if let Err(error) = LogMelConfig::default().validate(set.sample_rate) {
                return Err(TrainError::Invalid {
                    field: "data.audio.sample_rate".into(),
                    message: format!(
                        "{} Hz is too low for the log-mel baseline ({error}); expected 50 Hz or more",
                        set.sample_rate
                    ),
                });
            }
            if self.backbone.kind == pretext_nn::BackboneKind::Wav2vec {
                let frames = self.backbone.wav2vec.frames(set.clip_samples as i64);
                if frames < 2 {
                    return Err(TrainError::Invalid {
                        field: "data.audio.clip_seconds".into(),
                        message: format!(
                            "clips of {} samples ({} s at {} Hz) give the wav2vec feature encoder {frames} frames; it needs at least 2 (about 45 ms at 16 kHz)",
                            set.clip_samples, self.data.audio.clip_seconds, set.sample_rate
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Refuses views the image backbone cannot read, at the size the network sees them
    /// (after `backbone.input`'s resize): smaller than the small CNN's pooling or a ViT's
    /// patch, or not tiled by the ViT's patches.
    fn check_image_sizes(&self, set: &ImageSet) -> Result<(), TrainError> {
        let sizes = self.method.view_recipe(&self.views).view_sizes(set.height);
        let input = &self.backbone.input;
        let seen = |size: usize| input.view_side(size as i64, set.height as i64) as usize;
        let resized = match input.resolution {
            0 => String::new(),
            _ => {
                let seen: Vec<usize> = sizes.iter().map(|&size| seen(size)).collect();
                format!(", which backbone.input resizes to {seen:?} px")
            }
        };
        let smallest = match self.backbone.kind {
            pretext_nn::BackboneKind::SmallCnn => self.backbone.small_cnn.min_image_size(),
            pretext_nn::BackboneKind::Vit => self.backbone.vit.patch_size.max(1) as usize,
            _ => 1,
        };
        // The encoder sees the views while training, and whole images for the health
        // signals and the probes.
        let too_small = sizes
            .iter()
            .copied()
            .chain([set.height])
            .find(|&size| seen(size) < smallest);
        if let Some(size) = too_small {
            return Err(TrainError::Invalid {
                field: "data.image_size".into(),
                message: format!(
                    "backbone `{}` needs images and views of at least {smallest} px, found {}: the images are {} px and method `{}` makes views of {sizes:?} px{resized}; use larger images (--image-size)",
                    self.backbone.kind.as_str(),
                    seen(size),
                    set.height,
                    self.method.name.as_str(),
                ),
            });
        }
        if self.backbone.kind == pretext_nn::BackboneKind::Vit {
            let patch = self.backbone.vit.patch_size.max(1) as usize;
            if let Some(size) = sizes
                .iter()
                .map(|&size| seen(size))
                .find(|size| size % patch != 0)
            {
                return Err(TrainError::Invalid {
                    field: "backbone.vit.patch_size".into(),
                    message: format!(
                        "{patch}-px patches do not tile the {size}-px views of method `{}` (views of {sizes:?} px{resized}); choose a patch size that divides each",
                        self.method.name.as_str()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Refuses a `backbone.input` the images do not fit: channels other than one (repeated)
    /// or the network's, or a resize under MAE, which reconstructs the pixels it is given.
    fn check_image_input(&self, set: &ImageSet) -> Result<(), TrainError> {
        let input = &self.backbone.input;
        let invalid = |field: &str, message: String| {
            Err(TrainError::Invalid {
                field: field.into(),
                message,
            })
        };
        if let Err(message) = input.validate() {
            return invalid("backbone.input", message);
        }
        let (channels, network) = (set.channels as i64, input.channels(set.channels as i64));
        if channels != 1 && channels != network {
            return invalid(
                "backbone.input.mean",
                format!(
                    "the network reads {network}-channel images and `{}` has {channels} channels; only one-channel images are repeated to fill the network's",
                    self.data.path
                ),
            );
        }
        let side = set.height as i64;
        if self.method.name == pretext_methods::MethodName::Mae
            && input.view_side(side, side) != side
        {
            return invalid(
                "backbone.input.resolution",
                format!(
                    "method `mae` reconstructs the patches of the images it is given, so they must be the ViT's {} px, and they are {side} px; use --image-size {}",
                    input.resolution, input.resolution
                ),
            );
        }
        Ok(())
    }

    /// What the health verdicts need to know about a run of this config.
    pub fn health_context(&self, representation_dim: i64, total_steps: u64) -> HealthContext {
        let method = self.method.settings().health(&self.backbone, total_steps);
        HealthContext {
            representation_dim,
            batch_size: self.train.batch_size,
            total_steps,
            pretext_classes: method.pretext_classes,
            dino_output_dim: method.dino_output_dim,
            dino_warmup_steps: method.dino_warmup_steps,
            loss_should_fall: method.loss_should_fall,
            collapse_possible: method.collapse_possible,
            codebook: method
                .codebook
                .map(|(entries, negatives)| crate::health::Codebook { entries, negatives }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let config = PretrainConfig::default();
        assert_eq!(
            PretrainConfig::from_toml(&config.to_toml()).unwrap(),
            config
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let error = PretrainConfig::from_toml("[train]\nbatch_sise = 12\n").unwrap_err();
        assert!(error.contains("batch_sise"), "{error}");
    }

    #[test]
    fn unknown_key_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "seed = 1\n[optimizer]\nlearning_rate = 0.1\n").unwrap();
        let error = PretrainConfig::from_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("bad.toml") && error.contains("learning_rate"),
            "{error}"
        );
    }
}

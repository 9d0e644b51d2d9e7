//! The closed set of methods that configs and the CLI can name, and what every method gives
//! the step loop.

use std::sync::Arc;

use pretext_augment::{maximal_hamming_permutations, CorruptionScheme, ViewConfig};
use pretext_nn::{Backbone, BackboneConfig, InputSpec};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::bert_mlm::{BertMlm, BertMlmConfig};
use crate::byol::{Byol, ByolConfig};
use crate::corruption::{Corruption, CorruptionConfig};
use crate::dino::{Dino, DinoConfig};
use crate::gpt::{Gpt, GptConfig};
use crate::jigsaw::{Jigsaw, JigsawConfig};
use crate::mae::{Mae, MaeConfig};
use crate::moco::{Moco, MocoConfig};
use crate::rotation::{Rotation, RotationConfig};
use crate::scarf::{Scarf, ScarfConfig};
use crate::simclr::{SimClr, SimClrConfig};
use crate::views::{FrameMasking, StepInputs, ViewRecipe};
use crate::vime::{Vime, VimeConfig};
use crate::wav2vec2::{Wav2Vec2, Wav2Vec2Config};

/// A method's name, as written in configs and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodName {
    Simclr,
    Moco,
    Byol,
    Dino,
    Rotation,
    Jigsaw,
    Mae,
    BertMlm,
    Gpt,
    Vime,
    Scarf,
    Corruption,
    Wav2vec2,
}

impl MethodName {
    pub const ALL: [MethodName; 13] = [
        MethodName::Simclr,
        MethodName::Moco,
        MethodName::Byol,
        MethodName::Dino,
        MethodName::Rotation,
        MethodName::Jigsaw,
        MethodName::Mae,
        MethodName::BertMlm,
        MethodName::Gpt,
        MethodName::Vime,
        MethodName::Scarf,
        MethodName::Corruption,
        MethodName::Wav2vec2,
    ];

    /// The image methods every image backbone works with (MAE, which needs a ViT, is not one).
    pub const IMAGE: [MethodName; 6] = [
        MethodName::Simclr,
        MethodName::Moco,
        MethodName::Byol,
        MethodName::Dino,
        MethodName::Rotation,
        MethodName::Jigsaw,
    ];

    /// Whether the method reads token sequences.
    pub fn reads_tokens(self) -> bool {
        matches!(self, MethodName::BertMlm | MethodName::Gpt)
    }

    /// Whether the method reads table rows.
    pub fn reads_rows(self) -> bool {
        matches!(
            self,
            MethodName::Vime | MethodName::Scarf | MethodName::Corruption
        )
    }

    /// Whether the method reads waveforms.
    pub fn reads_audio(self) -> bool {
        self == MethodName::Wav2vec2
    }

    /// What the method reads: "images", "text", "tables" or "audio".
    pub fn modality(self) -> &'static str {
        if self.reads_tokens() {
            "text"
        } else if self.reads_rows() {
            "tables"
        } else if self.reads_audio() {
            "audio"
        } else {
            "images"
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MethodName::Simclr => "simclr",
            MethodName::Moco => "moco",
            MethodName::Byol => "byol",
            MethodName::Dino => "dino",
            MethodName::Rotation => "rotation",
            MethodName::Jigsaw => "jigsaw",
            MethodName::Mae => "mae",
            MethodName::BertMlm => "bert-mlm",
            MethodName::Gpt => "gpt",
            MethodName::Vime => "vime",
            MethodName::Scarf => "scarf",
            MethodName::Corruption => "corruption",
            MethodName::Wav2vec2 => "wav2vec2",
        }
    }

    /// Parses a name; the error lists the known names.
    pub fn parse(text: &str) -> Result<MethodName, String> {
        MethodName::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = MethodName::ALL.iter().map(|name| name.as_str()).collect();
                format!(
                    "unknown method `{text}`; known methods: {}",
                    known.join(", ")
                )
            })
    }
}

/// The `[method]` section: which method, and each method's settings (paper defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MethodConfig {
    /// Which method pretrains the encoder: simclr, moco, byol, dino, rotation, jigsaw (images),
    /// mae (images, ViT only), bert-mlm or gpt (text), vime, scarf or corruption (tables),
    /// wav2vec2 (audio, wav2vec backbone only).
    pub name: MethodName,
    /// Settings of SimCLR, used when name = "simclr".
    pub simclr: SimClrConfig,
    /// Settings of MoCo v2, used when name = "moco".
    pub moco: MocoConfig,
    /// Settings of BYOL, used when name = "byol".
    pub byol: ByolConfig,
    /// Settings of DINO, used when name = "dino".
    pub dino: DinoConfig,
    /// Settings of rotation prediction, used when name = "rotation".
    pub rotation: RotationConfig,
    /// Settings of jigsaw puzzles, used when name = "jigsaw".
    pub jigsaw: JigsawConfig,
    /// Settings of masked autoencoders, used when name = "mae".
    pub mae: MaeConfig,
    /// Settings of BERT's masked language modeling, used when name = "bert-mlm".
    pub bert_mlm: BertMlmConfig,
    /// Settings of GPT's causal language modeling, used when name = "gpt".
    pub gpt: GptConfig,
    /// Settings of VIME's mask and feature estimation, used when name = "vime".
    pub vime: VimeConfig,
    /// Settings of SCARF's contrastive corruption, used when name = "scarf".
    pub scarf: ScarfConfig,
    /// Settings of corruption detection, used when name = "corruption".
    pub corruption: CorruptionConfig,
    /// Settings of wav2vec 2.0, used when name = "wav2vec2".
    pub wav2vec2: Wav2Vec2Config,
}

impl Default for MethodConfig {
    fn default() -> Self {
        MethodConfig {
            name: MethodName::Simclr,
            simclr: SimClrConfig::default(),
            moco: MocoConfig::default(),
            byol: ByolConfig::default(),
            dino: DinoConfig::default(),
            rotation: RotationConfig::default(),
            jigsaw: JigsawConfig::default(),
            mae: MaeConfig::default(),
            bert_mlm: BertMlmConfig::default(),
            gpt: GptConfig::default(),
            vime: VimeConfig::default(),
            scarf: ScarfConfig::default(),
            corruption: CorruptionConfig::default(),
            wav2vec2: Wav2Vec2Config::default(),
        }
    }
}

impl MethodConfig {
    /// How samples become views for this method.
    pub fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        match self.name {
            MethodName::Simclr | MethodName::Moco | MethodName::Byol => {
                ViewRecipe::TwoViews(views.clone())
            }
            MethodName::Dino => self.dino.view_recipe(views),
            MethodName::Rotation => ViewRecipe::Rotations(views.clone()),
            MethodName::Jigsaw => ViewRecipe::Jigsaw {
                view: views.clone(),
                grid: self.jigsaw.grid,
                tile_size: self.jigsaw.tile_size,
                tile_output: self.jigsaw.tile_output,
                standardize: self.jigsaw.standardize_tiles,
                permutations: Arc::new(
                    maximal_hamming_permutations(
                        self.jigsaw.permutations,
                        self.jigsaw.grid * self.jigsaw.grid,
                    )
                    .expect("validated: permutations <= (grid²)!"),
                ),
            },
            MethodName::Mae => ViewRecipe::OneView(MaeConfig::views(views)),
            MethodName::BertMlm => ViewRecipe::MaskedTokens(self.bert_mlm.masking.clone()),
            MethodName::Gpt => ViewRecipe::Tokens,
            MethodName::Vime => {
                ViewRecipe::Corrupted(CorruptionScheme::Bernoulli(self.vime.mask_probability))
            }
            MethodName::Scarf => {
                ViewRecipe::Corrupted(CorruptionScheme::Share(self.scarf.corruption_rate))
            }
            MethodName::Corruption => {
                ViewRecipe::Corrupted(CorruptionScheme::Share(self.corruption.corruption_rate))
            }
            MethodName::Wav2vec2 => {
                ViewRecipe::Waveforms(FrameMasking::new(self.wav2vec2.masking.clone()))
            }
        }
    }

    /// Checks the selected method's settings; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let field = |name: &str| format!("method.{}.{name}", self.name.as_str());
        let check = |ok: bool, name: &str, message: &str| {
            if ok {
                Ok(())
            } else {
                Err((field(name), message.to_string()))
            }
        };
        let momentum_ok = |m: f64| (0.0..=1.0).contains(&m);
        match self.name {
            MethodName::Simclr => check(
                self.simclr.temperature > 0.0,
                "temperature",
                "must be above 0",
            ),
            MethodName::Moco => {
                check(
                    self.moco.temperature > 0.0,
                    "temperature",
                    "must be above 0",
                )?;
                check(
                    momentum_ok(self.moco.momentum),
                    "momentum",
                    "must be in [0, 1]",
                )?;
                check(
                    self.moco.shuffle_groups >= 1,
                    "shuffle_groups",
                    "must be at least 1",
                )
            }
            MethodName::Byol => check(
                momentum_ok(self.byol.base_momentum),
                "base_momentum",
                "must be in [0, 1]",
            ),
            MethodName::Dino => self.dino.validate().map_err(|(name, m)| (field(&name), m)),
            MethodName::Rotation | MethodName::Gpt => Ok(()),
            MethodName::Wav2vec2 => self
                .wav2vec2
                .validate()
                .map_err(|(name, m)| (field(&name), m)),
            MethodName::Vime => {
                check(
                    self.vime.mask_probability > 0.0 && self.vime.mask_probability < 1.0,
                    "mask_probability",
                    "must be in (0, 1)",
                )?;
                check(self.vime.alpha >= 0.0, "alpha", "must be at least 0")
            }
            MethodName::Scarf => {
                check(
                    self.scarf.corruption_rate > 0.0 && self.scarf.corruption_rate <= 1.0,
                    "corruption_rate",
                    "must be in (0, 1]",
                )?;
                check(
                    self.scarf.temperature > 0.0,
                    "temperature",
                    "must be above 0",
                )
            }
            MethodName::Corruption => {
                let c = &self.corruption;
                check(
                    c.corruption_rate > 0.0 && c.corruption_rate <= 1.0,
                    "corruption_rate",
                    "must be in (0, 1]",
                )?;
                check(
                    c.corrupted_rows > 0.0 && c.corrupted_rows < 1.0,
                    "corrupted_rows",
                    "must be in (0, 1)",
                )?;
                check(c.cell_weight >= 0.0, "cell_weight", "must be at least 0")
            }
            MethodName::Mae => {
                let mae = &self.mae;
                check(
                    mae.mask_ratio > 0.0 && mae.mask_ratio < 1.0,
                    "mask_ratio",
                    "must be in (0, 1)",
                )?;
                check(
                    mae.decoder_dim > 0
                        && mae.decoder_dim % 4 == 0
                        && mae.decoder_heads > 0
                        && mae.decoder_dim % mae.decoder_heads == 0
                        && mae.decoder_layers > 0,
                    "decoder_dim",
                    "decoder_dim must be a positive multiple of 4 and of decoder_heads, with at least one decoder layer",
                )
            }
            MethodName::BertMlm => {
                let masking = &self.bert_mlm.masking;
                check(
                    masking.mask_probability > 0.0 && masking.mask_probability < 1.0,
                    "masking.mask_probability",
                    "must be in (0, 1)",
                )?;
                check(
                    masking.mask_token_share >= 0.0
                        && masking.random_token_share >= 0.0
                        && masking.mask_token_share + masking.random_token_share <= 1.0,
                    "masking.mask_token_share",
                    "mask_token_share and random_token_share must be >= 0 and sum to at most 1",
                )
            }
            MethodName::Jigsaw => {
                check(
                    (2..=3).contains(&self.jigsaw.grid),
                    "grid",
                    "must be 2 or 3 (tiles per side)",
                )?;
                let tiles = self.jigsaw.grid * self.jigsaw.grid;
                let most: usize = (1..=tiles).product();
                check(
                    (2..=most).contains(&self.jigsaw.permutations),
                    "permutations",
                    &format!("must be between 2 and {most} (= {tiles}!)"),
                )?;
                check(
                    self.jigsaw.tile_size >= 2,
                    "tile_size",
                    "must be at least 2",
                )
            }
        }
    }
}

/// An encoder at `root/encoder` and a projection head at `root/projector` over its output:
/// the online network of SimCLR, MoCo and BYOL, and their EMA targets (built the same way in
/// the state store, so the EMA pairs them by name).
pub(crate) fn encoder_and_projector(
    root: &nn::Path,
    input: &InputSpec,
    backbone: &BackboneConfig,
    projector: &pretext_nn::ProjectorConfig,
) -> (Backbone, pretext_nn::Projector) {
    let encoder = Backbone::new(&(root / "encoder"), input, backbone);
    let head = pretext_nn::Projector::new(
        &(root / "projector"),
        pretext_nn::Encoder::dim(&encoder),
        projector,
    );
    (encoder, head)
}

/// What a method is built for: what its encoder reads, how many training samples there are
/// (MoCo sizes its queue by it) and how long the run is (momentum and temperature
/// schedules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodSetup {
    pub input: InputSpec,
    pub image_size: i64,
    pub train_len: usize,
    pub total_steps: u64,
}

/// Where the run stands, for schedules: `step` of `total_steps` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepClock {
    pub step: u64,
    pub total_steps: u64,
}

/// What one forward pass of a method gives the step loop.
#[derive(Debug)]
pub struct StepOutput {
    /// Scalar loss to minimize.
    pub loss: Tensor,
    /// Detached encoder outputs per view of the same images, `[B, D]` each, for the health
    /// signals (one entry when views are not meant to agree, e.g. rotations).
    pub representations: Vec<Tensor>,
    /// Detached outputs of the head the loss compares (projections, DINO logits) for the first
    /// view, `[B, P]`; None for classification pretext tasks. Collapse often shows here first
    /// (BYOL without its predictor keeps varied representations but constant projections).
    pub projections: Option<Tensor>,
    /// Extra method-specific numbers to log (`pretext_accuracy`, `teacher_entropy`, ...).
    pub metrics: Vec<(String, f64)>,
}

/// A built method: its trained modules (in the `trained` VarStore, which the optimizer
/// updates) and its untrained state (EMA networks, queue, center: in the `state` VarStore,
/// which only `after_step` changes). Both are saved with every checkpoint.
#[derive(Debug)]
pub enum Method {
    SimClr(SimClr),
    Moco(Box<Moco>),
    Byol(Box<Byol>),
    Dino(Box<Dino>),
    Rotation(Rotation),
    Jigsaw(Jigsaw),
    Mae(Box<Mae>),
    BertMlm(BertMlm),
    Gpt(Gpt),
    Vime(Box<Vime>),
    Scarf(Box<Scarf>),
    Corruption(Box<Corruption>),
    Wav2Vec2(Box<Wav2Vec2>),
}

impl Method {
    pub fn new(
        trained: &nn::VarStore,
        state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
        config: &MethodConfig,
    ) -> Method {
        let root = trained.root();
        match config.name {
            MethodName::Simclr => {
                Method::SimClr(SimClr::new(&root, &setup.input, backbone, &config.simclr))
            }
            MethodName::Moco => Method::Moco(Box::new(Moco::new(
                trained,
                state,
                setup,
                backbone,
                &config.moco,
            ))),
            MethodName::Byol => Method::Byol(Box::new(Byol::new(
                trained,
                state,
                setup,
                backbone,
                &config.byol,
            ))),
            MethodName::Dino => Method::Dino(Box::new(Dino::new(
                trained,
                state,
                setup,
                backbone,
                &config.dino,
            ))),
            MethodName::Rotation => Method::Rotation(Rotation::new(
                &root,
                &setup.input,
                backbone,
                &config.rotation,
            )),
            MethodName::Jigsaw => {
                Method::Jigsaw(Jigsaw::new(&root, &setup.input, backbone, &config.jigsaw))
            }
            MethodName::Mae => Method::Mae(Box::new(Mae::new(
                &root,
                &setup.input,
                backbone,
                &config.mae,
            ))),
            MethodName::BertMlm => Method::BertMlm(BertMlm::new(&root, &setup.input, backbone)),
            MethodName::Gpt => Method::Gpt(Gpt::new(&root, &setup.input, backbone)),
            MethodName::Vime => Method::Vime(Box::new(Vime::new(
                &root,
                &setup.input,
                backbone,
                &config.vime,
            ))),
            MethodName::Scarf => Method::Scarf(Box::new(Scarf::new(
                &root,
                &setup.input,
                backbone,
                &config.scarf,
            ))),
            MethodName::Corruption => Method::Corruption(Box::new(Corruption::new(
                &root,
                &setup.input,
                backbone,
                &config.corruption,
            ))),
            MethodName::Wav2vec2 => Method::Wav2Vec2(Box::new(Wav2Vec2::new(
                trained,
                &setup.input,
                backbone,
                &config.wav2vec2,
            ))),
        }
    }

    /// The encoder that transfer uses.
    pub fn encoder(&self) -> &Backbone {
        match self {
            Method::SimClr(method) => &method.encoder,
            Method::Moco(method) => &method.encoder,
            Method::Byol(method) => &method.encoder,
            Method::Dino(method) => &method.encoder,
            Method::Rotation(method) => &method.encoder,
            Method::Jigsaw(method) => &method.encoder,
            Method::Mae(method) => &method.encoder,
            Method::BertMlm(method) => &method.encoder,
            Method::Gpt(method) => &method.encoder,
            Method::Vime(method) => &method.encoder,
            Method::Scarf(method) => &method.encoder,
            Method::Corruption(method) => &method.encoder,
            Method::Wav2Vec2(method) => &method.encoder,
        }
    }

    /// Forward pass and loss on one step's views.
    pub fn loss(&mut self, inputs: &StepInputs, clock: StepClock) -> StepOutput {
        match self {
            Method::SimClr(method) => method.loss(&inputs.views),
            Method::Moco(method) => method.loss(&inputs.views),
            Method::Byol(method) => method.loss(&inputs.views),
            Method::Dino(method) => method.loss(&inputs.views, clock),
            Method::Rotation(method) => method.loss(&inputs.views),
            Method::Jigsaw(method) => method.loss(
                &inputs.views,
                inputs
                    .targets
                    .as_ref()
                    .expect("the jigsaw recipe makes targets"),
            ),
            Method::Mae(method) => method.loss(&inputs.views),
            Method::Vime(method) => method.loss(
                &inputs.views,
                inputs
                    .targets
                    .as_ref()
                    .expect("the corruption recipe makes targets"),
            ),
            Method::Scarf(method) => method.loss(&inputs.views),
            Method::Corruption(method) => method.loss(
                &inputs.views,
                inputs
                    .targets
                    .as_ref()
                    .expect("the corruption recipe makes targets"),
            ),
            Method::Wav2Vec2(method) => method.loss(&inputs.views, clock),
            Method::BertMlm(_) | Method::Gpt(_) => self
                .language_model_loss(inputs, true)
                .expect("bert-mlm and gpt are language models"),
        }
    }

    /// The loss of the language models (bert-mlm, gpt) with dropout on or off; None for the
    /// other methods.
    fn language_model_loss(&self, inputs: &StepInputs, train: bool) -> Option<StepOutput> {
        match self {
            Method::BertMlm(method) => Some(
                method.loss(
                    &inputs.views,
                    inputs
                        .targets
                        .as_ref()
                        .expect("the masked-token recipe makes targets"),
                    train,
                ),
            ),
            Method::Gpt(method) => Some(method.loss(&inputs.views, train)),
            _ => None,
        }
    }

    /// The pretext loss on held-out inputs, without dropout or gradients, for the methods
    /// whose loss is a language model's held-out cross-entropy (bert-mlm, gpt); None for the
    /// others, whose loss depends on the batch (negatives, EMA targets) and is not comparable.
    pub fn held_out_loss(&self, inputs: &StepInputs) -> Option<f64> {
        let output = tch::no_grad(|| self.language_model_loss(inputs, false))?;
        Some(output.loss.double_value(&[]))
    }

    /// Updates untrained state (EMA networks, queues, centers) after the optimizer step.
    pub fn after_step(&mut self, clock: StepClock) {
        match self {
            Method::SimClr(_)
            | Method::Rotation(_)
            | Method::Jigsaw(_)
            | Method::Mae(_)
            | Method::BertMlm(_)
            | Method::Gpt(_)
            | Method::Vime(_)
            | Method::Scarf(_)
            | Method::Corruption(_)
            | Method::Wav2Vec2(_) => {}
            Method::Moco(method) => method.after_step(),
            Method::Byol(method) => method.after_step(clock),
            Method::Dino(method) => method.after_step(clock),
        }
    }

    /// Health numbers that need a look at the weights (e.g. how far an EMA target trails the
    /// online network); computed only when health signals are due.
    pub fn health_metrics(&self) -> Vec<(String, f64)> {
        match self {
            Method::SimClr(_)
            | Method::Rotation(_)
            | Method::Jigsaw(_)
            | Method::Mae(_)
            | Method::BertMlm(_)
            | Method::Gpt(_)
            | Method::Vime(_)
            | Method::Scarf(_)
            | Method::Corruption(_) => Vec::new(),
            Method::Wav2Vec2(method) => {
                vec![("feature_grad_ratio".into(), method.feature_grad_ratio())]
            }
            Method::Moco(method) => vec![(
                "key_encoder_distance".into(),
                method.ema.relative_distance(),
            )],
            Method::Byol(method) => vec![(
                "target_online_distance".into(),
                method.ema.relative_distance(),
            )],
            Method::Dino(method) => vec![
                (
                    "teacher_student_distance".into(),
                    method.ema.relative_distance(),
                ),
                ("center_norm".into(), method.center.norm()),
            ],
        }
    }
}

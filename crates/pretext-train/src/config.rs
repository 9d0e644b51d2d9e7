//! A pretraining run's whole configuration: one TOML file, every default written out in the
//! run directory. Unknown keys are errors that name the key and the file.

use std::path::Path;

use pretext_augment::ViewConfig;
use pretext_data::{
    is_audio_path, load_audio, load_audio_windows, load_images, load_table, AudioOptions,
    ImageSplits, Samples, SourceOptions, Splits, TableOptions,
};
use pretext_methods::MethodConfig;
use pretext_nn::BackboneConfig;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::health::HealthContext;
use crate::optimizer::OptimizerConfig;

/// `[data]`: where the images come from and how they are fed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Images: "embedded" (the Fashion-MNIST subset built into pretext), a folder of IDX files,
    /// an IDX images file, or a folder of images with one subfolder per class. Text: a labeled
    /// .tsv (`label<TAB>text`) or .jsonl file, or an unlabeled .txt file or folder. Tables: a
    /// .csv file with a header row, or a .parquet file. Audio: a folder with a `labels.csv`
    /// (`file,label[,split]`, files relative to it), such a CSV itself, or a folder of
    /// unlabeled .wav files.
    pub path: String,
    /// Text and tables: the labeled held-out file (empty: hold out `holdout_fraction` of
    /// `path`).
    pub test_path: String,
    /// Text: "wordpiece", "bpe" or "char" (trained on the training texts), or a
    /// tokenizer.json / Hugging Face model folder to read.
    pub tokenizer: String,
    /// Text: vocabulary size when a tokenizer is trained.
    pub vocab_size: usize,
    /// Text: tokens per sequence (longer examples are truncated, shorter ones padded).
    pub seq_len: usize,
    /// Resize every image to this many pixels square (0 keeps the native size).
    pub image_size: usize,
    /// Fraction held out (stratified) when the data has no test split of its own.
    pub holdout_fraction: f64,
    /// Seed of that held-out split (kept apart from the run seed so runs share splits).
    pub split_seed: u64,
    /// Threads that build augmented batches while the model computes.
    pub workers: usize,
    /// Batches built ahead of the step that needs them.
    pub prefetch: usize,
    /// Tables, text and audio: decoded data (table values, token ids, audio samples) beyond
    /// this many MB is kept in a temporary file mapped into memory rather than in the
    /// process's own memory, so that a dataset larger than RAM is paged in as batches read
    /// it; the file needs as much free disk under the temporary folder (`TMPDIR`). Audio
    /// takes the smaller of this and `data.audio.memory_limit_mb`.
    pub memory_limit_mb: u64,
    /// Tables: which column is the label, and columns whose kind is declared rather than
    /// detected.
    pub table: TableConfig,
    /// Audio: the rate, resampling and clip length every clip is read at.
    pub audio: AudioOptions,
    /// Audio: folders of unlabeled .wav files added to the training split for pretraining
    /// only (each file cut into consecutive clips); transfer still reads `path`.
    pub unlabeled: Vec<String>,
}

/// `[data.table]`: how a CSV table's columns are read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TableConfig {
    /// The label column.
    pub label: String,
    /// Columns read as categorical whatever their cells look like (e.g. integer codes).
    pub categorical: Vec<String>,
    /// Columns that must be numeric (a cell that is not a number is an error).
    pub numeric: Vec<String>,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            label: "label".into(),
            categorical: Vec::new(),
            numeric: Vec::new(),
        }
    }
}

/// Whether `spec` names a table (a .csv or .parquet file).
pub fn is_table_path(spec: &str) -> bool {
    Path::new(spec).extension().is_some_and(|extension| {
        extension.eq_ignore_ascii_case("csv") || extension.eq_ignore_ascii_case("parquet")
    })
}

impl DataConfig {
    /// Loads the table `spec` (and `test_path` when set) with this section's settings.
    pub fn load_table_from(&self, spec: &str) -> Result<Splits, TrainError> {
        let options = TableOptions {
            label: self.table.label.clone(),
            categorical: self.table.categorical.clone(),
            numeric: self.table.numeric.clone(),
            holdout_fraction: self.holdout_fraction,
            split_seed: self.split_seed,
            memory_limit_mb: self.memory_limit_mb,
        };
        let test = (!self.test_path.is_empty()).then(|| Path::new(&self.test_path));
        Ok(load_table(Path::new(spec), test, &options)?.into())
    }

    /// The audio settings, under `memory_limit_mb` as well as their own.
    fn audio_options(&self) -> AudioOptions {
        AudioOptions {
            memory_limit_mb: self.audio.memory_limit_mb.min(self.memory_limit_mb),
            ..self.audio.clone()
        }
    }

    /// Loads the audio `spec` with this section's clip and split settings.
    pub fn load_audio_from(&self, spec: &str) -> Result<Splits, TrainError> {
        let options = self.audio_options();
        Ok(load_audio(spec, &options, self.holdout_fraction, self.split_seed)?.into())
    }

    /// The samples pretraining reads: `train` followed by the clips of every `unlabeled`
    /// folder, without labels; `train` itself when there are none.
    pub fn pretraining_samples(&self, train: &Samples) -> Result<Samples, TrainError> {
        if self.unlabeled.is_empty() {
            return Ok(train.clone());
        }
        let Samples::Audio(set) = train else {
            return Err(TrainError::Invalid {
                field: "data.unlabeled".into(),
                message: format!(
                    "unlabeled folders are read for audio only, and `{}` is not audio",
                    self.path
                ),
            });
        };
        // `unlabeled` is not empty, so at least one join drops the labels.
        let mut all = set.clone();
        for folder in &self.unlabeled {
            all = all.unlabeled_with(&load_audio_windows(
                Path::new(folder),
                &self.audio_options(),
            )?);
        }
        Ok(Samples::Audio(all))
    }

    /// Loads the images this section names, with their held-out split.
    pub fn load(&self) -> Result<ImageSplits, TrainError> {
        self.load_from(&self.path)
    }

    /// Loads other images (`spec`) with this section's size and split settings.
    pub fn load_from(&self, spec: &str) -> Result<ImageSplits, TrainError> {
        let options = SourceOptions {
            image_size: (self.image_size > 0).then_some(self.image_size),
            holdout_fraction: self.holdout_fraction,
            split_seed: self.split_seed,
        };
        Ok(load_images(spec, &options)?)
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            path: "embedded".into(),
            test_path: String::new(),
            tokenizer: "wordpiece".into(),
            vocab_size: 8000,
            seq_len: 64,
            image_size: 0,
            holdout_fraction: 0.2,
            split_seed: 0,
            workers: 2,
            prefetch: 4,
            memory_limit_mb: 4096,
            table: TableConfig::default(),
            audio: AudioOptions::default(),
            unlabeled: Vec::new(),
        }
    }
}

/// `[train]`: length of the run, logging and checkpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoopConfig {
    /// Images per step (each gives the method's views).
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
    /// Loads `data.path`: images, or text tokenized with the run's tokenizer
    /// (`run_dir/tokenizer.json` when it exists, else made as `data.tokenizer` says and
    /// returned, for the caller to save into a new run).
    pub fn load_data(
        &self,
        run_dir: Option<&Path>,
    ) -> Result<(Splits, Option<pretext_data::text::TextTokenizer>), TrainError> {
        self.load_data_from(&self.data.path, run_dir)
    }

    /// Loads other data (`spec`) the way `data.path` would be.
    pub fn load_data_from(
        &self,
        spec: &str,
        run_dir: Option<&Path>,
    ) -> Result<(Splits, Option<pretext_data::text::TextTokenizer>), TrainError> {
        if crate::text_data::is_text_path(spec) {
            let tokenizer = crate::text_data::resolve_tokenizer(self, run_dir)?;
            let splits = crate::text_data::load_text_splits(self, spec, &tokenizer)?;
            Ok((splits, Some(tokenizer)))
        } else if is_audio_path(spec) {
            Ok((self.data.load_audio_from(spec)?, None))
        } else if is_table_path(spec) {
            Ok((self.data.load_table_from(spec)?, None))
        } else {
            Ok((self.data.load_from(spec)?.into(), None))
        }
    }

    /// The config with what the data decides written in: the transformer's vocabulary size
    /// from the tokenizer, and a pretrained backbone's shape from its config.json.
    pub fn resolved_for(&self, train: &Samples) -> Result<PretrainConfig, TrainError> {
        let mut config = self.clone();
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
        if let (Samples::Images(set), pretext_nn::BackboneKind::Vit) = (train, self.backbone.kind) {
            let patch = self.backbone.vit.patch_size.max(1) as usize;
            let sizes = self.method.view_recipe(&self.views).view_sizes(set.height);
            if let Some(size) = sizes.iter().find(|&&size| size % patch != 0) {
                return Err(TrainError::Invalid {
                    field: "backbone.vit.patch_size".into(),
                    message: format!(
                        "{patch}-px patches do not tile the {size}-px views of method `{}` (views of {sizes:?} px); choose a patch size that divides each",
                        self.method.name.as_str()
                    ),
                });
            }
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

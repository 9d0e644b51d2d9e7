//! `[data]`, the data section of a run's config: where the samples come from and how each
//! reader takes them, with the options each reader is given ([`SourceOptions`],
//! [`TableOptions`], [`AudioOptions`]) made from it. [`crate::open()`] reads a spec with it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::{load_audio_windows, AudioOptions, Samples, SourceOptions, TableOptions};

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
    /// Where image views are augmented: "host" (the data workers, the reference), "device"
    /// (batched tensor ops on the training device, from the same seeded draws; the workers
    /// only pick crops and factors), or "auto" (device on CUDA, host otherwise). Jigsaw's
    /// tiles and non-image data are always made on the host.
    pub augment: AugmentPlace,
    /// Decoded data (pixels, table values, token ids, audio samples) beyond this many MB
    /// is kept in a temporary file mapped into memory rather than in the process's own
    /// memory, so that a dataset larger than RAM is paged in as batches read it; the file
    /// needs as much free disk under the temporary folder (`TMPDIR`). Audio takes the
    /// smaller of this and `data.audio.memory_limit_mb`.
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

/// `data.augment`: where image views are made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AugmentPlace {
    /// On the data worker threads (the reference path).
    Host,
    /// On the training device, as batched tensor ops.
    Device,
    /// The device on CUDA, the host otherwise.
    #[default]
    Auto,
}

impl AugmentPlace {
    /// Whether views are made on the device when training on a CUDA device (`cuda`) or not.
    pub fn on_device(self, cuda: bool) -> bool {
        match self {
            AugmentPlace::Host => false,
            AugmentPlace::Device => true,
            AugmentPlace::Auto => cuda,
        }
    }
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
            augment: AugmentPlace::Auto,
            memory_limit_mb: 4096,
            table: TableConfig::default(),
            audio: AudioOptions::default(),
            unlabeled: Vec::new(),
        }
    }
}

impl DataConfig {
    /// How images are read: this section's size, split and memory settings.
    pub fn source_options(&self) -> SourceOptions {
        SourceOptions {
            image_size: (self.image_size > 0).then_some(self.image_size),
            holdout_fraction: self.holdout_fraction,
            split_seed: self.split_seed,
            memory_limit_mb: self.memory_limit_mb,
        }
    }

    /// How tables are read: `[data.table]` with this section's split and memory settings.
    pub fn table_options(&self) -> TableOptions {
        TableOptions {
            label: self.table.label.clone(),
            categorical: self.table.categorical.clone(),
            numeric: self.table.numeric.clone(),
            holdout_fraction: self.holdout_fraction,
            split_seed: self.split_seed,
            memory_limit_mb: self.memory_limit_mb,
        }
    }

    /// The audio settings, under `memory_limit_mb` as well as their own.
    pub fn audio_options(&self) -> AudioOptions {
        AudioOptions {
            memory_limit_mb: self.audio.memory_limit_mb.min(self.memory_limit_mb),
            ..self.audio.clone()
        }
    }

    /// The labeled held-out file, when `test_path` names one.
    pub fn test_file(&self) -> Option<&Path> {
        (!self.test_path.is_empty()).then(|| Path::new(&self.test_path))
    }

    /// Refuses `unlabeled` folders that [`Self::pretraining_samples`] would refuse without
    /// reading their audio: folders given for data that is not audio, and folders with no
    /// `.wav` file.
    pub fn check_unlabeled(&self, train: &Samples) -> Result<(), DataError> {
        if self.unlabeled.is_empty() {
            return Ok(());
        }
        if !matches!(train, Samples::Audio(_)) {
            return Err(self.unlabeled_for_other_data());
        }
        for folder in &self.unlabeled {
            crate::list_wav_files(Path::new(folder))?;
        }
        Ok(())
    }

    fn unlabeled_for_other_data(&self) -> DataError {
        DataError::InvalidSetting {
            field: "data.unlabeled".into(),
            message: format!(
                "unlabeled folders are read for audio only, and `{}` is not audio",
                self.path
            ),
        }
    }

    /// The samples pretraining reads: `train` followed by the clips of every `unlabeled`
    /// folder, without labels; `train` itself when there are none.
    pub fn pretraining_samples(&self, train: &Samples) -> Result<Samples, DataError> {
        if self.unlabeled.is_empty() {
            return Ok(train.clone());
        }
        let Samples::Audio(set) = train else {
            return Err(self.unlabeled_for_other_data());
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
}

//! The run directory, the unit users share:
//!
//! ```text
//! runs/<name>/
//!   config.toml      resolved config (every default written out)
//!   metrics.jsonl    one JSON object per logged step
//!   checkpoints/step-N/
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::PretrainConfig;
use crate::error::TrainError;

/// How `pretrain` treats an existing directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Refuse if the directory exists and is not empty.
    New,
    /// Replace an existing run directory (only one that holds a pretext run, or is empty).
    Overwrite,
    /// Continue from the newest checkpoint.
    Resume,
}

/// Paths inside a run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: &Path) -> RunDir {
        RunDir { root: root.into() }
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Whether the folder holds a pretext run (has a config.toml).
    pub fn is_run(&self) -> bool {
        self.config_path().is_file()
    }

    /// Checks, without touching anything, that a new run may be written here in `mode`.
    pub fn check_new(&self, mode: RunMode) -> Result<(), TrainError> {
        if self.root.exists() && !self.root.is_dir() {
            return Err(TrainError::Invalid {
                field: "run directory".into(),
                message: format!("{} exists and is not a directory", self.root.display()),
            });
        }
        let occupied = self.root.exists()
            && fs::read_dir(&self.root)
                .map_err(TrainError::io(&self.root))?
                .next()
                .is_some();
        match mode {
            _ if !occupied => Ok(()),
            RunMode::New | RunMode::Resume => Err(TrainError::RunExists { path: self.root.clone() }),
            RunMode::Overwrite if !self.is_run() => Err(TrainError::Invalid {
                field: "--overwrite".into(),
                message: format!(
                    "{} is not empty and holds no pretext run (no config.toml); refusing to delete it",
                    self.root.display()
                ),
            }),
            RunMode::Overwrite => Ok(()),
        }
    }

    /// Prepares the folder for a new run according to `mode` (New or Overwrite): checks it,
    /// removes an earlier run when overwriting, and creates it.
    pub fn prepare_new(&self, mode: RunMode) -> Result<(), TrainError> {
        self.check_new(mode)?;
        if mode == RunMode::Overwrite && self.is_run() {
            fs::remove_dir_all(&self.root).map_err(TrainError::io(&self.root))?;
        }
        fs::create_dir_all(&self.root).map_err(TrainError::io(&self.root))
    }

    /// Writes config.toml atomically (temp file, fsync, rename).
    pub fn write_config(&self, config: &PretrainConfig) -> Result<(), TrainError> {
        let path = self.config_path();
        let temporary = self.root.join(".config.toml.tmp");
        let text = format!(
            "# Resolved pretext config: every option with the value this run used.\n{}",
            config.to_toml()
        );
        fs::write(&temporary, text).map_err(TrainError::io(&temporary))?;
        fs::File::open(&temporary)
            .and_then(|file| file.sync_all())
            .map_err(TrainError::io(&temporary))?;
        fs::rename(&temporary, &path).map_err(TrainError::io(&path))
    }

    /// Writes what later commands need to read the data as pretraining did: the trained
    /// tokenizer (text) and the training split's column statistics (tables,
    /// `table-stats.json`).
    pub fn write_data_files(
        &self,
        tokenizer: Option<&pretext_data::text::TextTokenizer>,
        train: &pretext_data::Samples,
    ) -> Result<(), TrainError> {
        if let Some(tokenizer) = tokenizer {
            tokenizer.save(&self.root.join(crate::text_data::RUN_TOKENIZER))?;
        }
        if let pretext_data::Samples::Table(set) = train {
            // The statistics the numeric columns were standardized with: the training split's.
            let path = self.root.join("table-stats.json");
            let text = serde_json::to_string_pretty(&set.training_stats.to_json())
                .expect("JSON values serialize");
            fs::write(&path, text).map_err(TrainError::io(&path))?;
        }
        Ok(())
    }

    /// Reads the run's config.toml.
    pub fn read_config(&self) -> Result<PretrainConfig, TrainError> {
        if !self.is_run() {
            return Err(TrainError::Config {
                path: self.root.clone(),
                message: "not a pretext run directory (no config.toml); create one with `pretext pretrain --out DIR`".into(),
            });
        }
        PretrainConfig::from_file(&self.config_path())
    }
}

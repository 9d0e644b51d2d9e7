//! Atomic checkpoints. A checkpoint is a folder `checkpoints/step-N/` holding
//!
//! - `weights.safetensors`: every variable of the model (trained parameters and buffers such
//!   as batch-norm statistics),
//! - `method_state.safetensors`: the method's untrained state (EMA target or teacher
//!   networks, MoCo's negative queue and its write position, DINO's center); empty for
//!   methods without any,
//! - `optimizer.safetensors`: the optimizer's state tensors,
//! - `state.json`: the step to run next (the data cursor: batches and augmentations are pure
//!   functions of (seed, step), so the step *is* the random state), skipped steps, etc.,
//! - `config.toml`: the whole config the checkpoint was made with, so that loading it into
//!   another method or another model shape is refused with the settings that differ,
//! - `meta.json`, written last: SHA-256 of each file above.
//!
//! Everything is written into `checkpoints/.partial-step-N/`, each file fsynced, then the
//! folder is renamed to `step-N` and the parent fsynced: a kill at any moment leaves either
//! the new complete checkpoint or none, and the previous one untouched.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{nn::VarStore, Tensor};

use crate::config::PretrainConfig;
use crate::error::TrainError;

mod fit;

/// Progress counters saved with each checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// The next step to run (steps already done).
    pub step: u64,
    /// Updates the optimizer has applied (steps minus skipped ones).
    pub optimizer_steps: u64,
    /// Steps skipped for a non-finite loss or gradient.
    pub nonfinite_steps: u64,
    /// The run's seed, checked on resume.
    pub seed: u64,
    /// Processes that trained the last steps (data parallel; 1 alone, and for checkpoints
    /// written before this was kept): a resume with another number is not bit-identical.
    #[serde(default = "one_process")]
    pub processes: u64,
}

fn one_process() -> u64 {
    1
}

impl TrainState {
    /// The counters of a run that has not started.
    pub fn new(seed: u64) -> TrainState {
        TrainState {
            step: 0,
            optimizer_steps: 0,
            nonfinite_steps: 0,
            seed,
            processes: 1,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    format: u32,
    step: u64,
    sha256: Vec<(String, String)>,
}

const WEIGHTS: &str = "weights.safetensors";
const METHOD_STATE: &str = "method_state.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.json";
/// The config a checkpoint was made with (format 3 on; older checkpoints have none).
pub const CHECKPOINT_CONFIG: &str = "config.toml";
const FILES: [&str; 5] = [WEIGHTS, METHOD_STATE, OPTIMIZER, STATE, CHECKPOINT_CONFIG];

fn sha256_of(path: &Path) -> Result<String, TrainError> {
    let bytes = fs::read(path).map_err(TrainError::io(path))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

fn fsync(path: &Path) -> Result<(), TrainError> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(TrainError::io(path))
}

/// A complete checkpoint on disk.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub state: TrainState,
    /// The config it was made with (None for checkpoints written before configs were kept).
    pub config: Option<PretrainConfig>,
}

impl Checkpoint {
    /// Saves model (trained weights and the method's untrained state), optimizer state,
    /// counters and `config` as `checkpoints_dir/step-{state.step}`, then deletes all but the newest
    /// `keep` checkpoints. When a write fails (a full disk, a size limit), the partial folder
    /// is removed and the error says so; earlier checkpoints are never touched before the new
    /// one is complete.
    pub fn save(
        checkpoints_dir: &Path,
        store: &VarStore,
        method_state: &VarStore,
        optimizer_state: &[(String, Tensor)],
        state: &TrainState,
        config: &PretrainConfig,
        keep: usize,
    ) -> Result<Checkpoint, TrainError> {
        let (partial, final_dir) = folders(checkpoints_dir, state.step);
        let written = Self::write(
            checkpoints_dir,
            store,
            method_state,
            optimizer_state,
            state,
            config,
        );
        if let Err(error) = written {
            let _ = fs::remove_dir_all(&partial);
            return Err(TrainError::CheckpointWrite {
                path: final_dir,
                message: error.to_string(),
            });
        }
        let mut all = list_steps(checkpoints_dir)?;
        all.sort_unstable();
        for &old in all.iter().rev().skip(keep.max(1)) {
            let dir = checkpoints_dir.join(format!("step-{old}"));
            fs::remove_dir_all(&dir).map_err(TrainError::io(&dir))?;
        }
        Ok(Checkpoint {
            dir: final_dir,
            state: state.clone(),
            config: Some(config.clone()),
        })
    }

    /// Writes and fsyncs one checkpoint into `partial`, then renames it to `final_dir`.
    fn write(
        checkpoints_dir: &Path,
        store: &VarStore,
        method_state: &VarStore,
        optimizer_state: &[(String, Tensor)],
        state: &TrainState,
        config: &PretrainConfig,
    ) -> Result<(), TrainError> {
        let (partial, final_dir) = folders(checkpoints_dir, state.step);
        let (partial, final_dir) = (partial.as_path(), final_dir.as_path());
        fs::create_dir_all(checkpoints_dir).map_err(TrainError::io(checkpoints_dir))?;
        if partial.exists() {
            fs::remove_dir_all(partial).map_err(TrainError::io(partial))?;
        }
        fs::create_dir(partial).map_err(TrainError::io(partial))?;

        store.save(partial.join(WEIGHTS))?;
        method_state.save(partial.join(METHOD_STATE))?;
        let optimizer_tensors: Vec<(&str, &Tensor)> = optimizer_state
            .iter()
            .map(|(name, tensor)| (name.as_str(), tensor))
            .collect();
        Tensor::write_safetensors(&optimizer_tensors, partial.join(OPTIMIZER))?;
        let state_path = partial.join(STATE);
        fs::write(
            &state_path,
            serde_json::to_vec_pretty(state).expect("state serializes"),
        )
        .map_err(TrainError::io(&state_path))?;
        let config_path = partial.join(CHECKPOINT_CONFIG);
        fs::write(&config_path, config.to_toml()).map_err(TrainError::io(&config_path))?;
        let mut sha256 = Vec::new();
        for name in FILES {
            let path = partial.join(name);
            fsync(&path)?;
            sha256.push((name.to_string(), sha256_of(&path)?));
        }
        let meta_path = partial.join("meta.json");
        let meta = Meta {
            format: 3,
            step: state.step,
            sha256,
        };
        let mut file = File::create(&meta_path).map_err(TrainError::io(&meta_path))?;
        file.write_all(&serde_json::to_vec_pretty(&meta).expect("meta serializes"))
            .and_then(|_| file.sync_all())
            .map_err(TrainError::io(&meta_path))?;
        fsync(partial)?;

        if final_dir.exists() {
            fs::remove_dir_all(final_dir).map_err(TrainError::io(final_dir))?;
        }
        fs::rename(partial, final_dir).map_err(TrainError::io(final_dir))?;
        fsync(checkpoints_dir)
    }

    /// Opens and verifies one checkpoint folder.
    pub fn open(dir: &Path) -> Result<Checkpoint, TrainError> {
        let damaged = |message: String| TrainError::BadCheckpoint {
            path: dir.into(),
            message,
        };
        let meta_path = dir.join("meta.json");
        let meta_bytes =
            fs::read(&meta_path).map_err(|error| damaged(format!("meta.json: {error}")))?;
        let meta: Meta = serde_json::from_slice(&meta_bytes)
            .map_err(|error| damaged(format!("meta.json: {error}")))?;
        for (name, expected) in &meta.sha256 {
            let found = sha256_of(&dir.join(name)).map_err(|error| damaged(error.to_string()))?;
            if &found != expected {
                return Err(damaged(format!(
                    "{name}: checksum {found} does not match meta.json's {expected}"
                )));
            }
        }
        let state_path = dir.join(STATE);
        let state: TrainState =
            serde_json::from_slice(&fs::read(&state_path).map_err(TrainError::io(&state_path))?)
                .map_err(|error| damaged(format!("state.json: {error}")))?;
        let config = if meta
            .sha256
            .iter()
            .any(|(name, _)| name == CHECKPOINT_CONFIG)
        {
            let config_path = dir.join(CHECKPOINT_CONFIG);
            let text = fs::read_to_string(&config_path).map_err(TrainError::io(&config_path))?;
            let config = PretrainConfig::from_toml(&text)
                .map_err(|error| damaged(format!("{CHECKPOINT_CONFIG}: {error}")))?;
            Some(config)
        } else {
            None
        };
        Ok(Checkpoint {
            dir: dir.into(),
            state,
            config,
        })
    }

    /// The newest complete, verified checkpoint under `checkpoints_dir`, with the reasons
    /// newer ones were passed over.
    pub fn latest(checkpoints_dir: &Path) -> Result<(Option<Checkpoint>, Vec<String>), TrainError> {
        let mut steps = Checkpoint::steps(checkpoints_dir)?;
        steps.reverse();
        let mut passed_over = Vec::new();
        for step in steps {
            match Checkpoint::open(&checkpoints_dir.join(format!("step-{step}"))) {
                Ok(checkpoint) => return Ok((Some(checkpoint), passed_over)),
                Err(error) => passed_over.push(error.to_string()),
            }
        }
        Ok((None, passed_over))
    }

    /// The steps of the checkpoint folders under `checkpoints_dir`, oldest first (complete
    /// or not: `open` checks each).
    pub fn steps(checkpoints_dir: &Path) -> Result<Vec<u64>, TrainError> {
        let mut steps = if checkpoints_dir.exists() {
            list_steps(checkpoints_dir)?
        } else {
            Vec::new()
        };
        steps.sort_unstable();
        Ok(steps)
    }

    /// Reads the optimizer state tensors.
    pub fn optimizer_state(&self) -> Result<Vec<(String, Tensor)>, TrainError> {
        let path = self.dir.join(OPTIMIZER);
        Tensor::read_safetensors(&path).map_err(|error| TrainError::BadCheckpoint {
            path,
            message: error.to_string(),
        })
    }
}

/// The folder a checkpoint of `step` is written into, and the one it is renamed to.
fn folders(checkpoints_dir: &Path, step: u64) -> (PathBuf, PathBuf) {
    (
        checkpoints_dir.join(format!(".partial-step-{step}")),
        checkpoints_dir.join(format!("step-{step}")),
    )
}

fn list_steps(checkpoints_dir: &Path) -> Result<Vec<u64>, TrainError> {
    let entries = fs::read_dir(checkpoints_dir).map_err(TrainError::io(checkpoints_dir))?;
    Ok(entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()?
                .strip_prefix("step-")?
                .parse()
                .ok()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    pub(super) fn store(value: f32) -> VarStore {
        let store = VarStore::new(Device::Cpu);
        let _ = store.root().var_copy(
            "w",
            &Tensor::full([3], f64::from(value), (Kind::Float, Device::Cpu)),
        );
        store
    }

    pub(super) fn empty() -> VarStore {
        VarStore::new(Device::Cpu)
    }

    pub(super) fn state(step: u64) -> TrainState {
        TrainState {
            step,
            optimizer_steps: step,
            nonfinite_steps: 0,
            seed: 1,
            processes: 1,
        }
    }

    #[test]
    fn save_then_latest_round_trips_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        for step in [10, 20, 30] {
            Checkpoint::save(
                dir.path(),
                &store(step as f32),
                &empty(),
                &[],
                &state(step),
                &PretrainConfig::default(),
                2,
            )
            .unwrap();
        }
        let (latest, passed_over) = Checkpoint::latest(dir.path()).unwrap();
        let latest = latest.unwrap();
        assert!(passed_over.is_empty());
        assert_eq!(latest.state.step, 30);
        assert!(!dir.path().join("step-10").exists(), "only 2 are kept");
        let mut loaded = store(0.0);
        latest
            .load_weights(&PretrainConfig::default(), &mut loaded)
            .unwrap();
        assert_eq!(
            Vec::<f32>::try_from(loaded.variables()["w"].shallow_clone()).unwrap(),
            vec![30.0; 3]
        );
    }

    #[test]
    fn a_kill_during_the_write_leaves_the_previous_checkpoint_loadable() {
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::save(
            dir.path(),
            &store(1.0),
            &empty(),
            &[],
            &state(100),
            &PretrainConfig::default(),
            2,
        )
        .unwrap();
        // A writer killed mid-way leaves a partial folder with a truncated weights file and no meta.
        let partial = dir.path().join(".partial-step-200");
        fs::create_dir(&partial).unwrap();
        fs::write(partial.join("weights.safetensors"), b"\x10\x00\x00").unwrap();
        let (latest, _) = Checkpoint::latest(dir.path()).unwrap();
        assert_eq!(latest.unwrap().state.step, 100);
    }

    #[test]
    fn a_corrupted_newest_checkpoint_is_passed_over_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::save(
            dir.path(),
            &store(1.0),
            &empty(),
            &[],
            &state(100),
            &PretrainConfig::default(),
            3,
        )
        .unwrap();
        Checkpoint::save(
            dir.path(),
            &store(2.0),
            &empty(),
            &[],
            &state(200),
            &PretrainConfig::default(),
            3,
        )
        .unwrap();
        let weights = dir.path().join("step-200/weights.safetensors");
        let mut bytes = fs::read(&weights).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&weights, bytes).unwrap();
        let (latest, passed_over) = Checkpoint::latest(dir.path()).unwrap();
        assert_eq!(latest.unwrap().state.step, 100);
        assert!(passed_over[0].contains("checksum"), "{passed_over:?}");
    }

    pub(super) fn config(edit: impl FnOnce(&mut PretrainConfig)) -> PretrainConfig {
        let mut config = PretrainConfig::default();
        edit(&mut config);
        config
    }

    #[test]
    fn a_damaged_config_in_a_checkpoint_is_caught_by_its_checksum() {
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::save(
            dir.path(),
            &store(1.0),
            &empty(),
            &[],
            &state(5),
            &config(|_| {}),
            1,
        )
        .unwrap();
        let path = dir.path().join("step-5").join(CHECKPOINT_CONFIG);
        let text = fs::read_to_string(&path).unwrap().replace("simclr", "dino");
        fs::write(&path, text).unwrap();
        let (latest, passed_over) = Checkpoint::latest(dir.path()).unwrap();
        assert!(latest.is_none());
        assert!(
            passed_over[0].contains("config.toml: checksum"),
            "{passed_over:?}"
        );
    }
}

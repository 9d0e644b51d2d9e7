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

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{nn::VarStore, Tensor};

use crate::config::PretrainConfig;
use crate::error::TrainError;

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
        let mut steps = if checkpoints_dir.exists() {
            list_steps(checkpoints_dir)?
        } else {
            Vec::new()
        };
        steps.sort_unstable_by(|a, b| b.cmp(a));
        let mut passed_over = Vec::new();
        for step in steps {
            match Checkpoint::open(&checkpoints_dir.join(format!("step-{step}"))) {
                Ok(checkpoint) => return Ok((Some(checkpoint), passed_over)),
                Err(error) => passed_over.push(error.to_string()),
            }
        }
        Ok((None, passed_over))
    }

    /// Loads the weights into `store`, built from `config`. Refused, before anything is
    /// copied, when the checkpoint was made by another method or its tensors do not fit the
    /// model (another shape, other names): the error names the file, the first tensors that
    /// differ and the settings of the checkpoint's config that differ from `config`.
    pub fn load_weights(
        &self,
        config: &PretrainConfig,
        store: &mut VarStore,
    ) -> Result<(), TrainError> {
        self.load_into(WEIGHTS, config, store)
    }

    /// Loads the method's untrained state (EMA networks, queue, center) into `store`, with
    /// the same checks as `load_weights`.
    pub fn load_method_state(
        &self,
        config: &PretrainConfig,
        store: &mut VarStore,
    ) -> Result<(), TrainError> {
        self.load_into(METHOD_STATE, config, store)
    }

    /// Refuses a checkpoint written by another method than `config`'s.
    pub fn ensure_method(&self, config: &PretrainConfig) -> Result<(), TrainError> {
        let Some(made_with) = &self.config else {
            return Ok(());
        };
        let (theirs, ours) = (made_with.method.name, config.method.name);
        if theirs == ours {
            return Ok(());
        }
        Err(TrainError::WrongCheckpoint {
            path: self.dir.join(CHECKPOINT_CONFIG),
            message: format!(
                "it was made by method `{}`, and this run's config says `{}`; a checkpoint \
                 resumes or transfers only with the method that wrote it",
                theirs.as_str(),
                ours.as_str()
            ),
        })
    }

    fn load_into(
        &self,
        file: &str,
        config: &PretrainConfig,
        store: &mut VarStore,
    ) -> Result<(), TrainError> {
        self.ensure_method(config)?;
        let path = self.dir.join(file);
        let tensors =
            Tensor::read_safetensors(&path).map_err(|error| TrainError::BadCheckpoint {
                path: path.clone(),
                message: error.to_string(),
            })?;
        let tensors: HashMap<String, Tensor> = tensors.into_iter().collect();
        let variables = store.variables();
        let misfits = misfits(&tensors, &variables);
        if !misfits.is_empty() {
            let shown: Vec<&str> = misfits.iter().take(3).map(String::as_str).collect();
            let more = match misfits.len() - shown.len() {
                0 => String::new(),
                n => format!(" (and {n} more tensors)"),
            };
            let why = match &self.config {
                Some(made_with) => match config_differences(made_with, config).as_slice() {
                    [] => "; its config.toml has the same model settings, so the model code \
                           itself changed since it was written"
                        .to_string(),
                    differences => format!(
                        "; its config.toml differs from this run's in {}",
                        differences.join(", ")
                    ),
                },
                None => "; was it written by a model with a different config?".to_string(),
            };
            return Err(TrainError::WrongCheckpoint {
                path,
                message: format!("{}{more}{why}", shown.join("; ")),
            });
        }
        tch::no_grad(|| {
            for (name, mut variable) in variables {
                variable
                    .f_copy_(&tensors[&name])
                    .map_err(|error| TrainError::BadCheckpoint {
                        path: path.clone(),
                        message: format!("{name}: {error}"),
                    })?;
            }
            Ok(())
        })
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

/// Each way the file's tensors do not fit the model's variables, in name order: a variable
/// the file lacks, a shape that differs, a tensor the model has no place for.
fn misfits(file: &HashMap<String, Tensor>, model: &HashMap<String, Tensor>) -> Vec<String> {
    let names: BTreeMap<&String, ()> = file.keys().chain(model.keys()).map(|n| (n, ())).collect();
    names
        .into_keys()
        .filter_map(|name| match (file.get(name), model.get(name)) {
            (Some(theirs), Some(ours)) if theirs.size() != ours.size() => Some(format!(
                "`{name}` is {:?} in the file and {:?} in the model",
                theirs.size(),
                ours.size()
            )),
            (None, Some(_)) => Some(format!("the model's `{name}` is not in the file")),
            (Some(_), None) => Some(format!("the file's `{name}` has no place in the model")),
            _ => None,
        })
        .collect()
}

/// The settings that decide a model's tensors (backbone, method, input shape) whose values
/// differ between the config a checkpoint was made with and `config`, as
/// "key = theirs (checkpoint) vs ours (this run)".
fn config_differences(made_with: &PretrainConfig, config: &PretrainConfig) -> Vec<String> {
    let (theirs, ours) = (flatten(made_with), flatten(config));
    // The sections in use on either side: `backbone.<kind>.*` and `method.<name>.*`.
    let section = |name: &str| name.replace('-', "_") + ".";
    let in_use = [
        format!("backbone.{}", section(made_with.backbone.kind.as_str())),
        format!("backbone.{}", section(config.backbone.kind.as_str())),
        format!("method.{}", section(made_with.method.name.as_str())),
        format!("method.{}", section(config.method.name.as_str())),
    ];
    let decides_shape = |key: &str| {
        in_use.iter().any(|prefix| key.starts_with(prefix.as_str()))
            || key.starts_with("data.audio.")
            || [
                "backbone.kind",
                "backbone.pooling",
                "backbone.pretrained",
                "method.name",
                "data.image_size",
                "data.seq_len",
                "data.vocab_size",
                "data.tokenizer",
            ]
            .contains(&key)
    };
    let keys: BTreeMap<&String, ()> = theirs.keys().chain(ours.keys()).map(|k| (k, ())).collect();
    keys.into_keys()
        .filter(|key| decides_shape(key) && theirs.get(*key) != ours.get(*key))
        .map(|key| {
            let show = |value: Option<&String>| value.cloned().unwrap_or_else(|| "unset".into());
            format!(
                "{key} = {} (checkpoint) vs {} (this run)",
                show(theirs.get(key)),
                show(ours.get(key))
            )
        })
        .collect()
}

/// A config as dotted keys and their TOML values.
fn flatten(config: &PretrainConfig) -> BTreeMap<String, String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
        for (key, value) in table {
            let key = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            match value {
                toml::Value::Table(inner) => walk(&key, inner, out),
                value => {
                    out.insert(key, value.to_string());
                }
            }
        }
    }
    let table = toml::Table::try_from(config).expect("a PretrainConfig always serializes");
    let mut out = BTreeMap::new();
    walk("", &table, &mut out);
    out
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

    fn store(value: f32) -> VarStore {
        let store = VarStore::new(Device::Cpu);
        let _ = store.root().var_copy(
            "w",
            &Tensor::full([3], f64::from(value), (Kind::Float, Device::Cpu)),
        );
        store
    }

    fn empty() -> VarStore {
        VarStore::new(Device::Cpu)
    }

    fn state(step: u64) -> TrainState {
        TrainState {
            step,
            optimizer_steps: step,
            nonfinite_steps: 0,
            seed: 1,
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

    fn config(edit: impl FnOnce(&mut PretrainConfig)) -> PretrainConfig {
        let mut config = PretrainConfig::default();
        edit(&mut config);
        config
    }

    fn shaped(shape: &[i64]) -> VarStore {
        let store = VarStore::new(Device::Cpu);
        let _ = store
            .root()
            .var_copy("w", &Tensor::ones(shape, (Kind::Float, Device::Cpu)));
        let _ = store
            .root()
            .var_copy("b", &Tensor::ones([2], (Kind::Float, Device::Cpu)));
        store
    }

    #[test]
    fn a_checkpoint_keeps_its_config_and_refuses_another_method() {
        let dir = tempfile::tempdir().unwrap();
        let made_with = config(|c| c.method.name = pretext_methods::MethodName::Simclr);
        Checkpoint::save(
            dir.path(),
            &store(1.0),
            &empty(),
            &[],
            &state(5),
            &made_with,
            1,
        )
        .unwrap();
        let checkpoint = Checkpoint::open(&dir.path().join("step-5")).unwrap();
        assert_eq!(checkpoint.config.as_ref(), Some(&made_with));
        let dino = config(|c| c.method.name = pretext_methods::MethodName::Dino);
        let error = checkpoint
            .load_weights(&dino, &mut store(0.0))
            .unwrap_err()
            .to_string();
        for needle in ["step-5/config.toml", "does not fit", "`simclr`", "`dino`"] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
        let error = checkpoint
            .load_method_state(&dino, &mut empty())
            .unwrap_err();
        assert!(
            matches!(error, TrainError::WrongCheckpoint { .. }),
            "{error}"
        );
    }

    #[test]
    fn another_shape_is_refused_naming_the_tensor_and_the_settings_before_copying_anything() {
        let dir = tempfile::tempdir().unwrap();
        let made_with = config(|c| c.backbone.small_cnn.widths = vec![8, 16]);
        let saved = shaped(&[3, 4]);
        let _ = tch::no_grad(|| saved.variables()["b"].shallow_clone().fill_(7.0));
        Checkpoint::save(dir.path(), &saved, &empty(), &[], &state(5), &made_with, 1).unwrap();
        let (checkpoint, _) = Checkpoint::latest(dir.path()).unwrap();
        let checkpoint = checkpoint.unwrap();

        let this_run = config(|c| {
            c.backbone.small_cnn.widths = vec![8, 32];
            // Settings of a backbone not in use are not offered as the cause.
            c.backbone.vit.layers += 1;
        });
        let mut target = shaped(&[3, 5]);
        let error = checkpoint
            .load_weights(&this_run, &mut target)
            .unwrap_err()
            .to_string();
        for needle in [
            "step-5/weights.safetensors",
            "`w` is [3, 4] in the file and [3, 5] in the model",
            "backbone.small_cnn.widths = [8, 16] (checkpoint) vs [8, 32] (this run)",
        ] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
        assert!(!error.contains("vit"), "{error}");
        // `b` fits, but nothing was copied: the refusal comes first.
        let b = Vec::<f32>::try_from(target.variables()["b"].shallow_clone()).unwrap();
        assert_eq!(b, [1.0, 1.0]);

        // Names that differ both ways are listed too.
        let renamed = VarStore::new(Device::Cpu);
        let _ = renamed
            .root()
            .var_copy("w", &Tensor::ones([3, 4], (Kind::Float, Device::Cpu)));
        let _ = renamed
            .root()
            .var_copy("c", &Tensor::ones([2], (Kind::Float, Device::Cpu)));
        let error = checkpoint
            .load_weights(&made_with, &mut { renamed })
            .unwrap_err()
            .to_string();
        for needle in [
            "the file's `b` has no place in the model",
            "the model's `c` is not in the file",
            "same model settings",
        ] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
        // The fitting model loads.
        let mut fitting = shaped(&[3, 4]);
        checkpoint.load_weights(&made_with, &mut fitting).unwrap();
        let b = Vec::<f32>::try_from(fitting.variables()["b"].shallow_clone()).unwrap();
        assert_eq!(b, [7.0, 7.0]);
    }

    #[test]
    fn a_checkpoint_from_before_configs_were_kept_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        Checkpoint::save(
            dir.path(),
            &store(3.0),
            &empty(),
            &[],
            &state(5),
            &config(|_| {}),
            1,
        )
        .unwrap();
        // Format 2: no config.toml, and meta.json lists four files.
        let step = dir.path().join("step-5");
        fs::remove_file(step.join(CHECKPOINT_CONFIG)).unwrap();
        let mut meta: Meta =
            serde_json::from_slice(&fs::read(step.join("meta.json")).unwrap()).unwrap();
        meta.format = 2;
        meta.sha256.retain(|(name, _)| name != CHECKPOINT_CONFIG);
        fs::write(step.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
        let checkpoint = Checkpoint::open(&step).unwrap();
        assert!(checkpoint.config.is_none());
        let other_method = config(|c| c.method.name = pretext_methods::MethodName::Moco);
        let mut loaded = store(0.0);
        checkpoint.load_weights(&other_method, &mut loaded).unwrap();
        let error = checkpoint
            .load_weights(&other_method, &mut shaped(&[2]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("different config?"), "{error}");
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

//! Loading a checkpoint into a model: refused, before anything is copied, when it was made
//! by another method or its tensors do not fit (another shape, other names), with the
//! settings of the two configs that explain the difference.

use std::collections::{BTreeMap, HashMap};

use tch::{nn::VarStore, Tensor};

use super::{Checkpoint, CHECKPOINT_CONFIG, METHOD_STATE, WEIGHTS};
use crate::config::PretrainConfig;
use crate::error::TrainError;

impl Checkpoint {
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
    // The sections in use on either side: `backbone.<kind>.*` (`backbone.resnet.*` for both
    // ResNets) and `method.<name>.*`.
    let section = |name: &str| name.replace('-', "_") + ".";
    let backbone_section = |kind: pretext_nn::BackboneKind| match kind.resnet_depth() {
        Some(_) => "backbone.resnet.".to_string(),
        None => format!("backbone.{}", section(kind.as_str())),
    };
    let in_use = [
        backbone_section(made_with.backbone.kind),
        backbone_section(config.backbone.kind),
        format!("method.{}", section(made_with.method.name.as_str())),
        format!("method.{}", section(config.method.name.as_str())),
    ];
    let decides_shape = |key: &str| {
        in_use.iter().any(|prefix| key.starts_with(prefix.as_str()))
            || key.starts_with("data.audio.")
            || key.starts_with("backbone.input.")
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

#[cfg(test)]
mod tests {
    use super::super::tests::{config, empty, state, store};
    use super::super::Meta;
    use super::*;
    use std::fs;
    use tch::{Device, Kind};

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

    /// A ResNet's stem and the input adapter decide its tensors (the stem's kernel, the
    /// channels the network reads), so they are offered as the cause.
    #[test]
    fn a_resnets_stem_and_input_are_named_as_the_difference() {
        let dir = tempfile::tempdir().unwrap();
        let made_with = config(|c| c.backbone.kind = pretext_nn::BackboneKind::Resnet50);
        Checkpoint::save(
            dir.path(),
            &shaped(&[3, 4]),
            &empty(),
            &[],
            &state(5),
            &made_with,
            1,
        )
        .unwrap();
        let (checkpoint, _) = Checkpoint::latest(dir.path()).unwrap();
        let this_run = config(|c| {
            c.backbone.kind = pretext_nn::BackboneKind::Resnet50;
            c.backbone.resnet.stem = pretext_nn::ResNetStem::Imagenet;
            c.backbone.input = pretext_nn::InputAdapterConfig::imagenet(224);
        });
        let error = checkpoint
            .unwrap()
            .load_weights(&this_run, &mut shaped(&[3, 5]))
            .unwrap_err()
            .to_string();
        for needle in [
            "backbone.resnet.stem = \"cifar\" (checkpoint) vs \"imagenet\" (this run)",
            "backbone.input.resolution = 0 (checkpoint) vs 224 (this run)",
        ] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
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
}

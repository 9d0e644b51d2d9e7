//! Loading Hugging Face BERT-family checkpoints (BERT, MiniLM, …): a directory with
//! `config.json` and `model.safetensors` (the tokenizer's `tokenizer.json` sits beside them and
//! is read by pretext-data). Only safetensors are read — never pickle — and every tensor's
//! name and shape is checked against the model before anything is copied.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use tch::nn::VarStore;
use tch::Tensor;

use crate::transformer::{Transformer, TransformerConfig};

/// What went wrong loading a checkpoint directory; every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: not a BERT-family config: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Weights { path: PathBuf, message: String },
}

/// The fields of a Hugging Face `config.json` that shape a BERT encoder.
#[derive(Debug, Deserialize)]
struct HfBertConfig {
    model_type: Option<String>,
    vocab_size: i64,
    hidden_size: i64,
    num_hidden_layers: usize,
    num_attention_heads: i64,
    intermediate_size: i64,
    max_position_embeddings: i64,
    #[serde(default = "default_type_vocab")]
    type_vocab_size: i64,
    #[serde(default = "default_eps")]
    layer_norm_eps: f64,
    #[serde(default)]
    hidden_act: Option<String>,
    #[serde(default)]
    hidden_dropout_prob: Option<f64>,
}

fn default_type_vocab() -> i64 {
    2
}

fn default_eps() -> f64 {
    1e-12
}

/// The transformer config written in `dir/config.json`.
pub fn read_hf_bert_config(dir: &Path) -> Result<TransformerConfig, CheckpointError> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|error| CheckpointError::Read {
        path: path.clone(),
        message: error.to_string(),
    })?;
    let config: HfBertConfig =
        serde_json::from_str(&text).map_err(|error| CheckpointError::Config {
            path: path.clone(),
            message: error.to_string(),
        })?;
    let unsupported = |message: String| CheckpointError::Config {
        path: path.clone(),
        message,
    };
    if let Some(kind) = &config.model_type {
        if !["bert", "minilm"].contains(&kind.as_str()) {
            return Err(unsupported(format!(
                "model_type `{kind}` (supported: bert and BERT-shaped models such as MiniLM)"
            )));
        }
    }
    if let Some(activation) = &config.hidden_act {
        if activation != "gelu" {
            return Err(unsupported(format!(
                "hidden_act `{activation}` (supported: gelu)"
            )));
        }
    }
    let transformer = TransformerConfig {
        vocab_size: config.vocab_size,
        max_positions: config.max_position_embeddings,
        type_vocab_size: config.type_vocab_size,
        hidden_dim: config.hidden_size,
        layers: config.num_hidden_layers,
        heads: config.num_attention_heads,
        mlp_dim: config.intermediate_size,
        dropout: config.hidden_dropout_prob.unwrap_or(0.1),
        layer_norm_eps: config.layer_norm_eps,
        norm_first: false,
        causal: false,
    };
    transformer.validate().map_err(unsupported)?;
    Ok(transformer)
}

/// Copies the tensors of `dir/model.safetensors` into the variables of `store` built by
/// [`Transformer::new`] under `prefix` ("" for the store's root). Names may carry a `bert.`
/// prefix; the pooler and `position_ids` buffers are not used. Every variable of the model
/// must be found with its exact shape.
pub fn load_hf_bert_weights(
    dir: &Path,
    store: &VarStore,
    prefix: &str,
) -> Result<(), CheckpointError> {
    let path = dir.join("model.safetensors");
    if !path.exists() && dir.join("pytorch_model.bin").exists() {
        return Err(CheckpointError::Weights {
            path: dir.join("pytorch_model.bin"),
            message: "pickle checkpoints are never loaded (they can run code); convert it with `python -c \"from transformers import AutoModel; AutoModel.from_pretrained('DIR').save_pretrained('DIR', safe_serialization=True)\"`".into(),
        });
    }
    let tensors = Tensor::read_safetensors(&path).map_err(|error| CheckpointError::Weights {
        path: path.clone(),
        message: error.to_string(),
    })?;
    let by_name: std::collections::HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(name, tensor)| {
            (
                name.strip_prefix("bert.").unwrap_or(&name).to_string(),
                tensor,
            )
        })
        .collect();
    let mut problems = Vec::new();
    let variables = store.variables();
    let mut names: Vec<&String> = variables
        .keys()
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    tch::no_grad(|| {
        for name in names {
            let key = name[prefix.len()..].trim_start_matches('.');
            match by_name.get(key) {
                None => problems.push(format!("no tensor `{key}`")),
                Some(source) => {
                    let mut target = variables[name].shallow_clone();
                    if source.size() != target.size() {
                        problems.push(format!(
                            "`{key}` has shape {:?}, the model expects {:?}",
                            source.size(),
                            target.size()
                        ));
                    } else if let Some((count, first)) = non_finite(source) {
                        problems.push(format!(
                            "`{key}` holds {count} NaN or infinite values (the first at flat \
                             index {first})"
                        ));
                    } else {
                        target.copy_(&source.to_kind(target.kind()).to_device(target.device()));
                    }
                }
            }
        }
    });
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CheckpointError::Weights {
            path,
            message: format!(
                "does not match the model of config.json: {}",
                problems.join("; ")
            ),
        })
    }
}

/// How many values of a floating-point tensor are NaN or infinite, and the flat index of
/// the first; None when all are finite (or the tensor holds integers).
pub(crate) fn non_finite(tensor: &Tensor) -> Option<(i64, i64)> {
    // One pass for the usual case: a float64 sum of float32 values cannot overflow, so it
    // is finite exactly when every value is.
    if !tensor.is_floating_point() || tensor.sum(tch::Kind::Double).double_value(&[]).is_finite() {
        return None;
    }
    let bad = tensor.isfinite().logical_not().flatten(0, -1);
    let count = bad.sum(tch::Kind::Int64).int64_value(&[]);
    (count > 0).then(|| {
        (
            count,
            bad.to_kind(tch::Kind::Uint8)
                .argmax(0, false)
                .int64_value(&[]),
        )
    })
}

/// Builds the encoder of a Hugging Face BERT-family directory in `store` and loads its
/// weights.
pub fn load_hf_bert(dir: &Path, store: &VarStore) -> Result<Transformer, CheckpointError> {
    let config = read_hf_bert_config(dir)?;
    let model = Transformer::new(&store.root(), &config);
    load_hf_bert_weights(dir, store, "")?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn store_with_one_variable() -> VarStore {
        let store = VarStore::new(Device::Cpu);
        let _ = store.root().zeros("w", &[2, 2]);
        store
    }

    #[test]
    fn a_pickle_checkpoint_is_refused_with_how_to_convert_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pytorch_model.bin"),
            b"\x80\x02cos\nsystem\n",
        )
        .unwrap();
        let error = load_hf_bert_weights(dir.path(), &store_with_one_variable(), "")
            .unwrap_err()
            .to_string();
        for needle in [
            "pytorch_model.bin",
            "pickle",
            "never loaded",
            "safe_serialization=True",
        ] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
    }

    /// A 1 KB file whose header claims a 100 GB tensor is an error naming the file, found
    /// before anything of that size is allocated.
    #[test]
    fn a_header_claiming_more_than_the_file_holds_is_refused_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let header = br#"{"w":{"dtype":"F32","shape":[100000,100000,2500],"data_offsets":[0,100000000000000]}}"#;
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header);
        bytes.resize(1024, 0);
        std::fs::write(dir.path().join("model.safetensors"), &bytes).unwrap();
        let error = load_hf_bert_weights(dir.path(), &store_with_one_variable(), "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("model.safetensors"), "{error}");
        // A header length beyond the file is refused the same way.
        let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
        bytes.resize(1024, b' ');
        std::fs::write(dir.path().join("model.safetensors"), &bytes).unwrap();
        let error = load_hf_bert_weights(dir.path(), &store_with_one_variable(), "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("model.safetensors"), "{error}");
    }

    /// Downloaded weights holding NaN or Inf are refused naming the file, the tensor, how
    /// many values and where the first is.
    #[test]
    fn weights_holding_nan_are_refused_with_the_tensor_and_place() {
        let dir = tempfile::tempdir().unwrap();
        let weights = Tensor::from_slice(&[0.0f32, 1.0, f32::NAN, f32::INFINITY]).reshape([2, 2]);
        Tensor::write_safetensors(&[("w", &weights)], dir.path().join("model.safetensors"))
            .unwrap();
        let error = load_hf_bert_weights(dir.path(), &store_with_one_variable(), "")
            .unwrap_err()
            .to_string();
        for needle in [
            "model.safetensors",
            "`w` holds 2 NaN or infinite values",
            "index 2",
        ] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
        let finite = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 3.0]).reshape([2, 2]);
        Tensor::write_safetensors(&[("w", &finite)], dir.path().join("model.safetensors")).unwrap();
        load_hf_bert_weights(dir.path(), &store_with_one_variable(), "").unwrap();
    }
}

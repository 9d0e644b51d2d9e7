//! What sentence-transformers adds around a BERT-family encoder, read from (and written to)
//! its folder: `modules.json` lists the modules (Transformer, Pooling, maybe Normalize),
//! `1_Pooling/config.json` says how token states become one vector, and
//! `sentence_bert_config.json` gives the longest input (`max_seq_length`). A plain Hugging
//! Face folder without them is pooled by the mean over real tokens, unnormalized, up to the
//! model's `max_position_embeddings`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tch::{Kind, Tensor};

use crate::backbone::Pooling;
use crate::hf_bert::CheckpointError;
use crate::transformer::mean_pool;

/// How token states `[B, T, H]` become one vector per text (sentence-transformers' modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPooling {
    /// The first token's state (`pooling_mode_cls_token`).
    Cls,
    /// The mean over real tokens (`pooling_mode_mean_tokens`).
    Mean,
    /// The per-dimension maximum over real tokens (`pooling_mode_max_tokens`).
    Max,
    /// The sum over real tokens divided by the square root of their number
    /// (`pooling_mode_mean_sqrt_len_tokens`).
    MeanSqrtLength,
    /// The last real token's state (`pooling_mode_lasttoken`).
    LastToken,
}

impl TokenPooling {
    /// The name sentence-transformers' config gives the mode, without `pooling_mode_`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPooling::Cls => "cls_token",
            TokenPooling::Mean => "mean_tokens",
            TokenPooling::Max => "max_tokens",
            TokenPooling::MeanSqrtLength => "mean_sqrt_len_tokens",
            TokenPooling::LastToken => "lasttoken",
        }
    }

    /// Token states `[B, T, H]` and the attention mask `[B, T]` (1 = token) to `[B, H]`.
    pub fn pool(self, states: &Tensor, mask: &Tensor) -> Tensor {
        let mask = mask.to_kind(states.kind());
        match self {
            TokenPooling::Cls => states.select(1, 0),
            TokenPooling::Mean => mean_pool(states, &mask),
            TokenPooling::Max => {
                // Padding can never be the maximum: it is pushed far below every state.
                let padding = (mask.ones_like() - &mask).unsqueeze(-1) * -1e9; // [B, T, 1]
                (states + padding).amax(&[1i64][..], false)
            }
            TokenPooling::MeanSqrtLength => {
                let weights = mask.unsqueeze(-1); // [B, T, 1]
                (states * &weights).sum_dim_intlist(&[1i64][..], false, states.kind())
                    / mask
                        .sum_dim_intlist(&[1i64][..], true, states.kind())
                        .clamp_min(1.0)
                        .sqrt()
            }
            TokenPooling::LastToken => {
                let last = (mask.sum_dim_intlist(&[1i64][..], false, Kind::Int64) - 1).clamp_min(0); // [B]
                let hidden = states.size()[2];
                states
                    .gather(
                        1,
                        &last.view([-1, 1, 1]).expand([-1, 1, hidden], false),
                        false,
                    )
                    .squeeze_dim(1)
            }
        }
    }
}

impl From<Pooling> for TokenPooling {
    fn from(pooling: Pooling) -> TokenPooling {
        match pooling {
            Pooling::Mean => TokenPooling::Mean,
            Pooling::Cls => TokenPooling::Cls,
            Pooling::Last => TokenPooling::LastToken,
        }
    }
}

/// A sentence model's settings beyond the encoder.
#[derive(Clone, Debug, PartialEq)]
pub struct SentenceSettings {
    pub pooling: TokenPooling,
    /// Whether `modules.json` ends with a Normalize module (L2-normalized embeddings).
    pub normalize: bool,
    /// `max_seq_length` of `sentence_bert_config.json`, if the folder has one.
    pub max_seq_length: Option<usize>,
    /// The pooling config file read, or None when the mean was assumed.
    pub pooling_file: Option<PathBuf>,
}

/// Reads the sentence-transformers files of `dir`, if any (see the module header).
pub fn read_sentence_settings(dir: &Path) -> Result<SentenceSettings, CheckpointError> {
    let modules_path = dir.join("modules.json");
    let mut pooling_dir = dir.join("1_Pooling");
    let mut normalize = false;
    if modules_path.exists() {
        let modules = read_json(&modules_path)?;
        let modules = modules.as_array().ok_or_else(|| CheckpointError::Config {
            path: modules_path.clone(),
            message: "expected a list of modules".into(),
        })?;
        for module in modules {
            let kind = module.get("type").and_then(Value::as_str).unwrap_or("");
            let path = module.get("path").and_then(Value::as_str).unwrap_or("");
            if kind.ends_with(".Pooling") {
                pooling_dir = dir.join(path);
            } else if kind.ends_with(".Normalize") {
                normalize = true;
            }
        }
    }
    let pooling_path = pooling_dir.join("config.json");
    let (pooling, pooling_file) = if pooling_path.exists() {
        (read_pooling(&pooling_path)?, Some(pooling_path))
    } else {
        (TokenPooling::Mean, None)
    };
    let bert_config = dir.join("sentence_bert_config.json");
    let max_seq_length = if bert_config.exists() {
        read_json(&bert_config)?
            .get("max_seq_length")
            .and_then(Value::as_u64)
            .map(|length| length as usize)
    } else {
        None
    };
    Ok(SentenceSettings {
        pooling,
        normalize,
        max_seq_length,
        pooling_file,
    })
}

fn read_pooling(path: &Path) -> Result<TokenPooling, CheckpointError> {
    let config = read_json(path)?;
    if let Some(mode) = config.get("pooling_mode").and_then(Value::as_str) {
        return pooling_named(mode).ok_or_else(|| unsupported_pooling(path, mode));
    }
    let on: Vec<&str> = config
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, value)| key.starts_with("pooling_mode_") && value.as_bool() == Some(true))
        .map(|(key, _)| &key["pooling_mode_".len()..])
        .collect();
    match on.as_slice() {
        [] => Err(CheckpointError::Config {
            path: path.to_path_buf(),
            message: "no pooling_mode_* is true".into(),
        }),
        [mode] => pooling_named(mode).ok_or_else(|| unsupported_pooling(path, mode)),
        several => Err(CheckpointError::Config {
            path: path.to_path_buf(),
            message: format!(
                "several pooling modes at once ({}), which concatenate vectors; pretext embeds with one",
                several.join(", ")
            ),
        }),
    }
}

fn pooling_named(mode: &str) -> Option<TokenPooling> {
    match mode.trim_start_matches("pooling_mode_") {
        "cls_token" | "cls" => Some(TokenPooling::Cls),
        "mean_tokens" | "mean" => Some(TokenPooling::Mean),
        "max_tokens" | "max" => Some(TokenPooling::Max),
        "mean_sqrt_len_tokens" => Some(TokenPooling::MeanSqrtLength),
        "lasttoken" => Some(TokenPooling::LastToken),
        _ => None,
    }
}

fn unsupported_pooling(path: &Path, mode: &str) -> CheckpointError {
    CheckpointError::Config {
        path: path.to_path_buf(),
        message: format!(
            "pooling mode `{mode}` (supported: cls_token, mean_tokens, max_tokens, mean_sqrt_len_tokens, lasttoken)"
        ),
    }
}

fn read_json(path: &Path) -> Result<Value, CheckpointError> {
    let text = std::fs::read_to_string(path).map_err(|error| CheckpointError::Read {
        path: path.to_path_buf(),
        message: error.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|error| CheckpointError::Config {
        path: path.to_path_buf(),
        message: error.to_string(),
    })
}

/// The sentence-transformers files for a model of width `dim` pooled by `pooling`:
/// `(relative path, JSON)` for `modules.json`, `1_Pooling/config.json` and
/// `sentence_bert_config.json` (plus the Normalize module when `normalize`).
pub fn sentence_transformers_files(
    pooling: TokenPooling,
    normalize: bool,
    dim: i64,
    max_seq_length: usize,
) -> Vec<(&'static str, Value)> {
    let mut modules = vec![
        json!({"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}),
        json!({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}),
    ];
    if normalize {
        modules.push(json!({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}));
    }
    let mode = |wanted: TokenPooling| pooling == wanted;
    vec![
        ("modules.json", Value::Array(modules)),
        (
            "1_Pooling/config.json",
            json!({
                "word_embedding_dimension": dim,
                "pooling_mode_cls_token": mode(TokenPooling::Cls),
                "pooling_mode_mean_tokens": mode(TokenPooling::Mean),
                "pooling_mode_max_tokens": mode(TokenPooling::Max),
                "pooling_mode_mean_sqrt_len_tokens": mode(TokenPooling::MeanSqrtLength),
                "pooling_mode_weightedmean_tokens": false,
                "pooling_mode_lasttoken": mode(TokenPooling::LastToken),
                "include_prompt": true
            }),
        ),
        (
            "sentence_bert_config.json",
            json!({"max_seq_length": max_seq_length, "do_lower_case": false}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> (Tensor, Tensor) {
        // Two texts of 3 positions, 2 dims; the second has one padding position.
        let states = Tensor::from_slice(&[
            1.0f32, 2.0, 3.0, -4.0, 5.0, 0.0, //
            -1.0, 7.0, 2.0, 1.0, 100.0, 100.0,
        ])
        .view([2, 3, 2]);
        let mask = Tensor::from_slice(&[1i64, 1, 1, 1, 1, 0]).view([2, 3]);
        (states, mask)
    }

    fn rows(t: &Tensor) -> Vec<f32> {
        Vec::<f32>::try_from(t.flatten(0, -1)).unwrap()
    }

    #[test]
    fn each_pooling_mode_matches_its_hand_computed_value() {
        let (s, m) = states();
        assert_eq!(rows(&TokenPooling::Cls.pool(&s, &m)), [1.0, 2.0, -1.0, 7.0]);
        assert_eq!(
            rows(&TokenPooling::Mean.pool(&s, &m)),
            [3.0, -2.0 / 3.0, 0.5, 4.0]
        );
        // The padding position (100, 100) is never the maximum.
        assert_eq!(rows(&TokenPooling::Max.pool(&s, &m)), [5.0, 2.0, 2.0, 7.0]);
        let root3 = 3f32.sqrt();
        let root2 = 2f32.sqrt();
        let got = rows(&TokenPooling::MeanSqrtLength.pool(&s, &m));
        for (g, w) in got
            .iter()
            .zip([9.0 / root3, -2.0 / root3, 1.0 / root2, 8.0 / root2])
        {
            assert!((g - w).abs() < 1e-6, "{g} vs {w}");
        }
        assert_eq!(
            rows(&TokenPooling::LastToken.pool(&s, &m)),
            [5.0, 0.0, 2.0, 1.0]
        );
    }

    #[test]
    fn written_settings_read_back_the_same() {
        for pooling in [
            TokenPooling::Cls,
            TokenPooling::Mean,
            TokenPooling::LastToken,
        ] {
            let dir = tempfile::tempdir().unwrap();
            for (name, value) in sentence_transformers_files(pooling, true, 8, 128) {
                let path = dir.path().join(name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, value.to_string()).unwrap();
            }
            let settings = read_sentence_settings(dir.path()).unwrap();
            assert_eq!(settings.pooling, pooling);
            assert!(settings.normalize);
            assert_eq!(settings.max_seq_length, Some(128));
        }
    }

    #[test]
    fn a_plain_folder_is_mean_pooled_and_two_modes_at_once_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let settings = read_sentence_settings(dir.path()).unwrap();
        assert_eq!(settings.pooling, TokenPooling::Mean);
        assert!(!settings.normalize && settings.pooling_file.is_none());
        std::fs::create_dir_all(dir.path().join("1_Pooling")).unwrap();
        std::fs::write(
            dir.path().join("1_Pooling/config.json"),
            r#"{"pooling_mode_cls_token": true, "pooling_mode_max_tokens": true}"#,
        )
        .unwrap();
        let error = read_sentence_settings(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("1_Pooling/config.json") && error.contains("several pooling modes"),
            "{error}"
        );
    }
}

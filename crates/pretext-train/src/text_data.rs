//! Text data for a run: the tokenizer — trained on the run's training texts, or read from a
//! `tokenizer.json` or a Hugging Face model folder — kept as `RUN/tokenizer.json` so that
//! resume, probe and embed tokenize exactly as pretraining did; and the tokenized splits.
//!
//! `data.path` names a labeled `.tsv`/`.jsonl` file (one example per line: each becomes one
//! sequence, `[CLS] … [SEP]` truncated to `data.seq_len`; labels are used only by the
//! monitors and probes) or an unlabeled `.txt` file or folder (documents are packed into
//! blocks of `data.seq_len` tokens). The held-out split is `data.test_path`, or a seeded
//! share `data.holdout_fraction` (stratified when labeled).

use std::path::{Path, PathBuf};

use pretext_data::store::megabytes;
use pretext_data::text::blocks::pack_corpus_blocks;
use pretext_data::text::{
    list_text_files, load_labeled_text, load_labeled_text_splits, train_tokenizer,
    train_tokenizer_on_corpus, LabeledText, TextCorpus, TextDocument, TextTokenizer, TokenizerKind,
};
use pretext_data::{rng_stream, stratified_split, Samples, Splits, TokenSet, Vocabulary};
use rand::seq::SliceRandom;

use crate::config::PretrainConfig;
use crate::error::TrainError;

/// The file name of a run's tokenizer.
pub const RUN_TOKENIZER: &str = "tokenizer.json";

/// Tag of the stream that splits unlabeled blocks.
const HOLDOUT_STREAM: u64 = 0x484f_4c44; // "HOLD"

/// Whether `data.path` names text (else images).
pub fn is_text_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".tsv", ".jsonl", ".txt"]
        .iter()
        .any(|ext| lower.ends_with(ext))
        || (Path::new(path).is_dir()
            && std::fs::read_dir(path)
                .map(|entries| {
                    entries.filter_map(Result::ok).any(|entry| {
                        entry
                            .path()
                            .extension()
                            .is_some_and(|ext| ext.eq_ignore_ascii_case("txt"))
                    })
                })
                .unwrap_or(false))
}

/// The run's tokenizer: `run_dir/tokenizer.json` when it exists, else made as the config
/// says (the caller saves it into the run with [`TextTokenizer::save`]).
pub fn resolve_tokenizer(
    config: &PretrainConfig,
    run_dir: Option<&Path>,
) -> Result<TextTokenizer, TrainError> {
    if let Some(saved) = run_dir
        .map(|dir| dir.join(RUN_TOKENIZER))
        .filter(|p| p.exists())
    {
        return Ok(TextTokenizer::from_file(&saved)?);
    }
    let spec = config.data.tokenizer.as_str();
    let kind = match spec {
        "wordpiece" => Some(TokenizerKind::WordPiece),
        "bpe" => Some(TokenizerKind::Bpe),
        "char" => Some(TokenizerKind::Char),
        _ => None,
    };
    let tokenizer = match kind {
        // A pretrained backbone brings its own tokenizer unless one is named.
        Some(_) if !config.backbone.pretrained.is_empty() => {
            TextTokenizer::from_file(&Path::new(&config.backbone.pretrained).join(RUN_TOKENIZER))?
        }
        Some(kind) => {
            let path = Path::new(&config.data.path);
            if is_labeled(path) {
                let corpus = labeled_training_corpus(config)?;
                train_tokenizer_on_corpus(kind, &corpus, config.data.vocab_size, 2)?
            } else {
                // An unlabeled corpus is streamed: it may be larger than memory.
                train_tokenizer(kind, &list_text_files(path)?, config.data.vocab_size, 2)?
            }
        }
        None => {
            let path = PathBuf::from(spec);
            let file = if path.is_dir() {
                path.join(RUN_TOKENIZER)
            } else {
                path
            };
            TextTokenizer::from_file(&file)?
        }
    };
    Ok(tokenizer)
}

/// The texts of a labeled file a tokenizer is trained on: the training split's (never the
/// held-out texts).
fn labeled_training_corpus(config: &PretrainConfig) -> Result<TextCorpus, TrainError> {
    let texts = labeled_splits(config)?.0;
    Ok(TextCorpus {
        documents: vec![TextDocument {
            path: config.data.path.as_str().into(),
            text: texts.texts.join("\n"),
        }],
    })
}

fn is_labeled(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("tsv") || ext.eq_ignore_ascii_case("jsonl"))
}

/// The labeled training and held-out texts of `data.path` (and `data.test_path`).
fn labeled_splits(config: &PretrainConfig) -> Result<(LabeledText, LabeledText), TrainError> {
    let path = Path::new(&config.data.path);
    if !config.data.test_path.is_empty() {
        let splits = load_labeled_text_splits(path, Path::new(&config.data.test_path))?;
        return Ok((splits.train, splits.test));
    }
    let all = load_labeled_text(path)?;
    let (train, test) = stratified_split(
        &all.labels,
        config.data.holdout_fraction,
        config.data.split_seed,
    );
    let pick = |indices: &[usize]| LabeledText {
        texts: indices.iter().map(|&i| all.texts[i].clone()).collect(),
        labels: indices.iter().map(|&i| all.labels[i]).collect(),
        class_names: all.class_names.clone(),
    };
    Ok((pick(&train), pick(&test)))
}

/// What a token set needs of `tokenizer`.
pub fn vocabulary(tokenizer: &TextTokenizer) -> Vocabulary {
    let mut special_ids = tokenizer.special_ids().to_vec();
    special_ids.sort_unstable();
    Vocabulary {
        size: tokenizer.vocab_size() as u32,
        pad_id: tokenizer.pad_id().unwrap_or(0),
        mask_id: tokenizer.mask_id(),
        special_ids,
    }
}

/// Tokenizes `data.path` (and its held-out split) with `tokenizer`.
pub fn load_text_splits(
    config: &PretrainConfig,
    spec: &str,
    tokenizer: &TextTokenizer,
) -> Result<Splits, TrainError> {
    let vocabulary = vocabulary(tokenizer);
    let seq_len = config.data.seq_len;
    let path = Path::new(spec);
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.to_string());
    if is_labeled(path) {
        let mut config = config.clone();
        config.data.path = spec.to_string();
        let (train, test) = labeled_splits(&config)?;
        let encode = |texts: &LabeledText| -> Result<TokenSet, TrainError> {
            let sequences = tokenizer.encode_batch(&texts.texts)?;
            Ok(TokenSet::from_sequences(
                &sequences,
                seq_len,
                &vocabulary,
                Some(texts.labels.clone()),
                texts.class_names.clone(),
            ))
        };
        return Ok(Splits {
            name,
            train: Samples::Tokens(encode(&train)?),
            test: Samples::Tokens(encode(&test)?),
        });
    }
    // Unlabeled documents are streamed into blocks, kept in a mapped file past
    // data.memory_limit_mb.
    let limit = megabytes(config.data.memory_limit_mb);
    let separator = tokenizer.eos_id().or(tokenizer.pad_id());
    let (stream, blocks) = pack_corpus_blocks(
        &list_text_files(path)?,
        tokenizer,
        seq_len,
        separator,
        limit,
    )?;
    if blocks < 2 {
        return Err(TrainError::Invalid {
            field: "data.seq_len".into(),
            message: format!(
                "{spec} gives {blocks} block(s) of {seq_len} tokens; pretraining needs at least 2 (use more text or a shorter data.seq_len)"
            ),
        });
    }
    let mut order: Vec<usize> = (0..blocks).collect();
    order.shuffle(&mut rng_stream(config.data.split_seed, &[HOLDOUT_STREAM]));
    let held_out =
        ((blocks as f64 * config.data.holdout_fraction).round() as usize).clamp(1, blocks - 1);
    let (test, train) = order.split_at(held_out);
    let set = |indices: &[usize]| {
        Samples::Tokens(TokenSet::from_blocks(
            &stream,
            indices,
            seq_len,
            &vocabulary,
            limit,
        ))
    };
    Ok(Splits {
        name,
        train: set(train),
        test: set(test),
    })
}

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

use pretext_data::store::{megabytes, Store};
use pretext_data::text::blocks::pack_corpus_blocks;
use pretext_data::text::labeled::{for_each_text, read_labels};
use pretext_data::text::tokenizer_training::train_tokenizer_streamed;
use pretext_data::text::{list_text_files, train_tokenizer, TextTokenizer, TokenizerKind};
use pretext_data::{
    fit_sequence, rng_stream, stratified_in_training, DataError, Samples, Splits, TokenSet,
    Vocabulary,
};
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
                train_on_labeled(kind, config)?
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

/// A tokenizer trained on the training split's texts of a labeled file (never the held-out
/// ones), streamed: the texts one after another, each followed by a line break but the last.
fn train_on_labeled(
    kind: TokenizerKind,
    config: &PretrainConfig,
) -> Result<TextTokenizer, TrainError> {
    let plan = LabeledPlan::read(config, Path::new(&config.data.path))?;
    let training = plan.in_training.iter().filter(|&&kept| kept).count();
    let tokenizer = train_tokenizer_streamed(kind, config.data.vocab_size, 2, 1, |send| {
        let (mut row, mut fed, mut taken) = (0, 0, true);
        for_each_text(&plan.files[0], |text| {
            if taken && plan.in_training.get(row) == Some(&true) {
                fed += 1;
                let text = if fed < training {
                    format!("{text}\n")
                } else {
                    text.to_owned()
                };
                for line in text.split_inclusive('\n') {
                    taken &= send(line.to_owned());
                }
            }
            row += 1;
            Ok(())
        })
    })?;
    Ok(tokenizer)
}

fn is_labeled(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("tsv") || ext.eq_ignore_ascii_case("jsonl"))
}

/// The examples of a labeled run, read without their texts: the training file (and the test
/// file), each example's class code, and which examples of the training file are in the
/// training split (all when there is a test file; else the stratified share of
/// `data.holdout_fraction` is held out).
struct LabeledPlan {
    files: Vec<PathBuf>,
    codes: Vec<Vec<u16>>,
    class_names: Vec<String>,
    in_training: Vec<bool>,
}

impl LabeledPlan {
    fn read(config: &PretrainConfig, path: &Path) -> Result<LabeledPlan, TrainError> {
        let (codes, class_names) = read_labels(path, None)?;
        let mut files = vec![path.to_path_buf()];
        let mut plan_codes = vec![codes];
        let in_training = if config.data.test_path.is_empty() {
            stratified_in_training(
                &plan_codes[0],
                config.data.holdout_fraction,
                config.data.split_seed,
            )
        } else {
            let test = PathBuf::from(&config.data.test_path);
            plan_codes.push(read_labels(&test, Some((&class_names, path)))?.0);
            files.push(test);
            vec![true; plan_codes[0].len()]
        };
        Ok(LabeledPlan {
            files,
            codes: plan_codes,
            class_names,
            in_training,
        })
    }
}

/// Examples encoded at once (in parallel).
const ENCODE_BATCH: usize = 1024;

/// The training and held-out sequences of a labeled run: each example `[CLS] … [SEP]`
/// (whatever the tokenizer's post-processor adds) truncated or padded to `seq_len`, streamed
/// from the files a batch of examples at a time into stores that are mapped temporary files
/// past `limit_bytes`.
fn encode_labeled(
    plan: &LabeledPlan,
    tokenizer: &TextTokenizer,
    vocabulary: &Vocabulary,
    seq_len: usize,
    limit_bytes: u64,
) -> Result<(TokenSet, TokenSet), TrainError> {
    let train_len = plan.in_training.iter().filter(|&&kept| kept).count();
    let test_len = plan.codes.iter().map(Vec::len).sum::<usize>() - train_len;
    let mut stores = [
        Store::<u32>::zeroed(train_len * seq_len, limit_bytes)?,
        Store::<u32>::zeroed(test_len * seq_len, limit_bytes)?,
    ];
    let mut labels: [Vec<u16>; 2] = [Vec::with_capacity(train_len), Vec::with_capacity(test_len)];
    // Waiting to be encoded: (split, class code, text); split 0 is training.
    let mut batch: Vec<(usize, u16, String)> = Vec::with_capacity(ENCODE_BATCH);
    let mut flush = |batch: &mut Vec<(usize, u16, String)>| -> Result<(), DataError> {
        let texts: Vec<&str> = batch.iter().map(|(_, _, text)| text.as_str()).collect();
        for ((split, code, _), ids) in batch.iter().zip(tokenizer.encode_batch(&texts)?) {
            let start = labels[*split].len() * seq_len;
            let out = &mut stores[*split].as_mut_slice()[start..start + seq_len];
            fit_sequence(out, &ids, vocabulary.pad_id);
            labels[*split].push(*code);
        }
        batch.clear();
        Ok(())
    };
    for (file, path) in plan.files.iter().enumerate() {
        let codes = &plan.codes[file];
        let mut row = 0;
        for_each_text(path, |text| {
            let Some(&code) = codes.get(row) else {
                return Err(changed_while_read(path));
            };
            let split = usize::from(file > 0 || !plan.in_training[row]);
            batch.push((split, code, text.to_owned()));
            row += 1;
            if batch.len() == ENCODE_BATCH {
                flush(&mut batch)?;
            }
            Ok(())
        })?;
        flush(&mut batch)?;
        if row != codes.len() {
            return Err(changed_while_read(path).into());
        }
    }
    let [train_tokens, test_tokens] = stores;
    let [train_labels, test_labels] = labels;
    let set = |tokens, labels: Vec<u16>| {
        TokenSet::from_store(
            tokens,
            labels.len(),
            seq_len,
            vocabulary,
            Some(labels),
            plan.class_names.clone(),
            limit_bytes,
        )
    };
    Ok((
        set(train_tokens, train_labels),
        set(test_tokens, test_labels),
    ))
}

fn changed_while_read(path: &Path) -> DataError {
    DataError::ChangedWhileRead {
        path: path.to_path_buf(),
    }
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
    let limit = megabytes(config.data.memory_limit_mb);
    if is_labeled(path) {
        let plan = LabeledPlan::read(config, path)?;
        let (train, test) = encode_labeled(&plan, tokenizer, &vocabulary, seq_len, limit)?;
        return Ok(Splits {
            name,
            train: Samples::Tokens(train),
            test: Samples::Tokens(test),
        });
    }
    // Unlabeled documents are streamed into blocks, kept in a mapped file past
    // data.memory_limit_mb.
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

#[cfg(test)]
mod tests {
    use super::*;
    use pretext_data::text::{train_tokenizer_on_corpus, TextCorpus, TextDocument};

    /// A labeled file is read twice (labels, then texts): one that gained an example in
    /// between is an error naming it, not sequences paired with the wrong labels.
    #[test]
    fn a_labeled_file_that_changes_between_its_passes_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.tsv");
        std::fs::write(&path, "a\tone text\nb\tanother\na\tthird\nb\tfourth\n").unwrap();
        let mut config = PretrainConfig::default();
        config.data.path = path.display().to_string();
        let plan = LabeledPlan::read(&config, &path).unwrap();
        let corpus = TextCorpus {
            documents: vec![TextDocument {
                path: path.clone(),
                text: "one text another third fourth".into(),
            }],
        };
        let tokenizer = train_tokenizer_on_corpus(TokenizerKind::Char, &corpus, 0, 0).unwrap();
        let vocabulary = vocabulary(&tokenizer);
        let (train, test) = encode_labeled(&plan, &tokenizer, &vocabulary, 8, u64::MAX).unwrap();
        assert_eq!(train.len + test.len, 4);

        std::fs::write(
            &path,
            "a\tone text\nb\tanother\na\tthird\nb\tfourth\na\tfifth\n",
        )
        .unwrap();
        let error = encode_labeled(&plan, &tokenizer, &vocabulary, 8, u64::MAX).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("pairs.tsv") && message.contains("changed while it was read"),
            "{message}"
        );
    }
}

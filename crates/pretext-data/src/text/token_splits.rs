//! A run's text, tokenized into its training and held-out splits.
//!
//! `data.path` names a labeled `.tsv`/`.jsonl` file (one example per line: each becomes one
//! sequence, `[CLS] … [SEP]` truncated to `data.seq_len`; labels are used only by the
//! monitors and probes) or an unlabeled `.txt` file or folder (documents are packed into
//! blocks of `data.seq_len` tokens). The held-out split is `data.test_path`, or a seeded
//! share `data.holdout_fraction` (stratified when labeled).

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;

use crate::error::DataError;
use crate::source::has_extension;
use crate::store::{megabytes, Store};
use crate::text::blocks::pack_corpus_blocks;
use crate::text::labeled::{for_each_text, read_labels};
use crate::text::{list_text_files, TextTokenizer};
use crate::{
    fit_sequence, rng_stream, stratified_in_training, DataConfig, Samples, Splits, TokenSet,
    Vocabulary,
};

/// Tag of the stream that splits unlabeled blocks.
const HOLDOUT_STREAM: u64 = 0x484f_4c44; // "HOLD"

/// Whether `path` names a labeled text file (`.tsv` or `.jsonl`), else an unlabeled corpus.
pub(crate) fn is_labeled_text_path(path: &Path) -> bool {
    has_extension(path, "tsv") || has_extension(path, "jsonl")
}

/// The examples of a labeled run, read without their texts: the training file (and the test
/// file), each example's class code, and which examples of the training file are in the
/// training split (all when there is a test file; else the stratified share of
/// `data.holdout_fraction` is held out).
pub(crate) struct LabeledPlan {
    pub(crate) files: Vec<PathBuf>,
    codes: Vec<Vec<u16>>,
    class_names: Vec<String>,
    pub(crate) in_training: Vec<bool>,
}

impl LabeledPlan {
    pub(crate) fn read(data: &DataConfig, path: &Path) -> Result<LabeledPlan, DataError> {
        let (codes, class_names) = read_labels(path, None)?;
        let mut files = vec![path.to_path_buf()];
        let mut plan_codes = vec![codes];
        let in_training = match data.test_file() {
            None => stratified_in_training(&plan_codes[0], data.holdout_fraction, data.split_seed),
            Some(test) => {
                plan_codes.push(read_labels(test, Some((&class_names, path)))?.0);
                files.push(test.to_path_buf());
                vec![true; plan_codes[0].len()]
            }
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
) -> Result<(TokenSet, TokenSet), DataError> {
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
            return Err(changed_while_read(path));
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

/// Tokenizes the text `spec` (and its held-out split) with `tokenizer`, as `data` says.
pub fn load_text_splits(
    data: &DataConfig,
    spec: &str,
    tokenizer: &TextTokenizer,
) -> Result<Splits, DataError> {
    let vocabulary = tokenizer.vocabulary();
    let seq_len = data.seq_len;
    let path = Path::new(spec);
    let name = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.to_string());
    let limit = megabytes(data.memory_limit_mb);
    if is_labeled_text_path(path) {
        let plan = LabeledPlan::read(data, path)?;
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
        return Err(DataError::InvalidSetting {
            field: "data.seq_len".into(),
            message: format!(
                "{spec} gives {blocks} block(s) of {seq_len} tokens; pretraining needs at least 2 (use more text or a shorter data.seq_len)"
            ),
        });
    }
    let mut order: Vec<usize> = (0..blocks).collect();
    order.shuffle(&mut rng_stream(data.split_seed, &[HOLDOUT_STREAM]));
    let held_out = ((blocks as f64 * data.holdout_fraction).round() as usize).clamp(1, blocks - 1);
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
    use crate::text::{train_tokenizer_on_corpus, TextCorpus, TextDocument, TokenizerKind};

    /// A labeled file is read twice (labels, then texts): one that gained an example in
    /// between is an error naming it, not sequences paired with the wrong labels.
    #[test]
    fn a_labeled_file_that_changes_between_its_passes_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pairs.tsv");
        std::fs::write(&path, "a\tone text\nb\tanother\na\tthird\nb\tfourth\n").unwrap();
        let data = DataConfig {
            path: path.display().to_string(),
            ..DataConfig::default()
        };
        let plan = LabeledPlan::read(&data, &path).unwrap();
        let corpus = TextCorpus {
            documents: vec![TextDocument {
                path: path.clone(),
                text: "one text another third fourth".into(),
            }],
        };
        let tokenizer = train_tokenizer_on_corpus(TokenizerKind::Char, &corpus, 0, 0).unwrap();
        let vocabulary = tokenizer.vocabulary();
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

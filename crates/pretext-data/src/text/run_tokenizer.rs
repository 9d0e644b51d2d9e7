//! A run's tokenizer: trained on the run's training texts, or read from a `tokenizer.json`
//! or a Hugging Face model folder, and kept as `RUN/tokenizer.json` ([`RUN_TOKENIZER`]) so
//! that resume, probe and embed tokenize exactly as pretraining did.

use std::path::{Path, PathBuf};

use crate::error::DataError;
use crate::open::DataOptions;
use crate::text::labeled::for_each_text;
use crate::text::token_splits::{is_labeled_text_path, LabeledPlan};
use crate::text::tokenizer_training::train_tokenizer_streamed;
use crate::text::{list_text_files, train_tokenizer, TextTokenizer, TokenizerKind};
use crate::DataConfig;

/// The file name of a run's tokenizer.
pub const RUN_TOKENIZER: &str = "tokenizer.json";

/// The run's tokenizer: `run_dir/tokenizer.json` when it exists, else made as `data.tokenizer`
/// says (the caller saves it into the run with [`TextTokenizer::save`]).
pub fn resolve_tokenizer(options: &DataOptions) -> Result<TextTokenizer, DataError> {
    if let Some(saved) = options
        .run_dir
        .map(|dir| dir.join(RUN_TOKENIZER))
        .filter(|p| p.exists())
    {
        return TextTokenizer::from_file(&saved);
    }
    let data = options.data;
    let spec = data.tokenizer.as_str();
    let kind = match spec {
        "wordpiece" => Some(TokenizerKind::WordPiece),
        "bpe" => Some(TokenizerKind::Bpe),
        "char" => Some(TokenizerKind::Char),
        _ => None,
    };
    match kind {
        // A pretrained backbone brings its own tokenizer unless one is named.
        Some(_) if !options.pretrained.is_empty() => {
            TextTokenizer::from_file(&Path::new(options.pretrained).join(RUN_TOKENIZER))
        }
        Some(kind) => {
            let path = Path::new(&data.path);
            if is_labeled_text_path(path) {
                train_on_labeled(kind, data)
            } else {
                // An unlabeled corpus is streamed: it may be larger than memory.
                train_tokenizer(kind, &list_text_files(path)?, data.vocab_size, 2)
            }
        }
        None => {
            let path = PathBuf::from(spec);
            let file = if path.is_dir() {
                path.join(RUN_TOKENIZER)
            } else {
                path
            };
            TextTokenizer::from_file(&file)
        }
    }
}

/// A tokenizer trained on the training split's texts of a labeled file (never the held-out
/// ones), streamed: the texts one after another, each followed by a line break but the last.
fn train_on_labeled(kind: TokenizerKind, data: &DataConfig) -> Result<TextTokenizer, DataError> {
    let plan = LabeledPlan::read(data, Path::new(&data.path))?;
    let training = plan.in_training.iter().filter(|&&kept| kept).count();
    train_tokenizer_streamed(kind, data.vocab_size, 2, 1, |send| {
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
    })
}

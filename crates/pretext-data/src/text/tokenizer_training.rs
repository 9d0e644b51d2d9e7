//! Training a [`TextTokenizer`] on a corpus: byte-level BPE (GPT-2 / RoBERTa), BERT-style
//! WordPiece, or one token per character, all with the `tokenizers` crate's trainers so the
//! result is a standard `tokenizer.json`.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainer};
use tokenizers::models::TrainerWrapper;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::fixed_length::FixedLength;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, Tokenizer};

use crate::error::DataError;
use crate::text::corpus::{read_text_file, TextCorpus, TextDocument};
use crate::text::tokenizer::TextTokenizer;

/// Special tokens of the byte-level BPE tokenizer (RoBERTa's), ids 0..5 in this order.
pub const BPE_SPECIAL_TOKENS: [&str; 5] = ["<pad>", "<unk>", "<s>", "</s>", "<mask>"];
/// Special tokens of the WordPiece tokenizer (BERT's), ids 0..5 in this order.
pub const WORDPIECE_SPECIAL_TOKENS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
/// Special tokens of the character tokenizer, ids 0..3 in this order.
pub const CHAR_SPECIAL_TOKENS: [&str; 3] = ["<pad>", "<unk>", "<eos>"];

/// Byte-level BPE needs every byte symbol in its vocabulary.
const BYTE_SYMBOLS: usize = 256;

/// Which tokenizer to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    /// Byte-level BPE as in GPT-2 / RoBERTa: no normalization, GPT-2's pre-tokenizer regex,
    /// any text encodable (no unknown token needed); encodes as `<s> … </s>`.
    Bpe,
    /// BERT-style WordPiece: lowercase (accents kept), BERT's whitespace-and-punctuation
    /// pre-tokenizer, `##` continuation prefix; encodes as `[CLS] … [SEP]`.
    WordPiece,
    /// One token per distinct character of the corpus, for small GPT runs; decodes back to
    /// the exact text (spaces and newlines included).
    Char,
}

impl TokenizerKind {
    /// The name used on the command line: `bpe`, `wordpiece` or `char`.
    pub fn name(self) -> &'static str {
        match self {
            TokenizerKind::Bpe => "bpe",
            TokenizerKind::WordPiece => "wordpiece",
            TokenizerKind::Char => "char",
        }
    }
}

impl fmt::Display for TokenizerKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// Trains a tokenizer on text files (each read whole as UTF-8; see [`train_tokenizer_on_corpus`]).
pub fn train_tokenizer(
    kind: TokenizerKind,
    files: &[PathBuf],
    vocab_size: usize,
    min_frequency: u64,
) -> Result<TextTokenizer, DataError> {
    if files.is_empty() {
        return Err(DataError::BadOption {
            option: "files",
            reason: "expected at least one text file to train the tokenizer on, found none".into(),
        });
    }
    let documents = files
        .iter()
        .map(|path| {
            Ok(TextDocument {
                path: path.clone(),
                text: read_text_file(path)?,
            })
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    train_tokenizer_on_corpus(kind, &TextCorpus { documents }, vocab_size, min_frequency)
}

/// Trains a tokenizer on a corpus, fed line by line (line endings kept).
///
/// * `Bpe` and `WordPiece` learn merges until the vocabulary has `vocab_size` tokens
///   (special tokens included), merging only pairs seen at least `min_frequency` times.
///   Byte-level BPE needs `vocab_size >= 261` (256 byte symbols + 5 special tokens).
/// * `Char` keeps every distinct character; `vocab_size` and `min_frequency` are ignored.
///
/// Special tokens come first (ids 0, 1, …): [`BPE_SPECIAL_TOKENS`],
/// [`WORDPIECE_SPECIAL_TOKENS`], [`CHAR_SPECIAL_TOKENS`]. Training is deterministic.
pub fn train_tokenizer_on_corpus(
    kind: TokenizerKind,
    corpus: &TextCorpus,
    vocab_size: usize,
    min_frequency: u64,
) -> Result<TextTokenizer, DataError> {
    let special_tokens = |names: &[&str]| -> Vec<AddedToken> {
        names
            .iter()
            .map(|&name| AddedToken::from(name, true))
            .collect()
    };
    let check_vocab_size = |minimum: usize, what: &str| {
        if vocab_size < minimum {
            return Err(DataError::BadOption {
                option: "vocab_size",
                reason: format!("expected at least {minimum} for {what}, found {vocab_size}"),
            });
        }
        Ok(())
    };
    let (mut tokenizer, mut trainer): (Tokenizer, TrainerWrapper) = match kind {
        TokenizerKind::Bpe => {
            let minimum = BYTE_SYMBOLS + BPE_SPECIAL_TOKENS.len();
            check_vocab_size(
                minimum,
                "byte-level BPE (256 byte symbols + 5 special tokens)",
            )?;
            // GPT-2 / RoBERTa: no prefix space, offsets trimmed, GPT-2's split regex.
            let byte_level = ByteLevel::new(false, true, true);
            let mut tokenizer = Tokenizer::new(BPE::default());
            tokenizer
                .with_pre_tokenizer(Some(byte_level))
                .with_decoder(Some(byte_level));
            let trainer = BpeTrainer::builder()
                .vocab_size(vocab_size)
                .min_frequency(min_frequency)
                .show_progress(false)
                .special_tokens(special_tokens(&BPE_SPECIAL_TOKENS))
                .initial_alphabet(ByteLevel::alphabet().into_iter().collect::<HashSet<char>>())
                .build();
            (tokenizer, trainer.into())
        }
        TokenizerKind::WordPiece => {
            check_vocab_size(
                WORDPIECE_SPECIAL_TOKENS.len() + 1,
                "WordPiece (5 special tokens + at least one piece)",
            )?;
            let mut tokenizer = Tokenizer::new(WordPiece::default());
            tokenizer
                .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
                .with_pre_tokenizer(Some(BertPreTokenizer))
                .with_decoder(Some(WordPieceDecoder::default()));
            let trainer = WordPieceTrainer::builder()
                .vocab_size(vocab_size)
                .min_frequency(min_frequency)
                .show_progress(false)
                .special_tokens(special_tokens(&WORDPIECE_SPECIAL_TOKENS))
                .build();
            (tokenizer, trainer.into())
        }
        TokenizerKind::Char => {
            let mut tokenizer = Tokenizer::new(WordLevel::default());
            tokenizer
                .with_pre_tokenizer(Some(FixedLength::new(1)))
                .with_decoder(Some(Fuse::new()));
            let trainer = WordLevelTrainer::builder()
                .vocab_size(usize::MAX)
                .min_frequency(0)
                .show_progress(false)
                .special_tokens(special_tokens(&CHAR_SPECIAL_TOKENS))
                .build()
                .map_err(|error| DataError::Tokenizer {
                    operation: "configure the character trainer".into(),
                    source: error.into(),
                })?;
            (tokenizer, trainer.into())
        }
    };
    let lines = corpus
        .documents
        .iter()
        .flat_map(|document| document.text.split_inclusive('\n'));
    tokenizer
        .train(&mut trainer, lines)
        .map_err(|source| DataError::Tokenizer {
            operation: format!(
                "train a {kind} tokenizer on {} documents",
                corpus.documents.len()
            ),
            source,
        })?;
    match kind {
        TokenizerKind::Bpe => {
            let processor = RobertaProcessing::new(
                special_token(&tokenizer, "</s>")?,
                special_token(&tokenizer, "<s>")?,
            )
            .add_prefix_space(false)
            .trim_offsets(true);
            tokenizer.with_post_processor(Some(processor));
        }
        TokenizerKind::WordPiece => {
            let processor = BertProcessing::new(
                special_token(&tokenizer, "[SEP]")?,
                special_token(&tokenizer, "[CLS]")?,
            );
            tokenizer.with_post_processor(Some(processor));
        }
        TokenizerKind::Char => {}
    }
    Ok(TextTokenizer::new(tokenizer))
}

/// `(token, id)` of a special token the trainer must have placed in the vocabulary.
fn special_token(tokenizer: &Tokenizer, token: &str) -> Result<(String, u32), DataError> {
    let id = tokenizer
        .token_to_id(token)
        .ok_or_else(|| DataError::Tokenizer {
            operation: format!("find the special token {token} after training"),
            source: "the trained vocabulary lacks it".into(),
        })?;
    Ok((token.to_owned(), id))
}

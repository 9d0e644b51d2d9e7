//! Training a [`TextTokenizer`] on a corpus: byte-level BPE (GPT-2 / RoBERTa), BERT-style
//! WordPiece, or one token per character, all with the `tokenizers` crate's trainers so the
//! result is a standard `tokenizer.json`.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

use ahash::AHashMap;
use compact_str::CompactString;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::{BpeTrainer, BPE};
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::fixed_length::FixedLength;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::processors::roberta::RobertaProcessing;
use tokenizers::{AddedToken, Tokenizer, Trainer};

use crate::error::DataError;
use crate::text::corpus::{no_text, LineReader, TextCorpus};
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

/// Trains a tokenizer on text files, as [`train_tokenizer_on_corpus`] on the corpus of
/// those files, but reading them a line at a time: memory holds the trainer's word counts,
/// not the text. A file that is not UTF-8, or empty, is the error naming it.
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
    train_tokenizer_streamed(kind, vocab_size, min_frequency, files.len(), |send| {
        for file in files {
            let mut reader = LineReader::open(file)?;
            let mut any_text = false;
            while let Some(line) = reader.next_line()? {
                any_text |= !line.trim().is_empty();
                if !send(line.to_string()) {
                    return Ok(());
                }
            }
            if !any_text {
                return Err(no_text(file));
            }
        }
        Ok(())
    })
}

/// Trains a tokenizer, as [`train_tokenizer_on_corpus`], on the lines `produce` sends (line
/// endings kept) from a thread of its own while the trainer takes them, a few thousand lines
/// ahead at most: memory holds the trainer's word counts, not the text. `send` returns false
/// once the trainer takes no more lines (it failed), and `produce` should then stop.
/// `documents` counts the documents for messages. An error of `produce` is the result.
pub fn train_tokenizer_streamed(
    kind: TokenizerKind,
    vocab_size: usize,
    min_frequency: u64,
    documents: usize,
    produce: impl FnOnce(&mut dyn FnMut(String) -> bool) -> Result<(), DataError> + Send,
) -> Result<TextTokenizer, DataError> {
    let (sender, receiver) = crossbeam_channel::bounded::<String>(4096);
    std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut send = |line: String| sender.send(line).is_ok();
            produce(&mut send)
        });
        let trained = train_on_lines(
            kind,
            receiver.into_iter(),
            vocab_size,
            min_frequency,
            documents,
        );
        match producer.join() {
            Ok(produced) => produced.and(trained),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
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
    let lines = corpus
        .documents
        .iter()
        .flat_map(|document| document.text.split_inclusive('\n'));
    train_on_lines(
        kind,
        lines,
        vocab_size,
        min_frequency,
        corpus.documents.len(),
    )
}

/// [`train_tokenizer_on_corpus`] on the lines of `documents` documents.
fn train_on_lines<S: AsRef<str> + Send>(
    kind: TokenizerKind,
    lines: impl Iterator<Item = S> + Send,
    vocab_size: usize,
    min_frequency: u64,
    documents: usize,
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
    let (mut tokenizer, mut trainer): (Tokenizer, Training) = match kind {
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
            (tokenizer, Training::Library(trainer.into()))
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
            let trainer = SeededWordPieceTrainer::new(
                vocab_size,
                min_frequency,
                special_tokens(&WORDPIECE_SPECIAL_TOKENS),
            );
            (tokenizer, Training::WordPiece(trainer))
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
            (tokenizer, Training::Library(trainer.into()))
        }
    };
    let trained = match &mut trainer {
        Training::Library(trainer) => tokenizer.train(trainer, lines).map(|_| ()),
        Training::WordPiece(trainer) => tokenizer.train(trainer, lines).map(|_| ()),
    };
    trained.map_err(|source| DataError::Tokenizer {
        operation: format!("train a {kind} tokenizer on {documents} documents"),
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

/// The trainer of each tokenizer kind.
enum Training {
    Library(TrainerWrapper),
    WordPiece(SeededWordPieceTrainer),
}

/// The library's WordPiece training (its BPE trainer with the `##` continuation prefix, then
/// `WordPiece::from_bpe`), fed through a word-count map with fixed hash seeds. The library's
/// own feed counts words into a map seeded at random per process, and its trainer numbers
/// the `##` pieces in that map's order, which also breaks ties between merges: two runs of
/// one config trained different vocabularies (found by the kill harness; tokenizers issue
/// #1794). Counted in text order into a fixed-seed map, the order and the vocabulary are the
/// same in every run.
struct SeededWordPieceTrainer {
    bpe: BpeTrainer,
    words: AHashMap<CompactString, u64>,
}

impl SeededWordPieceTrainer {
    fn new(vocab_size: usize, min_frequency: u64, special_tokens: Vec<AddedToken>) -> Self {
        let bpe = BpeTrainer::builder()
            .vocab_size(vocab_size)
            .min_frequency(min_frequency)
            .show_progress(false)
            .special_tokens(special_tokens)
            .continuing_subword_prefix("##".into())
            .build();
        SeededWordPieceTrainer {
            bpe,
            words: AHashMap::with_hasher(ahash::RandomState::with_seeds(1, 2, 3, 4)),
        }
    }
}

impl Trainer for SeededWordPieceTrainer {
    type Model = ModelWrapper;

    fn should_show_progress(&self) -> bool {
        false
    }

    fn train(&self, model: &mut ModelWrapper) -> tokenizers::Result<Vec<AddedToken>> {
        let mut bpe = BPE::default();
        let special_tokens = self.bpe.do_train(&self.words, &mut bpe)?;
        *model = WordPiece::from_bpe(&bpe).into();
        Ok(special_tokens)
    }

    fn feed<I, S, F>(&mut self, iterator: I, process: F) -> tokenizers::Result<()>
    where
        I: Iterator<Item = S> + Send,
        S: AsRef<str> + Send,
        F: Fn(&str) -> tokenizers::Result<Vec<String>> + Sync,
    {
        for sequence in iterator {
            for word in process(sequence.as_ref())? {
                *self.words.entry(CompactString::from(word)).or_default() += 1;
            }
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::corpus::TextDocument;

    /// The opening of Pride and Prejudice (public domain).
    const TEXT: &str = "It is a truth universally acknowledged, that a single man in possession \
        of a good fortune, must be in want of a wife.\nHowever little known the feelings or views \
        of such a man may be on his first entering a neighbourhood, this truth is so well fixed in \
        the minds of the surrounding families, that he is considered the rightful property of some \
        one or other of their daughters.\n\"My dear Mr. Bennet,\" said his lady to him one day, \
        \"have you heard that Netherfield Park is let at last?\"\nMr. Bennet replied that he had \
        not.\n\"But it is,\" returned she; \"for Mrs. Long has just been here, and she told me all \
        about it.\"\n";

    /// Regression: the library's WordPiece feed counted words into a randomly seeded map, so
    /// two trainings of one corpus (in one process, or two) gave different vocabularies.
    #[test]
    fn wordpiece_training_gives_the_same_vocabulary_every_time() {
        let corpus = TextCorpus {
            documents: vec![TextDocument {
                path: PathBuf::from("pride.txt"),
                text: TEXT.repeat(3),
            }],
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let vocabulary = || {
            train_tokenizer_on_corpus(TokenizerKind::WordPiece, &corpus, 150, 1)
                .unwrap()
                .save(&path)
                .unwrap();
            std::fs::read_to_string(&path).unwrap()
        };
        let first = vocabulary();
        assert!(first.contains("\"##"), "{first}");
        for _ in 0..4 {
            assert_eq!(vocabulary(), first);
        }
    }
}

//! Text: unlabeled corpora, labeled TSV/JSONL files, tokenizers (loading any
//! `tokenizer.json`, training BPE / WordPiece / character ones), block packing, a run's
//! tokenizer (`RUN/tokenizer.json`) and its tokenized splits.

pub mod blocks;
pub mod corpus;
pub mod labeled;
pub mod run_tokenizer;
pub mod texts_to_embed;
pub mod token_splits;
pub mod tokenizer;
pub mod tokenizer_training;

pub use blocks::pack_blocks;
pub use corpus::{
    for_each_piece, list_text_files, load_text_corpus, read_text_file, LineReader, TextCorpus,
    TextDocument, PIECE_BYTES, TEXT_EXTENSION,
};
pub use labeled::{
    load_labeled_text, load_labeled_text_splits, LabeledText, LabeledTextSplits, TSV_HEADER,
};
pub use run_tokenizer::{resolve_tokenizer, RUN_TOKENIZER};
pub use texts_to_embed::{read_texts_to_embed, TextToEmbed};
pub use token_splits::load_text_splits;
pub use tokenizer::TextTokenizer;
pub use tokenizer_training::{
    train_tokenizer, train_tokenizer_on_corpus, TokenizerKind, BPE_SPECIAL_TOKENS,
    CHAR_SPECIAL_TOKENS, WORDPIECE_SPECIAL_TOKENS,
};

//! `pretext tokenizer train`: train a BPE, WordPiece or character tokenizer on a text
//! corpus and write it as a Hugging Face `tokenizer.json`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use pretext_data::{load_text_corpus, train_tokenizer_on_corpus, TokenizerKind};

/// The characters of the first line shown as an example encoding.
const EXAMPLE_CHARS: usize = 100;

#[derive(Debug, clap::Args)]
pub struct TokenizerTrainArgs {
    /// A text file, or a folder of .txt files (searched recursively); one document per file.
    #[arg(long, value_name = "PATH")]
    pub corpus: PathBuf,
    /// bpe: byte-level BPE (GPT-2/RoBERTa, <s> … </s>); wordpiece: BERT-style, lowercased
    /// ([CLS] … [SEP]); char: one token per distinct character.
    #[arg(long, value_enum)]
    pub kind: TokenizerKindArg,
    /// Vocabulary size, special tokens included (ignored for char).
    #[arg(long, value_name = "N", default_value_t = 8000)]
    pub vocab_size: usize,
    /// Merge only pairs seen at least this many times (ignored for char).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub min_frequency: u64,
    /// Where to write the tokenizer.json.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TokenizerKindArg {
    Bpe,
    Wordpiece,
    Char,
}

impl From<TokenizerKindArg> for TokenizerKind {
    fn from(kind: TokenizerKindArg) -> Self {
        match kind {
            TokenizerKindArg::Bpe => TokenizerKind::Bpe,
            TokenizerKindArg::Wordpiece => TokenizerKind::WordPiece,
            TokenizerKindArg::Char => TokenizerKind::Char,
        }
    }
}

pub fn train(args: &TokenizerTrainArgs) -> anyhow::Result<()> {
    let kind = TokenizerKind::from(args.kind);
    let start = Instant::now();
    let corpus = load_text_corpus(&args.corpus).context("loading the corpus")?;
    let tokenizer = train_tokenizer_on_corpus(kind, &corpus, args.vocab_size, args.min_frequency)
        .with_context(|| format!("training a {kind} tokenizer"))?;
    let seconds = start.elapsed().as_secs_f64();
    tokenizer.save(&args.out)?;
    let files = match corpus.len() {
        1 => "1 file".to_owned(),
        count => format!("{count} files"),
    };
    println!(
        "trained a {kind} tokenizer with {} tokens on {files} ({:.1} MB) in {seconds:.1} s -> {}",
        tokenizer.vocab_size(),
        corpus.total_bytes() as f64 / 1e6,
        args.out.display()
    );
    if let Some(line) = corpus.lines().find(|line| !line.trim().is_empty()) {
        let example: String = line.chars().take(EXAMPLE_CHARS).collect();
        let ids = tokenizer.encode(&example)?;
        let tokens: Vec<String> = ids
            .iter()
            .map(|&id| tokenizer.inner().id_to_token(id).unwrap_or_default())
            .collect();
        println!("example: {example:?}");
        println!("  ids:    {ids:?}");
        println!("  tokens: {tokens:?}");
    }
    Ok(())
}

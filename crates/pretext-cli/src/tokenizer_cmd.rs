//! `pretext tokenizer train`: train a BPE, WordPiece or character tokenizer on a text
//! corpus and write it as a Hugging Face `tokenizer.json`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use pretext_data::text::LineReader;
use pretext_data::{list_text_files, train_tokenizer, TokenizerKind};

/// The first line of `files` that is not blank, without its line break.
fn first_line_of_text(files: &[PathBuf]) -> anyhow::Result<Option<String>> {
    for file in files {
        let mut reader = LineReader::open(file)?;
        while let Some(line) = reader.next_line()? {
            if !line.trim().is_empty() {
                let line = line.strip_suffix('\n').unwrap_or(line);
                return Ok(Some(line.strip_suffix('\r').unwrap_or(line).to_string()));
            }
        }
    }
    Ok(None)
}

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
    // The corpus is streamed a line at a time: it may be larger than memory.
    let files = list_text_files(&args.corpus).context("loading the corpus")?;
    let tokenizer = train_tokenizer(kind, &files, args.vocab_size, args.min_frequency)
        .with_context(|| format!("training a {kind} tokenizer"))?;
    let seconds = start.elapsed().as_secs_f64();
    tokenizer.save(&args.out)?;
    let bytes: u64 = files
        .iter()
        .map(|file| std::fs::metadata(file).map_or(0, |metadata| metadata.len()))
        .sum();
    let count = match files.len() {
        1 => "1 file".to_owned(),
        count => format!("{count} files"),
    };
    println!(
        "trained a {kind} tokenizer with {} tokens on {count} ({:.1} MB) in {seconds:.1} s -> {}",
        tokenizer.vocab_size(),
        bytes as f64 / 1e6,
        args.out.display()
    );
    if let Some(line) = first_line_of_text(&files)? {
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

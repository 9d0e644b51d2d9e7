//! Labeled text (TSV, JSONL), plain text and tokenizer seeds cut from the Austen data.

use std::path::{Path, PathBuf};

use pretext_data::text::{TextCorpus, TextDocument};
use pretext_data::{train_tokenizer_on_corpus, TokenizerKind};

use super::writer::{read_text, Corpus};

/// Labeled Austen chunks (TSV, and the same rows as JSONL), two excerpts of the novels,
/// and tokenizers trained on those excerpts.
pub(super) fn text_seeds(shared: &Path, corpus: &mut Corpus) -> Result<(), String> {
    let austen = shared.join("text/austen");
    // The first `per_label` rows of every book, in file order: every class is present.
    let rows = |file: &str, per_label: usize| -> Result<Vec<(String, String)>, String> {
        let text = read_text(&austen.join(file))?;
        let mut counts = std::collections::BTreeMap::new();
        let mut rows = Vec::new();
        for line in text.lines().skip(1) {
            let (label, text) = line
                .split_once('\t')
                .ok_or_else(|| format!("{file}: {line:?} has no tab"))?;
            let count = counts.entry(label.to_string()).or_insert(0);
            if *count < per_label {
                *count += 1;
                rows.push((label.to_string(), text.to_string()));
            }
        }
        Ok(rows)
    };
    let train = rows("austen_train.tsv", 7)?;
    let test = rows("austen_test.tsv", 3)?;
    let tsv = |rows: &[(String, String)]| {
        let mut text = String::from("label\ttext\n");
        for (label, row) in rows {
            text.push_str(&format!("{label}\t{row}\n"));
        }
        text
    };
    corpus.write("tsv", "austen_train-42.tsv", tsv(&train).as_bytes())?;
    corpus.write("tsv", "austen_test-18.tsv", tsv(&test).as_bytes())?;
    let mut books: Vec<&str> = Vec::new();
    for (label, _) in &train {
        if !books.contains(&label.as_str()) {
            books.push(label);
        }
    }
    let jsonl = |rows: &[(String, String)], integer_labels: bool| -> String {
        rows.iter()
            .map(|(label, text)| {
                let label = if integer_labels {
                    serde_json::json!(books.iter().position(|book| book == label))
                } else {
                    serde_json::json!(label)
                };
                serde_json::json!({ "text": text, "label": label }).to_string() + "\n"
            })
            .collect()
    };
    corpus.write(
        "jsonl",
        "austen_train-42.jsonl",
        jsonl(&train, false).as_bytes(),
    )?;
    corpus.write(
        "jsonl",
        "austen_test-18-integer-labels.jsonl",
        jsonl(&test, true).as_bytes(),
    )?;

    let excerpt = |file: &str, first_line: usize, lines: usize| -> Result<String, String> {
        let text = read_text(&austen.join(file))?;
        Ok(text
            .lines()
            .skip(first_line - 1)
            .take(lines)
            .map(|line| format!("{line}\n"))
            .collect())
    };
    let documents = vec![
        (
            "pride_and_prejudice-1.txt",
            excerpt("pride_and_prejudice.txt", 1, 60)?,
        ),
        // The lines around the novel's first "£".
        (
            "mansfield_park-15200.txt",
            excerpt("mansfield_park.txt", 15200, 40)?,
        ),
    ];
    for (name, text) in &documents {
        corpus.write("text", name, text.as_bytes())?;
    }
    let training_corpus = TextCorpus {
        documents: documents
            .into_iter()
            .map(|(name, text)| TextDocument {
                path: PathBuf::from(name),
                text,
            })
            .collect(),
    };
    for (kind, vocab_size) in [
        (TokenizerKind::Bpe, 300),
        (TokenizerKind::WordPiece, 200),
        (TokenizerKind::Char, 0),
    ] {
        let tokenizer = train_tokenizer_on_corpus(kind, &training_corpus, vocab_size, 2)
            .map_err(|error| format!("training a {kind} tokenizer: {error}"))?;
        let path = corpus.path("tokenizer", &format!("austen-{kind}.json"))?;
        tokenizer
            .save(&path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        corpus.written.push(path);
    }
    Ok(())
}

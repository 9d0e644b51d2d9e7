//! Text corpora, labeled files and tokenizers on the real Austen data (skipped with a note
//! when `../shared/data` is absent), and every bad-input error on small temporary files.

use std::path::{Path, PathBuf};
use std::time::Instant;

use pretext_data::text::blocks::pack_corpus_blocks;
use pretext_data::text::{for_each_piece, read_text_file};
use pretext_data::{
    load_labeled_text, load_labeled_text_splits, load_text_corpus, pack_blocks, train_tokenizer,
    DataError, TextTokenizer, TokenizerKind,
};

const OPENING: &str = "It is a truth universally acknowledged";

const BOOKS: [&str; 6] = [
    "emma",
    "mansfield_park",
    "northanger_abbey",
    "persuasion",
    "pride_and_prejudice",
    "sense_and_sensibility",
];

fn austen() -> Option<PathBuf> {
    pretext_data::test_data::shared_data("text/austen")
}

fn novels(austen: &Path) -> Vec<PathBuf> {
    BOOKS
        .iter()
        .map(|book| austen.join(format!("{book}.txt")))
        .collect()
}

fn class_counts(labels: &[u16], num_classes: usize) -> Vec<usize> {
    let mut counts = vec![0; num_classes];
    for &label in labels {
        counts[usize::from(label)] += 1;
    }
    counts
}

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// Saves `tokenizer`, reloads it and checks the copy encodes `text` and names its special
/// tokens exactly as the original.
fn assert_save_load_round_trip(tokenizer: &TextTokenizer, text: &str) -> TextTokenizer {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokenizer.json");
    tokenizer.save(&file).unwrap();
    let reloaded = TextTokenizer::from_file(&file).unwrap();
    assert_eq!(
        reloaded.encode(text).unwrap(),
        tokenizer.encode(text).unwrap()
    );
    assert_eq!(reloaded.special_ids(), tokenizer.special_ids());
    assert_eq!(reloaded.vocab_size(), tokenizer.vocab_size());
    reloaded
}

#[test]
fn austen_folder_is_six_novels_in_path_order() {
    let Some(austen) = austen() else { return };
    let corpus = load_text_corpus(&austen).unwrap();
    assert_eq!(corpus.paths(), novels(&austen));
    // `wc -l` of the six files: every file ends with a newline.
    assert_eq!(corpus.lines().count(), 73_422);
    assert!(corpus.documents[4].text.contains(OPENING));
}

#[test]
fn austen_train_and_test_share_six_alphabetical_classes() {
    let Some(austen) = austen() else { return };
    // `wc -l` gives 13242 and 3309 lines: one header line each, then the rows the data
    // README counts.
    let splits = load_labeled_text_splits(
        &austen.join("austen_train.tsv"),
        &austen.join("austen_test.tsv"),
    )
    .unwrap();
    assert_eq!(splits.train.len(), 13_241);
    assert_eq!(splits.test.len(), 3_308);
    assert_eq!(splits.train.class_names, BOOKS);
    assert_eq!(splits.test.class_names, BOOKS);
    assert_eq!(
        class_counts(&splits.train.labels, 6),
        [2884, 3008, 1442, 1554, 2187, 2166]
    );
    assert_eq!(
        class_counts(&splits.test.labels, 6),
        [721, 752, 360, 388, 546, 541]
    );
    assert!(splits.train.texts[0].starts_with("The family of Dashwood"));
    assert_eq!(splits.train.labels[0], 5);

    let all = load_labeled_text(&austen.join("austen_sentences.tsv")).unwrap();
    assert_eq!(all.len(), 16_549);
    assert_eq!(all.class_names, BOOKS);
}

#[test]
fn wordpiece_on_austen_is_bert_style_and_survives_save_and_load() {
    let Some(austen) = austen() else { return };
    let start = Instant::now();
    let tokenizer = train_tokenizer(TokenizerKind::WordPiece, &novels(&austen), 2000, 2).unwrap();
    eprintln!("wordpiece, 2000 tokens: trained in {:.1?}", start.elapsed());

    assert_eq!(tokenizer.vocab_size(), 2000);
    let ids = [
        tokenizer.pad_id(),
        tokenizer.unk_id(),
        tokenizer.bos_id(),
        tokenizer.eos_id(),
        tokenizer.mask_id(),
    ];
    assert_eq!(ids, [0, 1, 2, 3, 4].map(Some));
    assert_eq!(tokenizer.token_to_id("[CLS]"), Some(2));
    assert_eq!(tokenizer.token_to_id("[MASK]"), Some(4));
    assert_eq!(tokenizer.special_ids(), [0, 1, 2, 3, 4]);

    let encoded = tokenizer.encode(OPENING).unwrap();
    assert_eq!(encoded.first(), Some(&2), "[CLS] first: {encoded:?}");
    assert_eq!(encoded.last(), Some(&3), "[SEP] last: {encoded:?}");
    assert!(encoded[1..encoded.len() - 1].iter().all(|&id| id > 4));
    assert_eq!(
        tokenizer.encode_plain(OPENING).unwrap(),
        encoded[1..encoded.len() - 1]
    );
    // Lowercased, and common words are whole tokens after training on the novels.
    assert_eq!(
        tokenizer.decode(&encoded).unwrap(),
        "it is a truth universally acknowledged"
    );
    assert!(tokenizer.token_to_id("truth").is_some());

    // A BERT-style tokenizer.json written and read back, as a real BERT file would be.
    let reloaded = assert_save_load_round_trip(&tokenizer, OPENING);
    assert_eq!(reloaded.mask_id(), Some(4));
    let batch = reloaded.encode_batch(&[OPENING, "Mr. Darcy"]).unwrap();
    assert_eq!(batch[0], encoded);
    assert_eq!(batch[1].len(), tokenizer.encode("Mr. Darcy").unwrap().len());
}

#[test]
fn byte_level_bpe_on_austen_round_trips_text_exactly() {
    let Some(austen) = austen() else { return };
    let start = Instant::now();
    let tokenizer = train_tokenizer(TokenizerKind::Bpe, &novels(&austen), 2000, 2).unwrap();
    eprintln!("bpe, 2000 tokens: trained in {:.1?}", start.elapsed());

    assert_eq!(tokenizer.vocab_size(), 2000);
    assert_eq!(tokenizer.pad_id(), Some(0));
    assert_eq!(tokenizer.unk_id(), Some(1));
    assert_eq!(tokenizer.token_to_id("<s>"), Some(2));
    assert_eq!(tokenizer.token_to_id("</s>"), Some(3));
    assert_eq!(tokenizer.mask_id(), Some(4));
    assert_eq!(tokenizer.special_ids(), [0, 1, 2, 3, 4]);

    let encoded = tokenizer.encode(OPENING).unwrap();
    assert_eq!(encoded.first(), Some(&2), "<s> first: {encoded:?}");
    assert_eq!(encoded.last(), Some(&3), "</s> last: {encoded:?}");
    assert_eq!(tokenizer.decode(&encoded).unwrap(), OPENING);
    // Byte level: text the corpus never had (accents, symbols, newlines) survives too.
    let unusual = "Café — £5 für Ölmühle\n\tdone ✓";
    assert_eq!(
        tokenizer
            .decode(&tokenizer.encode_plain(unusual).unwrap())
            .unwrap(),
        unusual
    );
    assert_save_load_round_trip(&tokenizer, unusual);
}

#[test]
fn char_tokenizer_round_trips_a_pride_and_prejudice_paragraph_exactly() {
    let Some(austen) = austen() else { return };
    let book = austen.join("pride_and_prejudice.txt");
    let tokenizer =
        train_tokenizer(TokenizerKind::Char, std::slice::from_ref(&book), 0, 2).unwrap();
    let text = std::fs::read_to_string(&book).unwrap();
    let paragraph = text
        .split("\n\n")
        .find(|paragraph| paragraph.starts_with("However little known"))
        .unwrap();
    assert_eq!(paragraph.lines().count(), 4);

    let ids = tokenizer.encode(paragraph).unwrap();
    assert_eq!(ids.len(), paragraph.chars().count());
    assert_eq!(tokenizer.decode(&ids).unwrap(), paragraph);
    let newline = tokenizer.token_to_id("\n").unwrap();
    assert_eq!(ids.iter().filter(|&&id| id == newline).count(), 3);

    let mut distinct: Vec<char> = text.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(tokenizer.vocab_size(), distinct.len() + 3);
    assert_eq!(
        [tokenizer.pad_id(), tokenizer.unk_id(), tokenizer.eos_id()],
        [Some(0), Some(1), Some(2)]
    );
    assert_eq!(tokenizer.special_ids(), [0, 1, 2]);
    assert_eq!(tokenizer.encode("€").unwrap(), [1], "unknown character");

    let reloaded = assert_save_load_round_trip(&tokenizer, paragraph);
    assert_eq!(reloaded.decode(&ids).unwrap(), paragraph);
}

#[test]
fn packed_documents_are_full_blocks_with_separators_between_and_no_tail() {
    let documents = vec![vec![10, 11, 12, 13, 14], vec![20, 21], vec![30, 31, 32]];
    // Stream: 10 11 12 13 14 | 2 | 20 21 | 2 | 30 31 32 (12 ids).
    assert_eq!(
        pack_blocks(&documents, 5, Some(2)),
        [vec![10, 11, 12, 13, 14], vec![2, 20, 21, 2, 30]],
        "the tail [31, 32] is dropped"
    );
    assert_eq!(
        pack_blocks(&documents, 4, None),
        [vec![10, 11, 12, 13], vec![14, 20, 21, 30]]
    );
}

/// Streaming a corpus in pieces encodes it exactly as whole documents do: every tokenizer
/// kind, LF and CRLF line breaks (after a byte-order mark), pieces of 4 KiB (each document
/// cut a dozen times); and the packed stream, in memory or in a mapped file, is
/// `pack_blocks` of the whole documents.
#[test]
fn a_corpus_streamed_in_pieces_packs_the_same_blocks_as_whole_documents() {
    let Some(austen) = austen() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(austen.join("persuasion.txt")).unwrap();
    let head: String = text.chars().take(60_000).collect();
    let files = [
        write(dir.path(), "lf.txt", head.as_bytes()),
        write(
            dir.path(),
            "crlf.txt",
            format!("\u{feff}{}", head.replace('\n', "\r\n")).as_bytes(),
        ),
    ];
    for kind in [
        TokenizerKind::WordPiece,
        TokenizerKind::Bpe,
        TokenizerKind::Char,
    ] {
        let tokenizer = train_tokenizer(kind, &files, 800, 2).unwrap();
        let mut whole = Vec::new();
        for file in &files {
            let ids = tokenizer
                .encode_plain(&read_text_file(file).unwrap())
                .unwrap();
            let mut pieces = 0;
            let mut streamed = Vec::new();
            for_each_piece(file, 4096, |piece| {
                pieces += 1;
                streamed.extend(tokenizer.encode_plain(piece)?);
                Ok(())
            })
            .unwrap();
            assert!(pieces > 10, "{pieces}");
            assert!(streamed == ids, "{kind}: {} differs", file.display());
            whole.push(ids);
        }
        let expected = pack_blocks(&whole, 64, Some(3)).concat();
        for limit in [u64::MAX, 0] {
            let (stream, blocks) =
                pack_corpus_blocks(&files, &tokenizer, 64, Some(3), limit).unwrap();
            assert_eq!(stream.is_mapped(), limit == 0);
            assert!(
                stream[..blocks * 64] == expected[..],
                "{kind}, limit {limit}"
            );
        }
    }
}

#[test]
fn invalid_utf8_on_line_3_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "broken.txt", b"one\ntwo\nth\xffree\n");
    let error = load_text_corpus(&file).unwrap_err();
    assert!(
        matches!(error, DataError::InvalidUtf8 { line: 3, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("broken.txt") && message.contains("line 3"),
        "{message}"
    );

    let labeled = write(dir.path(), "broken.tsv", b"a\tone\nb\ttwo\nc\tth\xffree\n");
    let message = load_labeled_text(&labeled).unwrap_err().to_string();
    assert!(
        message.contains("broken.tsv") && message.contains("line 3"),
        "{message}"
    );
}

#[test]
fn missing_tab_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "train.tsv",
        b"label\ttext\nemma\tFirst row.\nno tab on this line\n",
    );
    let error = load_labeled_text(&file).unwrap_err();
    assert!(
        matches!(error, DataError::BadRecord { line: 3, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("train.tsv") && message.contains("line 3"),
        "{message}"
    );
    assert!(message.contains("label<TAB>text"), "{message}");
}

#[test]
fn empty_files_are_no_text_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["empty.txt", "empty.tsv", "empty.jsonl"] {
        let file = write(dir.path(), name, b"");
        let error = if name.ends_with(".txt") {
            load_text_corpus(&file).unwrap_err()
        } else {
            load_labeled_text(&file).unwrap_err()
        };
        assert!(matches!(error, DataError::NoText { .. }), "{error:?}");
        assert!(error.to_string().contains(name), "{error}");
    }
    // One empty document in a folder is named, not silently skipped.
    let folder = dir.path().join("corpus");
    std::fs::create_dir(&folder).unwrap();
    write(&folder, "a.txt", b"text");
    write(&folder, "b.txt", b"\n  \n");
    let error = load_text_corpus(&folder).unwrap_err();
    assert!(error.to_string().contains("b.txt"), "{error}");
}

#[test]
fn test_label_unknown_to_train_names_the_test_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(dir.path(), "train.tsv", b"emma\tA.\npersuasion\tB.\n");
    let test = write(
        dir.path(),
        "test.jsonl",
        b"{\"text\": \"C.\", \"label\": \"emma\"}\n{\"text\": \"D.\", \"label\": \"dracula\"}\n",
    );
    let error = load_labeled_text_splits(&train, &test).unwrap_err();
    assert!(
        matches!(error, DataError::UnknownLabel { line: 2, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    for part in [
        "test.jsonl",
        "line 2",
        "\"dracula\"",
        "train.tsv",
        "emma, persuasion",
    ] {
        assert!(message.contains(part), "{part} missing from: {message}");
    }
}

#[test]
fn bad_json_line_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "data.jsonl",
        b"{\"text\": \"fine\", \"label\": 0}\n\n{\"text\": \"cut off\", \"label\"\n",
    );
    let error = load_labeled_text(&file).unwrap_err();
    assert!(
        matches!(error, DataError::BadJson { line: 3, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("data.jsonl") && message.contains("line 3"),
        "{message}"
    );
}

#[test]
fn unreadable_or_foreign_tokenizer_files_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = TextTokenizer::from_file(&dir.path().join("missing.json")).unwrap_err();
    assert!(matches!(missing, DataError::Io { .. }), "{missing:?}");
    let file = write(dir.path(), "vocab.json", b"{\"the\": 0}");
    let error = TextTokenizer::from_file(&file).unwrap_err();
    assert!(
        matches!(error, DataError::TokenizerFile { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("vocab.json"), "{error}");
}

#[test]
fn too_small_bpe_vocabulary_is_rejected_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.txt", b"some text\n");
    let error = train_tokenizer(TokenizerKind::Bpe, &[file], 100, 2).unwrap_err();
    assert!(
        matches!(
            error,
            DataError::BadOption {
                option: "vocab_size",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("261"), "{error}");
}

//! Data helpers shared by the integration tests (`cli.rs`, `kill_harness.rs`): real data cut
//! small, from the embedded Fashion-MNIST subset or from ../shared/data when it is there.

// Each test binary uses its own share of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

// IDX files (http://yann.lecun.com/exdb/mnist/): big-endian u32 magic, counts, then bytes.

pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

/// `relative` under ../shared/data, or None with a note where it is absent (a failure under
/// `PRETEXT_REQUIRE_DATA=1`: see [`pretext_data::test_data`]).
pub fn shared_data(relative: &str) -> Option<PathBuf> {
    pretext_data::test_data::shared_data(relative)
}

/// The first `rows` data lines of a labeled Austen TSV (with its header), evenly spaced so
/// that all six books (in book order in the file) appear, or None (with a note) when
/// ../shared/data is absent.
pub fn austen_slice(name: &str, rows: usize, out: &Path) -> Option<PathBuf> {
    let source = shared_data(&format!("text/austen/{name}"))?;
    let text = std::fs::read_to_string(&source).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let all: Vec<&str> = lines.collect();
    let kept: Vec<&str> = all
        .iter()
        .copied()
        .step_by(all.len() / rows)
        .take(rows)
        .collect();
    let path = out.join(name);
    std::fs::write(&path, format!("{header}\n{}\n", kept.join("\n"))).unwrap();
    Some(path)
}

/// The first `train` and `test` images of the embedded Fashion-MNIST subset as an IDX folder
/// (real images, small enough for a study in seconds).
pub fn embedded_slice(dir: &Path, train: usize, test: usize) -> PathBuf {
    let splits = pretext_data::embedded_fashion_mnist().unwrap();
    let data = dir.join("fashion-slice");
    std::fs::create_dir(&data).unwrap();
    for (prefix, set, count) in [
        ("train", &splits.train, train),
        ("t10k", &splits.test, test),
    ] {
        let side = set.height as u32;
        let mut images: Vec<u8> = [IDX_IMAGES_MAGIC, count as u32, side, side]
            .iter()
            .flat_map(|word| word.to_be_bytes())
            .collect();
        images.extend(&set.pixels[..count * set.height * set.width]);
        let mut labels: Vec<u8> = [IDX_LABELS_MAGIC, count as u32]
            .iter()
            .flat_map(|word| word.to_be_bytes())
            .collect();
        let truth = set.labels.as_ref().unwrap();
        labels.extend(truth[..count].iter().map(|&label| label as u8));
        std::fs::write(data.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(data.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
    data
}

/// `pretrain` arguments for a one-layer transformer on the labeled texts `train` (held out:
/// `test`) with `tokenizer`: 600 tokens, sequences of 32, small enough for a few CPU steps.
pub fn small_text_run(train: &Path, test: &Path, tokenizer: &str) -> Vec<String> {
    let path = |path: &Path| path.to_str().expect("a UTF-8 path").to_string();
    [
        "--backbone".to_string(),
        "transformer".into(),
        "--data".into(),
        path(train),
        "--set".into(),
        format!("data.test_path=\"{}\"", path(test)),
        "--set".into(),
        format!("data.tokenizer=\"{tokenizer}\""),
        "--set".into(),
        "data.vocab_size=600".into(),
        "--set".into(),
        "data.seq_len=32".into(),
        "--set".into(),
        "backbone.transformer.layers=1".into(),
    ]
    .into()
}

/// Keyword clips from ../shared/data/audio/spoken-words, 5 per word for training and 2 for
/// testing, as a labels.csv of absolute paths in `dir/keywords`; None (with a note) where the
/// data is absent.
pub fn keyword_clips(dir: &Path) -> Option<PathBuf> {
    let words = shared_data("audio/spoken-words")?;
    let labels = std::fs::read_to_string(words.join("labels.csv")).unwrap();
    let mut per_split = std::collections::BTreeMap::new();
    let mut rows = vec!["file,label,split".to_string()];
    for line in labels.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let count = per_split.entry((fields[1], fields[2])).or_insert(0);
        if *count < if fields[2] == "train" { 5 } else { 2 } {
            *count += 1;
            rows.push(format!(
                "{},{},{}",
                words.join(fields[0]).display(),
                fields[1],
                fields[2]
            ));
        }
    }
    let data = dir.join("keywords");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("labels.csv"), rows.join("\n") + "\n").unwrap();
    Some(data)
}

/// What one invocation of the binary did.
pub struct Outcome {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `pretext ARGS` with no terminal (stdin null, output captured) and a fixed help width,
/// so the output does not depend on who runs the tests where.
pub fn pretext(args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_pretext"))
        .args(args)
        .env("COLUMNS", "100")
        .env_remove("LINES")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("the pretext binary starts");
    Outcome {
        success: output.status.success(),
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// A path as a command-line argument (temporary paths are UTF-8 on the machines we test on).
pub fn arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Asserts a clean failure: exit code 1 (not a crash or a signal), no panic, and stderr
/// containing every one of `needles`.
pub fn assert_fails_naming(outcome: &Outcome, needles: &[&str]) {
    assert!(
        !outcome.success,
        "expected a failure, got success\nstdout:\n{}\nstderr:\n{}",
        outcome.stdout, outcome.stderr
    );
    assert_eq!(
        outcome.code,
        Some(1),
        "expected exit code 1 (an error, not a crash)\nstderr:\n{}",
        outcome.stderr
    );
    assert!(
        !outcome.stderr.contains("panicked"),
        "panicked instead of reporting an error:\n{}",
        outcome.stderr
    );
    for needle in needles {
        assert!(
            outcome.stderr.contains(needle),
            "stderr does not mention {needle:?}:\n{}",
            outcome.stderr
        );
    }
}

pub fn assert_succeeds(outcome: &Outcome, what: &str) {
    assert!(
        outcome.success,
        "{what} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        outcome.code, outcome.stdout, outcome.stderr
    );
}

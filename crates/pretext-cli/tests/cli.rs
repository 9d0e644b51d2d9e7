//! End-to-end tests of the `pretext` binary: help and default-config snapshots, config
//! layering, errors on bad input (they name the file and the problem, never panic, never touch
//! the run directory), and one short real run through pretrain, probe, embed and resume.
//!
//! Snapshots live in `tests/snapshots/`; after an intended change to the CLI's text, review
//! and accept them with `INSTA_UPDATE=always cargo test -p pretext-cli --test cli`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use toml::{Table, Value};

mod common;
use common::{
    arg, assert_fails_naming, assert_succeeds, austen_slice, embedded_slice, keyword_clips,
    pretext, shared_data, small_text_run, Outcome, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};

/// Every file under `dir` (relative path -> bytes), to check a folder was left untouched.
fn folder_contents(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                into.insert(relative.join(""), Vec::new());
                walk(root, &path, into);
            } else {
                into.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut contents = BTreeMap::new();
    walk(dir, dir, &mut contents);
    contents
}

fn parse_toml(text: &str) -> Table {
    text.parse::<Table>()
        .unwrap_or_else(|error| panic!("not valid TOML ({error}):\n{text}"))
}

/// The default config as a table, from `pretext pretrain --print-config`.
fn default_config() -> Table {
    let outcome = pretext(&["pretrain", "--print-config"]);
    assert_succeeds(&outcome, "pretrain --print-config");
    parse_toml(&outcome.stdout)
}

fn section<'a>(table: &'a mut Table, name: &str) -> &'a mut Table {
    table
        .get_mut(name)
        .and_then(Value::as_table_mut)
        .unwrap_or_else(|| panic!("config has no [{name}] section"))
}

const SECTIONS: [&str; 7] = [
    "data",
    "backbone",
    "method",
    "views",
    "optimizer",
    "train",
    "health",
];

// IDX files (http://yann.lecun.com/exdb/mnist/): big-endian u32 magic, counts, then bytes.

/// An IDX images file whose header says `count` images of `rows`x`cols` but that holds the
/// pixels of only `present` images.
fn idx_images(magic: u32, count: u32, rows: u32, cols: u32, present: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = [magic, count, rows, cols]
        .iter()
        .flat_map(|word| word.to_be_bytes())
        .collect();
    bytes.extend((0..present * rows * cols).map(|index| (index % 251) as u8));
    bytes
}

/// An IDX labels file with `count` labels cycling through 0..10.
fn idx_labels(magic: u32, count: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = [magic, count]
        .iter()
        .flat_map(|word| word.to_be_bytes())
        .collect();
    bytes.extend((0..count).map(|index| (index % 10) as u8));
    bytes
}

/// A folder `data/` under `dir` holding `train-images-idx3-ubyte` and `train-labels-idx1-ubyte`.
fn idx_folder(dir: &Path, images: Vec<u8>, labels: Vec<u8>) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(data.join("train-labels-idx1-ubyte"), labels).unwrap();
    data
}

/// `pretrain` on `data` into `out`, small and on the CPU so that a loader that wrongly
/// accepted the data would still finish quickly.
fn pretrain_on(data: &Path, out: &Path) -> Outcome {
    pretext(&[
        "pretrain",
        "--data",
        arg(data),
        "--out",
        arg(out),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ])
}

// ---------------------------------------------------------------------------------------------
// Snapshots of the help texts and of the default config.

fn assert_help_snapshot(name: &str, args: &[&str]) {
    let outcome = pretext(args);
    assert_succeeds(&outcome, &args.join(" "));
    assert_eq!(outcome.stderr, "", "help writes nothing to stderr");
    insta::assert_snapshot!(name, outcome.stdout);
}

#[test]
fn help_snapshot() {
    assert_help_snapshot("help", &["--help"]);
}

#[test]
fn pretrain_help_snapshot() {
    assert_help_snapshot("pretrain_help", &["pretrain", "--help"]);
}

#[test]
fn probe_help_snapshot() {
    assert_help_snapshot("probe_help", &["probe", "--help"]);
}

#[test]
fn embed_help_snapshot() {
    assert_help_snapshot("embed_help", &["embed", "--help"]);
}

#[test]
fn export_help_snapshot() {
    assert_help_snapshot("export_help", &["export", "--help"]);
}

#[test]
fn quickstart_help_snapshot() {
    assert_help_snapshot("quickstart_help", &["quickstart", "--help"]);
}

#[test]
fn bench_help_snapshot() {
    assert_help_snapshot("bench_help", &["bench", "--help"]);
}

#[test]
fn reconstruct_and_attention_help_snapshots() {
    assert_help_snapshot("reconstruct_help", &["reconstruct", "--help"]);
    assert_help_snapshot("attention_help", &["attention", "--help"]);
}

#[test]
fn help_is_at_most_100_columns_on_a_wide_terminal() {
    // max_term_width caps the wrapping whatever COLUMNS says.
    for args in [
        &["--help"][..],
        &["pretrain", "--help"],
        &["probe", "--help"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_pretext"))
            .args(args)
            .env("COLUMNS", "250")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let widest = stdout.lines().map(|line| line.chars().count()).max();
        assert!(
            widest <= Some(100),
            "{args:?}: a line of {widest:?} columns:\n{stdout}"
        );
    }
}

#[test]
fn default_config_snapshot() {
    let outcome = pretext(&["pretrain", "--print-config"]);
    assert_succeeds(&outcome, "pretrain --print-config");
    insta::assert_snapshot!("default_config", outcome.stdout);
}

// ---------------------------------------------------------------------------------------------
// --print-config: defaults, then --config, then flags; unknown keys are errors.

#[test]
fn print_config_shows_every_section() {
    let config = default_config();
    for name in SECTIONS {
        assert!(config.get(name).is_some_and(Value::is_table), "no [{name}]");
    }
    assert!(config.get("seed").is_some() && config.get("device").is_some());
}

#[test]
fn config_file_values_replace_defaults_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.toml");
    std::fs::write(
        &file,
        "seed = 3\n[optimizer]\nlr = 0.5\n[train]\nsteps = 123\n",
    )
    .unwrap();
    let outcome = pretext(&["pretrain", "--print-config", "--config", arg(&file)]);
    assert_succeeds(&outcome, "--print-config --config");

    let mut expected = default_config();
    expected.insert("seed".into(), Value::Integer(3));
    section(&mut expected, "optimizer").insert("lr".into(), Value::Float(0.5));
    section(&mut expected, "train").insert("steps".into(), Value::Integer(123));
    assert_eq!(parse_toml(&outcome.stdout), expected);
}

#[test]
fn flags_and_set_override_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("small.toml");
    std::fs::write(&file, "[optimizer]\nlr = 0.5\n[train]\nsteps = 123\n").unwrap();
    let outcome = pretext(&[
        "pretrain",
        "--print-config",
        "--config",
        arg(&file),
        "--lr",
        "0.25",
        "--set",
        "train.steps=7",
    ]);
    assert_succeeds(&outcome, "--print-config --config --lr --set");
    assert!(
        outcome.stdout.lines().any(|line| line == "steps = 7"),
        "{}",
        outcome.stdout
    );

    let mut expected = default_config();
    section(&mut expected, "optimizer").insert("lr".into(), Value::Float(0.25));
    section(&mut expected, "train").insert("steps".into(), Value::Integer(7));
    assert_eq!(parse_toml(&outcome.stdout), expected);
}

#[test]
fn set_shows_in_print_config() {
    let outcome = pretext(&["pretrain", "--print-config", "--set", "train.steps=7"]);
    assert_succeeds(&outcome, "--print-config --set train.steps=7");
    assert!(
        outcome.stdout.lines().any(|line| line == "steps = 7"),
        "{}",
        outcome.stdout
    );
}

#[test]
fn print_config_output_read_back_as_config_prints_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("printed.toml");
    let printed = pretext(&[
        "pretrain",
        "--print-config",
        "--set",
        "views.flip_probability=0.0",
    ]);
    assert_succeeds(&printed, "--print-config");
    std::fs::write(&file, &printed.stdout).unwrap();
    let again = pretext(&["pretrain", "--print-config", "--config", arg(&file)]);
    assert_succeeds(&again, "--print-config --config <printed>");
    assert_eq!(again.stdout, printed.stdout);
}

#[test]
fn unknown_key_in_config_file_names_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo-config.toml");
    std::fs::write(&file, "[train]\nbatch_sise = 3\n").unwrap();
    let outcome = pretext(&["pretrain", "--print-config", "--config", arg(&file)]);
    assert_fails_naming(&outcome, &["batch_sise", "typo-config.toml"]);
    assert_eq!(outcome.stdout, "", "nothing is printed for a bad config");
}

#[test]
fn unknown_set_key_is_named() {
    let outcome = pretext(&["pretrain", "--print-config", "--set", "nosuch.key=1"]);
    assert_fails_naming(&outcome, &["nosuch"]);
    assert_eq!(outcome.stdout, "");
}

#[test]
fn unknown_method_is_named_with_the_known_ones() {
    let outcome = pretext(&["pretrain", "--print-config", "--method", "nosuch"]);
    assert_fails_naming(&outcome, &["nosuch", "simclr"]);
    assert_eq!(outcome.stdout, "");
}

// ---------------------------------------------------------------------------------------------
// Bad data: the error names the file and what is wrong; no run directory is created.

#[test]
fn truncated_idx_images_file_is_named_with_expected_and_found_bytes() {
    let dir = tempfile::tempdir().unwrap();
    // The header promises 100 images of 28x28; only 10 are there.
    let data = idx_folder(
        dir.path(),
        idx_images(IDX_IMAGES_MAGIC, 100, 28, 28, 10),
        idx_labels(IDX_LABELS_MAGIC, 100),
    );
    let out = dir.path().join("run");
    let outcome = pretrain_on(&data, &out);
    let expected = (16 + 100 * 28 * 28).to_string(); // 78416
    let found = (16 + 10 * 28 * 28).to_string(); // 7856
    assert_fails_naming(
        &outcome,
        &["train-images-idx3-ubyte", "truncated", &expected, &found],
    );
    assert!(!out.exists(), "a failed run left {}", out.display());
}

#[test]
fn wrong_magic_in_idx_images_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = idx_folder(
        dir.path(),
        idx_images(0x0000_1234, 10, 28, 28, 10),
        idx_labels(IDX_LABELS_MAGIC, 10),
    );
    let out = dir.path().join("run");
    let outcome = pretrain_on(&data, &out);
    assert_fails_naming(
        &outcome,
        &[
            "train-images-idx3-ubyte",
            "magic",
            "0x00001234",
            "0x00000803",
        ],
    );
    assert!(!out.exists(), "a failed run left {}", out.display());
}

#[test]
fn wrong_magic_in_idx_labels_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    // The images magic where the labels magic belongs.
    let data = idx_folder(
        dir.path(),
        idx_images(IDX_IMAGES_MAGIC, 10, 28, 28, 10),
        idx_labels(IDX_IMAGES_MAGIC, 10),
    );
    let out = dir.path().join("run");
    let outcome = pretrain_on(&data, &out);
    assert_fails_naming(
        &outcome,
        &["train-labels-idx1-ubyte", "magic", "0x00000801"],
    );
    assert!(!out.exists(), "a failed run left {}", out.display());
}

#[test]
fn empty_data_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nothing-here");
    std::fs::create_dir(&data).unwrap();
    let out = dir.path().join("run");
    let outcome = pretrain_on(&data, &out);
    assert_fails_naming(&outcome, &["nothing-here", "no images"]);
    assert!(!out.exists(), "a failed run left {}", out.display());
}

#[test]
fn missing_data_path_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("no-such-folder");
    let out = dir.path().join("run");
    let outcome = pretrain_on(&data, &out);
    assert_fails_naming(&outcome, &["no-such-folder", "not found"]);
    assert!(!out.exists(), "a failed run left {}", out.display());
}

#[test]
fn undecodable_png_in_image_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("images");
    std::fs::create_dir_all(data.join("cat")).unwrap();
    std::fs::write(
        data.join("cat").join("broken.png"),
        b"these bytes are not a PNG",
    )
    .unwrap();
    let out = dir.path().join("run");
    let outcome = pretrain_on(&data, &out);
    assert_fails_naming(&outcome, &["broken.png", "cannot decode"]);
    assert!(!out.exists(), "a failed run left {}", out.display());
}

/// Regression (found by fuzzing): a JPEG on which the decoder panics (zune-jpeg's upsampler
/// assertion) is a one-line error naming the file, without the panic hook's "thread …
/// panicked" message before it.
#[test]
fn a_jpeg_the_decoder_panics_on_is_a_quiet_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("images");
    std::fs::create_dir_all(data.join("shoe")).unwrap();
    let crash = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pretext-fuzz/regressions/image/jpeg-chroma-sampling-2x2-upsampler-assertion.jpg");
    std::fs::copy(crash, data.join("shoe").join("odd.jpg")).unwrap();
    let outcome = pretrain_on(&data, &dir.path().join("run"));
    assert_fails_naming(
        &outcome,
        &["odd.jpg", "cannot decode", "decoder failed on corrupt data"],
    );
    assert_eq!(
        outcome.stderr.trim_end().lines().count(),
        1,
        "{}",
        outcome.stderr
    );
}

#[test]
fn data_error_prints_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    // A gzip header followed by garbage: flate2 reports "unexpected end of file".
    let file = dir.path().join("cut-images-idx3-ubyte.gz");
    std::fs::write(&file, b"\x1f\x8b\x08\x00garbage").unwrap();
    let outcome = pretrain_on(&file, &dir.path().join("run"));
    assert_fails_naming(&outcome, &["cut-images-idx3-ubyte.gz", "gzip"]);
    assert_eq!(
        outcome.stderr.matches("unexpected end of file").count(),
        1,
        "{}",
        outcome.stderr
    );

    let images = dir.path().join("images");
    std::fs::create_dir_all(images.join("cat")).unwrap();
    std::fs::write(images.join("cat").join("broken.png"), b"not a PNG").unwrap();
    let outcome = pretrain_on(&images, &dir.path().join("run"));
    assert_fails_naming(&outcome, &["broken.png"]);
    assert_eq!(
        outcome.stderr.matches("Format error decoding Png").count(),
        1,
        "{}",
        outcome.stderr
    );
}

/// The first `count` embedded Fashion-MNIST training images as PNGs, one subfolder per
/// class (`class-L/NNNN.png`).
fn fashion_png_folder(dir: &Path, count: usize) -> PathBuf {
    let train = pretext_data::embedded_fashion_mnist().unwrap().train;
    let data = dir.join("fashion-pngs");
    for (index, label) in train.labels.as_ref().unwrap()[..count].iter().enumerate() {
        let class = data.join(format!("class-{label}"));
        std::fs::create_dir_all(&class).unwrap();
        image::GrayImage::from_raw(28, 28, train.image(index).to_vec())
            .unwrap()
            .save(class.join(format!("{index:04}.png")))
            .unwrap();
    }
    data
}

/// Images past `data.memory_limit_mb` live in mapped temporary files: 20 SimCLR steps on a
/// folder of PNGs, with the k-NN monitor reading its held-out slice, log the same records
/// (timings aside), print the same final loss and save the same weights as in memory.
#[test]
fn an_image_folder_past_the_memory_limit_trains_exactly_as_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let data = fashion_png_folder(dir.path(), 300);
    let pretrain = |name: &str, limit: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "pretrain",
            "--data",
            arg(&data),
            "--out",
            arg(&out),
            "--steps",
            "20",
            "--batch-size",
            "32",
            "--device",
            "cpu",
            "--set",
            "health.knn_every=10",
        ];
        args.extend(limit);
        let outcome = pretext(&args);
        assert_succeeds(&outcome, &format!("pretrain {limit:?}"));
        let final_loss = outcome
            .stderr
            .split("final loss ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("no final loss in:\n{}", outcome.stderr))
            .to_string();
        let records: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|line| {
                let mut record: serde_json::Value = serde_json::from_str(line).unwrap();
                let record_map = record.as_object_mut().unwrap();
                record_map.remove("images_per_second");
                record_map.remove("data_wait_seconds");
                record_map.remove("elapsed_seconds");
                record
            })
            .collect();
        let weights = std::fs::read(out.join("checkpoints/step-20/weights.safetensors")).unwrap();
        (final_loss, records, weights)
    };
    let in_memory = pretrain("memory", &[]);
    let mapped = pretrain("mapped", &["--set", "data.memory_limit_mb=0"]);
    assert!(
        in_memory
            .1
            .iter()
            .any(|record| record.get("knn_accuracy").is_some()),
        "{:?}",
        in_memory.1
    );
    assert_eq!(mapped.0, in_memory.0);
    assert_eq!(mapped.1, in_memory.1);
    assert!(mapped.2 == in_memory.2, "the weights differ");
}

// ---------------------------------------------------------------------------------------------
// Run directories: never replaced or changed by mistake.

#[test]
fn out_with_files_is_refused_without_resume_or_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("taken");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "my notes\n").unwrap();
    let before = folder_contents(&out);
    let outcome = pretext(&[
        "pretrain",
        "--out",
        arg(&out),
        "--steps",
        "2",
        "--device",
        "cpu",
    ]);
    assert_fails_naming(&outcome, &["taken", "--resume", "--overwrite"]);
    assert_eq!(folder_contents(&out), before);
}

#[test]
fn overwrite_refuses_a_folder_that_is_not_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("precious");
    std::fs::create_dir_all(out.join("sub")).unwrap();
    std::fs::write(out.join("thesis.tex"), "\\begin{document}\n").unwrap();
    std::fs::write(out.join("sub").join("data.bin"), [1u8, 2, 3]).unwrap();
    let before = folder_contents(&out);
    let outcome = pretext(&[
        "pretrain",
        "--out",
        arg(&out),
        "--overwrite",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ]);
    assert_fails_naming(&outcome, &["precious", "config.toml"]);
    assert_eq!(folder_contents(&out), before);
}

#[test]
fn out_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a-file.txt");
    std::fs::write(&out, "keep me\n").unwrap();
    let outcome = pretext(&["pretrain", "--out", arg(&out), "--device", "cpu"]);
    assert_fails_naming(&outcome, &["a-file.txt"]);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me\n");
}

/// A run directory with a config but no complete checkpoint (one without meta.json).
fn run_without_checkpoint(dir: &Path) -> PathBuf {
    let run = dir.join("fresh-run");
    std::fs::create_dir_all(run.join("checkpoints").join("step-3")).unwrap();
    std::fs::write(
        run.join("checkpoints")
            .join("step-3")
            .join("weights.safetensors"),
        b"half-written",
    )
    .unwrap();
    let config = pretext(&["pretrain", "--print-config", "--set", "health.knn_every=0"]);
    assert_succeeds(&config, "--print-config");
    std::fs::write(run.join("config.toml"), config.stdout).unwrap();
    run
}

#[test]
fn resume_without_a_complete_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_without_checkpoint(dir.path());
    let before = folder_contents(&run);
    let outcome = pretext(&[
        "pretrain",
        "--resume",
        arg(&run),
        "--steps",
        "2",
        "--device",
        "cpu",
    ]);
    assert_fails_naming(&outcome, &["fresh-run", "no complete checkpoint"]);
    assert_eq!(folder_contents(&run), before);
}

#[test]
fn resume_of_a_folder_that_is_not_a_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("holiday-photos");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("beach.jpg"), b"jpeg").unwrap();
    let before = folder_contents(&folder);
    let outcome = pretext(&["pretrain", "--resume", arg(&folder), "--device", "cpu"]);
    assert_fails_naming(
        &outcome,
        &["holiday-photos", "not a pretext run", "config.toml"],
    );
    assert_eq!(folder_contents(&folder), before);
}

#[test]
fn resume_refuses_options_that_would_change_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_without_checkpoint(dir.path());
    let before = folder_contents(&run);
    let outcome = pretext(&[
        "pretrain",
        "--resume",
        arg(&run),
        "--lr",
        "0.1",
        "--set",
        "seed=4",
    ]);
    assert_fails_naming(&outcome, &["--lr", "--set", "cannot change when resuming"]);
    assert_eq!(folder_contents(&run), before);
}

#[test]
fn probe_of_a_folder_that_is_not_a_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("holiday-photos");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("beach.jpg"), b"jpeg").unwrap();
    let before = folder_contents(&folder);
    let outcome = pretext(&["probe", arg(&folder), "--device", "cpu"]);
    assert_fails_naming(&outcome, &["holiday-photos", "not a pretext run"]);
    assert_eq!(folder_contents(&folder), before);
}

#[test]
fn probe_of_a_run_without_a_complete_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = run_without_checkpoint(dir.path());
    let before = folder_contents(&run);
    let outcome = pretext(&["probe", arg(&run), "--device", "cpu"]);
    assert_fails_naming(&outcome, &["fresh-run", "no complete checkpoint"]);
    assert_eq!(folder_contents(&run), before);
}

/// A checkpoint meets a config that builds another model: with the run's config.toml edited to
/// narrower layers, probe and `--resume` refuse naming the weights file, the tensor and the
/// setting that differs; edited to another method, they refuse naming the checkpoint's
/// config.toml and both methods. The run is left as it was.
#[test]
fn a_checkpoint_is_refused_by_a_config_for_another_model_or_method() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let outcome = pretext(&[
        "pretrain",
        "--data",
        "embedded",
        "--steps",
        "2",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
        "--out",
        arg(&run),
    ]);
    assert_succeeds(&outcome, "two steps");
    let config_path = run.join("config.toml");
    let original = std::fs::read_to_string(&config_path).unwrap();
    let narrower = original.replace("widths = [32, 64, 128]", "widths = [32, 64, 96]");
    let other_method = original.replace("name = \"simclr\"", "name = \"moco\"");
    assert!(narrower != original && other_method != original);
    let resume = [
        "pretrain",
        "--resume",
        arg(&run),
        "--steps",
        "4",
        "--device",
        "cpu",
    ];
    let probe = ["probe", arg(&run), "--device", "cpu"];
    for (config, needles) in [
        (
            narrower,
            &[
                "step-2/weights.safetensors",
                "does not fit this run",
                "`encoder.bn2.bias` is [128] in the file and [96] in the model",
                "backbone.small_cnn.widths = [32, 64, 128] (checkpoint) vs [32, 64, 96] (this run)",
            ][..],
        ),
        (
            other_method,
            &[
                "step-2/config.toml",
                "made by method `simclr`",
                "says `moco`",
            ][..],
        ),
    ] {
        std::fs::write(&config_path, &config).unwrap();
        let before = folder_contents(&run);
        for args in [&resume[..], &probe[..]] {
            let outcome = pretext(args);
            assert_fails_naming(&outcome, needles);
            assert_eq!(
                folder_contents(&run),
                before,
                "{args:?} left the run as it was"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A real run on the embedded Fashion-MNIST subset: pretrain, probe, embed, resume.

/// Fixed by `crates/pretext-data/embedded/README.md`: class counts of the embedded test split
/// (the first 2000 Fashion-MNIST test images).
const EMBEDDED_TEST_CLASS_COUNTS: [usize; 10] = [200, 203, 214, 190, 219, 195, 197, 200, 194, 188];

/// An NPY file (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
/// its dtype string, shape and data bytes.
struct Npy {
    descr: String,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn read_npy(path: &Path) -> Npy {
    let bytes = std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert_eq!(
        &bytes[..6],
        b"\x93NUMPY",
        "{}: no NPY magic",
        path.display()
    );
    let (header_len, header_start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        version => panic!("{}: NPY version {version}", path.display()),
    };
    let data_start = header_start + header_len;
    assert_eq!(data_start % 16, 0, "NPY data must start 16-byte aligned");
    let header = std::str::from_utf8(&bytes[header_start..data_start]).unwrap();
    assert!(header.ends_with('\n'), "{header:?}");
    assert!(header.contains("'fortran_order': False"), "{header:?}");
    let descr = header
        .split("'descr': '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("no descr in {header:?}"))
        .to_string();
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no shape in {header:?}"))
        .split(',')
        .map(str::trim)
        .filter(|dim| !dim.is_empty())
        .map(|dim| dim.parse().unwrap())
        .collect();
    Npy {
        descr,
        shape,
        data: bytes[data_start..].to_vec(),
    }
}

#[test]
fn pretrain_probe_embed_and_resume_on_embedded_data() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let options = [
        "--data",
        "embedded",
        "--steps",
        "4",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
    ];

    // pretrain: a complete run directory.
    let mut args = vec!["pretrain"];
    args.extend(options);
    args.extend(["--out", arg(&run)]);
    let outcome = pretext(&args);
    assert_succeeds(&outcome, "pretrain");
    assert!(!outcome.stderr.contains("panicked"));

    // config.toml is the resolved config, the same one --print-config shows.
    let written = std::fs::read_to_string(run.join("config.toml")).unwrap();
    let written = parse_toml(&written);
    for name in SECTIONS {
        assert!(
            written.get(name).is_some_and(Value::is_table),
            "no [{name}]"
        );
    }
    let mut args = vec!["pretrain", "--print-config"];
    args.extend(options);
    let printed = pretext(&args);
    assert_succeeds(&printed, "--print-config");
    assert_eq!(written, parse_toml(&printed.stdout));

    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = metrics
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.last().unwrap()["step"], 4, "{metrics}");
    assert!(records
        .iter()
        .all(|record| record["loss"].as_f64().unwrap().is_finite()));
    let elapsed: Vec<f64> = records
        .iter()
        .map(|record| record["elapsed_seconds"].as_f64().unwrap())
        .collect();
    assert!(
        elapsed[0] > 0.0 && elapsed.windows(2).all(|pair| pair[0] <= pair[1]),
        "{elapsed:?}"
    );

    let step_4 = run.join("checkpoints").join("step-4");
    for file in [
        "weights.safetensors",
        "optimizer.safetensors",
        "state.json",
        "meta.json",
    ] {
        assert!(step_4.join(file).is_file(), "no checkpoints/step-4/{file}");
    }

    // probe: the table with the baselines, and its JSON report.
    let outcome = pretext(&["probe", arg(&run), "--labels", "100", "--device", "cpu"]);
    assert_succeeds(&outcome, "probe");
    for needle in [
        "k-NN 20",
        "linear",
        "raw pixels",
        "random-init encoder",
        "(step 4)",
    ] {
        assert!(
            outcome.stdout.contains(needle),
            "no {needle:?} in\n{}",
            outcome.stdout
        );
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("probe-100-seed0.json")).unwrap())
            .unwrap();
    assert_eq!(report["labels"], 100);
    assert_eq!(report["test_size"], 2000);
    assert_eq!(report["rows"].as_array().unwrap().len(), 3);

    // embed: float32 [2000, 128] features and int64 labels of the test split.
    let features = dir.path().join("f.npy");
    let outcome = pretext(&[
        "embed",
        arg(&run),
        "embedded",
        "-o",
        arg(&features),
        "--split",
        "test",
        "--device",
        "cpu",
    ]);
    assert_succeeds(&outcome, "embed");
    let npy = read_npy(&features);
    assert_eq!(npy.descr, "<f4");
    assert_eq!(npy.shape, [2000, 128]);
    assert_eq!(npy.data.len(), 2000 * 128 * 4);
    let values: Vec<f32> = npy
        .data
        .chunks_exact(4)
        .map(|bytes| f32::from_le_bytes(bytes.try_into().unwrap()))
        .collect();
    assert!(values.iter().all(|value| value.is_finite()));
    assert!(
        values.iter().any(|&value| value != values[0]),
        "constant features"
    );

    let labels = read_npy(&dir.path().join("f.labels.npy"));
    assert_eq!(labels.descr, "<i8");
    assert_eq!(labels.shape, [2000]);
    let mut counts = [0usize; 10];
    for bytes in labels.data.chunks_exact(8) {
        counts[i64::from_le_bytes(bytes.try_into().unwrap()) as usize] += 1;
    }
    assert_eq!(counts, EMBEDDED_TEST_CLASS_COUNTS);

    // resume: continues from step 4 to step 6.
    let outcome = pretext(&[
        "pretrain",
        "--resume",
        arg(&run),
        "--steps",
        "6",
        "--device",
        "cpu",
    ]);
    assert_succeeds(&outcome, "pretrain --resume");
    assert!(outcome.stderr.contains("step-4"), "{}", outcome.stderr);
    let step_6 = run.join("checkpoints").join("step-6");
    assert!(step_6.join("meta.json").is_file(), "no checkpoints/step-6");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(step_6.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 6);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert_eq!(last["step"], 6);

    // probe --step: the encoder of an earlier checkpoint, in a report of its own; a step
    // without a checkpoint is refused with the steps that were kept.
    let outcome = pretext(&[
        "probe",
        arg(&run),
        "--step",
        "4",
        "--labels",
        "100",
        "--no-baselines",
        "--device",
        "cpu",
    ]);
    assert_succeeds(&outcome, "probe --step 4");
    assert!(outcome.stdout.contains("(step 4)"), "{}", outcome.stdout);
    let at_4: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(run.join("probe-100-seed0-step4.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        at_4["rows"].as_array().unwrap()[..],
        report["rows"].as_array().unwrap()[..1]
    );
    // --knn-only over several steps: one report per step, the k-NN columns alone, the same
    // k-NN accuracies as the whole probe's.
    let outcome = pretext(&[
        "probe",
        arg(&run),
        "--step",
        "4,6",
        "--knn-only",
        "--labels",
        "100",
        "--no-baselines",
        "--device",
        "cpu",
    ]);
    assert_succeeds(&outcome, "probe --step 4,6 --knn-only");
    assert!(!outcome.stdout.contains("linear"), "{}", outcome.stdout);
    for step in [4, 6] {
        let name = format!("probe-100-seed0-step{step}.json");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join(&name)).unwrap()).unwrap();
        let row = &report["rows"][0];
        assert_eq!(row["name"], format!("simclr (step {step})"), "{name}");
        assert!(row.get("linear").is_none(), "{name}: {row}");
        if step == 4 {
            assert_eq!(row["knn"], at_4["rows"][0]["knn"]);
        }
    }
    let outcome = pretext(&["probe", arg(&run), "--step", "5", "--device", "cpu"]);
    assert!(!outcome.success);
    assert!(
        outcome
            .stderr
            .contains("no checkpoint of step 5 (kept: 4, 6;"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn resume_with_steps_not_beyond_the_checkpoint_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let outcome = pretext(&[
        "pretrain",
        "--steps",
        "4",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
        "--out",
        arg(&run),
    ]);
    assert_succeeds(&outcome, "pretrain");
    let before = folder_contents(&run);
    let outcome = pretext(&[
        "pretrain",
        "--resume",
        arg(&run),
        "--steps",
        "2",
        "--device",
        "cpu",
    ]);
    assert_fails_naming(&outcome, &["--steps", "4"]);
    assert_eq!(folder_contents(&run), before);
}

/// A real SIGKILL at arbitrary moments of a run that checkpoints every step: whatever the
/// moment, the newest complete checkpoint loads and `--resume` finishes the run.
#[test]
fn a_kill_at_any_moment_leaves_a_resumable_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let spawn = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pretext"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the pretext binary starts")
    };
    let steps_done = || -> u64 {
        let (latest, _) = pretext_train::Checkpoint::latest(&run.join("checkpoints")).unwrap();
        latest.map_or(0, |checkpoint| checkpoint.state.step)
    };
    let mut child = spawn(&[
        "pretrain",
        "--data",
        "embedded",
        "--steps",
        "100",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
        "--set",
        "train.checkpoint_every=1",
        "--out",
        arg(&run),
    ]);
    for delay_ms in [400u64, 37, 211] {
        while steps_done() == 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let (latest, _) = pretext_train::Checkpoint::latest(&run.join("checkpoints")).unwrap();
        let latest = latest.expect("a complete checkpoint survives the kill");
        let config = pretext_train::PretrainConfig::from_file(&run.join("config.toml")).unwrap();
        let data = pretext_data::open(&config.data.path, &config.data_options(None)).unwrap();
        let train = data.splits.train;
        let mut model = pretext_train::Model::new(&config, &train, tch::Device::Cpu);
        latest
            .load_weights(&config, &mut model.store)
            .expect("the newest checkpoint loads");
        latest
            .load_method_state(&config, &mut model.state)
            .expect("the newest checkpoint's method state loads");
        child = spawn(&["pretrain", "--resume", arg(&run), "--device", "cpu"]);
    }
    assert!(
        child.wait().unwrap().success(),
        "the last resume runs to the end"
    );
    assert_eq!(steps_done(), 100);
}

/// A full disk while checkpointing — simulated by a file-size limit (`ulimit -f`, with
/// SIGXFSZ ignored so a write past it fails with EFBIG, as on a full disk) — stops the run
/// with an error naming the checkpoint and saying the previous one is kept; no partial folder
/// is left, the previous checkpoint is still the newest and loads, and a resume without the
/// limit finishes the run.
#[cfg(unix)]
#[test]
fn a_full_disk_while_checkpointing_fails_cleanly_and_keeps_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let outcome = pretext(&[
        "pretrain",
        "--data",
        "embedded",
        "--steps",
        "2",
        "--batch-size",
        "16",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
        "--out",
        arg(&run),
    ]);
    assert_succeeds(&outcome, "the first two steps");
    let checkpoints = run.join("checkpoints");
    let before = folder_contents(&checkpoints.join("step-2"));
    // 64 blocks (32–64 KiB) fit a metrics line, not the CNN's weights (~400 KiB).
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec {:?} pretrain --resume {:?} --steps 4 --device cpu",
        env!("CARGO_BIN_EXE_pretext"),
        arg(&run)
    );
    let output = Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for needle in [
        "could not write checkpoint",
        "step-4",
        "previous checkpoint is untouched",
        "disk full",
    ] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    let left: Vec<String> = std::fs::read_dir(&checkpoints)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["step-2"], "no partial checkpoint is left behind");
    assert_eq!(folder_contents(&checkpoints.join("step-2")), before);
    let (latest, skipped) = pretext_train::Checkpoint::latest(&checkpoints).unwrap();
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(latest.unwrap().state.step, 2);
    let outcome = pretext(&[
        "pretrain",
        "--resume",
        arg(&run),
        "--steps",
        "4",
        "--device",
        "cpu",
    ]);
    assert_succeeds(&outcome, "the resume once there is room");
    let (latest, _) = pretext_train::Checkpoint::latest(&checkpoints).unwrap();
    assert_eq!(latest.unwrap().state.step, 4);
}

/// Two processes on one run directory: while a run trains, a second `pretrain` on it (resume
/// or overwrite) is refused naming the first one's PID, and nothing of the run is touched; once
/// the first is killed, `--resume` clears its stale lock (saying so) and finishes the run.
#[test]
fn a_second_process_on_a_run_is_refused_and_a_killed_ones_lock_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pretext"))
        .args([
            "pretrain",
            "--data",
            "embedded",
            "--steps",
            "100000",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--set",
            "health.knn_every=0",
            "--set",
            "train.checkpoint_every=2",
            "--out",
            arg(&run),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the pretext binary starts");
    let pid = child.id().to_string();
    while pretext_train::Checkpoint::latest(&run.join("checkpoints"))
        .unwrap()
        .0
        .is_none()
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(std::fs::read_to_string(run.join(".lock")).unwrap(), pid);
    let config_before = std::fs::read(run.join("config.toml")).unwrap();
    let outcome = pretext(&["pretrain", "--resume", arg(&run), "--device", "cpu"]);
    assert_fails_naming(
        &outcome,
        &["in use by another pretext process", &format!("PID {pid}")],
    );
    let outcome = pretext(&[
        "pretrain",
        "--data",
        "embedded",
        "--steps",
        "4",
        "--overwrite",
        "--out",
        arg(&run),
    ]);
    assert_fails_naming(&outcome, &["in use", &format!("PID {pid}")]);
    assert_eq!(
        std::fs::read(run.join("config.toml")).unwrap(),
        config_before
    );

    child.kill().unwrap();
    child.wait().unwrap();
    let latest = |run: &Path| {
        pretext_train::Checkpoint::latest(&run.join("checkpoints"))
            .unwrap()
            .0
            .expect("a complete checkpoint survives the kill")
            .state
            .step
    };
    let target = (latest(&run) + 4).to_string();
    let outcome = pretext(&[
        "pretrain",
        "--resume",
        arg(&run),
        "--steps",
        &target,
        "--device",
        "cpu",
    ]);
    assert_succeeds(&outcome, "the resume after the kill");
    assert!(
        outcome
            .stderr
            .contains(&format!("cleared a stale lock: process {pid}")),
        "{}",
        outcome.stderr
    );
    assert_eq!(latest(&run).to_string(), target);
    // A finished run leaves no PID behind.
    assert_eq!(std::fs::read_to_string(run.join(".lock")).unwrap(), "");
}

// ---------------------------------------------------------------------------------------------
// Every method through the CLI, and `pretext health`.

#[test]
fn health_help_snapshot() {
    assert_help_snapshot("health_help", &["health", "--help"]);
}

/// Each method pretrains a few steps from the command line, and its run can be probed and
/// judged: the method plumbing (views, untrained state, checkpoints) works end to end.
#[test]
fn every_method_pretrains_probes_and_reports_health() {
    let dir = tempfile::tempdir().unwrap();
    for method in ["moco", "byol", "dino", "rotation", "jigsaw"] {
        let run = dir.path().join(method);
        let outcome = pretext(&[
            "pretrain",
            "--method",
            method,
            "--out",
            arg(&run),
            "--steps",
            "6",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--set",
            "health.every=3",
            "--set",
            "health.knn_every=6",
            "--set",
            "health.knn_slice=50",
        ]);
        assert_succeeds(&outcome, &format!("pretrain --method {method}"));
        let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
        assert!(config.contains(&format!("name = \"{method}\"")), "{config}");
        assert!(run
            .join("checkpoints/step-6/method_state.safetensors")
            .exists());

        let probe = pretext(&[
            "probe",
            arg(&run),
            "--labels",
            "50",
            "--no-baselines",
            "--device",
            "cpu",
        ]);
        assert_succeeds(&probe, &format!("probe of {method}"));
        assert!(probe.stdout.contains(method), "{}", probe.stdout);

        let health = pretext(&["health", arg(&run)]);
        assert_succeeds(&health, &format!("health of {method}"));
        for signal in ["loss", "embedding std", "effective rank", "k-NN accuracy"] {
            assert!(
                health.stdout.contains(signal),
                "{method}: no `{signal}` in\n{}",
                health.stdout
            );
        }
        assert!(health.stdout.contains("verdict:"), "{}", health.stdout);
        let specific = match method {
            "moco" => "contrastive accuracy",
            "byol" => "target-online distance",
            "dino" => "teacher entropy",
            _ => "pretext accuracy",
        };
        assert!(
            health.stdout.contains(specific),
            "{method}: no `{specific}` in\n{}",
            health.stdout
        );

        if method == "moco" {
            for extra in [&[][..], &["--from-scratch", "--freeze-epochs", "1"][..]] {
                let mut command = vec![
                    "finetune",
                    arg(&run),
                    "--labels",
                    "100",
                    "--epochs",
                    "2",
                    "--device",
                    "cpu",
                ];
                command.extend_from_slice(extra);
                let finetuned = pretext(&command);
                assert_succeeds(&finetuned, "finetune");
                assert!(
                    finetuned.stdout.contains("test accuracy"),
                    "{}",
                    finetuned.stdout
                );
            }
            // Training from scratch cross-validates whether to train on the run's views,
            // beside the rate and decay: 2 × 2 × 2 points, the choice in the report.
            let searched = pretext(&[
                "finetune",
                arg(&run),
                "--labels",
                "100",
                "--epochs",
                "2",
                "--from-scratch",
                "--cross-validate",
                "--device",
                "cpu",
            ]);
            assert_succeeds(&searched, "finetune --from-scratch --cross-validate");
            for point in [
                "search 1/8: lr 1e-3, weight decay 5e-4, augmented, fold 1/3",
                "search 8/8: lr 3e-3, weight decay 5e-2, as they are, fold 3/3",
            ] {
                assert!(
                    searched.stderr.contains(point),
                    "{point}:\n{}",
                    searched.stderr
                );
            }
            let report: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(run.join("scratch-100-seed0.json")).unwrap(),
            )
            .unwrap();
            let tried = report["search"]["tried"].as_array().unwrap();
            assert_eq!(tried.len(), 8, "{report}");
            let views = |point: &serde_json::Value| point["augment"].as_bool().unwrap();
            assert_eq!(tried.iter().filter(|point| views(point)).count(), 4);
            let chosen = views(&report["search"]["chosen"]);
            let said = if chosen {
                "on augmented views"
            } else {
                "on the images as they are"
            };
            assert!(searched.stdout.contains(said), "{}", searched.stdout);
            assert!(run.join("finetune-100-seed0.json").exists());
            assert!(run.join("scratch-100-seed0.json").exists());
            // Linear probe, then fine-tune: a recipe that wrecks the features (lr 1
            // everywhere) keeps the probe it started from, chosen on held-out labeled
            // examples: by 3-fold cross-validation with 100 labels (too few for a
            // validation split), as epoch 0 of early stopping with 300.
            let wreck = |labels: &str, extra: &[&str]| {
                let mut command = vec![
                    "finetune",
                    arg(&run),
                    "--labels",
                    labels,
                    "--epochs",
                    "2",
                    "--lr",
                    "1",
                    "--layer-decay",
                    "1",
                    "--device",
                    "cpu",
                ];
                command.extend_from_slice(extra);
                let wrecked = pretext(&command);
                assert_succeeds(&wrecked, &format!("finetune at lr 1 {command:?}"));
                wrecked.stdout
            };
            for (labels, how) in [
                ("100", "0 epochs: the linear probe kept (3-fold CV"),
                ("300", "best epoch 0, the linear probe it started from"),
            ] {
                let stdout = wreck(labels, &[]);
                assert!(
                    stdout.contains(how)
                        && stdout.contains("kept: fine-tuning did not beat it")
                        && !stdout.contains("below the linear probe"),
                    "{labels} labels:\n{stdout}"
                );
            }
            // Without the fallback the fine-tune is kept, and told it ended below its probe.
            let stdout = wreck("100", &["--no-probe-fallback"]);
            assert!(
                stdout.contains("linear probe (the start, L2 ")
                    && stdout.contains("below the linear probe it started from"),
                "{stdout}"
            );
        }
        let json = pretext(&["health", arg(&run), "--json"]);
        assert_succeeds(&json, "health --json");
        let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
        assert_eq!(report["method"], method);
        assert!(report["findings"].as_array().unwrap().len() >= 5);
    }
}

#[test]
fn health_of_a_folder_that_is_not_a_run_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = pretext(&["health", arg(&dir.path().join("nowhere"))]);
    assert_fails_naming(&outcome, &["nowhere", "config.toml"]);
}

#[test]
fn invalid_method_setting_is_named_with_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = pretext(&[
        "pretrain",
        "--method",
        "jigsaw",
        "--set",
        "method.jigsaw.permutations=1000000",
        "--out",
        arg(&dir.path().join("run")),
        "--device",
        "cpu",
    ]);
    assert_fails_naming(&outcome, &["method.jigsaw.permutations", "362880"]);
    assert!(!dir.path().join("run").join("checkpoints").exists());
}

// ---------------------------------------------------------------------------------------------
// Text: BERT MLM and GPT from the command line, on a slice of the Austen chunks.

#[test]
fn text_methods_pretrain_probe_and_report_health() {
    let dir = tempfile::tempdir().unwrap();
    let (Some(train), Some(test)) = (
        austen_slice("austen_train.tsv", 300, dir.path()),
        austen_slice("austen_test.tsv", 120, dir.path()),
    ) else {
        return;
    };
    for (method, tokenizer) in [("bert-mlm", "wordpiece"), ("gpt", "bpe")] {
        let run = dir.path().join(method);
        let settings = small_text_run(&train, &test, tokenizer);
        let mut args = vec!["pretrain", "--method", method];
        args.extend(settings.iter().map(String::as_str));
        args.extend([
            "--out",
            arg(&run),
            "--steps",
            "4",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--set",
            "health.every=2",
            "--set",
            "health.knn_every=4",
            "--set",
            "health.knn_slice=40",
            "--set",
            "health.held_out_every=2",
        ]);
        let outcome = pretext(&args);
        assert_succeeds(&outcome, &format!("pretrain --method {method}"));
        assert!(
            outcome.stderr.contains("held-out loss"),
            "a language model reports its held-out loss:\n{}",
            outcome.stderr
        );
        assert!(
            run.join("tokenizer.json").exists(),
            "the run keeps its tokenizer"
        );
        let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
        assert!(config.contains("vocab_size = 600"), "{config}");

        // Two budgets in one call: one table and one JSON report each.
        let probe = pretext(&["probe", arg(&run), "--labels", "30,60", "--device", "cpu"]);
        assert_succeeds(&probe, &format!("probe of {method}"));
        for row in [method, "random-init encoder", "TF-IDF"] {
            assert_eq!(
                probe.stdout.matches(row).count(),
                2,
                "one `{row}` row per budget:\n{}",
                probe.stdout
            );
        }
        for labels in [30, 60] {
            assert!(run.join(format!("probe-{labels}-seed0.json")).exists());
        }
        // ... with the same numbers as a probe of that budget alone (up to one test example:
        // the encoder reads different batches).
        let alone_path = dir.path().join(format!("{method}-alone.json"));
        let alone = pretext(&[
            "probe",
            arg(&run),
            "--labels",
            "60",
            "--device",
            "cpu",
            "--json",
            arg(&alone_path),
        ]);
        assert_succeeds(&alone, "probe of one budget");
        let rows = |path: &Path| {
            let report: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            report["rows"].as_array().unwrap().clone()
        };
        let (together, alone) = (rows(&run.join("probe-60-seed0.json")), rows(&alone_path));
        assert_eq!(together.len(), alone.len());
        for (a, b) in together.iter().zip(&alone) {
            assert_eq!(a["name"], b["name"]);
            let close = |x: &serde_json::Value, y: &serde_json::Value| {
                (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= 1.0 / 120.0 + 1e-9
            };
            assert!(close(&a["linear"], &b["linear"]), "{a} vs {b}");
            for (x, y) in a["knn"]
                .as_array()
                .unwrap()
                .iter()
                .zip(b["knn"].as_array().unwrap())
            {
                assert!(close(&x[1], &y[1]), "{a} vs {b}");
            }
        }
        let finetuned = pretext(&[
            "finetune",
            arg(&run),
            "--labels",
            "60",
            "--epochs",
            "2",
            "--device",
            "cpu",
        ]);
        assert_succeeds(&finetuned, &format!("finetune of {method}"));
        assert!(
            finetuned.stdout.contains("test accuracy"),
            "{}",
            finetuned.stdout
        );
        assert!(run.join("finetune-60-seed0.json").exists());
        let no_download = pretext(&[
            "finetune",
            arg(&run),
            "--from-pretrained",
            "--device",
            "cpu",
        ]);
        assert_fails_naming(&no_download, &["backbone.pretrained"]);
        let health = pretext(&["health", arg(&run)]);
        assert_succeeds(&health, &format!("health of {method}"));
        for signal in ["pretext accuracy", "held-out loss"] {
            assert!(health.stdout.contains(signal), "{}", health.stdout);
        }
        assert!(!health.stdout.contains("COLLAPSE"), "{}", health.stdout);
        if method == "gpt" {
            let generated = pretext(&[
                "generate",
                arg(&run),
                "--prompt",
                "It is a truth",
                "--max-tokens",
                "5",
                "--device",
                "cpu",
            ]);
            assert_succeeds(&generated, "generate");
            assert!(
                generated.stdout.starts_with("It is a truth"),
                "{}",
                generated.stdout
            );
            let refused = pretext(&[
                "generate",
                arg(&dir.path().join("bert-mlm")),
                "--prompt",
                "x",
            ]);
            assert_fails_naming(&refused, &["gpt", "bert-mlm"]);
        }
    }
}

#[test]
fn text_method_on_images_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = pretext(&[
        "pretrain",
        "--method",
        "bert-mlm",
        "--out",
        arg(&dir.path().join("run")),
        "--steps",
        "2",
        "--device",
        "cpu",
    ]);
    assert_fails_naming(&outcome, &["bert-mlm", "text"]);
}

#[test]
fn vit_patches_that_do_not_tile_the_views_are_refused_before_the_run_starts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let outcome = pretext(&[
        "pretrain",
        "--method",
        "jigsaw",
        "--backbone",
        "vit",
        "--out",
        arg(&run),
        "--steps",
        "2",
        "--device",
        "cpu",
    ]);
    assert_fails_naming(&outcome, &["backbone.vit.patch_size", "14-px", "jigsaw"]);
    assert!(!run.exists(), "nothing is written for a refused config");
}

/// The pictures: an MAE run's reconstruction grid (held-out images, and a color file
/// converted to the run's gray 28 px) and a ViT run's attention maps, as PNGs of the promised
/// layout; with nothing hidden, the masked and reconstructed columns are the original.
#[test]
fn mae_reconstructions_and_vit_attention_maps_are_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("mae");
    let outcome = pretext(&[
        "pretrain",
        "--method",
        "mae",
        "--backbone",
        "vit",
        "--out",
        arg(&run),
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--set",
        "backbone.vit.layers=2",
        "--set",
        "backbone.vit.hidden_dim=32",
        "--set",
        "backbone.vit.heads=2",
        "--set",
        "backbone.vit.mlp_dim=64",
        "--set",
        "health.knn_every=0",
    ]);
    assert_succeeds(&outcome, "pretrain --method mae");
    let cell = 28 * 4; // 28 px drawn 4× larger, 4 px of margin around each cell
    let size = |count: u32| count * cell + (count + 1) * 4;

    let grid = dir.path().join("grid.png");
    let outcome = pretext(&["reconstruct", arg(&run), "-o", arg(&grid), "--count", "3"]);
    assert_succeeds(&outcome, "reconstruct");
    assert!(outcome.stderr.contains("75%"), "{}", outcome.stderr);
    let picture = image::open(&grid).unwrap().to_rgb8();
    assert_eq!(picture.dimensions(), (size(3), size(3)));

    let file = dir.path().join("red.png");
    image::RgbImage::from_pixel(40, 30, image::Rgb([200, 30, 30]))
        .save(&file)
        .unwrap();
    let outcome = pretext(&[
        "reconstruct",
        arg(&run),
        arg(&file),
        "-o",
        arg(&grid),
        "--mask-ratio",
        "0",
    ]);
    assert_succeeds(&outcome, "reconstruct of a file");
    let picture = image::open(&grid).unwrap().to_rgb8();
    assert_eq!(picture.dimensions(), (size(3), size(1)));
    let cell_at = |col: u32| {
        image::imageops::crop_imm(&picture, 4 + col * (cell + 4), 4, cell, cell).to_image()
    };
    let original = cell_at(0);
    assert_eq!(
        original.get_pixel(0, 0)[0],
        original.get_pixel(0, 0)[2],
        "gray"
    );
    assert_eq!(cell_at(1), original, "nothing hidden");
    assert_eq!(cell_at(2), original, "nothing to reconstruct");

    let attention = dir.path().join("attention.png");
    let outcome = pretext(&[
        "attention",
        arg(&run),
        "-o",
        arg(&attention),
        "--count",
        "2",
    ]);
    assert_succeeds(&outcome, "attention");
    let picture = image::open(&attention).unwrap().to_rgb8();
    assert_eq!(
        picture.dimensions(),
        (size(2 + 2), size(2)),
        "image, mean, 2 heads"
    );

    let outcome = pretext(&[
        "reconstruct",
        arg(&run),
        "-o",
        arg(&grid),
        "--mask-ratio",
        "1.5",
    ]);
    assert_fails_naming(&outcome, &["--mask-ratio", "1.5"]);
    let cnn = run_without_checkpoint(dir.path());
    let outcome = pretext(&["attention", arg(&cnn), "-o", arg(&attention)]);
    assert_fails_naming(&outcome, &["vision transformer", "small-cnn"]);
    let outcome = pretext(&["reconstruct", arg(&cnn), "-o", arg(&grid)]);
    assert_fails_naming(&outcome, &["method mae", "simclr"]);
}

// Tables: VIME and SCARF from the command line.

/// VIME, SCARF and corruption detection pretrain on a CSV table (the first 1000 rows of letter_recognition), write
/// the training split's column statistics into the run, and probe; a table with an image
/// method, or with a CNN, is refused naming both sides.
#[test]
fn table_methods_pretrain_and_probe_a_csv() {
    let Some(source) = shared_data("tabular/letter_recognition.csv") else {
        return;
    };
    let text = std::fs::read_to_string(source).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("letters.csv");
    let rows: Vec<&str> = text.lines().take(1001).collect();
    std::fs::write(&table, rows.join("\n") + "\n").unwrap();
    for method in ["vime", "scarf", "corruption"] {
        let run = dir.path().join(method);
        let outcome = pretext(&[
            "pretrain",
            "--method",
            method,
            "--backbone",
            "mlp",
            "--data",
            arg(&table),
            "--out",
            arg(&run),
            "--steps",
            "20",
            "--batch-size",
            "64",
            "--device",
            "cpu",
            "--set",
            "health.knn_every=10",
            "--set",
            "health.knn_slice=200",
        ]);
        assert_succeeds(&outcome, &format!("pretrain --method {method}"));
        assert!(
            outcome.stderr.contains("801 rows of 16 columns"),
            "{}",
            outcome.stderr
        );
        let stats: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("table-stats.json")).unwrap())
                .unwrap();
        assert_eq!(stats.as_array().unwrap().len(), 16);
        assert_eq!(stats[0]["name"], "x.box");
        let config = std::fs::read_to_string(run.join("config.toml")).unwrap();
        assert!(config.contains("columns = [0, 0, 0"), "{config}");
        let probe = pretext(&["probe", arg(&run), "--labels", "100", "--device", "cpu"]);
        assert_succeeds(&probe, &format!("probe of {method}"));
        assert!(probe.stdout.contains("raw columns"), "{}", probe.stdout);
    }
    // The semi-supervised baseline: self-training from scratch with pseudo-labels.
    let vime = dir.path().join("vime");
    let outcome = pretext(&[
        "finetune",
        arg(&vime),
        "--labels",
        "20%",
        "--from-scratch",
        "--self-train",
        "1",
        "--pseudo-threshold",
        "0.5",
        "--epochs",
        "5",
        "--device",
        "cpu",
    ]);
    assert_succeeds(&outcome, "finetune --self-train");
    assert!(
        outcome.stderr.contains("self-training round 1: "),
        "{}",
        outcome.stderr
    );
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vime.join("self-train-scratch-20pct-seed0.json")).unwrap(),
    )
    .unwrap();
    let round = &report["self_training"][0];
    assert!(round["pseudo_labeled"].as_u64().unwrap() > 0, "{report}");
    // Pseudo-labels are far better than chance (1 in 26) even after 5 epochs on 128 rows.
    assert!(
        round["pseudo_label_accuracy"].as_f64().unwrap() > 0.2,
        "{report}"
    );
    let outcome = pretext(&["finetune", arg(&vime), "--pseudo-threshold", "1.5"]);
    assert_fails_naming(&outcome, &["--pseudo-threshold", "1.5"]);
    let outcome = pretext(&[
        "pretrain",
        "--data",
        arg(&table),
        "--out",
        arg(&dir.path().join("x")),
    ]);
    assert_fails_naming(&outcome, &["letters.csv", "tables", "simclr", "images"]);
    let outcome = pretext(&[
        "pretrain",
        "--method",
        "scarf",
        "--data",
        arg(&table),
        "--out",
        arg(&dir.path().join("y")),
    ]);
    assert_fails_naming(&outcome, &["small-cnn", "--backbone mlp"]);
}

// Audio: wav2vec 2.0 from the command line.

/// wav2vec 2.0 pretrains a small wav2vec network on keyword clips (5 per word from
/// ../shared/data/audio/spoken-words, listed in a labels.csv of absolute paths) plus an
/// unlabeled folder of sentences cut into one-second clips; probe compares it with the
/// log-mel baseline, and `health` judges its own signals. Audio with an image method, a
/// wav2vec2 run without the wav2vec backbone and a labels file naming a missing WAV are
/// refused naming the problem.
#[test]
fn wav2vec2_pretrains_on_wav_folders_and_probes_against_log_mel() {
    let Some(shared) = shared_data("audio") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(data) = keyword_clips(dir.path()) else {
        return;
    };
    let sentences = dir.path().join("sentences");
    std::fs::create_dir_all(&sentences).unwrap();
    for index in 0..4 {
        let name = format!("sent_{index:03}.wav");
        std::fs::copy(
            shared.join("spoken-sentences/clips").join(&name),
            sentences.join(&name),
        )
        .unwrap();
    }
    let run = dir.path().join("run");
    let tiny = [
        "--set",
        "backbone.wav2vec.conv_channels=[16, 16, 16, 16, 16, 16, 16]",
        "--set",
        "backbone.wav2vec.hidden_dim=32",
        "--set",
        "backbone.wav2vec.layers=1",
        "--set",
        "backbone.wav2vec.heads=2",
        "--set",
        "backbone.wav2vec.mlp_dim=64",
        "--set",
        "backbone.wav2vec.position_groups=4",
        "--set",
        "method.wav2vec2.negatives=10",
    ];
    let mut args = vec![
        "pretrain",
        "--method",
        "wav2vec2",
        "--backbone",
        "wav2vec",
        "--data",
        arg(&data),
        "--out",
        arg(&run),
        "--steps",
        "6",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--set",
        "health.every=3",
        "--set",
        "health.knn_every=3",
    ];
    let unlabeled = format!("data.unlabeled=[{:?}]", arg(&sentences));
    args.extend(["--set", &unlabeled]);
    args.extend(tiny);
    let outcome = pretext(&args);
    assert_succeeds(&outcome, "pretrain --method wav2vec2");
    for needle in [
        "60 clips of 1 s at 16000 Hz",
        "72 clips of 1 s",
        "12 unlabeled from",
    ] {
        assert!(
            outcome.stderr.contains(needle),
            "{needle}: {}",
            outcome.stderr
        );
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    for key in [
        "codebook_perplexity",
        "contrastive_accuracy",
        "feature_grad_ratio",
        "knn_accuracy",
    ] {
        assert!(metrics.contains(key), "{key} missing from {metrics}");
    }
    let probe = pretext(&[
        "probe",
        arg(&run),
        "--labels",
        "24",
        "--classic",
        "--device",
        "cpu",
    ]);
    assert_succeeds(&probe, "probe of wav2vec2");
    assert!(probe.stdout.contains("log-mel"), "{}", probe.stdout);
    let health = pretext(&["health", arg(&run)]);
    assert!(
        health.stdout.contains("codebook perplexity"),
        "{}",
        health.stdout
    );
    assert!(
        health.stdout.contains("masked-frame accuracy"),
        "{}",
        health.stdout
    );
    assert!(
        health.stdout.contains("feature-encoder gradient"),
        "{}",
        health.stdout
    );

    let outcome = pretext(&[
        "pretrain",
        "--data",
        arg(&data),
        "--out",
        arg(&dir.path().join("x")),
    ]);
    assert_fails_naming(&outcome, &["keywords", "audio", "simclr", "images"]);
    let outcome = pretext(&[
        "pretrain",
        "--method",
        "wav2vec2",
        "--data",
        arg(&data),
        "--out",
        arg(&dir.path().join("y")),
    ]);
    assert_fails_naming(&outcome, &["wav2vec2", "--backbone wav2vec"]);
    std::fs::write(
        data.join("labels.csv"),
        format!(
            "file,label\n{},yes\nmissing.wav,no\n",
            shared.join("spoken-words/clips/yes_000.wav").display()
        ),
    )
    .unwrap();
    let outcome = pretext(&[
        "pretrain",
        "--method",
        "wav2vec2",
        "--backbone",
        "wav2vec",
        "--data",
        arg(&data),
        "--out",
        arg(&dir.path().join("z")),
    ]);
    assert_fails_naming(&outcome, &["labels.csv", "line 3", "missing.wav"]);
}

#[test]
fn tokenizer_train_writes_a_tokenizer_json() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.txt");
    std::fs::write(
        &corpus,
        "It is a truth universally acknowledged.\nA single man.\n".repeat(50),
    )
    .unwrap();
    let out = dir.path().join("tokenizer.json");
    let outcome = pretext(&[
        "tokenizer",
        "train",
        "--corpus",
        arg(&corpus),
        "--kind",
        "char",
        "-o",
        arg(&out),
    ]);
    assert_succeeds(&outcome, "tokenizer train");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(json["model"].is_object(), "a Hugging Face tokenizer.json");
}

// ---------------------------------------------------------------------------------------------
// `pretext study`.

#[test]
fn study_help_snapshot() {
    assert_help_snapshot("study_help", &["study", "--help"]);
}

/// Every cell file of a study directory with its bytes and modification time.
fn study_cells(out: &Path) -> BTreeMap<PathBuf, (Vec<u8>, std::time::SystemTime)> {
    let mut cells = BTreeMap::new();
    let Ok(series) = std::fs::read_dir(out.join("cells")) else {
        return cells;
    };
    for series in series {
        for cell in std::fs::read_dir(series.unwrap().path()).unwrap() {
            let path = cell.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                cells.insert(path.clone(), (std::fs::read(&path).unwrap(), modified));
            }
        }
    }
    cells
}

/// `pretext study` on 300 embedded images (one budget of 20%, seed 0, 4 pretraining steps,
/// no non-finite step allowed) with `head` before `[pretrain]` and `tail` after it.
fn small_failing_study(head: &str, tail: &str) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let data = embedded_slice(dir.path(), 300, 100);
    let study = dir.path().join("study.toml");
    std::fs::write(
        &study,
        format!(
            "labels = [\"20%\"]\nseeds = [0]\n{head}\
             [pretrain]\ndata.path = {:?}\ntrain.steps = 4\ntrain.batch_size = 32\n\
             train.max_nonfinite_steps = 0\nhealth.knn_every = 0\n{tail}",
            arg(&data)
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    pretext(&["study", "--config", arg(&study), "--out", arg(&out)])
}

/// A cell that cannot be measured does not stop the study: here every fine-tuning step of
/// the pretrained encoder diverges (lr 1e30, no non-finite step allowed), so its cells are
/// n/a with the reason, while training from scratch (its own cross-validated rates) and
/// the probes are measured.
#[test]
fn a_cell_that_cannot_be_measured_is_marked_and_the_study_goes_on() {
    let outcome = small_failing_study(
        "baselines = [\"scratch\"]\n",
        "[finetune]\nepochs = 2\nlr = 1e30\nsearch.lr = [1e-3]\nsearch.weight_decay = [0.05]\n",
    );
    assert_succeeds(&outcome, "a study with a cell that cannot be measured");
    let table = &outcome.stdout;
    assert!(
        table.contains("| **simclr · fine-tuned** | n/a |"),
        "{table}"
    );
    assert!(
        table.contains("n/a: not measured —\n- simclr · fine-tuned at 60 labels: ")
            && table.contains("non-finite"),
        "{table}"
    );
    assert!(!table.contains("| scratch | n/a |"), "{table}");
    assert!(!table.contains("| **simclr · linear** | n/a |"), "{table}");
    assert!(
        outcome
            .stderr
            .contains("could not measure fine-tuning simclr"),
        "{}",
        outcome.stderr
    );
}

/// A method whose pretraining fails does not stop the study either: BYOL at lr 1e30
/// diverges at once (no non-finite step allowed), so its cells are n/a with the reason,
/// while SimCLR and the raw-feature baseline are measured.
#[test]
fn a_method_whose_pretraining_fails_is_marked_and_the_study_goes_on() {
    let outcome = small_failing_study(
        "evaluations = [\"knn\", \"linear\"]\nbaselines = [\"raw\"]\n",
        "[[methods]]\nname = \"byol\"\nset = [\"optimizer.lr=1e30\"]\n\
         [[methods]]\nname = \"simclr\"\n",
    );
    assert_succeeds(&outcome, "a study with a method that cannot pretrain");
    let table = &outcome.stdout;
    assert!(table.contains("| **byol · linear** | n/a |"), "{table}");
    assert!(
        table.contains("- byol · linear at 60 labels: pretraining failed: ")
            && table.contains("non-finite"),
        "{table}"
    );
    assert!(!table.contains("| **simclr · linear** | n/a |"), "{table}");
    assert!(!table.contains("| raw + LR | n/a |"), "{table}");
    assert!(
        outcome.stderr.contains("could not pretrain byol"),
        "{}",
        outcome.stderr
    );
}

/// A study killed (SIGKILL) in the middle continues where it stopped (a second study on the
/// same folder is refused while the first runs): pretraining and the
/// cells measured before the kill are reused untouched, the rest is measured, and a third
/// run measures nothing and prints the same table. The outputs are all there: Markdown,
/// CSV, JSON with mean ± std over 3 seeds, PNG and SVG plots, and an HTML report with the
/// pretraining health.
#[test]
fn study_killed_midway_resumes_without_recomputing_finished_cells() {
    let dir = tempfile::tempdir().unwrap();
    let data = embedded_slice(dir.path(), 1000, 300);
    let study = dir.path().join("study.toml");
    std::fs::write(
        &study,
        format!(
            "title = \"resume test\"\nlabels = [\"5%\", \"20%\"]\nseeds = [0, 1, 2]\n\
             [pretrain]\ndata.path = {:?}\ntrain.steps = 12\ntrain.batch_size = 32\nhealth.knn_every = 0\n\
             [finetune]\nepochs = 2\n",
            arg(&data)
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = Command::new(env!("CARGO_BIN_EXE_pretext"))
        .args(["study", "--config", arg(&study), "--out", arg(&out)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the pretext binary starts");
    // Kill once a few cells exist: after pretraining, in the middle of the evaluations.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while study_cells(&out).len() < 4 {
        assert!(std::time::Instant::now() < deadline, "no cells after 300 s");
        assert!(child.try_wait().unwrap().is_none(), "the study ended early");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A second study on the same folder meanwhile is refused, naming the first.
    let second = pretext(&["study", "--config", arg(&study), "--out", arg(&out)]);
    assert_fails_naming(&second, &["in use", &format!("PID {}", child.id())]);
    child.kill().unwrap();
    child.wait().unwrap();
    let before_resume = study_cells(&out);
    assert!(!out.join("report.html").exists(), "killed before the end");

    let resumed = pretext(&["study", "--config", arg(&study), "--out", arg(&out)]);
    assert_succeeds(&resumed, "the resumed study");
    assert!(
        resumed.stderr.contains("cleared a stale lock"),
        "{}",
        resumed.stderr
    );
    assert!(
        resumed
            .stderr
            .contains("pretraining simclr (12 steps): done earlier, reused"),
        "{}",
        resumed.stderr
    );
    let after = study_cells(&out);
    for (path, saved) in &before_resume {
        assert_eq!(
            after.get(path),
            Some(saved),
            "{} was measured again",
            path.display()
        );
    }
    // 2 budgets × 3 seeds × (3 simclr evaluations + raw k-NN, raw/PCA/k-means + LR,
    // random-init, scratch, self-training).
    assert_eq!(after.len(), 2 * 3 * 10);
    let reused = format!("{} reused", before_resume.len());
    assert!(resumed.stderr.contains(&reused), "{}", resumed.stderr);

    let again = pretext(&["study", "--config", arg(&study), "--out", arg(&out)]);
    assert_succeeds(&again, "the finished study run again");
    assert!(
        again.stderr.contains("0 cells measured now, 60 reused"),
        "{}",
        again.stderr
    );
    assert_eq!(
        again.stdout, resumed.stdout,
        "the same table from the same cells"
    );
    assert_eq!(study_cells(&out), after);

    // The outputs.
    let table = &again.stdout;
    assert!(
        table.contains("| series | 5% (50) | 20% (200) |"),
        "{table}"
    );
    for row in [
        "**simclr · linear**",
        "raw + LR",
        "k-means + LR",
        "self-training",
    ] {
        assert!(
            table.contains(&format!("| {row} |")),
            "{row} missing:\n{table}"
        );
    }
    // Fine-tuning at its fixed recipe beside a cross-validated scratch is said to be so.
    assert!(
        table.contains(
            "- Fine-tuning ran at its fixed recipe (lr 3e-4, weight decay 0.05, layer decay 0.75)"
        ),
        "{table}"
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let stats = results["stats"].as_array().unwrap();
    assert_eq!(stats.len(), 10 * 2);
    assert!(stats.iter().all(|stat| stat["seeds"] == 3));
    let stat = |series: &str, budget: &str| {
        stats
            .iter()
            .find(|s| s["series"] == series && s["budget"] == budget)
            .unwrap()["mean"]
            .as_f64()
            .unwrap()
    };
    // Real measurements on real images: far above the 10% of chance with 200 labels.
    assert!(stat("raw + LR", "20%") > 0.6, "{}", stat("raw + LR", "20%"));
    assert!(stat("simclr · linear", "20%") > 0.4);
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(csv.starts_with("series,model,evaluation,pretrained,budget,labels,mean,std,seeds\n"));
    assert_eq!(csv.lines().count(), 1 + 20);
    let png = std::fs::read(out.join("accuracy.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(out.join("accuracy.svg")).unwrap();
    assert!(svg.contains("self-training") && svg.contains("log scale"));
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for needle in [
        "Pretraining health",
        "<svg",
        ">loss<",
        "resume test",
        "pretraining ",
    ] {
        assert!(html.contains(needle), "{needle} missing from report.html");
    }
    assert!(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"));
}

/// Study files are checked before anything runs: unknown keys, unknown methods, methods on
/// different data, are named with the file.
#[test]
fn study_file_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let study = dir.path().join("bad.toml");
    let out = dir.path().join("out");
    let run = |text: &str| {
        std::fs::write(&study, text).unwrap();
        pretext(&["study", "--config", arg(&study), "--out", arg(&out)])
    };
    assert_fails_naming(
        &run("budgets = [\"1%\"]"),
        &["bad.toml", "unknown field `budgets`"],
    );
    assert_fails_naming(
        &run("[[methods]]\nname = \"simclrr\""),
        &["bad.toml", "simclrr"],
    );
    assert_fails_naming(
        &run("[pretrain]\ntrain.stpes = 3"),
        &["bad.toml", "method simclr", "stpes"],
    );
    assert_fails_naming(
        &run(
            "[[methods]]\nname = \"simclr\"\n[[methods]]\nname = \"rotation\"\nset = [\"data.path=elsewhere\"]",
        ),
        &["rotation reads other data than simclr"],
    );
    assert!(!out.exists(), "nothing written for a refused study");
    // A folder with other things in it is not taken over.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    assert_fails_naming(&run("labels = [\"1%\"]"), &["out", "not a study directory"]);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    let printed = pretext(&["study", "--print-config"]);
    assert_succeeds(&printed, "study --print-config");
    assert!(
        printed
            .stdout
            .contains("labels = [\"1%\", \"5%\", \"10%\", \"100%\"]"),
        "{}",
        printed.stdout
    );
}

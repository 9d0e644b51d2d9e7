//! No crash a user can reach: every subcommand, given wrong arguments, out-of-range settings
//! or tiny and empty files of every modality, exits with code 1 and one line `error: ...`
//! naming the problem, never panics, and leaves no run folder or output file behind.
//!
//! The regression tests name what used to panic (each found by trying the CLI as a new user
//! would); the sweeps below them try a list of wrong arguments per subcommand. Everything
//! here is refused before training, so the file runs in a few seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

mod common;
use common::{embedded_slice, IDX_IMAGES_MAGIC};

/// What one invocation of the binary did.
struct Outcome {
    code: Option<i32>,
    stderr: String,
}

fn pretext(args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_pretext"))
        .args(args)
        .current_dir(&fixtures().dir)
        .env("COLUMNS", "100")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .output()
        .expect("the pretext binary starts");
    Outcome {
        code: output.status.code(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `args` and checks a clean refusal: exit code 1, no panic, stderr one line
/// `error: ...` containing every one of `needles`, and no `leftover` path (relative to the
/// fixtures) created.
fn assert_refused(args: &[&str], needles: &[&str]) {
    let leftovers: Vec<PathBuf> = args
        .windows(2)
        .filter(|pair| ["--out", "-o", "--output"].contains(&pair[0]))
        .map(|pair| fixtures().dir.join(pair[1]))
        .collect();
    for path in &leftovers {
        let _ = std::fs::remove_dir_all(path);
        let _ = std::fs::remove_file(path);
    }
    let outcome = pretext(args);
    let command = format!("pretext {}", args.join(" "));
    assert!(
        !outcome.stderr.contains("panicked"),
        "{command}: panicked instead of reporting an error:\n{}",
        outcome.stderr
    );
    assert_eq!(
        outcome.code,
        Some(1),
        "{command}: expected exit code 1 (an error), stderr:\n{}",
        outcome.stderr
    );
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("error: "),
        "{command}: expected one line `error: ...`, found:\n{}",
        outcome.stderr
    );
    for needle in needles {
        assert!(
            outcome.stderr.contains(needle),
            "{command}: the error does not mention {needle:?}: {}",
            outcome.stderr
        );
    }
    for path in &leftovers {
        assert!(
            !path.exists(),
            "{command}: a refused command left {}",
            path.display()
        );
    }
}

fn assert_succeeds(args: &[&str]) {
    let outcome = pretext(args);
    assert_eq!(
        outcome.code,
        Some(0),
        "pretext {} failed:\n{}",
        args.join(" "),
        outcome.stderr
    );
}

/// Tiny files of every modality and one short run per modality, made once for the tests of
/// this file (which run in one process) in a folder of the target directory.
struct Fixtures {
    dir: PathBuf,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wrong-arguments");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        write_files(&dir);
        let fixtures = Fixtures { dir };
        for &run in RUNS {
            let outcome = Command::new(env!("CARGO_BIN_EXE_pretext"))
                .args(run)
                .current_dir(&fixtures.dir)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            assert!(
                outcome.status.success(),
                "pretext {}: {}",
                run.join(" "),
                String::from_utf8_lossy(&outcome.stderr)
            );
        }
        fixtures
    })
}

/// The runs the transfer commands are tried on: two steps each, on the CPU.
const RUNS: &[&[&str]] = &[
    &[
        "pretrain",
        "--data",
        "images",
        "--out",
        "image-run",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
    ],
    &[
        "pretrain",
        "--method",
        "mae",
        "--backbone",
        "vit",
        "--data",
        "images",
        "--out",
        "mae-run",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
        "--set",
        "backbone.vit.hidden_dim=32",
        "--set",
        "backbone.vit.layers=1",
        "--set",
        "backbone.vit.heads=2",
        "--set",
        "backbone.vit.mlp_dim=64",
    ],
    &[
        "pretrain",
        "--method",
        "gpt",
        "--backbone",
        "transformer",
        "--data",
        "labeled.tsv",
        "--out",
        "gpt-run",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--set",
        "backbone.transformer.layers=1",
    ],
    &[
        "pretrain",
        "--method",
        "scarf",
        "--backbone",
        "mlp",
        "--data",
        "table.csv",
        "--out",
        "table-run",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ],
    &[
        "pretrain",
        "--method",
        "wav2vec2",
        "--backbone",
        "wav2vec",
        "--data",
        "clips",
        "--out",
        "audio-run",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--set",
        "data.audio.clip_seconds=0.1",
    ],
];

/// A mono 16-bit PCM WAV file of `samples` (16 kHz).
fn write_wav(path: &Path, samples: &[i16]) {
    let data_bytes = (samples.len() * 2) as u32;
    let mut bytes = Vec::new();
    bytes.extend(b"RIFF");
    bytes.extend((36 + data_bytes).to_le_bytes());
    bytes.extend(b"WAVEfmt ");
    bytes.extend(16u32.to_le_bytes());
    bytes.extend(1u16.to_le_bytes()); // PCM
    bytes.extend(1u16.to_le_bytes()); // mono
    bytes.extend(16_000u32.to_le_bytes());
    bytes.extend(32_000u32.to_le_bytes()); // bytes per second
    bytes.extend(2u16.to_le_bytes()); // bytes per frame
    bytes.extend(16u16.to_le_bytes());
    bytes.extend(b"data");
    bytes.extend(data_bytes.to_le_bytes());
    bytes.extend(samples.iter().flat_map(|sample| sample.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

fn write_files(dir: &Path) {
    let images = embedded_slice(dir, 64, 16);
    std::fs::rename(images, dir.join("images")).unwrap();
    // Six labeled lines with six different labels: nothing can be held out per class.
    let six: String = ["austen", "bronte", "dickens", "eliot", "hardy", "scott"]
        .iter()
        .enumerate()
        .map(|(i, label)| format!("{label}\tline {i} of a novel by someone\n"))
        .collect();
    std::fs::write(dir.join("six-labels.tsv"), six).unwrap();
    let labeled: String = (0..40)
        .map(|i| format!("{}\tthe {i} quick brown foxes jump over lazy dogs\n", i % 2))
        .collect();
    std::fs::write(dir.join("labeled.tsv"), labeled).unwrap();
    std::fs::write(dir.join("empty.tsv"), "").unwrap();
    std::fs::write(dir.join("empty.txt"), "").unwrap();
    std::fs::write(dir.join("one-line.tsv"), "a\tjust one line\n").unwrap();
    let table: String = (0..40)
        .map(|i| format!("{},{},{}\n", i, (i * 7) % 5, ["x", "y"][i % 2]))
        .collect();
    std::fs::write(dir.join("table.csv"), format!("a,b,label\n{table}")).unwrap();
    std::fs::write(dir.join("header-only.csv"), "a,b,label\n").unwrap();
    std::fs::write(dir.join("one-row.csv"), "a,b,label\n1,2,x\n").unwrap();
    std::fs::write(dir.join("empty.csv"), "").unwrap();
    let clips = dir.join("clips");
    std::fs::create_dir(&clips).unwrap();
    let mut labels = String::from("file,label\n");
    for i in 0..8 {
        let tone: Vec<i16> = (0..4000)
            .map(|t| ((t * (3 + i)) % 200) as i16 * 40 - 4000)
            .collect();
        write_wav(&clips.join(format!("clip{i}.wav")), &tone);
        labels.push_str(&format!("clip{i}.wav,{}\n", ["yes", "no"][i % 2]));
    }
    std::fs::write(clips.join("labels.csv"), labels).unwrap();
    let one_sample = dir.join("one-sample-clip");
    std::fs::create_dir(&one_sample).unwrap();
    write_wav(&one_sample.join("tiny.wav"), &[7]);
    let no_audio = dir.join("no-audio");
    std::fs::create_dir(&no_audio).unwrap();
    std::fs::write(no_audio.join("empty.wav"), "").unwrap();
    // An IDX images file whose header promises more images than it holds.
    let mut truncated: Vec<u8> = [IDX_IMAGES_MAGIC, 10, 28, 28]
        .iter()
        .flat_map(|word| word.to_be_bytes())
        .collect();
    truncated.extend([0u8; 100]);
    std::fs::create_dir(dir.join("truncated-idx")).unwrap();
    std::fs::write(dir.join("truncated-idx/train-images-idx3-ubyte"), truncated).unwrap();
    std::fs::write(dir.join("not-a.png"), b"no picture in here").unwrap();
    std::fs::write(dir.join("not-toml.toml"), "labels = [\n").unwrap();
}

// ---------------------------------------------------------------------------------------------
// Regression tests: each once panicked (or left a run folder behind).

/// `embed --split all` on a 6-line TSV with 6 labels panicked inside libtorch
/// (`torch.cat(): expected a non-empty list of Tensors`): nothing is held out per class.
#[test]
fn embed_of_an_empty_split_names_the_file_and_the_split() {
    assert_refused(
        &[
            "embed",
            "gpt-run",
            "six-labels.tsv",
            "-o",
            "out.npy",
            "--split",
            "all",
            "--device",
            "cpu",
        ],
        &["six-labels.tsv", "test split is empty", "--split train"],
    );
    assert_succeeds(&[
        "embed",
        "gpt-run",
        "six-labels.tsv",
        "-o",
        "train.npy",
        "--split",
        "train",
        "--device",
        "cpu",
    ]);
}

/// Probing or fine-tuning with no held-out samples has nothing to score on.
#[test]
fn probe_and_finetune_of_an_empty_test_split_are_refused() {
    for command in ["probe", "finetune"] {
        assert_refused(
            &[
                command,
                "gpt-run",
                "--data",
                "six-labels.tsv",
                "--labels",
                "3",
                "--device",
                "cpu",
            ],
            &["six-labels.tsv", "test split is empty"],
        );
    }
}

/// bert-mlm with the character tokenizer (or any tokenizer.json without a mask token)
/// panicked at `expect("validated: the tokenizer has [MASK]")` after making the run folder.
#[test]
fn bert_mlm_with_a_tokenizer_without_a_mask_token_is_refused() {
    assert_refused(
        &[
            "pretrain",
            "--method",
            "bert-mlm",
            "--backbone",
            "transformer",
            "--data",
            "labeled.tsv",
            "--set",
            "data.tokenizer=\"char\"",
            "--out",
            "out",
            "--steps",
            "2",
            "--device",
            "cpu",
        ],
        &["data.tokenizer", "mask token", "char"],
    );
}

/// Three heads on a width of 128 panicked in a `.view` inside libtorch: the transformer's
/// shape was never validated for pretraining.
#[test]
fn transformer_heads_that_do_not_divide_the_width_are_refused() {
    for heads in ["3", "5", "0"] {
        assert_refused(
            &[
                "pretrain",
                "--method",
                "gpt",
                "--backbone",
                "transformer",
                "--data",
                "labeled.tsv",
                "--set",
                &format!("backbone.transformer.heads={heads}"),
                "--out",
                "out",
                "--steps",
                "2",
                "--device",
                "cpu",
            ],
            &["backbone.transformer", "heads"],
        );
    }
}

/// Under 50 Hz the log-mel baseline's 10 ms hop is no sample at all (a panic in logmel.rs).
#[test]
fn audio_sample_rate_under_50_hz_is_refused() {
    assert_refused(
        &[
            "pretrain",
            "--method",
            "wav2vec2",
            "--backbone",
            "wav2vec",
            "--data",
            "clips",
            "--set",
            "data.audio.sample_rate=40",
            "--out",
            "out",
            "--steps",
            "2",
            "--device",
            "cpu",
        ],
        &["sample_rate", "40 Hz", "log-mel"],
    );
}

/// Clips shorter than the wav2vec feature encoder's receptive field panicked in a
/// convolution inside libtorch.
#[test]
fn audio_clips_too_short_for_the_wav2vec_encoder_are_refused() {
    assert_refused(
        &[
            "pretrain",
            "--method",
            "wav2vec2",
            "--backbone",
            "wav2vec",
            "--data",
            "clips",
            "--set",
            "data.audio.clip_seconds=0.01",
            "--out",
            "out",
            "--steps",
            "2",
            "--device",
            "cpu",
        ],
        &["data.audio.clip_seconds", "frames"],
    );
}

/// 3-px images panicked in the small CNN's max-pool (`Output size is too small`).
#[test]
fn images_smaller_than_the_backbone_takes_are_refused() {
    for method in ["simclr", "jigsaw", "rotation"] {
        assert_refused(
            &[
                "pretrain",
                "--method",
                method,
                "--data",
                "images",
                "--image-size",
                "3",
                "--batch-size",
                "4",
                "--out",
                "out",
                "--steps",
                "2",
                "--device",
                "cpu",
            ],
            &["data.image_size", "small-cnn", "at least 4 px"],
        );
    }
}

/// `data.seq_len = 0` panicked building the token views.
#[test]
fn text_sequences_shorter_than_two_tokens_are_refused() {
    for seq_len in ["0", "1"] {
        assert_refused(
            &[
                "pretrain",
                "--method",
                "gpt",
                "--backbone",
                "transformer",
                "--data",
                "labeled.tsv",
                "--set",
                &format!("data.seq_len={seq_len}"),
                "--out",
                "out",
                "--steps",
                "2",
                "--device",
                "cpu",
            ],
            &["data.seq_len", "at least 2"],
        );
    }
}

/// A batch larger than a one-sample file, and a missing unlabeled folder, were refused only
/// after the run folder was made.
#[test]
fn refusals_found_while_training_starts_leave_no_run_folder() {
    for (data, method, backbone) in [
        ("one-line.tsv", "bert-mlm", "transformer"),
        ("one-row.csv", "vime", "mlp"),
        ("one-sample-clip", "wav2vec2", "wav2vec"),
    ] {
        assert_refused(
            &[
                "pretrain",
                "--method",
                method,
                "--backbone",
                backbone,
                "--data",
                data,
                "--batch-size",
                "2",
                "--out",
                "out",
                "--steps",
                "2",
                "--device",
                "cpu",
            ],
            &["train.batch_size", "more than the 1 training samples", data],
        );
    }
    assert_refused(
        &[
            "pretrain",
            "--method",
            "wav2vec2",
            "--backbone",
            "wav2vec",
            "--data",
            "clips",
            "--set",
            "data.unlabeled=[\"nowhere\"]",
            "--out",
            "out",
            "--steps",
            "2",
            "--device",
            "cpu",
        ],
        &["nowhere"],
    );
}

/// `--data` of another modality than the run's was read with the run's settings and failed
/// on something else (`embedded: cannot read`, from a tokenizer trained for text).
#[test]
fn transfer_data_of_another_modality_is_refused_naming_both() {
    for command in [
        &["probe", "image-run", "--data", "labeled.tsv"][..],
        &["finetune", "image-run", "--data", "table.csv"],
        &["embed", "image-run", "clips", "-o", "out.npy"],
        &[
            "reconstruct",
            "mae-run",
            "--data",
            "labeled.tsv",
            "-o",
            "out.png",
        ],
    ] {
        let mut args = command.to_vec();
        args.extend(["--device", "cpu"]);
        assert_refused(&args, &["pretrained on images"]);
    }
}

/// A folder of IDX files with a LICENSE .txt beside them (../shared/data/vision/mnist-5k)
/// was read as text and refused with a confusing error.
#[test]
fn an_image_folder_with_a_license_txt_pretrains_as_images() {
    let dir = fixtures().dir.join("licensed");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    let images = embedded_slice(&dir, 32, 8);
    std::fs::write(images.join("LICENSE-BSD3.txt"), "BSD 3-Clause License\n").unwrap();
    assert_succeeds(&[
        "pretrain",
        "--data",
        images.to_str().unwrap(),
        "--out",
        dir.join("run").to_str().unwrap(),
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--set",
        "health.knn_every=0",
    ]);
}

/// A refused quickstart used to leave its run folder.
#[test]
fn quickstart_settings_are_refused_before_its_run_folder() {
    assert_refused(
        &[
            "quickstart",
            "--steps",
            "0",
            "--out",
            "out",
            "--device",
            "cpu",
        ],
        &["train.steps"],
    );
    assert_refused(
        &[
            "quickstart",
            "--labels",
            "0",
            "--steps",
            "2",
            "--out",
            "out",
            "--device",
            "cpu",
        ],
        &["label budget"],
    );
}

/// clap's usage errors (a negative number after a flag, a missing argument) printed several
/// lines and exited with 2.
#[test]
fn argument_errors_are_one_line_and_exit_code_1() {
    assert_refused(
        &["pretrain", "--epochs", "-1", "--out", "out"],
        &["'-1'", "--help"],
    );
    assert_refused(&["generate", "gpt-run"], &["--prompt"]);
    assert_refused(&["nonsense"], &["nonsense"]);
}

// ---------------------------------------------------------------------------------------------
// The sweeps: wrong arguments, out-of-range settings, tiny and empty files.

/// `pretrain` with settings out of range and tiny or empty files of every modality.
#[test]
fn pretrain_refuses_every_wrong_setting_and_tiny_file_in_one_line() {
    fn run<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "pretrain",
            "--out",
            "out",
            "--steps",
            "2",
            "--batch-size",
            "4",
            "--device",
            "cpu",
        ];
        args.extend(extra);
        args
    }
    let text = ["--method", "bert-mlm", "--backbone", "transformer"];
    let gpt = ["--method", "gpt", "--backbone", "transformer"];
    let table = ["--method", "scarf", "--backbone", "mlp"];
    let audio = ["--method", "wav2vec2", "--backbone", "wav2vec"];
    let with = |base: &[&'static str], extra: &[&'static str]| -> Vec<&'static str> {
        base.iter().chain(extra).copied().collect()
    };
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (
            vec!["--data", "images", "--set", "train.steps=0"],
            &["train.steps"],
        ),
        (
            vec!["--data", "images", "--set", "train.batch_size=1"],
            &["train.batch_size"],
        ),
        (vec!["--data", "images", "--lr", "0"], &["optimizer.lr"]),
        (
            vec!["--data", "images", "--workers", "0"],
            &["data.workers"],
        ),
        (vec!["--data", "images", "--method", "byol2"], &["byol2"]),
        (vec!["--data", "images", "--backbone", "vgg"], &["vgg"]),
        (
            vec!["--data", "images", "--set", "device=\"tpu\""],
            &["tpu"],
        ),
        (
            vec!["--data", "images", "--set", "data.holdout_fraction=1.0"],
            &["data.holdout_fraction"],
        ),
        (
            vec!["--data", "images", "--set", "train.batch_sise=4"],
            &["batch_sise"],
        ),
        (vec!["--data", "images", "--set", "seed=\"one\""], &["seed"]),
        (
            vec!["--data", "images", "--set", "backbone.small_cnn.widths=[]"],
            &["backbone.small_cnn", "widths"],
        ),
        (
            vec![
                "--data",
                "images",
                "--set",
                "backbone.small_cnn.pool_after=[7]",
            ],
            &["pool_after"],
        ),
        (
            vec![
                "--data",
                "images",
                "--backbone",
                "vit",
                "--set",
                "backbone.vit.patch_size=0",
            ],
            &["patch_size"],
        ),
        (
            vec![
                "--data",
                "images",
                "--backbone",
                "vit",
                "--set",
                "backbone.vit.patch_size=5",
            ],
            &["backbone.vit.patch_size"],
        ),
        (
            vec!["--data", "images", "--method", "mae"],
            &["backbone.kind", "vit"],
        ),
        (
            vec![
                "--data",
                "images",
                "--method",
                "mae",
                "--backbone",
                "vit",
                "--set",
                "method.mae.mask_ratio=1.0",
            ],
            &["mask_ratio"],
        ),
        (
            vec![
                "--data",
                "images",
                "--method",
                "gpt",
                "--backbone",
                "transformer",
            ],
            &["images", "gpt"],
        ),
        (
            vec![
                "--data",
                "images",
                "--method",
                "moco",
                "--set",
                "method.moco.temperature=0",
            ],
            &["method.moco"],
        ),
        (
            vec![
                "--data",
                "images",
                "--method",
                "dino",
                "--set",
                "method.dino.momentum=2",
            ],
            &["method.dino"],
        ),
        (
            vec!["--data", "images", "--set", "data.unlabeled=[\"clips\"]"],
            &["data.unlabeled", "audio only"],
        ),
        (vec!["--data", "nowhere"], &["nowhere", "not found"]),
        (
            vec!["--data", "truncated-idx"],
            &["train-images-idx3-ubyte", "truncated"],
        ),
        (vec!["--data", "not-a.png"], &["not-a.png"]),
        (
            with(&text, &["--data", "empty.tsv"]),
            &["empty.tsv", "no text"],
        ),
        (
            with(&gpt, &["--data", "empty.txt"]),
            &["empty.txt", "no text"],
        ),
        (
            with(
                &text,
                &["--data", "labeled.tsv", "--set", "data.vocab_size=3"],
            ),
            &["vocab_size"],
        ),
        (
            with(
                &text,
                &[
                    "--data",
                    "labeled.tsv",
                    "--set",
                    "data.tokenizer=\"missing.json\"",
                ],
            ),
            &["missing.json"],
        ),
        (
            with(
                &text,
                &[
                    "--data",
                    "labeled.tsv",
                    "--set",
                    "data.tokenizer=\"not-toml.toml\"",
                ],
            ),
            &["not-toml.toml"],
        ),
        (
            with(
                &text,
                &[
                    "--data",
                    "labeled.tsv",
                    "--set",
                    "backbone.pretrained=\"nowhere\"",
                ],
            ),
            &["nowhere"],
        ),
        (
            with(
                &text,
                &[
                    "--data",
                    "labeled.tsv",
                    "--set",
                    "backbone.transformer.layers=0",
                ],
            ),
            &["backbone.transformer", "layers"],
        ),
        (
            with(
                &text,
                &[
                    "--data",
                    "labeled.tsv",
                    "--set",
                    "backbone.transformer.dropout=1.5",
                ],
            ),
            &["dropout"],
        ),
        (
            with(
                &text,
                &["--data", "labeled.tsv", "--set", "data.seq_len=1000"],
            ),
            &["data.seq_len", "positions"],
        ),
        (
            with(&text, &["--data", "table.csv"]),
            &["tables", "bert-mlm"],
        ),
        (with(&table, &["--data", "empty.csv"]), &["empty.csv"]),
        (
            with(&table, &["--data", "header-only.csv"]),
            &["header-only.csv", "no rows"],
        ),
        (
            with(
                &table,
                &["--data", "table.csv", "--set", "data.table.label=\"class\""],
            ),
            &["class", "data.table.label"],
        ),
        (
            with(
                &table,
                &[
                    "--data",
                    "table.csv",
                    "--set",
                    "method.scarf.corruption_rate=2",
                ],
            ),
            &["corruption_rate"],
        ),
        (
            vec![
                "--method",
                "scarf",
                "--backbone",
                "small-cnn",
                "--data",
                "table.csv",
            ],
            &["backbone", "mlp"],
        ),
        (
            with(
                &["--method", "vime", "--backbone", "mlp"],
                &[
                    "--data",
                    "table.csv",
                    "--set",
                    "method.vime.mask_probability=0",
                ],
            ),
            &["mask_probability"],
        ),
        (with(&audio, &["--data", "no-audio"]), &["empty.wav"]),
        (
            with(
                &audio,
                &["--data", "clips", "--set", "data.audio.sample_rate=0"],
            ),
            &["sample_rate"],
        ),
        (
            with(
                &audio,
                &["--data", "clips", "--set", "data.audio.clip_seconds=0"],
            ),
            &["clip_seconds"],
        ),
        (
            with(
                &audio,
                &[
                    "--data",
                    "clips",
                    "--set",
                    "data.audio.resample=false",
                    "--set",
                    "data.audio.sample_rate=8000",
                ],
            ),
            &["16000 Hz", "8000 Hz"],
        ),
        (
            with(
                &audio,
                &["--data", "clips", "--set", "method.wav2vec2.negatives=0"],
            ),
            &["negatives"],
        ),
        (
            with(
                &audio,
                &["--data", "clips", "--set", "data.unlabeled=[\"images\"]"],
            ),
            &["images", "wav"],
        ),
        (
            with(
                &["--method", "simclr", "--backbone", "wav2vec"],
                &["--data", "clips"],
            ),
            &["audio", "simclr"],
        ),
    ];
    for (extra, needles) in cases {
        assert_refused(&run(&extra), needles);
    }
}

/// The commands that read a run (probe, finetune, embed, generate, health, reconstruct,
/// attention), `pretrain --resume`, and those that read files of their own (tokenizer,
/// study).
#[test]
fn every_other_subcommand_refuses_wrong_arguments_in_one_line() {
    let cases: Vec<(&[&str], &[&str])> = vec![
        (&["probe", "nowhere"], &["nowhere", "not a pretext run"]),
        (
            &["probe", "image-run", "--labels", "0"],
            &["label budget \"0\""],
        ),
        (&["probe", "image-run", "--labels", "abc"], &["\"abc\""]),
        (&["probe", "image-run", "--labels", "200%"], &["200%"]),
        (
            &["probe", "image-run", "--labels", "100000"],
            &["100000", "at most"],
        ),
        (&["probe", "image-run", "--labels", "10,"], &["--labels"]),
        (&["probe", "table-run", "--labels", "0"], &["label budget"]),
        (&["probe", "image-run", "--device", "cuda:9"], &["cuda:9"]),
        (
            &["finetune", "image-run", "--labels", "0"],
            &["label budget"],
        ),
        (
            &[
                "finetune",
                "image-run",
                "--self-train",
                "1",
                "--pseudo-threshold",
                "2",
            ],
            &["--pseudo-threshold"],
        ),
        (
            &["finetune", "image-run", "--from-pretrained"],
            &["--from-pretrained"],
        ),
        (
            &[
                "embed",
                "image-run",
                "images",
                "-o",
                "out.npy",
                "--split",
                "valid",
            ],
            &["--split valid"],
        ),
        (
            &["embed", "gpt-run", "empty.tsv", "-o", "out.npy"],
            &["empty.tsv"],
        ),
        (
            &["embed", "table-run", "header-only.csv", "-o", "out.npy"],
            &["header-only.csv"],
        ),
        (
            &[
                "embed",
                "table-run",
                "one-row.csv",
                "-o",
                "out.npy",
                "--split",
                "test",
            ],
            &["one-row.csv", "test split is empty"],
        ),
        (
            &[
                "embed",
                "audio-run",
                "one-sample-clip",
                "-o",
                "out.npy",
                "--split",
                "test",
            ],
            &["one-sample-clip", "test split is empty"],
        ),
        (
            &["embed", "audio-run", "no-audio", "-o", "out.npy"],
            &["empty.wav"],
        ),
        (
            &["embed", "image-run", "images", "-o", "nowhere/out.npy"],
            &["nowhere/out.npy"],
        ),
        (
            &["generate", "image-run", "--prompt", "hi"],
            &["method gpt"],
        ),
        (&["generate", "gpt-run", "--prompt", ""], &["--prompt"]),
        (
            &["generate", "gpt-run", "--prompt", "hi", "--max-tokens", "0"],
            &["--max-tokens"],
        ),
        (
            &["generate", "gpt-run", "--prompt", "hi", "--top-p", "0"],
            &["--top-p"],
        ),
        (
            &["generate", "gpt-run", "--prompt", "hi", "--top-p", "1.5"],
            &["--top-p"],
        ),
        (
            &["generate", "gpt-run", "--prompt", "hi", "--temperature=-1"],
            &["--temperature"],
        ),
        (
            &[
                "generate",
                "gpt-run",
                "--prompt",
                "hi",
                "--temperature",
                "inf",
            ],
            &["--temperature"],
        ),
        (&["health", "nowhere"], &["nowhere"]),
        (&["health", "labeled.tsv"], &["labeled.tsv"]),
        (
            &["reconstruct", "image-run", "-o", "out.png"],
            &["method mae"],
        ),
        (
            &["reconstruct", "mae-run", "-o", "out.png", "--count", "0"],
            &["--count 0"],
        ),
        (
            &[
                "reconstruct",
                "mae-run",
                "-o",
                "out.png",
                "--mask-ratio",
                "1.5",
            ],
            &["--mask-ratio"],
        ),
        (
            &["reconstruct", "mae-run", "-o", "out.png", "not-a.png"],
            &["not-a.png"],
        ),
        (
            &["reconstruct", "mae-run", "-o", "out.png", "missing.png"],
            &["missing.png"],
        ),
        (&["attention", "image-run", "-o", "out.png"], &["vit"]),
        (
            &["attention", "mae-run", "-o", "out.png", "--count", "0"],
            &["--count 0"],
        ),
        (&["pretrain", "--resume", "nowhere"], &["nowhere"]),
        (
            &["pretrain", "--resume", "image-run", "--steps", "1"],
            &["step 2"],
        ),
        (
            &["pretrain", "--resume", "image-run", "--lr", "1"],
            &["--lr cannot change"],
        ),
        (
            &[
                "tokenizer",
                "train",
                "--corpus",
                "empty.txt",
                "--kind",
                "bpe",
                "-o",
                "out.json",
            ],
            &["empty.txt"],
        ),
        (
            &[
                "tokenizer",
                "train",
                "--corpus",
                "labeled.tsv",
                "--kind",
                "bpe",
                "--vocab-size",
                "0",
                "-o",
                "out.json",
            ],
            &["vocab_size"],
        ),
        (
            &[
                "tokenizer",
                "train",
                "--corpus",
                "nowhere.txt",
                "--kind",
                "wordpiece",
                "-o",
                "out.json",
            ],
            &["nowhere.txt"],
        ),
        (
            &[
                "tokenizer",
                "train",
                "--corpus",
                "labeled.tsv",
                "--kind",
                "unigram",
                "-o",
                "out.json",
            ],
            &["unigram"],
        ),
        (&["study", "--config", "nowhere.toml"], &["nowhere.toml"]),
        (&["study", "--config", "not-toml.toml"], &["not-toml.toml"]),
        (
            &["quickstart", "--method", "gpt", "--out", "out"],
            &["--method gpt"],
        ),
        (
            &["quickstart", "--method", "nope", "--out", "out"],
            &["nope"],
        ),
    ];
    for (args, needles) in cases {
        let mut args = args.to_vec();
        let reads_a_device = !matches!(args[0], "health" | "tokenizer" | "study")
            && !args.contains(&"--device")
            && args[..2] != ["pretrain", "--resume"];
        if reads_a_device {
            args.extend(["--device", "cpu"]);
        }
        assert_refused(&args, needles);
    }
}

//! Models in and out, through the binary:
//!
//! * `embed --model` on the real all-MiniLM-L6-v2 folder gives the reference sentence
//!   embeddings of `../shared/data/text/minilm-reference.json` to 1e-5 (tokenization, pooling
//!   and normalization from the folder's sentence-transformers files), as .npy, JSON Lines
//!   and Parquet; a folder that is not a model is refused by name.
//! * `export --format torchscript` of every backbone (small CNN, ResNet-18, ViT, transformer,
//!   table MLP, wav2vec) is loaded by plain PyTorch in the project's venv and gives
//!   `pretext embed`'s features to 1e-5 on real held-out data (for images, read from the IDX
//!   file in Python and fed as uint8).
//! * `export --format safetensors` writes ResNet and ViT weights under timm's names with a
//!   config.json, and refuses the other backbones.
//! * `export --format hf` of MiniLM after a short continued MLM, read back with
//!   `embed --model`, gives the run's own embeddings; a pre-norm transformer is refused.
//!
//! PyTorch comes from `python3` on PATH (`./x test` puts the venv's first). Without it the
//! TorchScript test says so and passes, unless PRETEXT_REQUIRE_DATA=1 (CI), where it fails.

use std::path::Path;
use std::process::Command;

mod common;
use common::{
    arg, assert_fails_naming, assert_succeeds, austen_slice, embedded_slice, keyword_clips,
    pretext, Outcome,
};
use pretext_data::test_data::{data_required, minilm_checkpoint, shared_data};

/// The largest difference allowed between two float32 embeddings of the same input.
const TOLERANCE: f32 = 1e-5;

/// `pretext pretrain --method bert-mlm --backbone transformer` on `train` into `out`, batch
/// 8 on the CPU, with `--set` for each of `sets` and the other arguments `more`.
fn pretrain_bert_mlm(train: &Path, out: &Path, sets: &[&str], more: &[&str]) -> Outcome {
    let mut args = vec![
        "pretrain",
        "--method",
        "bert-mlm",
        "--backbone",
        "transformer",
        "--data",
        arg(train),
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--out",
        arg(out),
    ];
    for set in sets {
        args.extend(["--set", set]);
    }
    args.extend(more);
    pretext(&args)
}

fn read_npy(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let array = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = array.shape().to_vec();
    (shape, array.into_vec::<f32>().unwrap())
}

fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `python3` when it can import torch; else None with a note (a failure under
/// PRETEXT_REQUIRE_DATA=1).
fn python_with_torch() -> Option<&'static str> {
    let found = Command::new("python3")
        .args(["-c", "import torch, numpy"])
        .status()
        .is_ok_and(|status| status.success());
    if found {
        return Some("python3");
    }
    assert!(
        !data_required(),
        "python3 cannot import torch, and PRETEXT_REQUIRE_DATA=1: run the tests through ./x test"
    );
    eprintln!("skipped: python3 cannot import torch");
    None
}

fn reference_sentences() -> Option<Vec<serde_json::Value>> {
    let path = shared_data("text/minilm-reference.json")?;
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Some(reference["sentences"].as_array().unwrap().clone())
}

#[test]
fn embed_model_gives_the_minilm_reference_embeddings_in_every_format() {
    let (Some(model), Some(sentences)) = (minilm_checkpoint(), reference_sentences()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let texts = dir.path().join("sentences.jsonl");
    let lines: Vec<String> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| serde_json::json!({"id": format!("s{i}"), "text": s["text"]}).to_string())
        .collect();
    std::fs::write(&texts, lines.join("\n") + "\n").unwrap();
    let want: Vec<f32> = sentences
        .iter()
        .flat_map(|s| {
            s["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect::<Vec<_>>()
        })
        .collect();

    let npy = dir.path().join("e.npy");
    let outcome = pretext(&[
        "embed",
        "--model",
        arg(&model),
        arg(&texts),
        "-o",
        arg(&npy),
    ]);
    assert_succeeds(&outcome, "embed --model");
    assert!(
        outcome
            .stderr
            .contains("mean_tokens pooling, L2-normalized, up to 256 tokens"),
        "{}",
        outcome.stderr
    );
    let (shape, got) = read_npy(&npy);
    assert_eq!(shape, [sentences.len() as u64, 384]);
    let difference = largest_difference(&got, &want);
    assert!(
        difference < TOLERANCE,
        "largest difference {difference:.2e}"
    );

    // JSON Lines: the ids from the file, the texts, the same floats.
    let jsonl = dir.path().join("e.jsonl");
    let outcome = pretext(&[
        "embed",
        "--model",
        arg(&model),
        arg(&texts),
        "-o",
        arg(&jsonl),
    ]);
    assert_succeeds(&outcome, "embed --model -o e.jsonl");
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(rows[3]["id"], "s3");
    assert_eq!(rows[3]["text"], sentences[3]["text"]);
    let from_jsonl: Vec<f32> = rows
        .iter()
        .flat_map(|row| {
            row["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(from_jsonl, got, "JSON Lines holds the .npy's exact floats");

    // Parquet, asked for by --format whatever the extension.
    let parquet = dir.path().join("e.out");
    let outcome = pretext(&[
        "embed",
        "--model",
        arg(&model),
        arg(&texts),
        "-o",
        arg(&parquet),
        "--format",
        "parquet",
    ]);
    assert_succeeds(&outcome, "embed --model --format parquet");
    let file = std::fs::File::open(&parquet).unwrap();
    let batch = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.num_rows(), sentences.len());
    let schema = batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "text", "embedding"]);

    // A short --max-length cuts texts and says how many.
    let outcome = pretext(&[
        "embed",
        "--model",
        arg(&model),
        arg(&texts),
        "-o",
        arg(&npy),
        "--max-length",
        "4",
    ]);
    assert_succeeds(&outcome, "embed --model --max-length 4");
    let longer = sentences
        .iter()
        .filter(|s| s["input_ids"].as_array().unwrap().len() > 4)
        .count();
    assert!(
        outcome.stderr.contains(&format!(
            "{longer} of {} texts are longer than 4 tokens",
            sentences.len()
        )),
        "{}",
        outcome.stderr
    );

    // Folders that are not a model pretext can read are refused by name.
    let empty = dir.path().join("not-a-model");
    std::fs::create_dir(&empty).unwrap();
    let outcome = pretext(&[
        "embed",
        "--model",
        arg(&empty),
        arg(&texts),
        "-o",
        arg(&npy),
    ]);
    assert_fails_naming(&outcome, &["not-a-model", "config.json is missing"]);
    let pickled = dir.path().join("pickled");
    std::fs::create_dir(&pickled).unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(model.join(file), pickled.join(file)).unwrap();
    }
    std::fs::write(pickled.join("pytorch_model.bin"), b"\x80\x02").unwrap();
    let outcome = pretext(&[
        "embed",
        "--model",
        arg(&pickled),
        arg(&texts),
        "-o",
        arg(&npy),
    ]);
    assert_fails_naming(&outcome, &["pytorch_model.bin", "never loaded"]);
    let gpt = dir.path().join("gpt2");
    std::fs::create_dir(&gpt).unwrap();
    let config = std::fs::read_to_string(model.join("config.json"))
        .unwrap()
        .replace("\"bert\"", "\"gpt2\"");
    std::fs::write(gpt.join("config.json"), config).unwrap();
    std::fs::copy(model.join("tokenizer.json"), gpt.join("tokenizer.json")).unwrap();
    let outcome = pretext(&["embed", "--model", arg(&gpt), arg(&texts), "-o", arg(&npy)]);
    assert_fails_naming(&outcome, &["gpt2", "config.json", "model_type"]);
    let outcome = pretext(&[
        "embed",
        "--model",
        arg(&model),
        arg(&texts),
        arg(&texts),
        "-o",
        arg(&npy),
    ]);
    assert_fails_naming(&outcome, &["embeds DATA alone"]);
}

#[test]
fn torchscript_exports_of_every_backbone_load_in_pytorch_and_give_embeds_features() {
    let Some(python) = python_with_torch() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let images = embedded_slice(dir.path(), 64, 50);
    let held_out_images = images.join("t10k-images-idx3-ubyte");
    let (Some(train_text), Some(test_text), Some(table), Some(clips)) = (
        austen_slice("austen_train.tsv", 120, dir.path()),
        austen_slice("austen_test.tsv", 40, dir.path()),
        shared_data("tabular/wine.csv"),
        keyword_clips(dir.path()),
    ) else {
        return;
    };
    let test_path = format!("data.test_path={:?}", arg(&test_text));
    let cases: Vec<(&str, Vec<&str>, Option<&Path>)> = vec![
        (
            "small-cnn",
            vec!["--data", arg(&images)],
            Some(&held_out_images),
        ),
        (
            "resnet18",
            vec!["--data", arg(&images), "--backbone", "resnet18"],
            Some(&held_out_images),
        ),
        (
            "vit",
            vec![
                "--data",
                arg(&images),
                "--backbone",
                "vit",
                "--set",
                "backbone.vit.layers=1",
            ],
            Some(&held_out_images),
        ),
        (
            "transformer",
            vec![
                "--method",
                "bert-mlm",
                "--backbone",
                "transformer",
                "--data",
                arg(&train_text),
                "--set",
                &test_path,
                "--set",
                "data.vocab_size=600",
                "--set",
                "data.seq_len=32",
                "--set",
                "backbone.transformer.layers=1",
            ],
            None,
        ),
        (
            "mlp",
            vec![
                "--method",
                "scarf",
                "--backbone",
                "mlp",
                "--data",
                arg(&table),
            ],
            None,
        ),
        (
            "wav2vec",
            vec![
                "--method",
                "wav2vec2",
                "--backbone",
                "wav2vec",
                "--data",
                arg(&clips),
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
            ],
            None,
        ),
    ];
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/check_torchscript.py");
    for (backbone, pretrain_args, idx_images) in cases {
        let run = dir.path().join(format!("run-{backbone}"));
        let mut args = vec![
            "pretrain",
            "--out",
            arg(&run),
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--device",
            "cpu",
        ];
        args.extend(pretrain_args.iter().copied());
        assert_succeeds(&pretext(&args), &format!("pretrain {backbone}"));
        let encoder = dir.path().join(format!("{backbone}.pt"));
        let outcome = pretext(&[
            "export",
            arg(&run),
            "--format",
            "torchscript",
            "-o",
            arg(&encoder),
        ]);
        assert_succeeds(&outcome, &format!("export {backbone}"));
        assert!(
            outcome
                .stderr
                .contains("loaded back, it gives the run's features"),
            "{}",
            outcome.stderr
        );
        let data = pretrain_args[pretrain_args.iter().position(|a| *a == "--data").unwrap() + 1];
        let features = dir.path().join(format!("{backbone}.npy"));
        let outcome = pretext(&[
            "embed",
            arg(&run),
            data,
            "--split",
            "test",
            "-o",
            arg(&features),
        ]);
        assert_succeeds(&outcome, &format!("embed {backbone}"));
        let mut check = Command::new(python);
        check.arg(&script).arg(&encoder).arg(&features);
        if let Some(images) = idx_images {
            check.arg(images);
        }
        let output = check.output().expect("python3 starts");
        let report = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        eprint!("{report}");
        assert!(output.status.success(), "{backbone}: {report}");

        // Weights under timm's names with a config.json, for the image networks timm has.
        let folder = dir.path().join(format!("{backbone}-safetensors"));
        let outcome = pretext(&[
            "export",
            arg(&run),
            "--format",
            "safetensors",
            "-o",
            arg(&folder),
        ]);
        match backbone {
            "resnet18" | "vit" => {
                assert_succeeds(&outcome, &format!("export {backbone} as safetensors"));
                let config: serde_json::Value = serde_json::from_str(
                    &std::fs::read_to_string(folder.join("config.json")).unwrap(),
                )
                .unwrap();
                assert_eq!(config["num_classes"], 0);
                assert!(folder.join("model.safetensors").is_file());
                let names: Vec<String> =
                    tch::Tensor::read_safetensors(folder.join("model.safetensors"))
                        .unwrap()
                        .into_iter()
                        .map(|(name, _)| name)
                        .collect();
                let expected = if backbone == "vit" {
                    "blocks.0.attn.qkv.weight"
                } else {
                    "layer1.0.conv1.weight"
                };
                assert!(names.iter().any(|name| name == expected), "{names:?}");
            }
            _ => {
                assert_fails_naming(&outcome, &["timm names", "--format torchscript"]);
                assert!(!folder.exists());
            }
        }
    }
}

#[test]
fn hf_export_of_minilm_after_continued_mlm_reads_back_with_embed_model() {
    let (Some(model), Some(sentences)) = (minilm_checkpoint(), reference_sentences()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (Some(train), Some(test)) = (
        austen_slice("austen_train.tsv", 64, dir.path()),
        austen_slice("austen_test.tsv", 16, dir.path()),
    ) else {
        return;
    };
    // Texts shorter than the run's sequences, so that both sides read every token.
    let short = dir.path().join("short.tsv");
    // Labelled with every book, which the run's held-out file also names.
    let books = [
        "sense_and_sensibility",
        "pride_and_prejudice",
        "mansfield_park",
        "emma",
        "northanger_abbey",
        "persuasion",
    ];
    let rows: Vec<String> = sentences
        .iter()
        .zip(books.iter().cycle())
        .map(|(s, book)| format!("{book}\t{}", s["text"].as_str().unwrap()))
        .collect();
    std::fs::write(&short, format!("label\ttext\n{}\n", rows.join("\n"))).unwrap();
    let run = dir.path().join("minilm-mlm");
    let pretrained = format!("backbone.pretrained={:?}", arg(&model));
    let tokenizer = format!("data.tokenizer={:?}", arg(&model));
    // A held-out file of its own, so that `embed RUN short.tsv --split train` is all of it.
    let test_path = format!("data.test_path={:?}", arg(&test));
    let outcome = pretrain_bert_mlm(
        &train,
        &run,
        &[&pretrained, &tokenizer, &test_path, "data.seq_len=64"],
        &["--steps", "2", "--lr", "1e-4"],
    );
    assert_succeeds(&outcome, "continued MLM from MiniLM");
    let exported = dir.path().join("exported");
    let outcome = pretext(&["export", arg(&run), "--format", "hf", "-o", arg(&exported)]);
    assert_succeeds(&outcome, "export --format hf");
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
    ] {
        assert!(exported.join(file).is_file(), "{file} was not written");
    }
    let from_run = dir.path().join("run.npy");
    let outcome = pretext(&[
        "embed",
        arg(&run),
        arg(&short),
        "--split",
        "train",
        "-o",
        arg(&from_run),
    ]);
    assert_succeeds(&outcome, "embed RUN");
    let from_export = dir.path().join("export.npy");
    let outcome = pretext(&[
        "embed",
        "--model",
        arg(&exported),
        arg(&short),
        "-o",
        arg(&from_export),
    ]);
    assert_succeeds(&outcome, "embed --model exported");
    let (shape, run_features) = read_npy(&from_run);
    let (_, export_features) = read_npy(&from_export);
    assert_eq!(shape, [sentences.len() as u64, 384]);
    let difference = largest_difference(&run_features, &export_features);
    assert!(
        difference < TOLERANCE,
        "largest difference {difference:.2e}"
    );
    // Continued pretraining moved the weights: the export is not the download.
    let (_, downloaded) = {
        let path = dir.path().join("downloaded.npy");
        let outcome = pretext(&[
            "embed",
            "--model",
            arg(&model),
            arg(&short),
            "-o",
            arg(&path),
            "--format",
            "npy",
        ]);
        assert_succeeds(&outcome, "embed --model MiniLM");
        read_npy(&path)
    };
    assert!(largest_difference(&downloaded, &export_features) > 1e-4);

    // pretext's own pre-norm transformer has no BERT layout: refused, saying what to do.
    let prenorm = dir.path().join("prenorm");
    let outcome = pretrain_bert_mlm(
        &train,
        &prenorm,
        &[
            "data.vocab_size=600",
            "data.seq_len=32",
            "backbone.transformer.layers=1",
        ],
        &["--steps", "1"],
    );
    assert_succeeds(&outcome, "pretrain a pre-norm transformer");
    let outcome = pretext(&[
        "export",
        arg(&prenorm),
        "--format",
        "hf",
        "-o",
        arg(&dir.path().join("x")),
    ]);
    assert_fails_naming(&outcome, &["norm_first", "--format torchscript"]);
    assert!(!dir.path().join("x").exists());
    // An output folder that does not exist is named before anything is traced (libtorch's own
    // message was a one-line backtrace).
    let missing = dir.path().join("missing/encoder.pt");
    let outcome = pretext(&[
        "export",
        arg(&prenorm),
        "--format",
        "torchscript",
        "-o",
        arg(&missing),
    ]);
    assert_fails_naming(&outcome, &["missing", "does not exist"]);
    assert!(!outcome.stderr.contains("frame #"), "{}", outcome.stderr);
}

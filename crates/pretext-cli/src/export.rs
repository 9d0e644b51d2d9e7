//! `pretext export`: a run's encoder for use outside pretext.
//!
//! * `torchscript`: the encoder **with its input normalization** traced by libtorch and saved
//!   on the CPU, so raw inputs go in — pixels 0–255 (uint8 or float) `[B, C, H, W]`, token ids
//!   `[B, T]` padded with the pad id, table rows `[B, W]` in the table's own units (category
//!   codes for categorical columns, NaN where missing), waveforms `[B, L]` — and the features
//!   `pretext embed` writes come out. Every shape is taken from the tensors, never read off
//!   them while tracing, so any batch (and, for text, any length up to the model's positions)
//!   works. A `<stem>.json` beside it describes the input, `<stem>.example.json` holds two
//!   inputs with their features; text runs get their `<stem>.tokenizer.json`. Before it is kept, the
//!   saved file is loaded back and checked against the run's encoder on real samples of
//!   another batch size.
//! * `hf`: a Hugging Face BERT folder (config.json, model.safetensors with BERT's names,
//!   tokenizer.json and its config, sentence-transformers' pooling files) for BERT-shaped
//!   text transformers (post-norm, bidirectional: MLM runs started from a BERT/MiniLM folder,
//!   or with `backbone.transformer.norm_first = false`).
//! * `safetensors`: image backbones' weights (timm's names where the architecture matches)
//!   with a config.json describing the architecture.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use pretext_data::Samples;
use pretext_eval::load_model;
use pretext_methods::{samples_to_tensor, INPUT_MEAN, INPUT_STD};
use pretext_nn::{Encoder, TransformerConfig};
use pretext_train::{PretrainConfig, RunDir};
use serde_json::{json, Value};
use tch::{CModule, Device, Kind, Tensor};

use crate::args::{ExportArgs, ExportFormat};
use crate::probe::latest_checkpoint;
use crate::run_data::open_for_run;

/// Largest difference allowed between the saved module and the run's encoder.
const EXPORT_TOLERANCE: f64 = 1e-4;
/// Samples traced through and written as the example (`<stem>.example.json`).
const EXAMPLES: usize = 2;
/// Samples the saved module is checked on (a batch size other than the traced one).
const CHECKED: usize = 37;

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let config = run.read_config()?;
    let checkpoint = latest_checkpoint(&run)?;
    // Refused before anything is traced or written (libtorch's own message is a backtrace).
    let parent = match args.output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "-o {}: the folder {} does not exist",
            args.output.display(),
            parent.display()
        );
    }
    let data = open_for_run(&run, &config, args.data.as_deref())?;
    // Exports are made on the CPU: a traced module keeps the device it was traced on.
    let mut model = load_model(&config, &checkpoint, &data.train, Device::Cpu)?;
    // Tracing records the weights as constants, which must not ask for gradients.
    model.store.freeze();
    let encoder = model.method.encoder();
    match args.format {
        ExportFormat::Torchscript => {
            let samples = if data.test.is_empty() {
                &data.train
            } else {
                &data.test
            };
            export_torchscript(&run, &config, encoder, samples, &args.output)
        }
        ExportFormat::Hf => export_hf(&run, &config, &model.store, &args.output),
        ExportFormat::Safetensors => export_safetensors(encoder, &model.store, &args.output),
    }
}

/// The raw inputs the exported module takes for `indices` of `samples` (see the module
/// header), built from the samples as stored.
fn raw_inputs(samples: &Samples, indices: &[usize]) -> Tensor {
    let rows = indices.len() as i64;
    match samples {
        Samples::Images(set) => {
            let mut pixels = Vec::with_capacity(indices.len() * set.image_len());
            for &index in indices {
                pixels.extend_from_slice(set.image(index));
            }
            Tensor::from_slice(&pixels).view([
                rows,
                set.channels as i64,
                set.height as i64,
                set.width as i64,
            ])
        }
        Samples::Table(set) => {
            let scales = table_scales(samples);
            let mut values = Vec::with_capacity(indices.len() * set.width());
            for &index in indices {
                values.extend(
                    set.row(index)
                        .iter()
                        .zip(&scales)
                        .map(|(&value, &(mean, scale))| (f64::from(value) * scale + mean) as f32),
                );
            }
            Tensor::from_slice(&values).view([rows, set.width() as i64])
        }
        Samples::Tokens(_) | Samples::Audio(_) => samples_to_tensor(samples, indices, Device::Cpu),
    }
}

/// Mean and scale that standardized each table column (0 and 1 for categorical codes).
fn table_scales(samples: &Samples) -> Vec<(f64, f64)> {
    let Samples::Table(set) = samples else {
        return Vec::new();
    };
    set.columns
        .iter()
        .zip(&set.training_stats.columns)
        .map(|(column, stats)| match column.kind {
            pretext_data::table::ColumnKind::Numeric => {
                (stats.mean, if stats.std > 0.0 { stats.std } else { 1.0 })
            }
            pretext_data::table::ColumnKind::Categorical { .. } => (0.0, 1.0),
        })
        .collect()
}

/// The input normalization traced into the module: raw inputs to what the encoder reads.
/// `table` holds the table's means and scales, made before tracing starts (a tensor built
/// from host data inside the trace would be recorded as zeros).
fn normalize_inputs(samples: &Samples, table: &TableScaling, raw: &Tensor) -> Tensor {
    match samples {
        Samples::Images(_) => {
            (raw.to_kind(Kind::Float) / 255.0 - f64::from(INPUT_MEAN)) / f64::from(INPUT_STD)
        }
        Samples::Tokens(_) => raw.to_kind(Kind::Int64),
        Samples::Audio(_) => raw.to_kind(Kind::Float),
        Samples::Table(_) => {
            let rows = raw.to_kind(Kind::Float); // [B, W]
            let missing = rows.isnan();
            let standardized = ((rows - &table.means) / &table.scales).masked_fill(&missing, 0.0);
            Tensor::cat(&[standardized, missing.to_kind(Kind::Float)], 1) // [B, 2W]
        }
    }
}

/// A table's column means and scales as tensors `[W]` (empty for other samples).
struct TableScaling {
    means: Tensor,
    scales: Tensor,
}

impl TableScaling {
    fn of(samples: &Samples) -> TableScaling {
        let (means, scales): (Vec<f32>, Vec<f32>) = table_scales(samples)
            .into_iter()
            .map(|(mean, scale)| (mean as f32, scale as f32))
            .unzip();
        TableScaling {
            means: Tensor::from_slice(&means),
            scales: Tensor::from_slice(&scales),
        }
    }
}

fn export_torchscript(
    run: &RunDir,
    config: &PretrainConfig,
    encoder: &dyn Encoder,
    samples: &Samples,
    output: &Path,
) -> anyhow::Result<()> {
    if samples.is_empty() {
        bail!("the run's data has no samples to trace the encoder with");
    }
    let _no_grad = tch::no_grad_guard();
    let examples: Vec<usize> = (0..EXAMPLES.min(samples.len())).collect();
    let example = raw_inputs(samples, &examples);
    let table = TableScaling::of(samples);
    let module = CModule::create_by_tracing(
        "PretextEncoder",
        "forward",
        std::slice::from_ref(&example),
        &mut |inputs| vec![encoder.encode(&normalize_inputs(samples, &table, &inputs[0]), false)],
    )
    .context("tracing the encoder")?;
    let temporary = output.with_extension("pt.partial");
    module
        .save(&temporary)
        .with_context(|| format!("writing {}", temporary.display()))?;
    // What a user gets: the file as loaded back, on samples of another batch size.
    let checked: Vec<usize> = (0..CHECKED.min(samples.len())).collect();
    let worst = check_saved_module(&temporary, encoder, samples, &checked).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })?;
    std::fs::rename(&temporary, output)
        .with_context(|| format!("moving {} to {}", temporary.display(), output.display()))?;
    let features = encoder.encode(&samples_to_tensor(samples, &examples, Device::Cpu), false);
    let description = describe_input(run, config, samples, output)?;
    let sidecar = output.with_extension("json");
    let example_path = output.with_extension("example.json");
    let file_name = |path: &Path| {
        path.file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
    };
    let document = json!({
        "format": "torchscript",
        "pretext_version": env!("CARGO_PKG_VERSION"),
        "run": run.root.display().to_string(),
        "method": config.method.name.as_str(),
        "backbone": config.backbone.kind.as_str(),
        "output_dim": encoder.dim(),
        "input": description,
        "example": file_name(&example_path),
        "load": format!("torch.jit.load({:?})", file_name(output)),
    });
    pretext_train::write_atomic_with(&sidecar, |file| {
        serde_json::to_writer_pretty(&mut *file, &document)?;
        Ok(())
    })?;
    let example_document = json!({
        "inputs": tensor_json(&example),
        "features": tensor_json(&features),
    });
    pretext_train::write_atomic_with(&example_path, |file| {
        serde_json::to_writer(&mut *file, &example_document)?;
        Ok(())
    })?;
    eprintln!(
        "wrote {} (TorchScript, {} → [B, {}]; loaded back, it gives the run's features on {} samples to {worst:.1e})",
        output.display(),
        description["shape"],
        encoder.dim(),
        checked.len()
    );
    eprintln!(
        "wrote {} (what the input is) and {} (two inputs and their features)",
        sidecar.display(),
        example_path.display()
    );
    Ok(())
}

/// Loads the saved module and returns the largest difference between its features and the
/// encoder's on `indices` (and, for text, on the first half of each sequence); an error past
/// [`EXPORT_TOLERANCE`].
fn check_saved_module(
    path: &Path,
    encoder: &dyn Encoder,
    samples: &Samples,
    indices: &[usize],
) -> anyhow::Result<f64> {
    let module = CModule::load(path).with_context(|| format!("loading {}", path.display()))?;
    let mut cases = vec![(
        raw_inputs(samples, indices),
        samples_to_tensor(samples, indices, Device::Cpu),
    )];
    if let Samples::Tokens(set) = samples {
        let half = (set.seq_len as i64 / 2).max(1);
        let (raw, ids) = &cases[0];
        cases.push((raw.narrow(1, 0, half), ids.narrow(1, 0, half)));
    }
    let mut worst: f64 = 0.0;
    for (raw, inputs) in &cases {
        let got = module.forward_ts(&[raw])?;
        let want = encoder.encode(inputs, false);
        let difference = (got - want).abs().max().double_value(&[]);
        // NaN anywhere is as far off as can be (f64::max would skip it).
        worst = if difference.is_nan() {
            f64::INFINITY
        } else {
            worst.max(difference)
        };
    }
    if worst > EXPORT_TOLERANCE {
        bail!(
            "the traced encoder differs from the run's by {worst:.2e} on {} samples (more than {EXPORT_TOLERANCE:.0e}); nothing was written. This is a bug in pretext: please report it with the run's config.toml",
            indices.len()
        );
    }
    Ok(worst)
}

/// The `input` section of the `<stem>.json`: what the module takes.
fn describe_input(
    run: &RunDir,
    config: &PretrainConfig,
    samples: &Samples,
    output: &Path,
) -> anyhow::Result<Value> {
    Ok(match samples {
        Samples::Images(set) => json!({
            "kind": "images",
            "shape": ["B", set.channels, set.height, set.width],
            "dtype": "uint8 (or float) pixels 0-255; the module scales and normalizes them",
        }),
        Samples::Tokens(set) => {
            let tokenizer = output.with_extension("tokenizer.json");
            let source = run.root.join(pretext_data::text::RUN_TOKENIZER);
            std::fs::copy(&source, &tokenizer).with_context(|| {
                format!("copying {} to {}", source.display(), tokenizer.display())
            })?;
            json!({
                "kind": "token ids",
                "shape": ["B", "T"],
                "dtype": "int64",
                "pad_id": set.pad_id,
                "max_length": config.backbone.transformer.max_positions,
                "tokenizer": tokenizer.file_name().map(|name| name.to_string_lossy().into_owned()),
                "pooling": config.backbone.pooling,
            })
        }
        Samples::Table(set) => json!({
            "kind": "table rows",
            "shape": ["B", set.width()],
            "dtype": "float32; numbers in the table's own units, categorical columns as the index of their category below, NaN where missing",
            "columns": set.columns.iter().map(|column| match &column.kind {
                pretext_data::table::ColumnKind::Numeric => json!({"name": column.name, "kind": "numeric"}),
                pretext_data::table::ColumnKind::Categorical { categories } =>
                    json!({"name": column.name, "kind": "categorical", "categories": categories}),
            }).collect::<Vec<_>>(),
        }),
        Samples::Audio(set) => json!({
            "kind": "waveforms",
            "shape": ["B", set.clip_samples],
            "dtype": "float32 samples in [-1, 1], mono",
            "sample_rate": set.sample_rate,
        }),
    })
}

/// A small tensor as nested JSON lists of its shape: integers, or floats written as the
/// shortest text that reads back as the same float32 (NaN as null).
fn tensor_json(tensor: &Tensor) -> Value {
    let integers = !tensor.is_floating_point();
    let flat = Vec::<f64>::try_from(tensor.to_kind(Kind::Double).flatten(0, -1))
        .expect("a CPU tensor converts");
    let scalars: Vec<Value> = flat
        .iter()
        .map(|&value| {
            if integers {
                json!(value as i64)
            } else {
                // f32's shortest text, read as f64, prints the same way again.
                format!("{}", value as f32)
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        })
        .collect();
    tensor
        .size()
        .iter()
        .skip(1)
        .rev()
        .fold(Value::Array(scalars), |nested, &width| {
            let Value::Array(items) = nested else {
                unreachable!("folded from an array")
            };
            Value::Array(
                items
                    .chunks(width.max(1) as usize)
                    .map(|chunk| Value::Array(chunk.to_vec()))
                    .collect(),
            )
        })
}

/// Writes the run's transformer as a Hugging Face BERT folder.
fn export_hf(
    run: &RunDir,
    config: &PretrainConfig,
    store: &tch::nn::VarStore,
    output: &Path,
) -> anyhow::Result<()> {
    let transformer = &config.backbone.transformer;
    if !config.backbone.kind.reads_tokens() {
        bail!(
            "--format hf writes text transformers; this run's backbone is `{}` (use --format torchscript{})",
            config.backbone.kind.as_str(),
            if config.backbone.kind.reads_rows() || config.backbone.kind.reads_audio() {
                ""
            } else {
                " or safetensors"
            }
        );
    }
    bert_shaped(transformer)?;
    let prefix = "encoder.";
    let variables = store.variables();
    let mut named: Vec<(String, Tensor)> = variables
        .iter()
        .filter_map(|(name, tensor)| {
            name.strip_prefix(prefix).map(|bert| {
                (
                    bert.to_string(),
                    tensor.detach().to_kind(Kind::Float).contiguous(),
                )
            })
        })
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    if named.is_empty() {
        bail!("the run's checkpoint holds no encoder weights");
    }
    write_folder(output, |partial| {
        Tensor::write_safetensors(&named, partial.join("model.safetensors"))
            .context("writing model.safetensors")?;
        let tokenizer_source = run.root.join(pretext_data::text::RUN_TOKENIZER);
        let tokenizer = pretext_data::text::TextTokenizer::from_file(&tokenizer_source)?;
        std::fs::copy(&tokenizer_source, partial.join("tokenizer.json"))
            .with_context(|| format!("copying {}", tokenizer_source.display()))?;
        let token = |id: Option<u32>| id.and_then(|id| tokenizer.inner().id_to_token(id));
        let pad_id = tokenizer.pad_id().unwrap_or(0);
        let files = [
            ("config.json", bert_config(transformer, pad_id)),
            (
                "tokenizer_config.json",
                json!({
                    "tokenizer_class": "PreTrainedTokenizerFast",
                    "model_max_length": transformer.max_positions,
                    "cls_token": token(tokenizer.bos_id()),
                    "sep_token": token(tokenizer.eos_id()),
                    "pad_token": token(tokenizer.pad_id()),
                    "mask_token": token(tokenizer.mask_id()),
                    "unk_token": token(tokenizer.unk_id()),
                }),
            ),
            (
                "special_tokens_map.json",
                json!({
                    "cls_token": token(tokenizer.bos_id()),
                    "sep_token": token(tokenizer.eos_id()),
                    "pad_token": token(tokenizer.pad_id()),
                    "mask_token": token(tokenizer.mask_id()),
                    "unk_token": token(tokenizer.unk_id()),
                }),
            ),
        ];
        let sentence_files = pretext_nn::sentence_transformers_files(
            config.backbone.pooling.into(),
            false,
            transformer.hidden_dim,
            transformer.max_positions as usize,
        );
        for (name, value) in files.into_iter().chain(sentence_files) {
            let path = partial.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            pretext_train::write_atomic_with(&path, |file| {
                serde_json::to_writer_pretty(&mut *file, &value)?;
                Ok(())
            })?;
        }
        Ok(())
    })?;
    eprintln!(
        "wrote {} (Hugging Face BERT: {} layers of {}, {} pooling; load it with AutoModel.from_pretrained or SentenceTransformer, or pretext embed --model)",
        output.display(),
        transformer.layers,
        transformer.hidden_dim,
        pretext_nn::TokenPooling::from(config.backbone.pooling).as_str()
    );
    Ok(())
}

/// Writes an image backbone's weights under timm's names and the config.json describing
/// its architecture and input (`pretext_nn::timm_state_dict`, `pretext_nn::timm_config`).
fn export_safetensors(
    encoder: &pretext_nn::Backbone,
    store: &tch::nn::VarStore,
    output: &Path,
) -> anyhow::Result<()> {
    let named = pretext_nn::timm_state_dict(encoder, store, "encoder.").map_err(|error| {
        anyhow::anyhow!("--format safetensors: {error} (--format torchscript takes every backbone)")
    })?;
    let config = pretext_nn::timm_config(encoder)?;
    write_folder(output, |partial| {
        Tensor::write_safetensors(&named, partial.join("model.safetensors"))
            .context("writing model.safetensors")?;
        pretext_train::write_atomic_with(&partial.join("config.json"), |file| {
            serde_json::to_writer_pretty(&mut *file, &config)?;
            Ok(())
        })?;
        Ok(())
    })?;
    eprintln!(
        "wrote {} (model.safetensors with timm's names, {} tensors; config.json: {})",
        output.display(),
        named.len(),
        config["architecture"]
            .as_str()
            .unwrap_or("the architecture")
    );
    Ok(())
}

/// Refuses a transformer that BERT's layout cannot express, saying what to do instead.
fn bert_shaped(transformer: &TransformerConfig) -> anyhow::Result<()> {
    if transformer.causal {
        bail!("--format hf writes BERT encoders; this run's transformer is causal (GPT-style), which BERT's layout cannot express: use --format torchscript");
    }
    if transformer.norm_first {
        bail!("--format hf writes BERT encoders, which normalize after each block; this run's transformer normalizes before (backbone.transformer.norm_first = true, pretext's default). Use --format torchscript, or pretrain from a BERT folder (backbone.pretrained) or with --set backbone.transformer.norm_first=false");
    }
    Ok(())
}

/// The config.json of a BERT encoder of this shape.
fn bert_config(transformer: &TransformerConfig, pad_id: u32) -> Value {
    json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": transformer.vocab_size,
        "hidden_size": transformer.hidden_dim,
        "num_hidden_layers": transformer.layers,
        "num_attention_heads": transformer.heads,
        "intermediate_size": transformer.mlp_dim,
        "hidden_act": "gelu",
        "hidden_dropout_prob": transformer.dropout,
        "attention_probs_dropout_prob": transformer.dropout,
        "max_position_embeddings": transformer.max_positions,
        "type_vocab_size": transformer.type_vocab_size,
        "layer_norm_eps": transformer.layer_norm_eps,
        "pad_token_id": pad_id,
        "position_embedding_type": "absolute",
        "initializer_range": 0.02,
        "torch_dtype": "float32",
    })
}

/// Fills a folder through `fill` in `<output>.partial`, then puts it at `output` (replacing
/// an earlier export there); a failure removes the partial folder and leaves `output` as it
/// was.
fn write_folder(
    output: &Path,
    fill: impl FnOnce(&Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let partial = output.with_extension("partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    if let Err(error) = fill(&partial) {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(error);
    }
    replace_folder(&partial, output)
}

/// Puts the finished folder `partial` at `output`, replacing an earlier export there.
fn replace_folder(partial: &Path, output: &Path) -> anyhow::Result<()> {
    if output.exists() {
        let old: PathBuf = output.with_extension("old");
        let _ = std::fs::remove_dir_all(&old);
        std::fs::rename(output, &old)
            .with_context(|| format!("moving the earlier {} aside", output.display()))?;
        std::fs::rename(partial, output)
            .with_context(|| format!("moving {} to {}", partial.display(), output.display()))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(partial, output)
            .with_context(|| format!("moving {} to {}", partial.display(), output.display()))?;
    }
    Ok(())
}

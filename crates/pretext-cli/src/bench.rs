//! `pretext bench`: SimCLR step time and epoch throughput, and the step time of each method,
//! beside the PyTorch reference scripts in bench/reference/, measured in the same invocation
//! on the same machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use pretext_nn::{nt_xent, Encoder, Projector, ProjectorConfig, SmallCnn, SmallCnnConfig};
use pretext_train::{pretrain, OptimizerConfig, OptimizerKind, PretrainConfig, RunDir, RunMode};
use serde_json::{json, Value};
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::args::BenchArgs;
use crate::cuda;
use crate::large_bench::{large_step, parse_large, parse_precisions};
use crate::method_bench::{audio_step_seconds, method_step_seconds, parse_methods};
use crate::progress::Progress;
use crate::text_bench::{generation_tokens_per_second, text_step_seconds, TextModel};
use pretext_methods::MethodName;

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.allreduce_worker {
        return crate::dist_bench::worker(args);
    }
    let device = cuda::device(&args.device)?;
    let device_name = if device.is_cuda() { "cuda" } else { "cpu" };
    let threads = tch::get_num_threads();
    println!("pretext bench on {device_name} (libtorch threads: {threads})\n");
    let mut results = Vec::new();

    if !args.skip_step {
        let ours = step_benchmark(device, args.warmup, args.iters)?;
        let script_args = step_script_args(args, &[], device_name, threads);
        results.push(compare_step(
            args,
            "simclr_step.py",
            &as_strs(&script_args),
            "SimCLR step (batch 2x128 of 3x32x32, 4-conv encoder, Adam)",
            "simclr step",
            ours,
        )?);
    }
    if !args.skip_epoch {
        let (images_per_second, data_wait, steps) = epoch_benchmark(args, device)?;
        let mut reference_args = vec![
            "--data".to_string(),
            args.data.clone(),
            "--device".into(),
            device_name.into(),
            "--threads".into(),
            threads.to_string(),
            "--workers".into(),
            args.workers.to_string(),
            "--json".into(),
        ];
        if let Some(steps) = args.epoch_steps {
            reference_args.extend(["--max-steps".into(), steps.to_string()]);
        }
        let reference_args = as_strs(&reference_args);
        let [(plain, plain_rate), (tuned, tuned_rate)] =
            reference_both_ways(args, "simclr_epoch.py", &reference_args, "images_per_s")?;
        println!(
            "SimCLR epoch on Fashion-MNIST ({steps} steps of 256, with loading + augmentation): pretext {:.0} images/s (waited {:.2} s on data); PyTorch {:.0} images/s as shipped (pretext/PyTorch {:.2}x), {:.0} images/s with pretext's malloc settings ({:.2}x)",
            images_per_second, data_wait, plain_rate, images_per_second / plain_rate, tuned_rate, images_per_second / tuned_rate
        );
        results.push(json!({"name": "simclr epoch", "pretext_images_per_s": images_per_second,
            "pretext_data_wait_s": data_wait, "pytorch_images_per_s": plain_rate,
            "speedup": images_per_second / plain_rate, "pytorch_tuned_malloc_images_per_s": tuned_rate,
            "speedup_tuned_malloc": images_per_second / tuned_rate, "pytorch": plain, "pytorch_tuned_malloc": tuned}));
    }
    if let Some(list) = &args.methods {
        for method in parse_methods(list)? {
            let name = method.as_str();
            let ours =
                method_step_seconds(method, device, args.method_batch, args.warmup, args.iters)?;
            let batch = args.method_batch.to_string();
            let script_args = step_script_args(
                args,
                &["--method", name, "--batch", &batch],
                device_name,
                threads,
            );
            results.push(compare_step(
                args,
                "method_step.py",
                &as_strs(&script_args),
                &format!(
                    "{name} step (batch {batch} of 1x28x28, {}, AdamW)",
                    if method == MethodName::Mae {
                        "ViT-Tiny/4"
                    } else {
                        "small CNN"
                    }
                ),
                &format!("{name} step"),
                ours,
            )?);
        }
    }
    if args.text {
        results.extend(text_benchmarks(args, device, device_name, threads)?);
    }
    if args.audio {
        let ours = audio_step_seconds(device, args.audio_batch, args.warmup, args.iters)?;
        let batch = args.audio_batch.to_string();
        let script_args = step_script_args(args, &["--batch", &batch], device_name, threads);
        results.push(compare_step(
            args,
            "audio_step.py",
            &as_strs(&script_args),
            &format!("wav2vec 2.0 step (batch {batch} x 1 s at 16 kHz, 7 convs of 128 + 4x128 transformer, 2x320 codebooks, 100 distractors, AdamW)"),
            "wav2vec2 step",
            ours,
        )?);
    }
    if let Some(list) = &args.large {
        results.extend(large_benchmarks(args, list, device, device_name, threads)?);
    }
    if let Some(processes) = args.allreduce {
        results.extend(crate::dist_bench::run(args, processes, device_name)?);
    }
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(
                &json!({"device": device_name, "threads": threads, "results": results}),
            )?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The --large networks in each --precision, beside gpu_step.py on the same device.
fn large_benchmarks(
    args: &BenchArgs,
    list: &str,
    device: Device,
    device_name: &str,
    threads: i32,
) -> anyhow::Result<Vec<Value>> {
    let models = parse_large(list)?;
    let precisions = parse_precisions(&args.precision)?;
    if let Some(batch) = args.large_batch {
        if batch < 2 {
            bail!("--large-batch must be at least 2, found {batch}");
        }
    }
    let mut results = Vec::new();
    for model in models {
        let batch = args.large_batch.unwrap_or(model.default_batch());
        for &precision in &precisions {
            let ours = large_step(model, precision, device, batch, args.warmup, args.iters)?;
            let batch_text = batch.to_string();
            let script_args = step_script_args(
                args,
                &[
                    "--model",
                    model.name(),
                    "--batch",
                    &batch_text,
                    "--precision",
                    precision.as_str(),
                ],
                device_name,
                threads,
            );
            let reference = reference(args, "gpu_step.py", &as_strs(&script_args), false)?;
            let theirs = reference["median_s"].as_f64().unwrap_or(f64::NAN);
            let memory = |mb: Option<f64>| mb.map_or("n/a".to_string(), |mb| format!("{mb:.0} MB"));
            println!(
                "{} in {}: pretext {:.1} ms, {}; PyTorch {:.1} ms, {} (ratio {:.2}x; GPU memory in use after the steps)",
                model.describe(batch),
                precision.as_str(),
                ours.median_s * 1e3,
                memory(ours.gpu_used_mb),
                theirs * 1e3,
                memory(reference["gpu_used_mb"].as_f64()),
                ours.median_s / theirs,
            );
            if let Some(count) = reference["parameters"].as_i64() {
                if count != ours.parameters {
                    println!(
                        "  note: the networks differ: pretext trains {} parameters, the reference {count}",
                        ours.parameters
                    );
                }
            }
            results.push(
                json!({"name": format!("{} {}", model.name(), precision.as_str()),
                "batch": batch, "pretext_median_s": ours.median_s, "pytorch_median_s": theirs,
                "ratio": ours.median_s / theirs, "pretext_gpu_used_mb": ours.gpu_used_mb,
                "pretext_parameters": ours.parameters, "pytorch": reference}),
            );
        }
    }
    Ok(results)
}

/// A step reference script's arguments: `specific` ones, then the timing and device settings.
fn step_script_args(
    args: &BenchArgs,
    specific: &[&str],
    device_name: &str,
    threads: i32,
) -> Vec<String> {
    let mut all: Vec<String> = specific.iter().map(|arg| arg.to_string()).collect();
    all.extend([
        "--warmup".into(),
        args.warmup.to_string(),
        "--iters".into(),
        args.iters.to_string(),
        "--device".into(),
        device_name.into(),
        "--threads".into(),
        threads.to_string(),
        "--json".into(),
    ]);
    all
}

fn as_strs(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// BERT-mini MLM and char-GPT steps beside text_step.py, then generation speed beside it.
fn text_benchmarks(
    args: &BenchArgs,
    device: Device,
    device_name: &str,
    threads: i32,
) -> anyhow::Result<Vec<Value>> {
    if !(1..256).contains(&args.generate_tokens) {
        bail!(
            "--generate-tokens must be between 1 and 255 (one context window), found {}",
            args.generate_tokens
        );
    }
    let mut results = Vec::new();
    for model in [TextModel::BertMini, TextModel::CharGpt] {
        let ours = text_step_seconds(model, device, args.warmup, args.iters)?;
        let script_args = step_script_args(args, &["--model", model.name()], device_name, threads);
        let description = match model {
            TextModel::BertMini => "BERT-mini masked-LM step (4x256, batch 32x128 tokens, AdamW)",
            TextModel::CharGpt => "char-GPT causal-LM step (4x128, batch 32x128 characters, AdamW)",
        };
        results.push(compare_step(
            args,
            "text_step.py",
            &as_strs(&script_args),
            description,
            &format!("{} step", model.name()),
            ours,
        )?);
    }
    let tokens = args.generate_tokens;
    let ours = generation_tokens_per_second(device, tokens);
    let (tokens_text, threads_text) = (tokens.to_string(), threads.to_string());
    let reference_args = [
        "--model",
        "char-gpt",
        "--generate",
        &tokens_text,
        "--device",
        device_name,
        "--threads",
        &threads_text,
        "--json",
    ];
    let [(plain, plain_rate), (tuned, tuned_rate)] =
        reference_both_ways(args, "text_step.py", &reference_args, "tokens_per_s")?;
    println!(
        "char-GPT greedy generation ({tokens} tokens, KV cache, batch 1): pretext {ours:.0} tokens/s; PyTorch {plain_rate:.0} tokens/s as shipped (pretext/PyTorch {:.2}x), {tuned_rate:.0} tokens/s with pretext's malloc settings ({:.2}x)",
        ours / plain_rate,
        ours / tuned_rate
    );
    results.push(json!({"name": "char-gpt generation", "tokens": tokens,
        "pretext_tokens_per_s": ours, "pytorch_tokens_per_s": plain_rate,
        "speedup": ours / plain_rate, "pytorch_tuned_malloc_tokens_per_s": tuned_rate,
        "speedup_tuned_malloc": ours / tuned_rate, "pytorch": plain, "pytorch_tuned_malloc": tuned}));
    Ok(results)
}

/// Median seconds of one SimCLR step of the reference network (see bench/reference/simclr_step.py).
fn step_benchmark(device: Device, warmup: usize, iters: usize) -> anyhow::Result<f64> {
    tch::manual_seed(0);
    let store = VarStore::new(device);
    let root = store.root();
    let encoder = SmallCnn::new(
        &(&root / "encoder"),
        3,
        &SmallCnnConfig {
            widths: vec![32, 64, 128, 256],
            pool_after: vec![1, 2],
        },
    );
    let head = Projector::new(
        &(&root / "head"),
        256,
        &ProjectorConfig {
            hidden_dim: 0,
            output_dim: 128,
            layers: 1,
            batch_norm: false,
        },
    );
    let config = OptimizerConfig {
        kind: OptimizerKind::Adamw,
        weight_decay: 0.0,
        lr: 1e-3,
        ..Default::default()
    };
    let mut optimizer = pretext_train::Optimizer::new(&store, &config);
    let inputs = Tensor::randn([256, 3, 32, 32], (Kind::Float, device));
    let mut times = Vec::new();
    for iteration in 0..warmup + iters {
        let started = Instant::now();
        let z = head.forward_t(&encoder.encode(&inputs, true), true); // [2N, 128]
        let loss = nt_xent(&z.narrow(0, 0, 128), &z.narrow(0, 128, 128), 0.5);
        optimizer.zero_grad()?;
        loss.backward();
        optimizer.step(1e-3)?;
        if device.is_cuda() {
            tch::Cuda::synchronize(0);
        }
        if iteration >= warmup {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    Ok(median(&mut times))
}

/// The real job: pretrain() on Fashion-MNIST for an epoch (or `--epoch-steps`), images/s.
fn epoch_benchmark(args: &BenchArgs, device: Device) -> anyhow::Result<(f64, f64, u64)> {
    let mut config = PretrainConfig::default();
    config.data.path = args.data.clone();
    config.data.workers = args.workers;
    config.optimizer = OptimizerConfig {
        lr: 1e-3,
        weight_decay: 1e-4,
        warmup_steps: 0,
        grad_clip: 0.0,
        ..Default::default()
    };
    config.train.batch_size = 256;
    config.train.epochs = if args.epoch_steps.is_some() { 0.0 } else { 1.0 };
    config.train.steps = args.epoch_steps.unwrap_or(0);
    config.train.checkpoint_every = 0;
    config.health.every = 0;
    config.health.knn_every = 0;
    let data: pretext_data::Splits =
        pretext_data::load_images(&config.data.path, &config.data.source_options())
            .with_context(|| format!("loading {}", args.data))?
            .into();
    let scratch = tempdir()?;
    let run = RunDir::new(&scratch);
    run.prepare_new(RunMode::Overwrite)?;
    let started = Instant::now();
    let outcome = pretrain(&config, &run, None, device, &data, &mut Progress::new())?;
    let seconds = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&scratch).ok();
    Ok((
        outcome.steps_run as f64 * 256.0 / seconds,
        outcome.data_wait_seconds,
        outcome.steps_run,
    ))
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("pretext-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Runs a reference script as shipped, then with pretext's malloc settings; returns each
/// run's JSON with its `field`.
fn reference_both_ways(
    args: &BenchArgs,
    script: &str,
    script_args: &[&str],
    field: &str,
) -> anyhow::Result<[(Value, f64); 2]> {
    let run = |tuned: bool| -> anyhow::Result<(Value, f64)> {
        let value = reference(args, script, script_args, tuned)?;
        let number = value[field]
            .as_f64()
            .with_context(|| format!("{script} printed no {field}"))?;
        Ok((value, number))
    };
    Ok([run(false)?, run(true)?])
}

/// Runs a step reference both ways, prints pretext's median step time beside it as ratios,
/// and returns the JSON row.
fn compare_step(
    args: &BenchArgs,
    script: &str,
    script_args: &[&str],
    description: &str,
    name: &str,
    ours: f64,
) -> anyhow::Result<Value> {
    let [(plain, plain_s), (tuned, tuned_s)] =
        reference_both_ways(args, script, script_args, "median_s")?;
    println!(
        "{description}: pretext {:.1} ms; PyTorch {:.1} ms as shipped (ratio {:.2}x), {:.1} ms with pretext's malloc settings (ratio {:.2}x)",
        ours * 1e3, plain_s * 1e3, ours / plain_s, tuned_s * 1e3, ours / tuned_s
    );
    Ok(json!({"name": name, "pretext_median_s": ours,
        "pytorch_median_s": plain_s, "ratio": ours / plain_s,
        "pytorch_tuned_malloc_median_s": tuned_s, "ratio_tuned_malloc": ours / tuned_s,
        "pytorch": plain, "pytorch_tuned_malloc": tuned}))
}

/// glibc's environment equivalent of `allocator::tune_for_training`, for the reference.
const TUNED_MALLOC_ENV: [(&str, &str); 2] = [
    ("MALLOC_MMAP_MAX_", "0"),
    ("MALLOC_TRIM_THRESHOLD_", "2147483647"),
];

/// Runs a reference script and parses its JSON line; `tuned` gives it pretext's malloc settings.
fn reference(
    args: &BenchArgs,
    script: &str,
    script_args: &[&str],
    tuned: bool,
) -> anyhow::Result<Value> {
    let path = Path::new(&args.reference_dir).join(script);
    let setting = if tuned {
        "with pretext's malloc settings"
    } else {
        "as shipped"
    };
    eprintln!(
        "running the PyTorch reference {} ({setting}) ...",
        path.display()
    );
    let mut command = Command::new(&args.python);
    if tuned {
        command.envs(TUNED_MALLOC_ENV);
    }
    let output = command
        .arg(&path)
        .args(script_args)
        .output()
        .with_context(|| format!("running {} {}", args.python, path.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed:\n{}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|line| line.trim_start().starts_with('{'))
        .context("no JSON line")?;
    Ok(serde_json::from_str(line)?)
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

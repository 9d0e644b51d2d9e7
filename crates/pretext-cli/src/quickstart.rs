//! `pretext quickstart`: pretraining (SimCLR unless --method) on the embedded Fashion-MNIST
//! subset, then the probes beside a random-init encoder and raw pixels.

use anyhow::anyhow;
use pretext_eval::ProbeConfig;
use pretext_methods::MethodName;
use pretext_train::{check_pretraining, pretrain, PretrainConfig, RunDir, RunMode};

use crate::args::QuickstartArgs;
use crate::cuda;
use crate::probe::write_json;
use crate::progress::Progress;
use pretext_eval::probe;

pub fn run(args: &QuickstartArgs) -> anyhow::Result<()> {
    let mut config = PretrainConfig::default();
    config.method.name = MethodName::parse(&args.method).map_err(|message| anyhow!(message))?;
    if config.method.name.reads_tokens() {
        anyhow::bail!(
            "--method {}: the quickstart runs on the embedded images; pretrain text with `pretext pretrain --method {} --backbone transformer --data FILE.tsv`",
            args.method,
            args.method
        );
    }
    if config.method.name.reads_rows() {
        anyhow::bail!(
            "--method {}: the quickstart runs on the embedded images; pretrain tables with `pretext pretrain --method {} --backbone mlp --data FILE.csv`",
            args.method,
            args.method
        );
    }
    if config.method.name.reads_audio() {
        anyhow::bail!(
            "--method {}: the quickstart runs on the embedded images; pretrain audio with `pretext pretrain --method {} --backbone wav2vec --data FOLDER` (see configs/wav2vec2-spoken-words.toml)",
            args.method,
            args.method
        );
    }
    let method = config.method.name.display_name();
    config.train.steps = args.steps;
    config.device = args.device.clone();
    let run = RunDir::new(&args.out);
    run.check_new(RunMode::Overwrite)?;
    let device = cuda::device(&config.device)?;
    let data: pretext_data::Splits =
        pretext_data::load_images(&config.data.path, &config.data.source_options())?.into();
    // Refused before the run folder is touched: the settings, and the probes' label budget.
    check_pretraining(&config, &data)?;
    pretext_data::parse_label_budget(&args.labels, data.train.len())?;
    eprintln!(
        "pretext quickstart: {method} ({} backbone) on {} — {} training images, {} held out, device {}",
        config.backbone.kind.as_str(), data.name, data.train.len(), data.test.len(), pretext_train::device_name(device)
    );
    eprintln!(
        "  labels are not used for pretraining; the probes use {} of them",
        args.labels
    );
    let _lock = crate::pretrain::lock(&run)?;
    run.prepare_new(RunMode::Overwrite)?;
    run.write_config(&config)?;
    let outcome = pretrain(&config, &run, None, device, &data, &mut Progress::new())?;
    eprintln!(
        "pretrained {} steps in {:.0} s (final loss {:.3}); probing with {} labels...",
        outcome.steps_run, outcome.seconds, outcome.last_loss, args.labels
    );
    let probe_config = ProbeConfig {
        labels: args.labels.clone(),
        ..Default::default()
    };
    let report = probe(
        &config,
        &outcome.checkpoint,
        &data,
        &probe_config,
        device,
        true,
    )?;
    println!();
    print!("{}", report.table());
    let [trained, random, raw] = &report.rows[..] else {
        unreachable!("three rows with baselines")
    };
    let knn = |row: &pretext_eval::ProbeRow| 100.0 * row.knn[0].1;
    let linear = |row: &pretext_eval::ProbeRow| {
        row.linear
            .expect("the quickstart's probe runs the linear probe")
    };
    println!();
    println!(
        "{method} vs the same encoder at random init: {:+.1} points (k-NN 20), {:+.1} points (linear).",
        knn(trained) - knn(random),
        100.0 * (linear(trained) - linear(random))
    );
    println!(
        "{method} vs raw pixels: {:+.1} points (k-NN 20), {:+.1} points (linear). Raw pixels are a strong baseline on Fashion-MNIST; the README shows what a longer run on the full dataset reaches.",
        knn(trained) - knn(raw),
        100.0 * (linear(trained) - linear(raw))
    );
    let json_path = run.root.join("quickstart-probe.json");
    write_json(&json_path, &report)?;
    println!(
        "run directory: {} (probe report: {})",
        run.root.display(),
        json_path.display()
    );
    Ok(())
}

//! `pretext probe`: k-NN and linear probe on frozen features, beside the baselines.

use std::path::PathBuf;

use anyhow::{bail, Context};
use pretext_data::ImageSplits;
use pretext_eval::{
    encode_images, evaluate_features, raw_pixel_features, ProbeConfig, ProbeReport, ProbeSplit,
};
use pretext_train::trainer::Model;
use pretext_train::{Checkpoint, PretrainConfig, RunDir};
use tch::Device;

use crate::args::ProbeArgs;
use crate::cuda;

pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let config = run.read_config()?;
    let checkpoint = latest_checkpoint(&run)?;
    let device = cuda::device(&args.device)?;
    let data = match &args.data {
        Some(spec) => config.data.load_from(spec),
        None => config.data.load(),
    }
    .context("loading the data")?;
    let probe_config = ProbeConfig {
        labels: args.labels.clone(),
        seed: args.seed,
        ..Default::default()
    };
    let report = probe(
        &config,
        &checkpoint,
        &data,
        &probe_config,
        device,
        !args.no_baselines,
    )?;
    print!("{}", report.table());
    let json_path = args.json.clone().unwrap_or_else(|| {
        let labels = args.labels.replace('%', "pct");
        run.root
            .join(format!("probe-{labels}-seed{}.json", args.seed))
    });
    write_json(&json_path, &report)?;
    eprintln!("wrote {}", json_path.display());
    Ok(())
}

/// The newest complete checkpoint of a run, warning about damaged newer ones.
pub fn latest_checkpoint(run: &RunDir) -> anyhow::Result<Checkpoint> {
    let (checkpoint, passed_over) = Checkpoint::latest(&run.checkpoints_dir())?;
    for reason in passed_over {
        eprintln!("warning: skipping {reason}");
    }
    match checkpoint {
        Some(checkpoint) => Ok(checkpoint),
        None => bail!(
            "{}: no complete checkpoint yet; run or resume `pretext pretrain` first",
            run.root.display()
        ),
    }
}

/// Loads the encoder of `checkpoint` for `config`.
pub fn load_model(
    config: &PretrainConfig,
    checkpoint: &Checkpoint,
    channels: usize,
    device: Device,
) -> anyhow::Result<Model> {
    let mut model = Model::new(config, channels, device);
    checkpoint.load_weights(&mut model.store)?;
    Ok(model)
}

/// Probes the checkpoint's encoder, and with `baselines` also a random-init encoder of the
/// same architecture and the raw pixels, on one labeled subset.
pub fn probe(
    config: &PretrainConfig,
    checkpoint: &Checkpoint,
    data: &ImageSplits,
    probe_config: &ProbeConfig,
    device: Device,
    baselines: bool,
) -> anyhow::Result<ProbeReport> {
    let split = ProbeSplit::new(&data.train, &data.test, probe_config)?;
    let labeled = data.train.subset(&split.labeled);
    let mut rows = Vec::new();
    let trained = load_model(config, checkpoint, data.train.channels, device)?;
    let encoder = trained.method.encoder();
    let name = format!(
        "{} (step {})",
        config.method.name.as_str(),
        checkpoint.state.step
    );
    let features = |encoder: &dyn pretext_nn::Encoder| {
        (
            encode_images(encoder, &labeled, device, 512),
            encode_images(encoder, &data.test, device, 512),
        )
    };
    let (labeled_features, test_features) = features(encoder);
    rows.push(evaluate_features(
        &name,
        &labeled_features,
        &test_features,
        &split,
        probe_config,
    ));
    if baselines {
        let random = Model::new(config, data.train.channels, device);
        let (labeled_features, test_features) = features(random.method.encoder());
        rows.push(evaluate_features(
            "random-init encoder",
            &labeled_features,
            &test_features,
            &split,
            probe_config,
        ));
        let (labeled_pixels, test_pixels) =
            (raw_pixel_features(&labeled), raw_pixel_features(&data.test));
        rows.push(evaluate_features(
            "raw pixels",
            &labeled_pixels,
            &test_pixels,
            &split,
            probe_config,
        ));
    }
    Ok(ProbeReport {
        dataset: data.name.clone(),
        checkpoint: checkpoint.dir.display().to_string(),
        labels: split.labeled.len(),
        test_size: data.test.len,
        seed: probe_config.seed,
        rows,
    })
}

pub fn write_json(path: &PathBuf, report: &ProbeReport) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

//! `pretext probe`: k-NN and linear probe on frozen features, beside the baselines.

use std::path::Path;

use anyhow::bail;
use pretext_eval::{probe_budgets, ProbeConfig, ProbeReport};
use pretext_train::{Checkpoint, RunDir};

use crate::args::ProbeArgs;
use crate::cuda;
use crate::run_data::{open_for_run, require_test_split};

pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let config = run.read_config()?;
    let checkpoints = if args.step.is_empty() {
        vec![latest_checkpoint(&run)?]
    } else {
        args.step
            .iter()
            .map(|&step| checkpoint_at(&run, step))
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let device = cuda::device(&args.device)?;
    let data = open_for_run(&run, &config, args.data.as_deref())?;
    require_test_split(args.data.as_deref().unwrap_or(&config.data.path), &data)?;
    let budgets: Vec<&str> = args.labels.split(',').map(str::trim).collect();
    if budgets.iter().any(|budget| budget.is_empty()) {
        bail!(
            "--labels {:?}: expected a count (600), a share (1%) or a comma-separated list of them",
            args.labels
        );
    }
    if budgets.len() * checkpoints.len() > 1 && args.json.is_some() {
        bail!("--json names one file; with several --labels budgets or --step steps, leave it out (each writes RUN/probe-<labels>-seed<seed>[-step<N>].json)");
    }
    let probe_configs: Vec<ProbeConfig> = budgets
        .iter()
        .map(|budget| ProbeConfig {
            labels: budget.to_string(),
            seed: args.seed,
            knn_only: args.knn_only,
            classic: args.classic,
            ..Default::default()
        })
        .collect();
    let mut printed = false;
    for (index, checkpoint) in checkpoints.iter().enumerate() {
        let baselines = index == 0 && !args.no_baselines;
        let reports = probe_budgets(
            &config,
            checkpoint,
            &data,
            &probe_configs,
            device,
            baselines,
        )?;
        for (report, budget) in reports.iter().zip(&budgets) {
            if printed {
                println!();
            }
            printed = true;
            print!("{}", report.table());
            let json_path = args.json.clone().unwrap_or_else(|| {
                let labels = budget.replace('%', "pct");
                let step = if args.step.is_empty() {
                    String::new()
                } else {
                    format!("-step{}", checkpoint.state.step)
                };
                run.root
                    .join(format!("probe-{labels}-seed{}{step}.json", args.seed))
            });
            write_json(&json_path, report)?;
            eprintln!("wrote {}", json_path.display());
        }
    }
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

/// The checkpoint of `step`, or an error listing the steps the run has kept.
fn checkpoint_at(run: &RunDir, step: u64) -> anyhow::Result<Checkpoint> {
    let dir = run.checkpoints_dir().join(format!("step-{step}"));
    if dir.is_dir() {
        return Ok(Checkpoint::open(&dir)?);
    }
    let kept = Checkpoint::steps(&run.checkpoints_dir())?;
    let kept = if kept.is_empty() {
        "none".to_string()
    } else {
        kept.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    bail!(
        "{}: no checkpoint of step {step} (kept: {kept}; train.keep_checkpoints sets how many are kept)",
        run.root.display()
    )
}

pub fn write_json(path: &Path, report: &ProbeReport) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    Ok(pretext_train::write_atomic(path, text + "\n")?)
}

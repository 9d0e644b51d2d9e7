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
    let checkpoint = latest_checkpoint(&run)?;
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
    if budgets.len() > 1 && args.json.is_some() {
        bail!("--json names one file; with several --labels budgets, leave it out (each budget writes RUN/probe-<labels>-seed<seed>.json)");
    }
    let probe_configs: Vec<ProbeConfig> = budgets
        .iter()
        .map(|budget| ProbeConfig {
            labels: budget.to_string(),
            seed: args.seed,
            classic: args.classic,
            ..Default::default()
        })
        .collect();
    let reports = probe_budgets(
        &config,
        &checkpoint,
        &data,
        &probe_configs,
        device,
        !args.no_baselines,
    )?;
    for (index, (report, budget)) in reports.iter().zip(&budgets).enumerate() {
        if index > 0 {
            println!();
        }
        print!("{}", report.table());
        let json_path = args.json.clone().unwrap_or_else(|| {
            let labels = budget.replace('%', "pct");
            run.root
                .join(format!("probe-{labels}-seed{}.json", args.seed))
        });
        write_json(&json_path, report)?;
        eprintln!("wrote {}", json_path.display());
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

pub fn write_json(path: &Path, report: &ProbeReport) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    Ok(pretext_train::write_atomic(path, text + "\n")?)
}

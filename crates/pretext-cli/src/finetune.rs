//! `pretext finetune RUN --labels N`: end-to-end fine-tuning of a run's encoder (or the same
//! architecture from scratch) with few labels. Launched by torchrun or SLURM as several
//! processes, it trains data parallel: each process takes its part of every batch and of
//! every accuracy measurement, and only rank 0 prints and writes the report.

use pretext_eval::{finetune, FinetuneConfig, FinetuneSearch};
use pretext_train::RunDir;

use crate::args::FinetuneArgs;
use crate::cuda;
use crate::probe::latest_checkpoint;
use crate::run_data::{open_for_run, require_test_split};

pub fn run(args: &FinetuneArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let config = run.read_config()?;
    if args.from_pretrained && config.backbone.pretrained.is_empty() {
        anyhow::bail!(
            "--from-pretrained: {} did not start from a downloaded checkpoint (backbone.pretrained is empty); fine-tune its own training without the flag",
            run.root.display()
        );
    }
    let checkpoint = if args.from_scratch || args.from_pretrained {
        None
    } else {
        Some(latest_checkpoint(&run)?)
    };
    let device = cuda::join_launch(cuda::device(&args.device)?)?;
    let (rank, world) = pretext_train::parallel::placement();
    let writer = rank == 0;
    if writer && world > 1 {
        eprintln!(
            "data parallel: {world} processes; --batch-size is the global batch, each process takes its part of every batch"
        );
    }
    let data = open_for_run(&run, &config, args.data.as_deref())?;
    require_test_split(args.data.as_deref().unwrap_or(&config.data.path), &data)?;
    if !(args.pseudo_threshold > 0.0 && args.pseudo_threshold <= 1.0) {
        anyhow::bail!(
            "--pseudo-threshold {}: expected a probability in (0, 1]",
            args.pseudo_threshold
        );
    }
    let settings = FinetuneConfig {
        labels: args.labels.clone(),
        seed: args.seed,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args
            .lr
            .unwrap_or(if args.from_scratch { 1e-3 } else { 3e-4 }),
        weight_decay: args.weight_decay,
        layer_decay: args.layer_decay,
        probe_init: !args.no_probe_init,
        probe_fallback: !args.no_probe_fallback,
        augment: augments(args),
        search: FinetuneSearch {
            augment: if args.augment || args.no_augment {
                vec![augments(args)]
            } else {
                FinetuneSearch::default().augment
            },
            ..FinetuneSearch::default()
        },
        cross_validate: args.cross_validate,
        freeze_epochs: args.freeze_epochs,
        patience: args.patience,
        from_scratch: args.from_scratch,
        from_pretrained: args.from_pretrained,
        self_training_rounds: args.self_train,
        pseudo_label_threshold: args.pseudo_threshold,
        ..FinetuneConfig::default()
    };
    let report = finetune(
        &config,
        checkpoint.as_ref(),
        &data,
        &settings,
        device,
        &mut |line| {
            if writer {
                eprintln!("{line}");
            }
        },
    )?;
    if !writer {
        return Ok(());
    }
    let kept_probe = report.kept_probe();
    let validation = match report.best_validation_accuracy {
        Some(accuracy) => format!(
            " + {} validation examples; best epoch {}{} (validation {:.1}%)",
            report.validation_examples,
            report.best_epoch,
            if kept_probe {
                ", the linear probe it started from"
            } else {
                ""
            },
            100.0 * accuracy
        ),
        None => format!(
            " examples, no validation split; {} epochs",
            report.epochs_run
        ),
    };
    println!(
        "fine-tuned from {}: {} training{validation}; lr {:.0e}, weight decay {:.0e}",
        report.start, report.train_examples, report.lr, report.weight_decay
    );
    if let Some(search) = &report.search {
        println!(
            "chosen by cross-validation on the labeled examples: {}",
            search.summary()
        );
    }
    for round in &report.self_training {
        println!(
            "self-training round {}: {} pseudo-labels{}, test accuracy {:.1}%",
            round.round,
            round.pseudo_labeled,
            round
                .pseudo_label_accuracy
                .map(|a| format!(" ({:.1}% right)", 100.0 * a))
                .unwrap_or_else(|| " (the round adds none)".into()),
            100.0 * round.test_accuracy
        );
    }
    match (report.probe_accuracy, report.probe_l2) {
        (Some(probe), Some(l2)) if kept_probe => println!(
            "test accuracy on {} held-out examples: linear probe (the start, L2 {l2:.0e}{}) {:.1}%, kept: fine-tuning did not beat it on held-out labeled examples (--no-probe-fallback keeps the fine-tune)",
            report.test_size,
            if report.validation_examples > 0 {
                ", refitted on all the labeled examples"
            } else {
                ""
            },
            100.0 * probe
        ),
        (Some(probe), Some(l2)) => println!(
            "test accuracy on {} held-out examples: linear probe (the start, L2 {l2:.0e}) {:.1}% → fine-tuned {:.1}%",
            report.test_size,
            100.0 * probe,
            100.0 * report.test_accuracy
        ),
        _ => println!(
            "test accuracy: {:.1}% on {} held-out examples",
            100.0 * report.test_accuracy,
            report.test_size
        ),
    }
    for warning in &report.warnings {
        println!("{warning}");
    }
    let json_path = args.json.clone().unwrap_or_else(|| {
        let labels = args.labels.replace('%', "pct");
        let kind = if args.self_train > 0 && args.from_scratch {
            "self-train-scratch"
        } else if args.self_train > 0 {
            "self-train"
        } else if args.from_scratch {
            "scratch"
        } else if args.from_pretrained {
            "finetune-pretrained"
        } else {
            "finetune"
        };
        run.root
            .join(format!("{kind}-{labels}-seed{}.json", args.seed))
    });
    pretext_train::write_atomic(&json_path, serde_json::to_string_pretty(&report)? + "\n")?;
    eprintln!("wrote {}", json_path.display());
    Ok(())
}

/// Whether fine-tuning trains on the run's views: `--augment`, or from scratch unless
/// `--no-augment` (a pretrained encoder fine-tunes better on the images as they are).
fn augments(args: &FinetuneArgs) -> bool {
    args.augment || (args.from_scratch && !args.no_augment)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::args::{Cli, Command};

    fn augments(flags: &[&str]) -> bool {
        let cli = Cli::try_parse_from(["pretext", "finetune", "runs/x"].iter().chain(flags))
            .expect("parses");
        match cli.command {
            Command::Finetune(args) => super::augments(&args),
            _ => unreachable!(),
        }
    }

    /// Regression: fine-tuning a pretrained encoder on its pretraining's views cost SimCLR
    /// 3 points at 8000 labels; it trains on the images as they are unless asked.
    #[test]
    fn only_training_from_scratch_augments_by_default() {
        assert!(!augments(&[]));
        assert!(augments(&["--augment"]));
        assert!(augments(&["--from-scratch"]));
        assert!(!augments(&["--from-scratch", "--no-augment"]));
        assert!(
            Cli::try_parse_from(["pretext", "finetune", "r", "--augment", "--no-augment"]).is_err()
        );
    }
}

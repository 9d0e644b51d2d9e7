//! `pretext pretrain`.

use anyhow::{bail, Context};
use pretext_methods::MethodName;
use pretext_train::{
    check_pretraining, ensure_steps_left, parallel, pretrain, total_steps, Checkpoint, NoProgress,
    PretrainConfig, PretrainOutcome, RunDir, RunMode,
};

use crate::args::PretrainArgs;
use crate::cuda;
use crate::layered_config::{apply_set, base_table, finish, quoted, set_dotted};
use crate::progress::Progress;

pub fn run(args: &PretrainArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.resume {
        return resume(args, path);
    }
    if let Some(name) = &args.method {
        MethodName::parse(name).map_err(|message| anyhow::anyhow!("--method: {message}"))?;
    }
    let mut table = base_table(args.config.as_deref())?;
    let flags: [(&str, Option<String>); 12] = [
        ("method.name", args.method.as_deref().map(quoted)),
        ("data.path", args.data.as_deref().map(quoted)),
        ("backbone.kind", args.backbone.as_deref().map(quoted)),
        ("train.steps", args.steps.map(|v| v.to_string())),
        ("train.epochs", args.epochs.map(|v| format!("{v:?}"))),
        ("train.batch_size", args.batch_size.map(|v| v.to_string())),
        ("optimizer.lr", args.lr.map(|v| format!("{v:?}"))),
        ("seed", args.seed.map(|v| v.to_string())),
        ("data.image_size", args.image_size.map(|v| v.to_string())),
        ("data.workers", args.workers.map(|v| v.to_string())),
        ("device", args.device.as_deref().map(quoted)),
        ("train.precision", args.precision.as_deref().map(quoted)),
    ];
    for (key, value) in flags {
        if let Some(value) = value {
            set_dotted(&mut table, key, &value)?;
        }
    }
    for assignment in &args.set {
        apply_set(&mut table, assignment)?;
    }
    let origin = match &args.config {
        Some(path) => format!("{} with command-line options", path.display()),
        None => "command-line options".to_string(),
    };
    let config = finish(table, &origin)?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    config.validate()?;
    let out = args
        .out
        .as_ref()
        .expect("clap requires --out without --resume or --print-config");
    let run = RunDir::new(out);
    let mode = if args.overwrite {
        RunMode::Overwrite
    } else {
        RunMode::New
    };
    let device = cuda::join_launch(cuda::device(&config.device)?)?;
    let writer = parallel::is_writer();
    if writer {
        run.check_new(mode)?;
    }
    let pretext_data::OpenedData {
        splits: data,
        tokenizer,
    } = pretext_data::open(&config.data.path, &config.data_options(None))
        .context("loading the data")?;
    // Everything `pretrain` checks, checked before the run folder is made.
    let config = check_pretraining(&config, &data)?;
    if !writer {
        // Rank 0 makes the run folder, writes it and prints; this process only trains.
        pretrain(&config, &run, None, device, &data, &mut NoProgress)?;
        return Ok(());
    }
    eprintln!(
        "data: {} — {} for training, {} held out",
        data.name,
        data.train.describe(),
        data.test.len()
    );
    announce_processes();
    if !config.backbone.pretrained.is_empty() && config.optimizer.lr > 1e-4 {
        eprintln!(
            "warning: continuing from {} at learning rate {}: pretrained transformers are usually \
             continued at 1e-4 or less (e.g. --lr 5e-5); at this rate the first steps can erase \
             what the checkpoint knows",
            config.backbone.pretrained, config.optimizer.lr
        );
    }
    // Taken only now, so a run refused above leaves nothing behind; prepare_new checks the
    // folder again under the lock.
    let _lock = lock(&run)?;
    run.prepare_new(mode)?;
    // config.toml first: from then on the folder is a run, so a kill during the rest of the
    // set-up leaves a folder that `--overwrite` takes.
    run.write_config(&config)?;
    run.write_data_files(tokenizer.as_ref(), &data.train)?;
    let mut progress = Progress::for_samples(&data.train);
    let outcome = pretrain(&config, &run, None, device, &data, &mut progress)?;
    report(&run, &config, &outcome, data.train.len());
    Ok(())
}

fn resume(args: &PretrainArgs, path: &std::path::Path) -> anyhow::Result<()> {
    let changed: Vec<&str> = [
        ("--method", args.method.is_some()),
        ("--data", args.data.is_some()),
        ("--backbone", args.backbone.is_some()),
        ("--batch-size", args.batch_size.is_some()),
        ("--lr", args.lr.is_some()),
        ("--seed", args.seed.is_some()),
        ("--image-size", args.image_size.is_some()),
        ("--precision", args.precision.is_some()),
        ("--set", !args.set.is_empty()),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect();
    if !changed.is_empty() {
        bail!(
            "{} cannot change when resuming (the run continues with its own config.toml); only --steps, --epochs, --workers and --device may be given",
            changed.join(", ")
        );
    }
    let run = RunDir::new(path);
    let saved: PretrainConfig = run.read_config()?;
    let mut config = saved.clone();
    if let Some(steps) = args.steps {
        config.train.steps = steps;
        config.train.epochs = 0.0;
    }
    if let Some(epochs) = args.epochs {
        config.train.epochs = epochs;
    }
    if let Some(workers) = args.workers {
        config.data.workers = workers;
    }
    if let Some(device) = &args.device {
        config.device = device.clone();
    }
    let (checkpoint, passed_over) = Checkpoint::latest(&run.checkpoints_dir())?;
    for reason in &passed_over {
        eprintln!("warning: skipping {reason}");
    }
    let Some(checkpoint) = checkpoint else {
        bail!(
            "{}: no complete checkpoint to resume from; start again with --overwrite",
            path.display()
        );
    };
    let device = cuda::join_launch(cuda::device(&config.device)?)?;
    let data = pretext_data::open(&config.data.path, &config.data_options(Some(&run.root)))
        .context("loading the data")?
        .splits;
    // Checked before config.toml is rewritten, so a refused resume changes nothing.
    let total = total_steps(&config, data.train.len())?;
    ensure_steps_left(&run, &checkpoint, total)?;
    if !parallel::is_writer() {
        pretrain(
            &config,
            &run,
            Some(checkpoint),
            device,
            &data,
            &mut NoProgress,
        )?;
        return Ok(());
    }
    announce_processes();
    let _lock = lock(&run)?;
    // Under the lock, the newest checkpoint (a process that held the lock may have written
    // more since).
    let checkpoint = match Checkpoint::latest(&run.checkpoints_dir())?.0 {
        Some(newest) if newest.state.step > checkpoint.state.step => newest,
        _ => checkpoint,
    };
    ensure_steps_left(&run, &checkpoint, total)?;
    // `pretrain` records changed settings in config.toml once the checkpoint has loaded.
    let outcome = pretrain(
        &config,
        &run,
        Some(checkpoint),
        device,
        &data,
        &mut Progress::for_samples(&data.train),
    )?;
    report(&run, &config, &outcome, data.train.len());
    Ok(())
}

/// Says how the global batch is shared when several processes train.
fn announce_processes() {
    let (_, world) = parallel::placement();
    if world > 1 {
        eprintln!(
            "data parallel: {world} processes; train.batch_size is the global batch, each process takes an equal share"
        );
    }
}

/// The closing lines of a run; the suggested probe never asks for more labels than the
/// `train_len` training examples hold.
fn report(run: &RunDir, config: &PretrainConfig, outcome: &PretrainOutcome, train_len: usize) {
    let all_reduce = match parallel::placement().1 {
        1 => String::new(),
        _ => format!(
            ", {:.1} s in the gradient all-reduce",
            outcome.all_reduce_seconds
        ),
    };
    eprintln!(
        "done: {} steps in {:.1} s (waited {:.1} s on data{all_reduce}), final loss {:.4}, {} non-finite steps skipped",
        outcome.steps_run, outcome.seconds, outcome.data_wait_seconds, outcome.last_loss, outcome.nonfinite_steps
    );
    eprintln!("checkpoint: {}", outcome.checkpoint.dir.display());
    if config.method.name == MethodName::Gpt {
        eprintln!(
            "next: pretext generate {} --prompt \"It is a truth\"",
            run.root.display()
        );
    } else {
        eprintln!(
            "next: pretext probe {} --labels {}",
            run.root.display(),
            suggested_labels(train_len)
        );
    }
}

/// The label budget to suggest: 600, or half the training split when that is smaller (the
/// rest stays unlabeled, as in a real few-label setting), at least 1.
fn suggested_labels(train_len: usize) -> usize {
    600.min(train_len / 2).max(1)
}

/// Takes the run directory's lock for this process, reporting a stale one it cleared.
pub fn lock(run: &RunDir) -> anyhow::Result<pretext_train::RunLock> {
    let lock = run.lock()?;
    if let Some(pid) = lock.stale_pid {
        eprintln!(
            "cleared a stale lock: process {pid} stopped without finishing {}",
            run.root.display()
        );
    }
    Ok(lock)
}

#[cfg(test)]
mod tests {
    /// Regression: after pretraining on a 171-row table the suggested next step asked for
    /// 600 labels, which the probe then refused.
    #[test]
    fn the_suggested_budget_fits_the_split() {
        assert_eq!(super::suggested_labels(60_000), 600);
        assert_eq!(super::suggested_labels(171), 85);
        assert_eq!(super::suggested_labels(1), 1);
    }
}

//! Resuming a run from a checkpoint: the checks that refuse one that cannot continue this run
//! (nothing left to do, another seed), then the weights, the method's state and the
//! optimizer's, and only then the run's config.toml rewritten with the settings changed on
//! resuming.

use crate::checkpoint::{Checkpoint, TrainState};
use crate::config::PretrainConfig;
use crate::error::TrainError;
use crate::optimizer::Optimizer;
use crate::progress::ProgressSink;
use crate::run_dir::RunDir;
use crate::trainer::Model;

/// Refuses to resume `checkpoint` when the run already reached the `total` steps asked for.
pub fn ensure_steps_left(
    run: &RunDir,
    checkpoint: &Checkpoint,
    total: u64,
) -> Result<(), TrainError> {
    if checkpoint.state.step >= total {
        return Err(TrainError::NothingToDo {
            path: run.root.clone(),
            done: checkpoint.state.step,
            total,
        });
    }
    Ok(())
}

/// Loads `checkpoint` into `model` and `optimizer` for a run of `total` steps under
/// `config`, and returns the counters to continue from. Refused, before anything loads,
/// when no steps are left or the checkpoint was written with another seed.
pub(crate) fn resume(
    run: &RunDir,
    checkpoint: &Checkpoint,
    config: &PretrainConfig,
    total: u64,
    model: &mut Model,
    optimizer: &mut Optimizer,
    progress: &mut dyn ProgressSink,
) -> Result<TrainState, TrainError> {
    ensure_steps_left(run, checkpoint, total)?;
    if checkpoint.state.seed != config.seed {
        return Err(TrainError::WrongCheckpoint {
            path: checkpoint.dir.clone(),
            message: format!(
                "written with seed {}, config says {}",
                checkpoint.state.seed, config.seed
            ),
        });
    }
    checkpoint.load_weights(config, &mut model.store)?;
    checkpoint.load_method_state(config, &mut model.state)?;
    optimizer.load_state(
        checkpoint.optimizer_state()?,
        checkpoint.state.optimizer_steps,
        model.store.device(),
    );
    // Settings changed on resuming (more steps, another device) are recorded only now that
    // the checkpoint has loaded: a refused resume leaves config.toml as it was.
    let recorded = run.read_config().ok();
    if recorded.as_ref() != Some(config) && crate::parallel::is_writer() {
        run.write_config(config)?;
    }
    let processes = crate::parallel::placement().1 as u64;
    if checkpoint.state.processes != processes {
        progress.message(&format!(
            "warning: the checkpoint was trained by {} process(es) and this run has {processes}: the continuation is not bit-identical to an uninterrupted run (each process's share of the batch and the order of the sums change)",
            checkpoint.state.processes
        ));
    }
    progress.message(&format!(
        "resuming from {} (step {})",
        checkpoint.dir.display(),
        checkpoint.state.step
    ));
    Ok(checkpoint.state.clone())
}

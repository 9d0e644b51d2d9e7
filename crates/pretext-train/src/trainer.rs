//! The step loop (STYLE.md 5): views -> forward -> loss -> non-finite guard -> backward ->
//! clip -> step -> after_step -> log -> maybe checkpoint.

use std::sync::Arc;
use std::time::Instant;

use pretext_data::{BatchPlan, Prefetcher, Samples, Splits};
use pretext_methods::{HostBatch, Method, MethodSetup, StepClock, ToDevice};
use pretext_nn::InputSpec;
use tch::{nn::VarStore, Device};

use crate::checkpoint::{Checkpoint, TrainState};
use crate::config::PretrainConfig;
use crate::error::TrainError;
use crate::optimizer::Optimizer;
use crate::parallel;
use crate::progress::{NoProgress, ProgressSink};
use crate::resume::resume;
use crate::run_dir::RunDir;
use crate::schedule::learning_rate;
use crate::step::{report_skipped, train_step, train_step_on_device, StepSettings, Stepped};
use crate::step_log::{due, FinishedStep, StepLog};

/// The result of a finished pretraining run.
#[derive(Debug)]
pub struct PretrainOutcome {
    pub checkpoint: Checkpoint,
    pub last_loss: f64,
    pub nonfinite_steps: u64,
    pub seconds: f64,
    /// Seconds the loop waited for the data workers (0 means the data never held it back).
    pub data_wait_seconds: f64,
    /// Several processes: seconds spent in the gradient all-reduce (waiting for the slowest
    /// process included); 0 alone.
    pub all_reduce_seconds: f64,
    pub steps_run: u64,
}

/// A model ready to train or to be evaluated: the trained weights (`store`, what the
/// optimizer updates), the method's untrained state (`state`: EMA networks, queue, center)
/// and the method built over both.
pub struct Model {
    pub store: VarStore,
    pub state: VarStore,
    pub method: Method,
}

impl Model {
    /// Builds the method for `config` and the training split `train`, initialized from the
    /// run seed.
    pub fn new(config: &PretrainConfig, train: &Samples, device: Device) -> Model {
        tch::manual_seed(config.seed as i64);
        let store = VarStore::new(device);
        let mut state = VarStore::new(device);
        let (input, image_size) = match train {
            Samples::Images(set) => (
                InputSpec::sized_image(set.channels as i64, set.height as i64),
                set.height as i64,
            ),
            Samples::Tokens(set) => (
                InputSpec::tokens(i64::from(set.vocab_size), i64::from(set.pad_id)),
                set.seq_len as i64,
            ),
            Samples::Table(set) => (InputSpec::rows(set.width() as i64), set.width() as i64),
            Samples::Audio(set) => (InputSpec::waveforms(), set.clip_samples as i64),
        };
        let setup = MethodSetup {
            input,
            image_size,
            train_len: train.len(),
            total_steps: total_steps(config, train.len()).unwrap_or(1),
        };
        let method = Method::new(&store, &state, setup, &config.backbone, &config.method);
        state.freeze();
        Model {
            store,
            state,
            method,
        }
    }

    /// Loads `backbone.pretrained` into the encoder: a Hugging Face BERT-family folder for
    /// "transformer"; an image checkpoint (timm, torchvision or Hugging Face ViT names) for
    /// "resnet18", "resnet50" and "vit", into the trained encoder and into the EMA copy a
    /// method keeps of it (BYOL's target, MoCo's key encoder, DINO's teacher), which starts
    /// as the same network.
    pub fn load_pretrained(&mut self, config: &PretrainConfig) -> Result<(), TrainError> {
        if config.backbone.pretrained.is_empty() {
            return Ok(());
        }
        let dir = std::path::Path::new(&config.backbone.pretrained);
        if !config.backbone.kind.loads_image_checkpoints() {
            pretext_nn::load_hf_bert_weights(dir, &self.store, "encoder.")?;
            return Ok(());
        }
        pretext_nn::load_image_checkpoint(dir, &self.store, "encoder.")?;
        let state_has_encoder = self
            .state
            .variables()
            .keys()
            .any(|name| name.starts_with("encoder."));
        if state_has_encoder {
            pretext_nn::load_image_checkpoint(dir, &self.state, "encoder.")?;
        }
        Ok(())
    }
}

/// Number of steps the config asks for on a training split of `train_len` images.
pub fn total_steps(config: &PretrainConfig, train_len: usize) -> Result<u64, TrainError> {
    let plan = BatchPlan::new(train_len, config.train.batch_size, config.seed)?;
    Ok(planned_steps(config, &plan))
}

fn planned_steps(config: &PretrainConfig, plan: &BatchPlan) -> u64 {
    if config.train.epochs > 0.0 {
        (config.train.epochs * plan.steps_per_epoch() as f64).ceil() as u64
    } else {
        config.train.steps
    }
}

/// Tag of the stream that re-seeds libtorch at every step.
const STEP_SEED: u64 = 0x5354_4550; // "STEP"

/// Every check [`pretrain`] makes before it writes anything: the settings, the data against
/// the method and backbone, the unlabeled folders, and a batch size the training split can
/// fill. Returns the config resolved for the data ([`PretrainConfig::resolved_for`]). Call it
/// before creating a run directory, so that a refused run leaves nothing behind.
pub fn check_pretraining(
    config: &PretrainConfig,
    data: &Splits,
) -> Result<PretrainConfig, TrainError> {
    config.validate()?;
    config.check_data(&data.train)?;
    let resolved = config.resolved_for(&data.train)?;
    config.data.check_unlabeled(&data.train)?;
    // Unlabeled clips only add samples; without them the training split is all there is.
    let samples = data.train.len();
    if config.data.unlabeled.is_empty() && config.train.batch_size > samples {
        return Err(TrainError::Invalid {
            field: "train.batch_size".into(),
            message: format!(
                "{} is more than the {samples} training samples of `{}`; lower --batch-size or give more data",
                config.train.batch_size, config.data.path
            ),
        });
    }
    Ok(resolved)
}

/// Runs (or resumes) pretraining into `run`, on `data.train` (and `data.unlabeled`'s clips).
///
/// It seeds libtorch's process-wide random generator (at initialization and before every
/// step), so two runs in one process must not overlap in time.
pub fn pretrain(
    config: &PretrainConfig,
    run: &RunDir,
    resume_from: Option<Checkpoint>,
    device: Device,
    data: &Splits,
    progress: &mut dyn ProgressSink,
) -> Result<PretrainOutcome, TrainError> {
    let config = &check_pretraining(config, data)?;
    set_up_device(config, device)?;
    let (rank, world) = parallel::placement();
    if config.train.batch_size % world != 0 {
        return Err(TrainError::Invalid {
            field: "train.batch_size".into(),
            message: format!(
                "{} (the global batch) must be a multiple of the {world} processes",
                config.train.batch_size
            ),
        });
    }
    // Only rank 0 prints and writes; the other processes train in silence.
    let mut silent = NoProgress;
    let writer = rank == 0;
    let progress: &mut dyn ProgressSink = if writer { progress } else { &mut silent };
    let train = Arc::new(config.data.pretraining_samples(&data.train)?);
    announce_unlabeled(config, &data.train, &train, progress);
    let plan = BatchPlan::new(train.len(), config.train.batch_size, config.seed)?;
    let total = planned_steps(config, &plan);
    let mut model = Model::new(config, &train, device);
    if resume_from.is_none() {
        model.load_pretrained(config)?;
    }
    if world > 1 {
        parallel::broadcast_from_first(&[&model.store, &model.state])?;
    }
    let mut optimizer = Optimizer::new(&model.store, &config.optimizer);
    let mut state = match &resume_from {
        Some(checkpoint) => resume(
            run,
            checkpoint,
            config,
            total,
            &mut model,
            &mut optimizer,
            progress,
        )?,
        None => TrainState::new(config.seed),
    };
    state.processes = world as u64;
    let resumed_at = resume_from.as_ref().map(|checkpoint| checkpoint.state.step);
    let mut log = match writer {
        true => Some(StepLog::open(config, run, resumed_at, data, &model, total)?),
        false => None,
    };
    let device_views = views_on_device(config, &train, device, progress);
    let mut batches = batch_stream(
        config,
        plan,
        &train,
        (state.step, total),
        (rank, world),
        device_views,
    );

    // Steps decided on the device (train.host_reads): the host reads them only when a
    // record, a checkpoint or the end needs their numbers.
    let on_device = config
        .train
        .host_reads
        .on_device(device, config.optimizer.kind);
    let mut last_read = state.step;
    progress.started(state.step, total);
    let started = Instant::now();
    let averaging_before = parallel::averaging_seconds();
    let (steps_before, mut last_loss, mut last_checkpoint) = (state.step, f64::NAN, None);
    while state.step < total {
        let step = state.step;
        let batch = batches
            .next()
            .expect("the prefetcher yields every step up to the total");
        tch::manual_seed((config.seed ^ STEP_SEED.wrapping_mul(step + 1)) as i64);
        let inputs = batch.to_inputs(device);
        let clock = StepClock {
            step,
            total_steps: total,
        };
        let settings = step_settings(config, step, total);
        let output = config
            .train
            .precision
            .run(device, || model.method.loss(&inputs, clock))?;
        parallel::take_layer_error()?;
        let mut outcome = match on_device {
            false => Stepped::Host(train_step(
                &output.loss,
                &mut optimizer,
                settings,
                &mut state.nonfinite_steps,
                &mut |notice| progress.message(&format!("step {}: {notice}", step + 1)),
                || model.method.after_step(clock, None),
            )?),
            true => Stepped::Device(train_step_on_device(
                &output.loss,
                &mut optimizer,
                settings,
                |taken| model.method.after_step(clock, Some(taken)),
            )?),
        };
        parallel::take_layer_error()?;
        if let Stepped::Host(read) = &outcome {
            if read.taken {
                state.optimizer_steps += 1;
                last_loss = read.loss;
            }
        }
        state.step += 1;
        if on_device && reads_due(config, state.step, total) {
            let read = outcome.read();
            if read.taken {
                last_loss = read.loss;
            }
            settle_skipped(
                &mut state,
                optimizer.updates(),
                (last_read, config.train.max_nonfinite_steps),
                progress,
            )?;
            last_read = state.step;
            outcome = Stepped::Host(read);
        }
        // Several processes: the health signals describe the whole batch (every process
        // takes part in the gather; rank 0 logs).
        let output = match world > 1 && crate::step_log::due(state.step, config.health.every, total)
        {
            true => parallel::whole_batch(output)?,
            false => output,
        };
        let finished = FinishedStep {
            done: state.step,
            epoch: batch.epoch,
            // The whole step's examples, for images/s.
            examples: batch.indices.len() * world,
            lr: settings.lr,
            outcome: &outcome,
            output: &output,
            nonfinite_steps: state.nonfinite_steps,
            data_wait_seconds: batches.waited().as_secs_f64(),
        };
        if let Some(log) = &mut log {
            log.step(&finished, &model, progress)?;
        }
        if state.step == total || due(state.step, config.train.checkpoint_every, total) {
            last_checkpoint = Some(match writer {
                true => save_checkpoint(run, config, &model, &optimizer, &state)?,
                // Rank 0 writes it; the others know where.
                false => Checkpoint {
                    dir: run.checkpoints_dir().join(format!("step-{}", state.step)),
                    state: state.clone(),
                    config: Some(config.clone()),
                },
            });
        }
    }
    progress.finished();
    // Several processes: return together, once rank 0 has written the last checkpoint.
    parallel::barrier()?;
    let checkpoint = match (last_checkpoint, resume_from) {
        (Some(checkpoint), _) | (None, Some(checkpoint)) => checkpoint,
        (None, None) => unreachable!("a run of at least one step always checkpoints at its end"),
    };
    Ok(PretrainOutcome {
        checkpoint,
        last_loss,
        nonfinite_steps: state.nonfinite_steps,
        seconds: started.elapsed().as_secs_f64(),
        data_wait_seconds: batches.waited().as_secs_f64(),
        all_reduce_seconds: parallel::averaging_seconds() - averaging_before,
        steps_run: state.step - steps_before,
    })
}

/// Whether the loop needs a step's numbers on the host after `done` of `total` steps: a
/// metrics record, health signals or a monitor may be due, a checkpoint, or the end.
fn reads_due(config: &PretrainConfig, done: u64, total: u64) -> bool {
    let (train, health) = (&config.train, &config.health);
    [
        train.log_every,
        train.checkpoint_every,
        health.every,
        health.knn_every,
        health.held_out_every,
    ]
    .into_iter()
    .any(|every| due(done, every, total))
        || done == total
}

/// Steps decided on the device: brings the counts of `state` up to the optimizer's
/// `updates` (every step is an update or a skipped step), says how many steps since
/// `since` were skipped, and stops past `limit` skipped steps in all.
fn settle_skipped(
    state: &mut TrainState,
    updates: u64,
    (since, limit): (u64, u64),
    progress: &mut dyn ProgressSink,
) -> Result<(), TrainError> {
    let skipped = state.step.saturating_sub(updates);
    let new = skipped.saturating_sub(state.nonfinite_steps);
    state.optimizer_steps = updates;
    state.nonfinite_steps = skipped;
    let place = format!("steps {}-{}", since + 1, state.step);
    report_skipped(new, skipped, limit, &place, &mut |text| {
        progress.message(text)
    })
}

/// On CUDA: TF32 as `train.tf32` says, and cuDNN's autotuner (every step has the same
/// shapes, so the fastest convolution algorithm is found once per shape).
pub fn set_up_device(config: &PretrainConfig, device: Device) -> Result<(), TrainError> {
    if device.is_cuda() {
        pretext_nn::precision::set_tf32(config.train.tf32)?;
        tch::Cuda::cudnn_set_benchmark(true);
    }
    Ok(())
}

/// The learning rate of `step` of `total` on the schedule, the clipping and the non-finite
/// limit, as `config` sets them.
fn step_settings(config: &PretrainConfig, step: u64, total: u64) -> StepSettings {
    let optimizer = &config.optimizer;
    StepSettings {
        lr: learning_rate(
            optimizer.lr,
            step,
            total,
            optimizer.warmup_steps,
            optimizer.final_lr_ratio,
        ),
        grad_clip: optimizer.grad_clip,
        max_nonfinite_steps: config.train.max_nonfinite_steps,
    }
}

/// Says so when pretraining adds unlabeled clips to the training split.
fn announce_unlabeled(
    config: &PretrainConfig,
    labeled: &Samples,
    train: &Samples,
    progress: &mut dyn ProgressSink,
) {
    if train.len() > labeled.len() {
        progress.message(&format!(
            "pretraining on {}: the {} training clips and {} unlabeled from {}",
            train.describe(),
            labeled.len(),
            train.len() - labeled.len(),
            config.data.unlabeled.join(", ")
        ));
    }
}

/// Whether this run's image views are made on the device (`data.augment`); says so when
/// the setting asks for the device but the recipe's views can only be made on the host.
fn views_on_device(
    config: &PretrainConfig,
    train: &Samples,
    device: Device,
    progress: &mut dyn ProgressSink,
) -> bool {
    let wanted = config.data.augment.on_device(device.is_cuda());
    if !wanted || !matches!(train, Samples::Images(_)) {
        return false;
    }
    let recipe = config.view_recipe(train);
    if !recipe.plans_device_views() {
        progress.message(&format!(
            "data.augment: {}'s views are made on the host (the device makes whole augmented views, not tiles)",
            config.method.name.display_name()
        ));
        return false;
    }
    true
}

/// Builds each step's views on the data workers, from `first` up to `total`: a pure function
/// of (seed, step), so a resumed run sees the same batches. With `device_views` the workers
/// only draw each view's parameters and the device makes the views.
fn batch_stream(
    config: &PretrainConfig,
    plan: BatchPlan,
    train: &Arc<Samples>,
    (first, total): (u64, u64),
    (rank, world): (usize, usize),
    device_views: bool,
) -> Prefetcher<HostBatch> {
    let recipe = config.view_recipe(train);
    let seed = config.seed;
    let worker_set = Arc::clone(train);
    Prefetcher::new(
        first,
        total,
        config.data.workers,
        config.data.prefetch,
        move |step| {
            let (epoch, indices) = plan.batch(step);
            // Several processes: this one's contiguous share of the global batch.
            let indices = match world {
                1 => indices,
                _ => parallel::share(&indices, rank, world),
            };
            match device_views {
                true => recipe.build_planned(&worker_set, &indices, seed, step, epoch),
                false => recipe.build(&worker_set, &indices, seed, step, epoch),
            }
        },
    )
}

/// Saves the model, the optimizer and the counters after `state.step` steps.
fn save_checkpoint(
    run: &RunDir,
    config: &PretrainConfig,
    model: &Model,
    optimizer: &Optimizer,
    state: &TrainState,
) -> Result<Checkpoint, TrainError> {
    Checkpoint::save(
        &run.checkpoints_dir(),
        &model.store,
        &model.state,
        &optimizer.state_tensors(),
        state,
        config,
        config.train.keep_checkpoints,
    )
}

//! The step loop (STYLE.md 5): views -> forward -> loss -> non-finite guard -> backward ->
//! clip -> step -> after_step -> log -> maybe checkpoint.

use std::sync::Arc;
use std::time::Instant;

use std::collections::HashSet;

use pretext_data::{stratified_subset, BatchPlan, Prefetcher, Samples, Splits};
use pretext_methods::{
    samples_to_tensor, HostBatch, Method, MethodSetup, StepClock, StepInputs, ToDevice,
};
use pretext_nn::InputSpec;
use pretext_nn::{knn_classify, Encoder, KnnConfig};
use serde_json::{json, Map, Value};
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::checkpoint::{Checkpoint, TrainState};
use crate::config::PretrainConfig;
use crate::error::TrainError;
use crate::health::{live_findings, BatchHealth};
use crate::metrics::MetricsLog;
use crate::optimizer::Optimizer;
use crate::run_dir::RunDir;
use crate::schedule::learning_rate;

/// What the progress display gets after each step.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// Steps done (1-based).
    pub step: u64,
    pub total_steps: u64,
    pub loss: f64,
    pub lr: f64,
    pub images_per_second: f64,
}

/// Receives progress; the CLI draws a bar, tests ignore it.
pub trait ProgressSink {
    fn started(&mut self, first_step: u64, total_steps: u64);
    fn step(&mut self, report: &StepReport);
    /// A line for the user (warnings, checkpoint notices).
    fn message(&mut self, text: &str);
    fn finished(&mut self);
}

/// Shows nothing: for tests and library callers that do not want progress.
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn started(&mut self, _: u64, _: u64) {}
    fn step(&mut self, _: &StepReport) {}
    fn message(&mut self, _: &str) {}
    fn finished(&mut self) {}
}

/// The result of a finished pretraining run.
#[derive(Debug)]
pub struct PretrainOutcome {
    pub checkpoint: Checkpoint,
    pub last_loss: f64,
    pub nonfinite_steps: u64,
    pub seconds: f64,
    /// Seconds the loop waited for the data workers (0 means the data never held it back).
    pub data_wait_seconds: f64,
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

    /// Loads `backbone.pretrained` (a Hugging Face BERT-family folder) into the encoder.
    pub fn load_pretrained(&mut self, config: &PretrainConfig) -> Result<(), TrainError> {
        if !config.backbone.pretrained.is_empty() {
            pretext_nn::load_hf_bert_weights(
                std::path::Path::new(&config.backbone.pretrained),
                &self.store,
                "encoder.",
            )?;
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

/// Tag of the stream that re-seeds libtorch at every step.
const STEP_SEED: u64 = 0x5354_4550; // "STEP"

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
    config.validate()?;
    config.check_data(&data.train)?;
    let config = &config.resolved_for(&data.train)?;
    let train = Arc::new(config.data.pretraining_samples(&data.train)?);
    if train.len() > data.train.len() {
        progress.message(&format!(
            "pretraining on {}: the {} training clips and {} unlabeled from {}",
            train.describe(),
            data.train.len(),
            train.len() - data.train.len(),
            config.data.unlabeled.join(", ")
        ));
    }
    let plan = BatchPlan::new(train.len(), config.train.batch_size, config.seed)?;
    let total = planned_steps(config, &plan);
    let mut model = Model::new(config, &train, device);
    if resume_from.is_none() {
        model.load_pretrained(config)?;
    }
    let mut optimizer = Optimizer::new(&model.store, &config.optimizer);
    let mut state = TrainState {
        step: 0,
        optimizer_steps: 0,
        nonfinite_steps: 0,
        seed: config.seed,
    };
    if let Some(checkpoint) = &resume_from {
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
            device,
        );
        state = checkpoint.state.clone();
        // Settings changed on resuming (more steps, another device) are recorded only now
        // that the checkpoint has loaded: a refused resume leaves config.toml as it was.
        let recorded = run.read_config().ok();
        if recorded.as_ref() != Some(config) {
            run.write_config(config)?;
        }
        progress.message(&format!(
            "resuming from {} (step {})",
            checkpoint.dir.display(),
            state.step
        ));
    }
    let mut metrics = MetricsLog::open(
        &run.metrics_path(),
        resume_from.as_ref().map(|c| c.state.step),
    )?;
    let monitor = KnnMonitor::new(&data.train, config, device);
    let held_out = HeldOutMonitor::new(&data.test, config, device);
    let health_context = config.health_context(model.method.encoder().dim(), total);
    let mut warned: HashSet<&'static str> = HashSet::new();

    let recipe = config.view_recipe(&train);
    let seed = config.seed;
    let worker_set = Arc::clone(&train);
    let mut batches = Prefetcher::new(
        state.step,
        total,
        config.data.workers,
        config.data.prefetch,
        move |step| {
            let (epoch, indices) = plan.batch(step);
            recipe.build(&worker_set, &indices, seed, step, epoch)
        },
    );

    progress.started(state.step, total);
    let started = Instant::now();
    let mut window_start = Instant::now();
    let mut window_images = 0usize;
    let mut last_checkpoint = None;
    let mut last_loss = f64::NAN;
    let steps_before = state.step;
    while state.step < total {
        let step = state.step;
        let batch: HostBatch = batches
            .next()
            .expect("the prefetcher yields every step up to the total");
        tch::manual_seed((seed ^ STEP_SEED.wrapping_mul(step + 1)) as i64);
        let inputs = batch.to_inputs(device);
        let clock = StepClock {
            step,
            total_steps: total,
        };
        let lr = learning_rate(
            config.optimizer.lr,
            step,
            total,
            config.optimizer.warmup_steps,
            config.optimizer.final_lr_ratio,
        );

        let output = model.method.loss(&inputs, clock);
        let loss = output.loss.double_value(&[]);
        optimizer.zero_grad();
        let mut grad_norm = f64::NAN;
        if loss.is_finite() {
            output.loss.backward();
            grad_norm = optimizer.grad_norm();
        }
        if !grad_norm.is_finite() {
            state.nonfinite_steps += 1;
            optimizer.zero_grad();
            progress.message(&format!(
                "step {}: non-finite {} — step skipped ({} so far)",
                step + 1,
                if loss.is_finite() { "gradient" } else { "loss" },
                state.nonfinite_steps
            ));
            if state.nonfinite_steps > config.train.max_nonfinite_steps {
                return Err(TrainError::TooManyNonFinite {
                    count: state.nonfinite_steps,
                    limit: config.train.max_nonfinite_steps,
                });
            }
        } else {
            if config.optimizer.grad_clip > 0.0 && grad_norm > config.optimizer.grad_clip {
                optimizer.scale_grads(config.optimizer.grad_clip / grad_norm);
            }
            optimizer.step(lr);
            model.method.after_step(clock);
            state.optimizer_steps += 1;
            last_loss = loss;
        }
        state.step += 1;
        window_images += batch.indices.len();

        let done = state.step;
        let images_per_second =
            window_images as f64 / window_start.elapsed().as_secs_f64().max(1e-9);
        progress.step(&StepReport {
            step: done,
            total_steps: total,
            loss,
            lr,
            images_per_second,
        });
        let health_due = due(done, config.health.every, total);
        let knn_due = monitor.is_some() && due(done, config.health.knn_every, total);
        let held_out_due = held_out.is_some() && due(done, config.health.held_out_every, total);
        if due(done, config.train.log_every, total) || health_due || knn_due || held_out_due {
            let mut record = Map::new();
            record.insert("step".into(), json!(done));
            record.insert("epoch".into(), json!(batch.epoch));
            record.insert("loss".into(), finite_or_null(loss));
            record.insert("lr".into(), json!(lr));
            record.insert("grad_norm".into(), finite_or_null(grad_norm));
            record.insert("images_per_second".into(), json!(images_per_second));
            record.insert(
                "data_wait_seconds".into(),
                json!(batches.waited().as_secs_f64()),
            );
            record.insert("nonfinite_steps".into(), json!(state.nonfinite_steps));
            for (name, value) in &output.metrics {
                record.insert(name.clone(), finite_or_null(*value));
            }
            if health_due {
                let health =
                    BatchHealth::measure(&output.representations, output.projections.as_ref());
                let named = health
                    .named()
                    .map(|(name, value)| (name.to_string(), value))
                    .chain(model.method.health_metrics());
                for (name, value) in named {
                    record.insert(name, finite_or_null(value));
                }
            }
            if let (true, Some(monitor)) = (knn_due, &monitor) {
                record.insert(
                    "knn_accuracy".into(),
                    json!(monitor.accuracy(model.method.encoder())),
                );
                record.insert("knn_chance".into(), json!(1.0 / monitor.num_classes as f64));
            }
            if let (true, Some(held_out)) = (held_out_due, &held_out) {
                if let Some(value) = held_out.loss(&model.method) {
                    record.insert("held_out_loss".into(), finite_or_null(value));
                    progress.message(&format!(
                        "step {done}: held-out loss {value:.4} (training loss {loss:.4})"
                    ));
                }
            }
            // Each signal warns once, the first time it crosses its threshold.
            for finding in live_findings(&record, &health_context) {
                if warned.insert(finding.signal) {
                    progress.message(&format!(
                        "step {done}: WARNING {}: {}",
                        finding.signal, finding.message
                    ));
                }
            }
            metrics.write(&record)?;
            window_start = Instant::now();
            window_images = 0;
        }
        if done == total || due(done, config.train.checkpoint_every, total) {
            let checkpoint = Checkpoint::save(
                &run.checkpoints_dir(),
                &model.store,
                &model.state,
                &optimizer.state_tensors(),
                &state,
                config,
                config.train.keep_checkpoints,
            )?;
            last_checkpoint = Some(checkpoint);
        }
    }
    progress.finished();
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
        steps_run: state.step - steps_before,
    })
}

/// Whether an action every `every` steps (0 = never) is due after `done` of `total` steps;
/// the last step is always due.
fn due(done: u64, every: u64, total: u64) -> bool {
    every > 0 && (done.is_multiple_of(every) || done == total)
}

fn finite_or_null(value: f64) -> Value {
    if value.is_finite() {
        json!(value)
    } else {
        Value::Null
    }
}

/// A language model's loss on the first held-out sequences, batched like training and put on
/// the device once; the masking of bert-mlm is drawn once (step 0), so every evaluation sees
/// the same inputs.
struct HeldOutMonitor {
    /// Each batch's inputs and its number of sequences.
    batches: Vec<(StepInputs, usize)>,
}

impl HeldOutMonitor {
    fn new(test: &Samples, config: &PretrainConfig, device: Device) -> Option<HeldOutMonitor> {
        let count = config.health.held_out_samples.min(test.len());
        if config.health.held_out_every == 0 || count == 0 || !config.method.name.reads_tokens() {
            return None;
        }
        let recipe = config.method.view_recipe(&config.views);
        let indices: Vec<usize> = (0..count).collect();
        let batches = indices
            .chunks(config.train.batch_size.max(1))
            .map(|chunk| {
                let batch = recipe.build(test, chunk, config.seed, 0, 0);
                (batch.to_inputs(device), chunk.len())
            })
            .collect();
        Some(HeldOutMonitor { batches })
    }

    /// Mean loss over the held-out sequences (weighted by batch size).
    fn loss(&self, method: &Method) -> Option<f64> {
        let (mut total, mut count) = (0.0, 0usize);
        for (inputs, size) in &self.batches {
            total += method.held_out_loss(inputs)? * *size as f64;
            count += size;
        }
        Some(total / count.max(1) as f64)
    }
}

/// k-NN accuracy on a labeled slice of the training split, for monitoring only.
struct KnnMonitor {
    bank: Tensor,
    bank_labels: Tensor,
    queries: Tensor,
    query_labels: Tensor,
    num_classes: i64,
    k: i64,
}

impl KnnMonitor {
    fn new(train: &Samples, config: &PretrainConfig, device: Device) -> Option<KnnMonitor> {
        let labels = train.labels()?;
        let wanted = (2 * config.health.knn_slice).min(train.len());
        if config.health.knn_every == 0 || wanted < 4 {
            return None;
        }
        let chosen = stratified_subset(labels, wanted, config.data.split_seed.wrapping_add(1));
        let bank: Vec<usize> = chosen.iter().copied().step_by(2).collect();
        let queries: Vec<usize> = chosen.iter().copied().skip(1).step_by(2).collect();
        let label_tensor = |indices: &[usize]| {
            Tensor::from_slice(
                &indices
                    .iter()
                    .map(|&i| i64::from(labels[i]))
                    .collect::<Vec<_>>(),
            )
        };
        Some(KnnMonitor {
            bank: samples_to_tensor(train, &bank, device),
            bank_labels: label_tensor(&bank).to_device(device),
            queries: samples_to_tensor(train, &queries, device),
            query_labels: label_tensor(&queries).to_device(device),
            num_classes: train.num_classes() as i64,
            k: config.health.knn_k,
        })
    }

    fn accuracy(&self, encoder: &dyn Encoder) -> f64 {
        let _guard = tch::no_grad_guard();
        let encode = |inputs: &Tensor| {
            let chunks: Vec<Tensor> = inputs
                .split(256, 0)
                .iter()
                .map(|chunk| encoder.encode(chunk, false))
                .collect();
            Tensor::cat(&chunks, 0)
        };
        let bank = encode(&self.bank);
        let queries = encode(&self.queries);
        let config = KnnConfig {
            k: self.k,
            ..Default::default()
        };
        let predicted = knn_classify(&bank, &self.bank_labels, &queries, self.num_classes, config);
        predicted
            .eq_tensor(&self.query_labels)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    }
}

//! One fine-tuning run: from the configured start (the head from the linear probe, with
//! `probe_init`), epochs of shuffled — and, for images, augmented — batches through the
//! shared training step, validation after each when there is a validation split, early
//! stopping on the best epoch when asked (the probe's start counting as epoch 0 with
//! `probe_fallback`).

use pretext_data::{rng_stream, Samples, Splits};
use pretext_methods::{host_to_device, samples_to_tensor, ToDevice, ViewRecipe};
use pretext_nn::Encoder;
use pretext_train::{
    learning_rate, parallel, report_skipped, train_step, train_step_on_device, Checkpoint, Model,
    Optimizer, OptimizerConfig, PretrainConfig, StepSettings, TrainError,
};
use rand::seq::SliceRandom;
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

use super::layer_decay::LayerDecay;
use super::report::EpochRecord;
use super::settings::FinetuneConfig;
use super::watch::{EncoderDrift, EpochWatch};
use crate::features::encode_samples;
use crate::linear_probe::{LinearProbe, LinearProbeConfig};
use crate::probe::ProbeSplit;

/// Where the head's variables live in the model's store.
const HEAD: &str = "finetune_head";

/// Tag of the fine-tuning batch-order stream.
const FINETUNE_STREAM: u64 = 0x4654_554e; // "FTUN"

/// What every training of one fine-tuning shares: the run, the data, the settings and the
/// labeled subset.
pub(super) struct Fitter<'a> {
    pub(super) config: &'a PretrainConfig,
    pub(super) checkpoint: Option<&'a Checkpoint>,
    pub(super) data: &'a Splits,
    pub(super) settings: &'a FinetuneConfig,
    pub(super) device: Device,
    pub(super) split: &'a ProbeSplit,
}

/// One training: on which examples, validated on which, at which rates, for how long.
pub(super) struct FitPlan<'a> {
    pub(super) train: &'a Samples,
    pub(super) validation: Option<&'a Samples>,
    pub(super) lr: f64,
    pub(super) weight_decay: f64,
    /// Images train on one view per image per epoch drawn with the run's `views`.
    pub(super) augment: bool,
    /// Epochs to run, at most `settings.epochs` (the learning-rate schedule's length).
    pub(super) epochs: usize,
    /// Stop after `patience` epochs without a better validation accuracy, and keep the best
    /// epoch's weights.
    pub(super) early_stopping: bool,
    /// Measure the held-out split at the end (and the probe the head started from).
    pub(super) measure_test: bool,
}

/// What one training reached.
pub(super) struct Fitted {
    pub(super) model: Model,
    pub(super) head: nn::Linear,
    pub(super) records: Vec<EpochRecord>,
    /// The epoch whose weights the model holds, and its validation accuracy.
    pub(super) best_epoch: usize,
    pub(super) best_validation_accuracy: Option<f64>,
    /// With `probe_fallback` and a validation split: the validation accuracy of the start
    /// (epoch 0, the linear probe on the encoder as pretrained).
    pub(super) start_validation_accuracy: Option<f64>,
    pub(super) test_accuracy: Option<f64>,
    /// With `probe_init`: the probe's held-out accuracy (when measured) and L2 strength.
    pub(super) probe_accuracy: Option<f64>,
    pub(super) probe_l2: Option<f64>,
    pub(super) warnings: Vec<String>,
}

impl Fitter<'_> {
    /// Trains once as `plan` says; `log` gets one line per epoch and every warning.
    pub(super) fn fit(
        &self,
        plan: &FitPlan<'_>,
        log: &mut dyn FnMut(&str),
    ) -> Result<Fitted, TrainError> {
        let (settings, device) = (self.settings, self.device);
        let train_labels = label_tensor(plan.train, device);
        let validation_labels = plan.validation.map(|set| label_tensor(set, device));
        let mut model = Model::new(self.config, &self.data.train, device);
        load_start(self.config, self.checkpoint, settings, &mut model)?;
        let mut tuning = Tuning::new(self, plan, model);
        let (probe_accuracy, probe_l2) = if settings.probe_init && !settings.from_scratch {
            let (accuracy, l2) = tuning.start_from_probe(self, plan, &train_labels);
            (accuracy, Some(l2))
        } else {
            (None, None)
        };
        // Several processes (data-parallel fine-tuning): every one starts from rank 0's
        // model and head.
        parallel::broadcast_from_first(&[&tuning.model.store, &tuning.model.state])?;
        let encoder_names = trained_encoder_names(&tuning.model.store);
        let layer_decay = LayerDecay::new(&encoder_names, settings.layer_decay);
        let drift = EncoderDrift::new(&tuning.model.store, &encoder_names);
        let mut watch = EpochWatch::new(settings.from_scratch);
        // The probe is the result to beat: measured on validation before any training.
        let start_validation_accuracy = if settings.probe_fallback && probe_l2.is_some() {
            plan.validation
                .zip(validation_labels.as_ref())
                .map(|(set, labels)| tuning.accuracy(set, labels))
                .transpose()?
        } else {
            None
        };
        if let Some(accuracy) = start_validation_accuracy {
            log(&format!(
                "epoch   0: the linear probe, validation accuracy {:.1}%",
                100.0 * accuracy
            ));
            if plan.early_stopping {
                watch.start(accuracy, &tuning.model.store);
            }
        }
        let mut records: Vec<EpochRecord> = Vec::new();
        for epoch in 1..=plan.epochs.min(settings.epochs) {
            let frozen = epoch <= settings.freeze_epochs;
            tuning.optimizer.set_lr_scales(|name| {
                if name
                    .strip_prefix(HEAD)
                    .is_some_and(|rest| rest.starts_with('.'))
                {
                    1.0
                } else if frozen {
                    0.0
                } else {
                    layer_decay.scale(name)
                }
            });
            let loss = tuning.train_epoch(epoch, frozen, plan.train, &train_labels, log)?;
            let validation_accuracy = plan
                .validation
                .zip(validation_labels.as_ref())
                .map(|(set, labels)| tuning.accuracy(set, labels))
                .transpose()?;
            let record = EpochRecord {
                epoch,
                loss,
                validation_accuracy,
                encoder_trained: !frozen,
                encoder_change: drift.relative_change(&tuning.model.store),
            };
            log(&format!(
                "epoch {epoch:>3}: loss {:.4}{}{}, encoder moved {:.2}%",
                record.loss,
                validation_accuracy
                    .map(|a| format!(", validation accuracy {:.1}%", 100.0 * a))
                    .unwrap_or_default(),
                if frozen { " (encoder frozen)" } else { "" },
                100.0 * record.encoder_change
            ));
            if plan.early_stopping {
                watch.after_epoch(&record, &tuning.model.store, log);
            } else {
                watch.after_epoch(
                    &EpochRecord {
                        validation_accuracy: None,
                        ..record.clone()
                    },
                    &tuning.model.store,
                    log,
                );
            }
            records.push(record);
            // Patience runs from the best epoch that trained: fine-tuning often dips under
            // its probe before it overtakes it, so the probe (epoch 0) stops nothing.
            let best_trained = watch.best_trained_epoch_or(epoch);
            if plan.early_stopping && epoch - best_trained >= settings.patience {
                log(&format!(
                    "early stop: no better validation accuracy since epoch {best_trained}"
                ));
                break;
            }
        }
        let (best, warnings) = watch.finish();
        let (best_epoch, best_validation_accuracy) = match (best, records.last()) {
            (Some(best), _) => {
                best.restore(&tuning.model.store);
                if best.epoch == 0 {
                    log("fine-tuning did not beat the linear probe it started from on the validation examples: the probe is kept (epoch 0)");
                }
                (best.epoch, Some(best.validation_accuracy))
            }
            (None, Some(last)) => (last.epoch, last.validation_accuracy),
            // No epoch to run (cross-validation chose the probe): the start is the result.
            (None, None) => (0, start_validation_accuracy),
        };
        let test_accuracy = plan
            .measure_test
            .then(|| tuning.accuracy(&self.data.test, &self.split.test_labels.to_device(device)))
            .transpose()?;
        Ok(Fitted {
            model: tuning.model,
            head: tuning.head,
            records,
            best_epoch,
            best_validation_accuracy,
            start_validation_accuracy,
            test_accuracy,
            probe_accuracy,
            probe_l2,
            warnings,
        })
    }
}

/// Loads the configured start into `model` (a downloaded checkpoint, the run's checkpoint,
/// or nothing: random initialization); how the report names it.
pub(super) fn load_start(
    config: &PretrainConfig,
    checkpoint: Option<&Checkpoint>,
    settings: &FinetuneConfig,
    model: &mut Model,
) -> Result<String, TrainError> {
    Ok(match (checkpoint, settings.from_scratch) {
        _ if settings.from_pretrained => {
            if config.backbone.pretrained.is_empty() {
                return Err(TrainError::Invalid {
                    field: "backbone.pretrained".into(),
                    message: "the run did not start from a downloaded checkpoint, so there is none to fine-tune from".into(),
                });
            }
            model.load_pretrained(config)?;
            format!("{} (as downloaded)", config.backbone.pretrained)
        }
        (Some(checkpoint), false) => {
            checkpoint.load_weights(config, &mut model.store)?;
            format!(
                "{} (step {})",
                checkpoint.dir.display(),
                checkpoint.state.step
            )
        }
        _ => "random initialization (supervised from scratch)".to_string(),
    })
}

/// The names of the encoder's parameters that train.
fn trained_encoder_names(store: &VarStore) -> Vec<String> {
    store
        .variables()
        .into_iter()
        .filter(|(name, tensor)| tensor.requires_grad() && name.starts_with("encoder."))
        .map(|(name, _)| name)
        .collect()
}

/// The labels of `samples` as a tensor `[N]` on `device`.
pub(super) fn label_tensor(samples: &Samples, device: Device) -> Tensor {
    let values: Vec<i64> = samples
        .labels()
        .expect("labeled")
        .iter()
        .map(|&label| i64::from(label))
        .collect();
    Tensor::from_slice(&values).to_device(device)
}

/// The model with its linear head and their optimizer, on the learning-rate schedule.
struct Tuning<'a> {
    settings: &'a FinetuneConfig,
    model: Model,
    head: nn::Linear,
    optimizer: Optimizer,
    device: Device,
    /// One augmented view per image, drawn with the run's view settings (None: the
    /// examples as they are).
    views: Option<ViewRecipe>,
    lr: f64,
    total_steps: u64,
    warmup_steps: u64,
    /// Steps run so far (the schedule's clock).
    step: u64,
    /// Steps skipped for a non-finite loss or gradient, and the run config's limit on them.
    nonfinite_steps: u64,
    max_nonfinite_steps: u64,
    /// Steps decided on the device (the run's `train.host_reads`; "auto": on CUDA): the
    /// host reads the epoch's loss and skipped steps once, at its end.
    on_device: bool,
}

impl<'a> Tuning<'a> {
    /// Adds a linear head for the split's classes to `model` (initialized from the
    /// fine-tuning seed) and an AdamW over both, scheduled for `settings.epochs` over the
    /// plan's training examples.
    fn new(fitter: &Fitter<'a>, plan: &FitPlan<'_>, model: Model) -> Tuning<'a> {
        let settings = fitter.settings;
        tch::manual_seed(settings.seed as i64);
        let head = nn::linear(
            model.store.root() / HEAD,
            model.method.encoder().dim(),
            fitter.split.num_classes,
            Default::default(),
        );
        let optimizer_config = OptimizerConfig {
            weight_decay: plan.weight_decay,
            ..OptimizerConfig::default()
        };
        let optimizer = Optimizer::new(&model.store, &optimizer_config);
        let on_device = fitter
            .config
            .train
            .host_reads
            .on_device(model.store.device(), optimizer_config.kind);
        let steps_per_epoch = plan.train.len().div_ceil(settings.batch_size.max(1)) as u64;
        let total_steps = steps_per_epoch * settings.epochs.max(1) as u64;
        let views = (plan.augment && matches!(plan.train, Samples::Images(_)))
            .then(|| ViewRecipe::OneView(fitter.config.views.clone()));
        Tuning {
            settings,
            device: model.store.device(),
            model,
            head,
            optimizer,
            views,
            lr: plan.lr,
            total_steps,
            warmup_steps: (settings.warmup_fraction * total_steps as f64).round() as u64,
            step: 0,
            nonfinite_steps: 0,
            max_nonfinite_steps: fitter.config.train.max_nonfinite_steps,
            on_device,
        }
    }

    /// Fits the linear probe on the frozen encoder's features of the training examples and
    /// copies it into the head; the probe's held-out accuracy (when the plan measures the
    /// held-out split) and its L2 strength.
    fn start_from_probe(
        &mut self,
        fitter: &Fitter<'_>,
        plan: &FitPlan<'_>,
        train_labels: &Tensor,
    ) -> (Option<f64>, f64) {
        let encoder = self.model.method.encoder();
        let train = encode_samples(encoder, plan.train, self.device, 256);
        let probe = LinearProbe::fit(
            &train,
            train_labels,
            fitter.split.num_classes,
            &LinearProbeConfig::default(),
            self.settings.seed,
        );
        let (weight, bias) = probe.as_linear();
        tch::no_grad(|| {
            self.head.ws.copy_(&weight.to_device(self.device));
            if let Some(bs) = &mut self.head.bs {
                bs.copy_(&bias.to_device(self.device));
            }
        });
        let accuracy = plan.measure_test.then(|| {
            let test = encode_samples(encoder, &fitter.data.test, self.device, 256);
            probe.accuracy(&test, &fitter.split.test_labels)
        });
        (accuracy, probe.l2)
    }

    /// One pass over `train_set` in this epoch's shuffled order, the encoder frozen or not;
    /// the mean loss of the steps taken.
    fn train_epoch(
        &mut self,
        epoch: usize,
        frozen: bool,
        train_set: &Samples,
        train_labels: &Tensor,
        log: &mut dyn FnMut(&str),
    ) -> Result<f64, TrainError> {
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut rng_stream(
            self.settings.seed,
            &[FINETUNE_STREAM, epoch as u64],
        ));
        let (mut loss_sum, mut batches) = (0.0, 0);
        // Steps decided on the device: the sum of the losses of the steps taken, how many
        // were taken, and how many ran.
        let mut on_device: Option<(Tensor, Tensor)> = None;
        let mut steps_run = 0u64;
        let (rank, world) = parallel::placement();
        for batch in order.chunks(self.settings.batch_size.max(1)) {
            // Several processes: each takes its contiguous part of the batch (a batch with
            // fewer examples than processes goes whole to each), and its summed loss is
            // weighted so that the average over the processes is the batch's mean loss.
            let (chunk, weight) = if world > 1 && batch.len() >= world {
                let chunk = parallel::share(batch, rank, world);
                (chunk, Some(world as f64 / batch.len() as f64))
            } else {
                (batch.to_vec(), None)
            };
            let chunk = chunk.as_slice();
            let inputs = match &self.views {
                Some(views) => views
                    .build(
                        train_set,
                        chunk,
                        self.settings.seed,
                        self.step,
                        epoch as u64,
                    )
                    .to_inputs(self.device)
                    .views
                    .remove(0),
                None => samples_to_tensor(train_set, chunk, self.device),
            };
            let index = host_to_device(
                Tensor::from_slice(&chunk.iter().map(|&i| i as i64).collect::<Vec<_>>()),
                self.device,
            );
            let targets = train_labels.index_select(0, &index);
            let encoder = self.model.method.encoder();
            let features = if frozen {
                tch::no_grad(|| encoder.encode(&inputs, false))
            } else {
                encoder.encode(&inputs, true)
            };
            let logits = self.head.forward(&features);
            let loss = match weight {
                None => logits.cross_entropy_for_logits(&targets),
                Some(weight) => {
                    logits.log_softmax(-1, Kind::Float).g_nll_loss::<Tensor>(
                        &targets,
                        None,
                        tch::Reduction::Sum,
                        -100,
                    ) * weight
                }
            };
            let settings = StepSettings {
                lr: learning_rate(
                    self.lr,
                    self.step,
                    self.total_steps,
                    self.warmup_steps,
                    0.01,
                ),
                grad_clip: 0.0,
                max_nonfinite_steps: self.max_nonfinite_steps,
            };
            if self.on_device {
                let outcome = train_step_on_device(&loss, &mut self.optimizer, settings, |_| {})?;
                self.step += 1;
                steps_run += 1;
                let _guard = tch::no_grad_guard();
                let taken = outcome.taken.gt(0.5);
                let loss = outcome.loss.where_self(&taken, &outcome.loss.zeros_like());
                on_device = Some(match on_device {
                    None => (loss, outcome.taken),
                    Some((sum, count)) => (sum + loss, count + outcome.taken),
                });
                continue;
            }
            let outcome = train_step(
                &loss,
                &mut self.optimizer,
                settings,
                &mut self.nonfinite_steps,
                &mut |notice| log(&format!("epoch {epoch}: {notice}")),
                || {},
            )?;
            self.step += 1;
            if outcome.taken {
                loss_sum += outcome.loss;
                batches += 1;
            }
        }
        if let Some((sum, taken)) = on_device {
            let taken = taken.double_value(&[]).round() as u64;
            let skipped = steps_run - taken;
            self.nonfinite_steps += skipped;
            report_skipped(
                skipped,
                self.nonfinite_steps,
                self.max_nonfinite_steps,
                &format!("epoch {epoch}"),
                log,
            )?;
            return Ok(sum.double_value(&[]) / taken.max(1) as f64);
        }
        Ok(loss_sum / batches.max(1) as f64)
    }

    /// Accuracy of the head on `samples` against `labels`; several processes each measure
    /// their contiguous part and add up the counts.
    fn accuracy(&self, samples: &Samples, labels: &Tensor) -> Result<f64, TrainError> {
        let (rank, world) = parallel::placement();
        if world == 1 {
            return Ok(accuracy(
                &self.model,
                &self.head,
                samples,
                labels,
                self.device,
            ));
        }
        let part = parallel::share(&(0..samples.len()).collect::<Vec<_>>(), rank, world);
        let right = if part.is_empty() {
            0
        } else {
            let index = Tensor::from_slice(&part.iter().map(|&i| i as i64).collect::<Vec<_>>());
            class_logits(&self.model, &self.head, samples, &part, self.device)
                .argmax(1, false)
                .eq_tensor(&labels.to_device(Device::Cpu).index_select(0, &index))
                .sum(Kind::Int64)
                .int64_value(&[]) as usize
        };
        let right = parallel::sum_count(right)?;
        Ok(right as f64 / samples.len().max(1) as f64)
    }
}

/// Accuracy of `head` over `model`'s encoder on `samples` against `labels`.
fn accuracy(
    model: &Model,
    head: &nn::Linear,
    samples: &Samples,
    labels: &Tensor,
    device: Device,
) -> f64 {
    let indices: Vec<usize> = (0..samples.len()).collect();
    if indices.is_empty() {
        return 0.0;
    }
    class_logits(model, head, samples, &indices, device)
        .argmax(1, false)
        .eq_tensor(&labels.to_device(Device::Cpu))
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[])
}

/// The head's logits `[N, classes]` (on the CPU) for the `indices` of `samples`, in
/// inference mode, 256 at a time.
pub(super) fn class_logits(
    model: &Model,
    head: &nn::Linear,
    samples: &Samples,
    indices: &[usize],
    device: Device,
) -> Tensor {
    let _guard = tch::no_grad_guard();
    if indices.is_empty() {
        return Tensor::zeros([0, head.ws.size()[0]], (Kind::Float, Device::Cpu));
    }
    let chunks: Vec<Tensor> = indices
        .chunks(256)
        .map(|chunk| {
            let inputs = samples_to_tensor(samples, chunk, device);
            head.forward(&model.method.encoder().encode(&inputs, false))
                .to_device(Device::Cpu)
        })
        .collect();
    Tensor::cat(&chunks, 0)
}

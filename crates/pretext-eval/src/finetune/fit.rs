//! One fine-tuning run: from the configured start, epochs of shuffled batches through the
//! shared training step, validation after each, early stopping on the best epoch.

use pretext_data::{rng_stream, Samples, Splits};
use pretext_methods::samples_to_tensor;
use pretext_nn::Encoder;
use pretext_train::{
    learning_rate, train_step, Checkpoint, Model, Optimizer, OptimizerConfig, PretrainConfig,
    StepSettings, TrainError,
};
use rand::seq::SliceRandom;
use tch::nn::{self, Module, VarStore};
use tch::{Device, Kind, Tensor};

use super::layer_decay::LayerDecay;
use super::report::{EpochRecord, FinetuneReport};
use super::settings::FinetuneConfig;
use super::watch::{EncoderDrift, EpochWatch};
use crate::probe::ProbeSplit;

/// Where the head's variables live in the model's store.
const HEAD: &str = "finetune_head";

/// Tag of the fine-tuning batch-order stream.
const FINETUNE_STREAM: u64 = 0x4654_554e; // "FTUN"

/// One fine-tuning from the configured start on `train_set`, early-stopped on
/// `validation_set`; the report, the model at its best epoch and its head.
#[allow(clippy::too_many_arguments)]
pub(super) fn fit_once(
    config: &PretrainConfig,
    checkpoint: Option<&Checkpoint>,
    data: &Splits,
    settings: &FinetuneConfig,
    device: Device,
    log: &mut dyn FnMut(&str),
    split: &ProbeSplit,
    train_set: &Samples,
    validation_set: &Samples,
) -> Result<(FinetuneReport, Model, nn::Linear), TrainError> {
    let train_labels = label_tensor(train_set, device);
    let validation_labels = label_tensor(validation_set, device);
    let mut model = Model::new(config, &data.train, device);
    let start = load_start(config, checkpoint, settings, &mut model)?;
    let mut tuning = Tuning::new(config, settings, model, split.num_classes, train_set.len());
    let encoder_names = trained_encoder_names(&tuning.model.store);
    let layer_decay = LayerDecay::new(&encoder_names, settings.layer_decay);
    let drift = EncoderDrift::new(&tuning.model.store, &encoder_names);
    let mut watch = EpochWatch::new(settings.from_scratch);
    let mut records: Vec<EpochRecord> = Vec::new();
    for epoch in 1..=settings.epochs {
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
        let loss = tuning.train_epoch(epoch, frozen, train_set, &train_labels, log)?;
        let validation_accuracy = tuning.accuracy(validation_set, &validation_labels);
        let record = EpochRecord {
            epoch,
            loss,
            validation_accuracy,
            encoder_trained: !frozen,
            encoder_change: drift.relative_change(&tuning.model.store),
        };
        log(&format!(
            "epoch {epoch:>3}: loss {:.4}, validation accuracy {:.1}%{}, encoder moved {:.2}%",
            record.loss,
            100.0 * validation_accuracy,
            if frozen { " (encoder frozen)" } else { "" },
            100.0 * record.encoder_change
        ));
        watch.after_epoch(&record, &tuning.model.store, log);
        records.push(record);
        let best_epoch = watch.best_epoch_or(epoch);
        if epoch - best_epoch >= settings.patience {
            log(&format!(
                "early stop: no better validation accuracy since epoch {best_epoch}"
            ));
            break;
        }
    }
    let (best, warnings) = watch.finish();
    best.restore(&tuning.model.store);
    let test_accuracy = tuning.accuracy(&data.test, &split.test_labels.to_device(device));
    let report = FinetuneReport {
        dataset: data.name.clone(),
        start,
        train_examples: train_set.len(),
        validation_examples: validation_set.len(),
        test_size: data.test.len(),
        best_epoch: best.epoch,
        best_validation_accuracy: best.validation_accuracy,
        test_accuracy,
        epochs: records,
        warnings,
        self_training: Vec::new(),
        before_self_training: None,
    };
    Ok((report, tuning.model, tuning.head))
}

/// Loads the configured start into `model` (a downloaded checkpoint, the run's checkpoint,
/// or nothing: random initialization); how the report names it.
fn load_start(
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
fn label_tensor(samples: &Samples, device: Device) -> Tensor {
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
    total_steps: u64,
    warmup_steps: u64,
    /// Steps run so far (the schedule's clock).
    step: u64,
    /// Steps skipped for a non-finite loss or gradient, and the run config's limit on them.
    nonfinite_steps: u64,
    max_nonfinite_steps: u64,
}

impl<'a> Tuning<'a> {
    /// Adds a linear head for `classes` to `model` (initialized from the fine-tuning seed)
    /// and an AdamW over both, scheduled for `settings.epochs` over `train_len` examples.
    fn new(
        config: &PretrainConfig,
        settings: &'a FinetuneConfig,
        model: Model,
        classes: i64,
        train_len: usize,
    ) -> Tuning<'a> {
        tch::manual_seed(settings.seed as i64);
        let head = nn::linear(
            model.store.root() / HEAD,
            model.method.encoder().dim(),
            classes,
            Default::default(),
        );
        let optimizer = Optimizer::new(
            &model.store,
            &OptimizerConfig {
                weight_decay: settings.weight_decay,
                ..OptimizerConfig::default()
            },
        );
        let steps_per_epoch = train_len.div_ceil(settings.batch_size.max(1)) as u64;
        let total_steps = steps_per_epoch * settings.epochs.max(1) as u64;
        Tuning {
            settings,
            device: model.store.device(),
            model,
            head,
            optimizer,
            total_steps,
            warmup_steps: (settings.warmup_fraction * total_steps as f64).round() as u64,
            step: 0,
            nonfinite_steps: 0,
            max_nonfinite_steps: config.train.max_nonfinite_steps,
        }
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
        for chunk in order.chunks(self.settings.batch_size.max(1)) {
            let inputs = samples_to_tensor(train_set, chunk, self.device);
            let index = Tensor::from_slice(&chunk.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(self.device);
            let targets = train_labels.index_select(0, &index);
            let encoder = self.model.method.encoder();
            let features = if frozen {
                tch::no_grad(|| encoder.encode(&inputs, false))
            } else {
                encoder.encode(&inputs, true)
            };
            let loss = self
                .head
                .forward(&features)
                .cross_entropy_for_logits(&targets);
            let settings = StepSettings {
                lr: learning_rate(
                    self.settings.lr,
                    self.step,
                    self.total_steps,
                    self.warmup_steps,
                    0.01,
                ),
                grad_clip: 0.0,
                max_nonfinite_steps: self.max_nonfinite_steps,
            };
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
        Ok(loss_sum / batches.max(1) as f64)
    }

    /// Accuracy of the head on `samples` against `labels`.
    fn accuracy(&self, samples: &Samples, labels: &Tensor) -> f64 {
        accuracy(&self.model, &self.head, samples, labels, self.device)
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

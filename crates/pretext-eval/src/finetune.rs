//! Fine-tuning an encoder end to end with few labels, with the guards the seed asks for
//! against "over-aggressive fine-tuning" (Howard & Ruder 2018; Kumar et al. 2022; the MAE and
//! BEiT recipes):
//!
//! - a linear head on the encoder's representation, trained with the encoder by AdamW at a
//!   small learning rate with linear warmup and cosine decay;
//! - **layer-wise learning-rate decay**: a parameter at depth d of D gets lr · decay^(D + 1 − d),
//!   so the layers nearest the input (the most general features) move least;
//! - optional **freeze-then-unfreeze**: the first `freeze_epochs` train the head alone on
//!   frozen features (a linear probe), then everything trains (LP-FT);
//! - **early stopping** on a validation split carved from the labeled examples, keeping the
//!   best epoch's weights;
//! - **health**: a warning when the encoder's weights move more than 10% in the first
//!   unfrozen epoch, or when validation accuracy collapses from its best.
//!
//! The labeled examples are the probe's (the same stratified subset for the same `labels` and
//! `seed`), so fine-tuning and probing compare on equal terms. `from_scratch` trains the same
//! architecture from random initialization: the supervised baseline.

use pretext_data::{rng_stream, stratified_split, Samples, Splits};
use pretext_methods::samples_to_tensor;
use pretext_nn::Encoder;
use pretext_train::{
    learning_rate, Checkpoint, Model, Optimizer, OptimizerConfig, PretrainConfig, TrainError,
};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Device, Kind, Tensor};

use crate::probe::{ProbeConfig, ProbeSplit};

/// Settings of `pretext finetune`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    /// Labeled examples from the training split: a count ("600") or a share ("1%").
    pub labels: String,
    /// Seed of the labeled subset, the validation split, the head and the batch order.
    pub seed: u64,
    /// Passes over the labeled training examples (early stopping may end sooner).
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate of the head; encoder layers get it times their decay factor.
    pub lr: f64,
    pub weight_decay: f64,
    /// Share of the steps spent warming the learning rate up.
    pub warmup_fraction: f64,
    /// Layer-wise learning-rate decay (1 = the same rate everywhere).
    pub layer_decay: f64,
    /// Epochs that train the head alone on the frozen encoder first.
    pub freeze_epochs: usize,
    /// Share of the labeled examples held out for validation (stratified).
    pub validation_fraction: f64,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: usize,
    /// Train the same architecture from random initialization instead (the supervised
    /// baseline).
    pub from_scratch: bool,
    /// Start from the downloaded checkpoint the run itself started from
    /// (`backbone.pretrained`) instead of the run's own training.
    pub from_pretrained: bool,
    /// Rounds of self-training (0 = none): after training, the unlabeled training examples
    /// the model labels with confidence ≥ `pseudo_label_threshold` join the labeled ones with
    /// those pseudo-labels, and the model is trained again from the same start.
    pub self_training_rounds: usize,
    /// Softmax probability a prediction needs to become a pseudo-label.
    pub pseudo_label_threshold: f64,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            labels: "600".into(),
            seed: 0,
            epochs: 30,
            batch_size: 32,
            lr: 1e-3,
            weight_decay: 0.05,
            warmup_fraction: 0.1,
            layer_decay: 0.75,
            freeze_epochs: 0,
            validation_fraction: 0.2,
            patience: 8,
            from_scratch: false,
            from_pretrained: false,
            self_training_rounds: 0,
            pseudo_label_threshold: 0.95,
        }
    }
}

/// One epoch of fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub validation_accuracy: f64,
    /// Whether the encoder was trained this epoch (false while frozen).
    pub encoder_trained: bool,
    /// ‖θ − θ₀‖ / ‖θ₀‖ of the encoder's parameters after this epoch.
    pub encoder_change: f64,
}

/// What fine-tuning reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinetuneReport {
    pub dataset: String,
    pub start: String,
    pub train_examples: usize,
    pub validation_examples: usize,
    pub test_size: usize,
    pub best_epoch: usize,
    pub best_validation_accuracy: f64,
    pub test_accuracy: f64,
    pub epochs: Vec<EpochRecord>,
    pub warnings: Vec<String>,
    /// Each self-training round (empty without self-training); the fields above describe
    /// the last training.
    #[serde(default)]
    pub self_training: Vec<SelfTrainingRound>,
    /// With self-training: test accuracy of the first training, on the labeled examples
    /// alone (what fine-tuning without self-training reaches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_self_training: Option<f64>,
}

/// One round of self-training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelfTrainingRound {
    pub round: usize,
    /// Unlabeled examples whose prediction passed the threshold.
    pub pseudo_labeled: usize,
    /// Of those, the share whose pseudo-label is right (the data's hidden labels; a
    /// diagnostic only — training never sees them).
    pub pseudo_label_accuracy: Option<f64>,
    /// Test accuracy of the model trained in this round.
    pub test_accuracy: f64,
}

/// Depth of an encoder parameter from its name: 0 for embeddings, stems and a ViT's patch
/// embedding, [CLS] token and positions, then one per
/// block (`layer.N`, `layerN`, `convN`/`bnN`); None outside the encoder.
pub fn encoder_depth(name: &str) -> Option<usize> {
    let rest = name.strip_prefix("encoder.")?;
    let input_layers = [
        "embeddings",
        "stem",
        "patch_embed",
        "cls_token",
        "position_embed",
    ];
    if input_layers.iter().any(|prefix| rest.starts_with(prefix)) {
        return Some(0);
    }
    let number_after = |marker: &str| -> Option<usize> {
        let start = rest.find(marker)? + marker.len();
        let digits: String = rest[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    if let Some(n) = number_after("layer.") {
        return Some(n + 1);
    }
    if let Some(n) = number_after("layer") {
        return Some(n);
    }
    if let Some(n) = number_after("conv").or_else(|| number_after("bn")) {
        return Some(n + 1);
    }
    // Final norms and anything else sit at the top of the encoder.
    Some(usize::MAX)
}

/// Fine-tunes the encoder of `checkpoint` (or a random one with `from_scratch`) on the
/// labeled subset of `data.train` and measures it on `data.test`. `log` receives one line per
/// epoch and every warning.
pub fn finetune(
    config: &PretrainConfig,
    checkpoint: Option<&Checkpoint>,
    data: &Splits,
    settings: &FinetuneConfig,
    device: Device,
    log: &mut dyn FnMut(&str),
) -> Result<FinetuneReport, TrainError> {
    let probe_settings = ProbeConfig {
        labels: settings.labels.clone(),
        seed: settings.seed,
        ..Default::default()
    };
    let split = ProbeSplit::new(&data.train, &data.test, &probe_settings)?;
    let labeled = data.train.subset(&split.labeled);
    let labels = labeled
        .labels()
        .expect("the probe split is labeled")
        .to_vec();
    let (train_rows, validation_rows) =
        stratified_split(&labels, settings.validation_fraction, settings.seed);
    if train_rows.is_empty() || validation_rows.is_empty() {
        return Err(TrainError::Invalid {
            field: "finetune.labels".into(),
            message: format!(
                "{} labeled examples leave none for training or validation; use more labels",
                labels.len()
            ),
        });
    }
    let train_set = labeled.subset(&train_rows);
    let validation_set = labeled.subset(&validation_rows);
    let fit = |train: &Samples, log: &mut dyn FnMut(&str)| {
        fit_once(
            config,
            checkpoint,
            data,
            settings,
            device,
            log,
            &split,
            train,
            &validation_set,
        )
    };
    let (mut report, mut model, mut head) = fit(&train_set, log)?;
    let in_subset: std::collections::HashSet<usize> = split.labeled.iter().copied().collect();
    let pool: Vec<usize> = (0..data.train.len())
        .filter(|index| !in_subset.contains(index))
        .collect();
    let mut rounds = Vec::new();
    let first_test_accuracy = report.test_accuracy;
    for round in 1..=settings.self_training_rounds {
        let (chosen, pseudo) = pseudo_labels(
            &model,
            &head,
            &data.train,
            &pool,
            settings.pseudo_label_threshold,
            device,
        );
        let pseudo_label_accuracy = data.train.labels().map(|truth| {
            let right = chosen
                .iter()
                .zip(&pseudo)
                .filter(|(&index, &label)| truth[index] == label)
                .count();
            right as f64 / chosen.len().max(1) as f64
        });
        log(&format!(
            "self-training round {round}: {} of {} unlabeled examples pseudo-labeled (confidence ≥ {}){}",
            chosen.len(),
            pool.len(),
            settings.pseudo_label_threshold,
            pseudo_label_accuracy
                .map(|a| format!(", {:.1}% of them right", 100.0 * a))
                .unwrap_or_default()
        ));
        let mut labels = train_set.labels().expect("labeled").to_vec();
        labels.extend(&pseudo);
        let mut indices: Vec<usize> = train_rows.iter().map(|&row| split.labeled[row]).collect();
        indices.extend(&chosen);
        let augmented = data.train.subset(&indices).with_labels(labels);
        (report, model, head) = fit(&augmented, log)?;
        log(&format!(
            "self-training round {round}: test accuracy {:.1}%",
            100.0 * report.test_accuracy
        ));
        rounds.push(SelfTrainingRound {
            round,
            pseudo_labeled: chosen.len(),
            pseudo_label_accuracy,
            test_accuracy: report.test_accuracy,
        });
    }
    if !rounds.is_empty() {
        report.before_self_training = Some(first_test_accuracy);
    }
    report.self_training = rounds;
    Ok(report)
}

/// The `pool` examples of `samples` whose predicted class has probability ≥ `threshold`,
/// with those classes.
fn pseudo_labels(
    model: &Model,
    head: &nn::Linear,
    samples: &Samples,
    pool: &[usize],
    threshold: f64,
    device: Device,
) -> (Vec<usize>, Vec<u16>) {
    let (confidence, predicted) = class_logits(model, head, samples, pool, device)
        .softmax(-1, Kind::Float)
        .max_dim(1, false);
    let confidence = Vec::<f32>::try_from(confidence).expect("f32");
    let predicted = Vec::<i64>::try_from(predicted).expect("i64");
    pool.iter()
        .zip(confidence.iter().zip(&predicted))
        .filter(|(_, (&c, _))| f64::from(c) >= threshold)
        .map(|(&index, (_, &class))| (index, class as u16))
        .unzip()
}

/// The head's logits `[N, classes]` (on the CPU) for the `indices` of `samples`, in
/// inference mode, 256 at a time.
fn class_logits(
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

/// One fine-tuning from the configured start on `train_set`, early-stopped on
/// `validation_set`; the report, the model at its best epoch and its head.
#[allow(clippy::too_many_arguments)]
fn fit_once(
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
    let label_tensor = |samples: &Samples| {
        let values: Vec<i64> = samples
            .labels()
            .expect("labeled")
            .iter()
            .map(|&l| i64::from(l))
            .collect();
        Tensor::from_slice(&values).to_device(device)
    };
    let (train_labels, validation_labels) = (label_tensor(train_set), label_tensor(validation_set));

    let mut model = Model::new(config, &data.train, device);
    let start = match (checkpoint, settings.from_scratch) {
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
    };
    tch::manual_seed(settings.seed as i64);
    let head = nn::linear(
        model.store.root() / "finetune_head",
        model.method.encoder().dim(),
        split.num_classes,
        Default::default(),
    );
    let mut optimizer = Optimizer::new(
        &model.store,
        &OptimizerConfig {
            weight_decay: settings.weight_decay,
            ..OptimizerConfig::default()
        },
    );
    let encoder_names: Vec<String> = model
        .store
        .variables()
        .into_iter()
        .filter(|(name, tensor)| tensor.requires_grad() && name.starts_with("encoder."))
        .map(|(name, _)| name)
        .collect();
    let deepest = encoder_names
        .iter()
        .filter_map(|name| encoder_depth(name))
        .filter(|&depth| depth != usize::MAX)
        .max()
        .unwrap_or(0);
    let layer_scale = |name: &str| match encoder_depth(name) {
        None => 1.0,
        Some(depth) => {
            let depth = depth.min(deepest + 1);
            settings.layer_decay.powi((deepest + 1 - depth) as i32)
        }
    };
    let encoder_parameters = |store: &tch::nn::VarStore| -> Vec<Tensor> {
        let variables = store.variables();
        let mut names = encoder_names.clone();
        names.sort();
        names
            .iter()
            .map(|name| variables[name].detach().copy())
            .collect()
    };
    let initial = encoder_parameters(&model.store);
    let relative_change = |now: &[Tensor]| {
        let (mut difference, mut norm) = (0.0, 0.0);
        for (a, b) in now.iter().zip(&initial) {
            difference += (a - b).square().sum(Kind::Double).double_value(&[]);
            norm += b.square().sum(Kind::Double).double_value(&[]);
        }
        (difference / norm.max(1e-30)).sqrt()
    };

    let steps_per_epoch = train_set.len().div_ceil(settings.batch_size.max(1)) as u64;
    let total_steps = steps_per_epoch * settings.epochs.max(1) as u64;
    let warmup = (settings.warmup_fraction * total_steps as f64).round() as u64;
    let mut step = 0u64;
    let mut records: Vec<EpochRecord> = Vec::new();
    let mut warnings = Vec::new();
    let mut best: Option<BestEpoch> = None;
    let mut first_unfrozen_checked = false;
    for epoch in 1..=settings.epochs {
        let frozen = epoch <= settings.freeze_epochs;
        optimizer.set_lr_scales(|name| {
            if name.starts_with("finetune_head.") {
                1.0
            } else if frozen {
                0.0
            } else {
                layer_scale(name)
            }
        });
        let mut order: Vec<usize> = (0..train_set.len()).collect();
        order.shuffle(&mut rng_stream(
            settings.seed,
            &[FINETUNE_STREAM, epoch as u64],
        ));
        let (mut loss_sum, mut batches) = (0.0, 0);
        for chunk in order.chunks(settings.batch_size.max(1)) {
            let inputs = samples_to_tensor(train_set, chunk, device);
            let index = Tensor::from_slice(&chunk.iter().map(|&i| i as i64).collect::<Vec<_>>())
                .to_device(device);
            let targets = train_labels.index_select(0, &index);
            let features = if frozen {
                tch::no_grad(|| model.method.encoder().encode(&inputs, false))
            } else {
                model.method.encoder().encode(&inputs, true)
            };
            let loss = head.forward(&features).cross_entropy_for_logits(&targets);
            optimizer.zero_grad();
            loss.backward();
            let lr = learning_rate(settings.lr, step, total_steps, warmup, 0.01);
            optimizer.step(lr);
            step += 1;
            loss_sum += loss.double_value(&[]);
            batches += 1;
        }
        let validation_accuracy =
            accuracy(&model, &head, validation_set, &validation_labels, device);
        let change = relative_change(&encoder_parameters(&model.store));
        let record = EpochRecord {
            epoch,
            loss: loss_sum / batches.max(1) as f64,
            validation_accuracy,
            encoder_trained: !frozen,
            encoder_change: change,
        };
        log(&format!(
            "epoch {epoch:>3}: loss {:.4}, validation accuracy {:.1}%{}, encoder moved {:.2}%",
            record.loss,
            100.0 * validation_accuracy,
            if frozen { " (encoder frozen)" } else { "" },
            100.0 * change
        ));
        if !frozen && !first_unfrozen_checked {
            first_unfrozen_checked = true;
            if change > 0.10 && !settings.from_scratch {
                let warning = format!(
                    "WARNING fine-tuning: the encoder's weights moved {:.0}% in the first epoch it trained; this can overwrite what pretraining learned — lower --lr, lower --layer-decay, or freeze the encoder first (--freeze-epochs)",
                    100.0 * change
                );
                log(&warning);
                warnings.push(warning);
            }
        }
        let improved = best
            .as_ref()
            .is_none_or(|(_, best_accuracy, _)| validation_accuracy > *best_accuracy);
        if improved {
            let weights = model
                .store
                .variables()
                .into_iter()
                .map(|(name, tensor)| (name, tensor.detach().copy()))
                .collect();
            best = Some((epoch, validation_accuracy, weights));
        } else if let Some((_, best_accuracy, _)) = &best {
            if validation_accuracy < best_accuracy - 0.2
                && !warnings.iter().any(|w| w.contains("collapsed"))
            {
                let warning = format!(
                    "WARNING fine-tuning: validation accuracy collapsed from {:.1}% to {:.1}% — the learning rate is likely too high for this encoder",
                    100.0 * best_accuracy,
                    100.0 * validation_accuracy
                );
                log(&warning);
                warnings.push(warning);
            }
        }
        records.push(record);
        let best_epoch = best.as_ref().map_or(epoch, |(e, _, _)| *e);
        if epoch - best_epoch >= settings.patience {
            log(&format!(
                "early stop: no better validation accuracy since epoch {best_epoch}"
            ));
            break;
        }
    }
    let (best_epoch, best_validation_accuracy, weights) = best.expect("at least one epoch ran");
    tch::no_grad(|| {
        let variables = model.store.variables();
        for (name, saved) in &weights {
            variables[name].shallow_clone().copy_(saved);
        }
    });
    let test_labels = split.test_labels.to_device(device);
    let test_accuracy = accuracy(&model, &head, &data.test, &test_labels, device);
    let report = FinetuneReport {
        dataset: data.name.clone(),
        start,
        train_examples: train_set.len(),
        validation_examples: validation_set.len(),
        test_size: data.test.len(),
        best_epoch,
        best_validation_accuracy,
        test_accuracy,
        epochs: records,
        warnings,
        self_training: Vec::new(),
        before_self_training: None,
    };
    Ok((report, model, head))
}

/// The best epoch so far: its number, validation accuracy and a copy of every variable.
type BestEpoch = (usize, f64, Vec<(String, Tensor)>);

/// Tag of the fine-tuning batch-order stream.
const FINETUNE_STREAM: u64 = 0x4654_554e; // "FTUN"

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_the_block_index_for_every_backbone() {
        assert_eq!(
            encoder_depth("encoder.embeddings.word_embeddings.weight"),
            Some(0)
        );
        assert_eq!(
            encoder_depth("encoder.encoder.layer.3.output.dense.weight"),
            Some(4)
        );
        assert_eq!(encoder_depth("encoder.layer2.0.conv1.weight"), Some(2));
        assert_eq!(encoder_depth("encoder.stem_conv.weight"), Some(0));
        // ViT: patch embedding, [CLS] and positions at the bottom (MAE's layer decay).
        assert_eq!(encoder_depth("encoder.patch_embed.weight"), Some(0));
        assert_eq!(encoder_depth("encoder.cls_token"), Some(0));
        assert_eq!(encoder_depth("encoder.position_embed"), Some(0));
        assert_eq!(
            encoder_depth("encoder.encoder.layer.11.output.dense.weight"),
            Some(12)
        );
        assert_eq!(encoder_depth("encoder.conv1.weight"), Some(2));
        assert_eq!(encoder_depth("encoder.bn0.bias"), Some(1));
        assert_eq!(encoder_depth("projector.fc0.weight"), None);
        assert_eq!(encoder_depth("finetune_head.weight"), None);
    }
}

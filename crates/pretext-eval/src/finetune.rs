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
//!
//! Every step goes through the training step pretraining uses (`pretext_train::train_step`),
//! without gradient clipping: a step whose loss or gradient is not finite is skipped and
//! counted, and fine-tuning stops after more of them than the run config's
//! `train.max_nonfinite_steps`.

mod fit;
mod layer_decay;
mod report;
mod settings;
mod watch;

pub use layer_decay::encoder_depth;
pub use report::{EpochRecord, FinetuneReport, SelfTrainingRound};
pub use settings::FinetuneConfig;

use pretext_data::{stratified_split, Samples, Splits};
use pretext_train::{Checkpoint, Model, PretrainConfig, TrainError};
use tch::nn;
use tch::{Device, Kind};

use crate::probe::{ProbeConfig, ProbeSplit};
use fit::{class_logits, fit_once};

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

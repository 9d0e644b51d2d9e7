//! Fine-tuning an encoder end to end with few labels, with the guards the seed asks for
//! against "over-aggressive fine-tuning" (Howard & Ruder 2018; Kumar et al. 2022; the MAE and
//! BEiT recipes):
//!
//! - **linear probe, then fine-tune** (LP-FT, the default): the head starts from the linear
//!   probe fitted on the frozen encoder's features (its L2 strength cross-validated), so
//!   fine-tuning starts where the probe ends; the report gives both, and a warning says when
//!   fine-tuning ends below the probe it started from;
//! - **the probe as the fallback** (`probe_fallback`, the default): fine-tuning keeps the
//!   probe unless held-out labeled examples say it did better — the probe is epoch 0 of
//!   early stopping (and, kept, is refitted on every labeled example), or, with too few
//!   labels for a validation split, k-fold cross-validation chooses the epochs from 0 (the
//!   probe) up;
//! - AdamW at a small learning rate with linear warmup and cosine decay, on the images as
//!   they are (`augment`: one view of each per epoch, the pretraining's augmentations —
//!   what hurts an encoder pretrained on them, and what training from scratch may want);
//! - **layer-wise learning-rate decay**: a parameter at depth d of D gets lr · decay^(D + 1 − d),
//!   so the layers nearest the input (the most general features) move least;
//! - optional **freeze-then-unfreeze**: the first `freeze_epochs` train the head alone;
//! - **early stopping** on a validation split carved from the labeled examples — only when
//!   that split holds at least `min_validation_per_class` examples per class; with fewer
//!   labels every example trains for all epochs;
//! - or, with `cross_validate` (the study's training from scratch), the learning rate,
//!   weight decay, number of epochs and, for images, whether to train on the run's views
//!   chosen by stratified k-fold cross-validation on the labeled examples (`search`), then
//!   one training on all of them;
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
mod search;
mod settings;
mod watch;

pub use layer_decay::encoder_depth;
pub use report::{EpochRecord, FinetuneReport, SearchPoint, SearchReport, SelfTrainingRound};
pub use settings::{FinetuneConfig, FinetuneSearch};

use pretext_data::{stratified_split, Samples, Splits};
use pretext_train::{Checkpoint, Model, PretrainConfig, TrainError};
use tch::nn;
use tch::{Device, Kind};

use crate::probe::{ProbeConfig, ProbeSplit};
use fit::{class_logits, load_start, FitPlan, Fitted, Fitter};

/// Fine-tunes the encoder of `checkpoint` (or a random one with `from_scratch`) on the
/// labeled subset of `data.train` and measures it on `data.test`. `log` receives one line per
/// epoch and every warning raised while training; the report's `warnings` hold those and
/// the final one (fine-tuning ended below its probe), for the caller to show with the results.
///
/// Under a multi-process launch (`pretext_train::parallel`) it trains data parallel: every
/// process starts from rank 0's model and head, takes its contiguous part of every batch and
/// of every accuracy measurement, and the gradients are averaged in the shared step.
pub fn finetune(
    config: &PretrainConfig,
    checkpoint: Option<&Checkpoint>,
    data: &Splits,
    settings: &FinetuneConfig,
    device: Device,
    log: &mut dyn FnMut(&str),
) -> Result<FinetuneReport, TrainError> {
    settings.validate().map_err(|message| TrainError::Invalid {
        field: "finetune".into(),
        message,
    })?;
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
    let fitter = Fitter {
        config,
        checkpoint,
        data,
        settings,
        device,
        split: &split,
    };
    let start = {
        let mut model = Model::new(config, &data.train, device);
        load_start(config, checkpoint, settings, &mut model)?
    };
    // Which labeled examples train (indices into data.train), which validate, and how.
    let mut search_report = None;
    let (train_indices, validation, lr, weight_decay, augment, epochs, early_stopping) = if settings
        .cross_validate
    {
        let report = search::search(&fitter, &labeled, log)?;
        log(&format!("search chose {}", report.summary()));
        let chosen = report.chosen.clone();
        search_report = Some(report);
        let every = split.labeled.clone();
        (
            every,
            None,
            chosen.lr,
            chosen.weight_decay,
            chosen.augment.unwrap_or(false),
            chosen.epochs,
            false,
        )
    } else {
        let classes = distinct(&labels);
        let validation_count =
            (labels.len() as f64 * settings.validation_fraction).round() as usize;
        if settings.validation_fraction > 0.0
            && validation_count >= settings.min_validation_per_class * classes
        {
            let (train_rows, validation_rows) =
                stratified_split(&labels, settings.validation_fraction, settings.seed);
            let train: Vec<usize> = train_rows.iter().map(|&r| split.labeled[r]).collect();
            (
                train,
                Some(labeled.subset(&validation_rows)),
                settings.lr,
                settings.weight_decay,
                settings.augment,
                settings.epochs,
                true,
            )
        } else if settings.probe_fallback && settings.probe_init && !settings.from_scratch {
            log(&format!(
                    "{} labeled examples are too few for a validation split of {} per class: {}-fold cross-validation on them chooses how many of the {} epochs to fine-tune (0 keeps the linear probe), then every one trains",
                    labels.len(),
                    settings.min_validation_per_class,
                    settings.search.folds,
                    settings.epochs
                ));
            // The search's grid is the configured rate, decay and views alone: only the
            // epochs, the probe's 0 among them, are chosen.
            let at_settings = FinetuneConfig {
                search: FinetuneSearch {
                    lr: vec![settings.lr],
                    weight_decay: vec![settings.weight_decay],
                    augment: vec![settings.augment],
                    ..settings.search.clone()
                },
                ..settings.clone()
            };
            let report = search::search(
                &Fitter {
                    settings: &at_settings,
                    ..fitter
                },
                &labeled,
                log,
            )?;
            log(&format!("cross-validation chose {}", report.summary()));
            let epochs = report.chosen.epochs;
            search_report = Some(report);
            (
                split.labeled.clone(),
                None,
                settings.lr,
                settings.weight_decay,
                settings.augment,
                epochs,
                false,
            )
        } else {
            log(&format!(
                    "{} labeled examples are too few for a validation split of {} per class: every one trains for all {} epochs (no early stopping)",
                    labels.len(),
                    settings.min_validation_per_class,
                    settings.epochs
                ));
            let every = split.labeled.clone();
            (
                every,
                None,
                settings.lr,
                settings.weight_decay,
                settings.augment,
                settings.epochs,
                false,
            )
        }
    };
    let train_set = data.train.subset(&train_indices);
    let fit = |train: &Samples, log: &mut dyn FnMut(&str)| {
        fitter.fit(
            &FitPlan {
                train,
                validation: validation.as_ref(),
                lr,
                weight_decay,
                augment,
                epochs,
                early_stopping,
                measure_test: true,
            },
            log,
        )
    };
    let mut fitted = fit(&train_set, log)?;
    if validation.is_some() && fitted.probe_l2.is_some() && fitted.best_epoch == 0 {
        // The probe won on validation: it is refitted on every labeled example, the
        // validation ones included (as a study's probe rows are), and kept.
        log(&format!(
            "the linear probe is refitted on all {} labeled examples",
            labeled.len()
        ));
        let chosen = fitted;
        fitted = fitter.fit(
            &FitPlan {
                train: &labeled,
                validation: None,
                lr,
                weight_decay,
                augment,
                epochs: 0,
                early_stopping: false,
                measure_test: true,
            },
            log,
        )?;
        // What the epochs that lost to it did stays in the report.
        fitted.best_validation_accuracy = chosen.best_validation_accuracy;
        fitted.records = chosen.records;
        fitted.warnings = chosen.warnings;
    }
    let in_subset: std::collections::HashSet<usize> = split.labeled.iter().copied().collect();
    let pool: Vec<usize> = (0..data.train.len())
        .filter(|index| !in_subset.contains(index))
        .collect();
    let first = (fitted.test_accuracy, fitted.probe_accuracy, fitted.probe_l2);
    let mut rounds = Vec::new();
    for round in 1..=settings.self_training_rounds {
        let (chosen, pseudo) = pseudo_labels(
            &fitted.model,
            &fitted.head,
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
        if chosen.is_empty() {
            log(&format!(
                "self-training round {round}: none of the {} unlabeled examples reached confidence {}; the round adds nothing and the model stays as it was",
                pool.len(),
                settings.pseudo_label_threshold
            ));
            rounds.push(SelfTrainingRound {
                round,
                pseudo_labeled: 0,
                pseudo_label_accuracy: None,
                test_accuracy: fitted.test_accuracy.unwrap_or(0.0),
            });
            break;
        }
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
        let mut indices = train_indices.clone();
        indices.extend(&chosen);
        let augmented = data.train.subset(&indices).with_labels(labels);
        fitted = fit(&augmented, log)?;
        let test_accuracy = fitted.test_accuracy.unwrap_or(0.0);
        log(&format!(
            "self-training round {round}: test accuracy {:.1}%",
            100.0 * test_accuracy
        ));
        rounds.push(SelfTrainingRound {
            round,
            pseudo_labeled: chosen.len(),
            pseudo_label_accuracy,
            test_accuracy,
        });
    }
    let mut report = report_of(
        fitted,
        &FitSummary {
            dataset: &data.name,
            start,
            train_examples: train_set.len(),
            validation_examples: validation.as_ref().map_or(0, Samples::len),
            test_size: data.test.len(),
            lr,
            weight_decay,
        },
    );
    (report.probe_accuracy, report.probe_l2) = (first.1, first.2);
    if !rounds.is_empty() {
        report.before_self_training = first.0;
    }
    report.self_training = rounds;
    report.search = search_report;
    if let Some(probe) = report.probe_accuracy.filter(|_| !report.kept_probe()) {
        if report.self_training.is_empty() && report.test_accuracy < probe {
            let warning = format!(
                "WARNING fine-tuning: it ended at {:.1}% on the held-out examples, below the linear probe it started from ({:.1}%); the probe's features are the better result here — lower --lr or --layer-decay, or train fewer --epochs",
                100.0 * report.test_accuracy,
                100.0 * probe
            );
            // Not logged: it comes with the results, which the caller shows beside it.
            report.warnings.push(warning);
        }
    }
    Ok(report)
}

/// What the report says beside the training's own results.
struct FitSummary<'a> {
    dataset: &'a str,
    start: String,
    train_examples: usize,
    validation_examples: usize,
    test_size: usize,
    lr: f64,
    weight_decay: f64,
}

fn report_of(fitted: Fitted, summary: &FitSummary<'_>) -> FinetuneReport {
    FinetuneReport {
        dataset: summary.dataset.to_string(),
        start: summary.start.clone(),
        train_examples: summary.train_examples,
        validation_examples: summary.validation_examples,
        test_size: summary.test_size,
        best_epoch: fitted.best_epoch,
        best_validation_accuracy: fitted.best_validation_accuracy,
        test_accuracy: fitted.test_accuracy.unwrap_or(0.0),
        lr: summary.lr,
        weight_decay: summary.weight_decay,
        epochs_run: fitted.records.len(),
        probe_accuracy: fitted.probe_accuracy,
        probe_l2: fitted.probe_l2,
        search: None,
        epochs: fitted.records,
        warnings: fitted.warnings,
        self_training: Vec::new(),
        before_self_training: None,
    }
}

/// The number of distinct labels.
fn distinct(labels: &[u16]) -> usize {
    labels
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len()
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

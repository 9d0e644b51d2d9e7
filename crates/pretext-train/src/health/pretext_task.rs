//! The judges of the pretext task itself: solved too early or not at all (pretext accuracy,
//! wav2vec 2.0's masked-frame accuracy), MAE's gain over flat patches, and wav2vec 2.0's
//! codebook and feature-encoder gradient.

use pretext_methods::signal::{
    Problem, Signal, CODEBOOK_COLLAPSED, CODEBOOK_PERPLEXITY, CONTRASTIVE_ACCURACY,
    FEATURE_GRADIENT_DOMINATES, FEATURE_GRADIENT_VANISHES, FEATURE_GRAD_RATIO, MASKED_AT_CHANCE,
    MASKED_FRAME_ACCURACY, MASKED_TOO_EASY, PRETEXT_ACCURACY, PRETEXT_AT_CHANCE, PRETEXT_TOO_EASY,
    RECONSTRUCTION_FLAT, RECONSTRUCTION_GAIN,
};

use super::judge::shown;
use super::judge::Judge;
use super::series::{last, mean, number, series, step_of, Record};
use super::verdict::{near_chance, Codebook, Finding, HealthContext};

/// How the signals of this file are judged, in the table's order.
pub(super) static JUDGES: &[Judge] = &[
    Judge::whole_log(&RECONSTRUCTION_GAIN, reconstruction_gain),
    Judge::each_record(&PRETEXT_ACCURACY, pretext_accuracy_live, pretext_accuracy),
    Judge::each_record(
        &CODEBOOK_PERPLEXITY,
        codebook_perplexity_live,
        codebook_perplexity,
    ),
    Judge::each_record(
        &MASKED_FRAME_ACCURACY,
        masked_frame_accuracy_live,
        masked_frame_accuracy,
    ),
    Judge::whole_log(&FEATURE_GRAD_RATIO, feature_grad_ratio),
    Judge::whole_log(&CONTRASTIVE_ACCURACY, contrastive_accuracy),
];

fn pretext_accuracy_live(record: &Record, context: &HealthContext) -> Option<Finding> {
    context.pretext_classes?;
    let accuracy = number(record, &PRETEXT_ACCURACY)?;
    too_easy(
        &PRETEXT_ACCURACY,
        &PRETEXT_TOO_EASY,
        (step_of(record), accuracy),
        context,
    )
}

fn pretext_accuracy(records: &[Record], context: &HealthContext) -> Option<Finding> {
    let chance = 1.0 / context.pretext_classes? as f64;
    accuracy_verdict(
        (&PRETEXT_ACCURACY, &PRETEXT_TOO_EASY, &PRETEXT_AT_CHANCE),
        chance,
        records,
        context,
        |last| {
            format!(
                "{:.1}% at the end (chance {:.1}%)",
                100.0 * last,
                100.0 * chance
            )
        },
    )
}

/// MAE: the mean gain of the last few records (one batch's gain is noisy).
fn reconstruction_gain(records: &[Record], _: &HealthContext) -> Option<Finding> {
    let gain = series(records, &RECONSTRUCTION_GAIN);
    if gain.is_empty() {
        return None;
    }
    let recent = &gain[gain.len().saturating_sub(5)..];
    let gain = mean(recent.iter().map(|&(_, value)| value));
    Some(if gain < RECONSTRUCTION_FLAT.limit {
        Finding::problem(
            &RECONSTRUCTION_GAIN,
            &RECONSTRUCTION_FLAT,
            format!("{:.1}%", 100.0 * gain),
        )
    } else {
        Finding::ok(
            RECONSTRUCTION_GAIN.label,
            format!(
                "{:.1}% lower loss than guessing flat patches (the last records)",
                100.0 * gain
            ),
        )
    })
}

fn codebook_perplexity_live(record: &Record, context: &HealthContext) -> Option<Finding> {
    codebook_problem(number(record, &CODEBOOK_PERPLEXITY)?, context.codebook?)
}

fn codebook_perplexity(records: &[Record], context: &HealthContext) -> Option<Finding> {
    let codebook = context.codebook?;
    let perplexity = last(records, &CODEBOOK_PERPLEXITY)?;
    Some(codebook_problem(perplexity, codebook).unwrap_or_else(|| {
        Finding::ok(
            CODEBOOK_PERPLEXITY.label,
            format!(
                "{perplexity:.1} of {} entries in use at the end",
                codebook.entries
            ),
        )
    }))
}

fn masked_frame_accuracy_live(record: &Record, context: &HealthContext) -> Option<Finding> {
    context.codebook?;
    let accuracy = number(record, &MASKED_FRAME_ACCURACY)?;
    too_easy(
        &MASKED_FRAME_ACCURACY,
        &MASKED_TOO_EASY,
        (step_of(record), accuracy),
        context,
    )
}

fn masked_frame_accuracy(records: &[Record], context: &HealthContext) -> Option<Finding> {
    let negatives = context.codebook?.negatives;
    let chance = 1.0 / (negatives + 1) as f64;
    accuracy_verdict(
        (&MASKED_FRAME_ACCURACY, &MASKED_TOO_EASY, &MASKED_AT_CHANCE),
        chance,
        records,
        context,
        |last| {
            format!(
                "{:.1}% of masked frames pick their target among {negatives} distractors at the end (chance {:.1}%)",
                100.0 * last,
                100.0 * chance
            )
        },
    )
}

fn feature_grad_ratio(records: &[Record], context: &HealthContext) -> Option<Finding> {
    context.codebook?;
    let ratio = last(records, &FEATURE_GRAD_RATIO)?;
    Some(if ratio > FEATURE_GRADIENT_DOMINATES.limit {
        Finding::problem(
            &FEATURE_GRAD_RATIO,
            &FEATURE_GRADIENT_DOMINATES,
            format!("{ratio:.2}× the rest's RMS gradient at the end"),
        )
    } else if ratio < FEATURE_GRADIENT_VANISHES.limit {
        Finding::problem(
            &FEATURE_GRAD_RATIO,
            &FEATURE_GRADIENT_VANISHES,
            format!("{ratio:.2e}× the rest's RMS gradient at the end"),
        )
    } else {
        Finding::ok(
            FEATURE_GRAD_RATIO.label,
            format!("{ratio:.3}× the rest's RMS gradient at the end (scaled by method.wav2vec2.feature_grad_scale)"),
        )
    })
}

/// Shown, except in a run with a codebook, whose [`MASKED_FRAME_ACCURACY`] judges the key.
fn contrastive_accuracy(records: &[Record], context: &HealthContext) -> Option<Finding> {
    match context.codebook {
        Some(_) => None,
        None => shown(&CONTRASTIVE_ACCURACY, records),
    }
}

/// Codebook perplexity under a share of the entries: the quantizer collapsed.
fn codebook_problem(perplexity: f64, codebook: Codebook) -> Option<Finding> {
    (perplexity < CODEBOOK_COLLAPSED.limit * codebook.entries as f64).then(|| {
        Finding::problem(
            &CODEBOOK_PERPLEXITY,
            &CODEBOOK_COLLAPSED,
            format!("{perplexity:.1} of {} entries", codebook.entries),
        )
    })
}

/// An accuracy against its chance level: the task solved at once (the first early record
/// past the limit), still near chance at the end, or how it ended (`ended`, from the last).
fn accuracy_verdict(
    (signal, solved_at_once, at_chance): (&Signal, &Problem, &Problem),
    chance: f64,
    records: &[Record],
    context: &HealthContext,
    ended: impl FnOnce(f64) -> String,
) -> Option<Finding> {
    let accuracy = series(records, signal);
    let &(_, last) = accuracy.last()?;
    let early = accuracy
        .iter()
        .find_map(|&point| too_easy(signal, solved_at_once, point, context));
    Some(if let Some(finding) = early {
        finding
    } else if last < at_chance.limit * chance {
        Finding::problem(signal, at_chance, near_chance(last, chance))
    } else {
        Finding::ok(signal.label, ended(last))
    })
}

/// A task solved at once: an accuracy of at least the problem's limit within the first 10%
/// of the run.
fn too_easy(
    signal: &Signal,
    problem: &Problem,
    (step, accuracy): (u64, f64),
    context: &HealthContext,
) -> Option<Finding> {
    (step * 10 <= context.total_steps && accuracy >= problem.limit).then(|| {
        Finding::problem(
            signal,
            problem,
            format!(
                "TOO EASY: {:.1}% already at step {step} of {}",
                100.0 * accuracy,
                context.total_steps
            ),
        )
    })
}

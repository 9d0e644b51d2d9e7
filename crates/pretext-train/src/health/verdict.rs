//! Verdicts: each health signal of a run judged OK or WARNING, with the likely cause and what
//! to try, in plain words. [`review`] judges a whole metrics log (`pretext health`);
//! [`live_findings`] judges one record as it is written (the warnings `pretrain` prints).
//!
//! Thresholds, and why:
//! - embedding std < 10% of the healthy 1/√D, or effective rank < 2: collapse (every image
//!   maps to about the same point, or onto a line); the same for the head's outputs
//!   (projection spread < 0.1, where 1 is the spread of random directions).
//! - DINO: teacher distribution averaged over the batch with entropy < 10% of ln K = one
//!   dimension dominates (collapse by sharpening: centering missing or too weak); per-image
//!   entropy > 95% of ln K after the temperature warmup = uniform output (collapse by
//!   centering: teacher too hot, or a head whose output barely depends on the image).
//! - pretext accuracy ≥ 98% within the first 10% of the run: the task is too easy (the
//!   network likely found a shortcut, and will learn little more from it).
//! - view agreement ≥ 99% at the first and at the last measurement: the two views are nearly
//!   the same image (augmentations too weak); under 3× chance at the end: too strong.
//! - k-NN accuracy under 1.5× chance at the end: not learning; 10 points under its best:
//!   the representations are degrading.
//! - MAE: a loss under 5% below that of guessing flat hidden patches (the mean of the last
//!   records): the decoder is not using the visible patches.
//! - gradient norm spikes over 50× the median; any skipped non-finite step.
//! - wav2vec 2.0: codebook perplexity under 10% of the G·V entries = the quantizer collapsed
//!   (few codes, so the targets say little and distractors often equal the target);
//!   masked-frame contrastive accuracy ≥ 98% within the first 10% of the run = too easy
//!   (usually that collapse), under 2× chance (1/(K+1)) at the end = not learning; the
//!   feature encoder's RMS gradient over the rest's above 10 = it dominates (the paper scales
//!   it down for stability), under 0.001 = it hardly learns.

use serde_json::{Map, Value};

/// How a signal looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warning,
}

/// One signal's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    /// The signal, as shown to users ("embedding std", "teacher entropy", ...).
    pub signal: &'static str,
    pub level: Level,
    /// True when the warning says the representations collapsed.
    pub collapse: bool,
    /// The value(s) and, for a warning, the likely cause and what to try.
    pub message: String,
}

/// The verdict over a run's findings: "COLLAPSED" when any says the representations
/// collapsed, "WARNINGS" when any warns, "HEALTHY" otherwise.
pub fn overall(findings: &[Finding]) -> &'static str {
    if findings.iter().any(|finding| finding.collapse) {
        "COLLAPSED"
    } else if findings
        .iter()
        .any(|finding| finding.level == Level::Warning)
    {
        "WARNINGS"
    } else {
        "HEALTHY"
    }
}

impl Finding {
    fn ok(signal: &'static str, message: String) -> Finding {
        Finding {
            signal,
            level: Level::Ok,
            collapse: false,
            message,
        }
    }

    fn warning(signal: &'static str, message: String) -> Finding {
        Finding {
            signal,
            level: Level::Warning,
            collapse: false,
            message,
        }
    }

    fn collapse(signal: &'static str, message: String) -> Finding {
        Finding {
            signal,
            level: Level::Warning,
            collapse: true,
            message,
        }
    }
}

/// What the judge needs to know about the run.
#[derive(Clone, Debug, PartialEq)]
pub struct HealthContext {
    /// Width of the encoder's representation (D).
    pub representation_dim: i64,
    /// Images per step (chance level of view agreement is 1 / batch).
    pub batch_size: usize,
    pub total_steps: u64,
    /// Classes of the pretext task (rotation: 4, jigsaw: permutations), if it has one.
    pub pretext_classes: Option<usize>,
    /// K, the DINO head's output width, when the method is DINO.
    pub dino_output_dim: Option<i64>,
    /// Steps of DINO's teacher-temperature warmup, before which a flat teacher is expected.
    pub dino_warmup_steps: u64,
    /// The loss is expected to fall (not DINO, whose sharpening target moves).
    pub loss_should_fall: bool,
    /// Representation collapse is a failure mode of the method (joint-embedding methods);
    /// language models must predict tokens and cannot collapse, while their pooled states are
    /// naturally anisotropic, so the collapse thresholds would only raise false alarms.
    pub collapse_possible: bool,
    /// wav2vec 2.0: the quantizer's G·V codebook entries and K, its distractors per masked
    /// frame.
    pub codebook: Option<Codebook>,
}

/// The sizes wav2vec 2.0's health verdicts judge against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Codebook {
    /// G · V: the most entries the quantizer can use (its perplexity's maximum).
    pub entries: i64,
    /// K: distractors per masked frame (chance accuracy is 1/(K+1)).
    pub negatives: usize,
}

/// The verdicts one metrics record supports on its own: collapse and a too-easy pretext
/// task. Only warnings are returned.
pub fn live_findings(record: &Map<String, Value>, context: &HealthContext) -> Vec<Finding> {
    let step = number(record, "step").unwrap_or(0.0) as u64;
    let mut findings = Vec::new();
    if context.collapse_possible {
        if let Some(std) = number(record, "embedding_std") {
            findings.extend(embedding_std_finding(std, context));
        }
        if let Some(rank) = number(record, "effective_rank") {
            findings.extend(effective_rank_finding(rank));
        }
        if let Some(spread) = number(record, "projection_spread") {
            findings.extend(projection_spread_finding(spread));
        }
    }
    if let (Some(per_image), Some(marginal), Some(k)) = (
        number(record, "teacher_entropy"),
        number(record, "teacher_marginal_entropy"),
        context.dino_output_dim,
    ) {
        if step >= context.dino_warmup_steps {
            findings.extend(teacher_entropy_finding(per_image, marginal, k));
        }
    }
    if let Some(codebook) = context.codebook {
        if let Some(perplexity) = number(record, "codebook_perplexity") {
            findings.extend(codebook_finding(perplexity, codebook));
        }
        if let Some(accuracy) = number(record, "contrastive_accuracy") {
            if step * 10 <= context.total_steps && accuracy >= 0.98 {
                findings.push(masked_too_easy(accuracy, step, context.total_steps));
            }
        }
    }
    if let (Some(accuracy), Some(_)) = (number(record, "pretext_accuracy"), context.pretext_classes)
    {
        if step * 10 <= context.total_steps && accuracy >= 0.98 {
            findings.push(too_easy(accuracy, step, context.total_steps));
        }
    }
    findings
        .into_iter()
        .filter(|finding| finding.level == Level::Warning)
        .collect()
}

/// One verdict per signal present in `records` (metrics.jsonl, in order).
pub fn review(records: &[Map<String, Value>], context: &HealthContext) -> Vec<Finding> {
    let mut findings = Vec::new();

    let loss = series(records, "loss");
    findings.push(match (loss.first(), loss.last()) {
        (None, _) | (_, None) => {
            Finding::warning("loss", "no finite loss was logged: every step failed".into())
        }
        (Some(_), Some(_)) => {
            let tenth = (loss.len() / 10).max(1);
            let start = mean(loss[..tenth].iter().map(|p| p.1));
            let end = mean(loss[loss.len() - tenth..].iter().map(|p| p.1));
            if !context.loss_should_fall || end < start || loss.len() < 2 {
                Finding::ok("loss", format!("{start:.4} → {end:.4}"))
            } else {
                Finding::warning(
                    "loss",
                    format!("did not fall ({start:.4} → {end:.4}): the model is not learning; try a lower learning rate, a longer warmup, or check that the data are not constant"),
                )
            }
        }
    });

    if let Some(skipped) = series(records, "nonfinite_steps").last().map(|p| p.1) {
        findings.push(if skipped == 0.0 {
            Finding::ok("non-finite steps", "none skipped".into())
        } else {
            Finding::warning(
                "non-finite steps",
                format!("{skipped} steps skipped for a NaN/Inf loss or gradient: lower the learning rate, keep gradient clipping on, and check the inputs for NaN"),
            )
        });
    }

    let gradients = series(records, "grad_norm");
    if !gradients.is_empty() {
        let mut sorted: Vec<f64> = gradients.iter().map(|p| p.1).collect();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let (max_step, max) =
            gradients
                .iter()
                .copied()
                .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
        let last = gradients[gradients.len() - 1].1;
        findings.push(if max > 50.0 * median {
            Finding::warning(
                "gradient norm",
                format!("spikes up to {max:.3} at step {max_step} (median {median:.3}): the learning rate may be too high; keep optimizer.grad_clip on"),
            )
        } else if last < 1e-7 {
            Finding::warning(
                "gradient norm",
                format!("vanished ({last:.2e} at the end): nothing is being learned any more, often after a collapse"),
            )
        } else {
            Finding::ok("gradient norm", format!("median {median:.3}, max {max:.3}"))
        });
    }

    let collapse_check = |finding: Option<Finding>| finding.filter(|_| context.collapse_possible);
    if let Some(&(_, std)) = series(records, "embedding_std").last() {
        findings.push(
            collapse_check(embedding_std_finding(std, context)).unwrap_or_else(|| {
                let healthy = 1.0 / (context.representation_dim as f64).sqrt();
                Finding::ok(
                    "embedding std",
                    format!("{std:.4} at the end (healthy ≈ {healthy:.4})"),
                )
            }),
        );
    }
    if let Some(&(_, rank)) = series(records, "effective_rank").last() {
        findings.push(
            collapse_check(effective_rank_finding(rank)).unwrap_or_else(|| {
                Finding::ok(
                    "effective rank",
                    format!(
                        "{rank:.1} of {} dimensions used",
                        context.representation_dim
                    ),
                )
            }),
        );
    }
    if let Some(&(_, spread)) = series(records, "projection_spread").last() {
        findings.push(
            collapse_check(projection_spread_finding(spread)).unwrap_or_else(|| {
                Finding::ok(
                    "projection spread",
                    format!(
                        "{spread:.3} at the end (1 ≈ spread like random directions, 0 = collapsed)"
                    ),
                )
            }),
        );
    }
    let alignment = series(records, "alignment");
    let uniformity = series(records, "uniformity");
    if let (Some(a), Some(u)) = (alignment.last(), uniformity.last()) {
        findings.push(Finding::ok(
            "alignment/uniformity",
            format!(
                "{:.3} / {:.3} at the end (lower is better for both)",
                a.1, u.1
            ),
        ));
    }

    let agreement = series(records, "view_agreement");
    if let (Some(&(first_step, first)), Some(&(_, last))) = (agreement.first(), agreement.last()) {
        let chance = 1.0 / context.batch_size.max(1) as f64;
        findings.push(if first >= 0.99 && last >= 0.99 {
            Finding::warning(
                "view agreement",
                format!("{:.0}% already at step {first_step}: the two views are nearly the same image, so the task teaches little; strengthen the augmentations (views.crop_scale, views.jitter, views.blur_probability)", 100.0 * first),
            )
        } else if last < 3.0 * chance {
            Finding::warning(
                "view agreement",
                format!("{:.1}% at the end, near chance ({:.1}%): the views may share too little (augmentations too strong: raise views.crop_scale's minimum), or the model is not learning", 100.0 * last, 100.0 * chance),
            )
        } else {
            Finding::ok(
                "view agreement",
                format!("{:.0}% → {:.0}% of images matched to their other view (chance {:.1}%)", 100.0 * first, 100.0 * last, 100.0 * chance),
            )
        });
    }

    let knn = series(records, "knn_accuracy");
    if let Some(&(_, last)) = knn.last() {
        let chance = series(records, "knn_chance")
            .last()
            .map(|p| p.1)
            .unwrap_or(0.0);
        let (best_step, best) =
            knn.iter()
                .copied()
                .fold((0, f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
        findings.push(if chance > 0.0 && last < 1.5 * chance {
            Finding::warning(
                "k-NN accuracy",
                format!("{:.1}% at the end, near chance ({:.1}%): the representations carry no class information", 100.0 * last, 100.0 * chance),
            )
        } else if best - last > 0.10 {
            Finding::warning(
                "k-NN accuracy",
                format!("fell from {:.1}% (step {best_step}) to {:.1}%: the representations are degrading; lower the learning rate or stop earlier", 100.0 * best, 100.0 * last),
            )
        } else {
            Finding::ok(
                "k-NN accuracy",
                format!("{:.1}% at the end (best {:.1}%, chance {:.1}%)", 100.0 * last, 100.0 * best, 100.0 * chance),
            )
        });
    }

    if let Some(finding) = held_out_finding(&series(records, "held_out_loss")) {
        findings.push(finding);
    }

    let gain = series(records, "reconstruction_gain");
    if !gain.is_empty() {
        // The last few records: one batch's gain is noisy.
        let recent = &gain[gain.len().saturating_sub(5)..];
        findings.push(reconstruction_finding(mean(
            recent.iter().map(|&(_, value)| value),
        )));
    }

    let pretext = series(records, "pretext_accuracy");
    if let (Some(classes), Some(&(_, last))) = (context.pretext_classes, pretext.last()) {
        let chance = 1.0 / classes as f64;
        let early = pretext
            .iter()
            .find(|&&(step, accuracy)| step * 10 <= context.total_steps && accuracy >= 0.98);
        findings.push(if let Some(&(step, accuracy)) = early {
            too_easy(accuracy, step, context.total_steps)
        } else if last < 1.5 * chance {
            Finding::warning(
                "pretext accuracy",
                format!("{:.1}% at the end, near chance ({:.1}%): the pretext task is not being solved; lower the learning rate or make the task easier", 100.0 * last, 100.0 * chance),
            )
        } else {
            Finding::ok(
                "pretext accuracy",
                format!("{:.1}% at the end (chance {:.1}%)", 100.0 * last, 100.0 * chance),
            )
        });
    }

    let per_image = series(records, "teacher_entropy");
    let marginal = series(records, "teacher_marginal_entropy");
    if let (Some(&(_, entropy)), Some(&(_, marginal)), Some(k)) =
        (per_image.last(), marginal.last(), context.dino_output_dim)
    {
        findings.push(
            teacher_entropy_finding(entropy, marginal, k).unwrap_or_else(|| {
                Finding::ok(
                    "teacher entropy",
                    format!(
                        "{entropy:.2} nats per image, {marginal:.2} over the batch (ln K = {:.2})",
                        (k as f64).ln()
                    ),
                )
            }),
        );
    }
    if let Some(codebook) = context.codebook {
        findings.extend(wav2vec_findings(records, context, codebook));
    }
    for (key, signal, meaning) in [
        ("center_norm", "center norm", "norm of DINO's center"),
        (
            "target_online_distance",
            "target-online distance",
            "relative distance of BYOL's target from the online network",
        ),
        (
            "key_encoder_distance",
            "key-encoder distance",
            "relative distance of MoCo's key encoder from the query encoder",
        ),
        (
            "teacher_student_distance",
            "teacher-student distance",
            "relative distance of DINO's teacher from the student",
        ),
        (
            "contrastive_accuracy",
            "contrastive accuracy",
            "queries whose positive key beats every negative",
        ),
    ] {
        if key == "contrastive_accuracy" && context.codebook.is_some() {
            continue; // judged by wav2vec_findings
        }
        if let Some(&(_, value)) = series(records, key).last() {
            findings.push(Finding::ok(
                signal,
                format!("{value:.4} at the end ({meaning})"),
            ));
        }
    }
    findings
}

/// Codebook perplexity under 10% of the entries: the quantizer collapsed.
fn codebook_finding(perplexity: f64, codebook: Codebook) -> Option<Finding> {
    (perplexity < 0.1 * codebook.entries as f64).then(|| {
        Finding::warning(
            "codebook perplexity",
            format!("{perplexity:.1} of {} entries: the quantizer collapsed onto a few codes, so the targets carry little and the contrastive task degenerates; raise method.wav2vec2.diversity_weight or lower the learning rate", codebook.entries),
        )
    })
}

fn masked_too_easy(accuracy: f64, step: u64, total: u64) -> Finding {
    Finding::warning(
        "masked-frame accuracy",
        format!("TOO EASY: {:.1}% already at step {step} of {total}: the true targets are picked at once, usually because the quantizer collapsed and the distractors are the same code as the target; check the codebook perplexity and raise method.wav2vec2.diversity_weight", 100.0 * accuracy),
    )
}

/// wav2vec 2.0's own verdicts over a whole log: codebook perplexity, masked-frame contrastive
/// accuracy and the feature encoder's gradient scale.
fn wav2vec_findings(
    records: &[Map<String, Value>],
    context: &HealthContext,
    codebook: Codebook,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(&(_, perplexity)) = series(records, "codebook_perplexity").last() {
        findings.push(codebook_finding(perplexity, codebook).unwrap_or_else(|| {
            Finding::ok(
                "codebook perplexity",
                format!(
                    "{perplexity:.1} of {} entries in use at the end",
                    codebook.entries
                ),
            )
        }));
    }
    let accuracy = series(records, "contrastive_accuracy");
    if let Some(&(_, last)) = accuracy.last() {
        let chance = 1.0 / (codebook.negatives + 1) as f64;
        let early = accuracy
            .iter()
            .find(|&&(step, value)| step * 10 <= context.total_steps && value >= 0.98);
        findings.push(if let Some(&(step, value)) = early {
            masked_too_easy(value, step, context.total_steps)
        } else if last < 2.0 * chance {
            Finding::warning(
                "masked-frame accuracy",
                format!("{:.1}% at the end, near chance ({:.1}%): the context network does not predict the masked frames; lower the learning rate or train longer", 100.0 * last, 100.0 * chance),
            )
        } else {
            Finding::ok(
                "masked-frame accuracy",
                format!("{:.1}% of masked frames pick their target among {} distractors at the end (chance {:.1}%)", 100.0 * last, codebook.negatives, 100.0 * chance),
            )
        });
    }
    if let Some(&(_, ratio)) = series(records, "feature_grad_ratio").last() {
        findings.push(if ratio > 10.0 {
            Finding::warning(
                "feature-encoder gradient",
                format!("{ratio:.2}× the rest's RMS gradient at the end: the convolutions dominate the updates, which destabilizes wav2vec 2.0; lower method.wav2vec2.feature_grad_scale (paper 0.1)"),
            )
        } else if ratio < 1e-3 {
            Finding::warning(
                "feature-encoder gradient",
                format!("{ratio:.2e}× the rest's RMS gradient at the end: the convolutions hardly learn; raise method.wav2vec2.feature_grad_scale"),
            )
        } else {
            Finding::ok(
                "feature-encoder gradient",
                format!("{ratio:.3}× the rest's RMS gradient at the end (scaled by method.wav2vec2.feature_grad_scale)"),
            )
        });
    }
    findings
}

/// A language model's held-out loss: overfitting when it ends clearly (5%) above its best.
fn held_out_finding(held_out: &[(u64, f64)]) -> Option<Finding> {
    let &(_, last) = held_out.last()?;
    let (best_step, best) =
        held_out
            .iter()
            .copied()
            .fold((0, f64::MAX), |a, b| if b.1 < a.1 { b } else { a });
    Some(if last > best * 1.05 {
        Finding::warning(
            "held-out loss",
            format!("rose from {best:.4} (step {best_step}) to {last:.4}: the model is memorizing the training text; use the checkpoint nearest step {best_step}, stop earlier, raise dropout or add data"),
        )
    } else {
        Finding::ok(
            "held-out loss",
            format!(
                "{:.4} → {last:.4} (best {best:.4} at step {best_step})",
                held_out[0].1
            ),
        )
    })
}

/// MAE: how much lower the loss is than guessing flat hidden patches; under 5% the decoder
/// is not using what it sees.
fn reconstruction_finding(gain: f64) -> Finding {
    if gain < 0.05 {
        Finding::warning(
            "reconstruction gain",
            format!("{:.1}%: the reconstructions are hardly better than flat patches, so the encoder learns little; on small patches (a few pixels, much flat background) per-patch normalized targets are mostly noise: try method.mae.normalize_targets=false; else lower the learning rate", 100.0 * gain),
        )
    } else {
        Finding::ok(
            "reconstruction gain",
            format!(
                "{:.1}% lower loss than guessing flat patches (the last records)",
                100.0 * gain
            ),
        )
    }
}

fn embedding_std_finding(std: f64, context: &HealthContext) -> Option<Finding> {
    let healthy = 1.0 / (context.representation_dim as f64).sqrt();
    (std < 0.1 * healthy).then(|| {
        Finding::collapse(
            "embedding std",
            format!("COLLAPSE: {std:.4} is under 10% of the healthy {healthy:.4}: every image maps to nearly the same point; lower the learning rate, raise the temperature, strengthen the augmentations (BYOL: keep the predictor; DINO: keep centering)"),
        )
    })
}

fn projection_spread_finding(spread: f64) -> Option<Finding> {
    (spread < 0.1).then(|| {
        Finding::collapse(
            "projection spread",
            format!("COLLAPSE: {spread:.3}: the head gives nearly the same output for every image, so the loss is satisfied without learning anything (BYOL: keep the predictor; lower the learning rate or the EMA momentum)"),
        )
    })
}

fn effective_rank_finding(rank: f64) -> Option<Finding> {
    (rank < 2.0).then(|| {
        Finding::collapse(
            "effective rank",
            format!("COLLAPSE: {rank:.2}: the representations lie on a line; check the loss and the augmentations"),
        )
    })
}

fn teacher_entropy_finding(per_image: f64, marginal: f64, k: i64) -> Option<Finding> {
    let max = (k as f64).ln();
    if marginal < 0.1 * max {
        Some(Finding::collapse(
            "teacher entropy",
            format!("COLLAPSE: the teacher sends every image to the same output dimension (batch entropy {marginal:.2} of ln K = {max:.2}); turn centering on (method.dino.centering) or lower method.dino.center_momentum"),
        ))
    } else if per_image > 0.95 * max {
        Some(Finding::collapse(
            "teacher entropy",
            format!("COLLAPSE: the teacher's output is uniform for every image ({per_image:.2} of ln K = {max:.2}); lower method.dino.teacher_temperature"),
        ))
    } else {
        None
    }
}

fn too_easy(accuracy: f64, step: u64, total: u64) -> Finding {
    Finding::warning(
        "pretext accuracy",
        format!("TOO EASY: {:.1}% already at step {step} of {total}: the network solves the pretext task almost at once, likely through a shortcut (borders, edges, a constant background), and will learn little from it; strengthen the augmentations or make the task harder", 100.0 * accuracy),
    )
}

fn number(record: &Map<String, Value>, key: &str) -> Option<f64> {
    record
        .get(key)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

/// `(step, value)` for every record with a finite `key`.
fn series(records: &[Map<String, Value>], key: &str) -> Vec<(u64, f64)> {
    records
        .iter()
        .filter_map(|record| {
            Some((
                record.get("step").and_then(Value::as_u64).unwrap_or(0),
                number(record, key)?,
            ))
        })
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    sum / count.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> HealthContext {
        HealthContext {
            representation_dim: 100,
            batch_size: 100,
            total_steps: 1000,
            pretext_classes: Some(4),
            dino_output_dim: Some(1000),
            dino_warmup_steps: 0,
            loss_should_fall: true,
            collapse_possible: true,
            codebook: None,
        }
    }

    fn record(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn collapsed_record_warns_live_and_healthy_one_does_not() {
        let collapsed = record(json!({"step": 500, "embedding_std": 0.001, "effective_rank": 1.2}));
        let findings = live_findings(&collapsed, &context());
        assert_eq!(findings.len(), 2);
        assert!(findings.iter().all(|f| f.collapse));
        let healthy = record(json!({"step": 500, "embedding_std": 0.09, "effective_rank": 30.0}));
        assert!(live_findings(&healthy, &context()).is_empty());
    }

    #[test]
    fn wav2vec_codebook_collapse_too_easy_masking_and_gradient_scale_are_judged() {
        let wav2vec = HealthContext {
            codebook: Some(Codebook {
                entries: 640,
                negatives: 100,
            }),
            ..context()
        };
        // Live: a collapsed codebook and an early perfect masked-frame accuracy.
        let collapsed =
            record(json!({"step": 50, "codebook_perplexity": 12.0, "contrastive_accuracy": 0.99}));
        let signals: Vec<_> = live_findings(&collapsed, &wav2vec)
            .iter()
            .map(|f| f.signal)
            .collect();
        assert_eq!(signals, ["codebook perplexity", "masked-frame accuracy"]);
        let healthy =
            record(json!({"step": 50, "codebook_perplexity": 300.0, "contrastive_accuracy": 0.2}));
        assert!(live_findings(&healthy, &wav2vec).is_empty());
        // Without a codebook (another method) the same numbers mean nothing here.
        assert!(live_findings(&collapsed, &context()).is_empty());

        let log = |perplexity: f64, accuracy: f64, ratio: f64| {
            vec![
                record(
                    json!({"step": 500, "loss": 5.0, "codebook_perplexity": perplexity, "contrastive_accuracy": 0.1}),
                ),
                record(
                    json!({"step": 1000, "loss": 4.0, "codebook_perplexity": perplexity, "contrastive_accuracy": accuracy, "feature_grad_ratio": ratio}),
                ),
            ]
        };
        let level = |records: &[Map<String, Value>], signal: &str| {
            review(records, &wav2vec)
                .into_iter()
                .find(|f| f.signal == signal)
                .map(|f| f.level)
        };
        let good = log(350.0, 0.3, 1.5);
        assert_eq!(level(&good, "codebook perplexity"), Some(Level::Ok));
        assert_eq!(level(&good, "masked-frame accuracy"), Some(Level::Ok));
        assert_eq!(level(&good, "feature-encoder gradient"), Some(Level::Ok));
        assert_eq!(level(&good, "contrastive accuracy"), None);
        let bad = log(20.0, 0.015, 40.0);
        assert_eq!(level(&bad, "codebook perplexity"), Some(Level::Warning));
        // Chance is 1/101 ≈ 1%: 1.5% is under twice that.
        assert_eq!(level(&bad, "masked-frame accuracy"), Some(Level::Warning));
        assert_eq!(
            level(&bad, "feature-encoder gradient"),
            Some(Level::Warning)
        );
        let frozen = log(350.0, 0.3, 1e-4);
        assert_eq!(
            level(&frozen, "feature-encoder gradient"),
            Some(Level::Warning)
        );
    }

    #[test]
    fn dino_dominant_dimension_and_uniform_output_are_both_collapse() {
        let k = 1000f64.ln();
        let dominant =
            record(json!({"step": 10, "teacher_entropy": 0.01, "teacher_marginal_entropy": 0.05}));
        assert!(live_findings(&dominant, &context())[0]
            .message
            .contains("same output"));
        let uniform =
            record(json!({"step": 10, "teacher_entropy": 0.99 * k, "teacher_marginal_entropy": k}));
        assert!(live_findings(&uniform, &context())[0]
            .message
            .contains("uniform"));
        // Regression: a flat teacher is expected while its temperature warms up.
        let warming = HealthContext {
            dino_warmup_steps: 100,
            ..context()
        };
        assert!(live_findings(&uniform, &warming).is_empty());
        let after_warmup = record(
            json!({"step": 100, "teacher_entropy": 0.99 * k, "teacher_marginal_entropy": k}),
        );
        assert_eq!(live_findings(&after_warmup, &warming).len(), 1);
        let healthy =
            record(json!({"step": 10, "teacher_entropy": 2.0, "teacher_marginal_entropy": 6.0}));
        assert!(live_findings(&healthy, &context()).is_empty());
    }

    #[test]
    fn pretext_task_solved_early_is_too_easy_but_late_is_fine() {
        let early = record(json!({"step": 100, "pretext_accuracy": 0.99}));
        assert!(live_findings(&early, &context())[0]
            .message
            .starts_with("TOO EASY"));
        let late = record(json!({"step": 900, "pretext_accuracy": 0.99}));
        assert!(live_findings(&late, &context()).is_empty());
    }

    #[test]
    fn review_judges_every_signal_present() {
        let records: Vec<_> = (1..=10)
            .map(|i| {
                record(json!({
                    "step": i * 100, "loss": 5.0 - 0.3 * i as f64, "grad_norm": 1.0,
                    "nonfinite_steps": 0, "embedding_std": 0.09, "effective_rank": 40.0,
                    "alignment": 0.5, "uniformity": -3.0, "view_agreement": 0.5,
                    "knn_accuracy": 0.5 + 0.02 * i as f64, "knn_chance": 0.1,
                }))
            })
            .collect();
        let findings = review(&records, &context());
        let signals: Vec<&str> = findings.iter().map(|f| f.signal).collect();
        assert_eq!(
            signals,
            [
                "loss",
                "non-finite steps",
                "gradient norm",
                "embedding std",
                "effective rank",
                "alignment/uniformity",
                "view agreement",
                "k-NN accuracy"
            ]
        );
        assert!(
            findings.iter().all(|f| f.level == Level::Ok),
            "{findings:#?}"
        );
    }

    #[test]
    fn held_out_loss_rising_above_its_best_is_overfitting() {
        let falling = [(250, 2.5), (500, 2.0), (750, 1.9)];
        assert_eq!(held_out_finding(&falling).unwrap().level, Level::Ok);
        // Within 5% of the best is noise, not overfitting.
        let flat = [(250, 2.0), (500, 1.8), (750, 1.88)];
        assert_eq!(held_out_finding(&flat).unwrap().level, Level::Ok);
        let rising = [(250, 2.0), (500, 1.8), (750, 1.9), (1000, 2.1)];
        let finding = held_out_finding(&rising).unwrap();
        assert_eq!(finding.level, Level::Warning);
        assert!(finding.message.contains("step 500"), "{}", finding.message);
        assert!(held_out_finding(&[]).is_none());
    }

    /// The plateau MAE with per-patch normalized targets hit on Fashion-MNIST's 4-px patches:
    /// a loss within 2% of the flat guess is a warning naming the setting to change.
    #[test]
    fn mae_no_better_than_flat_patches_is_flagged() {
        let records = |gains: &[f64]| -> Vec<Map<String, Value>> {
            gains
                .iter()
                .enumerate()
                .map(|(i, gain)| {
                    record(json!({"step": 10 * (i + 1), "loss": 0.7, "reconstruction_gain": gain}))
                })
                .collect()
        };
        let find = |findings: Vec<Finding>| {
            findings
                .into_iter()
                .find(|finding| finding.signal == "reconstruction gain")
                .unwrap()
        };
        let stuck = find(review(
            &records(&[0.3, 0.02, 0.01, 0.03, 0.02, 0.02]),
            &context(),
        ));
        assert_eq!(stuck.level, Level::Warning);
        assert!(
            stuck.message.contains("normalize_targets"),
            "{}",
            stuck.message
        );
        let learning = find(review(
            &records(&[0.01, 0.2, 0.5, 0.6, 0.6, 0.62]),
            &context(),
        ));
        assert_eq!(learning.level, Level::Ok, "{}", learning.message);
    }

    #[test]
    fn review_flags_a_flat_loss_weak_views_and_degrading_knn() {
        let records: Vec<_> = (1..=10)
            .map(|i| {
                record(json!({
                    "step": i * 100, "loss": 2.0, "view_agreement": 1.0,
                    "knn_accuracy": if i < 5 { 0.8 } else { 0.6 }, "knn_chance": 0.1,
                }))
            })
            .collect();
        let warnings: Vec<&str> = review(&records, &context())
            .into_iter()
            .filter(|f| f.level == Level::Warning)
            .map(|f| f.signal)
            .collect();
        assert_eq!(warnings, ["loss", "view agreement", "k-NN accuracy"]);
    }
}

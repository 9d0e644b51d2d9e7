//! The judges of whether a run learns: the loss, skipped steps, the gradient norm, k-NN
//! accuracy and a language model's held-out loss.

use pretext_methods::signal::{
    GRADIENT_SPIKES, GRADIENT_VANISHED, GRAD_NORM, HELD_OUT_LOSS, KNN_ACCURACY, KNN_AT_CHANCE,
    KNN_CHANCE, KNN_DEGRADING, LOSS, LOSS_NOT_FALLING, LOSS_NOT_FINITE, NONFINITE_STEPS,
    OVERFITTING, STEPS_SKIPPED,
};

use super::judge::Judge;
use super::series::{highest, last, mean, series, Record};
use super::verdict::{near_chance, Finding, HealthContext};

/// Always judged: a log without a finite loss is itself the problem.
/// How the signals of this file are judged, in the table's order.
pub(super) static JUDGES: &[Judge] = &[
    Judge::whole_log(&LOSS, loss),
    Judge::whole_log(&NONFINITE_STEPS, nonfinite_steps),
    Judge::whole_log(&GRAD_NORM, grad_norm),
    Judge::whole_log(&KNN_ACCURACY, knn_accuracy),
    Judge::whole_log(&HELD_OUT_LOSS, held_out_loss),
];

fn loss(records: &[Record], context: &HealthContext) -> Option<Finding> {
    let loss = series(records, &LOSS);
    if loss.is_empty() {
        return Some(Finding::problem(
            &LOSS,
            &LOSS_NOT_FINITE,
            "no finite loss was logged".into(),
        ));
    }
    let tenth = (loss.len() / 10).max(1);
    let start = mean(loss[..tenth].iter().map(|p| p.1));
    let end = mean(loss[loss.len() - tenth..].iter().map(|p| p.1));
    Some(
        if !context.loss_should_fall || end < start || loss.len() < 2 {
            Finding::ok(LOSS.label, format!("{start:.4} → {end:.4}"))
        } else {
            Finding::problem(
                &LOSS,
                &LOSS_NOT_FALLING,
                format!("did not fall ({start:.4} → {end:.4})"),
            )
        },
    )
}

fn nonfinite_steps(records: &[Record], _: &HealthContext) -> Option<Finding> {
    let skipped = last(records, &NONFINITE_STEPS)?;
    Some(if skipped == STEPS_SKIPPED.limit {
        Finding::ok(NONFINITE_STEPS.label, "none skipped".into())
    } else {
        Finding::flagged(
            &NONFINITE_STEPS,
            &STEPS_SKIPPED,
            format!(
                "{skipped} steps skipped for {}: {}",
                STEPS_SKIPPED.cause, STEPS_SKIPPED.advice
            ),
        )
    })
}

fn grad_norm(records: &[Record], _: &HealthContext) -> Option<Finding> {
    let gradients = series(records, &GRAD_NORM);
    let &(_, last) = gradients.last()?;
    let mut sorted: Vec<f64> = gradients.iter().map(|p| p.1).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let (max_step, max) = highest(&gradients);
    Some(if max > GRADIENT_SPIKES.limit * median {
        Finding::problem(
            &GRAD_NORM,
            &GRADIENT_SPIKES,
            format!("spikes up to {max:.3} at step {max_step} (median {median:.3})"),
        )
    } else if last < GRADIENT_VANISHED.limit {
        Finding::problem(
            &GRAD_NORM,
            &GRADIENT_VANISHED,
            format!("vanished ({last:.2e} at the end)"),
        )
    } else {
        Finding::ok(GRAD_NORM.label, format!("median {median:.3}, max {max:.3}"))
    })
}

fn knn_accuracy(records: &[Record], _: &HealthContext) -> Option<Finding> {
    let chance = last(records, &KNN_CHANCE).unwrap_or(0.0);
    let knn = series(records, &KNN_ACCURACY);
    let &(_, last) = knn.last()?;
    let (best_step, best) = highest(&knn);
    Some(if chance > 0.0 && last < KNN_AT_CHANCE.limit * chance {
        Finding::problem(&KNN_ACCURACY, &KNN_AT_CHANCE, near_chance(last, chance))
    } else if best - last > KNN_DEGRADING.limit {
        Finding::problem(
            &KNN_ACCURACY,
            &KNN_DEGRADING,
            format!(
                "fell from {:.1}% (step {best_step}) to {:.1}%",
                100.0 * best,
                100.0 * last
            ),
        )
    } else {
        Finding::ok(
            KNN_ACCURACY.label,
            format!(
                "{:.1}% at the end (best {:.1}%, chance {:.1}%)",
                100.0 * last,
                100.0 * best,
                100.0 * chance
            ),
        )
    })
}

fn held_out_loss(records: &[Record], _: &HealthContext) -> Option<Finding> {
    held_out_finding(&series(records, &HELD_OUT_LOSS))
}

/// A language model's held-out loss: overfitting when it ends clearly above its best.
pub(super) fn held_out_finding(held_out: &[(u64, f64)]) -> Option<Finding> {
    let &(_, last) = held_out.last()?;
    let (best_step, best) =
        held_out
            .iter()
            .copied()
            .fold((0, f64::MAX), |a, b| if b.1 < a.1 { b } else { a });
    Some(if last > best * OVERFITTING.limit {
        Finding::flagged(
            &HELD_OUT_LOSS,
            &OVERFITTING,
            format!(
                "rose from {best:.4} (step {best_step}) to {last:.4}: {}; use the checkpoint nearest step {best_step}, {}",
                OVERFITTING.cause, OVERFITTING.advice
            ),
        )
    } else {
        Finding::ok(
            HELD_OUT_LOSS.label,
            format!(
                "{:.4} → {last:.4} (best {best:.4} at step {best_step})",
                held_out[0].1
            ),
        )
    })
}

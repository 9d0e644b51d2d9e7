//! The two judges that walk the signal table ([`pretext_methods::signal::SIGNALS`]):
//! [`live_findings`] over one metrics record as it is written (the warnings `pretrain`
//! prints) and [`review`] over a whole log (`pretext health`), with the rules by which each
//! judged row is judged.

use pretext_methods::signal::{self, Judgment, Signal, SIGNALS};

use super::series::{last, Record};
use super::verdict::{Finding, HealthContext, Level};
use super::{collapse, learning, pretext_task};

type LiveRule = fn(&Record, &HealthContext) -> Option<Finding>;
type ReviewRule = fn(&[Record], &HealthContext) -> Option<Finding>;

/// How one [`Judgment::Judged`] signal is judged.
struct Judge {
    signal: &'static Signal,
    /// A warning from one record on its own, for signals that can tell as they are written.
    live: Option<LiveRule>,
    /// The verdict over a whole log; `None` when the signal is not in it or not for this run.
    review: ReviewRule,
}

impl Judge {
    /// Judged over the whole log only.
    const fn whole_log(signal: &'static Signal, review: ReviewRule) -> Judge {
        Judge {
            signal,
            live: None,
            review,
        }
    }

    /// Judged on each record as it is written too.
    const fn each_record(signal: &'static Signal, live: LiveRule, review: ReviewRule) -> Judge {
        Judge {
            signal,
            live: Some(live),
            review,
        }
    }
}

/// The judge of each judged signal (their order is the table's).
static JUDGES: &[Judge] = &[
    Judge::whole_log(&signal::LOSS, learning::loss),
    Judge::whole_log(&signal::NONFINITE_STEPS, learning::nonfinite_steps),
    Judge::whole_log(&signal::GRAD_NORM, learning::grad_norm),
    Judge::each_record(
        &signal::EMBEDDING_STD,
        collapse::embedding_std_live,
        collapse::embedding_std,
    ),
    Judge::each_record(
        &signal::EFFECTIVE_RANK,
        collapse::effective_rank_live,
        collapse::effective_rank,
    ),
    Judge::each_record(
        &signal::PROJECTION_SPREAD,
        collapse::projection_spread_live,
        collapse::projection_spread,
    ),
    Judge::whole_log(&signal::ALIGNMENT, collapse::alignment_uniformity),
    Judge::whole_log(&signal::VIEW_AGREEMENT, collapse::view_agreement),
    Judge::whole_log(&signal::KNN_ACCURACY, learning::knn_accuracy),
    Judge::whole_log(&signal::HELD_OUT_LOSS, learning::held_out_loss),
    Judge::whole_log(
        &signal::RECONSTRUCTION_GAIN,
        pretext_task::reconstruction_gain,
    ),
    Judge::each_record(
        &signal::PRETEXT_ACCURACY,
        pretext_task::pretext_accuracy_live,
        pretext_task::pretext_accuracy,
    ),
    Judge::each_record(
        &signal::TEACHER_ENTROPY,
        collapse::teacher_entropy_live,
        collapse::teacher_entropy,
    ),
    Judge::each_record(
        &signal::CODEBOOK_PERPLEXITY,
        pretext_task::codebook_perplexity_live,
        pretext_task::codebook_perplexity,
    ),
    Judge::each_record(
        &signal::MASKED_FRAME_ACCURACY,
        pretext_task::masked_frame_accuracy_live,
        pretext_task::masked_frame_accuracy,
    ),
    Judge::whole_log(
        &signal::FEATURE_GRAD_RATIO,
        pretext_task::feature_grad_ratio,
    ),
    Judge::whole_log(
        &signal::CONTRASTIVE_ACCURACY,
        pretext_task::contrastive_accuracy,
    ),
];

fn judge_of(signal: &Signal) -> Option<&'static Judge> {
    JUDGES
        .iter()
        .find(|judge| std::ptr::eq(judge.signal, signal))
}

/// The verdicts one metrics record supports on its own: collapse and a too-easy pretext
/// task. Only warnings are returned.
pub fn live_findings(record: &Record, context: &HealthContext) -> Vec<Finding> {
    SIGNALS
        .iter()
        .filter_map(|signal| judge_of(signal)?.live)
        .filter_map(|live| live(record, context))
        .filter(|finding| finding.level == Level::Warning)
        .collect()
}

/// One verdict per signal present in `records` (metrics.jsonl, in order), in the table's
/// order.
pub fn review(records: &[Record], context: &HealthContext) -> Vec<Finding> {
    SIGNALS
        .iter()
        .filter_map(|signal| match signal.judgment {
            Judgment::Logged | Judgment::With(_) => None,
            Judgment::Shown => shown(signal, records),
            Judgment::Judged(_) => (judge_of(signal)?.review)(records, context),
        })
        .collect()
}

/// A signal that only informs: its last value and what it means.
pub(super) fn shown(signal: &Signal, records: &[Record]) -> Option<Finding> {
    let value = last(records, signal)?;
    Some(Finding::ok(
        signal.label,
        format!("{value:.4} at the end ({})", signal.meaning),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_judged_signal_has_one_judge_and_every_judge_a_judged_signal() {
        for signal in SIGNALS {
            let judges = JUDGES
                .iter()
                .filter(|judge| std::ptr::eq(judge.signal, *signal))
                .count();
            let judged = matches!(signal.judgment, Judgment::Judged(_));
            assert_eq!(judges, usize::from(judged), "{}", signal.label);
        }
        assert!(JUDGES
            .iter()
            .all(|judge| SIGNALS.iter().any(|s| std::ptr::eq(*s, judge.signal))));
    }
}

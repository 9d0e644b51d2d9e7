//! The two judges that walk the signal table ([`pretext_methods::signal::SIGNALS`]):
//! [`live_findings`] over one metrics record as it is written (the warnings `pretrain`
//! prints) and [`review`] over a whole log (`pretext health`). A judged row's rules are in
//! the file that lists it in its `JUDGES`: `collapse.rs`, `learning.rs` or `pretext_task.rs`.

use pretext_methods::signal::{Judgment, Signal, SIGNALS};

use super::series::{last, Record};
use super::verdict::{Finding, HealthContext, Level};
use super::{collapse, learning, pretext_task};

pub(super) type LiveRule = fn(&Record, &HealthContext) -> Option<Finding>;
pub(super) type ReviewRule = fn(&[Record], &HealthContext) -> Option<Finding>;

/// How one [`Judgment::Judged`] signal is judged. Each file of rules lists its judges in a
/// `JUDGES` static.
pub(super) struct Judge {
    signal: &'static Signal,
    /// A warning from one record on its own, for signals that can tell as they are written.
    live: Option<LiveRule>,
    /// The verdict over a whole log; `None` when the signal is not in it or not for this run.
    review: ReviewRule,
}

impl Judge {
    /// Judged over the whole log only.
    pub(super) const fn whole_log(signal: &'static Signal, review: ReviewRule) -> Judge {
        Judge {
            signal,
            live: None,
            review,
        }
    }

    /// Judged on each record as it is written too.
    pub(super) const fn each_record(
        signal: &'static Signal,
        live: LiveRule,
        review: ReviewRule,
    ) -> Judge {
        Judge {
            signal,
            live: Some(live),
            review,
        }
    }
}

/// Every judge, from each file of rules.
fn judges() -> impl Iterator<Item = &'static Judge> {
    [collapse::JUDGES, learning::JUDGES, pretext_task::JUDGES]
        .into_iter()
        .flatten()
}

fn judge_of(signal: &Signal) -> Option<&'static Judge> {
    judges().find(|judge| std::ptr::eq(judge.signal, signal))
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
            let judges = judges()
                .filter(|judge| std::ptr::eq(judge.signal, *signal))
                .count();
            let judged = matches!(signal.judgment, Judgment::Judged(_));
            assert_eq!(judges, usize::from(judged), "{}", signal.label);
        }
        assert!(judges().all(|judge| SIGNALS.iter().any(|s| std::ptr::eq(*s, judge.signal))));
    }
}

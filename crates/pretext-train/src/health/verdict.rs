//! Verdicts: each health signal of a run judged OK or WARNING, with the likely cause and what
//! to try, in plain words. The signals, their rules, causes and advice are the rows of
//! [`pretext_methods::signal`]; [`super::judge`] walks them for the live warnings of
//! `pretrain` (one record at a time) and for `pretext health` (a whole log).

use pretext_methods::signal::{Problem, Signal};

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
    pub(super) fn ok(signal: &'static str, message: String) -> Finding {
        Finding {
            signal,
            level: Level::Ok,
            collapse: false,
            message,
        }
    }

    /// A warning for `problem`: what was measured, then the problem's cause and advice.
    pub(super) fn problem(signal: &Signal, problem: &Problem, measured: String) -> Finding {
        let message = if problem.advice.is_empty() {
            format!("{measured}: {}", problem.cause)
        } else {
            format!("{measured}: {}; {}", problem.cause, problem.advice)
        };
        Finding::flagged(signal, problem, message)
    }

    /// A warning for `problem` whose message words its cause and advice its own way.
    pub(super) fn flagged(signal: &Signal, problem: &Problem, message: String) -> Finding {
        Finding {
            signal: signal.label,
            level: Level::Warning,
            collapse: problem.collapse,
            message,
        }
    }
}

/// How a warning words a last value near its chance level.
pub(super) fn near_chance(last: f64, chance: f64) -> String {
    format!(
        "{:.1}% at the end, near chance ({:.1}%)",
        100.0 * last,
        100.0 * chance
    )
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

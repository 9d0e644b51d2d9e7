//! The signals a pretraining run logs to metrics.jsonl, one row each: its key, the name users
//! see, what it measures, and what `pretext health` does with it. A judged signal's row lists
//! each way it can go wrong: the rule and its limit, the likely cause and what to try.
//!
//! One table for everyone: the methods and the trainer write these keys, and pretext-train's
//! `health` judges them by these rows, both live (the warnings `pretrain` prints) and over a
//! whole log (`pretext health`, which lists them in the order of [`SIGNALS`]). Limits that
//! depend on the run (chance levels, DINO's output width K, the codebook's size) come from
//! its `HealthContext`; the rows say how they are used.
//!
//! Adding a signal: a row here, listed in [`SIGNALS`]; then write it where it is computed as
//! `(ROW.key.into(), value)`. A [`Judgment::Shown`] signal needs nothing more; a
//! [`Judgment::Judged`] one also needs its rules in one file of pretext-train's `health`
//! (`collapse.rs`, `learning.rs` or `pretext_task.rs`), listed in that file's `JUDGES`.

/// One signal of a run's metrics.jsonl.
#[derive(Debug)]
pub struct Signal {
    /// Its key in metrics.jsonl.
    pub key: &'static str,
    /// Its name in `pretext health` and in the live warnings.
    pub label: &'static str,
    /// What it measures.
    pub meaning: &'static str,
    /// What `pretext health` does with it.
    pub judgment: Judgment,
}

/// What `pretext health` does with a signal.
#[derive(Debug)]
pub enum Judgment {
    /// Logged for the curves only: `pretext health` does not mention it.
    Logged,
    /// `pretext health` shows its last value and its meaning; it never warns.
    Shown,
    /// Judged together with that signal (uniformity with alignment, ...).
    With(&'static Signal),
    /// Judged by its rules in pretext-train's `health`, which flag these problems.
    Judged(&'static [Problem]),
}

/// One way a judged signal can go wrong.
#[derive(Debug)]
pub struct Problem {
    /// When it is flagged, in words.
    pub when: &'static str,
    /// The number the rule compares against, in the units `when` names (0 where it has none).
    pub limit: f64,
    /// True when it means the representations collapsed.
    pub collapse: bool,
    /// The likely cause, in plain words.
    pub cause: &'static str,
    /// What to try ("" when the cause says it).
    pub advice: &'static str,
}

/// Every signal, in the order `pretext health` lists them.
pub static SIGNALS: &[&Signal] = &[
    &LOSS,
    &NONFINITE_STEPS,
    &GRAD_NORM,
    &EMBEDDING_STD,
    &EFFECTIVE_RANK,
    &PROJECTION_SPREAD,
    &ALIGNMENT,
    &UNIFORMITY,
    &VIEW_AGREEMENT,
    &KNN_ACCURACY,
    &KNN_CHANCE,
    &HELD_OUT_LOSS,
    &RECONSTRUCTION_GAIN,
    &PRETEXT_ACCURACY,
    &TEACHER_ENTROPY,
    &TEACHER_MARGINAL_ENTROPY,
    &CODEBOOK_PERPLEXITY,
    &MASKED_FRAME_ACCURACY,
    &FEATURE_GRAD_RATIO,
    &CENTER_NORM,
    &TARGET_ONLINE_DISTANCE,
    &KEY_ENCODER_DISTANCE,
    &TEACHER_STUDENT_DISTANCE,
    &CONTRASTIVE_ACCURACY,
    &STEP,
    &EPOCH,
    &LR,
    &IMAGES_PER_SECOND,
    &DATA_WAIT_SECONDS,
    &ELAPSED_SECONDS,
    &CELL_ACCURACY,
    &TEACHER_TEMPERATURE,
    &MASK_ACCURACY,
    &RECONSTRUCTION_LOSS,
    &CONTRASTIVE_LOSS,
    &FEATURE_PENALTY,
    &MASKED_SHARE,
    &DIVERSITY_LOSS,
    &GUMBEL_TEMPERATURE,
];

// ---- Written by the trainer for every method ----

pub static LOSS: Signal = Signal {
    key: "loss",
    label: "loss",
    meaning: "the training loss of the step (null when it was not finite)",
    judgment: Judgment::Judged(&[LOSS_NOT_FINITE, LOSS_NOT_FALLING]),
};
pub const LOSS_NOT_FINITE: Problem = Problem {
    when: "no finite loss in the whole log",
    limit: 0.0,
    collapse: false,
    cause: "every step failed",
    advice: "",
};
pub const LOSS_NOT_FALLING: Problem = Problem {
    when: "the mean of the last tenth of the records is not below that of the first tenth \
           (when the loss should fall: not DINO, whose target sharpens)",
    limit: 0.0,
    collapse: false,
    cause: "the model is not learning",
    advice: "try a lower learning rate, a longer warmup, or check that the data are not constant",
};

pub static NONFINITE_STEPS: Signal = Signal {
    key: "nonfinite_steps",
    label: "non-finite steps",
    meaning: "steps skipped so far for a NaN or infinite loss or gradient",
    judgment: Judgment::Judged(&[STEPS_SKIPPED]),
};
pub const STEPS_SKIPPED: Problem = Problem {
    when: "the count at the end is not 0",
    limit: 0.0,
    collapse: false,
    cause: "a NaN/Inf loss or gradient",
    advice: "lower the learning rate, keep gradient clipping on, and check the inputs for NaN",
};

pub static GRAD_NORM: Signal = Signal {
    key: "grad_norm",
    label: "gradient norm",
    meaning: "L2 norm of all gradients of the step, before clipping",
    judgment: Judgment::Judged(&[GRADIENT_SPIKES, GRADIENT_VANISHED]),
};
pub const GRADIENT_SPIKES: Problem = Problem {
    when: "the largest is over 50× the median",
    limit: 50.0,
    collapse: false,
    cause: "the learning rate may be too high",
    advice: "keep optimizer.grad_clip on",
};
pub const GRADIENT_VANISHED: Problem = Problem {
    when: "the last is under 1e-7",
    limit: 1e-7,
    collapse: false,
    cause: "nothing is being learned any more, often after a collapse",
    advice: "",
};

pub static KNN_ACCURACY: Signal = Signal {
    key: "knn_accuracy",
    label: "k-NN accuracy",
    meaning: "k-NN classification accuracy of the representations on a labeled slice",
    judgment: Judgment::Judged(&[KNN_AT_CHANCE, KNN_DEGRADING]),
};
pub const KNN_AT_CHANCE: Problem = Problem {
    when: "the last is under 1.5× chance",
    limit: 1.5,
    collapse: false,
    cause: "the representations carry no class information",
    advice: "",
};
pub const KNN_DEGRADING: Problem = Problem {
    when: "the last is over 10 points under the best",
    limit: 0.10,
    collapse: false,
    cause: "the representations are degrading",
    advice: "lower the learning rate or stop earlier",
};

pub static KNN_CHANCE: Signal = Signal {
    key: "knn_chance",
    label: "k-NN chance",
    meaning: "the k-NN accuracy of guessing: 1 / the number of classes",
    judgment: Judgment::With(&KNN_ACCURACY),
};

pub static HELD_OUT_LOSS: Signal = Signal {
    key: "held_out_loss",
    label: "held-out loss",
    meaning: "a language model's loss on held-out text (no dropout, fixed masking)",
    judgment: Judgment::Judged(&[OVERFITTING]),
};
pub const OVERFITTING: Problem = Problem {
    when: "the last is over 1.05× the best",
    limit: 1.05,
    collapse: false,
    cause: "the model is memorizing the training text",
    advice: "stop earlier, raise dropout or add data",
};

// ---- Measured on the batch's representations (pretext-train's `BatchHealth`) ----

pub static EMBEDDING_STD: Signal = Signal {
    key: "embedding_std",
    label: "embedding std",
    meaning: "std of each dimension of the L2-normalized representations, averaged: 0 when \
              collapsed, about 1/√D when healthy (Jing et al., 2022)",
    judgment: Judgment::Judged(&[EMBEDDING_COLLAPSED]),
};
pub const EMBEDDING_COLLAPSED: Problem = Problem {
    when: "under 10% of the healthy 1/√D (methods that can collapse)",
    limit: 0.1,
    collapse: true,
    cause: "every image maps to nearly the same point",
    advice: "lower the learning rate, raise the temperature, strengthen the augmentations \
             (BYOL: keep the predictor; DINO: keep centering)",
};

pub static EFFECTIVE_RANK: Signal = Signal {
    key: "effective_rank",
    label: "effective rank",
    meaning: "RankMe: exp of the entropy of the normalized singular values; 1 = all on one \
              line, D = every direction used (Garrido et al., 2023)",
    judgment: Judgment::Judged(&[RANK_COLLAPSED]),
};
pub const RANK_COLLAPSED: Problem = Problem {
    when: "under 2 (methods that can collapse)",
    limit: 2.0,
    collapse: true,
    cause: "the representations lie on a line",
    advice: "check the loss and the augmentations",
};

pub static PROJECTION_SPREAD: Signal = Signal {
    key: "projection_spread",
    label: "projection spread",
    meaning: "embedding std of the head's outputs times √P: about 1 when spread like random \
              directions, 0 when every image gets the same projection",
    judgment: Judgment::Judged(&[PROJECTION_COLLAPSED]),
};
pub const PROJECTION_COLLAPSED: Problem = Problem {
    when: "under 0.1 (methods that can collapse)",
    limit: 0.1,
    collapse: true,
    cause: "the head gives nearly the same output for every image, so the loss is satisfied \
            without learning anything",
    advice: "BYOL: keep the predictor; lower the learning rate or the EMA momentum",
};

pub static ALIGNMENT: Signal = Signal {
    key: "alignment",
    label: "alignment",
    meaning: "mean squared distance between the normalized representations of two views of \
              the same image; lower = the views agree (Wang & Isola, 2020)",
    judgment: Judgment::Judged(&[]),
};

pub static UNIFORMITY: Signal = Signal {
    key: "uniformity",
    label: "uniformity",
    meaning: "log of the mean of exp(−2·squared distance) over all pairs of images; lower = \
              spread over the sphere, 0 = collapsed",
    judgment: Judgment::With(&ALIGNMENT),
};

pub static VIEW_AGREEMENT: Signal = Signal {
    key: "view_agreement",
    label: "view agreement",
    meaning: "fraction of images whose first view's nearest neighbour (cosine) among the \
              batch's second views is its own; chance is 1 / the batch size",
    judgment: Judgment::Judged(&[VIEWS_TOO_SIMILAR, VIEWS_TOO_DIFFERENT]),
};
pub const VIEWS_TOO_SIMILAR: Problem = Problem {
    when: "at least 99% at the first and at the last measurement",
    limit: 0.99,
    collapse: false,
    cause: "the two views are nearly the same image, so the task teaches little",
    advice: "strengthen the augmentations (views.crop_scale, views.jitter, \
             views.blur_probability)",
};
pub const VIEWS_TOO_DIFFERENT: Problem = Problem {
    when: "the last is under 3× chance",
    limit: 3.0,
    collapse: false,
    cause: "the views may share too little (augmentations too strong: raise \
            views.crop_scale's minimum), or the model is not learning",
    advice: "",
};

// ---- Written by the methods ----

pub static PRETEXT_ACCURACY: Signal = Signal {
    key: "pretext_accuracy",
    label: "pretext accuracy",
    meaning: "accuracy on the pretext task (rotation, jigsaw permutation, corrupted row, \
              masked or next token); chance is 1 / its classes",
    judgment: Judgment::Judged(&[PRETEXT_TOO_EASY, PRETEXT_AT_CHANCE]),
};
pub const PRETEXT_TOO_EASY: Problem = Problem {
    when: "at least 98% within the first 10% of the run",
    limit: 0.98,
    collapse: false,
    cause: "the network solves the pretext task almost at once, likely through a shortcut \
            (borders, edges, a constant background), and will learn little from it",
    advice: "strengthen the augmentations or make the task harder",
};
pub const PRETEXT_AT_CHANCE: Problem = Problem {
    when: "the last is under 1.5× chance",
    limit: 1.5,
    collapse: false,
    cause: "the pretext task is not being solved",
    advice: "lower the learning rate or make the task easier",
};

pub static RECONSTRUCTION_GAIN: Signal = Signal {
    key: "reconstruction_gain",
    label: "reconstruction gain",
    meaning: "MAE: how much lower the loss is than guessing flat hidden patches",
    judgment: Judgment::Judged(&[RECONSTRUCTION_FLAT]),
};
pub const RECONSTRUCTION_FLAT: Problem = Problem {
    when: "the mean of the last 5 records is under 5%",
    limit: 0.05,
    collapse: false,
    cause: "the reconstructions are hardly better than flat patches, so the encoder learns \
            little",
    advice: "on small patches (a few pixels, much flat background) per-patch normalized \
             targets are mostly noise: try method.mae.normalize_targets=false; else lower the \
             learning rate",
};

pub static TEACHER_ENTROPY: Signal = Signal {
    key: "teacher_entropy",
    label: "teacher entropy",
    meaning: "DINO: entropy of the teacher's output per image, in nats (at most ln K)",
    judgment: Judgment::Judged(&[TEACHER_SHARPENED, TEACHER_UNIFORM]),
};
pub const TEACHER_SHARPENED: Problem = Problem {
    when: "the batch-averaged output's entropy is under 10% of ln K",
    limit: 0.1,
    collapse: true,
    cause: "the teacher sends every image to the same output dimension",
    advice: "turn centering on (method.dino.centering) or lower method.dino.center_momentum",
};
pub const TEACHER_UNIFORM: Problem = Problem {
    when: "the per-image entropy is over 95% of ln K after the temperature warmup",
    limit: 0.95,
    collapse: true,
    cause: "the teacher's output is uniform for every image",
    advice: "lower method.dino.teacher_temperature",
};

pub static TEACHER_MARGINAL_ENTROPY: Signal = Signal {
    key: "teacher_marginal_entropy",
    label: "teacher batch entropy",
    meaning: "DINO: entropy of the teacher's output averaged over the batch, in nats",
    judgment: Judgment::With(&TEACHER_ENTROPY),
};

pub static CODEBOOK_PERPLEXITY: Signal = Signal {
    key: "codebook_perplexity",
    label: "codebook perplexity",
    meaning: "wav2vec 2.0: how many of the quantizer's G·V entries are in use",
    judgment: Judgment::Judged(&[CODEBOOK_COLLAPSED]),
};
pub const CODEBOOK_COLLAPSED: Problem = Problem {
    when: "under 10% of the G·V entries",
    limit: 0.1,
    collapse: false,
    cause: "the quantizer collapsed onto a few codes, so the targets carry little and the \
            contrastive task degenerates",
    advice: "raise method.wav2vec2.diversity_weight or lower the learning rate",
};

/// The key of [`CONTRASTIVE_ACCURACY`], judged this way when the run has a codebook.
pub static MASKED_FRAME_ACCURACY: Signal = Signal {
    key: CONTRASTIVE_ACCURACY_KEY,
    label: "masked-frame accuracy",
    meaning: "wav2vec 2.0: masked frames whose true target beats the K distractors; chance \
              is 1/(K+1)",
    judgment: Judgment::Judged(&[MASKED_TOO_EASY, MASKED_AT_CHANCE]),
};
pub const MASKED_TOO_EASY: Problem = Problem {
    when: "at least 98% within the first 10% of the run",
    limit: 0.98,
    collapse: false,
    cause: "the true targets are picked at once, usually because the quantizer collapsed and \
            the distractors are the same code as the target",
    advice: "check the codebook perplexity and raise method.wav2vec2.diversity_weight",
};
pub const MASKED_AT_CHANCE: Problem = Problem {
    when: "the last is under 2× chance",
    limit: 2.0,
    collapse: false,
    cause: "the context network does not predict the masked frames",
    advice: "lower the learning rate or train longer",
};

pub static FEATURE_GRAD_RATIO: Signal = Signal {
    key: "feature_grad_ratio",
    label: "feature-encoder gradient",
    meaning: "wav2vec 2.0: RMS gradient of the convolutional feature encoder over the rest's",
    judgment: Judgment::Judged(&[FEATURE_GRADIENT_DOMINATES, FEATURE_GRADIENT_VANISHES]),
};
pub const FEATURE_GRADIENT_DOMINATES: Problem = Problem {
    when: "the last is over 10",
    limit: 10.0,
    collapse: false,
    cause: "the convolutions dominate the updates, which destabilizes wav2vec 2.0",
    advice: "lower method.wav2vec2.feature_grad_scale (paper 0.1)",
};
pub const FEATURE_GRADIENT_VANISHES: Problem = Problem {
    when: "the last is under 0.001",
    limit: 1e-3,
    collapse: false,
    cause: "the convolutions hardly learn",
    advice: "raise method.wav2vec2.feature_grad_scale",
};

pub static CENTER_NORM: Signal = Signal {
    key: "center_norm",
    label: "center norm",
    meaning: "norm of DINO's center",
    judgment: Judgment::Shown,
};

pub static TARGET_ONLINE_DISTANCE: Signal = Signal {
    key: "target_online_distance",
    label: "target-online distance",
    meaning: "relative distance of BYOL's target from the online network",
    judgment: Judgment::Shown,
};

pub static KEY_ENCODER_DISTANCE: Signal = Signal {
    key: "key_encoder_distance",
    label: "key-encoder distance",
    meaning: "relative distance of MoCo's key encoder from the query encoder",
    judgment: Judgment::Shown,
};

pub static TEACHER_STUDENT_DISTANCE: Signal = Signal {
    key: "teacher_student_distance",
    label: "teacher-student distance",
    meaning: "relative distance of DINO's teacher from the student",
    judgment: Judgment::Shown,
};

/// Shown as it is except when the run has a codebook: then [`MASKED_FRAME_ACCURACY`] judges it.
pub static CONTRASTIVE_ACCURACY: Signal = Signal {
    key: CONTRASTIVE_ACCURACY_KEY,
    label: "contrastive accuracy",
    meaning: "queries whose positive key beats every negative",
    judgment: Judgment::Judged(&[]),
};

const CONTRASTIVE_ACCURACY_KEY: &str = "contrastive_accuracy";

// ---- Logged for the curves only ----

pub static STEP: Signal = logged("step", "step", "steps done, skipped ones included");
pub static EPOCH: Signal = logged("epoch", "epoch", "passes over the training data begun");
pub static LR: Signal = logged("lr", "learning rate", "the learning rate of the step");
pub static IMAGES_PER_SECOND: Signal = logged(
    "images_per_second",
    "examples per second",
    "training examples per second since the last record",
);
pub static DATA_WAIT_SECONDS: Signal = logged(
    "data_wait_seconds",
    "data wait",
    "seconds the step loop has waited for batches so far",
);
pub static ELAPSED_SECONDS: Signal = logged(
    "elapsed_seconds",
    "elapsed time",
    "seconds since this process began training, to the end of the step (monitors included; a resumed run counts from its resume)",
);
pub static CELL_ACCURACY: Signal = logged(
    "cell_accuracy",
    "cell accuracy",
    "table corruption: accuracy of telling replaced cells",
);
pub static TEACHER_TEMPERATURE: Signal = logged(
    "teacher_temperature",
    "teacher temperature",
    "DINO: the teacher's temperature this step",
);
pub static MASK_ACCURACY: Signal = logged(
    "mask_accuracy",
    "mask accuracy",
    "VIME: accuracy of telling which cells were masked",
);
pub static RECONSTRUCTION_LOSS: Signal = logged(
    "reconstruction_loss",
    "reconstruction loss",
    "VIME: error of the reconstructed cells",
);
pub static CONTRASTIVE_LOSS: Signal = logged(
    "contrastive_loss",
    "contrastive loss",
    "wav2vec 2.0: the masked frames' contrastive loss alone",
);
pub static FEATURE_PENALTY: Signal = logged(
    "feature_penalty",
    "feature penalty",
    "wav2vec 2.0: mean square of the feature encoder's outputs",
);
pub static MASKED_SHARE: Signal = logged(
    "masked_share",
    "masked share",
    "wav2vec 2.0: fraction of frames masked",
);
pub static DIVERSITY_LOSS: Signal = logged(
    "diversity_loss",
    "diversity loss",
    "wav2vec 2.0: the codebook diversity penalty",
);
pub static GUMBEL_TEMPERATURE: Signal = logged(
    "gumbel_temperature",
    "Gumbel temperature",
    "wav2vec 2.0: the quantizer's Gumbel-softmax temperature this step",
);

const fn logged(key: &'static str, label: &'static str, meaning: &'static str) -> Signal {
    Signal {
        key,
        label,
        meaning,
        judgment: Judgment::Logged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn labels_are_unique_and_keys_unique_but_for_contrastive_accuracy() {
        let labels: HashSet<_> = SIGNALS.iter().map(|signal| signal.label).collect();
        assert_eq!(labels.len(), SIGNALS.len());
        let keys: HashSet<_> = SIGNALS.iter().map(|signal| signal.key).collect();
        assert_eq!(keys.len(), SIGNALS.len() - 1, "one key, two readings");
        assert_eq!(MASKED_FRAME_ACCURACY.key, CONTRASTIVE_ACCURACY.key);
    }

    #[test]
    fn signals_judged_with_another_name_a_judged_one() {
        for signal in SIGNALS {
            if let Judgment::With(other) = signal.judgment {
                assert!(
                    matches!(other.judgment, Judgment::Judged(_)),
                    "{}",
                    signal.key
                );
                assert!(SIGNALS.iter().any(|listed| std::ptr::eq(*listed, other)));
            }
        }
    }
}

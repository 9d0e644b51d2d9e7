//! The settings of `pretext finetune`, with the defaults of the MAE/BEiT fine-tuning recipes.

use serde::{Deserialize, Serialize};

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

//! What fine-tuning reports: each epoch, the best one, the test accuracy and each round of
//! self-training.

use serde::{Deserialize, Serialize};

/// One epoch of fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    pub validation_accuracy: f64,
    /// Whether the encoder was trained this epoch (false while frozen).
    pub encoder_trained: bool,
    /// ‖θ − θ₀‖ / ‖θ₀‖ of the encoder's parameters after this epoch.
    pub encoder_change: f64,
}

/// What fine-tuning reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FinetuneReport {
    pub dataset: String,
    pub start: String,
    pub train_examples: usize,
    pub validation_examples: usize,
    pub test_size: usize,
    pub best_epoch: usize,
    pub best_validation_accuracy: f64,
    pub test_accuracy: f64,
    pub epochs: Vec<EpochRecord>,
    pub warnings: Vec<String>,
    /// Each self-training round (empty without self-training); the fields above describe
    /// the last training.
    #[serde(default)]
    pub self_training: Vec<SelfTrainingRound>,
    /// With self-training: test accuracy of the first training, on the labeled examples
    /// alone (what fine-tuning without self-training reaches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_self_training: Option<f64>,
}

/// One round of self-training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelfTrainingRound {
    pub round: usize,
    /// Unlabeled examples whose prediction passed the threshold.
    pub pseudo_labeled: usize,
    /// Of those, the share whose pseudo-label is right (the data's hidden labels; a
    /// diagnostic only — training never sees them).
    pub pseudo_label_accuracy: Option<f64>,
    /// Test accuracy of the model trained in this round.
    pub test_accuracy: f64,
}

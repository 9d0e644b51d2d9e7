//! What fine-tuning reports: each epoch, the best one, the test accuracy and each round of
//! self-training.

use serde::{Deserialize, Serialize};

/// One epoch of fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub loss: f64,
    /// Accuracy on the validation examples (None when every labeled example trains).
    pub validation_accuracy: Option<f64>,
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
    /// The epoch whose weights were kept: the best on validation with early stopping, the
    /// last one run otherwise; 0 is the linear probe fine-tuning started from, kept.
    pub best_epoch: usize,
    /// Its validation accuracy (None without a validation split).
    pub best_validation_accuracy: Option<f64>,
    pub test_accuracy: f64,
    /// The peak learning rate and weight decay trained with, and the epochs run.
    pub lr: f64,
    pub weight_decay: f64,
    pub epochs_run: usize,
    /// With `probe_init`: test accuracy of the linear probe the head started from, and the L2
    /// strength its cross-validation chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_l2: Option<f64>,
    /// With `cross_validate`: what the search tried and chose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<SearchReport>,
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

/// What the cross-validated search of the learning rate, weight decay and epochs found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchReport {
    /// Folds of the cross-validation (0: too few labeled examples of some class, so the
    /// first grid values trained for all epochs).
    pub folds: usize,
    /// Labeled examples the search ran on.
    pub examples: usize,
    /// Every (lr, weight decay) tried: its best epoch and mean held-out accuracy there.
    pub tried: Vec<SearchPoint>,
    /// The chosen point.
    pub chosen: SearchPoint,
}

/// One point of the search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchPoint {
    pub lr: f64,
    pub weight_decay: f64,
    /// Whether the images trained on the run's views (None: not images, nothing to choose).
    #[serde(default)]
    pub augment: Option<bool>,
    pub epochs: usize,
    /// Mean held-out accuracy over the folds at `epochs` (None when nothing was
    /// cross-validated).
    pub accuracy: Option<f64>,
}

impl FinetuneReport {
    /// Whether fine-tuning kept the linear probe it started from (epoch 0) as its result.
    pub fn kept_probe(&self) -> bool {
        self.probe_accuracy.is_some() && self.best_epoch == 0
    }
}

impl SearchReport {
    /// "lr 3e-3, weight decay 5e-4, 24 epochs (3-fold CV 81.2%)".
    pub fn summary(&self) -> String {
        let chosen = &self.chosen;
        let how = match chosen.accuracy {
            Some(accuracy) => format!("{}-fold CV {:.1}%", self.folds, 100.0 * accuracy),
            None => "too few labels per class to cross-validate".to_string(),
        };
        let epochs = match chosen.epochs {
            0 => "0 epochs: the linear probe kept".to_string(),
            epochs => format!("{epochs} epochs"),
        };
        // Said when the search chose it.
        let both = self
            .tried
            .iter()
            .any(|point| point.augment != chosen.augment);
        let views = match chosen.augment.filter(|_| both) {
            Some(true) => ", on augmented views",
            Some(false) => ", on the images as they are",
            None => "",
        };
        format!(
            "lr {:.0e}, weight decay {:.0e}{views}, {epochs} ({how})",
            chosen.lr, chosen.weight_decay
        )
    }
}

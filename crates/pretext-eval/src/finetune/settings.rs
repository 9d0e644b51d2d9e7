//! The settings of `pretext finetune`: the linear-probe-then-fine-tune recipe (Kumar et al.
//! 2022) with the layer-wise decay of the MAE/BEiT recipes, and the cross-validated search
//! that makes training from scratch a strong baseline.

use serde::{Deserialize, Serialize};

/// Settings of `pretext finetune`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    /// Labeled examples from the training split: a count ("600") or a share ("1%").
    pub labels: String,
    /// Seed of the labeled subset, the validation split, the head and the batch order.
    pub seed: u64,
    /// Passes over the labeled training examples (the learning-rate schedule's length; early
    /// stopping or the cross-validated epoch count may end sooner).
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak learning rate of the head; encoder layers get it times their decay factor.
    pub lr: f64,
    pub weight_decay: f64,
    /// Share of the steps spent warming the learning rate up.
    pub warmup_fraction: f64,
    /// Layer-wise learning-rate decay (1 = the same rate everywhere).
    pub layer_decay: f64,
    /// Linear probe, then fine-tune: the head starts from the linear probe (its L2 strength
    /// cross-validated) fitted on the frozen encoder's features of the training examples, so
    /// fine-tuning starts where the probe ends. Ignored from scratch (nothing to probe).
    pub probe_init: bool,
    /// With `probe_init`: fine-tuning keeps the linear probe it started from (the head on
    /// the encoder as pretrained) unless held-out labeled examples say it did better. With a
    /// validation split the probe is epoch 0 of early stopping (and, kept, is refitted on
    /// every labeled example); with too few labels for one,
    /// k-fold cross-validation on the labeled examples (`search.folds`, at `lr`,
    /// `weight_decay` and `augment`) chooses how many epochs to fine-tune, 0 keeping the probe.
    pub probe_fallback: bool,
    /// Epochs that train the head alone on the frozen encoder before the encoder trains.
    pub freeze_epochs: usize,
    /// Train on one augmented view of each image per epoch, drawn with the run's `views`
    /// settings (the pretraining's augmentations); other modalities train on the examples
    /// as they are. Off by default: an encoder pretrained on those views fine-tunes better
    /// on the images as they are (SimCLR on Fashion-MNIST, 8000 labels: 89.0% without
    /// them, 85.8% with them). The study's training from scratch always augments.
    pub augment: bool,
    /// Share of the labeled examples held out for validation (stratified) when early
    /// stopping is used.
    pub validation_fraction: f64,
    /// Early stopping needs at least this many validation examples per class; with fewer,
    /// every labeled example trains for all `epochs` (a handful of validation examples
    /// chooses an epoch by chance).
    pub min_validation_per_class: usize,
    /// Stop after this many epochs without a better validation accuracy.
    pub patience: usize,
    /// Choose the learning rate, weight decay, number of epochs and (for images) whether to
    /// augment by stratified k-fold cross-validation on the labeled examples (`search`;
    /// `augment` is then ignored), then train on all of them.
    pub cross_validate: bool,
    pub search: FinetuneSearch,
    /// Train the same architecture from random initialization instead (the supervised
    /// baseline).
    pub from_scratch: bool,
    /// Start from the downloaded checkpoint the run itself started from
    /// (`backbone.pretrained`) instead of the run's own training.
    pub from_pretrained: bool,
    /// Rounds of self-training (0 = none): after training, the unlabeled training examples
    /// the model labels with confidence ≥ `pseudo_label_threshold` join the labeled ones with
    /// those pseudo-labels, and the model is trained again from the same start with the
    /// same settings.
    pub self_training_rounds: usize,
    /// Softmax probability a prediction needs to become a pseudo-label.
    pub pseudo_label_threshold: f64,
}

/// The grid `cross_validate` searches; its `folds` and `max_examples` also serve
/// `probe_fallback`'s cross-validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneSearch {
    /// Peak learning rates tried.
    pub lr: Vec<f64>,
    /// Weight decays tried.
    pub weight_decay: Vec<f64>,
    /// For images: whether to train on the run's views, tried each way listed (both by
    /// default: the pretraining's augmentations help a few labels and cost 3 points with
    /// 8000 on Fashion-MNIST). Other modalities have nothing to choose.
    pub augment: Vec<bool>,
    /// Folds (every class needs at least this many labeled examples; otherwise the first
    /// grid values train for all `epochs`, said in the report).
    pub folds: usize,
    /// The search runs on at most this many labeled examples (a stratified subset); the
    /// settings it chooses then train on all of them.
    pub max_examples: usize,
}

impl Default for FinetuneSearch {
    fn default() -> Self {
        FinetuneSearch {
            lr: vec![1e-3, 3e-3],
            weight_decay: vec![5e-4, 0.05],
            augment: vec![true, false],
            folds: 3,
            max_examples: 1000,
        }
    }
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            labels: "600".into(),
            seed: 0,
            epochs: 30,
            batch_size: 32,
            lr: 3e-4,
            weight_decay: 0.05,
            warmup_fraction: 0.1,
            layer_decay: 0.75,
            probe_init: true,
            probe_fallback: true,
            freeze_epochs: 0,
            augment: false,
            validation_fraction: 0.2,
            min_validation_per_class: 5,
            patience: 8,
            cross_validate: false,
            search: FinetuneSearch::default(),
            from_scratch: false,
            from_pretrained: false,
            self_training_rounds: 0,
            pseudo_label_threshold: 0.95,
        }
    }
}

impl FinetuneConfig {
    /// Checks the settings; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |value: f64| value.is_finite() && value > 0.0;
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(format!(
                "finetune: expected epochs >= 1 and batch_size >= 1, found {} and {}",
                self.epochs, self.batch_size
            ));
        }
        if !positive(self.lr) {
            return Err(format!("finetune.lr: expected > 0, found {}", self.lr));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(format!(
                "finetune.weight_decay: expected >= 0, found {}",
                self.weight_decay
            ));
        }
        if !(self.layer_decay > 0.0 && self.layer_decay <= 1.0) {
            return Err(format!(
                "finetune.layer_decay: expected a factor in (0, 1], found {}",
                self.layer_decay
            ));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(format!(
                "finetune.validation_fraction: expected a share in [0, 1), found {}",
                self.validation_fraction
            ));
        }
        if !(0.0..1.0).contains(&self.warmup_fraction) {
            return Err(format!(
                "finetune.warmup_fraction: expected a share in [0, 1), found {}",
                self.warmup_fraction
            ));
        }
        if !(self.pseudo_label_threshold > 0.0 && self.pseudo_label_threshold <= 1.0) {
            return Err(format!(
                "finetune.pseudo_label_threshold: expected a probability in (0, 1], found {}",
                self.pseudo_label_threshold
            ));
        }
        let search = &self.search;
        if self.cross_validate {
            if search.lr.is_empty() || !search.lr.iter().all(|&lr| positive(lr)) {
                return Err(format!(
                    "finetune.search.lr: expected one or more rates > 0, found {:?}",
                    search.lr
                ));
            }
            if search.weight_decay.is_empty()
                || !search
                    .weight_decay
                    .iter()
                    .all(|&wd| wd.is_finite() && wd >= 0.0)
            {
                return Err(format!(
                    "finetune.search.weight_decay: expected one or more decays >= 0, found {:?}",
                    search.weight_decay
                ));
            }
            if search.augment.is_empty() {
                return Err(
                    "finetune.search.augment: expected [true], [false] or [true, false], found []"
                        .into(),
                );
            }
        }
        let folds_used =
            self.cross_validate || (self.probe_init && self.probe_fallback && !self.from_scratch);
        if folds_used && (search.folds < 2 || search.max_examples < 2) {
            return Err(format!(
                "finetune.search: expected folds >= 2 and max_examples >= 2, found {} and {}",
                search.folds, search.max_examples
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        FinetuneConfig::default().validate().unwrap();
        let invalid = |config: FinetuneConfig| config.validate().unwrap_err();
        assert!(invalid(FinetuneConfig {
            lr: 0.0,
            ..Default::default()
        })
        .starts_with("finetune.lr"));
        assert!(invalid(FinetuneConfig {
            layer_decay: 1.5,
            ..Default::default()
        })
        .starts_with("finetune.layer_decay"));
        assert!(invalid(FinetuneConfig {
            cross_validate: true,
            search: FinetuneSearch {
                lr: Vec::new(),
                ..Default::default()
            },
            ..Default::default()
        })
        .starts_with("finetune.search.lr"));
    }
}

//! What fine-tuning watches from epoch to epoch: how far the encoder moved from its start,
//! the best epoch so far on validation (early stopping keeps its weights; epoch 0 is the
//! linear probe it started from) and the two warnings against over-aggressive fine-tuning.

use tch::nn::VarStore;
use tch::{Kind, Tensor};

use super::report::EpochRecord;

/// How far the encoder's trained parameters moved from where fine-tuning started.
pub(super) struct EncoderDrift {
    /// The parameters' names, sorted.
    names: Vec<String>,
    /// A copy of each at the start.
    initial: Vec<Tensor>,
}

impl EncoderDrift {
    /// Copies the parameters `names` of `store` as they are now.
    pub(super) fn new(store: &VarStore, names: &[String]) -> EncoderDrift {
        let mut names = names.to_vec();
        names.sort();
        let initial = copies(store, &names);
        EncoderDrift { names, initial }
    }

    /// ‖θ − θ₀‖ / ‖θ₀‖ of the parameters now in `store`.
    pub(super) fn relative_change(&self, store: &VarStore) -> f64 {
        let now = copies(store, &self.names);
        let (mut difference, mut norm) = (0.0, 0.0);
        for (a, b) in now.iter().zip(&self.initial) {
            difference += (a - b).square().sum(Kind::Double).double_value(&[]);
            norm += b.square().sum(Kind::Double).double_value(&[]);
        }
        (difference / norm.max(1e-30)).sqrt()
    }
}

fn copies(store: &VarStore, names: &[String]) -> Vec<Tensor> {
    let variables = store.variables();
    names
        .iter()
        .map(|name| variables[name].detach().copy())
        .collect()
}

/// The best epoch so far and the warnings given.
pub(super) struct EpochWatch {
    best: Option<BestEpoch>,
    first_unfrozen_checked: bool,
    /// Training from scratch moves the encoder by design: no warning for that.
    from_scratch: bool,
    warnings: Vec<String>,
}

/// The best epoch so far: its number, validation accuracy and a copy of every variable.
pub(super) struct BestEpoch {
    pub(super) epoch: usize,
    pub(super) validation_accuracy: f64,
    weights: Vec<(String, Tensor)>,
}

impl BestEpoch {
    /// Copies the best epoch's weights back into `store`.
    pub(super) fn restore(&self, store: &VarStore) {
        tch::no_grad(|| {
            let variables = store.variables();
            for (name, saved) in &self.weights {
                variables[name].shallow_clone().copy_(saved);
            }
        });
    }
}

impl EpochWatch {
    pub(super) fn new(from_scratch: bool) -> EpochWatch {
        EpochWatch {
            best: None,
            first_unfrozen_checked: false,
            from_scratch,
            warnings: Vec::new(),
        }
    }

    /// Takes in the start (epoch 0: the linear probe on the encoder as pretrained) with its
    /// validation accuracy, as the epoch to beat.
    pub(super) fn start(&mut self, validation_accuracy: f64, store: &VarStore) {
        self.keep(0, validation_accuracy, store);
    }

    /// Takes in the epoch `record` with the weights it ended with: warns when the encoder
    /// moved more than 10% in the first epoch it trained or validation accuracy collapsed
    /// from its best, and keeps a copy of the weights of a better epoch.
    pub(super) fn after_epoch(
        &mut self,
        record: &EpochRecord,
        store: &VarStore,
        log: &mut dyn FnMut(&str),
    ) {
        let change = record.encoder_change;
        if record.encoder_trained && !self.first_unfrozen_checked {
            self.first_unfrozen_checked = true;
            if change > 0.10 && !self.from_scratch {
                self.warn(format!(
                    "WARNING fine-tuning: the encoder's weights moved {:.0}% in the first epoch it trained; this can overwrite what pretraining learned — lower --lr, lower --layer-decay, or freeze the encoder first (--freeze-epochs)",
                    100.0 * change
                ), log);
            }
        }
        let Some(validation_accuracy) = record.validation_accuracy else {
            // No validation split: the last epoch is the result.
            return;
        };
        let improved = self
            .best
            .as_ref()
            .is_none_or(|best| validation_accuracy > best.validation_accuracy);
        if improved {
            self.keep(record.epoch, validation_accuracy, store);
        } else if let Some(best) = &self.best {
            let best_accuracy = best.validation_accuracy;
            if validation_accuracy < best_accuracy - 0.2
                && !self.warnings.iter().any(|w| w.contains("collapsed"))
            {
                self.warn(format!(
                    "WARNING fine-tuning: validation accuracy collapsed from {:.1}% to {:.1}% — the learning rate is likely too high for this encoder",
                    100.0 * best_accuracy,
                    100.0 * validation_accuracy
                ), log);
            }
        }
    }

    /// Keeps a copy of every variable of `store` as the best epoch.
    fn keep(&mut self, epoch: usize, validation_accuracy: f64, store: &VarStore) {
        let weights = store
            .variables()
            .into_iter()
            .map(|(name, tensor)| (name, tensor.detach().copy()))
            .collect();
        self.best = Some(BestEpoch {
            epoch,
            validation_accuracy,
            weights,
        });
    }

    fn warn(&mut self, warning: String, log: &mut dyn FnMut(&str)) {
        log(&warning);
        self.warnings.push(warning);
    }

    /// The best epoch so far, or `epoch` before any (or without validation).
    pub(super) fn best_epoch_or(&self, epoch: usize) -> usize {
        self.best.as_ref().map_or(epoch, |best| best.epoch)
    }

    /// The best epoch (None without validation) and the warnings, once training ended.
    pub(super) fn finish(self) -> (Option<BestEpoch>, Vec<String>) {
        (self.best, self.warnings)
    }
}

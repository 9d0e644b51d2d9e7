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
    /// The best epoch that trained (the start aside) and its validation accuracy: what
    /// early stopping's patience runs from.
    best_trained: Option<(usize, f64)>,
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
            best_trained: None,
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
        if self
            .best_trained
            .is_none_or(|(_, best)| validation_accuracy > best)
        {
            self.best_trained = Some((record.epoch, validation_accuracy));
        }
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

    /// The best epoch that trained so far, or `epoch` before any (or without validation).
    pub(super) fn best_trained_epoch_or(&self, epoch: usize) -> usize {
        self.best_trained.map_or(epoch, |(best, _)| best)
    }

    /// The best epoch (None without validation) and the warnings, once training ended.
    pub(super) fn finish(self) -> (Option<BestEpoch>, Vec<String>) {
        (self.best, self.warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn record(epoch: usize, validation_accuracy: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            loss: 1.0,
            validation_accuracy: Some(validation_accuracy),
            encoder_trained: true,
            encoder_change: 0.0,
        }
    }

    /// The probe (epoch 0) stays the best until an epoch beats it, while patience runs from
    /// the best epoch that trained, so a fine-tune that dips under its probe keeps going.
    #[test]
    fn patience_runs_from_the_best_trained_epoch_and_the_probe_stays_the_result_to_beat() {
        let store = VarStore::new(Device::Cpu);
        let mut watch = EpochWatch::new(false);
        watch.start(0.80, &store);
        let mut log = |_: &str| {};
        assert_eq!(watch.best_trained_epoch_or(1), 1);
        watch.after_epoch(&record(1, 0.60), &store, &mut log);
        watch.after_epoch(&record(2, 0.70), &store, &mut log);
        watch.after_epoch(&record(3, 0.65), &store, &mut log);
        assert_eq!(watch.best_trained_epoch_or(3), 2);
        let (best, _) = watch.finish();
        assert_eq!(best.map(|best| best.epoch), Some(0));

        let mut watch = EpochWatch::new(false);
        watch.start(0.80, &store);
        watch.after_epoch(&record(1, 0.60), &store, &mut log);
        watch.after_epoch(&record(2, 0.85), &store, &mut log);
        assert_eq!(watch.best_trained_epoch_or(2), 2);
        assert_eq!(watch.finish().0.map(|best| best.epoch), Some(2));
    }
}

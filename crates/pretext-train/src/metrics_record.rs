//! One line of metrics.jsonl as the step loop builds it: the numbers of every logged step,
//! then what was due at that step (the method's numbers, the health signals, the k-NN and
//! held-out monitors). Every key the trainer writes itself comes from the signal table (`pretext_methods::signal`) here; non-finite values
//! are written as null.

use pretext_methods::signal::{
    DATA_WAIT_SECONDS, ELAPSED_SECONDS, EPOCH, GRAD_NORM, HELD_OUT_LOSS, IMAGES_PER_SECOND,
    KNN_ACCURACY, KNN_CHANCE, LOSS, LR, NONFINITE_STEPS, STEP,
};
use serde_json::{json, Map, Value};

/// The numbers every logged step has.
#[derive(Clone, Copy, Debug)]
pub struct StepNumbers {
    /// Steps done (1-based).
    pub step: u64,
    pub epoch: u64,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub images_per_second: f64,
    /// Seconds the loop has waited for the data workers so far.
    pub data_wait_seconds: f64,
    /// Seconds since this process began training, to the end of the step.
    pub elapsed_seconds: f64,
    /// Steps skipped so far for a non-finite loss or gradient.
    pub nonfinite_steps: u64,
}

/// A metrics record under construction.
#[derive(Clone, Debug, Default)]
pub struct MetricsRecord {
    fields: Map<String, Value>,
}

impl MetricsRecord {
    /// A record holding the numbers every logged step has.
    pub fn new(numbers: &StepNumbers) -> MetricsRecord {
        let mut fields = Map::new();
        fields.insert(STEP.key.into(), json!(numbers.step));
        fields.insert(EPOCH.key.into(), json!(numbers.epoch));
        fields.insert(LOSS.key.into(), finite_or_null(numbers.loss));
        fields.insert(LR.key.into(), json!(numbers.lr));
        fields.insert(GRAD_NORM.key.into(), finite_or_null(numbers.grad_norm));
        fields.insert(
            IMAGES_PER_SECOND.key.into(),
            json!(numbers.images_per_second),
        );
        fields.insert(
            DATA_WAIT_SECONDS.key.into(),
            json!(numbers.data_wait_seconds),
        );
        fields.insert(ELAPSED_SECONDS.key.into(), json!(numbers.elapsed_seconds));
        fields.insert(NONFINITE_STEPS.key.into(), json!(numbers.nonfinite_steps));
        MetricsRecord { fields }
    }

    /// Adds named numbers: the method's own (`pretext_accuracy`, ...) or health signals.
    pub fn add_named(&mut self, named: impl IntoIterator<Item = (String, f64)>) {
        for (name, value) in named {
            self.fields.insert(name, finite_or_null(value));
        }
    }

    /// Adds the k-NN monitor's accuracy and its chance level.
    pub fn add_knn(&mut self, accuracy: f64, chance: f64) {
        self.fields.insert(KNN_ACCURACY.key.into(), json!(accuracy));
        self.fields.insert(KNN_CHANCE.key.into(), json!(chance));
    }

    /// Adds the language model's loss on held-out sequences.
    pub fn add_held_out_loss(&mut self, loss: f64) {
        self.fields
            .insert(HELD_OUT_LOSS.key.into(), finite_or_null(loss));
    }

    /// The record as written to metrics.jsonl and read by the live health check.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }
}

fn finite_or_null(value: f64) -> Value {
    if value.is_finite() {
        json!(value)
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_are_written_as_null() {
        let mut record = MetricsRecord::new(&StepNumbers {
            step: 3,
            epoch: 0,
            loss: f64::NAN,
            lr: 0.5,
            grad_norm: f64::INFINITY,
            images_per_second: 10.0,
            data_wait_seconds: 0.0,
            elapsed_seconds: 2.5,
            nonfinite_steps: 1,
        });
        record.add_named([("effective_rank".to_string(), 4.0)]);
        record.add_knn(0.75, 0.1);
        record.add_held_out_loss(f64::NAN);
        let fields = record.fields();
        assert_eq!(fields["step"], json!(3));
        assert_eq!(fields["loss"], Value::Null);
        assert_eq!(fields["grad_norm"], Value::Null);
        assert_eq!(fields["held_out_loss"], Value::Null);
        assert_eq!(fields["effective_rank"], json!(4.0));
        assert_eq!(fields["knn_accuracy"], json!(0.75));
        assert_eq!(fields["elapsed_seconds"], json!(2.5));
        assert_eq!(fields.len(), 13);
    }
}

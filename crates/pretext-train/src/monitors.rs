//! What the step loop measures beside the loss, on data it holds on the device from the start:
//! k-NN accuracy on a labeled slice of the training split, and a language model's loss on
//! held-out sequences.

use pretext_data::{stratified_subset, Samples};
use pretext_methods::{samples_to_tensor, StepInputs, ToDevice};
use pretext_nn::{knn_classify, Encoder, KnnConfig};
use tch::{Device, Kind, Tensor};

use crate::config::PretrainConfig;
use crate::trainer::Model;

/// A language model's loss on the first held-out sequences, batched like training and put on
/// the device once; the masking of bert-mlm is drawn once (step 0), so every evaluation sees
/// the same inputs.
pub(crate) struct HeldOutMonitor {
    /// Each batch's inputs and its number of sequences.
    batches: Vec<(StepInputs, usize)>,
}

impl HeldOutMonitor {
    pub(crate) fn new(
        test: &Samples,
        config: &PretrainConfig,
        device: Device,
    ) -> Option<HeldOutMonitor> {
        let count = config.health.held_out_samples.min(test.len());
        if config.health.held_out_every == 0 || count == 0 || !config.method.name.reads_tokens() {
            return None;
        }
        let recipe = config.method.view_recipe(&config.views);
        let indices: Vec<usize> = (0..count).collect();
        let batches = indices
            .chunks(config.train.batch_size.max(1))
            .map(|chunk| {
                let batch = recipe.build(test, chunk, config.seed, 0, 0);
                (batch.to_inputs(device), chunk.len())
            })
            .collect();
        Some(HeldOutMonitor { batches })
    }

    /// Mean loss over the held-out sequences (weighted by batch size).
    pub(crate) fn loss(&self, model: &Model) -> Option<f64> {
        let (mut total, mut count) = (0.0, 0usize);
        for (inputs, size) in &self.batches {
            total += model.method.held_out_loss(inputs)? * *size as f64;
            count += size;
        }
        Some(total / count.max(1) as f64)
    }
}

/// k-NN accuracy on a labeled slice of the training split, for monitoring only.
pub(crate) struct KnnMonitor {
    bank: Tensor,
    bank_labels: Tensor,
    queries: Tensor,
    query_labels: Tensor,
    num_classes: i64,
    k: i64,
}

impl KnnMonitor {
    pub(crate) fn new(
        train: &Samples,
        config: &PretrainConfig,
        device: Device,
    ) -> Option<KnnMonitor> {
        let labels = train.labels()?;
        let wanted = (2 * config.health.knn_slice).min(train.len());
        if config.health.knn_every == 0 || wanted < 4 {
            return None;
        }
        let chosen = stratified_subset(labels, wanted, config.data.split_seed.wrapping_add(1));
        let bank: Vec<usize> = chosen.iter().copied().step_by(2).collect();
        let queries: Vec<usize> = chosen.iter().copied().skip(1).step_by(2).collect();
        let label_tensor = |indices: &[usize]| {
            Tensor::from_slice(
                &indices
                    .iter()
                    .map(|&i| i64::from(labels[i]))
                    .collect::<Vec<_>>(),
            )
        };
        Some(KnnMonitor {
            bank: samples_to_tensor(train, &bank, device),
            bank_labels: label_tensor(&bank).to_device(device),
            queries: samples_to_tensor(train, &queries, device),
            query_labels: label_tensor(&queries).to_device(device),
            num_classes: train.num_classes() as i64,
            k: config.health.knn_k,
        })
    }

    /// The accuracy of guessing: one over the number of classes.
    pub(crate) fn chance(&self) -> f64 {
        1.0 / self.num_classes as f64
    }

    pub(crate) fn accuracy(&self, encoder: &dyn Encoder) -> f64 {
        let _guard = tch::no_grad_guard();
        let encode = |inputs: &Tensor| {
            let chunks: Vec<Tensor> = inputs
                .split(256, 0)
                .iter()
                .map(|chunk| encoder.encode(chunk, false))
                .collect();
            Tensor::cat(&chunks, 0)
        };
        let bank = encode(&self.bank);
        let queries = encode(&self.queries);
        let config = KnnConfig {
            k: self.k,
            ..Default::default()
        };
        let predicted = knn_classify(&bank, &self.bank_labels, &queries, self.num_classes, config);
        predicted
            .eq_tensor(&self.query_labels)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    }
}

//! MoCo v2 — He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual
//! Representation Learning", CVPR 2020 (arXiv:1911.05722), with the v2 changes of Chen, Fan,
//! Girshick, He, "Improved Baselines with Momentum Contrastive Learning" (arXiv:2003.04297):
//! an MLP projection head, stronger augmentations, τ = 0.2.
//!
//! A query encoder f_q (encoder + MLP head) embeds one view x_q to q; a key encoder f_k, a
//! momentum copy θ_k ← m·θ_k + (1 − m)·θ_q (m = 0.999) that gets no gradients, embeds the
//! other view x_k to k₊. The loss is InfoNCE of q against k₊ and a queue of K negative keys
//! from earlier batches; after each step the batch's keys are enqueued and the oldest dropped.
//!
//! Batch norm: the paper shuffles the key batch across GPUs so that BN statistics cannot leak
//! which query matches which key. On one device, `batch_norm = "per-view"` (default) computes
//! query and key statistics over separate forward passes, as the paper's one-GPU code does;
//! `"shuffled"` emulates shuffling BN by splitting both batches into `shuffle_groups` groups
//! and encoding the keys in a random order, so each key meets other images' BN statistics.
//!
//! Defaults: τ = 0.2, m = 0.999, 2-layer MLP head without BN (512 → 128 here; 2048 → 128 in
//! the paper), queue K = 65536 in the paper; `queue_size = 0` (default) picks a size fit for
//! the dataset: the largest power of two at most a quarter of the training images, up to 65536.
//!
//! Run: `pretext pretrain --method moco --data ../shared/data/vision/fashion-mnist --out runs/moco`

use pretext_augment::ViewConfig;
use pretext_nn::{
    info_nce, Backbone, BackboneConfig, Ema, Encoder, NegativeQueue, Projector, ProjectorConfig,
};
use serde::{Deserialize, Serialize};
use tch::{nn::VarStore, Kind, Tensor};

use crate::pretext_method::{check, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{encoder_and_projector, MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// How batch norm sees the key batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MocoBatchNorm {
    /// Queries and keys go through separate forward passes (one device, the paper's default there).
    PerView,
    /// Shuffling BN emulated on one device: groups of samples, keys in a shuffled order.
    Shuffled,
}

/// MoCo v2's settings (paper defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MocoConfig {
    /// τ of InfoNCE.
    pub temperature: f64,
    /// m of the key encoder's momentum update.
    pub momentum: f64,
    /// K, the number of negative keys; 0 = chosen from the dataset size.
    pub queue_size: usize,
    /// The MLP head.
    pub projector: ProjectorConfig,
    /// "per-view" or "shuffled".
    pub batch_norm: MocoBatchNorm,
    /// Groups the batch is split into when batch_norm = "shuffled" (the paper's GPU count).
    pub shuffle_groups: usize,
}

impl Default for MocoConfig {
    fn default() -> Self {
        MocoConfig {
            temperature: 0.2,
            momentum: 0.999,
            queue_size: 0,
            projector: ProjectorConfig {
                batch_norm: false,
                ..ProjectorConfig::default()
            },
            batch_norm: MocoBatchNorm::PerView,
            shuffle_groups: 4,
        }
    }
}

impl MocoConfig {
    /// The queue size for a training split of `train_len` images.
    pub fn resolved_queue_size(&self, train_len: usize) -> i64 {
        if self.queue_size > 0 {
            return self.queue_size as i64;
        }
        let quarter = (train_len / 4).max(1);
        let power = 1usize << (usize::BITS - 1 - quarter.leading_zeros());
        power.min(65536) as i64
    }
}

impl MethodSettings for MocoConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        check(self.temperature > 0.0, "temperature", "must be above 0")?;
        check(
            (0.0..=1.0).contains(&self.momentum),
            "momentum",
            "must be in [0, 1]",
        )?;
        check(
            self.shuffle_groups >= 1,
            "shuffle_groups",
            "must be at least 1",
        )
    }

    fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::TwoViews(views.clone())
    }

    fn build(
        &self,
        trained: &VarStore,
        state: &VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Moco::new(trained, state, setup, backbone, self))
    }
}

/// Query encoder and head (trained); key encoder, key head and queue (untrained state).
#[derive(Debug)]
pub struct Moco {
    pub encoder: Backbone,
    pub projector: Projector,
    pub key_encoder: Backbone,
    pub key_projector: Projector,
    pub ema: Ema,
    pub queue: NegativeQueue,
    /// This step's keys, enqueued by `after_step` once the step is taken.
    pending_keys: Option<Tensor>,
    pub config: MocoConfig,
}

impl Moco {
    pub fn new(
        trained: &VarStore,
        state: &VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
        config: &MocoConfig,
    ) -> Moco {
        let build = |store: &VarStore| {
            encoder_and_projector(&store.root(), &setup.input, backbone, &config.projector)
        };
        let (encoder, projector) = build(trained);
        let (key_encoder, key_projector) = build(state);
        let ema = Ema::new(state, trained, &["encoder.", "projector."]);
        let queue = NegativeQueue::new(
            &(state.root() / "queue"),
            config.resolved_queue_size(setup.train_len),
            config.projector.output_dim,
        );
        Moco {
            encoder,
            projector,
            key_encoder,
            key_projector,
            ema,
            queue,
            pending_keys: None,
            config: config.clone(),
        }
    }

    /// `views` = [x_q, x_k], `[N, C, H, W]` each.
    pub fn loss(&mut self, views: &[Tensor]) -> StepOutput {
        let (x_q, x_k) = (&views[0], &views[1]);
        let groups = match self.config.batch_norm {
            MocoBatchNorm::PerView => 1,
            MocoBatchNorm::Shuffled => self.config.shuffle_groups as i64,
        };
        // Queries: in groups of the original order.
        let (h_q, q) = encode_in_groups(&self.encoder, &self.projector, x_q, groups);
        // Keys: no gradient; with shuffled BN, in groups of a random order, then unshuffled.
        let (h_k, k) = tch::no_grad(|| {
            if groups == 1 {
                encode_in_groups(&self.key_encoder, &self.key_projector, x_k, 1)
            } else {
                let n = x_k.size()[0];
                let order = Tensor::randperm(n, (Kind::Int64, x_k.device()));
                let restore = order.argsort(0, false);
                let (h, k) = encode_in_groups(
                    &self.key_encoder,
                    &self.key_projector,
                    &x_k.index_select(0, &order),
                    groups,
                );
                (h.index_select(0, &restore), k.index_select(0, &restore))
            }
        });
        let (loss, accuracy) = info_nce(&q, &k, self.queue.keys(), self.config.temperature);
        self.pending_keys = Some(k);
        StepOutput {
            loss,
            representations: vec![h_q.detach(), h_k],
            projections: Some(q.detach()),
            metrics: vec![(signal::CONTRASTIVE_ACCURACY.key.into(), accuracy.into())],
        }
    }
}

impl PretextMethod for Moco {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        self.loss(&inputs.views)
    }

    /// Momentum update of the key encoder, then the batch's keys join the queue.
    fn after_step(&mut self, _clock: StepClock, taken: Option<&Tensor>) {
        self.ema.update_after(self.config.momentum, taken);
        if let Some(keys) = self.pending_keys.take() {
            // Several processes: every process's keys, in rank order (the global batch's
            // order), so that every queue stays the same.
            let keys = pretext_nn::collective()
                .and_then(|collective| collective.gather_rows(&keys))
                .unwrap_or(keys);
            self.queue.enqueue(&keys, taken);
        }
    }

    fn health_metrics(&self) -> Vec<(String, f64)> {
        vec![(
            signal::KEY_ENCODER_DISTANCE.key.into(),
            self.ema.relative_distance(),
        )]
    }
}

/// Encoder then head over `groups` consecutive chunks of the batch (BN statistics per chunk).
fn encode_in_groups(
    encoder: &Backbone,
    projector: &Projector,
    images: &Tensor,
    groups: i64,
) -> (Tensor, Tensor) {
    let chunks = images.chunk(groups, 0);
    let (hs, zs): (Vec<Tensor>, Vec<Tensor>) = chunks
        .iter()
        .map(|chunk| {
            let h = encoder.encode(chunk, true);
            let z = projector.forward_t(&h, true);
            (h, z)
        })
        .unzip();
    (Tensor::cat(&hs, 0), Tensor::cat(&zs, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_size_follows_the_dataset_unless_set() {
        let config = MocoConfig::default();
        assert_eq!(config.resolved_queue_size(60_000), 8192);
        assert_eq!(config.resolved_queue_size(8_000), 1024);
        assert_eq!(config.resolved_queue_size(10_000_000), 65536);
        let fixed = MocoConfig {
            queue_size: 4096,
            ..MocoConfig::default()
        };
        assert_eq!(fixed.resolved_queue_size(100), 4096);
    }
}

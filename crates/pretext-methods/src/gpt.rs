//! GPT causal language modeling — Radford, Wu, Child, Luan, Amodei, Sutskever, "Language
//! Models are Unsupervised Multitask Learners" (GPT-2), 2019; Radford et al. 2018 (GPT).
//!
//! A decoder-only transformer (pre-LN blocks, a final layer norm, a causal mask: position t
//! sees positions ≤ t) reads a token sequence and predicts every next token: cross-entropy of
//! the logits at positions 0..T−2 against the tokens at 1..T−1, padding excluded. The output
//! layer is the token embedding matrix, transposed (tied weights, as GPT-2).
//!
//! Defaults: `[backbone.transformer]` with `causal` and `norm_first` forced on; for text
//! generation see `pretext generate`.
//!
//! Run: `pretext pretrain --method gpt --backbone transformer --data ../shared/data/text/austen --out runs/gpt`

use pretext_augment::ViewConfig;
use pretext_nn::{Backbone, BackboneConfig, InputSpec, TransformerConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::pretext_method::{MethodHealth, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// GPT's settings (the network is `[backbone.transformer]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GptConfig {}

impl MethodSettings for GptConfig {
    fn view_recipe(&self, _views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::Tokens
    }

    fn build(
        &self,
        trained: &nn::VarStore,
        _state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Gpt::new(&trained.root(), &setup.input, backbone))
    }

    fn health(&self, backbone: &BackboneConfig, _total_steps: u64) -> MethodHealth {
        MethodHealth::language_model(backbone)
    }
}

#[derive(Debug)]
pub struct Gpt {
    pub encoder: Backbone,
}

impl Gpt {
    /// The backbone config a GPT builds: the transformer made causal and pre-LN.
    pub fn backbone_config(backbone: &BackboneConfig) -> BackboneConfig {
        BackboneConfig {
            transformer: TransformerConfig {
                causal: true,
                norm_first: true,
                type_vocab_size: 0,
                ..backbone.transformer.clone()
            },
            ..backbone.clone()
        }
    }

    pub fn new(root: &nn::Path, input: &InputSpec, backbone: &BackboneConfig) -> Gpt {
        Gpt {
            encoder: Backbone::new(&(root / "encoder"), input, &Self::backbone_config(backbone)),
        }
    }

    /// Next-token logits `[B, T, V]` for token ids `[B, T]`.
    pub fn logits(&self, token_ids: &Tensor, train: bool) -> Tensor {
        let text = self
            .encoder
            .text()
            .expect("validated: gpt needs a transformer");
        let (states, _) = text.states(token_ids, train);
        states.matmul(&text.transformer.word_embeddings.transpose(0, 1))
    }

    /// `views[0]` = token ids `[B, T]`; `train` turns dropout on.
    pub fn loss(&self, views: &[Tensor], train: bool) -> StepOutput {
        let text = self
            .encoder
            .text()
            .expect("validated: gpt needs a transformer");
        let ids = &views[0];
        let length = ids.size()[1];
        let (states, mask) = text.states(ids, train); // [B, T, H]
        let logits = states
            .narrow(1, 0, length - 1)
            .matmul(&text.transformer.word_embeddings.transpose(0, 1)); // [B, T-1, V]
        let targets = ids.narrow(1, 1, length - 1); // [B, T-1]
        let real = mask.narrow(1, 1, length - 1).to_kind(Kind::Bool);
        let vocab = logits.size()[2];
        let targets = targets.masked_fill(&real.logical_not(), -100);
        let flat_logits = logits.reshape([-1, vocab]);
        let flat_targets = targets.reshape([-1]);
        let loss = flat_logits
            .log_softmax(-1, Kind::Float)
            .nll_loss_nd::<Tensor>(&flat_targets, None, tch::Reduction::Mean, -100);
        let accuracy = tch::no_grad(|| {
            let hits = flat_logits
                .argmax(1, false)
                .eq_tensor(&flat_targets)
                .to_kind(Kind::Float)
                .sum(Kind::Float);
            let count = flat_targets.ne(-100).to_kind(Kind::Float).sum(Kind::Float);
            hits / count.clamp_min(1.0)
        });
        StepOutput {
            loss,
            representations: vec![text.pool(&states, &mask).detach()],
            projections: None,
            metrics: vec![(signal::PRETEXT_ACCURACY.key.into(), accuracy.into())],
        }
    }
}

impl PretextMethod for Gpt {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        self.loss(&inputs.views, true)
    }

    fn held_out_loss(&self, inputs: &StepInputs) -> Option<Tensor> {
        Some(self.loss(&inputs.views, false).loss)
    }
}

//! BERT masked language modeling — Devlin, Chang, Lee, Toutanova, "BERT: Pre-training of Deep
//! Bidirectional Transformers for Language Understanding", NAACL 2019 (arXiv:1810.04805), §3.1.
//!
//! 15% of the non-special tokens of each sequence are chosen; of those 80% become [MASK], 10%
//! a random token and 10% stay (pretext-augment's `mask_tokens`). A bidirectional transformer
//! encoder reads the corrupted sequence and an MLM head predicts the original token at the
//! chosen positions only: `dense → GELU → LayerNorm → decoder`, whose weight is tied to the
//! token embeddings, plus a bias (BERT's `cls.predictions`). Cross-entropy over the chosen
//! positions; the other positions do not count.
//!
//! Defaults: BERT's masking rates; the encoder is `[backbone.transformer]` (4 pre-LN layers of 128
//! for CPU runs; set `backbone.pretrained` to a Hugging Face BERT/MiniLM folder to continue
//! pretraining from it: domain-adaptive pretraining).
//!
//! Run: `pretext pretrain --method bert-mlm --backbone transformer --data ../shared/data/text/austen/austen_train.tsv --out runs/mlm`

use pretext_augment::{MaskingConfig, ViewConfig, IGNORED_LABEL};
use pretext_nn::{Backbone, BackboneConfig, Encoder, InputSpec};
use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::pretext_method::{check, MethodHealth, MethodSettings, PretextMethod};
use crate::signal;
use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// BERT MLM's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BertMlmConfig {
    /// Which tokens are chosen and how they are corrupted.
    pub masking: MaskingConfig,
}

impl MethodSettings for BertMlmConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        let masking = &self.masking;
        check(
            masking.mask_probability > 0.0 && masking.mask_probability < 1.0,
            "masking.mask_probability",
            "must be in (0, 1)",
        )?;
        check(
            masking.mask_token_share >= 0.0
                && masking.random_token_share >= 0.0
                && masking.mask_token_share + masking.random_token_share <= 1.0,
            "masking.mask_token_share",
            "mask_token_share and random_token_share must be >= 0 and sum to at most 1",
        )
    }

    fn view_recipe(&self, _views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::MaskedTokens(self.masking.clone())
    }

    fn build(
        &self,
        trained: &nn::VarStore,
        _state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(BertMlm::new(&trained.root(), &setup.input, backbone))
    }

    fn health(&self, backbone: &BackboneConfig, _total_steps: u64) -> MethodHealth {
        MethodHealth::language_model(backbone)
    }
}

/// The encoder and BERT's MLM head (names as in Hugging Face's `BertForMaskedLM`).
#[derive(Debug)]
pub struct BertMlm {
    pub encoder: Backbone,
    transform: nn::Linear,
    transform_norm: nn::LayerNorm,
    decoder_bias: Tensor,
}

impl BertMlm {
    pub fn new(root: &nn::Path, input: &InputSpec, backbone: &BackboneConfig) -> BertMlm {
        let encoder = Backbone::new(&(root / "encoder"), input, backbone);
        let hidden = encoder.dim();
        let head = root / "cls" / "predictions";
        let transform = nn::linear(
            &head / "transform" / "dense",
            hidden,
            hidden,
            Default::default(),
        );
        let transform_norm = nn::layer_norm(
            &head / "transform" / "LayerNorm",
            vec![hidden],
            nn::LayerNormConfig {
                eps: backbone.transformer.layer_norm_eps,
                ..Default::default()
            },
        );
        let decoder_bias = head.zeros("bias", &[input.vocab_size]);
        BertMlm {
            encoder,
            transform,
            transform_norm,
            decoder_bias,
        }
    }

    /// `views[0]` = masked token ids `[B, T]`; `labels` = original ids at chosen positions,
    /// -100 elsewhere; `train` turns dropout on.
    pub fn loss(&self, views: &[Tensor], labels: &Tensor, train: bool) -> StepOutput {
        let text = self
            .encoder
            .text()
            .expect("validated: bert-mlm needs a transformer");
        let (states, mask) = text.states(&views[0], train); // [B, T, H]
        let hidden = states.size()[2];
        let chosen = labels.ne(IGNORED_LABEL); // [B, T]
        let chosen_states = states
            .masked_select(&chosen.unsqueeze(-1))
            .view([-1, hidden]); // [M, H]
        let targets = labels.masked_select(&chosen); // [M]
        let transformed = self
            .transform_norm
            .forward(&self.transform.forward(&chosen_states).gelu("none"));
        let logits = transformed.matmul(&text.transformer.word_embeddings.transpose(0, 1))
            + &self.decoder_bias; // [M, V]
        let loss = logits.cross_entropy_for_logits(&targets);
        let accuracy = tch::no_grad(|| {
            logits
                .argmax(1, false)
                .eq_tensor(&targets)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
        });
        StepOutput {
            loss,
            representations: vec![text.pool(&states, &mask).detach()],
            projections: None,
            metrics: vec![(signal::PRETEXT_ACCURACY.key.into(), accuracy.into())],
        }
    }

    /// The loss on a step's masked tokens, with dropout when `train`.
    fn loss_on(&self, inputs: &StepInputs, train: bool) -> StepOutput {
        let labels = inputs.targets_of("masked-token");
        self.loss(&inputs.views, labels, train)
    }
}

impl PretextMethod for BertMlm {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        self.loss_on(inputs, true)
    }

    fn held_out_loss(&self, inputs: &StepInputs) -> Option<Tensor> {
        Some(self.loss_on(inputs, false).loss)
    }
}

//! The contract between a method and the rest of pretext: [`PretextMethod`], implemented by
//! each built method (what the step loop calls), and [`MethodSettings`], implemented by its
//! `[method.<name>]` settings (what is known before it is built).

use std::any::Any;
use std::fmt::Debug;

use pretext_augment::ViewConfig;
use pretext_nn::{Backbone, BackboneConfig};
use tch::nn::VarStore;
use tch::Tensor;

use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// A built method: its trained modules (in the `trained` VarStore, which the optimizer
/// updates) and its untrained state (EMA networks, queue, center: in the `state` VarStore,
/// which only `after_step` changes).
///
/// What is known before the method is built (its settings' checks, the views it needs, how
/// to build it) is in [`MethodSettings`], implemented by the method's config. It cannot be
/// part of this trait: the step loop holds built methods of every kind as one
/// `Box<dyn PretextMethod>`, and a trait object cannot name each method's own config type
/// (an associated type would have to be the same for all of them).
pub trait PretextMethod: Any + Debug + Send {
    /// The encoder that transfer uses.
    fn encoder(&self) -> &Backbone;

    /// Forward pass and loss on one step's views (usually handing them to the method's own
    /// `loss`, whose arguments are the tensors its paper names).
    fn step_loss(&mut self, inputs: &StepInputs, clock: StepClock) -> StepOutput;

    /// Updates untrained state (EMA networks, queues, centers) after the optimizer step.
    /// `taken` is None when the step was taken (the host decided; a skipped step does not
    /// call this), or, when the device decided, a float32 scalar on the device, 1 if the
    /// optimizer stepped and 0 if it skipped a non-finite step: the update must then be
    /// applied as if it had not happened where it is 0, without the host reading it.
    fn after_step(&mut self, _clock: StepClock, _taken: Option<&Tensor>) {}

    /// Health numbers that need a look at the weights (e.g. how far an EMA target trails the
    /// online network); computed only when health signals are due.
    fn health_metrics(&self) -> Vec<(String, f64)> {
        Vec::new()
    }

    /// The scalar pretext loss on held-out inputs without dropout (called without
    /// gradients), for the methods whose loss is a language model's held-out cross-entropy;
    /// None for the others, whose loss depends on the batch (negatives, EMA targets) and is
    /// not comparable.
    fn held_out_loss(&self, _inputs: &StepInputs) -> Option<Tensor> {
        None
    }
}

/// A method's `[method.<name>]` settings: their checks, the views they ask for, and the
/// method they build. Object-safe, so that `MethodConfig` hands out the selected method's
/// settings as one `&dyn MethodSettings`.
pub trait MethodSettings {
    /// Checks ranges; the error is (field under `method.<name>`, message).
    fn validate(&self) -> Result<(), (String, String)> {
        Ok(())
    }

    /// How samples become views for this method.
    fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe;

    /// Builds the method: trained parts in `trained`, untrained state in `state`.
    fn build(
        &self,
        trained: &VarStore,
        state: &VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod>;

    /// What the health verdicts need to know about the method, in a run of `total_steps`.
    fn health(&self, _backbone: &BackboneConfig, _total_steps: u64) -> MethodHealth {
        MethodHealth::default()
    }
}

/// What a method tells the health verdicts; pretext-train's `HealthContext` holds the same
/// fields beside the run's sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MethodHealth {
    /// Classes of the pretext task (rotation: 4, jigsaw: permutations), if it has one.
    pub pretext_classes: Option<usize>,
    /// K, the DINO head's output width, when the method is DINO.
    pub dino_output_dim: Option<i64>,
    /// Steps of DINO's teacher-temperature warmup, before which a flat teacher is expected.
    pub dino_warmup_steps: u64,
    /// The loss is expected to fall (not DINO, whose sharpening target moves).
    pub loss_should_fall: bool,
    /// Representation collapse is a failure mode of the method (not of reconstruction or
    /// language modeling).
    pub collapse_possible: bool,
    /// wav2vec 2.0: the quantizer's G·V codebook entries and K, its distractors per masked
    /// frame.
    pub codebook: Option<(i64, usize)>,
}

impl Default for MethodHealth {
    fn default() -> Self {
        MethodHealth {
            pretext_classes: None,
            dino_output_dim: None,
            dino_warmup_steps: 0,
            loss_should_fall: true,
            collapse_possible: true,
            codebook: None,
        }
    }
}

impl MethodHealth {
    /// A language model's: its pretext task picks one token of the vocabulary, and it must
    /// predict tokens, so it cannot collapse (its pooled states are naturally anisotropic).
    pub(crate) fn language_model(backbone: &BackboneConfig) -> MethodHealth {
        MethodHealth {
            pretext_classes: Some(backbone.transformer.vocab_size.max(1) as usize),
            collapse_possible: false,
            ..MethodHealth::default()
        }
    }
}

/// `Ok` when `ok`, else the error `validate` returns for `field`.
pub(crate) fn check(ok: bool, field: &str, message: &str) -> Result<(), (String, String)> {
    if ok {
        Ok(())
    } else {
        Err((field.to_string(), message.to_string()))
    }
}

//! What every method shares with the step loop: what it is built for ([`MethodSetup`]),
//! where the run stands ([`StepClock`]) and what one forward pass gives back
//! ([`StepOutput`]); and the encoder-plus-projector pair several methods build.

use pretext_nn::{Backbone, BackboneConfig, InputSpec};
use tch::{nn, Tensor};

/// An encoder at `root/encoder` and a projection head at `root/projector` over its output:
/// the online network of SimCLR, MoCo and BYOL, and their EMA targets (built the same way in
/// the state store, so the EMA pairs them by name).
pub(crate) fn encoder_and_projector(
    root: &nn::Path,
    input: &InputSpec,
    backbone: &BackboneConfig,
    projector: &pretext_nn::ProjectorConfig,
) -> (Backbone, pretext_nn::Projector) {
    let encoder = Backbone::new(&(root / "encoder"), input, backbone);
    let head = pretext_nn::Projector::new(
        &(root / "projector"),
        pretext_nn::Encoder::dim(&encoder),
        projector,
    );
    (encoder, head)
}

/// What a method is built for: what its encoder reads, how many training samples there are
/// (MoCo sizes its queue by it) and how long the run is (momentum and temperature
/// schedules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodSetup {
    pub input: InputSpec,
    pub image_size: i64,
    pub train_len: usize,
    pub total_steps: u64,
}

/// Where the run stands, for schedules: `step` of `total_steps` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepClock {
    pub step: u64,
    pub total_steps: u64,
}

/// What one forward pass of a method gives the step loop.
#[derive(Debug)]
pub struct StepOutput {
    /// Scalar loss to minimize.
    pub loss: Tensor,
    /// Detached encoder outputs per view of the same images, `[B, D]` each, for the health
    /// signals (one entry when views are not meant to agree, e.g. rotations).
    pub representations: Vec<Tensor>,
    /// Detached outputs of the head the loss compares (projections, DINO logits) for the first
    /// view, `[B, P]`; None for classification pretext tasks. Collapse often shows here first
    /// (BYOL without its predictor keeps varied representations but constant projections).
    pub projections: Option<Tensor>,
    /// Extra method-specific numbers to log (`pretext_accuracy`, `teacher_entropy`, ...).
    pub metrics: Vec<(String, f64)>,
}

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
    pub metrics: Vec<(String, Metric)>,
}

/// A number a method logs. Those computed from the step's tensors stay on the device as
/// scalar tensors until the step is logged, so that the host does not wait for the device
/// in the middle of a step (on a GPU, a read is a synchronization).
#[derive(Debug)]
pub enum Metric {
    /// Known on the host already (a schedule's value, a count the host made).
    Host(f64),
    /// A scalar tensor, read when the step is logged.
    Device(Tensor),
}

impl Metric {
    /// The number (reads it from the device if it is there).
    pub fn value(&self) -> f64 {
        match self {
            Metric::Host(value) => *value,
            Metric::Device(tensor) => tensor.double_value(&[]),
        }
    }
}

impl From<f64> for Metric {
    fn from(value: f64) -> Metric {
        Metric::Host(value)
    }
}

impl From<Tensor> for Metric {
    /// A scalar tensor (detached here: a logged number needs no gradient).
    fn from(tensor: Tensor) -> Metric {
        Metric::Device(tensor.detach())
    }
}

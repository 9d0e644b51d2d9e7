//! The building blocks of wav2vec 2.0 (Baevski et al., "wav2vec 2.0: A Framework for
//! Self-Supervised Learning of Speech Representations", NeurIPS 2020):
//!
//! - [`GumbelQuantizer`] (§2, "Quantization module"): G codebooks of V entries each; a
//!   linear map turns a frame into G·V logits, a hard Gumbel-softmax (straight-through)
//!   picks one entry per codebook, and the G entries are concatenated. Paper: G = 2,
//!   V = 320, τ annealed from 2 to 0.5 by a factor 0.999995 per update
//!   ([`gumbel_temperature`]).
//! - The diversity loss (§3.2, eq. 4): `L_d = (GV − Σ_g exp(H(p̄_g))) / GV`, with p̄_g the
//!   batch-averaged softmax over codebook g's entries (returned by the quantizer).
//! - The contrastive loss (§3.2, eq. 3): for each masked frame t, with context c_t and
//!   quantized target q_t, `L_m = −log( exp(sim(c_t, q_t)/κ) / Σ_{q̃ ∈ Q_t} exp(sim(c_t, q̃)/κ) )`,
//!   where Q_t is q_t plus K distractors drawn from the other masked frames of the same
//!   utterance and sim is the cosine similarity. Paper: K = 100, κ = 0.1
//!   ([`contrastive_loss`], [`contrastive_loss_with_negatives`]; on a GPU the same draw and
//!   loss as tensor ops that never read the mask on the host, [`contrastive_loss_on_device`]).
//!
//! The span masking (§3.1) is drawn on the host with the other augmentations
//! (`pretext_augment::SpanMaskConfig`). Randomness here (Gumbel noise, distractors) comes from
//! libtorch's generator, as in [`crate::patches::random_masking`]: seed it with
//! `tch::manual_seed` (this crate does not depend on `rand`).

pub mod contrastive;
pub mod quantizer;

pub use contrastive::{
    contrastive_loss, contrastive_loss_on_device, contrastive_loss_with_negatives,
    contrastive_loss_with_negatives_on_device, sample_negatives, sample_negatives_on_device,
    MaskedFrame,
};
pub use quantizer::{
    code_perplexity, gumbel_temperature, hard_gumbel_softmax, GumbelQuantizer,
    GumbelQuantizerConfig, Quantized,
};

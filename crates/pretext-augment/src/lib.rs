//! pretext-augment: image augmentations for SimCLR-style views, rotations and jigsaw tiles,
//! BERT's token masking, the marginal corruption of table rows (VIME, SCARF) and wav2vec
//! 2.0's span masking of audio frames; and [`ViewRecipe`], which builds a step's views of a
//! batch of samples on the host ([`HostBatch`]), each sample's draws from its own seeded
//! stream.
//!
//! Every augmentation is a pure function of an [`Image`] (CHW floats in `[0, 1]`) and, where
//! it is random, a caller-seeded `rand::Rng`: the same input and the same rng state give the
//! same output, bit for bit. Semantics follow torchvision's `RandomResizedCrop`,
//! `RandomHorizontalFlip`, `ColorJitter`, `RandomGrayscale`, `GaussianBlur` and
//! `RandomSolarize`; [`ViewConfig`] chains them into one SimCLR view.

mod blur;
mod color;
mod crop;
mod error;
mod flip;
mod host_batch;
mod image;
mod input_normalization;
mod jigsaw;
mod jitter;
mod pipeline;
mod rotate;
mod row_packing;
mod solarize;
mod span_mask;
mod table_corrupt;
mod token_mask;
mod view_params;
mod view_recipe;

pub use blur::{gaussian_blur, gaussian_kernel};
pub use color::{adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, to_grayscale};
pub use crop::{random_resized_crop, resized_crop, sample_crop_box, CropBox};
pub use error::AugmentError;
pub use flip::horizontal_flip;
pub use host_batch::{HostBatch, HostData, HostView, PlannedView, PlannedViews};
pub use image::Image;
pub use input_normalization::{normalize_in_place, INPUT_MEAN, INPUT_STD};
pub use jigsaw::{jigsaw_tiles, maximal_hamming_permutations};
pub use jitter::{color_jitter, Adjustment, ColorJitter, JitterParams};
pub use pipeline::ViewConfig;
pub use rotate::rotate90;
pub use row_packing::pack_rows;
pub use solarize::solarize;
pub use span_mask::{span_mask_from_starts, SpanMaskConfig};
pub use table_corrupt::{corrupt_row, CorruptedRow, CorruptionScheme, MarginalPool};
pub use token_mask::{mask_tokens, MaskedTokens, MaskingConfig, IGNORED_LABEL};
pub use view_params::{ResizeTaps, ViewParams};
pub use view_recipe::{FrameMasking, ViewRecipe};

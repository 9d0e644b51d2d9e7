//! pretext-augment: image augmentations for SimCLR-style views, rotations and jigsaw tiles,
//! BERT's token masking, and the marginal corruption of table rows (VIME, SCARF).
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
mod image;
mod jigsaw;
mod jitter;
mod pipeline;
mod rotate;
mod solarize;
mod table_corrupt;
mod token_mask;

pub use blur::{gaussian_blur, gaussian_kernel};
pub use color::{adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, to_grayscale};
pub use crop::{random_resized_crop, resized_crop, sample_crop_box, CropBox};
pub use error::AugmentError;
pub use flip::horizontal_flip;
pub use image::Image;
pub use jigsaw::{jigsaw_tiles, maximal_hamming_permutations};
pub use jitter::{color_jitter, ColorJitter};
pub use pipeline::ViewConfig;
pub use rotate::rotate90;
pub use solarize::solarize;
pub use table_corrupt::{corrupt_row, CorruptedRow, CorruptionScheme, MarginalPool};
pub use token_mask::{mask_tokens, MaskedTokens, MaskingConfig, IGNORED_LABEL};

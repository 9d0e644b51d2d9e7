//! How samples become network inputs: images as floats in [0, 1], shifted and scaled by fixed
//! constants (pretext-augment's input normalization); token sequences as int64 ids.

pub use pretext_augment::{normalize_in_place, INPUT_MEAN, INPUT_STD};
use pretext_data::{ImageSet, Samples};
use tch::{Device, Tensor};

use crate::views::host_to_device;

/// The un-augmented samples at `indices` as network inputs (to a GPU through pinned memory,
/// without the host waiting: [`host_to_device`]): `[B, C, H, W]` normalized
/// floats, `[B, T]` token ids, `[B, 2W]` packed table rows (`pack_rows`) or `[B, L]`
/// waveforms.
pub fn samples_to_tensor(samples: &Samples, indices: &[usize], device: Device) -> Tensor {
    match samples {
        Samples::Images(set) => images_to_tensor(set, indices, device),
        Samples::Table(set) => {
            let width = set.width();
            let mut packed = Vec::with_capacity(indices.len() * 2 * width);
            for &index in indices {
                packed.extend(pretext_augment::pack_rows(
                    set.row(index),
                    &set.row_missing(index),
                    width,
                ));
            }
            let packed = Tensor::from_slice(&packed).view([indices.len() as i64, 2 * width as i64]);
            host_to_device(packed, device)
        }
        Samples::Audio(set) => host_to_device(
            Tensor::from_slice(&set.gather(indices))
                .view([indices.len() as i64, set.clip_samples as i64]),
            device,
        ),
        Samples::Tokens(set) => {
            let ids: Vec<i64> = indices
                .iter()
                .flat_map(|&index| set.sequence(index).iter().map(|&id| i64::from(id)))
                .collect();
            let ids = Tensor::from_slice(&ids).view([indices.len() as i64, set.seq_len as i64]);
            host_to_device(ids, device)
        }
    }
}

/// The un-augmented images at `indices` as a normalized `[B, C, H, W]` float tensor.
pub fn images_to_tensor(set: &ImageSet, indices: &[usize], device: Device) -> Tensor {
    let mut pixels = Vec::with_capacity(indices.len() * set.image_len());
    for &index in indices {
        pixels.extend(set.image(index).iter().map(|&byte| f32::from(byte) / 255.0));
    }
    normalize_in_place(&mut pixels);
    let pixels = Tensor::from_slice(&pixels).view([
        indices.len() as i64,
        set.channels as i64,
        set.height as i64,
        set.width as i64,
    ]);
    host_to_device(pixels, device)
}

//! Frozen features of a set of images.

use pretext_data::ImageSet;
use pretext_methods::images_to_tensor;
use pretext_nn::Encoder;
use tch::{Device, Tensor};

/// Encodes every image of `set` (eval mode, no gradients) into `[N, D]` on the CPU.
pub fn encode_images(
    encoder: &dyn Encoder,
    set: &ImageSet,
    device: Device,
    batch_size: usize,
) -> Tensor {
    let _guard = tch::no_grad_guard();
    let indices: Vec<usize> = (0..set.len).collect();
    let chunks: Vec<Tensor> = indices
        .chunks(batch_size.max(1))
        .map(|chunk| {
            encoder
                .encode(&images_to_tensor(set, chunk, device), false)
                .to_device(Device::Cpu)
        })
        .collect();
    Tensor::cat(&chunks, 0)
}

/// The normalized pixels themselves as features, `[N, C·H·W]`.
pub fn raw_pixel_features(set: &ImageSet) -> Tensor {
    let indices: Vec<usize> = (0..set.len).collect();
    images_to_tensor(set, &indices, Device::Cpu).flatten(1, -1)
}

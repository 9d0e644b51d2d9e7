//! Views: how raw samples become the inputs of one step. Built on data worker threads as
//! plain floats; every random choice comes from a stream keyed by (run seed, epoch, sample
//! index, view), so a resumed run sees exactly the batches it would have seen.

use pretext_augment::{Image, ViewConfig};
use pretext_data::{rng_stream, ImageSet};
use tch::{Device, Tensor};

use crate::input::normalize_in_place;

/// What a method needs from each sample.
#[derive(Clone, Debug)]
pub enum ViewRecipe {
    /// Two independent augmented views of each image (SimCLR and kin).
    TwoViews(ViewConfig),
}

/// One step's views, ready to be copied to the device: `views[v]` is `[B, C, H, W]` floats.
#[derive(Debug)]
pub struct HostBatch {
    pub step: u64,
    pub epoch: u64,
    pub indices: Vec<usize>,
    pub views: Vec<Vec<f32>>,
    pub channels: usize,
    pub size: usize,
}

/// Tag separating view streams from other streams keyed by the same seed.
const VIEW_STREAM: u64 = 0x5649_4557; // "VIEW"

impl ViewRecipe {
    /// Builds the views of the images at `indices` (normalized network inputs).
    pub fn build(
        &self,
        set: &ImageSet,
        indices: &[usize],
        seed: u64,
        step: u64,
        epoch: u64,
    ) -> HostBatch {
        let ViewRecipe::TwoViews(config) = self;
        let size = set.height;
        let image_len = set.channels * size * size;
        let mut views: Vec<Vec<f32>> = (0..2)
            .map(|_| Vec::with_capacity(indices.len() * image_len))
            .collect();
        for &index in indices {
            let image = Image::from_u8(set.image(index), set.channels, set.height, set.width);
            for (view_index, pixels) in views.iter_mut().enumerate() {
                let mut rng =
                    rng_stream(seed, &[VIEW_STREAM, epoch, index as u64, view_index as u64]);
                let view = config.view(&image, size, &mut rng);
                pixels.extend_from_slice(&view.pixels);
            }
        }
        for pixels in &mut views {
            normalize_in_place(pixels);
        }
        HostBatch {
            step,
            epoch,
            indices: indices.to_vec(),
            views,
            channels: set.channels,
            size,
        }
    }
}

impl HostBatch {
    /// The views as `[B, C, H, W]` tensors on `device`.
    pub fn to_tensors(&self, device: Device) -> Vec<Tensor> {
        let shape = [
            self.indices.len() as i64,
            self.channels as i64,
            self.size as i64,
            self.size as i64,
        ];
        self.views
            .iter()
            .map(|pixels| Tensor::from_slice(pixels).view(shape).to_device(device))
            .collect()
    }
}

//! Views: how raw samples become the inputs of one step. Built on data worker threads as
//! plain floats; every random choice comes from a stream keyed by (run seed, epoch, sample
//! index, view), so a resumed run sees exactly the batches it would have seen.

use std::sync::Arc;

use pretext_augment::{jigsaw_tiles, rotate90, Image, ViewConfig};
use pretext_data::{rng_stream, ImageSet};
use rand::Rng;
use tch::{Device, Tensor};

use crate::input::normalize_in_place;

/// What a method needs from each sample.
#[derive(Clone, Debug)]
pub enum ViewRecipe {
    /// Two independent augmented views of each image (SimCLR, MoCo, BYOL).
    TwoViews(ViewConfig),
    /// DINO's multi-crop: two global views at full size, then `local_crops` small views of
    /// `local_size` pixels, each from its own pipeline.
    MultiCrop {
        global: ViewConfig,
        local: ViewConfig,
        local_crops: usize,
        local_size: usize,
    },
    /// One augmented view, rotated by 0°, 90°, 180° and 270° (four views; the view index is
    /// the label).
    Rotations(ViewConfig),
    /// One augmented view cut into `grid²` tiles shuffled by a permutation drawn from
    /// `permutations`; the permutation's index is the label. Each tile is standardized on its
    /// own (zero mean, unit std per channel), as in the paper, so that tiles cannot be
    /// matched by their brightness.
    Jigsaw {
        view: ViewConfig,
        grid: usize,
        tile_size: usize,
        permutations: Arc<Vec<Vec<u8>>>,
    },
}

/// One step's views, ready to be copied to the device: `views[v]` holds `[B, C, S, S]` floats
/// with `S = sizes[v]`; `targets` holds one label per sample where the pretext task has one.
#[derive(Debug)]
pub struct HostBatch {
    pub step: u64,
    pub epoch: u64,
    pub indices: Vec<usize>,
    pub views: Vec<Vec<f32>>,
    pub sizes: Vec<usize>,
    pub targets: Vec<i64>,
    pub channels: usize,
}

/// The device tensors of one step.
#[derive(Debug)]
pub struct StepInputs {
    /// `[B, C, S, S]` per view.
    pub views: Vec<Tensor>,
    /// `[B]` pretext labels (jigsaw permutation index), when the recipe makes them.
    pub targets: Option<Tensor>,
}

/// Tag separating view streams from other streams keyed by the same seed.
const VIEW_STREAM: u64 = 0x5649_4557; // "VIEW"

impl ViewRecipe {
    /// Number of views per sample and their sizes, for images of `size` pixels.
    pub fn view_sizes(&self, size: usize) -> Vec<usize> {
        match self {
            ViewRecipe::TwoViews(_) => vec![size; 2],
            ViewRecipe::MultiCrop {
                local_crops,
                local_size,
                ..
            } => {
                let mut sizes = vec![size; 2];
                sizes.extend(std::iter::repeat_n(*local_size, *local_crops));
                sizes
            }
            ViewRecipe::Rotations(_) => vec![size; 4],
            ViewRecipe::Jigsaw {
                grid, tile_size, ..
            } => vec![(*tile_size).min(size / grid).max(1); grid * grid],
        }
    }

    /// Builds the views of the images at `indices` (normalized network inputs).
    pub fn build(
        &self,
        set: &ImageSet,
        indices: &[usize],
        seed: u64,
        step: u64,
        epoch: u64,
    ) -> HostBatch {
        let size = set.height;
        let sizes = self.view_sizes(size);
        let mut views: Vec<Vec<f32>> = sizes
            .iter()
            .map(|s| Vec::with_capacity(indices.len() * set.channels * s * s))
            .collect();
        let mut targets = Vec::new();
        for &index in indices {
            let image = Image::from_u8(set.image(index), set.channels, set.height, set.width);
            let stream =
                |view: usize| rng_stream(seed, &[VIEW_STREAM, epoch, index as u64, view as u64]);
            match self {
                ViewRecipe::TwoViews(config) => {
                    for (view, pixels) in views.iter_mut().enumerate() {
                        pixels.extend(config.view(&image, size, &mut stream(view)).pixels);
                    }
                }
                ViewRecipe::MultiCrop { global, local, .. } => {
                    for (view, pixels) in views.iter_mut().enumerate() {
                        let config = if view < 2 { global } else { local };
                        let crop = config.view(&image, sizes[view], &mut stream(view));
                        pixels.extend(crop.pixels);
                    }
                }
                ViewRecipe::Rotations(config) => {
                    let upright = config.view(&image, size, &mut stream(0));
                    for (turns, pixels) in views.iter_mut().enumerate() {
                        pixels.extend(rotate90(&upright, turns).pixels);
                    }
                }
                ViewRecipe::Jigsaw {
                    view,
                    grid,
                    tile_size,
                    permutations,
                } => {
                    let mut rng = stream(0);
                    let augmented = view.view(&image, size, &mut rng);
                    let label = rng.random_range(0..permutations.len());
                    let tiles = jigsaw_tiles(
                        &augmented,
                        *grid,
                        *tile_size,
                        &permutations[label],
                        &mut rng,
                    );
                    for (mut tile, pixels) in tiles.into_iter().zip(views.iter_mut()) {
                        standardize_in_place(&mut tile);
                        pixels.extend(tile.pixels);
                    }
                    targets.push(label as i64);
                }
            }
        }
        if !matches!(self, ViewRecipe::Jigsaw { .. }) {
            for pixels in &mut views {
                normalize_in_place(pixels);
            }
        }
        HostBatch {
            step,
            epoch,
            indices: indices.to_vec(),
            views,
            sizes,
            targets,
            channels: set.channels,
        }
    }
}

/// Each channel of `tile` shifted to mean 0 and scaled to std 1 (a flat channel stays 0).
fn standardize_in_place(tile: &mut Image) {
    let plane_len = tile.plane_len();
    for plane in tile.pixels.chunks_exact_mut(plane_len) {
        let mean = plane.iter().sum::<f32>() / plane_len as f32;
        let variance = plane.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / plane_len as f32;
        let scale = 1.0 / variance.sqrt().max(1e-3);
        for value in plane {
            *value = (*value - mean) * scale;
        }
    }
}

impl HostBatch {
    /// The views and targets as tensors on `device`.
    pub fn to_inputs(&self, device: Device) -> StepInputs {
        let batch = self.indices.len() as i64;
        let views = self
            .views
            .iter()
            .zip(&self.sizes)
            .map(|(pixels, &size)| {
                let shape = [batch, self.channels as i64, size as i64, size as i64];
                Tensor::from_slice(pixels).view(shape).to_device(device)
            })
            .collect();
        let targets =
            (!self.targets.is_empty()).then(|| Tensor::from_slice(&self.targets).to_device(device));
        StepInputs { views, targets }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretext_augment::maximal_hamming_permutations;

    fn tiny_set() -> ImageSet {
        let len = 3;
        let pixels: Vec<u8> = (0..len * 28 * 28).map(|i| (i * 7 % 251) as u8).collect();
        ImageSet {
            pixels: Arc::new(pixels),
            len,
            channels: 1,
            height: 28,
            width: 28,
            labels: None,
            class_names: Vec::new(),
        }
    }

    #[test]
    fn multi_crop_makes_two_global_and_n_local_views_of_their_sizes() {
        let recipe = ViewRecipe::MultiCrop {
            global: ViewConfig::default(),
            local: ViewConfig::default(),
            local_crops: 3,
            local_size: 12,
        };
        let batch = recipe.build(&tiny_set(), &[0, 2], 1, 0, 0);
        assert_eq!(batch.sizes, vec![28, 28, 12, 12, 12]);
        for (pixels, size) in batch.views.iter().zip(&batch.sizes) {
            assert_eq!(pixels.len(), 2 * size * size);
        }
        let inputs = batch.to_inputs(Device::Cpu);
        assert_eq!(inputs.views[4].size(), vec![2, 1, 12, 12]);
        assert!(inputs.targets.is_none());
    }

    #[test]
    fn rotation_views_are_the_same_view_turned() {
        let recipe = ViewRecipe::Rotations(ViewConfig::default());
        let batch = recipe.build(&tiny_set(), &[1], 3, 0, 0);
        let upright = Image::new(1, 28, 28, batch.views[0].clone()).unwrap();
        for turns in 1..4 {
            assert_eq!(rotate90(&upright, turns).pixels, batch.views[turns]);
        }
    }

    #[test]
    fn jigsaw_labels_index_the_permutation_set_and_tiles_are_standardized() {
        let permutations = Arc::new(maximal_hamming_permutations(10, 9).unwrap());
        let recipe = ViewRecipe::Jigsaw {
            view: ViewConfig::default(),
            grid: 3,
            tile_size: 7,
            permutations,
        };
        let batch = recipe.build(&tiny_set(), &[0, 1, 2], 5, 0, 0);
        assert_eq!(batch.sizes, vec![7; 9]);
        assert_eq!(batch.targets.len(), 3);
        assert!(batch.targets.iter().all(|&t| (0..10).contains(&t)));
        let first_tile = &batch.views[0][..49];
        let mean = first_tile.iter().sum::<f32>() / 49.0;
        assert!(mean.abs() < 1e-4, "tile mean {mean}");
        // Same seed, same batch: the stream makes it reproducible.
        let again = recipe.build(&tiny_set(), &[0, 1, 2], 5, 0, 0);
        assert_eq!(again.targets, batch.targets);
        assert_eq!(again.views, batch.views);
    }
}

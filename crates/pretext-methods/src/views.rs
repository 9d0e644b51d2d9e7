//! Views: how raw samples become the inputs of one step. Built on data worker threads as
//! plain floats; every random choice comes from a stream keyed by (run seed, epoch, sample
//! index, view), so a resumed run sees exactly the batches it would have seen.

use std::sync::Arc;

use pretext_augment::{
    corrupt_row, jigsaw_tiles, mask_tokens, rotate90, CorruptionScheme, Image, MarginalPool,
    MaskingConfig, ViewConfig,
};
use pretext_data::{rng_stream, AudioSet, ImageSet, Samples, TableSet, TokenSet};
use pretext_nn::pack_rows;
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
    /// One augmented view (MAE).
    OneView(ViewConfig),
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
        /// Side the tiles are resized to (0 = `tile_size`).
        tile_output: usize,
        /// Standardize each tile on its own (the paper); else the usual input normalization.
        standardize: bool,
        permutations: Arc<Vec<Vec<u8>>>,
    },
    /// BERT's masking of each token sequence: one view `[B, T]` of input ids, and targets
    /// `[B, T]` holding the original id at chosen positions and -100 elsewhere.
    MaskedTokens(MaskingConfig),
    /// The token sequences as they are (causal language modeling shifts them itself).
    Tokens,
    /// A table row and a copy with cells replaced from the columns' marginals (cells of
    /// random training rows): views `[B, 2W]` clean, then corrupted (packed as `pack_rows`),
    /// and targets `[B, W]`, the corruption mask as 0/1 floats (VIME, SCARF).
    Corrupted(CorruptionScheme),
    /// The waveforms as they are, `[B, L]` (wav2vec 2.0 masks its own frames).
    Waveforms,
}

/// Host data of one view or target tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// One tensor of a step, built on a worker thread.
#[derive(Clone, Debug, PartialEq)]
pub struct HostView {
    pub data: HostData,
    pub shape: Vec<i64>,
}

impl HostView {
    fn to_device(&self, device: Device) -> Tensor {
        let tensor = match &self.data {
            HostData::F32(values) => Tensor::from_slice(values),
            HostData::I64(values) => Tensor::from_slice(values),
        };
        tensor.view(self.shape.as_slice()).to_device(device)
    }

    /// The float values (image views).
    pub fn floats(&self) -> &[f32] {
        match &self.data {
            HostData::F32(values) => values,
            HostData::I64(_) => panic!("an integer view has no floats"),
        }
    }
}

/// One step's views, ready to be copied to the device: images `[B, C, S, S]` (floats) or
/// token ids `[B, T]`; `targets` where the pretext task has labels (jigsaw's permutation
/// index `[B]`, masked-token labels `[B, T]`).
#[derive(Debug)]
pub struct HostBatch {
    pub step: u64,
    pub epoch: u64,
    pub indices: Vec<usize>,
    pub views: Vec<HostView>,
    pub targets: Option<HostView>,
}

/// The device tensors of one step.
#[derive(Debug)]
pub struct StepInputs {
    /// `[B, C, S, S]` images or `[B, T]` token ids, per view.
    pub views: Vec<Tensor>,
    /// Pretext labels, when the recipe makes them.
    pub targets: Option<Tensor>,
}

/// Tag separating view streams from other streams keyed by the same seed.
const VIEW_STREAM: u64 = 0x5649_4557; // "VIEW"

impl ViewRecipe {
    /// Whether the recipe reads token sequences.
    pub fn reads_tokens(&self) -> bool {
        matches!(self, ViewRecipe::MaskedTokens(_) | ViewRecipe::Tokens)
    }

    /// Whether the recipe reads table rows.
    pub fn reads_rows(&self) -> bool {
        matches!(self, ViewRecipe::Corrupted(_))
    }

    /// Whether the recipe reads waveforms.
    pub fn reads_audio(&self) -> bool {
        matches!(self, ViewRecipe::Waveforms)
    }

    /// Number of views per sample and their sizes, for images of `size` pixels (one view of
    /// the sequence length for token recipes, of the clip length for waveforms).
    pub fn view_sizes(&self, size: usize) -> Vec<usize> {
        match self {
            ViewRecipe::MaskedTokens(_) | ViewRecipe::Tokens | ViewRecipe::Waveforms => {
                vec![size]
            }
            ViewRecipe::OneView(_) => vec![size],
            ViewRecipe::TwoViews(_) | ViewRecipe::Corrupted(_) => vec![size; 2],
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
                grid,
                tile_size,
                tile_output,
                ..
            } => {
                let side = if *tile_output > 0 {
                    *tile_output
                } else {
                    (*tile_size).min(size / grid).max(1)
                };
                vec![side; grid * grid]
            }
        }
    }

    /// Builds the views of the samples at `indices` (network inputs). Panics when the
    /// samples are of the wrong modality (configs are validated against the data first).
    pub fn build(
        &self,
        samples: &Samples,
        indices: &[usize],
        seed: u64,
        step: u64,
        epoch: u64,
    ) -> HostBatch {
        let (views, targets) = match samples {
            Samples::Images(set) => self.build_images(set, indices, seed, epoch),
            Samples::Tokens(set) => self.build_tokens(set, indices, seed, epoch),
            Samples::Table(set) => self.build_rows(set, indices, seed, epoch),
            Samples::Audio(set) => self.build_waveforms(set, indices),
        };
        HostBatch {
            step,
            epoch,
            indices: indices.to_vec(),
            views,
            targets,
        }
    }

    fn build_waveforms(
        &self,
        set: &AudioSet,
        indices: &[usize],
    ) -> (Vec<HostView>, Option<HostView>) {
        assert!(
            self.reads_audio(),
            "an image, token or table recipe was given waveforms"
        );
        let view = HostView {
            data: HostData::F32(set.gather(indices)),
            shape: vec![indices.len() as i64, set.clip_samples as i64],
        };
        (vec![view], None)
    }

    fn build_rows(
        &self,
        set: &TableSet,
        indices: &[usize],
        seed: u64,
        epoch: u64,
    ) -> (Vec<HostView>, Option<HostView>) {
        let ViewRecipe::Corrupted(scheme) = self else {
            panic!("an image or token recipe was given table rows")
        };
        let width = set.width();
        let pool = MarginalPool {
            values: &set.values,
            width,
        };
        let mut clean = Vec::with_capacity(indices.len() * 2 * width);
        let mut corrupted = Vec::with_capacity(indices.len() * 2 * width);
        let mut masks = Vec::with_capacity(indices.len() * width);
        for &index in indices {
            let (values, missing) = (set.row(index), set.row_missing(index));
            let mut rng = rng_stream(seed, &[VIEW_STREAM, epoch, index as u64, 0]);
            let row = corrupt_row(values, &missing, *scheme, pool, &mut rng);
            clean.extend(pack_rows(values, &missing, width));
            corrupted.extend(pack_rows(&row.values, &row.missing, width));
            masks.extend(row.mask.iter().map(|&m| f32::from(u8::from(m))));
        }
        let batch = indices.len() as i64;
        let view = |data: Vec<f32>| HostView {
            data: HostData::F32(data),
            shape: vec![batch, 2 * width as i64],
        };
        let targets = HostView {
            data: HostData::F32(masks),
            shape: vec![batch, width as i64],
        };
        (vec![view(clean), view(corrupted)], Some(targets))
    }

    fn build_tokens(
        &self,
        set: &TokenSet,
        indices: &[usize],
        seed: u64,
        epoch: u64,
    ) -> (Vec<HostView>, Option<HostView>) {
        let shape = vec![indices.len() as i64, set.seq_len as i64];
        let mut inputs = Vec::with_capacity(indices.len() * set.seq_len);
        let mut labels = Vec::new();
        for &index in indices {
            let sequence = set.sequence(index);
            match self {
                ViewRecipe::MaskedTokens(masking) => {
                    let mut rng = rng_stream(seed, &[VIEW_STREAM, epoch, index as u64, 0]);
                    let mask_id = set.mask_id.expect("validated: the tokenizer has [MASK]");
                    let masked = mask_tokens(
                        sequence,
                        |id| set.is_special(id),
                        mask_id,
                        set.vocab_size,
                        masking,
                        &mut rng,
                    );
                    inputs.extend(masked.inputs);
                    labels.extend(masked.labels);
                }
                ViewRecipe::Tokens => inputs.extend(sequence.iter().map(|&id| i64::from(id))),
                _ => panic!("an image or table recipe was given token sequences"),
            }
        }
        let view = HostView {
            data: HostData::I64(inputs),
            shape: shape.clone(),
        };
        let targets = (!labels.is_empty()).then_some(HostView {
            data: HostData::I64(labels),
            shape,
        });
        (vec![view], targets)
    }

    fn build_images(
        &self,
        set: &ImageSet,
        indices: &[usize],
        seed: u64,
        epoch: u64,
    ) -> (Vec<HostView>, Option<HostView>) {
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
                ViewRecipe::TwoViews(config) | ViewRecipe::OneView(config) => {
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
                ViewRecipe::MaskedTokens(_)
                | ViewRecipe::Tokens
                | ViewRecipe::Corrupted(_)
                | ViewRecipe::Waveforms => {
                    panic!("a token, table or audio recipe was given images")
                }
                ViewRecipe::Jigsaw {
                    view,
                    grid,
                    tile_size,
                    tile_output,
                    standardize,
                    permutations,
                } => {
                    let mut rng = stream(0);
                    let augmented = view.view(&image, size, &mut rng);
                    let label = rng.random_range(0..permutations.len());
                    let tiles = jigsaw_tiles(
                        &augmented,
                        *grid,
                        *tile_size,
                        *tile_output,
                        &permutations[label],
                        &mut rng,
                    );
                    for (mut tile, pixels) in tiles.into_iter().zip(views.iter_mut()) {
                        if *standardize {
                            standardize_in_place(&mut tile);
                        }
                        pixels.extend(tile.pixels);
                    }
                    targets.push(label as i64);
                }
            }
        }
        let standardized = matches!(
            self,
            ViewRecipe::Jigsaw {
                standardize: true,
                ..
            }
        );
        if !standardized {
            for pixels in &mut views {
                normalize_in_place(pixels);
            }
        }
        let batch = indices.len() as i64;
        let views = views
            .into_iter()
            .zip(&sizes)
            .map(|(pixels, &size)| HostView {
                data: HostData::F32(pixels),
                shape: vec![batch, set.channels as i64, size as i64, size as i64],
            })
            .collect();
        let targets = (!targets.is_empty()).then_some(HostView {
            data: HostData::I64(targets),
            shape: vec![batch],
        });
        (views, targets)
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
        StepInputs {
            views: self
                .views
                .iter()
                .map(|view| view.to_device(device))
                .collect(),
            targets: self
                .targets
                .as_ref()
                .map(|targets| targets.to_device(device)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretext_augment::maximal_hamming_permutations;
    use pretext_data::Vocabulary;

    fn tiny_set() -> Samples {
        let len = 3;
        let pixels: Vec<u8> = (0..len * 28 * 28).map(|i| (i * 7 % 251) as u8).collect();
        Samples::Images(ImageSet {
            pixels: Arc::new(pixels),
            len,
            channels: 1,
            height: 28,
            width: 28,
            labels: None,
            class_names: Vec::new(),
        })
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
        let sizes: Vec<i64> = batch.views.iter().map(|v| v.shape[2]).collect();
        assert_eq!(sizes, vec![28, 28, 12, 12, 12]);
        for view in &batch.views {
            assert_eq!(
                view.floats().len() as i64,
                view.shape.iter().product::<i64>()
            );
        }
        let inputs = batch.to_inputs(Device::Cpu);
        assert_eq!(inputs.views[4].size(), vec![2, 1, 12, 12]);
        assert!(inputs.targets.is_none());
    }

    #[test]
    fn rotation_views_are_the_same_view_turned() {
        let recipe = ViewRecipe::Rotations(ViewConfig::default());
        let batch = recipe.build(&tiny_set(), &[1], 3, 0, 0);
        let upright = Image::new(1, 28, 28, batch.views[0].floats().to_vec()).unwrap();
        for turns in 1..4 {
            assert_eq!(
                rotate90(&upright, turns).pixels,
                batch.views[turns].floats()
            );
        }
    }

    #[test]
    fn jigsaw_labels_index_the_permutation_set_and_tiles_are_standardized() {
        let permutations = Arc::new(maximal_hamming_permutations(10, 9).unwrap());
        let recipe = ViewRecipe::Jigsaw {
            view: ViewConfig::default(),
            grid: 3,
            tile_size: 7,
            tile_output: 0,
            standardize: true,
            permutations,
        };
        let batch = recipe.build(&tiny_set(), &[0, 1, 2], 5, 0, 0);
        assert_eq!(batch.views.len(), 9);
        assert_eq!(batch.views[0].shape, vec![3, 1, 7, 7]);
        let Some(HostView {
            data: HostData::I64(targets),
            ..
        }) = &batch.targets
        else {
            panic!("jigsaw makes targets")
        };
        assert_eq!(targets.len(), 3);
        assert!(targets.iter().all(|&t| (0..10).contains(&t)));
        let first_tile = &batch.views[0].floats()[..49];
        let mean = first_tile.iter().sum::<f32>() / 49.0;
        assert!(mean.abs() < 1e-4, "tile mean {mean}");
        // Same seed, same batch: the stream makes it reproducible.
        let again = recipe.build(&tiny_set(), &[0, 1, 2], 5, 0, 0);
        assert_eq!(again.targets, batch.targets);
        assert_eq!(again.views, batch.views);
    }

    #[test]
    fn masked_tokens_give_inputs_and_labels_of_the_sequence_shape() {
        let vocabulary = Vocabulary {
            size: 100,
            pad_id: 0,
            mask_id: Some(4),
            special_ids: vec![0, 1, 2, 3, 4],
        };
        let sequences: Vec<Vec<u32>> = (0..4).map(|i| (5..45).map(|t| t + i).collect()).collect();
        let set = Samples::Tokens(TokenSet::from_sequences(
            &sequences,
            48,
            &vocabulary,
            None,
            vec![],
        ));
        let batch =
            ViewRecipe::MaskedTokens(MaskingConfig::default()).build(&set, &[0, 3], 1, 0, 0);
        assert_eq!(batch.views[0].shape, vec![2, 48]);
        let targets = batch.targets.as_ref().unwrap();
        assert_eq!(targets.shape, vec![2, 48]);
        let HostData::I64(labels) = &targets.data else {
            panic!()
        };
        // Padding (the last 8 positions of each row) is never chosen.
        for row in labels.chunks(48) {
            assert!(row[40..]
                .iter()
                .all(|&l| l == pretext_augment::IGNORED_LABEL));
        }
        let inputs = batch.to_inputs(Device::Cpu);
        assert_eq!(inputs.views[0].kind(), tch::Kind::Int64);
    }
}

//! Views: how raw samples become the inputs of one step. Built on data worker threads as
//! plain host data ([`HostBatch`]); every random choice comes from a stream keyed by (run
//! seed, epoch, sample index, view), so a resumed run sees exactly the batches it would have
//! seen.

use std::sync::Arc;

use pretext_data::{rng_stream, AudioSet, ImageSet, Samples, TableSet, TokenSet};
use rand::Rng;

use crate::host_batch::{HostBatch, HostData, HostView, PlannedView, PlannedViews};
use crate::input_normalization::normalize_in_place;
use crate::{
    corrupt_row, jigsaw_tiles, mask_tokens, pack_rows, rotate90, CorruptionScheme, Image,
    MarginalPool, MaskingConfig, SpanMaskConfig, ViewConfig,
};

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
    /// The waveforms as they are, `[B, L]`, then each clip's span mask over the frames the
    /// encoder makes of it, `[B, T]` (true = masked; wav2vec 2.0 swaps those frames for its
    /// mask embedding), drawn from the clip's view stream.
    Waveforms(FrameMasking),
}

/// How the waveform recipe masks the encoder's frames of each clip.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameMasking {
    pub spans: SpanMaskConfig,
    /// Frames the encoder makes of one clip: known once the backbone and the clip length are
    /// ([`ViewRecipe::with_frames`]).
    pub frames: Option<usize>,
}

impl FrameMasking {
    /// Masking by `spans`, on a frame count told later ([`ViewRecipe::with_frames`]).
    pub fn new(spans: SpanMaskConfig) -> FrameMasking {
        FrameMasking {
            spans,
            frames: None,
        }
    }

    /// The masks `[B, T]` (row-major) of the clips at `indices`, each drawn from the clip's
    /// view stream (run seed, epoch, clip index): the same clip gets the same mask in any
    /// batch. Panics when the frame count is not known yet.
    pub fn masks(&self, seed: u64, epoch: u64, indices: &[usize]) -> Vec<bool> {
        let frames = self
            .frames
            .expect("the waveform recipe is told the encoder's frames per clip (with_frames)");
        let mut masks = Vec::with_capacity(indices.len() * frames);
        for &index in indices {
            let mut rng = rng_stream(seed, &[VIEW_STREAM, epoch, index as u64, 0]);
            masks.extend(self.spans.mask(frames, &mut rng));
        }
        masks
    }
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
        matches!(self, ViewRecipe::Waveforms(_))
    }

    /// The recipe with the number of frames the encoder makes of one clip, for the masks of
    /// a waveform recipe (other recipes are returned as they are).
    pub fn with_frames(self, frames: usize) -> ViewRecipe {
        match self {
            ViewRecipe::Waveforms(masking) => ViewRecipe::Waveforms(FrameMasking {
                frames: Some(frames),
                ..masking
            }),
            recipe => recipe,
        }
    }

    /// Number of views per sample and their sizes, for images of `size` pixels (one view of
    /// the sequence length for token recipes, of the clip length for waveforms).
    pub fn view_sizes(&self, size: usize) -> Vec<usize> {
        match self {
            ViewRecipe::MaskedTokens(_) | ViewRecipe::Tokens | ViewRecipe::Waveforms(_) => {
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
            Samples::Audio(set) => self.build_waveforms(set, indices, seed, epoch),
        };
        HostBatch {
            step,
            epoch,
            indices: indices.to_vec(),
            views,
            targets,
            planned: None,
        }
    }

    /// Whether the device can make this recipe's views (`data.augment = "device"`): the
    /// image recipes of augmented views (two views, multi-crop, one view, rotations).
    /// Jigsaw's tiles, tokens, rows and waveforms are always made on the host.
    pub fn plans_device_views(&self) -> bool {
        matches!(
            self,
            ViewRecipe::TwoViews(_)
                | ViewRecipe::OneView(_)
                | ViewRecipe::MultiCrop { .. }
                | ViewRecipe::Rotations(_)
        )
    }

    /// The batch of the images at `indices` as bytes, with every view's parameters drawn
    /// from the streams [`ViewRecipe::build`] draws them from (run seed, epoch, image, view):
    /// the device applies them (`pretext_methods`' device views). Panics unless
    /// [`ViewRecipe::plans_device_views`] and the samples are images.
    pub fn build_planned(
        &self,
        samples: &Samples,
        indices: &[usize],
        seed: u64,
        step: u64,
        epoch: u64,
    ) -> HostBatch {
        let Samples::Images(set) = samples else {
            panic!("only image views are made on the device")
        };
        let sizes = self.view_sizes(set.height);
        let (configs, rotations): (Vec<&ViewConfig>, bool) = match self {
            ViewRecipe::TwoViews(config) => (vec![config; 2], false),
            ViewRecipe::OneView(config) => (vec![config], false),
            ViewRecipe::Rotations(config) => (vec![config], true),
            ViewRecipe::MultiCrop { global, local, .. } => (
                (0..sizes.len())
                    .map(|view| if view < 2 { global } else { local })
                    .collect(),
                false,
            ),
            _ => panic!("this recipe's views are made on the host"),
        };
        let mut bytes = Vec::with_capacity(indices.len() * set.channels * set.height * set.width);
        for &index in indices {
            bytes.extend_from_slice(set.image(index));
        }
        let views = configs
            .iter()
            .zip(&sizes)
            .enumerate()
            .map(|(view, (config, &size))| PlannedView {
                size,
                params: indices
                    .iter()
                    .map(|&index| {
                        let mut rng =
                            rng_stream(seed, &[VIEW_STREAM, epoch, index as u64, view as u64]);
                        config.draw(set.height, set.width, &mut rng)
                    })
                    .collect(),
            })
            .collect();
        let images = HostView {
            data: HostData::U8(bytes),
            shape: [indices.len(), set.channels, set.height, set.width]
                .map(|side| side as i64)
                .to_vec(),
        };
        HostBatch {
            step,
            epoch,
            indices: indices.to_vec(),
            views: Vec::new(),
            targets: None,
            planned: Some(PlannedViews {
                images,
                views,
                rotations,
            }),
        }
    }

    fn build_waveforms(
        &self,
        set: &AudioSet,
        indices: &[usize],
        seed: u64,
        epoch: u64,
    ) -> (Vec<HostView>, Option<HostView>) {
        let ViewRecipe::Waveforms(masking) = self else {
            panic!("an image, token or table recipe was given waveforms")
        };
        let batch = indices.len() as i64;
        let waveforms = HostView {
            data: HostData::F32(set.gather(indices)),
            shape: vec![batch, set.clip_samples as i64],
        };
        let masks = masking.masks(seed, epoch, indices);
        let frames = masks.len() as i64 / batch.max(1);
        let masks = HostView {
            data: HostData::Bool(masks),
            shape: vec![batch, frames],
        };
        (vec![waveforms, masks], None)
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
                | ViewRecipe::Waveforms(_) => {
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

#[cfg(test)]
mod tests;

//! Image datasets: `ImageSet` (pixels in memory or in a mapped file, labels, class names)
//! and `ImageSplits`.

use std::path::Path;
use std::sync::Arc;

use image::imageops::{self, FilterType};
use image::GrayImage;
use rayon::prelude::*;

use crate::error::DataError;
use crate::store::Store;

/// A set of equally sized `u8` images, optionally labeled.
///
/// Pixels of image `i` are `pixels[i * image_len() .. (i + 1) * image_len()]`, stored
/// channel-major (CHW), each channel row-major.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// `len * channels * height * width` bytes, CHW per image, row-major: in memory, or past
    /// a memory limit (`data.memory_limit_mb`) in a mapped temporary file.
    pub pixels: Arc<Store<u8>>,
    /// Where copies of these images (subsets, resized or RGB copies) go to a mapped file
    /// instead of memory.
    pub memory_limit_bytes: u64,
    /// Number of images.
    pub len: usize,
    /// 1 (grayscale) or 3 (RGB).
    pub channels: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// 0-based class codes, one per image; `< class_names.len()` when class names are known.
    pub labels: Option<Vec<u16>>,
    /// Class names indexed by code; empty when unknown (then `num_classes` = max label + 1).
    pub class_names: Vec<String>,
}

impl ImageSet {
    /// A set held in memory (its copies too): `pixels` as [`ImageSet::pixels`] describes.
    pub fn in_memory(
        pixels: Vec<u8>,
        len: usize,
        channels: usize,
        height: usize,
        width: usize,
    ) -> ImageSet {
        ImageSet {
            pixels: Arc::new(Store::Memory(pixels)),
            memory_limit_bytes: u64::MAX,
            len,
            channels,
            height,
            width,
            labels: None,
            class_names: Vec::new(),
        }
    }

    /// This set with its copies kept under `limit_bytes`, its own pixels moved to a mapped
    /// temporary file when they are in memory and take more.
    pub fn under_memory_limit(self, limit_bytes: u64) -> Result<ImageSet, DataError> {
        let pixels = if !self.pixels.is_mapped() && self.pixels.len() as u64 > limit_bytes {
            Arc::new(Store::build(self.pixels.len(), limit_bytes, |out| {
                out.copy_from_slice(&self.pixels);
                Ok::<_, DataError>(())
            })?)
        } else {
            Arc::clone(&self.pixels)
        };
        Ok(ImageSet {
            pixels,
            memory_limit_bytes: limit_bytes,
            ..self
        })
    }

    /// A new store of `len` bytes under this set's memory limit that `copy` fills.
    fn store_copied(&self, len: usize, copy: impl FnOnce(&mut [u8])) -> Store<u8> {
        Store::copied(len, self.memory_limit_bytes, copy)
    }

    /// The `C*H*W` bytes of image `index`. Panics if `index >= len` (a caller bug).
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.image_len();
        &self.pixels[index * size..(index + 1) * size]
    }

    /// Bytes per image: `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Number of classes: `class_names.len()` when known, else max label + 1; 0 if unlabeled.
    pub fn num_classes(&self) -> usize {
        crate::split::class_count(self.labels.as_deref(), &self.class_names)
    }

    /// A new set holding copies of the images (and labels) at `indices`, in that order.
    /// Panics if an index is out of range (a caller bug).
    pub fn subset(&self, indices: &[usize]) -> ImageSet {
        let size = self.image_len();
        let pixels = self.store_copied(indices.len() * size, |out| {
            for (image, &index) in out.chunks_exact_mut(size.max(1)).zip(indices) {
                image.copy_from_slice(self.image(index));
            }
        });
        ImageSet {
            pixels: Arc::new(pixels),
            memory_limit_bytes: self.memory_limit_bytes,
            len: indices.len(),
            channels: self.channels,
            height: self.height,
            width: self.width,
            labels: self
                .labels
                .as_ref()
                .map(|labels| indices.iter().map(|&index| labels[index]).collect()),
            class_names: self.class_names.clone(),
        }
    }

    /// True when the set has no images.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Checks the invariants: pixel count matches the shape, one label per image, and
    /// every label is below `class_names.len()` when class names are known.
    /// `path` names the source in the error.
    pub fn validate(&self, path: &Path) -> Result<(), DataError> {
        let expected = self.len * self.image_len();
        if self.pixels.len() != expected {
            return Err(DataError::ShapeMismatch {
                path: path.to_path_buf(),
                expected: format!(
                    "{expected} pixel bytes ({} x {}x{}x{})",
                    self.len, self.channels, self.height, self.width
                ),
                found: format!("{} bytes", self.pixels.len()),
            });
        }
        if let Some(labels) = &self.labels {
            if labels.len() != self.len {
                return Err(DataError::ShapeMismatch {
                    path: path.to_path_buf(),
                    expected: format!("{} labels (one per image)", self.len),
                    found: format!("{} labels", labels.len()),
                });
            }
            if !self.class_names.is_empty() {
                let num_classes = self.class_names.len();
                if let Some((index, &label)) = labels
                    .iter()
                    .enumerate()
                    .find(|(_, &label)| usize::from(label) >= num_classes)
                {
                    return Err(DataError::LabelOutOfRange {
                        path: path.to_path_buf(),
                        index,
                        label,
                        num_classes,
                    });
                }
            }
        }
        Ok(())
    }

    /// A copy with every image resized to `height x width` (each channel with
    /// `image::imageops::resize`, `FilterType::Triangle`). Returns a clone when the size
    /// already matches.
    pub fn resized(&self, height: usize, width: usize) -> Result<ImageSet, DataError> {
        if height == self.height && width == self.width {
            return Ok(self.clone());
        }
        let (new_height, new_width) = (
            to_u32(height, "image height")?,
            to_u32(width, "image width")?,
        );
        let (old_height, old_width) = (
            to_u32(self.height, "image height")?,
            to_u32(self.width, "image width")?,
        );
        if height == 0 || width == 0 {
            return Err(DataError::BadOption {
                option: "image_size",
                reason: format!("expected a size >= 1, found {height}x{width}"),
            });
        }
        let plane = self.height * self.width;
        let new_plane = height * width;
        let pixels = Store::build(
            self.len * self.channels * new_plane,
            self.memory_limit_bytes,
            |pixels| {
                if plane > 0 {
                    pixels
                        .par_chunks_mut(new_plane)
                        .zip(self.pixels.par_chunks(plane))
                        .for_each(|(out, input)| {
                            let source = GrayImage::from_raw(old_width, old_height, input.to_vec())
                                .expect("plane length equals width * height");
                            let resized = imageops::resize(
                                &source,
                                new_width,
                                new_height,
                                FilterType::Triangle,
                            );
                            out.copy_from_slice(resized.as_raw());
                        });
                }
                Ok::<_, DataError>(())
            },
        )?;
        Ok(ImageSet {
            pixels: Arc::new(pixels),
            height,
            width,
            ..self.clone()
        })
    }

    /// A 3-channel copy (grayscale replicated into R, G and B); a clone when already RGB.
    pub fn to_rgb(&self) -> ImageSet {
        if self.channels == 3 {
            return self.clone();
        }
        let plane = self.height * self.width;
        let pixels = self.store_copied(self.len * 3 * plane, |out| {
            for (rgb, gray) in out
                .chunks_exact_mut(3 * plane.max(1))
                .zip(self.pixels.chunks_exact(plane.max(1)))
            {
                for channel in rgb.chunks_exact_mut(plane.max(1)) {
                    channel.copy_from_slice(gray);
                }
            }
        });
        ImageSet {
            pixels: Arc::new(pixels),
            channels: 3,
            ..self.clone()
        }
    }
}

fn to_u32(value: usize, option: &'static str) -> Result<u32, DataError> {
    u32::try_from(value).map_err(|_| DataError::BadOption {
        option,
        reason: format!("expected at most {}, found {value}", u32::MAX),
    })
}

/// A dataset with its held-out split.
#[derive(Clone, Debug)]
pub struct ImageSplits {
    /// Human-readable dataset name, e.g. "fashion-mnist (embedded subset)".
    pub name: String,
    /// Training images (for pretraining and fitting probes).
    pub train: ImageSet,
    /// Held-out images (for evaluating probes).
    pub test: ImageSet,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn four_gray_images() -> ImageSet {
        ImageSet {
            labels: Some(vec![0, 2, 1, 2]),
            ..ImageSet::in_memory((0..4 * 6).map(|value| value as u8).collect(), 4, 1, 2, 3)
        }
    }

    #[test]
    fn subset_copies_images_and_labels_in_the_given_order() {
        let set = four_gray_images();
        assert_eq!((set.image_len(), set.num_classes()), (6, 3));
        let picked = set.subset(&[3, 0, 3]);
        assert_eq!(picked.len, 3);
        assert_eq!(picked.image(0), &[18, 19, 20, 21, 22, 23]);
        assert_eq!(picked.image(1), &[0, 1, 2, 3, 4, 5]);
        assert_eq!(picked.labels.as_deref(), Some(&[2u16, 0, 2][..]));
        assert!(set.subset(&[]).is_empty());
    }

    /// Under a limit of 0 bytes every copy — subset, resized, RGB, and the set itself moved
    /// under the limit — is a mapped file holding the bytes of the in-memory copy.
    #[test]
    fn copies_past_the_memory_limit_are_mapped_and_hold_the_same_pixels() {
        let memory = four_gray_images();
        let mapped = four_gray_images().under_memory_limit(0).unwrap();
        assert!(mapped.pixels.is_mapped() && !memory.pixels.is_mapped());
        assert_eq!(mapped.pixels, memory.pixels);
        let copies = |set: &ImageSet| {
            [
                set.subset(&[3, 0, 3]),
                set.resized(5, 4).unwrap(),
                set.to_rgb(),
                set.subset(&[]),
            ]
        };
        for (in_memory, in_file) in copies(&memory).iter().zip(&copies(&mapped)) {
            assert!(!in_memory.pixels.is_mapped());
            assert_eq!(in_file.pixels.is_mapped(), !in_file.is_empty());
            assert_eq!(in_file.pixels, in_memory.pixels);
            assert_eq!(in_file.labels, in_memory.labels);
            assert_eq!(in_file.memory_limit_bytes, 0);
        }
        assert_eq!(
            copies(&mapped)[2].image(1),
            &[6, 7, 8, 9, 10, 11].repeat(3)[..]
        );
    }

    #[test]
    fn num_classes_prefers_class_names_and_is_zero_unlabeled() {
        let mut set = four_gray_images();
        set.class_names = (0..10).map(|class| class.to_string()).collect();
        assert_eq!(set.num_classes(), 10);
        set.labels = None;
        assert_eq!(set.num_classes(), 0);
    }

    #[test]
    fn validate_catches_label_out_of_range_only_with_class_names() {
        let mut set = four_gray_images();
        assert!(set.validate(Path::new("x")).is_ok());
        set.class_names = vec!["a".into(), "b".into()];
        let error = set.validate(Path::new("labels-file")).unwrap_err();
        assert!(matches!(
            error,
            DataError::LabelOutOfRange {
                index: 1,
                label: 2,
                num_classes: 2,
                ..
            }
        ));
        assert!(error.to_string().starts_with("labels-file:"), "{error}");
    }

    #[test]
    fn resized_keeps_constant_images_constant_and_to_rgb_replicates() {
        let set = ImageSet::in_memory([vec![7u8; 4], vec![200u8; 4]].concat(), 2, 1, 2, 2);
        let big = set.resized(5, 4).unwrap();
        assert_eq!((big.height, big.width, big.pixels.len()), (5, 4, 40));
        assert!(big.image(0).iter().all(|&value| value == 7));
        assert!(big.image(1).iter().all(|&value| value == 200));
        let rgb = set.to_rgb();
        assert_eq!(rgb.channels, 3);
        assert_eq!(rgb.image(1), &[200; 12]);
        assert!(matches!(
            set.resized(0, 3),
            Err(DataError::BadOption { .. })
        ));
    }
}

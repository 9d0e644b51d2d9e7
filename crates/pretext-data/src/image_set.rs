//! In-memory image datasets: `ImageSet` (pixels, labels, class names) and `ImageSplits`.

use std::path::Path;
use std::sync::Arc;

use image::imageops::{self, FilterType};
use image::GrayImage;
use rayon::prelude::*;

use crate::error::DataError;

/// A set of equally sized `u8` images, optionally labeled.
///
/// Pixels of image `i` are `pixels[i * image_len() .. (i + 1) * image_len()]`, stored
/// channel-major (CHW), each channel row-major.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// `len * channels * height * width` bytes, CHW per image, row-major.
    pub pixels: Arc<Vec<u8>>,
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
        let mut pixels = Vec::with_capacity(indices.len() * size);
        for &index in indices {
            pixels.extend_from_slice(self.image(index));
        }
        ImageSet {
            pixels: Arc::new(pixels),
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
        let mut pixels = vec![0u8; self.len * self.channels * new_plane];
        if plane > 0 {
            pixels
                .par_chunks_mut(new_plane)
                .zip(self.pixels.par_chunks(plane))
                .for_each(|(out, input)| {
                    let source = GrayImage::from_raw(old_width, old_height, input.to_vec())
                        .expect("plane length equals width * height");
                    let resized =
                        imageops::resize(&source, new_width, new_height, FilterType::Triangle);
                    out.copy_from_slice(resized.as_raw());
                });
        }
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
        let mut pixels = Vec::with_capacity(self.len * 3 * plane);
        for index in 0..self.len {
            let gray = self.image(index);
            for _ in 0..3 {
                pixels.extend_from_slice(gray);
            }
        }
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
            pixels: Arc::new((0..4 * 6).map(|value| value as u8).collect()),
            len: 4,
            channels: 1,
            height: 2,
            width: 3,
            labels: Some(vec![0, 2, 1, 2]),
            class_names: Vec::new(),
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
        let set = ImageSet {
            pixels: Arc::new([vec![7u8; 4], vec![200u8; 4]].concat()),
            len: 2,
            channels: 1,
            height: 2,
            width: 2,
            labels: None,
            class_names: Vec::new(),
        };
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

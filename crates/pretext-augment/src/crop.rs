//! Random resized crop (torchvision `RandomResizedCrop`): pick a box covering a random
//! fraction of the image with a random aspect ratio, then resample it to the output size.
//!
//! Box sampling is torchvision's `get_params`: up to 10 attempts drawing an area uniformly
//! from `scale · H · W` and an aspect ratio (width / height) log-uniformly from `ratio`,
//! rounding width and height half-to-even like Python's `round`; the first box that fits is
//! placed uniformly at random. If none fits, the central crop with the aspect ratio clamped
//! into `ratio` is used. Resampling is bilinear with `align_corners = false` (PyTorch's
//! `upsample_bilinear2d`), without antialiasing.

use rand::Rng;

use crate::image::Image;

/// Attempts at drawing a box before falling back to the central crop (torchvision's 10).
const CROP_ATTEMPTS: usize = 10;

/// A rectangle of the source image, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropBox {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows covered.
    pub height: usize,
    /// Columns covered.
    pub width: usize,
}

/// Crops a random box (see [`sample_crop_box`]) and resizes it bilinearly to
/// `out_height × out_width`. `scale` bounds the box area as a fraction of the image area,
/// `ratio` its aspect ratio (width / height).
pub fn random_resized_crop<R: Rng + ?Sized>(
    img: &Image,
    out_height: usize,
    out_width: usize,
    scale: (f32, f32),
    ratio: (f32, f32),
    rng: &mut R,
) -> Image {
    let crop = sample_crop_box(img.height, img.width, scale, ratio, rng);
    resized_crop(img, crop, out_height, out_width)
}

/// Draws a crop box of a `height × width` image the way torchvision's
/// `RandomResizedCrop.get_params` does (see the module docs).
pub fn sample_crop_box<R: Rng + ?Sized>(
    height: usize,
    width: usize,
    scale: (f32, f32),
    ratio: (f32, f32),
    rng: &mut R,
) -> CropBox {
    let area = (height * width) as f64;
    let (log_ratio_min, log_ratio_max) = (f64::from(ratio.0).ln(), f64::from(ratio.1).ln());
    for _ in 0..CROP_ATTEMPTS {
        let target_area = area * uniform(rng, f64::from(scale.0), f64::from(scale.1));
        let aspect_ratio = uniform(rng, log_ratio_min, log_ratio_max).exp();
        let crop_width = rounded_length((target_area * aspect_ratio).sqrt());
        let crop_height = rounded_length((target_area / aspect_ratio).sqrt());
        if (1..=width).contains(&crop_width) && (1..=height).contains(&crop_height) {
            let top = rng.random_range(0..=height - crop_height);
            let left = rng.random_range(0..=width - crop_width);
            return CropBox {
                top,
                left,
                height: crop_height,
                width: crop_width,
            };
        }
    }
    central_crop_box(height, width, ratio)
}

/// The fallback box: the whole image if its aspect ratio lies in `ratio`, otherwise the
/// largest central box with the nearest allowed ratio.
fn central_crop_box(height: usize, width: usize, ratio: (f32, f32)) -> CropBox {
    let in_ratio = width as f64 / height as f64;
    let (ratio_min, ratio_max) = (
        f64::from(ratio.0.min(ratio.1)),
        f64::from(ratio.0.max(ratio.1)),
    );
    let (crop_height, crop_width) = if in_ratio < ratio_min {
        let crop_height = rounded_length(width as f64 / ratio_min).clamp(1, height.max(1));
        (crop_height, width)
    } else if in_ratio > ratio_max {
        let crop_width = rounded_length(height as f64 * ratio_max).clamp(1, width.max(1));
        (height, crop_width)
    } else {
        (height, width)
    };
    let (crop_height, crop_width) = (crop_height.min(height), crop_width.min(width));
    CropBox {
        top: (height - crop_height) / 2,
        left: (width - crop_width) / 2,
        height: crop_height,
        width: crop_width,
    }
}

/// Resizes `crop` of `img` to `out_height × out_width` with bilinear interpolation,
/// `align_corners = false`: output pixel `d` samples source coordinate
/// `(d + 0.5) · in / out − 0.5` (clamped at 0), edges replicated. A box reaching outside the
/// image is clipped to it; an empty box gives a black image.
pub fn resized_crop(img: &Image, crop: CropBox, out_height: usize, out_width: usize) -> Image {
    let top = crop.top.min(img.height);
    let left = crop.left.min(img.width);
    let crop_height = crop.height.min(img.height - top);
    let crop_width = crop.width.min(img.width - left);
    let mut out = Image::zeros(img.channels, out_height, out_width);
    if crop_height == 0 || crop_width == 0 || out_height == 0 || out_width == 0 {
        return out;
    }
    let row_taps = bilinear_taps(top, crop_height, out_height);
    let column_taps = bilinear_taps(left, crop_width, out_width);
    let out_plane_len = out_height * out_width;
    for channel in 0..img.channels {
        let source = img.plane(channel);
        let target = &mut out.pixels[channel * out_plane_len..(channel + 1) * out_plane_len];
        for (out_row, row_tap) in target.chunks_exact_mut(out_width).zip(&row_taps) {
            let near_row = &source[row_tap.near * img.width..(row_tap.near + 1) * img.width];
            let far_row = &source[row_tap.far * img.width..(row_tap.far + 1) * img.width];
            let (near_weight, far_weight) = (1.0 - row_tap.far_weight, row_tap.far_weight);
            for (value, column_tap) in out_row.iter_mut().zip(&column_taps) {
                let (cn, cf) = (1.0 - column_tap.far_weight, column_tap.far_weight);
                let near = cn * near_row[column_tap.near] + cf * near_row[column_tap.far];
                let far = cn * far_row[column_tap.near] + cf * far_row[column_tap.far];
                *value = (near_weight * near + far_weight * far).clamp(0.0, 1.0);
            }
        }
    }
    out
}

/// The two source indices (absolute, in the full image) and the weight of the far one for
/// one output row or column.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BilinearTap {
    pub(crate) near: usize,
    pub(crate) far: usize,
    pub(crate) far_weight: f32,
}

/// Taps for resampling `in_len` source pixels starting at `offset` to `out_len` pixels,
/// as PyTorch's `area_pixel_compute_source_index` with `align_corners = false`.
pub(crate) fn bilinear_taps(offset: usize, in_len: usize, out_len: usize) -> Vec<BilinearTap> {
    let step = in_len as f32 / out_len as f32;
    (0..out_len)
        .map(|d| {
            let source = ((d as f32 + 0.5) * step - 0.5).max(0.0);
            let near = (source as usize).min(in_len - 1);
            let far = (near + 1).min(in_len - 1);
            let far_weight = source - near as f32;
            BilinearTap {
                near: offset + near,
                far: offset + far,
                far_weight,
            }
        })
        .collect()
}

/// A uniform draw from `[low, high)`; `low` when the interval is empty.
fn uniform<R: Rng + ?Sized>(rng: &mut R, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// Rounds a length half-to-even (Python 3's `round`), negative and NaN to 0.
fn rounded_length(length: f64) -> usize {
    // `as` saturates: NaN and negatives become 0, huge values usize::MAX (rejected by callers).
    length.round_ties_even() as usize
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn ramp(channels: usize, height: usize, width: usize) -> Image {
        let len = channels * height * width;
        let pixels = (0..len).map(|i| i as f32 / len as f32).collect();
        Image::new(channels, height, width, pixels).unwrap()
    }

    #[test]
    fn full_scale_square_crop_at_the_same_size_is_the_identity() {
        let image = ramp(3, 9, 9);
        for seed in 0..20 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let out = random_resized_crop(&image, 9, 9, (1.0, 1.0), (1.0, 1.0), &mut rng);
            assert_eq!((out.channels, out.height, out.width), (3, 9, 9));
            for (found, expected) in out.pixels.iter().zip(&image.pixels) {
                assert!((found - expected).abs() <= 1e-6, "{found} vs {expected}");
            }
        }
    }

    #[test]
    fn upsampling_2x2_to_4x4_matches_hand_computed_bilinear_values() {
        // Along each axis, 2 → 4 samples source coordinates (-0.25→0, 0.25, 0.75, 1.25→edge),
        // so a pair [a, b] becomes [a, 0.75a + 0.25b, 0.25a + 0.75b, b].
        // Source rows [0, 1] and [0.5, 0.25]:
        //   row 0 → [0, 0.25, 0.75, 1]; row 1 → [0.5, 0.4375, 0.3125, 0.25];
        // then blend the rows with the same weights.
        let image = Image::new(1, 2, 2, vec![0.0, 1.0, 0.5, 0.25]).unwrap();
        let whole = CropBox {
            top: 0,
            left: 0,
            height: 2,
            width: 2,
        };
        let out = resized_crop(&image, whole, 4, 4);
        #[rustfmt::skip]
        let expected = [
            0.0,   0.25,     0.75,     1.0,
            0.125, 0.296875, 0.640625, 0.8125,
            0.375, 0.390625, 0.421875, 0.4375,
            0.5,   0.4375,   0.3125,   0.25,
        ];
        for (found, expected) in out.pixels.iter().zip(&expected) {
            assert!(
                (found - expected).abs() <= 1e-6,
                "{:?}\nvs {expected:?}",
                out.pixels
            );
        }
    }

    #[test]
    fn resizing_a_box_to_its_own_size_copies_it() {
        let inner_box = CropBox {
            top: 1,
            left: 2,
            height: 2,
            width: 3,
        };
        let image = ramp(1, 5, 7);
        let out = resized_crop(&image, inner_box, 2, 3);
        let expected: Vec<f32> = (1..3)
            .flat_map(|y| (2..5).map(move |x| (y, x)))
            .map(|(y, x)| image.get(0, y, x))
            .collect();
        assert_eq!(out.pixels, expected);
    }

    #[test]
    fn sampled_boxes_fit_and_respect_scale_and_ratio() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..500 {
            let crop = sample_crop_box(32, 32, (0.2, 1.0), (0.75, 4.0 / 3.0), &mut rng);
            assert!(crop.height >= 1 && crop.width >= 1);
            assert!(crop.top + crop.height <= 32 && crop.left + crop.width <= 32);
            let area = (crop.height * crop.width) as f32 / 1024.0;
            // Rounding each side by up to half a pixel moves the area a little.
            assert!((0.2 - 0.05..=1.0).contains(&area), "{crop:?}");
            let ratio = crop.width as f32 / crop.height as f32;
            assert!(
                (0.75 * 0.85..=4.0 / 3.0 * 1.15).contains(&ratio),
                "{crop:?}"
            );
        }
    }

    #[test]
    fn impossible_ratio_falls_back_to_the_central_crop() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        // A 10x20 image (ratio 2) cannot fit a full-area square: fall back to the central 10x10.
        let crop = sample_crop_box(10, 20, (1.0, 1.0), (1.0, 1.0), &mut rng);
        assert_eq!(
            crop,
            CropBox {
                top: 0,
                left: 5,
                height: 10,
                width: 10
            }
        );
        // A 20x10 image (ratio 0.5) with ratios in [1, 2]: central 10x10.
        let crop = sample_crop_box(20, 10, (1.0, 1.0), (1.0, 2.0), &mut rng);
        assert_eq!(
            crop,
            CropBox {
                top: 5,
                left: 0,
                height: 10,
                width: 10
            }
        );
    }

    #[test]
    fn rounding_is_half_to_even_like_python() {
        assert_eq!(rounded_length(2.5), 2);
        assert_eq!(rounded_length(3.5), 4);
        assert_eq!(rounded_length(-1.0), 0);
        assert_eq!(rounded_length(f64::NAN), 0);
    }

    #[test]
    fn empty_images_and_outputs_do_not_panic() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let empty = Image::zeros(3, 0, 0);
        let out = random_resized_crop(&empty, 4, 4, (0.2, 1.0), (0.75, 1.33), &mut rng);
        assert_eq!(out, Image::zeros(3, 4, 4));
        let out = random_resized_crop(&ramp(1, 4, 4), 0, 0, (0.2, 1.0), (0.75, 1.33), &mut rng);
        assert!(out.pixels.is_empty());
    }
}

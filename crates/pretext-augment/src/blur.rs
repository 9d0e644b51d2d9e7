//! Gaussian blur (torchvision `GaussianBlur` for a given sigma): a separable, normalized
//! Gaussian kernel of odd size `2·⌈3σ⌉ + 1`, shrunk to the largest odd size that fits each
//! image axis, with reflect padding (mirror without repeating the edge: `… 2 1 | 0 1 2 …`).

use crate::image::Image;

/// Blurs every channel with a Gaussian of standard deviation `sigma` pixels. `sigma <= 0`
/// (or not finite) leaves the image unchanged.
pub fn gaussian_blur(img: &Image, sigma: f32) -> Image {
    let row_kernel = gaussian_kernel(sigma, img.height);
    let column_kernel = gaussian_kernel(sigma, img.width);
    if row_kernel.len() <= 1 && column_kernel.len() <= 1 {
        let mut out = img.clone();
        out.clamp_in_place();
        return out;
    }
    let (height, width) = (img.height, img.width);
    let mut out = Image::zeros(img.channels, height, width);
    let mut horizontal = vec![0.0f32; height * width];
    let column_half = column_kernel.len() / 2;
    let mut padded_row = vec![0.0f32; width + 2 * column_half];
    let row_half = row_kernel.len() / 2;
    for channel in 0..img.channels {
        let source = img.plane(channel);
        // Horizontal pass: pad each row by reflection, then convolve.
        for (row, blurred) in source
            .chunks_exact(width)
            .zip(horizontal.chunks_exact_mut(width))
        {
            padded_row[column_half..column_half + width].copy_from_slice(row);
            for offset in 1..=column_half {
                padded_row[column_half - offset] = row[offset];
                padded_row[column_half + width - 1 + offset] = row[width - 1 - offset];
            }
            for (x, value) in blurred.iter_mut().enumerate() {
                let window = &padded_row[x..x + column_kernel.len()];
                *value = window.iter().zip(&column_kernel).map(|(v, w)| v * w).sum();
            }
        }
        // Vertical pass: accumulate whole reflected rows, weighted.
        let plane_len = height * width;
        let target = &mut out.pixels[channel * plane_len..(channel + 1) * plane_len];
        for (y, out_row) in target.chunks_exact_mut(width).enumerate() {
            for (tap, &weight) in row_kernel.iter().enumerate() {
                let source_y = reflect(y as isize + tap as isize - row_half as isize, height);
                let source_row = &horizontal[source_y * width..(source_y + 1) * width];
                for (value, &source_value) in out_row.iter_mut().zip(source_row) {
                    *value += weight * source_value;
                }
            }
            for value in out_row.iter_mut() {
                *value = value.clamp(0.0, 1.0);
            }
        }
    }
    out
}

/// The normalized 1-D Gaussian kernel for `sigma`, of odd size `2·⌈3σ⌉ + 1` capped to the
/// largest odd number `<= max_size` (size 1, `[1.0]`, for `sigma <= 0`, non-finite `sigma`
/// or `max_size <= 1`). Entry `i` is proportional to `exp(-(i - half)² / (2σ²))`.
pub fn gaussian_kernel(sigma: f32, max_size: usize) -> Vec<f32> {
    if !(sigma > 0.0 && sigma.is_finite()) || max_size <= 1 {
        return vec![1.0];
    }
    let largest_odd = if max_size % 2 == 1 {
        max_size
    } else {
        max_size - 1
    };
    let uncapped_half = (3.0 * f64::from(sigma)).ceil().min(usize::MAX as f64 / 4.0) as usize;
    let half = uncapped_half.min(largest_odd / 2);
    let weights: Vec<f64> = (0..=2 * half)
        .map(|i| {
            let distance = (i as f64 - half as f64) / f64::from(sigma);
            (-0.5 * distance * distance).exp()
        })
        .collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| (w / total) as f32).collect()
}

/// Reflects index `i` into `0..len` without repeating the edge (valid for `-len < i < 2·len - 1`).
fn reflect(i: isize, len: usize) -> usize {
    let last = len as isize - 1;
    let mirrored = if i < 0 {
        -i
    } else if i > last {
        2 * last - i
    } else {
        i
    };
    mirrored as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_size_follows_three_sigma_and_is_capped_to_the_image() {
        assert_eq!(gaussian_kernel(1.0, 100).len(), 7);
        assert_eq!(gaussian_kernel(0.5, 100).len(), 5);
        assert_eq!(gaussian_kernel(2.0, 100).len(), 13);
        assert_eq!(gaussian_kernel(2.0, 8).len(), 7);
        assert_eq!(gaussian_kernel(2.0, 9).len(), 9);
        assert_eq!(gaussian_kernel(0.0, 100), vec![1.0]);
        assert_eq!(gaussian_kernel(-1.0, 100), vec![1.0]);
        assert_eq!(gaussian_kernel(1.0, 1), vec![1.0]);
    }

    #[test]
    fn kernel_is_normalized_symmetric_and_gaussian() {
        let kernel = gaussian_kernel(1.0, 100);
        assert!((kernel.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        for i in 0..3 {
            assert_eq!(kernel[i], kernel[6 - i]);
        }
        // Neighbouring weights differ by exp(-1/2) next to the centre.
        assert!((kernel[2] / kernel[3] - (-0.5f32).exp()).abs() < 1e-6);
        assert!((kernel[1] / kernel[3] - (-2.0f32).exp()).abs() < 1e-6);
    }

    #[test]
    fn blur_of_a_constant_image_is_constant() {
        let image = Image::new(3, 6, 5, vec![0.6; 90]).unwrap();
        let blurred = gaussian_blur(&image, 1.5);
        for value in &blurred.pixels {
            assert!((value - 0.6).abs() < 1e-6, "{value}");
        }
    }

    #[test]
    fn blur_of_a_delta_sums_to_one_and_is_symmetric() {
        let mut image = Image::zeros(1, 15, 15);
        image.pixels[7 * 15 + 7] = 1.0;
        let blurred = gaussian_blur(&image, 1.0);
        let total: f32 = blurred.pixels.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "{total}");
        for y in 0..15 {
            for x in 0..15 {
                let value = blurred.get(0, y, x);
                assert_eq!(value, blurred.get(0, 14 - y, x));
                assert_eq!(value, blurred.get(0, y, 14 - x));
                assert_eq!(value, blurred.get(0, x, y));
            }
        }
        // The centre is the product of the 1-D centre weights.
        let kernel = gaussian_kernel(1.0, 15);
        assert!((blurred.get(0, 7, 7) - kernel[3] * kernel[3]).abs() < 1e-7);
        assert!(blurred.get(0, 7, 7) > blurred.get(0, 7, 8));
    }

    #[test]
    fn blur_reflects_at_the_border() {
        // A 1x1x3 row [1, 0, 0] with a 3-tap kernel [a, b, a]: reflect padding copies row[1]
        // to both pads, [0 | 1 0 0 | 0], so the outputs are [b, a, 0].
        let image = Image::new(1, 1, 3, vec![1.0, 0.0, 0.0]).unwrap();
        let kernel = gaussian_kernel(0.3, 3);
        assert_eq!(kernel.len(), 3);
        let blurred = gaussian_blur(&image, 0.3);
        assert_eq!(blurred.pixels, vec![kernel[1], kernel[0], 0.0]);
        // [0, 1, 0]: the centre reflects into both pads, so the edges get 2a.
        let image = Image::new(1, 1, 3, vec![0.0, 1.0, 0.0]).unwrap();
        let blurred = gaussian_blur(&image, 0.3);
        assert_eq!(
            blurred.pixels,
            vec![2.0 * kernel[0], kernel[1], 2.0 * kernel[0]]
        );
    }

    #[test]
    fn zero_sigma_is_the_identity() {
        let image = Image::new(1, 2, 2, vec![0.1, 0.9, 0.4, 0.3]).unwrap();
        assert_eq!(gaussian_blur(&image, 0.0), image);
    }
}

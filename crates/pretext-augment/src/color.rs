//! Pointwise colour adjustments, following torchvision's `functional.adjust_*` on float
//! tensors: each blends the image with a reference (black, the mean gray level, the
//! grayscale image) or rotates hue in HSV, then clamps to `[0, 1]`.
//!
//! Luma is ITU-R 601-2: `L = 0.299 R + 0.587 G + 0.114 B`. Images without exactly 3 channels
//! have no colour: grayscale, saturation and hue leave them unchanged.

use crate::image::Image;

/// ITU-R 601-2 luma weights of red, green and blue.
const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

/// Scales brightness: `x * factor` (a blend with black); 0 gives black, 1 the original.
pub fn adjust_brightness(img: &Image, factor: f32) -> Image {
    let mut out = img.clone();
    adjust_brightness_in_place(&mut out, factor);
    out
}

/// Scales contrast: blends each value with the mean of the grayscale image,
/// `factor * x + (1 - factor) * mean`; 0 gives a flat gray image, 1 the original.
pub fn adjust_contrast(img: &Image, factor: f32) -> Image {
    let mut out = img.clone();
    adjust_contrast_in_place(&mut out, factor);
    out
}

/// Scales saturation: blends each pixel with its luma, `factor * x + (1 - factor) * L`;
/// 0 gives the grayscale image, 1 the original. Identity for 1-channel images.
pub fn adjust_saturation(img: &Image, factor: f32) -> Image {
    let mut out = img.clone();
    adjust_saturation_in_place(&mut out, factor);
    out
}

/// Rotates hue by `shift` turns of the hue circle (`shift` in `[-0.5, 0.5]`; any value works,
/// it wraps) via HSV; saturation and value are kept. Identity for 1-channel images.
pub fn adjust_hue(img: &Image, shift: f32) -> Image {
    let mut out = img.clone();
    adjust_hue_in_place(&mut out, shift);
    out
}

/// Replaces every pixel by its ITU-R 601-2 luma `0.299 R + 0.587 G + 0.114 B`, written to
/// all channels (same channel count out). Identity for 1-channel images.
pub fn to_grayscale(img: &Image) -> Image {
    let mut out = img.clone();
    to_grayscale_in_place(&mut out);
    out
}

/// [`adjust_brightness`] without allocating.
pub(crate) fn adjust_brightness_in_place(img: &mut Image, factor: f32) {
    for value in &mut img.pixels {
        *value = (*value * factor).clamp(0.0, 1.0);
    }
}

/// [`adjust_contrast`] without allocating.
pub(crate) fn adjust_contrast_in_place(img: &mut Image, factor: f32) {
    let mean = mean_gray(img);
    let offset = (1.0 - factor) * mean;
    for value in &mut img.pixels {
        *value = (factor * *value + offset).clamp(0.0, 1.0);
    }
}

/// [`adjust_saturation`] without allocating.
pub(crate) fn adjust_saturation_in_place(img: &mut Image, factor: f32) {
    let Some([red, green, blue]) = rgb_planes_mut(img) else {
        return;
    };
    for ((r, g), b) in red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut()) {
        let gray = (1.0 - factor) * luma(*r, *g, *b);
        *r = (factor * *r + gray).clamp(0.0, 1.0);
        *g = (factor * *g + gray).clamp(0.0, 1.0);
        *b = (factor * *b + gray).clamp(0.0, 1.0);
    }
}

/// [`adjust_hue`] without allocating.
pub(crate) fn adjust_hue_in_place(img: &mut Image, shift: f32) {
    let Some([red, green, blue]) = rgb_planes_mut(img) else {
        return;
    };
    for ((r, g), b) in red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut()) {
        let [hue, saturation, value] = rgb_to_hsv(*r, *g, *b);
        let hue = (hue + shift).rem_euclid(1.0);
        [*r, *g, *b] = hsv_to_rgb(hue, saturation, value).map(|channel| channel.clamp(0.0, 1.0));
    }
}

/// [`to_grayscale`] without allocating.
pub(crate) fn to_grayscale_in_place(img: &mut Image) {
    let Some([red, green, blue]) = rgb_planes_mut(img) else {
        return;
    };
    for ((r, g), b) in red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut()) {
        let gray = luma(*r, *g, *b).clamp(0.0, 1.0);
        (*r, *g, *b) = (gray, gray, gray);
    }
}

fn luma(r: f32, g: f32, b: f32) -> f32 {
    LUMA[0] * r + LUMA[1] * g + LUMA[2] * b
}

/// The mean gray level: mean luma for RGB, mean value otherwise (0 for an empty image).
fn mean_gray(img: &Image) -> f32 {
    if img.pixels.is_empty() {
        return 0.0;
    }
    let (sum, count): (f64, usize) = if img.channels == 3 {
        let (red, green, blue) = (img.plane(0), img.plane(1), img.plane(2));
        let sum = red
            .iter()
            .zip(green)
            .zip(blue)
            .map(|((&r, &g), &b)| f64::from(luma(r, g, b)));
        (sum.sum(), img.plane_len())
    } else {
        (
            img.pixels.iter().map(|&v| f64::from(v)).sum(),
            img.pixels.len(),
        )
    };
    (sum / count as f64) as f32
}

/// The red, green and blue planes, or `None` unless the image has exactly 3 channels.
fn rgb_planes_mut(img: &mut Image) -> Option<[&mut [f32]; 3]> {
    if img.channels != 3 {
        return None;
    }
    let len = img.plane_len();
    let (red, rest) = img.pixels.split_at_mut(len);
    let (green, blue) = rest.split_at_mut(len);
    Some([red, green, blue])
}

/// RGB to (hue in `[0, 1)`, saturation, value), as torchvision's `_rgb2hsv`.
fn rgb_to_hsv(r: f32, g: f32, b: f32) -> [f32; 3] {
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    if chroma == 0.0 {
        return [0.0, 0.0, max];
    }
    let saturation = chroma / max;
    let (rc, gc, bc) = ((max - r) / chroma, (max - g) / chroma, (max - b) / chroma);
    // Sixths of the circle: red at 0, green at 2, blue at 4.
    let sixths = if max == r {
        bc - gc
    } else if max == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    let hue = (sixths / 6.0 + 1.0) % 1.0;
    [hue, saturation, max]
}

/// (hue in `[0, 1)`, saturation, value) to RGB, as torchvision's `_hsv2rgb`.
fn hsv_to_rgb(hue: f32, saturation: f32, value: f32) -> [f32; 3] {
    let sector = (hue * 6.0).floor();
    let fraction = hue * 6.0 - sector;
    let p = (value * (1.0 - saturation)).clamp(0.0, 1.0);
    let q = (value * (1.0 - saturation * fraction)).clamp(0.0, 1.0);
    let t = (value * (1.0 - saturation * (1.0 - fraction))).clamp(0.0, 1.0);
    match (sector as i64).rem_euclid(6) {
        0 => [value, t, p],
        1 => [q, value, p],
        2 => [p, value, t],
        3 => [p, q, value],
        4 => [t, p, value],
        _ => [value, p, q],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x1x2 RGB image: pixel 0 = (0.2, 0.4, 0.6), pixel 1 = (0.8, 0.5, 0.1).
    fn two_pixels() -> Image {
        Image::new(3, 1, 2, vec![0.2, 0.8, 0.4, 0.5, 0.6, 0.1]).unwrap()
    }

    fn assert_close(found: &[f32], expected: &[f32]) {
        assert_eq!(found.len(), expected.len());
        for (i, (f, e)) in found.iter().zip(expected).enumerate() {
            assert!(
                (f - e).abs() < 1e-6,
                "value {i}: found {f}, expected {e}\n{found:?}"
            );
        }
    }

    #[test]
    fn brightness_multiplies_and_clamps() {
        let image = two_pixels();
        assert_close(
            &adjust_brightness(&image, 0.5).pixels,
            &[0.1, 0.4, 0.2, 0.25, 0.3, 0.05],
        );
        assert_close(
            &adjust_brightness(&image, 1.5).pixels,
            &[0.3, 1.0, 0.6, 0.75, 0.9, 0.15],
        );
        assert_close(&adjust_brightness(&image, 0.0).pixels, &[0.0; 6]);
    }

    #[test]
    fn grayscale_uses_itu_601_weights_on_every_channel() {
        // L0 = 0.299*0.2 + 0.587*0.4 + 0.114*0.6 = 0.3630
        // L1 = 0.299*0.8 + 0.587*0.5 + 0.114*0.1 = 0.5441
        let gray = to_grayscale(&two_pixels());
        assert_eq!(gray.channels, 3);
        assert_close(
            &gray.pixels,
            &[0.3630, 0.5441, 0.3630, 0.5441, 0.3630, 0.5441],
        );
        let red = Image::new(3, 1, 1, vec![1.0, 0.0, 0.0]).unwrap();
        assert_close(&to_grayscale(&red).pixels, &[0.299; 3]);
        let green = Image::new(3, 1, 1, vec![0.0, 1.0, 0.0]).unwrap();
        assert_close(&to_grayscale(&green).pixels, &[0.587; 3]);
        let blue = Image::new(3, 1, 1, vec![0.0, 0.0, 1.0]).unwrap();
        assert_close(&to_grayscale(&blue).pixels, &[0.114; 3]);
    }

    #[test]
    fn contrast_blends_with_the_mean_luma() {
        // mean luma = (0.3630 + 0.5441) / 2 = 0.45355; factor 0.5: 0.5 x + 0.226775
        let out = adjust_contrast(&two_pixels(), 0.5);
        let expected = [0.2, 0.8, 0.4, 0.5, 0.6, 0.1].map(|x: f32| 0.5 * x + 0.226775);
        assert_close(&out.pixels, &expected);
        // factor 2: 2x - 0.45355, clamped.
        let out = adjust_contrast(&two_pixels(), 2.0);
        assert_close(&out.pixels, &[0.0, 1.0, 0.34645, 0.54645, 0.74645, 0.0]);
        // factor 0: flat image at the mean luma.
        assert_close(&adjust_contrast(&two_pixels(), 0.0).pixels, &[0.45355; 6]);
    }

    #[test]
    fn contrast_of_a_gray_image_uses_the_mean_value() {
        let image = Image::new(1, 1, 4, vec![0.0, 0.2, 0.4, 1.0]).unwrap();
        // mean 0.4; factor 0.5: 0.5 x + 0.2
        assert_close(&adjust_contrast(&image, 0.5).pixels, &[0.2, 0.3, 0.4, 0.7]);
    }

    #[test]
    fn saturation_blends_each_pixel_with_its_luma() {
        // factor 0.5: 0.5 x + 0.5 L, L = (0.3630, 0.5441)
        let out = adjust_saturation(&two_pixels(), 0.5);
        assert_close(
            &out.pixels,
            &[0.2815, 0.67205, 0.3815, 0.52205, 0.4815, 0.32205],
        );
        // factor 0 is grayscale.
        assert_close(
            &adjust_saturation(&two_pixels(), 0.0).pixels,
            &to_grayscale(&two_pixels()).pixels,
        );
        // factor 2: 2x - L, clamped.
        let out = adjust_saturation(&two_pixels(), 2.0);
        assert_close(&out.pixels, &[0.037, 1.0, 0.437, 0.4559, 0.837, 0.0]);
    }

    #[test]
    fn saturation_and_hue_leave_gray_images_alone() {
        let image = Image::new(1, 2, 2, vec![0.1, 0.5, 0.7, 1.0]).unwrap();
        assert_eq!(adjust_saturation(&image, 0.0), image);
        assert_eq!(adjust_hue(&image, 0.3), image);
        assert_eq!(to_grayscale(&image), image);
    }

    #[test]
    fn hue_shift_of_a_third_turns_red_into_green_and_green_into_blue() {
        let red = Image::new(3, 1, 1, vec![1.0, 0.0, 0.0]).unwrap();
        assert_close(&adjust_hue(&red, 1.0 / 3.0).pixels, &[0.0, 1.0, 0.0]);
        assert_close(&adjust_hue(&red, -1.0 / 3.0).pixels, &[0.0, 0.0, 1.0]);
        let green = Image::new(3, 1, 1, vec![0.0, 1.0, 0.0]).unwrap();
        assert_close(&adjust_hue(&green, 1.0 / 3.0).pixels, &[0.0, 0.0, 1.0]);
        // Half a turn of orange (1, 0.5, 0) is azure (0, 0.5, 1).
        let orange = Image::new(3, 1, 1, vec![1.0, 0.5, 0.0]).unwrap();
        assert_close(&adjust_hue(&orange, 0.5).pixels, &[0.0, 0.5, 1.0]);
    }

    #[test]
    fn hue_shift_zero_and_full_turn_keep_colours() {
        let image = two_pixels();
        assert_close(&adjust_hue(&image, 0.0).pixels, &image.pixels);
        assert_close(&adjust_hue(&image, 1.0).pixels, &image.pixels);
        // Gray pixels have no hue.
        let gray = Image::new(3, 1, 1, vec![0.3, 0.3, 0.3]).unwrap();
        assert_close(&adjust_hue(&gray, 0.25).pixels, &[0.3, 0.3, 0.3]);
    }

    #[test]
    fn hsv_round_trips() {
        for rgb in [
            [0.2, 0.4, 0.6],
            [0.8, 0.5, 0.1],
            [0.9, 0.1, 0.5],
            [0.0, 0.0, 0.0],
            [1.0, 1.0, 0.0],
        ] {
            let [h, s, v] = rgb_to_hsv(rgb[0], rgb[1], rgb[2]);
            assert_close(&hsv_to_rgb(h, s, v), &rgb);
        }
    }
}

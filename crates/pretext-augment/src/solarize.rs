//! Solarization (torchvision `RandomSolarize` without the coin).

use crate::image::Image;

/// Inverts every value at or above `threshold`: `x >= threshold → 1 - x`, others unchanged.
pub fn solarize(img: &Image, threshold: f32) -> Image {
    let mut out = img.clone();
    solarize_in_place(&mut out, threshold);
    out
}

/// [`solarize`] without allocating.
pub(crate) fn solarize_in_place(img: &mut Image, threshold: f32) {
    for value in &mut img.pixels {
        if *value >= threshold {
            *value = 1.0 - *value;
        }
        *value = value.clamp(0.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverts_values_at_or_above_the_threshold() {
        let image = Image::new(1, 1, 5, vec![0.0, 0.25, 0.375, 0.75, 1.0]).unwrap();
        assert_eq!(
            solarize(&image, 0.5).pixels,
            vec![0.0, 0.25, 0.375, 0.25, 0.0]
        );
        // `>=`: a value equal to the threshold is inverted.
        assert_eq!(
            solarize(&image, 0.25).pixels,
            vec![0.0, 0.75, 0.625, 0.25, 0.0]
        );
        assert_eq!(
            solarize(&image, 0.0).pixels,
            vec![1.0, 0.75, 0.625, 0.25, 0.0]
        );
        assert_eq!(solarize(&image, 1.5), image);
    }
}

//! Colour jitter (torchvision `ColorJitter`): draw a brightness, contrast and saturation
//! factor uniformly from `[max(0, 1 - s), 1 + s]` and a hue shift from `[-h, h]`, then apply
//! the four adjustments in a random order. A strength of 0 disables its adjustment (no draw).

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::color::{
    adjust_brightness_in_place, adjust_contrast_in_place, adjust_hue_in_place,
    adjust_saturation_in_place,
};
use crate::image::Image;

/// Strengths of the four colour jitters.
///
/// Defaults are SimCLR's colour distortion at strength `s = 0.5`: brightness, contrast and
/// saturation `0.8 s = 0.4`, hue `0.2 s = 0.1` (see [`ColorJitter::simclr`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColorJitter {
    /// Brightness factor drawn from [max(0, 1 - brightness), 1 + brightness]; 0 disables.
    pub brightness: f32,
    /// Contrast factor drawn from [max(0, 1 - contrast), 1 + contrast]; 0 disables.
    pub contrast: f32,
    /// Saturation factor drawn from [max(0, 1 - saturation), 1 + saturation]; 0 disables.
    pub saturation: f32,
    /// Hue shift drawn from [-hue, hue] turns of the hue circle, hue in [0, 0.5]; 0 disables.
    pub hue: f32,
}

impl Default for ColorJitter {
    fn default() -> Self {
        ColorJitter::simclr(0.5)
    }
}

impl ColorJitter {
    /// SimCLR's colour distortion of strength `s` (paper appendix A):
    /// brightness = contrast = saturation = `0.8 s`, hue = `0.2 s`.
    pub fn simclr(strength: f32) -> ColorJitter {
        ColorJitter {
            brightness: 0.8 * strength,
            contrast: 0.8 * strength,
            saturation: 0.8 * strength,
            hue: 0.2 * strength,
        }
    }

    /// No jitter at all.
    pub fn none() -> ColorJitter {
        ColorJitter {
            brightness: 0.0,
            contrast: 0.0,
            saturation: 0.0,
            hue: 0.0,
        }
    }
}

/// Applies a random colour jitter: factors uniform in `[max(0, 1 - s), 1 + s]` (hue shift
/// uniform in `[-h, h]`), the four adjustments in a random order, as torchvision does.
///
/// Draw order (fixed, so a seeded rng gives a fixed result): the permutation, then the
/// brightness, contrast, saturation and hue draws of the enabled (strength > 0) jitters.
pub fn color_jitter<R: Rng + ?Sized>(img: &Image, jitter: &ColorJitter, rng: &mut R) -> Image {
    let mut out = img.clone();
    color_jitter_in_place(&mut out, jitter, rng);
    out.clamp_in_place();
    out
}

/// One of the four adjustments, for shuffling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adjustment {
    Brightness,
    Contrast,
    Saturation,
    Hue,
}

/// The random choices of one colour jitter: the order of the four adjustments and the
/// factors of the enabled ones (`None`: strength 0, skipped).
#[derive(Clone, Debug, PartialEq)]
pub struct JitterParams {
    pub order: [Adjustment; 4],
    pub brightness: Option<f32>,
    pub contrast: Option<f32>,
    pub saturation: Option<f32>,
    /// Hue shift in turns of the hue circle.
    pub hue: Option<f32>,
}

impl JitterParams {
    /// The factor (or hue shift) of `adjustment`, `None` when it is disabled.
    pub fn factor(&self, adjustment: Adjustment) -> Option<f32> {
        match adjustment {
            Adjustment::Brightness => self.brightness,
            Adjustment::Contrast => self.contrast,
            Adjustment::Saturation => self.saturation,
            Adjustment::Hue => self.hue,
        }
    }
}

/// [`color_jitter`] without allocating.
pub(crate) fn color_jitter_in_place<R: Rng + ?Sized>(
    img: &mut Image,
    jitter: &ColorJitter,
    rng: &mut R,
) {
    apply_jitter_in_place(img, &draw_jitter(jitter, rng));
}

/// Draws a jitter's order and factors: the permutation, then the brightness, contrast,
/// saturation and hue draws of the enabled jitters.
pub(crate) fn draw_jitter<R: Rng + ?Sized>(jitter: &ColorJitter, rng: &mut R) -> JitterParams {
    let mut order = [
        Adjustment::Brightness,
        Adjustment::Contrast,
        Adjustment::Saturation,
        Adjustment::Hue,
    ];
    order.shuffle(rng);
    let brightness = factor_range(jitter.brightness).map(|(low, high)| uniform(rng, low, high));
    let contrast = factor_range(jitter.contrast).map(|(low, high)| uniform(rng, low, high));
    let saturation = factor_range(jitter.saturation).map(|(low, high)| uniform(rng, low, high));
    let hue = (jitter.hue > 0.0).then(|| uniform(rng, -jitter.hue, jitter.hue));
    JitterParams {
        order,
        brightness,
        contrast,
        saturation,
        hue,
    }
}

/// Applies drawn jitter parameters in their order.
pub(crate) fn apply_jitter_in_place(img: &mut Image, params: &JitterParams) {
    for adjustment in params.order {
        match (adjustment, params.factor(adjustment)) {
            (Adjustment::Brightness, Some(factor)) => adjust_brightness_in_place(img, factor),
            (Adjustment::Contrast, Some(factor)) => adjust_contrast_in_place(img, factor),
            (Adjustment::Saturation, Some(factor)) => adjust_saturation_in_place(img, factor),
            (Adjustment::Hue, Some(shift)) => adjust_hue_in_place(img, shift),
            (_, None) => {}
        }
    }
}

/// `[max(0, 1 - strength), 1 + strength]`, or `None` when the jitter is disabled.
fn factor_range(strength: f32) -> Option<(f32, f32)> {
    (strength > 0.0).then(|| ((1.0 - strength).max(0.0), 1.0 + strength))
}

/// A uniform draw from `[low, high)`.
fn uniform<R: Rng + ?Sized>(rng: &mut R, low: f32, high: f32) -> f32 {
    low + (high - low) * rng.random::<f32>()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::color::{adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation};

    fn colourful() -> Image {
        let pixels = (0..3 * 4 * 4)
            .map(|i| ((i * 37) % 48) as f32 / 47.0)
            .collect();
        Image::new(3, 4, 4, pixels).unwrap()
    }

    #[test]
    fn no_jitter_is_the_identity() {
        let image = colourful();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(color_jitter(&image, &ColorJitter::none(), &mut rng), image);
    }

    #[test]
    fn brightness_only_jitter_draws_its_factor_after_the_permutation() {
        let image = colourful();
        let jitter = ColorJitter {
            brightness: 0.4,
            ..ColorJitter::none()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let out = color_jitter(&image, &jitter, &mut rng);
        let mut replay = ChaCha8Rng::seed_from_u64(5);
        let mut order = [0, 1, 2, 3];
        order.shuffle(&mut replay);
        let (low, high) = factor_range(0.4).unwrap();
        let factor = uniform(&mut replay, low, high);
        assert!((0.59..1.41).contains(&factor));
        assert_eq!(out, adjust_brightness(&image, factor));
    }

    #[test]
    fn jitter_applies_the_four_adjustments_in_the_drawn_order() {
        let image = colourful();
        let jitter = ColorJitter::simclr(1.0);
        for seed in 0..10 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let out = color_jitter(&image, &jitter, &mut rng);
            let mut replay = ChaCha8Rng::seed_from_u64(seed);
            let mut order = [0, 1, 2, 3];
            order.shuffle(&mut replay);
            let (low, high) = factor_range(0.8).unwrap();
            let brightness = uniform(&mut replay, low, high);
            let contrast = uniform(&mut replay, low, high);
            let saturation = uniform(&mut replay, low, high);
            let hue = uniform(&mut replay, -0.2, 0.2);
            let mut expected = image.clone();
            for step in order {
                expected = match step {
                    0 => adjust_brightness(&expected, brightness),
                    1 => adjust_contrast(&expected, contrast),
                    2 => adjust_saturation(&expected, saturation),
                    _ => adjust_hue(&expected, hue),
                };
            }
            assert_eq!(out, expected, "seed {seed}");
        }
    }

    #[test]
    fn factor_ranges_follow_torchvision() {
        let (low, high) = factor_range(0.4).unwrap();
        assert!(
            (low - 0.6).abs() < 1e-6 && (high - 1.4).abs() < 1e-6,
            "{low} {high}"
        );
        assert_eq!(factor_range(1.5), Some((0.0, 2.5)));
        assert_eq!(factor_range(0.0), None);
    }
}

//! The SimCLR view pipeline (Chen et al. 2020, "A Simple Framework for Contrastive Learning
//! of Visual Representations", appendix A): random resized crop → horizontal flip → colour
//! jitter → grayscale → Gaussian blur → solarize, each after a coin toss with its probability.
//!
//! Defaults are the paper's CIFAR-10 settings scaled to small (28–32 px) images: crop scale
//! (0.2, 1.0) instead of (0.08, 1.0), which leaves too few pixels of a 28 px image; colour
//! distortion strength s = 0.5 with probability 0.8; grayscale 0.2; no blur (SimCLR drops it
//! on CIFAR); no solarize (a BYOL addition, off here).

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::crop::sample_crop_box;
use crate::error::AugmentError;
use crate::image::Image;
use crate::jitter::{draw_jitter, ColorJitter};
use crate::view_params::ViewParams;

/// Smallest crop area fraction [`ViewConfig::scaled`] extrapolates down to.
const MIN_SCALED_CROP_AREA: f32 = 0.01;
/// Largest strength [`ViewConfig::scaled`] accepts; larger values are clamped to it.
const MAX_STRENGTH: f32 = 10.0;

/// How one augmented view of an image is drawn (SimCLR's augmentation pipeline).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewConfig {
    /// Random resized crop: [min, max] area of the crop as a fraction of the image area,
    /// 0 < min <= max <= 1. SimCLR uses [0.08, 1] on ImageNet; [0.2, 1] suits 28–32 px images.
    pub crop_scale: (f32, f32),
    /// Random resized crop: [min, max] aspect ratio (width / height), drawn log-uniformly.
    pub crop_ratio: (f32, f32),
    /// Probability of a horizontal flip.
    pub flip_probability: f32,
    /// Probability of applying the colour jitter below.
    pub jitter_probability: f32,
    /// Colour jitter strengths (SimCLR's colour distortion at s = 0.5: 0.8 s for brightness,
    /// contrast and saturation, 0.2 s for hue), applied in a random order.
    pub jitter: ColorJitter,
    /// Probability of converting the view to grayscale (ITU-R 601-2 luma, channels kept).
    pub grayscale_probability: f32,
    /// Probability of a Gaussian blur (SimCLR: 0.5 on ImageNet, 0 on CIFAR-10).
    pub blur_probability: f32,
    /// Gaussian blur: [min, max] standard deviation in pixels, drawn uniformly.
    pub blur_sigma: (f32, f32),
    /// Probability of solarizing (inverting values >= the threshold; BYOL uses 0.2 on one view).
    pub solarize_probability: f32,
    /// Solarize threshold in [0, 1].
    pub solarize_threshold: f32,
}

impl Default for ViewConfig {
    fn default() -> Self {
        ViewConfig {
            crop_scale: (0.2, 1.0),
            crop_ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip_probability: 0.5,
            jitter_probability: 0.8,
            jitter: ColorJitter::simclr(0.5),
            grayscale_probability: 0.2,
            blur_probability: 0.0,
            blur_sigma: (0.1, 2.0),
            solarize_probability: 0.0,
            solarize_threshold: 0.5,
        }
    }
}

impl ViewConfig {
    /// Checks every range: probabilities in [0, 1], 0 < crop_scale.0 <= crop_scale.1 <= 1,
    /// 0 < crop_ratio.0 <= crop_ratio.1, jitter strengths >= 0 (hue <= 0.5),
    /// 0 <= blur_sigma.0 <= blur_sigma.1, solarize_threshold in [0, 1]. The error names the
    /// first offending field, what it expected and what it found.
    pub fn validate(&self) -> Result<(), AugmentError> {
        let (scale_min, scale_max) = self.crop_scale;
        if !(scale_min > 0.0 && scale_min <= scale_max && scale_max <= 1.0) {
            return Err(invalid(
                "crop_scale",
                format!("expected [min, max] with 0 < min <= max <= 1, found [{scale_min}, {scale_max}]"),
            ));
        }
        let (ratio_min, ratio_max) = self.crop_ratio;
        if !(ratio_min > 0.0 && ratio_min <= ratio_max && ratio_max.is_finite()) {
            return Err(invalid(
                "crop_ratio",
                format!(
                    "expected aspect ratios [min, max] with 0 < min <= max, found [{ratio_min}, {ratio_max}]"
                ),
            ));
        }
        check_probability("flip_probability", self.flip_probability)?;
        check_probability("jitter_probability", self.jitter_probability)?;
        check_strength("jitter.brightness", self.jitter.brightness)?;
        check_strength("jitter.contrast", self.jitter.contrast)?;
        check_strength("jitter.saturation", self.jitter.saturation)?;
        let hue = self.jitter.hue;
        if !(0.0..=0.5).contains(&hue) {
            return Err(invalid(
                "jitter.hue",
                format!("expected a hue strength in [0, 0.5], found {hue}"),
            ));
        }
        check_probability("grayscale_probability", self.grayscale_probability)?;
        check_probability("blur_probability", self.blur_probability)?;
        let (sigma_min, sigma_max) = self.blur_sigma;
        if !(sigma_min >= 0.0 && sigma_min <= sigma_max && sigma_max.is_finite()) {
            return Err(invalid(
                "blur_sigma",
                format!("expected [min, max] in pixels with 0 <= min <= max, found [{sigma_min}, {sigma_max}]"),
            ));
        }
        check_probability("solarize_probability", self.solarize_probability)?;
        let threshold = self.solarize_threshold;
        if !(0.0..=1.0).contains(&threshold) {
            return Err(invalid(
                "solarize_threshold",
                format!("expected a threshold in [0, 1], found {threshold}"),
            ));
        }
        Ok(())
    }

    /// One random view of `img`, `out_size × out_size`, with as many channels as `img`:
    /// crop → flip → jitter → grayscale → blur → solarize, each with its probability.
    ///
    /// Every step draws its coin from `rng` whether or not it applies (so a seeded rng gives
    /// the same view, bit for bit); the jitter factors and the blur sigma are drawn only when
    /// their step applies. Call [`ViewConfig::validate`] first: out-of-range values do not
    /// panic but give meaningless views.
    pub fn view<R: Rng + ?Sized>(&self, img: &Image, out_size: usize, rng: &mut R) -> Image {
        self.draw(img.height, img.width, rng).apply(img, out_size)
    }

    /// The random choices of one view of a `height × width` image, drawn from `rng` in the
    /// order [`ViewConfig::view`] draws them, before any pixel is touched: the host applies
    /// them with [`ViewParams::apply`], the device with batched tensor ops
    /// (`data.augment = "device"`), so both paths see the same crops and factors.
    pub fn draw<R: Rng + ?Sized>(&self, height: usize, width: usize, rng: &mut R) -> ViewParams {
        let crop = sample_crop_box(height, width, self.crop_scale, self.crop_ratio, rng);
        let flip = coin(rng, self.flip_probability);
        let jitter = match coin(rng, self.jitter_probability) {
            true => Some(draw_jitter(&self.jitter, rng)),
            false => None,
        };
        let grayscale = coin(rng, self.grayscale_probability);
        let blur_sigma = match coin(rng, self.blur_probability) {
            true => {
                let (sigma_min, sigma_max) = self.blur_sigma;
                Some(sigma_min + (sigma_max - sigma_min) * rng.random::<f32>())
            }
            false => None,
        };
        let solarize_threshold =
            coin(rng, self.solarize_probability).then_some(self.solarize_threshold);
        ViewParams {
            crop,
            flip,
            jitter,
            grayscale,
            blur_sigma,
            solarize_threshold,
        }
    }

    /// A copy with every augmentation scaled in strength by `strength` ∈ [0, ∞), for sweeping
    /// augmentation strength (health checks: does the method still learn with weaker or
    /// stronger views?).
    ///
    /// - `0`: identity-like. Crop scale and ratio become (1, 1) (the whole image for square
    ///   inputs, so only resizing remains), every probability 0, jitter strengths and blur
    ///   sigma 0.
    /// - `1`: `self` unchanged.
    /// - in between and beyond: the crop's missing area `1 - scale` and the log aspect ratios
    ///   scale linearly (the crop area bottoms out at 1% of the image, or `crop_scale.0` if
    ///   smaller); probabilities scale linearly, capped at 1; jitter strengths and blur sigma
    ///   scale linearly (hue capped at 0.5). The solarize threshold is kept.
    ///
    /// NaN or negative strengths count as 0; strengths above 10 as 10. A valid config stays
    /// valid.
    pub fn scaled(&self, strength: f32) -> ViewConfig {
        let strength = if strength.is_nan() {
            0.0
        } else {
            strength.clamp(0.0, MAX_STRENGTH)
        };
        let (scale_min, scale_max) = self.crop_scale;
        let area_floor = MIN_SCALED_CROP_AREA.min(scale_min);
        // Written as `x + (1 - strength)(1 - x)` so that strength 1 gives `x` exactly.
        let scaled_scale_min =
            (scale_min + (1.0 - strength) * (1.0 - scale_min)).clamp(area_floor, 1.0);
        let scaled_scale_max =
            (scale_max + (1.0 - strength) * (1.0 - scale_max)).clamp(scaled_scale_min, 1.0);
        let (ratio_min, ratio_max) = self.crop_ratio;
        let probability = |p: f32| (p * strength).clamp(0.0, 1.0);
        ViewConfig {
            crop_scale: (scaled_scale_min, scaled_scale_max),
            crop_ratio: (ratio_min.powf(strength), ratio_max.powf(strength)),
            flip_probability: probability(self.flip_probability),
            jitter_probability: probability(self.jitter_probability),
            jitter: ColorJitter {
                brightness: self.jitter.brightness * strength,
                contrast: self.jitter.contrast * strength,
                saturation: self.jitter.saturation * strength,
                hue: (self.jitter.hue * strength).min(0.5),
            },
            grayscale_probability: probability(self.grayscale_probability),
            blur_probability: probability(self.blur_probability),
            blur_sigma: (self.blur_sigma.0 * strength, self.blur_sigma.1 * strength),
            solarize_probability: probability(self.solarize_probability),
            solarize_threshold: self.solarize_threshold,
        }
    }
}

/// A biased coin: true with probability `probability` (never for 0, always for 1).
fn coin<R: Rng + ?Sized>(rng: &mut R, probability: f32) -> bool {
    rng.random::<f32>() < probability
}

fn invalid(field: &'static str, reason: String) -> AugmentError {
    AugmentError::Invalid { field, reason }
}

fn check_probability(field: &'static str, value: f32) -> Result<(), AugmentError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("expected a probability in [0, 1], found {value}"),
        ))
    }
}

fn check_strength(field: &'static str, value: f32) -> Result<(), AugmentError> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("expected a finite strength >= 0, found {value}"),
        ))
    }
}

//! One view's random choices ([`ViewParams`], drawn by [`crate::ViewConfig::draw`]) and how
//! the host applies them. The device path (`data.augment = "device"`) applies the same
//! parameters to a whole batch with tensor ops; [`ResizeTaps`] gives it the host's
//! bilinear sample positions and weights, so both resample alike.

use crate::blur::gaussian_blur;
use crate::color::to_grayscale_in_place;
use crate::crop::{bilinear_taps, resized_crop, CropBox};
use crate::flip::horizontal_flip_in_place;
use crate::image::Image;
use crate::jitter::{apply_jitter_in_place, JitterParams};
use crate::solarize::solarize_in_place;

/// The random choices of one augmented view, in the order they are applied: crop box,
/// horizontal flip, colour jitter (order and factors), grayscale, blur sigma, solarize.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewParams {
    pub crop: CropBox,
    pub flip: bool,
    pub jitter: Option<JitterParams>,
    pub grayscale: bool,
    pub blur_sigma: Option<f32>,
    /// The solarize threshold when the view is solarized.
    pub solarize_threshold: Option<f32>,
}

impl ViewParams {
    /// The view of `img` these choices make, `out_size × out_size`, clamped to `[0, 1]`.
    pub fn apply(&self, img: &Image, out_size: usize) -> Image {
        let mut view = resized_crop(img, self.crop, out_size, out_size);
        if self.flip {
            horizontal_flip_in_place(&mut view);
        }
        if let Some(jitter) = &self.jitter {
            apply_jitter_in_place(&mut view, jitter);
        }
        if self.grayscale {
            to_grayscale_in_place(&mut view);
        }
        if let Some(sigma) = self.blur_sigma {
            view = gaussian_blur(&view, sigma);
        }
        if let Some(threshold) = self.solarize_threshold {
            solarize_in_place(&mut view, threshold);
        }
        view.clamp_in_place();
        view
    }
}

/// Bilinear resampling of crop boxes along one axis, for a batch: output position `d` of
/// sample `b` (index `b · out + d`) blends source pixels `near` and `far` (absolute
/// indices in the image) with weights `near_weight` and `far_weight`, exactly as
/// [`crate::resized_crop`] does.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResizeTaps {
    pub near: Vec<i64>,
    pub far: Vec<i64>,
    pub near_weight: Vec<f32>,
    pub far_weight: Vec<f32>,
}

impl ResizeTaps {
    /// The row taps (`rows = true`) or column taps of every crop box of an image of
    /// `height × width`, resampled to `out` pixels. A box reaching outside the image is
    /// clipped to it, as the host does; an empty one samples pixel 0 with weight 0.
    pub fn of_crops(
        crops: &[CropBox],
        height: usize,
        width: usize,
        out: usize,
        rows: bool,
    ) -> Self {
        let mut taps = ResizeTaps::default();
        for crop in crops {
            let (offset, length, limit) = match rows {
                true => (crop.top, crop.height, height),
                false => (crop.left, crop.width, width),
            };
            let offset = offset.min(limit);
            let length = length.min(limit - offset);
            if length == 0 {
                taps.near.extend(std::iter::repeat_n(0, out));
                taps.far.extend(std::iter::repeat_n(0, out));
                taps.near_weight.extend(std::iter::repeat_n(0.0, out));
                taps.far_weight.extend(std::iter::repeat_n(0.0, out));
                continue;
            }
            for tap in bilinear_taps(offset, length, out) {
                taps.near.push(tap.near as i64);
                taps.far.push(tap.far as i64);
                taps.near_weight.push(1.0 - tap.far_weight);
                taps.far_weight.push(tap.far_weight);
            }
        }
        taps
    }
}

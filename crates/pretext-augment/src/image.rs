//! The float image every augmentation takes and returns.

use crate::error::AugmentError;

/// A float image, CHW, values in [0, 1].
///
/// `pixels[(c * height + y) * width + x]` is channel `c` at row `y`, column `x`. The
/// augmentations understand 1 (gray) or 3 (RGB) channels; colour operations treat any other
/// count like gray.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Number of channels: 1 (gray) or 3 (RGB).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// `channels * height * width` values, channel-major (CHW).
    pub pixels: Vec<f32>,
}

impl Image {
    /// Wraps CHW `pixels`, checking that there are `channels * height * width` of them.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        pixels: Vec<f32>,
    ) -> Result<Image, AugmentError> {
        let expected = channels * height * width;
        if pixels.len() != expected {
            return Err(AugmentError::Invalid {
                field: "pixels",
                reason: format!(
                    "a {channels}x{height}x{width} image needs {expected} values, found {}",
                    pixels.len()
                ),
            });
        }
        Ok(Image {
            channels,
            height,
            width,
            pixels,
        })
    }

    /// A black image of the given shape.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Image {
        Image {
            channels,
            height,
            width,
            pixels: vec![0.0; channels * height * width],
        }
    }

    /// Converts CHW bytes to floats, dividing by 255.
    ///
    /// # Panics
    /// If `chw.len() != channels * height * width` (a caller bug: the dataset's shape and its
    /// bytes disagree).
    pub fn from_u8(chw: &[u8], channels: usize, height: usize, width: usize) -> Image {
        assert_eq!(
            chw.len(),
            channels * height * width,
            "Image::from_u8: a {channels}x{height}x{width} image needs {} bytes",
            channels * height * width
        );
        let pixels = chw.iter().map(|&byte| f32::from(byte) / 255.0).collect();
        Image {
            channels,
            height,
            width,
            pixels,
        }
    }

    /// The value of channel `c` at row `y`, column `x`.
    ///
    /// # Panics
    /// If the index is outside the image.
    pub fn get(&self, c: usize, y: usize, x: usize) -> f32 {
        assert!(
            c < self.channels && y < self.height && x < self.width,
            "Image::get out of bounds"
        );
        self.pixels[(c * self.height + y) * self.width + x]
    }

    /// Number of pixels in one channel.
    pub fn plane_len(&self) -> usize {
        self.height * self.width
    }

    /// Channel `c` as a row-major `height * width` slice.
    pub fn plane(&self, c: usize) -> &[f32] {
        let len = self.plane_len();
        &self.pixels[c * len..(c + 1) * len]
    }

    /// Clamps every value to `[0, 1]`.
    pub(crate) fn clamp_in_place(&mut self) {
        for value in &mut self.pixels {
            *value = value.clamp(0.0, 1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_u8_divides_by_255_and_get_indexes_chw() {
        let bytes: Vec<u8> = vec![0, 51, 102, 153, 204, 255];
        let image = Image::from_u8(&bytes, 2, 1, 3);
        assert_eq!(image.get(0, 0, 0), 0.0);
        assert_eq!(image.get(0, 0, 1), 0.2);
        assert_eq!(image.get(1, 0, 0), 0.6);
        assert_eq!(image.get(1, 0, 2), 1.0);
        assert_eq!(image.plane(1), &[0.6, 0.8, 1.0]);
    }

    #[test]
    fn new_rejects_wrong_pixel_count() {
        let error = Image::new(3, 2, 2, vec![0.0; 11]).unwrap_err();
        let message = error.to_string();
        assert!(message.starts_with("augment.pixels:"), "{message}");
        assert!(
            message.contains("12") && message.contains("11"),
            "{message}"
        );
        assert!(Image::new(3, 2, 2, vec![0.0; 12]).is_ok());
    }
}

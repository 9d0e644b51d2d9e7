//! The fixed normalization every image view gets before the network sees it: pixels in
//! [0, 1] shifted by [`INPUT_MEAN`] and scaled by [`INPUT_STD`].

/// Subtracted from every pixel in [0, 1] before the network sees it.
pub const INPUT_MEAN: f32 = 0.5;
/// Divides every pixel after the mean is removed.
pub const INPUT_STD: f32 = 0.5;

/// Normalizes plain floats in [0, 1] in place.
pub fn normalize_in_place(pixels: &mut [f32]) {
    for value in pixels {
        *value = (*value - INPUT_MEAN) / INPUT_STD;
    }
}

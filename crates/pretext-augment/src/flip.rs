//! Horizontal flip (torchvision `RandomHorizontalFlip` without the coin, which
//! [`crate::ViewConfig::view`] tosses).

use crate::image::Image;

/// Mirrors the image left to right: column `x` becomes column `width - 1 - x`.
pub fn horizontal_flip(img: &Image) -> Image {
    let mut out = img.clone();
    horizontal_flip_in_place(&mut out);
    out.clamp_in_place();
    out
}

/// [`horizontal_flip`] without allocating.
pub(crate) fn horizontal_flip_in_place(img: &mut Image) {
    if img.width == 0 {
        return;
    }
    for row in img.pixels.chunks_exact_mut(img.width) {
        row.reverse();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_each_row_of_a_1x2x3_image() {
        let image = Image::new(1, 2, 3, vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6]).unwrap();
        let flipped = horizontal_flip(&image);
        assert_eq!(flipped.pixels, vec![0.3, 0.2, 0.1, 0.6, 0.5, 0.4]);
        assert_eq!((flipped.channels, flipped.height, flipped.width), (1, 2, 3));
        assert_eq!(horizontal_flip(&flipped), image);
    }
}

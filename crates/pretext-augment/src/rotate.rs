//! Rotation by multiples of 90° (the pretext task of Gidaris et al., 2018, "Unsupervised
//! Representation Learning by Predicting Image Rotations").

use crate::image::Image;

/// `img` rotated counter-clockwise by `quarter_turns × 90°` (like `torch.rot90(x, k, (H, W))`
/// on a CHW image). Height and width swap for odd turns.
pub fn rotate90(img: &Image, quarter_turns: usize) -> Image {
    let turns = quarter_turns % 4;
    let (height, width) = (img.height, img.width);
    let (out_height, out_width) = if turns % 2 == 1 {
        (width, height)
    } else {
        (height, width)
    };
    let mut out = Image::zeros(img.channels, out_height, out_width);
    for c in 0..img.channels {
        let source = img.plane(c);
        let plane = &mut out.pixels[c * out_height * out_width..(c + 1) * out_height * out_width];
        for y in 0..out_height {
            for x in 0..out_width {
                // The source pixel that lands on (y, x).
                let (sy, sx) = match turns {
                    0 => (y, x),
                    1 => (x, width - 1 - y),
                    2 => (height - 1 - y, width - 1 - x),
                    _ => (height - 1 - x, y),
                };
                plane[y * out_width + x] = source[sy * width + sx];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_by_three() -> Image {
        // 1 2 3
        // 4 5 6
        Image::new(1, 2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap()
    }

    #[test]
    fn quarter_turn_is_counter_clockwise_like_torch_rot90() {
        // torch.rot90([[1,2,3],[4,5,6]]) = [[3,6],[2,5],[1,4]]
        let turned = rotate90(&two_by_three(), 1);
        assert_eq!((turned.height, turned.width), (3, 2));
        assert_eq!(turned.pixels, vec![3.0, 6.0, 2.0, 5.0, 1.0, 4.0]);
        let half = rotate90(&two_by_three(), 2);
        assert_eq!(half.pixels, vec![6.0, 5.0, 4.0, 3.0, 2.0, 1.0]);
        let three = rotate90(&two_by_three(), 3);
        assert_eq!(three.pixels, vec![4.0, 1.0, 5.0, 2.0, 6.0, 3.0]);
    }

    #[test]
    fn four_quarter_turns_are_the_identity() {
        let image = two_by_three();
        let mut turned = image.clone();
        for _ in 0..4 {
            turned = rotate90(&turned, 1);
        }
        assert_eq!(turned, image);
        assert_eq!(rotate90(&image, 4), image);
    }
}

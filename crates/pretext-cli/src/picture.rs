//! Pictures for `pretext reconstruct` and `pretext attention`: which images to show, network
//! inputs back to pixels, heat-map overlays, and a grid of labeled cells written as PNG.

use std::path::Path;

use anyhow::{bail, Context};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use pretext_data::{read_image_files, ImageSet, Samples};
use pretext_methods::{INPUT_MEAN, INPUT_STD};
use pretext_train::{PretrainConfig, RunDir};
use tch::{Kind, Tensor};

use crate::args::PictureArgs;
use crate::run_data::open_for_run;

/// The images `args` asks for, as the run's encoder reads them: the given files resized to
/// the run's image size and channels, or else the first `--count` held-out images.
pub fn chosen_images(
    args: &PictureArgs,
    run: &RunDir,
    config: &PretrainConfig,
) -> anyhow::Result<(pretext_data::Splits, ImageSet)> {
    let data = open_for_run(run, config, args.data.as_deref())?;
    let (Samples::Images(train), Samples::Images(test)) = (&data.train, &data.test) else {
        bail!(
            "{}: this run reads text; the pictures need an image run",
            run.root.display()
        );
    };
    let images = if args.images.is_empty() {
        if args.count == 0 {
            bail!("--count 0: nothing to show; give at least one image");
        }
        let held_out = if test.is_empty() { train } else { test };
        let count = args.count.min(held_out.len);
        held_out.subset(&(0..count).collect::<Vec<_>>())
    } else {
        read_image_files(&args.images, train.channels, train.height)?
    };
    Ok((data, images))
}

/// One network input `[C, H, W]` (normalized as `images_to_tensor` does) as 8-bit RGB; gray
/// images are replicated to the three channels.
pub fn to_rgb(image: &Tensor) -> RgbImage {
    let (channels, height, width) = image.size3().expect("[C, H, W]");
    let pixels = (image.to_device(tch::Device::Cpu).to_kind(Kind::Float) * f64::from(INPUT_STD)
        + f64::from(INPUT_MEAN))
    .clamp(0.0, 1.0)
        * 255.0;
    let values = Vec::<f32>::try_from(pixels.round().flatten(0, -1)).expect("float pixels");
    let plane = (height * width) as usize;
    RgbImage::from_fn(width as u32, height as u32, |x, y| {
        let at = (y * width as u32 + x) as usize;
        let channel = |c: i64| values[(c.min(channels - 1) as usize) * plane + at] as u8;
        Rgb([channel(0), channel(1), channel(2)])
    })
}

/// Viridis at five stops, interpolated linearly: dark purple (0) to yellow (1).
const VIRIDIS: [[f32; 3]; 5] = [
    [68.0, 1.0, 84.0],
    [59.0, 82.0, 139.0],
    [33.0, 145.0, 140.0],
    [94.0, 201.0, 98.0],
    [253.0, 231.0, 37.0],
];

/// The colour of `value` in [0, 1] on the viridis scale (clamped).
pub fn viridis(value: f32) -> Rgb<u8> {
    let position = value.clamp(0.0, 1.0) * (VIRIDIS.len() - 1) as f32;
    let low = (position.floor() as usize).min(VIRIDIS.len() - 2);
    let t = position - low as f32;
    let mix = |c: usize| (VIRIDIS[low][c] * (1.0 - t) + VIRIDIS[low + 1][c] * t).round() as u8;
    Rgb([mix(0), mix(1), mix(2)])
}

/// `heat` `[g, g]` stretched to [0, 1] (its minimum to 0, maximum to 1), resized bilinearly
/// to `base`'s size, coloured with viridis and blended over a gray copy of `base` (60% heat).
pub fn heat_overlay(base: &RgbImage, heat: &Tensor) -> RgbImage {
    let (width, height) = base.dimensions();
    let heat = heat.to_device(tch::Device::Cpu).to_kind(Kind::Float);
    let (low, high) = (heat.min().double_value(&[]), heat.max().double_value(&[]));
    let stretched = (heat - low) / (high - low).max(1e-12);
    let resized = stretched
        .view([1, 1, stretched.size()[0], stretched.size()[1]])
        .upsample_bilinear2d([i64::from(height), i64::from(width)], false, None, None)
        .flatten(0, -1);
    let values = Vec::<f32>::try_from(resized).expect("float heat");
    RgbImage::from_fn(width, height, |x, y| {
        let Rgb([r, g, b]) = *base.get_pixel(x, y);
        let gray = (f32::from(r) + f32::from(g) + f32::from(b)) / 3.0;
        let Rgb(colour) = viridis(values[(y * width + x) as usize]);
        Rgb(colour.map(|c| (0.6 * f32::from(c) + 0.4 * gray).round() as u8))
    })
}

/// A white canvas of `rows` × `cols` equal cells with a margin between them; each cell holds
/// an image drawn `scale` times larger (nearest neighbour, so pixels stay visible).
pub struct Grid {
    canvas: RgbImage,
    cell: (u32, u32),
    scale: u32,
}

/// White space between cells, in output pixels.
const MARGIN: u32 = 4;

impl Grid {
    /// A grid for images of `width` × `height` pixels.
    pub fn new(rows: u32, cols: u32, width: u32, height: u32, scale: u32) -> Grid {
        let scale = scale.max(1);
        let cell = (width * scale, height * scale);
        let size = |count: u32, side: u32| count * side + (count + 1) * MARGIN;
        Grid {
            canvas: RgbImage::from_pixel(
                size(cols, cell.0),
                size(rows, cell.1),
                Rgb([255, 255, 255]),
            ),
            cell,
            scale,
        }
    }

    /// Draws `image` (the grid's image size) into the cell at `row`, `col`.
    pub fn put(&mut self, row: u32, col: u32, image: &RgbImage) {
        let scaled = imageops::resize(
            image,
            image.width() * self.scale,
            image.height() * self.scale,
            FilterType::Nearest,
        );
        let x = MARGIN + col * (self.cell.0 + MARGIN);
        let y = MARGIN + row * (self.cell.1 + MARGIN);
        imageops::replace(&mut self.canvas, &scaled, i64::from(x), i64::from(y));
    }

    /// Writes the grid as PNG to `path`.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        self.canvas
            .save_with_format(path, image::ImageFormat::Png)
            .with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_inputs_come_back_as_their_pixels() {
        // 0 → -1, 1 → 1 after (x − 0.5) / 0.5; gray is replicated to RGB.
        let image = Tensor::from_slice(&[-1f32, 1.0, 0.0, 3.0]).view([1, 2, 2]);
        let rgb = to_rgb(&image);
        assert_eq!(rgb.get_pixel(0, 0), &Rgb([0, 0, 0]));
        assert_eq!(rgb.get_pixel(1, 0), &Rgb([255, 255, 255]));
        assert_eq!(rgb.get_pixel(0, 1), &Rgb([128, 128, 128]));
        assert_eq!(rgb.get_pixel(1, 1), &Rgb([255, 255, 255]), "clamped");
    }

    #[test]
    fn viridis_ends_and_middle() {
        assert_eq!(viridis(0.0), Rgb([68, 1, 84]));
        assert_eq!(viridis(1.0), Rgb([253, 231, 37]));
        assert_eq!(viridis(0.5), Rgb([33, 145, 140]));
        assert_eq!(viridis(-3.0), viridis(0.0));
    }

    #[test]
    fn overlay_is_brightest_where_the_heat_is() {
        let base = RgbImage::from_pixel(8, 8, Rgb([0, 0, 0]));
        let heat = Tensor::from_slice(&[0f32, 0.0, 0.0, 5.0]).view([2, 2]);
        let overlay = heat_overlay(&base, &heat);
        // Bottom-right is the hot cell (yellow on black); top-left is the cold one.
        let hot = overlay.get_pixel(7, 7);
        let cold = overlay.get_pixel(0, 0);
        assert_eq!(hot, &Rgb([152, 139, 22]));
        assert_eq!(cold, &Rgb([41, 1, 50]));
    }

    #[test]
    fn grid_places_scaled_cells_between_margins() {
        let mut grid = Grid::new(2, 3, 2, 2, 3);
        assert_eq!(
            grid.canvas.dimensions(),
            (3 * 6 + 4 * MARGIN, 2 * 6 + 3 * MARGIN)
        );
        grid.put(1, 2, &RgbImage::from_pixel(2, 2, Rgb([9, 9, 9])));
        let (x, y) = (MARGIN + 2 * (6 + MARGIN), MARGIN + (6 + MARGIN));
        assert_eq!(grid.canvas.get_pixel(x, y), &Rgb([9, 9, 9]));
        assert_eq!(grid.canvas.get_pixel(x + 5, y + 5), &Rgb([9, 9, 9]));
        assert_eq!(grid.canvas.get_pixel(x - 1, y), &Rgb([255, 255, 255]));
        assert_eq!(grid.canvas.get_pixel(x + 6, y + 6), &Rgb([255, 255, 255]));
    }
}

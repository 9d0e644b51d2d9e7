//! IDX, PNG and JPEG seeds cut from Fashion-MNIST.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use pretext_data::{read_idx_images, read_idx_labels, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};

use super::writer::Corpus;

fn idx_header(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|word| word.to_be_bytes()).collect()
}

/// IDX files of the first Fashion-MNIST images and labels, and PNG/JPEG images of them.
pub(super) fn idx_and_image_seeds(shared: &Path, corpus: &mut Corpus) -> Result<(), String> {
    let dir = shared.join("vision/fashion-mnist");
    let images = read_idx_images(&dir.join("train-images-idx3-ubyte.gz"), u64::MAX)
        .map_err(|error| error.to_string())?;
    let labels = read_idx_labels(&dir.join("train-labels-idx1-ubyte.gz"))
        .map_err(|error| error.to_string())?;
    let (rows, cols) = (images.height as u32, images.width as u32);
    let images_file = |count: usize| {
        let mut bytes = idx_header(&[IDX_IMAGES_MAGIC, count as u32, rows, cols]);
        bytes.extend_from_slice(&images.pixels[..count * images.height * images.width]);
        bytes
    };
    let mut labels_file = idx_header(&[IDX_LABELS_MAGIC, 16]);
    labels_file.extend_from_slice(&labels[..16]);
    corpus.write("idx", "fashion-16-images-idx3-ubyte", &images_file(16))?;
    corpus.write("idx", "fashion-16-labels-idx1-ubyte", &labels_file)?;
    corpus.write("idx", "fashion-2-images-idx3-ubyte", &images_file(2))?;
    let gzipped = gzip(&images_file(4))?;
    corpus.write("idx", "fashion-4-images-idx3-ubyte.gz", &gzipped)?;

    let gray = |index: usize| {
        GrayImage::from_raw(cols, rows, images.image(index).to_vec()).expect("28x28 pixels")
    };
    let pixel = |index: usize, x: u32, y: u32| gray(index).get_pixel(x, y).0[0];
    let seeds: Vec<(&str, DynamicImage, ImageFormat)> = vec![
        (
            "fashion-0-gray.png",
            DynamicImage::ImageLuma8(gray(0)),
            ImageFormat::Png,
        ),
        (
            "fashion-1-rgb.png",
            DynamicImage::ImageRgb8(ImageBuffer::from_fn(cols, rows, |x, y| {
                let value = pixel(1, x, y);
                Rgb([value, 255 - value, value / 2])
            })),
            ImageFormat::Png,
        ),
        (
            "fashion-2-gray16.png",
            DynamicImage::ImageLuma16(ImageBuffer::from_fn(cols, rows, |x, y| {
                Luma([u16::from(pixel(2, x, y)) * 257])
            })),
            ImageFormat::Png,
        ),
        (
            "fashion-3-gray-alpha.png",
            DynamicImage::ImageLumaA8(ImageBuffer::from_fn(cols, rows, |x, y| {
                let value = pixel(3, x, y);
                LumaA([value, value.saturating_add(64)])
            })),
            ImageFormat::Png,
        ),
        (
            "fashion-4-rgba.png",
            DynamicImage::ImageRgba8(ImageBuffer::from_fn(cols, rows, |x, y| {
                let value = pixel(4, x, y);
                Rgba([value, value / 3, 255 - value, 200])
            })),
            ImageFormat::Png,
        ),
        (
            "fashion-5-gray.jpg",
            DynamicImage::ImageLuma8(gray(5)),
            ImageFormat::Jpeg,
        ),
        (
            "fashion-6-rgb.jpg",
            DynamicImage::ImageRgb8(ImageBuffer::from_fn(cols, rows, |x, y| {
                let value = pixel(6, x, y);
                Rgb([value, value / 2, 255 - value])
            })),
            ImageFormat::Jpeg,
        ),
    ];
    for (name, image, format) in seeds {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .map_err(|error| format!("{name}: {error}"))?;
        corpus.write("image", name, &bytes)?;
    }
    Ok(())
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(bytes)
        .map_err(|error| error.to_string())?;
    encoder.finish().map_err(|error| error.to_string())
}

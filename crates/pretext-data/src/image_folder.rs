//! Folders of PNG/JPEG images: one subfolder per class, or loose images (unlabeled).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::imageops::{self, FilterType};
use image::{DynamicImage, GrayImage, ImageError, ImageFormat, ImageReader, RgbImage};
use rayon::prelude::*;

use crate::error::DataError;
use crate::image_set::ImageSet;
use crate::store::{Store, StoreWriter};

/// File extensions read as images (case-insensitive); other files are skipped.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// About how many bytes of decoded images a folder holds at once besides its store: images
/// are decoded (in parallel) and stored this much at a time.
const DECODED_BYTES_IN_FLIGHT: usize = 16 << 20;
/// At most this many images are decoded at a time.
const MAX_IMAGES_IN_FLIGHT: usize = 1024;

/// One decoded image, reduced to 8-bit grayscale or 8-bit RGB.
enum DecodedImage {
    Gray(GrayImage),
    Rgb(RgbImage),
}

impl DecodedImage {
    fn dimensions(&self) -> (u32, u32) {
        match self {
            DecodedImage::Gray(image) => image.dimensions(),
            DecodedImage::Rgb(image) => image.dimensions(),
        }
    }

    fn is_color(&self) -> bool {
        matches!(self, DecodedImage::Rgb(_))
    }
}

/// Reads a folder of images.
///
/// * With subfolders: each (non-hidden) subfolder is a class; class codes follow the
///   sorted subfolder names, which become `class_names`. Images directly in `dir` are then
///   an error (ambiguous layout). A class subfolder may be empty.
/// * Without subfolders: the images in `dir` form an unlabeled set (`labels` is `None`).
///
/// Images are the files with a png/jpg/jpeg extension (other files are skipped), in order
/// of class, then file name; they are decoded in parallel, a few MB at a time, straight
/// into the set's store: in memory up to `memory_limit_bytes`, else a mapped temporary
/// file, so the process never holds more than that and the images in flight. A file with
/// such an extension that fails to decode is an error naming it. With `size = Some(s)`
/// every image is resized to `s x s` (`image::imageops::resize`, `FilterType::Triangle`);
/// with `None` all images must have the first image's size (a file that fails to decode is
/// reported before one of another size). The set has 1 channel if every image is grayscale
/// (with or without alpha), else 3 (all converted to RGB); alpha is dropped and 16-bit
/// images are scaled to 8 bits. No images at all is [`DataError::EmptyDataset`].
pub fn read_image_folder(
    dir: &Path,
    size: Option<usize>,
    memory_limit_bytes: u64,
) -> Result<ImageSet, DataError> {
    let target = match size {
        None => None,
        Some(size) => Some(image_size(size)?),
    };
    let (subfolders, loose_images) = list_folder(dir)?;
    let (files, labels, class_names) = if subfolders.is_empty() {
        (loose_images, None, Vec::new())
    } else {
        if !loose_images.is_empty() {
            return Err(DataError::UnknownLayout {
                path: dir.to_path_buf(),
                details: format!(
                    "found {} class subfolders and also {} images directly inside (e.g. {}); \
                     expected either class subfolders or loose images",
                    subfolders.len(),
                    loose_images.len(),
                    loose_images[0].display()
                ),
            });
        }
        let mut files = Vec::new();
        let mut labels = Vec::new();
        let mut class_names = Vec::new();
        for (class, subfolder) in subfolders.iter().enumerate() {
            let code = u16::try_from(class).map_err(|_| DataError::UnknownLayout {
                path: dir.to_path_buf(),
                details: format!(
                    "expected at most {} class subfolders, found {}",
                    u16::MAX,
                    subfolders.len()
                ),
            })?;
            let (_, images) = list_folder(subfolder)?;
            labels.extend(std::iter::repeat_n(code, images.len()));
            files.extend(images);
            class_names.push(file_name(subfolder));
        }
        (files, Some(labels), class_names)
    };
    if files.is_empty() {
        return Err(DataError::EmptyDataset {
            path: dir.to_path_buf(),
            details: format!(
                "expected {} files, in class subfolders or directly inside",
                IMAGE_EXTENSIONS.join("/")
            ),
        });
    }

    // The first images decoded tell the size; one per thread, then a few MB at a time.
    let mut in_flight = rayon::current_num_threads();
    let mut stored: Option<StoredImages> = None;
    let mut odd_size: Option<DataError> = None;
    let mut start = 0;
    while start < files.len() {
        let chunk = &files[start..(start + in_flight).min(files.len())];
        let decoded: Vec<DecodedImage> = chunk
            .par_iter()
            .map(|path| decode(path, target))
            .collect::<Result<_, _>>()?;
        // After an image of another size, the rest is decoded only for its errors.
        if odd_size.is_none() {
            let stored = stored.get_or_insert_with(|| {
                StoredImages::new(&decoded, files.len(), memory_limit_bytes)
            });
            let (width, height) = stored.dimensions;
            match decoded
                .iter()
                .position(|image| image.dimensions() != (width, height))
            {
                Some(offset) => {
                    let (found_width, found_height) = decoded[offset].dimensions();
                    odd_size = Some(DataError::ShapeMismatch {
                        path: chunk[offset].clone(),
                        expected: format!(
                            "{width}x{height} (the size of {}; pass an image size to resize)",
                            files[0].display()
                        ),
                        found: format!("{found_width}x{found_height}"),
                    });
                }
                None => stored.push(&decoded)?,
            }
            let image_len = (3 * width as usize * height as usize).max(1);
            in_flight = (DECODED_BYTES_IN_FLIGHT / image_len)
                .clamp(rayon::current_num_threads(), MAX_IMAGES_IN_FLIGHT);
        }
        start += chunk.len();
    }
    if let Some(error) = odd_size {
        return Err(error);
    }
    let stored = stored.expect("files is not empty");
    let (width, height) = stored.dimensions;
    let channels = stored.channels;
    Ok(ImageSet {
        pixels: Arc::new(stored.writer.finish()?),
        memory_limit_bytes,
        len: files.len(),
        channels,
        height: height as usize,
        width: width as usize,
        labels,
        class_names,
    })
}

/// A folder's images stored as they are decoded, in order: with 1 channel while every image
/// so far is gray, with 3 from the first color image on (the gray ones before it replicated
/// into R, G and B, as if the folder's channels had been known from the start).
struct StoredImages {
    writer: StoreWriter<u8>,
    /// Images in the folder.
    total: usize,
    channels: usize,
    /// (width, height) of every image.
    dimensions: (u32, u32),
    limit_bytes: u64,
}

impl StoredImages {
    /// Room for `total` images of the first `decoded` ones' size, with 3 channels when one of
    /// them is in color.
    fn new(decoded: &[DecodedImage], total: usize, limit_bytes: u64) -> StoredImages {
        let dimensions = decoded[0].dimensions();
        let channels = if decoded.iter().any(DecodedImage::is_color) {
            3
        } else {
            1
        };
        let image_len = channels * dimensions.0 as usize * dimensions.1 as usize;
        StoredImages {
            writer: StoreWriter::with_capacity(limit_bytes, total * image_len),
            total,
            channels,
            dimensions,
            limit_bytes,
        }
    }

    /// Appends `decoded` (all of the stored images' size) in CHW order.
    fn push(&mut self, decoded: &[DecodedImage]) -> Result<(), DataError> {
        if self.channels == 1 && decoded.iter().any(DecodedImage::is_color) {
            self.widen_to_rgb()?;
        }
        let channels = self.channels;
        let image_len = channels * self.dimensions.0 as usize * self.dimensions.1 as usize;
        let mut pixels = vec![0u8; decoded.len() * image_len];
        pixels
            .par_chunks_mut(image_len.max(1))
            .zip(decoded.par_iter())
            .for_each(|(out, image)| write_chw(image, channels, out));
        self.writer.extend_from_slice(&pixels)
    }

    /// Rewrites the gray images stored so far with 3 channels.
    fn widen_to_rgb(&mut self) -> Result<(), DataError> {
        let plane = self.dimensions.0 as usize * self.dimensions.1 as usize;
        let widened = StoreWriter::with_capacity(self.limit_bytes, self.total * 3 * plane);
        let gray: Store<u8> = std::mem::replace(&mut self.writer, widened).finish()?;
        for image in gray.chunks_exact(plane.max(1)) {
            for _ in 0..3 {
                self.writer.extend_from_slice(image)?;
            }
        }
        self.channels = 3;
        Ok(())
    }
}

/// Reads the image `files` (PNG/JPEG) as one unlabeled set of `channels` (1 or 3) ×
/// `size` × `size` images, in the given order: each is resized to the square (triangle
/// filter, aspect not kept), color is converted to gray for 1 channel and gray replicated for
/// 3. For showing a model individual pictures; an unreadable file is an error naming it.
pub fn read_image_files(
    files: &[PathBuf],
    channels: usize,
    size: usize,
) -> Result<ImageSet, DataError> {
    if !matches!(channels, 1 | 3) {
        return Err(DataError::BadOption {
            option: "channels",
            reason: format!("expected 1 or 3, found {channels}"),
        });
    }
    let target = image_size(size)?;
    let image_len = channels * size * size;
    let mut pixels = vec![0u8; files.len() * image_len];
    for (path, out) in files.iter().zip(pixels.chunks_mut(image_len)) {
        let decoded = match decode(path, Some(target))? {
            DecodedImage::Rgb(rgb) if channels == 1 => {
                DecodedImage::Gray(DynamicImage::ImageRgb8(rgb).to_luma8())
            }
            decoded => decoded,
        };
        write_chw(&decoded, channels, out);
    }
    Ok(ImageSet::in_memory(
        pixels,
        files.len(),
        channels,
        size,
        size,
    ))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| {
            IMAGE_EXTENSIONS
                .iter()
                .any(|known| extension.eq_ignore_ascii_case(known))
        })
}

/// The non-hidden subfolders and the image files of `dir`, each sorted by name.
fn list_folder(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), DataError> {
    let io_error = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut subfolders = Vec::new();
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let entry = entry.map_err(io_error)?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // Follows symlinks, so linked class folders and images work.
        if path.is_dir() {
            subfolders.push(path);
        } else if is_image_file(&path) {
            images.push(path);
        }
    }
    subfolders.sort();
    images.sort();
    Ok((subfolders, images))
}

/// Decodes one PNG/JPEG image held in memory as a one-image unlabeled set, the way
/// [`read_image_folder`] decodes each file: 1 channel when it is grayscale (with or without
/// alpha, 8 or 16 bits), else 3; resized to `size x size` when `size` is given. `name`
/// stands for the file in errors, and its extension is the format's fallback when the bytes
/// do not reveal it.
pub fn read_image_bytes(
    bytes: &[u8],
    name: &str,
    size: Option<usize>,
) -> Result<ImageSet, DataError> {
    let target = match size {
        None => None,
        Some(size) => Some(image_size(size)?),
    };
    let path = Path::new(name);
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes));
    if let Ok(format) = ImageFormat::from_path(path) {
        reader.set_format(format);
    }
    let decoded = decode_from(reader, path, target)?;
    let (width, height) = decoded.dimensions();
    let channels = match decoded {
        DecodedImage::Gray(_) => 1,
        DecodedImage::Rgb(_) => 3,
    };
    let mut pixels = vec![0u8; channels * height as usize * width as usize];
    write_chw(&decoded, channels, &mut pixels);
    Ok(ImageSet::in_memory(
        pixels,
        1,
        channels,
        height as usize,
        width as usize,
    ))
}

/// `size` as a resize target: 1 to `u32::MAX`.
fn image_size(size: usize) -> Result<u32, DataError> {
    u32::try_from(size)
        .ok()
        .filter(|&size| size > 0)
        .ok_or_else(|| DataError::BadOption {
            option: "image_size",
            reason: format!("expected 1..={}, found {size}", u32::MAX),
        })
}

fn decode(path: &Path, target: Option<u32>) -> Result<DecodedImage, DataError> {
    let reader = ImageReader::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_from(reader, path, target)
}

/// Decodes with the format the content shows (else the reader's, from the extension),
/// reduced to 8-bit gray or RGB and resized to `target x target` when given.
fn decode_from<R: std::io::BufRead + std::io::Seek>(
    reader: ImageReader<R>,
    path: &Path,
    target: Option<u32>,
) -> Result<DecodedImage, DataError> {
    let reader = reader
        .with_guessed_format()
        .map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    // zune-jpeg 0.4 panics on some corrupt JPEG headers (an upsampler assertion on
    // inconsistent sampling factors): such a panic is the decode error of a corrupt file.
    let format = reader.format();
    let image = crate::error::catch_quietly(|| reader.decode())
        .unwrap_or_else(|message| {
            let reason = format!(
                "the {} decoder failed on corrupt data: {message}",
                format.map_or("image", |format| format.extensions_str()[0])
            );
            Err(ImageError::IoError(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                reason,
            )))
        })
        .map_err(|source| DataError::Decode {
            path: path.to_path_buf(),
            source,
        })?;
    let decoded = match image {
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLumaA8(_)
        | DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageLumaA16(_) => DecodedImage::Gray(image.to_luma8()),
        _ => DecodedImage::Rgb(image.to_rgb8()),
    };
    Ok(match (decoded, target) {
        (decoded, None) => decoded,
        (DecodedImage::Gray(image), Some(size)) => {
            DecodedImage::Gray(imageops::resize(&image, size, size, FilterType::Triangle))
        }
        (DecodedImage::Rgb(image), Some(size)) => {
            DecodedImage::Rgb(imageops::resize(&image, size, size, FilterType::Triangle))
        }
    })
}

/// Writes one image into `out` as CHW with `channels` channels (gray is replicated to RGB).
fn write_chw(image: &DecodedImage, channels: usize, out: &mut [u8]) {
    let plane = out.len() / channels;
    match image {
        DecodedImage::Gray(gray) => {
            for channel in 0..channels {
                out[channel * plane..(channel + 1) * plane].copy_from_slice(gray.as_raw());
            }
        }
        DecodedImage::Rgb(rgb) => {
            for (index, pixel) in rgb.as_raw().chunks_exact(3).enumerate() {
                for (channel, &value) in pixel.iter().enumerate() {
                    out[channel * plane + index] = value;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Luma, Rgb, Rgba};

    fn gray(width: u32, height: u32, value: u8) -> GrayImage {
        GrayImage::from_fn(width, height, |x, y| {
            Luma([value.wrapping_add((x + 10 * y) as u8)])
        })
    }

    fn two_class_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let (cats, dogs) = (dir.path().join("cat"), dir.path().join("dog"));
        std::fs::create_dir_all(&cats).unwrap();
        std::fs::create_dir_all(&dogs).unwrap();
        gray(4, 3, 0).save(dogs.join("b.png")).unwrap();
        gray(4, 3, 100).save(dogs.join("a.png")).unwrap();
        RgbImage::from_fn(4, 3, |x, y| Rgb([x as u8, y as u8, 200]))
            .save(cats.join("z.png"))
            .unwrap();
        std::fs::write(cats.join("notes.txt"), "not an image").unwrap();
        dir
    }

    #[test]
    fn gray_and_rgb_mix_gives_three_channels_in_class_then_name_order() {
        let dir = two_class_folder();
        let set = read_image_folder(dir.path(), None, u64::MAX).unwrap();
        assert_eq!((set.len, set.channels, set.height, set.width), (3, 3, 3, 4));
        assert_eq!(set.class_names, vec!["cat", "dog"]);
        assert_eq!(set.labels.as_deref(), Some(&[0u16, 1, 1][..]));
        // cat/z.png: R = x, G = y, B = 200, in CHW planes.
        let cat = set.image(0);
        assert_eq!(&cat[..4], &[0, 1, 2, 3]);
        assert_eq!(&cat[12..16], &[0, 0, 0, 0]);
        assert_eq!(&cat[16..20], &[1, 1, 1, 1]);
        assert!(cat[24..].iter().all(|&value| value == 200));
        // dog/a.png (value 100) comes before dog/b.png; gray replicated into 3 planes.
        let dog_a = set.image(1);
        assert_eq!(dog_a[0], 100);
        assert_eq!(&dog_a[..12], &dog_a[12..24]);
        assert_eq!(set.image(2)[0], 0);
    }

    /// Images are stored a few at a time as they are decoded: a color image after gray ones
    /// already stored widens them to RGB. In memory or past the limit (a mapped file), the
    /// pixels are those of each file decoded alone, gray replicated into R, G and B.
    #[test]
    fn a_late_color_image_widens_the_gray_ones_stored_before_it_in_memory_or_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let (ants, bees) = (dir.path().join("ant"), dir.path().join("bee"));
        std::fs::create_dir_all(&ants).unwrap();
        std::fs::create_dir_all(&bees).unwrap();
        for index in 0..30u8 {
            gray(5, 4, index * 8)
                .save(ants.join(format!("{index:02}.png")))
                .unwrap();
            gray(5, 4, index)
                .save(bees.join(format!("{index:02}.png")))
                .unwrap();
        }
        RgbImage::from_fn(5, 4, |x, y| Rgb([x as u8, y as u8, 77]))
            .save(ants.join("99-color.png"))
            .unwrap();
        let (_, ant_files) = list_folder(&ants).unwrap();
        let (_, bee_files) = list_folder(&bees).unwrap();
        let mut expected = Vec::new();
        for file in ant_files.iter().chain(&bee_files) {
            let alone = read_image_bytes(&std::fs::read(file).unwrap(), "x.png", None).unwrap();
            for _ in 0..3 / alone.channels {
                expected.extend_from_slice(&alone.pixels);
            }
        }
        // Two threads: the first two images are stored gray before the color one is seen.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for limit in [u64::MAX, 0] {
            let set = pool
                .install(|| read_image_folder(dir.path(), None, limit))
                .unwrap();
            assert_eq!(
                (set.len, set.channels, set.height, set.width),
                (61, 3, 4, 5)
            );
            assert_eq!(set.pixels.is_mapped(), limit == 0);
            assert_eq!(set.pixels.as_slice(), expected.as_slice());
            assert_eq!(set.labels.as_deref().unwrap()[30..32], [0, 1]);
            assert_eq!(set.memory_limit_bytes, limit);
        }
    }

    #[test]
    fn all_gray_folder_has_one_channel_and_alpha_or_16_bit_is_converted() {
        let dir = tempfile::tempdir().unwrap();
        let class = dir.path().join("only");
        std::fs::create_dir_all(&class).unwrap();
        gray(2, 2, 5).save(class.join("a.png")).unwrap();
        image::ImageBuffer::from_pixel(2, 2, Luma([65535u16]))
            .save(class.join("b.png"))
            .unwrap();
        let set = read_image_folder(dir.path(), None, u64::MAX).unwrap();
        assert_eq!((set.len, set.channels), (2, 1));
        assert_eq!(set.image(1), &[255, 255, 255, 255]);

        image::RgbaImage::from_pixel(2, 2, Rgba([9, 8, 7, 0]))
            .save(class.join("c.png"))
            .unwrap();
        let set = read_image_folder(dir.path(), None, u64::MAX).unwrap();
        assert_eq!(set.channels, 3);
        assert_eq!(set.image(2), &[9, 9, 9, 9, 8, 8, 8, 8, 7, 7, 7, 7]);
    }

    #[test]
    fn resize_makes_every_image_the_requested_size() {
        let dir = two_class_folder();
        gray(9, 7, 3)
            .save(dir.path().join("dog").join("c.png"))
            .unwrap();
        let set = read_image_folder(dir.path(), Some(6), u64::MAX).unwrap();
        assert_eq!((set.len, set.channels, set.height, set.width), (4, 3, 6, 6));
        assert_eq!(set.pixels.len(), 4 * 3 * 36);
        // Blue of the cat image is constant 200, and stays so after resizing.
        assert!(set.image(0)[72..].iter().all(|&value| value == 200));
    }

    #[test]
    fn different_sizes_without_resize_name_the_odd_file() {
        let dir = two_class_folder();
        gray(5, 5, 0)
            .save(dir.path().join("dog").join("c.png"))
            .unwrap();
        let error = read_image_folder(dir.path(), None, u64::MAX).unwrap_err();
        assert!(
            matches!(error, DataError::ShapeMismatch { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("c.png") && error.to_string().contains("5x5"),
            "{error}"
        );
    }

    #[test]
    fn undecodable_png_is_a_decode_error_naming_it() {
        let dir = two_class_folder();
        let broken = dir.path().join("cat").join("broken.png");
        std::fs::write(&broken, b"this is not a png").unwrap();
        let error = read_image_folder(dir.path(), None, u64::MAX).unwrap_err();
        assert!(matches!(error, DataError::Decode { .. }), "{error:?}");
        assert!(error.to_string().contains("broken.png"), "{error}");
    }

    #[test]
    fn empty_folder_is_empty_dataset_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("readme.md"), "no images").unwrap();
        let error = read_image_folder(dir.path(), None, u64::MAX).unwrap_err();
        assert!(matches!(error, DataError::EmptyDataset { .. }), "{error:?}");
        assert!(error
            .to_string()
            .contains(&dir.path().display().to_string()));
        std::fs::create_dir(dir.path().join("empty-class")).unwrap();
        assert!(matches!(
            read_image_folder(dir.path(), None, u64::MAX),
            Err(DataError::EmptyDataset { .. })
        ));
    }

    #[test]
    fn loose_images_are_unlabeled_and_mixing_with_subfolders_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        gray(2, 2, 1).save(dir.path().join("a.PNG")).unwrap();
        gray(2, 2, 2).save(dir.path().join("b.png")).unwrap();
        let set = read_image_folder(dir.path(), None, u64::MAX).unwrap();
        assert_eq!((set.len, set.channels), (2, 1));
        assert!(set.labels.is_none() && set.class_names.is_empty());
        std::fs::create_dir(dir.path().join("class")).unwrap();
        let error = read_image_folder(dir.path(), None, u64::MAX).unwrap_err();
        assert!(
            matches!(error, DataError::UnknownLayout { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn single_files_are_resized_and_converted_to_the_channels_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let color = dir.path().join("red.png");
        image::RgbImage::from_pixel(10, 6, Rgb([255, 0, 0]))
            .save(&color)
            .unwrap();
        let gray = dir.path().join("gray.png");
        GrayImage::from_pixel(4, 4, Luma([100]))
            .save(&gray)
            .unwrap();
        let files = [color.clone(), gray];
        let one = read_image_files(&files, 1, 8).unwrap();
        assert_eq!((one.len, one.channels, one.height, one.width), (2, 1, 8, 8));
        // Pure red in luma (BT.709 weights, as the image crate converts): 0.2126 · 255.
        assert!(one.image(0).iter().all(|&v| v == 54), "{:?}", one.image(0));
        assert!(one.image(1).iter().all(|&v| v == 100));
        let three = read_image_files(&files, 3, 8).unwrap();
        assert_eq!(three.image(0)[0], 255);
        assert_eq!(three.image(0)[64], 0);
        assert!(three.image(1).iter().all(|&v| v == 100));
        let missing = dir.path().join("missing.png");
        let error = read_image_files(&[missing], 1, 8).unwrap_err().to_string();
        assert!(error.contains("missing.png"), "{error}");
    }

    #[test]
    fn bytes_decode_as_the_same_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.png");
        gray(5, 3, 40).save(&file).unwrap();
        let bytes = std::fs::read(&file).unwrap();
        let set = read_image_bytes(&bytes, "a.png", None).unwrap();
        assert_eq!((set.len, set.channels, set.height, set.width), (1, 1, 3, 5));
        assert_eq!(
            set.pixels,
            read_image_folder(dir.path(), None, u64::MAX)
                .unwrap()
                .pixels
        );
        let resized = read_image_bytes(&bytes, "a.png", Some(4)).unwrap();
        assert_eq!((resized.height, resized.width), (4, 4));
    }

    #[test]
    fn jpeg_with_inconsistent_sampling_factors_is_a_decode_error_not_a_panic() {
        // zune-jpeg 0.4 asserted (and panicked) when a chroma component claims 2x2
        // sampling while luma has 1x1: a one-byte corruption of the SOF header.
        let mut jpeg = Vec::new();
        DynamicImage::ImageRgb8(RgbImage::from_fn(28, 28, |x, y| {
            Rgb([x as u8 * 9, y as u8 * 9, 128])
        }))
        .write_to(&mut std::io::Cursor::new(&mut jpeg), ImageFormat::Jpeg)
        .unwrap();
        let sof = jpeg
            .windows(2)
            .position(|marker| marker == [0xff, 0xc0])
            .unwrap();
        // Marker, length, precision, height, width, 3 components of (id, sampling, table).
        assert_eq!(jpeg[sof + 9], 3, "three components");
        jpeg[sof + 14] = 0x22;
        let error = read_image_bytes(&jpeg, "chroma.jpg", None).unwrap_err();
        assert!(matches!(error, DataError::Decode { .. }), "{error:?}");
        let message = format!("{error}: {}", std::error::Error::source(&error).unwrap());
        assert!(
            message.starts_with("chroma.jpg: cannot decode image: ")
                && message.contains("corrupt data"),
            "{message}"
        );
    }

    #[test]
    fn zero_image_size_is_rejected() {
        let dir = two_class_folder();
        assert!(matches!(
            read_image_folder(dir.path(), Some(0), u64::MAX),
            Err(DataError::BadOption { .. })
        ));
    }
}

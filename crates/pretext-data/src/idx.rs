//! IDX files (the MNIST layout): a big-endian header, then raw `u8` data.
//!
//! Images: magic `0x00000803` (uint8, 3 dims), then `count`, `rows`, `cols` as `u32`, then
//! `count * rows * cols` bytes. Labels: magic `0x00000801` (uint8, 1 dim), then `count`,
//! then `count` bytes. A file is gzip-compressed when it starts with the gzip magic
//! `1f 8b` (the extension is not consulted); otherwise it is read raw. Images files are
//! streamed into the set's store (in memory, or a mapped temporary file past a limit), never
//! held whole.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

use crate::error::DataError;
use crate::image_set::ImageSet;
use crate::store::StoreWriter;

/// Magic number of an IDX file of uint8 images (3 dimensions).
pub const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of uint8 labels (1 dimension).
pub const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads an IDX images file (raw or gzipped): labels `None`, 1 channel. The pixels are
/// streamed into a store that is a mapped temporary file past `memory_limit_bytes`.
pub fn read_idx_images(path: &Path, memory_limit_bytes: u64) -> Result<ImageSet, DataError> {
    let file = std::fs::File::open(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_images(std::io::BufReader::new(file), path, memory_limit_bytes)
}

/// Reads an IDX labels file (raw or gzipped).
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = read_file(path)?;
    parse_labels(&bytes, path)
}

/// Reads an images file (into a store under `memory_limit_bytes`, as [`read_idx_images`])
/// and its labels file; the counts must match. Labels become `u16` class codes;
/// `class_names` is left empty (unknown).
pub fn read_idx_pair(
    images: &Path,
    labels: &Path,
    memory_limit_bytes: u64,
) -> Result<ImageSet, DataError> {
    let image_set = read_idx_images(images, memory_limit_bytes)?;
    let label_bytes = read_idx_labels(labels)?;
    attach_labels(image_set, &label_bytes, labels)
}

/// Parses an IDX images file from memory (raw or gzipped) into an in-memory set; `name`
/// stands for the file in errors.
pub fn read_idx_images_bytes(bytes: &[u8], name: &str) -> Result<ImageSet, DataError> {
    read_images(bytes, Path::new(name), u64::MAX)
}

/// Parses an IDX labels file from memory (raw or gzipped); `name` stands for the file in errors.
pub fn read_idx_labels_bytes(bytes: &[u8], name: &str) -> Result<Vec<u8>, DataError> {
    let path = PathBuf::from(name);
    parse_labels(&decompress(bytes, &path)?, &path)
}

/// [`read_idx_pair`] from memory: images and labels bytes, each named for errors.
pub fn read_idx_pair_bytes(
    images: &[u8],
    images_name: &str,
    labels: &[u8],
    labels_name: &str,
) -> Result<ImageSet, DataError> {
    let image_set = read_idx_images_bytes(images, images_name)?;
    let label_bytes = read_idx_labels_bytes(labels, labels_name)?;
    attach_labels(image_set, &label_bytes, Path::new(labels_name))
}

fn attach_labels(
    mut image_set: ImageSet,
    labels: &[u8],
    labels_path: &Path,
) -> Result<ImageSet, DataError> {
    if labels.len() != image_set.len {
        return Err(DataError::ShapeMismatch {
            path: labels_path.to_path_buf(),
            expected: format!("{} labels (the images file's count)", image_set.len),
            found: format!("{} labels", labels.len()),
        });
    }
    image_set.labels = Some(labels.iter().map(|&label| u16::from(label)).collect());
    Ok(image_set)
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    match decompress(&bytes, path)? {
        std::borrow::Cow::Borrowed(_) => Ok(bytes),
        std::borrow::Cow::Owned(decompressed) => Ok(decompressed),
    }
}

/// The bytes themselves, or their gzip decompression when they start with `1f 8b`.
fn decompress<'a>(bytes: &'a [u8], path: &Path) -> Result<std::borrow::Cow<'a, [u8]>, DataError> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(std::borrow::Cow::Borrowed(bytes));
    }
    let mut out = Vec::new();
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|source| DataError::Gzip {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(std::borrow::Cow::Owned(out))
}

/// An IDX file's bytes as they are read: raw, or decompressed when they start with the gzip
/// magic. A failed read is the file's error: [`DataError::Gzip`] when compressed, else
/// [`DataError::Io`].
struct IdxStream<'a> {
    reader: Box<dyn Read + 'a>,
    gzipped: bool,
    path: &'a Path,
}

impl<'a> IdxStream<'a> {
    fn new(mut reader: impl Read + 'a, path: &'a Path) -> Result<IdxStream<'a>, DataError> {
        let mut magic = [0u8; 2];
        let seen = read_up_to(&mut reader, &mut magic).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let gzipped = magic[..seen] == GZIP_MAGIC;
        let whole = std::io::Cursor::new(magic).take(seen as u64).chain(reader);
        let reader: Box<dyn Read + 'a> = if gzipped {
            Box::new(MultiGzDecoder::new(whole))
        } else {
            Box::new(whole)
        };
        Ok(IdxStream {
            reader,
            gzipped,
            path,
        })
    }

    /// Fills `buffer` as far as the file goes; the number of bytes read.
    fn read_up_to(&mut self, buffer: &mut [u8]) -> Result<usize, DataError> {
        read_up_to(&mut self.reader, buffer).map_err(|source| self.error(source))
    }

    /// Reads the rest of the file; its length.
    fn count_rest(&mut self) -> Result<u64, DataError> {
        std::io::copy(&mut self.reader, &mut std::io::sink()).map_err(|source| self.error(source))
    }

    fn error(&self, source: std::io::Error) -> DataError {
        let path = self.path.to_path_buf();
        if self.gzipped {
            DataError::Gzip { path, source }
        } else {
            DataError::Io { path, source }
        }
    }
}

/// Reads into `buffer` until it is full or the reader ends; the number of bytes read.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn be_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_be_bytes([
        bytes[offset],
        bytes[offset + 1],
        bytes[offset + 2],
        bytes[offset + 3],
    ])
}

fn check_header(
    bytes: &[u8],
    path: &Path,
    header_len: usize,
    magic: u32,
    what: &'static str,
) -> Result<(), DataError> {
    if bytes.len() < header_len {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what: format!("{header_len}-byte IDX header of {what}"),
            expected: header_len as u64,
            found: bytes.len() as u64,
        });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            found,
            expected: magic,
            what,
        });
    }
    Ok(())
}

/// Checks a file's length, `found` bytes, against the `expected` length its header gives.
fn check_length(found: u64, path: &Path, expected: u64, what: String) -> Result<(), DataError> {
    if found < expected {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            what,
            expected,
            found,
        });
    }
    if found > expected {
        return Err(DataError::TrailingBytes {
            path: path.to_path_buf(),
            what,
            expected,
            found,
        });
    }
    Ok(())
}

/// Streams an images file's pixels into a store under `limit_bytes`, as many as are there
/// (never trusting the header's count before the bytes arrive), then checks the length. A
/// corrupt gzip stream anywhere in the file is its error before a bad header or length.
fn read_images(reader: impl Read, path: &Path, limit_bytes: u64) -> Result<ImageSet, DataError> {
    const HEADER: usize = 16;
    let mut stream = IdxStream::new(reader, path)?;
    let mut header = [0u8; HEADER];
    let header_len = stream.read_up_to(&mut header)?;
    let header = &header[..header_len];
    if let Err(error) = check_header(header, path, HEADER, IDX_IMAGES_MAGIC, "uint8 images") {
        stream.count_rest()?;
        return Err(error);
    }
    let (count, rows, cols) = (be_u32(header, 4), be_u32(header, 8), be_u32(header, 12));
    // u32 * u32 * u32 fits in u128; compare in u64 space after saturating.
    let data_len = u128::from(count) * u128::from(rows) * u128::from(cols);
    let expected = u64::try_from(data_len + HEADER as u128).unwrap_or(u64::MAX);
    let data_expected = expected - HEADER as u64;
    let mut pixels = StoreWriter::new(limit_bytes);
    let mut buffer = vec![0u8; 1 << 16];
    let mut data_found = 0u64;
    while data_found < data_expected {
        let wanted = (data_expected - data_found).min(buffer.len() as u64) as usize;
        let read = stream.read_up_to(&mut buffer[..wanted])?;
        pixels.extend_from_slice(&buffer[..read])?;
        data_found += read as u64;
        if read < wanted {
            break;
        }
    }
    let found = HEADER as u64 + data_found + stream.count_rest()?;
    check_length(
        found,
        path,
        expected,
        format!("16-byte header + {count} images of {rows}x{cols}"),
    )?;
    Ok(ImageSet {
        pixels: Arc::new(pixels.finish()?),
        memory_limit_bytes: limit_bytes,
        len: count as usize,
        channels: 1,
        height: rows as usize,
        width: cols as usize,
        labels: None,
        class_names: Vec::new(),
    })
}

fn parse_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    const HEADER: usize = 8;
    check_header(bytes, path, HEADER, IDX_LABELS_MAGIC, "uint8 labels")?;
    let count = be_u32(bytes, 4);
    check_length(
        bytes.len() as u64,
        path,
        HEADER as u64 + u64::from(count),
        format!("8-byte header + {count} labels"),
    )?;
    Ok(bytes[HEADER..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn images_bytes(count: u32, rows: u32, cols: u32, data: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [IDX_IMAGES_MAGIC, count, rows, cols] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    fn labels_bytes(count: u32, data: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [IDX_LABELS_MAGIC, count] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.extend_from_slice(data);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn sample_pixels() -> Vec<u8> {
        (0..3 * 2 * 4)
            .map(|value| (value * 7 % 256) as u8)
            .collect()
    }

    #[test]
    fn idx_round_trip_raw_and_gzipped_files() {
        let dir = tempfile::tempdir().unwrap();
        let pixels = sample_pixels();
        let raw_images = images_bytes(3, 2, 4, &pixels);
        let raw_labels = labels_bytes(3, &[2, 0, 9]);
        // Gzip detection is by content: the gzipped copy has no .gz extension and vice versa.
        let cases = [
            (
                "raw-images",
                raw_images.clone(),
                "raw-labels.gz",
                raw_labels.clone(),
            ),
            (
                "gz-images",
                gzip(&raw_images),
                "gz-labels",
                gzip(&raw_labels),
            ),
        ];
        for (images_name, images, labels_name, labels) in cases {
            let images_path = dir.path().join(images_name);
            let labels_path = dir.path().join(labels_name);
            std::fs::write(&images_path, images).unwrap();
            std::fs::write(&labels_path, labels).unwrap();
            let set = read_idx_pair(&images_path, &labels_path, u64::MAX).unwrap();
            assert_eq!((set.len, set.channels, set.height, set.width), (3, 1, 2, 4));
            assert_eq!(set.pixels.as_slice(), pixels.as_slice());
            assert_eq!(set.image(1), &pixels[8..16]);
            assert_eq!(set.labels.as_deref(), Some(&[2u16, 0, 9][..]));
            assert!(set.class_names.is_empty());
            assert_eq!(set.num_classes(), 10);
            assert_eq!(read_idx_labels(&labels_path).unwrap(), vec![2, 0, 9]);
            assert!(read_idx_images(&images_path, u64::MAX)
                .unwrap()
                .labels
                .is_none());
        }
    }

    #[test]
    fn idx_bytes_parse_the_same_as_files() {
        let pixels = sample_pixels();
        let set = read_idx_images_bytes(&gzip(&images_bytes(3, 2, 4, &pixels)), "mem").unwrap();
        assert_eq!(set.pixels.as_slice(), pixels.as_slice());
        let labels = read_idx_labels_bytes(&labels_bytes(2, &[1, 5]), "mem").unwrap();
        assert_eq!(labels, vec![1, 5]);
    }

    #[test]
    fn truncated_images_file_reports_expected_and_found_bytes() {
        // Header says 100 images of 2x2, data holds 10.
        let bytes = images_bytes(100, 2, 2, &[0; 40]);
        let error = read_idx_images_bytes(&gzip(&bytes), "short-images.gz").unwrap_err();
        match &error {
            DataError::Truncated {
                expected, found, ..
            } => assert_eq!((*expected, *found), (416, 56)),
            other => panic!("expected Truncated, got {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.contains("short-images.gz") && message.contains("100 images"),
            "{message}"
        );
    }

    #[test]
    fn truncated_header_is_an_error_not_a_panic() {
        let error = read_idx_images_bytes(&[0x00, 0x00, 0x08], "tiny").unwrap_err();
        assert!(matches!(error, DataError::Truncated { .. }), "{error:?}");
        let error = read_idx_labels_bytes(&[], "empty").unwrap_err();
        assert!(matches!(error, DataError::Truncated { .. }), "{error:?}");
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let bytes = labels_bytes(2, &[1, 2, 3]);
        let error = read_idx_labels_bytes(&bytes, "long-labels").unwrap_err();
        assert!(
            matches!(
                error,
                DataError::TrailingBytes {
                    expected: 10,
                    found: 11,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn wrong_magic_names_file_found_and_expected() {
        let mut bytes = images_bytes(1, 1, 1, &[0]);
        bytes[..4].copy_from_slice(&[0, 0, 0, 0]);
        let error = read_idx_images_bytes(&bytes, "train-images-idx3-ubyte.gz").unwrap_err();
        assert_eq!(
            error.to_string(),
            "train-images-idx3-ubyte.gz: bad magic 0x00000000, expected 0x00000803 (uint8 images)"
        );
        // A labels file passed as images is caught by its magic.
        let error =
            read_idx_images_bytes(&labels_bytes(8, &[0; 8]), "labels-as-images").unwrap_err();
        assert!(
            matches!(error, DataError::BadMagic { found: 0x801, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn label_and_image_counts_must_match() {
        let images = images_bytes(3, 1, 1, &[1, 2, 3]);
        let labels = labels_bytes(2, &[0, 1]);
        let error = read_idx_pair_bytes(&images, "imgs", &labels, "labs").unwrap_err();
        assert!(
            matches!(error, DataError::ShapeMismatch { .. }),
            "{error:?}"
        );
        assert!(error.to_string().starts_with("labs:"), "{error}");
    }

    #[test]
    fn corrupt_gzip_is_a_gzip_error() {
        let mut bytes = gzip(&images_bytes(4, 2, 2, &[7; 16]));
        bytes.truncate(bytes.len() / 2);
        let error = read_idx_images_bytes(&bytes, "cut.gz").unwrap_err();
        assert!(matches!(error, DataError::Gzip { .. }), "{error:?}");
    }

    /// A bad header in a corrupt gzip stream is reported as the corrupt stream, as when the
    /// whole file was decompressed before its header was read.
    #[test]
    fn a_corrupt_gzip_stream_comes_before_a_bad_header() {
        let labels = gzip(&labels_bytes(3000, &[1; 3000]));
        let error = read_idx_images_bytes(&labels, "labels.gz").unwrap_err();
        assert!(matches!(error, DataError::BadMagic { .. }), "{error:?}");
        // Without its last bytes (the checksum and length), the stream is corrupt.
        let cut = &labels[..labels.len() - 6];
        let error = read_idx_images_bytes(cut, "labels.gz").unwrap_err();
        assert!(matches!(error, DataError::Gzip { .. }), "{error:?}");
    }

    /// Past the memory limit an images file streams into a mapped file with the same pixels.
    #[test]
    fn an_images_file_past_the_memory_limit_is_mapped_with_the_same_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let pixels: Vec<u8> = (0..200_000).map(|value| (value * 13 % 256) as u8).collect();
        let path = dir.path().join("many-images-idx3-ubyte.gz");
        std::fs::write(&path, gzip(&images_bytes(2000, 10, 10, &pixels))).unwrap();
        let memory = read_idx_images(&path, u64::MAX).unwrap();
        let mapped = read_idx_images(&path, 199_999).unwrap();
        assert!(!memory.pixels.is_mapped() && mapped.pixels.is_mapped());
        assert_eq!(mapped.pixels.as_slice(), pixels.as_slice());
        assert_eq!(memory.pixels, mapped.pixels);
        assert_eq!(mapped.memory_limit_bytes, 199_999);
        assert!(!read_idx_images(&path, 200_000).unwrap().pixels.is_mapped());
    }

    #[test]
    fn missing_file_is_io_error_naming_it() {
        let error =
            read_idx_images(Path::new("/nonexistent/x-images-idx3-ubyte"), u64::MAX).unwrap_err();
        assert!(matches!(error, DataError::Io { .. }));
        assert!(error
            .to_string()
            .contains("/nonexistent/x-images-idx3-ubyte"));
    }
}

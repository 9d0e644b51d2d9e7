//! Resolves what the user passes to `--data` into train and test [`ImageSet`]s.
//!
//! Accepted specs, tried in this order:
//! 1. `embedded` or `embedded:fashion-mnist`: the embedded subset (given train/test).
//! 2. A single IDX images file `<prefix>-images-idx3-ubyte[.gz]`: its labels are
//!    `<prefix>-labels-idx1-ubyte[.gz]` beside it if present (else unlabeled); a
//!    held-out split is taken. (`.idx3-ubyte` with a dot, as in some MNIST copies, works too.)
//! 3. A folder of IDX files: `train-*` with `t10k-*` (or `test-*`) as the given test split
//!    (the MNIST/Fashion-MNIST layout), or one single `<prefix>-images-idx3-ubyte[.gz]`
//!    (e.g. MNIST-5k), from which a held-out split is taken.
//! 4. A folder with `train/` and `test/` subfolders, each with one subfolder per class.
//! 5. A folder with one subfolder per class (or loose images: unlabeled); a held-out split
//!    is taken.
//!
//! Class names of IDX data: read from `<prefix>.classes.txt` or `classes.txt` beside the
//! images file (one name per line, line i+1 names class i, the `shared/data` convention)
//! when present, and then every label must be below their count (else
//! [`DataError::LabelOutOfRange`]); otherwise `class_names` is empty and labels are only
//! known to be < 256. The held-out split is [`stratified_split`] (labeled) or
//! [`random_split`] (unlabeled) with `holdout_fraction` and `split_seed`; it shuffles, so
//! data sorted by label (MNIST-5k) is split fairly. When `image_size` is set, every source
//! is resized to `image_size x image_size` (image folders as each file is decoded).
//!
//! Pixels, of the files and of every copy made from them (splits, resized or RGB copies,
//! label subsets), are kept in memory up to `memory_limit_mb` per set and past it in mapped
//! temporary files, so the process's own memory does not grow with the number of images.

use std::path::{Path, PathBuf};

use crate::embedded::embedded_fashion_mnist;
use crate::error::DataError;
use crate::idx_naming::{idx_images_prefix, read_idx_with_neighbours};
use crate::image_folder::read_image_folder;
use crate::image_set::{ImageSet, ImageSplits};
use crate::split::{random_split, stratified_split};
use crate::store::megabytes;

/// How to load a `--data` spec.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceOptions {
    /// Resize every image to `size x size` (Triangle filter); `None` keeps the native size.
    pub image_size: Option<usize>,
    /// Fraction held out as test when the source has no test split, in `[0, 1)`.
    pub holdout_fraction: f64,
    /// Seed of that held-out split.
    pub split_seed: u64,
    /// Decoded pixels beyond this many MB (1 byte a pixel and channel) are kept in a
    /// temporary file mapped into memory rather than in the process's own memory; the file
    /// needs as much free disk under the temporary folder (`TMPDIR`).
    pub memory_limit_mb: u64,
}

impl Default for SourceOptions {
    /// Native size, 20% held out, seed 0, pixels in memory up to 4096 MB.
    fn default() -> Self {
        SourceOptions {
            image_size: None,
            holdout_fraction: 0.2,
            split_seed: 0,
            memory_limit_mb: 4096,
        }
    }
}

/// Loads the dataset named by `spec` ("embedded", "embedded:fashion-mnist" or a path; see
/// the module docs for the layouts) with its given or held-out test split.
pub fn load_images(spec: &str, options: &SourceOptions) -> Result<ImageSplits, DataError> {
    let fraction = options.holdout_fraction;
    if !(0.0..1.0).contains(&fraction) {
        return Err(DataError::BadOption {
            option: "holdout_fraction",
            reason: format!("expected a fraction in [0, 1), found {fraction}"),
        });
    }
    if options.image_size == Some(0) {
        return Err(DataError::BadOption {
            option: "image_size",
            reason: "expected a size >= 1, found 0".to_string(),
        });
    }
    let limit = megabytes(options.memory_limit_mb);
    let splits = if spec == "embedded" || spec == "embedded:fashion-mnist" {
        let splits = embedded_fashion_mnist()?;
        ImageSplits {
            train: splits.train.under_memory_limit(limit)?,
            test: splits.test.under_memory_limit(limit)?,
            name: splits.name,
        }
    } else if let Some(name) = spec.strip_prefix("embedded:") {
        return Err(DataError::UnknownLayout {
            path: PathBuf::from(spec),
            details: format!(
                "no embedded dataset {name:?}; expected \"embedded\" or \"embedded:fashion-mnist\""
            ),
        });
    } else {
        let path = Path::new(spec);
        if path.is_file() {
            load_idx_file(path, options)?
        } else if path.is_dir() {
            load_folder(path, options)?
        } else {
            return Err(DataError::NotFound {
                path: path.to_path_buf(),
            });
        }
    };
    if splits.train.is_empty() {
        return Err(DataError::EmptyDataset {
            path: PathBuf::from(spec),
            details: "the training split has no images".to_string(),
        });
    }
    match options.image_size {
        Some(size) => Ok(ImageSplits {
            train: splits.train.resized(size, size)?,
            test: splits.test.resized(size, size)?,
            name: splits.name,
        }),
        None => Ok(splits),
    }
}

fn display_name(path: &Path) -> String {
    path.canonicalize()
        .ok()
        .as_deref()
        .unwrap_or(path)
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn load_idx_file(path: &Path, options: &SourceOptions) -> Result<ImageSplits, DataError> {
    let set = read_idx_with_neighbours(path, megabytes(options.memory_limit_mb))?;
    let file_name = display_name(path);
    let name = idx_images_prefix(&file_name).map_or(file_name, |(prefix, _)| prefix);
    Ok(held_out(name, set, options))
}

fn load_folder(dir: &Path, options: &SourceOptions) -> Result<ImageSplits, DataError> {
    let name = display_name(dir);
    let limit = megabytes(options.memory_limit_mb);
    let io_error = |source| DataError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut idx_images: Vec<(String, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error)? {
        let path = entry.map_err(io_error)?.path();
        let file_name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let (true, Some((prefix, _))) = (path.is_file(), idx_images_prefix(&file_name)) {
            idx_images.push((prefix, path));
        }
    }
    idx_images.sort();
    if !idx_images.is_empty() {
        let find = |prefix: &str| {
            idx_images
                .iter()
                .find(|(found, _)| found == prefix)
                .map(|(_, path)| path)
        };
        if let Some(train) = find("train") {
            let train = read_idx_with_neighbours(train, limit)?;
            return match find("t10k").or_else(|| find("test")) {
                Some(test_path) => {
                    let test = read_idx_with_neighbours(test_path, limit)?;
                    let test = matched_test(&train, test, test_path)?;
                    Ok(ImageSplits { name, train, test })
                }
                None => Ok(held_out(name, train, options)),
            };
        }
        if let [(_, only)] = idx_images.as_slice() {
            return Ok(held_out(
                name,
                read_idx_with_neighbours(only, limit)?,
                options,
            ));
        }
        return Err(DataError::UnknownLayout {
            path: dir.to_path_buf(),
            details: format!(
                "found IDX image files with prefixes {:?}; expected one prefix, or train (with t10k or test)",
                idx_images.iter().map(|(prefix, _)| prefix.as_str()).collect::<Vec<_>>()
            ),
        });
    }
    let (train_dir, test_dir) = (dir.join("train"), dir.join("test"));
    if train_dir.is_dir() && test_dir.is_dir() && has_subfolder(&train_dir) {
        let train = read_image_folder(&train_dir, options.image_size, limit)?;
        let test = read_image_folder(&test_dir, options.image_size, limit)?;
        let (train, test) = if train.channels == test.channels {
            (train, test)
        } else {
            (train.to_rgb(), test.to_rgb())
        };
        let test = matched_test(&train, test, &test_dir)?;
        return Ok(ImageSplits { name, train, test });
    }
    Ok(held_out(
        name,
        read_image_folder(dir, options.image_size, limit)?,
        options,
    ))
}

fn has_subfolder(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().any(|entry| entry.path().is_dir()))
        .unwrap_or(false)
}

/// Checks that a given test split agrees with the train split (image shape, labeled or not,
/// class names) and gives it the train split's class names.
fn matched_test(
    train: &ImageSet,
    mut test: ImageSet,
    test_path: &Path,
) -> Result<ImageSet, DataError> {
    let shape = |set: &ImageSet| format!("{}x{}x{} images", set.channels, set.height, set.width);
    if (train.channels, train.height, train.width) != (test.channels, test.height, test.width) {
        return Err(DataError::ShapeMismatch {
            path: test_path.to_path_buf(),
            expected: format!("{} (as in the train split)", shape(train)),
            found: shape(&test),
        });
    }
    if train.labels.is_some() != test.labels.is_some() {
        let labeled = |set: &ImageSet| {
            if set.labels.is_some() {
                "labeled"
            } else {
                "unlabeled"
            }
        };
        return Err(DataError::ShapeMismatch {
            path: test_path.to_path_buf(),
            expected: format!("{} images (as in the train split)", labeled(train)),
            found: format!("{} images", labeled(&test)),
        });
    }
    if !test.class_names.is_empty() && test.class_names != train.class_names {
        return Err(DataError::ShapeMismatch {
            path: test_path.to_path_buf(),
            expected: format!("classes {:?} (as in the train split)", train.class_names),
            found: format!("classes {:?}", test.class_names),
        });
    }
    test.class_names = train.class_names.clone();
    test.validate(test_path)?;
    Ok(test)
}

/// Splits `set` into train and a held-out test part (stratified when labeled).
fn held_out(name: String, set: ImageSet, options: &SourceOptions) -> ImageSplits {
    let (train, test) = match &set.labels {
        Some(labels) => stratified_split(labels, options.holdout_fraction, options.split_seed),
        None => random_split(set.len, options.holdout_fraction, options.split_seed),
    };
    ImageSplits {
        name,
        train: set.subset(&train),
        test: set.subset(&test),
    }
}

/// Whether `path`'s extension is `extension`, compared case-insensitively.
pub(crate) fn has_extension(path: &Path, extension: &str) -> bool {
    path.extension()
        .is_some_and(|found| found.eq_ignore_ascii_case(extension))
}

/// Every file under `dir` and its subfolders whose extension is `extension` (any case),
/// hidden entries (a leading dot) skipped, sorted by path.
pub(crate) fn files_with_extension(dir: &Path, extension: &str) -> Result<Vec<PathBuf>, DataError> {
    fn collect(dir: &Path, extension: &str, files: &mut Vec<PathBuf>) -> Result<(), DataError> {
        let io_error = |source| DataError::Io {
            path: dir.to_path_buf(),
            source,
        };
        for entry in std::fs::read_dir(dir).map_err(io_error)? {
            let path = entry.map_err(io_error)?.path();
            let hidden = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with('.'));
            if hidden {
                continue;
            }
            if path.is_dir() {
                collect(&path, extension, files)?;
            } else if has_extension(&path, extension) {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    collect(dir, extension, &mut files)?;
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idx::{IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC};
    use image::{GrayImage, Luma, RgbImage};

    fn shared_vision(name: &str) -> Option<PathBuf> {
        crate::test_data::shared_data(&format!("vision/{name}"))
    }

    fn class_counts(set: &ImageSet) -> Vec<usize> {
        let mut counts = vec![0; set.num_classes()];
        for &label in set.labels.as_deref().unwrap() {
            counts[usize::from(label)] += 1;
        }
        counts
    }

    fn write_idx(dir: &Path, prefix: &str, labels: &[u8], size: u32) {
        let mut images = Vec::new();
        for word in [IDX_IMAGES_MAGIC, labels.len() as u32, size, size] {
            images.extend_from_slice(&word.to_be_bytes());
        }
        for (index, &label) in labels.iter().enumerate() {
            images.extend(
                (0..size * size)
                    .map(|pixel| (pixel as u8).wrapping_mul(label).wrapping_add(index as u8)),
            );
        }
        let mut label_bytes = Vec::new();
        for word in [IDX_LABELS_MAGIC, labels.len() as u32] {
            label_bytes.extend_from_slice(&word.to_be_bytes());
        }
        label_bytes.extend_from_slice(labels);
        std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), label_bytes).unwrap();
    }

    #[test]
    fn real_fashion_mnist_folder_loads_given_train_and_test() {
        let Some(dir) = shared_vision("fashion-mnist") else {
            return;
        };
        let splits = load_images(dir.to_str().unwrap(), &SourceOptions::default()).unwrap();
        assert_eq!(splits.name, "fashion-mnist");
        assert_eq!((splits.train.len, splits.test.len), (60000, 10000));
        assert_eq!(
            (
                splits.train.channels,
                splits.train.height,
                splits.train.width
            ),
            (1, 28, 28)
        );
        assert_eq!(class_counts(&splits.train), vec![6000; 10]);
        assert_eq!(class_counts(&splits.test), vec![1000; 10]);
    }

    #[test]
    fn real_mnist_5k_is_split_400_100_per_class() {
        let Some(dir) = shared_vision("mnist-5k") else {
            return;
        };
        let splits = load_images(dir.to_str().unwrap(), &SourceOptions::default()).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (4000, 1000));
        assert_eq!(class_counts(&splits.train), vec![400; 10]);
        assert_eq!(class_counts(&splits.test), vec![100; 10]);
        // Same result from the images file itself, and deterministic.
        let file = dir.join("mnist5k-images-idx3-ubyte.gz");
        let from_file = load_images(file.to_str().unwrap(), &SourceOptions::default()).unwrap();
        assert_eq!(from_file.name, "mnist5k");
        assert_eq!(from_file.test.labels, splits.test.labels);
        assert_eq!(from_file.test.pixels, splits.test.pixels);
        // Another seed holds out other rows.
        let options = SourceOptions {
            split_seed: 1,
            ..SourceOptions::default()
        };
        let reseeded = load_images(dir.to_str().unwrap(), &options).unwrap();
        assert_ne!(reseeded.test.pixels, splits.test.pixels);
    }

    #[test]
    fn embedded_spec_and_image_size_resizes_idx_images() {
        let splits = load_images("embedded", &SourceOptions::default()).unwrap();
        assert_eq!(
            (splits.train.len, splits.test.len, splits.train.height),
            (8000, 2000, 28)
        );
        let options = SourceOptions {
            image_size: Some(32),
            ..SourceOptions::default()
        };
        let resized = load_images("embedded:fashion-mnist", &options).unwrap();
        assert_eq!(
            (
                resized.train.height,
                resized.train.width,
                resized.test.width
            ),
            (32, 32, 32)
        );
        assert_eq!(resized.train.pixels.len(), 8000 * 32 * 32);
        assert_eq!(resized.train.labels, splits.train.labels);
        let error = load_images("embedded:cifar", &options).unwrap_err();
        assert!(
            matches!(error, DataError::UnknownLayout { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn idx_folder_with_train_and_t10k_uses_the_given_test_split() {
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), "train", &[0, 1, 2, 0, 1, 2], 3);
        write_idx(dir.path(), "t10k", &[2, 1], 3);
        let splits = load_images(dir.path().to_str().unwrap(), &SourceOptions::default()).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (6, 2));
        assert_eq!(splits.test.labels.as_deref(), Some(&[2u16, 1][..]));
        assert!(splits.train.class_names.is_empty());
    }

    #[test]
    fn classes_file_names_classes_and_out_of_range_label_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), "train", &[0, 1, 1], 2);
        std::fs::write(dir.path().join("classes.txt"), "zero\none\n").unwrap();
        let splits = load_images(dir.path().to_str().unwrap(), &SourceOptions::default()).unwrap();
        assert_eq!(splits.train.class_names, vec!["zero", "one"]);
        // A label 200 with 10 known class names.
        write_idx(dir.path(), "train", &[0, 200, 1], 2);
        let names: Vec<String> = (0..10).map(|class| format!("c{class}\n")).collect();
        std::fs::write(dir.path().join("classes.txt"), names.concat()).unwrap();
        let error =
            load_images(dir.path().to_str().unwrap(), &SourceOptions::default()).unwrap_err();
        match &error {
            DataError::LabelOutOfRange {
                index,
                label,
                num_classes,
                path,
            } => {
                assert_eq!((*index, *label, *num_classes), (1, 200, 10));
                assert!(path.ends_with("train-labels-idx1-ubyte"));
            }
            other => panic!("expected LabelOutOfRange, got {other:?}"),
        }
        // Without class names the same labels are accepted (num_classes = 201).
        std::fs::remove_file(dir.path().join("classes.txt")).unwrap();
        assert!(load_images(dir.path().to_str().unwrap(), &SourceOptions::default()).is_ok());
    }

    #[test]
    fn single_idx_file_without_labels_is_unlabeled_and_randomly_split() {
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), "digits", &[0; 10], 2);
        std::fs::remove_file(dir.path().join("digits-labels-idx1-ubyte")).unwrap();
        let spec = dir.path().join("digits-images-idx3-ubyte");
        let splits = load_images(spec.to_str().unwrap(), &SourceOptions::default()).unwrap();
        assert_eq!(
            (splits.name.as_str(), splits.train.len, splits.test.len),
            ("digits", 8, 2)
        );
        assert!(splits.train.labels.is_none());
    }

    #[test]
    fn idx_folder_with_several_prefixes_is_unknown_layout() {
        let dir = tempfile::tempdir().unwrap();
        write_idx(dir.path(), "a", &[0, 1], 2);
        write_idx(dir.path(), "b", &[0, 1], 2);
        let error =
            load_images(dir.path().to_str().unwrap(), &SourceOptions::default()).unwrap_err();
        assert!(
            matches!(error, DataError::UnknownLayout { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn image_folder_with_train_and_test_subfolders() {
        let dir = tempfile::tempdir().unwrap();
        for (split, count) in [("train", 3), ("test", 1)] {
            for class in ["ant", "bee"] {
                let folder = dir.path().join(split).join(class);
                std::fs::create_dir_all(&folder).unwrap();
                for index in 0..count {
                    GrayImage::from_pixel(5, 5, Luma([index as u8]))
                        .save(folder.join(format!("{index}.png")))
                        .unwrap();
                }
            }
        }
        // One RGB test image: both splits become 3 channels.
        RgbImage::from_pixel(5, 5, image::Rgb([1, 2, 3]))
            .save(dir.path().join("test/bee/rgb.png"))
            .unwrap();
        let splits = load_images(dir.path().to_str().unwrap(), &SourceOptions::default()).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (6, 3));
        assert_eq!((splits.train.channels, splits.test.channels), (3, 3));
        assert_eq!(splits.test.class_names, vec!["ant", "bee"]);

        // A class folder holds out a stratified split instead.
        let train_only = dir.path().join("train");
        let splits = load_images(
            train_only.to_str().unwrap(),
            &SourceOptions {
                holdout_fraction: 1.0 / 3.0,
                ..SourceOptions::default()
            },
        )
        .unwrap();
        assert_eq!((splits.train.len, splits.test.len), (4, 2));
        assert_eq!(splits.test.labels.as_deref(), Some(&[0u16, 1][..]));
    }

    /// The first `count` embedded Fashion-MNIST training images as PNGs in one folder per
    /// class (`class-L/NNNN.png`, NNNN the image's index) and as a gzipped IDX pair.
    fn fashion_png_and_idx(dir: &Path, count: usize) -> (PathBuf, PathBuf, ImageSet) {
        let embedded = embedded_fashion_mnist()
            .unwrap()
            .train
            .subset(&Vec::from_iter(0..count));
        let (pngs, idx) = (dir.join("pngs"), dir.join("idx"));
        std::fs::create_dir_all(&idx).unwrap();
        let labels = embedded.labels.as_deref().unwrap();
        for (index, &label) in labels.iter().enumerate() {
            let class = pngs.join(format!("class-{label}"));
            std::fs::create_dir_all(&class).unwrap();
            GrayImage::from_raw(28, 28, embedded.image(index).to_vec())
                .unwrap()
                .save(class.join(format!("{index:04}.png")))
                .unwrap();
        }
        let gzip = |bytes: Vec<u8>| {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&bytes).unwrap();
            encoder.finish().unwrap()
        };
        let header = |words: &[u32]| -> Vec<u8> {
            words.iter().flat_map(|word| word.to_be_bytes()).collect()
        };
        let images = [
            header(&[IDX_IMAGES_MAGIC, count as u32, 28, 28]),
            embedded.pixels.to_vec(),
        ]
        .concat();
        let label_bytes = labels.iter().map(|&label| label as u8).collect::<Vec<_>>();
        let label_file = [header(&[IDX_LABELS_MAGIC, count as u32]), label_bytes].concat();
        std::fs::write(idx.join("fashion-images-idx3-ubyte.gz"), gzip(images)).unwrap();
        std::fs::write(idx.join("fashion-labels-idx1-ubyte.gz"), gzip(label_file)).unwrap();
        (pngs, idx, embedded)
    }

    /// Past `memory_limit_mb` (here 0) a folder of real PNGs, an IDX pair and the embedded
    /// set, their held-out splits, resized copies and label subsets, live in mapped files and
    /// hold exactly the images and labels of the in-memory sets, which are the PNGs' pixels.
    #[test]
    fn images_past_the_memory_limit_are_mapped_and_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let (pngs, idx, embedded) = fashion_png_and_idx(dir.path(), 120);
        let load = |spec: &Path, memory_limit_mb, image_size| {
            let options = SourceOptions {
                memory_limit_mb,
                image_size,
                ..SourceOptions::default()
            };
            load_images(spec.to_str().unwrap(), &options).unwrap()
        };
        // In memory, the folder's images are the PNGs' pixels, in class then file order.
        let whole = read_image_folder(&pngs, None, u64::MAX).unwrap();
        let mut by_class = Vec::from_iter(0..120);
        by_class.sort_by_key(|&index| embedded.labels.as_ref().unwrap()[index]);
        assert_eq!(whole.pixels, embedded.subset(&by_class).pixels);
        for spec in [pngs.as_path(), idx.as_path(), Path::new("embedded")] {
            for image_size in [None, Some(20)] {
                let (memory, mapped) = (load(spec, 4096, image_size), load(spec, 0, image_size));
                for (a, b) in [(&memory.train, &mapped.train), (&memory.test, &mapped.test)] {
                    assert!(!a.pixels.is_mapped() && b.pixels.is_mapped(), "{spec:?}");
                    assert_eq!(a.pixels, b.pixels, "{spec:?} {image_size:?}");
                    assert_eq!((a.len, a.channels, a.height), (b.len, b.channels, b.height));
                    assert_eq!((&a.labels, &a.class_names), (&b.labels, &b.class_names));
                }
                let labels = memory.train.labels.as_deref().unwrap();
                let picked = crate::split::stratified_subset(labels, 30, 7);
                let subset = mapped.train.subset(&picked);
                assert!(subset.pixels.is_mapped());
                assert_eq!(subset.pixels, memory.train.subset(&picked).pixels);
            }
        }
    }

    #[test]
    fn bad_specs_and_options_are_errors() {
        let error = load_images("/no/such/dataset", &SourceOptions::default()).unwrap_err();
        assert!(matches!(error, DataError::NotFound { .. }), "{error:?}");
        for fraction in [1.0, -0.1, f64::NAN] {
            let options = SourceOptions {
                holdout_fraction: fraction,
                ..SourceOptions::default()
            };
            assert!(matches!(
                load_images("embedded", &options),
                Err(DataError::BadOption { .. })
            ));
        }
    }
}

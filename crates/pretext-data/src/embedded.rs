//! The embedded default dataset: a Fashion-MNIST subset compiled into the binary.
//!
//! The files live in `crates/pretext-data/embedded/` (the first 8000 training and the
//! first 2000 test images; see the README there for how they were made, their class
//! counts and the MIT license of Fashion-MNIST, Copyright 2017 Zalando SE).

use std::path::Path;

use crate::error::DataError;
use crate::idx::read_idx_pair_bytes;
use crate::image_set::ImageSplits;

/// Fashion-MNIST class names, indexed by label.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// Name of the embedded dataset in [`ImageSplits::name`].
pub const EMBEDDED_FASHION_MNIST_NAME: &str = "fashion-mnist (embedded subset)";

const TRAIN_IMAGES: &[u8] = include_bytes!("../embedded/fashion-mnist-train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../embedded/fashion-mnist-train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../embedded/fashion-mnist-test-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../embedded/fashion-mnist-test-labels-idx1-ubyte.gz");

/// The embedded Fashion-MNIST subset: 8000 train and 2000 test images, 1x28x28, labels
/// 0..9 with [`FASHION_MNIST_CLASSES`] as class names. Decompresses on each call.
pub fn embedded_fashion_mnist() -> Result<ImageSplits, DataError> {
    let class_names: Vec<String> = FASHION_MNIST_CLASSES
        .iter()
        .map(|name| name.to_string())
        .collect();
    let load = |images: &[u8], images_name: &str, labels: &[u8], labels_name: &str| {
        let mut set = read_idx_pair_bytes(images, images_name, labels, labels_name)?;
        set.class_names = class_names.clone();
        set.validate(Path::new(labels_name))?;
        Ok::<_, DataError>(set)
    };
    Ok(ImageSplits {
        name: EMBEDDED_FASHION_MNIST_NAME.to_string(),
        train: load(
            TRAIN_IMAGES,
            "embedded/fashion-mnist-train-images-idx3-ubyte.gz",
            TRAIN_LABELS,
            "embedded/fashion-mnist-train-labels-idx1-ubyte.gz",
        )?,
        test: load(
            TEST_IMAGES,
            "embedded/fashion-mnist-test-images-idx3-ubyte.gz",
            TEST_LABELS,
            "embedded/fashion-mnist-test-labels-idx1-ubyte.gz",
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_counts(labels: &[u16]) -> Vec<usize> {
        let mut counts = vec![0; 10];
        for &label in labels {
            counts[usize::from(label)] += 1;
        }
        counts
    }

    #[test]
    fn embedded_subset_has_8000_train_and_2000_test_in_10_classes() {
        let splits = embedded_fashion_mnist().unwrap();
        assert_eq!(splits.name, "fashion-mnist (embedded subset)");
        for (set, len) in [(&splits.train, 8000), (&splits.test, 2000)] {
            assert_eq!(
                (set.len, set.channels, set.height, set.width),
                (len, 1, 28, 28)
            );
            assert_eq!(set.num_classes(), 10);
            assert_eq!(set.class_names[9], "Ankle boot");
            assert_eq!(set.pixels.len(), len * 784);
        }
        // The counts documented in embedded/README.md.
        let train = class_counts(splits.train.labels.as_deref().unwrap());
        assert_eq!(
            train,
            vec![747, 860, 809, 807, 763, 795, 807, 818, 792, 802]
        );
        let test = class_counts(splits.test.labels.as_deref().unwrap());
        assert_eq!(test, vec![200, 203, 214, 190, 219, 195, 197, 200, 194, 188]);
    }

    #[test]
    fn embedded_subset_is_the_start_of_the_real_dataset() {
        let Some(shared) = crate::test_data::shared_data("vision/fashion-mnist") else {
            return;
        };
        let images = shared.join("t10k-images-idx3-ubyte.gz");
        let labels = shared.join("t10k-labels-idx1-ubyte.gz");
        let full = crate::idx::read_idx_pair(&images, &labels, u64::MAX).unwrap();
        let embedded = embedded_fashion_mnist().unwrap().test;
        assert_eq!(embedded.pixels[..], full.pixels[..2000 * 784]);
        assert_eq!(embedded.labels.unwrap()[..], full.labels.unwrap()[..2000]);
    }
}

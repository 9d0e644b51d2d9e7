//! Samples of any modality behind one type, so the step loop, the monitors and the probes
//! can be written once.

use crate::audio::{AudioSet, AudioSplits};
use crate::image_set::{ImageSet, ImageSplits};
use crate::table::{TableSet, TableSplits};
use crate::token_set::TokenSet;

/// A dataset's samples.
#[derive(Clone, Debug)]
pub enum Samples {
    Images(ImageSet),
    Tokens(TokenSet),
    Table(TableSet),
    Audio(AudioSet),
}

impl Samples {
    pub fn len(&self) -> usize {
        match self {
            Samples::Images(set) => set.len,
            Samples::Tokens(set) => set.len,
            Samples::Table(set) => set.len,
            Samples::Audio(set) => set.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// 0-based class codes, one per sample, when the data has labels.
    pub fn labels(&self) -> Option<&[u16]> {
        match self {
            Samples::Images(set) => set.labels.as_deref(),
            Samples::Tokens(set) => set.labels.as_deref(),
            Samples::Table(set) => set.labels.as_deref(),
            Samples::Audio(set) => set.labels.as_deref(),
        }
    }

    pub fn num_classes(&self) -> usize {
        match self {
            Samples::Images(set) => set.num_classes(),
            Samples::Tokens(set) => set.num_classes(),
            Samples::Table(set) => set.num_classes(),
            Samples::Audio(set) => set.num_classes(),
        }
    }

    pub fn class_names(&self) -> &[String] {
        match self {
            Samples::Images(set) => &set.class_names,
            Samples::Tokens(set) => &set.class_names,
            Samples::Table(set) => &set.class_names,
            Samples::Audio(set) => &set.class_names,
        }
    }

    /// Copies of the samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> Samples {
        match self {
            Samples::Images(set) => Samples::Images(set.subset(indices)),
            Samples::Tokens(set) => Samples::Tokens(set.subset(indices)),
            Samples::Table(set) => Samples::Table(set.subset(indices)),
            Samples::Audio(set) => Samples::Audio(set.subset(indices)),
        }
    }

    /// The same samples with `labels` (one per sample) in place of theirs: pseudo-labels.
    pub fn with_labels(self, labels: Vec<u16>) -> Samples {
        assert_eq!(labels.len(), self.len(), "one label per sample");
        match self {
            Samples::Images(mut set) => {
                set.labels = Some(labels);
                Samples::Images(set)
            }
            Samples::Tokens(mut set) => {
                set.labels = Some(labels);
                Samples::Tokens(set)
            }
            Samples::Table(mut set) => {
                set.labels = Some(labels);
                Samples::Table(set)
            }
            Samples::Audio(mut set) => {
                set.labels = Some(labels);
                Samples::Audio(set)
            }
        }
    }

    /// A short description for messages ("60000 28x28 images", "13241 sequences of 128 tokens",
    /// "16000 rows of 16 columns", "1494 clips of 1 s at 16000 Hz").
    pub fn describe(&self) -> String {
        match self {
            Samples::Images(set) => format!(
                "{} {}x{} {} images",
                set.len,
                set.height,
                set.width,
                if set.channels == 1 { "gray" } else { "RGB" }
            ),
            Samples::Tokens(set) => format!("{} sequences of {} tokens", set.len, set.seq_len),
            Samples::Table(set) => format!("{} rows of {} columns", set.len, set.width()),
            Samples::Audio(set) => format!(
                "{} clips of {} s at {} Hz",
                set.len,
                set.clip_samples as f64 / f64::from(set.sample_rate.max(1)),
                set.sample_rate
            ),
        }
    }
}

/// A dataset's training and held-out samples.
#[derive(Clone, Debug)]
pub struct Splits {
    pub name: String,
    pub train: Samples,
    pub test: Samples,
}

impl From<ImageSplits> for Splits {
    fn from(splits: ImageSplits) -> Splits {
        Splits {
            name: splits.name,
            train: Samples::Images(splits.train),
            test: Samples::Images(splits.test),
        }
    }
}

impl From<AudioSplits> for Splits {
    fn from(splits: AudioSplits) -> Splits {
        Splits {
            name: splits.name,
            train: Samples::Audio(splits.train),
            test: Samples::Audio(splits.test),
        }
    }
}

impl From<TableSplits> for Splits {
    fn from(splits: TableSplits) -> Splits {
        Splits {
            name: splits.name,
            train: Samples::Table(splits.train),
            test: Samples::Table(splits.test),
        }
    }
}

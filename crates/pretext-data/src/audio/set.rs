//! Clips of one length and rate ([`AudioSet`]), and a dataset's two splits of them.

use std::path::PathBuf;
use std::sync::Arc;

use crate::store::ClipStore;

/// Fixed-length mono clips, labeled or not.
///
/// Every clip is `clip_samples = round(clip_seconds × sample_rate)` long: its file, resampled
/// to `sample_rate` when needed, is cropped to the `clip_samples` around its centre
/// ([`fit_length`](super::fit_length) from [`centered_start`](super::centered_start))
/// when longer, and zero-padded at the end when shorter. What lies outside the centred crop
/// is not kept ([`load_audio_windows`](super::load_audio_windows) cuts long recordings into
/// several clips instead).
#[derive(Clone, Debug)]
pub struct AudioSet {
    /// `len × clip_samples` samples, row-major: clip `i` is `samples[i·clip_samples..]`; in
    /// memory, or in a mapped temporary file past `AudioOptions::memory_limit_mb`.
    pub samples: Arc<ClipStore>,
    /// The limit the clips were stored under, kept for the sets made from this one.
    pub memory_limit_bytes: u64,
    /// Number of clips.
    pub len: usize,
    /// Samples per clip.
    pub clip_samples: usize,
    /// Samples per second of every clip.
    pub sample_rate: u32,
    /// 0-based class codes, one per clip.
    pub labels: Option<Vec<u16>>,
    /// Class names indexed by code (empty when unlabeled).
    pub class_names: Vec<String>,
    /// The file each clip was read from.
    pub files: Vec<PathBuf>,
}

impl AudioSet {
    /// The samples of clip `index`.
    pub fn clip(&self, index: usize) -> &[f32] {
        &self.samples.as_slice()[index * self.clip_samples..(index + 1) * self.clip_samples]
    }

    /// A new store of `len` samples under this set's memory limit that `copy` fills.
    fn store_copied(&self, len: usize, copy: impl FnOnce(&mut [f32])) -> ClipStore {
        ClipStore::copied(len, self.memory_limit_bytes, copy)
    }

    /// The samples of the clips at `indices`, one after another.
    pub fn gather(&self, indices: &[usize]) -> Vec<f32> {
        let mut samples = Vec::with_capacity(indices.len() * self.clip_samples);
        for &index in indices {
            samples.extend_from_slice(self.clip(index));
        }
        samples
    }

    /// A new set of the clips at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> AudioSet {
        AudioSet {
            samples: Arc::new(self.store_copied(indices.len() * self.clip_samples, |out| {
                for (chunk, &index) in out.chunks_mut(self.clip_samples.max(1)).zip(indices) {
                    chunk.copy_from_slice(self.clip(index));
                }
            })),
            memory_limit_bytes: self.memory_limit_bytes,
            len: indices.len(),
            clip_samples: self.clip_samples,
            sample_rate: self.sample_rate,
            labels: self
                .labels
                .as_ref()
                .map(|labels| indices.iter().map(|&index| labels[index]).collect()),
            class_names: self.class_names.clone(),
            files: indices
                .iter()
                .map(|&index| self.files[index].clone())
                .collect(),
        }
    }

    /// Number of classes: the class names' count when known, else max label + 1.
    pub fn num_classes(&self) -> usize {
        crate::split::class_count(self.labels.as_deref(), &self.class_names)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// These clips followed by `more`'s, all unlabeled (pretraining needs no labels).
    /// Panics when the clip lengths or rates differ (both come from the same options).
    pub fn unlabeled_with(&self, more: &AudioSet) -> AudioSet {
        assert_eq!(
            (self.clip_samples, self.sample_rate),
            (more.clip_samples, more.sample_rate),
            "clips of one length and rate"
        );
        let samples = self.store_copied((self.len + more.len) * self.clip_samples, |out| {
            let (head, tail) = out.split_at_mut(self.len * self.clip_samples);
            head.copy_from_slice(self.samples.as_slice());
            tail.copy_from_slice(more.samples.as_slice());
        });
        AudioSet {
            samples: Arc::new(samples),
            memory_limit_bytes: self.memory_limit_bytes,
            len: self.len + more.len,
            clip_samples: self.clip_samples,
            sample_rate: self.sample_rate,
            labels: None,
            class_names: Vec::new(),
            files: self.files.iter().chain(&more.files).cloned().collect(),
        }
    }
}

/// The clips of a labels file: a training split and a held-out split.
#[derive(Clone, Debug)]
pub struct AudioSplits {
    /// The name of the labels file's folder (its file stem when it has none).
    pub name: String,
    /// Rows with split `train`, or every row when the file has no `split` column.
    pub train: AudioSet,
    /// Rows with split `test` (empty when the file has no `split` column).
    pub test: AudioSet,
}

#[cfg(test)]
mod tests {
    use crate::audio::fixtures::{tiny_folder, tiny_options};
    use crate::audio::{load_audio_folder, load_audio_windows, AudioOptions};

    /// Past `memory_limit_mb` the clips live in a mapped temporary file; every loader, split
    /// and join gives the same samples either way.
    #[test]
    fn clips_past_the_memory_limit_are_mapped_and_read_the_same() {
        let dir = tiny_folder();
        let mapped_options = AudioOptions {
            memory_limit_mb: 0,
            ..tiny_options()
        };
        let in_memory = load_audio_folder(dir.path(), &tiny_options()).unwrap();
        let mapped = load_audio_folder(dir.path(), &mapped_options).unwrap();
        assert!(!in_memory.samples.is_mapped() && mapped.samples.is_mapped());
        assert_eq!(mapped.samples.as_slice(), in_memory.samples.as_slice());
        let part = mapped.subset(&[1, 0]);
        assert!(part.samples.is_mapped());
        assert_eq!(part.clip(0), in_memory.clip(1));
        let joined = mapped.unlabeled_with(&part);
        assert!(joined.samples.is_mapped());
        assert_eq!(joined.clip(mapped.len), in_memory.clip(1));
        let windows = load_audio_windows(dir.path(), &mapped_options).unwrap();
        let windows_in_memory = load_audio_windows(dir.path(), &tiny_options()).unwrap();
        assert!(windows.samples.is_mapped());
        assert_eq!(
            windows.samples.as_slice(),
            windows_in_memory.samples.as_slice()
        );
        assert_eq!(windows.files, windows_in_memory.files);
    }
}

//! Long recordings cut into consecutive clips ([`load_audio_windows`]).

use std::path::Path;
use std::sync::Arc;

use rayon::prelude::*;

use super::clip::{fit_into, read_resampled};
use super::folder::list_wav_files;
use super::options::AudioOptions;
use super::resample::resampled_len;
use super::set::AudioSet;
use crate::error::DataError;
use crate::store::ClipStore;

/// Reads every `.wav` file under `dir` (recursively, sorted by path) as unlabeled clips cut
/// one after another from each file: a file of `n` clip lengths gives `max(1, floor(n))`
/// clips (what is left after the last whole clip is dropped; a file shorter than one clip
/// gives one zero-padded clip). Long unlabeled recordings are all used this way, where
/// [`load_audio_folder`](super::load_audio_folder) keeps only their centre.
pub fn load_audio_windows(dir: &Path, options: &AudioOptions) -> Result<AudioSet, DataError> {
    let clip_samples = options.clip_samples()?;
    let files = list_wav_files(dir)?;
    // When the clips fit under the memory limit (as the WAV headers tell), every file is
    // decoded once and kept until it is cut. Otherwise in two passes, so that only one file
    // per worker is decoded at a time: the clip count of every file, then the clips
    // themselves straight into their place in the store.
    let header_samples: u64 = files
        .iter()
        .map(|path| samples_in_header(path, options))
        .sum();
    let decoded = if header_samples.saturating_mul(4) <= options.memory_limit_bytes() {
        let waveforms: Vec<Result<Vec<f32>, DataError>> = files
            .par_iter()
            .map(|path| read_resampled(path, options))
            .collect();
        Some(waveforms.into_iter().collect::<Result<Vec<_>, _>>()?)
    } else {
        None
    };
    let counts: Vec<usize> = match &decoded {
        Some(waveforms) => waveforms
            .iter()
            .map(|waveform| windows_of(waveform.len(), clip_samples))
            .collect(),
        None => {
            let counts: Vec<Result<usize, DataError>> = files
                .par_iter()
                .map(|path| {
                    Ok(windows_of(
                        read_resampled(path, options)?.len(),
                        clip_samples,
                    ))
                })
                .collect();
            counts.into_iter().collect::<Result<_, _>>()?
        }
    };
    let total: usize = counts.iter().sum();
    let samples = ClipStore::build(
        total * clip_samples,
        options.memory_limit_bytes(),
        |mut samples| {
            let mut chunks = Vec::with_capacity(files.len());
            for &count in &counts {
                let (chunk, rest) = samples.split_at_mut(count * clip_samples);
                chunks.push(chunk);
                samples = rest;
            }
            let outcomes: Vec<Result<(), DataError>> = chunks
                .into_par_iter()
                .enumerate()
                .map(|(file, chunk)| {
                    let read;
                    let waveform = match &decoded {
                        Some(waveforms) => &waveforms[file],
                        None => {
                            read = read_resampled(&files[file], options)?;
                            if windows_of(read.len(), clip_samples) != counts[file] {
                                return Err(DataError::Io {
                                    path: files[file].clone(),
                                    source: std::io::Error::other(
                                        "the file changed while being read",
                                    ),
                                });
                            }
                            &read
                        }
                    };
                    for (window, clip) in chunk.chunks_mut(clip_samples).enumerate() {
                        fit_into(waveform, window * clip_samples, clip);
                    }
                    Ok(())
                })
                .collect();
            outcomes.into_iter().collect::<Result<(), _>>()
        },
    )?;
    let clip_files = files
        .iter()
        .zip(&counts)
        .flat_map(|(path, &count)| std::iter::repeat_n(path.clone(), count))
        .collect::<Vec<_>>();
    Ok(AudioSet {
        samples: Arc::new(samples),
        memory_limit_bytes: options.memory_limit_bytes(),
        len: total,
        clip_samples,
        sample_rate: options.sample_rate,
        labels: None,
        class_names: Vec::new(),
        files: clip_files,
    })
}

/// The samples `path` holds at the options' rate, as its WAV header tells (0 when the header
/// cannot be read: decoding the file then reports why).
fn samples_in_header(path: &Path, options: &AudioOptions) -> u64 {
    hound::WavReader::open(path).map_or(0, |reader| {
        resampled_len(
            reader.duration() as usize,
            reader.spec().sample_rate,
            options.sample_rate,
        ) as u64
    })
}

/// Clips cut from `len` samples: whole clip lengths, at least one (zero-padded).
fn windows_of(len: usize, clip_samples: usize) -> usize {
    (len / clip_samples).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::fixtures::*;
    use crate::audio::{load_audio_folder, read_wav, resample};

    #[test]
    fn windows_cut_each_file_into_consecutive_clips_and_pad_only_a_short_one() {
        let dir = tiny_folder();
        let options = AudioOptions {
            clip_seconds: 0.25,
            ..tiny_options()
        };
        let set = load_audio_windows(dir.path(), &options).unwrap();
        // a/c.wav: 2 samples, one clip; b.wav: 6 samples, three; d.WAV: 8 at 16 Hz, so 4
        // at 8 Hz, two.
        assert_eq!(set.len, 6);
        assert_eq!(set.clip_samples, 2);
        assert_eq!(set.labels, None);
        assert_eq!(set.clip(0), [-0.5, 0.25]);
        assert_eq!(set.clip(1), [0.125, 0.25]);
        assert_eq!(set.clip(2), [0.375, 0.5]);
        assert_eq!(set.clip(3), [0.625, 0.75]);
        let at_8 = resample(&read_wav(&dir.path().join("d.WAV")).unwrap().samples, 16, 8).unwrap();
        assert_eq!([set.clip(4), set.clip(5)].concat(), at_8);
        assert_eq!(set.files[1], set.files[3]);
        // A clip longer than the file: one zero-padded clip per file.
        let long = AudioOptions {
            clip_seconds: 1.0,
            ..tiny_options()
        };
        let set = load_audio_windows(dir.path(), &long).unwrap();
        assert_eq!(set.len, 3);
        assert_eq!(set.clip(0), [-0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        // Joined with other clips, everything is unlabeled and in order.
        let labeled = AudioSet {
            labels: Some(vec![0; 3]),
            class_names: vec!["x".into()],
            ..set.clone()
        };
        let joined = labeled.unlabeled_with(&set.subset(&[1]));
        assert_eq!((joined.len, joined.labels.clone()), (4, None));
        assert_eq!(joined.clip(3), set.clip(1));
        assert_eq!(joined.files.len(), 4);
    }

    /// The shared spoken sentences load as unlabeled 3-second clips.
    #[test]
    fn shared_spoken_sentences_load() {
        let Some(dir) = shared_audio() else { return };
        let options = AudioOptions {
            clip_seconds: 3.0,
            ..AudioOptions::default()
        };
        let set = load_audio_folder(&dir.join("spoken-sentences/clips"), &options).unwrap();
        assert_eq!(set.len, 140);
        assert_eq!(set.clip_samples, 48000);
        assert_eq!(set.labels, None);
        assert!(set.files.windows(2).all(|pair| pair[0] < pair[1]));
        // Cut into one-second clips for pretraining: three per sentence.
        let windows =
            load_audio_windows(&dir.join("spoken-sentences"), &AudioOptions::default()).unwrap();
        assert_eq!((windows.len, windows.clip_samples), (420, 16000));
        assert_eq!(windows.clip(1), &set.clip(0)[16000..32000]);
    }
}

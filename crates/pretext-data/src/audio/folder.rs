//! A folder of `.wav` files read as unlabeled clips, and the parallel reader of a list of
//! files into clips that labeled data goes through too.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::clip::read_clip;
use super::options::AudioOptions;
use super::set::AudioSet;
use crate::error::DataError;
use crate::source::files_with_extension;
use crate::store::ClipStore;

/// The extension of the audio files the loaders pick up (compared case-insensitively).
pub const WAV_EXTENSION: &str = "wav";

/// Every `.wav` file under `dir` and its subfolders (hidden entries skipped), sorted by path.
pub fn list_wav_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let files = files_with_extension(dir, WAV_EXTENSION)?;
    if files.is_empty() {
        return Err(DataError::NoAudio {
            path: dir.to_path_buf(),
            details: format!("expected .{WAV_EXTENSION} files in the folder or its subfolders"),
        });
    }
    Ok(files)
}

/// Reads every `.wav` file under `dir` (recursively, sorted by path) as unlabeled clips.
pub fn load_audio_folder(dir: &Path, options: &AudioOptions) -> Result<AudioSet, DataError> {
    options.clip_samples()?;
    let files = list_wav_files(dir)?;
    load_clips(files, None, Vec::new(), options)
}

/// Reads `files` in parallel into clips, in order; the error reported is the first file's.
pub(super) fn load_clips(
    files: Vec<PathBuf>,
    labels: Option<Vec<u16>>,
    class_names: Vec<String>,
    options: &AudioOptions,
) -> Result<AudioSet, DataError> {
    let clip_samples = options.clip_samples()?;
    let samples = ClipStore::build(
        files.len() * clip_samples,
        options.memory_limit_bytes(),
        |samples| {
            let outcomes: Vec<Result<(), DataError>> = samples
                .par_chunks_mut(clip_samples)
                .zip(files.par_iter())
                .map(|(clip, path)| read_clip(path, options, clip))
                .collect();
            outcomes.into_iter().collect::<Result<(), _>>()
        },
    )?;
    Ok(AudioSet {
        samples: Arc::new(samples),
        memory_limit_bytes: options.memory_limit_bytes(),
        len: files.len(),
        clip_samples,
        sample_rate: options.sample_rate,
        labels,
        class_names,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::fixtures::*;
    use crate::audio::{read_wav, resample};

    #[test]
    fn a_folder_loads_every_wav_recursively_in_path_order_centred_padded_and_resampled() {
        let dir = tiny_folder();
        let set = load_audio_folder(dir.path(), &tiny_options()).unwrap();
        assert_eq!(set.len, 3);
        assert_eq!(set.clip_samples, 4);
        assert_eq!(set.sample_rate, 8);
        assert_eq!(set.labels, None);
        assert_eq!(set.num_classes(), 0);
        let names: Vec<_> = set
            .files
            .iter()
            .map(|file| file.strip_prefix(dir.path()).unwrap().to_path_buf())
            .collect();
        assert_eq!(
            names,
            [Path::new("a/c.wav"), Path::new("b.wav"), Path::new("d.WAV")]
        );
        assert_eq!(set.clip(0), [-0.5, 0.25, 0.0, 0.0]);
        assert_eq!(set.clip(1), [0.25, 0.375, 0.5, 0.625]);
        let at_16 = read_wav(&dir.path().join("d.WAV")).unwrap().samples;
        assert_eq!(set.clip(2), resample(&at_16, 16, 8).unwrap());

        let subset = set.subset(&[2, 0]);
        assert_eq!(subset.len, 2);
        assert_eq!(subset.clip(0), set.clip(2));
        assert_eq!(subset.clip(1), set.clip(0));
        assert_eq!(subset.files, [set.files[2].clone(), set.files[0].clone()]);
    }

    #[test]
    fn a_wrong_sample_rate_without_resampling_names_the_file_and_both_rates() {
        let dir = tiny_folder();
        let options = AudioOptions {
            resample: false,
            ..tiny_options()
        };
        let error = load_audio_folder(dir.path(), &options).unwrap_err();
        assert!(matches!(
            error,
            DataError::SampleRateMismatch {
                found: 16,
                expected: 8,
                ..
            }
        ));
        let message = error.to_string();
        assert!(
            message.contains("d.WAV: sample rate 16 Hz, expected 8 Hz"),
            "{message}"
        );
        assert!(message.contains("enable resampling"), "{message}");
    }

    #[test]
    fn a_folder_without_wavs_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        write_bytes(&dir.path().join("readme.txt"), b"no audio here");
        let message = error_text(load_audio_folder(dir.path(), &AudioOptions::default()));
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("no audio found"), "{message}");
    }
}

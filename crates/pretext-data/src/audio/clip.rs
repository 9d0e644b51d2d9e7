//! One recording made one clip: read at the options' rate, then centre-cropped or
//! zero-padded to the clip's length.

use std::path::Path;

use super::options::AudioOptions;
use super::resample::resample;
use super::wav::read_wav;
use crate::error::DataError;

/// The start of a centred crop of `length` samples from `len` (0 when `len ≤ length`).
pub fn centered_start(len: usize, length: usize) -> usize {
    len.saturating_sub(length) / 2
}

/// `samples` made exactly `length` long: when longer, the `length` samples from `start`
/// (clamped so the crop stays inside); when shorter, all of them followed by zeros.
pub fn fit_length(samples: &[f32], length: usize, start: usize) -> Vec<f32> {
    let mut clip = vec![0.0; length];
    fit_into(samples, start, &mut clip);
    clip
}

/// [`fit_length`] into `clip`, whose length is the target.
pub(super) fn fit_into(samples: &[f32], start: usize, clip: &mut [f32]) {
    let length = clip.len();
    if samples.len() >= length {
        let start = start.min(samples.len() - length);
        clip.copy_from_slice(&samples[start..start + length]);
    } else {
        clip[..samples.len()].copy_from_slice(samples);
        clip[samples.len()..].fill(0.0);
    }
}

/// The longest recording read from one file: 4 hours (230 M samples, 920 MB, at 16 kHz). A
/// header claiming a very low rate would otherwise make a small file resample into
/// gigabytes (a 1 MB file at 1 Hz is 139 hours).
pub const MAX_RECORDING_SECONDS: u64 = 4 * 3600;

/// Reads `path` resampled to the options' rate (or rejected when resampling is off).
pub(super) fn read_resampled(path: &Path, options: &AudioOptions) -> Result<Vec<f32>, DataError> {
    let waveform = read_wav(path)?;
    let samples = waveform.samples.len();
    if samples as u64 > MAX_RECORDING_SECONDS * u64::from(waveform.sample_rate) {
        return Err(DataError::RecordingTooLong {
            path: path.to_path_buf(),
            samples,
            rate: waveform.sample_rate,
            limit_seconds: MAX_RECORDING_SECONDS,
        });
    }
    if waveform.sample_rate == options.sample_rate {
        Ok(waveform.samples)
    } else if options.resample {
        resample(&waveform.samples, waveform.sample_rate, options.sample_rate)
    } else {
        Err(DataError::SampleRateMismatch {
            path: path.to_path_buf(),
            found: waveform.sample_rate,
            expected: options.sample_rate,
        })
    }
}

/// Reads `path` into `clip`: resampled to the options' rate (or rejected when resampling is
/// off), then centre-cropped or zero-padded to the clip's length.
pub(super) fn read_clip(
    path: &Path,
    options: &AudioOptions,
    clip: &mut [f32],
) -> Result<(), DataError> {
    let samples = read_resampled(path, options)?;
    fit_into(&samples, centered_start(samples.len(), clip.len()), clip);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::fixtures::write_mono16;
    use crate::audio::load_audio_folder;

    #[test]
    fn fit_length_crops_from_a_clamped_start_and_pads_at_the_end() {
        let samples = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(fit_length(&samples, 3, 0), [1.0, 2.0, 3.0]);
        assert_eq!(fit_length(&samples, 3, 1), [2.0, 3.0, 4.0]);
        assert_eq!(fit_length(&samples, 3, 9), [3.0, 4.0, 5.0]);
        assert_eq!(fit_length(&samples, 5, 2), samples);
        assert_eq!(
            fit_length(&samples, 7, 3),
            [1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0]
        );
        assert_eq!(fit_length(&samples, 0, 0), Vec::<f32>::new());
        assert_eq!(centered_start(5, 3), 1);
        assert_eq!(centered_start(6, 3), 1);
        assert_eq!(centered_start(7, 3), 2);
        assert_eq!(centered_start(3, 5), 0);
        assert_eq!(
            fit_length(&samples, 3, centered_start(5, 3)),
            [2.0, 3.0, 4.0]
        );
    }

    /// A small file whose header claims a very low rate is hours long once read at 16 kHz:
    /// refused naming the file, before anything is resampled (found by reviewing the fuzz
    /// campaign: 20 000 samples at 1 Hz would become 320 M samples).
    #[test]
    fn a_recording_longer_than_four_hours_is_refused_before_resampling() {
        let dir = tempfile::tempdir().unwrap();
        let long = write_mono16(&dir.path().join("clips/long.wav"), 1, &vec![0i16; 20_000]);
        let error = load_audio_folder(&dir.path().join("clips"), &AudioOptions::default())
            .unwrap_err()
            .to_string();
        for needle in [
            long.to_str().unwrap(),
            "20000 samples at 1 Hz",
            "5.6 hours",
            "up to 4 hours",
        ] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
        // Four hours exactly is read (at its own rate: no 230 M-sample resampling here).
        write_mono16(&long, 1, &vec![0i16; 14_400]);
        let options = AudioOptions {
            sample_rate: 1,
            ..AudioOptions::default()
        };
        load_audio_folder(&dir.path().join("clips"), &options).unwrap();
    }
}

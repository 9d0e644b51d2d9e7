//! How audio files become clips ([`AudioOptions`]) and the clip length they give.

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::store::megabytes;

/// Longest clip [`AudioOptions`] accept, in samples (a guard against absurd allocations).
const MAX_CLIP_SAMPLES: usize = 1 << 31;

/// How audio files become clips.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioOptions {
    /// The rate every clip is stored at, in Hz.
    pub sample_rate: u32,
    /// Resample files at another rate to `sample_rate`; when false such a file is an error.
    pub resample: bool,
    /// Length of every clip in seconds (cropped around the centre or zero-padded at the end).
    pub clip_seconds: f64,
    /// Decoded clips beyond this many MB (4 bytes a sample) are kept in a temporary file
    /// mapped into memory rather than in the process's own memory, so that a dataset larger
    /// than RAM is paged in as batches read it; the file needs as much free disk under the
    /// temporary folder (`TMPDIR`).
    pub memory_limit_mb: u64,
}

impl Default for AudioOptions {
    fn default() -> Self {
        AudioOptions {
            sample_rate: 16_000,
            resample: true,
            clip_seconds: 1.0,
            memory_limit_mb: 4096,
        }
    }
}

impl AudioOptions {
    pub(super) fn memory_limit_bytes(&self) -> u64 {
        megabytes(self.memory_limit_mb)
    }

    /// The clip length in samples, `round(clip_seconds × sample_rate)`, after checking both.
    pub fn clip_samples(&self) -> Result<usize, DataError> {
        if self.sample_rate == 0 {
            return Err(DataError::BadOption {
                option: "sample_rate",
                reason: "expected a rate above 0 Hz, found 0".to_string(),
            });
        }
        if !(self.clip_seconds.is_finite() && self.clip_seconds > 0.0) {
            return Err(DataError::BadOption {
                option: "clip_seconds",
                reason: format!(
                    "expected a finite length above 0, found {}",
                    self.clip_seconds
                ),
            });
        }
        let samples = (self.clip_seconds * f64::from(self.sample_rate)).round();
        if samples < 1.0 || samples > MAX_CLIP_SAMPLES as f64 {
            return Err(DataError::BadOption {
                option: "clip_seconds",
                reason: format!(
                    "{} s at {} Hz is {samples} samples; expected 1 to {MAX_CLIP_SAMPLES}",
                    self.clip_seconds, self.sample_rate
                ),
            });
        }
        Ok(samples as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::fixtures::error_text;

    #[test]
    fn options_have_defaults_reject_unknown_keys_and_bad_values() {
        let options: AudioOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(options, AudioOptions::default());
        assert_eq!(options.clip_samples().unwrap(), 16000);
        let options: AudioOptions =
            serde_json::from_str(r#"{"sample_rate": 8000, "clip_seconds": 1.5}"#).unwrap();
        assert!(options.resample);
        assert_eq!(options.clip_samples().unwrap(), 12000);
        let unknown = serde_json::from_str::<AudioOptions>(r#"{"rate": 8000}"#).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown field `rate`"),
            "{unknown}"
        );

        for (options, option) in [
            (
                AudioOptions {
                    sample_rate: 0,
                    ..AudioOptions::default()
                },
                "sample_rate",
            ),
            (
                AudioOptions {
                    clip_seconds: 0.0,
                    ..AudioOptions::default()
                },
                "clip_seconds",
            ),
            (
                AudioOptions {
                    clip_seconds: f64::NAN,
                    ..AudioOptions::default()
                },
                "clip_seconds",
            ),
            (
                AudioOptions {
                    sample_rate: 8,
                    clip_seconds: 0.01,
                    ..AudioOptions::default()
                },
                "clip_seconds",
            ),
        ] {
            let message = error_text(options.clip_samples());
            assert!(
                message.starts_with(&format!("invalid {option}")),
                "{message}"
            );
        }
    }
}

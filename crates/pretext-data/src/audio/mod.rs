//! Audio: WAV files read into fixed-length mono clips at one sample rate.
//!
//! [`read_wav`] decodes a WAV file with `hound` (its sample rate must be in
//! [`WAV_SAMPLE_RATES`]): 8-, 16-, 24- and 32-bit integer PCM are
//! scaled by 2^(bits − 1) into [-1, 1) (8-bit WAV data is unsigned with its zero at 128;
//! `hound` recentres it), 32-bit float samples are taken as stored (they must be finite and
//! within ±[`MAX_FLOAT_SAMPLE`]), and every channel count is mixed down to mono by averaging
//! the channels of each frame.
//!
//! [`resample`] converts a whole clip between two fixed rates with `rubato`'s synchronous
//! FFT resampler (`Fft` with `process_all`, which trims the resampler's delay so the
//! output lines up with the input), band-limited, so content above the lower rate's Nyquist
//! frequency is filtered out rather than aliased. Its FFT blocks are kept an even number of
//! samples long on both sides: with an odd block, the delay `rubato` 5.1 trims is off by half
//! an input sample, which shifts the whole clip.
//!
//! A dataset ([`AudioSet`]) stores every clip at the same length,
//! `clip_samples = round(clip_seconds × sample_rate)`: a longer recording is cropped to its
//! centre ([`centered_start`]), a shorter one is zero-padded at the end ([`fit_length`]).
//! Files at another rate are resampled first, or rejected when [`AudioOptions::resample`]
//! is off. [`load_audio_folder`] reads every `.wav` under a folder as unlabeled clips;
//! [`load_audio_labels`] reads a CSV of `file,label[,split]` rows.

mod clip;
#[cfg(test)]
mod fixtures;
mod folder;
mod labels;
mod options;
mod resample;
mod set;
mod spec;
mod wav;
mod windows;

pub use clip::{centered_start, fit_length, MAX_RECORDING_SECONDS};
pub use folder::{list_wav_files, load_audio_folder, WAV_EXTENSION};
pub use labels::{load_audio_labels, AUDIO_LABELS_FILE};
pub use options::AudioOptions;
pub use resample::{resample, resampled_len};
pub use set::{AudioSet, AudioSplits};
pub use spec::{is_audio_path, load_audio};
pub use wav::{read_wav, read_wav_bytes, Waveform, MAX_FLOAT_SAMPLE, WAV_SAMPLE_RATES};
pub use windows::load_audio_windows;

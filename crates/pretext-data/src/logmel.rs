//! Log-mel spectrograms: the classic hand-made audio features, and the pooled vectors of the
//! "log-mel spectrogram + logistic regression" keyword-spotting baseline.
//!
//! One clip at sample rate `sr` goes through four steps ([`log_mel_spectrogram`]):
//! 1. Frames of `window = round(window_seconds × sr)` samples every
//!    `hop = round(hop_seconds × sr)`: `frames = 1 + (len − window) / hop`; a clip shorter
//!    than one window is a single zero-padded frame.
//! 2. Each frame is multiplied by the periodic Hann window `0.5 − 0.5 cos(2πn / window)`,
//!    zero-padded at the end to `fft_len`, the next power of two, and transformed with
//!    `realfft`; its power spectrum is `|X[k]|²` for `k = 0..=fft_len/2`.
//! 3. The power is summed through `mel_bands` triangular filters ([`mel_filterbank`]) evenly
//!    spaced on the HTK mel scale `2595 · log10(1 + f/700)` from `min_hz` to `max_hz`, without
//!    area normalization (torchaudio's `melscale_fbanks(norm=None, mel_scale="htk")`).
//! 4. Each band's energy becomes `ln(energy + 1e-6)`: a `frames × mel_bands` matrix.
//!
//! [`log_mel_features`] pools every clip of an [`AudioSet`] to a fixed `mel_bands × time_bins`
//! vector by averaging the frames of `time_bins` equal spans, in parallel over clips. The
//! defaults (25 ms windows every 10 ms, 40 bands from 20 Hz to Nyquist, 10 time bins) are the
//! usual keyword-spotting front end.

use std::sync::Arc;

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use crate::audio::AudioSet;
use crate::error::DataError;

/// Added to every band energy before the logarithm, so silence is `ln(1e-6)`, not `-inf`.
const LOG_FLOOR: f32 = 1e-6;

/// Longest analysis window [`LogMelConfig::validate`] accepts, in samples.
const MAX_WINDOW_SAMPLES: usize = 1 << 20;

/// Settings of the log-mel spectrogram (defaults: 25 ms Hann windows every 10 ms at 16 kHz,
/// 40 mel bands, 20 Hz–8 kHz, 10 time bins).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogMelConfig {
    /// Length of each analysis window in seconds.
    pub window_seconds: f64,
    /// Step between the starts of consecutive windows in seconds.
    pub hop_seconds: f64,
    /// Number of triangular mel filters.
    pub mel_bands: usize,
    /// Lower edge of the lowest filter in Hz.
    pub min_hz: f64,
    /// Upper edge of the highest filter in Hz; 0 means the Nyquist frequency `sample_rate / 2`.
    pub max_hz: f64,
    /// Equal spans of frames averaged into the pooled features of [`log_mel_features`].
    pub time_bins: usize,
}

impl Default for LogMelConfig {
    fn default() -> Self {
        LogMelConfig {
            window_seconds: 0.025,
            hop_seconds: 0.010,
            mel_bands: 40,
            min_hz: 20.0,
            max_hz: 0.0,
            time_bins: 10,
        }
    }
}

impl LogMelConfig {
    /// Checks every setting for clips at `sample_rate`, naming the first bad field.
    pub fn validate(&self, sample_rate: u32) -> Result<(), DataError> {
        let bad =
            |option: &'static str, reason: String| Err(DataError::BadOption { option, reason });
        if sample_rate == 0 {
            return bad(
                "sample_rate",
                "expected a rate above 0 Hz, found 0".to_string(),
            );
        }
        let rate = f64::from(sample_rate);
        for (option, seconds) in [
            ("window_seconds", self.window_seconds),
            ("hop_seconds", self.hop_seconds),
        ] {
            let samples = (seconds * rate).round();
            if !(samples >= 1.0 && samples <= MAX_WINDOW_SAMPLES as f64) {
                return bad(
                    option,
                    format!(
                        "{seconds} s at {sample_rate} Hz is {samples} samples; \
                         expected 1 to {MAX_WINDOW_SAMPLES}"
                    ),
                );
            }
        }
        for (option, count) in [("mel_bands", self.mel_bands), ("time_bins", self.time_bins)] {
            if count == 0 {
                return bad(option, "expected at least 1, found 0".to_string());
            }
        }
        let nyquist = rate / 2.0;
        if !(self.max_hz >= 0.0 && self.max_hz <= nyquist) {
            return bad(
                "max_hz",
                format!(
                    "expected 0 (Nyquist) up to {nyquist} Hz (half of {sample_rate} Hz), found {}",
                    self.max_hz
                ),
            );
        }
        let max_hz = upper_edge(sample_rate, self);
        if !(self.min_hz >= 0.0 && self.min_hz < max_hz) {
            return bad(
                "min_hz",
                format!(
                    "expected 0 Hz or more and below max_hz = {max_hz} Hz, found {}",
                    self.min_hz
                ),
            );
        }
        Ok(())
    }
}

/// The upper edge of the highest filter in Hz: `max_hz`, or Nyquist when it is 0.
fn upper_edge(sample_rate: u32, config: &LogMelConfig) -> f64 {
    if config.max_hz == 0.0 {
        f64::from(sample_rate) / 2.0
    } else {
        config.max_hz
    }
}

fn hz_to_mel(hz: f64) -> f64 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f64) -> f64 {
    700.0 * (10f64.powf(mel / 2595.0) - 1.0)
}

/// Triangular mel filters (HTK mel scale `2595 · log10(1 + f/700)`, no area normalization,
/// like torchaudio.transforms.MelSpectrogram's defaults), `mel_bands × (fft_len/2 + 1)`
/// row-major.
///
/// Bin `k` is at `k · sample_rate / fft_len` Hz. The `mel_bands + 2` edge points are evenly
/// spaced in mel from `min_hz` to `max_hz`; filter `m` rises linearly in Hz from point `m` to
/// 1 at point `m + 1` and falls back to 0 at point `m + 2`.
pub fn mel_filterbank(sample_rate: u32, fft_len: usize, config: &LogMelConfig) -> Vec<f32> {
    let n_freqs = fft_len / 2 + 1;
    let (mel_min, mel_max) = (
        hz_to_mel(config.min_hz),
        hz_to_mel(upper_edge(sample_rate, config)),
    );
    let edges: Vec<f64> = (0..config.mel_bands + 2)
        .map(|point| {
            let fraction = point as f64 / (config.mel_bands + 1) as f64;
            mel_to_hz(mel_min + fraction * (mel_max - mel_min))
        })
        .collect();
    let mut filters = Vec::with_capacity(config.mel_bands * n_freqs);
    for band in edges.windows(3) {
        let [lower, centre, upper] = [band[0], band[1], band[2]];
        filters.extend((0..n_freqs).map(|bin| {
            let hz = bin as f64 * f64::from(sample_rate) / fft_len as f64;
            let rising = (hz - lower) / (centre - lower);
            let falling = (upper - hz) / (upper - centre);
            rising.min(falling).max(0.0) as f32
        }));
    }
    filters
}

/// Everything planned once per call and shared by every clip: window, hop, FFT and filters.
struct LogMelPlan {
    window: usize,
    hop: usize,
    hann: Vec<f32>,
    /// `[mel_bands, fft_len/2 + 1]`
    filterbank: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

/// Per-thread working memory of [`LogMelPlan::spectrogram`], reused across clips.
struct FrameBuffers {
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
    /// The last clip's `[frames, mel_bands]` log-mel spectrogram.
    log_mel: Vec<f32>,
}

impl LogMelPlan {
    /// Panics with the validation error when `config` is invalid at `sample_rate`.
    fn new(sample_rate: u32, config: &LogMelConfig) -> Self {
        if let Err(error) = config.validate(sample_rate) {
            panic!("log-mel spectrogram: {error}; check the config with LogMelConfig::validate");
        }
        let to_samples = |seconds: f64| (seconds * f64::from(sample_rate)).round() as usize;
        let window = to_samples(config.window_seconds);
        let fft_len = window.next_power_of_two();
        let hann = (0..window)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * n as f64 / window as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        LogMelPlan {
            window,
            hop: to_samples(config.hop_seconds),
            hann,
            filterbank: mel_filterbank(sample_rate, fft_len, config),
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(fft_len),
        }
    }

    fn buffers(&self) -> FrameBuffers {
        FrameBuffers {
            frame: self.fft.make_input_vec(),
            spectrum: self.fft.make_output_vec(),
            scratch: self.fft.make_scratch_vec(),
            power: vec![0.0; self.fft.complex_len()],
            log_mel: Vec::new(),
        }
    }

    /// Fills `buffers.log_mel` with the spectrogram of `samples` and returns its frame count.
    fn spectrogram(&self, samples: &[f32], buffers: &mut FrameBuffers) -> usize {
        let frames = 1 + samples.len().saturating_sub(self.window) / self.hop;
        buffers.log_mel.clear();
        for frame in 0..frames {
            let start = frame * self.hop;
            let end = samples.len().min(start + self.window);
            buffers.frame.fill(0.0);
            for ((out, &sample), &weight) in buffers
                .frame
                .iter_mut()
                .zip(&samples[start..end])
                .zip(&self.hann)
            {
                *out = sample * weight;
            }
            self.fft
                .process_with_scratch(
                    &mut buffers.frame,
                    &mut buffers.spectrum,
                    &mut buffers.scratch,
                )
                .expect("buffers come from the plan, so their lengths match");
            for (power, bin) in buffers.power.iter_mut().zip(&buffers.spectrum) {
                *power = bin.norm_sqr();
            }
            let n_freqs = buffers.power.len();
            buffers
                .log_mel
                .extend(self.filterbank.chunks_exact(n_freqs).map(|filter| {
                    let energy: f32 = filter.iter().zip(&buffers.power).map(|(w, p)| w * p).sum();
                    (energy + LOG_FLOOR).ln()
                }));
        }
        frames
    }
}

/// Log-mel spectrogram of one clip: `frames × mel_bands` row-major, `frames = 1 + (len −
/// window) / hop` (at least 1; a clip shorter than one window is zero-padded), each frame a
/// periodic Hann window of `window` samples zero-padded to the next power of two FFT length,
/// power spectrum `|X|²`, mel-filtered, then `ln(energy + 1e-6)`. Returns `(frames, values)`.
///
/// # Panics
/// When `config` fails [`LogMelConfig::validate`] at `sample_rate`; validate it first.
pub fn log_mel_spectrogram(
    samples: &[f32],
    sample_rate: u32,
    config: &LogMelConfig,
) -> (usize, Vec<f32>) {
    let plan = LogMelPlan::new(sample_rate, config);
    let mut buffers = plan.buffers();
    let frames = plan.spectrogram(samples, &mut buffers);
    (frames, buffers.log_mel)
}

/// The pooled baseline features of every clip of `set`: each clip's log-mel spectrogram
/// averaged over `time_bins` equal spans of frames (span `b` covers frames
/// `[b·F/time_bins, (b+1)·F/time_bins)`, at least one frame each), giving
/// `mel_bands × time_bins` values per clip, band-major (all bins of band 0, then band 1 ...).
/// Computed in parallel over clips. Returns `set.len × (mel_bands · time_bins)` row-major.
///
/// # Panics
/// When `config` fails [`LogMelConfig::validate`] at `set.sample_rate`; validate it first.
pub fn log_mel_features(set: &AudioSet, config: &LogMelConfig) -> Vec<f32> {
    let plan = LogMelPlan::new(set.sample_rate, config);
    let (bands, bins) = (config.mel_bands, config.time_bins);
    let mut features = vec![0.0; set.len * bands * bins]; // [N, mel_bands, time_bins]
    features
        .par_chunks_mut(bands * bins)
        .enumerate()
        .for_each_init(
            || plan.buffers(),
            |buffers, (clip, pooled)| {
                let frames = plan.spectrogram(set.clip(clip), buffers); // [frames, mel_bands]
                pool_time_bins(&buffers.log_mel, frames, bands, pooled); // [mel_bands, time_bins]
            },
        );
    features
}

/// Averages a `[frames, mel_bands]` spectrogram over `pooled.len() / mel_bands` equal spans
/// of frames (at least one frame each) into `pooled`, `[mel_bands, time_bins]`.
fn pool_time_bins(log_mel: &[f32], frames: usize, mel_bands: usize, pooled: &mut [f32]) {
    let bins = pooled.len() / mel_bands;
    for bin in 0..bins {
        let start = bin * frames / bins;
        let end = ((bin + 1) * frames / bins).max(start + 1);
        for band in 0..mel_bands {
            let sum: f32 = (start..end)
                .map(|frame| log_mel[frame * mel_bands + band])
                .sum();
            pooled[band * bins + bin] = sum / (end - start) as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn assert_close(found: f32, expected: f64, tolerance: f64) {
        let error = (f64::from(found) - expected).abs();
        assert!(error <= tolerance, "found {found}, expected {expected}");
    }

    // Reference, rerun with numpy:
    //   mel = lambda f: 2595 * np.log10(1 + f / 700); hz = lambda m: 700 * (10 ** (m / 2595) - 1)
    //   freqs = np.arange(257) * 16000 / 512
    //   pts = hz(np.linspace(mel(20.0), mel(8000.0), 42)); diff = np.diff(pts)
    //   slopes = pts[None, :] - freqs[:, None]
    //   fb = np.maximum(0, np.minimum(-slopes[:, :-2] / diff[:-1], slopes[:, 2:] / diff[1:])).T
    #[test]
    fn filterbank_matches_numpy_reference() {
        let filters = mel_filterbank(16_000, 512, &LogMelConfig::default());
        assert_eq!(filters.len(), 40 * 257);
        let entries = [
            (0, 1, 0.24935710153821336),
            (0, 2, 0.9420157169221349),
            (5, 10, 0.6022865483607412),
            (12, 28, 0.8761094103482541),
            (20, 60, 0.9669949448620626),
            (30, 130, 0.9165985698249268),
            (39, 250, 0.3654925538458141),
            (12, 23, 0.0),
        ];
        for (band, bin, expected) in entries {
            assert_close(filters[band * 257 + bin], expected, 1e-4);
        }
        for (band, expected) in [
            (0, 1.5941228494781388),
            (17, 4.17817320126124),
            (39, 15.920730958226777),
        ] {
            let sum: f32 = filters[band * 257..(band + 1) * 257].iter().sum();
            assert_close(sum, expected, 1e-4);
        }
    }

    fn sine(hz: f64, len: usize) -> Vec<f32> {
        (0..len)
            .map(|n| (2.0 * std::f64::consts::PI * hz * n as f64 / 16_000.0).sin() as f32)
            .collect()
    }

    /// The band with the highest mean log energy over the clip's frames.
    fn loudest_band(samples: &[f32]) -> usize {
        let (frames, log_mel) = log_mel_spectrogram(samples, 16_000, &LogMelConfig::default());
        let mean = |band: usize| {
            (0..frames)
                .map(|frame| log_mel[frame * 40 + band])
                .sum::<f32>()
        };
        (0..40)
            .max_by(|&a, &b| mean(a).total_cmp(&mean(b)))
            .unwrap()
    }

    #[test]
    fn sine_peaks_in_the_band_centred_nearest_its_frequency() {
        let mel = |hz: f64| 2595.0 * (1.0 + hz / 700.0).log10();
        let centre = |band: usize| {
            let point = mel(20.0) + (band + 1) as f64 * (mel(8000.0) - mel(20.0)) / 41.0;
            700.0 * (10f64.powf(point / 2595.0) - 1.0)
        };
        let nearest = (0..40).min_by(|&a, &b| {
            (centre(a) - 1000.0)
                .abs()
                .total_cmp(&(centre(b) - 1000.0).abs())
        });
        let low = loudest_band(&sine(1000.0, 16_000));
        assert_eq!(Some(low), nearest);
        assert!(loudest_band(&sine(3000.0, 16_000)) > low);
    }

    #[test]
    fn frame_count_follows_window_and_hop() {
        let config = LogMelConfig::default();
        let (frames, log_mel) = log_mel_spectrogram(&sine(440.0, 16_000), 16_000, &config);
        assert_eq!((frames, log_mel.len()), (98, 98 * 40));
        let (frames, log_mel) = log_mel_spectrogram(&sine(440.0, 100), 16_000, &config);
        assert_eq!((frames, log_mel.len()), (1, 40));
        assert!(log_mel.iter().all(|value| value.is_finite()));
    }

    #[test]
    fn silence_is_log_of_the_floor() {
        let (_, log_mel) = log_mel_spectrogram(&[0.0; 4000], 16_000, &LogMelConfig::default());
        assert!(log_mel.iter().all(|&value| value == 1e-6f32.ln()));
    }

    // Reference, rerun with numpy (fb as above):
    //   n = np.arange(1600); x = np.sin(0.05 * n) + 0.3 * np.sin(0.9 * n)
    //   w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    //   frames = np.stack([x[f * 160:f * 160 + 400] * w for f in range(8)])
    //   L = np.log(np.abs(np.fft.rfft(frames, n=512)) ** 2 @ fb.T + 1e-6)
    #[test]
    fn spectrogram_matches_numpy_reference() {
        let samples: Vec<f32> = (0..1600)
            .map(|n| ((0.05 * n as f64).sin() + 0.3 * (0.9 * n as f64).sin()) as f32)
            .collect();
        let (frames, log_mel) = log_mel_spectrogram(&samples, 16_000, &LogMelConfig::default());
        assert_eq!(frames, 8);
        let entries = [
            (0, 3, 4.852604649631878),
            (2, 0, 7.421941098611923),
            (4, 11, -9.008542423788233),
            (5, 20, -7.861207719690884),
            (7, 9, -7.693670856222356),
            (7, 22, 6.893959713408209),
        ];
        for (frame, band, expected) in entries {
            assert_close(log_mel[frame * 40 + band], expected, 1e-3 * expected.abs());
        }
    }

    fn two_clip_set(clip_samples: usize) -> AudioSet {
        let mut samples = sine(1000.0, clip_samples);
        samples.extend(sine(3000.0, clip_samples));
        AudioSet {
            samples: Arc::new(crate::store::Store::Memory(samples)),
            memory_limit_bytes: u64::MAX,
            len: 2,
            clip_samples,
            sample_rate: 16_000,
            labels: Some(vec![0, 1]),
            class_names: vec!["low".to_string(), "high".to_string()],
            files: vec!["low.wav".into(), "high.wav".into()],
        }
    }

    #[test]
    fn pooled_features_average_frame_spans() {
        let config = LogMelConfig::default();
        let set = two_clip_set(16_000);
        let features = log_mel_features(&set, &config);
        assert_eq!(features.len(), 2 * 40 * 10);
        for clip in 0..2 {
            let (frames, log_mel) = log_mel_spectrogram(set.clip(clip), 16_000, &config);
            let span = frames / 10; // 9 of 98 frames
            for band in [0, 13, 39] {
                let mean = (0..span)
                    .map(|frame| log_mel[frame * 40 + band])
                    .sum::<f32>()
                    / span as f32;
                let pooled = features[clip * 400 + band * 10];
                assert_close(pooled, f64::from(mean), 1e-4);
            }
        }
        // A single frame fills every time bin.
        let set = two_clip_set(100);
        let features = log_mel_features(&set, &config);
        let (_, log_mel) = log_mel_spectrogram(set.clip(1), 16_000, &config);
        for band in 0..40 {
            assert!(features[400 + band * 10..400 + (band + 1) * 10]
                .iter()
                .all(|&v| v == log_mel[band]));
        }
    }

    #[test]
    fn validate_names_the_bad_field() {
        assert!(LogMelConfig::default().validate(16_000).is_ok());
        type Change = fn(&mut LogMelConfig);
        let cases: [(Change, u32, &str); 10] = [
            (|config| config.hop_seconds = 0.0, 16_000, "hop_seconds"),
            (
                |config| config.window_seconds = 1e-5,
                16_000,
                "window_seconds",
            ),
            (
                |config| config.window_seconds = f64::NAN,
                16_000,
                "window_seconds",
            ),
            (
                |config| config.window_seconds = 1e3,
                16_000,
                "window_seconds",
            ),
            (|config| config.max_hz = 8000.5, 16_000, "max_hz"),
            (|config| config.min_hz = 8000.0, 16_000, "min_hz"),
            (
                |config| (config.min_hz, config.max_hz) = (500.0, 400.0),
                16_000,
                "min_hz",
            ),
            (|config| config.mel_bands = 0, 16_000, "mel_bands"),
            (|config| config.time_bins = 0, 16_000, "time_bins"),
            (|_| (), 0, "sample_rate"),
        ];
        for (change, sample_rate, field) in cases {
            let mut config = LogMelConfig::default();
            change(&mut config);
            match config.validate(sample_rate) {
                Err(DataError::BadOption { option, .. }) => assert_eq!(option, field, "{config:?}"),
                other => panic!(
                    "{config:?} at {sample_rate} Hz: expected {field} error, found {other:?}"
                ),
            }
        }
    }
}

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

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};
use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::source::{files_with_extension, has_extension};
use crate::store::{megabytes, ClipStore};
use crate::table::csv_error;

/// The extension of the audio files the loaders pick up (compared case-insensitively).
pub const WAV_EXTENSION: &str = "wav";

/// Chunk size hint of the FFT resampler, in input samples (see [`resampler_chunk`]).
const RESAMPLER_CHUNK: usize = 1024;

/// The sample rates a WAV file may declare, in Hz: up to 768 kHz, the highest rate audio is
/// recorded at. A higher rate is a corrupt header: one of 4294967295 Hz made the resampler
/// allocate gigabytes for its FFT blocks.
pub const WAV_SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1..=768_000;

/// The largest magnitude a float WAV sample may have: 60 dB above full scale (±1). Larger
/// values are misread or corrupt data, and would overflow the resampler's FFT to infinity.
pub const MAX_FLOAT_SAMPLE: f32 = 1000.0;

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
    fn memory_limit_bytes(&self) -> u64 {
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

/// One decoded WAV file.
#[derive(Clone, Debug, PartialEq)]
pub struct Waveform {
    /// Mono samples in [-1, 1] (a float file's samples as stored).
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

/// Fixed-length mono clips, labeled or not.
///
/// Every clip is `clip_samples = round(clip_seconds × sample_rate)` long: its file, resampled
/// to `sample_rate` when needed, is cropped to the `clip_samples` around its centre
/// ([`fit_length`] from [`centered_start`]) when longer, and zero-padded at the end when
/// shorter. What lies outside the centred crop is not kept ([`load_audio_windows`] cuts long
/// recordings into several clips instead).
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

/// Reads a WAV file as mono samples in [-1, 1] at its own sample rate.
pub fn read_wav(path: &Path) -> Result<Waveform, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_wav(&bytes, path)
}

/// [`read_wav`] on a WAV file held in memory; `name` stands for the file in errors.
pub fn read_wav_bytes(bytes: &[u8], name: &str) -> Result<Waveform, DataError> {
    decode_wav(bytes, Path::new(name))
}

fn decode_wav(bytes: &[u8], path: &Path) -> Result<Waveform, DataError> {
    check_riff_header(path, bytes)?;
    check_format_tag(path, bytes)?;
    let reader =
        hound::WavReader::new(Cursor::new(bytes)).map_err(|error| header_error(path, error))?;
    let spec = reader.spec();
    if !WAV_SAMPLE_RATES.contains(&spec.sample_rate) {
        return Err(DataError::UnsupportedSampleRate {
            path: path.to_path_buf(),
            found: spec.sample_rate,
            min: *WAV_SAMPLE_RATES.start(),
            max: *WAV_SAMPLE_RATES.end(),
        });
    }
    // Each sample takes at least a byte, so the file's size bounds what the header may claim.
    let capacity = (reader.len() as usize).min(bytes.len());
    let interleaved = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 0.5f64.powi(i32::from(bits) - 1);
            read_samples(path, reader, capacity, |sample: i32| {
                (f64::from(sample) * scale) as f32
            })?
        }
        (hound::SampleFormat::Float, 32) => {
            let samples = read_samples(path, reader, capacity, |sample: f32| sample)?;
            if let Some(index) = samples.iter().position(|sample| !sample.is_finite()) {
                return Err(DataError::NonFiniteSample {
                    path: path.to_path_buf(),
                    index,
                    value: samples[index],
                });
            }
            if let Some(index) = samples
                .iter()
                .position(|sample| sample.abs() > MAX_FLOAT_SAMPLE)
            {
                return Err(DataError::SampleOutOfRange {
                    path: path.to_path_buf(),
                    index,
                    value: samples[index],
                    limit: MAX_FLOAT_SAMPLE,
                });
            }
            samples
        }
        (format, bits) => {
            return Err(DataError::UnsupportedWav {
                path: path.to_path_buf(),
                found: format!(
                    "{bits}-bit {} samples",
                    match format {
                        hound::SampleFormat::Int => "integer",
                        hound::SampleFormat::Float => "float",
                    }
                ),
            })
        }
    };
    if interleaved.is_empty() {
        return Err(DataError::EmptyWav {
            path: path.to_path_buf(),
        });
    }
    let channels = usize::from(spec.channels);
    let samples = if channels == 1 {
        interleaved
    } else {
        // hound guarantees whole frames: the data length is a multiple of the channel count.
        interleaved
            .chunks_exact(channels)
            .map(|frame| {
                (frame.iter().map(|&sample| f64::from(sample)).sum::<f64>() / channels as f64)
                    as f32
            })
            .collect()
    };
    Ok(Waveform {
        samples,
        sample_rate: spec.sample_rate,
    })
}

/// Rejects files that are not RIFF/WAVE before `hound` sees them, naming what they are.
fn check_riff_header(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    const HEADER: usize = 12;
    let magic = bytes.get(..4);
    let form = bytes.get(8..HEADER);
    if magic == Some(b"RIFF") && form == Some(b"WAVE") {
        return Ok(());
    }
    let not_wav = |found: String| DataError::NotWav {
        path: path.to_path_buf(),
        found,
    };
    if bytes.is_empty() {
        return Err(not_wav("an empty file".to_string()));
    }
    // A file cut inside the 12-byte "RIFF" <size> "WAVE" header: a truncated WAV.
    let is_header_prefix = bytes.len() < HEADER
        && bytes.iter().zip(b"RIFF").all(|(byte, magic)| byte == magic)
        && bytes
            .iter()
            .skip(8)
            .zip(b"WAVE")
            .all(|(byte, form)| byte == form);
    if is_header_prefix {
        return Err(DataError::BadWav {
            path: path.to_path_buf(),
            reason: format!(
                "the file is {} bytes, cut inside the {HEADER}-byte RIFF/WAVE header (truncated)",
                bytes.len()
            ),
        });
    }
    match (magic, form) {
        (Some(b"RIFX"), _) => Err(DataError::UnsupportedWav {
            path: path.to_path_buf(),
            found: "a big-endian RIFX file".to_string(),
        }),
        (Some(b"RF64"), _) => Err(DataError::UnsupportedWav {
            path: path.to_path_buf(),
            found: "an RF64 (64-bit size) file".to_string(),
        }),
        (Some(b"RIFF"), Some(form)) => Err(not_wav(format!(
            "a RIFF file of type \"{}\"",
            form.escape_ascii()
        ))),
        _ => Err(not_wav(format!(
            "the bytes \"{}\"",
            bytes[..bytes.len().min(HEADER)].escape_ascii()
        ))),
    }
}

/// Rejects, by the format tag of the first `fmt ` chunk, encodings `hound` does not decode,
/// naming them (`hound` itself reports most of them as a malformed header). A file without
/// a readable `fmt ` chunk is left to `hound`'s own error.
fn check_format_tag(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    const PCM: u16 = 0x0001;
    const IEEE_FLOAT: u16 = 0x0003;
    const EXTENSIBLE: u16 = 0xfffe;
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    // Chunks follow the 12-byte RIFF/WAVE header: a 4-byte id, a 4-byte length, the body
    // (padded to an even length).
    let mut chunk = 12;
    let (format_tag, bits) = loop {
        let (Some(id), Some(len)) = (bytes.get(chunk..chunk + 4), u32_at(chunk + 4)) else {
            return Ok(());
        };
        if id == b"fmt " {
            match (u16_at(chunk + 8), u16_at(chunk + 22)) {
                (Some(format_tag), Some(bits)) => break (format_tag, bits),
                _ => return Ok(()),
            }
        }
        chunk += 8 + len as usize + (len as usize & 1);
    };
    let found = match format_tag {
        PCM | EXTENSIBLE => return Ok(()),
        IEEE_FLOAT if bits == 32 => return Ok(()),
        IEEE_FLOAT => format!("{bits}-bit float samples"),
        0x0002 => "Microsoft ADPCM (format tag 0x0002)".to_string(),
        0x0006 => "A-law (format tag 0x0006)".to_string(),
        0x0007 => "µ-law (format tag 0x0007)".to_string(),
        0x0011 => "IMA ADPCM (format tag 0x0011)".to_string(),
        0x0055 => "MPEG Layer 3 (format tag 0x0055)".to_string(),
        other => format!("a compressed encoding (format tag 0x{other:04x})"),
    };
    Err(DataError::UnsupportedWav {
        path: path.to_path_buf(),
        found,
    })
}

/// The error for a WAV whose header `hound` cannot read.
fn header_error(path: &Path, error: hound::Error) -> DataError {
    match error {
        // The bytes are in memory: a failed read can only mean the file ended early.
        hound::Error::IoError(source) => DataError::BadWav {
            path: path.to_path_buf(),
            reason: format!("the file ends inside its header (truncated): {source}"),
        },
        hound::Error::Unsupported => DataError::UnsupportedWav {
            path: path.to_path_buf(),
            found: "an encoding hound does not decode (a compressed format such as ADPCM \
                    or µ-law, or an unusual bit depth)"
                .to_string(),
        },
        other => DataError::BadWav {
            path: path.to_path_buf(),
            reason: format!("malformed header: {other}"),
        },
    }
}

/// Reads every interleaved sample of `reader`, converted by `convert`.
fn read_samples<S: hound::Sample>(
    path: &Path,
    reader: hound::WavReader<Cursor<&[u8]>>,
    capacity: usize,
    convert: impl Fn(S) -> f32,
) -> Result<Vec<f32>, DataError> {
    let declared = reader.len();
    let mut samples = Vec::with_capacity(capacity);
    for sample in reader.into_samples::<S>() {
        match sample {
            Ok(sample) => samples.push(convert(sample)),
            // The bytes are in memory: a failed read can only mean the file ended early.
            Err(hound::Error::IoError(source)) => {
                return Err(DataError::BadWav {
                    path: path.to_path_buf(),
                    reason: format!(
                        "the data chunk declares {declared} samples but the file ends after {} \
                         (truncated): {source}",
                        samples.len()
                    ),
                });
            }
            Err(error) => {
                return Err(DataError::BadWav {
                    path: path.to_path_buf(),
                    reason: format!("cannot read sample {}: {error}", samples.len()),
                })
            }
        }
    }
    Ok(samples)
}

/// The length of `len` samples resampled from `from` Hz to `to` Hz:
/// `round(len × to / from)`, halves rounded up.
pub fn resampled_len(len: usize, from: u32, to: u32) -> usize {
    let (len, from, to) = (len as u128, u128::from(from), u128::from(to));
    ((len * to + from / 2) / from.max(1)) as usize
}

/// Resamples a whole mono clip from `from` Hz to `to` Hz with `rubato`'s FFT resampler;
/// the output has [`resampled_len`] samples and is the input itself when the rates agree.
pub fn resample(samples: &[f32], from: u32, to: u32) -> Result<Vec<f32>, DataError> {
    let error = |reason: String| DataError::Resample { from, to, reason };
    if from == 0 || to == 0 {
        return Err(error("expected both rates above 0 Hz".to_string()));
    }
    if from == to {
        return Ok(samples.to_vec());
    }
    if samples.is_empty() {
        return Ok(Vec::new());
    }
    let mut resampler = Fft::<f32>::new(
        from as usize,
        to as usize,
        resampler_chunk(from, to),
        1,
        FixedSync::Both,
    )
    .map_err(|cause| error(cause.to_string()))?;
    let input = InterleavedSlice::new(samples, 1, samples.len())
        .map_err(|cause| error(cause.to_string()))?;
    let output = resampler
        .process_all(&input, samples.len(), None)
        .map_err(|cause| error(cause.to_string()))?;
    // process_all returns ceil(len × to / from) samples: one more than the rounded length
    // at most, the last of them past the input's end.
    let mut output = output.take_data();
    output.resize(resampled_len(samples.len(), from, to), 0.0);
    Ok(output)
}

/// The chunk size for `rubato`'s `Fft` from `from` Hz to `to` Hz with `FixedSync::Both`:
/// about [`RESAMPLER_CHUNK`], rounded up to an even number of the smallest input blocks
/// (`from / gcd(from, to)` samples), so both FFT block sizes are even. `rubato` delays the
/// output by half the output block and trims that much; with an odd block the true delay
/// differs from it by half an input sample, which shifted every clip (by 0.18 output samples
/// from 44.1 kHz to 16 kHz: a 7% error on a 1 kHz sine).
fn resampler_chunk(from: u32, to: u32) -> usize {
    let (mut a, mut b) = (from, to);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    let smallest_block = (from / a) as usize;
    2 * smallest_block * RESAMPLER_CHUNK.div_ceil(2 * smallest_block)
}

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
fn fit_into(samples: &[f32], start: usize, clip: &mut [f32]) {
    let length = clip.len();
    if samples.len() >= length {
        let start = start.min(samples.len() - length);
        clip.copy_from_slice(&samples[start..start + length]);
    } else {
        clip[..samples.len()].copy_from_slice(samples);
        clip[samples.len()..].fill(0.0);
    }
}

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

/// Reads a CSV labels file with a header naming the columns `file` and `label`, and
/// optionally `split` (`train` or `test`), as labeled clips.
///
/// Files are relative to the CSV's folder. Labels are coded in sorted order of the distinct
/// label strings of the whole file (train and test), which become the class names. Without
/// a `split` column every row is training data and the test split is empty.
pub fn load_audio_labels(
    csv_path: &Path,
    options: &AudioOptions,
) -> Result<AudioSplits, DataError> {
    options.clip_samples()?;
    let base = csv_path.parent().unwrap_or(Path::new(""));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_path(csv_path)
        .map_err(|error| csv_error(csv_path, error))?;
    let header = reader
        .headers()
        .map_err(|error| csv_error(csv_path, error))?
        .clone();
    let column = |name: &str| header.iter().position(|field| field == name);
    let (Some(file_column), Some(label_column)) = (column("file"), column("label")) else {
        return Err(DataError::BadRecord {
            path: csv_path.to_path_buf(),
            line: 1,
            expected: "a header with the columns file and label (and optionally split)".to_string(),
            found: format!("the columns {:?}", header.iter().collect::<Vec<_>>()),
        });
    };
    let split_column = column("split");

    struct Row {
        file: PathBuf,
        label: String,
        is_test: bool,
        line: usize,
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|error| csv_error(csv_path, error))?;
        let line = record
            .position()
            .map_or(0, |position| position.line() as usize);
        let bad = |expected: String, found: String| DataError::BadRecord {
            path: csv_path.to_path_buf(),
            line,
            expected,
            found,
        };
        let cell = |column: usize| record.get(column).unwrap_or("");
        let (file, label) = (cell(file_column), cell(label_column));
        if file.is_empty() {
            return Err(bad(
                "a path in the column file".into(),
                "an empty field".into(),
            ));
        }
        if label.is_empty() {
            return Err(bad(
                "a label in the column label".into(),
                "an empty field".into(),
            ));
        }
        let is_test = match split_column.map(cell) {
            None | Some("train") => false,
            Some("test") => true,
            Some(other) => return Err(bad("split train or test".into(), format!("{other:?}"))),
        };
        let file = base.join(file);
        if !file.is_file() {
            return Err(bad(
                format!(
                    "an existing WAV file (paths are relative to the CSV's folder {:?})",
                    base
                ),
                format!("{} does not exist", file.display()),
            ));
        }
        rows.push(Row {
            file,
            label: label.to_string(),
            is_test,
            line,
        });
    }
    if rows.is_empty() {
        return Err(DataError::NoAudio {
            path: csv_path.to_path_buf(),
            details: "a header but no rows; expected one row per clip".to_string(),
        });
    }

    let mut codes: BTreeMap<&str, u16> = rows.iter().map(|row| (row.label.as_str(), 0)).collect();
    for (index, (label, code)) in codes.iter_mut().enumerate() {
        *code = u16::try_from(index).map_err(|_| DataError::BadRecord {
            path: csv_path.to_path_buf(),
            line: rows
                .iter()
                .find(|row| row.label == *label)
                .map_or(0, |row| row.line),
            expected: format!("at most {} distinct labels", usize::from(u16::MAX) + 1),
            found: format!("label {label:?} as class number {}", index + 1),
        })?;
    }
    let class_names: Vec<String> = codes.keys().map(|label| label.to_string()).collect();
    let mut splits = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for row in &rows {
        let (files, labels) = &mut splits[usize::from(row.is_test)];
        files.push(row.file.clone());
        labels.push(codes[row.label.as_str()]);
    }
    let [(train_files, train_labels), (test_files, test_labels)] = splits;
    let name = base
        .file_name()
        .or_else(|| csv_path.file_stem())
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
    Ok(AudioSplits {
        name,
        train: load_clips(
            train_files,
            Some(train_labels),
            class_names.clone(),
            options,
        )?,
        test: load_clips(test_files, Some(test_labels), class_names, options)?,
    })
}

/// Reads `files` in parallel into clips, in order; the error reported is the first file's.
fn load_clips(
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

/// Reads every `.wav` file under `dir` (recursively, sorted by path) as unlabeled clips cut
/// one after another from each file: a file of `n` clip lengths gives `max(1, floor(n))`
/// clips (what is left after the last whole clip is dropped; a file shorter than one clip
/// gives one zero-padded clip). Long unlabeled recordings are all used this way, where
/// [`load_audio_folder`] keeps only their centre.
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

/// The labels file of an audio dataset folder: `labels.csv` inside it.
pub const AUDIO_LABELS_FILE: &str = "labels.csv";

/// Whether `spec` names audio: a `.csv` file whose header has the columns `file` and `label`
/// and whose first row's file is a `.wav`, a folder holding [`AUDIO_LABELS_FILE`] such as
/// that, or a folder with `.wav` files under it (and no labels file of another kind).
pub fn is_audio_path(spec: &str) -> bool {
    let path = Path::new(spec);
    if path.is_file() {
        return is_audio_labels_file(path);
    }
    if !path.is_dir() {
        return false;
    }
    let labels = path.join(AUDIO_LABELS_FILE);
    if labels.is_file() {
        return is_audio_labels_file(&labels);
    }
    files_with_extension(path, WAV_EXTENSION).is_ok_and(|files| !files.is_empty())
}

/// Whether `path` is a CSV whose header names `file` and `label` and whose first row's file
/// ends in `.wav`.
fn is_audio_labels_file(path: &Path) -> bool {
    if !has_extension(path, "csv") {
        return false;
    }
    let Ok(mut reader) = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
    else {
        return false;
    };
    let Ok(header) = reader.headers().cloned() else {
        return false;
    };
    let Some(file_column) = header.iter().position(|field| field == "file") else {
        return false;
    };
    if !header.iter().any(|field| field == "label") {
        return false;
    }
    reader.records().next().is_some_and(|record| {
        record.ok().is_some_and(|record| {
            record
                .get(file_column)
                .is_some_and(|file| has_extension(Path::new(file), WAV_EXTENSION))
        })
    })
}

/// Loads the audio dataset `spec` (see [`is_audio_path`]): a labels file (or a folder's
/// `labels.csv`) with its `split` column, or a folder of unlabeled clips. When the data
/// brings no test split, `holdout_fraction` of it is held out with `split_seed`
/// (stratified when labeled).
pub fn load_audio(
    spec: &str,
    options: &AudioOptions,
    holdout_fraction: f64,
    split_seed: u64,
) -> Result<AudioSplits, DataError> {
    let path = Path::new(spec);
    let labels = if path.is_dir() {
        path.join(AUDIO_LABELS_FILE)
    } else {
        path.to_path_buf()
    };
    let splits = if labels.is_file() && is_audio_labels_file(&labels) {
        load_audio_labels(&labels, options)?
    } else if path.is_dir() {
        let set = load_audio_folder(path, options)?;
        let name = path
            .file_name()
            .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
        AudioSplits {
            name,
            test: set.subset(&[]),
            train: set,
        }
    } else {
        return Err(DataError::NoAudio {
            path: path.to_path_buf(),
            details: "expected a folder of .wav files or a CSV of file,label[,split] rows".into(),
        });
    };
    if !splits.test.is_empty() || holdout_fraction == 0.0 {
        return Ok(splits);
    }
    let (train, test) = match &splits.train.labels {
        Some(labels) => crate::split::stratified_split(labels, holdout_fraction, split_seed),
        None => crate::split::random_split(splits.train.len, holdout_fraction, split_seed),
    };
    Ok(AudioSplits {
        name: splits.name,
        test: splits.train.subset(&test),
        train: splits.train.subset(&train),
    })
}

/// The longest recording read from one file: 4 hours (230 M samples, 920 MB, at 16 kHz). A
/// header claiming a very low rate would otherwise make a small file resample into
/// gigabytes (a 1 MB file at 1 Hz is 139 hours).
pub const MAX_RECORDING_SECONDS: u64 = 4 * 3600;

/// Reads `path` resampled to the options' rate (or rejected when resampling is off).
fn read_resampled(path: &Path, options: &AudioOptions) -> Result<Vec<f32>, DataError> {
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
fn read_clip(path: &Path, options: &AudioOptions, clip: &mut [f32]) -> Result<(), DataError> {
    let samples = read_resampled(path, options)?;
    fit_into(&samples, centered_start(samples.len(), clip.len()), clip);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hound::SampleFormat;

    fn spec(channels: u16, sample_rate: u32, bits: u16, format: SampleFormat) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    fn write_wav<S: hound::Sample + Copy>(
        path: &Path,
        spec: hound::WavSpec,
        samples: &[S],
    ) -> PathBuf {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let mut writer = hound::WavWriter::create(path, spec).unwrap();
        for &sample in samples {
            writer.write_sample(sample).unwrap();
        }
        writer.finalize().unwrap();
        path.to_path_buf()
    }

    /// A 16-bit mono WAV at `sample_rate`.
    fn write_mono16(path: &Path, sample_rate: u32, samples: &[i16]) -> PathBuf {
        write_wav(path, spec(1, sample_rate, 16, SampleFormat::Int), samples)
    }

    /// A WAV file built byte by byte: a 16-byte fmt chunk (`format_tag` 1 is PCM, 2 ADPCM,
    /// 3 IEEE float) and a data chunk holding `data`.
    fn wav_bytes(
        format_tag: u16,
        channels: u16,
        sample_rate: u32,
        bits: u16,
        data: &[u8],
    ) -> Vec<u8> {
        let block_align = channels * bits / 8;
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RIFF");
        bytes.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(b"WAVEfmt ");
        bytes.extend_from_slice(&16u32.to_le_bytes());
        bytes.extend_from_slice(&format_tag.to_le_bytes());
        bytes.extend_from_slice(&channels.to_le_bytes());
        bytes.extend_from_slice(&sample_rate.to_le_bytes());
        bytes.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
        bytes.extend_from_slice(&block_align.to_le_bytes());
        bytes.extend_from_slice(&bits.to_le_bytes());
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&(data.len() as u32).to_le_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn write_bytes(path: &Path, bytes: &[u8]) -> PathBuf {
        std::fs::write(path, bytes).unwrap();
        path.to_path_buf()
    }

    /// `amplitude · sin(2π · frequency · n / sample_rate)` for n in 0..len.
    fn sine(frequency: f64, sample_rate: u32, len: usize) -> Vec<f32> {
        (0..len)
            .map(|n| {
                let time = n as f64 / f64::from(sample_rate);
                (0.5 * (2.0 * std::f64::consts::PI * frequency * time).sin()) as f32
            })
            .collect()
    }

    /// The largest |a − b| over the samples at least `margin` from either end.
    fn max_error_inside(a: &[f32], b: &[f32], margin: usize) -> f32 {
        assert_eq!(a.len(), b.len());
        (margin..a.len() - margin)
            .map(|n| (a[n] - b[n]).abs())
            .fold(0.0, f32::max)
    }

    fn error_text(result: Result<impl std::fmt::Debug, DataError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn eight_bit_data_is_unsigned_around_128_and_scaled_by_128() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_bytes(
            &dir.path().join("u8.wav"),
            &wav_bytes(1, 1, 8000, 8, &[0, 64, 128, 192, 255]),
        );
        let waveform = read_wav(&path).unwrap();
        assert_eq!(waveform.sample_rate, 8000);
        assert_eq!(waveform.samples, [-1.0, -0.5, 0.0, 0.5, 127.0 / 128.0]);
    }

    #[test]
    fn integer_pcm_is_scaled_by_two_to_the_bits_minus_one() {
        let dir = tempfile::tempdir().unwrap();
        let path16 = write_wav(
            &dir.path().join("16.wav"),
            spec(1, 16000, 16, SampleFormat::Int),
            &[i16::MIN, -8192, 0, 16384, i16::MAX],
        );
        let waveform = read_wav(&path16).unwrap();
        assert_eq!(waveform.sample_rate, 16000);
        assert_eq!(waveform.samples, [-1.0, -0.25, 0.0, 0.5, 32767.0 / 32768.0]);

        let path24 = write_wav(
            &dir.path().join("24.wav"),
            spec(1, 22050, 24, SampleFormat::Int),
            &[-(1i32 << 23), 1 << 22, (1 << 23) - 1, 1],
        );
        let waveform = read_wav(&path24).unwrap();
        assert_eq!(waveform.sample_rate, 22050);
        assert_eq!(
            waveform.samples,
            [-1.0, 0.5, 8_388_607.0 / 8_388_608.0, 1.0 / 8_388_608.0]
        );

        let path32 = write_wav(
            &dir.path().join("32.wav"),
            spec(1, 44100, 32, SampleFormat::Int),
            &[i32::MIN, 1 << 30, -(1 << 29), 0],
        );
        assert_eq!(read_wav(&path32).unwrap().samples, [-1.0, 0.5, -0.25, 0.0]);
    }

    #[test]
    fn float_samples_are_read_as_stored_and_non_finite_ones_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_wav(
            &dir.path().join("float.wav"),
            spec(1, 48000, 32, SampleFormat::Float),
            &[0.25f32, -0.75, 1.0, -0.123_456_79],
        );
        let waveform = read_wav(&path).unwrap();
        assert_eq!(waveform.sample_rate, 48000);
        assert_eq!(waveform.samples, [0.25, -0.75, 1.0, -0.123_456_79]);

        let nan = write_wav(
            &dir.path().join("nan.wav"),
            spec(1, 48000, 32, SampleFormat::Float),
            &[0.0f32, f32::NAN],
        );
        let message = error_text(read_wav(&nan));
        assert!(
            message.contains("nan.wav") && message.contains("sample 1 is NaN"),
            "{message}"
        );
    }

    #[test]
    fn absurd_sample_rates_are_an_error_not_a_gigabyte_resampler() {
        let dir = tempfile::tempdir().unwrap();
        for rate in [0, 768_001, u32::MAX] {
            let path = write_bytes(
                &dir.path().join(format!("rate-{rate}.wav")),
                &wav_bytes(1, 1, rate, 8, &[128, 140, 120]),
            );
            let error = read_wav(&path).unwrap_err();
            assert!(
                matches!(error, DataError::UnsupportedSampleRate { found, .. } if found == rate),
                "{error:?}"
            );
            assert_eq!(
                error.to_string(),
                format!(
                    "{}: sample rate {rate} Hz; expected 1 to 768000 Hz (the header is \
                     corrupt, or the file is not audio)",
                    path.display()
                )
            );
        }
        for rate in [8, 768_000] {
            let path = write_bytes(
                &dir.path().join(format!("rate-{rate}.wav")),
                &wav_bytes(1, 1, rate, 8, &[128, 140, 120]),
            );
            let waveform = read_wav(&path).unwrap();
            assert_eq!(waveform.sample_rate, rate);
            let resampled = resample(&waveform.samples, rate, 16_000).unwrap();
            assert_eq!(resampled.len(), resampled_len(3, rate, 16_000));
        }
    }

    #[test]
    fn float_samples_far_beyond_full_scale_are_an_error_not_a_resampler_panic() {
        // Misaligned float data reads as values near f32::MAX; resampling them overflowed
        // rubato's FFT to infinity and it panicked ("Imaginary part of first value was
        // non-zero").
        let dir = tempfile::tempdir().unwrap();
        let loud = write_wav(
            &dir.path().join("loud.wav"),
            spec(2, 22050, 32, SampleFormat::Float),
            &[0.5f32, -0.5, 1.5, 999.0, 0.0, 3.0e38],
        );
        let message = error_text(read_wav(&loud));
        assert_eq!(
            message,
            format!(
                "{}: sample 5 is 300000000000000000000000000000000000000; expected float \
                 samples within ±1000 (full scale is ±1)",
                loud.display()
            )
        );
        // Within the limit, loud samples are kept as stored.
        let overs = write_wav(
            &dir.path().join("overs.wav"),
            spec(1, 22050, 32, SampleFormat::Float),
            &[1.5f32, -999.0],
        );
        let waveform = read_wav(&overs).unwrap();
        assert_eq!(waveform.samples, [1.5, -999.0]);
        assert_eq!(resample(&waveform.samples, 22050, 16000).unwrap().len(), 1);
    }

    #[test]
    fn stereo_and_three_channel_frames_are_averaged_to_mono() {
        let dir = tempfile::tempdir().unwrap();
        // Frames (L, R): (16384, -16384), (32767, 32767), (8192, 0), (-32768, 0).
        let stereo = write_wav(
            &dir.path().join("stereo.wav"),
            spec(2, 16000, 16, SampleFormat::Int),
            &[16384i16, -16384, 32767, 32767, 8192, 0, -32768, 0],
        );
        assert_eq!(
            read_wav(&stereo).unwrap().samples,
            [0.0, 32767.0 / 32768.0, 0.125, -0.5]
        );
        let stereo_u8 = write_bytes(
            &dir.path().join("stereo_u8.wav"),
            &wav_bytes(1, 2, 8000, 8, &[0, 128, 255, 255, 64, 192]),
        );
        assert_eq!(
            read_wav(&stereo_u8).unwrap().samples,
            [-0.5, 127.0 / 128.0, 0.0]
        );
        // Frames (a, b, c) of floats: means 0.5 and -0.25.
        let three = write_wav(
            &dir.path().join("three.wav"),
            spec(3, 16000, 32, SampleFormat::Float),
            &[0.25f32, 0.5, 0.75, -0.75, 0.0, 0.0],
        );
        assert_eq!(read_wav(&three).unwrap().samples, [0.5, -0.25]);
    }

    #[test]
    fn a_text_file_named_wav_is_not_a_wav_and_names_what_it_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_bytes(&dir.path().join("notes.wav"), b"hello, this is text\n");
        let message = error_text(read_wav(&path));
        assert!(message.contains("notes.wav"), "{message}");
        assert!(message.contains("not a WAV file"), "{message}");
        assert!(message.contains("hello, this"), "{message}");

        let empty = write_bytes(&dir.path().join("empty.wav"), b"");
        let message = error_text(read_wav(&empty));
        assert!(
            message.contains("empty.wav") && message.contains("an empty file"),
            "{message}"
        );

        let avi = write_bytes(&dir.path().join("movie.wav"), b"RIFF\x04\x00\x00\x00AVI ");
        let message = error_text(read_wav(&avi));
        assert!(
            message.contains("a RIFF file of type \"AVI \""),
            "{message}"
        );
    }

    #[test]
    fn a_header_cut_short_is_a_truncated_wav_error() {
        let dir = tempfile::tempdir().unwrap();
        let full = write_mono16(&dir.path().join("full.wav"), 16000, &[1, 2, 3, 4]);
        let bytes = std::fs::read(&full).unwrap();
        for cut in [20, 30, 8] {
            let path = write_bytes(&dir.path().join(format!("cut{cut}.wav")), &bytes[..cut]);
            let error = read_wav(&path).unwrap_err();
            assert!(
                matches!(error, DataError::BadWav { .. }),
                "{cut}: {error:?}"
            );
            let message = error.to_string();
            assert!(message.contains(&format!("cut{cut}.wav")), "{message}");
            assert!(message.contains("truncated"), "{message}");
        }
    }

    #[test]
    fn a_data_chunk_cut_short_is_a_truncated_wav_error_counting_the_samples() {
        let dir = tempfile::tempdir().unwrap();
        let full = write_mono16(&dir.path().join("full.wav"), 16000, &[1; 8]);
        let bytes = std::fs::read(&full).unwrap();
        // 44-byte header, then 8 samples of 2 bytes; cutting 6 bytes leaves 5 samples.
        let path = write_bytes(&dir.path().join("short.wav"), &bytes[..bytes.len() - 6]);
        let message = error_text(read_wav(&path));
        assert!(message.contains("short.wav"), "{message}");
        assert!(
            message.contains("declares 8 samples but the file ends after 5 (truncated)"),
            "{message}"
        );
    }

    #[test]
    fn a_wav_without_samples_is_an_empty_wav_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_mono16(&dir.path().join("silent.wav"), 16000, &[]);
        let error = read_wav(&path).unwrap_err();
        assert!(matches!(error, DataError::EmptyWav { .. }), "{error:?}");
        assert!(error.to_string().contains("silent.wav: no audio samples"));
    }

    #[test]
    fn compressed_and_big_endian_wavs_are_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let adpcm = write_bytes(
            &dir.path().join("adpcm.wav"),
            &wav_bytes(2, 1, 8000, 4, &[0; 8]),
        );
        let message = error_text(read_wav(&adpcm));
        assert!(
            message.contains("adpcm.wav: unsupported WAV format: Microsoft ADPCM"),
            "{message}"
        );
        let mulaw = write_bytes(
            &dir.path().join("mulaw.wav"),
            &wav_bytes(7, 1, 8000, 8, &[0; 8]),
        );
        let message = error_text(read_wav(&mulaw));
        assert!(
            message.contains("mulaw.wav: unsupported WAV format: µ-law"),
            "{message}"
        );
        let double = write_bytes(
            &dir.path().join("double.wav"),
            &wav_bytes(3, 1, 8000, 64, &[0; 16]),
        );
        let message = error_text(read_wav(&double));
        assert!(
            message.contains("double.wav: unsupported WAV format: 64-bit float"),
            "{message}"
        );

        let mut rifx = wav_bytes(1, 1, 8000, 16, &[0; 4]);
        rifx[..4].copy_from_slice(b"RIFX");
        let rifx = write_bytes(&dir.path().join("rifx.wav"), &rifx);
        let message = error_text(read_wav(&rifx));
        assert!(
            message.contains("rifx.wav: unsupported WAV format: a big-endian"),
            "{message}"
        );
    }

    #[test]
    fn resampling_8k_to_16k_matches_a_sine_generated_at_16k() {
        let input = sine(440.0, 8000, 8000);
        let output = resample(&input, 8000, 16000).unwrap();
        assert_eq!(output.len(), 16000);
        let reference = sine(440.0, 16000, 16000);
        let error = max_error_inside(&output, &reference, 400);
        assert!(error < 2e-3, "max error {error}");
    }

    #[test]
    fn resampling_16k_to_8k_matches_and_filters_above_the_new_nyquist() {
        let input = sine(440.0, 16000, 16000);
        let output = resample(&input, 16000, 8000).unwrap();
        assert_eq!(output.len(), 8000);
        let error = max_error_inside(&output, &sine(440.0, 8000, 8000), 200);
        assert!(error < 2e-3, "max error {error}");

        // 6 kHz is above 8 kHz's Nyquist frequency: dropping samples would alias it to 2 kHz
        // at full amplitude (RMS 0.35); a band-limited resampler removes it.
        let high = resample(&sine(6000.0, 16000, 16000), 16000, 8000).unwrap();
        let inside = &high[200..7800];
        let rms = (inside.iter().map(|x| x * x).sum::<f32>() / inside.len() as f32).sqrt();
        assert!(rms < 0.01, "rms {rms}");
    }

    /// With rubato's default chunk these ratios got odd FFT blocks, and the output came out
    /// shifted by half an input sample (max error 0.036 to 0.14 on a 1 kHz sine).
    #[test]
    fn resampling_with_odd_fft_blocks_is_not_shifted_half_an_input_sample() {
        for (from, to) in [
            (44100, 16000),
            (22050, 16000),
            (11025, 16000),
            (16000, 44100),
        ] {
            let output = resample(&sine(1000.0, from, from as usize), from, to).unwrap();
            assert_eq!(output.len(), to as usize);
            let reference = sine(1000.0, to, to as usize);
            let error = max_error_inside(&output, &reference, to as usize / 40);
            assert!(error < 2e-3, "{from} -> {to}: max error {error}");
        }
    }

    #[test]
    fn resampled_length_is_rounded_and_equal_rates_are_the_identity() {
        assert_eq!(resampled_len(8000, 8000, 16000), 16000);
        assert_eq!(resampled_len(3, 2, 3), 5); // 4.5 rounds up
        assert_eq!(resampled_len(10, 3, 1), 3); // 3.33
        assert_eq!(resampled_len(11, 3, 1), 4); // 3.67
        assert_eq!(resampled_len(1, 48000, 8000), 0);
        for (len, from, to) in [
            (10, 3, 1),
            (11, 3, 1),
            (1000, 44100, 16000),
            (7, 8000, 22050),
        ] {
            let output = resample(&vec![0.25; len], from, to).unwrap();
            assert_eq!(
                output.len(),
                resampled_len(len, from, to),
                "{len} {from}->{to}"
            );
        }
        let samples = [0.1, -0.2, 0.3];
        assert_eq!(resample(&samples, 8000, 8000).unwrap(), samples);
        assert_eq!(resample(&[], 8000, 16000).unwrap(), Vec::<f32>::new());
        let message = error_text(resample(&samples, 0, 16000));
        assert!(message.contains("from 0 Hz to 16000 Hz"), "{message}");
    }

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

    /// A folder at 8 Hz with 4-sample clips (0.5 s): `b.wav` (6 samples, centre-cropped),
    /// `a/c.wav` (2 samples, padded), `d.WAV` at 16 Hz (resampled), plus files to ignore.
    fn tiny_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_mono16(
            &root.join("b.wav"),
            8,
            &[4096, 8192, 12288, 16384, 20480, 24576],
        );
        write_mono16(&root.join("a/c.wav"), 8, &[-16384, 8192]);
        write_mono16(
            &root.join("d.WAV"),
            16,
            &[8192, 0, -8192, 0, 8192, 0, -8192, 0],
        );
        write_bytes(&root.join("notes.txt"), b"not audio");
        write_bytes(&root.join(".hidden.wav"), b"not audio either");
        dir
    }

    fn tiny_options() -> AudioOptions {
        AudioOptions {
            sample_rate: 8,
            resample: true,
            clip_seconds: 0.5,
            ..AudioOptions::default()
        }
    }

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

    #[test]
    fn audio_specs_are_told_from_tables_and_images() {
        let dir = tiny_folder();
        assert!(is_audio_path(&dir.path().to_string_lossy()));
        let labels = dir.path().join("labels.csv");
        write_bytes(&labels, b"file,label\nb.wav,yes\na/c.wav,no\nd.WAV,yes\n");
        assert!(is_audio_path(&labels.to_string_lossy()));
        assert!(is_audio_path(&dir.path().to_string_lossy()));
        let table = dir.path().join("table.csv");
        write_bytes(&table, b"height,label\n1.5,yes\n");
        assert!(!is_audio_path(&table.to_string_lossy()));
        let files = dir.path().join("files.csv");
        write_bytes(&files, b"file,label\nreport.pdf,yes\n");
        assert!(!is_audio_path(&files.to_string_lossy()));
        let images = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(images.path().join("cat")).unwrap();
        write_bytes(&images.path().join("cat/1.png"), b"png");
        assert!(!is_audio_path(&images.path().to_string_lossy()));
        assert!(!is_audio_path("no/such/folder"));

        // Without a split column, a stratified share is held out; the folder reads its
        // labels.csv.
        let splits = load_audio(&dir.path().to_string_lossy(), &tiny_options(), 0.34, 0).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (2, 1));
        assert_eq!(splits.train.class_names, ["no", "yes"]);
        // A folder without labels: unlabeled, with a random share held out.
        std::fs::remove_file(&labels).unwrap();
        let splits = load_audio(&dir.path().to_string_lossy(), &tiny_options(), 0.34, 0).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (2, 1));
        assert_eq!(splits.train.labels, None);
        let splits = load_audio(&dir.path().to_string_lossy(), &tiny_options(), 0.0, 0).unwrap();
        assert_eq!((splits.train.len, splits.test.len), (3, 0));
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

    /// `clips/{yes,no}_{0,1}.wav` at 8 Hz, 4 samples each, each a distinct constant.
    fn labeled_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, value) in [
            ("yes_0", 1024),
            ("yes_1", 2048),
            ("no_0", 3072),
            ("no_1", 4096),
        ] {
            write_mono16(
                &dir.path().join(format!("clips/{name}.wav")),
                8,
                &[value; 4],
            );
        }
        dir
    }

    #[test]
    fn a_labels_csv_codes_sorted_labels_and_splits_rows_in_file_order() {
        let dir = labeled_folder();
        let csv = write_bytes(
            &dir.path().join("labels.csv"),
            b"file,label,split\n\
              clips/yes_0.wav,yes,train\n\
              clips/no_0.wav,no,test\n\
              clips/yes_1.wav,yes,test\n\
              clips/no_1.wav, no ,train\n",
        );
        let splits = load_audio_labels(&csv, &tiny_options()).unwrap();
        assert_eq!(
            splits.name,
            dir.path().file_name().unwrap().to_string_lossy()
        );
        for set in [&splits.train, &splits.test] {
            assert_eq!(set.class_names, ["no", "yes"]);
            assert_eq!(set.num_classes(), 2);
            assert_eq!(set.clip_samples, 4);
        }
        assert_eq!(splits.train.labels, Some(vec![1, 0]));
        assert_eq!(
            splits.train.files,
            [
                dir.path().join("clips/yes_0.wav"),
                dir.path().join("clips/no_1.wav")
            ]
        );
        assert_eq!(splits.train.clip(0), [1.0 / 32.0; 4]);
        assert_eq!(splits.train.clip(1), [1.0 / 8.0; 4]);
        assert_eq!(splits.test.labels, Some(vec![0, 1]));
        assert_eq!(splits.test.clip(0), [3.0 / 32.0; 4]);
        assert_eq!(splits.test.clip(1), [1.0 / 16.0; 4]);
    }

    #[test]
    fn a_labels_csv_without_a_split_column_is_all_training_data() {
        let dir = labeled_folder();
        let csv = write_bytes(
            &dir.path().join("all.csv"),
            b"label,file\nyes,clips/yes_1.wav\nno,clips/no_0.wav\n",
        );
        let splits = load_audio_labels(&csv, &tiny_options()).unwrap();
        assert_eq!(splits.train.len, 2);
        assert_eq!(splits.train.labels, Some(vec![1, 0]));
        assert_eq!(splits.test.len, 0);
        assert_eq!(splits.test.labels, Some(vec![]));
        assert_eq!(splits.test.class_names, ["no", "yes"]);
    }

    #[test]
    fn labels_csv_errors_name_the_file_and_line() {
        let dir = labeled_folder();
        let cases: [(&str, &[u8], &[&str]); 6] = [
            (
                "no_label.csv",
                b"file,class\nclips/yes_0.wav,yes\n",
                &["no_label.csv: line 1", "file and label", "\"class\""],
            ),
            (
                "missing.csv",
                b"file,label\nclips/yes_0.wav,yes\nclips/maybe.wav,yes\n",
                &["missing.csv: line 3", "maybe.wav does not exist"],
            ),
            (
                "split.csv",
                b"file,label,split\nclips/yes_0.wav,yes,valid\n",
                &["split.csv: line 2", "split train or test", "\"valid\""],
            ),
            (
                "empty_label.csv",
                b"file,label\nclips/yes_0.wav,\n",
                &["empty_label.csv: line 2", "a label"],
            ),
            (
                "ragged.csv",
                b"file,label\nclips/yes_0.wav,yes,extra\n",
                &["ragged.csv: line 2", "2 fields"],
            ),
            (
                "header_only.csv",
                b"file,label\n",
                &["header_only.csv: no audio found"],
            ),
        ];
        for (name, text, expected) in cases {
            let csv = write_bytes(&dir.path().join(name), text);
            let message = error_text(load_audio_labels(&csv, &tiny_options()));
            for part in expected {
                assert!(message.contains(part), "{name}: {message:?} lacks {part:?}");
            }
        }
        // A listed file that is not a WAV is named itself.
        write_bytes(&dir.path().join("clips/text.wav"), b"plain text");
        let csv = write_bytes(
            &dir.path().join("text.csv"),
            b"file,label\nclips/yes_0.wav,yes\nclips/text.wav,no\n",
        );
        let message = error_text(load_audio_labels(&csv, &tiny_options()));
        assert!(message.contains("text.wav: not a WAV file"), "{message}");
    }

    fn shared_audio() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/audio");
        if dir.exists() {
            Some(dir)
        } else {
            eprintln!("skipped: {} is absent", dir.display());
            None
        }
    }

    /// The shared spoken digits and yes/no words load with their documented split sizes.
    #[test]
    fn shared_spoken_words_load() {
        let Some(dir) = shared_audio() else { return };
        let splits = load_audio_labels(
            &dir.join("spoken-words/labels.csv"),
            &AudioOptions::default(),
        )
        .unwrap();
        assert_eq!(splits.name, "spoken-words");
        assert_eq!((splits.train.len, splits.test.len), (1494, 306));
        assert_eq!(splits.train.clip_samples, 16000);
        assert_eq!(splits.train.sample_rate, 16000);
        let mut expected = [
            "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "yes",
            "no",
        ];
        expected.sort_unstable();
        assert_eq!(splits.train.class_names, expected);
        assert_eq!(splits.train.num_classes(), 12);
        for set in [&splits.train, &splits.test] {
            assert!(set
                .samples
                .as_slice()
                .iter()
                .all(|sample| (-1.0..=1.0).contains(sample)));
            assert!((0..set.len).all(|index| set.clip(index).iter().any(|&s| s != 0.0)));
        }
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

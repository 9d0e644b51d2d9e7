//! WAV files and folders of them written for the audio tests.

use std::path::{Path, PathBuf};

use hound::SampleFormat;

use super::AudioOptions;
use crate::error::DataError;

pub(super) fn spec(
    channels: u16,
    sample_rate: u32,
    bits: u16,
    format: SampleFormat,
) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample: bits,
        sample_format: format,
    }
}

pub(super) fn write_wav<S: hound::Sample + Copy>(
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
pub(super) fn write_mono16(path: &Path, sample_rate: u32, samples: &[i16]) -> PathBuf {
    write_wav(path, spec(1, sample_rate, 16, SampleFormat::Int), samples)
}

pub(super) fn write_bytes(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).unwrap();
    path.to_path_buf()
}

pub(super) fn error_text(result: Result<impl std::fmt::Debug, DataError>) -> String {
    result.unwrap_err().to_string()
}

/// A folder at 8 Hz with 4-sample clips (0.5 s): `b.wav` (6 samples, centre-cropped),
/// `a/c.wav` (2 samples, padded), `d.WAV` at 16 Hz (resampled), plus files to ignore.
pub(super) fn tiny_folder() -> tempfile::TempDir {
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

pub(super) fn tiny_options() -> AudioOptions {
    AudioOptions {
        sample_rate: 8,
        resample: true,
        clip_seconds: 0.5,
        ..AudioOptions::default()
    }
}

pub(super) fn shared_audio() -> Option<PathBuf> {
    crate::test_data::shared_data("audio")
}

//! WAV decoding ([`read_wav`]), and the checks that name what a file is when it is not a
//! WAV `hound` can decode.

use std::io::Cursor;
use std::path::Path;

use crate::error::DataError;

/// The sample rates a WAV file may declare, in Hz: up to 768 kHz, the highest rate audio is
/// recorded at. A higher rate is a corrupt header: one of 4294967295 Hz made the resampler
/// allocate gigabytes for its FFT blocks.
pub const WAV_SAMPLE_RATES: std::ops::RangeInclusive<u32> = 1..=768_000;

/// The largest magnitude a float WAV sample may have: 60 dB above full scale (±1). Larger
/// values are misread or corrupt data, and would overflow the resampler's FFT to infinity.
pub const MAX_FLOAT_SAMPLE: f32 = 1000.0;

/// One decoded WAV file.
#[derive(Clone, Debug, PartialEq)]
pub struct Waveform {
    /// Mono samples in [-1, 1] (a float file's samples as stored).
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::fixtures::*;
    use crate::audio::{resample, resampled_len};
    use hound::SampleFormat;

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
}

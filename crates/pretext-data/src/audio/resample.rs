//! A whole clip converted between two sample rates with `rubato`'s FFT resampler.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use crate::error::DataError;

/// Chunk size hint of the FFT resampler, in input samples (see [`resampler_chunk`]).
const RESAMPLER_CHUNK: usize = 1024;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::fixtures::error_text;

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
}

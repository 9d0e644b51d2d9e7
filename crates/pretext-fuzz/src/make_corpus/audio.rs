//! WAV seeds cut from the spoken words and sentences, in every encoding the reader decodes.

use std::io::Cursor;
use std::path::Path;

use super::writer::Corpus;

/// The 16-bit samples of a WAV file.
fn wav_samples(path: &Path) -> Result<Vec<i16>, String> {
    let error = |error: hound::Error| format!("{}: {error}", path.display());
    hound::WavReader::open(path)
        .map_err(error)?
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(error)
}

/// `len` samples around the loudest one.
fn loudest_window(samples: &[i16], len: usize) -> Vec<i16> {
    let loudest = (0..samples.len())
        .max_by_key(|&index| samples[index].unsigned_abs())
        .unwrap_or(0);
    let start = loudest
        .saturating_sub(len / 2)
        .min(samples.len().saturating_sub(len));
    samples[start..(start + len).min(samples.len())].to_vec()
}

fn wav_bytes<S: hound::Sample + Copy>(
    spec: hound::WavSpec,
    samples: &[S],
) -> Result<Vec<u8>, String> {
    let mut cursor = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).map_err(|e| e.to_string())?;
    for &sample in samples {
        writer.write_sample(sample).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())?;
    Ok(cursor.into_inner())
}

/// Short cuts of two spoken clips (16 kHz 16-bit mono, as stored), and the first one in
/// the other encodings and rates the reader decodes.
pub(super) fn wav_seeds(shared: &Path, corpus: &mut Corpus) -> Result<(), String> {
    let word = loudest_window(
        &wav_samples(&shared.join("audio/spoken-words/clips/yes_000.wav"))?,
        1600,
    );
    let sentence = loudest_window(
        &wav_samples(&shared.join("audio/spoken-sentences/clips/sent_000.wav"))?,
        2000,
    );
    let spec = |channels, sample_rate, bits_per_sample, sample_format| hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample,
        sample_format,
    };
    use hound::SampleFormat::{Float, Int};
    // The middle half of the word at other rates, by nearest sample: only the header's
    // rate matters to a seed.
    let middle = &word[word.len() / 4..word.len() * 3 / 4];
    let at_rate = |rate: u32| -> Vec<i16> {
        let len = middle.len() * rate as usize / 16_000;
        (0..len)
            .map(|index| middle[index * 16_000 / rate as usize])
            .collect()
    };
    corpus.write(
        "wav",
        "yes-16bit-16k.wav",
        &wav_bytes(spec(1, 16_000, 16, Int), &word)?,
    )?;
    corpus.write(
        "wav",
        "sentence-16bit-16k.wav",
        &wav_bytes(spec(1, 16_000, 16, Int), &sentence)?,
    )?;
    let eight_bit: Vec<i8> = at_rate(8_000)
        .iter()
        .map(|&sample| (sample >> 8) as i8)
        .collect();
    corpus.write(
        "wav",
        "yes-8bit-8k.wav",
        &wav_bytes(spec(1, 8_000, 8, Int), &eight_bit)?,
    )?;
    let stereo: Vec<f32> = at_rate(22_050)
        .iter()
        .flat_map(|&sample| {
            let value = f32::from(sample) / 32_768.0;
            [value, -value]
        })
        .collect();
    corpus.write(
        "wav",
        "yes-float-stereo-22050.wav",
        &wav_bytes(spec(2, 22_050, 32, Float), &stereo)?,
    )?;
    let twenty_four: Vec<i32> = at_rate(44_100)
        .iter()
        .map(|&sample| i32::from(sample) << 8)
        .collect();
    corpus.write(
        "wav",
        "yes-24bit-44100.wav",
        &wav_bytes(spec(1, 44_100, 24, Int), &twenty_four)?,
    )?;
    Ok(())
}

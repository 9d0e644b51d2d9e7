//! The fuzz targets: one per reader pretext uses in production, each fed raw bytes.
//!
//! A target returns `Ok(())` when the reader accepted the bytes and `Err(message)` when it
//! refused them; both are fine. What must never happen is a panic (or a hang). A target also
//! checks what the reader promises about an accepted input (e.g. an image set holds exactly
//! `len × channels × height × width` pixels) and panics when a promise is broken, so a
//! broken promise is found like a crash.
//!
//! Most readers take the bytes directly (the `*_bytes` entry points of `pretext-data`, which
//! the path readers call). Parquet and safetensors readers need a file: their targets write
//! the bytes to a scratch file on a tmpfs (`/dev/shm`, else the temporary folder) first.

use std::error::Error;
use std::path::PathBuf;

use pretext_data::text::labeled::{for_each_text, read_labels};
use pretext_data::text::{for_each_piece, TextTokenizer};
use pretext_data::{
    centered_start, fit_length, load_csv_bytes, load_labeled_text_bytes, load_table,
    read_idx_images_bytes, read_idx_labels_bytes, read_image_bytes, read_text_document_bytes,
    read_wav_bytes, resample, resampled_len, AudioOptions, DataError, ImageSet, LabeledText,
    TableOptions, TableSet, IDX_LABELS_MAGIC,
};

/// One reader under test.
pub struct Target {
    /// The name used on the command line and as the corpus folder.
    pub name: &'static str,
    /// What the target reads, in words.
    pub reader: &'static str,
    /// Feeds the bytes to the reader: `Ok` accepted, `Err` refused with this message.
    pub run: fn(&[u8]) -> Result<(), String>,
    /// Tokens of the format that the mutator inserts besides the common ones.
    pub dictionary: &'static [&'static [u8]],
    /// Makes mutated bytes well-formed at the container level (PNG chunk checksums
    /// recomputed, IDX data gzipped) so the reader gets past its first check.
    pub repack: Option<Repack>,
}

/// A target's repack: the bytes, made well-formed at the container level.
pub type Repack = fn(&[u8]) -> Vec<u8>;

/// Every target, in the order `--target all` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "idx",
        reader: "pretext_data::read_idx_images_bytes / read_idx_labels_bytes (raw or gzipped)",
        run: idx,
        dictionary: &[
            &[0, 0, 8, 3],
            &[0, 0, 8, 1],
            &[0x1f, 0x8b, 8, 0],
            &[0, 0, 0, 28],
        ],
        repack: Some(gzip),
    },
    Target {
        name: "image",
        reader: "pretext_data::read_image_bytes (PNG/JPEG via the image crate, gray/RGB, resize)",
        run: image,
        dictionary: &[
            b"\x89PNG\r\n\x1a\n",
            b"IHDR",
            b"IDAT",
            b"IEND",
            b"PLTE",
            b"tRNS",
            b"\xff\xd8\xff",
            b"\xff\xc0",
            b"\xff\xc4",
            b"\xff\xda",
            b"\xff\xdb",
            b"\xff\xd9",
        ],
        repack: Some(fix_png_checksums),
    },
    Target {
        name: "wav",
        reader: "pretext_data::read_wav_bytes, then resample to 16 kHz and fit to 1 s",
        run: wav,
        dictionary: &[
            b"RIFF",
            b"WAVE",
            b"fmt ",
            b"data",
            b"LIST",
            b"\xfe\xff",
            b"RF64",
        ],
        repack: None,
    },
    Target {
        name: "csv",
        reader: "pretext_data::load_csv_bytes (load_table's CSV path, label column \"label\")",
        run: csv,
        dictionary: &[
            b"label", b",label", b"NA", b"?", b"\"\"", b",,", b"65535", b"65536",
        ],
        repack: None,
    },
    Target {
        name: "parquet",
        reader: "pretext_data::load_table on a .parquet scratch file",
        run: parquet,
        dictionary: &[
            b"PAR1",
            b"label",
            b"\x15\x00",
            b"\x19\x1c",
            b"\x00\x00\x00\x00",
        ],
        repack: None,
    },
    Target {
        name: "tsv",
        reader: "pretext_data::load_labeled_text_bytes on a .tsv (label<TAB>text), and the streaming reader (read_labels, for_each_text) on a scratch file, which must agree",
        run: tsv,
        dictionary: &[b"label\ttext\n", b"\t", b"\n\n"],
        repack: None,
    },
    Target {
        name: "jsonl",
        reader: "pretext_data::load_labeled_text_bytes on a .jsonl ({\"text\", \"label\"}), and the streaming reader on a scratch file, which must agree",
        run: jsonl,
        dictionary: &[
            b"{\"text\": \"a\", \"label\": 1}",
            b"\"label\"",
            b"\"text\"",
            b"null",
            b"true",
            b"[]",
            b"{}",
            b"\\u0000",
            b"\\ud800",
        ],
        repack: None,
    },
    Target {
        name: "text",
        reader: "pretext_data::read_text_document_bytes, and for_each_piece (the streaming corpus reader) on a scratch file, which must agree",
        run: text,
        dictionary: &[b"\xef\xbb\xbf", b"\r\n", b"   "],
        repack: None,
    },
    Target {
        name: "tokenizer",
        reader: "TextTokenizer::from_bytes, then encode, encode_plain and decode a sentence",
        run: tokenizer,
        dictionary: &[
            b"\"model\"",
            b"\"vocab\"",
            b"\"merges\"",
            b"\"added_tokens\"",
            b"\"normalizer\"",
            b"\"pre_tokenizer\"",
            b"\"post_processor\"",
            b"\"decoder\"",
            b"\"type\": \"Split\"",
            b"\"Regex\": \"(\"",
            b"\"id\": 4294967295",
            b"\"[UNK]\"",
            b"\"<s>\"",
            b"null",
        ],
        repack: None,
    },
    Target {
        name: "safetensors",
        reader:
            "tch::Tensor::read_safetensors on a scratch file (checkpoints, Hugging Face weights)",
        run: safetensors,
        dictionary: &[
            b"\"dtype\"",
            b"\"shape\"",
            b"\"data_offsets\"",
            b"\"__metadata__\"",
            b"\"F32\"",
            b"\"BF16\"",
            b"\"F8_E4M3\"",
            b"[4294967296, 4294967296]",
            b"[0, 18446744073709551615]",
        ],
        repack: None,
    },
    Target {
        name: "toml",
        reader: "PretrainConfig / StudyConfig::from_toml, then validate and to_toml",
        run: toml,
        dictionary: &[
            b"[data]\n",
            b"[[methods]]\n",
            b"[method]\nname = \"dino\"\n",
            b" = ",
            b"\"\"\"",
            b"'''",
            b"[[",
            b"]]",
            b"{ a = 1 }",
            b"1979-05-27T07:32:00Z",
            b"nan",
            b"+inf",
            b"0x7fffffffffffffff",
        ],
        repack: None,
    },
];

/// The target named `name`.
pub fn target_by_name(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}

/// The message of an error and of each error that caused it, joined by ": " (a cause
/// whose text the message already holds is left out).
pub fn describe(error: &dyn Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn refused(error: DataError) -> String {
    describe(&error)
}

fn check_image_set(set: &ImageSet) {
    assert_eq!(
        set.pixels.len(),
        set.len * set.channels * set.height * set.width,
        "pixels of {} images of {}x{}x{}",
        set.len,
        set.channels,
        set.height,
        set.width
    );
}

fn idx(bytes: &[u8]) -> Result<(), String> {
    const NAME: &str = "fuzz-idx-ubyte";
    match read_idx_images_bytes(bytes, NAME) {
        Ok(set) => {
            check_image_set(&set);
            Ok(())
        }
        // A labels file: what the labels reader makes of it.
        Err(DataError::BadMagic {
            found: IDX_LABELS_MAGIC,
            ..
        }) => read_idx_labels_bytes(bytes, NAME)
            .map(drop)
            .map_err(refused),
        Err(error) => Err(refused(error)),
    }
}

fn image(bytes: &[u8]) -> Result<(), String> {
    const NAME: &str = "fuzz.png";
    let set = read_image_bytes(bytes, NAME, None).map_err(refused)?;
    check_image_set(&set);
    assert!(matches!(set.channels, 1 | 3), "{} channels", set.channels);
    let resized = read_image_bytes(bytes, NAME, Some(24)).map_err(refused)?;
    check_image_set(&resized);
    assert_eq!((resized.height, resized.width), (24, 24));
    Ok(())
}

fn wav(bytes: &[u8]) -> Result<(), String> {
    let waveform = read_wav_bytes(bytes, "fuzz.wav").map_err(refused)?;
    assert!(!waveform.samples.is_empty(), "an accepted WAV has samples");
    // What load_audio_folder does next with the default options.
    let options = AudioOptions::default();
    let samples =
        resample(&waveform.samples, waveform.sample_rate, options.sample_rate).map_err(refused)?;
    assert_eq!(
        samples.len(),
        resampled_len(
            waveform.samples.len(),
            waveform.sample_rate,
            options.sample_rate
        )
    );
    let clip_samples = options.clip_samples().map_err(refused)?;
    let clip = fit_length(
        &samples,
        clip_samples,
        centered_start(samples.len(), clip_samples),
    );
    assert_eq!(clip.len(), clip_samples);
    Ok(())
}

fn check_table_set(set: &TableSet) {
    let cells = set.len * set.width();
    assert_eq!(set.values.len(), cells);
    let labels = set.labels.as_deref().expect("a loaded table is labeled");
    assert_eq!(labels.len(), set.len);
    let classes = set.num_classes();
    assert!(labels.iter().all(|&label| usize::from(label) < classes));
}

fn csv(bytes: &[u8]) -> Result<(), String> {
    let splits = load_csv_bytes(bytes, "fuzz.csv", &TableOptions::default()).map_err(refused)?;
    check_table_set(&splits.train);
    check_table_set(&splits.test);
    Ok(())
}

fn parquet(bytes: &[u8]) -> Result<(), String> {
    let file = ScratchFile::write("parquet", bytes);
    let splits = load_table(&file.path, None, &TableOptions::default()).map_err(refused)?;
    check_table_set(&splits.train);
    check_table_set(&splits.test);
    Ok(())
}

fn check_labeled(text: &LabeledText) {
    assert_eq!(text.texts.len(), text.labels.len());
    assert!(!text.is_empty(), "a loaded file has examples");
    let classes = text.num_classes();
    assert!(text
        .labels
        .iter()
        .all(|&label| usize::from(label) < classes));
}

fn tsv(bytes: &[u8]) -> Result<(), String> {
    labeled(bytes, "tsv")
}

fn jsonl(bytes: &[u8]) -> Result<(), String> {
    labeled(bytes, "jsonl")
}

/// The whole-file reader on `bytes` as a `.extension` file, and the streaming one (labels,
/// then texts, as pretraining reads them) on the same bytes in a scratch file, which must
/// give the same examples or the same error.
fn labeled(bytes: &[u8], extension: &str) -> Result<(), String> {
    let name = format!("fuzz.{extension}");
    let whole = load_labeled_text_bytes(bytes, &name);
    let file = ScratchFile::write(extension, bytes);
    let streamed = read_labels(&file.path, None).and_then(|(labels, class_names)| {
        let mut texts = Vec::new();
        for_each_text(&file.path, |text| {
            texts.push(text.to_owned());
            Ok(())
        })?;
        Ok(LabeledText {
            texts,
            labels,
            class_names,
        })
    });
    match (&whole, streamed) {
        (Ok(whole), Ok(streamed)) => assert_eq!(whole, &streamed, "the streamed examples"),
        (Err(whole), Err(streamed)) => {
            let streamed = streamed
                .to_string()
                .replace(&file.path.display().to_string(), &name);
            assert_eq!(whole.to_string(), streamed, "the streamed error");
        }
        (whole, streamed) => panic!("whole-file {whole:?} but streamed {streamed:?}"),
    }
    let text = whole.map_err(refused)?;
    check_labeled(&text);
    Ok(())
}

fn text(bytes: &[u8]) -> Result<(), String> {
    // The streaming reader, in pieces as small as it cuts them, gives the same text or the
    // same error as the whole-file reader.
    let file = ScratchFile::write("txt", bytes);
    let mut streamed = String::new();
    let pieces = for_each_piece(&file.path, 1, |piece| {
        streamed.push_str(piece);
        Ok(())
    });
    let document = read_text_document_bytes(bytes, "fuzz.txt");
    match (&document, &pieces) {
        (Ok(document), Ok(())) => assert_eq!(streamed, document.text, "the pieces rejoin"),
        (
            Err(DataError::InvalidUtf8 {
                line, byte_offset, ..
            }),
            Err(DataError::InvalidUtf8 {
                line: streamed_line,
                byte_offset: streamed_offset,
                ..
            }),
        ) => assert_eq!((line, byte_offset), (streamed_line, streamed_offset)),
        (Err(DataError::NoText { .. }), Err(DataError::NoText { .. })) => {}
        (whole, streamed) => panic!("whole-file {whole:?} but streamed {streamed:?}"),
    }
    let document = document.map_err(refused)?;
    assert!(document.lines().count() > 0, "a document has a line");
    Ok(())
}

fn tokenizer(bytes: &[u8]) -> Result<(), String> {
    const SENTENCE: &str = "It is a truth universally acknowledged, that a single man [MASK] \
                            in possession of £5000 a year — naïve, 日本, 🙂\ttab.";
    let tokenizer = TextTokenizer::from_bytes(bytes, "tokenizer.json").map_err(refused)?;
    let ids = tokenizer.encode(SENTENCE).map_err(refused)?;
    let plain = tokenizer.encode_plain(SENTENCE).map_err(refused)?;
    // Ids index an embedding table of vocab_size rows.
    let vocab_size = tokenizer.vocab_size();
    assert!(
        ids.iter()
            .chain(&plain)
            .all(|&id| (id as usize) < vocab_size),
        "ids {ids:?} within the vocabulary of {vocab_size}"
    );
    tokenizer.decode(&ids).map_err(refused)?;
    // Ids outside the vocabulary are skipped, as documented.
    tokenizer
        .decode(&[vocab_size as u32, u32::MAX])
        .map_err(refused)?;
    Ok(())
}

fn safetensors(bytes: &[u8]) -> Result<(), String> {
    let file = ScratchFile::write("safetensors", bytes);
    let tensors = tch::Tensor::read_safetensors(&file.path).map_err(|error| describe(&error))?;
    // The tensors hold the file's data: never more bytes than the file has.
    let data_bytes: usize = tensors
        .iter()
        .map(|(_, tensor)| tensor.numel() * tensor.kind().elt_size_in_bytes())
        .sum();
    assert!(
        data_bytes <= bytes.len(),
        "{data_bytes} bytes of tensors from a file of {}",
        bytes.len()
    );
    Ok(())
}

fn toml(bytes: &[u8]) -> Result<(), String> {
    use pretext_eval::study::StudyConfig;
    use pretext_train::PretrainConfig;

    // Config files are read as UTF-8 text.
    let text = std::str::from_utf8(bytes).map_err(|error| error.to_string())?;
    let pretrain = PretrainConfig::from_toml(text);
    if let Ok(config) = &pretrain {
        let _ = config.validate();
        // A run saves its resolved config and reads it back on resume.
        let saved = config.to_toml();
        PretrainConfig::from_toml(&saved)
            .unwrap_or_else(|error| panic!("the saved config does not parse back: {error}"));
    }
    let study = StudyConfig::from_toml(text);
    if let Ok(config) = &study {
        let _ = config.validate();
        StudyConfig::from_toml(&config.to_toml())
            .unwrap_or_else(|error| panic!("the written study does not parse back: {error}"));
    }
    match (pretrain, study) {
        (Err(error), Err(_)) => Err(error),
        _ => Ok(()),
    }
}

/// A folder for files rewritten at every input: `pretext-fuzz` on the tmpfs `/dev/shm`
/// when there is one (a disk file system may flush each rewrite), else in the temporary
/// folder. Created when missing.
pub fn scratch_dir() -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.join("pretext-fuzz")
    } else {
        std::env::temp_dir().join("pretext-fuzz")
    };
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
    dir
}

/// Bytes written to a file that readers needing a path can open; removed when dropped.
struct ScratchFile {
    path: PathBuf,
}

impl ScratchFile {
    /// Writes `bytes` to a file with `extension`, unique to this process and thread.
    fn write(extension: &str, bytes: &[u8]) -> ScratchFile {
        let dir = scratch_dir();
        let thread = format!("{:?}", std::thread::current().id());
        let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
        let path = dir.join(format!("{}-{thread}.{extension}", std::process::id()));
        std::fs::write(&path, bytes)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
        ScratchFile { path }
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `bytes` gzipped (IDX files are read raw or gzipped).
fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

/// The PNG chunks' CRCs recomputed, so a mutated chunk reaches the decoder instead of
/// failing its checksum. Bytes that are not a PNG, or whose chunk lengths run past the
/// end, are left as they are from there on.
fn fix_png_checksums(bytes: &[u8]) -> Vec<u8> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let mut fixed = bytes.to_vec();
    if !fixed.starts_with(SIGNATURE) {
        return fixed;
    }
    let mut chunk = SIGNATURE.len();
    // A chunk: 4-byte big-endian data length, 4-byte type, data, 4-byte CRC of type + data.
    while let Some(length) = fixed.get(chunk..chunk + 4) {
        let length = u32::from_be_bytes(length.try_into().expect("4 bytes")) as usize;
        let crc_at = chunk + 8 + length;
        if crc_at + 4 > fixed.len() {
            break;
        }
        let mut crc = flate2::Crc::new();
        crc.update(&fixed[chunk + 4..crc_at]);
        fixed[crc_at..crc_at + 4].copy_from_slice(&crc.sum().to_be_bytes());
        chunk = crc_at + 4;
    }
    fixed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_names_are_distinct() {
        let mut names: Vec<&str> = TARGETS.iter().map(|target| target.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TARGETS.len());
    }

    #[test]
    fn fixed_png_checksums_make_an_edited_png_decode_again() {
        let mut png = Vec::new();
        image::GrayImage::from_pixel(3, 2, image::Luma([7u8]))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        // Width 3 -> 2 in IHDR (bytes 16..20) breaks its CRC.
        png[19] = 2;
        assert!(image(&png).unwrap_err().contains("CRC"), "checksum refused");
        let set = read_image_bytes(&fix_png_checksums(&png), "x.png", None);
        // The data no longer matches the size: refused by the decoder, not by the checksum.
        let message = set.map(drop).unwrap_err().to_string();
        assert!(!message.contains("CRC"), "{message}");
    }

    #[test]
    fn describe_joins_the_causes() {
        let error = read_image_bytes(b"\x89PNG\r\n\x1a\n", "cut.png", None).unwrap_err();
        let message = describe(&error);
        assert!(
            message.starts_with("cut.png: cannot decode image: "),
            "{message}"
        );
    }
}

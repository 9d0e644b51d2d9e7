//! The error type of every fallible function in this crate.

use std::path::PathBuf;

/// What went wrong while reading, resolving or sampling a dataset.
///
/// Every variant that concerns a file names it (`path`), says what was expected and what
/// was found, so the message alone tells the user what to fix.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file or folder could not be opened or read.
    #[error("{path}: cannot read")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file starts with the gzip magic but its stream is corrupt or cut short.
    #[error("{path}: corrupt gzip stream")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The IDX magic number is not the one for this kind of file.
    #[error("{path}: bad magic 0x{found:08x}, expected 0x{expected:08x} ({what})")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// The magic number read.
        found: u32,
        /// The magic number required.
        expected: u32,
        /// What the expected magic means, e.g. "uint8 images".
        what: &'static str,
    },
    /// The file has fewer bytes than its header promises.
    #[error("{path}: truncated: expected {expected} bytes ({what}), found {found}")]
    Truncated {
        /// The file (after gzip decompression).
        path: PathBuf,
        /// What the byte count covers, e.g. "16-byte header + 100 images of 28x28".
        what: String,
        /// Bytes required.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The file has more bytes than its header accounts for.
    #[error("{path}: {found} bytes, expected exactly {expected} ({what}); trailing data")]
    TrailingBytes {
        /// The file (after gzip decompression).
        path: PathBuf,
        /// What the byte count covers.
        what: String,
        /// Bytes required.
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// Two things that must agree in shape or count do not.
    #[error("{path}: shape mismatch: expected {expected}, found {found}")]
    ShapeMismatch {
        /// The file or folder where the disagreement was found.
        path: PathBuf,
        /// The shape or count required.
        expected: String,
        /// The shape or count found.
        found: String,
    },
    /// A label is not below the number of known class names.
    #[error("{path}: label {label} at index {index} is out of range: expected < {num_classes} (the number of class names)")]
    LabelOutOfRange {
        /// The labels file (or dataset name).
        path: PathBuf,
        /// Index of the offending sample.
        index: usize,
        /// The label found.
        label: u16,
        /// The number of class names.
        num_classes: usize,
    },
    /// The dataset has no samples.
    #[error("{path}: no images found ({details})")]
    EmptyDataset {
        /// The folder or file.
        path: PathBuf,
        /// What was looked for.
        details: String,
    },
    /// A table file has no rows (or no header).
    #[error("{path}: no rows ({details})")]
    EmptyTable {
        /// The file.
        path: PathBuf,
        /// What was found.
        details: String,
    },
    /// An image file with a PNG/JPEG extension could not be decoded.
    #[error("{path}: cannot decode image")]
    Decode {
        /// The image file.
        path: PathBuf,
        /// The decoder's error.
        source: image::ImageError,
    },
    /// The `--data` spec names nothing that exists.
    #[error("{path}: not found (expected \"embedded\", an IDX images file or a folder of IDX files or class subfolders)")]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The path exists but is not a layout this crate knows.
    #[error("{path}: unknown dataset layout: {details}")]
    UnknownLayout {
        /// The file or folder.
        path: PathBuf,
        /// What was found and what was expected.
        details: String,
    },
    /// A label budget such as "600" or "1%" could not be used.
    #[error("label budget {text:?}: {reason}")]
    BadLabelBudget {
        /// The text given.
        text: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Labels are required (e.g. for a probe) but the data has none.
    #[error(
        "{what} has no labels; expected labeled data (an IDX labels file or class subfolders)"
    )]
    Unlabeled {
        /// What lacks labels, e.g. "training split".
        what: String,
    },
    /// A sampling or split option is out of its valid range.
    #[error("invalid {option}: {reason}")]
    BadOption {
        /// The option, e.g. "batch_size".
        option: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
    /// A setting of the `[data]` section that the data it names cannot be read with.
    #[error("invalid setting {field}: {message}")]
    InvalidSetting {
        /// The setting, e.g. "data.seq_len".
        field: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A text file is not valid UTF-8.
    #[error(
        "{path}: line {line}: invalid UTF-8 at byte {byte_offset} of the file; expected UTF-8 text"
    )]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// The 1-based line holding the first invalid byte.
        line: usize,
        /// The offset of that byte from the start of the file.
        byte_offset: usize,
    },
    /// A file read more than once (a table's passes, a labeled text file's labels and then
    /// its texts) gave other rows on a later pass.
    #[error(
        "{path}: the file changed while it was read (pretext reads it more than once; leave it unchanged while a run loads it)"
    )]
    ChangedWhileRead {
        /// The file.
        path: PathBuf,
    },
    /// A text file, labeled file or folder holds no text.
    #[error("{path}: no text found ({details})")]
    NoText {
        /// The file or folder.
        path: PathBuf,
        /// What was looked for, e.g. "the file is empty".
        details: String,
    },
    /// A line of a labeled text file (TSV or JSONL) lacks a field or has one of the wrong type.
    #[error("{path}: line {line}: expected {expected}, found {found}")]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What the line should hold, e.g. "label<TAB>text".
        expected: String,
        /// What it holds.
        found: String,
    },
    /// A line of a JSONL file is not valid JSON.
    #[error("{path}: line {line}: invalid JSON; expected one object per line such as {{\"text\": \"...\", \"label\": \"...\"}}")]
    BadJson {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A test-split label does not occur in the training split, so it has no class code.
    #[error("{path}: line {line}: label {label:?} does not occur in the training file {train}; expected one of: {known}")]
    UnknownLabel {
        /// The test file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// The label found.
        label: String,
        /// The training file whose labels define the classes.
        train: PathBuf,
        /// The known class names, comma-separated.
        known: String,
    },
    /// A tokenizer file could not be parsed or written.
    #[error("{path}: {action}")]
    TokenizerFile {
        /// The tokenizer.json file.
        path: PathBuf,
        /// What failed and what was expected, e.g. "cannot parse as a Hugging Face tokenizer.json".
        action: &'static str,
        /// The tokenizers crate's error.
        source: tokenizers::Error,
    },
    /// A tokenizer failed to train, encode or decode.
    #[error("tokenizer: cannot {operation}")]
    Tokenizer {
        /// What was attempted, e.g. "encode text".
        operation: String,
        /// The tokenizers crate's error.
        source: tokenizers::Error,
    },
    /// The file does not start with a RIFF/WAVE header.
    #[error("{path}: not a WAV file: expected a RIFF/WAVE header, found {found}")]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What the file starts with, e.g. `the bytes "hello, w"`.
        found: String,
    },
    /// A WAV file's header or sample data is malformed or cut short.
    #[error("{path}: unreadable WAV: {reason}; expected a complete RIFF/WAVE file")]
    BadWav {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the WAV decoder's message.
        reason: String,
    },
    /// A well-formed WAV file in an encoding this crate does not decode.
    #[error("{path}: unsupported WAV format: {found}; expected 8-, 16-, 24- or 32-bit integer PCM or 32-bit float")]
    UnsupportedWav {
        /// The file.
        path: PathBuf,
        /// The encoding found.
        found: String,
    },
    /// A WAV file holds no samples.
    #[error("{path}: no audio samples; expected a WAV file with at least one sample")]
    EmptyWav {
        /// The file.
        path: PathBuf,
    },
    /// A float WAV file holds a NaN or infinite sample.
    #[error("{path}: sample {index} is {value}; expected finite float samples")]
    NonFiniteSample {
        /// The file.
        path: PathBuf,
        /// Index of the sample in the file's interleaved data.
        index: usize,
        /// The sample read.
        value: f32,
    },
    /// A WAV file declares a sample rate no audio is recorded at: a corrupt header.
    #[error("{path}: sample rate {found} Hz; expected {min} to {max} Hz (the header is corrupt, or the file is not audio)")]
    UnsupportedSampleRate {
        /// The file.
        path: PathBuf,
        /// The rate declared.
        found: u32,
        /// The lowest rate accepted.
        min: u32,
        /// The highest rate accepted.
        max: u32,
    },
    /// A WAV file longer than pretext reads (its samples over its declared rate).
    #[error("{path}: {samples} samples at {rate} Hz are {:.1} hours of audio; pretext reads recordings of up to {} hours per file (cut longer ones into several files)", *samples as f64 / f64::from(*rate) / 3600.0, limit_seconds / 3600)]
    RecordingTooLong {
        /// The file.
        path: PathBuf,
        /// Its samples.
        samples: usize,
        /// Its declared rate.
        rate: u32,
        /// The longest recording read, in seconds.
        limit_seconds: u64,
    },
    /// A float WAV file holds a sample far beyond full scale: misread or corrupt data.
    #[error("{path}: sample {index} is {value}; expected float samples within ±{limit} (full scale is ±1)")]
    SampleOutOfRange {
        /// The file.
        path: PathBuf,
        /// Index of the sample in the file's interleaved data.
        index: usize,
        /// The sample read.
        value: f32,
        /// The largest magnitude accepted.
        limit: f32,
    },
    /// A WAV file's sample rate is not the one asked for, and resampling is off.
    #[error("{path}: sample rate {found} Hz, expected {expected} Hz; enable resampling (resample = true) or convert the file to {expected} Hz")]
    SampleRateMismatch {
        /// The file.
        path: PathBuf,
        /// The file's sample rate.
        found: u32,
        /// The sample rate asked for.
        expected: u32,
    },
    /// Audio could not be resampled between two rates.
    #[error("cannot resample from {from} Hz to {to} Hz: {reason}")]
    Resample {
        /// The input sample rate.
        from: u32,
        /// The output sample rate.
        to: u32,
        /// The resampler's message.
        reason: String,
    },
    /// A folder or labels file names no audio.
    #[error("{path}: no audio found ({details})")]
    NoAudio {
        /// The folder or labels file.
        path: PathBuf,
        /// What was looked for.
        details: String,
    },
}

/// The message of a caught panic (its `&str` or `String` payload), for the error that
/// replaces it when a dependency panics on a corrupt file instead of returning an error.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "a panic without a message".to_string()
    }
}

thread_local! {
    /// Set while a third-party decoder runs under [`catch_quietly`].
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `call`, a panic in it becoming `Err(its message)`, without the panic hook printing
/// "thread … panicked at …" first: for third-party decoders (zune-jpeg, parquet, tokenizers)
/// that panic on some corrupt inputs, whose panic is then reported as the file's error. The
/// hook is wrapped once per process; other panics are printed as before.
pub(crate) fn catch_quietly<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    static WRAP_HOOK: std::sync::Once = std::sync::Once::new();
    WRAP_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    let was_quiet = QUIET.with(|quiet| quiet.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    QUIET.with(|quiet| quiet.set(was_quiet));
    // One line: assertion messages span several ("left: …", "right: …").
    result.map_err(|payload| {
        let message = panic_message(payload.as_ref());
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    })
}

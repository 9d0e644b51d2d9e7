//! [`TextTokenizer`]: a Hugging Face `tokenizers::Tokenizer` (any standard `tokenizer.json`)
//! with the special-token ids that masking and packing code needs.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::DataError;
use crate::token_set::Vocabulary;

/// Names under which each special token is looked up, in order of preference: BERT's,
/// then RoBERTa's / our own, then GPT-2's single `<|endoftext|>`.
const PAD_NAMES: &[&str] = &["[PAD]", "<pad>"];
const UNK_NAMES: &[&str] = &["[UNK]", "<unk>"];
const BOS_NAMES: &[&str] = &["[CLS]", "<s>", "<bos>", "<|endoftext|>"];
const EOS_NAMES: &[&str] = &["[SEP]", "</s>", "<eos>", "<|endoftext|>"];
const MASK_NAMES: &[&str] = &["[MASK]", "<mask>"];

/// A tokenizer: text to token ids and back.
///
/// Padding and truncation settings of a loaded file are cleared: callers pack, pad and
/// truncate ids themselves ([`crate::pack_blocks`]), so no text is silently cut.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    vocab_size: usize,
    pad: Option<u32>,
    unk: Option<u32>,
    bos: Option<u32>,
    eos: Option<u32>,
    mask: Option<u32>,
    special_ids: Vec<u32>,
}

impl TextTokenizer {
    /// Wraps a tokenizer, clearing its padding and truncation.
    pub fn new(mut inner: tokenizers::Tokenizer) -> Self {
        inner.with_padding(None);
        // Clearing truncation cannot fail: only new truncation parameters are validated.
        let _ = inner.with_truncation(None);
        let vocab_size = inner
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&max_id| max_id as usize + 1);
        let find = |names: &[&str]| names.iter().find_map(|name| inner.token_to_id(name));
        let (pad, unk, bos, eos, mask) = (
            find(PAD_NAMES),
            find(UNK_NAMES),
            find(BOS_NAMES),
            find(EOS_NAMES),
            find(MASK_NAMES),
        );
        let special_ids: BTreeSet<u32> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, token)| token.special)
            .map(|(id, _)| id)
            .chain([pad, unk, bos, eos, mask].into_iter().flatten())
            .collect();
        Self {
            inner,
            vocab_size,
            pad,
            unk,
            bos,
            eos,
            mask,
            special_ids: special_ids.into_iter().collect(),
        }
    }

    /// Loads a Hugging Face `tokenizer.json` (BERT's, GPT-2's, or one saved by [`Self::save`]).
    pub fn from_file(path: &Path) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|source| DataError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&bytes, path)
    }

    /// [`Self::from_file`] on a `tokenizer.json` held in memory; `name` stands for the file
    /// in errors.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self, DataError> {
        Self::parse(bytes, Path::new(name))
    }

    fn parse(bytes: &[u8], path: &Path) -> Result<Self, DataError> {
        let unparsable = |source| DataError::TokenizerFile {
            path: path.to_path_buf(),
            action: "cannot parse as a Hugging Face tokenizer.json",
            source,
        };
        // tokenizers 0.22 panics when the "decoder" value is not valid JSON (bad syntax,
        // invalid UTF-8 or escapes: `expect("Helper")` in decoders/mod.rs), so the whole
        // file is parsed as JSON first.
        serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|error| unparsable(error.into()))?;
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(unparsable)?;
        Ok(Self::new(inner))
    }

    /// Writes the tokenizer as a (pretty-printed) `tokenizer.json`.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        self.inner
            .save(path, true)
            .map_err(|source| DataError::TokenizerFile {
                path: path.to_path_buf(),
                action: "cannot write the tokenizer",
                source,
            })
    }

    /// Encodes one text **with** the special tokens the tokenizer's post-processor adds:
    /// `[CLS] … [SEP]` for a BERT-style WordPiece, `<s> … </s>` for our byte-level BPE,
    /// nothing for a character tokenizer.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, DataError> {
        self.encode_one(text, true)
    }

    /// Encodes one text **without** the post-processor's special tokens (for packing
    /// documents into blocks). Special tokens written literally in the text, such as
    /// `[MASK]`, are still recognized.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, DataError> {
        self.encode_one(text, false)
    }

    /// [`Self::encode`] on many texts, in parallel.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>, DataError> {
        self.encode_many(texts, true)
    }

    /// [`Self::encode_plain`] on many texts, in parallel.
    pub fn encode_batch_plain<S: AsRef<str>>(
        &self,
        texts: &[S],
    ) -> Result<Vec<Vec<u32>>, DataError> {
        self.encode_many(texts, false)
    }

    fn encode_one(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, DataError> {
        let encoding = guarded(
            || "encode text".into(),
            || self.inner.encode_fast(text, add_special_tokens),
        )?;
        Ok(encoding.get_ids().to_vec())
    }

    fn encode_many<S: AsRef<str>>(
        &self,
        texts: &[S],
        add_special_tokens: bool,
    ) -> Result<Vec<Vec<u32>>, DataError> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = guarded(
            || format!("encode a batch of {} texts", texts.len()),
            || self.inner.encode_batch_fast(inputs, add_special_tokens),
        )?;
        Ok(encodings
            .iter()
            .map(|encoding| encoding.get_ids().to_vec())
            .collect())
    }

    /// [`Self::encode_batch`] cut to at most `max_length` ids each the way Hugging Face
    /// truncates (the end of the text is dropped, the post-processor's special tokens such
    /// as the closing `[SEP]` are kept), with how many texts were cut.
    pub fn encode_batch_truncated<S: AsRef<str>>(
        &self,
        texts: &[S],
        max_length: usize,
    ) -> Result<(Vec<Vec<u32>>, usize), DataError> {
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let operation = || format!("encode a batch of {} texts", texts.len());
        let mut truncating = self.inner.clone();
        truncating
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length,
                ..Default::default()
            }))
            .map_err(|source| DataError::Tokenizer {
                operation: operation(),
                source,
            })?;
        let encodings = guarded(operation, || truncating.encode_batch_fast(inputs, true))?;
        let truncated = encodings
            .iter()
            .filter(|encoding| !encoding.get_overflowing().is_empty())
            .count();
        Ok((
            encodings
                .iter()
                .map(|encoding| encoding.get_ids().to_vec())
                .collect(),
            truncated,
        ))
    }

    /// Decodes ids to text, leaving out special tokens. Ids outside the vocabulary are
    /// skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, DataError> {
        guarded(
            || format!("decode {} ids", ids.len()),
            || self.inner.decode(ids, true),
        )
    }

    /// The size an embedding table needs: one more than the largest id, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id of a token, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The padding token: `[PAD]` or `<pad>`.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// The unknown token: `[UNK]` or `<unk>`.
    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    /// The sequence-start token: `[CLS]`, `<s>`, `<bos>` or `<|endoftext|>`.
    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    /// The sequence-end / separator token: `[SEP]`, `</s>`, `<eos>` or `<|endoftext|>`.
    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    /// The mask token: `[MASK]` or `<mask>`.
    pub fn mask_id(&self) -> Option<u32> {
        self.mask
    }

    /// Every special token id, sorted: the tokens the file marks special plus the ones
    /// found by name above. Masking must never select these.
    pub fn special_ids(&self) -> &[u32] {
        &self.special_ids
    }

    /// What a token set needs of this tokenizer: its size, padding, mask and special ids.
    pub fn vocabulary(&self) -> Vocabulary {
        let mut special_ids = self.special_ids.clone();
        special_ids.sort_unstable();
        Vocabulary {
            size: self.vocab_size as u32,
            pad_id: self.pad.unwrap_or(0),
            mask_id: self.mask,
            special_ids,
        }
    }

    /// The wrapped Hugging Face tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// Runs a call into `tokenizers`, a panic becoming an error of `operation`: tokenizers 0.22
/// panics on some settings a tokenizer.json may hold (a `FixedLength` pre-tokenizer of
/// length 0 splits text into chunks of 0 characters).
fn guarded<T>(
    operation: impl FnOnce() -> String,
    call: impl FnOnce() -> tokenizers::Result<T>,
) -> Result<T, DataError> {
    crate::error::catch_quietly(call)
        .unwrap_or_else(|message| {
            Err(format!("the tokenizer failed on its own settings: {message}").into())
        })
        .map_err(|source| DataError::Tokenizer {
            operation: operation(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_syntax_error_inside_the_decoder_is_an_error_not_a_panic() {
        // tokenizers 0.22 panicked on these (its decoder deserializer unwraps).
        for json in [
            &br#"{"decoder": {"type": "Fuse" "#[..],
            br#"{"decoder": {"type": "Fuse", 1: 2}}"#,
            b"{\"decoder\": {\"type\": \"Fu\x01se\"}}",
            b"{\"decoder\": {\"type\": \"Fuse\", \"\xc6\": 1}}",
            br#"{"decoder": {"type": "Fuse", "\udc00": 1}}"#,
        ] {
            let error = TextTokenizer::from_bytes(json, "broken.json").unwrap_err();
            assert!(
                matches!(error, DataError::TokenizerFile { .. }),
                "{error:?}"
            );
            assert_eq!(
                error.to_string(),
                "broken.json: cannot parse as a Hugging Face tokenizer.json"
            );
        }
    }

    #[test]
    fn a_tokenizer_that_panics_on_its_settings_gives_an_encode_error() {
        // A character tokenizer's FixedLength pre-tokenizer with its length flipped from 1 to
        // 0: tokenizers 0.22 panicked at encoding ("chunk size must be non-zero").
        let json = br#"{"version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [], "normalizer": null,
            "pre_tokenizer": {"type": "FixedLength", "length": 0},
            "post_processor": null, "decoder": null,
            "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "a": 1}, "unk_token": "<unk>"}}"#;
        let tokenizer = TextTokenizer::from_bytes(json, "char.json").unwrap();
        for error in [
            tokenizer.encode("a a").unwrap_err(),
            tokenizer.encode_batch_plain(&["a", "aa"]).unwrap_err(),
        ] {
            assert!(matches!(error, DataError::Tokenizer { .. }), "{error:?}");
            let cause = std::error::Error::source(&error).unwrap().to_string();
            assert!(cause.contains("chunk size must be non-zero"), "{cause}");
        }
        assert_eq!(tokenizer.decode(&[1, 1]).unwrap(), "a a");
    }
}

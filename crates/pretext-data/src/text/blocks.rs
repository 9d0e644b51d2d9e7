//! Packing token sequences into fixed-length blocks, as GPT and BERT pretraining do.

use std::path::PathBuf;

use crate::error::DataError;
use crate::store::{Store, StoreWriter};
use crate::text::corpus::{for_each_piece, PIECE_BYTES};
use crate::text::tokenizer::TextTokenizer;

/// Text encoded at once (in parallel) by [`pack_corpus_blocks`].
const BATCH_BYTES: usize = 4 * PIECE_BYTES;

/// Concatenates `documents` in order, with `separator` (e.g. the `<eos>` or `[SEP]` id)
/// between consecutive documents when given, and cuts the stream into blocks of exactly
/// `block_len` ids; the incomplete tail is dropped. `block_len == 0` gives no blocks.
///
/// Blocks cross document boundaries: a block may end one document and start the next.
pub fn pack_blocks(
    documents: &[Vec<u32>],
    block_len: usize,
    separator: Option<u32>,
) -> Vec<Vec<u32>> {
    if block_len == 0 {
        return Vec::new();
    }
    let separators = match separator {
        Some(_) => documents.len().saturating_sub(1),
        None => 0,
    };
    let mut stream = Vec::with_capacity(documents.iter().map(Vec::len).sum::<usize>() + separators);
    for (index, document) in documents.iter().enumerate() {
        if let (Some(separator), true) = (separator, index > 0) {
            stream.push(separator);
        }
        stream.extend_from_slice(document);
    }
    stream
        .chunks_exact(block_len)
        .map(<[u32]>::to_vec)
        .collect()
}

/// [`pack_blocks`] of the documents `files` (each file one document) encoded with
/// `tokenizer` (without its post-processor's special tokens), read and encoded a piece at a
/// time ([`for_each_piece`]) so that memory holds a few pieces and not the corpus. The ids go
/// to a store that becomes a mapped temporary file past `limit_bytes`; its first
/// `blocks × block_len` ids are the blocks. Returns the store and the number of blocks.
pub fn pack_corpus_blocks(
    files: &[PathBuf],
    tokenizer: &TextTokenizer,
    block_len: usize,
    separator: Option<u32>,
    limit_bytes: u64,
) -> Result<(Store<u32>, usize), DataError> {
    let mut stream = StoreWriter::new(limit_bytes);
    let mut written = 0usize;
    // Pieces waiting to be encoded, each with whether a separator goes before it.
    let mut batch: Vec<(bool, String)> = Vec::new();
    let mut batch_bytes = 0;
    let mut flush = |batch: &mut Vec<(bool, String)>| -> Result<(), DataError> {
        let texts: Vec<&str> = batch.iter().map(|(_, text)| text.as_str()).collect();
        for ((separated, _), ids) in batch.iter().zip(tokenizer.encode_batch_plain(&texts)?) {
            if let (Some(separator), true) = (separator, *separated) {
                stream.extend_from_slice(&[separator])?;
                written += 1;
            }
            stream.extend_from_slice(&ids)?;
            written += ids.len();
        }
        batch.clear();
        Ok(())
    };
    for (document, file) in files.iter().enumerate() {
        let mut first = true;
        for_each_piece(file, PIECE_BYTES, |piece| {
            batch.push((first && document > 0, piece.to_string()));
            first = false;
            batch_bytes += piece.len();
            if batch_bytes >= BATCH_BYTES {
                flush(&mut batch)?;
                batch_bytes = 0;
            }
            Ok(())
        })?;
    }
    flush(&mut batch)?;
    let blocks = written.checked_div(block_len).unwrap_or(0);
    Ok((stream.finish()?, blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separator_goes_between_documents_and_tail_is_dropped() {
        let documents = vec![vec![1, 2, 3], vec![4, 5], vec![6, 7, 8, 9]];
        assert_eq!(
            pack_blocks(&documents, 4, Some(0)),
            [vec![1, 2, 3, 0], vec![4, 5, 0, 6]]
        );
        assert_eq!(
            pack_blocks(&documents, 3, None),
            [vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]
        );
    }

    #[test]
    fn too_short_or_zero_block_len_gives_no_blocks() {
        assert!(pack_blocks(&[vec![1, 2]], 3, Some(0)).is_empty());
        assert!(pack_blocks(&[vec![1, 2]], 0, None).is_empty());
        assert!(pack_blocks(&[], 2, Some(0)).is_empty());
    }
}

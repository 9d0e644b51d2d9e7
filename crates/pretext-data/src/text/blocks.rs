//! Packing token sequences into fixed-length blocks, as GPT and BERT pretraining do.

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

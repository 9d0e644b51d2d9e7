//! Token sequences of a fixed length, the text counterpart of [`crate::ImageSet`].

use std::sync::Arc;

use crate::store::Store;

/// `len` sequences of `seq_len` token ids (padded with `pad_id`), with optional labels.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenSet {
    /// `len * seq_len` ids, one sequence after another: in memory, or past a memory limit
    /// in a mapped temporary file.
    pub tokens: Arc<Store<u32>>,
    /// Where copies of these sequences (subsets) go to a mapped file instead of memory.
    pub memory_limit_bytes: u64,
    pub len: usize,
    pub seq_len: usize,
    /// The id that fills positions after a sequence's end (never attended to).
    pub pad_id: u32,
    /// Size of the tokenizer's vocabulary (every id is below it).
    pub vocab_size: u32,
    /// Ids of the tokenizer's special tokens ([CLS], [SEP], padding, ...), sorted.
    pub special_ids: Arc<Vec<u32>>,
    /// The [MASK] token, when the tokenizer has one.
    pub mask_id: Option<u32>,
    /// 0-based class codes, one per sequence.
    pub labels: Option<Vec<u16>>,
    /// Class names indexed by code.
    pub class_names: Vec<String>,
}

impl TokenSet {
    /// Sequences truncated or padded to `seq_len`; `vocabulary` describes the tokenizer.
    pub fn from_sequences(
        sequences: &[Vec<u32>],
        seq_len: usize,
        vocabulary: &Vocabulary,
        labels: Option<Vec<u16>>,
        class_names: Vec<String>,
    ) -> TokenSet {
        let mut tokens = vec![0; sequences.len() * seq_len];
        for (out, sequence) in tokens.chunks_exact_mut(seq_len.max(1)).zip(sequences) {
            fit_sequence(out, sequence, vocabulary.pad_id);
        }
        TokenSet::from_store(
            Store::Memory(tokens),
            sequences.len(),
            seq_len,
            vocabulary,
            labels,
            class_names,
            u64::MAX,
        )
    }

    /// A set of the `len` sequences in `tokens` (`len × seq_len` ids, each already fitted
    /// to `seq_len`); subsets go to a mapped file past `memory_limit_bytes`.
    pub fn from_store(
        tokens: Store<u32>,
        len: usize,
        seq_len: usize,
        vocabulary: &Vocabulary,
        labels: Option<Vec<u16>>,
        class_names: Vec<String>,
        memory_limit_bytes: u64,
    ) -> TokenSet {
        TokenSet {
            len,
            tokens: Arc::new(tokens),
            memory_limit_bytes,
            seq_len,
            pad_id: vocabulary.pad_id,
            vocab_size: vocabulary.size,
            special_ids: Arc::new(vocabulary.special_ids.clone()),
            mask_id: vocabulary.mask_id,
            labels,
            class_names,
        }
    }

    /// Unlabeled sequences: the blocks of `seq_len` ids of `stream` numbered `blocks`, in
    /// that order, copied into a store that is a mapped temporary file past `limit_bytes`.
    pub fn from_blocks(
        stream: &[u32],
        blocks: &[usize],
        seq_len: usize,
        vocabulary: &Vocabulary,
        limit_bytes: u64,
    ) -> TokenSet {
        let tokens = Store::copied(blocks.len() * seq_len, limit_bytes, |out| {
            for (sequence, &block) in out.chunks_exact_mut(seq_len.max(1)).zip(blocks) {
                sequence.copy_from_slice(&stream[block * seq_len..(block + 1) * seq_len]);
            }
        });
        let len = blocks.len();
        TokenSet::from_store(
            tokens,
            len,
            seq_len,
            vocabulary,
            None,
            Vec::new(),
            limit_bytes,
        )
    }

    /// Whether `id` is one of the tokenizer's special tokens.
    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.binary_search(&id).is_ok()
    }

    /// The `seq_len` ids of sequence `index`. Panics if `index >= len` (a caller bug).
    pub fn sequence(&self, index: usize) -> &[u32] {
        &self.tokens[index * self.seq_len..(index + 1) * self.seq_len]
    }

    /// Number of classes: `class_names.len()` when known, else max label + 1; 0 if unlabeled.
    pub fn num_classes(&self) -> usize {
        crate::split::class_count(self.labels.as_deref(), &self.class_names)
    }

    /// A new set holding copies of the sequences (and labels) at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> TokenSet {
        let seq_len = self.seq_len;
        let tokens = Store::copied(indices.len() * seq_len, self.memory_limit_bytes, |out| {
            for (sequence, &index) in out.chunks_exact_mut(seq_len.max(1)).zip(indices) {
                sequence.copy_from_slice(self.sequence(index));
            }
        });
        TokenSet {
            tokens: Arc::new(tokens),
            len: indices.len(),
            labels: self
                .labels
                .as_ref()
                .map(|labels| indices.iter().map(|&i| labels[i]).collect()),
            ..self.clone()
        }
    }
}

/// Writes `ids` into `out`, truncated to its length or padded with `pad_id`.
pub fn fit_sequence(out: &mut [u32], ids: &[u32], pad_id: u32) {
    let kept = ids.len().min(out.len());
    out[..kept].copy_from_slice(&ids[..kept]);
    out[kept..].fill(pad_id);
}

/// What a [`TokenSet`] needs to know of its tokenizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocabulary {
    pub size: u32,
    pub pad_id: u32,
    pub mask_id: Option<u32>,
    /// Sorted ids of every special token.
    pub special_ids: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_padded_or_truncated_and_subsets_keep_labels() {
        let vocabulary = Vocabulary {
            size: 10,
            pad_id: 0,
            mask_id: Some(4),
            special_ids: vec![0, 1, 2, 3, 4],
        };
        let set = TokenSet::from_sequences(
            &[vec![5, 6, 7, 8], vec![9]],
            3,
            &vocabulary,
            Some(vec![1, 0]),
            vec!["a".into(), "b".into()],
        );
        assert_eq!(set.sequence(0), &[5, 6, 7]);
        assert_eq!(set.sequence(1), &[9, 0, 0]);
        assert_eq!(set.num_classes(), 2);
        let swapped = set.subset(&[1, 0]);
        assert_eq!(swapped.sequence(0), &[9, 0, 0]);
        assert_eq!(swapped.labels, Some(vec![0, 1]));
    }
}

//! Where decoded audio lives: in memory, or — past a size limit — in an unlinked temporary
//! file mapped into memory, so that a dataset larger than RAM is paged in and out by the
//! operating system as batches read it, instead of filling the process's own memory.

use memmap2::{Mmap, MmapMut};

use crate::error::DataError;

/// The samples of a set of clips, one after another.
#[derive(Debug)]
pub enum ClipStore {
    /// Held by the process.
    Memory(Vec<f32>),
    /// In a temporary file (deleted when the store is dropped) mapped read-only.
    Mapped(Mmap),
}

impl ClipStore {
    /// Builds a store of `len` samples, zeroed, that `fill` then writes: in memory when they
    /// take at most `limit_bytes`, else in a temporary file under the system's temporary
    /// folder (`TMPDIR`), which needs that much free disk.
    pub fn build<E: From<DataError>>(
        len: usize,
        limit_bytes: u64,
        fill: impl FnOnce(&mut [f32]) -> Result<(), E>,
    ) -> Result<ClipStore, E> {
        let bytes = len as u64 * 4;
        if bytes <= limit_bytes {
            let mut samples = vec![0.0; len];
            fill(&mut samples)?;
            return Ok(ClipStore::Memory(samples));
        }
        let folder = std::env::temp_dir();
        let io = |source: std::io::Error| DataError::Io {
            path: folder.clone(),
            source,
        };
        let file = tempfile::tempfile().map_err(io)?;
        file.set_len(bytes).map_err(io)?;
        // SAFETY: the file is unlinked and owned by this store alone, so nothing else can
        // change or truncate it while it is mapped.
        let mut map = unsafe { MmapMut::map_mut(&file) }.map_err(io)?;
        fill(bytemuck::cast_slice_mut(&mut map[..]))?;
        Ok(ClipStore::Mapped(map.make_read_only().map_err(io)?))
    }

    /// Every sample.
    pub fn as_slice(&self) -> &[f32] {
        match self {
            ClipStore::Memory(samples) => samples,
            ClipStore::Mapped(map) => bytemuck::cast_slice(&map[..]),
        }
    }

    /// Whether the samples are in a mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self, ClipStore::Mapped(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_past_its_limit_is_a_mapped_file_with_the_same_samples() {
        let fill = |samples: &mut [f32]| -> Result<(), DataError> {
            for (index, sample) in samples.iter_mut().enumerate() {
                *sample = index as f32 * 0.5;
            }
            Ok(())
        };
        let memory = ClipStore::build(1000, 4000, fill).unwrap();
        let mapped = ClipStore::build(1000, 3999, fill).unwrap();
        assert!(!memory.is_mapped() && mapped.is_mapped());
        assert_eq!(memory.as_slice(), mapped.as_slice());
        assert_eq!(mapped.as_slice()[999], 499.5);
    }

    #[test]
    fn a_failed_fill_is_its_error() {
        let error = ClipStore::build(10, 0, |_| -> Result<(), DataError> {
            Err(DataError::BadOption {
                option: "x",
                reason: "y".into(),
            })
        })
        .unwrap_err();
        assert!(error.to_string().contains('y'), "{error}");
    }
}

//! Where decoded data lives — audio samples, table values, token ids: in memory, or past a
//! size limit in an unlinked temporary file mapped into memory, so that a dataset larger
//! than RAM is paged in and out by the operating system as batches read it instead of
//! filling the process's own memory. Either way the data reads as one slice.

use std::io::Write;
use std::marker::PhantomData;

use bytemuck::Pod;
use memmap2::MmapMut;

use crate::error::DataError;

/// Elements of type `T`, one after another.
#[derive(Debug)]
pub enum Store<T> {
    /// Held by the process.
    Memory(Vec<T>),
    /// In a temporary file (deleted when the store is dropped) mapped into memory.
    Mapped(MmapMut, PhantomData<T>),
}

/// Decoded audio samples.
pub type ClipStore = Store<f32>;

/// The limit in bytes of a limit given in MB (2^20 bytes).
pub fn megabytes(limit_mb: u64) -> u64 {
    limit_mb.saturating_mul(1 << 20)
}

/// The folder temporary files go to, for errors.
fn temporary_folder_error(source: std::io::Error) -> DataError {
    DataError::Io {
        path: std::env::temp_dir(),
        source,
    }
}

impl<T: Pod> Store<T> {
    /// `len` zeroed elements: in memory when they take at most `limit_bytes`, else in a
    /// temporary file under the system's temporary folder (`TMPDIR`), which needs that much
    /// free disk.
    pub fn zeroed(len: usize, limit_bytes: u64) -> Result<Store<T>, DataError> {
        let bytes = len as u64 * std::mem::size_of::<T>() as u64;
        if bytes <= limit_bytes {
            return Ok(Store::Memory(vec![T::zeroed(); len]));
        }
        let file = tempfile::tempfile().map_err(temporary_folder_error)?;
        file.set_len(bytes).map_err(temporary_folder_error)?;
        Store::map(&file)
    }

    /// Maps `file`, which must be unlinked and this store's alone.
    fn map(file: &std::fs::File) -> Result<Store<T>, DataError> {
        // SAFETY: the file is unlinked and owned by this store alone, so nothing else can
        // change or truncate it while it is mapped.
        let map = unsafe { MmapMut::map_mut(file) }.map_err(temporary_folder_error)?;
        Ok(Store::Mapped(map, PhantomData))
    }

    /// [`Store::zeroed`], then `fill` writes every element.
    pub fn build<E: From<DataError>>(
        len: usize,
        limit_bytes: u64,
        fill: impl FnOnce(&mut [T]) -> Result<(), E>,
    ) -> Result<Store<T>, E> {
        let mut store = Store::zeroed(len, limit_bytes)?;
        fill(store.as_mut_slice())?;
        Ok(store)
    }

    /// A new store of `len` elements under `limit_bytes` that `copy` fills from data already
    /// decoded (in memory after all when no temporary file can be made, as a copy cannot
    /// report an error).
    pub fn copied(len: usize, limit_bytes: u64, copy: impl FnOnce(&mut [T])) -> Store<T> {
        let mut store = Store::zeroed(len, limit_bytes)
            .unwrap_or_else(|_| Store::Memory(vec![T::zeroed(); len]));
        copy(store.as_mut_slice());
        store
    }

    /// Every element.
    pub fn as_slice(&self) -> &[T] {
        match self {
            Store::Memory(elements) => elements,
            Store::Mapped(map, _) => bytemuck::cast_slice(&map[..]),
        }
    }

    /// Every element, to write.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Store::Memory(elements) => elements,
            Store::Mapped(map, _) => bytemuck::cast_slice_mut(&mut map[..]),
        }
    }

    /// Whether the elements are in a mapped file.
    pub fn is_mapped(&self) -> bool {
        matches!(self, Store::Mapped(..))
    }
}

impl<T: Pod> std::ops::Deref for Store<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod + PartialEq> PartialEq for Store<T> {
    fn eq(&self, other: &Store<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

/// A store built by appending, when its length is not known ahead: in memory until the
/// elements pass `limit_bytes`, then written on to a temporary file that becomes a mapped
/// store.
pub struct StoreWriter<T> {
    limit_bytes: u64,
    memory: Vec<T>,
    spilled: Option<std::io::BufWriter<std::fs::File>>,
}

impl<T: Pod> StoreWriter<T> {
    pub fn new(limit_bytes: u64) -> StoreWriter<T> {
        StoreWriter {
            limit_bytes,
            memory: Vec::new(),
            spilled: None,
        }
    }

    /// [`StoreWriter::new`] for about `len` elements: room for them is reserved when they
    /// fit under the limit (`len` must be known to exist: nothing checks it against the
    /// data, so never pass a count read from a file's header).
    pub fn with_capacity(limit_bytes: u64, len: usize) -> StoreWriter<T> {
        let mut writer = StoreWriter::new(limit_bytes);
        let bytes = len as u64 * std::mem::size_of::<T>() as u64;
        if bytes <= limit_bytes {
            writer.memory.reserve_exact(len);
        }
        writer
    }

    /// Appends `elements`.
    pub fn extend_from_slice(&mut self, elements: &[T]) -> Result<(), DataError> {
        if self.spilled.is_none() {
            let bytes = (self.memory.len() + elements.len()) * std::mem::size_of::<T>();
            if bytes as u64 <= self.limit_bytes {
                self.memory.extend_from_slice(elements);
                return Ok(());
            }
            let file = tempfile::tempfile().map_err(temporary_folder_error)?;
            let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
            writer
                .write_all(bytemuck::cast_slice(&self.memory))
                .map_err(temporary_folder_error)?;
            self.memory = Vec::new();
            self.spilled = Some(writer);
        }
        let writer = self.spilled.as_mut().expect("spilled above");
        writer
            .write_all(bytemuck::cast_slice(elements))
            .map_err(temporary_folder_error)
    }

    /// The store of everything appended.
    pub fn finish(self) -> Result<Store<T>, DataError> {
        match self.spilled {
            None => Ok(Store::Memory(self.memory)),
            Some(writer) => {
                let file = writer
                    .into_inner()
                    .map_err(|error| temporary_folder_error(error.into_error()))?;
                Store::map(&file)
            }
        }
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

    #[test]
    fn a_writer_spills_to_a_mapped_file_past_its_limit_keeping_every_element() {
        let expected: Vec<u32> = (0..10_000).collect();
        for limit in [0, 4 * 5_000, 4 * 10_000] {
            let mut writer = StoreWriter::new(limit);
            for chunk in expected.chunks(777) {
                writer.extend_from_slice(chunk).unwrap();
            }
            let store = writer.finish().unwrap();
            assert_eq!(store.is_mapped(), limit < 40_000, "limit {limit}");
            assert_eq!(store.as_slice(), expected.as_slice());
        }
        let empty = StoreWriter::<u32>::new(0).finish().unwrap();
        assert!(empty.is_empty() && !empty.is_mapped());
    }
}

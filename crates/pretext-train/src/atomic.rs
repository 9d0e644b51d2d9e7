//! Whole-file writes that never leave half a file: the bytes go to a temporary file beside
//! the target, are fsynced, and the temporary is renamed over the target. A kill or a full
//! disk leaves either the old file or the new one; a failed write removes its temporary.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::TrainError;

/// Writes `contents` to `path` atomically (see the module docs).
pub fn write_atomic(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), TrainError> {
    write_atomic_with(path, |writer| writer.write_all(contents.as_ref()))
}

/// Whether a file name is the temporary of an atomic write (`.NAME.tmp`), which a process
/// killed in the middle of the write leaves behind.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Writes `path` atomically with `write`, which streams into a buffered writer.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), TrainError> {
    let temporary = temporary_for(path);
    let written = (|| {
        let mut writer = BufWriter::new(File::create(&temporary)?);
        write(&mut writer)?;
        let file = writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.sync_all()
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(TrainError::Io {
            path: path.into(),
            error,
        });
    }
    fs::rename(&temporary, path).map_err(|error| {
        let _ = fs::remove_file(&temporary);
        TrainError::Io {
            path: path.into(),
            error,
        }
    })
}

/// `dir/.name.tmp` for `dir/name`: hidden, and on the same file system as the target (see
/// [`is_temporary`]).
fn temporary_for(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        fs::write(&path, "old").unwrap();
        let error = write_atomic_with(&path, |writer| {
            writer.write_all(b"half")?;
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "No space left on device",
            ))
        })
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("report.json") && error.contains("No space left"),
            "{error}"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}

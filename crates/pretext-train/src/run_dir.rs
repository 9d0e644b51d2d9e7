//! The run directory, the unit users share:
//!
//! ```text
//! runs/<name>/
//!   config.toml      resolved config (every default written out)
//!   metrics.jsonl    one JSON object per logged step
//!   checkpoints/step-N/
//!   .lock            held (flock) by the process writing the run; holds its PID
//! ```
//!
//! One process at a time writes a run: [`RunDir::lock`] takes an exclusive `flock` on
//! `.lock`, so a second `pretrain` (or `study`) pointed at the same folder is refused naming the
//! first one's PID. The kernel releases the lock when its holder exits, however it exits; a
//! process killed before it could tidy up leaves its PID in the file, which the next one
//! reports as a stale lock it cleared.

use std::fs;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::config::PretrainConfig;
use crate::error::TrainError;

/// The lock file inside a run (or study) directory.
pub const LOCK_FILE: &str = ".lock";

/// The exclusive right to write a run directory, until dropped.
#[derive(Debug)]
pub struct RunLock {
    file: fs::File,
    /// The PID a killed process left in the lock file, when there was one.
    pub stale_pid: Option<u32>,
}

impl Drop for RunLock {
    /// Empties the file (a clean exit leaves no PID behind); closing it releases the lock.
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
    }
}

/// How `pretrain` treats an existing directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Refuse if the directory exists and is not empty.
    New,
    /// Replace an existing run directory (only one that holds a pretext run, or is empty).
    Overwrite,
    /// Continue from the newest checkpoint.
    Resume,
}

/// Paths inside a run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: &Path) -> RunDir {
        RunDir { root: root.into() }
    }

    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    pub fn metrics_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    pub fn checkpoints_dir(&self) -> PathBuf {
        self.root.join("checkpoints")
    }

    /// Whether the folder holds a pretext run (has a config.toml).
    pub fn is_run(&self) -> bool {
        self.config_path().is_file()
    }

    /// Takes the directory's lock (creating the directory if needed): an error naming the
    /// holder's PID when another process holds it.
    pub fn lock(&self) -> Result<RunLock, TrainError> {
        self.check_is_directory()?;
        fs::create_dir_all(&self.root).map_err(TrainError::io(&self.root))?;
        let path = self.root.join(LOCK_FILE);
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(TrainError::io(&path))?;
        let mut previous = String::new();
        // Unreadable content is no PID.
        let _ = file.read_to_string(&mut previous);
        let previous: Option<u32> = previous.trim().parse().ok();
        try_lock(&file).map_err(|error| {
            if error.kind() == std::io::ErrorKind::WouldBlock {
                TrainError::RunBusy {
                    path: self.root.clone(),
                    pid: previous,
                }
            } else {
                TrainError::io(&path)(error)
            }
        })?;
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .map_err(TrainError::io(&path))?;
        Ok(RunLock {
            file,
            stale_pid: previous,
        })
    }

    fn check_is_directory(&self) -> Result<(), TrainError> {
        if self.root.exists() && !self.root.is_dir() {
            return Err(TrainError::Invalid {
                field: "run directory".into(),
                message: format!("{} exists and is not a directory", self.root.display()),
            });
        }
        Ok(())
    }

    /// Whether the folder exists and holds anything besides its lock file and the temporary
    /// of an atomic write a killed process left (`.config.toml.tmp`: see `write_atomic`).
    pub fn is_occupied(&self) -> Result<bool, TrainError> {
        let leftover = |name: &std::ffi::OsStr| {
            let name = name.to_string_lossy();
            name == LOCK_FILE || crate::is_temporary(&name)
        };
        Ok(self.root.exists()
            && fs::read_dir(&self.root)
                .map_err(TrainError::io(&self.root))?
                .any(|entry| entry.is_ok_and(|entry| !leftover(&entry.file_name()))))
    }

    /// Checks, without touching anything, that a new run may be written here in `mode`.
    pub fn check_new(&self, mode: RunMode) -> Result<(), TrainError> {
        self.check_is_directory()?;
        let occupied = self.is_occupied()?;
        match mode {
            _ if !occupied => Ok(()),
            RunMode::New | RunMode::Resume => Err(TrainError::RunExists {
                path: self.root.clone(),
            }),
            RunMode::Overwrite if !self.is_run() => Err(TrainError::Invalid {
                field: "run directory".into(),
                message: format!(
                    "{} is not empty and holds no pretext run (no config.toml); refusing to \
                     delete it (only a pretext run is ever replaced)",
                    self.root.display()
                ),
            }),
            RunMode::Overwrite => Ok(()),
        }
    }

    /// Prepares the folder for a new run according to `mode` (New or Overwrite): checks it,
    /// removes an earlier run when overwriting (all but the lock file), and creates it.
    pub fn prepare_new(&self, mode: RunMode) -> Result<(), TrainError> {
        self.check_new(mode)?;
        if mode == RunMode::Overwrite && self.is_run() {
            for entry in fs::read_dir(&self.root).map_err(TrainError::io(&self.root))? {
                let path = entry.map_err(TrainError::io(&self.root))?.path();
                if path.file_name().is_some_and(|name| name == LOCK_FILE) {
                    continue;
                }
                let removed = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.map_err(TrainError::io(&path))?;
            }
        }
        fs::create_dir_all(&self.root).map_err(TrainError::io(&self.root))
    }

    /// Writes config.toml atomically (temp file, fsync, rename).
    pub fn write_config(&self, config: &PretrainConfig) -> Result<(), TrainError> {
        let text = format!(
            "# Resolved pretext config: every option with the value this run used.\n{}",
            config.to_toml()
        );
        crate::write_atomic(&self.config_path(), text)
    }

    /// Writes what later commands need to read the data as pretraining did: the trained
    /// tokenizer (text) and the training split's column statistics (tables,
    /// `table-stats.json`).
    pub fn write_data_files(
        &self,
        tokenizer: Option<&pretext_data::text::TextTokenizer>,
        train: &pretext_data::Samples,
    ) -> Result<(), TrainError> {
        if let Some(tokenizer) = tokenizer {
            tokenizer.save(&self.root.join(pretext_data::text::RUN_TOKENIZER))?;
        }
        if let pretext_data::Samples::Table(set) = train {
            // The statistics the numeric columns were standardized with: the training split's.
            let path = self.root.join("table-stats.json");
            let text = serde_json::to_string_pretty(&set.training_stats.to_json())
                .expect("JSON values serialize");
            crate::write_atomic(&path, text)?;
        }
        Ok(())
    }

    /// Reads the run's config.toml.
    pub fn read_config(&self) -> Result<PretrainConfig, TrainError> {
        if !self.is_run() {
            return Err(TrainError::Config {
                path: self.root.clone(),
                message: "not a pretext run directory (no config.toml); create one with `pretext pretrain --out DIR`".into(),
            });
        }
        PretrainConfig::from_file(&self.config_path())
    }
}

/// An exclusive, non-blocking `flock` on `file` (`WouldBlock` when another open file holds it).
#[cfg(unix)]
fn try_lock(file: &fs::File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor this function borrows; no memory is involved.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere there is no advisory lock to take; the lock file still records the PID.
#[cfg(not(unix))]
fn try_lock(_: &fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_a_dropped_one_is_free_again() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(&dir.path().join("run"));
        let first = run.lock().unwrap();
        assert_eq!(first.stale_pid, None);
        let pid = std::process::id();
        assert_eq!(
            fs::read_to_string(run.root.join(LOCK_FILE)).unwrap(),
            pid.to_string()
        );
        let error = run.lock().unwrap_err().to_string();
        assert!(error.contains(&format!("PID {pid}")), "{error}");
        assert!(error.contains("run"), "{error}");
        // The lock file alone does not make the folder a used one.
        run.check_new(RunMode::New).unwrap();
        drop(first);
        assert_eq!(fs::read_to_string(run.root.join(LOCK_FILE)).unwrap(), "");
        let again = run.lock().unwrap();
        assert_eq!(again.stale_pid, None);
        drop(again);
        // A killed holder leaves its PID: the next lock reports it as stale.
        fs::write(run.root.join(LOCK_FILE), "4242").unwrap();
        assert_eq!(run.lock().unwrap().stale_pid, Some(4242));
    }

    #[test]
    fn overwriting_keeps_the_lock_file_and_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(&dir.path().join("run"));
        let _lock = run.lock().unwrap();
        fs::write(run.config_path(), "seed = 0\n").unwrap();
        fs::create_dir_all(run.checkpoints_dir().join("step-1")).unwrap();
        assert!(matches!(
            run.check_new(RunMode::New),
            Err(TrainError::RunExists { .. })
        ));
        run.prepare_new(RunMode::Overwrite).unwrap();
        let left: Vec<_> = fs::read_dir(&run.root)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left, [LOCK_FILE]);
    }

    /// A process killed while writing config.toml leaves only its lock and the temporary:
    /// the folder takes a new run as an empty one does.
    #[test]
    fn a_kill_while_config_toml_is_written_leaves_a_folder_a_new_run_takes() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(&dir.path().join("run"));
        drop(run.lock().unwrap());
        fs::write(run.root.join(".config.toml.tmp"), "seed = ").unwrap();
        assert!(!run.is_occupied().unwrap());
        run.check_new(RunMode::New).unwrap();
        run.prepare_new(RunMode::Overwrite).unwrap();
        run.write_config(&PretrainConfig::default()).unwrap();
        assert!(run.is_run());
        assert!(!run.root.join(".config.toml.tmp").exists());
        // Anything else still makes it an occupied folder, not pretext's to delete.
        let other = RunDir::new(&dir.path().join("other"));
        fs::create_dir_all(&other.root).unwrap();
        fs::write(other.root.join("notes.txt"), "mine").unwrap();
        assert!(other.check_new(RunMode::Overwrite).is_err());
    }
}

//! metrics.jsonl: one JSON object per logged step, appended and flushed as the run goes.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::TrainError;

/// The append-only metrics log of a run.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
}

impl MetricsLog {
    /// Opens `path` for appending. On resume, lines for steps after `keep_through` (logged
    /// after the checkpoint being resumed, so about to be logged again) are dropped first.
    pub fn open(path: &Path, keep_through: Option<u64>) -> Result<MetricsLog, TrainError> {
        if let (Some(limit), true) = (keep_through, path.exists()) {
            let reader = BufReader::new(File::open(path).map_err(TrainError::io(path))?);
            let mut kept = String::new();
            for line in reader.lines() {
                let line = line.map_err(TrainError::io(path))?;
                let step = serde_json::from_str::<Value>(&line)
                    .ok()
                    .and_then(|value| value.get("step").and_then(Value::as_u64));
                if matches!(step, Some(step) if step <= limit) {
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
            crate::write_atomic(path, kept)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(TrainError::io(path))?;
        Ok(MetricsLog {
            path: path.into(),
            file,
        })
    }

    /// Appends one record. A failed write (a full disk) is an error that stops the run; a
    /// line it left half-written is dropped when the run resumes.
    pub fn write(&mut self, record: &Map<String, Value>) -> Result<(), TrainError> {
        let mut line = serde_json::to_string(record).expect("JSON maps always serialize");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.flush())
            .map_err(|error| TrainError::MetricsWrite {
                path: self.path.clone(),
                error,
            })
    }
}

/// Reads every record of a metrics.jsonl file (lines that do not parse are skipped).
pub fn read_metrics(path: &Path) -> Result<Vec<Map<String, Value>>, TrainError> {
    let text = std::fs::read_to_string(path).map_err(TrainError::io(path))?;
    Ok(text
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(step: u64) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert("step".into(), step.into());
        record
    }

    /// /dev/full fails every write with ENOSPC, as a full disk does.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_is_an_error_naming_the_log_and_saying_the_checkpoints_are_intact() {
        let mut log = MetricsLog::open(Path::new("/dev/full"), None).unwrap();
        let error = log.write(&record(1)).unwrap_err().to_string();
        for needle in [
            "/dev/full",
            "No space left",
            "checkpoints already written are intact",
        ] {
            assert!(error.contains(needle), "{needle}: {error}");
        }
    }

    #[test]
    fn a_resume_drops_later_steps_and_a_half_written_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        std::fs::write(&path, "{\"step\":10}\n{\"step\":20}\n{\"step\":30}\n{\"st").unwrap();
        let mut log = MetricsLog::open(&path, Some(20)).unwrap();
        log.write(&record(21)).unwrap();
        let steps: Vec<u64> = read_metrics(&path)
            .unwrap()
            .iter()
            .map(|record| record["step"].as_u64().unwrap())
            .collect();
        assert_eq!(steps, [10, 20, 21]);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}

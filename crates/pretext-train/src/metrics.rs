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
            let temporary = path.with_extension("jsonl.tmp");
            std::fs::write(&temporary, kept).map_err(TrainError::io(&temporary))?;
            std::fs::rename(&temporary, path).map_err(TrainError::io(path))?;
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

    /// Appends one record.
    pub fn write(&mut self, record: &Map<String, Value>) -> Result<(), TrainError> {
        let mut line = serde_json::to_string(record).expect("JSON maps always serialize");
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .map_err(TrainError::io(&self.path))?;
        self.file.flush().map_err(TrainError::io(&self.path))
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

//! What goes wrong reading, loading or exporting an image checkpoint.

use std::path::PathBuf;

/// An image checkpoint that cannot be read or used, or an encoder that cannot be exported;
/// every message about a folder names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageCheckpointError {
    /// A file of the folder is missing or unreadable, or does not hold what the model needs.
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// The encoder has no timm counterpart.
    #[error("{0}")]
    Export(String),
}

impl ImageCheckpointError {
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ImageCheckpointError::File {
            path: path.into(),
            message: message.into(),
        }
    }
}

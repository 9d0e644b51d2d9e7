//! One step's inputs as plain host data, built on a data worker thread by a
//! [`crate::ViewRecipe`] and copied to the device by the step loop.

/// Host data of one view or target tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    I64(Vec<i64>),
    /// Masks (wav2vec 2.0's masked frames).
    Bool(Vec<bool>),
}

/// One tensor of a step, built on a worker thread.
#[derive(Clone, Debug, PartialEq)]
pub struct HostView {
    pub data: HostData,
    pub shape: Vec<i64>,
}

impl HostView {
    /// The float values (image views).
    pub fn floats(&self) -> &[f32] {
        match &self.data {
            HostData::F32(values) => values,
            HostData::I64(_) => panic!("an integer view has no floats"),
            HostData::Bool(_) => panic!("a mask view has no floats"),
        }
    }
}

/// One step's views, ready to be copied to the device: images `[B, C, S, S]` (floats),
/// token ids `[B, T]`, packed table rows `[B, 2W]` or waveforms `[B, L]` and their frame
/// masks `[B, T]`; `targets` where the pretext task has labels (jigsaw's permutation index
/// `[B]`, masked-token labels `[B, T]`, the corruption mask `[B, W]`).
#[derive(Debug)]
pub struct HostBatch {
    pub step: u64,
    pub epoch: u64,
    pub indices: Vec<usize>,
    pub views: Vec<HostView>,
    pub targets: Option<HostView>,
}

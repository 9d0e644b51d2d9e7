//! One step's inputs as plain host data, built on a data worker thread by a
//! [`crate::ViewRecipe`] and copied to the device by the step loop.

use crate::view_params::ViewParams;

/// Host data of one view or target tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    I64(Vec<i64>),
    /// Masks (wav2vec 2.0's masked frames).
    Bool(Vec<bool>),
    /// Image bytes, for views made on the device.
    U8(Vec<u8>),
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
            HostData::U8(_) => panic!("image bytes have no floats"),
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
    /// Image views left for the device to make (`data.augment = "device"`); `views` is
    /// then empty.
    pub planned: Option<PlannedViews>,
}

/// A batch's images as bytes and the drawn parameters of each of their views: the device
/// makes the views with batched tensor ops, from the same draws the host path would apply.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedViews {
    /// `[B, C, H, W]` bytes.
    pub images: HostView,
    /// One entry per view, in the recipe's view order.
    pub views: Vec<PlannedView>,
    /// Rotation prediction: the one planned view, then the same turned by 90°, 180° and
    /// 270° (four views).
    pub rotations: bool,
}

/// One view of every image of a batch: its side and each image's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedView {
    pub size: usize,
    pub params: Vec<ViewParams>,
}

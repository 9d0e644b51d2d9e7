//! Views on the device: a step's [`HostBatch`] — built on a data worker thread by a
//! [`ViewRecipe`] (pretext-augment, where the recipes and their seeded draws live) — copied
//! into the tensors a method's loss reads ([`StepInputs`]).

use tch::{Device, Tensor};

use crate::device_views::make_views;

pub use pretext_augment::{FrameMasking, HostBatch, HostData, HostView, ViewRecipe};

/// The device tensors of one step.
#[derive(Debug)]
pub struct StepInputs {
    /// `[B, C, S, S]` images, `[B, T]` token ids, `[B, 2W]` packed table rows, or `[B, L]`
    /// waveforms then their `[B, T]` frame masks, per view.
    pub views: Vec<Tensor>,
    /// Pretext labels, when the recipe makes them.
    pub targets: Option<Tensor>,
}

impl StepInputs {
    /// The pretext targets, which the `recipe` named (jigsaw, corruption, masked-token)
    /// makes for every batch.
    pub fn targets_of(&self, recipe: &str) -> &Tensor {
        self.targets
            .as_ref()
            .unwrap_or_else(|| panic!("the {recipe} recipe makes targets"))
    }
}

/// Copies host views to a device: `batch.to_inputs(device)`.
pub trait ToDevice {
    /// The views and targets as tensors on `device`.
    fn to_inputs(&self, device: Device) -> StepInputs;
}

impl ToDevice for HostBatch {
    fn to_inputs(&self, device: Device) -> StepInputs {
        StepInputs {
            views: match &self.planned {
                Some(planned) => make_views(planned, device),
                None => self
                    .views
                    .iter()
                    .map(|view| view_to_device(view, device))
                    .collect(),
            },
            targets: self
                .targets
                .as_ref()
                .map(|targets| view_to_device(targets, device)),
        }
    }
}

/// One host view as a tensor of its shape on `device` (float, int64, bool or bytes).
fn view_to_device(view: &HostView, device: Device) -> Tensor {
    let tensor = match &view.data {
        HostData::F32(values) => Tensor::from_slice(values),
        HostData::I64(values) => Tensor::from_slice(values),
        HostData::Bool(values) => Tensor::from_slice(values),
        HostData::U8(values) => Tensor::from_slice(values),
    };
    host_to_device(tensor.view(view.shape.as_slice()), device)
}

/// `tensor` (on the host) on `device`. To a GPU it goes through pinned (page-locked) memory
/// and a non-blocking copy, so the host does not wait for the transfer: the copy is queued
/// on the current stream ahead of the kernels that read it, and libtorch's pinned-memory
/// allocator keeps the host buffer until the copy has run. If pinning fails (no pinned
/// memory left), a plain copy.
pub fn host_to_device(tensor: Tensor, device: Device) -> Tensor {
    match device {
        Device::Cuda(index) => {
            pretext_sys::to_cuda_pinned(&tensor, index).unwrap_or_else(|_| tensor.to_device(device))
        }
        _ => tensor.to_device(device),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretext_augment::{MaskingConfig, SpanMaskConfig, ViewConfig};
    use pretext_data::{AudioSet, ImageSet, Samples, TokenSet, Vocabulary};
    use std::sync::Arc;

    #[test]
    fn images_tokens_and_masks_reach_the_device_with_their_shapes_and_kinds() {
        let pixels: Vec<u8> = (0..3 * 28 * 28).map(|i| (i * 7 % 251) as u8).collect();
        let images = Samples::Images(ImageSet::in_memory(pixels, 3, 1, 28, 28));
        let recipe = ViewRecipe::MultiCrop {
            global: ViewConfig::default(),
            local: ViewConfig::default(),
            local_crops: 3,
            local_size: 12,
        };
        let inputs = recipe
            .build(&images, &[0, 2], 1, 0, 0)
            .to_inputs(Device::Cpu);
        assert_eq!(inputs.views[4].size(), vec![2, 1, 12, 12]);
        assert_eq!(inputs.views[0].kind(), tch::Kind::Float);
        assert!(inputs.targets.is_none());

        let vocabulary = Vocabulary {
            size: 100,
            pad_id: 0,
            mask_id: Some(4),
            special_ids: vec![0, 1, 2, 3, 4],
        };
        let sequences: Vec<Vec<u32>> = (0..4).map(|i| (5..45).map(|t| t + i).collect()).collect();
        let tokens = Samples::Tokens(TokenSet::from_sequences(
            &sequences,
            48,
            &vocabulary,
            None,
            vec![],
        ));
        let inputs = ViewRecipe::MaskedTokens(MaskingConfig::default())
            .build(&tokens, &[0, 3], 1, 0, 0)
            .to_inputs(Device::Cpu);
        assert_eq!(inputs.views[0].kind(), tch::Kind::Int64);
        assert_eq!(inputs.targets.unwrap().size(), vec![2, 48]);

        let clips = Samples::Audio(AudioSet {
            samples: Arc::new(pretext_data::store::Store::copied(
                2 * 400,
                u64::MAX,
                |_| (),
            )),
            memory_limit_bytes: u64::MAX,
            len: 2,
            clip_samples: 400,
            sample_rate: 16_000,
            labels: None,
            class_names: Vec::new(),
            files: vec![Default::default(); 2],
        });
        let batch = ViewRecipe::Waveforms(FrameMasking::new(SpanMaskConfig::default()))
            .with_frames(30)
            .build(&clips, &[1, 0], 1, 0, 0);
        let inputs = batch.to_inputs(Device::Cpu);
        assert_eq!(inputs.views[0].size(), vec![2, 400]);
        assert_eq!(inputs.views[1].size(), vec![2, 30]);
        assert_eq!(inputs.views[1].kind(), tch::Kind::Bool);
        let HostData::Bool(host) = &batch.views[1].data else {
            panic!("a mask view")
        };
        let device: Vec<bool> = Vec::try_from(inputs.views[1].view(-1)).unwrap();
        assert_eq!(&device, host);
    }
}

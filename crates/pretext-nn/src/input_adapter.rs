//! What a network trained elsewhere expects of its input, made from what pretext's image
//! pipeline gives: pixels normalized as `(x − 0.5) / 0.5` in the data's channels and size
//! (1 channel, 28 px for Fashion-MNIST), where an ImageNet model reads 3 channels normalized
//! with ImageNet's mean and std at 224 px.
//!
//! The [`InputAdapter`] is the first thing the encoder computes, so pretraining, probes,
//! fine-tuning, `embed` and exports all see the same network; it has no parameters, and its
//! settings (`backbone.input`, filled from the pretrained folder when a run starts) are saved
//! in the run's config, so a checkpoint reloads identically without that folder. In order:
//!
//! 1. one-channel images are repeated to the network's channels;
//! 2. pretext's normalization is undone and the network's applied, as one per-channel affine
//!    map: `((x · 0.5 + 0.5) − mean) / std`;
//! 3. views are resized bilinearly (antialiased when shrinking, as torchvision's `Resize`) by
//!    `resolution / data side`: full-size views to exactly `resolution`, smaller views (DINO's
//!    local crops) in proportion, whose ViT positions are then interpolated.
//!
//! With `backbone.input` at its defaults (empty `mean`, `resolution` 0) it is the identity and
//! the network reads pretext's normalization, as every run before it did.

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::backbone::InputSpec;

/// The mean pretext's image pipeline subtracts from pixels in [0, 1]
/// (`pretext_augment::INPUT_MEAN`; pretext-train's tests check that they agree).
pub const PIPELINE_MEAN: f64 = 0.5;
/// What pretext's image pipeline divides by after subtracting the mean
/// (`pretext_augment::INPUT_STD`).
pub const PIPELINE_STD: f64 = 0.5;

/// ImageNet's per-channel mean (RGB), what torchvision and timm models expect by default.
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// ImageNet's per-channel standard deviation (RGB).
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// `[backbone.input]`: the pixels the network expects, when not pretext's own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputAdapterConfig {
    /// Per-channel mean the network subtracts from pixels in [0, 1] (ImageNet:
    /// [0.485, 0.456, 0.406]); its length is the network's channels, and one-channel images
    /// are repeated to fill them. Empty: the network reads pretext's normalization in the
    /// data's channels. Filled from `backbone.pretrained`'s config when left empty.
    pub mean: Vec<f64>,
    /// Per-channel standard deviation the network divides by (ImageNet:
    /// [0.229, 0.224, 0.225]); as long as `mean`.
    pub std: Vec<f64>,
    /// Side in pixels of the images the network is made for (224 for ImageNet models):
    /// full-size views are resized to it, smaller views in proportion. 0: the data's size.
    /// Filled from `backbone.pretrained` when 0 (a ViT's is fixed by its position table).
    pub resolution: i64,
}

impl Default for InputAdapterConfig {
    /// The identity: pretext's normalization, the data's channels and size.
    fn default() -> Self {
        InputAdapterConfig {
            mean: Vec::new(),
            std: Vec::new(),
            resolution: 0,
        }
    }
}

impl InputAdapterConfig {
    /// ImageNet's mean and std at `resolution` px (what torchvision and timm models expect).
    pub fn imagenet(resolution: i64) -> InputAdapterConfig {
        InputAdapterConfig {
            mean: IMAGENET_MEAN.to_vec(),
            std: IMAGENET_STD.to_vec(),
            resolution,
        }
    }

    /// Whether the network reads anything but pretext's own normalization at the data's size.
    pub fn is_active(&self) -> bool {
        !self.mean.is_empty() || self.resolution > 0
    }

    /// Checks what would fail at build or run time; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.mean.len() != self.std.len() {
            return Err(format!(
                "mean ({} values) and std ({} values) must be as long as each other (one per \
                 channel the network reads)",
                self.mean.len(),
                self.std.len()
            ));
        }
        if let Some(std) = self.std.iter().find(|std| !std.is_finite() || **std <= 0.0) {
            return Err(format!("std values must be positive, found {std}"));
        }
        if let Some(mean) = self.mean.iter().find(|mean| !mean.is_finite()) {
            return Err(format!("mean values must be finite, found {mean}"));
        }
        if self.resolution < 0 {
            return Err(format!(
                "resolution must be 0 (the data's size) or a side in pixels, found {}",
                self.resolution
            ));
        }
        Ok(())
    }

    /// The side a view of `side` px of images of `data_size` px (0: unknown) is resized to:
    /// `resolution` for full-size views, in proportion for the others; unchanged without a
    /// resolution.
    pub fn view_side(&self, side: i64, data_size: i64) -> i64 {
        match self.resolution {
            0 => side,
            resolution if side == data_size || data_size <= 0 => resolution,
            resolution => ((side * resolution) as f64 / data_size as f64).round() as i64,
        }
    }

    /// Channels the network reads: `mean`'s length, or the data's when it is empty.
    pub fn channels(&self, data_channels: i64) -> i64 {
        match self.mean.len() {
            0 => data_channels,
            n => n as i64,
        }
    }
}

/// The built adapter: from pretext's pixels to the network's, inside the encoder.
#[derive(Debug)]
pub struct InputAdapter {
    config: InputAdapterConfig,
    /// Channels and side of the data's images (side 0: unknown).
    data_channels: i64,
    data_size: i64,
    /// `(scale, shift)` `[1, C, 1, 1]` of the one affine map from pretext's normalization to
    /// the network's; None without `mean`.
    affine: Option<(Tensor, Tensor)>,
}

impl InputAdapter {
    /// The adapter of `config` for the images `data` describes, its constants on `device`.
    pub fn new(config: &InputAdapterConfig, data: &InputSpec, device: Device) -> InputAdapter {
        let affine = (!config.mean.is_empty()).then(|| {
            // ((x · s_p + m_p) − mean) / std = x · (s_p / std) + (m_p − mean) / std
            let scale: Vec<f32> = config
                .std
                .iter()
                .map(|std| (PIPELINE_STD / std) as f32)
                .collect();
            let shift: Vec<f32> = config
                .mean
                .iter()
                .zip(&config.std)
                .map(|(mean, std)| ((PIPELINE_MEAN - mean) / std) as f32)
                .collect();
            let column = |values: &[f32]| {
                Tensor::from_slice(values)
                    .view([1, -1, 1, 1])
                    .to_device(device)
            };
            (column(&scale), column(&shift))
        });
        InputAdapter {
            config: config.clone(),
            data_channels: data.channels,
            data_size: data.image_size,
            affine,
        }
    }

    /// The identity for `channels`-channel images of `image_size` px (0: unknown).
    pub fn identity(channels: i64, image_size: i64) -> InputAdapter {
        InputAdapter::new(
            &InputAdapterConfig::default(),
            &InputSpec::sized_image(channels, image_size),
            Device::Cpu,
        )
    }

    /// The settings it was built from.
    pub fn config(&self) -> &InputAdapterConfig {
        &self.config
    }

    /// Channels of the images the network reads.
    pub fn channels(&self) -> i64 {
        self.config.channels(self.data_channels)
    }

    /// Side of the full-size images the network reads (0: unknown).
    pub fn image_size(&self) -> i64 {
        match self.config.resolution {
            0 => self.data_size,
            resolution => resolution,
        }
    }

    /// The side a view of `side` px is resized to ([`InputAdapterConfig::view_side`]).
    pub fn side_for(&self, side: i64) -> i64 {
        self.config.view_side(side, self.data_size)
    }

    /// The mean and std (per channel the network reads) it normalizes pixels in [0, 1] with:
    /// the configured ones, or pretext's own for the identity.
    pub fn normalization(&self) -> (Vec<f64>, Vec<f64>) {
        match self.config.mean.is_empty() {
            false => (self.config.mean.clone(), self.config.std.clone()),
            true => {
                let channels = self.data_channels.max(1) as usize;
                (vec![PIPELINE_MEAN; channels], vec![PIPELINE_STD; channels])
            }
        }
    }

    /// Images `[B, C, H, W]` in pretext's normalization → the network's `[B, C', H', W']`.
    pub fn adapt(&self, images: &Tensor) -> Tensor {
        if !self.config.is_active() {
            return images.shallow_clone();
        }
        let (_, channels, height, width) = images.size4().expect("images [B, C, H, W]");
        let mut x = images.shallow_clone();
        let wanted = self.channels();
        if channels != wanted {
            assert_eq!(
                channels, 1,
                "checked when the run starts: images have 1 channel or the network's {wanted}"
            );
            // -1 keeps the batch size free in a traced export.
            x = x.expand([-1, wanted, -1, -1], false);
        }
        if let Some((scale, shift)) = &self.affine {
            x = x.to_kind(Kind::Float) * scale + shift; // [B, C', H, W]
        }
        let size = [self.side_for(height), self.side_for(width)];
        if size[0] > height || size[1] > width {
            x = x.upsample_bilinear2d(size, false, None, None);
        } else if size != [height, width] {
            x = x.internal_upsample_bilinear2d_aa(size, false, None, None);
        }
        x // [B, C', H', W']
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixels() -> Tensor {
        Tensor::rand([2, 1, 8, 8], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn the_default_is_the_identity() {
        let adapter = InputAdapter::identity(1, 8);
        let x = pixels();
        assert!(adapter.adapt(&x).equal(&x));
        assert_eq!((adapter.channels(), adapter.image_size()), (1, 8));
        assert_eq!(adapter.normalization(), (vec![0.5], vec![0.5]));
    }

    /// One grey pixel value p in [0, 1], given as (p − 0.5) / 0.5, becomes (p − mean_c) /
    /// std_c in each of the three channels.
    #[test]
    fn grey_pixels_become_three_channels_in_the_networks_normalization() {
        let adapter = InputAdapter::new(
            &InputAdapterConfig::imagenet(0),
            &InputSpec::sized_image(1, 8),
            Device::Cpu,
        );
        let p = pixels();
        let adapted = adapter.adapt(&((&p - 0.5) / 0.5));
        assert_eq!(adapted.size(), vec![2, 3, 8, 8]);
        for channel in 0..3 {
            let expected = (&p.select(1, 0) - IMAGENET_MEAN[channel as usize])
                / IMAGENET_STD[channel as usize];
            let gap = (adapted.select(1, channel) - expected)
                .abs()
                .max()
                .double_value(&[]);
            assert!(gap < 1e-6, "channel {channel}: {gap}");
        }
    }

    /// Full-size views go to the resolution; a half-size view to half of it; bilinear
    /// upsampling without corner alignment, as `F.interpolate(mode="bilinear")`.
    #[test]
    fn views_are_resized_in_proportion_to_the_resolution() {
        let config = InputAdapterConfig {
            resolution: 32,
            ..InputAdapterConfig::default()
        };
        let adapter = InputAdapter::new(&config, &InputSpec::sized_image(1, 8), Device::Cpu);
        assert_eq!((adapter.side_for(8), adapter.side_for(4)), (32, 16));
        let x = pixels();
        assert_eq!(adapter.adapt(&x).size(), vec![2, 1, 32, 32]);
        assert_eq!(
            adapter.adapt(&x.narrow(2, 0, 4).narrow(3, 0, 4)).size(),
            vec![2, 1, 16, 16]
        );
        let constant = Tensor::full([1, 1, 8, 8], 0.25, (Kind::Float, Device::Cpu));
        assert!(adapter.adapt(&constant).allclose(
            &Tensor::full([1, 1, 32, 32], 0.25, (Kind::Float, Device::Cpu)),
            1e-6,
            1e-6,
            false
        ));
        // Larger images are shrunk with antialiasing: a one-pixel checkerboard shrunk 3× is
        // a flat grey (plain bilinear sampling would keep every third pixel: ±1).
        let shrink = InputAdapter::new(&config, &InputSpec::sized_image(1, 96), Device::Cpu);
        let index = Tensor::arange(96, (Kind::Int64, Device::Cpu));
        let checkerboard = ((index.unsqueeze(1) + index.unsqueeze(0)).remainder(2) * 2 - 1)
            .to_kind(Kind::Float)
            .view([1, 1, 96, 96]);
        let small = shrink.adapt(&checkerboard);
        assert_eq!(small.size(), vec![1, 1, 32, 32]);
        let largest = small.abs().max().double_value(&[]);
        assert!(largest < 0.05, "{largest}");
    }

    #[test]
    fn invalid_settings_are_named() {
        let bad = |config: InputAdapterConfig| config.validate().unwrap_err();
        let lengths = bad(InputAdapterConfig {
            mean: vec![0.5; 3],
            std: vec![0.5],
            resolution: 0,
        });
        assert!(lengths.contains("as long as each other"), "{lengths}");
        let zero = bad(InputAdapterConfig {
            mean: vec![0.5],
            std: vec![0.0],
            resolution: 0,
        });
        assert!(zero.contains("positive"), "{zero}");
        let negative = bad(InputAdapterConfig {
            resolution: -1,
            ..InputAdapterConfig::default()
        });
        assert!(negative.contains("resolution"), "{negative}");
        assert!(InputAdapterConfig::imagenet(224).validate().is_ok());
    }
}

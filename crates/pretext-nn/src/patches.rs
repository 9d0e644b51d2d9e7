//! Image patches and random patch masking, as masked autoencoders use them (He et al.,
//! "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022, §3):
//!
//! - [`patchify`] / [`unpatchify`]: images `[B, C, S, S]` ↔ patches `[B, N, p²·C]` in row-major
//!   patch order, each patch's pixels row by row with the channels innermost (MAE's layout);
//! - [`random_masking`]: per sample, keep a random `1 − ratio` of the patches — the ones with
//!   the smallest noise of an argsort — and remember how to put them back;
//! - [`masked_patch_loss`]: mean squared error over the masked patches only, against targets
//!   normalized per patch (MAE's `norm_pix_loss`) or raw.

use tch::{Kind, Tensor};

/// Images `[B, C, S, S]` → patches `[B, (S/p)², p·p·C]`. `S` must be a multiple of `p`.
pub fn patchify(images: &Tensor, p: i64) -> Tensor {
    let (b, c, h, w) = images.size4().expect("images are [B, C, H, W]");
    assert!(
        h == w && h % p == 0,
        "patchify needs square images whose side ({h}×{w}) is a multiple of the patch ({p})"
    );
    let g = h / p;
    images
        .reshape([b, c, g, p, g, p])
        .permute([0, 2, 4, 3, 5, 1]) // [B, g_row, g_col, p_row, p_col, C]
        .reshape([b, g * g, p * p * c])
}

/// Patches `[B, N, p·p·C]` → images `[B, C, S, S]` with `S = √N · p` (inverse of [`patchify`]).
pub fn unpatchify(patches: &Tensor, p: i64, channels: i64) -> Tensor {
    let (b, n, _) = patches.size3().expect("patches are [B, N, p·p·C]");
    let g = (n as f64).sqrt().round() as i64;
    assert_eq!(
        g * g,
        n,
        "unpatchify needs a square number of patches, found {n}"
    );
    patches
        .reshape([b, g, g, p, p, channels])
        .permute([0, 5, 1, 3, 2, 4]) // [B, C, g_row, p_row, g_col, p_col]
        .reshape([b, channels, g * p, g * p])
}

/// Which patches a masked autoencoder sees.
#[derive(Debug)]
pub struct RandomMask {
    /// Indices of the kept (visible) patches, `[B, K]`, in order of increasing noise.
    pub keep: Tensor,
    /// Where each patch went in the shuffled order, `[B, N]`: gathering the shuffled sequence
    /// (kept patches first, then mask tokens) with it restores the original order.
    pub restore: Tensor,
    /// 1 for masked patches, 0 for kept ones, `[B, N]` (float), in the original order.
    pub mask: Tensor,
}

/// Draws a mask over `patches` patches for each of `batch` samples that hides
/// `round(ratio · N)` of them (at least one stays visible): uniform noise, argsorted; the
/// patches with the smallest noise are kept. Uses libtorch's generator (seeded per step by
/// the training loop).
pub fn random_masking(batch: i64, patches: i64, ratio: f64, device: tch::Device) -> RandomMask {
    let masked = ((patches as f64 * ratio).round() as i64).clamp(0, patches - 1);
    let keep_count = patches - masked;
    let noise = Tensor::rand([batch, patches], (Kind::Float, device));
    let shuffle = noise.argsort(1, false); // [B, N]: ascending noise
    let restore = shuffle.argsort(1, false);
    let keep = shuffle.narrow(1, 0, keep_count);
    let mask = Tensor::ones([batch, patches], (Kind::Float, device));
    let _ = mask.narrow(1, 0, keep_count).fill_(0.0);
    let mask = mask.gather(1, &restore, false);
    RandomMask {
        keep,
        restore,
        mask,
    }
}

/// The rows of `tokens` `[B, N, D]` at `indices` `[B, K]`: `[B, K, D]`.
pub fn gather_tokens(tokens: &Tensor, indices: &Tensor) -> Tensor {
    let d = tokens.size()[2];
    tokens.gather(1, &indices.unsqueeze(-1).expand([-1, -1, d], false), false)
}

/// MAE's reconstruction loss: per-patch mean squared error between `predicted` and `target`
/// patches `[B, N, P]`, averaged over the patches where `mask` `[B, N]` is 1 only. With
/// `normalize`, each target patch is first standardized with its own mean and variance
/// (`(x − μ) / √(σ² + 1e-6)`, σ² unbiased as in MAE).
pub fn masked_patch_loss(
    predicted: &Tensor,
    target: &Tensor,
    mask: &Tensor,
    normalize: bool,
) -> Tensor {
    let target = if normalize {
        let mean = target.mean_dim(&[-1i64][..], true, Kind::Float);
        let variance = target.var_dim(&[-1i64][..], true, true);
        (target - mean) / (variance + 1e-6).sqrt()
    } else {
        target.shallow_clone()
    };
    let per_patch = (predicted - target)
        .square()
        .mean_dim(&[-1i64][..], false, Kind::Float); // [B, N]
    (per_patch * mask).sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0)
}

/// [`masked_patch_loss`] of the model-free guess that every hidden patch is flat: all zeros
/// for normalized targets (a standardized patch has mean 0), else each image's mean visible
/// pixel. MAE's loss should fall well below it; a loss near it means the decoder is not using
/// the visible patches.
pub fn flat_patch_loss(target: &Tensor, mask: &Tensor, normalize: bool) -> Tensor {
    let guess = if normalize {
        target.zeros_like()
    } else {
        let visible = mask.ones_like().g_sub(mask).unsqueeze(-1); // [B, N, 1]
        let values = target.size()[2] as f64;
        let sum = (target * &visible).sum_dim_intlist(&[1i64, 2][..], true, Kind::Float);
        let count = visible.sum_dim_intlist(&[1i64, 2][..], true, Kind::Float) * values;
        (sum / count.clamp_min(1.0)).expand_as(target)
    };
    masked_patch_loss(&guess, target, mask, normalize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn patchify_and_unpatchify_are_inverse_and_follow_maes_layout() {
        let images = Tensor::randn([2, 3, 8, 8], (Kind::Float, Device::Cpu));
        let patches = patchify(&images, 4);
        assert_eq!(patches.size(), vec![2, 4, 48]);
        assert!(unpatchify(&patches, 4, 3).equal(&images));
        // Patch 1 is the top-right 4×4 block; its first entries are pixel (0, 4) in every
        // channel, then pixel (0, 5).
        let expected: Vec<f32> = (0..2)
            .flat_map(|col| (0..3).map(move |c| (c, 4 + col)))
            .map(|(c, x)| images.double_value(&[0, c, 0, x]) as f32)
            .collect();
        let got = Vec::<f32>::try_from(patches.get(0).get(1).narrow(0, 0, 6)).unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn masking_hides_exactly_the_ratio_and_restore_undoes_the_shuffle() {
        tch::manual_seed(3);
        let (batch, n) = (5, 49);
        let draw = random_masking(batch, n, 0.75, Device::Cpu);
        // round(0.75 · 49) = 37 masked, 12 kept, in every sample.
        assert_eq!(draw.keep.size(), vec![batch, 12]);
        let masked_per_sample =
            Vec::<f32>::try_from(draw.mask.sum_dim_intlist(&[1i64][..], false, Kind::Float))
                .unwrap();
        assert!(masked_per_sample.iter().all(|&m| m == 37.0));
        // The kept indices are exactly where the mask is 0.
        let kept_mask = draw.mask.gather(1, &draw.keep, false);
        assert_eq!(kept_mask.sum(Kind::Float).double_value(&[]), 0.0);
        // Shuffle a sequence of position ids the way the encoder sees it (kept first, then the
        // rest), gather with `restore`: the original order comes back.
        let positions = Tensor::arange(n, (Kind::Int64, Device::Cpu))
            .unsqueeze(0)
            .expand([batch, n], false);
        let shuffled = positions.gather(1, &draw.restore.argsort(1, false), false);
        assert!(shuffled.narrow(1, 0, 12).equal(&draw.keep));
        assert!(shuffled.gather(1, &draw.restore, false).equal(&positions));
        // Different samples get different masks.
        assert!(!draw.mask.get(0).equal(&draw.mask.get(1)));
    }

    /// Hand-computed: two patches of two pixels; only patch 1 is masked. Patch 0's error does
    /// not count. Raw: ((1−0)² + (3−1)²) / 2 = 2.5. Normalized: the target [0, 1] has mean 0.5
    /// and unbiased variance 0.5, so it becomes ±0.5/√(0.5+1e-6) ≈ [−0.70711, 0.70711], and the
    /// error of the prediction [1, 3] is ((1+0.70711)² + (3−0.70711)²) / 2 ≈ 4.08579.
    #[test]
    fn loss_counts_masked_patches_only() {
        let predicted = Tensor::from_slice(&[9.0f32, 9.0, 1.0, 3.0]).view([1, 2, 2]);
        let target = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 1.0]).view([1, 2, 2]);
        let mask = Tensor::from_slice(&[0.0f32, 1.0]).view([1, 2]);
        let raw = masked_patch_loss(&predicted, &target, &mask, false).double_value(&[]);
        assert!((raw - 2.5).abs() < 1e-6, "{raw}");
        let normalized = masked_patch_loss(&predicted, &target, &mask, true).double_value(&[]);
        let s = 0.5 / (0.5f64 + 1e-6).sqrt();
        let expected = ((1.0 + s).powi(2) + (3.0 - s).powi(2)) / 2.0;
        assert!(
            (normalized - expected).abs() < 1e-5,
            "{normalized} vs {expected}"
        );
        assert!((expected - 4.08579).abs() < 1e-4);
    }

    /// Hand-computed, with the patches of `loss_counts_masked_patches_only`: raw, the visible
    /// patch [0, 0] has mean 0, so the guess for the hidden [0, 1] costs (0² + 1²) / 2 = 0.5;
    /// normalized, zeros against [−0.70711, 0.70711] cost 0.25 / (0.5 + 1e-6) ≈ 0.5.
    #[test]
    fn flat_guess_uses_the_visible_mean_or_zero() {
        let target = Tensor::from_slice(&[0.0f32, 0.0, 0.0, 1.0]).view([1, 2, 2]);
        let mask = Tensor::from_slice(&[0.0f32, 1.0]).view([1, 2]);
        let raw = flat_patch_loss(&target, &mask, false).double_value(&[]);
        assert!((raw - 0.5).abs() < 1e-6, "{raw}");
        let normalized = flat_patch_loss(&target, &mask, true).double_value(&[]);
        assert!(
            (normalized - 0.25 / (0.5 + 1e-6)).abs() < 1e-6,
            "{normalized}"
        );
        // A brighter visible patch moves the raw guess: mean 2 → ((2−0)² + (2−1)²) / 2 = 2.5.
        let bright = Tensor::from_slice(&[2.0f32, 2.0, 0.0, 1.0]).view([1, 2, 2]);
        let raw = flat_patch_loss(&bright, &mask, false).double_value(&[]);
        assert!((raw - 2.5).abs() < 1e-6, "{raw}");
    }

    #[test]
    fn gather_tokens_picks_rows_per_sample() {
        let tokens = Tensor::arange(2 * 3 * 2, (Kind::Float, Device::Cpu)).view([2, 3, 2]);
        let picked = gather_tokens(&tokens, &Tensor::from_slice2(&[[2i64], [0]]));
        assert_eq!(
            Vec::<f32>::try_from(picked.view([-1])).unwrap(),
            vec![4.0, 5.0, 6.0, 7.0]
        );
    }
}

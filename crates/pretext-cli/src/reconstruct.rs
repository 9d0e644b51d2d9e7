//! `pretext reconstruct RUN [IMAGES...] -o out.png`: what an MAE run makes of images with
//! most of their patches hidden — one row per image: the original, the masked input (hidden
//! patches gray), and the reconstruction (predicted hidden patches, visible ones as given,
//! as in the MAE paper's figures).

use anyhow::{bail, Context};
use pretext_methods::{images_to_tensor, Mae, MethodName};
use pretext_nn::{patchify, unpatchify};
use tch::Kind;

use crate::args::ReconstructArgs;
use crate::cuda;
use crate::picture::{chosen_images, to_rgb, Grid};
use crate::probe::latest_checkpoint;
use pretext_eval::load_model;
use pretext_train::RunDir;

pub fn run(args: &ReconstructArgs) -> anyhow::Result<()> {
    let picture = &args.picture;
    let run = RunDir::new(&picture.run);
    let mut config = run.read_config()?;
    if config.method.name != MethodName::Mae {
        bail!(
            "{}: reconstruction needs a masked autoencoder run (method mae); this run is {}",
            run.root.display(),
            config.method.name.as_str()
        );
    }
    if let Some(ratio) = args.mask_ratio {
        if !(0.0..1.0).contains(&ratio) {
            bail!("--mask-ratio {ratio}: expected a share in [0, 1)");
        }
        config.method.mae.mask_ratio = ratio;
    }
    let checkpoint = latest_checkpoint(&run)?;
    let device = cuda::device(&picture.device)?;
    let (data, images) = chosen_images(picture, &run, &config)?;
    let model = load_model(&config, &checkpoint, &data.train, device)
        .with_context(|| format!("loading {}", checkpoint.dir.display()))?;
    let Some(mae) = model.method.downcast_ref::<Mae>() else {
        unreachable!("checked: the method is mae")
    };
    let indices: Vec<usize> = (0..images.len).collect();
    let inputs = images_to_tensor(&images, &indices, device);
    let patch = config.backbone.vit.patch_size;
    let channels = images.channels as i64;

    tch::manual_seed(args.seed as i64);
    let (shown, masked) = tch::no_grad(|| {
        let (predicted, mask, _) = mae.reconstruct(&inputs, false);
        let target = patchify(&inputs, patch);
        // A model trained on per-patch normalized pixels predicts each patch's shape, not
        // its brightness: give the prediction the true patch's mean and spread (as MAE's
        // own visualization does) so it can be seen.
        let predicted = if config.method.mae.normalize_targets {
            let mean = target.mean_dim(&[-1i64][..], true, Kind::Float);
            let spread = (target.var_dim(&[-1i64][..], true, true) + 1e-6).sqrt();
            predicted * spread + mean
        } else {
            predicted
        };
        let hidden = mask.unsqueeze(-1); // [B, N, 1], 1 = hidden
        let visible = 1.0 - &hidden;
        let reconstruction = &predicted * &hidden + &target * &visible;
        // Hidden patches are drawn mid-gray (0 after normalization).
        let masked = &target * &visible;
        (
            unpatchify(&reconstruction, patch, channels),
            unpatchify(&masked, patch, channels),
        )
    });

    let mut grid = Grid::new(
        images.len as u32,
        3,
        images.width as u32,
        images.height as u32,
        picture.scale,
    );
    for row in 0..images.len as i64 {
        grid.put(row as u32, 0, &to_rgb(&inputs.get(row)));
        grid.put(row as u32, 1, &to_rgb(&masked.get(row)));
        grid.put(row as u32, 2, &to_rgb(&shown.get(row)));
    }
    grid.save(&picture.output)?;
    let ratio = config.method.mae.mask_ratio;
    eprintln!(
        "wrote {}: {} images × (original, {:.0}% of the patches hidden, reconstruction)",
        picture.output.display(),
        images.len,
        ratio * 100.0
    );
    Ok(())
}

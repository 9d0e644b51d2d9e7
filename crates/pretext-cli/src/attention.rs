//! `pretext attention RUN [IMAGES...] -o attn.png`: where a ViT run's [CLS] token looks in
//! the last layer — one row per image: the image, the mean over heads, then each head's
//! attention to the patches, stretched to its own range and overlaid on the image (the
//! picture the DINO paper made familiar).

use anyhow::{bail, Context};
use pretext_methods::images_to_tensor;
use pretext_nn::BackboneKind;

use crate::args::AttentionArgs;
use crate::cuda;
use crate::picture::{chosen_images, heat_overlay, to_rgb, Grid};
use crate::probe::latest_checkpoint;
use pretext_eval::load_model;
use pretext_train::RunDir;

pub fn run(args: &AttentionArgs) -> anyhow::Result<()> {
    let picture = &args.picture;
    let run = RunDir::new(&picture.run);
    let config = run.read_config()?;
    if config.backbone.kind != BackboneKind::Vit {
        bail!(
            "{}: attention maps need a vision transformer (--backbone vit); this run's backbone \
             is {}",
            run.root.display(),
            config.backbone.kind.as_str()
        );
    }
    let checkpoint = latest_checkpoint(&run)?;
    let device = cuda::device(&picture.device)?;
    let (data, images) = chosen_images(picture, &run, &config)?;
    let model = load_model(&config, &checkpoint, &data.train, device)
        .with_context(|| format!("loading {}", checkpoint.dir.display()))?;
    let vit = model
        .method
        .encoder()
        .vit()
        .expect("checked: the backbone is a ViT");
    let indices: Vec<usize> = (0..images.len).collect();
    let inputs = images_to_tensor(&images, &indices, device);
    let grid_side = vit.grid_for(images.height as i64);
    let heads = config.backbone.vit.heads;
    // [B, heads, g, g]: what [CLS] reads from each patch.
    let maps = tch::no_grad(|| {
        vit.last_attention(&inputs)
            .select(2, 0)
            .narrow(2, 1, grid_side * grid_side)
            .view([images.len as i64, heads, grid_side, grid_side])
    });

    let mut grid = Grid::new(
        images.len as u32,
        2 + heads as u32,
        images.width as u32,
        images.height as u32,
        picture.scale,
    );
    for row in 0..images.len as i64 {
        let image = to_rgb(&inputs.get(row));
        let per_head = maps.get(row);
        grid.put(row as u32, 0, &image);
        grid.put(
            row as u32,
            1,
            &heat_overlay(
                &image,
                &per_head.mean_dim(&[0i64][..], false, tch::Kind::Float),
            ),
        );
        for head in 0..heads {
            grid.put(
                row as u32,
                2 + head as u32,
                &heat_overlay(&image, &per_head.get(head)),
            );
        }
    }
    grid.save(&picture.output)?;
    eprintln!(
        "wrote {}: {} images × (image, mean of the heads, {heads} heads) — last layer, [CLS] \
         attention to the {}×{} patches",
        picture.output.display(),
        images.len,
        grid_side,
        grid_side
    );
    Ok(())
}

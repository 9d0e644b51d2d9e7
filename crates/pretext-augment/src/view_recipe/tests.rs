//! Tests of the view recipes: shapes, reproducibility, and the waveform masks' streams and
//! masked share.

use super::*;
use crate::maximal_hamming_permutations;
use pretext_data::store::Store;
use pretext_data::Vocabulary;

fn tiny_set() -> Samples {
    let len = 3;
    let pixels: Vec<u8> = (0..len * 28 * 28).map(|i| (i * 7 % 251) as u8).collect();
    Samples::Images(ImageSet::in_memory(pixels, len, 1, 28, 28))
}

/// `len` clips of 4 samples each.
fn clips(len: usize) -> Samples {
    Samples::Audio(AudioSet {
        samples: Arc::new(Store::copied(len * 4, u64::MAX, |out| out.fill(0.25))),
        memory_limit_bytes: u64::MAX,
        len,
        clip_samples: 4,
        sample_rate: 16_000,
        labels: None,
        class_names: Vec::new(),
        files: vec![Default::default(); len],
    })
}

fn masks(batch: &HostBatch) -> &[bool] {
    match &batch.views[1].data {
        HostData::Bool(masks) => masks,
        other => panic!("a mask view, found {other:?}"),
    }
}

#[test]
fn multi_crop_makes_two_global_and_n_local_views_of_their_sizes() {
    let recipe = ViewRecipe::MultiCrop {
        global: ViewConfig::default(),
        local: ViewConfig::default(),
        local_crops: 3,
        local_size: 12,
    };
    let batch = recipe.build(&tiny_set(), &[0, 2], 1, 0, 0);
    let sizes: Vec<i64> = batch.views.iter().map(|v| v.shape[2]).collect();
    assert_eq!(sizes, vec![28, 28, 12, 12, 12]);
    for view in &batch.views {
        assert_eq!(
            view.floats().len() as i64,
            view.shape.iter().product::<i64>()
        );
    }
    assert_eq!(batch.views[4].shape, vec![2, 1, 12, 12]);
    assert!(batch.targets.is_none());
}

#[test]
fn rotation_views_are_the_same_view_turned() {
    let recipe = ViewRecipe::Rotations(ViewConfig::default());
    let batch = recipe.build(&tiny_set(), &[1], 3, 0, 0);
    let upright = Image::new(1, 28, 28, batch.views[0].floats().to_vec()).unwrap();
    for turns in 1..4 {
        assert_eq!(
            rotate90(&upright, turns).pixels,
            batch.views[turns].floats()
        );
    }
}

#[test]
fn jigsaw_labels_index_the_permutation_set_and_tiles_are_standardized() {
    let permutations = Arc::new(maximal_hamming_permutations(10, 9).unwrap());
    let recipe = ViewRecipe::Jigsaw {
        view: ViewConfig::default(),
        grid: 3,
        tile_size: 7,
        tile_output: 0,
        standardize: true,
        permutations,
    };
    let batch = recipe.build(&tiny_set(), &[0, 1, 2], 5, 0, 0);
    assert_eq!(batch.views.len(), 9);
    assert_eq!(batch.views[0].shape, vec![3, 1, 7, 7]);
    let Some(HostView {
        data: HostData::I64(targets),
        ..
    }) = &batch.targets
    else {
        panic!("jigsaw makes targets")
    };
    assert_eq!(targets.len(), 3);
    assert!(targets.iter().all(|&t| (0..10).contains(&t)));
    let first_tile = &batch.views[0].floats()[..49];
    let mean = first_tile.iter().sum::<f32>() / 49.0;
    assert!(mean.abs() < 1e-4, "tile mean {mean}");
    // Same seed, same batch: the stream makes it reproducible.
    let again = recipe.build(&tiny_set(), &[0, 1, 2], 5, 0, 0);
    assert_eq!(again.targets, batch.targets);
    assert_eq!(again.views, batch.views);
}

#[test]
fn masked_tokens_give_inputs_and_labels_of_the_sequence_shape() {
    let vocabulary = Vocabulary {
        size: 100,
        pad_id: 0,
        mask_id: Some(4),
        special_ids: vec![0, 1, 2, 3, 4],
    };
    let sequences: Vec<Vec<u32>> = (0..4).map(|i| (5..45).map(|t| t + i).collect()).collect();
    let set = Samples::Tokens(TokenSet::from_sequences(
        &sequences,
        48,
        &vocabulary,
        None,
        vec![],
    ));
    let batch = ViewRecipe::MaskedTokens(MaskingConfig::default()).build(&set, &[0, 3], 1, 0, 0);
    assert_eq!(batch.views[0].shape, vec![2, 48]);
    assert!(matches!(batch.views[0].data, HostData::I64(_)));
    let targets = batch.targets.as_ref().unwrap();
    assert_eq!(targets.shape, vec![2, 48]);
    let HostData::I64(labels) = &targets.data else {
        panic!()
    };
    // Padding (the last 8 positions of each row) is never chosen.
    for row in labels.chunks(48) {
        assert!(row[40..].iter().all(|&l| l == crate::IGNORED_LABEL));
    }
}

/// A clip's mask is a function of (seed, epoch, clip index) alone: the same in any
/// batch, another for another clip, epoch or seed.
#[test]
fn a_clips_span_mask_comes_from_its_own_stream() {
    let recipe =
        ViewRecipe::Waveforms(FrameMasking::new(SpanMaskConfig::default())).with_frames(49);
    let set = clips(8);
    let batch = recipe.build(&set, &[2, 5, 7], 3, 10, 1);
    assert_eq!(batch.views[0].shape, vec![3, 4]);
    assert_eq!(batch.views[1].shape, vec![3, 49]);
    assert!(batch.targets.is_none());
    let clip = |batch: &HostBatch, row: usize| masks(batch)[row * 49..(row + 1) * 49].to_vec();
    let alone = recipe.build(&set, &[5], 3, 99, 1);
    assert_eq!(clip(&alone, 0), clip(&batch, 1));
    assert_eq!(recipe.build(&set, &[2, 5, 7], 3, 10, 1).views, batch.views);
    let other_clip = recipe.build(&set, &[6], 3, 10, 1);
    let next_epoch = recipe.build(&set, &[5], 3, 10, 2);
    let other_seed = recipe.build(&set, &[5], 4, 10, 1);
    for other in [&other_clip, &next_epoch, &other_seed] {
        assert_ne!(clip(other, 0), clip(&batch, 1));
    }
}

/// Over many clips, the masked share is wav2vec 2.0's expectation for T = 49 frames
/// (1 s at 16 kHz) and the paper's p = 0.065, M = 10: 3 spans, about 46%.
#[test]
fn the_masked_share_matches_the_configured_expectation() {
    let spans = SpanMaskConfig::default();
    let expected = crate::span_mask::tests::expected_masked_share(49, 10, spans.span_count(49));
    let recipe = ViewRecipe::Waveforms(FrameMasking::new(spans)).with_frames(49);
    let indices: Vec<usize> = (0..4000).collect();
    let batch = recipe.build(&clips(4000), &indices, 0, 0, 0);
    let share = masks(&batch).iter().filter(|&&m| m).count() as f64 / (4000.0 * 49.0);
    assert!((share - expected).abs() < 0.01, "{share} vs {expected}");
}

/// Every augmentation on, with colour: the parameters a planned batch carries are the ones
/// the host path applies, bit for bit, for every recipe the device can make.
#[test]
fn planned_views_carry_the_parameters_the_host_path_applies() {
    let len = 4;
    let pixels: Vec<u8> = (0..len * 3 * 20 * 20)
        .map(|i| (i * 37 % 253) as u8)
        .collect();
    let set = Samples::Images(ImageSet::in_memory(pixels, len, 3, 20, 20));
    let Samples::Images(images) = &set else {
        unreachable!()
    };
    let strong = ViewConfig {
        blur_probability: 0.5,
        solarize_probability: 0.5,
        grayscale_probability: 0.5,
        ..ViewConfig::default()
    };
    let recipes = [
        ViewRecipe::TwoViews(strong.clone()),
        ViewRecipe::OneView(strong.clone()),
        ViewRecipe::Rotations(strong.clone()),
        ViewRecipe::MultiCrop {
            global: strong.clone(),
            local: ViewConfig::default(),
            local_crops: 2,
            local_size: 8,
        },
    ];
    let indices = [3, 0, 2];
    for recipe in recipes {
        assert!(recipe.plans_device_views());
        let host = recipe.build(&set, &indices, 11, 5, 2);
        let planned = recipe.build_planned(&set, &indices, 11, 5, 2);
        let plan = planned.planned.as_ref().expect("a planned batch");
        assert!(planned.views.is_empty());
        assert_eq!(plan.rotations, matches!(recipe, ViewRecipe::Rotations(_)));
        assert_eq!(plan.images.shape, vec![3, 3, 20, 20]);
        for (view, planned_view) in plan.views.iter().enumerate() {
            // Rotations: the host's first view is the unturned one.
            let host_view = &host.views[view];
            let side = planned_view.size;
            assert_eq!(host_view.shape[2] as usize, side);
            for (row, (&index, params)) in indices.iter().zip(&planned_view.params).enumerate() {
                let image = Image::from_u8(images.image(index), 3, 20, 20);
                let mut expected = params.apply(&image, side).pixels;
                normalize_in_place(&mut expected);
                let len = 3 * side * side;
                assert_eq!(
                    &host_view.floats()[row * len..(row + 1) * len],
                    expected.as_slice(),
                    "{recipe:?}: view {view} of image {index}"
                );
            }
        }
    }
    assert!(!ViewRecipe::Jigsaw {
        view: ViewConfig::default(),
        grid: 2,
        tile_size: 10,
        tile_output: 0,
        standardize: true,
        permutations: Arc::new(maximal_hamming_permutations(2, 4).unwrap()),
    }
    .plans_device_views());
    assert!(!ViewRecipe::Tokens.plans_device_views());
}

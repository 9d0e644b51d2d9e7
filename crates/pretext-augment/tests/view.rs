//! The public surface end to end: every augmentation keeps shapes and the [0, 1] range,
//! views are reproducible from a seed, and the config round-trips and rejects bad input.

use pretext_augment::{
    adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, color_jitter, gaussian_blur,
    horizontal_flip, random_resized_crop, solarize, to_grayscale, AugmentError, ColorJitter, Image,
    ViewConfig,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_image(rng: &mut ChaCha8Rng, channels: usize, height: usize, width: usize) -> Image {
    let pixels = (0..channels * height * width)
        .map(|_| rng.random::<f32>())
        .collect();
    Image::new(channels, height, width, pixels).unwrap()
}

/// A 3x32x32 image with structure (gradients and a bright square), as a dataset would give.
fn structured_image() -> Image {
    let bytes: Vec<u8> = (0..3 * 32 * 32)
        .map(|i| {
            let (channel, y, x) = (i / 1024, (i / 32) % 32, i % 32);
            let square = (8..20).contains(&y) && (10..24).contains(&x);
            if square {
                240 - 60 * channel as u8
            } else {
                ((x * 7 + y * 3 + channel * 50) % 256) as u8
            }
        })
        .collect();
    Image::from_u8(&bytes, 3, 32, 32)
}

fn assert_valid(name: &str, image: &Image, shape: (usize, usize, usize)) {
    assert_eq!(
        (image.channels, image.height, image.width),
        shape,
        "{name}: shape"
    );
    assert_eq!(
        image.pixels.len(),
        shape.0 * shape.1 * shape.2,
        "{name}: pixel count"
    );
    for &value in &image.pixels {
        assert!(
            (0.0..=1.0).contains(&value),
            "{name}: value {value} outside [0, 1]"
        );
    }
}

#[test]
fn every_augmentation_keeps_shape_and_range_on_random_images() {
    for seed in 0..200 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let channels = if rng.random_bool(0.5) { 1 } else { 3 };
        let (height, width) = (rng.random_range(1..=12), rng.random_range(1..=12));
        let image = random_image(&mut rng, channels, height, width);
        let shape = (channels, height, width);

        let (out_height, out_width) = (rng.random_range(1..=10), rng.random_range(1..=10));
        let scale_min = rng.random_range(0.05..=1.0f32);
        let scale = (scale_min, rng.random_range(scale_min..=1.0));
        let ratio_min = rng.random_range(0.3..=1.0f32);
        let ratio = (ratio_min, rng.random_range(ratio_min..=3.0));
        let crop = random_resized_crop(&image, out_height, out_width, scale, ratio, &mut rng);
        assert_valid(
            "random_resized_crop",
            &crop,
            (channels, out_height, out_width),
        );

        assert_valid("horizontal_flip", &horizontal_flip(&image), shape);
        let factor = rng.random_range(0.0..3.0);
        assert_valid(
            "adjust_brightness",
            &adjust_brightness(&image, factor),
            shape,
        );
        assert_valid("adjust_contrast", &adjust_contrast(&image, factor), shape);
        assert_valid(
            "adjust_saturation",
            &adjust_saturation(&image, factor),
            shape,
        );
        let shift = rng.random_range(-0.5..=0.5);
        assert_valid("adjust_hue", &adjust_hue(&image, shift), shape);
        assert_valid("to_grayscale", &to_grayscale(&image), shape);
        let sigma = rng.random_range(0.0..3.0);
        assert_valid("gaussian_blur", &gaussian_blur(&image, sigma), shape);
        let threshold = rng.random_range(0.0..=1.0);
        assert_valid("solarize", &solarize(&image, threshold), shape);
        let jitter = ColorJitter {
            brightness: rng.random_range(0.0..1.5),
            contrast: rng.random_range(0.0..1.5),
            saturation: rng.random_range(0.0..1.5),
            hue: rng.random_range(0.0..=0.5),
        };
        assert_valid(
            "color_jitter",
            &color_jitter(&image, &jitter, &mut rng),
            shape,
        );

        let config = ViewConfig {
            blur_probability: 0.5,
            solarize_probability: 0.3,
            ..ViewConfig::default()
        }
        .scaled(rng.random_range(0.0..3.0));
        config.validate().unwrap();
        let out_size = rng.random_range(1..=10);
        let view = config.view(&image, out_size, &mut rng);
        assert_valid("view", &view, (channels, out_size, out_size));
    }
}

#[test]
fn same_seed_gives_the_identical_view() {
    let image = structured_image();
    let config = ViewConfig {
        blur_probability: 0.5,
        solarize_probability: 0.2,
        ..ViewConfig::default()
    };
    for seed in 0..20 {
        let first = config.view(&image, 32, &mut ChaCha8Rng::seed_from_u64(seed));
        let second = config.view(&image, 32, &mut ChaCha8Rng::seed_from_u64(seed));
        let first_bits: Vec<u32> = first.pixels.iter().map(|v| v.to_bits()).collect();
        let second_bits: Vec<u32> = second.pixels.iter().map(|v| v.to_bits()).collect();
        assert_eq!(first_bits, second_bits, "seed {seed}");
    }
}

#[test]
fn different_seeds_give_different_views() {
    let image = structured_image();
    let config = ViewConfig::default();
    let views: Vec<Image> = (0..10)
        .map(|seed| config.view(&image, 32, &mut ChaCha8Rng::seed_from_u64(seed)))
        .collect();
    for i in 0..views.len() {
        for j in i + 1..views.len() {
            assert_ne!(views[i], views[j], "seeds {i} and {j} gave the same view");
        }
    }
    // And the views differ from the input itself.
    assert!(views.iter().all(|view| *view != image));
}

#[test]
fn scaled_zero_leaves_the_image_unchanged() {
    let image = structured_image();
    let identity = ViewConfig::default().scaled(0.0);
    identity.validate().unwrap();
    for seed in 0..10 {
        let view = identity.view(&image, 32, &mut ChaCha8Rng::seed_from_u64(seed));
        let largest_change = view
            .pixels
            .iter()
            .zip(&image.pixels)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            largest_change <= 1e-6,
            "seed {seed}: changed by {largest_change}"
        );
    }
}

#[test]
fn scaled_one_is_the_config_itself_and_scaling_stays_valid() {
    let config = ViewConfig::default();
    assert_eq!(config.scaled(1.0), config);
    for strength in [
        0.0,
        0.25,
        0.5,
        2.0,
        5.0,
        100.0,
        f32::INFINITY,
        f32::NAN,
        -1.0,
    ] {
        let scaled = config.scaled(strength);
        scaled
            .validate()
            .unwrap_or_else(|error| panic!("strength {strength}: {error}"));
    }
    let half = config.scaled(0.5);
    assert!((half.crop_scale.0 - 0.6).abs() < 1e-6);
    assert!((half.jitter_probability - 0.4).abs() < 1e-6);
    assert!((half.jitter.brightness - 0.2).abs() < 1e-6);
    let double = config.scaled(2.0);
    assert_eq!(double.jitter_probability, 1.0);
    assert!(double.crop_ratio.0 < config.crop_ratio.0 && double.crop_ratio.1 > config.crop_ratio.1);
}

#[test]
fn default_config_has_the_documented_simclr_values() {
    let config = ViewConfig::default();
    assert_eq!(config.crop_scale, (0.2, 1.0));
    assert_eq!(config.crop_ratio, (0.75, 4.0 / 3.0));
    assert_eq!(config.flip_probability, 0.5);
    assert_eq!(config.jitter_probability, 0.8);
    assert_eq!(
        config.jitter,
        ColorJitter {
            brightness: 0.4,
            contrast: 0.4,
            saturation: 0.4,
            hue: 0.1
        }
    );
    assert_eq!(config.grayscale_probability, 0.2);
    assert_eq!(
        (config.blur_probability, config.blur_sigma),
        (0.0, (0.1, 2.0))
    );
    assert_eq!(
        (config.solarize_probability, config.solarize_threshold),
        (0.0, 0.5)
    );
    config.validate().unwrap();
}

#[test]
fn default_config_round_trips_through_toml() {
    let config = ViewConfig::default();
    let text = toml::to_string(&config).unwrap();
    assert!(text.contains("crop_scale = ["), "{text}");
    assert!(text.contains("[jitter]"), "{text}");
    let parsed: ViewConfig = toml::from_str(&text).unwrap();
    assert_eq!(parsed, config);
}

#[test]
fn missing_keys_take_defaults() {
    let parsed: ViewConfig =
        toml::from_str("flip_probability = 0.0\n[jitter]\nhue = 0.0\n").unwrap();
    let expected = ViewConfig {
        flip_probability: 0.0,
        jitter: ColorJitter {
            hue: 0.0,
            ..ColorJitter::default()
        },
        ..ViewConfig::default()
    };
    assert_eq!(parsed, expected);
}

#[test]
fn unknown_keys_are_rejected() {
    let error = toml::from_str::<ViewConfig>("flip_prob = 0.5\n").unwrap_err();
    assert!(error.to_string().contains("flip_prob"), "{error}");
    let error = toml::from_str::<ViewConfig>("[jitter]\nsharpness = 0.5\n").unwrap_err();
    assert!(error.to_string().contains("sharpness"), "{error}");
}

fn invalid_field(config: ViewConfig) -> (&'static str, String) {
    match config.validate() {
        Err(AugmentError::Invalid { field, reason }) => (field, reason),
        Ok(()) => panic!("accepted an invalid config: {config:?}"),
    }
}

#[test]
fn validate_names_the_offending_field() {
    let base = ViewConfig::default;
    let cases: Vec<(ViewConfig, &str)> = vec![
        (
            ViewConfig {
                crop_scale: (0.0, 1.0),
                ..base()
            },
            "crop_scale",
        ),
        (
            ViewConfig {
                crop_scale: (0.5, 0.4),
                ..base()
            },
            "crop_scale",
        ),
        (
            ViewConfig {
                crop_scale: (0.5, 1.5),
                ..base()
            },
            "crop_scale",
        ),
        (
            ViewConfig {
                crop_scale: (f32::NAN, 1.0),
                ..base()
            },
            "crop_scale",
        ),
        (
            ViewConfig {
                crop_ratio: (0.0, 1.0),
                ..base()
            },
            "crop_ratio",
        ),
        (
            ViewConfig {
                crop_ratio: (2.0, 1.0),
                ..base()
            },
            "crop_ratio",
        ),
        (
            ViewConfig {
                flip_probability: 1.5,
                ..base()
            },
            "flip_probability",
        ),
        (
            ViewConfig {
                jitter_probability: -0.1,
                ..base()
            },
            "jitter_probability",
        ),
        (
            ViewConfig {
                jitter: ColorJitter {
                    brightness: -0.1,
                    ..ColorJitter::default()
                },
                ..base()
            },
            "jitter.brightness",
        ),
        (
            ViewConfig {
                jitter: ColorJitter {
                    contrast: f32::NAN,
                    ..ColorJitter::default()
                },
                ..base()
            },
            "jitter.contrast",
        ),
        (
            ViewConfig {
                jitter: ColorJitter {
                    saturation: -1.0,
                    ..ColorJitter::default()
                },
                ..base()
            },
            "jitter.saturation",
        ),
        (
            ViewConfig {
                jitter: ColorJitter {
                    hue: 0.6,
                    ..ColorJitter::default()
                },
                ..base()
            },
            "jitter.hue",
        ),
        (
            ViewConfig {
                grayscale_probability: f32::NAN,
                ..base()
            },
            "grayscale_probability",
        ),
        (
            ViewConfig {
                blur_probability: 2.0,
                ..base()
            },
            "blur_probability",
        ),
        (
            ViewConfig {
                blur_sigma: (-0.1, 2.0),
                ..base()
            },
            "blur_sigma",
        ),
        (
            ViewConfig {
                blur_sigma: (2.0, 1.0),
                ..base()
            },
            "blur_sigma",
        ),
        (
            ViewConfig {
                solarize_probability: -1.0,
                ..base()
            },
            "solarize_probability",
        ),
        (
            ViewConfig {
                solarize_threshold: 1.5,
                ..base()
            },
            "solarize_threshold",
        ),
    ];
    for (config, expected_field) in cases {
        let (field, reason) = invalid_field(config.clone());
        assert_eq!(field, expected_field, "{config:?}: {reason}");
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.starts_with(&format!("augment.{expected_field}: expected")),
            "{message}"
        );
        assert!(message.contains("found"), "{message}");
    }
}

#[test]
fn views_keep_the_channel_count_of_gray_images() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let image = random_image(&mut rng, 1, 28, 28);
    let view = ViewConfig::default().view(&image, 28, &mut rng);
    assert_eq!((view.channels, view.height, view.width), (1, 28, 28));
}

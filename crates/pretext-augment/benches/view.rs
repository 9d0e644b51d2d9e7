//! Views per second on one thread: `cargo bench -p pretext-augment`.
//!
//! The data workers need ~2000 views/s (1000 images, two views each) on 2 cores; the line
//! "copy" is the side-by-side reference of just cloning the image.

use std::hint::black_box;
use std::time::Instant;

use pretext_augment::{Image, ViewConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn measure(name: &str, views: usize, mut make_view: impl FnMut(u64) -> Image) {
    let start = Instant::now();
    for seed in 0..views as u64 {
        black_box(make_view(seed));
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{name:<40} {:>10.0} views/s ({:.2} µs/view)",
        views as f64 / seconds,
        seconds * 1e6 / views as f64
    );
}

fn main() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let rgb: Vec<u8> = (0..3 * 32 * 32).map(|_| rng.random()).collect();
    let gray: Vec<u8> = (0..28 * 28).map(|_| rng.random()).collect();
    let rgb = Image::from_u8(&rgb, 3, 32, 32);
    let gray = Image::from_u8(&gray, 1, 28, 28);
    let default = ViewConfig::default();
    let with_blur = ViewConfig {
        blur_probability: 1.0,
        solarize_probability: 0.2,
        ..ViewConfig::default()
    };
    let views = 20_000;
    measure("copy 3x32x32 (reference)", views, |_| {
        black_box(&rgb).clone()
    });
    measure("default view 3x32x32", views, |seed| {
        default.view(&rgb, 32, &mut ChaCha8Rng::seed_from_u64(seed))
    });
    measure("default view 1x28x28", views, |seed| {
        default.view(&gray, 28, &mut ChaCha8Rng::seed_from_u64(seed))
    });
    measure("view + blur (p=1) + solarize 3x32x32", views, |seed| {
        with_blur.view(&rgb, 32, &mut ChaCha8Rng::seed_from_u64(seed))
    });
}

//! `data.augment = "device"` on the CPU: SimCLR trains on views made by batched tensor ops
//! from the host path's seeded draws, and learns as well as with the host's views.

mod common;

use common::{one_run_at_a_time as turn, simclr_150_steps};
use pretext_data::AugmentPlace;

/// The device's views come from the same draws: the first logged losses agree to float
/// rounding (the views differ by at most ~1e-6), and after 150 steps the k-NN accuracy is
/// within 1 point of the host path's, far above the 10% of chance.
#[test]
fn simclr_learns_as_well_with_views_made_on_the_device() {
    let _turn = turn();
    let run = |place| simclr_150_steps(|config| config.data.augment = place);
    let (host_losses, host) = run(AugmentPlace::Host);
    let (device_losses, device) = run(AugmentPlace::Device);
    eprintln!("k-NN accuracy after 150 steps: host views {host:.4}, device views {device:.4}");
    assert_eq!(host_losses.len(), device_losses.len());
    let (first_host, first_device) = (host_losses[0], device_losses[0]);
    assert!(
        ((first_host - first_device) / first_host).abs() < 1e-5,
        "first logged loss: host {first_host}, device {first_device}"
    );
    assert!(host > 0.5 && device > 0.5, "host {host}, device {device}");
    assert!(
        (host - device).abs() <= 0.01,
        "host {host}, device {device}"
    );
}

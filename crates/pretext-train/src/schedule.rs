//! Learning-rate schedule: linear warmup from 0, then cosine decay to `final_ratio · base`
//! (Loshchilov & Hutter, 2017; the schedule of SimCLR, MoCo v2, BYOL and DINO).

/// Learning rate for the (0-based) `step` of `total_steps`.
pub fn learning_rate(
    base: f64,
    step: u64,
    total_steps: u64,
    warmup_steps: u64,
    final_ratio: f64,
) -> f64 {
    if step < warmup_steps {
        return base * (step + 1) as f64 / warmup_steps as f64;
    }
    let decay_steps = total_steps.saturating_sub(warmup_steps).max(1);
    let progress = ((step - warmup_steps) as f64 / decay_steps as f64).min(1.0);
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    base * (final_ratio + (1.0 - final_ratio) * cosine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_is_linear_then_cosine_reaches_the_floor() {
        // base 1.0, 4 warmup steps of 14: 0.25, 0.5, 0.75, 1.0, then cosine over 10 steps.
        let lrs: Vec<f64> = (0..14)
            .map(|step| learning_rate(1.0, step, 14, 4, 0.0))
            .collect();
        assert_eq!(&lrs[..4], &[0.25, 0.5, 0.75, 1.0]);
        assert!(
            (lrs[4] - 1.0).abs() < 1e-12,
            "cosine starts at the base: {}",
            lrs[4]
        );
        // Halfway through the decay (step 9 = 4 + 5 of 10): 0.5.
        assert!((lrs[9] - 0.5).abs() < 1e-12, "{}", lrs[9]);
        assert!(lrs.windows(2).skip(4).all(|pair| pair[1] <= pair[0]));
        assert!((learning_rate(1.0, 14, 14, 4, 0.1) - 0.1).abs() < 1e-12);
    }

    #[test]
    fn no_warmup_starts_at_the_base() {
        assert_eq!(learning_rate(0.3, 0, 100, 0, 0.0), 0.3);
    }
}

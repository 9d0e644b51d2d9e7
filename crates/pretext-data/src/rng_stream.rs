//! Seeded random streams keyed by a seed and a path of integers, for reproducibility.
//!
//! Every random choice in pretext (epoch permutations, splits, label subsets, the
//! augmentation of view `v` of sample `i` in epoch `e`) draws from its own stream
//! `rng_stream(seed, &[TAG, ...])`, so a result never depends on thread scheduling or on
//! how many numbers another consumer drew.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bytes 8..16 of the root key: a domain tag so pretext's streams differ from a plain
/// `ChaCha8Rng::seed_from_u64(seed)`.
const DOMAIN_TAG: [u8; 8] = *b"pretext\0";

/// A ChaCha8 stream keyed by `(seed, parts)`, e.g. `rng_stream(seed, &[epoch, sample, view])`.
///
/// Derivation (a pure function of its inputs):
/// * `key_0` = `seed` as little-endian bytes `0..8`, `b"pretext\0"` in bytes `8..16`,
///   zeros in `16..32`;
/// * `key_{i+1}` = the first 32 output bytes of ChaCha8 keyed by `key_i` on stream
///   number `parts[i]` (`set_stream`), from word position 0;
/// * the result is `ChaCha8Rng::from_seed(key_n)`, at stream 0, word position 0.
///
/// Each step is a ChaCha8 evaluation, a pseudo-random function of (key, stream), so
/// different `parts` (including different lengths: `[]` vs `[0]`) give independent keys,
/// and parts are order-sensitive (`[1, 2]` differs from `[2, 1]`).
pub fn rng_stream(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&DOMAIN_TAG);
    for &part in parts {
        let mut chain = ChaCha8Rng::from_seed(key);
        chain.set_stream(part);
        chain.fill_bytes(&mut key);
    }
    ChaCha8Rng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn draw(mut rng: ChaCha8Rng) -> Vec<u64> {
        (0..8).map(|_| rng.random()).collect()
    }

    #[test]
    fn rng_stream_is_a_pure_function() {
        assert_eq!(
            draw(rng_stream(7, &[1, 2, 3])),
            draw(rng_stream(7, &[1, 2, 3]))
        );
        assert_eq!(draw(rng_stream(0, &[])), draw(rng_stream(0, &[])));
    }

    #[test]
    fn rng_stream_differs_across_seeds_parts_order_and_length() {
        let streams = [
            draw(rng_stream(7, &[1, 2, 3])),
            draw(rng_stream(8, &[1, 2, 3])),
            draw(rng_stream(7, &[1, 2, 4])),
            draw(rng_stream(7, &[2, 1, 3])),
            draw(rng_stream(7, &[1, 2])),
            draw(rng_stream(7, &[1, 2, 3, 0])),
            draw(rng_stream(7, &[])),
            draw(rng_stream(7, &[0])),
            draw(ChaCha8Rng::seed_from_u64(7)),
        ];
        for (a, first) in streams.iter().enumerate() {
            for second in &streams[a + 1..] {
                assert_ne!(first, second);
            }
        }
    }

    #[test]
    fn neighbouring_streams_are_uncorrelated() {
        // Independence check: bits of streams for consecutive sample indices agree about
        // half the time (a shared key with shifted counters would agree far more or less).
        let mut agree = 0u32;
        let mut total = 0u32;
        for sample in 0..200u64 {
            let mut first = rng_stream(3, &[0, sample]);
            let mut second = rng_stream(3, &[0, sample + 1]);
            for _ in 0..16 {
                let (x, y): (u64, u64) = (first.random(), second.random());
                agree += (!(x ^ y)).count_ones();
                total += 64;
            }
        }
        let fraction = f64::from(agree) / f64::from(total);
        assert!((fraction - 0.5).abs() < 0.01, "bit agreement {fraction}");
    }
}

//! Jigsaw puzzles (Noroozi & Favaro, 2016, "Unsupervised Learning of Visual Representations
//! by Solving Jigsaw Puzzles"): cut the image into a grid of cells, take a slightly smaller
//! tile at a random offset inside each cell (the gap and jitter stop the network from
//! matching edges), shuffle the tiles by one permutation of a fixed set, and ask which one.
//!
//! The permutation set is chosen greedily for maximal minimum Hamming distance, as in the
//! paper (§3.2): start from the identity, then repeatedly add the permutation whose smallest
//! distance to those already chosen is largest (ties to the lexicographically first), so the
//! set is the same on every machine without a seed.

use rand::Rng;

use crate::crop::{resized_crop, CropBox};
use crate::image::Image;

/// `count` permutations of `0..items` (items ≤ 9), maximally far apart in Hamming distance.
/// Returns `None` when `count` exceeds `items!`.
pub fn maximal_hamming_permutations(count: usize, items: usize) -> Option<Vec<Vec<u8>>> {
    assert!((1..=9).contains(&items), "jigsaw supports 1 to 9 tiles");
    let all = all_permutations(items);
    if count > all.len() {
        return None;
    }
    let hamming = |a: &[u8], b: &[u8]| a.iter().zip(b).filter(|(x, y)| x != y).count() as u8;
    let mut chosen = vec![0usize]; // the identity comes first in lexicographic order
    let mut nearest: Vec<u8> = all.iter().map(|p| hamming(p, &all[0])).collect();
    while chosen.len() < count {
        let (best, _) = nearest.iter().enumerate().fold(
            (0, 0u8),
            |(best, best_distance), (index, &distance)| {
                if distance > best_distance {
                    (index, distance)
                } else {
                    (best, best_distance)
                }
            },
        );
        chosen.push(best);
        for (distance, permutation) in nearest.iter_mut().zip(&all) {
            *distance = (*distance).min(hamming(permutation, &all[best]));
        }
    }
    Some(chosen.into_iter().map(|index| all[index].clone()).collect())
}

/// Every permutation of `0..items` in lexicographic order.
fn all_permutations(items: usize) -> Vec<Vec<u8>> {
    let mut current: Vec<u8> = (0..items as u8).collect();
    let mut all = vec![current.clone()];
    // Narayana's next-permutation algorithm.
    loop {
        let Some(pivot) = (0..items.saturating_sub(1))
            .rev()
            .find(|&i| current[i] < current[i + 1])
        else {
            return all;
        };
        let successor = (pivot + 1..items)
            .rev()
            .find(|&j| current[j] > current[pivot])
            .expect("a larger element follows the pivot");
        current.swap(pivot, successor);
        current[pivot + 1..].reverse();
        all.push(current.clone());
    }
}

/// The tiles of `img` cut on a `grid × grid` lattice, each `tile_size` square taken at a random
/// offset inside its cell and resized to `output_size` (bilinear; 0 keeps `tile_size`),
/// returned shuffled: output position `p` holds the tile of cell `order[p]` (cells numbered
/// row by row). Cells are `min(height, width) / grid` pixels; a `tile_size` larger than a
/// cell is clamped to it.
pub fn jigsaw_tiles<R: Rng + ?Sized>(
    img: &Image,
    grid: usize,
    tile_size: usize,
    output_size: usize,
    order: &[u8],
    rng: &mut R,
) -> Vec<Image> {
    let cell = img.height.min(img.width) / grid;
    let tile = tile_size.min(cell).max(1);
    let output = if output_size == 0 { tile } else { output_size };
    let cells: Vec<Image> = (0..grid * grid)
        .map(|index| {
            let (row, column) = (index / grid, index % grid);
            let slack = cell - tile;
            let top = row * cell + rng.random_range(0..=slack);
            let left = column * cell + rng.random_range(0..=slack);
            let crop = CropBox {
                top,
                left,
                height: tile,
                width: tile,
            };
            resized_crop(img, crop, output, output)
        })
        .collect();
    order
        .iter()
        .map(|&cell| cells[cell as usize].clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn permutation_set_is_deterministic_distinct_and_far_apart() {
        let set = maximal_hamming_permutations(100, 9).unwrap();
        assert_eq!(set.len(), 100);
        assert_eq!(set[0], (0..9).collect::<Vec<u8>>());
        assert_eq!(set, maximal_hamming_permutations(100, 9).unwrap());
        let mut min_distance = 9;
        for (i, a) in set.iter().enumerate() {
            let mut sorted = a.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..9).collect::<Vec<u8>>(), "a permutation");
            for b in &set[i + 1..] {
                let d = a.iter().zip(b).filter(|(x, y)| x != y).count();
                min_distance = min_distance.min(d);
            }
        }
        // Noroozi & Favaro report a minimum distance of 3 for their 100 (average 8).
        assert!(min_distance >= 6, "minimum Hamming distance {min_distance}");
        assert!(maximal_hamming_permutations(7, 3).is_none(), "3! = 6");
    }

    #[test]
    fn tiles_come_from_the_cells_named_by_the_order() {
        // A 6x6 image whose value encodes its 2x2 cell (grid 3): cell k has value k / 10.
        let mut pixels = vec![0.0; 36];
        for y in 0..6 {
            for x in 0..6 {
                pixels[y * 6 + x] = ((y / 2) * 3 + x / 2) as f32 / 10.0;
            }
        }
        let image = Image::new(1, 6, 6, pixels).unwrap();
        let order = [8u8, 0, 4, 1, 2, 3, 5, 6, 7];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let tiles = jigsaw_tiles(&image, 3, 1, 0, &order, &mut rng);
        assert_eq!(tiles.len(), 9);
        for (tile, &cell) in tiles.iter().zip(&order) {
            assert_eq!((tile.height, tile.width), (1, 1));
            assert!((tile.pixels[0] - f32::from(cell) / 10.0).abs() < 1e-6);
        }
    }

    #[test]
    fn tiles_are_resized_to_the_output_size() {
        let image = Image::new(1, 28, 28, vec![0.5; 784]).unwrap();
        let order: Vec<u8> = (0..9).collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let tiles = jigsaw_tiles(&image, 3, 7, 14, &order, &mut rng);
        assert!(tiles.iter().all(|t| (t.height, t.width) == (14, 14)));
        assert!(tiles[0].pixels.iter().all(|&v| (v - 0.5).abs() < 1e-6));
    }
}

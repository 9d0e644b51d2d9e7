//! Weighted k-NN classification on frozen features (Wu et al., 2018, as used by DINO and
//! most SSL papers): cosine similarity to the labeled bank, the k nearest vote with weight
//! `exp(sim / τ)`, the class with the largest total wins.

use tch::{Kind, Tensor};

/// Settings of the k-NN classifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KnnConfig {
    /// Number of neighbours that vote.
    pub k: i64,
    /// Temperature of the vote weights `exp(sim / τ)`.
    pub temperature: f64,
}

impl Default for KnnConfig {
    fn default() -> Self {
        KnnConfig {
            k: 20,
            temperature: 0.07,
        }
    }
}

/// Predicts a class for each query row.
///
/// `bank` `[M, D]` with `bank_labels` `[M]` (int64), `queries` `[Q, D]`; returns `[Q]` int64.
/// Rows are L2-normalized here. Queries are processed in chunks to bound memory.
pub fn knn_classify(
    bank: &Tensor,
    bank_labels: &Tensor,
    queries: &Tensor,
    num_classes: i64,
    config: KnnConfig,
) -> Tensor {
    let _guard = tch::no_grad_guard();
    let normalize = |t: &Tensor| {
        let t = t.to_kind(Kind::Float);
        &t / t.norm_scalaropt_dim(2, &[1i64][..], true).clamp_min(1e-12)
    };
    let bank = normalize(bank);
    let queries = normalize(queries);
    let k = config.k.min(bank.size()[0]);
    let labels = bank_labels.to_kind(Kind::Int64);
    let chunks: Vec<Tensor> = queries
        .split(1024, 0)
        .iter()
        .map(|chunk| {
            let similarity = chunk.matmul(&bank.transpose(0, 1)); // [q, M]
            let (top_similarity, top_index) = similarity.topk(k, 1, true, true); // [q, k]
            let weights = (top_similarity / config.temperature).exp();
            let votes = labels
                .index_select(0, &top_index.flatten(0, 1))
                .view_as(&top_index);
            let scores = Tensor::zeros(
                [chunk.size()[0], num_classes],
                (Kind::Float, chunk.device()),
            )
            .scatter_add(1, &votes, &weights); // [q, classes]
            scores.argmax(1, false)
        })
        .collect();
    Tensor::cat(&chunks, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knn_votes_are_weighted_by_similarity() {
        // Bank: two points of class 0 near (1, 0), one point of class 1 exactly at the query.
        let bank = Tensor::from_slice2(&[[1.0f32, 0.1], [1.0, -0.1], [0.0, 1.0]]);
        let labels = Tensor::from_slice(&[0i64, 0, 1]);
        let query = Tensor::from_slice2(&[[0.0f32, 1.0]]);
        // With a sharp temperature the single exact match outweighs two distant votes.
        let sharp = knn_classify(
            &bank,
            &labels,
            &query,
            2,
            KnnConfig {
                k: 3,
                temperature: 0.07,
            },
        );
        assert_eq!(i64::try_from(sharp.get(0)).unwrap(), 1);
        // With a flat temperature, two votes beat one.
        let flat = knn_classify(
            &bank,
            &labels,
            &query,
            2,
            KnnConfig {
                k: 3,
                temperature: 100.0,
            },
        );
        assert_eq!(i64::try_from(flat.get(0)).unwrap(), 0);
    }

    #[test]
    fn knn_with_k_one_is_nearest_neighbour() {
        let bank = Tensor::from_slice2(&[[1.0f32, 0.0], [0.0, 1.0], [-1.0, 0.0]]);
        let labels = Tensor::from_slice(&[0i64, 1, 2]);
        let queries = Tensor::from_slice2(&[[0.9f32, 0.2], [0.1, 0.8], [-2.0, 0.1]]);
        let predicted = knn_classify(
            &bank,
            &labels,
            &queries,
            3,
            KnnConfig {
                k: 1,
                temperature: 1.0,
            },
        );
        assert_eq!(Vec::<i64>::try_from(predicted).unwrap(), vec![0, 1, 2]);
    }
}

//! The table encoder: an MLP over a row's cells, with a learned embedding per categorical
//! column and the missing-cell flags as inputs of their own.
//!
//! A row arrives packed as `[B, 2W]` floats (`pretext_augment::pack_rows`' layout): the W
//! cell values — standardized numbers, or category codes — with 0 where a cell is missing,
//! then the W missing flags (1 = missing). Numeric values go in as they are; each categorical
//! column's code picks a row of that column's embedding table, whose last row stands for
//! "missing"; all of that and the flags are concatenated and go through `layers` × (Linear →
//! ReLU).

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use crate::encoder::Encoder;

/// Shape of the table MLP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlpConfig {
    /// Width of every hidden layer and of the representation.
    pub hidden_dim: i64,
    /// Linear → ReLU layers.
    pub layers: usize,
    /// Width of each categorical column's embedding.
    pub embedding_dim: i64,
    /// Set from the data when a run starts: per feature column, 0 for a numeric one, else
    /// its number of categories.
    pub columns: Vec<i64>,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            hidden_dim: 256,
            layers: 3,
            embedding_dim: 8,
            columns: Vec::new(),
        }
    }
}

impl MlpConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.hidden_dim < 1 || self.layers < 1 || self.embedding_dim < 1 {
            return Err("hidden_dim, layers and embedding_dim must be at least 1".to_string());
        }
        if self.columns.iter().any(|&count| count < 0) {
            return Err("columns holds category counts, which cannot be negative".to_string());
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct TableMlp {
    /// Indices of the numeric columns.
    numeric: Tensor,
    /// (column, embedding) of each categorical column.
    embeddings: Vec<(i64, nn::Embedding)>,
    layers: Vec<nn::Linear>,
    width: i64,
    config: MlpConfig,
}

impl TableMlp {
    pub fn new(path: &nn::Path, config: &MlpConfig) -> TableMlp {
        let width = config.columns.len() as i64;
        let numeric: Vec<i64> = (0..width)
            .filter(|&column| config.columns[column as usize] == 0)
            .collect();
        let embeddings: Vec<(i64, nn::Embedding)> = config
            .columns
            .iter()
            .enumerate()
            .filter(|(_, &count)| count > 0)
            .map(|(column, &count)| {
                let table = nn::embedding(
                    path / "embedding" / column,
                    count + 1, // the last row: missing
                    config.embedding_dim,
                    Default::default(),
                );
                (column as i64, table)
            })
            .collect();
        let input = numeric.len() as i64 + embeddings.len() as i64 * config.embedding_dim + width;
        let layers = (0..config.layers)
            .map(|index| {
                let fan_in = if index == 0 { input } else { config.hidden_dim };
                nn::linear(
                    path / "layer" / index,
                    fan_in,
                    config.hidden_dim,
                    Default::default(),
                )
            })
            .collect();
        TableMlp {
            numeric: Tensor::from_slice(&numeric).to_device(path.device()),
            embeddings,
            layers,
            width,
            config: config.clone(),
        }
    }

    /// The MLP's input for packed rows `[B, 2W]`.
    fn features(&self, rows: &Tensor) -> Tensor {
        let values = rows.narrow(1, 0, self.width);
        let missing = rows.narrow(1, self.width, self.width);
        let mut parts = vec![values.index_select(1, &self.numeric)];
        for (column, embedding) in &self.embeddings {
            let count = self.config.columns[*column as usize];
            let absent = missing.select(1, *column).gt(0.5);
            let codes = values
                .select(1, *column)
                .to_kind(Kind::Int64)
                .clamp(0, count - 1)
                .masked_fill(&absent, count);
            parts.push(embedding.forward(&codes));
        }
        parts.push(missing.shallow_clone());
        Tensor::cat(&parts, 1)
    }
}

impl Encoder for TableMlp {
    fn encode(&self, rows: &Tensor, _train: bool) -> Tensor {
        self.layers
            .iter()
            .fold(self.features(rows), |x, layer| layer.forward(&x).relu())
    }

    fn dim(&self) -> i64 {
        self.config.hidden_dim
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::VarStore, Device};

    /// Two numeric columns and one of 3 categories: input 2 + 4 (embedding) + 3 (flags);
    /// a missing category reads the extra embedding row, so it differs from every real one.
    #[test]
    fn categorical_codes_and_missing_cells_reach_the_network() {
        tch::manual_seed(0);
        let store = VarStore::new(Device::Cpu);
        let config = MlpConfig {
            hidden_dim: 16,
            layers: 2,
            embedding_dim: 4,
            columns: vec![0, 3, 0],
        };
        let mlp = TableMlp::new(&store.root(), &config);
        let parameters: i64 = store
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        // embedding 4×4, layer 0 (9→16) 9·16+16, layer 1 16·16+16.
        assert_eq!(parameters, 16 + 160 + 272);
        let rows = |code: f32, absent: f32| {
            Tensor::from_slice(&[0.5f32, code, -1.0, 0.0, absent, 0.0]).view([1, 6])
        };
        let encode = |x: Tensor| mlp.encode(&x, false);
        let codes: Vec<Tensor> = (0..3).map(|code| encode(rows(code as f32, 0.0))).collect();
        let absent = encode(rows(0.0, 1.0));
        assert_eq!(absent.size(), vec![1, 16]);
        for (i, a) in codes.iter().enumerate() {
            assert!(
                !a.allclose(&absent, 1e-6, 1e-6, false),
                "code {i} = missing"
            );
            for b in &codes[i + 1..] {
                assert!(!a.allclose(b, 1e-6, 1e-6, false));
            }
        }
    }
}

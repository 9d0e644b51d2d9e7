//! Jigsaw puzzles — Noroozi & Favaro, "Unsupervised Learning of Visual Representations by
//! Solving Jigsaw Puzzles", ECCV 2016 (arXiv:1603.09246).
//!
//! The image is cut into 3×3 tiles (each a little smaller than its cell and at a random
//! offset, so edges cannot be matched), the tiles are shuffled by one of a fixed set of
//! permutations chosen for maximal Hamming distance, and the network names the permutation.
//! The "context-free network": every tile goes through the same encoder on its own, the nine
//! representations are concatenated in the shuffled order, and an MLP classifies the
//! permutation (cross-entropy over the set).
//!
//! Defaults: the paper's 3×3 grid, 100 permutations and gaps (tiles of 7 px in 9 px cells for
//! 28 px images, 64 in 75 in the paper), a 512-wide classifier. Two departures, measured on
//! Fashion-MNIST (1000 steps, 600-label probe, BENCHMARKS.md §4): tiles are resized to 14 px
//! (the encoder then sees objects at half their full-image scale rather than a quarter), and
//! they get the usual input normalization instead of the paper's per-tile standardization (so
//! tiles and whole images reach the encoder and its batch norm with the same statistics).
//! Both raise 20-NN accuracy from 58.8% to 68.8%; `tile_output = 0` and
//! `standardize_tiles = true` give the paper's setting.
//!
//! Run: `pretext pretrain --method jigsaw --data ../shared/data/vision/fashion-mnist --out runs/jigsaw`

use std::sync::Arc;

use pretext_augment::{maximal_hamming_permutations, ViewConfig};
use pretext_nn::{Backbone, BackboneConfig, Encoder, InputSpec, Projector};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::pretext_method::{check, MethodHealth, MethodSettings, PretextMethod};
use crate::rotation::{classification, classifier_config};
use crate::signal;
use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};

/// Jigsaw's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JigsawConfig {
    /// Tiles per side (2 or 3).
    pub grid: usize,
    /// Side of a tile in pixels (at most the cell, image size / grid).
    pub tile_size: usize,
    /// Side the tiles are resized to before the encoder sees them (0 = keep tile_size).
    pub tile_output: usize,
    /// Standardize each tile on its own, as the paper does (else the usual normalization).
    pub standardize_tiles: bool,
    /// Size of the permutation set (the number of classes).
    pub permutations: usize,
    /// Hidden width of the permutation classifier.
    pub hidden_dim: i64,
}

impl Default for JigsawConfig {
    fn default() -> Self {
        JigsawConfig {
            grid: 3,
            tile_size: 7,
            tile_output: 14,
            standardize_tiles: false,
            permutations: 100,
            hidden_dim: 512,
        }
    }
}

impl MethodSettings for JigsawConfig {
    fn validate(&self) -> Result<(), (String, String)> {
        check(
            (2..=3).contains(&self.grid),
            "grid",
            "must be 2 or 3 (tiles per side)",
        )?;
        let tiles = self.grid * self.grid;
        let most: usize = (1..=tiles).product();
        check(
            (2..=most).contains(&self.permutations),
            "permutations",
            &format!("must be between 2 and {most} (= {tiles}!)"),
        )?;
        check(self.tile_size >= 2, "tile_size", "must be at least 2")
    }

    fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        ViewRecipe::Jigsaw {
            view: views.clone(),
            grid: self.grid,
            tile_size: self.tile_size,
            tile_output: self.tile_output,
            standardize: self.standardize_tiles,
            permutations: Arc::new(
                maximal_hamming_permutations(self.permutations, self.grid * self.grid)
                    .expect("validated: permutations <= (grid²)!"),
            ),
        }
    }

    fn build(
        &self,
        trained: &nn::VarStore,
        _state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
    ) -> Box<dyn PretextMethod> {
        Box::new(Jigsaw::new(&trained.root(), &setup.input, backbone, self))
    }

    fn health(&self, _backbone: &BackboneConfig, _total_steps: u64) -> MethodHealth {
        MethodHealth {
            pretext_classes: Some(self.permutations),
            ..MethodHealth::default()
        }
    }
}

#[derive(Debug)]
pub struct Jigsaw {
    pub encoder: Backbone,
    pub classifier: Projector,
}

impl Jigsaw {
    pub fn new(
        root: &nn::Path,
        input: &InputSpec,
        backbone: &BackboneConfig,
        config: &JigsawConfig,
    ) -> Jigsaw {
        let encoder = Backbone::new(&(root / "encoder"), input, backbone);
        let tiles = (config.grid * config.grid) as i64;
        let classifier = Projector::new(
            &(root / "classifier"),
            tiles * encoder.dim(),
            &classifier_config(config.hidden_dim, config.permutations as i64),
        );
        Jigsaw {
            encoder,
            classifier,
        }
    }

    /// `tiles[p]` = the tile at shuffled position p, `[N, C, t, t]`; `targets` = `[N]`
    /// permutation indices.
    pub fn loss(&self, tiles: &[Tensor], targets: &Tensor) -> StepOutput {
        let n = tiles[0].size()[0];
        let count = tiles.len() as i64;
        let h = self.encoder.encode(&Tensor::cat(tiles, 0), true); // [T·N, D]
        let dim = h.size()[1];
        let per_image = h.view([count, n, dim]).permute([1, 0, 2]); // [N, T, D]
        let logits = self
            .classifier
            .forward_t(&per_image.reshape([n, count * dim]), true); // [N, P]
        let (loss, accuracy) = classification(&logits, targets);
        StepOutput {
            loss,
            representations: vec![per_image.mean_dim(&[1i64][..], false, Kind::Float).detach()],
            projections: None,
            metrics: vec![(signal::PRETEXT_ACCURACY.key.into(), accuracy.into())],
        }
    }
}

impl PretextMethod for Jigsaw {
    fn encoder(&self) -> &Backbone {
        &self.encoder
    }

    fn step_loss(&mut self, inputs: &StepInputs, _clock: StepClock) -> StepOutput {
        let targets = inputs.targets_of("jigsaw");
        self.loss(&inputs.views, targets)
    }
}

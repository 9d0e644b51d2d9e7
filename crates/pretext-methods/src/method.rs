//! The closed set of methods that configs and the CLI can name.

use pretext_augment::ViewConfig;
use pretext_nn::{Backbone, BackboneConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::simclr::{SimClr, SimClrConfig};
use crate::views::ViewRecipe;

/// A method's name, as written in configs and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodName {
    Simclr,
}

impl MethodName {
    pub const ALL: [MethodName; 1] = [MethodName::Simclr];

    pub fn as_str(self) -> &'static str {
        match self {
            MethodName::Simclr => "simclr",
        }
    }

    /// Parses a name; the error lists the known names.
    pub fn parse(text: &str) -> Result<MethodName, String> {
        MethodName::ALL
            .into_iter()
            .find(|name| name.as_str() == text)
            .ok_or_else(|| {
                let known: Vec<&str> = MethodName::ALL.iter().map(|name| name.as_str()).collect();
                format!(
                    "unknown method `{text}`; known methods: {}",
                    known.join(", ")
                )
            })
    }
}

/// The `[method]` section: which method, and each method's settings (paper defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MethodConfig {
    /// Which method pretrains the encoder.
    pub name: MethodName,
    /// Settings of SimCLR, used when name = "simclr".
    pub simclr: SimClrConfig,
}

impl Default for MethodConfig {
    fn default() -> Self {
        MethodConfig {
            name: MethodName::Simclr,
            simclr: SimClrConfig::default(),
        }
    }
}

impl MethodConfig {
    /// How samples become views for this method.
    pub fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        match self.name {
            MethodName::Simclr => ViewRecipe::TwoViews(views.clone()),
        }
    }
}

/// What one forward pass of a method gives the step loop.
#[derive(Debug)]
pub struct StepOutput {
    /// Scalar loss to minimize.
    pub loss: Tensor,
    /// Detached encoder outputs per view, `[B, D]` each, for the health signals.
    pub representations: Vec<Tensor>,
    /// Extra method-specific numbers to log.
    pub metrics: Vec<(String, f64)>,
}

/// A built method: its trained modules (inside the caller's VarStore) and untrained state.
#[derive(Debug)]
pub enum Method {
    SimClr(SimClr),
}

impl Method {
    pub fn new(
        root: &nn::Path,
        in_channels: i64,
        backbone: &BackboneConfig,
        config: &MethodConfig,
    ) -> Method {
        match config.name {
            MethodName::Simclr => {
                Method::SimClr(SimClr::new(root, in_channels, backbone, &config.simclr))
            }
        }
    }

    /// The encoder that transfer uses.
    pub fn encoder(&self) -> &Backbone {
        match self {
            Method::SimClr(method) => &method.encoder,
        }
    }

    /// Forward pass and loss on one step's views.
    pub fn loss(&self, views: &[Tensor], _step: u64) -> StepOutput {
        match self {
            Method::SimClr(method) => method.loss(views),
        }
    }

    /// Updates untrained state (EMA teachers, queues, centers) after the optimizer step.
    pub fn after_step(&mut self, _step: u64) {
        match self {
            Method::SimClr(_) => {}
        }
    }
}

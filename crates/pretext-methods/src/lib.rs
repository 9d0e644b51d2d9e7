//! Self-supervised methods, one file per paper, behind a closed [`Method`] enum that configs
//! and the CLI name.

pub mod input;
pub mod method;
pub mod simclr;
pub mod views;

pub use input::{images_to_tensor, INPUT_MEAN, INPUT_STD};
pub use method::{Method, MethodConfig, MethodName, StepOutput};
pub use simclr::{SimClr, SimClrConfig};
pub use views::{HostBatch, ViewRecipe};

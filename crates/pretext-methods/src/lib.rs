//! Self-supervised methods, one file per paper, each implementing [`PretextMethod`] (and its
//! settings [`MethodSettings`]) and named in the registry of `method.rs`, which configs and
//! the CLI read: seven for images, two for text, three for tables, one for audio.

pub mod bert_mlm;
pub mod byol;
pub mod corruption;
pub(crate) mod device_views;
pub mod dino;
pub mod generation;
pub mod gpt;
pub mod input;
pub mod jigsaw;
pub mod mae;
pub mod method;
pub mod moco;
pub mod pretext_method;
mod registry;
pub mod rotation;
pub mod scarf;
pub mod signal;
pub mod simclr;
pub mod step;
pub mod views;
pub mod vime;
pub mod wav2vec2;

pub use bert_mlm::{BertMlm, BertMlmConfig};
pub use byol::{Byol, ByolConfig};
pub use corruption::{Corruption, CorruptionConfig};
pub use dino::{Dino, DinoConfig};
pub use generation::{next_token_probabilities, SamplingConfig};
pub use gpt::{Gpt, GptConfig};
pub use input::{images_to_tensor, samples_to_tensor, INPUT_MEAN, INPUT_STD};
pub use jigsaw::{Jigsaw, JigsawConfig};
pub use mae::{Mae, MaeConfig};
pub use method::{Method, MethodConfig, MethodName};
pub use moco::{Moco, MocoBatchNorm, MocoConfig};
pub use pretext_method::{MethodHealth, MethodSettings, PretextMethod};
pub use rotation::{Rotation, RotationConfig};
pub use scarf::{Scarf, ScarfConfig};
pub use signal::{Judgment, Problem, Signal, SIGNALS};
pub use simclr::{SimClr, SimClrConfig};
pub use step::{MethodSetup, Metric, StepClock, StepOutput};
pub use views::{
    host_to_device, FrameMasking, HostBatch, HostData, HostView, StepInputs, ToDevice, ViewRecipe,
};
pub use vime::{Vime, VimeConfig};
pub use wav2vec2::{Wav2Vec2, Wav2Vec2Config};

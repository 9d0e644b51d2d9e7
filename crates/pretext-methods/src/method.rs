//! The registry of methods, one line each: name in configs and in papers, what it reads, the
//! backbone it needs (when only one works) and its `[method.<field>]` settings. From it come
//! [`MethodName`], [`MethodConfig`] and the one dispatch from a name to its settings
//! ([`MethodConfig::settings`]), which build the [`Method`] the step loop drives.

use std::any::Any;

use pretext_augment::ViewConfig;
use pretext_nn::{fp32, Backbone, BackboneConfig, BackboneKind};
use tch::nn;

use crate::bert_mlm::BertMlmConfig;
use crate::byol::ByolConfig;
use crate::corruption::CorruptionConfig;
use crate::dino::DinoConfig;
use crate::gpt::GptConfig;
use crate::jigsaw::JigsawConfig;
use crate::mae::MaeConfig;
use crate::moco::MocoConfig;
use crate::pretext_method::PretextMethod;
use crate::registry::methods;
use crate::rotation::RotationConfig;
use crate::scarf::ScarfConfig;
use crate::simclr::SimClrConfig;
use crate::step::{MethodSetup, StepClock, StepOutput};
use crate::views::{StepInputs, ViewRecipe};
use crate::vime::VimeConfig;
use crate::wav2vec2::Wav2Vec2Config;

// Variant = "name in configs", "name in papers", what it reads, [method.<field>]: settings
// (, needs the only backbone it works with "what it does and needs").
methods! {
    /// Which method pretrains the encoder: simclr, moco, byol, dino, rotation, jigsaw (images),
    /// mae (images, ViT only), bert-mlm or gpt (text), vime, scarf or corruption (tables),
    /// wav2vec2 (audio, wav2vec backbone only).
    name: MethodName;
    /// Settings of SimCLR, used when name = "simclr".
    Simclr = "simclr", "SimCLR", Images, simclr: SimClrConfig;
    /// Settings of MoCo v2, used when name = "moco".
    Moco = "moco", "MoCo v2", Images, moco: MocoConfig;
    /// Settings of BYOL, used when name = "byol".
    Byol = "byol", "BYOL", Images, byol: ByolConfig;
    /// Settings of DINO, used when name = "dino".
    Dino = "dino", "DINO", Images, dino: DinoConfig;
    /// Settings of rotation prediction, used when name = "rotation".
    Rotation = "rotation", "Rotation prediction", Images, rotation: RotationConfig;
    /// Settings of jigsaw puzzles, used when name = "jigsaw".
    Jigsaw = "jigsaw", "Jigsaw", Images, jigsaw: JigsawConfig;
    /// Settings of masked autoencoders, used when name = "mae".
    Mae = "mae", "MAE", Images, mae: MaeConfig,
        needs Vit "encodes image patches and needs a vision transformer (--backbone vit)";
    /// Settings of BERT's masked language modeling, used when name = "bert-mlm".
    BertMlm = "bert-mlm", "BERT MLM", Text, bert_mlm: BertMlmConfig;
    /// Settings of GPT's causal language modeling, used when name = "gpt".
    Gpt = "gpt", "GPT", Text, gpt: GptConfig;
    /// Settings of VIME's mask and feature estimation, used when name = "vime".
    Vime = "vime", "VIME", Tables, vime: VimeConfig;
    /// Settings of SCARF's contrastive corruption, used when name = "scarf".
    Scarf = "scarf", "SCARF", Tables, scarf: ScarfConfig;
    /// Settings of corruption detection, used when name = "corruption".
    Corruption = "corruption", "Corruption detection", Tables, corruption: CorruptionConfig;
    /// Settings of wav2vec 2.0, used when name = "wav2vec2".
    Wav2vec2 = "wav2vec2", "wav2vec 2.0", Audio, wav2vec2: Wav2Vec2Config,
        needs Wav2vec "masks the frames of a wav2vec network and needs --backbone wav2vec";
}

/// What a method's encoder reads (a column of the registry).
#[derive(Clone, Copy)]
enum Modality {
    Images,
    Text,
    Tables,
    Audio,
}

impl MethodName {
    /// The image methods every image backbone works with (MAE, which needs a ViT, is not one).
    pub const IMAGE: [MethodName; IMAGE_METHODS] = {
        let mut image = [MethodName::Simclr; IMAGE_METHODS];
        let (mut from, mut to) = (0, 0);
        while from < MethodName::ALL.len() {
            if MethodName::ALL[from].fits_every_image_backbone() {
                image[to] = MethodName::ALL[from];
                to += 1;
            }
            from += 1;
        }
        image
    };

    const fn fits_every_image_backbone(self) -> bool {
        matches!(self.reads(), Modality::Images) && self.required_backbone().is_none()
    }

    /// Whether the method reads token sequences.
    pub fn reads_tokens(self) -> bool {
        matches!(self.reads(), Modality::Text)
    }

    /// Whether the method reads table rows.
    pub fn reads_rows(self) -> bool {
        matches!(self.reads(), Modality::Tables)
    }

    /// Whether the method reads waveforms.
    pub fn reads_audio(self) -> bool {
        matches!(self.reads(), Modality::Audio)
    }

    /// What the method reads: "images", "text", "tables" or "audio".
    pub fn modality(self) -> &'static str {
        match self.reads() {
            Modality::Images => "images",
            Modality::Text => "text",
            Modality::Tables => "tables",
            Modality::Audio => "audio",
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

    /// Refuses a backbone the method cannot use; the error says which one it needs.
    pub fn check_backbone(self, kind: BackboneKind) -> Result<(), String> {
        match self.required_backbone() {
            Some((needed, why)) if needed != kind => Err(format!(
                "method `{}` {why}, not `{}`",
                self.as_str(),
                kind.as_str()
            )),
            _ => Ok(()),
        }
    }
}

/// How many methods [`MethodName::IMAGE`] lists.
const IMAGE_METHODS: usize = {
    let (mut count, mut index) = (0, 0);
    while index < MethodName::ALL.len() {
        if MethodName::ALL[index].fits_every_image_backbone() {
            count += 1;
        }
        index += 1;
    }
    count
};

impl MethodConfig {
    /// How samples become views for this method.
    pub fn view_recipe(&self, views: &ViewConfig) -> ViewRecipe {
        self.settings().view_recipe(views)
    }

    /// Checks the selected method's settings; the error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        self.settings()
            .validate()
            .map_err(|(field, message)| (format!("method.{}.{field}", self.name.as_str()), message))
    }
}

/// A built method: its trained modules (in the `trained` VarStore, which the optimizer
/// updates) and its untrained state (EMA networks, queue, center: in the `state` VarStore,
/// which only `after_step` changes). Both are saved with every checkpoint.
#[derive(Debug)]
pub struct Method(Box<dyn PretextMethod>);

impl Method {
    pub fn new(
        trained: &nn::VarStore,
        state: &nn::VarStore,
        setup: MethodSetup,
        backbone: &BackboneConfig,
        config: &MethodConfig,
    ) -> Method {
        Method(config.settings().build(trained, state, setup, backbone))
    }

    /// The encoder that transfer uses.
    pub fn encoder(&self) -> &Backbone {
        self.0.encoder()
    }

    /// Forward pass and loss on one step's views; the loss, representations and projections
    /// come back in float32 also when the forward pass ran under bf16 autocast.
    pub fn loss(&mut self, inputs: &StepInputs, clock: StepClock) -> StepOutput {
        let output = self.0.step_loss(inputs, clock);
        StepOutput {
            loss: fp32(&output.loss),
            representations: output.representations.iter().map(fp32).collect(),
            projections: output.projections.as_ref().map(fp32),
            metrics: output.metrics,
        }
    }

    /// [`PretextMethod::held_out_loss`] (bert-mlm, gpt) as a number, computed without gradients.
    pub fn held_out_loss(&self, inputs: &StepInputs) -> Option<f64> {
        let loss = tch::no_grad(|| self.0.held_out_loss(inputs))?;
        Some(loss.double_value(&[]))
    }

    /// Updates untrained state (EMA networks, queues, centers) after the optimizer step
    /// (`taken`: see [`PretextMethod::after_step`]).
    pub fn after_step(&mut self, clock: StepClock, taken: Option<&tch::Tensor>) {
        self.0.after_step(clock, taken)
    }

    /// Health numbers that need a look at the weights ([`PretextMethod::health_metrics`]).
    pub fn health_metrics(&self) -> Vec<(String, f64)> {
        self.0.health_metrics()
    }

    /// The built method as its own type (e.g. [`crate::Gpt`] to generate text), if it is one.
    pub fn downcast_ref<M: PretextMethod>(&self) -> Option<&M> {
        let method: &dyn Any = &*self.0;
        method.downcast_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_gives_the_image_methods_backbone_checks_and_field_names() {
        use MethodName::*;
        assert_eq!(
            MethodName::IMAGE,
            [Simclr, Moco, Byol, Dino, Rotation, Jigsaw]
        );
        assert_eq!(
            Mae.check_backbone(BackboneKind::Resnet18).unwrap_err(),
            "method `mae` encodes image patches and needs a vision transformer (--backbone vit), not `resnet18`"
        );
        assert!(Wav2vec2.check_backbone(BackboneKind::Wav2vec).is_ok());
        let config = MethodConfig {
            name: Moco,
            moco: MocoConfig {
                momentum: 1.5,
                ..MocoConfig::default()
            },
            ..MethodConfig::default()
        };
        let error = ("method.moco.momentum".into(), "must be in [0, 1]".into());
        assert_eq!(config.validate(), Err(error));
    }
}

//! Choosing a backbone by name in configs.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::audio_encoder::{Wav2VecConfig, Wav2VecEncoder};
use crate::encoder::Encoder;
use crate::input_adapter::{InputAdapter, InputAdapterConfig};
use crate::resnet::{ResNet, ResNetConfig, ResNetDepth};
use crate::small_cnn::{SmallCnn, SmallCnnConfig};
use crate::table_mlp::{MlpConfig, TableMlp};
use crate::transformer::{Transformer, TransformerConfig};
use crate::vit::{Vit, VitConfig};

/// What the backbone reads: image channels (and side, which a ViT's position table needs),
/// a tokenizer's vocabulary and padding id, a table's number of feature columns, or
/// waveforms (nothing to size: every field 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputSpec {
    pub channels: i64,
    /// Side of the (square) training images; 0 when unknown or for tokens.
    pub image_size: i64,
    pub vocab_size: i64,
    pub pad_id: i64,
    /// Feature columns of table rows; 0 for images and tokens.
    pub columns: i64,
}

impl InputSpec {
    pub fn image(channels: i64) -> InputSpec {
        InputSpec {
            channels,
            image_size: 0,
            vocab_size: 0,
            pad_id: 0,
            columns: 0,
        }
    }

    /// Images of `channels` × `size` × `size`.
    pub fn sized_image(channels: i64, size: i64) -> InputSpec {
        InputSpec {
            image_size: size,
            ..InputSpec::image(channels)
        }
    }

    pub fn tokens(vocab_size: i64, pad_id: i64) -> InputSpec {
        InputSpec {
            channels: 0,
            image_size: 0,
            vocab_size,
            pad_id,
            columns: 0,
        }
    }

    /// Mono waveforms of any length.
    pub fn waveforms() -> InputSpec {
        InputSpec::image(0)
    }

    /// Table rows of `columns` feature columns.
    pub fn rows(columns: i64) -> InputSpec {
        InputSpec {
            columns,
            ..InputSpec::image(0)
        }
    }
}

/// How a transformer's token states become one representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pooling {
    /// Mean over the real (non-padding) tokens (Sentence-BERT).
    Mean,
    /// The first token's state ([CLS]).
    Cls,
    /// The last real token's state (causal models, where only it has seen everything).
    Last,
}

/// Which network encodes the images.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackboneKind {
    /// [`SmallCnn`]: a few conv-BN-ReLU layers, for 28–32 px images on CPU.
    SmallCnn,
    /// [`ResNet`]-18: basic blocks, 512-d (the CIFAR stem unless `resnet.stem` says
    /// otherwise).
    Resnet18,
    /// [`ResNet`]-50: bottleneck blocks, 2048-d.
    Resnet50,
    /// A [`Transformer`] over token ids, pooled to one vector (text).
    Transformer,
    /// A vision transformer ([`Vit`]) over image patches.
    Vit,
    /// An MLP over table rows ([`TableMlp`]).
    Mlp,
    /// wav2vec 2.0's convolutional feature encoder and context transformer over raw
    /// waveforms ([`Wav2VecEncoder`]).
    Wav2vec,
}

impl BackboneKind {
    /// The name used in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            BackboneKind::SmallCnn => "small-cnn",
            BackboneKind::Resnet18 => "resnet18",
            BackboneKind::Resnet50 => "resnet50",
            BackboneKind::Transformer => "transformer",
            BackboneKind::Vit => "vit",
            BackboneKind::Mlp => "mlp",
            BackboneKind::Wav2vec => "wav2vec",
        }
    }

    /// Whether the backbone reads token ids.
    pub fn reads_tokens(self) -> bool {
        self == BackboneKind::Transformer
    }

    /// Whether the backbone reads table rows.
    pub fn reads_rows(self) -> bool {
        self == BackboneKind::Mlp
    }

    /// Whether the backbone reads waveforms.
    pub fn reads_audio(self) -> bool {
        self == BackboneKind::Wav2vec
    }

    /// Whether the backbone can start from an image checkpoint (timm, torchvision or Hugging
    /// Face: [`crate::image_checkpoint`]) and read its input through `backbone.input`.
    pub fn loads_image_checkpoints(self) -> bool {
        matches!(
            self,
            BackboneKind::Resnet18 | BackboneKind::Resnet50 | BackboneKind::Vit
        )
    }

    /// The depth of a ResNet kind.
    pub fn resnet_depth(self) -> Option<ResNetDepth> {
        match self {
            BackboneKind::Resnet18 => Some(ResNetDepth::ResNet18),
            BackboneKind::Resnet50 => Some(ResNetDepth::ResNet50),
            _ => None,
        }
    }
}

/// The backbone section of a run's config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackboneConfig {
    /// "small-cnn", "resnet18", "resnet50", "vit" (images), "transformer" (text), "mlp"
    /// (tables) or "wav2vec" (audio).
    pub kind: BackboneKind,
    /// Layers of the small CNN (kind = "small-cnn").
    pub small_cnn: SmallCnnConfig,
    /// The stem of the ResNets (kind = "resnet18" or "resnet50").
    pub resnet: ResNetConfig,
    /// Shape of the transformer (kind = "transformer"; vocab_size comes from the tokenizer).
    pub transformer: TransformerConfig,
    /// Shape of the vision transformer (kind = "vit"; ViT-Tiny on 4-px patches by default).
    pub vit: VitConfig,
    /// Shape of the table MLP (kind = "mlp"; the column kinds come from the data).
    pub mlp: MlpConfig,
    /// Shape of the wav2vec 2.0 network (kind = "wav2vec").
    pub wav2vec: Wav2VecConfig,
    /// How the transformer's token states are pooled: "mean", "cls" or "last".
    pub pooling: Pooling,
    /// A folder to start the backbone from: for "transformer", a Hugging Face BERT-family
    /// folder (config.json + model.safetensors + tokenizer.json), whose config.json replaces
    /// `transformer`'s shape; for "resnet18", "resnet50" and "vit", an image model's
    /// model.safetensors in timm / torchvision or Hugging Face ViT names (+ config.json),
    /// which sets `resnet.stem` or `vit`'s shape and fills `input`.
    pub pretrained: String,
    /// The pixels an image backbone reads, when not pretext's own: mean, std and resolution
    /// (filled from `pretrained`; saved in the run, so its checkpoints reload without it).
    pub input: InputAdapterConfig,
}

impl Default for BackboneConfig {
    fn default() -> Self {
        BackboneConfig {
            kind: BackboneKind::SmallCnn,
            small_cnn: SmallCnnConfig::default(),
            resnet: ResNetConfig::default(),
            transformer: TransformerConfig::default(),
            vit: VitConfig::default(),
            mlp: MlpConfig::default(),
            wav2vec: Wav2VecConfig::default(),
            pooling: Pooling::Mean,
            pretrained: String::new(),
            input: InputAdapterConfig::default(),
        }
    }
}

impl BackboneConfig {
    /// Width of the representation the backbone built from this config outputs.
    pub fn output_dim(&self) -> i64 {
        match self.kind {
            BackboneKind::SmallCnn => self.small_cnn.widths.last().copied().unwrap_or(0),
            BackboneKind::Resnet18 => ResNetDepth::ResNet18.dim(),
            BackboneKind::Resnet50 => ResNetDepth::ResNet50.dim(),
            BackboneKind::Transformer => self.transformer.hidden_dim,
            BackboneKind::Vit => self.vit.hidden_dim,
            BackboneKind::Mlp => self.mlp.hidden_dim,
            BackboneKind::Wav2vec => self.wav2vec.hidden_dim,
        }
    }
}

/// A built backbone.
#[derive(Debug)]
pub enum Backbone {
    SmallCnn(SmallCnn),
    Resnet(Box<ResNet>),
    Transformer(Box<TextEncoder>),
    Vit(Box<Vit>),
    Mlp(TableMlp),
    Wav2vec(Box<Wav2VecEncoder>),
}

impl Backbone {
    /// The backbone `config` describes for inputs of `input`'s shape, under `path`. Image
    /// backbones that load checkpoints read their images through `config.input`.
    pub fn new(path: &nn::Path, input: &InputSpec, config: &BackboneConfig) -> Backbone {
        let image_input = || InputAdapter::new(&config.input, input, path.device());
        match config.kind {
            BackboneKind::SmallCnn => {
                Backbone::SmallCnn(SmallCnn::new(path, input.channels, &config.small_cnn))
            }
            BackboneKind::Resnet18 | BackboneKind::Resnet50 => {
                Backbone::Resnet(Box::new(ResNet::new(
                    path,
                    config.kind.resnet_depth().expect("a ResNet kind"),
                    &config.resnet,
                    image_input(),
                )))
            }
            BackboneKind::Transformer => {
                let transformer = TransformerConfig {
                    vocab_size: input.vocab_size,
                    ..config.transformer.clone()
                };
                Backbone::Transformer(Box::new(TextEncoder {
                    transformer: Transformer::new(path, &transformer),
                    pooling: config.pooling,
                    pad_id: input.pad_id,
                }))
            }
            BackboneKind::Vit => {
                Backbone::Vit(Box::new(Vit::with_input(path, image_input(), &config.vit)))
            }
            BackboneKind::Mlp => Backbone::Mlp(TableMlp::new(path, &config.mlp)),
            BackboneKind::Wav2vec => {
                Backbone::Wav2vec(Box::new(Wav2VecEncoder::new(path, &config.wav2vec)))
            }
        }
    }

    /// The wav2vec 2.0 network inside, for the method that masks its frames.
    pub fn wav2vec(&self) -> Option<&Wav2VecEncoder> {
        match self {
            Backbone::Wav2vec(network) => Some(network),
            _ => None,
        }
    }

    /// The ResNet inside (its depth, stem and input, for exports).
    pub fn resnet(&self) -> Option<&ResNet> {
        match self {
            Backbone::Resnet(network) => Some(network),
            _ => None,
        }
    }

    /// The vision transformer inside, for methods that need patch tokens (MAE).
    pub fn vit(&self) -> Option<&Vit> {
        match self {
            Backbone::Vit(network) => Some(network),
            _ => None,
        }
    }

    /// The transformer inside, for methods that need token states (MLM, causal LM).
    pub fn text(&self) -> Option<&TextEncoder> {
        match self {
            Backbone::Transformer(encoder) => Some(encoder),
            _ => None,
        }
    }
}

/// A transformer over token ids with a pooling rule: the text encoder.
#[derive(Debug)]
pub struct TextEncoder {
    pub transformer: Transformer,
    pub pooling: Pooling,
    pub pad_id: i64,
}

impl TextEncoder {
    /// `[B, T]` ids → token states `[B, T, H]` and the attention mask `[B, T]` (1 = token).
    pub fn states(&self, token_ids: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mask = token_ids.ne(self.pad_id).to_kind(Kind::Int64);
        (
            self.transformer.forward_t(token_ids, Some(&mask), train),
            mask,
        )
    }

    /// Token states `[B, T, H]` pooled to `[B, H]`.
    pub fn pool(&self, states: &Tensor, mask: &Tensor) -> Tensor {
        crate::sentence_model::TokenPooling::from(self.pooling).pool(states, mask)
    }
}

impl Encoder for Backbone {
    fn encode(&self, images: &Tensor, train: bool) -> Tensor {
        match self {
            Backbone::SmallCnn(network) => network.encode(images, train),
            Backbone::Resnet(network) => network.encode(images, train),
            Backbone::Transformer(encoder) => {
                let (states, mask) = encoder.states(images, train);
                encoder.pool(&states, &mask)
            }
            Backbone::Vit(network) => network.encode(images, train),
            Backbone::Mlp(network) => network.encode(images, train),
            Backbone::Wav2vec(network) => network.encode(images, train),
        }
    }

    fn dim(&self) -> i64 {
        match self {
            Backbone::SmallCnn(network) => network.dim(),
            Backbone::Resnet(network) => network.dim(),
            Backbone::Transformer(encoder) => encoder.transformer.config.hidden_dim,
            Backbone::Vit(network) => network.dim(),
            Backbone::Mlp(network) => network.dim(),
            Backbone::Wav2vec(network) => network.dim(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn small_cnn_maps_28px_grayscale_to_128_dims() {
        let store = nn::VarStore::new(Device::Cpu);
        let backbone = Backbone::new(
            &store.root(),
            &InputSpec::image(1),
            &BackboneConfig::default(),
        );
        let images = Tensor::randn([4, 1, 28, 28], (Kind::Float, Device::Cpu));
        assert_eq!(backbone.encode(&images, true).size(), vec![4, 128]);
        assert_eq!(backbone.dim(), 128);
    }

    #[test]
    fn resnet18_maps_32px_rgb_to_512_dims_with_11m_parameters() {
        let store = nn::VarStore::new(Device::Cpu);
        let config = BackboneConfig {
            kind: BackboneKind::Resnet18,
            ..Default::default()
        };
        let backbone = Backbone::new(&store.root(), &InputSpec::image(3), &config);
        let images = Tensor::randn([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        assert_eq!(backbone.encode(&images, false).size(), vec![2, 512]);
        let parameters: i64 = store
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        // The CIFAR ResNet-18 has 11,168,832 parameters without its classifier.
        assert_eq!(parameters, 11_168_832);
    }
}

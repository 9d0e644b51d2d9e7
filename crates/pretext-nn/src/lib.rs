//! Building blocks for pretext: backbones (encoders, the transformer and Hugging Face BERT
//! loading), heads, losses, the k-NN classifier, and
//! the untrained state of self-distillation and momentum methods (EMA, negative queue,
//! center).
//!
//! Everything here is a plain `tch` module or a pure tensor function; nothing knows about
//! runs, configs on disk or data loading.

pub mod audio_encoder;
pub mod backbone;
pub mod batch_norm;
pub mod center;
pub mod collective;
pub mod dino_head;
pub mod ema;
pub mod encoder;
pub mod hf_bert;
pub mod image_checkpoint;
pub mod input_adapter;
pub mod knn;
pub mod loss;
pub mod patches;
pub mod precision;
pub mod projector;
pub mod queue;
pub mod resnet;
pub mod sentence_model;
pub mod small_cnn;
pub mod table_mlp;
pub mod transformer;
pub mod vit;
pub mod wav2vec;

pub use audio_encoder::{Wav2VecConfig, Wav2VecEncoder};
pub use backbone::{Backbone, BackboneConfig, BackboneKind, InputSpec, Pooling, TextEncoder};
pub use batch_norm::BatchNorm;
pub use center::Center;
pub use collective::{collective, set_collective, take_collective_error, Collective, RowGather};
pub use dino_head::{DinoHead, DinoHeadConfig};
pub use ema::{cosine_momentum, Ema};
pub use encoder::Encoder;
pub use hf_bert::{load_hf_bert, load_hf_bert_weights, read_hf_bert_config, CheckpointError};
pub use image_checkpoint::{
    load_image_checkpoint, read_image_checkpoint, timm_config, timm_state_dict, ImageArchitecture,
    ImageCheckpoint, ImageCheckpointError,
};
pub use input_adapter::{InputAdapter, InputAdapterConfig};
pub use knn::{knn_classify, KnnConfig};
pub use loss::{
    dino_loss, info_nce, l2_normalize, normalized_mse, nt_xent, nt_xent_share, DinoLossParts,
};
pub use patches::{
    flat_patch_loss, gather_tokens, masked_patch_loss, patchify, random_masking, unpatchify,
    RandomMask,
};
pub use precision::{fp32, full_precision, Precision};
pub use projector::{Projector, ProjectorConfig};
pub use queue::NegativeQueue;
pub use resnet::{ResNet, ResNetConfig, ResNetDepth, ResNetStem};
pub use sentence_model::{
    read_sentence_settings, sentence_transformers_files, SentenceSettings, TokenPooling,
};
pub use small_cnn::{SmallCnn, SmallCnnConfig};
pub use table_mlp::{MlpConfig, TableMlp};
pub use transformer::{mean_pool, KvCache, Transformer, TransformerBlocks, TransformerConfig};
pub use vit::{sincos_2d, sincos_positions, PositionEmbedding, Vit, VitConfig};
pub use wav2vec::{
    contrastive_loss, contrastive_loss_on_device, gumbel_temperature, GumbelQuantizer,
    GumbelQuantizerConfig, Quantized,
};

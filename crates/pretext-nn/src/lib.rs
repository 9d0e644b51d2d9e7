//! Building blocks for pretext: backbones (encoders), heads, losses and the k-NN classifier.
//!
//! Everything here is a plain `tch` module or a pure tensor function; nothing knows about
//! runs, configs on disk or data loading.

pub mod backbone;
pub mod encoder;
pub mod knn;
pub mod loss;
pub mod projector;
pub mod resnet;
pub mod small_cnn;

pub use backbone::{Backbone, BackboneConfig, BackboneKind};
pub use encoder::Encoder;
pub use knn::{knn_classify, KnnConfig};
pub use loss::nt_xent;
pub use projector::{Projector, ProjectorConfig};
pub use resnet::ResNet18;
pub use small_cnn::{SmallCnn, SmallCnnConfig};

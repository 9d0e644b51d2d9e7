//! pretext-data: datasets and loaders for pretext.
//!
//! [`open()`] is the one entry point from a data spec and the `[data]` settings
//! ([`DataConfig`]) to a run's [`Splits`]: it decides the modality and the reader. Reads IDX
//! files and image folders into [`ImageSet`]s ([`load_images`]), embeds a default
//! Fashion-MNIST subset, makes deterministic splits, label subsets and epoch batch plans from
//! seeded streams ([`rng_stream()`]), and builds batches ahead of the model on worker threads
//! ([`Prefetcher`]). Tables (CSV, Parquet) are read by [`table`], text by [`text`] (with a
//! run's tokenizer), WAV audio by [`audio`]; [`logmel`] turns audio clips into log-mel
//! spectrogram features.

pub mod audio;
pub mod batch_plan;
pub mod data_config;
pub mod embedded;
pub mod error;
pub mod idx;
mod idx_naming;
pub mod image_folder;
pub mod image_set;
pub mod logmel;
pub mod open;
pub mod prefetch;
pub mod rng_stream;
pub mod samples;
pub mod source;
pub mod split;
pub mod store;
pub mod table;
pub mod test_data;
pub mod text;
pub mod token_set;

pub use audio::{
    centered_start, fit_length, is_audio_path, list_wav_files, load_audio, load_audio_folder,
    load_audio_labels, load_audio_windows, read_wav, read_wav_bytes, resample, resampled_len,
    AudioOptions, AudioSet, AudioSplits, Waveform, AUDIO_LABELS_FILE,
};
pub use batch_plan::{epoch_permutation, BatchPlan, PERMUTATION_TAG};
pub use data_config::{AugmentPlace, DataConfig, TableConfig};
pub use embedded::{embedded_fashion_mnist, FASHION_MNIST_CLASSES};
pub use error::{panic_message, DataError};
pub use idx::{
    read_idx_images, read_idx_images_bytes, read_idx_labels, read_idx_labels_bytes, read_idx_pair,
    read_idx_pair_bytes, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC,
};
pub use image_folder::{read_image_bytes, read_image_files, read_image_folder};
pub use image_set::{ImageSet, ImageSplits};
pub use logmel::{log_mel_features, log_mel_spectrogram, mel_filterbank, LogMelConfig};
pub use open::{is_table_path, is_text_path, modality, open, DataOptions, OpenedData};
pub use prefetch::Prefetcher;
pub use rng_stream::rng_stream;
pub use samples::{Samples, Splits};
pub use source::{load_images, SourceOptions};
pub use split::{
    parse_label_budget, stratified_folds, stratified_in_training, stratified_split,
    stratified_subset, FOLD_TAG, SPLIT_TAG, SUBSET_TAG,
};
pub use table::{
    load_csv_bytes, load_table, ColumnKind, TableColumn, TableOptions, TableSet, TableSplits,
    TableStats,
};
pub use text::{corpus::read_text_document_bytes, labeled::load_labeled_text_bytes};
pub use text::{
    list_text_files, load_labeled_text, load_labeled_text_splits, load_text_corpus, pack_blocks,
    train_tokenizer, train_tokenizer_on_corpus, LabeledText, LabeledTextSplits, TextCorpus,
    TextDocument, TextTokenizer, TokenizerKind,
};
pub use token_set::{fit_sequence, TokenSet, Vocabulary};

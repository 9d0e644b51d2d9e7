//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::embedding_output::EmbeddingFormat;

/// Self-supervised learning: pretrain an encoder on unlabeled data while logging health
/// signals, then transfer it with few labels.
#[derive(Debug, Parser)]
#[command(name = "pretext", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pretrain an encoder with a self-supervised method; writes a run directory.
    Pretrain(PretrainArgs),
    /// Linear probe and k-NN on frozen features of a run, with few labels.
    Probe(ProbeArgs),
    /// Fine-tune a run's encoder end to end with few labels (small learning rate, warmup,
    /// layer-wise decay, optional freeze-then-unfreeze, early stopping).
    Finetune(FinetuneArgs),
    /// Write the features of a run's encoder, or of a downloaded Hugging Face text model
    /// (--model), for a dataset: .npy, Parquet or JSON Lines.
    Embed(EmbedArgs),
    /// Save a run's encoder for use outside pretext: TorchScript (torch.jit.load, libtorch),
    /// a Hugging Face BERT folder (text) or safetensors weights with a config (images).
    Export(ExportArgs),
    /// Continue a prompt with a run's causal language model (method gpt), streaming the text.
    Generate(GenerateArgs),
    /// Train a tokenizer (BPE, WordPiece or character-level) on a text corpus.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// Judge a run's health signals (collapse, too-easy pretext task, augmentation strength,
    /// ...) and say what to try.
    Health(HealthArgs),
    /// Pretrain on the embedded Fashion-MNIST subset (SimCLR unless --method), then probe
    /// beside raw pixels and a random-init encoder: the whole loop in minutes on a laptop CPU.
    Quickstart(QuickstartArgs),
    /// Compare self-supervised pretraining with every baseline across label budgets and
    /// seeds: Markdown, CSV and JSON tables, PNG/SVG plots and an HTML report (resumable).
    Study(StudyArgs),
    /// Benchmark a SimCLR step, a SimCLR epoch, each method's step and the text and audio
    /// models' steps beside the PyTorch reference scripts.
    Bench(BenchArgs),
    /// Show what an MAE run reconstructs: a PNG grid of original / masked / reconstructed
    /// images.
    Reconstruct(ReconstructArgs),
    /// Show where a ViT run looks: a PNG of the last layer's [CLS] attention per head, each map
    /// stretched to its own range and overlaid on the image (DINO's attention maps).
    Attention(AttentionArgs),
}

/// The pictures a visualization command shows, and where it writes them.
#[derive(Debug, Args)]
pub struct PictureArgs {
    /// Run directory written by `pretext pretrain`.
    pub run: PathBuf,
    /// PNG/JPEG files to show, resized to the run's image size (and converted to its
    /// channels); none: the first --count images of the held-out split.
    #[arg(value_name = "IMAGES")]
    pub images: Vec<PathBuf>,
    /// Output PNG file.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// How many held-out images to show when no IMAGES are given.
    #[arg(long, default_value_t = 8)]
    pub count: usize,
    /// Take the held-out images from this data instead of the run's (same forms as pretrain
    /// --data).
    #[arg(long, value_name = "PATH")]
    pub data: Option<String>,
    /// Each pixel of the images is drawn as a SCALE × SCALE square.
    #[arg(long, default_value_t = 4)]
    pub scale: u32,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub picture: PictureArgs,
    /// Share of the patches to hide (default: the run's method.mae.mask_ratio).
    #[arg(long)]
    pub mask_ratio: Option<f64>,
    /// Seed of the random patch masks.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct AttentionArgs {
    #[command(flatten)]
    pub picture: PictureArgs,
}

#[derive(Debug, Args)]
pub struct PretrainArgs {
    /// TOML file with any of the options printed by --print-config.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print every option with its value (defaults, then --config, then flags) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Method: simclr, moco, byol, dino, rotation, jigsaw, mae (images; mae needs --backbone
    /// vit), bert-mlm or gpt (text), vime, scarf or corruption (tables), wav2vec2 (audio)
    /// (method.name).
    #[arg(long, value_name = "NAME")]
    pub method: Option<String>,
    /// Data: "embedded", a folder of IDX files, an IDX images file, an image folder with class
    /// subfolders; text: a labeled .tsv/.jsonl file or a .txt file or folder; a table: a .csv
    /// file with a header and a label column; audio: a folder with a labels.csv
    /// (file,label[,split]) or a folder of .wav files (data.path).
    #[arg(long, value_name = "PATH")]
    pub data: Option<String>,
    /// Run directory to create.
    #[arg(long, value_name = "DIR", required_unless_present_any = ["resume", "print_config"])]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR from its newest complete checkpoint.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["out", "config", "overwrite"])]
    pub resume: Option<PathBuf>,
    /// Replace --out if it already holds a run.
    #[arg(long)]
    pub overwrite: bool,
    /// Backbone: small-cnn, resnet18, resnet50 or vit (images), transformer (text), mlp (tables),
    /// wav2vec (audio) (backbone.kind).
    #[arg(long, value_name = "NAME")]
    pub backbone: Option<String>,
    /// Optimizer steps (train.steps); replaces the epochs of a --config file.
    #[arg(long, value_name = "N")]
    pub steps: Option<u64>,
    /// Passes over the training split; overrides --steps (train.epochs).
    #[arg(long, value_name = "E")]
    pub epochs: Option<f64>,
    /// Examples per step (train.batch_size); under torchrun or SLURM the global batch, shared
    /// evenly by the processes.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Peak learning rate (optimizer.lr).
    #[arg(long, value_name = "LR")]
    pub lr: Option<f64>,
    /// Seed of initialization, batches and augmentations (seed).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Resize images to N×N pixels (data.image_size; 0 keeps the native size).
    #[arg(long, value_name = "N")]
    pub image_size: Option<usize>,
    /// Data worker threads (data.workers).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// auto, cpu, cuda or cuda:N (device).
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,
    /// fp32, or bf16: the forward pass under bfloat16 autocast, weights, optimizer state and
    /// losses in float32 (train.precision).
    #[arg(long, value_name = "P", value_parser = ["fp32", "bf16"])]
    pub precision: Option<String>,
    /// Set any option by its dotted key, e.g. --set views.flip_probability=0.0 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Run directory written by `pretext pretrain`.
    pub run: PathBuf,
    /// Labeled training examples: a count (600), a share (1%), or several budgets separated
    /// by commas (120,300,600: every encoder reads the data once).
    #[arg(long, default_value = "600")]
    pub labels: String,
    /// Seed of the stratified labeled subset.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Probe on this data instead of the run's (same image size and channels).
    #[arg(long, value_name = "PATH")]
    pub data: Option<String>,
    /// Skip the baseline rows (raw pixels, and a random-init encoder of the same architecture).
    #[arg(long)]
    pub no_baselines: bool,
    /// Also the classic baselines: logistic regression (linfa) on the raw features, on their
    /// principal components and on their distances to k-means centroids — PCA and k-means
    /// fitted on the unlabeled training split.
    #[arg(long, conflicts_with = "no_baselines")]
    pub classic: bool,
    /// Only the k-NN columns, on the device: no linear probe and no cross-validation (quick,
    /// for following accuracy along training).
    #[arg(long, conflicts_with = "classic")]
    pub knn_only: bool,
    /// Where to write the JSON report [default: RUN/probe-<labels>-seed<seed>.json, with
    /// -step<N> before .json under --step].
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Probe the checkpoint of this step instead of the newest, or of several steps
    /// separated by commas (450,900,1350: the data is read once; the baselines, if any, are
    /// probed with the first). train.keep_checkpoints sets how many a run keeps.
    #[arg(long, value_name = "N", value_delimiter = ',')]
    pub step: Vec<u64>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct FinetuneArgs {
    /// Run directory written by `pretext pretrain`.
    pub run: PathBuf,
    /// Labeled training examples: a count (600) or a share (1%); the probe's subset.
    #[arg(long, default_value = "600")]
    pub labels: String,
    /// Seed of the labeled subset, validation split, head and batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fine-tune on this data instead of the run's.
    #[arg(long, value_name = "PATH")]
    pub data: Option<String>,
    /// Passes over the labeled examples (early stopping may end sooner).
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Examples per step: the global batch, split among the processes of a torchrun or
    /// srun launch (data parallel; the results are those of one process, to float rounding).
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Peak learning rate of the head; each encoder layer gets it times its decay factor
    /// [default: 3e-4; 1e-3 with --from-scratch, whose random encoder has nothing to protect].
    #[arg(long)]
    pub lr: Option<f64>,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.05)]
    pub weight_decay: f64,
    /// Layer-wise learning-rate decay (1 = the same rate for every layer).
    #[arg(long, default_value_t = 0.75)]
    pub layer_decay: f64,
    /// Start the head at random instead of from the linear probe on the frozen features
    /// (by default fine-tuning starts where the probe ends: linear probe, then fine-tune).
    #[arg(long)]
    pub no_probe_init: bool,
    /// Keep whatever fine-tuning ends with, even where held-out labeled examples say the
    /// linear probe it started from was better (by default the probe is kept then: it is
    /// epoch 0 of early stopping, or, with too few labels for a validation split, 3-fold
    /// cross-validation on them chooses the epochs from 0 up).
    #[arg(long)]
    pub no_probe_fallback: bool,
    /// Train on one augmented view of each image per epoch, drawn with the run's own
    /// `views` settings [default: on with --from-scratch, off when fine-tuning a pretrained
    /// encoder, which does better on the images as they are].
    #[arg(long, conflicts_with = "no_augment")]
    pub augment: bool,
    /// Train on the images as they are, also with --from-scratch.
    #[arg(long)]
    pub no_augment: bool,
    /// Choose the learning rate, weight decay, epochs and, for images, whether to train on
    /// the run's views by 3-fold cross-validation on the labeled examples (lr 1e-3/3e-3 ×
    /// weight decay 5e-4/0.05 × views or not; --augment or --no-augment fixes the views),
    /// then train on all of them; --lr and --weight-decay are then ignored. What the study
    /// does for training from scratch.
    #[arg(long)]
    pub cross_validate: bool,
    /// Train the head alone on the frozen encoder for this many epochs first.
    #[arg(long, default_value_t = 0)]
    pub freeze_epochs: usize,
    /// Stop after this many epochs without a better validation accuracy.
    #[arg(long, default_value_t = 8)]
    pub patience: usize,
    /// Train the same architecture from random initialization (the supervised baseline).
    #[arg(long)]
    pub from_scratch: bool,
    /// Fine-tune the downloaded checkpoint the run started from (backbone.pretrained), as
    /// downloaded, instead of the run's latest checkpoint.
    #[arg(long, conflicts_with = "from_scratch")]
    pub from_pretrained: bool,
    /// Rounds of self-training (the semi-supervised baseline, usually with --from-scratch):
    /// unlabeled training examples predicted with confidence >= --pseudo-threshold join the
    /// labeled ones with those pseudo-labels, and training starts again.
    #[arg(long, value_name = "ROUNDS", default_value_t = 0)]
    pub self_train: usize,
    /// Softmax probability a prediction needs to become a pseudo-label.
    #[arg(long, value_name = "P", default_value_t = 0.95)]
    pub pseudo_threshold: f64,
    /// Where to write the JSON report [default: RUN/finetune-<labels>-seed<seed>.json;
    /// scratch-…, finetune-pretrained-… and self-train-… for the other starts].
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// RUN DATA: a run directory written by `pretext pretrain` and the data to embed (same
    /// forms as pretrain --data). With --model, DATA alone.
    #[arg(value_name = "RUN_OR_DATA", num_args = 1..=2, required = true)]
    pub inputs: Vec<String>,
    /// Embed with a downloaded Hugging Face BERT-family folder (config.json,
    /// model.safetensors, tokenizer.json; pooling and normalization from its
    /// sentence-transformers files when present, else the mean) instead of a run; DATA is a
    /// .txt (one text per line), .tsv or .jsonl file, embedded in file order.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Output file: float32 [N, D] embeddings (.npy, with labels where known in
    /// <stem>.labels.npy), or rows with an id column (.parquet, .jsonl).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    /// Output format; by default the output's extension decides (.parquet, .jsonl, else
    /// npy).
    #[arg(long, value_enum)]
    pub format: Option<EmbeddingFormat>,
    /// L2-normalize every embedding (with --model, on already when the model's
    /// modules.json ends with a Normalize module).
    #[arg(long)]
    pub normalize: bool,
    /// With --model: the most tokens read of a text, special tokens included (default: the
    /// model's max_seq_length, else its max_position_embeddings). Longer texts lose their
    /// end, and a notice says how many.
    #[arg(long, value_name = "TOKENS")]
    pub max_length: Option<usize>,
    /// Samples encoded at once.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Which split of a run's data: train, test or all (train then test).
    #[arg(long, default_value = "all")]
    pub split: String,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Run directory written by `pretext pretrain`.
    pub run: PathBuf,
    /// torchscript: the encoder with its input normalization, traced by libtorch, raw inputs
    /// in (uint8 pixels, token ids, table rows, waveforms); hf: a Hugging Face BERT folder
    /// with tokenizer and sentence-transformers pooling (BERT-shaped text transformers);
    /// safetensors: image backbone weights (timm names where they match) and a config.json.
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Output: a file for torchscript (a <stem>.json beside it describes the input), a
    /// folder for hf and safetensors.
    #[arg(short, long, value_name = "PATH")]
    pub output: PathBuf,
    /// The run's data (default: what it was trained on): it gives the input shape, and
    /// torchscript is checked against the run's encoder on its first samples.
    #[arg(long, value_name = "DATA")]
    pub data: Option<String>,
}

/// What `pretext export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Torchscript,
    Hf,
    Safetensors,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Run directory of a `pretext pretrain --method gpt` run.
    pub run: PathBuf,
    /// Text to continue.
    #[arg(long)]
    pub prompt: String,
    /// Tokens to generate.
    #[arg(long, default_value_t = 200)]
    pub max_tokens: usize,
    /// Sampling temperature (0 = always the most likely token).
    #[arg(long, default_value_t = 0.8)]
    pub temperature: f64,
    /// Sample among the k most likely tokens only (0 = all).
    #[arg(long, default_value_t = 50)]
    pub top_k: usize,
    /// Sample among the most likely tokens holding this much probability (1 = all).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f64,
    /// Seed of the sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Subcommand)]
pub enum TokenizerCommand {
    /// Train a tokenizer on a corpus and write it as a Hugging Face tokenizer.json.
    Train(crate::tokenizer_cmd::TokenizerTrainArgs),
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Run directory written by `pretext pretrain` (finished or still running).
    pub run: PathBuf,
    /// Print the verdicts as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `pretext study`.
#[derive(Debug, Args)]
#[command(
    after_help = "With no --config: SimCLR on the embedded Fashion-MNIST subset at 1%, 5%, \
10% and 100% labels, seeds 0, 1, 2, against raw pixels, PCA, k-means, the random-init encoder, \
training from scratch and self-training. `--print-config` writes out every setting of a study file.\n\n\
A killed study continues where it stopped when run again with the same --out: finished \
pretraining, probes and fine-tunings are reused, an interrupted pretraining resumes from its \
last checkpoint."
)]
pub struct StudyArgs {
    /// Study file (TOML): labels, seeds, methods, baselines, evaluations, [pretrain] and
    /// [finetune] settings.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Study directory: pretraining runs, one file per measured cell, tables, plots and
    /// report.html.
    #[arg(long, default_value = "runs/study")]
    pub out: PathBuf,
    /// auto, cpu, cuda or cuda:N (default: the study file's `device`, else cpu).
    #[arg(long)]
    pub device: Option<String>,
    /// Print the study's settings with every default written out, and exit.
    #[arg(long)]
    pub print_config: bool,
}

#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Run directory (replaced if it holds an earlier quickstart).
    #[arg(long, default_value = "runs/quickstart")]
    pub out: PathBuf,
    /// Method: simclr, moco, byol, dino, rotation or jigsaw.
    #[arg(long, default_value = "simclr")]
    pub method: String,
    /// Optimizer steps of pretraining.
    #[arg(long, default_value_t = 1200)]
    pub steps: u64,
    /// Labeled training images for the probes.
    #[arg(long, default_value = "600")]
    pub labels: String,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Untimed steps before the step benchmark.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed steps of the step benchmark (the median is reported).
    #[arg(long, default_value_t = 10)]
    pub iters: usize,
    /// Fashion-MNIST folder for the epoch benchmark.
    #[arg(long, default_value = "../shared/data/vision/fashion-mnist")]
    pub data: String,
    /// Run this many steps instead of a full epoch (234 steps of 256).
    #[arg(long, value_name = "N")]
    pub epoch_steps: Option<u64>,
    /// Data worker threads, for pretext and for the reference's DataLoader.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Python with torch 2.11 for the reference scripts.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Folder of the reference scripts.
    #[arg(long, default_value = "bench/reference")]
    pub reference_dir: String,
    /// Skip the step benchmark.
    #[arg(long)]
    pub skip_step: bool,
    /// Skip the epoch benchmark.
    #[arg(long)]
    pub skip_epoch: bool,
    /// Also time one training step of each of these image methods ("all" or a
    /// comma-separated list; mae runs on ViT-Tiny/4, the others on the small CNN) beside
    /// bench/reference/method_step.py.
    #[arg(long, value_name = "LIST")]
    pub methods: Option<String>,
    /// Images per step in the method benchmarks.
    #[arg(long, default_value_t = 256)]
    pub method_batch: i64,
    /// Also time a BERT-mini masked-LM step and a character-level GPT step (32 × 128 tokens)
    /// beside bench/reference/text_step.py, and the GPT's generation speed.
    #[arg(long)]
    pub text: bool,
    /// Also time a wav2vec 2.0 pretraining step (the default wav2vec network on one-second
    /// clips at 16 kHz) beside bench/reference/audio_step.py.
    #[arg(long)]
    pub audio: bool,
    /// Clips per step in the audio benchmark.
    #[arg(long, default_value_t = 32)]
    pub audio_batch: i64,
    /// Also time one training step of GPU-sized networks ("all" or some of
    /// simclr-resnet18, mae-vit-s16, bert-base) in each --precision, beside
    /// bench/reference/gpu_step.py, with the GPU memory each held.
    #[arg(long, value_name = "LIST")]
    pub large: Option<String>,
    /// Precisions of the --large benchmarks: fp32, bf16 or both (comma-separated).
    #[arg(long, default_value = "fp32,bf16", value_name = "LIST")]
    pub precision: String,
    /// Images (sequences for BERT) per step in the --large benchmarks (default: 512 for
    /// SimCLR, 128 for MAE and BERT).
    #[arg(long, value_name = "N")]
    pub large_batch: Option<i64>,
    /// Tokens generated in the generation benchmark (at most 255: one context window).
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub generate_tokens: usize,
    /// Also time the all-reduce of N processes on this machine (Gloo on the CPU, NCCL on
    /// CUDA; tensors of 1 MB, 10 MB and one step's gradients of ResNet-18 and ViT-S/16)
    /// beside torch.distributed (bench/reference/allreduce.py); both run under torchrun from
    /// --python. At least 2 on the CPU; on CUDA 1 times NCCL's path with a group of one.
    #[arg(long, value_name = "N")]
    pub allreduce: Option<usize>,
    /// One process of --allreduce (started by torchrun).
    #[arg(long, hide = true)]
    pub allreduce_worker: bool,
    /// Also write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

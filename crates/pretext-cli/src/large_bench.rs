//! `pretext bench --large`: one training step of the networks people pretrain on GPUs —
//! SimCLR on ResNet-18 (2 × 512 views of 3×32×32), MAE on ViT-S/16 (224 px) and BERT-base
//! masked LM (128 tokens) — in fp32 and bf16, beside bench/reference/gpu_step.py, which
//! builds the same networks in PyTorch; with the GPU memory each held.

use std::process::Command;

use anyhow::bail;
use pretext_methods::{MethodName, MethodSetup, StepInputs};
use pretext_nn::{BackboneKind, InputSpec, Precision, TransformerConfig, VitConfig};
use pretext_train::PretrainConfig;
use tch::{Device, Kind, Tensor};

use crate::method_bench::{build_method, median_step_seconds};
use crate::text_bench::masked_lm_inputs;

/// The benchmarked networks (their names are gpu_step.py's `--model`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LargeModel {
    /// SimCLR (temperature 0.5, the default projector) on ResNet-18 with the CIFAR stem.
    SimclrResnet18,
    /// MAE (75% masked, the default decoder) on ViT-S/16: 12 blocks of 384, 6 heads.
    MaeVitS16,
    /// BERT masked LM on BERT-base: 12 post-LN blocks of 768, 12 heads, vocabulary 30 522.
    BertBase,
}

const ALL: [LargeModel; 3] = [
    LargeModel::SimclrResnet18,
    LargeModel::MaeVitS16,
    LargeModel::BertBase,
];

/// Tokens per sequence of the BERT-base benchmark.
const BERT_SEQUENCE: i64 = 128;

impl LargeModel {
    pub fn name(self) -> &'static str {
        match self {
            LargeModel::SimclrResnet18 => "simclr-resnet18",
            LargeModel::MaeVitS16 => "mae-vit-s16",
            LargeModel::BertBase => "bert-base",
        }
    }

    /// Images (or sequences) per step unless `--large-batch` says otherwise.
    pub fn default_batch(self) -> i64 {
        match self {
            LargeModel::SimclrResnet18 => 512,
            LargeModel::MaeVitS16 | LargeModel::BertBase => 128,
        }
    }

    pub fn describe(self, batch: i64) -> String {
        match self {
            LargeModel::SimclrResnet18 => {
                format!("SimCLR step, ResNet-18 (CIFAR stem), 2x{batch} views of 3x32x32")
            }
            LargeModel::MaeVitS16 => {
                format!("MAE step, ViT-S/16, {batch} images of 3x224x224, 75% masked")
            }
            LargeModel::BertBase => {
                format!("BERT-base masked-LM step, {batch}x{BERT_SEQUENCE} tokens")
            }
        }
    }

    /// The run config `pretext pretrain` would use for this network.
    fn config(self) -> PretrainConfig {
        let mut config = PretrainConfig::default();
        match self {
            LargeModel::SimclrResnet18 => {
                config.method.name = MethodName::Simclr;
                config.backbone.kind = BackboneKind::Resnet18;
            }
            LargeModel::MaeVitS16 => {
                config.method.name = MethodName::Mae;
                config.backbone.kind = BackboneKind::Vit;
                config.backbone.vit = VitConfig {
                    patch_size: 16,
                    hidden_dim: 384,
                    layers: 12,
                    heads: 6,
                    mlp_dim: 1536,
                    ..VitConfig::default()
                };
            }
            LargeModel::BertBase => {
                config.method.name = MethodName::BertMlm;
                config.backbone.kind = BackboneKind::Transformer;
                config.backbone.transformer = TransformerConfig {
                    vocab_size: 30_522,
                    max_positions: 512,
                    type_vocab_size: 2,
                    hidden_dim: 768,
                    layers: 12,
                    heads: 12,
                    mlp_dim: 3072,
                    dropout: 0.1,
                    layer_norm_eps: 1e-12,
                    norm_first: false,
                    causal: false,
                };
            }
        }
        config
    }

    fn setup(self) -> MethodSetup {
        let (input, image_size) = match self {
            LargeModel::SimclrResnet18 => (InputSpec::sized_image(3, 32), 32),
            LargeModel::MaeVitS16 => (InputSpec::sized_image(3, 224), 224),
            LargeModel::BertBase => (InputSpec::tokens(30_522, 0), 0),
        };
        MethodSetup {
            input,
            image_size,
            train_len: 60_000,
            total_steps: 1000,
        }
    }
}

/// `list`: "all" or comma-separated names.
pub fn parse_large(list: &str) -> anyhow::Result<Vec<LargeModel>> {
    if list.trim() == "all" {
        return Ok(ALL.to_vec());
    }
    list.split(',')
        .map(|name| {
            let name = name.trim();
            ALL.into_iter()
                .find(|model| model.name() == name)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--large: unknown network `{name}`; expected all or some of {}",
                        ALL.map(LargeModel::name).join(", ")
                    )
                })
        })
        .collect()
}

/// `list`: comma-separated precisions (fp32, bf16).
pub fn parse_precisions(list: &str) -> anyhow::Result<Vec<Precision>> {
    list.split(',')
        .map(|name| match name.trim() {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            other => bail!("--precision: unknown precision `{other}`; expected fp32 or bf16"),
        })
        .collect()
}

/// One measured step.
#[derive(Clone, Debug)]
pub struct LargeStep {
    pub median_s: f64,
    /// Trained parameters of the method (encoder and heads).
    pub parameters: i64,
    /// Memory in use on the GPU right after the timed steps (nvidia-smi), when on CUDA.
    pub gpu_used_mb: Option<f64>,
}

/// Times one training step of `model` on fixed random inputs (seed 0) in `precision`.
pub fn large_step(
    model: LargeModel,
    precision: Precision,
    device: Device,
    batch: i64,
    warmup: usize,
    iters: usize,
) -> anyhow::Result<LargeStep> {
    let config = model.config();
    let (store, _state, mut method) = build_method(&config, model.setup(), device);
    let parameters = store
        .trainable_variables()
        .iter()
        .map(Tensor::numel)
        .sum::<usize>() as i64;
    let image = |side: i64| Tensor::randn([batch, 3, side, side], (Kind::Float, device));
    let inputs = match model {
        LargeModel::SimclrResnet18 => StepInputs {
            views: vec![image(32), image(32)],
            targets: None,
        },
        LargeModel::MaeVitS16 => StepInputs {
            views: vec![image(224)],
            targets: None,
        },
        LargeModel::BertBase => masked_lm_inputs(30_522, batch, BERT_SEQUENCE, device),
    };
    let median_s = median_step_seconds(
        &store,
        &mut method,
        &inputs,
        device,
        precision,
        warmup,
        iters,
    )?;
    let gpu_used_mb = match device {
        Device::Cuda(index) => gpu_used_mb(index),
        _ => None,
    };
    Ok(LargeStep {
        median_s,
        parameters,
        gpu_used_mb,
    })
}

/// Device-wide memory in use on GPU `index`, as nvidia-smi reports it (None without it).
/// While one process runs at a time, that is the process's CUDA context plus what its
/// caching allocator holds: the peak of what the steps needed.
pub fn gpu_used_mb(index: usize) -> Option<f64> {
    let output = Command::new("nvidia-smi")
        .args([
            "--query-gpu=memory.used",
            "--format=csv,noheader,nounits",
            "-i",
            &index.to_string(),
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_and_unknown_names_are_refused() {
        assert_eq!(parse_large("all").unwrap(), ALL.to_vec());
        assert_eq!(
            parse_large("bert-base, mae-vit-s16").unwrap(),
            vec![LargeModel::BertBase, LargeModel::MaeVitS16]
        );
        let error = parse_large("resnet50").unwrap_err().to_string();
        assert!(
            error.contains("resnet50") && error.contains("simclr-resnet18"),
            "{error}"
        );
        assert_eq!(
            parse_precisions("fp32,bf16").unwrap(),
            vec![Precision::Fp32, Precision::Bf16]
        );
        assert!(parse_precisions("fp16").is_err());
    }

    /// Every network builds and takes a bf16 step on the CPU (batch 2).
    #[test]
    fn every_network_takes_a_bf16_step_on_the_cpu() {
        for model in ALL {
            let step = large_step(model, Precision::Bf16, Device::Cpu, 2, 0, 1).unwrap();
            assert!(
                step.median_s > 0.0 && step.parameters > 1_000_000,
                "{model:?}"
            );
        }
    }
}

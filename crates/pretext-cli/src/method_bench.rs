//! `pretext bench --methods`: one training step of each method (forward, loss, backward,
//! AdamW step, the method's post-step update of EMA / queue / center) on fixed random inputs,
//! beside bench/reference/method_step.py, which builds the same networks in PyTorch. The CNN
//! methods run on the small CNN; MAE runs on its ViT-Tiny/4.

use std::time::Instant;

use anyhow::anyhow;
use pretext_methods::{FrameMasking, Method, MethodName, MethodSetup, StepClock, StepInputs};
use pretext_nn::Precision;
use pretext_train::{Optimizer, OptimizerConfig, OptimizerKind, PretrainConfig};
use tch::{nn::VarStore, Device, Kind, Tensor};

/// The image methods named in `list` ("all": every image method and MAE, or comma-separated
/// names).
pub fn parse_methods(list: &str) -> anyhow::Result<Vec<MethodName>> {
    if list.trim() == "all" {
        return Ok(all_image_methods());
    }
    list.split(',')
        .map(|name| {
            let method = MethodName::parse(name.trim())
                .map_err(|message| anyhow!("--methods: {message}"))?;
            if method.reads_tokens() || method.reads_audio() {
                anyhow::bail!(
                    "--methods: {} is a {} method; the step benchmark covers the image methods ({}); text and audio have --text and --audio",
                    method.as_str(),
                    method.modality(),
                    all_image_methods()
                        .iter()
                        .map(|method| method.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(method)
        })
        .collect()
}

/// The methods the step benchmark covers: the CNN image methods, then MAE.
fn all_image_methods() -> Vec<MethodName> {
    let mut methods = MethodName::IMAGE.to_vec();
    methods.push(MethodName::Mae);
    methods
}

/// Median seconds of one training step of `method` on `batch` random 1×28×28 images, with
/// the default config (small CNN — ViT-Tiny/4 for MAE —, the method's default heads), as
/// method_step.py measures.
pub fn method_step_seconds(
    method: MethodName,
    device: Device,
    batch: i64,
    warmup: usize,
    iters: usize,
) -> anyhow::Result<f64> {
    let mut config = PretrainConfig::default();
    config.method.name = method;
    if method == MethodName::Mae {
        config.backbone.kind = pretext_nn::BackboneKind::Vit;
    }
    // The reference script builds the paper's 7-px, standardized tiles.
    config.method.jigsaw.tile_output = 0;
    config.method.jigsaw.standardize_tiles = true;
    let setup = MethodSetup {
        input: pretext_nn::InputSpec::sized_image(1, 28),
        image_size: 28,
        // Fashion-MNIST's training split: MoCo's queue is then 8192 keys, as in the reference.
        train_len: 60_000,
        total_steps: 1000,
    };
    let (store, _state, mut model) = build_method(&config, setup, device);
    let sizes = config.method.view_recipe(&config.views).view_sizes(28);
    let inputs = StepInputs {
        views: sizes
            .iter()
            .map(|&size| Tensor::randn([batch, 1, size as i64, size as i64], (Kind::Float, device)))
            .collect(),
        targets: (method == MethodName::Jigsaw).then(|| {
            Tensor::randint(
                config.method.jigsaw.permutations as i64,
                [batch],
                (Kind::Int64, device),
            )
        }),
    };
    median_step_seconds(
        &store,
        &mut model,
        &inputs,
        device,
        Precision::Fp32,
        warmup,
        iters,
    )
}

/// Median seconds of one wav2vec 2.0 training step on `batch` random one-second waveforms
/// (16000 samples), with the default wav2vec network and method settings, as
/// bench/reference/audio_step.py measures (which fixes the Gumbel temperature at 2, the
/// value at step 0 here).
pub fn audio_step_seconds(
    device: Device,
    batch: i64,
    warmup: usize,
    iters: usize,
) -> anyhow::Result<f64> {
    let mut config = PretrainConfig::default();
    config.method.name = MethodName::Wav2vec2;
    config.backbone.kind = pretext_nn::BackboneKind::Wav2vec;
    let setup = MethodSetup {
        input: pretext_nn::InputSpec::waveforms(),
        image_size: 16_000,
        train_len: 1494,
        total_steps: 1_000_000,
    };
    let (store, _state, mut model) = build_method(&config, setup, device);
    // The span masks come with the batch, drawn on the host as the waveform recipe does.
    let frames = config.backbone.wav2vec.frames(16_000);
    let masking = FrameMasking {
        spans: config.method.wav2vec2.masking.clone(),
        frames: Some(frames as usize),
    };
    let clips: Vec<usize> = (0..batch as usize).collect();
    let masks = Tensor::from_slice(&masking.masks(0, 0, &clips)).view([batch, frames]);
    let inputs = StepInputs {
        views: vec![
            Tensor::randn([batch, 16_000], (Kind::Float, device)),
            masks.to_device(device),
        ],
        targets: None,
    };
    median_step_seconds(
        &store,
        &mut model,
        &inputs,
        device,
        Precision::Fp32,
        warmup,
        iters,
    )
}

/// The method `config` names, built as `pretrain` builds it from seed 0: its trained
/// variables, its frozen untrained state (EMA targets, queues, centers) and the method.
pub fn build_method(
    config: &PretrainConfig,
    setup: MethodSetup,
    device: Device,
) -> (VarStore, VarStore, Method) {
    tch::manual_seed(0);
    let store = VarStore::new(device);
    let mut state = VarStore::new(device);
    let method = Method::new(&store, &state, setup, &config.backbone, &config.method);
    state.freeze();
    (store, state, method)
}

/// Median seconds of one complete training step of `method` on fixed `inputs`: forward,
/// loss (read back, as the training loop does) in `precision`, backward, AdamW (lr 1e-3, no
/// weight decay) and the method's post-step update; `warmup` untimed steps first.
pub fn median_step_seconds(
    store: &VarStore,
    method: &mut Method,
    inputs: &StepInputs,
    device: Device,
    precision: Precision,
    warmup: usize,
    iters: usize,
) -> anyhow::Result<f64> {
    let optimizer_config = OptimizerConfig {
        kind: OptimizerKind::Adamw,
        lr: 1e-3,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut optimizer = Optimizer::new(store, &optimizer_config);
    let mut times = Vec::with_capacity(iters);
    for step in 0..(warmup + iters) as u64 {
        let clock = StepClock {
            step,
            total_steps: 1000,
        };
        let started = Instant::now();
        let output = precision.run(device, || method.loss(inputs, clock))?;
        let _loss = output.loss.double_value(&[]);
        optimizer.zero_grad()?;
        output.loss.backward();
        optimizer.step(1e-3)?;
        method.after_step(clock, None);
        if device.is_cuda() {
            tch::Cuda::synchronize(0);
        }
        if step as usize >= warmup {
            times.push(started.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: `--methods all` once included the text methods, whose step needs token
    /// targets, and the benchmark panicked.
    #[test]
    fn all_means_the_image_methods_and_text_methods_are_refused() {
        let all = parse_methods("all").unwrap();
        assert_eq!(all[..MethodName::IMAGE.len()], MethodName::IMAGE);
        assert_eq!(all.last(), Some(&MethodName::Mae));
        assert_eq!(
            parse_methods("moco, dino").unwrap(),
            vec![MethodName::Moco, MethodName::Dino]
        );
        let error = parse_methods("simclr,bert-mlm").unwrap_err().to_string();
        assert!(
            error.contains("bert-mlm") && error.contains("text"),
            "{error}"
        );
    }

    /// wav2vec 2.0's span masks arrive with the batch: the audio benchmark's hand-made step
    /// inputs must carry them.
    #[test]
    fn the_audio_step_runs_with_its_span_masks() {
        let seconds = audio_step_seconds(Device::Cpu, 2, 0, 1).unwrap();
        assert!(seconds.is_finite() && seconds > 0.0, "{seconds}");
    }
}

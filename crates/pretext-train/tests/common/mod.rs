//! Data shared by the integration tests of pretext-train: small data of each modality.

// Each test binary uses its own share of these.
#![allow(dead_code)]

use std::path::Path;

use pretext_data::embedded_fashion_mnist;
use pretext_methods::MethodName;
use pretext_train::PretrainConfig;

/// Small data of the method's modality, and the config changes it needs: 200 embedded
/// images (6 steps per epoch: the kill at step 10 falls mid-epoch 1), 200 lines of text, a
/// 200-row table, 64 short clips (8 steps per epoch at the batch of 8).
pub fn data_for(method: MethodName, dir: &Path) -> (pretext_data::Splits, PretrainConfig) {
    let mut config = PretrainConfig::default();
    let path = match method.modality() {
        "images" => {
            let data = embedded_fashion_mnist().unwrap();
            let data = pretext_data::ImageSplits {
                name: data.name,
                train: data.train.subset(&(0..200).collect::<Vec<_>>()),
                test: data.test,
            };
            if method == MethodName::Mae {
                // MAE needs a ViT: a 1-block, 32-wide one.
                config.backbone.kind = pretext_nn::BackboneKind::Vit;
                config.backbone.vit = pretext_nn::VitConfig {
                    hidden_dim: 32,
                    layers: 1,
                    heads: 2,
                    mlp_dim: 64,
                    ..Default::default()
                };
            }
            return (data.into(), config);
        }
        "text" => {
            let words = [
                "the", "morning", "letter", "came", "from", "her", "sister", "who", "was", "never",
                "kind", "to", "any", "man", "in", "town",
            ];
            let lines: String = (0..250)
                .map(|i| {
                    let text: Vec<&str> = (0..12).map(|j| words[(i * 7 + j * j) % 16]).collect();
                    format!("{}\t{}\n", i % 3, text.join(" "))
                })
                .collect();
            let path = dir.join("lines.tsv");
            std::fs::write(&path, lines).unwrap();
            config.backbone.kind = pretext_nn::BackboneKind::Transformer;
            config.backbone.transformer.layers = 1;
            config.data.seq_len = 16;
            config.data.vocab_size = 100;
            path
        }
        "tables" => {
            let rows: String = (0..250)
                .map(|i| {
                    format!(
                        "{},{},{},{}\n",
                        i % 17,
                        (i * 7) % 11,
                        ["a", "b", "c"][i % 3],
                        i % 2
                    )
                })
                .collect();
            let path = dir.join("rows.csv");
            std::fs::write(&path, format!("x,y,kind,label\n{rows}")).unwrap();
            config.backbone.kind = pretext_nn::BackboneKind::Mlp;
            path
        }
        _ => {
            let clips = dir.join("clips");
            std::fs::create_dir(&clips).unwrap();
            let mut labels = String::from("file,label\n");
            for i in 0..80usize {
                let samples: Vec<i16> = (0..4000)
                    .map(|t| (((t * (3 + i % 5)) % 160) as i16 - 80) * 50)
                    .collect();
                write_wav(&clips.join(format!("clip{i}.wav")), &samples);
                labels.push_str(&format!("clip{i}.wav,{}\n", i % 2));
            }
            std::fs::write(clips.join("labels.csv"), labels).unwrap();
            config.backbone.kind = pretext_nn::BackboneKind::Wav2vec;
            config.backbone.wav2vec = pretext_nn::Wav2VecConfig {
                conv_channels: vec![16; 7],
                hidden_dim: 32,
                layers: 1,
                heads: 2,
                mlp_dim: 64,
                position_groups: 4,
                ..Default::default()
            };
            config.data.audio.clip_seconds = 0.15;
            clips
        }
    };
    config.data.path = path.to_str().unwrap().into();
    let data = pretext_data::open(&config.data.path, &config.data_options(None))
        .unwrap()
        .splits;
    (data, config)
}

/// A mono 16-bit PCM WAV file of `samples` at 16 kHz.
fn write_wav(path: &Path, samples: &[i16]) {
    let data_bytes = (samples.len() * 2) as u32;
    let mut bytes = Vec::new();
    bytes.extend(b"RIFF");
    bytes.extend((36 + data_bytes).to_le_bytes());
    bytes.extend(b"WAVEfmt ");
    for field in [16u32, 1 | (1 << 16), 16_000, 32_000, 2 | (16 << 16)] {
        // fmt chunk size; PCM, mono; rate; bytes per second; bytes per frame, bits.
        bytes.extend(field.to_le_bytes());
    }
    bytes.extend(b"data");
    bytes.extend(data_bytes.to_le_bytes());
    bytes.extend(samples.iter().flat_map(|sample| sample.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

/// `pretrain` seeds libtorch's process-wide generator (MAE draws its masks from it): the
/// runs of one test binary take turns.
pub fn one_run_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// 150 SimCLR steps (batch 64) on the first 2000 embedded images with the settings `adjust`
/// changes: every logged loss and the final monitoring k-NN accuracy (on 1000 of them).
pub fn simclr_150_steps(adjust: impl FnOnce(&mut PretrainConfig)) -> (Vec<f64>, f64) {
    let data = embedded_fashion_mnist().unwrap();
    let data: pretext_data::Splits = pretext_data::ImageSplits {
        name: data.name,
        train: data.train.subset(&(0..2000).collect::<Vec<_>>()),
        test: data.test.subset(&(0..16).collect::<Vec<_>>()),
    }
    .into();
    let mut config = PretrainConfig::default();
    config.train.steps = 150;
    config.train.batch_size = 64;
    config.health.knn_every = 150;
    config.health.knn_slice = 1000;
    adjust(&mut config);
    let dir = tempfile::tempdir().unwrap();
    let run = pretext_train::RunDir::new(&dir.path().join("run"));
    run.prepare_new(pretext_train::RunMode::New).unwrap();
    let device = tch::Device::Cpu;
    let mut progress = pretext_train::NoProgress;
    pretext_train::pretrain(&config, &run, None, device, &data, &mut progress).unwrap();
    let records = pretext_train::metrics::read_metrics(&run.metrics_path()).unwrap();
    let losses = records
        .iter()
        .filter_map(|record| record["loss"].as_f64())
        .collect();
    let knn = records
        .iter()
        .rev()
        .find_map(|record| record["knn_accuracy"].as_f64())
        .expect("the last step logs the k-NN accuracy");
    (losses, knn)
}

/// A progress sink that keeps the messages `pretrain` prints (live warnings, skipped steps).
#[derive(Default)]
pub struct Messages(pub Vec<String>);

impl pretext_train::ProgressSink for Messages {
    fn started(&mut self, _: u64, _: u64) {}
    fn step(&mut self, _: &pretext_train::StepReport) {}
    fn message(&mut self, text: &str) {
        self.0.push(text.to_string());
    }
    fn finished(&mut self) {}
}

//! Every method trains with every backbone: a few real steps on the embedded data, finite
//! losses, a checkpoint with the method's state, and an encoder of the backbone's width.

use pretext_data::embedded_fashion_mnist;
use pretext_methods::MethodName;
use pretext_nn::{BackboneKind, Encoder};
use pretext_train::{pretrain, Model, NoProgress, PretrainConfig, RunDir, RunMode};
use tch::Device;

#[test]
fn every_method_trains_with_the_small_cnn_and_resnet18() {
    let data = embedded_fashion_mnist().unwrap();
    let data = pretext_data::ImageSplits {
        name: data.name,
        train: data.train.subset(&(0..64).collect::<Vec<_>>()),
        test: data.test.subset(&(0..16).collect::<Vec<_>>()),
    };
    let data: pretext_data::Splits = data.into();
    let dir = tempfile::tempdir().unwrap();
    for backbone in [BackboneKind::SmallCnn, BackboneKind::Resnet18] {
        for method in MethodName::IMAGE {
            let mut config = PretrainConfig::default();
            config.method.name = method;
            config.backbone.kind = backbone;
            config.train.batch_size = 8;
            config.train.steps = 2;
            config.health.every = 1;
            config.health.knn_every = 0;
            let name = format!("{}-{}", method.as_str(), backbone.as_str());
            let run = RunDir::new(&dir.path().join(&name));
            run.prepare_new(RunMode::New).unwrap();
            let outcome = pretrain(&config, &run, None, Device::Cpu, &data, &mut NoProgress)
                .unwrap_or_else(|error| panic!("{name}: {error}"));
            assert!(
                outcome.last_loss.is_finite(),
                "{name}: loss {}",
                outcome.last_loss
            );
            assert_eq!(outcome.nonfinite_steps, 0, "{name}");
            let model = Model::new(&config, &data.train, Device::Cpu);
            assert_eq!(
                model.method.encoder().dim(),
                config.backbone.output_dim(),
                "{name}"
            );
        }
    }
}

//! `pretext embed`: features of a run's encoder as .npy.

use std::path::Path;

use anyhow::bail;
use npyz::WriterBuilder;
use pretext_data::Samples;
use pretext_eval::encode_samples;
use pretext_train::RunDir;

use crate::args::EmbedArgs;
use crate::cuda;
use crate::probe::latest_checkpoint;
use crate::run_data::open_for_run;
use pretext_eval::load_model;

pub fn run(args: &EmbedArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let config = run.read_config()?;
    let checkpoint = latest_checkpoint(&run)?;
    let device = cuda::device(&args.device)?;
    let data = open_for_run(&run, &config, Some(&args.data))?;
    let sets: Vec<&Samples> = match args.split.as_str() {
        "train" => vec![&data.train],
        "test" => vec![&data.test],
        "all" => vec![&data.train, &data.test],
        other => bail!("--split {other}: expected train, test or all"),
    };
    for (split, set) in [("train", &data.train), ("test", &data.test)] {
        if set.is_empty() && sets.iter().any(|chosen| std::ptr::eq(*chosen, set)) {
            let other = if split == "train" { "test" } else { "train" };
            bail!(
                "{}: the {split} split is empty ({} training and {} held-out samples); embed --split {other}",
                args.data,
                data.train.len(),
                data.test.len()
            );
        }
    }
    let model = load_model(&config, &checkpoint, &data.train, device)?;
    let encoder = model.method.encoder();
    let features: Vec<tch::Tensor> = sets
        .iter()
        .map(|set| encode_samples(encoder, set, device, 256))
        .collect();
    let features = tch::Tensor::cat(&features, 0)
        .to_kind(tch::Kind::Float)
        .contiguous();
    let shape = [features.size()[0] as u64, features.size()[1] as u64];
    let values = Vec::<f32>::try_from(features.flatten(0, -1))?;
    write_npy(&args.output, &shape, values)?;
    eprintln!(
        "wrote {} ({} x {} float32)",
        args.output.display(),
        shape[0],
        shape[1]
    );
    if sets.iter().all(|set| set.labels().is_some()) {
        let labels: Vec<i64> = sets
            .iter()
            .flat_map(|set| {
                set.labels()
                    .expect("checked above")
                    .iter()
                    .map(|&label| i64::from(label))
            })
            .collect();
        let labels_path = args.output.with_extension("labels.npy");
        write_npy(&labels_path, &[labels.len() as u64], labels)?;
        eprintln!("wrote {}", labels_path.display());
    }
    Ok(())
}

fn write_npy<T: npyz::AutoSerialize>(
    path: &Path,
    shape: &[u64],
    values: Vec<T>,
) -> anyhow::Result<()> {
    // Through a temporary file: a full disk leaves an earlier file of that name as it was.
    pretext_train::write_atomic_with(path, |file| {
        let mut writer = npyz::WriteOptions::new()
            .default_dtype()
            .shape(shape)
            .writer(file)
            .begin_nd()?;
        writer.extend(values)?;
        writer.finish()
    })?;
    Ok(())
}

//! `pretext embed`: the features of a run's encoder for a dataset (or, with `--model`, of a
//! downloaded Hugging Face text model: `embed_model`), as .npy, Parquet or JSON Lines.

use std::path::Path;

use anyhow::bail;
use pretext_data::Samples;
use pretext_eval::load_model;
use pretext_methods::samples_to_tensor;
use pretext_nn::{l2_normalize, Encoder};
use pretext_train::RunDir;

use crate::args::EmbedArgs;
use crate::cuda;
use crate::embedding_output::{write_embeddings, EmbeddingFormat, Embeddings};
use crate::probe::latest_checkpoint;
use crate::progress::ItemProgress;
use crate::run_data::open_for_run;

pub fn run(args: &EmbedArgs) -> anyhow::Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    match (&args.model, args.inputs.as_slice()) {
        (Some(model), [data]) => crate::embed_model::run(args, model, Path::new(data)),
        (Some(model), [run, _]) => bail!(
            "--model {} embeds DATA alone; drop the run directory `{run}` (or drop --model to embed with the run)",
            model.display()
        ),
        (None, [run, data]) => embed_with_run(args, Path::new(run), data),
        (None, _) => bail!(
            "expected a run directory and the data to embed (pretext embed RUN DATA -o FILE), or --model DIR with the data alone"
        ),
        (Some(_), _) => unreachable!("clap takes one or two inputs"),
    }
}

fn embed_with_run(args: &EmbedArgs, run: &Path, data_path: &str) -> anyhow::Result<()> {
    let run = RunDir::new(run);
    let config = run.read_config()?;
    let checkpoint = latest_checkpoint(&run)?;
    let device = cuda::device(&args.device)?;
    let data = open_for_run(&run, &config, Some(data_path))?;
    let sets: Vec<(&str, &Samples)> = match args.split.as_str() {
        "train" => vec![("train", &data.train)],
        "test" => vec![("test", &data.test)],
        "all" => vec![("train", &data.train), ("test", &data.test)],
        other => bail!("--split {other}: expected train, test or all"),
    };
    for (split, set) in &sets {
        if set.is_empty() {
            let other = if *split == "train" { "test" } else { "train" };
            bail!(
                "{data_path}: the {split} split is empty ({} training and {} held-out samples); embed --split {other}",
                data.train.len(),
                data.test.len()
            );
        }
    }
    let model = load_model(&config, &checkpoint, &data.train, device)?;
    let encoder = model.method.encoder();
    let total: usize = sets.iter().map(|(_, set)| set.len()).sum();
    let mut progress = ItemProgress::new("samples", total as u64);
    let mut values = Vec::with_capacity(total * encoder.dim() as usize);
    let mut ids = Vec::with_capacity(total);
    let _no_grad = tch::no_grad_guard();
    for (split, set) in &sets {
        let indices: Vec<usize> = (0..set.len()).collect();
        for chunk in indices.chunks(args.batch_size) {
            let mut features = encoder
                .encode(&samples_to_tensor(set, chunk, device), false)
                .to_kind(tch::Kind::Float);
            if args.normalize {
                features = l2_normalize(&features);
            }
            values.extend(Vec::<f32>::try_from(
                features.to_device(tch::Device::Cpu).flatten(0, -1),
            )?);
            ids.extend(chunk.iter().map(|index| format!("{split}/{index}")));
            progress.advance(chunk.len() as u64);
        }
    }
    progress.finish();
    let labels = sets.iter().all(|(_, set)| set.labels().is_some()).then(|| {
        sets.iter()
            .flat_map(|(_, set)| {
                set.labels()
                    .expect("checked above")
                    .iter()
                    .map(|&label| i64::from(label))
            })
            .collect()
    });
    let embeddings = Embeddings {
        values,
        dim: encoder.dim() as usize,
        ids,
        labels,
        texts: None,
    };
    report(args, &embeddings, args.normalize)
}

/// Writes the embeddings where and as `args` asks and says what was written.
pub fn report(args: &EmbedArgs, embeddings: &Embeddings, normalized: bool) -> anyhow::Result<()> {
    let format = EmbeddingFormat::for_output(args.format, &args.output);
    let written = write_embeddings(&args.output, format, embeddings)?;
    eprintln!(
        "wrote {} ({} x {} float32{})",
        args.output.display(),
        embeddings.rows(),
        embeddings.dim,
        if normalized { ", L2-normalized" } else { "" }
    );
    for extra in &written[1..] {
        eprintln!("wrote {}", extra.display());
    }
    Ok(())
}

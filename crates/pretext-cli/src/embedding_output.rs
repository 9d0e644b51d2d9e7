//! Where `pretext embed` writes: `.npy` (float32 `[N, D]`, labels beside it as
//! `<stem>.labels.npy`), Parquet (an `id` column, `label` and `text` when known, and
//! `embedding` as a fixed-size list of float32 — what vector databases ingest) or JSON Lines
//! (one object per row with the same fields). Every file is written through a temporary
//! file, so a full disk leaves an earlier file of that name as it was.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::builder::{FixedSizeListBuilder, Float32Builder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use clap::ValueEnum;
use npyz::WriterBuilder;

/// The file format of an embedding output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EmbeddingFormat {
    Npy,
    Parquet,
    Jsonl,
}

impl EmbeddingFormat {
    /// The format asked for, or else the one the output's extension names (npy otherwise).
    pub fn for_output(asked: Option<EmbeddingFormat>, output: &Path) -> EmbeddingFormat {
        asked.unwrap_or_else(|| {
            match output
                .extension()
                .and_then(|extension| extension.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("parquet") => EmbeddingFormat::Parquet,
                Some("jsonl") => EmbeddingFormat::Jsonl,
                _ => EmbeddingFormat::Npy,
            }
        })
    }
}

/// Embeddings and what identifies each row.
pub struct Embeddings {
    /// Row-major `[rows, dim]`.
    pub values: Vec<f32>,
    pub dim: usize,
    /// One id per row.
    pub ids: Vec<String>,
    /// The class code of every row, when all are labeled.
    pub labels: Option<Vec<i64>>,
    /// The embedded texts, when the input was text read from a file.
    pub texts: Option<Vec<String>>,
}

impl Embeddings {
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    fn row(&self, index: usize) -> &[f32] {
        &self.values[index * self.dim..(index + 1) * self.dim]
    }
}

/// Writes `embeddings` to `path` as `format`; returns the paths written.
pub fn write_embeddings(
    path: &Path,
    format: EmbeddingFormat,
    embeddings: &Embeddings,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    debug_assert_eq!(embeddings.values.len(), embeddings.rows() * embeddings.dim);
    match format {
        EmbeddingFormat::Npy => {
            let shape = [embeddings.rows() as u64, embeddings.dim as u64];
            write_npy(path, &shape, embeddings.values.iter().copied())?;
            let mut written = vec![path.to_path_buf()];
            if let Some(labels) = &embeddings.labels {
                let labels_path = path.with_extension("labels.npy");
                write_npy(&labels_path, &[labels.len() as u64], labels.iter().copied())?;
                written.push(labels_path);
            }
            Ok(written)
        }
        EmbeddingFormat::Jsonl => {
            pretext_train::write_atomic_with(path, |file| {
                use std::io::Write;
                for index in 0..embeddings.rows() {
                    let row = JsonRow {
                        id: &embeddings.ids[index],
                        label: embeddings.labels.as_ref().map(|labels| labels[index]),
                        text: embeddings.texts.as_ref().map(|texts| texts[index].as_str()),
                        embedding: embeddings.row(index),
                    };
                    serde_json::to_writer(&mut *file, &row)?;
                    file.write_all(b"\n")?;
                }
                Ok(())
            })?;
            Ok(vec![path.to_path_buf()])
        }
        EmbeddingFormat::Parquet => {
            let batch = record_batch(embeddings)?;
            pretext_train::write_atomic_with(path, |file| {
                let mut writer =
                    parquet::arrow::ArrowWriter::try_new(&mut *file, batch.schema(), None)
                        .map_err(std::io::Error::other)?;
                writer.write(&batch).map_err(std::io::Error::other)?;
                writer.close().map_err(std::io::Error::other)?;
                Ok(())
            })?;
            Ok(vec![path.to_path_buf()])
        }
    }
}

/// One line of a JSON Lines output; floats are written as the shortest text that reads back
/// as the same float32.
#[derive(serde::Serialize)]
struct JsonRow<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    embedding: &'a [f32],
}

/// The Arrow table of a Parquet output: id, label, text, embedding.
fn record_batch(embeddings: &Embeddings) -> anyhow::Result<RecordBatch> {
    let dim = i32::try_from(embeddings.dim).context("embedding width")?;
    let mut fields = vec![Field::new("id", DataType::Utf8, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        embeddings.ids.iter(),
    ))];
    if let Some(labels) = &embeddings.labels {
        fields.push(Field::new("label", DataType::Int64, false));
        columns.push(Arc::new(Int64Array::from(labels.clone())));
    }
    if let Some(texts) = &embeddings.texts {
        fields.push(Field::new("text", DataType::Utf8, false));
        columns.push(Arc::new(StringArray::from_iter_values(texts.iter())));
    }
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let mut vectors = FixedSizeListBuilder::with_capacity(
        Float32Builder::with_capacity(embeddings.values.len()),
        dim,
        embeddings.rows(),
    )
    .with_field(item.clone());
    for index in 0..embeddings.rows() {
        vectors.values().append_slice(embeddings.row(index));
        vectors.append(true);
    }
    fields.push(Field::new(
        "embedding",
        DataType::FixedSizeList(item, dim),
        false,
    ));
    columns.push(Arc::new(vectors.finish()));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

fn write_npy<T: npyz::AutoSerialize>(
    path: &Path,
    shape: &[u64],
    values: impl IntoIterator<Item = T>,
) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    fn sample() -> Embeddings {
        Embeddings {
            values: vec![1.0, 2.0, 3.0, 4.5, 5.0, -6.25],
            dim: 3,
            ids: vec!["7".into(), "x".into()],
            labels: None,
            texts: Some(vec!["a".into(), "b c".into()]),
        }
    }

    #[test]
    fn the_extension_picks_the_format_unless_one_is_asked_for() {
        let pick = |name: &str, asked| EmbeddingFormat::for_output(asked, Path::new(name));
        assert_eq!(pick("e.parquet", None), EmbeddingFormat::Parquet);
        assert_eq!(pick("e.JSONL", None), EmbeddingFormat::Jsonl);
        assert_eq!(pick("e.bin", None), EmbeddingFormat::Npy);
        assert_eq!(
            pick("e.npy", Some(EmbeddingFormat::Jsonl)),
            EmbeddingFormat::Jsonl
        );
    }

    #[test]
    fn jsonl_rows_hold_id_text_and_the_exact_floats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.jsonl");
        write_embeddings(&path, EmbeddingFormat::Jsonl, &sample()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let rows: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["id"], "x");
        assert_eq!(rows[1]["text"], "b c");
        assert_eq!(rows[1]["embedding"], serde_json::json!([4.5, 5.0, -6.25]));
    }

    #[test]
    fn parquet_has_an_id_column_and_a_fixed_size_float_list() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.parquet");
        write_embeddings(&path, EmbeddingFormat::Parquet, &sample()).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), 2);
        let file = std::fs::File::open(&path).unwrap();
        let mut batches =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
        let batch = batches.next().unwrap().unwrap();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "text", "embedding"]);
        assert_eq!(
            schema.field(2).data_type(),
            &DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, false)), 3)
        );
        let vectors = batch
            .column(2)
            .as_any()
            .downcast_ref::<arrow_array::FixedSizeListArray>()
            .unwrap();
        let second = vectors.value(1);
        let second = second
            .as_any()
            .downcast_ref::<arrow_array::Float32Array>()
            .unwrap();
        assert_eq!(second.values().to_vec(), [4.5, 5.0, -6.25]);
    }

    #[test]
    fn npy_writes_labels_beside_the_features() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.npy");
        let embeddings = Embeddings {
            labels: Some(vec![3, 1]),
            texts: None,
            ..sample()
        };
        let written = write_embeddings(&path, EmbeddingFormat::Npy, &embeddings).unwrap();
        assert_eq!(written[1], dir.path().join("e.labels.npy"));
        let bytes = std::fs::read(&path).unwrap();
        let array = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(array.shape(), [2, 3]);
        assert_eq!(array.into_vec::<f32>().unwrap(), sample().values);
    }
}

//! CSV seeds cut from the shared tables, and Parquet seeds of them with other column types
//! and compressions.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::writer::{read_text, Corpus};

/// The first 30 lines of every table as CSV, and four of them as Parquet files with
/// different column types and compressions.
pub(super) fn table_seeds(shared: &Path, corpus: &mut Corpus) -> Result<(), String> {
    let tabular = shared.join("tabular");
    let mut head = |stem: &str, lines: usize| -> Result<Vec<String>, String> {
        let text = read_text(&tabular.join(format!("{stem}.csv")))?;
        let head: Vec<String> = text.lines().take(lines).map(str::to_string).collect();
        corpus.write(
            "csv",
            &format!("{stem}-{lines}.csv"),
            (head.join("\n") + "\n").as_bytes(),
        )?;
        Ok(head)
    };
    let breast_cancer = head("breast_cancer", 30)?;
    let letters = head("letter_recognition", 30)?;
    head("satellite", 30)?;
    let sonar = head("sonar", 30)?;
    let wine = head("wine", 30)?;
    let letter_names = read_text(&tabular.join("letter_recognition.classes.txt"))?;
    let letter_names: Vec<&str> = letter_names.lines().collect();

    let number = |cell: &String| -> Result<f64, String> {
        cell.parse::<f64>()
            .map_err(|error| format!("{cell:?}: {error}"))
    };
    let integer_label = |values: &[String]| -> Result<TypedArray, String> {
        let values: Vec<i64> = values
            .iter()
            .map(|value| value.parse().map_err(|error| format!("{value:?}: {error}")))
            .collect::<Result<_, String>>()?;
        Ok((DataType::Int64, Arc::new(Int64Array::from(values))))
    };

    let wine = parquet_columns(
        &wine,
        &|values| {
            let values: Vec<f64> = values.iter().map(number).collect::<Result<_, _>>()?;
            Ok((DataType::Float64, Arc::new(Float64Array::from(values))))
        },
        &integer_label,
    )?;
    corpus.write(
        "parquet",
        "wine-30-snappy.parquet",
        &parquet_bytes(wine, Compression::SNAPPY)?,
    )?;

    // Missing cells (empty fields) become nulls.
    let breast_cancer = parquet_columns(
        &breast_cancer,
        &|values| {
            let values: Vec<Option<i32>> = values.iter().map(|value| value.parse().ok()).collect();
            Ok((DataType::Int32, Arc::new(Int32Array::from(values))))
        },
        &integer_label,
    )?;
    corpus.write(
        "parquet",
        "breast_cancer-30-zstd.parquet",
        &parquet_bytes(breast_cancer, Compression::ZSTD(ZstdLevel::default()))?,
    )?;

    let letters = parquet_columns(
        &letters,
        &|values| {
            let values: Vec<u8> = values
                .iter()
                .map(|value| value.parse().map_err(|error| format!("{value:?}: {error}")))
                .collect::<Result<_, String>>()?;
            Ok((DataType::UInt8, Arc::new(UInt8Array::from(values))))
        },
        &|values| {
            let names: Vec<&str> = values
                .iter()
                .map(|value| {
                    let code: usize = value.parse().map_err(|_| format!("label {value:?}"))?;
                    letter_names
                        .get(code)
                        .copied()
                        .ok_or_else(|| format!("label {value:?}"))
                })
                .collect::<Result<_, String>>()?;
            Ok((DataType::Utf8, Arc::new(StringArray::from(names))))
        },
    )?;
    corpus.write(
        "parquet",
        "letter_recognition-30-gzip.parquet",
        &parquet_bytes(letters, Compression::GZIP(GzipLevel::default()))?,
    )?;

    // Sonar, first 8 features as float32 and the label (0 = mine, 1 = rock) as booleans.
    let sonar: Vec<String> = sonar
        .iter()
        .take(21)
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let mut kept = cells[..8].to_vec();
            kept.push(cells[cells.len() - 1]);
            kept.join(",")
        })
        .collect();
    let sonar = parquet_columns(
        &sonar,
        &|values| {
            let values: Vec<f32> = values
                .iter()
                .map(|value| number(value).map(|value| value as f32))
                .collect::<Result<_, _>>()?;
            Ok((DataType::Float32, Arc::new(Float32Array::from(values))))
        },
        &|values| {
            let values: Vec<bool> = values.iter().map(|value| value == "1").collect();
            Ok((DataType::Boolean, Arc::new(BooleanArray::from(values))))
        },
    )?;
    corpus.write(
        "parquet",
        "sonar-20-lz4.parquet",
        &parquet_bytes(sonar, Compression::LZ4_RAW)?,
    )?;
    Ok(())
}

/// An Arrow array and its type.
type TypedArray = (DataType, ArrayRef);

/// A Parquet column: its name, type and values.
type Column = (String, DataType, ArrayRef);

/// The columns of CSV `lines` (a header, then rows of comma-separated cells with the label
/// last, no quoting): the label's cells made an array by `label`, every other column's by
/// `feature`.
fn parquet_columns(
    lines: &[String],
    feature: &dyn Fn(&[String]) -> Result<TypedArray, String>,
    label: &dyn Fn(&[String]) -> Result<TypedArray, String>,
) -> Result<Vec<Column>, String> {
    let header: Vec<&str> = lines[0].split(',').collect();
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|line| line.split(',').collect())
        .collect();
    let mut columns = Vec::new();
    for (index, name) in header.iter().enumerate() {
        let cells: Vec<String> = rows.iter().map(|row| row[index].to_string()).collect();
        let (data_type, array) = if index == header.len() - 1 {
            label(&cells)?
        } else {
            feature(&cells)?
        };
        columns.push((name.to_string(), data_type, array));
    }
    Ok(columns)
}

fn parquet_bytes(columns: Vec<Column>, compression: Compression) -> Result<Vec<u8>, String> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, data_type, _)| Field::new(name, data_type.clone(), true))
            .collect::<Vec<_>>(),
    ));
    let arrays = columns.into_iter().map(|(_, _, array)| array).collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), arrays).map_err(|e| e.to_string())?;
    let properties = WriterProperties::builder()
        .set_compression(compression)
        .build();
    let mut bytes = Vec::new();
    let mut writer =
        ArrowWriter::try_new(&mut bytes, schema, Some(properties)).map_err(|e| e.to_string())?;
    writer.write(&batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(bytes)
}

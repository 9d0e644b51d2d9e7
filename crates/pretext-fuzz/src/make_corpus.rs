//! Makes the seed corpus from the project's real test data (`../shared/data`): small cuts
//! of real files, one folder per target, written by `pretext-fuzz --make-corpus DIR`.
//! `corpus/README.md` says where each seed comes from and under which license.
//!
//! Every seed is made deterministically, so rerunning gives the same bytes.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, UInt8Array,
};
use arrow_schema::{DataType, Field, Schema};
use image::{DynamicImage, GrayImage, ImageBuffer, ImageFormat, Luma, LumaA, Rgb, Rgba};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use pretext_data::text::{TextCorpus, TextDocument};
use pretext_data::{
    read_idx_images, read_idx_labels, train_tokenizer_on_corpus, TokenizerKind, IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
};

/// Writes every seed under `out/<target>/` and the data's license files under
/// `out/licenses/`; returns the files written.
pub fn make_corpus(shared: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let mut corpus = Corpus {
        out,
        written: &mut written,
    };
    idx_and_image_seeds(shared, &mut corpus)?;
    wav_seeds(shared, &mut corpus)?;
    table_seeds(shared, &mut corpus)?;
    text_seeds(shared, &mut corpus)?;
    safetensors_seeds(&mut corpus)?;
    toml_seeds(&mut corpus)?;
    for (from, to) in [
        ("vision/fashion-mnist/LICENSE", "fashion-mnist-LICENSE"),
        ("text/austen/LICENSE", "austen-LICENSE"),
        ("tabular/LICENSE-mlbench.txt", "LICENSE-mlbench.txt"),
        (
            "tabular/LICENSE-mlxtend-BSD3.txt",
            "LICENSE-mlxtend-BSD3.txt",
        ),
    ] {
        let bytes = read(&shared.join(from))?;
        corpus.write("licenses", to, &bytes)?;
    }
    Ok(written)
}

struct Corpus<'a> {
    out: &'a Path,
    written: &'a mut Vec<PathBuf>,
}

impl Corpus<'_> {
    fn path(&self, target: &str, name: &str) -> Result<PathBuf, String> {
        let dir = self.out.join(target);
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        Ok(dir.join(name))
    }

    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) -> Result<(), String> {
        let path = self.path(target, name)?;
        std::fs::write(&path, bytes).map_err(|error| format!("{}: {error}", path.display()))?;
        self.written.push(path);
        Ok(())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("{}: {error}", path.display()))
}

fn idx_header(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|word| word.to_be_bytes()).collect()
}

/// IDX files of the first Fashion-MNIST images and labels, and PNG/JPEG images of them.
fn idx_and_image_seeds(shared: &Path, corpus: &mut Corpus) -> Result<(), String> {
    let dir = shared.join("vision/fashion-mnist");
    let images = read_idx_images(&dir.join("train-images-idx3-ubyte.gz"))
        .map_err(|error| error.to_string())?;
    let labels = read_idx_labels(&dir.join("train-labels-idx1-ubyte.gz"))
        .map_err(|error| error.to_string())?;
    let (rows, cols) = (images.height as u32, images.width as u32);
    let images_file = |count: usize| {
        let mut bytes = idx_header(&[IDX_IMAGES_MAGIC, count as u32, rows, cols]);
        bytes.extend_from_slice(&images.pixels[..count * images.height * images.width]);
        bytes
    };
    let mut labels_file = idx_header(&[IDX_LABELS_MAGIC, 16]);
    labels_file.extend_from_slice(&labels[..16]);
    corpus.write("idx", "fashion-16-images-idx3-ubyte", &images_file(16))?;
    corpus.write("idx", "fashion-16-labels-idx1-ubyte", &labels_file)?;
    corpus.write("idx", "fashion-2-images-idx3-ubyte", &images_file(2))?;
    let gzipped = gzip(&images_file(4))?;
    corpus.write("idx", "fashion-4-images-idx3-ubyte.gz", &gzipped)?;

    let gray = |index: usize| {
        GrayImage::from_raw(cols, rows, images.image(index).to_vec()).expect("28x28 pixels")
    };
    let pixel = |index: usize, x: u32, y: u32| gray(index).get_pixel(x, y).0[0];
    let seeds: Vec<(&str, DynamicImage, ImageFormat)> = vec![
        (
            "fashion-0-gray.png",
            DynamicImage::ImageLuma8(gray(0)),
            ImageFormat::Png,
        ),
        (
            "fashion-1-rgb.png",
            DynamicImage::ImageRgb8(ImageBuffer::from_fn(cols, rows, |x, y| {
                let value = pixel(1, x, y);
                Rgb([value, 255 - value, value / 2])
            })),
            ImageFormat::Png,
        ),
        (
            "fashion-2-gray16.png",
            DynamicImage::ImageLuma16(ImageBuffer::from_fn(cols, rows, |x, y| {
                Luma([u16::from(pixel(2, x, y)) * 257])
            })),
            ImageFormat::Png,
        ),
        (
            "fashion-3-gray-alpha.png",
            DynamicImage::ImageLumaA8(ImageBuffer::from_fn(cols, rows, |x, y| {
                let value = pixel(3, x, y);
                LumaA([value, value.saturating_add(64)])
            })),
            ImageFormat::Png,
        ),
        (
            "fashion-4-rgba.png",
            DynamicImage::ImageRgba8(ImageBuffer::from_fn(cols, rows, |x, y| {
                let value = pixel(4, x, y);
                Rgba([value, value / 3, 255 - value, 200])
            })),
            ImageFormat::Png,
        ),
        (
            "fashion-5-gray.jpg",
            DynamicImage::ImageLuma8(gray(5)),
            ImageFormat::Jpeg,
        ),
        (
            "fashion-6-rgb.jpg",
            DynamicImage::ImageRgb8(ImageBuffer::from_fn(cols, rows, |x, y| {
                let value = pixel(6, x, y);
                Rgb([value, value / 2, 255 - value])
            })),
            ImageFormat::Jpeg,
        ),
    ];
    for (name, image, format) in seeds {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), format)
            .map_err(|error| format!("{name}: {error}"))?;
        corpus.write("image", name, &bytes)?;
    }
    Ok(())
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(bytes)
        .map_err(|error| error.to_string())?;
    encoder.finish().map_err(|error| error.to_string())
}

/// The 16-bit samples of a WAV file.
fn wav_samples(path: &Path) -> Result<Vec<i16>, String> {
    let error = |error: hound::Error| format!("{}: {error}", path.display());
    hound::WavReader::open(path)
        .map_err(error)?
        .into_samples::<i16>()
        .collect::<Result<_, _>>()
        .map_err(error)
}

/// `len` samples around the loudest one.
fn loudest_window(samples: &[i16], len: usize) -> Vec<i16> {
    let loudest = (0..samples.len())
        .max_by_key(|&index| samples[index].unsigned_abs())
        .unwrap_or(0);
    let start = loudest
        .saturating_sub(len / 2)
        .min(samples.len().saturating_sub(len));
    samples[start..(start + len).min(samples.len())].to_vec()
}

fn wav_bytes<S: hound::Sample + Copy>(
    spec: hound::WavSpec,
    samples: &[S],
) -> Result<Vec<u8>, String> {
    let mut cursor = Cursor::new(Vec::new());
    let mut writer = hound::WavWriter::new(&mut cursor, spec).map_err(|e| e.to_string())?;
    for &sample in samples {
        writer.write_sample(sample).map_err(|e| e.to_string())?;
    }
    writer.finalize().map_err(|e| e.to_string())?;
    Ok(cursor.into_inner())
}

/// Short cuts of two spoken clips (16 kHz 16-bit mono, as stored), and the first one in
/// the other encodings and rates the reader decodes.
fn wav_seeds(shared: &Path, corpus: &mut Corpus) -> Result<(), String> {
    let word = loudest_window(
        &wav_samples(&shared.join("audio/spoken-words/clips/yes_000.wav"))?,
        1600,
    );
    let sentence = loudest_window(
        &wav_samples(&shared.join("audio/spoken-sentences/clips/sent_000.wav"))?,
        2000,
    );
    let spec = |channels, sample_rate, bits_per_sample, sample_format| hound::WavSpec {
        channels,
        sample_rate,
        bits_per_sample,
        sample_format,
    };
    use hound::SampleFormat::{Float, Int};
    // The middle half of the word at other rates, by nearest sample: only the header's
    // rate matters to a seed.
    let middle = &word[word.len() / 4..word.len() * 3 / 4];
    let at_rate = |rate: u32| -> Vec<i16> {
        let len = middle.len() * rate as usize / 16_000;
        (0..len)
            .map(|index| middle[index * 16_000 / rate as usize])
            .collect()
    };
    corpus.write(
        "wav",
        "yes-16bit-16k.wav",
        &wav_bytes(spec(1, 16_000, 16, Int), &word)?,
    )?;
    corpus.write(
        "wav",
        "sentence-16bit-16k.wav",
        &wav_bytes(spec(1, 16_000, 16, Int), &sentence)?,
    )?;
    let eight_bit: Vec<i8> = at_rate(8_000)
        .iter()
        .map(|&sample| (sample >> 8) as i8)
        .collect();
    corpus.write(
        "wav",
        "yes-8bit-8k.wav",
        &wav_bytes(spec(1, 8_000, 8, Int), &eight_bit)?,
    )?;
    let stereo: Vec<f32> = at_rate(22_050)
        .iter()
        .flat_map(|&sample| {
            let value = f32::from(sample) / 32_768.0;
            [value, -value]
        })
        .collect();
    corpus.write(
        "wav",
        "yes-float-stereo-22050.wav",
        &wav_bytes(spec(2, 22_050, 32, Float), &stereo)?,
    )?;
    let twenty_four: Vec<i32> = at_rate(44_100)
        .iter()
        .map(|&sample| i32::from(sample) << 8)
        .collect();
    corpus.write(
        "wav",
        "yes-24bit-44100.wav",
        &wav_bytes(spec(1, 44_100, 24, Int), &twenty_four)?,
    )?;
    Ok(())
}

/// The first 30 lines of every table as CSV, and four of them as Parquet files with
/// different column types and compressions.
fn table_seeds(shared: &Path, corpus: &mut Corpus) -> Result<(), String> {
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

/// Labeled Austen chunks (TSV, and the same rows as JSONL), two excerpts of the novels,
/// and tokenizers trained on those excerpts.
fn text_seeds(shared: &Path, corpus: &mut Corpus) -> Result<(), String> {
    let austen = shared.join("text/austen");
    // The first `per_label` rows of every book, in file order: every class is present.
    let rows = |file: &str, per_label: usize| -> Result<Vec<(String, String)>, String> {
        let text = read_text(&austen.join(file))?;
        let mut counts = std::collections::BTreeMap::new();
        let mut rows = Vec::new();
        for line in text.lines().skip(1) {
            let (label, text) = line
                .split_once('\t')
                .ok_or_else(|| format!("{file}: {line:?} has no tab"))?;
            let count = counts.entry(label.to_string()).or_insert(0);
            if *count < per_label {
                *count += 1;
                rows.push((label.to_string(), text.to_string()));
            }
        }
        Ok(rows)
    };
    let train = rows("austen_train.tsv", 7)?;
    let test = rows("austen_test.tsv", 3)?;
    let tsv = |rows: &[(String, String)]| {
        let mut text = String::from("label\ttext\n");
        for (label, row) in rows {
            text.push_str(&format!("{label}\t{row}\n"));
        }
        text
    };
    corpus.write("tsv", "austen_train-42.tsv", tsv(&train).as_bytes())?;
    corpus.write("tsv", "austen_test-18.tsv", tsv(&test).as_bytes())?;
    let mut books: Vec<&str> = Vec::new();
    for (label, _) in &train {
        if !books.contains(&label.as_str()) {
            books.push(label);
        }
    }
    let jsonl = |rows: &[(String, String)], integer_labels: bool| -> String {
        rows.iter()
            .map(|(label, text)| {
                let label = if integer_labels {
                    serde_json::json!(books.iter().position(|book| book == label))
                } else {
                    serde_json::json!(label)
                };
                serde_json::json!({ "text": text, "label": label }).to_string() + "\n"
            })
            .collect()
    };
    corpus.write(
        "jsonl",
        "austen_train-42.jsonl",
        jsonl(&train, false).as_bytes(),
    )?;
    corpus.write(
        "jsonl",
        "austen_test-18-integer-labels.jsonl",
        jsonl(&test, true).as_bytes(),
    )?;

    let excerpt = |file: &str, first_line: usize, lines: usize| -> Result<String, String> {
        let text = read_text(&austen.join(file))?;
        Ok(text
            .lines()
            .skip(first_line - 1)
            .take(lines)
            .map(|line| format!("{line}\n"))
            .collect())
    };
    let documents = vec![
        (
            "pride_and_prejudice-1.txt",
            excerpt("pride_and_prejudice.txt", 1, 60)?,
        ),
        // The lines around the novel's first "£".
        (
            "mansfield_park-15200.txt",
            excerpt("mansfield_park.txt", 15200, 40)?,
        ),
    ];
    for (name, text) in &documents {
        corpus.write("text", name, text.as_bytes())?;
    }
    let training_corpus = TextCorpus {
        documents: documents
            .into_iter()
            .map(|(name, text)| TextDocument {
                path: PathBuf::from(name),
                text,
            })
            .collect(),
    };
    for (kind, vocab_size) in [
        (TokenizerKind::Bpe, 300),
        (TokenizerKind::WordPiece, 200),
        (TokenizerKind::Char, 0),
    ] {
        let tokenizer = train_tokenizer_on_corpus(kind, &training_corpus, vocab_size, 2)
            .map_err(|error| format!("training a {kind} tokenizer: {error}"))?;
        let path = corpus.path("tokenizer", &format!("austen-{kind}.json"))?;
        tokenizer
            .save(&path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        corpus.written.push(path);
    }
    Ok(())
}

/// A small model's weights saved by a `VarStore`, and tensors of every kind pretext may
/// read (scalars and empty tensors included).
fn safetensors_seeds(corpus: &mut Corpus) -> Result<(), String> {
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

/// The repository's example configs, and the default pretrain and study configs written
/// out in full.
fn toml_seeds(corpus: &mut Corpus) -> Result<(), String> {
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&configs)
        .map_err(|error| format!("{}: {error}", configs.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "toml")
        })
        .collect();
    files.sort();
    for file in files {
        let name = file
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        corpus.write("toml", &name, &read(&file)?)?;
    }
    corpus.write(
        "toml",
        "default-pretrain.toml",
        pretext_train::PretrainConfig::default()
            .to_toml()
            .as_bytes(),
    )?;
    corpus.write(
        "toml",
        "default-study.toml",
        pretext_eval::study::StudyConfig::default()
            .to_toml()
            .as_bytes(),
    )?;
    Ok(())
}

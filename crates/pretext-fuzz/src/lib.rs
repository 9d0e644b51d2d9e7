//! pretext-fuzz: hostile and broken inputs for every data reader pretext uses.
//!
//! Each [`target`] feeds bytes to one production reader (IDX, PNG/JPEG, WAV, CSV, Parquet,
//! labeled TSV/JSONL, plain text, `tokenizer.json`, safetensors, TOML configs). A
//! [`campaign`] draws inputs with a seeded proptest strategy of byte [`mutation`]s of real
//! seed files ([`corpus`], made by [`make_corpus`] from `../shared/data`) and checks that
//! the reader accepts or refuses each one without panicking or hanging; a failing input
//! is shrunk and saved. Crash inputs, once fixed, are kept in `regressions/` and replayed
//! by the tests.
//!
//! ```text
//! cargo run --release -p pretext-fuzz -- --target all --inputs 1000000
//! ```

pub mod campaign;
pub mod corpus;
pub mod make_corpus;
pub mod mutation;
pub mod target;

pub use campaign::{run, run_guarded, Campaign, Finding, Outcome, Report};
pub use corpus::{default_corpus_dir, load_seeds, read_files, regressions_dir};
pub use make_corpus::make_corpus;
pub use mutation::{apply, mutated_seed, MutatedSeed, Mutation};
pub use target::{target_by_name, Target, TARGETS};

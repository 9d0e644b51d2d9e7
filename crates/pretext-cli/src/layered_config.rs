//! The config of a run, in layers: defaults, then the --config file, then flags and --set.
//! Every layer goes through the same serde struct, so an unknown key is an error wherever it
//! comes from.

use std::path::Path;

use anyhow::{bail, Context};
use pretext_train::PretrainConfig;
use toml::{Table, Value};

/// Starting config: defaults, overlaid with `file` when given.
pub fn base_table(file: Option<&Path>) -> anyhow::Result<Table> {
    let mut table = to_table(&PretrainConfig::default());
    if let Some(path) = file {
        merge(&mut table, read_overlay(path)?);
    }
    Ok(table)
}

/// A study method's config table: defaults, then the study's shared `[pretrain]` settings,
/// then the method's own config file and `set` assignments.
pub fn study_method_table(
    shared: &Table,
    file: Option<&Path>,
    set: &[String],
) -> anyhow::Result<Table> {
    let mut table = to_table(&PretrainConfig::default());
    merge(&mut table, shared.clone());
    if let Some(path) = file {
        merge(&mut table, read_overlay(path)?);
    }
    for assignment in set {
        apply_set(&mut table, assignment)?;
    }
    Ok(table)
}

/// The keys of a config file, checked against the config's fields.
fn read_overlay(path: &Path) -> anyhow::Result<Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    // Parse once on its own so unknown keys are reported against the file.
    PretrainConfig::from_toml(&text)
        .map_err(|message| anyhow::anyhow!("{}: {message}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn to_table(config: &PretrainConfig) -> Table {
    toml::from_str(&config.to_toml()).expect("a serialized config parses back")
}

/// Lays `overlay` over `base`. A layer that sets `train.steps` without `train.epochs` clears
/// the epochs of the layers under it (see [`steps_win`]).
fn merge(base: &mut Table, overlay: Table) {
    let train = overlay.get("train").and_then(Value::as_table);
    if train.is_some_and(|train| train.contains_key("steps") && !train.contains_key("epochs")) {
        steps_win(base);
    }
    merge_tables(base, overlay);
}

fn merge_tables(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(inner)), Value::Table(overlay_inner)) => {
                merge_tables(inner, overlay_inner)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets a dotted key (`train.steps`) to `value` given as TOML text; bare words that are not
/// TOML values are taken as strings (`--set method.name=simclr`).
pub fn set_dotted(table: &mut Table, key: &str, value: &str) -> anyhow::Result<()> {
    let parsed: Value = toml::from_str::<Table>(&format!("value = {value}"))
        .ok()
        .and_then(|mut wrapper| wrapper.remove("value"))
        .unwrap_or_else(|| Value::String(value.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    let (last, parents) = parts.split_last().expect("split yields at least one part");
    let mut current = &mut *table;
    for part in parents {
        current = match current
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()))
        {
            Value::Table(inner) => inner,
            _ => bail!("--set {key}: `{part}` is a value, not a section"),
        };
    }
    current.insert(last.to_string(), parsed);
    if key == "train.steps" {
        steps_win(table);
    }
    Ok(())
}

/// `train.steps` and `train.epochs` both say how long a run is, and epochs win when both are
/// above 0 within one layer. A later layer that gives steps alone means steps: a config file
/// with `epochs = 40` run with `--steps 6` (or `--set train.steps=6`) stops after 6 steps,
/// while `--steps 6 --epochs 2` still runs 2 epochs.
fn steps_win(table: &mut Table) {
    if let Some(Value::Table(train)) = table.get_mut("train") {
        train.insert("epochs".to_string(), Value::Float(0.0));
    }
}

/// `text` as a TOML string value, for [`set_dotted`] (so "true" or "1" stay strings).
pub fn quoted(text: &str) -> String {
    Value::String(text.to_string()).to_string()
}

/// Parses `KEY=VALUE`.
pub fn apply_set(table: &mut Table, assignment: &str) -> anyhow::Result<()> {
    let Some((key, value)) = assignment.split_once('=') else {
        bail!("--set {assignment}: expected KEY=VALUE, e.g. --set train.steps=500");
    };
    let key = key.trim();
    if !has_option(&to_table(&PretrainConfig::default()), key) {
        bail!("--set {key}: no such option; `pretext pretrain --print-config` lists every option");
    }
    set_dotted(table, key, value.trim())
}

/// Whether a dotted key names an option (or section) of the config.
fn has_option(table: &Table, key: &str) -> bool {
    match key.split_once('.') {
        None => table.contains_key(key),
        Some((section, rest)) => {
            matches!(table.get(section), Some(Value::Table(inner)) if has_option(inner, rest))
        }
    }
}

/// Turns the layered table into a config; unknown keys are named.
pub fn finish(table: Table, origin: &str) -> anyhow::Result<PretrainConfig> {
    let text = toml::to_string(&table).expect("a TOML table serializes");
    // The text is ours, not the user's: report the message and the dotted key it is about,
    // without the line and snippet.
    toml::from_str::<PretrainConfig>(&text).map_err(|error| {
        match error
            .span()
            .and_then(|span| dotted_key_at(&text, span.start))
        {
            Some(key) => anyhow::anyhow!("{origin}: {key}: {}", error.message()),
            None => anyhow::anyhow!("{origin}: {}", error.message()),
        }
    })
}

/// The dotted key (`section.key`) of the `key = value` line of `text` holding byte `offset`.
fn dotted_key_at(text: &str, offset: usize) -> Option<String> {
    let mut section = String::new();
    let mut start = 0;
    for line in text.lines() {
        let end = start + line.len();
        let trimmed = line.trim();
        if let Some(header) = trimmed.strip_prefix('[') {
            section = header.trim_end_matches(']').trim().to_string();
        } else if (start..=end).contains(&offset) {
            let key = trimmed.split_once('=')?.0.trim();
            return Some(if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            });
        }
        start = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The train.steps and train.epochs a table resolves to.
    fn length(table: Table) -> (u64, f64) {
        let config = finish(table, "test").unwrap();
        (config.train.steps, config.train.epochs)
    }

    fn file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn steps_given_after_a_file_with_epochs_replace_its_epochs() {
        // Regression: `pretrain --config configs/simclr-fmnist-gpu.toml --steps 6` ran the
        // file's 40 epochs (4,680 steps), because epochs win over steps within one layer.
        let (_dir, path) = file("[train]\nepochs = 40.0\n");
        assert_eq!(length(base_table(Some(&path)).unwrap()), (1000, 40.0));

        let mut flag = base_table(Some(&path)).unwrap();
        set_dotted(&mut flag, "train.steps", "6").unwrap();
        assert_eq!(length(flag), (6, 0.0));

        let mut set = base_table(Some(&path)).unwrap();
        apply_set(&mut set, "train.steps=7").unwrap();
        assert_eq!(length(set), (7, 0.0));

        // Both on the command line: epochs still win, as --help says.
        let mut both = base_table(Some(&path)).unwrap();
        set_dotted(&mut both, "train.steps", "6").unwrap();
        set_dotted(&mut both, "train.epochs", "2.0").unwrap();
        assert_eq!(length(both), (6, 2.0));
    }

    #[test]
    fn a_layer_with_steps_alone_replaces_the_epochs_under_it_and_one_with_both_keeps_them() {
        let shared: Table = toml::from_str("[train]\nepochs = 3.0\n").unwrap();
        let (_dir, steps_only) = file("[train]\nsteps = 50\n");
        let table = study_method_table(&shared, Some(&steps_only), &[]).unwrap();
        assert_eq!(length(table), (50, 0.0));

        let (_dir2, both) = file("[train]\nsteps = 50\nepochs = 2.0\n");
        let table = study_method_table(&shared, Some(&both), &[]).unwrap();
        assert_eq!(length(table), (50, 2.0));

        // A layer that says nothing of the length keeps it.
        let (_dir3, other) = file("[train]\nbatch_size = 32\n");
        let table = study_method_table(&shared, Some(&other), &[]).unwrap();
        assert_eq!(length(table), (1000, 3.0));
    }
}

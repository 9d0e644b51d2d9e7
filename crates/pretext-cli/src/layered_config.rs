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

fn merge(base: &mut Table, overlay: Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(inner)), Value::Table(overlay_inner)) => merge(inner, overlay_inner),
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
    let mut current = table;
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
    Ok(())
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

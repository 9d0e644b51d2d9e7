//! Copying a checkpoint's tensors into a built encoder, after checking every one of them.

use std::collections::BTreeSet;
use std::path::Path;

use tch::nn::VarStore;

use super::error::ImageCheckpointError;
use super::folder::read_tensors;
use crate::hf_bert::non_finite;

/// How many problems one message lists before counting the rest.
const PROBLEMS_SHOWN: usize = 8;

/// Copies the tensors of `dir/model.safetensors` into the variables of `store` under `prefix`
/// (`"encoder."`; `""` for the store's root), which must have been built from the config
/// [`super::ImageCheckpoint::configure`] gives. Every variable must be found with its exact
/// shape, every tensor of the file must have a place (or be a classifier, pooler or batch
/// counter, which are not used) and hold finite values; otherwise nothing is copied and the
/// error, naming the file, lists what is missing, misshapen, left over or not finite.
pub fn load_image_checkpoint(
    dir: &Path,
    store: &VarStore,
    prefix: &str,
) -> Result<(), ImageCheckpointError> {
    let checkpoint = read_tensors(dir)?;
    let layout = checkpoint.layout;
    let variables = store.variables();
    let mut names: Vec<&String> = variables
        .keys()
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    let mut problems = Vec::new();
    let mut used = BTreeSet::new();
    let mut copies = Vec::new();
    for name in names {
        let ours = &name[prefix.len()..];
        let Some(slot) = layout.slot(ours) else {
            problems.push(format!(
                "the model's `{ours}` has no place in the {} layout",
                layout.describe()
            ));
            continue;
        };
        let Some(source) = checkpoint.tensors.get(&slot.name) else {
            problems.push(format!("no tensor `{}`", slot.name));
            continue;
        };
        used.insert(slot.name.clone());
        let target = &variables[name];
        let (source, expected) = match slot.part {
            None => (Some(source.shallow_clone()), target.size()),
            Some((index, parts)) => {
                // One of `parts` blocks of rows: the fused tensor is `parts` times as tall.
                let mut fused = target.size();
                fused[0] *= parts;
                let fits = source.size() == fused;
                let rows = target.size()[0];
                (fits.then(|| source.narrow(0, index * rows, rows)), fused)
            }
        };
        match source {
            Some(source) if source.size() == target.size() => {
                if let Some((count, first)) = non_finite(&source) {
                    problems.push(format!(
                        "`{}` holds {count} NaN or infinite values (the first at flat index \
                         {first})",
                        slot.name
                    ));
                } else {
                    copies.push((target.shallow_clone(), source));
                }
            }
            _ => problems.push(format!(
                "`{}` has shape {:?}, the model expects {expected:?}",
                slot.name,
                checkpoint.tensors[&slot.name].size(),
            )),
        }
    }
    let left_over: Vec<&String> = checkpoint
        .tensors
        .keys()
        .filter(|name| !used.contains(*name) && !layout.unused(name))
        .collect();
    if !left_over.is_empty() {
        let shown: Vec<String> = left_over.iter().take(5).map(|n| format!("`{n}`")).collect();
        problems.push(format!(
            "{} tensors have no place in the model ({}{}): pretext's {} has no layer for them",
            left_over.len(),
            shown.join(", "),
            if left_over.len() > shown.len() {
                ", …"
            } else {
                ""
            },
            layout.describe()
        ));
    }
    if !problems.is_empty() {
        let count = problems.len();
        problems.truncate(PROBLEMS_SHOWN);
        let more = match count - problems.len() {
            0 => String::new(),
            n => format!("; and {n} more"),
        };
        return Err(ImageCheckpointError::file(
            &checkpoint.path,
            format!(
                "does not fit the {} pretext built for it: {}{more}",
                layout.describe(),
                problems.join("; ")
            ),
        ));
    }
    tch::no_grad(|| {
        for (mut target, source) in copies {
            target.copy_(&source.to_kind(target.kind()).to_device(target.device()));
        }
    });
    Ok(())
}

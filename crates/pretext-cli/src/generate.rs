//! `pretext generate RUN --prompt TEXT`: continue a prompt with a run's causal language
//! model (method gpt), printing the text as each token is drawn.

use std::io::Write;

use anyhow::{bail, Context};
use pretext_data::text::resolve_tokenizer;
use pretext_data::{Samples, TokenSet};
use pretext_methods::{Gpt, MethodName, SamplingConfig};
use pretext_train::{Model, RunDir};

use crate::args::GenerateArgs;
use crate::cuda;
use crate::probe::latest_checkpoint;

pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let run = RunDir::new(&args.run);
    let config = run.read_config()?;
    if config.method.name != MethodName::Gpt {
        bail!(
            "{}: generation needs a causal language model (method gpt); this run is {}",
            run.root.display(),
            config.method.name.as_str()
        );
    }
    let sampling = SamplingConfig {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        max_tokens: args.max_tokens,
        seed: args.seed,
    };
    if let Err((field, message)) = sampling.validate() {
        bail!("--{}: {message}", field.replace('_', "-"));
    }
    let tokenizer = resolve_tokenizer(&config.data_options(Some(&run.root)))?;
    let checkpoint = latest_checkpoint(&run)?;
    let device = cuda::device(&args.device)?;
    // The model only needs the vocabulary; no data is read.
    let vocabulary = tokenizer.vocabulary();
    let empty = Samples::Tokens(TokenSet::from_sequences(
        &[],
        config.data.seq_len,
        &vocabulary,
        None,
        Vec::new(),
    ));
    let mut model = Model::new(&config, &empty, device);
    checkpoint
        .load_weights(&config, &mut model.store)
        .with_context(|| format!("loading {}", checkpoint.dir.display()))?;
    let Some(gpt) = model.method.downcast_ref::<Gpt>() else {
        unreachable!("checked: the method is gpt")
    };
    let prompt = tokenizer.encode_plain(&args.prompt)?;
    if prompt.is_empty() {
        bail!("--prompt: the prompt has no tokens; give some text to continue");
    }
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{}", args.prompt)?;
    stdout.flush()?;
    let mut generated = Vec::new();
    let mut printed = 0;
    let mut failure = None;
    // Positions beyond the training sequence length were never trained.
    let window = config.data.seq_len;
    gpt.generate(&prompt, &sampling, window, tokenizer.eos_id(), |token| {
        generated.push(token);
        // Decode everything so far and print what is new: merges and multi-byte characters
        // only make sense once their last token has arrived.
        match tokenizer.decode(&generated) {
            Ok(text) if text.len() > printed && text.is_char_boundary(printed) => {
                let ok = write!(stdout, "{}", &text[printed..]).and_then(|_| stdout.flush());
                printed = text.len();
                ok.is_ok()
            }
            Ok(_) => true,
            Err(error) => {
                failure = Some(error);
                false
            }
        }
    });
    writeln!(stdout)?;
    if let Some(error) = failure {
        return Err(error.into());
    }
    eprintln!(
        "({} tokens, temperature {}, top-k {}, top-p {}, seed {})",
        generated.len(),
        args.temperature,
        args.top_k,
        args.top_p,
        args.seed
    );
    Ok(())
}

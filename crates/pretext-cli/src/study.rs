//! `pretext study`: reads the study file, layers each method's pretrain config, runs the
//! study with a progress bar over all its jobs, and prints the table.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use indicatif::{ProgressBar, ProgressStyle};
use pretext_eval::study::{run_study, PlannedMethod, StudyConfig, StudyPlan, StudyProgress};
use pretext_methods::MethodName;
use pretext_train::{ProgressSink, StepReport};

use crate::args::StudyArgs;
use crate::cuda;
use crate::layered_config::{finish, quoted, set_dotted, study_method_table};

pub fn run(args: &StudyArgs) -> anyhow::Result<()> {
    let (mut study, base_dir) = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let study = StudyConfig::from_toml(&text)
                .map_err(|message| anyhow!("{}: {message}", path.display()))?;
            let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            (study, dir)
        }
        None => (StudyConfig::default(), PathBuf::new()),
    };
    if let Some(device) = &args.device {
        study.device = device.clone();
    }
    let origin = args
        .config
        .as_ref()
        .map(|path| path.display().to_string())
        .unwrap_or_else(|| "the default study".into());
    study
        .validate()
        .map_err(|message| anyhow!("{origin}: {message}"))?;
    if args.print_config {
        print!("{}", study.to_toml());
        return Ok(());
    }
    let mut methods = Vec::new();
    for method in &study.methods {
        MethodName::parse(&method.name)
            .map_err(|message| anyhow!("{origin}: methods: {message}"))?;
        let file = (!method.config.is_empty()).then(|| base_dir.join(&method.config));
        let mut table = study_method_table(&study.pretrain, file.as_deref(), &method.set)
            .with_context(|| format!("{origin}: method {}", method.display_label()))?;
        set_dotted(&mut table, "method.name", &quoted(&method.name))?;
        set_dotted(&mut table, "device", &quoted(&study.device))?;
        let config = finish(
            table,
            &format!("{origin}: method {}", method.display_label()),
        )?;
        config.validate()?;
        methods.push(PlannedMethod {
            label: method.display_label().to_string(),
            config,
        });
    }
    let baseline = match methods.first() {
        Some(first) => first.config.clone(),
        None => {
            let mut table = study_method_table(&study.pretrain, None, &[])?;
            set_dotted(&mut table, "device", &quoted(&study.device))?;
            finish(table, &format!("{origin}: [pretrain]"))?
        }
    };
    let device = cuda::join_launch(cuda::device(&study.device)?)?;
    if !pretext_train::parallel::is_writer() {
        // Another process of a multi-process study: it pretrains and measures its share of
        // the cells in silence; rank 0 prints and writes the results.
        run_study(
            &StudyPlan {
                study,
                methods,
                baseline,
                out: args.out.clone(),
            },
            device,
            &mut Silent::default(),
        )?;
        return Ok(());
    }
    let plan = StudyPlan {
        study,
        methods,
        baseline,
        out: args.out.clone(),
    };
    eprintln!(
        "pretext study → {} (run it again with the same --out to continue an interrupted study)",
        plan.out.display()
    );
    let mut progress = StudyBar::new();
    let Some(output) = run_study(&plan, device, &mut progress)? else {
        // Another process of a multi-process study: rank 0 writes and prints the results.
        return Ok(());
    };
    println!();
    print!("{}", output.results.markdown());
    println!();
    eprintln!(
        "{} cells measured now, {} reused from earlier runs of this study",
        output.measured, output.reused
    );
    for file in &output.files {
        eprintln!("wrote {}", file.display());
    }
    Ok(())
}

/// One bar over the study's jobs (a terminal), or a line per job (logs, CI); pretraining
/// steps show in the bar's message, or as a line every 10%.
struct StudyBar {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    started: std::time::Instant,
    pretraining: PretrainLine,
}

impl StudyBar {
    fn new() -> StudyBar {
        StudyBar {
            bar: None,
            total: 0,
            done: 0,
            started: std::time::Instant::now(),
            pretraining: PretrainLine {
                bar: None,
                total: 0,
                job: String::new(),
            },
        }
    }

    fn print(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl StudyProgress for StudyBar {
    fn planned(&mut self, jobs: usize) {
        self.total = jobs;
        self.started = std::time::Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(jobs as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} jobs  {msg}",
                )
                .expect("the template is valid"),
            );
            self.pretraining.bar = Some(bar.clone());
            self.bar = Some(bar);
        } else {
            eprintln!("study: {jobs} jobs");
        }
    }

    fn job(&mut self, description: &str, reused: bool) {
        self.pretraining.job = description.to_string();
        if reused {
            self.done += 1;
        }
        match &self.bar {
            Some(bar) => {
                bar.set_message(description.to_string());
                if reused {
                    bar.inc(1);
                }
            }
            None => eprintln!(
                "[{}/{}] {description}{} ({:.0} s)",
                self.done + usize::from(!reused),
                self.total,
                if reused { ": done earlier, reused" } else { "" },
                self.started.elapsed().as_secs_f64()
            ),
        }
    }

    fn job_done(&mut self) {
        self.done += 1;
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    fn message(&mut self, text: &str) {
        self.print(text);
    }

    fn pretraining(&mut self) -> &mut dyn ProgressSink {
        &mut self.pretraining
    }

    fn finished(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_with_message(format!(
                "done in {:.0} s",
                self.started.elapsed().as_secs_f64()
            ));
        }
    }
}

/// Pretraining steps inside the study's bar.
struct PretrainLine {
    bar: Option<ProgressBar>,
    total: u64,
    job: String,
}

impl ProgressSink for PretrainLine {
    fn started(&mut self, _first_step: u64, total_steps: u64) {
        self.total = total_steps;
    }

    fn step(&mut self, report: &StepReport) {
        let line = format!(
            "{}: step {}/{} {}{:.0} samples/s",
            self.job,
            report.step,
            self.total,
            report.loss_text(),
            report.images_per_second
        );
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => {
                let tenth = (self.total / 10).max(1);
                if report.step.is_multiple_of(tenth) || report.step == self.total {
                    eprintln!("  {line}");
                }
            }
        }
    }

    fn message(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn finished(&mut self) {}
}

/// The progress of a process other than rank 0: nothing shown.
struct Silent {
    pretraining: pretext_train::NoProgress,
}

impl Default for Silent {
    fn default() -> Self {
        Silent {
            pretraining: pretext_train::NoProgress,
        }
    }
}

impl StudyProgress for Silent {
    fn planned(&mut self, _jobs: usize) {}
    fn job(&mut self, _description: &str, _reused: bool) {}
    fn job_done(&mut self) {}
    fn message(&mut self, _text: &str) {}
    fn pretraining(&mut self) -> &mut dyn pretext_train::ProgressSink {
        &mut self.pretraining
    }
    fn finished(&mut self) {}
}

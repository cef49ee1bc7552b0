//! The command line: argument parsing with clap, exit codes, output streams. Everything
//! else lives in the library modules this calls.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::check;
use crate::compile;
use crate::diagnostics::Code;
use crate::report;

/// `print!` and `println!` without their panic on a reader that went away
/// (`pai check --format json | head`): see [`write_stdout`].
macro_rules! stdout {
    ($($arg:tt)*) => { write_stdout(format_args!($($arg)*)) };
}
macro_rules! stdoutln {
    ($($arg:tt)*) => { stdout!("{}\n", format_args!($($arg)*)) };
}
/// `eprint!` and `eprintln!` without their panic: see [`write_stderr`].
macro_rules! stderr {
    ($($arg:tt)*) => { write_stderr(format_args!($($arg)*)) };
}
macro_rules! stderrln {
    ($($arg:tt)*) => { stderr!("{}\n", format_args!($($arg)*)) };
}

/// Writes to standard output. Output to a closed pipe is dropped and the command goes
/// on to end with its own status (`println!` panicked: exit 101 and a backtrace). Any
/// other failure (a full disk behind a redirect) ends `pai` at once with status 2,
/// since output it was asked for is lost.
fn write_stdout(text: std::fmt::Arguments<'_>) {
    match std::io::stdout().write_fmt(text) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(error) => {
            report_stdout_error(&error);
            std::process::exit(2);
        }
    }
}

fn report_stdout_error(error: &std::io::Error) {
    stderrln!(
        "error: cannot write to standard output: {}",
        error.to_string().to_lowercase()
    );
}

/// Writes to standard error; a failure there has nowhere to be reported, so the
/// message is dropped and the command goes on.
fn write_stderr(text: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().write_fmt(text);
}

/// The human report shows at most this many diagnostics: past it, a report of a
/// broken generated file would be longer than anyone reads.
const HUMAN_LIMIT: usize = 200;

/// How `pai` ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Nothing wrong (warnings allowed unless denied).
    Clean = 0,
    /// The input has errors (or denied warnings).
    Failed = 1,
    /// Bad usage, or a file could not be read.
    Usage = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "pai",
    version,
    about = "A compiler and runtime for workflows of cooperating AI agents"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check `.pai` files (or directories of them, recursively) without running anything
    Check {
        /// Files or directories to check
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Treat warnings as errors: `--deny warnings`
        #[arg(long, value_enum)]
        deny: Option<Deny>,
        /// When to colour the human report (`NO_COLOR` is honoured with `auto`)
        #[arg(long, value_enum, default_value_t = Color::Auto)]
        color: Color,
    },
    /// Show the tree a workflow would build and its worst case, without calling a model
    Plan {
        /// The `.pai` file
        file: PathBuf,
        /// The workflow to plan (default: the file's skill's first workflow, or its only one)
        #[arg(long)]
        workflow: Option<String>,
        /// A workflow argument, `name=value` (repeatable); lists as `a,b` or JSON
        #[arg(long = "arg", value_name = "NAME=VALUE")]
        args: Vec<String>,
        /// Output format
        #[arg(long, value_enum, default_value_t = PlanFormat::Tree)]
        format: PlanFormat,
        /// A YAML price table that extends the built-in one (default: `.pai/prices.yaml` if present)
        #[arg(long)]
        prices: Option<PathBuf>,
    },
    /// Run a workflow against a provider, writing a manifest per node
    Run(Box<RunArgs>),
    /// Run a workflow against its replay fixture and check the expectations beside it
    Test {
        /// The `.pai` file; its fixture is FILE.replay.yaml and its expectations FILE.expect.yaml
        file: PathBuf,
    },
    /// Show a run's tree with statuses, tokens and cost per subtree
    Status {
        /// The run's id (a directory of the runs directory)
        run_id: String,
        /// Where runs live
        #[arg(long, default_value = ".pai/runs")]
        runs_dir: PathBuf,
    },
    /// List the providers a file can use and whether each is ready (a key set, a CLI on
    /// PATH, an endpoint answering)
    Providers {
        /// A `.pai` file whose `provider` declarations to list besides the built-ins
        file: Option<PathBuf>,
        /// Do not contact HTTP endpoints
        #[arg(long)]
        offline: bool,
    },
    /// Turn a Claude Code skill (SKILL.md, either PAI dialect) into a `.pai` skill
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Write pai skills in another tool's format
    Export {
        #[command(subcommand)]
        target: ExportTarget,
    },
    /// Name the skill and workflow a request in plain words would start
    Route {
        /// The request, such as "add a login feature"
        request: String,
        /// Output format
        #[arg(long, value_enum, default_value_t = RouteFormat::Text)]
        format: RouteFormat,
    },
    /// Print the long explanation of a diagnostic code, such as `E004`
    Explain {
        /// The code: `E004`, `W001` or `pai::E004`
        code: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The `.pai` file (with `--resume`, the run's own file, which it may name again)
    file: Option<PathBuf>,
    /// The workflow to run (default as for `pai plan`; with `--resume`, the run's own)
    #[arg(long)]
    workflow: Option<String>,
    /// Route this request to a skill (as `pai route` does) and run it: the request is
    /// the workflow's first `text` argument that `--arg` does not give
    #[arg(long, conflicts_with_all = ["file", "workflow", "resume"])]
    request: Option<String>,
    /// A workflow argument, `name=value` (repeatable)
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    args: Vec<String>,
    /// Calls in flight at most (1 or more)
    #[arg(short = 'j', long, default_value_t = 8, value_parser = at_least_one, allow_negative_numbers = true)]
    jobs: usize,
    /// The provider of agents that name none: a built-in (`sim`, the default; `replay`;
    /// `claude`, `codex`, `ollama`, `llm`, `gemini`, `openai`, `anthropic`) or one the
    /// file declares. `sim` and `replay` answer for every agent. Default: the
    /// `PAI_PROVIDER` environment variable, except for `--resume`, which goes on with
    /// the provider the run was started with
    #[arg(long)]
    provider: Option<String>,
    /// The replay fixture (default: FILE with `.replay.yaml` instead of `.pai`)
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Simulated latency of each `sim` answer, such as `50ms`
    #[arg(long, default_value = "0ms", allow_hyphen_values = true)]
    sim_latency: String,
    /// Elements of each simulated list that no `for ... max` bounds (1 to 10,000), fewer
    /// where the agent's `summary` budget holds fewer
    #[arg(long, default_value_t = 3, value_parser = sim_list_length)]
    sim_list: usize,
    /// Where runs live
    #[arg(long, default_value = ".pai/runs")]
    runs_dir: PathBuf,
    /// Re-run only what did not complete (or whose inputs changed) in run RUN_ID
    #[arg(long, value_name = "RUN_ID")]
    resume: Option<String>,
    /// The id of a new run (default: the time and a few random digits)
    #[arg(long, conflicts_with = "resume")]
    run_id: Option<String>,
    /// Stop starting agents after this many calls (refuse to start if the plan may pass it)
    #[arg(long, value_parser = whole_number, allow_negative_numbers = true)]
    max_agents: Option<u64>,
    /// Stop starting agents once this many tokens are spent
    #[arg(long, value_parser = whole_number, allow_negative_numbers = true)]
    max_tokens: Option<u64>,
    /// Stop starting agents once this many dollars are spent
    #[arg(long, value_parser = dollars, allow_negative_numbers = true)]
    max_cost: Option<f64>,
    /// Start even if the plan's worst case passes a limit
    #[arg(long)]
    yes: bool,
    /// Write a Chrome trace-event file (open it in Perfetto)
    #[arg(long)]
    trace: Option<PathBuf>,
    /// No line per node event
    #[arg(long, short)]
    quiet: bool,
    /// A YAML price table that extends the built-in one (default: `.pai/prices.yaml` if present)
    #[arg(long)]
    prices: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum PlanFormat {
    Tree,
    /// Only the worst case, without the tree
    Summary,
    Json,
    Dot,
    Mermaid,
}

#[derive(Subcommand, Debug)]
enum ImportWhat {
    /// A SKILL.md (or the folder holding one), with its `workflows/*.md`
    Skill {
        /// The SKILL.md, or its folder
        path: PathBuf,
        /// Where to write the `.pai` file (default: standard output)
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Replace `--out` if it exists (by default, an import never overwrites)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ExportTarget {
    /// Claude Code skills: OUT/NAME/SKILL.md, workflows/*.md and agents/*.md
    Claude {
        /// The directory to write the skills in
        out: PathBuf,
        /// `.pai` files whose skills to export (default: the standard library)
        files: Vec<PathBuf>,
        /// Replace files that exist already (by default, an export never overwrites)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RouteFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Deny {
    Warnings,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let code = run_command();
    // What is still buffered (text after the last newline) is written here, where a
    // failure can still be reported; at exit Rust would drop it silently.
    match std::io::stdout().flush() {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            report_stdout_error(&error);
            Exit::Usage.into()
        }
        _ => code,
    }
}

/// Parses the command line and runs the command it names.
fn run_command() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                Exit::Usage.into()
            } else {
                Exit::Clean.into()
            };
        }
    };
    match cli.command {
        Command::Check {
            paths,
            format,
            deny,
            color,
        } => run_check(&paths, format, deny.is_some(), color).into(),
        Command::Plan {
            file,
            workflow,
            args,
            format,
            prices,
        } => run_plan(&file, workflow, args, format, prices.as_deref()).into(),
        Command::Run(args) => run_workflow(*args),
        Command::Test { file } => test_workflow(&file),
        Command::Status { run_id, runs_dir } => {
            if !is_run_id(&run_id, &run_id, &runs_dir) {
                return Exit::Usage.into();
            }
            match crate::run::status::render(&runs_dir.join(&run_id)) {
                Ok(text) => {
                    stdout!("{text}");
                    Exit::Clean.into()
                }
                Err(message) => {
                    stderrln!("error: {message}");
                    stderrln!("help: runs are directories of `{}`; pass `--runs-dir` if they live elsewhere", runs_dir.display());
                    Exit::Usage.into()
                }
            }
        }
        Command::Providers { file, offline } => list_providers(file.as_deref(), offline),
        Command::Route { request, format } => route_request(&request, format).into(),
        Command::Import {
            what: ImportWhat::Skill { path, out, force },
        } => import_skill(&path, out.as_deref(), force).into(),
        Command::Export {
            target: ExportTarget::Claude { out, files, force },
        } => export_claude(&out, &files, force).into(),
        Command::Explain { code } => explain(&code).into(),
    }
}

fn import_skill(path: &Path, out: Option<&Path>, force: bool) -> Exit {
    use crate::interop::import;
    // Before anything is read: `-o` naming the skill's own SKILL.md replaced it.
    if let Some(out) = out.filter(|out| !force && std::fs::symlink_metadata(out).is_ok()) {
        stderrln!("error: `{}` exists already", out.display());
        stderrln!("help: name a new file with `-o`, or pass `--force` to replace it");
        return Exit::Usage;
    }
    let skill = match import::read(path) {
        Ok(skill) => skill,
        Err(message) => {
            stderrln!("error: {message}");
            stderrln!("help: pass a SKILL.md, or the folder that holds one");
            return Exit::Usage;
        }
    };
    let text = import::to_pai(&skill, path);
    // What we write must check: say so now rather than at the user's next `pai check`.
    let outcome = check::check_text("imported.pai", &text, Path::new("."));
    if outcome.error_count() > 0 {
        stderr!(
            "{}",
            report::human(
                &outcome.sources,
                &outcome.diagnostics,
                human_style(Color::Auto)
            )
        );
        stderrln!("error: the imported skill does not check; this is a bug in `pai import`, please report it");
        return Exit::Failed;
    }
    match out {
        Some(out) => {
            if let Err(error) = std::fs::write(out, &text) {
                stderrln!(
                    "error: cannot write `{}`: {}",
                    out.display(),
                    error.to_string().to_lowercase()
                );
                return Exit::Usage;
            }
            stderrln!(
                "imported `{}`: {} workflows, {} triggers -> {}",
                skill.name,
                skill.workflows.len(),
                skill.triggers.len(),
                out.display()
            );
        }
        None => stdout!("{text}"),
    }
    Exit::Clean
}

fn export_claude(out: &Path, files: &[PathBuf], force: bool) -> Exit {
    let paths: Vec<PathBuf> = if files.is_empty() {
        crate::stdlib::skill_files().map(|(path, _)| path).collect()
    } else {
        files.to_vec()
    };
    // Every file is planned before any is written: a clash between two files, or with
    // a file already there, leaves the output directory as it was.
    let mut exports = Vec::new();
    for path in &paths {
        let outcome = match checked_file(path, "export") {
            Ok(outcome) => outcome,
            Err(exit) => return exit,
        };
        exports.extend(crate::interop::export::export(&outcome, out));
    }
    if exports.is_empty() {
        stderrln!("error: no skill to export in the given files");
        stderrln!("help: export files that declare a `skill`, or none for the standard library");
        return Exit::Usage;
    }
    if let Err(error) = crate::interop::export::write_all(&exports, force) {
        stderrln!("error: {}", error.message);
        stderrln!("help: {}", error.help);
        return Exit::Usage;
    }
    for skill in &exports {
        stderrln!(
            "exported `{}` -> {} ({} files)",
            skill.skill,
            skill.dir.display(),
            skill.files.len()
        );
        for note in &skill.notes {
            stderrln!("  note: {note}");
        }
    }
    Exit::Clean
}

fn route_request(request: &str, format: RouteFormat) -> Exit {
    let candidates = crate::route::candidates(&crate::route::default_dirs());
    let Some(routing) = crate::route::route(request, &candidates) else {
        stderrln!("error: no skill's `use when` trigger matches `{request}`");
        stderrln!(
            "help: the triggers are: {}",
            candidates
                .iter()
                .map(|c| format!("{} ({})", c.skill, c.triggers.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        );
        return Exit::Failed;
    };
    let describe = |m: &crate::route::Match| {
        format!(
            "\"{}\" ({})",
            m.trigger,
            if m.phrase {
                "phrase".to_string()
            } else {
                format!("{}% of its words", m.score)
            }
        )
    };
    let chosen = &routing.chosen;
    match format {
        RouteFormat::Text => {
            stdoutln!("skill      {}", chosen.skill);
            stdoutln!(
                "workflow   {}{}",
                chosen.workflow,
                if chosen.default_workflow {
                    " (default)"
                } else {
                    " (named in the request)"
                }
            );
            stdoutln!("trigger    {}", describe(chosen));
            stdoutln!("file       {}", chosen.file.display());
            match &routing.runner_up {
                Some(m) => stdoutln!("runner-up  {}: {}", m.skill, describe(m)),
                None => stdoutln!("runner-up  none"),
            }
            stdoutln!("run it     pai run --request {}", shell_quote(request));
        }
        RouteFormat::Json => {
            let entry = |m: &crate::route::Match| {
                serde_json::json!({
                    "skill": m.skill,
                    "workflow": m.workflow,
                    "default_workflow": m.default_workflow,
                    "trigger": m.trigger,
                    "phrase": m.phrase,
                    "score": m.score,
                    "file": m.file.display().to_string(),
                })
            };
            let json = serde_json::json!({
                "request": request,
                "chosen": entry(chosen),
                "runner_up": routing.runner_up.as_ref().map(entry),
            });
            stdoutln!("{json:#}");
        }
    }
    Exit::Clean
}

/// Whether `id` names a run directly under `runs_dir` (not a path that leads
/// elsewhere); if not, says so about `written`, as the user wrote it.
fn is_run_id(id: &str, written: &str, runs_dir: &Path) -> bool {
    if crate::compile::ir::safe_segment(id) == id {
        return true;
    }
    stderrln!("error: `{written}` is not a run id");
    stderrln!(
        "help: run ids are the directory names under `{}`",
        runs_dir.display()
    );
    false
}

/// Refuses to resume a run from a directory other than the one it was started in: its
/// relative paths (the file, path arguments, the fixture) would name other files, or
/// none (a resume from the parent directory could not find the file).
fn resumed_from_where_started(
    run_id: &str,
    previous: &crate::run::manifest::RunManifest,
    runs_dir: &Path,
) -> Result<(), Exit> {
    let Some(started) = previous.directory.as_deref().map(Path::new) else {
        return Ok(()); // a run from before the directory was recorded
    };
    let here = std::env::current_dir().ok();
    let same = |dir: &Path| std::fs::canonicalize(dir).ok();
    if here.as_deref().and_then(same) == same(started) {
        return Ok(());
    }
    let runs = std::path::absolute(runs_dir).unwrap_or_else(|_| runs_dir.to_path_buf());
    stderrln!(
        "error: run `{run_id}` was started in `{}`, where its relative paths are read from",
        started.display()
    );
    stderrln!(
        "help: resume it from there: cd {} && pai run --resume {run_id} --runs-dir {}",
        shell_quote(&started.display().to_string()),
        shell_quote(&runs.display().to_string())
    );
    if !started.is_dir() {
        stderrln!(
            "help: that directory is gone; if the files moved, set `directory:` in `{}` to where they are now",
            runs.join(run_id).join("run.yaml").display()
        );
    }
    Err(Exit::Usage)
}

/// The arguments of a resumed run: those it was started with, each `NAME=VALUE` given
/// now replacing the one of its name (or added).
fn merged_args(previous: &[String], given: &[String]) -> Vec<String> {
    let name = |arg: &str| arg.split('=').next().unwrap_or_default().trim().to_string();
    let mut merged: Vec<String> = previous
        .iter()
        .filter(|old| !given.iter().any(|new| name(new) == name(old)))
        .cloned()
        .collect();
    merged.extend(given.iter().cloned());
    merged
}

/// A count of 1 or more (`-j`: zero calls in flight would never finish).
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(count) => Ok(count),
        Err(_) => Err("must be a whole number, at least 1".to_string()),
    }
}

/// `--max-agents`, `--max-tokens`: a whole number, 0 or more.
fn whole_number(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| "must be a whole number, 0 or more (such as `200000`)".to_string())
}

/// The most elements `--sim-list` may ask for: each becomes a node when a `for`
/// iterates it, and a list that no `max` bounds is held whole in memory.
const MAX_SIM_LIST: usize = 10_000;

/// `--sim-list`: 1 to [`MAX_SIM_LIST`] (a huge count panicked on the allocation of the
/// list, or ran out of memory and left the run `running`).
fn sim_list_length(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(count @ 1..=MAX_SIM_LIST) => Ok(count),
        _ => Err(format!("must be a whole number from 1 to {MAX_SIM_LIST}")),
    }
}

/// An amount of dollars, 0 or more (`inf` is no limit; `NaN` is refused, since no cost
/// would ever reach it).
fn dollars(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        // `-0` is 0 (it printed as `$-0.00`).
        Ok(amount) if amount >= 0.0 => Ok(amount + 0.0),
        _ => Err("must be a number of dollars, 0 or more (such as `2.50`)".to_string()),
    }
}

/// `text` quoted for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn list_providers(file: Option<&Path>, offline: bool) -> ExitCode {
    use crate::run::provider::{probe, registry, spec::Spec};
    let specs = match file {
        Some(file) => match checked_file(file, "list the providers of") {
            Ok(outcome) => registry::all_specs(&outcome),
            Err(exit) => return exit.into(),
        },
        None => Spec::builtin_names()
            .iter()
            .filter_map(|name| Spec::builtin(name))
            .collect(),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(exit) => return exit.into(),
    };
    let found = runtime.block_on(async {
        let mut found = Vec::with_capacity(specs.len());
        for spec in &specs {
            found.push(probe::probe(spec, offline).await);
        }
        found
    });
    let width = specs
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    // Padded by hand: `{:width$}` panics past a width of 65,535, and names come from files.
    let pad = |text: &str| " ".repeat(width.saturating_sub(text.chars().count()));
    let default = std::env::var("PAI_PROVIDER").unwrap_or_else(|_| "sim".to_string());
    for (spec, readiness) in specs.iter().zip(found) {
        let mark = if readiness.ready {
            "ready  "
        } else {
            "missing"
        };
        let default_mark = if spec.name == default {
            " (default)"
        } else {
            ""
        };
        stdoutln!(
            "{}{}  {mark}  {}{default_mark}\n{}           {}",
            spec.name,
            pad(&spec.name),
            spec.describe(),
            pad(""),
            readiness.detail,
        );
    }
    Exit::Clean.into()
}

fn explain(code: &str) -> Exit {
    match code.parse::<Code>() {
        Ok(code) => {
            stdoutln!("pai::{code}: {}\n\n{}", code.summary(), code.explain());
            Exit::Clean
        }
        Err(()) => {
            stderrln!("error: `{code}` is not a diagnostic code of pai");
            stderrln!(
                "help: codes look like `E004` or `W001`; see docs/diagnostics.md for the list"
            );
            Exit::Usage
        }
    }
}

fn run_check(paths: &[PathBuf], format: Format, deny_warnings: bool, color: Color) -> Exit {
    let mut files = Vec::new();
    for path in paths {
        if let Err(error) = collect_pai_files(path, &mut files) {
            stderrln!(
                "error: cannot read `{}`: {}",
                path.display(),
                error.to_string().to_lowercase()
            );
            if error.kind() == std::io::ErrorKind::NotFound {
                stderrln!(
                    "help: check the path; `pai check` takes `.pai` files and directories of them"
                );
            }
            return Exit::Usage;
        }
    }
    if files.is_empty() {
        stderrln!("error: no `.pai` files found in the given paths");
        stderrln!("help: pass `.pai` files or directories that contain them");
        return Exit::Usage;
    }
    let outcome = match check::check_paths(&files) {
        Ok(outcome) => outcome,
        Err(error) => {
            stderrln!(
                "error: cannot read `{}`: {}",
                error.path.display(),
                error.error.to_string().to_lowercase()
            );
            return Exit::Usage;
        }
    };
    let errors = outcome.error_count();
    let warnings = outcome.warning_count();
    match format {
        Format::Human => {
            let shown = outcome.diagnostics.len().min(HUMAN_LIMIT);
            let text = report::human(
                &outcome.sources,
                outcome.diagnostics.get(..shown).unwrap_or_default(),
                human_style(color),
            );
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(text.as_bytes());
            if shown < outcome.diagnostics.len() {
                let _ = writeln!(
                    stderr,
                    "note: {} more diagnostics not shown; `--format json` lists them all",
                    outcome.diagnostics.len() - shown
                );
            }
            let _ = writeln!(stderr, "{}", summary_line(files.len(), errors, warnings));
        }
        Format::Json => stdout!("{}", report::json(&outcome.sources, &outcome.diagnostics)),
        Format::Sarif => stdout!("{}", report::sarif(&outcome.sources, &outcome.diagnostics)),
    }
    // The process ends here: freeing the checked program one allocation at a time cost
    // about 6% of `pai check` on a big file, and the OS takes the memory back at once.
    std::mem::forget(outcome);
    if errors > 0 || (deny_warnings && warnings > 0) {
        Exit::Failed
    } else {
        Exit::Clean
    }
}

/// The built-in price table extended by `--prices FILE` or `.pai/prices.yaml`.
fn load_prices(prices_file: Option<&Path>) -> Result<compile::prices::Prices, Exit> {
    let mut prices = compile::prices::Prices::default();
    let default_table = Path::new(".pai/prices.yaml");
    let table = prices_file.or_else(|| default_table.is_file().then_some(default_table));
    if let Some(table) = table {
        if let Err(message) = prices.extend_from(table) {
            stderrln!("error: {message}");
            stderrln!("help: a price table maps model names to `{{ input: 3.0, output: 15.0 }}` dollars per million tokens");
            return Err(Exit::Usage);
        }
    }
    Ok(prices)
}

fn run_plan(
    file: &Path,
    workflow: Option<String>,
    args: Vec<String>,
    format: PlanFormat,
    prices_file: Option<&Path>,
) -> Exit {
    let prices = match load_prices(prices_file) {
        Ok(prices) => prices,
        Err(exit) => return exit,
    };
    let outcome = match checked_file(file, "plan") {
        Ok(outcome) => outcome,
        Err(exit) => return exit,
    };
    let request = compile::Request { workflow, args };
    let plan = match compile::plan(&outcome, &request) {
        Ok(plan) => plan,
        Err(error) => {
            stderrln!("error: {}", error.message);
            stderrln!("help: {}", error.help);
            return if error.usage {
                Exit::Usage
            } else {
                Exit::Failed
            };
        }
    };
    let totals = plan.totals(&prices);
    let text = match format {
        PlanFormat::Tree => compile::render::tree(&plan, &totals),
        PlanFormat::Summary => compile::render::headline(&plan, &totals),
        PlanFormat::Json => compile::render::json(&plan, &totals),
        PlanFormat::Dot => compile::render::dot(&plan, &totals),
        PlanFormat::Mermaid => compile::render::mermaid(&plan, &totals),
    };
    stdout!("{text}");
    Exit::Clean
}

fn run_workflow(args: RunArgs) -> ExitCode {
    use crate::run::{self, provider};
    let mut options = run::Options {
        runs_dir: args.runs_dir.clone(),
        jobs: args.jobs,
        max_agents: args.max_agents,
        max_tokens: args.max_tokens,
        max_cost: args.max_cost,
        yes: args.yes,
        trace: args.trace.clone(),
        progress: !args.quiet,
        run_id: args.run_id.clone(),
        ..run::Options::default()
    };
    if let Some(id) = &args.run_id {
        if crate::compile::ir::safe_segment(id) != *id || id.contains(',') {
            stderrln!("error: `--run-id {id}` is not a safe directory name");
            stderrln!("help: use letters, digits, `-` and `_`");
            return Exit::Usage.into();
        }
    }
    let mut file = args.file.clone();
    let mut plan_args = args.args.clone();
    let mut workflow = args.workflow.clone();
    // `--provider`, else for a new run `PAI_PROVIDER`; a resume goes on with the
    // provider it was started with (an exported `PAI_PROVIDER` would otherwise switch
    // a replayed run to another provider on resume).
    let mut provider_name = args.provider.clone().filter(|name| !name.trim().is_empty());
    if args.resume.is_none() && provider_name.is_none() {
        provider_name = std::env::var("PAI_PROVIDER")
            .ok()
            .filter(|name| !name.trim().is_empty());
    }
    let mut fixture = args.fixture.clone();
    if let Some(run_id) = &args.resume {
        if !is_run_id(run_id, &format!("--resume {run_id}"), &args.runs_dir) {
            return Exit::Usage.into();
        }
        let previous = match run::manifest::read_run(&args.runs_dir.join(run_id)) {
            Ok(previous) => previous,
            Err(message) => {
                stderrln!("error: {message}");
                stderrln!(
                    "help: `--resume` takes the id of a run in `{}`",
                    args.runs_dir.display()
                );
                return Exit::Usage.into();
            }
        };
        if let Err(exit) = resumed_from_where_started(run_id, &previous, &args.runs_dir) {
            return exit.into();
        }
        // A resume goes on with the run's own file and workflow: another would plan a
        // different tree into the same directory, beside the first one's manifests.
        let same_file = |given: &PathBuf| {
            let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
            given == &PathBuf::from(&previous.file)
                || canonical(given).is_some_and(|g| Some(g) == canonical(previous.file.as_ref()))
        };
        let other_file = file.as_ref().filter(|given| !same_file(given));
        let other_workflow = workflow.as_ref().filter(|w| **w != previous.workflow);
        if other_file.is_some() || other_workflow.is_some() {
            let given = match (other_file, other_workflow) {
                (Some(file), Some(w)) => format!("`{}` and workflow `{w}`", file.display()),
                (Some(file), None) => format!("`{}`", file.display()),
                (None, Some(w)) => format!("workflow `{w}`"),
                (None, None) => String::new(),
            };
            stderrln!(
                "error: run `{run_id}` was started with workflow `{}` of `{}`, and a resume goes on with them, not {given}",
                previous.workflow,
                previous.file
            );
            stderrln!(
                "help: resume with `pai run --resume {run_id}`, or start a new run of the other workflow"
            );
            return Exit::Usage.into();
        }
        file = file.or_else(|| Some(PathBuf::from(&previous.file)));
        plan_args = merged_args(&previous.args, &plan_args);
        workflow = workflow.or(Some(previous.workflow.clone()));
        match (&provider_name, &previous.chosen_provider) {
            (None, chosen) => provider_name = chosen.clone(),
            (Some(now), chosen) if Some(now) != chosen.as_ref() => stderrln!(
                "note: run `{run_id}` was started with {}; it goes on with provider `{now}`",
                chosen
                    .as_ref()
                    .map_or("the default provider".to_string(), |c| format!(
                        "provider `{c}`"
                    ))
            ),
            _ => {}
        }
        fixture = fixture.or_else(|| previous.fixture.as_ref().map(PathBuf::from));
        options.run_id = Some(run_id.clone());
        options.resume = true;
    }
    if let Some(request) = &args.request {
        let candidates = crate::route::candidates(&crate::route::default_dirs());
        let Some(routing) = crate::route::route(request, &candidates) else {
            stderrln!("error: no skill's `use when` trigger matches `{request}`");
            stderrln!("help: `pai route \"...\"` shows how requests are routed; or name the file: `pai run FILE`");
            return Exit::Usage.into();
        };
        stderrln!(
            "route: {} `{}` (trigger \"{}\")",
            routing.chosen.skill,
            routing.chosen.workflow,
            routing.chosen.trigger
        );
        file = Some(routing.chosen.file.clone());
        workflow = Some(routing.chosen.workflow.clone());
    }
    let Some(file) = file else {
        stderrln!("error: `pai run` needs a `.pai` file");
        stderrln!("help: `pai run FILE --arg name=value`, `pai run --request \"...\"`, or `pai run --resume RUN_ID`");
        return Exit::Usage.into();
    };
    if let Some(trace) = args.trace.as_deref().filter(|trace| trace.is_dir()) {
        stderrln!("error: `--trace {}` is a directory", trace.display());
        stderrln!("help: name the file to write the trace to, such as `--trace trace.json`");
        return Exit::Usage.into();
    }
    let Some(sim_latency) = parse_latency(&args.sim_latency) else {
        stderrln!(
            "error: `--sim-latency {}` is not a duration",
            args.sim_latency
        );
        stderrln!("help: write it as `50ms`, `2s` or `0ms`");
        return Exit::Usage.into();
    };
    let prices = match load_prices(args.prices.as_deref()) {
        Ok(prices) => std::sync::Arc::new(prices),
        Err(exit) => return exit.into(),
    };
    let outcome = match checked_file(&file, "run") {
        Ok(outcome) => outcome,
        Err(exit) => return exit.into(),
    };
    if let (Some(request), Some(name)) = (&args.request, &workflow) {
        // The request becomes the first `text` parameter `--arg` leaves unset.
        let given = |param: &str| plan_args.iter().any(|a| a.split('=').next() == Some(param));
        let target = crate::compile::workflow_params(&outcome, name)
            .into_iter()
            .find(|(param, is_text)| *is_text && !given(param));
        if let Some((param, _)) = target {
            plan_args.push(format!("{param}={request}"));
        }
    }
    let choice = provider::registry::Choice {
        name: provider_name,
        fixture,
        sim_latency,
        sim_list: args.sim_list,
    };
    let providers =
        match provider::registry::Providers::resolve(&outcome, &choice, &file, prices.clone()) {
            Ok(providers) => providers,
            Err(error) => {
                stderrln!("error: {}", error.message);
                stderrln!("help: {}", error.help);
                return Exit::Usage.into();
            }
        };
    match providers.description().as_str() {
        "sim" if choice.name.is_none() => stderrln!(
            "provider: sim (simulated answers; no model is called; choose one with --provider)"
        ),
        "replay" => stderrln!(
            "provider: replay ({})",
            choice
                .fixture
                .clone()
                .unwrap_or_else(|| file.with_extension("replay.yaml"))
                .display()
        ),
        description => stderrln!("provider: {description}"),
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(exit) => return exit.into(),
    };
    let request = compile::Request {
        workflow,
        args: plan_args,
    };
    let report = runtime.block_on(run::run(&outcome, &request, providers, options, &prices));
    match report {
        Ok(report) => {
            let totals = &report.totals;
            stderrln!(
                "run {} {}{}: {} ({} complete, {}{} failed, {} waiting), {} made ({} reused); {} tokens; ${:.4}; {:.2}s wall, {:.2}s critical path",
                report.run_id,
                report.status.as_str(),
                report.stopped.as_ref().map(|s| format!(" ({s})")).unwrap_or_default(),
                plural(
                    (totals.complete + totals.partial + totals.failed + totals.waiting) as usize,
                    "agent"
                ),
                totals.complete,
                if totals.partial > 0 {
                    format!("{} partial, ", totals.partial)
                } else {
                    String::new()
                },
                totals.failed,
                totals.waiting,
                plural(totals.agent_calls as usize, "call"),
                totals.reused,
                totals.tokens.input.saturating_add(totals.tokens.output),
                totals.cost_usd,
                totals.wall_seconds,
                totals.critical_path_seconds,
            );
            stderrln!("manifests: {}", report.run_dir.display());
            for warning in &report.warnings {
                stderrln!("warning: {warning}");
            }
            stdoutln!("{}", report.summary);
            let signal = (report.stopped.as_deref()).and_then(crate::run::interrupted_exit_code);
            match (signal, report.status) {
                (Some(code), _) => ExitCode::from(code),
                (None, crate::run::resolve::Status::Complete) => Exit::Clean.into(),
                (None, _) => Exit::Failed.into(),
            }
        }
        Err(error) => {
            stderrln!("error: {}", error.message);
            stderrln!("help: {}", error.help);
            // A plan that breaks a bound exits as `pai plan` does.
            if error.plan_broken {
                Exit::Failed.into()
            } else {
                Exit::Usage.into()
            }
        }
    }
}

fn test_workflow(file: &Path) -> ExitCode {
    use crate::run::{self, expect::Expectations, provider::replay::Replay};
    let fixture = file.with_extension("replay.yaml");
    let expectations_path = file.with_extension("expect.yaml");
    let (replay, expectations) = match (
        Replay::load(&fixture),
        Expectations::load(&expectations_path),
    ) {
        (Ok(replay), Ok(expectations)) => (replay, expectations),
        (Err(message), _) | (_, Err(message)) => {
            stderrln!("error: {message}");
            stderrln!("help: `pai test FILE.pai` needs FILE.replay.yaml and FILE.expect.yaml beside it; see docs/run.md");
            return Exit::Usage.into();
        }
    };
    let outcome = match checked_file(file, "test") {
        Ok(outcome) => outcome,
        Err(exit) => return exit.into(),
    };
    let runs_dir = std::env::temp_dir().join(format!("pai-test-{}", std::process::id()));
    let options = run::Options {
        runs_dir: runs_dir.clone(),
        run_id: Some("test".to_string()),
        yes: true,
        progress: false,
        backoff: std::time::Duration::from_millis(1),
        ..run::Options::default()
    };
    let request = compile::Request {
        workflow: expectations.workflow.clone(),
        args: expectations.args.clone(),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(exit) => return exit.into(),
    };
    let result = runtime.block_on(run::run(
        &outcome,
        &request,
        std::sync::Arc::new(replay),
        options,
        &compile::prices::Prices::default(),
    ));
    // The expectations read the run's manifests; the run is removed before anything
    // is printed, since a failed write to stdout ends `pai` at once.
    let mismatches = result.map(|report| expectations.mismatches(&report));
    let _ = std::fs::remove_dir_all(&runs_dir);
    let code = match mismatches {
        Ok(mismatches) if mismatches.is_empty() => {
            stdoutln!(
                "ok: {} ({} expectations)",
                file.display(),
                expectations.nodes.len() + 1
            );
            Exit::Clean
        }
        Ok(mismatches) => {
            stdoutln!("FAILED: {}", file.display());
            for mismatch in &mismatches {
                stdoutln!("  {mismatch}");
            }
            let count = mismatches.len();
            stdoutln!("{count} mismatch{}", if count == 1 { "" } else { "es" });
            Exit::Failed
        }
        Err(error) => {
            stderrln!("error: {}", error.message);
            stderrln!("help: {}", error.help);
            Exit::Failed
        }
    };
    code.into()
}

fn parse_latency(text: &str) -> Option<std::time::Duration> {
    humantime::parse_duration(text.trim()).ok()
}

/// The runtime runs use: the scheduler on this thread, calls on a worker per core.
fn runtime() -> Result<tokio::runtime::Runtime, Exit> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            stderrln!("error: cannot start the runtime: {error}");
            Exit::Usage
        })
}

/// Checks `file` for `pai COMMAND`: its errors are reported and end the command.
fn checked_file(file: &Path, command: &str) -> Result<check::Outcome, Exit> {
    let outcome = check::check_paths(&[file.to_path_buf()]).map_err(|error| {
        stderrln!(
            "error: cannot read `{}`: {}",
            error.path.display(),
            error.error.to_string().to_lowercase()
        );
        Exit::Usage
    })?;
    if outcome.error_count() == 0 {
        return Ok(outcome);
    }
    let errors: Vec<_> = outcome
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .cloned()
        .collect();
    stderr!(
        "{}",
        report::human(&outcome.sources, &errors, human_style(Color::Auto))
    );
    stderrln!(
        "error: `{}` has {}; `pai {command}` needs a file that checks",
        file.display(),
        plural(errors.len(), "error")
    );
    Err(Exit::Failed)
}

fn human_style(color: Color) -> report::HumanStyle {
    let color = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    };
    let width = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100);
    report::HumanStyle { color, width }
}

/// `1 error`, `2 errors`.
fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn summary_line(files: usize, errors: usize, warnings: usize) -> String {
    format!(
        "checked {}: {}, {}",
        plural(files, "file"),
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// `path` itself if it is a file, or every `.pai` file under it (sorted, skipping
/// hidden directories and `target`). Under a directory, only regular files count (or
/// links to them), and links to directories are not followed: a link back to its own
/// directory made the walk endless, and a named pipe waited for a writer.
fn collect_pai_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let metadata = std::fs::metadata(path)?;
    if !metadata.is_dir() {
        out.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<(PathBuf, std::fs::FileType)> = std::fs::read_dir(path)?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            Some((entry.path(), entry.file_type().ok()?))
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (entry, kind) in entries {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if kind.is_dir() {
            if !name.starts_with('.') && name != "target" {
                collect_pai_files(&entry, out)?;
            }
        } else if name.ends_with(".pai") && is_regular_file(&entry, kind) {
            out.push(entry);
        }
    }
    Ok(())
}

/// Whether a directory entry is a regular file, or a link to one.
fn is_regular_file(path: &Path, kind: std::fs::FileType) -> bool {
    kind.is_file() || (kind.is_symlink() && std::fs::metadata(path).is_ok_and(|m| m.is_file()))
}

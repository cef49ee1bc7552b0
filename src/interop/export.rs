//! `pai export claude OUT/`: pai skills as Claude Code skills, so a pai skill can also be
//! used inside Claude Code. For each skill:
//!
//! - `OUT/NAME/SKILL.md`: front matter with `name` (`[a-z0-9-]`, at most 64, equal to
//!   the folder) and `description` (at most 1,024 characters: what the skill does, then
//!   `USE WHEN` and its triggers, quoted), then a `## Workflow Routing` table;
//! - `OUT/NAME/workflows/W.md`: each workflow as numbered steps (which agent or skill
//!   each `let` starts, what it is handed, which run in parallel), with its pai source;
//! - `OUT/NAME/agents/A.md`: each agent as a Claude Code subagent (`name`,
//!   `description`, `tools`, `model`), its system prompt and prompt template as the body.
//!
//! Routing cells in parentheses are notes, not triggers: `pai import skill` skips them,
//! so an export imports back to the same skill.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{kebab, yaml_quote, MAX_DESCRIPTION, MAX_NAME};
use crate::check::scope::{ItemKind, ItemRef};
use crate::check::{ModuleId, Outcome};
use crate::syntax::ast::{self, Expr, ExprKind, Item};

/// One skill's export: the files it would write, and what they hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Exported {
    pub skill: String,
    pub dir: PathBuf,
    /// Each file's path and text, with the `.pai` item it comes from.
    pub files: Vec<(PathBuf, String, String)>,
    /// What had to change to fit the limits (a trigger dropped, a name shortened).
    pub notes: Vec<String>,
}

/// Plans the export of every skill declared in the root modules of `outcome` under
/// `out`; nothing is written ([`write_all`] writes).
pub fn export(outcome: &Outcome, out: &Path) -> Vec<Exported> {
    let mut exported = Vec::new();
    for root in &outcome.roots {
        for item in &outcome.program.module(*root).ast.items {
            if let Item::Skill(skill) = item {
                exported.push(export_skill(outcome, *root, skill, out));
            }
        }
    }
    exported
}

/// Writes what [`export`] planned, or nothing: two things that would be written to one
/// file (skills `my_skill` and `my-skill` both become `my-skill/`; agents `a_b` and
/// `a-b` both `agents/a-b.md`) are refused, and so is a file that exists already,
/// unless `force` (a hand-written `SKILL.md` was replaced without a word).
pub fn write_all(exports: &[Exported], force: bool) -> Result<(), WriteError> {
    let mut claimed: std::collections::HashMap<&Path, &str> = std::collections::HashMap::new();
    for export in exports {
        for (path, _, from) in &export.files {
            if let Some(first) = claimed.insert(path, from) {
                return Err(WriteError {
                    message: format!(
                        "{first} and {from} would both be exported to `{}`",
                        path.display()
                    ),
                    help: "rename one of the two: exported names are lowercase, with `-` for `_`"
                        .to_string(),
                });
            }
            if !force && std::fs::symlink_metadata(path).is_ok() {
                return Err(WriteError {
                    message: format!("`{}` exists already", path.display()),
                    help: "export into a new directory, or pass `--force` to replace the files `pai export` writes".to_string(),
                });
            }
        }
    }
    for export in exports {
        for (path, text, _) in &export.files {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| WriteError::io(parent, &e))?;
            }
            std::fs::write(path, text).map_err(|e| WriteError::io(path, &e))?;
        }
    }
    Ok(())
}

/// Why an export was not written, and what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteError {
    pub message: String,
    pub help: String,
}

impl WriteError {
    fn io(path: &Path, error: &std::io::Error) -> WriteError {
        WriteError {
            message: io(path, error),
            help: "pick an output directory you can write to".to_string(),
        }
    }
}

fn io(path: &Path, error: &std::io::Error) -> String {
    format!(
        "cannot write `{}`: {}",
        path.display(),
        error.to_string().to_lowercase()
    )
}

/// `description` then `USE WHEN` and the quoted triggers, within 1,024 characters:
/// triggers are dropped from the end until it fits.
pub fn claude_description(description: &str, triggers: &[String]) -> (String, Vec<String>) {
    let what = description.trim().trim_end_matches('.');
    let mut kept: Vec<&String> = triggers.iter().collect();
    let mut notes = Vec::new();
    loop {
        let text = if kept.is_empty() {
            format!("{what}.")
        } else {
            let quoted: Vec<String> = kept
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "'")))
                .collect();
            format!("{what}. USE WHEN the request says {}.", quoted.join(", "))
        };
        if text.chars().count() <= MAX_DESCRIPTION {
            return (text, notes);
        }
        match kept.pop() {
            Some(dropped) => notes.push(format!(
                "dropped the trigger \"{dropped}\" to keep the description within {MAX_DESCRIPTION} characters"
            )),
            None => {
                let cut: String = what.chars().take(MAX_DESCRIPTION - 1).collect();
                notes.push(format!("cut the description to {MAX_DESCRIPTION} characters"));
                return (format!("{cut}…"), notes);
            }
        }
    }
}

fn export_skill(outcome: &Outcome, module: ModuleId, skill: &ast::Skill, out: &Path) -> Exported {
    let mut notes = Vec::new();
    let name = kebab(&skill.name.name);
    if name != skill.name.name {
        notes.push(format!(
            "named `{name}` (agentskills.io names are lowercase `[a-z0-9-]`, at most {MAX_NAME})"
        ));
    }
    let description = skill
        .settings
        .iter()
        .find_map(|s| match &s.value {
            ast::Value::Text(t) if s.key.name == "description" => Some(t.value.clone()),
            _ => None,
        })
        .unwrap_or_else(|| format!("The {name} skill"));
    let triggers: Vec<String> = skill.triggers.iter().map(|t| t.value.clone()).collect();
    let (front_description, cut) = claude_description(&description, &triggers);
    notes.extend(cut);
    let dir = out.join(&name);
    let mut files = Vec::new();

    // The skill's workflows, then the workflows they call, and the agents all of them call.
    let scope = outcome.scopes.get(module.0);
    let lookup = |module: ModuleId, name: &str| {
        outcome
            .scopes
            .get(module.0)
            .and_then(|s| s.names.get(name))
            .map(|b| (b.item, b.kind))
    };
    let mut workflows: Vec<ItemRef> = skill
        .workflows
        .iter()
        .filter_map(|w| scope.and_then(|s| s.names.get(&w.name)).map(|b| b.item))
        .collect();
    let mut agents: BTreeSet<ItemRef> = BTreeSet::new();
    let mut index = 0;
    while let Some(&workflow) = workflows.get(index) {
        index += 1;
        let Some(Item::Workflow(decl)) = item(outcome, workflow) else {
            continue;
        };
        let mut calls = Vec::new();
        for expr in workflow_exprs(decl) {
            collect_calls(expr, &mut calls);
        }
        for call in calls {
            if call.method.is_some() {
                continue;
            }
            match lookup(workflow.module, &call.callee.name) {
                Some((target, ItemKind::Workflow)) if !workflows.contains(&target) => {
                    workflows.push(target)
                }
                Some((target, ItemKind::Agent)) => {
                    agents.insert(target);
                }
                _ => {}
            }
        }
    }

    let mut routing =
        String::from("| Workflow | Trigger | File |\n|----------|---------|------|\n");
    for (i, workflow) in skill.workflows.iter().enumerate() {
        let note = if i == 0 {
            "(the default)".to_string()
        } else {
            format!("(a request that names `{}`)", workflow.name)
        };
        routing.push_str(&format!(
            "| **{}** | {note} | `workflows/{}.md` |\n",
            workflow.name, workflow.name
        ));
    }
    let source = outcome
        .sources
        .get(outcome.program.module(module).file)
        .name()
        .to_string();
    let skill_md = format!(
        "---\nname: {name}\ndescription: {}\n---\n\n# {name}\n\n{description}\n\nWritten in pai (`{source}`), where every context budget is proven before it runs: with\npai installed, `pai run --request \"...\"` routes a request here, and\n`pai run {source} --workflow WORKFLOW --arg name=value` runs one workflow. Inside Claude\nCode, follow the workflow file the table below names: each step says which agent of\n`agents/` to spawn and what to hand it; steps that do not use each other run in\nparallel, and a parent reads only its children's one-line summaries.\n\n## Workflow Routing\n\n{routing}",
        yaml_quote(&front_description)
    );
    let origin = format!("skill `{}` of `{source}`", skill.name.name);
    files.push((dir.join("SKILL.md"), skill_md, origin.clone()));
    for workflow in &workflows {
        if let Some(Item::Workflow(decl)) = item(outcome, *workflow) {
            let text = workflow_markdown(outcome, *workflow, decl, &name);
            files.push((
                dir.join("workflows").join(format!("{}.md", decl.name.name)),
                text,
                format!("workflow `{}` of {origin}", decl.name.name),
            ));
        }
    }
    for agent in &agents {
        if let Some(Item::Agent(decl)) = item(outcome, *agent) {
            let text = agent_markdown(decl, &name);
            files.push((
                dir.join("agents")
                    .join(format!("{}.md", kebab(&decl.name.name))),
                text,
                format!("agent `{}` of {origin}", decl.name.name),
            ));
        }
    }
    Exported {
        skill: name,
        dir,
        files,
        notes,
    }
}

fn item(outcome: &Outcome, item: ItemRef) -> Option<&Item> {
    outcome
        .program
        .module(item.module)
        .ast
        .items
        .get(item.index)
}

fn workflow_exprs(decl: &ast::Workflow) -> Vec<&Expr> {
    decl.lets
        .iter()
        .map(|l| &l.value)
        .chain(decl.returns_stmts.iter().map(|r| &r.value))
        .collect()
}

fn collect_calls<'a>(expr: &'a Expr, out: &mut Vec<&'a ast::Call>) {
    match &expr.kind {
        ExprKind::Call(call) => {
            out.push(call);
            for arg in &call.args {
                collect_calls(&arg.value, out);
            }
        }
        ExprKind::List(items) => items.iter().for_each(|e| collect_calls(e, out)),
        ExprKind::Field(base, _) | ExprKind::Not(base) => collect_calls(base, out),
        ExprKind::Binary(_, left, right) => {
            collect_calls(left, out);
            collect_calls(right, out);
        }
        ExprKind::For(f) => {
            collect_calls(&f.iter, out);
            f.body
                .lets
                .iter()
                .for_each(|l| collect_calls(&l.value, out));
            collect_calls(&f.body.value, out);
        }
        ExprKind::If(i) => {
            collect_calls(&i.cond, out);
            for block in [&i.then, &i.otherwise] {
                block.lets.iter().for_each(|l| collect_calls(&l.value, out));
                collect_calls(&block.value, out);
            }
        }
        ExprKind::Text(_) | ExprKind::Quantity(_) | ExprKind::Bool(_) | ExprKind::Ref(_) => {}
    }
}

/// Describes workflows in prose, reading names through the workflow's module.
struct Describer<'o> {
    outcome: &'o Outcome,
    module: ModuleId,
    source: &'o str,
}

impl Describer<'_> {
    fn src(&self, expr: &Expr) -> String {
        let text = self
            .source
            .get(expr.span.start..expr.span.end)
            .unwrap_or("…")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        format!("`{text}`")
    }

    fn describe(&self, expr: &Expr) -> String {
        match &expr.kind {
            ExprKind::Call(call) => self.call(call),
            ExprKind::For(f) => format!(
                "for each `{}` in {}{}, in parallel: {}",
                f.var.name,
                self.describe(&f.iter),
                f.max
                    .as_ref()
                    .and_then(|m| m.as_count())
                    .map(|n| format!(" (at most {n})"))
                    .unwrap_or_default(),
                self.block(&f.body)
            ),
            ExprKind::If(i) => format!(
                "if {}: {}; otherwise: {}",
                self.src(&i.cond),
                self.block(&i.then),
                self.block(&i.otherwise)
            ),
            _ => self.src(expr),
        }
    }

    fn block(&self, block: &ast::Block) -> String {
        let mut parts: Vec<String> = block
            .lets
            .iter()
            .map(|l| format!("`{}` = {}", l.name.name, self.describe(&l.value)))
            .collect();
        parts.push(self.describe(&block.value));
        parts.join(", then ")
    }

    fn call(&self, call: &ast::Call) -> String {
        let args: Vec<String> = call
            .args
            .iter()
            .map(|a| match &a.name {
                Some(name) => format!("{}: {}", name.name, self.src(&a.value)),
                None => self.src(&a.value),
            })
            .collect();
        let handed = if args.is_empty() {
            String::new()
        } else {
            format!(" with {}", args.join(", "))
        };
        let kind = self
            .outcome
            .scopes
            .get(self.module.0)
            .and_then(|s| s.names.get(&call.callee.name))
            .map(|b| b.kind);
        let name = &call.callee.name;
        match (kind, &call.method) {
            (Some(ItemKind::Agent), _) => {
                format!(
                    "spawn the `{name}` agent (`agents/{}.md`){handed}",
                    kebab(name)
                )
            }
            (Some(ItemKind::Workflow), _) => {
                format!("run the `{name}` workflow (`workflows/{name}.md`){handed}")
            }
            (Some(ItemKind::Skill), Some(method)) => {
                format!(
                    "use the `{name}` skill's `{}` workflow{handed}",
                    method.name
                )
            }
            (Some(ItemKind::Skill), None) => format!("use the `{name}` skill{handed}"),
            _ => match name.as_str() {
                "files" => format!("the files {}", args.join(" matching ")),
                "dirs" => format!("the folders in {}", args.join(", ")),
                "read" => format!("the text of {}", args.join(", ")),
                _ => format!("`{name}`{handed}"),
            },
        }
    }
}

fn workflow_markdown(
    outcome: &Outcome,
    workflow: ItemRef,
    decl: &ast::Workflow,
    skill: &str,
) -> String {
    let file = outcome.program.module(workflow.module).file;
    let source = outcome.sources.get(file).text();
    let describer = Describer {
        outcome,
        module: workflow.module,
        source,
    };
    let params: Vec<String> = decl
        .params
        .iter()
        .map(|p| {
            let text = source.get(p.span.start..p.span.end).unwrap_or(&p.name.name);
            format!(
                "- `{}`",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    let mut steps = Vec::new();
    for (i, binding) in decl.lets.iter().enumerate() {
        steps.push(format!(
            "{}. `{}`: {}",
            i + 1,
            binding.name.name,
            describer.describe(&binding.value)
        ));
    }
    let result = decl
        .returns_stmts
        .first()
        .map(|r| describer.describe(&r.value))
        .unwrap_or_else(|| "nothing".to_string());
    let mut limits = Vec::new();
    if let Some(depth) = decl.depth.first().and_then(|d| d.as_count()) {
        limits.push(format!("It may call itself, at most {depth} levels deep."));
    }
    if let Some(protocol) = decl.follows.first() {
        limits.push(format!(
            "It follows the `{}` protocol: bounded depth and fan-out, short summaries, and work fanned out instead of done by one agent.",
            protocol.name
        ));
    }
    let code = source
        .get(decl.span.start..decl.span.end)
        .unwrap_or("")
        .to_string();
    format!(
        "# {name}\n\nA workflow of the {skill} skill.\n\n## Inputs\n\n{params}\n\n## Steps\n\nEach step starts as soon as what it uses is ready; steps that do not use each other run\nin parallel. Every agent answers with a one-line summary first, and a parent reads only\nthose summaries.\n\n{steps}\n\n**Result**: {result}\n{limits}\n## In pai\n\n```\n{code}\n```\n",
        name = decl.name.name,
        params = if params.is_empty() { "None.".to_string() } else { params.join("\n") },
        steps = if steps.is_empty() { "1. Only the result below.".to_string() } else { steps.join("\n") },
        limits = if limits.is_empty() { String::new() } else { format!("\n{}\n", limits.join(" ")) },
    )
}

/// `Read, Edit, Bash(git:*)` as a front-matter value: plain when every tool is made of
/// the characters tool names use, quoted otherwise (a tool written as a string could
/// hold a newline and `---`, and end the front matter early).
fn front_matter_list(tools: &[String]) -> String {
    let listed = tools.join(", ");
    let plain = tools.iter().all(|tool| {
        !tool.is_empty()
            && !tool.contains(": ")
            && tool
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-()*:/.@ ".contains(c))
            && tool.starts_with(|c: char| c.is_ascii_alphabetic())
    });
    if plain {
        listed
    } else {
        yaml_quote(&listed)
    }
}

fn agent_markdown(decl: &ast::Agent, skill: &str) -> String {
    let text = |key: &str| {
        decl.setting(key)
            .and_then(|s| s.value.as_text())
            .map(str::to_string)
    };
    let prompt = text("prompt").unwrap_or_default();
    let first_line = prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(200)
        .collect::<String>();
    let tools: Vec<String> = decl
        .setting("tools")
        .map_or_else(Vec::new, |s| s.value.words());
    let model = text("model").filter(|m| matches!(m.as_str(), "sonnet" | "opus" | "haiku"));
    let inputs: Vec<String> = decl
        .params
        .iter()
        .map(|p| format!("`{}`", p.name.name))
        .collect();
    let mut front = format!(
        "---\nname: {}\ndescription: {}\n",
        kebab(&decl.name.name),
        yaml_quote(&format!(
            "{} (an agent of the {skill} skill)",
            first_line.replace(['{', '}'], "")
        ))
    );
    if !tools.is_empty() {
        front.push_str(&format!("tools: {}\n", front_matter_list(&tools)));
    }
    if let Some(model) = model {
        front.push_str(&format!("model: {model}\n"));
    }
    front.push_str("---\n\n");
    if let Some(system) = text("system") {
        front.push_str(&system);
        front.push_str("\n\n");
    }
    front.push_str(&format!(
        "You are handed {}. Your task, with `{{{{name}}}}` standing for what you are handed:\n\n{prompt}\n\nAnswer with one line first: your summary for the agent that spawned you.\n",
        if inputs.is_empty() { "nothing".to_string() } else { inputs.join(", ") }
    ));
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_quoted_unless_plain() {
        let tools = |list: &[&str]| {
            front_matter_list(&list.iter().map(|t| t.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            tools(&["Read", "Edit", "Bash(git:*)"]),
            "Read, Edit, Bash(git:*)"
        );
        assert_eq!(
            tools(&["Edit\n---\nmodel: opus"]),
            "\"Edit --- model: opus\""
        );
        assert_eq!(tools(&["#x"]), "\"#x\"");
    }

    #[test]
    fn long_descriptions_drop_triggers_from_the_end_to_fit() {
        let triggers: Vec<String> = (0..200).map(|i| format!("trigger number {i}")).collect();
        let (text, notes) = claude_description("Does things", &triggers);
        assert!(text.chars().count() <= MAX_DESCRIPTION);
        assert!(text.starts_with("Does things. USE WHEN the request says \"trigger number 0\""));
        assert!(!notes.is_empty());
        let (text, notes) = claude_description("Short.", &["a".to_string()]);
        assert_eq!(text, "Short. USE WHEN the request says \"a\".");
        assert!(notes.is_empty());
    }
}

//! `pai import skill DIR/SKILL.md`: a Claude Code skill in either PAI dialect becomes a
//! `.pai` skill.
//!
//! - The name comes from the front matter (`QuickResearch` → `quick-research`), else the
//!   folder's name.
//! - The description is split at `USE WHEN`: what comes before is the description, the
//!   phrases after are the `use when` triggers.
//! - Workflows come from a `## Workflow Routing` table (`| Workflow | Trigger | File |`,
//!   or `| Trigger | Workflow |` whose cells are file paths); without a table, from the
//!   files of `workflows/` (or `Workflows/`). A routing table's triggers join the
//!   skill's. A skill without workflows gets one, `run`.
//! - Each workflow becomes one agent whose prompt is the workflow file (the request
//!   appended) and whose system prompt is the rest of SKILL.md; `allowed-tools` become
//!   its `tools`. Handlebars braces in the Markdown are escaped, so the text stays text.

use std::path::{Path, PathBuf};

use super::{front_matter, kebab, split_use_when, triggers};

/// The words of the language a name may not be (DESIGN §1).
const RESERVED: &[&str] = &[
    "let", "return", "for", "in", "if", "else", "after", "true", "false", "and", "or", "not",
];

/// A skill read from Markdown.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkdownSkill {
    pub name: String,
    pub description: String,
    pub triggers: Vec<String>,
    pub workflows: Vec<MarkdownWorkflow>,
    /// SKILL.md's body without its routing table.
    pub context: String,
    pub tools: Vec<String>,
}

/// One workflow of a Markdown skill.
#[derive(Clone, Debug, PartialEq)]
pub struct MarkdownWorkflow {
    pub name: String,
    pub trigger: Option<String>,
    /// The workflow file's text (empty when the table names a file that is missing).
    pub steps: String,
}

/// Reads `path` (a SKILL.md, or the folder holding one).
pub fn read(path: &Path) -> Result<MarkdownSkill, String> {
    let file = if path.is_dir() {
        path.join("SKILL.md")
    } else {
        path.to_path_buf()
    };
    let text = crate::source::read_text(&file)?;
    let dir = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let (pairs, body) = front_matter(&text);
    let field = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.clone())
    };
    let folder = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "skill".to_string());
    let name = kebab(&field("name").unwrap_or(folder));
    let (description, mut skill_triggers) =
        split_use_when(&field("description").unwrap_or_default());
    let tools: Vec<String> = field("allowed-tools")
        .or_else(|| field("tools"))
        .map(|list| {
            list.trim_matches(['[', ']'])
                .split([',', ' '])
                .map(|t| t.trim().trim_matches(['"', '\'']).to_string())
                .filter(|t| {
                    t.starts_with(|c: char| c.is_ascii_alphabetic())
                        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .collect()
        })
        .unwrap_or_default();
    let (table, context) = routing_table(body);
    let mut workflows: Vec<MarkdownWorkflow> = Vec::new();
    for row in table {
        let name = kebab(&row.name);
        if workflows.iter().any(|w| w.name == name) {
            continue;
        }
        let steps = row
            .file
            .as_deref()
            .map(|f| dir.join(f.trim_start_matches("./")))
            .into_iter()
            .chain(
                workflow_files(&dir)
                    .into_iter()
                    .filter(|f| kebab(&stem(f)) == name),
            )
            .find_map(|f| read_inside(&dir, &f))
            .unwrap_or_default();
        workflows.push(MarkdownWorkflow {
            name,
            trigger: row.trigger,
            steps,
        });
    }
    // With a routing table, the table is the list (other files are what its workflows
    // read); without one, every workflow file is a workflow.
    let untabled = if workflows.is_empty() {
        workflow_files(&dir)
    } else {
        Vec::new()
    };
    for file in untabled {
        let name = kebab(&stem(&file));
        if workflows.iter().all(|w| w.name != name) {
            workflows.push(MarkdownWorkflow {
                name,
                trigger: None,
                steps: read_inside(&dir, &file).unwrap_or_default(),
            });
        }
    }
    if workflows.is_empty() {
        workflows.push(MarkdownWorkflow {
            name: "run".to_string(),
            trigger: None,
            steps: context.clone(),
        });
    }
    // Skills, workflows and agents share one scope, and a few words are reserved.
    let mut name = name;
    while RESERVED.contains(&name.as_str()) {
        name = format!("{name}-skill");
    }
    let mut taken: Vec<String> = vec![name.clone()];
    for workflow in &mut workflows {
        while RESERVED.contains(&workflow.name.as_str())
            || taken.contains(&workflow.name)
            || taken.contains(&format!("{}-agent", workflow.name))
        {
            workflow.name = format!("{}-workflow", workflow.name);
        }
        taken.push(workflow.name.clone());
        taken.push(format!("{}-agent", workflow.name));
    }
    for workflow in &workflows {
        if let Some(trigger) = &workflow.trigger {
            for phrase in triggers(trigger) {
                if !skill_triggers
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(&phrase))
                {
                    skill_triggers.push(phrase);
                }
            }
        }
    }
    Ok(MarkdownSkill {
        name,
        description,
        triggers: skill_triggers,
        workflows,
        context,
        tools,
    })
}

/// The largest workflow file read; a bigger one is not a prompt.
const MAX_WORKFLOW_BYTES: u64 = 256 * 1024;

/// The text of `file` if it is a regular file inside `dir` and not too big: a routing
/// table cannot pull `/home/u/.aws/credentials` or `/dev/zero` into a prompt.
fn read_inside(dir: &Path, file: &Path) -> Option<String> {
    let root = dir.canonicalize().ok()?;
    let path = file.canonicalize().ok()?;
    let meta = path.metadata().ok()?;
    if !path.starts_with(&root) || !meta.is_file() || meta.len() > MAX_WORKFLOW_BYTES {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The Markdown files of `workflows/` or `Workflows/`, sorted.
fn workflow_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["workflows", "Workflows"]
        .iter()
        .filter_map(|sub| std::fs::read_dir(dir.join(sub)).ok())
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.dedup();
    files
}

struct Row {
    name: String,
    trigger: Option<String>,
    file: Option<String>,
}

/// The rows of the first table with a `Workflow` column, and the body without it.
fn routing_table(body: &str) -> (Vec<Row>, String) {
    let lines: Vec<&str> = body.lines().collect();
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let mut i = 0;
    while i + 1 < lines.len() {
        let header = cells(lines[i]);
        let is_table = lines[i].trim_start().starts_with('|')
            && lines[i + 1].trim_start().starts_with('|')
            && lines[i + 1].contains("---");
        let column = |words: &[&str]| {
            header
                .iter()
                .position(|h| words.iter().any(|w| h.to_lowercase().contains(w)))
        };
        if is_table {
            if let Some(workflow) = column(&["workflow"]) {
                let trigger = column(&["trigger", "intent", "when"]);
                let file = column(&["file", "path"]);
                let mut rows = Vec::new();
                let mut end = i + 2;
                while let Some(line) = lines.get(end).filter(|l| l.trim_start().starts_with('|')) {
                    let row = cells(line);
                    let plain = |index: Option<usize>| {
                        index
                            .and_then(|k| row.get(k))
                            .map(|c| c.trim_matches(['*', '`', ' ']).to_string())
                            .filter(|c| !c.is_empty())
                    };
                    let named = plain(Some(workflow)).unwrap_or_default();
                    let path =
                        plain(file).or_else(|| named.ends_with(".md").then(|| named.clone()));
                    let name = match &path {
                        Some(p) if named.ends_with(".md") || named.is_empty() => stem(Path::new(p)),
                        _ => named,
                    };
                    // A cell in parentheses is a note (`(the default)`), not a trigger.
                    let trigger =
                        plain(trigger).filter(|t| !(t.starts_with('(') && t.ends_with(')')));
                    if !name.is_empty() {
                        rows.push(Row {
                            name,
                            trigger,
                            file: path,
                        });
                    }
                    end += 1;
                }
                let mut rest: Vec<&str> = lines[..i].to_vec();
                rest.extend_from_slice(&lines[end.min(lines.len())..]);
                return (rows, rest.join("\n").trim().to_string());
            }
        }
        i += 1;
    }
    (Vec::new(), body.trim().to_string())
}

/// The `.pai` text of a Markdown skill; it checks clean.
pub fn to_pai(skill: &MarkdownSkill, source: &Path) -> String {
    let mut out = format!(
        "# Imported from {} by `pai import skill`: one agent per workflow, whose prompt\n# is the workflow file. Edit freely; `pai check` this file after.\n\n",
        source.display()
    );
    out.push_str(&format!("skill {} {{\n", skill.name));
    out.push_str(&format!("  description {}\n", quote(&skill.description)));
    if !skill.triggers.is_empty() {
        let phrases: Vec<String> = skill.triggers.iter().map(|t| quote(t)).collect();
        out.push_str(&format!("  use when {}\n", phrases.join(", ")));
    }
    for workflow in &skill.workflows {
        out.push_str(&format!("  workflow {}\n", workflow.name));
    }
    out.push_str("}\n");
    for workflow in &skill.workflows {
        let agent = format!("{}-agent", workflow.name);
        out.push('\n');
        if let Some(trigger) = &workflow.trigger {
            out.push_str(&format!(
                "# Routed here by: {}\n",
                trigger.replace('\n', " ")
            ));
        }
        out.push_str(&format!(
            "agent {agent}(request: text max 4k) -> result {{\n"
        ));
        out.push_str("  model    \"sonnet\"\n");
        if !skill.tools.is_empty() {
            // A tool named like a reserved word (`for`) is written as text.
            let tools: Vec<String> = (skill.tools.iter())
                .map(|tool| {
                    if RESERVED.contains(&tool.as_str()) {
                        format!("\"{tool}\"")
                    } else {
                        tool.clone()
                    }
                })
                .collect();
            out.push_str(&format!("  tools    [{}]\n", tools.join(", ")));
        }
        out.push_str("  context  200k\n  summary  80 tokens\n");
        if !skill.context.trim().is_empty() && workflow.steps != skill.context {
            out.push_str(&format!(
                "  system {}\n",
                block(&escape_braces(&skill.context))
            ));
        }
        let steps = if workflow.steps.trim().is_empty() {
            format!(
                "Carry out the `{}` workflow of the {} skill.",
                workflow.name, skill.name
            )
        } else {
            workflow.steps.trim_end().to_string()
        };
        out.push_str(&format!(
            "  prompt {}\n}}\n",
            block(&format!(
                "{}\n\nThe request: {{{{request}}}}",
                escape_braces(&steps)
            ))
        ));
        out.push_str(&format!(
            "\nworkflow {}(request: text max 4k) -> result {{\n  return {agent}(request: request)\n}}\n",
            workflow.name
        ));
    }
    out
}

/// A `"..."` literal.
fn quote(text: &str) -> String {
    format!(
        "\"{}\"",
        text.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace("\r\n", "\n")
            .replace('\r', " ")
            .replace('\n', "\\n")
            .replace('\t', "\\t")
    )
}

/// A `"""` block, indented; a `"""` inside the text is written `'''`.
fn block(text: &str) -> String {
    let body: Vec<String> = text
        .replace("\"\"\"", "'''")
        .lines()
        .map(|line| {
            if line.trim().is_empty() {
                String::new()
            } else {
                format!("    {}", line.replace('\t', "  "))
            }
        })
        .collect();
    format!("\"\"\"\n{}\n  \"\"\"", body.join("\n"))
}

/// Markdown `{{` made literal for Handlebars.
///
/// A backslash right before `{{` gets a space after it: `\\{{x}}` in the Markdown became
/// `\\\\{{x}}`, which handlebars reads as an escaped backslash and then the expression
/// `x`, and handlebars has no way to write a backslash and literal braces together.
fn escape_braces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        if out.ends_with('\\') {
            out.push(' ');
        }
        out.push_str("\\{{");
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backslash_before_braces_stays_text() {
        let mut registry = handlebars::Handlebars::new();
        registry.set_strict_mode(true);
        let template = escape_braces(r"path\{{x}} and \\{{y}}");
        let rendered = registry
            .render_template(&template, &serde_json::json!({}))
            .expect("renders with no parameters");
        assert_eq!(rendered, r"path\ {{x}} and \\ {{y}}");
    }

    #[test]
    fn escaped_braces_render_as_text() {
        let mut registry = handlebars::Handlebars::new();
        registry.set_strict_mode(true);
        let template = escape_braces("Use {{this}} and {{#each x}} as written; {{request}}");
        registry
            .register_template_string("t", format!("{template} {{{{request}}}}"))
            .expect("compiles");
        let rendered = registry
            .render("t", &serde_json::json!({ "request": "R" }))
            .expect("renders");
        assert_eq!(
            rendered,
            "Use {{this}} and {{#each x}} as written; {{request}} R"
        );
    }

    #[test]
    fn a_routing_table_names_workflows_with_their_triggers_and_files() {
        let (rows, rest) = routing_table(
            "# Art\n\nIntro.\n\n## Workflow Routing\n\n| Workflow | Trigger | File |\n|---|---|---|\n| **Essay** | \"blog header\" | `Workflows/Essay.md` |\n| **Mermaid** | \"flowchart\" | `Workflows/Mermaid.md` |\n\n## More\n",
        );
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Essay", "Mermaid"]);
        assert_eq!(rows[0].trigger.as_deref(), Some("\"blog header\""));
        assert_eq!(rows[1].file.as_deref(), Some("Workflows/Mermaid.md"));
        assert!(!rest.contains("| **Essay**"));
        assert!(rest.contains("## More"));
        let (rows, _) = routing_table("| Trigger | Workflow |\n|---|---|\n| Technical diagram | `Workflows/TechnicalDiagrams.md` |\n");
        assert_eq!(rows[0].name, "TechnicalDiagrams");
        assert_eq!(rows[0].trigger.as_deref(), Some("Technical diagram"));
    }
}

//! `pai status RUN_ID`: the tree of a run read back from its manifests, with each
//! node's status, and the tokens and cost of each subtree.

use std::fmt::Write as _;
use std::path::Path;

use super::manifest::{self, Manifest};
use crate::diagnostics::thousands;

struct Row {
    left: String,
    status: String,
    tokens: u64,
    cost: f64,
    summary: String,
}

/// Renders the run in `run_dir`.
pub fn render(run_dir: &Path) -> Result<String, String> {
    let run = manifest::read_run(run_dir)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}  `{}` in {}  {}{}  (provider {})",
        run.run_id,
        run.workflow,
        run.file,
        run.status,
        run.stopped
            .as_ref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default(),
        run.provider
    );
    let _ = writeln!(
        out,
        "{} agent calls ({} reused), {} complete, {}{} failed, {} waiting; {} tokens in, {} out; ${:.4}; {:.2}s wall, {:.2}s critical path\n",
        thousands(run.totals.agent_calls),
        thousands(run.totals.reused),
        thousands(run.totals.complete),
        if run.totals.partial > 0 {
            format!("{} partial, ", thousands(run.totals.partial))
        } else {
            String::new()
        },
        thousands(run.totals.failed),
        thousands(run.totals.waiting),
        thousands(run.totals.tokens.input),
        thousands(run.totals.tokens.output),
        run.totals.cost_usd,
        run.totals.wall_seconds,
        run.totals.critical_path_seconds,
    );
    // The root comes from a file too: a `workflow: ../other-run/x` walked another run.
    if !is_child_segment(&run.workflow) {
        return Err(format!(
            "`{}` names the workflow `{}`, which is not a directory of the run",
            run_dir.join("run.yaml").display(),
            run.workflow
        ));
    }
    let mut rows = Vec::new();
    walk(
        &run_dir.join(&run.workflow),
        &run.workflow,
        "",
        "",
        &mut rows,
        0,
    );
    let width = rows
        .iter()
        .map(|r| r.left.chars().count())
        .max()
        .unwrap_or(0)
        .min(60);
    for row in rows {
        let pad = width.saturating_sub(row.left.chars().count());
        let _ = writeln!(
            out,
            "{}{}  {:<8}  {:>9} tokens  ${:.4}  {}",
            row.left,
            " ".repeat(pad),
            row.status,
            thousands(row.tokens),
            row.cost,
            row.summary.chars().take(60).collect::<String>()
        );
    }
    Ok(out)
}

/// The most rows shown: more than any plan has nodes.
const MAX_ROWS: usize = crate::compile::expand::MAX_NODES;

/// Whether `name` (from a manifest) is one directory below, not a path elsewhere.
fn is_child_segment(name: &str) -> bool {
    !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != ".."
}

/// Adds the rows of the subtree at `dir`; returns its tokens and cost.
fn walk(
    dir: &Path,
    name: &str,
    own_prefix: &str,
    child_prefix: &str,
    rows: &mut Vec<Row>,
    depth: usize,
) -> (u64, f64) {
    let manifest: Manifest =
        manifest::read(&dir.join("manifest.yaml")).unwrap_or_else(|| Manifest {
            status: "missing".into(),
            ..Manifest::default()
        });
    let index = rows.len();
    rows.push(Row {
        left: format!("{own_prefix}{name}"),
        status: manifest.status.to_string(),
        tokens: 0,
        cost: 0.0,
        summary: manifest.summary.clone(),
    });
    let mut tokens = manifest.tokens.input.saturating_add(manifest.tokens.output);
    let mut cost = manifest.cost_usd;
    if depth < 256 && rows.len() < MAX_ROWS {
        // Children come from a file: never follow one out of the run directory, nor a
        // link, nor the same one twice (`children: [d/, d/]` forty levels down walked
        // 2^40 rows). A run's directories are a tree, so each is then seen once.
        let mut seen = std::collections::HashSet::new();
        let children: Vec<&str> = manifest
            .children
            .iter()
            .map(|child| child.trim_end_matches('/'))
            .filter(|child| is_child_segment(child) && seen.insert(*child))
            .filter(|child| {
                std::fs::symlink_metadata(dir.join(child)).map_or(true, |m| !m.is_symlink())
            })
            .collect();
        let count = children.len();
        for (i, child) in children.into_iter().enumerate() {
            let last = i + 1 == count;
            let own = format!("{child_prefix}{}", if last { "└── " } else { "├── " });
            let below = format!("{child_prefix}{}", if last { "    " } else { "│   " });
            let (t, c) = walk(&dir.join(child), child, &own, &below, rows, depth + 1);
            tokens = tokens.saturating_add(t);
            cost += c;
        }
    }
    if let Some(row) = rows.get_mut(index) {
        row.tokens = tokens;
        row.cost = cost;
    }
    (tokens, cost)
}

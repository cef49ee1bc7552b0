//! Plans for people (a terminal tree) and for tools (JSON, Graphviz dot, Mermaid).

use std::fmt::Write as _;

use petgraph::graph::NodeIndex;
use serde_json::json;

use super::{EdgeKind, NodeKind, Plan, Totals};
use crate::diagnostics::thousands;

/// The nodes in call-tree order: each node, then its children.
pub fn tree_order(plan: &Plan<'_>) -> Vec<NodeIndex> {
    let mut order = Vec::with_capacity(plan.graph.node_count());
    let mut stack = vec![plan.root];
    while let Some(index) = stack.pop() {
        order.push(index);
        stack.extend(plan.graph[index].children.iter().rev().copied());
    }
    order
}

fn segment(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// `1 call`, `2 calls`, `1,000 calls`.
fn count(n: u64, noun: &str) -> String {
    format!("{} {noun}{}", thousands(n), if n == 1 { "" } else { "s" })
}

/// The two lines of the worst case.
pub fn headline(plan: &Plan<'_>, totals: &Totals) -> String {
    let cost = if totals.agents == totals.unpriced_agents {
        "cost unknown (no model with a known price)".to_string()
    } else if totals.unpriced_agents > 0 {
        format!(
            "cost ${:.2} (not counting {} without a known price)",
            totals.cost_usd,
            count(totals.unpriced_agents, "agent call")
        )
    } else {
        format!("cost ${:.2}", totals.cost_usd)
    };
    format!(
        "plan of `{}` in {}\nworst case: {}, {}, depth {}, widest fan-out {}, critical path {}\n            {} tokens in, {} tokens out, {cost}\n",
        plan.workflow,
        plan.file,
        count(totals.agents, "agent call"),
        count(totals.exec_steps, "exec step"),
        totals.depth,
        thousands(totals.widest_fanout),
        count(totals.critical_path, "call"),
        thousands(totals.tokens_in),
        thousands(totals.tokens_out),
    )
}

/// The terminal tree.
pub fn tree(plan: &Plan<'_>, totals: &Totals) -> String {
    let mut out = headline(plan, totals);
    out.push('\n');
    // (index, prefix for its children, its own prefix)
    let mut stack: Vec<(NodeIndex, String, String)> =
        vec![(plan.root, String::new(), String::new())];
    let mut rows: Vec<(String, String)> = Vec::new();
    while let Some((index, child_prefix, own_prefix)) = stack.pop() {
        let node = &plan.graph[index];
        let left = format!("{own_prefix}{}", segment(&node.id));
        let right = match node.kind {
            NodeKind::Agent => {
                let context = match node.context {
                    Some(limit) => {
                        format!("{} / {}", thousands(node.input_tokens), thousands(limit))
                    }
                    None => format!("{} / ?", thousands(node.input_tokens)),
                };
                let times = if node.multiplicity > 1 {
                    format!("  ×{}", thousands(node.multiplicity))
                } else {
                    String::new()
                };
                format!(
                    "agent {}  context {context}  summary {}{times}",
                    node.name,
                    thousands(node.output_tokens)
                )
            }
            NodeKind::Workflow => format!("workflow  fan-out {}", node.children.len()),
            NodeKind::Exec => "exec".to_string(),
            NodeKind::Expansion => format!(
                "expansion  up to {} when the list arrives",
                thousands(node.max.unwrap_or(0))
            ),
        };
        rows.push((left, format!("depth {}  {right}", node.depth)));
        let count = node.children.len();
        for (i, &child) in node.children.iter().enumerate().rev() {
            let last = i + 1 == count;
            let own = format!("{child_prefix}{}", if last { "└── " } else { "├── " });
            let below = format!("{child_prefix}{}", if last { "    " } else { "│   " });
            stack.push((child, below, own));
        }
    }
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        .min(72);
    for (left, right) in rows {
        let pad = width.saturating_sub(left.chars().count());
        let _ = writeln!(out, "{left}{}  {right}", " ".repeat(pad));
    }
    out
}

/// The plan as one JSON document.
pub fn json(plan: &Plan<'_>, totals: &Totals) -> String {
    let nodes: Vec<serde_json::Value> = tree_order(plan)
        .into_iter()
        .map(|index| {
            let node = &plan.graph[index];
            let inputs: Vec<serde_json::Value> = plan
                .inputs(index)
                .into_iter()
                .map(|input| {
                    let kind = plan
                        .graph
                        .find_edge(input, index)
                        .map(|e| plan.graph[e])
                        .unwrap_or(EdgeKind::Data);
                    json!({
                        "id": plan.graph[input].id,
                        "edge": match kind { EdgeKind::Data => "data", EdgeKind::After => "after" },
                    })
                })
                .collect();
            json!({
                "id": node.id,
                "kind": node.kind.as_str(),
                "name": node.name,
                "depth": node.depth,
                "parent": node.parent.map(|p| plan.graph[p].id.clone()),
                "children": node.children.iter().map(|c| plan.graph[*c].id.clone()).collect::<Vec<_>>(),
                "fanout": node.max.unwrap_or(node.children.len() as u64),
                "multiplicity": node.multiplicity,
                "context": match node.kind {
                    NodeKind::Agent => json!({ "worst": node.input_tokens, "limit": node.context }),
                    _ => serde_json::Value::Null,
                },
                "summary": match node.kind {
                    NodeKind::Agent | NodeKind::Exec => json!(node.output_tokens),
                    _ => serde_json::Value::Null,
                },
                "model": node.model,
                "max": node.max,
                "inputs": inputs,
            })
        })
        .collect();
    let document = json!({
        "workflow": plan.workflow,
        "file": plan.file,
        "totals": totals,
        "nodes": nodes,
    });
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

fn quote(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Graphviz: call-tree edges solid, data edges dashed, `after` edges dotted.
pub fn dot(plan: &Plan<'_>, totals: &Totals) -> String {
    let mut out = String::from(
        "digraph plan {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
    );
    let _ = writeln!(
        out,
        "  label=\"{} · {} agent calls · {} tokens in\";",
        quote(&plan.workflow),
        totals.agents,
        totals.tokens_in
    );
    let order = tree_order(plan);
    for &index in &order {
        let node = &plan.graph[index];
        let shape = match node.kind {
            NodeKind::Workflow => "folder",
            NodeKind::Agent => "box",
            NodeKind::Exec => "cds",
            NodeKind::Expansion => "doubleoctagon",
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\\n{}\", shape={shape}];",
            quote(&node.id),
            quote(segment(&node.id)),
            node.kind.as_str()
        );
    }
    for &index in &order {
        for &child in &plan.graph[index].children {
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\";",
                quote(&plan.graph[index].id),
                quote(&plan.graph[child].id)
            );
        }
    }
    for edge in plan.graph.edge_indices() {
        if let Some((from, to)) = plan.graph.edge_endpoints(edge) {
            let style = match plan.graph[edge] {
                EdgeKind::Data => "dashed",
                EdgeKind::After => "dotted",
            };
            let _ = writeln!(
                out,
                "  \"{}\" -> \"{}\" [style={style}, constraint=false];",
                quote(&plan.graph[from].id),
                quote(&plan.graph[to].id)
            );
        }
    }
    out.push_str("}\n");
    out
}

/// Mermaid flowchart: call-tree edges `-->`, data edges `-.->`.
pub fn mermaid(plan: &Plan<'_>, _totals: &Totals) -> String {
    let mut out = String::from("flowchart TD\n");
    let order = tree_order(plan);
    let name = |index: NodeIndex| format!("n{}", index.index());
    for &index in &order {
        let node = &plan.graph[index];
        let label = segment(&node.id).replace('"', "#quot;");
        let _ = writeln!(
            out,
            "  {}[\"{label}<br/>{}\"]",
            name(index),
            node.kind.as_str()
        );
    }
    for &index in &order {
        for &child in &plan.graph[index].children {
            let _ = writeln!(out, "  {} --> {}", name(index), name(child));
        }
    }
    for edge in plan.graph.edge_indices() {
        if let Some((from, to)) = plan.graph.edge_endpoints(edge) {
            let _ = writeln!(out, "  {} -.-> {}", name(from), name(to));
        }
    }
    out
}

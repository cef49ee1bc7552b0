//! `pai check` throughput on realistic workflow files of about 1k, 10k and 100k lines,
//! against parsing the same workflows written as YAML with `serde_yaml` (what a user
//! would otherwise write, and only parsed: no names, types or budgets are checked).
//!
//! The files are generated in memory from the design example (`examples/design`):
//! unit `i` holds its agents, two workflows and a protocol, every name suffixed with
//! `-i`, and each unit but the first also calls into the one before it.
//!
//! `cargo bench --bench check` (`PAI_BENCH_DUMP=DIR` also writes the generated files)

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The allocator the `pai` binary uses (src/main.rs), so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One agent: name, parameters (name, type), extra settings, prompt lines.
struct AgentSpec {
    name: &'static str,
    params: &'static [(&'static str, &'static str)],
    settings: &'static [&'static str],
    prompt: &'static [&'static str],
}

const AGENTS: &[AgentSpec] = &[
    AgentSpec {
        name: "explorer",
        params: &[("root", "path"), ("question", "text")],
        settings: &[],
        prompt: &[
            "Map the codebase under {{root}} for: {{question}}",
            "List the modules that matter, their entry points and their tests.",
            "Say which parts are generated and which are written by hand.",
        ],
    },
    AgentSpec {
        name: "researcher",
        params: &[("topic", "text")],
        settings: &["timeout  5m"],
        prompt: &[
            "Research {{topic}}.",
            "Prefer primary sources: specifications, changelogs, the code itself.",
        ],
    },
    AgentSpec {
        name: "critic",
        params: &[("proposal", "text")],
        settings: &[],
        prompt: &[
            "Review this proposal: {{proposal}}",
            "Point out what is missing, what is risky and what can be dropped.",
        ],
    },
    AgentSpec {
        name: "coder",
        params: &[("task", "text"), ("file", "path"), ("notes", "text")],
        settings: &["tools    [Read, Edit]", "timeout  10m", "retries  2"],
        prompt: &[
            "Implement {{task}} in {{file}}. What the codebase looks like: {{notes}}",
            "Change only this file. Keep the public interface unless the task says so.",
        ],
    },
    AgentSpec {
        name: "synthesizer",
        params: &[("scope", "path"), ("children", "list<result>")],
        settings: &["timeout  5m"],
        prompt: &[
            "Summarise the work done in {{scope}} from these reports:",
            "{{#each children}}",
            "- [{{this.status}}] {{this.summary}}",
            "{{/each}}",
        ],
    },
    AgentSpec {
        name: "reporter",
        params: &[("task", "text"), ("children", "list<result>")],
        settings: &[],
        prompt: &[
            "Write the final report for: {{task}}",
            "{{#each children}}",
            "## Part {{@index}}",
            "{{this.summary}}",
            "{{/each}}",
        ],
    },
];

/// The workflows of unit `i` in `.pai`.
fn pai_unit(out: &mut String, i: usize) {
    let _ = writeln!(
        out,
        "# ---- unit {i}: explore, research, orchestrate, review\n"
    );
    for agent in AGENTS {
        let params: Vec<String> = agent
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {t}"))
            .collect();
        let _ = writeln!(
            out,
            "agent {}-{i}({}) -> result {{",
            agent.name,
            params.join(", ")
        );
        let _ = writeln!(out, "  model    \"sonnet\"");
        let _ = writeln!(
            out,
            "  context  200k             # the model's window, in tokens"
        );
        let _ = writeln!(out, "  summary  80 tokens");
        for setting in agent.settings {
            let _ = writeln!(out, "  {setting}");
        }
        let _ = writeln!(out, "  prompt \"\"\"");
        for line in agent.prompt {
            let _ = writeln!(out, "    {line}");
        }
        let _ = writeln!(out, "    (unit {i})");
        let _ = writeln!(out, "  \"\"\"\n}}\n");
    }
    let _ = writeln!(
        out,
        "workflow execute-{i}(request: text max 2k, root: path = \".\") -> result
  follows tree-orchestration-{i}
{{
  let code   = explorer-{i}(root: root, question: request)
  let lit    = researcher-{i}(topic: request)
  let work   = orchestrate-{i}(task: request, dir: root, notes: code.summary)
  let review = critic-{i}(proposal: work.summary)"
    );
    if i > 0 {
        let _ = writeln!(
            out,
            "  let prior  = orchestrate-{}(task: request, dir: root, notes: review.summary)
  return reporter-{i}(task: request, children: [code, lit, work, review, prior])
}}
",
            i - 1
        );
    } else {
        let _ = writeln!(
            out,
            "  return reporter-{i}(task: request, children: [code, lit, work, review])
}}
"
        );
    }
    let _ = writeln!(
        out,
        "workflow orchestrate-{i}(task: text max 2k, dir: path, notes: text max 200) -> result
  depth 4
{{
  let subtrees = for d in dirs(dir) max 6 {{ orchestrate-{i}(task: task, dir: d, notes: notes) }}
  let leaves   = for f in files(dir, \"*.rs\") max 10 {{ coder-{i}(task: task, file: f, notes: notes) }}
  return synthesizer-{i}(scope: dir, children: subtrees + leaves)
}}

protocol tree-orchestration-{i} {{
  max depth 5
  max fanout 16
  summary 80 tokens
  delegate when reads >= 2
}}
"
    );
}

/// The same unit in YAML, split by section: (agents, workflows, protocols).
fn yaml_unit(agents: &mut String, workflows: &mut String, protocols: &mut String, i: usize) {
    for agent in AGENTS {
        let _ = writeln!(agents, "  # unit {i}\n  {}-{i}:", agent.name);
        let _ = writeln!(agents, "    params:");
        for (name, ty) in agent.params {
            let _ = writeln!(agents, "      {name}: {ty}");
        }
        let _ = writeln!(agents, "    returns: result");
        let _ = writeln!(agents, "    model: sonnet");
        let _ = writeln!(
            agents,
            "    context: 200k   # the model's window, in tokens"
        );
        let _ = writeln!(agents, "    summary: 80 tokens");
        for setting in agent.settings {
            let (key, value) = setting.split_once(' ').unwrap_or((setting, ""));
            let _ = writeln!(agents, "    {key}: {}", value.trim());
        }
        let _ = writeln!(agents, "    prompt: |");
        for line in agent.prompt {
            let _ = writeln!(agents, "      {line}");
        }
        let _ = writeln!(agents, "      (unit {i})");
    }
    let call = |out: &mut String, indent: &str, callee: String, args: &[(&str, String)]| {
        let _ = writeln!(out, "{indent}call: {callee}");
        let _ = writeln!(out, "{indent}with:");
        for (name, value) in args {
            let _ = writeln!(out, "{indent}  {name}: {value}");
        }
    };
    let _ = writeln!(
        workflows,
        "  execute-{i}:
    params:
      request: {{type: text, max: 2k}}
      root: {{type: path, default: \".\"}}
    returns: result
    follows: tree-orchestration-{i}
    steps:"
    );
    let step = |out: &mut String, name: &str, callee: String, args: &[(&str, String)]| {
        let _ = writeln!(out, "      - let: {name}");
        call(out, "        ", callee, args);
    };
    let s = |v: &str| v.to_string();
    step(
        workflows,
        "code",
        format!("explorer-{i}"),
        &[("root", s("root")), ("question", s("request"))],
    );
    step(
        workflows,
        "lit",
        format!("researcher-{i}"),
        &[("topic", s("request"))],
    );
    step(
        workflows,
        "work",
        format!("orchestrate-{i}"),
        &[
            ("task", s("request")),
            ("dir", s("root")),
            ("notes", s("code.summary")),
        ],
    );
    step(
        workflows,
        "review",
        format!("critic-{i}"),
        &[("proposal", s("work.summary"))],
    );
    let mut children = s("[code, lit, work, review]");
    if i > 0 {
        step(
            workflows,
            "prior",
            format!("orchestrate-{}", i - 1),
            &[
                ("task", s("request")),
                ("dir", s("root")),
                ("notes", s("review.summary")),
            ],
        );
        children = s("[code, lit, work, review, prior]");
    }
    let _ = writeln!(workflows, "      - return:");
    call(
        workflows,
        "          ",
        format!("reporter-{i}"),
        &[("task", s("request")), ("children", children)],
    );
    let _ = writeln!(
        workflows,
        "  orchestrate-{i}:
    params:
      task: {{type: text, max: 2k}}
      dir: path
      notes: {{type: text, max: 200}}
    returns: result
    depth: 4
    steps:
      - let: subtrees
        for: d
        in: {{call: dirs, with: {{dir: dir}}}}
        max: 6
        do:
          call: orchestrate-{i}
          with: {{task: task, dir: d, notes: notes}}
      - let: leaves
        for: f
        in: {{call: files, with: {{dir: dir, pattern: \"*.rs\"}}}}
        max: 10
        do:
          call: coder-{i}
          with: {{task: task, file: f, notes: notes}}
      - return:
          call: synthesizer-{i}
          with:
            scope: dir
            children: {{concat: [subtrees, leaves]}}"
    );
    let _ = writeln!(
        protocols,
        "  tree-orchestration-{i}:
    max_depth: 5
    max_fanout: 16
    summary: 80 tokens
    delegate_when: {{metric: reads, op: \">=\", value: 2}}"
    );
}

/// A `.pai` file of about `lines` lines, the same units as YAML, and the unit count.
fn generate(lines: usize) -> (String, String, usize) {
    let mut probe = String::new();
    pai_unit(&mut probe, 1);
    let units = lines.div_ceil(probe.lines().count()).max(1);
    let mut pai = String::from("# Generated for `cargo bench --bench check`.\n\n");
    let (mut agents, mut workflows, mut protocols) = (String::new(), String::new(), String::new());
    for i in 0..units {
        pai_unit(&mut pai, i);
        yaml_unit(&mut agents, &mut workflows, &mut protocols, i);
    }
    let yaml = format!(
        "# Generated for `cargo bench --bench check`.\nversion: 1\nagents:\n{agents}workflows:\n{workflows}protocols:\n{protocols}"
    );
    (pai, yaml, units)
}

fn check_bench(c: &mut Criterion) {
    // As the `pai` binary does (src/main.rs).
    pai::process::disable_transparent_huge_pages();
    pai::process::return_freed_memory_promptly();
    for (label, lines) in [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)] {
        let (pai_text, yaml_text, units) = generate(lines);
        let outcome = pai::check::check_text("bench.pai", &pai_text, Path::new("."));
        assert_eq!(
            outcome.error_count(),
            0,
            "the generated file must check clean: {:?}",
            outcome.diagnostics.iter().take(5).collect::<Vec<_>>()
        );
        let yaml: serde_yaml::Value = serde_yaml::from_str(&yaml_text).expect("the YAML parses");
        let yaml_agents = yaml["agents"].as_mapping().map_or(0, |m| m.len());
        assert_eq!(yaml_agents, units * AGENTS.len(), "same agents in both");
        eprintln!(
            "{label}: {units} units; .pai {} lines, {} bytes, {} warnings; YAML {} lines, {} bytes",
            pai_text.lines().count(),
            pai_text.len(),
            outcome.warning_count(),
            yaml_text.lines().count(),
            yaml_text.len()
        );

        // `PAI_BENCH_DUMP=DIR` writes the generated files, e.g. to measure the peak
        // memory of `pai check` on them with `/usr/bin/time -v`.
        if let Some(dir) = std::env::var_os("PAI_BENCH_DUMP") {
            let dir = Path::new(&dir);
            std::fs::create_dir_all(dir).expect("create the dump directory");
            std::fs::write(dir.join(format!("bench-{label}.pai")), &pai_text).expect("write");
            std::fs::write(dir.join(format!("bench-{label}.yaml")), &yaml_text).expect("write");
        }

        let mut group = c.benchmark_group(format!("lines_{label}"));
        group.sample_size(10);
        let (warm_up, measure) = if lines >= 100_000 { (2, 12) } else { (1, 5) };
        group.warm_up_time(Duration::from_secs(warm_up));
        group.measurement_time(Duration::from_secs(measure));

        group.throughput(Throughput::Bytes(pai_text.len() as u64));
        group.bench_function("pai_parse", |b| b.iter(|| pai::syntax::parse(&pai_text)));
        group.bench_function("pai_check", |b| {
            b.iter(|| pai::check::check_text("bench.pai", &pai_text, Path::new(".")))
        });
        group.throughput(Throughput::Bytes(yaml_text.len() as u64));
        group.bench_function("serde_yaml_value", |b| {
            b.iter(|| serde_yaml::from_str::<serde_yaml::Value>(&yaml_text).expect("parses"))
        });
        group.finish();
    }
}

criterion_group!(benches, check_bench);
criterion_main!(benches);

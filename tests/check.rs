//! The checker's semantics, through the library: what is proven, with what numbers.

mod support;

use std::path::Path;
use std::process::Command;

use pai::check::{check_text, Outcome};
use pai::diagnostics::Code;
use support::scratch::Scratch;

fn check(text: &str) -> Outcome {
    check_text("test.pai", text, Path::new("."))
}

fn codes(outcome: &Outcome) -> Vec<Code> {
    outcome.diagnostics.iter().map(|d| d.code).collect()
}

fn messages(outcome: &Outcome, code: Code) -> Vec<String> {
    outcome
        .diagnostics
        .iter()
        .filter(|d| d.code == code)
        .map(|d| d.message.clone())
        .collect()
}

/// The DESIGN `orchestrate`: a synthesizer handed 6 subtrees and 10 leaves.
fn orchestrate(fanout: u64, context: &str, leaves: u64) -> String {
    format!(
        r#"
agent coder(task: text, file: path) -> result {{
  context 200k
  summary 80 tokens
  prompt "Implement {{{{task}}}} in {{{{file}}}}"
}}

agent synthesizer(scope: path, children: list<result>) -> result {{
  context {context}
  summary 80 tokens
  prompt "Summarise {{{{scope}}}}: {{{{#each children}}}}{{{{this.summary}}}}{{{{/each}}}}"
}}

workflow orchestrate(task: text max 2k, dir: path) -> result
  depth 4
  follows tree
{{
  let subtrees = for d in dirs(dir) max 6 {{ orchestrate(task: task, dir: d) }}
  let leaves   = for f in files(dir, "*.rs") max {leaves} {{ coder(task: task, file: f) }}
  return synthesizer(scope: dir, children: subtrees + leaves)
}}

protocol tree {{
  max depth 5
  max fanout {fanout}
  summary 80 tokens
}}
"#
    )
}

#[test]
fn design_orchestrate_is_clean_at_fanout_sixteen() {
    let outcome = check(&orchestrate(16, "200k", 10));
    assert_eq!(outcome.diagnostics, Vec::new());
}

#[test]
fn synthesizer_handed_seventeen_results_breaks_fanout_sixteen() {
    let outcome = check(&orchestrate(16, "200k", 11));
    assert_eq!(codes(&outcome), vec![Code::E019]);
    assert_eq!(
        messages(&outcome, Code::E019),
        vec![
            "`synthesizer` is handed 17 results, which exceeds `max fanout 16` of protocol `tree`"
        ]
    );
}

#[test]
fn budget_error_names_every_term_of_the_sum() {
    // 16 children of 80 tokens each with their fence and status (30), the scope path
    // (1,024), the template's literal text.
    let outcome = check(&orchestrate(16, "2k", 10));
    assert_eq!(codes(&outcome), vec![Code::E017]);
    let message = &messages(&outcome, Code::E017)[0];
    assert_eq!(
        message,
        "worst-case input of `synthesizer` exceeds its context: 1,024 (scope) + 16 × 110 (children) + 3 (template) = 2,787 > context 2,000"
    );
}

#[test]
fn budget_fits_exactly_at_the_context() {
    // One rendered parameter of 100 tokens (`text max 100`) plus a 4-byte template: 101.
    let text = |context: u32| {
        format!(
            r#"
agent echo(x: text) {{
  context {context}
  prompt "abc {{{{x}}}}"
}}
workflow run(x: text max 100) -> result {{
  return echo(x: x)
}}
"#
        )
    };
    assert_eq!(codes(&check(&text(101))), vec![]);
    assert_eq!(codes(&check(&text(100))), vec![Code::E017]);
}

/// An agent that answers a record or a list has the JSON Schema of its answer appended
/// to its prompt by every provider; the proof counts it, with room for any `maxItems`.
#[test]
fn a_structured_answer_counts_its_schema() {
    let text = |context: u64| {
        format!(
            r#"
type Finding {{ claim: text, weight: number }}
agent split(task: text) -> list<Finding> {{
  context {context}
  summary 200 tokens
  prompt "Split {{{{task}}}}"
}}
agent fold(parts: list<Finding>) -> result {{
  context 8k
  summary 10 tokens
  prompt "Fold {{{{parts}}}}"
}}
workflow run(task: text max 10) -> result {{
  return fold(parts: split(task: task))
}}
"#
        )
    };
    let outcome = check(&text(20));
    assert_eq!(codes(&outcome), vec![Code::E017]);
    let message = &messages(&outcome, Code::E017)[0];
    // The prompt: the task (10) and `Split ` (2); then the schema.
    let schema = message
        .strip_prefix(
            "worst-case input of `split` exceeds its context: 10 (task) + 2 (template) + ",
        )
        .and_then(|rest| rest.split_once(" (answer schema) = "))
        .and_then(|(schema, _)| schema.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no schema term in {message}"));
    // `{"type":"array","items":{...},"maxItems":<20 digits>}` and the sentence before it.
    assert!((50..100).contains(&schema), "{message}");
    assert_eq!(codes(&check(&text(12 + schema))), vec![]);
    assert_eq!(codes(&check(&text(12 + schema - 1))), vec![Code::E017]);
}

/// An element of `list<T max N>` is held to N as it renders: a list element with its
/// brackets and separators (`[aaaa, aaaa, aaaa]` is 18 bytes, 5 tokens), in a default
/// and in a workflow call's literal argument alike.
#[test]
fn list_elements_are_held_to_their_max_as_they_render() {
    let text = |element: &str| {
        format!(
            r#"
agent show(rows: list<list<text> max 3>) {{
  context 8k
  prompt "{{{{rows}}}}"
}}
workflow main(rows: list<list<text> max 3> max 2) -> result {{
  return show(rows: rows)
}}
workflow outer() -> result {{
  return main(rows: [{element}])
}}
workflow fallback(rows: list<list<text> max 3> max 2 = [{element}]) -> result {{
  return show(rows: rows)
}}
"#
        )
    };
    let outcome = check(&text(r#"["aaaa", "aaaa", "aaaa"]"#));
    assert_eq!(
        messages(&outcome, Code::E033),
        vec![
            "an element of argument `rows` of `main` is 5 tokens, more than its `max 3`",
            "an element of the default of `rows` is 5 tokens, more than its `max 3`",
        ]
    );
    assert_eq!(codes(&check(&text(r#"["aaaa", "aaaa"]"#))), vec![]);
}

/// A list in a model's record holds no more elements than the record's JSON has room
/// for, in the check as in the plan: a `for ... max 100` over it makes at most 70
/// copies here (5 tokens of summary, twice over, and the result overhead).
#[test]
fn a_for_over_a_list_in_a_models_record_is_bounded_by_its_budget() {
    let text = |context: u64| {
        format!(
            r#"
type bag {{ tags: list<number> }}
agent mk(task: text) -> bag {{
  context 8k
  summary 5 tokens
  prompt "Bag {{{{task}}}}"
}}
agent leaf(x: number) -> result {{
  context 8k
  summary 10 tokens
  prompt "Do {{{{x}}}}"
}}
agent fold(parts: list<result>) -> result {{
  context {context}
  summary 10 tokens
  prompt "{{{{#each parts}}}}{{{{this.summary}}}}{{{{/each}}}}"
}}
workflow main(task: text max 10) -> result {{
  let r = mk(task: task)
  return fold(parts: for t in r.tags max 100 {{ leaf(x: t) }})
}}
"#
        )
    };
    assert_eq!(codes(&check(&text(2_800))), vec![]);
    assert_eq!(codes(&check(&text(2_799))), vec![Code::E017]);
}

/// A record field declared `list<text max N>` holds each of its texts to N tokens (the
/// run refuses a longer one), so the checker counts N and its fence, not the whole
/// record: `Do ` and a step of 5 tokens fenced (23 bytes) make 12 tokens here.
#[test]
fn a_text_in_a_models_record_list_counts_its_declared_max() {
    let text = |context: u64| {
        format!(
            r#"
type plan {{ steps: list<text max 5> }}
agent planner(task: text max 50) -> plan {{
  context 2k
  summary 400 tokens
  prompt "Plan {{{{task}}}}"
}}
agent worker(step: text max 20) -> result {{
  context {context}
  summary 10 tokens
  prompt "Do {{{{step}}}}"
}}
workflow main(task: text max 50) -> list<result> {{
  let p = planner(task: task)
  return for s in p.steps max 3 {{ worker(step: s) }}
}}
"#
        )
    };
    assert_eq!(codes(&check(&text(12))), vec![]);
    assert_eq!(codes(&check(&text(11))), vec![Code::E017]);
}

/// Recursion inside a `for` over a model's answer is E034 (`pai plan` would unfold it
/// past any `depth`); not inside an `if`, which may end it, nor over folders.
#[test]
fn recursion_through_a_models_list_is_refused_where_the_plan_cannot_end_it() {
    let text = |body: &str| {
        format!(
            r#"
agent split(task: text max 100) -> list<text max 20> {{
  context 8k
  summary 200 tokens
  prompt "Split {{{{task}}}}"
}}
agent fold(parts: list<result> max 3) -> result {{
  context 8k
  summary 50 tokens
  prompt "{{{{#each parts}}}}{{{{this.summary}}}}{{{{/each}}}}"
}}
workflow rec(task: text max 100, deeper: bool, dir: path) -> result
  depth 3
{{
  return fold(parts: {body})
}}
"#
        )
    };
    let codes_of = |body: &str| codes(&check(&text(body)));
    assert_eq!(
        codes_of("for p in split(task: task) max 3 { rec(task: p, deeper: deeper, dir: dir) }"),
        vec![Code::E034]
    );
    assert_eq!(
        codes_of("for p in split(task: task) max 3 { if deeper { rec(task: p, deeper: false, dir: dir) } else { fold(parts: []) } }"),
        vec![]
    );
    // An `if` on a model's value does not end it: the plan takes both branches.
    assert_eq!(
        codes_of("for p in split(task: task) max 3 { if len(split(task: p)) > 1 { rec(task: p, deeper: deeper, dir: dir) } else { fold(parts: []) } }"),
        vec![Code::E034]
    );
    // A decided `if` around the `for` may end it too.
    assert_eq!(
        codes_of("if deeper { for p in split(task: task) max 3 { rec(task: p, deeper: false, dir: dir) } } else { [] }"),
        vec![]
    );
    assert_eq!(
        codes_of("for d in dirs(dir) max 3 { rec(task: task, deeper: deeper, dir: d) }"),
        vec![Code::W003],
        "only `split` unused"
    );
}

/// E034 one level removed: the `for` walks a list parameter, and the recursive call
/// hands that parameter a model's answer, so every level below walks a list only the
/// run knows (this checked clean, and the plan unfolded it past its `depth`).
#[test]
fn recursion_that_hands_a_walked_parameter_a_models_list_is_refused() {
    let text = |body: &str| {
        format!(
            r#"
agent split(task: text max 20) -> list<text max 10> {{
  context 8k
  summary 40 tokens
  prompt "Split {{{{task}}}}"
}}
agent fold(parts: list<result>) -> result {{
  context 8k
  summary 10 tokens
  prompt "{{{{#each parts}}}}{{{{this.summary}}}}{{{{/each}}}}"
}}
workflow walk(items: list<text max 20> max 4, deeper: bool) -> result
  depth 3
{{
  return fold(parts: {body})
}}
workflow main(task: text max 20) -> result {{
  return walk(items: split(task: task), deeper: true)
}}
"#
        )
    };
    let codes_of = |body: &str| codes(&check(&text(body)));
    assert_eq!(
        codes_of("for i in items { walk(items: split(task: i), deeper: deeper) }"),
        vec![Code::E034]
    );
    // A decided `if` may end it.
    assert_eq!(
        codes_of("for i in items { if deeper { walk(items: split(task: i), deeper: false) } else { fold(parts: []) } }"),
        vec![]
    );
    // Handing on a list the plan sees is planned level by level.
    assert_eq!(
        codes_of("for i in items { if deeper { walk(items: items, deeper: false) } else { fold(parts: []) } }"),
        vec![]
    );
}

/// A workflow that calls itself with nothing the plan evaluates changing (no decided
/// `if`, no `for` over the file system) unfolds past its `depth` in `pai plan`: E034
/// (these checked clean and could never be planned).
#[test]
fn recursion_that_nothing_the_plan_sees_can_end_is_refused() {
    let text = |body: &str| {
        format!(
            r#"
agent judge(q: text max 5) -> bool {{
  context 1k
  summary 20 tokens
  prompt "{{{{q}}}}"
}}
agent leaf(q: text max 5) -> result {{
  context 1k
  summary 20 tokens
  prompt "{{{{q}}}}"
}}
agent fold(parts: list<result>) -> result {{
  context 8k
  summary 20 tokens
  prompt "{{{{#each parts}}}}{{{{this.summary}}}}{{{{/each}}}}"
}}
workflow r(q: text max 5, deeper: bool, dir: path) -> result depth 3 {{
  return {body}
}}
workflow main(dir: path) -> result {{
  return r(q: "x", deeper: true, dir: dir)
}}
"#
        )
    };
    let e034 = |body: &str| codes(&check(&text(body))).contains(&Code::E034);
    for endless in [
        "r(q: q, deeper: deeper, dir: dir)",
        "if judge(q: q) { r(q: q, deeper: deeper, dir: dir) } else { leaf(q: q) }",
        r#"fold(parts: for x in ["a", "b"] { r(q: x, deeper: deeper, dir: dir) })"#,
    ] {
        assert!(e034(endless), "{endless}");
    }
    for ending in [
        "if deeper { r(q: q, deeper: false, dir: dir) } else { leaf(q: q) }",
        "fold(parts: for d in dirs(dir) max 4 { r(q: q, deeper: deeper, dir: d) })",
        "fold(parts: for d in dirs(dir) + files(dir) max 4 { r(q: q, deeper: deeper, dir: d) })",
        "leaf(q: q)",
    ] {
        assert!(!e034(ending), "{ending}");
    }
}

/// A recursive call returns what the workflow's body returns, not a guess from the
/// default summary: `rec(top: false)` is `big`'s result (1,000 + 30 tokens), and a list
/// returned by recursion is as long as the body makes it (both checked clean at 230).
#[test]
fn a_recursive_call_is_counted_at_what_the_body_returns() {
    let result = |context: u64| {
        format!(
            r#"
agent big(t: text max 5) -> result {{
  context 1k
  summary 1000 tokens
  prompt "{{{{t}}}}"
}}
agent syn(child: result) -> result {{
  context {context}
  summary 10 tokens
  prompt "{{{{child.summary}}}}"
}}
workflow rec(top: bool) -> result depth 2 {{
  return if top {{ syn(child: rec(top: false)) }} else {{ big(t: "x") }}
}}
"#
        )
    };
    assert_eq!(codes(&check(&result(1_030))), vec![]);
    assert_eq!(codes(&check(&result(1_029))), vec![Code::E017]);
    let list = |context: u64| {
        format!(
            r#"
agent leaf(t: text max 5) -> result {{
  context 1k
  summary 20 tokens
  prompt "{{{{t}}}}"
}}
agent syn(children: list<result>) -> result {{
  context {context}
  summary 20 tokens
  prompt "{{{{#each children}}}}{{{{this.summary}}}}{{{{/each}}}}"
}}
workflow rec(xs: list<text max 5> max 8, top: bool) -> list<result> depth 2 {{
  return if top {{
    for x in xs max 8 {{ syn(children: rec(xs: xs, top: false)) }}
  }} else {{
    for x in xs max 8 {{ leaf(t: x) }}
  }}
}}
"#
        )
    };
    assert_eq!(codes(&check(&list(400))), vec![]);
    assert_eq!(codes(&check(&list(399))), vec![Code::E017]);
}

/// An agent's parameter `max` holds its arguments as a workflow's does (it was only
/// read for workflows).
#[test]
fn an_agents_parameter_max_holds_its_arguments() {
    let text = |doc: &str| {
        format!(
            r#"
agent sum(doc: text max 10) {{
  context 8k
  prompt "Sum {{{{doc}}}}"
}}
workflow main() -> result {{
  return sum(doc: "{doc}")
}}
"#
        )
    };
    let outcome = check(&text(&"x".repeat(44)));
    assert_eq!(
        messages(&outcome, Code::E033),
        vec!["argument `doc` of `sum` is 11 tokens, more than its `max 10`"]
    );
    assert_eq!(codes(&check(&text(&"x".repeat(40)))), vec![]);
}

/// An argv that is always empty names no program: refused at check time (it failed
/// only at run time), written `[]` or computed (`[] + []`).
#[test]
fn an_exec_without_a_program_is_refused() {
    let text = |argv: &str| format!("workflow w() -> result {{\n  return exec({argv})\n}}\n");
    for empty in ["[]", "[] + []", "if true { [] } else { [] }"] {
        assert_eq!(
            messages(&check(&text(empty)), Code::E026),
            vec!["`exec` is handed an empty argv: it names no program to run"],
            "{empty}"
        );
    }
    for program in [
        r#"["ls"]"#,
        r#"[] + ["ls"]"#,
        r#"if true { [] } else { ["ls"] }"#,
    ] {
        assert_eq!(codes(&check(&text(program))), vec![], "{program}");
    }
}

/// A `summary` too small for the smallest answer of the agent's type is refused: every
/// answer would fail the run's check against it (`{"a":1,"b":1,"c":true}` is 6 tokens).
#[test]
fn a_summary_below_the_smallest_answer_is_refused() {
    let text = |summary: u32| {
        format!(
            "type P {{ a: number, b: number, c: bool }}\nagent stats(t: text max 10) -> P {{\n  context 8k\n  summary {summary} tokens\n  prompt \"Count {{{{t}}}}\"\n}}\nworkflow w(t: text max 10) -> P {{\n  return stats(t: t)\n}}\n"
        )
    };
    let outcome = check(&text(5));
    assert_eq!(codes(&outcome), vec![Code::E022]);
    assert!(
        messages(&outcome, Code::E022)[0].contains("a `P` is at least 6 tokens"),
        "{:?}",
        outcome.diagnostics
    );
    assert_eq!(codes(&check(&text(6))), vec![]);
}

#[test]
fn a_parameter_rendered_twice_counts_twice() {
    let outcome = check(
        r#"
agent echo(x: text) {
  context 150
  prompt "{{x}} and again {{x}}"
}
workflow run(x: text max 100) -> result {
  return echo(x: x)
}
"#,
    );
    let message = &messages(&outcome, Code::E017)[0];
    assert!(message.contains("2 × 100 (x)"), "{message}");
}

#[test]
fn unknown_text_sizes_warn_and_bounded_ones_do_not() {
    let text = |bound: &str| {
        format!(
            r#"
agent echo(x: text) {{
  context 200k
  prompt "{{{{x}}}}"
}}
workflow run(x: text{bound}) -> result {{
  return echo(x: x)
}}
"#
        )
    };
    assert_eq!(codes(&check(&text(""))), vec![Code::W008]);
    assert_eq!(codes(&check(&text(" max 2k"))), vec![]);
}

#[test]
fn protocols_reach_called_workflows_but_not_other_skills() {
    let outcome = check(
        r#"
agent verbose(x: text) {
  context 8k
  summary 500 tokens
  prompt "{{x}}"
}

skill other {
  description "answers to its own rules"
  use when "other things"
  workflow outside
}

workflow outside(x: text max 100) -> result {
  return verbose(x: x)
}

workflow inner(x: text max 100) -> result {
  return verbose(x: x)
}

workflow top(x: text max 100) -> list<result> follows strict {
  return [inner(x: x), other(x: x)]
}

protocol strict {
  summary 80 tokens
}
"#,
    );
    // `inner` is governed (called directly); `outside` is reached through a skill.
    assert_eq!(codes(&outcome), vec![Code::E020]);
    let line = outcome
        .sources
        .get(outcome.diagnostics[0].file)
        .line_col(outcome.diagnostics[0].span.start)
        .0;
    assert_eq!(line, 19, "reported at the call in `inner`");
}

#[test]
fn templates_see_each_element_and_block_params() {
    let outcome = check(
        r#"
type Finding { claim: text, votes: number }

agent judge(findings: list<Finding>, topic: text) {
  context 8k
  prompt """
    {{#each findings as |f i|}}{{i}}: {{f.claim}} ({{votes}}) on {{../topic}} {{@root.topic}}{{/each}}
  """
}
"#,
    );
    assert_eq!(outcome.diagnostics, Vec::new());
}

#[test]
fn template_errors_point_inside_the_block_string() {
    let source = "agent a(x: text) {\n  context 8k\n  prompt \"\"\"\n      first {{x}}\n      then {{y}}\n  \"\"\"\n}\n";
    let outcome = check(source);
    assert_eq!(codes(&outcome), vec![Code::E013]);
    let span = outcome.diagnostics[0].span;
    assert_eq!(&source[span.start..span.end], "y");
}

#[test]
fn bindings_may_be_used_before_they_are_defined() {
    let outcome = check(
        r#"
agent step(x: text) {
  context 8k
  summary 80 tokens
  prompt "{{x}}"
}
workflow run(seed: text max 100) -> result {
  let b = step(x: a.summary)
  let a = step(x: seed)
  return b
}
"#,
    );
    assert_eq!(outcome.diagnostics, Vec::new());
}

#[test]
fn for_over_a_literal_list_needs_no_max() {
    let outcome = check(
        r#"
agent step(x: text) {
  context 8k
  summary 80 tokens
  prompt "{{x}}"
}
agent fold(xs: list<result>) {
  context 1k
  prompt "{{#each xs}}{{this.summary}}{{/each}}"
}
workflow run() -> result {
  let each = for angle in ["security", "speed", "cost"] { step(x: angle) }
  return fold(xs: each)
}
"#,
    );
    assert_eq!(outcome.diagnostics, Vec::new());
}

#[test]
fn type_errors_name_both_types() {
    let outcome = check(
        r#"
agent step(n: number) {
  context 8k
  prompt "{{n}}"
}
workflow run() -> result {
  return step(n: "three")
}
"#,
    );
    assert_eq!(
        messages(&outcome, Code::E010),
        vec!["argument `n` of `step` expects `number`, found `text`"]
    );
}

#[test]
fn every_error_of_a_file_is_reported() {
    let outcome = check(
        r#"
agent a(x: text) {
  context 8k
  prompt "{{nope}}"
}
workflow w() -> result {
  let p = missing(x: 1)
  return a(y: 2)
}
"#,
    );
    let mut found = codes(&outcome);
    found.sort();
    assert_eq!(
        found,
        vec![
            Code::E004,
            Code::E007,
            Code::E008,
            Code::E013,
            Code::W001,
            Code::W002
        ]
    );
}

#[test]
fn list_elements_bounded_with_max_count_at_their_bound() {
    let text = |ty: &str| {
        format!(
            r#"
agent fold(parts: list<text>) {{
  context 1k
  prompt "{{{{#each parts}}}}{{{{this}}}}{{{{/each}}}}"
}}
workflow run(parts: {ty} max 10) -> result {{
  return fold(parts: parts)
}}
"#
        )
    };
    // Unbounded elements count at the assumed 4,000 tokens: a warning, then the proof fails.
    assert_eq!(codes(&check(&text("list<text>"))), vec![Code::E017]);
    // Ten elements of at most 50 tokens fit a 1k window.
    assert_eq!(codes(&check(&text("list<text max 50>"))), vec![]);
    let outcome = check(&text("list<text max 200>"));
    assert_eq!(
        messages(&outcome, Code::E017),
        vec!["worst-case input of `fold` exceeds its context: 10 × 200 (parts) = 2,000 > context 1,000"]
    );
}

/// A file long enough to be parsed in pieces on several threads, with its templates
/// parsed in parallel: every error is found once, where it is, in source order.
#[test]
fn a_long_file_checked_in_parallel_reports_every_error_in_place() {
    let mut text = String::new();
    for unit in 0..1600 {
        let prompt = match unit {
            100 => "Do {{#if task}}it",
            350 => "Do {{nope}}",
            _ => "Do {{task}} with care, and say what you changed.",
        };
        let name = match unit {
            500 => "if".to_string(),
            _ => format!("a-{unit}"),
        };
        text.push_str(&format!(
            "agent {name}(task: text max 2k) {{\n  context 8k\n  prompt \"{prompt}\"\n}}\n\nworkflow w-{unit}(task: text max 2k) -> result {{\n  return a-{unit}(task: task)\n}}\n\n"
        ));
    }
    assert!(text.len() > 256 * 1024, "{} bytes", text.len());
    let outcome = check(&text);
    let found: Vec<(Code, usize)> = outcome
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.code,
                text.get(..d.span.start)
                    .unwrap_or("")
                    .matches("agent ")
                    .count(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (Code::E012, 101), // the unclosed `{{#if}}`
            (Code::W001, 351), // `task`, which the template no longer uses
            (Code::E013, 351), // `{{nope}}`
            (Code::E001, 501), // the agent named `if`
            (Code::E004, 501), // the call to it, which is not there
        ],
        "{:?}",
        outcome.diagnostics
    );
}

/// Regression (review): pest's step limit is process-wide, and handlebars parses with
/// pest too: a big template used to be parsed under the limit left by the last file
/// parsed, here a tiny imported one, and refused.
#[test]
fn a_big_template_does_not_inherit_the_step_limit_of_a_small_file() {
    let dir = Scratch::new("check-limit");
    let tags = "{{#if task}}{{task}}{{else}}{{task}}{{/if}} ".repeat(400);
    std::fs::write(
        dir.join("main.pai"),
        format!(
            "use \"tiny.pai\"\n\nagent big(task: text max 10) {{\n  context 200k\n  prompt \"{tags}\"\n}}\n\nworkflow w(task: text max 10) -> result {{\n  let t = tiny(task: task)\n  return big(task: task)\n}}\n"
        ),
    )
    .expect("main written");
    std::fs::write(
        dir.join("tiny.pai"),
        "agent tiny(task: text max 10) {\n  context 8k\n  prompt \"{{task}}\"\n}\n",
    )
    .expect("tiny written");
    let outcome = pai::check::check_paths(&[dir.join("main.pai")]).expect("readable");
    assert!(
        !outcome.diagnostics.iter().any(|d| d.code == Code::E012),
        "{:?}",
        outcome.diagnostics
    );
}

/// A reader that stops early (`pai check --format json | head -c 16`) ends `pai` with its
/// own status and no panic: `println!` panicked on the broken pipe (exit 101 and a
/// backtrace on standard error).
#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    use std::io::Read;
    use std::process::Stdio;

    let scratch = Scratch::new("closed-pipe");
    let agents: String = (0..2_000)
        .map(|i| format!("agent a-{i}(x: nosuchtype) {{\n  context 1k\n  prompt \"x\"\n}}\n"))
        .collect();
    let file = scratch.join("many.pai");
    std::fs::write(&file, agents).expect("written");
    let file = file.to_str().expect("utf-8");
    for (args, closed) in [
        (vec!["check", "--format", "json", file], "stdout"),
        (vec!["check", file], "stderr"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pai"))
            .args(&args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pai starts");
        let (mut early, mut rest) = match closed {
            "stdout" => (
                Box::new(child.stdout.take().expect("piped")) as Box<dyn Read>,
                Box::new(child.stderr.take().expect("piped")) as Box<dyn Read>,
            ),
            _ => (
                Box::new(child.stderr.take().expect("piped")) as Box<dyn Read>,
                Box::new(child.stdout.take().expect("piped")) as Box<dyn Read>,
            ),
        };
        let mut first = [0u8; 16];
        early.read_exact(&mut first).expect("some output");
        drop(early);
        let mut other = String::new();
        rest.read_to_string(&mut other).expect("the other stream");
        let status = child.wait().expect("pai ends");
        assert_eq!(status.code(), Some(1), "{closed} closed: {other}");
        assert!(!other.contains("panicked"), "{closed} closed: {other}");
    }
}

/// A name of 30,000 characters is quoted by its ends in the message and the help, and
/// gets no "did you mean" (which compared it character by character with a name as
/// long): the report printed it whole three times, 90 KB for one error.
#[test]
fn a_very_long_name_is_quoted_by_its_ends() {
    let long = "q".repeat(30_000);
    let text = format!(
        "agent {long}a(x: text) {{\n  context 1k\n  prompt \"{{{{x}}}}\"\n}}\n\nworkflow w() {{\n  return {long}b(x: \"1\")\n}}\n"
    );
    let scratch = Scratch::new("long-name");
    let file = scratch.join("long.pai");
    std::fs::write(&file, &text).expect("written");
    let output = Command::new(env!("CARGO_BIN_EXE_pai"))
        .args(["check", file.to_str().expect("utf-8")])
        .env("NO_COLOR", "1")
        .output()
        .expect("pai runs");
    assert_eq!(output.status.code(), Some(1));
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(report.contains("E004"), "{report}");
    assert!(
        report.contains(&format!("`{}…{}b`", "q".repeat(24), "q".repeat(23))),
        "{report}"
    );
    assert!(!report.contains("did you mean"), "{report}");
    assert!(report.len() < 8_000, "{} bytes", report.len());
}

/// A file that starts with a byte order mark (as some Windows editors write) checks as
/// the same file without it: the mark was a syntax error, and nothing after it was read.
#[test]
fn a_byte_order_mark_is_read_as_nothing() {
    let text = "agent a(x: text max 10) {\n  context 1k\n  summary 10\n  prompt \"{{x}}\"\n}\n\nworkflow w() -> result {\n  return a(x: \"y\")\n}\n";
    assert_eq!(codes(&check(text)), []);
    assert_eq!(codes(&check(&format!("\u{feff}{text}"))), []);
    let broken = check("\u{feff}agent a(x: nosuch) {\n  context 1k\n}\n");
    assert_eq!(codes(&broken), [Code::E011]);
    // Spans stay byte offsets into the file, mark included.
    assert_eq!(
        broken.diagnostics[0].span.start,
        "\u{feff}agent a(x: ".len()
    );
}

/// Templates that pass the checker render: `@key` over a list and `lookup` on a text
/// passed `pai check` and failed every call at run time (handlebars renders strictly).
#[test]
fn templates_that_cannot_render_are_refused() {
    let agent = |prompt: &str| {
        format!(
            "agent a(xs: list<text max 10> max 3, d: text max 20, r: result) {{\n  context 1k\n  summary 10\n  prompt \"{prompt}\"\n}}\n"
        )
    };
    for bad in ["{{#each xs}}{{@key}}{{/each}}", "{{lookup d 0}}"] {
        let outcome = check(&agent(bad));
        assert!(
            codes(&outcome).contains(&Code::E013),
            "{bad}: {:?}",
            codes(&outcome)
        );
    }
    for good in [
        "{{#each xs}}{{@index}} {{this}}{{/each}}",
        "{{#each r}}{{@key}}: {{this}}{{/each}}",
        "{{lookup xs 0}} {{d}}",
    ] {
        let outcome = check(&agent(good));
        assert!(
            !codes(&outcome).contains(&Code::E013),
            "{good}: {:?}",
            codes(&outcome)
        );
    }
}

/// Settings and defaults the run could not honour are errors, not silently replaced:
/// `retries 5000000000` ran with 2 and `timeout 99999999999999999999h` with ten minutes,
/// and a duration default too large for a timer passed check and failed the plan.
#[test]
fn settings_and_defaults_the_run_cannot_honour_are_refused() {
    let agent = |setting: &str| {
        format!(
            "agent a(x: text max 10) {{\n  context 1k\n  summary 10\n  {setting}\n  prompt \"{{{{x}}}}\"\n}}\n"
        )
    };
    for bad in [
        "retries 5000000000",
        "timeout 99999999999999999999h",
        "timeout 169h",
    ] {
        let outcome = check(&agent(bad));
        assert!(
            codes(&outcome).contains(&Code::E022),
            "{bad}: {:?}",
            codes(&outcome)
        );
    }
    for good in ["retries 3", "timeout 2h", "timeout 168h"] {
        let outcome = check(&agent(good));
        assert!(
            !codes(&outcome).contains(&Code::E022),
            "{good}: {:?}",
            codes(&outcome)
        );
    }
    let outcome =
        check("workflow w(t: duration = 99999999999999999999h) -> text {\n  return \"x\"\n}\n");
    assert!(
        codes(&outcome).contains(&Code::E029),
        "{:?}",
        codes(&outcome)
    );
}

/// A literal glob is compiled when the file is checked: `files(dir, "[")` passed check
/// and failed the plan.
#[test]
fn a_literal_glob_that_does_not_compile_is_refused() {
    let workflow = |glob: &str| {
        format!("workflow w(dir: path) -> list<path> {{\n  return files(dir, \"{glob}\")\n}}\n")
    };
    let outcome = check(&workflow("["));
    assert_eq!(codes(&outcome), [Code::E026]);
    assert!(messages(&outcome, Code::E026)[0].contains("`[` is not a valid glob"));
    assert_eq!(codes(&check(&workflow("*.{md,txt}"))), []);
}

/// A number run into letters (`1e5`) is a syntax error where the letters start: it read
/// as the number `1` and then a setting named `e5`, and the error pointed at the next
/// line.
#[test]
fn a_number_run_into_letters_is_an_error_at_the_letters() {
    let text = "agent a(x: text) {\n  context 1e5\n  prompt \"{{x}}\"\n}\n";
    let outcome = check(text);
    assert_eq!(codes(&outcome), [Code::E001]);
    assert_eq!(
        outcome.diagnostics[0].span.start,
        text.find("e5").unwrap_or(0)
    );
}

/// The same across threads: a big template compiled while another thread parsed small
/// files ran under their step limit (pest's is process-wide) and was refused, now and
/// then, when checks ran side by side in one process.
#[test]
fn a_big_template_checks_while_small_files_parse_beside_it() {
    let tags = "{{#if task}}{{task}}{{else}}{{task}}{{/if}} ".repeat(400);
    let big = format!(
        "agent big(task: text max 10) {{\n  context 200k\n  prompt \"{tags}\"\n}}\n\nworkflow w(task: text max 10) -> result {{\n  return big(task: task)\n}}\n"
    );
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..10_000 {
                if done.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                check("agent tiny(task: text max 10) {\n  context 8k\n  prompt \"{{task}}\"\n}\n");
            }
        });
        for _ in 0..3 {
            let outcome = check(&big);
            assert!(
                !codes(&outcome).contains(&Code::E012),
                "{:?}",
                outcome.diagnostics
            );
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
}

/// A `context` or a `for`'s `max` that is written but invalid gets its own error, and
/// no warning that says none was written (W010 "declares no `context`", W007 "has no
/// `max`").
#[test]
fn an_invalid_bound_is_not_also_a_missing_one() {
    let text = "agent a(x: text max 10) {\n  context 1.5\n  summary 10\n  prompt \"{{x}}\"\n}\n\nworkflow w(xs: list<text max 10>) -> list<result> {\n  return for x in xs max 0 { a(x: x) }\n}\n";
    assert_eq!(codes(&check(text)), [Code::E022, Code::E029]);
}

/// A template that reads a `result`'s full `output` (by name, with `lookup`, or by
/// rendering or iterating the result whole) is handed that output, not the summary the
/// budget counted: it checked clean, planned `202 / 300` and ran at 25,014 tokens.
#[test]
fn a_template_that_reads_a_full_output_counts_it() {
    for prompt in [
        "Report: {{r.output}}",
        "Report: {{lookup r \\\"output\\\"}}",
        "Report: {{#each r}}{{this}}{{/each}}",
        "Report: {{r}}",
    ] {
        let text = format!(
            "agent a(r: result) -> result {{\n  context 300\n  summary 10 tokens\n  prompt \"{prompt}\"\n}}\n\nworkflow main() -> result {{\n  let e = exec([\"ls\"])\n  return a(r: e)\n}}\n"
        );
        let outcome = check(&text);
        let codes = codes(&outcome);
        assert!(codes.contains(&Code::E017), "{prompt}: {codes:?}");
        assert!(codes.contains(&Code::W009), "{prompt}: {codes:?}");
    }
    let summary_only = "agent a(r: result) -> result {\n  context 300\n  summary 10 tokens\n  prompt \"Report: {{r.summary}}\"\n}\n\nworkflow main() -> result {\n  let e = exec([\"ls\"])\n  return a(r: e)\n}\n";
    assert_eq!(codes(&check(summary_only)), []);
}

/// A provider `url` the HTTP client cannot use, and a zero `timeout`, are refused when
/// the file is checked: both failed every call of the run, the first with a library's
/// "relative URL without a base".
#[test]
fn provider_urls_and_zero_timeouts_are_checked() {
    let provider = |setting: &str| format!("provider p {{\n  kind \"openai\"\n  {setting}\n}}\n");
    for bad in [
        "url \"127.0.0.1:18001/v1\"",
        "url \"ftp://127.0.0.1/v1\"",
        "url \"http://\"",
        "timeout 0s",
    ] {
        let outcome = check(&provider(bad));
        assert!(
            codes(&outcome).contains(&Code::E022),
            "{bad}: {:?}",
            codes(&outcome)
        );
    }
    for good in [
        "url \"http://127.0.0.1:18001/v1\"",
        "url \"HTTPS://api.example.com\"",
        "timeout 30s",
    ] {
        let outcome = check(&provider(good));
        assert!(
            !codes(&outcome).contains(&Code::E022),
            "{good}: {:?}",
            codes(&outcome)
        );
    }
}

/// A list of numbers in a model's answer renders longer than its JSON (`1,` is `1, `):
/// 100 tokens of `[0,0,...]` render as 150. (The answer counts 130: 30 more for the
/// `result` it enters a prompt as if it fails; so 195.)
#[test]
fn an_answer_list_rendered_whole_counts_its_separators() {
    let text = |context: u32| {
        format!(
            r#"
agent counter(topic: text max 10) -> list<number> {{
  context 1k
  summary 100 tokens
  prompt "Count {{{{topic}}}}"
}}

agent user(counts: list<number>) {{
  context {context}
  prompt "{{{{counts}}}}"
}}

workflow w(topic: text max 10) -> result {{
  return user(counts: counter(topic: topic))
}}
"#
        )
    };
    assert_eq!(codes(&check(&text(194))), vec![Code::E017]);
    assert_eq!(codes(&check(&text(195))), Vec::<Code>::new());
}

/// `-> list<text max N>` bounds each text of the answer at N tokens (the run holds it
/// to that), and it enters a prompt fenced: 2 + 6, not the answer's whole 80.
#[test]
fn an_answer_of_bounded_texts_hands_on_each_at_its_bound() {
    let text = |context: u32| {
        format!(
            r#"
agent splitter(task: text max 10) -> list<text max 2> {{
  context 1k
  summary 80 tokens
  prompt "Split {{{{task}}}}"
}}

agent worker(part: text) {{
  context {context}
  prompt "Do {{{{part}}}}"
}}

workflow w(task: text max 10) -> list<result> {{
  let parts = splitter(task: task)
  return for p in parts max 3 {{ worker(part: p) }}
}}
"#
        )
    };
    assert_eq!(codes(&check(&text(8))), vec![Code::E017]);
    assert_eq!(codes(&check(&text(9))), Vec::<Code>::new());
}

/// A record a model answered has no `output`: iterating its fields charged 4,025
/// assumed tokens and W009. And a list of records holds as many as its budget has
/// room for at their smallest JSON, not two per token.
#[test]
fn a_record_answer_iterated_whole_is_counted_at_its_budget() {
    let text = r#"
type Finding { title: text, severity: text }

agent scan(t: text max 100) -> list<Finding> {
  context 2k
  summary 300 tokens
  prompt "Find issues in {{t}}"
}

agent report(findings: list<Finding>) -> result {
  context 2k
  summary 200 tokens
  prompt "Report:\n{{#each findings}}{{#each this}}{{@key}}: {{this}}\n{{/each}}{{/each}}"
}

workflow w(t: text max 100) -> result {
  return report(findings: scan(t: t))
}
"#;
    assert_eq!(codes(&check(text)), Vec::<Code>::new());
}

/// A `for`-list of 300 empty texts joined with a model's list: the loop over both runs
/// 300 times and more, although the texts count no tokens.
#[test]
fn a_list_joined_with_an_answer_keeps_a_bound_on_its_length() {
    let text = r#"
agent lister(t: text max 1) -> list<text> {
  context 1k
  summary 100 tokens
  prompt "{{t}}"
}

agent user(xs: list<text>) -> result {
  context 2100
  summary 20 tokens
  prompt "{{#each xs}}Consider this item, it matters!{{/each}}"
}

workflow w(t: text max 1) -> result {
  let found = lister(t: t)
  let blanks = for i in [BLANKS] { "" }
  return user(xs: blanks + found)
}"#
    .replace(
        "BLANKS",
        &(0..300)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    assert_eq!(codes(&check(&text)), vec![Code::E017]);
}

//! The context budget is a proof: for random prompt templates (literal text, values,
//! nested `{{#each}}` blocks, `../`, `@root`, `@index`, `#with`), the template is
//! rendered the way a run renders it, with every value at the largest its type and
//! budgets allow, and the checker must refuse any `context` smaller than what that
//! rendering measured.

use std::path::Path;

use pai::check::budget::tokens_of_bytes;
use pai::check::check_text;
use pai::diagnostics::{Code, Severity};
use pai::run::resolve::fence;
use proptest::prelude::*;
use serde_json::{json, Value};

/// Where in the template a piece is written: what `this` is there.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Top,
    /// Inside `#each items`: a text.
    Item,
    /// Inside `#each children`: a result.
    Child,
    /// Inside `#each nested`: a list of texts.
    Row,
    /// Inside `#each this` within a row: a text.
    Cell,
    /// Inside `#with review`: a result.
    Review,
    /// Inside `#each review`: one of its fields.
    Field,
}

/// A deterministic stream of choices from the bytes proptest generates.
struct Choices<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Choices<'_> {
    fn pick(&mut self, n: usize) -> usize {
        let byte = self.bytes.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        usize::from(byte) % n
    }
}

/// `../` as many times as there are blocks between `scopes`' end and the top.
fn up_to_top(scopes: &[Scope]) -> String {
    "../".repeat(scopes.len().saturating_sub(1))
}

fn values(scopes: &[Scope]) -> Vec<String> {
    let here = *scopes.last().unwrap_or(&Scope::Top);
    let mut out = vec![
        "{{@root.task}}".to_string(),
        format!("{{{{{}task}}}}", up_to_top(scopes)),
    ];
    match here {
        Scope::Top => out.extend(
            [
                "{{items}}",
                "{{nested}}",
                "{{review.summary}}",
                "{{review.status}}",
                "{{len items}}",
                "{{children}}",
            ]
            .map(String::from),
        ),
        Scope::Item | Scope::Cell => out.extend(["{{this}}", "{{@index}}"].map(String::from)),
        Scope::Child => out.extend(
            [
                "{{this.summary}}",
                "{{this.status}}",
                "{{@index}}",
                "{{summary}}",
            ]
            .map(String::from),
        ),
        Scope::Row => out.extend(["{{this}}", "{{@index}}", "{{@last}}"].map(String::from)),
        Scope::Review => out.extend(["{{summary}}", "{{this.status}}"].map(String::from)),
        Scope::Field => out.extend(["{{@key}}", "{{this}}"].map(String::from)),
    }
    if here == Scope::Cell {
        out.push("{{../this}}".to_string());
    }
    out
}

/// Blocks that may open here: their tag, the scope inside, and their closing tag.
fn blocks(here: Scope) -> Vec<(&'static str, Scope, &'static str)> {
    match here {
        Scope::Top => vec![
            ("{{#each items}}", Scope::Item, "{{/each}}"),
            ("{{#each children}}", Scope::Child, "{{/each}}"),
            ("{{#each nested}}", Scope::Row, "{{/each}}"),
            ("{{#with review}}", Scope::Review, "{{/with}}"),
            ("{{#each review}}", Scope::Field, "{{/each}}"),
        ],
        Scope::Row => vec![("{{#each this}}", Scope::Cell, "{{/each}}")],
        Scope::Item | Scope::Child => vec![("{{#each @root.items}}", Scope::Item, "{{/each}}")],
        _ => Vec::new(),
    }
}

const WORDS: &[&str] = &["Summarise ", "the work", "\n- ", " ", ": ", "x"];

fn template(choices: &mut Choices<'_>, scopes: &mut Vec<Scope>, out: &mut String) {
    let pieces = 1 + choices.pick(5);
    for _ in 0..pieces {
        let here = *scopes.last().unwrap_or(&Scope::Top);
        match choices.pick(4) {
            0 => out.push_str(WORDS[choices.pick(WORDS.len())]),
            1 | 2 => {
                let values = values(scopes);
                out.push_str(&values[choices.pick(values.len())]);
            }
            _ => {
                let blocks = blocks(here);
                if blocks.is_empty() || scopes.len() > 3 {
                    continue;
                }
                let (open, inside, close) = blocks[choices.pick(blocks.len())];
                out.push_str(open);
                scopes.push(inside);
                template(choices, scopes, out);
                scopes.pop();
                out.push_str(close);
            }
        }
    }
}

/// A result as a run hands it to a prompt, at its largest: a summary of its whole
/// budget, fenced with a source as long as a fence names.
fn result(summary_tokens: usize) -> Value {
    let source = "s".repeat(200);
    json!({
        "status": "complete",
        "summary": fence(&"y".repeat(summary_tokens * 4), &source),
        "output": fence(&"o".repeat(16_000), &source),
        "outputs": ["output.md"],
        "children": [],
    })
}

/// Every value at its worst case, as the program below declares them.
fn worst_case() -> Value {
    let item = "i".repeat(8);
    let items = json!([item, item, item]);
    json!({
        "task": "t".repeat(40),
        "items": items,
        "children": [result(20), result(20), result(20)],
        "nested": [items, items],
        "review": result(20),
    })
}

fn program(template: &str, context: u64) -> String {
    let escaped = template.replace('\n', "\\n");
    format!(
        r#"
agent leaf(x: text max 10) -> result {{
  context 1k
  summary 20 tokens
  prompt "{{{{x}}}}"
}}

agent probe(task: text max 10, items: list<text max 2> max 3, children: list<result>, nested: list<list<text max 2>>, review: result) {{
  context {context}
  prompt "{escaped}"
}}

workflow w(task: text max 10, items: list<text max 2> max 3) -> result {{
  let children = for i in items max 3 {{ leaf(x: i) }}
  let nested = for i in items max 2 {{ items }}
  let review = leaf(x: task)
  return probe(task: task, items: items, children: children, nested: nested, review: review)
}}
"#
    )
}

fn render(template: &str) -> String {
    let mut handlebars = handlebars::Handlebars::new();
    handlebars.set_strict_mode(true);
    handlebars.register_escape_fn(handlebars::no_escape);
    handlebars
        .render_template(template, &worst_case())
        .unwrap_or_else(|e| panic!("{template:?} does not render: {e}"))
}

fn errors(template: &str, context: u64) -> Vec<(Code, String)> {
    check_text("probe.pai", &program(template, context), Path::new("."))
        .diagnostics
        .into_iter()
        .filter(|d| d.code.severity() == Severity::Error)
        .map(|d| (d.code, d.message))
        .collect()
}

/// Checks that `template`, rendered at its worst case, is never more than what the
/// checker lets through.
fn assert_sound(template: &str) {
    let rendered = render(template);
    let tokens = tokens_of_bytes(rendered.len());
    assert_eq!(errors(template, 1_000_000), [], "{template:?}");
    if tokens > 1 {
        let found = errors(template, tokens - 1);
        assert!(
            found.iter().any(|(code, _)| *code == Code::E017),
            "{template:?} renders {tokens} tokens at worst, yet checks within `context {}`: {found:?}\n{}",
            tokens - 1,
            rendered.chars().take(400).collect::<String>()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_template_renders_past_what_the_checker_proves(
        bytes in proptest::collection::vec(any::<u8>(), 0..64)
    ) {
        let mut choices = Choices { bytes: &bytes, at: 0 };
        let mut out = String::new();
        template(&mut choices, &mut vec![Scope::Top], &mut out);
        assert_sound(&out);
    }
}

/// The shapes the soundness hunt found, each of which checked clean and ran past its
/// context before text inside `#each` was counted once per element.
#[test]
fn text_inside_each_is_counted_once_per_element() {
    for template in [
        "{{#each items}}{{this}}: {{../task}}\n{{/each}}",
        "{{#each items}}{{this}}{{this}}{{/each}}",
        "{{#each nested}}{{#each this}}{{@root.task}}{{/each}}{{/each}}",
        "{{#each children}}{{#each ../items}}{{../../task}}{{/each}}{{/each}}",
        "{{#each children}}- [{{this.status}}] {{this.summary}}\n{{/each}}",
        "{{#each review}}{{@key}}: {{this}}\n{{/each}}",
        "{{items}}{{nested}}",
    ] {
        assert_sound(template);
    }
}

/// What the review of the cost model found handlebars rendering past the proof: block
/// parameters that win over `../` and `this.`, an index block parameter, values a
/// helper picks, a block over a full `output`.
#[test]
fn block_parameters_helper_subjects_and_outputs_are_counted() {
    for template in [
        "{{#each items as |task|}}<{{../task}}>{{/each}}",
        "{{#each items as |summary|}}{{#each @root.children}}{{this.summary}}{{/each}}{{/each}}",
        "{{#each items as |x i|}}{{i}}{{x}}{{/each}}",
        "{{#each review as |value key|}}{{key}}{{/each}}",
        "{{#with (lookup items 0)}}{{this}}{{this}}{{this}}{{/with}}",
        "{{#each (lookup nested 0)}}{{this}}, {{/each}}",
        "{{#with review.output}}{{this}}{{/with}}",
        "{{#with review as |r|}}{{r.summary}}{{r.status}}{{/with}}",
        "{{#with (lookup nested 0)}}{{#each this}}an item {{/each}}{{/with}}",
    ] {
        assert_sound(template);
    }
}

/// handlebars takes a `../` past the top for the innermost block: the checker refuses
/// it rather than count the parameter it seems to name.
#[test]
fn a_path_that_climbs_past_the_top_is_refused() {
    let found = errors("{{#each children}}<{{../../task}}>{{/each}}", 1_000_000);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, Code::E013);
    assert!(found[0].1.contains("`../../task`"), "{found:?}");
}

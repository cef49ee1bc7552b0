//! The one place where diagnostic codes, messages, labels and help texts live.
//!
//! Every diagnostic `pai` reports is built by a constructor in this file, so the wording
//! of the whole tool can be read (and kept consistent) in one place. Style: messages are
//! lowercase, have no trailing period and put user input in backticks; the fix goes in
//! `help`, never in the message.

use std::fmt;

use crate::source::{FileId, Span};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

macro_rules! codes {
    ($($code:ident $severity:ident $summary:literal $explain:literal;)*) => {
        /// A stable diagnostic code. Codes are never reused.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code { $($code,)* }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$code,)*];

            /// `E004`, `W001`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code),)* }
            }

            /// Whether the code is an error or a warning.
            pub fn severity(self) -> Severity {
                match self { $(Code::$code => Severity::$severity,)* }
            }

            /// The one-line summary shown by `pai explain` and in SARIF rules.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$code => $summary,)* }
            }

            /// The long form printed by `pai explain CODE`.
            pub fn explain(self) -> &'static str {
                match self { $(Code::$code => $explain,)* }
            }
        }
    };
}

codes! {
    E001 Error "syntax error"
        "The file does not follow the grammar of `pai` (docs/GRAMMAR.md). The label points at the\nfirst token that could not be read and lists what would have been accepted there. The\nparser skips to the next line that starts an item (`use`, `type`, `agent`, `workflow`,\n`skill`, `protocol`, `provider`) and goes on, so every broken item is reported.";
    E002 Error "input nested too deeply"
        "Brackets, braces, parentheses and `list<...>` types may nest at most 256 levels, and a\nchain of operators or `else if` arms may be at most 256 long. Deeper input is refused\nbefore it is parsed, so a hostile file cannot exhaust the stack. Split the expression\ninto `let` bindings.";
    E003 Error "invalid text literal"
        "A `\"...\"` string knows the escapes `\\n`, `\\t`, `\\\"` and `\\\\`. Any other backslash is an\nerror. `\"\"\"...\"\"\"` blocks are raw: no escapes at all.";
    E004 Error "unknown name"
        "A name was used that nothing defines: a binding, parameter, loop variable, agent,\nworkflow, skill, protocol, provider or builtin. Names may contain `-`, so `a-b` is one\nname, never `a` minus `b`: there is no minus operator.\n\n    let total = len(items)   # `items` must be a parameter or a `let`";
    E005 Error "duplicate definition"
        "Two things in one scope have the same name: items of a file (and the files it `use`s),\nparameters of one signature, fields of one type, bindings of one body. Rename one.";
    E006 Error "`use` does not resolve"
        "`use \"path.pai\"` reads a file relative to the file that says it; `use name` looks for\n`skills/name.pai` in the file's directory and each directory above it. The file could\nnot be found or read.";
    E007 Error "unknown argument"
        "A call named an argument that the agent or workflow does not declare. Arguments are\nmatched by name, never by position (builtins excepted).";
    E008 Error "missing argument"
        "A call did not give a parameter that has no default value.";
    E009 Error "repeated argument"
        "A call gave the same named argument twice.";
    E010 Error "type mismatch"
        "A value of one type was given where another is expected. `[]` fits any list and a text\nliteral may stand for a `path`; nothing else converts implicitly.";
    E011 Error "unknown type"
        "A type name is neither a builtin (`text`, `path`, `number`, `bool`, `duration`, `result`,\n`list<T>`) nor a record declared with `type`.";
    E012 Error "invalid prompt template"
        "A `prompt` or `system` text is a Handlebars template and could not be parsed, or uses a\nhelper `pai` does not provide. Available helpers: `if`, `unless`, `each`, `with`, `lookup`,\n`eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `and`, `or`, `not`, `len`.";
    E013 Error "template names something out of scope"
        "Only the agent's parameters are in scope in its templates (and, inside `#each` or `#with`,\nthe current element: `this`, its fields, `@index`, `@first`, `@last`, block parameters).\nAt run time templates render in strict mode, so a name the checker cannot resolve would\nfail the run; it is caught here instead.";
    E014 Error "dependency cycle between bindings"
        "Bindings run as soon as what they reference is ready. A binding that (through others)\nreferences itself could never start. The message prints the whole cycle.";
    E015 Error "recursion without `depth`"
        "A workflow that calls itself, directly or through others, must bound its recursion with\n`depth N` after its signature. The first activation is depth 1; a deeper activation is an\nerror at plan time.";
    E016 Error "skill composition cycle"
        "Skills may call other skills, but never in a cycle: a skill that (through others) calls\nitself has no bottom.";
    E017 Error "context budget exceeded"
        "For every agent call the checker adds the tokens of the agent's templates to the\nworst-case size of every value that flows in (a `result` counts its agent's `summary`\nbudget, a list its `max` times its element) and compares the sum with the agent's\n`context`. Tokens are estimated as bytes / 4, rounded up. An agent whose worst case does\nnot fit would have to compact mid-task, which is exactly what `pai` exists to prevent.\nLower a `max`, hand summaries instead of outputs, or raise `context`.";
    E018 Error "protocol depth limit exceeded"
        "A workflow governed by a protocol declares a `depth` above the protocol's `max depth`.";
    E019 Error "protocol fan-out limit exceeded"
        "Under a protocol's `max fanout N`, no `for` may declare `max` above N and no agent may be\nhanded more than N results in all its lists together.";
    E020 Error "protocol summary budget exceeded"
        "An agent called under a protocol declares a `summary` budget above the protocol's\n`summary`, or declares none.";
    E021 Error "protocol requires delegation"
        "`delegate when reads >= N`: an agent handed N or more `read(...)` values must fan the\nwork out to children instead of reading everything itself.\n\n`delegate when steps >= N`: an agent handed N or more independent steps (the elements\nof its `list<text>` arguments; a list of unknown length counts as too many)\nmust fan them out with a `for`, one child per step.";
    E022 Error "invalid setting"
        "An agent, skill, protocol or provider has a setting it does not know, a setting given\ntwice, or a value of the wrong kind (a duration where tokens are expected, ...).";
    E023 Error "unknown field"
        "A field was read that the value's type does not have. A `result` has `status`,\n`summary`, `output`, `outputs` and `children`; a record has the fields of its `type`.";
    E024 Error "`use when` outside a skill"
        "`use when \"...\"` lists a skill's triggers and exists only inside `skill NAME { ... }`.";
    E025 Error "modifier given twice"
        "`depth N` and `follows P` may each appear at most once after a workflow's signature.";
    E026 Error "invalid call"
        "Agents, workflows and skills take named arguments; builtins (`files`, `dirs`, `read`,\n`len`, `exec`) take positional ones. A call of one with the form of the other, a builtin\nwith the wrong number of arguments, or a skill called with a workflow it does not have.";
    E027 Error "invalid operand"
        "`+` joins two lists of one element type; `and`, `or` and `not` take `bool`; comparisons\ntake two values of one type and give a `bool`; an `if` condition is a `bool`; a `for`\niterates a list.";
    E028 Error "workflow must return exactly once"
        "A workflow body is `let` bindings and exactly one `return`.";
    E029 Error "invalid quantity"
        "A number was given where another kind is expected: token counts are `N`, `Nk`, `NM`\n(with optional `tokens`), durations `ms`, `s`, `m`, `h`, counts whole numbers.";
    E030 Error "empty file"
        "The file holds nothing `pai` can check. A `.pai` file defines at least one item.";
    E031 Error "not a text file"
        "The file is not valid UTF-8 text or contains NUL bytes.";
    E032 Error "parser limit reached"
        "The file took more parsing steps than its size allows (about 20 per byte). The grammar\nis linear on well-formed input, so this points at pathological input.";
    E033 Error "value over its bound"
        "A constant is larger than the bound declared for it: a parameter's default longer\nthan the parameter's `max` (in tokens for text, in elements for a list), an element of\na default list over `list<T max N>`, or a literal list with more elements than the\n`for ... max N` that iterates it. Budgets are proven from the bounds, so a value past\none would make the proof wrong. Shorten the value, or raise the bound.";
    E034 Error "recursion the plan cannot end"
        "`pai plan` unfolds every recursive call before the run, to `depth` at most, so a\nrecursion must end on something the plan can see. It cannot end inside a `for` over a\nmodel's answer (the plan plans that body once, as a template, so the recursion unfolds\npast any `depth` before the run could see an empty list), nor when the call hands a\nmodel's answer to the list parameter its `for` walks (every level below walks a list\nonly the run knows), nor when a workflow calls itself directly with neither an `if`\nnor a `for` over `dirs`/`files` around the call (nothing changes from one level to the\nnext: an `if` on an agent's answer does not count, since the plan takes both branches).\nRecurse over folders with `dirs` and `files`, which end where the directory tree does,\nor inside an `if` whose condition the plan decides (no agent's answer, result or file\nin it, such as `if deeper { ... }` with `deeper: false` handed down), or decompose a\nmodel's answer one fixed level per workflow.";
    W001 Warning "unused parameter"
        "A parameter of an agent is never named in its templates, or a parameter of a workflow\nis never referenced in its body. Remove it, or use it.";
    W002 Warning "unused binding"
        "A `let` binding is referenced by nothing. It still runs (it may have effects), but it is\nprobably a mistake; reference it from the `return`, or list it in an `after`.";
    W003 Warning "unused agent"
        "An agent is called by no workflow of its file. Files that only define agents and types\n(no workflow, no skill) are libraries and do not get this warning.";
    W004 Warning "unused type"
        "A record type is used by no signature or field of its file. Files that only define\nagents and types are libraries and do not get this warning.";
    W005 Warning "skill without `use when`"
        "A skill without triggers can never be routed to by `pai route`.";
    W006 Warning "overlapping skill triggers"
        "Two skills list the same `use when` trigger, so routing between them is ambiguous.";
    W007 Warning "fan-out without `max`"
        "A `for` over a list whose length is unknown before the run (files, directories, a\nmodel's answer) has no `max N`. No context budget can be proven for what it feeds,\nexcept over a model's list: that holds no more elements than its agent's `summary` has\nroom for (two a token at most, fewer for longer elements), and the checker and `pai\nplan` count that many copies. Write the `max` you mean: it is usually far smaller.";
    W008 Warning "budget leans on an assumed size"
        "An input of unknown size (a workflow `text` parameter without `max`, `read(...)`, a list\nparameter without `max`) flows into an agent. The checker counts it at a default (4,000\ntokens for text, 16 elements for a list) and warns, because the proof depends on that\nguess. A path always counts 1,024 tokens, the longest path most systems allow, without a\nwarning. Bound it: `request: text max 2k`,\n`topics: list<text max 200> max 16`.";
    W009 Warning "context hygiene: output instead of summary"
        "A parent handed a child's full `output` instead of its `summary`. Tree orchestration\nkeeps parents small by passing summaries up; the full output stays on disk.";
    W010 Warning "agent without `context`"
        "An agent is called but declares no `context` window, so its budget cannot be proven.";
    W011 Warning "unknown code in `pai:allow`"
        "A `# pai:allow(CODE)` directive names a code that does not exist or is not a warning.\nErrors cannot be silenced.";
    W012 Warning "unused `use`"
        "A `use` brings in items that nothing in the file references.";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = ();

    fn from_str(s: &str) -> Result<Code, ()> {
        let wanted = s.trim().trim_start_matches("pai::");
        Code::ALL
            .iter()
            .copied()
            .find(|code| code.as_str().eq_ignore_ascii_case(wanted))
            .ok_or(())
    }
}

/// A secondary location: "first defined here".
#[derive(Clone, Debug, PartialEq)]
pub struct Related {
    pub file: Option<FileId>,
    pub span: Span,
    pub label: String,
}

/// One finding about one file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub file: FileId,
    pub span: Span,
    pub message: String,
    pub label: String,
    pub related: Vec<Related>,
    pub help: Option<String>,
}

impl Diagnostic {
    fn new(code: Code, span: Span, message: impl Into<String>, label: impl Into<String>) -> Self {
        Diagnostic {
            code,
            file: FileId(0),
            span,
            message: elide_quotes(message.into()),
            label: elide_quotes(label.into()),
            related: Vec::new(),
            help: None,
        }
    }

    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(elide_quotes(help.into()));
        self
    }

    fn maybe_help(mut self, help: Option<String>) -> Self {
        self.help = help.map(elide_quotes);
        self
    }

    fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push(Related {
            file: None,
            span,
            label: elide_quotes(label.into()),
        });
        self
    }

    /// The same diagnostic, in file `file`.
    pub fn in_file(mut self, file: FileId) -> Self {
        self.file = file;
        self
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.code.severity() == Severity::Error
    }
}

/// The most characters of user input a message, label or help quotes whole.
pub const QUOTE_LIMIT: usize = 64;

/// How many characters of an elided quote are kept at each end.
const QUOTE_KEEP: usize = 24;

/// `text` with every backticked quote of more than [`QUOTE_LIMIT`] characters cut to
/// its first and last [`QUOTE_KEEP`] around `…`: a name of 70,000 characters would
/// otherwise be printed whole, once in the message and again in the help, while the
/// label already shows where all of it is.
pub fn elide_quotes(text: String) -> String {
    if text.len() <= QUOTE_LIMIT {
        return text;
    }
    let mut out = String::new();
    let mut rest = text.as_str();
    let mut changed = false;
    while let Some(open) = rest.find('`') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('`') else { break };
        let quote = &after[..close];
        out.push_str(&rest[..=open]);
        match elided(quote) {
            Some(short) => {
                out.push_str(&short);
                changed = true;
            }
            None => out.push_str(quote),
        }
        out.push('`');
        rest = &after[close + 1..];
    }
    if !changed {
        return text;
    }
    out.push_str(rest);
    out
}

/// `quote` cut to its ends around `…`, when it is longer than [`QUOTE_LIMIT`]
/// characters.
fn elided(quote: &str) -> Option<String> {
    let mut chars = quote.char_indices();
    let head_end = chars.nth(QUOTE_KEEP)?.0;
    chars.nth(QUOTE_LIMIT - QUOTE_KEEP - 1)?;
    let tail_start = quote
        .char_indices()
        .rev()
        .nth(QUOTE_KEEP - 1)
        .map_or(0, |(i, _)| i);
    Some(format!("{}…{}", &quote[..head_end], &quote[tail_start..]))
}

/// Names longer than this get no "did you mean": nobody mistypes one that long, and
/// comparing two of them costs time quadratic in their length.
const MAX_SUGGESTED_NAME: usize = 256;

/// "did you mean `x`?" for the closest of `candidates` to `name`, if one is close.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    if name.len() > MAX_SUGGESTED_NAME {
        return None;
    }
    candidates
        .into_iter()
        .filter(|candidate| *candidate != name && candidate.len() <= MAX_SUGGESTED_NAME)
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, _)| *score >= 0.8)
        // Of equally close names, the first in alphabetical order: candidates often
        // come from a hash map, and the help must not change from run to run.
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, candidate)| format!("did you mean `{candidate}`?"))
}

/// The most names a cycle's path shows; a longer one shows its ends.
pub const PATH_NAMES: usize = 12;

/// How many names a shortened path shows before and after the ones left out.
pub const PATH_HEAD: usize = 6;
pub const PATH_TAIL: usize = 3;

/// `a -> b -> a`. A path of more than [`PATH_NAMES`] names shows its first
/// [`PATH_HEAD`] and last [`PATH_TAIL`] around how many are left out, so a cycle of
/// thousands of workflows, each reported, does not print thousands of names each.
/// `omitted` says how many were left out already between `names`' head and tail.
pub fn arrow_path(names: &[&str], omitted: usize) -> String {
    let (head, middle, tail) = if omitted > 0 {
        let at = PATH_HEAD.min(names.len());
        (&names[..at], omitted, &names[at..])
    } else if names.len() > PATH_NAMES {
        let (head, rest) = names.split_at(PATH_HEAD);
        let (left_out, tail) = rest.split_at(rest.len() - PATH_TAIL);
        (head, left_out.len(), tail)
    } else {
        return names.join(" -> ");
    };
    format!(
        "{} -> … {} more … -> {}",
        head.join(" -> "),
        thousands(middle as u64),
        tail.join(" -> ")
    )
}

/// `1234567` as `1,234,567`. Counts and sums are saturating, so `u64::MAX` stands for
/// "too many to count" and reads `18,446,744,073,709,551,615 or more`, not as exact.
pub fn thousands(n: u64) -> String {
    if n == u64::MAX {
        return format!("{} or more", grouped(n));
    }
    grouped(n)
}

fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ------------------------------------------------------------------ syntax

pub fn syntax_error(span: Span, expected: &str, found: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E001,
        span,
        format!("expected {expected}, found {found}"),
        format!("expected {expected}"),
    )
    .help("see docs/GRAMMAR.md for the syntax of each item")
}

/// A string (`block` false) or `"""` block opened at `span` and never closed.
pub fn unclosed_text(span: Span, block: bool) -> Diagnostic {
    if block {
        Diagnostic::new(
            Code::E001,
            span,
            "a `\"\"\"` block is never closed",
            "this `\"\"\"` opens it",
        )
        .help("close it with `\"\"\"` after its last line")
    } else {
        Diagnostic::new(
            Code::E001,
            span,
            "a string is not closed on its line",
            "this `\"` opens it",
        )
        .help("close it with `\"` on the same line, or write text of several lines as a `\"\"\"` block")
    }
}

pub fn reserved_name(span: Span, word: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E001,
        span,
        format!("expected a name, found `{word}`"),
        "expected a name",
    )
    .help(format!(
        "`{word}` is a reserved word and cannot name anything: choose another name"
    ))
}

pub fn nested_too_deeply(span: Span, limit: usize) -> Diagnostic {
    Diagnostic::new(
        Code::E002,
        span,
        format!("input nests brackets more than {limit} levels deep"),
        "this bracket is too deep",
    )
    .help("split the expression into `let` bindings")
}

pub fn invalid_escape(span: Span, escape: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E003,
        span,
        format!("unknown escape `{escape}` in text"),
        "unknown escape",
    )
    .help("the escapes are `\\n`, `\\t`, `\\\"` and `\\\\`; a `\"\"\"` block takes text raw")
}

pub fn empty_file(span: Span) -> Diagnostic {
    Diagnostic::new(Code::E030, span, "file defines nothing", "empty file")
        .help("define at least one `agent`, `workflow`, `skill`, `protocol`, `provider` or `type`")
}

pub fn not_text(span: Span, reason: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E031,
        span,
        format!("file is not text: {reason}"),
        "here",
    )
    .help("`.pai` files are UTF-8 text without NUL bytes")
}

pub fn call_limit(span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E032,
        span,
        "parsing took more steps than this file's size allows",
        "the parser gave up here",
    )
    .help("simplify the item; deeply repeated prefixes of one expression are the usual cause")
}

pub fn use_when_outside_skill(span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E024,
        span,
        "`use when` is only allowed inside a `skill`",
        "not inside a skill",
    )
    .help("move this line into `skill NAME { ... }`")
}

// ------------------------------------------------------------------ names

/// What kind of thing a name was expected to be, for messages.
pub fn unknown_name(
    span: Span,
    kind: &str,
    name: &str,
    suggestion: Option<String>,
    minus_parts: Option<(&str, &str)>,
) -> Diagnostic {
    let help = match minus_parts {
        Some((left, right)) => Some(format!(
            "there is no minus operator: `{name}` is one name; to use `{left}` and `{right}`, put spaces around an operator that exists, such as `+`"
        )),
        None => suggestion,
    };
    Diagnostic::new(
        Code::E004,
        span,
        format!("unknown {kind} `{name}`"),
        format!("not a known {kind}"),
    )
    .maybe_help(help.or_else(|| Some(format!("define `{name}`, or check its spelling"))))
}

pub fn duplicate(span: Span, kind: &str, name: &str, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E005,
        span,
        format!("{kind} `{name}` is defined more than once"),
        "defined again here",
    )
    .related(first, "first defined here")
    .help(format!("rename one of the two `{name}`"))
}

/// A duplicate whose first definition lives in another file.
pub fn duplicate_in(
    span: Span,
    kind: &str,
    name: &str,
    first_file: FileId,
    first: Span,
) -> Diagnostic {
    let mut diagnostic = duplicate(span, kind, name, first);
    if let Some(related) = diagnostic.related.first_mut() {
        related.file = Some(first_file);
    }
    diagnostic
}

pub fn unresolved_use(span: Span, target: &str, reason: &str, help: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E006,
        span,
        format!("cannot use `{target}`: {reason}"),
        "does not resolve",
    )
    .help(help.to_string())
}

pub fn unused_use(span: Span, target: &str) -> Diagnostic {
    Diagnostic::new(
        Code::W012,
        span,
        format!("nothing from `{target}` is used"),
        "unused",
    )
    .help("remove the `use`")
}

// ------------------------------------------------------------------ calls and types

pub fn unknown_argument(
    span: Span,
    callee: &str,
    arg: &str,
    suggestion: Option<String>,
    params: &str,
) -> Diagnostic {
    Diagnostic::new(
        Code::E007,
        span,
        format!("`{callee}` has no parameter `{arg}`"),
        "unknown argument",
    )
    .help(suggestion.unwrap_or_else(|| format!("the parameters of `{callee}` are {params}")))
}

pub fn missing_argument(span: Span, callee: &str, param: &str, ty: &str, decl: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E008,
        span,
        format!("call of `{callee}` is missing the argument `{param}`"),
        format!("`{param}` is not given"),
    )
    .related(decl, "declared here")
    .help(format!("add `{param}: <{ty}>` to the call"))
}

pub fn repeated_argument(span: Span, arg: &str, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E009,
        span,
        format!("argument `{arg}` is given more than once"),
        "given again here",
    )
    .related(first, "first given here")
    .help(format!("remove one of the two `{arg}`"))
}

pub fn type_mismatch(span: Span, what: &str, expected: &str, found: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E010,
        span,
        format!("{what} expects `{expected}`, found `{found}`"),
        format!("this is `{found}`"),
    )
    .help(format!("give a value of type `{expected}`"))
}

pub fn unknown_type(span: Span, name: &str, suggestion: Option<String>) -> Diagnostic {
    Diagnostic::new(
        Code::E011,
        span,
        format!("unknown type `{name}`"),
        "not a type",
    )
    .help(suggestion.unwrap_or_else(|| {
        "the types are `text`, `path`, `number`, `bool`, `duration`, `result`, `list<T>` and records declared with `type`".to_string()
    }))
}

pub fn invalid_template(span: Span, reason: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E012,
        span,
        format!("invalid prompt template: {reason}"),
        "here",
    )
    .help("templates are Handlebars: `{{name}}`, `{{#each items}}...{{/each}}`, `{{#if flag}}...{{/if}}`")
}

pub fn unknown_helper(span: Span, helper: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E012,
        span,
        format!("unknown template helper `{helper}`"),
        "not a helper",
    )
    .help("the helpers are `if`, `unless`, `each`, `with`, `lookup`, `eq`, `ne`, `gt`, `gte`, `lt`, `lte`, `and`, `or`, `not`, `len`")
}

pub fn template_out_of_scope(
    span: Span,
    agent: &str,
    path: &str,
    reason: &str,
    help: String,
) -> Diagnostic {
    Diagnostic::new(
        Code::E013,
        span,
        format!("template of `{agent}` names `{path}`, {reason}"),
        "not in scope",
    )
    .help(help)
}

pub fn binding_cycle(span: Span, path: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E014,
        span,
        format!("bindings depend on each other in a cycle: {path}"),
        "this binding is part of the cycle",
    )
    .help("break the cycle: one of these bindings must not need the others")
}

pub fn recursion_without_depth(span: Span, name: &str, path: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E015,
        span,
        format!("workflow `{name}` is recursive but has no `depth`: {path}"),
        "recursive workflow",
    )
    .help("bound the recursion: add `depth N` after the signature")
}

pub fn recursion_through_model_list(span: Span, name: &str, list: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E034,
        span,
        format!("workflow `{name}` recurses inside a `for` over a model's answer, which `pai plan` unfolds past any `depth`"),
        "this call recurses",
    )
    .related(list, "a list only the run knows")
    .help("recurse over what the plan can see (`dirs`, `files`, a literal list, an argument), or give each level of a model's decomposition its own workflow")
}

/// E034 one level removed: the `for` walks a parameter, and the recursive call hands
/// that parameter a model's answer, so every level below walks a list only the run
/// knows.
pub fn recursion_through_model_list_argument(
    span: Span,
    name: &str,
    param: &str,
    list: Span,
    argument: Span,
) -> Diagnostic {
    Diagnostic::new(
        Code::E034,
        span,
        format!("workflow `{name}` recurses inside a `for` over `{param}` and hands it a model's answer, which `pai plan` unfolds past any `depth`"),
        "this call recurses",
    )
    .related(list, "the next level walks this list")
    .related(argument, "a list only the run knows")
    .help("recurse over what the plan can see (`dirs`, `files`, a literal list, an argument), or give each level of a model's decomposition its own workflow")
}

/// E034 in general: a recursive call that no `if` the plan decides and no `for` over
/// the file system can end.
pub fn recursion_without_end(span: Span, name: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E034,
        span,
        format!("workflow `{name}` recurses with nothing the plan can see to end it, so `pai plan` unfolds it past any `depth`"),
        "this call recurses",
    )
    .help("recurse inside an `if` on an argument (`if deeper { ... }`), or in a `for` over `dirs(...)` or `files(...)`, which ends where the directory tree does")
}

pub fn skill_cycle(span: Span, path: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E016,
        span,
        format!("skills call each other in a cycle: {path}"),
        "this skill is part of the cycle",
    )
    .help("a skill must not call itself through other skills; move the shared work into a workflow both call")
}

pub fn budget_exceeded(
    span: Span,
    agent: &str,
    chain: &str,
    context: u64,
    agent_span: Span,
) -> Diagnostic {
    Diagnostic::new(
        Code::E017,
        span,
        format!("worst-case input of `{agent}` exceeds its context: {chain} > context {}", thousands(context)),
        "this call can overflow the agent's context",
    )
    .related(agent_span, "agent declared here")
    .help("lower a `max`, hand children's `summary` instead of `output`, lower the children's `summary` budget, or raise `context`")
}

pub fn protocol_depth(
    span: Span,
    protocol: &str,
    depth: u64,
    limit: u64,
    rule: Span,
) -> Diagnostic {
    Diagnostic::new(
        Code::E018,
        span,
        format!("`depth {depth}` exceeds `max depth {limit}` of protocol `{protocol}`"),
        "too deep",
    )
    .related(rule, "limit set here")
    .help(format!("lower the depth to {limit} or less"))
}

pub fn protocol_fanout(
    span: Span,
    protocol: &str,
    what: &str,
    limit: u64,
    rule: Span,
) -> Diagnostic {
    Diagnostic::new(
        Code::E019,
        span,
        format!("{what} exceeds `max fanout {limit}` of protocol `{protocol}`"),
        "too wide",
    )
    .related(rule, "limit set here")
    .help("split the fan-out into a level of sub-workflows, or lower the `max`")
}

pub fn protocol_summary(
    span: Span,
    protocol: &str,
    agent: &str,
    found: Option<u64>,
    limit: u64,
    rule: Span,
) -> Diagnostic {
    let message = match found {
        Some(found) => format!(
            "`{agent}` has a summary budget of {} tokens, above the {} of protocol `{protocol}`",
            thousands(found),
            thousands(limit)
        ),
        None => format!("`{agent}` has no summary budget, but protocol `{protocol}` caps summaries at {} tokens", thousands(limit)),
    };
    Diagnostic::new(Code::E020, span, message, "called here")
        .related(rule, "limit set here")
        .help(format!("give `{agent}` `summary {limit} tokens` or less"))
}

pub fn protocol_delegate(
    span: Span,
    protocol: &str,
    agent: &str,
    reads: u64,
    limit: u64,
    rule: Span,
) -> Diagnostic {
    Diagnostic::new(
        Code::E021,
        span,
        format!("`{agent}` is handed {reads} `read(...)` values; protocol `{protocol}` requires delegation from {limit}"),
        "reads too much itself",
    )
    .related(rule, "rule set here")
    .help("fan out: `for f in files max N { agent(file: f) }` and hand the parent the summaries")
}

/// `steps` is `None` when the count is unbounded.
pub fn protocol_delegate_steps(
    span: Span,
    protocol: &str,
    agent: &str,
    steps: Option<u64>,
    limit: u64,
    rule: Span,
) -> Diagnostic {
    let count = match steps {
        Some(n) => format!("up to {n}"),
        None => "an unbounded number of".to_string(),
    };
    Diagnostic::new(
        Code::E021,
        span,
        format!("`{agent}` is handed {count} independent steps; protocol `{protocol}` requires delegation from {limit}"),
        "does too many steps itself",
    )
    .related(rule, "rule set here")
    .help("fan out: `for step in steps max N { agent(step: step) }`, one child per step, and hand the parent the summaries")
}

pub fn unknown_setting(span: Span, owner: &str, key: &str, known: &[&str]) -> Diagnostic {
    let help = suggest(key, known.iter().copied())
        .unwrap_or_else(|| format!("the settings of {owner} are {}", backticked(known)));
    Diagnostic::new(
        Code::E022,
        span,
        format!("{owner} has no setting `{key}`"),
        "unknown setting",
    )
    .help(help)
}

pub fn repeated_setting(span: Span, key: &str, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E022,
        span,
        format!("setting `{key}` is given more than once"),
        "given again here",
    )
    .related(first, "first given here")
    .help(format!("keep one `{key}`"))
}

pub fn invalid_setting_value(span: Span, key: &str, expected: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E022,
        span,
        format!("setting `{key}` expects {expected}"),
        "wrong kind of value",
    )
    .help(format!("write `{key}` followed by {expected}"))
}

/// An agent whose `summary` cannot hold even the smallest answer of its type.
pub fn summary_below_answer(span: Span, agent: &str, ty: &str, smallest: u64) -> Diagnostic {
    Diagnostic::new(
        Code::E022,
        span,
        format!(
            "the `summary` of `{agent}` cannot hold its smallest answer: a `{ty}` is at least {} tokens as it enters a prompt",
            thousands(smallest)
        ),
        "too small for any answer",
    )
    .help(format!(
        "raise it to `summary {} tokens` or more: every answer would be refused",
        thousands(smallest)
    ))
}

pub fn missing_setting(span: Span, owner: &str, key: &str, help: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E022,
        span,
        format!("{owner} needs `{key}`"),
        format!("no `{key}` here"),
    )
    .help(help.to_string())
}

pub fn unknown_field(span: Span, ty: &str, field: &str, fields: &[&str]) -> Diagnostic {
    let help = suggest(field, fields.iter().copied()).unwrap_or_else(|| {
        if fields.is_empty() {
            format!("a value of type `{ty}` has no fields")
        } else {
            format!("the fields of `{ty}` are {}", backticked(fields))
        }
    });
    Diagnostic::new(
        Code::E023,
        span,
        format!("`{ty}` has no field `{field}`"),
        "unknown field",
    )
    .help(help)
}

pub fn repeated_modifier(span: Span, modifier: &str, first: Span) -> Diagnostic {
    Diagnostic::new(
        Code::E025,
        span,
        format!("`{modifier}` is given more than once"),
        "given again here",
    )
    .related(first, "first given here")
    .help(format!("keep one `{modifier}`"))
}

pub fn invalid_call(span: Span, message: String, help: String) -> Diagnostic {
    Diagnostic::new(Code::E026, span, message, "invalid call").help(help)
}

pub fn invalid_operand(span: Span, message: String, found: &str, help: &str) -> Diagnostic {
    Diagnostic::new(Code::E027, span, message, format!("this is `{found}`")).help(help.to_string())
}

pub fn return_count(span: Span, name: &str, count: usize) -> Diagnostic {
    let (message, label, help) = if count == 0 {
        (
            format!("workflow `{name}` has no `return`"),
            "no `return` in this workflow",
            "end the body with `return <expr>`",
        )
    } else {
        (
            format!("workflow `{name}` has {count} `return` statements"),
            "another `return`",
            "keep exactly one `return`; bind the other values with `let`",
        )
    };
    Diagnostic::new(Code::E028, span, message, label).help(help)
}

pub fn invalid_quantity(span: Span, what: &str, expected: &str) -> Diagnostic {
    Diagnostic::new(
        Code::E029,
        span,
        format!("{what} expects {expected}"),
        "not a valid value here",
    )
    .help(format!("write {expected}"))
}

/// A constant over the bound declared for it (E033): `what` is `amount` `unit`
/// (`14 tokens`, `3 elements`), more than its `max`.
pub fn over_bound(span: Span, what: &str, amount: u64, unit: &str, max: u64) -> Diagnostic {
    let size = format!("{} {unit}", thousands(amount));
    let bound = format!("max {}", thousands(max));
    Diagnostic::new(
        Code::E033,
        span,
        format!("{what} is {size}, more than its `{bound}`"),
        size,
    )
    .help(format!("shorten it, or raise the `{bound}`"))
}

// ------------------------------------------------------------------ lints

pub fn unused_parameter(span: Span, owner: &str, name: &str, in_template: bool) -> Diagnostic {
    let (message, help) = if in_template {
        (
            format!("parameter `{name}` of agent `{owner}` is never used in its prompt"),
            format!("name it in the prompt as `{{{{{name}}}}}`, or remove it"),
        )
    } else {
        (
            format!("parameter `{name}` of workflow `{owner}` is never used"),
            format!("use `{name}` in the body, or remove it"),
        )
    };
    Diagnostic::new(Code::W001, span, message, "unused parameter").help(help)
}

pub fn unused_binding(span: Span, name: &str) -> Diagnostic {
    Diagnostic::new(
        Code::W002,
        span,
        format!("binding `{name}` is never used"),
        "unused binding",
    )
    .help(format!("use `{name}`, list it in an `after`, or remove it"))
}

pub fn unused_item(span: Span, kind: &str, name: &str) -> Diagnostic {
    let code = if kind == "agent" {
        Code::W003
    } else {
        Code::W004
    };
    Diagnostic::new(
        code,
        span,
        format!("{kind} `{name}` is never used"),
        format!("unused {kind}"),
    )
    .help(format!("use `{name}`, or remove it"))
}

pub fn skill_without_triggers(span: Span, name: &str) -> Diagnostic {
    Diagnostic::new(
        Code::W005,
        span,
        format!("skill `{name}` has no `use when` triggers"),
        "cannot be routed to",
    )
    .help("add `use when \"a request\", \"another request\"`")
}

pub fn overlapping_trigger(
    span: Span,
    trigger: &str,
    skill: &str,
    other: &str,
    first_file: FileId,
    first: Span,
) -> Diagnostic {
    let mut diagnostic = Diagnostic::new(
        Code::W006,
        span,
        format!("trigger `{trigger}` of skill `{skill}` is also a trigger of `{other}`"),
        "overlapping trigger",
    )
    .related(first, "also listed here")
    .help("keep the trigger in one skill, or make the two more specific");
    if let Some(related) = diagnostic.related.first_mut() {
        related.file = Some(first_file);
    }
    diagnostic
}

/// W007. `budget`: for a model's list, the most elements its `summary` has room for,
/// which the checker and the plan count instead.
pub fn for_without_max(span: Span, what: &str, budget: Option<u64>) -> Diagnostic {
    let label = match budget {
        Some(most) => format!(
            "up to {} elements: as many as its `summary` has room for",
            thousands(most)
        ),
        None => "length unknown before the run".to_string(),
    };
    Diagnostic::new(
        Code::W007,
        span,
        format!("`for` over {what} has no `max`"),
        label,
    )
    .help("bound it: `for x in ... max N { ... }`")
}

pub fn assumed_size(span: Span, agent: &str, assumptions: &str) -> Diagnostic {
    Diagnostic::new(
        Code::W008,
        span,
        format!("context budget of `{agent}` leans on assumed sizes: {assumptions}"),
        "proof uses a default size",
    )
    .help("bound the input: declare the parameter `name: text max 2k`, or pass a summary")
}

pub fn output_instead_of_summary(span: Span) -> Diagnostic {
    Diagnostic::new(
        Code::W009,
        span,
        "a child's full `output` is handed on instead of its `summary`",
        "full output flows into another agent",
    )
    .help("hand `.summary`; the full output stays on disk for whoever needs it")
}

pub fn no_context(span: Span, agent: &str, decl: Span) -> Diagnostic {
    Diagnostic::new(
        Code::W010,
        span,
        format!("agent `{agent}` declares no `context`, so its budget cannot be proven"),
        "budget unproven",
    )
    .related(decl, "agent declared here")
    .help("add `context 200k` (the model's window, in tokens) to the agent")
}

pub fn unknown_allow(span: Span, code: &str) -> Diagnostic {
    Diagnostic::new(
        Code::W011,
        span,
        format!("`pai:allow` names `{code}`, which is not a warning code"),
        "not a warning code",
    )
    .help("run `pai explain CODE` to see the codes; errors cannot be silenced")
}

/// The names of a help line, each in backticks: `` `a`, `b`, `c` ``.
pub(crate) fn backticked<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_with_or_without_prefix() {
        assert_eq!("E004".parse::<Code>(), Ok(Code::E004));
        assert_eq!("pai::w001".parse::<Code>(), Ok(Code::W001));
        assert!("E999".parse::<Code>().is_err());
    }

    #[test]
    fn codes_are_prefixed_by_their_severity() {
        for code in Code::ALL {
            let prefix = match code.severity() {
                Severity::Error => 'E',
                Severity::Warning => 'W',
            };
            assert!(code.as_str().starts_with(prefix), "{code}");
        }
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(32012), "32,012");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615 or more");
    }

    #[test]
    fn suggestions_only_when_close() {
        assert_eq!(
            suggest("cdoer", ["coder", "reporter"]).as_deref(),
            Some("did you mean `coder`?")
        );
        assert_eq!(suggest("zzz", ["coder"]), None);
    }

    #[test]
    fn long_paths_show_their_ends() {
        assert_eq!(arrow_path(&["a", "b", "a"], 0), "a -> b -> a");
        let names: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let expected = "w0 -> w1 -> w2 -> w3 -> w4 -> w5 -> … 11 more … -> w17 -> w18 -> w19";
        assert_eq!(arrow_path(&names, 0), expected);
        let kept: Vec<&str> = names[..6].iter().chain(&names[17..]).copied().collect();
        assert_eq!(arrow_path(&kept, 11), expected);
    }

    #[test]
    fn long_names_get_no_suggestion() {
        let long = "a".repeat(MAX_SUGGESTED_NAME + 1);
        let close = format!("{long}b");
        assert_eq!(suggest(&long, [close.as_str()]), None);
        assert_eq!(suggest(&close, [long.as_str()]), None);
    }

    #[test]
    fn long_quotes_are_cut_to_their_ends() {
        let long = format!("{}{}{}", "a".repeat(30), "m".repeat(100), "z".repeat(30));
        let message = elide_quotes(format!("unknown agent `{long}`, see `short`"));
        let kept = QUOTE_KEEP;
        assert_eq!(
            message,
            format!(
                "unknown agent `{}…{}`, see `short`",
                "a".repeat(kept),
                "z".repeat(kept)
            )
        );
        let limit = "é".repeat(QUOTE_LIMIT);
        let at_limit = format!("`{limit}` is fine");
        assert_eq!(elide_quotes(at_limit.clone()), at_limit);
        let over = format!("`{limit}é`");
        let cut = elide_quotes(over);
        assert_eq!(cut.chars().count(), 2 * kept + 3);
        // An unpaired backtick quotes nothing.
        let unpaired = format!("`{}", "x".repeat(200));
        assert_eq!(elide_quotes(unpaired.clone()), unpaired);
    }
}
